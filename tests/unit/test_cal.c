/*
 * test_cal.c - unit tests of the business-hours calendar core (cal.c):
 * office hours, holidays, segment boundaries, DST in both directions and
 * hemispheres, zones without DST, year ends and leap days, parse errors,
 * corrupt zone files, and the cal_add()/cal_elapsed() inverse property.
 * Expected instants are written in UTC by hand from the published zone
 * rules, never computed with the code under test.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "slawatch/cal.h"
#include "slawatch/util.h"

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

/* UTC instant of a calendar date and time. */
static int64_t
utc(int y, unsigned mo, unsigned d, int h, int mi)
{
    return days_from_civil(y, mo, d) * DAY_MS + h * HOUR_MS + mi * MIN_MS;
}

/* Instant of a local wall time in a zone with a fixed offset (hours). */
static int64_t
local_fixed(int y, unsigned mo, unsigned d, int h, int mi, int off_h)
{
    return utc(y, mo, d, h, mi) - off_h * HOUR_MS;
}

/* Builds a finished calendar from "days=hours" pairs and holidays; fails
 * the test on any error. */
static struct calendar *
make_cal(const char *zone, const char *const *week, const char *const *holidays)
{
    char err[256] = "";
    struct calendar *cal = cal_create("test", zone, err, sizeof(err));
    if (cal == NULL)
        fail_msg("cal_create(%s): %s", zone, err);
    for (size_t i = 0; week && week[i]; i += 2)
        if (cal_set_week(cal, week[i], week[i + 1], err, sizeof(err)) != 0)
            fail_msg("cal_set_week(%s, %s): %s", week[i], week[i + 1], err);
    for (size_t i = 0; holidays && holidays[i]; i++)
        if (cal_add_holiday(cal, holidays[i], err, sizeof(err)) != 0)
            fail_msg("cal_add_holiday(%s): %s", holidays[i], err);
    if (cal_finish(cal, err, sizeof(err)) != 0)
        fail_msg("cal_finish: %s", err);
    return cal;
}

static const char *const office_week[] = {"mon-fri", "09:00-18:00", NULL};
static const char *const always_week[] = {"mon-sun", "00:00-24:00", NULL};
/* Open all of every Sunday (the day the changes below happen), so the open
 * time of one Sunday is the real length of that local day. */
static const char *const sunday_week[] = {"sun", "00:00-24:00", NULL};

/* Asserts two instants are equal, printing both in UTC when not. */
#define assert_instant(actual, expected)                                       \
    do {                                                                       \
        int64_t a_ = (actual), e_ = (expected);                                \
        if (a_ != e_) {                                                        \
            char ba_[TS_BUFLEN], be_[TS_BUFLEN];                               \
            fail_msg("got %s (%lld), expected %s (%lld)", ts_format(a_, ba_),  \
                     (long long)a_, ts_format(e_, be_), (long long)e_);        \
        }                                                                      \
    } while (0)

static void
test_office_friday_to_monday(void **state)
{
    (void)state;
    struct calendar *cal = make_cal("Asia/Shanghai", office_week, NULL);
    /* 2026-11-20 is a Friday. */
    int64_t fri_17 = local_fixed(2026, 11, 20, 17, 0, 8);
    int64_t mon_12 = local_fixed(2026, 11, 23, 12, 0, 8);
    assert_instant(cal_add(cal, fri_17, 4 * HOUR_MS), mon_12);
    assert_int_equal(cal_elapsed(cal, fri_17, mon_12), 4 * HOUR_MS);
    /* The last hour of Friday ends at the close, not on Monday morning. */
    assert_instant(cal_add(cal, fri_17, HOUR_MS),
                   local_fixed(2026, 11, 20, 18, 0, 8));
    /* A whole week holds 45 hours, wherever it starts. */
    assert_int_equal(cal_elapsed(cal, fri_17, fri_17 + 7 * DAY_MS),
                     45 * HOUR_MS);
    assert_int_equal(cal_elapsed(cal, fri_17, fri_17 + 28 * DAY_MS),
                     180 * HOUR_MS);
    /* 45 hours from Friday 17:00 is the next Friday 17:00. */
    assert_instant(cal_add(cal, fri_17, 45 * HOUR_MS), fri_17 + 7 * DAY_MS);
    cal_free(cal);
}

static void
test_holiday_in_between(void **state)
{
    (void)state;
    static const char *const hol[] = {"2026-11-23", NULL};
    struct calendar *cal = make_cal("Asia/Shanghai", office_week, hol);
    int64_t fri_17 = local_fixed(2026, 11, 20, 17, 0, 8);
    int64_t tue_12 = local_fixed(2026, 11, 24, 12, 0, 8);
    assert_instant(cal_add(cal, fri_17, 4 * HOUR_MS), tue_12);
    assert_int_equal(cal_elapsed(cal, fri_17, tue_12), 4 * HOUR_MS);
    /* The week containing the holiday holds one day less. */
    assert_int_equal(cal_elapsed(cal, fri_17, fri_17 + 7 * DAY_MS),
                     36 * HOUR_MS);
    assert_false(cal_is_open(cal, local_fixed(2026, 11, 23, 10, 0, 8)));
    assert_true(cal_is_open(cal, local_fixed(2026, 11, 24, 10, 0, 8)));
    cal_free(cal);
}

