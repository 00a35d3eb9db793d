/*
 * ctl_config.c - `slawatchctl config`: the effective configuration, every
 * key after defaults, as YAML that slawatchd reads back to the same
 * configuration (tests/integration/test_ctl.c checks the round trip).
 * Secrets appear only as the files they are read from (resolved paths);
 * nothing here prints a secret. Needs no Redis.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "slawatch/cal.h"
#include "slawatch/util.h"

/* A double-quoted YAML scalar. */
static void
yq(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* A name (tier, calendar, webhook, escalation: [A-Za-z0-9_.-]) plain when
 * YAML reads it back as the same string, quoted otherwise. */
static void
yname(const char *s)
{
    static const char *const special[] = { "null", "Null", "NULL", "~", "true", "false",
                                           "yes", "no", "on", "off" };
    bool plain = s[0] != '\0' && (isalnum((unsigned char)s[0]) || s[0] == '_');
    for (size_t i = 0; plain && i < ARRAY_LEN(special); i++)
        plain = strcasecmp(s, special[i]) != 0;
    if (plain)
        fputs(s, stdout);
    else
        yq(s);
}

static void
ydur(int64_t ms)
{
    char d[CTL_DUR_BUFLEN];
    fputs(ctl_dur(ms, d), stdout);
}

static void
ypercent(uint32_t bp)
{
    if (bp % 100 == 0)
        printf("%u%%", bp / 100);
    else
        printf("%u.%02u%%", bp / 100, bp % 100);
}

static const char *
level_name(enum log_level l)
{
    switch (l) {
    case LOG_LVL_ERR: return "err";
    case LOG_LVL_WARNING: return "warning";
    case LOG_LVL_NOTICE: return "notice";
    case LOG_LVL_INFO: return "info";
    default: return "debug";
    }
}

static void
print_redis(const struct config *cfg)
{
    const struct cfg_redis *r = &cfg->redis;
    printf("redis:\n");
    if (r->unix_path) {
        printf("  unix: ");
        yq(r->unix_path);
        printf("\n");
    } else {
        printf("  host: ");
        yq(r->host);
        printf("\n  port: %d\n", r->port);
    }
    printf("  db: %d\n", r->db);
    if (r->username) {
        printf("  username: ");
        yq(r->username);
        printf("\n");
    }
    if (r->password_file) {
        printf("  password_file: ");
        yq(r->password_file);
        printf("\n");
    }
    printf("  prefix: ");
    yq(r->prefix);
    printf("\n");
}

static void
print_events(const struct config *cfg)
{
    const struct cfg_events *e = &cfg->events;
    printf("events:\n  group: ");
    yq(e->group);
    printf("\n  consumer: ");
    yq(e->consumer);
    printf("\n  batch: %d\n  max_clock_skew: ", e->batch);
    ydur(e->max_clock_skew_ms);
    printf("\n  allowed_lateness: ");
    ydur(e->allowed_lateness_ms);
    printf("\n  dead_maxlen: %ld\n", e->dead_maxlen);
}

static void
print_tiers(const struct config *cfg)
{
    printf("tiers:\n");
    for (size_t i = 0; i < cfg->ntiers; i++) {
        const struct cfg_tier *t = &cfg->tiers[i];
        printf("  ");
        yname(t->name);
        printf(": { response: ");
        ydur(t->target_ms[METRIC_RESPONSE]);
        if (t->target_ms[METRIC_RESOLUTION] > 0) {
            printf(", resolution: ");
            ydur(t->target_ms[METRIC_RESOLUTION]);
        }
        if (t->target_ms[METRIC_NEXT_REPLY] > 0) {
            printf(", next_reply: ");
            ydur(t->target_ms[METRIC_NEXT_REPLY]);
        }
        printf(", warn: [");
        for (int w = 0; w < t->nwarn; w++) {
            printf("%s", w ? ", " : "");
            ypercent(t->warn_bp[w]);
        }
        printf("], pause: [");
        for (int m = 0, n = 0; m < METRIC_COUNT; m++)
            if (t->pause[m])
                printf("%s%s", n++ ? ", " : "", cfg_metric_name(m));
        printf("]");
        if (t->calendar_name) {
            printf(", calendar: ");
            yname(t->calendar_name);
        }
        printf(" }\n");
    }
}

static void
print_policies(const struct config *cfg)
{
    printf("policies:%s\n", cfg->npolicies ? "" : " []");
    for (size_t i = 0; i < cfg->npolicies; i++) {
        const struct cfg_policy *p = &cfg->policies[i];
        bool any = false;
        printf("  - { ");
        for (int a = 0; a < ATTR_COUNT; a++) {
            if (p->nvalues[a] == 0)
                continue;
            printf("%s%s: [", any ? ", " : "match: { ", cfg_attr_name(a));
            for (size_t v = 0; v < p->nvalues[a]; v++) {
                printf("%s", v ? ", " : "");
                yq(p->values[a][v]);
            }
            printf("]");
            any = true;
        }
        printf("%stier: ", any ? " }, " : "");
        yname(cfg->tiers[p->tier].name);
        printf(" }\n");
    }
}

static void
print_calendars(const struct config *cfg)
{
    if (cfg->ncalendars == 0)
        return;
    printf("calendars:\n");
    for (size_t i = 0; i < cfg->ncalendars; i++) {
        const struct calendar *c = cfg->calendars[i];
        char hours[CAL_DAY_BUFLEN], date[CAL_DATE_BUFLEN];
        printf("  ");
        yname(cal_name(c));
        printf(":\n    timezone: ");
        yq(cal_timezone(c));
        printf("\n    week: { ");
        for (int d = 0; d < 7; d++)
            printf("%s%s: \"%s\"", d ? ", " : "", cal_day_name(d), cal_day_hours(c, d, hours));
        printf(" }\n    holidays: [");
        for (size_t h = 0; h < cal_holiday_count(c); h++)
            printf("%s\"%s\"", h ? ", " : "", cal_holiday(c, h, date));
        printf("]\n");
    }
}

static void
print_escalations(const struct config *cfg)
{
    static const char *const when[] = { "warning", "breach", "objective" };
    if (cfg->nescalations == 0)
        return;
    printf("escalations:\n");
    for (size_t i = 0; i < cfg->nescalations; i++) {
        const struct cfg_escalation *e = &cfg->escalations[i];
        printf("  - { name: ");
        yname(e->name);
        printf(", when: %s, metric: %s", when[e->when], cfg_metric_name(e->metric));
        if (!e->every_tier) {
            printf(", tiers: [");
            for (size_t t = 0, n = 0; t < cfg->ntiers; t++)
                if (e->tiers[t]) {
                    printf("%s", n++ ? ", " : "");
                    yname(cfg->tiers[t].name);
                }
            printf("]");
        }
        printf(", after: ");
        ydur(e->after_ms);
        printf(", notify: [");
        for (size_t n = 0; n < e->nnotify; n++) {
            printf("%s", n ? ", " : "");
            yname(cfg->webhooks[e->notify[n]].name);
        }
        printf("] }\n");
    }
}

/* max_rate as written: per second, or per minute or hour when that is a
 * whole number and per second is not. */
static void
print_rate(double per_s)
{
    double m = per_s * 60, h = per_s * 3600;
    if (fabs(per_s - round(per_s)) < 1e-9)
        printf("%.0f", per_s);
    else if (fabs(m - round(m)) < 1e-6)
        printf("\"%.0f/m\"", round(m));
    else if (fabs(h - round(h)) < 1e-6)
        printf("\"%.0f/h\"", round(h));
    else
        printf("%.9f", per_s);
}

static void
print_webhooks(const struct config *cfg)
{
    if (cfg->nwebhooks == 0)
        return;
    printf("webhooks:\n");
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        const struct cfg_webhook *w = &cfg->webhooks[i];
        static const char *const formats[] = { "json", "alertmanager", "pagerduty", "slack" };
        printf("  ");
        yname(w->name);
        printf(":\n    url: ");
        yq(w->url);
        printf("\n    format: %s\n", formats[w->format]);
        if (w->secret_file) {
            printf("    secret_file: ");
            yq(w->secret_file);
            printf("\n");
        }
        if (w->routing_key_file) {
            printf("    routing_key_file: ");
            yq(w->routing_key_file);
            printf("\n");
        }
        printf("    timeout: ");
        ydur(w->timeout_ms);
        printf("\n    retry: { attempts: %d, backoff: ", w->attempts);
        ydur(w->backoff_ms);
        printf(", max_backoff: ");
        ydur(w->max_backoff_ms);
        printf(" }\n    send_resolved: %s\n", w->send_resolved ? "true" : "false");
        if (w->max_rate > 0) {
            printf("    max_rate: ");
            print_rate(w->max_rate);
            printf("\n");
        }
        printf("    resend: ");
        ydur(w->resend_ms);
        printf("\n");
    }
}

