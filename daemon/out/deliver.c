/*
 * deliver.c - at-least-once delivery of the outbox (see deliver.h), the
 * bookkeeping half: the entries (one per stored notification), their id
 * table and due heap, storing new notifications (outbox.c), reload and
 * re-driving the outbox of an earlier run. The queues, rate limits, HTTP
 * attempts and the retry policy are deliver_send.c's (see deliver_int.h).
 * Must not block the loop, must not log URLs (they may carry tokens),
 * secrets or signatures, and must not free an entry while a Redis callback
 * still holds it (`busy`; a removed busy entry is `dead` and freed by that
 * callback).
 *
 * Life of an entry (its record is in memory all along):
 *
 *   STORING --HSET answered--> WAITING (heap, until due) --> READY (webhook
 *   queue) --slot+token--> SENDING --2xx--> HDEL, freed
 *                                    \--retry--> HSET (state) --> WAITING
 *                                    \--give up--> HDEL
 *   alertmanager: 2xx --> WAITING `resend` --> checked and sent again, or
 *                 sent with endsAt once its clock stopped, then HDEL
 *
 * Records read back at start are range-checked (deliver.c check_loaded): a
 * due time that could never come is due now, an exhausted attempt count or
 * a clock time no body can carry is given up (counted, logged).
 */
#define _GNU_SOURCE
#include "slawatch/deliver.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "slawatch/deliver_int.h"

#define TIMER_MAX_MS 60000
/* Slack on top of the longest wait the configuration can ask for, when
 * range-checking the due time of a record read back at start. */
#define DUE_SLACK_MS (3600 * 1000)
/* ---- small helpers ----------------------------------------------------- */

static uint64_t
id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return h;
}

static struct entry *
find(const struct deliver *d, const char *id)
{
    if (d->nbuckets == 0)
        return NULL;
    struct entry *e = d->table[id_hash(id) & (d->nbuckets - 1)];
    while (e && strcmp(e->id, id) != 0)
        e = e->hnext;
    return e;
}

static int
table_insert(struct deliver *d, struct entry *e)
{
    if (d->count + 1 > d->nbuckets) {
        size_t n = d->nbuckets ? d->nbuckets * 2 : 1024;
        struct entry **t = calloc(n, sizeof(*t));
        if (t == NULL)
            return -1;
        for (size_t i = 0; i < d->nbuckets; i++)
            for (struct entry *x = d->table[i], *next; x; x = next) {
                next = x->hnext;
                size_t b = id_hash(x->id) & (n - 1);
                x->hnext = t[b];
                t[b] = x;
            }
        free(d->table);
        d->table = t;
        d->nbuckets = n;
    }
    size_t b = id_hash(e->id) & (d->nbuckets - 1);
    e->hnext = d->table[b];
    d->table[b] = e;
    d->count++;
    return 0;
}

void
dlv_table_remove(struct deliver *d, struct entry *e)
{
    struct entry **p = &d->table[id_hash(e->id) & (d->nbuckets - 1)];
    while (*p && *p != e)
        p = &(*p)->hnext;
    if (*p) {
        *p = e->hnext;
        d->count--;
    }
}

static int
hook_index(const struct deliver *d, const char *name)
{
    for (size_t i = 0; i < d->nhooks; i++)
        if (d->hooks_rt[i]->cfg && strcmp(d->hooks_rt[i]->name, name) == 0)
            return (int)i;
    return -1;
}

void
dlv_set_flags(struct entry *e, uint8_t flags)
{
    bool was = (e->flags & HOOK_F_DELIVERED) && !(e->flags & HOOK_F_RESOLVING);
    bool now = (flags & HOOK_F_DELIVERED) && !(flags & HOOK_F_RESOLVING);
    e->d->firing += (size_t)now - (size_t)was;
    e->flags = flags;
}

void
dlv_set_rec(struct entry *e, char *rec, size_t len)
{
    e->d->rec_bytes -= e->rec_len;
    free(e->rec);
    e->rec = rec;
    e->rec_len = rec ? len : 0;
    e->d->rec_bytes += e->rec_len;
}

void
dlv_entry_free(struct entry *e)
{
    dlv_set_rec(e, NULL, 0);
    free(e);
}

/* Takes the entry out of the index and the outbox. Freed now, or by the
 * Redis callback that still holds it. */
