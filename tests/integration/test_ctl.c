/* slawatchctl against a real redis-server and a running daemon: emit,
 * status (of a ticket and of the daemon), tickets, report, outbox (text
 * and --json), config (which slawatchd reads back to the same config),
 * explain, --version and --help (whose commands are the ones
 * slawatchctl(1) documents), and every kind of bad argument or unreachable
 * Redis giving a clear message and a non-zero status. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

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
             "  office: { response: 2h, calendar: cn }\n"
             "  slow: { response: 1h }\n"
             "calendars:\n"
             "  cn: { timezone: Asia/Shanghai }\n"
             "policies:\n"
             "  - { match: { priority: urgent }, tier: fast }\n"
             "  - { match: { queue: china }, tier: office }\n"
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

/* Runs slawatchctl -c cfg with args; returns its exit status, output
 * (stdout and stderr) in out. */
static int
run_ctl(const char *cfg, char *out, size_t outlen, const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "%s/slawatchctl%s%s %s 2>&1", h_build_dir(), cfg ? " -c " : "",
             cfg ? cfg : "", args);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The same with the test's config (or another). */
static int
ctl(struct env *e, const char *cfg, char *out, size_t outlen, const char *args)
{
    return run_ctl(cfg ? cfg : e->cfg, out, outlen, args);
}

/* Index of the first line of text containing needle, or -1. */
static int
line_of(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    if (p == NULL)
        return -1;
    int line = 0;
    for (const char *q = text; q < p; q++)
        line += *q == '\n';
    return line;
}

/* The line of text containing needle, copied into buf ("" when none). */
static const char *
the_line(const char *text, const char *needle, char *buf, size_t len)
{
    const char *p = strstr(text, needle);
    buf[0] = '\0';
    if (p == NULL)
        return buf;
    while (p > text && p[-1] != '\n')
        p--;
    size_t n = strcspn(p, "\n");
    snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), p);
    return buf;
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
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "status --yaml"), 64);
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

/* Index of the first line of text that is, spaces collapsed and trimmed,
 * row; -1 when none. */
static int
row_at(const char *text, const char *row)
{
    char line[1024];
    int index = 0;
    for (const char *p = text; *p; index++) {
        size_t n = strcspn(p, "\n"), k = 0;
        for (size_t i = 0; i < n && k + 1 < sizeof(line); i++)
            if (p[i] != ' ' || (k > 0 && line[k - 1] != ' '))
                line[k++] = p[i];
        while (k > 0 && line[k - 1] == ' ')
            k--;
        line[k] = '\0';
        if (strcmp(line, row) == 0)
            return index;
        p += n + (p[n] == '\n');
    }
    return -1;
}

static bool
has_row(const char *text, const char *row)
{
    return row_at(text, row) >= 0;
}

/* The member path a.b.c... (NULL-terminated) of a JSON object. */
static json_t *
json_at(json_t *v, ...)
{
    va_list ap;
    va_start(ap, v);
    for (const char *k; v && (k = va_arg(ap, const char *)) != NULL;)
        v = json_object_get(v, k);
    va_end(ap);
    return v;
}

/* The tier object named name in report --json's tiers. */
static json_t *
report_tier(json_t *root, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(root, "tiers"), i, t) {
        if (strcmp(json_string_value(json_object_get(t, "tier")), name) == 0)
            return t;
    }
    return NULL;
}

/* The KPIs and named objectives as slawatchd is to publish them (SPEC
 * section 4), SET by the test while no daemon runs, in both outputs. */
