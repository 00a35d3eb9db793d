/*
 * hist.h - the elapsed-time histogram of one series in one rolling window
 * (daemon/core/hist.c): a ring of time slots, each holding the bins its
 * samples fell in, and running totals over all slots, so quantiles cost
 * O(HIST_BINS) whatever the number of samples. compliance.c owns the
 * windows (which slot is which instant) and calls it; the histogram knows
 * nothing of time. Pure core: no I/O.
 *
 * Bins: exact below 16 ms, then 16 bins per power of two (a reported
 * quantile is within 1/32 of the true one); times of 2^32 ms (49 days) and
 * more fall into the last bin, negative times into bin 0.
 *
 * Memory. A slot keeps only the bins it uses (sorted (bin, count) pairs,
 * grown on demand and freed when the slot is cleared), so a series costs
 * about 6.6 KiB plus 6 bytes per distinct bin per slot: 61 x 464 dense
 * 32-bit bins would be 113 KiB per series and window whether used or not.
 */
#ifndef SLAWATCH_HIST_H
#define SLAWATCH_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slawatch/util.h"
#include "slawatch/wire.h"

#define HIST_BINS 464

struct hist;

struct hist_stats {
    uint64_t count;
    int64_t mean_ms;                 /* exact, rounded to the ms */
    int64_t p50_ms, p90_ms, p99_ms;  /* nearest rank, see hist_stats() */
};

/* An empty histogram of nslots slots (1..255). Returns NULL on allocation
 * failure. */
struct hist *hist_new(int nslots) MUSTCHECK;
void hist_free(struct hist *h);

/* Adds one sample to slot s. Returns -1 on allocation failure (the sample
 * is dropped, the histogram unchanged). */
int hist_add(struct hist *h, int s, int64_t elapsed_ms) MUSTCHECK;

/* Empties slot s, taking its samples out of the totals. */
void hist_clear_slot(struct hist *h, int s);

uint64_t hist_count(const struct hist *h);
uint32_t hist_slot_count(const struct hist *h, int s);

/* The distribution over all slots. Quantiles are nearest-rank (the
 * smallest value with at least that share of the samples at or below it),
 * reported as the middle of their bin and kept within the smallest and
 * largest sample. Returns false when the histogram is empty. */
bool hist_stats(const struct hist *h, struct hist_stats *out);

/* Memory held, in bytes. */
size_t hist_memory(const struct hist *h);

/* Slot s in the checkpoint: u32 count, u64 sum, i64 min, i64 max, u16 nbins,
 * nbins x (u16 bin, u32 count). Nothing is written for an empty slot. */
void hist_put_slot(const struct hist *h, int s, struct wire_buf *b);
/* Reads one slot written by hist_put_slot and adds it to slot s; s < 0
 * (or h NULL) reads it and drops it. Returns -1 for a malformed record or
 * an allocation failure (what was added before stays). */
int hist_get_slot(struct hist *h, int s, struct wire_reader *r) MUSTCHECK;

#endif
