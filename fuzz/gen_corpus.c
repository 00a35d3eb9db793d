/*
 * gen_corpus.c - writes the binary seeds of the fuzz corpora with the
 * daemon's own encoders, so that they are real inputs and follow any
 * change of format: checkpoints (state_encode, with a compliance section
 * from cmp_encode and a writes section of RESP commands) into
 * DIR/state/gen-*, and outbox records (hook_note_encode) of every kind
 * into DIR/hook/gen-*.
 *
 *   make fuzz-corpus      (runs build/fuzz/gen_corpus fuzz/corpus)
 *
 * The events are fixed, so the output is the same on every run (the wall
 * clock is injected); only the checkpoints' ticket order follows the hash
 * table's seed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "slawatch/compliance.h"
#include "slawatch/core.h"
#include "slawatch/hook_format.h"
#include "slawatch/objective.h"
#include "slawatch/state.h"

#define MIN 60000LL
#define HOUR (60 * MIN)

int main(int argc, char **argv);

static const char *out_dir;

static void
put_file(const char *sub, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/gen-%s", out_dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static int64_t wall_ms = FUZZ_WALL_MS;

static int64_t
wall(void *arg)
{
    (void)arg;
    return wall_ms;
}

static void
on_outcome(void *arg, const struct sla_outcome *o)
{
    struct compliance *cmp = arg;
    if (o->decided)
        (void)cmp_record(cmp, o->tier_index, o->metric,
                         o->outcome == OUTCOME_MET, o->decided_ms,
                         (const char *const[ATTR_COUNT]){ "urgent", NULL,
                                                          "billing" });
    if (o->elapsed_ms >= 0 && (!o->decided || o->outcome == OUTCOME_MET))
        (void)cmp_record_elapsed(cmp, o->tier_index, o->metric, o->decided_ms,
                                 o->elapsed_ms);
}

static void
on_kpi(void *arg, const struct sla_kpi *k)
{
    (void)cmp_record_kpi(arg, k);
}

static uint8_t ev_score;

static void
ev(struct core *core, enum ev_type type, const char *ticket, int64_t ts,
   const char *priority, const char *channel)
{
    struct sla_event e;
    const char *reason;
    memset(&e, 0, sizeof(e));
    e.type = type;
    e.ticket = ticket;
    e.ticket_len = strlen(ticket);
    e.ts_ms = ts;
    e.score = ev_score;
    if (priority) {
        e.attr[ATTR_PRIORITY] = priority;
        e.attr_len[ATTR_PRIORITY] = strlen(priority);
    }
    if (channel) {
        e.attr[ATTR_CHANNEL] = channel;
        e.attr_len[ATTR_CHANNEL] = strlen(channel);
    }
    if (core_apply(core, &e, &reason) < 0) {
        fprintf(stderr, "gen_corpus: %s %s: %s\n", event_type_name(type), ticket,
                reason);
        exit(1);
    }
}

/* One checkpoint of `core`, optionally with the two sections. */
static void
checkpoint(struct core *core, struct compliance *cmp, bool sections,
           const char *name)
{
    static const char hset[] =
        "*4\r\n$4\r\nHSET\r\n$10\r\nsla:outbox\r\n$2\r\nid\r\n$3\r\nrec\r\n";
    static const char xadd[] = "*5\r\n$4\r\nXADD\r\n$12\r\nsla:breaches\r\n"
                               "$1\r\n*\r\n$6\r\nticket\r\n$4\r\nT-42\r\n";
    struct wire_buf b, cb, wb;
    struct state_meta meta = { .saved_ms = wall_ms,
                               .core_now_ms = core_now(core),
                               .last_ms = (uint64_t)core_now(core),
                               .last_seq = 3,
                               .events_total = 42,
                               .rejected_total = 2 };
    struct state_section sec[2];

    wire_init(&b);
    wire_init(&cb);
    wire_init(&wb);
    const char *const hset_argv[] = { "HSET", "sla:outbox", "id", "record" };
    const char *const xadd_argv[] = { "XADD", "sla:breaches", "*", "ticket", "T-42" };
    const size_t hset_lens[] = { 4, 10, 2, 6 }, xadd_lens[] = { 4, 12, 1, 6, 4 };
    state_write_put(&wb, 4, hset_argv, hset_lens);
    state_write_put(&wb, 5, xadd_argv, xadd_lens);
    (void)hset;
    (void)xadd;
    if (cmp_encode(cmp, &cb) < 0)
        exit(1);
    sec[0] = (struct state_section){ STATE_SECTION_WRITES, wb.data, wb.len };
    sec[1] = (struct state_section){ STATE_SECTION_COMPLIANCE, cb.data, cb.len };
    if (state_encode(core, &meta, sec, sections ? 2 : 0, &b) < 0)
        exit(1);
    put_file("state", name, b.data, b.len);
    wire_free(&b);
    wire_free(&cb);
    wire_free(&wb);
}

