/*
 * test_cal_crosscheck.c - compares cal_add(), cal_elapsed() and
 * cal_is_open() on 10,000 random cases against a deliberately naive model:
 * walk minute by minute and ask the C library (TZ + tzset + localtime_r,
 * i.e. glibc's own reading of the zone database) what the local wall time
 * is, then look that minute up in a hand-written table of open minutes.
 *
 * The Sunday hours of several calendars are sliced so that the minute just
 * after each DST change is open on one side of the change and closed on the
 * other: a change applied a minute early or late shows.
 *
 * Starts are whole minutes and targets whole minutes, so every minute is
 * either wholly open or wholly closed and the count is exact. Starts fall
 * mostly in 2026-2028 (DST changes every few weeks of walking), some in the
 * 1990s (transitions listed in the zone file itself), around 2038, 2100 and
 * 2200 (where cal.c switches from its expanded table to the rule).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "slawatch/cal.h"
#include "slawatch/util.h"

#define MIN_MS 60000LL
#define DAY_MIN 1440
#define TOTAL_CASES 10000
/* No case may walk further than this; a longer walk is a bug in one of
 * the two implementations. */
#define MAX_WALK_MIN (120 * DAY_MIN)

enum { SUN = 1, MON = 2, TUE = 4, WED = 8, THU = 16, FRI = 32, SAT = 64 };
#define MON_FRI (MON | TUE | WED | THU | FRI)

/* Open minutes [from, to) of the days in wday_mask (bit tm_wday). */
struct ref_seg {
    unsigned wday_mask;
    int from_min, to_min;
};

struct xcal {
    const char *zone;
    const char *week[8]; /* days, hours pairs fed to cal_set_week() */
    struct ref_seg ref[6];
    const char *holidays[12];
};

static const struct xcal xcals[] = {
    {
        "Europe/Berlin",
        {"mon-fri", "09:00-18:00"},
        {{MON_FRI, 9 * 60, 18 * 60}},
        {"2026-04-03", "2026-12-24", "2026-12-25", "2026-12-31", "2027-01-01",
         "2027-03-26", "2027-12-24", "2028-02-29", "1996-03-29", "2038-01-19",
         "2200-03-31"},
    },
    {
        "America/New_York",
        {"mon-fri", "08:00-12:00,13:00-17:30", "sat", "10:00-14:00", "sun",
         "00:50-00:58,01:40-02:05,03:05-03:15"},
        {{MON_FRI, 8 * 60, 12 * 60},
         {MON_FRI, 13 * 60, 17 * 60 + 30},
         {SAT, 10 * 60, 14 * 60},
         {SUN, 50, 58},
         {SUN, 100, 125},
         {SUN, 185, 195}},
        {"2026-11-26", "2026-12-25", "2027-07-05", "2027-11-25", "2028-07-04"},
    },
    {
        "Asia/Shanghai",
        {"mon-fri", "09:00-18:00", "sat", "10:00-14:00"},
        {{MON_FRI, 9 * 60, 18 * 60}, {SAT, 10 * 60, 14 * 60}},
        {"2026-10-01", "2026-10-02", "2027-02-05", "2027-10-01"},
    },
    {
        "UTC",
        {"mon", "22:00-24:00", "tue-fri", "00:00-06:00,22:00-24:00", "sat",
         "00:00-06:00"},
        {{MON_FRI, 22 * 60, 24 * 60}, {TUE | WED | THU | FRI | SAT, 0, 6 * 60}},
        {"2027-01-01"},
    },
    {
        "Australia/Sydney",
        {"mon-fri", "09:00-17:00", "sun", "01:30-02:05,03:05-03:15"},
        {{MON_FRI, 9 * 60, 17 * 60}, {SUN, 90, 125}, {SUN, 185, 195}},
        {"2026-12-25", "2027-01-26"},
    },
    {
        /* Open in slices around the hours that DST removes or repeats,
         * so that the exact instant of each change matters. */
        "Europe/Berlin",
        {"sun", "00:30-01:15,01:45-02:05,02:40-02:50,03:05-04:05", "mon-sat",
         "02:00-03:00"},
        {{SUN, 30, 75},
         {SUN, 105, 125},
         {SUN, 160, 170},
         {SUN, 185, 245},
         {MON | TUE | WED | THU | FRI | SAT, 120, 180}},
        {"2027-03-30"},
    },
};

