/* Unit tests of notify.c, the escalation engine, without Redis, HTTP or an
 * event loop: a config from YAML, a real core with an injected wall clock
 * whose notices and outcomes go to notify_notice/notify_outcome, and a
 * recording fake in place of deliver.c (struct notify_delivery) that keeps
 * every submitted note, answers lookups from what it stored, cancelled and
 * delivered, and can play deliver.c's attempts (fake_run: due conditional
 * notes ask notify_still_open, delivered alertmanager alerts stay, the
 * rest are gone). Covers the stop table at the top of notify.c per format,
 * matching on `metric` and `tiers`, the `after` ladder, notify_still_open
 * per clock state, and `when: objective` notes. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "slawatch/compliance.h"
#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/hook_format.h"
#include "slawatch/notify.h"

#define T0 1795000000000LL /* an arbitrary instant */
#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

#define MAX_NOTES 256
#define MAX_IDS 64

/*
 * Webhooks: every format, json/slack/pagerduty with and without
 * send_resolved, and pd2 that only a waiting `after` level reaches.
 * Escalations: warnings of every tier and metric; response breaches of
 * `fast` only (page at once, boss after 30m); resolution breaches of every
 * tier; objectives of the response metric (every tier and `all`) and of
 * `fast` after 15m (any metric, never `all`).
 */
static const char *yaml_fmt =
    "tiers:\n"
    "  fast: { response: 10m, resolution: 1h, warn: [50%%, 80%%] }\n"
    "  slow: { response: 4h }\n"
    "policies:\n"
    "  - { match: { priority: urgent }, tier: fast }\n"
    "  - { tier: slow }\n"
    "webhooks:\n"
    "  j:   { url: \"http://127.0.0.1:9/j\", format: json }\n"
    "  jq:  { url: \"http://127.0.0.1:9/jq\", format: json, "
    "send_resolved: false }\n"
    "  sl:  { url: \"http://127.0.0.1:9/sl\", format: slack }\n"
    "  slq: { url: \"http://127.0.0.1:9/slq\", format: slack, "
    "send_resolved: false }\n"
    "  am:  { url: \"http://127.0.0.1:9/am\", format: alertmanager }\n"
    "  pd:  { url: \"http://127.0.0.1:9/pd\", format: pagerduty, "
    "routing_key_file: %s }\n"
    "  pdq: { url: \"http://127.0.0.1:9/pdq\", format: pagerduty, "
    "routing_key_file: %s, send_resolved: false }\n"
    "  pd2: { url: \"http://127.0.0.1:9/pd2\", format: pagerduty, "
    "routing_key_file: %s }\n"
    "escalations:\n"
    "  - { name: heads-up, when: warning, notify: [am, pd, sl] }\n"
    "  - name: page\n"
    "    when: breach\n"
    "    metric: response\n"
    "    tiers: [fast]\n"
    "    notify: [j, jq, sl, slq, am, pd, pdq]\n"
    "  - name: boss\n"
    "    when: breach\n"
    "    metric: response\n"
    "    tiers: [fast]\n"
    "    after: 30m\n"
    "    notify: [j, pd2]\n"
    "  - { name: late, when: breach, metric: resolution, notify: [j] }\n"
    "  - { name: slo, when: objective, metric: response, "
    "notify: [j, jq, am, pd, sl] }\n"
    "  - { name: slo-boss, when: objective, tiers: [fast], after: 15m, "
    "notify: [j, pd2] }\n"
    "compliance:\n"
    "  windows: [1h, 24h, 7d]\n";

/* One note the fake delivery was given, and where it has it now. */
struct sent {
    struct hook_note note;
    enum hook_state state;
    bool delivered; /* attempted and accepted (alertmanager: firing) */
    bool dropped;   /* its clock or violation was over when it came due */
    bool resolved;  /* alertmanager: sent again with endsAt, then gone */
    bool poked;
    bool dup; /* its id was stored already: recorded, not stored again */
};

struct fixture {
    char dir[64];
    char key[128];
    struct config *cfg;
    struct core *core;
    struct notify *nt;
    int64_t wall;

    struct sent sub[MAX_NOTES];
    int nsub;
    int mark; /* first submission of the step under test */
    int nlookup;
    char cancelled[MAX_IDS][HOOK_ID_LEN + 1];
    int ncancel;
    char poked[MAX_IDS][HOOK_ID_LEN + 1];
    int npoke;

    int nnotice[4]; /* per enum notice_kind */
    int noutcome;

    /* the objective state report.c would answer, per window index */
    bool obj_violated[CFG_MAX_WINDOWS];
    uint32_t obj_episode[CFG_MAX_WINDOWS];
    int obj_asked;
};

/* ---- the fake delivery ------------------------------------------------- */

static struct sent *
entry_of(struct fixture *f, const char *id)
{
    for (int i = f->nsub - 1; i >= 0; i--)
        if (!f->sub[i].dup && strcmp(f->sub[i].note.id, id) == 0 &&
            f->sub[i].state != HOOK_STATE_NONE)
            return &f->sub[i];
    return NULL;
}

/* Like deliver_submit: fills the id, stores the note once (a second
 * submission of a stored id is recorded, as a dup, but changes nothing);
 * a conditional note waits for its clock check, any other one is being
 * delivered. */
static int
fake_submit(void *arg, struct hook_note *n)
{
    struct fixture *f = arg;
    assert_int_equal(hook_delivery_id(n), 0);
    n->created_ms = f->wall;
    bool dup = entry_of(f, n->id) != NULL;
    assert_true(f->nsub < MAX_NOTES);
    struct sent *s = &f->sub[f->nsub++];
    memset(s, 0, sizeof(*s));
    s->note = *n;
    s->dup = dup;
    s->state = dup                      ? HOOK_STATE_NONE
               : (n->flags & HOOK_F_COND) ? HOOK_STATE_WAITING
                                          : HOOK_STATE_ACTIVE;
    return 0;
}