static void
test_report_kpis_and_objectives(void **state)
{
    struct env *e = *state;
    char out[32768], text[512];
    json_error_t err;
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"ctl:\" }\n"
             "tiers:\n"
             "  fast: { response: 1s, resolution: 1h }\n"
             "  slow: { response: 1h }\n"
             "compliance: { by: [queue] }\n",
             e->redis.port);
    char *cfg = h_write_file(e->redis.dir, "kpi.yaml", text);

    /* Nothing published yet: every tier and window, each KPI "-"; no
     * objective. */
    assert_int_equal(ctl(e, cfg, out, sizeof(out), "report"), 0);
    assert_true(has_row(out, "tier window by fcr reopen_rate csat csat_mean csat_count"));
    assert_true(has_row(out, "fast 1h - - - - -"));
    assert_true(has_row(out, "all 1h - - - - -"));
    assert_true(has_row(out, "24h - - - - -"));
    assert_null(strstr(out, "objective"));
    assert_int_equal(ctl(e, cfg, out, sizeof(out), "report --json"), 0);
    json_t *root = json_loads(out, 0, &err);
    assert_non_null(root);
    assert_int_equal(json_array_size(json_object_get(root, "objectives")), 0);
    assert_true(json_is_null(json_at(report_tier(root, "slow"), "kpi", "7d", "csat", NULL)));
    assert_int_equal(json_object_size(json_at(report_tier(root, "all"), "kpi", "7d", "by", NULL)),
                     0);
    json_decref(root);

    static const char *const keys[][2] = {
        { "ctl:kpi:fast:fcr:1h", "0.8" },
        { "ctl:kpi:fast:fcr:1h:queue=billing", "0.5" },
        { "ctl:kpi:fast:csat_mean:1h:queue=billing", "4.25" },
        { "ctl:kpi:all:fcr:7d", "0.75" },
        { "ctl:kpi:all:reopen_rate:7d", "0.05" },
        { "ctl:kpi:all:csat:7d", "0.9" },
        { "ctl:kpi:all:csat_mean:7d", "4.5" },
        { "ctl:kpi:all:csat_count:7d", "20" },
        { "ctl:kpi:all:csat_count:7d:queue=billing", "8" },
        { "ctl:kpi:all:csat_count:7d:queue=a:b", "3" }, /* a value may hold ':' */
        /* Left by an earlier configuration: no such tier, window, breakdown. */
        { "ctl:kpi:gone:fcr:1h", "0.1" },
        { "ctl:kpi:fast:fcr:30d", "0.2" },
        { "ctl:kpi:fast:fcr:1h:agent=ann", "0.3" },
        { "ctl:objective:first-contact", "0.9" },
        { "ctl:objective:first-contact:fast:7d", "1" },
        { "ctl:objective:first-contact:all:7d", "0" },
        { "ctl:objective:satisfaction", "4.8" },
        { "ctl:objective:reopens:all:7d", "0" },
        { "ctl:objective:reopens:gone:7d", "1" },
        { "ctl:objective", "0.9" }, /* compliance.objective: not a named one */
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_int_equal(h_cmd(e->c, "SET %s %s", keys[i][0], keys[i][1]), 0);
    assert_int_equal(h_cmd(e->c, "XADD ctl:objectives * objective first-contact"), 0);

    assert_int_equal(ctl(e, cfg, out, sizeof(out), "report"), 0);
    /* The compliance table and the counters are still there. */
    assert_true(has_row(out, "tier metric window ratio met breached open overdue risk5m "
                             "risk15m risk1h"));
    assert_non_null(strstr(out, "events_total "));
    /* Each tier and window, then its breakdown values, as published. */
    int fast = row_at(out, "fast 1h 0.8 - - - -"), all7d = row_at(out, "7d 0.75 0.05 0.9 4.5 20");
    assert_true(fast > row_at(out, "tier window by fcr reopen_rate csat csat_mean csat_count"));
    assert_int_equal(row_at(out, "queue=billing 0.5 - - 4.25 -"), fast + 1);
    assert_int_equal(row_at(out, "24h - - - - -"), fast + 2);
    assert_true(all7d > row_at(out, "all 1h - - - - -"));
    assert_int_equal(row_at(out, "queue=a:b - - - - 3"), all7d + 1);
    assert_int_equal(row_at(out, "queue=billing - - - - 8"), all7d + 2);
    assert_null(strstr(out, "0.1"));
    assert_null(strstr(out, "0.2"));
    assert_null(strstr(out, "0.3"));
    assert_null(strstr(out, "gone"));
    /* The objectives by name, the threshold once, each state. */
    int first = row_at(out, "first-contact 0.9 fast 7d VIOLATED");
    assert_true(first > row_at(out, "objective threshold tier window state"));
    assert_true(first > all7d);
    assert_int_equal(row_at(out, "all 7d met"), first + 1);
    assert_int_equal(row_at(out, "reopens - all 7d met"), first + 2);
    assert_int_equal(row_at(out, "satisfaction 4.8 - - no window holds data"), first + 3);
    assert_true(first + 3 < line_of(out, "events_total"));

    assert_int_equal(ctl(e, cfg, out, sizeof(out), "report --json"), 0);
    root = json_loads(out, 0, &err);
    if (root == NULL)
        fail_msg("report --json:%d: %s", err.line, err.text);
    json_t *jfast = report_tier(root, "fast"), *jall = report_tier(root, "all");
    assert_non_null(jfast);
    assert_null(report_tier(root, "gone"));
    assert_true(json_real_value(json_at(jfast, "kpi", "1h", "fcr", NULL)) == 0.8);
    assert_true(json_is_null(json_at(jfast, "kpi", "1h", "csat_mean", NULL)));
    assert_true(json_real_value(json_at(jfast, "kpi", "1h", "by", "queue", "billing", "fcr",
                                        NULL)) == 0.5);
    assert_true(json_real_value(json_at(jfast, "kpi", "1h", "by", "queue", "billing",
                                        "csat_mean", NULL)) == 4.25);
    assert_null(json_at(jfast, "kpi", "1h", "by", "agent", NULL));
    assert_null(json_at(jfast, "kpi", "30d", NULL));
    assert_true(json_real_value(json_at(jall, "kpi", "7d", "reopen_rate", NULL)) == 0.05);
    assert_true(json_real_value(json_at(jall, "kpi", "7d", "csat_mean", NULL)) == 4.5);
    assert_true(json_is_integer(json_at(jall, "kpi", "7d", "csat_count", NULL)));
    assert_int_equal(json_integer_value(json_at(jall, "kpi", "7d", "csat_count", NULL)), 20);
    assert_int_equal(json_integer_value(json_at(jall, "kpi", "7d", "by", "queue", "a:b",
                                                "csat_count", NULL)),
                     3);
    assert_int_equal(json_integer_value(json_at(jall, "kpi", "7d", "by", "queue", "billing",
                                                "csat_count", NULL)),
                     8);
    /* The decimals as published, not 0.80000000000000004. */
    assert_non_null(strstr(out, "\"fcr\": 0.8,"));
    json_t *objs = json_object_get(root, "objectives");
    assert_int_equal(json_array_size(objs), 3);
    json_t *fc = json_array_get(objs, 0), *ro = json_array_get(objs, 1),
           *sat = json_array_get(objs, 2);
    assert_string_equal(json_string_value(json_object_get(fc, "name")), "first-contact");
    assert_true(json_real_value(json_object_get(fc, "threshold")) == 0.9);
    json_t *states = json_object_get(fc, "states");
    assert_int_equal(json_array_size(states), 2);
    assert_string_equal(json_string_value(json_at(json_array_get(states, 0), "tier", NULL)),
                        "fast");
    assert_string_equal(json_string_value(json_at(json_array_get(states, 0), "window", NULL)),
                        "7d");
    assert_true(json_is_true(json_at(json_array_get(states, 0), "violated", NULL)));
    assert_string_equal(json_string_value(json_at(json_array_get(states, 1), "tier", NULL)),
                        "all");
    assert_true(json_is_false(json_at(json_array_get(states, 1), "violated", NULL)));
    assert_string_equal(json_string_value(json_object_get(ro, "name")), "reopens");
    assert_true(json_is_null(json_object_get(ro, "threshold")));
    assert_int_equal(json_array_size(json_object_get(ro, "states")), 1);
    assert_string_equal(json_string_value(json_object_get(sat, "name")), "satisfaction");
    assert_true(json_real_value(json_object_get(sat, "threshold")) == 4.8);
    assert_int_equal(json_array_size(json_object_get(sat, "states")), 0);
    json_decref(root);
    free(cfg);
}

