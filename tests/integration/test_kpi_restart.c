/* A restart in the middle changes nothing (issue 14, point 8): one seeded
 * random ticket history (about 50 tickets, a few hundred events of every
 * type: opened with queue and priority, responded, commented, paused,
 * resumed, resolved, reopened, rated 1-5/good/bad, updated to another queue,
 * closed) is fed to three slawatchd on one redis-server, each under its own
 * prefix and with the same tiers and compliance section:
 *   A ("ra:")  the whole history at once, before it starts;
 *   T ("rt:")  the first part, then SIGTERM (final checkpoint), the rest
 *              written while it is down, restarted;
 *   K ("rk:")  the first part, a periodic checkpoint, the second part
 *              (applied after that checkpoint), kill -9, the rest written
 *              while it is down, restarted: the checkpoint plus the replay
 *              of the stream after it (the log must say events were
 *              replayed).
 * Two runs of that: with `events.allowed_lateness: 1d` A reads the history
 * whole (no clock is decided by the clock, see below); with 0s A is a
 * control fed the same parts at the same points as T, never restarted,
 * because then reading the history in parts is not the same as reading it
 * whole, restart or not: a daemon's time never goes back, so once it has sat
 * idle at the wall clock, the clocks that entries appended later with past
 * IDs start are due at once and their in-time answers count as late
 * (stats:late_events_total; SPEC "Time" and the README say to import
 * history into an empty stream or allow lateness).
 * Once all three have read every entry and published a few rounds, every
 * kpi:, elapsed_ms:, compliance:, met:, breached: and response_ms: key of T
 * and of K must equal A's: the same key tails, the same values.
 *
 * Why the outcomes cannot depend on when each daemon runs. The entries
 * carry their times in their IDs (XADD <ms>-*, in time order, as the README
 * says to import history), so every decision follows the entries' arrival
 * times, except that a daemon that has read everything there is lets the
 * wall clock decide the deadlines of running clocks (SPEC "Time"). T and K
 * sit idle between parts, so the history is laid out so that such a wall
 * clock decision is the one A takes from the next entries too:
 *   - events only in three regions, relative to the generation time now:
 *     R1 [-200m, -130m), R2 [-100m, -85m), R3 [-45m, -35m); the parts fed
 *     separately are exactly these regions;
 *   - the fast tier's targets are at most 20m (response 10m, next_reply 10m,
 *     resolution 20m; pausing only holds the resolution clock, and a resumed
 *     clock is due at most its target after the resume), so every clock
 *     running at the end of a region is due before the next region starts
 *     (the gaps are 30m and 40m): idle T/K breach it by the wall clock, A by
 *     the next region's first entry, before any event that could stop it;
 *     and the last region's clocks are due by -15m, long past when any of
 *     them runs;
 *   - the slow tier's targets (response 8h, next_reply 4h, resolution 24h)
 *     put its deadlines after +40m: running in all three, decided by none;
 *   - the 1h window's edge (-60m, moving by the test's minute or two and in
 *     1-minute buckets) falls where there is neither an event nor a
 *     deadline ((-65m, -45m)), so no outcome leaves the window between one
 *     daemon's publish round and another's; the 24h window holds everything.
 * The comparison is still retried a few times a second apart (publish
 * rounds are not simultaneous); a difference that persists fails, printing
 * the first differing key and every difference.
 *
 * SLAWATCH_RESTART_SEED picks another history; SLAWATCH_RESTART_HOLD=<s>
 * keeps redis-server up that long after a difference, to look. Every wait
 * is bounded. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "harness.h"

#define WAIT_MS 20000
#define MIN (60 * 1000LL)
#define NTICKETS 50
#define MAXEV 1200

enum { A, T, K, NDAEMON };
static const char *const prefix[NDAEMON] = { "ra:", "rt:", "rk:" };
static const char *const dname[NDAEMON] = { "A (whole history)", "T (SIGTERM restart)",
                                            "K (kill -9 restart)" };

struct env {
    struct h_redis redis;
    redisContext *c;
    char *cfg[NDAEMON];
    char dir[NDAEMON][300];
    pid_t pid[NDAEMON];
};

static int
setup_with(void **state, const char *lateness)
{
    struct env *e = calloc(1, sizeof(*e));
    char text[2048];
    if (h_redis_start(&e->redis, NULL) < 0)
        return -1;
    e->c = h_connect(e->redis.port);
    for (int d = 0; d < NDAEMON; d++) {
        snprintf(e->dir[d], sizeof(e->dir[d]), "%s/d%d", e->redis.dir, d);
        mkdir(e->dir[d], 0755);
        snprintf(text, sizeof(text),
                 "redis: { host: 127.0.0.1, port: %d, prefix: \"%s\" }\n"
                 "events: { allowed_lateness: %s }\n"
                 "tiers:\n"
                 "  fast: { response: 10m, resolution: 20m, next_reply: 10m }\n"
                 "  slow: { response: 8h, resolution: 24h, next_reply: 4h }\n"
                 "policies:\n"
                 "  - { match: { priority: high }, tier: fast }\n"
                 "  - { tier: slow }\n"
                 "compliance:\n"
                 "  windows: [1h, 24h]\n"
                 "  by: [queue]\n"
                 "  publish_every: 1s\n"
                 "state: { checkpoint_every: 1s }\n"
                 "log: { level: info }\n",
                 e->redis.port, prefix[d], lateness);
        e->cfg[d] = h_write_file(e->dir[d], "slawatch.yaml", text);
    }
    *state = e;
    return e->c ? 0 : -1;
}

static int
setup_lateness(void **state)
{
    return setup_with(state, "1d");
}

static int
setup_strict(void **state)
{
    return setup_with(state, "0s");
}

static int
teardown(void **state)
{
    struct env *e = *state;
    for (int d = 0; d < NDAEMON; d++) {
        if (e->pid[d] > 0)
            h_daemon_stop(e->pid[d], SIGKILL, 2000);
        free(e->cfg[d]);
    }
    if (e->c)
        redisFree(e->c);
    h_redis_stop(&e->redis);
    free(e);
    return 0;
}

static void
start(struct env *e, int d)
{
    e->pid[d] = h_daemon_start(e->cfg[d], e->dir[d]);
    assert_true(e->pid[d] > 0);
}

static void
dump_logs(struct env *e)
{
    for (int d = 0; d < NDAEMON; d++) {
        fprintf(stderr, "---- %s ----\n", dname[d]);
        h_dump_file(e->dir[d], "daemon.log");
    }
}

/* ---- the history ------------------------------------------------------ */

