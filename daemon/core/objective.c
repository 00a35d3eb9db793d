/*
 * objective.c - objective states with hysteresis and their episodes, for
 * compliance.objective and every named objective (see objective.h). Owns
 * the states and the layout of their checkpoint section (bytes through
 * wire.h). Must not do I/O, read a clock, or know how a value is counted:
 * every value comes through the obj_read_fn of the evaluation.
 *
 *   report.c --obj_eval(read = obj_read_compliance)--> per series:
 *        read value --judge: hysteresis, episode--> obj_change --> report.c
 *   report.c --obj_foreach--> <prefix>objective:<name>:<tier>:<window>
 */
#include "slawatch/objective.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OBJ_FORMAT 1
#define NO_INDEX 0xff /* an absent metric or kpi in a record */

struct obj_state {
    uint8_t violated;
    uint8_t streak;    /* consecutive evaluations pointing away */
    uint8_t present;   /* the last evaluation had a value */
    uint32_t episodes; /* violations so far (checkpointed) */
};

/* One objective: the shorthand (def NULL) or a named one. */
struct goal {
    const struct cfg_objective *def;
    size_t nmeasures; /* the shorthand: one per metric; else 1 */
    int64_t threshold_micro;
    struct obj_state *st; /* [nmeasures][ntiers + 1][nwin] */
};

struct objectives {
    const struct config *cfg;
    size_t ntiers; /* tier index ntiers stands for `all` */
    size_t nwin;
    size_t ngoals; /* goals[0] is the shorthand */
    struct goal *goals;
};

char *
obj_format_micro(int64_t micro, char *buf, size_t size)
{
    bool neg = micro < 0;
    uint64_t v = neg ? (uint64_t)0 - (uint64_t)micro : (uint64_t)micro;
    uint64_t whole = v / OBJ_MICRO, frac = v % OBJ_MICRO;
    if (frac == 0) {
        snprintf(buf, size, "%s%" PRIu64, neg ? "-" : "", whole);
        return buf;
    }
    int n = snprintf(buf, size, "%s%" PRIu64 ".%06" PRIu64, neg ? "-" : "",
                     whole, frac);
    while (n > 0 && (size_t)n < size && buf[n - 1] == '0')
        buf[--n] = '\0';
    return buf;
}

/* ---- layout ------------------------------------------------------------- */

static int
goal_index(int objective)
{
    return objective == OBJ_SHORTHAND ? 0 : objective + 1;
}

static int
public_objective(size_t g)
{
    return g == 0 ? OBJ_SHORTHAND : (int)g - 1;
}

static int
public_tier(const struct objectives *o, size_t ti)
{
    return ti == o->ntiers ? CMP_ALL : (int)ti;
}

static const char *
tier_name(const struct objectives *o, size_t ti)
{
    return ti < o->ntiers ? o->cfg->tiers[ti].name : "all";
}

/* Internal tier index (ntiers for all), or -1. */
static long
tier_ix(const struct objectives *o, int tier)
{
    if (tier == CMP_ALL)
        return (long)o->ntiers;
    return tier >= 0 && (size_t)tier < o->ntiers ? tier : -1;
}

static struct obj_state *
state_of(const struct objectives *o, const struct goal *g, size_t m, size_t ti,
         size_t w)
{
    return &g->st[(m * (o->ntiers + 1) + ti) * o->nwin + w];
}

/* The metric of measure m of goal g, or -1 for a KPI. */
static int
metric_of(const struct goal *g, size_t m)
{
    return g->def ? g->def->metric : (int)m;
}

static int
kpi_of(const struct goal *g)
{
    return g->def ? g->def->kpi : -1;
}

/* Whether tier index ti (ntiers: all) has a clock for the metric. */
static bool
has_metric(const struct objectives *o, size_t ti, int metric)
{
    if (ti < o->ntiers)
        return o->cfg->tiers[ti].target_ms[metric] > 0;
    for (size_t t = 0; t < o->ntiers; t++)
        if (o->cfg->tiers[t].target_ms[metric] > 0)
            return true;
    return false;
}

/* Whether goal g judges (measure m, tier ti, window w): the shorthand
 * every SLA ratio that exists, a named objective its tiers and windows
 * (and, for an SLA ratio, only tiers with that clock). */
static bool
covers(const struct objectives *o, const struct goal *g, size_t m, size_t ti,
       size_t w)
{
    int metric = metric_of(g, m);
    if (metric >= 0 && !has_metric(o, ti, metric))
        return false;
    if (g->def == NULL)
        return true;
    if (!g->def->windows[w])
        return false;
    return ti == o->ntiers ? g->def->all : g->def->tiers[ti];
}

