/*
 * hook_format.c - notification records, delivery ids, request bodies and
 * signatures (see hook_format.h), for ticket clocks and, in their own
 * section below, compliance objectives. Pure: no I/O, no clocks, no
 * globals. Every
 * JSON document is built with jansson, which escapes quotes, backslashes and
 * control characters and refuses invalid UTF-8; strings are never
 * concatenated into JSON by hand.
 */
#define _GNU_SOURCE
#include "slawatch/hook_format.h"

#include "slawatch/cal.h"
#include "slawatch/objective.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(10))
#define RECORD_VERSION 1

static const char *const kind_names[HOOK_KIND_COUNT] = {
    [HOOK_KIND_WARNING] = "warning",
    [HOOK_KIND_BREACH] = "breach",
    [HOOK_KIND_RECOVERED] = "recovered",
    [HOOK_KIND_RESOLVE] = "resolve",
    [HOOK_KIND_OBJECTIVE] = "objective",
};

const char *
hook_kind_name(enum hook_kind kind)
{
    return (unsigned)kind < HOOK_KIND_COUNT ? kind_names[kind] : "unknown";
}

const char *
hook_format_name(enum hook_format fmt)
{
    switch (fmt) {
    case HOOK_JSON:
        return "json";
    case HOOK_ALERTMANAGER:
        return "alertmanager";
    case HOOK_PAGERDUTY:
        return "pagerduty";
    case HOOK_SLACK:
        return "slack";
    }
    return "unknown";
}

void
hook_copy(char *dst, size_t size, const char *src, size_t len)
{
    if (size == 0)
        return;
    if (src == NULL)
        len = 0;
    if (len >= size)
        len = size - 1;
    if (len)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

/* ---- delivery id ----------------------------------------------------------
 */

static int
digest_field(EVP_MD_CTX *ctx, const void *data, size_t len)
{
    unsigned char hdr[4] = {(unsigned char)(len >> 24),
                            (unsigned char)(len >> 16),
                            (unsigned char)(len >> 8), (unsigned char)len};
    if (EVP_DigestUpdate(ctx, hdr, sizeof(hdr)) != 1)
        return -1;
    return len && EVP_DigestUpdate(ctx, data, len) != 1 ? -1 : 0;
}

static int
digest_int(EVP_MD_CTX *ctx, int64_t v)
{
    char buf[24];
    int len = snprintf(buf, sizeof(buf), "%" PRId64, v);
    return digest_field(ctx, buf, (size_t)len);
}

static void
hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* A clock's identity. Pinned by the unit tests: ids must survive upgrades. */
static int
digest_clock(EVP_MD_CTX *ctx, const struct hook_note *n)
{
    static const char tag[] = "slawatch-delivery-v1";
    const char *kind = hook_kind_name(n->kind);
    return digest_field(ctx, tag, sizeof(tag) - 1) == 0 &&
                   digest_field(ctx, kind, strlen(kind)) == 0 &&
                   digest_field(ctx, n->ticket, strlen(n->ticket)) == 0 &&
                   digest_int(ctx, n->opened_ms) == 0 &&
                   digest_int(ctx, n->metric) == 0 &&
                   digest_int(ctx, n->cycle) == 0 &&
                   digest_int(ctx, n->percent_bp) == 0
               ? 0
               : -1;
}

/* What a named objective measures: "response", "fcr", ... */
static const char *
measure_name(const struct hook_note *n)
{
    return n->is_kpi ? cmp_kpi_name(n->kpi) : cfg_metric_name(n->metric);
}

/* A series' violation: its own tag, so that no objective id can equal a
 * clock's. The episode tells one violation of a series from the next. A
 * named objective's series has a tag of its own too, and its name and
 * measure in the digest, so that two objectives over the same tier and
 * window never share an id (compliance.objective's ids stay those of
 * version 1, so that its notes in an outbox keep theirs). */
static int
digest_objective(EVP_MD_CTX *ctx, const struct hook_note *n)
{
    static const char tag[] = "slawatch-objective-v1";
    static const char named_tag[] = "slawatch-objective-named-v1";
    const char *kind = hook_kind_name(n->kind), *measure = measure_name(n);
    if (n->name[0] != '\0')
        return digest_field(ctx, named_tag, sizeof(named_tag) - 1) == 0 &&
                       digest_field(ctx, kind, strlen(kind)) == 0 &&
                       digest_field(ctx, n->name, strlen(n->name)) == 0 &&
                       digest_field(ctx, measure, strlen(measure)) == 0 &&
                       digest_field(ctx, n->tier, strlen(n->tier)) == 0 &&
                       digest_field(ctx, n->window, strlen(n->window)) == 0 &&
                       digest_int(ctx, n->episode) == 0
                   ? 0
                   : -1;
    return digest_field(ctx, tag, sizeof(tag) - 1) == 0 &&
                   digest_field(ctx, kind, strlen(kind)) == 0 &&
                   digest_field(ctx, n->tier, strlen(n->tier)) == 0 &&
                   digest_int(ctx, n->metric) == 0 &&
                   digest_field(ctx, n->window, strlen(n->window)) == 0 &&
                   digest_int(ctx, n->episode) == 0
               ? 0
               : -1;
}

int
hook_delivery_id(struct hook_note *n)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = -1;

    if (ctx == NULL)
        return -1;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        (n->objective ? digest_objective(ctx, n) : digest_clock(ctx, n)) == 0 &&
        digest_field(ctx, n->escalation, strlen(n->escalation)) == 0 &&
        digest_field(ctx, n->webhook, strlen(n->webhook)) == 0 &&
        EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= HOOK_ID_LEN / 2) {
        hex_encode(md, HOOK_ID_LEN / 2, n->id);
        rc = 0;
    }
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* ---- building JSON ------------------------------------------------------- */

