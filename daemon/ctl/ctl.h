/*
 * ctl.h - what the files of slawatchctl share (daemon/ctl/, the wiring
 * layer of the operator's command line). ctl_main.c parses the options and
 * dispatches to one cmd_* per command; ctl_util.c and ctl_view.c hold the
 * pieces several commands use. Every command is read-only except emit, and
 * every failure is a message on stderr and an exit status, never a hang.
 *
 *   ctl_main.c --> cmd_emit      ctl_emit.c      XADD one event
 *              --> cmd_status    ctl_status.c    one ticket, or the daemon
 *              --> cmd_tickets   ctl_tickets.c   running clocks by deadline
 *              --> cmd_report    ctl_report.c    the published gauges, KPIs
 *                                                and objectives
 *              --> cmd_outbox    ctl_outbox.c    <prefix>outbox
 *              --> cmd_config    ctl_config.c    the effective configuration
 *              --> cmd_explain   ctl_explain.c   tier and escalations for
 *                                                a set of attributes
 *   ctl_status.c, ctl_tickets.c --> ctl_view.c: the daemon's state rebuilt
 *                                   from its checkpoint plus the stream
 */
#ifndef SLAWATCH_CTL_H
#define SLAWATCH_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/state.h"

#define CTL_DEFAULT_CONFIG "/etc/slawatch/slawatch.yaml"
#define EX_USAGE 64
#define EX_UNAVAILABLE 69
#define EX_CONFIG 78

/* One command: argv[0] is its name, the rest its arguments. Returns the
 * process' exit status. */
typedef int ctl_cmd_fn(const struct config *cfg, int argc, char **argv);

ctl_cmd_fn cmd_emit, cmd_status, cmd_tickets, cmd_report, cmd_outbox,
    cmd_config, cmd_explain;

/* ---- ctl_util.c ---------------------------------------------------------- */

/* Connects as the config says (2 s time-outs). Prints why on failure and
 * returns NULL; the caller frees the context. */
redisContext *ctl_connect(const struct config *cfg);

/* "<prefix><name>" into buf (KEY_MAX bytes). Returns buf. */
char *ctl_key(char *buf, const struct config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints "slawatchctl: <message>" on stderr and returns EX_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the value as indented JSON (keys in insertion order) and
 * releases it. */
void ctl_print_json(json_t *value);

/* A distance in time to now for people: "in 4m10s", "12s ago", "now";
 * whole seconds. buf holds CTL_DUE_BUFLEN bytes. Returns buf. */
#define CTL_DUE_BUFLEN 48
char *ctl_due_text(int64_t due_in_ms, char *buf);

/* The shortest duration text of ms ("1h30m"), into a buffer of
 * CTL_DUR_BUFLEN bytes. Returns buf. */
#define CTL_DUR_BUFLEN 40
char *ctl_dur(int64_t ms, char *buf);

/* ---- ctl_view.c ---------------------------------------------------------- */

/* The daemon's view rebuilt read-only: its last checkpoint plus the stream
 * entries after it, through the daemon's own path (ingest_entry_fields,
 * event_apply), advanced to the wall clock. */
struct ctl_view {
    struct core *core;
    struct state_meta meta;       /* saved_ms 0: no checkpoint yet */
    long replayed;                /* stream entries after the checkpoint */
    int64_t now_ms;               /* the wall clock it was advanced to */
};

/* Returns 0, or the exit status after printing why (Redis unreachable,
 * a checkpoint that cannot be read). */
int ctl_view_load(redisContext *c, const struct config *cfg,
                  struct ctl_view *view);
void ctl_view_free(struct ctl_view *view);
/* "checkpoint 1200 ms old + 3 events after it", or "5 events (no
 * checkpoint yet)". */
void ctl_view_source(const struct ctl_view *view, char *buf, size_t len);

#endif
