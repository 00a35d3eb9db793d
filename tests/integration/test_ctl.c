/* slawatchctl against a real redis-server and a running daemon: emit,
 * status and report (text and --json), and every kind of bad argument or
 * unreachable Redis giving a clear message and a non-zero status. */
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
    char text[1024];
    if (h_redis_start(&e->redis, NULL) < 0)
        return -1;
    e->c = h_connect(e->redis.port);
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"ctl:\" }\n"
             "tiers:\n"
             "  fast: { response: 1s, resolution: 1h }\n"
             "  slow: { response: 1h }\n"
             "policies:\n"
             "  - { match: { priority: urgent }, tier: fast }\n"
             "  - { tier: slow }\n",
             e->redis.port);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    if (!h_wait_group(e->c, "ctl:events", "slawatch", 5000))
        return -1;
    *state = e;
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    if (e->daemon > 0)
        h_daemon_stop(e->daemon, SIGTERM, 5000);
    redisFree(e->c);
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return 0;
}

/* Runs slawatchctl with args; returns its exit status, output in out. */
static int
ctl(struct env *e, const char *cfg, char *out, size_t outlen, const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s/slawatchctl -c %s %s 2>&1", h_build_dir(),
             cfg ? cfg : e->cfg, args);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void
test_emit(void **state)
{
    struct env *e = *state;
    char out[4096];
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "emit opened C-1 priority=urgent queue=billing"), 0);
    unsigned long long ms, seq;
    assert_int_equal(sscanf(out, "%llu-%llu", &ms, &seq), 2);
    struct h_entry *ent;
    int n = h_xrange(e->c, "ctl:events", &ent);
    assert_int_equal(n, 1);
    char id[64];
    snprintf(id, sizeof(id), "%llu-%llu", ms, seq);
    assert_string_equal(ent[0].id, id);
    assert_string_equal(h_field(&ent[0], "type"), "opened");
    assert_string_equal(h_field(&ent[0], "ticket"), "C-1");
    assert_string_equal(h_field(&ent[0], "priority"), "urgent");
    assert_string_equal(h_field(&ent[0], "queue"), "billing");
    h_entries_free(ent, n);
    /* A value may itself contain '='. */
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "emit updated C-1 agent=a=b"), 0);
    n = h_xrange(e->c, "ctl:events", &ent);
    assert_string_equal(h_field(&ent[1], "agent"), "a=b");
    h_entries_free(ent, n);
}

static void
test_emit_bad_arguments(void **state)
{
    struct env *e = *state;
    char out[4096];
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "emit exploded C-1"), 64);
    assert_non_null(strstr(out, "unknown event type"));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "emit opened"), 64);
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "emit opened C-1 priority"), 64);
    assert_non_null(strstr(out, "not field=value"));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "emit opened C-1 =x"), 64);
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "frobnicate"), 64);
    assert_int_equal(ctl(e, NULL, out, sizeof(out), ""), 64);
    /* Nothing reached the stream. */
    redisReply *r = redisCommand(e->c, "XLEN ctl:events");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    /* A config that does not load: 78, with file:line:col. */
    char *bad = h_write_file(e->redis.dir, "bad.yaml", "redis: { port: nope }\n");
    assert_int_equal(ctl(e, bad, out, sizeof(out), "report"), 78);
    assert_non_null(strstr(out, "bad.yaml:1:"));
    /* Redis unreachable: 69 and a message, no hang. */
    char text[256];
    snprintf(text, sizeof(text), "redis: { host: 127.0.0.1, port: 1 }\n");
    char *down = h_write_file(e->redis.dir, "down.yaml", text);
    assert_int_equal(ctl(e, down, out, sizeof(out), "emit opened X"), 69);
    assert_non_null(strstr(out, "cannot connect to redis"));
    assert_int_equal(ctl(e, down, out, sizeof(out), "status X"), 69);
    assert_int_equal(ctl(e, down, out, sizeof(out), "report"), 69);
    free(bad);
    free(down);
}

static void
test_status(void **state)
{
    struct env *e = *state;
    char out[8192];
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "emit opened S-1 priority=urgent agent=ana"), 0);
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "emit opened S-2"), 0);
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "emit responded S-2"), 0);
    h_sleep_ms(1300); /* S-1's 1 s response target passes */
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "status S-1"), 0);
    assert_non_null(strstr(out, "tier        fast"));
    assert_non_null(strstr(out, "agent=ana"));
    assert_non_null(strstr(out, "breached"));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "status --json S-2"), 0);
    assert_non_null(strstr(out, "\"tier\": \"slow\""));
    assert_non_null(strstr(out, "\"outcome\": \"met\""));
    assert_non_null(strstr(out, "\"state\": \"stopped\""));
    /* After the daemon's final checkpoint the same answer comes from it. */
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "status S-1"), 0);
    assert_non_null(strstr(out, "checkpoint"));
    assert_non_null(strstr(out, "+ 0 events after it"));
    assert_non_null(strstr(out, "breached"));
    /* Without a ticket: who leads (nobody, the daemon was stopped and gave
     * its lease up). Bad arguments and unknown tickets. */
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "status"), 0);
    assert_non_null(strstr(out, "leader      none"));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "status a b"), 64);
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "status nobody"), 1);
    assert_non_null(strstr(out, "not known"));
}

static void
test_report(void **state)
{
    struct env *e = *state;
    char out[16384];
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "emit opened R-1 priority=urgent"), 0);
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "emit opened R-2"), 0);
    assert_true(h_wait_int(e->c, "ctl:overdue:fast:response", 1, 4000));
    assert_true(h_wait_int(e->c, "ctl:open:slow", 1, 2000));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "report"), 0);
    assert_non_null(strstr(out, "fast"));
    assert_non_null(strstr(out, "events_total 2"));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "report --json"), 0);
    assert_non_null(strstr(out, "\"tier\": \"fast\""));
    assert_non_null(strstr(out, "\"overdue\": 1"));
    assert_non_null(strstr(out, "\"events_total\": 2"));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "report --yaml"), 64);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_emit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emit_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
