/* Unit tests of the time rule (SPEC section 3, "Time"): clock arithmetic
 * uses ts, decisions follow arrival. Each event is given both times
 * explicitly (its entry ID's time and the wall clock when it is read), the
 * wall clock is injected, and the tests check each consequence the rule
 * promises, then a randomized differential: random streams with late, fast
 * and backfilling producers decided live (interleaved with wall-clock
 * advances) and by replay must give identical outcomes. */
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

#define T0 1795000000000LL
#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define MAX_REC 4096

static const char *yaml_fmt =
    "events: { allowed_lateness: %s }\n"
    "tiers:\n"
    "  quick: { response: 60s, resolution: 5m, warn: [50%%, 80%%] }\n"
    "  calm:  { response: 2m, resolution: 10m }\n"
    "policies:\n"
    "  - { match: { priority: high }, tier: quick }\n"
    "  - { tier: calm }\n";

struct rec {
    enum notice_kind kind;
    char ticket[16];
    int metric;
    uint16_t cycle;
    uint32_t bp;
    int64_t deadline, at;
};

struct fx {
    struct config *cfg;
    struct core *core;
    int64_t wall;
    struct rec rec[MAX_REC];
    int nrec;
    long met, breached;
};

static int64_t
fake_wall(void *arg)
{
    return ((struct fx *)arg)->wall;
}

static void
on_notice(void *arg, const struct sla_notice *n)
{
    struct fx *f = arg;
    assert_true(f->nrec < MAX_REC);
    struct rec *r = &f->rec[f->nrec++];
    r->kind = n->kind;
    snprintf(r->ticket, sizeof(r->ticket), "%s", n->ticket->id);
    r->metric = n->metric;
    r->cycle = n->cycle;
    r->bp = n->percent_bp;
    r->deadline = n->deadline_ms;
    r->at = n->at_ms;
    /* No breach is decided, recorded or sent before its deadline by the
     * wall clock, and at_ms is the wall time of the decision. */
    if (n->kind == NOTICE_BREACH) {
        assert_true(f->wall >= n->deadline_ms);
        assert_int_equal(n->at_ms, f->wall);
    }
}

static void
on_outcome(void *arg, const struct sla_outcome *o)
{
    struct fx *f = arg;
    if (!o->decided)
        return;
    if (o->outcome == OUTCOME_MET)
        f->met++;
    else
        f->breached++;
}

static struct fx *
fx_new(const char *lateness)
{
    char text[512];
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(text, sizeof(text), yaml_fmt, lateness);
    f->cfg = cfg_load_string("time.yaml", text, strlen(text), stderr);
    assert_non_null(f->cfg);
    struct core_sink sink = { .notice = on_notice, .outcome = on_outcome, .arg = f };
    f->core = core_new(f->cfg, fake_wall, f, &sink);
    assert_non_null(f->core);
    f->wall = T0;
    return f;
}

static void
fx_free(struct fx *f)
{
    core_free(f->core);
    cfg_free(f->cfg);
    free(f);
}

/* The wall clock moves on (the deadline timer): decisions by wall time. */
static void
tick(struct fx *f, int64_t wall)
{
    f->wall = wall;
    core_advance(f->core, wall);
}

/* One stream entry with ID time id_ms (its arrival), read when the wall
 * clock is f->wall; ts < 0: no ts field (it defaults to the arrival). */
static int
entry(struct fx *f, uint64_t id_ms, const char *type, const char *ticket, int64_t ts,
      const char *priority)
{
    struct ev_field fields[4];
    size_t n = 0;
    char tsbuf[32];
    struct sla_event ev;
    const char *reason = NULL;
    fields[n++] = (struct ev_field){ "type", 4, type, strlen(type) };
    fields[n++] = (struct ev_field){ "ticket", 6, ticket, strlen(ticket) };
    if (ts >= 0) {
        snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
        fields[n++] = (struct ev_field){ "ts", 2, tsbuf, strlen(tsbuf) };
    }
    if (priority)
        fields[n++] = (struct ev_field){ "priority", 8, priority, strlen(priority) };
    return event_apply(f->core, f->cfg, fields, n, id_ms, f->wall, &ev, &reason);
}

