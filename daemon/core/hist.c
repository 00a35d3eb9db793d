/*
 * hist.c - the elapsed-time histogram of one series in one window (see
 * hist.h): sparse slots of (bin, count) pairs and dense running totals.
 * Owns its memory and the bytes of one slot in the checkpoint (through
 * wire.h). Must not know about windows, tiers or time: compliance.c says
 * which slot an instant falls in and when a slot leaves the window.
 */
#include "slawatch/hist.h"

#include <stdlib.h>
#include <string.h>

/* One slot: `used` (bin, count) pairs sorted by bin. cnt holds cap counts
 * followed by cap 16-bit bins, in one allocation. */
struct hslot {
    uint32_t n;                  /* samples */
    uint16_t used, cap;
    uint64_t sum_ms;
    int64_t min_ms, max_ms;      /* valid while n > 0 */
    uint32_t *cnt;
};

struct hist {
    int nslots;
    uint64_t tot_n;
    uint64_t tot_sum_ms;
    uint64_t tot_bins[HIST_BINS];
    struct hslot slot[];
};

static uint16_t *
bins_of(const struct hslot *s)
{
    return (uint16_t *)(s->cnt + s->cap);
}

static int
bin_of(int64_t v)
{
    if (v < 16)
        return v < 0 ? 0 : (int)v;
    if (v >= (int64_t)1 << 32)
        return HIST_BINS - 1;
    int e = 63 - __builtin_clzll((unsigned long long)v); /* 4..31 */
    int sub = (int)((v >> (e - 4)) & 15);
    return 16 + (e - 4) * 16 + sub;
}

/* The value a bin stands for: exact below 16, else the middle of the bin. */
static int64_t
bin_value(int i)
{
    if (i < 16)
        return i;
    int e = (i - 16) / 16 + 4, sub = (i - 16) % 16;
    int64_t low = (int64_t)(16 + sub) << (e - 4);
    return low + (((int64_t)1 << (e - 4)) >> 1);
}

struct hist *
hist_new(int nslots)
{
    if (nslots < 1 || nslots > 255)
        return NULL;
    struct hist *h = calloc(1, sizeof(*h) + (size_t)nslots * sizeof(h->slot[0]));
    if (h != NULL)
        h->nslots = nslots;
    return h;
}

void
hist_free(struct hist *h)
{
    if (h == NULL)
        return;
    for (int s = 0; s < h->nslots; s++)
        free(h->slot[s].cnt);
    free(h);
}

/* The index of `bin` in the slot, or the place to insert it (*found false). */
static int
slot_find(const struct hslot *s, int bin, bool *found)
{
    *found = false;
    if (s->used == 0)
        return 0; /* cnt may still be NULL: no pointer to compute */
    const uint16_t *b = bins_of(s);
    int lo = 0, hi = s->used;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (b[mid] < bin)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->used && b[lo] == bin;
    return lo;
}

static int
slot_grow(struct hslot *s)
{
    int cap = s->cap ? s->cap * 2 : 4;
    if (cap > HIST_BINS)
        cap = HIST_BINS;
    uint32_t *cnt = malloc((size_t)cap * (sizeof(uint32_t) + sizeof(uint16_t)));
    if (cnt == NULL)
        return -1;
    if (s->used) {
        memcpy(cnt, s->cnt, s->used * sizeof(uint32_t));
        memcpy(cnt + cap, bins_of(s), s->used * sizeof(uint16_t));
    }
    free(s->cnt);
    s->cnt = cnt;
    s->cap = (uint16_t)cap;
    return 0;
}

/* Adds n samples of bin `bin` to slot s, with their sum and bounds. */
static int
slot_add(struct hist *h, int si, int bin, uint32_t n, uint64_t sum_ms, int64_t min_ms,
         int64_t max_ms)
{
    struct hslot *s = &h->slot[si];
    bool found;
    /* Counts and sums that would wrap are refused, not wrapped: a slot
     * must encode to what decodes (count x min <= sum <= count x max). */
    if (UINT32_MAX - s->n < n || UINT64_MAX - s->sum_ms < sum_ms ||
        UINT64_MAX - h->tot_sum_ms < sum_ms)
        return -1;
    int i = slot_find(s, bin, &found);
    if (!found) {
        if (s->used == s->cap && slot_grow(s) < 0)
            return -1;
        uint16_t *b = bins_of(s);
        memmove(s->cnt + i + 1, s->cnt + i, (size_t)(s->used - i) * sizeof(uint32_t));
        memmove(b + i + 1, b + i, (size_t)(s->used - i) * sizeof(uint16_t));
        s->cnt[i] = 0;
        b[i] = (uint16_t)bin;
        s->used++;
    }
    if (s->n == 0 || min_ms < s->min_ms)
        s->min_ms = min_ms;
    if (s->n == 0 || max_ms > s->max_ms)
        s->max_ms = max_ms;
    s->cnt[i] += n;
    s->n += n;
    s->sum_ms += sum_ms;
    h->tot_bins[bin] += n;
    h->tot_n += n;
    h->tot_sum_ms += sum_ms;
    return 0;
}

int
hist_add(struct hist *h, int s, int64_t elapsed_ms)
{
    if (elapsed_ms < 0)
        elapsed_ms = 0;
    return slot_add(h, s, bin_of(elapsed_ms), 1, (uint64_t)elapsed_ms, elapsed_ms,
                    elapsed_ms);
}

