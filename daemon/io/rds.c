/*
 * rds.c - asynchronous Redis connections (see rds.h). Owns the hiredis
 * contexts and the durable command queue. Must never free a context from
 * inside its own callback (hiredis defers that itself) and must treat every
 * reply as possibly NULL or an error.
 *
 *   rds_start -> connect -> [AUTH] -> SELECT -> READY -> on_ready()
 *        ^                                        |
 *        +------ retry timer (backoff) <--- lost -+-> on_down()
 */
#define _GNU_SOURCE
#include "slawatch/rds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>

#include "slawatch/log.h"
#include "slawatch/sentinel.h"

#define SENTINEL_TIMEOUT_MS 300

#define RDS_BACKOFF_MIN_MS 100
#define RDS_BACKOFF_MAX_MS 5000
#define RDS_DEFAULT_MAX_QUEUED (256u << 20)

struct rds_cmd {
    struct rds_cmd *next;
    rds_reply_fn *fn;
    void *privdata;
    size_t len;
    char *buf;                      /* RESP-formatted command */
};

static void rds_connect(struct rds_conn *conn);

static char *
dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
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
    for (size_t i = 0; i < cfg->nsentinels; i++)
        if ((conn->cfg.sentinel_host[i] = dup_or_null(cfg->sentinel_host[i])) == NULL)
            return -1;
    conn->on_ready = on_ready;
    conn->on_down = on_down;
    conn->arg = arg;
    conn->max_queued_bytes = RDS_DEFAULT_MAX_QUEUED;
    conn->backoff_ms = RDS_BACKOFF_MIN_MS;
    if ((cfg->host && !conn->cfg.host) || (cfg->unix_path && !conn->cfg.unix_path) ||
        (cfg->username && !conn->cfg.username) ||
        (cfg->password && !conn->cfg.password) || (cfg->prefix && !conn->cfg.prefix))
        return -1;
    return 0;
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rds_connect(arg);
}

static void
schedule_retry(struct rds_conn *conn)
{
    if (conn->state == RDS_CLOSED)
        return;
    conn->state = RDS_DOWN;
    if (conn->retry_ev == NULL)
        conn->retry_ev = evtimer_new(conn->base, retry_cb, conn);
    if (conn->retry_ev == NULL)
        fatalx("redis %s: cannot allocate a timer", conn->name);
    struct timeval tv = { conn->backoff_ms / 1000, (conn->backoff_ms % 1000) * 1000 };
    evtimer_add(conn->retry_ev, &tv);
    conn->backoff_ms *= 2;
    if (conn->backoff_ms > RDS_BACKOFF_MAX_MS)
        conn->backoff_ms = RDS_BACKOFF_MAX_MS;
}

/* The connection is gone (failed connect, dropped, bad handshake). */
static void
conn_lost(struct rds_conn *conn, const char *why)
{
    bool was_up = conn->state == RDS_READY;
    conn->ac = NULL;
    conn->inflight = 0;
    conn->unsent = conn->head; /* everything unanswered goes again */
    conn->attempts++;
    if (conn->state == RDS_CLOSED)
        return;
    if (was_up || conn->attempts == 1)
        log_warnx("redis %s: %s %s; retrying with backoff", conn->name,
                  was_up ? "connection lost:" : "cannot connect:", why);
    schedule_retry(conn);
    if (was_up && conn->on_down)
        conn->on_down(conn, conn->arg);
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

static void
flush_queue(struct rds_conn *conn);

static void
handshake_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rds_conn *conn = privdata;
    redisReply *reply = r;
    if (reply == NULL || conn->ac != ac || conn->state != RDS_HANDSHAKE)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_err("redis %s: %s", conn->name, reply->str);
        /* Close outside of this callback's frame: hiredis defers it. */
        redisAsyncDisconnect(ac);
        return;
    }
}