/* Appends an "opened" event stamped ago_ms before now, with more fields. */
static void
open_ago(struct env *e, const char *ticket, long long ago_ms, const char *more)
{
    char out[1024], args[512];
    snprintf(args, sizeof(args), "emit opened %s ts=%lld %s", ticket,
             (long long)h_now_ms() - ago_ms, more);
    assert_int_equal(ctl(e, NULL, out, sizeof(out), args), 0);
}

static void
test_tickets(void **state)
{
    struct env *e = *state;
    char out[16384], line[512];
    /* fast: 1 s response, so opened 5 s ago it is overdue; slow: 1 h, so
     * opened 50 min ago it is due in 10 min; office: 2 h in Shanghai's
     * zone (a calendar open around the clock). */
    open_ago(e, "K-over", 5000, "priority=urgent queue=billing");
    open_ago(e, "K-risk", 50 * 60000, "queue=billing");
    open_ago(e, "K-later", 0, "");
    open_ago(e, "K-cn", 0, "queue=china");
    assert_true(h_wait_int(e->c, "ctl:overdue:fast:response", 1, 4000));

    assert_int_equal(ctl(e, NULL, out, sizeof(out), "tickets"), 0);
    /* Every running clock, soonest deadline first: K-over's response
     * (past), K-risk (10 min), K-over's resolution and K-later (1 h), K-cn
     * (2 h). */
    assert_int_equal(line_of(out, "DEADLINE"), 0);
    int over = line_of(out, "K-over           fast       response"),
        risk = line_of(out, "K-risk"), later = line_of(out, "K-later"),
        cn = line_of(out, "K-cn");
    assert_int_equal(over, 1);
    assert_int_equal(risk, 2);
    assert_true(later > risk && cn > later);
    assert_non_null(strstr(the_line(out, "K-over           fast       response", line,
                                    sizeof(line)), "overdue"));
    assert_non_null(strstr(the_line(out, "K-over           fast       response", line,
                                    sizeof(line)), "ago"));
    assert_non_null(strstr(the_line(out, "K-risk", line, sizeof(line)), "in 9m"));
    assert_non_null(strstr(the_line(out, "K-risk", line, sizeof(line)), "billing"));
    /* Local time in the tier's zone: +08:00 for office, Z for 24x7 tiers. */
    assert_non_null(strstr(the_line(out, "K-cn", line, sizeof(line)), "+08:00  in 1h59m"));
    assert_non_null(strstr(the_line(out, "K-later", line, sizeof(line)), "Z  "));
    assert_non_null(strstr(out, "5 clocks (1 overdue) of 5 running; as of 4 events (no "
                                "checkpoint yet)"));

    assert_int_equal(ctl(e, NULL, out, sizeof(out), "tickets --overdue"), 0);
    assert_non_null(strstr(out, "K-over"));
    assert_null(strstr(out, "K-risk"));
    assert_non_null(strstr(out, "1 clock (1 overdue) of 5 running"));

    /* At risk as the gauges count: running, not breached, due within. */
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "tickets --at-risk 15m"), 0);
    assert_non_null(strstr(out, "K-risk"));
    assert_null(strstr(out, "K-over"));
    assert_null(strstr(out, "K-later"));
    assert_non_null(strstr(out, "1 clock (0 overdue) of 5 running"));

    assert_int_equal(ctl(e, NULL, out, sizeof(out), "tickets --tier office"), 0);
    assert_non_null(strstr(out, "K-cn"));
    assert_non_null(strstr(out, "1 clock "));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "tickets --queue billing --tier slow"), 0);
    assert_non_null(strstr(out, "K-risk"));
    assert_null(strstr(out, "K-over"));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "tickets --queue nowhere"), 0);
    assert_non_null(strstr(out, "no clocks match (5 running)"));

    /* --json: the same rows, with epoch ms and the zone. */
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "tickets --tier office --json"), 0);
    json_error_t err;
    json_t *root = json_loads(out, 0, &err);
    assert_non_null(root);
    json_t *clocks = json_object_get(root, "clocks");
    assert_int_equal(json_array_size(clocks), 1);
    json_t *k = json_array_get(clocks, 0);
    assert_string_equal(json_string_value(json_object_get(k, "ticket")), "K-cn");
    assert_string_equal(json_string_value(json_object_get(k, "timezone")), "Asia/Shanghai");
    assert_string_equal(json_string_value(json_object_get(k, "state")), "running");
    assert_true(json_integer_value(json_object_get(k, "due_in_ms")) > 7000000);
    assert_non_null(strstr(json_string_value(json_object_get(k, "deadline_local")), "+08:00"));
    assert_string_equal(json_string_value(
                            json_object_get(json_object_get(k, "attributes"), "queue")),
                        "china");
    assert_int_equal(json_integer_value(json_object_get(root, "running")), 5);
    json_decref(root);

    /* Bad arguments. */
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "tickets --tier gold"), 64);
    assert_non_null(strstr(out, "no such tier"));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "tickets --at-risk soon"), 64);
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "tickets --at-risk"), 64);
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "tickets --overdue --at-risk 5m"), 64);
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "tickets --all"), 64);
}

