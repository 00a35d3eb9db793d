/*
 * rds_sync.h - the one synchronous Redis connection: connect with a
 * time-out, AUTH and SELECT as the config says. Used where blocking is
 * the point: the checkpoint child, the final checkpoint at shutdown, and
 * slawatchctl. Never from the daemon's event loop otherwise.
 */
#ifndef SLAWATCH_RDS_SYNC_H
#define SLAWATCH_RDS_SYNC_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "slawatch/config.h"

/* Returns a ready context (the caller frees it with redisFree), or NULL
 * with a message such as "cannot connect to redis: Connection refused" in
 * err. timeout_ms bounds the connect; command_ms every later command. */
redisContext *rds_connect_sync(const struct cfg_redis *r, int timeout_ms,
                               int command_ms, char *err, size_t errlen) MUSTCHECK;

#endif
