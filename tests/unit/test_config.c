/* Unit tests for the config loader: durations, defaults, a round trip of
 * every field, each kind of error at its exact FILE:LINE:COL, secret files,
 * and malformed input (random bytes, deep nesting, huge scalars, alias
 * bombs, mutated copies of conf/slawatch.yaml) that must never crash.
 *
 * Runs from the repository root (or SLAWATCH_SRCDIR). The fuzz loop's
 * size and seed come from SLAWATCH_FUZZ_ITERS and SLAWATCH_FUZZ_SEED. */
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
#include <valgrind/valgrind.h>

#include "slawatch/cal.h"
#include "slawatch/config.h"
#include "slawatch/util.h"

#define HOUR 3600000LL
#define MIN 60000LL
#define DAY 86400000LL

/* ---- helpers ------------------------------------------------------------ */

/* Loads `yaml` as "t.yaml"; *errs receives every error line (caller frees). */
static struct config *
load(const char *yaml, char **errs)
{
    size_t len;
    FILE *f = open_memstream(errs, &len);
    assert_non_null(f);
    struct config *cfg = cfg_load_string("t.yaml", yaml, strlen(yaml), f);
    fclose(f);
    return cfg;
}

static struct config *
load_ok(const char *yaml)
{
    char *errs = NULL;
    struct config *cfg = load(yaml, &errs);
    if (cfg == NULL || errs[0] != '\0') {
        print_error("unexpected errors for:\n%s\n---\n%s", yaml, errs);
        free(errs);
        fail();
    }
    free(errs);
    return cfg;
}

/* True when `errs` holds exactly this line. */
static int
has_line(const char *errs, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = errs; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

static size_t
count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Loading must fail and report exactly `line` (among possibly others). */
static void
expect_error(const char *yaml, const char *line)
{
    char *errs = NULL;
    struct config *cfg = load(yaml, &errs);
    if (cfg != NULL || !has_line(errs, line)) {
        print_error("expected the line\n  %s\nfor:\n%s\n--- got:\n%s", line,
                    yaml, errs);
        cfg_free(cfg);
        free(errs);
        fail();
    }
    free(errs);
}

static char tmpdir[64];

static int
setup_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/slawatch-cfg-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown_tmpdir(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes `content` to tmpdir/name with `mode`; returns the full path in a
 * static buffer (one at a time). */
static const char *
write_file(const char *name, const char *content, mode_t mode)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static const char *
srcdir(void)
{
    const char *d = getenv("SLAWATCH_SRCDIR");
    return d && *d ? d : ".";
}

/* ---- durations ---------------------------------------------------------- */

static void
test_dur_valid(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"0", 0},
        {"0s", 0},
        {"500ms", 500},
        {"30s", 30000},
        {"5m", 5 * MIN},
        {"1h", HOUR},
        {"3d", 3 * DAY},
        {"1h30m", HOUR + 30 * MIN},
        {"2m30s500ms", 2 * MIN + 30000 + 500},
        {"1d2h3m4s5ms", DAY + 2 * HOUR + 3 * MIN + 4005},
        {"90m", 90 * MIN},
        {"106751991167d", 106751991167LL * DAY},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int64_t ms = -1;
        char buf[64];
        if (dur_parse(cases[i].text, &ms) != 0 || ms != cases[i].ms) {
            print_error("dur_parse(\"%s\") gave %lld\n", cases[i].text,
                        (long long)ms);
            fail();
        }
        /* dur_format gives text that reads back to the same value. */
        assert_int_equal(dur_parse(dur_format(ms, buf, sizeof(buf)), &ms), 0);
        assert_int_equal(ms, cases[i].ms);
    }
}

static void
test_dur_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "5",
        "1x",
        "m",
        "-1s",
        "1m1h",
        "1h1h",
        "1s1m",
        " 1s",
        "1s ",
        "1.5s",
        "+1s",
        "1 s",
        "s1",
        "1hm",
        "ms",
        "1sms",
        "0x1s",
        "1S",
        "1H",
        "99999999999999999999s",       /* digits overflow */
        "106751991168d",               /* days overflow */
        "9223372036854775807s",        /* unit overflow */
        "106751991167d1d",             /* a unit twice */
        "106751991167d23h59m59s999ms", /* sum overflow */
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int64_t ms = 42;
        if (dur_parse(bad[i], &ms) == 0) {
            print_error("dur_parse(\"%s\") accepted: %lld\n", bad[i],
                        (long long)ms);
            fail();
        }
    }
}

static void
test_dur_in_config(void **state)
{
    (void)state;
    struct config *cfg = load_ok("tiers:\n"
                                 "  a: { response: 1h30m, resolution: 2d12h }\n"
                                 "  b: { response: 500ms }\n");
    assert_int_equal(cfg->tiers[0].target_ms[METRIC_RESPONSE], 90 * MIN);
    assert_int_equal(cfg->tiers[0].target_ms[METRIC_RESOLUTION],
                     2 * DAY + 12 * HOUR);
    assert_int_equal(cfg->tiers[1].target_ms[METRIC_RESPONSE], 500);
    assert_int_equal(cfg->tiers[1].target_ms[METRIC_RESOLUTION], 0);
    cfg_free(cfg);

    static const char *const bad[] = {"5",   "1x",   "m",
                                      "-1s", "1m1h", "99999999999999999999s"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char yaml[128], line[192];
        snprintf(yaml, sizeof(yaml), "tiers:\n  a:\n    response: %s\n",
                 bad[i]);
        snprintf(line, sizeof(line),
                 "t.yaml:3:15: tiers.a.response: bad duration '%s' (write "
                 "e.g. 500ms, 30s, 5m, 1h30m, 3d)",
                 bad[i]);
        expect_error(yaml, line);
    }
    /* A zero target makes no sense; a zero skew or delay does. */
    expect_error("tiers: { a: { response: 0s } }\n",
                 "t.yaml:1:25: tiers.a.response: must be greater than 0");
    cfg = load_ok("events: { max_clock_skew: 0 }\n");
    assert_int_equal(cfg->events.max_clock_skew_ms, 0);
    cfg_free(cfg);
}

/* ---- defaults ----------------------------------------------------------- */

