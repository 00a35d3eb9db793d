/*
 * deliver_send.c - the sending half of deliver.c (see deliver_int.h): the
 * per-webhook queues with their slots, `max_rate`, 429 pauses and the slow
 * start after them, storing a record again (HSET, also when Redis lost
 * it), the clock or objective check before a conditional note, body,
 * headers and signature, the HTTP attempt, and what its result means:
 * done (HDEL), retried after exponential backoff with jitter, given up, or
 * (alertmanager) re-sent every `resend`. Must not block the loop and must
 * not log URLs, secrets, routing keys or signatures, nor a response body
 * but its scrubbed start (scrub_body: receivers echo requests).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "slawatch/deliver_int.h"

#define LOG_BODY_MAX 96 /* response body characters in a log line */

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

static void
store_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct entry *e = privdata;
    long suppressed = 0;
    (void)conn;
    e->busy--;
    if (e->dead) {
        if (e->busy == 0)
            dlv_dead_free(e);
        return;
    }
    /* HSET answers how many fields it added: 1 means Redis did not have
     * the record any more (deleted, restarted empty, failed over). */
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
        if (log_ratelimit_ok(&e->d->repair_rl, &suppressed))
            log_warnx("outbox: record %s was no longer in Redis; stored "
                      "again from memory",
                      e->id);
    } else if (reply && reply->type == REDIS_REPLY_ERROR)
        log_warnx("outbox: storing %s failed: %s; it is still delivered from "
                  "memory",
                  e->id, reply->str);
}

int
dlv_store(struct entry *e)
{
    long suppressed = 0;
    if (e->rec == NULL ||
        outbox_put(&e->d->ob, e->id, e->rec, e->rec_len, store_cb, e) < 0) {
        if (log_ratelimit_ok(&e->d->repair_rl, &suppressed))
            log_warnx("outbox: cannot store %s: writer queue full; it is "
                      "still delivered from memory",
                      e->id);
        return -1;
    }
    e->busy++;
    return 0;
}

/* Writes the entry's delivery state (attempts, next due time, flags) into
 * the record in hand and stores it, so that a restart resumes where this
 * run stopped, and a Redis that lost the record has it again. */
void
dlv_persist(struct entry *e)
{
    struct hook_note n;
    const char *why;
    if (e->rec && hook_note_decode(&n, e->rec, e->rec_len, &why) == 0) {
        n.attempts = (int)e->attempts;
        n.due_ms = e->due_ms;
        n.flags = e->flags;
        n.ends_ms = e->ends_ms;
        char *rec = hook_note_encode(&n);
        if (rec)
            dlv_set_rec(e, rec, strlen(rec));
        else
            log_warnx("outbox: out of memory updating %s", e->id);
    }
    (void)dlv_store(e);
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

/* ---- what a response body may show in a log line ----------------------- */

static bool
token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '+' ||
           c == '=';
}

/* Marks every occurrence of s in buf, and a tail of buf that is the start
 * of s (the snippet may end inside it). */
static void
mask_string(const char *buf, size_t len, const char *s, size_t slen, bool *mask)
{
    if (slen == 0)
        return;
    for (size_t i = 0; i + slen <= len; i++)
        if (memcmp(buf + i, s, slen) == 0)
            for (size_t k = 0; k < slen; k++)
                mask[i + k] = true;
    for (size_t k = slen - 1 < len ? slen - 1 : len; k >= 4; k--)
        if (memcmp(buf + len - k, s, k) == 0) {
            for (size_t j = len - k; j < len; j++)
                mask[j] = true;
            break;
        }
}

/* Marks the value after a name that says it is a credential:
 * `"routing_key":"..."`, `token=...`, `Authorization: Bearer ...`. */
