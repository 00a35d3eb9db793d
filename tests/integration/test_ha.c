/* High availability (SPEC section 7) with real processes: two and three
 * daemons on one prefix split nothing; kill -9 of the leader while
 * deadlines are due leaves them to the standby; a leader frozen past its
 * lease (SIGSTOP) is deposed, writes nothing when it wakes and steps down;
 * and every instance stopped, one fresh start fires nothing twice. Leases
 * are 2 s so that each case is bounded to seconds. */
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

#include <cmocka.h>

#include "harness.h"

#define LEASE_MS 2000
#define MAXD 3

struct env {
    struct h_redis redis;
    redisContext *c;
    char *cfg[MAXD];
    char dir[MAXD][300];
    pid_t pid[MAXD];
};

static const char *cfg_fmt =
    "redis: { host: 127.0.0.1, port: %d, prefix: \"ha:\" }\n"
    "events: { consumer: node%d }\n"
    "ha: { lease: 2s }\n"
    "state: { checkpoint_every: 1s }\n"
    "tiers:\n"
    "  quick: { response: 3s }\n"
    "  slow:  { response: 1h }\n"
    "policies:\n"
    "  - { match: { priority: high }, tier: quick }\n"
    "  - { tier: slow }\n";

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    char text[1024];
    if (e == NULL || h_redis_start(&e->redis, NULL) < 0)
        return -1;
    e->c = h_connect(e->redis.port);
    for (int i = 0; i < MAXD; i++) {
        snprintf(e->dir[i], sizeof(e->dir[i]), "%s/node%d", e->redis.dir, i);
        mkdir(e->dir[i], 0700);
        snprintf(text, sizeof(text), cfg_fmt, e->redis.port, i);
        e->cfg[i] = h_write_file(e->dir[i], "slawatch.yaml", text);
    }
    *state = e;
    return e->c ? 0 : -1;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    for (int i = 0; i < MAXD; i++) {
        if (e->pid[i] > 0) {
            kill(e->pid[i], SIGCONT);
            h_daemon_stop(e->pid[i], SIGTERM, 5000);
        }
        free(e->cfg[i]);
    }
    redisFree(e->c);
    h_redis_stop(&e->redis);
    free(e);
    return 0;
}

static void
start(struct env *e, int i)
{
    e->pid[i] = h_daemon_start(e->cfg[i], e->dir[i]);
    assert_true(e->pid[i] > 0);
}

/* The node index that leads (by <prefix>leader), waiting up to ms. */
static int
wait_leader(struct env *e, int ms)
{
    for (int waited = 0; waited <= ms; waited += 50) {
        redisReply *r = redisCommand(e->c, "GET ha:leader");
        int who = -1;
        if (r && r->type == REDIS_REPLY_STRING && strncmp(r->str, "node", 4) == 0)
            who = atoi(r->str + 4);
        if (r)
            freeReplyObject(r);
        if (who >= 0 && who < MAXD && e->pid[who] > 0)
            return who;
        h_sleep_ms(50);
    }
    return -1;
}

/* Waits until node `want` leads. */
static bool
wait_leader_is(struct env *e, int want, int ms)
{
    char name[16];
    snprintf(name, sizeof(name), "node%d", want);
    for (int waited = 0; waited <= ms; waited += 50) {
        redisReply *r = redisCommand(e->c, "GET ha:leader");
        bool is = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, name) == 0;
        if (r)
            freeReplyObject(r);
        if (is)
            return true;
        h_sleep_ms(50);
    }
    return false;
}

