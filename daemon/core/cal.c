/*
 * cal.c - owns business-hours calendars: the weekly open hours, the holidays
 * and the time zone rules of each calendar, and the arithmetic that turns
 * "N ms of business time after T" into an instant and back.
 *
 * The zone is read once, in cal_create(), from the system zone database
 * (TZif file plus its POSIX TZ footer); after that everything is arithmetic
 * on a const struct, so any thread may use a finished calendar. This file must
 * not touch the process time zone (TZ, tzset, localtime), must not do I/O
 * outside cal_create(), and must never crash or assert on an input string.
 *
 * Model: an instant t is open when its local wall time t + offset(t) falls in
 * an open segment of that local day and the day is not a holiday. Business
 * time is the number of real milliseconds that are open, so a local hour that
 * does not exist (spring forward) counts nothing and a repeated hour (fall
 * back) counts twice when both copies are open.
 *
 * The TZif reader is kept here rather than in a file of its own because
 * calendars are its only user and it exposes nothing outside this file.
 */
#define _GNU_SOURCE
#include "slawatch/cal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MS_PER_SEC 1000LL
#define MS_PER_MIN 60000LL
#define MS_PER_HOUR 3600000LL
#define MS_PER_DAY 86400000LL
#define MS_PER_WEEK (7 * MS_PER_DAY)

/* Instants handled: 0001-01-01T00:00Z up to 10000-01-01T00:00Z. Outside
 * this range cal_add() gives INT64_MAX and cal_elapsed() clamps, so no
 * arithmetic below can overflow. */
#define CAL_MIN_MS (-62135596800000LL)
#define CAL_MAX_MS 253402300800000LL

#define CAL_MAX_SEGMENTS 16
#define CAL_ZONE_NAME_MAX 255
#define TZ_FILE_MAX (1 << 20)
#define TZ_FOOTER_MAX 256
/* Offsets allowed by RFC 8536 (-25:59:59 .. +25:59:59). */
#define TZ_OFFSET_MAX_S 93599
/* The POSIX rule of the footer is expanded into the transition table up to
 * this year, so that the common case is one binary search; later instants
 * evaluate the rule directly. */
#define TZ_EXPAND_END_YEAR 2200

struct cal_segment {
    int32_t start_ms; /* local milliseconds since midnight, [start, end) */
    int32_t end_ms;
};

struct cal_day {
    bool set; /* named by some cal_set_week() call, even as "closed" */
    int nseg;
    struct cal_segment seg[CAL_MAX_SEGMENTS];
};

/* One date rule of a POSIX TZ string: "Jn", "n" or "Mm.w.d", plus the local
 * time of day (seconds, may be negative or past 24h) the change happens. */
enum tz_date_kind { TZ_DATE_JULIAN1, TZ_DATE_JULIAN0, TZ_DATE_MONTH };

struct tz_date {
    enum tz_date_kind kind;
    int n;     /* Jn: 1..365, n: 0..365 */
    int month; /* Mm.w.d */
    int week;  /* 1..5, 5 = last */
    int wday;  /* 0 = Sunday */
    int32_t time_s;
};

struct tz_rule {
    bool has_dst;
    int32_t std_off_s; /* seconds east of UTC, as in TZif */
    int32_t dst_off_s;
    struct tz_date start; /* std -> dst, in standard local time */
    struct tz_date end;   /* dst -> std, in daylight local time */
};

struct tz_zone {
    int64_t *trans_ms; /* ascending instants where the offset changes */
    int32_t *off_ms;   /* offset in effect from trans_ms[i] on */
    size_t ntrans;
    int32_t initial_off_ms; /* before trans_ms[0] */
    /* From this instant on the table is not complete and the rule is
     * evaluated directly; INT64_MAX when the zone has no DST rule. */
    int64_t rule_from_ms;
    struct tz_rule rule;
};

struct calendar {
    char *name;
    char *timezone;
    struct tz_zone tz;
    struct cal_day week[7]; /* 0 = Monday */
    int64_t week_open_ms;   /* open ms in a week without holidays or DST */
    int64_t *holidays;      /* local day numbers, ascending, unique */
    size_t nholidays;
    size_t holidays_cap;
};

static const char *const day_short[7] = {"mon", "tue", "wed", "thu",
                                         "fri", "sat", "sun"};
static const char *const day_long[7] = {"monday",   "tuesday", "wednesday",
                                        "thursday", "friday",  "saturday",
                                        "sunday"};

static void cal_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cal_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copies at most max bytes of untrusted text for an error message, with
 * anything but printable ASCII shown as '?', so that the message stays one
 * clean line whatever the config holds. Returns out. */
#define QUOTE_BUFLEN 48
static const char *
quote_input(const char *s, size_t max, char out[QUOTE_BUFLEN])
{
    size_t i = 0;

    if (max > QUOTE_BUFLEN - 4)
        max = QUOTE_BUFLEN - 4;
    for (; s[i] != '\0' && i < max; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (s[i] != '\0')
        out[i++] = '.', out[i++] = '.', out[i++] = '.';
    out[i] = '\0';
    return out;
}

/* ---- small arithmetic helpers ------------------------------------------ */

/* Division rounding towards minus infinity (b > 0); C's '/' truncates, which
 * would put instants before 1970 on the wrong day. */
static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && a < 0)
        q--;
    return q;
}

static int64_t
min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t
max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* 0 = Monday; day 0 (1970-01-01) was a Thursday. */
static int
weekday_mon0(int64_t day)
{
    return (int)(day + 3 - floor_div(day + 3, 7) * 7);
}

