/*
 * report.c - publishing compliance (see report.h): the adapter between the
 * core's outcomes and deadline changes, the pure windows (compliance.c),
 * objective states (objective.c) and at-risk counts (atrisk.c), and Redis.
 * Owns the publish timer, the list of keys written last round and the
 * objective hook. Must not scan tickets, and must not block: every write
 * goes through the writer's durable queue (rds_queue), so a round is one
 * pipelined round trip.
 *
 *   core --outcome--> report_outcome --> cmp_record, cmp_record_elapsed
 *   core --kpi--> report_kpi --> cmp_record_kpi
 *   core --deadline_changed--> atrisk_change
 *   timer (compliance.publish_every) --> report_publish
 *        --> report_evaluate: cmp_advance, obj_eval (values through
 *            obj_read_compliance) --> XADD <prefix>objectives --> hook
 *        --> report_build: atrisk_advance, MSET + DEL (the states just
 *            judged among them)
 *   after the first round: SCAN <prefix>* once, DEL the compliance keys
 *   this run does not write (left by an earlier configuration)
 */
#define _GNU_SOURCE
#include "slawatch/report.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slawatch/atrisk.h"
#include "slawatch/log.h"
#include "slawatch/table.h"

static const struct {
    const char *name;
    int64_t ms;
} horizons[] = {
    { "5m", 5 * 60 * 1000 },
    { "15m", 15 * 60 * 1000 },
    { "1h", 60 * 60 * 1000 },
};

/* The keys of one round's MSET (every other argument after the command),
 * hashed into an open-addressing table, so that the keys of the last round
 * that this one no longer writes are found in O(keys): the round must not
 * sort its thousands of keys. */
struct keyset {
    const char *text;                /* the MSET's strings (not owned) */
    size_t *off;                     /* start of each key in text */
    size_t *len;
    uint64_t *hash;
    size_t n, max;
    uint32_t *tab;                   /* key index + 1; 0: empty */
    size_t cap;                      /* power of two, >= 2n */
};

struct report {
    const struct config *cfg;
    struct compliance *cmp;          /* NULL only after a failed reload */
    struct objectives *obj;          /* likewise */
    struct atrisk *risk;
    char *prev_text;                 /* the MSET of the last round */
    size_t prev_used, prev_cap;      /* its bytes, and prev_text's size */
    struct keyset prev;              /* its keys, pointing into prev_text */
    struct keyset cur;               /* the keys of the round being built */
    uint64_t seed;
    uint64_t saturated_logged;       /* cmp_kpi_saturated() last logged */
    report_objective_fn *hook;
    void *hook_arg;
    /* In the daemon (report_attach). */
    const struct core *core;
    struct rds_conn *writer;
    struct event *timer;
    int64_t timer_ms;
    bool live;                       /* the state is complete: publish */
    struct log_ratelimit rl;
    /* The sweep of keys an earlier run left behind (report_publish). */
    bool swept, sweeping;
    char match[2 * KEY_MAX + 4];     /* SCAN MATCH pattern */
    char cursor[32];
    long stale;
};

void
report_cmds_free(struct report_cmds *cmds)
{
    argv_free(&cmds->mset);
    argv_free(&cmds->del);
}

/* ---- the keys of a round ----------------------------------------------- */

static void
keyset_free(struct keyset *ks)
{
    free(ks->off);
    free(ks->len);
    free(ks->hash);
    free(ks->tab);
    memset(ks, 0, sizeof(*ks));
}

static bool
keyset_find(const struct keyset *ks, const char *key, size_t len, uint64_t h)
{
    if (ks->cap == 0)
        return false;
    for (size_t i = (size_t)h & (ks->cap - 1);; i = (i + 1) & (ks->cap - 1)) {
        uint32_t e = ks->tab[i];
        if (e == 0)
            return false;
        if (ks->hash[e - 1] == h && ks->len[e - 1] == len &&
            memcmp(ks->text + ks->off[e - 1], key, len) == 0)
            return true;
    }
}

/* Fills ks with the keys of mset (hashed with seed). Returns -1 on
 * allocation failure (ks is then empty). */