struct ref_model {
    bool open[7][DAY_MIN]; /* [tm_wday][minute of day] */
    int hol[12][3];
    int nhol;
};

static void
ref_build(const struct xcal *x, struct ref_model *m)
{
    memset(m, 0, sizeof(*m));
    for (size_t i = 0; i < ARRAY_LEN(x->ref) && x->ref[i].wday_mask; i++)
        for (int wd = 0; wd < 7; wd++)
            if (x->ref[i].wday_mask & (1u << wd))
                for (int mi = x->ref[i].from_min; mi < x->ref[i].to_min; mi++)
                    m->open[wd][mi] = true;
    for (size_t i = 0; i < ARRAY_LEN(x->holidays) && x->holidays[i]; i++) {
        int *h = m->hol[m->nhol++];
        assert_int_equal(
            sscanf(x->holidays[i], "%d-%d-%d", &h[0], &h[1], &h[2]), 3);
    }
}

/* Is the minute starting at t open? Asks the C library for local time. */
static bool
ref_open(const struct ref_model *m, int64_t t_ms)
{
    time_t t = (time_t)(t_ms / 1000);
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL)
        fail_msg("localtime_r failed");
    for (int i = 0; i < m->nhol; i++)
        if (tm.tm_year + 1900 == m->hol[i][0] &&
            tm.tm_mon + 1 == m->hol[i][1] && tm.tm_mday == m->hol[i][2])
            return false;
    return m->open[tm.tm_wday][tm.tm_hour * 60 + tm.tm_min];
}

static struct calendar *
make_cal(const struct xcal *x)
{
    char err[256];
    struct calendar *cal = cal_create("x", x->zone, err, sizeof(err));
    if (cal == NULL)
        fail_msg("%s: %s", x->zone, err);
    for (size_t i = 0; i < ARRAY_LEN(x->week) && x->week[i]; i += 2)
        if (cal_set_week(cal, x->week[i], x->week[i + 1], err, sizeof(err)))
            fail_msg("%s %s: %s", x->week[i], x->week[i + 1], err);
    for (size_t i = 0; i < ARRAY_LEN(x->holidays) && x->holidays[i]; i++)
        if (cal_add_holiday(cal, x->holidays[i], err, sizeof(err)))
            fail_msg("%s: %s", x->holidays[i], err);
    if (cal_finish(cal, err, sizeof(err)))
        fail_msg("finish: %s", err);
    return cal;
}

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t
rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static int64_t
rng_below(int64_t n)
{
    return (int64_t)(rng() % (uint64_t)n);
}

static int64_t
minute_of(int y, unsigned m, unsigned d)
{
    return days_from_civil(y, m, d) * DAY_MIN;
}

/* A random start minute: mostly 2026-2028, some in other eras. */
static int64_t
random_start_min(void)
{
    int64_t r = rng_below(100);
    int64_t lo, hi;

    if (r < 75) {
        lo = minute_of(2026, 1, 1), hi = minute_of(2029, 1, 1);
    } else if (r < 80) {
        lo = minute_of(1994, 1, 1), hi = minute_of(1998, 1, 1);
    } else if (r < 85) {
        lo = minute_of(2037, 6, 1), hi = minute_of(2039, 6, 1);
    } else if (r < 90) {
        lo = minute_of(2099, 6, 1), hi = minute_of(2101, 6, 1);
    } else {
        /* cal.c evaluates the rule directly from 2200-07-01 on. */
        lo = minute_of(2199, 9, 1), hi = minute_of(2201, 6, 1);
    }
    return lo + rng_below(hi - lo);
}

