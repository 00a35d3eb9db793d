/*
 * deliver.c - at-least-once delivery of the outbox (see deliver.h). Owns
 * the entries (one per stored notification), their id table and due heap,
 * the per-webhook queues and rate limits, the HTTP client and the retry
 * policy. Must not block the loop, must not log URLs (they may carry
 * tokens), secrets or signatures, and must not free an entry while a Redis
 * callback still holds it (`busy`; a removed busy entry is `dead` and freed
 * by that callback).
 *
 * Life of an entry:
 *
 *   STORING --HSET answered--> WAITING (heap, until due) --> READY (webhook
 *   queue) --slot+token--> [FETCHING: HGET] --> SENDING --2xx--> HDEL, freed
 *                                                     \--retry--> WAITING
 *                                                     \--give up--> HDEL
 *   alertmanager: 2xx --> WAITING `resend` --> checked and sent again, or
 *                 sent with endsAt once its clock stopped, then HDEL
 */
#define _GNU_SOURCE
#include "slawatch/deliver.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "slawatch/heap.h"
#include "slawatch/hook_http.h"
#include "slawatch/log.h"
#include "slawatch/outbox.h"

#define CACHE_MAX_BYTES (64u << 20) /* record bodies kept from creation */
#define CACHE_HORIZON_MS 1000       /* only for entries due this soon */
#define REDIS_RETRY_MS 1000         /* record unreadable: try again after */
#define TIMER_MAX_MS 60000

enum entry_state {
    ST_STORING = 0,
    ST_WAITING,
    ST_READY,
    ST_FETCHING,
    ST_SENDING
};

struct entry {
    struct heap_node node;       /* key: due_ms while WAITING */
    struct entry *hnext;         /* id table chain */
    struct entry *qnext, *qprev; /* webhook queue while READY */
    struct deliver *d;
    char *rec; /* the record, when in hand */
    size_t rec_len;
    int64_t due_ms;
    int64_t ends_ms; /* alertmanager endsAt once resolving */
    uint32_t hook;   /* index into d->hooks */
    uint16_t attempts;
    uint8_t state;
    uint8_t flags; /* HOOK_F_* */
    uint8_t busy;  /* Redis callbacks holding the entry */
    bool dead;     /* removed while busy */
    bool poked;
    bool cached; /* rec counts towards cached_bytes */
    char id[HOOK_ID_LEN + 1];
};

struct hook_rt {
    struct deliver *d;
    char name[HOOK_NAME_MAX + 1];
    const struct cfg_webhook *cfg; /* NULL once removed by a reload */
    struct entry *qhead, *qtail;
    int busy; /* fetching + sending */
    double tokens;
    int64_t refill_us;
    int64_t paused_until_ms; /* after a 429 */
    struct event *pump_ev;
    bool warned_gone;
};

struct deliver {
    struct event_base *base;
    const struct config *cfg;
    struct deliver_hooks hooks;
    struct outbox ob;
    struct hook_http *http;
    struct heap due;
    struct event *due_ev;
    struct entry **table;
    size_t nbuckets, count;
    struct entry *dead; /* removed while busy, via hnext */
    struct hook_rt **hooks_rt;
    size_t nhooks;
    size_t firing; /* alertmanager alerts the receiver has */
    size_t cached_bytes;
    uint64_t failed_total, sent_total;
    size_t loaded_count;
    uint64_t rng;
    struct log_ratelimit retry_rl, fail_rl;
};

static void pump(struct hook_rt *h);
static void schedule(struct entry *e);

/* ---- small helpers ----------------------------------------------------- */

static uint64_t
rng_next(struct deliver *d)
{
    /* xorshift64*: jitter only, not security. */
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return d->rng * 2685821657736338717ULL;
}

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

static void
table_remove(struct deliver *d, struct entry *e)
{
    struct entry **p = &d->table[id_hash(e->id) & (d->nbuckets - 1)];
    while (*p && *p != e)
        p = &(*p)->hnext;
    if (*p) {
        *p = e->hnext;
        d->count--;
    }
}

