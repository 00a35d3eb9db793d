/*
 * publish.c - <prefix>breaches entries and the gauges and counters (see
 * publish.h). Everything goes through the writer's durable queue, so
 * commands are pipelined and survive a reconnect. Must not scan tickets.
 */
#define _GNU_SOURCE
#include "slawatch/publish.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slawatch/argv.h"
#include "slawatch/log.h"

struct publish {
    const struct config *cfg;
    const struct core *core;
    struct rds_conn *writer;
    char key_breaches[KEY_MAX];
    char key_events[KEY_MAX];
    long long lag;                   /* from the last XINFO GROUPS */
};

static const char *const notice_kinds[] = {
    [NOTICE_WARNING] = "warning",
    [NOTICE_BREACH] = "breach",
    [NOTICE_RECOVERED] = "recovered",
    [NOTICE_CLEARED] = "cleared",
};

void
publish_notice(void *arg, const struct sla_notice *n)
{
    struct publish *pub = arg;
    struct cmd_argv a;

    if (n->kind == NOTICE_CLEARED)
        return; /* internal: a deleted ticket's breach needs no record */
    argv_init(&a);
    argv_adds(&a, "XADD");
    argv_adds(&a, pub->key_breaches);
    argv_adds(&a, "*");
    argv_adds(&a, "kind");
    argv_adds(&a, notice_kinds[n->kind]);
    argv_adds(&a, "ticket");
    argv_add(&a, n->ticket->id, n->ticket->id_len);
    argv_adds(&a, "tier");
    argv_adds(&a, n->tier);
    argv_adds(&a, "metric");
    argv_adds(&a, cfg_metric_name(n->metric));
    argv_adds(&a, "deadline_ms");
    argv_addf(&a, "%" PRId64, n->deadline_ms);
    argv_adds(&a, "at_ms");
    argv_addf(&a, "%" PRId64, n->at_ms);
    argv_adds(&a, "late_ms");
    argv_addf(&a, "%" PRId64, n->late_ms);
    if (n->kind == NOTICE_WARNING) {
        argv_adds(&a, "percent");
        if (n->percent_bp % 100 == 0)
            argv_addf(&a, "%u", n->percent_bp / 100);
        else
            argv_addf(&a, "%u.%02u", n->percent_bp / 100, n->percent_bp % 100);
    }
    argv_adds(&a, "cycle");
    argv_addf(&a, "%u", (unsigned)n->cycle);
    if (argv_seal(&a) < 0)
        log_err("%s for ticket %s not recorded: out of memory", notice_kinds[n->kind],
                n->ticket->id);
    else if (rds_queue(pub->writer, NULL, NULL, (int)a.n, a.argv, a.lens) < 0)
        log_err("%s for ticket %s not recorded: writer queue full",
                notice_kinds[n->kind], n->ticket->id);
    argv_free(&a);
    log_ticket(n->kind == NOTICE_BREACH ? LOG_LVL_NOTICE : LOG_LVL_INFO,
               n->ticket->id, n->tier, cfg_metric_name(n->metric),
               "%s: ticket %s tier %s %s deadline %" PRId64 " late %" PRId64 " ms",
               notice_kinds[n->kind], n->ticket->id, n->tier,
               cfg_metric_name(n->metric), n->deadline_ms, n->late_ms);
}

/* ---- gauges and counters ------------------------------------------------ */

static void
lag_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct publish *pub = privdata;
    (void)conn;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return;
    /* RESP2: an array of groups, each a flat name/value array. */
    for (size_t g = 0; g < reply->elements; g++) {
        const redisReply *grp = reply->element[g];
        const redisReply *name = NULL, *lag = NULL;
        if (grp->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t i = 0; i + 1 < grp->elements; i += 2) {
            const redisReply *k = grp->element[i];
            if (k->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(k->str, "name") == 0)
                name = grp->element[i + 1];
            else if (strcmp(k->str, "lag") == 0)
                lag = grp->element[i + 1];
        }
        if (name && name->type == REDIS_REPLY_STRING &&
            strcmp(name->str, pub->cfg->events.group) == 0 && lag &&
            lag->type == REDIS_REPLY_INTEGER)
            pub->lag = lag->integer;
    }
}

