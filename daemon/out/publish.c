/*
 * publish.c - outputs in Redis: <prefix>breaches entries for every warning,
 * breach and recovery the core reports, <prefix>events:dead for rejected
 * events, and the gauges and counters (<prefix>open:*, overdue:*, stats:*).
 * Everything goes through the writer's durable queue, so commands are
 * pipelined and survive a reconnect. Must not scan tickets: gauges come
 * from the core's incremental counters.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slawatch/daemon.h"
#include "slawatch/report.h"

static const char *const notice_kinds[] = {
    [NOTICE_WARNING] = "warning",
    [NOTICE_BREACH] = "breach",
    [NOTICE_RECOVERED] = "recovered",
    [NOTICE_CLEARED] = "cleared",
};

void
publish_notice(void *arg, const struct sla_notice *n)
{
    struct sw *sw = arg;
    char deadline[24], at[24], late[24], percent[16], cycle[8];
    const char *argv[22];
    size_t lens[22];
    int argc = 0;

    notify_notice(sw->notify, n);
    if (n->kind == NOTICE_CLEARED)
        return; /* internal: a deleted ticket's breach needs no record */
    sw->notices_total++;
    snprintf(deadline, sizeof(deadline), "%" PRId64, n->deadline_ms);
    snprintf(at, sizeof(at), "%" PRId64, n->at_ms);
    snprintf(late, sizeof(late), "%" PRId64, n->late_ms);
    snprintf(cycle, sizeof(cycle), "%u", (unsigned)n->cycle);
    if (n->percent_bp % 100 == 0)
        snprintf(percent, sizeof(percent), "%u", n->percent_bp / 100);
    else
        snprintf(percent, sizeof(percent), "%u.%02u", n->percent_bp / 100,
                 n->percent_bp % 100);

#define ARG(s, l) (argv[argc] = (s), lens[argc++] = (l))
#define ARGS(s) ARG((s), strlen(s))
    ARGS("XADD");
    ARGS(sw->key_breaches);
    ARGS("*");
    ARGS("kind");
    ARGS(notice_kinds[n->kind]);
    ARGS("ticket");
    ARG(n->ticket->id, n->ticket->id_len);
    ARGS("tier");
    ARGS(n->tier);
    ARGS("metric");
    ARGS(cfg_metric_name(n->metric));
    ARGS("deadline_ms");
    ARGS(deadline);
    ARGS("at_ms");
    ARGS(at);
    ARGS("late_ms");
    ARGS(late);
    if (n->kind == NOTICE_WARNING) {
        ARGS("percent");
        ARGS(percent);
    }
    ARGS("cycle");
    ARGS(cycle);
#undef ARG
#undef ARGS
    if (rds_queue(&sw->writer, NULL, NULL, argc, argv, lens) < 0)
        log_err("%s for ticket %s not recorded: writer queue full",
                notice_kinds[n->kind], n->ticket->id);
    log_ticket(n->kind == NOTICE_BREACH ? LOG_LVL_NOTICE : LOG_LVL_INFO,
               n->ticket->id, n->tier, cfg_metric_name(n->metric),
               "%s: ticket %s tier %s %s deadline %" PRId64 " late %" PRId64 " ms",
               notice_kinds[n->kind], n->ticket->id, n->tier,
               cfg_metric_name(n->metric), n->deadline_ms, n->late_ms);
}

void
publish_outcome(void *arg, const struct sla_outcome *o)
{
    struct sw *sw = arg;
    notify_outcome(sw->notify, o);
    report_outcome(sw, o); /* compliance windows (report.c) */
}

void
publish_dead_letter(struct sw *sw, const char *id, size_t id_len,
                    const struct ev_field *fields, size_t nfields,
                    const char *reason)
{
    size_t max = 10 + 2 * nfields;
    const char **argv = malloc(max * sizeof(*argv));
    size_t *lens = malloc(max * sizeof(*lens));
    char maxlen[24];
    int argc = 0;

    if (argv == NULL || lens == NULL) {
        log_err("dead letter for %.*s lost: out of memory", (int)id_len, id);
        free(argv);
        free(lens);
        return;
    }
    argv[argc] = "XADD";
    lens[argc++] = 4;
    argv[argc] = sw->key_dead;
    lens[argc++] = strlen(sw->key_dead);
    if (sw->cfg->events.dead_maxlen > 0) {
        snprintf(maxlen, sizeof(maxlen), "%ld", sw->cfg->events.dead_maxlen);
        argv[argc] = "MAXLEN";
        lens[argc++] = 6;
        argv[argc] = "~";
        lens[argc++] = 1;
        argv[argc] = maxlen;
        lens[argc++] = strlen(maxlen);
    }
    argv[argc] = "*";
    lens[argc++] = 1;
    for (size_t i = 0; i < nfields; i++) {
        /* The original fields, except ones that would shadow ours. */
        if ((fields[i].name_len == 6 && memcmp(fields[i].name, "reason", 6) == 0) ||
            (fields[i].name_len == 9 && memcmp(fields[i].name, "source_id", 9) == 0))
            continue;
        argv[argc] = fields[i].name;
        lens[argc++] = fields[i].name_len;
        argv[argc] = fields[i].value;
        lens[argc++] = fields[i].value_len;
    }
    argv[argc] = "reason";
    lens[argc++] = 6;
    argv[argc] = reason;
    lens[argc++] = strlen(reason);
    argv[argc] = "source_id";
    lens[argc++] = 9;
    argv[argc] = id;
    lens[argc++] = id_len;
    if (rds_queue(&sw->writer, NULL, NULL, argc, argv, lens) < 0)
        log_err("dead letter for %.*s lost: writer queue full", (int)id_len, id);
    free(argv);
    free(lens);
}