static void
gen_state(void)
{
    const struct config *cfg = fuzz_config_a();
    struct compliance *cmp = cmp_new(cfg, FUZZ_WALL_MS - 24 * HOUR);
    struct core_sink sink = { .outcome = on_outcome, .kpi = on_kpi, .arg = cmp };
    struct core *core = cmp ? core_new(cfg, wall, NULL, &sink) : NULL;
    int64_t t = FUZZ_WALL_MS - 8 * HOUR;

    if (core == NULL)
        exit(1);
    checkpoint(core, cmp, false, "empty");
    ev(core, EVT_OPENED, "T-1", t, "urgent", NULL);          /* fast */
    checkpoint(core, cmp, false, "one-running");
    ev(core, EVT_OPENED, "T-2", t + MIN, NULL, "phone");     /* office */
    ev(core, EVT_OPENED, "T-3", t + 2 * MIN, "normal", NULL); /* slow */
    ev(core, EVT_OPENED, "T-4", t + 3 * MIN, "low", "email"); /* low */
    ev(core, EVT_PAUSED, "T-1", t + 4 * MIN, NULL, NULL);
    ev(core, EVT_RESPONDED, "T-4", t + 5 * MIN, NULL, NULL);
    checkpoint(core, cmp, true, "paused-and-stopped");
    ev(core, EVT_RESUMED, "T-1", t + HOUR, NULL, NULL);
    ev(core, EVT_OPENED, "T-5", t + HOUR, "p1", NULL);
    core_advance(core, t + 3 * HOUR); /* warnings and breaches fire */
    ev(core, EVT_RESOLVED, "T-5", t + 3 * HOUR, NULL, NULL);
    ev(core, EVT_REOPENED, "T-5", t + 4 * HOUR, NULL, NULL);
    checkpoint(core, cmp, true, "breached-and-reopened");
    ev(core, EVT_UPDATED, "T-3", t + 5 * HOUR, "urgent", NULL);
    ev(core, EVT_CLOSED, "T-2", t + 6 * HOUR, NULL, NULL);
    core_advance(core, FUZZ_WALL_MS);
    checkpoint(core, cmp, true, "after-update");
    /* Version 3: a next_reply cycle (T-4 was answered; low has next_reply),
     * ratings, and a closed ticket's record. */
    ev(core, EVT_COMMENTED, "T-4", FUZZ_WALL_MS, NULL, NULL);
    ev(core, EVT_OPENED, "T-6", FUZZ_WALL_MS, "urgent", NULL);
    struct sla_event r;
    const char *why;
    memset(&r, 0, sizeof(r));
    r.type = EVT_RATED;
    r.ticket = "T-6";
    r.ticket_len = 3;
    r.ts_ms = r.arrival_ms = FUZZ_WALL_MS;
    r.score = 4;
    if (core_apply(core, &r, &why) < 0)
        exit(1);
    ev(core, EVT_CLOSED, "T-6", FUZZ_WALL_MS, NULL, NULL);
    r.ticket = "T-3";
    r.score = SCORE_BAD;
    if (core_apply(core, &r, &why) < 0)
        exit(1);
    checkpoint(core, cmp, true, "next-reply-and-closed");
    /* KPI facts: first resolutions, a reopen, ratings and a re-rating. */
    ev(core, EVT_RESOLVED, "T-4", FUZZ_WALL_MS, NULL, NULL);
    ev(core, EVT_RESOLVED, "T-5", FUZZ_WALL_MS, NULL, NULL);
    ev_score = 4;
    ev(core, EVT_RATED, "T-4", FUZZ_WALL_MS, NULL, NULL);
    ev_score = SCORE_BAD;
    ev(core, EVT_RATED, "T-5", FUZZ_WALL_MS, NULL, NULL);
    ev_score = 2;
    ev(core, EVT_RATED, "T-4", FUZZ_WALL_MS, NULL, NULL);
    ev_score = SCORE_NONE;
    ev(core, EVT_REOPENED, "T-4", FUZZ_WALL_MS, NULL, NULL);
    checkpoint(core, cmp, true, "kpis");
    core_free(core);
    cmp_free(cmp);
}