static int
count(const struct fx *f, const char *ticket, enum notice_kind kind)
{
    int n = 0;
    for (int i = 0; i < f->nrec; i++)
        if (strcmp(f->rec[i].ticket, ticket) == 0 && f->rec[i].kind == kind)
            n++;
    return n;
}

static const struct rec *
find(const struct fx *f, const char *ticket, enum notice_kind kind, int metric)
{
    for (int i = 0; i < f->nrec; i++)
        if (strcmp(f->rec[i].ticket, ticket) == 0 && f->rec[i].kind == kind &&
            f->rec[i].metric == metric)
            return &f->rec[i];
    return NULL;
}

/* ---- the consequences, one by one --------------------------------------- */

/* A second producer 2 minutes ahead sends an event: nothing due in the
 * next 2 minutes breaches or warns early. */
static void
test_fast_producer_breaches_nothing_early(void **state)
{
    (void)state;
    struct fx *f = fx_new("0s");
    assert_int_equal(entry(f, T0, "opened", "A", T0, "high"), 0); /* due T0+60s */
    tick(f, T0 + SEC);
    f->wall = T0 + SEC;
    assert_int_equal(entry(f, T0 + SEC, "opened", "B", T0 + 2 * MIN, "high"), 0);
    tick(f, T0 + 29 * SEC);
    assert_int_equal(f->nrec, 0); /* not even A's 50% warning (due T0+30s) */
    tick(f, T0 + 30 * SEC + 1);
    assert_int_equal(count(f, "A", NOTICE_WARNING), 1);
    tick(f, T0 + 60 * SEC);
    assert_int_equal(count(f, "A", NOTICE_BREACH), 0);
    tick(f, T0 + 60 * SEC + 1);
    const struct rec *r = find(f, "A", NOTICE_BREACH, METRIC_RESPONSE);
    assert_non_null(r);
    assert_int_equal(r->deadline, T0 + 60 * SEC);
    assert_int_equal(r->at, T0 + 60 * SEC + 1); /* the true decision time */
    /* B's own clock counts from its ts, as the producer stamped it. */
    assert_int_equal(count(f, "B", NOTICE_BREACH), 0);
    tick(f, T0 + 3 * MIN + 1);
    r = find(f, "B", NOTICE_BREACH, METRIC_RESPONSE);
    assert_non_null(r);
    assert_int_equal(r->deadline, T0 + 3 * MIN);
    fx_free(f);
}

/* An answer stamped before the deadline that arrives within the allowed
 * lateness is met; without lateness it is a breach, then a recovery, and
 * counted as a late event. */
static void
test_answer_within_lateness_is_met(void **state)
{
    (void)state;
    struct fx *f = fx_new("5s");
    assert_int_equal(entry(f, T0, "opened", "A", T0, "high"), 0);
    tick(f, T0 + 62 * SEC); /* past the deadline, not past it + 5 s */
    assert_int_equal(count(f, "A", NOTICE_BREACH), 0);
    f->wall = T0 + 62 * SEC;
    assert_int_equal(entry(f, T0 + 62 * SEC, "responded", "A", T0 + 58 * SEC, NULL), 0);
    tick(f, T0 + 10 * MIN);
    assert_int_equal(find(f, "A", NOTICE_BREACH, METRIC_RESPONSE) == NULL, 1);
    assert_int_equal(f->met, 1);                  /* response met */
    assert_int_equal(core_late_events(f->core), 0);
    fx_free(f);

    f = fx_new("0s");
    assert_int_equal(entry(f, T0, "opened", "A", T0, "high"), 0);
    tick(f, T0 + 62 * SEC);
    assert_non_null(find(f, "A", NOTICE_BREACH, METRIC_RESPONSE));
    f->wall = T0 + 62 * SEC;
    assert_int_equal(entry(f, T0 + 62 * SEC, "responded", "A", T0 + 58 * SEC, NULL), 0);
    assert_non_null(find(f, "A", NOTICE_RECOVERED, METRIC_RESPONSE));
    assert_int_equal(core_late_events(f->core), 1);
    fx_free(f);
}

