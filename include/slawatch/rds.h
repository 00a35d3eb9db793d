/*
 * rds.h - one asynchronous Redis connection on the libevent loop (hiredis
 * async API). Owns connecting, AUTH/SELECT, reconnecting with backoff and an
 * ordered queue of durable commands that are re-sent after a reconnect until
 * Redis has answered them. The only file that includes hiredis' libevent
 * adapter.
 */
#ifndef SLAWATCH_RDS_H
#define SLAWATCH_RDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <event2/event.h>

#include "slawatch/config.h"
#include "slawatch/util.h"

struct rds_conn;

/* Reply callback. `reply` is NULL when the connection went away before the
 * answer came (for rds_send; durable commands are re-sent instead). */
typedef void rds_reply_fn(struct rds_conn *conn, redisReply *reply,
                          void *privdata);

struct rds_cmd;

enum rds_state { RDS_DOWN = 0, RDS_CONNECTING, RDS_HANDSHAKE, RDS_READY,
                 RDS_CLOSED };

struct rds_conn {
    const char *name;                /* "reader", "writer": for logs */
    struct event_base *base;
    struct cfg_redis cfg;            /* copied strings, owned */
    char master_host[256];           /* with Sentinel: the master found */
    int master_port;
    redisAsyncContext *ac;
    enum rds_state state;
    struct event *retry_ev;
    int64_t backoff_ms;
    int attempts;                    /* failed attempts since last ready */
    bool was_ready;                  /* for "lost"/"restored" log lines */
    void (*on_ready)(struct rds_conn *conn, void *arg);
    void (*on_down)(struct rds_conn *conn, void *arg);
    void *arg;
    /* Durable queue: sent in order, removed when answered. */
    struct rds_cmd *head, *tail, *unsent;
    size_t queued;
    size_t queued_bytes;
    size_t max_queued_bytes;
    long dropped;                    /* refused because the queue was full */
    /* With Sentinel: told when a reconnect found the master at another
     * address than before (a failover). May be NULL. */
    void (*on_master_change)(struct rds_conn *conn, void *arg);
    /* Told of every error reply to a durable command (may be NULL). */
    void (*on_error)(struct rds_conn *conn, const redisReply *reply, void *arg);
    /* Put before every durable command as it is sent (rds_set_prefix):
     * fencing. The queue and the checkpoint keep commands without it. */
    char *prefix_fmt;                /* the arguments, RESP-formatted */
    size_t prefix_len;
    int prefix_n;
    long inflight;                   /* rds_send replies outstanding */
};

/* Prepares a connection; nothing happens until rds_start(). Returns -1 on
 * allocation failure. */
int rds_init(struct rds_conn *conn, struct event_base *base,
             const struct cfg_redis *cfg, const char *name,
             void (*on_ready)(struct rds_conn *, void *),
             void (*on_down)(struct rds_conn *, void *), void *arg) MUSTCHECK;
void rds_start(struct rds_conn *conn);
/* Drops the connection at once (pending rds_send callbacks get NULL) and
 * frees everything, including unsent durable commands. Not to be called
 * from inside one of this connection's reply callbacks. */
void rds_close(struct rds_conn *conn);
/* Drops the connection and reconnects after the backoff (used when a
 * reply shows the connection is unusable). */
void rds_reset(struct rds_conn *conn);

static inline bool
rds_ready(const struct rds_conn *conn)
{
    return conn->state == RDS_READY;
}

/* Sends now. Returns -1 when not ready or on allocation failure (fn is then
 * not called). */
int rds_send(struct rds_conn *conn, rds_reply_fn *fn, void *privdata,
             int argc, const char **argv, const size_t *argvlen) MUSTCHECK;

/* Queues a durable command: sent now when ready, otherwise after the next
 * reconnect, and re-sent after any disconnect until a reply arrives; fn (may
 * be NULL) then sees the reply. Returns -1 when the queue is over its byte
 * limit or allocation fails; the command is then not queued. */
int rds_queue(struct rds_conn *conn, rds_reply_fn *fn, void *privdata,
              int argc, const char **argv, const size_t *argvlen) MUSTCHECK;

/* From now on, every durable command is sent with these arguments before
 * its own (the lease's fence: EVAL <script> ... <command> <args>); the
 * queue, and so the checkpoint, keep each command without them. Copied;
 * n 0 removes the prefix. Returns -1 on allocation failure. */
int rds_set_prefix(struct rds_conn *conn, const char **argv, const size_t *lens,
                   int n) MUSTCHECK;

/* Queues an already RESP-formatted durable command (from a checkpoint). */
int rds_queue_formatted(struct rds_conn *conn, const char *buf,
                        size_t len) MUSTCHECK;

/* Calls fn for every durable command not yet answered, oldest first. */
void rds_foreach_queued(const struct rds_conn *conn,
                        void (*fn)(void *arg, const char *buf, size_t len),
                        void *arg);

/* Durable commands not yet answered. */
static inline size_t
rds_pending(const struct rds_conn *conn)
{
    return conn->queued;
}

#endif
