/* Integration tests of the core daemon against a real redis-server: a
 * scripted scenario produces exactly the expected <prefix>breaches entries,
 * each once and detected within 100 ms of its deadline; every malformed
 * event is dead-lettered; nothing stays pending; SIGTERM exits 0. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

struct env {
    struct h_redis redis;
    redisContext *c;
    char *cfg;
    pid_t daemon;
};

static const char *config_fmt =
    "redis: { host: 127.0.0.1, port: %d, prefix: \"it:\" }\n"
    "events: { batch: 50, max_clock_skew: 1m }\n"
    "tiers:\n"
    "  fast: { response: 1s, resolution: 3s, warn: [50%%] }\n"
    "  slow: { response: 2s }\n"
    "policies:\n"
    "  - { match: { priority: urgent }, tier: fast }\n"
    "  - { tier: slow }\n"
    "log: { level: debug }\n";

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    char text[1024];
    if (h_redis_start(&e->redis, NULL) < 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return -1;
    }
    e->c = h_connect(e->redis.port);
    snprintf(text, sizeof(text), config_fmt, e->redis.port);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    if (e->c == NULL || !h_wait_group(e->c, "it:events", "slawatch", 5000)) {
        h_dump_file(e->redis.dir, "daemon.log");
        return -1;
    }
    *state = e;
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    if (e->daemon > 0 && h_daemon_stop(e->daemon, SIGKILL, 2000) != 128 + SIGKILL)
        fprintf(stderr, "daemon had already exited\n");
    if (e->c)
        redisFree(e->c);
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return 0;
}

static char *
ms(int64_t v)
{
    static char buf[8][24];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%lld", (long long)v);
    return buf[i];
}

static void
emit(struct env *e, const char *type, const char *ticket, int64_t ts, ...)
{
    const char *argv[40];
    int argc = 0;
    va_list ap;
    argv[argc++] = "XADD";
    argv[argc++] = "it:events";
    argv[argc++] = "*";
    argv[argc++] = "type";
    argv[argc++] = type;
    argv[argc++] = "ticket";
    argv[argc++] = ticket;
    argv[argc++] = "ts";
    argv[argc++] = ms(ts);
    va_start(ap, ts);
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
        argv[argc++] = s;
    va_end(ap);
    redisReply *r = redisCommandArgv(e->c, argc, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
}

struct expect {
    const char *ticket;
    const char *kind;
    const char *metric;
    int64_t deadline_off; /* from t0 */
    bool live;            /* detected by the timer, so within 100 ms */
    int seen;
};

