/*
 * compliance.c - rolling compliance windows, breakdowns, the elapsed-time
 * distributions and the KPI windows (see compliance.h). Owns their memory
 * and the layout of their checkpoint section (its bytes go through
 * wire.h; a histogram's slots through hist.c, a KPI bucket's through
 * kpi.c, which also does the KPIs' arithmetic). Must not do I/O, read a
 * clock or look at tickets: report.c feeds it outcomes, KPI facts and
 * instants, and reads it back in O(tiers x metrics x windows) plus the
 * breakdown values.
 *
 *   outcome --cmp_record--> bucket of each window (tier, all, by-values)
 *           --cmp_record_elapsed--> hist.c slot of each window (tier, all)
 *   KPI fact --cmp_record_kpi--> bucket of each window (tier, all, by-values)
 *   publish --cmp_advance--> expired buckets leave the running totals
 *           --cmp_foreach / cmp_kpi_foreach / cmp_elapsed / cmp_counts /
 *             cmp_kpi_value--> report.c (and, through it, objective.c)
 */
#include "slawatch/compliance.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slawatch/kpi.h"
#include "slawatch/table.h"

#define CMP_FORMAT 3             /* 2: 'O' records carry the episode count;
                                    3: 'E' (every metric) for 'L', and 'K' */
#define CMP_FORMAT_MIN 1         /* oldest section still read */
#define NO_ATTR 0xff

/* One series in one window: a bucket per slot and the running totals. */
struct ring {
    uint32_t met[CMP_SLOTS];
    uint32_t breached[CMP_SLOTS];
    uint64_t tot_met;
    uint64_t tot_breached;
};

struct window {
    int64_t ms;
    int64_t width_ms;
    int64_t head;                /* absolute index of the newest bucket */
    const char *name;            /* points into cfg */
};

/* One breakdown value: per (tier or all) x metric, NULL until an outcome
 * arrives, else nwin rings; and per (tier or all), NULL until a KPI fact
 * arrives, else nwin KPI rings. */
struct bvalue {
    char *name;
    size_t len;
    size_t nseries;              /* non-NULL entries of series[] and kpi[] */
    struct kpi_ring **kpi;       /* [ntiers + 1], in this allocation */
    struct ring *series[];       /* [(ntiers + 1) * METRIC_COUNT] */
};

struct breakdown {
    int attr;
    struct bvalue **values;      /* by slot; NULL: free */
    uint32_t nvalues;            /* slots used, including free ones */
    uint32_t cap;
    uint32_t live;               /* values holding a slot */
    uint32_t *free_slots;
    uint32_t nfree;
    uint32_t *hash;              /* slot + 1; 0: empty */
    uint32_t nhash;              /* power of two, or 0 */
    struct bvalue *other;        /* CMP_OTHER, NULL until needed */
};

struct compliance {
    const struct config *cfg;
    size_t ntiers;               /* index ntiers stands for `all` */
    size_t nwin;
    struct window win[CFG_MAX_WINDOWS];
    struct ring *main;           /* [(ntiers + 1) * METRIC_COUNT * nwin] */
    struct hist **elapsed;       /* [(ntiers + 1) * METRIC_COUNT * nwin],
                                    lazily */
    struct kpi_ring *kpi;        /* [(ntiers + 1) * nwin] */
    uint64_t kpi_saturated;
    size_t nby;
    struct breakdown by[ATTR_COUNT];
    uint64_t seed;
    int64_t now_ms;
    cmp_legacy_objective_fn *legacy_objective; /* cmp_decode's 'O' records */
    void *legacy_objective_arg;
};

/* ---- small helpers ---------------------------------------------------- */

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int
slot_of(int64_t bucket)
{
    int64_t s = bucket % CMP_SLOTS;
    return (int)(s < 0 ? s + CMP_SLOTS : s);
}

/* Internal tier index (ntiers for all), or -1 when out of range. */
static long
tier_ix(const struct compliance *c, int tier)
{
    if (tier == CMP_ALL)
        return (long)c->ntiers;
    return tier >= 0 && (size_t)tier < c->ntiers ? tier : -1;
}

static size_t
series_ix(const struct compliance *c, size_t ti, int metric)
{
    (void)c;
    return ti * METRIC_COUNT + (size_t)metric;
}

static struct ring *
main_ring(const struct compliance *c, size_t ti, int metric, size_t w)
{
    return &c->main[series_ix(c, ti, metric) * c->nwin + w];
}

static size_t
nseries_slots(const struct compliance *c)
{
    return (c->ntiers + 1) * METRIC_COUNT;
}

/* Whether tier index ti (ntiers: all) has a clock for the metric. */
static bool
has_metric(const struct compliance *c, size_t ti, int metric)
{
    if (ti < c->ntiers)
        return c->cfg->tiers[ti].target_ms[metric] > 0;
    for (size_t t = 0; t < c->ntiers; t++)
        if (c->cfg->tiers[t].target_ms[metric] > 0)
            return true;
    return false;
}

static const char *
tier_name(const struct compliance *c, size_t ti)
{
    return ti < c->ntiers ? c->cfg->tiers[ti].name : "all";
}

static void
ring_clear_slot(struct ring *r, int s)
{
    r->tot_met -= r->met[s];
    r->tot_breached -= r->breached[s];
    r->met[s] = 0;
    r->breached[s] = 0;
}

static void
ring_add(struct ring *r, int s, uint32_t met, uint32_t breached)
{
    r->met[s] += met;
    r->breached[s] += breached;
    r->tot_met += met;
    r->tot_breached += breached;
}

static bool
ring_empty(const struct ring *r)
{
    return r->tot_met == 0 && r->tot_breached == 0;
}

static struct hist **
elapsed_of(const struct compliance *c, size_t ti, int metric, size_t w)
{
    return &c->elapsed[series_ix(c, ti, metric) * c->nwin + w];
}