static struct hook_rt *
hook_of(const struct entry *e)
{
    return e->d->hooks_rt[e->hook];
}

static int
hook_index(const struct deliver *d, const char *name)
{
    for (size_t i = 0; i < d->nhooks; i++)
        if (d->hooks_rt[i]->cfg && strcmp(d->hooks_rt[i]->name, name) == 0)
            return (int)i;
    return -1;
}

static void
set_flags(struct entry *e, uint8_t flags)
{
    bool was = (e->flags & HOOK_F_DELIVERED) && !(e->flags & HOOK_F_RESOLVING);
    bool now = (flags & HOOK_F_DELIVERED) && !(flags & HOOK_F_RESOLVING);
    e->d->firing += (size_t)now - (size_t)was;
    e->flags = flags;
}

static void
drop_rec(struct entry *e)
{
    if (e->cached)
        e->d->cached_bytes -= e->rec_len;
    e->cached = false;
    free(e->rec);
    e->rec = NULL;
    e->rec_len = 0;
}

static void
entry_free(struct entry *e)
{
    drop_rec(e);
    free(e);
}

/* Takes the entry out of the index and the outbox. Freed now, or by the
 * Redis callback that still holds it. */
static void
queue_unlink(struct entry *e)
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

static void
entry_remove(struct entry *e)
{
    struct deliver *d = e->d;
    table_remove(d, e);
    heap_remove(&d->due, &e->node);
    if (e->state == ST_READY)
        queue_unlink(e);
    set_flags(e, 0);
    if (outbox_del(&d->ob, e->id) < 0)
        log_warnx("outbox: cannot queue the removal of %s: writer queue full",
                  e->id);
    if (e->busy) {
        e->dead = true;
        e->hnext = d->dead;
        d->dead = e;
    } else
        entry_free(e);
}

/* A dead entry's last callback came: unlink and free it. */
static void
dead_free(struct entry *e)
{
    struct entry **p = &e->d->dead;
    while (*p && *p != e)
        p = &(*p)->hnext;
    if (*p)
        *p = e->hnext;
    entry_free(e);
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
            pump(d->hooks_rt[i]);
    arm_due_timer(d);
}

/* WAITING until due_ms, or READY now. */
static void
schedule(struct entry *e)
{
    struct deliver *d = e->d;
    if (e->due_ms <= now_wall_ms()) {
        make_ready(e);
        pump(hook_of(e));
        return;
    }
    e->state = ST_WAITING;
    if (heap_set(&d->due, &e->node, e->due_ms) < 0) {
        /* Out of memory for the heap: try at once rather than lose it. */
        make_ready(e);
        pump(hook_of(e));
        return;
    }
    if (heap_peek(&d->due) == &e->node)
        arm_due_timer(d);
}

/* ---- records ----------------------------------------------------------- */

/* Writes the entry's delivery state back into its record (attempts, next
 * due time, flags), so that a restart resumes where this run stopped. */
static void
persist(struct entry *e)
{
    struct hook_note n;
    const char *why;
    if (e->rec == NULL || hook_note_decode(&n, e->rec, e->rec_len, &why) < 0)
        return;
    n.attempts = e->attempts;
    n.due_ms = e->due_ms;
    n.flags = e->flags;
    n.ends_ms = e->ends_ms;
    char *rec = hook_note_encode(&n);
    if (rec == NULL ||
        outbox_put(&e->d->ob, e->id, rec, strlen(rec), NULL, NULL) < 0)
        log_warnx("outbox: cannot update %s", e->id);
    free(rec);
}

static void
give_up(struct entry *e, const struct hook_note *n, const char *why)
{
    struct deliver *d = e->d;
    long suppressed = 0;
    d->failed_total++;
    if (log_ratelimit_ok(&d->fail_rl, &suppressed))
        log_ticket(
            LOG_LVL_ERR, n ? n->ticket : NULL, n ? n->tier : NULL,
            n ? cfg_metric_name(n->metric) : NULL,
            "webhook %s: gave up on %s %s (ticket %s) after %u attempt%s: %s",
            hook_of(e)->name, n ? hook_kind_name(n->kind) : "notification",
            e->id, n ? n->ticket : "?", (unsigned)e->attempts,
            e->attempts == 1 ? "" : "s", why);
    entry_remove(e);
}