static bool
is_leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int64_t y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap_year(y) ? 29 : mdays[m - 1];
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char
to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static const char *
skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* ---- POSIX TZ strings (the TZif footer) -------------------------------- */

/* Zone abbreviation: "<+08>" or three or more letters. */
static const char *
tzs_name(const char *p)
{
    const char *q = p;

    if (*q == '<') {
        q++;
        while (*q != '\0' && *q != '>')
            q++;
        if (*q != '>' || q == p + 1)
            return NULL;
        return q + 1;
    }
    while (is_alpha(*q))
        q++;
    return q - p >= 3 ? q : NULL;
}

/* "[+-]h[h][h][:mm[:ss]]" with hours up to max_hours; stores seconds. */
static const char *
tzs_time(const char *p, int max_hours, int32_t *out_s)
{
    int sign = 1, h = 0, m = 0, s = 0, nd = 0;

    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    while (is_digit(*p) && nd < 3) {
        h = h * 10 + (*p++ - '0');
        nd++;
    }
    if (nd == 0 || h > max_hours)
        return NULL;
    if (*p == ':') {
        if (!is_digit(p[1]) || !is_digit(p[2]))
            return NULL;
        m = (p[1] - '0') * 10 + (p[2] - '0');
        p += 3;
        if (*p == ':') {
            if (!is_digit(p[1]) || !is_digit(p[2]))
                return NULL;
            s = (p[1] - '0') * 10 + (p[2] - '0');
            p += 3;
        }
    }
    if (m > 59 || s > 59)
        return NULL;
    *out_s = sign * (h * 3600 + m * 60 + s);
    return p;
}

static const char *
tzs_number(const char *p, int lo, int hi, int *out)
{
    int v = 0, nd = 0;

    while (is_digit(*p) && nd < 4) {
        v = v * 10 + (*p++ - '0');
        nd++;
    }
    if (nd == 0 || v < lo || v > hi)
        return NULL;
    *out = v;
    return p;
}

/* ",Jn[/time]", ",n[/time]" or ",Mm.w.d[/time]"; time defaults to 02:00 and
 * may be -167..167 hours (RFC 8536 section 3.3.1). */
static const char *
tzs_date(const char *p, struct tz_date *d)
{
    if (*p++ != ',')
        return NULL;
    if (*p == 'J') {
        d->kind = TZ_DATE_JULIAN1;
        p = tzs_number(p + 1, 1, 365, &d->n);
    } else if (*p == 'M') {
        d->kind = TZ_DATE_MONTH;
        p = tzs_number(p + 1, 1, 12, &d->month);
        if (p == NULL || *p++ != '.')
            return NULL;
        p = tzs_number(p, 1, 5, &d->week);
        if (p == NULL || *p++ != '.')
            return NULL;
        p = tzs_number(p, 0, 6, &d->wday);
    } else {
        d->kind = TZ_DATE_JULIAN0;
        p = tzs_number(p, 0, 365, &d->n);
    }
    if (p == NULL)
        return NULL;
    d->time_s = 2 * 3600;
    if (*p == '/')
        p = tzs_time(p + 1, 167, &d->time_s);
    return p;
}

/* Parses a TZif footer such as "CET-1CEST,M3.5.0,M10.5.0/3" or "<+08>-8".
 * Returns 0, or -1 when the string is not a valid POSIX TZ rule. */
static int
tz_rule_parse(const char *s, struct tz_rule *r)
{
    const char *p = s;
    int32_t std_west;

    memset(r, 0, sizeof(*r));
    if ((p = tzs_name(p)) == NULL || (p = tzs_time(p, 24, &std_west)) == NULL)
        return -1;
    r->std_off_s = -std_west; /* POSIX counts west of UTC as positive */
    if (*p == '\0')
        return 0;
    if ((p = tzs_name(p)) == NULL)
        return -1;
    r->has_dst = true;
    r->dst_off_s = r->std_off_s + 3600;
    if (*p != ',' && *p != '\0') {
        int32_t dst_west;
        if ((p = tzs_time(p, 24, &dst_west)) == NULL)
            return -1;
        r->dst_off_s = -dst_west;
    }
    if (*p == '\0') {
        /* No dates: POSIX leaves this to the implementation; use the US
         * rules as glibc does. */
        p = ",M3.2.0,M11.1.0";
    }
    if ((p = tzs_date(p, &r->start)) == NULL ||
        (p = tzs_date(p, &r->end)) == NULL || *p != '\0')
        return -1;
    return 0;
}

/* Local day number of a rule date in year y. */
static int64_t
tz_date_day(const struct tz_date *d, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);

    switch (d->kind) {
    case TZ_DATE_JULIAN1: /* Feb 29 is never counted */
        return jan1 + d->n - 1 + (is_leap_year(y) && d->n >= 60 ? 1 : 0);
    case TZ_DATE_JULIAN0:
        return jan1 + d->n;
    case TZ_DATE_MONTH:
    default: {
        int64_t first = days_from_civil(y, (unsigned)d->month, 1);
        int first_wday = (weekday_mon0(first) + 1) % 7; /* 0 = Sunday */
        int64_t day =
            first + (d->wday - first_wday + 7) % 7 + 7 * (d->week - 1);
        int64_t last = first + month_days(y, d->month) - 1;
        while (day > last)
            day -= 7;
        return day;
    }
    }
}

struct tz_change {
    int64_t at_ms;
    int32_t off_ms;
};