static void
test_scenario(void **state)
{
    struct env *e = *state;
    int64_t t0 = h_now_ms() + 200;

    /* A: answered and resolved in time: nothing.
     * B: unanswered: warnings at 50% and breaches of both clocks.
     * C: deleted before anything is due: nothing.
     * D: paused at +100 ms (resolution only), resumed at +2.1 s, resolved
     *    at +3.3 s: the response breaches at 1 s and recovers at the
     *    resolution; the resolution (1.3 s counted of 3 s) is met, without
     *    even its 50% warning.
     * E: backdated 10 s: both clocks breached at once, no warnings.
     * F: explicit tier fast over a slow priority: breaches at 1 s (not
     *    2 s), answered at 1.3 s (recovered), closed at 2 s after its
     *    resolution warning at 1.5 s.
     * G: opened slow, escalated to urgent at 1.3 s: the fast 1 s target is
     *    already past, so it breaches at once with deadline t0 + 1 s; its
     *    new resolution clock counts from the opening. */
    h_sleep_until(t0);
    emit(e, "opened", "A", t0, "priority", "urgent", NULL);
    emit(e, "opened", "B", t0, "priority", "urgent", NULL);
    emit(e, "opened", "C", t0, "priority", "urgent", NULL);
    emit(e, "opened", "D", t0, "priority", "urgent", NULL);
    emit(e, "opened", "E", t0 - 10000, "priority", "urgent", NULL);
    emit(e, "opened", "F", t0, "priority", "low", "tier", "fast", NULL);
    emit(e, "opened", "G", t0, "priority", "low", NULL);
    h_sleep_until(t0 + 100);
    emit(e, "deleted", "C", t0 + 100, NULL);
    emit(e, "paused", "D", t0 + 100, NULL);
    h_sleep_until(t0 + 300);
    emit(e, "responded", "A", t0 + 300, NULL);
    h_sleep_until(t0 + 400);
    emit(e, "resolved", "A", t0 + 400, NULL);
    h_sleep_until(t0 + 1300);
    emit(e, "responded", "F", t0 + 1300, NULL);
    emit(e, "updated", "G", t0 + 1300, "priority", "urgent", NULL);
    h_sleep_until(t0 + 2000);
    emit(e, "closed", "F", t0 + 2000, NULL);
    h_sleep_until(t0 + 2100);
    emit(e, "resumed", "D", t0 + 2100, NULL);
    h_sleep_until(t0 + 3300);
    emit(e, "resolved", "D", t0 + 3300, NULL);
    h_sleep_until(t0 + 4200);

    struct expect want[] = {
        { "B", "warning", "response", 1000, true, 0 },
        { "B", "breach", "response", 1000, true, 0 },
        { "B", "warning", "resolution", 3000, true, 0 },
        { "B", "breach", "resolution", 3000, true, 0 },
        { "D", "warning", "response", 1000, true, 0 },
        { "D", "breach", "response", 1000, true, 0 },
        { "D", "recovered", "response", 1000, false, 0 },
        { "E", "breach", "response", -9000, false, 0 },
        { "E", "breach", "resolution", -7000, false, 0 },
        { "F", "warning", "response", 1000, true, 0 },
        { "F", "breach", "response", 1000, true, 0 },
        { "F", "recovered", "response", 1000, false, 0 },
        { "F", "warning", "resolution", 3000, true, 0 },
        { "G", "breach", "response", 1000, false, 0 },
        { "G", "warning", "resolution", 3000, true, 0 },
        { "G", "breach", "resolution", 3000, true, 0 },
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    assert_true(h_wait_xlen(e->c, "it:breaches", (long long)nwant, 5000));
    h_sleep_ms(300); /* anything extra would show up now */

    struct h_entry *ent;
    int n = h_xrange(e->c, "it:breaches", &ent);
    int unexpected = 0;
    for (int i = 0; i < n; i++) {
        const char *ticket = h_field(&ent[i], "ticket");
        const char *kind = h_field(&ent[i], "kind");
        const char *metric = h_field(&ent[i], "metric");
        size_t k;
        for (k = 0; k < nwant; k++)
            if (!strcmp(want[k].ticket, ticket) && !strcmp(want[k].kind, kind) &&
                !strcmp(want[k].metric, metric))
                break;
        if (k == nwant) {
            fprintf(stderr, "unexpected entry: %s %s %s\n", ticket, kind, metric);
            unexpected++;
            continue;
        }
        want[k].seen++;
        long long deadline = atoll(h_field(&ent[i], "deadline_ms"));
        long long at = atoll(h_field(&ent[i], "at_ms"));
        long long late = atoll(h_field(&ent[i], "late_ms"));
        assert_int_equal(late, at - deadline);
        assert_string_equal(h_field(&ent[i], "tier"), "fast");
        if (!strcmp(kind, "warning"))
            assert_string_equal(h_field(&ent[i], "percent"), "50");
        assert_int_equal(deadline, t0 + want[k].deadline_off);
        if (!strcmp(kind, "breach") && want[k].live) {
            /* Fired by the timer at the deadline itself. */
            if (late < 0 || late > 100)
                fprintf(stderr, "%s %s %s detected %lld ms late\n", ticket, kind, metric, late);
            assert_true(late >= 0 && late <= 100);
        }
        if (!strcmp(ticket, "E"))
            assert_true(late >= 7000); /* backdated: its true lateness */
    }
    h_entries_free(ent, n);
    for (size_t k = 0; k < nwant; k++) {
        if (want[k].seen != 1)
            fprintf(stderr, "%s %s %s seen %d times\n", want[k].ticket, want[k].kind,
                    want[k].metric, want[k].seen);
        assert_int_equal(want[k].seen, 1);
    }
    assert_int_equal(unexpected, 0);

    /* Gauges: B, E, G are open; each overdue on both clocks. */
    assert_true(h_wait_int(e->c, "it:open:fast", 3, 3000));
    assert_true(h_wait_int(e->c, "it:open:slow", 0, 3000));
    assert_true(h_wait_int(e->c, "it:overdue:fast:response", 3, 3000));
    assert_true(h_wait_int(e->c, "it:overdue:fast:resolution", 3, 3000));
    assert_true(h_wait_int(e->c, "it:stats:events_total", 16, 3000));
    assert_true(h_wait_int(e->c, "it:stats:rejected_total", 0, 3000));
    assert_true(h_wait_int(e->c, "it:stats:lag", 0, 3000));
    assert_int_equal(h_xpending_count(e->c, "it:events", "slawatch"), 0);

    /* SIGTERM: finishes and exits 0 within 5 s. */
    int status = h_daemon_stop(e->daemon, SIGTERM, 5000);
    e->daemon = 0;
    assert_int_equal(status, 0);
}

static void
test_dead_letters(void **state)
{
    struct env *e = *state;
    char long_ticket[200], long_attr[400], future[24];
    memset(long_ticket, 'x', sizeof(long_ticket) - 1);
    long_ticket[sizeof(long_ticket) - 1] = '\0';
    memset(long_attr, 'p', sizeof(long_attr) - 1);
    long_attr[sizeof(long_attr) - 1] = '\0';
    snprintf(future, sizeof(future), "%lld", (long long)h_now_ms() + 3600000);

    struct {
        const char *fields[8];
        const char *reason;
        char id[48];
    } bad[] = {
        { { "ticket", "M1", NULL }, "missing type", "" },
        { { "type", "exploded", "ticket", "M2", NULL }, "unknown type", "" },
        { { "type", "opened", NULL }, "missing ticket", "" },
        { { "type", "opened", "ticket", long_ticket, NULL }, "field too long", "" },
        { { "type", "opened", "ticket", "bad\x01id", NULL }, "bad ticket", "" },
        { { "type", "opened", "ticket", "M3", "ts", "yesterday", NULL }, "bad ts", "" },
        { { "type", "opened", "ticket", "M4", "ts", future, NULL }, "ts in the future", "" },
        { { "type", "responded", "ticket", "nobody", NULL }, "unknown ticket", "" },
        { { "type", "opened", "ticket", "M5", "priority", long_attr, NULL }, "field too long", "" },
    };
    size_t nbad = sizeof(bad) / sizeof(bad[0]);
    char okid[48];
    for (size_t i = 0; i < nbad; i++) {
        const char **f = bad[i].fields;
        assert_int_equal(h_xadd(e->c, "it:events", bad[i].id, sizeof(bad[i].id),
                                f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]), 0);
    }
    /* A good event after the bad ones is still applied. */
    assert_int_equal(h_xadd(e->c, "it:events", okid, sizeof(okid), "type", "opened",
                            "ticket", "fine", "priority", "urgent", NULL), 0);
    assert_true(h_wait_xlen(e->c, "it:events:dead", (long long)nbad, 5000));
    assert_true(h_wait_int(e->c, "it:open:fast", 1, 3000));

    struct h_entry *ent;
    int n = h_xrange(e->c, "it:events:dead", &ent);
    assert_int_equal(n, (int)nbad);
    for (size_t i = 0; i < nbad; i++) {
        assert_string_equal(h_field(&ent[i], "source_id"), bad[i].id);
        assert_string_equal(h_field(&ent[i], "reason"), bad[i].reason);
        /* The original fields are kept. */
        for (int k = 0; bad[i].fields[k]; k += 2)
            assert_string_equal(h_field(&ent[i], bad[i].fields[k]), bad[i].fields[k + 1]);
    }
    h_entries_free(ent, n);
    assert_true(h_wait_int(e->c, "it:stats:rejected_total", (long long)nbad, 3000));
    assert_true(h_wait_int(e->c, "it:stats:events_total", (long long)nbad + 1, 3000));
    assert_int_equal(h_xpending_count(e->c, "it:events", "slawatch"), 0);

    /* Still alive and consuming. */
    assert_int_equal(h_xadd(e->c, "it:events", okid, sizeof(okid), "type", "deleted",
                            "ticket", "fine", NULL), 0);
    assert_true(h_wait_int(e->c, "it:open:fast", 0, 3000));
}

