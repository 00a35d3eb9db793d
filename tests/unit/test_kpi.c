/* Unit tests for the v2 parts of the compliance windows (compliance.c,
 * hist.c) and their publishing (report.c, without Redis): the support KPIs
 * against a reference model written here (random fact histories with an
 * injected clock, every window, tier and breakdown value, withdrawn
 * ratings, facts falling out of windows, breakdown values folded and
 * forgotten), the elapsed-time distributions of every metric against exact
 * quantiles, the checkpoint section (round trip, a section of the previous
 * format, a pinned one of this format) and a reload keeping what applies.
 * Every instant is injected. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slawatch/argv.h"
#include "slawatch/compliance.h"
#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/report.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define T0 (20775 * DAY) /* a midnight UTC in 2026 */
#define NT 2             /* tiers below; index NT stands for `all` */
#define NW 3             /* windows below */
#define NBY 2            /* breakdowns below: queue, agent */
#define MAXV 3           /* compliance.max_values below */

static const char *yaml =
    "tiers:\n"
    "  fast: { response: 10m, resolution: 1h }\n"
    "  slow: { response: 4h, resolution: 3d }\n"
    "compliance:\n"
    "  windows: [1h, 24h, 7d]\n"
    "  by: [queue, agent]\n"
    "  max_values: 3\n";

static const int64_t win_ms[NW] = { HOUR, DAY, 7 * DAY };
static const int by_attr[NBY] = { ATTR_QUEUE, ATTR_AGENT };

static struct config *
load(const char *text)
{
    struct config *cfg = cfg_load_string("test.yaml", text, strlen(text), stderr);
    assert_non_null(cfg);
    return cfg;
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t
rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? rng % n : 0;
}

