/* A notification never outlives its clock (SPEC section 5; the time rule):
 * a business-hours tier whose breach is decided outside opening hours
 * (a ticket opened hours ago, during the last opening, reaching the
 * stream now) and answered before the calendar opens again. The PagerDuty
 * receiver sees the trigger at once and then its resolve, never a trigger
 * after the resolve; the `after` level waiting for the opening is
 * cancelled; the outbox ends empty. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

static int
answer_ok(void *arg, const char *path, const char *delivery, int attempt)
{
    (void)arg;
    (void)path;
    (void)delivery;
    (void)attempt;
    return 202;
}

static void
test_after_hours_breach_answered_before_opening(void **state)
{
    (void)state;
    /* An hour-long opening that ended at least an hour ago, every day. */
    int64_t now = h_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int open_h = (tm.tm_hour + 22) % 24;
    if (open_h == 23)
        open_h = 21; /* "23:00-24:00" is not a window the config takes */
    int64_t day = now - (now % 86400000LL);
    int64_t opening = day + (int64_t)open_h * 3600000LL;
    if (opening > now - 3600000LL)
        opening -= 86400000LL; /* the last one, yesterday's */
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"nl:\" }\n"
             "calendars:\n"
             "  office: { timezone: UTC, week: { mon-sun: \"%02d:00-%02d:00\" } }\n"
             "tiers:\n"
             "  biz: { response: 1m, calendar: office }\n"
             "webhooks:\n"
             "  pd: { url: \"http://127.0.0.1:@HTTP@/pd\", format: pagerduty,\n"
             "        routing_key_file: pd.key, send_resolved: true,\n"
             "        retry: { attempts: 3, backoff: 100ms } }\n"
             "escalations:\n"
             "  - { name: page, when: breach, notify: [pd] }\n"
             "  - { name: boss, when: breach, after: 10m, notify: [pd] }\n",
             open_h, open_h + 1);
    static const char *const secrets[] = { "pd.key", "PDKEY\n", NULL };
    struct h_env *e = h_env_start(yaml, "nl:events", secrets, answer_ok, NULL);
    assert_non_null(e);

    /* Opened during the last opening, due a minute later; it reaches the
     * stream now, after hours: decided breached now, paged now. */
    char ts[24];
    snprintf(ts, sizeof(ts), "%lld", (long long)(opening + 60000));
    assert_int_equal(h_xadd(e->c, "nl:events", NULL, 0, "type", "opened", "ticket", "B-1",
                            "ts", ts, NULL), 0);
    assert_true(h_wait_xlen(e->c, "nl:breaches", 1, 5000));
    assert_true(h_http_wait(&e->rx, "/pd", 1, 5000));
    /* Answered before the calendar opens. */
    assert_int_equal(h_xadd(e->c, "nl:events", NULL, 0, "type", "responded", "ticket",
                            "B-1", NULL), 0);
    assert_true(h_http_wait(&e->rx, "/pd", 2, 5000));
    assert_true(h_wait_hlen(e->c, "nl:outbox", 0, 5000));
    h_sleep_ms(1500); /* nothing more may come */

    struct h_req *reqs;
    int n = h_http_copy(&e->rx, &reqs);
    assert_int_equal(n, 2);
    assert_non_null(strstr(reqs[0].body, "\"event_action\":\"trigger\""));
    assert_non_null(strstr(reqs[1].body, "\"event_action\":\"resolve\""));
    /* The same incident: one dedup key. */
    const char *k0 = strstr(reqs[0].body, "\"dedup_key\":");
    const char *k1 = strstr(reqs[1].body, "\"dedup_key\":");
    assert_non_null(k0);
    assert_non_null(k1);
    const char *end0 = strchr(k0 + 13, '"'), *end1 = strchr(k1 + 13, '"');
    assert_non_null(end0);
    assert_non_null(end1);
    assert_int_equal(end0 - k0, end1 - k1);
    assert_memory_equal(k0, k1, (size_t)(end0 - k0));
    h_http_free_copy(reqs, n);
    assert_int_equal(h_hlen(e->c, "nl:outbox"), 0);
    assert_true(h_wait_int(e->c, "nl:stats:notifications_pending", 0, 3000));
    assert_int_equal(h_env_stop(e), 0);
}

