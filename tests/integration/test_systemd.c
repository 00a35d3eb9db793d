/* Integration tests of the daemon as a systemd service, against a real
 * redis-server and without a service manager:
 *
 * - the sd_notify protocol, read from an AF_UNIX datagram socket of the
 *   test given to the daemon as NOTIFY_SOCKET: READY=1 only once Redis
 *   answers and the consumer group exists, STATUS= lines, WATCHDOG=1 at
 *   half of WATCHDOG_USEC (none when WATCHDOG_PID names another process),
 *   RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 and exit 0 on SIGTERM;
 * - what STATUS= says about health: waiting for Redis (and since when),
 *   0 writes pending when idle, a rejected reload until a good one;
 * - SIGHUP re-targets running clocks: a tighter target breaches at once, a
 *   looser one prevents a breach, a broken file is rejected with its
 *   FILE:LINE:COL errors in the log and the old targets stay;
 * - contrib/systemd/slawatchd.service passes `systemd-analyze verify` and
 *   scores an exposure of at most 2.5 in `systemd-analyze security`;
 * - `make install` / `make uninstall` into a DESTDIR.
 *
 * Every wait is bounded; everything runs on loopback and in temporary
 * directories. Paths of the source tree are relative to SLAWATCH_SRCDIR
 * when set, else to the current directory (the repository root under
 * tests/run.sh). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define MAX_EXPOSURE 2.5

/* ---- notifications ------------------------------------------------------ */

struct note {
    int64_t at_ms; /* CLOCK_MONOTONIC, when the test received it */
    char text[512];
};

struct notes {
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct note *v;
    size_t n, cap;
};

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Binds dir/notify.sock. Returns 0 or -1. */
static int
notes_open(struct notes *ns, const char *dir)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    memset(ns, 0, sizeof(*ns));
    ns->fd = -1;
    if ((size_t)snprintf(ns->path, sizeof(ns->path), "%s/notify.sock", dir) >=
        sizeof(ns->path))
        return -1;
    memcpy(a.sun_path, ns->path, sizeof(ns->path));
    ns->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (ns->fd < 0 || bind(ns->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    return 0;
}

static void
notes_close(struct notes *ns)
{
    if (ns->fd >= 0)
        close(ns->fd);
    if (ns->path[0])
        unlink(ns->path);
    free(ns->v);
    memset(ns, 0, sizeof(*ns));
    ns->fd = -1;
}

/* Waits up to timeout_ms for datagrams and appends every one that is
 * there. */
static void
notes_pump(struct notes *ns, int timeout_ms)
{
    struct pollfd p = { .fd = ns->fd, .events = POLLIN };
    if (poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms) <= 0)
        return;
    for (;;) {
        char buf[4096];
        ssize_t r = recv(ns->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r < 0)
            return;
        if (ns->n == ns->cap) {
            size_t cap = ns->cap ? ns->cap * 2 : 64;
            struct note *v = realloc(ns->v, cap * sizeof(*v));
            assert_non_null(v);
            ns->v = v;
            ns->cap = cap;
        }
        struct note *n = &ns->v[ns->n++];
        size_t len = (size_t)r < sizeof(n->text) - 1 ? (size_t)r
                                                      : sizeof(n->text) - 1;
        n->at_ms = mono_ms();
        memcpy(n->text, buf, len);
        n->text[len] = '\0';
    }
}

/* Whether one of the newline-separated assignments of n is exactly
 * `line` ("READY=1"), or starts with it when it ends in '=' ("STATUS="). */
static bool
note_has(const struct note *n, const char *line)
{
    size_t len = strlen(line);
    bool prefix = len > 0 && line[len - 1] == '=';
    for (const char *p = n->text; *p;) {
        size_t l = strcspn(p, "\n");
        if (prefix ? (l >= len && memcmp(p, line, len) == 0)
                   : (l == len && memcmp(p, line, len) == 0))
            return true;
        p += l + (p[l] == '\n');
    }
    return false;
}

/* Index of the first note at or after `from` holding `line`, waiting up to
 * timeout_ms for it; -1 when it did not come. */
static long
notes_wait(struct notes *ns, size_t from, const char *line, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    for (;;) {
        for (size_t i = from; i < ns->n; i++)
            if (note_has(&ns->v[i], line))
                return (long)i;
        from = ns->n;
        int64_t left = end - mono_ms();
        if (left <= 0)
            return -1;
        notes_pump(ns, (int)left);
    }
}

