/* Crash safety against a real redis-server: the daemon is killed with
 * SIGKILL at several points (before its first checkpoint, mid-stream, right
 * after breaches fired, while deadlines pass during the downtime) and
 * restarted; every outcome is compared with ground truth computed here
 * independently: no lost clock, no lost breach, every event applied once,
 * duplicates only identical. Also a graceful restart replays nothing. */
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

#define N 200
#define TARGET 2000 /* response target of tier "t", ms */

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
    char text[1024];
    if (h_redis_start(&e->redis, "--appendonly yes") < 0)
        return -1;
    e->c = h_connect(e->redis.port);
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"cr:\" }\n"
             "events: { batch: 7 }\n" /* small batches: kills land mid-batch */
             "tiers:\n  t: { response: 2s }\n"
             "state: { checkpoint_every: 1s }\n",
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
crash(struct env *e)
{
    assert_int_equal(h_daemon_stop(e->daemon, SIGKILL, 2000), 128 + SIGKILL);
    e->daemon = 0;
}

struct ev {
    int64_t at;  /* offset from t0 */
    int ticket;
    const char *type;
};

static int
cmp_ev(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

static void
test_kill9_loses_nothing(void **state)
{
    struct env *e = *state;
    static struct ev evs[N * 2];
    int nev = 0;
    /* Ground truth, decided here: ticket i opens at i*15 ms. Even tickets
     * are answered after 1 s (met). i%4 == 1 answered after 3 s (breached,
     * then recovered). i%4 == 3 never answered (breached, still overdue). */
    for (int i = 0; i < N; i++) {
        evs[nev++] = (struct ev){ i * 15, i, "opened" };
        if (i % 2 == 0)
            evs[nev++] = (struct ev){ i * 15 + 1000, i, "responded" };
        else if (i % 4 == 1)
            evs[nev++] = (struct ev){ i * 15 + 3000, i, "responded" };
    }
    qsort(evs, (size_t)nev, sizeof(evs[0]), cmp_ev);

    start(e);
    assert_true(h_wait_group(e->c, "cr:events", "slawatch", 5000));
    int64_t t0 = h_now_ms() + 100;
    /* Kill points, as offsets from t0, and how long the daemon stays down. */
    const struct { int64_t at; int down_ms; } kills[] = {
        { 500, 0 },     /* before the first checkpoint, mid-stream */
        { 1700, 300 },  /* mid-stream, after a checkpoint */
        { 2150, 0 },    /* right after the first breaches fired */
        { 3300, 1200 }, /* deadlines pass while it is down */
    };
    size_t next_kill = 0;
    int64_t restart_at = -1;
    for (int i = 0; i < nev; i++) {
        int64_t when = t0 + evs[i].at;
        while (next_kill < 4 && t0 + kills[next_kill].at <= when) {
            h_sleep_until(t0 + kills[next_kill].at);
            if (restart_at >= 0) { /* still down from the previous kill */
                h_sleep_until(restart_at);
                start(e);
                restart_at = -1;
            }
            crash(e);
            restart_at = h_now_ms() + kills[next_kill].down_ms;
            if (kills[next_kill].down_ms == 0) {
                start(e);
                restart_at = -1;
            }
            next_kill++;
        }
        if (restart_at >= 0 && h_now_ms() >= restart_at) {
            start(e);
            restart_at = -1;
        }
        h_sleep_until(when);
        char ticket[16], ts[24];
        snprintf(ticket, sizeof(ticket), "K%03d", evs[i].ticket);
        snprintf(ts, sizeof(ts), "%lld", (long long)when);
        assert_int_equal(h_xadd(e->c, "cr:events", NULL, 0, "type", evs[i].type, "ticket",
                                ticket, "ts", ts, NULL), 0);
    }
    while (next_kill < 4) {
        h_sleep_until(t0 + kills[next_kill].at);
        if (restart_at >= 0) {
            h_sleep_until(restart_at);
            start(e);
        }
        crash(e);
        h_sleep_ms(kills[next_kill].down_ms);
        start(e);
        restart_at = -1;
        next_kill++;
    }
    if (restart_at >= 0) {
        h_sleep_until(restart_at);
        start(e);
    }

    /* Let everything settle: the last deadline is t0 + 199*15 + 2000. */
    h_sleep_until(t0 + N * 15 + TARGET + 500);
    long long want_overdue = 0, want_breaches = 0, want_recovered = 0;
    for (int i = 0; i < N; i++) {
        want_breaches += i % 2 == 1;
        want_recovered += i % 4 == 1;
        want_overdue += i % 4 == 3;
    }
    assert_true(h_wait_int(e->c, "cr:stats:events_total", nev, 10000));
    assert_true(h_wait_int(e->c, "cr:open:t", N, 5000));
    assert_true(h_wait_int(e->c, "cr:overdue:t:response", want_overdue, 5000));
    assert_int_equal(h_xpending_count(e->c, "cr:events", "slawatch"), 0);

    /* Every breach and recovery recorded; duplicates only identical. */
    struct h_entry *ent;
    int n = h_xrange(e->c, "cr:breaches", &ent);
    static int breach_seen[N], rec_seen[N];
    static long long breach_deadline[N];
    memset(breach_seen, 0, sizeof(breach_seen));
    memset(rec_seen, 0, sizeof(rec_seen));
    int dup = 0;
    for (int k = 0; k < n; k++) {
        int i = atoi(h_field(&ent[k], "ticket") + 1);
        long long deadline = atoll(h_field(&ent[k], "deadline_ms"));
        const char *kind = h_field(&ent[k], "kind");
        assert_true(i >= 0 && i < N);
        assert_int_equal(deadline, t0 + i * 15 + TARGET);
        if (!strcmp(kind, "breach")) {
            assert_int_equal(i % 2, 1); /* never for an answered ticket */
            if (breach_seen[i]++) {
                dup++;
                assert_int_equal(deadline, breach_deadline[i]);
            }
            breach_deadline[i] = deadline;
        } else {
            assert_string_equal(kind, "recovered");
            assert_int_equal(i % 4, 1);
            dup += rec_seen[i]++ > 0;
        }
    }
    h_entries_free(ent, n);
    long long got_breaches = 0, got_recovered = 0;
    for (int i = 0; i < N; i++) {
        got_breaches += breach_seen[i] > 0;
        got_recovered += rec_seen[i] > 0;
    }
    printf("kill -9 x4: %d entries, %lld/%lld breaches, %lld/%lld recoveries, %d duplicates\n",
           n, got_breaches, want_breaches, got_recovered, want_recovered, dup);
    assert_int_equal(got_breaches, want_breaches);
    assert_int_equal(got_recovered, want_recovered);
}

static int
count_log_lines(struct env *e, const char *needle)
{
    char cmd[600];
    int lines = -1;
    snprintf(cmd, sizeof(cmd), "grep -c '%s' %s/daemon.log", needle, e->redis.dir);
    FILE *p = popen(cmd, "r");
    if (p == NULL || fscanf(p, "%d", &lines) != 1)
        lines = -1;
    if (p)
        pclose(p);
    return lines;
}

static void
test_graceful_restart_replays_nothing(void **state)
{
    struct env *e = *state;
    start(e);
    assert_true(h_wait_group(e->c, "cr:events", "slawatch", 5000));
    int64_t now = h_now_ms();
    char ts[24];
    snprintf(ts, sizeof(ts), "%lld", (long long)now);
    for (int i = 0; i < 20; i++) {
        char ticket[16];
        snprintf(ticket, sizeof(ticket), "G%d", i);
        assert_int_equal(h_xadd(e->c, "cr:events", NULL, 0, "type", "opened", "ticket",
                                ticket, "ts", ts, NULL), 0);
    }
    assert_true(h_wait_int(e->c, "cr:open:t", 20, 5000));
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
    /* Down while the 2 s deadlines pass. */
    h_sleep_until(now + TARGET + 500);
    start(e);
    assert_true(h_wait_xlen(e->c, "cr:breaches", 20, 5000));
    assert_true(h_wait_int(e->c, "cr:overdue:t:response", 20, 5000));
    assert_true(h_wait_int(e->c, "cr:stats:events_total", 20, 3000));
    struct h_entry *ent;
    int n = h_xrange(e->c, "cr:breaches", &ent);
    assert_int_equal(n, 20); /* exactly once each */
    for (int k = 0; k < n; k++) {
        long long late = atoll(h_field(&ent[k], "late_ms"));
        assert_true(late >= 500); /* its true lateness, not reset by the restart */
    }
    h_entries_free(ent, n);
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
    /* Both starts replayed nothing: the first found an empty stream, the
     * second a final checkpoint holding all 20 tickets. */
    assert_int_equal(count_log_lines(e, "replayed 0 events after the checkpoint"), 2);
    assert_int_equal(count_log_lines(e, "loaded 20 tickets from the checkpoint"), 1);
}

static void
test_damaged_checkpoint_refused(void **state)
{
    struct env *e = *state;
    redisReply *r = redisCommand(e->c, "SET cr:state garbage-not-a-checkpoint");
    freeReplyObject(r);
    start(e);
    /* It refuses to start on a state it cannot read, with a clear message. */
    int status = -1;
    for (int i = 0; i < 100 && status < 0; i++) {
        int st;
        if (waitpid(e->daemon, &st, WNOHANG) == e->daemon)
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        else
            h_sleep_ms(50);
    }
    e->daemon = 0;
    assert_int_equal(status, 1);
    assert_int_equal(count_log_lines(e, "cr:state is unusable"), 1);
}

static void
test_redis_restart_with_aof_loses_nothing(void **state)
{
    struct env *e = *state;
    start(e);
    assert_true(h_wait_group(e->c, "cr:events", "slawatch", 5000));
    int64_t now = h_now_ms();
    char ts[24];
    snprintf(ts, sizeof(ts), "%lld", (long long)now);
    for (int i = 0; i < 30; i++) {
        char ticket[16];
        snprintf(ticket, sizeof(ticket), "A%d", i);
        assert_int_equal(h_xadd(e->c, "cr:events", NULL, 0, "type", "opened", "ticket",
                                ticket, "ts", ts, NULL), 0);
    }
    assert_true(h_wait_int(e->c, "cr:open:t", 30, 5000));
    /* Redis restarts (AOF on) and stays down while the deadlines pass. */
    redisFree(e->c);
    e->c = NULL;
    h_redis_kill(&e->redis); /* the AOF has every acknowledged write */
    h_sleep_until(now + TARGET + 700);
    assert_int_equal(h_redis_restart(&e->redis), 0);
    e->c = h_connect(e->redis.port);
    assert_non_null(e->c);
    /* The daemon stayed up, reconnected and recorded every breach once. */
    assert_int_equal(kill(e->daemon, 0), 0);
    assert_true(h_wait_xlen(e->c, "cr:breaches", 30, 10000));
    assert_true(h_wait_int(e->c, "cr:overdue:t:response", 30, 5000));
    h_sleep_ms(300);
    struct h_entry *ent;
    int n = h_xrange(e->c, "cr:breaches", &ent);
    assert_int_equal(n, 30);
    h_entries_free(ent, n);
    /* And it goes on consuming. */
    assert_int_equal(h_xadd(e->c, "cr:events", NULL, 0, "type", "responded", "ticket",
                            "A0", NULL), 0);
    assert_true(h_wait_int(e->c, "cr:overdue:t:response", 29, 5000));
    assert_int_equal(h_xpending_count(e->c, "cr:events", "slawatch"), 0);
    assert_true(h_wait_int(e->c, "cr:stats:events_total", 31, 3000));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_restart_replays_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_checkpoint_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_restart_with_aof_loses_nothing, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
