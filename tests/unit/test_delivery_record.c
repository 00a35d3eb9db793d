/* The outbox record decoder and the body formatters against records that
 * did not come from this daemon: tests/unit/fixtures/
 * hook_record_deadline_int64_min.json (found by fuzzing: deadline_ms =
 * INT64_MIN overflowed ts_format through time_str) and the edges of every
 * number a record carries. Under the sanitizer build (make test
 * SANITIZE=1) any overflow on the way aborts the test. */
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

#include "slawatch/hook_format.h"

/* The fixture, read from next to this source file. */
static char *
fixture(const char *name, size_t *len)
{
    char path[1024];
    const char *slash = strrchr(__FILE__, '/');
    int dir = slash ? (int)(slash - __FILE__) : 1;
    snprintf(path, sizeof(path), "%.*s/fixtures/%s", dir, slash ? __FILE__ : ".", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *buf = malloc(65536);
    assert_non_null(buf);
    *len = fread(buf, 1, 65535, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* The fixture with one integer field replaced. */
static char *
with_field(const char *text, const char *key, json_int_t value)
{
    json_error_t err;
    json_t *o = json_loads(text, 0, &err);
    assert_non_null(o);
    assert_int_equal(json_object_set_new(o, key, json_integer(value)), 0);
    char *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    assert_non_null(out);
    return out;
}

static int
decode_text(const char *text, struct hook_note *n, const char **why)
{
    return hook_note_decode(n, text, strlen(text), why);
}

/* Every body of every format, for a note; each must be JSON whose times
 * are RFC 3339 with a four-digit year. */
static void
all_bodies(const struct hook_note *n)
{
    static const enum hook_format fmts[] = { HOOK_JSON, HOOK_ALERTMANAGER, HOOK_PAGERDUTY,
                                             HOOK_SLACK };
    struct hook_ctx ctx = { "rk", "host-1", 1796151600346LL, NULL };
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        size_t len = 0;
        char *body = hook_body(n, fmts[i], &ctx, &len);
        assert_non_null(body);
        assert_int_equal(strlen(body), len);
        json_error_t err;
        json_t *j = json_loads(body, 0, &err);
        if (j == NULL)
            fail_msg("format %d: not JSON: %s", (int)fmts[i], body);
        json_decref(j);
        free(body);
    }
    size_t len;
    char *b = hook_body_json(n, &len);
    assert_non_null(b);
    free(b);
    b = hook_body_alertmanager(n, 0, &len);
    assert_non_null(b);
    free(b);
    b = hook_body_pagerduty(n, "rk", NULL, &len);
    assert_non_null(b);
    free(b);
    b = hook_body_slack(n, &len);
    assert_non_null(b);
    free(b);
}

static void
test_fixture_is_refused(void **state)
{
    (void)state;
    size_t len;
    char *text = fixture("hook_record_deadline_int64_min.json", &len);
    struct hook_note n;
    const char *why = NULL;
    assert_int_equal(hook_note_decode(&n, text, len, &why), -1);
    assert_string_equal(why, "time out of range");

    /* The same record with a deadline that can be written is accepted,
     * and its bodies build. */
    char *fixed = with_field(text, "deadline_ms", 1796151600340LL);
    assert_int_equal(decode_text(fixed, &n, &why), 0);
    assert_int_equal(n.deadline_ms, 1796151600340LL);
    all_bodies(&n);
    free(fixed);
    free(text);
}

static void
test_time_edges(void **state)
{
    (void)state;
    size_t len;
    char *text = fixture("hook_record_deadline_int64_min.json", &len);
    static const char *const times[] = { "opened_ms", "deadline_ms", "at_ms" };
    struct hook_note n;
    const char *why;
    for (size_t i = 0; i < 3; i++) {
        static const json_int_t bad[] = { INT64_MIN, HOOK_TIME_MIN_MS - 1, HOOK_TIME_MAX_MS + 1,
                                          INT64_MAX };
        for (size_t k = 0; k < 4; k++) {
            char *t = with_field(text, "deadline_ms", 1796151600340LL);
            char *r = with_field(t, times[i], bad[k]);
            if (decode_text(r, &n, &why) != -1)
                fail_msg("%s = %lld accepted", times[i], (long long)bad[k]);
            free(r);
            free(t);
        }
        char *t = with_field(text, "deadline_ms", 1796151600340LL);
        char *r = with_field(t, times[i], HOOK_TIME_MAX_MS);
        assert_int_equal(decode_text(r, &n, &why), 0);
        all_bodies(&n);
        free(r);
        r = with_field(t, times[i], HOOK_TIME_MIN_MS);
        assert_int_equal(decode_text(r, &n, &why), 0);
        all_bodies(&n);
        free(r);
        r = with_field(t, times[i], 0);
        assert_int_equal(decode_text(r, &n, &why), 0);
        all_bodies(&n);
        free(r);
        free(t);
    }
    char *t = with_field(text, "deadline_ms", 1796151600340LL);
    char *r = with_field(t, "late_ms", INT64_MIN);
    assert_int_equal(decode_text(r, &n, &why), -1);
    free(r);
    /* The delivery state comes back as written, whatever it is: deliver.c
     * range-checks it against its own clock (due now, given up). */
    static const char *const state_keys[] = { "due_ms", "created_ms", "ends_ms" };
    for (size_t i = 0; i < 3; i++) {
        r = with_field(t, state_keys[i], INT64_MAX);
        assert_int_equal(decode_text(r, &n, &why), 0);
        free(r);
        r = with_field(t, state_keys[i], INT64_MIN);
        assert_int_equal(decode_text(r, &n, &why), 0);
        free(r);
    }
    assert_int_equal(n.ends_ms, INT64_MIN);
    r = with_field(t, "attempts", HOOK_ATTEMPTS_MAX + 1);
    assert_int_equal(decode_text(r, &n, &why), -1);
    free(r);
    r = with_field(t, "attempts", -1);
    assert_int_equal(decode_text(r, &n, &why), -1);
    free(r);
    free(t);
    free(text);
}

/* Notes built in memory with absurd times (never from the decoder, which
 * refuses them) still format, clamped to the years 0000 .. 9999. */
static void
test_formatters_clamp(void **state)
{
    (void)state;
    size_t len;
    char *text = fixture("hook_record_deadline_int64_min.json", &len);
    char *t = with_field(text, "deadline_ms", 1796151600340LL);
    struct hook_note n;
    const char *why;
    assert_int_equal(decode_text(t, &n, &why), 0);
    n.deadline_ms = INT64_MIN;
    n.opened_ms = INT64_MIN;
    n.at_ms = INT64_MAX;
    n.ends_ms = INT64_MAX;
    n.flags |= HOOK_F_RESOLVING;
    all_bodies(&n);
    char *body = hook_body_json(&n, &len);
    assert_non_null(body);
    json_error_t err;
    json_t *j = json_loads(body, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "deadline")),
                        "0000-01-01T00:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "at")),
                        "9999-12-31T23:59:59.999Z");
    json_decref(j);
    free(body);
    /* The same for an objective note. */
    memset(&n, 0, sizeof(n));
    n.kind = HOOK_KIND_OBJECTIVE;
    n.objective = true;
    strcpy(n.webhook, "w");
    strcpy(n.escalation, "e");
    strcpy(n.tier, "all");
    strcpy(n.window, "24h");
    n.at_ms = INT64_MIN;
    n.ends_ms = INT64_MIN;
    assert_int_equal(hook_delivery_id(&n), 0);
    all_bodies(&n);
    free(t);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_is_refused),
        cmocka_unit_test(test_time_edges),
        cmocka_unit_test(test_formatters_clamp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
