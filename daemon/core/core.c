/*
 * core.c - tickets and their SLA clocks under the rules of SPEC section 3.
 * Owns the ticket table, the deadline heap, interned attributes and the
 * open/overdue gauges. Must not do I/O, read the wall clock directly or
 * scan tickets on any per-event or per-tick path; the only full scans are
 * core_set_config() (reload) and core_foreach().
 *
 *   core_apply(ev)                       core_advance(now)
 *        |  fire keys < ev.ts                  |  fire keys < now
 *        v                                     v
 *   ticket table --> sla_clock --heap_set--> heap --pop--> fire_clock()
 *                                                 warning / breach notice,
 *                                                 breached outcome
 */
#include "slawatch/core.h"

#include <stdlib.h>
#include <string.h>

#include "slawatch/cal.h"
#include "slawatch/table.h"

/* A closed ticket's record, for its rating (CORE_CLOSED_KEEP_MS). */
struct closed_rec {
    int64_t forget_ms;       /* INT64_MIN: replaced or dropped, awaiting
                                its turn in the queue to be freed */
    uint32_t rated_s;
    uint8_t attr[ATTR_COUNT][3];
    uint8_t tier;
    uint8_t score;
    uint8_t id_len;
    char id[];
};

/* The layout core.h promises (memory per ticket, docs/benchmarks.md). */
_Static_assert(offsetof(struct ticket, id) == 142, "struct ticket grew");
_Static_assert(CFG_MAX_TIERS <= 127, "tier indexes are 8-bit");
_Static_assert(offsetof(struct closed_rec, id) - 1 == offsetof(struct closed_rec, id_len),
               "ticket_table reads the id length before the id");
_Static_assert(offsetof(struct ticket, id) - 1 == offsetof(struct ticket, id_len),
               "ticket_table reads the id length before the id");

struct core {
    const struct config *cfg;
    struct ticket_table tickets;
    struct heap heap;
    struct intern attrs[ATTR_COUNT];
    struct ticket_table closed;  /* closed_rec by id */
    struct closed_rec **cq;      /* every closed_rec, oldest first (a ring) */
    size_t cq_head, cq_n, cq_cap;
    uint64_t attr_folded[ATTR_COUNT];
    uint64_t forgotten;
    bool restoring;              /* attribute values are taken as saved */
    int64_t now_ms;
    int64_t (*wall_clock)(void *arg);
    void *clock_arg;
    struct core_sink sinks[CORE_MAX_SINKS];
    int nsinks;
    int ndeadline;           /* sinks that listen to deadline changes */
    long open[CFG_MAX_TIERS];
    long overdue[CFG_MAX_TIERS][METRIC_COUNT];
    int track_hold;          /* >0: deadline changes are reported by the caller */
    int64_t set_ms;          /* K for deadlines set now: the arrival of the
                                event being applied, else the core's now */
    const int64_t *keep_k;   /* per clock slot: K kept through a re-target
                                that no event caused (reload, restore) */
    uint64_t late_events;
    core_tier_fn *tier_hook;     /* input hygiene, see core_set_tier_hook */
    void *tier_hook_arg;
};

static inline struct sla_clock *
clock_of_node(struct heap_node *node)
{
    return (struct sla_clock *)((char *)node - offsetof(struct sla_clock, node));
}

/* clk[] is the first member of struct ticket, so a clock finds its ticket
 * from its own slot. */
static inline struct ticket *
ticket_of_clock(struct sla_clock *c)
{
    return (struct ticket *)(c - clock_slot(c->metric));
}

static inline void
attr_id_set(uint8_t dst[3], uint32_t id)
{
    dst[0] = (uint8_t)id;
    dst[1] = (uint8_t)(id >> 8);
    dst[2] = (uint8_t)(id >> 16);
}

