/*
 * ctl_status.c - `slawatchctl status`: one ticket as the daemon sees it
 * (rebuilt by ctl_view.c), or, without a ticket, the daemon itself: when
 * it last published, whether its last reload was rejected and why, and its
 * counters, as it wrote them into Redis. Read-only.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "slawatch/cal.h"
#include "slawatch/util.h"

/* A heartbeat older than this means the daemon is not publishing (it
 * publishes every second). */
#define STALE_MS 5000

static const char *const state_names[] = { "not started", "running", "paused", "stopped" };
static const char *const outcome_names[] = { "", "met", "breached" };

/* The response clock hands its slot to next_reply cycles (core.h): after
 * that only its outcome is known. */
static const char *
handed_over_outcome(const struct ticket *t)
{
    return t->flags & TF_RESP_BREACHED ? "breached" : "met";
}

static json_t *
handed_over_json(const struct ticket *t, int metric)
{
    json_t *o = json_object();
    if (metric == METRIC_RESPONSE) {
        json_object_set_new(o, "state", json_string("stopped"));
        json_object_set_new(o, "outcome", json_string(handed_over_outcome(t)));
    } else {
        json_object_set_new(o, "state", json_string(state_names[CLOCK_IDLE]));
        json_object_set_new(o, "outcome", json_null());
    }
    return o;
}

static json_t *
clock_json(const struct cfg_tier *tier, const struct sla_clock *c)
{
    char a[TS_BUFLEN], b[TS_BUFLEN], loc[CAL_LOCAL_BUFLEN];
    json_t *o = json_object();
    json_object_set_new(o, "state", json_string(state_names[c->state]));
    json_object_set_new(o, "outcome", c->outcome ? json_string(outcome_names[c->outcome])
                                                 : json_null());
    if (c->state == CLOCK_IDLE)
        return o;
    json_object_set_new(o, "target_ms", json_integer(tier->target_ms[c->metric]));
    json_object_set_new(o, "cycle", json_integer(c->cycle));
    json_object_set_new(o, "started", json_string(ts_format(c->started_ms, a)));
    json_object_set_new(o, "deadline", json_string(ts_format(c->deadline_ms, b)));
    if (tier->calendar)
        json_object_set_new(o, "deadline_local",
                            json_string(cal_format_local(tier->calendar, c->deadline_ms, loc)));
    if (c->state == CLOCK_STOPPED)
        json_object_set_new(o, "stopped", json_string(ts_format(c->resumed_ms, a)));
    return o;
}

static void
print_ticket(const struct ctl_view *view, const struct ticket *t, const struct cfg_tier *tier)
{
    char src[160];
    printf("ticket      %s\n", t->id);
    printf("tier        %s%s%s%s\n", tier->name, tier->calendar ? " (calendar " : "",
           tier->calendar ? cal_name(tier->calendar) : "", tier->calendar ? ")" : "");
    printf("state       %s%s\n", ticket_resolved(t) ? "resolved" : "open",
           ticket_paused(t) ? ", paused" : "");
    printf("attributes ");
    for (int a = 0; a < ATTR_COUNT; a++) {
        const char *v = core_ticket_attr(view->core, t, a);
        if (v)
            printf(" %s=%s", cfg_attr_name(a), v);
    }
    printf("\n");
    for (int m = 0; m < METRIC_COUNT; m++) {
        const struct sla_clock *k = ticket_clock(t, m);
        char a[TS_BUFLEN], b[TS_BUFLEN], loc[CAL_LOCAL_BUFLEN];
        if (k == NULL) {
            if (m == METRIC_RESPONSE)
                printf("%-11s stopped, %s\n", cfg_metric_name(m), handed_over_outcome(t));
            else
                printf("%-11s %s\n", cfg_metric_name(m), state_names[CLOCK_IDLE]);
            continue;
        }
        printf("%-11s %s", cfg_metric_name(m), state_names[k->state]);
        if (k->state != CLOCK_IDLE) {
            printf(", started %s, deadline %s", ts_format(k->started_ms, a),
                   ts_format(k->deadline_ms, b));
            if (tier->calendar)
                printf(" (%s %s)", cal_format_local(tier->calendar, k->deadline_ms, loc),
                       cal_timezone(tier->calendar));
        }
        if (k->state == CLOCK_STOPPED)
            printf(", stopped %s", ts_format(k->resumed_ms, a));
        if (k->outcome)
            printf(", %s", outcome_names[k->outcome]);
        if (k->cycle)
            printf(", cycle %u", k->cycle);
        printf("\n");
    }
    ctl_view_source(view, src, sizeof(src));
    printf("as of       %s\n", src);
}

