/*
 * compliance.h - rolling compliance windows: met and breached outcomes per
 * tier (and `all`), metric and configured window, optional breakdowns by a
 * ticket attribute, the elapsed-time distribution per tier, metric and
 * window, and (v2) the support KPIs per tier, window and breakdown value.
 * Pure core: no I/O and no clock of its own; every instant is passed in, so
 * unit tests drive it with an injected clock. report.c publishes it. The
 * objective states that judge these ratios are objective.c's.
 *
 * Windows. Each window of W ms is a ring of time buckets of W/60 ms
 * (CMP_BUCKETS), on absolute bucket boundaries (multiples of the width since
 * the epoch). An outcome is counted in the bucket holding its decision time.
 * At time `now` the window holds the bucket containing `now` and the 60
 * before it, so an outcome stays counted for at least W and at most W + W/60
 * after its decision. Every window keeps running totals, so reading a ratio
 * costs O(1) whatever the number of tickets; advancing time clears the
 * buckets that fall out, O(series) per bucket boundary crossed.
 *
 * Breakdowns (compliance.by). Per attribute, at most compliance.max_values
 * values have their own series; the outcomes of any further value are
 * folded into the value CMP_OTHER. A ticket without the attribute counts as
 * CMP_NONE. A value whose series are all empty in every window is forgotten
 * by cmp_advance(), which frees its place for a new value. A value's place
 * holds both its ratio series and its KPI series: it is forgotten once all
 * of them are empty.
 *
 * KPIs (v2, SPEC section 3 "Support KPIs"). The core's KPI facts (struct
 * sla_kpi) are counted in the same windows, at their at_ms: first
 * resolutions (and of those, at first contact), reopens (at the first
 * resolution's at_ms, so that the rate is "of the tickets first resolved in
 * the window, the share reopened since"), and ratings (good, bad, and the
 * sum and number of the numeric ones). A withdrawn rating is subtracted
 * from the bucket it was counted in, when that is still in the window.
 * Counts never go below zero, and a bucket never holds more reopens (or
 * first contacts) than first resolutions, nor more numeric ratings than
 * ratings, nor a sum of scores its numeric ratings cannot make (kpi.h): a
 * fact that would break that (a withdrawal of what a window never counted:
 * the window is newer than the fact, or was restored from a section
 * without KPIs; a count past 2^32 - 1) is left out of that series and
 * counted by cmp_kpi_saturated().
 */
#ifndef SLAWATCH_COMPLIANCE_H
#define SLAWATCH_COMPLIANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/hist.h"
#include "slawatch/util.h"
#include "slawatch/wire.h"

#define CMP_BUCKETS 60            /* bucket width = window / CMP_BUCKETS */
#define CMP_SLOTS (CMP_BUCKETS + 1) /* the current bucket and 60 full ones */
#define CMP_ALL (-1)              /* the tier index of `all` */
#define CMP_OTHER "_other"
#define CMP_NONE "_none"
#define CMP_RATIO_BUFLEN 16
#define CMP_RATIO_ONE 1000000u    /* ratios in millionths */

/* Elapsed-time histograms (hist.h): exact below 16 ms, then 16 bins per
 * power of two (a reported quantile is within 1/32 of the true one); times
 * of 2^32 ms (49 days) and more fall into the last bin. */
#define CMP_LAT_BINS HIST_BINS

struct compliance;

struct cmp_counts {
    uint64_t met;
    uint64_t breached;
};

/* One published series: a tier (CMP_ALL for all) and metric, optionally
 * restricted to one value of an attribute. Valid during the callback. */
struct cmp_series {
    int tier;
    int metric;
    int attr;                        /* ATTR_*, or -1: no breakdown */
    const char *value;               /* the attribute value, or NULL */
    const struct cmp_counts *counts; /* one per window, in config order */
};

struct cmp_latency {
    uint64_t count;                  /* elapsed times in the window */
    int64_t mean_ms;
    int64_t p50_ms, p90_ms, p99_ms;
};

/* (v2) The support KPIs, in the order of their names (cmp_kpi_name):
 * `kpi: fcr` in the config, <prefix>kpi:<tier>:fcr:<window> in Redis. */
