/*
 * notify.h - the escalation engine: turns the core's notices and outcomes
 * into notifications for the webhooks of every matching escalation
 * (`when`, `metric`, `tiers`), holds ladder levels back for their `after`
 * delay, cancels them when the clock stops first, and sends `recovered`
 * (json, slack), a PagerDuty resolve or an Alertmanager endsAt when a clock
 * that was notified stops. Objective transitions (`when: objective`:
 * compliance.objective and the named objectives) go the same way, the
 * violation standing for the breach and the series' return for the stop. Delivery itself is not
 * notify's: it is handed in as struct notify_delivery (the daemon wires it
 * to deliver.c, a unit test to a recording fake), so this header needs no
 * event loop, Redis or HTTP type, and notify never owns the delivery.
 *
 *   core --notice/outcome (a sink)--> notify_notice / notify_outcome
 *        --> notify_delivery.submit/lookup/cancel/poke
 *   report.c --objective hook--> notify_objective --> notify_delivery
 *   slawatchd.c: notify_delivery --> deliver_submit (outbox) --> HTTP
 *   deliver_send.c --still_open(note)--> slawatchd.c --> notify_still_open
 *        --core_find--> core;  objective notes --objective state--> report.c
 */
#ifndef SLAWATCH_NOTIFY_H
#define SLAWATCH_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/hook_format.h"
#include "slawatch/util.h"

struct notify;
struct obj_change;

/* Reads the state of the series an objective note is about (its name, ""
 * for compliance.objective; measure; tier name or "all"; window name):
 * whether it is violated now, and its violation count in *episode. */
typedef bool notify_objective_state_fn(void *arg, const struct hook_note *n,
                                       uint32_t *episode);

/* Where notify's notes go (deliver.c in the daemon). Every call is
 * synchronous; `arg` is passed back to each. */
struct notify_delivery {
    /* Stores a note (fills n->id; notify sets due_ms and flags) unless one
     * with the same id is stored already. Returns -1 when it could not be
     * stored (the delivery logs and counts that). */
    int (*submit)(void *arg, struct hook_note *n);
    /* Where the note with this delivery id stands. */
    enum hook_state (*lookup)(void *arg, const char *id);
    /* Drops a note that has not been attempted (HOOK_STATE_WAITING). */
    void (*cancel)(void *arg, const char *id);
    /* Makes the note due now, so that its clock (or objective) is checked
     * again at once: an alertmanager alert whose clock stopped is then
     * sent with endsAt. */
    void (*poke)(void *arg, const char *id);
    void *arg;
};

/* When a waiting ladder level (a warning or breach note of an escalation
 * with `after`) falls due under the config in force: `after` business time
 * from its notice, in its tier's calendar as it is now. Other notes keep
 * their due_ms. For deliver_hooks.due_of (a reload). */
int64_t notify_due_of(const struct notify *nt, const struct hook_note *n);

/* Returns NULL on allocation failure. cfg and core are not owned, nor is
 * the delivery (*delivery is copied; its arg must outlive the notify); cfg
 * must stay valid until replaced by notify_set_config(). */
struct notify *notify_new(const struct config *cfg, const struct core *core,
                          const struct notify_delivery *delivery) MUSTCHECK;
/* Frees notify only, never the delivery. */
void notify_free(struct notify *nt);

/* A reloaded config: escalations apply to notices from now on. The
 * delivery gets the new config from its owner, not from here. */
void notify_set_config(struct notify *nt, const struct config *cfg);

/* The sink callbacks (registered in slawatchd.c). */
void notify_notice(struct notify *nt, const struct sla_notice *n);
void notify_outcome(struct notify *nt, const struct sla_outcome *o);

/* An objective transition (report.c's objective hook): matches
 * escalations with `when: objective` on metric (a KPI objective only those
 * without one), tiers (the `all` series only those without a `tiers`
 * list), `objectives` (compliance.objective only those without the list)
 * and `windows`. A violation makes one note per webhook, held back for
 * `after` and sent only if the same violation still holds then; a recovery
 * cancels levels still waiting and sends `recovered` (json, slack), a
 * PagerDuty resolve or an Alertmanager endsAt where the violation was
 * sent, unless send_resolved is false. */
void notify_objective(struct notify *nt, const struct obj_change *ch);

/* Where waiting objective levels and Alertmanager re-sends check that
 * their violation still holds. Without it they read as recovered. */
void notify_set_objective_state(struct notify *nt,
                                notify_objective_state_fn *fn, void *arg);

/* What the delivery asks before sending a note with HOOK_F_COND (the
 * daemon passes it to deliver_new() as deliver_hooks.still_open): does the
 * note's clock (same ticket incarnation, same cycle) still run, in the
 * state the note describes (a breach: breached; a warning: not breached)?
 * For an objective note: is its series still violated, in the same
 * episode (false without an objective state function), and does its
 * escalation still cover it? */
bool notify_still_open(const struct notify *nt, const struct hook_note *n);

#endif
