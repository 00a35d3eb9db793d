/*
 * config_diff.c - two configurations compared, in words (see
 * config_diff.h), for the reload log. Pure: no I/O, no allocation; lines
 * are built in a stack buffer and handed to the caller's function. Named
 * things (tiers, calendars, escalations, webhooks) are matched by name, so
 * moving one in the file is no change, except for tiers, where the last one
 * is the default and is reported as such.
 */
#include "slawatch/config_diff.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "slawatch/cal.h"
#include "slawatch/policy.h"
#include "slawatch/util.h"

#define LINE_MAX_LEN 1024
#define VALUE_MAX 512

struct out {
    cfg_diff_fn *fn;
    void *arg;
    size_t lines;
    char line[LINE_MAX_LEN];
    size_t len;
    size_t changes;            /* changes appended to the current line */
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out_printf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    if (o->len + 1 >= sizeof(o->line))
        return;
    va_start(ap, fmt);
    int n = vsnprintf(o->line + o->len, sizeof(o->line) - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n < sizeof(o->line) - o->len ? (size_t)n : sizeof(o->line) - o->len - 1;
}

static void
out_emit(struct out *o)
{
    o->fn(o->arg, o->line);
    o->lines++;
    o->len = 0;
    o->line[0] = '\0';
    o->changes = 0;
}

/* Starts "<what> <name> changed: " once, then one "key a -> b" per call. */
static void
changed(struct out *o, const char *what, const char *name, const char *key, const char *a,
        const char *b)
{
    if (strcmp(a, b) == 0)
        return;
    if (o->changes++ == 0 && *what)
        out_printf(o, "%s %s changed: ", what, name);
    else if (o->changes == 1)
        out_printf(o, "%s changed: ", name);
    else
        out_printf(o, ", ");
    out_printf(o, "%s %s -> %s", key, a, b);
}

static void
end_changed(struct out *o)
{
    if (o->changes)
        out_emit(o);
}

static char *
dur(int64_t ms, char *buf)
{
    if (ms == 0)
        snprintf(buf, VALUE_MAX, "none");
    else
        dur_format(ms, buf, VALUE_MAX);
    return buf;
}

static void
changed_dur(struct out *o, const char *what, const char *name, const char *key, int64_t a,
            int64_t b)
{
    char x[VALUE_MAX], y[VALUE_MAX];
    if (a != b)
        changed(o, what, name, key, dur(a, x), dur(b, y));
}

static void
changed_num(struct out *o, const char *what, const char *name, const char *key, double a,
            double b)
{
    char x[64], y[64];
    if (a == b)
        return;
    snprintf(x, sizeof(x), "%.6g", a);
    snprintf(y, sizeof(y), "%.6g", b);
    changed(o, what, name, key, x, y);
}

/* ---- tiers -------------------------------------------------------------- */

static char *
warn_text(const struct cfg_tier *t, char *buf)
{
    size_t n = 0;
    n += (size_t)snprintf(buf, VALUE_MAX, "[");
    for (int w = 0; w < t->nwarn && n < VALUE_MAX - 16; w++) {
        uint32_t bp = t->warn_bp[w];
        if (bp % 100)
            n += (size_t)snprintf(buf + n, VALUE_MAX - n, "%s%u.%02u%%", w ? ", " : "", bp / 100,
                                  bp % 100);
        else
            n += (size_t)snprintf(buf + n, VALUE_MAX - n, "%s%u%%", w ? ", " : "", bp / 100);
    }
    snprintf(buf + n, VALUE_MAX - n, "]");
    return buf;
}

static char *
pause_text(const struct cfg_tier *t, char *buf)
{
    size_t n = (size_t)snprintf(buf, VALUE_MAX, "[");
    for (int m = 0, k = 0; m < METRIC_COUNT; m++)
        if (t->pause[m])
            n += (size_t)snprintf(buf + n, VALUE_MAX - n, "%s%s", k++ ? ", " : "",
                                  cfg_metric_name(m));
    snprintf(buf + n, VALUE_MAX - n, "]");
    return buf;
}

static void
diff_tiers(struct out *o, const struct config *a, const struct config *b)
{
    char x[VALUE_MAX], y[VALUE_MAX];
    for (size_t i = 0; i < b->ntiers; i++) {
        const struct cfg_tier *nt = &b->tiers[i];
        int j = cfg_tier_index(a, nt->name, strlen(nt->name));
        if (j < 0) {
            out_printf(o, "tier %s added (response %s", nt->name,
                       dur(nt->target_ms[METRIC_RESPONSE], x));
            if (nt->target_ms[METRIC_RESOLUTION])
                out_printf(o, ", resolution %s", dur(nt->target_ms[METRIC_RESOLUTION], x));
            if (nt->target_ms[METRIC_NEXT_REPLY])
                out_printf(o, ", next_reply %s", dur(nt->target_ms[METRIC_NEXT_REPLY], x));
            if (nt->calendar_name)
                out_printf(o, ", calendar %s", nt->calendar_name);
            out_printf(o, ")");
            out_emit(o);
            continue;
        }
        const struct cfg_tier *ot = &a->tiers[j];
        for (int m = 0; m < METRIC_COUNT; m++)
            changed_dur(o, "tier", nt->name, cfg_metric_name(m), ot->target_ms[m],
                        nt->target_ms[m]);
        changed(o, "tier", nt->name, "warn", warn_text(ot, x), warn_text(nt, y));
        changed(o, "tier", nt->name, "pause", pause_text(ot, x), pause_text(nt, y));
        changed(o, "tier", nt->name, "calendar", ot->calendar_name ? ot->calendar_name : "none",
                nt->calendar_name ? nt->calendar_name : "none");
        end_changed(o);
    }
    for (size_t i = 0; i < a->ntiers; i++)
        if (cfg_tier_index(b, a->tiers[i].name, strlen(a->tiers[i].name)) < 0) {
            out_printf(o, "tier %s removed: its tickets take the tier the policies choose now, "
                          "and its gauges are deleted", a->tiers[i].name);
            out_emit(o);
        }
    const char *od = a->tiers[a->ntiers - 1].name, *nd = b->tiers[b->ntiers - 1].name;
    if (strcmp(od, nd) != 0) {
        out_printf(o, "default tier (the last listed) %s -> %s", od, nd);
        out_emit(o);
    }
}

/* ---- policies ----------------------------------------------------------- */

static bool
has_policy(const struct config *c, const char *text, char *buf)
{
    for (size_t i = 0; i < c->npolicies; i++)
        if (strcmp(policy_text(c, i, buf, VALUE_MAX), text) == 0)
            return true;
    return false;
}

static void
diff_policies(struct out *o, const struct config *a, const struct config *b)
{
    char x[VALUE_MAX], y[VALUE_MAX];
    bool same = a->npolicies == b->npolicies, any = false;
    for (size_t i = 0; same && i < a->npolicies; i++)
        same = strcmp(policy_text(a, i, x, sizeof(x)), policy_text(b, i, y, sizeof(y))) == 0;
    if (same)
        return;
    for (size_t i = 0; i < a->npolicies; i++)
        if (!has_policy(b, policy_text(a, i, x, sizeof(x)), y)) {
            out_printf(o, "policy %zu removed: %s", i + 1, x);
            out_emit(o);
            any = true;
        }
    for (size_t i = 0; i < b->npolicies; i++)
        if (!has_policy(a, policy_text(b, i, x, sizeof(x)), y)) {
            out_printf(o, "policy %zu added: %s", i + 1, x);
            out_emit(o);
            any = true;
        }
    if (!any) {
        out_printf(o, "policies reordered (the first match wins)");
        out_emit(o);
    }
}

/* ---- calendars ---------------------------------------------------------- */

static const struct calendar *
find_calendar(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->ncalendars; i++)
        if (strcmp(cal_name(c->calendars[i]), name) == 0)
            return c->calendars[i];
    return NULL;
}

