/*
 * publish.c - <prefix>breaches entries, the gauges and counters, and the
 * <prefix>reload record (see publish.h). Everything goes through the
 * writer's queue, so commands are pipelined; records and deletions are
 * durable and survive a reconnect. Must not scan tickets. Owns which
 * open: and overdue: keys exist: those of the current config, written
 * every round; those of a removed tier are deleted at the reload, those an
 * earlier run left by one SCAN after the first round.
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
    uint64_t folded_logged;          /* attribute values folded, as last logged */
    struct rds_conn *writer;
    char key_breaches[KEY_MAX];
    char key_events[KEY_MAX];
    long long lag;                   /* from the last XINFO GROUPS */
    /* The sweep of gauges an earlier run's configuration left behind. */
    bool swept, sweeping;
    char match[2 * KEY_MAX + 4];     /* SCAN MATCH pattern */
    char cursor[32];
    long stale;
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
    /* People read times (RFC 3339) and durations; the epoch milliseconds
     * stay in the record above. */
    char deadline[TS_BUFLEN], late[40], when[64], pct[16] = "";
    ts_format(n->deadline_ms, deadline);
    dur_format(n->late_ms < 0 ? -n->late_ms : n->late_ms, late, sizeof(late));
    if (n->kind == NOTICE_WARNING) {
        snprintf(pct, sizeof(pct), " at %u%%", n->percent_bp / 100);
        snprintf(when, sizeof(when), "in %s", late);
    } else {
        snprintf(when, sizeof(when), "%s %s late",
                 n->kind == NOTICE_RECOVERED ? "answered" : "decided", late);
    }
    log_ticket(n->kind == NOTICE_BREACH ? LOG_LVL_NOTICE : LOG_LVL_INFO,
               n->ticket->id, n->tier, cfg_metric_name(n->metric),
               "%s: ticket %s tier %s %s%s, deadline %s (%s)", notice_kinds[n->kind],
               n->ticket->id, n->tier, cfg_metric_name(n->metric), pct, deadline, when);
}

/* ---- gauges and counters ------------------------------------------------ */

const char *
publish_unmatched_name(int i)
{
    return i >= 0 && i < ATTR_COUNT ? cfg_attr_name(i) : "tier";
}

/* Whether key (len bytes) is <prefix>open:<tier> or
 * <prefix>overdue:<tier>:<metric>: a gauge this module owns. *rest points
 * past the family. */
static bool
gauge_family(const struct config *cfg, const char *key, size_t len, bool *open,
             const char **rest)
{
    size_t plen = strlen(cfg->redis.prefix);
    if (len <= plen || memcmp(key, cfg->redis.prefix, plen) != 0)
        return false;
    key += plen;
    len -= plen;
    if (len > 5 && memcmp(key, "open:", 5) == 0) {
        *open = true;
        *rest = key + 5;
        return true;
    }
    if (len > 8 && memcmp(key, "overdue:", 8) == 0) {
        *open = false;
        *rest = key + 8;
        return true;
    }
    return false;
}

/* Whether cfg writes this gauge (key is one of gauge_family's). */
static bool
gauge_current(const struct config *cfg, const char *key, size_t len)
{
    bool open;
    const char *rest, *end = key + len;
    if (!gauge_family(cfg, key, len, &open, &rest))
        return false;
    const char *colon = memchr(rest, ':', (size_t)(end - rest));
    if (open)
        return colon == NULL && cfg_tier_index(cfg, rest, (size_t)(end - rest)) >= 0;
    if (colon == NULL)
        return false;
    int t = cfg_tier_index(cfg, rest, (size_t)(colon - rest));
    if (t < 0)
        return false;
    for (int m = 0; m < METRIC_COUNT; m++)
        if (cfg->tiers[t].target_ms[m] > 0 && strlen(cfg_metric_name(m)) == (size_t)(end - colon - 1) &&
            memcmp(colon + 1, cfg_metric_name(m), (size_t)(end - colon - 1)) == 0)
            return true;
    return false;
}

static void sweep_next(struct publish *pub);

/* One SCAN page: DEL the gauges the current config does not write. */
static void
sweep_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct publish *pub = privdata;
    struct cmd_argv del;
    (void)conn;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        pub->sweeping = false; /* tried again after the next round */
        return;
    }
    argv_init(&del);
    argv_adds(&del, "DEL");
    const redisReply *keys = reply->element[1];
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        bool open;
        const char *rest;
        if (k->type == REDIS_REPLY_STRING && strlen(k->str) == k->len &&
            gauge_family(pub->cfg, k->str, k->len, &open, &rest) &&
            !gauge_current(pub->cfg, k->str, k->len))
            argv_add(&del, k->str, k->len);
    }
    if (del.n > 1 && argv_seal(&del) == 0 &&
        rds_queue(pub->writer, NULL, NULL, (int)del.n, del.argv, del.lens) == 0)
        pub->stale += (long)del.n - 1;
    argv_free(&del);
    snprintf(pub->cursor, sizeof(pub->cursor), "%s", reply->element[0]->str);
    if (strcmp(pub->cursor, "0") == 0) {
        pub->sweeping = false;
        pub->swept = true;
        if (pub->stale)
            log_info("gauges: deleted %ld open:/overdue: keys of tiers the configuration "
                     "no longer has", pub->stale);
        return;
    }
    sweep_next(pub);
}

static void
sweep_next(struct publish *pub)
{
    const char *argv[] = { "SCAN", pub->cursor, "MATCH", pub->match, "COUNT", "1000" };
    if (rds_send(pub->writer, sweep_cb, pub, (int)ARRAY_LEN(argv), argv, NULL) < 0)
        pub->sweeping = false;
}