/* ---- sending ----------------------------------------------------------- */

static int64_t
backoff_ms(struct deliver *d, const struct cfg_webhook *wh, unsigned attempts)
{
    int64_t delay = wh->backoff_ms;
    for (unsigned i = 1; i < attempts && delay < wh->max_backoff_ms; i++)
        delay *= 2;
    if (delay > wh->max_backoff_ms)
        delay = wh->max_backoff_ms;
    /* +-25 %, so that a burst of failures does not come back as a burst. */
    int64_t spread = delay / 2;
    return delay - delay / 4 +
           (spread > 0 ? (int64_t)(rng_next(d) % (uint64_t)(spread + 1)) : 0);
}

static void
finish_attempt(struct entry *e, const struct hook_note *n,
               const struct hook_http_result *res)
{
    struct deliver *d = e->d;
    struct hook_rt *h = hook_of(e);
    const struct cfg_webhook *wh = h->cfg;
    int64_t now = now_wall_ms();
    bool ok = !res->transport_error && res->status >= 200 && res->status < 300;
    bool retry =
        res->transport_error || res->status == 429 || res->status >= 500;
    char why[320];

    e->state = ST_WAITING;
    if (ok) {
        d->sent_total++;
        log_debug("webhook %s: %s %s delivered (HTTP %ld, %" PRId64 " us)",
                  h->name, hook_kind_name(n->kind), e->id, res->status,
                  res->elapsed_us);
        if (wh && wh->format == HOOK_ALERTMANAGER &&
            !(e->flags & HOOK_F_RESOLVING) && n->kind != HOOK_KIND_RESOLVE) {
            /* Alertmanager forgets alerts that are not re-sent. */
            set_flags(e, (uint8_t)(e->flags | HOOK_F_DELIVERED | HOOK_F_COND));
            e->attempts = 0;
            e->due_ms = e->poked ? now : now + wh->resend_ms;
            e->poked = false;
            persist(e);
            drop_rec(e);
            schedule(e);
        } else
            entry_remove(e);
        return;
    }
    if (res->transport_error)
        snprintf(why, sizeof(why), "%s",
                 res->timed_out ? "timed out" : res->error);
    else
        snprintf(why, sizeof(why), "HTTP %ld%s%.160s", res->status,
                 res->snippet[0] ? ": " : "", res->snippet);
    e->attempts++;
    if (!retry || wh == NULL) {
        give_up(e, n, why);
        return;
    }
    if (e->attempts >= wh->attempts) {
        give_up(e, n, why);
        return;
    }
    int64_t delay = backoff_ms(d, wh, e->attempts);
    if (res->status == 429) {
        int64_t after = res->retry_after_s * 1000;
        if (after > wh->max_backoff_ms)
            after = wh->max_backoff_ms;
        if (after > delay)
            delay = after;
        /* The receiver asked for less: hold the whole webhook. */
        if (now + delay > h->paused_until_ms)
            h->paused_until_ms = now + delay;
    }
    long suppressed = 0;
    if (log_ratelimit_ok(&d->retry_rl, &suppressed))
        log_info(
            "webhook %s: %s %s attempt %u failed (%s); retrying in %" PRId64
            " ms",
            h->name, hook_kind_name(n->kind), e->id, (unsigned)e->attempts, why,
            delay);
    e->due_ms = now + delay;
    persist(e);
    drop_rec(e);
    schedule(e);
}

static void
sent_cb(void *arg, const struct hook_http_result *res)
{
    struct entry *e = arg;
    struct hook_rt *h = hook_of(e);
    struct hook_note n;
    const char *why;
    h->busy--;
    if (hook_note_decode(&n, e->rec, e->rec_len, &why) < 0)
        memset(&n, 0, sizeof(n)); /* decoded before sending; cannot fail */
    finish_attempt(e, &n, res);
    pump(h);
}

