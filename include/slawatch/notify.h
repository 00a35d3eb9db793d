/*
 * notify.h - the escalation engine: turns the core's notices and outcomes
 * into notifications for the webhooks of every matching escalation
 * (`when`, `metric`, `tiers`), holds ladder levels back for their `after`
 * delay, cancels them when the clock stops first, and sends `recovered`
 * (json, slack), a PagerDuty resolve or an Alertmanager endsAt when a clock
 * that was notified stops. Compliance objective transitions (`when:
 * objective`) go the same way, the violation standing for the breach and
 * the series' return to the objective for the stop. Delivery itself is
 * deliver.c's.
 *
 *   core --notice/outcome (a sink)--> notify_notice / notify_outcome
 *        --> deliver_submit (outbox) --> HTTP
 *   report.c --objective hook--> notify_objective --> deliver_submit
 *   deliver_send.c --still_open(note)--> notify.c --core_find--> core
 *                                          \--objective state--> report.c
 */
#ifndef SLAWATCH_NOTIFY_H
#define SLAWATCH_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/rds.h"
#include "slawatch/util.h"

struct notify;
struct cmp_objective_change;

/* Reads the objective state of a compliance series (tier name or "all",
 * metric, window name): whether it is violated now, and its violation
 * count in *episode. */
typedef bool notify_objective_state_fn(void *arg, const char *tier, int metric,
                                       const char *window, uint32_t *episode);

/* Returns NULL on allocation failure. cfg, core and writer are not owned;
 * cfg must stay valid until replaced by notify_set_config(). */
struct notify *notify_new(struct event_base *base, struct rds_conn *writer,
                          const struct config *cfg,
                          const struct core *core) MUSTCHECK;
/* Call after the writer connection is closed. */
void notify_free(struct notify *nt);

/* A reloaded config: escalations apply to notices from now on; webhooks are
 * matched by name. */
void notify_set_config(struct notify *nt, const struct config *cfg);

/* The writer (re)connected: re-drives the outbox of an earlier run once. */
void notify_writer_ready(struct notify *nt);

/* The sink callbacks (registered in slawatchd.c). */
void notify_notice(struct notify *nt, const struct sla_notice *n);
void notify_outcome(struct notify *nt, const struct sla_outcome *o);

/* A compliance objective transition (report.c's objective hook): matches
 * escalations with `when: objective` on metric and tiers (the `all` series
 * only those without a `tiers` list). A violation makes one note per
 * webhook, held back for `after` and sent only if the same violation still
 * holds then; a recovery cancels levels still waiting and sends
 * `recovered` (json, slack), a PagerDuty resolve or an Alertmanager endsAt
 * where the violation was sent, unless send_resolved is false. */
void notify_objective(struct notify *nt, const struct cmp_objective_change *ch);

/* Where waiting objective levels and Alertmanager re-sends check that
 * their violation still holds. Without it they read as recovered. */
void notify_set_objective_state(struct notify *nt,
                                notify_objective_state_fn *fn, void *arg);

/* For <prefix>stats:notifications_pending and deliveries_failed_total. */
size_t notify_pending(const struct notify *nt);
uint64_t notify_failed_total(const struct notify *nt);

#endif
