/* Compliance against a real redis-server and the real slawatchd: a scripted
 * mix of met and breached tickets (written to the stream before the daemon
 * starts, with their own timestamps, so every outcome is decided by the
 * events alone) yields exactly the expected ratios, counts, breakdowns and
 * response times; the objective fires and recovers in <prefix>objectives; the
 * windows survive a graceful restart and a kill -9 with replay; at-risk
 * gauges follow live clocks. Every wait is bounded. */
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

#define P "cp:"
#define WAIT_MS 15000

struct env {
    struct h_redis redis;
    redisContext *c;
    char *cfg;
    pid_t daemon;
};

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    char text[2048];
    if (h_redis_start(&e->redis, NULL) < 0)
        return -1;
    e->c = h_connect(e->redis.port);
    /* No periodic checkpoint during the test: the only one is written at
     * SIGTERM, so what happens after it must come back by replay. */
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"" P "\" }\n"
             "tiers:\n"
             "  t: { response: 2s, resolution: 4s }\n"
             "  u: { response: 1s }\n"
             "  w: { response: 10m, resolution: 1h }\n"
             "policies:\n"
             "  - { match: { priority: high }, tier: t }\n"
             "  - { match: { priority: normal }, tier: w }\n"
             "  - { tier: u }\n"
             "compliance:\n"
             "  windows: [1h, 7d]\n"
             "  by: [queue]\n"
             "  max_values: 2\n"
             "  publish_every: 1s\n"
             "  objective: 0.9\n"
             "state: { checkpoint_every: 1h }\n",
             e->redis.port);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
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

static void
start(struct env *e)
{
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(e->daemon > 0);
}

static void
expect(struct env *e, const char *key, const char *want)
{
    char got[128] = "(absent)";
    if (!h_wait_str(e->c, key, want, WAIT_MS)) {
        h_get_str(e->c, key, got, sizeof(got));
        h_dump_file(e->redis.dir, "daemon.log");
        fail_msg("%s: want %s, got %s", key, want ? want : "(absent)", got);
    }
}

static void
expect_now(struct env *e, const char *key, const char *want)
{
    char got[128] = "(absent)";
    bool have = h_get_str(e->c, key, got, sizeof(got));
    if (want == NULL ? have : !have || strcmp(got, want) != 0)
        fail_msg("%s: want %s, got %s", key, want ? want : "(absent)", got);
}

/* ---- the script ------------------------------------------------------- */

struct ev {
    int64_t at;
    char ticket[16];
    const char *type;
    const char *priority;
    const char *queue;
};

