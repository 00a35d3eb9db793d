/*
 * config_rules.c - the sections of the config that name each other:
 * calendars (built through cal.h), tiers (which may name a calendar),
 * policies (which name a tier), webhooks (with their secret files) and
 * escalations (which name tiers and webhooks; the keys naming objectives
 * and windows are config_objectives.c's). Called by config.c in that
 * order, so each name is defined before it is looked up.
 *
 * Fills the struct config being loaded and reports through cfg_err; must
 * not keep any state between loads.
 */
#define _GNU_SOURCE
#include "config_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "slawatch/cal.h"

static const char *const metric_or_any[] = {"response", "resolution", "next_reply",
                                             "any"};
static const char *const when_names[] = {"warning", "breach", "objective"};
static const char *const format_names[] = {"json", "alertmanager", "pagerduty",
                                           "slack"};

static int
webhook_index(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nwebhooks; i++)
        if (cfg->webhooks[i].name && strcmp(cfg->webhooks[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- calendars --------------------------------------------------------- */

static void
parse_week(struct cfg_load *ld, struct calendar *cal, const yaml_node_t *week,
           const char *path)
{
    struct cfg_ctx *ctx = ld->ctx;
    char err[256], shown[CFG_SHOW_MAX];

    if (cfg_check_map(ctx, week, path, NULL) < 0)
        return;
    size_t n = cfg_map_len(week);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = cfg_map_key(ctx, week, i);
        const yaml_node_t *v = cfg_map_value(ctx, week, i);
        const char *days, *hours;
        if (k == NULL || v == NULL)
            return;
        if (k->type != YAML_SCALAR_NODE)
            continue; /* reported by cfg_check_map */
        if (cfg_get_text(ctx, k, path, &days) < 0)
            continue;
        cfg_show(k, shown, sizeof(shown));
        if (cfg_is_null(v)) {
            cfg_err(ctx, v,
                    "%s: %s: expected hours such as \"09:00-18:00\" "
                    "or closed",
                    path, shown);
            continue;
        }
        if (cfg_get_text(ctx, v, path, &hours) < 0 || cal == NULL)
            continue;
        if (cal_set_week(cal, days, hours, err, sizeof(err)) < 0)
            cfg_err(ctx, v, "%s: %s: %s", path, shown, err);
    }
}

static void
parse_holidays(struct cfg_load *ld, struct calendar *cal,
               const yaml_node_t *list, const char *path)
{
    struct cfg_ctx *ctx = ld->ctx;
    char err[256];

    if (cfg_check_seq(ctx, list, path) < 0)
        return;
    size_t n = cfg_seq_len(list);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, list, i);
        const char *date;
        if (item == NULL)
            return;
        if (cfg_get_text(ctx, item, path, &date) < 0 || cal == NULL)
            continue;
        if (cal_add_holiday(cal, date, err, sizeof(err)) < 0)
            cfg_err(ctx, item, "%s: %s", path, err);
    }
}

/* Builds one calendar through cal.h. With a bad time zone the rest is
 * still checked against a UTC stand-in so that one run reports it all. */