static int
ticket_status(const struct config *cfg, redisContext *c, const char *id, bool json)
{
    struct ctl_view view;
    int rc = ctl_view_load(c, cfg, &view);
    if (rc != 0) {
        ctl_view_free(&view);
        return rc;
    }
    const struct ticket *t = core_find(view.core, id, strlen(id));
    if (t == NULL) {
        fprintf(stderr, "slawatchctl: ticket %s is not known (never opened, or closed "
                        "or deleted)\n", id);
        ctl_view_free(&view);
        return 1;
    }
    const char *tname = core_tier_name(view.core, t);
    const struct cfg_tier *tier = &cfg->tiers[cfg_tier_index(cfg, tname, strlen(tname))];
    if (!json) {
        print_ticket(&view, t, tier);
        ctl_view_free(&view);
        return 0;
    }
    json_t *o = json_object();
    json_object_set_new(o, "ticket", json_string(t->id));
    json_object_set_new(o, "tier", json_string(tier->name));
    json_object_set_new(o, "calendar", tier->calendar ? json_string(cal_name(tier->calendar))
                                                      : json_null());
    json_object_set_new(o, "timezone", json_string(cal_timezone(tier->calendar)));
    json_object_set_new(o, "open", json_boolean(!ticket_resolved(t)));
    json_object_set_new(o, "paused", json_boolean(ticket_paused(t)));
    unsigned score = ticket_score(t);
    if (score == SCORE_GOOD || score == SCORE_BAD)
        json_object_set_new(o, "rating", json_string(score == SCORE_GOOD ? "good" : "bad"));
    else
        json_object_set_new(o, "rating", score ? json_integer(score) : json_null());
    json_t *attrs = json_object();
    for (int a = 0; a < ATTR_COUNT; a++) {
        const char *v = core_ticket_attr(view.core, t, a);
        json_object_set_new(attrs, cfg_attr_name(a), v ? json_string(v) : json_null());
    }
    json_object_set_new(o, "attributes", attrs);
    for (int m = 0; m < METRIC_COUNT; m++) {
        const struct sla_clock *k = ticket_clock(t, m);
        json_object_set_new(o, cfg_metric_name(m),
                            k ? clock_json(tier, k) : handed_over_json(t, m));
    }
    json_object_set_new(o, "checkpoint_age_ms",
                        view.meta.saved_ms ? json_integer(view.now_ms - view.meta.saved_ms)
                                           : json_null());
    json_object_set_new(o, "events_replayed", json_integer(view.replayed));
    ctl_print_json(o);
    ctl_view_free(&view);
    return 0;
}

/* ---- the daemon --------------------------------------------------------- */

/* GET of an integer key; false when absent or not a number. */
static bool
get_int(redisContext *c, const char *key, long long *out)
{
    redisReply *r = redisCommand(c, "GET %s", key);
    bool ok = false;
    if (r && r->type == REDIS_REPLY_STRING) {
        char *end;
        *out = strtoll(r->str, &end, 10);
        ok = end != r->str && *end == '\0';
    }
    if (r)
        freeReplyObject(r);
    return ok;
}

/* The fields of the <prefix>reload hash the daemon writes (see
 * slawatchd(8)): result, at_ms, loaded_ms, path, errors. */
struct reload_info {
    char result[32];
    long long at_ms, loaded_ms;
    char path[512];
    char *errors;             /* malloc'ed, may be NULL */
};