int64_t
obj_threshold_micro(const struct config *cfg, int objective)
{
    if (objective == OBJ_SHORTHAND) {
        double x = cfg->compliance.objective * OBJ_MICRO;
        return x >= OBJ_MICRO ? OBJ_MICRO : (int64_t)llround(x);
    }
    if (objective < 0 || (size_t)objective >= cfg->nobjectives)
        return 0;
    return (int64_t)llround(cfg->objectives[objective].threshold * OBJ_MICRO);
}

/* ---- life cycle --------------------------------------------------------- */

struct objectives *
obj_new(const struct config *cfg)
{
    struct objectives *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    o->cfg = cfg;
    o->ntiers = cfg->ntiers;
    o->nwin = cfg->compliance.nwindows;
    o->ngoals = 1 + cfg->nobjectives;
    o->goals = calloc(o->ngoals, sizeof(*o->goals));
    if (o->goals == NULL) {
        free(o);
        return NULL;
    }
    for (size_t g = 0; g < o->ngoals; g++) {
        struct goal *gl = &o->goals[g];
        gl->def = g == 0 ? NULL : &cfg->objectives[g - 1];
        gl->nmeasures = g == 0 ? METRIC_COUNT : 1;
        gl->threshold_micro = obj_threshold_micro(cfg, public_objective(g));
        size_t n = gl->nmeasures * (o->ntiers + 1) * (o->nwin ? o->nwin : 1);
        if ((gl->st = calloc(n, sizeof(*gl->st))) == NULL) {
            obj_free(o);
            return NULL;
        }
    }
    return o;
}

void
obj_free(struct objectives *o)
{
    if (o == NULL)
        return;
    for (size_t g = 0; g < o->ngoals; g++)
        free(o->goals[g].st);
    free(o->goals);
    free(o);
}

int
obj_set_config(struct objectives *o, const struct config *cfg)
{
    struct objectives *fresh = obj_new(cfg);
    struct wire_buf b;
    if (fresh == NULL)
        return -1;
    /* The checkpoint already maps objectives and tiers by name and
     * windows by length: a reload is a checkpoint handed to the new
     * layout. */
    wire_init(&b);
    if (obj_encode(o, &b) < 0 || obj_decode(fresh, b.data, b.len) < 0) {
        wire_free(&b);
        obj_free(fresh);
        return -1;
    }
    wire_free(&b);
    struct objectives tmp = *o;
    *o = *fresh;
    *fresh = tmp;
    obj_free(fresh);
    return 0;
}

/* ---- evaluation --------------------------------------------------------- */

/* One evaluation of one series; returns true on a transition. */
static bool
judge(struct obj_state *st, bool max, int64_t threshold,
      const struct obj_reading *rd)
{
    bool wrong =
        max ? rd->value_micro > threshold : rd->value_micro < threshold;
    if (wrong == (bool)st->violated) {
        st->streak = 0;
        return false;
    }
    if (++st->streak < (st->violated ? OBJ_RECOVER_ROUNDS : OBJ_FIRE_ROUNDS))
        return false;
    st->violated = wrong;
    st->streak = 0;
    if (wrong)
        st->episodes++;
    return true;
}

void
obj_eval(struct objectives *o, int64_t now_ms, obj_read_fn *read,
         void *read_arg, void (*fn)(void *arg, const struct obj_change *ch),
         void *arg)
{
    for (size_t g = 0; g < o->ngoals; g++) {
        const struct goal *gl = &o->goals[g];
        bool max = gl->def && gl->def->max;
        for (size_t m = 0; m < gl->nmeasures; m++)
            for (size_t ti = 0; ti <= o->ntiers; ti++)
                for (size_t w = 0; w < o->nwin; w++) {
                    if (!covers(o, gl, m, ti, w))
                        continue;
                    struct obj_state *st = state_of(o, gl, m, ti, w);
                    struct obj_reading rd = {0};
                    if (!read(read_arg, metric_of(gl, m), kpi_of(gl),
                              public_tier(o, ti), (int)w, &rd)) {
                        st->present = 0;
                        st->streak = 0; /* nothing to judge */
                        continue;
                    }
                    st->present = 1;
                    if (!judge(st, max, gl->threshold_micro, &rd) || fn == NULL)
                        continue;
                    struct obj_change ch = {
                        .violated = st->violated,
                        .episode = st->episodes,
                        .objective = public_objective(g),
                        .name = gl->def ? gl->def->name : NULL,
                        .metric = metric_of(gl, m),
                        .kpi = kpi_of(gl),
                        .max = max,
                        .tier = public_tier(o, ti),
                        .tier_name = tier_name(o, ti),
                        .window = (int)w,
                        .window_name = o->cfg->compliance.windows[w].name,
                        .value_micro = rd.value_micro,
                        .threshold_micro = gl->threshold_micro,
                        .threshold = gl->def ? gl->def->threshold
                                             : o->cfg->compliance.objective,
                        .counts = rd.counts,
                        .met = rd.met,
                        .breached = rd.breached,
                        .at_ms = now_ms,
                    };
                    fn(arg, &ch);
                }
    }
}