static void
check_defaults(const struct config *cfg)
{
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);

    assert_string_equal(cfg->path, "t.yaml");
    assert_string_equal(cfg->redis.host, "127.0.0.1");
    assert_null(cfg->redis.unix_path);
    assert_int_equal(cfg->redis.port, 6379);
    assert_int_equal(cfg->redis.db, 0);
    assert_null(cfg->redis.username);
    assert_null(cfg->redis.password);
    assert_string_equal(cfg->redis.prefix, "sla:");

    assert_string_equal(cfg->events.group, "slawatch");
    assert_string_equal(cfg->events.consumer, host);
    assert_int_equal(cfg->events.batch, 1000);
    assert_int_equal(cfg->events.max_clock_skew_ms, 5 * MIN);
    assert_int_equal(cfg->events.dead_maxlen, 100000);

    /* SPEC's four tiers. */
    static const struct {
        const char *name;
        int64_t response, resolution;
        int nwarn;
    } tiers[] = {
        {"instant", 5 * MIN, 4 * HOUR, 1},
        {"1h", HOUR, 24 * HOUR, 1},
        {"4h", 4 * HOUR, 3 * DAY, 0},
        {"24h", 24 * HOUR, 5 * DAY, 0},
    };
    assert_int_equal(cfg->ntiers, 4);
    for (size_t i = 0; i < 4; i++) {
        const struct cfg_tier *t = &cfg->tiers[i];
        assert_string_equal(t->name, tiers[i].name);
        assert_int_equal(t->target_ms[METRIC_RESPONSE], tiers[i].response);
        assert_int_equal(t->target_ms[METRIC_RESOLUTION], tiers[i].resolution);
        assert_int_equal(t->nwarn, tiers[i].nwarn);
        if (t->nwarn)
            assert_int_equal(t->warn_bp[0], 8000);
        assert_false(t->pause[METRIC_RESPONSE]);
        assert_true(t->pause[METRIC_RESOLUTION]);
        assert_null(t->calendar_name);
        assert_null(t->calendar);
    }

    /* SPEC's example policies. */
    assert_int_equal(cfg->npolicies, 5);
    const struct cfg_policy *p = cfg->policies;
    assert_int_equal(p[0].tier, 0);
    assert_int_equal(p[0].nvalues[ATTR_PRIORITY], 2);
    assert_string_equal(p[0].values[ATTR_PRIORITY][0], "urgent");
    assert_string_equal(p[0].values[ATTR_PRIORITY][1], "p1");
    assert_int_equal(p[1].tier, 0);
    assert_int_equal(p[1].nvalues[ATTR_CHANNEL], 1);
    assert_string_equal(p[1].values[ATTR_CHANNEL][0], "phone");
    assert_int_equal(p[1].nvalues[ATTR_PRIORITY], 0);
    assert_int_equal(p[2].tier, 1);
    assert_string_equal(p[2].values[ATTR_PRIORITY][0], "high");
    assert_int_equal(p[3].tier, 2);
    assert_string_equal(p[3].values[ATTR_PRIORITY][0], "normal");
    assert_int_equal(p[4].tier, 3);
    for (int a = 0; a < ATTR_COUNT; a++)
        assert_int_equal(p[4].nvalues[a], 0);

    assert_int_equal(cfg->ncalendars, 0);
    assert_int_equal(cfg->nescalations, 0);
    assert_int_equal(cfg->nwebhooks, 0);

    const struct cfg_compliance *c = &cfg->compliance;
    assert_int_equal(c->nwindows, 3);
    assert_string_equal(c->windows[0].name, "1h");
    assert_int_equal(c->windows[0].ms, HOUR);
    assert_string_equal(c->windows[1].name, "24h");
    assert_int_equal(c->windows[1].ms, 24 * HOUR);
    assert_string_equal(c->windows[2].name, "7d");
    assert_int_equal(c->windows[2].ms, 7 * DAY);
    for (int a = 0; a < ATTR_COUNT; a++)
        assert_false(c->by[a]);
    assert_int_equal(c->max_values, 200);
    assert_int_equal(c->publish_every_ms, 10000);
    assert_true(c->objective > 0.8999 && c->objective < 0.9001);
    assert_int_equal(cfg->log_level, LOG_LVL_INFO);
}

static void
test_defaults(void **state)
{
    static const char *const empties[] = {
        "",
        "# only a comment\n",
        "~\n",
        "---\n",
        ("redis:\nevents:\ntiers:\npolicies:\ncalendars:\nescalations:\n"
         "webhooks:\ncompliance:\nlog:\n"),
        "redis: {}\nevents: {}\ncompliance: {}\nlog: {}\n",
        "events: { consumer: \"\" }\nredis: { username: ~ }\n",
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(empties); i++) {
        struct config *cfg = load_ok(empties[i]);
        check_defaults(cfg);
        cfg_free(cfg);
    }
}

static void
test_tiers_replace_defaults(void **state)
{
    (void)state;
    struct config *cfg = load_ok("tiers:\n"
                                 "  gold: { response: 10m, resolution: 8h }\n"
                                 "  silver: { response: 2h }\n");
    assert_int_equal(cfg->ntiers, 2);
    assert_string_equal(cfg->tiers[0].name, "gold");
    assert_string_equal(cfg->tiers[1].name, "silver");
    assert_int_equal(cfg->tiers[1].target_ms[METRIC_RESOLUTION], 0);
    assert_int_equal(cfg->tiers[0].nwarn, 0);
    assert_true(cfg->tiers[1].pause[METRIC_RESOLUTION]);
    /* Custom tiers and no policies: none, the core takes the last tier. */
    assert_int_equal(cfg->npolicies, 0);
    assert_int_equal(cfg_tier_index(cfg, "instant", 7), -1);
    assert_int_equal(cfg_tier_index(cfg, "silver", 6), 1);
    assert_int_equal(cfg_tier_index(cfg, "silverX", 6), 1);
    assert_int_equal(cfg_tier_index(cfg, "silv", 4), -1);
    cfg_free(cfg);

    /* Default tiers with explicit policies: only those. */
    cfg = load_ok("policies:\n  - { match: { queue: vip }, tier: 1h }\n");
    assert_int_equal(cfg->ntiers, 4);
    assert_int_equal(cfg->npolicies, 1);
    assert_int_equal(cfg->policies[0].tier, 1);
    assert_string_equal(cfg->policies[0].values[ATTR_QUEUE][0], "vip");
    cfg_free(cfg);

    /* An explicitly empty list of policies stays empty. */
    cfg = load_ok("policies: []\n");
    assert_int_equal(cfg->npolicies, 0);
    cfg_free(cfg);

    expect_error("tiers: {}\n", "t.yaml:1:8: tiers: define at least one "
                                "tier, or leave the section out for the "
                                "default tiers");
}

/* ---- a round trip of every field ---------------------------------------- */