static bool
get_reload(redisContext *c, const struct config *cfg, struct reload_info *ri)
{
    char key[KEY_MAX];
    memset(ri, 0, sizeof(*ri));
    redisReply *r = redisCommand(c, "HGETALL %s", ctl_key(key, cfg, "reload"));
    bool found = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2;
    for (size_t i = 0; found && i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "result") == 0)
            snprintf(ri->result, sizeof(ri->result), "%s", v);
        else if (strcmp(k, "at_ms") == 0)
            ri->at_ms = atoll(v);
        else if (strcmp(k, "loaded_ms") == 0)
            ri->loaded_ms = atoll(v);
        else if (strcmp(k, "path") == 0)
            snprintf(ri->path, sizeof(ri->path), "%s", v);
        else if (strcmp(k, "errors") == 0 && *v)
            ri->errors = strdup(v);
    }
    if (r)
        freeReplyObject(r);
    return found;
}

static const char *const daemon_stats[] = {
    "events_total", "rejected_total", "lag", "tickets", "events_per_second",
    "redis_queue", "notifications_pending", "deliveries_failed_total",
    "checkpoint_age_ms", "checkpoints_failed_total", "late_events_total",
    "future_events_total", "reload_failed", "leader_changes_total",
    "redis_write_errors_total", "redis_connections_lost_total",
    "tickets_forgotten_total", "attribute_values_folded_total",
};

/* Who leads and who stands by (SPEC section 7): <prefix>leader, its
 * token and lease, and the roll call <prefix>instances. Into o (JSON) or
 * printed. */
static void
instances(const struct config *cfg, redisContext *c, json_t *o)
{
    const char *p = cfg->redis.prefix;
    redisReply *leader = redisCommand(c, "GET %sleader", p);
    redisReply *pttl = redisCommand(c, "PTTL %sleader", p);
    redisReply *epoch = redisCommand(c, "GET %sleader:epoch", p);
    redisReply *inst = redisCommand(c, "ZRANGEBYSCORE %sinstances %lld +inf WITHSCORES", p,
                                    (long long)now_wall_ms());
    const char *name = leader && leader->type == REDIS_REPLY_STRING ? leader->str : NULL;
    const char *token = epoch && epoch->type == REDIS_REPLY_STRING ? epoch->str : NULL;
    long long left = pttl && pttl->type == REDIS_REPLY_INTEGER ? pttl->integer : -1;
    json_t *standbys = json_array();
    for (size_t i = 0; inst && inst->type == REDIS_REPLY_ARRAY && i + 1 < inst->elements;
         i += 2)
        if (inst->element[i]->type == REDIS_REPLY_STRING &&
            (name == NULL || strcmp(inst->element[i]->str, name) != 0))
            json_array_append_new(standbys, json_string(inst->element[i]->str));
    if (o) {
        json_object_set_new(o, "leader", name ? json_string(name) : json_null());
        json_object_set_new(o, "token", token ? json_integer(atoll(token)) : json_null());
        json_object_set_new(o, "lease_left_ms", name ? json_integer(left) : json_null());
        json_object_set_new(o, "standbys", standbys);
    } else {
        if (name)
            printf("leader      %s (token %s, lease %lld ms left)\n", name,
                   token ? token : "?", left);
        else
            printf("leader      none (no instance holds %sleader)\n", p);
        for (size_t i = 0; i < json_array_size(standbys); i++)
            printf("standby     %s\n", json_string_value(json_array_get(standbys, i)));
        if (json_array_size(standbys) == 0)
            printf("standby     none\n");
        json_decref(standbys);
    }
    redisReply *all[] = { leader, pttl, epoch, inst };
    for (size_t i = 0; i < ARRAY_LEN(all); i++)
        if (all[i])
            freeReplyObject(all[i]);
}