static int
cmp_ev(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* Ticket i starts at base + i * 10 s; offsets in ms from its start.
 * resp/res < 0: never (the ticket is then answered late at the given
 * absolute offset instead, see below). */
static const struct {
    const char *priority, *queue;
    int resp, res;
} script[] = {
    /* tier t: response 2 s, resolution 4 s */
    { "high", "billing", 1000, 3000 },   /* 0: met, met */
    { "high", "billing", 1500, 5000 },   /* 1: met, breached */
    { "high", "sales", 3000, 3500 },     /* 2: breached, met */
    { "high", "misc", 6000, 6000 },      /* 3: breached, breached (_other) */
    /* tier u: response 1 s */
    { "low", "billing", 500, -1 },       /* 4: met */
    { "low", "sales", 2000, -1 },        /* 5: breached */
    { "low", "misc", 200, -1 },          /* 6: met (_other) */
    { "low", NULL, 900, -1 },            /* 7: met (_none, folded: _other) */
    { "high", "billing", 1000, 2000 },   /* 8: met, met */
    { "low", "billing", 100, -1 },       /* 9: met */
};

/* History imported as the README says: the entry's ID carries the event's
 * time (XADD <ms>-*, in time order), so that arrival follows the stamps;
 * with `*` IDs everything would arrive now and the outcomes would depend on
 * the millisecond each XADD fell in. */
static void
xadd_ev(struct env *e, const struct ev *v)
{
    char ts[24], id[32];
    const char *argv[16];
    int argc = 0;
    snprintf(ts, sizeof(ts), "%lld", (long long)v->at);
    snprintf(id, sizeof(id), "%lld-*", (long long)v->at);
    argv[argc++] = "XADD";
    argv[argc++] = P "events";
    argv[argc++] = id;
    argv[argc++] = "type";
    argv[argc++] = v->type;
    argv[argc++] = "ticket";
    argv[argc++] = v->ticket;
    argv[argc++] = "ts";
    argv[argc++] = ts;
    if (v->priority) {
        argv[argc++] = "priority";
        argv[argc++] = v->priority;
    }
    if (v->queue && v->priority) {
        argv[argc++] = "queue";
        argv[argc++] = v->queue;
    }
    redisReply *r = redisCommandArgv(e->c, argc, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
}

static void
prefill(struct env *e)
{
    static struct ev evs[64];
    int n = 0;
    int64_t base = h_now_ms() - 10 * 60 * 1000; /* ten minutes ago */
    for (int i = 0; i < (int)(sizeof(script) / sizeof(script[0])); i++) {
        int64_t t0 = base + i * 10000;
        evs[n] = (struct ev){ t0, "", "opened", script[i].priority, script[i].queue };
        snprintf(evs[n++].ticket, 16, "S%d", i);
        evs[n] = (struct ev){ t0 + script[i].resp, "", "responded", NULL, NULL };
        snprintf(evs[n++].ticket, 16, "S%d", i);
        if (script[i].res >= 0) {
            evs[n] = (struct ev){ t0 + script[i].res, "", "resolved", NULL, NULL };
            snprintf(evs[n++].ticket, 16, "S%d", i);
        }
    }
    qsort(evs, (size_t)n, sizeof(evs[0]), cmp_ev);
    for (int i = 0; i < n; i++)
        xadd_ev(e, &evs[i]);
}

/* Live tickets: opened, answered and resolved at once (event time = the
 * stream entry's), so every clock is met. */
static void
live_met(struct env *e, const char *prefix, int n, const char *priority)
{
    char id[32];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s%d", prefix, i);
        assert_int_equal(h_xadd(e->c, P "events", NULL, 0, "type", "opened", "ticket", id,
                                "priority", priority, "queue", "billing", NULL), 0);
        assert_int_equal(h_xadd(e->c, P "events", NULL, 0, "type", "responded", "ticket",
                                id, NULL), 0);
        assert_int_equal(h_xadd(e->c, P "events", NULL, 0, "type", "resolved", "ticket",
                                id, NULL), 0);
    }
}

/* The published form of a ratio: truncated to millionths, trailing zeros
 * dropped (SPEC: a decimal like 0.9731). */
static const char *
ratio(int met, int breached, char *buf, size_t len)
{
    long long micro = (long long)met * 1000000 / (met + breached);
    if (micro == 1000000 || micro == 0) {
        snprintf(buf, len, "%d", micro ? 1 : 0);
        return buf;
    }
    int n = snprintf(buf, len, "0.%06lld", micro);
    while (buf[n - 1] == '0')
        buf[--n] = '\0';
    return buf;
}

/* The values the script decides (1h and 7d alike: it is 10 minutes old),
 * plus extra_t met tier t and extra_u met tier u tickets of queue billing. */
static void
expect_script(struct env *e, int extra_t, int extra_u)
{
    char v[32];
    const char *wins[] = { "1h", "7d" };
    for (int w = 0; w < 2; w++) {
        char k[128];
#define K(fmt) (snprintf(k, sizeof(k), P fmt, wins[w]), k)
#define N(x) (snprintf(v, sizeof(v), "%d", (x)), v)
        expect(e, K("met:t:response:%s"), N(3 + extra_t));
        expect(e, K("breached:t:response:%s"), "2");
        expect(e, K("met:t:resolution:%s"), N(3 + extra_t));
        expect(e, K("breached:t:resolution:%s"), "2");
        expect(e, K("met:u:response:%s"), N(4 + extra_u));
        expect(e, K("breached:u:response:%s"), "1");
        expect(e, K("met:all:response:%s"), N(7 + extra_t + extra_u));
        expect(e, K("breached:all:response:%s"), "3");
        expect(e, K("met:w:response:%s"), "0");
        expect_now(e, K("compliance:w:response:%s"), NULL); /* empty: absent */
        expect_now(e, K("met:u:resolution:%s"), NULL);       /* no such clock */
        /* Breakdown by queue, capped at two values: billing and sales took
         * the places (first outcomes), misc and the queue-less fold. */
        expect(e, K("met:t:response:%s:queue=billing"), N(3 + extra_t));
        expect(e, K("compliance:t:response:%s:queue=billing"), "1");
        expect(e, K("compliance:t:resolution:%s:queue=billing"),
               ratio(2 + extra_t, 1, v, sizeof(v)));
        expect(e, K("compliance:t:response:%s"), ratio(3 + extra_t, 2, v, sizeof(v)));
        expect(e, K("compliance:u:response:%s"), ratio(4 + extra_u, 1, v, sizeof(v)));
        expect(e, K("compliance:all:response:%s"),
               ratio(7 + extra_t + extra_u, 3, v, sizeof(v)));
        expect(e, K("compliance:all:response:%s:queue=sales"), "0");
        expect(e, K("breached:all:response:%s:queue=sales"), "2");
        expect(e, K("met:all:response:%s:queue=_other"), "2");
        expect(e, K("breached:all:response:%s:queue=_other"), "1");
        expect(e, K("compliance:all:response:%s:queue=_other"), "0.666666");
        expect(e, K("breached:u:response:%s:queue=_other"), "0");
        expect_now(e, K("met:all:response:%s:queue=misc"), NULL);
#undef K
#undef N
    }
    if (extra_t == 0 && extra_u == 0) {
        expect(e, P "compliance:t:response:1h", "0.6");
        expect(e, P "compliance:t:resolution:7d", "0.6");
        expect(e, P "compliance:u:response:1h", "0.8");
        expect(e, P "compliance:all:response:7d", "0.7");
        /* Response times: t 1000, 1500, 3000, 6000, 1000 (the breached ones
         * once answered); u 500, 2000, 200, 900, 100. */
        expect(e, P "response_ms:t:1h:mean", "2500");
        expect(e, P "response_ms:u:7d:mean", "740");
        expect(e, P "response_ms:all:1h:mean", "1620");
        /* Quantiles: the middle of the bin (within 1/32), kept within the
         * smallest and largest time seen. u: 100 200 500 900 2000. */
        expect(e, P "response_ms:u:1h:p99", "2000"); /* bin 1984..2047 -> max */
        expect(e, P "response_ms:u:1h:p50", "504");  /* 500: bin 496..511 */
        expect(e, P "response_ms:u:1h:p90", "2000");
        expect(e, P "response_ms:t:7d:p50", "1504"); /* 1500: bin 1472..1535 */
    }
}

static void
test_exact_ratios_objective_restart(void **state)
{
    struct env *e = *state;
    prefill(e);
    start(e);
    assert_true(h_wait_group(e->c, P "events", "slawatch", WAIT_MS));
    expect_script(e, 0, 0);
    expect(e, P "objective", "0.9");
    expect_now(e, P "response_ms:w:1h:p50", NULL);

    /* Every ratio is below 0.9: after two rounds each (tier, metric,
     * window) series is recorded once as kind=objective. */
    assert_true(h_wait_xlen(e->c, P "objectives", 1, WAIT_MS));
    h_sleep_ms(1500); /* a few more rounds: nothing is recorded twice */
    struct h_entry *en;
    int n = h_xrange(e->c, P "objectives", &en);
    int objective = 0, t_resp_1h = -1;
    for (int i = 0; i < n; i++) {
        const char *kind = h_field(&en[i], "kind");
        if (strcmp(kind, "objective") != 0)
            continue;
        objective++;
        if (strcmp(h_field(&en[i], "tier"), "t") == 0 &&
            strcmp(h_field(&en[i], "metric"), "response") == 0 &&
            strcmp(h_field(&en[i], "window"), "1h") == 0) {
            assert_int_equal(t_resp_1h, -1);
            t_resp_1h = i;
        }
    }
    /* t: response, resolution; u: response; all: response, resolution;
     * two windows each. */
    assert_int_equal(objective, 10);
    assert_true(t_resp_1h >= 0);
    assert_string_equal(h_field(&en[t_resp_1h], "ratio"), "0.6");
    assert_string_equal(h_field(&en[t_resp_1h], "objective"), "0.9");
    assert_string_equal(h_field(&en[t_resp_1h], "met"), "3");
    assert_string_equal(h_field(&en[t_resp_1h], "breached"), "2");
    assert_true(strtoll(h_field(&en[t_resp_1h], "at_ms"), NULL, 10) <= h_now_ms());
    h_entries_free(en, n);

    /* 15 more met t tickets: t is at 18 / 20 = 0.9, at the objective
     * again: recovered after three rounds, once. */
    live_met(e, "L", 15, "high");
    expect(e, P "compliance:t:response:1h", "0.9");
    int64_t deadline = h_now_ms() + WAIT_MS;
    int recovered = 0;
    /* t response and resolution, all resolution (only t has outcomes for
     * it), two windows each; all response is at 22 / 25, still below. */
    while (recovered < 6 && h_now_ms() < deadline) {
        recovered = 0;
        n = h_xrange(e->c, P "objectives", &en);
        for (int i = 0; i < n; i++)
            if (strcmp(h_field(&en[i], "kind"), "recovered") == 0 &&
                h_field(&en[i], "window") != NULL) {
                recovered++;
                assert_string_equal(h_field(&en[i], "ratio"), "0.9");
                assert_true(strcmp(h_field(&en[i], "tier"), "t") == 0 ||
                            strcmp(h_field(&en[i], "metric"), "resolution") == 0);
            }
        h_entries_free(en, n);
        h_sleep_ms(100);
    }
    h_sleep_ms(1500);
    n = h_xrange(e->c, P "objectives", &en);
    recovered = 0;
    for (int i = 0; i < n; i++)
        recovered += strcmp(h_field(&en[i], "kind"), "recovered") == 0 &&
                     h_field(&en[i], "window") != NULL;
    h_entries_free(en, n);
    assert_int_equal(recovered, 6);
    expect_script(e, 15, 0);
    char mean[32];
    assert_true(h_get_str(e->c, P "response_ms:t:1h:mean", mean, sizeof(mean)));

    /* Graceful restart: keys deleted while it is down come back with the
     * same values from the final checkpoint, not from zero. */
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
    freeReplyObject(redisCommand(e->c, "DEL " P "met:t:response:1h " P
                                       "compliance:all:response:7d:queue=_other " P
                                       "response_ms:t:1h:mean " P "met:u:response:7d"));
    start(e);
    expect_script(e, 15, 0);
    expect(e, P "response_ms:t:1h:mean", mean);

    /* kill -9 after outcomes the checkpoint does not hold: the replay
     * counts them once, neither lost nor doubled. */
    live_met(e, "K", 5, "low");
    expect(e, P "met:u:response:1h", "9");
    assert_int_equal(h_daemon_stop(e->daemon, SIGKILL, 2000), 128 + SIGKILL);
    e->daemon = 0;
    freeReplyObject(redisCommand(e->c, "DEL " P "met:u:response:1h " P "met:all:response:7d"));
    start(e);
    expect_script(e, 15, 5);
    /* The objective state came back too: no second `objective` record. */
    h_sleep_ms(2500);
    n = h_xrange(e->c, P "objectives", &en);
    objective = 0;
    for (int i = 0; i < n; i++)
        objective += strcmp(h_field(&en[i], "kind"), "objective") == 0;
    h_entries_free(en, n);
    assert_int_equal(objective, 10);
}

/* Keys left by an earlier configuration are swept at start. at_risk
 * follows live clocks: a tier w ticket (response 10m, resolution 1h) is
 * due within 15m and 1h, not within 5m; answering it moves it out. */
static void
test_at_risk_live(void **state)
{
    struct env *e = *state;
    /* Keys an earlier configuration left (a tier and a window that no
     * longer exist): deleted after the first round; keys of other families
     * under the prefix are not this module's and stay. */
    freeReplyObject(redisCommand(e->c, "MSET " P "compliance:gone:response:1h 0.5 "
                                       P "met:t:response:30d 3 "
                                       P "at_risk:gone:response:5m 1 "
                                       P "response_ms:gone:1h:p50 10 "
                                       P "met:t:response:1h:queue=old 4 "
                                       P "other:thing 7 " P "open:gone 2"));
    start(e);
    assert_true(h_wait_group(e->c, P "events", "slawatch", WAIT_MS));
    expect(e, P "compliance:gone:response:1h", NULL);
    expect(e, P "met:t:response:30d", NULL);
    expect(e, P "at_risk:gone:response:5m", NULL);
    expect(e, P "response_ms:gone:1h:p50", NULL);
    expect(e, P "met:t:response:1h:queue=old", NULL);
    expect_now(e, P "other:thing", "7");
    /* open: is publish.c's, which sweeps the gauges of tiers that no
     * longer exist too. */
    expect(e, P "open:gone", NULL);
    expect_now(e, P "met:t:response:1h", "0");
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "W%d", i);
        assert_int_equal(h_xadd(e->c, P "events", NULL, 0, "type", "opened", "ticket", id,
                                "priority", "normal", NULL), 0);
    }
    expect(e, P "at_risk:w:response:15m", "3");
    expect(e, P "at_risk:w:response:5m", "0");
    expect(e, P "at_risk:w:response:1h", "3");
    expect(e, P "at_risk:w:resolution:1h", "3");
    expect(e, P "at_risk:w:resolution:15m", "0");
    expect(e, P "open:w", "3");
    assert_int_equal(h_xadd(e->c, P "events", NULL, 0, "type", "responded", "ticket", "W1",
                            NULL), 0);
    expect(e, P "at_risk:w:response:15m", "2");
    expect(e, P "at_risk:w:resolution:1h", "3");
    expect(e, P "met:w:response:1h", "1");
    expect(e, P "compliance:w:response:1h", "1");
    /* A tier t ticket: due in 2 s, then breached: at risk, then overdue. */
    assert_int_equal(h_xadd(e->c, P "events", NULL, 0, "type", "opened", "ticket", "X",
                            "priority", "high", NULL), 0);
    expect(e, P "overdue:t:response", "1");
    expect(e, P "at_risk:t:response:5m", "0");
    expect(e, P "breached:t:response:1h", "1");
}