void
dlv_queue_unlink(struct entry *e)
{
    struct hook_rt *h = hook_of(e);
    if (e->qprev)
        e->qprev->qnext = e->qnext;
    else if (h->qhead == e)
        h->qhead = e->qnext;
    if (e->qnext)
        e->qnext->qprev = e->qprev;
    else if (h->qtail == e)
        h->qtail = e->qprev;
    e->qnext = e->qprev = NULL;
}

void
dlv_entry_remove(struct entry *e)
{
    struct deliver *d = e->d;
    dlv_table_remove(d, e);
    heap_remove(&d->due, &e->node);
    if (e->state == ST_READY)
        dlv_queue_unlink(e);
    dlv_set_flags(e, 0);
    if (outbox_del(&d->ob, e->id) < 0)
        log_warnx("outbox: cannot queue the removal of %s: writer queue full",
                  e->id);
    if (e->busy) {
        e->dead = true;
        e->hnext = d->dead;
        d->dead = e;
    } else
        dlv_entry_free(e);
}

/* A dead entry's last callback came: unlink and free it. */
void
dlv_dead_free(struct entry *e)
{
    struct entry **p = &e->d->dead;
    while (*p && *p != e)
        p = &(*p)->hnext;
    if (*p)
        *p = e->hnext;
    dlv_entry_free(e);
}

/* ---- the due heap ------------------------------------------------------ */

static void
arm_due_timer(struct deliver *d)
{
    struct heap_node *top = heap_peek(&d->due);
    if (top == NULL) {
        evtimer_del(d->due_ev);
        return;
    }
    int64_t delay = top->key - now_wall_ms();
    if (delay < 0)
        delay = 0;
    if (delay > TIMER_MAX_MS)
        delay = TIMER_MAX_MS;
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(d->due_ev, &tv);
}

static void
make_ready(struct entry *e)
{
    struct hook_rt *h = hook_of(e);
    e->state = ST_READY;
    e->qnext = NULL;
    e->qprev = h->qtail;
    if (h->qtail)
        h->qtail->qnext = e;
    else
        h->qhead = e;
    h->qtail = e;
}

static void
due_cb(evutil_socket_t fd, short what, void *arg)
{
    struct deliver *d = arg;
    struct heap_node *node;
    int64_t now = now_wall_ms();
    (void)fd;
    (void)what;
    while ((node = heap_peek(&d->due)) != NULL && node->key <= now) {
        struct entry *e =
            (struct entry *)((char *)node - offsetof(struct entry, node));
        heap_remove(&d->due, node);
        make_ready(e);
    }
    for (size_t i = 0; i < d->nhooks; i++)
        if (d->hooks_rt[i]->qhead)
            dlv_pump(d->hooks_rt[i]);
    arm_due_timer(d);
}

/* WAITING until due_ms, or READY now. */
void
dlv_schedule(struct entry *e)
{
    struct deliver *d = e->d;
    if (e->due_ms <= now_wall_ms()) {
        make_ready(e);
        dlv_pump(hook_of(e));
        return;
    }
    e->state = ST_WAITING;
    if (heap_set(&d->due, &e->node, e->due_ms) < 0) {
        /* Out of memory for the heap: try at once rather than lose it. */
        make_ready(e);
        dlv_pump(hook_of(e));
        return;
    }
    if (heap_peek(&d->due) == &e->node)
        arm_due_timer(d);
}

/* ---- creating entries --------------------------------------------------- */

static void
stored_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct entry *e = privdata;
    (void)conn;
    e->busy--;
    if (e->dead) {
        if (e->busy == 0)
            dlv_dead_free(e);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR)
        log_err("outbox: storing %s failed: %s; delivering it anyway", e->id,
                reply->str);
    dlv_schedule(e);
}