static int
keyset_build(struct keyset *ks, const struct cmd_argv *mset, uint64_t seed)
{
    size_t n = mset->n > 1 ? (mset->n - 1) / 2 : 0, cap = 64;
    while (cap < 2 * n)
        cap *= 2;
    if (n > ks->max) {
        size_t *off = realloc(ks->off, n * sizeof(*off));
        if (off)
            ks->off = off;
        size_t *len = realloc(ks->len, n * sizeof(*len));
        if (len)
            ks->len = len;
        uint64_t *hash = realloc(ks->hash, n * sizeof(*hash));
        if (hash)
            ks->hash = hash;
        if (!off || !len || !hash) {
            keyset_free(ks);
            return -1;
        }
        ks->max = n;
    }
    if (cap != ks->cap) {
        free(ks->tab);
        ks->tab = malloc(cap * sizeof(*ks->tab));
        if (ks->tab == NULL) {
            keyset_free(ks);
            return -1;
        }
        ks->cap = cap;
    }
    memset(ks->tab, 0, cap * sizeof(*ks->tab));
    ks->text = mset->text;
    ks->n = n;
    for (size_t i = 0; i < n; i++) {
        size_t off = mset->off[1 + 2 * i], len = mset->lens[1 + 2 * i];
        uint64_t h = table_hash(seed, mset->text + off, len);
        ks->off[i] = off;
        ks->len[i] = len;
        ks->hash[i] = h;
        size_t j = (size_t)h & (cap - 1);
        while (ks->tab[j] != 0)
            j = (j + 1) & (cap - 1);
        ks->tab[j] = (uint32_t)(i + 1);
    }
    return 0;
}

/* ---- state without a daemon ------------------------------------------- */

struct report *
report_new(const struct config *cfg, int64_t now_ms)
{
    struct report *rp = calloc(1, sizeof(*rp));
    if (rp == NULL)
        return NULL;
    rp->cfg = cfg;
    rp->cmp = cmp_new(cfg, now_ms);
    rp->obj = obj_new(cfg);
    rp->risk = atrisk_new(now_ms);
    rp->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(60, 5);
    rp->seed = table_random_seed();
    if (rp->cmp == NULL || rp->obj == NULL || rp->risk == NULL) {
        report_free_state(rp);
        return NULL;
    }
    return rp;
}

void
report_free_state(struct report *rp)
{
    if (rp == NULL)
        return;
    if (rp->timer)
        event_free(rp->timer);
    cmp_free(rp->cmp);
    obj_free(rp->obj);
    atrisk_free(rp->risk);
    free(rp->prev_text);
    keyset_free(&rp->prev);
    keyset_free(&rp->cur);
    free(rp);
}

struct compliance *
report_compliance(struct report *rp)
{
    return rp->cmp;
}

struct objectives *
report_objectives(struct report *rp)
{
    return rp->obj;
}

struct atrisk *
report_atrisk(struct report *rp)
{
    return rp->risk;
}

/* Returns -1 when a breakdown value or response-time bucket could not be
 * allocated (the outcome still counts for its tier and `all`). */
static int
feed(struct report *rp, const struct core *core, const struct sla_outcome *o)
{
    const char *attrs[ATTR_COUNT];
    int rc = 0;
    if (rp->cmp == NULL)
        return 0;
    if (o->decided && (o->outcome == OUTCOME_MET || o->outcome == OUTCOME_BREACHED)) {
        for (int a = 0; a < ATTR_COUNT; a++)
            attrs[a] = rp->cfg->compliance.by[a] ? core_ticket_attr(core, o->ticket, a)
                                                 : NULL;
        rc |= cmp_record(rp->cmp, o->tier_index, o->metric,
                         o->outcome == OUTCOME_MET, o->decided_ms, attrs);
    }
    /* Elapsed times are known when the clock stops: met (decided) or
     * breached earlier (the second, undecided call), at the stop. */
    if (o->elapsed_ms >= 0 && (!o->decided || o->outcome == OUTCOME_MET))
        rc |= cmp_record_elapsed(rp->cmp, o->tier_index, o->metric, o->decided_ms,
                                 o->elapsed_ms);
    return rc;
}

void
report_feed_outcome(struct report *rp, const struct core *core,
                    const struct sla_outcome *o)
{
    (void)feed(rp, core, o);
}

void
report_feed_kpi(struct report *rp, const struct sla_kpi *k)
{
    if (rp->cmp != NULL)
        (void)cmp_record_kpi(rp->cmp, k);
}

/* ---- one round -------------------------------------------------------- */

struct build {
    const struct report *rp;
    struct report_cmds *cmds;
    const char *prefix;
};

static const char *
tier_name(const struct config *cfg, int tier)
{
    return tier == CMP_ALL ? "all" : cfg->tiers[tier].name;
}

