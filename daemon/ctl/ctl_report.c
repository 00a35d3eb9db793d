/*
 * ctl_report.c - `slawatchctl report [--json]`: the compliance table
 * (tiers and "all" x metrics x windows), open, overdue and at-risk counts,
 * the support KPIs (tiers and "all" x windows, and each breakdown value),
 * the named objectives' thresholds and states, and the daemon's counters,
 * as slawatchd last published them. Reads plain keys only (SCAN for the
 * KPIs' breakdown values and the objectives, whose names only the keys
 * tell); rebuilds nothing, writes nothing.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "slawatch/util.h"

/* Reads one key as a number; *found is 0 when the key is absent. */
static double
get_num(redisContext *c, const char *key, int *found)
{
    redisReply *r = redisCommand(c, "GET %s", key);
    double v = 0;
    *found = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        v = strtod(r->str, NULL);
        *found = 1;
    }
    if (r)
        freeReplyObject(r);
    return v;
}

static json_t *
num_or_null(double v, int found, int integer)
{
    if (!found)
        return json_null();
    return integer ? json_integer((json_int_t)v) : json_real(v);
}

/* ---- keys found by SCAN ------------------------------------------------ */

/* One key under a family and its value, as published. */
struct found {
    char *key;
    char *value;
};

struct found_list {
    struct found *v;
    size_t n, cap;
};

static void
found_free(struct found_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
        free(l->v[i].value);
    }
    free(l->v);
}

/* Appends every key matching <prefix><family>* with its value to l: SCAN
 * pages, each followed by one MGET (a key deleted in between is skipped).
 * Returns 0, or -1 (printed) on a Redis error or allocation failure. */
static int
scan_family(redisContext *c, const char *prefix, const char *family, struct found_list *l)
{
    char match[2 * KEY_MAX + 8], cursor[32] = "0";
    size_t n = 0;
    /* The prefix and family, glob characters escaped, then "*". */
    for (const char *parts[] = { prefix, family }, **part = parts; part < parts + 2; part++)
        for (const char *q = *part; *q && n + 3 < sizeof(match); q++) {
            if (strchr("*?[]\\", *q))
                match[n++] = '\\';
            match[n++] = *q;
        }
    match[n++] = '*';
    match[n] = '\0';
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, match);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "slawatchctl: SCAN %s: %s\n", match,
                    r == NULL ? c->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
            if (r)
                freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        size_t nkeys = keys->elements;
        redisReply *values = NULL;
        bool oom = false;
        if (nkeys > 0) {
            const char **argv = malloc((nkeys + 1) * sizeof(*argv));
            size_t *lens = malloc((nkeys + 1) * sizeof(*lens));
            oom = argv == NULL || lens == NULL;
            if (!oom) {
                argv[0] = "MGET";
                lens[0] = 4;
                for (size_t i = 0; i < nkeys; i++) {
                    argv[i + 1] = keys->element[i]->str;
                    lens[i + 1] = keys->element[i]->len;
                }
                values = redisCommandArgv(c, (int)nkeys + 1, argv, lens);
            }
            free(argv);
            free(lens);
            if (!oom && (values == NULL || values->type != REDIS_REPLY_ARRAY ||
                         values->elements != nkeys)) {
                fprintf(stderr, "slawatchctl: MGET: %s\n",
                        values == NULL ? c->errstr : "bad reply");
                if (values)
                    freeReplyObject(values);
                freeReplyObject(r);
                return -1;
            }
        }
        for (size_t i = 0; i < nkeys && !oom; i++) {
            const redisReply *k = keys->element[i], *v = values->element[i];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
                strlen(k->str) != k->len || strlen(v->str) != v->len)
                continue;
            if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 64;
                struct found *grown = realloc(l->v, cap * sizeof(*grown));
                if ((oom = grown == NULL))
                    break;
                l->v = grown;
                l->cap = cap;
            }
            struct found *f = &l->v[l->n];
            f->key = strdup(k->str);
            f->value = strdup(v->str);
            if ((oom = f->key == NULL || f->value == NULL)) {
                free(f->key);
                free(f->value);
                break;
            }
            l->n++;
        }
        if (values)
            freeReplyObject(values);
        freeReplyObject(r);
        if (oom) {
            fprintf(stderr, "slawatchctl: out of memory\n");
            return -1;
        }
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* Sorts base[0..n) and drops the elements equal to the one before (SCAN
 * may return a key twice); returns the new count. */
