/* What an operator sees of a running daemon, against a real redis-server:
 *
 * - log lines give times in RFC 3339 (the epoch milliseconds stay in the
 *   records);
 * - a reload logs what changed and what re-targeting did; a rejected one
 *   sets stats:reload_failed and <prefix>reload, which slawatchctl status
 *   and report show, until a good reload;
 * - the open:/overdue:/at_risk: gauges of a tier a reload removed, and the
 *   series of a breakdown it removed, are deleted; so are the gauges an
 *   earlier run's configuration left, at the next start;
 * - stats:heartbeat_ms moves with every publish, and slawatchctl status
 *   says whether the daemon publishes;
 * - attribute values no policy names, and tiers that name no tier, are
 *   counted in stats:unmatched:<attr> and logged with the tier taken.
 *
 * Every wait is bounded and polls for a state, never for a duration. */
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
#include <time.h>

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
    if (e == NULL || h_redis_start(&e->redis, NULL) < 0)
        return -1;
    e->c = h_connect(e->redis.port);
    *state = e;
    return e->c ? 0 : -1;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    if (e->daemon > 0)
        h_daemon_stop(e->daemon, SIGKILL, 2000);
    redisFree(e->c);
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return 0;
}

/* Writes the config (%d: the Redis port) and, when start, starts the
 * daemon and waits for its group. */
static void
config(struct env *e, const char *fmt, bool start)
{
    char text[4096];
    snprintf(text, sizeof(text), fmt, e->redis.port);
    free(e->cfg);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    assert_non_null(e->cfg);
    if (!start)
        return;
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(h_wait_group(e->c, "op:events", "slawatch", 5000));
}

/* The daemon's log so far (caller frees). */
static char *
daemon_log(struct env *e)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/daemon.log", e->redis.dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, m);
    fclose(m);
    fclose(f);
    return text;
}

/* Polls the log until it holds `needle` (up to timeout_ms). */
static bool
wait_log(struct env *e, const char *needle, int timeout_ms)
{
    for (int waited = 0;; waited += 50) {
        char *text = daemon_log(e);
        bool found = strstr(text, needle) != NULL;
        free(text);
        if (found)
            return true;
        if (waited >= timeout_ms)
            return false;
        h_sleep_ms(50);
    }
}

static void
expect_log(struct env *e, const char *needle)
{
    if (!wait_log(e, needle, 3000)) {
        h_dump_file(e->redis.dir, "daemon.log");
        fail_msg("not in the daemon's log: %s", needle);
    }
}

static bool
exists(struct env *e, const char *key)
{
    redisReply *r = redisCommand(e->c, "EXISTS %s", key);
    bool yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject(r);
    return yes;
}

static bool
wait_gone(struct env *e, const char *key, int timeout_ms)
{
    for (int waited = 0; exists(e, key); waited += 50) {
        if (waited >= timeout_ms)
            return false;
        h_sleep_ms(50);
    }
    return true;
}

static void
expect_gone(struct env *e, const char *key)
{
    if (!wait_gone(e, key, 4000))
        fail_msg("%s still exists", key);
}

static char *
hget(struct env *e, const char *key, const char *field)
{
    redisReply *r = redisCommand(e->c, "HGET %s %s", key, field);
    char *v = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    if (r)
        freeReplyObject(r);
    return v;
}

/* Runs slawatchctl -c cfg args (cfg NULL: the daemon's); output in out. */
static int
ctl_with(struct env *e, const char *cfg, char *out, size_t outlen, const char *args)
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

static int
ctl(struct env *e, char *out, size_t outlen, const char *args)
{
    return ctl_with(e, NULL, out, outlen, args);
}

static void
emit(struct env *e, const char *ticket, long long ago_ms, const char *f1, const char *v1)
{
    char ts[32];
    snprintf(ts, sizeof(ts), "%lld", (long long)h_now_ms() - ago_ms);
    assert_int_equal(h_xadd(e->c, "op:events", NULL, 0, "type", "opened", "ticket", ticket, "ts",
                            ts, f1 ? f1 : "queue", v1 ? v1 : "", NULL),
                     0);
}

/* ---- log lines ---------------------------------------------------------- */

