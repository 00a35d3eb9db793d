/*
 * notify.c - escalations (see notify.h). Owns the matching of notices to
 * escalations and webhooks, the ladder (`after`) and what a stopped clock
 * means for each format. Must stay cheap on the hot path: a clock met
 * without warnings costs one comparison; nothing here scans tickets or
 * blocks. Waiting ladder levels live in the outbox like every other
 * notification (due at notice + after, with HOOK_F_COND), so they survive a
 * restart and are checked against the core before they fire.
 *
 * What a stopped clock sends, per webhook of each escalation that matched:
 *
 *   level still waiting for `after`    -> cancelled, nothing is sent
 *   json, slack  (breached clock)      -> `recovered`, with send_resolved
 *   pagerduty    (any trigger sent)    -> one `resolve` for the clock's
 *                                         dedup_key, with send_resolved
 *   alertmanager (alert delivered)     -> the alert again with endsAt
 *
 * A deleted ticket's breached clock (NOTICE_CLEARED) ends the same way
 * except that json and slack receivers get nothing: the clock has no
 * outcome to report.
 *
 * `when: objective` escalations are fed by report.c's objective hook
 * (notify_objective), never by notices. A series' violation plays the
 * breach: one note per webhook of each matching escalation, identified by
 * the series and its episode (violation count, checkpointed with the
 * compliance state), held back for `after` (wall time: a ratio has no
 * calendar) and checked against the series' state before it is sent. Its
 * recovery plays the stopped clock, with the same table as above. Tier
 * CMP_ALL (the `all` series) matches only escalations without a `tiers`
 * list.
 *
 * Delivery is injected (struct notify_delivery, see notify.h): notify
 * submits, looks up, cancels and pokes notes through it, and must not
 * include deliver.h, Redis or libevent headers nor create, configure or
 * free the delivery. Its owner (slawatchd.c) does that, and routes the
 * delivery's still-open question to notify_still_open().
 *
 *   notice/outcome/objective --> fire / clock_stopped / objective_* -->
 *   nt->dlv.submit, .lookup, .cancel, .poke --> (deliver.c: outbox, HTTP)
 *   deliver_send.c --still_open--> slawatchd.c --> notify_still_open --> core
 */
#define _GNU_SOURCE
#include "slawatch/notify.h"

#include "slawatch/cal.h"

#include <stdlib.h>
#include <string.h>

#include "slawatch/compliance.h"
#include "slawatch/hook_format.h"
#include "slawatch/log.h"

struct notify {
    const struct config *cfg;
    const struct core *core;
    struct notify_delivery dlv;                 /* not owned */
    notify_objective_state_fn *objective_state; /* report.c's; may be NULL */
    void *objective_state_arg;
};

enum stop_kind { STOP_MET = 0, STOP_RECOVERED, STOP_CLEARED };

/* `tier` is a tier index, or CMP_ALL for the compliance series of every
 * tier together, which only an escalation without a `tiers` list hears. */
static bool
esc_matches(const struct cfg_escalation *e, enum esc_when when, int tier,
            int metric)
{
    if (e->when != when || (e->metric >= 0 && e->metric != metric))
        return false;
    if (tier == CMP_ALL)
        return e->every_tier;
    return tier >= 0 && tier < CFG_MAX_TIERS && e->tiers[tier];
}

/* The escalation of that name in cfg, or NULL (a reload removed it). */
static const struct cfg_escalation *
esc_by_name(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nescalations; i++)
        if (strcmp(cfg->escalations[i].name, name) == 0)
            return &cfg->escalations[i];
    return NULL;
}

