/*
 * core.h - the pure SLA core: tickets, their clocks, the deadline heap and
 * the rules of SPEC section 3. No I/O and no event loop: the adapters feed it
 * parsed events and the current time, and it answers its sinks (struct
 * core_sink: notices for warnings/breaches/recoveries, outcomes for
 * compliance, deadline changes for at-risk gauges). Built into
 * libslawcore.a with the rest of daemon/core/: no I/O library header.
 *
 *   event.c: stream entry -> struct sla_event (validation)
 *   core.c:  sla_event -> ticket + clocks -> heap -> notices/outcomes
 *
 * Time (SPEC section 3, "Time"): clock arithmetic uses each event's ts;
 * decisions follow arrival. The core's "now" is arrival time: core_apply()
 * first fires every key strictly earlier than the event's arrival, then
 * applies it; core_advance() (the wall clock between events) fires keys
 * strictly earlier than the given instant; "now" never goes backwards. A
 * running clock with deadline D is keyed for its breach at
 * max(D, K) + events.allowed_lateness, K being the arrival of the event that
 * last set D (reload and restore: the core's now). A stopping event applied
 * before that, with its ts (at most its arrival) at or before D, makes it
 * met; after D, breached at once and recovered. Warnings fire as arrival
 * passes their points; a point already behind K is skipped.
 */
#ifndef SLAWATCH_CORE_H
#define SLAWATCH_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slawatch/config.h"
#include "slawatch/heap.h"
#include "slawatch/util.h"

#define TICKET_ID_MAX 128
#define ATTR_VALUE_MAX 256

enum ev_type {
    EVT_OPENED = 0,
    EVT_RESPONDED,
    EVT_PAUSED,
    EVT_RESUMED,
    EVT_RESOLVED,
    EVT_REOPENED,
    EVT_CLOSED,
    EVT_DELETED,
    EVT_UPDATED,
    EVT_COMMENTED,           /* (v2) a public message from the customer */
    EVT_RATED,               /* (v2) a satisfaction rating */
    EVT_COUNT
};

/* Ratings (SPEC section 3, `rated`): 1..5, or good/bad. 0: none. */
#define SCORE_NONE 0
#define SCORE_GOOD 6
#define SCORE_BAD 7
/* good: 4, 5 and `good`; bad: 1, 2, 3 and `bad`. */
static inline bool
score_is_good(unsigned score)
{
    return score == SCORE_GOOD || score == 4 || score == 5;
}

/* One validated event. Strings point into the caller's buffers and are not
 * NUL-terminated; a NULL attr/tier means the field was absent. */
struct sla_event {
    enum ev_type type;
    const char *ticket;
    size_t ticket_len;
    int64_t ts_ms;           /* when it happened: clock arithmetic */
    int64_t arrival_ms;      /* when slawatch could know of it: decisions */
    bool future;             /* ts_ms lies ahead of the wall clock */
    const char *attr[ATTR_COUNT];
    size_t attr_len[ATTR_COUNT];
    const char *tier;
    size_t tier_len;
    uint8_t score;           /* rated: 1..5, SCORE_GOOD or SCORE_BAD */
};

/* A raw field of a stream entry. */
struct ev_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Validates one stream entry (SPEC section 3). `id_ms` is the time part of
 * the entry ID: its arrival is that, but never later than wall_now_ms, and
 * its ts defaults to its arrival. Events stamped later than wall_now_ms +
 * max_skew_ms are rejected, and so is a numeric ts below 10^11 (seconds,
 * not milliseconds). Returns 0, or -1 with a static reason string such as
 * "missing type" in *reason. Never reads past the given lengths. */
int event_parse(struct sla_event *ev, const struct ev_field *fields,
                size_t nfields, uint64_t id_ms, int64_t wall_now_ms,
                int64_t max_skew_ms, const char **reason) MUSTCHECK;

struct core;