/* Fails an attempt that could not even start. */
static void
local_failure(struct entry *e, const struct hook_note *n, const char *what)
{
    struct hook_http_result res;
    memset(&res, 0, sizeof(res));
    res.transport_error = true;
    snprintf(res.error, sizeof(res.error), "%s", what);
    hook_of(e)->busy--;
    finish_attempt(e, n, &res);
}

/* Has the record in hand: checks the clock if asked to, builds the body
 * and headers, and starts the request. */
static void
send_entry(struct entry *e)
{
    struct deliver *d = e->d;
    struct hook_rt *h = hook_of(e);
    const struct cfg_webhook *wh = h->cfg;
    struct hook_note n;
    const char *why;
    int64_t now = now_wall_ms();

    if (wh == NULL) {
        /* The webhook went away with a reload while the record was read. */
        h->busy--;
        entry_remove(e);
        return;
    }
    if (hook_note_decode(&n, e->rec, e->rec_len, &why) < 0) {
        log_err("outbox: record %s is unusable (%s); dropped", e->id, why);
        h->busy--;
        d->failed_total++;
        entry_remove(e);
        return;
    }
    bool am = wh->format == HOOK_ALERTMANAGER;
    if ((e->flags & HOOK_F_COND) && !(e->flags & HOOK_F_RESOLVING) &&
        (am || e->attempts == 0) && !d->hooks.still_open(d->hooks.arg, &n)) {
        if (!am || !(e->flags & HOOK_F_DELIVERED) || !wh->send_resolved) {
            /* A ladder level whose clock stopped first, or an alert that
             * Alertmanager never had: nothing to say. */
            log_debug(
                "webhook %s: %s %s for ticket %s cancelled: clock stopped",
                h->name, hook_kind_name(n.kind), e->id, n.ticket);
            h->busy--;
            entry_remove(e);
            return;
        }
        set_flags(e, (uint8_t)(e->flags | HOOK_F_RESOLVING));
        e->ends_ms = now;
        e->attempts = 0;
    }
    n.flags = e->flags;
    n.ends_ms = e->ends_ms;

    int tier = cfg_tier_index(d->cfg, n.tier, strlen(n.tier));
    struct hook_ctx ctx = {wh->routing_key, d->cfg->events.consumer, now,
                           tier >= 0 ? d->cfg->tiers[tier].calendar : NULL};
    size_t len = 0;
    char *body = hook_body(&n, wh->format, &ctx, &len);
    if (body == NULL) {
        log_err("webhook %s: cannot build the body of %s; dropped", h->name,
                e->id);
        h->busy--;
        d->failed_total++;
        entry_remove(e);
        return;
    }
    char hdr_id[64], hdr_ts[64], hdr_sig[32 + HOOK_SIG_LEN];
    const char *headers[3] = {hdr_id, hdr_ts, hdr_sig};
    size_t nheaders = 2;
    int64_t ts = now / 1000;
    snprintf(hdr_id, sizeof(hdr_id), "X-Slawatch-Delivery: %s", e->id);
    snprintf(hdr_ts, sizeof(hdr_ts), "X-Slawatch-Timestamp: %" PRId64, ts);
    if (wh->secret) {
        char sig[HOOK_SIG_LEN + 1];
        if (hook_sign(wh->secret, strlen(wh->secret), ts, body, len, sig) < 0) {
            free(body);
            local_failure(e, &n, "cannot compute the signature");
            return;
        }
        snprintf(hdr_sig, sizeof(hdr_sig), "X-Slawatch-Signature: %s", sig);
        nheaders = 3;
    }
    e->state = ST_SENDING;
    if (hook_http_post(d->http, wh->url, headers, nheaders, body, len,
                       wh->timeout_ms, sent_cb, e) < 0)
        local_failure(e, &n, "cannot start the request");
}

