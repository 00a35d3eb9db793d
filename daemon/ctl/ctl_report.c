/*
 * ctl_report.c - `slawatchctl report [--json]`: the compliance table
 * (tiers and "all" x metrics x windows), open, overdue and at-risk counts
 * and the daemon's counters, as slawatchd last published them. Reads
 * plain keys only; rebuilds nothing.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "slawatch/util.h"

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
int
cmd_report(const struct config *cfg, int argc, char **argv)
{
    static const char *const horizons[] = { "5m", "15m", "1h" };
    static const char *const stats[] = { "events_total", "rejected_total", "lag",
                                         "notifications_pending",
                                         "deliveries_failed_total", "checkpoint_age_ms",
                                         "heartbeat_ms", "reload_failed" };
    int as_json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !as_json)) {
        return ctl_usage_error("usage: report [--json]");
    }
    redisContext *c = ctl_connect(cfg);
    const char *p = cfg->redis.prefix;
    char key[KEY_MAX + 64];
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
        if (as_json)
            continue;
        /* The counters on one line, then the figures that need a word. */
        if (strcmp(stats[i], "checkpoint_age_ms") == 0) {
            if (found && v < 0)
                printf("\ncheckpoint_age_ms -1: no checkpoint yet (the first is written "
                       "state.checkpoint_every after start)");
            else
                printf("\ncheckpoint_age_ms %s", found ? "" : "-");
        } else if (strcmp(stats[i], "heartbeat_ms") == 0 && found) {
            char at[TS_BUFLEN], due[CTL_DUE_BUFLEN];
            printf("\nheartbeat_ms %.0f: last published %s (%s)", v,
                   ts_format((int64_t)v, at), ctl_due_text((int64_t)v - now_wall_ms(), due));
            continue;
        } else if (strcmp(stats[i], "reload_failed") == 0) {
            if (found && v > 0)
                printf("\nreload_failed 1: the last reload was rejected "
                       "(slawatchctl status says why)");
            continue;
        } else {
            printf("%s%s %s", i ? ", " : "", stats[i], found ? "" : "-");
        }
        if (found && !(strcmp(stats[i], "checkpoint_age_ms") == 0 && v < 0))
            printf("%.0f", v);
    }
    json_object_set_new(root, "stats", js);
    if (as_json)
        ctl_print_json(root);
    else {
        printf("\n");
        json_decref(root);
    }
    redisFree(c);
    return 0;
}