/* With lateness, the breach is decided at deadline + lateness, not before. */
static void
test_lateness_delays_the_decision(void **state)
{
    (void)state;
    struct fx *f = fx_new("2s");
    assert_int_equal(entry(f, T0, "opened", "A", T0, "high"), 0);
    tick(f, T0 + 62 * SEC);
    assert_int_equal(count(f, "A", NOTICE_BREACH), 0);
    tick(f, T0 + 62 * SEC + 1);
    const struct rec *r = find(f, "A", NOTICE_BREACH, METRIC_RESPONSE);
    assert_non_null(r);
    assert_int_equal(r->deadline, T0 + 60 * SEC);
    assert_int_equal(r->at, T0 + 62 * SEC + 1);
    fx_free(f);
}

/* An answer stamped after the deadline but arriving before the decision
 * point is a breach at once, then recovered; an answer stamped ahead of its
 * own arrival counts at its arrival (a fast clock cannot make it late). */
static void
test_stop_stamped_late_or_ahead(void **state)
{
    (void)state;
    struct fx *f = fx_new("5s");
    assert_int_equal(entry(f, T0, "opened", "A", T0, "high"), 0);
    f->wall = T0 + 61 * SEC;
    assert_int_equal(entry(f, T0 + 61 * SEC, "responded", "A", T0 + 61 * SEC, NULL), 0);
    const struct rec *r = find(f, "A", NOTICE_BREACH, METRIC_RESPONSE);
    assert_non_null(r);
    assert_int_equal(r->at, T0 + 61 * SEC);
    assert_non_null(find(f, "A", NOTICE_RECOVERED, METRIC_RESPONSE));

    assert_int_equal(entry(f, T0 + 61 * SEC, "opened", "B", T0 + 61 * SEC, "high"), 0);
    f->wall = T0 + 80 * SEC;
    /* Stamped 2 minutes ahead (past B's deadline), arriving in time. */
    assert_int_equal(entry(f, T0 + 80 * SEC, "responded", "B", T0 + 200 * SEC, NULL), 0);
    tick(f, T0 + 10 * MIN);
    assert_null(find(f, "B", NOTICE_BREACH, METRIC_RESPONSE));
    fx_free(f);
}

/* An entry with an explicit ID a year ahead of the wall clock moves no
 * time: its arrival is the wall clock, and the entries after it, without
 * ts, are not "in the future". */
static void
test_id_ahead_moves_no_time(void **state)
{
    (void)state;
    struct fx *f = fx_new("0s");
    struct sla_event ev;
    const char *reason = NULL;
    struct ev_field fields[] = { { "type", 4, "opened", 6 }, { "ticket", 6, "Y", 1 } };
    uint64_t year = (uint64_t)T0 + 365ULL * 24 * HOUR;
    assert_int_equal(event_parse(&ev, fields, 2, year, T0, 5 * MIN, &reason), 0);
    assert_int_equal(ev.arrival_ms, T0);
    assert_int_equal(ev.ts_ms, T0);
    assert_false(ev.future);
    /* The largest ID Redis allows (20 digits). */
    assert_int_equal(event_parse(&ev, fields, 2, UINT64_MAX, T0, 5 * MIN, &reason), 0);
    assert_int_equal(ev.arrival_ms, T0);
    assert_int_equal(entry(f, year, "opened", "Y", -1, "high"), 0);
    assert_int_equal(entry(f, year + 1, "opened", "Z", -1, "high"), 0);
    tick(f, T0 + 59 * SEC);
    assert_int_equal(count(f, "Y", NOTICE_BREACH), 0);
    tick(f, T0 + 60 * SEC + 1);
    assert_int_equal(count(f, "Y", NOTICE_BREACH), 1);
    assert_int_equal(count(f, "Z", NOTICE_BREACH), 1);
    fx_free(f);
}