static int
log_count(struct env *e, int i, const char *needle)
{
    char path[400], line[2048];
    int n = 0;
    snprintf(path, sizeof(path), "%s/daemon.log", e->dir[i]);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

static void
opened(struct env *e, const char *ticket, const char *priority)
{
    assert_int_equal(h_xadd(e->c, "ha:events", NULL, 0, "type", "opened", "ticket", ticket,
                            "priority", priority, NULL), 0);
}

static void
responded(struct env *e, const char *ticket)
{
    assert_int_equal(h_xadd(e->c, "ha:events", NULL, 0, "type", "responded", "ticket",
                            ticket, NULL), 0);
}

/* Breach records per ticket: every one of `n` tickets P<i> exactly once,
 * and nothing else. */
static void
assert_breached_once(struct env *e, const char *pfx, int n)
{
    struct h_entry *ents;
    int m = h_xrange(e->c, "ha:breaches", &ents);
    int *seen = calloc((size_t)n, sizeof(*seen));
    int other = 0;
    for (int i = 0; i < m; i++) {
        const char *t = h_field(&ents[i], "ticket");
        if (strcmp(h_field(&ents[i], "kind"), "breach") != 0)
            continue;
        if (strncmp(t, pfx, strlen(pfx)) == 0 && atoi(t + strlen(pfx)) < n)
            seen[atoi(t + strlen(pfx))]++;
        else
            other++;
    }
    h_entries_free(ents, m);
    for (int i = 0; i < n; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(other, 0);
    free(seen);
}

/* saved_ms of a checkpoint blob (after the magic and the version). */
static int64_t
saved_ms(const redisReply *r)
{
    uint64_t v = 0;
    assert_true(r->type == REDIS_REPLY_STRING && r->len > 20);
    for (int i = 7; i >= 0; i--)
        v = v << 8 | (unsigned char)r->str[12 + i];
    return (int64_t)v;
}

static void
run_no_split(struct env *e, int ndaemons)
{
    for (int i = 0; i < ndaemons; i++)
        start(e, i);
    int lead = wait_leader(e, 5000);
    assert_true(lead >= 0);
    assert_true(h_wait_group(e->c, "ha:events", "slawatch", 5000));
    char id[16];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "N%d", i);
        opened(e, id, "high");
        responded(e, id);
    }
    assert_true(h_wait_int(e->c, "ha:stats:events_total", 400, 10000));
    h_sleep_ms(3500); /* past every deadline */
    long long v = -1;
    assert_int_equal(h_xpending_count(e->c, "ha:events", "slawatch"), 0);
    assert_true(h_get_int(e->c, "ha:stats:rejected_total", &v));
    assert_int_equal(v, 0);
    redisReply *r = redisCommand(e->c, "XLEN ha:breaches");
    assert_int_equal(r->integer, 0); /* no false breach */
    freeReplyObject(r);
    r = redisCommand(e->c, "XLEN ha:events:dead");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    /* One leader; the others are standbys and say so. */
    assert_int_equal(wait_leader(e, 0), lead);
    for (int i = 0; i < ndaemons; i++)
        if (i != lead)
            assert_true(log_count(e, i, "standby: leader node") >= 1);
    r = redisCommand(e->c, "ZCARD ha:instances");
    assert_int_equal(r->integer, ndaemons);
    freeReplyObject(r);
    /* slawatchctl status, without a ticket, names them. */
    char cmd[1024], out[4096], want[64];
    snprintf(cmd, sizeof(cmd), "%s/slawatchctl -c %s status 2>&1", h_build_dir(), e->cfg[0]);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    snprintf(want, sizeof(want), "leader      node%d (token ", lead);
    assert_non_null(strstr(out, want));
    for (int i = 0; i < ndaemons; i++) {
        snprintf(want, sizeof(want), "standby     node%d\n", i);
        if (i == lead)
            assert_null(strstr(out, want));
        else
            assert_non_null(strstr(out, want));
    }
}

static void
test_two_daemons_no_split(void **state)
{
    run_no_split(*state, 2);
}

static void
test_three_daemons_no_split(void **state)
{
    run_no_split(*state, 3);
}

/* kill -9 of the leader with deadlines due during the hand-over: the
 * standby records every one of them, once. */
