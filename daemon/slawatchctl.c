/*
 * slawatchctl.c - the operator's command line: appends events to the stream
 * and reads what the daemon published, using the daemon's own config file.
 * Synchronous hiredis with time-outs; every failure is a message on stderr
 * and a non-zero exit status, never a hang.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "slawatch/cal.h"
#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/ingest.h"
#include "slawatch/rds_sync.h"
#include "slawatch/state.h"
#include "slawatch/util.h"

#define DEFAULT_CONFIG "/etc/slawatch/slawatch.yaml"
#define EX_USAGE 64
#define EX_UNAVAILABLE 69
#define EX_CONFIG 78

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: slawatchctl [-c FILE] COMMAND [ARGS]\n"
            "  emit TYPE TICKET [field=value ...]   append one event, print its ID\n"
            "  status [--json] [TICKET]             a ticket's tier, clocks, deadlines, outcomes;\n"
            "                                       without one: the leader and the standbys\n"
            "  report [--json]                      print the published gauges\n"
            "options:\n"
            "  -c, --config FILE   configuration (default " DEFAULT_CONFIG ")\n"
            "  -h, --help          this help\n");
}

static redisContext *
connect_redis(const struct config *cfg)
{
    char err[256];
    redisContext *c = rds_connect_sync(&cfg->redis, 2000, 2000, err, sizeof(err));
    if (c == NULL)
        fprintf(stderr, "slawatchctl: %s\n", err);
    return c;
}

static int
cmd_emit(const struct config *cfg, int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "slawatchctl: emit needs TYPE and TICKET\n");
        return EX_USAGE;
    }
    const char *type = argv[1];
    int known = 0;
    for (int t = 0; t < EVT_COUNT; t++)
        if (strcmp(type, event_type_name((enum ev_type)t)) == 0)
            known = 1;
    if (!known) {
        fprintf(stderr, "slawatchctl: unknown event type '%s'\n", type);
        return EX_USAGE;
    }
    size_t n = 7 + 2 * (size_t)(argc - 3);
    const char **av = calloc(n, sizeof(*av));
    size_t *lens = calloc(n, sizeof(*lens));
    char key[512];
    int ac = 0, rc = 0;
    if (av == NULL || lens == NULL) {
        fprintf(stderr, "slawatchctl: out of memory\n");
        free(av);
        free(lens);
        return 1;
    }
    snprintf(key, sizeof(key), "%sevents", cfg->redis.prefix);
    av[ac++] = "XADD";
    av[ac++] = key;
    av[ac++] = "*";
    av[ac++] = "type";
    av[ac++] = type;
    av[ac++] = "ticket";
    av[ac++] = argv[2];
    for (int i = 3; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL || eq == argv[i]) {
            fprintf(stderr, "slawatchctl: '%s' is not field=value\n", argv[i]);
            rc = EX_USAGE;
            goto out;
        }
        av[ac] = argv[i];
        lens[ac++] = (size_t)(eq - argv[i]);
        av[ac++] = eq + 1;
    }
    for (int i = 0; i < ac; i++)
        if (lens[i] == 0)
            lens[i] = strlen(av[i]);
    redisContext *c = connect_redis(cfg);
    if (c == NULL) {
        rc = EX_UNAVAILABLE;
        goto out;
    }
    redisReply *r = redisCommandArgv(c, ac, av, lens);
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "slawatchctl: XADD failed: %s\n",
                r ? (r->str ? r->str : "unexpected reply") : c->errstr);
        rc = EX_UNAVAILABLE;
    } else {
        printf("%s\n", r->str);
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
out:
    free(av);
    free(lens);
    return rc;
}

/* Reads one key as a number; *found is 0 when the key is absent. */
static double
get_num(redisContext *c, const char *key, int *found)
{
    redisReply *r = redisCommand(c, "GET %s", key);
    double v = 0;
    *found = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        v = strtod(r->str, NULL);
        *found = 1;
    }
    if (r)
        freeReplyObject(r);
    return v;
}

