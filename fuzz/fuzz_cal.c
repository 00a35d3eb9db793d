/*
 * fuzz_cal.c - the TZif reader and the calendar arithmetic (cal.h). There
 * is no API that reads a zone from memory (cal_create() reads the zone
 * database once, which is the point), so the harness writes the zone bytes
 * to a file in a private directory and points TZDIR at it.
 *
 * Input layout:
 *   3 little-endian int64: start, business and end instants
 *   a week spec up to the first NUL: lines "DAYS SEGMENTS" for
 *     cal_set_week ("mon-fri 09:00-17:00") and "H YYYY-MM-DD" holidays;
 *     an empty spec is "mon-fri 09:00-12:00,13:00-17:00"
 *   the rest: the TZif file
 * Each instant is used as it is and, folded, near FUZZ_WALL_MS (within
 * 68 years, business time within 400 days), so both the edges and the
 * ordinary years are reached.
 *
 * Checked: cal_elapsed(c, s, cal_add(c, s, x)) == x whenever the deadline
 * exists (cal.h), deadlines never lie before their start, elapsed time is
 * never negative nor more than the real time between the instants.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "slawatch/cal.h"
#include "slawatch/util.h"

#define DAY_MS 86400000LL

static char zone_path[4096];

/* The private zone directory, made once; the process removes it at exit. */
static void
cleanup(void)
{
    char dir[4096];
    unlink(zone_path);
    snprintf(dir, sizeof(dir), "%s", zone_path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        rmdir(dir);
    }
}

static void
zone_dir(void)
{
    if (zone_path[0])
        return;
    const char *tmp = getenv("TMPDIR");
    char dir[4000];
    snprintf(dir, sizeof(dir), "%s/slawatch-fuzz-cal-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("fuzz_cal: mkdtemp");
        abort();
    }
    snprintf(zone_path, sizeof(zone_path), "%s/Fuzz", dir);
    if (setenv("TZDIR", dir, 1) < 0)
        abort();
    atexit(cleanup);
}

static void
write_zone(const uint8_t *data, size_t size)
{
    FILE *f = fopen(zone_path, "wb");
    if (f == NULL || (size && fwrite(data, 1, size, f) != size) ||
        fclose(f) != 0) {
        perror("fuzz_cal: zone file");
        abort();
    }
}

/* Applies the week spec; returns false when the calendar is unusable. */
static bool
build(struct calendar *cal, const char *spec, size_t len)
{
    char err[256], line[256];
    struct fuzz_split s;
    const char *p;
    size_t n;
    bool any = false;

    fuzz_split_init(&s, spec, len, '\n');
    while ((p = fuzz_split_next(&s, &n)) != NULL) {
        if (n == 0 || n >= sizeof(line))
            continue;
        memcpy(line, p, n);
        line[n] = '\0';
        char *sp = strchr(line, ' ');
        if (sp == NULL)
            continue;
        *sp = '\0';
        err[0] = '\0';
        if (strcmp(line, "H") == 0) {
            if (cal_add_holiday(cal, sp + 1, err, sizeof(err)) < 0 &&
                err[0] == '\0')
                abort(); /* a refusal always says why */
        } else if (cal_set_week(cal, line, sp + 1, err, sizeof(err)) == 0)
            any = true;
    }
    if (!any &&
        cal_set_week(cal, "mon-fri", "09:00-12:00,13:00-17:00", err,
                     sizeof(err)) < 0)
        return false;
    return cal_finish(cal, err, sizeof(err)) == 0;
}

static void
check(const struct calendar *cal, int64_t start, int64_t business, int64_t end)
{
    char local[CAL_LOCAL_BUFLEN];

    if (business < 0)
        business = business == INT64_MIN ? INT64_MAX : -business;
    int64_t due = cal_add(cal, start, business);
    if (due != INT64_MAX) {
        if (due < start)
            abort();
        int64_t back = cal_elapsed(cal, start, due);
        if (back != business) {
            fprintf(stderr,
                    "fuzz_cal: cal_add(%lld, %lld) = %lld, elapsed back %lld\n",
                    (long long)start, (long long)business, (long long)due,
                    (long long)back);
            abort();
        }
    }
    int64_t el = cal_elapsed(cal, start, end);
    if (el < 0 || (end > start && (uint64_t)el > (uint64_t)end - (uint64_t)start) ||
        (end <= start && el != 0))
        abort();
    (void)cal_is_open(cal, start);
    (void)cal_utc_offset_ms(cal, start);
    cal_format_local(cal, start, local);
    cal_format_local(cal, due, local);
    cal_format_local(cal, end, local);
    if (strlen(local) >= CAL_LOCAL_BUFLEN - 1)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    int64_t start = (int64_t)fuzz_take_u64(&data, &size);
    int64_t business = (int64_t)fuzz_take_u64(&data, &size);
    int64_t end = (int64_t)fuzz_take_u64(&data, &size);
    const uint8_t *nul = size ? memchr(data, '\0', size) : NULL;
    size_t speclen = nul ? (size_t)(nul - data) : 0;
    const char *spec = (const char *)data;

    if (nul) {
        data = nul + 1;
        size -= speclen + 1;
    }
    zone_dir();
    write_zone(data, size);
    struct calendar *cal = cal_create("fuzz", "Fuzz", err, sizeof(err));
    if (cal == NULL)
        return 0;
    if (build(cal, speclen ? spec : "", speclen)) {
        check(cal, start, business, end);
        check(cal, FUZZ_WALL_MS + (int64_t)(int32_t)start * 1000,
              (int64_t)((uint64_t)business % (400 * DAY_MS)),
              FUZZ_WALL_MS + (int64_t)(int32_t)end * 1000);
        check(NULL, start, business, end);
    }
    cal_free(cal);
    return 0;
}