static struct calendar *
parse_calendar(struct cfg_load *ld, const yaml_node_t *key,
               const yaml_node_t *val)
{
    struct cfg_ctx *ctx = ld->ctx;
    char path[CFG_PATH_MAX], sub[CFG_PATH_MAX], err[256];
    struct calendar *cal = NULL;
    bool ok = cfg_check_name(ctx, key, "calendars");
    const char *name = cfg_name_or_placeholder(key), *tz;

    snprintf(path, sizeof(path), "calendars.%s", name);
    if (cfg_check_map(ctx, val, path, "calendars.*") < 0)
        return NULL;
    const yaml_node_t *tzn = cfg_get_set(ctx, val, "timezone");
    if (tzn == NULL) {
        cfg_err(ctx, key,
                "%s: timezone is required (e.g. Europe/Berlin, "
                "UTC)",
                path);
        ok = false;
    } else if (cfg_get_text(ctx, tzn,
                            cfg_path(sub, sizeof(sub), path, "timezone"),
                            &tz) < 0) {
        ok = false;
    } else if ((cal = cal_create(name, tz, err, sizeof(err))) == NULL) {
        cfg_err(ctx, tzn, "%s: %s", sub, err);
        ok = false;
    }
    if (cal == NULL &&
        (cal = cal_create(name, "UTC", err, sizeof(err))) == NULL) {
        /* Out of memory or no zone database at all: nothing to check. */
        cfg_err(ctx, key, "%s: %s", path, err);
        return NULL;
    }
    const yaml_node_t *week = cfg_get_set(ctx, val, "week");
    if (week == NULL) {
        /* Only holidays: open around the clock on every other day. */
        if (cal_set_week(cal, "mon-sun", "00:00-24:00", err, sizeof(err)) < 0)
            cfg_err(ctx, key, "%s: %s", path, err);
    } else {
        parse_week(ld, cal, week, cfg_path(sub, sizeof(sub), path, "week"));
    }
    parse_holidays(ld, cal, cfg_get_set(ctx, val, "holidays"),
                   cfg_path(sub, sizeof(sub), path, "holidays"));
    if (ok && cal_finish(cal, err, sizeof(err)) < 0)
        cfg_err(ctx, key, "%s: %s", path, err);
    if (!ok) {
        cal_free(cal);
        return NULL;
    }
    return cal;
}

void
cfg_parse_calendars(struct cfg_load *ld, const yaml_node_t *sec)
{
    struct cfg_ctx *ctx = ld->ctx;
    struct config *cfg = ld->cfg;

    if (sec == NULL)
        return;
    if (cfg_check_map(ctx, sec, "calendars", NULL) < 0) {
        ld->calendars_bad = true;
        return;
    }
    ld->calendars = sec;
    size_t n = cfg_map_len(sec);
    if (n == 0)
        return;
    cfg->calendars = calloc(n, sizeof(*cfg->calendars));
    if (cfg->calendars == NULL) {
        cfg_oom(ctx);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = cfg_map_key(ctx, sec, i);
        const yaml_node_t *v = cfg_map_value(ctx, sec, i);
        if (k == NULL || v == NULL)
            return;
        if (k->type != YAML_SCALAR_NODE)
            continue;
        struct calendar *cal = parse_calendar(ld, k, v);
        if (cal != NULL)
            cfg->calendars[cfg->ncalendars++] = cal;
    }
}

/* ---- tiers ------------------------------------------------------------- */

static void
add_warn(struct cfg_ctx *ctx, struct cfg_tier *tier, uint32_t bp,
         const yaml_node_t *node, const char *path, bool *full)
{
    int i = 0;
    while (i < tier->nwarn && tier->warn_bp[i] < bp)
        i++;
    if (i < tier->nwarn && tier->warn_bp[i] == bp)
        return; /* duplicates are harmless: keep one */
    if (tier->nwarn == CFG_MAX_WARN) {
        if (!*full)
            cfg_err(ctx, node, "%s: at most %d different percentages", path,
                    CFG_MAX_WARN);
        *full = true;
        return;
    }
    memmove(&tier->warn_bp[i + 1], &tier->warn_bp[i],
            (size_t)(tier->nwarn - i) * sizeof(tier->warn_bp[0]));
    tier->warn_bp[i] = bp;
    tier->nwarn++;
}

static void
parse_tier_warn(struct cfg_ctx *ctx, struct cfg_tier *tier,
                const yaml_node_t *list, const char *path)
{
    bool full = false;
    if (cfg_check_seq(ctx, list, path) < 0)
        return;
    size_t n = cfg_seq_len(list);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, list, i);
        uint32_t bp;
        if (item == NULL)
            return;
        if (cfg_get_percent(ctx, item, path, &bp) == 0)
            add_warn(ctx, tier, bp, item, path, &full);
    }
}

static void
parse_tier_pause(struct cfg_ctx *ctx, struct cfg_tier *tier,
                 const yaml_node_t *list, const char *path)
{
    char shown[CFG_SHOW_MAX];
    int m;
    if (cfg_check_seq(ctx, list, path) < 0)
        return;
    for (m = 0; m < METRIC_COUNT; m++)
        tier->pause[m] = false;
    size_t n = cfg_seq_len(list);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, list, i);
        if (item == NULL)
            return;
        if (cfg_get_enum(ctx, item, path, cfg_metric_names, METRIC_COUNT, &m) <
            0)
            continue;
        if (tier->pause[m])
            cfg_err(ctx, item, "%s: %s is listed twice", path,
                    cfg_show(item, shown, sizeof(shown)));
        tier->pause[m] = true;
    }
}