static json_t *
num_or_null(double v, int found, int integer)
{
    if (!found)
        return json_null();
    return integer ? json_integer((json_int_t)v) : json_real(v);
}

/* The compliance table (tiers and "all" x metrics x windows), open,
 * overdue and at-risk counts, and the daemon's counters, as published. */
static int
cmd_report(const struct config *cfg, int argc, char **argv)
{
    static const char *const horizons[] = { "5m", "15m", "1h" };
    static const char *const stats[] = { "events_total", "rejected_total", "lag",
                                         "notifications_pending",
                                         "deliveries_failed_total", "checkpoint_age_ms" };
    int as_json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !as_json)) {
        fprintf(stderr, "slawatchctl: usage: report [--json]\n");
        return EX_USAGE;
    }
    redisContext *c = connect_redis(cfg);
    const char *p = cfg->redis.prefix;
    char key[600];
    int found;
    if (c == NULL)
        return EX_UNAVAILABLE;
    json_t *root = json_object(), *tiers = json_array();
    if (!as_json)
        printf("%-10s %-10s %-6s %9s %8s %8s %6s %8s %6s %6s %6s\n", "tier", "metric",
               "window", "ratio", "met", "breached", "open", "overdue", "risk5m",
               "risk15m", "risk1h");
    for (size_t t = 0; t <= cfg->ntiers; t++) {
        const char *name = t < cfg->ntiers ? cfg->tiers[t].name : "all";
        json_t *jt = json_object();
        json_object_set_new(jt, "tier", json_string(name));
        snprintf(key, sizeof(key), "%sopen:%s", p, name);
        double open = get_num(c, key, &found);
        int open_found = found;
        json_object_set_new(jt, "open", num_or_null(open, found, 1));
        for (int m = 0; m < METRIC_COUNT; m++) {
            const char *metric = cfg_metric_name(m);
            json_t *jm = json_object();
            snprintf(key, sizeof(key), "%soverdue:%s:%s", p, name, metric);
            int od_found;
            double overdue = get_num(c, key, &od_found);
            json_object_set_new(jm, "overdue", num_or_null(overdue, od_found, 1));
            double risk[3];
            int risk_found[3];
            json_t *jr = json_object();
            for (int h = 0; h < 3; h++) {
                snprintf(key, sizeof(key), "%sat_risk:%s:%s:%s", p, name, metric, horizons[h]);
                risk[h] = get_num(c, key, &risk_found[h]);
                json_object_set_new(jr, horizons[h], num_or_null(risk[h], risk_found[h], 1));
            }
            json_object_set_new(jm, "at_risk", jr);
            json_t *jw = json_object();
            for (size_t w = 0; w < cfg->compliance.nwindows; w++) {
                const char *win = cfg->compliance.windows[w].name;
                int rf, mf, bf;
                snprintf(key, sizeof(key), "%scompliance:%s:%s:%s", p, name, metric, win);
                double ratio = get_num(c, key, &rf);
                snprintf(key, sizeof(key), "%smet:%s:%s:%s", p, name, metric, win);
                double met = get_num(c, key, &mf);
                snprintf(key, sizeof(key), "%sbreached:%s:%s:%s", p, name, metric, win);
                double br = get_num(c, key, &bf);
                json_t *jx = json_object();
                json_object_set_new(jx, "ratio", num_or_null(ratio, rf, 0));
                json_object_set_new(jx, "met", num_or_null(met, mf, 1));
                json_object_set_new(jx, "breached", num_or_null(br, bf, 1));
                json_object_set_new(jw, win, jx);
                if (as_json)
                    continue;
                char rs[16] = "-", ms[16] = "-", bs[16] = "-", os[16] = "-", ds[16] = "-",
                     r5[16] = "-", r15[16] = "-", r60[16] = "-";
                if (rf)
                    snprintf(rs, sizeof(rs), "%.4f", ratio);
                if (mf)
                    snprintf(ms, sizeof(ms), "%.0f", met);
                if (bf)
                    snprintf(bs, sizeof(bs), "%.0f", br);
                if (w == 0 && m == 0 && open_found)
                    snprintf(os, sizeof(os), "%.0f", open);
                if (w == 0 && od_found)
                    snprintf(ds, sizeof(ds), "%.0f", overdue);
                if (w == 0 && risk_found[0])
                    snprintf(r5, sizeof(r5), "%.0f", risk[0]);
                if (w == 0 && risk_found[1])
                    snprintf(r15, sizeof(r15), "%.0f", risk[1]);
                if (w == 0 && risk_found[2])
                    snprintf(r60, sizeof(r60), "%.0f", risk[2]);
                printf("%-10s %-10s %-6s %9s %8s %8s %6s %8s %6s %6s %6s\n",
                       w == 0 && m == 0 ? name : "", w == 0 ? metric : "", win, rs, ms, bs,
                       os, ds, r5, r15, r60);
            }
            json_object_set_new(jm, "windows", jw);
            json_object_set_new(jt, metric, jm);
        }
        json_array_append_new(tiers, jt);
    }
    json_object_set_new(root, "tiers", tiers);
    json_t *js = json_object();
    for (size_t i = 0; i < ARRAY_LEN(stats); i++) {
        snprintf(key, sizeof(key), "%sstats:%s", p, stats[i]);
        double v = get_num(c, key, &found);
        json_object_set_new(js, stats[i], num_or_null(v, found, 1));
        if (!as_json)
            printf("%s%s %s", i ? ", " : "", stats[i], found ? "" : "-");
        if (!as_json && found)
            printf("%.0f", v);
    }
    json_object_set_new(root, "stats", js);
    if (as_json) {
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            printf("%s\n", text);
        free(text);
    } else {
        printf("\n");
    }
    json_decref(root);
    redisFree(c);
    return 0;
}