static void
fetched_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct entry *e = privdata;
    struct hook_rt *h = hook_of(e);
    (void)conn;
    e->busy--;
    if (e->dead) {
        h->busy--;
        dead_free(e);
        pump(h);
        return;
    }
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* Redis went away (or refused): the record waits for it. */
        h->busy--;
        e->due_ms = now_wall_ms() + REDIS_RETRY_MS;
        schedule(e);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        /* Deleted behind our back: nothing left to deliver. */
        log_warnx("outbox: record %s vanished; dropped", e->id);
        h->busy--;
        table_remove(e->d, e);
        heap_remove(&e->d->due, &e->node);
        set_flags(e, 0);
        entry_free(e);
        pump(h);
        return;
    }
    e->rec = malloc(reply->len + 1);
    if (e->rec == NULL) {
        h->busy--;
        e->due_ms = now_wall_ms() + REDIS_RETRY_MS;
        schedule(e);
        return;
    }
    memcpy(e->rec, reply->str, reply->len);
    e->rec[reply->len] = '\0';
    e->rec_len = reply->len;
    send_entry(e);
}

static void
start(struct entry *e)
{
    struct hook_rt *h = hook_of(e);
    h->busy++;
    if (e->rec) {
        send_entry(e);
        return;
    }
    e->state = ST_FETCHING;
    if (outbox_get(&e->d->ob, e->id, fetched_cb, e) < 0) {
        h->busy--;
        e->due_ms = now_wall_ms() + REDIS_RETRY_MS;
        schedule(e);
        return;
    }
    e->busy++;
}

static void
pump_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

static void
pump_later(struct hook_rt *h, int64_t ms)
{
    if (ms < 1)
        ms = 1;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(h->pump_ev, &tv);
}

/* Starts as many of the webhook's ready entries as its slots, its rate and
 * a 429 pause allow. */
static void
pump(struct hook_rt *h)
{
    const struct cfg_webhook *wh = h->cfg;
    if (wh == NULL) {
        while (h->qhead) {
            struct entry *e = h->qhead;
            if (!h->warned_gone)
                log_warnx(
                    "webhook %s was removed from the configuration: dropping "
                    "its notifications",
                    h->name);
            h->warned_gone = true;
            entry_remove(e);
        }
        return;
    }
    int64_t now = now_wall_ms();
    if (h->paused_until_ms > now) {
        if (h->qhead)
            pump_later(h, h->paused_until_ms - now);
        return;
    }
    while (h->qhead && h->busy < DELIVER_MAX_INFLIGHT) {
        if (wh->max_rate > 0) {
            int64_t us = now_mono_us();
            double burst = wh->max_rate > 1 ? wh->max_rate : 1;
            h->tokens += (double)(us - h->refill_us) / 1e6 * wh->max_rate;
            h->refill_us = us;
            if (h->tokens > burst)
                h->tokens = burst;
            if (h->tokens < 1) {
                pump_later(h, (int64_t)((1 - h->tokens) / wh->max_rate * 1000) +
                                  1);
                return;
            }
            h->tokens -= 1;
        }
        struct entry *e = h->qhead;
        queue_unlink(e);
        start(e);
    }
}

/* ---- creating entries --------------------------------------------------- */

static void
stored_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct entry *e = privdata;
    (void)conn;
    e->busy--;
    if (e->dead) {
        dead_free(e);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR)
        log_err("outbox: storing %s failed: %s; delivering it anyway", e->id,
                reply->str);
    schedule(e);
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
    h->tokens = wh->max_rate > 1 ? wh->max_rate : 1;
    h->refill_us = now_mono_us();
    h->pump_ev = evtimer_new(d->base, pump_cb, h);
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
        log_err("webhook %s: %s for ticket %s lost: out of memory", n->webhook,
                hook_kind_name(n->kind), n->ticket);
        return -1;
    }
    e->due_ms = n->due_ms;
    e->attempts = (uint16_t)n->attempts;
    set_flags(e, (uint8_t)n->flags);
    e->state = ST_STORING;
    if (outbox_put(&d->ob, e->id, rec, strlen(rec), stored_cb, e) < 0) {
        table_remove(d, e);
        set_flags(e, 0);
        free(e);
        free(rec);
        d->failed_total++;
        log_err("webhook %s: %s for ticket %s lost: writer queue full",
                n->webhook, hook_kind_name(n->kind), n->ticket);
        return -1;
    }
    e->busy++;
    size_t len = strlen(rec);
    if (n->due_ms <= now + CACHE_HORIZON_MS &&
        d->cached_bytes + len <= CACHE_MAX_BYTES) {
        e->rec = rec;
        e->rec_len = len;
        e->cached = true;
        d->cached_bytes += len;
    } else
        free(rec);
    return 0;
}

