/* Redis refusing writes, against a real redis-server: with maxmemory at
 * one byte (OOM), with an ACL user that may not XADD (NOPERM), and with a
 * key someone overwrote (WRONGTYPE). Every breach record lands exactly
 * once, in order, once Redis accepts writes again; events are acknowledged
 * only after their outputs were accepted; the refusals are counted and
 * logged at a bounded rate; a write no retry can cure is moved aside into
 * <prefix>writes:dead instead of holding every later one. */
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

static int
start_env(void **state, const char *redis_auth, const char *extra_redis)
{
    struct env *e = calloc(1, sizeof(*e));
    char text[1024];
    *state = e;
    if (h_redis_start(&e->redis, NULL) < 0 || (e->c = h_connect(e->redis.port)) == NULL)
        return -1;
    if (redis_auth) {
        /* The daemon's own ACL user, which the tests take rights from. */
        if (h_cmd(e->c, "ACL SETUSER slw on >pw1 ~* &* +@all") < 0)
            return -1;
        char *pw = h_write_file(e->redis.dir, "redis.pass", "pw1\n");
        chmod(pw, 0600);
        free(pw);
    }
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"we:\"%s%s%s%s }\n"
             "events: { batch: 50 }\n"
             "tiers:\n  t: { response: 1s }\n"
             "log: { level: info }\n",
             e->redis.port, redis_auth ? ", username: slw, password_file: " : "",
             redis_auth ? e->redis.dir : "", redis_auth ? "/redis.pass" : "",
             extra_redis ? extra_redis : "");
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    if (!h_wait_group(e->c, "we:events", "slawatch", 5000)) {
        h_dump_file(e->redis.dir, "daemon.log");
        return -1;
    }
    return 0;
}

static int
setup(void **state)
{
    return start_env(state, NULL, NULL);
}

static int
setup_small_queue(void **state)
{
    return start_env(state, NULL, ", max_queue_mb: 1");
}

static int
setup_acl(void **state)
{
    return start_env(state, "acl", NULL);
}

static int
teardown(void **state)
{
    struct env *e = *state;
    if (e->daemon > 0 && h_daemon_stop(e->daemon, SIGKILL, 2000) != 128 + SIGKILL)
        fprintf(stderr, "daemon had already exited\n");
    if (e->c) {
        redisFree(e->c);
        e->c = NULL;
    }
    if (getenv("SLAWATCH_TEST_VERBOSE"))
        h_dump_file(e->redis.dir, "daemon.log");
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return 0;
}

static void
emit(struct env *e, const char *type, const char *ticket, int64_t ts)
{
    char tsbuf[24];
    snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
    assert_int_equal(h_xadd(e->c, "we:events", NULL, 0, "type", type, "ticket", ticket,
                            "ts", tsbuf, NULL), 0);
}

/* Polls until XPENDING of the group is want. */
static bool
wait_pending(struct env *e, long long want, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        if (h_xpending_count(e->c, "we:events", "slawatch") == want)
            return true;
        h_sleep_ms(20);
    }
    fprintf(stderr, "XPENDING is %lld, not %lld\n",
            h_xpending_count(e->c, "we:events", "slawatch"), want);
    return false;
}

/* Every breach record: each ticket of `tickets` exactly once, in the
 * order given (the order they were decided), except that the first
 * `same` of them were decided at the same instant (their arrival), in no
 * defined order among themselves. */
static void
check_breaches(struct env *e, const char *const *tickets, int n, int same)
{
    struct h_entry *ent;
    assert_true(h_wait_xlen(e->c, "we:breaches", n, 8000));
    h_sleep_ms(300); /* a duplicate would show up now */
    int got = h_xrange(e->c, "we:breaches", &ent);
    if (got != n)
        h_dump_file(e->redis.dir, "daemon.log");
    assert_int_equal(got, n);
    for (int i = 0; i < n; i++) {
        assert_string_equal(h_field(&ent[i], "kind"), "breach");
        if (i >= same) {
            assert_string_equal(h_field(&ent[i], "ticket"), tickets[i]);
            continue;
        }
        int found = 0;
        for (int k = 0; k < same; k++)
            found += strcmp(h_field(&ent[k], "ticket"), tickets[i]) == 0;
        assert_int_equal(found, 1);
    }
    h_entries_free(ent, got);
}

