/* Unit tests for objective.c with named objectives: the config from YAML,
 * values from an injected source (a table per measure, tier and window
 * that the test sets between evaluations), every instant injected. Covers
 * which series each objective judges, hysteresis in both directions (a
 * KPI with a max fires above and recovers at or below), comparisons in
 * millionths, episodes, the checkpoint section by name across restarts
 * and reloads, damaged sections, and the value formatting. compliance.objective
 * on real windows: test_compliance.c. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slawatch/config.h"
#include "slawatch/objective.h"

#define T0 1795000000000LL
#define W1H 0
#define W24H 1
#define W7D 2
#define R METRIC_RESPONSE
#define S METRIC_RESOLUTION

static const char *yaml =
    "tiers:\n"
    "  fast: { response: 10m, resolution: 1h }\n"
    "  slow: { response: 4h }\n"
    "compliance: { windows: [1h, 24h, 7d], objective: 0.9 }\n"
    "objectives:\n"
    "  - { name: answered-in-24h, metric: response, windows: [24h], min: 0.90 }\n"
    "  - { name: resolved, metric: resolution, min: 0.5 }\n"
    "  - { name: reopens, kpi: reopen_rate, tiers: [fast, all], windows: [7d], max: 0.05 }\n"
    "  - { name: satisfaction, kpi: csat_mean, tiers: [all], min: 4.8 }\n";

enum { O_ANSWERED, O_RESOLVED, O_REOPENS, O_SATISFACTION };

/* The injected source: one value per measure (metric or KPI), tier (0, 1,
 * all) and window; absent until set. */
struct source {
    bool present[METRIC_COUNT + CMP_KPI_COUNT][3][CFG_MAX_WINDOWS];
    int64_t micro[METRIC_COUNT + CMP_KPI_COUNT][3][CFG_MAX_WINDOWS];
    int reads;
};

static int
measure_ix(int metric, int kpi)
{
    return metric >= 0 ? metric : METRIC_COUNT + kpi;
}

static int
tier_slot(int tier)
{
    return tier == CMP_ALL ? 2 : tier;
}

static bool
read_source(void *arg, int metric, int kpi, int tier, int w, struct obj_reading *out)
{
    struct source *src = arg;
    int m = measure_ix(metric, kpi), t = tier_slot(tier);
    assert_true((metric >= 0) != (kpi >= 0));
    src->reads++;
    if (!src->present[m][t][w])
        return false;
    out->value_micro = src->micro[m][t][w];
    out->counts = metric >= 0;
    out->met = out->counts ? 9 : 0;
    out->breached = out->counts ? 1 : 0;
    return true;
}

static void
set_value(struct source *src, int metric, int kpi, int tier, int w, int64_t micro)
{
    int m = measure_ix(metric, kpi), t = tier_slot(tier);
    src->present[m][t][w] = true;
    src->micro[m][t][w] = micro;
}

static void
clear_value(struct source *src, int metric, int kpi, int tier, int w)
{
    src->present[measure_ix(metric, kpi)][tier_slot(tier)][w] = false;
}

struct changes {
    int n;
    struct obj_change c[256];
};

static void
on_change(void *arg, const struct obj_change *ch)
{
    struct changes *cs = arg;
    assert_true(cs->n < 256);
    cs->c[cs->n++] = *ch;
}

/* Transitions of one named objective's series in the last evaluation. */
static int
changes_of(const struct changes *cs, int objective, int tier, int w)
{
    int n = 0;
    for (int i = 0; i < cs->n; i++)
        n += cs->c[i].objective == objective && cs->c[i].tier == tier && cs->c[i].window == w;
    return n;
}

static const struct obj_change *
change_of(const struct changes *cs, int objective, int tier, int w)
{
    for (int i = 0; i < cs->n; i++)
        if (cs->c[i].objective == objective && cs->c[i].tier == tier && cs->c[i].window == w)
            return &cs->c[i];
    fail_msg("no transition of objective %d tier %d window %d", objective, tier, w);
    return NULL;
}

struct fx {
    struct config *cfg;
    struct objectives *obj;
    struct source src;
    struct changes cs;
    int round;
};

