/*
 * ingest.c - events in: the consumer group on <prefix>events, XREADGROUP in
 * batches on the reader connection, validation, the core, dead letters, and
 * one XACK per batch on the writer connection (after the batch's outputs, so
 * Redis sees outputs before the acknowledgement). Must never block the loop
 * and never stop on bad input: every malformed entry is dead-lettered.
 *
 *   reader: XGROUP CREATE -> XREADGROUP ... 0 (own pending) -> XREADGROUP >
 *             |  reply
 *             v
 *   event_parse -> core_apply -> notices (publish.c) -> writer: XADD...
 *                                                       writer: XACK ids
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "slawatch/daemon.h"

#define READ_BLOCK_MS "2000"
#define MAX_FIELDS 64

static void read_cb(struct rds_conn *conn, redisReply *reply, void *privdata);

static void
reject(struct sw *sw, const char *id, size_t id_len,
       const struct ev_field *fields, size_t nfields, const char *reason)
{
    long suppressed;
    sw->rejected_total++;
    publish_dead_letter(sw, id, id_len, fields, nfields, reason);
    if (log_ratelimit_ok(&sw->reject_rl, &suppressed)) {
        if (suppressed)
            log_warnx("%ld more rejected events not logged", suppressed);
        log_warnx("event %.*s rejected: %s", (int)id_len, id, reason);
    }
}

static void
group_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct sw *sw = privdata;
    (void)conn;
    if (reply == NULL)
        return; /* connection lost: on_ready starts over */
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) != 0) {
        log_err("cannot create consumer group %s on %s: %s", sw->cfg->events.group,
                sw->key_events, reply->str);
        rds_reset(&sw->reader);
        return;
    }
    sw->group_ready = true;
    sw->pending_mode = true;
    snprintf(sw->pending_after, sizeof(sw->pending_after), "0");
    sw_notify_ready(sw);
    ingest_read(sw);
}

/* Creates the consumer group (an existing one is fine), then reads. */
void
ingest_start_group(struct sw *sw)
{
    /* A new group starts after the last applied entry: everything up to it
     * was applied by the replay, and delivering it again would only be read,
     * skipped and acknowledged. An existing group keeps its position. */
    char start[48] = "0";
    if (sw->last_ms || sw->last_seq)
        snprintf(start, sizeof(start), "%" PRIu64 "-%" PRIu64, sw->last_ms,
                 sw->last_seq);
    const char *argv[] = { "XGROUP", "CREATE", sw->key_events,
                           sw->cfg->events.group, start, "MKSTREAM" };
    sw->group_ready = false;
    sw->reading = false;
    if (rds_send(&sw->reader, group_cb, sw, (int)ARRAY_LEN(argv), argv, NULL) < 0)
        rds_reset(&sw->reader);
}

void
ingest_on_ready(struct rds_conn *conn, void *arg)
{
    struct sw *sw = arg;
    (void)conn;
    sw->group_ready = false;
    sw->reading = false;
    /* The checkpoint is loaded and the stream after it replayed before the
     * group is read (snapshot.c calls ingest_start_group when done). */
    if (sw->load != LOAD_DONE) {
        snapshot_load_begin(sw);
        return;
    }
    ingest_start_group(sw);
}

void
ingest_on_down(struct rds_conn *conn, void *arg)
{
    struct sw *sw = arg;
    (void)conn;
    sw->reading = false;
    sw->group_ready = false;
    /* Nothing can be read while Redis is away: deadlines follow the wall
     * clock again, whatever the last batch looked like. */
    if (sw->load == LOAD_DONE)
        sw->caught_up = true;
}

void
ingest_read(struct sw *sw)
{
    char count[16];
    if (sw->stopping || sw->reading || !sw->group_ready || !rds_ready(&sw->reader))
        return;
    snprintf(count, sizeof(count), "%d", sw->cfg->events.batch);
    /* Block only when caught up: after a full batch the next read returns
     * at once, so "caught up" is known without waiting out a BLOCK during
     * which the wall clock would not drive deadlines. */
    const char *argv[] = { "XREADGROUP", "GROUP", sw->cfg->events.group,
                           sw->cfg->events.consumer, "COUNT", count,
                           "BLOCK", READ_BLOCK_MS, "STREAMS", sw->key_events,
                           sw->pending_mode ? sw->pending_after : ">" };
    const char *argv_nb[] = { "XREADGROUP", "GROUP", sw->cfg->events.group,
                              sw->cfg->events.consumer, "COUNT", count,
                              "STREAMS", sw->key_events,
                              sw->pending_mode ? sw->pending_after : ">" };
    bool block = sw->caught_up && !sw->pending_mode && sw->batches == NULL;
    if ((block ? rds_send(&sw->reader, read_cb, sw, (int)ARRAY_LEN(argv), argv, NULL)
               : rds_send(&sw->reader, read_cb, sw, (int)ARRAY_LEN(argv_nb), argv_nb,
                          NULL)) < 0) {
        rds_reset(&sw->reader);
        return;
    }
    sw->reading = true;
}

