/* Unit tests for the SLA core: every clock rule of SPEC section 3, driven by
 * an injected clock. Each test records the notices and outcomes the core
 * reports and compares them with what the rules say. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slawatch/config.h"
#include "slawatch/core.h"

#define T0 1795000000000LL /* an arbitrary instant */
#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

static const char *yaml =
    "tiers:\n"
    "  fast: { response: 10m, resolution: 1h, warn: [50%, 80%] }\n"
    "  mid:  { response: 1h, resolution: 4h }\n"
    "  both: { response: 1h, resolution: 2h, pause: [response, resolution] }\n"
    "  slow: { response: 4h }\n"
    "policies:\n"
    "  - { match: { priority: [urgent, p1] }, tier: fast }\n"
    "  - { match: { priority: high, channel: phone }, tier: fast }\n"
    "  - { match: { priority: high }, tier: mid }\n"
    "  - { tier: slow }\n";

struct rec {
    enum notice_kind kind;
    char ticket[64];
    char tier[16];
    int metric;
    int64_t deadline, at, late;
    uint32_t bp;
    uint16_t cycle;
};

struct outc {
    char ticket[64];
    int metric;
    enum clock_outcome outcome;
    bool decided;
    int64_t decided_ms, elapsed;
};

struct fixture {
    struct config *cfg;
    struct core *core;
    int64_t wall;
    struct rec notices[256];
    int nnotices;
    struct outc outcomes[256];
    int noutcomes;
};

static int64_t
fake_wall(void *arg)
{
    return ((struct fixture *)arg)->wall;
}

static void
on_notice(void *arg, const struct sla_notice *n)
{
    struct fixture *f = arg;
    if (f->nnotices >= 256)
        return; /* only the bulk test overflows; it checks counters */
    struct rec *r = &f->notices[f->nnotices++];
    r->kind = n->kind;
    snprintf(r->ticket, sizeof(r->ticket), "%s", n->ticket->id);
    snprintf(r->tier, sizeof(r->tier), "%s", n->tier);
    r->metric = n->metric;
    r->deadline = n->deadline_ms;
    r->at = n->at_ms;
    r->late = n->late_ms;
    r->bp = n->percent_bp;
    r->cycle = n->cycle;
}

static void
on_outcome(void *arg, const struct sla_outcome *o)
{
    struct fixture *f = arg;
    if (f->noutcomes >= 256)
        return;
    struct outc *r = &f->outcomes[f->noutcomes++];
    snprintf(r->ticket, sizeof(r->ticket), "%s", o->ticket->id);
    r->metric = o->metric;
    r->outcome = o->outcome;
    r->decided = o->decided;
    r->decided_ms = o->decided_ms;
    r->elapsed = o->elapsed_ms;
}

static struct fixture *
fixture_new(const char *text)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->cfg = cfg_load_string("test.yaml", text, strlen(text), stderr);
    assert_non_null(f->cfg);
    struct core_sink cb = { .notice = on_notice, .outcome = on_outcome, .arg = f };
    f->core = core_new(f->cfg, fake_wall, f, &cb);
    assert_non_null(f->core);
    f->wall = T0;
    return f;
}

static int
setup(void **state)
{
    *state = fixture_new(yaml);
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    core_free(f->core);
    cfg_free(f->cfg);
    free(f);
    return 0;
}

/* Applies one event; extra is "field=value,field=value". */
static int
apply(struct fixture *f, enum ev_type type, const char *ticket, int64_t ts,
      const char *extra)
{
    struct ev_field fields[12];
    size_t n = 0;
    char buf[256];
    char tsbuf[32];
    struct sla_event ev;
    const char *reason = NULL;

    fields[n++] = (struct ev_field){ "type", 4, event_type_name(type),
                                     strlen(event_type_name(type)) };
    fields[n++] = (struct ev_field){ "ticket", 6, ticket, strlen(ticket) };
    snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
    fields[n++] = (struct ev_field){ "ts", 2, tsbuf, strlen(tsbuf) };
    snprintf(buf, sizeof(buf), "%s", extra ? extra : "");
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        assert_non_null(eq);
        *eq = '\0';
        fields[n++] = (struct ev_field){ kv, strlen(kv), eq + 1, strlen(eq + 1) };
    }
    /* Wall time never lags event time in these tests, and every event
     * arrives (is appended to the stream) at the wall time it is applied. */
    if (f->wall < ts)
        f->wall = ts;
    if (event_parse(&ev, fields, n, (uint64_t)f->wall, f->wall, 5 * MIN, &reason) < 0)
        return -1;
    return core_apply(f->core, &ev, &reason);
}

static void
advance(struct fixture *f, int64_t to)
{
    f->wall = to;
    core_advance(f->core, to);
}