/* Clears slot s of window w in every elapsed-time and KPI series. */
static void
clear_v2_slot(struct compliance *c, size_t w, int s)
{
    for (size_t i = 0; i < nseries_slots(c); i++)
        if (c->elapsed[i * c->nwin + w])
            hist_clear_slot(c->elapsed[i * c->nwin + w], s);
    for (size_t ti = 0; ti <= c->ntiers; ti++)
        kpi_ring_clear_slot(&c->kpi[ti * c->nwin + w], s);
    for (size_t a = 0; a < c->nby; a++) {
        struct breakdown *bd = &c->by[a];
        for (uint32_t v = 0; v <= bd->nvalues; v++) {
            struct bvalue *bv = v < bd->nvalues ? bd->values[v] : bd->other;
            if (bv == NULL || bv->nseries == 0)
                continue;
            for (size_t ti = 0; ti <= c->ntiers; ti++)
                if (bv->kpi[ti])
                    kpi_ring_clear_slot(&bv->kpi[ti][w], s);
        }
    }
}

/* ---- windows ------------------------------------------------------------ */

/* Moves window w's head to new_head, clearing the buckets that leave it in
 * every series. O(series) per bucket crossed, at most CMP_SLOTS of them. */
static void
win_advance(struct compliance *c, size_t w, int64_t new_head)
{
    struct window *win = &c->win[w];
    if (new_head <= win->head)
        return;
    int64_t from = win->head + 1;
    if (new_head - from >= CMP_SLOTS)
        from = new_head - CMP_SLOTS + 1;
    for (int64_t b = from; b <= new_head; b++) {
        int s = slot_of(b);
        for (size_t i = 0; i < nseries_slots(c); i++)
            ring_clear_slot(&c->main[i * c->nwin + w], s);
        for (size_t a = 0; a < c->nby; a++) {
            struct breakdown *bd = &c->by[a];
            for (uint32_t v = 0; v <= bd->nvalues; v++) {
                struct bvalue *bv = v < bd->nvalues ? bd->values[v] : bd->other;
                if (bv == NULL || bv->nseries == 0)
                    continue;
                for (size_t i = 0; i < nseries_slots(c); i++)
                    if (bv->series[i])
                        ring_clear_slot(&bv->series[i][w], s);
            }
        }
        clear_v2_slot(c, w, s);
    }
    win->head = new_head;
}

/* The slot for an instant in window w, moving the window forward for an
 * instant past its head; -1 when the instant is older than the window. */
static int
win_slot(struct compliance *c, size_t w, int64_t at_ms)
{
    struct window *win = &c->win[w];
    int64_t b = floor_div(at_ms, win->width_ms);
    if (b > win->head)
        win_advance(c, w, b);
    if (b <= win->head - CMP_SLOTS)
        return -1;
    return slot_of(b);
}

/* The slot of absolute bucket b (restoring a checkpoint), same rules. */
static int
win_slot_bucket(struct compliance *c, size_t w, int64_t b)
{
    struct window *win = &c->win[w];
    if (b > win->head)
        win_advance(c, w, b);
    if (b <= win->head - CMP_SLOTS)
        return -1;
    return slot_of(b);
}

/* ---- breakdown values ------------------------------------------------- */

static uint64_t
value_hash(const struct compliance *c, const char *s, size_t len)
{
    return table_hash(c->seed, s, len);
}

static uint32_t *
hash_find(const struct compliance *c, const struct breakdown *bd,
          const char *s, size_t len)
{
    if (bd->nhash == 0)
        return NULL;
    uint32_t mask = bd->nhash - 1;
    for (uint32_t i = (uint32_t)value_hash(c, s, len) & mask;; i = (i + 1) & mask) {
        uint32_t *e = &bd->hash[i];
        if (*e == 0)
            return e;
        const struct bvalue *bv = bd->values[*e - 1];
        if (bv->len == len && memcmp(bv->name, s, len) == 0)
            return e;
    }
}

static int
hash_grow(const struct compliance *c, struct breakdown *bd)
{
    uint32_t n = bd->nhash ? bd->nhash * 2 : 64;
    uint32_t *h = calloc(n, sizeof(*h));
    if (h == NULL)
        return -1;
    for (uint32_t i = 0; i < bd->nhash; i++) {
        uint32_t e = bd->hash[i];
        if (e == 0)
            continue;
        const struct bvalue *bv = bd->values[e - 1];
        uint32_t j = (uint32_t)value_hash(c, bv->name, bv->len) & (n - 1);
        while (h[j] != 0)
            j = (j + 1) & (n - 1);
        h[j] = e;
    }
    free(bd->hash);
    bd->hash = h;
    bd->nhash = n;
    return 0;
}