static struct config *
load(const char *text)
{
    struct config *cfg = cfg_load_string("test.yaml", text, strlen(text), stderr);
    assert_non_null(cfg);
    return cfg;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->cfg = load(yaml);
    assert_int_equal(f->cfg->nobjectives, 4);
    f->obj = obj_new(f->cfg);
    assert_non_null(f->obj);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    obj_free(f->obj);
    cfg_free(f->cfg);
    free(f);
    return 0;
}

static void
eval(struct fx *f)
{
    f->cs.n = 0;
    obj_eval(f->obj, T0 + f->round++ * 10000, read_source, &f->src, on_change, &f->cs);
}

static bool
violated(const struct fx *f, int objective, int tier, int w, uint32_t *episode)
{
    return obj_violated(f->obj, objective, tier, -1, w, episode);
}

/* ---- which series ------------------------------------------------------- */

struct seen {
    int n;
    struct obj_series s[256];
};

static void
collect(void *arg, const struct obj_series *s)
{
    struct seen *sn = arg;
    assert_true(sn->n < 256);
    sn->s[sn->n++] = *s;
}

static int
series_of(const struct seen *sn, int objective, int tier, int w)
{
    int n = 0;
    for (int i = 0; i < sn->n; i++)
        n += sn->s[i].objective == objective && sn->s[i].tier == tier && sn->s[i].window == w;
    return n;
}

/* windows and tiers default to every one (and `all`); a list restricts
 * them; an SLA ratio leaves out tiers without the clock. The shorthand
 * covers every tier x metric x window that has a clock, first. */
static void
test_coverage(void **state)
{
    struct fx *f = *state;
    struct seen sn = { 0 };
    obj_foreach(f->obj, collect, &sn);
    int shorthand = 0;
    for (int i = 0; i < sn.n; i++)
        if (sn.s[i].objective == OBJ_SHORTHAND) {
            assert_null(sn.s[i].name);
            assert_int_equal(i, shorthand); /* listed first */
            shorthand++;
        }
    /* response: fast, slow, all; resolution: fast, all; x 3 windows */
    assert_int_equal(shorthand, 5 * 3);
    for (int t = CMP_ALL; t < 2; t++)
        for (int w = 0; w < 3; w++) {
            assert_int_equal(series_of(&sn, O_ANSWERED, t, w), w == W24H);
            assert_int_equal(series_of(&sn, O_RESOLVED, t, w), t != 1); /* slow: no clock */
            assert_int_equal(series_of(&sn, O_REOPENS, t, w), t != 1 && w == W7D);
            assert_int_equal(series_of(&sn, O_SATISFACTION, t, w), t == CMP_ALL);
        }
    assert_int_equal(sn.n, 15 + 3 + 6 + 2 + 3);
    for (int i = 0; i < sn.n; i++) {
        assert_false(sn.s[i].present);
        assert_false(sn.s[i].violated);
    }
    const struct obj_series *a = NULL;
    for (int i = 0; i < sn.n; i++)
        if (sn.s[i].objective == O_ANSWERED && sn.s[i].tier == 1)
            a = &sn.s[i];
    assert_non_null(a);
    assert_string_equal(a->name, "answered-in-24h");
    assert_string_equal(a->tier_name, "slow");
    assert_string_equal(a->window_name, "24h");
    assert_int_equal(a->metric, R);

    /* Only what is covered is read: one read per series. */
    eval(f);
    assert_int_equal(f->src.reads, sn.n);
    assert_int_equal(f->cs.n, 0); /* nothing to count: nothing changes */
}

/* ---- hysteresis --------------------------------------------------------- */

/* A KPI with a max: above it at two evaluations in a row fires, once; at
 * it is not above; back at or below for three in a row recovers; an
 * evaluation with nothing to count changes nothing and breaks a streak. */