static void
print_compliance(const struct config *cfg)
{
    const struct cfg_compliance *c = &cfg->compliance;
    printf("compliance:\n  windows: [");
    for (size_t w = 0; w < c->nwindows; w++)
        printf("%s%s", w ? ", " : "", c->windows[w].name);
    printf("]\n  by: [");
    for (int a = 0, n = 0; a < ATTR_COUNT; a++)
        if (c->by[a])
            printf("%s%s", n++ ? ", " : "", cfg_attr_name(a));
    printf("]\n  max_values: %d\n  publish_every: ", c->max_values);
    ydur(c->publish_every_ms);
    printf("\n  objective: %.6g\n", c->objective);
}

int
cmd_config(const struct config *cfg, int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return ctl_usage_error("usage: config");
    printf("# The effective configuration of %s (slawatchctl config):\n"
           "# every key with its value after defaults; secrets show only the\n"
           "# files they are read from.\n",
           cfg->path ? cfg->path : "?");
    print_redis(cfg);
    print_events(cfg);
    print_tiers(cfg);
    print_policies(cfg);
    print_calendars(cfg);
    print_escalations(cfg);
    print_webhooks(cfg);
    print_compliance(cfg);
    printf("state:\n  checkpoint_every: ");
    ydur(cfg->state.checkpoint_every_ms);
    printf("\n  forget_resolved_after: ");
    ydur(cfg->state.forget_resolved_after_ms);
    printf("\n  max_attribute_values: %d", cfg->state.max_attribute_values);
    printf("\nlog:\n  level: %s\n", level_name(cfg->log_level));
    return 0;
}