static void
test_pending_replayed_after_restart(void **state)
{
    struct env *e = *state;
    /* Stop the daemon, then write events nobody reads yet; deliver some to
     * the daemon's consumer without acknowledging them (as if it died
     * mid-batch), and check the next start applies both kinds. */
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
    char host[256];
    gethostname(host, sizeof(host));
    assert_int_equal(h_xadd(e->c, "it:events", NULL, 0, "type", "opened", "ticket",
                            "P1", "priority", "urgent", NULL), 0);
    redisReply *r = redisCommand(e->c, "XREADGROUP GROUP slawatch %s COUNT 1 STREAMS it:events >", host);
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(h_xpending_count(e->c, "it:events", "slawatch"), 1);
    assert_int_equal(h_xadd(e->c, "it:events", NULL, 0, "type", "opened", "ticket",
                            "P2", "priority", "urgent", NULL), 0);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(h_wait_int(e->c, "it:open:fast", 2, 5000));
    assert_true(h_wait_int(e->c, "it:stats:events_total", 2, 3000));
    assert_int_equal(h_xpending_count(e->c, "it:events", "slawatch"), 0);
}

static int
count_entries(redisContext *c, const char *ticket, const char *kind, const char *metric)
{
    struct h_entry *ent;
    int n = h_xrange(c, "it:breaches", &ent), found = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(h_field(&ent[i], "ticket"), ticket) &&
            !strcmp(h_field(&ent[i], "kind"), kind) &&
            !strcmp(h_field(&ent[i], "metric"), metric))
            found++;
    h_entries_free(ent, n);
    return found;
}

