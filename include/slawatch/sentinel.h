/*
 * sentinel.h - finding the Redis master through Redis Sentinel (SPEC section
 * 7, redis.sentinels and redis.master_name), as the Sentinel client
 * specification says: ask each sentinel in turn SENTINEL
 * get-master-addr-by-name, connect to the address it gives, and trust it
 * only if ROLE says master. rds.c calls it before every connection attempt,
 * so a connection finds the master again after a failover (a write refused
 * with READONLY drops the connection, which then reconnects). Blocking, for
 * at most timeout_ms per connection it opens; no state kept between calls.
 */
#ifndef SLAWATCH_SENTINEL_H
#define SLAWATCH_SENTINEL_H

#include <stddef.h>

#include "slawatch/config.h"

/* Returns 0 with the master's address in host/port, or -1 with what each
 * sentinel said in err. */
int sentinel_find_master(const struct cfg_redis *r, int timeout_ms, char *host,
                         size_t hostlen, int *port, char *err, size_t errlen) MUSTCHECK;

#endif