/* Linear probing with backward-shift deletion: no tombstones. */
static void
hash_remove(const struct compliance *c, struct breakdown *bd, uint32_t *e)
{
    uint32_t mask = bd->nhash - 1;
    uint32_t i = (uint32_t)(e - bd->hash);
    for (uint32_t j = (i + 1) & mask; bd->hash[j] != 0; j = (j + 1) & mask) {
        const struct bvalue *bv = bd->values[bd->hash[j] - 1];
        uint32_t home = (uint32_t)value_hash(c, bv->name, bv->len) & mask;
        /* Move j back into the hole unless its home lies in (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            bd->hash[i] = bd->hash[j];
            i = j;
        }
    }
    bd->hash[i] = 0;
}

static struct bvalue *
bvalue_new(const struct compliance *c, const char *s, size_t len)
{
    struct bvalue *bv = calloc(1, sizeof(*bv) + nseries_slots(c) * sizeof(bv->series[0]) +
                                      (c->ntiers + 1) * sizeof(bv->kpi[0]));
    if (bv == NULL)
        return NULL;
    bv->kpi = (struct kpi_ring **)&bv->series[nseries_slots(c)];
    bv->name = malloc(len + 1);
    if (bv->name == NULL) {
        free(bv);
        return NULL;
    }
    memcpy(bv->name, s, len);
    bv->name[len] = '\0';
    bv->len = len;
    return bv;
}

static void
bvalue_free(const struct compliance *c, struct bvalue *bv)
{
    if (bv == NULL)
        return;
    for (size_t i = 0; i < nseries_slots(c); i++)
        free(bv->series[i]);
    for (size_t ti = 0; ti <= c->ntiers; ti++)
        free(bv->kpi[ti]);
    free(bv->name);
    free(bv);
}

static struct bvalue *
other_value(const struct compliance *c, struct breakdown *bd)
{
    if (bd->other == NULL)
        bd->other = bvalue_new(c, CMP_OTHER, strlen(CMP_OTHER));
    return bd->other;
}

/* The value's series holder if it has one: its own, else CMP_OTHER (where
 * its facts went once max_values was reached), NULL when neither exists. */
static struct bvalue *
value_find(const struct compliance *c, const struct breakdown *bd, const char *s,
           size_t len)
{
    if (len != strlen(CMP_OTHER) || memcmp(s, CMP_OTHER, len) != 0) {
        const uint32_t *e = hash_find(c, bd, s, len);
        if (e != NULL && *e != 0)
            return bd->values[*e - 1];
    }
    return bd->other;
}

/* The value's series holder: its own while fewer than max_values values
 * hold one, CMP_OTHER otherwise (and on allocation failure, *failed set). */
static struct bvalue *
value_get(struct compliance *c, struct breakdown *bd, const char *s,
          size_t len, bool *failed)
{
    if (len == strlen(CMP_OTHER) && memcmp(s, CMP_OTHER, len) == 0)
        return other_value(c, bd);
    uint32_t *e = hash_find(c, bd, s, len);
    if (e != NULL && *e != 0)
        return bd->values[*e - 1];
    if (bd->live >= (uint32_t)c->cfg->compliance.max_values)
        return other_value(c, bd);
    if ((bd->live + 1) * 2 > bd->nhash) {
        if (hash_grow(c, bd) < 0)
            goto fail;
    }
    uint32_t slot;
    if (bd->nfree > 0) {
        slot = bd->free_slots[--bd->nfree];
    } else {
        if (bd->nvalues == bd->cap) {
            uint32_t cap = bd->cap ? bd->cap * 2 : 16;
            struct bvalue **v = realloc(bd->values, cap * sizeof(*v));
            if (v == NULL)
                goto fail;
            bd->values = v;
            uint32_t *f = realloc(bd->free_slots, cap * sizeof(*f));
            if (f == NULL)
                goto fail;
            bd->free_slots = f;
            bd->cap = cap;
        }
        slot = bd->nvalues++;
        bd->values[slot] = NULL;
    }
    struct bvalue *bv = bvalue_new(c, s, len);
    if (bv == NULL) {
        bd->free_slots[bd->nfree++] = slot;
        goto fail;
    }
    bd->values[slot] = bv;
    bd->live++;
    e = hash_find(c, bd, s, len);
    *e = slot + 1;
    return bv;
fail:
    *failed = true;
    return other_value(c, bd);
}

/* Frees the KPI series of a value that hold nothing any more. */
static void
sweep_value_kpis(const struct compliance *c, struct bvalue *bv)
{
    for (size_t ti = 0; ti <= c->ntiers && bv->nseries > 0; ti++) {
        struct kpi_ring *r = bv->kpi[ti];
        if (r == NULL)
            continue;
        size_t w;
        for (w = 0; w < c->nwin && kpi_ring_empty(&r[w]); w++)
            ;
        if (w == c->nwin) {
            free(r);
            bv->kpi[ti] = NULL;
            bv->nseries--;
        }
    }
}

/* Frees the series that hold nothing any more, and the values left with
 * none, so their places go to new values. */
static void
sweep_values(struct compliance *c, struct breakdown *bd)
{
    for (uint32_t v = 0; v <= bd->nvalues; v++) {
        struct bvalue *bv = v < bd->nvalues ? bd->values[v] : bd->other;
        if (bv == NULL)
            continue;
        sweep_value_kpis(c, bv);
        for (size_t i = 0; i < nseries_slots(c) && bv->nseries > 0; i++) {
            struct ring *r = bv->series[i];
            if (r == NULL)
                continue;
            size_t w;
            for (w = 0; w < c->nwin && ring_empty(&r[w]); w++)
                ;
            if (w == c->nwin) {
                free(r);
                bv->series[i] = NULL;
                bv->nseries--;
            }
        }
        if (bv->nseries > 0)
            continue;
        if (v == bd->nvalues) {
            bvalue_free(c, bd->other);
            bd->other = NULL;
            continue;
        }
        hash_remove(c, bd, hash_find(c, bd, bv->name, bv->len));
        bvalue_free(c, bv);
        bd->values[v] = NULL;
        bd->free_slots[bd->nfree++] = v;
        bd->live--;
    }
}

static struct ring *
value_series(struct compliance *c, struct bvalue *bv, size_t ti, int metric)
{
    struct ring **r = &bv->series[series_ix(c, ti, metric)];
    if (*r == NULL) {
        *r = calloc(c->nwin, sizeof(**r));
        if (*r == NULL)
            return NULL;
        bv->nseries++;
    }
    return *r;
}

static void
breakdown_free(const struct compliance *c, struct breakdown *bd)
{
    for (uint32_t v = 0; v < bd->nvalues; v++)
        bvalue_free(c, bd->values[v]);
    bvalue_free(c, bd->other);
    free(bd->values);
    free(bd->free_slots);
    free(bd->hash);
    memset(bd, 0, sizeof(*bd));
}

/* ---- life cycle ------------------------------------------------------- */

struct compliance *
cmp_new(const struct config *cfg, int64_t now_ms)
{
    struct compliance *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->cfg = cfg;
    c->ntiers = cfg->ntiers;
    c->nwin = cfg->compliance.nwindows;
    c->now_ms = now_ms;
    c->seed = table_random_seed();
    for (size_t w = 0; w < c->nwin; w++) {
        struct window *win = &c->win[w];
        win->ms = cfg->compliance.windows[w].ms;
        win->width_ms = win->ms / CMP_BUCKETS > 0 ? win->ms / CMP_BUCKETS : 1;
        win->head = floor_div(now_ms, win->width_ms);
        win->name = cfg->compliance.windows[w].name;
    }
    size_t n = nseries_slots(c) * (c->nwin ? c->nwin : 1);
    c->main = calloc(n, sizeof(*c->main));
    c->elapsed = calloc(n, sizeof(*c->elapsed));
    c->kpi = calloc((c->ntiers + 1) * (c->nwin ? c->nwin : 1), sizeof(*c->kpi));
    if (c->main == NULL || c->elapsed == NULL || c->kpi == NULL) {
        cmp_free(c);
        return NULL;
    }
    for (int a = 0; a < ATTR_COUNT; a++)
        if (cfg->compliance.by[a])
            c->by[c->nby++].attr = a;
    return c;
}

void
cmp_free(struct compliance *c)
{
    if (c == NULL)
        return;
    for (size_t a = 0; a < c->nby; a++)
        breakdown_free(c, &c->by[a]);
    if (c->elapsed)
        for (size_t i = 0; i < nseries_slots(c) * c->nwin; i++)
            hist_free(c->elapsed[i]);
    free(c->elapsed);
    free(c->kpi);
    free(c->main);
    free(c);
}

int
cmp_set_config(struct compliance *c, const struct config *cfg)
{
    struct compliance *fresh = cmp_new(cfg, c->now_ms);
    struct wire_buf b;
    if (fresh == NULL)
        return -1;
    /* The checkpoint encoding already maps tiers by name and windows by
     * length; a reload is a checkpoint handed to the new layout. */
    wire_init(&b);
    if (cmp_encode(c, &b) < 0 || cmp_decode(fresh, b.data, b.len) < 0) {
        wire_free(&b);
        cmp_free(fresh);
        return -1;
    }
    wire_free(&b);
    struct compliance tmp = *c;
    *c = *fresh;
    *fresh = tmp;
    cmp_free(fresh);
    return 0;
}

/* ---- recording -------------------------------------------------------- */

int
cmp_record(struct compliance *c, int tier, int metric, bool met,
           int64_t decided_ms, const char *const attr[ATTR_COUNT])
{
    long ti = tier_ix(c, tier);
    int slots[CFG_MAX_WINDOWS];
    bool any = false, failed = false;
    uint32_t m = met ? 1 : 0, b = met ? 0 : 1;

    if (ti < 0 || metric < 0 || metric >= METRIC_COUNT)
        return -1;
    for (size_t w = 0; w < c->nwin; w++) {
        slots[w] = win_slot(c, w, decided_ms);
        if (slots[w] < 0)
            continue;
        any = true;
        ring_add(main_ring(c, (size_t)ti, metric, w), slots[w], m, b);
        ring_add(main_ring(c, c->ntiers, metric, w), slots[w], m, b);
    }
    if (!any)
        return 0;
    for (size_t a = 0; a < c->nby; a++) {
        struct breakdown *bd = &c->by[a];
        const char *v = attr ? attr[bd->attr] : NULL;
        if (v == NULL)
            v = CMP_NONE;
        struct bvalue *bv = value_get(c, bd, v, strlen(v), &failed);
        if (bv == NULL) {
            failed = true;
            continue;
        }
        struct ring *own = value_series(c, bv, (size_t)ti, metric);
        struct ring *all = value_series(c, bv, c->ntiers, metric);
        if (own == NULL || all == NULL) {
            failed = true;
            continue;
        }
        for (size_t w = 0; w < c->nwin; w++) {
            if (slots[w] < 0)
                continue;
            ring_add(&own[w], slots[w], m, b);
            ring_add(&all[w], slots[w], m, b);
        }
    }
    return failed ? -1 : 0;
}

/* The histogram of a series in window w, allocated on first use. */
static struct hist *
elapsed_get(struct compliance *c, size_t ti, int metric, size_t w)
{
    struct hist **h = elapsed_of(c, ti, metric, w);
    if (*h == NULL)
        *h = hist_new(CMP_SLOTS);
    return *h;
}

int
cmp_record_elapsed(struct compliance *c, int tier, int metric, int64_t at_ms,
                   int64_t elapsed_ms)
{
    long ti = tier_ix(c, tier);
    int rc = 0;
    if (ti < 0 || metric < 0 || metric >= METRIC_COUNT)
        return -1;
    for (size_t w = 0; w < c->nwin; w++) {
        int s = win_slot(c, w, at_ms);
        if (s < 0)
            continue;
        struct hist *own = elapsed_get(c, (size_t)ti, metric, w);
        struct hist *all = elapsed_get(c, c->ntiers, metric, w);
        if (own == NULL || hist_add(own, s, elapsed_ms) < 0)
            rc = -1;
        if (all == NULL || hist_add(all, s, elapsed_ms) < 0)
            rc = -1;
    }
    return rc;
}

int
cmp_record_response_time(struct compliance *c, int tier, int64_t at_ms,
                         int64_t elapsed_ms)
{
    return cmp_record_elapsed(c, tier, METRIC_RESPONSE, at_ms, elapsed_ms);
}

/* ---- KPI facts -------------------------------------------------------- */

/* The KPI rings of a value for tier index ti, allocated on first use when
 * `create`; NULL when absent or on allocation failure. */
static struct kpi_ring *
value_kpi(const struct compliance *c, struct bvalue *bv, size_t ti, bool create)
{
    struct kpi_ring **r = &bv->kpi[ti];
    if (*r == NULL && create) {
        *r = calloc(c->nwin, sizeof(**r));
        if (*r != NULL)
            bv->nseries++;
    }
    return *r;
}

int
cmp_record_kpi(struct compliance *c, const struct sla_kpi *k)
{
    long ti = tier_ix(c, k->tier_index);
    uint32_t d[KPI_COUNTERS];
    int slots[CFG_MAX_WINDOWS];
    bool any = false, failed = false;

    if (ti < 0 || kpi_fact_counters(k, d) < 0)
        return -1;
    for (size_t w = 0; w < c->nwin; w++) {
        slots[w] = win_slot(c, w, k->at_ms);
        if (slots[w] < 0)
            continue;
        any = true;
        c->kpi_saturated += !kpi_ring_apply(&c->kpi[(size_t)ti * c->nwin + w], slots[w], d,
                                         k->delta);
        c->kpi_saturated += !kpi_ring_apply(&c->kpi[c->ntiers * c->nwin + w], slots[w], d,
                                         k->delta);
    }
    if (!any)
        return 0;
    for (size_t a = 0; a < c->nby; a++) {
        struct breakdown *bd = &c->by[a];
        const char *v = k->attr[bd->attr] ? k->attr[bd->attr] : CMP_NONE;
        bool add = k->delta > 0;
        /* A withdrawal creates nothing: it finds the value where the
         * rating went, or saturates. */
        struct bvalue *bv = add ? value_get(c, bd, v, strlen(v), &failed)
                                : value_find(c, bd, v, strlen(v));
        struct kpi_ring *own = bv ? value_kpi(c, bv, (size_t)ti, add) : NULL;
        struct kpi_ring *all = bv ? value_kpi(c, bv, c->ntiers, add) : NULL;
        if (add && (own == NULL || all == NULL))
            failed = true;
        for (size_t w = 0; w < c->nwin; w++) {
            if (slots[w] < 0)
                continue;
            c->kpi_saturated += own == NULL || !kpi_ring_apply(&own[w], slots[w], d, k->delta);
            c->kpi_saturated += all == NULL || !kpi_ring_apply(&all[w], slots[w], d, k->delta);
        }
    }
    return failed ? -1 : 0;
}

void
cmp_advance(struct compliance *c, int64_t now_ms)
{
    if (now_ms > c->now_ms)
        c->now_ms = now_ms;
    for (size_t w = 0; w < c->nwin; w++)
        win_advance(c, w, floor_div(c->now_ms, c->win[w].width_ms));
    for (size_t a = 0; a < c->nby; a++)
        sweep_values(c, &c->by[a]);
}

/* ---- reading ---------------------------------------------------------- */

struct cmp_counts
cmp_counts(const struct compliance *c, int tier, int metric, int w)
{
    struct cmp_counts k = { 0, 0 };
    long ti = tier_ix(c, tier);
    if (ti < 0 || metric < 0 || metric >= METRIC_COUNT || w < 0 ||
        (size_t)w >= c->nwin)
        return k;
    const struct ring *r = main_ring(c, (size_t)ti, metric, (size_t)w);
    k.met = r->tot_met;
    k.breached = r->tot_breached;
    return k;
}

static int
public_tier(const struct compliance *c, size_t ti)
{
    return ti == c->ntiers ? CMP_ALL : (int)ti;
}

void
cmp_foreach(const struct compliance *c,
            void (*fn)(void *arg, const struct cmp_series *s), void *arg)
{
    struct cmp_counts counts[CFG_MAX_WINDOWS];
    struct cmp_series s = { .counts = counts };

    s.attr = -1;
    s.value = NULL;
    for (int m = 0; m < METRIC_COUNT; m++)
        for (size_t ti = 0; ti <= c->ntiers; ti++) {
            if (!has_metric(c, ti, m))
                continue;
            for (size_t w = 0; w < c->nwin; w++) {
                const struct ring *r = main_ring(c, ti, m, w);
                counts[w] = (struct cmp_counts){ r->tot_met, r->tot_breached };
            }
            s.tier = public_tier(c, ti);
            s.metric = m;
            fn(arg, &s);
        }
    for (size_t a = 0; a < c->nby; a++) {
        const struct breakdown *bd = &c->by[a];
        s.attr = bd->attr;
        for (uint32_t v = 0; v <= bd->nvalues; v++) {
            const struct bvalue *bv = v < bd->nvalues ? bd->values[v] : bd->other;
            if (bv == NULL || bv->nseries == 0)
                continue;
            s.value = bv->name;
            for (int m = 0; m < METRIC_COUNT; m++)
                for (size_t ti = 0; ti <= c->ntiers; ti++) {
                    const struct ring *r = bv->series[series_ix(c, ti, m)];
                    if (r == NULL)
                        continue;
                    for (size_t w = 0; w < c->nwin; w++)
                        counts[w] = (struct cmp_counts){ r[w].tot_met, r[w].tot_breached };
                    s.tier = public_tier(c, ti);
                    s.metric = m;
                    fn(arg, &s);
                }
        }
    }
}

bool
cmp_elapsed(const struct compliance *c, int tier, int metric, int w,
            struct cmp_latency *out)
{
    long ti = tier_ix(c, tier);
    struct hist_stats st;
    memset(out, 0, sizeof(*out));
    if (ti < 0 || metric < 0 || metric >= METRIC_COUNT || w < 0 || (size_t)w >= c->nwin)
        return false;
    if (!hist_stats(*elapsed_of(c, (size_t)ti, metric, (size_t)w), &st))
        return false;
    *out = (struct cmp_latency){ st.count, st.mean_ms, st.p50_ms, st.p90_ms, st.p99_ms };
    return true;
}

bool
cmp_latency(const struct compliance *c, int tier, int w, struct cmp_latency *out)
{
    return cmp_elapsed(c, tier, METRIC_RESPONSE, w, out);
}

uint32_t
cmp_ratio_micro(uint64_t met, uint64_t breached)
{
    uint64_t total = met + breached;
    if (total == 0)
        return 0;
    return (uint32_t)(met * CMP_RATIO_ONE / total);
}

char *
cmp_format_ratio(uint64_t met, uint64_t breached, char *buf)
{
    uint32_t micro = cmp_ratio_micro(met, breached);
    if (micro >= CMP_RATIO_ONE) {
        snprintf(buf, CMP_RATIO_BUFLEN, "1");
        return buf;
    }
    if (micro == 0) {
        snprintf(buf, CMP_RATIO_BUFLEN, "0");
        return buf;
    }
    int n = snprintf(buf, CMP_RATIO_BUFLEN, "0.%06u", micro);
    while (n > 2 && buf[n - 1] == '0')
        buf[--n] = '\0';
    return buf;
}

/* ---- KPIs ----------------------------------------------------------- */

bool
cmp_kpi(const struct compliance *c, int tier, int attr, const char *value, int w,
        struct cmp_kpi_counts *out)
{
    long ti = tier_ix(c, tier);
    const struct kpi_ring *r = NULL;
    memset(out, 0, sizeof(*out));
    if (ti < 0 || w < 0 || (size_t)w >= c->nwin)
        return false;
    if (attr < 0) {
        r = &c->kpi[(size_t)ti * c->nwin + (size_t)w];
    } else {
        const char *v = value ? value : CMP_NONE;
        for (size_t a = 0; a < c->nby && r == NULL; a++) {
            const struct breakdown *bd = &c->by[a];
            if (bd->attr != attr)
                continue;
            const struct bvalue *bv = NULL;
            if (strcmp(v, CMP_OTHER) == 0) {
                bv = bd->other;
            } else {
                const uint32_t *e = hash_find(c, bd, v, strlen(v));
                bv = e && *e ? bd->values[*e - 1] : NULL;
            }
            if (bv && bv->kpi[ti])
                r = &bv->kpi[ti][w];
        }
        if (r == NULL)
            return false;
    }
    kpi_ring_counts(r, out);
    return true;
}

bool
cmp_kpi_value(const struct compliance *c, int tier, int kpi, int w, double *out)
{
    struct cmp_kpi_counts k;
    uint64_t micro;
    *out = 0;
    if (!cmp_kpi(c, tier, -1, NULL, w, &k) || !cmp_kpi_micro(&k, kpi, &micro))
        return false;
    *out = kpi == CMP_KPI_CSAT_COUNT ? (double)(micro / CMP_RATIO_ONE)
                                     : (double)micro / CMP_RATIO_ONE;
    return true;
}

void
cmp_kpi_foreach(const struct compliance *c,
                void (*fn)(void *arg, const struct cmp_kpi_series *s), void *arg)
{
    struct cmp_kpi_counts counts[CFG_MAX_WINDOWS];
    struct cmp_kpi_series s = { .counts = counts, .attr = -1, .value = NULL };

    for (size_t ti = 0; ti <= c->ntiers; ti++) {
        for (size_t w = 0; w < c->nwin; w++)
            kpi_ring_counts(&c->kpi[ti * c->nwin + w], &counts[w]);
        s.tier = public_tier(c, ti);
        fn(arg, &s);
    }
    for (size_t a = 0; a < c->nby; a++) {
        const struct breakdown *bd = &c->by[a];
        s.attr = bd->attr;
        for (uint32_t v = 0; v <= bd->nvalues; v++) {
            const struct bvalue *bv = v < bd->nvalues ? bd->values[v] : bd->other;
            if (bv == NULL || bv->nseries == 0)
                continue;
            s.value = bv->name;
            for (size_t ti = 0; ti <= c->ntiers; ti++) {
                if (bv->kpi[ti] == NULL)
                    continue;
                for (size_t w = 0; w < c->nwin; w++)
                    kpi_ring_counts(&bv->kpi[ti][w], &counts[w]);
                s.tier = public_tier(c, ti);
                fn(arg, &s);
            }
        }
    }
}

uint64_t
cmp_kpi_saturated(const struct compliance *c)
{
    return c->kpi_saturated;
}

/* ---- checkpoint section ----------------------------------------------
 *
 *   u32 format, u32 nwin, nwin x (u64 window ms, u64 head bucket)
 *   then records until the end, each starting with a type byte:
 *   'R' tier, u8 metric, u8 attr (0xff: none) [, value], u8 window,
 *       u8 n, n x (u8 age, u32 met, u32 breached)       a ring
 *   'E' tier, u8 metric, u8 window, u8 n, n x (u8 age, u32 count, u64 sum,
 *       i64 min, i64 max, u16 nbins, nbins x (u16 bin, u32 count))
 *       elapsed times (a slot: hist.c)
 *   'L' (formats 1 and 2) the same without the metric: response times
 *   'K' tier, u8 attr (0xff: none) [, value], u8 window, u8 n,
 *       n x (u8 age, u32 resolved, u32 fcr, u32 reopened, u32 good,
 *       u32 bad, u32 scored, u32 score_sum)              KPI counts
 *   'O' tier, u8 metric, u8 window, u8 violated, u8 streak, u32 episodes
 *       (format 1 had no episodes: they read as 0): compliance.objective's
 *       states, written before objective.c kept them in its own section;
 *       still read, handed to the legacy objective hook, never written
 *   Strings are u16 length + bytes (wire_put_str; never absent here: an
 *   absent one is malformed); tier "all" is every tier. Ages count buckets
 *   back from the window's head, so the section does not depend on the
 *   bucket layout of the process that reads it. Bytes through wire.h.
 */

static void
put_ring(const struct compliance *c, struct wire_buf *b, size_t ti, int metric,
         const struct breakdown *bd, const struct bvalue *bv, size_t w,
         const struct ring *r)
{
    uint8_t n = 0;
    if (ring_empty(r))
        return;
    for (int s = 0; s < CMP_SLOTS; s++)
        n += r->met[s] || r->breached[s];
    wire_put_u8(b, 'R');
    wire_put_str(b, tier_name(c, ti), strlen(tier_name(c, ti)));
    wire_put_u8(b, (uint8_t)metric);
    wire_put_u8(b, bd ? (uint8_t)bd->attr : NO_ATTR);
    if (bd)
        wire_put_str(b, bv->name, bv->len);
    wire_put_u8(b, (uint8_t)w);
    wire_put_u8(b, n);
    for (int age = 0; age < CMP_SLOTS; age++) {
        int s = slot_of(c->win[w].head - age);
        if (r->met[s] == 0 && r->breached[s] == 0)
            continue;
        wire_put_u8(b, (uint8_t)age);
        wire_put_u32(b, r->met[s]);
        wire_put_u32(b, r->breached[s]);
    }
}

static void
put_elapsed(const struct compliance *c, struct wire_buf *b, size_t ti, int metric,
            size_t w, const struct hist *h)
{
    uint8_t n = 0;
    if (h == NULL || hist_count(h) == 0)
        return;
    for (int s = 0; s < CMP_SLOTS; s++)
        n += hist_slot_count(h, s) > 0;
    wire_put_u8(b, 'E');
    wire_put_str(b, tier_name(c, ti), strlen(tier_name(c, ti)));
    wire_put_u8(b, (uint8_t)metric);
    wire_put_u8(b, (uint8_t)w);
    wire_put_u8(b, n);
    for (int age = 0; age < CMP_SLOTS; age++) {
        int s = slot_of(c->win[w].head - age);
        if (hist_slot_count(h, s) == 0)
            continue;
        wire_put_u8(b, (uint8_t)age);
        hist_put_slot(h, s, b);
    }
}

static void
put_kpi(const struct compliance *c, struct wire_buf *b, size_t ti,
        const struct breakdown *bd, const struct bvalue *bv, size_t w,
        const struct kpi_ring *r)
{
    uint8_t n = 0;
    if (kpi_ring_empty(r))
        return;
    for (int s = 0; s < CMP_SLOTS; s++)
        n += !kpi_ring_slot_empty(r, s);
    wire_put_u8(b, 'K');
    wire_put_str(b, tier_name(c, ti), strlen(tier_name(c, ti)));
    wire_put_u8(b, bd ? (uint8_t)bd->attr : NO_ATTR);
    if (bd)
        wire_put_str(b, bv->name, bv->len);
    wire_put_u8(b, (uint8_t)w);
    wire_put_u8(b, n);
    for (int age = 0; age < CMP_SLOTS; age++) {
        int s = slot_of(c->win[w].head - age);
        if (kpi_ring_slot_empty(r, s))
            continue;
        wire_put_u8(b, (uint8_t)age);
        kpi_ring_put_slot(r, s, b);
    }
}

/* The elapsed-time and KPI records. */
static void
put_v2(const struct compliance *c, struct wire_buf *b)
{
    for (size_t ti = 0; ti <= c->ntiers; ti++)
        for (int m = 0; m < METRIC_COUNT; m++)
            for (size_t w = 0; w < c->nwin; w++)
                put_elapsed(c, b, ti, m, w, *elapsed_of(c, ti, m, w));
    for (size_t ti = 0; ti <= c->ntiers; ti++)
        for (size_t w = 0; w < c->nwin; w++)
            put_kpi(c, b, ti, NULL, NULL, w, &c->kpi[ti * c->nwin + w]);
    for (size_t a = 0; a < c->nby; a++) {
        const struct breakdown *bd = &c->by[a];
        for (uint32_t v = 0; v <= bd->nvalues; v++) {
            const struct bvalue *bv = v < bd->nvalues ? bd->values[v] : bd->other;
            if (bv == NULL)
                continue;
            for (size_t ti = 0; ti <= c->ntiers; ti++)
                if (bv->kpi[ti])
                    for (size_t w = 0; w < c->nwin; w++)
                        put_kpi(c, b, ti, bd, bv, w, &bv->kpi[ti][w]);
        }
    }
}

int
cmp_encode(const struct compliance *c, struct wire_buf *b)
{
    wire_put_u32(b, CMP_FORMAT);
    wire_put_u32(b, (uint32_t)c->nwin);
    for (size_t w = 0; w < c->nwin; w++) {
        wire_put_i64(b, c->win[w].ms);
        wire_put_i64(b, c->win[w].head);
    }
    for (size_t ti = 0; ti <= c->ntiers; ti++)
        for (int m = 0; m < METRIC_COUNT; m++)
            for (size_t w = 0; w < c->nwin; w++)
                put_ring(c, b, ti, m, NULL, NULL, w, main_ring(c, ti, m, w));
    for (size_t a = 0; a < c->nby; a++) {
        const struct breakdown *bd = &c->by[a];
        for (uint32_t v = 0; v <= bd->nvalues; v++) {
            const struct bvalue *bv = v < bd->nvalues ? bd->values[v] : bd->other;
            if (bv == NULL)
                continue;
            for (size_t i = 0; i < nseries_slots(c); i++)
                if (bv->series[i])
                    for (size_t w = 0; w < c->nwin; w++)
                        put_ring(c, b, i / METRIC_COUNT, (int)(i % METRIC_COUNT), bd,
                                 bv, w, &bv->series[i][w]);
        }
    }
    put_v2(c, b);
    return b->oom ? -1 : 0;
}

/* Current tier index of a saved tier name (ntiers for all), or -1. */
static long
saved_tier(const struct compliance *c, const char *s, size_t len)
{
    if (len == 3 && memcmp(s, "all", 3) == 0)
        return (long)c->ntiers;
    return cfg_tier_index(c->cfg, s, len);
}

static struct breakdown *
breakdown_of(struct compliance *c, int attr)
{
    for (size_t a = 0; a < c->nby; a++)
        if (c->by[a].attr == attr)
            return &c->by[a];
    return NULL;
}

struct saved_win {
    long w;                      /* current index, -1: gone */
    int64_t head;
};

/* Reads one 'R' record into the matching ring, if any still exists. */
static int
decode_ring(struct compliance *c, struct wire_reader *r, const struct saved_win *sw,
            uint32_t nsaved)
{
    size_t tlen, vlen = 0;
    const char *tname = wire_get_str(r, &tlen);
    int metric = wire_get_u8(r);
    int attr = wire_get_u8(r);
    const char *value = attr != NO_ATTR ? wire_get_str(r, &vlen) : NULL;
    uint32_t wi = wire_get_u8(r);
    int n = wire_get_u8(r);
    if (r->bad || tname == NULL || metric >= METRIC_COUNT ||
        (attr != NO_ATTR && (attr >= ATTR_COUNT || value == NULL)) || wi >= nsaved ||
        n > CMP_SLOTS)
        return -1;
    long ti = saved_tier(c, tname, tlen);
    long w = sw[wi].w;
    struct ring *ring = NULL;
    bool failed = false;
    if (ti >= 0 && w >= 0) {
        if (attr == NO_ATTR) {
            ring = main_ring(c, (size_t)ti, metric, (size_t)w);
        } else {
            struct breakdown *bd = breakdown_of(c, attr);
            if (bd != NULL) {
                struct bvalue *bv = value_get(c, bd, value, vlen, &failed);
                struct ring *series = bv ? value_series(c, bv, (size_t)ti, metric) : NULL;
                if (series == NULL)
                    return -1;
                ring = &series[w];
            }
        }
    }
    for (int i = 0; i < n; i++) {
        int age = wire_get_u8(r);
        uint32_t met = wire_get_u32(r), breached = wire_get_u32(r);
        if (r->bad || age >= CMP_SLOTS)
            return -1;
        if (ring == NULL)
            continue;
        int s = win_slot_bucket(c, (size_t)w, sw[wi].head - age);
        if (s >= 0)
            ring_add(ring, s, met, breached);
    }
    return failed ? -1 : 0;
}

/* Reads one 'E' record (metric < 0) or, for the response metric, one
 * 'L' record of formats 1 and 2 into the matching histogram, if any. */
static int
decode_elapsed(struct compliance *c, struct wire_reader *r, const struct saved_win *sw,
               uint32_t nsaved, int metric)
{
    size_t tlen;
    const char *tname = wire_get_str(r, &tlen);
    if (metric < 0)
        metric = wire_get_u8(r);
    uint32_t wi = wire_get_u8(r);
    int n = wire_get_u8(r);
    if (r->bad || tname == NULL || metric >= METRIC_COUNT || wi >= nsaved || n > CMP_SLOTS)
        return -1;
    long ti = saved_tier(c, tname, tlen);
    long w = sw[wi].w;
    struct hist *h = ti >= 0 && w >= 0 ? elapsed_get(c, (size_t)ti, metric, (size_t)w) : NULL;
    if (ti >= 0 && w >= 0 && h == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        int age = wire_get_u8(r);
        if (r->bad || age >= CMP_SLOTS)
            return -1;
        int s = h ? win_slot_bucket(c, (size_t)w, sw[wi].head - age) : -1;
        if (hist_get_slot(h, s, r) < 0)
            return -1;
    }
    return 0;
}

/* Reads one 'K' record into the matching KPI ring, if any still exists. */
static int
decode_kpi(struct compliance *c, struct wire_reader *r, const struct saved_win *sw,
           uint32_t nsaved)
{
    size_t tlen, vlen = 0;
    const char *tname = wire_get_str(r, &tlen);
    int attr = wire_get_u8(r);
    const char *value = attr != NO_ATTR ? wire_get_str(r, &vlen) : NULL;
    uint32_t wi = wire_get_u8(r);
    int n = wire_get_u8(r);
    if (r->bad || tname == NULL || (attr != NO_ATTR && (attr >= ATTR_COUNT || value == NULL)) ||
        wi >= nsaved || n > CMP_SLOTS)
        return -1;
    long ti = saved_tier(c, tname, tlen);
    long w = sw[wi].w;
    struct kpi_ring *ring = NULL;
    bool failed = false;
    if (ti >= 0 && w >= 0) {
        if (attr == NO_ATTR) {
            ring = &c->kpi[(size_t)ti * c->nwin + (size_t)w];
        } else {
            struct breakdown *bd = breakdown_of(c, attr);
            if (bd != NULL) {
                struct bvalue *bv = value_get(c, bd, value, vlen, &failed);
                struct kpi_ring *series = bv ? value_kpi(c, bv, (size_t)ti, true) : NULL;
                if (series == NULL)
                    return -1;
                ring = &series[w];
            }
        }
    }
    for (int i = 0; i < n; i++) {
        int age = wire_get_u8(r);
        if (r->bad || age >= CMP_SLOTS)
            return -1;
        int s = ring ? win_slot_bucket(c, (size_t)w, sw[wi].head - age) : -1;
        if (kpi_ring_get_slot(ring, s, r) < 0)
            return -1;
    }
    return failed ? -1 : 0;
}

int
cmp_decode(struct compliance *c, const char *data, size_t len)
{
    struct wire_reader r;
    struct saved_win sw[CFG_MAX_WINDOWS];

    wire_reader_init(&r, data, len);
    uint32_t format = wire_get_u32(&r);
    if (r.bad || format < CMP_FORMAT_MIN || format > CMP_FORMAT)
        return -1;
    uint32_t nsaved = wire_get_u32(&r);
    if (r.bad || nsaved > CFG_MAX_WINDOWS)
        return -1;
    for (uint32_t i = 0; i < nsaved; i++) {
        int64_t ms = wire_get_i64(&r);
        sw[i].head = wire_get_i64(&r);
        sw[i].w = -1;
        for (size_t w = 0; w < c->nwin; w++)
            if (c->win[w].ms == ms)
                sw[i].w = (long)w;
    }
    while (!r.bad && r.left > 0) {
        int type = wire_get_u8(&r);
        if (type == 'R') {
            if (decode_ring(c, &r, sw, nsaved) < 0)
                return -1;
        } else if (type == 'L' && format <= 2) {
            if (decode_elapsed(c, &r, sw, nsaved, METRIC_RESPONSE) < 0)
                return -1;
        } else if (type == 'E' && format >= 3) {
            if (decode_elapsed(c, &r, sw, nsaved, -1) < 0)
                return -1;
        } else if (type == 'K' && format >= 3) {
            if (decode_kpi(c, &r, sw, nsaved) < 0)
                return -1;
        } else if (type == 'O') {
            size_t tlen;
            const char *tname = wire_get_str(&r, &tlen);
            int metric = wire_get_u8(&r);
            uint32_t wi = wire_get_u8(&r);
            uint8_t violated = wire_get_u8(&r), streak = wire_get_u8(&r);
            uint32_t episodes = format >= 2 ? wire_get_u32(&r) : 0;
            if (r.bad || tname == NULL || metric >= METRIC_COUNT || wi >= nsaved)
                return -1;
            long ti = saved_tier(c, tname, tlen);
            if (ti >= 0 && sw[wi].w >= 0 && c->legacy_objective != NULL)
                /* A format 1 violation had no number: it is the first. */
                c->legacy_objective(c->legacy_objective_arg, public_tier(c, (size_t)ti),
                                    metric, (int)sw[wi].w, violated != 0, streak,
                                    episodes || !violated ? episodes : 1);
        } else {
            return -1;
        }
    }
    return r.bad ? -1 : 0;
}

size_t
cmp_memory(const struct compliance *c)
{
    size_t n = sizeof(*c);
    size_t ns = nseries_slots(c) * c->nwin;
    n += ns * sizeof(struct ring);
    for (size_t i = 0; i < ns; i++)
        n += sizeof(struct hist *) + (c->elapsed[i] ? hist_memory(c->elapsed[i]) : 0);
    n += (c->ntiers + 1) * c->nwin * sizeof(struct kpi_ring);
    for (size_t a = 0; a < c->nby; a++) {
        const struct breakdown *bd = &c->by[a];
        n += bd->cap * (sizeof(struct bvalue *) + sizeof(uint32_t)) +
             bd->nhash * sizeof(uint32_t);
        for (uint32_t v = 0; v <= bd->nvalues; v++) {
            const struct bvalue *bv = v < bd->nvalues ? bd->values[v] : bd->other;
            if (bv == NULL)
                continue;
            n += sizeof(*bv) + nseries_slots(c) * sizeof(bv->series[0]) +
                 (c->ntiers + 1) * sizeof(bv->kpi[0]) + bv->len + 1;
            for (size_t i = 0; i < nseries_slots(c); i++)
                n += bv->series[i] ? c->nwin * sizeof(struct ring) : 0;
            for (size_t ti = 0; ti <= c->ntiers; ti++)
                n += bv->kpi[ti] ? c->nwin * sizeof(struct kpi_ring) : 0;
        }
    }
    return n;
}

void
cmp_set_legacy_objective_hook(struct compliance *c, cmp_legacy_objective_fn *fn, void *arg)
{
    c->legacy_objective = fn;
    c->legacy_objective_arg = arg;
}
