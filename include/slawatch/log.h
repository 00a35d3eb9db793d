/*
 * log.h - the one logging module. Under systemd (JOURNAL_STREAM set) each
 * line goes to the journal with its priority and optional structured fields;
 * otherwise to stderr with a timestamp. Never allocates on the hot path and
 * never fails loudly: a log line that cannot be written is dropped.
 */
#ifndef SLAWATCH_LOG_H
#define SLAWATCH_LOG_H

#include <stdint.h>

#include "slawatch/config.h"

#define PRINTFLIKE(a, b) __attribute__((format(printf, a, b)))

void log_init(const char *ident, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug".."err"; returns -1 on an unknown name. */
int log_level_from_name(const char *name);

void log_warn(const char *fmt, ...) PRINTFLIKE(1, 2);   /* adds strerror(errno) */
void log_warnx(const char *fmt, ...) PRINTFLIKE(1, 2);
void log_err(const char *fmt, ...) PRINTFLIKE(1, 2);
void log_notice(const char *fmt, ...) PRINTFLIKE(1, 2);
void log_info(const char *fmt, ...) PRINTFLIKE(1, 2);
void log_debug(const char *fmt, ...) PRINTFLIKE(1, 2);
void fatal(const char *fmt, ...) PRINTFLIKE(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) PRINTFLIKE(1, 2) __attribute__((noreturn));

/* A line about one ticket clock: the journal gets TICKET=, TIER=, METRIC=
 * fields (any may be NULL). */
void log_ticket(enum log_level level, const char *ticket, const char *tier,
                const char *metric, const char *fmt, ...) PRINTFLIKE(5, 6);

/* Rate limiting for repetitive errors: at most `burst` lines per `interval`
 * seconds per limiter; the first line after a suppressed stretch says how many
 * were dropped. Returns true when the caller may log now. */
struct log_ratelimit {
    int64_t window_start_ms;
    int interval_s;
    int burst;
    int printed;
    long suppressed;
};
#define LOG_RATELIMIT_INIT(interval, burst) { 0, (interval), (burst), 0, 0 }
int log_ratelimit_ok(struct log_ratelimit *rl, long *suppressed_out);

#endif