/* The two changes of year y in time order. */
static void
tz_rule_year(const struct tz_rule *r, int64_t y, struct tz_change out[2])
{
    struct tz_change on, off;

    on.at_ms = tz_date_day(&r->start, y) * MS_PER_DAY +
               (int64_t)(r->start.time_s - r->std_off_s) * MS_PER_SEC;
    on.off_ms = r->dst_off_s * 1000;
    off.at_ms = tz_date_day(&r->end, y) * MS_PER_DAY +
                (int64_t)(r->end.time_s - r->dst_off_s) * MS_PER_SEC;
    off.off_ms = r->std_off_s * 1000;
    if (on.at_ms <= off.at_ms) {
        out[0] = on;
        out[1] = off;
    } else { /* southern hemisphere: DST spans the new year */
        out[0] = off;
        out[1] = on;
    }
}

/* Offset at t from the rule alone, and the next change after t. */
static void
tz_rule_at(const struct tz_rule *r, int64_t t, int32_t *off_ms,
           int64_t *next_ms)
{
    struct tz_change ch[6];
    int64_t y;
    unsigned m, d;

    civil_from_days(floor_div(t + r->std_off_s * 1000LL, MS_PER_DAY), &y, &m,
                    &d);
    for (int i = 0; i < 3; i++)
        tz_rule_year(r, y - 1 + i, &ch[2 * i]);
    /* Before the first change of last year we are in the state the year
     * before last ended in, which is the state after ch[1]. */
    *off_ms = ch[1].off_ms;
    *next_ms = CAL_MAX_MS;
    for (int i = 0; i < 6; i++) {
        if (ch[i].at_ms <= t) {
            *off_ms = ch[i].off_ms;
        } else {
            *next_ms = ch[i].at_ms;
            break;
        }
    }
}

/* ---- TZif files -------------------------------------------------------- */

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int64_t
be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_header {
    int version; /* 0 for version 1, else '2', '3', ... */
    uint64_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int
tzif_header(const unsigned char *p, size_t len, struct tzif_header *h)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return -1;
    h->version = p[4];
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return 0;
}

/* Bytes of the data block after a header; counts are at most 2^32, so the
 * sum cannot overflow 64 bits. */
