/*
 * snapshot.c - crash safety: checkpoints of the whole state into
 * <prefix>state, and recovery at start-up (load the checkpoint, replay the
 * stream entries after it, then read the consumer group). Owns the forked
 * checkpoint child and the synchronous connection it and the final save on
 * SIGTERM use. Must never block the event loop except in the final save at
 * shutdown.
 *
 *   start: GET <prefix>state -> state_decode -> XRANGE events (last_id ...
 *          (no checkpoint yet: XRANGE from the start of the stream)
 *          -> ingest_apply_entry ... -> ingest_start_group -> XREADGROUP
 *   every state.checkpoint_every: fork -> child: encode, SET <prefix>state
 *   SIGTERM: drain writes -> encode, SET (in process) -> exit
 *
 * Guarantees: a checkpoint is consistent (fork gives the child a frozen
 * copy), holds the last applied stream ID and every Redis write not yet
 * answered; replay re-applies exactly the entries after that ID, so nothing
 * applied is lost and nothing is applied twice. Outputs produced between the
 * checkpoint and a crash are produced again by the replay (same content,
 * same delivery ids).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slawatch/daemon.h"
#include "slawatch/report.h"
#include "slawatch/state.h"

#define REPLAY_COUNT "1000"
#define REPLAY_COUNT_N 1000

/* ---- encoding the running daemon -------------------------------------- */

static void
put_write(void *arg, const char *buf, size_t len)
{
    struct wire_buf *b = arg;
    wire_put_u32(b, (uint32_t)len);
    wire_put(b, buf, len);
}

/* Encodes core, counters and unanswered writes. Returns -1 on allocation
 * failure. */
static int
encode_all(struct sw *sw, struct wire_buf *out)
{
    struct wire_buf writes, windows;
    struct state_meta meta = {
        .saved_ms = now_wall_ms(),
        .core_now_ms = core_now(sw->core),
        .last_ms = sw->last_ms,
        .last_seq = sw->last_seq,
        .events_total = sw->events_total,
        .rejected_total = sw->rejected_total,
    };
    wire_init(&writes);
    wire_init(&windows);
    rds_foreach_queued(&sw->writer, put_write, &writes);
    if (writes.oom || report_encode(sw, &windows) < 0) {
        wire_free(&writes);
        wire_free(&windows);
        return -1;
    }
    struct state_section sec[] = {
        { STATE_SECTION_WRITES, writes.data, writes.len },
        { STATE_SECTION_COMPLIANCE, windows.data, windows.len },
    };
    int rc = state_encode(sw->core, &meta, sec, ARRAY_LEN(sec), out);
    wire_free(&writes);
    wire_free(&windows);
    return rc;
}

static redisContext *
sync_connect(const struct cfg_redis *r, char *err, size_t errlen)
{
    struct timeval tv = { 5, 0 };
    redisContext *c = r->unix_path ? redisConnectUnixWithTimeout(r->unix_path, tv)
                                   : redisConnectWithTimeout(r->host, r->port, tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "%s", c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, (struct timeval){ 30, 0 });
    redisReply *rep = NULL;
    if (r->password) {
        rep = r->username ? redisCommand(c, "AUTH %s %s", r->username, r->password)
                          : redisCommand(c, "AUTH %s", r->password);
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(rep);
    }
    rep = redisCommand(c, "SELECT %d", r->db);
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
        goto fail;
    freeReplyObject(rep);
    return c;
fail:
    snprintf(err, errlen, "%s", rep ? rep->str : c->errstr);
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return NULL;
}

/* Encodes and stores a checkpoint synchronously. Returns 0 or -1 (err). */
static int
save_now(struct sw *sw, char *err, size_t errlen)
{
    struct wire_buf b;
    wire_init(&b);
    if (encode_all(sw, &b) < 0) {
        snprintf(err, errlen, "out of memory encoding the checkpoint");
        wire_free(&b);
        return -1;
    }
    redisContext *c = sync_connect(&sw->cfg->redis, err, errlen);
    if (c == NULL) {
        wire_free(&b);
        return -1;
    }
    const char *argv[] = { "SET", sw->key_state, b.data };
    size_t lens[] = { 3, strlen(sw->key_state), b.len };
    redisReply *rep = redisCommandArgv(c, 3, argv, lens);
    int rc = rep && rep->type == REDIS_REPLY_STATUS ? 0 : -1;
    if (rc < 0)
        snprintf(err, errlen, "SET %s: %s", sw->key_state,
                 rep ? (rep->str ? rep->str : "unexpected reply") : c->errstr);
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    wire_free(&b);
    return rc;
}