/* The clock's identity and the ticket's attributes into a note. */
static void
note_init(const struct notify *nt, struct hook_note *note, enum hook_kind kind,
          const struct cfg_escalation *e, const struct cfg_webhook *wh,
          const struct ticket *t, int metric)
{
    const struct sla_clock *c = &t->clk[clock_slot(metric)];
    const char *tier = core_tier_name(nt->core, t);
    memset(note, 0, sizeof(*note));
    note->kind = kind;
    hook_copy(note->webhook, sizeof(note->webhook), wh->name, strlen(wh->name));
    if (e)
        hook_copy(note->escalation, sizeof(note->escalation), e->name,
                  strlen(e->name));
    hook_copy(note->ticket, sizeof(note->ticket), t->id, t->id_len);
    hook_copy(note->tier, sizeof(note->tier), tier, strlen(tier));
    for (int a = 0; a < ATTR_COUNT; a++) {
        const char *v = core_ticket_attr(nt->core, t, a);
        if (v)
            hook_copy(note->attr[a], sizeof(note->attr[a]), v, strlen(v));
    }
    note->metric = metric;
    note->cycle = c->cycle;
    note->opened_ms = ticket_opened_ms(t);
    note->deadline_ms = c->deadline_ms;
}

static const struct cfg_webhook *
webhook_of(const struct notify *nt, const struct cfg_escalation *e, size_t i)
{
    int w = e->notify[i];
    return w >= 0 && (size_t)w < nt->cfg->nwebhooks ? &nt->cfg->webhooks[w]
                                                    : NULL;
}

/* A warning or a breach: one note per webhook of each matching escalation. */
static void
fire(struct notify *nt, const struct sla_notice *n, enum esc_when when)
{
    const struct config *cfg = nt->cfg;
    for (size_t i = 0; i < cfg->nescalations; i++) {
        const struct cfg_escalation *e = &cfg->escalations[i];
        if (!esc_matches(e, when, n->tier_index, n->metric))
            continue;
        for (size_t k = 0; k < e->nnotify; k++) {
            const struct cfg_webhook *wh = webhook_of(nt, e, k);
            struct hook_note note;
            if (wh == NULL)
                continue;
            note_init(nt, &note,
                      when == ESC_WARNING ? HOOK_KIND_WARNING
                                          : HOOK_KIND_BREACH,
                      e, wh, n->ticket, n->metric);
            note.cycle = n->cycle;
            note.deadline_ms = n->deadline_ms;
            note.at_ms = n->at_ms;
            note.late_ms = n->late_ms;
            note.percent_bp = when == ESC_WARNING ? n->percent_bp : 0;
            /* `after` counts business time, like every SLA duration; with
             * none, the page goes now, even outside opening hours (a
             * breach decided after hours is not held until the opening,
             * where it would follow its own resolve). */
            note.due_ms = e->after_ms > 0
                              ? cal_add(cfg->tiers[n->tier_index].calendar, n->at_ms,
                                        e->after_ms)
                              : n->at_ms;
            /* Every trigger is checked against its clock before each
             * attempt: one still waiting or being retried when the clock
             * stops is never sent after the stop's resolve. */
            note.flags = HOOK_F_COND;
            if (nt->dlv.submit(nt->dlv.arg, &note) < 0)
                continue; /* logged and counted */
            log_ticket(LOG_LVL_DEBUG, note.ticket, note.tier,
                       cfg_metric_name(note.metric),
                       "escalation %s: %s for ticket %s to webhook %s%s",
                       e->name, hook_kind_name(note.kind), note.ticket,
                       wh->name,
                       e->after_ms > 0 ? " (waiting for `after`)" : "");
        }
    }
}

/* The id that a warning or breach note of (e, wh) for this clock has. */
static int
trigger_id(const struct notify *nt, struct hook_note *note, enum hook_kind kind,
           uint32_t percent_bp, const struct cfg_escalation *e,
           const struct cfg_webhook *wh, const struct ticket *t, int metric)
{
    note_init(nt, note, kind, e, wh, t, metric);
    note->percent_bp = percent_bp;
    return hook_delivery_id(note);
}

/*
 * The trigger note `id` (a warning, a breach or a violation) to wh is over:
 * cancels it if still waiting, lets an alertmanager alert resolve itself,
 * and returns whether it was (or is being) delivered.
 */
