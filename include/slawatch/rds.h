/*
 * rds.h - one asynchronous Redis connection on the libevent loop (hiredis
 * async API). Owns connecting, AUTH/SELECT, waiting while Redis loads its
 * dataset, reconnecting with backoff, time-outs (TCP keepalive and a reply
 * deadline), and an ordered queue of durable commands that are re-sent
 * after a reconnect, and retried after an error reply, until Redis has
 * accepted them. The only file that includes hiredis' libevent adapter.
 *
 * The durable queue, oldest first:
 *
 *   [sent, in flight ...][unsent ...]     pipelined while Redis accepts
 *
 *   - an error reply stalls the queue: nothing more is sent, the commands
 *     already in flight are answered, then the oldest unaccepted command
 *     is sent alone (a probe) after a backoff (100 ms doubling to 5 s);
 *     once Redis accepts it the queue is pipelined again. So an error
 *     never lets a later command overtake an earlier one that was not yet
 *     sent, and a barrier (RDS_BARRIER: XACK) is only sent once every
 *     command before it was accepted.
 *   - errors that a later try can cure (OOM, NOPERM, READONLY, BUSY,
 *     MASTERDOWN, ...) are retried for as long as they last; any other
 *     error (WRONGTYPE: someone replaced our key) is tried RDS_MAX_TRIES
 *     times and then moved aside into <prefix>writes:dead, counted and
 *     logged at err, so one poisoned command cannot hold every later one.
 *   - a LOADING reply (Redis is starting) is not a refusal: the connection
 *     is reset and the handshake waits for Redis to finish loading.
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
#include "slawatch/log.h"
#include "slawatch/util.h"

struct rds_conn;

/* Reply callback. `reply` is NULL when the connection went away before the
 * answer came (for rds_send; durable commands are re-sent instead). */
typedef void rds_reply_fn(struct rds_conn *conn, redisReply *reply,
                          void *privdata);

struct rds_cmd;

enum rds_state { RDS_DOWN = 0, RDS_CONNECTING, RDS_HANDSHAKE, RDS_READY,
                 RDS_CLOSED };

/* Time-outs (milliseconds). A command outstanding longer than
 * RDS_REPLY_TIMEOUT_MS (plus the BLOCK of rds_send_block) resets the
 * connection; so does a connect or handshake that takes longer than
 * RDS_CONNECT_TIMEOUT_MS (waiting for Redis to load is not counted). */
#define RDS_REPLY_TIMEOUT_MS 5000
#define RDS_CONNECT_TIMEOUT_MS 5000
/* Tries of a command whose error no retry can cure, before it is moved
 * aside into <prefix>writes:dead. */
#define RDS_MAX_TRIES 3
/* The default soft cap of the durable queue (bytes): above it rds_over_cap
 * is true (ingest stops reading); above 4 times it rds_queue refuses. */
#define RDS_DEFAULT_MAX_QUEUED (256u << 20)

/* Flags of rds_queue_ex. */
#define RDS_BARRIER 0x1u   /* sent only once every earlier command was accepted */