static void
parse_tier_calendar(struct cfg_load *ld, struct cfg_tier *tier,
                    const yaml_node_t *v, const char *path)
{
    struct cfg_ctx *ctx = ld->ctx;
    char shown[CFG_SHOW_MAX];

    if (cfg_get_str(ctx, v, path, &tier->calendar_name) < 0)
        return;
    for (size_t i = 0; i < ld->cfg->ncalendars; i++) {
        if (strcmp(cal_name(ld->cfg->calendars[i]), tier->calendar_name) == 0) {
            tier->calendar = ld->cfg->calendars[i];
            return;
        }
    }
    /* Defined but broken calendars were reported where they are. */
    if (!ld->calendars_bad &&
        cfg_map_get(ctx, ld->calendars, tier->calendar_name) == NULL)
        cfg_err(ctx, v, "%s: unknown calendar %s", path,
                cfg_show(v, shown, sizeof(shown)));
}

/* On a business-hours tier a target counts open hours only, so "3d" is 72
 * open hours: with 9 open hours a day, 8 working days. That surprises
 * people; say so at -t and at every load, with what to write instead. */
static void
warn_calendar_days(struct cfg_ctx *ctx, const yaml_node_t *val, const char *path,
                   const struct cfg_tier *tier)
{
    int days = cal_open_days(tier->calendar);
    int64_t per_day = days > 0 ? cal_week_open_ms(tier->calendar) / days : 0;
    if (per_day <= 0 || per_day >= 24 * 3600000LL)
        return; /* open around the clock: a day is a day */
    for (int m = 0; m < METRIC_COUNT; m++) {
        const yaml_node_t *v = cfg_get_set(ctx, val, cfg_metric_name(m));
        if (v == NULL || v->type != YAML_SCALAR_NODE || tier->target_ms[m] <= 0 ||
            memchr(CFG_TEXT(v), 'd', CFG_LEN(v)) == NULL)
            continue;
        int64_t hours = tier->target_ms[m] / 3600000LL;
        double per_day_h = (double)per_day / 3600000.0;
        cfg_warn(ctx, v,
                 "%s.%s: %.*s on business-hours calendar %s counts %lld open hours, "
                 "about %.0f working days of %.3g h; write %lldh to keep it, or "
                 "the open hours you mean",
                 path, cfg_metric_name(m), (int)CFG_LEN(v), CFG_TEXT(v),
                 tier->calendar_name, (long long)hours,
                 (double)tier->target_ms[m] / (double)per_day, per_day_h,
                 (long long)hours);
    }
}

static void
parse_tier(struct cfg_load *ld, const yaml_node_t *key, const yaml_node_t *val,
           struct cfg_tier *tier)
{
    struct cfg_ctx *ctx = ld->ctx;
    char path[CFG_PATH_MAX], sub[CFG_PATH_MAX];
    const yaml_node_t *v;

    tier->pause[METRIC_RESOLUTION] = true;
    if (cfg_check_name(ctx, key, "tiers") && cfg_is_scalar(key, "all"))
        cfg_err(ctx, key,
                "tiers: the name 'all' is reserved (compliance "
                "keys use it for every tier together)");
    if ((tier->name = strdup(CFG_TEXT(key))) == NULL) {
        cfg_oom(ctx);
        return;
    }
    snprintf(path, sizeof(path), "tiers.%s", cfg_name_or_placeholder(key));
    if (cfg_check_map(ctx, val, path, "tiers.*") < 0)
        return;
    if (cfg_get_set(ctx, val, "response") == NULL)
        cfg_err(ctx, key, "%s: response is required", path);
    cfg_opt_dur(ctx, val, path, "response", 1,
                &tier->target_ms[METRIC_RESPONSE]);
    cfg_opt_dur(ctx, val, path, "resolution", 1,
                &tier->target_ms[METRIC_RESOLUTION]);
    cfg_opt_dur(ctx, val, path, "next_reply", 1,
                &tier->target_ms[METRIC_NEXT_REPLY]);
    if ((v = cfg_get_set(ctx, val, "warn")) != NULL)
        parse_tier_warn(ctx, tier, v, cfg_path(sub, sizeof(sub), path, "warn"));
    if ((v = cfg_get_set(ctx, val, "pause")) != NULL)
        parse_tier_pause(ctx, tier, v,
                         cfg_path(sub, sizeof(sub), path, "pause"));
    if ((v = cfg_get_set(ctx, val, "calendar")) != NULL)
        parse_tier_calendar(ld, tier, v,
                            cfg_path(sub, sizeof(sub), path, "calendar"));
    if (tier->calendar != NULL)
        warn_calendar_days(ctx, val, path, tier);
}

