/*
 * bench_webhooks.c - webhook delivery figures of the real slawatchd against
 * a private redis-server and a loopback receiver in this process
 * (tests/integration/harness.c: evhttp on its own thread, always 200):
 *
 *   1. throughput: N tickets breach at the same instant, each escalated to
 *      one signed json webhook; deliveries per second at the receiver, from
 *      the first to the last, over keep-alive connections;
 *   2. lateness:   P probe tickets (no escalation) whose deadlines are
 *      spread over the seconds the N deliveries are in flight; late_ms of
 *      their breach entries in <prefix>breaches, and of the N breaches;
 *   3. delay:      from each of the N deadlines to its delivery (the last
 *      one waits for the whole queue).
 *
 * Each figure is printed with its target; a missed target says MISSED but
 * does not fail the run. The exit status is non-zero only when something
 * did not work. Every wait is bounded. Sizes come from the environment:
 *
 *   BENCH_DELIVERIES  tickets breaching at once (default 10000)
 *   BENCH_PROBES      probe tickets (default 500)
 *   BENCH_LEAD_MS     from sending the events to the deadline (default 4000)
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../integration/harness.h"

#define TARGET_RATE 5000.0
#define TARGET_PROBE_P99_MS 20
#define BURST_TARGET_MS 3000 /* tiers.burst.response below */
#define PROBE_TARGET_MS 5000 /* tiers.probe.response below */
#define PIPELINE 1000

static struct h_redis redis_srv;
static pid_t daemon_pid;
static struct h_http rx;
static int failures;

static void
cleanup(void)
{
    if (daemon_pid > 0)
        h_daemon_stop(daemon_pid, SIGTERM, 5000);
    daemon_pid = 0;
    if (rx.srv)
        h_http_stop(&rx);
    h_redis_stop(&redis_srv);
}

