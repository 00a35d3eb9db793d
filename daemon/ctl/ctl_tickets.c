/*
 * ctl_tickets.c - `slawatchctl tickets`: every running (or paused) SLA
 * clock as the daemon sees it (ctl_view.c), soonest deadline first, with
 * the deadline in the tier's time zone; filtered to the overdue ones, the
 * ones due within a horizon (as the at_risk gauges count them), a tier or
 * a queue. Read-only.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "slawatch/cal.h"
#include "slawatch/util.h"

struct row {
    const struct ticket *t;
    int metric;
    int64_t deadline_ms;
};

struct filter {
    bool overdue;
    int64_t at_risk_ms;           /* -1: no horizon */
    int tier;                     /* -1: any */
    const char *queue;            /* NULL: any */
};

struct collect {
    const struct config *cfg;
    const struct ctl_view *view;
    const struct filter *f;
    struct row *rows;
    size_t n, cap;
    size_t running;               /* active clocks before filtering */
    bool oom;
};

static bool
wanted(const struct collect *k, const struct ticket *t, const struct sla_clock *c)
{
    const struct filter *f = k->f;
    bool overdue = c->outcome == OUTCOME_BREACHED;
    if (f->overdue && !overdue)
        return false;
    /* As the at_risk gauges count: running, not yet breached, due within
     * the horizon. */
    if (f->at_risk_ms >= 0 &&
        (overdue || c->state != CLOCK_RUNNING ||
         c->deadline_ms > k->view->now_ms + f->at_risk_ms))
        return false;
    if (f->tier >= 0 && t->tier != f->tier)
        return false;
    if (f->queue) {
        const char *q = core_ticket_attr(k->view->core, t, ATTR_QUEUE);
        if (q == NULL || strcmp(q, f->queue) != 0)
            return false;
    }
    return true;
}

static void
collect_ticket(void *arg, const struct ticket *t)
{
    struct collect *k = arg;
    for (int i = 0; i < CLOCK_SLOTS; i++) {
        const struct sla_clock *c = &t->clk[i];
        int m = c->metric;
        if (c->state != CLOCK_RUNNING && c->state != CLOCK_PAUSED)
            continue;
        k->running++;
        if (!wanted(k, t, c))
            continue;
        if (k->n == k->cap) {
            size_t cap = k->cap ? 2 * k->cap : 256;
            struct row *r = realloc(k->rows, cap * sizeof(*r));
            if (r == NULL) {
                k->oom = true;
                return;
            }
            k->rows = r;
            k->cap = cap;
        }
        k->rows[k->n++] = (struct row){ t, m, c->deadline_ms };
    }
}

static int
row_cmp(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->deadline_ms != y->deadline_ms)
        return x->deadline_ms < y->deadline_ms ? -1 : 1;
    int c = strcmp(x->t->id, y->t->id);
    return c ? c : x->metric - y->metric;
}

static const char *
row_state(const struct sla_clock *c)
{
    bool overdue = c->outcome == OUTCOME_BREACHED;
    if (c->state == CLOCK_PAUSED)
        return overdue ? "overdue, paused" : "paused";
    return overdue ? "overdue" : "running";
}

/* Time left on a paused, unbreached clock (its deadline moves on resume). */
static int64_t
paused_left(const struct cfg_tier *tier, const struct sla_clock *c)
{
    return tier->target_ms[c->metric] - c->consumed_ms;
}

static json_t *
row_json(const struct collect *k, const struct row *r)
{
    const struct cfg_tier *tier = &k->cfg->tiers[r->t->tier];
    const struct sla_clock *c = &r->t->clk[clock_slot(r->metric)];
    char a[TS_BUFLEN], loc[CAL_LOCAL_BUFLEN];
    json_t *o = json_object();
    json_object_set_new(o, "ticket", json_string(r->t->id));
    json_object_set_new(o, "tier", json_string(tier->name));
    json_object_set_new(o, "metric", json_string(cfg_metric_name(r->metric)));
    json_object_set_new(o, "state", json_string(row_state(c)));
    json_object_set_new(o, "overdue", json_boolean(c->outcome == OUTCOME_BREACHED));
    json_object_set_new(o, "paused", json_boolean(c->state == CLOCK_PAUSED));
    json_object_set_new(o, "started", json_string(ts_format(c->started_ms, a)));
    json_object_set_new(o, "deadline", json_string(ts_format(c->deadline_ms, a)));
    json_object_set_new(o, "deadline_ms", json_integer(c->deadline_ms));
    json_object_set_new(o, "deadline_local",
                        json_string(cal_format_local(tier->calendar, c->deadline_ms, loc)));
    json_object_set_new(o, "timezone", json_string(cal_timezone(tier->calendar)));
    json_object_set_new(o, "due_in_ms", json_integer(c->deadline_ms - k->view->now_ms));
    json_object_set_new(o, "cycle", json_integer(c->cycle));
    json_t *attrs = json_object();
    for (int at = 0; at < ATTR_COUNT; at++) {
        const char *v = core_ticket_attr(k->view->core, r->t, at);
        json_object_set_new(attrs, cfg_attr_name(at), v ? json_string(v) : json_null());
    }
    json_object_set_new(o, "attributes", attrs);
    return o;
}

