/* Unit tests for the compliance windows (compliance.c), compliance.objective
 * judged on them (objective.c through obj_read_compliance, as the daemon
 * does), the at-risk counts (atrisk.c), the core's deadline listener
 * feeding them, and the round a publish builds (report.c, without Redis).
 * Every instant is injected. Named objectives: test_objective.c. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slawatch/atrisk.h"
#include "slawatch/compliance.h"
#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/objective.h"
#include "slawatch/report.h"
#include "slawatch/state.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define T0 (20775 * DAY) /* a midnight UTC in 2026: a bucket boundary of 1h */
#define W1H 0            /* window indexes in the config below */
#define W7D 1
#define R METRIC_RESPONSE
#define S METRIC_RESOLUTION

static const char *yaml =
    "tiers:\n"
    "  fast: { response: 10m, resolution: 1h }\n"
    "  slow: { response: 4h }\n"
    "compliance:\n"
    "  windows: [1h, 7d]\n"
    "  by: [queue]\n"
    "  max_values: 2\n"
    "  objective: 0.9\n";

static struct config *
load(const char *text)
{
    struct config *cfg = cfg_load_string("test.yaml", text, strlen(text), stderr);
    assert_non_null(cfg);
    return cfg;
}

struct fx {
    struct config *cfg;
    struct compliance *cmp;
    struct objectives *obj;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->cfg = load(yaml);
    f->cmp = cmp_new(f->cfg, T0);
    f->obj = obj_new(f->cfg);
    assert_non_null(f->cmp);
    assert_non_null(f->obj);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    cmp_free(f->cmp);
    obj_free(f->obj);
    cfg_free(f->cfg);
    free(f);
    return 0;
}

static const char *const *
q(const char *queue)
{
    static const char *attrs[ATTR_COUNT];
    memset(attrs, 0, sizeof(attrs));
    attrs[ATTR_QUEUE] = queue;
    return attrs;
}

static void
record(struct compliance *c, int tier, int metric, bool met, int64_t at,
       const char *queue)
{
    assert_int_equal(cmp_record(c, tier, metric, met, at, q(queue)), 0);
}

static uint64_t
met_of(const struct compliance *c, int tier, int metric, int w)
{
    return cmp_counts(c, tier, metric, w).met;
}

static uint64_t
breached_of(const struct compliance *c, int tier, int metric, int w)
{
    return cmp_counts(c, tier, metric, w).breached;
}

/* ---- windows ------------------------------------------------------------ */

/* 1h window: buckets of 1 min. An outcome in the bucket starting at T0
 * stays counted while now is within the 60 following buckets, i.e. up to
 * T0 + 61 min - 1 ms, and is gone from T0 + 61 min on. */
static void
test_window_bucket_boundaries(void **state)
{
    struct fx *f = *state;
    record(f->cmp, 0, R, true, T0, "a");           /* first ms of a bucket */
    record(f->cmp, 0, R, false, T0 + MIN - 1, "a"); /* last ms of the same */
    record(f->cmp, 0, R, true, T0 + MIN, "a");      /* first of the next */

    cmp_advance(f->cmp, T0 + HOUR);
    assert_int_equal(met_of(f->cmp, 0, R, W1H), 2);
    assert_int_equal(breached_of(f->cmp, 0, R, W1H), 1);
    cmp_advance(f->cmp, T0 + 61 * MIN - 1);
    assert_int_equal(met_of(f->cmp, 0, R, W1H), 2);
    assert_int_equal(breached_of(f->cmp, 0, R, W1H), 1);
    /* The bucket of T0 leaves exactly at T0 + 61 min: both outcomes of it
     * go, the one of the next bucket stays one more minute. */
    cmp_advance(f->cmp, T0 + 61 * MIN);
    assert_int_equal(met_of(f->cmp, 0, R, W1H), 1);
    assert_int_equal(breached_of(f->cmp, 0, R, W1H), 0);
    cmp_advance(f->cmp, T0 + 62 * MIN - 1);
    assert_int_equal(met_of(f->cmp, 0, R, W1H), 1);
    cmp_advance(f->cmp, T0 + 62 * MIN);
    assert_int_equal(met_of(f->cmp, 0, R, W1H), 0);
    /* The 7d window still holds all three, and `all` mirrors the tier. */
    assert_int_equal(met_of(f->cmp, 0, R, W7D), 2);
    assert_int_equal(breached_of(f->cmp, 0, R, W7D), 1);
    assert_int_equal(met_of(f->cmp, CMP_ALL, R, W7D), 2);
    assert_int_equal(met_of(f->cmp, 1, R, W7D), 0);
    assert_int_equal(met_of(f->cmp, 0, S, W7D), 0);
}

/* Outcomes older than the window are ignored; one in the future moves the
 * window forward; time never goes backwards; a long jump clears all. */
static void
test_window_expiry(void **state)
{
    struct fx *f = *state;
    cmp_advance(f->cmp, T0 + 2 * HOUR);
    record(f->cmp, 0, R, true, T0 + 2 * HOUR - 61 * MIN, "a"); /* too old for 1h */
    record(f->cmp, 0, R, true, T0 + 2 * HOUR - 60 * MIN, "a"); /* oldest bucket kept */
    assert_int_equal(met_of(f->cmp, 0, R, W1H), 1);
    assert_int_equal(met_of(f->cmp, 0, R, W7D), 2);

    record(f->cmp, 0, R, false, T0 + 3 * HOUR, "a"); /* ahead of now */
    /* The window moved to T0 + 3h: the outcome of T0 + 1h is out. */
    assert_int_equal(met_of(f->cmp, 0, R, W1H), 0);
    assert_int_equal(breached_of(f->cmp, 0, R, W1H), 1);
    cmp_advance(f->cmp, T0); /* backwards: no effect */
    assert_int_equal(breached_of(f->cmp, 0, R, W1H), 1);

    /* 7d has buckets of 2h48m; one week later only the newest bucket
     * (and nothing before it) can remain. */
    cmp_advance(f->cmp, T0 + 3 * HOUR + 7 * DAY + 3 * HOUR);
    assert_int_equal(met_of(f->cmp, 0, R, W7D) + breached_of(f->cmp, 0, R, W7D), 0);
    assert_int_equal(met_of(f->cmp, CMP_ALL, R, W7D), 0);
    /* A jump far beyond every window clears everything at once. */
    record(f->cmp, 1, R, true, T0 + 30 * DAY, NULL);
    cmp_advance(f->cmp, T0 + 300 * DAY);
    assert_int_equal(met_of(f->cmp, 1, R, W7D), 0);
    assert_int_equal(met_of(f->cmp, CMP_ALL, R, W7D), 0);
}

static void
test_ratio_mixed_outcomes(void **state)
{
    struct fx *f = *state;
    char buf[CMP_RATIO_BUFLEN];
    for (int i = 0; i < 9731; i++)
        record(f->cmp, 0, R, true, T0 + i, "a");
    for (int i = 0; i < 269; i++)
        record(f->cmp, 1, R, false, T0 + i, "b");
    cmp_advance(f->cmp, T0 + 10 * MIN);
    struct cmp_counts all = cmp_counts(f->cmp, CMP_ALL, R, W1H);
    assert_int_equal(all.met, 9731);
    assert_int_equal(all.breached, 269);
    assert_string_equal(cmp_format_ratio(all.met, all.breached, buf), "0.9731");
    assert_string_equal(cmp_format_ratio(9731, 0, buf), "1");
    assert_string_equal(cmp_format_ratio(0, 5, buf), "0");
    assert_string_equal(cmp_format_ratio(2, 1, buf), "0.666666"); /* truncated */
    assert_string_equal(cmp_format_ratio(3, 1, buf), "0.75");
    assert_string_equal(cmp_format_ratio(999999999, 1, buf), "0.999999");
    assert_int_equal(cmp_ratio_micro(1, 1), 500000);
    assert_int_equal(cmp_ratio_micro(0, 0), 0);
    struct cmp_counts fast = cmp_counts(f->cmp, 0, R, W1H);
    assert_string_equal(cmp_format_ratio(fast.met, fast.breached, buf), "1");
}

struct seen {
    int n;
    struct {
        int tier, metric, attr;
        char value[64];
        struct cmp_counts counts[CFG_MAX_WINDOWS];
    } s[64];
};

