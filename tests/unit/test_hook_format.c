/* Unit tests of hook_format.c: the SPEC section 5 json body and its RFC 3339
 * UTC times, the HMAC signature (against values computed independently),
 * delivery id stability, the PagerDuty Events API v2 bodies field by field,
 * the Alertmanager /api/v2/alerts body, the Slack body, hostile ticket ids
 * and the outbox record's round trip and refusal of garbage; then the same
 * for notes about a compliance objective (`when: objective`). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "slawatch/cal.h"
#include "slawatch/hook_format.h"
#include "slawatch/objective.h"

#define OPENED_MS 1795424400000LL   /* 2026-11-23T09:00:00.000Z */
#define DEADLINE_MS 1795428000000LL /* 2026-11-23T10:00:00.000Z */

static void
sample(struct hook_note *n, enum hook_kind kind)
{
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    strcpy(n->webhook, "oncall");
    strcpy(n->escalation, "page-oncall");
    strcpy(n->ticket, "T-1042");
    strcpy(n->tier, "1h");
    strcpy(n->attr[ATTR_PRIORITY], "high");
    strcpy(n->attr[ATTR_CHANNEL], "email");
    strcpy(n->attr[ATTR_QUEUE], "billing");
    n->metric = METRIC_RESPONSE;
    n->opened_ms = OPENED_MS;
    n->deadline_ms = DEADLINE_MS;
    n->at_ms = DEADLINE_MS + 4;
    n->late_ms = 4;
    n->due_ms = DEADLINE_MS + 4;
    n->created_ms = DEADLINE_MS + 4;
    assert_int_equal(hook_delivery_id(n), 0);
}

static json_t *
parse(const char *text)
{
    json_error_t err;
    assert_non_null(text);
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL)
        fail_msg("invalid JSON (%s): %s", err.text, text);
    return j;
}

static const char *
get_s(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("%s is not a string", key);
    return json_string_value(v);
}

static long long
get_i(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return json_integer_value(v);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" exactly, and the instant it names. */
static void
assert_time(json_t *o, const char *key, int64_t want_ms)
{
    const char *s = get_s(o, key);
    int64_t ms;
    assert_int_equal(strlen(s), 24);
    assert_true(s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
                s[16] == ':' && s[19] == '.' && s[23] == 'Z');
    assert_int_equal(ts_parse(s, strlen(s), &ms), 0);
    assert_int_equal(ms, want_ms);
}

static void
test_json_body(void **state)
{
    struct hook_note n;
    size_t len = 0;
    (void)state;
    sample(&n, HOOK_KIND_BREACH);
    char *body = hook_body_json(&n, &len);
    assert_non_null(body);
    assert_int_equal(len, strlen(body));
    json_t *j = parse(body);
    assert_int_equal(get_i(j, "version"), 1);
    assert_string_equal(get_s(j, "kind"), "breach");
    assert_string_equal(get_s(j, "delivery"), n.id);
    assert_string_equal(get_s(j, "escalation"), "page-oncall");
    assert_string_equal(get_s(j, "ticket"), "T-1042");
    assert_string_equal(get_s(j, "tier"), "1h");
    assert_string_equal(get_s(j, "metric"), "response");
    assert_time(j, "deadline", DEADLINE_MS);
    assert_string_equal(get_s(j, "deadline"), "2026-11-23T10:00:00.000Z");
    assert_time(j, "at", DEADLINE_MS + 4);
    assert_string_equal(get_s(j, "at"), "2026-11-23T10:00:00.004Z");
    assert_int_equal(get_i(j, "late_ms"), 4);
    assert_time(j, "opened_at", OPENED_MS);
    assert_string_equal(get_s(j, "priority"), "high");
    assert_string_equal(get_s(j, "channel"), "email");
    assert_string_equal(get_s(j, "queue"), "billing");
    assert_true(json_is_null(json_object_get(j, "agent")));
    assert_null(json_object_get(j, "percent"));
    json_decref(j);
    free(body);

    /* A warning carries its percentage; 87.5% stays 87.5. */
    sample(&n, HOOK_KIND_WARNING);
    n.percent_bp = 8750;
    n.late_ms = -450000;
    body = hook_body_json(&n, &len);
    j = parse(body);
    assert_string_equal(get_s(j, "kind"), "warning");
    assert_true(json_is_number(json_object_get(j, "percent")));
    assert_true(json_number_value(json_object_get(j, "percent")) == 87.5);
    assert_int_equal(get_i(j, "late_ms"), -450000);
    json_decref(j);
    free(body);

    sample(&n, HOOK_KIND_RECOVERED);
    body = hook_body_json(&n, &len);
    j = parse(body);
    assert_string_equal(get_s(j, "kind"), "recovered");
    json_decref(j);
    free(body);

    /* Times before 1970 and with every millisecond digit. */
    sample(&n, HOOK_KIND_BREACH);
    n.deadline_ms = -1;
    n.at_ms = 123;
    body = hook_body_json(&n, &len);
    j = parse(body);
    assert_string_equal(get_s(j, "deadline"), "1969-12-31T23:59:59.999Z");
    assert_string_equal(get_s(j, "at"), "1970-01-01T00:00:00.123Z");
    json_decref(j);
    free(body);
}

static void
test_signature(void **state)
{
    static const char body[] = "{\"version\":1}";
    char sig[HOOK_SIG_LEN + 1];
    (void)state;
    /* Computed independently: HMAC-SHA256("s3cret-key", "1700000000." + body). */
    assert_int_equal(hook_sign("s3cret-key", 10, 1700000000, body, strlen(body), sig), 0);
    assert_string_equal(sig, "sha256=d070c7a7b8a0c2992e0246eb9573005e50f440371c62f02e6e"
                             "54133f7877a0bc");

    /* And the way a receiver verifies: OpenSSL's EVP_MAC over the same
     * bytes, for a real body. */
    struct hook_note n;
    size_t len = 0;
    sample(&n, HOOK_KIND_BREACH);
    char *real = hook_body_json(&n, &len);
    assert_int_equal(hook_sign("k", 1, 1795428000, real, len, sig), 0);
    char msg[4096];
    int mlen = snprintf(msg, sizeof(msg), "%d.%s", 1795428000, real);
    unsigned char md[32];
    size_t mdlen = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                             (char *)"SHA256", 0),
                            OSSL_PARAM_construct_end() };
    assert_int_equal(EVP_MAC_init(ctx, (const unsigned char *)"k", 1, params), 1);
    assert_int_equal(EVP_MAC_update(ctx, (unsigned char *)msg, (size_t)mlen), 1);
    assert_int_equal(EVP_MAC_final(ctx, md, &mdlen, sizeof(md)), 1);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    char hex[80] = "sha256=";
    for (size_t i = 0; i < mdlen; i++)
        sprintf(hex + 7 + 2 * i, "%02x", md[i]);
    assert_string_equal(sig, hex);

    /* A different secret, timestamp or body gives another signature. */
    char other[HOOK_SIG_LEN + 1];
    assert_int_equal(hook_sign("K", 1, 1795428000, real, len, other), 0);
    assert_string_not_equal(sig, other);
    assert_int_equal(hook_sign("k", 1, 1795428001, real, len, other), 0);
    assert_string_not_equal(sig, other);
    assert_int_equal(hook_sign("k", 1, 1795428000, real, len - 1, other), 0);
    assert_string_not_equal(sig, other);
    free(real);
}