static uint64_t
tzif_data_len(const struct tzif_header *h, unsigned tsize)
{
    return h->timecnt * tsize + h->timecnt + h->typecnt * 6 + h->charcnt +
           h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static int
tz_push(struct tz_zone *tz, size_t *cap, int64_t at_ms, int32_t off_ms)
{
    int32_t last = tz->ntrans ? tz->off_ms[tz->ntrans - 1] : tz->initial_off_ms;

    if (off_ms == last)
        return 0; /* only the abbreviation or isdst changed */
    if (tz->ntrans && at_ms <= tz->trans_ms[tz->ntrans - 1])
        return 0;
    if (tz->ntrans == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        int64_t *t = realloc(tz->trans_ms, ncap * sizeof(*t));
        if (t == NULL)
            return -1;
        tz->trans_ms = t;
        int32_t *o = realloc(tz->off_ms, ncap * sizeof(*o));
        if (o == NULL)
            return -1;
        tz->off_ms = o;
        *cap = ncap;
    }
    tz->trans_ms[tz->ntrans] = at_ms;
    tz->off_ms[tz->ntrans] = off_ms;
    tz->ntrans++;
    return 0;
}

/* Fills tz from the bytes of a TZif file. Returns 0, or -1 with a reason in
 * err; on failure tz may hold memory that tz_release() frees. */
static int
tz_parse(struct tz_zone *tz, const unsigned char *buf, size_t len, char *err,
         size_t errlen)
{
    struct tzif_header h;
    unsigned tsize = 4;
    const unsigned char *p = buf, *end = buf + len;
    size_t cap = 0;
    char footer[TZ_FOOTER_MAX];
    bool has_footer = false;

    memset(tz, 0, sizeof(*tz));
    tz->rule_from_ms = INT64_MAX;
    if (tzif_header(p, len, &h) < 0) {
        cal_err(err, errlen, "not a TZif file");
        return -1;
    }
    if (h.version != 0) {
        /* Skip the 32-bit block; the 64-bit one after it is complete. */
        uint64_t skip = 44 + tzif_data_len(&h, 4);
        if (skip > len || tzif_header(p + skip, len - skip, &h) < 0) {
            cal_err(err, errlen, "truncated TZif file");
            return -1;
        }
        p += skip;
        tsize = 8;
    }
    p += 44;
    if (tzif_data_len(&h, tsize) > (uint64_t)(end - p) || h.typecnt == 0 ||
        h.typecnt > 256) {
        cal_err(err, errlen, "truncated or malformed TZif file");
        return -1;
    }
    if (h.leapcnt != 0) {
        /* "right/" zones count leap seconds; slawatch instants do not. */
        cal_err(err, errlen, "zones with leap seconds are not supported");
        return -1;
    }
    const unsigned char *times = p;
    const unsigned char *idx = times + h.timecnt * tsize;
    const unsigned char *types = idx + h.timecnt;
    const unsigned char *after = p + tzif_data_len(&h, tsize);

    for (uint64_t i = 0; i < h.typecnt; i++) {
        int32_t utoff = (int32_t)be32(types + 6 * i);
        if (utoff < -TZ_OFFSET_MAX_S || utoff > TZ_OFFSET_MAX_S) {
            cal_err(err, errlen, "TZif file has an impossible UTC offset");
            return -1;
        }
    }
    /* RFC 8536: time type 0 applies before the first transition. */
    tz->initial_off_ms = (int32_t)be32(types) * 1000;

    if (h.version != 0) {
        const unsigned char *nl;
        if (after >= end || *after != '\n' ||
            (nl = memchr(after + 1, '\n', (size_t)(end - after - 1))) == NULL) {
            cal_err(err, errlen, "TZif file has no footer");
            return -1;
        }
        size_t flen = (size_t)(nl - after - 1);
        if (flen >= sizeof(footer) || memchr(after + 1, '\0', flen) != NULL) {
            cal_err(err, errlen, "TZif footer is malformed");
            return -1;
        }
        memcpy(footer, after + 1, flen);
        footer[flen] = '\0';
        has_footer = flen > 0;
    }
    if (has_footer && tz_rule_parse(footer, &tz->rule) < 0) {
        char q[QUOTE_BUFLEN];
        cal_err(err, errlen, "cannot parse the zone's TZ rule \"%s\"",
                quote_input(footer, 40, q));
        return -1;
    }

    int64_t prev_s = INT64_MIN;
    for (uint64_t i = 0; i < h.timecnt; i++) {
        int64_t at_s = tsize == 8 ? be64(times + 8 * i)
                                  : (int64_t)(int32_t)be32(times + 4 * i);
        if (idx[i] >= h.typecnt || (i > 0 && at_s <= prev_s)) {
            cal_err(err, errlen, "TZif file has malformed transitions");
            return -1;
        }
        prev_s = at_s;
        int32_t off_ms = (int32_t)be32(types + 6 * idx[i]) * 1000;
        if (at_s <= CAL_MIN_MS / 1000) {
            /* Far before the supported range (e.g. the -2^59 "big bang"
             * entry): it only sets the offset that follows. */
            tz->initial_off_ms = off_ms;
            continue;
        }
        if (at_s >= CAL_MAX_MS / 1000)
            break;
        if (tz_push(tz, &cap, at_s * 1000, off_ms) < 0)
            goto nomem;
    }

    if (has_footer && !tz->rule.has_dst) {
        /* A fixed footer governs everything after the last transition,
         * whose type it repeats (RFC 8536 section 3.3); it only matters for
         * a file without transitions. */
        if (tz->ntrans == 0)
            tz->initial_off_ms = tz->rule.std_off_s * 1000;
    } else if (has_footer) {
        /* Expand the rule into the table from the last transition (or
         * 1900 for a file with none: earlier instants keep type 0) up to
         * TZ_EXPAND_END_YEAR; the table is complete until the middle of
         * that year, after which tz_at() evaluates the rule. */
        int64_t from = tz->ntrans ? tz->trans_ms[tz->ntrans - 1]
                                  : days_from_civil(1900, 1, 1) * MS_PER_DAY;
        int64_t y0, y;
        unsigned m, d;
        int32_t off0;
        int64_t next0;

        civil_from_days(floor_div(from, MS_PER_DAY), &y0, &m, &d);
        if (tz->ntrans == 0) {
            tz_rule_at(&tz->rule, from, &off0, &next0);
            if (tz_push(tz, &cap, from, off0) < 0)
                goto nomem;
        }
        for (y = y0; y <= TZ_EXPAND_END_YEAR; y++) {
            struct tz_change ch[2];
            tz_rule_year(&tz->rule, y, ch);
            for (int i = 0; i < 2; i++)
                if (ch[i].at_ms > from &&
                    tz_push(tz, &cap, ch[i].at_ms, ch[i].off_ms) < 0)
                    goto nomem;
        }
        tz->rule_from_ms =
            days_from_civil(TZ_EXPAND_END_YEAR, 7, 1) * MS_PER_DAY;
    }
    return 0;

nomem:
    cal_err(err, errlen, "out of memory");
    return -1;
}

static void
tz_release(struct tz_zone *tz)
{
    free(tz->trans_ms);
    free(tz->off_ms);
    tz->trans_ms = NULL;
    tz->off_ms = NULL;
    tz->ntrans = 0;
}

/* UTC offset in effect at t, and the next instant (> t) at which it may
 * change; CAL_MAX_MS when it never does. */
static void
tz_at(const struct tz_zone *tz, int64_t t, int64_t *off_ms, int64_t *next_ms)
{
    if (t >= tz->rule_from_ms) {
        int32_t off;
        tz_rule_at(&tz->rule, t, &off, next_ms);
        *off_ms = off;
        return;
    }
    /* lo = number of transitions at or before t */
    size_t lo = 0, hi = tz->ntrans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans_ms[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    *off_ms = lo ? tz->off_ms[lo - 1] : tz->initial_off_ms;
    *next_ms = lo < tz->ntrans ? tz->trans_ms[lo] : CAL_MAX_MS;
    if (*next_ms > tz->rule_from_ms)
        *next_ms = tz->rule_from_ms;
}

/* Zone names come from the config file: keep them inside the zone
 * directory. */
static bool
zone_name_ok(const char *zone)
{
    size_t len = strlen(zone);

    if (len == 0 || len > CAL_ZONE_NAME_MAX || zone[0] == '/' ||
        strstr(zone, "..") != NULL)
        return false;
    for (const char *p = zone; *p; p++)
        if (!is_alpha(*p) && !is_digit(*p) && strchr("/_+-.", *p) == NULL)
            return false;
    return true;
}

/* Reads the zone file into tz. Returns 0, or -1 with a reason in err. */
static int
tz_load(struct tz_zone *tz, const char *zone, char *err, size_t errlen)
{
    const char *dir = getenv("TZDIR");
    char path[4096];
    struct stat st;
    unsigned char *buf = NULL;
    size_t got = 0;
    int fd, rc = -1;

    memset(tz, 0, sizeof(*tz));
    if (dir == NULL || *dir == '\0')
        dir = "/usr/share/zoneinfo";
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, zone) >=
        sizeof(path)) {
        cal_err(err, errlen, "time zone path too long");
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            /* Minimal containers often ship no zone database; UTC needs
             * none. */
            if (strcmp(zone, "UTC") == 0 || strcmp(zone, "Etc/UTC") == 0) {
                tz->rule_from_ms = INT64_MAX;
                return 0;
            }
            cal_err(err, errlen, "unknown time zone \"%.64s\"", zone);
        } else {
            cal_err(err, errlen, "time zone \"%.64s\": %s", zone,
                    strerror(errno));
        }
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > TZ_FILE_MAX) {
        cal_err(err, errlen, "unknown time zone \"%.64s\" (not a zone file)",
                zone);
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        cal_err(err, errlen, "out of memory");
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            cal_err(err, errlen, "time zone \"%.64s\": short read", zone);
            goto out;
        }
        got += (size_t)n;
    }
    char why[128];
    if (tz_parse(tz, buf, got, why, sizeof(why)) < 0) {
        tz_release(tz);
        cal_err(err, errlen, "time zone \"%.64s\": %s", zone, why);
        goto out;
    }
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