static char *
holidays_text(const struct calendar *c, char *buf)
{
    char d[CAL_DATE_BUFLEN];
    size_t n = (size_t)snprintf(buf, VALUE_MAX, "[");
    for (size_t h = 0; h < cal_holiday_count(c) && n < VALUE_MAX - 16; h++)
        n += (size_t)snprintf(buf + n, VALUE_MAX - n, "%s%s", h ? ", " : "",
                              cal_holiday(c, h, d));
    snprintf(buf + n, VALUE_MAX - n, "%s]", n >= VALUE_MAX - 16 ? ", ..." : "");
    return buf;
}

static void
diff_calendars(struct out *o, const struct config *a, const struct config *b)
{
    char x[VALUE_MAX], y[VALUE_MAX];
    for (size_t i = 0; i < b->ncalendars; i++) {
        const struct calendar *nc = b->calendars[i], *oc = find_calendar(a, cal_name(nc));
        if (oc == NULL) {
            out_printf(o, "calendar %s added (%s)", cal_name(nc), cal_timezone(nc));
            out_emit(o);
            continue;
        }
        changed(o, "calendar", cal_name(nc), "timezone", cal_timezone(oc), cal_timezone(nc));
        for (int d = 0; d < 7; d++) {
            char key[16];
            snprintf(key, sizeof(key), "week.%s", cal_day_name(d));
            changed(o, "calendar", cal_name(nc), key, cal_day_hours(oc, d, x),
                    cal_day_hours(nc, d, y));
        }
        changed(o, "calendar", cal_name(nc), "holidays", holidays_text(oc, x),
                holidays_text(nc, y));
        end_changed(o);
    }
    for (size_t i = 0; i < a->ncalendars; i++)
        if (find_calendar(b, cal_name(a->calendars[i])) == NULL) {
            out_printf(o, "calendar %s removed", cal_name(a->calendars[i]));
            out_emit(o);
        }
}