static int
daemon_status(const struct config *cfg, redisContext *c, bool json)
{
    char key[KEY_MAX], a[TS_BUFLEN], due[CTL_DUE_BUFLEN];
    long long hb = 0, v;
    int64_t now = now_wall_ms();
    bool have_hb = get_int(c, ctl_key(key, cfg, "stats:heartbeat_ms"), &hb);
    bool publishing = have_hb && now - hb <= STALE_MS;
    struct reload_info ri;
    bool have_reload = get_reload(c, cfg, &ri);
    long long failed = 0;
    bool rejected = get_int(c, ctl_key(key, cfg, "stats:reload_failed"), &failed) && failed;
    long long open = 0;
    for (size_t t = 0; t < cfg->ntiers; t++)
        if (get_int(c, ctl_key(key, cfg, "open:%s", cfg->tiers[t].name), &v))
            open += v;

    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "publishing", json_boolean(publishing));
        json_object_set_new(o, "heartbeat", have_hb ? json_string(ts_format(hb, a)) : json_null());
        json_object_set_new(o, "heartbeat_age_ms", have_hb ? json_integer(now - hb) : json_null());
        json_object_set_new(o, "reload_failed", json_boolean(rejected));
        json_t *jr = json_null();
        if (have_reload) {
            jr = json_object();
            json_object_set_new(jr, "result", json_string(ri.result));
            json_object_set_new(jr, "at", json_string(ts_format(ri.at_ms, a)));
            json_object_set_new(jr, "loaded", json_string(ts_format(ri.loaded_ms, a)));
            json_object_set_new(jr, "path", json_string(ri.path));
            json_object_set_new(jr, "errors", ri.errors ? json_string(ri.errors) : json_null());
        }
        json_object_set_new(o, "reload", jr);
        json_object_set_new(o, "open", json_integer(open));
        json_t *js = json_object();
        for (size_t i = 0; i < ARRAY_LEN(daemon_stats); i++) {
            bool f = get_int(c, ctl_key(key, cfg, "stats:%s", daemon_stats[i]), &v);
            json_object_set_new(js, daemon_stats[i], f ? json_integer(v) : json_null());
        }
        json_object_set_new(o, "stats", js);
        instances(cfg, c, o);
        ctl_print_json(o);
        free(ri.errors);
        return 0;
    }

    if (!have_hb)
        printf("daemon      never published under prefix \"%s\" (no %sstats:heartbeat_ms)\n",
               cfg->redis.prefix, cfg->redis.prefix);
    else
        printf("daemon      %s: last published %s (%s)\n",
               publishing ? "publishing" : "NOT PUBLISHING", ts_format(hb, a),
               ctl_due_text(hb - now, due));
    if (have_reload) {
        char l[TS_BUFLEN];
        if (rejected || strcmp(ri.result, "rejected") == 0) {
            printf("config      RELOAD REJECTED %s: the configuration loaded %s stays\n",
                   ts_format(ri.at_ms, a), ts_format(ri.loaded_ms, l));
            char *save = NULL;
            for (char *line = ri.errors ? strtok_r(ri.errors, "\n", &save) : NULL; line;
                 line = strtok_r(NULL, "\n", &save))
                printf("            %s\n", line);
        } else {
            printf("config      %s, %s %s\n", ri.path,
                   strcmp(ri.result, "reloaded") == 0 ? "reloaded" : "loaded at start",
                   ts_format(ri.loaded_ms, a));
        }
    }
    instances(cfg, c, NULL);
    printf("tickets     %lld open\n", open);
    printf("counters   ");
    for (size_t i = 0; i < ARRAY_LEN(daemon_stats); i++) {
        bool f = get_int(c, ctl_key(key, cfg, "stats:%s", daemon_stats[i]), &v);
        if (f && strcmp(daemon_stats[i], "checkpoint_age_ms") == 0 && v < 0)
            printf(" %s none-yet", daemon_stats[i]);
        else if (f)
            printf(" %s %lld", daemon_stats[i], v);
    }
    printf("\n");
    free(ri.errors);
    return 0;
}

int
cmd_status(const struct config *cfg, int argc, char **argv)
{
    bool json = false;
    const char *id = NULL;
    int nids = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            return ctl_usage_error("status: unknown option %s", argv[i]);
        else {
            id = argv[i];
            nids++;
        }
    }
    if (nids > 1 || (id != NULL && *id == '\0'))
        return ctl_usage_error("status takes at most one TICKET");
    redisContext *c = ctl_connect(cfg);
    if (c == NULL)
        return EX_UNAVAILABLE;
    int rc = id ? ticket_status(cfg, c, id, json) : daemon_status(cfg, c, json);
    redisFree(c);
    return rc;
}
