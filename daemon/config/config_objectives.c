/*
 * config_objectives.c - the `objectives:` section (named goals on SLA
 * ratios and support KPIs, SPEC section 2, v2) and the two keys by which
 * an escalation with `when: objective` picks among them (`objectives:`,
 * `windows:`). Called by config.c after the tiers and the compliance
 * windows (objectives name both), and once more after the escalations,
 * for each of them (their filters name the objectives).
 *
 * Fills the struct config being loaded and reports through cfg_err; must
 * not keep any state between loads.
 */
#define _GNU_SOURCE
#include "config_int.h"

#include <stdlib.h>
#include <string.h>

#include "slawatch/objective.h"

/* Longest list of names shown in a message ("1h, 24h or 7d"). */
#define LIST_MAX 160

/* What a threshold may be, per measure: SLA ratios and the KPIs that are
 * shares are 0..1; csat_mean is a mean of scores 1..5; csat_count counts. */
static void
threshold_range(int metric, int kpi, double *lo, double *hi, const char **hint)
{
    *lo = 0;
    *hi = 1;
    *hint = "a share from 0 to 1 (0.90 for 90%)";
    if (metric >= 0)
        return;
    if (kpi == CMP_KPI_CSAT_MEAN) {
        *lo = 1;
        *hi = 5;
        *hint = "a mean score from 1 to 5";
    } else if (kpi == CMP_KPI_CSAT_COUNT) {
        *hi = 1e9;
        *hint = "a number of ratings, at most 1000000000";
    }
}

/* "1h, 24h or 7d" of the configured windows. */
static const char *
window_list(const struct config *cfg, char *buf, size_t size)
{
    size_t n = cfg->compliance.nwindows, o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s",
                              i ? (i + 1 == n ? " or " : ", ") : "",
                              cfg->compliance.windows[i].name);
    return buf;
}

/* A list of compliance window names into sel[] (every one false first).
 * Returns false (reported) for a list that is not one, is empty or names
 * something else. */
static bool
parse_window_list(struct cfg_load *ld, const yaml_node_t *list,
                  const char *path, bool sel[CFG_MAX_WINDOWS])
{
    struct cfg_ctx *ctx = ld->ctx;
    char shown[CFG_SHOW_MAX], names[LIST_MAX];
    const char *text;
    bool ok = true;

    if (cfg_check_seq(ctx, list, path) < 0)
        return false;
    size_t n = cfg_seq_len(list);
    if (n == 0) {
        cfg_err(ctx, list,
                "%s: empty list (leave the key out for every window)", path);
        return false;
    }
    memset(sel, 0, CFG_MAX_WINDOWS * sizeof(sel[0]));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, list, i);
        if (item == NULL)
            return false;
        if (cfg_get_text(ctx, item, path, &text) < 0) {
            ok = false;
            continue;
        }
        int w = cfg_window_index(ld->cfg, text);
        if (w < 0) {
            cfg_err(
                ctx, item,
                "%s: %s is not a compliance window (compliance.windows: %s)",
                path, cfg_show(item, shown, sizeof(shown)),
                window_list(ld->cfg, names, sizeof(names)));
            ok = false;
        } else if (sel[w]) {
            cfg_err(ctx, item, "%s: %s is listed twice", path,
                    cfg_show(item, shown, sizeof(shown)));
        }
        if (w >= 0)
            sel[w] = true;
    }
    return ok;
}

/* `tiers:` of an objective: tier names and `all`. */
static void
parse_objective_tiers(struct cfg_load *ld, struct cfg_objective *o,
                      const yaml_node_t *list, const char *path)
{
    struct cfg_ctx *ctx = ld->ctx;
    char shown[CFG_SHOW_MAX];

    if (cfg_check_seq(ctx, list, path) < 0)
        return;
    size_t n = cfg_seq_len(list);
    if (n == 0) {
        cfg_err(ctx, list,
                "%s: empty list (leave the key out for every tier and all)",
                path);
        return;
    }
    memset(o->tiers, 0, sizeof(o->tiers));
    o->all = false;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, list, i);
        bool *slot;
        if (item == NULL)
            return;
        if (cfg_is_scalar(item, "all")) {
            slot = &o->all;
        } else {
            int t = cfg_tier_ref(ld, item, path);
            if (t < 0)
                continue;
            /* A tier without the clock never has the ratio to judge. */
            if (o->metric >= 0 && ld->cfg->tiers[t].target_ms[o->metric] == 0)
                cfg_err(ctx, item,
                        "%s: tier %s has no %s target, so no %s ratio", path,
                        ld->cfg->tiers[t].name, cfg_metric_name(o->metric),
                        cfg_metric_name(o->metric));
            slot = &o->tiers[t];
        }
        if (*slot)
            cfg_err(ctx, item, "%s: %s is listed twice", path,
                    cfg_show(item, shown, sizeof(shown)));
        *slot = true;
    }
}