/* Sets obj[key] = value, taking the reference; a NULL value (allocation
 * failure, invalid UTF-8) marks the build failed. */
static void
set(json_t *obj, const char *key, json_t *value, bool *ok)
{
    if (value == NULL || json_object_set_new(obj, key, value) != 0)
        *ok = false;
}

static json_t *
str(const char *s)
{
    return json_stringn(s, strlen(s));
}

static json_t *
str_or_null(const char *s)
{
    return s[0] ? json_stringn(s, strlen(s)) : json_null();
}

/* Clamped to HOOK_TIME_MIN_MS..HOOK_TIME_MAX_MS: the decoder refuses
 * records outside it, and no note, however it was built, reaches
 * ts_format() or the calendar with a time they cannot represent (INT64_MIN
 * overflowed there). */
static int64_t
time_clamp(int64_t ms)
{
    return ms < HOOK_TIME_MIN_MS   ? HOOK_TIME_MIN_MS
           : ms > HOOK_TIME_MAX_MS ? HOOK_TIME_MAX_MS
                                   : ms;
}

static const char *
time_text(int64_t ms, char *buf)
{
    return ts_format(time_clamp(ms), buf);
}

static json_t *
time_str(int64_t ms)
{
    char buf[TS_BUFLEN];
    return json_string(time_text(ms, buf));
}

/* 80% -> 80, 87.5% -> 87.5 */
static json_t *
percent_value(uint32_t bp)
{
    if (bp % 100 == 0)
        return json_integer(bp / 100);
    return json_real((double)bp / 100.0);
}

static char *
dump(json_t *doc, bool ok, size_t *len)
{
    char *text = NULL;
    if (doc != NULL && ok)
        text = json_dumps(doc, DUMP_FLAGS);
    json_decref(doc);
    if (text && len)
        *len = strlen(text);
    return text;
}

static void
percent_text(uint32_t bp, char *buf, size_t size)
{
    if (bp % 100 == 0)
        snprintf(buf, size, "%u%%", bp / 100);
    else if (bp % 10 == 0)
        snprintf(buf, size, "%u.%u%%", bp / 100, bp % 100 / 10);
    else
        snprintf(buf, size, "%u.%02u%%", bp / 100, bp % 100);
}

/* A human summary, shared by the alertmanager, pagerduty and slack
 * formats. `ticket` is the ticket id as the caller wants it shown. */
static char *
summary_text(const struct hook_note *n, const char *ticket)
{
    char deadline[TS_BUFLEN], at[TS_BUFLEN], pct[16], *out = NULL;
    const char *metric = cfg_metric_name(n->metric);
    int rc;

    time_text(n->deadline_ms, deadline);
    time_text(n->at_ms, at);
    switch (n->kind) {
    case HOOK_KIND_WARNING:
        percent_text(n->percent_bp, pct, sizeof(pct));
        rc = asprintf(&out,
                      "SLA warning: ticket %s (tier %s) has used %s of its %s "
                      "target; deadline %s",
                      ticket, n->tier, pct, metric, deadline);
        break;
    case HOOK_KIND_BREACH:
        rc = asprintf(
            &out, "SLA breach: ticket %s (tier %s) missed its %s deadline %s",
            ticket, n->tier, metric, deadline);
        break;
    default:
        rc = asprintf(&out,
                      "SLA recovered: ticket %s (tier %s) %s stopped at %s, "
                      "%" PRId64 " ms after the deadline %s",
                      ticket, n->tier, metric, at, n->late_ms, deadline);
        break;
    }
    return rc < 0 ? NULL : out;
}

/* ---- formats ------------------------------------------------------------- */

/* The same four formats for objective notes (section below). */
static char *objective_json(const struct hook_note *n, size_t *len);
static char *objective_alertmanager(const struct hook_note *n, int64_t now_ms,
                                    size_t *len);
static char *objective_pagerduty(const struct hook_note *n,
                                 const char *routing_key, const char *source,
                                 size_t *len);
static char *objective_slack(const struct hook_note *n, size_t *len);

char *
hook_body_json(const struct hook_note *n, size_t *len)
{
    return hook_body_json_cal(n, NULL, len);
}

/* With a business-hours calendar the body also carries the deadline in the
 * calendar's zone ("deadline_local") and the zone's name ("timezone"). */