static void
sweep_start(struct publish *pub)
{
    size_t n = 0;
    /* The prefix, glob characters escaped, then "*". */
    for (const char *p = pub->cfg->redis.prefix; *p && n + 3 < sizeof(pub->match); p++) {
        if (strchr("*?[]\\", *p))
            pub->match[n++] = '\\';
        pub->match[n++] = *p;
    }
    pub->match[n++] = '*';
    pub->match[n] = '\0';
    snprintf(pub->cursor, sizeof(pub->cursor), "0");
    pub->sweeping = true;
    pub->stale = 0;
    sweep_next(pub);
}

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
    uint64_t folded = 0;
    for (int at = 0; at < ATTR_COUNT; at++)
        folded += core_attr_folded(pub->core, at);
    if (folded > pub->folded_logged) {
        log_warnx("attributes: %llu new values folded into _other since the last "
                  "report (state.max_attribute_values %d per attribute reached)",
                  (unsigned long long)(folded - pub->folded_logged),
                  pub->cfg->state.max_attribute_values);
        pub->folded_logged = folded;
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
        { "tickets_forgotten_total", (long long)core_forgotten(pub->core) },
        { "closed_kept", (long long)core_closed_count(pub->core) },
        { "attribute_values_folded_total", (long long)folded },
        { "future_events_total", (long long)st->future_events },
        { "redis_write_errors_total", (long long)pub->writer->write_errors },
        { "redis_writes_dead_total", (long long)pub->writer->dead_total },
        { "redis_writes_dropped_total", (long long)pub->writer->dropped },
        { "redis_connections_lost_total", (long long)st->redis_lost },
        { "stream_errors_total", (long long)st->stream_errors },
        { "checkpoint_writes_refused_total", (long long)st->checkpoint_writes_refused },
        { "reload_failed", st->reload_failed ? 1 : 0 },
        /* The wall time of this round: a heartbeat that moves each second
         * while the daemon publishes and stands still when it does not. */
        { "heartbeat_ms", (long long)now_wall_ms() },
    };
    for (size_t i = 0; i < ARRAY_LEN(stats); i++) {
        argv_addf(&a, "%sstats:%s", prefix, stats[i].name);
        argv_addf(&a, "%lld", stats[i].value);
    }
    for (int i = 0; i <= ATTR_COUNT; i++) {
        argv_addf(&a, "%sstats:unmatched:%s", prefix, publish_unmatched_name(i));
        argv_addf(&a, "%llu", st->unmatched ? (unsigned long long)st->unmatched[i] : 0ULL);
    }
    /* While Redis refuses writes the queue is held: a snapshot queued behind
     * it would be stale when it lands, so it is sent on its own (and may be
     * refused too). */
    if (argv_seal(&a) < 0)
        log_warnx("gauges not published: out of memory");
    else if (rds_stalled(pub->writer)) {
        if (rds_send_write(pub->writer, NULL, NULL, (int)a.n, a.argv, a.lens) < 0)
            log_debug("gauges not published: writer not ready");
    } else if (rds_queue(pub->writer, NULL, NULL, (int)a.n, a.argv, a.lens) < 0)
        log_warnx("gauges not published: writer queue full");
    argv_free(&a);
    if (!pub->swept && !pub->sweeping)
        sweep_start(pub);

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
    const struct config *old = pub->cfg;
    struct cmd_argv del;
    char key[KEY_MAX + 160];
    argv_init(&del);
    argv_adds(&del, "DEL");
    for (size_t t = 0; t < old->ntiers; t++) {
        /* Keys are named under the running prefix (a prefix change waits
         * for a restart, see slawatchd.c). */
        int n = snprintf(key, sizeof(key), "%sopen:%s", old->redis.prefix, old->tiers[t].name);
        if (!gauge_current(cfg, key, (size_t)n))
            argv_add(&del, key, (size_t)n);
        for (int m = 0; m < METRIC_COUNT; m++) {
            if (old->tiers[t].target_ms[m] == 0)
                continue;
            n = snprintf(key, sizeof(key), "%soverdue:%s:%s", old->redis.prefix,
                         old->tiers[t].name, cfg_metric_name(m));
            if (!gauge_current(cfg, key, (size_t)n))
                argv_add(&del, key, (size_t)n);
        }
    }
    if (del.n > 1) {
        if (argv_seal(&del) < 0 ||
            rds_queue(pub->writer, NULL, NULL, (int)del.n, del.argv, del.lens) < 0)
            log_warnx("reload: gauges of removed tiers not deleted: %s",
                      del.oom ? "out of memory" : "writer queue full");
        else
            log_info("reload: deleted %zu open:/overdue: gauges of removed tiers", del.n - 1);
    }
    argv_free(&del);
    pub->cfg = cfg;
}

void
publish_config_state(struct publish *pub, const char *result, int64_t at_ms,
                     int64_t loaded_ms, const char *path, const char *errors)
{
    struct cmd_argv a;
    argv_init(&a);
    argv_adds(&a, "HSET");
    argv_addf(&a, "%sreload", pub->cfg->redis.prefix);
    argv_adds(&a, "result");
    argv_adds(&a, result);
    argv_adds(&a, "at_ms");
    argv_addf(&a, "%" PRId64, at_ms);
    argv_adds(&a, "loaded_ms");
    argv_addf(&a, "%" PRId64, loaded_ms);
    argv_adds(&a, "path");
    argv_adds(&a, path ? path : "");
    argv_adds(&a, "errors");
    argv_adds(&a, errors ? errors : "");
    if (argv_seal(&a) < 0 || rds_queue(pub->writer, NULL, NULL, (int)a.n, a.argv, a.lens) < 0)
        log_warnx("%sreload not written: %s", pub->cfg->redis.prefix,
                  a.oom ? "out of memory" : "writer queue full");
    argv_free(&a);
}
