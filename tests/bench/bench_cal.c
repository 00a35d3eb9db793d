/*
 * bench_cal.c - how many deadline computations per second the calendar
 * core does: an office calendar in Europe/Berlin (09:00-12:30,13:30-18:00
 * on weekdays, Saturday mornings, a year of public holidays) with starts
 * spread over 2026-2027, so that DST changes and holidays are crossed.
 * Standalone, no Redis; prints one line per measurement.
 *
 * Usage: bench_cal [seconds per measurement, default 1]
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "slawatch/cal.h"
#include "slawatch/util.h"

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define NSAMPLES 4096

static const char *const holidays[] = {
    "2026-01-01", "2026-04-03", "2026-04-06", "2026-05-01", "2026-05-14",
    "2026-05-25", "2026-10-03", "2026-12-24", "2026-12-25", "2026-12-26",
    "2026-12-31", "2027-01-01", "2027-03-26", "2027-03-29", "2027-05-01",
    "2027-05-06", "2027-05-17", "2027-10-03", "2027-12-24", "2027-12-25",
    "2027-12-26", "2027-12-31",
};

static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint64_t
rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sinks results so the compiler cannot drop the calls. */
static volatile int64_t sink;

struct sample {
    int64_t start_ms;
    int64_t business_ms;
    int64_t end_ms;
};

typedef int64_t (*bench_fn)(const struct calendar *, const struct sample *);

static int64_t
run_add(const struct calendar *cal, const struct sample *s)
{
    return cal_add(cal, s->start_ms, s->business_ms);
}

static int64_t
run_elapsed(const struct calendar *cal, const struct sample *s)
{
    return cal_elapsed(cal, s->start_ms, s->end_ms);
}

/* Measures fn over the samples for about `seconds`. A target of 0 means
 * informational; otherwise a rate below it is reported as MISSED (the
 * bench runner lists those). Targets: re-targeting a million running
 * clocks on SIGHUP should take well under a second. */
static void
measure(const char *label, const struct calendar *cal,
        const struct sample *samples, bench_fn fn, double seconds,
        double target)
{
    uint64_t ops = 0;
    double t0 = now_s(), t;
    uint64_t acc = 0;

    do {
        for (int i = 0; i < NSAMPLES; i++)
            acc += (uint64_t)fn(cal, &samples[i]);
        ops += NSAMPLES;
        t = now_s();
    } while (t - t0 < seconds);
    sink = (int64_t)(acc >> 1);
    double rate = (double)ops / (t - t0);
    printf("%-34s %12.0f ops/s  (%.0f ns/op)", label, rate,
           (t - t0) * 1e9 / (double)ops);
    if (target > 0)
        printf("  (target >= %.0f ops/s)%s", target,
               rate < target ? " MISSED" : "");
    printf("\n");
}

/* Samples with starts in 2026-2027 and targets of [lo, hi) business ms. */
static void
fill(struct sample *s, int64_t lo, int64_t hi, int64_t span_lo, int64_t span_hi)
{
    int64_t from = days_from_civil(2026, 1, 1) * DAY_MS;
    int64_t to = days_from_civil(2028, 1, 1) * DAY_MS;
    for (int i = 0; i < NSAMPLES; i++) {
        s[i].start_ms = from + (int64_t)(rng() % (uint64_t)(to - from));
        s[i].business_ms = lo + (int64_t)(rng() % (uint64_t)(hi - lo));
        s[i].end_ms = s[i].start_ms + span_lo +
                      (int64_t)(rng() % (uint64_t)(span_hi - span_lo));
    }
}

int
main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    char err[256];
    struct calendar *cal =
        cal_create("office", "Europe/Berlin", err, sizeof(err));
    static struct sample samples[NSAMPLES];

    if (seconds <= 0)
        seconds = 1.0;
    if (cal == NULL ||
        cal_set_week(cal, "mon-fri", "09:00-12:30,13:30-18:00", err,
                     sizeof(err)) < 0 ||
        cal_set_week(cal, "sat", "10:00-13:00", err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_cal: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < ARRAY_LEN(holidays); i++) {
        if (cal_add_holiday(cal, holidays[i], err, sizeof(err)) < 0) {
            fprintf(stderr, "bench_cal: %s\n", err);
            return 1;
        }
    }
    if (cal_finish(cal, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_cal: %s\n", err);
        return 1;
    }

    printf("calendar: Europe/Berlin, 43h/week, %zu holidays, starts in "
           "2026-2027\n",
           ARRAY_LEN(holidays));
    fill(samples, 5 * 60000LL, 4 * HOUR_MS, 0, 1);
    measure("cal_add (5m..4h):", cal, samples, run_add, seconds, 1e6);
    fill(samples, 4 * HOUR_MS, 5 * 8 * HOUR_MS, 0, 1);
    measure("cal_add (4h..5 business days):", cal, samples, run_add, seconds,
            1e6);
    fill(samples, 30 * 8 * HOUR_MS, 250 * 8 * HOUR_MS, 0, 1);
    measure("cal_add (30..250 business days):", cal, samples, run_add, seconds,
            0);
    fill(samples, 0, 1, 0, 7 * DAY_MS);
    measure("cal_elapsed (0..7 days):", cal, samples, run_elapsed, seconds,
            1e6);
    fill(samples, 0, 1, 30 * DAY_MS, 365 * DAY_MS);
    measure("cal_elapsed (30..365 days):", cal, samples, run_elapsed, seconds,
            0);
    fill(samples, 4 * HOUR_MS, 5 * 8 * HOUR_MS, 0, 1);
    measure("cal_add 24x7 (NULL calendar):", NULL, samples, run_add, seconds,
            0);
    cal_free(cal);
    return 0;
}
