/*
 * bench_compliance.c - the cost of one compliance publish round as the
 * number of open tickets grows: it must stay flat, because the round reads
 * running totals (compliance.c) and deadline counts (atrisk.c) and never
 * the tickets.
 *
 * In one process: the real core with N open tickets spread over four tiers
 * (each with a response, resolution and next_reply target) and
 * BENCH_QUEUES queue values (compliance.by: [queue]), outcomes and the
 * core's KPI facts feeding the windows, the core's deadline listener
 * feeding the at-risk counts. Before them, a week of 20,000 tickets
 * (opened, answered, a customer message and the next reply for a third,
 * resolved, a tenth reopened and resolved again, rated, half of those
 * rated again, closed), so every queue has ratio, KPI and elapsed-time
 * series; half of the open tickets wait in a next_reply cycle. Then, at
 * each size, BENCH_ROUNDS rounds of report_build (advance the windows and
 * at-risk counts, build MSET + DEL) with the clock moving by
 * publish_every, each also sent to a private redis-server as one pipelined
 * round trip (MSET, DEL) and timed until both replies are in.
 *
 * Printed per size: the build time per round, the round trip, the number of
 * keys (of which kpi: and elapsed_ms:), and the memory of the windows
 * (cmp_memory) and of the windows and at-risk counts together. Targets:
 * the build time at the largest size within 3x the smallest (plus 1 ms),
 * and at most 3 ms; a miss says MISSED but does not fail the run. The exit
 * status is non-zero only when something did not work.
 *
 *   BENCH_MAX_TICKETS  largest size (default 1000000; sizes 10k, 100k, ...)
 *   BENCH_QUEUES       distinct queue values (default 100)
 *   BENCH_ROUNDS       rounds timed per size (default 20)
 *   BENCH_SPREAD       1: every queue has tickets of every tier (default 0:
 *                      queue i gets the priority i % 4, as before v2)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../integration/harness.h"
#include "slawatch/atrisk.h"
#include "slawatch/compliance.h"
#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/report.h"

#define T0 1795000000000LL
#define TARGET_FACTOR 3.0
#define TARGET_SLACK_MS 1.0
#define TARGET_ABS_MS 3.0

static struct h_redis redis_srv;
static int64_t fake_now = T0;
static struct report *rp;
static struct core *core;

static void
on_signal(int sig)
{
    if (redis_srv.pid > 0)
        kill(redis_srv.pid, SIGKILL);
    _exit(128 + sig);
}

static long
env_long(const char *name, long def, long min, long max)
{
    const char *s = getenv(name);
    char *end;
    if (s == NULL || *s == '\0')
        return def;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) {
        fprintf(stderr, "bench_compliance: %s must be %ld..%ld\n", name, min, max);
        exit(64);
    }
    return v;
}

static int64_t
wall(void *arg)
{
    (void)arg;
    return fake_now;
}

static void
on_outcome(void *arg, const struct sla_outcome *o)
{
    (void)arg;
    report_feed_outcome(rp, core, o);
}

static long kpi_facts;

static void
on_kpi(void *arg, const struct sla_kpi *k)
{
    (void)arg;
    kpi_facts++;
    report_feed_kpi(rp, k);
}

static uint8_t score_of_event;

static int
apply(enum ev_type type, const char *id, const char *priority, const char *queue)
{
    struct sla_event ev;
    const char *reason;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.score = score_of_event;
    ev.ticket = id;
    ev.ticket_len = strlen(id);
    ev.ts_ms = fake_now;
    ev.arrival_ms = fake_now;
    if (priority) {
        ev.attr[ATTR_PRIORITY] = priority;
        ev.attr_len[ATTR_PRIORITY] = strlen(priority);
    }
    if (queue) {
        ev.attr[ATTR_QUEUE] = queue;
        ev.attr_len[ATTR_QUEUE] = strlen(queue);
    }
    return core_apply(core, &ev, &reason);
}

static const char *const prios[] = { "urgent", "high", "normal", "low" };

/* Keys of a round (MSET keys and DEL arguments) starting with `family`. */
static size_t
family_keys(const struct report_cmds *cmds, const char *family)
{
    size_t n = 0, len = strlen(family);
    for (size_t i = 1; i < cmds->mset.n; i += 2)
        n += strncmp(cmds->mset.argv[i], family, len) == 0;
    for (size_t i = 1; i < cmds->del.n; i++)
        n += strncmp(cmds->del.argv[i], family, len) == 0;
    return n;
}