static void
print_rows(const struct collect *k)
{
    char src[160];
    size_t overdue = 0;
    if (k->n > 0)
        printf("%-29s  %-14s  %-16s %-10s %-10s %-15s %s\n", "DEADLINE (tier's zone)", "DUE",
               "TICKET", "TIER", "METRIC", "STATE", "QUEUE");
    for (size_t i = 0; i < k->n; i++) {
        const struct row *r = &k->rows[i];
        const struct cfg_tier *tier = &k->cfg->tiers[r->t->tier];
        const struct sla_clock *c = &r->t->clk[clock_slot(r->metric)];
        char loc[CAL_LOCAL_BUFLEN], due[CTL_DUE_BUFLEN], left[CTL_DUR_BUFLEN];
        const char *q = core_ticket_attr(k->view->core, r->t, ATTR_QUEUE);
        if (c->outcome == OUTCOME_BREACHED)
            overdue++;
        if (c->state == CLOCK_PAUSED && c->outcome != OUTCOME_BREACHED)
            snprintf(due, sizeof(due), "%s left", ctl_dur(paused_left(tier, c) / 1000 * 1000, left));
        else
            ctl_due_text(c->deadline_ms - k->view->now_ms, due);
        printf("%-29s  %-14s  %-16s %-10s %-10s %-15s %s\n",
               cal_format_local(tier->calendar, c->deadline_ms, loc), due, r->t->id, tier->name,
               cfg_metric_name(r->metric), row_state(c), q ? q : "-");
    }
    ctl_view_source(k->view, src, sizeof(src));
    if (k->n == 0)
        printf("no clocks match (%zu running); as of %s\n", k->running, src);
    else
        printf("%zu clock%s (%zu overdue) of %zu running; as of %s\n", k->n,
               k->n == 1 ? "" : "s", overdue, k->running, src);
}

int
cmd_tickets(const struct config *cfg, int argc, char **argv)
{
    struct filter f = { false, -1, -1, NULL };
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "--overdue") == 0)
            f.overdue = true;
        else if (strcmp(a, "--at-risk") == 0 || strcmp(a, "--tier") == 0 ||
                 strcmp(a, "--queue") == 0) {
            if (i + 1 >= argc)
                return ctl_usage_error("tickets: %s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--at-risk") == 0) {
                if (dur_parse(v, &f.at_risk_ms) < 0)
                    return ctl_usage_error("tickets: --at-risk %s: not a duration "
                                           "(15m, 1h, 1h30m)", v);
            } else if (strcmp(a, "--tier") == 0) {
                if ((f.tier = cfg_tier_index(cfg, v, strlen(v))) < 0)
                    return ctl_usage_error("tickets: --tier %s: no such tier in %s", v,
                                           cfg->path ? cfg->path : "the configuration");
            } else {
                f.queue = v;
            }
        } else
            return ctl_usage_error("tickets: unknown argument %s", a);
    }
    if (f.overdue && f.at_risk_ms >= 0)
        return ctl_usage_error("tickets: --overdue and --at-risk exclude each other "
                               "(at-risk clocks are not breached yet)");
    redisContext *c = ctl_connect(cfg);
    if (c == NULL)
        return EX_UNAVAILABLE;
    struct ctl_view view;
    int rc = ctl_view_load(c, cfg, &view);
    redisFree(c);
    if (rc != 0) {
        ctl_view_free(&view);
        return rc;
    }
    struct collect k = { cfg, &view, &f, NULL, 0, 0, 0, false };
    core_foreach(view.core, collect_ticket, &k);
    if (k.oom) {
        fprintf(stderr, "slawatchctl: out of memory\n");
        rc = 1;
    } else {
        if (k.n > 1) /* qsort(NULL, 0, ...) is undefined */
            qsort(k.rows, k.n, sizeof(*k.rows), row_cmp);
        if (json) {
            char a[TS_BUFLEN], src[160];
            json_t *o = json_object(), *arr = json_array();
            ctl_view_source(&view, src, sizeof(src));
            json_object_set_new(o, "now", json_string(ts_format(view.now_ms, a)));
            json_object_set_new(o, "source", json_string(src));
            json_object_set_new(o, "running", json_integer((json_int_t)k.running));
            for (size_t i = 0; i < k.n; i++)
                json_array_append_new(arr, row_json(&k, &k.rows[i]));
            json_object_set_new(o, "clocks", arr);
            ctl_print_json(o);
        } else {
            print_rows(&k);
        }
    }
    free(k.rows);
    ctl_view_free(&view);
    return rc;
}
