/*
 * rds_sync.c - the one synchronous Redis connection (see rds_sync.h).
 * Blocks the caller by design, for at most the given time-outs; must not
 * be used by anything on the daemon's event loop.
 */
#include "slawatch/rds_sync.h"

#include <stdio.h>
#include <sys/time.h>

#include "slawatch/sentinel.h"

static struct timeval
tv_of(int ms)
{
    return (struct timeval){ ms / 1000, (ms % 1000) * 1000 };
}

redisContext *
rds_connect_sync(const struct cfg_redis *r, int timeout_ms, int command_ms,
                 char *err, size_t errlen)
{
    char host[256];
    int port = r->port;
    redisContext *c;
    if (r->nsentinels) {
        if (sentinel_find_master(r, timeout_ms, host, sizeof(host), &port, err, errlen) < 0)
            return NULL;
        c = redisConnectWithTimeout(host, port, tv_of(timeout_ms));
    } else {
        c = r->unix_path ? redisConnectUnixWithTimeout(r->unix_path, tv_of(timeout_ms))
                         : redisConnectWithTimeout(r->host, r->port, tv_of(timeout_ms));
    }
    if (c == NULL || c->err) {
        snprintf(err, errlen, "cannot connect to redis: %s",
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv_of(command_ms));
    redisReply *rep = NULL;
    const char *what = "AUTH";
    if (r->password) {
        rep = r->username ? redisCommand(c, "AUTH %s %s", r->username, r->password)
                          : redisCommand(c, "AUTH %s", r->password);
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(rep);
    }
    what = "SELECT";
    rep = redisCommand(c, "SELECT %d", r->db);
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
        goto fail;
    freeReplyObject(rep);
    return c;
fail:
    snprintf(err, errlen, "redis %s failed: %s", what, rep ? rep->str : c->errstr);
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return NULL;
}