static void
put_series(void *arg, const struct cmp_series *s)
{
    struct build *b = arg;
    const struct config *cfg = b->rp->cfg;
    struct report_cmds *cmds = b->cmds;
    char ratio[CMP_RATIO_BUFLEN];
    /* The key: prefix, family, tier, metric, window and, with a
     * breakdown, ":<attr>=<value>". */
    const char *parts[] = { b->prefix, NULL, tier_name(cfg, s->tier), ":",
                            cfg_metric_name(s->metric), ":", NULL,
                            s->attr >= 0 ? ":" : "",
                            s->attr >= 0 ? cfg_attr_name(s->attr) : "",
                            s->attr >= 0 ? "=" : "", s->attr >= 0 ? s->value : "" };

    for (size_t w = 0; w < cfg->compliance.nwindows; w++) {
        const struct cmp_counts *k = &s->counts[w];
        parts[6] = cfg->compliance.windows[w].name;
        parts[1] = "met:";
        argv_addv(&cmds->mset, parts, ARRAY_LEN(parts));
        argv_addu64(&cmds->mset, k->met);
        parts[1] = "breached:";
        argv_addv(&cmds->mset, parts, ARRAY_LEN(parts));
        argv_addu64(&cmds->mset, k->breached);
        parts[1] = "compliance:";
        if (k->met + k->breached > 0) {
            argv_addv(&cmds->mset, parts, ARRAY_LEN(parts));
            argv_adds(&cmds->mset, cmp_format_ratio(k->met, k->breached, ratio));
        } else {
            argv_addv(&cmds->del, parts, ARRAY_LEN(parts)); /* absent while empty */
        }
    }
}

/* <prefix>kpi:<tier>:<kpi>:<window>[:<attr>=<value>], absent while the
 * window holds nothing to count it from. */
static void
put_kpi(void *arg, const struct cmp_kpi_series *s)
{
    struct build *b = arg;
    const struct config *cfg = b->rp->cfg;
    char value[CMP_KPI_BUFLEN];
    const char *parts[] = { b->prefix, "kpi:", tier_name(cfg, s->tier), ":", NULL, ":",
                            NULL, s->attr >= 0 ? ":" : "",
                            s->attr >= 0 ? cfg_attr_name(s->attr) : "",
                            s->attr >= 0 ? "=" : "", s->attr >= 0 ? s->value : "" };

    for (size_t w = 0; w < cfg->compliance.nwindows; w++) {
        parts[6] = cfg->compliance.windows[w].name;
        for (int kpi = 0; kpi < CMP_KPI_COUNT; kpi++) {
            parts[4] = cmp_kpi_name(kpi);
            if (cmp_format_kpi(&s->counts[w], kpi, value) != NULL) {
                argv_addv(&b->cmds->mset, parts, ARRAY_LEN(parts));
                argv_adds(&b->cmds->mset, value);
            } else {
                argv_addv(&b->cmds->del, parts, ARRAY_LEN(parts));
            }
        }
    }
}

/* One distribution's four keys: parts[] is the key without its last part,
 * the statistic's name. */
static void
put_stats(struct build *b, const char **parts, size_t nparts, bool have,
          const struct cmp_latency *l)
{
    static const char *const names[] = { "p50", "p90", "p99", "mean" };
    int64_t v[] = { l->p50_ms, l->p90_ms, l->p99_ms, l->mean_ms };
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        parts[nparts - 1] = names[i];
        argv_addv(have ? &b->cmds->mset : &b->cmds->del, parts, nparts);
        if (have)
            argv_addu64(&b->cmds->mset, v[i] > 0 ? (uint64_t)v[i] : 0);
    }
}

/* response_ms:<tier>:<window>:<stat> (every tier, as before v2) and
 * elapsed_ms:<tier>:<metric>:<window>:<stat> (the tiers with the metric). */
