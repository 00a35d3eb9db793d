/* The time rule against a real redis-server and the real daemon (SPEC
 * section 3, "Time"):
 *   - a live run fed by a late producer (stamps 1.5 s behind its appends)
 *     and a fast one (20 s ahead), then the same entries appended with the
 *     same IDs to a fresh prefix and replayed by a fresh daemon: identical
 *     breach records (ticket, kind, metric, cycle, deadline) and identical
 *     met/breached counts;
 *   - slawatchctl status agrees with <prefix>breaches, before the first
 *     checkpoint and after one. */
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

static const char *cfg_fmt =
    "redis: { host: 127.0.0.1, port: %d, prefix: \"%s\" }\n"
    "events: { allowed_lateness: %s }\n"
    "state: { checkpoint_every: %s }\n"
    "compliance: { windows: [1h], publish_every: 1s }\n"
    "tiers:\n"
    "  quick: { response: 2s, resolution: 6s, warn: [50%%] }\n"
    "  calm:  { response: 4s }\n"
    "policies:\n"
    "  - { match: { priority: high }, tier: quick }\n"
    "  - { tier: calm }\n";

struct env {
    struct h_redis redis;
    redisContext *c;
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
    redisFree(e->c);
    h_redis_stop(&e->redis);
    free(e);
    return 0;
}

static char *
write_cfg(struct env *e, const char *name, const char *prefix, const char *lateness,
          const char *checkpoint)
{
    char text[1024];
    snprintf(text, sizeof(text), cfg_fmt, e->redis.port, prefix, lateness, checkpoint);
    return h_write_file(e->redis.dir, name, text);
}

static void
xadd_ts(struct env *e, const char *stream, const char *type, const char *ticket,
        int64_t ts, const char *priority)
{
    char tsbuf[32];
    snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
    if (priority)
        assert_int_equal(h_xadd(e->c, stream, NULL, 0, "type", type, "ticket", ticket,
                                "ts", tsbuf, "priority", priority, NULL), 0);
    else
        assert_int_equal(h_xadd(e->c, stream, NULL, 0, "type", type, "ticket", ticket,
                                "ts", tsbuf, NULL), 0);
}

/* The breach records as "ticket kind metric cycle deadline" lines, sorted. */
static int
records(struct env *e, const char *stream, char out[][96], int max)
{
    struct h_entry *ents;
    int n = h_xrange(e->c, stream, &ents);
    assert_true(n >= 0 && n <= max);
    for (int i = 0; i < n; i++)
        snprintf(out[i], 96, "%s %s %s %s %s", h_field(&ents[i], "ticket"),
                 h_field(&ents[i], "kind"), h_field(&ents[i], "metric"),
                 h_field(&ents[i], "cycle"), h_field(&ents[i], "deadline_ms"));
    h_entries_free(ents, n);
    qsort(out, (size_t)n, 96, (int (*)(const void *, const void *))strcmp);
    return n;
}

static long long
count_of(struct env *e, const char *prefix, const char *what, const char *metric)
{
    char key[128];
    long long v = 0;
    snprintf(key, sizeof(key), "%s%s:all:%s:1h", prefix, what, metric);
    return h_get_int(e->c, key, &v) ? v : 0;
}

/* Waits until the published met+breached counts hold `decided` outcomes. */
static bool
wait_decided(struct env *e, const char *prefix, long long decided, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        long long n = count_of(e, prefix, "met", "response") +
                      count_of(e, prefix, "breached", "response") +
                      count_of(e, prefix, "met", "resolution") +
                      count_of(e, prefix, "breached", "resolution");
        if (n >= decided)
            return true;
        h_sleep_ms(100);
    }
    return false;
}

