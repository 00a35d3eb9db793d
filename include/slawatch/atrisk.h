/*
 * atrisk.h - counts of running, not yet breached clocks per tier and metric
 * by how soon they are due, for <prefix>at_risk:<tier>:<metric>:<horizon>.
 * Kept incrementally from the core's deadline changes
 * (the sink interface of core.h), so reading it never scans tickets. Pure
 * core: no I/O, no clock of its own.
 *
 * Deadlines are counted in buckets of ATRISK_GRAIN_MS on absolute
 * boundaries: a dense ring covers the next ATRISK_RING buckets after the
 * current one, a hash map holds deadlines further away (moved into the
 * ring as time reaches them), and one counter per series holds those
 * already behind (due, not yet fired). A query counts deadlines up to the
 * end of the bucket holding now + horizon, so a clock is counted up to one
 * grain early. Horizons up to ATRISK_MAX_HORIZON_MS.
 */
#ifndef SLAWATCH_ATRISK_H
#define SLAWATCH_ATRISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/util.h"

#define ATRISK_GRAIN_MS 1000
#define ATRISK_RING 4096
#define ATRISK_MAX_HORIZON_MS ((int64_t)(ATRISK_RING - 1) * ATRISK_GRAIN_MS)

struct atrisk;

/* Returns NULL on allocation failure. */
struct atrisk *atrisk_new(int64_t now_ms) MUSTCHECK;
void atrisk_free(struct atrisk *ar);

/* The core's deadline listener (arg: the struct atrisk). An allocation
 * failure marks the counts degraded (atrisk_degraded) rather than losing
 * track silently. */
void atrisk_change(void *arg, const struct sla_deadline_change *d);

/* Moves the current time forward (never backwards). O(1) amortized per
 * grain crossed; a jump of more than the ring costs one pass over the
 * far deadlines. */
void atrisk_advance(struct atrisk *ar, int64_t now_ms);

/* Clocks of tier/metric due at or before now + horizon_ms (horizon
 * clamped to ATRISK_MAX_HORIZON_MS), including those already due but not
 * yet fired; `now` is the last atrisk_advance(). */
long atrisk_count(const struct atrisk *ar, int tier, int metric,
                  int64_t horizon_ms);
/* Every counted clock of tier/metric, whatever its deadline. */
long atrisk_running(const struct atrisk *ar, int tier, int metric);

/* True once a change could not be recorded for lack of memory. */
bool atrisk_degraded(const struct atrisk *ar);

size_t atrisk_memory(const struct atrisk *ar);

#endif
