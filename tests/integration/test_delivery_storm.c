/* Breach storms and the HTTP client's wake-ups.
 *
 *   - hook_http alone: each request is posted from the completion callback
 *     of the one before, so every post happens while curl has nothing else
 *     running; all of them must complete (a lost curl timer leaves the
 *     second one without a socket and without a timer, for ever);
 *   - the real daemon: STORM tickets breach at the same instant, each
 *     escalated to one json webhook, with the whole test (redis-server,
 *     slawatchd and the receiver) pinned to one CPU, which makes the
 *     interleaving that used to stop the sender (every transfer in flight
 *     finished inside one socket event, the refill posted from its
 *     callbacks) come within the first few hundred deliveries; every
 *     notification must arrive once, none fail, the outbox must empty.
 *
 * Every wait is bounded; counts and orders are asserted, never durations. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <sched.h>
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
#include <event2/event.h>

#include "harness.h"
#include "slawatch/hook_http.h"

#define CHAIN 20
#define STORM 3000 /* tickets breaching at once */
#define PIPELINE 500

/* ---- hook_http: posting from a completion callback ----------------------- */

struct chain {
    struct event_base *base;
    struct hook_http *http;
    char url[128];
    int done, ok;
};

static hook_http_done_fn chain_done;

static int
chain_post(struct chain *c)
{
    char *body = strdup("{\"chain\":true}");
    if (body == NULL)
        return -1;
    static const char *const hdrs[] = { "X-Slawatch-Delivery: chain" };
    return hook_http_post(c->http, c->url, hdrs, 1, body, strlen(body), 5000, chain_done,
                          c);
}

static void
chain_done(void *arg, const struct hook_http_result *res)
{
    struct chain *c = arg;
    c->done++;
    c->ok += !res->transport_error && res->status == 200;
    if (c->done < CHAIN) {
        if (chain_post(c) < 0)
            event_base_loopbreak(c->base);
    } else
        event_base_loopbreak(c->base);
}

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void
test_post_from_completion(void **state)
{
    (void)state;
    struct h_http rx;
    struct chain c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(h_http_start(&rx, NULL, NULL, false), 0);
    assert_int_equal(hook_http_global_init(), 0);
    c.base = event_base_new();
    assert_non_null(c.base);
    c.http = hook_http_new(c.base);
    assert_non_null(c.http);
    snprintf(c.url, sizeof(c.url), "http://127.0.0.1:%d/chain", rx.port);
    /* Far longer than 20 loopback requests take; if they stall, the
     * guard ends the loop and the count below says how far they got. */
    struct event *guard = evtimer_new(c.base, guard_cb, c.base);
    struct timeval tv = { 15, 0 };
    assert_non_null(guard);
    assert_int_equal(evtimer_add(guard, &tv), 0);
    assert_int_equal(chain_post(&c), 0);
    event_base_dispatch(c.base);
    if (c.done < CHAIN)
        fprintf(stderr, "chain: %d of %d requests completed, %zu still in flight\n", c.done,
                CHAIN, hook_http_inflight(c.http));
    assert_int_equal(c.done, CHAIN);
    assert_int_equal(c.ok, CHAIN);
    assert_int_equal(h_http_count(&rx, NULL), CHAIN); /* count only */
    assert_int_equal(hook_http_inflight(c.http), 0);
    event_free(guard);
    hook_http_free(c.http);
    event_base_free(c.base);
    hook_http_global_cleanup();
    h_http_stop(&rx);
}

/* ---- the daemon in a breach storm ---------------------------------------- */

static const char *storm_yaml =
    "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"st:\" }\n"
    "events: { batch: 1000, max_clock_skew: 1m }\n"
    "tiers:\n"
    "  burst: { response: 3s }\n"
    "escalations:\n"
    "  - { name: page, when: breach, notify: [main] }\n"
    "webhooks:\n"
    "  main: { url: \"http://127.0.0.1:@HTTP@/hook\", secret_file: secret, timeout: 5s,\n"
    "          retry: { attempts: 10, backoff: 200ms, max_backoff: 2s } }\n"
    "log: { level: notice }\n";

struct storm {
    struct h_redis redis;
    struct h_http rx;
    redisContext *c;
    pid_t daemon;
    bool rx_up;
    cpu_set_t saved;
    bool pinned;
};

