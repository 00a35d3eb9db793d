/* Unit tests of the v2 ticket life cycle in the core: `commented` and
 * `rated`, the next_reply clock sharing the response clock's slot, the KPI
 * facts (checked against a model of SPEC section 3 written here, over
 * random histories, and across a checkpoint in the middle), the closed
 * tickets kept 7 days for their rating, state.forget_resolved_after and
 * state.max_attribute_values. Injected clock; no Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/state.h"
#include "slawatch/wire.h"

#define T0 1795000000000LL
#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

static const char *yaml =
    "tiers:\n"
    "  fast: { response: 10m, resolution: 1h, next_reply: 5m, warn: [50%] }\n"
    "  plain: { response: 1h, resolution: 4h }\n"
    "  paused_nr: { response: 1h, next_reply: 30m, pause: [next_reply] }\n"
    "policies:\n"
    "  - { match: { priority: urgent }, tier: fast }\n"
    "  - { match: { priority: wait }, tier: paused_nr }\n"
    "  - { tier: plain }\n"
    "state: { forget_resolved_after: 0s }\n";

struct note {
    enum notice_kind kind;
    char ticket[32];
    int metric;
    uint16_t cycle;
    int64_t deadline, at;
};

struct fact {
    enum kpi_fact fact;
    int tier;
    char queue[16];
    int64_t at;
    int delta;
    bool fcr;
    unsigned score;
};

#define MAXREC 20000

struct fx {
    struct config *cfg;
    struct core *core;
    int64_t wall;
    struct note notes[512];
    int nnotes;
    struct fact *facts;
    int nfacts;
    struct {
        int metric;
        int64_t elapsed;
        bool decided;
        enum clock_outcome outcome;
    } outs[512];
    int nouts;
};

static int64_t
wall(void *arg)
{
    return ((struct fx *)arg)->wall;
}

static void
on_notice(void *arg, const struct sla_notice *n)
{
    struct fx *f = arg;
    if (f->nnotes >= 512)
        return;
    struct note *r = &f->notes[f->nnotes++];
    r->kind = n->kind;
    snprintf(r->ticket, sizeof(r->ticket), "%s", n->ticket->id);
    r->metric = n->metric;
    r->cycle = n->cycle;
    r->deadline = n->deadline_ms;
    r->at = n->at_ms;
}

static void
on_outcome(void *arg, const struct sla_outcome *o)
{
    struct fx *f = arg;
    if (f->nouts >= 512)
        return;
    f->outs[f->nouts].metric = o->metric;
    f->outs[f->nouts].elapsed = o->elapsed_ms;
    f->outs[f->nouts].decided = o->decided;
    f->outs[f->nouts].outcome = o->outcome;
    f->nouts++;
}

static void
on_kpi(void *arg, const struct sla_kpi *k)
{
    struct fx *f = arg;
    assert_true(f->nfacts < MAXREC);
    struct fact *r = &f->facts[f->nfacts++];
    r->fact = k->fact;
    r->tier = k->tier_index;
    snprintf(r->queue, sizeof(r->queue), "%s", k->attr[ATTR_QUEUE] ? k->attr[ATTR_QUEUE] : "");
    r->at = k->at_ms;
    r->delta = k->delta;
    r->fcr = k->fcr;
    r->score = k->score;
}

static struct core *
core_for(struct fx *f)
{
    struct core_sink s = { .notice = on_notice, .outcome = on_outcome, .kpi = on_kpi,
                           .arg = f };
    struct core *c = core_new(f->cfg, wall, f, &s);
    assert_non_null(c);
    return c;
}

static struct fx *
fx_new(const char *text)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->facts = calloc(MAXREC, sizeof(*f->facts));
    assert_non_null(f->facts);
    f->cfg = cfg_load_string("t.yaml", text, strlen(text), stderr);
    assert_non_null(f->cfg);
    f->core = core_for(f);
    f->wall = T0;
    return f;
}

static void
fx_free(struct fx *f)
{
    core_free(f->core);
    cfg_free(f->cfg);
    free(f->facts);
    free(f);
}

/* One event at ts (arriving then); extra is "field=value,...". Returns 0,
 * or -1 with the reason in *why. */
static int
apply_to(struct fx *f, struct core *c, const char *type, const char *ticket, int64_t ts,
         const char *extra, const char **why)
{
    struct ev_field fl[12];
    size_t n = 0;
    char buf[256], tsbuf[32];
    struct sla_event ev;
    const char *reason = NULL;
    fl[n++] = (struct ev_field){ "type", 4, type, strlen(type) };
    fl[n++] = (struct ev_field){ "ticket", 6, ticket, strlen(ticket) };
    snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
    fl[n++] = (struct ev_field){ "ts", 2, tsbuf, strlen(tsbuf) };
    snprintf(buf, sizeof(buf), "%s", extra ? extra : "");
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        assert_non_null(eq);
        *eq = '\0';
        fl[n++] = (struct ev_field){ kv, strlen(kv), eq + 1, strlen(eq + 1) };
    }
    if (f->wall < ts)
        f->wall = ts;
    int rc = event_parse(&ev, fl, n, (uint64_t)f->wall, f->wall, 5 * MIN, &reason);
    if (rc == 0)
        rc = core_apply(c, &ev, &reason);
    if (why)
        *why = rc == 0 ? NULL : reason;
    return rc;
}

static int
apply(struct fx *f, const char *type, const char *ticket, int64_t ts, const char *extra)
{
    return apply_to(f, f->core, type, ticket, ts, extra, NULL);
}

static void
advance(struct fx *f, int64_t to)
{
    f->wall = to;
    core_advance(f->core, to);
}

static int
count_notes(const struct fx *f, enum notice_kind kind, int metric)
{
    int n = 0;
    for (int i = 0; i < f->nnotes; i++)
        if (f->notes[i].kind == kind && f->notes[i].metric == metric)
            n++;
    return n;
}

/* ---- events ------------------------------------------------------------ */

