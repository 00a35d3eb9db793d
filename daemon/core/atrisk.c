/*
 * atrisk.c - deadline counts of running, not yet breached clocks (see
 * atrisk.h). Owns the per-series rings and the map of far deadlines. Must
 * not do I/O or read a clock, and must never scan tickets: it only sees
 * the core's deadline changes.
 *
 *       past        ring: buckets [base, base + ATRISK_RING)     far map
 *   <-- due, not --|-----|-----|-----|- ... -|-----|-----|--> (series, bucket)
 *       fired yet   base                                        -> count
 *
 * A deadline goes where its bucket lies; advancing `base` moves the
 * buckets it passes into `past` and pulls the far buckets that enter the
 * ring out of the map.
 */
#include "slawatch/atrisk.h"

#include <stdlib.h>
#include <string.h>

#define NSERIES (CFG_MAX_TIERS * METRIC_COUNT)
#define SERIES_BITS 8
_Static_assert(NSERIES <= 1 << SERIES_BITS, "series index does not fit its bits");
#define MAP_EMPTY UINT64_MAX

struct series {
    int32_t ring[ATRISK_RING];   /* by bucket % ATRISK_RING */
    long past;                   /* deadlines in buckets before base */
    long total;                  /* every counted clock */
};

struct far_entry {
    uint64_t key;                /* bucket << SERIES_BITS | series */
    long count;
};

struct atrisk {
    int64_t now_ms;
    int64_t base;                /* bucket of now */
    struct series *series[NSERIES];
    size_t nseries;              /* allocated */
    struct far_entry *map;       /* open addressing, linear probing */
    size_t map_cap;              /* power of two, or 0 */
    size_t map_n;
    bool degraded;
};

static int64_t
bucket_of(int64_t ms)
{
    int64_t q = ms / ATRISK_GRAIN_MS;
    return (ms % ATRISK_GRAIN_MS != 0 && ms < 0) ? q - 1 : q;
}

static size_t
ring_ix(int64_t bucket)
{
    return (size_t)(((bucket % ATRISK_RING) + ATRISK_RING) % ATRISK_RING);
}

static uint64_t
map_key(int64_t bucket, int s)
{
    return (uint64_t)bucket << SERIES_BITS | (uint64_t)s;
}

static size_t
map_home(const struct atrisk *ar, uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (ar->map_cap - 1);
}

static struct far_entry *
map_find(const struct atrisk *ar, uint64_t key)
{
    if (ar->map_cap == 0)
        return NULL;
    for (size_t i = map_home(ar, key);; i = (i + 1) & (ar->map_cap - 1)) {
        struct far_entry *e = &ar->map[i];
        if (e->key == key)
            return e;
        if (e->key == MAP_EMPTY)
            return NULL;
    }
}

static int
map_grow(struct atrisk *ar)
{
    size_t cap = ar->map_cap ? ar->map_cap * 2 : 1024;
    struct far_entry *m = malloc(cap * sizeof(*m));
    if (m == NULL)
        return -1;
    for (size_t i = 0; i < cap; i++)
        m[i].key = MAP_EMPTY;
    struct far_entry *old = ar->map;
    size_t old_cap = ar->map_cap;
    ar->map = m;
    ar->map_cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key == MAP_EMPTY)
            continue;
        size_t j = map_home(ar, old[i].key);
        while (m[j].key != MAP_EMPTY)
            j = (j + 1) & (cap - 1);
        m[j] = old[i];
    }
    free(old);
    return 0;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void
map_remove(struct atrisk *ar, struct far_entry *e)
{
    size_t mask = ar->map_cap - 1;
    size_t i = (size_t)(e - ar->map);
    for (size_t j = (i + 1) & mask; ar->map[j].key != MAP_EMPTY; j = (j + 1) & mask) {
        size_t home = map_home(ar, ar->map[j].key);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            ar->map[i] = ar->map[j];
            i = j;
        }
    }
    ar->map[i].key = MAP_EMPTY;
    ar->map_n--;
}

static int
map_add(struct atrisk *ar, uint64_t key, long delta)
{
    struct far_entry *e = map_find(ar, key);
    if (e == NULL) {
        if ((ar->map_n + 1) * 2 > ar->map_cap && map_grow(ar) < 0)
            return -1;
        size_t i = map_home(ar, key);
        while (ar->map[i].key != MAP_EMPTY)
            i = (i + 1) & (ar->map_cap - 1);
        e = &ar->map[i];
        e->key = key;
        e->count = 0;
        ar->map_n++;
    }
    e->count += delta;
    if (e->count == 0)
        map_remove(ar, e);
    return 0;
}

struct atrisk *
atrisk_new(int64_t now_ms)
{
    struct atrisk *ar = calloc(1, sizeof(*ar));
    if (ar == NULL)
        return NULL;
    ar->now_ms = now_ms;
    ar->base = bucket_of(now_ms);
    return ar;
}

void
atrisk_free(struct atrisk *ar)
{
    if (ar == NULL)
        return;
    for (int s = 0; s < NSERIES; s++)
        free(ar->series[s]);
    free(ar->map);
    free(ar);
}

static int
series_index(int tier, int metric)
{
    if (tier < 0 || tier >= CFG_MAX_TIERS || metric < 0 || metric >= METRIC_COUNT)
        return -1;
    return tier * METRIC_COUNT + metric;
}

