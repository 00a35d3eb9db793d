/*
 * ingest.c - events in (see ingest.h): the start-up replay, the consumer
 * group, validation, dead letters and acknowledgements. Must never block
 * the loop and never stop on bad input.
 *
 *   phase   WAIT_STATE --need_state--> (wiring loads the checkpoint)
 *           --ingest_replay--> REPLAY: XRANGE (<last> + COUNT 1000, read
 *           ahead while a batch is applied) --last batch--> LIVE:
 *           XGROUP CREATE -> XREADGROUP ... 0 (own pending) -> ... >
 *
 * Batches (replayed or read) are taken over from their replies and applied
 * in arrival order from a zero-delay timer, so Redis prepares the next one
 * meanwhile. Entries at or before the last applied ID (a re-delivery after a
 * reconnect) are only acknowledged: each event is applied exactly once.
 */
#define _GNU_SOURCE
#include "slawatch/ingest.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "slawatch/argv.h"
#include "slawatch/log.h"

#define READ_BLOCK_MS "2000"
#define REPLAY_COUNT "1000"
#define REPLAY_COUNT_N 1000

enum phase { WAIT_STATE = 0, REPLAY, LIVE };

struct batch {
    struct batch *next;
    redisReply **entries;
    size_t n;
    bool replay;             /* from the start-up replay: no XACK */
    bool last;               /* replay: the final batch; group: a short read */
};

struct ingest {
    struct event_base *base;
    const struct config *cfg;
    struct core *core;
    struct rds_conn *reader;         /* XRANGE, XGROUP, XREADGROUP (blocks) */
    struct rds_conn *writer;         /* XACK, dead letters (durable queue) */
    struct ingest_hooks hooks;
    char key_events[KEY_MAX];
    char key_dead[KEY_MAX];

    enum phase phase;
    char replay_after[48];           /* "(<id>" for XRANGE */
    long replayed;
    bool group_ready;
    long claimed;                    /* XAUTOCLAIM: entries taken over */
    bool ready_told;
    bool reading;                    /* an XREADGROUP is in flight */
    bool pending_mode;               /* re-reading our own pending entries */
    char pending_after[48];
    bool drained;                    /* last read returned a short batch */
    bool stopping;
    struct ingest_position pos;      /* last applied ID, counters */
    struct batch *batches, *batches_tail; /* read, not yet applied */
    struct event *apply_ev;
    struct log_ratelimit reject_rl;
};

static void read_cb(struct rds_conn *conn, redisReply *reply, void *privdata);
static void ingest_read(struct ingest *ing);
static void replay_next(struct ingest *ing);

static void
set_drained(struct ingest *ing, bool drained)
{
    ing->drained = drained;
    if (ing->hooks.drained)
        ing->hooks.drained(ing->hooks.arg, drained);
}

/* ---- dead letters ------------------------------------------------------ */

static void
dead_letter(struct ingest *ing, const char *id, size_t id_len,
            const struct ev_field *fields, size_t nfields, const char *reason)
{
    struct cmd_argv a;
    argv_init(&a);
    argv_adds(&a, "XADD");
    argv_adds(&a, ing->key_dead);
    if (ing->cfg->events.dead_maxlen > 0) {
        argv_adds(&a, "MAXLEN");
        argv_adds(&a, "~");
        argv_addf(&a, "%ld", ing->cfg->events.dead_maxlen);
    }
    argv_adds(&a, "*");
    for (size_t i = 0; i < nfields; i++) {
        /* The original fields, except ones that would shadow ours. */
        if ((fields[i].name_len == 6 && memcmp(fields[i].name, "reason", 6) == 0) ||
            (fields[i].name_len == 9 && memcmp(fields[i].name, "source_id", 9) == 0))
            continue;
        argv_add(&a, fields[i].name, fields[i].name_len);
        argv_add(&a, fields[i].value, fields[i].value_len);
    }
    argv_adds(&a, "reason");
    argv_adds(&a, reason);
    argv_adds(&a, "source_id");
    argv_add(&a, id, id_len);
    if (argv_seal(&a) < 0)
        log_err("dead letter for %.*s lost: out of memory", (int)id_len, id);
    else if (rds_queue(ing->writer, NULL, NULL, (int)a.n, a.argv, a.lens) < 0)
        log_err("dead letter for %.*s lost: writer queue full", (int)id_len, id);
    argv_free(&a);
}

