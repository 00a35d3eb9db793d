/* Business hours end to end: a ticket opened just before closing time
 * breaches at the next opening plus the remaining target, not at wall clock
 * plus target. The calendar's hours are set around the test's current time:
 * closed for the rest of the current minute, open before and after. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    *state = e;
    if (h_redis_start(&e->redis, NULL) < 0)
        return -1;
    e->c = h_connect(e->redis.port);
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
test_breach_after_reopening(void **state)
{
    struct env *e = *state;
    struct h_redis redis = e->redis;
    redisContext *c = e->c;
    char text[1024], ts[24];

    /* Not across midnight (UTC): the closed minute must be inside one day. */
    for (;;) {
        time_t now = (time_t)(h_now_ms() / 1000);
        struct tm tm;
        gmtime_r(&now, &tm);
        if (!(tm.tm_hour == 23 && tm.tm_min == 59) && !(tm.tm_hour == 0 && tm.tm_min == 0) &&
            tm.tm_sec < 58)
            break;
        h_sleep_ms(500);
    }
    int64_t now = h_now_ms();
    int64_t close_ms = now - now % 60000; /* start of this minute */
    int64_t open_ms = close_ms + 60000;
    time_t cs = (time_t)(close_ms / 1000), os = (time_t)(open_ms / 1000);
    struct tm ct, ot;
    gmtime_r(&cs, &ct);
    gmtime_r(&os, &ot);
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"cal:\" }\n"
             "calendars:\n"
             "  desk:\n"
             "    timezone: UTC\n"
             "    week: { mon-sun: \"00:00-%02d:%02d,%02d:%02d-24:00\" }\n"
             "tiers:\n"
             "  biz: { response: 20s, calendar: desk }\n"
             "  plain: { response: 20s }\n"
             "policies:\n"
             "  - { match: { channel: plain }, tier: plain }\n"
             "  - { tier: biz }\n",
             redis.port, ct.tm_hour, ct.tm_min, ot.tm_hour, ot.tm_min);
    char *cfg = e->cfg = h_write_file(redis.dir, "slawatch.yaml", text);
    e->daemon = h_daemon_start(cfg, redis.dir);
    assert_true(h_wait_group(c, "cal:events", "slawatch", 5000));

    /* Opened 10 s before closing time: 10 s counted, 10 s left at the
     * next opening. The 24x7 twin breaches at wall clock + target. */
    int64_t opened = close_ms - 10000;
    snprintf(ts, sizeof(ts), "%lld", (long long)opened);
    assert_int_equal(h_xadd(c, "cal:events", NULL, 0, "type", "opened", "ticket", "biz-1",
                            "ts", ts, NULL), 0);
    assert_int_equal(h_xadd(c, "cal:events", NULL, 0, "type", "opened", "ticket", "plain-1",
                            "ts", ts, "channel", "plain", NULL), 0);

    h_sleep_until(open_ms + 10000 + 1500);
    struct h_entry *ent;
    int n = h_xrange(c, "cal:breaches", &ent);
    int biz = 0, plain = 0;
    for (int i = 0; i < n; i++) {
        const char *ticket = h_field(&ent[i], "ticket");
        if (ticket == NULL)
            continue;
        long long deadline = atoll(h_field(&ent[i], "deadline_ms"));
        long long at = atoll(h_field(&ent[i], "at_ms"));
        if (!strcmp(ticket, "biz-1")) {
            biz++;
            assert_int_equal(deadline, open_ms + 10000);
            /* Detected live at that deadline, not before the opening. */
            assert_true(at >= open_ms + 10000);
            assert_true(at - deadline <= 100);
        } else {
            plain++;
            assert_int_equal(deadline, opened + 20000);
        }
    }
    h_entries_free(ent, n);
    assert_int_equal(biz, 1);
    assert_int_equal(plain, 1);

    /* slawatchctl status shows the deadline in UTC and in the zone. */
    char cmd[1024], line[512];
    snprintf(cmd, sizeof(cmd), "%s/slawatchctl -c %s status --json biz-1", h_build_dir(), cfg);
    FILE *p = popen(cmd, "r");
    int saw_local = 0, saw_zone = 0;
    while (fgets(line, sizeof(line), p)) {
        saw_local |= strstr(line, "\"deadline_local\"") != NULL;
        saw_zone |= strstr(line, "\"timezone\": \"UTC\"") != NULL;
    }
    assert_int_equal(pclose(p), 0);
    assert_true(saw_local && saw_zone);

    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_breach_after_reopening, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
