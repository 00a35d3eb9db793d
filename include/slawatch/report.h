/*
 * report.h - publishing compliance: feeds the core's outcomes, KPI facts
 * and deadline changes into the compliance windows (compliance.c) and the
 * at-risk counts (atrisk.c), judges the objectives (objective.c), and
 * every compliance.publish_every writes, on the writer's durable queue:
 *
 *   XADD <prefix>objectives kind objective|recovered ... per objective
 *        transition, then the objective hook (notify.c's escalations)
 *   MSET <prefix>compliance:<tier>:<metric>:<window>[:<attr>=<value>]
 *        <prefix>met:...  <prefix>breached:...
 *        <prefix>kpi:<tier>:<kpi>:<window>[:<attr>=<value>]
 *        <prefix>response_ms:<tier>:<window>:p50|p90|p99|mean
 *        <prefix>elapsed_ms:<tier>:<metric>:<window>:p50|p90|p99|mean
 *        <prefix>at_risk:<tier>:<metric>:5m|15m|1h
 *        <prefix>objective  (compliance.objective)
 *        <prefix>objective:<name>  (a named objective's min or max)
 *        <prefix>objective:<name>:<tier>:<window>  1 violated, 0 met
 *   DEL  ratios, KPIs, distributions and objective states of empty
 *        windows, and every key written last round that is not written
 *        this round (a breakdown value that expired, a tier, window or
 *        objective removed by a reload)
 *
 * Once after the first round of a run, SCAN <prefix>* deletes the keys of
 * those families that the round did not write (an earlier configuration's).
 *
 * The cost of a round is O(tiers x metrics x windows + breakdown series)
 * (the keys that vanished are found by hashing, not sorting); it never
 * depends on the number of tickets.
 */
#ifndef SLAWATCH_REPORT_H
#define SLAWATCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slawatch/argv.h"
#include "slawatch/compliance.h"
#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/objective.h"
#include "slawatch/rds.h"
#include "slawatch/state.h"
#include "slawatch/util.h"

struct report;

struct report_cmds {
    struct cmd_argv mset;         /* "MSET" k v k v ... */
    struct cmd_argv del;          /* "DEL" k ...; only "DEL": nothing */
};

/* ---- without a daemon (tests, benchmarks) ----------------------------- */

/* cfg is not owned; it must stay valid until report_set_config. Returns
 * NULL on allocation failure. */
struct report *report_new(const struct config *cfg, int64_t now_ms) MUSTCHECK;
void report_free_state(struct report *rp);

/* The windows, the objective states and the at-risk counts, for tests and
 * the benchmark. */
struct compliance *report_compliance(struct report *rp);
struct objectives *report_objectives(struct report *rp);
struct atrisk *report_atrisk(struct report *rp);

/* Judges every objective as of now_ms (advancing the windows to it),
 * reading through read (NULL: obj_read_compliance on the windows), and
 * records each transition (XADD <prefix>objectives, once attached) and
 * hands it to the objective hook. report_publish calls it with NULL. */
void report_evaluate(struct report *rp, int64_t now_ms, obj_read_fn *read, void *read_arg);

/* Feeds one outcome; `core` resolves the ticket's attributes. */
void report_feed_outcome(struct report *rp, const struct core *core,
                         const struct sla_outcome *o);
/* Feeds one KPI fact (report_kpi without the log). */
void report_feed_kpi(struct report *rp, const struct sla_kpi *k);

/* Advances to now_ms and builds the round's MSET and DEL into cmds
 * (initialised by the call; free with report_cmds_free). Returns -1 on
 * allocation failure. report_commit() then records the keys written, for
 * the next round's DEL; call it only once the commands are on their way. */
int report_build(struct report *rp, int64_t now_ms,
                 struct report_cmds *cmds) MUSTCHECK;
void report_commit(struct report *rp, const struct report_cmds *cmds);
void report_cmds_free(struct report_cmds *cmds);

/* ---- in the daemon ------------------------------------------------------ */

/* Publishes on writer every compliance.publish_every (a loop timer; freed
 * by report_free_state) once report_set_live was called; `core` resolves
 * tickets' attributes for the outcomes. Returns -1 on allocation failure. */
int report_attach(struct report *rp, struct event_base *base, struct rds_conn *writer,
                  const struct core *core) MUSTCHECK;

/* The checkpoint and the replay are in: publish from now on (before, the
 * windows are incomplete and would show a dip). */
void report_set_live(struct report *rp);

/* The sink callbacks (arg: the report): outcomes and KPI facts into the
 * compliance windows, deadline changes into the at-risk counts. */
void report_outcome(void *arg, const struct sla_outcome *o);
void report_kpi(void *arg, const struct sla_kpi *k);
void report_deadline(void *arg, const struct sla_deadline_change *d);

/* Before core_set_config() on reload: maps the windows to the new config
 * and re-arms the timer. */
void report_reconfigure(struct report *rp, const struct config *cfg);

/* One round now (the timer calls it; so does shutdown). Does nothing
 * before report_set_live, and writes no gauges while the writer is down
 * (objective transitions are still recorded, queued). */
void report_publish(struct report *rp);

/* Checkpoint section STATE_SECTION_COMPLIANCE (snapshot_section; arg: the
 * report). A section of a checkpoint written before objective.c also
 * restores compliance.objective's states. */
int report_encode(void *arg, struct wire_buf *out) MUSTCHECK;
void report_restore(void *arg, const char *data, size_t len);
/* Checkpoint section STATE_SECTION_OBJECTIVES: the objective states. */
int report_encode_objectives(void *arg, struct wire_buf *out) MUSTCHECK;
void report_restore_objectives(void *arg, const char *data, size_t len);

/* Objective transitions, after each is recorded in <prefix>objectives: the
 * entry point for `when: objective` escalations (notify.c). */
typedef void report_objective_fn(void *arg, const struct obj_change *ch);
void report_set_objective_hook(struct report *rp, report_objective_fn *fn, void *arg);

/* Whether the series is violated now: objective name ("" for
 * compliance.objective), what it measures (a named objective whose
 * measure changed is another series), tier name or "all", window name.
 * *episode gets its violation count (0 when the series is unknown, e.g.
 * removed by a reload, which reads as not violated). */
bool report_objective_state(struct report *rp, const char *name, int metric, int kpi,
                            const char *tier, const char *window, uint32_t *episode);

#endif