/* SPEC's four tiers, used when the file has no tiers section. */
static int
default_tiers(struct config *cfg)
{
    static const struct {
        const char *name;
        int64_t response_ms, resolution_ms;
        uint32_t warn_bp;
    } defs[] = {
        {"instant", 5 * 60000LL, 4 * 3600000LL, 8000},
        {"1h", 3600000LL, 24 * 3600000LL, 8000},
        {"4h", 4 * 3600000LL, 3 * 86400000LL, 0},
        {"24h", 24 * 3600000LL, 5 * 86400000LL, 0},
    };
    cfg->tiers = calloc(ARRAY_LEN(defs), sizeof(*cfg->tiers));
    if (cfg->tiers == NULL)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(defs); i++) {
        struct cfg_tier *t = &cfg->tiers[cfg->ntiers++];
        if ((t->name = strdup(defs[i].name)) == NULL)
            return -1;
        t->target_ms[METRIC_RESPONSE] = defs[i].response_ms;
        t->target_ms[METRIC_RESOLUTION] = defs[i].resolution_ms;
        t->pause[METRIC_RESOLUTION] = true;
        if (defs[i].warn_bp != 0)
            t->warn_bp[t->nwarn++] = defs[i].warn_bp;
    }
    return 0;
}

void
cfg_parse_tiers(struct cfg_load *ld, const yaml_node_t *sec)
{
    struct cfg_ctx *ctx = ld->ctx;
    struct config *cfg = ld->cfg;

    if (sec == NULL) {
        if (default_tiers(cfg) < 0)
            cfg_oom(ctx);
        return;
    }
    if (cfg_check_map(ctx, sec, "tiers", NULL) < 0) {
        ld->tiers_bad = true;
        return;
    }
    size_t n = cfg_map_len(sec);
    if (n == 0) {
        cfg_err(ctx, sec,
                "tiers: define at least one tier, or leave the "
                "section out for the default tiers");
        ld->tiers_bad = true;
        return;
    }
    if (n > CFG_MAX_TIERS) {
        cfg_err(ctx, cfg_map_key(ctx, sec, CFG_MAX_TIERS),
                "tiers: at most %d tiers", CFG_MAX_TIERS);
        n = CFG_MAX_TIERS;
    }
    cfg->tiers = calloc(n, sizeof(*cfg->tiers));
    if (cfg->tiers == NULL) {
        cfg_oom(ctx);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = cfg_map_key(ctx, sec, i);
        const yaml_node_t *v = cfg_map_value(ctx, sec, i);
        if (k == NULL || v == NULL)
            return;
        if (k->type != YAML_SCALAR_NODE) {
            ld->tiers_bad = true; /* reported; references may not resolve */
            continue;
        }
        parse_tier(ld, k, v, &cfg->tiers[cfg->ntiers++]);
    }
}

/* ---- policies ---------------------------------------------------------- */

static int
policy_add_value(struct cfg_policy *p, int attr, const char *value)
{
    char **values =
        reallocarray(p->values[attr], p->nvalues[attr] + 1, sizeof(*values));
    if (values == NULL)
        return -1;
    p->values[attr] = values;
    if ((values[p->nvalues[attr]] = strdup(value)) == NULL)
        return -1;
    p->nvalues[attr]++;
    return 0;
}