static void
test_redis_restart_reconnects(void **state)
{
    struct env *e = *state;
    int64_t opened = h_now_ms();
    assert_int_equal(h_xadd(e->c, "it:events", NULL, 0, "type", "opened", "ticket",
                            "R1", "ts", ms(opened), NULL), 0);
    assert_true(h_wait_int(e->c, "it:open:slow", 1, 3000));
    /* Redis goes away (no persistence: it comes back empty) while a
     * deadline is running; the daemon keeps its clocks, reconnects with
     * backoff, recreates the group and records the breach it detected
     * during the outage. */
    redisFree(e->c);
    e->c = NULL;
    h_redis_kill(&e->redis);
    h_sleep_until(opened + 2500); /* R1's 2 s deadline passes while Redis is down */
    assert_int_equal(h_redis_restart(&e->redis), 0);
    e->c = h_connect(e->redis.port);
    assert_non_null(e->c);
    assert_true(h_wait_group(e->c, "it:events", "slawatch", 8000));
    /* Recorded after the reconnect, and only once. */
    int breaches = 0;
    for (int waited = 0; waited < 8000 && breaches == 0; waited += 100) {
        h_sleep_ms(100);
        breaches = count_entries(e->c, "R1", "breach", "response");
    }
    h_sleep_ms(300);
    if (count_entries(e->c, "R1", "breach", "response") != 1)
        h_dump_file(e->redis.dir, "daemon.log");
    assert_int_equal(count_entries(e->c, "R1", "breach", "response"), 1);
    /* And it consumes again. */
    assert_int_equal(h_xadd(e->c, "it:events", NULL, 0, "type", "responded", "ticket",
                            "R1", NULL), 0);
    assert_true(h_wait_int(e->c, "it:overdue:slow:response", 0, 5000));
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
    /* One line for the loss and one for the recovery, not one per retry. */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "grep -c 'connection lost' %s/daemon.log", e->redis.dir);
    FILE *p = popen(cmd, "r");
    int lost = -1;
    assert_int_equal(fscanf(p, "%d", &lost), 1);
    pclose(p);
    assert_int_equal(lost, 3); /* reader, writer and lease */
}

/* A burst of exactly one full batch, then silence: the deadlines must still
 * fire by the wall clock at once, not after the next blocking read. */
static void
test_full_batch_then_idle(void **state)
{
    struct env *e = *state;
    int64_t t0 = h_now_ms();
    redisReply *r = redisCommand(e->c, "MULTI");
    freeReplyObject(r);
    for (int i = 0; i < 50; i++) { /* events.batch is 50 */
        char ticket[16];
        snprintf(ticket, sizeof(ticket), "FB%d", i);
        r = redisCommand(e->c, "XADD it:events * type opened ticket %s priority urgent ts %s",
                         ticket, ms(t0));
        freeReplyObject(r);
    }
    r = redisCommand(e->c, "EXEC");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    /* 50 response breaches at t0 + 1 s, each detected within 100 ms. */
    h_sleep_until(t0 + 1400);
    struct h_entry *ent;
    int n = h_xrange(e->c, "it:breaches", &ent), breaches = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(h_field(&ent[i], "kind"), "breach") ||
            strcmp(h_field(&ent[i], "metric"), "response"))
            continue;
        breaches++;
        long long late = atoll(h_field(&ent[i], "late_ms"));
        assert_true(late >= 0 && late <= 100);
    }
    h_entries_free(ent, n);
    assert_int_equal(breaches, 50);
}

static void
test_bad_config_exits_78(void **state)
{
    struct env *e = *state;
    char cmd[1024];
    char *bad = h_write_file(e->redis.dir, "bad.yaml",
                             "redis: { port: 70000 }\ntiers:\n  x: { response: 5 }\nbogus: 1\n");
    snprintf(cmd, sizeof(cmd), "%s/slawatchd -c %s -t 2>%s/check.err", h_build_dir(), bad,
             e->redis.dir);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 78);
    snprintf(cmd, sizeof(cmd), "grep -c '^%s:[0-9]*:[0-9]*: ' %s/check.err", bad, e->redis.dir);
    FILE *p = popen(cmd, "r");
    int lines = 0;
    assert_int_equal(fscanf(p, "%d", &lines), 1);
    pclose(p);
    assert_true(lines >= 3); /* every error, each with line and column */
    /* The daemon itself refuses to start with it, status 78. */
    snprintf(cmd, sizeof(cmd), "%s/slawatchd -c %s 2>/dev/null", h_build_dir(), bad);
    rc = system(cmd);
    assert_int_equal(WEXITSTATUS(rc), 78);
    snprintf(cmd, sizeof(cmd), "%s/slawatchd -c %s -t >%s/check.out", h_build_dir(), e->cfg,
             e->redis.dir);
    assert_int_equal(system(cmd), 0);
    free(bad);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scenario, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_replayed_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_restart_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_batch_then_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config_exits_78, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