static void
test_kpi_max_hysteresis(void **state)
{
    struct fx *f = *state;
    const int K = CMP_KPI_REOPEN_RATE;
    uint32_t ep;

    /* 0.06 at single evaluations between 0.04s never fires. */
    for (int i = 0; i < 3; i++) {
        set_value(&f->src, -1, K, CMP_ALL, W7D, 60000);
        eval(f);
        assert_int_equal(changes_of(&f->cs, O_REOPENS, CMP_ALL, W7D), 0);
        set_value(&f->src, -1, K, CMP_ALL, W7D, 40000);
        eval(f);
        assert_int_equal(changes_of(&f->cs, O_REOPENS, CMP_ALL, W7D), 0);
    }
    /* Exactly at the max, twice: not above it. */
    set_value(&f->src, -1, K, CMP_ALL, W7D, 50000);
    eval(f);
    eval(f);
    assert_int_equal(changes_of(&f->cs, O_REOPENS, CMP_ALL, W7D), 0);
    /* Above, an empty window, above: the streak starts again. */
    set_value(&f->src, -1, K, CMP_ALL, W7D, 50001);
    eval(f);
    clear_value(&f->src, -1, K, CMP_ALL, W7D);
    eval(f);
    set_value(&f->src, -1, K, CMP_ALL, W7D, 80000);
    eval(f);
    assert_int_equal(changes_of(&f->cs, O_REOPENS, CMP_ALL, W7D), 0);
    assert_false(violated(f, O_REOPENS, CMP_ALL, W7D, &ep));
    /* The second in a row: violated. */
    eval(f);
    assert_int_equal(changes_of(&f->cs, O_REOPENS, CMP_ALL, W7D), 1);
    const struct obj_change *ch = change_of(&f->cs, O_REOPENS, CMP_ALL, W7D);
    assert_true(ch->violated);
    assert_int_equal(ch->episode, 1);
    assert_string_equal(ch->name, "reopens");
    assert_int_equal(ch->metric, -1);
    assert_int_equal(ch->kpi, K);
    assert_true(ch->max);
    assert_string_equal(ch->tier_name, "all");
    assert_string_equal(ch->window_name, "7d");
    assert_int_equal(ch->value_micro, 80000);
    assert_int_equal(ch->threshold_micro, 50000);
    assert_true(ch->threshold == 0.05);
    assert_false(ch->counts);
    assert_int_equal(ch->at_ms, T0 + (f->round - 1) * 10000);
    assert_true(violated(f, O_REOPENS, CMP_ALL, W7D, &ep));
    assert_int_equal(ep, 1);
    /* fast's series is another one: it has no value, nothing happened. */
    assert_false(violated(f, O_REOPENS, 0, W7D, NULL));
    eval(f);
    assert_int_equal(f->cs.n, 0); /* no repeat */

    /* At or below for two, above, then three: recovered once, at the
     * third of the last run. An empty window in between resets it. */
    set_value(&f->src, -1, K, CMP_ALL, W7D, 50000);
    eval(f);
    set_value(&f->src, -1, K, CMP_ALL, W7D, 10000);
    eval(f);
    set_value(&f->src, -1, K, CMP_ALL, W7D, 70000);
    eval(f);
    set_value(&f->src, -1, K, CMP_ALL, W7D, 0);
    eval(f);
    clear_value(&f->src, -1, K, CMP_ALL, W7D);
    eval(f);
    set_value(&f->src, -1, K, CMP_ALL, W7D, 0);
    eval(f);
    eval(f);
    assert_int_equal(changes_of(&f->cs, O_REOPENS, CMP_ALL, W7D), 0);
    assert_true(violated(f, O_REOPENS, CMP_ALL, W7D, NULL));
    eval(f);
    assert_int_equal(changes_of(&f->cs, O_REOPENS, CMP_ALL, W7D), 1);
    ch = change_of(&f->cs, O_REOPENS, CMP_ALL, W7D);
    assert_false(ch->violated);
    assert_int_equal(ch->episode, 1); /* the violation that ended */
    assert_int_equal(ch->value_micro, 0);
    assert_false(violated(f, O_REOPENS, CMP_ALL, W7D, &ep));
    assert_int_equal(ep, 1);

    /* The next violation is the second. */
    set_value(&f->src, -1, K, CMP_ALL, W7D, 990000);
    eval(f);
    eval(f);
    assert_int_equal(change_of(&f->cs, O_REOPENS, CMP_ALL, W7D)->episode, 2);
}