/* ---- calendar construction ------------------------------------------- */

struct calendar *
cal_create(const char *name, const char *timezone, char *err, size_t errlen)
{
    struct calendar *cal;

    if (timezone == NULL || !zone_name_ok(timezone)) {
        char q[QUOTE_BUFLEN];
        cal_err(err, errlen, "invalid time zone name \"%s\"",
                quote_input(timezone ? timezone : "", 40, q));
        return NULL;
    }
    cal = calloc(1, sizeof(*cal));
    if (cal == NULL) {
        cal_err(err, errlen, "out of memory");
        return NULL;
    }
    cal->name = strdup(name ? name : "");
    cal->timezone = strdup(timezone);
    if (cal->name == NULL || cal->timezone == NULL) {
        cal_err(err, errlen, "out of memory");
        cal_free(cal);
        return NULL;
    }
    if (tz_load(&cal->tz, timezone, err, errlen) < 0) {
        cal_free(cal);
        return NULL;
    }
    return cal;
}

void
cal_free(struct calendar *cal)
{
    if (cal == NULL)
        return;
    tz_release(&cal->tz);
    free(cal->holidays);
    free(cal->name);
    free(cal->timezone);
    free(cal);
}

const char *
cal_name(const struct calendar *cal)
{
    return cal ? cal->name : "24x7";
}

const char *
cal_timezone(const struct calendar *cal)
{
    return cal ? cal->timezone : "UTC";
}

/* Matches a day name ("mon" or "monday", any case) at p[0..len). */
static int
day_lookup(const char *p, size_t len)
{
    for (int i = 0; i < 7; i++) {
        const char *names[2] = {day_short[i], day_long[i]};
        for (int k = 0; k < 2; k++) {
            size_t j = 0;
            if (strlen(names[k]) != len)
                continue;
            while (j < len && to_lower(p[j]) == names[k][j])
                j++;
            if (j == len)
                return i;
        }
    }
    return -1;
}

/* Reads one day name at *pp; returns its index or -1 with err set. */
static int
parse_day(const char **pp, char *err, size_t errlen)
{
    const char *p = skip_blanks(*pp), *q = p;
    int day;

    while (is_alpha(*q))
        q++;
    if (q == p) {
        char quoted[QUOTE_BUFLEN];
        if (*p == '\0')
            cal_err(err, errlen, "missing day name");
        else
            cal_err(err, errlen, "expected a day name at \"%s\"",
                    quote_input(p, 20, quoted));
        return -1;
    }
    day = day_lookup(p, (size_t)(q - p));
    if (day < 0) {
        cal_err(err, errlen, "unknown day \"%.*s\"",
                (int)(q - p > 20 ? 20 : q - p), p);
        return -1;
    }
    *pp = skip_blanks(q);
    return day;
}

/* "mon-fri", "sat", "mon,wed", "fri-mon" (wraps), "mon-wed,fri". */
static int
parse_days(const char *text, bool days[7], char *err, size_t errlen)
{
    const char *p = text;

    memset(days, 0, 7 * sizeof(days[0]));
    for (;;) {
        int first = parse_day(&p, err, errlen), last;
        if (first < 0)
            return -1;
        last = first;
        if (*p == '-') {
            p++;
            if ((last = parse_day(&p, err, errlen)) < 0)
                return -1;
        }
        for (int d = first;; d = (d + 1) % 7) {
            if (days[d]) {
                char q[QUOTE_BUFLEN];
                cal_err(err, errlen, "day %s listed twice in \"%s\"",
                        day_short[d], quote_input(text, 40, q));
                return -1;
            }
            days[d] = true;
            if (d == last)
                break;
        }
        if (*p == '\0')
            return 0;
        if (*p != ',') {
            char q[QUOTE_BUFLEN], q2[QUOTE_BUFLEN];
            cal_err(err, errlen, "unexpected \"%s\" in days \"%s\"",
                    quote_input(p, 20, q), quote_input(text, 40, q2));
            return -1;
        }
        p++;
    }
}

/* "H:MM" or "HH:MM", 00:00..24:00; stores milliseconds since midnight. */
static int
parse_clock(const char **pp, int32_t *out_ms)
{
    const char *p = *pp;
    int h = 0, m;

    if (!is_digit(*p))
        return -1;
    h = *p++ - '0';
    if (is_digit(*p))
        h = h * 10 + (*p++ - '0');
    if (*p != ':' || !is_digit(p[1]) || !is_digit(p[2]))
        return -1;
    m = (p[1] - '0') * 10 + (p[2] - '0');
    p += 3;
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return -1;
    *out_ms = (int32_t)(h * MS_PER_HOUR + m * MS_PER_MIN);
    *pp = p;
    return 0;
}