static void
test_rated_needs_a_valid_score(void **state)
{
    (void)state;
    struct fx *f = fx_new(yaml);
    const char *why;
    assert_int_equal(apply(f, "opened", "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply_to(f, f->core, "rated", "A", T0 + MIN, NULL, &why), -1);
    assert_string_equal(why, "missing score");
    const char *bad[] = { "score=0", "score=6", "score=4.5", "score=", "score=GOOD",
                          "score=45", "score= 4" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(apply_to(f, f->core, "rated", "A", T0 + MIN, bad[i], &why), -1);
        assert_string_equal(why, "bad score");
    }
    assert_int_equal(apply_to(f, f->core, "rated", "nobody", T0 + MIN, "score=5", &why), -1);
    assert_string_equal(why, "unknown ticket");
    assert_int_equal(apply_to(f, f->core, "commented", "nobody", T0 + MIN, NULL, &why), -1);
    assert_string_equal(why, "unknown ticket");
    assert_int_equal(f->nfacts, 0);
    const char *good[] = { "score=1", "score=5", "score=good", "score=bad" };
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(apply(f, "rated", "A", T0 + 2 * MIN, good[i]), 0);
    /* Each later rating replaces the earlier: 1 count, then 3 x (-1, +1). */
    assert_int_equal(f->nfacts, 7);
    assert_int_equal(f->facts[6].score, SCORE_BAD);
    assert_int_equal(f->facts[5].delta, -1);
    assert_int_equal(f->facts[5].score, SCORE_GOOD);
    assert_int_equal(ticket_score(core_find(f->core, "A", 1)), SCORE_BAD);
    fx_free(f);
}

/* ---- next_reply -------------------------------------------------------- */

static void
test_next_reply_cycles(void **state)
{
    (void)state;
    struct fx *f = fx_new(yaml);
    assert_int_equal(apply(f, "opened", "A", T0, "priority=urgent"), 0);
    /* Before the first reply a customer message starts nothing. */
    assert_int_equal(apply(f, "commented", "A", T0 + MIN, NULL), 0);
    const struct ticket *t = core_find(f->core, "A", 1);
    assert_null(ticket_clock(t, METRIC_NEXT_REPLY));
    assert_int_equal(ticket_clock(t, METRIC_RESPONSE)->state, CLOCK_RUNNING);
    assert_int_equal(apply(f, "responded", "A", T0 + 2 * MIN, NULL), 0);
    assert_int_equal(ticket_clock(t, METRIC_RESPONSE)->state, CLOCK_STOPPED);
    /* Cycle 0: from the message to the next reply, met. */
    assert_int_equal(apply(f, "commented", "A", T0 + 10 * MIN, NULL), 0);
    const struct sla_clock *c = ticket_clock(t, METRIC_NEXT_REPLY);
    assert_non_null(c);
    assert_null(ticket_clock(t, METRIC_RESPONSE));
    assert_true(t->flags & TF_RESP_MET);
    assert_int_equal(c->state, CLOCK_RUNNING);
    assert_int_equal(c->cycle, 0);
    assert_int_equal(c->deadline_ms, T0 + 15 * MIN);
    /* A second message while it runs changes nothing: the oldest counts. */
    assert_int_equal(apply(f, "commented", "A", T0 + 12 * MIN, NULL), 0);
    assert_int_equal(c->started_ms, T0 + 10 * MIN);
    assert_int_equal(apply(f, "responded", "A", T0 + 13 * MIN, NULL), 0);
    assert_int_equal(c->state, CLOCK_STOPPED);
    assert_int_equal(c->outcome, OUTCOME_MET);
    assert_int_equal(f->outs[f->nouts - 1].metric, METRIC_NEXT_REPLY);
    assert_int_equal(f->outs[f->nouts - 1].elapsed, 3 * MIN);
    /* Cycle 1: warned at 50%, breached at 5 min, recovered by the reply. */
    assert_int_equal(apply(f, "commented", "A", T0 + 20 * MIN, NULL), 0);
    assert_int_equal(c->cycle, 1);
    advance(f, T0 + 26 * MIN);
    /* (cycle 0 warned at 12.5 min too) */
    assert_int_equal(count_notes(f, NOTICE_WARNING, METRIC_NEXT_REPLY), 2);
    assert_int_equal(f->notes[f->nnotes - 2].cycle, 1);
    assert_int_equal(count_notes(f, NOTICE_BREACH, METRIC_NEXT_REPLY), 1);
    assert_int_equal(core_overdue_count(f->core, 0, METRIC_NEXT_REPLY), 1);
    const struct note *b = &f->notes[f->nnotes - 1];
    assert_int_equal(b->kind, NOTICE_BREACH);
    assert_int_equal(b->cycle, 1);
    assert_int_equal(b->deadline, T0 + 25 * MIN);
    assert_int_equal(apply(f, "responded", "A", T0 + 27 * MIN, NULL), 0);
    assert_int_equal(count_notes(f, NOTICE_RECOVERED, METRIC_NEXT_REPLY), 1);
    assert_int_equal(core_overdue_count(f->core, 0, METRIC_NEXT_REPLY), 0);
    /* Resolving stops a running cycle; a message after that starts none. */
    assert_int_equal(apply(f, "commented", "A", T0 + 30 * MIN, NULL), 0);
    assert_int_equal(c->cycle, 2);
    assert_int_equal(apply(f, "resolved", "A", T0 + 31 * MIN, NULL), 0);
    assert_int_equal(c->state, CLOCK_STOPPED);
    assert_int_equal(c->outcome, OUTCOME_MET);
    assert_int_equal(apply(f, "commented", "A", T0 + 32 * MIN, NULL), 0);
    assert_int_equal(c->state, CLOCK_STOPPED);
    assert_int_equal(c->cycle, 2);
    /* Reopened, a message starts cycle 3. */
    assert_int_equal(apply(f, "reopened", "A", T0 + 40 * MIN, NULL), 0);
    assert_int_equal(apply(f, "commented", "A", T0 + 41 * MIN, NULL), 0);
    assert_int_equal(c->cycle, 3);
    assert_int_equal(c->state, CLOCK_RUNNING);
    assert_int_equal(core_heap_size(f->core), 2);
    fx_free(f);
}

/* A tier without next_reply ignores messages; one with pause: [next_reply]
 * pauses the cycle; a tier change to one without the target drops it. */
static void
test_next_reply_tiers_and_pause(void **state)
{
    (void)state;
    struct fx *f = fx_new(yaml);
    assert_int_equal(apply(f, "opened", "P", T0, NULL), 0); /* plain */
    assert_int_equal(apply(f, "responded", "P", T0 + MIN, NULL), 0);
    assert_int_equal(apply(f, "commented", "P", T0 + 2 * MIN, NULL), 0);
    const struct ticket *p = core_find(f->core, "P", 1);
    assert_null(ticket_clock(p, METRIC_NEXT_REPLY));
    assert_non_null(ticket_clock(p, METRIC_RESPONSE));

    assert_int_equal(apply(f, "opened", "W", T0, "priority=wait"), 0);
    assert_int_equal(apply(f, "responded", "W", T0 + MIN, NULL), 0);
    assert_int_equal(apply(f, "paused", "W", T0 + 2 * MIN, NULL), 0);
    assert_int_equal(apply(f, "commented", "W", T0 + 3 * MIN, NULL), 0);
    const struct ticket *w = core_find(f->core, "W", 1);
    const struct sla_clock *c = ticket_clock(w, METRIC_NEXT_REPLY);
    assert_non_null(c);
    assert_int_equal(c->state, CLOCK_PAUSED);
    assert_int_equal(apply(f, "resumed", "W", T0 + 13 * MIN, NULL), 0);
    assert_int_equal(c->state, CLOCK_RUNNING);
    assert_int_equal(c->deadline_ms, T0 + 43 * MIN);
    advance(f, T0 + 44 * MIN);
    assert_int_equal(count_notes(f, NOTICE_BREACH, METRIC_NEXT_REPLY), 1);
    assert_int_equal(f->notes[f->nnotes - 1].deadline, T0 + 43 * MIN);
    /* To plain (no next_reply): the running cycle ends without outcome. */
    assert_int_equal(apply(f, "updated", "W", T0 + 45 * MIN, "priority=normal"), 0);
    assert_int_equal(c->state, CLOCK_IDLE);
    assert_int_equal(count_notes(f, NOTICE_CLEARED, METRIC_NEXT_REPLY), 1);
    assert_int_equal(core_overdue_count(f->core, 2, METRIC_NEXT_REPLY), 0);
    assert_int_equal(core_overdue_count(f->core, 1, METRIC_NEXT_REPLY), 0);
    fx_free(f);
}

/* A business-hours tier counts a cycle in open hours only: a message at
 * Friday 17:50 Berlin with 30 min to answer is due Monday 09:20. */
static void
test_next_reply_calendar(void **state)
{
    (void)state;
    struct fx *f = fx_new("calendars:\n"
                          "  office: { timezone: Europe/Berlin, week: { mon-fri: \"09:00-18:00\" } }\n"
                          "tiers: { biz: { response: 1h, next_reply: 30m, calendar: office } }\n");
    const int64_t fri1600 = 1795186800000LL; /* 2026-11-20T15:00:00Z, a Friday */
    assert_int_equal(apply(f, "opened", "B", fri1600, NULL), 0);
    assert_int_equal(apply(f, "responded", "B", fri1600 + 10 * MIN, NULL), 0);
    assert_int_equal(apply(f, "commented", "B", fri1600 + 110 * MIN, NULL), 0);
    const struct sla_clock *c = ticket_clock(core_find(f->core, "B", 1), METRIC_NEXT_REPLY);
    assert_non_null(c);
    int64_t mon0920 = fri1600 + 3 * DAY - 7 * HOUR + 20 * MIN;
    assert_int_equal(c->deadline_ms, mon0920);
    advance(f, mon0920);
    assert_int_equal(count_notes(f, NOTICE_BREACH, METRIC_NEXT_REPLY), 0);
    advance(f, mon0920 + 1);
    assert_int_equal(count_notes(f, NOTICE_BREACH, METRIC_NEXT_REPLY), 1);
    fx_free(f);
}

/* ---- checkpoints --------------------------------------------------------- */

static void
encode(const struct core *c, struct wire_buf *buf)
{
    struct state_meta meta = { T0, core_now(c), 0, 0, 0, 0 };
    wire_init(buf);
    assert_int_equal(state_encode(c, &meta, NULL, 0, buf), 0);
}

static struct core *
restore(struct fx *f, const struct wire_buf *buf)
{
    struct core *c = core_for(f);
    struct state_meta meta;
    char err[256] = "";
    long n = state_decode(c, buf->data, buf->len, &meta, NULL, NULL, err, sizeof(err));
    if (n < 0)
        fail_msg("%s", err);
    return c;
}

static void
test_checkpoint_keeps_v2_fields(void **state)
{
    (void)state;
    struct fx *f = fx_new(yaml);
    assert_int_equal(apply(f, "opened", "A", T0, "priority=urgent,queue=billing"), 0);
    assert_int_equal(apply(f, "responded", "A", T0 + MIN, NULL), 0);
    assert_int_equal(apply(f, "commented", "A", T0 + 2 * MIN, NULL), 0);
    assert_int_equal(apply(f, "rated", "A", T0 + 3 * MIN + 500, "score=4"), 0);
    assert_int_equal(apply(f, "opened", "B", T0, NULL), 0);
    assert_int_equal(apply(f, "rated", "B", T0 + 4 * MIN, "score=bad"), 0);
    assert_int_equal(apply(f, "closed", "B", T0 + 5 * MIN, NULL), 0);
    struct wire_buf buf;
    encode(f->core, &buf);
    struct core *c = restore(f, &buf);
    const struct ticket *a = core_find(f->core, "A", 1), *b = core_find(c, "A", 1);
    assert_non_null(b);
    assert_int_equal(b->flags, a->flags);
    assert_int_equal(b->rated_s, (T0 + 3 * MIN) / 1000);
    assert_int_equal(ticket_score(b), 4);
    assert_int_equal(ticket_opened_ms(b), T0);
    const struct sla_clock *nr = ticket_clock(b, METRIC_NEXT_REPLY);
    assert_non_null(nr);
    assert_int_equal(nr->deadline_ms, T0 + 7 * MIN);
    assert_int_equal(core_heap_size(c), core_heap_size(f->core));
    assert_int_equal(core_closed_count(c), 1);
    /* The closed ticket's rating is replaced from the restored record. */
    int before = f->nfacts;
    assert_int_equal(apply_to(f, c, "rated", "B", T0 + 6 * MIN, "score=5", NULL), 0);
    assert_int_equal(f->nfacts, before + 2);
    assert_int_equal(f->facts[before].delta, -1);
    assert_int_equal(f->facts[before].score, SCORE_BAD);
    assert_int_equal(f->facts[before].at, T0 + 4 * MIN);
    assert_int_equal(f->facts[before + 1].score, 5);
    /* Written again, it is the same bytes (the closed record's rating
     * aside, which just changed: compare the original). */
    struct wire_buf again;
    core_free(c);
    c = restore(f, &buf);
    encode(c, &again);
    assert_int_equal(again.len, buf.len);
    wire_free(&again);
    wire_free(&buf);
    core_free(c);
    fx_free(f);
}

/* ---- closed tickets, forgetting, folding --------------------------------- */

static void
test_closed_rating_window(void **state)
{
    (void)state;
    struct fx *f = fx_new(yaml);
    assert_int_equal(apply(f, "opened", "C", T0, "queue=q1"), 0);
    assert_int_equal(apply(f, "closed", "C", T0 + HOUR, NULL), 0);
    assert_null(core_find(f->core, "C", 1));
    assert_int_equal(core_closed_count(f->core), 1);
    /* Within 7 days of closing: counted, with the ticket's tier and queue. */
    assert_int_equal(apply(f, "rated", "C", T0 + HOUR + 7 * DAY, "score=good"), 0);
    assert_int_equal(f->facts[f->nfacts - 1].fact, KPI_RATING);
    assert_string_equal(f->facts[f->nfacts - 1].queue, "q1");
    assert_int_equal(f->facts[f->nfacts - 1].tier, 1);
    /* After: rejected as unknown; the record itself goes an hour later
     * (entries read late must still find it). */
    const char *why;
    assert_int_equal(apply_to(f, f->core, "rated", "C", T0 + HOUR + 7 * DAY + 1, "score=bad",
                              &why), -1);
    assert_string_equal(why, "unknown ticket");
    assert_int_equal(core_closed_count(f->core), 1);
    advance(f, T0 + 2 * HOUR + 7 * DAY + 1);
    assert_int_equal(core_closed_count(f->core), 0);
    /* A ticket opened again under a closed one's id is a new ticket; its
     * own close replaces the record. */
    assert_int_equal(apply(f, "opened", "D", T0 + 8 * DAY, NULL), 0);
    assert_int_equal(apply(f, "closed", "D", T0 + 8 * DAY + MIN, NULL), 0);
    assert_int_equal(apply(f, "opened", "D", T0 + 8 * DAY + 2 * MIN, NULL), 0);
    assert_int_equal(apply(f, "rated", "D", T0 + 8 * DAY + 3 * MIN, "score=2"), 0);
    assert_int_equal(ticket_score(core_find(f->core, "D", 1)), 2);
    assert_int_equal(apply(f, "closed", "D", T0 + 8 * DAY + 4 * MIN, NULL), 0);
    assert_int_equal(core_closed_count(f->core), 1);
    int before = f->nfacts;
    assert_int_equal(apply(f, "rated", "D", T0 + 8 * DAY + 5 * MIN, "score=3"), 0);
    assert_int_equal(f->facts[before].delta, -1);
    assert_int_equal(f->facts[before].score, 2);
    /* Deleted tickets leave no record. */
    assert_int_equal(apply(f, "opened", "E", T0 + 9 * DAY, NULL), 0);
    assert_int_equal(apply(f, "deleted", "E", T0 + 9 * DAY + 1, NULL), 0);
    assert_int_equal(apply_to(f, f->core, "rated", "E", T0 + 9 * DAY + 2, "score=5", &why), -1);
    fx_free(f);
}

static void
test_forget_resolved_after(void **state)
{
    (void)state;
    static const char *y =
        "tiers: { t: { response: 1h, resolution: 4h } }\n"
        "state: { forget_resolved_after: 2d }\n";
    struct fx *f = fx_new(y);
    assert_int_equal(apply(f, "opened", "A", T0, NULL), 0);
    assert_int_equal(apply(f, "opened", "B", T0, NULL), 0);
    assert_int_equal(apply(f, "resolved", "A", T0 + HOUR, NULL), 0);
    assert_int_equal(apply(f, "resolved", "B", T0 + HOUR, NULL), 0);
    /* Reopened before its time, B is kept; resolved again, its timer counts
     * from the new resolution. */
    assert_int_equal(apply(f, "reopened", "B", T0 + DAY, NULL), 0);
    assert_int_equal(apply(f, "resolved", "B", T0 + DAY + HOUR, NULL), 0);
    advance(f, T0 + HOUR + 2 * DAY);
    assert_non_null(core_find(f->core, "A", 1)); /* not yet past */
    advance(f, T0 + HOUR + 2 * DAY + 1);
    assert_null(core_find(f->core, "A", 1));
    assert_non_null(core_find(f->core, "B", 1));
    assert_int_equal(core_forgotten(f->core), 1);
    /* The timer survives a checkpoint. */
    struct wire_buf buf;
    encode(f->core, &buf);
    core_free(f->core);
    f->core = restore(f, &buf);
    wire_free(&buf);
    assert_int_equal(core_heap_size(f->core), 1);
    advance(f, T0 + DAY + HOUR + 2 * DAY + 1);
    assert_null(core_find(f->core, "B", 1));
    assert_int_equal(core_ticket_count(f->core), 0);
    assert_int_equal(core_heap_size(f->core), 0);
    /* An event after that finds no ticket. */
    const char *why;
    assert_int_equal(apply_to(f, f->core, "reopened", "B", T0 + 5 * DAY, NULL, &why), -1);
    assert_string_equal(why, "unknown ticket");
    /* A ticket resolved in the past (an import) goes as soon as it lands. */
    assert_int_equal(apply(f, "opened", "old", T0 - 10 * DAY, NULL), 0);
    assert_int_equal(apply(f, "resolved", "old", T0 - 9 * DAY, NULL), 0);
    assert_null(core_find(f->core, "old", 3));
    fx_free(f);
}

/* Reload: a longer period keeps a ticket the shorter one would forget;
 * 0s keeps it for good. */
static void
test_forget_follows_reload(void **state)
{
    (void)state;
    struct fx *f = fx_new("tiers: { t: { response: 1h } }\n"
                          "state: { forget_resolved_after: 1d }\n");
    assert_int_equal(apply(f, "opened", "A", T0, NULL), 0);
    assert_int_equal(apply(f, "resolved", "A", T0 + MIN, NULL), 0); /* no resolution clock */
    assert_int_equal(core_heap_size(f->core), 1);
    const char *y0 = "tiers: { t: { response: 1h } }\nstate: { forget_resolved_after: 0s }\n";
    struct config *c0 = cfg_load_string("t.yaml", y0, strlen(y0), stderr);
    assert_non_null(c0);
    core_set_config(f->core, c0);
    assert_int_equal(core_heap_size(f->core), 0);
    advance(f, T0 + 30 * DAY);
    assert_non_null(core_find(f->core, "A", 1));
    core_set_config(f->core, f->cfg);
    cfg_free(c0);
    assert_null(core_find(f->core, "A", 1)); /* decided at once: long past */
    fx_free(f);
}

static void
test_attribute_values_fold(void **state)
{
    (void)state;
    struct fx *f = fx_new("tiers: { t: { response: 1h } }\n"
                          "policies: [ { match: { queue: _other }, tier: t } ]\n"
                          "state: { max_attribute_values: 3 }\n");
    char id[16], extra[64];
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof(id), "T%d", i);
        snprintf(extra, sizeof(extra), "queue=q%d,agent=a%d", i, i % 2);
        assert_int_equal(apply(f, "opened", id, T0 + i, extra), 0);
    }
    /* q0..q2 kept; q3, q4 and q5 became _other; agent has two values. */
    const struct ticket *t = core_find(f->core, "T2", 2);
    assert_string_equal(core_ticket_attr(f->core, t, ATTR_QUEUE), "q2");
    for (int i = 3; i < 6; i++) {
        snprintf(id, sizeof(id), "T%d", i);
        t = core_find(f->core, id, 2);
        assert_string_equal(core_ticket_attr(f->core, t, ATTR_QUEUE), "_other");
    }
    assert_int_equal(core_attr_folded(f->core, ATTR_QUEUE), 3);
    assert_int_equal(core_attr_folded(f->core, ATTR_AGENT), 0);
    /* A known value is never folded; a freed place is taken again. */
    assert_int_equal(apply(f, "updated", "T5", T0 + 10, "queue=q1"), 0);
    assert_string_equal(core_ticket_attr(f->core, core_find(f->core, "T5", 2), ATTR_QUEUE),
                        "q1");
    assert_int_equal(apply(f, "updated", "T4", T0 + 11, "queue=new"), 0);
    assert_string_equal(core_ticket_attr(f->core, core_find(f->core, "T4", 2), ATTR_QUEUE),
                        "_other"); /* q0, q1, q2: full */
    assert_int_equal(apply(f, "deleted", "T0", T0 + 12, NULL), 0); /* q0 free */
    assert_int_equal(apply(f, "updated", "T4", T0 + 13, "queue=new"), 0);
    assert_string_equal(core_ticket_attr(f->core, core_find(f->core, "T4", 2), ATTR_QUEUE),
                        "new");
    assert_int_equal(core_attr_folded(f->core, ATTR_QUEUE), 4);
    /* A checkpoint brings every value back as it was, whatever order the
     * table writes them in, and folds nothing. */
    for (int round = 0; round < 20; round++) {
        struct wire_buf buf;
        encode(f->core, &buf);
        struct core *c = restore(f, &buf);
        wire_free(&buf);
        for (int i = 1; i < 6; i++) {
            snprintf(id, sizeof(id), "T%d", i);
            const struct ticket *a = core_find(f->core, id, 2), *b = core_find(c, id, 2);
            assert_non_null(b);
            assert_string_equal(core_ticket_attr(c, b, ATTR_QUEUE),
                                core_ticket_attr(f->core, a, ATTR_QUEUE));
        }
        assert_int_equal(core_attr_folded(c, ATTR_QUEUE), 0);
        core_free(c);
    }
    fx_free(f);
}