static void
put_latency(struct build *b)
{
    const struct config *cfg = b->rp->cfg;
    for (int t = 0; t <= (int)cfg->ntiers; t++) {
        int tier = t == (int)cfg->ntiers ? CMP_ALL : t;
        for (size_t w = 0; w < cfg->compliance.nwindows; w++) {
            struct cmp_latency l;
            const char *win = cfg->compliance.windows[w].name;
            const char *parts[] = { b->prefix, "response_ms:", tier_name(cfg, tier), ":",
                                    win, ":", NULL };
            bool have = cmp_latency(b->rp->cmp, tier, (int)w, &l);
            put_stats(b, parts, ARRAY_LEN(parts), have, &l);
        }
        for (int m = 0; m < METRIC_COUNT; m++) {
            bool any = false;
            for (size_t i = 0; i < cfg->ntiers && !any; i++)
                any = cfg->tiers[i].target_ms[m] > 0 && (tier == CMP_ALL || (int)i == tier);
            if (!any)
                continue;
            for (size_t w = 0; w < cfg->compliance.nwindows; w++) {
                struct cmp_latency l;
                const char *parts[] = { b->prefix, "elapsed_ms:", tier_name(cfg, tier), ":",
                                        cfg_metric_name(m), ":",
                                        cfg->compliance.windows[w].name, ":", NULL };
                bool have = cmp_elapsed(b->rp->cmp, tier, m, (int)w, &l);
                put_stats(b, parts, ARRAY_LEN(parts), have, &l);
            }
        }
    }
}

static void
put_at_risk(struct build *b)
{
    const struct config *cfg = b->rp->cfg;
    for (size_t t = 0; t < cfg->ntiers; t++)
        for (int m = 0; m < METRIC_COUNT; m++) {
            if (cfg->tiers[t].target_ms[m] == 0)
                continue;
            for (size_t h = 0; h < ARRAY_LEN(horizons); h++) {
                const char *parts[] = { b->prefix, "at_risk:", cfg->tiers[t].name, ":",
                                        cfg_metric_name(m), ":", horizons[h].name };
                long n = atrisk_count(b->rp->risk, (int)t, m, horizons[h].ms);
                argv_addv(&b->cmds->mset, parts, ARRAY_LEN(parts));
                argv_addu64(&b->cmds->mset, n > 0 ? (uint64_t)n : 0);
            }
        }
}

/* A named objective's state per series it covers, present while the last
 * evaluation had a value to judge; the shorthand's states are not
 * published (compliance.objective keeps its one key, <prefix>objective). */
static void
put_objective_series(void *arg, const struct obj_series *s)
{
    struct build *b = arg;
    if (s->name == NULL)
        return;
    const char *parts[] = { b->prefix, "objective:", s->name, ":", s->tier_name, ":",
                            s->window_name };
    argv_addv(s->present ? &b->cmds->mset : &b->cmds->del, parts, ARRAY_LEN(parts));
    if (s->present)
        argv_adds(&b->cmds->mset, s->violated ? "1" : "0");
}

static void
put_objectives(struct build *b)
{
    const struct config *cfg = b->rp->cfg;
    argv_addf(&b->cmds->mset, "%sobjective", b->prefix);
    argv_addf(&b->cmds->mset, "%.6g", cfg->compliance.objective);
    for (size_t i = 0; i < cfg->nobjectives; i++) {
        const char *parts[] = { b->prefix, "objective:", cfg->objectives[i].name };
        argv_addv(&b->cmds->mset, parts, ARRAY_LEN(parts));
        argv_addf(&b->cmds->mset, "%.6g", cfg->objectives[i].threshold);
    }
    if (b->rp->obj != NULL)
        obj_foreach(b->rp->obj, put_objective_series, b);
}

int
report_build(struct report *rp, int64_t now_ms, struct report_cmds *cmds)
{
    struct build b = { rp, cmds, rp->cfg->redis.prefix };

    argv_init(&cmds->mset);
    argv_init(&cmds->del);
    /* About the size of the last round: one allocation, not a doubling. */
    if (rp->prev.n > 0)
        argv_reserve(&cmds->mset, 2 * rp->prev.n + 64, rp->prev_used + rp->prev_used / 8);
    argv_add(&cmds->mset, "MSET", 4);
    argv_add(&cmds->del, "DEL", 3);
    atrisk_advance(rp->risk, now_ms);
    if (rp->cmp != NULL) {
        cmp_advance(rp->cmp, now_ms);
        cmp_foreach(rp->cmp, put_series, &b);
        cmp_kpi_foreach(rp->cmp, put_kpi, &b);
        put_latency(&b);
    }
    put_at_risk(&b);
    put_objectives(&b);
    if (cmds->mset.oom || keyset_build(&rp->cur, &cmds->mset, rp->seed) < 0)
        return -1;

    /* Keys written last round and not this one: a breakdown value that
     * expired, a tier, window or breakdown a reload removed. */
    for (size_t i = 0; i < rp->prev.n; i++) {
        const char *key = rp->prev.text + rp->prev.off[i];
        if (!keyset_find(&rp->cur, key, rp->prev.len[i], rp->prev.hash[i]))
            argv_add(&cmds->del, key, rp->prev.len[i]);
    }
    if (argv_seal(&cmds->mset) < 0 || argv_seal(&cmds->del) < 0)
        return -1;
    return 0;
}