static void
test_multi_segment_days(void **state)
{
    (void)state;
    static const char *const week[] = {"mon-fri", "09:00-12:00,13:00-18:00",
                                       "sat", "10:00-14:00", NULL};
    struct calendar *cal = make_cal("Asia/Shanghai", week, NULL);
    /* 2026-11-23 is a Monday. */
    int64_t mon_11 = local_fixed(2026, 11, 23, 11, 0, 8);
    assert_instant(cal_add(cal, mon_11, 2 * HOUR_MS),
                   local_fixed(2026, 11, 23, 14, 0, 8));
    /* Ending exactly at the lunch break: noon, not 13:00. */
    assert_instant(cal_add(cal, mon_11, HOUR_MS),
                   local_fixed(2026, 11, 23, 12, 0, 8));
    assert_instant(cal_add(cal, local_fixed(2026, 11, 23, 12, 30, 8), 0),
                   local_fixed(2026, 11, 23, 13, 0, 8));
    assert_int_equal(cal_elapsed(cal, local_fixed(2026, 11, 23, 0, 0, 8),
                                 local_fixed(2026, 11, 24, 0, 0, 8)),
                     8 * HOUR_MS);
    assert_true(cal_is_open(cal, local_fixed(2026, 11, 23, 11, 59, 8)));
    assert_false(cal_is_open(cal, local_fixed(2026, 11, 23, 12, 0, 8)));
    assert_true(cal_is_open(cal, local_fixed(2026, 11, 23, 13, 0, 8)));
    /* Friday 17:00 + 3h: 1h Friday, 2h Saturday 10:00-12:00. */
    assert_instant(
        cal_add(cal, local_fixed(2026, 11, 27, 17, 0, 8), 3 * HOUR_MS),
        local_fixed(2026, 11, 28, 12, 0, 8));
    /* A week: 5 * 8h + 4h. */
    assert_int_equal(cal_elapsed(cal, mon_11, mon_11 + 7 * DAY_MS),
                     44 * HOUR_MS);
    cal_free(cal);
}

static void
test_segment_boundaries(void **state)
{
    (void)state;
    struct calendar *cal = make_cal("Asia/Shanghai", office_week, NULL);
    int64_t tue_09 = local_fixed(2026, 11, 24, 9, 0, 8);
    int64_t tue_18 = local_fixed(2026, 11, 24, 18, 0, 8);
    int64_t wed_09 = local_fixed(2026, 11, 25, 9, 0, 8);
    int64_t fri_18 = local_fixed(2026, 11, 27, 18, 0, 8);
    int64_t mon_09 = local_fixed(2026, 11, 30, 9, 0, 8);

    /* Zero business time: the start itself when open, else the opening. */
    assert_instant(cal_add(cal, tue_09, 0), tue_09);
    assert_instant(cal_add(cal, tue_09 - 1, 0), tue_09);
    assert_instant(cal_add(cal, tue_18, 0), wed_09);
    assert_instant(cal_add(cal, tue_18 - 1, 0), tue_18 - 1);
    assert_instant(cal_add(cal, fri_18, 0), mon_09);
    /* Starting at the close counts from the next opening. */
    assert_instant(cal_add(cal, tue_18, 1), wed_09 + 1);
    assert_instant(cal_add(cal, tue_09, 9 * HOUR_MS), tue_18);
    assert_instant(cal_add(cal, tue_09, 9 * HOUR_MS + 1), wed_09 + 1);
    assert_instant(cal_add(cal, local_fixed(2026, 11, 24, 8, 0, 8), HOUR_MS),
                   local_fixed(2026, 11, 24, 10, 0, 8));

    assert_int_equal(cal_elapsed(cal, tue_09, tue_18), 9 * HOUR_MS);
    assert_int_equal(cal_elapsed(cal, tue_18, wed_09), 0);
    assert_int_equal(cal_elapsed(cal, tue_09, tue_09), 0);
    assert_int_equal(cal_elapsed(cal, tue_18, tue_09), 0);
    assert_int_equal(cal_elapsed(cal, tue_18 - MIN_MS, wed_09 + MIN_MS),
                     2 * MIN_MS);
    assert_true(cal_is_open(cal, tue_09));
    assert_false(cal_is_open(cal, tue_18));
    assert_false(cal_is_open(cal, tue_09 - 1));
    cal_free(cal);
}

static void
test_touching_segments_and_midnight(void **state)
{
    (void)state;
    /* Night shift split over two days, and touching segments. */
    static const char *const week[] = {"mon", "22:00-24:00", "tue",
                                       "00:00-06:00,06:00-07:00", NULL};
    struct calendar *cal = make_cal("UTC", week, NULL);
    int64_t mon_22 = utc(2026, 11, 23, 22, 0);
    assert_instant(cal_add(cal, mon_22, 9 * HOUR_MS), utc(2026, 11, 24, 7, 0));
    assert_instant(cal_add(cal, mon_22, 9 * HOUR_MS + 1),
                   utc(2026, 11, 30, 22, 0) + 1);
    assert_int_equal(cal_elapsed(cal, mon_22, mon_22 + DAY_MS), 9 * HOUR_MS);
    cal_free(cal);
}

/* Europe/Berlin 2026: CET -> CEST on Sun 03-29 at 01:00Z (02:00 -> 03:00
 * local), CEST -> CET on Sun 10-25 at 01:00Z (03:00 -> 02:00 local). */