static int64_t
fdiv(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* ---- the reference model ---------------------------------------------- */

/* The counters, in the order of struct cmp_kpi_counts. */
enum { R_RES, R_FCR, R_REO, R_GOOD, R_BAD, R_SCORED, R_SUM, R_N };

/* One series of the reference: a tier (0..NT) and either no breakdown
 * (by -1) or a breakdown value by name; its counts per (window, absolute
 * bucket), dropped once the bucket has left its window for good. */
struct cell {
    int w;
    int64_t bucket;
    int64_t v[R_N];
};

struct rseries {
    int tier, by;
    char value[16];
    struct cell cells[4 * 64 * NW];
    int n;
};

#define NSERIES 64

struct ref {
    struct rseries series[NSERIES];
    int nseries;
    int64_t head[NW];            /* newest bucket of each window */
    char place[NBY][MAXV][16];   /* values holding a place */
    int nplace[NBY];
    bool other[NBY];             /* _other holds a place */
    uint64_t saturated;
};

static int64_t
width(int w)
{
    return win_ms[w] / 60;
}

static bool
in_window(const struct ref *r, int w, int64_t bucket)
{
    return bucket <= r->head[w] && bucket > r->head[w] - 61;
}

static struct rseries *
series_of(struct ref *r, int tier, int by, const char *value, bool create)
{
    for (int i = 0; i < r->nseries; i++) {
        struct rseries *s = &r->series[i];
        if (s->tier == tier && s->by == by && (by < 0 || strcmp(s->value, value) == 0))
            return s;
    }
    if (!create)
        return NULL;
    assert_true(r->nseries < NSERIES);
    struct rseries *s = &r->series[r->nseries++];
    s->tier = tier;
    s->by = by;
    snprintf(s->value, sizeof(s->value), "%s", by < 0 ? "" : value);
    s->n = 0;
    return s;
}

static struct cell *
cell_of(struct ref *r, int tier, int by, const char *value, int w, int64_t bucket)
{
    struct rseries *s = series_of(r, tier, by, value, true);
    for (int i = 0; i < s->n; i++)
        if (s->cells[i].w == w && s->cells[i].bucket == bucket)
            return &s->cells[i];
    assert_true(s->n < (int)ARRAY_LEN(s->cells));
    struct cell *c = &s->cells[s->n++];
    memset(c, 0, sizeof(*c));
    c->w = w;
    c->bucket = bucket;
    return c;
}

/* All or nothing, as compliance.h promises: no count below zero, no
 * bucket with more reopens or first contacts than first resolutions, nor
 * more numeric ratings than ratings, nor a sum of scores that its numeric
 * ratings (1 to 5 each) cannot make. */
static void
ref_apply(struct ref *r, int tier, int by, const char *value, int w, int64_t bucket,
          const int64_t d[R_N], int sign)
{
    struct cell *c = cell_of(r, tier, by, value, w, bucket);
    int64_t next[R_N];
    for (int k = 0; k < R_N; k++) {
        next[k] = c->v[k] + sign * d[k];
        if (next[k] < 0 || next[k] > 0xffffffffLL) {
            r->saturated++;
            return;
        }
    }
    if (next[R_REO] > next[R_RES] || next[R_FCR] > next[R_RES] ||
        next[R_SCORED] > next[R_GOOD] + next[R_BAD] || next[R_SUM] < next[R_SCORED] ||
        next[R_SUM] > 5 * next[R_SCORED]) {
        r->saturated++;
        return;
    }
    memcpy(c->v, next, sizeof(next));
}

static int
place_of(const struct ref *r, int b, const char *v)
{
    for (int i = 0; i < r->nplace[b]; i++)
        if (strcmp(r->place[b][i], v) == 0)
            return i;
    return -1;
}

struct fact {
    enum kpi_fact kind;
    int tier;
    const char *attr[ATTR_COUNT];
    int64_t at;
    int delta;
    bool fcr;
    uint8_t score;
};

static void
ref_record(struct ref *r, const struct fact *f)
{
    int64_t d[R_N] = { 0 };
    int64_t bucket[NW];
    bool any = false;
    if (f->kind == KPI_FIRST_RESOLUTION) {
        d[R_RES] = 1;
        d[R_FCR] = f->fcr;
    } else if (f->kind == KPI_REOPEN) {
        d[R_REO] = 1;
    } else {
        bool good = f->score == SCORE_GOOD || f->score == 4 || f->score == 5;
        d[good ? R_GOOD : R_BAD] = 1;
        if (f->score >= 1 && f->score <= 5) {
            d[R_SCORED] = 1;
            d[R_SUM] = f->score;
        }
    }
    for (int w = 0; w < NW; w++) {
        bucket[w] = fdiv(f->at, width(w));
        if (bucket[w] > r->head[w])
            r->head[w] = bucket[w];
        if (!in_window(r, w, bucket[w]))
            continue;
        any = true;
        ref_apply(r, f->tier, -1, NULL, w, bucket[w], d, f->delta);
        ref_apply(r, NT, -1, NULL, w, bucket[w], d, f->delta);
    }
    if (!any)
        return;
    for (int b = 0; b < NBY; b++) {
        const char *v = f->attr[by_attr[b]] ? f->attr[by_attr[b]] : "_none";
        const char *holder = NULL;
        if (strcmp(v, "_other") != 0 && place_of(r, b, v) >= 0)
            holder = v;
        else if (f->delta > 0 && strcmp(v, "_other") != 0 && r->nplace[b] < MAXV) {
            snprintf(r->place[b][r->nplace[b]++], 16, "%s", v);
            holder = v;
        } else if (f->delta > 0 || r->other[b]) {
            r->other[b] = true;
            holder = "_other";
        }
        for (int w = 0; w < NW; w++) {
            if (!in_window(r, w, bucket[w]))
                continue;
            if (holder == NULL) {
                r->saturated += 2;
                continue;
            }
            ref_apply(r, f->tier, b, holder, w, bucket[w], d, f->delta);
            ref_apply(r, NT, b, holder, w, bucket[w], d, f->delta);
        }
    }
}

/* The counts of a series in window w: its cells in the window. */
static void
ref_counts(const struct ref *r, int tier, int by, const char *value, int w, int64_t v[R_N])
{
    memset(v, 0, R_N * sizeof(v[0]));
    const struct rseries *s = series_of((struct ref *)r, tier, by, value, false);
    for (int i = 0; s && i < s->n; i++) {
        const struct cell *c = &s->cells[i];
        if (c->w != w || !in_window(r, w, c->bucket))
            continue;
        for (int k = 0; k < R_N; k++)
            v[k] += c->v[k];
    }
}

static bool
ref_series_live(const struct ref *r, int tier, int by, const char *value)
{
    for (int w = 0; w < NW; w++) {
        int64_t v[R_N];
        ref_counts(r, tier, by, value, w, v);
        for (int k = 0; k < R_N; k++)
            if (v[k])
                return true;
    }
    return false;
}

static bool
ref_value_live(const struct ref *r, int by, const char *value)
{
    for (int t = 0; t <= NT; t++)
        if (ref_series_live(r, t, by, value))
            return true;
    return false;
}

/* cmp_advance: the windows move, then values without a live series go. */
static void
ref_advance(struct ref *r, int64_t now)
{
    for (int w = 0; w < NW; w++)
        if (fdiv(now, width(w)) > r->head[w])
            r->head[w] = fdiv(now, width(w));
    for (int i = 0; i < r->nseries; i++) {
        struct rseries *s = &r->series[i];
        int n = 0;
        for (int j = 0; j < s->n; j++)
            if (in_window(r, s->cells[j].w, s->cells[j].bucket))
                s->cells[n++] = s->cells[j];
        s->n = n;
    }
    for (int b = 0; b < NBY; b++) {
        for (int i = 0; i < r->nplace[b];) {
            if (ref_value_live(r, b, r->place[b][i])) {
                i++;
                continue;
            }
            memmove(r->place[b][i], r->place[b][i + 1],
                    (size_t)(r->nplace[b] - i - 1) * sizeof(r->place[b][0]));
            r->nplace[b]--;
        }
        if (r->other[b] && !ref_value_live(r, b, "_other"))
            r->other[b] = false;
    }
}

/* The published text of a KPI from the reference's counts, computed apart
 * from cmp_format_kpi: millionths in 128 bits, then the digits. */
static bool
ref_text(const int64_t v[R_N], int kpi, char *buf, size_t len)
{
    unsigned __int128 num, den;
    switch (kpi) {
    case CMP_KPI_FCR: num = (unsigned __int128)v[R_FCR]; den = (unsigned __int128)v[R_RES]; break;
    case CMP_KPI_REOPEN_RATE: num = (unsigned __int128)v[R_REO]; den = (unsigned __int128)v[R_RES]; break;
    case CMP_KPI_CSAT: num = (unsigned __int128)v[R_GOOD]; den = (unsigned __int128)(v[R_GOOD] + v[R_BAD]); break;
    case CMP_KPI_CSAT_MEAN: num = (unsigned __int128)v[R_SUM]; den = (unsigned __int128)v[R_SCORED]; break;
    default:
        if (v[R_GOOD] + v[R_BAD] == 0)
            return false;
        snprintf(buf, len, "%lld", (long long)(v[R_GOOD] + v[R_BAD]));
        return true;
    }
    if (den == 0)
        return false;
    unsigned long long micro = (unsigned long long)(num * 1000000 / den);
    char digits[8];
    snprintf(digits, sizeof(digits), "%06llu", micro % 1000000);
    int n = 6;
    while (n > 0 && digits[n - 1] == '0')
        digits[--n] = '\0';
    if (n == 0)
        snprintf(buf, len, "%llu", micro / 1000000);
    else
        snprintf(buf, len, "%llu.%s", micro / 1000000, digits);
    return true;
}

static void
assert_counts(const struct cmp_kpi_counts *k, const int64_t v[R_N], const char *what)
{
    const uint64_t got[R_N] = { k->resolved, k->fcr, k->reopened, k->good,
                                k->bad, k->scored, k->score_sum };
    for (int i = 0; i < R_N; i++)
        if (got[i] != (uint64_t)v[i])
            fail_msg("%s: counter %d is %llu, the reference says %lld", what, i,
                     (unsigned long long)got[i], (long long)v[i]);
}

struct seen {
    int n;
    int tier[256], attr[256];
    char value[256][16];
};

static void
collect(void *arg, const struct cmp_kpi_series *s)
{
    struct seen *sn = arg;
    assert_true(sn->n < 256);
    sn->tier[sn->n] = s->tier;
    sn->attr[sn->n] = s->attr;
    snprintf(sn->value[sn->n], 16, "%s", s->value ? s->value : "");
    sn->n++;
}

static int
ix_tier(int t)
{
    return t == NT ? CMP_ALL : t;
}

/* Every series of the implementation against the reference. */
static void
check_all(const struct compliance *c, const struct ref *r, const char *when)
{
    char what[160], got[CMP_KPI_BUFLEN], want[CMP_KPI_BUFLEN];
    struct cmp_kpi_counts k;
    int64_t v[R_N];
    int want_series = NT + 1;

    for (int t = 0; t <= NT; t++)
        for (int w = 0; w < NW; w++) {
            snprintf(what, sizeof(what), "%s: tier %d window %d", when, t, w);
            assert_true(cmp_kpi(c, ix_tier(t), -1, NULL, w, &k));
            ref_counts(r, t, -1, NULL, w, v);
            assert_counts(&k, v, what);
            for (int kpi = 0; kpi < CMP_KPI_COUNT; kpi++) {
                bool have = ref_text(v, kpi, want, sizeof(want));
                char *p = cmp_format_kpi(&k, kpi, got);
                double d;
                if (!have) {
                    assert_null(p);
                    assert_false(cmp_kpi_value(c, ix_tier(t), kpi, w, &d));
                    continue;
                }
                assert_non_null(p);
                if (strcmp(got, want) != 0)
                    fail_msg("%s %s: %s, the reference says %s", what, cmp_kpi_name(kpi), got,
                             want);
                assert_true(cmp_kpi_value(c, ix_tier(t), kpi, w, &d));
                assert_true(d == strtod(want, NULL));
            }
        }
    for (int b = 0; b < NBY; b++)
        for (int i = 0; i <= r->nplace[b]; i++) {
            const char *value = i < r->nplace[b] ? r->place[b][i] : "_other";
            if (i == r->nplace[b] && !r->other[b]) {
                /* Nothing holds _other: the implementation has none either. */
                assert_false(cmp_kpi(c, CMP_ALL, by_attr[b], "_other", 0, &k));
                continue;
            }
            for (int t = 0; t <= NT; t++) {
                bool live = ref_series_live(r, t, b, value);
                want_series += live;
                for (int w = 0; w < NW; w++) {
                    snprintf(what, sizeof(what), "%s: %s=%s tier %d window %d", when,
                             cfg_attr_name(by_attr[b]), value, t, w);
                    bool have = cmp_kpi(c, ix_tier(t), by_attr[b], value, w, &k);
                    if (have != live)
                        fail_msg("%s: series %s, the reference says %s", what,
                                 have ? "present" : "absent", live ? "live" : "empty");
                    ref_counts(r, t, b, value, w, v);
                    if (have)
                        assert_counts(&k, v, what);
                }
            }
        }
    struct seen sn = { 0 };
    cmp_kpi_foreach(c, collect, &sn);
    if (sn.n != want_series)
        fail_msg("%s: %d series, the reference has %d", when, sn.n, want_series);
    for (int i = 0; i < sn.n; i++)
        if (sn.attr[i] >= 0) {
            int b = sn.attr[i] == ATTR_QUEUE ? 0 : 1;
            assert_true(strcmp(sn.value[i], "_other") == 0 ? r->other[b]
                                                          : place_of(r, b, sn.value[i]) >= 0);
        }
    if (cmp_kpi_saturated(c) != r->saturated)
        fail_msg("%s: %llu facts saturated, the reference says %llu", when,
                 (unsigned long long)cmp_kpi_saturated(c), (unsigned long long)r->saturated);
}

/* ---- random histories ----------------------------------------------------- */

static const char *const queues[] = { "q0", "q1", "q2", "q3", "q4", "_other", NULL };
static const char *const agents[] = { "a0", "a1", NULL };

struct tk {
    int tier;
    const char *queue, *agent;
    int64_t resolved_at;         /* -1: never resolved */
    bool reopened;
    uint8_t score;               /* SCORE_NONE: not rated */
    int64_t rated_at;
};

static void
tell(struct compliance *c, struct ref *r, const struct tk *t, enum kpi_fact kind,
     int64_t at, int delta, bool fcr, uint8_t score)
{
    struct fact f = { kind, t->tier, { NULL }, at, delta, fcr, score };
    f.attr[ATTR_QUEUE] = t->queue;
    f.attr[ATTR_AGENT] = t->agent;
    struct sla_kpi k = { .fact = kind, .tier_index = t->tier, .at_ms = at,
                         .delta = delta, .fcr = fcr, .score = score };
    memcpy(k.attr, f.attr, sizeof(k.attr));
    /* A breakdown value that cannot be allocated is the only failure. */
    assert_int_equal(cmp_record_kpi(c, &k), 0);
    ref_record(r, &f);
}

/* A history of first resolutions, reopens, ratings and their
 * replacements, tickets moving between queues in between, facts stamped
 * from now back to 8 days, the clock moving by minutes and sometimes days;
 * checked against the reference after every advance. */
static void
run_history(const struct config *cfg, int steps, uint64_t seed, struct compliance **out,
            struct ref **out_ref, int64_t *out_now)
{
    enum { NTK = 400 };
    static struct tk tk[NTK];
    struct ref *r = calloc(1, sizeof(*r));
    int64_t now = T0;
    struct compliance *c = cmp_new(cfg, now);
    assert_non_null(c);
    for (int w = 0; w < NW; w++)
        r->head[w] = fdiv(now, width(w));
    rng = seed;
    for (int i = 0; i < NTK; i++)
        tk[i] = (struct tk){ (int)rnd(NT), queues[rnd(7)], agents[rnd(3)], -1, false,
                                 SCORE_NONE, 0 };
    for (int step = 0; step < steps; step++) {
        struct tk *t = &tk[rnd(NTK)];
        uint64_t dice = rnd(100);
        int64_t back = rnd(10) == 0 ? (int64_t)rnd(8 * DAY) : (int64_t)rnd(30 * MIN);
        if (dice < 8) {
            t->queue = queues[rnd(7)]; /* moved: later facts land elsewhere */
        } else if (dice < 10) {
            t->tier = (int)rnd(NT);
        } else if (dice < 40) {
            if (t->resolved_at < 0) {
                t->resolved_at = now - back;
                tell(c, r, t, KPI_FIRST_RESOLUTION, t->resolved_at, 1, rnd(3) != 0, 0);
            } else if (!t->reopened) {
                t->reopened = true;
                tell(c, r, t, KPI_REOPEN, t->resolved_at, 1, false, 0);
            }
        } else if (dice < 70) {
            static const uint8_t scores[] = { 1, 2, 3, 4, 5, 5, 4, SCORE_GOOD, SCORE_BAD };
            if (t->score != SCORE_NONE)
                tell(c, r, t, KPI_RATING, t->rated_at, -1, false, t->score);
            t->score = scores[rnd(ARRAY_LEN(scores))];
            t->rated_at = (now - back) / SEC * SEC;
            tell(c, r, t, KPI_RATING, t->rated_at, 1, false, t->score);
        } else if (dice < 72) {
            /* A ticket forgotten and seen again: a new first resolution. */
            *t = (struct tk){ (int)rnd(NT), queues[rnd(7)], agents[rnd(3)], -1, false,
                                  SCORE_NONE, 0 };
        } else {
            now += rnd(20) == 0 ? (int64_t)rnd(3 * DAY) : (int64_t)rnd(20 * MIN);
            cmp_advance(c, now);
            ref_advance(r, now);
            char when[32];
            snprintf(when, sizeof(when), "step %d", step);
            check_all(c, r, when);
        }
    }
    cmp_advance(c, now);
    ref_advance(r, now);
    check_all(c, r, "end");
    *out = c;
    *out_ref = r;
    *out_now = now;
}

static void
ref_free(struct ref *r)
{
    free(r);
}

static void
test_kpi_random_histories(void **state)
{
    (void)state;
    struct config *cfg = load(yaml);
    for (uint64_t seed = 1; seed <= 6; seed++) {
        struct compliance *c;
        struct ref *r;
        int64_t now;
        run_history(cfg, 3000, seed * 0x9e3779b97f4a7c15ULL, &c, &r, &now);
        /* The histories must have reached the cases they are for. */
        assert_true(r->saturated > 0);
        ref_free(r);
        cmp_free(c);
    }
    cfg_free(cfg);
}

/* ---- hand-made cases -------------------------------------------------- */

static struct sla_kpi
kpi_fact(enum kpi_fact kind, int tier, const char *queue, int64_t at, int delta, bool fcr,
         uint8_t score)
{
    struct sla_kpi k = { .fact = kind, .tier_index = tier, .at_ms = at, .delta = delta,
                         .fcr = fcr, .score = score };
    k.attr[ATTR_QUEUE] = queue;
    return k;
}

static void
fact(struct compliance *c, enum kpi_fact kind, int tier, const char *queue, int64_t at,
     int delta, bool fcr, uint8_t score)
{
    struct sla_kpi k = kpi_fact(kind, tier, queue, at, delta, fcr, score);
    assert_int_equal(cmp_record_kpi(c, &k), 0);
}

static const char *
text(const struct compliance *c, int tier, int kpi, int w, char *buf)
{
    struct cmp_kpi_counts k;
    assert_true(cmp_kpi(c, tier, -1, NULL, w, &k));
    return cmp_format_kpi(&k, kpi, buf) ? buf : "(absent)";
}

/* Each KPI's definition on a small history, the formats, the window
 * boundaries of a reopen counted at its resolution, a withdrawn rating. */
static void
test_kpi_definitions(void **state)
{
    (void)state;
    struct config *cfg = load(yaml);
    struct compliance *c = cmp_new(cfg, T0);
    char buf[CMP_KPI_BUFLEN];

    for (int k = 0; k < CMP_KPI_COUNT; k++)
        assert_string_equal(text(c, 0, k, 0, buf), "(absent)");
    /* Three first resolutions of fast at T0, two at first contact; one of
     * them reopened at T0 + 50 min (counted at T0). */
    fact(c, KPI_FIRST_RESOLUTION, 0, "q", T0, 1, true, 0);
    fact(c, KPI_FIRST_RESOLUTION, 0, "q", T0, 1, true, 0);
    fact(c, KPI_FIRST_RESOLUTION, 0, "q", T0 + 30 * SEC, 1, false, 0);
    fact(c, KPI_REOPEN, 0, "q", T0, 1, false, 0);
    assert_string_equal(text(c, 0, CMP_KPI_FCR, 0, buf), "0.666666");
    assert_string_equal(text(c, 0, CMP_KPI_REOPEN_RATE, 0, buf), "0.333333");
    assert_string_equal(text(c, 1, CMP_KPI_FCR, 0, buf), "(absent)");
    assert_string_equal(text(c, CMP_ALL, CMP_KPI_FCR, 2, buf), "0.666666");
    /* Ratings: 5, 4, 2 and `bad`: csat 2/4, mean of the numeric 11/3. */
    fact(c, KPI_RATING, 0, "q", T0, 1, false, 5);
    fact(c, KPI_RATING, 0, "q", T0, 1, false, 4);
    fact(c, KPI_RATING, 0, "q", T0, 1, false, 2);
    fact(c, KPI_RATING, 0, "q", T0 + MIN, 1, false, SCORE_BAD);
    assert_string_equal(text(c, 0, CMP_KPI_CSAT, 0, buf), "0.5");
    assert_string_equal(text(c, 0, CMP_KPI_CSAT_MEAN, 0, buf), "3.666666");
    assert_string_equal(text(c, 0, CMP_KPI_CSAT_COUNT, 0, buf), "4");
    double d;
    assert_true(cmp_kpi_value(c, 0, CMP_KPI_CSAT_MEAN, 0, &d));
    assert_true(d == 3.666666);
    assert_true(cmp_kpi_value(c, 0, CMP_KPI_CSAT_COUNT, 0, &d));
    assert_true(d == 4.0);
    /* The 2 is replaced by a `good` at T0 + 2 min: withdrawn at T0. */
    fact(c, KPI_RATING, 0, "q", T0, -1, false, 2);
    fact(c, KPI_RATING, 0, "q", T0 + 2 * MIN, 1, false, SCORE_GOOD);
    assert_string_equal(text(c, 0, CMP_KPI_CSAT, 0, buf), "0.75");
    assert_string_equal(text(c, 0, CMP_KPI_CSAT_MEAN, 0, buf), "4.5");
    assert_string_equal(text(c, 0, CMP_KPI_CSAT_COUNT, 0, buf), "4");
    struct cmp_kpi_counts k;
    assert_true(cmp_kpi(c, 0, ATTR_QUEUE, "q", 0, &k));
    assert_int_equal(k.good, 3);
    assert_int_equal(k.bad, 1);
    assert_int_equal(k.scored, 2);
    assert_int_equal(cmp_kpi_saturated(c), 0);
    /* A withdrawal with nothing to take from saturates, never wraps: at
     * T0 - 3 h, out of the 1h window (skipped), in empty buckets of the
     * 24h and 7d ones, for slow, all, the queue zz (no place, no _other)
     * and the agent _none (a place, but no series of slow). */
    fact(c, KPI_RATING, 1, "zz", T0 - 3 * HOUR, -1, false, 1);
    assert_int_equal(cmp_kpi_saturated(c), 2 * (2 + 2 + 2));
    assert_true(cmp_kpi(c, CMP_ALL, -1, NULL, 2, &k));
    assert_int_equal(k.bad, 1);
    assert_int_equal(k.scored, 2);
    /* Nonsense is refused whole. */
    struct sla_kpi bad = kpi_fact(KPI_RATING, 0, "q", T0, 1, false, 0);
    assert_int_equal(cmp_record_kpi(c, &bad), -1);
    bad.score = 8;
    assert_int_equal(cmp_record_kpi(c, &bad), -1);
    bad = kpi_fact(KPI_RATING, 0, "q", T0, 2, false, 5);
    assert_int_equal(cmp_record_kpi(c, &bad), -1);
    bad = kpi_fact(KPI_FIRST_RESOLUTION, 7, "q", T0, 1, false, 0);
    assert_int_equal(cmp_record_kpi(c, &bad), -1);
    assert_true(cmp_kpi(c, 0, -1, NULL, 0, &k));
    assert_int_equal(k.good + k.bad, 4);

    /* The 1h window holds T0's bucket until T0 + 61 min - 1 ms. */
    cmp_advance(c, T0 + 61 * MIN - 1);
    assert_string_equal(text(c, 0, CMP_KPI_FCR, 0, buf), "0.666666");
    cmp_advance(c, T0 + 61 * MIN);
    assert_string_equal(text(c, 0, CMP_KPI_FCR, 0, buf), "(absent)");
    assert_string_equal(text(c, 0, CMP_KPI_CSAT_COUNT, 0, buf), "2"); /* at 1 and 2 min */
    assert_string_equal(text(c, 0, CMP_KPI_REOPEN_RATE, 1, buf), "0.333333");
    /* A reopen of a resolution the 1h window no longer holds still
     * counts where its resolution is. */
    fact(c, KPI_REOPEN, 0, "q", T0 + 30 * SEC, 1, false, 0);
    assert_string_equal(text(c, 0, CMP_KPI_REOPEN_RATE, 1, buf), "0.666666");
    assert_string_equal(text(c, 0, CMP_KPI_REOPEN_RATE, 0, buf), "(absent)");
    /* A fourth reopen of three resolutions saturates. */
    uint64_t before = cmp_kpi_saturated(c);
    fact(c, KPI_REOPEN, 0, "q", T0, 1, false, 0);
    fact(c, KPI_REOPEN, 0, "q", T0, 1, false, 0);
    assert_string_equal(text(c, 0, CMP_KPI_REOPEN_RATE, 1, buf), "1");
    assert_true(cmp_kpi_saturated(c) > before);
    /* Everything leaves the 7d window. */
    cmp_advance(c, T0 + 8 * DAY);
    struct seen sn = { 0 };
    cmp_kpi_foreach(c, collect, &sn);
    assert_int_equal(sn.n, NT + 1); /* the tiers and all; q was forgotten */
    assert_false(cmp_kpi(c, 0, ATTR_QUEUE, "q", 2, &k));

    assert_string_equal(cmp_kpi_name(CMP_KPI_REOPEN_RATE), "reopen_rate");
    assert_string_equal(cmp_kpi_name(CMP_KPI_COUNT), "?");
    assert_string_equal(cmp_kpi_name(-1), "?");
    assert_int_equal(cmp_kpi_by_name("csat_mean", 9), CMP_KPI_CSAT_MEAN);
    assert_int_equal(cmp_kpi_by_name("csat_me", 7), -1);
    cmp_free(c);
    cfg_free(cfg);
}

/* A value's place holds its ratio and KPI series together: KPIs of a new
 * value past max_values go to _other, a value is forgotten only once both
 * kinds are empty. */
static void
test_kpi_breakdown_places(void **state)
{
    (void)state;
    struct config *cfg = load(yaml);
    struct compliance *c = cmp_new(cfg, T0);
    const char *attrs[ATTR_COUNT] = { NULL };
    struct cmp_kpi_counts k;

    attrs[ATTR_QUEUE] = "r1";
    assert_int_equal(cmp_record(c, 0, METRIC_RESPONSE, true, T0, attrs), 0); /* r1 */
    fact(c, KPI_FIRST_RESOLUTION, 0, "k1", T0, 1, true, 0);                  /* k1 */
    fact(c, KPI_FIRST_RESOLUTION, 0, NULL, T0, 1, true, 0);                  /* _none */
    fact(c, KPI_FIRST_RESOLUTION, 1, "k2", T0, 1, false, 0);                 /* _other */
    fact(c, KPI_FIRST_RESOLUTION, 0, "_other", T0, 1, false, 0);
    assert_false(cmp_kpi(c, 1, ATTR_QUEUE, "k2", 0, &k));
    assert_true(cmp_kpi(c, CMP_ALL, ATTR_QUEUE, "_other", 0, &k));
    assert_int_equal(k.resolved, 2);
    assert_int_equal(k.fcr, 0);
    assert_true(cmp_kpi(c, 0, ATTR_QUEUE, NULL, 0, &k));
    assert_int_equal(k.resolved, 1);
    assert_false(cmp_kpi(c, 0, ATTR_QUEUE, "r1", 0, &k)); /* a place, no KPIs */
    /* Two hours on, r1's outcome has left the 1h window but not the 7d
     * one: its ratio series keeps its place, so k3 still has none. */
    cmp_advance(c, T0 + 2 * HOUR);
    fact(c, KPI_FIRST_RESOLUTION, 0, "k3", T0 + 2 * HOUR, 1, true, 0);
    assert_false(cmp_kpi(c, 0, ATTR_QUEUE, "k3", 2, &k)); /* still no place */
    /* Eight days on everything is forgotten, and a new value takes a place. */
    cmp_advance(c, T0 + 8 * DAY);
    fact(c, KPI_FIRST_RESOLUTION, 0, "k3", T0 + 8 * DAY, 1, true, 0);
    assert_true(cmp_kpi(c, 0, ATTR_QUEUE, "k3", 2, &k));
    assert_int_equal(k.fcr, 1);
    /* A withdrawal never creates a value: the agent a9 has no place, and
     * nothing holds _other for agents. */
    struct sla_kpi w = kpi_fact(KPI_RATING, 0, "k3", T0 + 8 * DAY, -1, false, 5);
    w.attr[ATTR_AGENT] = "a9";
    assert_int_equal(cmp_record_kpi(c, &w), 0);
    assert_false(cmp_kpi(c, 0, ATTR_AGENT, "a9", 2, &k));
    assert_false(cmp_kpi(c, 0, ATTR_AGENT, "_other", 2, &k));
    cmp_free(c);
    cfg_free(cfg);
}

/* ---- elapsed-time distributions -------------------------------------- */

struct sample {
    int tier, metric;
    int64_t at, elapsed;
};

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void
assert_close(int64_t got, int64_t want, const char *what)
{
    int64_t err = got > want ? got - want : want - got;
    if (err > want / 32 + 1)
        fail_msg("%s: %lld, exact %lld: off by more than 1/32", what, (long long)got,
                 (long long)want);
}

/* Every metric's distribution, per tier and all and window, against the
 * exact nearest-rank quantiles and mean of the samples the window holds;
 * samples spread over ten days so that each window drops some. */
static void
test_elapsed_every_metric(void **state)
{
    (void)state;
    enum { N = 6000 };
    static struct sample smp[N];
    static int64_t v[N];
    struct config *cfg = load(yaml);
    int64_t now = T0;
    struct compliance *c = cmp_new(cfg, now);
    rng = 0x1234567;
    for (int i = 0; i < N; i++) {
        now += (int64_t)rnd(2 * MIN);
        int metric = (int)rnd(METRIC_COUNT);
        /* Log-uniform from 1 ms to about 12 days, different per metric. */
        double u = (double)rnd(1u << 30) / (double)(1u << 30);
        int64_t e = (int64_t)__builtin_pow(2.0, (20.0 + 10.0 * metric / METRIC_COUNT) * u);
        smp[i] = (struct sample){ (int)rnd(NT), metric, now - (int64_t)rnd(HOUR), e };
        assert_int_equal(cmp_record_elapsed(c, smp[i].tier, metric, smp[i].at, e), 0);
    }
    cmp_advance(c, now);
    int checked = 0;
    for (int m = 0; m < METRIC_COUNT; m++)
        for (int t = 0; t <= NT; t++)
            for (int w = 0; w < NW; w++) {
                int64_t head = fdiv(now, width(w));
                int n = 0;
                uint64_t sum = 0;
                for (int i = 0; i < N; i++) {
                    int64_t b = fdiv(smp[i].at, width(w));
                    if (smp[i].metric != m || (t < NT && smp[i].tier != t) ||
                        b <= head - 61 || b > head)
                        continue;
                    v[n++] = smp[i].elapsed;
                    sum += (uint64_t)smp[i].elapsed;
                }
                struct cmp_latency l;
                char what[64];
                snprintf(what, sizeof(what), "metric %d tier %d window %d", m, t, w);
                bool have = cmp_elapsed(c, ix_tier(t), m, w, &l);
                assert_int_equal(have, n > 0);
                if (!have)
                    continue;
                qsort(v, (size_t)n, sizeof(v[0]), cmp_i64);
                assert_int_equal(l.count, n);
                assert_int_equal(l.mean_ms, (int64_t)((sum + (uint64_t)n / 2) / (uint64_t)n));
                int ranks[] = { 50, 90, 99 };
                int64_t got[] = { l.p50_ms, l.p90_ms, l.p99_ms };
                for (int q = 0; q < 3; q++) {
                    int rank = (n * ranks[q] + 99) / 100;
                    assert_close(got[q], v[(rank ? rank : 1) - 1], what);
                }
                checked++;
            }
    assert_int_equal(checked, METRIC_COUNT * (NT + 1) * NW);
    /* The response metric is what cmp_latency reads. */
    struct cmp_latency a, b;
    assert_true(cmp_latency(c, CMP_ALL, 2, &a));
    assert_true(cmp_elapsed(c, CMP_ALL, METRIC_RESPONSE, 2, &b));
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_equal(cmp_record_elapsed(c, 0, METRIC_COUNT, now, 5), -1);
    assert_int_equal(cmp_record_elapsed(c, 5, METRIC_RESPONSE, now, 5), -1);
    cmp_free(c);
    cfg_free(cfg);
}

/* ---- checkpoint ------------------------------------------------------- */

static void
assert_same(const struct compliance *a, const struct compliance *b, int ntiers, int nwin)
{
    struct seen sa = { 0 }, sb = { 0 };
    cmp_kpi_foreach(a, collect, &sa);
    cmp_kpi_foreach(b, collect, &sb);
    assert_int_equal(sa.n, sb.n);
    for (int i = 0; i < sa.n; i++)
        for (int w = 0; w < nwin; w++) {
            struct cmp_kpi_counts x, y;
            const char *v = sa.attr[i] >= 0 ? sa.value[i] : NULL;
            assert_true(cmp_kpi(a, sa.tier[i], sa.attr[i], v, w, &x));
            assert_true(cmp_kpi(b, sa.tier[i], sa.attr[i], v, w, &y));
            assert_memory_equal(&x, &y, sizeof(x));
        }
    for (int m = 0; m < METRIC_COUNT; m++)
        for (int t = 0; t <= ntiers; t++)
            for (int w = 0; w < nwin; w++) {
                struct cmp_latency x, y;
                int tier = t == ntiers ? CMP_ALL : t;
                assert_int_equal(cmp_elapsed(a, tier, m, w, &x), cmp_elapsed(b, tier, m, w, &y));
                assert_memory_equal(&x, &y, sizeof(x));
            }
}

/* A random history, encoded and decoded after a restart: the same counts
 * and distributions, the same again after the windows move on. */
static void
test_kpi_encode_decode(void **state)
{
    (void)state;
    struct config *cfg = load(yaml);
    struct compliance *c;
    struct ref *r;
    int64_t now;
    run_history(cfg, 2000, 77, &c, &r, &now);
    for (int i = 0; i < 500; i++)
        assert_int_equal(cmp_record_elapsed(c, (int)rnd(NT), (int)rnd(METRIC_COUNT),
                                            now - (int64_t)rnd(3 * DAY), (int64_t)rnd(DAY)),
                         0);
    struct wire_buf b;
    wire_init(&b);
    assert_int_equal(cmp_encode(c, &b), 0);
    struct compliance *d = cmp_new(cfg, now + MIN);
    assert_int_equal(cmp_decode(d, b.data, b.len), 0);
    cmp_advance(c, now + MIN);
    cmp_advance(d, now + MIN);
    ref_advance(r, now + MIN);
    assert_same(c, d, NT, NW);
    r->saturated = 0; /* a decoded section starts counting anew */
    check_all(d, r, "decoded");
    cmp_advance(c, now + 30 * HOUR);
    cmp_advance(d, now + 30 * HOUR);
    assert_same(c, d, NT, NW);
    cmp_free(d);

    /* Damage is refused, never crashed on. */
    for (size_t cut = 1; cut < b.len; cut += 11) {
        d = cmp_new(cfg, now);
        int rc = cmp_decode(d, b.data, cut);
        assert_true(rc == 0 || rc == -1);
        cmp_free(d);
    }
    /* A KPI record with more reopens than resolutions is malformed. */
    struct wire_buf k;
    wire_init(&k);
    wire_put_u32(&k, 3);
    wire_put_u32(&k, 1);
    wire_put_i64(&k, HOUR);
    wire_put_i64(&k, fdiv(now, width(0)));
    wire_put_u8(&k, 'K');
    wire_put_str(&k, "all", 3);
    wire_put_u8(&k, 0xff);
    wire_put_u8(&k, 0);
    wire_put_u8(&k, 1);
    wire_put_u8(&k, 0);
    const uint32_t counts[7] = { 1, 0, 2, 0, 0, 0, 0 };
    for (int i = 0; i < 7; i++)
        wire_put_u32(&k, counts[i]);
    d = cmp_new(cfg, now);
    assert_int_equal(cmp_decode(d, k.data, k.len), -1);
    k.data[k.len - 5 * 4] = 1; /* reopened (the third count): 1 of 1 */
    cmp_free(d);
    d = cmp_new(cfg, now);
    assert_int_equal(cmp_decode(d, k.data, k.len), 0);
    char buf[CMP_KPI_BUFLEN];
    assert_string_equal(text(d, CMP_ALL, CMP_KPI_REOPEN_RATE, 0, buf), "1");
    cmp_free(d);
    wire_free(&k);

    /* An elapsed-time slot whose sum its count and bounds cannot give, or
     * with no samples, is malformed (its sum would stay in the totals). */
    static const struct { uint32_t count; uint64_t sum; int64_t lo, hi; int ok; } slots[] = {
        { 2, 25, 10, 15, 1 }, { 2, 19, 10, 15, 0 }, { 2, 31, 10, 15, 0 },
        { 0, 0, 0, 0, 0 },    { 1, 5, -5, 5, 0 },   { 1, 12, 15, 10, 0 },
    };
    for (size_t i = 0; i < ARRAY_LEN(slots); i++) {
        wire_init(&k);
        wire_put_u32(&k, 3);
        wire_put_u32(&k, 1);
        wire_put_i64(&k, HOUR);
        wire_put_i64(&k, fdiv(now, width(0)));
        wire_put_u8(&k, 'E');
        wire_put_str(&k, "fast", 4);
        wire_put_u8(&k, METRIC_RESOLUTION);
        wire_put_u8(&k, 0);
        wire_put_u8(&k, 1);
        wire_put_u8(&k, 0);
        wire_put_u32(&k, slots[i].count);
        wire_put_u64(&k, slots[i].sum);
        wire_put_i64(&k, slots[i].lo);
        wire_put_i64(&k, slots[i].hi);
        wire_put_u16(&k, slots[i].count ? 2 : 0);
        if (slots[i].count) {
            wire_put_u16(&k, 10);
            wire_put_u32(&k, 1);
            wire_put_u16(&k, 15);
            wire_put_u32(&k, slots[i].count - 1);
        }
        d = cmp_new(cfg, now);
        assert_int_equal(cmp_decode(d, k.data, k.len), slots[i].ok ? 0 : -1);
        struct cmp_latency l;
        if (slots[i].ok) {
            assert_true(cmp_elapsed(d, 0, METRIC_RESOLUTION, 0, &l));
            assert_int_equal(l.mean_ms, 13); /* 12.5, rounded */
            assert_int_equal(l.p50_ms, 10);
            assert_int_equal(l.p99_ms, 15);
        }
        cmp_free(d);
        wire_free(&k);
    }
    /* A refused slot leaves the slot as it was: a good record, then one
     * for the same slot whose bins do not add up to its count. */
    wire_init(&k);
    wire_put_u32(&k, 3);
    wire_put_u32(&k, 1);
    wire_put_i64(&k, HOUR);
    wire_put_i64(&k, fdiv(now, width(0)));
    for (int i = 0; i < 2; i++) {
        wire_put_u8(&k, 'E');
        wire_put_str(&k, "fast", 4);
        wire_put_u8(&k, METRIC_RESPONSE);
        wire_put_u8(&k, 0);
        wire_put_u8(&k, 1);
        wire_put_u8(&k, 0);
        wire_put_u32(&k, 2);
        wire_put_u64(&k, 2 * 500);
        wire_put_i64(&k, 500);
        wire_put_i64(&k, 500);
        wire_put_u16(&k, 2);
        wire_put_u16(&k, 100);
        wire_put_u32(&k, 1);
        wire_put_u16(&k, i == 0 ? 100 : CMP_LAT_BINS); /* the second: no such bin */
        wire_put_u32(&k, 1);
    }
    d = cmp_new(cfg, now);
    assert_int_equal(cmp_decode(d, k.data, k.len), -1);
    struct cmp_latency kept;
    assert_true(cmp_elapsed(d, 0, METRIC_RESPONSE, 0, &kept));
    assert_int_equal(kept.count, 2);
    assert_int_equal(kept.mean_ms, 500);
    struct wire_buf again;
    wire_init(&again);
    assert_int_equal(cmp_encode(d, &again), 0);
    struct compliance *d2 = cmp_new(cfg, now);
    assert_int_equal(cmp_decode(d2, again.data, again.len), 0); /* what stays encodes */
    cmp_free(d2);
    wire_free(&again);
    cmp_free(d);
    wire_free(&k);

    /* A section may name a series twice; sums that would wrap are
     * refused (the slot would no longer encode to what decodes). */
    for (int records = 2; records <= 3; records++) {
        wire_init(&k);
        wire_put_u32(&k, 3);
        wire_put_u32(&k, 1);
        wire_put_i64(&k, HOUR);
        wire_put_i64(&k, fdiv(now, width(0)));
        for (int i = 0; i < records; i++) {
            wire_put_u8(&k, 'E');
            wire_put_str(&k, "fast", 4);
            wire_put_u8(&k, METRIC_RESOLUTION);
            wire_put_u8(&k, 0);
            wire_put_u8(&k, 1);
            wire_put_u8(&k, 0);
            wire_put_u32(&k, 1);
            wire_put_u64(&k, 9000000000000000000ULL);
            wire_put_i64(&k, 9000000000000000000LL);
            wire_put_i64(&k, 9000000000000000000LL);
            wire_put_u16(&k, 1);
            wire_put_u16(&k, CMP_LAT_BINS - 1);
            wire_put_u32(&k, 1);
        }
        d = cmp_new(cfg, now);
        assert_int_equal(cmp_decode(d, k.data, k.len), records == 2 ? 0 : -1);
        cmp_free(d);
        wire_free(&k);
    }
    wire_free(&b);
    ref_free(r);
    cmp_free(c);
    cfg_free(cfg);
}

/* A reload keeps KPIs and distributions by tier name and window length,
 * breakdowns whose attribute is still listed; new windows start empty. */
static void
test_kpi_reload_keeps_data(void **state)
{
    (void)state;
    struct config *cfg = load(yaml);
    struct compliance *c = cmp_new(cfg, T0);
    struct cmp_kpi_counts k;
    struct cmp_latency l;
    struct sla_kpi f = kpi_fact(KPI_FIRST_RESOLUTION, 1, "billing", T0, 1, true, 0);
    f.attr[ATTR_AGENT] = "ann";
    assert_int_equal(cmp_record_kpi(c, &f), 0);
    f = kpi_fact(KPI_RATING, 0, "billing", T0, 1, false, 4);
    assert_int_equal(cmp_record_kpi(c, &f), 0);
    assert_int_equal(cmp_record_elapsed(c, 1, METRIC_RESOLUTION, T0, 777), 0);
    cmp_advance(c, T0 + MIN);
    struct config *cfg2 = load("tiers:\n"
                               "  new: { response: 1h }\n"
                               "  slow: { response: 4h, resolution: 3d }\n"
                               "compliance:\n"
                               "  windows: [60m, 2d]\n"
                               "  by: [queue]\n");
    assert_int_equal(cmp_set_config(c, cfg2), 0);
    cfg_free(cfg);
    /* slow is now tier 1; 60m is the old 1h; 2d is new. */
    assert_true(cmp_kpi(c, 1, -1, NULL, 0, &k));
    assert_int_equal(k.resolved, 1);
    assert_int_equal(k.fcr, 1);
    assert_true(cmp_kpi(c, 1, ATTR_QUEUE, "billing", 0, &k));
    assert_int_equal(k.resolved, 1);
    assert_true(cmp_kpi(c, CMP_ALL, -1, NULL, 0, &k));
    assert_int_equal(k.good, 1); /* fast's rating stays in all */
    assert_true(cmp_kpi(c, 0, -1, NULL, 0, &k));
    assert_int_equal(k.good + k.resolved, 0);
    assert_true(cmp_kpi(c, 1, -1, NULL, 1, &k));
    assert_int_equal(k.resolved, 0);
    assert_false(cmp_kpi(c, 1, ATTR_AGENT, "ann", 0, &k)); /* agent gone */
    assert_true(cmp_elapsed(c, 1, METRIC_RESOLUTION, 0, &l));
    assert_int_equal(l.p50_ms, 777);
    assert_false(cmp_elapsed(c, 1, METRIC_RESOLUTION, 1, &l));
    cmp_free(c);
    cfg_free(cfg2);
}

/* A section of this format, pinned: with the config below, at T0 + 10 min,
 * holding first resolutions of fast at T0 (at first contact, queue
 * billing) and of slow at T0 + 1 min (reopened since, no queue), ratings 5
 * (fast, billing) and `bad` (slow) at T0 + 2 min, and elapsed times 1234 ms
 * (fast, response) and 86400000 ms (slow, resolution) at T0 + 5 min. It
 * must decode and encode back to the same bytes. */
static const char *yaml_pinned =
    "tiers:\n"
    "  fast: { response: 10m, resolution: 1h }\n"
    "  slow: { response: 4h, resolution: 3d }\n"
    "compliance:\n"
    "  windows: [1h, 7d]\n"
    "  by: [queue]\n";

static void
build_pinned(struct compliance *c)
{
    struct sla_kpi f = kpi_fact(KPI_FIRST_RESOLUTION, 0, "billing", T0, 1, true, 0);
    assert_int_equal(cmp_record_kpi(c, &f), 0);
    f = kpi_fact(KPI_FIRST_RESOLUTION, 1, NULL, T0 + MIN, 1, false, 0);
    assert_int_equal(cmp_record_kpi(c, &f), 0);
    f = kpi_fact(KPI_REOPEN, 1, NULL, T0 + MIN, 1, false, 0);
    assert_int_equal(cmp_record_kpi(c, &f), 0);
    f = kpi_fact(KPI_RATING, 0, "billing", T0 + 2 * MIN, 1, false, 5);
    assert_int_equal(cmp_record_kpi(c, &f), 0);
    f = kpi_fact(KPI_RATING, 1, NULL, T0 + 2 * MIN, 1, false, SCORE_BAD);
    assert_int_equal(cmp_record_kpi(c, &f), 0);
    assert_int_equal(cmp_record_elapsed(c, 0, METRIC_RESPONSE, T0 + 5 * MIN, 1234), 0);
    assert_int_equal(cmp_record_elapsed(c, 1, METRIC_RESOLUTION, T0 + 5 * MIN, DAY), 0);
    cmp_advance(c, T0 + 10 * MIN);
}

static const unsigned char kpi_golden[1248] = {
    0x03, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x80, 0xee, 0x36, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x6a, 0x7b, 0xc8, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x84, 0x0c, 0x24, 0x00, 0x00, 0x00, 0x00, 0x97, 0xb7, 0x02, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x45, 0x04, 0x00, 0x66, 0x61, 0x73, 0x74, 0x00,
    0x00, 0x01, 0x05, 0x01, 0x00, 0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd2,
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x73, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x45, 0x04, 0x00, 0x66, 0x61, 0x73, 0x74, 0x00, 0x01,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd2, 0x04,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x73, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x45, 0x04, 0x00, 0x73, 0x6c, 0x6f, 0x77, 0x01, 0x00, 0x01,
    0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x5c, 0x26, 0x05, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x5c, 0x26, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5c, 0x26,
    0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x74, 0x01, 0x01, 0x00, 0x00,
    0x00, 0x45, 0x04, 0x00, 0x73, 0x6c, 0x6f, 0x77, 0x01, 0x01, 0x01, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x5c, 0x26, 0x05, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x5c, 0x26, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5c, 0x26, 0x05,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x74, 0x01, 0x01, 0x00, 0x00, 0x00,
    0x45, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x00, 0x00, 0x01, 0x05, 0x01, 0x00,
    0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd2, 0x04,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x73, 0x00, 0x01, 0x00, 0x00, 0x00, 0x45, 0x03,
    0x00, 0x61, 0x6c, 0x6c, 0x00, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
    0xd2, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd2, 0x04, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xd2, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x73, 0x00, 0x01, 0x00, 0x00, 0x00, 0x45, 0x03, 0x00, 0x61,
    0x6c, 0x6c, 0x01, 0x00, 0x01, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x5c,
    0x26, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5c, 0x26, 0x05, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x5c, 0x26, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x74, 0x01, 0x01, 0x00, 0x00, 0x00, 0x45, 0x03, 0x00, 0x61, 0x6c, 0x6c,
    0x01, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x5c, 0x26, 0x05,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x5c, 0x26, 0x05, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x5c, 0x26, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x74, 0x01,
    0x01, 0x00, 0x00, 0x00, 0x4b, 0x04, 0x00, 0x66, 0x61, 0x73, 0x74, 0xff,
    0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x4b, 0x04, 0x00, 0x66, 0x61, 0x73, 0x74, 0xff, 0x01, 0x01, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05,
    0x00, 0x00, 0x00, 0x4b, 0x04, 0x00, 0x73, 0x6c, 0x6f, 0x77, 0xff, 0x00,
    0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4b,
    0x04, 0x00, 0x73, 0x6c, 0x6f, 0x77, 0xff, 0x01, 0x01, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x4b, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0xff, 0x00, 0x03, 0x08,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x05, 0x00, 0x00, 0x00, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x4b, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0xff, 0x01, 0x01, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x05, 0x00, 0x00, 0x00, 0x4b, 0x04, 0x00, 0x66, 0x61, 0x73, 0x74, 0x02,
    0x07, 0x00, 0x62, 0x69, 0x6c, 0x6c, 0x69, 0x6e, 0x67, 0x00, 0x02, 0x08,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x05, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4b, 0x04, 0x00,
    0x66, 0x61, 0x73, 0x74, 0x02, 0x07, 0x00, 0x62, 0x69, 0x6c, 0x6c, 0x69,
    0x6e, 0x67, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x4b, 0x03, 0x00,
    0x61, 0x6c, 0x6c, 0x02, 0x07, 0x00, 0x62, 0x69, 0x6c, 0x6c, 0x69, 0x6e,
    0x67, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x00, 0x00,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x4b, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x02, 0x07, 0x00, 0x62, 0x69,
    0x6c, 0x6c, 0x69, 0x6e, 0x67, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
    0x4b, 0x04, 0x00, 0x73, 0x6c, 0x6f, 0x77, 0x02, 0x05, 0x00, 0x5f, 0x6e,
    0x6f, 0x6e, 0x65, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x4b, 0x04, 0x00, 0x73, 0x6c, 0x6f, 0x77, 0x02, 0x05,
    0x00, 0x5f, 0x6e, 0x6f, 0x6e, 0x65, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x4b, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x02, 0x05, 0x00, 0x5f, 0x6e,
    0x6f, 0x6e, 0x65, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x4b, 0x03, 0x00, 0x61, 0x6c, 0x6c, 0x02, 0x05, 0x00,
    0x5f, 0x6e, 0x6f, 0x6e, 0x65, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static void
test_kpi_golden_section(void **state)
{
    (void)state;
    struct config *cfg = load(yaml_pinned);
    struct compliance *c = cmp_new(cfg, T0);
    struct wire_buf b;
    build_pinned(c);
    wire_init(&b);
    assert_int_equal(cmp_encode(c, &b), 0);
    if (b.len != sizeof(kpi_golden) || memcmp(b.data, kpi_golden, b.len) != 0) {
        /* Print the new bytes, to be pinned deliberately after a format
         * change (and the format number raised). */
        for (size_t i = 0; i < b.len; i++)
            fprintf(stderr, "0x%02x,%s", (unsigned char)b.data[i], i % 12 == 11 ? "\n" : " ");
        fail_msg("the section's bytes changed (%zu bytes, pinned %zu)", b.len,
                 sizeof(kpi_golden));
    }
    wire_free(&b);
    cmp_free(c);

    c = cmp_new(cfg, T0 + 10 * MIN);
    assert_int_equal(cmp_decode(c, (const char *)kpi_golden, sizeof(kpi_golden)), 0);
    struct cmp_kpi_counts k;
    char buf[CMP_KPI_BUFLEN];
    assert_true(cmp_kpi(c, CMP_ALL, -1, NULL, 0, &k));
    assert_int_equal(k.resolved, 2);
    assert_int_equal(k.fcr, 1);
    assert_int_equal(k.reopened, 1);
    assert_int_equal(k.good, 1);
    assert_int_equal(k.bad, 1);
    assert_int_equal(k.score_sum, 5);
    assert_string_equal(text(c, 1, CMP_KPI_REOPEN_RATE, 1, buf), "1");
    assert_true(cmp_kpi(c, 0, ATTR_QUEUE, "billing", 1, &k));
    assert_int_equal(k.good, 1);
    assert_int_equal(k.fcr, 1);
    assert_true(cmp_kpi(c, 1, ATTR_QUEUE, NULL, 1, &k));
    assert_int_equal(k.bad, 1);
    assert_int_equal(k.reopened, 1);
    struct cmp_latency l;
    assert_true(cmp_elapsed(c, CMP_ALL, METRIC_RESOLUTION, 1, &l));
    assert_int_equal(l.p99_ms, DAY);
    assert_true(cmp_latency(c, 0, 0, &l));
    assert_int_equal(l.mean_ms, 1234);
    wire_init(&b);
    assert_int_equal(cmp_encode(c, &b), 0);
    assert_int_equal(b.len, sizeof(kpi_golden));
    assert_memory_equal(b.data, kpi_golden, sizeof(kpi_golden));
    wire_free(&b);
    cmp_free(c);
    cfg_free(cfg);
}

/* ---- the publish round --------------------------------------------------- */

static const char *
value_of(const struct cmd_argv *a, const char *key)
{
    for (size_t i = 1; i + 1 < a->n; i += 2)
        if (strcmp(a->argv[i], key) == 0)
            return a->argv[i + 1];
    return NULL;
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
expect(const struct report_cmds *cmds, const char *key, const char *want)
{
    const char *got = value_of(&cmds->mset, key);
    if (want == NULL) {
        if (got != NULL)
            fail_msg("%s: published %s, want it absent", key, got);
        if (!has_key(&cmds->del, key))
            fail_msg("%s: not deleted", key);
        return;
    }
    if (got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: %s, want %s", key, got ? got : "(not published)", want);
    if (has_key(&cmds->del, key))
        fail_msg("%s: published and deleted", key);
}

static int64_t fake_now;

static int64_t
fake_wall(void *arg)
{
    (void)arg;
    return fake_now;
}

static struct report *the_report;
static struct core *the_core;

static void
on_outcome(void *arg, const struct sla_outcome *o)
{
    (void)arg;
    report_feed_outcome(the_report, the_core, o);
}

static void
apply(enum ev_type type, const char *id, int64_t ts)
{
    struct sla_event ev;
    const char *reason;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.ticket = id;
    ev.ticket_len = strlen(id);
    ev.ts_ms = ts;
    ev.arrival_ms = ts;
    ev.tier = "fast";
    ev.tier_len = 4;
    fake_now = ts;
    assert_int_equal(core_apply(the_core, &ev, &reason), 0);
}

/* The keys of a round: KPIs with their formats and breakdowns, absent
 * while empty and deleted once, elapsed times of every metric from the
 * core's outcomes (met at the stop, breached once answered), response_ms
 * as before. */
static void
test_report_kpi_keys(void **state)
{
    (void)state;
    struct config *cfg = load(yaml);
    struct report *rp = report_new(cfg, T0);
    struct report_cmds cmds;
    assert_non_null(rp);
    struct core_sink sink = { NULL, on_outcome, NULL, NULL, NULL };
    the_report = rp;
    fake_now = T0;
    the_core = core_new(cfg, fake_wall, NULL, &sink);
    assert_non_null(the_core);

    struct sla_kpi f = kpi_fact(KPI_FIRST_RESOLUTION, 0, "billing", T0, 1, true, 0);
    report_feed_kpi(rp, &f);
    f = kpi_fact(KPI_FIRST_RESOLUTION, 0, "billing", T0, 1, false, 0);
    report_feed_kpi(rp, &f);
    f = kpi_fact(KPI_FIRST_RESOLUTION, 0, NULL, T0, 1, true, 0);
    report_feed_kpi(rp, &f);
    f = kpi_fact(KPI_REOPEN, 0, "billing", T0, 1, false, 0);
    report_feed_kpi(rp, &f);
    f = kpi_fact(KPI_RATING, 0, "billing", T0, 1, false, 4);
    report_feed_kpi(rp, &f);
    f = kpi_fact(KPI_RATING, 0, "billing", T0, 1, false, 5);
    report_feed_kpi(rp, &f);
    f = kpi_fact(KPI_RATING, 0, NULL, T0, 1, false, SCORE_BAD);
    report_feed_kpi(rp, &f);
    /* One ticket through the core: response after 90 s (met), resolved
     * after 2 h (breached at 1 h, so its time counts at the stop). */
    apply(EVT_OPENED, "T1", T0);
    apply(EVT_RESPONDED, "T1", T0 + 90 * SEC);
    core_advance(the_core, T0 + HOUR + 1);
    apply(EVT_RESOLVED, "T1", T0 + 2 * HOUR);

    assert_int_equal(report_build(rp, T0 + 2 * HOUR, &cmds), 0);
    expect(&cmds, "sla:kpi:fast:fcr:24h", "0.666666");
    expect(&cmds, "sla:kpi:all:fcr:7d", "0.666666");
    expect(&cmds, "sla:kpi:fast:reopen_rate:24h", "0.333333");
    expect(&cmds, "sla:kpi:fast:csat:24h", "0.666666");
    expect(&cmds, "sla:kpi:fast:csat_mean:24h", "4.5");
    expect(&cmds, "sla:kpi:fast:csat_count:24h", "3");
    expect(&cmds, "sla:kpi:fast:fcr:24h:queue=billing", "0.5");
    expect(&cmds, "sla:kpi:all:reopen_rate:7d:queue=billing", "0.5");
    expect(&cmds, "sla:kpi:fast:csat:7d:queue=billing", "1");
    expect(&cmds, "sla:kpi:fast:csat:7d:queue=_none", "0");
    expect(&cmds, "sla:kpi:fast:csat_mean:7d:queue=_none", NULL); /* no numeric one */
    expect(&cmds, "sla:kpi:fast:csat_count:7d:queue=_none", "1");
    expect(&cmds, "sla:kpi:fast:fcr:1h", NULL);    /* T0's bucket has left 1h */
    expect(&cmds, "sla:kpi:slow:fcr:24h", NULL);
    expect(&cmds, "sla:kpi:slow:csat_count:7d", NULL);
    expect(&cmds, "sla:elapsed_ms:fast:response:24h:p50", "90000");
    expect(&cmds, "sla:elapsed_ms:all:response:7d:mean", "90000");
    expect(&cmds, "sla:response_ms:fast:24h:p90", "90000");
    expect(&cmds, "sla:elapsed_ms:fast:resolution:1h:p99", "7200000");
    expect(&cmds, "sla:elapsed_ms:all:resolution:24h:mean", "7200000");
    expect(&cmds, "sla:elapsed_ms:slow:resolution:24h:p50", NULL);
    expect(&cmds, "sla:elapsed_ms:fast:response:1h:p50", NULL); /* answered at T0 + 90 s */
    report_commit(rp, &cmds);
    report_cmds_free(&cmds);

    /* Eight days on: every KPI and distribution is gone, the breakdown
     * values' keys are deleted once, then no longer mentioned. */
    assert_int_equal(report_build(rp, T0 + 8 * DAY, &cmds), 0);
    expect(&cmds, "sla:kpi:fast:fcr:7d", NULL);
    expect(&cmds, "sla:kpi:fast:fcr:24h:queue=billing", NULL);
    expect(&cmds, "sla:kpi:all:csat_count:7d:queue=_none", NULL);
    expect(&cmds, "sla:elapsed_ms:fast:resolution:7d:p50", NULL);
    report_commit(rp, &cmds);
    report_cmds_free(&cmds);
    assert_int_equal(report_build(rp, T0 + 9 * DAY, &cmds), 0);
    assert_false(has_key(&cmds.del, "sla:kpi:fast:fcr:24h:queue=billing"));
    assert_true(has_key(&cmds.del, "sla:kpi:fast:fcr:7d"));
    report_cmds_free(&cmds);
    core_free(the_core);
    report_free_state(rp);
    cfg_free(cfg);
}

/* The keys a round deletes are those of the last round committed, not of
 * a round built and dropped in between (report_publish builds, then
 * commits only once the commands are queued). */
static void
test_report_commit_order(void **state)
{
    (void)state;
    struct config *cfg = load(yaml);
    struct report *rp = report_new(cfg, T0);
    struct report_cmds a, b, c;
    struct sla_kpi f = kpi_fact(KPI_FIRST_RESOLUTION, 0, "billing", T0, 1, true, 0);
    assert_non_null(rp);
    report_feed_kpi(rp, &f);
    assert_int_equal(report_build(rp, T0 + MIN, &a), 0);
    expect(&a, "sla:kpi:fast:fcr:7d:queue=billing", "1");
    assert_int_equal(report_build(rp, T0 + 8 * DAY, &b), 0); /* dropped */
    report_commit(rp, &a);
    report_cmds_free(&a);
    report_cmds_free(&b);
    assert_int_equal(report_build(rp, T0 + 8 * DAY, &c), 0);
    expect(&c, "sla:kpi:fast:fcr:7d:queue=billing", NULL);
    expect(&c, "sla:kpi:all:fcr:1h:queue=billing", NULL);
    assert_false(has_key(&c.del, "sla:kpi:fast:fcr:7d:queue=nobody"));
    report_commit(rp, &c);
    report_cmds_free(&c);
    report_free_state(rp);
    cfg_free(cfg);
}

/* The argument builders the round uses (argv.c). */
static void
test_argv_builders(void **state)
{
    (void)state;
    struct cmd_argv a;
    argv_init(&a);
    argv_reserve(&a, 2, 8); /* smaller than what follows: it grows */
    const char *parts[] = { "sla:", "kpi:", "", "fast", ":", "csat" };
    argv_addv(&a, parts, ARRAY_LEN(parts));
    argv_addu64(&a, 0);
    argv_addu64(&a, UINT64_MAX);
    for (int i = 0; i < 100; i++)
        argv_addv(&a, parts, 2);
    assert_int_equal(argv_seal(&a), 0);
    assert_int_equal(a.n, 103);
    assert_string_equal(a.argv[0], "sla:kpi:fast:csat");
    assert_int_equal(a.lens[0], 17);
    assert_string_equal(a.argv[1], "0");
    assert_string_equal(a.argv[2], "18446744073709551615");
    assert_int_equal(a.lens[2], 20);
    assert_string_equal(a.argv[102], "sla:kpi:");
    const char *many[17];
    for (int i = 0; i < 17; i++)
        many[i] = "x";
    argv_addv(&a, many, 17); /* more parts than it takes: sealing fails */
    assert_int_equal(argv_seal(&a), -1);
    argv_free(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kpi_definitions),
        cmocka_unit_test(test_kpi_breakdown_places),
        cmocka_unit_test(test_kpi_random_histories),
        cmocka_unit_test(test_elapsed_every_metric),
        cmocka_unit_test(test_kpi_encode_decode),
        cmocka_unit_test(test_kpi_reload_keeps_data),
        cmocka_unit_test(test_kpi_golden_section),
        cmocka_unit_test(test_report_kpi_keys),
        cmocka_unit_test(test_report_commit_order),
        cmocka_unit_test(test_argv_builders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
