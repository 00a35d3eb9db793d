/*
 * deliver_int.h - what deliver.c and deliver_send.c share, and nothing
 * else may include: the entry, per-webhook and delivery state, and the few
 * functions one half calls in the other. The public interface is
 * deliver.h.
 *
 *   deliver.c       entries, id table, due heap, creating and re-driving
 *                   them, removal (dlv_entry_remove), dlv_schedule
 *   deliver_send.c  per-webhook queues (dlv_pump), storing records
 *                   again (dlv_store), bodies and signatures, the HTTP
 *                   attempt, retries, 429 pauses and giving up, the
 *                   alertmanager re-send
 */
#ifndef SLAWATCH_DELIVER_INT_H
#define SLAWATCH_DELIVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "slawatch/deliver.h"
#include "slawatch/heap.h"
#include "slawatch/hook_http.h"
#include "slawatch/log.h"
#include "slawatch/outbox.h"

enum entry_state { ST_STORING = 0, ST_WAITING, ST_READY, ST_SENDING };

/* 429 answers after which a notification is given up all the same (they
 * do not count towards retry.attempts). */
#define DELIVER_THROTTLED_MAX 1000

struct entry {
    struct heap_node node;       /* key: due_ms while WAITING */
    struct entry *hnext;         /* id table chain */
    struct entry *qnext, *qprev; /* webhook queue while READY */
    struct deliver *d;
    /* The record, always in hand from creation (or loading) until the
     * entry is freed: what is needed to deliver never depends on Redis
     * still having it, and it is stored again when Redis lost it. Kept
     * current (attempts, due time, flags) by every persist. */
    char *rec;
    size_t rec_len;
    int64_t due_ms;
    int64_t ends_ms;    /* alertmanager endsAt once resolving */
    uint32_t hook;      /* index into d->hooks */
    uint32_t epoch;     /* the webhook's pause epoch when the attempt started */
    uint32_t attempts;  /* at most HOOK_ATTEMPTS_MAX */
    uint16_t throttled; /* 429 answers, not counted in attempts */
    uint8_t state;
    uint8_t flags; /* HOOK_F_* */
    uint32_t busy; /* Redis callbacks holding the entry */
    bool dead;     /* removed while busy */
    bool poked;
    char id[HOOK_ID_LEN + 1];
};

struct hook_rt {
    struct deliver *d;
    char name[HOOK_NAME_MAX + 1];
    const struct cfg_webhook *cfg; /* NULL once removed by a reload */
    struct entry *qhead, *qtail;
    int busy; /* requests in flight */
    /* Requests allowed in flight: DELIVER_MAX_INFLIGHT, down to 1 after
     * a 429 (one probe when the pause ends), then one more per success
     * (slow start) back up to DELIVER_MAX_INFLIGHT. */
    int window;
    uint32_t epoch;  /* +1 per 429: successes of older attempts don't ramp */
    unsigned streak; /* 429 pauses in a row: the next one is longer */
    double tokens;
    int64_t refill_us;
    int64_t paused_until_ms; /* after a 429 */
    struct event *pump_ev;
    bool warned_gone;
};

struct deliver {
    struct event_base *base;
    const struct config *cfg;
    struct deliver_hooks hooks;
    struct outbox ob;
    struct hook_http *http;
    struct heap due;
    struct event *due_ev;
    struct entry **table;
    size_t nbuckets, count;
    struct entry *dead; /* removed while busy, via hnext */
    struct hook_rt **hooks_rt;
    size_t nhooks;
    size_t firing;    /* alertmanager alerts the receiver has */
    size_t rec_bytes; /* records held in memory */
    uint64_t failed_total, sent_total;
    size_t loaded_count;
    bool writer_seen; /* deliver_writer_ready() was called before */
    uint64_t rng;
    struct log_ratelimit retry_rl, fail_rl, repair_rl;
};

static inline struct hook_rt *
hook_of(const struct entry *e)
{
    return e->d->hooks_rt[e->hook];
}

/* deliver.c */
void dlv_table_remove(struct deliver *d, struct entry *e);
/* Writes the entry's delivery state into its record and stores it. */
void dlv_persist(struct entry *e);
void dlv_set_flags(struct entry *e, uint8_t flags);
/* Replaces the record in hand (takes ownership of rec, a NUL-terminated
 * string of len bytes). */
void dlv_set_rec(struct entry *e, char *rec, size_t len);
void dlv_entry_free(struct entry *e);
void dlv_queue_unlink(struct entry *e);
/* Takes the entry out of the index and the outbox (HDEL); frees it now, or
 * marks it dead for the Redis callback that still holds it. */
void dlv_entry_remove(struct entry *e);
/* A dead entry's last callback came: unlink and free it. */
void dlv_dead_free(struct entry *e);
/* WAITING until e->due_ms, or READY (and pumped) now. */
void dlv_schedule(struct entry *e);

/* deliver_send.c */
/* HSET of the record in hand (durable); logs when Redis did not have it
 * any more. Returns -1 when the writer queue refuses it (logged). */
int dlv_store(struct entry *e);
/* Starts as many of the webhook's ready entries as its slots, its rate and
 * a 429 pause allow. */
void dlv_pump(struct hook_rt *h);
/* The webhook's pump timer (h->pump_ev), armed by dlv_pump itself. */
void dlv_pump_cb(evutil_socket_t fd, short what, void *arg);

#endif