static void
test_full_config(void **state)
{
    char yaml[8192], pass[256], hmac[256];
    (void)state;
    snprintf(pass, sizeof(pass), "%s",
             write_file("redis.pass", "pa55word\n", 0600));
    snprintf(hmac, sizeof(hmac), "%s",
             write_file("hook.secret", "hmac-key", 0400));
    const char *pd = write_file("pd.key", "routing-key\n\n", 0600);
    snprintf(
        yaml, sizeof(yaml),
        "redis:\n"
        "  host: redis.internal\n"
        "  port: 6380\n"
        "  db: 3\n"
        "  username: watcher\n"
        "  password_file: %s\n"
        "  prefix: \"t1:\"\n"
        "events:\n"
        "  group: g1\n"
        "  consumer: c1\n"
        "  batch: 50\n"
        "  max_clock_skew: 1m30s\n"
        "  dead_maxlen: 0\n"
        "calendars:\n"
        "  office:\n"
        "    timezone: Europe/Berlin\n"
        "    week: { mon-fri: \"09:00-12:00,13:00-18:00\", sat: closed }\n"
        "    holidays: [\"2026-12-25\", 2026-12-26]\n"
        "  nights:\n"
        "    timezone: UTC\n"
        "    holidays: []\n"
        "tiers:\n"
        "  gold:\n"
        "    response: 15m\n"
        "    resolution: 8h\n"
        "    warn: [90%%, 50%%, 87.5%%, 50%%]\n"
        "    calendar: office\n"
        "    pause: [response, resolution]\n"
        "  silver.2:\n"
        "    response: 2h\n"
        "    pause: []\n"
        "  bronze_3-x: { response: 1d, pause: [response], calendar: nights }\n"
        "policies:\n"
        "  - match:\n"
        "      priority: [urgent, p1]\n"
        "      channel: phone\n"
        "      queue: [billing]\n"
        "      agent: ann\n"
        "      customer: [acme, globex]\n"
        "    tier: gold\n"
        "  - { match: {}, tier: silver.2 }\n"
        "  - tier: bronze_3-x\n"
        "webhooks:\n"
        "  j:\n"
        "    url: https://hooks.example.net/sla\n"
        "    format: json\n"
        "    secret_file: %s\n"
        "    timeout: 2s\n"
        "    retry: { attempts: 3, backoff: 500ms, max_backoff: 1m }\n"
        "    send_resolved: false\n"
        "    max_rate: 120/m\n"
        "    resend: 30s\n"
        "  am: { url: \"http://127.0.0.1:9093/api/v2/alerts\", format: "
        "alertmanager, max_rate: 2 }\n"
        "  pd: { url: \"https://events.pagerduty.com/v2/enqueue\", format: "
        "pagerduty, routing_key_file: %s, max_rate: 1000/h }\n"
        "  sl: { url: \"https://hooks.slack.com/x\", format: slack, "
        "max_rate: 0.5 }\n"
        "escalations:\n"
        "  - name: page\n"
        "    when: breach\n"
        "    metric: response\n"
        "    tiers: [gold, bronze_3-x]\n"
        "    after: 10m\n"
        "    notify: [pd, am]\n"
        "  - { name: warn, when: warning, metric: resolution, notify: [sl] }\n"
        "  - { name: slo, when: objective, metric: any, notify: [j] }\n"
        "compliance:\n"
        "  windows: [30m, 1d, \"90m\"]\n"
        "  by: [customer, queue, priority, agent, channel]\n"
        "  max_values: 7\n"
        "  publish_every: 2s\n"
        "  objective: 0.995\n"
        "log:\n"
        "  level: debug\n",
        pass, hmac, pd);
    struct config *cfg = load_ok(yaml);

    assert_string_equal(cfg->redis.host, "redis.internal");
    assert_null(cfg->redis.unix_path);
    assert_int_equal(cfg->redis.port, 6380);
    assert_int_equal(cfg->redis.db, 3);
    assert_string_equal(cfg->redis.username, "watcher");
    assert_string_equal(cfg->redis.password, "pa55word");
    assert_string_equal(cfg->redis.prefix, "t1:");

    assert_string_equal(cfg->events.group, "g1");
    assert_string_equal(cfg->events.consumer, "c1");
    assert_int_equal(cfg->events.batch, 50);
    assert_int_equal(cfg->events.max_clock_skew_ms, 90000);
    assert_int_equal(cfg->events.dead_maxlen, 0);

    assert_int_equal(cfg->ncalendars, 2);
    const struct calendar *office = cfg->calendars[0];
    const struct calendar *nights = cfg->calendars[1];
    assert_string_equal(cal_name(office), "office");
    assert_string_equal(cal_timezone(office), "Europe/Berlin");
    assert_string_equal(cal_name(nights), "nights");
    /* Without week: open around the clock (2026-01-01 is a Thursday). */
    int64_t jan1 = days_from_civil(2026, 1, 1) * DAY;
    assert_int_equal(cal_elapsed(nights, jan1, jan1 + 7 * DAY), 7 * DAY);
    /* Office: 8 h a weekday, closed on the 2026-12-25 holiday (a Friday). */
    int64_t dec24 = days_from_civil(2026, 12, 24) * DAY;
    assert_int_equal(cal_elapsed(office, dec24, dec24 + DAY), 8 * HOUR);
    assert_int_equal(cal_elapsed(office, dec24 + DAY, dec24 + 2 * DAY), 0);

    assert_int_equal(cfg->ntiers, 3);
    const struct cfg_tier *gold = &cfg->tiers[0];
    assert_string_equal(gold->name, "gold");
    assert_int_equal(gold->target_ms[METRIC_RESPONSE], 15 * MIN);
    assert_int_equal(gold->target_ms[METRIC_RESOLUTION], 8 * HOUR);
    assert_int_equal(gold->nwarn, 3); /* sorted, duplicate dropped */
    assert_int_equal(gold->warn_bp[0], 5000);
    assert_int_equal(gold->warn_bp[1], 8750);
    assert_int_equal(gold->warn_bp[2], 9000);
    assert_string_equal(gold->calendar_name, "office");
    assert_ptr_equal(gold->calendar, office);
    assert_true(gold->pause[METRIC_RESPONSE]);
    assert_true(gold->pause[METRIC_RESOLUTION]);
    const struct cfg_tier *silver = &cfg->tiers[1];
    assert_string_equal(silver->name, "silver.2");
    assert_false(silver->pause[METRIC_RESPONSE]);
    assert_false(silver->pause[METRIC_RESOLUTION]);
    assert_null(silver->calendar);
    const struct cfg_tier *bronze = &cfg->tiers[2];
    assert_string_equal(bronze->name, "bronze_3-x");
    assert_int_equal(bronze->target_ms[METRIC_RESPONSE], DAY);
    assert_true(bronze->pause[METRIC_RESPONSE]);
    assert_false(bronze->pause[METRIC_RESOLUTION]);
    assert_ptr_equal(bronze->calendar, nights);

    assert_int_equal(cfg->npolicies, 3);
    const struct cfg_policy *p = &cfg->policies[0];
    assert_int_equal(p->tier, 0);
    assert_int_equal(p->nvalues[ATTR_PRIORITY], 2);
    assert_string_equal(p->values[ATTR_PRIORITY][1], "p1");
    assert_int_equal(p->nvalues[ATTR_CHANNEL], 1);
    assert_string_equal(p->values[ATTR_CHANNEL][0], "phone");
    assert_string_equal(p->values[ATTR_QUEUE][0], "billing");
    assert_string_equal(p->values[ATTR_AGENT][0], "ann");
    assert_int_equal(p->nvalues[ATTR_CUSTOMER], 2);
    assert_string_equal(p->values[ATTR_CUSTOMER][0], "acme");
    assert_string_equal(p->values[ATTR_CUSTOMER][1], "globex");
    for (int a = 0; a < ATTR_COUNT; a++) {
        assert_int_equal(cfg->policies[1].nvalues[a], 0);
        assert_int_equal(cfg->policies[2].nvalues[a], 0);
    }
    assert_int_equal(cfg->policies[1].tier, 1);
    assert_int_equal(cfg->policies[2].tier, 2);

    assert_int_equal(cfg->nwebhooks, 4);
    const struct cfg_webhook *j = &cfg->webhooks[0];
    assert_string_equal(j->name, "j");
    assert_string_equal(j->url, "https://hooks.example.net/sla");
    assert_int_equal(j->format, HOOK_JSON);
    assert_string_equal(j->secret, "hmac-key");
    assert_null(j->routing_key);
    assert_int_equal(j->timeout_ms, 2000);
    assert_int_equal(j->attempts, 3);
    assert_int_equal(j->backoff_ms, 500);
    assert_int_equal(j->max_backoff_ms, MIN);
    assert_false(j->send_resolved);
    assert_true(j->max_rate > 1.999 && j->max_rate < 2.001);
    assert_int_equal(j->resend_ms, 30000);
    const struct cfg_webhook *am = &cfg->webhooks[1];
    assert_int_equal(am->format, HOOK_ALERTMANAGER);
    assert_true(am->max_rate > 1.999 && am->max_rate < 2.001);
    /* Webhook defaults. */
    assert_int_equal(am->timeout_ms, 5000);
    assert_int_equal(am->attempts, 10);
    assert_int_equal(am->backoff_ms, 1000);
    assert_int_equal(am->max_backoff_ms, 5 * MIN);
    assert_true(am->send_resolved);
    assert_int_equal(am->resend_ms, MIN);
    assert_null(am->secret);
    const struct cfg_webhook *pdh = &cfg->webhooks[2];
    assert_int_equal(pdh->format, HOOK_PAGERDUTY);
    /* Only one trailing newline is stripped. */
    assert_string_equal(pdh->routing_key, "routing-key\n");
    assert_true(pdh->max_rate > 0.2777 && pdh->max_rate < 0.2778);
    const struct cfg_webhook *sl = &cfg->webhooks[3];
    assert_int_equal(sl->format, HOOK_SLACK);
    assert_true(sl->max_rate > 0.499 && sl->max_rate < 0.501);

    assert_int_equal(cfg->nescalations, 3);
    const struct cfg_escalation *e = &cfg->escalations[0];
    assert_string_equal(e->name, "page");
    assert_int_equal(e->when, ESC_BREACH);
    assert_int_equal(e->metric, METRIC_RESPONSE);
    assert_true(e->tiers[0]);
    assert_false(e->tiers[1]);
    assert_true(e->tiers[2]);
    assert_false(e->every_tier); /* a list: never the `all` series */
    assert_int_equal(e->after_ms, 10 * MIN);
    assert_int_equal(e->nnotify, 2);
    assert_int_equal(e->notify[0], 2);
    assert_int_equal(e->notify[1], 1);
    e = &cfg->escalations[1];
    assert_int_equal(e->when, ESC_WARNING);
    assert_int_equal(e->metric, METRIC_RESOLUTION);
    assert_true(e->tiers[0] && e->tiers[1] && e->tiers[2]);
    assert_false(e->tiers[3]); /* only real tiers */
    assert_true(e->every_tier);
    assert_int_equal(e->after_ms, 0);
    assert_int_equal(e->nnotify, 1);
    assert_int_equal(e->notify[0], 3);
    e = &cfg->escalations[2];
    assert_int_equal(e->when, ESC_OBJECTIVE);
    assert_int_equal(e->metric, -1);
    assert_int_equal(e->notify[0], 0);

    const struct cfg_compliance *c = &cfg->compliance;
    assert_int_equal(c->nwindows, 3);
    assert_string_equal(c->windows[0].name, "30m");
    assert_int_equal(c->windows[0].ms, 30 * MIN);
    assert_string_equal(c->windows[1].name, "1d");
    assert_int_equal(c->windows[1].ms, DAY);
    assert_string_equal(c->windows[2].name, "90m");
    assert_int_equal(c->windows[2].ms, 90 * MIN);
    for (int a = 0; a < ATTR_COUNT; a++)
        assert_true(c->by[a]);
    assert_int_equal(c->max_values, 7);
    assert_int_equal(c->publish_every_ms, 2000);
    assert_true(c->objective > 0.9949 && c->objective < 0.9951);
    assert_int_equal(cfg->log_level, LOG_LVL_DEBUG);
    cfg_free(cfg);
}