char *
hook_body_json_cal(const struct hook_note *n, const struct calendar *cal,
                   size_t *len)
{
    if (n->objective)
        return objective_json(n, len);
    json_t *o = json_object();
    bool ok = o != NULL;
    if (!ok)
        return NULL;
    set(o, "version", json_integer(1), &ok);
    set(o, "kind",
        str(n->kind == HOOK_KIND_RESOLVE ? "recovered"
                                         : hook_kind_name(n->kind)),
        &ok);
    set(o, "delivery", str(n->id), &ok);
    set(o, "escalation", str(n->escalation), &ok);
    set(o, "ticket", str(n->ticket), &ok);
    set(o, "tier", str(n->tier), &ok);
    set(o, "metric", str(cfg_metric_name(n->metric)), &ok);
    set(o, "deadline", time_str(n->deadline_ms), &ok);
    set(o, "at", time_str(n->at_ms), &ok);
    set(o, "late_ms", json_integer(n->late_ms), &ok);
    set(o, "opened_at", time_str(n->opened_ms), &ok);
    for (int a = 0; a < ATTR_COUNT; a++)
        set(o, cfg_attr_name(a), str_or_null(n->attr[a]), &ok);
    set(o, "cycle", json_integer(n->cycle), &ok);
    if (cal != NULL) {
        char local[CAL_LOCAL_BUFLEN];
        set(o, "timezone", str(cal_timezone(cal)), &ok);
        set(o, "deadline_local", str(cal_format_local(cal, time_clamp(n->deadline_ms), local)), &ok);
    }
    if (n->kind == HOOK_KIND_WARNING)
        set(o, "percent", percent_value(n->percent_bp), &ok);
    return dump(o, ok, len);
}

char *
hook_body_alertmanager(const struct hook_note *n, int64_t now_ms, size_t *len)
{
    if (n->objective)
        return objective_alertmanager(n, now_ms, len);
    bool warning = n->kind == HOOK_KIND_WARNING;
    json_t *arr = json_array(), *alert = json_object(), *labels = json_object(),
           *ann = json_object();
    bool ok = arr && alert && labels && ann;
    char *summary = summary_text(n, n->ticket);
    /* A breach alert starts at the deadline; a warning when it fired. */
    int64_t starts = warning ? n->at_ms : n->deadline_ms;

    if (!ok || summary == NULL) {
        json_decref(arr);
        json_decref(alert);
        json_decref(labels);
        json_decref(ann);
        free(summary);
        return NULL;
    }
    set(labels, "alertname", str(warning ? "SLAWarning" : "SLABreach"), &ok);
    set(labels, "ticket", str(n->ticket), &ok);
    set(labels, "tier", str(n->tier), &ok);
    set(labels, "metric", str(cfg_metric_name(n->metric)), &ok);
    set(labels, "severity", str(warning ? "warning" : "critical"), &ok);
    set(labels, "escalation", str(n->escalation), &ok);
    set(alert, "labels", labels, &ok);
    set(ann, "summary", str(summary), &ok);
    set(ann, "deadline", time_str(n->deadline_ms), &ok);
    set(ann, "delivery", str(n->id), &ok);
    for (int a = 0; a < ATTR_COUNT; a++)
        if (n->attr[a][0])
            set(ann, cfg_attr_name(a), str(n->attr[a]), &ok);
    set(alert, "annotations", ann, &ok);
    set(alert, "startsAt", time_str(starts), &ok);
    if (n->flags & HOOK_F_RESOLVING) {
        int64_t ends = n->ends_ms ? n->ends_ms : now_ms;
        set(alert, "endsAt", time_str(ends > starts ? ends : starts), &ok);
    }
    if (json_array_append_new(arr, alert) != 0)
        ok = false;
    free(summary);
    return dump(arr, ok, len);
}

void
hook_dedup_key(const struct hook_note *n, char *buf, size_t size)
{
    /* At most 19 + 64 + 1 + 10 + 1 + 64 + 1 + 10 bytes; a named one's
     * 65 more: within PagerDuty's 255. */
    if (n->objective && n->name[0] != '\0') {
        snprintf(buf, size, "slawatch/objective/%s/%s/%s/%s/%" PRIu32, n->name, n->tier,
                 measure_name(n), n->window, n->episode);
        return;
    }
    if (n->objective) {
        snprintf(buf, size, "slawatch/objective/%s/%s/%s/%" PRIu32, n->tier,
                 cfg_metric_name(n->metric), n->window, n->episode);
        return;
    }
    /* At most 9 + 128 + 1 + 10 + 1 + 10 bytes: within PagerDuty's 255. */
    snprintf(buf, size, "slawatch/%s/%s/%u", n->ticket,
             cfg_metric_name(n->metric), n->cycle);
}

