/*
 * fuzz_event.c - stream entries into the core, as io/ingest.c feeds them:
 * stream_id_parse, event_parse, core_apply under config A (harness.c), with
 * the outcomes recorded into compliance windows and the deadline changes
 * into at-risk counts, as out/report.c does. Reloads (config B) and
 * restarts (checkpoint, decode into a new core) happen in between.
 *
 * Input: text lines, one stream entry per line, its fields separated by
 * TAB, each "name=value" (split at the first '='). The field "id" is the
 * entry's ID ("<ms>-<seq>"); its ms part is the default ts, as in ingest.c,
 * and an entry without one gets the previous ms + 1000. Other lines:
 *   +N        the core's time moves N ms forward (core_advance)
 *   reload    the config switches between A and B (core_set_config)
 *   restart   checkpoint the core and go on with the decoded copy
 * The wall clock is FUZZ_WALL_MS, or the core's time once that is later.
 *
 * Checked at every restart and at the end: a checkpoint of whatever state
 * the events produced decodes (the daemon must be able to start from its
 * own checkpoint), with the same tickets, the same gauges and, for every
 * running clock that has not breached, the same deadline.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "slawatch/atrisk.h"
#include "slawatch/compliance.h"
#include "slawatch/core.h"
#include "slawatch/state.h"

#define MAX_FIELDS 32

struct run {
    const struct config *cfg;
    struct core *core;
    struct compliance *cmp;
    struct atrisk *risk;
    int64_t wall_ms;
};

static int64_t
wall(void *arg)
{
    return ((struct run *)arg)->wall_ms;
}

/* The report sink (out/report.c feed()). */
static void
on_outcome(void *arg, const struct sla_outcome *o)
{
    struct run *r = arg;
    const char *attrs[ATTR_COUNT];
    if (o->decided &&
        (o->outcome == OUTCOME_MET || o->outcome == OUTCOME_BREACHED)) {
        for (int a = 0; a < ATTR_COUNT; a++)
            attrs[a] = r->cfg->compliance.by[a]
                           ? core_ticket_attr(r->core, o->ticket, a)
                           : NULL;
        (void)cmp_record(r->cmp, o->tier_index, o->metric,
                         o->outcome == OUTCOME_MET, o->decided_ms, attrs);
    }
    if (o->metric == METRIC_RESPONSE && o->elapsed_ms >= 0 &&
        (!o->decided || o->outcome == OUTCOME_MET))
        (void)cmp_record_response_time(r->cmp, o->tier_index, o->decided_ms,
                                       o->elapsed_ms);
}

static void
on_notice(void *arg, const struct sla_notice *n)
{
    (void)arg;
    /* What every notice's reader relies on (notify.c, publish.c). */
    if (n->kind == NOTICE_BREACH && n->at_ms < n->deadline_ms)
        abort();
}

static void
on_deadline(void *arg, const struct sla_deadline_change *d)
{
    struct run *r = arg;
    atrisk_change(r->risk, d);
}

static struct core *
new_core(struct run *r)
{
    struct core_sink sink = { .notice = on_notice, .outcome = on_outcome, .deadline = on_deadline, .arg = r };
    struct core *core = core_new(r->cfg, wall, r, &sink);
    if (core == NULL)
        abort();
    return core;
}

/* The clocks of every ticket of one core against its copy in another. */
static void
check_ticket(void *arg, const struct ticket *t)
{
    const struct core *copy = arg;
    const struct ticket *u = core_find(copy, t->id, t->id_len);
    if (u == NULL || u->tier != t->tier || u->flags != t->flags ||
        u->rated_s != t->rated_s || ticket_opened_ms(u) != ticket_opened_ms(t))
        abort();
    for (int m = 0; m < CLOCK_SLOTS; m++) {
        const struct sla_clock *x = &t->clk[m], *y = &u->clk[m];
        if (x->metric != y->metric || x->state != y->state || x->outcome != y->outcome ||
            x->started_ms != y->started_ms || x->resumed_ms != y->resumed_ms ||
            x->consumed_ms != y->consumed_ms || x->cycle != y->cycle)
            abort();
        /* A paused clock's deadline is a projection, redone on resume. */
        if (x->state == CLOCK_RUNNING && x->outcome != OUTCOME_BREACHED &&
            x->deadline_ms != y->deadline_ms)
            abort();
    }
}

/* Checkpoints r->core, decodes it into a new core that replaces it (the
 * old one is freed) and checks that both agree. */