static int
count(const struct fixture *f, const char *ticket, enum notice_kind kind,
      int metric)
{
    int n = 0;
    for (int i = 0; i < f->nnotices; i++)
        if (strcmp(f->notices[i].ticket, ticket) == 0 && f->notices[i].kind == kind &&
            (metric < 0 || f->notices[i].metric == metric))
            n++;
    return n;
}

static const struct rec *
find(const struct fixture *f, const char *ticket, enum notice_kind kind, int metric)
{
    for (int i = 0; i < f->nnotices; i++)
        if (strcmp(f->notices[i].ticket, ticket) == 0 && f->notices[i].kind == kind &&
            f->notices[i].metric == metric)
            return &f->notices[i];
    return NULL;
}

static const struct outc *
find_outcome(const struct fixture *f, const char *ticket, int metric, bool decided)
{
    for (int i = 0; i < f->noutcomes; i++)
        if (strcmp(f->outcomes[i].ticket, ticket) == 0 &&
            f->outcomes[i].metric == metric && f->outcomes[i].decided == decided)
            return &f->outcomes[i];
    return NULL;
}

static int
tier_index(struct fixture *f, const char *name)
{
    return cfg_tier_index(f->cfg, name, strlen(name));
}

/* ---- opened ----------------------------------------------------------- */

static void
test_opened_starts_clocks(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    const struct ticket *t = core_find(f->core, "A", 1);
    assert_non_null(t);
    assert_string_equal(core_tier_name(f->core, t), "fast");
    assert_int_equal(t->clk[METRIC_RESPONSE].state, CLOCK_RUNNING);
    assert_int_equal(t->clk[METRIC_RESPONSE].deadline_ms, T0 + 10 * MIN);
    assert_int_equal(t->clk[METRIC_RESOLUTION].state, CLOCK_RUNNING);
    assert_int_equal(t->clk[METRIC_RESOLUTION].deadline_ms, T0 + HOUR);
    assert_int_equal(core_open_count(f->core, tier_index(f, "fast")), 1);
    assert_int_equal(core_heap_size(f->core), 2);
    /* A tier without a resolution target has no resolution clock. */
    assert_int_equal(apply(f, EVT_OPENED, "B", T0, NULL), 0);
    t = core_find(f->core, "B", 1);
    assert_string_equal(core_tier_name(f->core, t), "slow");
    assert_int_equal(t->clk[METRIC_RESOLUTION].state, CLOCK_IDLE);
    assert_int_equal(core_heap_size(f->core), 3);
}

static void
test_second_opened_is_noop(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply(f, EVT_OPENED, "A", T0 + MIN, "priority=low"), 0);
    const struct ticket *t = core_find(f->core, "A", 1);
    assert_string_equal(core_tier_name(f->core, t), "fast");
    assert_int_equal(t->clk[METRIC_RESPONSE].started_ms, T0);
    assert_int_equal(core_open_count(f->core, tier_index(f, "fast")), 1);
    assert_int_equal(core_ticket_count(f->core), 1);
}

static void
test_policies_and_explicit_tier(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "p1", T0, "priority=p1"), 0);
    assert_int_equal(apply(f, EVT_OPENED, "hp", T0, "priority=high,channel=phone"), 0);
    assert_int_equal(apply(f, EVT_OPENED, "he", T0, "priority=high,channel=email"), 0);
    assert_int_equal(apply(f, EVT_OPENED, "ex", T0, "priority=low,tier=mid"), 0);
    assert_int_equal(apply(f, EVT_OPENED, "unk", T0, "priority=urgent,tier=nope"), 0);
    assert_string_equal(core_tier_name(f->core, core_find(f->core, "p1", 2)), "fast");
    assert_string_equal(core_tier_name(f->core, core_find(f->core, "hp", 2)), "fast");
    assert_string_equal(core_tier_name(f->core, core_find(f->core, "he", 2)), "mid");
    assert_string_equal(core_tier_name(f->core, core_find(f->core, "ex", 2)), "mid");
    /* An unknown explicit tier is ignored: the policies decide. */
    assert_string_equal(core_tier_name(f->core, core_find(f->core, "unk", 3)), "fast");
}

static void
test_unknown_ticket_rejected(void **state)
{
    struct fixture *f = *state;
    static const enum ev_type types[] = { EVT_RESPONDED, EVT_PAUSED, EVT_RESUMED,
                                          EVT_RESOLVED, EVT_REOPENED, EVT_CLOSED,
                                          EVT_DELETED, EVT_UPDATED };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        assert_int_equal(apply(f, types[i], "ghost", T0, NULL), -1);
    assert_int_equal(core_ticket_count(f->core), 0);
}

/* ---- responded, met and breached -------------------------------------- */