/* ---- outbox ------------------------------------------------------------- */

static int
always_503(void *arg, const char *path, const char *delivery, int attempt)
{
    (void)arg;
    (void)path;
    (void)delivery;
    (void)attempt;
    return 503;
}

static void
test_outbox(void **state)
{
    (void)state;
    char out[16384], line[512];
    static const char yaml[] =
        "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"ob:\" }\n"
        "tiers:\n  t: { response: 1s }\n"
        "escalations:\n"
        "  - { name: page, when: breach, notify: [hook] }\n"
        "  - { name: later, when: breach, after: 1h, notify: [hook] }\n"
        "webhooks:\n"
        "  hook: { url: \"http://127.0.0.1:@HTTP@/hook\", timeout: 1s,\n"
        "          retry: { attempts: 1000, backoff: 100ms, max_backoff: 200ms } }\n";
    struct h_env *env = h_env_start(yaml, "ob:events", NULL, always_503, NULL);
    assert_non_null(env);
    assert_int_equal(run_ctl(env->cfg, out, sizeof(out), "outbox"), 0);
    assert_non_null(strstr(out, "outbox empty"));
    char ts[32];
    snprintf(ts, sizeof(ts), "%lld", (long long)h_now_ms() - 5000);
    assert_int_equal(h_xadd(env->c, "ob:events", NULL, 0, "type", "opened", "ticket", "O-1",
                            "ts", ts, NULL), 0);
    /* Two attempts of the breach page, both answered 503. */
    assert_true(h_http_wait(&env->rx, "/hook", 2, 5000));
    h_sleep_ms(200); /* the failure noted after the answer */
    assert_int_equal(run_ctl(env->cfg, out, sizeof(out), "outbox"), 0);
    /* Soonest first: the page being retried, then the `after: 1h` level. */
    int retrying = line_of(out, "retrying"), waiting = line_of(out, "waiting   ");
    if (retrying != 1 || waiting <= retrying) {
        fprintf(stderr, "%s", out);
        fail_msg("want the retried page first, then the waiting level");
    }
    assert_non_null(strstr(the_line(out, "retrying", line, sizeof(line)), "hook"));
    assert_non_null(strstr(the_line(out, "retrying", line, sizeof(line)), "breach"));
    assert_non_null(strstr(the_line(out, "retrying", line, sizeof(line)), "ticket O-1"));
    assert_non_null(strstr(the_line(out, "waiting   ", line, sizeof(line)), "in 59m"));
    assert_non_null(strstr(the_line(out, "waiting   ", line, sizeof(line)), " 0"));
    assert_non_null(strstr(out, "last error at "));
    assert_non_null(strstr(out, ": HTTP 503"));
    assert_non_null(strstr(out, "2 notifications (1 waiting for `after`, 1 retrying)"));

    assert_int_equal(run_ctl(env->cfg, out, sizeof(out), "outbox --json"), 0);
    json_t *root = json_loads(out, 0, NULL);
    assert_non_null(root);
    json_t *arr = json_object_get(root, "notifications");
    assert_int_equal(json_array_size(arr), 2);
    json_t *first = json_array_get(arr, 0), *second = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(first, "escalation")), "page");
    assert_string_equal(json_string_value(json_object_get(first, "webhook")), "hook");
    assert_string_equal(json_string_value(json_object_get(first, "kind")), "breach");
    assert_string_equal(json_string_value(json_object_get(first, "ticket")), "O-1");
    assert_true(json_integer_value(json_object_get(first, "attempts")) >= 1);
    assert_non_null(strstr(json_string_value(json_object_get(first, "last_error")),
                           "HTTP 503"));
    assert_string_equal(json_string_value(json_object_get(second, "escalation")), "later");
    assert_string_equal(json_string_value(json_object_get(second, "state")), "waiting");
    assert_int_equal(json_integer_value(json_object_get(second, "attempts")), 0);
    assert_true(json_is_null(json_object_get(second, "last_error")));
    assert_int_equal(strlen(json_string_value(json_object_get(second, "id"))), 32);
    json_decref(root);

    /* A record the daemon cannot read is shown, not skipped. */
    redisReply *r = redisCommand(env->c, "HSET ob:outbox deadbeef {nonsense");
    freeReplyObject(r);
    assert_int_equal(run_ctl(env->cfg, out, sizeof(out), "outbox"), 0);
    assert_int_equal(line_of(out, "record deadbeef"), 1);
    assert_non_null(strstr(out, "unreadable"));
    assert_int_equal(run_ctl(env->cfg, out, sizeof(out), "outbox --all"), 64);
    assert_int_equal(h_env_stop(env), 0);
}