struct ev {
    int64_t at;
    int ticket, order;
    const char *type;
    const char *priority, *queue, *score;
};

static struct ev evs[MAXEV];
static int nev;

static uint64_t rng;

static uint64_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double
frand(void)
{
    return (double)(rnd() >> 11) / (double)(1ULL << 53);
}

static const char *
pick(const char *const *v, int n)
{
    return v[rnd() % (uint64_t)n];
}

/* Virtual time v in [0, 1) onto the three regions (ms before now0). */
static int64_t
at_of(int64_t now0, double v)
{
    if (v < 0.45)
        return now0 - 200 * MIN + (int64_t)(v / 0.45 * 70 * MIN);
    if (v < 0.7)
        return now0 - 100 * MIN + (int64_t)((v - 0.45) / 0.25 * 15 * MIN);
    return now0 - 45 * MIN + (int64_t)((v - 0.7) / 0.3 * 10 * MIN);
}

static int
cmp_ev(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void
add(int64_t now0, double v, int ticket, const char *type)
{
    assert_true(nev < MAXEV);
    evs[nev] = (struct ev){ at_of(now0, v), ticket, nev, type, NULL, NULL, NULL };
    nev++;
}

static void
generate(int64_t now0)
{
    static const char *const queues[] = { "billing", "sales", "tech", NULL };
    static const char *const scores[] = { "1", "2", "3", "4", "5", "good", "bad" };
    nev = 0;
    for (int t = 0; t < NTICKETS; t++) {
        double v = frand() * 0.85;
        add(now0, v, t, "opened");
        evs[nev - 1].priority = frand() < 0.6 ? "high" : "normal";
        evs[nev - 1].queue = pick(queues, 4);
        bool resolved = false, paused = false, closed = false;
        int n = 4 + (int)(rnd() % 12);
        for (int i = 0; i < n; i++) {
            /* Mostly small steps (in time and in answer delays: met), now
             * and then a long one (late: breached). */
            v += frand() < 0.8 ? 0.001 + frand() * 0.01 : 0.02 + frand() * 0.08;
            if (v >= 1)
                break;
            double r = frand();
            const char *type;
            if (closed) {
                if (r < 0.5)
                    break;
                type = "rated";
            } else if (resolved) {
                type = r < 0.35 ? "reopened" : r < 0.65 ? "rated" : r < 0.85 ? "closed"
                                                                            : "commented";
            } else if (paused) {
                type = r < 0.6 ? "resumed" : r < 0.8 ? "commented" : "responded";
            } else {
                type = r < 0.3    ? "responded"
                       : r < 0.5  ? "commented"
                       : r < 0.6  ? "paused"
                       : r < 0.7  ? "updated"
                       : r < 0.85 ? "resolved"
                       : r < 0.9  ? "rated"
                                  : "closed";
            }
            add(now0, v, t, type);
            struct ev *x = &evs[nev - 1];
            if (strcmp(type, "rated") == 0)
                x->score = pick(scores, 7);
            else if (strcmp(type, "updated") == 0)
                x->queue = pick(queues, 3);
            else if (strcmp(type, "paused") == 0)
                paused = true;
            else if (strcmp(type, "resumed") == 0)
                paused = false;
            else if (strcmp(type, "resolved") == 0)
                resolved = true;
            else if (strcmp(type, "reopened") == 0)
                resolved = false;
            else if (strcmp(type, "closed") == 0)
                closed = true;
        }
    }
    qsort(evs, (size_t)nev, sizeof(evs[0]), cmp_ev);
}

/* The first event at or after now0 + off. */
static int
first_at(int64_t now0, int64_t off)
{
    int i = 0;
    while (i < nev && evs[i].at < now0 + off)
        i++;
    return i;
}

/* Appends XADD <prefix>events <ms>-* ... for evs[i] to the pipeline. */
static void
append_xadd(redisContext *c, const char *pfx, int i)
{
    char key[64], id[32], ts[24], ticket[16];
    const char *argv[20];
    int argc = 0;
    const struct ev *v = &evs[i];
    snprintf(key, sizeof(key), "%sevents", pfx);
    snprintf(id, sizeof(id), "%lld-*", (long long)v->at);
    snprintf(ts, sizeof(ts), "%lld", (long long)v->at);
    snprintf(ticket, sizeof(ticket), "R%d", v->ticket);
    argv[argc++] = "XADD";
    argv[argc++] = key;
    argv[argc++] = id;
    argv[argc++] = "type";
    argv[argc++] = v->type;
    argv[argc++] = "ticket";
    argv[argc++] = ticket;
    argv[argc++] = "ts";
    argv[argc++] = ts;
    if (v->priority) {
        argv[argc++] = "priority";
        argv[argc++] = v->priority;
    }
    if (v->queue) {
        argv[argc++] = "queue";
        argv[argc++] = v->queue;
    }
    if (v->score) {
        argv[argc++] = "score";
        argv[argc++] = v->score;
    }
    assert_int_equal(redisAppendCommandArgv(c, argc, argv, NULL), REDIS_OK);
}

/* Writes evs[from, to) to <prefix>events in one MULTI/EXEC: a running
 * daemon sees the whole part at once, never a piece of it. */
static void
feed(struct env *e, const char *pfx, int from, int to)
{
    redisReply *r;
    if (from >= to)
        return;
    assert_int_equal(redisAppendCommand(e->c, "MULTI"), REDIS_OK);
    for (int i = from; i < to; i++)
        append_xadd(e->c, pfx, i);
    assert_int_equal(redisAppendCommand(e->c, "EXEC"), REDIS_OK);
    for (int i = from; i < to + 2; i++) {
        assert_int_equal(redisGetReply(e->c, (void **)&r), REDIS_OK);
        assert_true(r->type != REDIS_REPLY_ERROR);
        if (i == to + 1) {
            assert_int_equal(r->type, REDIS_REPLY_ARRAY);
            assert_int_equal((int)r->elements, to - from);
            for (size_t j = 0; j < r->elements; j++)
                if (r->element[j]->type != REDIS_REPLY_STRING)
                    fail_msg("XADD %s: %s", pfx,
                             r->element[j]->type == REDIS_REPLY_ERROR ? r->element[j]->str
                                                                      : "?");
        }
        freeReplyObject(r);
    }
}

/* ---- waits ------------------------------------------------------------ */

/* The group's last delivered ID is the stream's last and nothing is
 * pending: every entry was applied and acknowledged. */
static bool
applied_all(redisContext *c, const char *pfx)
{
    char key[64];
    snprintf(key, sizeof(key), "%sevents", pfx);
    redisReply *last = redisCommand(c, "XREVRANGE %s + - COUNT 1", key);
    redisReply *g = redisCommand(c, "XINFO GROUPS %s", key);
    bool ok = false;
    if (last && last->type == REDIS_REPLY_ARRAY && last->elements == 1 && g &&
        g->type == REDIS_REPLY_ARRAY && g->elements == 1) {
        const char *want = last->element[0]->element[0]->str;
        const redisReply *grp = g->element[0];
        long long pending = -1;
        const char *delivered = NULL;
        for (size_t i = 0; i + 1 < grp->elements; i += 2) {
            const char *f = grp->element[i]->str;
            if (strcmp(f, "pending") == 0)
                pending = grp->element[i + 1]->integer;
            else if (strcmp(f, "last-delivered-id") == 0)
                delivered = grp->element[i + 1]->str;
        }
        ok = pending == 0 && delivered && strcmp(delivered, want) == 0;
    }
    if (last)
        freeReplyObject(last);
    if (g)
        freeReplyObject(g);
    return ok;
}

static void
wait_applied(struct env *e, int d)
{
    for (int waited = 0; waited <= WAIT_MS; waited += 5) {
        if (applied_all(e->c, prefix[d]))
            return;
        h_sleep_ms(5);
    }
    dump_logs(e);
    fail_msg("%s did not apply its stream in time", dname[d]);
}

static void
wait_events_total(struct env *e, int d, long long want)
{
    char key[64];
    long long got = -1;
    snprintf(key, sizeof(key), "%sstats:events_total", prefix[d]);
    if (!h_wait_int(e->c, key, want, WAIT_MS)) {
        h_get_int(e->c, key, &got);
        dump_logs(e);
        fail_msg("%s: want %lld, got %lld", key, want, got);
    }
}

/* ---- the published keys ----------------------------------------------- */

static const char *const families[] = { "kpi:", "elapsed_ms:", "compliance:", "met:",
                                        "breached:", "response_ms:" };

struct kv {
    char *tail, *value;
};

static int
cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct kv *)a)->tail, ((const struct kv *)b)->tail);
}

