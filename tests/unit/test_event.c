/* Unit tests for event validation (SPEC section 3): every rejection reason,
 * timestamps in both formats, defaults from the entry ID, utility parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "slawatch/core.h"

#define NOW 1795000000000LL
#define SKEW 300000LL

static struct ev_field fields[16];
static size_t nfields;

static void
reset(void)
{
    nfields = 0;
}

static void
add(const char *name, const char *value)
{
    fields[nfields].name = name;
    fields[nfields].name_len = strlen(name);
    fields[nfields].value = value;
    fields[nfields].value_len = strlen(value);
    nfields++;
}

static const char *
parse(struct sla_event *ev)
{
    const char *reason = NULL;
    if (event_parse(ev, fields, nfields, NOW - 1000, NOW, SKEW, &reason) == 0)
        return NULL;
    assert_non_null(reason);
    return reason;
}

static void
test_valid_minimal(void **state)
{
    (void)state;
    struct sla_event ev;
    reset();
    add("type", "opened");
    add("ticket", "T-1");
    assert_null(parse(&ev));
    assert_int_equal(ev.type, EVT_OPENED);
    assert_int_equal(ev.ticket_len, 3);
    assert_memory_equal(ev.ticket, "T-1", 3);
    assert_int_equal(ev.ts_ms, NOW - 1000); /* the entry ID's time */
    assert_null(ev.tier);
    for (int a = 0; a < ATTR_COUNT; a++)
        assert_null(ev.attr[a]);
}

static void
test_attributes_and_unknown_fields(void **state)
{
    (void)state;
    struct sla_event ev;
    reset();
    add("type", "updated");
    add("ticket", "T-1");
    add("priority", "high");
    add("channel", "phone");
    add("queue", "billing");
    add("agent", "");
    add("customer", "ACME");
    add("tier", "1h");
    add("color", "blue"); /* not ours: ignored */
    assert_null(parse(&ev));
    assert_int_equal(ev.type, EVT_UPDATED);
    assert_memory_equal(ev.attr[ATTR_PRIORITY], "high", 4);
    assert_memory_equal(ev.attr[ATTR_CHANNEL], "phone", 5);
    assert_memory_equal(ev.attr[ATTR_QUEUE], "billing", 7);
    assert_non_null(ev.attr[ATTR_AGENT]);
    assert_int_equal(ev.attr_len[ATTR_AGENT], 0);
    assert_memory_equal(ev.attr[ATTR_CUSTOMER], "ACME", 4);
    assert_int_equal(ev.tier_len, 2);
}

static void
test_every_type(void **state)
{
    (void)state;
    static const char *types[] = { "opened", "responded", "paused", "resumed",
                                   "resolved", "reopened", "closed", "deleted",
                                   "updated" };
    for (int i = 0; i < 9; i++) {
        struct sla_event ev;
        reset();
        add("type", types[i]);
        add("ticket", "x");
        assert_null(parse(&ev));
        assert_int_equal(ev.type, i);
        assert_string_equal(event_type_name(ev.type), types[i]);
    }
}

static void
test_rejections(void **state)
{
    (void)state;
    struct sla_event ev;
    char long_ticket[200], long_attr[400];
    memset(long_ticket, 'a', sizeof(long_ticket) - 1);
    long_ticket[sizeof(long_ticket) - 1] = '\0';
    memset(long_attr, 'b', sizeof(long_attr) - 1);
    long_attr[sizeof(long_attr) - 1] = '\0';

    reset();
    add("ticket", "T");
    assert_string_equal(parse(&ev), "missing type");

    reset();
    add("type", "Opened"); /* case-sensitive */
    add("ticket", "T");
    assert_string_equal(parse(&ev), "unknown type");

    reset();
    add("type", "opened");
    assert_string_equal(parse(&ev), "missing ticket");

    reset();
    add("type", "opened");
    add("ticket", "");
    assert_string_equal(parse(&ev), "bad ticket");

    reset();
    add("type", "opened");
    add("ticket", "T\n1");
    assert_string_equal(parse(&ev), "bad ticket");

    reset();
    add("type", "opened");
    add("ticket", "T\xff");
    assert_string_equal(parse(&ev), "bad ticket");

    reset();
    add("type", "opened");
    add("ticket", long_ticket);
    assert_string_equal(parse(&ev), "field too long");

    reset();
    add("type", "opened");
    add("ticket", "T");
    add("priority", long_attr);
    assert_string_equal(parse(&ev), "field too long");

    reset();
    add("type", "opened");
    add("ticket", "T");
    add("ts", "yesterday");
    assert_string_equal(parse(&ev), "bad ts");

    reset();
    add("type", "opened");
    add("ticket", "T");
    add("ts", "2026-02-30T10:00:00Z");
    assert_string_equal(parse(&ev), "bad ts");

    reset();
    add("type", "opened");
    add("ticket", "T");
    add("ts", "1795000400000"); /* 400 s ahead, skew is 300 s */
    assert_string_equal(parse(&ev), "ts in the future");
}