static struct series *
series_get(struct atrisk *ar, int s)
{
    if (ar->series[s] == NULL) {
        ar->series[s] = calloc(1, sizeof(struct series));
        if (ar->series[s] != NULL)
            ar->nseries++;
    }
    return ar->series[s];
}

static void
count(struct atrisk *ar, int tier, int metric, int64_t deadline_ms, long delta)
{
    int s = series_index(tier, metric);
    if (s < 0)
        return;
    struct series *se = series_get(ar, s);
    if (se == NULL) {
        ar->degraded = true;
        return;
    }
    int64_t b = bucket_of(deadline_ms);
    if (b < ar->base)
        se->past += delta;
    else if (b - ar->base < ATRISK_RING)
        se->ring[ring_ix(b)] += (int32_t)delta;
    else if (map_add(ar, map_key(b, s), delta) < 0) {
        ar->degraded = true;
        return;
    }
    se->total += delta;
}

void
atrisk_change(void *arg, const struct sla_deadline_change *d)
{
    struct atrisk *ar = arg;
    if (d->old_tier >= 0)
        count(ar, d->old_tier, d->metric, d->old_deadline_ms, -1);
    if (d->new_tier >= 0)
        count(ar, d->new_tier, d->metric, d->new_deadline_ms, +1);
}

/* Pulls far bucket b (now inside the ring) out of the map for every
 * series. */
static void
pull_far_bucket(struct atrisk *ar, int64_t b)
{
    for (int s = 0; s < NSERIES; s++) {
        if (ar->series[s] == NULL)
            continue;
        struct far_entry *e = map_find(ar, map_key(b, s));
        if (e == NULL)
            continue;
        ar->series[s]->ring[ring_ix(b)] += (int32_t)e->count;
        map_remove(ar, e);
    }
}

/* One pass over the map after a jump: entries now behind go to `past`,
 * entries now inside the ring go to their slot. */
static void
rescan_far(struct atrisk *ar)
{
    for (size_t i = 0; i < ar->map_cap;) {
        struct far_entry *e = &ar->map[i];
        if (e->key == MAP_EMPTY) {
            i++;
            continue;
        }
        int64_t b = (int64_t)e->key >> SERIES_BITS;
        int s = (int)(e->key & ((1u << SERIES_BITS) - 1));
        if (b - ar->base >= ATRISK_RING) {
            i++;
            continue;
        }
        struct series *se = ar->series[s];
        if (b < ar->base)
            se->past += e->count;
        else
            se->ring[ring_ix(b)] += (int32_t)e->count;
        map_remove(ar, e); /* an entry may shift into slot i: look again */
    }
}

void
atrisk_advance(struct atrisk *ar, int64_t now_ms)
{
    if (now_ms <= ar->now_ms)
        return;
    ar->now_ms = now_ms;
    int64_t nb = bucket_of(now_ms);
    if (nb <= ar->base)
        return;
    int64_t steps = nb - ar->base;
    /* Buckets leaving the ring's front become past. */
    int64_t leave = steps < ATRISK_RING ? steps : ATRISK_RING;
    for (int s = 0; s < NSERIES; s++) {
        struct series *se = ar->series[s];
        if (se == NULL)
            continue;
        for (int64_t b = ar->base; b < ar->base + leave; b++) {
            se->past += se->ring[ring_ix(b)];
            se->ring[ring_ix(b)] = 0;
        }
    }
    int64_t old_end = ar->base + ATRISK_RING;
    ar->base = nb;
    if (ar->map_n == 0)
        return;
    /* Far buckets entering the ring: look each up, or rescan the map when
     * that is cheaper (a long jump). */
    if ((size_t)steps * ar->nseries > ar->map_n || steps >= ATRISK_RING) {
        rescan_far(ar);
        return;
    }
    for (int64_t b = old_end; b < nb + ATRISK_RING; b++)
        pull_far_bucket(ar, b);
}

long
atrisk_count(const struct atrisk *ar, int tier, int metric, int64_t horizon_ms)
{
    int s = series_index(tier, metric);
    if (s < 0 || ar->series[s] == NULL)
        return 0;
    const struct series *se = ar->series[s];
    if (horizon_ms > ATRISK_MAX_HORIZON_MS)
        horizon_ms = ATRISK_MAX_HORIZON_MS;
    if (horizon_ms < 0)
        horizon_ms = 0;
    int64_t last = bucket_of(ar->now_ms + horizon_ms);
    if (last - ar->base >= ATRISK_RING)
        last = ar->base + ATRISK_RING - 1;
    long n = se->past;
    for (int64_t b = ar->base; b <= last; b++)
        n += se->ring[ring_ix(b)];
    return n;
}

long
atrisk_running(const struct atrisk *ar, int tier, int metric)
{
    int s = series_index(tier, metric);
    return s >= 0 && ar->series[s] ? ar->series[s]->total : 0;
}

bool
atrisk_degraded(const struct atrisk *ar)
{
    return ar->degraded;
}

size_t
atrisk_memory(const struct atrisk *ar)
{
    return sizeof(*ar) + ar->nseries * sizeof(struct series) +
           ar->map_cap * sizeof(struct far_entry);
}