/* ---- config ------------------------------------------------------------- */

static void
test_config(void **state)
{
    struct env *e = *state;
    char out[16384], again[16384], cmd[1024];
    /* A webhook with a secret file: the file is shown, never the secret. */
    char *secret = h_write_file(e->redis.dir, "hook.secret", "s3cr3t-value\n");
    assert_int_equal(chmod(secret, 0600), 0);
    char text[2048];
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"ctl:\" }\n"
             "tiers:\n"
             "  t: { response: 90m, next_reply: 20m, warn: [50%%, 87.5%%], calendar: office }\n"
             "calendars:\n"
             "  office: { timezone: Europe/Berlin, week: { mon-fri: \"09:00-12:00,13:00-17:00\" },\n"
             "            holidays: [\"2026-12-25\"] }\n"
             "escalations:\n"
             "  - { name: page, when: breach, tiers: [t], after: 10m, notify: [hook] }\n"
             "webhooks:\n"
             "  hook: { url: \"http://127.0.0.1:9/x\", secret_file: hook.secret, max_rate: 90/m }\n"
             "compliance: { windows: [1h, 7d], by: [queue] }\n",
             e->redis.port);
    char *cfg = h_write_file(e->redis.dir, "full.yaml", text);
    assert_int_equal(ctl(e, cfg, out, sizeof(out), "config"), 0);
    assert_null(strstr(out, "s3cr3t"));
    char want[600];
    snprintf(want, sizeof(want), "    secret_file: \"%s/hook.secret\"\n", e->redis.dir);
    assert_non_null(strstr(out, want));
    /* Defaults filled in. */
    assert_non_null(strstr(out, "  t: { response: 1h30m, next_reply: 20m, warn: [50%, 87.50%], "
                                "pause: [resolution], calendar: office }\n"));
    assert_non_null(strstr(out, "    week: { mon: \"09:00-12:00,13:00-17:00\", tue: "));
    assert_non_null(strstr(out, "sat: \"closed\", sun: \"closed\" }\n"));
    assert_non_null(strstr(out, "    holidays: [\"2026-12-25\"]\n"));
    assert_non_null(strstr(out, "    retry: { attempts: 10, backoff: 1s, max_backoff: 5m }\n"));
    assert_non_null(strstr(out, "    max_rate: \"90/m\"\n"));
    assert_non_null(strstr(out, "  - { name: page, when: breach, metric: any, tiers: [t], "
                                "after: 10m, notify: [hook] }\n"));
    assert_non_null(strstr(out, "policies: []\n")); /* own tiers: every ticket takes the last */
    assert_non_null(strstr(out, "  checkpoint_every: 30s\n"));
    assert_non_null(strstr(out, "  forget_resolved_after: 30d\n"));
    assert_non_null(strstr(out, "  max_attribute_values: 100000\n"));
    assert_non_null(strstr(out, "  group: \"slawatch\"\n"));
    assert_non_null(strstr(out, "  by: [queue]\n"));
    /* slawatchd reads it back, to the same configuration. */
    char *eff = h_write_file(e->redis.dir, "effective.yaml", out);
    snprintf(cmd, sizeof(cmd), "%s/slawatchd -c %s -t 2>&1", h_build_dir(), eff);
    FILE *p = popen(cmd, "r");
    char check[1024];
    size_t n = fread(check, 1, sizeof(check) - 1, p);
    check[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_non_null(strstr(check, ": ok"));
    assert_int_equal(ctl(e, eff, again, sizeof(again), "config"), 0);
    /* The same but for the first line (it names the file). */
    assert_string_equal(strchr(again, '\n'), strchr(out, '\n'));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "config --json"), 64);
    free(secret);
    free(cfg);
    free(eff);
}