static void
collect(void *arg, const struct cmp_series *s)
{
    struct seen *sn = arg;
    assert_true(sn->n < 64);
    sn->s[sn->n].tier = s->tier;
    sn->s[sn->n].metric = s->metric;
    sn->s[sn->n].attr = s->attr;
    snprintf(sn->s[sn->n].value, sizeof(sn->s[0].value), "%s", s->value ? s->value : "");
    memcpy(sn->s[sn->n].counts, s->counts, 2 * sizeof(s->counts[0]));
    sn->n++;
}

static int
find(const struct seen *sn, int tier, int metric, int attr, const char *value)
{
    for (int i = 0; i < sn->n; i++)
        if (sn->s[i].tier == tier && sn->s[i].metric == metric && sn->s[i].attr == attr &&
            strcmp(sn->s[i].value, value ? value : "") == 0)
            return i;
    return -1;
}

/* max_values 2: the first two values keep their own series, the rest fold
 * into _other; a ticket without a queue counts as _none (a value like
 * any other); values expire with their outcomes and free their place. */
static void
test_breakdown_capping(void **state)
{
    struct fx *f = *state;
    struct seen sn = { 0 };
    record(f->cmp, 0, R, true, T0, "billing");
    record(f->cmp, 0, R, false, T0, "billing");
    record(f->cmp, 1, R, true, T0, "sales");
    record(f->cmp, 0, R, false, T0, "support");  /* third value: _other */
    record(f->cmp, 0, R, true, T0, NULL);        /* _none: also past the cap */
    record(f->cmp, 0, R, true, T0, CMP_OTHER);   /* a literal _other merges */
    cmp_advance(f->cmp, T0 + MIN);
    cmp_foreach(f->cmp, collect, &sn);

    /* Tier series first: fast, slow, all for response; fast, all for
     * resolution (slow has none). */
    assert_int_equal(find(&sn, 0, R, -1, NULL), 0);
    assert_int_equal(find(&sn, 1, R, -1, NULL), 1);
    assert_int_equal(find(&sn, CMP_ALL, R, -1, NULL), 2);
    assert_int_equal(find(&sn, 0, S, -1, NULL), 3);
    assert_int_equal(find(&sn, CMP_ALL, S, -1, NULL), 4);
    assert_int_equal(find(&sn, 1, S, -1, NULL), -1);

    int i = find(&sn, 0, R, ATTR_QUEUE, "billing");
    assert_true(i > 0);
    assert_int_equal(sn.s[i].counts[W1H].met, 1);
    assert_int_equal(sn.s[i].counts[W1H].breached, 1);
    i = find(&sn, CMP_ALL, R, ATTR_QUEUE, "sales");
    assert_int_equal(sn.s[i].counts[W1H].met, 1);
    assert_int_equal(find(&sn, 0, R, ATTR_QUEUE, "sales"), -1); /* no outcome */
    assert_int_equal(find(&sn, 0, R, ATTR_QUEUE, "support"), -1);
    assert_int_equal(find(&sn, 0, R, ATTR_QUEUE, CMP_NONE), -1);
    i = find(&sn, 0, R, ATTR_QUEUE, CMP_OTHER);
    assert_int_equal(sn.s[i].counts[W1H].met, 2);
    assert_int_equal(sn.s[i].counts[W1H].breached, 1);
    i = find(&sn, CMP_ALL, R, ATTR_QUEUE, CMP_OTHER);
    assert_int_equal(sn.s[i].counts[W7D].met, 2);

    /* A week later every value has expired; new values get places. */
    cmp_advance(f->cmp, T0 + 8 * DAY);
    memset(&sn, 0, sizeof(sn));
    cmp_foreach(f->cmp, collect, &sn);
    assert_int_equal(sn.n, 5); /* only the tier series remain */
    record(f->cmp, 0, R, true, T0 + 8 * DAY, "support");
    record(f->cmp, 0, R, true, T0 + 8 * DAY, NULL);
    record(f->cmp, 0, R, true, T0 + 8 * DAY, "billing");
    memset(&sn, 0, sizeof(sn));
    cmp_foreach(f->cmp, collect, &sn);
    assert_true(find(&sn, 0, R, ATTR_QUEUE, "support") >= 0);
    assert_true(find(&sn, 0, R, ATTR_QUEUE, CMP_NONE) >= 0);
    assert_true(find(&sn, 0, R, ATTR_QUEUE, CMP_OTHER) >= 0);
    assert_int_equal(find(&sn, 0, R, ATTR_QUEUE, "billing"), -1);
}

/* Many values cycling through a small cap: the value table stays
 * bounded and the totals always add up. */
static void
test_breakdown_churn(void **state)
{
    struct fx *f = *state;
    char name[32];
    for (int round = 0; round < 50; round++) {
        int64_t at = T0 + round * 2 * HOUR; /* each round: a fresh 1h window */
        for (int v = 0; v < 20; v++) {
            snprintf(name, sizeof(name), "q%d-%d", round, v);
            record(f->cmp, 0, R, v % 2 == 0, at, name);
        }
        cmp_advance(f->cmp, at + 1);
        struct seen sn = { 0 };
        cmp_foreach(f->cmp, collect, &sn);
        uint64_t met = 0, breached = 0;
        for (int i = 0; i < sn.n; i++)
            if (sn.s[i].tier == 0 && sn.s[i].metric == R && sn.s[i].attr == ATTR_QUEUE) {
                met += sn.s[i].counts[W1H].met;
                breached += sn.s[i].counts[W1H].breached;
            }
        assert_int_equal(met, 10);
        assert_int_equal(breached, 10);
    }
    assert_true(cmp_memory(f->cmp) < 2 * 1024 * 1024);
}

/* ---- response-time distribution ----------------------------------------- */

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t
exact_rank(const int64_t *sorted, size_t n, unsigned pct)
{
    size_t rank = (n * pct + 99) / 100;
    return sorted[(rank ? rank : 1) - 1];
}

static void
assert_close(int64_t got, int64_t want)
{
    int64_t err = got > want ? got - want : want - got;
    if (err > want / 32 + 1)
        fail_msg("quantile %lld, exact %lld: off by more than 1/32", (long long)got,
                 (long long)want);
}

/* A known, skewed distribution (a deterministic log-uniform spread from
 * 3 ms to ~2 days) against exact nearest-rank quantiles and the exact
 * mean. */
static void
test_quantiles_known_distribution(void **state)
{
    struct fx *f = *state;
    enum { N = 20000 };
    static int64_t v[N];
    uint64_t sum = 0, x = 88172645463325252ULL;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double u = (double)(x >> 11) / 9007199254740992.0;
        v[i] = (int64_t)(3.0 * __builtin_pow(2.0, 26.0 * u)); /* 3 ms .. 2.3 days */
        sum += (uint64_t)v[i];
        assert_int_equal(cmp_record_response_time(f->cmp, i % 2, T0 + i, v[i]), 0);
    }
    cmp_advance(f->cmp, T0 + N);
    struct cmp_latency l;
    assert_true(cmp_latency(f->cmp, CMP_ALL, W1H, &l));
    qsort(v, N, sizeof(v[0]), cmp_i64);
    assert_int_equal(l.count, N);
    assert_int_equal(l.mean_ms, (int64_t)((sum + N / 2) / N));
    assert_close(l.p50_ms, exact_rank(v, N, 50));
    assert_close(l.p90_ms, exact_rank(v, N, 90));
    assert_close(l.p99_ms, exact_rank(v, N, 99));

    /* Small exact values are reported exactly. */
    struct compliance *c = cmp_new(f->cfg, T0);
    for (int i = 1; i <= 10; i++)
        assert_int_equal(cmp_record_response_time(c, 1, T0, i), 0);
    assert_true(cmp_latency(c, 1, W7D, &l));
    assert_int_equal(l.p50_ms, 5);
    assert_int_equal(l.p90_ms, 9);
    assert_int_equal(l.p99_ms, 10);
    assert_int_equal(l.mean_ms, 6); /* 5.5 rounded */
    assert_false(cmp_latency(c, 0, W7D, &l));
    cmp_advance(c, T0 + 2 * HOUR);
    assert_false(cmp_latency(c, 1, W1H, &l)); /* expired */
    assert_true(cmp_latency(c, 1, W7D, &l));
    cmp_free(c);
}

/* ---- objective ---------------------------------------------------------- */

struct changes {
    int n;
    struct obj_change c[64];
};

static void
on_change(void *arg, const struct obj_change *ch)
{
    struct changes *cs = arg;
    assert_true(cs->n < 64);
    cs->c[cs->n++] = *ch;
}