/* A min: below fires, at recovers; values and thresholds compare in
 * millionths (4.8 is 4800000, not below 4.8). Each series of an objective
 * goes its own way, and so does another objective on the same series. */
static void
test_min_and_series(void **state)
{
    struct fx *f = *state;
    const int K = CMP_KPI_CSAT_MEAN;
    set_value(&f->src, -1, K, CMP_ALL, W1H, 4800000);
    set_value(&f->src, -1, K, CMP_ALL, W24H, 4799999);
    set_value(&f->src, R, -1, 0, W24H, 899999);  /* answered: below 0.9 */
    set_value(&f->src, R, -1, 1, W24H, 900000);  /* at */
    set_value(&f->src, R, -1, CMP_ALL, W24H, 950000);
    eval(f);
    eval(f);
    assert_int_equal(changes_of(&f->cs, O_SATISFACTION, CMP_ALL, W1H), 0);
    assert_int_equal(changes_of(&f->cs, O_SATISFACTION, CMP_ALL, W24H), 1);
    const struct obj_change *ch = change_of(&f->cs, O_SATISFACTION, CMP_ALL, W24H);
    assert_false(ch->max);
    assert_int_equal(ch->threshold_micro, 4800000);
    assert_int_equal(changes_of(&f->cs, O_ANSWERED, 0, W24H), 1);
    ch = change_of(&f->cs, O_ANSWERED, 0, W24H);
    assert_int_equal(ch->metric, R);
    assert_int_equal(ch->kpi, -1);
    assert_true(ch->counts);
    assert_int_equal(ch->met, 9);
    assert_int_equal(changes_of(&f->cs, O_ANSWERED, 1, W24H), 0);
    assert_int_equal(changes_of(&f->cs, O_ANSWERED, CMP_ALL, W24H), 0);
    /* The same ratio is below the shorthand's 0.9 too: its own series,
     * its own transition, with no name. */
    assert_int_equal(changes_of(&f->cs, OBJ_SHORTHAND, 0, W24H), 1);
    ch = change_of(&f->cs, OBJ_SHORTHAND, 0, W24H);
    assert_null(ch->name);
    assert_int_equal(ch->metric, R);
    assert_int_equal(f->cs.n, 3);
    /* The shorthand's state needs its metric; a named one's ignores it. */
    assert_true(obj_violated(f->obj, OBJ_SHORTHAND, 0, R, W24H, NULL));
    assert_false(obj_violated(f->obj, OBJ_SHORTHAND, 0, S, W24H, NULL));
    assert_false(obj_violated(f->obj, OBJ_SHORTHAND, 0, -1, W24H, NULL));
    assert_true(obj_violated(f->obj, O_ANSWERED, 0, S, W24H, NULL));
    assert_false(obj_violated(f->obj, 9, 0, R, W24H, NULL));
    assert_false(obj_violated(f->obj, -2, 0, R, W24H, NULL));
    assert_false(obj_violated(f->obj, O_ANSWERED, 0, R, W1H, NULL)); /* not covered */
    assert_false(obj_violated(f->obj, O_ANSWERED, 5, R, W24H, NULL));
    assert_false(obj_violated(f->obj, O_ANSWERED, 0, R, 3, NULL));
}

/* ---- checkpoint ---------------------------------------------------------- */

static void
drive_violated(struct fx *f, int metric, int kpi, int tier, int w, int64_t bad)
{
    set_value(&f->src, metric, kpi, tier, w, bad);
    eval(f);
    eval(f);
}

/* States travel by objective name, measure, tier name and window length:
 * a restart keeps every one, a reload keeps those that still exist
 * (another order of objectives, a renamed window of the same length) and
 * drops an objective whose measure changed or that is gone. */