void
report_commit(struct report *rp, const struct report_cmds *cmds)
{
    const struct cmd_argv *m = &cmds->mset;
    char *text = rp->prev_text;
    /* The last round's copy is reused when it is large enough. */
    if (m->used > rp->prev_cap) {
        text = malloc(m->used);
        if (text != NULL) {
            free(rp->prev_text);
            rp->prev_text = text;
            rp->prev_cap = m->used;
        }
    }
    /* rp->cur holds the keys of this round unless another build came in
     * between. */
    if (text == NULL || (rp->cur.text != m->text &&
                         keyset_build(&rp->cur, m, rp->seed) < 0)) {
        /* Without the list, keys that vanish later are not deleted; the
         * published values themselves are unaffected. */
        keyset_free(&rp->prev);
        return;
    }
    memcpy(text, m->text, m->used);
    rp->prev_used = m->used;
    struct keyset tmp = rp->prev;
    rp->prev = rp->cur;
    rp->prev.text = text;
    rp->cur = tmp;
    rp->cur.text = NULL;
}

/* ---- the daemon's part ------------------------------------------------ */

/* Key families this module writes; anything else under the prefix belongs
 * to someone else and is never touched. */
static const char *const families[] = { "compliance:", "met:", "breached:",
                                        "response_ms:", "at_risk:", "kpi:",
                                        "elapsed_ms:", "objective:" };

static bool
is_ours(const struct report *rp, const char *key, size_t len)
{
    size_t plen = strlen(rp->cfg->redis.prefix);
    if (len < plen || memcmp(key, rp->cfg->redis.prefix, plen) != 0)
        return false;
    for (size_t i = 0; i < ARRAY_LEN(families); i++) {
        size_t flen = strlen(families[i]);
        if (len - plen > flen && memcmp(key + plen, families[i], flen) == 0)
            return true;
    }
    return false;
}

static bool
written_last_round(const struct report *rp, const char *key, size_t len)
{
    return keyset_find(&rp->prev, key, len, table_hash(rp->seed, key, len));
}

static void sweep_next(struct report *rp);

/* One SCAN page: DEL what this run does not write, then the next page.
 * Keys the current round writes are in `prev` before any page that could
 * list them is answered (one connection, in order). */
static void
sweep_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct report *rp = privdata;
    struct cmd_argv del;
    (void)conn;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        rp->sweeping = false; /* tried again after the next round */
        return;
    }
    argv_init(&del);
    argv_add(&del, "DEL", 3);
    const redisReply *keys = reply->element[1];
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        if (k->type == REDIS_REPLY_STRING && strlen(k->str) == k->len &&
            is_ours(rp, k->str, k->len) && !written_last_round(rp, k->str, k->len))
            argv_add(&del, k->str, k->len);
    }
    if (del.n > 1 && argv_seal(&del) == 0 &&
        rds_queue(rp->writer, NULL, NULL, (int)del.n, del.argv, del.lens) == 0)
        rp->stale += (long)del.n - 1;
    argv_free(&del);
    snprintf(rp->cursor, sizeof(rp->cursor), "%s", reply->element[0]->str);
    if (strcmp(rp->cursor, "0") == 0) {
        rp->sweeping = false;
        rp->swept = true;
        if (rp->stale)
            log_info("compliance: deleted %ld keys an earlier configuration left",
                     rp->stale);
        return;
    }
    sweep_next(rp);
}

static void
sweep_next(struct report *rp)
{
    const char *argv[] = { "SCAN", rp->cursor, "MATCH", rp->match, "COUNT", "1000" };
    if (rds_send(rp->writer, sweep_cb, rp, (int)ARRAY_LEN(argv), argv, NULL) < 0)
        rp->sweeping = false;
}

static void
sweep_start(struct report *rp)
{
    size_t n = 0;
    /* The prefix, glob characters escaped, then "*". */
    for (const char *p = rp->cfg->redis.prefix; *p && n + 3 < sizeof(rp->match); p++) {
        if (strchr("*?[]\\", *p))
            rp->match[n++] = '\\';
        rp->match[n++] = *p;
    }
    rp->match[n++] = '*';
    rp->match[n] = '\0';
    snprintf(rp->cursor, sizeof(rp->cursor), "0");
    rp->sweeping = true;
    rp->stale = 0;
    sweep_next(rp);
}