static void
test_delivery_id(void **state)
{
    struct hook_note a, b;
    (void)state;
    sample(&a, HOOK_KIND_BREACH);
    /* Computed independently: the first 16 bytes of SHA-256 over the
     * length-prefixed identity fields. Pinned so that ids survive upgrades. */
    assert_string_equal(a.id, "defd904e363e7c8524bf042805ac83e0");
    assert_int_equal(strlen(a.id), HOOK_ID_LEN);

    /* Delivery state, detection time and attributes are not identity. */
    sample(&b, HOOK_KIND_BREACH);
    b.attempts = 7;
    b.due_ms += 99999;
    b.created_ms += 5;
    b.at_ms += 1000;
    b.late_ms += 1000;
    b.flags = HOOK_F_COND | HOOK_F_DELIVERED;
    strcpy(b.attr[ATTR_AGENT], "bob");
    strcpy(b.tier, "4h");
    assert_int_equal(hook_delivery_id(&b), 0);
    assert_string_equal(a.id, b.id);

    /* Every identity field changes it. */
    char seen[10][HOOK_ID_LEN + 1];
    int nseen = 0;
    strcpy(seen[nseen++], a.id);
    for (int field = 0; field < 8; field++) {
        sample(&b, HOOK_KIND_BREACH);
        switch (field) {
        case 0: b.kind = HOOK_KIND_RECOVERED; break;
        case 1: strcpy(b.ticket, "T-1043"); break;
        case 2: b.opened_ms++; break;
        case 3: b.metric = METRIC_RESOLUTION; break;
        case 4: b.cycle = 1; break;
        case 5: b.kind = HOOK_KIND_WARNING; b.percent_bp = 8000; break;
        case 6: strcpy(b.escalation, "page-manager"); break;
        case 7: strcpy(b.webhook, "manager"); break;
        }
        assert_int_equal(hook_delivery_id(&b), 0);
        for (int i = 0; i < nseen; i++)
            assert_string_not_equal(b.id, seen[i]);
        strcpy(seen[nseen++], b.id);
    }
    /* Field boundaries are unambiguous ("ab"+"c" vs "a"+"bc"). */
    sample(&a, HOOK_KIND_BREACH);
    sample(&b, HOOK_KIND_BREACH);
    strcpy(a.escalation, "ab");
    strcpy(a.webhook, "c");
    strcpy(b.escalation, "a");
    strcpy(b.webhook, "bc");
    assert_int_equal(hook_delivery_id(&a), 0);
    assert_int_equal(hook_delivery_id(&b), 0);
    assert_string_not_equal(a.id, b.id);
}

/* Events API v2 (developer.pagerduty.com, "Send an Alert Event"): the
 * top-level keys it defines, with routing_key, event_action and, for a
 * trigger, payload.summary/source/severity required. */
static void
check_pd_keys(json_t *j)
{
    static const char *const allowed[] = { "routing_key", "event_action", "dedup_key",
                                           "payload", "images", "links", "client",
                                           "client_url" };
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        bool ok = false;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
            ok |= strcmp(key, allowed[i]) == 0;
        if (!ok)
            fail_msg("unexpected top-level key %s", key);
    }
}

static void
test_pagerduty(void **state)
{
    struct hook_note n;
    size_t len = 0;
    (void)state;
    sample(&n, HOOK_KIND_BREACH);
    char *body = hook_body_pagerduty(&n, "R0UTINGKEY0123456789abcdefABCDEF", "host-1", &len);
    json_t *j = parse(body);
    check_pd_keys(j);
    assert_string_equal(get_s(j, "routing_key"), "R0UTINGKEY0123456789abcdefABCDEF");
    assert_string_equal(get_s(j, "event_action"), "trigger");
    const char *dedup = get_s(j, "dedup_key");
    assert_true(strlen(dedup) > 0 && strlen(dedup) <= 255);
    assert_string_equal(dedup, "slawatch/T-1042/response/0");
    assert_string_equal(get_s(j, "client"), "slawatch");
    json_t *p = json_object_get(j, "payload");
    assert_true(json_is_object(p));
    const char *summary = get_s(p, "summary");
    assert_true(strlen(summary) > 0 && strlen(summary) <= 1024);
    assert_non_null(strstr(summary, "T-1042"));
    assert_string_equal(get_s(p, "source"), "host-1");
    assert_string_equal(get_s(p, "severity"), "critical");
    assert_time(p, "timestamp", DEADLINE_MS + 4);
    assert_string_equal(get_s(p, "component"), "response");
    assert_string_equal(get_s(p, "group"), "1h");
    assert_string_equal(get_s(p, "class"), "sla breach");
    json_t *d = json_object_get(p, "custom_details");
    assert_true(json_is_object(d));
    assert_string_equal(get_s(d, "ticket"), "T-1042");
    assert_string_equal(get_s(d, "escalation"), "page-oncall");
    assert_string_equal(get_s(d, "delivery"), n.id);
    assert_int_equal(get_i(d, "late_ms"), 4);
    /* Only the keys the API knows inside payload. */
    const char *key;
    json_t *v;
    json_object_foreach(p, key, v) {
        static const char *const known[] = { "summary", "source", "severity", "timestamp",
                                             "component", "group", "class",
                                             "custom_details" };
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok)
            fail_msg("unexpected payload key %s", key);
    }
    json_decref(j);
    free(body);

    /* A warning is a trigger with severity warning and the same dedup_key. */
    sample(&n, HOOK_KIND_WARNING);
    n.percent_bp = 8000;
    body = hook_body_pagerduty(&n, "rk", NULL, &len);
    j = parse(body);
    assert_string_equal(get_s(j, "event_action"), "trigger");
    assert_string_equal(get_s(j, "dedup_key"), "slawatch/T-1042/response/0");
    p = json_object_get(j, "payload");
    assert_string_equal(get_s(p, "severity"), "warning");
    assert_string_equal(get_s(p, "source"), "slawatch");
    json_decref(j);
    free(body);

    /* The resolve: routing_key, event_action, dedup_key and nothing else. */
    sample(&n, HOOK_KIND_RESOLVE);
    n.escalation[0] = '\0';
    n.cycle = 2;
    n.metric = METRIC_RESOLUTION;
    body = hook_body_pagerduty(&n, "rk", "host-1", &len);
    j = parse(body);
    check_pd_keys(j);
    assert_int_equal(json_object_size(j), 3);
    assert_string_equal(get_s(j, "event_action"), "resolve");
    assert_string_equal(get_s(j, "routing_key"), "rk");
    assert_string_equal(get_s(j, "dedup_key"), "slawatch/T-1042/resolution/2");
    json_decref(j);
    free(body);

    /* The longest ticket id still gives a dedup_key within 255. */
    sample(&n, HOOK_KIND_BREACH);
    memset(n.ticket, 'x', TICKET_ID_MAX);
    n.ticket[TICKET_ID_MAX] = '\0';
    n.cycle = 65535;
    char key2[300];
    hook_dedup_key(&n, key2, sizeof(key2));
    assert_true(strlen(key2) <= 255);
}