static void
ready_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rds_conn *conn = privdata;
    redisReply *reply = r;
    if (reply == NULL || conn->ac != ac || conn->state != RDS_HANDSHAKE)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_err("redis %s: SELECT: %s", conn->name, reply->str);
        redisAsyncDisconnect(ac);
        return;
    }
    conn->state = RDS_READY;
    if (conn->was_ready && conn->attempts > 0)
        log_notice("redis %s: connection restored after %d attempt%s",
                   conn->name, conn->attempts, conn->attempts == 1 ? "" : "s");
    else if (!conn->was_ready)
        log_info("redis %s: connected", conn->name);
    conn->was_ready = true;
    conn->attempts = 0;
    conn->backoff_ms = RDS_BACKOFF_MIN_MS;
    flush_queue(conn);
    if (conn->on_ready)
        conn->on_ready(conn, conn->arg);
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
    if (conn->cfg.password) {
        if (conn->cfg.username)
            redisAsyncCommand(ac, handshake_cb, conn, "AUTH %s %s",
                              conn->cfg.username, conn->cfg.password);
        else
            redisAsyncCommand(ac, handshake_cb, conn, "AUTH %s", conn->cfg.password);
    }
    redisAsyncCommand(ac, ready_cb, conn, "SELECT %d", conn->cfg.db);
}

static void
rds_connect(struct rds_conn *conn)
{
    redisAsyncContext *ac;
    if (conn->state == RDS_CLOSED)
        return;
    conn->state = RDS_CONNECTING;
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
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
}

void
rds_start(struct rds_conn *conn)
{
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
    if (conn->retry_ev) {
        event_free(conn->retry_ev);
        conn->retry_ev = NULL;
    }
    while (conn->head) {
        struct rds_cmd *next = conn->head->next;
        free_cmd(conn->head);
        conn->head = next;
    }
    conn->tail = conn->unsent = NULL;
    conn->queued = conn->queued_bytes = 0;
    free(conn->cfg.host);
    free(conn->cfg.unix_path);
    free(conn->cfg.username);
    free(conn->cfg.password);
    free(conn->cfg.prefix);
    free(conn->cfg.master_name);
    free(conn->prefix_fmt);
    conn->prefix_fmt = NULL;
    conn->prefix_n = 0;
    conn->prefix_len = 0;
    for (size_t i = 0; i < conn->cfg.nsentinels; i++)
        free(conn->cfg.sentinel_host[i]);
    memset(&conn->cfg, 0, sizeof(conn->cfg));
}

void
rds_reset(struct rds_conn *conn)
{
    if (conn->ac && conn->state != RDS_CLOSED)
        redisAsyncDisconnect(conn->ac);
}

struct send_ctx {
    struct rds_conn *conn;
    rds_reply_fn *fn;
    void *privdata;
};

static void
send_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct send_ctx *ctx = privdata;
    (void)ac;
    if (ctx->conn->inflight > 0)
        ctx->conn->inflight--;
    struct rds_conn *conn = ctx->conn;
    redisReply *reply = r;
    if (ctx->fn)
        ctx->fn(conn, r, ctx->privdata);
    free(ctx);
    /* A master demoted by a failover: find the new one. */
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "READONLY", 8) == 0)
        rds_reset(conn);
}

int
rds_send(struct rds_conn *conn, rds_reply_fn *fn, void *privdata, int argc,
         const char **argv, const size_t *argvlen)
{
    if (conn->state != RDS_READY || conn->ac == NULL)
        return -1;
    struct send_ctx *ctx = malloc(sizeof(*ctx));
    if (ctx == NULL)
        return -1;
    ctx->conn = conn;
    ctx->fn = fn;
    ctx->privdata = privdata;
    if (redisAsyncCommandArgv(conn->ac, send_cb, ctx, argc, argv, argvlen) != REDIS_OK) {
        free(ctx);
        return -1;
    }
    conn->inflight++;
    return 0;
}

/* A durable command's reply: replies come in order, so it answers the
 * head of the queue. Replies from a connection already replaced are NULL. */