static void
test_kill_leader_standby_decides(void **state)
{
    struct env *e = *state;
    start(e, 0);
    assert_int_equal(wait_leader(e, 5000), 0);
    assert_true(h_wait_group(e->c, "ha:events", "slawatch", 5000));
    start(e, 1);
    h_sleep_ms(500);
    char id[16];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "K%d", i);
        opened(e, id, "high"); /* due in 3 s */
    }
    assert_true(h_wait_int(e->c, "ha:stats:events_total", 20, 5000));
    kill(e->pid[0], SIGKILL);
    waitpid(e->pid[0], NULL, 0);
    e->pid[0] = 0;
    assert_true(wait_leader_is(e, 1, 3 * LEASE_MS));
    if (!h_wait_xlen(e->c, "ha:breaches", 20, 10000)) {
        h_dump_file(e->dir[1], "daemon.log");
        fail();
    }
    h_sleep_ms(500);
    assert_breached_once(e, "K", 20);
    assert_int_equal(h_xpending_count(e->c, "ha:events", "slawatch"), 0);
    assert_true(log_count(e, 1, "took over from node0") >= 1);
    long long changes = 0;
    assert_true(h_get_int(e->c, "ha:stats:leader_changes_total", &changes));
    assert_int_equal(changes, 2);
}

/* A leader frozen past its lease: the standby takes over and decides; the
 * woken one writes nothing (no record twice, the checkpoint not replaced
 * by an older one) and steps down. */
static void
test_frozen_leader_is_fenced(void **state)
{
    struct env *e = *state;
    start(e, 0);
    assert_int_equal(wait_leader(e, 5000), 0);
    assert_true(h_wait_group(e->c, "ha:events", "slawatch", 5000));
    start(e, 1);
    h_sleep_ms(500);
    char id[16];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "F%d", i);
        opened(e, id, "high");
    }
    assert_true(h_wait_int(e->c, "ha:stats:events_total", 20, 5000));
    kill(e->pid[0], SIGSTOP);
    assert_true(wait_leader_is(e, 1, 3 * LEASE_MS));
    assert_true(h_wait_xlen(e->c, "ha:breaches", 20, 10000));
    h_sleep_ms(1500); /* the new leader's checkpoint */
    redisReply *before = redisCommand(e->c, "GET ha:state");
    assert_int_equal(before->type, REDIS_REPLY_STRING);
    kill(e->pid[0], SIGCONT);
    /* It notices at once, before anything else it had pending. */
    for (int waited = 0; waited < 5000 && log_count(e, 0, "restarting as a standby") == 0;
         waited += 50)
        h_sleep_ms(50);
    if (log_count(e, 0, "restarting as a standby") != 1)
        h_dump_file(e->dir[0], "daemon.log");
    assert_int_equal(log_count(e, 0, "restarting as a standby"), 1);
    h_sleep_ms(1000);
    assert_breached_once(e, "F", 20);
    /* The checkpoint is the new leader's or newer, never the old one's:
     * the new leader is still the one writing it. */
    assert_int_equal(wait_leader(e, 0), 1);
    h_sleep_ms(1500);
    redisReply *after = redisCommand(e->c, "GET ha:state");
    assert_true(saved_ms(after) > saved_ms(before));
    freeReplyObject(before);
    freeReplyObject(after);
    assert_true(log_count(e, 0, "standby: leader node1") >= 1);
    assert_int_equal(h_xpending_count(e->c, "ha:events", "slawatch"), 0);
}

/* Every instance stopped, then one fresh start: nothing fires twice. */
static void
test_all_stopped_fresh_start(void **state)
{
    struct env *e = *state;
    start(e, 0);
    assert_int_equal(wait_leader(e, 5000), 0);
    assert_true(h_wait_group(e->c, "ha:events", "slawatch", 5000));
    start(e, 1);
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "S%d", i);
        opened(e, id, "high");
    }
    assert_true(h_wait_xlen(e->c, "ha:breaches", 10, 8000));
    assert_int_equal(h_daemon_stop(e->pid[1], SIGTERM, 5000), 0);
    e->pid[1] = 0;
    assert_int_equal(h_daemon_stop(e->pid[0], SIGTERM, 5000), 0);
    e->pid[0] = 0;
    start(e, 2);
    assert_true(wait_leader_is(e, 2, 5000));
    assert_true(h_wait_int(e->c, "ha:stats:events_total", 10, 5000));
    h_sleep_ms(1500);
    assert_breached_once(e, "S", 10);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_daemons_no_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_daemons_no_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_leader_standby_decides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen_leader_is_fenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_stopped_fresh_start, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