static void
test_alertmanager(void **state)
{
    struct hook_note n;
    size_t len = 0;
    (void)state;
    sample(&n, HOOK_KIND_BREACH);
    char *body = hook_body_alertmanager(&n, DEADLINE_MS + 60000, &len);
    json_t *j = parse(body);
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 1);
    json_t *a = json_array_get(j, 0);
    json_t *l = json_object_get(a, "labels");
    assert_string_equal(get_s(l, "alertname"), "SLABreach");
    assert_string_equal(get_s(l, "ticket"), "T-1042");
    assert_string_equal(get_s(l, "tier"), "1h");
    assert_string_equal(get_s(l, "metric"), "response");
    assert_string_equal(get_s(l, "severity"), "critical");
    /* Every label value is a string (Alertmanager's LabelSet). */
    const char *key;
    json_t *v;
    json_object_foreach(l, key, v) assert_true(json_is_string(v));
    json_object_foreach(json_object_get(a, "annotations"), key, v)
        assert_true(json_is_string(v));
    assert_time(a, "startsAt", DEADLINE_MS);
    assert_null(json_object_get(a, "endsAt")); /* firing */
    json_decref(j);
    free(body);

    /* Resolved: endsAt, never before startsAt. */
    n.flags = HOOK_F_RESOLVING;
    n.ends_ms = DEADLINE_MS + 5000;
    body = hook_body_alertmanager(&n, DEADLINE_MS + 60000, &len);
    j = parse(body);
    a = json_array_get(j, 0);
    assert_time(a, "startsAt", DEADLINE_MS);
    assert_time(a, "endsAt", DEADLINE_MS + 5000);
    json_decref(j);
    free(body);
    n.ends_ms = 0;
    body = hook_body_alertmanager(&n, DEADLINE_MS + 60000, &len);
    j = parse(body);
    assert_time(json_array_get(j, 0), "endsAt", DEADLINE_MS + 60000);
    json_decref(j);
    free(body);

    sample(&n, HOOK_KIND_WARNING);
    n.percent_bp = 8000;
    n.at_ms = DEADLINE_MS - 720000;
    body = hook_body_alertmanager(&n, 0, &len);
    j = parse(body);
    a = json_array_get(j, 0);
    l = json_object_get(a, "labels");
    assert_string_equal(get_s(l, "alertname"), "SLAWarning");
    assert_string_equal(get_s(l, "severity"), "warning");
    assert_time(a, "startsAt", DEADLINE_MS - 720000);
    json_decref(j);
    free(body);
}

static void
test_slack(void **state)
{
    struct hook_note n;
    size_t len = 0;
    (void)state;
    sample(&n, HOOK_KIND_BREACH);
    strcpy(n.ticket, "<!channel> & T-1");
    char *body = hook_body_slack(&n, &len);
    json_t *j = parse(body);
    assert_int_equal(json_object_size(j), 1);
    const char *text = get_s(j, "text");
    assert_non_null(strstr(text, "SLA breach"));
    assert_non_null(strstr(text, "&lt;!channel&gt; &amp; T-1"));
    assert_null(strstr(text, "<!channel>"));
    assert_non_null(strstr(text, "page-oncall"));
    json_decref(j);
    free(body);
}

static void
test_hostile_ids(void **state)
{
    static const char *const tickets[] = {
        "a\"b", "back\\slash\\", "\"},{\"x\":1", "tab\there", "nl\nx\r",
        "ctl\x01\x1f\x7f", ("T\xc3\xaf" "cket-\xe2\x82\xac-\xf0\x9f\x98\x80"), "</script>",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(tickets) / sizeof(tickets[0]); i++) {
        struct hook_note n;
        size_t len;
        sample(&n, HOOK_KIND_BREACH);
        strcpy(n.ticket, tickets[i]);
        strcpy(n.attr[ATTR_AGENT], tickets[i]);
        assert_int_equal(hook_delivery_id(&n), 0);
        for (int fmt = HOOK_JSON; fmt <= HOOK_SLACK; fmt++) {
            struct hook_ctx ctx = { "rk", "src", DEADLINE_MS, NULL };
            char *body = hook_body(&n, (enum hook_format)fmt, &ctx, &len);
            json_t *j = parse(body); /* valid JSON whatever the id holds */
            assert_int_equal(len, strlen(body));
            /* The id comes back byte for byte where it is a field. */
            if (fmt == HOOK_JSON) {
                assert_string_equal(get_s(j, "ticket"), tickets[i]);
                assert_string_equal(get_s(j, "agent"), tickets[i]);
            } else if (fmt == HOOK_ALERTMANAGER) {
                json_t *l = json_object_get(json_array_get(j, 0), "labels");
                assert_string_equal(get_s(l, "ticket"), tickets[i]);
            } else if (fmt == HOOK_PAGERDUTY) {
                json_t *d = json_object_get(json_object_get(j, "payload"), "custom_details");
                assert_string_equal(get_s(d, "ticket"), tickets[i]);
            }
            json_decref(j);
            free(body);
        }
        /* No raw control character ever reaches the wire. */
        char *body = hook_body_json(&n, &len);
        for (size_t k = 0; k < len; k++)
            assert_true((unsigned char)body[k] >= 0x20);
        free(body);
    }
    /* Invalid UTF-8 is refused rather than sent broken. */
    struct hook_note n;
    size_t len;
    sample(&n, HOOK_KIND_BREACH);
    strcpy(n.ticket, "bad\xff\xfe");
    assert_null(hook_body_json(&n, &len));
    assert_null(hook_body_pagerduty(&n, "rk", "s", &len));
    assert_null(hook_body_alertmanager(&n, 0, &len));
    assert_null(hook_body_slack(&n, &len));
}

