/*
 * harness.h - integration test support: a private redis-server on a free
 * loopback port in a temporary directory, the real slawatchd binary, and
 * small synchronous hiredis helpers. Everything is bounded in time.
 */
#ifndef SLAWATCH_HARNESS_H
#define SLAWATCH_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

struct h_redis {
    pid_t pid;
    int port;
    char dir[256];
    char extra[256];
};

/* Starts redis-server (extra: more arguments, e.g. "--appendonly yes").
 * Returns 0 once it answers PING, -1 on failure. */
int h_redis_start(struct h_redis *r, const char *extra);
/* Restarts the server on the same port and directory. */
int h_redis_restart(struct h_redis *r);
void h_redis_kill(struct h_redis *r);
/* Stops the server and removes its directory. */
void h_redis_stop(struct h_redis *r);
redisContext *h_connect(int port);

/* Writes `content` to dir/name; returns a malloc'ed path. */
char *h_write_file(const char *dir, const char *name, const char *content);

/* The build directory of the binaries under test ($BUILD or "build"). */
const char *h_build_dir(void);

/* Starts build/slawatchd -c cfg with stderr to dir/daemon.log. */
pid_t h_daemon_start(const char *cfg, const char *dir);
/* Sends sig and waits up to timeout_ms; returns the exit status (or
 * 128+signal), -1 when it did not exit in time (it is then killed). */
int h_daemon_stop(pid_t pid, int sig, int timeout_ms);
/* Prints the daemon log (on failure). */
void h_dump_file(const char *dir, const char *name);

/* Waits until the consumer group exists on the stream. */
bool h_wait_group(redisContext *c, const char *stream, const char *group,
                  int timeout_ms);

/* XADD stream * f1 v1 ... (NULL-terminated). Returns 0 and the ID in id. */
int h_xadd(redisContext *c, const char *stream, char *id, size_t idlen, ...);

#define H_ENTRY_FIELDS 128
struct h_entry {
    char id[48];
    int n;
    char *field[H_ENTRY_FIELDS];
    char *value[H_ENTRY_FIELDS];
};
/* Reads the whole stream; returns the count (entries in *out, free with
 * h_entries_free) or -1. */
int h_xrange(redisContext *c, const char *stream, struct h_entry **out);
void h_entries_free(struct h_entry *e, int n);
const char *h_field(const struct h_entry *e, const char *name);

/* GET key as a string into buf; false when absent. */
bool h_get_str(redisContext *c, const char *key, char *buf, size_t len);
/* Polls until GET key == want (NULL: until absent), up to timeout_ms. */
bool h_wait_str(redisContext *c, const char *key, const char *want, int timeout_ms);
/* GET key as an integer; returns false when absent. */
bool h_get_int(redisContext *c, const char *key, long long *out);
/* Polls until GET key == want, up to timeout_ms. */
bool h_wait_int(redisContext *c, const char *key, long long want, int timeout_ms);
/* Polls until XLEN stream >= n. */
bool h_wait_xlen(redisContext *c, const char *stream, long long n, int timeout_ms);
long long h_xpending_count(redisContext *c, const char *stream, const char *group);
/* HLEN key, or -1; and polling until it equals want. */
long long h_hlen(redisContext *c, const char *key);
bool h_wait_hlen(redisContext *c, const char *key, long long want, int timeout_ms);

int64_t h_now_ms(void);
void h_sleep_until(int64_t wall_ms);
void h_sleep_ms(int ms);

/* Lines of dir/name containing needle (a fixed string), or -1. */
int h_count_lines(const char *dir, const char *name, const char *needle);
/* Runs a command and checks it did not fail (redisCommand format);
 * returns 0, or -1 (printed) on an error reply or a lost connection. */
int h_cmd(redisContext *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Restarts the server on the same port and directory without waiting for
 * it to answer PING (it may be loading its dataset): waits only until the
 * port accepts a connection. */
int h_redis_restart_nowait(struct h_redis *r);
/* Peak resident memory of a process in KiB (VmHWM), or -1. */
long h_peak_rss_kb(pid_t pid);

/* ---- a loopback HTTP receiver (libevent evhttp in its own thread) ------ */

/* One request as received. */
struct h_req {
    char path[128];
    char delivery[80];        /* X-Slawatch-Delivery */
    char timestamp[32];       /* X-Slawatch-Timestamp */
    char signature[96];       /* X-Slawatch-Signature */
    char content_type[64];
    char *body;               /* NUL-terminated */
    size_t body_len;
    int status;               /* what was answered; 0: never answered */
    int attempt;              /* requests so far for this path + delivery */
    int64_t at_ms;            /* wall clock at arrival */
};

/* Decides the answer to a request: an HTTP status, or 0 to never answer
 * (a receiver hanging past the client's timeout). Runs on the receiver
 * thread; `attempt` counts requests for the same path and delivery id,
 * this one included. NULL: always 200. */
typedef int h_http_script_fn(void *arg, const char *path, const char *delivery,
                             int attempt);

struct h_http_srv;
struct h_http {
    int port;
    struct h_http_srv *srv;
};

/* Starts a receiver on a free loopback port. With `record` false only the
 * count is kept (benchmarks). Returns 0 or -1. */
int h_http_start(struct h_http *h, h_http_script_fn *script, void *arg, bool record);
/* The same on a given port (a receiver coming back where it was). */
int h_http_start_on(struct h_http *h, int port, h_http_script_fn *script, void *arg,
                    bool record);
void h_http_stop(struct h_http *h);
/* Changes the script (under the receiver's lock). */
void h_http_set_script(struct h_http *h, h_http_script_fn *script, void *arg);
/* Requests received on `path` (NULL: all). */
int h_http_count(struct h_http *h, const char *path);
/* Polls until h_http_count(path) >= n, up to timeout_ms. */
bool h_http_wait(struct h_http *h, const char *path, int n, int timeout_ms);
/* A copy of every recorded request, in arrival order; free with
 * h_http_free_copy. Returns the count. */
int h_http_copy(struct h_http *h, struct h_req **out);
void h_http_free_copy(struct h_req *reqs, int n);

/* ---- a daemon with webhooks: redis, a recording receiver, slawatchd ---- */

struct h_env {
    struct h_redis redis;
    struct h_http rx;
    redisContext *c;
    char *cfg;
    pid_t daemon;
};

/* Replaces @REDIS@ and @HTTP@ in text with the ports; malloc'ed. */
char *h_subst_ports(const char *text, int redis_port, int http_port);

/* Starts redis-server, a recording receiver answering by `script`, writes
 * `secrets` (NULL-terminated name, content pairs, mode 0600) and the config
 * `yaml` (ports substituted) into the temporary directory, then slawatchd,
 * and waits for its group on `stream`. Returns the environment, or NULL
 * (after printing the daemon log and cleaning up). */
struct h_env *h_env_start(const char *yaml, const char *stream,
                          const char *const *secrets, h_http_script_fn *script,
                          void *arg);
/* Stops everything; the daemon must exit 0 on SIGTERM within 8 s (with
 * deliveries still in flight). Returns 0, or -1 when it did not. */
int h_env_stop(struct h_env *e);

#endif