/* compliance.objective's state of a series, and its violation count. */
static bool
violated(const struct objectives *o, int tier, int metric, int w)
{
    return obj_violated(o, OBJ_SHORTHAND, tier, metric, w, NULL);
}

static uint32_t
episode(const struct objectives *o, int tier, int metric, int w)
{
    uint32_t ep = 99;
    (void)obj_violated(o, OBJ_SHORTHAND, tier, metric, w, &ep);
    return ep;
}

static void
count_legacy(void *arg, int tier, int metric, int w, bool v, uint8_t streak, uint32_t ep)
{
    (void)tier, (void)metric, (void)w, (void)v, (void)streak, (void)ep;
    (*(int *)arg)++;
}

static void
judge(struct compliance *c, struct objectives *o, int64_t at, struct changes *cs)
{
    cmp_advance(c, at);
    obj_eval(o, at, obj_read_compliance, c, on_change, cs);
}

/* Sets fast/response in the 1h window to met/breached exactly: one bucket
 * per evaluation, two hours apart so nothing older remains. */
static int64_t
eval_at(struct compliance *c, struct objectives *o, int round, int met, int breached,
        struct changes *cs)
{
    int64_t at = T0 + round * 2 * HOUR;
    for (int i = 0; i < met; i++)
        record(c, 0, R, true, at, "a");
    for (int i = 0; i < breached; i++)
        record(c, 0, R, false, at, "a");
    cs->n = 0;
    judge(c, o, at, cs);
    return at;
}

static int
changes_for(const struct changes *cs, int tier, int w)
{
    int n = 0;
    for (int i = 0; i < cs->n; i++)
        n += cs->c[i].tier == tier && cs->c[i].metric == R && cs->c[i].window == w;
    return n;
}

static void
test_objective_hysteresis(void **state)
{
    struct fx *f = *state;
    struct changes cs;
    int r = 0;
    /* 0.89 once, 0.95, 0.89 once...: a ratio that dips at single
     * evaluations never fires. */
    for (int i = 0; i < 4; i++) {
        eval_at(f->cmp, f->obj, r++, 89, 11, &cs);
        assert_int_equal(changes_for(&cs, 0, W1H), 0);
        eval_at(f->cmp, f->obj, r++, 95, 5, &cs);
        assert_int_equal(changes_for(&cs, 0, W1H), 0);
    }
    /* Exactly at the objective is not below it. */
    eval_at(f->cmp, f->obj, r++, 9, 1, &cs);
    eval_at(f->cmp, f->obj, r++, 9, 1, &cs);
    assert_int_equal(changes_for(&cs, 0, W1H), 0);
    /* Two evaluations below in a row: violated, once. */
    eval_at(f->cmp, f->obj, r++, 89, 11, &cs);
    assert_int_equal(changes_for(&cs, 0, W1H), 0);
    int64_t at = eval_at(f->cmp, f->obj, r++, 1, 1, &cs);
    assert_int_equal(changes_for(&cs, 0, W1H), 1);
    assert_true(cs.c[0].violated);
    assert_int_equal(cs.c[0].objective, OBJ_SHORTHAND);
    assert_null(cs.c[0].name);
    assert_int_equal(cs.c[0].kpi, -1);
    assert_false(cs.c[0].max);
    assert_int_equal(cs.c[0].tier, 0);
    assert_string_equal(cs.c[0].tier_name, "fast");
    assert_string_equal(cs.c[0].window_name, "1h");
    assert_int_equal(cs.c[0].value_micro, 500000);
    assert_true(cs.c[0].counts);
    assert_int_equal(cs.c[0].met, 1);
    assert_int_equal(cs.c[0].breached, 1);
    assert_int_equal(cs.c[0].at_ms, at);
    assert_int_equal(changes_for(&cs, CMP_ALL, W1H), 1); /* all fires too */
    assert_true(violated(f->obj, 0, R, W1H));
    eval_at(f->cmp, f->obj, r++, 1, 1, &cs);
    assert_int_equal(changes_for(&cs, 0, W1H), 0); /* no repeat */
    /* Back above for two evaluations, then a dip: still violated. An
     * empty window changes nothing either way. */
    eval_at(f->cmp, f->obj, r++, 10, 0, &cs);
    eval_at(f->cmp, f->obj, r++, 10, 0, &cs);
    eval_at(f->cmp, f->obj, r++, 0, 0, &cs);
    eval_at(f->cmp, f->obj, r++, 1, 9, &cs);
    assert_int_equal(changes_for(&cs, 0, W1H), 0);
    assert_true(violated(f->obj, 0, R, W1H));
    /* Three at or above in a row: recovered, once. */
    eval_at(f->cmp, f->obj, r++, 9, 1, &cs);
    eval_at(f->cmp, f->obj, r++, 0, 0, &cs); /* empty: resets the streak */
    eval_at(f->cmp, f->obj, r++, 9, 1, &cs);
    eval_at(f->cmp, f->obj, r++, 95, 5, &cs);
    assert_int_equal(changes_for(&cs, 0, W1H), 0);
    eval_at(f->cmp, f->obj, r++, 100, 0, &cs);
    assert_int_equal(changes_for(&cs, 0, W1H), 1);
    assert_false(cs.c[0].violated);
    assert_int_equal(cs.c[0].value_micro, CMP_RATIO_ONE);
    assert_false(violated(f->obj, 0, R, W1H));
    eval_at(f->cmp, f->obj, r++, 100, 0, &cs);
    assert_int_equal(changes_for(&cs, 0, W1H), 0);
}

/* Each violation of a series has a number (its episode) that recoveries
 * keep and checkpoints carry: the objective section now, and the
 * compliance section of a checkpoint written before it (format 1 without
 * numbers, format 2 with them), through the legacy hook. */