static void
test_record(void **state)
{
    struct hook_note a, b;
    const char *why;
    (void)state;
    sample(&a, HOOK_KIND_WARNING);
    a.percent_bp = 9999;
    a.cycle = 3;
    a.attempts = 4;
    a.flags = HOOK_F_COND | HOOK_F_DELIVERED;
    a.ends_ms = 77;
    strcpy(a.ticket, "q\"uote\\ \xe2\x82\xac");
    assert_int_equal(hook_delivery_id(&a), 0);
    char *rec = hook_note_encode(&a);
    assert_non_null(rec);
    assert_int_equal(hook_note_decode(&b, rec, strlen(rec), &why), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    free(rec);

    static const char *const garbage[] = {
        "", "{", "[]", "null", "{\"v\":1}", "{\"v\":2,\"id\":\"x\"}",
        "{\"v\":1,\"v\":1}",
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
        assert_int_equal(hook_note_decode(&b, garbage[i], strlen(garbage[i]), &why), -1);

    /* A valid record with one field spoiled at a time. */
    sample(&a, HOOK_KIND_BREACH);
    rec = hook_note_encode(&a);
    json_t *j = parse(rec);
    free(rec);
    static const char *const spoil[][2] = {
        { "kind", "\"explosion\"" }, { "metric", "7" }, { "ticket", "\"\"" },
        { "id", "\"abc\"" }, { "cycle", "-1" }, { "attempts", "\"x\"" },
        { "ticket", "\"ctl\\u0001\"" }, { "attrs", "[]" }, { "tier", "null" },
    };
    for (size_t i = 0; i < sizeof(spoil) / sizeof(spoil[0]); i++) {
        json_t *c = json_deep_copy(j);
        json_object_set_new(c, spoil[i][0], json_loads(spoil[i][1], JSON_DECODE_ANY, NULL));
        char *t = json_dumps(c, JSON_COMPACT);
        if (hook_note_decode(&b, t, strlen(t), &why) != -1)
            fail_msg("accepted %s = %s", spoil[i][0], spoil[i][1]);
        free(t);
        json_decref(c);
    }
    /* An over-long ticket id. */
    json_t *c = json_deep_copy(j);
    char longid[TICKET_ID_MAX + 2];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    json_object_set_new(c, "ticket", json_string(longid));
    char *t = json_dumps(c, JSON_COMPACT);
    assert_int_equal(hook_note_decode(&b, t, strlen(t), &why), -1);
    free(t);
    json_decref(c);
    json_decref(j);
}

/* A tier with a business-hours calendar: the json body also says the
 * deadline in the calendar's zone (11:00 CET for 10:00 UTC). */
static void
test_json_body_calendar(void **state)
{
    struct hook_note n;
    size_t len = 0;
    char err[128];
    (void)state;
    struct calendar *cal = cal_create("office", "Europe/Berlin", err, sizeof(err));
    assert_non_null(cal);
    assert_int_equal(cal_set_week(cal, "mon-fri", "09:00-18:00", err, sizeof(err)), 0);
    assert_int_equal(cal_finish(cal, err, sizeof(err)), 0);
    sample(&n, HOOK_KIND_BREACH);
    struct hook_ctx ctx = { NULL, NULL, 0, cal };
    char *body = hook_body(&n, HOOK_JSON, &ctx, &len);
    assert_non_null(body);
    json_t *j = parse(body);
    assert_string_equal(get_s(j, "deadline"), "2026-11-23T10:00:00.000Z");
    assert_string_equal(get_s(j, "deadline_local"), "2026-11-23T11:00:00.000+01:00");
    assert_string_equal(get_s(j, "timezone"), "Europe/Berlin");
    json_decref(j);
    free(body);
    /* 24x7: no local fields. */
    ctx.calendar = NULL;
    body = hook_body(&n, HOOK_JSON, &ctx, &len);
    j = parse(body);
    assert_null(json_object_get(j, "deadline_local"));
    json_decref(j);
    free(body);
    cal_free(cal);
}

/* ---- objective notes ---------------------------------------------------- */

#define VIOLATED_MS 1795428001234LL /* 2026-11-23T10:00:01.234Z */

static void
objective_sample(struct hook_note *n, enum hook_kind kind)
{
    memset(n, 0, sizeof(*n));
    n->objective = true;
    n->kind = kind;
    strcpy(n->webhook, "oncall");
    strcpy(n->escalation, kind == HOOK_KIND_RESOLVE ? "" : "slo-team");
    strcpy(n->tier, "1h");
    strcpy(n->window, "24h");
    n->metric = METRIC_RESPONSE;
    n->episode = 3;
    n->value_micro = 750000;
    n->threshold_micro = 900000;
    n->met = 3;
    n->breached = 1;
    n->at_ms = VIOLATED_MS;
    n->due_ms = VIOLATED_MS;
    n->created_ms = VIOLATED_MS;
    assert_int_equal(hook_delivery_id(n), 0);
}

static double
get_real(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_real(v))
        fail_msg("%s is not a real number", key);
    return json_real_value(v);
}

/* Exactly these keys, nothing else. */
static void
assert_keys(json_t *o, const char *const *keys, size_t n)
{
    assert_int_equal(json_object_size(o), n);
    for (size_t i = 0; i < n; i++)
        if (json_object_get(o, keys[i]) == NULL)
            fail_msg("missing key %s", keys[i]);
}

static void
test_objective_json(void **state)
{
    static const char *const keys[] = { "version", "kind", "delivery", "escalation",
                                        "tier", "metric", "window", "ratio",
                                        "objective", "met", "breached", "at",
                                        "episode" };
    struct hook_note n;
    size_t len = 0;
    (void)state;
    objective_sample(&n, HOOK_KIND_OBJECTIVE);
    char *body = hook_body_json(&n, &len);
    assert_non_null(body);
    assert_int_equal(len, strlen(body));
    json_t *j = parse(body);
    assert_keys(j, keys, sizeof(keys) / sizeof(keys[0]));
    assert_int_equal(get_i(j, "version"), 1);
    assert_string_equal(get_s(j, "kind"), "objective");
    assert_string_equal(get_s(j, "delivery"), n.id);
    assert_string_equal(get_s(j, "escalation"), "slo-team");
    assert_string_equal(get_s(j, "tier"), "1h");
    assert_string_equal(get_s(j, "metric"), "response");
    assert_string_equal(get_s(j, "window"), "24h");
    assert_true(get_real(j, "ratio") == 0.75);
    assert_true(get_real(j, "objective") == 0.9);
    assert_int_equal(get_i(j, "met"), 3);
    assert_int_equal(get_i(j, "breached"), 1);
    assert_time(j, "at", VIOLATED_MS);
    assert_string_equal(get_s(j, "at"), "2026-11-23T10:00:01.234Z");
    assert_int_equal(get_i(j, "episode"), 3);
    /* Numbers, written as numbers. */
    assert_non_null(strstr(body, "\"ratio\":0.75"));
    assert_non_null(strstr(body, "\"objective\":0.9"));
    json_decref(j);
    free(body);

    /* The recovery, and the edges of the ratio. */
    objective_sample(&n, HOOK_KIND_RECOVERED);
    strcpy(n.tier, "all");
    n.value_micro = 1000000;
    n.met = 40;
    n.breached = 0;
    struct hook_ctx ctx = { NULL, NULL, 0, NULL };
    body = hook_body(&n, HOOK_JSON, &ctx, &len);
    j = parse(body);
    assert_keys(j, keys, sizeof(keys) / sizeof(keys[0]));
    assert_string_equal(get_s(j, "kind"), "recovered");
    assert_string_equal(get_s(j, "tier"), "all");
    assert_true(get_real(j, "ratio") == 1.0);
    assert_int_equal(get_i(j, "met"), 40);
    assert_int_equal(get_i(j, "breached"), 0);
    assert_int_equal(get_i(j, "episode"), 3); /* the violation that ended */
    json_decref(j);
    free(body);
    n.value_micro = 333333;
    body = hook_body_json(&n, &len);
    j = parse(body);
    assert_true(get_real(j, "ratio") == 0.333333);
    json_decref(j);
    free(body);
}

/* The id, computed independently: SHA-256 over the length-prefixed fields
 * under the objective tag, first 16 bytes in hex. */
static void
expected_objective_id(const struct hook_note *n, char *out)
{
    char ep[16], metric[4];
    snprintf(ep, sizeof(ep), "%u", (unsigned)n->episode);
    snprintf(metric, sizeof(metric), "%d", n->metric);
    const char *fields[] = { "slawatch-objective-v1", hook_kind_name(n->kind), n->tier,
                             metric, n->window, ep, n->escalation, n->webhook };
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        size_t len = strlen(fields[i]);
        unsigned char hdr[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
                                 (unsigned char)(len >> 8), (unsigned char)len };
        assert_int_equal(EVP_DigestUpdate(ctx, hdr, 4), 1);
        assert_int_equal(EVP_DigestUpdate(ctx, fields[i], len), 1);
    }
    assert_int_equal(EVP_DigestFinal_ex(ctx, md, &mdlen), 1);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < HOOK_ID_LEN / 2; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static void
test_objective_id(void **state)
{
    struct hook_note a, b;
    char want[HOOK_ID_LEN + 1];
    (void)state;
    objective_sample(&a, HOOK_KIND_OBJECTIVE);
    expected_objective_id(&a, want);
    assert_string_equal(a.id, want);
    objective_sample(&b, HOOK_KIND_RESOLVE);
    expected_objective_id(&b, want);
    assert_string_equal(b.id, want);

    /* Not identity: the ratio, counts, time and delivery state (the
     * same violation, retried or re-created after a restart). */
    objective_sample(&b, HOOK_KIND_OBJECTIVE);
    b.value_micro = 1;
    b.met = 1000;
    b.breached = 7;
    b.at_ms += 60000;
    b.threshold_micro = 950000;
    b.attempts = 9;
    b.due_ms += 1;
    b.created_ms += 1;
    b.flags = HOOK_F_COND | HOOK_F_DELIVERED;
    assert_int_equal(hook_delivery_id(&b), 0);
    assert_string_equal(a.id, b.id);

    /* Identity: each of tier, metric, window, escalation, webhook, kind and
     * episode changes it. */
    char seen[10][HOOK_ID_LEN + 1];
    int nseen = 0;
    strcpy(seen[nseen++], a.id);
    for (int field = 0; field < 8; field++) {
        objective_sample(&b, HOOK_KIND_OBJECTIVE);
        switch (field) {
        case 0: strcpy(b.tier, "all"); break;
        case 1: b.metric = METRIC_RESOLUTION; break;
        case 2: strcpy(b.window, "7d"); break;
        case 3: strcpy(b.escalation, "slo-manager"); break;
        case 4: strcpy(b.webhook, "manager"); break;
        case 5: b.kind = HOOK_KIND_RECOVERED; break;
        case 6: b.episode = 4; break;
        case 7: b.kind = HOOK_KIND_RESOLVE; break;
        }
        assert_int_equal(hook_delivery_id(&b), 0);
        for (int i = 0; i < nseen; i++)
            assert_string_not_equal(b.id, seen[i]);
        strcpy(seen[nseen++], b.id);
    }
    /* Never a clock's id, even with the clock fields of a ticket. */
    sample(&b, HOOK_KIND_RECOVERED);
    strcpy(b.webhook, "oncall");
    strcpy(b.escalation, "slo-team");
    assert_int_equal(hook_delivery_id(&b), 0);
    for (int i = 0; i < nseen; i++)
        assert_string_not_equal(b.id, seen[i]);
    /* Field boundaries: tier "1h" + window "24h" is not "1h2" + "4h". */
    objective_sample(&a, HOOK_KIND_OBJECTIVE);
    objective_sample(&b, HOOK_KIND_OBJECTIVE);
    strcpy(b.tier, "1h2");
    strcpy(b.window, "4h");
    b.metric = METRIC_RESPONSE;
    assert_int_equal(hook_delivery_id(&b), 0);
    assert_string_not_equal(a.id, b.id);

    char about[HOOK_SUBJECT_LEN];
    assert_string_equal(hook_note_subject(&a, about), "objective 1h/response/24h");
    sample(&b, HOOK_KIND_BREACH);
    assert_string_equal(hook_note_subject(&b, about), "ticket T-1042");
}

static void
test_objective_alertmanager(void **state)
{
    static const char *const label_keys[] = { "alertname", "tier", "metric", "window",
                                              "severity", "escalation" };
    struct hook_note n;
    size_t len = 0;
    (void)state;
    objective_sample(&n, HOOK_KIND_OBJECTIVE);
    n.flags = HOOK_F_COND;
    char *body = hook_body_alertmanager(&n, VIOLATED_MS + 60000, &len);
    json_t *j = parse(body);
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 1);
    json_t *a = json_array_get(j, 0);
    json_t *l = json_object_get(a, "labels");
    assert_keys(l, label_keys, sizeof(label_keys) / sizeof(label_keys[0]));
    assert_string_equal(get_s(l, "alertname"), "SLAObjective");
    assert_string_equal(get_s(l, "tier"), "1h");
    assert_string_equal(get_s(l, "metric"), "response");
    assert_string_equal(get_s(l, "window"), "24h");
    assert_string_equal(get_s(l, "severity"), "critical");
    assert_string_equal(get_s(l, "escalation"), "slo-team");
    json_t *ann = json_object_get(a, "annotations");
    const char *key;
    json_t *v;
    json_object_foreach(ann, key, v) assert_true(json_is_string(v));
    assert_string_equal(get_s(ann, "ratio"), "0.75");
    assert_string_equal(get_s(ann, "objective"), "0.9");
    assert_string_equal(get_s(ann, "episode"), "3");
    assert_string_equal(get_s(ann, "delivery"), n.id);
    assert_string_equal(get_s(ann, "summary"),
                        "SLA objective: tier 1h response compliance over 24h is 0.75 "
                        "(3 met, 1 breached), below the objective 0.9");
    assert_time(a, "startsAt", VIOLATED_MS); /* the violation */
    assert_null(json_object_get(a, "endsAt"));
    assert_null(json_object_get(l, "ticket"));
    json_decref(j);
    free(body);

    /* Recovered: the same alert with endsAt, never before startsAt. */
    n.flags |= HOOK_F_DELIVERED | HOOK_F_RESOLVING;
    n.ends_ms = VIOLATED_MS + 5000;
    body = hook_body_alertmanager(&n, VIOLATED_MS + 60000, &len);
    j = parse(body);
    a = json_array_get(j, 0);
    assert_string_equal(get_s(json_object_get(a, "labels"), "alertname"), "SLAObjective");
    assert_time(a, "startsAt", VIOLATED_MS);
    assert_time(a, "endsAt", VIOLATED_MS + 5000);
    json_decref(j);
    free(body);
    n.ends_ms = VIOLATED_MS - 1000;
    body = hook_body_alertmanager(&n, 0, &len);
    j = parse(body);
    assert_time(json_array_get(j, 0), "endsAt", VIOLATED_MS);
    json_decref(j);
    free(body);
    n.ends_ms = 0;
    body = hook_body_alertmanager(&n, VIOLATED_MS + 60000, &len);
    j = parse(body);
    assert_time(json_array_get(j, 0), "endsAt", VIOLATED_MS + 60000);
    json_decref(j);
    free(body);
}