/* One stream entry into the core, the one path the daemon (ingest.c) and
 * slawatchctl status share: event_parse with the config's max_clock_skew,
 * then core_apply. *ev gets the parsed event (valid while fields are).
 * Returns 0, or -1 with the reason it was rejected. */
int event_apply(struct core *core, const struct config *cfg,
                const struct ev_field *fields, size_t nfields, uint64_t id_ms,
                int64_t wall_now_ms, struct sla_event *ev,
                const char **reason) MUSTCHECK;

const char *event_type_name(enum ev_type type);

/* Parses the "<ms>-<seq>" of a stream ID, each part the full range of an
 * unsigned 64-bit number as Redis allows. Returns 0 or -1. */
int stream_id_parse(const char *id, size_t len, uint64_t *ms,
                    uint64_t *seq) MUSTCHECK;

enum clock_state { CLOCK_IDLE = 0, CLOCK_RUNNING, CLOCK_PAUSED, CLOCK_STOPPED };
enum clock_outcome { OUTCOME_NONE = 0, OUTCOME_MET, OUTCOME_BREACHED };

/*
 * One SLA clock. Business time is measured through the tier's calendar:
 * while running, deadline = cal_add(resumed_ms, target - consumed_ms).
 */
struct sla_clock {
    struct heap_node node;   /* key: next warning or breach instant */
    int64_t started_ms;      /* start of this cycle (opened / reopened ts) */
    int64_t resumed_ms;      /* running: start of the current stretch;
                                paused: when paused; stopped: when stopped */
    int64_t consumed_ms;     /* business time counted before resumed_ms */
    int64_t deadline_ms;     /* valid once started */
    uint16_t cycle;          /* 0 for the first cycle, +1 per reopen */
    uint8_t state;           /* enum clock_state */
    uint8_t outcome;         /* enum clock_outcome */
    uint8_t next_warn;       /* index into the tier's warn_bp */
    uint8_t metric;          /* enum sla_metric */
};

/*
 * A ticket has two clock slots. The response clock and the next_reply
 * clock never run at once (a next_reply cycle starts only after the first
 * reply, which stops the response clock), so they share slot 0: it is the
 * response clock until a customer message after the first reply turns it
 * into next_reply cycles (`metric` says which). Slot 1 is the resolution
 * clock; while it is idle and the ticket resolved, its resumed_ms keeps the
 * time of the last resolution (the reopen rate counts a reopen there).
 */
#define CLOCK_SLOTS 2

static inline int
clock_slot(int metric)
{
    return metric == METRIC_RESOLUTION ? 1 : 0;
}

/* Ticket flags (struct ticket.flags). */
#define TF_RESOLVED   0x0001u    /* resolved (not reopened since) */
#define TF_PAUSED     0x0002u
#define TF_ANSWERED   0x0004u    /* an agent replied at least once */
#define TF_REPLIES2   0x0008u    /* ... at least twice before the first
                                    resolution */
#define TF_COMMENTED  0x0010u    /* a customer message after the first reply,
                                    before the first resolution */
#define TF_FIRST_DONE 0x0020u    /* resolved at least once: fcr counted */
#define TF_REOPENED   0x0040u    /* reopened after its first resolution */
#define TF_RESP_MET   0x0080u    /* the response clock ended met ... */
#define TF_RESP_BREACHED 0x0100u /* ... or breached (slot 0 may since run
                                    next_reply cycles) */
#define TF_SCORE_SHIFT 9         /* bits 9-11: the rating (SCORE_*) */
#define TF_SCORE_MASK (7u << TF_SCORE_SHIFT)

/* 24-bit ids of interned attribute values (one intern table per
 * attribute, at most state.max_attribute_values values each) and a 48-bit
 * opening time keep the fixed part of a ticket at 142 bytes, so that with
 * an id of up to 9 bytes it fits a 160-byte allocation (RSS per open
 * ticket: docs/benchmarks.md). */
#define ATTR_ID_MAX 0xffffffu