static void
test_objective_episodes(void **state)
{
    struct fx *f = *state;
    struct changes cs;
    int r = 0;
    assert_int_equal(episode(f->obj, 0, R, W1H), 0);
    eval_at(f->cmp, f->obj, r++, 1, 1, &cs);
    eval_at(f->cmp, f->obj, r++, 1, 1, &cs);
    assert_int_equal(changes_for(&cs, 0, W1H), 1);
    assert_true(cs.c[0].violated);
    assert_int_equal(cs.c[0].episode, 1);
    assert_int_equal(cs.c[0].threshold_micro, 900000);
    assert_true(cs.c[0].threshold == 0.9);
    assert_int_equal(episode(f->obj, 0, R, W1H), 1);
    assert_int_equal(episode(f->obj, CMP_ALL, R, W1H), 1);
    for (int i = 0; i < 3; i++)
        eval_at(f->cmp, f->obj, r++, 10, 0, &cs);
    assert_int_equal(changes_for(&cs, 0, W1H), 1);
    assert_false(cs.c[0].violated);
    assert_int_equal(cs.c[0].episode, 1); /* the violation that ended */
    assert_int_equal(episode(f->obj, 0, R, W1H), 1);
    eval_at(f->cmp, f->obj, r++, 0, 3, &cs);
    eval_at(f->cmp, f->obj, r++, 0, 3, &cs);
    assert_int_equal(changes_for(&cs, 0, W1H), 1);
    assert_int_equal(cs.c[0].episode, 2);
    /* Unknown series. */
    assert_int_equal(episode(f->obj, 7, R, W1H), 0);
    assert_int_equal(episode(f->obj, 0, R, 9), 0);
    assert_int_equal(episode(f->obj, 1, S, W1H), 0); /* slow has no resolution */

    /* A restart keeps the number, and the next violation is the third. The
     * compliance section no longer holds objective states. */
    struct wire_buf b, bo;
    wire_init(&b);
    wire_init(&bo);
    assert_int_equal(cmp_encode(f->cmp, &b), 0);
    assert_int_equal(obj_encode(f->obj, &bo), 0);
    int64_t now = T0 + r * 2 * HOUR;
    struct compliance *c = cmp_new(f->cfg, now);
    struct objectives *o = obj_new(f->cfg);
    cmp_set_legacy_objective_hook(c, obj_restore_legacy, o);
    assert_int_equal(cmp_decode(c, b.data, b.len), 0);
    assert_false(violated(o, 0, R, W1H)); /* nothing came from there */
    assert_int_equal(obj_decode(o, bo.data, bo.len), 0);
    assert_true(violated(o, 0, R, W1H));
    assert_int_equal(episode(o, 0, R, W1H), 2);
    for (int i = 0; i < 3; i++)
        eval_at(c, o, r++, 10, 0, &cs);
    assert_int_equal(cs.c[0].episode, 2);
    eval_at(c, o, r++, 0, 1, &cs);
    eval_at(c, o, r++, 0, 1, &cs);
    assert_int_equal(changes_for(&cs, 0, W1H), 1);
    assert_int_equal(cs.c[0].episode, 3);
    cmp_free(c);
    obj_free(o);
    wire_free(&b);
    wire_free(&bo);

    /* Format 1: 'O' records without the count. A violated series reads as
     * its first violation; one only on a streak as never violated, its
     * streak kept. Format 2: the count as written. */
    for (uint32_t format = 1; format <= 2; format++) {
        wire_init(&b);
        wire_put_u32(&b, format);
        wire_put_u32(&b, 2);
        wire_put_u64(&b, (uint64_t)HOUR);
        wire_put_u64(&b, (uint64_t)(T0 / (HOUR / 60)));
        wire_put_u64(&b, (uint64_t)(7 * DAY));
        wire_put_u64(&b, (uint64_t)(T0 / (7 * DAY / 60)));
        static const unsigned char o1[] = { 'O', 4, 0, 'f', 'a', 's', 't', R, W1H, 1, 0 };
        static const unsigned char o2[] = { 'O', 3, 0, 'a', 'l', 'l', R, W7D, 0, 1 };
        wire_put(&b, o1, sizeof(o1));
        if (format == 2)
            wire_put_u32(&b, 4);
        wire_put(&b, o2, sizeof(o2));
        if (format == 2)
            wire_put_u32(&b, 3);
        c = cmp_new(f->cfg, T0);
        o = obj_new(f->cfg);
        cmp_set_legacy_objective_hook(c, obj_restore_legacy, o);
        assert_int_equal(cmp_decode(c, b.data, b.len), 0);
        assert_true(violated(o, 0, R, W1H));
        assert_int_equal(episode(o, 0, R, W1H), format == 1 ? 1 : 4);
        assert_false(violated(o, CMP_ALL, R, W7D));
        assert_int_equal(episode(o, CMP_ALL, R, W7D), format == 1 ? 0 : 3);
        /* The streak came along: one more evaluation below fires. */
        record(c, 1, R, false, T0, "a");
        cs.n = 0;
        judge(c, o, T0, &cs);
        assert_int_equal(changes_for(&cs, CMP_ALL, W7D), 1);
        assert_int_equal(cs.c[cs.n - 1].episode, format == 1 ? 1 : 4);
        /* Written back, the states are in the objective section only. */
        struct wire_buf again;
        int legacy = 0;
        wire_init(&again);
        assert_int_equal(cmp_encode(c, &again), 0);
        cmp_free(c);
        c = cmp_new(f->cfg, T0);
        cmp_set_legacy_objective_hook(c, count_legacy, &legacy);
        assert_int_equal(cmp_decode(c, again.data, again.len), 0);
        assert_int_equal(legacy, 0);
        assert_int_equal(breached_of(c, 1, R, W7D), 1);
        wire_free(&again);
        cmp_free(c);
        obj_free(o);
        /* Without a hook the states are dropped, the section still read. */
        c = cmp_new(f->cfg, T0);
        assert_int_equal(cmp_decode(c, b.data, b.len), 0);
        cmp_free(c);
        /* A format from the future is refused. */
        b.data[0] = 4;
        c = cmp_new(f->cfg, T0);
        assert_int_equal(cmp_decode(c, b.data, b.len), -1);
        cmp_free(c);
        wire_free(&b);
    }
}

/* ---- checkpoint and reload ---------------------------------------------- */

static void
test_encode_decode_roundtrip(void **state)
{
    struct fx *f = *state;
    struct wire_buf b;
    struct changes cs = { 0 };
    for (int i = 0; i < 30; i++)
        record(f->cmp, i % 2, R, i % 3 != 0, T0 + i * MIN, i % 4 ? "billing" : "sales");
    record(f->cmp, 0, S, false, T0, "x");  /* _other */
    assert_int_equal(cmp_record_response_time(f->cmp, 0, T0 + 5 * MIN, 1234), 0);
    judge(f->cmp, f->obj, T0 + 30 * MIN, &cs);
    judge(f->cmp, f->obj, T0 + 30 * MIN, &cs);

    struct wire_buf bo;
    wire_init(&b);
    wire_init(&bo);
    assert_int_equal(cmp_encode(f->cmp, &b), 0);
    assert_int_equal(obj_encode(f->obj, &bo), 0);
    /* A restart 10 minutes later. */
    struct compliance *c = cmp_new(f->cfg, T0 + 40 * MIN);
    struct objectives *o = obj_new(f->cfg);
    assert_int_equal(cmp_decode(c, b.data, b.len), 0);
    assert_int_equal(obj_decode(o, bo.data, bo.len), 0);
    wire_free(&bo);
    struct seen a = { 0 }, z = { 0 };
    cmp_advance(f->cmp, T0 + 40 * MIN);
    cmp_advance(c, T0 + 40 * MIN);
    cmp_foreach(f->cmp, collect, &a);
    cmp_foreach(c, collect, &z);
    assert_int_equal(a.n, z.n);
    for (int i = 0; i < a.n; i++) {
        int j = find(&z, a.s[i].tier, a.s[i].metric, a.s[i].attr, a.s[i].value);
        assert_true(j >= 0);
        assert_memory_equal(a.s[i].counts, z.s[j].counts, 2 * sizeof(a.s[i].counts[0]));
    }
    struct cmp_latency l;
    assert_true(cmp_latency(c, 0, W1H, &l));
    assert_int_equal(l.mean_ms, 1234);
    assert_true(violated(o, CMP_ALL, S, W1H));
    assert_true(violated(o, 1, R, W7D)); /* slow: 10 of 15 */
    for (int t = CMP_ALL; t < 2; t++)
        for (int m = 0; m < METRIC_COUNT; m++)
            for (int w = 0; w < 2; w++) {
                assert_int_equal(violated(o, t, m, w), violated(f->obj, t, m, w));
                assert_int_equal(episode(o, t, m, w), episode(f->obj, t, m, w));
            }
    obj_free(o);
    /* An hour later the 1h buckets have expired in both alike. */
    cmp_advance(f->cmp, T0 + 95 * MIN);
    cmp_advance(c, T0 + 95 * MIN);
    for (int w = 0; w < 2; w++)
        assert_memory_equal(&(struct cmp_counts[]){ cmp_counts(f->cmp, CMP_ALL, R, w) },
                            &(struct cmp_counts[]){ cmp_counts(c, CMP_ALL, R, w) },
                            sizeof(struct cmp_counts));
    cmp_free(c);

    /* Damaged sections are refused, not crashed on. */
    for (size_t cut = 0; cut < b.len; cut += 7) {
        c = cmp_new(f->cfg, T0);
        if (cmp_decode(c, b.data, cut) == 0)
            assert_true(cut == 0 || cut >= 8); /* only whole records pass */
        cmp_free(c);
    }
    c = cmp_new(f->cfg, T0);
    b.data[8] ^= 0x55; /* the first window's length: no longer matches */
    assert_int_equal(cmp_decode(c, b.data, b.len), 0);
    assert_int_equal(met_of(c, CMP_ALL, R, W1H), 0); /* its data is dropped */
    assert_true(met_of(c, CMP_ALL, R, W7D) > 0);
    cmp_free(c);
    wire_free(&b);
}

/* A section written before the codec moved to wire.c (commit 60745a4), with
 * the config above: outcomes at T0, T0 + 1m, T0 + 2m (fast breached, slow
 * met, fast met; queues billing, sales, x: x went to _other), response
 * times 1234 ms at T0 + 5m, two evaluations at T0 + 10m. Format 2, as
 * every version before v2's KPIs wrote it: it must still decode, its
 * objective states through the legacy hook, and encode to the same records
 * in format 3 but for those states (tests/unit/test_kpi.c pins a section
 * of format 3 with KPIs and every metric). */