/* ---- cases a review found ------------------------------------------------- */

/* A cycle dropped by a tier change still used its number: the next one
 * has a new number (delivery ids and dedup keys name it). */
static void
test_next_reply_cycle_after_drop(void **state)
{
    (void)state;
    struct fx *f = fx_new(yaml);
    assert_int_equal(apply(f, "opened", "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply(f, "responded", "A", T0 + MIN, NULL), 0);
    assert_int_equal(apply(f, "commented", "A", T0 + 2 * MIN, NULL), 0);
    advance(f, T0 + 8 * MIN); /* cycle 0 breached */
    assert_int_equal(apply(f, "updated", "A", T0 + 9 * MIN, "priority=normal"), 0);
    assert_int_equal(apply(f, "updated", "A", T0 + 10 * MIN, "priority=urgent"), 0);
    assert_int_equal(apply(f, "commented", "A", T0 + 11 * MIN, NULL), 0);
    advance(f, T0 + 17 * MIN);
    const struct note *b = &f->notes[f->nnotes - 1];
    assert_int_equal(b->kind, NOTICE_BREACH);
    assert_int_equal(b->metric, METRIC_NEXT_REPLY);
    assert_int_equal(b->cycle, 1);
    assert_int_equal(b->deadline, T0 + 16 * MIN);
    fx_free(f);
}

/* A message stamped before the reply that answered it, arriving after
 * that reply, starts nothing (nor does it count against fcr); one stamped
 * in the same millisecond follows it. */
static void
test_late_message_already_answered(void **state)
{
    (void)state;
    struct fx *f = fx_new(yaml);
    assert_int_equal(apply(f, "opened", "A", T0, "priority=urgent"), 0);
    assert_int_equal(apply(f, "responded", "A", T0 + 5 * MIN, NULL), 0);
    f->wall = T0 + 6 * MIN; /* arrives now, stamped before the reply */
    assert_int_equal(apply(f, "commented", "A", T0 + 4 * MIN, NULL), 0);
    assert_null(ticket_clock(core_find(f->core, "A", 1), METRIC_NEXT_REPLY));
    assert_int_equal(apply(f, "resolved", "A", T0 + 7 * MIN, NULL), 0);
    assert_int_equal(f->facts[f->nfacts - 1].fact, KPI_FIRST_RESOLUTION);
    assert_true(f->facts[f->nfacts - 1].fcr);
    assert_int_equal(apply(f, "opened", "B", T0 + 8 * MIN, "priority=urgent"), 0);
    assert_int_equal(apply(f, "responded", "B", T0 + 9 * MIN, NULL), 0);
    assert_int_equal(apply(f, "commented", "B", T0 + 9 * MIN, NULL), 0);
    assert_non_null(ticket_clock(core_find(f->core, "B", 1), METRIC_NEXT_REPLY));
    fx_free(f);
}

/* Facts follow their ticket to another tier or queue: a replaced rating
 * is withdrawn where it is counted; a reopen lands where the first
 * resolution is counted. */
static void
test_facts_follow_the_ticket(void **state)
{
    (void)state;
    struct fx *f = fx_new(yaml);
    assert_int_equal(apply(f, "opened", "A", T0, "queue=qa"), 0); /* plain */
    assert_int_equal(apply(f, "rated", "A", T0 + MIN, "score=5"), 0);
    assert_int_equal(apply(f, "resolved", "A", T0 + 2 * MIN, NULL), 0);
    int n = f->nfacts;
    assert_int_equal(n, 2);
    assert_int_equal(apply(f, "updated", "A", T0 + 3 * MIN, "priority=urgent,queue=qb"), 0);
    /* First resolution moved, then the rating: -1 under plain/qa, +1 under fast/qb. */
    assert_int_equal(f->nfacts, n + 4);
    const struct fact *m = &f->facts[n];
    assert_int_equal(m[0].fact, KPI_FIRST_RESOLUTION);
    assert_int_equal(m[0].delta, -1);
    assert_int_equal(m[0].tier, 1);
    assert_string_equal(m[0].queue, "qa");
    assert_int_equal(m[0].at, T0 + 2 * MIN);
    assert_true(m[0].fcr);
    assert_int_equal(m[1].delta, 1);
    assert_int_equal(m[1].tier, 0);
    assert_string_equal(m[1].queue, "qb");
    assert_int_equal(m[2].fact, KPI_RATING);
    assert_int_equal(m[2].delta, -1);
    assert_int_equal(m[2].tier, 1);
    assert_string_equal(m[2].queue, "qa");
    assert_int_equal(m[2].at, T0 + MIN);
    assert_int_equal(m[3].delta, 1);
    assert_int_equal(m[3].tier, 0);
    /* A later rating replaces it where it now is; a reopen goes there too. */
    assert_int_equal(apply(f, "rated", "A", T0 + 4 * MIN, "score=1"), 0);
    assert_int_equal(f->facts[n + 4].delta, -1);
    assert_int_equal(f->facts[n + 4].tier, 0);
    assert_string_equal(f->facts[n + 4].queue, "qb");
    assert_int_equal(apply(f, "reopened", "A", T0 + 5 * MIN, NULL), 0);
    const struct fact *r = &f->facts[f->nfacts - 1];
    assert_int_equal(r->fact, KPI_REOPEN);
    assert_int_equal(r->tier, 0);
    assert_string_equal(r->queue, "qb");
    assert_int_equal(r->at, T0 + 2 * MIN);
    /* After the reopen the first resolution stays; the rating still moves. */
    n = f->nfacts;
    assert_int_equal(apply(f, "updated", "A", T0 + 6 * MIN, "queue=qc"), 0);
    assert_int_equal(f->nfacts, n + 2);
    assert_int_equal(f->facts[n].fact, KPI_RATING);
    /* An event that changes nothing moves nothing. */
    assert_int_equal(apply(f, "updated", "A", T0 + 7 * MIN, "queue=qc"), 0);
    assert_int_equal(f->nfacts, n + 2);
    fx_free(f);
}

/* A forged closed record kept far beyond 7 days is refused (it would hold
 * back every record after it); a deleted id loses an older record. */
static void
test_closed_records_bounded(void **state)
{
    (void)state;
    struct fx *f = fx_new(yaml);
    assert_int_equal(apply(f, "opened", "A", T0, NULL), 0);
    assert_int_equal(apply(f, "closed", "A", T0 + MIN, NULL), 0);
    struct closed_image img = { .id = "Z", .id_len = 1, .tier = "plain", .tier_len = 5,
                                .forget_ms = core_now(f->core) + CORE_CLOSED_KEEP_MS + 1 };
    struct core *c = core_for(f);
    core_restore_now(c, core_now(f->core));
    assert_int_equal(core_restore_closed(c, &img), -1);
    img.forget_ms -= 1;
    assert_int_equal(core_restore_closed(c, &img), 0);
    assert_int_equal(core_closed_count(c), 1);
    img.id = "Y";
    img.forget_ms -= 10; /* out of order */
    assert_int_equal(core_restore_closed(c, &img), -1);
    core_free(c);
    /* A new incarnation of A, deleted: the old record goes with it. */
    assert_int_equal(apply(f, "opened", "A", T0 + 2 * MIN, NULL), 0);
    assert_int_equal(apply(f, "deleted", "A", T0 + 3 * MIN, NULL), 0);
    assert_int_equal(core_closed_count(f->core), 0);
    const char *why;
    assert_int_equal(apply_to(f, f->core, "rated", "A", T0 + 4 * MIN, "score=5", &why), -1);
    fx_free(f);
}

/* A version 2 checkpoint (written before the KPIs): a resolved ticket
 * counts as resolved once and reopened, so a reopen counts nothing; a
 * response clock that the resolution stopped was not answered. */
static void
put_v2_clock(struct wire_buf *b, int64_t started, int64_t resumed, int64_t deadline,
             uint8_t state, uint8_t outcome)
{
    wire_put_i64(b, started);
    wire_put_i64(b, resumed);
    wire_put_i64(b, resumed - started);
    wire_put_i64(b, deadline);
    wire_put_u16(b, 0);
    wire_put_u8(b, state);
    wire_put_u8(b, outcome);
    wire_put_u8(b, 0);
    wire_put_u32(b, 0);
}

static void
test_version2_checkpoint_upgrade(void **state)
{
    (void)state;
    struct fx *f = fx_new(yaml);
    struct wire_buf b;
    wire_init(&b);
    wire_put(&b, "SLAWST01", 8);
    wire_put_u32(&b, 2);
    wire_put_i64(&b, T0 + DAY);  /* saved */
    wire_put_i64(&b, T0 + DAY);  /* core now */
    wire_put_u64(&b, 0);
    wire_put_u64(&b, 0);
    wire_put_u64(&b, 0);
    wire_put_u64(&b, 0);
    wire_put_u64(&b, 1);
    wire_put_str(&b, "R", 1);
    for (int a = 0; a < ATTR_COUNT; a++)
        wire_put_str(&b, NULL, 0);
    wire_put_str(&b, "plain", 5);
    wire_put_str(&b, NULL, 0);
    wire_put_u8(&b, 1); /* resolved */
    /* Both clocks stopped by the resolution at T0 + 10 min. */
    put_v2_clock(&b, T0, T0 + 10 * MIN, T0 + HOUR, CLOCK_STOPPED, OUTCOME_MET);
    put_v2_clock(&b, T0, T0 + 10 * MIN, T0 + 4 * HOUR, CLOCK_STOPPED, OUTCOME_MET);
    wire_put_u64(&b, 0); /* (read as the section count: u32 0 and 4 more bytes) */
    b.len -= 4;
    wire_put_u32(&b, state_crc32(b.data, b.len));
    assert_false(b.oom);
    struct core *c = core_for(f);
    struct state_meta meta;
    char err[256] = "";
    if (state_decode(c, b.data, b.len, &meta, NULL, NULL, err, sizeof(err)) != 1)
        fail_msg("%s", err);
    wire_free(&b);
    const struct ticket *t = core_find(c, "R", 1);
    assert_non_null(t);
    assert_true(t->flags & TF_FIRST_DONE);
    assert_true(t->flags & TF_REOPENED);
    assert_false(t->flags & TF_ANSWERED);
    f->wall = T0 + DAY + MIN;
    assert_int_equal(apply_to(f, c, "reopened", "R", T0 + DAY + MIN, NULL, NULL), 0);
    assert_int_equal(apply_to(f, c, "commented", "R", T0 + DAY + 2 * MIN, NULL, NULL), 0);
    assert_int_equal(apply_to(f, c, "resolved", "R", T0 + DAY + 3 * MIN, NULL, NULL), 0);
    assert_int_equal(f->nfacts, 0); /* no reopen, no second first resolution */
    core_free(c);
    fx_free(f);
}

/* ---- the KPI facts against a model ---------------------------------------- */

struct mrec {                /* a closed ticket's record */
    bool live;
    int64_t until;
    unsigned score;
    uint32_t rated_s;
    int tier;
    char queue[8];
};

struct mticket {
    bool exists, resolved, answered, replies2, commented, first_done, reopened;
    int64_t last_res, last_reply;
    unsigned score;
    uint32_t rated_s;
    char queue[8];
    char prio[8];               /* the priority attribute ("" absent) */
    bool urgent;                /* priority=urgent: tier fast (0), else plain (1) */
    int tier;
    struct mrec rec;
};

#define NT 24

struct model {
    struct mticket t[NT];
    struct fact *want;
    int nwant;
};

static void
want(struct model *m, enum kpi_fact fact, int tier, const char *queue, int64_t at, int delta,
     bool fcr, unsigned score)
{
    assert_true(m->nwant < MAXREC);
    struct fact *r = &m->want[m->nwant++];
    memset(r, 0, sizeof(*r));
    r->fact = fact;
    r->tier = tier;
    snprintf(r->queue, sizeof(r->queue), "%s", queue);
    r->at = at;
    r->delta = delta;
    r->fcr = fcr;
    r->score = score;
}

static void
rate_model(struct model *m, int tier, const char *queue, unsigned *old, uint32_t *rated_s,
           unsigned score, int64_t ts)
{
    if (*old)
        want(m, KPI_RATING, tier, queue, (int64_t)*rated_s * 1000, -1, false, *old);
    *old = score;
    *rated_s = (uint32_t)(ts / 1000);
    want(m, KPI_RATING, tier, queue, (int64_t)*rated_s * 1000, 1, false, score);
}

/* SPEC section 3, "Support KPIs", told as facts, with facts following
 * their ticket (core.h). ts == arrival here. `prio` is "" (absent),
 * "urgent" or "normal"; `queue` "" (absent) or a value. The tier follows
 * the priority on `opened` and `updated` only (SPEC: `updated` re-chooses
 * the tier). */
static void
model_apply(struct model *m, int i, const char *type, int64_t ts, unsigned score,
            const char *queue, const char *prio)
{
    struct mticket *t = &m->t[i];
    if (t->rec.live && ts > t->rec.until)
        t->rec.live = false;
    if (strcmp(type, "opened") == 0) {
        if (!t->exists) {
            struct mrec rec = t->rec;
            memset(t, 0, sizeof(*t));
            t->rec = rec;
            t->exists = true;
            snprintf(t->queue, sizeof(t->queue), "%s", queue);
            snprintf(t->prio, sizeof(t->prio), "%s", prio);
            t->urgent = strcmp(prio, "urgent") == 0;
            t->tier = t->urgent ? 0 : 1;
        }
        return;
    }
    if (!t->exists) {
        if (strcmp(type, "rated") == 0 && t->rec.live)
            rate_model(m, t->rec.tier, t->rec.queue, &t->rec.score, &t->rec.rated_s, score, ts);
        return; /* anything else for an unknown ticket is rejected */
    }
    bool resolve = strcmp(type, "resolved") == 0 || strcmp(type, "closed") == 0;
    if (strcmp(type, "responded") == 0) {
        if (!t->answered)
            t->answered = true;
        else if (!t->first_done)
            t->replies2 = true;
        t->last_reply = ts;
    } else if (strcmp(type, "commented") == 0) {
        if (!t->resolved && t->answered && ts >= t->last_reply && !t->first_done)
            t->commented = true;
    } else if (strcmp(type, "reopened") == 0) {
        if (t->resolved) {
            if (t->first_done && !t->reopened) {
                t->reopened = true;
                want(m, KPI_REOPEN, t->tier, t->queue, t->last_res, 1, false, 0);
            }
            t->resolved = false;
        }
    } else if (strcmp(type, "rated") == 0) {
        rate_model(m, t->tier, t->queue, &t->score, &t->rated_s, score, ts);
    }
    if (resolve && !t->resolved) {
        t->resolved = true;
        t->last_res = ts;
        t->last_reply = ts; /* slot 0 stops at the resolution too */
        if (!t->first_done) {
            t->first_done = true;
            want(m, KPI_FIRST_RESOLUTION, t->tier, t->queue, ts, 1,
                 !t->replies2 && !t->commented, 0);
        }
    }
    if (strcmp(type, "closed") == 0) {
        t->rec = (struct mrec){ true, ts + CORE_CLOSED_KEEP_MS, t->score, t->rated_s, t->tier,
                                "" };
        memcpy(t->rec.queue, t->queue, sizeof(t->rec.queue));
        t->exists = false;
        return;
    }
    if (strcmp(type, "deleted") == 0) {
        t->exists = false;
        t->rec.live = false;
        return;
    }
    /* Attributes apply after the event; the tier moves on `updated`. */
    int old_tier = t->tier;
    char old_queue[8], old_prio[8];
    memcpy(old_queue, t->queue, sizeof(old_queue));
    memcpy(old_prio, t->prio, sizeof(old_prio));
    if (queue[0])
        snprintf(t->queue, sizeof(t->queue), "%s", queue);
    if (prio[0]) {
        snprintf(t->prio, sizeof(t->prio), "%s", prio);
        t->urgent = strcmp(prio, "urgent") == 0;
    }
    if (strcmp(type, "updated") == 0)
        t->tier = t->urgent ? 0 : 1;
    bool carries = queue[0] || prio[0] || strcmp(type, "updated") == 0;
    if (carries && (old_tier != t->tier || strcmp(old_queue, t->queue) != 0 ||
                    strcmp(old_prio, t->prio) != 0)) {
        if (t->first_done && !t->reopened) {
            bool fcr = !t->replies2 && !t->commented;
            want(m, KPI_FIRST_RESOLUTION, old_tier, old_queue, t->last_res, -1, fcr, 0);
            want(m, KPI_FIRST_RESOLUTION, t->tier, t->queue, t->last_res, 1, fcr, 0);
        }
        if (t->score) {
            want(m, KPI_RATING, old_tier, old_queue, (int64_t)t->rated_s * 1000, -1, false,
                 t->score);
            want(m, KPI_RATING, t->tier, t->queue, (int64_t)t->rated_s * 1000, 1, false,
                 t->score);
        }
    }
}

static void
check_facts(const struct fact *got, int ngot, const struct fact *exp, int nexp)
{
    for (int i = 0; i < ngot && i < nexp; i++) {
        const struct fact *a = &got[i], *b = &exp[i];
        if (a->fact != b->fact || a->tier != b->tier || strcmp(a->queue, b->queue) != 0 ||
            a->at != b->at || a->delta != b->delta || a->fcr != b->fcr ||
            a->score != b->score)
            fail_msg("fact %d: got %d tier %d q=%s at %lld d=%d fcr=%d s=%u; want %d tier %d "
                     "q=%s at %lld d=%d fcr=%d s=%u",
                     i, a->fact, a->tier, a->queue, (long long)a->at, a->delta, a->fcr,
                     a->score, b->fact, b->tier, b->queue, (long long)b->at, b->delta, b->fcr,
                     b->score);
    }
    assert_int_equal(ngot, nexp);
}

/* Random histories over 24 tickets: the facts the core tells equal the
 * model's, exactly and in order; a checkpoint written half-way and
 * restored into a second core tells the same facts from there on. */
static void
test_kpi_facts_random(void **state)
{
    (void)state;
    static const char *types[] = { "opened", "responded", "commented", "resolved", "reopened",
                                   "rated", "closed", "deleted", "updated" };
    static const unsigned weights[] = { 4, 5, 4, 3, 2, 3, 1, 1, 1 };
    static const char *scores[] = { "1", "2", "3", "4", "5", "good", "bad" };
    for (unsigned seed = 1; seed <= 40; seed++) {
        srandom(seed);
        struct fx *f = fx_new(yaml);
        struct model *m = calloc(1, sizeof(*m));
        m->want = calloc(MAXREC, sizeof(*m->want));
        int64_t ts = T0;
        struct core *copy = NULL;
        struct fx *g = NULL;
        int facts_before = 0;
        for (int step = 0; step < 600; step++) {
            unsigned total = 0, r;
            for (size_t k = 0; k < 9; k++)
                total += weights[k];
            r = (unsigned)random() % total;
            size_t k = 0;
            while (r >= weights[k])
                r -= weights[k++];
            int i = (int)(random() % NT);
            /* Mostly minutes apart, sometimes days (ratings of closed
             * tickets near and past their 7 days). */
            ts += random() % 8 == 0 ? (int64_t)(random() % (4 * DAY)) : (random() % (5 * MIN)) + 1;
            char id[8], extra[80] = "";
            snprintf(id, sizeof(id), "t%d", i);
            char queue[8] = "";
            if (random() % 3 == 0)
                snprintf(queue, sizeof(queue), "q%ld", random() % 3);
            const char *prio = "";
            if (random() % 4 == 0)
                prio = random() % 2 ? "urgent" : "normal";
            unsigned sc = 0;
            size_t si = (size_t)(random() % 7);
            if (strcmp(types[k], "rated") == 0) {
                sc = si < 5 ? (unsigned)si + 1 : si == 5 ? SCORE_GOOD : SCORE_BAD;
                snprintf(extra, sizeof(extra), "score=%s", scores[si]);
            }
            if (queue[0])
                snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "%squeue=%s",
                         extra[0] ? "," : "", queue);
            if (prio[0])
                snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "%spriority=%s",
                         extra[0] ? "," : "", prio);
            (void)apply(f, types[k], id, ts, extra);
            if (copy)
                (void)apply_to(g, copy, types[k], id, ts, extra, NULL);
            model_apply(m, i, types[k], ts, sc, queue, prio);
            if (step == 300) {
                /* The restart: the copy is told the rest of the history. */
                struct wire_buf buf;
                encode(f->core, &buf);
                g = calloc(1, sizeof(*g));
                g->facts = calloc(MAXREC, sizeof(*g->facts));
                g->cfg = f->cfg;
                g->wall = f->wall;
                copy = restore(g, &buf);
                wire_free(&buf);
                g->nfacts = 0;
                facts_before = f->nfacts;
            }
        }
        check_facts(f->facts, f->nfacts, m->want, m->nwant);
        check_facts(g->facts, g->nfacts, f->facts + facts_before, f->nfacts - facts_before);
        assert_true(f->nfacts > 50);
        core_free(copy);
        free(g->facts);
        free(g);
        free(m->want);
        free(m);
        fx_free(f);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rated_needs_a_valid_score),
        cmocka_unit_test(test_next_reply_cycles),
        cmocka_unit_test(test_next_reply_tiers_and_pause),
        cmocka_unit_test(test_next_reply_calendar),
        cmocka_unit_test(test_checkpoint_keeps_v2_fields),
        cmocka_unit_test(test_closed_rating_window),
        cmocka_unit_test(test_forget_resolved_after),
        cmocka_unit_test(test_forget_follows_reload),
        cmocka_unit_test(test_attribute_values_fold),
        cmocka_unit_test(test_next_reply_cycle_after_drop),
        cmocka_unit_test(test_late_message_already_answered),
        cmocka_unit_test(test_facts_follow_the_ticket),
        cmocka_unit_test(test_closed_records_bounded),
        cmocka_unit_test(test_version2_checkpoint_upgrade),
        cmocka_unit_test(test_kpi_facts_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