static void
test_ticket_limits(void **state)
{
    (void)state;
    struct sla_event ev;
    char ticket[129];
    memset(ticket, 'z', 128);
    ticket[128] = '\0';
    reset();
    add("type", "opened");
    add("ticket", ticket); /* exactly 128 bytes */
    assert_null(parse(&ev));
    reset();
    add("type", "opened");
    add("ticket", "Заявка-№7"); /* UTF-8 is fine */
    assert_null(parse(&ev));
}

static void
test_timestamps(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(ts_parse("1795000000123", 13, &ms), 0);
    assert_int_equal(ms, 1795000000123LL);
    const char *s = "2026-11-23T10:00:00.004Z";
    assert_int_equal(ts_parse(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 1795428000004LL);
    s = "2026-11-23T18:00:00.004+08:00";
    assert_int_equal(ts_parse(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 1795428000004LL);
    s = "2026-11-23t10:00:00z";
    assert_int_equal(ts_parse(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 1795428000000LL);
    s = "2026-11-23T10:00:00.123456789Z"; /* truncated to ms */
    assert_int_equal(ts_parse(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 1795428000123LL);
    s = "2028-02-29T00:00:00Z";
    assert_int_equal(ts_parse(s, strlen(s), &ms), 0);
    static const char *bad[] = { "", "2026-11-23", "2026-11-23T10:00:00",
                                 "2026-13-01T00:00:00Z", "2027-02-29T00:00:00Z",
                                 "2026-11-23T24:00:00Z", "2026-11-23T10:00:00.Z",
                                 "2026-11-23T10:00:00+0800", "-5", "12ab",
                                 "2026-11-23T10:00:00Zjunk",
                                 "99999999999999999999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ts_parse(bad[i], strlen(bad[i]), &ms), -1);
    char buf[TS_BUFLEN];
    assert_string_equal(ts_format(1795428000004LL, buf), "2026-11-23T10:00:00.004Z");
    assert_string_equal(ts_format(0, buf), "1970-01-01T00:00:00.000Z");
}

/* The range of instants (util.h TS_MIN_MS..TS_MAX_MS): ts_format clamps
 * any int64 to it, ts_parse and event_parse refuse anything past it. */
static void
test_time_range(void **state)
{
    (void)state;
    char buf[TS_BUFLEN];
    int64_t ms;
    assert_string_equal(ts_format(INT64_MIN, buf), "0000-01-01T00:00:00.000Z");
    assert_string_equal(ts_format(INT64_MIN + 1, buf), "0000-01-01T00:00:00.000Z");
    assert_string_equal(ts_format(TS_MIN_MS, buf), "0000-01-01T00:00:00.000Z");
    assert_string_equal(ts_format(-1, buf), "1969-12-31T23:59:59.999Z");
    assert_string_equal(ts_format(TS_MAX_MS, buf), "9999-12-31T23:59:59.999Z");
    assert_string_equal(ts_format(INT64_MAX, buf), "9999-12-31T23:59:59.999Z");

    const char *s = "9999-12-31T23:59:59.999Z";
    assert_int_equal(ts_parse(s, strlen(s), &ms), 0);
    assert_int_equal(ms, TS_MAX_MS);
    assert_int_equal(ts_parse("253402300799999", 15, &ms), 0);
    assert_int_equal(ms, TS_MAX_MS);
    static const char *past[] = { "253402300800000", "999999999999999999",
                                  "9999-12-31T23:59:60Z",
                                  "9999-12-31T23:00:00-01:00" };
    for (size_t i = 0; i < sizeof(past) / sizeof(past[0]); i++)
        assert_int_equal(ts_parse(past[i], strlen(past[i]), &ms), -1);

    /* The default ts is the arrival: the entry ID's ms part, any u64, but
     * never later than the wall clock. */
    struct sla_event ev;
    const char *reason = NULL;
    reset();
    add("type", "opened");
    add("ticket", "T-1");
    assert_int_equal(event_parse(&ev, fields, nfields, UINT64_MAX, NOW, SKEW, &reason), 0);
    assert_int_equal(ev.ts_ms, NOW);
    assert_int_equal(ev.arrival_ms, NOW);
    assert_int_equal(event_parse(&ev, fields, nfields, (uint64_t)INT64_MAX + 1, NOW, SKEW,
                                 &reason), 0);
    assert_int_equal(ev.ts_ms, NOW);
    /* An explicit ts past 9999 is refused, whatever the wall clock. */
    char tsv[32] = "0";
    add("ts", tsv);
    snprintf(tsv, sizeof(tsv), "%lld", (long long)TS_MAX_MS + 1);
    fields[nfields - 1].value_len = strlen(tsv);
    assert_int_equal(event_parse(&ev, fields, nfields, NOW, INT64_MAX, SKEW, &reason), -1);
    assert_string_equal(reason, "bad ts");
    /* Any skew the config accepts, up to INT64_MAX, without overflow. */
    snprintf(tsv, sizeof(tsv), "%lld", (long long)TS_MAX_MS);
    fields[nfields - 1].value_len = strlen(tsv);
    assert_int_equal(event_parse(&ev, fields, nfields, NOW, NOW, INT64_MAX, &reason), 0);
    assert_int_equal(ev.ts_ms, TS_MAX_MS);
    snprintf(tsv, sizeof(tsv), "%lld", (long long)(NOW + SKEW));
    fields[nfields - 1].value_len = strlen(tsv);
    assert_int_equal(event_parse(&ev, fields, nfields, NOW, NOW, SKEW, &reason), 0);
    snprintf(tsv, sizeof(tsv), "%lld", (long long)(NOW + SKEW + 1));
    fields[nfields - 1].value_len = strlen(tsv);
    assert_int_equal(event_parse(&ev, fields, nfields, NOW, NOW, SKEW, &reason), -1);
    assert_string_equal(reason, "ts in the future");
}

static void
test_durations(void **state)
{
    (void)state;
    int64_t ms;
    char buf[64];
    struct { const char *text; int64_t ms; } good[] = {
        { "500ms", 500 }, { "30s", 30000 }, { "5m", 300000 }, { "1h", 3600000 },
        { "3d", 259200000 }, { "1h30m", 5400000 }, { "2m30s500ms", 150500 },
        { "0", 0 }, { "0s", 0 },
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(dur_parse(good[i].text, &ms), 0);
        assert_int_equal(ms, good[i].ms);
        assert_int_equal(dur_parse(dur_format(ms, buf, sizeof(buf)), &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    static const char *bad[] = { "", "5", "1x", "m", "-1s", "1m1h", "1h1h",
                                 "1.5h", " 1h", "1h ", "99999999999999999999d" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(dur_parse(bad[i], &ms), -1);
    assert_string_equal(dur_format(5400000, buf, sizeof(buf)), "1h30m");
}

static void
test_stream_ids(void **state)
{
    (void)state;
    uint64_t ms, seq;
    assert_int_equal(stream_id_parse("1795000000000-7", 15, &ms, &seq), 0);
    assert_true(ms == 1795000000000ULL && seq == 7);
    assert_int_equal(stream_id_parse("17", 2, &ms, &seq), -1);
    assert_int_equal(stream_id_parse("-1", 2, &ms, &seq), -1);
    assert_int_equal(stream_id_parse("1-", 2, &ms, &seq), -1);
    assert_int_equal(stream_id_parse("1-2-3", 5, &ms, &seq), -1);
    assert_int_equal(stream_id_parse("a-1", 3, &ms, &seq), -1);
}

static void
test_utf8(void **state)
{
    (void)state;
    assert_true(str_is_clean_utf8("abc", 3));
    assert_true(str_is_clean_utf8("\xe2\x82\xac", 3));        /* euro sign */
    assert_false(str_is_clean_utf8("\xe2\x82", 2));           /* truncated */
    assert_false(str_is_clean_utf8("\xc0\xaf", 2));           /* overlong */
    assert_false(str_is_clean_utf8("\xed\xa0\x80", 3));       /* surrogate */
    assert_false(str_is_clean_utf8("\xc2\x85", 2));           /* C1 control */
    assert_false(str_is_clean_utf8("a\x7f", 2));
    assert_false(str_is_clean_utf8("a\0b", 3));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_minimal),
        cmocka_unit_test(test_attributes_and_unknown_fields),
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_ticket_limits),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_time_range),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_stream_ids),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