static void
test_objective_pagerduty(void **state)
{
    struct hook_note n;
    size_t len = 0;
    (void)state;
    objective_sample(&n, HOOK_KIND_OBJECTIVE);
    char *body = hook_body_pagerduty(&n, "rk", "host-1", &len);
    json_t *j = parse(body);
    check_pd_keys(j);
    assert_string_equal(get_s(j, "routing_key"), "rk");
    assert_string_equal(get_s(j, "event_action"), "trigger");
    assert_string_equal(get_s(j, "dedup_key"), "slawatch/objective/1h/response/24h/3");
    assert_string_equal(get_s(j, "client"), "slawatch");
    json_t *p = json_object_get(j, "payload");
    static const char *const payload_keys[] = { "summary", "source", "severity", "timestamp",
                                                "component", "group", "class",
                                                "custom_details" };
    assert_keys(p, payload_keys, sizeof(payload_keys) / sizeof(payload_keys[0]));
    assert_non_null(strstr(get_s(p, "summary"), "below the objective 0.9"));
    assert_string_equal(get_s(p, "source"), "host-1");
    assert_string_equal(get_s(p, "severity"), "critical");
    assert_time(p, "timestamp", VIOLATED_MS);
    assert_string_equal(get_s(p, "component"), "response");
    assert_string_equal(get_s(p, "group"), "1h");
    assert_string_equal(get_s(p, "class"), "sla objective");
    json_t *d = json_object_get(p, "custom_details");
    assert_string_equal(get_s(d, "kind"), "objective");
    assert_string_equal(get_s(d, "tier"), "1h");
    assert_string_equal(get_s(d, "metric"), "response");
    assert_string_equal(get_s(d, "window"), "24h");
    assert_true(get_real(d, "ratio") == 0.75);
    assert_true(get_real(d, "objective") == 0.9);
    assert_int_equal(get_i(d, "met"), 3);
    assert_int_equal(get_i(d, "breached"), 1);
    assert_int_equal(get_i(d, "episode"), 3);
    assert_string_equal(get_s(d, "escalation"), "slo-team");
    assert_string_equal(get_s(d, "delivery"), n.id);
    assert_null(json_object_get(d, "ticket"));
    json_decref(j);
    free(body);

    /* The resolve: three keys, the same dedup_key. */
    for (int k = 0; k < 2; k++) {
        objective_sample(&n, k ? HOOK_KIND_RECOVERED : HOOK_KIND_RESOLVE);
        body = hook_body_pagerduty(&n, "rk", "host-1", &len);
        j = parse(body);
        check_pd_keys(j);
        assert_int_equal(json_object_size(j), 3);
        assert_string_equal(get_s(j, "event_action"), "resolve");
        assert_string_equal(get_s(j, "dedup_key"), "slawatch/objective/1h/response/24h/3");
        json_decref(j);
        free(body);
    }
    /* A later violation of the series is another alert. */
    n.episode = 4;
    strcpy(n.tier, "all");
    n.metric = METRIC_RESOLUTION;
    char key[300];
    hook_dedup_key(&n, key, sizeof(key));
    assert_string_equal(key, "slawatch/objective/all/resolution/24h/4");
    /* The longest names stay within PagerDuty's 255. */
    memset(n.tier, 't', HOOK_NAME_MAX);
    n.tier[HOOK_NAME_MAX] = '\0';
    memset(n.window, 'w', HOOK_NAME_MAX);
    n.window[HOOK_NAME_MAX] = '\0';
    n.episode = UINT32_MAX;
    hook_dedup_key(&n, key, sizeof(key));
    assert_true(strlen(key) <= 255);
}