static bool
settle_id(struct notify *nt, const char *id, const struct cfg_webhook *wh)
{
    switch (nt->dlv.lookup(nt->dlv.arg, id)) {
    case HOOK_STATE_WAITING:
        nt->dlv.cancel(nt->dlv.arg, id);
        return false;
    case HOOK_STATE_ACTIVE:
        if (wh->format == HOOK_ALERTMANAGER)
            nt->dlv.poke(nt->dlv.arg, id);
        return true;
    case HOOK_STATE_NONE:
        break;
    }
    /* Delivered and gone (or never created, which the caller cannot tell
     * apart; a spurious resolve is harmless, a missing one is not). */
    return wh->format != HOOK_ALERTMANAGER;
}

/* settle_id() for a note the clock may have caused for (e, wh). */
static bool
settle(struct notify *nt, enum hook_kind kind, uint32_t percent_bp,
       const struct cfg_escalation *e, const struct cfg_webhook *wh,
       const struct ticket *t, int metric)
{
    struct hook_note note;
    if (trigger_id(nt, &note, kind, percent_bp, e, wh, t, metric) < 0)
        return true;
    return settle_id(nt, note.id, wh);
}

static void
submit_stop(struct notify *nt, enum hook_kind kind,
            const struct cfg_escalation *e, const struct cfg_webhook *wh,
            const struct ticket *t, int metric, int64_t stop_ms)
{
    struct hook_note note;
    note_init(nt, &note, kind, e, wh, t, metric);
    note.at_ms = stop_ms;
    note.late_ms = stop_ms - note.deadline_ms;
    note.due_ms = now_wall_ms();
    if (nt->dlv.submit(nt->dlv.arg, &note) == 0)
        log_ticket(LOG_LVL_DEBUG, note.ticket, note.tier,
                   cfg_metric_name(metric), "%s for ticket %s to webhook %s",
                   hook_kind_name(kind), note.ticket, wh->name);
}

/* A clock that may have been notified stopped (met after warnings, a
 * breach recovered) or ended without an outcome (cleared). */
static void
clock_stopped(struct notify *nt, const struct ticket *t, int metric,
              enum stop_kind stop, int64_t stop_ms)
{
    const struct config *cfg = nt->cfg;
    const struct sla_clock *c = &t->clk[clock_slot(metric)];
    const struct cfg_tier *tier = &cfg->tiers[t->tier];
    unsigned nwarned =
        c->next_warn < tier->nwarn ? c->next_warn : (unsigned)tier->nwarn;
    bool breached = stop != STOP_MET;
    bool *resolve = NULL;

    for (size_t i = 0; i < cfg->nescalations; i++) {
        const struct cfg_escalation *e = &cfg->escalations[i];
        bool on_breach =
            breached && esc_matches(e, ESC_BREACH, t->tier, metric);
        bool on_warn =
            nwarned > 0 && esc_matches(e, ESC_WARNING, t->tier, metric);
        if (!on_breach && !on_warn)
            continue;
        for (size_t k = 0; k < e->nnotify; k++) {
            const struct cfg_webhook *wh = webhook_of(nt, e, k);
            bool sent = false;
            if (wh == NULL)
                continue;
            if (on_breach) {
                bool b = settle(nt, HOOK_KIND_BREACH, 0, e, wh, t, metric);
                sent |= b;
                if (b && stop == STOP_RECOVERED && wh->send_resolved &&
                    (wh->format == HOOK_JSON || wh->format == HOOK_SLACK))
                    submit_stop(nt, HOOK_KIND_RECOVERED, e, wh, t, metric,
                                stop_ms);
            }
            for (unsigned w = 0; on_warn && w < nwarned; w++)
                sent |= settle(nt, HOOK_KIND_WARNING, tier->warn_bp[w], e, wh,
                               t, metric);
            if (sent && wh->format == HOOK_PAGERDUTY && wh->send_resolved) {
                if (resolve == NULL)
                    resolve = calloc(cfg->nwebhooks, sizeof(*resolve));
                if (resolve)
                    resolve[e->notify[k]] = true;
                else
                    submit_stop(nt, HOOK_KIND_RESOLVE, NULL, wh, t, metric,
                                stop_ms);
            }
        }
    }
    /* One resolve per PagerDuty webhook, whatever escalations led there. */
    for (size_t w = 0; resolve && w < cfg->nwebhooks; w++)
        if (resolve[w])
            submit_stop(nt, HOOK_KIND_RESOLVE, NULL, &cfg->webhooks[w], t,
                        metric, stop_ms);
    free(resolve);
}