static void
reject(struct ingest *ing, const char *id, size_t id_len,
       const struct ev_field *fields, size_t nfields, const char *reason)
{
    long suppressed;
    ing->pos.rejected_total++;
    dead_letter(ing, id, id_len, fields, nfields, reason);
    if (log_ratelimit_ok(&ing->reject_rl, &suppressed)) {
        if (suppressed)
            log_warnx("%ld more rejected events not logged", suppressed);
        log_warnx("event %.*s rejected: %s", (int)id_len, id, reason);
    }
}

/* ---- one entry --------------------------------------------------------- */

/* True when id is at or before the last applied ID: a re-delivery after a
 * reconnect, already applied by this process. */
static bool
already_applied(const struct ingest *ing, uint64_t ms, uint64_t seq)
{
    return ms < ing->pos.last_ms || (ms == ing->pos.last_ms && seq <= ing->pos.last_seq);
}

static void
apply_entry(struct ingest *ing, const redisReply *entry, int64_t wall_ms)
{
    struct ev_field fields[INGEST_MAX_FIELDS];
    size_t nfields = 0;
    const redisReply *id = entry->element[0];
    const redisReply *kv = entry->element[1];
    uint64_t ms, seq;
    struct sla_event ev;
    const char *reason = NULL;

    if (stream_id_parse(id->str, id->len, &ms, &seq) < 0)
        return; /* not a stream ID: nothing to apply or acknowledge */
    if (already_applied(ing, ms, seq))
        return;
    ing->pos.last_ms = ms;
    ing->pos.last_seq = seq;
    ing->pos.events_total++;

    if (ingest_entry_fields(kv, fields, INGEST_MAX_FIELDS, &nfields, &reason) < 0) {
        reject(ing, id->str, id->len, fields, nfields, reason);
        return;
    }
    int rc = event_apply(ing->core, ing->cfg, fields, nfields, ms, wall_ms, &ev, &reason);
    if (rc == 0 && ev.future)
        ing->pos.future_total++;
    if (rc < 0)
        reject(ing, id->str, id->len, fields, nfields, reason);
}

int
ingest_entry_fields(const redisReply *kv, struct ev_field *fields, size_t max,
                    size_t *nfields, const char **reason)
{
    *nfields = 0;
    if (kv == NULL || kv->type != REDIS_REPLY_ARRAY) {
        /* The entry was deleted or trimmed while pending. */
        *reason = "entry deleted";
        return -1;
    }
    if (kv->elements % 2 != 0 || kv->elements / 2 > max) {
        *reason = "too many fields";
        return -1;
    }
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        const redisReply *f = kv->element[i], *v = kv->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            *nfields = 0;
            *reason = "malformed entry";
            return -1;
        }
        fields[*nfields].name = f->str;
        fields[*nfields].name_len = f->len;
        fields[*nfields].value = v->str;
        fields[*nfields].value_len = v->len;
        (*nfields)++;
    }
    return 0;
}

/* XACK for every entry of a batch, after the batch's outputs. */
static void
ack_batch(struct ingest *ing, redisReply **entries, size_t n)
{
    struct cmd_argv a;
    argv_init(&a);
    argv_adds(&a, "XACK");
    argv_adds(&a, ing->key_events);
    argv_adds(&a, ing->cfg->events.group);
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = entries[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        argv_add(&a, e->element[0]->str, e->element[0]->len);
    }
    /* Unacknowledged entries stay pending and are skipped as already
     * applied when they come back. */
    if (argv_seal(&a) < 0)
        log_warnx("cannot acknowledge a batch: out of memory");
    else if (a.n > 3 && rds_queue(ing->writer, NULL, NULL, (int)a.n, a.argv, a.lens) < 0)
        log_warnx("cannot queue XACK: writer queue full");
    argv_free(&a);
}

/* ---- batches ----------------------------------------------------------- */

static void
batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        freeReplyObject(b->entries[i]);
    free(b->entries);
    free(b);
}

static void start_group(struct ingest *ing);

