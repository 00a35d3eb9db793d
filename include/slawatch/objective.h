/*
 * objective.h - objective states: whether each series an objective covers
 * is met or violated, with hysteresis, and the violations' numbers
 * (episodes). Two kinds of objectives share one state machine:
 *
 *   - compliance.objective, the shorthand (OBJ_SHORTHAND): one minimum
 *     over every SLA ratio, per tier (and `all`) x metric x window;
 *   - each named objective of `objectives:` (its index in cfg->objectives):
 *     one SLA ratio (metric) or one support KPI (kpi), per tier it covers
 *     (and `all`) x window it covers, against its min or its max.
 *
 * Pure core: no I/O and no clock of its own. Values are read through a
 * callback (obj_read_fn) at each evaluation, so this file does not know
 * how the windows or the KPIs are stored; obj_read_compliance() is the
 * source the daemon passes (compliance.c's windows).
 *
 * Hysteresis. A series becomes violated after OBJ_FIRE_ROUNDS consecutive
 * evaluations on the wrong side of its threshold (below a min, above a
 * max) and recovers after OBJ_RECOVER_ROUNDS consecutive ones at or on the
 * right side; an evaluation whose window holds nothing to count changes
 * nothing (and breaks a streak). Values and thresholds are compared in
 * millionths: an SLA ratio as published (truncated), a KPI value and a
 * threshold rounded to the nearest millionth (the shorthand's threshold
 * at most 1). Each series counts its violations; the count is checkpointed
 * so that a violation keeps its number across restarts and reloads and the
 * escalations can name it (delivery ids, PagerDuty dedup keys).
 *
 * Checkpoint (STATE_SECTION_OBJECTIVES): the states by objective name (""
 * for the shorthand), measure, tier name and window length. Checkpoints
 * written before this file existed hold the shorthand's states in the
 * compliance section; cmp_decode hands them to obj_restore_legacy().
 */
#ifndef SLAWATCH_OBJECTIVE_H
#define SLAWATCH_OBJECTIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slawatch/compliance.h"
#include "slawatch/config.h"
#include "slawatch/util.h"
#include "slawatch/wire.h"

#define OBJ_FIRE_ROUNDS 2
#define OBJ_RECOVER_ROUNDS 3
#define OBJ_SHORTHAND (-1) /* the objective index of compliance.objective */
#define OBJ_MICRO 1000000  /* values and thresholds in millionths */

struct objectives;

/* What one evaluation reads of a series. */
struct obj_reading {
    int64_t value_micro; /* the value judged, in millionths */
    bool counts;         /* an SLA ratio: met and breached are set */
    uint64_t met, breached;
};

/* Reads the value of metric (METRIC_*, or -1) or kpi (enum cmp_kpi, or
 * -1) of tier (an index, or CMP_ALL) in window w (an index into
 * compliance.windows). Returns false when the window holds nothing to
 * count. */
typedef bool obj_read_fn(void *arg, int metric, int kpi, int tier, int w,
                         struct obj_reading *out);

/* A transition, for <prefix>objectives and the escalations. Strings point
 * into the config and are valid during the callback. */
struct obj_change {
    bool violated;         /* true: now violated; false: met again */
    uint32_t episode;      /* this violation's number (1 for the first),
                              or that of the violation that ends */
    int objective;         /* index into cfg->objectives, or OBJ_SHORTHAND */
    const char *name;      /* the objective's name; NULL for the shorthand */
    int metric;            /* METRIC_* of an SLA ratio, or -1 */
    int kpi;               /* enum cmp_kpi, or -1 */
    bool max;              /* violated above the threshold (false: below) */
    int tier;              /* index into cfg->tiers, or CMP_ALL */
    const char *tier_name; /* "all" for CMP_ALL */
    int window;            /* index into cfg->compliance.windows */
    const char *window_name;
    int64_t value_micro;     /* the value judged (an SLA ratio as published) */
    int64_t threshold_micro; /* the min or max it was compared with */
    double threshold;        /* as configured */
    bool counts;             /* SLA ratio: met and breached are set */
    uint64_t met, breached;
    int64_t at_ms; /* the evaluation */
};

/* One series' state, for the published gauges. */
struct obj_series {
    int objective;    /* index into cfg->objectives, or OBJ_SHORTHAND */
    const char *name; /* NULL for the shorthand */
    int metric;       /* the shorthand's metric; a named objective's */
    int tier;
    const char *tier_name;
    int window;
    const char *window_name;
    bool present; /* the last evaluation had a value to judge */
    bool violated;
    uint32_t episode;
};

/* States for every series of cfg (not owned: must stay valid until
 * obj_set_config replaces it), all met. Returns NULL on allocation
 * failure. */
struct objectives *obj_new(const struct config *cfg) MUSTCHECK;
void obj_free(struct objectives *objs);

/* Switches to a reloaded config, keeping the states of every series that
 * still exists: objectives by name (a named objective whose measure
 * changed starts afresh), tiers by name, windows by length. Returns -1 on
 * allocation failure (the old config and states stay). */
int obj_set_config(struct objectives *objs, const struct config *cfg) MUSTCHECK;

/* Evaluates every series (the shorthand's first, in metric, tier, window
 * order, then each named objective's in tier, window order), reading each
 * value through read, and calls fn (may be NULL) for each transition. */
void obj_eval(struct objectives *objs, int64_t now_ms, obj_read_fn *read,
              void *read_arg,
              void (*fn)(void *arg, const struct obj_change *ch), void *arg);

/* Calls fn for every series the config defines, in the order of obj_eval. */
void obj_foreach(const struct objectives *objs,
                 void (*fn)(void *arg, const struct obj_series *s), void *arg);

/* Whether the series (objective index or OBJ_SHORTHAND, tier index or
 * CMP_ALL, metric: the shorthand's, ignored for a named objective, window
 * index) is violated now; *episode (may be NULL) gets its violation count,
 * 0 for a series that does not exist. */
bool obj_violated(const struct objectives *objs, int objective, int tier,
                  int metric, int w, uint32_t *episode);

/* A value in millionths as text: "0.75", "1", "4.8", "250" (six decimals
 * at most, trailing zeros dropped; an SLA ratio reads as published).
 * Returns buf. */
#define OBJ_MICRO_BUFLEN 32
char *obj_format_micro(int64_t micro, char *buf, size_t size);

/* The threshold of the objective in millionths, as compared. */
int64_t obj_threshold_micro(const struct config *cfg, int objective);

/* Checkpoint section STATE_SECTION_OBJECTIVES: every state that is not
 * "met, no streak, never violated". Returns -1 on allocation failure. */
int obj_encode(const struct objectives *objs, struct wire_buf *out) MUSTCHECK;
/* Restores a section written by obj_encode (possibly under another
 * config). Returns -1 for a malformed section; what was read before it
 * stays. */
int obj_decode(struct objectives *objs, const char *data, size_t len) MUSTCHECK;

/* A state of the shorthand from the compliance section of a checkpoint
 * written before objective.c (cmp_decode's legacy objective hook, under
 * the same config; arg: the objectives): tier index or CMP_ALL, metric,
 * window index. */
void obj_restore_legacy(void *arg, int tier, int metric, int w, bool violated,
                        uint8_t streak, uint32_t episodes);

/* The daemon's source (arg: the struct compliance): an SLA ratio from
 * cmp_counts(), a KPI from cmp_kpi_value() (enum cmp_kpi, compliance.h),
 * both as published. */
bool obj_read_compliance(void *arg, int metric, int kpi, int tier, int w,
                         struct obj_reading *out);

#endif