static void
test_responded_in_time_is_met(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply(f, EVT_RESPONDED, "A", T0 + 2 * MIN, NULL), 0);
    assert_int_equal(apply(f, EVT_RESPONDED, "A", T0 + 3 * MIN, NULL), 0); /* no change */
    advance(f, T0 + 20 * MIN);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESPONSE), 0);
    assert_int_equal(count(f, "A", NOTICE_WARNING, METRIC_RESPONSE), 0);
    const struct outc *o = find_outcome(f, "A", METRIC_RESPONSE, true);
    assert_non_null(o);
    assert_int_equal(o->outcome, OUTCOME_MET);
    assert_int_equal(o->decided_ms, T0 + 2 * MIN);
    assert_int_equal(o->elapsed, 2 * MIN);
    const struct ticket *t = core_find(f->core, "A", 1);
    assert_int_equal(t->clk[METRIC_RESPONSE].state, CLOCK_STOPPED);
    assert_int_equal(t->clk[METRIC_RESPONSE].resumed_ms, T0 + 2 * MIN);
}

static void
test_breach_at_deadline_not_before(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    advance(f, T0 + 10 * MIN); /* exactly the deadline: still met-able */
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESPONSE), 0);
    assert_int_equal(core_next_due(f->core), T0 + 10 * MIN);
    advance(f, T0 + 10 * MIN + 1);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESPONSE), 1);
    const struct rec *r = find(f, "A", NOTICE_BREACH, METRIC_RESPONSE);
    assert_int_equal(r->deadline, T0 + 10 * MIN);
    assert_int_equal(r->at, T0 + 10 * MIN + 1);
    assert_int_equal(r->late, 1);
    assert_string_equal(r->tier, "fast");
    assert_int_equal(core_overdue_count(f->core, tier_index(f, "fast"), METRIC_RESPONSE), 1);
    /* Breached at its deadline: the outcome counts then. */
    const struct outc *o = find_outcome(f, "A", METRIC_RESPONSE, true);
    assert_int_equal(o->outcome, OUTCOME_BREACHED);
    assert_int_equal(o->decided_ms, T0 + 10 * MIN);
    /* Never twice. */
    advance(f, T0 + 30 * MIN);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESPONSE), 1);
}

static void
test_responded_exactly_at_deadline_is_met(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply(f, EVT_RESPONDED, "A", T0 + 10 * MIN, NULL), 0);
    advance(f, T0 + HOUR / 2);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESPONSE), 0);
    assert_int_equal(find_outcome(f, "A", METRIC_RESPONSE, true)->outcome, OUTCOME_MET);
}

static void
test_late_response_recovers_breach(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    /* No advance in between: the event itself carries time past the
     * deadline, so the breach fires before the response is applied. */
    assert_int_equal(apply(f, EVT_RESPONDED, "A", T0 + 11 * MIN, NULL), 0);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESPONSE), 1);
    const struct rec *rec = find(f, "A", NOTICE_RECOVERED, METRIC_RESPONSE);
    assert_non_null(rec);
    assert_int_equal(rec->at, T0 + 11 * MIN);
    assert_int_equal(rec->late, MIN);
    assert_int_equal(find_outcome(f, "A", METRIC_RESPONSE, true)->outcome, OUTCOME_BREACHED);
    const struct outc *o = find_outcome(f, "A", METRIC_RESPONSE, false);
    assert_non_null(o);
    assert_int_equal(o->elapsed, 11 * MIN);
    assert_int_equal(core_overdue_count(f->core, tier_index(f, "fast"), METRIC_RESPONSE), 0);
    /* The breach fired before the recovery. */
    assert_true(find(f, "A", NOTICE_BREACH, METRIC_RESPONSE) < rec);
}

static void
test_warnings(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    advance(f, T0 + 5 * MIN); /* 50% exactly: not yet past */
    assert_int_equal(count(f, "A", NOTICE_WARNING, METRIC_RESPONSE), 0);
    advance(f, T0 + 5 * MIN + 1);
    assert_int_equal(count(f, "A", NOTICE_WARNING, METRIC_RESPONSE), 1);
    assert_int_equal(find(f, "A", NOTICE_WARNING, METRIC_RESPONSE)->bp, 5000);
    advance(f, T0 + 8 * MIN + 1);
    assert_int_equal(count(f, "A", NOTICE_WARNING, METRIC_RESPONSE), 2);
    assert_int_equal(f->notices[f->nnotices - 1].bp, 8000);
    assert_int_equal(f->notices[f->nnotices - 1].deadline, T0 + 10 * MIN);
    /* Answered now: no breach, no more warnings. Resolution still warns. */
    assert_int_equal(apply(f, EVT_RESPONDED, "A", T0 + 9 * MIN, NULL), 0);
    advance(f, T0 + 31 * MIN);
    assert_int_equal(count(f, "A", NOTICE_WARNING, METRIC_RESPONSE), 2);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESPONSE), 0);
    assert_int_equal(count(f, "A", NOTICE_WARNING, METRIC_RESOLUTION), 1);
}