static void
apply_batch(struct ingest *ing, struct batch *b)
{
    int64_t wall = now_wall_ms();
    for (size_t i = 0; i < b->n; i++) {
        const redisReply *e = b->entries[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        apply_entry(ing, e, wall);
        if (b->replay)
            ing->replayed++;
    }
    if (!b->replay && b->n > 0)
        ack_batch(ing, b->entries, b->n);
    if (b->replay && b->last) {
        log_notice("replayed %ld events after the checkpoint", ing->replayed);
        ing->phase = LIVE;
        if (rds_ready(ing->reader) && !ing->stopping)
            start_group(ing);
    } else if (!b->replay && b->last && !ing->pending_mode) {
        /* Drained: from now on the wall clock drives deadlines. */
        set_drained(ing, true);
    }
}

static void
drain(struct ingest *ing)
{
    while (ing->batches) {
        struct batch *b = ing->batches;
        ing->batches = b->next;
        if (ing->batches == NULL)
            ing->batches_tail = NULL;
        apply_batch(ing, b);
        batch_free(b);
    }
}

static void
apply_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ingest *ing = arg;
    (void)fd;
    (void)what;
    drain(ing);
    if (ing->hooks.applied)
        ing->hooks.applied(ing->hooks.arg);
    ingest_read(ing);
}

/* Takes over the entries of an array reply. Returns -1 on allocation
 * failure (the reply is then left as it was). */
static int
enqueue(struct ingest *ing, redisReply *array, bool replay, bool last)
{
    struct batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -1;
    b->entries = array->element;
    b->n = array->elements;
    b->replay = replay;
    b->last = last;
    array->element = NULL;
    array->elements = 0;
    if (ing->batches_tail)
        ing->batches_tail->next = b;
    else
        ing->batches = b;
    ing->batches_tail = b;
    struct timeval zero = { 0, 0 };
    evtimer_add(ing->apply_ev, &zero);
    return 0;
}

/* ---- the start-up replay ------------------------------------------------ */

static void replay_from(struct ingest *ing, const char *after, size_t len);

static void
replay_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct ingest *ing = privdata;
    (void)conn;
    if (reply == NULL)
        return; /* connection lost: on_ready resumes from the last applied ID */
    if (reply->type != REDIS_REPLY_ARRAY) {
        log_err("replay: XRANGE %s: %s", ing->key_events,
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        rds_reset(ing->reader);
        return;
    }
    size_t n = reply->elements;
    bool more = n == REPLAY_COUNT_N;
    if (more) {
        /* Ask for what follows before this batch is applied, so Redis
         * reads ahead meanwhile. */
        const redisReply *last = reply->element[n - 1];
        if (last->type != REDIS_REPLY_ARRAY || last->elements < 1 ||
            last->element[0]->type != REDIS_REPLY_STRING) {
            rds_reset(ing->reader);
            return;
        }
        replay_from(ing, last->element[0]->str, last->element[0]->len);
    }
    if (enqueue(ing, reply, true, !more) < 0) {
        log_err("replay: out of memory; retrying");
        rds_reset(ing->reader);
    }
}

static void
replay_from(struct ingest *ing, const char *after, size_t len)
{
    snprintf(ing->replay_after, sizeof(ing->replay_after), "(%.*s", (int)len, after);
    const char *argv[] = { "XRANGE", ing->key_events, ing->replay_after, "+",
                           "COUNT", REPLAY_COUNT };
    if (rds_send(ing->reader, replay_cb, ing, (int)ARRAY_LEN(argv), argv, NULL) < 0)
        rds_reset(ing->reader);
}

static void
replay_next(struct ingest *ing)
{
    char id[48];
    int len = snprintf(id, sizeof(id), "%" PRIu64 "-%" PRIu64, ing->pos.last_ms,
                       ing->pos.last_seq);
    replay_from(ing, id, (size_t)len);
}

void
ingest_replay(struct ingest *ing, const struct ingest_position *pos)
{
    ing->pos = *pos;
    ing->phase = REPLAY;
    ing->replayed = 0;
    if (rds_ready(ing->reader))
        replay_next(ing);
}

/* ---- the consumer group ------------------------------------------------- */

static void claim_next(struct ingest *ing, const char *cursor);

/* The group exists and holds nothing pending for others: read our own
 * pending entries, then new ones. */
static void
group_joined(struct ingest *ing)
{
    ing->group_ready = true;
    ing->pending_mode = true;
    snprintf(ing->pending_after, sizeof(ing->pending_after), "0");
    if (!ing->ready_told) {
        ing->ready_told = true;
        log_info("consuming %s as %s/%s", ing->key_events, ing->cfg->events.group,
                 ing->cfg->events.consumer);
        if (ing->hooks.ready)
            ing->hooks.ready(ing->hooks.arg);
    }
    ingest_read(ing);
}