/* The record of a compliance.objective transition: the fields it has
 * always had (no `name`: consumers tell it from the named objectives'
 * records by that). */
static void
record_shorthand(struct report *rp, const struct obj_change *ch, const char *key,
                 const char *at)
{
    char ratio[CMP_RATIO_BUFLEN], objective[32], met[24], breached[24];
    const char *kind = ch->violated ? "objective" : "recovered";
    const char *metric = cfg_metric_name(ch->metric);

    cmp_format_ratio(ch->met, ch->breached, ratio);
    snprintf(objective, sizeof(objective), "%.6g", ch->threshold);
    snprintf(met, sizeof(met), "%" PRIu64, ch->met);
    snprintf(breached, sizeof(breached), "%" PRIu64, ch->breached);
    const char *argv[] = { "XADD", key, "*", "kind", kind,
                           "tier", ch->tier_name, "metric", metric,
                           "window", ch->window_name, "ratio", ratio,
                           "objective", objective, "at_ms", at,
                           "met", met, "breached", breached };
    if (rds_queue(rp->writer, NULL, NULL, (int)ARRAY_LEN(argv), argv, NULL) < 0)
        log_err("%s of %s %s %s not recorded: writer queue full", kind, ch->tier_name,
                metric, ch->window_name);
    log_ticket(ch->violated ? LOG_LVL_NOTICE : LOG_LVL_INFO, NULL, ch->tier_name, metric,
               "compliance %s: tier %s %s over %s at %s (%" PRIu64 " met, %" PRIu64
               " breached), objective %s",
               ch->violated ? "below objective" : "recovered", ch->tier_name, metric,
               ch->window_name, ratio, ch->met, ch->breached, objective);
}

/* A named objective's record: kind, name, tier, window, metric or kpi,
 * value, min or max, at_ms, and for an SLA ratio the counts behind it. */
static void
record_named(struct report *rp, const struct obj_change *ch, const char *key, const char *at)
{
    char value[32], threshold[32], met[24], breached[24];
    const char *kind = ch->violated ? "objective" : "recovered";
    const char *measure = ch->kpi >= 0 ? cmp_kpi_name(ch->kpi) : cfg_metric_name(ch->metric);

    obj_format_micro(ch->value_micro, value, sizeof(value));
    snprintf(threshold, sizeof(threshold), "%.6g", ch->threshold);
    snprintf(met, sizeof(met), "%" PRIu64, ch->met);
    snprintf(breached, sizeof(breached), "%" PRIu64, ch->breached);
    const char *argv[] = { "XADD", key, "*", "kind", kind, "name", ch->name,
                           "tier", ch->tier_name, "window", ch->window_name,
                           ch->kpi >= 0 ? "kpi" : "metric", measure,
                           "value", value, ch->max ? "max" : "min", threshold,
                           "at_ms", at, "met", met, "breached", breached };
    /* A KPI has no met/breached counts: its record ends at at_ms. */
    int argc = (int)ARRAY_LEN(argv) - (ch->counts ? 0 : 4);
    if (rds_queue(rp->writer, NULL, NULL, argc, argv, NULL) < 0)
        log_err("%s of objective %s (%s over %s) not recorded: writer queue full", kind,
                ch->name, ch->tier_name, ch->window_name);
    log_ticket(ch->violated ? LOG_LVL_NOTICE : LOG_LVL_INFO, NULL, ch->tier_name,
               ch->kpi >= 0 ? NULL : measure,
               "objective %s %s: tier %s %s over %s is %s, %s %s %s", ch->name,
               ch->violated ? "violated" : "met again", ch->tier_name, measure,
               ch->window_name, value,
               ch->violated ? (ch->max ? "above" : "below") : (ch->max ? "at or below" : "at or above"),
               ch->max ? "its max" : "its min", threshold);
}

