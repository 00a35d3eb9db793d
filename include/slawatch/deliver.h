/*
 * deliver.h - delivery of stored notifications to their webhooks, at least
 * once. Owns the in-memory copy of the outbox (every record, with its id,
 * due time and attempt count, kept until the notification is delivered or
 * given up, and stored again when Redis lost it), per-webhook queues with
 * `max_rate`, a bound on concurrent requests and 429 pauses, retries with
 * exponential backoff and jitter, and the alertmanager re-send loop. Knows
 * nothing about escalations, nor about notify.c: the wiring (slawatchd.c)
 * creates the deliver, hands notify.c deliver_submit/lookup/cancel/poke as its
 * struct notify_delivery, and answers still_open() with notify_still_open().
 *
 *   notify.c --notify_delivery--> slawatchd.c --> deliver_submit, _lookup,
 *                                                 _cancel, _poke
 *   deliver_submit -> HSET <prefix>outbox (durable) -> due heap -> webhook
 *   queue -> body + signature (from the record in memory) -> hook_http_post
 *        -> 2xx: HDEL;  5xx/timeout: HSET state, retry later;
 *           429: pause the webhook, retry (not an attempt);
 *           other 4xx: give up, count
 *   HOOK_F_COND note due -> hooks.still_open (slawatchd.c -> notify.c):
 *                           open: send; over: drop it (a delivered
 *                           alertmanager alert: send it with endsAt)
 */
#ifndef SLAWATCH_DELIVER_H
#define SLAWATCH_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "slawatch/config.h"
#include "slawatch/hook_format.h"
#include "slawatch/rds.h"
#include "slawatch/util.h"

/* Concurrent requests per webhook; more wait in its queue. */
#define DELIVER_MAX_INFLIGHT 16

struct deliver;

struct deliver_hooks {
    /* Whether the clock a note is about still runs as the note expects,
     * or the violation an objective note is about still holds (checked
     * before sending a note with HOOK_F_COND). */
    bool (*still_open)(void *arg, const struct hook_note *n);
    /* When a note that has not been attempted falls due under the config
     * now in force (an `after` level: the tier's calendar may have
     * changed), or its due_ms unchanged; asked at every deliver_set_config.
     * May be NULL. */
    int64_t (*due_of)(void *arg, const struct hook_note *n);
    void *arg;
};

/* Returns NULL on allocation failure. cfg and writer are not owned; cfg
 * must stay valid until replaced with deliver_set_config(). */
struct deliver *deliver_new(struct event_base *base, struct rds_conn *writer,
                            const struct config *cfg,
                            const struct deliver_hooks *hooks) MUSTCHECK;
/* Frees everything; requests in flight are abandoned (their records stay
 * in the outbox). Call after the writer connection is closed. */
void deliver_free(struct deliver *d);

/* Webhooks are matched by name; notifications for a webhook that is gone
 * are dropped from the outbox when they come due. */
void deliver_set_config(struct deliver *d, const struct config *cfg);

/* The writer is connected: the first time, re-drive the outbox left by an
 * earlier run (HSCAN); after a reconnection, store every notification in
 * memory again (the Redis now answering may not have them). */
void deliver_writer_ready(struct deliver *d);

/* Stores a notification (fills n->id and n->created_ms; the caller sets
 * due_ms and flags) and schedules its first attempt once Redis has it. A
 * notification whose id is already in the outbox is not stored again.
 * Returns -1 when it could not be stored (logged and counted as failed). */
int deliver_submit(struct deliver *d, struct hook_note *n);

/* HOOK_STATE_NONE, _WAITING or _ACTIVE (hook_format.h). */
enum hook_state deliver_lookup(const struct deliver *d, const char *id);
/* Drops a notification that has not been attempted (HOOK_STATE_WAITING). */
void deliver_cancel(struct deliver *d, const char *id);
/* Makes a waiting or re-sending notification due now, so that its clock is
 * checked again at once (an alertmanager alert whose clock stopped is then
 * sent with endsAt). */
void deliver_poke(struct deliver *d, const char *id);

/* Notifications in the outbox not yet delivered (alertmanager alerts that
 * the receiver already has are not counted). */
size_t deliver_pending(const struct deliver *d);
/* Notifications given up since start (4xx, attempts exhausted, an
 * unusable record). */
uint64_t deliver_failed_total(const struct deliver *d);
/* Successful requests since start. */
uint64_t deliver_sent_total(const struct deliver *d);

#endif