static void
test_redis_unix(void **state)
{
    (void)state;
    struct config *cfg = load_ok("redis: { unix: /run/redis/redis.sock }\n");
    assert_null(cfg->redis.host);
    assert_string_equal(cfg->redis.unix_path, "/run/redis/redis.sock");
    cfg_free(cfg);
    cfg = load_ok("redis: { prefix: \"\" }\n");
    assert_string_equal(cfg->redis.prefix, "");
    cfg_free(cfg);
    expect_error("redis:\n  host: h\n  unix: /s\n",
                 "t.yaml:3:3: redis: set either host or unix, not both");
    expect_error("redis: { host: \"\" }\n",
                 "t.yaml:1:16: redis.host: must not be empty");
}

static void
test_log_levels(void **state)
{
    static const struct {
        const char *name;
        enum log_level level;
    } levels[] = {
        {"debug", LOG_LVL_DEBUG},   {"info", LOG_LVL_INFO},
        {"notice", LOG_LVL_NOTICE}, {"warning", LOG_LVL_WARNING},
        {"err", LOG_LVL_ERR},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(levels); i++) {
        char yaml[64];
        snprintf(yaml, sizeof(yaml), "log: { level: %s }\n", levels[i].name);
        struct config *cfg = load_ok(yaml);
        assert_int_equal(cfg->log_level, levels[i].level);
        cfg_free(cfg);
    }
    expect_error("log:\n  level: loud\n",
                 "t.yaml:2:10: log.level: 'loud' is not one of debug, info, "
                 "notice, warning or err");
}