static void
test_objective_slack(void **state)
{
    struct hook_note n;
    size_t len = 0;
    (void)state;
    objective_sample(&n, HOOK_KIND_OBJECTIVE);
    char *body = hook_body_slack(&n, &len);
    json_t *j = parse(body);
    assert_int_equal(json_object_size(j), 1);
    assert_string_equal(get_s(j, "text"),
                        "SLA objective: tier 1h response compliance over 24h is 0.75 "
                        "(3 met, 1 breached), below the objective 0.9 (escalation slo-team)");
    json_decref(j);
    free(body);
    objective_sample(&n, HOOK_KIND_RECOVERED);
    strcpy(n.tier, "all");
    n.value_micro = 912500;
    n.met = 73;
    n.breached = 7;
    body = hook_body_slack(&n, &len);
    j = parse(body);
    assert_string_equal(get_s(j, "text"),
                        "SLA objective recovered: all tiers response compliance over 24h "
                        "is 0.9125 (73 met, 7 breached), back at or above the objective "
                        "0.9 (escalation slo-team)");
    json_decref(j);
    free(body);
    /* Markup from a doctored record is escaped. */
    strcpy(n.tier, "<!channel>");
    body = hook_body_slack(&n, &len);
    j = parse(body);
    assert_null(strstr(get_s(j, "text"), "<!channel>"));
    assert_non_null(strstr(get_s(j, "text"), "&lt;!channel&gt;"));
    json_decref(j);
    free(body);
}

static void
test_objective_record(void **state)
{
    struct hook_note a, b;
    const char *why;
    (void)state;
    static const enum hook_kind kinds[] = { HOOK_KIND_OBJECTIVE, HOOK_KIND_RECOVERED,
                                            HOOK_KIND_RESOLVE };
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        objective_sample(&a, kinds[k]);
        a.attempts = 2;
        a.flags = HOOK_F_COND | HOOK_F_DELIVERED | HOOK_F_RESOLVING;
        a.ends_ms = VIOLATED_MS + 9;
        a.met = (uint64_t)1 << 40;
        a.episode = UINT32_MAX;
        char *rec = hook_note_encode(&a);
        assert_non_null(rec);
        assert_int_equal(hook_note_decode(&b, rec, strlen(rec), &why), 0);
        assert_memory_equal(&a, &b, sizeof(a));
        free(rec);
    }
    /* A clock's record does not grow the objective's fields. */
    sample(&a, HOOK_KIND_BREACH);
    char *rec = hook_note_encode(&a);
    assert_null(strstr(rec, "subject"));
    assert_null(strstr(rec, "window"));
    free(rec);

    /* One field spoiled at a time. */
    objective_sample(&a, HOOK_KIND_OBJECTIVE);
    rec = hook_note_encode(&a);
    json_t *j = parse(rec);
    free(rec);
    static const char *const spoil[][2] = {
        { "subject", "\"clock\"" },  { "subject", "1" },         { "ticket", "\"T-1\"" },
        { "window", "\"\"" },        { "window", "null" },        { "episode", "-1" },
        { "episode", "4294967296" }, { "ratio_micro", "1000001" }, { "objective_micro", "-1" },
        { "met", "-1" },             { "breached", "\"1\"" },     { "kind", "\"breach\"" },
        { "kind", "\"warning\"" },
    };
    for (size_t i = 0; i < sizeof(spoil) / sizeof(spoil[0]); i++) {
        json_t *c = json_deep_copy(j);
        json_object_set_new(c, spoil[i][0], json_loads(spoil[i][1], JSON_DECODE_ANY, NULL));
        char *t = json_dumps(c, JSON_COMPACT);
        if (hook_note_decode(&b, t, strlen(t), &why) != -1)
            fail_msg("accepted %s = %s", spoil[i][0], spoil[i][1]);
        free(t);
        json_decref(c);
    }
    /* Without its subject an objective record is a clock's without a
     * ticket: refused too. */
    json_t *c = json_deep_copy(j);
    json_object_del(c, "subject");
    char *t = json_dumps(c, JSON_COMPACT);
    assert_int_equal(hook_note_decode(&b, t, strlen(t), &why), -1);
    free(t);
    json_decref(c);
    /* And a clock record claiming kind objective. */
    sample(&a, HOOK_KIND_BREACH);
    rec = hook_note_encode(&a);
    json_t *k = parse(rec);
    free(rec);
    json_object_set_new(k, "kind", json_string("objective"));
    t = json_dumps(k, JSON_COMPACT);
    assert_int_equal(hook_note_decode(&b, t, strlen(t), &why), -1);
    free(t);
    json_decref(k);
    json_decref(j);
}