static size_t
sort_unique(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    char *v = base;
    size_t kept = 0;
    qsort(base, n, size, cmp);
    for (size_t i = 0; i < n; i++)
        if (kept == 0 || cmp(v + (kept - 1) * size, v + i * size) != 0) {
            if (kept != i)
                memcpy(v + kept * size, v + i * size, size);
            kept++;
        }
    return kept;
}

/* A published decimal string as a number; false when it is none. */
static bool
parse_num(const char *text, double *v)
{
    char *end;
    *v = strtod(text, &end);
    return end != text && *end == '\0';
}

/* Index of the tier named by s[0..len) (cfg->ntiers for "all"), or -1. */
static int
tier_of(const struct config *cfg, const char *s, size_t len)
{
    if (len == 3 && memcmp(s, "all", 3) == 0)
        return (int)cfg->ntiers;
    return cfg_tier_index(cfg, s, len);
}

static int
window_of(const struct config *cfg, const char *s, size_t len)
{
    for (size_t w = 0; w < cfg->compliance.nwindows; w++)
        if (strlen(cfg->compliance.windows[w].name) == len &&
            memcmp(cfg->compliance.windows[w].name, s, len) == 0)
            return (int)w;
    return -1;
}

static const char *
tier_name(const struct config *cfg, int t)
{
    return t < (int)cfg->ntiers ? cfg->tiers[t].name : "all";
}

/* ---- KPIs --------------------------------------------------------------- */

/* SPEC section 3, in the order of the table's columns. */
static const char *const kpi_names[] = { "fcr", "reopen_rate", "csat", "csat_mean",
                                         "csat_count" };
#define KPI_COUNT ARRAY_LEN(kpi_names)

/* One key <prefix>kpi:<tier>:<kpi>:<window>[:<attr>=<value>] taken apart. */
struct kpi_key {
    int tier, window, kpi;
    const char *by;   /* "queue=billing" or NULL (the tier as a whole) */
    const char *value;
    double num;
};

/* Parses one KPI key; false for a key of a tier, window or attribute the
 * configuration does not have (left by an earlier one) or not a KPI. */
static bool
kpi_parse(const struct config *cfg, const struct found *f, struct kpi_key *k)
{
    const char *p = f->key + strlen(cfg->redis.prefix) + strlen("kpi:");
    const char *colon = strchr(p, ':');
    if (colon == NULL || (k->tier = tier_of(cfg, p, (size_t)(colon - p))) < 0)
        return false;
    p = colon + 1;
    if ((colon = strchr(p, ':')) == NULL)
        return false;
    k->kpi = -1;
    for (size_t i = 0; i < KPI_COUNT; i++)
        if (strlen(kpi_names[i]) == (size_t)(colon - p) &&
            memcmp(kpi_names[i], p, (size_t)(colon - p)) == 0)
            k->kpi = (int)i;
    if (k->kpi < 0)
        return false;
    p = colon + 1;
    colon = strchr(p, ':');
    size_t wlen = colon ? (size_t)(colon - p) : strlen(p);
    if ((k->window = window_of(cfg, p, wlen)) < 0)
        return false;
    k->by = NULL;
    if (colon) {
        const char *eq = strchr(colon + 1, '=');
        bool known = false;
        for (int a = 0; eq && a < ATTR_COUNT; a++)
            known |= cfg->compliance.by[a] &&
                     strlen(cfg_attr_names[a]) == (size_t)(eq - colon - 1) &&
                     memcmp(cfg_attr_names[a], colon + 1, (size_t)(eq - colon - 1)) == 0;
        if (!known || eq[1] == '\0')
            return false;
        k->by = colon + 1;
    }
    k->value = f->value;
    return parse_num(f->value, &k->num);
}