static enum hook_state
fake_lookup(void *arg, const char *id)
{
    struct fixture *f = arg;
    f->nlookup++;
    const struct sent *s = entry_of(f, id);
    return s ? s->state : HOOK_STATE_NONE;
}

static void
fake_cancel(void *arg, const char *id)
{
    struct fixture *f = arg;
    struct sent *s = entry_of(f, id);
    assert_true(f->ncancel < MAX_IDS);
    snprintf(f->cancelled[f->ncancel++], HOOK_ID_LEN + 1, "%s", id);
    /* deliver_cancel drops only what has not been attempted */
    assert_non_null(s);
    assert_int_equal(s->state, HOOK_STATE_WAITING);
    s->state = HOOK_STATE_NONE;
}

static void
fake_poke(void *arg, const char *id)
{
    struct fixture *f = arg;
    struct sent *s = entry_of(f, id);
    assert_true(f->npoke < MAX_IDS);
    snprintf(f->poked[f->npoke++], HOOK_ID_LEN + 1, "%s", id);
    assert_non_null(s);
    s->poked = true;
}

/* deliver.c's attempts at the fake's "now": a due conditional note asks
 * notify_still_open and is sent (an alertmanager alert stays, firing) or
 * dropped; everything else being delivered is delivered and gone; a poked
 * firing alert whose clock is over is sent with endsAt and gone. */
static void
fake_run(struct fixture *f)
{
    for (int i = 0; i < f->nsub; i++) {
        struct sent *s = &f->sub[i];
        bool am = strcmp(s->note.webhook, "am") == 0;
        if (s->state == HOOK_STATE_WAITING) {
            if (s->note.due_ms > f->wall)
                continue;
            if (notify_still_open(f->nt, &s->note)) {
                s->delivered = true;
                s->state = am ? HOOK_STATE_ACTIVE : HOOK_STATE_NONE;
            } else {
                s->dropped = true;
                s->state = HOOK_STATE_NONE;
            }
        } else if (s->state == HOOK_STATE_ACTIVE && !am) {
            s->delivered = true;
            s->state = HOOK_STATE_NONE;
        } else if (s->state == HOOK_STATE_ACTIVE && s->poked) {
            s->poked = false;
            if (!notify_still_open(f->nt, &s->note)) {
                s->resolved = true;
                s->state = HOOK_STATE_NONE;
            }
        }
    }
}

/* Starts a new step: submissions are counted from here, and the cancel,
 * poke and lookup logs start empty. */
static void
mark(struct fixture *f)
{
    f->mark = f->nsub;
    f->ncancel = 0;
    f->npoke = 0;
    f->nlookup = 0;
}

/* Submissions since mark(), duplicates included (NULL and -1 match
 * anything; "" as escalation is a PagerDuty resolve's). */
static int
count_new(const struct fixture *f, const char *ticket, int kind,
          const char *webhook, const char *esc)
{
    int n = 0;
    for (int i = f->mark; i < f->nsub; i++) {
        const struct hook_note *h = &f->sub[i].note;
        if ((ticket == NULL || strcmp(h->ticket, ticket) == 0) &&
            (kind < 0 || (int)h->kind == kind) &&
            (webhook == NULL || strcmp(h->webhook, webhook) == 0) &&
            (esc == NULL || strcmp(h->escalation, esc) == 0))
            n++;
    }
    return n;
}

/* The one submission since mark() that matches (bp: a warning's percentage,
 * 0 for any); fails the test when there is none or more than one. */
static struct sent *
only_new(struct fixture *f, const char *ticket, int kind, const char *webhook,
         const char *esc, uint32_t bp)
{
    struct sent *found = NULL;
    for (int i = f->mark; i < f->nsub; i++) {
        const struct hook_note *h = &f->sub[i].note;
        if ((ticket == NULL || strcmp(h->ticket, ticket) == 0) &&
            (kind < 0 || (int)h->kind == kind) &&
            (webhook == NULL || strcmp(h->webhook, webhook) == 0) &&
            (esc == NULL || strcmp(h->escalation, esc) == 0) &&
            (bp == 0 || h->percent_bp == bp)) {
            if (found)
                fail_msg("more than one %s note to %s", hook_kind_name(h->kind),
                         h->webhook);
            found = &f->sub[i];
        }
    }
    if (found == NULL)
        fail_msg("no %s note to %s (escalation %s)",
                 kind >= 0 ? hook_kind_name((enum hook_kind)kind) : "any",
                 webhook ? webhook : "any", esc ? esc : "any");
    return found;
}

static int
times_in(char (*ids)[HOOK_ID_LEN + 1], int n, const char *id)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += strcmp(ids[i], id) == 0;
    return k;
}

static bool
objective_state(void *arg, const char *tier, int metric, const char *window,
                uint32_t *episode)
{
    struct fixture *f = arg;
    (void)tier;
    (void)metric;
    f->obj_asked++;
    for (size_t w = 0; w < f->cfg->compliance.nwindows; w++)
        if (strcmp(f->cfg->compliance.windows[w].name, window) == 0) {
            *episode = f->obj_episode[w];
            return f->obj_violated[w];
        }
    fail_msg("unknown window %s", window);
    return false;
}

/* ---- the core ----------------------------------------------------------- */

static int64_t
fake_wall(void *arg)
{
    return ((struct fixture *)arg)->wall;
}

static void
on_notice(void *arg, const struct sla_notice *n)
{
    struct fixture *f = arg;
    f->nnotice[n->kind]++;
    notify_notice(f->nt, n);
}