/* ---- named objectives ------------------------------------------------------ */

/* answered-in-24h (response, min 0.9) or, with kpi, reopens (reopen_rate,
 * max 0.05) over tier 1h and 24h, in its third violation. */
static void
named_sample(struct hook_note *n, enum hook_kind kind, bool kpi)
{
    objective_sample(n, kind);
    if (kpi) {
        strcpy(n->name, "reopens");
        n->is_kpi = true;
        n->kpi = CMP_KPI_REOPEN_RATE;
        n->metric = 0;
        n->max = true;
        n->value_micro = 80000;
        n->threshold_micro = 50000;
        n->met = n->breached = 0;
    } else {
        strcpy(n->name, "answered-in-24h");
    }
    assert_int_equal(hook_delivery_id(n), 0);
}

static void
test_named_json(void **state)
{
    static const char *const ratio_keys[] = { "version", "kind", "delivery", "escalation",
                                              "name", "metric", "tier", "window", "value",
                                              "threshold", "direction", "met", "breached",
                                              "at", "episode" };
    static const char *const kpi_keys[] = { "version", "kind", "delivery", "escalation",
                                            "name", "kpi", "tier", "window", "value",
                                            "threshold", "direction", "at", "episode" };
    struct hook_note n;
    size_t len = 0;
    (void)state;
    named_sample(&n, HOOK_KIND_OBJECTIVE, false);
    char *body = hook_body_json(&n, &len);
    json_t *j = parse(body);
    assert_keys(j, ratio_keys, sizeof(ratio_keys) / sizeof(ratio_keys[0]));
    assert_string_equal(get_s(j, "kind"), "objective");
    assert_string_equal(get_s(j, "delivery"), n.id);
    assert_string_equal(get_s(j, "name"), "answered-in-24h");
    assert_string_equal(get_s(j, "metric"), "response");
    assert_string_equal(get_s(j, "tier"), "1h");
    assert_string_equal(get_s(j, "window"), "24h");
    assert_true(get_real(j, "value") == 0.75);
    assert_true(get_real(j, "threshold") == 0.9);
    assert_string_equal(get_s(j, "direction"), "min");
    assert_int_equal(get_i(j, "met"), 3);
    assert_int_equal(get_i(j, "breached"), 1);
    assert_time(j, "at", VIOLATED_MS);
    assert_int_equal(get_i(j, "episode"), 3);
    json_decref(j);
    free(body);

    named_sample(&n, HOOK_KIND_RECOVERED, true);
    n.value_micro = 4800000; /* any scale: a csat_mean would read 4.8 */
    body = hook_body_json(&n, &len);
    j = parse(body);
    assert_keys(j, kpi_keys, sizeof(kpi_keys) / sizeof(kpi_keys[0]));
    assert_string_equal(get_s(j, "kind"), "recovered");
    assert_string_equal(get_s(j, "name"), "reopens");
    assert_string_equal(get_s(j, "kpi"), "reopen_rate");
    assert_true(get_real(j, "value") == 4.8);
    assert_true(get_real(j, "threshold") == 0.05);
    assert_string_equal(get_s(j, "direction"), "max");
    json_decref(j);
    free(body);
}

static void
test_named_other_formats(void **state)
{
    struct hook_note n;
    size_t len = 0;
    char key[300];
    (void)state;

    /* Alertmanager: the name is a label, so two objectives over one series
     * are two alerts. */
    named_sample(&n, HOOK_KIND_OBJECTIVE, true);
    char *body = hook_body_alertmanager(&n, VIOLATED_MS, &len);
    json_t *j = parse(body);
    json_t *a = json_array_get(j, 0), *l = json_object_get(a, "labels");
    static const char *const label_keys[] = { "alertname", "objective", "tier", "kpi",
                                              "window", "severity", "escalation" };
    assert_keys(l, label_keys, sizeof(label_keys) / sizeof(label_keys[0]));
    assert_string_equal(get_s(l, "objective"), "reopens");
    assert_string_equal(get_s(l, "kpi"), "reopen_rate");
    json_t *ann = json_object_get(a, "annotations");
    assert_string_equal(get_s(ann, "value"), "0.08");
    assert_string_equal(get_s(ann, "threshold"), "0.05");
    assert_string_equal(get_s(ann, "direction"), "max");
    assert_string_equal(get_s(ann, "summary"),
                        "SLA objective reopens: tier 1h reopen_rate over 24h is 0.08, "
                        "above its max 0.05");
    assert_null(json_object_get(ann, "ratio"));
    json_decref(j);
    free(body);

    /* PagerDuty: its own dedup key, with the name and the measure. */
    named_sample(&n, HOOK_KIND_OBJECTIVE, false);
    body = hook_body_pagerduty(&n, "rk", "host-1", &len);
    j = parse(body);
    assert_string_equal(get_s(j, "dedup_key"),
                        "slawatch/objective/answered-in-24h/1h/response/24h/3");
    json_t *p = json_object_get(j, "payload");
    assert_string_equal(get_s(p, "summary"),
                        "SLA objective answered-in-24h: tier 1h response compliance over "
                        "24h is 0.75 (3 met, 1 breached), below its min 0.9");
    assert_string_equal(get_s(p, "component"), "response");
    json_t *d = json_object_get(p, "custom_details");
    assert_string_equal(get_s(d, "name"), "answered-in-24h");
    assert_string_equal(get_s(d, "metric"), "response");
    assert_true(get_real(d, "value") == 0.75);
    assert_true(get_real(d, "threshold") == 0.9);
    assert_string_equal(get_s(d, "direction"), "min");
    assert_int_equal(get_i(d, "met"), 3);
    json_decref(j);
    free(body);
    named_sample(&n, HOOK_KIND_RESOLVE, false);
    body = hook_body_pagerduty(&n, "rk", "host-1", &len);
    j = parse(body);
    assert_int_equal(json_object_size(j), 3);
    assert_string_equal(get_s(j, "event_action"), "resolve");
    assert_string_equal(get_s(j, "dedup_key"),
                        "slawatch/objective/answered-in-24h/1h/response/24h/3");
    json_decref(j);
    free(body);
    named_sample(&n, HOOK_KIND_OBJECTIVE, true);
    hook_dedup_key(&n, key, sizeof(key));
    assert_string_equal(key, "slawatch/objective/reopens/1h/reopen_rate/24h/3");
    /* The longest names stay within PagerDuty's 255. */
    memset(n.name, 'n', HOOK_NAME_MAX);
    n.name[HOOK_NAME_MAX] = '\0';
    memset(n.tier, 't', HOOK_NAME_MAX);
    n.tier[HOOK_NAME_MAX] = '\0';
    memset(n.window, 'w', HOOK_NAME_MAX);
    n.window[HOOK_NAME_MAX] = '\0';
    n.kpi = CMP_KPI_REOPEN_RATE;
    n.episode = UINT32_MAX;
    hook_dedup_key(&n, key, sizeof(key));
    assert_true(strlen(key) <= 255);

    /* Slack. */
    named_sample(&n, HOOK_KIND_RECOVERED, true);
    n.value_micro = 40000;
    strcpy(n.tier, "all");
    body = hook_body_slack(&n, &len);
    j = parse(body);
    assert_string_equal(get_s(j, "text"),
                        "SLA objective reopens recovered: all tiers reopen_rate over 24h is "
                        "0.04, back at or below its max 0.05 (escalation slo-team)");
    json_decref(j);
    free(body);
    named_sample(&n, HOOK_KIND_RECOVERED, false);
    n.value_micro = 950000;
    body = hook_body_slack(&n, &len);
    j = parse(body);
    assert_string_equal(get_s(j, "text"),
                        "SLA objective answered-in-24h recovered: tier 1h response "
                        "compliance over 24h is 0.95 (3 met, 1 breached), back at or above "
                        "its min 0.9 (escalation slo-team)");
    json_decref(j);
    free(body);
    char about[HOOK_SUBJECT_LEN];
    assert_string_equal(hook_note_subject(&n, about),
                        "objective answered-in-24h 1h/response/24h");
}