/* metric or kpi: exactly one. */
static void
parse_measure(struct cfg_load *ld, const yaml_node_t *item, const char *path,
              const yaml_node_t *key, struct cfg_objective *o)
{
    struct cfg_ctx *ctx = ld->ctx;
    const char *kpis[CMP_KPI_COUNT];
    char sub[CFG_PATH_MAX];
    const yaml_node_t *m = cfg_get_set(ctx, item, "metric");
    const yaml_node_t *k = cfg_get_set(ctx, item, "kpi");
    int idx;

    char metrics[LIST_MAX], kpi_list[LIST_MAX];
    size_t mo = 0, ko = 0;
    metrics[0] = kpi_list[0] = '\0';
    for (int i = 0; i < METRIC_COUNT && mo < sizeof(metrics); i++)
        mo += (size_t)snprintf(metrics + mo, sizeof(metrics) - mo, "%s%s",
                               i ? ", " : "", cfg_metric_name(i));
    for (int i = 0; i < CMP_KPI_COUNT; i++) {
        kpis[i] = cmp_kpi_name(i);
        if (ko < sizeof(kpi_list))
            ko += (size_t)snprintf(kpi_list + ko, sizeof(kpi_list) - ko, "%s%s",
                                   i ? ", " : "", kpis[i]);
    }
    if (m == NULL && k == NULL)
        cfg_err(ctx, key,
                "%s: metric (an SLA ratio: %s) or kpi (%s) is required", path,
                metrics, kpi_list);
    else if (m != NULL && k != NULL)
        cfg_err(ctx, cfg_key_node(ctx, item, "kpi"),
                "%s: metric and kpi exclude each other (one objective, one "
                "measure)",
                path);
    else if (m != NULL &&
             cfg_get_enum(ctx, m, cfg_path(sub, sizeof(sub), path, "metric"),
                          cfg_metric_names, METRIC_COUNT, &idx) == 0)
        o->metric = idx;
    else if (k != NULL &&
             cfg_get_enum(ctx, k, cfg_path(sub, sizeof(sub), path, "kpi"), kpis,
                          CMP_KPI_COUNT, &idx) == 0)
        o->kpi = idx;
}

/* min or max: exactly one, in the measure's range. */
static void
parse_threshold(struct cfg_load *ld, const yaml_node_t *item, const char *path,
                const yaml_node_t *key, struct cfg_objective *o)
{
    struct cfg_ctx *ctx = ld->ctx;
    char sub[CFG_PATH_MAX];
    const yaml_node_t *lo_n = cfg_get_set(ctx, item, "min");
    const yaml_node_t *hi_n = cfg_get_set(ctx, item, "max");
    double lo, hi, x;
    const char *hint;

    if (lo_n == NULL && hi_n == NULL) {
        cfg_err(ctx, key,
                "%s: min or max is required (violated below the min, above the "
                "max)",
                path);
        return;
    }
    if (lo_n != NULL && hi_n != NULL) {
        cfg_err(ctx, cfg_key_node(ctx, item, "max"),
                "%s: min and max exclude each other (write two objectives for "
                "a band)",
                path);
        return;
    }
    o->max = hi_n != NULL;
    const yaml_node_t *v = o->max ? hi_n : lo_n;
    cfg_path(sub, sizeof(sub), path, o->max ? "max" : "min");
    if (cfg_get_decimal(ctx, v, sub, &x) < 0)
        return;
    if (o->metric < 0 && o->kpi < 0)
        return; /* the measure was reported */
    threshold_range(o->metric, o->kpi, &lo, &hi, &hint);
    if (x < lo || x > hi)
        cfg_err(ctx, v, "%s: must be %s", sub, hint);
    else
        o->threshold = x;
}

static void
parse_objective(struct cfg_load *ld, const yaml_node_t *item, size_t index,
                struct cfg_objective *o, const yaml_node_t **name_nodes)
{
    struct cfg_ctx *ctx = ld->ctx;
    char path[CFG_PATH_MAX], sub[CFG_PATH_MAX];
    const yaml_node_t *v;

    o->metric = o->kpi = -1;
    for (size_t w = 0; w < ld->cfg->compliance.nwindows; w++)
        o->windows[w] = true;
    for (size_t t = 0; t < ld->cfg->ntiers; t++)
        o->tiers[t] = true;
    o->all = true;
    snprintf(path, sizeof(path), "objectives[%zu]", index);
    if (cfg_check_map(ctx, item, path, "objectives.*") < 0)
        return;
    cfg_list_item_name(ctx, item, index, "objectives", "objective", name_nodes, &o->name,
                       path);
    parse_measure(ld, item, path, item, o);
    parse_threshold(ld, item, path, item, o);
    if ((v = cfg_get_set(ctx, item, "windows")) != NULL)
        (void)parse_window_list(
            ld, v, cfg_path(sub, sizeof(sub), path, "windows"), o->windows);
    if ((v = cfg_get_set(ctx, item, "tiers")) != NULL)
        parse_objective_tiers(ld, o, v,
                              cfg_path(sub, sizeof(sub), path, "tiers"));
}