static void
test_backdated_open_breaches_at_once_without_warnings(void **state)
{
    struct fixture *f = *state;
    advance(f, T0 + 2 * HOUR);
    assert_int_equal(apply(f, EVT_OPENED, "old", T0, "priority=urgent"), 0);
    /* Decided once arrival time passes the arrival of the event that set
     * the deadline (an answer arriving in the same millisecond still
     * counts): at the next tick. */
    assert_int_equal(count(f, "old", NOTICE_BREACH, METRIC_RESPONSE), 0);
    advance(f, T0 + 2 * HOUR + 1);
    assert_int_equal(count(f, "old", NOTICE_BREACH, METRIC_RESPONSE), 1);
    assert_int_equal(count(f, "old", NOTICE_BREACH, METRIC_RESOLUTION), 1);
    assert_int_equal(count(f, "old", NOTICE_WARNING, -1), 0);
    const struct rec *r = find(f, "old", NOTICE_BREACH, METRIC_RESPONSE);
    assert_int_equal(r->deadline, T0 + 10 * MIN);
    assert_int_equal(r->at, T0 + 2 * HOUR + 1);           /* detected now */
    assert_int_equal(r->late, 2 * HOUR + 1 - 10 * MIN);   /* its true lateness */
}

static void
test_backdated_event_applied_at_own_ts(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply(f, EVT_OPENED, "B", T0, "priority=urgent"), 0);
    advance(f, T0 + 9 * MIN);
    /* Arrives late but happened before the deadline: met at its ts. */
    assert_int_equal(apply(f, EVT_RESPONDED, "A", T0 + 4 * MIN, NULL), 0);
    const struct outc *o = find_outcome(f, "A", METRIC_RESPONSE, true);
    assert_int_equal(o->outcome, OUTCOME_MET);
    assert_int_equal(o->decided_ms, T0 + 4 * MIN);
    /* B breaches; an answer stamped before its deadline arriving afterwards
     * does not withdraw the breach. */
    advance(f, T0 + 15 * MIN);
    assert_int_equal(count(f, "B", NOTICE_BREACH, METRIC_RESPONSE), 1);
    assert_int_equal(apply(f, EVT_RESPONDED, "B", T0 + 5 * MIN, NULL), 0);
    assert_int_equal(find_outcome(f, "B", METRIC_RESPONSE, true)->outcome, OUTCOME_BREACHED);
    assert_int_equal(count(f, "B", NOTICE_RECOVERED, METRIC_RESPONSE), 1);
    assert_int_equal(core_now(f->core), T0 + 15 * MIN); /* never backwards */
}

/* ---- paused / resumed ------------------------------------------------- */

static void
test_pause_moves_resolution_only(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply(f, EVT_PAUSED, "A", T0 + MIN, NULL), 0);
    const struct ticket *t = core_find(f->core, "A", 1);
    assert_int_equal(t->clk[METRIC_RESOLUTION].state, CLOCK_PAUSED);
    assert_int_equal(t->clk[METRIC_RESPONSE].state, CLOCK_RUNNING);
    /* The response clock still breaches on time. */
    advance(f, T0 + 10 * MIN + 1);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESPONSE), 1);
    /* Paused for 2 hours: resolution would have breached at T0+1h. */
    advance(f, T0 + 2 * HOUR + MIN);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESOLUTION), 0);
    assert_int_equal(apply(f, EVT_PAUSED, "A", T0 + 2 * HOUR + MIN, NULL), 0); /* already */
    assert_int_equal(apply(f, EVT_RESUMED, "A", T0 + 2 * HOUR + MIN, NULL), 0);
    /* One minute was consumed before the pause: 59 minutes remain. */
    assert_int_equal(t->clk[METRIC_RESOLUTION].deadline_ms, T0 + 3 * HOUR);
    advance(f, T0 + 3 * HOUR);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESOLUTION), 0);
    advance(f, T0 + 3 * HOUR + 1);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESOLUTION), 1);
    assert_int_equal(apply(f, EVT_RESUMED, "A", T0 + 4 * HOUR, NULL), 0); /* not paused */
}

static void
test_pause_list_of_tier(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "tier=both"), 0);
    assert_int_equal(apply(f, EVT_PAUSED, "A", T0 + 10 * MIN, NULL), 0);
    const struct ticket *t = core_find(f->core, "A", 1);
    assert_int_equal(t->clk[METRIC_RESPONSE].state, CLOCK_PAUSED);
    assert_int_equal(t->clk[METRIC_RESOLUTION].state, CLOCK_PAUSED);
    assert_int_equal(core_heap_size(f->core), 0);
    assert_int_equal(apply(f, EVT_RESUMED, "A", T0 + 5 * HOUR, NULL), 0);
    assert_int_equal(t->clk[METRIC_RESPONSE].deadline_ms, T0 + 5 * HOUR + 50 * MIN);
    assert_int_equal(t->clk[METRIC_RESOLUTION].deadline_ms, T0 + 6 * HOUR + 50 * MIN);
    assert_int_equal(count(f, "A", NOTICE_BREACH, -1), 0);
}

