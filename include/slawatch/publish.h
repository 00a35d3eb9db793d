/*
 * publish.h - a sink of the core: every warning, breach and recovery the
 * core reports becomes one <prefix>breaches entry; and the gauges and
 * counters (<prefix>open:*, overdue:*, stats:*) of each publish round. All
 * of it goes through the writer's durable queue, pipelined. Never scans
 * tickets: gauges come from the core's incremental counters and from the
 * figures the wiring gathers (struct publish_stats).
 */
#ifndef SLAWATCH_PUBLISH_H
#define SLAWATCH_PUBLISH_H

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
};

/* cfg, core and writer are not owned. Returns NULL on allocation failure. */
struct publish *publish_new(const struct config *cfg, const struct core *core,
                            struct rds_conn *writer) MUSTCHECK;
void publish_free(struct publish *pub);
void publish_set_config(struct publish *pub, const struct config *cfg);

/* The sink callback (arg: the publish): one <prefix>breaches entry. */
void publish_notice(void *arg, const struct sla_notice *n);

/* One round of gauges and counters (nothing while the writer is down: the
 * next round is current), and a refresh of the group's lag. */
void publish_gauges(struct publish *pub, const struct publish_stats *st);

#endif