static void
test_live_equals_replay(void **state)
{
    struct env *e = *state;
    char *live_cfg = write_cfg(e, "live.yaml", "lv:", "0s", "30s");
    pid_t live = h_daemon_start(live_cfg, e->redis.dir);
    assert_true(h_wait_group(e->c, "lv:events", "slawatch", 5000));

    /* 12 tickets opened 250 ms apart; ticket j is answered 2.25 s after
     * it was opened, by the late producer (j % 3 == 0: stamped 0.5 s after
     * the opening, so in time by ts but arriving after quick's 2 s: a
     * breach and a recovery; in time for calm's 4 s) or by the fast one
     * (j % 3 == 1: stamped 20 s ahead); the rest are never answered. Every
     * fourth ticket is opened by the fast producer, stamped 20 s ahead: it
     * must not make anything else breach early. */
    char id[16];
    int64_t opened[12];
    for (int step = 0; step < 21; step++) {
        if (step < 12) {
            snprintf(id, sizeof(id), "T%d", step);
            opened[step] = h_now_ms();
            xadd_ts(e, "lv:events", "opened", id,
                    step % 4 == 3 ? opened[step] + 20000 : opened[step],
                    step % 2 ? "high" : NULL);
        }
        int j = step - 9;
        if (j >= 0 && j < 12 && j % 3 != 2) {
            snprintf(id, sizeof(id), "T%d", j);
            xadd_ts(e, "lv:events", "responded", id,
                    j % 3 == 0 ? opened[j] + 500 : h_now_ms() + 20000, NULL);
        }
        h_sleep_ms(250);
    }
    /* Every response clock and quick's resolution clocks decided: 12 + 6,
     * by 30 s after the fast producer's stamps. */
    assert_true(wait_decided(e, "lv:", 18, 40000));
    h_sleep_ms(1500);
    static char live_rec[256][96], replay_rec[256][96];
    int nlive = records(e, "lv:breaches", live_rec, 256);
    long long live_counts[4] = {
        count_of(e, "lv:", "met", "response"), count_of(e, "lv:", "breached", "response"),
        count_of(e, "lv:", "met", "resolution"),
        count_of(e, "lv:", "breached", "resolution"),
    };
    assert_int_equal(h_daemon_stop(live, SIGTERM, 5000), 0);
    assert_true(nlive > 0);
    assert_true(live_counts[0] > 0 && live_counts[1] > 0);

    /* The same entries, the same IDs, into a fresh prefix, replayed. */
    struct h_entry *ents;
    int n = h_xrange(e->c, "lv:events", &ents);
    assert_true(n >= 20);
    for (int i = 0; i < n; i++) {
        const char *argv[3 + 2 * 64];
        int argc = 0;
        argv[argc++] = "XADD";
        argv[argc++] = "rp:events";
        argv[argc++] = ents[i].id;
        for (int f = 0; f < ents[i].n; f++) {
            argv[argc++] = ents[i].field[f];
            argv[argc++] = ents[i].value[f];
        }
        redisReply *r = redisCommandArgv(e->c, argc, argv, NULL);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, ents[i].id);
        freeReplyObject(r);
    }
    h_entries_free(ents, n);
    char *replay_cfg = write_cfg(e, "replay.yaml", "rp:", "0s", "30s");
    pid_t replay = h_daemon_start(replay_cfg, e->redis.dir);
    assert_true(wait_decided(e, "rp:", 18, 20000));
    assert_true(h_wait_xlen(e->c, "rp:breaches", nlive, 10000));
    h_sleep_ms(1500);
    int nreplay = records(e, "rp:breaches", replay_rec, 256);
    assert_int_equal(nreplay, nlive);
    for (int i = 0; i < nlive; i++)
        assert_string_equal(replay_rec[i], live_rec[i]);
    assert_int_equal(count_of(e, "rp:", "met", "response"), live_counts[0]);
    assert_int_equal(count_of(e, "rp:", "breached", "response"), live_counts[1]);
    assert_int_equal(count_of(e, "rp:", "met", "resolution"), live_counts[2]);
    assert_int_equal(count_of(e, "rp:", "breached", "resolution"), live_counts[3]);
    assert_int_equal(h_daemon_stop(replay, SIGTERM, 5000), 0);
    free(live_cfg);
    free(replay_cfg);
}