static const unsigned char golden_compliance[755] = {
    0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x80, 0xee, 0x36, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x6a, 0x7b, 0xc8, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x84, 0x0c, 0x24, 0x00, 0x00, 0x00, 0x00, 0x97, 0xb7, 0x02, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x52, 0x04, 0x00, 0x66, 0x61, 0x73, 0x74, 0x00,
    0xff, 0x00, 0x02, 0x08, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x0a, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x4f, 0x04, 0x00,
    0x66, 0x61, 0x73, 0x74, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x52, 0x04, 0x00, 0x66, 0x61, 0x73, 0x74, 0x00, 0xff, 0x01, 0x01, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x4f, 0x04, 0x00, 0x66,
    0x61, 0x73, 0x74, 0x00, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x52,
    0x04, 0x00, 0x73, 0x6c, 0x6f, 0x77, 0x00, 0xff, 0x00, 0x01, 0x09, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x52, 0x04, 0x00, 0x73, 0x6c,
    0x6f, 0x77, 0x00, 0xff, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x52, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x00, 0xff, 0x00,
    0x03, 0x08, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x4f, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x52, 0x03, 0x00, 0x61, 0x6c, 0x6c,
    0x00, 0xff, 0x01, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x4f, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x00, 0x01, 0x01, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x52, 0x04, 0x00, 0x66, 0x61, 0x73, 0x74, 0x00, 0x02,
    0x07, 0x00, 0x62, 0x69, 0x6c, 0x6c, 0x69, 0x6e, 0x67, 0x00, 0x01, 0x0a,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x52, 0x04, 0x00, 0x66,
    0x61, 0x73, 0x74, 0x00, 0x02, 0x07, 0x00, 0x62, 0x69, 0x6c, 0x6c, 0x69,
    0x6e, 0x67, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x52, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x00, 0x02, 0x07, 0x00, 0x62,
    0x69, 0x6c, 0x6c, 0x69, 0x6e, 0x67, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x52, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x00,
    0x02, 0x07, 0x00, 0x62, 0x69, 0x6c, 0x6c, 0x69, 0x6e, 0x67, 0x01, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x52, 0x04, 0x00,
    0x73, 0x6c, 0x6f, 0x77, 0x00, 0x02, 0x05, 0x00, 0x73, 0x61, 0x6c, 0x65,
    0x73, 0x00, 0x01, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x52, 0x04, 0x00, 0x73, 0x6c, 0x6f, 0x77, 0x00, 0x02, 0x05, 0x00, 0x73,
    0x61, 0x6c, 0x65, 0x73, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x52, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x00, 0x02, 0x05,
    0x00, 0x73, 0x61, 0x6c, 0x65, 0x73, 0x00, 0x01, 0x09, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x52, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x00,
    0x02, 0x05, 0x00, 0x73, 0x61, 0x6c, 0x65, 0x73, 0x01, 0x01, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x52, 0x04, 0x00, 0x66, 0x61,
    0x73, 0x74, 0x00, 0x02, 0x06, 0x00, 0x5f, 0x6f, 0x74, 0x68, 0x65, 0x72,
    0x00, 0x01, 0x08, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x52,
    0x04, 0x00, 0x66, 0x61, 0x73, 0x74, 0x00, 0x02, 0x06, 0x00, 0x5f, 0x6f,
    0x74, 0x68, 0x65, 0x72, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x52, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x00, 0x02, 0x06,
    0x00, 0x5f, 0x6f, 0x74, 0x68, 0x65, 0x72, 0x00, 0x01, 0x08, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x52, 0x03, 0x00, 0x61, 0x6c, 0x6c,
    0x00, 0x02, 0x06, 0x00, 0x5f, 0x6f, 0x74, 0x68, 0x65, 0x72, 0x01, 0x01,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4c, 0x04, 0x00,
    0x66, 0x61, 0x73, 0x74, 0x00, 0x01, 0x05, 0x01, 0x00, 0x00, 0x00, 0xd2,
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x73, 0x00, 0x01, 0x00, 0x00, 0x00, 0x4c, 0x04, 0x00, 0x66, 0x61,
    0x73, 0x74, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd2, 0x04, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xd2, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x73,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x4c, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x00,
    0x01, 0x05, 0x01, 0x00, 0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd2, 0x04,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x73, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x4c, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x01, 0x01, 0x00, 0x01,
    0x00, 0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd2,
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x73, 0x00, 0x01, 0x00, 0x00, 0x00,
};

/* The golden section as cmp_encode writes the same data now: without its
 * 'O' records (compliance.objective's states, which objective.c keeps in
 * its own section) and with each 'L' record (response times) an 'E' one,
 * the metric (response) after its tier. Returns the length; the format
 * number is left for the caller. */
static size_t
rewrite_golden(const unsigned char *in, size_t len, unsigned char *out)
{
    size_t p = 8 + 16 * (size_t)in[4], o = p;
#define U16(at) ((size_t)in[at] | (size_t)in[(at) + 1] << 8)
    memcpy(out, in, p);
    while (p < len) {
        size_t start = p;
        char type = (char)in[p++];
        size_t tier_end = p + 2 + U16(p);
        p = tier_end;
        if (type == 'R') {
            bool value = in[p + 1] != 0xff;
            p += 2;
            if (value)
                p += 2 + U16(p);
            p += 2 + 9 * (size_t)in[p + 1];
        } else if (type == 'L') {
            size_t n = in[p + 1];
            p += 2;
            for (size_t i = 0; i < n; i++) {
                p += 1 + 4 + 8 + 8 + 8;
                p += 2 + 6 * U16(p);
            }
            out[o++] = 'E';
            memcpy(out + o, in + start + 1, tier_end - start - 1);
            o += tier_end - start - 1;
            out[o++] = (unsigned char)R;
            memcpy(out + o, in + tier_end, p - tier_end);
            o += p - tier_end;
            continue;
        } else {
            assert_int_equal(type, 'O');
            p += 4 + 4;
            continue;
        }
        memcpy(out + o, in + start, p - start);
        o += p - start;
    }
#undef U16
    assert_int_equal(p, len);
    return o;
}

static void
test_golden_section(void **state)
{
    struct fx *f = *state;
    struct compliance *c = cmp_new(f->cfg, T0 + 10 * MIN);
    assert_non_null(c);
    /* Its four 'O' records (fast and all, response, 1h and 7d, violated in
     * their first episode) reach the objective states. */
    cmp_set_legacy_objective_hook(c, obj_restore_legacy, f->obj);
    assert_int_equal(cmp_decode(c, (const char *)golden_compliance, sizeof(golden_compliance)), 0);
    for (int t = CMP_ALL; t < 2; t++)
        for (int m = 0; m < METRIC_COUNT; m++)
            for (int w = 0; w < 2; w++) {
                bool v = t != 1 && m == R;
                assert_int_equal(violated(f->obj, t, m, w), v);
                assert_int_equal(episode(f->obj, t, m, w), v ? 1 : 0);
            }
    assert_int_equal(met_of(c, CMP_ALL, R, W1H), 2);
    assert_int_equal(breached_of(c, CMP_ALL, R, W1H), 1);
    assert_int_equal(met_of(c, 1, R, W7D), 1);
    assert_int_equal(breached_of(c, 0, R, W7D), 1);
    struct cmp_latency l;
    assert_true(cmp_latency(c, 0, W1H, &l));
    assert_int_equal(l.count, 1);
    assert_int_equal(l.mean_ms, 1234);

    assert_true(cmp_elapsed(c, CMP_ALL, R, W7D, &l));
    assert_int_equal(l.p50_ms, 1234);
    assert_false(cmp_elapsed(c, CMP_ALL, S, W7D, &l));
    struct cmp_kpi_counts k;
    assert_true(cmp_kpi(c, CMP_ALL, -1, NULL, W7D, &k));
    assert_int_equal(k.resolved + k.good + k.bad, 0);

    /* Written again, it is format 3: the same records, without the 'O'
     * ones, each 'L' (response times) now an 'E' with the metric after its
     * tier. */
    unsigned char want[sizeof(golden_compliance) + 8];
    size_t n = rewrite_golden(golden_compliance, sizeof(golden_compliance), want);
    assert_int_equal(n, sizeof(golden_compliance) - 2 * 15 - 2 * 14 + 4);
    want[0] = 3;
    struct wire_buf b;
    wire_init(&b);
    assert_int_equal(cmp_encode(c, &b), 0);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    wire_free(&b);
    cmp_free(c);

    /* Format 3 has no 'L' records, format 2 no 'E' or 'K': each is
     * malformed in the other. */
    unsigned char other[sizeof(want)];
    memcpy(other, want, sizeof(want));
    other[0] = 2;
    c = cmp_new(f->cfg, T0 + 10 * MIN);
    assert_int_equal(cmp_decode(c, (const char *)other, sizeof(other)), -1);
    cmp_free(c);
    memcpy(other, golden_compliance, sizeof(golden_compliance));
    other[0] = 3;
    c = cmp_new(f->cfg, T0 + 10 * MIN);
    assert_int_equal(cmp_decode(c, (const char *)other, sizeof(golden_compliance)), -1);
    cmp_free(c);

    /* The first record's tier as an absent string (u16 0xffff): malformed. */
    unsigned char bad[sizeof(golden_compliance)];
    memcpy(bad, golden_compliance, sizeof(bad));
    assert_int_equal(bad[40], 'R');
    bad[41] = bad[42] = 0xff;
    c = cmp_new(f->cfg, T0 + 10 * MIN);
    assert_int_equal(cmp_decode(c, (const char *)bad, sizeof(bad)), -1);
    cmp_free(c);
}