/* Receives for exactly ms milliseconds. */
static void
notes_collect(struct notes *ns, int ms)
{
    int64_t end = mono_ms() + ms;
    for (int64_t left = ms; left > 0; left = end - mono_ms())
        notes_pump(ns, (int)left);
}

static size_t
notes_count(const struct notes *ns, size_t from, const char *line)
{
    size_t c = 0;
    for (size_t i = from; i < ns->n; i++)
        c += note_has(&ns->v[i], line);
    return c;
}

static void
notes_dump(const struct notes *ns)
{
    fprintf(stderr, "---- %zu notifications\n", ns->n);
    for (size_t i = 0; i < ns->n; i++)
        fprintf(stderr, "%lld %s\n", (long long)ns->v[i].at_ms, ns->v[i].text);
}

/* ---- the daemon under a pretend service manager ------------------------- */

/* Starts build/slawatchd -c cfg with stderr to dir/daemon.log, as systemd
 * would: NOTIFY_SOCKET set, and with watchdog_usec > 0, WATCHDOG_USEC and
 * WATCHDOG_PID (the daemon's own pid, or `watchdog_pid` when not 0). The
 * harness' h_daemon_start() clears NOTIFY_SOCKET, hence this one. */
static pid_t
daemon_start_notify(const char *cfg, const char *dir, const char *sock,
                    unsigned long long watchdog_usec, pid_t watchdog_pid)
{
    char bin[PATH_MAX], logf[PATH_MAX];
    snprintf(bin, sizeof(bin), "%s/slawatchd", h_build_dir());
    snprintf(logf, sizeof(logf), "%s/daemon.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        char num[32];
        int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        unsetenv("JOURNAL_STREAM");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        setenv("NOTIFY_SOCKET", sock, 1);
        if (watchdog_usec > 0) {
            snprintf(num, sizeof(num), "%llu", watchdog_usec);
            setenv("WATCHDOG_USEC", num, 1);
            /* exec keeps the pid: this is the daemon's. */
            snprintf(num, sizeof(num), "%ld",
                     (long)(watchdog_pid ? watchdog_pid : getpid()));
            setenv("WATCHDOG_PID", num, 1);
        }
        execl(bin, "slawatchd", "-c", cfg, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits up to timeout_ms for pid to exit; returns its exit status, 128 +
 * signal, or -1 when it is still running. */
static int
wait_exit(pid_t pid, int timeout_ms)
{
    int status;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status)
                                     : 128 + WTERMSIG(status);
        h_sleep_ms(10);
    }
    return -1;
}

struct env {
    struct h_redis redis;
    redisContext *c;
    char *cfg;
    pid_t daemon;
    struct notes notes;
};

static const char *config_fmt =
    "redis: { host: 127.0.0.1, port: %d, prefix: \"sd:\" }\n"
    "events: { max_clock_skew: 1m }\n"
    "tiers:\n"
    "  t: { response: %s }\n"
    "log: { level: debug }\n";

static void
write_config(struct env *e, const char *response)
{
    char text[1024];
    snprintf(text, sizeof(text), config_fmt, e->redis.port, response);
    free(e->cfg);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    assert_non_null(e->cfg);
}

static int
teardown(void **state)
{
    struct env *e = *state;
    if (e->daemon > 0)
        h_daemon_stop(e->daemon, SIGKILL, 2000);
    if (e->c)
        redisFree(e->c);
    notes_close(&e->notes);
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return 0;
}

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    if (e == NULL || h_redis_start(&e->redis, NULL) < 0) {
        fprintf(stderr, "cannot start redis-server\n");
        free(e);
        return -1;
    }
    e->c = h_connect(e->redis.port);
    *state = e;
    if (e->c == NULL || notes_open(&e->notes, e->redis.dir) < 0) {
        fprintf(stderr, "cannot connect to redis or bind the notify socket\n");
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

/* Starts the daemon with a 1 s watchdog and waits for READY=1. */
static void
start_ready(struct env *e)
{
    e->daemon = daemon_start_notify(e->cfg, e->redis.dir, e->notes.path,
                                    1000000, 0);
    assert_true(e->daemon > 0);
    if (notes_wait(&e->notes, 0, "READY=1", 5000) < 0) {
        notes_dump(&e->notes);
        h_dump_file(e->redis.dir, "daemon.log");
        fail_msg("no READY=1 within 5 s");
    }
}

/* Sends SIGHUP and waits for RELOADING=1 and then READY=1. */
static void
reload_and_wait(struct env *e)
{
    size_t from = e->notes.n;
    assert_int_equal(kill(e->daemon, SIGHUP), 0);
    long r = notes_wait(&e->notes, from, "RELOADING=1", 3000);
    long ready = r < 0 ? -1 : notes_wait(&e->notes, (size_t)r + 1, "READY=1", 3000);
    if (r < 0 || ready < 0) {
        notes_dump(&e->notes);
        h_dump_file(e->redis.dir, "daemon.log");
        fail_msg("no RELOADING=1 then READY=1 within 3 s of SIGHUP");
    }
}

/* Whether the group has been delivered `id` and has acknowledged it
 * (the daemon acknowledges a batch once it is applied). */
static bool
group_applied(struct env *e, const char *id)
{
    redisReply *r = redisCommand(e->c, "XINFO GROUPS sd:events");
    bool delivered = false, acked = false;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        redisReply *g = r->element[0];
        for (size_t i = 0; i + 1 < g->elements; i += 2) {
            const char *k = g->element[i]->str;
            redisReply *v = g->element[i + 1];
            if (strcmp(k, "last-delivered-id") == 0 && v->str)
                delivered = strcmp(v->str, id) == 0;
            else if (strcmp(k, "pending") == 0)
                acked = v->type == REDIS_REPLY_INTEGER && v->integer == 0;
        }
    }
    if (r)
        freeReplyObject(r);
    return delivered && acked;
}

/* Appends an "opened" event stamped ts and waits (up to 3 s) until the
 * daemon has applied it. */
static void
emit_opened(struct env *e, const char *ticket, int64_t ts)
{
    char tsbuf[24], id[48];
    snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
    assert_int_equal(h_xadd(e->c, "sd:events", id, sizeof(id), "type",
                            "opened", "ticket", ticket, "ts", tsbuf, NULL),
                     0);
    for (int waited = 0; !group_applied(e, id); waited += 5) {
        if (waited > 3000)
            { h_dump_file(e->redis.dir, "daemon.log"); fail_msg("event %s not applied within 3 s", id); }
        h_sleep_ms(5);
    }
}

static long long
xlen(struct env *e, const char *key)
{
    redisReply *r = redisCommand(e->c, "XLEN %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

/* The one entry of sd:breaches, which must be a response breach of
 * `ticket`; stores deadline_ms and at_ms. */
static void
the_breach(struct env *e, const char *ticket, long long *deadline,
           long long *at)
{
    struct h_entry *ent;
    int n = h_xrange(e->c, "sd:breaches", &ent);
    if (n != 1) {
        for (int i = 0; i < n; i++)
            fprintf(stderr, "entry %s: %s %s %s\n", ent[i].id,
                    h_field(&ent[i], "kind"), h_field(&ent[i], "ticket"),
                    h_field(&ent[i], "deadline_ms"));
        h_dump_file(e->redis.dir, "daemon.log");
    }
    assert_int_equal(n, 1);
    assert_string_equal(h_field(&ent[0], "kind"), "breach");
    assert_string_equal(h_field(&ent[0], "ticket"), ticket);
    assert_string_equal(h_field(&ent[0], "metric"), "response");
    assert_string_equal(h_field(&ent[0], "tier"), "t");
    *deadline = atoll(h_field(&ent[0], "deadline_ms"));
    *at = atoll(h_field(&ent[0], "at_ms"));
    assert_int_equal(atoll(h_field(&ent[0], "late_ms")), *at - *deadline);
    h_entries_free(ent, n);
}

/* ---- (a) the notification protocol -------------------------------------- */

static void
test_notify_protocol(void **state)
{
    struct env *e = *state;
    write_config(e, "1h");

    /* Redis is down at first: the loop runs (watchdog pings, status) but
     * the daemon is not ready, and a SIGHUP then is no reload to report. */
    h_redis_kill(&e->redis);
    e->daemon = daemon_start_notify(e->cfg, e->redis.dir, e->notes.path,
                                    1000000, 0);
    assert_true(e->daemon > 0);
    notes_collect(&e->notes, 700);
    assert_int_equal(kill(e->daemon, SIGHUP), 0);
    notes_collect(&e->notes, 800);
    if (notes_count(&e->notes, 0, "READY=1") != 0 ||
        notes_count(&e->notes, 0, "RELOADING=1") != 0 ||
        notes_count(&e->notes, 0, "WATCHDOG=1") < 2) {
        notes_dump(&e->notes);
        h_dump_file(e->redis.dir, "daemon.log");
        fail_msg("before Redis answers: want pings and no READY/RELOADING");
    }
    /* ... and STATUS= says why. */
    bool why = false;
    for (size_t i = 0; i < e->notes.n && !why; i++)
        why = strstr(e->notes.v[i].text, "STATUS=") != NULL &&
              strstr(e->notes.v[i].text, "(redis lease down: ") != NULL;
    if (!why) {
        notes_dump(&e->notes);
        fail_msg("before Redis answers: no STATUS= naming the connection down");
    }

    /* Redis comes up: READY=1, and by then the group exists. */
    assert_int_equal(h_redis_restart(&e->redis), 0);
    redisFree(e->c);
    e->c = h_connect(e->redis.port);
    assert_non_null(e->c);
    long ready = notes_wait(&e->notes, 0, "READY=1", 5000);
    if (ready < 0) {
        notes_dump(&e->notes);
        h_dump_file(e->redis.dir, "daemon.log");
        fail_msg("no READY=1 within 5 s of Redis coming up");
    }
    assert_true(h_wait_group(e->c, "sd:events", "slawatch", 0));
    assert_int_equal(notes_count(&e->notes, 0, "READY=1"), 1);

    /* STATUS= every second, with the open tickets. */
    emit_opened(e, "S1", h_now_ms());
    emit_opened(e, "S2", h_now_ms());
    int64_t end = mono_ms() + 4000;
    bool seen = false;
    for (size_t from = (size_t)ready; !seen && mono_ms() < end;) {
        long s = notes_wait(&e->notes, from, "STATUS=", (int)(end - mono_ms()));
        if (s < 0)
            break;
        seen = strstr(e->notes.v[s].text, "STATUS=2 open tickets") != NULL;
        from = (size_t)s + 1;
    }
    if (!seen) {
        notes_dump(&e->notes);
        fail_msg("no STATUS= line with 2 open tickets within 4 s");
    }

    /* WATCHDOG=1 at half of WATCHDOG_USEC: at least 3 in 2 s, and never
     * a gap the manager would take for a hang (1 s). */
    size_t from = e->notes.n;
    notes_collect(&e->notes, 2000);
    size_t pings = notes_count(&e->notes, from, "WATCHDOG=1");
    int64_t last = -1, max_gap = 0;
    for (size_t i = from; i < e->notes.n; i++) {
        if (!note_has(&e->notes.v[i], "WATCHDOG=1"))
            continue;
        if (last >= 0 && e->notes.v[i].at_ms - last > max_gap)
            max_gap = e->notes.v[i].at_ms - last;
        last = e->notes.v[i].at_ms;
    }
    if (pings < 3 || max_gap >= 1000) {
        notes_dump(&e->notes);
        fail_msg("%zu pings in 2 s, largest gap %lld ms", pings,
                 (long long)max_gap);
    }

    /* SIGHUP: RELOADING=1 (stamped with MONOTONIC_USEC), then READY=1. */
    from = e->notes.n;
    reload_and_wait(e);
    long r = notes_wait(&e->notes, from, "RELOADING=1", 0);
    assert_true(note_has(&e->notes.v[r], "MONOTONIC_USEC="));

    /* SIGTERM: STOPPING=1 and exit 0 within 5 s. */
    from = e->notes.n;
    assert_int_equal(kill(e->daemon, SIGTERM), 0);
    if (notes_wait(&e->notes, from, "STOPPING=1", 2000) < 0) {
        notes_dump(&e->notes);
        fail_msg("no STOPPING=1 within 2 s of SIGTERM");
    }
    int status = wait_exit(e->daemon, 5000);
    if (status == 0)
        e->daemon = 0;
    assert_int_equal(status, 0);
}

static void
test_watchdog_for_another_pid(void **state)
{
    struct env *e = *state;
    write_config(e, "1h");
    /* WATCHDOG_PID names another process (sd_watchdog_enabled(3)): the
     * settings are not ours, so no pings; the rest works as usual. */
    e->daemon = daemon_start_notify(e->cfg, e->redis.dir, e->notes.path,
                                    1000000, getpid());
    assert_true(e->daemon > 0);
    assert_true(notes_wait(&e->notes, 0, "READY=1", 5000) >= 0);
    notes_collect(&e->notes, 1200);
    if (notes_count(&e->notes, 0, "WATCHDOG=1") != 0 ||
        notes_count(&e->notes, 0, "STATUS=") == 0) {
        notes_dump(&e->notes);
        fail_msg("want STATUS= and no WATCHDOG=1");
    }
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
}

/* ---- (a') what STATUS= says about health -------------------------------- */

/* The text of the first STATUS= at or after `from` that contains `want`,
 * waiting up to timeout_ms; -1 when none came. */
static long
status_with(struct env *e, size_t from, const char *want, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    for (;;) {
        long s = notes_wait(&e->notes, from, "STATUS=", (int)(end - mono_ms()));
        if (s < 0)
            return -1;
        if (strstr(e->notes.v[s].text, want) != NULL)
            return s;
        from = (size_t)s + 1;
    }
}

static void
test_status_health(void **state)
{
    struct env *e = *state;
    char want[256];
    write_config(e, "1h");
    /* Redis down: STATUS= says so, and since when. */
    h_redis_kill(&e->redis);
    e->daemon = daemon_start_notify(e->cfg, e->redis.dir, e->notes.path, 0, 0);
    assert_true(e->daemon > 0);
    snprintf(want, sizeof(want), "STATUS=waiting for Redis at 127.0.0.1:%d since 20",
             e->redis.port);
    if (status_with(e, 0, want, 3000) < 0) {
        notes_dump(&e->notes);
        fail_msg("no STATUS= saying it waits for Redis");
    }
    /* Up and idle: nothing pending (the round's own gauges are not counted). */
    assert_int_equal(h_redis_restart(&e->redis), 0);
    redisFree(e->c);
    e->c = h_connect(e->redis.port);
    long ready = notes_wait(&e->notes, 0, "READY=1", 5000);
    assert_true(ready >= 0);
    long idle = status_with(e, (size_t)ready, "STATUS=0 open tickets, 0 events/s, 0 writes pending",
                            4000);
    if (idle < 0) {
        notes_dump(&e->notes);
        fail_msg("no idle STATUS= with 0 writes pending");
    }
    assert_null(strstr(e->notes.v[idle].text, "reload"));
    /* A rejected reload stays in STATUS= until a good one. */
    char broken[512];
    snprintf(broken, sizeof(broken),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"sd:\" }\n"
             "tiers:\n  t: { response: never }\n",
             e->redis.port);
    free(h_write_file(e->redis.dir, "slawatch.yaml", broken));
    size_t from = e->notes.n;
    assert_int_equal(kill(e->daemon, SIGHUP), 0);
    snprintf(want, sizeof(want), "; reload rejected at 20");
    long rej = status_with(e, from, want, 3000);
    if (rej < 0) {
        notes_dump(&e->notes);
        fail_msg("no STATUS= with the rejected reload");
    }
    assert_non_null(strstr(e->notes.v[rej].text, "slawatch.yaml:3:"));
    write_config(e, "1h");
    from = e->notes.n;
    assert_int_equal(kill(e->daemon, SIGHUP), 0);
    long ok = -1;
    for (long st = status_with(e, from, "STATUS=0 open tickets", 3000); st >= 0 && ok < 0;
         st = status_with(e, (size_t)st + 1, "STATUS=0 open tickets", 3000))
        if (strstr(e->notes.v[st].text, "reload rejected") == NULL)
            ok = st;
    if (ok < 0) {
        notes_dump(&e->notes);
        fail_msg("the rejected reload stayed in STATUS= after a good one");
    }
}

/* ---- (b) reloads re-target running clocks ------------------------------- */

static void
test_reload_tightens(void **state)
{
    struct env *e = *state;
    write_config(e, "10s");
    start_ready(e);
    int64_t t0 = h_now_ms();
    emit_opened(e, "A", t0);
    assert_true(xlen(e, "sd:breaches") <= 0);

    /* 300 ms is already past: the clock breaches at once, at its new
     * deadline. */
    write_config(e, "300ms");
    int64_t hup = h_now_ms();
    reload_and_wait(e);
    assert_true(h_wait_xlen(e->c, "sd:breaches", 1, 1000));
    long long deadline, at;
    the_breach(e, "A", &deadline, &at);
    assert_int_equal(deadline, t0 + 300);
    assert_true(at >= hup - 5 && at <= hup + 1000);
    assert_true(at - deadline >= hup - t0 - 300 - 5);
    assert_true(h_wait_int(e->c, "sd:overdue:t:response", 1, 3000));
}

static void
test_reload_loosens(void **state)
{
    struct env *e = *state;
    write_config(e, "1s");
    start_ready(e);
    int64_t t0 = h_now_ms();
    emit_opened(e, "B", t0);

    /* Before the old 1 s deadline, loosen to 2.5 s: no breach at 1 s, one
     * at 2.5 s, fired live. */
    write_config(e, "2500ms");
    reload_and_wait(e);
    assert_true(h_now_ms() < t0 + 900); /* the reload came in time */
    h_sleep_until(t0 + 1800);
    assert_true(xlen(e, "sd:breaches") <= 0);
    assert_true(h_wait_xlen(e->c, "sd:breaches", 1, 2500));
    long long deadline, at;
    the_breach(e, "B", &deadline, &at);
    assert_int_equal(deadline, t0 + 2500);
    assert_true(at - deadline >= 0 && at - deadline <= 200);
}

/* Whether dir/daemon.log has a line holding `needle`. */
static bool
log_has(const char *dir, const char *needle)
{
    char path[PATH_MAX], line[2048];
    bool found = false;
    snprintf(path, sizeof(path), "%s/daemon.log", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void
test_reload_broken_keeps_old(void **state)
{
    struct env *e = *state;
    char cmd[2 * PATH_MAX], errpath[PATH_MAX], line[1024], broken[1024];
    write_config(e, "1500ms");
    start_ready(e);
    int64_t t0 = h_now_ms();
    emit_opened(e, "C", t0);

    /* A file that would tighten the target to 300 ms if it were accepted,
     * but has an unknown key on line 4. */
    snprintf(broken, sizeof(broken),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"sd:\" }\n"
             "events: { max_clock_skew: 1m }\n"
             "tiers:\n"
             "  t: { response: 300ms, respnse: 1s }\n",
             e->redis.port);
    char *p = h_write_file(e->redis.dir, "slawatch.yaml", broken);
    free(p);
    reload_and_wait(e);
    assert_int_equal(kill(e->daemon, 0), 0);

    /* Each error the checker reports for the file is in the log, as
     * FILE:LINE:COL: message. */
    snprintf(errpath, sizeof(errpath), "%s/check.err", e->redis.dir);
    snprintf(cmd, sizeof(cmd), "%s/slawatchd -c %s -t 2>%s", h_build_dir(),
             e->cfg, errpath);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 78);
    FILE *f = fopen(errpath, "r");
    assert_non_null(f);
    int nerr = 0;
    while (fgets(line, sizeof(line), f)) {
        char want[1200];
        int ln = 0, col = 0;
        line[strcspn(line, "\n")] = '\0';
        size_t plen = strlen(e->cfg);
        assert_memory_equal(line, e->cfg, plen);
        assert_int_equal(sscanf(line + plen, ":%d:%d: ", &ln, &col), 2);
        assert_int_equal(ln, 4);
        assert_true(col > 0);
        snprintf(want, sizeof(want), "reload rejected: %s", line);
        if (!log_has(e->redis.dir, want)) {
            h_dump_file(e->redis.dir, "daemon.log");
            fail_msg("not in the log: %s", want);
        }
        nerr++;
    }
    fclose(f);
    assert_true(nerr >= 1);

    /* The old 1.5 s target still runs: nothing at 300 ms, a live breach
     * at 1.5 s. */
    h_sleep_until(t0 + 1100);
    assert_true(xlen(e, "sd:breaches") <= 0);
    assert_true(h_wait_xlen(e->c, "sd:breaches", 1, 2500));
    long long deadline, at;
    the_breach(e, "C", &deadline, &at);
    assert_int_equal(deadline, t0 + 1500);
    assert_true(at - deadline >= 0 && at - deadline <= 200);

    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
}

/* ---- (c) the unit file --------------------------------------------------- */

static const char *
srcdir(void)
{
    const char *d = getenv("SLAWATCH_SRCDIR");
    return d && *d ? d : ".";
}

/* Runs a shell command; returns its exit status and its output (stdout and
 * stderr) in *out, which the caller frees. */
static int
run(const char *cmd, char **out)
{
    char chunk[4096];
    size_t len = 0, r;
    FILE *m = open_memstream(out, &len);
    assert_non_null(m);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    while ((r = fread(chunk, 1, sizeof(chunk), p)) > 0)
        fwrite(chunk, 1, r, m);
    int rc = pclose(p);
    fclose(m);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *
make_tmpdir(void)
{
    char *d = strdup("/tmp/slawatch-systemd-XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static void
remove_tree(const char *dir)
{
    char cmd[PATH_MAX + 16];
    if (getenv("SLAWATCH_KEEP_TMP") != NULL)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

/* A temporary directory for one test, removed afterwards even when the
 * test fails (unless SLAWATCH_KEEP_TMP is set). */
static int
tmp_setup(void **state)
{
    *state = make_tmpdir();
    return 0;
}

static int
tmp_teardown(void **state)
{
    remove_tree(*state);
    free(*state);
    return 0;
}

/* Whether the file has a line that is exactly `want`. */
static bool
file_has_line(const char *path, const char *want)
{
    char line[PATH_MAX + 64];
    bool found = false;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        found = strcmp(line, want) == 0;
    }
    fclose(f);
    return found;
}

static void
test_unit_file(void **state)
{
    const char *tmp = *state;
    char cmd[4 * PATH_MAX], sbindir[PATH_MAX], *out = NULL;
    if (system("command -v systemd-analyze >/dev/null 2>&1") != 0) {
        printf("note: systemd-analyze is not installed; unit file not "
               "checked\n");
        skip();
    }
    assert_non_null(realpath(h_build_dir(), sbindir));

    /* The unit as `make install` writes it, with the binaries of this
     * build (verify wants ExecStart= to exist), and the manual pages where
     * man(1) finds them (verify checks Documentation=). */
    snprintf(cmd, sizeof(cmd),
             "set -e; cd '%s'; for s in 1 5 8; do mkdir -p '%s/man/man'$s; "
             "cp docs/man/*.$s '%s/man/man'$s/; done; "
             "sed 's|@SBINDIR@|%s|g; s|@SYSCONFDIR@|/etc|g' "
             "contrib/systemd/slawatchd.service > '%s/slawatchd.service' 2>&1",
             srcdir(), tmp, tmp, sbindir, tmp);
    assert_int_equal(run(cmd, &out), 0);
    free(out);

    /* The contract of SPEC section 6 and the daemon's exit codes. */
    static const char *const required[] = {
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=30s",
        "Restart=on-failure",
        "RestartPreventExitStatus=78",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
    };
    char unit[PATH_MAX + 32], exec[PATH_MAX + 64];
    snprintf(unit, sizeof(unit), "%s/slawatchd.service", tmp);
    snprintf(exec, sizeof(exec),
             "ExecStart=%s/slawatchd -c /etc/slawatch/slawatch.yaml", sbindir);
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (!file_has_line(unit, required[i]))
            fail_msg("the unit has no line \"%s\"", required[i]);
    if (!file_has_line(unit, exec))
        fail_msg("the unit has no line \"%s\"", exec);

    snprintf(cmd, sizeof(cmd),
             "MANPATH='%s/man' systemd-analyze verify '%s' 2>&1", tmp, unit);
    int rc = run(cmd, &out);
    if (rc != 0 || *out != '\0') {
        fprintf(stderr, "systemd-analyze verify: status %d\n%s", rc, out);
        fail_msg("systemd-analyze verify is not clean");
    }
    free(out);

    snprintf(cmd, sizeof(cmd),
             "systemd-analyze security --offline=yes '%s' 2>&1", unit);
    rc = run(cmd, &out);
    const char *lvl = strstr(out, "Overall exposure level for slawatchd.service: ");
    double exposure = 99;
    if (rc != 0 || lvl == NULL ||
        sscanf(lvl + strlen("Overall exposure level for slawatchd.service: "),
               "%lf", &exposure) != 1 ||
        exposure > MAX_EXPOSURE) {
        fprintf(stderr, "systemd-analyze security: status %d\n%s", rc, out);
        fail_msg("exposure %.1f, want at most %.1f", exposure, MAX_EXPOSURE);
    }
    printf("exposure %.1f\n", exposure);
    free(out);
}

/* ---- (d) make install / uninstall ---------------------------------------- */

/* Every regular file and symlink under root, as sorted relative paths with
 * their modes: "0644 etc/slawatch/slawatch.yaml\n...". */
static char *
list_tree(const char *root)
{
    char cmd[PATH_MAX + 128], *out = NULL;
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && find . \\( -type f -o -type l \\) -printf '%%#m %%P\\n' "
             "| LC_ALL=C sort -k2",
             root);
    assert_int_equal(run(cmd, &out), 0);
    return out;
}

static int
make_in(const char *target, const char *destdir, char **out)
{
    char cmd[3 * PATH_MAX];
    const char *b = h_build_dir();
    /* -o: use the binaries under test as they are; this checks
     * installation, not the build (which others may be changing). */
    snprintf(cmd, sizeof(cmd),
             "make -C '%s' --no-print-directory %s DESTDIR='%s' PREFIX=/usr "
             "NODEPS=1 BUILD='%s' -o '%s/slawatchd' -o '%s/slawatchctl' 2>&1",
             srcdir(), target, destdir, b, b, b);
    return run(cmd, out);
}

static void
test_make_install(void **state)
{
    const char *dest = *state;
    char *out = NULL, *want = NULL, *got;
    size_t wlen = 0;
    char cmd[4 * PATH_MAX];

    if (make_in("install", dest, &out) != 0) {
        fprintf(stderr, "%s", out);
        fail_msg("make install failed");
    }
    free(out);

    /* Exactly: the binaries, the config, the unit, every manual page and
     * contrib/prometheus/ under the documentation. */
    FILE *m = open_memstream(&want, &wlen);
    assert_non_null(m);
    fprintf(m, "0755 usr/bin/slawatchctl\n0755 usr/sbin/slawatchd\n"
               "0644 etc/slawatch/slawatch.yaml\n"
               "0644 usr/lib/systemd/system/slawatchd.service\n");
    snprintf(cmd, sizeof(cmd), "cd '%s' && ls docs/man", srcdir());
    assert_int_equal(run(cmd, &out), 0);
    int npages = 0;
    for (char *save = NULL, *name = strtok_r(out, "\n", &save); name;
         name = strtok_r(NULL, "\n", &save)) {
        const char *dot = strrchr(name, '.');
        if (dot && dot[1] >= '0' && dot[1] <= '9' && dot[2] == '\0') {
            fprintf(m, "0644 usr/share/man/man%c/%s\n", dot[1], name);
            npages++;
        }
    }
    free(out);
    snprintf(cmd, sizeof(cmd), "cd '%s' && ls contrib/prometheus", srcdir());
    assert_int_equal(run(cmd, &out), 0);
    int nprom = 0;
    for (char *save = NULL, *name = strtok_r(out, "\n", &save); name;
         name = strtok_r(NULL, "\n", &save), nprom++)
        fprintf(m, "0644 usr/share/doc/slawatch/prometheus/%s\n", name);
    free(out);
    fclose(m);
    assert_true(npages >= 3);
    assert_true(nprom >= 5);
    snprintf(cmd, sizeof(cmd), "LC_ALL=C sort -k2 <<'EOF'\n%sEOF\n", want);
    free(want);
    assert_int_equal(run(cmd, &want), 0);
    got = list_tree(dest);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "installed:\n%sexpected:\n%s", got, want);
        fail_msg("make install did not install exactly the expected files");
    }
    free(got);

    /* Placeholders substituted; the installed daemon runs; the config is
     * the documented example. */
    char src[PATH_MAX];
    assert_non_null(realpath(srcdir(), src));
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && u=usr/lib/systemd/system/slawatchd.service"
             " && ! grep -n '@[A-Z]*@' $u"
             " && grep -qx 'ExecStart=/usr/sbin/slawatchd -c "
             "/etc/slawatch/slawatch.yaml' $u"
             " && usr/sbin/slawatchd --version | grep -q '^slawatchd '"
             " && cmp etc/slawatch/slawatch.yaml '%s/conf/slawatch.yaml' 2>&1"
             " && cmp usr/share/doc/slawatch/prometheus/slawatch.rules.yml"
             " '%s/contrib/prometheus/slawatch.rules.yml' 2>&1",
             dest, src, src);
    if (run(cmd, &out) != 0) {
        fprintf(stderr, "%s", out);
        fail_msg("installed files are not as expected");
    }
    free(out);

    /* A second install keeps the operator's edited config. */
    snprintf(cmd, sizeof(cmd),
             "echo '# edited by the operator' >> '%s/etc/slawatch/slawatch.yaml'",
             dest);
    assert_int_equal(run(cmd, &out), 0);
    free(out);
    assert_int_equal(make_in("install", dest, &out), 0);
    free(out);
    snprintf(cmd, sizeof(cmd),
             "tail -n 1 '%s/etc/slawatch/slawatch.yaml' | grep -qx '# edited by the operator'",
             dest);
    assert_int_equal(run(cmd, &out), 0);
    free(out);
    got = list_tree(dest);
    assert_string_equal(got, want);
    free(got);

    /* Uninstall removes what install put there, except the operator's
     * configuration. */
    if (make_in("uninstall", dest, &out) != 0) {
        fprintf(stderr, "%s", out);
        fail_msg("make uninstall failed");
    }
    free(out);
    got = list_tree(dest);
    assert_string_equal(got, "0644 etc/slawatch/slawatch.yaml\n");
    free(got);
    free(want);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_notify_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_for_another_pid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_status_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_tightens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_loosens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_broken_keeps_old, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unit_file, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_make_install, tmp_setup,
                                        tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
