/*
 * rds.c - asynchronous Redis connections (see rds.h). Owns the hiredis
 * contexts, their time-outs and the durable command queue. Must never free
 * a context from inside its own callback (hiredis defers that itself: a
 * free inside a callback runs when the callback returns) and must treat
 * every reply as possibly NULL or an error.
 *
 *   rds_start -> connect -> [AUTH] -> SELECT -> PING -> READY -> on_ready()
 *        ^                        (LOADING: PING again)   |
 *        +------ retry timer (backoff) <-- lost / timed out -+-> on_down()
 *
 * Every reply callback of the durable queue gets its own command as
 * privdata, with the connection generation it was sent on, so replies of a
 * connection already replaced are recognised and ignored.
 */
#define _GNU_SOURCE
#include "slawatch/rds.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <hiredis/adapters/libevent.h>

#include "slawatch/argv.h"
#include "slawatch/sentinel.h"

#define SENTINEL_TIMEOUT_MS 300

#define RDS_BACKOFF_MIN_MS 100
#define RDS_BACKOFF_MAX_MS 5000
/* A connection must have been ready this long before its loss resets the
 * reconnect backoff: one that is dropped right after each handshake (a
 * reply that makes the caller reset it) backs off like a failed connect. */
#define RDS_STABLE_MS 10000
#define RDS_WATCH_MS 500
#define RDS_LOADING_PING_MS 250
#define RDS_HARD_CAP_FACTOR 4
/* <prefix>writes:dead: the RESP of a command moved aside is kept up to
 * this many bytes; the stream is capped near RDS_DEAD_MAXLEN entries. */
#define RDS_DEAD_RESP_MAX (16u << 10)
#define RDS_DEAD_MAXLEN "10000"

struct rds_cmd {
    struct rds_cmd *prev, *next;
    struct rds_conn *conn;
    rds_reply_fn *fn;
    void *privdata;
    size_t len;
    char *buf;                      /* RESP-formatted command */
    uint64_t gen;                   /* connection it was sent on */
    unsigned flags;
    bool inflight;
    bool told;                      /* fn has seen a reply */
    bool no_dead;                   /* a dead letter itself: dropped instead */
    int failures;
    char name[24];                  /* for logs: command and key */
    char key[96];
};

static void rds_connect(struct rds_conn *conn);
static void flush_queue(struct rds_conn *conn);
static void probe(struct rds_conn *conn);

static char *
dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rds_connect(arg);
}

static void watch_cb(evutil_socket_t fd, short what, void *arg);
static void ping_cb(evutil_socket_t fd, short what, void *arg);

static void
stall_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    probe(arg);
}

int
rds_init(struct rds_conn *conn, struct event_base *base,
         const struct cfg_redis *cfg, const char *name,
         void (*on_ready)(struct rds_conn *, void *),
         void (*on_down)(struct rds_conn *, void *), void *arg)
{
    memset(conn, 0, sizeof(*conn));
    conn->name = name;
    conn->base = base;
    conn->cfg = *cfg;
    conn->cfg.host = dup_or_null(cfg->host);
    conn->cfg.unix_path = dup_or_null(cfg->unix_path);
    conn->cfg.username = dup_or_null(cfg->username);
    conn->cfg.password = dup_or_null(cfg->password);
    conn->cfg.prefix = dup_or_null(cfg->prefix);
    conn->cfg.master_name = dup_or_null(cfg->master_name);
    conn->cfg.password_file = NULL; /* not needed here; the config's own may be freed */
    for (size_t i = 0; i < cfg->nsentinels; i++)
        if ((conn->cfg.sentinel_host[i] = dup_or_null(cfg->sentinel_host[i])) == NULL)
            return -1;
    conn->on_ready = on_ready;
    conn->on_down = on_down;
    conn->arg = arg;
    conn->max_queued_bytes = RDS_DEFAULT_MAX_QUEUED;
    conn->backoff_ms = RDS_BACKOFF_MIN_MS;
    conn->stall_backoff_ms = RDS_BACKOFF_MIN_MS;
    conn->err_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(60, 5);
    conn->dead_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 20);
    conn->conn_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(60, 10);
    conn->retry_ev = evtimer_new(base, retry_cb, conn);
    conn->watch_ev = event_new(base, -1, EV_PERSIST, watch_cb, conn);
    conn->ping_ev = evtimer_new(base, ping_cb, conn);
    conn->stall_ev = evtimer_new(base, stall_cb, conn);
    if ((cfg->host && !conn->cfg.host) || (cfg->unix_path && !conn->cfg.unix_path) ||
        (cfg->username && !conn->cfg.username) ||
        (cfg->password && !conn->cfg.password) || (cfg->prefix && !conn->cfg.prefix) ||
        !conn->retry_ev || !conn->watch_ev || !conn->ping_ev || !conn->stall_ev)
        return -1;
    return 0;
}