void
publish_gauges(struct publish *pub, const struct publish_stats *st)
{
    const struct config *cfg = pub->cfg;
    const char *prefix = cfg->redis.prefix;
    struct cmd_argv a;

    /* Gauges are snapshots: while Redis is away there is no point in
     * queueing stale ones; the first round after reconnect is current. */
    if (!rds_ready(pub->writer))
        return;
    argv_init(&a);
    argv_adds(&a, "MSET");
    for (size_t t = 0; t < cfg->ntiers; t++) {
        argv_addf(&a, "%sopen:%s", prefix, cfg->tiers[t].name);
        argv_addf(&a, "%ld", core_open_count(pub->core, (int)t));
        for (int m = 0; m < METRIC_COUNT; m++) {
            if (cfg->tiers[t].target_ms[m] == 0)
                continue;
            argv_addf(&a, "%soverdue:%s:%s", prefix, cfg->tiers[t].name,
                      cfg_metric_name(m));
            argv_addf(&a, "%ld", core_overdue_count(pub->core, (int)t, m));
        }
    }
    const struct {
        const char *name;
        long long value;
    } stats[] = {
        { "events_total", (long long)st->events_total },
        { "rejected_total", (long long)st->rejected_total },
        { "lag", pub->lag },
        { "tickets", (long long)core_ticket_count(pub->core) },
        { "clocks_queued", (long long)core_heap_size(pub->core) },
        { "events_per_second", (long long)(st->events_per_s + 0.5) },
        { "redis_queue", (long long)rds_pending(pub->writer) },
        { "checkpoint_age_ms", st->last_checkpoint_ms
                                   ? (long long)(now_wall_ms() - st->last_checkpoint_ms)
                                   : -1 },
        { "checkpoints_failed_total", (long long)st->checkpoints_failed },
        { "notifications_pending", (long long)st->notifications_pending },
        { "deliveries_failed_total", (long long)st->deliveries_failed },
        { "late_events_total", (long long)core_late_events(pub->core) },
        { "future_events_total", (long long)st->future_events },
        { "redis_write_errors_total", (long long)pub->writer->write_errors },
        { "redis_writes_dead_total", (long long)pub->writer->dead_total },
        { "redis_writes_dropped_total", (long long)pub->writer->dropped },
        { "redis_connections_lost_total", (long long)st->redis_lost },
        { "stream_errors_total", (long long)st->stream_errors },
        { "checkpoint_writes_refused_total", (long long)st->checkpoint_writes_refused },
    };
    for (size_t i = 0; i < ARRAY_LEN(stats); i++) {
        argv_addf(&a, "%sstats:%s", prefix, stats[i].name);
        argv_addf(&a, "%lld", stats[i].value);
    }
    /* While Redis refuses writes the queue is held: a snapshot queued behind
     * it would be stale when it lands, so it is sent on its own (and may be
     * refused too). */
    if (argv_seal(&a) < 0)
        log_warnx("gauges not published: out of memory");
    else if (rds_stalled(pub->writer)) {
        if (rds_send(pub->writer, NULL, NULL, (int)a.n, a.argv, a.lens) < 0)
            log_debug("gauges not published: writer not ready");
    } else if (rds_queue(pub->writer, NULL, NULL, (int)a.n, a.argv, a.lens) < 0)
        log_warnx("gauges not published: writer queue full");
    argv_free(&a);

    /* The group's lag, for the next round (redis_exporter does not export
     * consumer group lag itself). */
    const char *argv[] = { "XINFO", "GROUPS", pub->key_events };
    if (rds_send(pub->writer, lag_cb, pub, 3, argv, NULL) < 0)
        log_debug("lag not refreshed: writer not ready");
}

/* ---- life cycle ----------------------------------------------------------- */

struct publish *
publish_new(const struct config *cfg, const struct core *core, struct rds_conn *writer)
{
    struct publish *pub = calloc(1, sizeof(*pub));
    if (pub == NULL)
        return NULL;
    pub->cfg = cfg;
    pub->core = core;
    pub->writer = writer;
    int a = snprintf(pub->key_breaches, KEY_MAX, "%sbreaches", cfg->redis.prefix);
    int b = snprintf(pub->key_events, KEY_MAX, "%sevents", cfg->redis.prefix);
    if (a >= KEY_MAX || b >= KEY_MAX) {
        free(pub);
        return NULL;
    }
    return pub;
}

void
publish_free(struct publish *pub)
{
    free(pub);
}

void
publish_set_config(struct publish *pub, const struct config *cfg)
{
    pub->cfg = cfg;
}