static void
test_dst_berlin(void **state)
{
    (void)state;
    struct calendar *all = make_cal("Europe/Berlin", sunday_week, NULL);
    /* Local days of 23 and 25 hours. */
    assert_int_equal(
        cal_elapsed(all, utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0)),
        23 * HOUR_MS);
    assert_instant(cal_add(all, utc(2026, 3, 28, 12, 0), 3 * HOUR_MS),
                   utc(2026, 3, 29, 2, 0));
    assert_instant(cal_add(all, utc(2026, 3, 28, 12, 0), 23 * HOUR_MS + 1),
                   utc(2026, 4, 4, 22, 0) + 1);
    assert_int_equal(
        cal_elapsed(all, utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0)),
        25 * HOUR_MS);
    assert_instant(cal_add(all, utc(2026, 10, 24, 12, 0), 25 * HOUR_MS),
                   utc(2026, 10, 25, 23, 0));
    assert_instant(cal_add(all, utc(2026, 10, 24, 12, 0), 25 * HOUR_MS + 1),
                   utc(2026, 10, 31, 23, 0) + 1);
    cal_free(all);

    static const char *const night[] = {"sun", "01:00-04:00", NULL};
    struct calendar *cal = make_cal("Europe/Berlin", night, NULL);
    /* Spring: 01:00-02:00 CET (00:00-01:00Z) and 03:00-04:00 CEST
     * (01:00-02:00Z); the hour 02:00-03:00 does not exist. */
    assert_int_equal(
        cal_elapsed(cal, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 12, 0)),
        2 * HOUR_MS);
    assert_instant(cal_add(cal, utc(2026, 3, 29, 0, 30), HOUR_MS),
                   utc(2026, 3, 29, 1, 30));
    assert_instant(cal_add(cal, utc(2026, 3, 28, 12, 0), 0),
                   utc(2026, 3, 29, 0, 0));
    /* Fall: 01:00 CEST (23:00Z) to 04:00 CET (03:00Z), with 02:00-03:00
     * lived twice: four real hours. */
    assert_int_equal(
        cal_elapsed(cal, utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 12, 0)),
        4 * HOUR_MS);
    assert_instant(
        cal_add(cal, utc(2026, 10, 24, 23, 0), 3 * HOUR_MS + 30 * MIN_MS),
        utc(2026, 10, 25, 2, 30));
    /* A normal Sunday holds three hours (CEST: 23:00Z-02:00Z). */
    assert_int_equal(
        cal_elapsed(cal, utc(2026, 6, 6, 12, 0), utc(2026, 6, 7, 12, 0)),
        3 * HOUR_MS);
    cal_free(cal);

    /* Open only in the hour that is skipped in spring and doubled in
     * autumn. */
    static const char *const gap[] = {"sun", "02:00-03:00", NULL};
    cal = make_cal("Europe/Berlin", gap, NULL);
    assert_instant(cal_add(cal, utc(2026, 3, 29, 0, 0), 30 * MIN_MS),
                   utc(2026, 4, 5, 0, 30));
    assert_int_equal(
        cal_elapsed(cal, utc(2026, 3, 28, 0, 0), utc(2026, 3, 30, 0, 0)), 0);
    assert_int_equal(
        cal_elapsed(cal, utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 12, 0)),
        2 * HOUR_MS);
    assert_instant(cal_add(cal, utc(2026, 10, 25, 0, 0), 90 * MIN_MS),
                   utc(2026, 10, 25, 1, 30));
    cal_free(cal);
}

/* America/New_York 2026: EST -> EDT on Sun 03-08 at 07:00Z, EDT -> EST on
 * Sun 11-01 at 06:00Z. */
static void
test_dst_new_york(void **state)
{
    (void)state;
    static const char *const night[] = {"sun", "01:00-04:00", NULL};
    struct calendar *cal = make_cal("America/New_York", night, NULL);
    /* Spring: 01:00 EST (06:00Z) .. 02:00 EST = 03:00 EDT (07:00Z) ..
     * 04:00 EDT (08:00Z). */
    assert_int_equal(
        cal_elapsed(cal, utc(2026, 3, 8, 0, 0), utc(2026, 3, 9, 0, 0)),
        2 * HOUR_MS);
    assert_instant(cal_add(cal, utc(2026, 3, 8, 6, 30), HOUR_MS),
                   utc(2026, 3, 8, 7, 30));
    assert_instant(cal_add(cal, utc(2026, 3, 8, 0, 0), 2 * HOUR_MS),
                   utc(2026, 3, 8, 8, 0));
    /* Fall: 01:00 EDT (05:00Z) .. 01:00 EST (06:00Z) .. 04:00 EST (09:00Z). */
    assert_int_equal(
        cal_elapsed(cal, utc(2026, 11, 1, 0, 0), utc(2026, 11, 2, 0, 0)),
        4 * HOUR_MS);
    assert_instant(cal_add(cal, utc(2026, 11, 1, 5, 0), 2 * HOUR_MS),
                   utc(2026, 11, 1, 7, 0));
    assert_instant(cal_add(cal, utc(2026, 11, 1, 5, 0), 4 * HOUR_MS),
                   utc(2026, 11, 1, 9, 0));
    /* The next Sunday (EST): 06:00Z-09:00Z. */
    assert_instant(cal_add(cal, utc(2026, 11, 1, 5, 0), 4 * HOUR_MS + 1),
                   utc(2026, 11, 8, 6, 0) + 1);
    cal_free(cal);

    struct calendar *all = make_cal("America/New_York", sunday_week, NULL);
    assert_int_equal(
        cal_elapsed(all, utc(2026, 10, 31, 0, 0), utc(2026, 11, 3, 0, 0)),
        25 * HOUR_MS);
    assert_int_equal(
        cal_elapsed(all, utc(2026, 3, 7, 0, 0), utc(2026, 3, 10, 0, 0)),
        23 * HOUR_MS);
    /* Sunday 2026-11-01 starts at 04:00Z (EDT) and ends at 05:00Z on
     * 11-02 (EST). */
    assert_instant(cal_add(all, utc(2026, 10, 31, 0, 0), 0),
                   utc(2026, 11, 1, 4, 0));
    assert_instant(cal_add(all, utc(2026, 10, 31, 0, 0), 25 * HOUR_MS),
                   utc(2026, 11, 2, 5, 0));
    cal_free(all);
}

/* Australia/Sydney: DST spans the new year. 2026: AEDT -> AEST on Sun
 * 04-05 (03:00 -> 02:00 local, 16:00Z on 04-04), AEST -> AEDT on Sun 10-04
 * (02:00 -> 03:00 local, 16:00Z on 10-03). */