/* True when id is at or before the last applied ID: a re-delivery after a
 * reconnect, already applied by this process. */
static bool
already_applied(const struct sw *sw, uint64_t ms, uint64_t seq)
{
    return ms < sw->last_ms || (ms == sw->last_ms && seq <= sw->last_seq);
}

void
ingest_apply_entry(struct sw *sw, const redisReply *entry, int64_t wall_ms)
{
    struct ev_field fields[MAX_FIELDS];
    size_t nfields = 0;
    const redisReply *id = entry->element[0];
    const redisReply *kv = entry->element[1];
    uint64_t ms, seq;
    struct sla_event ev;
    const char *reason = NULL;

    if (stream_id_parse(id->str, id->len, &ms, &seq) < 0)
        return; /* not a stream ID: nothing to apply or acknowledge */
    if (already_applied(sw, ms, seq))
        return;
    sw->last_ms = ms;
    sw->last_seq = seq;
    sw->events_total++;

    if (kv == NULL || kv->type != REDIS_REPLY_ARRAY) {
        /* The entry was deleted or trimmed while pending. */
        reject(sw, id->str, id->len, NULL, 0, "entry deleted");
        return;
    }
    if (kv->elements % 2 != 0 || kv->elements / 2 > MAX_FIELDS) {
        reject(sw, id->str, id->len, NULL, 0, "too many fields");
        return;
    }
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        const redisReply *f = kv->element[i], *v = kv->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            reject(sw, id->str, id->len, NULL, 0, "malformed entry");
            return;
        }
        fields[nfields].name = f->str;
        fields[nfields].name_len = f->len;
        fields[nfields].value = v->str;
        fields[nfields].value_len = v->len;
        nfields++;
    }
    if (ms > (uint64_t)INT64_MAX)
        ms = 0;
    if (event_parse(&ev, fields, nfields, (int64_t)ms, wall_ms,
                    sw->cfg->events.max_clock_skew_ms, &reason) < 0 ||
        core_apply(sw->core, &ev, &reason) < 0)
        reject(sw, id->str, id->len, fields, nfields, reason);
}

/* XACK for every entry of a batch, after the batch's outputs. */
static void
ack_batch(struct sw *sw, redisReply **entries, size_t n)
{
    const char **argv = malloc((n + 3) * sizeof(*argv));
    size_t *lens = malloc((n + 3) * sizeof(*lens));
    size_t argc = 0;
    if (argv == NULL || lens == NULL) {
        /* Unacknowledged entries stay pending and are skipped as already
         * applied when they come back. */
        log_warnx("cannot acknowledge a batch: out of memory");
        free(argv);
        free(lens);
        return;
    }
    argv[argc] = "XACK";
    lens[argc++] = 4;
    argv[argc] = sw->key_events;
    lens[argc++] = strlen(sw->key_events);
    argv[argc] = sw->cfg->events.group;
    lens[argc++] = strlen(sw->cfg->events.group);
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = entries[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        argv[argc] = e->element[0]->str;
        lens[argc++] = e->element[0]->len;
    }
    if (argc > 3 && rds_queue(&sw->writer, NULL, NULL, (int)argc, argv, lens) < 0)
        log_warnx("cannot queue XACK: writer queue full");
    free(argv);
    free(lens);
}

/* ---- batches ------------------------------------------------------------
 * A reply's entries are taken over (the array is moved out of the reply, so
 * hiredis frees only the shell) and applied from a zero-delay timer. A full
 * batch first sends the next read: by the time the timer runs, the loop has
 * written that request, and Redis prepares the next batch while this one is
 * applied. Batches are applied strictly in arrival order. */

struct batch {
    struct batch *next;
    redisReply **entries;
    size_t n;
    bool replay;             /* from the start-up replay: no XACK */
    bool last;               /* replay: the final batch; ingest: a short read */
};