int
cfg_tier_ref(struct cfg_load *ld, const yaml_node_t *v, const char *path)
{
    char shown[CFG_SHOW_MAX];
    const char *name;
    if (cfg_get_text(ld->ctx, v, path, &name) < 0)
        return -1;
    int idx = cfg_tier_index(ld->cfg, name, strlen(name));
    if (idx < 0 && !ld->tiers_bad)
        cfg_err(ld->ctx, v, "%s: unknown tier %s", path,
                cfg_show(v, shown, sizeof(shown)));
    return idx;
}

static void
parse_match(struct cfg_load *ld, struct cfg_policy *p, const yaml_node_t *match,
            const char *ppath)
{
    struct cfg_ctx *ctx = ld->ctx;
    char path[CFG_PATH_MAX], sub[CFG_PATH_MAX];
    const char *text;

    cfg_path(path, sizeof(path), ppath, "match");
    if (cfg_check_map(ctx, match, path, "policies.*.match") < 0)
        return;
    for (int a = 0; a < ATTR_COUNT; a++) {
        const yaml_node_t *v = cfg_get_set(ctx, match, cfg_attr_names[a]);
        if (v == NULL)
            continue;
        cfg_path(sub, sizeof(sub), path, cfg_attr_names[a]);
        if (v->type == YAML_SCALAR_NODE) {
            if (cfg_get_text(ctx, v, sub, &text) == 0 &&
                policy_add_value(p, a, text) < 0)
                cfg_oom(ctx);
            continue;
        }
        if (cfg_check_seq(ctx, v, sub) < 0)
            continue;
        size_t n = cfg_seq_len(v);
        if (n == 0)
            cfg_err(ctx, v,
                    "%s: empty list (leave the key out to match "
                    "any value)",
                    sub);
        for (size_t i = 0; i < n; i++) {
            const yaml_node_t *item = cfg_seq_item(ctx, v, i);
            if (item == NULL)
                return;
            if (cfg_get_text(ctx, item, sub, &text) == 0 &&
                policy_add_value(p, a, text) < 0)
                cfg_oom(ctx);
        }
    }
}

static void
parse_policy(struct cfg_load *ld, const yaml_node_t *item, size_t index,
             struct cfg_policy *p)
{
    struct cfg_ctx *ctx = ld->ctx;
    char path[CFG_PATH_MAX], sub[CFG_PATH_MAX];

    snprintf(path, sizeof(path), "policies[%zu]", index);
    if (cfg_check_map(ctx, item, path, "policies.*") < 0)
        return;
    const yaml_node_t *t = cfg_get_set(ctx, item, "tier");
    if (t == NULL)
        cfg_err(ctx, item, "%s: tier is required", path);
    else
        p->tier = cfg_tier_ref(ld, t, cfg_path(sub, sizeof(sub), path, "tier"));
    parse_match(ld, p, cfg_get_set(ctx, item, "match"), path);
}

/* SPEC's example policies, which go with its default tiers. */
static int
default_policies(struct config *cfg)
{
    static const struct {
        int attr;
        const char *values[2];
        const char *tier;
    } defs[] = {
        {ATTR_PRIORITY, {"urgent", "p1"}, "instant"},
        {ATTR_CHANNEL, {"phone", NULL}, "instant"},
        {ATTR_PRIORITY, {"high", NULL}, "1h"},
        {ATTR_PRIORITY, {"normal", NULL}, "4h"},
        {-1, {NULL, NULL}, "24h"},
    };
    cfg->policies = calloc(ARRAY_LEN(defs), sizeof(*cfg->policies));
    if (cfg->policies == NULL)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(defs); i++) {
        struct cfg_policy *p = &cfg->policies[cfg->npolicies++];
        p->tier = cfg_tier_index(cfg, defs[i].tier, strlen(defs[i].tier));
        for (size_t v = 0; v < 2 && defs[i].values[v] != NULL; v++)
            if (policy_add_value(p, defs[i].attr, defs[i].values[v]) < 0)
                return -1;
    }
    return 0;
}