static int
teardown_storm(void **state)
{
    struct storm *e = *state;
    int rc = 0;
    if (e == NULL)
        return 0;
    if (e->daemon > 0 && h_daemon_stop(e->daemon, SIGTERM, 8000) != 0) {
        fprintf(stderr, "slawatchd did not exit cleanly on SIGTERM\n");
        h_dump_file(e->redis.dir, "daemon.log");
        rc = -1;
    }
    if (e->rx_up)
        h_http_stop(&e->rx);
    if (e->c)
        redisFree(e->c);
    h_redis_stop(&e->redis);
    if (e->pinned)
        (void)sched_setaffinity(0, sizeof(e->saved), &e->saved);
    free(e);
    return rc;
}

/* `n` opened events whose response deadlines all fall at `deadline`. */
static void
send_storm(redisContext *c, int n, int64_t deadline)
{
    for (int base = 0; base < n; base += PIPELINE) {
        int k = n - base < PIPELINE ? n - base : PIPELINE;
        for (int i = base; i < base + k; i++) {
            char id[32], ts[24];
            snprintf(id, sizeof(id), "S-%d", i);
            snprintf(ts, sizeof(ts), "%" PRId64, deadline - 3000);
            const char *argv[] = { "XADD",   "st:events", "*",    "type", "opened", "ticket",
                                   id,       "tier",      "burst", "ts",  ts };
            assert_int_equal(redisAppendCommandArgv(c, 11, argv, NULL), REDIS_OK);
        }
        for (int i = 0; i < k; i++) {
            redisReply *r = NULL;
            assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
            assert_non_null(r);
            assert_int_equal(r->type, REDIS_REPLY_STRING);
            freeReplyObject(r);
        }
    }
}

static void
test_storm(void **state)
{
    struct storm *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    *state = e;
    /* One CPU for the test and everything it starts (the affinity is
     * inherited by redis-server, slawatchd and the receiver's thread):
     * each request the daemon writes wakes the receiver, which answers at
     * once, so curl finds the answers of every transfer in flight within
     * one socket event, and the refill is posted from that event's
     * callbacks. That is the interleaving that stopped the sender on a
     * loaded two-core machine; here it comes within the first few hundred
     * deliveries. */
    assert_int_equal(sched_getaffinity(0, sizeof(e->saved), &e->saved), 0);
    cpu_set_t one;
    int cpu = sched_getcpu();
    CPU_ZERO(&one);
    CPU_SET(cpu >= 0 ? cpu : 0, &one);
    e->pinned = sched_setaffinity(0, sizeof(one), &one) == 0;

    assert_int_equal(h_redis_start(&e->redis, NULL), 0);
    e->c = h_connect(e->redis.port);
    assert_non_null(e->c);
    /* A receiver that only counts (always 200, cheap per request). */
    assert_int_equal(h_http_start(&e->rx, NULL, NULL, false), 0);
    e->rx_up = true;
    char *secret = h_write_file(e->redis.dir, "secret", "storm-secret\n");
    assert_non_null(secret);
    assert_int_equal(chmod(secret, 0600), 0);
    free(secret);
    char *yaml = h_subst_ports(storm_yaml, e->redis.port, e->rx.port);
    assert_non_null(yaml);
    char *cfg = h_write_file(e->redis.dir, "slawatch.yaml", yaml);
    free(yaml);
    assert_non_null(cfg);
    e->daemon = h_daemon_start(cfg, e->redis.dir);
    free(cfg);
    assert_true(h_wait_group(e->c, "st:events", "slawatch", 5000));

    int64_t deadline = h_now_ms() + 2500;
    send_storm(e->c, STORM, deadline);
    assert_true(h_now_ms() < deadline); /* all sent before the storm */

    /* The storm's deliveries take about a second on one CPU when nothing
     * stalls; a stall is for good (every slot stays taken by a transfer
     * curl no longer drives), and the bound only ends such a run. */
    bool all = h_http_wait(&e->rx, NULL, STORM, 20000 + (int)(deadline - h_now_ms()));
    if (!all) {
        fprintf(stderr, "storm: %d of %d delivered\n", h_http_count(&e->rx, NULL), STORM);
        h_dump_file(e->redis.dir, "daemon.log");
    }
    assert_true(all);
    assert_true(h_wait_hlen(e->c, "st:outbox", 0, 5000));
    assert_true(h_wait_int(e->c, "st:stats:notifications_pending", 0, 3000));
    long long failed = -1;
    assert_true(h_get_int(e->c, "st:stats:deliveries_failed_total", &failed));
    assert_int_equal(failed, 0);
    /* Each delivered once: the receiver always answers 200 at once. */
    h_sleep_ms(200);
    assert_int_equal(h_http_count(&e->rx, NULL), STORM);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_from_completion),
        cmocka_unit_test_teardown(test_storm, teardown_storm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
