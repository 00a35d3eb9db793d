/* The support KPIs and the elapsed-time distributions through Redis (SPEC
 * sections 3 and 4): a scripted history of opened, responded, commented,
 * resolved, reopened and rated events, written to the stream with IDs that
 * carry their times (as the README says to import history), yields exactly
 * the expected <prefix>kpi: keys per tier, `all` and queue, absent where
 * there is nothing to count, and <prefix>elapsed_ms: keys of every metric;
 * they survive a graceful restart (the checkpoint's compliance section),
 * a rating that replaces one counted before the restart is withdrawn from
 * the restored bucket, and a ticket's facts follow it to another queue.
 * Real redis-server and slawatchd; every wait is bounded. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define P "kp:"
#define WAIT_MS 15000
#define SEC 1000LL

struct env {
    struct h_redis redis;
    redisContext *c;
    char *cfg;
    pid_t daemon;
    int64_t base;                /* the history's start, 30 min ago */
};

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    char text[2048];
    if (h_redis_start(&e->redis, NULL) < 0)
        return -1;
    e->c = h_connect(e->redis.port);
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"" P "\" }\n"
             "tiers:\n"
             "  t: { response: 1h, resolution: 1d, next_reply: 30m }\n"
             "  u: { response: 1h, resolution: 1d }\n"
             "policies:\n"
             "  - { match: { priority: high }, tier: t }\n"
             "  - { tier: u }\n"
             "compliance:\n"
             "  windows: [1h, 7d]\n"
             "  by: [queue]\n"
             "  publish_every: 1s\n"
             "state: { checkpoint_every: 1h }\n",
             e->redis.port);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    /* Whole seconds: a rating counts at its ts truncated to the second. */
    e->base = (h_now_ms() - 30 * 60 * SEC) / SEC * SEC;
    *state = e;
    return e->c ? 0 : -1;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    if (e->daemon > 0)
        h_daemon_stop(e->daemon, SIGKILL, 2000);
    if (e->c)
        redisFree(e->c);
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return 0;
}

/* Polls until GET key == want (NULL: absent). */
static void
expect(struct env *e, const char *key, const char *want)
{
    char got[128] = "(absent)";
    for (int waited = 0; waited <= WAIT_MS; waited += 50) {
        bool have = h_get_str(e->c, key, got, sizeof(got));
        if (want == NULL ? !have : have && strcmp(got, want) == 0)
            return;
        h_sleep_ms(50);
    }
    if (!h_get_str(e->c, key, got, sizeof(got)))
        snprintf(got, sizeof(got), "(absent)");
    h_dump_file(e->redis.dir, "daemon.log");
    fail_msg("%s: want %s, got %s", key, want ? want : "(absent)", got);
}

/* XADD with an ID carrying the event's time; fields NULL-terminated. */
static void
xadd(struct env *e, int64_t at, const char *type, const char *ticket, ...)
{
    char ts[24], id[32];
    const char *argv[24];
    int argc = 0;
    va_list ap;
    snprintf(ts, sizeof(ts), "%lld", (long long)at);
    snprintf(id, sizeof(id), "%lld-*", (long long)at);
    argv[argc++] = "XADD";
    argv[argc++] = P "events";
    argv[argc++] = id;
    argv[argc++] = "type";
    argv[argc++] = type;
    argv[argc++] = "ticket";
    argv[argc++] = ticket;
    argv[argc++] = "ts";
    argv[argc++] = ts;
    va_start(ap, ticket);
    for (const char *f; (f = va_arg(ap, const char *)) != NULL && argc < 22;) {
        argv[argc++] = f;
        argv[argc++] = va_arg(ap, const char *);
    }
    va_end(ap);
    redisReply *r = redisCommandArgv(e->c, argc, argv, NULL);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("XADD %s %s: %s", type, ticket, r->str);
    freeReplyObject(r);
}

/* The value the distribution reports for a sample v (docs/compliance.md):
 * exact below 16 ms, else the middle of its bin of 16 per power of two;
 * then kept within the smallest and largest sample. */
static long long
reported(long long v, long long lo, long long hi)
{
    if (v >= 16) {
        int e = 63 - __builtin_clzll((unsigned long long)v);
        long long step = 1LL << (e - 4);
        v = v / step * step + step / 2;
    }
    return v < lo ? lo : v > hi ? hi : v;
}