/* ---- re-driving the outbox at start ------------------------------------ */

static void
load_one(void *arg, const char *field, size_t field_len, const char *value,
         size_t value_len)
{
    struct deliver *d = arg;
    struct hook_note n;
    const char *why;
    char id[HOOK_ID_LEN + 1];

    if (field_len != HOOK_ID_LEN)
        return; /* not ours */
    hook_copy(id, sizeof(id), field, field_len);
    if (find(d, id))
        return; /* created again by this run already */
    if (hook_note_decode(&n, value, value_len, &why) < 0 ||
        strcmp(n.id, id) != 0) {
        log_err("outbox: record %s is unusable (%s); dropped", id,
                why ? why : "id mismatch");
        if (outbox_del(&d->ob, id) < 0)
            log_warnx("outbox: cannot queue the removal of %s", id);
        return;
    }
    int hook = hook_index(d, n.webhook);
    if (hook < 0) {
        log_warnx(
            "outbox: %s for ticket %s names webhook %s, which is no longer "
            "configured; dropped",
            hook_kind_name(n.kind), n.ticket, n.webhook);
        if (outbox_del(&d->ob, id) < 0)
            log_warnx("outbox: cannot queue the removal of %s", id);
        return;
    }
    struct entry *e = entry_new(d, id, hook);
    if (e == NULL) {
        log_err("outbox: out of memory re-driving %s", id);
        return;
    }
    e->due_ms = n.due_ms;
    e->ends_ms = n.ends_ms;
    e->attempts = (uint16_t)(n.attempts > UINT16_MAX ? UINT16_MAX : n.attempts);
    set_flags(e, (uint8_t)n.flags);
    d->loaded_count++;
    schedule(e);
}

static void
load_done(void *arg)
{
    struct deliver *d = arg;
    if (d->loaded_count)
        log_notice("outbox: %zu notification%s from an earlier run re-driven",
                   d->loaded_count, d->loaded_count == 1 ? "" : "s");
}

void
deliver_writer_ready(struct deliver *d)
{
    outbox_load(&d->ob, load_one, load_done, d);
}

/* ---- the rest of the interface ----------------------------------------- */

enum deliver_state
deliver_lookup(const struct deliver *d, const char *id)
{
    const struct entry *e = find(d, id);
    if (e == NULL)
        return DELIVER_NONE;
    /* Not yet past its clock check: it has not fired. */
    if ((e->flags & HOOK_F_COND) && !(e->flags & HOOK_F_DELIVERED) &&
        e->attempts == 0 &&
        (e->state == ST_STORING || e->state == ST_WAITING ||
         e->state == ST_READY))
        return DELIVER_WAITING;
    return DELIVER_ACTIVE;
}

void
deliver_cancel(struct deliver *d, const char *id)
{
    struct entry *e = find(d, id);
    if (e && deliver_lookup(d, id) == DELIVER_WAITING)
        entry_remove(e);
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
        pump(hook_of(e));
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
    for (size_t i = 0; i < d->nhooks; i++)
        pump(d->hooks_rt[i]);
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
            entry_free(e);
        }
    free(d->table);
    while (d->dead) {
        struct entry *e = d->dead;
        d->dead = e->hnext;
        entry_free(e);
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