/* Sends MSET and DEL pipelined and waits for both replies. */
static int
round_trip(redisContext *c, const struct report_cmds *cmds)
{
    int sent = 0;
    if (redisAppendCommandArgv(c, (int)cmds->mset.n, cmds->mset.argv, cmds->mset.lens) !=
        REDIS_OK)
        return -1;
    sent++;
    if (cmds->del.n > 1) {
        if (redisAppendCommandArgv(c, (int)cmds->del.n, cmds->del.argv, cmds->del.lens) !=
            REDIS_OK)
            return -1;
        sent++;
    }
    for (int i = 0; i < sent; i++) {
        void *reply;
        if (redisGetReply(c, &reply) != REDIS_OK)
            return -1;
        int bad = ((redisReply *)reply)->type == REDIS_REPLY_ERROR;
        freeReplyObject(reply);
        if (bad)
            return -1;
    }
    return 0;
}

int
main(void)
{
    long max_tickets = env_long("BENCH_MAX_TICKETS", 1000000, 10000, 100000000);
    long queues = env_long("BENCH_QUEUES", 100, 1, 100000);
    long rounds = env_long("BENCH_ROUNDS", 20, 1, 100000);
    long spread = env_long("BENCH_SPREAD", 0, 0, 1);
    char yaml[1024], id[32], queue[32];

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    snprintf(yaml, sizeof(yaml),
             "tiers:\n"
             "  instant: { response: 5m, resolution: 4h, next_reply: 30m, warn: [80%%] }\n"
             "  1h: { response: 1h, resolution: 24h, next_reply: 2h, warn: [80%%] }\n"
             "  4h: { response: 4h, resolution: 3d, next_reply: 8h }\n"
             "  24h: { response: 24h, resolution: 5d, next_reply: 1d }\n"
             "policies:\n"
             "  - { match: { priority: urgent }, tier: instant }\n"
             "  - { match: { priority: high }, tier: 1h }\n"
             "  - { match: { priority: normal }, tier: 4h }\n"
             "  - { tier: 24h }\n"
             "compliance:\n"
             "  windows: [1h, 24h, 7d]\n"
             "  by: [queue]\n"
             "  max_values: %ld\n"
             "  publish_every: 10s\n",
             queues);
    struct config *cfg = cfg_load_string("bench.yaml", yaml, strlen(yaml), stderr);
    if (cfg == NULL)
        return 1;
    rp = report_new(cfg, fake_now);
    struct core_sink cb = { .outcome = on_outcome, .kpi = on_kpi };
    core = core_new(cfg, wall, NULL, &cb);
    struct core_sink risk = { .deadline = atrisk_change, .arg = rp ? report_atrisk(rp) : NULL };
    if (rp == NULL || core == NULL || core_add_sink(core, &risk) < 0) {
        fprintf(stderr, "bench_compliance: out of memory\n");
        return 1;
    }
    if (h_redis_start(&redis_srv, NULL) < 0) {
        fprintf(stderr, "bench_compliance: cannot start redis-server\n");
        return 1;
    }
    redisContext *rc = h_connect(redis_srv.port);
    if (rc == NULL) {
        h_redis_stop(&redis_srv);
        return 1;
    }

    /* History: a week of tickets over every queue, so every breakdown
     * value has ratio, KPI and elapsed-time series in every window. */
    static const uint8_t scores[] = { 5, 4, 3, 5, 1, SCORE_GOOD, SCORE_BAD };
    fake_now = T0 - 7 * 24 * 3600 * 1000LL;
    for (long i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "H%ld", i);
        snprintf(queue, sizeof(queue), "q%ld", (spread ? i / 4 : i) % queues);
        fake_now = T0 - 7 * 24 * 3600 * 1000LL + i * 30000;
        int bad = apply(EVT_OPENED, id, prios[i % 4], queue) < 0;
        fake_now += 1000;
        bad |= i % 7 != 0 && apply(EVT_RESPONDED, id, NULL, NULL) < 0;
        if (i % 3 == 0) {
            fake_now += 1000;
            bad |= apply(EVT_COMMENTED, id, NULL, NULL) < 0;
            fake_now += 1000;
            bad |= apply(EVT_RESPONDED, id, NULL, NULL) < 0;
        }
        fake_now += 1000;
        bad |= apply(EVT_RESOLVED, id, NULL, NULL) < 0;
        if (i % 10 == 0) {
            fake_now += 1000;
            bad |= apply(EVT_REOPENED, id, NULL, NULL) < 0 ||
                   apply(EVT_RESOLVED, id, NULL, NULL) < 0;
        }
        for (long r = 0; r < 1 + i % 2; r++) {
            fake_now += 1000;
            score_of_event = scores[(i + r) % ARRAY_LEN(scores)];
            bad |= apply(EVT_RATED, id, NULL, NULL) < 0;
            score_of_event = SCORE_NONE;
        }
        bad |= apply(EVT_CLOSED, id, NULL, NULL) < 0;
        if (bad) {
            fprintf(stderr, "bench_compliance: history ticket %ld refused\n", i);
            return 1;
        }
    }
    fake_now = T0;
    core_advance(core, fake_now);
    if (kpi_facts == 0) {
        fprintf(stderr, "bench_compliance: the core told no KPI fact\n");
        return 1;
    }

    printf("publish round (build MSET+DEL, then one pipelined round trip), %ld queue "
           "values%s, windows 1h/24h/7d, metrics response/resolution/next_reply, KPIs, "
           "%ld rounds per size\n", queues, spread ? " over every tier" : "", rounds);
    printf("%12s %14s %14s %8s %6s %8s %10s %12s\n", "open tickets", "build ms/round",
           "rtt ms/round", "keys", "kpi:", "elapsed:", "cmp KiB", "memory KiB");
    long open = 0;
    double first_ms = -1, last_ms = 0;
    int failures = 0;
    for (long size = 10000; size <= max_tickets; size *= 10) {
        for (; open < size; open++) {
            snprintf(id, sizeof(id), "T%ld", open);
            snprintf(queue, sizeof(queue), "q%ld", open % queues);
            /* Opened over the last hour: deadlines from now to 5 days on. */
            fake_now = T0 - 3600 * 1000LL + open * 3600 * 1000LL / max_tickets;
            int bad = apply(EVT_OPENED, id, prios[open % 4], queue) < 0;
            if (open % 2 == 0) {
                /* Answered, then a customer message: a next_reply cycle. */
                fake_now += 1000;
                bad |= apply(EVT_RESPONDED, id, NULL, NULL) < 0;
                fake_now += 1000;
                bad |= apply(EVT_COMMENTED, id, NULL, NULL) < 0;
            }
            if (bad) {
                fprintf(stderr, "bench_compliance: cannot open ticket %ld\n", open);
                failures++;
                break;
            }
        }
        double build = 0, rtt = 0;
        size_t keys = 0, kpi_keys = 0, elapsed_keys = 0;
        for (long r = 0; r < rounds; r++) {
            struct report_cmds cmds;
            fake_now = T0 + (size / 10000) * 3600 * 1000LL + r * 10000;
            core_advance(core, fake_now);
            int64_t t0 = now_mono_us();
            if (report_build(rp, fake_now, &cmds) < 0) {
                failures++;
                report_cmds_free(&cmds);
                break;
            }
            report_commit(rp, &cmds);
            int64_t t1 = now_mono_us();
            if (round_trip(rc, &cmds) < 0) {
                fprintf(stderr, "bench_compliance: redis round trip failed\n");
                failures++;
            }
            int64_t t2 = now_mono_us();
            build += (double)(t1 - t0) / 1000.0;
            rtt += (double)(t2 - t1) / 1000.0;
            keys = (cmds.mset.n - 1) / 2 + (cmds.del.n - 1);
            kpi_keys = family_keys(&cmds, "sla:kpi:");
            elapsed_keys = family_keys(&cmds, "sla:elapsed_ms:");
            report_cmds_free(&cmds);
        }
        build /= (double)rounds;
        rtt /= (double)rounds;
        size_t cmem = cmp_memory(report_compliance(rp));
        size_t mem = cmem + atrisk_memory(report_atrisk(rp));
        printf("%12ld %14.3f %14.3f %8zu %6zu %8zu %10zu %12zu\n", open, build, rtt, keys,
               kpi_keys, elapsed_keys, cmem / 1024, mem / 1024);
        fflush(stdout);
        if (first_ms < 0)
            first_ms = build;
        last_ms = build;
    }
    double limit = first_ms * TARGET_FACTOR + TARGET_SLACK_MS;
    printf("target: build time at %ld tickets <= %.1fx the time at 10000 + %.0f ms "
           "(%.3f ms): %.3f ms %s\n", open, TARGET_FACTOR, TARGET_SLACK_MS, limit, last_ms,
           last_ms <= limit ? "ok" : "MISSED");
    printf("target: build time at %ld tickets <= %.0f ms: %.3f ms %s\n", open, TARGET_ABS_MS,
           last_ms, last_ms <= TARGET_ABS_MS ? "ok" : "MISSED");
    printf("KPI facts told by the core: %ld\n", kpi_facts);

    redisFree(rc);
    h_redis_stop(&redis_srv);
    core_free(core);
    report_free_state(rp);
    cfg_free(cfg);
    return failures ? 1 : 0;
}