static inline uint32_t
attr_id_of(const uint8_t src[3])
{
    return (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16;
}

static void
ticket_set_opened(struct ticket *t, int64_t ms)
{
    uint64_t v = ms > 0 ? (uint64_t)ms : 0;
    for (int i = 0; i < 6; i++, v >>= 8)
        t->opened[i] = (uint8_t)v;
}

static inline const struct cfg_tier *
tier_of(const struct core *core, const struct ticket *t)
{
    return &core->cfg->tiers[t->tier];
}

static inline int64_t
wall_now(struct core *core)
{
    return core->wall_clock(core->clock_arg);
}

/* a + b and a - b, clamped to the int64 range. Event times and checkpoints
 * are range-checked where they come in (event_parse, state_decode), but
 * targets may be any duration the config accepts: clock arithmetic
 * saturates rather than overflow. */
static inline int64_t
add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static inline int64_t
sub_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* ---- notices ---------------------------------------------------------- */

static void
emit_notice(struct core *core, enum notice_kind kind, struct ticket *t,
            struct sla_clock *c, int64_t at_ms, uint32_t percent_bp)
{
    struct sla_notice n = {
        .kind = kind,
        .ticket = t,
        .tier = tier_of(core, t)->name,
        .tier_index = t->tier,
        .metric = c->metric,
        .cycle = c->cycle,
        .deadline_ms = c->deadline_ms,
        .at_ms = at_ms,
        .late_ms = sub_sat(at_ms, c->deadline_ms),
        .percent_bp = percent_bp,
        .opened_ms = ticket_opened_ms(t),
        .started_ms = c->started_ms,
    };
    for (int i = 0; i < core->nsinks; i++)
        if (core->sinks[i].notice)
            core->sinks[i].notice(core->sinks[i].arg, &n);
}

static void
emit_outcome(struct core *core, struct ticket *t, struct sla_clock *c,
             bool decided, int64_t decided_ms, int64_t elapsed_ms)
{
    struct sla_outcome o = {
        .ticket = t,
        .tier_index = t->tier,
        .metric = c->metric,
        .outcome = (enum clock_outcome)c->outcome,
        .decided = decided,
        .decided_ms = decided_ms,
        .elapsed_ms = elapsed_ms,
    };
    for (int i = 0; i < core->nsinks; i++)
        if (core->sinks[i].outcome)
            core->sinks[i].outcome(core->sinks[i].arg, &o);
}

/* A KPI fact of a ticket (or closed record: its tier and attribute ids). */
static void
emit_kpi(struct core *core, enum kpi_fact fact, int tier,
         const uint8_t attr[ATTR_COUNT][3], int64_t at_ms, int delta, bool fcr,
         unsigned score)
{
    struct sla_kpi k = {
        .fact = fact,
        .tier_index = tier,
        .at_ms = at_ms,
        .delta = delta,
        .fcr = fcr,
        .score = (uint8_t)score,
    };
    for (int a = 0; a < ATTR_COUNT; a++)
        k.attr[a] = intern_str(&core->attrs[a], attr_id_of(attr[a]));
    for (int i = 0; i < core->nsinks; i++)
        if (core->sinks[i].kpi)
            core->sinks[i].kpi(core->sinks[i].arg, &k);
}

/* What the deadline_changed listener knows of a clock: counted (tier >= 0)
 * while it runs unbreached, with its deadline. */
struct track {
    int tier;
    int64_t deadline_ms;
};

static inline struct track
track_of(const struct ticket *t, const struct sla_clock *c)
{
    struct track k = { -1, 0 };
    if (c->state == CLOCK_RUNNING && c->outcome != OUTCOME_BREACHED) {
        k.tier = t->tier;
        k.deadline_ms = c->deadline_ms;
    }
    return k;
}

/* Reports the difference between `was` and the clock now. Operations that
 * nest others (a tier change, a reload, a restore) hold the reports and
 * send the net change themselves, so each change is told exactly once. */
static void
track_report(struct core *core, const struct ticket *t,
             const struct sla_clock *c, struct track was)
{
    if (core->ndeadline == 0 || core->track_hold > 0)
        return;
    struct track now = track_of(t, c);
    if (was.tier == now.tier && (was.tier < 0 || was.deadline_ms == now.deadline_ms))
        return;
    struct sla_deadline_change d = {
        .metric = c->metric,
        .old_tier = was.tier,
        .old_deadline_ms = was.deadline_ms,
        .new_tier = now.tier,
        .new_deadline_ms = now.deadline_ms,
    };
    for (int i = 0; i < core->nsinks; i++)
        if (core->sinks[i].deadline)
            core->sinks[i].deadline(core->sinks[i].arg, &d);
}

/* ---- clock arithmetic ------------------------------------------------- */

/* The single place where a remaining business time becomes an instant. A
 * negative remainder (a target tightened below what was already consumed)
 * lies before `from`. */
static int64_t
deadline_from(const struct cfg_tier *tier, int64_t from_ms, int64_t remaining)
{
    if (remaining < 0)
        return add_sat(from_ms, remaining);
    return cal_add(tier->calendar, from_ms, remaining);
}

static int64_t
clock_target(const struct cfg_tier *tier, const struct sla_clock *c)
{
    return tier->target_ms[c->metric];
}


/* K, the arrival of the event that last set a clock's deadline, is kept
 * as its distance from the deadline (K - D, signed) in the heap node's spare
 * 32 bits: in milliseconds while it is within 2^30 ms (12 days), else in
 * whole seconds, rounded up so that a decision is never earlier, within 34
 * years. The lowest bit says which. */
#define K_MS_MAX ((int64_t)1 << 30)

static uint32_t
k_encode(int64_t k_ms, int64_t deadline_ms)
{
    int64_t d;
    if (k_ms < 0 && deadline_ms > INT64_MAX + k_ms)
        d = INT64_MIN;
    else if (k_ms > 0 && deadline_ms < INT64_MIN + k_ms)
        d = INT64_MAX;
    else
        d = k_ms - deadline_ms;
    if (d > -K_MS_MAX && d < K_MS_MAX)
        return (uint32_t)(int32_t)(d * 2);
    int64_t s = d >= 0 ? d / 1000 + (d % 1000 != 0) : d / 1000;
    if (s >= K_MS_MAX)
        s = K_MS_MAX - 1;
    if (s <= -K_MS_MAX)
        s = -K_MS_MAX + 1;
    return (uint32_t)(int32_t)(s * 2) | 1u;
}

/* K - D in milliseconds. */
static int64_t
k_offset(uint32_t aux)
{
    int32_t v = (int32_t)(aux & ~1u);
    return aux & 1u ? (int64_t)(v / 2) * 1000 : (int64_t)(v / 2);
}

/* Records K for a deadline just set; the warnings whose points lie behind
 * it are skipped: they could only be decided late, and a replay decides
 * exactly what live processing did. */
static void
clock_set_k(const struct cfg_tier *tier, struct sla_clock *c, int64_t k_ms);

/* K as the clock keeps it (exact to the millisecond within 12 days of
 * the deadline). */
static int64_t
clock_k(const struct sla_clock *c)
{
    return add_sat(c->deadline_ms, k_offset(c->node.aux));
}

/* When a running clock's breach is decided: as arrival time passes
 * max(deadline, K) + events.allowed_lateness. */
static int64_t
clock_decide_at(const struct core *core, const struct sla_clock *c)
{
    int64_t after = k_offset(c->node.aux);
    return add_sat(add_sat(c->deadline_ms, after > 0 ? after : 0),
                   core->cfg->events.allowed_lateness_ms);
}

/* Key of a running, not yet breached clock: its next warning, else its
 * deadline. */
static int64_t
warn_point(const struct cfg_tier *tier, const struct sla_clock *c)
{
    int64_t target = clock_target(tier, c);
    int64_t warn_at = target / 10000 * tier->warn_bp[c->next_warn] +
                      target % 10000 * tier->warn_bp[c->next_warn] / 10000;
    return deadline_from(tier, c->resumed_ms, sub_sat(warn_at, c->consumed_ms));
}

static int64_t
clock_key(const struct core *core, const struct cfg_tier *tier,
          const struct sla_clock *c)
{
    if (c->next_warn < tier->nwarn) {
        int64_t key = warn_point(tier, c);
        if (key < c->deadline_ms)
            return key;
    }
    return clock_decide_at(core, c);
}

static void
clock_set_k(const struct cfg_tier *tier, struct sla_clock *c, int64_t k_ms)
{
    c->node.aux = k_encode(k_ms, c->deadline_ms);
    while (c->next_warn < tier->nwarn && warn_point(tier, c) < k_ms)
        c->next_warn++;
}

/* Puts a clock into the heap when it can still fire, takes it out otherwise.
 * The caller reserved heap room (core_apply) or the node is already queued. */
static void
clock_schedule(struct core *core, struct ticket *t, struct sla_clock *c)
{
    if (c->state == CLOCK_RUNNING && c->outcome != OUTCOME_BREACHED) {
        if (heap_set(&core->heap, &c->node, clock_key(core, tier_of(core, t), c)) < 0)
            heap_remove(&core->heap, &c->node); /* unreachable: reserved */
    } else {
        heap_remove(&core->heap, &c->node);
    }
}

static void
clock_start(struct core *core, struct ticket *t, struct sla_clock *c,
            int64_t ts)
{
    const struct cfg_tier *tier = tier_of(core, t);
    struct track was = track_of(t, c);
    c->started_ms = ts;
    c->resumed_ms = ts;
    c->consumed_ms = 0;
    c->state = CLOCK_RUNNING;
    c->outcome = OUTCOME_NONE;
    c->next_warn = 0;
    c->deadline_ms = deadline_from(tier, ts, clock_target(tier, c));
    clock_set_k(tier, c, core->set_ms);
    clock_schedule(core, t, c);
    track_report(core, t, c, was);
}

static bool
clock_active(const struct sla_clock *c)
{
    return c->state == CLOCK_RUNNING || c->state == CLOCK_PAUSED;
}

static void clock_breach(struct core *core, struct ticket *t, struct sla_clock *c);

/* Stops a running or paused clock at ts: met, or the recovery of a breach. */
static void
clock_stop(struct core *core, struct ticket *t, struct sla_clock *c,
           int64_t ts)
{
    if (!clock_active(c))
        return;
    /* Nothing happened after it arrived: a stamp ahead of the arrival (a
     * producer clock running fast) must not make an answer late. */
    if (ts > core->set_ms)
        ts = core->set_ms;
    if (ts < c->started_ms)
        ts = c->started_ms;
    if (c->state == CLOCK_RUNNING && c->outcome != OUTCOME_BREACHED &&
        ts > c->deadline_ms)
        clock_breach(core, t, c); /* answered after its deadline, before the decision */
    else if (c->outcome == OUTCOME_BREACHED && ts <= c->deadline_ms)
        core->late_events++; /* in time, but it arrived after the decision */
    struct track was = track_of(t, c);
    if (c->state == CLOCK_RUNNING)
        c->consumed_ms = add_sat(c->consumed_ms,
                                 cal_elapsed(tier_of(core, t)->calendar,
                                             c->resumed_ms, ts));
    c->state = CLOCK_STOPPED;
    c->resumed_ms = ts;
    heap_remove(&core->heap, &c->node);
    track_report(core, t, c, was);
    if (c->outcome != OUTCOME_BREACHED)
        c->outcome = OUTCOME_MET;
    if (c->metric == METRIC_RESPONSE)
        t->flags |= c->outcome == OUTCOME_MET ? TF_RESP_MET : TF_RESP_BREACHED;
    if (c->outcome == OUTCOME_BREACHED) {
        core->overdue[t->tier][c->metric]--;
        emit_notice(core, NOTICE_RECOVERED, t, c, ts, 0);
        emit_outcome(core, t, c, false, ts, ts - c->started_ms);
    } else {
        emit_outcome(core, t, c, true, ts, ts - c->started_ms);
    }
}

/* Ends an active clock with no outcome (deleted ticket, tier without it). */
static void
clock_drop(struct core *core, struct ticket *t, struct sla_clock *c)
{
    if (!clock_active(c))
        return;
    struct track was = track_of(t, c);
    heap_remove(&core->heap, &c->node);
    if (c->outcome == OUTCOME_BREACHED) {
        core->overdue[t->tier][c->metric]--;
        emit_notice(core, NOTICE_CLEARED, t, c, core->now_ms, 0);
    }
    c->state = CLOCK_IDLE;
    track_report(core, t, c, was);
}

static void
clock_pause(struct core *core, struct ticket *t, struct sla_clock *c,
            int64_t ts)
{
    if (c->state != CLOCK_RUNNING)
        return;
    struct track was = track_of(t, c);
    if (ts < c->resumed_ms)
        ts = c->resumed_ms;
    c->consumed_ms = add_sat(c->consumed_ms, cal_elapsed(tier_of(core, t)->calendar,
                                                         c->resumed_ms, ts));
    c->resumed_ms = ts;
    c->state = CLOCK_PAUSED;
    heap_remove(&core->heap, &c->node);
    track_report(core, t, c, was);
}

static void
clock_resume(struct core *core, struct ticket *t, struct sla_clock *c,
             int64_t ts)
{
    if (c->state != CLOCK_PAUSED)
        return;
    struct track was = track_of(t, c);
    if (ts < c->resumed_ms)
        ts = c->resumed_ms;
    c->resumed_ms = ts;
    c->state = CLOCK_RUNNING;
    if (c->outcome != OUTCOME_BREACHED) {
        const struct cfg_tier *tier = tier_of(core, t);
        c->deadline_ms = deadline_from(tier, ts, sub_sat(clock_target(tier, c),
                                                         c->consumed_ms));
        clock_set_k(tier, c, core->set_ms);
    }
    clock_schedule(core, t, c);
    track_report(core, t, c, was);
}

/* Recomputes the deadline of an active clock after its tier changed. */
static void
clock_retarget(struct core *core, struct ticket *t, struct sla_clock *c)
{
    const struct cfg_tier *tier = tier_of(core, t);
    struct track was = track_of(t, c);
    if (c->next_warn > tier->nwarn)
        c->next_warn = (uint8_t)tier->nwarn;
    if (c->outcome == OUTCOME_BREACHED)
        return;
    int64_t remaining = sub_sat(clock_target(tier, c), c->consumed_ms);
    if (c->state == CLOCK_RUNNING) {
        c->deadline_ms = deadline_from(tier, c->resumed_ms, remaining);
        clock_set_k(tier, c,
                    core->keep_k ? core->keep_k[clock_slot(c->metric)] : core->set_ms);
    } else
        c->deadline_ms = add_sat(c->resumed_ms, remaining); /* projected; redone on resume */
    clock_schedule(core, t, c);
    track_report(core, t, c, was);
}

/* ---- firing ----------------------------------------------------------- */

/* Decides a running clock breached, now (its decision point has passed,
 * or it is being stopped after its deadline). at_ms is the wall time. */
static void
clock_breach(struct core *core, struct ticket *t, struct sla_clock *c)
{
    int64_t wall = wall_now(core);
    struct track was = track_of(t, c);
    c->outcome = OUTCOME_BREACHED;
    heap_remove(&core->heap, &c->node);
    track_report(core, t, c, was);
    core->overdue[t->tier][c->metric]++;
    emit_notice(core, NOTICE_BREACH, t, c, wall > c->deadline_ms ? wall : c->deadline_ms,
                10000);
    emit_outcome(core, t, c, true, c->deadline_ms, -1);
}

static void ticket_forget(struct core *core, struct ticket *t);
static void closed_expire(struct core *core);

static void
fire_clock(struct core *core, struct sla_clock *c)
{
    struct ticket *t = ticket_of_clock(c);
    const struct cfg_tier *tier = tier_of(core, t);
    int64_t wall = wall_now(core);

    if (!clock_active(c)) {
        /* Only a resolved ticket's resolution slot is queued while its
         * clock does not run: state.forget_resolved_after has passed. */
        core->forgotten++;
        ticket_forget(core, t);
        return;
    }

    if (c->next_warn >= tier->nwarn || c->node.key >= c->deadline_ms) {
        /* The key is the decision point of the deadline: breach. */
        clock_breach(core, t, c);
        return;
    }
    uint32_t bp = tier->warn_bp[c->next_warn];
    int64_t key = c->node.key;
    c->next_warn++;
    clock_schedule(core, t, c);
    emit_notice(core, NOTICE_WARNING, t, c, wall > key ? wall : key, bp);
}

static void
fire_due(struct core *core)
{
    struct heap_node *node;
    closed_expire(core);
    while ((node = heap_peek(&core->heap)) != NULL && node->key < core->now_ms)
        fire_clock(core, clock_of_node(node));
}

void
core_advance(struct core *core, int64_t now_ms)
{
    if (now_ms > core->now_ms)
        core->now_ms = now_ms;
    core->set_ms = core->now_ms;
    fire_due(core);
}

int64_t
core_next_due(const struct core *core)
{
    const struct heap_node *node = heap_peek(&core->heap);
    return node ? node->key : INT64_MAX;
}

int64_t
core_now(const struct core *core)
{
    return core->now_ms;
}

/* ---- forgetting -------------------------------------------------------- */

/* A resolved ticket is forgotten state.forget_resolved_after after its
 * resolution (as arrival time passes that instant). The resolution slot's
 * heap node, idle while the ticket is resolved, is its timer; slot 1 keeps
 * the resolution's time in resumed_ms. Called whenever a resolved ticket
 * may have been touched (event, reload, restore). */
static void
forget_arm(struct core *core, struct ticket *t)
{
    struct sla_clock *c = &t->clk[1];
    if (!ticket_resolved(t) || clock_active(c))
        return;
    int64_t after = core->cfg->state.forget_resolved_after_ms;
    if (after <= 0) {
        heap_remove(&core->heap, &c->node);
        return;
    }
    if (heap_set(&core->heap, &c->node, add_sat(c->resumed_ms, after)) < 0)
        heap_remove(&core->heap, &c->node); /* kept until closed instead */
}

/* ---- closed tickets ----------------------------------------------------- */

static int
closed_push(struct core *core, struct closed_rec *r)
{
    if (core->cq_n == core->cq_cap) {
        size_t cap = core->cq_cap ? core->cq_cap * 2 : 256;
        struct closed_rec **q = malloc(cap * sizeof(*q));
        if (q == NULL)
            return -1;
        for (size_t i = 0; i < core->cq_n; i++)
            q[i] = core->cq[(core->cq_head + i) % core->cq_cap];
        free(core->cq);
        core->cq = q;
        core->cq_cap = cap;
        core->cq_head = 0;
    }
    core->cq[(core->cq_head + core->cq_n++) % core->cq_cap] = r;
    return 0;
}

static void
closed_release(struct core *core, struct closed_rec *r)
{
    for (int a = 0; a < ATTR_COUNT; a++)
        intern_put(&core->attrs[a], attr_id_of(r->attr[a]));
    free(r);
}

/* Takes a live record out of the table; its memory goes when the queue
 * reaches it. */
static void
closed_kill(struct core *core, struct closed_rec *r)
{
    tt_remove(&core->closed, r);
    r->forget_ms = INT64_MIN;
}

/* Whether a record still takes a rating that arrived at arrival_ms: by
 * arrival, like every decision, so a replay decides as live did. */
static bool
closed_valid(const struct closed_rec *r, int64_t arrival_ms)
{
    return r->forget_ms != INT64_MIN && r->forget_ms >= arrival_ms;
}

/* Frees the records whose time has passed by CLOSED_SLACK_MS: the core's
 * now may run ahead of the arrival of entries not yet read (a Redis host
 * whose clock lags), and such an entry must still find its record. */
#define CLOSED_SLACK_MS (3600 * 1000LL)

static void
closed_expire(struct core *core)
{
    while (core->cq_n > 0) {
        struct closed_rec *r = core->cq[core->cq_head];
        if (r->forget_ms != INT64_MIN) {
            if (r->forget_ms >= core->now_ms - CLOSED_SLACK_MS)
                return;
            tt_remove(&core->closed, r);
        }
        core->cq_head = (core->cq_head + 1) % core->cq_cap;
        core->cq_n--;
        closed_release(core, r);
    }
}

/* A record with the given fields; attribute references are the caller's
 * to give (they are taken over). NULL on allocation failure. */
static struct closed_rec *
closed_add(struct core *core, const char *id, size_t id_len, int tier,
           const uint32_t attr[ATTR_COUNT], uint32_t rated_s, unsigned score,
           int64_t forget_ms)
{
    struct closed_rec *old = tt_find(&core->closed, id, id_len);
    /* The queue stays in order of forget_ms (restored records may lie
     * after the arrival of the close being kept). */
    if (core->cq_n > 0) {
        const struct closed_rec *last =
            core->cq[(core->cq_head + core->cq_n - 1) % core->cq_cap];
        if (last->forget_ms > forget_ms)
            forget_ms = last->forget_ms;
    }
    struct closed_rec *r = malloc(offsetof(struct closed_rec, id) + id_len + 1);
    if (r == NULL)
        return NULL;
    r->forget_ms = forget_ms;
    r->rated_s = rated_s;
    for (int a = 0; a < ATTR_COUNT; a++)
        attr_id_set(r->attr[a], attr[a]);
    r->tier = (uint8_t)tier;
    r->score = (uint8_t)score;
    r->id_len = (uint8_t)id_len;
    memcpy(r->id, id, id_len);
    r->id[id_len] = '\0';
    /* Queued first, so that a failure leaves the old record as it was;
     * the table then has one member fewer, so the insert cannot fail when
     * a record is replaced. */
    if (closed_push(core, r) < 0) {
        free(r);
        return NULL;
    }
    if (old != NULL)
        closed_kill(core, old);
    if (tt_insert(&core->closed, r) < 0) {
        r->forget_ms = INT64_MIN; /* freed when the queue reaches it */
        return NULL;
    }
    return r;
}

/* A closed ticket becomes a record (only when a rating could still come:
 * always, since one may come for 7 days). Failure to allocate loses only
 * the chance of a later rating. */
static void
closed_keep(struct core *core, const struct ticket *t)
{
    uint32_t ids[ATTR_COUNT];
    for (int a = 0; a < ATTR_COUNT; a++) {
        ids[a] = ticket_attr_id(t, a);
        intern_ref(&core->attrs[a], ids[a]);
    }
    if (closed_add(core, t->id, t->id_len, t->tier, ids, t->rated_s, ticket_score(t),
                   add_sat(core->set_ms, CORE_CLOSED_KEEP_MS)) == NULL)
        for (int a = 0; a < ATTR_COUNT; a++)
            intern_put(&core->attrs[a], ids[a]);
}

/* ---- ratings ------------------------------------------------------------- */

static uint32_t
rated_seconds(int64_t ts_ms)
{
    int64_t s = ts_ms / 1000;
    return s < 0 ? 0 : s > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* A later rating replaces the earlier one: that is withdrawn where it was
 * counted, the new one counted at its own ts (to the second). */
static void
rate(struct core *core, int tier, const uint8_t attr[ATTR_COUNT][3],
     uint32_t *rated_s, unsigned old_score, unsigned score, int64_t ts)
{
    if (old_score != SCORE_NONE)
        emit_kpi(core, KPI_RATING, tier, attr, (int64_t)*rated_s * 1000, -1, false,
                 old_score);
    *rated_s = rated_seconds(ts);
    emit_kpi(core, KPI_RATING, tier, attr, (int64_t)*rated_s * 1000, 1, false, score);
}

/* ---- tiers and attributes --------------------------------------------- */

static bool
policy_matches(const struct core *core, const struct cfg_policy *p,
               const struct ticket *t)
{
    for (int a = 0; a < ATTR_COUNT; a++) {
        if (p->nvalues[a] == 0)
            continue;
        const char *v = intern_str(&core->attrs[a], ticket_attr_id(t, a));
        if (v == NULL)
            return false;
        size_t i;
        for (i = 0; i < p->nvalues[a]; i++)
            if (strcmp(v, p->values[a][i]) == 0)
                break;
        if (i == p->nvalues[a])
            return false;
    }
    return true;
}

/* The explicit tier when it names a known one, else the first matching
 * policy, else the last tier of the config (by convention the loosest). */
static int
choose_tier(const struct core *core, const struct ticket *t)
{
    const struct config *cfg = core->cfg;
    if (t->explicit_tier >= 0 && (size_t)t->explicit_tier < cfg->ntiers)
        return t->explicit_tier;
    for (size_t i = 0; i < cfg->npolicies; i++)
        if (policy_matches(core, &cfg->policies[i], t))
            return cfg->policies[i].tier;
    return (int)cfg->ntiers - 1;
}

#define ATTR_OTHER "_other"

/* The id for one attribute value, with a reference: past
 * state.max_attribute_values distinct values of the attribute (besides
 * "_other" itself), a new value is folded into "_other" (counted), so that
 * hostile or runaway values cannot grow memory without bound. A restore
 * takes the values as saved (they were within the cap when written, and
 * their order in a checkpoint is the table's, not their arrival's): no
 * folding then. 0 on allocation failure. */
static uint32_t
attr_intern(struct core *core, int a, const char *v, size_t len)
{
    struct intern *in = &core->attrs[a];
    size_t cap = core->cfg->state.max_attribute_values > 0
                     ? (size_t)core->cfg->state.max_attribute_values
                     : 1;
    /* Only near the cap is "_other" looked up (every event's values come
     * through here). */
    if (!core->restoring && in->live >= cap &&
        in->live - (intern_lookup(in, ATTR_OTHER, sizeof(ATTR_OTHER) - 1) != 0) >= cap &&
        intern_lookup(in, v, len) == 0) {
        core->attr_folded[a]++;
        v = ATTR_OTHER;
        len = sizeof(ATTR_OTHER) - 1;
    }
    uint32_t id = intern_get(in, v, len);
    if (id > ATTR_ID_MAX) { /* cannot happen below the cap's maximum */
        intern_put(in, id);
        return 0;
    }
    return id;
}

/* Takes the attributes an event carries; an empty value clears one.
 * Returns -1 on allocation failure with the ticket unchanged. */
static int
set_attrs(struct core *core, struct ticket *t, const struct sla_event *ev)
{
    uint32_t ids[ATTR_COUNT];
    for (int a = 0; a < ATTR_COUNT; a++) {
        ids[a] = ticket_attr_id(t, a);
        if (ev->attr[a] == NULL)
            continue;
        if (ev->attr_len[a] == 0) {
            ids[a] = 0;
            continue;
        }
        ids[a] = attr_intern(core, a, ev->attr[a], ev->attr_len[a]);
        if (ids[a] == 0) {
            for (int b = 0; b < a; b++)
                if (ev->attr[b] && ev->attr_len[b])
                    intern_put(&core->attrs[b], ids[b]);
            return -1;
        }
    }
    for (int a = 0; a < ATTR_COUNT; a++) {
        if (ev->attr[a] == NULL)
            continue;
        intern_put(&core->attrs[a], ticket_attr_id(t, a));
        attr_id_set(t->attr[a], ids[a]);
    }
    if (ev->tier != NULL) {
        if (ev->tier_len == 0)
            t->explicit_tier = -1;
        else {
            int idx = cfg_tier_index(core->cfg, ev->tier, ev->tier_len);
            if (idx >= 0)
                t->explicit_tier = (int8_t)idx;
        }
    }
    return 0;
}

/* Pauses or resumes each clock as the (possibly new) tier's pause list and
 * the ticket's paused flag say. */
static void
apply_pause_policy(struct core *core, struct ticket *t, int64_t ts)
{
    const struct cfg_tier *tier = tier_of(core, t);
    for (int i = 0; i < CLOCK_SLOTS; i++) {
        struct sla_clock *c = &t->clk[i];
        if (ticket_paused(t) && tier->pause[c->metric])
            clock_pause(core, t, c, ts);
        else
            clock_resume(core, t, c, ts);
    }
}

/* Moves a ticket to another tier (or the same one under a new config):
 * clocks keep their start and consumed time and take the new targets.
 * Reports no deadline change itself (see set_tier). */
static void
set_tier_quiet(struct core *core, struct ticket *t, int new_tier, int64_t ts)
{
    core->track_hold++;
    if (!ticket_resolved(t)) {
        core->open[t->tier]--;
        core->open[new_tier]++;
    }
    for (int i = 0; i < CLOCK_SLOTS; i++) {
        const struct sla_clock *c = &t->clk[i];
        if (clock_active(c) && c->outcome == OUTCOME_BREACHED) {
            core->overdue[t->tier][c->metric]--;
            core->overdue[new_tier][c->metric]++;
        }
    }
    t->tier = (uint8_t)new_tier;
    const struct cfg_tier *tier = tier_of(core, t);
    for (int i = 0; i < CLOCK_SLOTS; i++) {
        struct sla_clock *c = &t->clk[i];
        if (tier->target_ms[c->metric] == 0) {
            clock_drop(core, t, c);
        } else if (clock_active(c)) {
            clock_retarget(core, t, c);
        } else if (c->state == CLOCK_IDLE && c->metric == METRIC_RESOLUTION &&
                   !ticket_resolved(t)) {
            /* The new tier has a resolution target the old one lacked: it
             * counts from the ticket's opening. */
            clock_start(core, t, c, ticket_opened_ms(t));
        }
    }
    apply_pause_policy(core, t, ts);
    core->track_hold--;
}

/* Reports the net change of each clock from `was` (the clocks as the
 * listener knew them before a tier change, reload or restore). */
static void
track_report_ticket(struct core *core, const struct ticket *t,
                    const struct track was[CLOCK_SLOTS])
{
    for (int i = 0; i < CLOCK_SLOTS; i++)
        track_report(core, t, &t->clk[i], was[i]);
}

static void
set_tier(struct core *core, struct ticket *t, int new_tier, int64_t ts)
{
    struct track was[CLOCK_SLOTS];
    for (int i = 0; i < CLOCK_SLOTS; i++)
        was[i] = track_of(t, &t->clk[i]);
    set_tier_quiet(core, t, new_tier, ts);
    track_report_ticket(core, t, was);
}

/* ---- events ----------------------------------------------------------- */

static void
ticket_forget(struct core *core, struct ticket *t)
{
    for (int i = 0; i < CLOCK_SLOTS; i++) {
        clock_drop(core, t, &t->clk[i]);
        heap_remove(&core->heap, &t->clk[i].node); /* the forget timer */
    }
    if (!ticket_resolved(t))
        core->open[t->tier]--;
    for (int a = 0; a < ATTR_COUNT; a++)
        intern_put(&core->attrs[a], ticket_attr_id(t, a));
    tt_remove(&core->tickets, t);
    free(t);
}

/* A ticket with no clock running and nothing interned yet. */
static struct ticket *
ticket_alloc(const char *id, size_t id_len)
{
    /* Only the id's bytes after the fixed part: sizeof() would add the
     * struct's tail padding and push a short id into the next malloc size
     * class. */
    struct ticket *t = malloc(offsetof(struct ticket, id) + id_len + 1);
    if (t == NULL)
        return NULL;
    memset(t, 0, offsetof(struct ticket, id));
    t->id_len = (uint8_t)id_len;
    memcpy(t->id, id, id_len);
    t->id[id_len] = '\0';
    t->explicit_tier = -1;
    for (int i = 0; i < CLOCK_SLOTS; i++)
        heap_node_init(&t->clk[i].node);
    t->clk[0].metric = METRIC_RESPONSE;
    t->clk[1].metric = METRIC_RESOLUTION;
    return t;
}

static int
ev_opened(struct core *core, const struct sla_event *ev, const char **reason)
{
    struct ticket *t = ticket_alloc(ev->ticket, ev->ticket_len);
    if (t == NULL)
        goto oom;
    ticket_set_opened(t, ev->ts_ms);
    if (set_attrs(core, t, ev) < 0) {
        free(t);
        goto oom;
    }
    if (tt_insert(&core->tickets, t) < 0) {
        for (int a = 0; a < ATTR_COUNT; a++)
            intern_put(&core->attrs[a], ticket_attr_id(t, a));
        free(t);
        goto oom;
    }
    t->tier = (uint8_t)choose_tier(core, t);
    core->open[t->tier]++;
    const struct cfg_tier *tier = tier_of(core, t);
    for (int i = 0; i < CLOCK_SLOTS; i++)
        if (tier->target_ms[t->clk[i].metric] > 0)
            clock_start(core, t, &t->clk[i], ev->ts_ms);
    return 0;
oom:
    *reason = "out of memory";
    return -1;
}

static void
ev_resolved(struct core *core, struct ticket *t, int64_t ts)
{
    if (ticket_resolved(t))
        return;
    struct sla_clock *res = &t->clk[1];
    bool running = clock_active(res);
    clock_stop(core, t, res, ts);
    clock_stop(core, t, &t->clk[0], ts); /* response, or a next_reply cycle */
    if (!running) /* no resolution clock: its slot keeps the time all the same */
        res->resumed_ms = ts < core->set_ms ? ts : core->set_ms;
    t->flags |= TF_RESOLVED;
    t->flags &= (uint16_t)~TF_PAUSED;
    core->open[t->tier]--;
    if (!(t->flags & TF_FIRST_DONE)) {
        t->flags |= TF_FIRST_DONE;
        emit_kpi(core, KPI_FIRST_RESOLUTION, t->tier, t->attr, res->resumed_ms, 1,
                 !(t->flags & (TF_REPLIES2 | TF_COMMENTED)), SCORE_NONE);
    }
}

/* The next cycle's number (delivery ids and dedup keys name it): counts
 * up, and stays at the last number rather than wrap. */
static void
cycle_next(struct sla_clock *c)
{
    if (c->cycle < UINT16_MAX)
        c->cycle++;
}

static void
ev_reopened(struct core *core, struct ticket *t, int64_t ts)
{
    if (!ticket_resolved(t))
        return;
    struct sla_clock *res = &t->clk[1];
    if ((t->flags & (TF_FIRST_DONE | TF_REOPENED)) == TF_FIRST_DONE) {
        /* Counted where the first resolution was: slot 1 still holds it. */
        t->flags |= TF_REOPENED;
        emit_kpi(core, KPI_REOPEN, t->tier, t->attr, res->resumed_ms, 1, false,
                 SCORE_NONE);
    }
    t->flags &= (uint16_t)~TF_RESOLVED;
    core->open[t->tier]++;
    heap_remove(&core->heap, &res->node); /* the forget timer */
    if (tier_of(core, t)->target_ms[METRIC_RESOLUTION] > 0) {
        cycle_next(res);
        clock_start(core, t, res, ts);
    }
}

/* A public agent reply: stops the response clock or a next_reply cycle. */
static void
ev_responded(struct core *core, struct ticket *t, int64_t ts)
{
    if (!(t->flags & TF_ANSWERED))
        t->flags |= TF_ANSWERED;
    else if (!(t->flags & TF_FIRST_DONE))
        t->flags |= TF_REPLIES2;
    clock_stop(core, t, &t->clk[0], ts);
}

/* A public customer message: after the first reply, on a ticket not
 * resolved, it starts a next_reply cycle unless one runs. */
static void
ev_commented(struct core *core, struct ticket *t, int64_t ts)
{
    struct sla_clock *c = &t->clk[0];
    if (ticket_resolved(t) || !(t->flags & TF_ANSWERED))
        return;
    /* Stamped before the reply that stopped the last cycle (or the
     * response clock), it arrived late and was answered already. At the
     * same instant (stamps to the second are common) it follows the reply,
     * as the stream has it. */
    if (c->state == CLOCK_STOPPED && ts < c->resumed_ms)
        return;
    if (!(t->flags & TF_FIRST_DONE))
        t->flags |= TF_COMMENTED;
    if (clock_active(c) || tier_of(core, t)->target_ms[METRIC_NEXT_REPLY] == 0)
        return;
    if (c->metric != METRIC_NEXT_REPLY) {
        c->metric = METRIC_NEXT_REPLY; /* the response clock has stopped */
        c->cycle = 0;
    } else {
        cycle_next(c); /* after any cycle, even one dropped: a new number */
    }
    clock_start(core, t, c, ts);
    if (ticket_paused(t) && tier_of(core, t)->pause[METRIC_NEXT_REPLY])
        clock_pause(core, t, c, ts);
}

/* KPI facts follow their ticket: when an event changes the tier or an
 * attribute of a ticket whose rating is counted, or whose first
 * resolution is counted and not yet reopened, those facts are withdrawn
 * under the old tier and values and counted again under the new ones, at
 * the same instants. So a replaced rating is withdrawn where it is
 * counted, and a reopen lands where its first resolution is. After the
 * first reopen, both stay where they are. */
struct attribution {
    int tier;
    uint8_t attr[ATTR_COUNT][3];
};

static bool
attribution_hold(struct core *core, const struct ticket *t, const struct sla_event *ev,
                 struct attribution *was)
{
    bool fr = (t->flags & (TF_FIRST_DONE | TF_REOPENED)) == TF_FIRST_DONE;
    if (!fr && ticket_score(t) == SCORE_NONE)
        return false;
    bool changes = ev->type == EVT_UPDATED;
    for (int a = 0; a < ATTR_COUNT && !changes; a++)
        changes = ev->attr[a] != NULL;
    if (!changes)
        return false;
    was->tier = t->tier;
    memcpy(was->attr, t->attr, sizeof(was->attr));
    for (int a = 0; a < ATTR_COUNT; a++)
        intern_ref(&core->attrs[a], attr_id_of(was->attr[a])); /* keeps the strings */
    return true;
}

static void
attribution_release(struct core *core, const struct attribution *was)
{
    for (int a = 0; a < ATTR_COUNT; a++)
        intern_put(&core->attrs[a], attr_id_of(was->attr[a]));
}

static void
attribution_moved(struct core *core, const struct ticket *t, const struct attribution *was)
{
    if (was->tier != t->tier || memcmp(was->attr, t->attr, sizeof(was->attr)) != 0) {
        if ((t->flags & (TF_FIRST_DONE | TF_REOPENED)) == TF_FIRST_DONE) {
            bool fcr = !(t->flags & (TF_REPLIES2 | TF_COMMENTED));
            int64_t at = t->clk[1].resumed_ms; /* resolved since: the resolution */
            emit_kpi(core, KPI_FIRST_RESOLUTION, was->tier, was->attr, at, -1, fcr,
                     SCORE_NONE);
            emit_kpi(core, KPI_FIRST_RESOLUTION, t->tier, t->attr, at, 1, fcr, SCORE_NONE);
        }
        unsigned score = ticket_score(t);
        if (score != SCORE_NONE) {
            int64_t at = (int64_t)t->rated_s * 1000;
            emit_kpi(core, KPI_RATING, was->tier, was->attr, at, -1, false, score);
            emit_kpi(core, KPI_RATING, t->tier, t->attr, at, 1, false, score);
        }
    }
    attribution_release(core, was);
}

int
core_apply(struct core *core, const struct sla_event *ev, const char **reason)
{
    /* Everything decided before the event arrived fires first (and closed
     * records past their time go); deadlines set by this event count from
     * its arrival (K). The heap has room for the clocks this event may
     * queue, so nothing below can fail half-way. */
    if (heap_reserve(&core->heap, CLOCK_SLOTS) < 0) {
        *reason = "out of memory";
        return -1;
    }
    core_advance(core, ev->arrival_ms);
    struct ticket *t = tt_find(&core->tickets, ev->ticket, ev->ticket_len);
    int64_t ts = ev->ts_ms;

    if (t == NULL && ev->type == EVT_RATED) {
        struct closed_rec *r = tt_find(&core->closed, ev->ticket, ev->ticket_len);
        if (r != NULL && closed_valid(r, ev->arrival_ms)) {
            unsigned old = r->score;
            r->score = ev->score;
            rate(core, r->tier, r->attr, &r->rated_s, old, ev->score, ts);
            return 0;
        }
    }
    if (t == NULL && ev->type != EVT_OPENED) {
        *reason = "unknown ticket";
        return -1;
    }
    core->set_ms = ev->arrival_ms;

    switch (ev->type) {
    case EVT_OPENED:
        if (t != NULL)
            break; /* a second `opened` is a no-op */
        if (ev_opened(core, ev, reason) < 0)
            return -1;
        if (core->tier_hook)
            core->tier_hook(core->tier_hook_arg, ev,
                            tt_find(&core->tickets, ev->ticket, ev->ticket_len));
        break;
    case EVT_RESPONDED:
        ev_responded(core, t, ts);
        break;
    case EVT_COMMENTED:
        ev_commented(core, t, ts);
        break;
    case EVT_PAUSED:
        if (!ticket_paused(t) && !ticket_resolved(t)) {
            t->flags |= TF_PAUSED;
            apply_pause_policy(core, t, ts);
        }
        break;
    case EVT_RESUMED:
        if (ticket_paused(t)) {
            t->flags &= (uint16_t)~TF_PAUSED;
            apply_pause_policy(core, t, ts);
        }
        break;
    case EVT_RESOLVED:
        ev_resolved(core, t, ts);
        break;
    case EVT_REOPENED:
        ev_reopened(core, t, ts);
        break;
    case EVT_RATED: {
        unsigned old = ticket_score(t);
        t->flags = (uint16_t)((t->flags & ~TF_SCORE_MASK) |
                              (unsigned)ev->score << TF_SCORE_SHIFT);
        rate(core, t->tier, t->attr, &t->rated_s, old, ev->score, ts);
        break;
    }
    case EVT_CLOSED:
        ev_resolved(core, t, ts);
        closed_keep(core, t);
        ticket_forget(core, t);
        t = NULL;
        break;
    case EVT_DELETED: {
        /* An earlier incarnation's record goes too: the id is deleted. */
        struct closed_rec *r = tt_find(&core->closed, ev->ticket, ev->ticket_len);
        if (r != NULL)
            closed_kill(core, r);
        ticket_forget(core, t);
        t = NULL;
        break;
    }
    case EVT_UPDATED:
        break;
    case EVT_COUNT:
        *reason = "unknown type";
        return -1;
    }

    if (t != NULL && ev->type != EVT_OPENED) {
        struct attribution was;
        bool follow = attribution_hold(core, t, ev, &was);
        if (set_attrs(core, t, ev) < 0) {
            if (follow)
                attribution_release(core, &was);
            *reason = "out of memory";
            return -1;
        }
        if (ev->type == EVT_UPDATED) {
            int tier = choose_tier(core, t);
            if (tier != t->tier)
                set_tier(core, t, tier, ts);
            if (core->tier_hook)
                core->tier_hook(core->tier_hook_arg, ev, t);
        }
        if (follow)
            attribution_moved(core, t, &was);
        forget_arm(core, t);
    }
    /* A backdated start or a tightened target may already be past, and a
     * ticket resolved long ago is forgotten at once. */
    core->set_ms = core->now_ms;
    fire_due(core);
    return 0;
}

/* ---- life cycle and queries ------------------------------------------- */

struct core *
core_new(const struct config *cfg, int64_t (*wall_clock)(void *arg),
         void *clock_arg, const struct core_sink *sink)
{
    struct core *core = calloc(1, sizeof(*core));
    if (core == NULL)
        return NULL;
    core->cfg = cfg;
    core->wall_clock = wall_clock;
    core->clock_arg = clock_arg;
    if (sink) {
        core->sinks[0] = *sink; /* the first of CORE_MAX_SINKS */
        core->nsinks = 1;
        core->ndeadline = sink->deadline != NULL;
    }
    tt_init(&core->tickets, offsetof(struct ticket, id));
    tt_init(&core->closed, offsetof(struct closed_rec, id));
    heap_init(&core->heap);
    for (int a = 0; a < ATTR_COUNT; a++)
        intern_init(&core->attrs[a]);
    return core;
}

int
core_add_sink(struct core *core, const struct core_sink *sink)
{
    if (core->nsinks >= CORE_MAX_SINKS)
        return -1;
    core->sinks[core->nsinks++] = *sink;
    if (sink->deadline)
        core->ndeadline++;
    return 0;
}

void
core_free(struct core *core)
{
    if (core == NULL)
        return;
    heap_free(&core->heap);
    for (size_t i = 0; i < core->tickets.cap; i++)
        free(core->tickets.slots[i]);
    tt_free(&core->tickets);
    for (size_t i = 0; i < core->cq_n; i++)
        free(core->cq[(core->cq_head + i) % core->cq_cap]);
    free(core->cq);
    tt_free(&core->closed);
    for (int a = 0; a < ATTR_COUNT; a++)
        intern_free(&core->attrs[a]);
    free(core);
}

struct tier_map {
    int index[CFG_MAX_TIERS];
};

void
core_set_config(struct core *core, const struct config *cfg)
{
    const struct config *old = core->cfg;
    struct tier_map map;

    for (size_t i = 0; i < old->ntiers && i < CFG_MAX_TIERS; i++)
        map.index[i] = cfg_tier_index(cfg, old->tiers[i].name,
                                      strlen(old->tiers[i].name));
    /* Room for every clock, so re-targeting never fails half-way; if even
     * that fails, clocks whose node cannot be queued are retried by the
     * next event touching them. */
    if (heap_reserve(&core->heap, (uint32_t)(core->tickets.n * CLOCK_SLOTS)) < 0)
        (void)0;
    core->cfg = cfg;
    memset(core->open, 0, sizeof(core->open));
    memset(core->overdue, 0, sizeof(core->overdue));
    for (size_t i = 0; i < core->tickets.cap; i++) {
        struct ticket *t = core->tickets.slots[i];
        if (t == NULL)
            continue;
        /* The listener knows the clocks under the old tier indexes. */
        struct track was[CLOCK_SLOTS];
        for (int k = 0; k < CLOCK_SLOTS; k++)
            was[k] = track_of(t, &t->clk[k]);
        int mapped = map.index[t->tier];
        if (t->explicit_tier >= 0)
            t->explicit_tier = (int8_t)map.index[t->explicit_tier];
        /* Gauges are rebuilt from scratch; set_tier moves them from the
         * ticket's current tier, so count it there first. */
        t->tier = (uint8_t)(mapped >= 0 ? mapped : 0);
        if (!ticket_resolved(t))
            core->open[t->tier]++;
        for (int k = 0; k < CLOCK_SLOTS; k++)
            if (clock_active(&t->clk[k]) && t->clk[k].outcome == OUTCOME_BREACHED)
                core->overdue[t->tier][t->clk[k].metric]++;
        /* No event arrived: each deadline keeps the K of the event that
         * set it, so one already past is decided before this returns. */
        int64_t kk[CLOCK_SLOTS];
        for (int k = 0; k < CLOCK_SLOTS; k++)
            kk[k] = clock_k(&t->clk[k]);
        core->keep_k = kk;
        set_tier_quiet(core, t, choose_tier(core, t), core->now_ms);
        core->keep_k = NULL;
        track_report_ticket(core, t, was);
        forget_arm(core, t);
    }
    /* Closed records keep their tier by name; one whose tier is gone can
     * no longer be counted anywhere. */
    for (size_t i = 0; i < core->cq_n; i++) {
        struct closed_rec *r = core->cq[(core->cq_head + i) % core->cq_cap];
        if (r->forget_ms == INT64_MIN)
            continue;
        if (map.index[r->tier] < 0)
            closed_kill(core, r);
        else
            r->tier = (uint8_t)map.index[r->tier];
    }
    fire_due(core);
}

void
core_ticket_image(const struct core *core, const struct ticket *t,
                  struct ticket_image *img)
{
    memset(img, 0, sizeof(*img));
    img->id = t->id;
    img->id_len = t->id_len;
    for (int a = 0; a < ATTR_COUNT; a++) {
        img->attr[a] = intern_str(&core->attrs[a], ticket_attr_id(t, a));
        img->attr_len[a] = img->attr[a] ? strlen(img->attr[a]) : 0;
    }
    img->tier = core->cfg->tiers[t->tier].name;
    img->tier_len = strlen(img->tier);
    if (t->explicit_tier >= 0) {
        img->explicit_tier = core->cfg->tiers[t->explicit_tier].name;
        img->explicit_tier_len = strlen(img->explicit_tier);
    }
    img->flags = t->flags;
    img->rated_s = t->rated_s;
    img->opened_ms = ticket_opened_ms(t);
    memcpy(img->clk, t->clk, sizeof(img->clk));
}

/* What slot 0 may hold, and the ticket flags a checkpoint may carry. */
#define TF_ALL 0x0fffu

int
core_restore_ticket(struct core *core, const struct ticket_image *img)
{
    struct sla_event ev;
    struct ticket *t;

    if (img->id_len == 0 || img->id_len > TICKET_ID_MAX ||
        tt_find(&core->tickets, img->id, img->id_len) != NULL ||
        (img->flags & ~TF_ALL) != 0 ||
        (img->clk[0].metric != METRIC_RESPONSE &&
         img->clk[0].metric != METRIC_NEXT_REPLY) ||
        img->opened_ms < 0 || img->opened_ms > TS_MAX_MS)
        return -1;
    if (heap_reserve(&core->heap, CLOCK_SLOTS) < 0)
        return -1;
    t = ticket_alloc(img->id, img->id_len);
    if (t == NULL)
        return -1;
    /* Attributes and the explicit tier go through the same path as events. */
    memset(&ev, 0, sizeof(ev));
    for (int a = 0; a < ATTR_COUNT; a++) {
        ev.attr[a] = img->attr[a];
        ev.attr_len[a] = img->attr_len[a];
    }
    ev.tier = img->explicit_tier;
    ev.tier_len = img->explicit_tier_len;
    core->restoring = true;
    int rc = set_attrs(core, t, &ev);
    core->restoring = false;
    if (rc < 0) {
        free(t);
        return -1;
    }
    if (tt_insert(&core->tickets, t) < 0) {
        for (int a = 0; a < ATTR_COUNT; a++)
            intern_put(&core->attrs[a], ticket_attr_id(t, a));
        free(t);
        return -1;
    }
    t->flags = img->flags;
    t->rated_s = img->rated_s;
    ticket_set_opened(t, img->opened_ms);
    /* K as the checkpoint knew it; never after the checkpoint's now (a
     * version 1 checkpoint, which has none, gives K at the deadline). */
    int64_t k[CLOCK_SLOTS];
    for (int i = 0; i < CLOCK_SLOTS; i++) {
        const struct sla_clock *c = &img->clk[i];
        k[i] = clock_k(c) < core->now_ms ? clock_k(c) : core->now_ms;
        t->clk[i] = *c;
        heap_node_init(&t->clk[i].node);
    }
    t->clk[1].metric = METRIC_RESOLUTION;
    int saved = cfg_tier_index(core->cfg, img->tier, img->tier_len);
    t->tier = (uint8_t)(saved >= 0 ? saved : 0);
    if (!ticket_resolved(t))
        core->open[t->tier]++;
    for (int i = 0; i < CLOCK_SLOTS; i++)
        if (clock_active(&t->clk[i]) && t->clk[i].outcome == OUTCOME_BREACHED)
            core->overdue[t->tier][t->clk[i].metric]++;
    /* Same tier: deadlines are recomputed from start, consumed time and the
     * current target (identical when the config is unchanged). The listener
     * has never seen these clocks. */
    const struct track unseen[CLOCK_SLOTS] = { { -1, 0 }, { -1, 0 } };
    core->keep_k = k;
    set_tier_quiet(core, t, saved >= 0 ? saved : choose_tier(core, t), core->now_ms);
    core->keep_k = NULL;
    track_report_ticket(core, t, unseen);
    forget_arm(core, t);
    return 0;
}

void
core_foreach_closed(const struct core *core,
                    void (*fn)(void *arg, const struct closed_image *c), void *arg)
{
    for (size_t i = 0; i < core->cq_n; i++) {
        const struct closed_rec *r = core->cq[(core->cq_head + i) % core->cq_cap];
        if (r->forget_ms == INT64_MIN)
            continue;
        struct closed_image img = {
            .id = r->id,
            .id_len = r->id_len,
            .tier = core->cfg->tiers[r->tier].name,
            .forget_ms = r->forget_ms,
            .rated_s = r->rated_s,
            .score = r->score,
        };
        img.tier_len = strlen(img.tier);
        for (int a = 0; a < ATTR_COUNT; a++) {
            img.attr[a] = intern_str(&core->attrs[a], attr_id_of(r->attr[a]));
            img.attr_len[a] = img.attr[a] ? strlen(img.attr[a]) : 0;
        }
        fn(arg, &img);
    }
}

int
core_restore_closed(struct core *core, const struct closed_image *img)
{
    if (img->id_len == 0 || img->id_len > TICKET_ID_MAX ||
        img->score > SCORE_BAD ||
        tt_find(&core->closed, img->id, img->id_len) != NULL)
        return -1;
    /* No record is kept longer than CORE_CLOSED_KEEP_MS after the core's
     * time (a forged one would hold the queue, and its successors, for
     * ever). */
    if (img->forget_ms > add_sat(core->now_ms, CORE_CLOSED_KEEP_MS))
        return -1;
    int tier = cfg_tier_index(core->cfg, img->tier, img->tier_len);
    if (tier < 0 || img->forget_ms < core->now_ms - CLOSED_SLACK_MS)
        return 0;
    /* Records come oldest first; one out of order would break the queue. */
    if (core->cq_n > 0) {
        const struct closed_rec *last =
            core->cq[(core->cq_head + core->cq_n - 1) % core->cq_cap];
        if (last->forget_ms > img->forget_ms)
            return -1;
    }
    uint32_t ids[ATTR_COUNT] = { 0 };
    core->restoring = true;
    for (int a = 0; a < ATTR_COUNT; a++) {
        if (img->attr[a] == NULL || img->attr_len[a] == 0)
            continue;
        if ((ids[a] = attr_intern(core, a, img->attr[a], img->attr_len[a])) == 0) {
            core->restoring = false;
            goto fail;
        }
    }
    core->restoring = false;
    if (closed_add(core, img->id, img->id_len, tier, ids, img->rated_s, img->score,
                   img->forget_ms) != NULL)
        return 0;
fail:
    for (int a = 0; a < ATTR_COUNT; a++)
        intern_put(&core->attrs[a], ids[a]);
    return -1;
}

size_t
core_closed_count(const struct core *core)
{
    return core->closed.n;
}

uint64_t
core_attr_folded(const struct core *core, int attr)
{
    return attr >= 0 && attr < ATTR_COUNT ? core->attr_folded[attr] : 0;
}

uint64_t
core_forgotten(const struct core *core)
{
    return core->forgotten;
}

void
core_restore_now(struct core *core, int64_t now_ms)
{
    if (now_ms > core->now_ms)
        core->now_ms = now_ms;
    core->set_ms = core->now_ms;
}

const struct ticket *
core_find(const struct core *core, const char *id, size_t len)
{
    return tt_find(&core->tickets, id, len);
}

const char *
core_ticket_attr(const struct core *core, const struct ticket *t, int attr)
{
    if (attr < 0 || attr >= ATTR_COUNT)
        return NULL;
    return intern_str(&core->attrs[attr], ticket_attr_id(t, attr));
}

const char *
core_tier_name(const struct core *core, const struct ticket *t)
{
    return tier_of(core, t)->name;
}

void
core_set_tier_hook(struct core *core, core_tier_fn *fn, void *arg)
{
    core->tier_hook = fn;
    core->tier_hook_arg = arg;
}

uint64_t
core_late_events(const struct core *core)
{
    return core->late_events;
}

size_t
core_ticket_count(const struct core *core)
{
    return core->tickets.n;
}

long
core_open_count(const struct core *core, int tier)
{
    return tier >= 0 && tier < CFG_MAX_TIERS ? core->open[tier] : 0;
}

long
core_overdue_count(const struct core *core, int tier, int metric)
{
    if (tier < 0 || tier >= CFG_MAX_TIERS || metric < 0 || metric >= METRIC_COUNT)
        return 0;
    return core->overdue[tier][metric];
}

size_t
core_heap_size(const struct core *core)
{
    return core->heap.n;
}

void
core_foreach(const struct core *core,
             void (*fn)(void *arg, const struct ticket *t), void *arg)
{
    for (size_t i = 0; i < core->tickets.cap; i++)
        if (core->tickets.slots[i])
            fn(arg, core->tickets.slots[i]);
}