enum cmp_kpi {
    CMP_KPI_FCR = 0,                 /* fcr / resolved */
    CMP_KPI_REOPEN_RATE,             /* reopened / resolved */
    CMP_KPI_CSAT,                    /* good / (good + bad) */
    CMP_KPI_CSAT_MEAN,               /* score_sum / scored */
    CMP_KPI_CSAT_COUNT,              /* good + bad */
    CMP_KPI_COUNT
};

/* The counts behind the KPIs of one series in one window. */
struct cmp_kpi_counts {
    uint64_t resolved;               /* tickets first resolved */
    uint64_t fcr;                    /* ... of those, at first contact */
    uint64_t reopened;               /* ... of those, reopened since */
    uint64_t good;                   /* ratings 4, 5 and `good` */
    uint64_t bad;                    /* ratings 1, 2, 3 and `bad` */
    uint64_t scored;                 /* numeric ratings (1..5) */
    uint64_t score_sum;              /* ... their sum */
};

/* One KPI series: a tier (CMP_ALL for all), optionally restricted to one
 * value of an attribute. Valid during the callback. */
struct cmp_kpi_series {
    int tier;
    int attr;                        /* ATTR_*, or -1: no breakdown */
    const char *value;               /* the attribute value, or NULL */
    const struct cmp_kpi_counts *counts; /* one per window, in config order */
};

#define CMP_KPI_BUFLEN 32

/* Creates empty windows for `cfg` (not owned: must stay valid until
 * cmp_set_config replaces it) with `now_ms` as the current time, so that
 * outcomes older than a window are not counted. Returns NULL on allocation
 * failure. */
struct compliance *cmp_new(const struct config *cfg, int64_t now_ms) MUSTCHECK;
void cmp_free(struct compliance *cmp);

/* Switches to a reloaded config, keeping what still applies: tiers by
 * name, windows by length, breakdowns whose attribute is still listed.
 * Returns -1 on allocation failure (the old config and data stay). */
int cmp_set_config(struct compliance *cmp, const struct config *cfg) MUSTCHECK;

/* Counts one decided outcome (met or breached) of `tier`'s `metric` clock
 * at its decision time. attr[a] is the ticket's value of attribute a
 * (NUL-terminated) or NULL when absent. An outcome older than every
 * window is ignored; one in the future moves the windows forward. Returns
 * -1 when a breakdown value cannot be allocated (the outcome is then
 * counted in CMP_OTHER; the tier and `all` series never fail). */
int cmp_record(struct compliance *cmp, int tier, int metric, bool met,
               int64_t decided_ms, const char *const attr[ATTR_COUNT]);

/* Adds the elapsed time of a stopped clock (start to stop) of `tier`'s
 * `metric` at `at_ms` (the stop). Returns -1 on allocation failure or an
 * unknown tier or metric (dropped). */
int cmp_record_elapsed(struct compliance *cmp, int tier, int metric,
                       int64_t at_ms, int64_t elapsed_ms);
/* cmp_record_elapsed of the response metric (opened to first response). */
int cmp_record_response_time(struct compliance *cmp, int tier, int64_t at_ms,
                             int64_t elapsed_ms);

/* (v2) Counts one KPI fact of the core in every window that still holds
 * its at_ms, for its tier, `all` and the ticket's breakdown values (folded
 * as for the ratios). Returns -1 for a fact that makes no sense (unknown
 * tier, kind or score, a delta other than +1 or -1: nothing counted) or
 * when a breakdown value cannot be allocated (counted in CMP_OTHER). */
int cmp_record_kpi(struct compliance *cmp, const struct sla_kpi *k);

/* Moves every window to now_ms (never backwards) and forgets breakdown
 * values that no longer hold any outcome. */
void cmp_advance(struct compliance *cmp, int64_t now_ms);

/* Totals of a tier (CMP_ALL: all tiers) and metric in window w. */
struct cmp_counts cmp_counts(const struct compliance *cmp, int tier, int metric,
                             int w);

/* Calls fn for the tier series (every tier with a target for the metric,
 * then `all`, for each metric) and then every breakdown series holding
 * outcomes, in a stable order. */
void cmp_foreach(const struct compliance *cmp,
                 void (*fn)(void *arg, const struct cmp_series *s), void *arg);