void
rds_set_max_queued(struct rds_conn *conn, size_t bytes)
{
    conn->max_queued_bytes = bytes;
}

static void
tv_ms(struct timeval *tv, int64_t ms)
{
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

static void
schedule_retry(struct rds_conn *conn)
{
    struct timeval tv;
    if (conn->state == RDS_CLOSED)
        return;
    conn->state = RDS_DOWN;
    tv_ms(&tv, conn->backoff_ms);
    evtimer_add(conn->retry_ev, &tv);
    conn->backoff_ms *= 2;
    if (conn->backoff_ms > RDS_BACKOFF_MAX_MS)
        conn->backoff_ms = RDS_BACKOFF_MAX_MS;
}

/* Logs a line about the connection itself, at most conn_rl's rate. */
static void
conn_log(struct rds_conn *conn, enum log_level level, const char *fmt, const char *a,
         const char *b)
{
    long suppressed;
    if (!log_ratelimit_ok(&conn->conn_rl, &suppressed))
        return;
    if (suppressed)
        log_warnx("redis %s: %ld more connection messages not logged", conn->name,
                  suppressed);
    char line[512];
    snprintf(line, sizeof(line), fmt, a ? a : "", b ? b : "");
    switch (level) {
    case LOG_LVL_ERR: log_err("redis %s: %s", conn->name, line); break;
    case LOG_LVL_WARNING: log_warnx("redis %s: %s", conn->name, line); break;
    case LOG_LVL_NOTICE: log_notice("redis %s: %s", conn->name, line); break;
    default: log_info("redis %s: %s", conn->name, line); break;
    }
}

/* The connection is gone (failed connect, dropped, timed out, reset): every
 * unanswered durable command goes again on the next one. */
static void
conn_lost(struct rds_conn *conn, const char *why)
{
    bool was_up = conn->state == RDS_READY;
    int64_t now = now_mono_us();
    conn->ac = NULL;
    conn->inflight = 0;
    conn->durable_inflight = 0;
    conn->probe = NULL;
    for (struct rds_cmd *cmd = conn->head; cmd; cmd = cmd->next)
        cmd->inflight = false;
    conn->unsent = conn->head;
    conn->attempts++;
    evtimer_del(conn->ping_ev);
    if (conn->state == RDS_CLOSED)
        return;
    if (was_up)
        conn->lost_total++;
    snprintf(conn->last_error, sizeof(conn->last_error), "%s", why);
    /* The backoff starts over only after a connection that was useful for
     * a while; one dropped right after its handshake keeps backing off. */
    if (was_up && now - conn->ready_since_us >= (int64_t)RDS_STABLE_MS * 1000)
        conn->backoff_ms = RDS_BACKOFF_MIN_MS;
    if (was_up || conn->attempts == 1)
        conn_log(conn, LOG_LVL_WARNING, "%s %s; retrying with backoff",
                 was_up ? "connection lost:" : "cannot connect:", why);
    schedule_retry(conn);
    if (was_up && conn->on_down)
        conn->on_down(conn, conn->arg);
}

/* Drops the context now. Its pending callbacks run with NULL replies and
 * find it is no longer current. */
static void
hard_reset(struct rds_conn *conn, const char *why)
{
    redisAsyncContext *ac = conn->ac;
    if (conn->state == RDS_CLOSED)
        return;
    if (ac == NULL) {
        if (conn->state != RDS_DOWN)
            conn_lost(conn, why);
        return;
    }
    conn->ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
    conn_lost(conn, why);
}

static void
disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct rds_conn *conn = ac->data;
    (void)status;
    if (conn == NULL || conn->ac != ac)
        return;
    conn_lost(conn, ac->errstr[0] ? ac->errstr : "closed by server");
}

static bool
error_is(const char *err, const char *word)
{
    size_t n = strlen(word);
    return err && strncmp(err, word, n) == 0 && (err[n] == ' ' || err[n] == '\0');
}

/* Errors that a later try can cure without anyone touching our keys:
 * memory, permissions, a replica or a cluster in transition, a busy
 * script, a failing RDB save. Retried for as long as they last. */
static bool
error_transient(const char *err)
{
    static const char *const words[] = {
        "OOM", "NOPERM", "NOAUTH", "READONLY", "BUSY", "MASTERDOWN", "NOREPLICAS",
        "TRYAGAIN", "CLUSTERDOWN", "MISCONF", "LOADING", "NOSCRIPT", "UNBLOCKED",
    };
    for (size_t i = 0; i < ARRAY_LEN(words); i++)
        if (error_is(err, words[i]))
            return true;
    /* NOPERM met inside the fence script (lease.c) comes back as ERR. */
    if (err && strstr(err, "can't run this command") != NULL)
        return true;
    return false;
}