/* ---- resolved, reopened, closed, deleted ------------------------------ */

static void
test_resolved_stops_both(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply(f, EVT_RESOLVED, "A", T0 + 3 * MIN, NULL), 0);
    const struct ticket *t = core_find(f->core, "A", 1);
    assert_int_equal(t->clk[METRIC_RESPONSE].state, CLOCK_STOPPED);
    assert_int_equal(t->clk[METRIC_RESOLUTION].state, CLOCK_STOPPED);
    assert_int_equal(find_outcome(f, "A", METRIC_RESPONSE, true)->outcome, OUTCOME_MET);
    assert_int_equal(find_outcome(f, "A", METRIC_RESOLUTION, true)->outcome, OUTCOME_MET);
    assert_int_equal(core_open_count(f->core, tier_index(f, "fast")), 0);
    /* Only the timer that forgets it (state.forget_resolved_after) is left. */
    assert_int_equal(core_heap_size(f->core), 1);
    advance(f, T0 + 10 * HOUR);
    assert_int_equal(f->nnotices, 0);
}

static void
test_reopened_new_cycle(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply(f, EVT_RESPONDED, "A", T0 + MIN, NULL), 0);
    assert_int_equal(apply(f, EVT_REOPENED, "A", T0 + 2 * MIN, NULL), 0); /* open: no-op */
    assert_int_equal(apply(f, EVT_RESOLVED, "A", T0 + 30 * MIN, NULL), 0);
    assert_int_equal(apply(f, EVT_REOPENED, "A", T0 + 5 * HOUR, NULL), 0);
    const struct ticket *t = core_find(f->core, "A", 1);
    const struct sla_clock *c = &t->clk[METRIC_RESOLUTION];
    assert_int_equal(c->state, CLOCK_RUNNING);
    assert_int_equal(c->cycle, 1);
    assert_int_equal(c->started_ms, T0 + 5 * HOUR);
    assert_int_equal(c->deadline_ms, T0 + 6 * HOUR); /* the full target */
    assert_int_equal(t->clk[METRIC_RESPONSE].state, CLOCK_STOPPED);
    assert_int_equal(core_open_count(f->core, tier_index(f, "fast")), 1);
    advance(f, T0 + 6 * HOUR + 1);
    const struct rec *r = find(f, "A", NOTICE_BREACH, METRIC_RESOLUTION);
    assert_non_null(r);
    assert_int_equal(r->cycle, 1);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESPONSE), 0);
}

static void
test_closed_resolves_and_forgets(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply(f, EVT_CLOSED, "A", T0 + 5 * MIN, NULL), 0);
    assert_null(core_find(f->core, "A", 1));
    assert_int_equal(find_outcome(f, "A", METRIC_RESPONSE, true)->outcome, OUTCOME_MET);
    assert_int_equal(find_outcome(f, "A", METRIC_RESOLUTION, true)->outcome, OUTCOME_MET);
    assert_int_equal(core_open_count(f->core, tier_index(f, "fast")), 0);
    assert_int_equal(core_ticket_count(f->core), 0);
    assert_int_equal(apply(f, EVT_RESPONDED, "A", T0 + 6 * MIN, NULL), -1);
    /* Closing a breached ticket recovers it. */
    assert_int_equal(apply(f, EVT_OPENED, "B", T0 + 6 * MIN, "priority=urgent"), 0);
    assert_int_equal(apply(f, EVT_CLOSED, "B", T0 + 30 * MIN, NULL), 0);
    assert_int_equal(count(f, "B", NOTICE_BREACH, METRIC_RESPONSE), 1);
    assert_int_equal(count(f, "B", NOTICE_RECOVERED, METRIC_RESPONSE), 1);
    assert_int_equal(core_overdue_count(f->core, tier_index(f, "fast"), METRIC_RESPONSE), 0);
}

static void
test_deleted_ends_without_outcome(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply(f, EVT_DELETED, "A", T0 + MIN, NULL), 0);
    assert_null(core_find(f->core, "A", 1));
    assert_int_equal(core_heap_size(f->core), 0);
    advance(f, T0 + 10 * HOUR);
    assert_int_equal(f->nnotices, 0);
    assert_int_equal(f->noutcomes, 0);
    assert_int_equal(core_open_count(f->core, tier_index(f, "fast")), 0);
}

/* ---- updated ---------------------------------------------------------- */