/* The four keys of a distribution of samples (ascending). */
static void
expect_dist(struct env *e, const char *key, const long long *v, int n)
{
    char k[160], want[32];
    static const char *const stat[] = { "p50", "p90", "p99" };
    static const int pct[] = { 50, 90, 99 };
    long long sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    for (int q = 0; q < 3; q++) {
        int rank = (n * pct[q] + 99) / 100;
        snprintf(k, sizeof(k), "%s:%s", key, stat[q]);
        snprintf(want, sizeof(want), "%lld", reported(v[rank - 1], v[0], v[n - 1]));
        expect(e, k, want);
    }
    snprintf(k, sizeof(k), "%s:mean", key);
    snprintf(want, sizeof(want), "%lld", (sum + n / 2) / n);
    expect(e, k, want);
}

/*
 * The history, in ms after base:
 *   A (t, billing): opened 0, responded 60 s, resolved 120 s (first contact),
 *       rated 5 at 130 s
 *   B (t, billing): opened 1 s, responded 61 s, commented 100 s (a
 *       next_reply cycle), responded 160 s (second reply: not first
 *       contact), resolved 200 s, rated 2 at 210 s, reopened 300 s,
 *       resolved 400 s, rated good at 500 s (replaces the 2)
 *   C (u, sales): opened 2 s, responded 32 s, resolved 62 s, rated bad 70 s
 *   D (u, no queue): opened 3 s, resolved 13 s (no reply: first contact)
 */
static void
send_history(struct env *e)
{
    int64_t b = e->base;
    xadd(e, b, "opened", "A", "priority", "high", "queue", "billing", NULL);
    xadd(e, b + 1 * SEC, "opened", "B", "priority", "high", "queue", "billing", NULL);
    xadd(e, b + 2 * SEC, "opened", "C", "priority", "low", "queue", "sales", NULL);
    xadd(e, b + 3 * SEC, "opened", "D", "priority", "low", NULL);
    xadd(e, b + 13 * SEC, "resolved", "D", NULL);
    xadd(e, b + 32 * SEC, "responded", "C", NULL);
    xadd(e, b + 60 * SEC, "responded", "A", NULL);
    xadd(e, b + 61 * SEC, "responded", "B", NULL);
    xadd(e, b + 62 * SEC, "resolved", "C", NULL);
    xadd(e, b + 70 * SEC, "rated", "C", "score", "bad", NULL);
    xadd(e, b + 100 * SEC, "commented", "B", NULL);
    xadd(e, b + 120 * SEC, "resolved", "A", NULL);
    xadd(e, b + 130 * SEC, "rated", "A", "score", "5", NULL);
    xadd(e, b + 160 * SEC, "responded", "B", NULL);
    xadd(e, b + 200 * SEC, "resolved", "B", NULL);
    xadd(e, b + 210 * SEC, "rated", "B", "score", "2", NULL);
    xadd(e, b + 300 * SEC, "reopened", "B", NULL);
    xadd(e, b + 400 * SEC, "resolved", "B", NULL);
    xadd(e, b + 500 * SEC, "rated", "B", "score", "good", NULL);
}

static void
check_kpis(struct env *e)
{
    /* t: A and B first resolved, A at first contact, B reopened; ratings
     * 5 and good (the 2 withdrawn). */
    expect(e, P "kpi:t:fcr:1h", "0.5");
    expect(e, P "kpi:t:reopen_rate:7d", "0.5");
    expect(e, P "kpi:t:csat:1h", "1");
    expect(e, P "kpi:t:csat_mean:1h", "5");
    expect(e, P "kpi:t:csat_count:7d", "2");
    /* u: C and D, both at first contact; one rating, bad. */
    expect(e, P "kpi:u:fcr:1h", "1");
    expect(e, P "kpi:u:reopen_rate:1h", "0");
    expect(e, P "kpi:u:csat:1h", "0");
    expect(e, P "kpi:u:csat_mean:1h", NULL);
    expect(e, P "kpi:u:csat_count:1h", "1");
    /* all */
    expect(e, P "kpi:all:fcr:7d", "0.75");
    expect(e, P "kpi:all:reopen_rate:1h", "0.25");
    expect(e, P "kpi:all:csat:1h", "0.666666");
    expect(e, P "kpi:all:csat_mean:7d", "5");
    expect(e, P "kpi:all:csat_count:1h", "3");
    /* by queue */
    expect(e, P "kpi:t:fcr:1h:queue=billing", "0.5");
    expect(e, P "kpi:all:reopen_rate:7d:queue=billing", "0.5");
    expect(e, P "kpi:t:csat_mean:1h:queue=billing", "5");
    expect(e, P "kpi:all:csat:7d:queue=sales", "0");
    expect(e, P "kpi:u:fcr:1h:queue=_none", "1");
    expect(e, P "kpi:u:csat_count:1h:queue=_none", NULL);
    expect(e, P "kpi:t:fcr:1h:queue=sales", NULL);
}