static void
queue_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rds_conn *conn = privdata;
    redisReply *reply = r;
    if (reply == NULL || conn->ac != ac || conn->head == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "READONLY", 8) == 0) {
        /* Sent to a master a failover demoted: kept, and sent again to the
         * new master once the connection finds it. */
        log_warnx("redis %s: %s; finding the master again", conn->name, reply->str);
        rds_reset(conn);
        return;
    }
    struct rds_cmd *cmd = conn->head;
    conn->head = cmd->next;
    if (conn->head == NULL)
        conn->tail = NULL;
    if (conn->unsent == cmd)
        conn->unsent = cmd->next;
    conn->queued--;
    conn->queued_bytes -= cmd->len;
    if (reply->type == REDIS_REPLY_ERROR && cmd->fn == NULL)
        log_warnx("redis %s: command failed: %s", conn->name, reply->str);
    if (reply->type == REDIS_REPLY_ERROR && conn->on_error)
        conn->on_error(conn, reply, conn->arg);
    if (cmd->fn)
        cmd->fn(conn, reply, cmd->privdata);
    free_cmd(cmd);
}

static void
flush_queue(struct rds_conn *conn)
{
    while (conn->unsent && conn->state == RDS_READY) {
        struct rds_cmd *cmd = conn->unsent;
        int rc;
        if (conn->prefix_len > 0) {
            /* The command as queued, with the prefix's arguments put in
             * after its array header: "*<n + prefix>\r\n" prefix args. */
            const char *body = memchr(cmd->buf, '\n', cmd->len);
            long argc = strtol(cmd->buf + 1, NULL, 10);
            size_t head = body ? (size_t)(body + 1 - cmd->buf) : 0;
            char hdr[32];
            int hl = snprintf(hdr, sizeof(hdr), "*%ld\r\n", argc + conn->prefix_n);
            size_t total = (size_t)hl + conn->prefix_len + cmd->len - head;
            char *buf = body ? malloc(total) : NULL;
            if (buf == NULL)
                break; /* tried again at the next flush */
            memcpy(buf, hdr, (size_t)hl);
            memcpy(buf + hl, conn->prefix_fmt, conn->prefix_len);
            memcpy(buf + hl + conn->prefix_len, cmd->buf + head, cmd->len - head);
            rc = redisAsyncFormattedCommand(conn->ac, queue_cb, conn, buf, total);
            free(buf);
        } else {
            rc = redisAsyncFormattedCommand(conn->ac, queue_cb, conn, cmd->buf, cmd->len);
        }
        if (rc != REDIS_OK)
            break; /* the context is going away; sent again on reconnect */
        conn->unsent = cmd->next;
    }
}

static void
queue_append(struct rds_conn *conn, struct rds_cmd *cmd);

int
rds_queue(struct rds_conn *conn, rds_reply_fn *fn, void *privdata, int argc,
          const char **argv, const size_t *argvlen)
{
    struct rds_cmd *cmd;
    if (conn->state == RDS_CLOSED)
        return -1;
    if (conn->queued_bytes > conn->max_queued_bytes) {
        conn->dropped++;
        return -1;
    }
    cmd = malloc(sizeof(*cmd));
    if (cmd == NULL)
        return -1;
    int len = redisFormatCommandArgv(&cmd->buf, argc, argv, argvlen);
    if (len < 0) {
        free(cmd);
        return -1;
    }
    cmd->len = (size_t)len;
    cmd->fn = fn;
    cmd->privdata = privdata;
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
rds_queue_formatted(struct rds_conn *conn, const char *buf, size_t len)
{
    struct rds_cmd *cmd;
    if (conn->state == RDS_CLOSED || len == 0)
        return -1;
    cmd = malloc(sizeof(*cmd));
    if (cmd == NULL)
        return -1;
    /* redisFreeCommand() is free(): a plain copy is fine. */
    cmd->buf = malloc(len);
    if (cmd->buf == NULL) {
        free(cmd);
        return -1;
    }
    memcpy(cmd->buf, buf, len);
    cmd->len = len;
    cmd->fn = NULL;
    cmd->privdata = NULL;
    queue_append(conn, cmd);
    return 0;
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