static void
test_priority_change_retargets(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=low"), 0); /* slow: 4h */
    assert_int_equal(apply(f, EVT_UPDATED, "A", T0 + 5 * MIN, "priority=high"), 0);
    const struct ticket *t = core_find(f->core, "A", 1);
    assert_string_equal(core_tier_name(f->core, t), "mid");
    /* Keeps its start, takes the new target. */
    assert_int_equal(t->clk[METRIC_RESPONSE].started_ms, T0);
    assert_int_equal(t->clk[METRIC_RESPONSE].deadline_ms, T0 + HOUR);
    /* mid has a resolution target that slow lacked: counted from opening. */
    assert_int_equal(t->clk[METRIC_RESOLUTION].state, CLOCK_RUNNING);
    assert_int_equal(t->clk[METRIC_RESOLUTION].deadline_ms, T0 + 4 * HOUR);
    assert_int_equal(core_open_count(f->core, tier_index(f, "slow")), 0);
    assert_int_equal(core_open_count(f->core, tier_index(f, "mid")), 1);
    /* Escalating to urgent at T0+20m: the 10m deadline is already past. */
    assert_int_equal(apply(f, EVT_UPDATED, "A", T0 + 20 * MIN, "priority=urgent"), 0);
    advance(f, T0 + 20 * MIN + 1);
    assert_string_equal(core_tier_name(f->core, t), "fast");
    const struct rec *r = find(f, "A", NOTICE_BREACH, METRIC_RESPONSE);
    assert_non_null(r);
    assert_int_equal(r->deadline, T0 + 10 * MIN);
    assert_string_equal(r->tier, "fast");
    assert_int_equal(core_overdue_count(f->core, tier_index(f, "fast"), METRIC_RESPONSE), 1);
    /* An attribute that changes no tier changes no deadline. */
    assert_int_equal(apply(f, EVT_UPDATED, "A", T0 + 21 * MIN, "queue=billing"), 0);
    assert_string_equal(core_ticket_attr(f->core, t, ATTR_QUEUE), "billing");
    assert_int_equal(t->clk[METRIC_RESOLUTION].deadline_ms, T0 + HOUR);
}

static void
test_explicit_tier_update(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply(f, EVT_UPDATED, "A", T0 + MIN, "tier=slow"), 0);
    const struct ticket *t = core_find(f->core, "A", 1);
    assert_string_equal(core_tier_name(f->core, t), "slow");
    assert_int_equal(t->clk[METRIC_RESPONSE].deadline_ms, T0 + 4 * HOUR);
    /* slow has no resolution clock: it ends without an outcome. */
    assert_int_equal(t->clk[METRIC_RESOLUTION].state, CLOCK_IDLE);
    assert_null(find_outcome(f, "A", METRIC_RESOLUTION, true));
    /* Clearing the explicit tier hands the choice back to the policies. */
    assert_int_equal(apply(f, EVT_UPDATED, "A", T0 + 2 * MIN, "tier="), 0);
    assert_string_equal(core_tier_name(f->core, t), "fast");
}

/* ---- replay equals live ----------------------------------------------- */

struct step {
    enum ev_type type;
    const char *ticket;
    int64_t at;
    const char *extra;
};

static const struct step script[] = {
    { EVT_OPENED, "r1", 0, "priority=urgent" },
    { EVT_OPENED, "r2", 1 * MIN, "priority=high" },
    { EVT_OPENED, "r3", 2 * MIN, "tier=both" },
    { EVT_RESPONDED, "r1", 12 * MIN, NULL },
    { EVT_PAUSED, "r3", 20 * MIN, NULL },
    { EVT_UPDATED, "r2", 30 * MIN, "priority=urgent" },
    { EVT_RESUMED, "r3", 3 * HOUR, NULL },
    { EVT_RESOLVED, "r1", 3 * HOUR + MIN, NULL },
    { EVT_REOPENED, "r1", 4 * HOUR, NULL },
    { EVT_RESPONDED, "r3", 4 * HOUR + 5 * MIN, NULL },
    { EVT_CLOSED, "r2", 5 * HOUR, NULL },
    { EVT_DELETED, "r3", 6 * HOUR, NULL },
};

static void
run_script(struct fixture *f, bool live)
{
    for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
        if (live) /* time passes between events: the timer fires */
            for (int64_t t = (i ? script[i - 1].at : 0); t < script[i].at; t += 17 * SEC)
                advance(f, T0 + t);
        assert_int_equal(apply(f, script[i].type, script[i].ticket, T0 + script[i].at,
                               script[i].extra), 0);
    }
    advance(f, T0 + 8 * HOUR);
}

