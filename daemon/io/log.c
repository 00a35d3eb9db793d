/*
 * log.c - owns where log lines go (journal or stderr) and the level filter.
 * Must not allocate per line beyond a stack buffer, and must never exit the
 * process except in fatal()/fatalx().
 */
#define _GNU_SOURCE
#include "slawatch/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>

#include <systemd/sd-journal.h>

#include "slawatch/util.h"

static const char *log_ident = "slawatchd";
static enum log_level log_level = LOG_LVL_INFO;
static int log_to_journal;

void
log_init(const char *ident, enum log_level level)
{
    log_ident = ident;
    log_level = level;
    /* systemd sets JOURNAL_STREAM when stderr is connected to the journal. */
    log_to_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_set_level(enum log_level level)
{
    log_level = level;
}

enum log_level
log_get_level(void)
{
    return log_level;
}

int
log_level_from_name(const char *name)
{
    static const struct { const char *name; enum log_level lvl; } names[] = {
        { "debug", LOG_LVL_DEBUG }, { "info", LOG_LVL_INFO },
        { "notice", LOG_LVL_NOTICE }, { "warning", LOG_LVL_WARNING },
        { "err", LOG_LVL_ERR },
    };
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (strcmp(name, names[i].name) == 0)
            return (int)names[i].lvl;
    return -1;
}

static const char *
level_tag(enum log_level level)
{
    switch (level) {
    case LOG_LVL_ERR: return "err";
    case LOG_LVL_WARNING: return "warning";
    case LOG_LVL_NOTICE: return "notice";
    case LOG_LVL_INFO: return "info";
    default: return "debug";
    }
}

static void
log_emit(enum log_level level, const char *ticket, const char *tier,
         const char *metric, const char *msg)
{
    if (level > log_level)
        return;
    if (log_to_journal) {
        /* Fields are only present when known, so build the vector. */
        char f_msg[2100], f_prio[16], f_ident[64], f_t[160], f_tier[96],
            f_metric[48];
        struct iovec iov[6];
        int n = 0;
        iov[n].iov_base = f_msg;
        snprintf(f_msg, sizeof(f_msg), "MESSAGE=%s", msg);
        iov[n++].iov_len = strlen(f_msg);
        iov[n].iov_base = f_prio;
        snprintf(f_prio, sizeof(f_prio), "PRIORITY=%d", (int)level);
        iov[n++].iov_len = strlen(f_prio);
        iov[n].iov_base = f_ident;
        snprintf(f_ident, sizeof(f_ident), "SYSLOG_IDENTIFIER=%s", log_ident);
        iov[n++].iov_len = strlen(f_ident);
        if (ticket) {
            iov[n].iov_base = f_t;
            snprintf(f_t, sizeof(f_t), "TICKET=%s", ticket);
        iov[n++].iov_len = strlen(f_t);
        }
        if (tier) {
            iov[n].iov_base = f_tier;
            snprintf(f_tier, sizeof(f_tier), "TIER=%s", tier);
        iov[n++].iov_len = strlen(f_tier);
        }
        if (metric) {
            iov[n].iov_base = f_metric;
            snprintf(f_metric, sizeof(f_metric), "METRIC=%s", metric);
        iov[n++].iov_len = strlen(f_metric);
        }
        sd_journal_sendv(iov, n);
        return;
    }
    char stamp[TS_BUFLEN];
    ts_format(now_wall_ms(), stamp);
    fprintf(stderr, "%s %s[%s] %s\n", stamp, log_ident, level_tag(level), msg);
}

static void
log_vemit(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
    char msg[2048];
    int saved = errno;
    if (level > log_level)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (with_errno) {
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
    }
    log_emit(level, NULL, NULL, NULL, msg);
    errno = saved;
}

#define LOG_FN(fn, level, with_errno)                \
    void fn(const char *fmt, ...)                    \
    {                                                \
        va_list ap;                                  \
        va_start(ap, fmt);                           \
        log_vemit(level, with_errno, fmt, ap);       \
        va_end(ap);                                  \
    }

LOG_FN(log_warn, LOG_LVL_WARNING, 1)
LOG_FN(log_warnx, LOG_LVL_WARNING, 0)
LOG_FN(log_err, LOG_LVL_ERR, 0)
LOG_FN(log_notice, LOG_LVL_NOTICE, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_debug, LOG_LVL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vemit(LOG_LVL_ERR, 1, fmt, ap);
    va_end(ap);
    exit(1);
}

void
fatalx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vemit(LOG_LVL_ERR, 0, fmt, ap);
    va_end(ap);
    exit(1);
}

void
log_ticket(enum log_level level, const char *ticket, const char *tier,
           const char *metric, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    if (level > log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_emit(level, ticket, tier, metric, msg);
}

int
log_ratelimit_ok(struct log_ratelimit *rl, long *suppressed_out)
{
    int64_t now = now_wall_ms();
    *suppressed_out = 0;
    if (now - rl->window_start_ms >= (int64_t)rl->interval_s * 1000) {
        *suppressed_out = rl->suppressed;
        rl->window_start_ms = now;
        rl->printed = 0;
        rl->suppressed = 0;
    }
    if (rl->printed < rl->burst) {
        rl->printed++;
        return 1;
    }
    rl->suppressed++;
    return 0;
}