static void
test_dst_southern(void **state)
{
    (void)state;
    struct calendar *all = make_cal("Australia/Sydney", sunday_week, NULL);
    /* Sunday 2026-04-05 runs from 13:00Z (+11) to 14:00Z next day (+10). */
    assert_int_equal(
        cal_elapsed(all, utc(2026, 4, 3, 0, 0), utc(2026, 4, 7, 0, 0)),
        25 * HOUR_MS);
    assert_instant(cal_add(all, utc(2026, 4, 3, 0, 0), 0),
                   utc(2026, 4, 4, 13, 0));
    assert_instant(cal_add(all, utc(2026, 4, 3, 0, 0), 25 * HOUR_MS),
                   utc(2026, 4, 5, 14, 0));
    assert_int_equal(
        cal_elapsed(all, utc(2026, 10, 2, 0, 0), utc(2026, 10, 6, 0, 0)),
        23 * HOUR_MS);
    cal_free(all);

    static const char *const office[] = {"mon-fri", "09:00-17:00", NULL};
    struct calendar *cal = make_cal("Australia/Sydney", office, NULL);
    char buf[CAL_LOCAL_BUFLEN];
    /* Mon 2026-01-05 09:00 AEDT = 2026-01-04T22:00Z. */
    assert_instant(cal_add(cal, utc(2026, 1, 4, 22, 0), 0),
                   utc(2026, 1, 4, 22, 0));
    assert_string_equal(cal_format_local(cal, utc(2026, 1, 4, 22, 0), buf),
                        "2026-01-05T09:00:00.000+11:00");
    assert_string_equal(cal_format_local(cal, utc(2026, 7, 5, 23, 0), buf),
                        "2026-07-06T09:00:00.000+10:00");
    cal_free(cal);
}

/* The offset flips at the exact millisecond of each change. */
static void
test_change_instants(void **state)
{
    (void)state;
    static const struct {
        const char *zone;
        int64_t at;
        int64_t before_h, after_h;
    } changes[] = {
        {"Europe/Berlin", 0 /* 2026-03-29T01:00Z */, 1, 2},
        {"Europe/Berlin", 1 /* 2026-10-25T01:00Z */, 2, 1},
        {"America/New_York", 2 /* 2026-03-08T07:00Z */, -5, -4},
        {"America/New_York", 3 /* 2026-11-01T06:00Z */, -4, -5},
        {"Australia/Sydney", 4 /* 2026-04-04T16:00Z */, 11, 10},
        {"Australia/Sydney", 5 /* 2026-10-03T16:00Z */, 10, 11},
        {"Europe/Berlin", 6 /* 1996-10-27T01:00Z, from the file */, 2, 1},
        {"Europe/Berlin", 7 /* 2250-03-31T01:00Z, from the rule */, 1, 2},
    };
    const int64_t at[] = {
        utc(2026, 3, 29, 1, 0),  utc(2026, 10, 25, 1, 0),
        utc(2026, 3, 8, 7, 0),   utc(2026, 11, 1, 6, 0),
        utc(2026, 4, 4, 16, 0),  utc(2026, 10, 3, 16, 0),
        utc(1996, 10, 27, 1, 0), utc(2250, 3, 31, 1, 0),
    };
    for (size_t i = 0; i < ARRAY_LEN(changes); i++) {
        struct calendar *cal = make_cal(changes[i].zone, always_week, NULL);
        int64_t t = at[changes[i].at];
        assert_int_equal(cal_utc_offset_ms(cal, t - 1),
                         changes[i].before_h * HOUR_MS);
        assert_int_equal(cal_utc_offset_ms(cal, t),
                         changes[i].after_h * HOUR_MS);
        cal_free(cal);
    }

    /* Open 01:00-02:00 local on Sundays only: in Berlin that hour is
     * 00:00-01:00Z on both change days (CET in March, CEST in October). */
    static const char *const one[] = {"sun", "01:00-02:00", NULL};
    struct calendar *cal = make_cal("Europe/Berlin", one, NULL);
    assert_int_equal(
        cal_elapsed(cal, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 12, 0)),
        HOUR_MS);
    assert_instant(cal_add(cal, utc(2026, 3, 28, 12, 0), 0),
                   utc(2026, 3, 29, 0, 0));
    assert_instant(cal_add(cal, utc(2026, 10, 24, 12, 0), 0),
                   utc(2026, 10, 24, 23, 0));
    cal_free(cal);

    char buf[CAL_LOCAL_BUFLEN];
    cal = make_cal("Europe/Berlin", office_week, NULL);
    assert_string_equal(cal_format_local(cal, utc(2026, 10, 25, 0, 30), buf),
                        "2026-10-25T02:30:00.000+02:00");
    assert_string_equal(cal_format_local(cal, utc(2026, 10, 25, 1, 30), buf),
                        "2026-10-25T02:30:00.000+01:00");
    assert_string_equal(cal_format_local(cal, utc(2026, 3, 29, 0, 59), buf),
                        "2026-03-29T01:59:00.000+01:00");
    assert_string_equal(cal_format_local(cal, utc(2026, 3, 29, 1, 0), buf),
                        "2026-03-29T03:00:00.000+02:00");
    cal_free(cal);
}

static void
test_shanghai_no_dst(void **state)
{
    (void)state;
    struct calendar *cal = make_cal("Asia/Shanghai", office_week, NULL);
    /* Weeks around the European and American changes are ordinary. */
    int64_t mon = local_fixed(2026, 3, 23, 0, 0, 8);
    for (int w = 0; w < 40; w++)
        assert_int_equal(
            cal_elapsed(cal, mon + w * 7 * DAY_MS, mon + (w + 1) * 7 * DAY_MS),
            45 * HOUR_MS);
    assert_int_equal(cal_utc_offset_ms(cal, utc(2026, 7, 1, 0, 0)),
                     8 * HOUR_MS);
    assert_int_equal(cal_utc_offset_ms(cal, utc(2026, 1, 1, 0, 0)),
                     8 * HOUR_MS);
    /* 2026 has 261 weekdays. */
    assert_int_equal(cal_elapsed(cal, local_fixed(2026, 1, 1, 0, 0, 8),
                                 local_fixed(2027, 1, 1, 0, 0, 8)),
                     261 * 9 * HOUR_MS);
    cal_free(cal);
}