static void
kv_free(struct kv *v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i].tail);
        free(v[i].value);
    }
    free(v);
}

/* Every key of the families under pfx, sorted by tail, with its value. */
static int
snapshot_keys(redisContext *c, const char *pfx, struct kv **out)
{
    char cursor[32] = "0", match[64];
    struct kv *v = NULL;
    int n = 0, cap = 0;
    snprintf(match, sizeof(match), "%s*", pfx);
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, match);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            const char *tail = key + strlen(pfx);
            bool want = false;
            for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
                want |= strncmp(tail, families[f], strlen(families[f])) == 0;
            if (!want)
                continue;
            redisReply *g = redisCommand(c, "GET %s", key);
            assert_non_null(g);
            if (g->type == REDIS_REPLY_STRING) {
                if (n == cap) {
                    cap = cap ? 2 * cap : 256;
                    v = realloc(v, (size_t)cap * sizeof(*v));
                }
                v[n].tail = strdup(tail);
                v[n].value = strdup(g->str);
                n++;
            }
            freeReplyObject(g);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    qsort(v, (size_t)n, sizeof(*v), cmp_kv);
    *out = v;
    return n;
}

/* Differences between a and b (printed when verbose); 0: the same. */
static int
diff_keys(const struct kv *a, int na, const struct kv *b, int nb, const char *bname,
          bool verbose)
{
    int i = 0, j = 0, ndiff = 0;
    while (i < na || j < nb) {
        int c = i >= na ? 1 : j >= nb ? -1 : strcmp(a[i].tail, b[j].tail);
        if (c == 0 && strcmp(a[i].value, b[j].value) == 0) {
            i++;
            j++;
            continue;
        }
        if (verbose && ndiff < 40) {
            if (c == 0)
                fprintf(stderr, "  %s%s: A %s, %s %s\n", ndiff ? "" : "FIRST ", a[i].tail,
                        a[i].value, bname, b[j].value);
            else if (c < 0)
                fprintf(stderr, "  %s%s: A %s, %s (absent)\n", ndiff ? "" : "FIRST ",
                        a[i].tail, a[i].value, bname);
            else
                fprintf(stderr, "  %s%s: A (absent), %s %s\n", ndiff ? "" : "FIRST ",
                        b[j].tail, bname, b[j].value);
        }
        ndiff++;
        if (c <= 0)
            i++;
        if (c >= 0)
            j++;
    }
    return ndiff;
}