/* A breach ends the clock's warnings: waiting warning levels are
 * cancelled and alertmanager warning alerts resolve themselves. */
static void
retire_warnings(struct notify *nt, const struct ticket *t, int metric)
{
    const struct config *cfg = nt->cfg;
    const struct cfg_tier *tier = &cfg->tiers[t->tier];
    unsigned nwarned = t->clk[clock_slot(metric)].next_warn;
    if (nwarned > (unsigned)tier->nwarn)
        nwarned = (unsigned)tier->nwarn;
    for (size_t i = 0; nwarned && i < cfg->nescalations; i++) {
        const struct cfg_escalation *e = &cfg->escalations[i];
        if (!esc_matches(e, ESC_WARNING, t->tier, metric))
            continue;
        for (size_t k = 0; k < e->nnotify; k++) {
            const struct cfg_webhook *wh = webhook_of(nt, e, k);
            struct hook_note note;
            for (unsigned w = 0; wh && w < nwarned; w++) {
                if (trigger_id(nt, &note, HOOK_KIND_WARNING, tier->warn_bp[w],
                               e, wh, t, metric) < 0)
                    continue;
                enum hook_state st = nt->dlv.lookup(nt->dlv.arg, note.id);
                if (st == HOOK_STATE_WAITING)
                    nt->dlv.cancel(nt->dlv.arg, note.id);
                else if (st == HOOK_STATE_ACTIVE &&
                         wh->format == HOOK_ALERTMANAGER)
                    nt->dlv.poke(nt->dlv.arg, note.id);
            }
        }
    }
}

void
notify_notice(struct notify *nt, const struct sla_notice *n)
{
    if (nt == NULL || nt->cfg->nescalations == 0)
        return;
    switch (n->kind) {
    case NOTICE_WARNING:
        fire(nt, n, ESC_WARNING);
        break;
    case NOTICE_BREACH:
        fire(nt, n, ESC_BREACH);
        retire_warnings(nt, n->ticket, n->metric);
        break;
    case NOTICE_RECOVERED:
        clock_stopped(nt, n->ticket, n->metric, STOP_RECOVERED, n->at_ms);
        break;
    case NOTICE_CLEARED:
        clock_stopped(nt, n->ticket, n->metric, STOP_CLEARED, n->at_ms);
        break;
    }
}

void
notify_outcome(struct notify *nt, const struct sla_outcome *o)
{
    /* Only a clock met after at least one warning can owe a resolve; a
     * breached one is handled by its RECOVERED notice. */
    if (nt == NULL || !o->decided || o->outcome != OUTCOME_MET ||
        o->ticket->clk[clock_slot(o->metric)].next_warn == 0 || nt->cfg->nescalations == 0)
        return;
    clock_stopped(nt, o->ticket, o->metric, STOP_MET, o->decided_ms);
}

/* ---- compliance objectives ------------------------------------------- */

/* A series' transition into a note for (e, wh); e is NULL for a PagerDuty
 * resolve, which is one per webhook. */
static void
objective_note(struct hook_note *note, enum hook_kind kind,
               const struct cfg_escalation *e, const struct cfg_webhook *wh,
               const struct cmp_objective_change *ch)
{
    memset(note, 0, sizeof(*note));
    note->objective = true;
    note->kind = kind;
    hook_copy(note->webhook, sizeof(note->webhook), wh->name, strlen(wh->name));
    if (e)
        hook_copy(note->escalation, sizeof(note->escalation), e->name,
                  strlen(e->name));
    hook_copy(note->tier, sizeof(note->tier), ch->tier_name,
              strlen(ch->tier_name));
    hook_copy(note->window, sizeof(note->window), ch->window_name,
              strlen(ch->window_name));
    note->metric = ch->metric;
    note->episode = ch->episode;
    note->ratio_micro = ch->ratio_micro;
    note->objective_micro = ch->objective_micro;
    note->met = ch->met;
    note->breached = ch->breached;
    note->at_ms = ch->at_ms;
}

