/*
 * outbox.h - the durable outbox of webhook notifications in Redis:
 *
 *   <prefix>outbox   hash: delivery id -> record (hook_note_encode JSON)
 *
 * Owns that key's layout and the commands on it, all on the writer
 * connection (struct rds_conn): writes are durable queued commands, so they
 * stay ordered with the daemon's other writes (a notification caused by an
 * event is stored before that event is acknowledged) and survive a
 * reconnect; reads are plain sends. Knows nothing about webhooks or
 * retries (deliver.c, deliver_send.c) and nothing about escalations
 * (notify.c).
 */
#ifndef SLAWATCH_OUTBOX_H
#define SLAWATCH_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slawatch/rds.h"
#include "slawatch/util.h"

#define OUTBOX_KEY_MAX 512
#define OUTBOX_SCAN_COUNT 500

/* Called for each field of the hash while loading (id, record); may
 * queue commands but must not restart the load. */
typedef void outbox_each_fn(void *arg, const char *id, size_t id_len,
                            const char *rec, size_t rec_len);
/* Called once the whole hash was read. */
typedef void outbox_done_fn(void *arg);

struct outbox {
    struct rds_conn *conn;    /* the writer; not owned */
    char key[OUTBOX_KEY_MAX]; /* <prefix>outbox */
    /* loading */
    bool loading, loaded;
    char cursor[64];
    outbox_each_fn *each;
    outbox_done_fn *done;
    void *arg;
};

/* Returns -1 when the prefix is too long. */
int outbox_init(struct outbox *ob, struct rds_conn *conn,
                const char *prefix) MUSTCHECK;

/* HSET key id record, durable; fn(privdata) sees the reply (never NULL for
 * a durable command). Returns -1 when the writer queue refuses it. */
int outbox_put(struct outbox *ob, const char *id, const char *rec, size_t len,
               rds_reply_fn *fn, void *privdata) MUSTCHECK;

/* HDEL key id, durable, no callback. Returns -1 when refused. */
int outbox_del(struct outbox *ob, const char *id) MUSTCHECK;

/* SET <prefix>outbox:error:<id> "<at_ms> <text>" EX 86400, not durable
 * (it is for people: slawatchctl outbox shows it next to the record; a
 * record that is delivered later leaves it to expire). Returns -1 when
 * the writer is not connected. */
int outbox_note_error(struct outbox *ob, const char *id, int64_t at_ms,
                      const char *text);

/* HGET key id; fn sees the reply, or NULL when the connection went away
 * first. Returns -1 when the writer is not connected (fn is not called). */
int outbox_get(struct outbox *ob, const char *id, rds_reply_fn *fn,
               void *privdata) MUSTCHECK;

/* Reads the whole hash once (HSCAN, OUTBOX_SCAN_COUNT at a time), calling
 * each() per field and done() at the end. A load cut short by a lost
 * connection starts over when called again (each() then sees some fields
 * twice); once complete, further calls do nothing. */
void outbox_load(struct outbox *ob, outbox_each_fn *each, outbox_done_fn *done,
                 void *arg);

#endif