static const char *
lookup(const struct kv *v, int n, const char *tail)
{
    struct kv key = { (char *)tail, NULL };
    const struct kv *f = bsearch(&key, v, (size_t)n, sizeof(*v), cmp_kv);
    return f ? f->value : NULL;
}

static int
count_prefix(const struct kv *v, int n, const char *start, const char *contains)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += strncmp(v[i].tail, start, strlen(start)) == 0 &&
             (contains == NULL || strstr(v[i].tail, contains) != NULL);
    return k;
}

/* A's keys are the non-trivial set the comparison is about. */
static void
check_nontrivial(const struct kv *a, int na)
{
    static const char *const must[] = {
        "kpi:all:fcr:24h",
        "kpi:all:csat:24h",
        "kpi:all:csat_mean:24h",
        "kpi:all:csat_count:24h",
        "kpi:all:reopen_rate:24h",
        "kpi:fast:fcr:24h",
        "kpi:all:fcr:24h:queue=billing",
        "elapsed_ms:fast:next_reply:24h:p50",
        "elapsed_ms:all:next_reply:24h:mean",
        "elapsed_ms:fast:resolution:24h:p90",
        "compliance:fast:response:24h",
        "compliance:fast:response:1h",
        "compliance:all:resolution:24h:queue=sales",
        "met:fast:next_reply:24h",
        "response_ms:fast:24h:mean",
    };
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
        if (lookup(a, na, must[i]) == NULL)
            fail_msg("A has no %s (%d keys): the history is too thin to compare", must[i],
                     na);
    assert_true(count_prefix(a, na, "kpi:", ":queue=") >= 10);
    assert_true(count_prefix(a, na, "kpi:", ":1h") >= 1);
    assert_true(count_prefix(a, na, "elapsed_ms:", ":next_reply:") >= 8);
    /* Both outcomes occur, by late stops and by the clock. */
    long long met = strtoll(lookup(a, na, "met:fast:response:24h"), NULL, 10);
    long long br = strtoll(lookup(a, na, "breached:fast:response:24h"), NULL, 10);
    long long br_res = strtoll(lookup(a, na, "breached:fast:resolution:24h"), NULL, 10);
    fprintf(stderr, "A: %d keys; fast response met %lld breached %lld; resolution "
                    "breached %lld; fcr %s csat %s reopen_rate %s\n",
            na, met, br, br_res, lookup(a, na, "kpi:all:fcr:24h"),
            lookup(a, na, "kpi:all:csat:24h"), lookup(a, na, "kpi:all:reopen_rate:24h"));
    assert_true(met > 0 && br > 0 && br_res > 0);
}