/* The group's pending entries of every other consumer (an earlier leader,
 * a renamed host) become this consumer's, so that nothing stays pending:
 * the pending read that follows acknowledges those already applied. */
static void
claim_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct ingest *ing = privdata;
    (void)conn;
    if (reply == NULL)
        return; /* connection lost: on_ready starts over */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        log_err("XAUTOCLAIM on %s: %s", ing->key_events,
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        rds_reset(ing->reader);
        return;
    }
    const redisReply *ids = reply->element[1];
    if (ids->type == REDIS_REPLY_ARRAY)
        ing->claimed += (long)ids->elements;
    if (strcmp(reply->element[0]->str, "0-0") != 0) {
        claim_next(ing, reply->element[0]->str);
        return;
    }
    if (ing->claimed)
        log_notice("took over %ld pending entries of other consumers", ing->claimed);
    ing->claimed = 0;
    group_joined(ing);
}

static void
claim_next(struct ingest *ing, const char *cursor)
{
    char start[48];
    snprintf(start, sizeof(start), "%s", cursor);
    const char *argv[] = { "XAUTOCLAIM", ing->key_events, ing->cfg->events.group,
                           ing->cfg->events.consumer, "0", start, "COUNT", "1000",
                           "JUSTID" };
    if (rds_send(ing->reader, claim_cb, ing, (int)ARRAY_LEN(argv), argv, NULL) < 0)
        rds_reset(ing->reader);
}

static void
group_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct ingest *ing = privdata;
    (void)conn;
    if (reply == NULL)
        return; /* connection lost: on_ready starts over */
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) != 0) {
        log_err("cannot create consumer group %s on %s: %s", ing->cfg->events.group,
                ing->key_events, reply->str);
        rds_reset(ing->reader);
        return;
    }
    ing->claimed = 0;
    claim_next(ing, "0-0");
}

/* Creates the consumer group (an existing one is fine), then reads. */
static void
start_group(struct ingest *ing)
{
    /* A new group starts after the last applied entry: everything up to it
     * was applied by the replay, and delivering it again would only be read,
     * skipped and acknowledged. An existing group keeps its position. */
    char start[48] = "0";
    if (ing->pos.last_ms || ing->pos.last_seq)
        snprintf(start, sizeof(start), "%" PRIu64 "-%" PRIu64, ing->pos.last_ms,
                 ing->pos.last_seq);
    const char *argv[] = { "XGROUP", "CREATE", ing->key_events,
                           ing->cfg->events.group, start, "MKSTREAM" };
    ing->group_ready = false;
    ing->reading = false;
    if (rds_send(ing->reader, group_cb, ing, (int)ARRAY_LEN(argv), argv, NULL) < 0)
        rds_reset(ing->reader);
}

void
ingest_on_ready(struct rds_conn *conn, void *arg)
{
    struct ingest *ing = arg;
    ing->group_ready = false;
    ing->reading = false;
    if (ing->stopping)
        return;
    /* The checkpoint is loaded and the stream after it replayed before the
     * group is read. */
    switch (ing->phase) {
    case WAIT_STATE:
        if (ing->hooks.need_state)
            ing->hooks.need_state(ing->hooks.arg, conn);
        break;
    case REPLAY:
        replay_next(ing); /* resumed after a reconnect */
        break;
    case LIVE:
        start_group(ing);
        break;
    }
}

void
ingest_on_down(struct rds_conn *conn, void *arg)
{
    struct ingest *ing = arg;
    (void)conn;
    ing->reading = false;
    ing->group_ready = false;
    /* Nothing can be read while Redis is away: deadlines follow the wall
     * clock again, whatever the last batch looked like. */
    if (ing->phase == LIVE)
        set_drained(ing, true);
}