static void
test_year_end_and_leap_day(void **state)
{
    (void)state;
    static const char *const hol[] = {"2027-01-01", NULL};
    struct calendar *cal = make_cal("Asia/Shanghai", office_week, hol);
    struct calendar *plain = make_cal("Asia/Shanghai", office_week, NULL);
    /* Thursday 2026-12-31 17:00 + 4h: Friday 2027-01-01 is a holiday. */
    int64_t thu_17 = local_fixed(2026, 12, 31, 17, 0, 8);
    assert_instant(cal_add(cal, thu_17, 4 * HOUR_MS),
                   local_fixed(2027, 1, 4, 12, 0, 8));
    assert_instant(cal_add(plain, thu_17, 4 * HOUR_MS),
                   local_fixed(2027, 1, 1, 12, 0, 8));
    /* Monday 2028-02-28 17:00 + 4h lands on the leap day. */
    int64_t mon_17 = local_fixed(2028, 2, 28, 17, 0, 8);
    assert_instant(cal_add(plain, mon_17, 4 * HOUR_MS),
                   local_fixed(2028, 2, 29, 12, 0, 8));
    assert_int_equal(cal_elapsed(plain, local_fixed(2028, 2, 29, 0, 0, 8),
                                 local_fixed(2028, 3, 1, 0, 0, 8)),
                     9 * HOUR_MS);
    cal_free(cal);
    cal_free(plain);

    static const char *const leap[] = {"2028-02-29", NULL};
    cal = make_cal("Asia/Shanghai", office_week, leap);
    assert_instant(cal_add(cal, mon_17, 4 * HOUR_MS),
                   local_fixed(2028, 3, 1, 12, 0, 8));
    cal_free(cal);

    /* Berlin across a year end, in winter time. */
    cal = make_cal("Europe/Berlin", office_week, hol);
    assert_instant(cal_add(cal, utc(2026, 12, 31, 16, 0), 4 * HOUR_MS),
                   utc(2027, 1, 4, 11, 0));
    cal_free(cal);
}

/* Past the table expanded at load time the rule is evaluated directly. */
static void
test_far_future(void **state)
{
    (void)state;
    struct calendar *all = make_cal("Europe/Berlin", sunday_week, NULL);
    static const struct {
        int y;
        unsigned mo, d;
        int hours;
    } days[] = {
        {2150, 3, 28, 23},  {2150, 10, 24, 25}, {2250, 3, 30, 23},
        {2250, 10, 26, 25}, {2999, 3, 30, 23},  {2999, 10, 26, 25},
    };
    for (size_t i = 0; i < ARRAY_LEN(days); i++) {
        /* The Sunday starts at 23:00Z in March (CET) and at 22:00Z in
         * October (CEST) on the day before. */
        int64_t from =
            utc(days[i].y, days[i].mo, days[i].d, days[i].mo == 3 ? 23 : 22, 0);
        assert_int_equal(cal_elapsed(all, from - DAY_MS, from + 2 * DAY_MS),
                         days[i].hours * HOUR_MS);
        assert_instant(cal_add(all, from - DAY_MS, 0), from);
        assert_instant(cal_add(all, from - DAY_MS, days[i].hours * HOUR_MS),
                       from + days[i].hours * HOUR_MS);
    }
    assert_int_equal(cal_utc_offset_ms(all, utc(2999, 7, 1, 0, 0)),
                     2 * HOUR_MS);
    cal_free(all);

    /* The hour 02:00-03:00 is skipped on 2250-03-31 and lived twice on
     * 2250-10-27; walking through it must switch offsets on time. */
    static const char *const gap[] = {"sun", "02:00-03:00", NULL};
    all = make_cal("Europe/Berlin", gap, NULL);
    assert_int_equal(
        cal_elapsed(all, utc(2250, 3, 29, 0, 0), utc(2250, 4, 2, 0, 0)), 0);
    assert_int_equal(
        cal_elapsed(all, utc(2250, 10, 25, 0, 0), utc(2250, 10, 29, 0, 0)),
        2 * HOUR_MS);
    assert_int_equal(cal_utc_offset_ms(all, utc(2999, 1, 1, 0, 0)), HOUR_MS);
    cal_free(all);
}

static void
test_format_local(void **state)
{
    (void)state;
    char buf[CAL_LOCAL_BUFLEN];
    struct calendar *sh = make_cal("Asia/Shanghai", office_week, NULL);
    struct calendar *ny = make_cal("America/New_York", office_week, NULL);
    struct calendar *in = make_cal("Asia/Kolkata", office_week, NULL);
    struct calendar *be = make_cal("Europe/Berlin", office_week, NULL);

    assert_string_equal(cal_format_local(sh, utc(2026, 11, 23, 10, 0), buf),
                        "2026-11-23T18:00:00.000+08:00");
    assert_string_equal(cal_format_local(ny, utc(2026, 11, 23, 15, 0) + 4, buf),
                        "2026-11-23T10:00:00.004-05:00");
    assert_string_equal(cal_format_local(ny, utc(2026, 7, 1, 3, 0), buf),
                        "2026-06-30T23:00:00.000-04:00");
    assert_string_equal(cal_format_local(in, utc(2026, 1, 1, 0, 0), buf),
                        "2026-01-01T05:30:00.000+05:30");
    assert_string_equal(cal_format_local(NULL, utc(2026, 11, 23, 10, 0), buf),
                        "2026-11-23T10:00:00.000Z");
    assert_string_equal(cal_format_local(NULL, -1, buf),
                        "1969-12-31T23:59:59.999Z");
    /* Berlin local mean time was +00:53:28; the text shows +00:53 and the
     * wall time that goes with it. */
    assert_string_equal(cal_format_local(be, utc(1850, 1, 1, 0, 0), buf),
                        "1850-01-01T00:53:00.000+00:53");
    /* Extremes must not crash or overflow. */
    cal_format_local(be, INT64_MAX, buf);
    cal_format_local(be, INT64_MIN, buf);
    cal_format_local(NULL, INT64_MIN, buf);
    assert_true(strlen(buf) < CAL_LOCAL_BUFLEN);
    cal_free(sh);
    cal_free(ny);
    cal_free(in);
    cal_free(be);
}