/* ---- the handshake ------------------------------------------------------ */

static void become_ready(struct rds_conn *conn);

static void
handshake_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rds_conn *conn = privdata;
    redisReply *reply = r;
    if (reply == NULL || conn->ac != ac || conn->state != RDS_HANDSHAKE)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        conn_log(conn, LOG_LVL_ERR, "AUTH: %s%s", reply->str, NULL);
        hard_reset(conn, reply->str);
    }
}

static void
send_ping(struct rds_conn *conn);

static void
ping_reply_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rds_conn *conn = privdata;
    redisReply *reply = r;
    if (reply == NULL || conn->ac != ac || conn->state != RDS_HANDSHAKE)
        return;
    if (reply->type == REDIS_REPLY_ERROR && error_is(reply->str, "LOADING")) {
        /* Redis is reading its RDB or AOF: not ready yet, and not an error. */
        if (!conn->loading)
            log_notice("redis %s: Redis is loading its dataset; waiting for it",
                       conn->name);
        conn->loading = true;
        conn->state_since_us = now_mono_us(); /* loading is not a time-out */
        struct timeval tv;
        tv_ms(&tv, RDS_LOADING_PING_MS);
        evtimer_add(conn->ping_ev, &tv);
        return;
    }
    /* PONG, or an error that is not about loading (an ACL without +ping):
     * either way Redis is serving commands. */
    become_ready(conn);
}

static void
send_ping(struct rds_conn *conn)
{
    if (conn->ac == NULL || conn->state != RDS_HANDSHAKE)
        return;
    if (redisAsyncCommand(conn->ac, ping_reply_cb, conn, "PING") != REDIS_OK)
        hard_reset(conn, "cannot send PING");
}

static void
ping_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    send_ping(arg);
}

static void
select_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rds_conn *conn = privdata;
    redisReply *reply = r;
    if (reply == NULL || conn->ac != ac || conn->state != RDS_HANDSHAKE)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        conn_log(conn, LOG_LVL_ERR, "SELECT: %s%s", reply->str, NULL);
        hard_reset(conn, reply->str);
        return;
    }
    send_ping(conn);
}

static void
become_ready(struct rds_conn *conn)
{
    char n[16];
    conn->state = RDS_READY;
    conn->ready_since_us = now_mono_us();
    conn->progress_us = conn->ready_since_us;
    if (conn->loading)
        log_notice("redis %s: Redis has loaded its dataset", conn->name);
    conn->loading = false;
    snprintf(n, sizeof(n), "%d", conn->attempts);
    if (conn->was_ready && conn->attempts > 0)
        conn_log(conn, LOG_LVL_NOTICE, "connection restored after %s attempt%s", n,
                 conn->attempts == 1 ? "" : "s");
    else if (!conn->was_ready)
        log_info("redis %s: connected", conn->name);
    conn->was_ready = true;
    conn->attempts = 0;
    if (conn->stalled) {
        if (!evtimer_pending(conn->stall_ev, NULL))
            probe(conn);
    } else {
        flush_queue(conn);
    }
    if (conn->on_ready)
        conn->on_ready(conn, conn->arg);
}

/* TCP keepalive: a peer that vanished (host down, cable pulled) is noticed
 * in about 11 s even while idle; TCP_USER_TIMEOUT drops a connection whose
 * data stays unacknowledged for 10 s. A peer that is alive but not
 * answering (SIGSTOP, a long script) is the reply deadline's business. */
static void
set_keepalive(int fd)
{
    int on = 1, idle = 5, intvl = 2, cnt = 3;
    unsigned int user_timeout = 10000;
    if (fd < 0)
        return;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
                   sizeof(user_timeout)) < 0)
        log_debug("redis: cannot set TCP keepalive: %s", strerror(errno));
}

