/* Unit tests for config_diff.c: the reload log's account of what changed
 * between two configurations, line by line, and nothing for the same file
 * or one that only moves named things around. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "slawatch/config.h"
#include "slawatch/config_diff.h"

static struct config *
load(const char *text)
{
    struct config *cfg = cfg_load_string("test.yaml", text, strlen(text), stderr);
    assert_non_null(cfg);
    return cfg;
}

struct lines {
    char text[4096];
    size_t n;
};

static void
collect(void *arg, const char *line)
{
    struct lines *l = arg;
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof(l->text) - len, "%s\n", line);
    l->n++;
}

static const char *before =
    "events: { batch: 1000 }\n"
    "tiers:\n"
    "  gold: { response: 1h, resolution: 1d, warn: [80%] }\n"
    "  silver: { response: 4h, calendar: office }\n"
    "  bronze: { response: 1d }\n"
    "policies:\n"
    "  - { match: { priority: urgent }, tier: gold }\n"
    "  - { match: { queue: vip }, tier: silver }\n"
    "calendars:\n"
    "  office: { timezone: UTC, week: { mon-fri: \"09:00-17:00\" } }\n"
    "escalations:\n"
    "  - { name: page, when: breach, notify: [hook] }\n"
    "  - { name: chat, when: warning, notify: [hook] }\n"
    "webhooks:\n"
    "  hook: { url: \"http://127.0.0.1:9/a\" }\n"
    "  old: { url: \"http://127.0.0.1:9/old\" }\n";

static const char *after =
    "events: { batch: 500 }\n"
    "tiers:\n"
    "  gold: { response: 30m, resolution: 1d, warn: [50%, 80%] }\n"
    "  silver: { response: 4h }\n"
    "  platinum: { response: 5m }\n"
    "policies:\n"
    "  - { match: { priority: [urgent, p1] }, tier: gold }\n"
    "  - { match: { queue: vip }, tier: silver }\n"
    "calendars:\n"
    "  office: { timezone: Europe/Berlin, week: { mon-thu: \"09:00-17:00\" },\n"
    "            holidays: [\"2026-12-25\"] }\n"
    "escalations:\n"
    "  - { name: page, when: breach, after: 5m, notify: [hook] }\n"
    "  - { name: mgr, when: breach, metric: resolution, notify: [hook] }\n"
    "webhooks:\n"
    "  hook: { url: \"http://127.0.0.1:9/b\", format: slack, timeout: 2s }\n"
    "compliance: { windows: [1h, 7d], objective: 0.95 }\n"
    "log: { level: debug }\n";

static void
test_every_kind_of_change(void **state)
{
    (void)state;
    struct config *a = load(before), *b = load(after);
    struct lines l = { "", 0 };
    size_t n = cfg_diff(a, b, collect, &l);
    static const char *want =
        "events changed: batch 1000 -> 500\n"
        "tier gold changed: response 1h -> 30m, warn [80%] -> [50%, 80%]\n"
        "tier silver changed: calendar office -> none\n"
        "tier platinum added (response 5m)\n"
        "tier bronze removed: its tickets take the tier the policies choose now, and its "
        "gauges are deleted\n"
        "default tier (the last listed) bronze -> platinum\n"
        "policy 1 removed: { match: { priority: urgent }, tier: gold }\n"
        "policy 1 added: { match: { priority: [urgent, p1] }, tier: gold }\n"
        "calendar office changed: timezone UTC -> Europe/Berlin, week.fri 09:00-17:00 -> "
        "closed, holidays [] -> [2026-12-25]\n"
        "escalation page changed: after none -> 5m\n"
        "escalation mgr added (breach of resolution -> [hook])\n"
        "escalation chat removed\n"
        "webhook hook changed: url http://127.0.0.1:9/a -> http://127.0.0.1:9/b, format json "
        "-> slack, timeout 5s -> 2s\n"
        "webhook old removed: its waiting notifications are dropped when due\n"
        "compliance changed: windows [1h, 24h, 7d] -> [1h, 7d], objective 0.9 -> 0.95\n"
        "log changed: level info -> debug\n";
    if (strcmp(l.text, want) != 0)
        fail_msg("got:\n%s\nwant:\n%s", l.text, want);
    assert_int_equal(n, 16);
    cfg_free(a);
    cfg_free(b);
}

static void
test_no_change(void **state)
{
    (void)state;
    struct config *a = load(before), *b = load(before);
    struct lines l = { "", 0 };
    assert_int_equal(cfg_diff(a, b, collect, &l), 0);
    assert_string_equal(l.text, "");
    cfg_free(b);
    /* Webhooks and escalations in another order: the same by name. Policies
     * in another order are a change (the first match wins). */
    b = load("events: { batch: 1000 }\n"
             "tiers:\n"
             "  gold: { response: 1h, resolution: 1d, warn: [80%] }\n"
             "  silver: { response: 4h, calendar: office }\n"
             "  bronze: { response: 1d }\n"
             "policies:\n"
             "  - { match: { queue: vip }, tier: silver }\n"
             "  - { match: { priority: urgent }, tier: gold }\n"
             "calendars:\n"
             "  office: { timezone: UTC, week: { mon-fri: \"09:00-17:00\" } }\n"
             "escalations:\n"
             "  - { name: chat, when: warning, notify: [hook] }\n"
             "  - { name: page, when: breach, notify: [hook] }\n"
             "webhooks:\n"
             "  old: { url: \"http://127.0.0.1:9/old\" }\n"
             "  hook: { url: \"http://127.0.0.1:9/a\" }\n");
    assert_int_equal(cfg_diff(a, b, collect, &l), 1);
    assert_string_equal(l.text, "policies reordered (the first match wins)\n");
    cfg_free(a);
    cfg_free(b);
}