/* due_ms of the outbox record of escalation `esc`, or -1. */
static long long
due_of(struct h_env *e, const char *esc)
{
    redisReply *r = redisCommand(e->c, "HVALS nl:outbox");
    long long due = -1;
    char want[64];
    snprintf(want, sizeof(want), "\"escalation\":\"%s\"", esc);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const char *rec = r->element[i]->str;
        const char *d = strstr(rec, "\"due_ms\":");
        if (strstr(rec, want) && d)
            due = atoll(d + 9);
    }
    if (r)
        freeReplyObject(r);
    return due;
}

/* A reload recomputes the `after` of a waiting level with the calendar in
 * force: here the tier loses its calendar, and the level due at the next
 * opening plus 10 minutes of open time becomes due 10 minutes after its
 * notice. */
static void
test_reload_recomputes_waiting_levels(void **state)
{
    (void)state;
    int64_t now = h_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int open_h = (tm.tm_hour + 22) % 24;
    if (open_h == 23)
        open_h = 21;
    int64_t opening = now - (now % 86400000LL) + (int64_t)open_h * 3600000LL;
    if (opening > now - 3600000LL)
        opening -= 86400000LL;
    const char *fmt =
        "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"nl:\" }\n"
        "calendars:\n"
        "  office: { timezone: UTC, week: { mon-sun: \"%02d:00-%02d:00\" } }\n"
        "tiers:\n"
        "  biz: { response: 1m%s }\n"
        "webhooks:\n"
        "  pd: { url: \"http://127.0.0.1:@HTTP@/pd\", format: pagerduty,\n"
        "        routing_key_file: pd.key }\n"
        "escalations:\n"
        "  - { name: boss, when: breach, after: 10m, notify: [pd] }\n";
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), fmt, open_h, open_h + 1, ", calendar: office");
    static const char *const secrets[] = { "pd.key", "PDKEY\n", NULL };
    struct h_env *e = h_env_start(yaml, "nl:events", secrets, answer_ok, NULL);
    assert_non_null(e);
    char ts[24];
    snprintf(ts, sizeof(ts), "%lld", (long long)(opening + 60000));
    assert_int_equal(h_xadd(e->c, "nl:events", NULL, 0, "type", "opened", "ticket", "R-1",
                            "ts", ts, NULL), 0);
    assert_true(h_wait_xlen(e->c, "nl:breaches", 1, 5000));
    assert_true(h_wait_hlen(e->c, "nl:outbox", 1, 5000));
    long long before = due_of(e, "boss");
    /* Due 10 minutes of open time into the next opening, a day after the
     * last one (at least 19 hours away, whatever the hour the test runs). */
    assert_int_equal(before, opening + 86400000LL + 600000);

    /* The same config without the calendar, and SIGHUP. */
    snprintf(yaml, sizeof(yaml), fmt, open_h, open_h + 1, "");
    char *text = h_subst_ports(yaml, e->redis.port, e->rx.port);
    free(h_write_file(e->redis.dir, "slawatch.yaml", text));
    free(text);
    assert_int_equal(kill(e->daemon, SIGHUP), 0);
    long long after = -1;
    for (int waited = 0; waited < 5000; waited += 100) {
        after = due_of(e, "boss");
        if (after != before)
            break;
        h_sleep_ms(100);
    }
    /* 10 minutes after the breach was decided, 24x7. */
    assert_true(after >= now + 10 * 60000LL - 5000 && after <= h_now_ms() + 10 * 60000LL);
    assert_int_equal(h_http_count(&e->rx, "/pd"), 0); /* still waiting */
    assert_int_equal(h_env_stop(e), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_after_hours_breach_answered_before_opening),
        cmocka_unit_test(test_reload_recomputes_waiting_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