static void
connect_cb(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct rds_conn *conn = ac->data;
    if (conn == NULL || conn->ac != ac)
        return;
    if (status != REDIS_OK) {
        conn_lost(conn, ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    conn->state = RDS_HANDSHAKE;
    conn->state_since_us = now_mono_us();
    if (conn->cfg.password) {
        if (conn->cfg.username)
            redisAsyncCommand(ac, handshake_cb, conn, "AUTH %s %s",
                              conn->cfg.username, conn->cfg.password);
        else
            redisAsyncCommand(ac, handshake_cb, conn, "AUTH %s", conn->cfg.password);
    }
    redisAsyncCommand(ac, select_cb, conn, "SELECT %d", conn->cfg.db);
}

static void
rds_connect(struct rds_conn *conn)
{
    redisAsyncContext *ac;
    if (conn->state == RDS_CLOSED)
        return;
    conn->state = RDS_CONNECTING;
    conn->state_since_us = now_mono_us();
    conn->gen++;
    if (conn->cfg.nsentinels) {
        /* Every attempt asks the sentinels again: after a failover the
         * master is elsewhere. */
        char host[256], err[1024];
        int port;
        if (sentinel_find_master(&conn->cfg, SENTINEL_TIMEOUT_MS, host, sizeof(host), &port,
                                 err, sizeof(err)) < 0) {
            conn->ac = NULL;
            conn_lost(conn, err);
            return;
        }
        bool moved = conn->master_port != 0 &&
                     (conn->master_port != port || strcmp(conn->master_host, host) != 0);
        if (conn->master_port != port || strcmp(conn->master_host, host) != 0)
            log_notice("redis %s: master %s is %s:%d (Sentinel)", conn->name,
                       conn->cfg.master_name, host, port);
        snprintf(conn->master_host, sizeof(conn->master_host), "%s", host);
        conn->master_port = port;
        if (moved && conn->on_master_change)
            conn->on_master_change(conn, conn->arg);
        ac = redisAsyncConnect(conn->master_host, conn->master_port);
    } else if (conn->cfg.unix_path)
        ac = redisAsyncConnectUnix(conn->cfg.unix_path);
    else
        ac = redisAsyncConnect(conn->cfg.host, conn->cfg.port);
    if (ac == NULL) {
        conn->ac = NULL;
        conn_lost(conn, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        conn->ac = NULL;
        conn_lost(conn, why);
        return;
    }
    ac->data = conn;
    conn->ac = ac;
    if (redisLibeventAttach(ac, conn->base) != REDIS_OK) {
        redisAsyncFree(ac);
        conn->ac = NULL;
        conn_lost(conn, "cannot attach to the event loop");
        return;
    }
    if (!conn->cfg.unix_path)
        set_keepalive(ac->c.fd);
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
}

/* ---- time-outs ---------------------------------------------------------- */

static long
outstanding(const struct rds_conn *conn)
{
    return conn->inflight + conn->durable_inflight;
}

static void
watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rds_conn *conn = arg;
    int64_t now = now_mono_us();
    char why[96];
    (void)fd;
    (void)what;
    switch (conn->state) {
    case RDS_CONNECTING:
    case RDS_HANDSHAKE:
        if (now - conn->state_since_us > (int64_t)RDS_CONNECT_TIMEOUT_MS * 1000) {
            snprintf(why, sizeof(why), "no answer to the %s within %d s",
                     conn->state == RDS_CONNECTING ? "connect" : "handshake",
                     RDS_CONNECT_TIMEOUT_MS / 1000);
            hard_reset(conn, why);
        }
        break;
    case RDS_READY: {
        int64_t since = conn->progress_us > conn->grace_until_us ? conn->progress_us
                                                                 : conn->grace_until_us;
        if (outstanding(conn) > 0 && now - since > (int64_t)RDS_REPLY_TIMEOUT_MS * 1000) {
            snprintf(why, sizeof(why), "no reply for %d s (%ld commands outstanding)",
                     RDS_REPLY_TIMEOUT_MS / 1000, outstanding(conn));
            hard_reset(conn, why);
        }
        break;
    }
    default:
        break;
    }
}

void
rds_start(struct rds_conn *conn)
{
    struct timeval tv;
    tv_ms(&tv, RDS_WATCH_MS);
    event_add(conn->watch_ev, &tv);
    rds_connect(conn);
}

static void
free_cmd(struct rds_cmd *cmd)
{
    redisFreeCommand(cmd->buf);
    free(cmd);
}

void
rds_close(struct rds_conn *conn)
{
    redisAsyncContext *ac = conn->ac;
    conn->state = RDS_CLOSED;
    conn->ac = NULL;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    struct event **evs[] = { &conn->retry_ev, &conn->watch_ev, &conn->ping_ev,
                             &conn->stall_ev };
    for (size_t i = 0; i < ARRAY_LEN(evs); i++) {
        if (*evs[i])
            event_free(*evs[i]);
        *evs[i] = NULL;
    }
    while (conn->head) {
        struct rds_cmd *next = conn->head->next;
        free_cmd(conn->head);
        conn->head = next;
    }
    conn->tail = conn->unsent = conn->probe = NULL;
    conn->queued = conn->queued_bytes = 0;
    free(conn->cfg.host);
    free(conn->cfg.unix_path);
    free(conn->cfg.username);
    free(conn->cfg.password);
    free(conn->cfg.master_name);
    for (size_t i = 0; i < conn->cfg.nsentinels; i++)
        free(conn->cfg.sentinel_host[i]);
    free(conn->prefix_fmt);
    conn->prefix_fmt = NULL;
    conn->prefix_len = 0;
    conn->prefix_n = 0;
    free(conn->cfg.prefix);
    memset(&conn->cfg, 0, sizeof(conn->cfg));
}

void
rds_reset(struct rds_conn *conn)
{
    hard_reset(conn, "reset after an unusable reply");
}

/* ---- commands without a queue ------------------------------------------- */

struct send_ctx {
    struct rds_conn *conn;
    uint64_t gen;
    rds_reply_fn *fn;
    void *privdata;
};

static void
send_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct send_ctx *ctx = privdata;
    struct rds_conn *conn = ctx->conn;
    redisReply *reply = r;
    bool current = conn->ac == ac && ctx->gen == conn->gen && ac != NULL;
    if (current) {
        if (conn->inflight > 0)
            conn->inflight--;
        if (reply)
            conn->progress_us = now_mono_us();
    }
    if (current && reply && reply->type == REDIS_REPLY_ERROR &&
        error_is(reply->str, "LOADING")) {
        /* Not an answer: Redis is (re)loading. The caller hears of a lost
         * connection and asks again once the handshake saw it loaded. */
        if (ctx->fn)
            ctx->fn(conn, NULL, ctx->privdata);
        free(ctx);
        hard_reset(conn, "Redis is loading its dataset");
        return;
    }
    /* A connection already replaced answers nothing (hiredis hands its
     * pending callbacks NULL anyway). */
    if (ctx->fn)
        ctx->fn(conn, current ? reply : NULL, ctx->privdata);
    free(ctx);
    /* A master a failover demoted: find the new one. */
    if (current && reply && reply->type == REDIS_REPLY_ERROR && conn->cfg.nsentinels &&
        error_is(reply->str, "READONLY") && conn->ac == ac)
        hard_reset(conn, "the master was demoted (READONLY)");
}

int
rds_send_block(struct rds_conn *conn, int block_ms, rds_reply_fn *fn, void *privdata,
               int argc, const char **argv, const size_t *argvlen)
{
    if (conn->state != RDS_READY || conn->ac == NULL)
        return -1;
    struct send_ctx *ctx = malloc(sizeof(*ctx));
    if (ctx == NULL)
        return -1;
    ctx->conn = conn;
    ctx->gen = conn->gen;
    ctx->fn = fn;
    ctx->privdata = privdata;
    bool idle = outstanding(conn) == 0;
    if (redisAsyncCommandArgv(conn->ac, send_cb, ctx, argc, argv, argvlen) != REDIS_OK) {
        free(ctx);
        return -1;
    }
    int64_t now = now_mono_us();
    if (idle)
        conn->progress_us = now;
    if (block_ms > 0 && now + (int64_t)block_ms * 1000 > conn->grace_until_us)
        conn->grace_until_us = now + (int64_t)block_ms * 1000;
    conn->inflight++;
    return 0;
}

int
rds_send(struct rds_conn *conn, rds_reply_fn *fn, void *privdata, int argc,
         const char **argv, const size_t *argvlen)
{
    return rds_send_block(conn, 0, fn, privdata, argc, argv, argvlen);
}

/* A RESP command (`cmd`, `len` bytes, as redisFormatCommandArgv makes it)
 * with the fence's arguments put in after its array header:
 * "*<n + prefix>\r\n" prefix args. Returns a malloc'ed buffer (length in
 * *out_len), or NULL on allocation failure or a buffer that is no command. */
static char *
fenced(const struct rds_conn *conn, const char *cmd, size_t len, size_t *out_len)
{
    const char *body = memchr(cmd, '\n', len);
    if (body == NULL || cmd[0] != '*')
        return NULL;
    long argc = strtol(cmd + 1, NULL, 10);
    size_t head = (size_t)(body + 1 - cmd);
    char hdr[32];
    int hl = snprintf(hdr, sizeof(hdr), "*%ld\r\n", argc + conn->prefix_n);
    size_t total = (size_t)hl + conn->prefix_len + len - head;
    char *buf = malloc(total);
    if (buf == NULL)
        return NULL;
    memcpy(buf, hdr, (size_t)hl);
    memcpy(buf + hl, conn->prefix_fmt, conn->prefix_len);
    memcpy(buf + hl + conn->prefix_len, cmd + head, len - head);
    *out_len = total;
    return buf;
}

int
rds_send_write(struct rds_conn *conn, rds_reply_fn *fn, void *privdata, int argc,
               const char **argv, const size_t *argvlen)
{
    if (conn->prefix_n == 0)
        return rds_send(conn, fn, privdata, argc, argv, argvlen);
    if (conn->state != RDS_READY || conn->ac == NULL)
        return -1;
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0)
        return -1;
    size_t total = 0;
    char *buf = fenced(conn, cmd, (size_t)len, &total);
    redisFreeCommand(cmd);
    struct send_ctx *ctx = buf ? malloc(sizeof(*ctx)) : NULL;
    if (ctx == NULL) {
        free(buf);
        return -1;
    }
    ctx->conn = conn;
    ctx->gen = conn->gen;
    ctx->fn = fn;
    ctx->privdata = privdata;
    bool idle = outstanding(conn) == 0;
    int rc = redisAsyncFormattedCommand(conn->ac, send_cb, ctx, buf, total);
    free(buf);
    if (rc != REDIS_OK) {
        free(ctx);
        return -1;
    }
    if (idle)
        conn->progress_us = now_mono_us();
    conn->inflight++;
    return 0;
}