static void
objective_submit(struct notify *nt, struct hook_note *note,
                 const struct cfg_webhook *wh, const char *waiting)
{
    char about[HOOK_SUBJECT_LEN];
    if (nt->dlv.submit(nt->dlv.arg, note) < 0)
        return; /* logged and counted */
    log_ticket(LOG_LVL_DEBUG, NULL, note->tier, cfg_metric_name(note->metric),
               "%s%s%s%s (episode %u) for %s to webhook %s%s",
               note->escalation[0] ? "escalation " : "", note->escalation,
               note->escalation[0] ? ": " : "", hook_kind_name(note->kind),
               (unsigned)note->episode, hook_note_subject(note, about),
               wh->name, waiting);
}

/* A series fell below the objective: one note per webhook of each matching
 * escalation, due `after` the publish that decided it. */
static void
objective_fire(struct notify *nt, const struct cmp_objective_change *ch)
{
    const struct config *cfg = nt->cfg;
    for (size_t i = 0; i < cfg->nescalations; i++) {
        const struct cfg_escalation *e = &cfg->escalations[i];
        if (!esc_matches(e, ESC_OBJECTIVE, ch->tier, ch->metric))
            continue;
        for (size_t k = 0; k < e->nnotify; k++) {
            const struct cfg_webhook *wh = webhook_of(nt, e, k);
            struct hook_note note;
            if (wh == NULL)
                continue;
            objective_note(&note, HOOK_KIND_OBJECTIVE, e, wh, ch);
            note.due_ms = ch->at_ms + e->after_ms;
            /* A later level fires only if this violation still holds then;
             * an Alertmanager alert is re-checked at every re-send. */
            if (e->after_ms > 0 || wh->format == HOOK_ALERTMANAGER)
                note.flags = HOOK_F_COND;
            objective_submit(nt, &note, wh,
                             e->after_ms > 0 ? " (waiting for `after`)" : "");
        }
    }
}

/* A violated series is back at or above the objective: what a stopped
 * clock does, per webhook that heard (or is hearing) of the violation. */
static void
objective_recovered(struct notify *nt, const struct cmp_objective_change *ch)
{
    const struct config *cfg = nt->cfg;
    bool *resolve = NULL;
    struct hook_note note;

    for (size_t i = 0; i < cfg->nescalations; i++) {
        const struct cfg_escalation *e = &cfg->escalations[i];
        if (!esc_matches(e, ESC_OBJECTIVE, ch->tier, ch->metric))
            continue;
        for (size_t k = 0; k < e->nnotify; k++) {
            const struct cfg_webhook *wh = webhook_of(nt, e, k);
            if (wh == NULL)
                continue;
            /* The violation's note: same series, same episode. */
            objective_note(&note, HOOK_KIND_OBJECTIVE, e, wh, ch);
            bool sent =
                hook_delivery_id(&note) < 0 || settle_id(nt, note.id, wh);
            if (!sent || !wh->send_resolved)
                continue;
            if (wh->format == HOOK_JSON || wh->format == HOOK_SLACK) {
                objective_note(&note, HOOK_KIND_RECOVERED, e, wh, ch);
                note.due_ms = now_wall_ms();
                objective_submit(nt, &note, wh, "");
            } else if (wh->format == HOOK_PAGERDUTY) {
                if (resolve == NULL)
                    resolve = calloc(cfg->nwebhooks, sizeof(*resolve));
                if (resolve) {
                    resolve[e->notify[k]] = true;
                } else {
                    objective_note(&note, HOOK_KIND_RESOLVE, NULL, wh, ch);
                    note.due_ms = now_wall_ms();
                    objective_submit(nt, &note, wh, "");
                }
            }
        }
    }
    /* One resolve per PagerDuty webhook: the dedup key is the series'. */
    for (size_t w = 0; resolve && w < cfg->nwebhooks; w++)
        if (resolve[w]) {
            objective_note(&note, HOOK_KIND_RESOLVE, NULL, &cfg->webhooks[w],
                           ch);
            note.due_ms = now_wall_ms();
            objective_submit(nt, &note, &cfg->webhooks[w], "");
        }
    free(resolve);
}