/* ---- status ------------------------------------------------------------
 * Rebuilds the daemon's view read-only: its last checkpoint plus the stream
 * entries after it, through the same core code, then the current time. */

static int64_t
ctl_wall(void *arg)
{
    (void)arg;
    return now_wall_ms();
}

static long
replay_after(redisContext *c, const struct config *cfg, struct core *core,
             uint64_t ms, uint64_t seq)
{
    char key[512], start[64];
    long applied = 0;
    snprintf(key, sizeof(key), "%sevents", cfg->redis.prefix);
    snprintf(start, sizeof(start), "(%llu-%llu", (unsigned long long)ms,
             (unsigned long long)seq);
    for (;;) {
        redisReply *r = redisCommand(c, "XRANGE %s %s + COUNT 10000", key, start);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject(r);
            return applied;
        }
        size_t n = r->elements;
        for (size_t i = 0; i < n; i++) {
            redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
                e->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            struct ev_field f[INGEST_MAX_FIELDS];
            size_t nf = 0;
            uint64_t ems, eseq;
            struct sla_event ev;
            const char *reason;
            /* The daemon's own path (ingest.c): the same checks, the same
             * arrival times, the same rule. */
            if (stream_id_parse(e->element[0]->str, e->element[0]->len, &ems, &eseq) == 0 &&
                ingest_entry_fields(e->element[1], f, INGEST_MAX_FIELDS, &nf, &reason) == 0 &&
                event_apply(core, cfg, f, nf, ems, now_wall_ms(), &ev, &reason) == 0)
                applied++;
            snprintf(start, sizeof(start), "(%.*s", (int)e->element[0]->len,
                     e->element[0]->str);
        }
        freeReplyObject(r);
        if (n < 10000)
            return applied;
    }
}

static const char *const state_names[] = { "not started", "running", "paused", "stopped" };
static const char *const outcome_names[] = { "", "met", "breached" };

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