/* Runs slawatchctl; returns its exit status, output in out. */
static int
ctl(const char *cfg, char *out, size_t outlen, const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s/slawatchctl -c %s %s 2>&1", h_build_dir(), cfg, args);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The response outcome slawatchctl status reports for a ticket. */
static void
ctl_outcome(const char *cfg, const char *ticket, char *outcome, size_t len)
{
    char out[8192], args[64];
    snprintf(args, sizeof(args), "status %s --json", ticket);
    assert_int_equal(ctl(cfg, out, sizeof(out), args), 0);
    const char *resp = strstr(out, "\"response\"");
    assert_non_null(resp);
    const char *o = strstr(resp, "\"outcome\": ");
    assert_non_null(o);
    o += strlen("\"outcome\": ");
    size_t i = 0;
    while (o[i] && o[i] != ',' && o[i] != '\n' && i + 1 < len) {
        outcome[i] = o[i] == '"' ? ' ' : o[i];
        i++;
    }
    outcome[i] = '\0';
}

static bool
has_breach(struct env *e, const char *stream, const char *ticket)
{
    struct h_entry *ents;
    int n = h_xrange(e->c, stream, &ents);
    bool found = false;
    for (int i = 0; i < n; i++)
        if (strcmp(h_field(&ents[i], "ticket"), ticket) == 0 &&
            strcmp(h_field(&ents[i], "kind"), "breach") == 0 &&
            strcmp(h_field(&ents[i], "metric"), "response") == 0)
            found = true;
    h_entries_free(ents, n);
    return found;
}

static void
test_ctl_status_agrees_before_and_after_checkpoint(void **state)
{
    struct env *e = *state;
    char *cfg = write_cfg(e, "ctl.yaml", "st:", "0s", "6s");
    pid_t d = h_daemon_start(cfg, e->redis.dir);
    assert_true(h_wait_group(e->c, "st:events", "slawatch", 5000));
    int64_t now = h_now_ms();
    xadd_ts(e, "st:events", "opened", "LATE", now, "high");     /* breaches at +2 s */
    xadd_ts(e, "st:events", "opened", "INTIME", now, "high");
    xadd_ts(e, "st:events", "responded", "INTIME", now + 500, NULL);
    /* A fast producer's answer, stamped after the deadline but arriving in
     * time: met by arrival. */
    xadd_ts(e, "st:events", "opened", "FAST", now, "high");
    xadd_ts(e, "st:events", "responded", "FAST", now + 60000, NULL);
    assert_true(h_wait_xlen(e->c, "st:breaches", 2, 6000)); /* LATE's warning, breach */
    assert_true(has_breach(e, "st:breaches", "LATE"));
    assert_false(has_breach(e, "st:breaches", "INTIME"));
    assert_false(has_breach(e, "st:breaches", "FAST"));
    char out[64];
    long long age = -1;
    assert_false(h_get_int(e->c, "st:stats:checkpoint_age_ms", &age) && age >= 0);
    ctl_outcome(cfg, "LATE", out, sizeof(out));
    assert_string_equal(out, " breached ");
    ctl_outcome(cfg, "INTIME", out, sizeof(out));
    assert_string_equal(out, " met ");
    ctl_outcome(cfg, "FAST", out, sizeof(out));
    assert_string_equal(out, " met ");
    /* After a checkpoint (every 6 s), with no new events: the same. */
    bool checkpointed = false;
    for (int waited = 0; waited < 15000 && !checkpointed; waited += 200) {
        checkpointed = h_get_int(e->c, "st:stats:checkpoint_age_ms", &age) && age >= 0;
        h_sleep_ms(200);
    }
    assert_true(checkpointed);
    ctl_outcome(cfg, "LATE", out, sizeof(out));
    assert_string_equal(out, " breached ");
    ctl_outcome(cfg, "INTIME", out, sizeof(out));
    assert_string_equal(out, " met ");
    ctl_outcome(cfg, "FAST", out, sizeof(out));
    assert_string_equal(out, " met ");
    assert_int_equal(h_daemon_stop(d, SIGTERM, 5000), 0);
    free(cfg);
}

/* An entry with the largest ID Redis allows (20 digits) makes every later
 * `XADD *` inherit its time part: none of them may be dropped, and none
 * may be taken as "ts in the future" or as 1970. */
static void
test_largest_stream_id_poisons_nothing(void **state)
{
    struct env *e = *state;
    char *cfg = write_cfg(e, "big.yaml", "big:", "0s", "30s");
    pid_t d = h_daemon_start(cfg, e->redis.dir);
    assert_true(h_wait_group(e->c, "big:events", "slawatch", 5000));
    redisReply *r = redisCommand(e->c, "XADD big:events 18446744073709551615-0 type opened "
                                       "ticket MAX priority high");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    char id[48];
    assert_int_equal(h_xadd(e->c, "big:events", id, sizeof(id), "type", "opened", "ticket",
                            "AFTER", "priority", "high", NULL), 0);
    assert_string_equal(id, "18446744073709551615-1");
    assert_int_equal(h_xadd(e->c, "big:events", NULL, 0, "type", "responded", "ticket",
                            "AFTER", NULL), 0);
    assert_true(h_wait_int(e->c, "big:stats:events_total", 3, 5000));
    long long rejected = -1;
    assert_true(h_get_int(e->c, "big:stats:rejected_total", &rejected));
    assert_int_equal(rejected, 0);
    assert_int_equal(h_xpending_count(e->c, "big:events", "slawatch"), 0);
    /* MAX was taken at the wall clock: it breaches 2 s later, not in 1970
     * (late_ms small) and not never. */
    assert_true(h_wait_xlen(e->c, "big:breaches", 2, 6000)); /* warning, breach */
    struct h_entry *ents;
    int n = h_xrange(e->c, "big:breaches", &ents);
    bool breach = false;
    for (int i = 0; i < n; i++) {
        assert_string_equal(h_field(&ents[i], "ticket"), "MAX");
        if (strcmp(h_field(&ents[i], "kind"), "breach") == 0) {
            breach = true;
            long long late = atoll(h_field(&ents[i], "late_ms"));
            assert_true(late > 0 && late < 5000);
        }
    }
    h_entries_free(ents, n);
    assert_true(breach);
    assert_int_equal(h_daemon_stop(d, SIGTERM, 5000), 0);
    free(cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_live_equals_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctl_status_agrees_before_and_after_checkpoint,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_largest_stream_id_poisons_nothing, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