char *
hook_body_pagerduty(const struct hook_note *n, const char *routing_key,
                    const char *source, size_t *len)
{
    if (n->objective)
        return objective_pagerduty(n, routing_key, source, len);
    char dedup[300];
    json_t *o = json_object();
    bool ok = o != NULL;
    bool resolve =
        n->kind == HOOK_KIND_RESOLVE || n->kind == HOOK_KIND_RECOVERED;

    if (!ok)
        return NULL;
    hook_dedup_key(n, dedup, sizeof(dedup));
    set(o, "routing_key", str(routing_key ? routing_key : ""), &ok);
    set(o, "event_action", str(resolve ? "resolve" : "trigger"), &ok);
    set(o, "dedup_key", str(dedup), &ok);
    if (resolve)
        return dump(o, ok, len);

    json_t *p = json_object(), *d = json_object();
    char *summary = summary_text(n, n->ticket);
    if (p == NULL || d == NULL || summary == NULL) {
        json_decref(p);
        json_decref(d);
        json_decref(o);
        free(summary);
        return NULL;
    }
    set(p, "summary", str(summary),
        &ok); /* < 1024: ids and names are bounded */
    set(p, "source", str(source && *source ? source : "slawatch"), &ok);
    set(p, "severity",
        str(n->kind == HOOK_KIND_WARNING ? "warning" : "critical"), &ok);
    set(p, "timestamp", time_str(n->at_ms), &ok);
    set(p, "component", str(cfg_metric_name(n->metric)), &ok);
    set(p, "group", str(n->tier), &ok);
    set(p, "class",
        str(n->kind == HOOK_KIND_WARNING ? "sla warning" : "sla breach"), &ok);
    set(d, "ticket", str(n->ticket), &ok);
    set(d, "tier", str(n->tier), &ok);
    set(d, "metric", str(cfg_metric_name(n->metric)), &ok);
    set(d, "kind", str(hook_kind_name(n->kind)), &ok);
    set(d, "escalation", str(n->escalation), &ok);
    set(d, "deadline", time_str(n->deadline_ms), &ok);
    set(d, "late_ms", json_integer(n->late_ms), &ok);
    set(d, "opened_at", time_str(n->opened_ms), &ok);
    set(d, "cycle", json_integer(n->cycle), &ok);
    if (n->kind == HOOK_KIND_WARNING)
        set(d, "percent", percent_value(n->percent_bp), &ok);
    for (int a = 0; a < ATTR_COUNT; a++)
        if (n->attr[a][0])
            set(d, cfg_attr_name(a), str(n->attr[a]), &ok);
    set(d, "delivery", str(n->id), &ok);
    set(p, "custom_details", d, &ok);
    set(o, "payload", p, &ok);
    set(o, "client", str("slawatch"), &ok);
    free(summary);
    return dump(o, ok, len);
}

/* Slack reads &, < and > in text as markup: escape them. */
static char *
slack_escape(const char *s)
{
    size_t len = strlen(s), need = 1;
    for (size_t i = 0; i < len; i++)
        need += s[i] == '&' ? 5 : (s[i] == '<' || s[i] == '>') ? 4 : 1;
    char *out = malloc(need), *p = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        const char *rep = s[i] == '&'   ? "&amp;"
                          : s[i] == '<' ? "&lt;"
                          : s[i] == '>' ? "&gt;"
                                        : NULL;
        if (rep) {
            memcpy(p, rep, strlen(rep));
            p += strlen(rep);
        } else
            *p++ = s[i];
    }
    *p = '\0';
    return out;
}

char *
hook_body_slack(const struct hook_note *n, size_t *len)
{
    if (n->objective)
        return objective_slack(n, len);
    char *ticket = slack_escape(n->ticket);
    char *summary = ticket ? summary_text(n, ticket) : NULL;
    char *text = NULL;
    json_t *o = json_object();
    bool ok = o != NULL && summary != NULL;

    if (ok && asprintf(&text, "%s (escalation %s)", summary, n->escalation) < 0)
        text = NULL;
    if (text == NULL)
        ok = false;
    if (ok)
        set(o, "text", str(text), &ok);
    free(ticket);
    free(summary);
    free(text);
    return dump(o, ok, len);
}

/* ---- objective notes ------------------------------------------------------
 *
 * An objective's series fell on the wrong side of its threshold (kind
 * OBJECTIVE) or is back (RECOVERED; RESOLVE for PagerDuty). For
 * compliance.objective (name "") the series is a tier (or "all"), metric
 * and window, and the bodies are those of version 1; a named objective's
 * bodies add its name and what it measures (metric or kpi, value,
 * threshold, direction). Values are carried in millionths, as objective.c
 * compares them, and shown as published ("0.75", "1", "4.8").
 */

static bool
named(const struct hook_note *n)
{
    return n->name[0] != '\0';
}

static json_t *
micro_value(int64_t micro)
{
    return json_real((double)micro / 1e6);
}

static const char *
micro_str(int64_t micro, char *buf)
{
    return obj_format_micro(micro, buf, OBJ_MICRO_BUFLEN);
}