/* ---- escalations and webhooks -------------------------------------------- */

static const struct cfg_escalation *
find_escalation(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nescalations; i++)
        if (strcmp(c->escalations[i].name, name) == 0)
            return &c->escalations[i];
    return NULL;
}

static char *
esc_tiers(const struct config *c, const struct cfg_escalation *e, char *buf)
{
    if (e->every_tier) {
        snprintf(buf, VALUE_MAX, "every tier");
        return buf;
    }
    size_t n = (size_t)snprintf(buf, VALUE_MAX, "[");
    for (size_t t = 0, k = 0; t < c->ntiers && n < VALUE_MAX - 80; t++)
        if (e->tiers[t])
            n += (size_t)snprintf(buf + n, VALUE_MAX - n, "%s%s", k++ ? ", " : "",
                                  c->tiers[t].name);
    snprintf(buf + n, VALUE_MAX - n, "]");
    return buf;
}

static char *
esc_notify(const struct config *c, const struct cfg_escalation *e, char *buf)
{
    size_t n = (size_t)snprintf(buf, VALUE_MAX, "[");
    for (size_t k = 0; k < e->nnotify && n < VALUE_MAX - 80; k++)
        n += (size_t)snprintf(buf + n, VALUE_MAX - n, "%s%s", k ? ", " : "",
                              c->webhooks[e->notify[k]].name);
    snprintf(buf + n, VALUE_MAX - n, "]");
    return buf;
}

static void
diff_escalations(struct out *o, const struct config *a, const struct config *b)
{
    static const char *const when[] = { "warning", "breach", "objective" };
    char x[VALUE_MAX], y[VALUE_MAX];
    for (size_t i = 0; i < b->nescalations; i++) {
        const struct cfg_escalation *ne = &b->escalations[i], *oe = find_escalation(a, ne->name);
        if (oe == NULL) {
            out_printf(o, "escalation %s added (%s of %s -> %s)", ne->name, when[ne->when],
                       cfg_metric_name(ne->metric), esc_notify(b, ne, x));
            out_emit(o);
            continue;
        }
        changed(o, "escalation", ne->name, "when", when[oe->when], when[ne->when]);
        changed(o, "escalation", ne->name, "metric", cfg_metric_name(oe->metric),
                cfg_metric_name(ne->metric));
        changed(o, "escalation", ne->name, "tiers", esc_tiers(a, oe, x), esc_tiers(b, ne, y));
        changed_dur(o, "escalation", ne->name, "after", oe->after_ms, ne->after_ms);
        changed(o, "escalation", ne->name, "notify", esc_notify(a, oe, x), esc_notify(b, ne, y));
        end_changed(o);
    }
    for (size_t i = 0; i < a->nescalations; i++)
        if (find_escalation(b, a->escalations[i].name) == NULL) {
            out_printf(o, "escalation %s removed", a->escalations[i].name);
            out_emit(o);
        }
}

static const struct cfg_webhook *
find_webhook(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nwebhooks; i++)
        if (strcmp(c->webhooks[i].name, name) == 0)
            return &c->webhooks[i];
    return NULL;
}

/* A secret compared without showing it. */
static const char *
secret_state(const char *s)
{
    return s ? "set" : "none";
}

static void
diff_secret(struct out *o, const char *name, const char *key, const char *a, const char *b)
{
    if (a && b && strcmp(a, b) != 0)
        changed(o, "webhook", name, key, "(old)", "(new)");
    else
        changed(o, "webhook", name, key, secret_state(a), secret_state(b));
}

