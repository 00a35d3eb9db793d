/*
 * hygiene.c - input hygiene (see hygiene.h): counts and logs attribute
 * values no policy names and tiers that name no tier, as the core reports
 * each tier choice. Must not change what the core decided, allocate per
 * event or log more than its rate limit allows: each distinct value at
 * most once an hour (64 remembered), and 10 lines a minute in all.
 */
#include "slawatch/hygiene.h"

#include <stdlib.h>
#include <string.h>

#include "slawatch/log.h"
#include "slawatch/policy.h"

/* A value logged once is logged again only after this long: a legitimate
 * value that no policy needs (channel=email) would otherwise fill the log.
 * The counters count every event. */
#define QUIET_MS (60 * 60 * 1000)
#define RECENT 64

struct hygiene {
    const struct config *cfg;
    const struct core *core;
    uint64_t unmatched[ATTR_COUNT + 1];
    struct log_ratelimit rl;
    struct {
        uint64_t hash;            /* of field and value; 0: free */
        int64_t logged_ms;
    } recent[RECENT];
};

/* FNV-1a of the field index and the value. */
static uint64_t
value_hash(int field, const char *v, size_t len)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(field + 1);
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)v[i]) * 1099511628211ULL;
    return h ? h : 1;
}

/* Whether this value was logged within QUIET_MS; remembers it otherwise
 * (the oldest entry makes room). */
static bool
logged_recently(struct hygiene *h, int field, const char *v, size_t len)
{
    uint64_t hash = value_hash(field, v, len);
    int64_t now = now_wall_ms();
    size_t oldest = 0;
    for (size_t i = 0; i < RECENT; i++) {
        if (h->recent[i].hash == hash) {
            if (now - h->recent[i].logged_ms < QUIET_MS)
                return true;
            h->recent[i].logged_ms = now;
            return false;
        }
        if (h->recent[i].logged_ms < h->recent[oldest].logged_ms)
            oldest = i;
    }
    h->recent[oldest].hash = hash;
    h->recent[oldest].logged_ms = now;
    return false;
}

struct hygiene *
hygiene_new(const struct config *cfg, const struct core *core)
{
    struct hygiene *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->cfg = cfg;
    h->core = core;
    h->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(60, 10);
    return h;
}

void
hygiene_free(struct hygiene *h)
{
    free(h);
}

void
hygiene_set_config(struct hygiene *h, const struct config *cfg)
{
    h->cfg = cfg;
}

const uint64_t *
hygiene_counts(const struct hygiene *h)
{
    return h->unmatched;
}

static void
report(struct hygiene *h, const struct ticket *t, int field, const char *value, size_t len,
       const char *why)
{
    const char *name = field < ATTR_COUNT ? cfg_attr_name(field) : "tier";
    long suppressed;
    if (logged_recently(h, field, value, len) || !log_ratelimit_ok(&h->rl, &suppressed))
        return;
    log_ticket(LOG_LVL_WARNING, t->id, core_tier_name(h->core, t), NULL,
               "ticket %s: %s=%.*s %s; it got tier %s (stats:unmatched:%s counts every "
               "such event; this value is logged at most once an hour)%s",
               t->id, name, (int)len, value, why, core_tier_name(h->core, t), name,
               suppressed ? " (earlier lines suppressed)" : "");
}

void
hygiene_tier_chosen(void *arg, const struct sla_event *ev, const struct ticket *t)
{
    struct hygiene *h = arg;
    if (t == NULL)
        return;
    for (int a = 0; a < ATTR_COUNT; a++) {
        /* Only attributes the policies match on: a queue no policy cares
         * about is no mistake. */
        if (ev->attr[a] == NULL || ev->attr_len[a] == 0 || !policy_constrains(h->cfg, a) ||
            policy_names_value(h->cfg, a, ev->attr[a], ev->attr_len[a]))
            continue;
        h->unmatched[a]++;
        report(h, t, a, ev->attr[a], ev->attr_len[a], "is named by no policy");
    }
    if (ev->tier && ev->tier_len && cfg_tier_index(h->cfg, ev->tier, ev->tier_len) < 0) {
        h->unmatched[ATTR_COUNT]++;
        report(h, t, ATTR_COUNT, ev->tier, ev->tier_len, "names no tier");
    }
}