/* The daemon's path: report_restore of a checkpoint written before
 * objective.c brings compliance.objective's states with their episodes;
 * they then travel in the objective section of the next checkpoint. */
static void
test_report_restores_legacy_states(void **state)
{
    struct fx *f = *state;
    struct report *rp = report_new(f->cfg, T0 + 10 * MIN);
    uint32_t ep = 0;
    assert_non_null(rp);
    report_restore(rp, (const char *)golden_compliance, sizeof(golden_compliance));
    assert_int_equal(met_of(report_compliance(rp), CMP_ALL, R, W1H), 2);
    assert_true(report_objective_state(rp, "", R, -1, "fast", "1h", &ep));
    assert_int_equal(ep, 1);
    assert_true(report_objective_state(rp, "", R, -1, "all", "7d", &ep));
    assert_false(report_objective_state(rp, "", R, -1, "slow", "1h", &ep));
    assert_int_equal(ep, 0);
    struct wire_buf b;
    wire_init(&b);
    assert_int_equal(report_encode_objectives(rp, &b), 0);
    struct report *again = report_new(f->cfg, T0 + 10 * MIN);
    report_restore_objectives(again, b.data, b.len);
    assert_true(report_objective_state(again, "", R, -1, "fast", "7d", &ep));
    assert_int_equal(ep, 1);
    /* A damaged objective section: every objective starts met. */
    report_restore_objectives(again, b.data, b.len - 1);
    assert_false(report_objective_state(again, "", R, -1, "fast", "7d", &ep));
    wire_free(&b);
    report_free_state(again);
    report_free_state(rp);
}

/* A reload keeps tiers by name and windows by length, drops the rest. */
static void
test_reload_maps_by_name(void **state)
{
    struct fx *f = *state;
    record(f->cmp, 0, R, true, T0, "billing");  /* fast */
    record(f->cmp, 1, R, false, T0, "billing"); /* slow */
    cmp_advance(f->cmp, T0 + MIN);
    struct config *cfg2 = load("tiers:\n"
                               "  slow: { response: 4h }\n"
                               "  new: { response: 1h }\n"
                               "compliance: { windows: [60m, 1d], by: [agent] }\n");
    assert_int_equal(cmp_set_config(f->cmp, cfg2), 0);
    cfg_free(f->cfg);
    f->cfg = cfg2;
    /* slow is now tier 0; 60m is the old 1h; 1d is new and empty. */
    assert_int_equal(breached_of(f->cmp, 0, R, 0), 1);
    assert_int_equal(met_of(f->cmp, 1, R, 0), 0);
    assert_int_equal(met_of(f->cmp, CMP_ALL, R, 0), 1); /* all keeps fast's */
    assert_int_equal(met_of(f->cmp, CMP_ALL, R, 1), 0);
    struct seen sn = { 0 };
    cmp_foreach(f->cmp, collect, &sn);
    for (int i = 0; i < sn.n; i++)
        assert_int_equal(sn.s[i].attr, -1); /* queue breakdown gone */
}

/* ---- at-risk ------------------------------------------------------------ */

static void
change(struct atrisk *ar, int metric, int ot, int64_t od, int nt, int64_t nd)
{
    struct sla_deadline_change d = { metric, ot, od, nt, nd };
    atrisk_change(ar, &d);
}

static void
test_atrisk_horizons(void **state)
{
    (void)state;
    struct atrisk *ar = atrisk_new(T0);
    change(ar, R, -1, 0, 0, T0 + 4 * MIN);        /* within 5m */
    change(ar, R, -1, 0, 0, T0 + 5 * MIN);        /* exactly 5m */
    change(ar, R, -1, 0, 0, T0 + 5 * MIN + 999);  /* same grain: counted */
    change(ar, R, -1, 0, 0, T0 + 5 * MIN + 1000); /* next grain: not */
    change(ar, R, -1, 0, 0, T0 + 59 * MIN);
    change(ar, R, -1, 0, 0, T0 + 3 * HOUR);       /* beyond the ring */
    change(ar, R, -1, 0, 0, T0 - 10 * SEC);       /* due, not fired yet */
    change(ar, S, -1, 0, 1, T0 + MIN);
    assert_int_equal(atrisk_count(ar, 0, R, 5 * MIN), 4);
    assert_int_equal(atrisk_count(ar, 0, R, 15 * MIN), 5);
    assert_int_equal(atrisk_count(ar, 0, R, HOUR), 6);
    assert_int_equal(atrisk_running(ar, 0, R), 7);
    assert_int_equal(atrisk_count(ar, 1, S, 5 * MIN), 1);
    assert_int_equal(atrisk_count(ar, 1, R, 5 * MIN), 0);

    /* Re-target and moves between tiers. */
    change(ar, R, 0, T0 + 59 * MIN, 0, T0 + 2 * MIN);
    assert_int_equal(atrisk_count(ar, 0, R, 5 * MIN), 5);
    change(ar, R, 0, T0 + 2 * MIN, 1, T0 + 2 * MIN);
    assert_int_equal(atrisk_count(ar, 0, R, 5 * MIN), 4);
    assert_int_equal(atrisk_count(ar, 1, R, 5 * MIN), 1);
    change(ar, R, 1, T0 + 2 * MIN, -1, 0);         /* stopped */
    assert_int_equal(atrisk_running(ar, 1, R), 0);

    /* Two hours on: the far deadline (T0 + 3h) enters every horizon. */
    atrisk_advance(ar, T0 + 2 * HOUR + 30 * MIN);
    assert_int_equal(atrisk_count(ar, 0, R, 5 * MIN), 5);   /* 5 past */
    assert_int_equal(atrisk_count(ar, 0, R, 15 * MIN), 5);
    assert_int_equal(atrisk_count(ar, 0, R, HOUR), 6);
    change(ar, R, 0, T0 + 3 * HOUR, -1, 0);        /* breached: gone */
    change(ar, R, 0, T0 - 10 * SEC, -1, 0);        /* past one fires */
    assert_int_equal(atrisk_count(ar, 0, R, HOUR), 4);
    /* Small steps pull far buckets one by one. */
    change(ar, R, -1, 0, 0, T0 + 4 * HOUR);
    for (int64_t t = T0 + 2 * HOUR + 30 * MIN; t < T0 + 3 * HOUR; t += 7 * SEC)
        atrisk_advance(ar, t);
    assert_int_equal(atrisk_count(ar, 0, R, HOUR), 4); /* 4h: just over 1h away */
    atrisk_advance(ar, T0 + 3 * HOUR);
    assert_int_equal(atrisk_count(ar, 0, R, HOUR), 5); /* exactly 1h away */
    atrisk_advance(ar, T0 + 3 * HOUR + 56 * MIN);
    assert_int_equal(atrisk_count(ar, 0, R, 5 * MIN), 5);
    assert_int_equal(atrisk_running(ar, 0, R), 5);
    assert_false(atrisk_degraded(ar));
    atrisk_free(ar);
}

/* ---- the core's deadline listener --------------------------------------- */

static int64_t wall_now;

static int64_t
fake_wall(void *arg)
{
    (void)arg;
    return wall_now;
}

struct truth {
    long running[CFG_MAX_TIERS][METRIC_COUNT];
    long within[CFG_MAX_TIERS][METRIC_COUNT];
    int64_t limit;
    const struct core *core;
};