static void
on_outcome(void *arg, const struct sla_outcome *o)
{
    struct fixture *f = arg;
    f->noutcome++;
    notify_outcome(f->nt, o);
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/slawatch-notify-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->key, sizeof(f->key), "%s/pd.key", f->dir);
    int fd = open(f->key, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "R0UT1NGKEY\n", 11), 11);
    assert_int_equal(close(fd), 0);

    char *yaml = NULL;
    assert_true(asprintf(&yaml, yaml_fmt, f->key, f->key, f->key) > 0);
    f->cfg = cfg_load_string("notify.yaml", yaml, strlen(yaml), stderr);
    free(yaml);
    assert_non_null(f->cfg);
    assert_int_equal(f->cfg->nwebhooks, 8);
    assert_int_equal(f->cfg->nescalations, 6);

    f->wall = T0;
    struct core_sink cb = { .notice = on_notice, .outcome = on_outcome, .arg = f };
    f->core = core_new(f->cfg, fake_wall, f, &cb);
    assert_non_null(f->core);
    struct notify_delivery ops = { fake_submit, fake_lookup, fake_cancel,
                                   fake_poke, f };
    f->nt = notify_new(f->cfg, f->core, &ops);
    assert_non_null(f->nt);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    notify_free(f->nt);
    core_free(f->core);
    cfg_free(f->cfg);
    unlink(f->key);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Applies one event; extra is "field=value,field=value". */
static void
apply(struct fixture *f, enum ev_type type, const char *ticket, int64_t ts,
      const char *extra)
{
    struct ev_field fields[8];
    size_t n = 0;
    char buf[128], tsbuf[32];
    struct sla_event ev;
    const char *reason = NULL;

    fields[n++] = (struct ev_field){ "type", 4, event_type_name(type),
                                     strlen(event_type_name(type)) };
    fields[n++] = (struct ev_field){ "ticket", 6, ticket, strlen(ticket) };
    snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
    fields[n++] = (struct ev_field){ "ts", 2, tsbuf, strlen(tsbuf) };
    snprintf(buf, sizeof(buf), "%s", extra ? extra : "");
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        assert_non_null(eq);
        *eq = '\0';
        fields[n++] = (struct ev_field){ kv, strlen(kv), eq + 1, strlen(eq + 1) };
    }
    if (f->wall < ts)
        f->wall = ts;
    assert_int_equal(event_parse(&ev, fields, n, ts, f->wall, 5 * MIN, &reason), 0);
    assert_int_equal(core_apply(f->core, &ev, &reason), 0);
}

static void
advance(struct fixture *f, int64_t to)
{
    f->wall = to;
    core_advance(f->core, to);
}

/* T-1 (tier fast) opened at T0; both response warnings delivered (the
 * alertmanager ones firing), the response deadline (T0+10m) breached at
 * T0+11m and that step's notes delivered: the page level is out, the boss
 * level waits for T0+41m. */
static void
breach_t1(struct fixture *f)
{
    apply(f, EVT_OPENED, "T-1", T0, "priority=urgent");
    advance(f, T0 + 6 * MIN);
    fake_run(f);
    advance(f, T0 + 9 * MIN);
    fake_run(f);
    advance(f, T0 + 11 * MIN);
    assert_int_equal(f->nnotice[NOTICE_WARNING], 2);
    assert_int_equal(f->nnotice[NOTICE_BREACH], 1);
    assert_int_equal(f->nsub, 6 + 9);
    fake_run(f);
}

/* ---- clocks ------------------------------------------------------------- */

static void
test_warning_and_breach_notes(void **state)
{
    struct fixture *f = *state;
    apply(f, EVT_OPENED, "T-1", T0, "priority=urgent");
    apply(f, EVT_OPENED, "T-2", T0, "priority=low");
    assert_int_equal(f->nsub, 0);

    /* 50% of the 10m response target: heads-up, to its three webhooks. */
    mark(f);
    advance(f, T0 + 6 * MIN);
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 3);
    const char *hooks[] = { "am", "pd", "sl" };
    for (size_t i = 0; i < 3; i++) {
        const struct hook_note *n =
            &only_new(f, "T-1", HOOK_KIND_WARNING, hooks[i], "heads-up", 5000)->note;
        assert_string_equal(n->tier, "fast");
        assert_string_equal(n->attr[ATTR_PRIORITY], "urgent");
        assert_int_equal(n->metric, METRIC_RESPONSE);
        assert_int_equal(n->cycle, 0);
        assert_int_equal(n->opened_ms, T0);
        assert_int_equal(n->deadline_ms, T0 + 10 * MIN);
        assert_int_equal(n->at_ms, T0 + 6 * MIN);
        assert_int_equal(n->due_ms, T0 + 6 * MIN);
        assert_int_equal(strlen(n->id), HOOK_ID_LEN);
        /* every trigger is checked against its clock before it is sent */
        assert_int_equal(n->flags, HOOK_F_COND);
    }
    fake_run(f);
    const char *am50 =
        only_new(f, "T-1", HOOK_KIND_WARNING, "am", NULL, 5000)->note.id;

    mark(f);
    advance(f, T0 + 9 * MIN);
    assert_int_equal(count_new(f, NULL, HOOK_KIND_WARNING, NULL, "heads-up"), 3);
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 3);
    const char *am80 =
        only_new(f, "T-1", HOOK_KIND_WARNING, "am", NULL, 8000)->note.id;
    assert_string_not_equal(am50, am80);
    fake_run(f);

    /* The breach: page's seven webhooks at once, boss's two after 30m;
     * `late` is for resolution clocks. */
    mark(f);
    advance(f, T0 + 11 * MIN);
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 9);
    assert_int_equal(count_new(f, "T-1", HOOK_KIND_BREACH, NULL, "page"), 7);
    assert_int_equal(count_new(f, "T-1", HOOK_KIND_BREACH, NULL, "boss"), 2);
    assert_int_equal(count_new(f, NULL, -1, NULL, "late"), 0);
    const char *page[] = { "j", "jq", "sl", "slq", "am", "pd", "pdq" };
    for (size_t i = 0; i < 7; i++) {
        const struct hook_note *n =
            &only_new(f, "T-1", HOOK_KIND_BREACH, page[i], "page", 0)->note;
        assert_int_equal(n->metric, METRIC_RESPONSE);
        assert_int_equal(n->deadline_ms, T0 + 10 * MIN);
        assert_int_equal(n->at_ms, T0 + 11 * MIN);
        assert_int_equal(n->late_ms, 1 * MIN);
        assert_int_equal(n->percent_bp, 0);
        assert_int_equal(n->due_ms, T0 + 11 * MIN);
        assert_int_equal(n->flags, HOOK_F_COND);
    }
    const char *boss[] = { "j", "pd2" };
    for (size_t i = 0; i < 2; i++) {
        const struct hook_note *n =
            &only_new(f, "T-1", HOOK_KIND_BREACH, boss[i], "boss", 0)->note;
        assert_int_equal(n->due_ms, T0 + 41 * MIN);
        assert_int_equal(n->flags, HOOK_F_COND);
    }
    /* The breach retires the warnings: both firing alertmanager warning
     * alerts are poked (to resolve), nothing is cancelled. */
    assert_int_equal(f->npoke, 2);
    assert_int_equal(times_in(f->poked, f->npoke, am50), 1);
    assert_int_equal(times_in(f->poked, f->npoke, am80), 1);
    assert_int_equal(f->ncancel, 0);
    fake_run(f);
    assert_true(entry_of(f, am50) == NULL && entry_of(f, am80) == NULL);

    /* T-2 (slow) breaches its response clock: page and boss are for fast
     * only, `late` for resolution, slow has no warnings: nothing. */
    apply(f, EVT_RESPONDED, "T-1", T0 + 12 * MIN, NULL);
    mark(f);
    int breaches = f->nnotice[NOTICE_BREACH];
    advance(f, T0 + 4 * HOUR + MIN);
    assert_int_equal(count_new(f, "T-2", -1, NULL, NULL), 0);
    /* T-1's resolution clock went through 30m, 48m and 1h meanwhile */
    assert_int_equal(f->nnotice[NOTICE_BREACH], breaches + 2);
}