static void
batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        freeReplyObject(b->entries[i]);
    free(b->entries);
    free(b);
}

static void
apply_batch(struct sw *sw, struct batch *b)
{
    int64_t wall = now_wall_ms();
    for (size_t i = 0; i < b->n; i++) {
        const redisReply *e = b->entries[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        ingest_apply_entry(sw, e, wall);
        if (b->replay)
            sw->replayed++;
    }
    if (!b->replay && b->n > 0)
        ack_batch(sw, b->entries, b->n);
    if (b->replay && b->last) {
        log_notice("replayed %ld events after the checkpoint", sw->replayed);
        sw->load = LOAD_DONE;
        if (rds_ready(&sw->reader))
            ingest_start_group(sw);
    } else if (!b->replay && b->last && !sw->pending_mode) {
        /* Drained: from now on the wall clock drives deadlines. */
        sw->caught_up = true;
        core_advance(sw->core, now_wall_ms());
    }
}

void
ingest_drain(struct sw *sw)
{
    while (sw->batches) {
        struct batch *b = sw->batches;
        sw->batches = b->next;
        if (sw->batches == NULL)
            sw->batches_tail = NULL;
        apply_batch(sw, b);
        batch_free(b);
    }
}

static void
apply_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sw *sw = arg;
    (void)fd;
    (void)what;
    ingest_drain(sw);
    sw_arm_deadline_timer(sw);
    ingest_read(sw);
}

/* Takes over the entries of an array reply. Returns -1 on allocation
 * failure (the reply is then left as it was). */
int
ingest_enqueue(struct sw *sw, redisReply *array, bool replay, bool last)
{
    struct batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -1;
    if (sw->apply_ev == NULL &&
        (sw->apply_ev = evtimer_new(sw->base, apply_cb, sw)) == NULL) {
        free(b);
        return -1;
    }
    b->entries = array->element;
    b->n = array->elements;
    b->replay = replay;
    b->last = last;
    array->element = NULL;
    array->elements = 0;
    if (sw->batches_tail)
        sw->batches_tail->next = b;
    else
        sw->batches = b;
    sw->batches_tail = b;
    struct timeval zero = { 0, 0 };
    evtimer_add(sw->apply_ev, &zero);
    return 0;
}

/* Returns the entries array of an XREADGROUP reply for our one stream, or
 * NULL when there are none (a time-out answers nil). */
static redisReply *
entries_of(redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1)
        return NULL;
    redisReply *stream = reply->element[0];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2 ||
        stream->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    return stream->element[1];
}

static void
read_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct sw *sw = privdata;
    (void)conn;
    sw->reading = false;
    if (reply == NULL)
        return; /* connection lost; pending entries are re-read later */
    if (reply->type == REDIS_REPLY_ERROR) {
        log_err("XREADGROUP on %s: %s", sw->key_events, reply->str);
        /* NOGROUP: the stream or group was deleted; recreate both. */
        rds_reset(&sw->reader);
        return;
    }
    redisReply *entries = entries_of(reply);
    size_t n = entries ? entries->elements : 0;
    bool was_pending = sw->pending_mode;

    if (sw->pending_mode) {
        if (n == 0) {
            sw->pending_mode = false;
        } else {
            const redisReply *last = entries->element[n - 1];
            if (last->type == REDIS_REPLY_ARRAY && last->elements >= 1 &&
                last->element[0]->type == REDIS_REPLY_STRING)
                snprintf(sw->pending_after, sizeof(sw->pending_after), "%.*s",
                         (int)last->element[0]->len, last->element[0]->str);
        }
    }
    bool full = n == (size_t)sw->cfg->events.batch;
    if (n > 0 && ingest_enqueue(sw, entries, false, !full) < 0) {
        log_err("out of memory: batch left pending, read again later");
        rds_reset(&sw->reader);
        return;
    }
    if (full || was_pending) {
        /* More is waiting: keep to event time until the stream is
         * drained, so a replay decides exactly as live processing did, and
         * ask for the next batch now. */
        sw->caught_up = false;
        ingest_read(sw);
    } else if (n == 0) {
        sw->caught_up = true;
        core_advance(sw->core, now_wall_ms());
        sw_arm_deadline_timer(sw);
        ingest_read(sw);
    }
    /* A short batch: apply_cb marks the stream drained once it is applied,
     * then reads again (blocking). */
}