static void
test_replay_equals_live(void **state)
{
    (void)state;
    struct fixture *live = fixture_new(yaml), *replay = fixture_new(yaml);
    run_script(live, true);
    run_script(replay, false);
    assert_true(live->nnotices > 3);
    assert_int_equal(live->nnotices, replay->nnotices);
    for (int i = 0; i < live->nnotices; i++) {
        const struct rec *a = &live->notices[i], *b = &replay->notices[i];
        assert_int_equal(a->kind, b->kind);
        assert_string_equal(a->ticket, b->ticket);
        assert_int_equal(a->metric, b->metric);
        assert_int_equal(a->deadline, b->deadline);
        assert_int_equal(a->cycle, b->cycle);
    }
    assert_int_equal(live->noutcomes, replay->noutcomes);
    for (int i = 0; i < live->noutcomes; i++) {
        assert_string_equal(live->outcomes[i].ticket, replay->outcomes[i].ticket);
        assert_int_equal(live->outcomes[i].outcome, replay->outcomes[i].outcome);
        assert_int_equal(live->outcomes[i].decided_ms, replay->outcomes[i].decided_ms);
    }
    /* r1's response was late (12m > 10m): breached then recovered. */
    assert_int_equal(count(live, "r1", NOTICE_BREACH, METRIC_RESPONSE), 1);
    assert_int_equal(count(live, "r1", NOTICE_RECOVERED, METRIC_RESPONSE), 1);
    /* r2 escalated at 30m to a 10m target: breached at once, deadline 11m. */
    const struct rec *r = find(live, "r2", NOTICE_BREACH, METRIC_RESPONSE);
    assert_non_null(r);
    assert_int_equal(r->deadline, T0 + 11 * MIN);
    teardown((void **)&live);
    teardown((void **)&replay);
}

/* ---- reload ----------------------------------------------------------- */

static void
test_reload_retargets(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(apply(f, EVT_OPENED, "A", T0, "priority=high"), 0);  /* mid 1h */
    assert_int_equal(apply(f, EVT_OPENED, "B", T0, "priority=low"), 0);   /* slow 4h */
    advance(f, T0 + 40 * MIN);
    const char *tighter =
        "tiers:\n"
        "  mid:  { response: 30m, resolution: 4h }\n"
        "  slow: { response: 8h }\n"
        "policies:\n"
        "  - { match: { priority: high }, tier: mid }\n"
        "  - { tier: slow }\n";
    struct config *cfg2 = cfg_load_string("t2.yaml", tighter, strlen(tighter), stderr);
    assert_non_null(cfg2);
    core_set_config(f->core, cfg2);
    /* A's target shrank below its age: breached at once at its new deadline. */
    const struct rec *r = find(f, "A", NOTICE_BREACH, METRIC_RESPONSE);
    assert_non_null(r);
    assert_int_equal(r->deadline, T0 + 30 * MIN);
    /* B loosened: no breach at the old 4h deadline. */
    advance(f, T0 + 5 * HOUR);
    assert_int_equal(count(f, "B", NOTICE_BREACH, METRIC_RESPONSE), 0);
    const struct ticket *b = core_find(f->core, "B", 1);
    assert_int_equal(b->clk[METRIC_RESPONSE].deadline_ms, T0 + 8 * HOUR);
    assert_int_equal(core_open_count(f->core, cfg_tier_index(cfg2, "slow", 4)), 1);
    assert_int_equal(core_open_count(f->core, cfg_tier_index(cfg2, "mid", 3)), 1);
    cfg_free(f->cfg);
    f->cfg = cfg2;
}

static void
test_many_tickets_heap_consistency(void **state)
{
    struct fixture *f = *state;
    char id[32];
    long urgent = 0, plain = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof(id), "T%d", i);
        assert_int_equal(apply(f, EVT_OPENED, id, T0 + i, i % 2 ? "priority=urgent" : NULL), 0);
    }
    for (int i = 0; i < 2000; i++) {
        if (i % 3 == 0) {
            snprintf(id, sizeof(id), "T%d", i);
            assert_int_equal(apply(f, EVT_DELETED, id, T0 + 2000, NULL), 0);
        } else if (i % 2) {
            urgent++;
        } else {
            plain++;
        }
    }
    assert_int_equal(core_ticket_count(f->core), 2000 - 667);
    assert_int_equal(core_heap_size(f->core), 2 * urgent + plain);
    advance(f, T0 + 10 * HOUR);
    assert_int_equal(core_heap_size(f->core), 0);
    assert_int_equal(core_overdue_count(f->core, tier_index(f, "fast"), METRIC_RESPONSE), urgent);
    assert_int_equal(core_overdue_count(f->core, tier_index(f, "fast"), METRIC_RESOLUTION), urgent);
    assert_int_equal(core_overdue_count(f->core, tier_index(f, "slow"), METRIC_RESPONSE), plain);
}

/* ---- business hours --------------------------------------------------- */

static const char *cal_yaml =
    "calendars:\n"
    "  office: { timezone: Europe/Berlin, week: { mon-fri: \"09:00-18:00\" } }\n"
    "tiers:\n"
    "  biz:     { response: 4h, resolution: 16h, warn: [50%], calendar: office }\n"
    "  bizfast: { response: 1h, resolution: 8h, calendar: office }\n"
    "policies:\n"
    "  - { match: { priority: high }, tier: bizfast }\n"
    "  - { tier: biz }\n";

/* 2026-11-20 is a Friday; Berlin is UTC+1 in November. */
#define FRI_1600_BERLIN 1795186800000LL /* 2026-11-20T15:00:00Z */