void
obj_foreach(const struct objectives *o,
            void (*fn)(void *arg, const struct obj_series *s), void *arg)
{
    for (size_t g = 0; g < o->ngoals; g++) {
        const struct goal *gl = &o->goals[g];
        for (size_t m = 0; m < gl->nmeasures; m++)
            for (size_t ti = 0; ti <= o->ntiers; ti++)
                for (size_t w = 0; w < o->nwin; w++) {
                    if (!covers(o, gl, m, ti, w))
                        continue;
                    const struct obj_state *st = state_of(o, gl, m, ti, w);
                    struct obj_series s = {
                        .objective = public_objective(g),
                        .name = gl->def ? gl->def->name : NULL,
                        .metric = metric_of(gl, m),
                        .tier = public_tier(o, ti),
                        .tier_name = tier_name(o, ti),
                        .window = (int)w,
                        .window_name = o->cfg->compliance.windows[w].name,
                        .present = st->present,
                        .violated = st->violated,
                        .episode = st->episodes,
                    };
                    fn(arg, &s);
                }
    }
}

bool
obj_violated(const struct objectives *o, int objective, int tier, int metric,
             int w, uint32_t *episode)
{
    int g = goal_index(objective);
    long ti = tier_ix(o, tier);
    if (episode)
        *episode = 0;
    if (objective < OBJ_SHORTHAND || (size_t)g >= o->ngoals || ti < 0 ||
        w < 0 || (size_t)w >= o->nwin)
        return false;
    const struct goal *gl = &o->goals[g];
    size_t m = 0;
    if (gl->def == NULL) {
        if (metric < 0 || metric >= METRIC_COUNT)
            return false;
        m = (size_t)metric;
    }
    if (!covers(o, gl, m, (size_t)ti, (size_t)w))
        return false;
    const struct obj_state *st = state_of(o, gl, m, (size_t)ti, (size_t)w);
    if (episode)
        *episode = st->episodes;
    return st->violated;
}

/* ---- the compliance windows as a source --------------------------------- */

bool
obj_read_compliance(void *arg, int metric, int kpi, int tier, int w,
                    struct obj_reading *out)
{
    const struct compliance *cmp = arg;
    if (metric < 0) {
        /* As published: cmp_kpi_micro's millionths / 10^6 (csat_count the
         * count), which llround turns back into those millionths. */
        double v;
        if (kpi < 0 || !cmp_kpi_value(cmp, tier, kpi, w, &v))
            return false;
        out->value_micro = (int64_t)llround(v * OBJ_MICRO);
        return true;
    }
    struct cmp_counts k = cmp_counts(cmp, tier, metric, w);
    if (k.met + k.breached == 0)
        return false;
    out->value_micro = cmp_ratio_micro(k.met, k.breached);
    out->counts = true;
    out->met = k.met;
    out->breached = k.breached;
    return true;
}

/* ---- checkpoint section ---------------------------------------------------
 *
 *   u32 format, then records until the end, each starting with a type byte:
 *   'S' name, u8 metric, u8 kpi (0xff: none), tier, u64 window ms,
 *       u8 violated, u8 streak, u32 episodes
 *   Strings are u16 length + bytes (wire_put_str); the shorthand's name is
 *   empty; tier "all" is every tier. Bytes through wire.h.
 */