static void
test_null_is_24x7(void **state)
{
    (void)state;
    int64_t t = utc(2026, 3, 29, 0, 30);
    assert_int_equal(cal_add(NULL, t, 5 * HOUR_MS), t + 5 * HOUR_MS);
    assert_int_equal(cal_add(NULL, t, 0), t);
    assert_int_equal(cal_add(NULL, t, -5), t);
    assert_int_equal(cal_elapsed(NULL, t, t + 7), 7);
    assert_int_equal(cal_elapsed(NULL, t + 7, t), 0);
    assert_true(cal_is_open(NULL, t));
    assert_int_equal(cal_utc_offset_ms(NULL, t), 0);
    assert_int_equal(cal_add(NULL, INT64_MAX - 5, 10), INT64_MAX);
    assert_int_equal(cal_elapsed(NULL, INT64_MIN, INT64_MAX), INT64_MAX);
    assert_string_equal(cal_name(NULL), "24x7");
    assert_string_equal(cal_timezone(NULL), "UTC");
}

static void
test_limits(void **state)
{
    (void)state;
    char err[128];
    struct calendar *cal = make_cal("Europe/Berlin", office_week, NULL);
    assert_int_equal(cal_add(cal, 0, INT64_MAX), INT64_MAX);
    assert_int_equal(cal_add(cal, INT64_MAX - 5, 1), INT64_MAX);
    assert_int_equal(cal_add(cal, INT64_MAX, 0), INT64_MAX);
    assert_true(cal_add(cal, INT64_MIN, HOUR_MS) > INT64_MIN);
    assert_true(cal_elapsed(cal, INT64_MIN, INT64_MAX) > 0);
    assert_false(cal_is_open(cal, INT64_MAX));
    /* 1000 years of 45-hour weeks. */
    int64_t t = utc(2026, 1, 5, 8, 0);
    int64_t far = cal_add(cal, t, 52 * 1000 * 45 * HOUR_MS);
    assert_true(far > utc(3020, 1, 1, 0, 0) && far < utc(3030, 1, 1, 0, 0));
    assert_int_equal(cal_elapsed(cal, t, far), 52 * 1000 * 45 * HOUR_MS);
    cal_free(cal);

    /* A calendar that never opens (not finished) gives INT64_MAX. */
    cal = cal_create("shut", "UTC", err, sizeof(err));
    assert_non_null(cal);
    assert_int_equal(cal_set_week(cal, "mon-sun", "closed", err, sizeof(err)),
                     0);
    assert_int_equal(cal_finish(cal, err, sizeof(err)), -1);
    assert_int_equal(cal_add(cal, 0, 0), INT64_MAX);
    assert_int_equal(cal_add(cal, 0, HOUR_MS), INT64_MAX);
    assert_int_equal(cal_elapsed(cal, 0, DAY_MS), 0);
    cal_free(cal);
}

static void
test_parse_accepts(void **state)
{
    (void)state;
    char err[128] = "";
    struct calendar *cal = cal_create("office", "UTC", err, sizeof(err));
    assert_non_null(cal);
    assert_string_equal(cal_name(cal), "office");
    assert_string_equal(cal_timezone(cal), "UTC");
    /* fri-mon wraps: fri, sat, sun, mon. */
    assert_int_equal(
        cal_set_week(cal, "fri-mon", "10:00-11:00", err, sizeof(err)), 0);
    assert_int_equal(cal_set_week(cal, " Tue , Thursday",
                                  " 09:00 - 12:00 , "
                                  "13:00-18:00 ",
                                  err, sizeof(err)),
                     0);
    assert_int_equal(cal_set_week(cal, "WED", "Closed", err, sizeof(err)), 0);
    assert_int_equal(cal_finish(cal, err, sizeof(err)), 0);
    /* Week of 2026-11-23 (Monday). */
    int64_t mon = utc(2026, 11, 23, 0, 0);
    assert_int_equal(cal_elapsed(cal, mon, mon + 7 * DAY_MS),
                     4 * HOUR_MS + 2 * 8 * HOUR_MS);
    assert_int_equal(cal_elapsed(cal, mon + 2 * DAY_MS, mon + 3 * DAY_MS), 0);
    assert_int_equal(cal_elapsed(cal, mon + 5 * DAY_MS, mon + 7 * DAY_MS),
                     2 * HOUR_MS);
    cal_free(cal);

    cal = cal_create(NULL, "Etc/GMT+5", err, sizeof(err));
    assert_non_null(cal);
    assert_int_equal(
        cal_set_week(cal, "mon-sun", "9:00-17:00", err, sizeof(err)), 0);
    assert_int_equal(cal_finish(cal, err, sizeof(err)), 0);
    assert_int_equal(cal_utc_offset_ms(cal, 0), -5 * HOUR_MS);
    cal_free(cal);
}

/* Expects the call to fail with a non-empty one-line message. */
static void
expect_error(int rc, const char *err, const char *what)
{
    if (rc != -1)
        fail_msg("%s: accepted", what);
    if (err[0] == '\0' || strchr(err, '\n') != NULL)
        fail_msg("%s: bad message \"%s\"", what, err);
}

