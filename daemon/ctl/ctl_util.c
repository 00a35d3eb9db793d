/*
 * ctl_util.c - small pieces every slawatchctl command uses: the Redis
 * connection, key names, usage errors, JSON output and times for people.
 * Calls nothing else of daemon/ctl/.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "slawatch/rds_sync.h"
#include "slawatch/util.h"

redisContext *
ctl_connect(const struct config *cfg)
{
    char err[256];
    redisContext *c = rds_connect_sync(&cfg->redis, 2000, 2000, err, sizeof(err));
    if (c == NULL)
        fprintf(stderr, "slawatchctl: %s\n", err);
    return c;
}

char *
ctl_key(char *buf, const struct config *cfg, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(buf, KEY_MAX, "%s", cfg->redis.prefix);
    if (n < 0 || n >= KEY_MAX)
        n = 0;
    va_start(ap, fmt);
    vsnprintf(buf + n, KEY_MAX - (size_t)n, fmt, ap);
    va_end(ap);
    return buf;
}

int
ctl_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("slawatchctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EX_USAGE;
}

void
ctl_print_json(json_t *value)
{
    /* 15 digits: the decimals slawatchd publishes ("0.9731") come out as
     * written, not as 0.97309999999999997. */
    char *text =
        json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    if (text)
        printf("%s\n", text);
    else
        fprintf(stderr, "slawatchctl: out of memory\n");
    free(text);
    json_decref(value);
}

char *
ctl_dur(int64_t ms, char *buf)
{
    return dur_format(ms, buf, CTL_DUR_BUFLEN);
}

char *
ctl_due_text(int64_t due_in_ms, char *buf)
{
    char d[CTL_DUR_BUFLEN];
    int64_t abs = due_in_ms < 0 ? -due_in_ms : due_in_ms;
    int64_t secs = abs / 1000;
    if (secs == 0) {
        snprintf(buf, CTL_DUE_BUFLEN, "now");
        return buf;
    }
    ctl_dur(secs * 1000, d);
    snprintf(buf, CTL_DUE_BUFLEN, due_in_ms > 0 ? "in %s" : "%s ago", d);
    return buf;
}
