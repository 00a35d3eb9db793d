/* A webhook receiver that is down (connection refused) for a while, then
 * back on the same port: every notification waits in the outbox, survives a
 * graceful restart of the daemon, and arrives once the receiver is back,
 * none lost, the daemon unaffected meanwhile. */
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

#define N 5

struct env {
    struct h_redis redis;
    struct h_http rx;
    redisContext *c;
    char *cfg;
    pid_t daemon;
    bool rx_up;
};

static int
teardown(void **state)
{
    struct env *e = *state;
    if (e == NULL)
        return 0;
    if (e->daemon > 0)
        h_daemon_stop(e->daemon, SIGKILL, 2000);
    if (e->rx_up)
        h_http_stop(&e->rx);
    if (e->c)
        redisFree(e->c);
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return 0;
}

/* Distinct delivery ids answered 200. */
static int
delivered(struct env *e)
{
    struct h_req *r;
    int n = h_http_copy(&e->rx, &r), ok = 0;
    char seen[64][80];
    for (int i = 0; i < n; i++) {
        if (r[i].status != 200)
            continue;
        int k;
        for (k = 0; k < ok; k++)
            if (!strcmp(seen[k], r[i].delivery))
                break;
        if (k == ok && ok < 64)
            snprintf(seen[ok++], 80, "%s", r[i].delivery);
    }
    h_http_free_copy(r, n);
    return ok;
}

static void
test_down_then_back(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    *state = e;
    assert_int_equal(h_redis_start(&e->redis, NULL), 0);
    e->c = h_connect(e->redis.port);
    assert_non_null(e->c);
    /* Take a free port, then leave it closed: the receiver is down. */
    assert_int_equal(h_http_start(&e->rx, NULL, NULL, true), 0);
    int port = e->rx.port;
    h_http_stop(&e->rx);

    char text[1024];
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"rd:\" }\n"
             "tiers:\n  t: { response: 1s }\n"
             "escalations:\n  - { name: page, when: breach, notify: [hook] }\n"
             "webhooks:\n"
             "  hook: { url: \"http://127.0.0.1:%d/hook\", timeout: 1s,\n"
             "          retry: { attempts: 1000, backoff: 200ms, max_backoff: 500ms } }\n",
             e->redis.port, port);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(h_wait_group(e->c, "rd:events", "slawatch", 5000));
    for (int i = 0; i < N; i++) {
        char ticket[16];
        snprintf(ticket, sizeof(ticket), "D-%d", i);
        assert_int_equal(h_xadd(e->c, "rd:events", NULL, 0, "type", "opened", "ticket",
                                ticket, NULL), 0);
    }
    /* Breached while the receiver is down: all wait in the outbox. */
    assert_true(h_wait_xlen(e->c, "rd:breaches", N, 5000));
    h_sleep_ms(2500); /* several refused attempts each */
    assert_int_equal(h_hlen(e->c, "rd:outbox"), N);
    assert_true(h_wait_int(e->c, "rd:stats:notifications_pending", N, 3000));
    assert_int_equal(kill(e->daemon, 0), 0);
    /* A graceful restart with the deliveries still pending: a clean exit
     * (nothing freed twice on the way out), and the outbox is re-driven. */
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(h_wait_group(e->c, "rd:events", "slawatch", 5000));
    assert_int_equal(h_hlen(e->c, "rd:outbox"), N);

    /* Back on the same port: everything arrives, once per delivery id. */
    assert_int_equal(h_http_start_on(&e->rx, port, NULL, NULL, true), 0);
    e->rx_up = true;
    int ok = 0;
    for (int waited = 0; waited < 10000 && ok < N; waited += 100) {
        h_sleep_ms(100);
        ok = delivered(e);
    }
    if (ok < N)
        h_dump_file(e->redis.dir, "daemon.log");
    assert_int_equal(ok, N);
    for (int waited = 0; waited < 3000 && h_hlen(e->c, "rd:outbox") != 0; waited += 100)
        h_sleep_ms(100);
    assert_int_equal(h_hlen(e->c, "rd:outbox"), 0);
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_down_then_back, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
