/*
 * daemon.h - the running daemon's shared state, used by the adapter files
 * around the core: ingest.c (stream -> core), publish.c (core -> Redis keys),
 * slawatchd.c (process, signals, timers). Not used by the pure core.
 */
#ifndef SLAWATCH_DAEMON_H
#define SLAWATCH_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/deliver.h"
#include "slawatch/log.h"
#include "slawatch/notify.h"
#include "slawatch/rds.h"

#define KEY_MAX 512

struct report;

struct batch;

struct sw {
    struct event_base *base;
    const char *config_path;
    struct config *cfg;
    struct core *core;
    struct notify *notify;           /* escalation webhooks (notify.c) */
    struct deliver *deliver;         /* webhook delivery (deliver.c) */
    struct report *report;           /* compliance and at-risk (report.c) */

    struct rds_conn reader;          /* XREADGROUP only (it blocks) */
    struct rds_conn writer;          /* every other command, in order */

    struct event *deadline_ev;       /* the one timer for the heap */
    struct event *publish_ev;        /* gauges and counters */
    struct event *shutdown_ev;       /* polls the writer queue on exit */
    struct event *sig_ev[4];

    char key_events[KEY_MAX];
    char key_dead[KEY_MAX];
    char key_breaches[KEY_MAX];
    char key_state[KEY_MAX];

    /* checkpoints (snapshot.c) */
    enum { LOAD_NONE = 0, LOAD_FETCHING, LOAD_REPLAYING, LOAD_DONE } load;
    char replay_after[48];           /* "(<id>" for XRANGE */
    long replayed;
    struct event *checkpoint_ev;
    struct event *sigchld_ev;
    pid_t checkpoint_pid;
    int64_t checkpoint_started_ms;
    int64_t last_checkpoint_ms;
    uint64_t checkpoints_failed;

    /* ingest */
    bool group_ready;
    bool reading;                    /* an XREADGROUP is in flight */
    bool pending_mode;               /* re-reading our own pending entries */
    char pending_after[48];
    bool caught_up;                  /* last read returned a short batch */
    uint64_t last_ms, last_seq;      /* last applied stream ID */
    bool ready_notified;
    struct batch *batches, *batches_tail; /* read, not yet applied */
    struct event *apply_ev;

    /* counters */
    uint64_t events_total;
    uint64_t rejected_total;
    uint64_t notices_total;
    long long lag;
    uint64_t events_at_last_status;
    int64_t last_status_us;
    double events_per_s;

    /* shutdown */
    bool stopping;
    int64_t stop_deadline_us;
    struct log_ratelimit reject_rl;
};

/* ingest.c */
void ingest_on_ready(struct rds_conn *conn, void *arg);
void ingest_on_down(struct rds_conn *conn, void *arg);
void ingest_read(struct sw *sw);

/* publish.c */
void publish_notice(void *arg, const struct sla_notice *n);
void publish_outcome(void *arg, const struct sla_outcome *o);
void publish_gauges(struct sw *sw);
void publish_dead_letter(struct sw *sw, const char *id, size_t id_len,
                         const struct ev_field *fields, size_t nfields,
                         const char *reason);

/* ingest.c, used by snapshot.c for replay */
void ingest_apply_entry(struct sw *sw, const redisReply *entry, int64_t wall_ms);
void ingest_start_group(struct sw *sw);
int ingest_enqueue(struct sw *sw, redisReply *array, bool replay, bool last);
/* Applies every batch read but not yet applied (shutdown, tests). */
void ingest_drain(struct sw *sw);

/* snapshot.c */
void snapshot_load_begin(struct sw *sw);
void snapshot_schedule(struct sw *sw);
void snapshot_reap(struct sw *sw);
int snapshot_save_sync(struct sw *sw);

/* slawatchd.c */
void sw_arm_deadline_timer(struct sw *sw);
void sw_notify_ready(struct sw *sw);

#endif