/* ---- the durable queue --------------------------------------------------- */

static void
list_remove(struct rds_conn *conn, struct rds_cmd *cmd)
{
    if (conn->unsent == cmd)
        conn->unsent = cmd->next;
    if (conn->probe == cmd)
        conn->probe = NULL;
    if (cmd->prev)
        cmd->prev->next = cmd->next;
    else
        conn->head = cmd->next;
    if (cmd->next)
        cmd->next->prev = cmd->prev;
    else
        conn->tail = cmd->prev;
    cmd->prev = cmd->next = NULL;
    conn->queued--;
    conn->queued_bytes -= cmd->len;
}

static void queue_cb(redisAsyncContext *ac, void *r, void *privdata);

static int
send_cmd(struct rds_conn *conn, struct rds_cmd *cmd)
{
    bool idle = outstanding(conn) == 0;
    int rc;
    if (conn->prefix_len > 0) {
        /* The command as queued, fenced as it goes. */
        size_t total = 0;
        char *buf = fenced(conn, cmd->buf, cmd->len, &total);
        if (buf == NULL)
            return -1; /* tried again at the next flush */
        rc = redisAsyncFormattedCommand(conn->ac, queue_cb, cmd, buf, total);
        free(buf);
    } else {
        rc = redisAsyncFormattedCommand(conn->ac, queue_cb, cmd, cmd->buf, cmd->len);
    }
    if (rc != REDIS_OK)
        return -1; /* the context is going away; sent again on reconnect */
    if (idle)
        conn->progress_us = now_mono_us();
    cmd->inflight = true;
    cmd->gen = conn->gen;
    conn->durable_inflight++;
    conn->unsent = cmd->next;
    return 0;
}