void
cfg_parse_policies(struct cfg_load *ld, const yaml_node_t *sec,
                   bool tiers_are_default)
{
    struct cfg_ctx *ctx = ld->ctx;
    struct config *cfg = ld->cfg;

    if (sec == NULL) {
        /* Custom tiers without policies: the core uses the last tier. */
        if (tiers_are_default && default_policies(cfg) < 0)
            cfg_oom(ctx);
        return;
    }
    if (cfg_check_seq(ctx, sec, "policies") < 0)
        return;
    size_t n = cfg_seq_len(sec);
    if (n == 0)
        return;
    cfg->policies = calloc(n, sizeof(*cfg->policies));
    if (cfg->policies == NULL) {
        cfg_oom(ctx);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, sec, i);
        if (item == NULL)
            return;
        struct cfg_policy *p = &cfg->policies[cfg->npolicies++];
        p->tier = -1;
        parse_policy(ld, item, i, p);
    }
}

/* ---- webhooks ---------------------------------------------------------- */

static bool
url_ok(const char *url)
{
    const char *rest;
    if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    else
        return false;
    return *rest != '\0' && *rest != '/' &&
           strpbrk(url, " \"<>\\^`{|}") == NULL;
}

/* max_rate: deliveries per second as a number, or "N/s", "N/m", "N/h". */
static int
parse_rate(struct cfg_ctx *ctx, const yaml_node_t *v, const char *path,
           double *out)
{
    char shown[CFG_SHOW_MAX];
    const char *text;
    double per = 1;

    if (cfg_get_text(ctx, v, path, &text) < 0)
        return -1;
    size_t digits = strspn(text, "0123456789");
    const char *p = text + digits;
    if (*p == '.') {
        size_t more = strspn(p + 1, "0123456789");
        digits += more;
        p += 1 + more;
    }
    if (strcmp(p, "/s") == 0)
        per = 1;
    else if (strcmp(p, "/m") == 0)
        per = 60;
    else if (strcmp(p, "/h") == 0)
        per = 3600;
    else if (*p != '\0')
        digits = 0;
    if (digits == 0 || digits > 30) {
        cfg_err(ctx, v,
                "%s: bad rate %s (write e.g. 2, 0.5, 120/m, "
                "1000/h)",
                path, cfg_show(v, shown, sizeof(shown)));
        return -1;
    }
    double rate = strtod(text, NULL) / per;
    if (!(rate > 0)) {
        cfg_err(ctx, v,
                "%s: must be greater than 0 (leave it out for no "
                "limit)",
                path);
        return -1;
    }
    *out = rate;
    return 0;
}

static void
parse_retry(struct cfg_ctx *ctx, struct cfg_webhook *w,
            const yaml_node_t *retry, const char *wpath)
{
    char path[CFG_PATH_MAX], b1[32], b2[32];
    long long n;

    cfg_path(path, sizeof(path), wpath, "retry");
    if (cfg_check_map(ctx, retry, path, "webhooks.*.retry") < 0)
        return;
    if (cfg_opt_int(ctx, retry, path, "attempts", 1, INT_MAX, &n))
        w->attempts = (int)n;
    cfg_opt_dur(ctx, retry, path, "backoff", 1, &w->backoff_ms);
    cfg_opt_dur(ctx, retry, path, "max_backoff", 1, &w->max_backoff_ms);
    if (w->max_backoff_ms < w->backoff_ms) {
        const yaml_node_t *at = cfg_get_set(ctx, retry, "max_backoff");
        if (at == NULL)
            at = cfg_get_set(ctx, retry, "backoff");
        cfg_err(ctx, at, "%s: max_backoff (%s) is shorter than backoff (%s)",
                path, dur_format(w->max_backoff_ms, b1, sizeof(b1)),
                dur_format(w->backoff_ms, b2, sizeof(b2)));
    }
}