static void
mask_named_values(const char *buf, size_t len, bool *mask)
{
    static const char *const names[] = {
        "key",    "token",      "secret",  "passw",  "signature", "auth",
        "bearer", "credential", "session", "cookie", "sig"};
    for (size_t i = 0; i < len; i++)
        for (size_t w = 0; w < ARRAY_LEN(names); w++) {
            size_t nl = strlen(names[w]);
            if (i + nl > len || strncasecmp(buf + i, names[w], nl) != 0)
                continue;
            size_t j = i + nl;
            while (j < len && token_char(buf[j]) && buf[j] != '=')
                j++; /* the rest of the name: routing_key, api-token */
            while (j < len &&
                   (buf[j] == '"' || buf[j] == '\'' || buf[j] == '\\'))
                j++;
            while (j < len && buf[j] == ' ')
                j++;
            if (strcmp(names[w], "bearer") != 0) { /* "Bearer xyz" */
                if (j >= len || (buf[j] != ':' && buf[j] != '='))
                    continue;
                j++;
            }
            for (int words = 0; words < 2; words++) {
                while (j < len && (buf[j] == ' ' || buf[j] == '"' ||
                                   buf[j] == '\'' || buf[j] == '\\'))
                    j++;
                size_t v = j;
                while (j < len && buf[j] != '"' && buf[j] != '\'' &&
                       buf[j] != ',' && buf[j] != ';' && buf[j] != '&' &&
                       buf[j] != '}' && buf[j] != ']' && buf[j] != ' ' &&
                       buf[j] != '\\')
                    mask[j++] = true;
                /* "Bearer xyz", "Basic xyz": the credential is the next
                 * word. */
                if (!(j - v == 6 && strncasecmp(buf + v, "bearer", 6) == 0) &&
                    !(j - v == 5 && strncasecmp(buf + v, "basic", 5) == 0))
                    break;
            }
        }
}

/* Marks runs that look like keys or tokens: 20 or more letters, digits and
 * _-+= with at least one letter and one digit. */
static void
mask_tokens(const char *buf, size_t len, bool *mask)
{
    for (size_t i = 0; i < len;) {
        if (!token_char(buf[i])) {
            i++;
            continue;
        }
        size_t j = i;
        bool alpha = false, digit = false;
        for (; j < len && token_char(buf[j]); j++) {
            alpha |= (buf[j] >= 'a' && buf[j] <= 'z') ||
                     (buf[j] >= 'A' && buf[j] <= 'Z');
            digit |= buf[j] >= '0' && buf[j] <= '9';
        }
        if (j - i >= 20 && alpha && digit)
            for (size_t k = i; k < j; k++)
                mask[k] = true;
        i = j;
    }
}

/* The start of a response body as a log line may show it: at most
 * LOG_BODY_MAX characters, with the webhook's secret and routing key, the
 * path of its URL (Slack's carries the token), values of fields named like
 * credentials and anything else that looks like a key replaced by "***".
 * A receiver that echoes the request (PagerDuty's 400 does) would
 * otherwise put the routing key into the journal. `in` is printable ASCII
 * (hook_http.c) of up to HOOK_HTTP_SNIPPET bytes, far more than is shown,
 * so that a secret starting in the shown part is seen whole. */