static void
test_secrets_never_shown(void **state)
{
    (void)state;
    char dir[] = "/tmp/slawatch-diff-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p1[256], p2[256], y1[512], y2[512];
    snprintf(p1, sizeof(p1), "%s/one", dir);
    snprintf(p2, sizeof(p2), "%s/two", dir);
    FILE *f = fopen(p1, "w");
    fputs("first-secret\n", f);
    fclose(f);
    f = fopen(p2, "w");
    fputs("second-secret\n", f);
    fclose(f);
    chmod(p1, 0600);
    chmod(p2, 0600);
    snprintf(y1, sizeof(y1), "webhooks: { h: { url: \"http://127.0.0.1:9/\", secret_file: %s } }\n",
             p1);
    snprintf(y2, sizeof(y2), "webhooks: { h: { url: \"http://127.0.0.1:9/\", secret_file: %s } }\n",
             p2);
    struct config *a = load(y1), *b = load(y2), *c = load("webhooks: { h: { url: \"http://127.0.0.1:9/\" } }\n");
    struct lines l = { "", 0 };
    assert_int_equal(cfg_diff(a, b, collect, &l), 1);
    assert_int_equal(cfg_diff(a, c, collect, &l), 1);
    assert_string_equal(l.text, "webhook h changed: secret (old) -> (new)\n"
                                "webhook h changed: secret set -> none\n");
    assert_null(strstr(l.text, "first"));
    cfg_free(a);
    cfg_free(b);
    cfg_free(c);
    unlink(p1);
    unlink(p2);
    rmdir(dir);
}

static void
test_objectives(void **state)
{
    (void)state;
    struct config *a = load(
        "tiers: { fast: { response: 10m }, slow: { response: 1h } }\n"
        "objectives:\n"
        "  - { name: answered, metric: response, windows: [24h], min: 0.9 }\n"
        "  - { name: reopens, kpi: reopen_rate, max: 0.05 }\n"
        "  - { name: gone, kpi: fcr, min: 0.8 }\n"
        "escalations:\n"
        "  - { name: page, when: objective, notify: [hook] }\n"
        "webhooks: { hook: { url: \"http://127.0.0.1:9/a\" } }\n");
    struct config *b = load(
        "tiers: { fast: { response: 10m }, slow: { response: 1h } }\n"
        "objectives:\n"
        "  - { name: reopens, kpi: csat, tiers: [fast, all], max: 0.5 }\n"
        "  - { name: answered, metric: response, windows: [24h, 7d], min: 0.95 }\n"
        "  - { name: volume, kpi: csat_count, min: 10 }\n"
        "escalations:\n"
        "  - { name: page, when: objective, objectives: [answered], windows: [24h],\n"
        "      notify: [hook] }\n"
        "webhooks: { hook: { url: \"http://127.0.0.1:9/a\" } }\n");
    struct lines l = { "", 0 };
    size_t n = cfg_diff(a, b, collect, &l);
    static const char *want =
        "escalation page changed: objectives every objective -> [answered], windows every "
        "window -> [24h]\n"
        "objective reopens changed: measure reopen_rate -> csat (its states start afresh), "
        "threshold max 0.05 -> max 0.5, tiers every tier and all -> [fast, all]\n"
        "objective answered changed: threshold min 0.9 -> min 0.95, windows [24h] -> [24h, "
        "7d]\n"
        "objective volume added (csat_count min 10)\n"
        "objective gone removed: its states are dropped and its keys deleted\n";
    if (strcmp(l.text, want) != 0)
        fail_msg("got:\n%s\nwant:\n%s", l.text, want);
    assert_int_equal(n, 5);
    /* The same objectives in another order: no change. */
    struct config *c = load(
        "tiers: { fast: { response: 10m }, slow: { response: 1h } }\n"
        "objectives:\n"
        "  - { name: gone, kpi: fcr, min: 0.8 }\n"
        "  - { name: reopens, kpi: reopen_rate, max: 0.05 }\n"
        "  - { name: answered, metric: response, windows: [24h], min: 0.9 }\n"
        "escalations:\n"
        "  - { name: page, when: objective, notify: [hook] }\n"
        "webhooks: { hook: { url: \"http://127.0.0.1:9/a\" } }\n");
    l.text[0] = '\0';
    assert_int_equal(cfg_diff(a, c, collect, &l), 0);
    cfg_free(a);
    cfg_free(b);
    cfg_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_of_change),
        cmocka_unit_test(test_no_change),
        cmocka_unit_test(test_secrets_never_shown),
        cmocka_unit_test(test_objectives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