/* ---- explain ------------------------------------------------------------ */

static void
test_explain(void **state)
{
    struct env *e = *state;
    char out[8192];
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "explain priority=urgent queue=x"), 0);
    assert_non_null(strstr(out, "tier        fast, by policy 1 of 3: { match: { priority: "
                                "urgent }, tier: fast }\n"));
    assert_non_null(strstr(out, "targets     response 1s, resolution 1h; no warnings; "
                                "paused: resolution\n"));
    assert_non_null(strstr(out, "calendar    none: targets count every hour (24x7, UTC)\n"));
    assert_non_null(strstr(out, "escalations none"));
    /* A value no policy names, a typo of a field name, an unknown tier. */
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "explain priority=Urgent prio=urgent "
                                                    "tier=gold"), 0);
    assert_non_null(strstr(out, "  unmatched priority=Urgent: no policy names this value "
                                "(they name urgent); counted in stats:unmatched:priority\n"));
    assert_non_null(strstr(out, "  ignored   prio: not an event field, so it is not an "
                                "attribute; did you mean priority?\n"));
    assert_non_null(strstr(out, "  unmatched tier=gold: no such tier"));
    assert_non_null(strstr(out, "tier        slow, by policy 3 of 3: { tier: slow }\n"));
    /* The calendar and its zone, and the deadline at a given ts. */
    assert_int_equal(ctl(e, NULL, out, sizeof(out),
                         "explain queue=china ts=2026-11-23T09:00:00Z"), 0);
    assert_non_null(strstr(out, "tier        office, by policy 2 of 3"));
    assert_non_null(strstr(out, "calendar    cn (Asia/Shanghai): targets count open hours "
                                "only; mon 00:00-24:00,"));
    assert_non_null(strstr(out, "if opened   2026-11-23T09:00:00.000Z: response due "
                                "2026-11-23T19:00:00.000+08:00\n"));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "explain tier=office"), 0);
    assert_non_null(strstr(out, "tier        office, named by the event's tier field\n"));
    /* What the daemon would dead-letter, and usage errors. */
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "explain ts=1700000000"), 1);
    assert_non_null(strstr(out, "dead-letter this event: bad ts"));
    assert_non_null(strstr(out, "seconds by mistake"));
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "explain priority"), 64);
    assert_int_equal(ctl(e, NULL, out, sizeof(out), "explain type=closed"), 64);
    /* Nothing was emitted. */
    redisReply *r = redisCommand(e->c, "XLEN ctl:events");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