static void
check_elapsed(struct env *e)
{
    /* response: A 60 s, B 60 s; C 30 s, D 10 s (stopped by its
     * resolution) */
    const long long rt[] = { 60000, 60000 }, ru[] = { 10000, 30000 },
                    ra[] = { 10000, 30000, 60000, 60000 };
    expect_dist(e, P "elapsed_ms:t:response:1h", rt, 2);
    expect_dist(e, P "elapsed_ms:u:response:7d", ru, 2);
    expect_dist(e, P "elapsed_ms:all:response:1h", ra, 4);
    expect(e, P "response_ms:all:1h:p90", "60000"); /* 60416, kept within the largest */
    expect(e, P "response_ms:all:1h:p50", "30208");
    /* resolution: A 120 s, B 199 s then 100 s (the reopened cycle); C
     * 60 s, D 10 s */
    const long long st[] = { 100000, 120000, 199000 },
                    sa[] = { 10000, 60000, 100000, 120000, 199000 };
    expect_dist(e, P "elapsed_ms:t:resolution:1h", st, 3);
    expect_dist(e, P "elapsed_ms:all:resolution:7d", sa, 5);
    /* next_reply: B's cycle, 100 s to 160 s; u has no next_reply */
    const long long nt[] = { 60000 };
    expect_dist(e, P "elapsed_ms:t:next_reply:1h", nt, 1);
    expect_dist(e, P "elapsed_ms:all:next_reply:7d", nt, 1);
    expect(e, P "elapsed_ms:u:next_reply:1h:p50", NULL);
    expect(e, P "met:t:next_reply:1h", "1");
}

static void
test_kpi_keys(void **state)
{
    struct env *e = *state;
    send_history(e);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(e->daemon > 0);
    assert_true(h_wait_group(e->c, P "events", "slawatch", WAIT_MS));
    check_kpis(e);
    check_elapsed(e);

    /* A graceful restart: the windows come back from the checkpoint. */
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = -1;
    assert_int_equal(h_cmd(e->c, "DEL " P "kpi:all:fcr:7d " P "elapsed_ms:t:next_reply:1h:p50"), 0);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(e->daemon > 0);
    check_kpis(e);
    check_elapsed(e);

    /* C rated again, 1: its `bad`, restored, is withdrawn; the 1 is bad
     * too and numeric. */
    xadd(e, h_now_ms(), "rated", "C", "score", "1", NULL);
    expect(e, P "kpi:u:csat_mean:1h", "1");
    expect(e, P "kpi:u:csat_count:1h", "1");
    expect(e, P "kpi:all:csat_count:7d", "3");
    expect(e, P "kpi:all:csat_mean:1h", "3");
    expect(e, P "kpi:all:csat:1h", "0.666666");
    /* C moves to billing: its first resolution and its rating follow it
     * (withdrawn from sales, counted again in billing, at their times),
     * and sales, left with nothing, is forgotten and its keys deleted. */
    xadd(e, h_now_ms(), "updated", "C", "queue", "billing", NULL);
    expect(e, P "kpi:u:fcr:1h:queue=billing", "1");
    expect(e, P "kpi:all:fcr:7d:queue=billing", "0.666666");
    expect(e, P "kpi:all:csat_count:7d:queue=billing", "3");
    expect(e, P "kpi:all:csat_mean:1h:queue=billing", "3");
    expect(e, P "kpi:all:csat:7d:queue=sales", NULL);
    expect(e, P "kpi:u:fcr:1h:queue=sales", NULL);
    expect(e, P "kpi:all:fcr:7d", "0.75");
    assert_int_equal(h_count_lines(e->redis.dir, "daemon.log", "left out of a series"), 0);
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = -1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kpi_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