struct ticket {
    struct sla_clock clk[CLOCK_SLOTS];
    uint32_t rated_s;            /* when the rating was counted (epoch s) */
    uint16_t flags;              /* TF_* */
    uint8_t opened[6];           /* opened ts, ms, 48 bits little-endian */
    uint8_t attr[ATTR_COUNT][3]; /* interned value ids; 0 = absent */
    uint8_t tier;                /* index into cfg->tiers */
    int8_t explicit_tier;        /* tier named by the events, -1 if none */
    uint8_t id_len;
    char id[];                   /* id_len bytes + NUL */
};

static inline uint32_t
ticket_attr_id(const struct ticket *t, int a)
{
    return (uint32_t)t->attr[a][0] | (uint32_t)t->attr[a][1] << 8 |
           (uint32_t)t->attr[a][2] << 16;
}

static inline int64_t
ticket_opened_ms(const struct ticket *t)
{
    uint64_t v = 0;
    for (int i = 5; i >= 0; i--)
        v = v << 8 | t->opened[i];
    return (int64_t)v;
}

static inline bool
ticket_resolved(const struct ticket *t)
{
    return (t->flags & TF_RESOLVED) != 0;
}

static inline bool
ticket_paused(const struct ticket *t)
{
    return (t->flags & TF_PAUSED) != 0;
}

static inline unsigned
ticket_score(const struct ticket *t)
{
    return (t->flags & TF_SCORE_MASK) >> TF_SCORE_SHIFT;
}

/* The ticket's clock of `metric`, or NULL when its slot holds the other
 * metric (response after next_reply cycles began, or next_reply before). */
static inline const struct sla_clock *
ticket_clock(const struct ticket *t, int metric)
{
    if (metric < 0 || metric >= METRIC_COUNT)
        return NULL;
    const struct sla_clock *c = &t->clk[clock_slot(metric)];
    return c->metric == metric ? c : NULL;
}



enum notice_kind { NOTICE_WARNING = 0, NOTICE_BREACH, NOTICE_RECOVERED,
                   NOTICE_CLEARED };

/* What the core tells the outside world. Valid only during the callback. */
struct sla_notice {
    enum notice_kind kind;
    const struct ticket *ticket;
    const char *tier;
    int tier_index;
    int metric;
    uint16_t cycle;
    int64_t deadline_ms;
    int64_t at_ms;           /* detection time (recovered: the stop ts) */
    int64_t late_ms;         /* at_ms - deadline_ms */
    uint32_t percent_bp;     /* warnings: the threshold in basis points */
    int64_t opened_ms;
    int64_t started_ms;
};

/* An outcome, for compliance windows and time distributions. Called once
 * when a clock's outcome is decided (decided == true: met at its stop,
 * breached at its deadline) and once more, with decided == false, when a
 * breached clock finally stops (so its real elapsed time is known). */
struct sla_outcome {
    const struct ticket *ticket;
    int tier_index;
    int metric;
    enum clock_outcome outcome;
    bool decided;
    int64_t decided_ms;      /* met: the stopping ts; breached: the deadline */
    int64_t elapsed_ms;      /* stop - start in wall time; -1 while running */
};

/* (v2) A fact behind the support KPIs (SPEC section 3, "Support KPIs"),
 * for the windows that count them at the ts of the event that decides
 * them. The attributes are the ticket's when the fact is told. */
enum kpi_fact {
    KPI_FIRST_RESOLUTION = 0, /* a ticket resolved for the first time; fcr
                                 says whether at first contact. at_ms: the
                                 resolution's ts */
    KPI_REOPEN,               /* the first reopen after the first resolution:
                                 counted in the window position of that
                                 resolution (at_ms: the resolution's ts) */
    KPI_RATING                /* a rating (score); delta -1 withdraws one
                                 that a later rating replaces, at the
                                 replaced one's at_ms. at_ms: the rating's
                                 ts, truncated to the second */
};
/* Facts follow their ticket: when an event changes the tier or an
 * attribute of a ticket with a counted rating, or with a counted first
 * resolution not yet reopened, each such fact is told again with delta -1
 * under the old tier and attributes and +1 under the new, at its at_ms. */