/* ---- gauges and counters ---------------------------------------------- */

static void
lag_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct sw *sw = privdata;
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
            strcmp(name->str, sw->cfg->events.group) == 0 && lag &&
            lag->type == REDIS_REPLY_INTEGER)
            sw->lag = lag->integer;
    }
}

struct kv_buf {
    const char **argv;
    size_t *lens;
    char *text;              /* keys and values, NUL-separated */
    size_t used, cap;
    int argc, max;
};

static int
kv_add(struct kv_buf *b, const char *fmt_key, const char *a, const char *c,
       const char *value)
{
    char key[KEY_MAX];
    snprintf(key, sizeof(key), fmt_key, a ? a : "", c ? c : "");
    size_t need = strlen(key) + strlen(value) + 2;
    if (b->argc + 2 > b->max || b->used + need > b->cap)
        return -1;
    char *k = b->text + b->used;
    memcpy(k, key, strlen(key) + 1);
    b->used += strlen(key) + 1;
    char *v = b->text + b->used;
    memcpy(v, value, strlen(value) + 1);
    b->used += strlen(value) + 1;
    b->argv[b->argc] = k;
    b->lens[b->argc++] = strlen(k);
    b->argv[b->argc] = v;
    b->lens[b->argc++] = strlen(v);
    return 0;
}

void
publish_gauges(struct sw *sw)
{
    const struct config *cfg = sw->cfg;
    const char *prefix = cfg->redis.prefix;
    int max = 2 + 2 * (int)(cfg->ntiers * (1 + METRIC_COUNT) + 16);
    struct kv_buf b = { 0 };
    char num[32], fmt[KEY_MAX];
    int fail = 0;

    /* Gauges are snapshots: while Redis is away there is no point in
     * queueing stale ones; the first round after reconnect is current. */
    if (!rds_ready(&sw->writer))
        return;
    b.max = max;
    b.cap = (size_t)max * (KEY_MAX / 2);
    b.argv = malloc((size_t)max * sizeof(*b.argv));
    b.lens = malloc((size_t)max * sizeof(*b.lens));
    b.text = malloc(b.cap);
    if (b.argv == NULL || b.lens == NULL || b.text == NULL)
        goto out;
    b.argv[b.argc] = "MSET";
    b.lens[b.argc++] = 4;

    for (size_t t = 0; t < cfg->ntiers; t++) {
        snprintf(fmt, sizeof(fmt), "%sopen:%%s", prefix);
        snprintf(num, sizeof(num), "%ld", core_open_count(sw->core, (int)t));
        fail |= kv_add(&b, fmt, cfg->tiers[t].name, NULL, num);
        for (int m = 0; m < METRIC_COUNT; m++) {
            if (cfg->tiers[t].target_ms[m] == 0)
                continue;
            snprintf(fmt, sizeof(fmt), "%soverdue:%%s:%%s", prefix);
            snprintf(num, sizeof(num), "%ld", core_overdue_count(sw->core, (int)t, m));
            fail |= kv_add(&b, fmt, cfg->tiers[t].name, cfg_metric_name(m), num);
        }
    }
    static const char *const stat_names[] = {
        "events_total", "rejected_total", "lag", "tickets", "clocks_queued",
        "events_per_second", "redis_queue", "checkpoint_age_ms",
        "checkpoints_failed_total", "notifications_pending",
        "deliveries_failed_total",
    };
    long long stat_values[] = {
        (long long)sw->events_total, (long long)sw->rejected_total, sw->lag,
        (long long)core_ticket_count(sw->core),
        (long long)core_heap_size(sw->core), (long long)(sw->events_per_s + 0.5),
        (long long)rds_pending(&sw->writer),
        sw->last_checkpoint_ms ? (long long)(now_wall_ms() - sw->last_checkpoint_ms) : -1,
        (long long)sw->checkpoints_failed,
        sw->deliver ? (long long)deliver_pending(sw->deliver) : 0,
        sw->deliver ? (long long)deliver_failed_total(sw->deliver) : 0,
    };
    snprintf(fmt, sizeof(fmt), "%sstats:%%s", prefix);
    for (size_t i = 0; i < ARRAY_LEN(stat_names); i++) {
        snprintf(num, sizeof(num), "%lld", stat_values[i]);
        fail |= kv_add(&b, fmt, stat_names[i], NULL, num);
    }
    if (fail)
        log_warnx("gauges truncated: too many keys");
    if (rds_queue(&sw->writer, NULL, NULL, b.argc, b.argv, b.lens) < 0)
        log_warnx("gauges not published: writer queue full");

    /* The group's lag, for the next round (redis_exporter does not export
     * consumer group lag itself). */
    const char *argv[] = { "XINFO", "GROUPS", sw->key_events };
    if (rds_send(&sw->writer, lag_cb, sw, 3, argv, NULL) < 0)
        log_debug("lag not refreshed: writer not ready");
out:
    free(b.argv);
    free(b.lens);
    free(b.text);
}
