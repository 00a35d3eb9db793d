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
 *
 * Bounds: a batch asks for as many entries as fit READ_BYTES_BUDGET at the
 * size of the last batch's entries (starting at READ_COUNT_START, at most
 * doubling per batch, never above events.batch), so memory per batch stays
 * near the budget whatever the producers write; an entry over
 * MAX_ENTRY_BYTES is dead-lettered as `entry too large`, and a dead letter
 * copies at most DEAD_COPY_MAX bytes of the original fields. Reading pauses
 * while the writer's queue is over its cap, and the XACK of a batch is a
 * barrier on the writer: sent only once the batch's outputs were accepted.
 * An error reply on the stream (a key that is not a stream, a deleted
 * group) is retried with its own backoff, on the same connection.
 */
#define _GNU_SOURCE
#include "slawatch/ingest.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "slawatch/argv.h"
#include "slawatch/log.h"

#define READ_BLOCK_MS "2000"
#define READ_BLOCK_MS_N 2000
#define REPLAY_COUNT_N 1000
#define READ_BYTES_BUDGET (4u << 20)
#define READ_COUNT_START 16
#define MAX_ENTRY_BYTES (64u << 10)   /* field names and values of one entry */
#define DEAD_COPY_MAX 1024            /* bytes of original fields in a dead letter */
#define STREAM_RETRY_MIN_MS 200
#define STREAM_RETRY_MAX_MS 10000
#define PAUSE_CHECK_MS 100

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
    size_t count;                    /* entries the next read asks for */
    size_t asked;                    /* ... the read in flight asked for */
    /* Errors on the stream: retried after their own backoff. */
    struct event *retry_ev;
    int64_t retry_ms;
    uint64_t stream_errors;
    char problem[2 * KEY_MAX + 256];
    struct log_ratelimit stream_rl;
    /* Back-pressure: the writer's queue is over its cap. */
    struct event *pause_ev;
    bool paused;
    bool replay_waiting;             /* the next XRANGE waits for the pause */
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
    /* The original fields, except ones that would shadow ours, up to
     * DEAD_COPY_MAX bytes: the first bytes of a huge one are enough to
     * find its producer. */
    size_t room = DEAD_COPY_MAX;
    bool cut = false;
    for (size_t i = 0; i < nfields; i++) {
        if ((fields[i].name_len == 6 && memcmp(fields[i].name, "reason", 6) == 0) ||
            (fields[i].name_len == 9 && memcmp(fields[i].name, "source_id", 9) == 0) ||
            (fields[i].name_len == 9 && memcmp(fields[i].name, "truncated", 9) == 0))
            continue;
        if (fields[i].name_len >= room) {
            cut = true;
            break;
        }
        size_t vlen = fields[i].value_len;
        if (vlen > room - fields[i].name_len) {
            vlen = room - fields[i].name_len;
            cut = true;
        }
        argv_add(&a, fields[i].name, fields[i].name_len);
        argv_add(&a, fields[i].value, vlen);
        room -= fields[i].name_len + vlen;
        if (cut)
            break;
    }
    if (cut) {
        argv_adds(&a, "truncated");
        argv_adds(&a, "1");
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
    /* The first `max` fields, kept for a dead letter whatever else is
     * wrong with the entry. */
    size_t entry_bytes = 0;
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        const redisReply *f = kv->element[i], *v = kv->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            *reason = "malformed entry";
            return -1;
        }
        entry_bytes += f->len + v->len;
        if (*nfields == max)
            continue;
        fields[*nfields].name = f->str;
        fields[*nfields].name_len = f->len;
        fields[*nfields].value = v->str;
        fields[*nfields].value_len = v->len;
        (*nfields)++;
    }
    if (kv->elements % 2 != 0 || kv->elements / 2 > max) {
        *reason = "too many fields";
        return -1;
    }
    if (entry_bytes > MAX_ENTRY_BYTES) {
        *reason = "entry too large";
        return -1;
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
    else if (a.n > 3 && rds_queue_ex(ing->writer, RDS_BARRIER, NULL, NULL, (int)a.n,
                                     a.argv, a.lens) < 0)
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

/* ---- bounds and errors --------------------------------------------------- */

/* Bytes of an array of stream entries (IDs, field names and values). */
static size_t
entries_bytes(const redisReply *entries)
{
    size_t bytes = 0;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t k = 0; k < e->elements; k++) {
            const redisReply *x = e->element[k];
            if (x->type == REDIS_REPLY_STRING)
                bytes += x->len;
            else if (x->type == REDIS_REPLY_ARRAY)
                for (size_t j = 0; j < x->elements; j++)
                    if (x->element[j]->type == REDIS_REPLY_STRING)
                        bytes += x->element[j]->len;
        }
    }
    return bytes;
}