struct rds_conn {
    const char *name;                /* "reader", "writer": for logs */
    struct event_base *base;
    struct cfg_redis cfg;            /* copied strings, owned */
    redisAsyncContext *ac;
    enum rds_state state;
    uint64_t gen;                    /* +1 per connection attempt */
    struct event *retry_ev;          /* reconnect after the backoff */
    struct event *watch_ev;          /* time-outs, twice a second */
    struct event *ping_ev;           /* PING again while Redis loads */
    struct event *stall_ev;          /* the next probe of a stalled queue */
    int64_t backoff_ms;
    int attempts;                    /* failed attempts since last ready */
    bool was_ready;                  /* for "lost"/"restored" log lines */
    bool loading;                    /* Redis answered LOADING: waiting */
    int64_t state_since_us;          /* connect or handshake began */
    int64_t ready_since_us;
    int64_t progress_us;             /* last reply, or first send when idle */
    int64_t grace_until_us;          /* a blocking command may be silent */
    void (*on_ready)(struct rds_conn *conn, void *arg);
    void (*on_down)(struct rds_conn *conn, void *arg);
    void *arg;
    /* Durable queue: sent in order, removed when accepted. */
    struct rds_cmd *head, *tail, *unsent;
    size_t queued;
    size_t queued_bytes;
    size_t max_queued_bytes;         /* the soft cap */
    /* With Sentinel: the master found, and told when a reconnect finds it
     * at another address than before (a failover; may be NULL). */
    char master_host[256];
    int master_port;
    void (*on_master_change)(struct rds_conn *conn, void *arg);
    /* Told of every error reply to a durable command (may be NULL). */
    void (*on_error)(struct rds_conn *conn, const redisReply *reply, void *arg);
    /* Put before every durable command as it is sent (rds_set_prefix):
     * fencing. The queue and the checkpoint keep commands without it. */
    char *prefix_fmt;                /* the arguments, RESP-formatted */
    size_t prefix_len;
    int prefix_n;
    long inflight;                   /* rds_send replies outstanding */
    long durable_inflight;           /* durable replies outstanding */
    bool stalled;                    /* an error reply: held, probing */
    struct rds_cmd *probe;           /* the command sent alone */
    int64_t stall_backoff_ms;
    int64_t stalled_since_ms;
    uint64_t stall_errors;           /* error replies in this stall */
    /* Counters since start, for stats. */
    uint64_t write_errors;           /* error replies to durable commands */
    uint64_t dead_total;             /* moved aside into <prefix>writes:dead */
    uint64_t dropped;                /* refused: queue over its hard cap */
    uint64_t lost_total;             /* ready connections lost or timed out */
    char last_error[192];            /* the last error reply or loss reason */
    struct log_ratelimit err_rl;     /* refused writes */
    struct log_ratelimit dead_rl;    /* commands moved aside */
    struct log_ratelimit conn_rl;    /* lost / restored / handshake errors */
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
/* Drops the connection at once (pending rds_send callbacks get NULL,
 * durable commands go again) and reconnects after the backoff: used when a
 * reply shows the connection is unusable. May be called from a reply
 * callback (hiredis defers the free). */
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

/* rds_send for a write that is not worth queueing (a snapshot of gauges
 * while the queue is held, a note about a retry), fenced like the durable
 * commands (rds_set_prefix). Returns -1 as rds_send does. */
int rds_send_write(struct rds_conn *conn, rds_reply_fn *fn, void *privdata, int argc,
                   const char **argv, const size_t *argvlen) MUSTCHECK;
/* The same for a command that may legitimately stay unanswered for
 * block_ms (XREADGROUP ... BLOCK): the reply deadline is that much later. */
int rds_send_block(struct rds_conn *conn, int block_ms, rds_reply_fn *fn,
                   void *privdata, int argc, const char **argv,
                   const size_t *argvlen) MUSTCHECK;

/* Queues a durable command: sent now when ready, otherwise after the next
 * reconnect; re-sent after any disconnect and retried after an error reply
 * (see the head comment) until Redis accepts it or it is moved aside. fn
 * (may be NULL) sees the first reply only: an error it sees may still be
 * retried, and the command's later acceptance is not reported. Returns -1
 * when the queue is over its hard cap or allocation fails; the command is
 * then not queued. */
int rds_queue(struct rds_conn *conn, rds_reply_fn *fn, void *privdata,
              int argc, const char **argv, const size_t *argvlen) MUSTCHECK;
int rds_queue_ex(struct rds_conn *conn, unsigned flags, rds_reply_fn *fn,
                 void *privdata, int argc, const char **argv,
                 const size_t *argvlen) MUSTCHECK;

/* From now on, every durable command is sent with these arguments before
 * its own (the lease's fence: EVAL <script> ... <command> <args>); the
 * queue, and so the checkpoint, keep each command without them. Copied;
 * n 0 removes the prefix. Returns -1 on allocation failure. */
int rds_set_prefix(struct rds_conn *conn, const char **argv, const size_t *lens,
                   int n) MUSTCHECK;

/* Calls fn for every durable command not yet accepted, oldest first, with
 * its RESP encoding (one command, as redisFormatCommandArgv makes it). */
void rds_foreach_queued(const struct rds_conn *conn,
                        void (*fn)(void *arg, const char *buf, size_t len),
                        void *arg);

/* Durable commands not yet accepted. */
static inline size_t
rds_pending(const struct rds_conn *conn)
{
    return conn->queued;
}

/* An error reply holds the queue (see the head comment). */
static inline bool
rds_stalled(const struct rds_conn *conn)
{
    return conn->stalled;
}

/* The queue holds more than its soft cap: producers should pause. */
static inline bool
rds_over_cap(const struct rds_conn *conn)
{
    return conn->queued_bytes > conn->max_queued_bytes;
}

/* Sets the soft cap (the hard cap is 4 times it). */
void rds_set_max_queued(struct rds_conn *conn, size_t bytes);

/* What is wrong with the connection, for STATUS= ("Redis is loading its
 * dataset", "writes refused: OOM ...", "down: Connection refused"), in
 * buf; returns false (buf empty) when nothing is. */
bool rds_problem(const struct rds_conn *conn, char *buf, size_t len);

#endif