static void
ingest_read(struct ingest *ing)
{
    char count[16];
    if (ing->stopping || ing->reading || !ing->group_ready || !rds_ready(ing->reader))
        return;
    snprintf(count, sizeof(count), "%d", ing->cfg->events.batch);
    /* Block only when drained: after a full batch the next read returns at
     * once, so "drained" is known without waiting out a BLOCK during which
     * the wall clock would not drive deadlines. */
    const char *argv[] = { "XREADGROUP", "GROUP", ing->cfg->events.group,
                           ing->cfg->events.consumer, "COUNT", count,
                           "BLOCK", READ_BLOCK_MS, "STREAMS", ing->key_events,
                           ing->pending_mode ? ing->pending_after : ">" };
    const char *argv_nb[] = { "XREADGROUP", "GROUP", ing->cfg->events.group,
                              ing->cfg->events.consumer, "COUNT", count,
                              "STREAMS", ing->key_events,
                              ing->pending_mode ? ing->pending_after : ">" };
    bool block = ing->drained && !ing->pending_mode && ing->batches == NULL;
    if ((block ? rds_send(ing->reader, read_cb, ing, (int)ARRAY_LEN(argv), argv, NULL)
               : rds_send(ing->reader, read_cb, ing, (int)ARRAY_LEN(argv_nb), argv_nb,
                          NULL)) < 0) {
        rds_reset(ing->reader);
        return;
    }
    ing->reading = true;
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
    struct ingest *ing = privdata;
    (void)conn;
    ing->reading = false;
    if (reply == NULL)
        return; /* connection lost; pending entries are re-read later */
    if (reply->type == REDIS_REPLY_ERROR) {
        log_err("XREADGROUP on %s: %s", ing->key_events, reply->str);
        /* NOGROUP: the stream or group was deleted; recreate both. */
        rds_reset(ing->reader);
        return;
    }
    redisReply *entries = entries_of(reply);
    size_t n = entries ? entries->elements : 0;
    bool was_pending = ing->pending_mode;

    if (ing->pending_mode) {
        if (n == 0) {
            ing->pending_mode = false;
        } else {
            const redisReply *last = entries->element[n - 1];
            if (last->type == REDIS_REPLY_ARRAY && last->elements >= 1 &&
                last->element[0]->type == REDIS_REPLY_STRING)
                snprintf(ing->pending_after, sizeof(ing->pending_after), "%.*s",
                         (int)last->element[0]->len, last->element[0]->str);
        }
    }
    bool full = n == (size_t)ing->cfg->events.batch;
    if (n > 0 && enqueue(ing, entries, false, !full) < 0) {
        log_err("out of memory: batch left pending, read again later");
        rds_reset(ing->reader);
        return;
    }
    if (full || was_pending) {
        /* More is waiting: keep to event time until the stream is drained,
         * so a replay decides exactly as live processing did, and ask for
         * the next batch now. */
        set_drained(ing, false);
        ingest_read(ing);
    } else if (n == 0) {
        set_drained(ing, true);
        if (ing->hooks.applied)
            ing->hooks.applied(ing->hooks.arg);
        ingest_read(ing);
    }
    /* A short batch: apply_cb marks the stream drained once it is applied,
     * then reads again (blocking). */
}

/* ---- life cycle --------------------------------------------------------- */

struct ingest *
ingest_new(struct event_base *base, const struct config *cfg, struct core *core,
           struct rds_conn *reader, struct rds_conn *writer,
           const struct ingest_hooks *hooks)
{
    struct ingest *ing = calloc(1, sizeof(*ing));
    if (ing == NULL)
        return NULL;
    ing->base = base;
    ing->cfg = cfg;
    ing->core = core;
    ing->reader = reader;
    ing->writer = writer;
    ing->hooks = *hooks;
    ing->reject_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 20);
    ing->apply_ev = evtimer_new(base, apply_cb, ing);
    int a = snprintf(ing->key_events, KEY_MAX, "%sevents", cfg->redis.prefix);
    int b = snprintf(ing->key_dead, KEY_MAX, "%sevents:dead", cfg->redis.prefix);
    if (ing->apply_ev == NULL || a >= KEY_MAX || b >= KEY_MAX) {
        ingest_free(ing);
        return NULL;
    }
    return ing;
}

void
ingest_free(struct ingest *ing)
{
    if (ing == NULL)
        return;
    while (ing->batches) {
        struct batch *b = ing->batches;
        ing->batches = b->next;
        batch_free(b);
    }
    if (ing->apply_ev)
        event_free(ing->apply_ev);
    free(ing);
}

void
ingest_set_config(struct ingest *ing, const struct config *cfg)
{
    ing->cfg = cfg;
}

void
ingest_stop(struct ingest *ing)
{
    ing->stopping = true;
    drain(ing);
}

void
ingest_position(const struct ingest *ing, struct ingest_position *pos)
{
    *pos = ing->pos;
}