static void
on_signal(int sig)
{
    if (daemon_pid > 0)
        kill(daemon_pid, SIGKILL);
    if (redis_srv.pid > 0)
        kill(redis_srv.pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static long
env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

static int
cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static long long
pct(const long long *v, int n, double p)
{
    if (n == 0)
        return 0;
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static void
figure(const char *name, double value, const char *unit, const char *cmp, double target)
{
    bool ok = strcmp(cmp, ">=") == 0 ? value >= target : value <= target;
    printf("  %-34s %10.1f %-4s (target %s %.0f)%s\n", name, value, unit, cmp, target,
           ok ? "" : "  MISSED");
}

/* Sends `n` opened events for tickets prefix-i in tier `tier` with the
 * given ts, pipelined. */
static int
send_opened(redisContext *c, const char *prefix, int n, const char *tier,
            int64_t (*ts_of)(int i, void *), void *arg)
{
    for (int base = 0; base < n; base += PIPELINE) {
        int k = n - base < PIPELINE ? n - base : PIPELINE;
        for (int i = base; i < base + k; i++) {
            char id[32], ts[24];
            snprintf(id, sizeof(id), "%s%d", prefix, i);
            snprintf(ts, sizeof(ts), "%" PRId64, ts_of(i, arg));
            const char *argv[] = { "XADD", "bw:events", "*", "type", "opened", "ticket", id,
                                   "tier", tier, "ts", ts };
            redisAppendCommandArgv(c, 11, argv, NULL);
        }
        for (int i = 0; i < k; i++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL ||
                r->type != REDIS_REPLY_STRING) {
                if (r)
                    freeReplyObject(r);
                return -1;
            }
            freeReplyObject(r);
        }
    }
    return 0;
}

static int64_t burst_deadline;
static int64_t probe_first;
static int probe_spread_ms;
static int nprobes;

static int64_t
burst_ts(int i, void *arg)
{
    (void)i;
    (void)arg;
    return burst_deadline - BURST_TARGET_MS;
}

static int64_t
probe_ts(int i, void *arg)
{
    (void)arg;
    return probe_first + (int64_t)i * probe_spread_ms / (nprobes > 1 ? nprobes - 1 : 1) -
           PROBE_TARGET_MS;
}

int
main(void)
{
    int n = (int)env_long("BENCH_DELIVERIES", 10000);
    nprobes = (int)env_long("BENCH_PROBES", 500);
    int lead = (int)env_long("BENCH_LEAD_MS", 4000);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    if (h_redis_start(&redis_srv, NULL) < 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return 1;
    }
    if (h_http_start(&rx, NULL, NULL, false) < 0) {
        fprintf(stderr, "cannot start the receiver\n");
        cleanup();
        return 1;
    }
    redisContext *c = h_connect(redis_srv.port);
    char *secret = h_write_file(redis_srv.dir, "secret", "bench-secret\n");
    if (c == NULL || secret == NULL || chmod(secret, 0600) < 0) {
        fprintf(stderr, "cannot set up\n");
        cleanup();
        return 1;
    }
    free(secret);
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"bw:\" }\n"
             "events: { batch: 1000, max_clock_skew: 1m }\n"
             "tiers:\n"
             "  burst: { response: 3s }\n"
             "  probe: { response: 5s }\n"
             "escalations:\n"
             "  - { name: page, when: breach, tiers: [burst], notify: [main] }\n"
             "webhooks:\n"
             "  main: { url: \"http://127.0.0.1:%d/hook\", secret_file: secret, timeout: 5s,\n"
             "          retry: { attempts: 10, backoff: 200ms, max_backoff: 2s } }\n"
             "log: { level: notice }\n",
             redis_srv.port, rx.port);
    char *cfg = h_write_file(redis_srv.dir, "slawatch.yaml", yaml);
    daemon_pid = h_daemon_start(cfg, redis_srv.dir);
    free(cfg);
    if (!h_wait_group(c, "bw:events", "slawatch", 10000)) {
        fprintf(stderr, "daemon did not start\n");
        h_dump_file(redis_srv.dir, "daemon.log");
        cleanup();
        return 1;
    }

    /* The burst breaches at one instant; the probes' deadlines are spread
     * over the time the deliveries should take at the target rate, and a
     * little beyond. */
    burst_deadline = h_now_ms() + lead;
    probe_first = burst_deadline + 5;
    probe_spread_ms = (int)(n / TARGET_RATE * 1000) + 500;
    printf("bench_webhooks: %d deliveries at once, %d probes over %d ms\n", n, nprobes,
           probe_spread_ms);
    if (send_opened(c, "B-", n, "burst", burst_ts, NULL) < 0 ||
        send_opened(c, "P-", nprobes, "probe", probe_ts, NULL) < 0) {
        fprintf(stderr, "cannot send events\n");
        cleanup();
        return 1;
    }
    if (h_now_ms() > burst_deadline - 500)
        printf("  (events took longer than BENCH_LEAD_MS allows; raise it)\n");

    /* Deliveries: first and last arrival. */
    int64_t first = 0, last = 0, limit = burst_deadline + 60000;
    while (h_now_ms() < limit) {
        int got = h_http_count(&rx, NULL);
        if (got >= 1 && first == 0)
            first = h_now_ms();
        if (got >= n) {
            last = h_now_ms();
            break;
        }
        h_sleep_ms(2);
    }
    if (last == 0) {
        fprintf(stderr, "only %d of %d deliveries arrived\n", h_http_count(&rx, NULL), n);
        failures++;
    }
    if (!h_wait_xlen(c, "bw:breaches", n + nprobes, 20000)) {
        fprintf(stderr, "not every breach was recorded\n");
        failures++;
    }

    /* Lateness from the daemon's own stamps. Probes whose deadlines fell
     * while the burst itself was being fired (10k breaches at one instant)
     * are reported apart from those that fell while its deliveries were in
     * flight. */
    struct h_entry *e;
    int ne = h_xrange(c, "bw:breaches", &e);
    long long *busy_late = calloc((size_t)nprobes + 1, sizeof(long long));
    long long *firing_late = calloc((size_t)nprobes + 1, sizeof(long long));
    long long *burst_late = calloc((size_t)n + 1, sizeof(long long));
    int nbusy = 0, nfiring = 0, nb = 0;
    long long burst_done = 0;
    for (int i = 0; i < ne; i++) {
        const char *kind = h_field(&e[i], "kind"), *t = h_field(&e[i], "ticket");
        const char *late = h_field(&e[i], "late_ms"), *at = h_field(&e[i], "at_ms");
        if (kind && t && late && at && strcmp(kind, "breach") == 0 && t[0] == 'B' && nb < n) {
            burst_late[nb++] = strtoll(late, NULL, 10);
            if (strtoll(at, NULL, 10) > burst_done)
                burst_done = strtoll(at, NULL, 10);
        }
    }
    for (int i = 0; i < ne; i++) {
        const char *kind = h_field(&e[i], "kind"), *t = h_field(&e[i], "ticket");
        const char *late = h_field(&e[i], "late_ms"), *dl = h_field(&e[i], "deadline_ms");
        if (!kind || !t || !late || !dl || strcmp(kind, "breach") != 0 || t[0] != 'P')
            continue;
        if (strtoll(dl, NULL, 10) > burst_done && nbusy < nprobes)
            busy_late[nbusy++] = strtoll(late, NULL, 10);
        else if (nfiring < nprobes)
            firing_late[nfiring++] = strtoll(late, NULL, 10);
    }
    h_entries_free(e, ne);
    qsort(busy_late, (size_t)nbusy, sizeof(long long), cmp_ll);
    qsort(firing_late, (size_t)nfiring, sizeof(long long), cmp_ll);
    qsort(burst_late, (size_t)nb, sizeof(long long), cmp_ll);

    if (last) {
        double secs = (double)(last - first) / 1000.0;
        double rate = secs > 0 ? (n - 1) / secs : 0;
        figure("deliveries per second", rate, "/s", ">=", TARGET_RATE);
        printf("  %-34s %10.1f ms (first %+lld ms, last %+lld ms from the deadline)\n",
               "delivery window", secs * 1000, (long long)(first - burst_deadline),
               (long long)(last - burst_deadline));
    }
    if (nb) {
        printf("  %-34s %10lld ms\n", "burst breaches fired within", burst_late[nb - 1]);
        printf("  %-34s %10lld ms\n", "burst breach late_ms p50", pct(burst_late, nb, 0.50));
    }
    printf("  %-34s %10d\n", "probes while deliveries in flight", nbusy);
    if (nbusy) {
        printf("  %-34s %10lld ms\n", "  late_ms p50", pct(busy_late, nbusy, 0.50));
        figure("  late_ms p99", (double)pct(busy_late, nbusy, 0.99), "ms", "<=",
               TARGET_PROBE_P99_MS);
        printf("  %-34s %10lld ms\n", "  late_ms max", busy_late[nbusy - 1]);
    }
    printf("  %-34s %10d\n", "probes while the burst was fired", nfiring);
    if (nfiring)
        printf("  %-34s %10lld ms\n", "  late_ms max", firing_late[nfiring - 1]);
    free(busy_late);
    free(firing_late);
    free(burst_late);
    long long failed = -1, pending = -1;
    h_sleep_ms(1200);
    h_get_int(c, "bw:stats:deliveries_failed_total", &failed);
    h_get_int(c, "bw:stats:notifications_pending", &pending);
    printf("  %-34s %10lld\n", "deliveries_failed_total", failed);
    printf("  %-34s %10lld\n", "notifications_pending", pending);
    if (failed != 0)
        failures++;
    redisFree(c);
    cleanup();
    return failures ? 1 : 0;
}
