/* The next_reply metric through Redis (SPEC sections 3-5): a customer
 * message after the first reply starts a cycle, its breach is recorded in
 * <prefix>breaches with metric next_reply and its cycle, escalated by an
 * escalation with `metric: next_reply` (and not by one on response), and
 * recovered by the reply; the compliance and at-risk keys of next_reply
 * are published; a running cycle survives a restart; `rated` without a
 * valid score is dead-lettered with its reason. Real redis-server and
 * slawatchd, a loopback receiver. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "harness.h"

static int
answer_ok(void *arg, const char *path, const char *delivery, int attempt)
{
    (void)arg;
    (void)path;
    (void)delivery;
    (void)attempt;
    return 200;
}

static const char *yaml =
    "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"nr:\" }\n"
    "tiers:\n"
    "  chat: { response: 1h, next_reply: 1s }\n"
    "  slow: { response: 1h, next_reply: 50m }\n"
    "policies:\n"
    "  - { match: { channel: chat }, tier: chat }\n"
    "  - { tier: slow }\n"
    "compliance: { windows: [1h], publish_every: 1s }\n"
    "webhooks:\n"
    "  hook: { url: \"http://127.0.0.1:@HTTP@/nr\", format: json,\n"
    "          retry: { attempts: 3, backoff: 100ms } }\n"
    "  other: { url: \"http://127.0.0.1:@HTTP@/resp\", format: json }\n"
    "escalations:\n"
    "  - { name: replies, when: breach, metric: next_reply, notify: [hook] }\n"
    "  - { name: first, when: breach, metric: response, notify: [other] }\n";

static int
ctl_out(const struct h_env *e, const char *args, char *out, size_t len)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s/slawatchctl -c %s %s 2>&1", h_build_dir(), e->cfg, args);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void
test_next_reply_end_to_end(void **state)
{
    (void)state;
    struct h_env *e = h_env_start(yaml, "nr:events", NULL, answer_ok, NULL);
    assert_non_null(e);
    redisContext *c = e->c;
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "opened", "ticket", "A",
                            "channel", "chat", NULL), 0);
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "commented", "ticket", "A",
                            NULL), 0); /* before the first reply: nothing */
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "responded", "ticket", "A",
                            NULL), 0);
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "commented", "ticket", "A",
                            NULL), 0);
    /* Cycle 0 breaches after 1 s. */
    if (!h_wait_xlen(c, "nr:breaches", 1, 5000)) {
        h_dump_file(e->redis.dir, "daemon.log");
        fail();
    }
    assert_true(h_http_wait(&e->rx, "/nr", 1, 5000));
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "responded", "ticket", "A",
                            NULL), 0);
    assert_true(h_wait_xlen(c, "nr:breaches", 2, 5000));
    /* Cycle 1, answered in time. */
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "commented", "ticket", "A",
                            NULL), 0);
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "responded", "ticket", "A",
                            NULL), 0);
    assert_true(h_wait_str(c, "nr:compliance:chat:next_reply:1h", "0.5", 5000));
    long long v;
    assert_true(h_get_int(c, "nr:met:chat:next_reply:1h", &v));
    assert_int_equal(v, 1);
    assert_true(h_get_int(c, "nr:breached:all:next_reply:1h", &v));
    assert_int_equal(v, 1);
    assert_true(h_wait_str(c, "nr:compliance:chat:response:1h", "1", 5000));

    struct h_entry *en;
    int n = h_xrange(c, "nr:breaches", &en);
    assert_int_equal(n, 2);
    assert_string_equal(h_field(&en[0], "kind"), "breach");
    assert_string_equal(h_field(&en[0], "metric"), "next_reply");
    assert_string_equal(h_field(&en[0], "ticket"), "A");
    assert_string_equal(h_field(&en[1], "kind"), "recovered");
    assert_string_equal(h_field(&en[1], "metric"), "next_reply");
    h_entries_free(en, n);

    /* The webhook of `metric: next_reply` heard it; the one on response
     * did not. */
    struct h_req *reqs;
    int nr = h_http_copy(&e->rx, &reqs);
    int on_nr = 0;
    for (int i = 0; i < nr; i++) {
        assert_string_equal(reqs[i].path, "/nr");
        if (strstr(reqs[i].body, "\"kind\": \"breach\"") ||
            strstr(reqs[i].body, "\"kind\":\"breach\"")) {
            assert_non_null(strstr(reqs[i].body, "next_reply"));
            assert_non_null(strstr(reqs[i].body, "\"cycle\": 0") ?
                            (void *)1 : strstr(reqs[i].body, "\"cycle\":0"));
            on_nr++;
        }
    }
    assert_int_equal(on_nr, 1);
    h_http_free_copy(reqs, nr);

    /* A cycle of 50 min running across a restart: counted at risk within
     * the hour before and after, and shown by status. */
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "opened", "ticket", "S",
                            NULL), 0);
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "responded", "ticket", "S",
                            NULL), 0);
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "commented", "ticket", "S",
                            NULL), 0);
    if (!h_wait_int(c, "nr:at_risk:slow:next_reply:1h", 1, 5000)) {
        h_dump_file(e->redis.dir, "daemon.log");
        fail();
    }
    assert_true(h_wait_int(c, "nr:at_risk:slow:next_reply:15m", 0, 5000));
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 8000), 0);
    assert_int_equal(h_cmd(c, "DEL nr:at_risk:slow:next_reply:1h"), 0);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(h_wait_int(c, "nr:at_risk:slow:next_reply:1h", 1, 8000));
    char out[8192];
    assert_int_equal(ctl_out(e, "status S --json", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"next_reply\""));
    char *nrj = strstr(out, "\"next_reply\"");
    assert_non_null(strstr(nrj, "\"running\""));
    assert_int_equal(ctl_out(e, "status S", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "response    stopped, met"));
    assert_non_null(strstr(out, "next_reply  running"));

    /* Bad ratings are dead letters with their reason. */
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "rated", "ticket", "S",
                            "score", "9", NULL), 0);
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "rated", "ticket", "S", NULL),
                     0);
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "rated", "ticket", "nobody",
                            "score", "5", NULL), 0);
    assert_int_equal(h_xadd(c, "nr:events", NULL, 0, "type", "rated", "ticket", "S",
                            "score", "good", NULL), 0);
    assert_true(h_wait_xlen(c, "nr:events:dead", 3, 5000));
    n = h_xrange(c, "nr:events:dead", &en);
    assert_int_equal(n, 3);
    assert_string_equal(h_field(&en[0], "reason"), "bad score");
    assert_string_equal(h_field(&en[1], "reason"), "missing score");
    assert_string_equal(h_field(&en[2], "reason"), "unknown ticket");
    h_entries_free(en, n);
    assert_int_equal(ctl_out(e, "status S --json", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"rating\": \"good\""));
    assert_int_equal(h_env_stop(e), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_reply_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
