/*
 * cal.h - business-hours calendars: which instants count towards an SLA
 * target. Pure core: reads the system zone database (TZif files) once when a
 * calendar is created, then does arithmetic only. A NULL calendar means 24x7
 * and every function below accepts it.
 *
 * Every deadline, warning time, escalation delay and pause account in
 * slawatch goes through cal_add() and cal_elapsed(); nothing else may do
 * calendar arithmetic.
 */
#ifndef SLAWATCH_CAL_H
#define SLAWATCH_CAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slawatch/util.h"

struct calendar;

/* Creates an empty calendar (closed every day) in the IANA zone `timezone`
 * ("Europe/Berlin", "UTC"), read from the system zone database
 * ($TZDIR or /usr/share/zoneinfo; "UTC" also works without one). Names
 * starting with '/' or containing ".." are refused. Returns NULL and writes
 * a one-line reason into err on a bad or unknown zone or allocation
 * failure. The caller owns the result (cal_free). */
struct calendar *cal_create(const char *name, const char *timezone, char *err,
                            size_t errlen) MUSTCHECK;

/* Sets the open hours of the days named by `days` ("mon-fri", "sat",
 * "sun", "mon,wed", "fri-mon" wraps; full names and any case accepted) to
 * `segments`: "09:00-18:00", "09:00-12:00,13:00-18:00", "closed", or
 * "00:00-24:00" for all day. Times are local wall-clock times in the
 * calendar's zone. Segments must be increasing, non-empty and
 * non-overlapping (touching is fine); a day set twice, in one call or
 * across calls, is an error. On error nothing is changed. Returns 0, or -1
 * with a reason in err. */
int cal_set_week(struct calendar *cal, const char *days, const char *segments,
                 char *err, size_t errlen) MUSTCHECK;

/* Adds a holiday "YYYY-MM-DD" (local date, closed all day). Returns 0, or
 * -1 with a reason in err for a malformed or impossible date or a date
 * already listed. */
int cal_add_holiday(struct calendar *cal, const char *date, char *err,
                    size_t errlen) MUSTCHECK;

/* Checks the finished calendar (for example: open at least one minute a
 * week). Returns 0, or -1 with a reason in err. */
int cal_finish(struct calendar *cal, char *err, size_t errlen) MUSTCHECK;

void cal_free(struct calendar *cal);

/* For cal == NULL these are "24x7" and "UTC". */
const char *cal_name(const struct calendar *cal);
const char *cal_timezone(const struct calendar *cal);

/*
 * Time is real elapsed milliseconds: an open local hour skipped by a DST
 * change counts nothing, one lived twice counts twice. Instants are handled
 * from year 1 to year 9999: cal_add() gives INT64_MAX for a deadline past
 * that, cal_elapsed() counts only inside it. A finished calendar is never
 * written again, so these may be called from any thread.
 */

/* The instant at which `business_ms` of open time has elapsed after
 * `start_ms` (business_ms >= 0). When start_ms is outside open hours, counting
 * starts at the next opening. With business_ms == 0 the result is start_ms
 * itself when open, else the next opening. 24x7 (cal == NULL): start + ms.
 * Returns INT64_MAX when the calendar never opens again. */
int64_t cal_add(const struct calendar *cal, int64_t start_ms,
                int64_t business_ms);

/* Open time between from_ms and to_ms (0 when to_ms <= from_ms).
 * 24x7 (cal == NULL): to - from, saturating at INT64_MAX.
 * cal_elapsed(c, s, cal_add(c, s, x)) == x for every x >= 0. */
int64_t cal_elapsed(const struct calendar *cal, int64_t from_ms, int64_t to_ms);

/* True when the instant `ms` falls in open hours (24x7: always). */
bool cal_is_open(const struct calendar *cal, int64_t ms);

/* The calendar zone's UTC offset in milliseconds at `ms` (east positive;
 * 0 for cal == NULL or instants outside years 1..9999). */
int64_t cal_utc_offset_ms(const struct calendar *cal, int64_t ms);

/* Formats `ms` as local time in the calendar's zone with its UTC offset,
 * "2026-11-23T18:00:00.000+08:00". buf must hold CAL_LOCAL_BUFLEN bytes.
 * With cal == NULL formats UTC ("...Z"). Returns buf. */
#define CAL_LOCAL_BUFLEN 40
char *cal_format_local(const struct calendar *cal, int64_t ms, char *buf);

/* What a finished calendar says, for people (slawatchctl config, the
 * reload log). cal_day_hours: the open hours of weekday `wday` (0 =
 * Monday) as the config writes them, "09:00-12:00,13:00-18:00",
 * "00:00-24:00" or "closed" (24x7 for cal == NULL); buf holds
 * CAL_DAY_BUFLEN bytes. cal_day_name: "mon" ... "sun". cal_holiday: the
 * i-th holiday, ascending, as "YYYY-MM-DD" (buf of CAL_DATE_BUFLEN).
 * cal_week_open_ms: open time of a week without holidays or DST changes;
 * cal_open_days: the weekdays with any open hours. Each returns buf where
 * it takes one. */
#define CAL_DAY_BUFLEN 256
#define CAL_DATE_BUFLEN 16
char *cal_day_hours(const struct calendar *cal, int wday, char *buf);
const char *cal_day_name(int wday);
size_t cal_holiday_count(const struct calendar *cal);
char *cal_holiday(const struct calendar *cal, size_t i, char *buf);
int64_t cal_week_open_ms(const struct calendar *cal);
int cal_open_days(const struct calendar *cal);

#endif
