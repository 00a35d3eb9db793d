/*
 * snapshot.h - crash safety: checkpoints of the whole state into
 * <prefix>state (format: state.h), the forked child that writes them, the
 * final one at shutdown, and loading one at start-up. Knows the core, the
 * writer's unanswered commands and the sections other modules register;
 * gets the stream position from its hooks and reports a load by callback
 * (the replay after it is ingest's). Never blocks the event loop except in
 * the final save at shutdown.
 *
 *   start:  snapshot_load(reader) -> GET <prefix>state -> state_decode
 *           -> sections restored -> hooks.loaded(meta) (the wiring starts
 *           ingest's replay)
 *   every state.checkpoint_every, once started: fork -> child: encode,
 *           SET <prefix>state (rds_sync)
 *   SIGTERM: snapshot_save_sync -> encode, SET in process, by a deadline
 *
 * The writes a checkpoint holds are re-queued only after state_write_check
 * (an allow-list of the commands the daemon writes, keys under the prefix).
 *
 * Guarantees: a checkpoint is consistent (fork gives the child a frozen
 * copy) and holds the last applied stream ID and every Redis write not yet
 * answered; outputs produced between it and a crash are produced again by
 * the replay (same content, same delivery ids).
 */
#ifndef SLAWATCH_SNAPSHOT_H
#define SLAWATCH_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/rds.h"
#include "slawatch/state.h"

struct snapshot;

/* A module's own part of the checkpoint (compliance windows, ...). */
struct snapshot_section {
    uint32_t tag;
    int (*encode)(void *arg, struct wire_buf *out); /* -1: out of memory */
    void (*restore)(void *arg, const char *data, size_t len);
    void *arg;
};

struct snapshot_hooks {
    /* Fills the stream position and counters of meta for a checkpoint. */
    void (*position)(void *arg, struct state_meta *meta);
    /* A load finished: meta is the checkpoint's (NULL: there was none, the
     * whole stream is the history); error: the checkpoint is unusable (the
     * core may hold part of it: the caller must not go on with it). */
    void (*loaded)(void *arg, const struct state_meta *meta, const char *error);
    void *arg;
};

/* core and writer are not owned. Returns NULL on allocation failure. */
struct snapshot *snapshot_new(struct event_base *base, const struct config *cfg,
                              struct core *core, struct rds_conn *writer,
                              const struct snapshot_hooks *hooks) MUSTCHECK;
void snapshot_free(struct snapshot *s);

/* A reloaded config (its redis section is the running one's). */
void snapshot_set_config(struct snapshot *s, const struct config *cfg);

/* Checkpoints are written only while <prefix>leader and
 * <prefix>leader:epoch hold these values (argv[0], argv[1]: the keys;
 * argv[2], argv[3]: this instance's name and token; not copied), checked
 * atomically with the write (WATCH, MULTI/EXEC): a deposed leader's
 * checkpoint never replaces a newer one. */
void snapshot_set_fence(struct snapshot *s, const char **argv, const size_t *lens);

/* No periodic checkpoint from now on (shutdown). */
void snapshot_stop(struct snapshot *s);

#define SNAPSHOT_MAX_SECTIONS 4
/* Register every section before snapshot_load. Returns -1 when full. */
int snapshot_add_section(struct snapshot *s,
                         const struct snapshot_section *sec) MUSTCHECK;

/* Loads the checkpoint over conn (the reader, before anything is read);
 * hooks.loaded follows. A connection lost meanwhile calls nothing: ask
 * again once it is back. */
void snapshot_load(struct snapshot *s, struct rds_conn *conn);

/* The state is complete (checkpoint and replay): periodic checkpoints from
 * now on. Returns -1 when the timer cannot be created. */
int snapshot_start(struct snapshot *s) MUSTCHECK;

/* The final checkpoint, in process (after the writes were answered), done
 * or given up by deadline_us (now_mono_us() time; 0: no limit beyond the
 * connection's own time-outs), so a frozen Redis cannot hold the exit.
 * Returns 0, or -1 (logged) when the state was never complete or the save
 * failed. */
int snapshot_save_sync(struct snapshot *s, int64_t deadline_us);

/* For stats: wall time of the last good checkpoint (0: none yet) and the
 * failures since start. */
int64_t snapshot_last_ms(const struct snapshot *s);
uint64_t snapshot_failed_total(const struct snapshot *s);
/* Pending writes of a loaded checkpoint that were refused (not one the
 * daemon writes, a key outside the prefix, malformed): never sent. */
uint64_t snapshot_writes_refused_total(const struct snapshot *s);

#endif