static void
parse_webhook(struct cfg_load *ld, const yaml_node_t *key,
              const yaml_node_t *val, struct cfg_webhook *w)
{
    struct cfg_ctx *ctx = ld->ctx;
    char path[CFG_PATH_MAX], sub[CFG_PATH_MAX], shown[CFG_SHOW_MAX];
    const yaml_node_t *v;
    int idx;

    w->format = HOOK_JSON;
    w->timeout_ms = 5000;
    w->attempts = 10;
    w->backoff_ms = 1000;
    w->max_backoff_ms = 5 * 60000;
    w->send_resolved = true;
    w->max_rate = 0;
    w->resend_ms = 60000;
    (void)cfg_check_name(ctx, key, "webhooks");
    if ((w->name = strdup(CFG_TEXT(key))) == NULL) {
        cfg_oom(ctx);
        return;
    }
    snprintf(path, sizeof(path), "webhooks.%s", cfg_name_or_placeholder(key));
    if (cfg_check_map(ctx, val, path, "webhooks.*") < 0)
        return;
    if ((v = cfg_get_set(ctx, val, "url")) == NULL)
        cfg_err(ctx, key, "%s: url is required", path);
    else if (cfg_get_str(ctx, v, cfg_path(sub, sizeof(sub), path, "url"),
                         &w->url) == 0 &&
             !url_ok(w->url))
        cfg_err(ctx, v,
                "%s: bad URL %s (must start with http:// or "
                "https:// and name a host)",
                sub, cfg_show(v, shown, sizeof(shown)));
    if ((v = cfg_get_set(ctx, val, "format")) != NULL &&
        cfg_get_enum(ctx, v, cfg_path(sub, sizeof(sub), path, "format"),
                     format_names, ARRAY_LEN(format_names), &idx) == 0)
        w->format = (enum hook_format)idx;
    cfg_opt_secret(ctx, val, path, "secret_file", &w->secret, &w->secret_file);
    v = cfg_get_set(ctx, val, "routing_key_file");
    if (w->format == HOOK_PAGERDUTY && v == NULL)
        cfg_err(ctx, key,
                "%s: routing_key_file is required with format: "
                "pagerduty",
                path);
    else if (w->format != HOOK_PAGERDUTY && v != NULL)
        cfg_err(ctx, v,
                "%s: routing_key_file is only used with format: "
                "pagerduty",
                path);
    else
        cfg_opt_secret(ctx, val, path, "routing_key_file", &w->routing_key,
                       &w->routing_key_file);
    cfg_opt_dur(ctx, val, path, "timeout", 1, &w->timeout_ms);
    if ((v = cfg_get_set(ctx, val, "retry")) != NULL)
        parse_retry(ctx, w, v, path);
    cfg_opt_bool(ctx, val, path, "send_resolved", &w->send_resolved);
    if ((v = cfg_get_set(ctx, val, "max_rate")) != NULL)
        (void)parse_rate(ctx, v, cfg_path(sub, sizeof(sub), path, "max_rate"),
                         &w->max_rate);
    cfg_opt_dur(ctx, val, path, "resend", 1, &w->resend_ms);
}

void
cfg_parse_webhooks(struct cfg_load *ld, const yaml_node_t *sec)
{
    struct cfg_ctx *ctx = ld->ctx;
    struct config *cfg = ld->cfg;

    if (sec == NULL)
        return;
    if (cfg_check_map(ctx, sec, "webhooks", NULL) < 0) {
        ld->webhooks_bad = true;
        return;
    }
    size_t n = cfg_map_len(sec);
    if (n == 0)
        return;
    cfg->webhooks = calloc(n, sizeof(*cfg->webhooks));
    if (cfg->webhooks == NULL) {
        cfg_oom(ctx);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = cfg_map_key(ctx, sec, i);
        const yaml_node_t *v = cfg_map_value(ctx, sec, i);
        if (k == NULL || v == NULL)
            return;
        if (k->type != YAML_SCALAR_NODE) {
            ld->webhooks_bad = true;
            continue;
        }
        parse_webhook(ld, k, v, &cfg->webhooks[cfg->nwebhooks++]);
    }
}

/* ---- escalations ------------------------------------------------------- */

static void
parse_esc_tiers(struct cfg_load *ld, struct cfg_escalation *e,
                const yaml_node_t *list, const char *path)
{
    struct cfg_ctx *ctx = ld->ctx;
    if (cfg_check_seq(ctx, list, path) < 0)
        return;
    size_t n = cfg_seq_len(list);
    if (n == 0) {
        cfg_err(ctx, list,
                "%s: empty list (leave the key out for every "
                "tier)",
                path);
        return;
    }
    /* A list names tiers only, even when it names all of them: `all` (the
     * compliance series of every tier together) is never in it. */
    memset(e->tiers, 0, sizeof(e->tiers));
    e->every_tier = false;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, list, i);
        if (item == NULL)
            return;
        int t = cfg_tier_ref(ld, item, path);
        if (t >= 0)
            e->tiers[t] = true;
    }
}