static void
objective_changed(void *arg, const struct obj_change *ch)
{
    struct report *rp = arg;
    char at[24], key[KEY_MAX];

    snprintf(at, sizeof(at), "%" PRId64, ch->at_ms);
    /* A stream of its own: <prefix>breaches holds per-ticket entries only
     * (SPEC section 4), and its consumers must not meet entries without a
     * ticket. Without a writer (tests) only the hook hears of it. */
    snprintf(key, sizeof(key), "%sobjectives", rp->cfg->redis.prefix);
    if (rp->writer != NULL) {
        if (ch->name == NULL)
            record_shorthand(rp, ch, key, at);
        else
            record_named(rp, ch, key, at);
    }
    if (rp->hook)
        rp->hook(rp->hook_arg, ch);
}

void
report_evaluate(struct report *rp, int64_t now_ms, obj_read_fn *read, void *read_arg)
{
    if (rp == NULL || rp->cmp == NULL || rp->obj == NULL)
        return;
    cmp_advance(rp->cmp, now_ms);
    if (read == NULL) {
        read = obj_read_compliance;
        read_arg = rp->cmp;
    }
    obj_eval(rp->obj, now_ms, read, read_arg, objective_changed, rp);
}

void
report_publish(struct report *rp)
{
    struct report_cmds cmds;
    int64_t now = now_wall_ms();

    /* Before the checkpoint and the replay are in, the windows are
     * incomplete: publishing them would show a dip. */
    if (rp == NULL || !rp->live)
        return;
    long suppressed;
    if (atrisk_degraded(rp->risk) && log_ratelimit_ok(&rp->rl, &suppressed))
        log_err("at_risk gauges may be off: out of memory while counting deadlines");
    uint64_t saturated = rp->cmp ? cmp_kpi_saturated(rp->cmp) : 0;
    if (saturated > rp->saturated_logged && log_ratelimit_ok(&rp->rl, &suppressed)) {
        /* Expected now and then (a rating counted before a reload added a
         * window, or before an upgrade, replaced since), not an error. */
        log_info("kpi: %" PRIu64 " facts left out of a series so that its counts "
                 "stay consistent (%" PRIu64 " since start)",
                 saturated - rp->saturated_logged, saturated);
        rp->saturated_logged = saturated;
    }
    /* Transitions first, so that this round's gauges show the states they
     * leave; they are records, queued even while Redis is away. */
    report_evaluate(rp, now, NULL, NULL);
    if (rds_ready(rp->writer) && !rds_stalled(rp->writer)) {
        /* Snapshots, like the other gauges: not queued while Redis is away
         * or refuses writes. */
        if (report_build(rp, now, &cmds) < 0) {
            log_err("compliance not published: out of memory");
        } else {
            int rc = rds_queue(rp->writer, NULL, NULL, (int)cmds.mset.n, cmds.mset.argv,
                               cmds.mset.lens);
            if (rc == 0 && cmds.del.n > 1)
                rc = rds_queue(rp->writer, NULL, NULL, (int)cmds.del.n, cmds.del.argv,
                               cmds.del.lens);
            if (rc == 0) {
                report_commit(rp, &cmds);
                if (!rp->swept && !rp->sweeping)
                    sweep_start(rp);
            } else
                log_warnx("compliance not published: writer queue full");
        }
        report_cmds_free(&cmds);
    } else {
        atrisk_advance(rp->risk, now);
    }
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    report_publish(arg);
}

static void
arm(struct report *rp)
{
    int64_t ms = rp->cfg->compliance.publish_every_ms;
    if (rp->timer_ms == ms)
        return;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    event_del(rp->timer);
    event_add(rp->timer, &tv);
    rp->timer_ms = ms;
}

int
report_attach(struct report *rp, struct event_base *base, struct rds_conn *writer,
              const struct core *core)
{
    rp->writer = writer;
    rp->core = core;
    rp->timer = event_new(base, -1, EV_PERSIST, timer_cb, rp);
    if (rp->timer == NULL)
        return -1;
    arm(rp);
    return 0;
}

void
report_set_live(struct report *rp)
{
    rp->live = true;
}

void
report_deadline(void *arg, const struct sla_deadline_change *d)
{
    struct report *rp = arg;
    atrisk_change(rp->risk, d);
}

void
report_outcome(void *arg, const struct sla_outcome *o)
{
    struct report *rp = arg;
    long suppressed;
    if (feed(rp, rp->core, o) < 0 && log_ratelimit_ok(&rp->rl, &suppressed))
        log_err("compliance: out of memory; an outcome went to %s or was dropped "
                "from the response times%s",
                CMP_OTHER, suppressed ? " (more not logged)" : "");
}