struct sla_kpi {
    enum kpi_fact fact;
    int tier_index;
    const char *attr[ATTR_COUNT];    /* NUL-terminated, NULL: absent */
    int64_t at_ms;
    int delta;                       /* +1, or -1 (KPI_RATING withdrawn) */
    bool fcr;                        /* KPI_FIRST_RESOLUTION */
    uint8_t score;                   /* KPI_RATING: 1..5, SCORE_GOOD/BAD */
};

/* A change in the set of running, not yet breached clocks, for gauges of
 * the clocks about to breach (at-risk). A clock is counted from the moment
 * it runs unbreached until it stops, pauses, breaches, is dropped or
 * forgotten; its deadline or tier may move meanwhile (resume, re-target,
 * tier change, reload). old_tier < 0: the clock was not counted before;
 * new_tier < 0: it is no longer counted. Every change is reported exactly
 * once, so a listener's running totals always equal the clocks counted. */
struct sla_deadline_change {
    int metric;
    int old_tier;
    int64_t old_deadline_ms;
    int new_tier;
    int64_t new_deadline_ms;
};

/* An output of the core (README "Source layout"): breach records, compliance
 * windows, escalations each register one, in the wiring. Every sink hears
 * every notice, outcome and deadline change, in the order the sinks were
 * added; any callback may be NULL. Callbacks must not call back into the
 * core except for read-only queries (core_find, core_ticket_attr, ...). */
struct core_sink {
    void (*notice)(void *arg, const struct sla_notice *n);
    void (*outcome)(void *arg, const struct sla_outcome *o);
    void (*deadline)(void *arg, const struct sla_deadline_change *d);
    void (*kpi)(void *arg, const struct sla_kpi *k);
    void *arg;
};

#define CORE_MAX_SINKS 6

struct core;

/* Creates an empty core for `cfg` (not owned; must outlive the core or be
 * replaced with core_set_config). `wall_clock` returns the wall time used for
 * detection stamps (at_ms); tests inject their own. Returns NULL on
 * allocation failure. */
struct core *core_new(const struct config *cfg,
                      int64_t (*wall_clock)(void *arg), void *clock_arg,
                      const struct core_sink *sink) MUSTCHECK;
void core_free(struct core *core);

/* Adds a sink (core_new's `sink`, when not NULL, is the first). Add every
 * sink before the first ticket exists (or before a restore), so that a
 * listener of deadline changes starts its totals from zero. Returns -1 when
 * CORE_MAX_SINKS are already registered. */
int core_add_sink(struct core *core, const struct core_sink *sink) MUSTCHECK;

/* Applies one validated event. Returns 0 when applied (including no-ops such
 * as a second `opened`), or -1 with a static reason when rejected ("unknown
 * ticket", "out of memory"); a rejected event changes nothing. */
int core_apply(struct core *core, const struct sla_event *ev,
               const char **reason) MUSTCHECK;

/* Fires every key strictly earlier than now_ms and moves the core's time
 * forward (never backward). */
void core_advance(struct core *core, int64_t now_ms);

/* The instant of the earliest key, or INT64_MAX when nothing is due. The
 * adapter arms its timer for one millisecond after it. */
int64_t core_next_due(const struct core *core);

int64_t core_now(const struct core *core);

/* Replaces the config: tiers are mapped by name, tickets whose tier vanished
 * get the policies' choice, and every running clock is re-targeted at once
 * (deadlines already past breach before this returns). */
void core_set_config(struct core *core, const struct config *cfg);

const struct ticket *core_find(const struct core *core, const char *id,
                               size_t len);
/* Interned attribute value of a ticket, or NULL when absent. */
const char *core_ticket_attr(const struct core *core, const struct ticket *t,
                             int attr);