/* status with no ticket: who leads and who stands by (SPEC section 7). */
static int
cmd_status_instances(const struct config *cfg, int json)
{
    redisContext *c = connect_redis(cfg);
    if (c == NULL)
        return EX_UNAVAILABLE;
    const char *p = cfg->redis.prefix;
    redisReply *leader = redisCommand(c, "GET %sleader", p);
    redisReply *pttl = redisCommand(c, "PTTL %sleader", p);
    redisReply *epoch = redisCommand(c, "GET %sleader:epoch", p);
    redisReply *inst = redisCommand(c, "ZRANGEBYSCORE %sinstances %lld +inf WITHSCORES", p,
                                    (long long)now_wall_ms());
    int rc = 0;
    if (leader == NULL || pttl == NULL || epoch == NULL || inst == NULL ||
        inst->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "slawatchctl: cannot read %sleader and %sinstances\n", p, p);
        rc = EX_UNAVAILABLE;
        goto out;
    }
    const char *name = leader->type == REDIS_REPLY_STRING ? leader->str : NULL;
    json_t *o = json_object();
    json_object_set_new(o, "leader", name ? json_string(name) : json_null());
    json_object_set_new(o, "token", epoch->type == REDIS_REPLY_STRING
                                        ? json_integer(atoll(epoch->str)) : json_null());
    json_object_set_new(o, "lease_left_ms",
                        name && pttl->type == REDIS_REPLY_INTEGER ? json_integer(pttl->integer)
                                                                  : json_null());
    json_t *standbys = json_array();
    for (size_t i = 0; i + 1 < inst->elements; i += 2)
        if (inst->element[i]->type == REDIS_REPLY_STRING &&
            (name == NULL || strcmp(inst->element[i]->str, name) != 0))
            json_array_append_new(standbys, json_string(inst->element[i]->str));
    json_object_set_new(o, "standbys", standbys);
    if (json) {
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            printf("%s\n", text);
        free(text);
    } else {
        if (name)
            printf("leader      %s (token %s, lease %lld ms left)\n", name,
                   epoch->type == REDIS_REPLY_STRING ? epoch->str : "?",
                   pttl->type == REDIS_REPLY_INTEGER ? pttl->integer : -1LL);
        else
            printf("leader      none (no instance holds %sleader)\n", p);
        for (size_t i = 0; i < json_array_size(standbys); i++)
            printf("standby     %s\n", json_string_value(json_array_get(standbys, i)));
        if (json_array_size(standbys) == 0)
            printf("standby     none\n");
    }
    json_decref(o);
out:
    if (leader)
        freeReplyObject(leader);
    if (pttl)
        freeReplyObject(pttl);
    if (epoch)
        freeReplyObject(epoch);
    if (inst)
        freeReplyObject(inst);
    redisFree(c);
    return rc;
}

