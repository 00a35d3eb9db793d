/* Redis loading its dataset (answering -LOADING for a second or more, as
 * after a restart with a big RDB): a daemon started meanwhile waits for it
 * (logged) instead of exiting, and a running daemon whose Redis restarts
 * and loads carries on once it is loaded. The load is made slow with
 * Redis' key-load-delay, over an RDB of a few thousand keys written here. */
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

/* About 2 s of loading: 10000 keys at 100 us each, and Redis answering
 * (LOADING) between them. */
#define SLOW_LOAD "--key-load-delay 100 --loading-process-events-interval-bytes 1024"

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    char text[512];
    *state = e;
    if (h_redis_start(&e->redis, NULL) < 0 || (e->c = h_connect(e->redis.port)) == NULL)
        return -1;
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"ld:\" }\n"
             "tiers:\n  t: { response: 1h }\n",
             e->redis.port);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    if (h_cmd(e->c, "EVAL %s 0",
              "for i = 1, 10000 do redis.call('SET', 'filler:' .. i, i) end") < 0)
        return -1;
    snprintf(e->redis.extra, sizeof(e->redis.extra), "%s", SLOW_LOAD);
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    if (e->daemon > 0)
        h_daemon_stop(e->daemon, SIGKILL, 2000);
    if (e->c)
        redisFree(e->c);
    if (getenv("SLAWATCH_TEST_VERBOSE"))
        h_dump_file(e->redis.dir, "daemon.log");
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return 0;
}

/* Saves the RDB and restarts Redis on it; returns once it answers
 * LOADING (it is then loading for about 2 s). */
static void
restart_loading(struct env *e)
{
    assert_int_equal(h_cmd(e->c, "SAVE"), 0);
    redisFree(e->c);
    e->c = NULL;
    assert_int_equal(h_redis_restart_nowait(&e->redis), 0);
    e->c = h_connect(e->redis.port);
    assert_non_null(e->c);
    bool loading = false;
    for (int i = 0; i < 200 && !loading; i++) {
        redisReply *r = redisCommand(e->c, "PING");
        loading = r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) == 0;
        if (r)
            freeReplyObject(r);
        if (!loading)
            h_sleep_ms(5);
    }
    assert_true(loading);
}

static bool
still_loading(struct env *e)
{
    redisReply *r = redisCommand(e->c, "PING");
    bool loading = r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) == 0;
    if (r)
        freeReplyObject(r);
    return loading;
}

static void
test_start_while_loading_waits(void **state)
{
    struct env *e = *state;
    restart_loading(e);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    h_sleep_ms(500);
    assert_true(still_loading(e)); /* the scenario holds */
    /* Waiting, not dead, and saying why. */
    int status;
    assert_int_equal(waitpid(e->daemon, &status, WNOHANG), 0);
    assert_true(h_count_lines(e->redis.dir, "daemon.log", "Redis is loading its dataset") >= 1);
    /* Once loaded it starts normally. */
    assert_true(h_wait_group(e->c, "ld:events", "slawatch", 15000));
    assert_false(still_loading(e));
    assert_int_equal(h_xadd(e->c, "ld:events", NULL, 0, "type", "opened", "ticket", "L1",
                            NULL), 0);
    assert_true(h_wait_int(e->c, "ld:open:t", 1, 5000));
    assert_true(h_count_lines(e->redis.dir, "daemon.log", "Redis has loaded its dataset") >= 1);
    assert_int_equal(h_count_lines(e->redis.dir, "daemon.log", "is unusable"), 0);
}

static void
test_running_daemon_survives_a_loading_restart(void **state)
{
    struct env *e = *state;
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(h_wait_group(e->c, "ld:events", "slawatch", 5000));
    assert_int_equal(h_xadd(e->c, "ld:events", NULL, 0, "type", "opened", "ticket", "R1",
                            NULL), 0);
    assert_true(h_wait_int(e->c, "ld:open:t", 1, 5000));
    restart_loading(e); /* the RDB holds R1's event and the group */
    h_sleep_ms(300);
    int status;
    assert_int_equal(waitpid(e->daemon, &status, WNOHANG), 0);
    /* Loaded: it reconnects and goes on. */
    for (int i = 0; i < 150 && still_loading(e); i++)
        h_sleep_ms(100);
    assert_false(still_loading(e));
    assert_int_equal(h_xadd(e->c, "ld:events", NULL, 0, "type", "opened", "ticket", "R2",
                            NULL), 0);
    assert_true(h_wait_int(e->c, "ld:open:t", 2, 10000));
    assert_true(h_wait_int(e->c, "ld:stats:events_total", 2, 3000));
    assert_int_equal(h_xpending_count(e->c, "ld:events", "slawatch"), 0);
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_while_loading_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running_daemon_survives_a_loading_restart, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