static void
parse_esc_notify(struct cfg_load *ld, struct cfg_escalation *e,
                 const yaml_node_t *list, const char *path)
{
    struct cfg_ctx *ctx = ld->ctx;
    char shown[CFG_SHOW_MAX];
    const char *name;

    if (cfg_check_seq(ctx, list, path) < 0)
        return;
    size_t n = cfg_seq_len(list);
    if (n == 0) {
        cfg_err(ctx, list, "%s: name at least one webhook", path);
        return;
    }
    if ((e->notify = calloc(n, sizeof(*e->notify))) == NULL) {
        cfg_oom(ctx);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, list, i);
        if (item == NULL)
            return;
        if (cfg_get_text(ctx, item, path, &name) < 0)
            continue;
        cfg_show(item, shown, sizeof(shown));
        int w = webhook_index(ld->cfg, name);
        if (w < 0) {
            if (!ld->webhooks_bad)
                cfg_err(ctx, item, "%s: unknown webhook %s", path, shown);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < e->nnotify; j++)
            dup |= e->notify[j] == w;
        if (dup)
            cfg_err(ctx, item, "%s: webhook %s is listed twice", path, shown);
        else
            e->notify[e->nnotify++] = w;
    }
}

static void
parse_escalation(struct cfg_load *ld, const yaml_node_t *item, size_t index,
                 struct cfg_escalation *e, const yaml_node_t **name_nodes)
{
    struct cfg_ctx *ctx = ld->ctx;
    char path[CFG_PATH_MAX], sub[CFG_PATH_MAX];
    const yaml_node_t *v;
    int idx;

    e->metric = -1;
    for (size_t t = 0; t < ld->cfg->ntiers; t++)
        e->tiers[t] = true;
    e->every_tier = true;
    snprintf(path, sizeof(path), "escalations[%zu]", index);
    if (cfg_check_map(ctx, item, path, "escalations.*") < 0)
        return;
    /* Later messages name it: "escalations.page-oncall.notify". */
    cfg_list_item_name(ctx, item, index, "escalations", "escalation", name_nodes, &e->name,
                       path);
    if ((v = cfg_get_set(ctx, item, "when")) == NULL)
        cfg_err(ctx, item,
                "%s: when is required (warning, breach or "
                "objective)",
                path);
    else if (cfg_get_enum(ctx, v, cfg_path(sub, sizeof(sub), path, "when"),
                          when_names, ARRAY_LEN(when_names), &idx) == 0)
        e->when = (enum esc_when)idx;
    if ((v = cfg_get_set(ctx, item, "metric")) != NULL &&
        cfg_get_enum(ctx, v, cfg_path(sub, sizeof(sub), path, "metric"),
                     metric_or_any, ARRAY_LEN(metric_or_any), &idx) == 0)
        e->metric = idx < METRIC_COUNT ? idx : -1;
    if ((v = cfg_get_set(ctx, item, "tiers")) != NULL)
        parse_esc_tiers(ld, e, v, cfg_path(sub, sizeof(sub), path, "tiers"));
    cfg_opt_dur(ctx, item, path, "after", 0, &e->after_ms);
    if ((v = cfg_get_set(ctx, item, "notify")) == NULL)
        cfg_err(ctx, item,
                "%s: notify is required (a list of webhook "
                "names)",
                path);
    else
        parse_esc_notify(ld, e, v, cfg_path(sub, sizeof(sub), path, "notify"));
}

void
cfg_parse_escalations(struct cfg_load *ld, const yaml_node_t *sec)
{
    struct cfg_ctx *ctx = ld->ctx;
    struct config *cfg = ld->cfg;

    if (sec == NULL)
        return;
    if (cfg_check_seq(ctx, sec, "escalations") < 0)
        return;
    size_t n = cfg_seq_len(sec);
    if (n == 0)
        return;
    const yaml_node_t **names = calloc(n, sizeof(*names));
    cfg->escalations = calloc(n, sizeof(*cfg->escalations));
    if (names == NULL || cfg->escalations == NULL) {
        free(names);
        cfg_oom(ctx);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, sec, i);
        if (item == NULL)
            break;
        parse_escalation(ld, item, i, &cfg->escalations[cfg->nescalations++],
                         names);
    }
    free(names);
}