static void
test_log_times_rfc3339(void **state)
{
    struct env *e = *state;
    config(e,
           "redis: { host: 127.0.0.1, port: %d, prefix: \"op:\" }\n"
           "tiers:\n  t: { response: 2s, warn: [50%%] }\n",
           true);
    emit(e, "L-1", 0, NULL, NULL);
    assert_true(h_wait_xlen(e->c, "op:breaches", 2, 5000));
    struct h_entry *ent;
    int n = h_xrange(e->c, "op:breaches", &ent);
    assert_int_equal(n, 2);
    /* The records keep epoch milliseconds. */
    long long deadline = atoll(h_field(&ent[1], "deadline_ms"));
    assert_true(deadline > 1000000000000LL);
    h_entries_free(ent, n);
    char stamp[32], want[160];
    time_t secs = (time_t)(deadline / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(want, sizeof(want), "warning: ticket L-1 tier t response at 50%%, deadline %s.%03lldZ (in ",
             stamp, deadline % 1000);
    expect_log(e, want);
    snprintf(want, sizeof(want), "breach: ticket L-1 tier t response, deadline %s.%03lldZ (decided ",
             stamp, deadline % 1000);
    expect_log(e, want);
    char *log = daemon_log(e);
    char epoch[32];
    snprintf(epoch, sizeof(epoch), "%lld", deadline);
    assert_null(strstr(log, epoch));
    free(log);
}

/* ---- reloads ------------------------------------------------------------ */

static const char *config_a =
    "redis: { host: 127.0.0.1, port: %d, prefix: \"op:\" }\n"
    "tiers:\n"
    "  a: { response: 1h, resolution: 1d }\n"
    "  gone: { response: 1h }\n"
    "  b: { response: 1h }\n"
    "policies:\n"
    "  - { match: { priority: urgent }, tier: a }\n"
    "  - { match: { priority: low }, tier: gone }\n"
    "  - { tier: b }\n"
    "compliance: { by: [queue], publish_every: 1s }\n";

static const char *config_b =
    "redis: { host: 127.0.0.1, port: %d, prefix: \"op:\" }\n"
    "tiers:\n"
    "  a: { response: 30m, resolution: 1d }\n"
    "  new: { response: 5m }\n"
    "  b: { response: 2h }\n"
    "policies:\n"
    "  - { match: { priority: urgent }, tier: a }\n"
    "  - { tier: b }\n"
    "compliance: { publish_every: 1s }\n";

static void
test_reload_visible(void **state)
{
    struct env *e = *state;
    char out[8192];
    config(e, config_a, true);
    emit(e, "R-a", 40 * 60000, "priority", "urgent"); /* 30m target: breached by B */
    emit(e, "R-g", 0, "priority", "low");
    emit(e, "R-b", 0, "queue", "billing");
    assert_int_equal(h_xadd(e->c, "op:events", NULL, 0, "type", "responded", "ticket", "R-b",
                            NULL), 0);
    assert_true(h_wait_int(e->c, "op:open:gone", 1, 4000));
    assert_true(h_wait_int(e->c, "op:met:b:response:1h:queue=billing", 1, 4000));
    assert_true(h_wait_int(e->c, "op:at_risk:gone:response:1h", 1, 4000));
    char *result = hget(e, "op:reload", "result");
    assert_string_equal(result, "started");
    free(result);

    /* A good reload: every change, and what re-targeting did. */
    config(e, config_b, false);
    assert_int_equal(kill(e->daemon, SIGHUP), 0);
    expect_log(e, "configuration reloaded from ");
    expect_log(e, "reload: tier a changed: response 1h -> 30m\n");
    expect_log(e, "reload: tier b changed: response 1h -> 2h\n");
    expect_log(e, "reload: tier new added (response 5m)\n");
    expect_log(e, "reload: tier gone removed: its tickets take the tier the policies choose "
                  "now, and its gauges are deleted\n");
    expect_log(e, "reload: policy 2 removed: { match: { priority: low }, tier: gone }\n");
    expect_log(e, "reload: compliance changed: by [queue] -> []\n");
    /* R-g (gone -> b) moves from 1h to 2h; R-a's response moves to 30m,
     * which is past: breached at once. */
    expect_log(e, ": 6 changes; clocks re-targeted: 2 deadlines moved, 0 started, 1 breached "
                  "at once\n");
    result = hget(e, "op:reload", "result");
    assert_string_equal(result, "reloaded");
    free(result);

    /* The removed tier's gauges and the removed breakdown's series go. */
    expect_gone(e, "op:open:gone");
    expect_gone(e, "op:overdue:gone:response");
    expect_gone(e, "op:at_risk:gone:response:1h");
    expect_gone(e, "op:met:b:response:1h:queue=billing");
    expect_gone(e, "op:compliance:b:response:1h:queue=billing");
    assert_true(h_wait_int(e->c, "op:open:new", 0, 3000));
    assert_true(h_wait_int(e->c, "op:overdue:a:response", 1, 3000));
    long long v;
    assert_true(h_get_int(e->c, "op:stats:reload_failed", &v));
    assert_int_equal(v, 0);

    /* A rejected reload is visible outside the log. slawatchctl cannot
     * load the broken file either (it says why and exits 78), so the
     * operator asks with a copy of the good one. */
    char text[4096];
    snprintf(text, sizeof(text), config_b, e->redis.port);
    char *good = h_write_file(e->redis.dir, "good.yaml", text);
    config(e,
           "redis: { host: 127.0.0.1, port: %d, prefix: \"op:\" }\n"
           "tiers:\n  a: { response: soon }\n",
           false);
    assert_int_equal(kill(e->daemon, SIGHUP), 0);
    assert_true(h_wait_int(e->c, "op:stats:reload_failed", 1, 4000));
    result = hget(e, "op:reload", "result");
    char *errors = hget(e, "op:reload", "errors");
    assert_string_equal(result, "rejected");
    assert_non_null(strstr(errors, "slawatch.yaml:3:"));
    assert_non_null(strstr(errors, "soon"));
    free(result);
    assert_int_equal(ctl(e, out, sizeof(out), "status"), 78);
    assert_non_null(strstr(out, "slawatch.yaml:3:"));
    assert_int_equal(ctl_with(e, good, out, sizeof(out), "status"), 0);
    assert_non_null(strstr(out, "config      RELOAD REJECTED "));
    assert_non_null(strstr(out, ": the configuration loaded "));
    char line[600];
    snprintf(line, sizeof(line), "            %.*s\n", (int)strcspn(errors, "\n"), errors);
    assert_non_null(strstr(out, line));
    assert_non_null(strstr(out, "reload_failed 1"));
    free(errors);
    assert_int_equal(ctl_with(e, good, out, sizeof(out), "status --json"), 0);
    assert_non_null(strstr(out, "\"reload_failed\": true"));
    assert_non_null(strstr(out, "\"result\": \"rejected\""));
    /* The old configuration still runs. */
    assert_true(h_wait_int(e->c, "op:open:new", 0, 2000));

    /* Fixed: the flag clears. */
    config(e, config_b, false);
    assert_int_equal(kill(e->daemon, SIGHUP), 0);
    assert_true(h_wait_int(e->c, "op:stats:reload_failed", 0, 4000));
    expect_log(e, ": 0 changes; clocks re-targeted: 0 deadlines moved");
    assert_int_equal(ctl(e, out, sizeof(out), "status"), 0);
    assert_null(strstr(out, "REJECTED"));
    assert_non_null(strstr(out, ", reloaded "));
    assert_int_equal(ctl(e, out, sizeof(out), "report"), 0);
    assert_null(strstr(out, "reload_failed 1"));
    free(good);
}

/* ---- gauges left by an earlier configuration ---------------------------- */

static void
test_stale_gauges_swept_at_start(void **state)
{
    struct env *e = *state;
    config(e,
           "redis: { host: 127.0.0.1, port: %d, prefix: \"op:\" }\n"
           "tiers:\n  b: { response: 1h }\n",
           false);
    /* An earlier run had tiers ghost and b (with a resolution target), and
     * something else owns a similar key. */
    const char *stale[] = { "op:open:ghost", "op:overdue:ghost:response",
                            "op:overdue:b:resolution" };
    for (size_t i = 0; i < 3; i++)
        freeReplyObject(redisCommand(e->c, "SET %s 4", stale[i]));
    freeReplyObject(redisCommand(e->c, "SET op:opener 1"));
    freeReplyObject(redisCommand(e->c, "SET other:open:ghost 1"));
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(h_wait_group(e->c, "op:events", "slawatch", 5000));
    for (size_t i = 0; i < 3; i++)
        expect_gone(e, stale[i]);
    assert_true(h_wait_int(e->c, "op:open:b", 0, 2000));
    assert_true(h_wait_int(e->c, "op:overdue:b:response", 0, 2000));
    assert_true(exists(e, "op:opener"));
    assert_true(exists(e, "other:open:ghost"));
    expect_log(e, "gauges: deleted 3 open:/overdue: keys of tiers the configuration no "
                  "longer has");
}

/* ---- heartbeat ---------------------------------------------------------- */

static void
test_heartbeat(void **state)
{
    struct env *e = *state;
    char out[8192];
    config(e,
           "redis: { host: 127.0.0.1, port: %d, prefix: \"op:\" }\n"
           "tiers:\n  b: { response: 1h }\n",
           true);
    long long first = 0, next = 0;
    for (int waited = 0; !h_get_int(e->c, "op:stats:heartbeat_ms", &first); waited += 50) {
        assert_true(waited < 3000);
        h_sleep_ms(50);
    }
    /* It moves with each publish, also when nothing else does. */
    for (int waited = 0; h_get_int(e->c, "op:stats:heartbeat_ms", &next) && next == first;
         waited += 50) {
        assert_true(waited < 3000);
        h_sleep_ms(50);
    }
    assert_true(next > first);
    assert_true(next <= h_now_ms());
    assert_int_equal(ctl(e, out, sizeof(out), "status"), 0);
    assert_non_null(strstr(out, "daemon      publishing: last published "));
    assert_non_null(strstr(out, "config      "));
    assert_non_null(strstr(out, ", loaded at start "));
    assert_int_equal(ctl(e, out, sizeof(out), "report"), 0);
    assert_non_null(strstr(out, "heartbeat_ms "));
    assert_non_null(strstr(out, "checkpoint_age_ms -1: no checkpoint yet"));

    /* Stopped: the value stays and grows old. */
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
    freeReplyObject(redisCommand(e->c, "SET op:stats:heartbeat_ms %lld",
                                 (long long)h_now_ms() - 60000));
    assert_int_equal(ctl(e, out, sizeof(out), "status"), 0);
    assert_non_null(strstr(out, "daemon      NOT PUBLISHING: last published "));
    assert_non_null(strstr(out, "(1m ago)"));
    assert_int_equal(ctl(e, out, sizeof(out), "status --json"), 0);
    assert_non_null(strstr(out, "\"publishing\": false"));
    /* Never published under this prefix. */
    freeReplyObject(redisCommand(e->c, "DEL op:stats:heartbeat_ms"));
    assert_int_equal(ctl(e, out, sizeof(out), "status"), 0);
    assert_non_null(strstr(out, "never published under prefix \"op:\""));
}

/* ---- input hygiene ------------------------------------------------------ */

static void
test_unmatched_counted(void **state)
{
    struct env *e = *state;
    char out[8192];
    config(e,
           "redis: { host: 127.0.0.1, port: %d, prefix: \"op:\" }\n"
           "tiers:\n  high: { response: 1h }\n  phone: { response: 1h }\n"
           "  low: { response: 4h }\n"
           "policies:\n"
           "  - { match: { priority: high }, tier: high }\n"
           "  - { match: { channel: phone }, tier: phone }\n"
           "  - { tier: low }\n",
           true);
    emit(e, "U-1", 0, "priority", "High");  /* a typo of a named value */
    emit(e, "U-2", 0, "tier", "gold");      /* no such tier */
    emit(e, "U-3", 0, "queue", "anything"); /* no policy matches on queue */
    emit(e, "U-4", 0, "priority", "high");  /* fine */
    assert_int_equal(h_xadd(e->c, "op:events", NULL, 0, "type", "updated", "ticket", "U-4",
                            "channel", "fax", NULL), 0);
    assert_true(h_wait_int(e->c, "op:stats:unmatched:priority", 1, 4000));
    assert_true(h_wait_int(e->c, "op:stats:unmatched:tier", 1, 2000));
    assert_true(h_wait_int(e->c, "op:stats:unmatched:channel", 1, 2000));
    assert_true(h_wait_int(e->c, "op:stats:unmatched:queue", 0, 2000));
    assert_true(h_wait_int(e->c, "op:stats:events_total", 5, 2000));
    expect_log(e, "ticket U-1: priority=High is named by no policy; it got tier low "
                  "(stats:unmatched:priority counts every such event; this value is logged "
                  "at most once an hour)");
    expect_log(e, "ticket U-2: tier=gold names no tier; it got tier low (stats:unmatched:tier");
    expect_log(e, "ticket U-4: channel=fax is named by no policy; it got tier high "
                  "(stats:unmatched:channel");
    /* The same value again: counted, not logged again. */
    emit(e, "U-5", 0, "priority", "High");
    assert_true(h_wait_int(e->c, "op:stats:unmatched:priority", 2, 4000));
    char *log = daemon_log(e);
    assert_null(strstr(log, "U-3:"));
    assert_null(strstr(log, "U-5:"));
    free(log);
    /* explain says the same before anything is sent. */
    assert_int_equal(ctl(e, out, sizeof(out), "explain priority=High"), 0);
    assert_non_null(strstr(out, "  unmatched priority=High: no policy names this value (they "
                                "name high); counted in stats:unmatched:priority\n"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_times_rfc3339, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_visible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_gauges_swept_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmatched_counted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