static void
test_checkpoint_by_name(void **state)
{
    struct fx *f = *state;
    uint32_t ep;
    /* answered/slow/24h: violated once; satisfaction/all/1h: violated;
     * reopens/fast/7d: violated in its second episode, one evaluation
     * back at its max (a streak); resolved/all/1h: one evaluation below
     * (a streak too). */
    drive_violated(f, R, -1, 1, W24H, 100000);
    drive_violated(f, -1, CMP_KPI_CSAT_MEAN, CMP_ALL, W1H, 1000000);
    drive_violated(f, -1, CMP_KPI_REOPEN_RATE, 0, W7D, 90000);
    set_value(&f->src, -1, CMP_KPI_REOPEN_RATE, 0, W7D, 0);
    for (int i = 0; i < 3; i++)
        eval(f);
    assert_false(violated(f, O_REOPENS, 0, W7D, &ep));
    drive_violated(f, -1, CMP_KPI_REOPEN_RATE, 0, W7D, 90000);
    set_value(&f->src, -1, CMP_KPI_REOPEN_RATE, 0, W7D, 50000);
    set_value(&f->src, S, -1, CMP_ALL, W1H, 0);
    eval(f);
    assert_int_equal(f->cs.n, 0);
    assert_true(violated(f, O_REOPENS, 0, W7D, &ep));
    assert_int_equal(ep, 2);

    struct wire_buf b;
    wire_init(&b);
    assert_int_equal(obj_encode(f->obj, &b), 0);

    /* A restart: the same config. */
    struct objectives *o = obj_new(f->cfg);
    assert_int_equal(obj_decode(o, b.data, b.len), 0);
    assert_true(obj_violated(o, O_REOPENS, 0, -1, W7D, &ep));
    assert_int_equal(ep, 2);
    assert_true(obj_violated(o, O_ANSWERED, 1, -1, W24H, &ep));
    assert_int_equal(ep, 1);
    assert_true(obj_violated(o, O_SATISFACTION, CMP_ALL, -1, W1H, &ep));
    assert_false(obj_violated(o, O_RESOLVED, CMP_ALL, -1, W1H, &ep));
    assert_int_equal(ep, 0);
    /* The streaks came along: resolved fires at its next round below,
     * reopens recovers at its second more at or below its max. */
    struct changes cs = { 0 };
    obj_eval(o, T0, read_source, &f->src, on_change, &cs);
    assert_int_equal(cs.n, 2); /* resolved: its own and the shorthand's all/resolution/1h */
    assert_int_equal(changes_of(&cs, O_RESOLVED, CMP_ALL, W1H), 1);
    assert_int_equal(changes_of(&cs, O_REOPENS, 0, W7D), 0);
    cs.n = 0;
    obj_eval(o, T0, read_source, &f->src, on_change, &cs);
    assert_int_equal(cs.n, 1);
    assert_int_equal(changes_of(&cs, O_REOPENS, 0, W7D), 1);
    assert_false(change_of(&cs, O_REOPENS, 0, W7D)->violated);
    assert_int_equal(change_of(&cs, O_REOPENS, 0, W7D)->episode, 2);
    obj_free(o);

    /* A reload: objectives in another order; answered's window is written
     * 1d (the same length); satisfaction now measures csat (another series:
     * dropped); resolved is gone; a new one starts met. */
    struct config *cfg2 = load(
        "tiers:\n"
        "  slow: { response: 4h }\n"
        "  fast: { response: 10m, resolution: 1h }\n"
        "compliance: { windows: [1h, 1d, 7d], objective: 0.9 }\n"
        "objectives:\n"
        "  - { name: fresh, kpi: fcr, min: 0.5 }\n"
        "  - { name: satisfaction, kpi: csat, tiers: [all], min: 0.8 }\n"
        "  - { name: reopens, kpi: reopen_rate, tiers: [fast, all], windows: [7d], max: 0.1 }\n"
        "  - { name: answered-in-24h, metric: response, windows: [1d], min: 0.90 }\n");
    assert_int_equal(obj_set_config(f->obj, cfg2), 0);
    cfg_free(f->cfg);
    f->cfg = cfg2;
    /* slow is tier 0 now, fast tier 1; objectives 0..3 as listed. */
    assert_true(obj_violated(f->obj, 2, 1, -1, W7D, &ep));
    assert_int_equal(ep, 2);
    assert_true(obj_violated(f->obj, 3, 0, -1, 1, &ep));
    assert_int_equal(ep, 1);
    assert_false(obj_violated(f->obj, 1, CMP_ALL, -1, W1H, &ep));
    assert_int_equal(ep, 0);
    assert_false(obj_violated(f->obj, 0, CMP_ALL, -1, W7D, &ep));
    assert_int_equal(ep, 0);
    /* The threshold is the new one. */
    assert_int_equal(obj_threshold_micro(cfg2, 2), 100000);
    wire_free(&b);
}

