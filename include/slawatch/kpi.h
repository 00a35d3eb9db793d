/*
 * kpi.h - the arithmetic of the support KPIs (daemon/core/kpi.c): the
 * counters a KPI fact of the core moves, the counters of one series in one
 * rolling window (a ring of slots and running totals) with the rules that
 * keep them consistent, and one slot's bytes in the checkpoint. The KPIs'
 * values and names (cmp_kpi_micro, cmp_format_kpi, cmp_kpi_name) are part
 * of compliance.h and live in kpi.c too. compliance.c owns the windows
 * (which slot is which instant), the series and the breakdown values; this
 * file knows nothing of time, tiers or values. Pure core: no I/O.
 */
#ifndef SLAWATCH_KPI_H
#define SLAWATCH_KPI_H

#include <stdbool.h>
#include <stdint.h>

#include "slawatch/compliance.h"
#include "slawatch/core.h"
#include "slawatch/wire.h"

/* The counters, in the order of struct cmp_kpi_counts. */
enum kpi_counter {
    KC_RESOLVED = 0,             /* first resolutions */
    KC_FCR,                      /* ... at first contact (<= KC_RESOLVED) */
    KC_REOPENED,                 /* ... reopened since (<= KC_RESOLVED) */
    KC_GOOD,
    KC_BAD,
    KC_SCORED,                   /* numeric ratings (<= KC_GOOD + KC_BAD) */
    KC_SCORE_SUM,                /* their sum (KC_SCORED..5 x KC_SCORED) */
    KPI_COUNTERS
};

/* One series in one window: the counters per slot, and their totals. */
struct kpi_ring {
    uint32_t v[CMP_SLOTS][KPI_COUNTERS];
    uint64_t tot[KPI_COUNTERS];
};

/* The counters one fact moves, each by its amount, in the direction of
 * k->delta. Returns -1 for a fact that makes no sense (an unknown kind or
 * score, a delta other than +1 or -1). */
int kpi_fact_counters(const struct sla_kpi *k, uint32_t d[KPI_COUNTERS]) MUSTCHECK;

/* Adds (sign > 0) or subtracts d in slot s, all or nothing: returns false,
 * and changes nothing, when a counter would go below zero or past
 * 2^32 - 1, or the slot would break the order of the counters above (more
 * reopens or first contacts than first resolutions, ...). */
bool kpi_ring_apply(struct kpi_ring *r, int s, const uint32_t d[KPI_COUNTERS],
                    int sign) MUSTCHECK;

void kpi_ring_clear_slot(struct kpi_ring *r, int s);
bool kpi_ring_empty(const struct kpi_ring *r);
bool kpi_ring_slot_empty(const struct kpi_ring *r, int s);
void kpi_ring_counts(const struct kpi_ring *r, struct cmp_kpi_counts *out);

/* Slot s in the checkpoint: the KPI_COUNTERS counters as u32. */
void kpi_ring_put_slot(const struct kpi_ring *r, int s, struct wire_buf *b);
/* Reads one slot written by kpi_ring_put_slot and adds it to slot s; s < 0
 * (or r NULL) reads it and drops it. Returns -1 for counters this code
 * cannot have written (out of order, see above) or that do not fit. */
int kpi_ring_get_slot(struct kpi_ring *r, int s, struct wire_reader *rd) MUSTCHECK;

#endif
