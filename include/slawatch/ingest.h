/*
 * ingest.h - events in: owns the stream <prefix>events in both of its modes,
 * the start-up replay (XRANGE after the checkpoint's last applied entry) and
 * then the consumer group (XREADGROUP in batches on the reader connection),
 * validation, dead letters (<prefix>events:dead) and one XACK per batch on
 * the writer connection, after the batch's outputs. Owns the last applied
 * stream ID and the event counters. Never blocks the loop and never stops on
 * bad input: every malformed entry is dead-lettered and counted.
 *
 *   reader up -> hooks.need_state (the wiring loads the checkpoint)
 *     -> ingest_replay(position) -> XRANGE ... (batches) -> XGROUP CREATE
 *     -> hooks.ready -> XREADGROUP ... 0 (own pending) -> XREADGROUP >
 *   each batch: event_parse -> core_apply (the sinks hear the core)
 *     -> XACK (writer) -> hooks.applied; hooks.drained when the stream
 *        is drained or a backlog is being read
 *
 * It reports what it knows by callback and calls nothing above it.
 */
#ifndef SLAWATCH_INGEST_H
#define SLAWATCH_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/rds.h"

struct ingest;

/* Where the stream was left: the last applied entry and the counters. */
struct ingest_position {
    uint64_t last_ms, last_seq;
    uint64_t events_total;
    uint64_t rejected_total;
    uint64_t future_total;           /* applied, stamped ahead of the wall clock */
};

struct ingest_hooks {
    /* The reader is connected and the state is not loaded yet: load it
     * (on this connection, before anything else is read), then call
     * ingest_replay(). Called again after a reconnect until then. */
    void (*need_state)(void *arg, struct rds_conn *reader);
    /* The replay is done and the group is joined, for the first time. */
    void (*ready)(void *arg);
    /* drained: nothing read is waiting, so the wall clock may drive
     * deadlines; !drained: a backlog is being read, so time follows the
     * events (replay decides as live processing did). */
    void (*drained)(void *arg, bool drained);
    /* A batch was applied (the earliest deadline may have moved). */
    void (*applied)(void *arg);
    void *arg;
};

/* reader and writer are not owned; pass ingest_on_ready/ingest_on_down
 * with the returned ingest to rds_init of the reader. cfg must stay valid
 * until ingest_set_config. Returns NULL on allocation failure. */
struct ingest *ingest_new(struct event_base *base, const struct config *cfg,
                          struct core *core, struct rds_conn *reader,
                          struct rds_conn *writer,
                          const struct ingest_hooks *hooks) MUSTCHECK;
void ingest_free(struct ingest *ing);
void ingest_set_config(struct ingest *ing, const struct config *cfg);

/* The reader connection's callbacks (arg: the ingest). */
void ingest_on_ready(struct rds_conn *conn, void *arg);
void ingest_on_down(struct rds_conn *conn, void *arg);

/* The state is loaded: `pos` is the checkpoint's position (all zeros
 * without a checkpoint: the whole stream is replayed). */
void ingest_replay(struct ingest *ing, const struct ingest_position *pos);

/* Stops reading and applies every batch read but not applied yet
 * (shutdown); their outputs and acknowledgements are queued. */
void ingest_stop(struct ingest *ing);

void ingest_position(const struct ingest *ing, struct ingest_position *pos);

/* The fields of one stream entry (element [1] of an XRANGE/XREADGROUP
 * entry), pointing into the reply, at most `max` of them. Returns 0, or -1
 * with the reason to dead-letter it ("entry deleted", "too many fields",
 * "malformed entry", "entry too large"; the first `max` fields are then still
 * in fields, for the dead letter). With stream_id_parse and event_apply, the one path
 * from the stream to the core: the daemon and slawatchctl status both take
 * it, so they decide alike. */
#define INGEST_MAX_FIELDS 64
int ingest_entry_fields(const redisReply *kv, struct ev_field *fields, size_t max,
                        size_t *nfields, const char **reason) MUSTCHECK;

/* Error replies on the stream so far (a key that is no stream, a deleted
 * group, ...), for stats. */
uint64_t ingest_stream_errors(const struct ingest *ing);
/* What keeps the stream from being read (the last error, or reading
 * paused for the write queue) in buf, for STATUS=; false when nothing. */
bool ingest_problem(const struct ingest *ing, char *buf, size_t len);

#endif
