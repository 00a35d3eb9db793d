/*
 * bench_compliance.c - the cost of one compliance publish round as the
 * number of open tickets grows: it must stay flat, because the round reads
 * running totals (compliance.c) and deadline counts (atrisk.c) and never
 * the tickets.
 *
 * In one process: the real core with N open tickets spread over four tiers
 * and BENCH_QUEUES queue values (compliance.by: [queue]), outcomes feeding
 * the windows, the core's deadline listener feeding the at-risk counts;
 * then, at each size, BENCH_ROUNDS rounds of report_build (advance the
 * windows and at-risk counts, build MSET + DEL) with the clock moving by
 * publish_every, each also sent to a private redis-server as one pipelined
 * round trip (MSET, DEL) and timed until both replies are in.
 *
 * Printed per size: the build time per round, the round trip, the number of
 * keys, and the memory of the windows and at-risk counts. Target: the
 * build time at the largest size within 3x the smallest (plus 1 ms); a
 * miss says MISSED but does not fail the run. The exit status is non-zero
 * only when something did not work.
 *
 *   BENCH_MAX_TICKETS  largest size (default 1000000; sizes 10k, 100k, ...)
 *   BENCH_QUEUES       distinct queue values (default 100)
 *   BENCH_ROUNDS       rounds timed per size (default 20)
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

static int
apply(enum ev_type type, const char *id, const char *priority, const char *queue)
{
    struct sla_event ev;
    const char *reason;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
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
    char yaml[1024], id[32], queue[32];

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    snprintf(yaml, sizeof(yaml),
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
    struct core_sink cb = { .outcome = on_outcome };
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

    /* History: a week of outcomes over every queue, so every breakdown
     * value has series in every window. */
    fake_now = T0 - 7 * 24 * 3600 * 1000LL;
    for (long i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "H%ld", i);
        snprintf(queue, sizeof(queue), "q%ld", i % queues);
        fake_now += 30000;
        if (apply(EVT_OPENED, id, prios[i % 4], queue) < 0 ||
            (i % 7 != 0 && apply(EVT_RESPONDED, id, NULL, NULL) < 0) ||
            apply(EVT_CLOSED, id, NULL, NULL) < 0)
            return 1;
    }
    fake_now = T0;
    core_advance(core, fake_now);

    printf("publish round (build MSET+DEL, then one pipelined round trip), %ld queue "
           "values, windows 1h/24h/7d, %ld rounds per size\n", queues, rounds);
    printf("%12s %14s %14s %8s %12s\n", "open tickets", "build ms/round", "rtt ms/round",
           "keys", "memory KiB");
    long open = 0;
    double first_ms = -1, last_ms = 0;
    int failures = 0;
    for (long size = 10000; size <= max_tickets; size *= 10) {
        for (; open < size; open++) {
            snprintf(id, sizeof(id), "T%ld", open);
            snprintf(queue, sizeof(queue), "q%ld", open % queues);
            /* Opened over the last hour: deadlines from now to 5 days on. */
            fake_now = T0 - 3600 * 1000LL + open * 3600 * 1000LL / max_tickets;
            if (apply(EVT_OPENED, id, prios[open % 4], queue) < 0) {
                fprintf(stderr, "bench_compliance: cannot open ticket %ld\n", open);
                failures++;
                break;
            }
        }
        double build = 0, rtt = 0;
        size_t keys = 0;
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
            report_cmds_free(&cmds);
        }
        build /= (double)rounds;
        rtt /= (double)rounds;
        size_t mem = cmp_memory(report_compliance(rp)) + atrisk_memory(report_atrisk(rp));
        printf("%12ld %14.3f %14.3f %8zu %12zu\n", open, build, rtt, keys, mem / 1024);
        fflush(stdout);
        if (first_ms < 0)
            first_ms = build;
        last_ms = build;
    }
    double limit = first_ms * TARGET_FACTOR + TARGET_SLACK_MS;
    printf("target: build time at %ld tickets <= %.1fx the time at 10000 + %.0f ms "
           "(%.3f ms): %.3f ms %s\n", open, TARGET_FACTOR, TARGET_SLACK_MS, limit, last_ms,
           last_ms <= limit ? "ok" : "MISSED");

    redisFree(rc);
    h_redis_stop(&redis_srv);
    core_free(core);
    report_free_state(rp);
    cfg_free(cfg);
    return failures ? 1 : 0;
}