static void
test_metric_filter(void **state)
{
    struct fixture *f = *state;
    apply(f, EVT_OPENED, "T-1", T0, "priority=urgent");
    apply(f, EVT_RESPONDED, "T-1", T0 + 1 * MIN, NULL);
    assert_int_equal(f->nsub, 0);

    /* Resolution warnings: heads-up has no `metric`, so it hears them. */
    mark(f);
    advance(f, T0 + 31 * MIN);
    assert_int_equal(count_new(f, "T-1", HOOK_KIND_WARNING, NULL, "heads-up"), 3);
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 3);
    for (int i = f->mark; i < f->nsub; i++) {
        assert_int_equal(f->sub[i].note.metric, METRIC_RESOLUTION);
        assert_int_equal(f->sub[i].note.percent_bp, 5000);
        assert_int_equal(f->sub[i].note.deadline_ms, T0 + HOUR);
    }
    fake_run(f);
    advance(f, T0 + 49 * MIN);
    fake_run(f);

    /* The resolution breach: `late` only (page and boss are response). */
    mark(f);
    advance(f, T0 + 61 * MIN);
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 1);
    const struct hook_note *n =
        &only_new(f, "T-1", HOOK_KIND_BREACH, "j", "late", 0)->note;
    assert_int_equal(n->metric, METRIC_RESOLUTION);
    assert_int_equal(n->at_ms, T0 + 61 * MIN);
    assert_int_equal(n->flags, HOOK_F_COND);
    assert_int_equal(f->npoke, 2); /* the two resolution warning alerts */
}

static void
test_met_without_warnings_submits_nothing(void **state)
{
    struct fixture *f = *state;
    apply(f, EVT_OPENED, "T-1", T0, "priority=urgent");
    mark(f);
    apply(f, EVT_RESPONDED, "T-1", T0 + 2 * MIN, NULL);
    assert_int_equal(f->noutcome, 1); /* met, decided */
    assert_int_equal(f->nsub, 0);
    assert_int_equal(f->nlookup, 0);
    assert_int_equal(f->ncancel, 0);
    assert_int_equal(f->npoke, 0);
}

static void
test_met_after_warnings(void **state)
{
    struct fixture *f = *state;
    apply(f, EVT_OPENED, "T-1", T0, "priority=urgent");
    advance(f, T0 + 6 * MIN);
    fake_run(f);
    advance(f, T0 + 9 * MIN);
    fake_run(f);
    mark(f);
    f->mark = 0; /* to look the warnings up */
    const char *am50 = only_new(f, "T-1", HOOK_KIND_WARNING, "am", NULL, 5000)->note.id;
    const char *am80 = only_new(f, "T-1", HOOK_KIND_WARNING, "am", NULL, 8000)->note.id;
    const struct hook_note *pdw =
        &only_new(f, "T-1", HOOK_KIND_WARNING, "pd", NULL, 5000)->note;

    mark(f);
    int64_t before = now_wall_ms();
    apply(f, EVT_RESPONDED, "T-1", T0 + 9 * MIN + 30 * SEC, NULL);
    int64_t after = now_wall_ms();
    /* No breach: slack hears nothing; pagerduty had warnings: one
     * resolve; both alertmanager warning alerts are poked. */
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 1);
    const struct hook_note *r =
        &only_new(f, "T-1", HOOK_KIND_RESOLVE, "pd", "", 0)->note;
    assert_int_equal(r->metric, METRIC_RESPONSE);
    assert_int_equal(r->at_ms, T0 + 9 * MIN + 30 * SEC);
    assert_int_equal(r->late_ms, -30 * SEC);
    assert_in_range(r->due_ms, before, after);
    assert_int_equal(r->flags, 0u);
    char k1[256], k2[256];
    hook_dedup_key(r, k1, sizeof(k1));
    hook_dedup_key(pdw, k2, sizeof(k2));
    assert_string_equal(k1, k2);
    assert_int_equal(f->npoke, 2);
    assert_int_equal(times_in(f->poked, f->npoke, am50), 1);
    assert_int_equal(times_in(f->poked, f->npoke, am80), 1);
    assert_int_equal(f->ncancel, 0);
    fake_run(f);
    assert_true(f->sub[0].resolved); /* am 50%: sent with endsAt */
}