/* After a batch of n entries (asked: what the read asked for): the next
 * read asks for what fits READ_BYTES_BUDGET at this batch's entry size,
 * at most twice as many as this one. */
static void
adapt_count(struct ingest *ing, const redisReply *entries, size_t asked)
{
    size_t n = entries->elements;
    if (n == 0)
        return;
    size_t per_entry = entries_bytes(entries) / n + 1;
    size_t fit = READ_BYTES_BUDGET / per_entry;
    size_t next = n == asked ? asked * 2 : ing->count;
    if (next > fit)
        next = fit;
    ing->count = next < 1 ? 1 : next;
}

static size_t
read_count(const struct ingest *ing, size_t max)
{
    return ing->count < max ? ing->count : max;
}

/* An error reply on the stream: counted, logged at most stream_rl's rate,
 * and the step tried again after a backoff that only a good read resets
 * (a key that is not a stream fails every time). */
static void
stream_error(struct ingest *ing, const char *what, const redisReply *reply)
{
    long suppressed;
    struct timeval tv = { ing->retry_ms / 1000, (ing->retry_ms % 1000) * 1000 };
    bool first = ing->problem[0] == '\0'; /* of this episode: always logged */
    ing->stream_errors++;
    snprintf(ing->problem, sizeof(ing->problem), "%s %s: %s", what, ing->key_events,
             reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    if (log_ratelimit_ok(&ing->stream_rl, &suppressed) || first) {
        if (suppressed)
            log_err("%ld more errors reading %s not logged", suppressed, ing->key_events);
        log_err("%s; trying again in %lld ms", ing->problem, (long long)ing->retry_ms);
    }
    evtimer_add(ing->retry_ev, &tv);
    ing->retry_ms *= 2;
    if (ing->retry_ms > STREAM_RETRY_MAX_MS)
        ing->retry_ms = STREAM_RETRY_MAX_MS;
}

static void
stream_ok(struct ingest *ing)
{
    if (ing->problem[0])
        log_notice("%s can be read again", ing->key_events);
    ing->problem[0] = '\0';
    ing->retry_ms = STREAM_RETRY_MIN_MS;
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ingest *ing = arg;
    (void)fd;
    (void)what;
    if (ing->stopping || !rds_ready(ing->reader))
        return; /* on_ready resumes */
    if (ing->phase == REPLAY)
        replay_next(ing);
    else if (ing->phase == LIVE)
        start_group(ing);
}

/* True while the writer's queue is over its cap: no read is sent, and time
 * waits for the stream (no deadline is decided by the wall clock with
 * events unread), so the queue stops growing. A timer looks again. */
static bool
paused_for_writes(struct ingest *ing)
{
    if (!rds_over_cap(ing->writer)) {
        if (ing->paused)
            log_notice("the Redis write queue is below its cap again: reading resumes");
        ing->paused = false;
        return false;
    }
    if (!ing->paused) {
        log_warnx("the Redis write queue is over its cap (%zu writes, %zu bytes): "
                  "reading paused", rds_pending(ing->writer), ing->writer->queued_bytes);
        if (ing->phase == LIVE)
            set_drained(ing, false);
    }
    ing->paused = true;
    struct timeval tv = { 0, PAUSE_CHECK_MS * 1000 };
    evtimer_add(ing->pause_ev, &tv);
    return true;
}

static void replay_send(struct ingest *ing);

static void
pause_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ingest *ing = arg;
    (void)fd;
    (void)what;
    if (paused_for_writes(ing) || ing->stopping)
        return;
    if (ing->replay_waiting) {
        ing->replay_waiting = false;
        if (rds_ready(ing->reader))
            replay_send(ing);
    } else {
        ingest_read(ing);
    }
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
        stream_error(ing, "replay: XRANGE", reply);
        return;
    }
    size_t n = reply->elements;
    bool more = n > 0 && n == ing->asked;
    stream_ok(ing);
    adapt_count(ing, reply, ing->asked);
    if (more) {
        /* Ask for what follows before this batch is applied, so Redis
         * reads ahead meanwhile. */
        const redisReply *last = reply->element[n - 1];
        if (last->type != REDIS_REPLY_ARRAY || last->elements < 1 ||
            last->element[0]->type != REDIS_REPLY_STRING) {
            stream_error(ing, "replay: XRANGE", last);
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
replay_send(struct ingest *ing)
{
    char count[16];
    ing->asked = read_count(ing, REPLAY_COUNT_N);
    snprintf(count, sizeof(count), "%zu", ing->asked);
    const char *argv[] = { "XRANGE", ing->key_events, ing->replay_after, "+",
                           "COUNT", count };
    if (rds_send(ing->reader, replay_cb, ing, (int)ARRAY_LEN(argv), argv, NULL) < 0)
        rds_reset(ing->reader);
}

static void
replay_from(struct ingest *ing, const char *after, size_t len)
{
    snprintf(ing->replay_after, sizeof(ing->replay_after), "(%.*s", (int)len, after);
    if (paused_for_writes(ing)) {
        ing->replay_waiting = true; /* pause_cb sends it */
        return;
    }
    replay_send(ing);
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
        char what[KEY_MAX + 64];
        snprintf(what, sizeof(what), "XGROUP CREATE %s", ing->cfg->events.group);
        stream_error(ing, what, reply);
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
    evtimer_del(ing->retry_ev);
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
        ing->replay_waiting = false;
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
    evtimer_del(ing->retry_ev);
    /* Nothing can be read while Redis is away: deadlines follow the wall
     * clock again, whatever the last batch looked like (unless reading was
     * paused for the write queue: then time still waits for the stream). */
    if (ing->phase == LIVE && !ing->paused)
        set_drained(ing, true);
}

static void
ingest_read(struct ingest *ing)
{
    char count[16];
    if (ing->stopping || ing->reading || !ing->group_ready || !rds_ready(ing->reader))
        return;
    if (paused_for_writes(ing))
        return;
    ing->asked = read_count(ing, (size_t)ing->cfg->events.batch);
    snprintf(count, sizeof(count), "%zu", ing->asked);
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
    if ((block ? rds_send_block(ing->reader, READ_BLOCK_MS_N, read_cb, ing,
                                (int)ARRAY_LEN(argv), argv, NULL)
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
        /* NOGROUP: the stream or group was deleted; the retry recreates
         * both. WRONGTYPE: the key is no stream; the retry backs off. */
        stream_error(ing, "XREADGROUP", reply);
        return;
    }
    stream_ok(ing);
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
    bool full = n > 0 && n == ing->asked;
    if (entries)
        adapt_count(ing, entries, ing->asked);
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
    ing->stream_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(60, 5);
    ing->retry_ms = STREAM_RETRY_MIN_MS;
    ing->count = READ_COUNT_START;
    ing->apply_ev = evtimer_new(base, apply_cb, ing);
    ing->retry_ev = evtimer_new(base, retry_cb, ing);
    ing->pause_ev = evtimer_new(base, pause_cb, ing);
    int a = snprintf(ing->key_events, KEY_MAX, "%sevents", cfg->redis.prefix);
    int b = snprintf(ing->key_dead, KEY_MAX, "%sevents:dead", cfg->redis.prefix);
    if (ing->apply_ev == NULL || ing->retry_ev == NULL || ing->pause_ev == NULL ||
        a >= KEY_MAX || b >= KEY_MAX) {
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
    if (ing->retry_ev)
        event_free(ing->retry_ev);
    if (ing->pause_ev)
        event_free(ing->pause_ev);
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
    evtimer_del(ing->retry_ev);
    evtimer_del(ing->pause_ev);
    drain(ing);
}

void
ingest_position(const struct ingest *ing, struct ingest_position *pos)
{
    *pos = ing->pos;
}

uint64_t
ingest_stream_errors(const struct ingest *ing)
{
    return ing->stream_errors;
}

bool
ingest_problem(const struct ingest *ing, char *buf, size_t len)
{
    buf[0] = '\0';
    if (ing->problem[0])
        snprintf(buf, len, "%s", ing->problem);
    else if (ing->paused)
        snprintf(buf, len, "reading paused: the Redis write queue is over its cap");
    return buf[0] != '\0';
}