/* ---- periodic checkpoints --------------------------------------------- */

static void
checkpoint_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sw *sw = arg;
    (void)fd;
    (void)what;
    if (sw->load != LOAD_DONE || sw->checkpoint_pid > 0 || sw->stopping)
        return;
    pid_t pid = fork();
    if (pid < 0) {
        log_warn("checkpoint: fork");
        sw->checkpoints_failed++;
        return;
    }
    if (pid == 0) {
        /* The child: a frozen copy of the state. No stdio buffers, no
         * atexit handlers, no touching the parent's connections. */
        char err[256];
        int rc = save_now(sw, err, sizeof(err));
        if (rc < 0)
            fprintf(stderr, "slawatchd checkpoint: %s\n", err);
        _exit(rc < 0 ? 1 : 0);
    }
    sw->checkpoint_pid = pid;
    sw->checkpoint_started_ms = now_wall_ms();
}

void
snapshot_reap(struct sw *sw)
{
    int status;
    if (sw->checkpoint_pid <= 0)
        return;
    pid_t w = waitpid(sw->checkpoint_pid, &status, WNOHANG);
    if (w != sw->checkpoint_pid)
        return;
    sw->checkpoint_pid = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        sw->last_checkpoint_ms = sw->checkpoint_started_ms;
        log_debug("checkpoint written in %" PRId64 " ms",
                  now_wall_ms() - sw->checkpoint_started_ms);
    } else {
        sw->checkpoints_failed++;
        log_warnx("checkpoint failed (status %d); retrying at the next interval",
                  status);
    }
}

static void
sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    snapshot_reap(arg);
}

void
snapshot_schedule(struct sw *sw)
{
    int64_t ms = sw->cfg->state.checkpoint_every_ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    if (sw->checkpoint_ev == NULL)
        sw->checkpoint_ev = event_new(sw->base, -1, EV_PERSIST, checkpoint_cb, sw);
    if (sw->sigchld_ev == NULL) {
        sw->sigchld_ev = evsignal_new(sw->base, SIGCHLD, sigchld_cb, sw);
        if (sw->sigchld_ev)
            evsignal_add(sw->sigchld_ev, NULL);
    }
    if (sw->checkpoint_ev == NULL || sw->sigchld_ev == NULL)
        fatalx("cannot create the checkpoint timer");
    event_add(sw->checkpoint_ev, &tv);
}

int
snapshot_save_sync(struct sw *sw)
{
    char err[256];
    if (sw->load != LOAD_DONE) {
        log_warnx("no final checkpoint: the state was never fully loaded");
        return -1;
    }
    /* An older child must not land after the final checkpoint. */
    if (sw->checkpoint_pid > 0) {
        kill(sw->checkpoint_pid, SIGKILL);
        waitpid(sw->checkpoint_pid, NULL, 0);
        sw->checkpoint_pid = 0;
    }
    int64_t t0 = now_mono_us();
    if (save_now(sw, err, sizeof(err)) < 0) {
        log_err("final checkpoint failed: %s (the next start replays from the "
                "previous checkpoint)", err);
        return -1;
    }
    log_info("final checkpoint: %zu tickets in %" PRId64 " ms",
             core_ticket_count(sw->core), (now_mono_us() - t0) / 1000);
    return 0;
}

/* ---- recovery at start-up --------------------------------------------- */

static void replay_next(struct sw *sw);

static void
on_section(void *arg, uint32_t tag, const char *data, size_t len)
{
    struct sw *sw = arg;
    struct wire_reader r;
    size_t n = 0;
    if (tag == STATE_SECTION_COMPLIANCE) {
        report_restore(sw, data, len);
        return;
    }
    if (tag != STATE_SECTION_WRITES)
        return; /* a section of a newer version: ignored */
    wire_reader_init(&r, data, len);
    while (r.left >= 4) {
        uint32_t cl = wire_get_u32(&r);
        const char *cmd = wire_get_bytes(&r, cl);
        if (cmd == NULL)
            break;
        if (rds_queue_formatted(&sw->writer, cmd, cl) < 0)
            log_err("checkpoint: cannot re-queue a pending write");
        n++;
    }
    if (n)
        log_info("checkpoint: %zu pending Redis writes queued again", n);
}