static int
cmd_status(const struct config *cfg, int argc, char **argv)
{
    int json = 0;
    const char *id = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (id == NULL)
            id = argv[i];
        else
            id = "";
    }
    if (id == NULL)
        return cmd_status_instances(cfg, json);
    if (*id == '\0') {
        fprintf(stderr, "slawatchctl: status takes at most one TICKET\n");
        return EX_USAGE;
    }
    redisContext *c = connect_redis(cfg);
    if (c == NULL)
        return EX_UNAVAILABLE;
    struct core *core = core_new(cfg, ctl_wall, NULL, NULL);
    struct state_meta meta = { 0 };
    char key[512], err[256];
    int rc = 0;
    long restored = 0;
    snprintf(key, sizeof(key), "%sstate", cfg->redis.prefix);
    redisReply *r = redisCommand(c, "GET %s", key);
    if (r == NULL || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING)) {
        fprintf(stderr, "slawatchctl: GET %s failed\n", key);
        rc = EX_UNAVAILABLE;
        goto out;
    }
    if (r->type == REDIS_REPLY_STRING) {
        restored = state_decode(core, r->str, r->len, &meta, NULL, NULL, err, sizeof(err));
        if (restored < 0) {
            fprintf(stderr, "slawatchctl: %s: %s\n", key, err);
            rc = 1;
            goto out;
        }
    }
    long replayed = replay_after(c, cfg, core, meta.last_ms, meta.last_seq);
    core_advance(core, now_wall_ms());
    const struct ticket *t = core_find(core, id, strlen(id));
    if (t == NULL) {
        fprintf(stderr, "slawatchctl: ticket %s is not known (never opened, or closed "
                        "or deleted)\n", id);
        rc = 1;
        goto out;
    }
    const struct cfg_tier *tier = &cfg->tiers[cfg_tier_index(cfg, core_tier_name(core, t),
                                                             strlen(core_tier_name(core, t)))];
    json_t *o = json_object();
    json_object_set_new(o, "ticket", json_string(t->id));
    json_object_set_new(o, "tier", json_string(tier->name));
    json_object_set_new(o, "calendar", tier->calendar
                                           ? json_string(cal_name(tier->calendar))
                                           : json_null());
    json_object_set_new(o, "timezone", tier->calendar
                                           ? json_string(cal_timezone(tier->calendar))
                                           : json_string("UTC"));
    json_object_set_new(o, "open", json_boolean(!t->resolved));
    json_object_set_new(o, "paused", json_boolean(t->paused));
    json_t *attrs = json_object();
    for (int a = 0; a < ATTR_COUNT; a++) {
        const char *v = core_ticket_attr(core, t, a);
        json_object_set_new(attrs, cfg_attr_name(a), v ? json_string(v) : json_null());
    }
    json_object_set_new(o, "attributes", attrs);
    for (int m = 0; m < METRIC_COUNT; m++)
        json_object_set_new(o, cfg_metric_name(m), clock_json(tier, &t->clk[m]));
    json_object_set_new(o, "checkpoint_age_ms",
                        meta.saved_ms ? json_integer(now_wall_ms() - meta.saved_ms) : json_null());
    json_object_set_new(o, "events_replayed", json_integer(replayed));
    if (json) {
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            printf("%s\n", text);
        free(text);
    } else {
        printf("ticket      %s\n", t->id);
        printf("tier        %s%s%s%s\n", tier->name, tier->calendar ? " (calendar " : "",
               tier->calendar ? cal_name(tier->calendar) : "", tier->calendar ? ")" : "");
        printf("state       %s%s\n", t->resolved ? "resolved" : "open",
               t->paused ? ", paused" : "");
        printf("attributes ");
        for (int a = 0; a < ATTR_COUNT; a++) {
            const char *v = core_ticket_attr(core, t, a);
            if (v)
                printf(" %s=%s", cfg_attr_name(a), v);
        }
        printf("\n");
        for (int m = 0; m < METRIC_COUNT; m++) {
            const struct sla_clock *k = &t->clk[m];
            char a[TS_BUFLEN], b[TS_BUFLEN], loc[CAL_LOCAL_BUFLEN];
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
        if (meta.saved_ms)
            printf("as of       checkpoint %lld ms old + %ld events after it\n",
                   (long long)(now_wall_ms() - meta.saved_ms), replayed);
        else
            printf("as of       %ld events (no checkpoint yet)\n", replayed);
    }
    json_decref(o);
    (void)restored;
out:
    if (r)
        freeReplyObject(r);
    core_free(core);
    redisFree(c);
    return rc;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = DEFAULT_CONFIG;
    int ch;
    while ((ch = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EX_USAGE;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        usage(stderr);
        return EX_USAGE;
    }
    struct config *cfg = cfg_load(path, stderr);
    if (cfg == NULL)
        return EX_CONFIG;
    int rc;
    if (strcmp(argv[0], "emit") == 0)
        rc = cmd_emit(cfg, argc, argv);
    else if (strcmp(argv[0], "status") == 0)
        rc = cmd_status(cfg, argc, argv);
    else if (strcmp(argv[0], "report") == 0)
        rc = cmd_report(cfg, argc, argv);
    else {
        fprintf(stderr, "slawatchctl: unknown command '%s'\n", argv[0]);
        usage(stderr);
        rc = EX_USAGE;
    }
    cfg_free(cfg);
    return rc;
}