/* Compares T and K with A, a few rounds a second apart before failing. */
static void
compare(struct env *e)
{
    struct kv *s[NDAEMON];
    int n[NDAEMON], diff[NDAEMON] = { 0 };
    for (int round = 0;; round++) {
        for (int d = 0; d < NDAEMON; d++)
            n[d] = snapshot_keys(e->c, prefix[d], &s[d]);
        diff[T] = diff_keys(s[A], n[A], s[T], n[T], "T", false);
        diff[K] = diff_keys(s[A], n[A], s[K], n[K], "K", false);
        if ((diff[T] == 0 && diff[K] == 0) || round == 5)
            break;
        for (int d = 0; d < NDAEMON; d++)
            kv_free(s[d], n[d]);
        h_sleep_ms(1100);
    }
    check_nontrivial(s[A], n[A]);
    for (int d = T; d <= K; d++) {
        if (diff[d] == 0)
            continue;
        fprintf(stderr, "%s differs from A in %d of %d/%d keys:\n", dname[d], diff[d], n[A],
                n[d]);
        diff_keys(s[A], n[A], s[d], n[d], d == T ? "T" : "K", true);
    }
    int dt = diff[T], dk = diff[K];
    for (int d = 0; d < NDAEMON; d++)
        kv_free(s[d], n[d]);
    if ((dt || dk) && getenv("SLAWATCH_RESTART_HOLD")) {
        fprintf(stderr, "holding: redis on port %d, dir %s\n", e->redis.port, e->redis.dir);
        h_sleep_ms(atoi(getenv("SLAWATCH_RESTART_HOLD")) * 1000);
    }
    if (dt || dk)
        fail_msg("a restart changed the published keys (T: %d, K: %d differences)", dt, dk);
}

/* The count of the last "replayed N events after the checkpoint" line of
 * dir/daemon.log, or -1. */
static long
last_replayed(const char *dir)
{
    char path[400], line[1024];
    long n = -1;
    snprintf(path, sizeof(path), "%s/daemon.log", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "replayed ");
        if (p && strstr(p, "after the checkpoint"))
            n = strtol(p + 9, NULL, 10);
    }
    fclose(f);
    return n;
}