static void
test_stream_ids_full_range(void **state)
{
    (void)state;
    uint64_t ms, seq;
    assert_int_equal(stream_id_parse("18446744073709551615-0", 22, &ms, &seq), 0);
    assert_true(ms == UINT64_MAX && seq == 0);
    assert_int_equal(stream_id_parse("9223372036854775808-18446744073709551615", 40, &ms,
                                     &seq), 0);
    assert_true(ms == 9223372036854775808ULL && seq == UINT64_MAX);
    assert_int_equal(stream_id_parse("18446744073709551616-0", 22, &ms, &seq), -1);
    assert_int_equal(stream_id_parse("123456789012345678901-0", 23, &ms, &seq), -1);
    assert_int_equal(stream_id_parse("1-99999999999999999999", 22, &ms, &seq), -1);
}

/* A numeric ts in seconds (below 10^11) is a producer mistake, not 1970. */
static void
test_ts_in_seconds_is_bad(void **state)
{
    (void)state;
    struct sla_event ev;
    const char *reason = NULL;
    struct ev_field fields[] = { { "type", 4, "opened", 6 },
                                 { "ticket", 6, "S", 1 },
                                 { "ts", 2, "1795000000", 10 } };
    assert_int_equal(event_parse(&ev, fields, 3, T0, T0, 5 * MIN, &reason), -1);
    assert_string_equal(reason, "bad ts");
    fields[2] = (struct ev_field){ "ts", 2, "100000000000", 12 };
    reason = NULL;
    int rc = event_parse(&ev, fields, 3, T0, T0, 5 * MIN, &reason);
    if (rc != 0)
        fprintf(stderr, "rejected: %s\n", reason);
    assert_int_equal(rc, 0);
    fields[2] = (struct ev_field){ "ts", 2, "2026-11-01T10:00:00Z", 20 };
    assert_int_equal(event_parse(&ev, fields, 3, T0, T0, 5 * MIN, &reason), 0);
}

/* A backdated ticket: K (its arrival) is after the 50% point, so that
 * warning is skipped; the 80% point still lies ahead and fires as arrival
 * passes it; replay does exactly the same. */
static void
test_warnings_behind_arrival_are_skipped(void **state)
{
    (void)state;
    for (int replay = 0; replay < 2; replay++) {
        struct fx *f = fx_new("0s");
        f->wall = replay ? T0 + HOUR : T0 + 40 * SEC;
        assert_int_equal(entry(f, T0 + 40 * SEC, "opened", "A", T0, "high"), 0);
        if (!replay)
            tick(f, T0 + 48 * SEC + 1);
        else
            assert_int_equal(entry(f, T0 + 48 * SEC + 1, "opened", "X", -1, NULL), 0);
        assert_int_equal(count(f, "A", NOTICE_WARNING), 1);
        assert_int_equal(find(f, "A", NOTICE_WARNING, METRIC_RESPONSE)->bp, 8000);
        fx_free(f);
    }
}

/* ---- randomized differential: live and replay decide alike ---------------- */

struct ent {
    uint64_t id_ms;
    char type[12];
    char ticket[16];
    int64_t ts;
    const char *priority;
};

static uint64_t rng_state;