/* ---- --version, --help and the manual ----------------------------------- */

static const char *
srcdir(void)
{
    const char *d = getenv("SLAWATCH_SRCDIR");
    return d && *d ? d : ".";
}

/* The command names of --help: the first word of each line indented by
 * two spaces between "commands:" and "options:". */
static int
help_commands(const char *help, char names[][32], int max)
{
    int n = 0;
    const char *p = strstr(help, "commands:\n"), *end = strstr(help, "options:\n");
    assert_non_null(p);
    assert_non_null(end);
    for (p = strchr(p, '\n') + 1; p < end && n < max; p = strchr(p, '\n') + 1)
        if (p[0] == ' ' && p[1] == ' ' && p[2] >= 'a' && p[2] <= 'z')
            sscanf(p + 2, "%31[a-z]", names[n++]);
    return n;
}

/* The command names slawatchctl(1) documents: the tag of each .TP
 * paragraph under .SH COMMANDS, its first word once the macro and font
 * escapes are gone. */
static int
man_commands(char names[][32], int max)
{
    char path[1024], line[1024];
    snprintf(path, sizeof(path), "%s/docs/man/slawatchctl.1", srcdir());
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    bool in = false, tag = false;
    while (fgets(line, sizeof(line), f) && n < max) {
        if (strncmp(line, ".SH ", 4) == 0) {
            in = strncmp(line, ".SH COMMANDS", 12) == 0;
            continue;
        }
        if (!in)
            continue;
        if (strncmp(line, ".TP", 3) == 0) {
            tag = true;
            continue;
        }
        if (tag) {
            const char *p = line;
            if (*p == '.')
                p += strcspn(p, " ");
            p += strspn(p, " \"");
            sscanf(p, "%31[a-z]", names[n]);
            if (names[n][0])
                n++;
            tag = false;
        }
    }
    fclose(f);
    return n;
}