/* Counts are far below 2^63; clamp rather than wrap. */
static json_t *
count_value(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static const char *
objective_kind(const struct hook_note *n)
{
    return n->kind == HOOK_KIND_OBJECTIVE ? "objective" : "recovered";
}

static const char *
direction(const struct hook_note *n)
{
    return n->max ? "max" : "min";
}

/* compliance.objective: "SLA objective: tier 1h response compliance over
 * 24h is 0.75 (3 met, 1 breached), below the objective 0.9". A named one:
 * "SLA objective answered-in-24h: tier 1h response compliance over 24h is
 * 0.75 (3 met, 1 breached), below its min 0.9", "SLA objective reopens:
 * all tiers reopen_rate over 7d is 0.08, above its max 0.05". */
static char *
objective_summary(const struct hook_note *n)
{
    char value[OBJ_MICRO_BUFLEN], goal[OBJ_MICRO_BUFLEN], tier[HOOK_NAME_MAX + 8];
    char counts[64] = "", *out = NULL;
    bool below = n->kind == HOOK_KIND_OBJECTIVE;
    int rc;
    if (strcmp(n->tier, "all") == 0)
        snprintf(tier, sizeof(tier), "all tiers");
    else
        snprintf(tier, sizeof(tier), "tier %s", n->tier);
    micro_str(n->value_micro, value);
    micro_str(n->threshold_micro, goal);
    if (!named(n)) {
        rc = asprintf(&out,
                      "SLA objective%s: %s %s compliance over %s is %s "
                      "(%" PRIu64 " met, %" PRIu64 " breached), %s %s",
                      below ? "" : " recovered", tier, cfg_metric_name(n->metric), n->window,
                      value, n->met, n->breached,
                      below ? "below the objective" : "back at or above the objective", goal);
        return rc < 0 ? NULL : out;
    }
    if (!n->is_kpi)
        snprintf(counts, sizeof(counts), " (%" PRIu64 " met, %" PRIu64 " breached)", n->met,
                 n->breached);
    const char *side = below ? (n->max ? "above" : "below")
                             : (n->max ? "back at or below" : "back at or above");
    rc = asprintf(&out, "SLA objective %s%s: %s %s%s over %s is %s%s, %s its %s %s", n->name,
                  below ? "" : " recovered", tier, measure_name(n),
                  n->is_kpi ? "" : " compliance", n->window, value, counts, side,
                  direction(n), goal);
    return rc < 0 ? NULL : out;
}

/* A named objective's name and measure: "name", then "metric" or "kpi". */
static void
set_named(json_t *o, const struct hook_note *n, bool *ok)
{
    set(o, "name", str(n->name), ok);
    set(o, n->is_kpi ? "kpi" : "metric", str(measure_name(n)), ok);
}

static char *
objective_json(const struct hook_note *n, size_t *len)
{
    json_t *o = json_object();
    bool ok = o != NULL;
    if (!ok)
        return NULL;
    set(o, "version", json_integer(1), &ok);
    set(o, "kind", str(objective_kind(n)), &ok);
    set(o, "delivery", str(n->id), &ok);
    set(o, "escalation", str(n->escalation), &ok);
    if (named(n)) {
        set_named(o, n, &ok);
        set(o, "tier", str(n->tier), &ok);
        set(o, "window", str(n->window), &ok);
        set(o, "value", micro_value(n->value_micro), &ok);
        set(o, "threshold", micro_value(n->threshold_micro), &ok);
        set(o, "direction", str(direction(n)), &ok);
        if (!n->is_kpi) {
            set(o, "met", count_value(n->met), &ok);
            set(o, "breached", count_value(n->breached), &ok);
        }
    } else {
        set(o, "tier", str(n->tier), &ok);
        set(o, "metric", str(cfg_metric_name(n->metric)), &ok);
        set(o, "window", str(n->window), &ok);
        set(o, "ratio", micro_value(n->value_micro), &ok);
        set(o, "objective", micro_value(n->threshold_micro), &ok);
        set(o, "met", count_value(n->met), &ok);
        set(o, "breached", count_value(n->breached), &ok);
    }
    set(o, "at", time_str(n->at_ms), &ok);
    set(o, "episode", json_integer(n->episode), &ok);
    return dump(o, ok, len);
}

static char *
objective_alertmanager(const struct hook_note *n, int64_t now_ms, size_t *len)
{
    json_t *arr = json_array(), *alert = json_object(), *labels = json_object(),
           *ann = json_object();
    char *summary = objective_summary(n), num[OBJ_MICRO_BUFLEN];
    bool ok = arr && alert && labels && ann && summary;

    if (!ok) {
        json_decref(arr);
        json_decref(alert);
        json_decref(labels);
        json_decref(ann);
        free(summary);
        return NULL;
    }
    /* Alertmanager tells alerts apart by their labels: a named
     * objective's carry its name. */
    set(labels, "alertname", str("SLAObjective"), &ok);
    if (named(n))
        set(labels, "objective", str(n->name), &ok);
    set(labels, "tier", str(n->tier), &ok);
    set(labels, n->is_kpi ? "kpi" : "metric", str(measure_name(n)), &ok);
    set(labels, "window", str(n->window), &ok);
    set(labels, "severity", str("critical"), &ok);
    set(labels, "escalation", str(n->escalation), &ok);
    set(alert, "labels", labels, &ok);
    /* Annotations are strings in Alertmanager's API. */
    set(ann, "summary", str(summary), &ok);
    if (named(n)) {
        set(ann, "value", str(micro_str(n->value_micro, num)), &ok);
        set(ann, "threshold", str(micro_str(n->threshold_micro, num)), &ok);
        set(ann, "direction", str(direction(n)), &ok);
    } else {
        set(ann, "ratio", str(micro_str(n->value_micro, num)), &ok);
        set(ann, "objective", str(micro_str(n->threshold_micro, num)), &ok);
    }
    snprintf(num, sizeof(num), "%" PRIu32, n->episode);
    set(ann, "episode", str(num), &ok);
    set(ann, "delivery", str(n->id), &ok);
    set(alert, "annotations", ann, &ok);
    /* The alert starts when the violation was decided. */
    set(alert, "startsAt", time_str(n->at_ms), &ok);
    if (n->flags & HOOK_F_RESOLVING) {
        int64_t ends = n->ends_ms ? n->ends_ms : now_ms;
        set(alert, "endsAt", time_str(ends > n->at_ms ? ends : n->at_ms), &ok);
    }
    if (json_array_append_new(arr, alert) != 0)
        ok = false;
    free(summary);
    return dump(arr, ok, len);
}

static char *
objective_pagerduty(const struct hook_note *n, const char *routing_key,
                    const char *source, size_t *len)
{
    char dedup[300];
    json_t *o = json_object();
    bool ok = o != NULL;

    if (!ok)
        return NULL;
    hook_dedup_key(n, dedup, sizeof(dedup));
    set(o, "routing_key", str(routing_key ? routing_key : ""), &ok);
    set(o, "event_action",
        str(n->kind == HOOK_KIND_OBJECTIVE ? "trigger" : "resolve"), &ok);
    set(o, "dedup_key", str(dedup), &ok);
    if (n->kind != HOOK_KIND_OBJECTIVE)
        return dump(o, ok, len);

    json_t *p = json_object(), *d = json_object();
    char *summary = objective_summary(n);
    if (p == NULL || d == NULL || summary == NULL) {
        json_decref(p);
        json_decref(d);
        json_decref(o);
        free(summary);
        return NULL;
    }
    set(p, "summary", str(summary), &ok);
    set(p, "source", str(source && *source ? source : "slawatch"), &ok);
    set(p, "severity", str("critical"), &ok);
    set(p, "timestamp", time_str(n->at_ms), &ok);
    set(p, "component", str(measure_name(n)), &ok);
    set(p, "group", str(n->tier), &ok);
    set(p, "class", str("sla objective"), &ok);
    set(d, "kind", str("objective"), &ok);
    if (named(n)) {
        set_named(d, n, &ok);
        set(d, "tier", str(n->tier), &ok);
        set(d, "window", str(n->window), &ok);
        set(d, "value", micro_value(n->value_micro), &ok);
        set(d, "threshold", micro_value(n->threshold_micro), &ok);
        set(d, "direction", str(direction(n)), &ok);
    } else {
        set(d, "tier", str(n->tier), &ok);
        set(d, "metric", str(cfg_metric_name(n->metric)), &ok);
        set(d, "window", str(n->window), &ok);
        set(d, "ratio", micro_value(n->value_micro), &ok);
        set(d, "objective", micro_value(n->threshold_micro), &ok);
    }
    if (!n->is_kpi) {
        set(d, "met", count_value(n->met), &ok);
        set(d, "breached", count_value(n->breached), &ok);
    }
    set(d, "episode", json_integer(n->episode), &ok);
    set(d, "escalation", str(n->escalation), &ok);
    set(d, "delivery", str(n->id), &ok);
    set(p, "custom_details", d, &ok);
    set(o, "payload", p, &ok);
    set(o, "client", str("slawatch"), &ok);
    free(summary);
    return dump(o, ok, len);
}

static char *
objective_slack(const struct hook_note *n, size_t *len)
{
    char *summary = objective_summary(n), *text = NULL, *escaped = NULL;
    json_t *o = json_object();
    bool ok = o != NULL && summary != NULL;

    if (ok && asprintf(&text, "%s (escalation %s)", summary, n->escalation) < 0)
        text = NULL;
    /* Names are plain ([A-Za-z0-9_.-]), but the record came from Redis. */
    if (text)
        escaped = slack_escape(text);
    if (escaped == NULL)
        ok = false;
    if (ok)
        set(o, "text", str(escaped), &ok);
    free(summary);
    free(text);
    free(escaped);
    return dump(o, ok, len);
}

const char *
hook_note_subject(const struct hook_note *n, char *buf)
{
    if (n->objective && named(n))
        snprintf(buf, HOOK_SUBJECT_LEN, "objective %s %s/%s/%s", n->name, n->tier,
                 measure_name(n), n->window);
    else if (n->objective)
        snprintf(buf, HOOK_SUBJECT_LEN, "objective %s/%s/%s", n->tier,
                 cfg_metric_name(n->metric), n->window);
    else
        snprintf(buf, HOOK_SUBJECT_LEN, "ticket %s", n->ticket);
    return buf;
}

char *
hook_body(const struct hook_note *n, enum hook_format fmt,
          const struct hook_ctx *ctx, size_t *len)
{
    switch (fmt) {
    case HOOK_JSON:
        return hook_body_json_cal(n, ctx->calendar, len);
    case HOOK_ALERTMANAGER:
        return hook_body_alertmanager(n, ctx->now_ms, len);
    case HOOK_PAGERDUTY:
        return hook_body_pagerduty(n, ctx->routing_key, ctx->source, len);
    case HOOK_SLACK:
        return hook_body_slack(n, len);
    }
    return NULL;
}

/* ---- signature ------------------------------------------------------------
 */

int
hook_sign(const char *secret, size_t secret_len, int64_t timestamp_s,
          const char *body, size_t body_len, char *out)
{
    char ts[24];
    int tslen = snprintf(ts, sizeof(ts), "%" PRId64 ".", timestamp_s);
    size_t msglen = (size_t)tslen + body_len;
    unsigned char *msg = malloc(msglen ? msglen : 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (msg == NULL)
        return -1;
    memcpy(msg, ts, (size_t)tslen);
    if (body_len)
        memcpy(msg + tslen, body, body_len);
    unsigned char *r =
        HMAC(EVP_sha256(), secret, (int)secret_len, msg, msglen, md, &mdlen);
    free(msg);
    if (r == NULL || mdlen != 32)
        return -1;
    memcpy(out, "sha256=", 7);
    hex_encode(md, mdlen, out + 7);
    return 0;
}

/* ---- the outbox record -----------------------------------------------------
 */

char *
hook_note_encode(const struct hook_note *n)
{
    json_t *o = json_object(), *attrs = json_object();
    bool ok = o && attrs;
    if (!ok) {
        json_decref(o);
        json_decref(attrs);
        return NULL;
    }
    set(o, "v", json_integer(RECORD_VERSION), &ok);
    set(o, "id", str(n->id), &ok);
    set(o, "kind", str(hook_kind_name(n->kind)), &ok);
    set(o, "webhook", str(n->webhook), &ok);
    set(o, "escalation", str(n->escalation), &ok);
    set(o, "ticket", str(n->ticket), &ok);
    set(o, "tier", str(n->tier), &ok);
    set(o, "metric", json_integer(n->metric), &ok);
    set(o, "cycle", json_integer(n->cycle), &ok);
    set(o, "percent_bp", json_integer(n->percent_bp), &ok);
    set(o, "opened_ms", json_integer(n->opened_ms), &ok);
    set(o, "deadline_ms", json_integer(n->deadline_ms), &ok);
    set(o, "at_ms", json_integer(n->at_ms), &ok);
    set(o, "late_ms", json_integer(n->late_ms), &ok);
    for (int a = 0; a < ATTR_COUNT; a++)
        if (n->attr[a][0])
            set(attrs, cfg_attr_name(a), str(n->attr[a]), &ok);
    set(o, "attrs", attrs, &ok);
    /* Objective notes only, so that clock records stay as they were; and
     * compliance.objective's as they were before named objectives. */
    if (n->objective) {
        set(o, "subject", str("objective"), &ok);
        set(o, "window", str(n->window), &ok);
        set(o, "episode", json_integer(n->episode), &ok);
        if (named(n)) {
            set(o, "name", str(n->name), &ok);
            if (n->is_kpi)
                set(o, "kpi", str(cmp_kpi_name(n->kpi)), &ok);
            set(o, "direction", str(direction(n)), &ok);
            set(o, "value_micro", json_integer(n->value_micro), &ok);
            set(o, "threshold_micro", json_integer(n->threshold_micro), &ok);
        } else {
            set(o, "ratio_micro", json_integer(n->value_micro), &ok);
            set(o, "objective_micro", json_integer(n->threshold_micro), &ok);
        }
        set(o, "met", count_value(n->met), &ok);
        set(o, "breached", count_value(n->breached), &ok);
    }
    set(o, "created_ms", json_integer(n->created_ms), &ok);
    set(o, "due_ms", json_integer(n->due_ms), &ok);
    set(o, "ends_ms", json_integer(n->ends_ms), &ok);
    set(o, "attempts", json_integer(n->attempts), &ok);
    set(o, "flags", json_integer(n->flags), &ok);
    return dump(o, ok, NULL);
}

static int
get_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return -1;
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return -1;
    *out = i;
    return 0;
}

/* A string of 0..max bytes without control characters. */
static int
get_str(json_t *o, const char *key, size_t min, size_t max, char *dst)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len < min || len > max || (len && !str_is_clean_utf8(s, len)))
        return -1;
    hook_copy(dst, max + 1, s, len);
    return 0;
}