/* Tier, window, the tier as a whole before its breakdown values (sorted),
 * then the KPIs in column order. */
static int
kpi_cmp(const void *a, const void *b)
{
    const struct kpi_key *x = a, *y = b;
    if (x->tier != y->tier)
        return x->tier < y->tier ? -1 : 1;
    if (x->window != y->window)
        return x->window < y->window ? -1 : 1;
    if ((x->by == NULL) != (y->by == NULL))
        return x->by == NULL ? -1 : 1;
    int c = x->by ? strcmp(x->by, y->by) : 0;
    return c ? c : x->kpi - y->kpi;
}

/* The KPIs of one row (a tier and window as a whole, or one breakdown
 * value), keys[0..n) being its keys: a table line, and into obj one member
 * per KPI (null when not published). */
static void
kpi_row(const struct kpi_key *keys, size_t n, const char *tier, const char *window,
        const char *by, json_t *obj, bool as_json)
{
    const char *text[KPI_COUNT];
    for (size_t i = 0; i < KPI_COUNT; i++)
        text[i] = "-";
    for (size_t i = 0; i < KPI_COUNT; i++)
        json_object_set_new(obj, kpi_names[i], json_null());
    for (size_t i = 0; i < n; i++) {
        text[keys[i].kpi] = keys[i].value;
        bool count = strcmp(kpi_names[keys[i].kpi], "csat_count") == 0;
        json_object_set_new(obj, kpi_names[keys[i].kpi],
                            count ? json_integer((json_int_t)keys[i].num)
                                  : json_real(keys[i].num));
    }
    if (!as_json)
        printf("%-10s %-6s %-20s %9s %11s %9s %9s %10s\n", tier, window, by, text[0], text[1],
               text[2], text[3], text[4]);
}

/* The KPI table: every tier and "all" x every window, each followed by its
 * breakdown values that have a key; and per tier object of jtiers (in the
 * same order) a member "kpi": { window: { <kpi>: value|null, ..., "by":
 * { attr: { value: { <kpi>: ... } } } } }. */