static void
test_after_level_cancelled_when_clock_stops_first(void **state)
{
    struct fixture *f = *state;
    breach_t1(f);
    f->mark = 6;
    struct sent *bj = only_new(f, "T-1", HOOK_KIND_BREACH, "j", "boss", 0);
    struct sent *bp = only_new(f, "T-1", HOOK_KIND_BREACH, "pd2", "boss", 0);
    assert_int_equal(bj->state, HOOK_STATE_WAITING);

    /* Still waiting at T0+40m, its clock still breached. */
    advance(f, T0 + 40 * MIN);
    fake_run(f);
    assert_int_equal(bj->state, HOOK_STATE_WAITING);

    mark(f);
    apply(f, EVT_RESPONDED, "T-1", T0 + 40 * MIN + 30 * SEC, NULL);
    assert_int_equal(f->nnotice[NOTICE_RECOVERED], 1);
    assert_int_equal(f->ncancel, 2);
    assert_int_equal(times_in(f->cancelled, f->ncancel, bj->note.id), 1);
    assert_int_equal(times_in(f->cancelled, f->ncancel, bp->note.id), 1);
    /* Neither level was sent, so neither says anything now: no recovered
     * from boss, no resolve to pd2 (its only trigger was that level). */
    assert_int_equal(count_new(f, NULL, -1, NULL, "boss"), 0);
    assert_int_equal(count_new(f, NULL, -1, "pd2", NULL), 0);
    advance(f, T0 + 42 * MIN);
    fake_run(f);
    assert_false(bj->delivered || bp->delivered);
}

static void
test_after_level_fires_while_breached(void **state)
{
    struct fixture *f = *state;
    breach_t1(f);
    f->mark = 6;
    struct sent *bj = only_new(f, "T-1", HOOK_KIND_BREACH, "j", "boss", 0);
    struct sent *bp = only_new(f, "T-1", HOOK_KIND_BREACH, "pd2", "boss", 0);
    advance(f, T0 + 41 * MIN);
    fake_run(f);
    assert_true(bj->delivered && bp->delivered);
    assert_false(bj->dropped || bp->dropped);

    /* Now the clock stops: pd2 heard of it and gets its resolve; j gets a
     * recovered for page and one for boss. */
    mark(f);
    apply(f, EVT_RESPONDED, "T-1", T0 + 45 * MIN, NULL);
    assert_int_equal(f->ncancel, 0);
    assert_int_equal(count_new(f, "T-1", HOOK_KIND_RESOLVE, "pd2", ""), 1);
    assert_int_equal(count_new(f, "T-1", HOOK_KIND_RECOVERED, "j", "boss"), 1);
    assert_int_equal(count_new(f, "T-1", HOOK_KIND_RECOVERED, "j", "page"), 1);
}

/* A waiting level whose escalation no longer covers the ticket (here its
 * tier changed from fast to slow, which `boss` does not cover) is dropped
 * when it comes due, though the clock is still breached. */
static void
test_after_level_dropped_when_tier_changes(void **state)
{
    struct fixture *f = *state;
    breach_t1(f);
    f->mark = 6;
    struct sent *bj = only_new(f, "T-1", HOOK_KIND_BREACH, "j", "boss", 0);
    struct sent *bp = only_new(f, "T-1", HOOK_KIND_BREACH, "pd2", "boss", 0);
    apply(f, EVT_UPDATED, "T-1", T0 + 20 * MIN, "priority=low");
    const struct ticket *t = core_find(f->core, "T-1", 3);
    assert_string_equal(core_tier_name(f->core, t), "slow");
    assert_false(notify_still_open(f->nt, &bj->note));
    advance(f, T0 + 41 * MIN);
    fake_run(f);
    assert_true(bj->dropped && bp->dropped);
    assert_false(bj->delivered || bp->delivered);
}

static void
test_recovered_json_slack_with_send_resolved(void **state)
{
    struct fixture *f = *state;
    breach_t1(f);
    mark(f);
    int64_t before = now_wall_ms();
    apply(f, EVT_RESPONDED, "T-1", T0 + 20 * MIN, NULL);
    int64_t after = now_wall_ms();
    assert_int_equal(count_new(f, NULL, HOOK_KIND_RECOVERED, NULL, NULL), 2);
    const char *hooks[] = { "j", "sl" };
    for (size_t i = 0; i < 2; i++) {
        const struct hook_note *n =
            &only_new(f, "T-1", HOOK_KIND_RECOVERED, hooks[i], "page", 0)->note;
        assert_int_equal(n->metric, METRIC_RESPONSE);
        assert_int_equal(n->deadline_ms, T0 + 10 * MIN);
        assert_int_equal(n->at_ms, T0 + 20 * MIN);
        assert_int_equal(n->late_ms, 10 * MIN);
        assert_in_range(n->due_ms, before, after);
        assert_int_equal(n->flags, 0u);
    }
    /* send_resolved: false */
    assert_int_equal(count_new(f, NULL, -1, "jq", NULL), 0);
    assert_int_equal(count_new(f, NULL, -1, "slq", NULL), 0);
}

