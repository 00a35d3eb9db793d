/*
 * util.h - small pure helpers shared by every module: durations, timestamps,
 * bounded string checks. No I/O, no allocation unless stated.
 */
#ifndef SLAWATCH_UTIL_H
#define SLAWATCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MUSTCHECK __attribute__((warn_unused_result))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Parses a duration such as "500ms", "30s", "5m", "1h", "3d" or a
 * combination in decreasing order ("1h30m", "2m30s500ms"). A bare "0" is
 * accepted. Returns 0 and stores milliseconds, or -1 on any syntax error,
 * negative value or overflow past ~292 million years. */
int dur_parse(const char *text, int64_t *out_ms) MUSTCHECK;

/* Writes the shortest duration text that dur_parse() reads back to the same
 * value ("1h30m", "500ms", "0s"). Always NUL-terminates; returns buf. */
char *dur_format(int64_t ms, char *buf, size_t len);

/* The last instant slawatch handles, 9999-12-31T23:59:59.999Z: no event,
 * clock or checkpoint may hold a later time (ts_parse, event_parse and
 * state_decode refuse one), and ts_format clamps to it. */
#define TS_MAX_MS 253402300799999LL
/* 0000-01-01T00:00:00.000Z, the first instant ts_format writes. */
#define TS_MIN_MS (-62167219200000LL)

/* Parses an RFC 3339 timestamp ("2026-11-23T10:00:00.004Z",
 * "2026-11-23T18:00:00+08:00", lower-case t/z and a space separator are
 * accepted) or a decimal count of milliseconds since the epoch. Fractions
 * below a millisecond are truncated. Returns 0, or -1 for a malformed text
 * or an instant before 1970 or after TS_MAX_MS. */
int ts_parse(const char *text, size_t len, int64_t *out_ms) MUSTCHECK;

/* Formats milliseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ".
 * Any int64 is accepted: an instant before TS_MIN_MS or after TS_MAX_MS is
 * written as that bound, so the text is always 24 characters. buf must
 * hold at least TS_BUFLEN bytes. Returns buf. */
#define TS_BUFLEN 32
char *ts_format(int64_t ms, char *buf);

/* Days since 1970-01-01 for a proleptic Gregorian date, and back. Valid for
 * years -9999..9999. */
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
void civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* True when s[0..len) is well-formed UTF-8 without C0/C1 control
 * characters or DEL. */
bool str_is_clean_utf8(const char *s, size_t len);

/* Wall clock in milliseconds since the epoch (CLOCK_REALTIME). */
int64_t now_wall_ms(void);
/* Monotonic clock in microseconds, for measuring durations. */
int64_t now_mono_us(void);

#endif