void
hist_clear_slot(struct hist *h, int si)
{
    struct hslot *s = &h->slot[si];
    if (s->cnt == NULL)
        return;
    const uint16_t *b = bins_of(s);
    for (int i = 0; i < s->used; i++)
        h->tot_bins[b[i]] -= s->cnt[i];
    h->tot_n -= s->n;
    h->tot_sum_ms -= s->sum_ms;
    free(s->cnt);
    memset(s, 0, sizeof(*s));
}

uint64_t
hist_count(const struct hist *h)
{
    return h->tot_n;
}

uint32_t
hist_slot_count(const struct hist *h, int s)
{
    return h->slot[s].n;
}

/* The value at 1-based rank `rank`: its bin's middle, kept within lo..hi
 * (so a window of equal times reports them exactly). */
static int64_t
rank_value(const struct hist *h, uint64_t rank, int64_t lo, int64_t hi)
{
    uint64_t seen = 0;
    int i;
    for (i = 0; i < HIST_BINS - 1; i++) {
        seen += h->tot_bins[i];
        if (seen >= rank)
            break;
    }
    int64_t v = bin_value(i);
    return v < lo ? lo : v > hi ? hi : v;
}

static uint64_t
rank_of(uint64_t n, unsigned pct)
{
    uint64_t r = (n * pct + 99) / 100;
    return r ? r : 1;
}

bool
hist_stats(const struct hist *h, struct hist_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (h == NULL || h->tot_n == 0)
        return false;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (int s = 0; s < h->nslots; s++)
        if (h->slot[s].n > 0) {
            lo = h->slot[s].min_ms < lo ? h->slot[s].min_ms : lo;
            hi = h->slot[s].max_ms > hi ? h->slot[s].max_ms : hi;
        }
    out->count = h->tot_n;
    out->mean_ms = (int64_t)((h->tot_sum_ms + h->tot_n / 2) / h->tot_n);
    out->p50_ms = rank_value(h, rank_of(h->tot_n, 50), lo, hi);
    out->p90_ms = rank_value(h, rank_of(h->tot_n, 90), lo, hi);
    out->p99_ms = rank_value(h, rank_of(h->tot_n, 99), lo, hi);
    return true;
}

size_t
hist_memory(const struct hist *h)
{
    size_t n = sizeof(*h) + (size_t)h->nslots * sizeof(h->slot[0]);
    for (int s = 0; s < h->nslots; s++)
        n += (size_t)h->slot[s].cap * (sizeof(uint32_t) + sizeof(uint16_t));
    return n;
}

void
hist_put_slot(const struct hist *h, int si, struct wire_buf *b)
{
    const struct hslot *s = &h->slot[si];
    if (s->n == 0)
        return;
    const uint16_t *bins = bins_of(s);
    wire_put_u32(b, s->n);
    wire_put_u64(b, s->sum_ms);
    wire_put_i64(b, s->min_ms);
    wire_put_i64(b, s->max_ms);
    wire_put_u16(b, s->used);
    for (int i = 0; i < s->used; i++) {
        wire_put_u16(b, bins[i]);
        wire_put_u32(b, s->cnt[i]);
    }
}

int
hist_get_slot(struct hist *h, int s, struct wire_reader *r)
{
    uint16_t bins[HIST_BINS];
    uint32_t cnts[HIST_BINS];
    uint32_t count = wire_get_u32(r);
    uint64_t sum = wire_get_u64(r), binned = 0;
    int64_t lo = wire_get_i64(r), hi = wire_get_i64(r);
    int nbins = wire_get_u16(r);
    bool keep = h != NULL && s >= 0;
    /* Times this code cannot have written (hist_add never keeps a negative
     * one, and the sum lies between count x min and count x max) are
     * malformed: a slot's sum leaves the totals only with its samples. */
    if (r->bad || nbins > HIST_BINS || lo < 0 || lo > hi || count == 0 ||
        (unsigned __int128)sum < (unsigned __int128)count * (uint64_t)lo ||
        (unsigned __int128)sum > (unsigned __int128)count * (uint64_t)hi)
        return -1;
    /* The whole record is read and checked before any of it is added, so
     * that a refused one leaves the slot as it was. */
    for (int k = 0; k < nbins; k++) {
        bins[k] = wire_get_u16(r);
        cnts[k] = wire_get_u32(r);
        if (r->bad || bins[k] >= HIST_BINS)
            return -1;
        binned += cnts[k];
    }
    if (binned != count)
        return -1;
    /* Added to what the slot holds (a section may name a series twice),
     * nothing may wrap either. */
    if (!keep)
        return 0;
    if (UINT32_MAX - h->slot[s].n < count || UINT64_MAX - h->slot[s].sum_ms < sum ||
        UINT64_MAX - h->tot_sum_ms < sum)
        return -1;
    for (int k = 0; k < nbins; k++)
        if (cnts[k] > 0 && slot_add(h, s, bins[k], cnts[k], 0, lo, hi) < 0)
            return -1; /* out of memory: the caller drops the section */
    h->slot[s].sum_ms += sum;
    h->tot_sum_ms += sum;
    return 0;
}
