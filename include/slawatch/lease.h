/*
 * lease.h - high availability (SPEC section 7): the leader lease in Redis
 * and the fencing token that makes Redis refuse a deposed leader's writes.
 * Owns its own connection (so a backlog on the writer never delays a
 * renewal), the claim and renewal scripts, the standby roll call, and the
 * time after which a leader that could not renew stops acting on its own.
 *
 *   <prefix>leader            the holder's events.consumer, PX ha.lease
 *   <prefix>leader:epoch      the fencing token: +1 at every claim, never less
 *   <prefix>leader:holder     the last holder (who took over from whom)
 *   <prefix>instances         sorted set: instance -> time its roll call ends
 *   <prefix>stats:leader_changes_total   +1 at every claim
 *
 *   standby --claim (EVAL, every lease/3, or when the lease runs out)--+
 *      ^                                                               | won
 *      |                                                               v
 *   (process re-exec)  <--lost: renewal refused, or not renewed for --  leader
 *                          lease - margin by the monotonic clock        | renew
 *                                                                       v every lease/3
 *
 * A leader's every durable write goes through lease_fence_argv(): EVAL of a
 * script that runs the command only while <prefix>leader names this
 * instance and <prefix>leader:epoch is its token, so a deposed leader's
 * write that still reaches Redis is refused ("FENCED"), never applied.
 */
#ifndef SLAWATCH_LEASE_H
#define SLAWATCH_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "slawatch/config.h"
#include "slawatch/rds.h"

struct lease;

struct lease_hooks {
    /* This instance now leads (token: its fencing token; previous: the
     * instance that held the lease before, "" if none). */
    void (*acquired)(void *arg, uint64_t token, const char *previous);
    /* It leads no more: it must stop acting at once (why: for the log). */
    void (*lost)(void *arg, const char *why);
    /* It is a standby; leader names the holder ("" while nobody holds it). */
    void (*standby)(void *arg, const char *leader);
    void *arg;
};

/* The redis section, events.consumer and ha.lease are copied: like the
 * rest of the redis section, they take effect at the next start.
 * Returns NULL on allocation failure. */
struct lease *lease_new(struct event_base *base, const struct config *cfg,
                        const struct lease_hooks *hooks) MUSTCHECK;
void lease_free(struct lease *l);
/* Connects and claims. */
void lease_start(struct lease *l);
/* At shutdown, once the final checkpoint is written: gives the lease up
 * (compare-and-delete, synchronous, bounded) so a standby takes over at
 * once. */
void lease_release(struct lease *l);

/* Before a leader re-executes itself to start afresh without giving up
 * the lease (the Redis master changed): passes its token to the new
 * process in the environment, so that it claims its own lease at once. */
#define LEASE_RESUME_ENV "SLAWATCH_LEASE_TOKEN"
void lease_resume_env(const struct lease *l);

/* Redis answered a fenced write "FENCED": another instance leads. */
void lease_refused(struct lease *l);

/* What keeps the lease connection from Redis (rds_problem), for STATUS=. */
bool lease_problem(const struct lease *l, char *buf, size_t len);

bool lease_held(const struct lease *l);
uint64_t lease_token(const struct lease *l);
const char *lease_leader(const struct lease *l); /* as last seen; "" if none */

/* The arguments to put before a command so that Redis runs it only for
 * the current holder: EVAL <script> 2 <leader> <epoch> <name> <token>.
 * *n gets their count; valid while the lease is held. */
void lease_fence_argv(const struct lease *l, const char ***argv, const size_t **lens,
                      int *n);

/* The script itself (for callers that EVAL it on their own connection). */
extern const char lease_fence_script[];

/* Time to leave before the lease runs out: a leader that has not renewed
 * for ha.lease minus this (monotonic clock) stops acting. */
int64_t lease_margin_ms(int64_t lease_ms);

#endif