static void
test_version_and_help(void **state)
{
    (void)state;
    char out[8192];
    /* No config needed (the default file need not exist). */
    assert_int_equal(run_ctl("/nonexistent.yaml", out, sizeof(out), "--version"), 0);
    assert_string_equal(out, "slawatchctl 0.1.0\n");
    assert_int_equal(run_ctl(NULL, out, sizeof(out), "-V"), 0);
    assert_string_equal(out, "slawatchctl 0.1.0\n");
    assert_int_equal(run_ctl(NULL, out, sizeof(out), "--help"), 0);
    assert_non_null(strstr(out, "usage: slawatchctl [-c FILE] COMMAND [ARGS]\n"));
    char help[16][32], man[16][32];
    memset(help, 0, sizeof(help));
    memset(man, 0, sizeof(man));
    int nh = help_commands(out, help, 16), nm = man_commands(man, 16);
    assert_int_equal(nh, 7);
    /* The same commands, in the same order. */
    for (int i = 0; i < nh || i < nm; i++)
        if (i >= nh || i >= nm || strcmp(help[i], man[i]) != 0)
            fail_msg("command %d: --help says %s, slawatchctl(1) says %s", i + 1,
                     i < nh ? help[i] : "(nothing)", i < nm ? man[i] : "(nothing)");
    assert_int_equal(run_ctl(NULL, out, sizeof(out), "--frobnicate"), 64);
    assert_non_null(strstr(out, "usage: slawatchctl"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_emit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emit_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_kpis_and_objectives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tickets, setup, teardown),
        cmocka_unit_test(test_outbox),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_explain, setup, teardown),
        cmocka_unit_test(test_version_and_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