/* Business minutes: mostly up to a working day, some up to three days. */
static int64_t
random_target_min(void)
{
    int64_t r = rng_below(100);
    if (r < 3)
        return 0;
    if (r < 60)
        return rng_below(8 * 60) + 1;
    if (r < 90)
        return rng_below(DAY_MIN) + 1;
    return rng_below(3 * DAY_MIN) + 1;
}

static void
report(const struct xcal *x, const char *what, int64_t start_ms,
       int64_t target_min, int64_t got, int64_t want)
{
    char b1[TS_BUFLEN], b2[TS_BUFLEN], b3[TS_BUFLEN];
    fail_msg("%s %s: start %s target %lldmin: got %s (%lld), model %s (%lld)",
             x->zone, what, ts_format(start_ms, b1), (long long)target_min,
             ts_format(got, b2), (long long)got, ts_format(want, b3),
             (long long)want);
}

static void
test_crosscheck(void **state)
{
    (void)state;
    /* cum[i] = open minutes in [start, start + i minutes) */
    int64_t *cum = malloc((MAX_WALK_MIN + 1) * sizeof(*cum));
    struct ref_model *model = malloc(sizeof(*model));
    const char *old_tz = getenv("TZ");
    char *saved_tz = old_tz ? strdup(old_tz) : NULL;
    int ncases = 0;

    assert_non_null(cum);
    assert_non_null(model);
    for (size_t c = 0; c < ARRAY_LEN(xcals); c++) {
        const struct xcal *x = &xcals[c];
        struct calendar *cal = make_cal(x);
        int n = TOTAL_CASES / (int)ARRAY_LEN(xcals);
        if (c == ARRAY_LEN(xcals) - 1)
            n = TOTAL_CASES - ncases;

        ref_build(x, model);
        setenv("TZ", x->zone, 1);
        tzset();
        for (int i = 0; i < n; i++, ncases++) {
            int64_t start = random_start_min() * MIN_MS;
            int64_t target = random_target_min();
            int64_t want = -1;
            int64_t len = 0;

            cum[0] = 0;
            while (want < 0) {
                if (len == MAX_WALK_MIN)
                    report(x, "walk too long", start, target, 0, 0);
                int64_t t = start + len * MIN_MS;
                bool open = ref_open(model, t);
                if (target == 0 && open)
                    want = t;
                cum[len + 1] = cum[len] + open;
                len++;
                if (target > 0 && cum[len] == target)
                    want = t + MIN_MS;
            }

            int64_t got = cal_add(cal, start, target * MIN_MS);
            if (got != want)
                report(x, "cal_add", start, target, got, want);
            if (cal_is_open(cal, start) != (cum[1] == 1))
                report(x, "cal_is_open", start, target, cal_is_open(cal, start),
                       cum[1]);
            int64_t el = cal_elapsed(cal, start, want);
            if (el != target * MIN_MS)
                report(x, "cal_elapsed(start, deadline)", start, target, el,
                       target * MIN_MS);
            /* Sub-intervals of the walked span, from arbitrary minutes. */
            for (int k = 0; k < 3; k++) {
                int64_t a = rng_below(len + 1), b = rng_below(len + 1);
                if (a > b) {
                    int64_t tmp = a;
                    a = b;
                    b = tmp;
                }
                el = cal_elapsed(cal, start + a * MIN_MS, start + b * MIN_MS);
                if (el != (cum[b] - cum[a]) * MIN_MS)
                    report(x, "cal_elapsed(sub-interval)", start + a * MIN_MS,
                           b - a, el, (cum[b] - cum[a]) * MIN_MS);
            }
        }
        cal_free(cal);
    }
    assert_int_equal(ncases, TOTAL_CASES);
    if (saved_tz) {
        setenv("TZ", saved_tz, 1);
        free(saved_tz);
    } else {
        unsetenv("TZ");
    }
    tzset();
    free(model);
    free(cum);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crosscheck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