/* The response-time distribution of a tier (or CMP_ALL) in window w.
 * Returns false when the window holds no response time. */
bool cmp_latency(const struct compliance *cmp, int tier, int w,
                 struct cmp_latency *out);
/* The same for any metric's elapsed times. */
bool cmp_elapsed(const struct compliance *cmp, int tier, int metric, int w,
                 struct cmp_latency *out);

/* ---- (v2) KPIs ---- */

/* "fcr", "reopen_rate", "csat", "csat_mean", "csat_count"; "?" out of
 * range (safe to print). cmp_kpi_by_name is the inverse (-1: no such
 * KPI). */
const char *cmp_kpi_name(int kpi);
int cmp_kpi_by_name(const char *name, size_t len);

/* The KPI's value as published, in millionths: ratios and the mean
 * truncated to six decimals, csat_count times 10^6. Returns false when the
 * counts hold nothing to count it from (the key is then absent). */
bool cmp_kpi_micro(const struct cmp_kpi_counts *k, int kpi, uint64_t *micro);
/* The value as published: "0.75", "1", "4.833333", "17"; NULL (buf left
 * empty) when there is nothing to count. buf holds CMP_KPI_BUFLEN bytes. */
char *cmp_format_kpi(const struct cmp_kpi_counts *k, int kpi, char *buf);

/* The counts of a tier (or CMP_ALL) in window w; attr >= 0 restricts them
 * to one value of that breakdown (NULL: CMP_NONE). Returns false (counts
 * zero) for an unknown tier, window, breakdown or value. */
bool cmp_kpi(const struct compliance *cmp, int tier, int attr,
             const char *value, int w, struct cmp_kpi_counts *out);
/* One KPI of a tier (or CMP_ALL) in window w as published
 * (cmp_kpi_micro / 10^6; csat_count: the count), for objectives. Returns
 * false when there is nothing to count. */
bool cmp_kpi_value(const struct compliance *cmp, int tier, int kpi, int w,
                   double *out);
/* Calls fn for every tier's KPI series (every tier, then `all`), then for
 * every breakdown value's series holding any fact, in a stable order. */
void cmp_kpi_foreach(const struct compliance *cmp,
                     void (*fn)(void *arg, const struct cmp_kpi_series *s),
                     void *arg);
/* Facts (or parts of them) left out of a series so that its counts stay
 * consistent (see the top of this file), since cmp_new. */
uint64_t cmp_kpi_saturated(const struct compliance *cmp);

/* met / (met + breached) in millionths, truncated; 0 for an empty window. */
uint32_t cmp_ratio_micro(uint64_t met, uint64_t breached);
/* The ratio as published: "0.9731", "1", "0"; truncated to 6 decimals and
 * trailing zeros dropped. buf holds CMP_RATIO_BUFLEN bytes; returns buf. */
char *cmp_format_ratio(uint64_t met, uint64_t breached, char *buf);

/* Checkpoint section (STATE_SECTION_COMPLIANCE): appends every non-empty
 * bucket, breakdown value, elapsed-time bucket and KPI bucket. Returns -1
 * on allocation failure. */
int cmp_encode(const struct compliance *cmp, struct wire_buf *out) MUSTCHECK;
/* Adds a section written by cmp_encode (possibly under another config:
 * tiers are matched by name, windows by length) to the current data.
 * Returns -1 for a malformed section; what was read before stays. */
int cmp_decode(struct compliance *cmp, const char *data, size_t len) MUSTCHECK;

/* Sections written before objective.c held compliance.objective's states
 * too ('O' records). cmp_decode hands each one whose tier and window still
 * exist to this hook (tier index or CMP_ALL, metric, window index of the
 * current config), and drops them without one (fn NULL). */
typedef void cmp_legacy_objective_fn(void *arg, int tier, int metric, int w,
                                     bool violated, uint8_t streak, uint32_t episodes);
void cmp_set_legacy_objective_hook(struct compliance *cmp, cmp_legacy_objective_fn *fn,
                                   void *arg);

/* Memory held, in bytes (for the benchmark and stats). */
size_t cmp_memory(const struct compliance *cmp);

#endif
