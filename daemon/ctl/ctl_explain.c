/*
 * ctl_explain.c - `slawatchctl explain field=value ...`: what the daemon
 * would do with a ticket opened with these fields, from the config alone:
 * the checks of an event (event_parse), the tier and the rule that chose
 * it (policy_choose, the core's rule), values no policy names (what
 * stats:unmatched:<attr> counts), the targets and calendar, the deadlines
 * if it were opened now (or at ts=), and the escalations that would
 * notify whom. Emits nothing and needs no Redis.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "slawatch/cal.h"
#include "slawatch/policy.h"
#include "slawatch/util.h"

/* The fields an event may carry (SPEC section 3); others are ignored. */
static const char *const known_fields[] = { "type", "ticket", "ts", "tier", "priority",
                                            "channel", "queue", "agent", "customer",
                                            "score" };

static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), prev[40], cur[40];
    if (la >= 40 || lb >= 40)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(prev));
    }
    return prev[lb];
}

/* A known field the name is probably a typo of, or NULL. */
static const char *
did_you_mean(const char *name, size_t len)
{
    char n[40];
    if (len >= sizeof(n))
        return NULL;
    memcpy(n, name, len);
    n[len] = '\0';
    const char *best = NULL;
    size_t bestd = 3;
    for (size_t i = 0; i < ARRAY_LEN(known_fields); i++) {
        size_t d = edit_distance(n, known_fields[i]);
        /* "prio" for "priority": a prefix counts as close. */
        if (len >= 3 && strncmp(known_fields[i], n, len) == 0)
            d = 1;
        if (d < bestd) {
            bestd = d;
            best = known_fields[i];
        }
    }
    return best;
}

static bool
is_known_field(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(known_fields); i++)
        if (strlen(known_fields[i]) == len && memcmp(known_fields[i], name, len) == 0)
            return true;
    return false;
}

/* The values policies name for an attribute, "urgent, p1, high". */
static void
named_values(const struct config *cfg, int attr, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->npolicies; i++)
        for (size_t v = 0; v < cfg->policies[i].nvalues[attr]; v++) {
            int w = snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
                             cfg->policies[i].values[attr][v]);
            if (w < 0 || (size_t)w >= len - n)
                return;
            n += (size_t)w;
        }
}

static void
print_calendar(const struct cfg_tier *tier)
{
    const struct calendar *c = tier->calendar;
    char h[CAL_DAY_BUFLEN];
    if (c == NULL) {
        printf("calendar    none: targets count every hour (24x7, UTC)\n");
        return;
    }
    printf("calendar    %s (%s): targets count open hours only;", cal_name(c), cal_timezone(c));
    for (int d = 0; d < 7; d++)
        printf(" %s %s%s", cal_day_name(d), cal_day_hours(c, d, h), d < 6 ? "," : "");
    printf("; %zu holiday%s\n", cal_holiday_count(c), cal_holiday_count(c) == 1 ? "" : "s");
}

static void
print_targets(const struct cfg_tier *tier)
{
    char d[CTL_DUR_BUFLEN];
    printf("targets     response %s", ctl_dur(tier->target_ms[METRIC_RESPONSE], d));
    if (tier->target_ms[METRIC_RESOLUTION] > 0)
        printf(", resolution %s", ctl_dur(tier->target_ms[METRIC_RESOLUTION], d));
    else
        printf(", no resolution clock");
    if (tier->target_ms[METRIC_NEXT_REPLY] > 0)
        printf(", next reply %s", ctl_dur(tier->target_ms[METRIC_NEXT_REPLY], d));
    if (tier->nwarn) {
        printf("; warnings at");
        for (int w = 0; w < tier->nwarn; w++) {
            uint32_t bp = tier->warn_bp[w];
            if (bp % 100)
                printf("%s %u.%02u%%", w ? "," : "", bp / 100, bp % 100);
            else
                printf("%s %u%%", w ? "," : "", bp / 100);
        }
    } else
        printf("; no warnings");
    printf("; paused:");
    int np = 0;
    for (int m = 0; m < METRIC_COUNT; m++)
        if (tier->pause[m] && tier->target_ms[m] > 0)
            printf("%s %s", np++ ? "," : "", cfg_metric_name(m));
    printf("%s\n", np ? "" : " nothing");
}

static void
print_escalations(const struct config *cfg, int t)
{
    static const char *const when[] = { "warning", "breach", "objective" };
    static const char *const formats[] = { "json", "alertmanager", "pagerduty", "slack" };
    const struct cfg_tier *tier = &cfg->tiers[t];
    int n = 0;
    for (size_t i = 0; i < cfg->nescalations; i++) {
        const struct cfg_escalation *e = &cfg->escalations[i];
        char d[CTL_DUR_BUFLEN];
        if (!e->every_tier && !e->tiers[t])
            continue;
        if (e->metric >= 0 && tier->target_ms[e->metric] == 0)
            continue;
        if (e->when == ESC_WARNING && tier->nwarn == 0)
            continue;
        printf("%s %s: %s%s of %s", n++ ? "           " : "escalations", e->name,
               when[e->when], e->when == ESC_OBJECTIVE ? " (the tier's compliance)" : "",
               e->metric < 0 ? "any metric" : cfg_metric_name(e->metric));
        if (e->after_ms > 0)
            printf(", %s after", ctl_dur(e->after_ms, d));
        printf(" ->");
        for (size_t k = 0; k < e->nnotify; k++) {
            const struct cfg_webhook *w = &cfg->webhooks[e->notify[k]];
            printf("%s %s (%s)", k ? "," : "", w->name, formats[w->format]);
        }
        printf("\n");
    }
    if (n == 0)
        printf("escalations none: no escalation covers this tier\n");
}

