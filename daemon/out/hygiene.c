/*
 * hygiene.c - input hygiene (see hygiene.h): counts and logs attribute
 * values no policy names and tiers that name no tier, as the core reports
 * each tier choice. Must not change what the core decided, allocate per
 * event or log more than its rate limit allows.
 */
#include "slawatch/hygiene.h"

#include <stdlib.h>
#include <string.h>

#include "slawatch/log.h"
#include "slawatch/policy.h"

struct hygiene {
    const struct config *cfg;
    const struct core *core;
    uint64_t unmatched[ATTR_COUNT + 1];
    struct log_ratelimit rl;
};

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
report(struct hygiene *h, const struct ticket *t, const char *field, const char *value,
       size_t len, const char *why)
{
    long suppressed;
    if (!log_ratelimit_ok(&h->rl, &suppressed))
        return;
    log_ticket(LOG_LVL_WARNING, t->id, core_tier_name(h->core, t), NULL,
               "ticket %s: %s=%.*s %s; it got tier %s (stats:unmatched:%s)%s", t->id, field,
               (int)len, value, why, core_tier_name(h->core, t), field,
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
        report(h, t, cfg_attr_name(a), ev->attr[a], ev->attr_len[a],
               "is named by no policy");
    }
    if (ev->tier && ev->tier_len && cfg_tier_index(h->cfg, ev->tier, ev->tier_len) < 0) {
        h->unmatched[ATTR_COUNT]++;
        report(h, t, "tier", ev->tier, ev->tier_len, "names no tier");
    }
}