static void
test_oom_holds_writes_and_acks(void **state)
{
    struct env *e = *state;
    static const char *const order[] = {
        "S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "L0", "L1", "L2",
    };
    /* Staged while the daemon is stopped (Redis takes no XADD of ours
     * once it is out of memory): three live tickets whose 1 s deadlines
     * pass during the outage, eight tickets opened 10 s ago, which breach
     * the moment they are applied, and one bad event (a dead letter).
     * Then Redis runs out of memory. */
    assert_int_equal(kill(e->daemon, SIGSTOP), 0);
    int64_t now = h_now_ms();
    emit(e, "opened", "L0", now);
    emit(e, "opened", "L1", now + 1);
    emit(e, "opened", "L2", now + 2);
    char tk[16];
    for (int i = 0; i < 8; i++) {
        snprintf(tk, sizeof(tk), "S%d", i);
        emit(e, "opened", tk, now - 10000 + i);
    }
    assert_int_equal(h_xadd(e->c, "we:events", NULL, 0, "type", "opened", NULL), 0);
    assert_int_equal(h_cmd(e->c, "CONFIG SET maxmemory 1"), 0);
    assert_int_equal(kill(e->daemon, SIGCONT), 0);

    /* The daemon reads the twelve entries, but their outputs are refused,
     * so they stay unacknowledged, and the live deadlines pass. (The read
     * blocked when the daemon stopped was answered with L0 alone: that
     * batch has no output, so its XACK may pass.) */
    long long pending = 0;
    for (int i = 0; i < 250 && pending < 11; i++) {
        h_sleep_ms(20);
        pending = h_xpending_count(e->c, "we:events", "slawatch");
    }
    assert_true(pending == 11 || pending == 12);
    h_sleep_until(now + 3500);
    assert_int_equal(h_xpending_count(e->c, "we:events", "slawatch"), pending);
    redisReply *r = redisCommand(e->c, "XLEN we:breaches");
    assert_non_null(r);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    assert_int_equal(kill(e->daemon, 0), 0);

    /* Memory again: everything lands, once, in order; then the XACK. */
    assert_int_equal(h_cmd(e->c, "CONFIG SET maxmemory 0"), 0);
    /* The eight opened 10 s ago are decided as they arrive (the time
     * rule), in the same batch: in any order among themselves. */
    check_breaches(e, order, (int)(sizeof(order) / sizeof(order[0])), 8);
    assert_true(h_wait_xlen(e->c, "we:events:dead", 1, 5000));
    assert_true(wait_pending(e, 0, 5000));
    h_sleep_ms(200);
    r = redisCommand(e->c, "XLEN we:events:dead");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);

    /* Counted, and logged at a bounded rate: many refusals, few lines. */
    long long errors = 0;
    for (int i = 0; i < 60 && errors < 5; i++) {
        h_sleep_ms(50);
        (void)h_get_int(e->c, "we:stats:redis_write_errors_total", &errors);
    }
    int lines = h_count_lines(e->redis.dir, "daemon.log", "refused: OOM");
    printf("OOM: %lld refused writes counted, %d logged\n", errors, lines);
    assert_true(errors >= 5); /* every refusal counts: the first ones and each probe */
    assert_true(lines >= 1 && lines <= 5);
    assert_int_equal(h_count_lines(e->redis.dir, "daemon.log", "Redis accepts writes again"),
                     1);
    assert_true(h_wait_int(e->c, "we:stats:redis_writes_dead_total", 0, 3000));
    assert_true(h_wait_int(e->c, "we:stats:redis_queue", 0, 3000));

    /* Still consuming. */
    emit(e, "responded", "L0", h_now_ms());
    assert_true(h_wait_int(e->c, "we:overdue:t:response", 10, 5000));
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
}

static void
test_acl_without_xadd(void **state)
{
    struct env *e = *state;
    static const char *const order[] = { "A0", "A1", "A2" };
    /* The daemon's user loses XADD: breach records and dead letters are
     * refused with NOPERM (gauges, MSET, still work). */
    assert_int_equal(h_cmd(e->c, "ACL SETUSER slw -xadd"), 0);
    int64_t now = h_now_ms();
    for (int i = 0; i < 3; i++) {
        char tk[16];
        snprintf(tk, sizeof(tk), "A%d", i);
        emit(e, "opened", tk, now - 5000 + i); /* breached when applied */
    }
    /* Their breaches are decided as arrival time passes their arrival (the
     * time rule), just after the batch: the batch's XACK may pass before
     * them; the records are held. */
    long long errors = 0, queued = 0;
    assert_true(h_wait_int(e->c, "we:stats:redis_write_errors_total", 1, 5000) ||
                (h_get_int(e->c, "we:stats:redis_write_errors_total", &errors) && errors > 1));
    h_sleep_ms(1500);
    redisReply *none = redisCommand(e->c, "XLEN we:breaches");
    assert_int_equal(none->integer, 0);
    freeReplyObject(none);
    assert_true(h_get_int(e->c, "we:stats:redis_write_errors_total", &errors));
    assert_true(h_get_int(e->c, "we:stats:redis_queue", &queued));
    assert_true(errors >= 1);
    assert_true(queued >= 3); /* the three records */
    /* NOPERM, as Redis words it inside the fence script (docs/ha.md). */
    assert_true(h_count_lines(e->redis.dir, "daemon.log", "refused: NOPERM") +
                    h_count_lines(e->redis.dir, "daemon.log", "can't run this command") >=
                1);

    assert_int_equal(h_cmd(e->c, "ACL SETUSER slw +xadd"), 0);
    check_breaches(e, order, 3, 3);
    assert_true(wait_pending(e, 0, 5000));
    assert_true(h_wait_int(e->c, "we:stats:redis_queue", 0, 3000));
}