static int
report_kpis(redisContext *c, const struct config *cfg, json_t *jtiers, bool as_json)
{
    struct found_list found = { 0 };
    if (scan_family(c, cfg->redis.prefix, "kpi:", &found) < 0) {
        found_free(&found);
        return -1;
    }
    struct kpi_key *keys = calloc(found.n + 1, sizeof(*keys));
    size_t n = 0;
    if (keys == NULL) {
        found_free(&found);
        fprintf(stderr, "slawatchctl: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < found.n; i++)
        n += kpi_parse(cfg, &found.v[i], &keys[n]);
    n = sort_unique(keys, n, sizeof(*keys), kpi_cmp);
    if (!as_json)
        printf("\n%-10s %-6s %-20s %9s %11s %9s %9s %10s\n", "tier", "window", "by",
               kpi_names[0], kpi_names[1], kpi_names[2], kpi_names[3], kpi_names[4]);
    size_t k = 0;
    for (int t = 0; t <= (int)cfg->ntiers; t++) {
        json_t *jk = json_object();
        for (int w = 0; w < (int)cfg->compliance.nwindows; w++) {
            const char *win = cfg->compliance.windows[w].name;
            json_t *jw = json_object(), *jby = json_object();
            size_t start = k;
            while (k < n && keys[k].tier == t && keys[k].window == w && keys[k].by == NULL)
                k++;
            kpi_row(keys + start, k - start, w == 0 ? tier_name(cfg, t) : "", win, "", jw,
                    as_json);
            while (k < n && keys[k].tier == t && keys[k].window == w) {
                start = k;
                while (k < n && keys[k].tier == t && keys[k].window == w &&
                       strcmp(keys[k].by, keys[start].by) == 0)
                    k++;
                /* "queue=a:b": the attribute, then the value as published. */
                const char *by = keys[start].by, *eq = strchr(by, '=');
                char attr[32];
                snprintf(attr, sizeof(attr), "%.*s", (int)(eq - by), by);
                json_t *jattr = json_object_get(jby, attr), *jv = json_object();
                if (jattr == NULL) {
                    jattr = json_object();
                    json_object_set_new(jby, attr, jattr);
                }
                kpi_row(keys + start, k - start, "", "", by, jv, as_json);
                json_object_set_new(jattr, eq + 1, jv);
            }
            json_object_set_new(jw, "by", jby);
            json_object_set_new(jk, win, jw);
        }
        json_object_set_new(json_array_get(jtiers, (size_t)t), "kpi", jk);
    }
    free(keys);
    found_free(&found);
    return 0;
}

/* ---- named objectives --------------------------------------------------- */

/* <prefix>objective:<name> (its threshold, tier -1) or
 * <prefix>objective:<name>:<tier>:<window> (its state) taken apart. */
struct objective_key {
    const char *name;
    size_t name_len;
    int tier, window;
    const char *value;
    double num;
};

/* Parses one key; false for a state of a tier or window the configuration
 * does not have, or a value that is no number. Names, like tier names,
 * have no ':', but the tier and window are taken from the end. */
static bool
objective_parse(const struct config *cfg, const struct found *f, struct objective_key *o)
{
    const char *p = f->key + strlen(cfg->redis.prefix) + strlen("objective:");
    const char *last = strrchr(p, ':');
    o->name = p;
    o->tier = o->window = -1;
    o->value = f->value;
    if (!parse_num(f->value, &o->num))
        return false;
    if (last == NULL) {
        o->name_len = strlen(p);
        return o->name_len > 0;
    }
    const char *mid = last;
    while (mid > p && mid[-1] != ':')
        mid--;
    if (mid == p || (o->tier = tier_of(cfg, mid, (size_t)(last - mid))) < 0 ||
        (o->window = window_of(cfg, last + 1, strlen(last + 1))) < 0 ||
        (o->num != 0 && o->num != 1))
        return false;
    o->name_len = (size_t)(mid - 1 - p);
    return o->name_len > 0;
}

/* By name; the threshold first, then the states by tier and window. */
static int
objective_cmp(const void *a, const void *b)
{
    const struct objective_key *x = a, *y = b;
    size_t len = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, len);
    if (c || x->name_len != y->name_len)
        return c ? c : x->name_len < y->name_len ? -1 : 1;
    if (x->tier != y->tier)
        return x->tier < y->tier ? -1 : 1;
    return x->window - y->window;
}

/* The objectives' table (nothing when no objective key exists), and
 * root's member "objectives": [ { "name", "threshold" (null when not
 * published), "states": [ { "tier", "window", "violated" } ] } ]. */
static int
report_objectives(redisContext *c, const struct config *cfg, json_t *root, bool as_json)
{
    struct found_list found = { 0 };
    if (scan_family(c, cfg->redis.prefix, "objective:", &found) < 0) {
        found_free(&found);
        return -1;
    }
    struct objective_key *keys = calloc(found.n + 1, sizeof(*keys));
    size_t n = 0;
    if (keys == NULL) {
        found_free(&found);
        fprintf(stderr, "slawatchctl: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < found.n; i++)
        n += objective_parse(cfg, &found.v[i], &keys[n]);
    n = sort_unique(keys, n, sizeof(*keys), objective_cmp);
    json_t *jobjs = json_array();
    if (!as_json && n > 0)
        printf("\n%-20s %-9s %-10s %-6s %s\n", "objective", "threshold", "tier", "window",
               "state");
    for (size_t k = 0; k < n;) {
        size_t start = k;
        while (k < n && keys[k].name_len == keys[start].name_len &&
               memcmp(keys[k].name, keys[start].name, keys[k].name_len) == 0)
            k++;
        const struct objective_key *threshold = keys[start].tier < 0 ? &keys[start] : NULL;
        json_t *jo = json_object(), *jstates = json_array();
        json_object_set_new(jo, "name", json_stringn(keys[start].name, keys[start].name_len));
        json_object_set_new(jo, "threshold", threshold ? json_real(threshold->num) : json_null());
        const char *name = keys[start].name, *ts = threshold ? threshold->value : "-";
        int name_len = (int)keys[start].name_len;
        size_t first = start + (threshold != NULL);
        if (!as_json && first == k)
            printf("%-20.*s %-9s %-10s %-6s %s\n", name_len, name, ts, "-", "-",
                   "no window holds data");
        for (size_t i = first; i < k; i++) {
            json_t *js = json_object();
            const char *win = cfg->compliance.windows[keys[i].window].name;
            json_object_set_new(js, "tier", json_string(tier_name(cfg, keys[i].tier)));
            json_object_set_new(js, "window", json_string(win));
            json_object_set_new(js, "violated", json_boolean(keys[i].num == 1));
            json_array_append_new(jstates, js);
            if (!as_json)
                printf("%-20.*s %-9s %-10s %-6s %s\n", i == first ? name_len : 0, name,
                       i == first ? ts : "", tier_name(cfg, keys[i].tier), win,
                       keys[i].num == 1 ? "VIOLATED" : "met");
        }
        json_object_set_new(jo, "states", jstates);
        json_array_append_new(jobjs, jo);
    }
    json_object_set_new(root, "objectives", jobjs);
    free(keys);
    found_free(&found);
    return 0;
}

/* The compliance table (tiers and "all" x metrics x windows), open,
 * overdue and at-risk counts, the KPIs, the named objectives and the
 * daemon's counters, as published. */
int
cmd_report(const struct config *cfg, int argc, char **argv)
{
    static const char *const horizons[] = { "5m", "15m", "1h" };
    static const char *const stats[] = { "events_total", "rejected_total", "lag",
                                         "notifications_pending",
                                         "deliveries_failed_total", "checkpoint_age_ms",
                                         "heartbeat_ms", "reload_failed" };
    int as_json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !as_json)) {
        return ctl_usage_error("usage: report [--json]");
    }
    redisContext *c = ctl_connect(cfg);
    const char *p = cfg->redis.prefix;
    char key[KEY_MAX + 64];
    int found;
    if (c == NULL)
        return EX_UNAVAILABLE;
    json_t *root = json_object(), *tiers = json_array();
    if (!as_json)
        printf("%-10s %-10s %-6s %9s %8s %8s %6s %8s %6s %6s %6s\n", "tier", "metric",
               "window", "ratio", "met", "breached", "open", "overdue", "risk5m",
               "risk15m", "risk1h");
    for (size_t t = 0; t <= cfg->ntiers; t++) {
        const char *name = t < cfg->ntiers ? cfg->tiers[t].name : "all";
        json_t *jt = json_object();
        json_object_set_new(jt, "tier", json_string(name));
        snprintf(key, sizeof(key), "%sopen:%s", p, name);
        double open = get_num(c, key, &found);
        int open_found = found;
        json_object_set_new(jt, "open", num_or_null(open, found, 1));
        for (int m = 0; m < METRIC_COUNT; m++) {
            const char *metric = cfg_metric_name(m);
            json_t *jm = json_object();
            snprintf(key, sizeof(key), "%soverdue:%s:%s", p, name, metric);
            int od_found;
            double overdue = get_num(c, key, &od_found);
            json_object_set_new(jm, "overdue", num_or_null(overdue, od_found, 1));
            double risk[3];
            int risk_found[3];
            json_t *jr = json_object();
            for (int h = 0; h < 3; h++) {
                snprintf(key, sizeof(key), "%sat_risk:%s:%s:%s", p, name, metric, horizons[h]);
                risk[h] = get_num(c, key, &risk_found[h]);
                json_object_set_new(jr, horizons[h], num_or_null(risk[h], risk_found[h], 1));
            }
            json_object_set_new(jm, "at_risk", jr);
            json_t *jw = json_object();
            for (size_t w = 0; w < cfg->compliance.nwindows; w++) {
                const char *win = cfg->compliance.windows[w].name;
                int rf, mf, bf;
                snprintf(key, sizeof(key), "%scompliance:%s:%s:%s", p, name, metric, win);
                double ratio = get_num(c, key, &rf);
                snprintf(key, sizeof(key), "%smet:%s:%s:%s", p, name, metric, win);
                double met = get_num(c, key, &mf);
                snprintf(key, sizeof(key), "%sbreached:%s:%s:%s", p, name, metric, win);
                double br = get_num(c, key, &bf);
                json_t *jx = json_object();
                json_object_set_new(jx, "ratio", num_or_null(ratio, rf, 0));
                json_object_set_new(jx, "met", num_or_null(met, mf, 1));
                json_object_set_new(jx, "breached", num_or_null(br, bf, 1));
                json_object_set_new(jw, win, jx);
                if (as_json)
                    continue;
                char rs[16] = "-", ms[16] = "-", bs[16] = "-", os[16] = "-", ds[16] = "-",
                     r5[16] = "-", r15[16] = "-", r60[16] = "-";
                if (rf)
                    snprintf(rs, sizeof(rs), "%.4f", ratio);
                if (mf)
                    snprintf(ms, sizeof(ms), "%.0f", met);
                if (bf)
                    snprintf(bs, sizeof(bs), "%.0f", br);
                if (w == 0 && m == 0 && open_found)
                    snprintf(os, sizeof(os), "%.0f", open);
                if (w == 0 && od_found)
                    snprintf(ds, sizeof(ds), "%.0f", overdue);
                if (w == 0 && risk_found[0])
                    snprintf(r5, sizeof(r5), "%.0f", risk[0]);
                if (w == 0 && risk_found[1])
                    snprintf(r15, sizeof(r15), "%.0f", risk[1]);
                if (w == 0 && risk_found[2])
                    snprintf(r60, sizeof(r60), "%.0f", risk[2]);
                printf("%-10s %-10s %-6s %9s %8s %8s %6s %8s %6s %6s %6s\n",
                       w == 0 && m == 0 ? name : "", w == 0 ? metric : "", win, rs, ms, bs,
                       os, ds, r5, r15, r60);
            }
            json_object_set_new(jm, "windows", jw);
            json_object_set_new(jt, metric, jm);
        }
        json_array_append_new(tiers, jt);
    }
    json_object_set_new(root, "tiers", tiers);
    if (report_kpis(c, cfg, tiers, as_json) < 0 ||
        report_objectives(c, cfg, root, as_json) < 0) {
        json_decref(root);
        redisFree(c);
        return EX_UNAVAILABLE;
    }
    if (!as_json)
        printf("\n");
    json_t *js = json_object();
    for (size_t i = 0; i < ARRAY_LEN(stats); i++) {
        snprintf(key, sizeof(key), "%sstats:%s", p, stats[i]);
        double v = get_num(c, key, &found);
        json_object_set_new(js, stats[i], num_or_null(v, found, 1));
        if (as_json)
            continue;
        /* The counters on one line, then the figures that need a word. */
        if (strcmp(stats[i], "checkpoint_age_ms") == 0) {
            if (found && v < 0)
                printf("\ncheckpoint_age_ms -1: no checkpoint yet (the first is written "
                       "state.checkpoint_every after start)");
            else
                printf("\ncheckpoint_age_ms %s", found ? "" : "-");
        } else if (strcmp(stats[i], "heartbeat_ms") == 0 && found) {
            char at[TS_BUFLEN], due[CTL_DUE_BUFLEN];
            printf("\nheartbeat_ms %.0f: last published %s (%s)", v,
                   ts_format((int64_t)v, at), ctl_due_text((int64_t)v - now_wall_ms(), due));
            continue;
        } else if (strcmp(stats[i], "reload_failed") == 0) {
            if (found && v > 0)
                printf("\nreload_failed 1: the last reload was rejected "
                       "(slawatchctl status says why)");
            continue;
        } else {
            printf("%s%s %s", i ? ", " : "", stats[i], found ? "" : "-");
        }
        if (found && !(strcmp(stats[i], "checkpoint_age_ms") == 0 && v < 0))
            printf("%.0f", v);
    }
    json_object_set_new(root, "stats", js);
    if (as_json)
        ctl_print_json(root);
    else {
        printf("\n");
        json_decref(root);
    }
    redisFree(c);
    return 0;
}