/* ---- the test --------------------------------------------------------- */

/* The history, generated and split into its regions; returns the seed. */
static uint64_t
history(int *r2, int *r3)
{
    const char *s = getenv("SLAWATCH_RESTART_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 0) : 0x5eed14;
    rng = seed ? seed : 1;
    int64_t now0 = h_now_ms() / 1000 * 1000;
    generate(now0);
    *r2 = first_at(now0, -100 * MIN);
    *r3 = first_at(now0, -45 * MIN);
    fprintf(stderr, "seed %#llx: %d events over %d tickets: R1 %d, R2 %d, R3 %d\n",
            (unsigned long long)seed, nev, NTICKETS, *r2, *r3 - *r2, nev - *r3);
    assert_true(nev >= 300 && *r2 >= 100 && *r3 - *r2 >= 50 && nev - *r3 >= 50);
    assert_true(evs[*r2 - 1].at < now0 - 130 * MIN && evs[*r3 - 1].at < now0 - 85 * MIN &&
                evs[nev - 1].at < now0 - 35 * MIN);
    return seed;
}

/* T and K as the head comment says; with `control`, A is fed the same parts
 * at the same points as T (R1; R2 once T is back; R3 once K is down) and is
 * never restarted, otherwise A gets everything before it starts. */
static void
run(struct env *e, bool control)
{
    int r2, r3;
    history(&r2, &r3);
    feed(e, prefix[A], 0, control ? r2 : nev);
    feed(e, prefix[T], 0, r2);
    feed(e, prefix[K], 0, r2);
    for (int d = 0; d < NDAEMON; d++)
        start(e, d);
    for (int d = 0; d < NDAEMON; d++)
        wait_applied(e, d);

    /* T: SIGTERM after R1 (its final checkpoint), R2 and R3 while down (the
     * control: R2 now, R3 below). */
    wait_events_total(e, T, r2);
    assert_int_equal(h_daemon_stop(e->pid[T], SIGTERM, 8000), 0);
    e->pid[T] = 0;
    feed(e, prefix[T], r2, control ? r3 : nev);
    start(e, T);
    if (control) {
        feed(e, prefix[A], r2, r3);
        wait_applied(e, A);
        wait_applied(e, T);
    }

    /* K: a periodic checkpoint of R1, then R2 applied live, kill -9 at once
     * (before the next checkpoint: the log tells), R3 while down. */
    wait_events_total(e, K, r2);
    h_sleep_ms(1500);
    feed(e, prefix[K], r2, r3);
    wait_applied(e, K);
    assert_int_equal(h_daemon_stop(e->pid[K], SIGKILL, 2000), 128 + SIGKILL);
    e->pid[K] = 0;
    feed(e, prefix[K], r3, nev);
    if (control) {
        feed(e, prefix[A], r3, nev);
        feed(e, prefix[T], r3, nev);
    }
    start(e, K);

    for (int d = 0; d < NDAEMON; d++)
        wait_events_total(e, d, nev);
    for (int d = 0; d < NDAEMON; d++)
        wait_applied(e, d);
    h_sleep_ms(2500); /* two publish rounds after the last entry */
    long replayed = last_replayed(e->dir[K]);
    fprintf(stderr, "K: replayed %ld events after its checkpoint at the restart\n", replayed);
    compare(e);
    if (replayed <= nev - r3) {
        dump_logs(e);
        fail_msg("K replayed %ld events after its checkpoint: the kill -9 came too late",
                 replayed);
    }
}

/* With a day of lateness no clock is decided by the clock: every outcome
 * is its stopping event's ts against the deadline, however the history is
 * cut, so A may read it whole. */
static void
test_restart_changes_nothing(void **state)
{
    run(*state, false);
}

/* Without lateness clocks breach by arrival and by the wall clock, and a
 * daemon's time never goes back: once it has sat idle at the wall clock,
 * clocks started by entries appended later with IDs in the past are due at
 * once (SPEC "Time"; README: import into an empty stream, or allow
 * lateness), so reading the history whole is not the same as reading it in
 * parts. The control A is therefore fed the same parts at the same points
 * as T, without a restart: only the restarts differ. */
static void
test_restart_changes_nothing_strict(void **state)
{
    run(*state, true);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restart_changes_nothing, setup_lateness, teardown),
        cmocka_unit_test_setup_teardown(test_restart_changes_nothing_strict, setup_strict,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