int
obj_encode(const struct objectives *o, struct wire_buf *b)
{
    wire_put_u32(b, OBJ_FORMAT);
    for (size_t g = 0; g < o->ngoals; g++) {
        const struct goal *gl = &o->goals[g];
        const char *name = gl->def ? gl->def->name : "";
        for (size_t m = 0; m < gl->nmeasures; m++)
            for (size_t ti = 0; ti <= o->ntiers; ti++)
                for (size_t w = 0; w < o->nwin; w++) {
                    const struct obj_state *st = state_of(o, gl, m, ti, w);
                    if (!st->violated && !st->streak && !st->episodes)
                        continue;
                    int metric = metric_of(gl, m), kpi = kpi_of(gl);
                    wire_put_u8(b, 'S');
                    wire_put_str(b, name, strlen(name));
                    wire_put_u8(b, metric >= 0 ? (uint8_t)metric : NO_INDEX);
                    wire_put_u8(b, kpi >= 0 ? (uint8_t)kpi : NO_INDEX);
                    wire_put_str(b, tier_name(o, ti), strlen(tier_name(o, ti)));
                    wire_put_i64(b, o->cfg->compliance.windows[w].ms);
                    wire_put_u8(b, st->violated);
                    wire_put_u8(b, st->streak);
                    wire_put_u32(b, st->episodes);
                }
    }
    return b->oom ? -1 : 0;
}

/* The goal a saved name and measure belong to now, or -1: gone, or a
 * named objective that measures something else now. *m: the measure. */
static long
saved_goal(const struct objectives *o, const char *name, size_t len, int metric,
           int kpi, size_t *m)
{
    *m = 0;
    if (len == 0) {
        if (kpi >= 0 || metric < 0 || metric >= METRIC_COUNT)
            return -1;
        *m = (size_t)metric;
        return 0;
    }
    for (size_t g = 1; g < o->ngoals; g++) {
        const struct cfg_objective *d = o->goals[g].def;
        if (strlen(d->name) == len && memcmp(d->name, name, len) == 0)
            return d->metric == metric && d->kpi == kpi ? (long)g : -1;
    }
    return -1;
}

static long
saved_tier(const struct objectives *o, const char *s, size_t len)
{
    if (len == 3 && memcmp(s, "all", 3) == 0)
        return (long)o->ntiers;
    return cfg_tier_index(o->cfg, s, len);
}

static long
saved_window(const struct objectives *o, int64_t ms)
{
    for (size_t w = 0; w < o->nwin; w++)
        if (o->cfg->compliance.windows[w].ms == ms)
            return (long)w;
    return -1;
}

static void
set_state(struct obj_state *st, bool violated, uint8_t streak,
          uint32_t episodes)
{
    st->violated = violated;
    st->streak = streak;
    st->episodes = episodes;
}

int
obj_decode(struct objectives *o, const char *data, size_t len)
{
    struct wire_reader r;

    wire_reader_init(&r, data, len);
    uint32_t format = wire_get_u32(&r);
    if (r.bad || format != OBJ_FORMAT)
        return -1;
    while (!r.bad && r.left > 0) {
        size_t nlen, tlen, m;
        if (wire_get_u8(&r) != 'S')
            return -1;
        const char *name = wire_get_str(&r, &nlen);
        uint8_t metric = wire_get_u8(&r), kpi = wire_get_u8(&r);
        const char *tier = wire_get_str(&r, &tlen);
        int64_t ms = wire_get_i64(&r);
        uint8_t violated = wire_get_u8(&r), streak = wire_get_u8(&r);
        uint32_t episodes = wire_get_u32(&r);
        if (r.bad || name == NULL || tier == NULL || violated > 1 ||
            (metric >= METRIC_COUNT && metric != NO_INDEX) ||
            (kpi >= CMP_KPI_COUNT && kpi != NO_INDEX) ||
            (metric == NO_INDEX) == (kpi == NO_INDEX))
            return -1;
        long g = saved_goal(o, name, nlen, metric == NO_INDEX ? -1 : metric,
                            kpi == NO_INDEX ? -1 : kpi, &m);
        long ti = saved_tier(o, tier, tlen);
        long w = saved_window(o, ms);
        /* A state is kept while its series can exist, even if it is not
         * judged now (a tier without the clock, a window left out): a
         * later reload that brings it back keeps its episode count. */
        if (g < 0 || ti < 0 || w < 0)
            continue;
        set_state(state_of(o, &o->goals[g], m, (size_t)ti, (size_t)w), violated,
                  streak, episodes);
    }
    return r.bad ? -1 : 0;
}

void
obj_restore_legacy(void *arg, int tier, int metric, int w, bool violated,
                   uint8_t streak, uint32_t episodes)
{
    struct objectives *o = arg;
    long ti = tier_ix(o, tier);
    if (ti < 0 || metric < 0 || metric >= METRIC_COUNT || w < 0 ||
        (size_t)w >= o->nwin)
        return;
    set_state(state_of(o, &o->goals[0], (size_t)metric, (size_t)ti, (size_t)w),
              violated, streak, episodes);
}