static void
test_pagerduty_one_resolve(void **state)
{
    struct fixture *f = *state;
    breach_t1(f);
    f->mark = 0;
    const struct hook_note *pb =
        &only_new(f, "T-1", HOOK_KIND_BREACH, "pd", "page", 0)->note;
    const struct hook_note *pw =
        &only_new(f, "T-1", HOOK_KIND_WARNING, "pd", "heads-up", 8000)->note;
    mark(f);
    apply(f, EVT_RESPONDED, "T-1", T0 + 20 * MIN, NULL);
    /* pd heard two warnings (heads-up) and a breach (page): one resolve,
     * with the clock's dedup key; pdq has send_resolved: false; pd2's
     * level was cancelled. */
    assert_int_equal(count_new(f, NULL, HOOK_KIND_RESOLVE, NULL, NULL), 1);
    const struct hook_note *r =
        &only_new(f, "T-1", HOOK_KIND_RESOLVE, "pd", "", 0)->note;
    assert_int_equal(r->metric, METRIC_RESPONSE);
    assert_int_equal(r->cycle, 0);
    assert_int_equal(r->at_ms, T0 + 20 * MIN);
    char kr[256], kb[256], kw[256];
    hook_dedup_key(r, kr, sizeof(kr));
    hook_dedup_key(pb, kb, sizeof(kb));
    hook_dedup_key(pw, kw, sizeof(kw));
    assert_string_equal(kr, kb);
    assert_string_equal(kr, kw);
    assert_int_equal(count_new(f, NULL, -1, "pdq", NULL), 0);
    assert_int_equal(count_new(f, NULL, -1, "pd2", NULL), 0);
}

static void
test_alertmanager_poked_when_delivered(void **state)
{
    struct fixture *f = *state;
    breach_t1(f);
    f->mark = 6;
    struct sent *ab = only_new(f, "T-1", HOOK_KIND_BREACH, "am", "page", 0);
    assert_true(ab->delivered);
    assert_int_equal(ab->state, HOOK_STATE_ACTIVE);
    mark(f);
    apply(f, EVT_RESPONDED, "T-1", T0 + 20 * MIN, NULL);
    /* The firing breach alert is poked (its warning alerts were resolved
     * at the breach already); no new alertmanager note. */
    assert_int_equal(f->npoke, 1);
    assert_string_equal(f->poked[0], ab->note.id);
    assert_int_equal(count_new(f, NULL, -1, "am", NULL), 0);
    fake_run(f);
    assert_true(ab->resolved);
    assert_int_equal(ab->state, HOOK_STATE_NONE);
}

static void
test_alertmanager_not_yet_sent_is_cancelled(void **state)
{
    struct fixture *f = *state;
    apply(f, EVT_OPENED, "T-1", T0, "priority=urgent");
    /* Warnings and breach in one step: no warning went out yet (each is
     * checked against its clock before its first attempt), so the breach
     * cancels all six instead of poking the alertmanager ones. */
    mark(f);
    advance(f, T0 + 11 * MIN);
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 6 + 9);
    assert_int_equal(f->ncancel, 6);
    assert_int_equal(f->npoke, 0);
    const char *w50 = only_new(f, "T-1", HOOK_KIND_WARNING, "am", NULL, 5000)->note.id;
    const char *w80 = only_new(f, "T-1", HOOK_KIND_WARNING, "am", NULL, 8000)->note.id;
    assert_int_equal(times_in(f->cancelled, f->ncancel, w50), 1);
    assert_int_equal(times_in(f->cancelled, f->ncancel, w80), 1);
    const char *ab = only_new(f, "T-1", HOOK_KIND_BREACH, "am", "page", 0)->note.id;

    /* The breach alert has not been attempted either when the clock
     * stops: cancelled, not poked. */
    mark(f);
    apply(f, EVT_RESPONDED, "T-1", T0 + 11 * MIN + SEC, NULL);
    assert_int_equal(f->npoke, 0);
    assert_int_equal(times_in(f->cancelled, f->ncancel, ab), 1);
    /* with the other six page webhooks' breach notes, none attempted yet
     * either, and the boss level's two: 9 */
    assert_int_equal(f->ncancel, 9);
}

static void
test_cleared_ticket(void **state)
{
    struct fixture *f = *state;
    breach_t1(f);
    f->mark = 6;
    const char *ab = only_new(f, "T-1", HOOK_KIND_BREACH, "am", "page", 0)->note.id;
    const char *bj = only_new(f, "T-1", HOOK_KIND_BREACH, "j", "boss", 0)->note.id;
    const char *bp = only_new(f, "T-1", HOOK_KIND_BREACH, "pd2", "boss", 0)->note.id;
    mark(f);
    apply(f, EVT_DELETED, "T-1", T0 + 20 * MIN, NULL);
    assert_int_equal(f->nnotice[NOTICE_CLEARED], 1);
    /* No outcome: json and slack get nothing; pagerduty resolves,
     * alertmanager is poked, waiting levels are cancelled. */
    assert_int_equal(count_new(f, NULL, HOOK_KIND_RECOVERED, NULL, NULL), 0);
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 1);
    const struct hook_note *r =
        &only_new(f, "T-1", HOOK_KIND_RESOLVE, "pd", "", 0)->note;
    assert_int_equal(r->at_ms, T0 + 20 * MIN);
    assert_int_equal(f->npoke, 1);
    assert_string_equal(f->poked[0], ab);
    assert_int_equal(f->ncancel, 2);
    assert_int_equal(times_in(f->cancelled, f->ncancel, bj), 1);
    assert_int_equal(times_in(f->cancelled, f->ncancel, bp), 1);
    /* The ticket is gone: the poked alert resolves. */
    fake_run(f);
    f->mark = 6;
    assert_true(only_new(f, "T-1", HOOK_KIND_BREACH, "am", "page", 0)->resolved);
}