/* Damaged sections are refused, not crashed on; an unknown format too. */
static void
test_damaged_section(void **state)
{
    struct fx *f = *state;
    drive_violated(f, -1, CMP_KPI_REOPEN_RATE, 0, W7D, 90000);
    drive_violated(f, R, -1, 1, W24H, 100000);
    struct wire_buf b;
    wire_init(&b);
    assert_int_equal(obj_encode(f->obj, &b), 0);
    /* Three records: the shorthand's slow/response/24h (the same ratio is
     * below 0.9), answered-in-24h's and reopens'. Only whole records pass:
     * a cut inside one is refused. */
    int whole = 0;
    for (size_t cut = 0; cut < b.len; cut++) {
        struct objectives *o = obj_new(f->cfg);
        whole += obj_decode(o, b.data, cut) == 0;
        obj_free(o);
    }
    assert_int_equal(whole, 3); /* the header alone, and after each of two */
    struct objectives *o = obj_new(f->cfg);
    assert_int_equal(obj_decode(o, b.data, b.len), 0);
    assert_true(obj_violated(o, OBJ_SHORTHAND, 1, R, W24H, NULL));
    obj_free(o);
    o = obj_new(f->cfg);
    b.data[0] = 2;
    assert_int_equal(obj_decode(o, b.data, b.len), -1);
    b.data[0] = 1;
    b.data[4] = 'X';
    assert_int_equal(obj_decode(o, b.data, b.len), -1);
    obj_free(o);
    wire_free(&b);

    /* A record with both a metric and a KPI, or neither, is malformed. */
    for (int both = 0; both < 2; both++) {
        wire_init(&b);
        wire_put_u32(&b, 1);
        wire_put_u8(&b, 'S');
        wire_put_str(&b, "reopens", 7);
        wire_put_u8(&b, both ? R : 0xff);
        wire_put_u8(&b, both ? CMP_KPI_REOPEN_RATE : 0xff);
        wire_put_str(&b, "all", 3);
        wire_put_i64(&b, 7 * 86400000LL);
        wire_put_u8(&b, 1);
        wire_put_u8(&b, 0);
        wire_put_u32(&b, 1);
        o = obj_new(f->cfg);
        assert_int_equal(obj_decode(o, b.data, b.len), -1);
        obj_free(o);
        wire_free(&b);
    }
}

static void
test_format_micro(void **state)
{
    (void)state;
    char buf[OBJ_MICRO_BUFLEN];
    assert_string_equal(obj_format_micro(0, buf, sizeof(buf)), "0");
    assert_string_equal(obj_format_micro(750000, buf, sizeof(buf)), "0.75");
    assert_string_equal(obj_format_micro(911764, buf, sizeof(buf)), "0.911764");
    assert_string_equal(obj_format_micro(1000000, buf, sizeof(buf)), "1");
    assert_string_equal(obj_format_micro(4800000, buf, sizeof(buf)), "4.8");
    assert_string_equal(obj_format_micro(250000000, buf, sizeof(buf)), "250");
    assert_string_equal(obj_format_micro(1, buf, sizeof(buf)), "0.000001");
    assert_string_equal(cmp_kpi_name(CMP_KPI_CSAT_COUNT), "csat_count");
    assert_string_equal(cmp_kpi_name(CMP_KPI_COUNT), "?");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_coverage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kpi_max_hysteresis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_min_and_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_section, setup, teardown),
        cmocka_unit_test(test_format_micro),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