static void
clock_text(int32_t ms, char buf[8])
{
    unsigned min = (unsigned)ms / 60000u;
    snprintf(buf, 8, "%02u:%02u", min / 60 % 100, min % 60);
}

/* "09:00-18:00", "09:00-12:00,13:00-18:00" or "closed". */
static int
parse_segments(const char *text, struct cal_day *out, char *err, size_t errlen)
{
    const char *p = skip_blanks(text);
    char a[8], b[8], c[8], d[8];

    out->nseg = 0;
    if (strncasecmp(p, "closed", 6) == 0 && *skip_blanks(p + 6) == '\0')
        return 0;
    for (;;) {
        struct cal_segment s;
        const char *tok = p = skip_blanks(p);
        int rc = parse_clock(&p, &s.start_ms);
        if (rc == 0) {
            p = skip_blanks(p);
            rc = *p == '-' ? 0 : -1;
        }
        if (rc == 0) {
            p = skip_blanks(p + 1);
            rc = parse_clock(&p, &s.end_ms);
        }
        if (rc < 0) {
            char q[QUOTE_BUFLEN];
            cal_err(err, errlen,
                    "bad hours \"%s\" (expected HH:MM-HH:MM or closed)",
                    quote_input(tok, 24, q));
            return -1;
        }
        clock_text(s.start_ms, a);
        clock_text(s.end_ms, b);
        if (s.end_ms < s.start_ms) {
            cal_err(err, errlen,
                    "segment %s-%s ends before it starts (split hours that "
                    "cross midnight over two days)",
                    a, b);
            return -1;
        }
        if (s.end_ms == s.start_ms) {
            cal_err(err, errlen, "segment %s-%s is empty", a, b);
            return -1;
        }
        if (out->nseg > 0) {
            const struct cal_segment *prev = &out->seg[out->nseg - 1];
            clock_text(prev->start_ms, c);
            clock_text(prev->end_ms, d);
            if (s.start_ms < prev->start_ms) {
                cal_err(err, errlen, "segments out of order: %s-%s after %s-%s",
                        a, b, c, d);
                return -1;
            }
            if (s.start_ms < prev->end_ms) {
                cal_err(err, errlen, "segments %s-%s and %s-%s overlap", c, d,
                        a, b);
                return -1;
            }
        }
        if (out->nseg == CAL_MAX_SEGMENTS) {
            cal_err(err, errlen, "more than %d segments in one day",
                    CAL_MAX_SEGMENTS);
            return -1;
        }
        out->seg[out->nseg++] = s;
        p = skip_blanks(p);
        if (*p == '\0')
            return 0;
        if (*p != ',') {
            char q[QUOTE_BUFLEN];
            cal_err(err, errlen, "unexpected \"%s\" after %s-%s",
                    quote_input(p, 20, q), a, b);
            return -1;
        }
        p++;
    }
}

int
cal_set_week(struct calendar *cal, const char *days, const char *segments,
             char *err, size_t errlen)
{
    bool which[7];
    struct cal_day parsed;

    if (cal == NULL || days == NULL || segments == NULL) {
        cal_err(err, errlen, "no calendar, days or hours given");
        return -1;
    }
    if (parse_days(days, which, err, errlen) < 0 ||
        parse_segments(segments, &parsed, err, errlen) < 0)
        return -1;
    for (int d = 0; d < 7; d++) {
        if (which[d] && cal->week[d].set) {
            cal_err(err, errlen, "day %s is set twice", day_short[d]);
            return -1;
        }
    }
    parsed.set = true;
    for (int d = 0; d < 7; d++) {
        if (!which[d])
            continue;
        cal->week[d] = parsed;
        for (int i = 0; i < parsed.nseg; i++)
            cal->week_open_ms += parsed.seg[i].end_ms - parsed.seg[i].start_ms;
    }
    return 0;
}