static void
scrub_body(const char *in, const struct cfg_webhook *wh, char *out, size_t size)
{
    size_t len = strnlen(in, HOOK_HTTP_SNIPPET - 1);
    bool mask[HOOK_HTTP_SNIPPET] = {false};
    if (wh) {
        if (wh->secret)
            mask_string(in, len, wh->secret, strlen(wh->secret), mask);
        if (wh->routing_key)
            mask_string(in, len, wh->routing_key, strlen(wh->routing_key),
                        mask);
        const char *host = strstr(wh->url, "://");
        const char *path = host ? strchr(host + 3, '/') : NULL;
        if (path && strlen(path) >= 8)
            mask_string(in, len, path, strlen(path), mask);
    }
    mask_named_values(in, len, mask);
    mask_tokens(in, len, mask);
    size_t o = 0, shown = 0;
    for (size_t i = 0; i < len && shown < LOG_BODY_MAX && o + 4 < size;) {
        if (mask[i]) {
            memcpy(out + o, "***", 3);
            o += 3;
            while (i < len && mask[i])
                i++;
        } else
            out[o++] = in[i++];
        shown++;
    }
    if (shown >= LOG_BODY_MAX && o + 4 < size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
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

/* A 429: the whole webhook pauses (for its backoff, doubling with each
 * 429 in a row, or for Retry-After, at most max_backoff), and afterwards
 * sends one request alone before the rest (h->window). Only the first 429
 * of the requests started before the pause counts: the rest of that wave
 * were sent before the receiver spoke. Returns the pause. */
static int64_t
throttle(struct entry *e, const struct hook_http_result *res, int64_t now)
{
    struct hook_rt *h = hook_of(e);
    const struct cfg_webhook *wh = h->cfg;
    if (e->epoch == h->epoch) {
        h->epoch++;
        if (h->streak < 32)
            h->streak++;
    }
    int64_t delay = backoff_ms(e->d, wh, h->streak);
    /* retry_after_s is at most a day (hook_http.c): no overflow. */
    int64_t after = res->retry_after_s * 1000;
    if (after > wh->max_backoff_ms)
        after = wh->max_backoff_ms;
    if (after > delay)
        delay = after;
    if (now + delay > h->paused_until_ms)
        h->paused_until_ms = now + delay;
    h->window = 1;
    return h->paused_until_ms - now;
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
    bool throttled = !res->transport_error && res->status == 429;
    bool retry = res->transport_error || throttled || res->status >= 500;
    char why[320], body[LOG_BODY_MAX + 64];

    e->state = ST_WAITING;
    if (ok) {
        d->sent_total++;
        if (e->epoch == h->epoch) {
            /* Slow start after a 429: one more in flight per success. */
            h->streak = 0;
            if (h->window < DELIVER_MAX_INFLIGHT)
                h->window++;
        }
        log_debug("webhook %s: %s %s delivered (HTTP %ld, %" PRId64 " us)",
                  h->name, hook_kind_name(n->kind), e->id, res->status,
                  res->elapsed_us);
        if (wh && wh->format == HOOK_ALERTMANAGER &&
            !(e->flags & HOOK_F_RESOLVING) && n->kind != HOOK_KIND_RESOLVE) {
            /* Alertmanager forgets alerts that are not re-sent. */
            dlv_set_flags(e,
                          (uint8_t)(e->flags | HOOK_F_DELIVERED | HOOK_F_COND));
            e->attempts = 0;
            e->throttled = 0;
            e->due_ms = e->poked ? now : now + wh->resend_ms;
            e->poked = false;
            dlv_persist(e);
            dlv_schedule(e);
        } else
            dlv_entry_remove(e);
        return;
    }
    if (res->transport_error)
        snprintf(why, sizeof(why), "%s",
                 res->timed_out ? "timed out" : res->error);
    else {
        scrub_body(res->snippet, wh, body, sizeof(body));
        snprintf(why, sizeof(why), "HTTP %ld%s%s", res->status,
                 body[0] ? ": " : "", body);
    }
    if (!retry || wh == NULL) {
        e->attempts++;
        give_up(e, n, why);
        return;
    }
    int64_t delay;
    if (throttled) {
        /* Not an attempt spent: the receiver asked for less, and gets it. */
        if (e->throttled < UINT16_MAX)
            e->throttled++;
        if (e->throttled >= DELIVER_THROTTLED_MAX) {
            give_up(e, n, why);
            return;
        }
        delay = throttle(e, res, now);
    } else {
        e->attempts++;
        if (e->attempts >= (unsigned)wh->attempts ||
            e->attempts >= HOOK_ATTEMPTS_MAX) {
            give_up(e, n, why);
            return;
        }
        delay = backoff_ms(d, wh, e->attempts);
    }
    long suppressed = 0;
    if (log_ratelimit_ok(&d->retry_rl, &suppressed)) {
        if (throttled)
            log_info("webhook %s: %s %s throttled (%s); the webhook pauses for "
                     "%" PRId64 " ms, then sends one request before the rest",
                     h->name, hook_kind_name(n->kind), e->id, why, delay);
        else
            log_info("webhook %s: %s %s attempt %u failed (%s); retrying in "
                     "%" PRId64 " ms",
                     h->name, hook_kind_name(n->kind), e->id,
                     (unsigned)e->attempts, why, delay);
    }
    e->due_ms = now + delay;
    (void)outbox_note_error(&d->ob, e->id, now, why); /* for slawatchctl outbox */
    dlv_persist(e);
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
    /* (e->rec is unchanged while the request runs: persist() only runs
     * from finish_attempt.) */
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
        /* The webhook went away with a reload. */
        h->busy--;
        dlv_entry_remove(e);
        return;
    }
    if (e->rec == NULL || hook_note_decode(&n, e->rec, e->rec_len, &why) < 0) {
        log_err("outbox: record %s is unusable (%s); given up", e->id,
                e->rec ? why : "not in memory");
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
        e->throttled = 0;
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
start(struct entry *e)
{
    struct hook_rt *h = hook_of(e);
    h->busy++;
    e->epoch = h->epoch;
    send_entry(e);
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
    while (h->qhead && h->busy < h->window) {
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
