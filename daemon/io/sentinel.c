/*
 * sentinel.c - the master through the sentinels (see sentinel.h). Owns
 * nothing between calls. Must bound every connection by the time-out and
 * treat every reply as possibly malformed.
 */
#define _GNU_SOURCE
#include "slawatch/sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

static struct timeval
tv_of(int ms)
{
    return (struct timeval){ ms / 1000, (ms % 1000) * 1000 };
}

static void
note(char *err, size_t errlen, const char *fmt, const char *a, int b, const char *why)
{
    size_t used = strlen(err);
    if (used < errlen)
        snprintf(err + used, errlen - used, fmt, a, b, why);
}

/* Whether host:port answers ROLE with "master" (after AUTH if needed). */
static int
is_master(const struct cfg_redis *r, const char *host, int port, int timeout_ms,
          const char **why)
{
    redisContext *c = redisConnectWithTimeout(host, port, tv_of(timeout_ms));
    int ok = 0;
    *why = "unreachable";
    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return 0;
    }
    redisSetTimeout(c, tv_of(timeout_ms));
    redisReply *rep = NULL;
    if (r->password) {
        rep = r->username ? redisCommand(c, "AUTH %s %s", r->username, r->password)
                          : redisCommand(c, "AUTH %s", r->password);
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
            *why = "AUTH failed";
            goto out;
        }
        freeReplyObject(rep);
    }
    rep = redisCommand(c, "ROLE");
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
        rep->element[0]->type == REDIS_REPLY_STRING) {
        ok = strcmp(rep->element[0]->str, "master") == 0;
        *why = ok ? "" : "not a master (ROLE)";
    } else {
        *why = "no answer to ROLE";
    }
out:
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return ok;
}

int
sentinel_find_master(const struct cfg_redis *r, int timeout_ms, char *host,
                     size_t hostlen, int *port, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    note(err, errlen, "no master for \"%s\"%.0d%s:", r->master_name, 0, "");
    for (size_t i = 0; i < r->nsentinels; i++) {
        const char *sh = r->sentinel_host[i];
        int sp = r->sentinel_port[i];
        redisContext *c = redisConnectWithTimeout(sh, sp, tv_of(timeout_ms));
        if (c == NULL || c->err) {
            note(err, errlen, " sentinel %s:%d %s;", sh, sp, "unreachable");
            if (c)
                redisFree(c);
            continue;
        }
        redisSetTimeout(c, tv_of(timeout_ms));
        redisReply *rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s",
                                       r->master_name);
        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_STRING) {
            note(err, errlen, " sentinel %s:%d %s;", sh, sp,
                 rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "does not know it");
            if (rep)
                freeReplyObject(rep);
            redisFree(c);
            continue;
        }
        char mhost[256];
        snprintf(mhost, sizeof(mhost), "%s", rep->element[0]->str);
        long mport = strtol(rep->element[1]->str, NULL, 10);
        freeReplyObject(rep);
        redisFree(c);
        const char *why = "bad port";
        if (mport >= 1 && mport <= 65535 && is_master(r, mhost, (int)mport, timeout_ms, &why)) {
            snprintf(host, hostlen, "%s", mhost);
            *port = (int)mport;
            return 0;
        }
        note(err, errlen, " sentinel %s:%d named a master that is %s;", sh, sp, why);
    }
    return -1;
}