static void
test_warn_percentages(void **state)
{
    (void)state;
    struct config *cfg = load_ok(
        "tiers: { a: { response: 1h, warn: [0.01%, 99.99%, 50.5%, .5%] } }\n");
    const struct cfg_tier *t = &cfg->tiers[0];
    assert_int_equal(t->nwarn, 4);
    assert_int_equal(t->warn_bp[0], 1);
    assert_int_equal(t->warn_bp[1], 50);
    assert_int_equal(t->warn_bp[2], 5050);
    assert_int_equal(t->warn_bp[3], 9999);
    cfg_free(cfg);

    static const struct {
        const char *value, *why;
    } bad[] = {
        {"100%", "must be above 0% and below 100%"},
        {"0%", "must be above 0% and below 100%"},
        {"0.00%", "must be above 0% and below 100%"},
        {"1000%", "must be above 0% and below 100%"},
        {"80", "write e.g. 80% or 87.5%"},
        {"-5%", "write e.g. 80% or 87.5%"},
        {"80%%", "write e.g. 80% or 87.5%"},
        {"%", "write e.g. 80% or 87.5%"},
        {"8 0%", "write e.g. 80% or 87.5%"},
        {"87.125%", "at most two decimals"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char yaml[128], line[192];
        snprintf(yaml, sizeof(yaml),
                 "tiers:\n  a:\n    response: 1h\n"
                 "    warn: [\"%s\"]\n",
                 bad[i].value);
        snprintf(line, sizeof(line),
                 "t.yaml:4:12: tiers.a.warn: bad percentage '%s' (%s)",
                 bad[i].value, bad[i].why);
        expect_error(yaml, line);
    }
    expect_error("tiers:\n  a:\n    response: 1h\n    warn: [1%, 2%, 3%, 4%, "
                 "5%, 6%, 7%, 8%, 9%]\n",
                 "t.yaml:4:44: tiers.a.warn: at most 8 different percentages");
    expect_error("tiers:\n  a:\n    response: 1h\n    warn: 80%\n",
                 "t.yaml:4:11: tiers.a.warn: expected a list, got '80%'");
}

/* ---- limits ------------------------------------------------------------- */

static void
test_limits(void **state)
{
    char yaml[8192];
    size_t o;
    (void)state;

    /* 64 tiers are fine, the 65th is reported at its name. */
    o = (size_t)sprintf(yaml, "tiers:\n");
    for (int i = 0; i < 64; i++)
        o += (size_t)sprintf(yaml + o, "  t%d: { response: %dm }\n", i, i + 1);
    struct config *cfg = load_ok(yaml);
    assert_int_equal(cfg->ntiers, CFG_MAX_TIERS);
    assert_int_equal(cfg_tier_index(cfg, "t63", 3), 63);
    assert_int_equal(cfg->tiers[63].target_ms[METRIC_RESPONSE], 64 * MIN);
    cfg_free(cfg);
    sprintf(yaml + o, "  t64: { response: 1m }\n");
    expect_error(yaml, "t.yaml:66:3: tiers: at most 64 tiers");

    /* 16 windows are fine, the 17th is reported. */
    o = (size_t)sprintf(yaml, "compliance:\n  windows: [");
    for (int i = 1; i <= 16; i++)
        o += (size_t)sprintf(yaml + o, "%s%dm", i > 1 ? ", " : "", i);
    sprintf(yaml + o, "]\n");
    cfg = load_ok(yaml);
    assert_int_equal(cfg->compliance.nwindows, CFG_MAX_WINDOWS);
    assert_string_equal(cfg->compliance.windows[15].name, "16m");
    cfg_free(cfg);
    sprintf(yaml + o, ", 17m]\n");
    expect_error(yaml, "t.yaml:2:84: compliance.windows: at most 16 windows");

    /* Names: 64 characters, not 65. */
    char name[80];
    memset(name, 'n', 64);
    name[64] = '\0';
    snprintf(yaml, sizeof(yaml), "tiers: { %s: { response: 1m } }\n", name);
    cfg = load_ok(yaml);
    assert_int_equal(strlen(cfg->tiers[0].name), 64);
    cfg_free(cfg);
    snprintf(yaml, sizeof(yaml), "tiers: { %sn: { response: 1m } }\n", name);
    assert_null(cfg_load_string("t.yaml", yaml, strlen(yaml), NULL));

    /* Lists that name something twice. */
    expect_error("tiers:\n  a: { response: 1m, pause: [response, response] }\n",
                 "t.yaml:2:40: tiers.a.pause: 'response' is listed twice");
    expect_error("tiers:\n  a: { response: 1m, pause: [paused] }\n",
                 "t.yaml:2:30: tiers.a.pause: 'paused' is not one of response, "
                 "resolution or next_reply");
}

/* ---- errors at their exact positions ------------------------------------ */

static void
test_error_positions(void **state)
{
    static const struct {
        const char *yaml, *line;
    } cases[] = {
        /* unknown keys */
        {"tiers:\n  instant:\n    response: 5m\n    foo: 1\n",
         "t.yaml:4:5: unknown key 'foo' in tiers.instant"},
        {"redis:\n  hots: x\n",
         "t.yaml:2:3: unknown key 'hots' in redis (did you mean 'host'?)"},
        {"log: {}\nlogs: {}\n",
         "t.yaml:2:1: unknown key 'logs' at the top level (did you mean "
         "'log'?)"},
        {"webhooks:\n  w:\n    url: http://h/\n    retry: { tries: 3 }\n",
         "t.yaml:4:14: unknown key 'tries' in webhooks.w.retry"},
        {"policies:\n  - match: { prio: high }\n    tier: 1h\n",
         "t.yaml:2:14: unknown key 'prio' in policies[0].match (did you mean "
         "'priority'?)"},
        {"redis:\n  password: hunter2\n",
         "t.yaml:2:3: unknown key 'password' in redis (put the password in a "
         "file readable only by slawatch and set password_file)"},
        /* bad durations */
        {"events:\n  max_clock_skew: 5\n",
         "t.yaml:2:19: events.max_clock_skew: bad duration '5' (write e.g. "
         "500ms, 30s, 5m, 1h30m, 3d)"},
        {"compliance: { windows: [1h, 1x] }\n",
         "t.yaml:1:29: compliance.windows: bad duration '1x' (write e.g. "
         "500ms, 30s, 5m, 1h30m, 3d)"},
        /* bad types */
        {"redis: [a, b]\n",
         "t.yaml:1:8: redis: expected a mapping, got a list"},
        {"- a\n- b\n", "t.yaml:1:1: top level: expected a mapping, got a list"},
        {"redis:\n  port: [1]\n",
         "t.yaml:2:9: redis.port: expected an integer, got a list"},
        {"redis:\n  port: 70000\n",
         "t.yaml:2:9: redis.port: '70000' is out of range (1 to 65535)"},
        {"redis:\n  port: 0x10\n",
         "t.yaml:2:9: redis.port: expected an integer, got '0x10'"},
        {"redis:\n  db: -1\n",
         "t.yaml:2:7: redis.db: '-1' is out of range (at least 0)"},
        {"events:\n  batch: 100001\n",
         "t.yaml:2:10: events.batch: '100001' is out of range (1 to 100000)"},
        {"events:\n  batch: 99999999999999999999999\n",
         "t.yaml:2:10: events.batch: '99999999999999999999999' is out of "
         "range (1 to 100000)"},
        {"tiers:\n  a: [1m]\n",
         "t.yaml:2:6: tiers.a: expected a mapping, got a list"},
        {"tiers:\n  a:\n    response: { x: 1 }\n",
         "t.yaml:3:15: tiers.a.response: expected a duration, got a mapping"},
        {"webhooks:\n  w:\n    url: http://h/\n    send_resolved: maybe\n",
         "t.yaml:4:20: webhooks.w.send_resolved: expected true or false, got "
         "'maybe'"},
        {"policies: { tier: 1h }\n",
         "t.yaml:1:11: policies: expected a list, got a mapping"},
        {"policies:\n  - 1h\n",
         "t.yaml:2:5: policies[0]: expected a mapping, got '1h'"},
        {"? [a]\n: 1\n",
         "t.yaml:1:3: top level: a key must be a string, got a list"},
        {"redis:\n  host: \"a\\0b\"\n",
         "t.yaml:2:9: redis.host: 'a\\x00b' contains control characters"},
        /* references */
        {"policies:\n  - { tier: gold }\n",
         "t.yaml:2:13: policies[0].tier: unknown tier 'gold'"},
        {"policies:\n  - { match: { channel: x } }\n",
         "t.yaml:2:5: policies[0]: tier is required"},
        {"webhooks:\n  a: { url: \"http://h/\" }\nescalations:\n"
         "  - { name: e, when: breach, notify: [a, pager] }\n",
         "t.yaml:4:42: escalations.e.notify: unknown webhook 'pager'"},
        {"webhooks:\n  a: { url: \"http://h/\" }\nescalations:\n"
         "  - { name: e, when: breach, tiers: [gold], notify: [a] }\n",
         "t.yaml:4:38: escalations.e.tiers: unknown tier 'gold'"},
        {"tiers:\n  a: { response: 1m, calendar: office }\n",
         "t.yaml:2:32: tiers.a.calendar: unknown calendar 'office'"},
        /* duplicates */
        {"redis:\n  port: 1\n  port: 2\n",
         "t.yaml:3:3: duplicate key 'port' in redis (first at line 2)"},
        {"log: {}\nlog: {}\n",
         "t.yaml:2:1: duplicate key 'log' in the top level (first at line 1)"},
        {"webhooks:\n  a: { url: \"http://h/\" }\nescalations:\n"
         "  - { name: e, when: breach, notify: [a] }\n"
         "  - { name: e, when: warning, notify: [a] }\n",
         "t.yaml:5:13: escalations[1].name: escalation 'e' is already defined "
         "at line 4"},
        {"webhooks:\n  a: { url: \"http://h/\" }\nescalations:\n"
         "  - { name: e, when: breach, notify: [a, a] }\n",
         "t.yaml:4:42: escalations.e.notify: webhook 'a' is listed twice"},
        /* names */
        {"tiers:\n  \"a b\": { response: 1m }\n",
         "t.yaml:2:3: tiers: bad name 'a b' (1 to 64 characters of A-Z a-z 0-9 "
         "_ . -)"},
        {"tiers:\n  all: { response: 1m }\n",
         "t.yaml:2:3: tiers: the name 'all' is reserved (compliance keys use "
         "it for every tier together)"},
        /* escalations and webhooks */
        {"escalations:\n  - { name: e, when: later, notify: [] }\n",
         "t.yaml:2:22: escalations.e.when: 'later' is not one of warning, "
         "breach or objective"},
        {"escalations:\n  - { name: e, when: breach, notify: [] }\n",
         "t.yaml:2:38: escalations.e.notify: name at least one webhook"},
        {"escalations:\n  - { name: e, when: breach }\n",
         "t.yaml:2:5: escalations.e: notify is required (a list of webhook "
         "names)"},
        {"webhooks:\n  w: { url: \"ftp://h/\" }\n",
         "t.yaml:2:13: webhooks.w.url: bad URL 'ftp://h/' (must start with "
         "http:// or https:// and name a host)"},
        {"webhooks:\n  w: { url: \"https:///x\" }\n",
         "t.yaml:2:13: webhooks.w.url: bad URL 'https:///x' (must start with "
         "http:// or https:// and name a host)"},
        {"webhooks:\n  w: { format: json }\n",
         "t.yaml:2:3: webhooks.w: url is required"},
        {"webhooks:\n  w: { url: \"http://h/\", format: pagerduty }\n",
         "t.yaml:2:3: webhooks.w: routing_key_file is required with format: "
         "pagerduty"},
        {"webhooks:\n  w: { url: \"http://h/\", routing_key_file: k }\n",
         "t.yaml:2:44: webhooks.w: routing_key_file is only used with format: "
         "pagerduty"},
        {"webhooks:\n  w:\n    url: http://h/\n    retry: { backoff: 10m }\n",
         "t.yaml:4:23: webhooks.w.retry: max_backoff (5m) is shorter than "
         "backoff (10m)"},
        {"webhooks:\n  w:\n    url: http://h/\n    retry: { attempts: 0 }\n",
         "t.yaml:4:24: webhooks.w.retry.attempts: '0' is out of range (at "
         "least 1)"},
        {"webhooks:\n  w:\n    url: http://h/\n    max_rate: 0\n",
         "t.yaml:4:15: webhooks.w.max_rate: must be greater than 0 (leave it "
         "out for no limit)"},
        {"webhooks:\n  w:\n    url: http://h/\n    max_rate: 5/d\n",
         "t.yaml:4:15: webhooks.w.max_rate: bad rate '5/d' (write e.g. 2, "
         "0.5, 120/m, 1000/h)"},
        {"webhooks:\n  w:\n    url: http://h/\n    timeout: 0s\n",
         "t.yaml:4:14: webhooks.w.timeout: must be greater than 0"},
        /* compliance */
        {"compliance:\n  windows: [1h, 60m]\n",
         "t.yaml:2:17: compliance.windows: '60m' is the same window as '1h'"},
        {"compliance:\n  windows: []\n",
         "t.yaml:2:12: compliance.windows: name at least one window"},
        {"compliance:\n  by: [queue, team]\n",
         "t.yaml:2:15: compliance.by: 'team' is not one of priority, channel, "
         "queue, agent or customer"},
        {"compliance:\n  objective: 0\n",
         "t.yaml:2:14: compliance.objective: must be above 0 and at most 1 "
         "(0.90 for 90%)"},
        {"compliance:\n  objective: 1.01\n",
         "t.yaml:2:14: compliance.objective: must be above 0 and at most 1 "
         "(0.90 for 90%)"},
        {"compliance:\n  objective: nan\n",
         "t.yaml:2:14: compliance.objective: expected a number, got 'nan'"},
        {"compliance:\n  max_values: 0\n",
         "t.yaml:2:15: compliance.max_values: '0' is out of range (1 to "
         "1000000)"},
        /* calendars, with cal.c's own reasons */
        {"calendars:\n  c:\n    week: { mon: closed }\n",
         "t.yaml:2:3: calendars.c: timezone is required (e.g. Europe/Berlin, "
         "UTC)"},
        {"calendars:\n  c:\n    timezone: UTC\n    week: { mon: \"9-5\" }\n",
         "t.yaml:4:18: calendars.c.week: 'mon': bad hours \"9-5\" (expected "
         "HH:MM-HH:MM or closed)"},
        {"calendars:\n  c:\n    timezone: UTC\n    holidays: [2026-02-30]\n",
         "t.yaml:4:16: calendars.c.holidays: holiday \"2026-02-30\" is not a "
         "real date"},
        /* YAML syntax */
        {"redis:\n  host: [a, b\n",
         "t.yaml:3:1: YAML syntax error: did not find expected ',' or ']' "
         "(while parsing a flow sequence at line 2, column 9)"},
        {"redis:\n  host: a\n bad: 1\n",
         "t.yaml:3:2: YAML syntax error: did not find expected key (while "
         "parsing a block mapping at line 1, column 1)"},
        {"log: *nothing\n",
         "t.yaml:1:6: YAML syntax error: found undefined alias"},
        {"log:\n  level: \"\xff\"\n",
         "t.yaml:2:11: YAML syntax error: invalid leading UTF-8 octet"},
        {"log: {}\n---\nlog: {}\n",
         "t.yaml:2:1: only one YAML document is allowed per file"},
        {"tiers: "
         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
         "t.yaml:1:8: tiers: expected a mapping, got a list"},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        expect_error(cases[i].yaml, cases[i].line);
}

static void
test_multiple_errors(void **state)
{
    (void)state;
    char *errs = NULL;
    /* Sections in an order different from the loader's; errors come out
     * sorted by position. */
    struct config *cfg = load("log:\n"
                              "  level: loud\n"
                              "tiers:\n"
                              "  a: { response: 5 }\n"
                              "  b: { response: 1m, warn: [101%] }\n"
                              "redis:\n"
                              "  port: nope\n"
                              "  hots: x\n"
                              "policies:\n"
                              "  - { tier: c }\n",
                              &errs);
    assert_null(cfg);
    const char *want[] = {
        "t.yaml:2:10: log.level: 'loud' is not one of debug, info, notice, "
        "warning or err",
        "t.yaml:4:18: tiers.a.response: bad duration '5' (write e.g. 500ms, "
        "30s, 5m, 1h30m, 3d)",
        "t.yaml:5:29: tiers.b.warn: bad percentage '101%' (must be above 0% "
        "and below 100%)",
        "t.yaml:7:9: redis.port: expected an integer, got 'nope'",
        "t.yaml:8:3: unknown key 'hots' in redis (did you mean 'host'?)",
        "t.yaml:10:13: policies[0].tier: unknown tier 'c'",
    };
    size_t at = 0;
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        const char *p = strstr(errs + at, want[i]);
        if (p == NULL) {
            print_error("missing or out of order: %s\n--- got:\n%s", want[i],
                        errs);
            fail();
        }
        at = (size_t)(p - errs);
    }
    assert_int_equal(count_lines(errs), ARRAY_LEN(want));
    free(errs);
}

/* ---- secret files ------------------------------------------------------- */

static void
test_secret_files(void **state)
{
    char yaml[512], line[512], path[256];
    char *errs = NULL;
    (void)state;

    /* Too open: refused, and the secret is never printed. */
    snprintf(path, sizeof(path), "%s",
             write_file("open.pass", "TOPSECRET\n", 0644));
    snprintf(yaml, sizeof(yaml), "redis:\n  password_file: %s\n", path);
    snprintf(line, sizeof(line),
             "t.yaml:2:18: redis.password_file: %s: permissions 0644 are too "
             "open, chmod 600",
             path);
    expect_error(yaml, line);
    assert_null(load(yaml, &errs));
    assert_null(strstr(errs, "TOPSECRET"));
    free(errs);

    snprintf(path, sizeof(path), "%s",
             write_file("group.key", "TOPSECRET", 0640));
    snprintf(yaml, sizeof(yaml),
             "webhooks:\n  w:\n    url: http://h/\n    secret_file: %s\n",
             path);
    snprintf(line, sizeof(line),
             "t.yaml:4:18: webhooks.w.secret_file: %s: permissions 0640 are "
             "too open, chmod 600",
             path);
    expect_error(yaml, line);

    /* Missing. */
    snprintf(yaml, sizeof(yaml),
             "webhooks:\n  w:\n    url: http://h/\n    format: pagerduty\n"
             "    routing_key_file: %s/missing.key\n",
             tmpdir);
    snprintf(line, sizeof(line),
             "t.yaml:5:23: webhooks.w.routing_key_file: cannot read "
             "%s/missing.key: No such file or directory",
             tmpdir);
    expect_error(yaml, line);

    /* Empty, or a lone newline. */
    snprintf(path, sizeof(path), "%s", write_file("empty.pass", "\n", 0600));
    snprintf(yaml, sizeof(yaml), "redis: { password_file: %s }\n", path);
    snprintf(line, sizeof(line),
             "t.yaml:1:25: redis.password_file: %s is empty", path);
    expect_error(yaml, line);

    /* A directory is not a secret. */
    snprintf(yaml, sizeof(yaml), "redis: { password_file: / }\n");
    expect_error(yaml, "t.yaml:1:25: redis.password_file: / is not a "
                       "regular file");

    /* Relative paths resolve against the config file's directory. */
    write_file("rel.pass", "relative\n", 0600);
    const char *conf =
        write_file("rel.yaml", "redis:\n  password_file: rel.pass\n", 0600);
    FILE *f = open_memstream(&errs, &(size_t){0});
    struct config *cfg = cfg_load(conf, f);
    fclose(f);
    if (cfg == NULL) {
        print_error("%s", errs);
        fail();
    }
    free(errs);
    assert_string_equal(cfg->redis.password, "relative");
    assert_string_equal(cfg->path, conf);
    cfg_free(cfg);

    /* A file written on Windows: its "\r\n" is not part of the secret. */
    write_file("dos.pass", "crlf-secret\r\n", 0600);
    conf = write_file("dos.yaml", "redis:\n  password_file: dos.pass\n", 0600);
    f = open_memstream(&errs, &(size_t){0});
    cfg = cfg_load(conf, f);
    fclose(f);
    if (cfg == NULL) {
        print_error("%s", errs);
        fail();
    }
    free(errs);
    assert_string_equal(cfg->redis.password, "crlf-secret");
    cfg_free(cfg);

    /* Mode 0600, but someone else's file: refused (needs root to set up). */
    if (geteuid() != 0) {
        print_message("not root: the owner check is not exercised\n");
        return;
    }
    snprintf(path, sizeof(path), "%s", write_file("theirs.pass", "x\n", 0600));
    assert_int_equal(chown(path, 4242, 4242), 0);
    snprintf(yaml, sizeof(yaml), "redis: { password_file: %s }\n", path);
    snprintf(line, sizeof(line),
             "t.yaml:1:25: redis.password_file: %s is owned by uid 4242, not by this "
             "user (uid 0) or root",
             path);
    expect_error(yaml, line);
}

static void
test_load_file_errors(void **state)
{
    char *errs = NULL, line[256];
    (void)state;
    FILE *f = open_memstream(&errs, &(size_t){0});
    assert_null(cfg_load("/nonexistent/slawatch.yaml", f));
    fclose(f);
    assert_true(has_line(errs, "/nonexistent/slawatch.yaml: cannot read: No "
                               "such file or directory"));
    free(errs);

    /* Errors in a real file are reported under its name. */
    const char *conf = write_file("bad.yaml", "log:\n  level: 7\n", 0600);
    f = open_memstream(&errs, &(size_t){0});
    assert_null(cfg_load(conf, f));
    fclose(f);
    snprintf(line, sizeof(line),
             "%s:2:10: log.level: '7' is not one of debug, info, notice, "
             "warning or err",
             conf);
    assert_true(has_line(errs, line));
    free(errs);

    /* No error stream at all is allowed. */
    assert_null(cfg_load_string("t.yaml", "log: 1\n", 7, NULL));
    struct config *cfg = cfg_load_string("t.yaml", "log: {}\n", 8, NULL);
    assert_non_null(cfg);
    cfg_free(cfg);
}

/* ---- small API pieces --------------------------------------------------- */

static void
test_names(void **state)
{
    (void)state;
    assert_string_equal(cfg_metric_name(METRIC_RESPONSE), "response");
    assert_string_equal(cfg_metric_name(METRIC_RESOLUTION), "resolution");
    assert_string_equal(cfg_metric_name(-1), "any");
    for (int a = 0; a < ATTR_COUNT; a++) {
        const char *n = cfg_attr_name(a);
        assert_int_equal(cfg_attr_from_name(n, strlen(n)), a);
    }
    assert_string_equal(cfg_attr_name(ATTR_CUSTOMER), "customer");
    assert_int_equal(cfg_attr_from_name("queue", 5), ATTR_QUEUE);
    assert_int_equal(cfg_attr_from_name("queues", 6), -1);
    assert_int_equal(cfg_attr_from_name("queue", 4), -1);
    assert_int_equal(cfg_attr_from_name("tier", 4), -1);
    cfg_free(NULL);

    /* Every known key is a dotted path of names or '*', listed once. */
    size_t n = 0;
    for (; cfg_known_keys[n] != NULL; n++) {
        const char *k = cfg_known_keys[n];
        assert_true(strspn(k, "abcdefghijklmnopqrstuvwxyz_.*") == strlen(k));
        for (size_t j = 0; j < n; j++)
            assert_string_not_equal(k, cfg_known_keys[j]);
    }
    assert_true(n > 50);
}

/* ---- malformed input never crashes -------------------------------------- */

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Loads and discards; returns whether it loaded. */
static int
try_load(const char *buf, size_t len)
{
    FILE *sink = fopen("/dev/null", "w");
    assert_non_null(sink);
    struct config *cfg = cfg_load_string("fuzz.yaml", buf, len, sink);
    fclose(sink);
    int ok = cfg != NULL;
    cfg_free(cfg);
    return ok;
}

static void
test_garbage(void **state)
{
    (void)state;
    char buf[4096];
    /* Random bytes, and random bytes from YAML's alphabet. */
    static const char alphabet[] = "abc:- \n\t[]{},&*!|>'\"%@`#?~\\0123456789";
    for (int i = 0; i < 2000; i++) {
        size_t len = rng() % sizeof(buf);
        for (size_t j = 0; j < len; j++)
            buf[j] =
                i % 2 ? (char)rng() : alphabet[rng() % (sizeof(alphabet) - 1)];
        (void)try_load(buf, len);
    }
    /* NUL bytes inside the input. */
    assert_false(try_load("log:\0 {}\n", 9));
}

static void
test_deep_and_huge(void **state)
{
    (void)state;
    size_t n = 200000;
    char *buf = malloc(4 * n + 64);
    assert_non_null(buf);

    /* Deep flow nesting: refused up front, quickly. */
    size_t o = (size_t)sprintf(buf, "tiers: ");
    for (size_t i = 0; i < n; i++)
        buf[o++] = i % 2 ? '[' : '{';
    buf[o] = '\0';
    expect_error(buf, "t.yaml:1:1008: nesting deeper than 1000 levels");
    /* Just under the limit: libyaml handles it, the schema rejects it. */
    o = (size_t)sprintf(buf, "tiers: ");
    for (size_t i = 0; i < 999; i++)
        buf[o++] = '[';
    for (size_t i = 0; i < 999; i++)
        buf[o++] = ']';
    buf[o] = '\0';
    expect_error(buf, "t.yaml:1:8: tiers: expected a mapping, got a list");
    /* Deep block nesting. */
    o = (size_t)sprintf(buf, "redis:\n");
    for (size_t i = 1; i < 400; i++)
        o += (size_t)sprintf(buf + o, "%*sk%zu:\n", (int)i, "", i);
    (void)try_load(buf, o);

    /* A huge scalar value, key and name. */
    o = (size_t)sprintf(buf, "redis: { host: ");
    memset(buf + o, 'h', 3 * n);
    o += 3 * n;
    o += (size_t)sprintf(buf + o, " }\n");
    struct config *cfg = cfg_load_string("t.yaml", buf, o, NULL);
    assert_non_null(cfg);
    assert_int_equal(strlen(cfg->redis.host), 3 * n);
    cfg_free(cfg);
    /* libyaml limits implicit keys to 1024 characters. */
    o = (size_t)sprintf(buf, "tiers:\n  ");
    memset(buf + o, 't', 3 * n);
    o += 3 * n;
    o += (size_t)sprintf(buf + o, ": { response: 1m }\n");
    buf[o] = '\0';
    expect_error(buf, "t.yaml:2:600003: YAML syntax error: mapping values "
                      "are not allowed in this context");
    o = (size_t)sprintf(buf, "tiers:\n  ");
    memset(buf + o, 't', 1000);
    o += 1000;
    o += (size_t)sprintf(buf + o, ": { response: 1m }\n");
    buf[o] = '\0';
    char *errs = NULL;
    assert_null(load(buf, &errs));
    assert_non_null(strstr(errs, "t.yaml:2:3: tiers: bad name 'ttt"));
    assert_true(strlen(errs) < 300); /* values are truncated in messages */
    free(errs);

    /* A mapping with very many keys, duplicates found quickly. */
    o = (size_t)sprintf(buf, "webhooks:\n");
    for (size_t i = 0; i < 20000; i++)
        o += (size_t)sprintf(buf + o, "  w%zu: { url: \"http://h/\" }\n",
                             i % 19999);
    buf[o] = '\0';
    expect_error(buf, "t.yaml:20001:3: duplicate key 'w0' in webhooks (first "
                      "at line 2)");
    free(buf);
}

static void
test_alias_bomb(void **state)
{
    (void)state;
    /* 2000 policies, each an alias of one with 1000 values: two million
     * values if expanded. The loader stops at its visit budget. */
    size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t o = (size_t)sprintf(buf, "policies:\n  - &p { match: { priority: [");
    for (int i = 0; i < 1000; i++)
        o += (size_t)sprintf(buf + o, "%sv%d", i ? "," : "", i);
    o += (size_t)sprintf(buf + o, "] }, tier: 24h }\n");
    for (int i = 0; i < 2000; i++)
        o += (size_t)sprintf(buf + o, "  - *p\n");
    buf[o] = '\0';
    expect_error(buf, "t.yaml: too many values to check (do aliases expand "
                      "to millions of nodes?)");
    /* A few aliases are fine, and a self-referencing one is an error. */
    struct config *cfg =
        load_ok("tiers:\n  a: &t { response: 1m, warn: [50%] }\n  b: *t\n");
    assert_int_equal(cfg->ntiers, 2);
    assert_int_equal(cfg->tiers[1].warn_bp[0], 5000);
    cfg_free(cfg);
    expect_error("tiers: &t { a: *t }\n",
                 "t.yaml:1:13: unknown key 'a' in tiers.a");
    free(buf);
}

/* Mutated copies of the example config: byte flips, insertions of YAML
 * punctuation, deleted and duplicated ranges, truncation. */
static void
test_fuzz_example(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/conf/slawatch.yaml", srcdir());
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        print_error("cannot open %s (run from the repository root or set "
                    "SLAWATCH_SRCDIR)\n",
                    path);
        fail();
    }
    char *orig = NULL;
    size_t olen = 0;
    {
        char chunk[4096];
        size_t r;
        FILE *m = open_memstream(&orig, &olen);
        while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
            fwrite(chunk, 1, r, m);
        fclose(m);
    }
    fclose(f);
    assert_true(try_load(orig, olen));

    long iters = RUNNING_ON_VALGRIND ? 300 : 3000;
    const char *env = getenv("SLAWATCH_FUZZ_ITERS");
    if (env != NULL)
        iters = atol(env);
    if ((env = getenv("SLAWATCH_FUZZ_SEED")) != NULL)
        rng_state = (strtoull(env, NULL, 0) + 1) * 0x9e3779b97f4a7c15ULL;
    static const char punct[] = ":-[]{},&*!|>'\"%#?~ \n\t0";
    char *buf = malloc(2 * olen + 64);
    assert_non_null(buf);
    long loaded = 0;
    for (long i = 0; i < iters; i++) {
        size_t len = olen;
        memcpy(buf, orig, olen);
        int edits = 1 + (int)(rng() % 8);
        for (int e = 0; e < edits && len > 0; e++) {
            size_t at = rng() % len;
            size_t span = 1 + rng() % 64;
            if (span > len - at)
                span = len - at;
            switch (rng() % 6) {
            case 0: /* flip a byte */
                buf[at] = (char)rng();
                break;
            case 1: /* insert punctuation */
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = punct[rng() % (sizeof(punct) - 1)];
                len++;
                break;
            case 2: /* delete a range */
                memmove(buf + at, buf + at + span, len - at - span);
                len -= span;
                break;
            case 3: /* duplicate a range, if it fits */
                if (len + span <= 2 * olen) {
                    memmove(buf + at + span, buf + at, len - at);
                    len += span;
                }
                break;
            case 4: /* truncate */
                len = at;
                break;
            default: /* swap in a digit or a letter */
                buf[at] = (char)("0123456789abcdefxyz"[rng() % 19]);
                break;
            }
        }
        loaded += try_load(buf, len);
    }
    print_message("%ld of %ld mutated configs loaded\n", loaded, iters);
    /* Some mutations hit comments only and must still load. */
    if (iters >= 100)
        assert_true(loaded > 0);
    free(buf);
    free(orig);
}