static struct hook_rt *
hook_new(struct deliver *d, const struct cfg_webhook *wh)
{
    struct hook_rt **v = realloc(d->hooks_rt, (d->nhooks + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    d->hooks_rt = v;
    struct hook_rt *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->d = d;
    hook_copy(h->name, sizeof(h->name), wh->name, strlen(wh->name));
    h->cfg = wh;
    h->window = DELIVER_MAX_INFLIGHT;
    h->tokens = wh->max_rate > 1 ? wh->max_rate : 1;
    h->refill_us = now_mono_us();
    h->pump_ev = evtimer_new(d->base, dlv_pump_cb, h);
    if (h->pump_ev == NULL) {
        free(h);
        return NULL;
    }
    d->hooks_rt[d->nhooks++] = h;
    return h;
}

static struct entry *
entry_new(struct deliver *d, const char *id, int hook)
{
    struct entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    heap_node_init(&e->node);
    e->d = d;
    e->hook = (uint32_t)hook;
    hook_copy(e->id, sizeof(e->id), id, strlen(id));
    if (table_insert(d, e) < 0) {
        free(e);
        return NULL;
    }
    return e;
}

int
deliver_submit(struct deliver *d, struct hook_note *n)
{
    int64_t now = now_wall_ms();
    char about[HOOK_SUBJECT_LEN];
    n->created_ms = now;
    if (hook_delivery_id(n) < 0) {
        d->failed_total++;
        log_err("webhook %s: cannot compute a delivery id", n->webhook);
        return -1;
    }
    if (find(d, n->id))
        return 0;
    int hook = hook_index(d, n->webhook);
    char *rec = hook < 0 ? NULL : hook_note_encode(n);
    struct entry *e = rec ? entry_new(d, n->id, hook) : NULL;
    if (e == NULL) {
        free(rec);
        d->failed_total++;
        log_err("webhook %s: %s for %s lost: out of memory", n->webhook,
                hook_kind_name(n->kind), hook_note_subject(n, about));
        return -1;
    }
    e->due_ms = n->due_ms;
    e->attempts = (uint32_t)n->attempts;
    dlv_set_flags(e, (uint8_t)n->flags);
    e->state = ST_STORING;
    if (outbox_put(&d->ob, e->id, rec, strlen(rec), stored_cb, e) < 0) {
        dlv_table_remove(d, e);
        dlv_set_flags(e, 0);
        free(e);
        free(rec);
        d->failed_total++;
        log_err("webhook %s: %s for %s lost: writer queue full", n->webhook,
                hook_kind_name(n->kind), hook_note_subject(n, about));
        return -1;
    }
    e->busy++;
    dlv_set_rec(e, rec, strlen(rec));
    return 0;
}

/* ---- re-driving the outbox at start ------------------------------------ */

/* The longest wait the configuration can ask for: an `after` level, an
 * alertmanager `resend`, a backoff (a Retry-After is clamped to it). */
static int64_t
due_horizon_ms(const struct config *cfg)
{
    int64_t h = 0;
    for (size_t i = 0; i < cfg->nescalations; i++)
        if (cfg->escalations[i].after_ms > h)
            h = cfg->escalations[i].after_ms;
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        if (cfg->webhooks[i].resend_ms > h)
            h = cfg->webhooks[i].resend_ms;
        if (cfg->webhooks[i].max_backoff_ms > h)
            h = cfg->webhooks[i].max_backoff_ms;
    }
    return h + DUE_SLACK_MS;
}

/* Range-checks the delivery state of a record read back from the outbox,
 * which anything with access to Redis may have written. A due or creation
 * time that could never come (INT64_MAX, negative, beyond the longest wait
 * the configuration allows) is taken as now, an endsAt outside the times a
 * body can carry as "not yet"; *repaired says so. Returns why the record
 * must be given up (its attempts are spent), or NULL. */
static const char *
check_loaded(const struct deliver *d, const struct cfg_webhook *wh,
             struct hook_note *n, int64_t now, bool *repaired)
{
    int64_t horizon = due_horizon_ms(d->cfg);
    *repaired = false;
    if (n->due_ms < 0 || n->due_ms > now + horizon) {
        n->due_ms = now;
        *repaired = true;
    }
    if (n->created_ms < 0 || n->created_ms > now + horizon) {
        n->created_ms = now;
        *repaired = true;
    }
    if (n->ends_ms < 0 || n->ends_ms > HOOK_TIME_MAX_MS) {
        n->ends_ms = 0;
        *repaired = true;
    }
    if (!(n->flags & HOOK_F_DELIVERED) && n->attempts >= wh->attempts)
        return "its attempts are spent";
    return NULL;
}

static void
load_one(void *arg, const char *field, size_t field_len, const char *value,
         size_t value_len)
{
    struct deliver *d = arg;
    struct hook_note n;
    const char *why;
    char id[HOOK_ID_LEN + 1];
    char about[HOOK_SUBJECT_LEN];
    long suppressed = 0;

    if (field_len != HOOK_ID_LEN)
        return; /* not ours */
    hook_copy(id, sizeof(id), field, field_len);
    if (find(d, id))
        return; /* created again by this run already */
    if (hook_note_decode(&n, value, value_len, &why) < 0 ||
        strcmp(n.id, id) != 0) {
        d->failed_total++;
        if (log_ratelimit_ok(&d->fail_rl, &suppressed))
            log_err("outbox: record %s is unusable (%s); given up", id,
                    why ? why : "id mismatch");
        if (outbox_del(&d->ob, id) < 0)
            log_warnx("outbox: cannot queue the removal of %s", id);
        return;
    }
    int hook = hook_index(d, n.webhook);
    if (hook < 0) {
        log_warnx("outbox: %s for %s names webhook %s, which is no longer "
                  "configured; dropped",
                  hook_kind_name(n.kind), hook_note_subject(&n, about),
                  n.webhook);
        if (outbox_del(&d->ob, id) < 0)
            log_warnx("outbox: cannot queue the removal of %s", id);
        return;
    }
    int64_t now = now_wall_ms();
    bool repaired;
    const char *spent =
        check_loaded(d, d->hooks_rt[hook]->cfg, &n, now, &repaired);
    if (spent) {
        d->failed_total++;
        if (log_ratelimit_ok(&d->fail_rl, &suppressed))
            log_err("webhook %s: gave up on %s %s (%s) read back from the "
                    "outbox: %s (%d attempts)",
                    n.webhook, hook_kind_name(n.kind), id,
                    hook_note_subject(&n, about), spent, n.attempts);
        if (outbox_del(&d->ob, id) < 0)
            log_warnx("outbox: cannot queue the removal of %s", id);
        return;
    }
    if (repaired && log_ratelimit_ok(&d->repair_rl, &suppressed))
        log_warnx("outbox: record %s had a due, creation or end time out of "
                  "range; taken as now (due at once)",
                  id);
    char *rec = repaired ? hook_note_encode(&n) : malloc(value_len + 1);
    struct entry *e = rec ? entry_new(d, id, hook) : NULL;
    if (e == NULL) {
        free(rec);
        log_err("outbox: out of memory re-driving %s; it stays in the outbox "
                "for the next start",
                id);
        return;
    }
    if (!repaired) {
        memcpy(rec, value, value_len);
        rec[value_len] = '\0';
    }
    dlv_set_rec(e, rec, repaired ? strlen(rec) : value_len);
    e->due_ms = n.due_ms;
    e->ends_ms = n.ends_ms;
    e->attempts = (uint32_t)n.attempts; /* 0..HOOK_ATTEMPTS_MAX */
    dlv_set_flags(e, (uint8_t)n.flags);
    d->loaded_count++;
    if (repaired)
        (void)dlv_store(e); /* a refusal is logged; delivered all the same */
    dlv_schedule(e);
}

static void
load_done(void *arg)
{
    struct deliver *d = arg;
    if (d->loaded_count)
        log_notice("outbox: %zu notification%s from an earlier run re-driven",
                   d->loaded_count, d->loaded_count == 1 ? "" : "s");
}

/* Every notification in memory is stored again, in case the Redis that
 * answers now is not the one that had them (restarted empty, a failover):
 * HSET of the same record is harmless when it is there, and dlv_store
 * logs those that were not. */
static void
store_all_again(struct deliver *d)
{
    size_t n = 0;
    for (size_t b = 0; b < d->nbuckets; b++)
        for (struct entry *e = d->table[b]; e; e = e->hnext)
            if (e->state != ST_STORING && dlv_store(e) == 0)
                n++;
    if (n)
        log_info("outbox: %zu notification%s written again after the "
                 "reconnection",
                 n, n == 1 ? "" : "s");
}

void
deliver_writer_ready(struct deliver *d)
{
    if (d->writer_seen)
        store_all_again(d);
    d->writer_seen = true;
    outbox_load(&d->ob, load_one, load_done, d);
}

/* ---- the rest of the interface ----------------------------------------- */

enum hook_state
deliver_lookup(const struct deliver *d, const char *id)
{
    const struct entry *e = find(d, id);
    if (e == NULL)
        return HOOK_STATE_NONE;
    /* Not yet past its clock check: it has not fired. */
    if ((e->flags & HOOK_F_COND) && !(e->flags & HOOK_F_DELIVERED) &&
        e->attempts == 0 &&
        (e->state == ST_STORING || e->state == ST_WAITING ||
         e->state == ST_READY))
        return HOOK_STATE_WAITING;
    return HOOK_STATE_ACTIVE;
}

void
deliver_cancel(struct deliver *d, const char *id)
{
    struct entry *e = find(d, id);
    if (e && deliver_lookup(d, id) == HOOK_STATE_WAITING)
        dlv_entry_remove(e);
}

void
deliver_poke(struct deliver *d, const char *id)
{
    struct entry *e = find(d, id);
    if (e == NULL)
        return;
    if (e->state == ST_WAITING && (e->flags & HOOK_F_DELIVERED)) {
        heap_remove(&d->due, &e->node);
        e->due_ms = now_wall_ms();
        make_ready(e);
        dlv_pump(hook_of(e));
    } else
        e->poked = true;
}

void
deliver_set_config(struct deliver *d, const struct config *cfg)
{
    d->cfg = cfg;
    for (size_t i = 0; i < d->nhooks; i++)
        d->hooks_rt[i]->cfg = NULL;
    for (size_t w = 0; w < cfg->nwebhooks; w++) {
        const struct cfg_webhook *wh = &cfg->webhooks[w];
        struct hook_rt *h = NULL;
        for (size_t i = 0; i < d->nhooks && h == NULL; i++)
            if (strcmp(d->hooks_rt[i]->name, wh->name) == 0)
                h = d->hooks_rt[i];
        if (h) {
            h->cfg = wh;
            h->warned_gone = false;
        } else if (hook_new(d, wh) == NULL)
            log_err("webhook %s: out of memory; its notifications stay in the "
                    "outbox",
                    wh->name);
    }
    /* Levels still waiting for their `after` take the due time of the new
     * config (a tier's calendar added, changed or removed). */
    for (size_t b = 0; d->hooks.due_of && b < d->nbuckets; b++) {
        for (struct entry *e = d->table[b], *next; e; e = next) {
            next = e->hnext;
            struct hook_note n;
            const char *why;
            if (e->state != ST_WAITING || e->attempts != 0 || !(e->flags & HOOK_F_COND) ||
                e->rec == NULL || hook_note_decode(&n, e->rec, e->rec_len, &why) < 0)
                continue;
            int64_t due = d->hooks.due_of(d->hooks.arg, &n);
            if (due == e->due_ms)
                continue;
            e->due_ms = due;
            dlv_persist(e);
            dlv_schedule(e);
        }
    }
    for (size_t i = 0; i < d->nhooks; i++)
        dlv_pump(d->hooks_rt[i]);
}

struct deliver *
deliver_new(struct event_base *base, struct rds_conn *writer,
            const struct config *cfg, const struct deliver_hooks *hooks)
{
    struct deliver *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->base = base;
    d->cfg = cfg;
    d->hooks = *hooks;
    d->retry_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 20);
    d->fail_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 20);
    d->repair_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 20);
    heap_init(&d->due);
    if (getrandom(&d->rng, sizeof(d->rng), GRND_NONBLOCK) != sizeof(d->rng))
        d->rng = (uint64_t)now_mono_us();
    d->rng |= 1;
    d->due_ev = evtimer_new(base, due_cb, d);
    d->http = hook_http_new(base);
    if (d->due_ev == NULL || d->http == NULL ||
        outbox_init(&d->ob, writer, cfg->redis.prefix) < 0) {
        deliver_free(d);
        return NULL;
    }
    for (size_t w = 0; w < cfg->nwebhooks; w++)
        if (hook_new(d, &cfg->webhooks[w]) == NULL) {
            deliver_free(d);
            return NULL;
        }
    return d;
}

void
deliver_free(struct deliver *d)
{
    if (d == NULL)
        return;
    hook_http_free(d->http);
    for (size_t b = 0; b < d->nbuckets; b++)
        for (struct entry *e = d->table[b], *next; e; e = next) {
            next = e->hnext;
            dlv_entry_free(e);
        }
    free(d->table);
    while (d->dead) {
        struct entry *e = d->dead;
        d->dead = e->hnext;
        dlv_entry_free(e);
    }
    heap_free(&d->due);
    for (size_t i = 0; i < d->nhooks; i++) {
        event_free(d->hooks_rt[i]->pump_ev);
        free(d->hooks_rt[i]);
    }
    free(d->hooks_rt);
    if (d->due_ev)
        event_free(d->due_ev);
    free(d);
}

size_t
deliver_pending(const struct deliver *d)
{
    return d->count - d->firing;
}

uint64_t
deliver_failed_total(const struct deliver *d)
{
    return d->failed_total;
}

uint64_t
deliver_sent_total(const struct deliver *d)
{
    return d->sent_total;
}