void
cfg_parse_objectives(struct cfg_load *ld, const yaml_node_t *sec)
{
    struct cfg_ctx *ctx = ld->ctx;
    struct config *cfg = ld->cfg;

    if (sec == NULL)
        return;
    if (cfg_check_seq(ctx, sec, "objectives") < 0) {
        ld->objectives_bad = true;
        return;
    }
    size_t n = cfg_seq_len(sec);
    if (n == 0)
        return;
    if (n > CFG_MAX_OBJECTIVES) {
        cfg_err(ctx, cfg_seq_item(ctx, sec, CFG_MAX_OBJECTIVES),
                "objectives: at most %d", CFG_MAX_OBJECTIVES);
        ld->objectives_bad = true; /* the rest are not defined */
        n = CFG_MAX_OBJECTIVES;
    }
    const yaml_node_t **names = calloc(n, sizeof(*names));
    cfg->objectives = calloc(n, sizeof(*cfg->objectives));
    if (names == NULL || cfg->objectives == NULL) {
        free(names);
        cfg_oom(ctx);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, sec, i);
        if (item == NULL)
            break;
        parse_objective(ld, item, i, &cfg->objectives[cfg->nobjectives++],
                        names);
    }
    free(names);
}

/* ---- the escalation keys ------------------------------------------------- */

static void
parse_esc_objectives(struct cfg_load *ld, struct cfg_escalation *e,
                     const yaml_node_t *list, const char *path)
{
    struct cfg_ctx *ctx = ld->ctx;
    char shown[CFG_SHOW_MAX];
    const char *name;

    if (cfg_check_seq(ctx, list, path) < 0)
        return;
    size_t n = cfg_seq_len(list);
    if (n == 0) {
        cfg_err(ctx, list,
                "%s: empty list (leave the key out for every objective)", path);
        return;
    }
    e->objectives_listed = true;
    memset(e->objectives, 0, sizeof(e->objectives));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, list, i);
        if (item == NULL)
            return;
        if (cfg_get_text(ctx, item, path, &name) < 0)
            continue;
        cfg_show(item, shown, sizeof(shown));
        int o = cfg_objective_index(ld->cfg, name);
        if (o < 0) {
            if (!ld->objectives_bad)
                cfg_err(ctx, item,
                        "%s: unknown objective %s (the names of the objectives "
                        "section)",
                        path, shown);
            continue;
        }
        if (e->objectives[o])
            cfg_err(ctx, item, "%s: objective %s is listed twice", path, shown);
        e->objectives[o] = true;
    }
}

/* An escalation's `when` as written, if it is one: the filters are
 * errors on another, and not reported again on a bad one. */
static bool
when_objective(const yaml_node_t *item, struct cfg_load *ld, bool *known)
{
    const yaml_node_t *w = cfg_get_set(ld->ctx, item, "when");
    static const char *const names[] = {"warning", "breach", "objective"};
    *known = false;
    for (size_t i = 0; w != NULL && i < ARRAY_LEN(names); i++)
        if (cfg_is_scalar(w, names[i]))
            *known = true;
    return w != NULL && cfg_is_scalar(w, "objective");
}

static void
parse_esc_filters(struct cfg_load *ld, const yaml_node_t *item,
                  struct cfg_escalation *e, size_t index)
{
    struct cfg_ctx *ctx = ld->ctx;
    static const char *const keys[] = {"objectives", "windows"};
    char path[CFG_PATH_MAX], sub[CFG_PATH_MAX];
    const yaml_node_t *v;
    bool known;

    if (e->name != NULL && cfg_name_ok(e->name, strlen(e->name)))
        snprintf(path, sizeof(path), "escalations.%s", e->name);
    else
        snprintf(path, sizeof(path), "escalations[%zu]", index);
    if (!when_objective(item, ld, &known)) {
        for (size_t i = 0; known && i < ARRAY_LEN(keys); i++)
            if (cfg_get_set(ctx, item, keys[i]) != NULL)
                cfg_err(
                    ctx, cfg_key_node(ctx, item, keys[i]),
                    "%s.%s: only with when: objective (it picks objectives and "
                    "their windows)",
                    path, keys[i]);
        return;
    }
    if ((v = cfg_get_set(ctx, item, "objectives")) != NULL)
        parse_esc_objectives(ld, e, v,
                             cfg_path(sub, sizeof(sub), path, "objectives"));
    if ((v = cfg_get_set(ctx, item, "windows")) != NULL &&
        parse_window_list(ld, v, cfg_path(sub, sizeof(sub), path, "windows"),
                          e->windows))
        e->windows_listed = true;
}

void
cfg_parse_esc_filters(struct cfg_load *ld, const yaml_node_t *sec)
{
    if (sec == NULL || sec->type != YAML_SEQUENCE_NODE)
        return; /* reported by the escalations parser */
    /* cfg_parse_escalations filled escalations[i] from item i. */
    for (size_t i = 0; i < ld->cfg->nescalations; i++) {
        const yaml_node_t *item = cfg_seq_item(ld->ctx, sec, i);
        if (item == NULL)
            return;
        if (item->type == YAML_MAPPING_NODE)
            parse_esc_filters(ld, item, &ld->cfg->escalations[i], i);
    }
}