static void
restart(struct run *r)
{
    struct wire_buf b;
    struct state_meta meta = { .saved_ms = r->wall_ms,
                               .core_now_ms = core_now(r->core) };
    struct state_meta got;
    char err[256];

    wire_init(&b);
    if (state_encode(r->core, &meta, NULL, 0, &b) < 0)
        abort();
    /* The listeners start over with the new core, as after a restart. */
    atrisk_free(r->risk);
    r->risk = atrisk_new(core_now(r->core));
    if (r->risk == NULL)
        abort();
    struct core *old = r->core;
    r->core = new_core(r);
    long n = state_decode(r->core, b.data, b.len, &got, NULL, NULL, err,
                          sizeof(err));
    if (n < 0) {
        fprintf(stderr, "fuzz_event: own checkpoint refused: %s\n", err);
        abort();
    }
    if ((size_t)n != core_ticket_count(old) ||
        core_ticket_count(r->core) != core_ticket_count(old) ||
        core_heap_size(r->core) != core_heap_size(old) ||
        core_now(r->core) != core_now(old))
        abort();
    for (size_t t = 0; t < r->cfg->ntiers; t++) {
        if (core_open_count(r->core, (int)t) != core_open_count(old, (int)t))
            abort();
        for (int m = 0; m < METRIC_COUNT; m++)
            if (core_overdue_count(r->core, (int)t, m) !=
                core_overdue_count(old, (int)t, m))
                abort();
    }
    core_foreach(old, check_ticket, r->core);
    wire_free(&b);
    core_free(old);
}

/* "+N": N ms forward, saturating at the end of year 9999 (no event can be
 * later than that). */
static void
advance(struct run *r, const char *p, size_t len)
{
    int64_t n = 0;
    if (len == 0 || len > 18)
        return;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return;
        n = n * 10 + (p[i] - '0');
    }
    int64_t now = core_now(r->core);
    int64_t to = n > TS_MAX_MS - now ? TS_MAX_MS : now + n;
    core_advance(r->core, to);
    atrisk_advance(r->risk, to);
    cmp_advance(r->cmp, to);
}

static void
entry(struct run *r, const char *line, size_t len, uint64_t *id_ms)
{
    struct ev_field fields[MAX_FIELDS];
    size_t n = 0;
    struct fuzz_split s;
    const char *f;
    size_t flen;
    bool have_id = false;
    uint64_t ms = 0, seq = 0;

    fuzz_split_init(&s, line, len, '\t');
    while ((f = fuzz_split_next(&s, &flen)) != NULL && n < MAX_FIELDS) {
        const char *eq = memchr(f, '=', flen);
        size_t nlen = eq ? (size_t)(eq - f) : flen;
        if (nlen == 2 && memcmp(f, "id", 2) == 0 && eq) {
            if (stream_id_parse(eq + 1, flen - 3, &ms, &seq) < 0)
                return; /* ingest.c dead-letters an entry with a bad ID */
            have_id = true;
            continue;
        }
        fields[n].name = f;
        fields[n].name_len = nlen;
        fields[n].value = eq ? eq + 1 : f + flen;
        fields[n].value_len = eq ? flen - nlen - 1 : 0;
        n++;
    }
    *id_ms = have_id ? ms : *id_ms + 1000;

    struct sla_event ev;
    const char *reason = NULL;
    int64_t wall_now = r->wall_ms;
    /* ingest.c: the ID's ms part, cast, is the default ts. */
    if (event_parse(&ev, fields, n, (int64_t)*id_ms, wall_now,
                    r->cfg->events.max_clock_skew_ms, &reason) < 0) {
        if (reason == NULL)
            abort();
        return;
    }
    if (ev.ticket_len == 0 || ev.ticket_len > TICKET_ID_MAX)
        abort(); /* event_parse promised a valid ticket */
    if (core_apply(r->core, &ev, &reason) < 0 && reason == NULL)
        abort();
    int64_t now = core_now(r->core);
    if (now > r->wall_ms)
        r->wall_ms = now;
    atrisk_advance(r->risk, now);
    cmp_advance(r->cmp, now);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run r = { .cfg = fuzz_config_a(), .wall_ms = FUZZ_WALL_MS };
    uint64_t id_ms = (uint64_t)FUZZ_WALL_MS - 3600000;
    struct fuzz_split s;
    const char *line;
    size_t len;

    fuzz_config_b(); /* loaded before any ticket exists */
    r.core = new_core(&r);
    r.cmp = cmp_new(r.cfg, FUZZ_WALL_MS - 3600000);
    r.risk = atrisk_new(FUZZ_WALL_MS - 3600000);
    if (r.cmp == NULL || r.risk == NULL)
        abort();
    fuzz_split_init(&s, data, size, '\n');
    while ((line = fuzz_split_next(&s, &len)) != NULL) {
        if (len > 0 && line[0] == '+') {
            advance(&r, line + 1, len - 1);
        } else if (len == 6 && memcmp(line, "reload", 6) == 0) {
            r.cfg = r.cfg == fuzz_config_a() ? fuzz_config_b() : fuzz_config_a();
            core_set_config(r.core, r.cfg);
            if (cmp_set_config(r.cmp, r.cfg) < 0)
                abort();
        } else if (len == 7 && memcmp(line, "restart", 7) == 0) {
            restart(&r);
        } else if (len > 0) {
            entry(&r, line, len, &id_ms);
        }
    }
    restart(&r);
    core_free(r.core);
    cmp_free(r.cmp);
    atrisk_free(r.risk);
    return 0;
}