void
notify_objective(struct notify *nt, const struct cmp_objective_change *ch)
{
    if (nt == NULL || nt->cfg->nescalations == 0)
        return;
    if (ch->violated)
        objective_fire(nt, ch);
    else
        objective_recovered(nt, ch);
}

void
notify_set_objective_state(struct notify *nt, notify_objective_state_fn *fn,
                           void *arg)
{
    nt->objective_state = fn;
    nt->objective_state_arg = arg;
}

/* Does the violation an objective note is about still hold: the series is
 * violated now, in the same episode? */
static bool
objective_still_violated(const struct notify *nt, const struct hook_note *n)
{
    uint32_t episode = 0;
    if (nt->objective_state == NULL || n->kind != HOOK_KIND_OBJECTIVE)
        return false;
    return nt->objective_state(nt->objective_state_arg, n->tier, n->metric,
                               n->window, &episode) &&
           episode == n->episode;
}

/* The delivery asks before sending a note with HOOK_F_COND: is its clock
 * (same ticket incarnation, same cycle) still running, and still in the
 * state the note describes? For an objective note: does its violation still
 * hold? */
bool
notify_still_open(const struct notify *nt, const struct hook_note *n)
{
    if (n->objective)
        return objective_still_violated(nt, n);
    const struct ticket *t = core_find(nt->core, n->ticket, strlen(n->ticket));
    if (t == NULL || n->metric < 0 || n->metric >= METRIC_COUNT ||
        ticket_opened_ms(t) != n->opened_ms)
        return false;
    const struct sla_clock *c = ticket_clock(t, n->metric);
    if (c == NULL || (c->state != CLOCK_RUNNING && c->state != CLOCK_PAUSED) ||
        c->cycle != n->cycle)
        return false;
    /* A trigger whose escalation no longer covers the ticket (its tier
     * changed, or a reload changed or removed the escalation) is over as
     * well: a waiting level is dropped, a firing alert resolves. */
    if ((n->kind == HOOK_KIND_BREACH || n->kind == HOOK_KIND_WARNING) && n->escalation[0]) {
        const struct cfg_escalation *e = esc_by_name(nt->cfg, n->escalation);
        if (e == NULL ||
            !esc_matches(e, n->kind == HOOK_KIND_BREACH ? ESC_BREACH : ESC_WARNING, t->tier,
                         n->metric))
            return false;
    }
    if (n->kind == HOOK_KIND_BREACH)
        return c->outcome == OUTCOME_BREACHED;
    if (n->kind == HOOK_KIND_WARNING)
        return c->outcome != OUTCOME_BREACHED;
    return true;
}

int64_t
notify_due_of(const struct notify *nt, const struct hook_note *n)
{
    if (n->objective || (n->kind != HOOK_KIND_BREACH && n->kind != HOOK_KIND_WARNING) ||
        n->escalation[0] == '\0')
        return n->due_ms;
    const struct config *cfg = nt->cfg;
    int tier = cfg_tier_index(cfg, n->tier, strlen(n->tier));
    const struct cfg_escalation *e = esc_by_name(cfg, n->escalation);
    if (e == NULL || tier < 0 || e->after_ms <= 0)
        return n->due_ms; /* still_open decides its fate */
    return cal_add(cfg->tiers[tier].calendar, n->at_ms, e->after_ms);
}

struct notify *
notify_new(const struct config *cfg, const struct core *core,
           const struct notify_delivery *delivery)
{
    struct notify *nt = calloc(1, sizeof(*nt));
    if (nt == NULL)
        return NULL;
    nt->cfg = cfg;
    nt->core = core;
    nt->dlv = *delivery;
    return nt;
}

void
notify_free(struct notify *nt)
{
    free(nt); /* the delivery is its owner's */
}

void
notify_set_config(struct notify *nt, const struct config *cfg)
{
    nt->cfg = cfg;
}