static void
note(struct hook_note *n, enum hook_kind kind, bool objective)
{
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    strcpy(n->webhook, "oncall");
    strcpy(n->escalation, kind == HOOK_KIND_RESOLVE ? "" : "page-oncall");
    strcpy(n->tier, "fast");
    n->metric = METRIC_RESPONSE;
    n->at_ms = FUZZ_WALL_MS + 4;
    n->created_ms = FUZZ_WALL_MS + 4;
    n->due_ms = FUZZ_WALL_MS + 1004;
    n->attempts = 1;
    n->flags = HOOK_F_COND;
    if (objective) {
        n->objective = true;
        strcpy(n->tier, "all");
        strcpy(n->window, "24h");
        n->episode = 3;
        n->value_micro = 750000;
        n->threshold_micro = 900000;
        n->met = 3;
        n->breached = 1;
    } else {
        strcpy(n->ticket, "T-1042");
        strcpy(n->attr[ATTR_PRIORITY], "urgent");
        strcpy(n->attr[ATTR_CHANNEL], "e-mail <&>");
        strcpy(n->attr[ATTR_CUSTOMER], "Zürich");
        n->opened_ms = FUZZ_WALL_MS - HOUR;
        n->deadline_ms = FUZZ_WALL_MS;
        n->late_ms = 4;
        n->cycle = 1;
        if (kind == HOOK_KIND_WARNING)
            n->percent_bp = 8750;
    }
    if (hook_delivery_id(n) < 0)
        exit(1);
}

static void
put_note(const struct hook_note *n, const char *name)
{
    char *rec = hook_note_encode(n);
    if (rec == NULL)
        exit(1);
    put_file("hook", name, rec, strlen(rec));
    free(rec);
}

static void
gen_hook(void)
{
    struct hook_note n;
    note(&n, HOOK_KIND_WARNING, false);
    put_note(&n, "warning.json");
    note(&n, HOOK_KIND_BREACH, false);
    n.metric = METRIC_RESOLUTION;
    put_note(&n, "breach.json");
    note(&n, HOOK_KIND_RECOVERED, false);
    n.flags = HOOK_F_DELIVERED | HOOK_F_RESOLVING;
    n.ends_ms = FUZZ_WALL_MS + 60000;
    put_note(&n, "recovered-resolving.json");
    note(&n, HOOK_KIND_RESOLVE, false);
    put_note(&n, "resolve.json");
    note(&n, HOOK_KIND_OBJECTIVE, true);
    put_note(&n, "objective.json");
    note(&n, HOOK_KIND_RECOVERED, true);
    n.flags |= HOOK_F_RESOLVING;
    put_note(&n, "objective-recovered.json");
    note(&n, HOOK_KIND_RESOLVE, true);
    put_note(&n, "objective-resolve.json");
    note(&n, HOOK_KIND_OBJECTIVE, true);
    strcpy(n.name, "answered-in-24h");
    if (hook_delivery_id(&n) < 0)
        exit(1);
    put_note(&n, "named-objective.json");
    note(&n, HOOK_KIND_RECOVERED, true);
    strcpy(n.name, "reopens");
    n.is_kpi = true;
    n.kpi = CMP_KPI_REOPEN_RATE;
    n.max = true;
    n.value_micro = 40000;
    n.threshold_micro = 50000;
    n.met = n.breached = 0;
    if (hook_delivery_id(&n) < 0)
        exit(1);
    put_note(&n, "named-objective-kpi.json");
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    gen_state();
    gen_hook();
    return 0;
}
