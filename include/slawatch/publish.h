/*
 * publish.h - a sink of the core: every warning, breach and recovery the
 * core reports becomes one <prefix>breaches entry; and the gauges and
 * counters (<prefix>open:*, overdue:*, stats:*) of each publish round, and
 * the deletion of those a reload (or an earlier run's configuration) left
 * behind; and the record of the last (re)load, <prefix>reload. All of it
 * goes through the writer's queue, pipelined. Never scans tickets: gauges
 * come from the core's incremental counters and from the figures the
 * wiring gathers (struct publish_stats).
 */
#ifndef SLAWATCH_PUBLISH_H
#define SLAWATCH_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/rds.h"

struct publish;

/* The figures other modules own, for <prefix>stats:*. */
struct publish_stats {
    uint64_t events_total, rejected_total;
    uint64_t future_events;          /* stamped ahead of the wall clock */
    double events_per_s;
    int64_t last_checkpoint_ms;      /* 0: none yet (age -1) */
    uint64_t checkpoints_failed;
    size_t notifications_pending;
    uint64_t deliveries_failed;
    uint64_t redis_lost;             /* connections lost, reader and writer */
    uint64_t stream_errors;          /* error replies reading <prefix>events */
    uint64_t checkpoint_writes_refused;
    bool reload_failed;              /* the last SIGHUP's config was rejected */
    /* Events whose attribute value no policy names, per ATTR_*, and whose
     * tier names no tier ([ATTR_COUNT]); NULL: none counted. */
    const uint64_t *unmatched;
};

/* stats:unmatched:<name> for i in 0..ATTR_COUNT: the attribute names, then
 * "tier". */
const char *publish_unmatched_name(int i);

/* cfg, core and writer are not owned. Returns NULL on allocation failure. */
struct publish *publish_new(const struct config *cfg, const struct core *core,
                            struct rds_conn *writer) MUSTCHECK;
void publish_free(struct publish *pub);
/* Takes the new config (the old one must still be valid): the open: and
 * overdue: gauges it no longer has (a tier removed, a tier that lost its
 * resolution target) are deleted. */
void publish_set_config(struct publish *pub, const struct config *cfg);

/* <prefix>reload, a hash for people and slawatchctl status: result
 * ("started", "reloaded", "rejected"), at_ms (that event), loaded_ms (when
 * the running config was loaded), path and errors (the rejected file's
 * messages, one a line; empty otherwise). Durable. */
void publish_config_state(struct publish *pub, const char *result, int64_t at_ms,
                          int64_t loaded_ms, const char *path, const char *errors);

/* The sink callback (arg: the publish): one <prefix>breaches entry. */
void publish_notice(void *arg, const struct sla_notice *n);

/* One round of gauges and counters (nothing while the writer is down: the
 * next round is current), stats:heartbeat_ms the wall time of the round,
 * and a refresh of the group's lag. The first round of a run also sweeps
 * (SCAN) the open: and overdue: keys the current config does not have. */
void publish_gauges(struct publish *pub, const struct publish_stats *st);

#endif