static uint64_t
rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t
rnd_in(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* A random stream: tickets opened and worked by three kinds of producer,
 * each entry's ID a little after the previous one. */
static size_t
make_stream(struct ent *e, size_t max)
{
    static const char *const types[] = { "responded", "responded", "resolved", "paused",
                                         "resumed", "reopened", "updated", "closed",
                                         "deleted" };
    int64_t id = T0;
    size_t n = 0;
    int tickets = 0;
    while (n < max) {
        id += rnd_in(0, 9 * SEC);
        struct ent *x = &e[n++];
        x->id_ms = (uint64_t)id;
        bool open = tickets == 0 || rnd() % 4 == 0;
        snprintf(x->type, sizeof(x->type), "%s",
                 open ? "opened" : types[rnd() % (sizeof(types) / sizeof(types[0]))]);
        snprintf(x->ticket, sizeof(x->ticket), "t%d",
                 open ? tickets++ : (int)(rnd() % (uint64_t)tickets));
        x->priority = rnd() % 2 ? "high" : NULL;
        switch (rnd() % 4) {
        case 0: x->ts = -1; break;                                   /* no ts */
        case 1: x->ts = id - rnd_in(0, 10 * SEC); break;             /* late */
        case 2: x->ts = id + rnd_in(0, 2 * MIN); break;              /* fast */
        default: x->ts = id - rnd_in(0, 3 * HOUR); break;            /* backfill */
        }
    }
    return n;
}

static int
rec_cmp(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    int c = strcmp(x->ticket, y->ticket);
    if (c)
        return c;
    if (x->metric != y->metric)
        return x->metric - y->metric;
    if (x->cycle != y->cycle)
        return x->cycle - y->cycle;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    if (x->deadline != y->deadline)
        return x->deadline < y->deadline ? -1 : 1;
    return (int)x->bp - (int)y->bp;
}

static void
run(struct fx *f, const struct ent *e, size_t n, bool live, int64_t end)
{
    for (size_t i = 0; i < n; i++) {
        if (live) {
            /* The wall clock runs between entries, in uneven steps, up to
             * the next entry's arrival (never past it: live processing
             * does not decide while an entry that arrived earlier is
             * unread). */
            int64_t from = i ? (int64_t)e[i - 1].id_ms : T0;
            for (int64_t t = from; t < (int64_t)e[i].id_ms; t += rnd_in(1, 1500))
                tick(f, t);
            f->wall = (int64_t)e[i].id_ms;
        } else {
            f->wall = end; /* replayed long after */
        }
        (void)entry(f, e[i].id_ms, e[i].type, e[i].ticket, e[i].ts, e[i].priority);
    }
    tick(f, end);
}

static void
test_live_equals_replay_random(void **state)
{
    (void)state;
    static struct ent stream[600];
    int decided = 0;
    for (int round = 0; round < 40; round++) {
        rng_state = 0x9e3779b97f4a7c15ULL + (uint64_t)round * 7919;
        size_t n = make_stream(stream, sizeof(stream) / sizeof(stream[0]));
        const char *lateness = round % 3 == 0 ? "0s" : round % 3 == 1 ? "3s" : "30s";
        int64_t end = (int64_t)stream[n - 1].id_ms + HOUR;
        struct fx *live = fx_new(lateness), *replay = fx_new(lateness);
        run(live, stream, n, true, end);
        run(replay, stream, n, false, end);
        assert_int_equal(live->nrec, replay->nrec);
        qsort(live->rec, (size_t)live->nrec, sizeof(live->rec[0]), rec_cmp);
        qsort(replay->rec, (size_t)replay->nrec, sizeof(replay->rec[0]), rec_cmp);
        for (int i = 0; i < live->nrec; i++)
            assert_int_equal(rec_cmp(&live->rec[i], &replay->rec[i]), 0);
        assert_int_equal(live->met, replay->met);
        assert_int_equal(live->breached, replay->breached);
        assert_int_equal(core_late_events(live->core), core_late_events(replay->core));
        decided += (int)(live->met + live->breached);
        fx_free(live);
        fx_free(replay);
    }
    assert_true(decided > 1000); /* the streams did decide things */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_producer_breaches_nothing_early),
        cmocka_unit_test(test_answer_within_lateness_is_met),
        cmocka_unit_test(test_lateness_delays_the_decision),
        cmocka_unit_test(test_stop_stamped_late_or_ahead),
        cmocka_unit_test(test_id_ahead_moves_no_time),
        cmocka_unit_test(test_stream_ids_full_range),
        cmocka_unit_test(test_ts_in_seconds_is_bad),
        cmocka_unit_test(test_warnings_behind_arrival_are_skipped),
        cmocka_unit_test(test_live_equals_replay_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