/* Sends every unsent command, pipelined, up to a barrier whose
 * predecessors are not all accepted yet. Nothing while stalled. */
static void
flush_queue(struct rds_conn *conn)
{
    if (conn->state != RDS_READY || conn->ac == NULL || conn->stalled)
        return;
    while (conn->unsent) {
        struct rds_cmd *cmd = conn->unsent;
        if ((cmd->flags & RDS_BARRIER) && cmd != conn->head)
            break;
        if (send_cmd(conn, cmd) < 0)
            break;
    }
}

/* A stalled queue with nothing in flight sends its oldest command alone. */
static void
probe(struct rds_conn *conn)
{
    if (!conn->stalled || conn->state != RDS_READY || conn->ac == NULL ||
        conn->durable_inflight > 0 || conn->probe)
        return;
    if (conn->head == NULL) {
        conn->stalled = false;
        return;
    }
    conn->unsent = conn->head;
    if (send_cmd(conn, conn->head) == 0)
        conn->probe = conn->head;
}

static void
unstall(struct rds_conn *conn)
{
    long long secs = (now_wall_ms() - conn->stalled_since_ms) / 1000;
    conn->stalled = false;
    conn->probe = NULL;
    conn->stall_backoff_ms = RDS_BACKOFF_MIN_MS;
    evtimer_del(conn->stall_ev);
    log_notice("redis %s: Redis accepts writes again (%llu refused over %lld s; "
               "%zu writes queued)", conn->name, (unsigned long long)conn->stall_errors,
               secs, conn->queued);
    conn->stall_errors = 0;
    flush_queue(conn);
}

/* After a reply or a give-up while stalled: once nothing is in flight, the
 * next probe goes after the backoff. */
static void
stall_check(struct rds_conn *conn)
{
    if (!conn->stalled) {
        flush_queue(conn);
        return;
    }
    if (conn->head == NULL) {
        unstall(conn);
        return;
    }
    if (conn->durable_inflight > 0 || conn->probe || evtimer_pending(conn->stall_ev, NULL))
        return;
    struct timeval tv;
    tv_ms(&tv, conn->stall_backoff_ms);
    evtimer_add(conn->stall_ev, &tv);
    conn->stall_backoff_ms *= 2;
    if (conn->stall_backoff_ms > RDS_BACKOFF_MAX_MS)
        conn->stall_backoff_ms = RDS_BACKOFF_MAX_MS;
}

static void queue_append(struct rds_conn *conn, struct rds_cmd *cmd);
static struct rds_cmd *cmd_new(struct rds_conn *conn, unsigned flags, rds_reply_fn *fn,
                               void *privdata, int argc, const char **argv,
                               const size_t *argvlen);