static void
test_calendar_friday_evening_to_monday(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(cal_yaml);
    int64_t fri16 = FRI_1600_BERLIN;
    assert_int_equal(apply(f, EVT_OPENED, "A", fri16, NULL), 0);
    const struct ticket *t = core_find(f->core, "A", 1);
    /* 2 h on Friday, 2 h on Monday: Monday 11:00 Berlin. */
    int64_t mon11 = fri16 + 3 * 24 * HOUR - 5 * HOUR;
    assert_int_equal(t->clk[METRIC_RESPONSE].deadline_ms, mon11);
    /* The 50% warning is at 2 h of business time: Friday 18:00 exactly. */
    advance(f, fri16 + 2 * HOUR + 1);
    assert_int_equal(count(f, "A", NOTICE_WARNING, METRIC_RESPONSE), 1);
    /* Nothing over the weekend, the breach just after Monday 11:00. */
    advance(f, mon11);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESPONSE), 0);
    advance(f, mon11 + 1);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESPONSE), 1);
    teardown((void **)&f);
}

static void
test_calendar_pause_across_weekend(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(cal_yaml);
    int64_t fri16 = FRI_1600_BERLIN;
    assert_int_equal(apply(f, EVT_OPENED, "A", fri16, NULL), 0);
    const struct ticket *t = core_find(f->core, "A", 1);
    /* Resolution 16 h: Fri 2 h + Mon 9 h + Tue 5 h = Tue 14:00 Berlin. */
    assert_int_equal(t->clk[METRIC_RESOLUTION].deadline_ms, fri16 + 4 * 24 * HOUR - 2 * HOUR);
    /* Paused Friday 17:00 (1 h counted), resumed Saturday noon (closed):
     * counting goes on at Monday 09:00 with 15 h left: Tue 15:00 Berlin. */
    assert_int_equal(apply(f, EVT_PAUSED, "A", fri16 + HOUR, NULL), 0);
    assert_int_equal(apply(f, EVT_RESUMED, "A", fri16 + 20 * HOUR, NULL), 0);
    assert_int_equal(t->clk[METRIC_RESOLUTION].consumed_ms, HOUR);
    assert_int_equal(t->clk[METRIC_RESOLUTION].deadline_ms, fri16 + 4 * 24 * HOUR - HOUR);
    teardown((void **)&f);
}

static void
test_calendar_priority_change_during_pause(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(cal_yaml);
    int64_t fri16 = FRI_1600_BERLIN;
    assert_int_equal(apply(f, EVT_OPENED, "A", fri16, NULL), 0);
    assert_int_equal(apply(f, EVT_PAUSED, "A", fri16 + HOUR, NULL), 0);
    /* Saturday 10:00: escalated to high (bizfast: 1 h response, 8 h
     * resolution). The response clock, not paused, is already past its new
     * Friday 17:00 deadline: breached at once. The paused resolution clock
     * keeps its 1 h and takes the 8 h target. */
    assert_int_equal(apply(f, EVT_UPDATED, "A", fri16 + 18 * HOUR, "priority=high"), 0);
    advance(f, fri16 + 18 * HOUR + 1);
    const struct rec *r = find(f, "A", NOTICE_BREACH, METRIC_RESPONSE);
    assert_non_null(r);
    assert_int_equal(r->deadline, fri16 + HOUR);
    const struct ticket *t = core_find(f->core, "A", 1);
    assert_int_equal(t->clk[METRIC_RESOLUTION].state, CLOCK_PAUSED);
    assert_int_equal(count(f, "A", NOTICE_BREACH, METRIC_RESOLUTION), 0);
    /* Resumed Sunday: 7 h left from Monday 09:00: Monday 16:00 Berlin. */
    assert_int_equal(apply(f, EVT_RESUMED, "A", fri16 + 40 * HOUR, NULL), 0);
    assert_int_equal(t->clk[METRIC_RESOLUTION].deadline_ms, fri16 + 3 * 24 * HOUR);
    teardown((void **)&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_opened_starts_clocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_opened_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policies_and_explicit_tier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_ticket_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_responded_in_time_is_met, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breach_at_deadline_not_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_responded_exactly_at_deadline_is_met, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_response_recovers_breach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warnings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backdated_open_breaches_at_once_without_warnings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backdated_event_applied_at_own_ts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_moves_resolution_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_list_of_tier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolved_stops_both, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopened_new_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_resolves_and_forgets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_ends_without_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_change_retargets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_explicit_tier_update, setup, teardown),
        cmocka_unit_test(test_replay_equals_live),
        cmocka_unit_test_setup_teardown(test_reload_retargets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_tickets_heap_consistency, setup, teardown),
        cmocka_unit_test(test_calendar_friday_evening_to_monday),
        cmocka_unit_test(test_calendar_pause_across_weekend),
        cmocka_unit_test(test_calendar_priority_change_during_pause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