/* The most a named objective's value or threshold may be, in millionths
 * (a count of 10^9 ratings; the config allows no more). */
#define OBJ_VALUE_MAX_MICRO INT64_C(1000000000000000)

/* A named objective's fields: name, kpi (absent: an SLA ratio, `metric`),
 * direction, value and threshold. */
static int
decode_named(json_t *o, struct hook_note *n, int64_t *value, int64_t *threshold)
{
    char kpi[32], dir[8];
    if (get_str(o, "name", 1, HOOK_NAME_MAX, n->name) < 0 ||
        get_str(o, "direction", 3, 3, dir) < 0 || (strcmp(dir, "min") && strcmp(dir, "max")) ||
        get_int(o, "value_micro", 0, OBJ_VALUE_MAX_MICRO, value) < 0 ||
        get_int(o, "threshold_micro", 0, OBJ_VALUE_MAX_MICRO, threshold) < 0)
        return -1;
    n->max = strcmp(dir, "max") == 0;
    if (json_object_get(o, "kpi") != NULL) {
        if (get_str(o, "kpi", 1, sizeof(kpi) - 1, kpi) < 0)
            return -1;
        for (n->kpi = 0; n->kpi < CMP_KPI_COUNT; n->kpi++)
            if (strcmp(kpi, cmp_kpi_name(n->kpi)) == 0)
                break;
        if (n->kpi == CMP_KPI_COUNT)
            return -1;
        n->is_kpi = true;
    }
    return 0;
}

