/*
 * util.c - pure helpers: durations, RFC 3339 timestamps, civil dates,
 * UTF-8 checks, clocks. Owns no state; must never allocate or log.
 */
#define _GNU_SOURCE
#include "slawatch/util.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *unit;
    size_t len;
    int64_t ms;
} dur_units[] = {
    /* Order matters: "ms" must be tried before "m". */
    { "d", 1, 86400000LL }, { "h", 1, 3600000LL }, { "ms", 2, 1LL },
    { "m", 1, 60000LL },    { "s", 1, 1000LL },
};

int
dur_parse(const char *text, int64_t *out_ms)
{
    const char *p = text;
    int64_t total = 0;
    int64_t last_unit = INT64_MAX;

    if (text == NULL || *text == '\0')
        return -1;
    if (strcmp(text, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    while (*p) {
        int64_t n = 0;
        size_t i;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9') {
            if (n > (INT64_MAX - 9) / 10)
                return -1;
            n = n * 10 + (*p - '0');
            p++;
        }
        for (i = 0; i < ARRAY_LEN(dur_units); i++)
            if (strncmp(p, dur_units[i].unit, dur_units[i].len) == 0)
                break;
        if (i == ARRAY_LEN(dur_units))
            return -1;
        /* Components must come in decreasing order, each unit once. */
        if (dur_units[i].ms >= last_unit)
            return -1;
        last_unit = dur_units[i].ms;
        p += dur_units[i].len;
        if (n > INT64_MAX / dur_units[i].ms ||
            total > INT64_MAX - n * dur_units[i].ms)
            return -1;
        total += n * dur_units[i].ms;
    }
    *out_ms = total;
    return 0;
}

char *
dur_format(int64_t ms, char *buf, size_t len)
{
    static const struct { char unit[3]; int64_t ms; } parts[] = {
        { "d", 86400000LL }, { "h", 3600000LL }, { "m", 60000LL },
        { "s", 1000LL },     { "ms", 1LL },
    };
    size_t off = 0;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (ms <= 0) {
        snprintf(buf, len, "0s");
        return buf;
    }
    for (size_t i = 0; i < ARRAY_LEN(parts) && ms > 0; i++) {
        int64_t n = ms / parts[i].ms;
        if (n == 0)
            continue;
        ms -= n * parts[i].ms;
        int w = snprintf(buf + off, len - off, "%lld%s", (long long)n,
                         parts[i].unit);
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
    }
    return buf;
}

/* Howard Hinnant's days_from_civil: exact for the proleptic Gregorian
 * calendar, no table, no time zone. */
int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int
days_in_month(int64_t y, unsigned m)
{
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return mdays[m - 1];
}

/* Reads exactly n digits at *p (bounded by end); returns -1 if absent. */
static int
read_digits(const char **p, const char *end, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || **p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    return v;
}

static int
expect_char(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return -1;
    (*p)++;
    return 0;
}

int
ts_parse(const char *text, size_t len, int64_t *out_ms)
{
    const char *p = text, *end = text + len;
    size_t i;

    if (len == 0 || len > 64)
        return -1;
    /* Integer milliseconds since the epoch. */
    for (i = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++)
        ;
    if (i == len) {
        int64_t v = 0;
        if (len > 18)
            return -1;
        for (i = 0; i < len; i++)
            v = v * 10 + (text[i] - '0');
        if (v > TS_MAX_MS)
            return -1;
        *out_ms = v;
        return 0;
    }

    int year = read_digits(&p, end, 4);
    if (year < 0 || expect_char(&p, end, '-') < 0)
        return -1;
    int mon = read_digits(&p, end, 2);
    if (mon < 1 || mon > 12 || expect_char(&p, end, '-') < 0)
        return -1;
    int day = read_digits(&p, end, 2);
    if (day < 1 || day > days_in_month(year, (unsigned)mon))
        return -1;
    if (p >= end || (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    int hh = read_digits(&p, end, 2);
    if (hh < 0 || hh > 23 || expect_char(&p, end, ':') < 0)
        return -1;
    int mm = read_digits(&p, end, 2);
    if (mm < 0 || mm > 59 || expect_char(&p, end, ':') < 0)
        return -1;
    int ss = read_digits(&p, end, 2);
    if (ss < 0 || ss > 60) /* 60: a leap second, folded into the next */
        return -1;
    int64_t frac_ms = 0;
    if (p < end && *p == '.') {
        int digits = 0;
        p++;
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    int64_t offset_s = 0;
    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int oh = read_digits(&p, end, 2);
        if (oh < 0 || oh > 23 || expect_char(&p, end, ':') < 0)
            return -1;
        int om = read_digits(&p, end, 2);
        if (om < 0 || om > 59)
            return -1;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (p != end)
        return -1;
    int64_t days = days_from_civil(year, (unsigned)mon, (unsigned)day);
    int64_t secs = days * 86400 + hh * 3600 + mm * 60 + ss - offset_s;
    if (secs < 0 || secs > TS_MAX_MS / 1000)
        return -1; /* 9999-12-31T23:59:60Z or a negative offset past it */
    *out_ms = secs * 1000 + frac_ms;
    return 0;
}

/* Clamped to [TS_MIN_MS, TS_MAX_MS]: an outbox record or a checkpoint may
 * carry any int64 (INT64_MIN would overflow the negation below), and RFC
 * 3339 has four-digit years only. */
char *
ts_format(int64_t ms, char *buf)
{
    if (ms < TS_MIN_MS)
        ms = TS_MIN_MS;
    else if (ms > TS_MAX_MS)
        ms = TS_MAX_MS;
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t rem = ms - secs * 1000;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t sod = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    /* sod is in [0, 86399] and rem in [0, 999]; the unsigned casts and
     * the "% 24" only tell gcc's -Wformat-truncation so. */
    snprintf(buf, TS_BUFLEN, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ",
             (long long)y, m, d, (unsigned)(sod / 3600) % 24,
             (unsigned)(sod / 60 % 60), (unsigned)(sod % 60),
             (unsigned)rem % 1000);
    return buf;
}

bool
str_is_clean_utf8(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t need;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + need >= len)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates, beyond U+10FFFF, C1 controls. */
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
            (cp >= 0x80 && cp <= 0x9f))
            return false;
        i += need + 1;
    }
    return true;
}

int64_t
now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
now_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