const char *core_tier_name(const struct core *core, const struct ticket *t);

/* Input hygiene (slawatchd's stats:unmatched:<attr>): after an event chose
 * a ticket's tier (opened, updated), fn hears the event and the ticket,
 * its tier set. Read-only, like a sink; NULL: nobody listens. */
typedef void core_tier_fn(void *arg, const struct sla_event *ev,
                          const struct ticket *t);
void core_set_tier_hook(struct core *core, core_tier_fn *fn, void *arg);

/* Stopping events that reached a clock already decided breached although
 * their ts was at or before its deadline (they arrived too late: see
 * events.allowed_lateness). */
uint64_t core_late_events(const struct core *core);

/* Attribute values folded into "_other" because the attribute already had
 * state.max_attribute_values distinct values (per attribute). */
uint64_t core_attr_folded(const struct core *core, int attr);
/* Resolved tickets forgotten after state.forget_resolved_after. */
uint64_t core_forgotten(const struct core *core);

/* Gauges kept incrementally. */
size_t core_ticket_count(const struct core *core);
long core_open_count(const struct core *core, int tier);
long core_overdue_count(const struct core *core, int tier, int metric);
size_t core_heap_size(const struct core *core);

/* Calls fn for every ticket (reload, checkpoints; never on the hot path). */
void core_foreach(const struct core *core,
                  void (*fn)(void *arg, const struct ticket *t), void *arg);

/* ---- snapshots (state.c) ---------------------------------------------- */

/* Everything a ticket is, by value, for saving and restoring it. */
struct ticket_image {
    const char *id;
    size_t id_len;
    const char *attr[ATTR_COUNT];    /* NULL: absent */
    size_t attr_len[ATTR_COUNT];
    const char *tier;                /* by name, so a changed config maps */
    size_t tier_len;
    const char *explicit_tier;       /* NULL: none */
    size_t explicit_tier_len;
    uint16_t flags;                  /* TF_* */
    uint32_t rated_s;
    int64_t opened_ms;
    struct sla_clock clk[CLOCK_SLOTS]; /* node.key and node.idx are ignored;
                                          metric says what slot 0 holds */
};

/* A ticket closed within the last CORE_CLOSED_KEEP_MS: kept, compactly,
 * only so that a rating can still count (SPEC section 3, `rated`). */
#define CORE_CLOSED_KEEP_MS (7 * 86400000LL)

struct closed_image {
    const char *id;
    size_t id_len;
    const char *attr[ATTR_COUNT];
    size_t attr_len[ATTR_COUNT];
    const char *tier;
    size_t tier_len;
    int64_t forget_ms;               /* forgotten when arrival passes it */
    uint32_t rated_s;
    uint8_t score;                   /* SCORE_* */
};

/* Fills img from a live ticket; strings point into the core. */
void core_ticket_image(const struct core *core, const struct ticket *t,
                       struct ticket_image *img);

/* Re-creates a saved ticket without firing anything: its clocks are queued
 * again with deadlines recomputed for the current config (a tier that no
 * longer exists is chosen again by the policies). Keys already past fire at
 * the next core_advance(). Returns -1 on allocation failure or a duplicate
 * id, leaving the core unchanged. */
int core_restore_ticket(struct core *core,
                        const struct ticket_image *img) MUSTCHECK;

/* Closed-ticket records, oldest first, and their restore (the record is
 * dropped, returning 0, when its tier no longer exists or it has
 * expired; -1: allocation failure or a duplicate id). */
void core_foreach_closed(const struct core *core,
                         void (*fn)(void *arg, const struct closed_image *c),
                         void *arg);
int core_restore_closed(struct core *core,
                        const struct closed_image *img) MUSTCHECK;
size_t core_closed_count(const struct core *core);

/* Sets the core's time after a restore (never backwards). */
void core_restore_now(struct core *core, int64_t now_ms);

#endif
