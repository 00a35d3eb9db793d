/* <prefix>events that is not a stream (someone SET it): the daemon backs
 * off on the same connection instead of reconnecting in a loop, logs at a
 * bounded rate, shows the condition in its stats, and recovers once the
 * key is a stream again. */
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

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    char text[512];
    *state = e;
    if (h_redis_start(&e->redis, NULL) < 0 || (e->c = h_connect(e->redis.port)) == NULL)
        return -1;
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"se:\" }\n"
             "tiers:\n  t: { response: 1h }\n",
             e->redis.port);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    return e->cfg ? 0 : -1;
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

static void
check_backs_off(struct env *e, int64_t since)
{
    int before = h_count_lines(e->redis.dir, "daemon.log", "");
    h_sleep_until(since + 6000);
    int lines = h_count_lines(e->redis.dir, "daemon.log", "") - before;
    int errors = h_count_lines(e->redis.dir, "daemon.log", "WRONGTYPE");
    long long counted = 0, lost = -1;
    assert_true(h_get_int(e->c, "se:stats:stream_errors_total", &counted));
    assert_true(h_get_int(e->c, "se:stats:redis_connections_lost_total", &lost));
    printf("6 s with se:events a string: %d log lines (%d about it), %lld errors counted, "
           "%lld connections lost\n", lines, errors, counted, lost);
    /* Backoff 200 ms doubling: 5 tries in 6 s, logged at most 5 a minute;
     * no reconnect loop. */
    assert_true(counted >= 3 && counted <= 8);
    assert_true(errors >= 1 && errors <= 5);
    assert_true(lines <= 8);
    assert_int_equal(lost, 0);
    assert_int_equal(kill(e->daemon, 0), 0);
}

static void
test_events_key_not_a_stream(void **state)
{
    struct env *e = *state;
    assert_int_equal(h_cmd(e->c, "SET se:events not-a-stream"), 0);
    int64_t t0 = h_now_ms();
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    h_sleep_ms(300);
    check_backs_off(e, t0);

    /* Repaired: the next try (at most 10 s away) replays and joins. */
    assert_int_equal(h_cmd(e->c, "DEL se:events"), 0);
    assert_int_equal(h_xadd(e->c, "se:events", NULL, 0, "type", "opened", "ticket", "S1",
                            NULL), 0);
    assert_true(h_wait_group(e->c, "se:events", "slawatch", 12000));
    assert_true(h_wait_int(e->c, "se:open:t", 1, 5000));
    assert_true(h_count_lines(e->redis.dir, "daemon.log", "can be read again") == 1);

    /* And the same once live: the stream is replaced while being read. */
    long long base = 0;
    (void)h_get_int(e->c, "se:stats:stream_errors_total", &base);
    int before = h_count_lines(e->redis.dir, "daemon.log", "se:events: ");
    assert_int_equal(h_cmd(e->c, "DEL se:events"), 0);
    assert_int_equal(h_cmd(e->c, "SET se:events not-a-stream-either"), 0);
    int64_t t1 = h_now_ms();
    h_sleep_until(t1 + 6000);
    long long counted = 0;
    assert_true(h_get_int(e->c, "se:stats:stream_errors_total", &counted));
    int errors = h_count_lines(e->redis.dir, "daemon.log", "se:events: ") - before;
    printf("live: %lld more errors counted, %d more logged\n", counted - base, errors);
    assert_true(counted - base >= 2 && counted - base <= 10);
    assert_true(errors >= 1 && errors <= 5);
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_key_not_a_stream, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