/* Index of the first holiday >= day (nholidays when none). */
static size_t
holiday_lower_bound(const struct calendar *cal, int64_t day)
{
    size_t lo = 0, hi = cal->nholidays;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cal->holidays[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool
is_holiday(const struct calendar *cal, int64_t day)
{
    size_t i;

    if (cal->nholidays == 0)
        return false;
    i = holiday_lower_bound(cal, day);
    return i < cal->nholidays && cal->holidays[i] == day;
}

int
cal_add_holiday(struct calendar *cal, const char *date, char *err,
                size_t errlen)
{
    int v[3] = {0, 0, 0};
    char q[QUOTE_BUFLEN]; /* for bad: (C11: no declaration right after a label) */
    const int width[3] = {4, 2, 2};
    const char *p = date;

    if (cal == NULL || date == NULL) {
        cal_err(err, errlen, "no calendar or date given");
        return -1;
    }
    for (int f = 0; f < 3; f++) {
        for (int i = 0; i < width[f]; i++, p++) {
            if (!is_digit(*p))
                goto bad;
            v[f] = v[f] * 10 + (*p - '0');
        }
        if (f < 2 && *p++ != '-')
            goto bad;
    }
    if (*p != '\0')
        goto bad;
    if (v[0] < 1 || v[1] < 1 || v[1] > 12 || v[2] < 1 ||
        v[2] > month_days(v[0], v[1])) {
        cal_err(err, errlen, "holiday \"%s\" is not a real date", date);
        return -1;
    }
    int64_t day = days_from_civil(v[0], (unsigned)v[1], (unsigned)v[2]);
    size_t at = holiday_lower_bound(cal, day);
    if (at < cal->nholidays && cal->holidays[at] == day) {
        cal_err(err, errlen, "holiday %s listed twice", date);
        return -1;
    }
    if (cal->nholidays == cal->holidays_cap) {
        size_t ncap = cal->holidays_cap ? cal->holidays_cap * 2 : 16;
        int64_t *h = realloc(cal->holidays, ncap * sizeof(*h));
        if (h == NULL) {
            cal_err(err, errlen, "out of memory");
            return -1;
        }
        cal->holidays = h;
        cal->holidays_cap = ncap;
    }
    memmove(cal->holidays + at + 1, cal->holidays + at,
            (cal->nholidays - at) * sizeof(cal->holidays[0]));
    cal->holidays[at] = day;
    cal->nholidays++;
    return 0;

bad:
    cal_err(err, errlen, "bad holiday \"%s\" (expected YYYY-MM-DD)",
            quote_input(date, 32, q));
    return -1;
}

int
cal_finish(struct calendar *cal, char *err, size_t errlen)
{
    if (cal == NULL) {
        cal_err(err, errlen, "no calendar given");
        return -1;
    }
    if (cal->week_open_ms <= 0) {
        char q[QUOTE_BUFLEN];
        cal_err(err, errlen, "calendar %s is never open (set week hours)",
                quote_input(cal->name, 40, q));
        return -1;
    }
    return 0;
}

/* ---- the walk ---------------------------------------------------------
 *
 * Both cal_add() and cal_elapsed() walk forward from an instant through
 * pieces that have one UTC offset and one local day each; inside a piece,
 * local time is UTC plus a constant, so a local open segment maps to one
 * real interval. Whole weeks with a constant offset and no holiday are
 * skipped at once: such a week covers every local time of the week exactly
 * once and so holds exactly week_open_ms of open time.
 */

struct cal_walk {
    const struct calendar *cal;
    int64_t t;       /* current instant */
    int64_t off_ms;  /* UTC offset in effect at t */
    int64_t next_ms; /* next instant the offset may change (> t) */
};

static void
walk_init(struct cal_walk *w, const struct calendar *cal, int64_t t)
{
    w->cal = cal;
    w->t = t;
    tz_at(&cal->tz, t, &w->off_ms, &w->next_ms);
}

static void
walk_sync(struct cal_walk *w)
{
    if (w->t >= w->next_ms)
        tz_at(&w->cal->tz, w->t, &w->off_ms, &w->next_ms);
}

/* Whole weeks from w->t (synced) that stay before stop and the next offset
 * change and touch no holiday. */
static int64_t
walk_whole_weeks(const struct cal_walk *w, int64_t stop)
{
    const struct calendar *cal = w->cal;
    int64_t lim = min64(w->next_ms, stop), weeks;

    if (lim - w->t < MS_PER_WEEK)
        return 0;
    weeks = (lim - w->t) / MS_PER_WEEK;
    if (cal->nholidays) {
        /* The weeks cover local days lday .. lday + 7 * weeks. */
        int64_t lday = floor_div(w->t + w->off_ms, MS_PER_DAY);
        size_t i = holiday_lower_bound(cal, lday);
        if (i < cal->nholidays)
            weeks = min64(weeks, (cal->holidays[i] - lday - 1) / 7);
    }
    return weeks > 0 ? weeks : 0;
}

/* Finds the first open interval [*a, *b) with w->t <= *a < stop, cut at the
 * end of a local day, an offset change or stop, and moves w->t to *b.
 * Returns false (w->t = stop) when nothing is open before stop. */
static bool
walk_next_open(struct cal_walk *w, int64_t stop, int64_t *a, int64_t *b)
{
    const struct calendar *cal = w->cal;

    while (w->t < stop) {
        walk_sync(w);
        int64_t lday = floor_div(w->t + w->off_ms, MS_PER_DAY);
        int64_t day0 = lday * MS_PER_DAY - w->off_ms; /* local midnight */
        int64_t end = min64(min64(day0 + MS_PER_DAY, w->next_ms), stop);
        if (!is_holiday(cal, lday)) {
            const struct cal_day *d = &cal->week[weekday_mon0(lday)];
            for (int i = 0; i < d->nseg; i++) {
                int64_t sa = day0 + d->seg[i].start_ms;
                int64_t sb = day0 + d->seg[i].end_ms;
                if (sb <= w->t)
                    continue;
                if (sa >= end)
                    break;
                *a = max64(sa, w->t);
                *b = min64(sb, end);
                w->t = *b;
                return true;
            }
        }
        w->t = end;
    }
    return false;
}

int64_t
cal_add(const struct calendar *cal, int64_t start_ms, int64_t business_ms)
{
    struct cal_walk w;
    int64_t rem, a, b;

    if (business_ms < 0)
        business_ms = 0;
    if (cal == NULL)
        return start_ms > INT64_MAX - business_ms ? INT64_MAX
                                                  : start_ms + business_ms;
    if (cal->week_open_ms <= 0 || start_ms >= CAL_MAX_MS)
        return INT64_MAX;
    if (start_ms < CAL_MIN_MS)
        start_ms = CAL_MIN_MS;
    /* Open time never runs faster than real time. */
    if (business_ms > CAL_MAX_MS - start_ms)
        return INT64_MAX;
    rem = business_ms;
    walk_init(&w, cal, start_ms);
    for (;;) {
        walk_sync(&w);
        if (rem > cal->week_open_ms) {
            /* Keep rem > 0 so the deadline is found by the exact walk. */
            int64_t weeks = min64(walk_whole_weeks(&w, CAL_MAX_MS),
                                  (rem - 1) / cal->week_open_ms);
            if (weeks > 0) {
                w.t += weeks * MS_PER_WEEK;
                rem -= weeks * cal->week_open_ms;
                continue;
            }
        }
        if (!walk_next_open(&w, CAL_MAX_MS, &a, &b))
            return INT64_MAX;
        if (b - a >= rem)
            return a + rem; /* rem == 0: the opening itself */
        rem -= b - a;
    }
}

int64_t
cal_elapsed(const struct calendar *cal, int64_t from_ms, int64_t to_ms)
{
    struct cal_walk w;
    int64_t total = 0, a, b;

    if (to_ms <= from_ms)
        return 0;
    if (cal == NULL)
        return from_ms < 0 && to_ms > INT64_MAX + from_ms ? INT64_MAX
                                                          : to_ms - from_ms;
    from_ms = max64(from_ms, CAL_MIN_MS);
    to_ms = min64(to_ms, CAL_MAX_MS);
    if (to_ms <= from_ms || cal->week_open_ms <= 0)
        return 0;
    walk_init(&w, cal, from_ms);
    for (;;) {
        walk_sync(&w);
        int64_t weeks = walk_whole_weeks(&w, to_ms);
        if (weeks > 0) {
            w.t += weeks * MS_PER_WEEK;
            total += weeks * cal->week_open_ms;
            continue;
        }
        if (!walk_next_open(&w, to_ms, &a, &b))
            return total;
        total += b - a;
    }
}

bool
cal_is_open(const struct calendar *cal, int64_t ms)
{
    int64_t off, next;

    if (cal == NULL)
        return true;
    if (ms < CAL_MIN_MS || ms >= CAL_MAX_MS)
        return false;
    tz_at(&cal->tz, ms, &off, &next);
    int64_t lday = floor_div(ms + off, MS_PER_DAY);
    int64_t tod = ms + off - lday * MS_PER_DAY;
    if (is_holiday(cal, lday))
        return false;
    const struct cal_day *d = &cal->week[weekday_mon0(lday)];
    for (int i = 0; i < d->nseg; i++)
        if (tod >= d->seg[i].start_ms && tod < d->seg[i].end_ms)
            return true;
    return false;
}

int64_t
cal_utc_offset_ms(const struct calendar *cal, int64_t ms)
{
    int64_t off = 0, next;

    if (cal != NULL && ms >= CAL_MIN_MS && ms < CAL_MAX_MS)
        tz_at(&cal->tz, ms, &off, &next);
    return off;
}

char *
cal_format_local(const struct calendar *cal, int64_t ms, char *buf)
{
    /* RFC 3339 offsets have whole minutes; old local mean times do not, so
     * shift by the offset truncated to minutes to keep the instant exact. */
    int64_t off_min = cal_utc_offset_ms(cal, ms) / MS_PER_MIN;
    int64_t local = ms + off_min * MS_PER_MIN;
    /* Not floor_div(): days * MS_PER_DAY could overflow near INT64_MIN. */
    int64_t days = local / MS_PER_DAY;
    int64_t tod = local % MS_PER_DAY;
    int64_t y;
    unsigned m, d;
    char zone[8];

    if (tod < 0) {
        tod += MS_PER_DAY;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    if (cal == NULL) {
        snprintf(zone, sizeof(zone), "Z");
    } else {
        int64_t a = off_min < 0 ? -off_min : off_min;
        snprintf(zone, sizeof(zone), "%c%02d:%02d", off_min < 0 ? '-' : '+',
                 (int)(a / 60), (int)(a % 60));
    }
    snprintf(buf, CAL_LOCAL_BUFLEN, "%04lld-%02u-%02uT%02d:%02d:%02d.%03d%s",
             (long long)y, m, d, (int)(tod / MS_PER_HOUR),
             (int)(tod / MS_PER_MIN % 60), (int)(tod / MS_PER_SEC % 60),
             (int)(tod % MS_PER_SEC), zone);
    return buf;
}

/* ---- what a calendar says, for people ---------------------------------- */

char *
cal_day_hours(const struct calendar *cal, int wday, char *buf)
{
    size_t n = 0;
    buf[0] = '\0';
    if (cal == NULL || wday < 0 || wday > 6) {
        snprintf(buf, CAL_DAY_BUFLEN, "%s", cal == NULL ? "00:00-24:00" : "closed");
        return buf;
    }
    const struct cal_day *d = &cal->week[wday];
    for (int i = 0; i < d->nseg && n + 16 < CAL_DAY_BUFLEN; i++) {
        char a[8], b[8];
        clock_text(d->seg[i].start_ms, a);
        clock_text(d->seg[i].end_ms, b);
        n += (size_t)snprintf(buf + n, CAL_DAY_BUFLEN - n, "%s%s-%s", i ? "," : "", a, b);
    }
    if (n == 0)
        snprintf(buf, CAL_DAY_BUFLEN, "closed");
    return buf;
}

const char *
cal_day_name(int wday)
{
    return wday >= 0 && wday < 7 ? day_short[wday] : "?";
}

size_t
cal_holiday_count(const struct calendar *cal)
{
    return cal ? cal->nholidays : 0;
}

char *
cal_holiday(const struct calendar *cal, size_t i, char *buf)
{
    int64_t y;
    unsigned m, d;
    if (cal == NULL || i >= cal->nholidays) {
        buf[0] = '\0';
        return buf;
    }
    civil_from_days(cal->holidays[i], &y, &m, &d);
    snprintf(buf, CAL_DATE_BUFLEN, "%04lld-%02u-%02u", (long long)y, m, d);
    return buf;
}

int64_t
cal_week_open_ms(const struct calendar *cal)
{
    return cal ? cal->week_open_ms : MS_PER_WEEK;
}

int
cal_open_days(const struct calendar *cal)
{
    int n = 0;
    for (int i = 0; i < 7; i++)
        n += cal == NULL || cal->week[i].nseg > 0;
    return n;
}