static void
test_wrongtype_moved_aside(void **state)
{
    struct env *e = *state;
    /* Someone replaces the breaches stream with a string: a write no retry
     * can cure. It is moved aside after a few tries, and the writes behind
     * it (the XACK) go on. */
    assert_int_equal(h_cmd(e->c, "SET we:breaches not-a-stream"), 0);
    int64_t now = h_now_ms();
    emit(e, "opened", "W0", now - 5000);
    assert_true(h_wait_xlen(e->c, "we:writes:dead", 1, 8000));
    assert_true(wait_pending(e, 0, 5000));
    struct h_entry *ent;
    int n = h_xrange(e->c, "we:writes:dead", &ent);
    assert_int_equal(n, 1);
    assert_string_equal(h_field(&ent[0], "command"), "XADD");
    assert_string_equal(h_field(&ent[0], "key"), "we:breaches");
    assert_true(strncmp(h_field(&ent[0], "error"), "WRONGTYPE", 9) == 0);
    assert_string_equal(h_field(&ent[0], "tries"), "3");
    assert_non_null(strstr(h_field(&ent[0], "resp"), "W0"));
    h_entries_free(ent, n);
    assert_true(h_wait_int(e->c, "we:stats:redis_writes_dead_total", 1, 3000));
    assert_true(h_count_lines(e->redis.dir, "daemon.log", "giving up XADD we:breaches") == 1);

    /* Repaired: the next breach is recorded normally. */
    assert_int_equal(h_cmd(e->c, "DEL we:breaches"), 0);
    emit(e, "opened", "W1", h_now_ms() - 5000);
    assert_true(h_wait_xlen(e->c, "we:breaches", 1, 5000));
    assert_true(wait_pending(e, 0, 5000));
}

static void
test_queue_cap_pauses_reading(void **state)
{
    struct env *e = *state;
    enum { N = 6000 }; /* breach records of ~230 bytes: over the 1 MiB cap */
    int64_t now = h_now_ms();
    assert_int_equal(kill(e->daemon, SIGSTOP), 0);
    for (int i = 0; i < N; i++) {
        char tk[16], ts[24];
        snprintf(tk, sizeof(tk), "P%05d", i);
        snprintf(ts, sizeof(ts), "%lld", (long long)(now - 10000));
        redisAppendCommand(e->c, "XADD we:events * type opened ticket %s ts %s", tk, ts);
    }
    for (int i = 0; i < N; i++) {
        redisReply *r = NULL;
        assert_int_equal(redisGetReply(e->c, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
    assert_int_equal(h_cmd(e->c, "CONFIG SET maxmemory 1"), 0);
    assert_int_equal(kill(e->daemon, SIGCONT), 0);

    /* Every breach is refused, the queue passes its cap, reading stops
     * short of the stream's end and stays stopped. */
    bool paused = false;
    for (int i = 0; i < 200 && !paused; i++) {
        h_sleep_ms(50);
        paused = h_count_lines(e->redis.dir, "daemon.log", "reading paused") == 1;
    }
    assert_true(paused);
    h_sleep_ms(300);
    long long read1 = h_xpending_count(e->c, "we:events", "slawatch");
    h_sleep_ms(1500);
    long long read2 = h_xpending_count(e->c, "we:events", "slawatch");
    printf("queue cap: reading paused after %lld of %d entries\n", read1, N);
    assert_true(read1 > 1000 && read1 < N);
    assert_int_equal(read2, read1);

    /* Memory again: the queue drains, reading resumes, nothing is lost. */
    assert_int_equal(h_cmd(e->c, "CONFIG SET maxmemory 0"), 0);
    assert_true(h_wait_xlen(e->c, "we:breaches", N, 20000));
    assert_true(wait_pending(e, 0, 10000));
    h_sleep_ms(300);
    struct h_entry *ent;
    int n = h_xrange(e->c, "we:breaches", &ent);
    assert_int_equal(n, N);
    static char seen[N];
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < n; i++) {
        int k = atoi(h_field(&ent[i], "ticket") + 1);
        assert_true(k >= 0 && k < N);
        assert_int_equal(seen[k]++, 0); /* once each; decided as they arrived,
                                           several in one instant */
    }
    h_entries_free(ent, n);
    assert_true(h_count_lines(e->redis.dir, "daemon.log", "reading resumes") >= 1);
    assert_true(h_wait_int(e->c, "we:stats:redis_writes_dropped_total", 0, 3000));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_oom_holds_writes_and_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_without_xadd, setup_acl, teardown),
        cmocka_unit_test_setup_teardown(test_wrongtype_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_cap_pauses_reading, setup_small_queue,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