static void
count_clock(void *arg, const struct ticket *t)
{
    struct truth *tr = arg;
    for (int i = 0; i < CLOCK_SLOTS; i++) {
        const struct sla_clock *c = &t->clk[i];
        int m = c->metric;
        if (c->state != CLOCK_RUNNING || c->outcome == OUTCOME_BREACHED)
            continue;
        tr->running[t->tier][m]++;
        if (c->deadline_ms / ATRISK_GRAIN_MS <= tr->limit / ATRISK_GRAIN_MS)
            tr->within[t->tier][m]++;
    }
}

/* The listener's totals equal a scan of the tickets after every step. */
static void
check_against_scan(const struct core *core, const struct atrisk *ar,
                   const struct config *cfg, int64_t now)
{
    struct truth tr;
    memset(&tr, 0, sizeof(tr));
    tr.limit = now + 15 * MIN;
    core_foreach(core, count_clock, &tr);
    for (size_t t = 0; t < cfg->ntiers; t++)
        for (int m = 0; m < METRIC_COUNT; m++) {
            assert_int_equal(atrisk_running(ar, (int)t, m), tr.running[t][m]);
            assert_int_equal(atrisk_count(ar, (int)t, m, 15 * MIN), tr.within[t][m]);
        }
}

static void
apply(struct core *core, enum ev_type type, const char *id, int64_t ts,
      const char *priority)
{
    struct sla_event ev;
    const char *reason;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.ticket = id;
    ev.ticket_len = strlen(id);
    ev.ts_ms = ts;
    ev.arrival_ms = ts;
    if (priority) {
        ev.attr[ATTR_PRIORITY] = priority;
        ev.attr_len[ATTR_PRIORITY] = strlen(priority);
    }
    if (core_apply(core, &ev, &reason) < 0)
        assert_string_equal(reason, "unknown ticket"); /* the only refusal here */
}

static void
test_core_listener_matches_scan(void **state)
{
    (void)state;
    static const char *text =
        "tiers:\n"
        "  p1: { response: 3m, resolution: 20m, warn: [50%] }\n"
        "  p2: { response: 10m, resolution: 2h, pause: [response, resolution] }\n"
        "  p3: { response: 30m }\n"
        "policies:\n"
        "  - { match: { priority: urgent }, tier: p1 }\n"
        "  - { match: { priority: high }, tier: p2 }\n"
        "  - { tier: p3 }\n";
    static const char *reload_text =
        "tiers:\n"
        "  p3: { response: 20m, resolution: 1h }\n"
        "  p1: { response: 1m }\n"
        "policies:\n"
        "  - { match: { priority: urgent }, tier: p1 }\n"
        "  - { tier: p3 }\n";
    static const enum ev_type types[] = { EVT_OPENED, EVT_OPENED, EVT_RESPONDED,
                                          EVT_PAUSED, EVT_RESUMED, EVT_RESOLVED,
                                          EVT_REOPENED, EVT_UPDATED, EVT_CLOSED,
                                          EVT_DELETED };
    static const char *prios[] = { "urgent", "high", "low", NULL };
    struct config *cfg = load(text), *cfg2 = load(reload_text);
    struct atrisk *ar = atrisk_new(T0);
    struct core_sink cb = { .deadline = atrisk_change, .arg = ar };
    struct core *core = core_new(cfg, fake_wall, NULL, &cb);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int64_t now = T0;
    char id[16];

    for (int step = 0; step < 6000; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now += (int64_t)(x % 20000); /* up to 20 s per event */
        wall_now = now;
        snprintf(id, sizeof(id), "T%d", (int)((x >> 20) % 150));
        /* Now and then an event stamped in the past. */
        int64_t ts = (x >> 40) % 17 == 0 ? now - 5 * MIN : now;
        apply(core, types[(x >> 24) % ARRAY_LEN(types)], id, ts,
              prios[(x >> 32) % ARRAY_LEN(prios)]);
        core_advance(core, now);
        atrisk_advance(ar, now);
        check_against_scan(core, ar, step < 3000 ? cfg : cfg2, now);
        if (step == 2999) {
            core_set_config(core, cfg2); /* re-targets and re-maps tiers */
            check_against_scan(core, ar, cfg2, now);
        }
    }
    /* A restore into a fresh core reports every counted clock once. */
    struct wire_buf b;
    struct state_meta meta = { .core_now_ms = now };
    wire_init(&b);
    assert_int_equal(state_encode(core, &meta, NULL, 0, &b), 0);
    struct atrisk *ar2 = atrisk_new(now);
    struct core_sink cb2 = { .deadline = atrisk_change, .arg = ar2 };
    struct core *core2 = core_new(cfg2, fake_wall, NULL, &cb2);
    char err[128];
    assert_true(state_decode(core2, b.data, b.len, &meta, NULL, NULL, err, sizeof(err)) >= 0);
    check_against_scan(core2, ar2, cfg2, now);
    assert_false(atrisk_degraded(ar2));
    wire_free(&b);
    core_free(core2);
    atrisk_free(ar2);
    core_free(core);
    atrisk_free(ar);
    cfg_free(cfg);
    cfg_free(cfg2);
}

/* ---- a publish round, without Redis -------------------------------------- */

static bool
has_pair(const struct cmd_argv *a, const char *key, const char *value)
{
    for (size_t i = 1; i + 1 < a->n; i += 2)
        if (strcmp(a->argv[i], key) == 0)
            return value == NULL || strcmp(a->argv[i + 1], value) == 0;
    return false;
}

static bool
has_key(const struct cmd_argv *a, const char *key)
{
    for (size_t i = 1; i < a->n; i++)
        if (strcmp(a->argv[i], key) == 0)
            return true;
    return false;
}

static void
test_report_round(void **state)
{
    struct fx *f = *state;
    struct report *rp = report_new(f->cfg, T0);
    struct compliance *c = report_compliance(rp);
    struct report_cmds cmds;
    assert_non_null(rp);
    for (int i = 0; i < 3; i++)
        record(c, 0, R, true, T0, "billing");
    record(c, 0, R, false, T0, "billing");
    assert_int_equal(cmp_record_response_time(c, 0, T0, 500), 0);
    change(report_atrisk(rp), R, -1, 0, 1, T0 + 10 * MIN);

    assert_int_equal(report_build(rp, T0 + MIN, &cmds), 0);
    assert_string_equal(cmds.mset.argv[0], "MSET");
    assert_string_equal(cmds.del.argv[0], "DEL");
    assert_true(cmds.mset.n % 2 == 1);
    assert_true(has_pair(&cmds.mset, "sla:compliance:fast:response:1h", "0.75"));
    assert_true(has_pair(&cmds.mset, "sla:met:fast:response:7d", "3"));
    assert_true(has_pair(&cmds.mset, "sla:breached:all:response:1h", "1"));
    assert_true(has_pair(&cmds.mset, "sla:compliance:all:response:1h:queue=billing", "0.75"));
    assert_true(has_pair(&cmds.mset, "sla:met:fast:response:1h:queue=billing", "3"));
    assert_true(has_pair(&cmds.mset, "sla:met:slow:response:1h", "0"));
    assert_true(has_key(&cmds.del, "sla:compliance:slow:response:1h")); /* empty */
    assert_false(has_key(&cmds.mset, "sla:compliance:slow:response:1h"));
    assert_false(has_key(&cmds.mset, "sla:met:slow:resolution:1h")); /* no clock */
    assert_true(has_pair(&cmds.mset, "sla:response_ms:fast:1h:p50", "500"));
    assert_true(has_pair(&cmds.mset, "sla:response_ms:all:7d:mean", "500"));
    assert_true(has_key(&cmds.del, "sla:response_ms:slow:1h:p99"));
    assert_true(has_pair(&cmds.mset, "sla:at_risk:slow:response:5m", "0"));
    assert_true(has_pair(&cmds.mset, "sla:at_risk:slow:response:15m", "1"));
    assert_true(has_pair(&cmds.mset, "sla:at_risk:fast:resolution:1h", "0"));
    assert_false(has_key(&cmds.mset, "sla:at_risk:slow:resolution:1h"));
    assert_true(has_pair(&cmds.mset, "sla:objective", "0.9"));
    report_commit(rp, &cmds);
    report_cmds_free(&cmds);

    /* Two hours on, the 1h breakdown series has expired: its keys are
     * deleted once, then no longer mentioned. */
    assert_int_equal(report_build(rp, T0 + 2 * HOUR, &cmds), 0);
    assert_true(has_key(&cmds.del, "sla:compliance:fast:response:1h"));
    assert_true(has_pair(&cmds.mset, "sla:met:fast:response:1h:queue=billing", "0"));
    assert_true(has_pair(&cmds.mset, "sla:met:fast:response:7d:queue=billing", "3"));
    assert_true(has_key(&cmds.del, "sla:compliance:fast:response:1h:queue=billing"));
    report_commit(rp, &cmds);
    report_cmds_free(&cmds);
    assert_int_equal(report_build(rp, T0 + 8 * DAY, &cmds), 0);
    assert_true(has_key(&cmds.del, "sla:met:fast:response:7d:queue=billing"));
    assert_true(has_key(&cmds.del, "sla:breached:all:response:1h:queue=billing"));
    assert_false(has_key(&cmds.mset, "sla:met:fast:response:7d:queue=billing"));
    report_commit(rp, &cmds);
    report_cmds_free(&cmds);
    assert_int_equal(report_build(rp, T0 + 9 * DAY, &cmds), 0);
    assert_false(has_key(&cmds.del, "sla:met:fast:response:7d:queue=billing"));
    report_cmds_free(&cmds);
    report_free_state(rp);
}