/* SIGHUP with other windows: 1h renamed 60m keeps its counts under the
 * new name, 7d is dropped and its keys deleted, 2h starts from what the
 * daemon has (nothing older than the reload is re-counted into it). */
static void
test_reload_maps_windows(void **state)
{
    struct env *e = *state;
    char text[2048];
    prefill(e);
    start(e);
    expect(e, P "met:t:response:1h", "3");
    expect(e, P "met:t:response:7d", "3");
    FILE *f = fopen(e->cfg, "r");
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *w = strstr(text, "windows: [1h, 7d]");
    assert_non_null(w);
    memcpy(w, "windows: [60m,2h]", 17); /* same length: the rest stays */
    char *path = h_write_file(e->redis.dir, "slawatch.yaml", text);
    free(path);
    kill(e->daemon, SIGHUP);
    expect(e, P "met:t:response:60m", "3");
    expect(e, P "compliance:t:response:60m", "0.6");
    expect(e, P "breached:all:response:60m:queue=_other", "1");
    expect(e, P "met:t:response:2h", "0");
    expect(e, P "met:t:response:7d", NULL);
    expect(e, P "met:t:response:1h", NULL);
    expect(e, P "compliance:t:response:1h", NULL);
    expect(e, P "met:all:response:1h:queue=billing", NULL);
    expect(e, P "response_ms:t:7d:mean", NULL);
    expect(e, P "response_ms:t:60m:mean", "2500");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exact_ratios_objective_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_at_risk_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_maps_windows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