static void
load_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct sw *sw = privdata;
    (void)conn;
    if (reply == NULL) {
        sw->load = LOAD_NONE; /* connection lost: on_ready asks again */
        return;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        /* First start, or a crash before the first checkpoint: the stream
         * is the whole history, so replay all of it. */
        log_notice("no checkpoint in %s: replaying %s from its start",
                   sw->key_state, sw->key_events);
        sw->load = LOAD_REPLAYING;
        sw->replayed = 0;
        replay_next(sw);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING)
        fatalx("cannot read %s: %s", sw->key_state,
               reply->type == REDIS_REPLY_ERROR ? reply->str : "not a string");
    struct state_meta meta;
    char err[256];
    int64_t t0 = now_mono_us();
    long n = state_decode(sw->core, reply->str, reply->len, &meta, on_section, sw,
                          err, sizeof(err));
    if (n < 0)
        fatalx("checkpoint %s is unusable: %s; refusing to start without it "
               "(to start empty after all: DEL %s)", sw->key_state, err, sw->key_state);
    sw->last_ms = meta.last_ms;
    sw->last_seq = meta.last_seq;
    sw->events_total = meta.events_total;
    sw->rejected_total = meta.rejected_total;
    sw->last_checkpoint_ms = meta.saved_ms;
    log_notice("loaded %ld tickets from the checkpoint of %" PRId64 " ms ago in %" PRId64
               " ms; last applied event %" PRIu64 "-%" PRIu64,
               n, now_wall_ms() - meta.saved_ms, (now_mono_us() - t0) / 1000,
               meta.last_ms, meta.last_seq);
    sw->load = LOAD_REPLAYING;
    sw->replayed = 0;
    replay_next(sw);
}

static void replay_from(struct sw *sw, const char *after, size_t len);

static void
replay_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct sw *sw = privdata;
    (void)conn;
    if (reply == NULL)
        return; /* connection lost: on_ready resumes from the last applied ID */
    if (reply->type != REDIS_REPLY_ARRAY) {
        log_err("replay: XRANGE %s: %s", sw->key_events,
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        rds_reset(&sw->reader);
        return;
    }
    size_t n = reply->elements;
    bool more = n == REPLAY_COUNT_N;
    if (more) {
        /* Ask for what follows before this batch is applied (ingest.c
         * applies it from a timer), so Redis reads ahead meanwhile. */
        const redisReply *last = reply->element[n - 1];
        if (last->type != REDIS_REPLY_ARRAY || last->elements < 1 ||
            last->element[0]->type != REDIS_REPLY_STRING) {
            rds_reset(&sw->reader);
            return;
        }
        replay_from(sw, last->element[0]->str, last->element[0]->len);
    }
    if (ingest_enqueue(sw, reply, true, !more) < 0) {
        log_err("replay: out of memory; retrying");
        rds_reset(&sw->reader);
    }
}

static void
replay_from(struct sw *sw, const char *after, size_t len)
{
    snprintf(sw->replay_after, sizeof(sw->replay_after), "(%.*s", (int)len, after);
    const char *argv[] = { "XRANGE", sw->key_events, sw->replay_after, "+",
                           "COUNT", REPLAY_COUNT };
    if (rds_send(&sw->reader, replay_cb, sw, (int)ARRAY_LEN(argv), argv, NULL) < 0)
        rds_reset(&sw->reader);
}

static void
replay_next(struct sw *sw)
{
    char id[48];
    int len = snprintf(id, sizeof(id), "%" PRIu64 "-%" PRIu64, sw->last_ms, sw->last_seq);
    replay_from(sw, id, (size_t)len);
}

void
snapshot_load_begin(struct sw *sw)
{
    if (sw->load == LOAD_REPLAYING) {
        replay_next(sw); /* resumed after a reconnect */
        return;
    }
    const char *argv[] = { "GET", sw->key_state };
    sw->load = LOAD_FETCHING;
    if (rds_send(&sw->reader, load_cb, sw, 2, argv, NULL) < 0) {
        sw->load = LOAD_NONE;
        rds_reset(&sw->reader);
    }
}