/* Moves a command that no retry can cure into <prefix>writes:dead (itself
 * a durable command; when that one fails too, it is only logged). */
static void
move_aside(struct rds_conn *conn, struct rds_cmd *cmd, const char *err)
{
    long suppressed;
    char key[KEY_MAX + 16], tries[16];
    bool keep = !cmd->no_dead && conn->cfg.prefix;
    conn->dead_total++;
    if (log_ratelimit_ok(&conn->dead_rl, &suppressed)) {
        if (suppressed)
            log_err("redis %s: %ld more writes given up, not logged", conn->name,
                    suppressed);
        log_err("redis %s: giving up %s %s after %d tries: %s; %s", conn->name,
                cmd->name, cmd->key, cmd->failures, err,
                keep ? "moved to writes:dead" : "dropped");
    }
    list_remove(conn, cmd);
    if (keep) {
        size_t resp_len = cmd->len > RDS_DEAD_RESP_MAX ? RDS_DEAD_RESP_MAX : cmd->len;
        snprintf(key, sizeof(key), "%swrites:dead", conn->cfg.prefix);
        snprintf(tries, sizeof(tries), "%d", cmd->failures);
        const char *argv[] = { "XADD", key, "MAXLEN", "~", RDS_DEAD_MAXLEN, "*",
                               "command", cmd->name, "key", cmd->key, "error", err,
                               "tries", tries, "resp", cmd->buf, "truncated",
                               resp_len < cmd->len ? "1" : "0" };
        size_t lens[ARRAY_LEN(argv)];
        for (size_t i = 0; i < ARRAY_LEN(argv); i++)
            lens[i] = strlen(argv[i]);
        lens[15] = resp_len;
        struct rds_cmd *dead = cmd_new(conn, 0, NULL, NULL, (int)ARRAY_LEN(argv), argv, lens);
        if (dead) {
            dead->no_dead = true;
            queue_append(conn, dead);
        } else {
            log_err("redis %s: cannot keep the write given up: out of memory", conn->name);
        }
    }
    free_cmd(cmd);
}

static void
cmd_failed(struct rds_conn *conn, struct rds_cmd *cmd, redisReply *reply)
{
    long suppressed;
    const char *err = reply->str ? reply->str : "error";
    if (conn->on_error)
        conn->on_error(conn, reply, conn->arg); /* FENCED: the wiring steps down */
    if (conn->cfg.nsentinels && error_is(err, "READONLY")) {
        /* A master a failover demoted: the command stays first in the
         * queue and goes to the new master once the connection finds it. */
        hard_reset(conn, "the master was demoted (READONLY)");
        return;
    }
    if (error_is(err, "LOADING")) {
        /* Not a refusal: Redis restarted and is loading. The handshake
         * waits for it; the command goes again. */
        hard_reset(conn, "Redis is loading its dataset");
        return;
    }
    cmd->failures++;
    conn->write_errors++;
    conn->stall_errors++;
    snprintf(conn->last_error, sizeof(conn->last_error), "%s %s: %s", cmd->name, cmd->key,
             err);
    /* One line when the stall begins and one per failed probe, at most
     * err_rl's rate: the other commands in flight meanwhile fail for the
     * same reason. */
    bool worth_a_line = !conn->stalled || conn->probe == cmd;
    if (conn->probe == cmd)
        conn->probe = NULL;
    /* Held before the caller hears of it, so nothing it queues now
     * overtakes this command. */
    if (!conn->stalled) {
        conn->stalled = true;
        conn->stalled_since_ms = now_wall_ms();
    }
    if (cmd->fn && !cmd->told) {
        cmd->told = true;
        cmd->fn(conn, reply, cmd->privdata);
    }
    if (!error_transient(err) && cmd->failures >= RDS_MAX_TRIES) {
        move_aside(conn, cmd, err);
        conn->stall_backoff_ms = RDS_BACKOFF_MIN_MS; /* the next one is another story */
    } else if (worth_a_line && log_ratelimit_ok(&conn->err_rl, &suppressed)) {
        if (suppressed)
            log_warnx("redis %s: %ld more refused writes not logged", conn->name,
                      suppressed);
        log_warnx("redis %s: %s %s refused: %s; writes are held and retried with "
                  "backoff (%zu queued)", conn->name, cmd->name, cmd->key, err,
                  conn->queued);
    }
    stall_check(conn);
}

/* A durable command's reply (privdata: the command). */
static void
queue_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rds_cmd *cmd = privdata;
    struct rds_conn *conn = cmd->conn;
    redisReply *reply = r;
    if (reply == NULL || ac == NULL || conn->ac != ac || !cmd->inflight ||
        cmd->gen != conn->gen)
        return; /* a connection going or gone: conn_lost sends it again */
    cmd->inflight = false;
    conn->durable_inflight--;
    conn->progress_us = now_mono_us();
    if (reply->type == REDIS_REPLY_ERROR) {
        cmd_failed(conn, cmd, reply);
        return;
    }
    bool was_probe = conn->probe == cmd;
    list_remove(conn, cmd);
    if (cmd->fn && !cmd->told)
        cmd->fn(conn, reply, cmd->privdata);
    free_cmd(cmd);
    if (conn->stalled && was_probe)
        unstall(conn);
    else
        stall_check(conn);
}