void
report_kpi(void *arg, const struct sla_kpi *k)
{
    struct report *rp = arg;
    long suppressed;
    if (rp->cmp == NULL || cmp_record_kpi(rp->cmp, k) == 0)
        return;
    if (log_ratelimit_ok(&rp->rl, &suppressed))
        log_err("compliance: a KPI fact (kind %d, tier %d) was refused or its breakdown "
                "value went to %s (out of memory)%s",
                (int)k->fact, k->tier_index, CMP_OTHER,
                suppressed ? " (more not logged)" : "");
}

void
report_reconfigure(struct report *rp, const struct config *cfg)
{
    if (rp->cmp == NULL || cmp_set_config(rp->cmp, cfg) < 0) {
        log_err("reload: out of memory keeping the compliance windows; they start empty");
        cmp_free(rp->cmp);
        rp->cmp = cmp_new(cfg, now_wall_ms());
        if (rp->cmp == NULL)
            log_err("compliance disabled until restart: out of memory");
    }
    if (rp->obj == NULL || obj_set_config(rp->obj, cfg) < 0) {
        log_err("reload: out of memory keeping the objective states; every objective "
                "starts met, its violations counted from 0");
        obj_free(rp->obj);
        if ((rp->obj = obj_new(cfg)) == NULL)
            log_err("objectives disabled until restart: out of memory");
    }
    rp->cfg = cfg;
    if (rp->timer)
        arm(rp);
}

int
report_encode(void *arg, struct wire_buf *out)
{
    struct report *rp = arg;
    if (rp == NULL || rp->cmp == NULL)
        return 0;
    return cmp_encode(rp->cmp, out);
}

void
report_restore(void *arg, const char *data, size_t len)
{
    struct report *rp = arg;
    if (rp == NULL || rp->cmp == NULL || len == 0)
        return;
    /* A checkpoint written before objective.c: compliance.objective's
     * states are in this section. */
    if (rp->obj != NULL)
        cmp_set_legacy_objective_hook(rp->cmp, obj_restore_legacy, rp->obj);
    int rc = cmp_decode(rp->cmp, data, len);
    cmp_set_legacy_objective_hook(rp->cmp, NULL, NULL);
    if (rc == 0) {
        log_info("checkpoint: compliance windows restored");
        return;
    }
    /* Half a section would be worse than none. */
    log_err("checkpoint: compliance section unreadable; windows start empty");
    cmp_free(rp->cmp);
    rp->cmp = cmp_new(rp->cfg, now_wall_ms());
    if (rp->cmp == NULL)
        log_err("compliance disabled until restart: out of memory");
}

int
report_encode_objectives(void *arg, struct wire_buf *out)
{
    struct report *rp = arg;
    if (rp == NULL || rp->obj == NULL)
        return 0;
    return obj_encode(rp->obj, out);
}

void
report_restore_objectives(void *arg, const char *data, size_t len)
{
    struct report *rp = arg;
    if (rp == NULL || rp->obj == NULL || len == 0)
        return;
    if (obj_decode(rp->obj, data, len) == 0) {
        log_info("checkpoint: objective states restored");
        return;
    }
    log_err("checkpoint: objective section unreadable; every objective starts met");
    obj_free(rp->obj);
    if ((rp->obj = obj_new(rp->cfg)) == NULL)
        log_err("objectives disabled until restart: out of memory");
}

void
report_set_objective_hook(struct report *rp, report_objective_fn *fn, void *arg)
{
    rp->hook = fn;
    rp->hook_arg = arg;
}

bool
report_objective_state(struct report *rp, const char *name, int metric, int kpi,
                        const char *tier, const char *window, uint32_t *episode)
{
    int o = OBJ_SHORTHAND, t, w;

    *episode = 0;
    if (rp == NULL || rp->obj == NULL)
        return false;
    if (name[0] != '\0') {
        if ((o = cfg_objective_index(rp->cfg, name)) < 0 ||
            rp->cfg->objectives[o].metric != metric || rp->cfg->objectives[o].kpi != kpi)
            return false;
    } else if (kpi >= 0) {
        return false;
    }
    /* CMP_ALL and "no such tier" are both -1: tell them apart by name. */
    if (strcmp(tier, "all") == 0)
        t = CMP_ALL;
    else if ((t = cfg_tier_index(rp->cfg, tier, strlen(tier))) < 0)
        return false;
    if ((w = cfg_window_index(rp->cfg, window)) < 0)
        return false;
    return obj_violated(rp->obj, o, t, metric, w, episode);
}