/* A KPI source standing in for compliance.c's KPIs: reopen_rate of `all`
 * is kpi_value, nothing else is counted; SLA ratios come from the
 * windows. */
static int64_t kpi_value = 100000;

static bool
read_with_kpi(void *arg, int metric, int kpi, int tier, int w, struct obj_reading *out)
{
    if (metric >= 0)
        return obj_read_compliance(arg, metric, kpi, tier, w, out);
    if (kpi != CMP_KPI_REOPEN_RATE || tier != CMP_ALL)
        return false;
    out->value_micro = kpi_value;
    return true;
}

static void
on_hook(void *arg, const struct obj_change *ch)
{
    on_change(arg, ch);
}

/* Named objectives in a publish round: each one's threshold, and its state
 * per series it covers (1 violated, 0 met, deleted while its window holds
 * nothing), shown as the evaluation of the round left them; the shorthand
 * keeps its one key. */
static void
test_report_objectives(void **state)
{
    (void)state;
    struct config *cfg = load("tiers:\n"
                              "  fast: { response: 10m, resolution: 1h }\n"
                              "  slow: { response: 4h }\n"
                              "compliance: { windows: [1h, 7d], objective: 0.9 }\n"
                              "objectives:\n"
                              "  - { name: answered, metric: response, windows: [1h], min: 0.8 }\n"
                              "  - { name: reopens, kpi: reopen_rate, tiers: [all], max: 0.05 }\n");
    struct report *rp = report_new(cfg, T0);
    struct report_cmds cmds;
    struct changes cs = { 0 };
    assert_non_null(rp);
    report_set_objective_hook(rp, on_hook, &cs);
    struct compliance *c = report_compliance(rp);
    record(c, 0, R, true, T0, NULL);
    record(c, 0, R, false, T0, NULL);

    /* One round below: judged, not yet violated. */
    report_evaluate(rp, T0 + MIN, read_with_kpi, c);
    assert_int_equal(report_build(rp, T0 + MIN, &cmds), 0);
    assert_true(has_pair(&cmds.mset, "sla:objective", "0.9"));
    assert_true(has_pair(&cmds.mset, "sla:objective:answered", "0.8"));
    assert_true(has_pair(&cmds.mset, "sla:objective:reopens", "0.05"));
    assert_true(has_pair(&cmds.mset, "sla:objective:answered:fast:1h", "0"));
    assert_true(has_pair(&cmds.mset, "sla:objective:answered:all:1h", "0"));
    assert_true(has_pair(&cmds.mset, "sla:objective:reopens:all:1h", "0"));
    assert_true(has_pair(&cmds.mset, "sla:objective:reopens:all:7d", "0"));
    assert_true(has_key(&cmds.del, "sla:objective:answered:slow:1h")); /* nothing yet */
    assert_false(has_key(&cmds.mset, "sla:objective:answered:fast:7d")); /* not covered */
    assert_false(has_key(&cmds.del, "sla:objective:answered:fast:7d"));
    assert_false(has_key(&cmds.mset, "sla:objective:reopens:fast:1h"));
    assert_false(has_key(&cmds.del, "sla:objective:reopens:fast:1h"));
    report_commit(rp, &cmds);
    report_cmds_free(&cmds);
    assert_int_equal(cs.n, 0);

    /* The second round: violated, each transition handed to the hook with
     * its name. */
    report_evaluate(rp, T0 + 2 * MIN, read_with_kpi, c);
    assert_int_equal(report_build(rp, T0 + 2 * MIN, &cmds), 0);
    assert_true(has_pair(&cmds.mset, "sla:objective:answered:fast:1h", "1"));
    assert_true(has_pair(&cmds.mset, "sla:objective:answered:all:1h", "1"));
    assert_true(has_pair(&cmds.mset, "sla:objective:reopens:all:1h", "1"));
    report_commit(rp, &cmds);
    report_cmds_free(&cmds);
    int shorthand = 0, answered = 0, reopens = 0;
    for (int i = 0; i < cs.n; i++) {
        const struct obj_change *ch = &cs.c[i];
        assert_true(ch->violated);
        assert_int_equal(ch->episode, 1);
        if (ch->name == NULL) {
            shorthand++;
            assert_int_equal(ch->objective, OBJ_SHORTHAND);
        } else if (strcmp(ch->name, "answered") == 0) {
            answered++;
            assert_int_equal(ch->objective, 0);
            assert_int_equal(ch->metric, R);
            assert_int_equal(ch->window, W1H);
            assert_int_equal(ch->value_micro, 500000);
            assert_int_equal(ch->threshold_micro, 800000);
            assert_false(ch->max);
        } else {
            reopens++;
            assert_string_equal(ch->name, "reopens");
            assert_int_equal(ch->objective, 1);
            assert_int_equal(ch->metric, -1);
            assert_int_equal(ch->kpi, CMP_KPI_REOPEN_RATE);
            assert_int_equal(ch->tier, CMP_ALL);
            assert_true(ch->max);
            assert_int_equal(ch->value_micro, 100000);
            assert_int_equal(ch->threshold_micro, 50000);
            assert_false(ch->counts);
        }
    }
    assert_int_equal(shorthand, 4); /* fast and all, 1h and 7d */
    assert_int_equal(answered, 2);  /* fast and all over 1h */
    assert_int_equal(reopens, 2);   /* all over 1h and 7d */
    uint32_t ep = 0;
    assert_true(report_objective_state(rp, "reopens", -1, CMP_KPI_REOPEN_RATE, "all", "7d", &ep));
    assert_int_equal(ep, 1);
    assert_true(report_objective_state(rp, "answered", R, -1, "fast", "1h", &ep));
    assert_true(report_objective_state(rp, "", R, -1, "fast", "7d", &ep));
    /* The same name measuring something else is another series. */
    assert_false(report_objective_state(rp, "reopens", -1, CMP_KPI_FCR, "all", "7d", &ep));
    assert_int_equal(ep, 0);
    assert_false(report_objective_state(rp, "answered", R, -1, "fast", "7d", &ep));
    assert_false(report_objective_state(rp, "nope", R, -1, "fast", "1h", &ep));

    /* Its window empty: the state key goes, the state stays. */
    cmp_advance(c, T0 + 3 * HOUR);
    kpi_value = 0;
    report_evaluate(rp, T0 + 3 * HOUR, read_with_kpi, c);
    assert_int_equal(report_build(rp, T0 + 3 * HOUR, &cmds), 0);
    assert_true(has_key(&cmds.del, "sla:objective:answered:fast:1h"));
    assert_false(has_key(&cmds.mset, "sla:objective:answered:fast:1h"));
    assert_true(has_pair(&cmds.mset, "sla:objective:reopens:all:1h", "1")); /* one round */
    assert_true(report_objective_state(rp, "answered", R, -1, "fast", "1h", &ep));
    report_cmds_free(&cmds);
    report_free_state(rp);
    cfg_free(cfg);
    kpi_value = 100000;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_window_bucket_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratio_mixed_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breakdown_capping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breakdown_churn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quantiles_known_distribution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_objective_hysteresis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_objective_episodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_decode_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_golden_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_restores_legacy_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_maps_by_name, setup, teardown),
        cmocka_unit_test(test_atrisk_horizons),
        cmocka_unit_test(test_core_listener_matches_scan),
        cmocka_unit_test_setup_teardown(test_report_round, setup, teardown),
        cmocka_unit_test(test_report_objectives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
