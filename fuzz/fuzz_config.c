/*
 * fuzz_config.c - the config loader (cfg_load_string) on any bytes, and a
 * config it accepts put to work: whatever passes validation must be safe
 * for the core, the compliance windows and the at-risk counts, so each
 * accepted config runs a ticket per tier through a whole life (opened,
 * warnings and breaches fired up to the end of year 9999, responded,
 * reopened, resolved), a reload from the fixed config A into it and back,
 * and its compliance windows and objectives.
 *
 * Input: the YAML text itself. Errors go to /dev/null. Secret files and
 * zones are read as the loader reads them (relative to the current
 * directory; the zone database), which is what a config can ask for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "slawatch/atrisk.h"
#include "slawatch/compliance.h"
#include "slawatch/core.h"

static int64_t
wall(void *arg)
{
    (void)arg;
    return FUZZ_WALL_MS;
}

static void
apply(struct core *core, enum ev_type type, const char *ticket,
      const char *tier, int64_t ts)
{
    struct sla_event ev;
    const char *reason;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.ticket = ticket;
    ev.ticket_len = strlen(ticket);
    ev.ts_ms = ts;
    if (tier) {
        ev.tier = tier;
        ev.tier_len = strlen(tier);
    }
    if (core_apply(core, &ev, &reason) < 0 && reason == NULL)
        abort(); /* a rejection always says why */
}

static void
on_objective(void *arg, const struct cmp_objective_change *c)
{
    (void)arg;
    if (c->ratio_micro > CMP_RATIO_ONE)
        abort();
}

/* An event stamped at the last instant there is, against the config's
 * clock skew (events.max_clock_skew may be any duration). */
static void
skew(const struct config *cfg)
{
    static const char ts[] = "9999-12-31T23:59:59.999Z";
    struct ev_field f[3] = {
        { "type", 4, "opened", 6 },
        { "ticket", 6, "T-1", 3 },
        { "ts", 2, ts, sizeof(ts) - 1 },
    };
    struct sla_event ev;
    const char *reason = NULL;
    int rc = event_parse(&ev, f, 3, FUZZ_WALL_MS, FUZZ_WALL_MS,
                         cfg->events.max_clock_skew_ms, &reason);
    if ((rc == 0) != (cfg->events.max_clock_skew_ms >= TS_MAX_MS - FUZZ_WALL_MS))
        abort();
}

static void
exercise(const struct config *cfg)
{
    struct atrisk *risk = atrisk_new(FUZZ_WALL_MS);
    struct core_sink sink = { .deadline = atrisk_change, .arg = risk };
    struct core *core = risk ? core_new(cfg, wall, NULL, &sink) : NULL;
    struct compliance *cmp = cmp_new(cfg, FUZZ_WALL_MS);
    char id[32];

    if (risk == NULL || core == NULL || cmp == NULL)
        abort();
    for (size_t t = 0; t < cfg->ntiers; t++) {
        snprintf(id, sizeof(id), "T-%zu", t);
        apply(core, EVT_OPENED, id, cfg->tiers[t].name, FUZZ_WALL_MS);
        apply(core, EVT_PAUSED, id, NULL, FUZZ_WALL_MS + 1000);
        if (cmp_record(cmp, (int)t, METRIC_RESPONSE, t % 2 == 0, FUZZ_WALL_MS,
                       (const char *const[ATTR_COUNT]){ "p", "c", NULL }) < 0 ||
            cmp_record_response_time(cmp, (int)t, FUZZ_WALL_MS,
                                     (int64_t)t * 1000) < 0)
            abort();
    }
    /* Reloads: the same config, with the clocks paused (their deadlines
     * are projections then); into config A and back, paused and running. */
    core_set_config(core, cfg);
    core_set_config(core, fuzz_config_a());
    core_set_config(core, cfg);
    for (size_t t = 0; t < cfg->ntiers; t++) {
        snprintf(id, sizeof(id), "T-%zu", t);
        apply(core, EVT_RESUMED, id, NULL, FUZZ_WALL_MS + 2000);
    }
    core_set_config(core, fuzz_config_a());
    core_set_config(core, cfg);
    core_advance(core, FUZZ_WALL_MS + 86400000LL * 400);
    for (size_t t = 0; t < cfg->ntiers; t++) {
        snprintf(id, sizeof(id), "T-%zu", t);
        apply(core, EVT_RESPONDED, id, NULL, FUZZ_WALL_MS + 86400000LL * 400);
        apply(core, EVT_RESOLVED, id, NULL, FUZZ_WALL_MS + 86400000LL * 401);
        apply(core, EVT_REOPENED, id, NULL, FUZZ_WALL_MS + 86400000LL * 402);
    }
    core_advance(core, TS_MAX_MS);
    atrisk_advance(risk, TS_MAX_MS);
    for (size_t t = 0; t < cfg->ntiers; t++)
        for (int m = 0; m < METRIC_COUNT; m++)
            (void)atrisk_count(risk, (int)t, m, 60000);
    cmp_advance(cmp, FUZZ_WALL_MS + 60000);
    cmp_objective_eval(cmp, FUZZ_WALL_MS + 60000, on_objective, NULL);
    cmp_objective_eval(cmp, FUZZ_WALL_MS + 60000, on_objective, NULL);
    for (size_t w = 0; w < cfg->compliance.nwindows; w++) {
        struct cmp_latency lat;
        (void)cmp_latency(cmp, CMP_ALL, (int)w, &lat);
        (void)cmp_counts(cmp, CMP_ALL, METRIC_RESPONSE, (int)w);
    }
    core_free(core);
    atrisk_free(risk);
    cmp_free(cmp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;

    if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
        abort();
    fuzz_config_a();
    struct config *cfg = cfg_load_string("fuzz.yaml", size ? (const char *)data : "",
                                         size, devnull);
    if (cfg == NULL)
        return 0;
    /* What the loader promises (config.h, SPEC section 2). */
    if (cfg->ntiers == 0 || cfg->ntiers > CFG_MAX_TIERS ||
        cfg->compliance.nwindows > CFG_MAX_WINDOWS)
        abort();
    for (size_t t = 0; t < cfg->ntiers; t++)
        if (cfg_tier_index(cfg, cfg->tiers[t].name,
                           strlen(cfg->tiers[t].name)) != (int)t)
            abort();
    skew(cfg);
    exercise(cfg);
    cfg_free(cfg);
    return 0;
}