static void
test_still_open(void **state)
{
    struct fixture *f = *state;
    apply(f, EVT_OPENED, "T-1", T0, "priority=urgent");
    apply(f, EVT_RESPONDED, "T-1", T0 + MIN, NULL);
    advance(f, T0 + 31 * MIN);
    struct hook_note w =
        only_new(f, "T-1", HOOK_KIND_WARNING, "am", "heads-up", 5000)->note;
    assert_int_equal(w.metric, METRIC_RESOLUTION);

    /* running, not breached: a warning holds, a breach does not */
    assert_true(notify_still_open(f->nt, &w));
    struct hook_note b = w;
    b.kind = HOOK_KIND_BREACH;
    assert_false(notify_still_open(f->nt, &b));
    struct hook_note other_metric = w;
    other_metric.metric = METRIC_RESPONSE; /* stopped at T0+1m */
    assert_false(notify_still_open(f->nt, &other_metric));

    /* paused (fast pauses resolution) still counts as open */
    apply(f, EVT_PAUSED, "T-1", T0 + 32 * MIN, NULL);
    assert_true(notify_still_open(f->nt, &w));
    apply(f, EVT_RESUMED, "T-1", T0 + 33 * MIN, NULL);
    assert_true(notify_still_open(f->nt, &w));

    /* stopped */
    apply(f, EVT_RESOLVED, "T-1", T0 + 40 * MIN, NULL);
    assert_false(notify_still_open(f->nt, &w));

    /* reopened: a new cycle runs; the old cycle's note is over */
    apply(f, EVT_REOPENED, "T-1", T0 + 41 * MIN, NULL);
    assert_false(notify_still_open(f->nt, &w));
    struct hook_note w1 = w;
    w1.cycle = 1;
    assert_true(notify_still_open(f->nt, &w1));

    /* ticket gone */
    apply(f, EVT_DELETED, "T-1", T0 + 42 * MIN, NULL);
    assert_false(notify_still_open(f->nt, &w1));
    /* a new ticket under the same id is another incarnation */
    apply(f, EVT_OPENED, "T-1", T0 + 43 * MIN, "priority=urgent");
    struct hook_note w0 = w;
    w0.cycle = 0;
    assert_false(notify_still_open(f->nt, &w0));
    w0.opened_ms = T0 + 43 * MIN;
    assert_true(notify_still_open(f->nt, &w0));

    /* a breached clock: its breach note holds, its warnings do not */
    apply(f, EVT_OPENED, "T-2", T0 + 43 * MIN, "priority=urgent");
    advance(f, T0 + 54 * MIN);
    f->mark = 0;
    struct hook_note b2 =
        only_new(f, "T-2", HOOK_KIND_BREACH, "am", "page", 0)->note;
    struct hook_note w2 =
        only_new(f, "T-2", HOOK_KIND_WARNING, "am", "heads-up", 8000)->note;
    assert_true(notify_still_open(f->nt, &b2));
    assert_false(notify_still_open(f->nt, &w2));
}

/* ---- objectives --------------------------------------------------------- */

static struct cmp_objective_change
change(bool violated, uint32_t episode, int tier, const char *tier_name,
       int metric, int window, int64_t at_ms)
{
    static const char *const windows[] = { "1h", "24h", "7d" };
    struct cmp_objective_change ch = {
        .violated = violated,
        .episode = episode,
        .tier = tier,
        .tier_name = tier_name,
        .metric = metric,
        .window = window,
        .window_name = windows[window],
        .met = 8,
        .breached = 2,
        .ratio_micro = 800000,
        .objective_micro = 900000,
        .objective = 0.9,
        .at_ms = at_ms,
    };
    return ch;
}

static void
test_objective_fire(void **state)
{
    struct fixture *f = *state;
    notify_set_objective_state(f->nt, objective_state, f);

    /* fast, response: slo (every tier, response) and slo-boss (fast) */
    mark(f);
    struct cmp_objective_change ch =
        change(true, 1, 0, "fast", METRIC_RESPONSE, 1, T0 + HOUR);
    notify_objective(f->nt, &ch);
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 7);
    assert_int_equal(count_new(f, NULL, HOOK_KIND_OBJECTIVE, NULL, "slo"), 5);
    assert_int_equal(count_new(f, NULL, HOOK_KIND_OBJECTIVE, NULL, "slo-boss"), 2);
    const char *slo[] = { "j", "jq", "am", "pd", "sl" };
    for (size_t i = 0; i < 5; i++) {
        const struct hook_note *n =
            &only_new(f, NULL, HOOK_KIND_OBJECTIVE, slo[i], "slo", 0)->note;
        assert_true(n->objective);
        assert_string_equal(n->ticket, "");
        assert_string_equal(n->tier, "fast");
        assert_string_equal(n->window, "24h");
        assert_int_equal(n->metric, METRIC_RESPONSE);
        assert_int_equal(n->episode, 1);
        assert_int_equal(n->ratio_micro, 800000);
        assert_int_equal(n->objective_micro, 900000);
        assert_int_equal(n->met, 8);
        assert_int_equal(n->breached, 2);
        assert_int_equal(n->at_ms, T0 + HOUR);
        assert_int_equal(n->due_ms, T0 + HOUR);
        assert_int_equal(n->flags, strcmp(slo[i], "am") == 0 ? HOOK_F_COND : 0u);
    }
    const char *boss[] = { "j", "pd2" };
    for (size_t i = 0; i < 2; i++) {
        const struct hook_note *n =
            &only_new(f, NULL, HOOK_KIND_OBJECTIVE, boss[i], "slo-boss", 0)->note;
        assert_int_equal(n->due_ms, T0 + HOUR + 15 * MIN); /* wall time */
        assert_int_equal(n->flags, HOOK_F_COND);
    }

    /* all: only escalations without a `tiers` list */
    mark(f);
    ch = change(true, 1, CMP_ALL, "all", METRIC_RESPONSE, 1, T0 + HOUR);
    notify_objective(f->nt, &ch);
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 5);
    assert_int_equal(count_new(f, NULL, HOOK_KIND_OBJECTIVE, NULL, "slo"), 5);
    assert_string_equal(only_new(f, NULL, -1, "pd", NULL, 0)->note.tier, "all");

    /* fast, resolution: slo is for response only */
    mark(f);
    ch = change(true, 1, 0, "fast", METRIC_RESOLUTION, 1, T0 + HOUR);
    notify_objective(f->nt, &ch);
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 2);
    assert_int_equal(count_new(f, NULL, HOOK_KIND_OBJECTIVE, NULL, "slo-boss"), 2);

    /* slow, response: slo-boss is for fast only */
    mark(f);
    ch = change(true, 1, 1, "slow", METRIC_RESPONSE, 1, T0 + HOUR);
    notify_objective(f->nt, &ch);
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 5);
    assert_int_equal(count_new(f, NULL, HOOK_KIND_OBJECTIVE, NULL, "slo"), 5);
}