/* The fields of an objective note (after "subject":"objective"). */
static int
decode_objective(json_t *o, struct hook_note *n)
{
    int64_t v[5];
    if (get_str(o, "window", 1, HOOK_NAME_MAX, n->window) < 0 ||
        get_int(o, "episode", 0, UINT32_MAX, &v[0]) < 0 ||
        get_int(o, "met", 0, INT64_MAX, &v[3]) < 0 ||
        get_int(o, "breached", 0, INT64_MAX, &v[4]) < 0)
        return -1;
    if (json_object_get(o, "name") != NULL) {
        if (decode_named(o, n, &v[1], &v[2]) < 0)
            return -1;
    } else if (get_int(o, "ratio_micro", 0, 1000000, &v[1]) < 0 ||
               get_int(o, "objective_micro", 0, 1000000, &v[2]) < 0) {
        return -1;
    }
    n->objective = true;
    n->episode = (uint32_t)v[0];
    n->value_micro = v[1];
    n->threshold_micro = v[2];
    n->met = (uint64_t)v[3];
    n->breached = (uint64_t)v[4];
    return 0;
}

int
hook_note_decode(struct hook_note *n, const char *text, size_t len,
                 const char **why)
{
    json_error_t err;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    int64_t v[14];
    char kind[16], subject[16] = "";
    int rc = -1;

    memset(n, 0, sizeof(*n));
    *why = "not a JSON object";
    if (!json_is_object(o))
        goto out;
    *why = "bad subject";
    if (json_object_get(o, "subject") != NULL &&
        (get_str(o, "subject", 1, sizeof(subject) - 1, subject) < 0 ||
         strcmp(subject, "objective") != 0 || decode_objective(o, n) < 0))
        goto out;
    *why = "bad field";
    /* An objective note has no ticket; a clock's always has one. */
    if (get_int(o, "v", RECORD_VERSION, RECORD_VERSION, &v[0]) < 0 ||
        get_str(o, "id", HOOK_ID_LEN, HOOK_ID_LEN, n->id) < 0 ||
        get_str(o, "kind", 1, sizeof(kind) - 1, kind) < 0 ||
        get_str(o, "webhook", 1, HOOK_NAME_MAX, n->webhook) < 0 ||
        get_str(o, "escalation", 0, HOOK_NAME_MAX, n->escalation) < 0 ||
        get_str(o, "ticket", n->objective ? 0 : 1,
                n->objective ? 0 : TICKET_ID_MAX, n->ticket) < 0 ||
        get_str(o, "tier", 1, HOOK_NAME_MAX, n->tier) < 0 ||
        get_int(o, "metric", 0, METRIC_COUNT - 1, &v[1]) < 0 ||
        get_int(o, "cycle", 0, UINT16_MAX, &v[2]) < 0 ||
        get_int(o, "percent_bp", 0, 10000, &v[3]) < 0 ||
        get_int(o, "created_ms", INT64_MIN, INT64_MAX, &v[8]) < 0 ||
        get_int(o, "due_ms", INT64_MIN, INT64_MAX, &v[9]) < 0 ||
        get_int(o, "ends_ms", INT64_MIN, INT64_MAX, &v[10]) < 0 ||
        get_int(o, "attempts", 0, HOOK_ATTEMPTS_MAX, &v[11]) < 0 ||
        get_int(o, "flags", 0, 255, &v[12]) < 0)
        goto out;
    /* The clock's times go into bodies and log lines: a record from
     * elsewhere (or a corrupted one) must not carry one that cannot be
     * formatted, nor a lateness no two such times can have. */
    *why = "time out of range";
    const int64_t span = HOOK_TIME_MAX_MS - HOOK_TIME_MIN_MS;
    if (get_int(o, "opened_ms", HOOK_TIME_MIN_MS, HOOK_TIME_MAX_MS, &v[4]) <
            0 ||
        get_int(o, "deadline_ms", HOOK_TIME_MIN_MS, HOOK_TIME_MAX_MS, &v[5]) <
            0 ||
        get_int(o, "at_ms", HOOK_TIME_MIN_MS, HOOK_TIME_MAX_MS, &v[6]) < 0 ||
        get_int(o, "late_ms", -span, span, &v[7]) < 0)
        goto out;
    *why = "unknown kind";
    n->kind = HOOK_KIND_COUNT;
    for (int k = 0; k < HOOK_KIND_COUNT; k++)
        if (strcmp(kind, kind_names[k]) == 0)
            n->kind = (enum hook_kind)k;
    if (n->kind == HOOK_KIND_COUNT)
        goto out;
    *why = "kind does not fit the subject";
    if ((n->kind == HOOK_KIND_OBJECTIVE && !n->objective) ||
        (n->objective &&
         (n->kind == HOOK_KIND_WARNING || n->kind == HOOK_KIND_BREACH)))
        goto out;
    *why = "bad attributes";
    json_t *attrs = json_object_get(o, "attrs");
    if (!json_is_object(attrs))
        goto out;
    for (int a = 0; a < ATTR_COUNT; a++)
        if (json_object_get(attrs, cfg_attr_name(a)) &&
            get_str(attrs, cfg_attr_name(a), 1, ATTR_VALUE_MAX, n->attr[a]) < 0)
            goto out;
    n->metric = (int)v[1];
    n->cycle = (unsigned)v[2];
    n->percent_bp = (uint32_t)v[3];
    n->opened_ms = v[4];
    n->deadline_ms = v[5];
    n->at_ms = v[6];
    n->late_ms = v[7];
    n->created_ms = v[8];
    n->due_ms = v[9];
    n->ends_ms = v[10];
    n->attempts = (int)v[11];
    n->flags = (unsigned)v[12];
    *why = NULL;
    rc = 0;
out:
    json_decref(o);
    return rc;
}
