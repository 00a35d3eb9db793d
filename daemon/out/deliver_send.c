/*
 * deliver_send.c - the sending half of deliver.c (see deliver_int.h): the
 * per-webhook queues with their slots, `max_rate` and 429 pauses, reading a
 * record back (HGET), the clock or objective check before a conditional
 * note, body, headers and signature, the HTTP attempt, and what its result
 * means: done (HDEL), retried after exponential backoff with jitter, given
 * up, or (alertmanager) re-sent every `resend`. Must not block the loop and
 * must not log URLs, secrets or signatures.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slawatch/deliver_int.h"

#define REDIS_RETRY_MS 1000 /* record unreadable: try again after */

static uint64_t
rng_next(struct deliver *d)
{
    /* xorshift64*: jitter only, not security. */
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return d->rng * 2685821657736338717ULL;
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
    char about[HOOK_SUBJECT_LEN];
    d->failed_total++;
    if (log_ratelimit_ok(&d->fail_rl, &suppressed))
        log_ticket(LOG_LVL_ERR, n && n->ticket[0] ? n->ticket : NULL,
                   n ? n->tier : NULL, n ? cfg_metric_name(n->metric) : NULL,
                   "webhook %s: gave up on %s %s (%s) after %u attempt%s: %s",
                   hook_of(e)->name,
                   n ? hook_kind_name(n->kind) : "notification", e->id,
                   n ? hook_note_subject(n, about) : "?", (unsigned)e->attempts,
                   e->attempts == 1 ? "" : "s", why);
    dlv_entry_remove(e);
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
            dlv_set_flags(e,
                          (uint8_t)(e->flags | HOOK_F_DELIVERED | HOOK_F_COND));
            e->attempts = 0;
            e->due_ms = e->poked ? now : now + wh->resend_ms;
            e->poked = false;
            persist(e);
            dlv_drop_rec(e);
            dlv_schedule(e);
        } else
            dlv_entry_remove(e);
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
    (void)outbox_note_error(&d->ob, e->id, now, why); /* for slawatchctl outbox */
    persist(e);
    dlv_drop_rec(e);
    dlv_schedule(e);
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
    dlv_pump(h);
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
        dlv_entry_remove(e);
        return;
    }
    if (hook_note_decode(&n, e->rec, e->rec_len, &why) < 0) {
        log_err("outbox: record %s is unusable (%s); dropped", e->id, why);
        h->busy--;
        d->failed_total++;
        dlv_entry_remove(e);
        return;
    }
    bool am = wh->format == HOOK_ALERTMANAGER;
    /* Checked before every attempt, retries too: a trigger whose clock
     * stopped meanwhile is never sent after the stop's resolve. */
    if ((e->flags & HOOK_F_COND) && !(e->flags & HOOK_F_RESOLVING) &&
        !d->hooks.still_open(d->hooks.arg, &n)) {
        if (!am || !(e->flags & HOOK_F_DELIVERED) || !wh->send_resolved) {
            /* A ladder level whose clock stopped (or violation ended)
             * first, or an alert that Alertmanager never had: nothing to
             * say. */
            char about[HOOK_SUBJECT_LEN];
            log_debug("webhook %s: %s %s for %s cancelled: %s over", h->name,
                      hook_kind_name(n.kind), e->id,
                      hook_note_subject(&n, about),
                      n.objective ? "violation" : "clock");
            h->busy--;
            dlv_entry_remove(e);
            return;
        }
        dlv_set_flags(e, (uint8_t)(e->flags | HOOK_F_RESOLVING));
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
        dlv_entry_remove(e);
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
        dlv_dead_free(e);
        dlv_pump(h);
        return;
    }
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* Redis went away (or refused): the record waits for it. */
        h->busy--;
        e->due_ms = now_wall_ms() + REDIS_RETRY_MS;
        dlv_schedule(e);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        /* Deleted behind our back: nothing left to deliver. */
        log_warnx("outbox: record %s vanished; dropped", e->id);
        h->busy--;
        dlv_table_remove(e->d, e);
        heap_remove(&e->d->due, &e->node);
        dlv_set_flags(e, 0);
        dlv_entry_free(e);
        dlv_pump(h);
        return;
    }
    e->rec = malloc(reply->len + 1);
    if (e->rec == NULL) {
        h->busy--;
        e->due_ms = now_wall_ms() + REDIS_RETRY_MS;
        dlv_schedule(e);
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
        dlv_schedule(e);
        return;
    }
    e->busy++;
}

void
dlv_pump_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dlv_pump(arg);
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
void
dlv_pump(struct hook_rt *h)
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
            dlv_entry_remove(e);
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
        dlv_queue_unlink(e);
        start(e);
    }
}