static struct rds_cmd *
cmd_new(struct rds_conn *conn, unsigned flags, rds_reply_fn *fn, void *privdata, int argc,
        const char **argv, const size_t *argvlen)
{
    struct rds_cmd *cmd = calloc(1, sizeof(*cmd));
    if (cmd == NULL)
        return NULL;
    int len = redisFormatCommandArgv(&cmd->buf, argc, argv, argvlen);
    if (len < 0) {
        free(cmd);
        return NULL;
    }
    cmd->len = (size_t)len;
    cmd->conn = conn;
    cmd->fn = fn;
    cmd->privdata = privdata;
    cmd->flags = flags;
    for (int i = 0; i < 2 && i < argc; i++) {
        char *dst = i == 0 ? cmd->name : cmd->key;
        size_t cap = i == 0 ? sizeof(cmd->name) : sizeof(cmd->key);
        size_t n = argvlen ? argvlen[i] : strlen(argv[i]);
        if (n >= cap)
            n = cap - 1;
        memcpy(dst, argv[i], n);
        dst[n] = '\0';
        for (size_t k = 0; k < n; k++) /* for logs: printable only */
            if ((unsigned char)dst[k] < 0x20 || (unsigned char)dst[k] == 0x7f)
                dst[k] = '?';
    }
    return cmd;
}

int
rds_queue_ex(struct rds_conn *conn, unsigned flags, rds_reply_fn *fn, void *privdata,
             int argc, const char **argv, const size_t *argvlen)
{
    if (conn->state == RDS_CLOSED)
        return -1;
    if (conn->queued_bytes > conn->max_queued_bytes * RDS_HARD_CAP_FACTOR) {
        conn->dropped++;
        return -1;
    }
    struct rds_cmd *cmd = cmd_new(conn, flags, fn, privdata, argc, argv, argvlen);
    if (cmd == NULL)
        return -1;
    queue_append(conn, cmd);
    return 0;
}

int
rds_set_prefix(struct rds_conn *conn, const char **argv, const size_t *lens, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += 32 + lens[i];
    free(conn->prefix_fmt);
    conn->prefix_fmt = NULL;
    conn->prefix_len = 0;
    conn->prefix_n = 0;
    if (n == 0)
        return 0;
    if ((conn->prefix_fmt = malloc(len)) == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        int w = snprintf(conn->prefix_fmt + conn->prefix_len, 32, "$%zu\r\n", lens[i]);
        conn->prefix_len += (size_t)w;
        memcpy(conn->prefix_fmt + conn->prefix_len, argv[i], lens[i]);
        conn->prefix_len += lens[i];
        memcpy(conn->prefix_fmt + conn->prefix_len, "\r\n", 2);
        conn->prefix_len += 2;
    }
    conn->prefix_n = n;
    return 0;
}

int
rds_queue(struct rds_conn *conn, rds_reply_fn *fn, void *privdata, int argc,
          const char **argv, const size_t *argvlen)
{
    return rds_queue_ex(conn, 0, fn, privdata, argc, argv, argvlen);
}

void
rds_foreach_queued(const struct rds_conn *conn,
                   void (*fn)(void *arg, const char *buf, size_t len), void *arg)
{
    for (const struct rds_cmd *cmd = conn->head; cmd; cmd = cmd->next)
        fn(arg, cmd->buf, cmd->len);
}

static void
queue_append(struct rds_conn *conn, struct rds_cmd *cmd)
{
    cmd->next = NULL;
    cmd->prev = conn->tail;
    if (conn->tail)
        conn->tail->next = cmd;
    else
        conn->head = cmd;
    conn->tail = cmd;
    if (conn->unsent == NULL)
        conn->unsent = cmd;
    conn->queued++;
    conn->queued_bytes += cmd->len;
    flush_queue(conn);
}

bool
rds_problem(const struct rds_conn *conn, char *buf, size_t len)
{
    buf[0] = '\0';
    if (conn->loading)
        snprintf(buf, len, "Redis is loading its dataset");
    else if (conn->state != RDS_READY && conn->state != RDS_CLOSED &&
             (conn->was_ready || conn->attempts > 0))
        snprintf(buf, len, "redis %s down: %s", conn->name, conn->last_error);
    else if (conn->stalled)
        snprintf(buf, len, "writes refused: %s", conn->last_error);
    return buf[0] != '\0';
}