/* A target in days on a business-hours tier: the file loads, with a
 * warning saying what "3d" means there; hours, a tier without a calendar
 * and a calendar open around the clock give none. */
static void
test_business_days_warning(void **state)
{
    (void)state;
    char *errs = NULL;
    struct config *cfg = load("tiers:\n"
                              "  office: { response: 4h, resolution: 3d, calendar: office }\n"
                              "  late: { response: 1d12h, calendar: office }\n"
                              "  plain: { response: 1d }\n"
                              "calendars:\n"
                              "  office: { timezone: UTC, week: { mon-fri: \"09:00-18:00\" } }\n",
                              &errs);
    assert_non_null(cfg);
    assert_true(has_line(errs, "t.yaml:2:39: warning: tiers.office.resolution: 3d on "
                               "business-hours calendar office counts 72 open hours, about "
                               "8 working days of 9 h; write 72h to keep it, or the open "
                               "hours you mean"));
    assert_true(has_line(errs, "t.yaml:3:21: warning: tiers.late.response: 1d12h on "
                               "business-hours calendar office counts 36 open hours, about "
                               "4 working days of 9 h; write 36h to keep it, or the open "
                               "hours you mean"));
    assert_null(strstr(errs, "plain"));
    assert_int_equal(cfg->tiers[0].target_ms[METRIC_RESOLUTION], 3 * DAY);
    cfg_free(cfg);
    free(errs);
    cfg = load_ok("tiers:\n"
                  "  office: { response: 4h, resolution: 72h, calendar: office }\n"
                  "  holidays: { response: 1d, calendar: closed-xmas }\n"
                  "calendars:\n"
                  "  office: { timezone: UTC, week: { mon-fri: \"09:00-18:00\" } }\n"
                  "  closed-xmas: { timezone: UTC, holidays: [\"2026-12-25\"] }\n");
    cfg_free(cfg);
    /* With an error elsewhere, the warning comes with it and the file is
     * refused for the error. */
    errs = NULL;
    assert_null(load("tiers:\n"
                     "  office: { response: 1d, calendar: office, colour: red }\n"
                     "calendars:\n"
                     "  office: { timezone: UTC, week: { mon-fri: \"09:00-18:00\" } }\n",
                     &errs));
    assert_non_null(strstr(errs, "warning: tiers.office.response"));
    assert_non_null(strstr(errs, "colour"));
    free(errs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_business_days_warning),
        cmocka_unit_test(test_dur_valid),
        cmocka_unit_test(test_dur_invalid),
        cmocka_unit_test(test_dur_in_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_tiers_replace_defaults),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_redis_unix),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_warn_percentages),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_multiple_errors),
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_deep_and_huge),
        cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_fuzz_example),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