int
cmd_explain(const struct config *cfg, int argc, char **argv)
{
    struct ev_field f[66]; /* the daemon takes at most 64 */
    size_t nf = 0;
    bool has_ticket = false;
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL || eq == argv[i])
            return ctl_usage_error("explain: '%s' is not field=value", argv[i]);
        if (nf + 2 >= ARRAY_LEN(f))
            return ctl_usage_error("explain: too many fields");
        f[nf++] = (struct ev_field){ argv[i], (size_t)(eq - argv[i]), eq + 1, strlen(eq + 1) };
        if (f[nf - 1].name_len == 6 && memcmp(argv[i], "ticket", 6) == 0)
            has_ticket = true;
        if (f[nf - 1].name_len == 4 && memcmp(argv[i], "type", 4) == 0)
            return ctl_usage_error("explain: type is always opened here; leave it out");
    }
    size_t nuser = nf;
    f[nf++] = (struct ev_field){ "type", 4, "opened", 6 };
    if (!has_ticket)
        f[nf++] = (struct ev_field){ "ticket", 6, "(explain)", 9 };

    /* The checks the daemon makes before an event reaches the core. */
    struct sla_event ev;
    const char *reason;
    int64_t now = now_wall_ms();
    if (event_parse(&ev, f, nf, (uint64_t)now, now, cfg->events.max_clock_skew_ms, &reason) <
        0) {
        printf("rejected    the daemon would dead-letter this event: %s\n", reason);
        if (strcmp(reason, "bad ts") == 0)
            printf("            (a ts is milliseconds since the epoch or RFC 3339; a number "
                   "below 10^11 is seconds by mistake)\n");
        return 1;
    }

    printf("fields     ");
    for (size_t i = 0; i < nuser; i++)
        printf(" %.*s=%.*s", (int)f[i].name_len, f[i].name, (int)f[i].value_len, f[i].value);
    printf("%s\n", nuser == 0 ? " (none)" : "");
    for (size_t i = 0; i < nuser; i++) {
        if (is_known_field(f[i].name, f[i].name_len))
            continue;
        const char *dym = did_you_mean(f[i].name, f[i].name_len);
        printf("  ignored   %.*s: not an event field, so it is not an attribute%s%s%s\n",
               (int)f[i].name_len, f[i].name, dym ? "; did you mean " : "", dym ? dym : "",
               dym ? "?" : "");
    }

    const char *attr[ATTR_COUNT];
    char vals[ATTR_COUNT][ATTR_VALUE_MAX + 1], tiername[ATTR_VALUE_MAX + 1];
    for (int a = 0; a < ATTR_COUNT; a++) {
        attr[a] = NULL;
        if (ev.attr[a] && ev.attr_len[a]) {
            snprintf(vals[a], sizeof(vals[a]), "%.*s", (int)ev.attr_len[a], ev.attr[a]);
            attr[a] = vals[a];
        }
    }
    int policy;
    int t = policy_choose(cfg, attr, ev.tier, ev.tier_len, &policy);
    for (int a = 0; a < ATTR_COUNT; a++) {
        char named[512];
        if (attr[a] == NULL || !policy_constrains(cfg, a) ||
            policy_names_value(cfg, a, attr[a], strlen(attr[a])))
            continue;
        named_values(cfg, a, named, sizeof(named));
        printf("  unmatched %s=%s: no policy names this value (they name %s); counted in "
               "stats:unmatched:%s\n", cfg_attr_name(a), attr[a], named, cfg_attr_name(a));
    }
    snprintf(tiername, sizeof(tiername), "%.*s", (int)ev.tier_len, ev.tier ? ev.tier : "");
    if (ev.tier_len && policy != POLICY_EXPLICIT)
        printf("  unmatched tier=%s: no such tier, so the policies choose; counted in "
               "stats:unmatched:tier\n", tiername);

    const struct cfg_tier *tier = &cfg->tiers[t];
    char ptext[1024];
    if (policy == POLICY_EXPLICIT)
        printf("tier        %s, named by the event's tier field\n", tier->name);
    else if (policy == POLICY_DEFAULT)
        printf("tier        %s, the default: no policy matched (the last tier listed)\n",
               tier->name);
    else
        printf("tier        %s, by policy %d of %zu: %s\n", tier->name, policy + 1,
               cfg->npolicies, policy_text(cfg, (size_t)policy, ptext, sizeof(ptext)));
    print_targets(tier);
    print_calendar(tier);
    char a[TS_BUFLEN], loc[CAL_LOCAL_BUFLEN];
    printf("if opened   %s%s:", ts_format(ev.ts_ms, a), ev.ts_ms == now ? " (now)" : "");
    for (int m = 0, n = 0; m < METRIC_COUNT; m++) {
        if (tier->target_ms[m] == 0)
            continue;
        int64_t due = cal_add(tier->calendar, ev.ts_ms, tier->target_ms[m]);
        printf("%s %s due %s", n++ ? "," : "", cfg_metric_name(m),
               cal_format_local(tier->calendar, due, loc));
    }
    printf("\n");
    print_escalations(cfg, t);
    return 0;
}