/* Ids: the name and the measure are identity; the shorthand's ids are
 * those of before (test_objective_id pins them). */
static void
test_named_id(void **state)
{
    struct hook_note a, b, c;
    (void)state;
    objective_sample(&a, HOOK_KIND_OBJECTIVE);
    named_sample(&b, HOOK_KIND_OBJECTIVE, false);
    assert_string_not_equal(a.id, b.id);
    named_sample(&c, HOOK_KIND_OBJECTIVE, false);
    strcpy(c.name, "answered-in-1h");
    assert_int_equal(hook_delivery_id(&c), 0);
    assert_string_not_equal(b.id, c.id);
    named_sample(&c, HOOK_KIND_OBJECTIVE, false);
    c.metric = METRIC_RESOLUTION;
    assert_int_equal(hook_delivery_id(&c), 0);
    assert_string_not_equal(b.id, c.id);
    named_sample(&c, HOOK_KIND_OBJECTIVE, true);
    strcpy(c.name, "answered-in-24h");
    assert_int_equal(hook_delivery_id(&c), 0);
    assert_string_not_equal(b.id, c.id);
    /* Not identity: value, threshold, direction. */
    named_sample(&c, HOOK_KIND_OBJECTIVE, false);
    c.value_micro = 1;
    c.threshold_micro = 2;
    c.max = true;
    assert_int_equal(hook_delivery_id(&c), 0);
    assert_string_equal(b.id, c.id);
}

/* Named objectives' outbox records round-trip, and a spoiled one is
 * refused; the shorthand's record has no named field. */
static void
test_named_record(void **state)
{
    struct hook_note a, b;
    const char *why;
    (void)state;
    static const enum hook_kind kinds[] = { HOOK_KIND_OBJECTIVE, HOOK_KIND_RECOVERED,
                                            HOOK_KIND_RESOLVE };
    for (int kpi = 0; kpi < 2; kpi++)
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            named_sample(&a, kinds[k], kpi);
            a.attempts = 3;
            a.flags = HOOK_F_COND | HOOK_F_DELIVERED;
            a.value_micro = kpi ? INT64_C(250000000) : 750000; /* a count of 250 fits */
            char *rec = hook_note_encode(&a);
            assert_non_null(rec);
            assert_non_null(strstr(rec, "\"name\":"));
            assert_null(strstr(rec, "ratio_micro"));
            assert_int_equal(hook_note_decode(&b, rec, strlen(rec), &why), 0);
            assert_memory_equal(&a, &b, sizeof(a));
            free(rec);
        }
    objective_sample(&a, HOOK_KIND_OBJECTIVE);
    char *rec = hook_note_encode(&a);
    assert_null(strstr(rec, "\"name\""));
    assert_null(strstr(rec, "value_micro"));
    assert_null(strstr(rec, "direction"));
    free(rec);

    named_sample(&a, HOOK_KIND_OBJECTIVE, true);
    rec = hook_note_encode(&a);
    json_t *j = parse(rec);
    free(rec);
    static const char *const spoil[][2] = {
        { "name", "\"\"" },           { "name", "3" },
        { "kpi", "\"nps\"" },         { "kpi", "null" },
        { "direction", "\"over\"" },  { "direction", "null" },
        { "value_micro", "-1" },      { "value_micro", "\"1\"" },
        { "threshold_micro", "1e30" }, { "threshold_micro", "null" },
    };
    for (size_t i = 0; i < sizeof(spoil) / sizeof(spoil[0]); i++) {
        json_t *c = json_deep_copy(j);
        json_object_set_new(c, spoil[i][0], json_loads(spoil[i][1], JSON_DECODE_ANY, NULL));
        char *t = json_dumps(c, JSON_COMPACT);
        if (hook_note_decode(&b, t, strlen(t), &why) != -1)
            fail_msg("accepted %s = %s", spoil[i][0], spoil[i][1]);
        free(t);
        json_decref(c);
    }
    /* Without kpi it is an SLA ratio objective. */
    json_object_del(j, "kpi");
    char *t = json_dumps(j, JSON_COMPACT);
    assert_int_equal(hook_note_decode(&b, t, strlen(t), &why), 0);
    assert_false(b.is_kpi);
    assert_string_equal(b.name, "reopens");
    free(t);
    json_decref(j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_body),
        cmocka_unit_test(test_json_body_calendar),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_delivery_id),
        cmocka_unit_test(test_pagerduty),
        cmocka_unit_test(test_alertmanager),
        cmocka_unit_test(test_slack),
        cmocka_unit_test(test_hostile_ids),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_objective_json),
        cmocka_unit_test(test_objective_id),
        cmocka_unit_test(test_objective_alertmanager),
        cmocka_unit_test(test_objective_pagerduty),
        cmocka_unit_test(test_objective_slack),
        cmocka_unit_test(test_objective_record),
        cmocka_unit_test(test_named_json),
        cmocka_unit_test(test_named_other_formats),
        cmocka_unit_test(test_named_id),
        cmocka_unit_test(test_named_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