static void
test_objective_after_held(void **state)
{
    struct fixture *f = *state;
    notify_set_objective_state(f->nt, objective_state, f);
    /* window 1h: still violated in episode 3 when the level comes due;
     * window 24h: a new episode (4) began meanwhile; window 7d: recovered
     * without the recovery reaching notify. */
    f->obj_violated[0] = f->obj_violated[1] = f->obj_violated[2] = true;
    f->obj_episode[0] = f->obj_episode[1] = f->obj_episode[2] = 3;
    f->wall = T0 + HOUR;
    mark(f);
    for (int w = 0; w < 3; w++) {
        struct cmp_objective_change ch =
            change(true, 3, 0, "fast", METRIC_RESOLUTION, w, T0 + HOUR);
        notify_objective(f->nt, &ch);
    }
    assert_int_equal(count_new(f, NULL, HOOK_KIND_OBJECTIVE, NULL, "slo-boss"), 6);
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 6);

    /* held back: nothing is attempted before `after` */
    f->wall = T0 + HOUR + 14 * MIN;
    fake_run(f);
    assert_int_equal(f->obj_asked, 0);
    for (int i = f->mark; i < f->nsub; i++)
        assert_int_equal(f->sub[i].state, HOOK_STATE_WAITING);

    f->obj_episode[1] = 4;
    f->obj_violated[2] = false;
    f->wall = T0 + HOUR + 15 * MIN;
    fake_run(f);
    assert_int_equal(f->obj_asked, 6);
    for (int i = f->mark; i < f->nsub; i++) {
        const struct sent *s = &f->sub[i];
        bool hold = strcmp(s->note.window, "1h") == 0;
        assert_int_equal(s->delivered, hold);
        assert_int_equal(s->dropped, !hold);
    }

    /* without an objective state function every objective note reads as
     * over */
    notify_set_objective_state(f->nt, NULL, NULL);
    assert_false(notify_still_open(f->nt, &f->sub[f->mark].note));
    assert_int_equal(f->obj_asked, 6);
}

static void
test_objective_recovery(void **state)
{
    struct fixture *f = *state;
    notify_set_objective_state(f->nt, objective_state, f);
    f->obj_violated[0] = true;
    f->obj_episode[0] = 1;
    f->wall = T0 + HOUR;
    struct cmp_objective_change ch =
        change(true, 1, 0, "fast", METRIC_RESPONSE, 0, T0 + HOUR);
    notify_objective(f->nt, &ch);
    fake_run(f); /* slo delivered (am firing), slo-boss waiting */
    f->mark = 0;
    struct sent *am = only_new(f, NULL, HOOK_KIND_OBJECTIVE, "am", "slo", 0);
    const struct hook_note *pdv =
        &only_new(f, NULL, HOOK_KIND_OBJECTIVE, "pd", "slo", 0)->note;
    const char *bj = only_new(f, NULL, -1, "j", "slo-boss", 0)->note.id;
    const char *bp = only_new(f, NULL, -1, "pd2", "slo-boss", 0)->note.id;
    assert_int_equal(am->state, HOOK_STATE_ACTIVE);

    f->obj_violated[0] = false;
    f->wall = T0 + HOUR + 5 * MIN;
    mark(f);
    int64_t before = now_wall_ms();
    ch = change(false, 1, 0, "fast", METRIC_RESPONSE, 0, T0 + HOUR + 5 * MIN);
    ch.ratio_micro = 950000;
    notify_objective(f->nt, &ch);
    int64_t after = now_wall_ms();
    /* json and slack: recovered (jq has send_resolved: false);
     * pagerduty: one resolve; alertmanager: poked; the waiting slo-boss
     * level: cancelled, so pd2 and its j level say nothing. */
    assert_int_equal(count_new(f, NULL, -1, NULL, NULL), 3);
    const char *rec[] = { "j", "sl" };
    for (size_t i = 0; i < 2; i++) {
        const struct hook_note *n =
            &only_new(f, NULL, HOOK_KIND_RECOVERED, rec[i], "slo", 0)->note;
        assert_true(n->objective);
        assert_int_equal(n->episode, 1);
        assert_string_equal(n->window, "1h");
        assert_int_equal(n->ratio_micro, 950000);
        assert_int_equal(n->at_ms, T0 + HOUR + 5 * MIN);
        assert_in_range(n->due_ms, before, after);
    }
    const struct hook_note *r = &only_new(f, NULL, HOOK_KIND_RESOLVE, "pd", "", 0)->note;
    assert_true(r->objective);
    char kr[256], kv[256];
    hook_dedup_key(r, kr, sizeof(kr));
    hook_dedup_key(pdv, kv, sizeof(kv));
    assert_string_equal(kr, kv);
    assert_int_equal(count_new(f, NULL, -1, "jq", NULL), 0);
    assert_int_equal(count_new(f, NULL, -1, "pd2", NULL), 0);
    assert_int_equal(count_new(f, NULL, -1, NULL, "slo-boss"), 0);
    assert_int_equal(f->npoke, 1);
    assert_string_equal(f->poked[0], am->note.id);
    assert_int_equal(f->ncancel, 2);
    assert_int_equal(times_in(f->cancelled, f->ncancel, bj), 1);
    assert_int_equal(times_in(f->cancelled, f->ncancel, bp), 1);
    /* the poked alert finds its violation over: sent with endsAt */
    fake_run(f);
    assert_true(am->resolved);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_warning_and_breach_notes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metric_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_met_without_warnings_submits_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_met_after_warnings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_level_cancelled_when_clock_stops_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_level_fires_while_breached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_level_dropped_when_tier_changes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recovered_json_slack_with_send_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagerduty_one_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alertmanager_poked_when_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alertmanager_not_yet_sent_is_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleared_ticket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_still_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_objective_fire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_objective_after_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_objective_recovery, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