static void
diff_webhooks(struct out *o, const struct config *a, const struct config *b)
{
    static const char *const formats[] = { "json", "alertmanager", "pagerduty", "slack" };
    char x[64], y[64];
    for (size_t i = 0; i < b->nwebhooks; i++) {
        const struct cfg_webhook *nw = &b->webhooks[i], *ow = find_webhook(a, nw->name);
        if (ow == NULL) {
            out_printf(o, "webhook %s added (%s, %s)", nw->name, formats[nw->format], nw->url);
            out_emit(o);
            continue;
        }
        changed(o, "webhook", nw->name, "url", ow->url, nw->url);
        changed(o, "webhook", nw->name, "format", formats[ow->format], formats[nw->format]);
        diff_secret(o, nw->name, "secret", ow->secret, nw->secret);
        diff_secret(o, nw->name, "routing key", ow->routing_key, nw->routing_key);
        changed_dur(o, "webhook", nw->name, "timeout", ow->timeout_ms, nw->timeout_ms);
        if (ow->attempts != nw->attempts) {
            snprintf(x, sizeof(x), "%d", ow->attempts);
            snprintf(y, sizeof(y), "%d", nw->attempts);
            changed(o, "webhook", nw->name, "retry.attempts", x, y);
        }
        changed_dur(o, "webhook", nw->name, "retry.backoff", ow->backoff_ms, nw->backoff_ms);
        changed_dur(o, "webhook", nw->name, "retry.max_backoff", ow->max_backoff_ms,
                    nw->max_backoff_ms);
        changed(o, "webhook", nw->name, "send_resolved", ow->send_resolved ? "true" : "false",
                nw->send_resolved ? "true" : "false");
        changed_num(o, "webhook", nw->name, "max_rate", ow->max_rate, nw->max_rate);
        changed_dur(o, "webhook", nw->name, "resend", ow->resend_ms, nw->resend_ms);
        end_changed(o);
    }
    for (size_t i = 0; i < a->nwebhooks; i++)
        if (find_webhook(b, a->webhooks[i].name) == NULL) {
            out_printf(o, "webhook %s removed: its waiting notifications are dropped when due",
                       a->webhooks[i].name);
            out_emit(o);
        }
}

/* ---- the plain keys ---------------------------------------------------- */

static char *
windows_text(const struct cfg_compliance *c, char *buf)
{
    size_t n = (size_t)snprintf(buf, VALUE_MAX, "[");
    for (size_t w = 0; w < c->nwindows && n < VALUE_MAX - 40; w++)
        n += (size_t)snprintf(buf + n, VALUE_MAX - n, "%s%s", w ? ", " : "", c->windows[w].name);
    snprintf(buf + n, VALUE_MAX - n, "]");
    return buf;
}

static char *
by_text(const struct cfg_compliance *c, char *buf)
{
    size_t n = (size_t)snprintf(buf, VALUE_MAX, "[");
    for (int a = 0, k = 0; a < ATTR_COUNT; a++)
        if (c->by[a])
            n += (size_t)snprintf(buf + n, VALUE_MAX - n, "%s%s", k++ ? ", " : "",
                                  cfg_attr_name(a));
    snprintf(buf + n, VALUE_MAX - n, "]");
    return buf;
}

static void
diff_events(struct out *o, const struct config *a, const struct config *b)
{
    changed_num(o, "", "events", "batch", a->events.batch, b->events.batch);
    changed_dur(o, "", "events", "max_clock_skew", a->events.max_clock_skew_ms,
                b->events.max_clock_skew_ms);
    changed_dur(o, "", "events", "allowed_lateness", a->events.allowed_lateness_ms,
                b->events.allowed_lateness_ms);
    changed_num(o, "", "events", "dead_maxlen", (double)a->events.dead_maxlen,
                (double)b->events.dead_maxlen);
    end_changed(o);
}

static void
diff_rest(struct out *o, const struct config *a, const struct config *b)
{
    char x[VALUE_MAX], y[VALUE_MAX];
    static const char *const levels[] = { [LOG_LVL_ERR] = "err", [LOG_LVL_WARNING] = "warning",
                                          [LOG_LVL_NOTICE] = "notice", [LOG_LVL_INFO] = "info",
                                          [LOG_LVL_DEBUG] = "debug" };
    const struct cfg_compliance *ca = &a->compliance, *cb = &b->compliance;
    changed(o, "", "compliance", "windows", windows_text(ca, x), windows_text(cb, y));
    changed(o, "", "compliance", "by", by_text(ca, x), by_text(cb, y));
    changed_num(o, "", "compliance", "max_values", ca->max_values, cb->max_values);
    changed_dur(o, "", "compliance", "publish_every", ca->publish_every_ms,
                cb->publish_every_ms);
    changed_num(o, "", "compliance", "objective", ca->objective, cb->objective);
    end_changed(o);
    changed_dur(o, "", "state", "checkpoint_every", a->state.checkpoint_every_ms,
                b->state.checkpoint_every_ms);
    end_changed(o);
    changed(o, "", "log", "level", levels[a->log_level], levels[b->log_level]);
    end_changed(o);
}

size_t
cfg_diff(const struct config *old, const struct config *cur, cfg_diff_fn *fn, void *arg)
{
    struct out o = { .fn = fn, .arg = arg };
    diff_events(&o, old, cur);
    diff_tiers(&o, old, cur);
    diff_policies(&o, old, cur);
    diff_calendars(&o, old, cur);
    diff_escalations(&o, old, cur);
    diff_webhooks(&o, old, cur);
    diff_rest(&o, old, cur);
    return o.lines;
}