static void
test_parse_errors(void **state)
{
    (void)state;
    char err[256];
    static const char *const bad_zones[] = {
        "Mars/Olympus_Mons",
        "../etc/passwd",
        "/etc/localtime",
        "Europe/../UTC",
        "",
        "Europe",
        "zone.tab",
        "Europe/Berlin\n",
        "Europe/Berlin ",
        "Europe//",
        "right/UTC_not_there",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad_zones); i++) {
        err[0] = '\0';
        struct calendar *cal = cal_create("x", bad_zones[i], err, sizeof(err));
        if (cal != NULL)
            fail_msg("zone \"%s\" accepted", bad_zones[i]);
        expect_error(-1, err, bad_zones[i]);
    }
    assert_null(cal_create("x", NULL, err, sizeof(err)));
    assert_null(cal_create("x", "Nowhere", NULL, 0));

    static const char *const bad_hours[] = {
        "18:00-09:00",
        "09:00-09:00",
        "09:00-13:00,12:00-18:00",
        "13:00-18:00,09:00-12:00",
        "9-18",
        "25:00-26:00",
        "09:60-10:00",
        "24:30-24:40",
        "09:00-18:00,",
        "09:00-18:00x",
        "",
        "closed,09:00-10:00",
        "09:00",
        "09:00-",
        "-09:00",
        "09:00-12:00;13:00-14:00",
        "0900-1800",
        "09:00-24:01",
        "99999999999999999999:00-10:00",
        "\xff\xfe",
        "open",
    };
    static const char *const bad_days[] = {
        "mun",         "mon-",        "",       "-fri", "mon,,tue", "mon,mon",
        "mon-fri,wed", "mon-sun,sun", "montag", "mo",   "mon fri",  "1",
        "mon-fri-sat",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad_hours); i++) {
        struct calendar *cal = cal_create("x", "UTC", err, sizeof(err));
        assert_non_null(cal);
        err[0] = '\0';
        expect_error(cal_set_week(cal, "mon", bad_hours[i], err, sizeof(err)),
                     err, bad_hours[i]);
        /* A rejected line leaves the day unset. */
        assert_int_equal(
            cal_set_week(cal, "mon", "09:00-10:00", err, sizeof(err)), 0);
        cal_free(cal);
    }
    for (size_t i = 0; i < ARRAY_LEN(bad_days); i++) {
        struct calendar *cal = cal_create("x", "UTC", err, sizeof(err));
        assert_non_null(cal);
        err[0] = '\0';
        expect_error(
            cal_set_week(cal, bad_days[i], "09:00-10:00", err, sizeof(err)),
            err, bad_days[i]);
        cal_free(cal);
    }

    struct calendar *cal = cal_create("x", "UTC", err, sizeof(err));
    assert_non_null(cal);
    /* A day set twice across lines, including through a wrapping range. */
    assert_int_equal(
        cal_set_week(cal, "mon-fri", "09:00-18:00", err, sizeof(err)), 0);
    err[0] = '\0';
    expect_error(cal_set_week(cal, "wed", "10:00-11:00", err, sizeof(err)), err,
                 "wed twice");
    expect_error(cal_set_week(cal, "sat-mon", "10:00-11:00", err, sizeof(err)),
                 err, "sat-mon over mon");
    /* The failed line set nothing: sat and sun are still free. */
    assert_int_equal(cal_set_week(cal, "sat,sun", "closed", err, sizeof(err)),
                     0);

    static const char *const bad_dates[] = {
        "2026-02-30", "2026-13-01",  "2026-00-10", "2026-01-00",  "2026-1-01",
        "20260101",   "2026-01-01x", "",           "2027-02-29",  "2100-02-29",
        "0000-01-01", "2026-04-31",  "2026/01/01", " 2026-01-01", "-026-01-01",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad_dates); i++) {
        err[0] = '\0';
        expect_error(cal_add_holiday(cal, bad_dates[i], err, sizeof(err)), err,
                     bad_dates[i]);
    }
    assert_int_equal(cal_add_holiday(cal, "2028-02-29", err, sizeof(err)), 0);
    assert_int_equal(cal_add_holiday(cal, "2000-02-29", err, sizeof(err)), 0);
    expect_error(cal_add_holiday(cal, "2028-02-29", err, sizeof(err)), err,
                 "holiday twice");
    assert_int_equal(cal_finish(cal, err, sizeof(err)), 0);
    /* Errors into a missing buffer are dropped, not written. */
    assert_int_equal(cal_set_week(cal, "mun", "x", NULL, 0), -1);
    assert_int_equal(cal_add_holiday(cal, "x", err, 0), -1);
    cal_free(cal);

    /* No open hours at all. */
    cal = cal_create("x", "UTC", err, sizeof(err));
    err[0] = '\0';
    expect_error(cal_finish(cal, err, sizeof(err)), err, "never open");
    cal_free(cal);
    assert_int_equal(cal_set_week(NULL, "mon", "09:00-10:00", err, sizeof(err)),
                     -1);
    assert_int_equal(cal_add_holiday(NULL, "2026-01-01", err, sizeof(err)), -1);
    assert_int_equal(cal_finish(NULL, err, sizeof(err)), -1);
    cal_free(NULL);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
    /* xorshift64*: reproducible without touching libc's rand() state. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static int64_t
rng_range(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng() % (uint64_t)(hi - lo));
}

/* Reads a whole file into a fresh buffer. */
static unsigned char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(f);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void
write_file(const char *path, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* Truncated and bit-flipped copies of real zone files must give either an
 * error or a usable calendar, never a crash (the sanitizer build checks the
 * memory accesses). */
static void
test_corrupt_zone_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_cal_XXXXXX";
    char path[256], err[256];
    const char *old = getenv("TZDIR");
    char *saved = old ? strdup(old) : NULL;
    static const char *const zones[] = {"Europe/Berlin", "Australia/Sydney",
                                        "UTC"};

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/z", dir);
    setenv("TZDIR", dir, 1);
    for (size_t z = 0; z < ARRAY_LEN(zones); z++) {
        char src[256];
        size_t len;
        snprintf(src, sizeof(src), "/usr/share/zoneinfo/%s", zones[z]);
        unsigned char *orig = slurp(src, &len);
        unsigned char *copy = malloc(len);
        assert_non_null(copy);
        for (size_t cut = 0; cut <= len; cut++) {
            write_file(path, orig, cut);
            struct calendar *cal = cal_create("x", "z", err, sizeof(err));
            if (cal != NULL) {
                if (cal_set_week(cal, "mon-fri", "09:00-18:00", err,
                                 sizeof(err)) == 0) {
                    (void)cal_add(cal, utc(2026, 3, 27, 12, 0), DAY_MS);
                    (void)cal_elapsed(cal, utc(2026, 1, 1, 0, 0),
                                      utc(2027, 1, 1, 0, 0));
                }
                cal_free(cal);
            }
        }
        for (int round = 0; round < 2000; round++) {
            memcpy(copy, orig, len);
            for (int k = 0; k < 1 + round % 4; k++)
                copy[rng() % len] ^= (unsigned char)(1u << (rng() % 8));
            write_file(path, copy, len);
            struct calendar *cal = cal_create("x", "z", err, sizeof(err));
            if (cal != NULL) {
                if (cal_set_week(cal, "mon-sun", "09:00-18:00", err,
                                 sizeof(err)) == 0) {
                    int64_t s =
                        rng_range(utc(1900, 1, 1, 0, 0), utc(2300, 1, 1, 0, 0));
                    int64_t d = cal_add(cal, s, 30 * DAY_MS);
                    assert_true(d >= s);
                    (void)cal_elapsed(cal, s, s + 400 * DAY_MS);
                }
                cal_free(cal);
            }
        }
        free(copy);
        free(orig);
    }
    /* A text file and a directory inside the zone directory. */
    write_file(path, (const unsigned char *)"hello\n", 6);
    assert_null(cal_create("x", "z", err, sizeof(err)));
    snprintf(path, sizeof(path), "%s/d", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_null(cal_create("x", "d", err, sizeof(err)));
    rmdir(path);
    snprintf(path, sizeof(path), "%s/z", dir);
    unlink(path);
    /* UTC works without any zone database. */
    struct calendar *cal = cal_create("x", "UTC", err, sizeof(err));
    assert_non_null(cal);
    assert_int_equal(cal_utc_offset_ms(cal, utc(2026, 7, 1, 0, 0)), 0);
    cal_free(cal);
    rmdir(dir);
    if (saved) {
        setenv("TZDIR", saved, 1);
        free(saved);
    } else {
        unsetenv("TZDIR");
    }
}

/* cal_add() and cal_elapsed() are inverse, and cal_elapsed() is additive
 * (which also checks the whole-week skipping against the day walk). */
static void
test_inverse_random(void **state)
{
    (void)state;
    static const char *const multi[] = {"mon-thu", "08:00-12:00,12:30-17:00",
                                        "fri",     "08:00-13:00",
                                        "sun",     "01:00-04:00",
                                        NULL};
    static const char *const hol[] = {"2026-12-24", "2026-12-25", "2027-03-29",
                                      "2027-10-31", "2028-02-29", NULL};
    struct calendar *cals[] = {
        make_cal("Europe/Berlin", office_week, hol),
        make_cal("America/New_York", multi, hol),
        make_cal("Asia/Shanghai", office_week, NULL),
        make_cal("Australia/Sydney", always_week, hol),
        make_cal("UTC", multi, NULL),
    };
    int64_t lo = utc(2026, 1, 1, 0, 0), hi = utc(2029, 1, 1, 0, 0);

    for (size_t c = 0; c < ARRAY_LEN(cals); c++) {
        struct calendar *cal = cals[c];
        for (int i = 0; i < 3000; i++) {
            int64_t s = rng_range(lo, hi);
            int64_t x = rng_range(0, i % 10 == 0 ? 400 * DAY_MS : 30 * DAY_MS);
            int64_t t = cal_add(cal, s, x);
            assert_true(t >= s + x || (x == 0 && t >= s));
            assert_int_equal(cal_elapsed(cal, s, t), x);
            if (x > 0)
                assert_true(cal_elapsed(cal, s, t - 1) == x - 1);

            int64_t u = s + rng_range(0, 60 * DAY_MS);
            int64_t y = cal_elapsed(cal, s, u);
            int64_t t2 = cal_add(cal, s, y);
            assert_true(t2 <= u || y == 0);
            assert_int_equal(cal_elapsed(cal, s, t2), y);

            /* Additivity over random cut points. */
            int64_t v = s, sum = 0;
            while (v < u) {
                int64_t step = rng_range(1, 9 * DAY_MS);
                int64_t w = v + step < u ? v + step : u;
                sum += cal_elapsed(cal, v, w);
                v = w;
            }
            assert_int_equal(sum, y);
            assert_int_equal(cal_is_open(cal, s),
                             cal_elapsed(cal, s, s + 1) == 1);
        }
        cal_free(cal);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_office_friday_to_monday),
        cmocka_unit_test(test_holiday_in_between),
        cmocka_unit_test(test_multi_segment_days),
        cmocka_unit_test(test_segment_boundaries),
        cmocka_unit_test(test_touching_segments_and_midnight),
        cmocka_unit_test(test_dst_berlin),
        cmocka_unit_test(test_dst_new_york),
        cmocka_unit_test(test_dst_southern),
        cmocka_unit_test(test_change_instants),
        cmocka_unit_test(test_shanghai_no_dst),
        cmocka_unit_test(test_year_end_and_leap_day),
        cmocka_unit_test(test_far_future),
        cmocka_unit_test(test_format_local),
        cmocka_unit_test(test_null_is_24x7),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_corrupt_zone_files),
        cmocka_unit_test(test_inverse_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
