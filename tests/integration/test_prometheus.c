/* The Prometheus path for real: slawatchd publishes into a private
 * redis-server, /usr/bin/prometheus-redis-exporter (started with the flags
 * of the shipped contrib/prometheus/prometheus-redis-exporter.default, on a
 * free loopback port) exports the keys as redis_key_value lines with the
 * exact values; promtool checks and unit-tests the shipped rules; and a
 * real Prometheus scraping the exporter with the shipped
 * contrib/prometheus/prometheus.yml turns the keys into slawatch_* series
 * with tier/metric/window/queue labels. The key families of KPIs, elapsed
 * times, next_reply and named objectives, SET by the test, come out as
 * exactly the series contrib/prometheus/README.md documents (no more, no
 * fewer, each with its labels and value), the rules on them run, and every
 * query of the shipped dashboard answers; and the KPI, elapsed-time and
 * next_reply series slawatchd itself publishes from a history of events
 * have the values those events imply. Every wait is bounded; every
 * process started is stopped by pid. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "harness.h"
#include "slawatch/util.h"

#define EXPORTER "/usr/bin/prometheus-redis-exporter"
#define PROMETHEUS "/usr/bin/prometheus"
#define PROMTOOL "promtool"
#define WAIT_MS 20000

struct env {
    struct h_redis redis;
    redisContext *c;
    char *cfg;
    pid_t daemon, exporter, prometheus;
    int exporter_port, prometheus_port;
};

static const char *
srcdir(void)
{
    const char *d = getenv("SLAWATCH_SRCDIR");
    return d && *d ? d : ".";
}

static int
free_port(void)
{
    struct sockaddr_in a = { 0 };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0)
        return -1;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Starts argv[0] with output to dir/log; returns the pid. */
static pid_t
spawn(char *const argv[], const char *dir, const char *log)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, log);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void
stop(pid_t *pid)
{
    if (*pid > 0)
        h_daemon_stop(*pid, SIGTERM, 3000);
    *pid = 0;
}

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    char text[1024];
    if (h_redis_start(&e->redis, NULL) < 0)
        return -1;
    e->c = h_connect(e->redis.port);
    /* The shipped relabeling expects the default prefix. */
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"sla:\" }\n"
             "tiers:\n"
             "  t: { response: 2s, resolution: 4s }\n"
             "  u: { response: 1s }\n"
             "policies:\n"
             "  - { match: { priority: high }, tier: t }\n"
             "  - { tier: u }\n"
             "compliance: { windows: [1h, 7d], by: [queue], publish_every: 1s }\n",
             e->redis.port);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    *state = e;
    return e->c ? 0 : -1;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    stop(&e->prometheus);
    stop(&e->exporter);
    if (e->daemon > 0)
        h_daemon_stop(e->daemon, SIGKILL, 2000);
    if (e->c)
        redisFree(e->c);
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return 0;
}

/* ---- HTTP ------------------------------------------------------------- */

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
    FILE *m = arg;
    return fwrite(p, size, n, m);
}

/* GET url; returns the body (caller frees) on a 200, else NULL. */
static char *
http_get(const char *url)
{
    char *body = NULL;
    size_t len = 0;
    long status = 0;
    FILE *m = open_memstream(&body, &len);
    CURL *curl = curl_easy_init();
    if (m == NULL || curl == NULL) {
        if (m)
            fclose(m);
        free(body);
        curl_easy_cleanup(curl);
        return NULL;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, m);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    fclose(m);
    if (rc != CURLE_OK || status != 200) {
        free(body);
        return NULL;
    }
    return body;
}

/* ---- the published keys ------------------------------------------------ */

static bool
wait_key(redisContext *c, const char *key, const char *want, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        redisReply *r = redisCommand(c, "GET %s", key);
        bool ok = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0;
        if (r)
            freeReplyObject(r);
        if (ok)
            return true;
        h_sleep_ms(50);
    }
    return false;
}

/* Three met and one breached tier t response, one met and one breached
 * tier u, decided by their own timestamps before the daemon starts. */
static void
publish_known_values(struct env *e)
{
    static const struct {
        const char *id, *priority, *queue;
        int resp;
    } s[] = {
        { "A", "high", "billing", 500 }, { "B", "high", "billing", 1000 },
        { "C", "high", "sales", 1500 },  { "D", "high", "billing", 3000 },
        { "E", "low", "billing", 200 },  { "F", "low", "sales", 5000 },
    };
    /* History, imported as the README says: each entry's ID carries its
     * time (XADD <ms>-*), in time order, so that arrival decides as the
     * timestamps do. With `*` IDs everything would arrive now, and whether
     * a clock whose deadline lies minutes back is stopped before it is
     * decided would depend on the millisecond each XADD fell in. */
    struct ev {
        long long ts;
        const char *type, *id, *priority, *queue;
    } evs[3 * sizeof(s) / sizeof(s[0])];
    size_t n = 0;
    int64_t base = h_now_ms() - 5 * 60 * 1000;
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        long long t0 = base + (int64_t)i * 10000;
        evs[n++] = (struct ev){ t0, "opened", s[i].id, s[i].priority, s[i].queue };
        evs[n++] = (struct ev){ t0 + s[i].resp, "responded", s[i].id, NULL, NULL };
        evs[n++] = (struct ev){ t0 + 3500, "resolved", s[i].id, NULL, NULL };
    }
    for (size_t i = 1; i < n; i++) /* insertion sort by time, stable */
        for (size_t j = i; j > 0 && evs[j - 1].ts > evs[j].ts; j--) {
            struct ev tmp = evs[j];
            evs[j] = evs[j - 1];
            evs[j - 1] = tmp;
        }
    for (size_t i = 0; i < n; i++) {
        redisReply *r =
            evs[i].priority
                ? redisCommand(e->c, "XADD sla:events %lld-* type %s ticket %s ts %lld "
                                     "priority %s queue %s",
                               evs[i].ts, evs[i].type, evs[i].id, evs[i].ts, evs[i].priority,
                               evs[i].queue)
                : redisCommand(e->c, "XADD sla:events %lld-* type %s ticket %s ts %lld",
                               evs[i].ts, evs[i].type, evs[i].id, evs[i].ts);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(e->daemon > 0);
    if (!wait_key(e->c, "sla:compliance:t:response:1h", "0.75", WAIT_MS)) {
        h_dump_file(e->redis.dir, "daemon.log");
        fail_msg("sla:compliance:t:response:1h never became 0.75");
    }
}

/* ---- the exporter ------------------------------------------------------ */

/* The ARGS of the shipped defaults file, split on spaces, with the Redis
 * address and listening address of this test. */
static void
start_exporter(struct env *e)
{
    char path[512], line[2048], addr[64], listen[64];
    static char args[2048];
    char *argv[64];
    int argc = 0;
    snprintf(path, sizeof(path), "%s/contrib/prometheus/prometheus-redis-exporter.default",
             srcdir());
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    args[0] = '\0';
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "ARGS=\"", 6) == 0) {
            snprintf(args, sizeof(args), "%s", line + 6);
            *strrchr(args, '"') = '\0';
        }
    fclose(f);
    assert_true(args[0] != '\0');
    e->exporter_port = free_port();
    snprintf(addr, sizeof(addr), "redis://127.0.0.1:%d", e->redis.port);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", e->exporter_port);
    argv[argc++] = EXPORTER;
    for (char *tok = strtok(args, " "); tok && argc < 60; tok = strtok(NULL, " ")) {
        argv[argc++] = tok;
        if (strcmp(tok, "-redis.addr") == 0 || strcmp(tok, "-web.listen-address") == 0) {
            (void)strtok(NULL, " ");
            argv[argc++] = strcmp(tok, "-redis.addr") == 0 ? addr : listen;
        }
    }
    argv[argc] = NULL;
    e->exporter = spawn(argv, e->redis.dir, "exporter.log");
    assert_true(e->exporter > 0);
}

/* Scrapes until every wanted line is there (the daemon publishes each
 * second, the exporter reads at each scrape). */
static char *
scrape_until(struct env *e, const char *const *want, size_t nwant)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", e->exporter_port);
    char *body = NULL;
    size_t missing = nwant;
    for (int waited = 0; waited <= WAIT_MS && missing > 0; waited += 200) {
        free(body);
        body = http_get(url);
        missing = body ? 0 : nwant; /* not listening yet */
        for (size_t i = 0; body && i < nwant; i++)
            missing += strstr(body, want[i]) == NULL;
        if (missing)
            h_sleep_ms(200);
    }
    if (missing) {
        h_dump_file(e->redis.dir, "exporter.log");
        for (size_t i = 0; i < nwant; i++)
            if (body == NULL || strstr(body, want[i]) == NULL)
                print_error("missing from /metrics: %s", want[i]);
        fail_msg("%zu expected lines missing", missing);
    }
    return body;
}

static void
test_exporter_exports_exact_values(void **state)
{
    struct env *e = *state;
    publish_known_values(e);
    start_exporter(e);
    /* t: A B C met (500, 1000, 1500 ms), D breached; u: E met, F breached.
     * Queues: billing A B D E, sales C F. Resolution (4 s, at 3.5 s): all
     * t met. */
    static const char *const want[] = {
        "\nredis_key_value{db=\"db0\",key=\"sla:compliance:t:response:1h\"} 0.75\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:compliance:t:response:7d\"} 0.75\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:met:t:response:1h\"} 3\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:breached:t:response:1h\"} 1\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:compliance:u:response:1h\"} 0.5\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:compliance:all:response:7d\"} 0.666666\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:met:all:response:1h\"} 4\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:breached:all:response:1h\"} 2\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:compliance:t:resolution:1h\"} 1\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:compliance:all:response:1h:queue=billing\"} 0.75\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:breached:all:response:1h:queue=sales\"} 1\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:compliance:t:response:1h:queue=sales\"} 1\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:response_ms:t:1h:mean\"} 1500\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:open:t\"} 0\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:overdue:t:response\"} 0\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:at_risk:t:resolution:15m\"} 0\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:objective\"} 0.9\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:stats:lag\"} 0\n",
        "\nredis_key_value{db=\"db0\",key=\"sla:stats:events_total\"} 18\n",
    };
    char *body = scrape_until(e, want, sizeof(want) / sizeof(want[0]));
    /* Nothing that is not a number: the checkpoint and streams are not
     * matched by the patterns; an empty window has no ratio key. */
    assert_null(strstr(body, "key=\"sla:state\""));
    assert_null(strstr(body, "key=\"sla:events\""));
    assert_null(strstr(body, "key=\"sla:compliance:u:resolution"));
    free(body);
}

/* ---- promtool ---------------------------------------------------------- */

static int
run(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void
test_promtool_rules(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "cd '%s/contrib/prometheus' && " PROMTOOL " check rules slawatch.rules.yml",
             srcdir());
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "cd '%s/contrib/prometheus' && " PROMTOOL " test rules slawatch.rules.test.yml",
             srcdir());
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "cd '%s/contrib/prometheus' && " PROMTOOL " check config prometheus.yml",
             srcdir());
    assert_int_equal(run(cmd), 0);
    /* The dashboard is valid JSON and every query names a slawatch series. */
    snprintf(cmd, sizeof(cmd), "%s/contrib/prometheus/grafana-dashboard.json", srcdir());
    json_error_t err;
    json_t *dash = json_load_file(cmd, 0, &err);
    if (dash == NULL)
        fail_msg("grafana-dashboard.json:%d: %s", err.line, err.text);
    size_t i, j, queries = 0;
    json_t *panel, *target;
    json_array_foreach(json_object_get(dash, "panels"), i, panel) {
        json_array_foreach(json_object_get(panel, "targets"), j, target) {
            const char *expr = json_string_value(json_object_get(target, "expr"));
            assert_non_null(expr);
            assert_non_null(strstr(expr, "slawatch"));
            queries++;
        }
    }
    assert_true(queries >= 10);
    json_decref(dash);
}

/* ---- a real Prometheus with the shipped scrape job -------------------- */

/* Runs an instant query; returns the whole answer (caller decrefs), or
 * NULL when Prometheus did not answer 200 with JSON. */
static json_t *
query_json(struct env *e, const char *promql)
{
    char url[4096];
    CURL *curl = curl_easy_init();
    char *q = curl_easy_escape(curl, promql, 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/query?query=%s",
             e->prometheus_port, q);
    curl_free(q);
    curl_easy_cleanup(curl);
    char *body = http_get(url);
    if (body == NULL)
        return NULL;
    json_t *root = json_loads(body, 0, NULL);
    free(body);
    return root;
}

/* Runs an instant query; returns the value of the single result as a
 * string (caller frees), or NULL while there is none. */
static char *
query_one(struct env *e, const char *promql)
{
    json_t *root = query_json(e, promql);
    json_t *result = json_object_get(json_object_get(root, "data"), "result");
    char *value = NULL;
    if (json_array_size(result) == 1) {
        json_t *v = json_array_get(json_object_get(json_array_get(result, 0), "value"), 1);
        if (json_is_string(v))
            value = strdup(json_string_value(v));
    }
    json_decref(root);
    return value;
}

static void
expect_query(struct env *e, const char *promql, const char *want)
{
    char *got = NULL;
    for (int waited = 0; waited <= WAIT_MS; waited += 250) {
        free(got);
        got = query_one(e, promql);
        if (got && strcmp(got, want) == 0)
            break;
        h_sleep_ms(250);
    }
    if (got == NULL || strcmp(got, want) != 0) {
        h_dump_file(e->redis.dir, "prometheus.log");
        fail_msg("%s: want %s, got %s", promql, want, got ? got : "(no single result)");
    }
    free(got);
}

/* The shipped prometheus.yml with this test's exporter, a 1 s scrape and
 * evaluation interval, and the rule file by absolute path. */
static char *
write_prometheus_config(struct env *e)
{
    char path[512], line[1024], target[64], rules[600];
    char *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/contrib/prometheus/prometheus.yml", srcdir());
    FILE *in = fopen(path, "r"), *out = open_memstream(&text, &len);
    assert_non_null(in);
    snprintf(target, sizeof(target), "127.0.0.1:%d", e->exporter_port);
    char *abs = realpath(srcdir(), NULL);
    snprintf(rules, sizeof(rules), "%s/contrib/prometheus/slawatch.rules.yml", abs);
    free(abs);
    while (fgets(line, sizeof(line), in)) {
        char *p;
        if ((p = strstr(line, "localhost:9121")) != NULL)
            fprintf(out, "%.*s%s%s", (int)(p - line), line, target, p + 14);
        else if ((p = strstr(line, "localhost:9093")) != NULL)
            /* Alerts to nowhere: never to an Alertmanager of this host. */
            fprintf(out, "%.*s127.0.0.1:1%s", (int)(p - line), line, p + 14);
        else if ((p = strstr(line, "_interval: 30s")) != NULL)
            fprintf(out, "%.*s_interval: 1s\n", (int)(p - line), line);
        else if ((p = strstr(line, "- slawatch.rules.yml")) != NULL)
            fprintf(out, "%.*s- %s\n", (int)(p - line), line, rules);
        else
            fputs(line, out);
    }
    fclose(in);
    fclose(out);
    char *cfg = h_write_file(e->redis.dir, "prometheus.yml", text);
    free(text);
    return cfg;
}

/* Prometheus with the shipped scrape job (write_prometheus_config) on a
 * free loopback port, its data in the test's directory. */
static void
start_prometheus(struct env *e)
{
    char flag_cfg[600], flag_db[600], flag_listen[64];
    char *cfg = write_prometheus_config(e);
    e->prometheus_port = free_port();
    snprintf(flag_cfg, sizeof(flag_cfg), "--config.file=%s", cfg);
    snprintf(flag_db, sizeof(flag_db), "--storage.tsdb.path=%s/tsdb", e->redis.dir);
    snprintf(flag_listen, sizeof(flag_listen), "--web.listen-address=127.0.0.1:%d",
             e->prometheus_port);
    char *argv[] = { PROMETHEUS, flag_cfg, flag_db, flag_listen, NULL };
    e->prometheus = spawn(argv, e->redis.dir, "prometheus.log");
    assert_true(e->prometheus > 0);
    free(cfg);
}

static void
test_prometheus_relabels_keys(void **state)
{
    struct env *e = *state;
    if (access(PROMETHEUS, X_OK) != 0)
        skip(); /* scripts/deps.sh test installs it; promtool alone is enough above */
    publish_known_values(e);
    start_exporter(e);
    start_prometheus(e);

    expect_query(e, "slawatch_compliance_ratio{tier=\"t\",metric=\"response\",window=\"1h\","
                    "queue=\"\"}", "0.75");
    expect_query(e, "slawatch_compliance_ratio{tier=\"all\",metric=\"response\","
                    "window=\"1h\",queue=\"billing\"}", "0.75");
    expect_query(e, "slawatch_outcomes{outcome=\"breached\",tier=\"all\",metric=\"response\","
                    "window=\"7d\",queue=\"\"}", "2");
    expect_query(e, "slawatch_response_time_ms{tier=\"t\",window=\"1h\",stat=\"mean\"}", "1500");
    expect_query(e, "slawatch_at_risk_clocks{tier=\"t\",metric=\"resolution\",horizon=\"5m\"}",
                 "0");
    expect_query(e, "slawatch_open_tickets{tier=\"u\"}", "0");
    expect_query(e, "slawatch_objective_ratio", "0.9");
    expect_query(e, "slawatch_lag", "0");
    /* E and F have priority low, which no policy names. */
    expect_query(e, "slawatch_unmatched_total{attr=\"priority\"}", "2");
    expect_query(e, "slawatch_unmatched_total{attr=\"tier\"}", "0");
    expect_query(e, "slawatch_reload_failed", "0");
    expect_query(e, "count(time() - slawatch_heartbeat_ms / 1000 < 90)", "1");
    /* No series keeps the raw key label. */
    expect_query(e, "count(slawatch_outcomes) - count(slawatch_outcomes{key=\"\"})", "0");
    /* The recording and alerting rules run on them: t and all response are
     * below 0.9. */
    expect_query(e, "slawatch:compliance_ratio:tier{tier=\"u\",metric=\"response\","
                    "window=\"7d\"}", "0.5");
    expect_query(e, "count(ALERTS{alertname=\"SlawatchComplianceBelowObjective\","
                    "alertstate=\"pending\"})", "6");
}

/* ---- KPIs, elapsed times, next_reply and named objectives -------------- */

/* The keys of SPEC section 4 for KPIs, elapsed times, next_reply and
 * named objectives, with representative names, next to keys of the older
 * families whose series must stay as they were; each with the one series
 * it must become, as series_text() prints it (labels sorted; job, instance
 * and db checked apart). SET by the test, to pin every family's naming
 * at once (the daemon does not publish named objectives yet);
 * test_prometheus_daemon_kpis has slawatchd publish the KPI, elapsed-time
 * and next_reply keys from events. */
static const struct {
    const char *key, *value, *series;
} families[] = {
    /* next_reply through the existing families */
    { "sla:compliance:t:next_reply:1h", "0.8",
      "slawatch_compliance_ratio{metric=\"next_reply\",tier=\"t\",window=\"1h\"}" },
    { "sla:compliance:t:next_reply:1h:queue=billing", "0.5",
      "slawatch_compliance_ratio{metric=\"next_reply\",queue=\"billing\",tier=\"t\","
      "window=\"1h\"}" },
    { "sla:met:t:next_reply:1h", "4",
      "slawatch_outcomes{metric=\"next_reply\",outcome=\"met\",tier=\"t\",window=\"1h\"}" },
    { "sla:breached:t:next_reply:1h", "1",
      "slawatch_outcomes{metric=\"next_reply\",outcome=\"breached\",tier=\"t\","
      "window=\"1h\"}" },
    { "sla:overdue:t:next_reply", "2",
      "slawatch_overdue_clocks{metric=\"next_reply\",tier=\"t\"}" },
    { "sla:at_risk:t:next_reply:15m", "3",
      "slawatch_at_risk_clocks{horizon=\"15m\",metric=\"next_reply\",tier=\"t\"}" },
    /* older families next to the new ones */
    { "sla:compliance:t:response:1h", "0.75",
      "slawatch_compliance_ratio{metric=\"response\",tier=\"t\",window=\"1h\"}" },
    { "sla:response_ms:t:1h:p90", "1200",
      "slawatch_response_time_ms{stat=\"p90\",tier=\"t\",window=\"1h\"}" },
    { "sla:objective", "0.9", "slawatch_objective_ratio{}" },
    /* elapsed_ms:<tier>:<metric>:<window>:<stat> */
    { "sla:elapsed_ms:t:response:1h:p50", "900",
      "slawatch_elapsed_ms{metric=\"response\",stat=\"p50\",tier=\"t\",window=\"1h\"}" },
    { "sla:elapsed_ms:t:response:1h:p90", "1300",
      "slawatch_elapsed_ms{metric=\"response\",stat=\"p90\",tier=\"t\",window=\"1h\"}" },
    { "sla:elapsed_ms:t:next_reply:1h:p99", "45000",
      "slawatch_elapsed_ms{metric=\"next_reply\",stat=\"p99\",tier=\"t\",window=\"1h\"}" },
    { "sla:elapsed_ms:all:resolution:7d:mean", "5400000",
      "slawatch_elapsed_ms{metric=\"resolution\",stat=\"mean\",tier=\"all\",window=\"7d\"}" },
    /* kpi:<tier>:<kpi>:<window>[:<attr>=<value>] */
    { "sla:kpi:t:fcr:1h", "0.8", "slawatch_kpi_fcr{tier=\"t\",window=\"1h\"}" },
    { "sla:kpi:t:fcr:1h:queue=billing", "0.5",
      "slawatch_kpi_fcr{queue=\"billing\",tier=\"t\",window=\"1h\"}" },
    { "sla:kpi:all:fcr:7d", "0.75", "slawatch_kpi_fcr{tier=\"all\",window=\"7d\"}" },
    { "sla:kpi:t:reopen_rate:7d", "0.05", "slawatch_kpi_reopen_rate{tier=\"t\",window=\"7d\"}" },
    { "sla:kpi:all:csat:7d", "0.9", "slawatch_kpi_csat{tier=\"all\",window=\"7d\"}" },
    { "sla:kpi:all:csat:7d:queue=billing", "0.875",
      "slawatch_kpi_csat{queue=\"billing\",tier=\"all\",window=\"7d\"}" },
    { "sla:kpi:all:csat_mean:7d", "4.5", "slawatch_kpi_csat_mean{tier=\"all\",window=\"7d\"}" },
    { "sla:kpi:all:csat_mean:7d:queue=billing", "4.25",
      "slawatch_kpi_csat_mean{queue=\"billing\",tier=\"all\",window=\"7d\"}" },
    { "sla:kpi:all:csat_count:7d", "20", "slawatch_kpi_csat_count{tier=\"all\",window=\"7d\"}" },
    { "sla:kpi:all:csat_count:7d:queue=billing", "8",
      "slawatch_kpi_csat_count{queue=\"billing\",tier=\"all\",window=\"7d\"}" },
    /* objective:<name> and objective:<name>:<tier>:<window> */
    { "sla:objective:first-contact", "0.9",
      "slawatch_objective_threshold{objective=\"first-contact\"}" },
    { "sla:objective:first-contact:t:7d", "1",
      "slawatch_objective_violated{objective=\"first-contact\",tier=\"t\",window=\"7d\"}" },
    { "sla:objective:first-contact:all:7d", "0",
      "slawatch_objective_violated{objective=\"first-contact\",tier=\"all\",window=\"7d\"}" },
    { "sla:objective:satisfaction", "4.8",
      "slawatch_objective_threshold{objective=\"satisfaction\"}" },
    { "sla:objective:satisfaction:all:7d", "1",
      "slawatch_objective_violated{objective=\"satisfaction\",tier=\"all\",window=\"7d\"}" },
    { "sla:objective:answered-in-24h", "0.9",
      "slawatch_objective_threshold{objective=\"answered-in-24h\"}" },
};

static void
set_family_keys(struct env *e)
{
    for (size_t i = 0; i < ARRAY_LEN(families); i++)
        assert_int_equal(h_cmd(e->c, "SET %s %s", families[i].key, families[i].value), 0);
    /* The stream of objective transitions is no number: not exported. */
    assert_int_equal(h_cmd(e->c, "XADD sla:objectives * objective first-contact state violated"),
                     0);
}

/* The value the exporter gives key in body; false when it has no line. */
static bool
exported(const char *body, const char *key, double *value)
{
    char needle[256];
    snprintf(needle, sizeof(needle), "\nredis_key_value{db=\"db0\",key=\"%s\"} ", key);
    const char *p = strstr(body, needle);
    if (p == NULL)
        return false;
    *value = strtod(p + strlen(needle), NULL);
    return true;
}

static int
cmp_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* name{label="value",...} of a query result's metric, labels sorted,
 * without job, instance and db; then " " and the value. Caller frees. */
static char *
series_text(json_t *sample)
{
    json_t *metric = json_object_get(sample, "metric");
    const char *names[32], *label;
    size_t n = 0;
    json_t *v;
    json_object_foreach(metric, label, v) {
        if (strcmp(label, "__name__") != 0 && strcmp(label, "job") != 0 &&
            strcmp(label, "instance") != 0 && strcmp(label, "db") != 0 && n < ARRAY_LEN(names))
            names[n++] = label;
    }
    qsort(names, n, sizeof(names[0]), cmp_text);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    fprintf(m, "%s{", json_string_value(json_object_get(metric, "__name__")));
    for (size_t i = 0; i < n; i++)
        fprintf(m, "%s%s=\"%s\"", i ? "," : "", names[i],
                json_string_value(json_object_get(metric, names[i])));
    fprintf(m, "} %s", json_string_value(json_array_get(json_object_get(sample, "value"), 1)));
    fclose(m);
    return text;
}

/* Every series Prometheus has for the selector, as series_text() lines,
 * sorted and joined by newlines (caller frees); NULL while it does not
 * answer. Each series must come from this test's exporter. */
static char *
series_of(struct env *e, const char *selector)
{
    char instance[64];
    json_t *root = query_json(e, selector);
    json_t *result = json_object_get(json_object_get(root, "data"), "result");
    if (!json_is_array(result)) {
        json_decref(root);
        return NULL;
    }
    size_t n = json_array_size(result), i;
    char **lines = calloc(n + 1, sizeof(*lines));
    json_t *sample;
    snprintf(instance, sizeof(instance), "127.0.0.1:%d", e->exporter_port);
    json_array_foreach(result, i, sample) {
        json_t *metric = json_object_get(sample, "metric");
        const char *job = json_string_value(json_object_get(metric, "job")),
                   *db = json_string_value(json_object_get(metric, "db")),
                   *inst = json_string_value(json_object_get(metric, "instance"));
        lines[i] = series_text(sample);
        if (!job || !db || !inst || strcmp(job, "slawatch") != 0 || strcmp(db, "db0") != 0 ||
            strcmp(inst, instance) != 0)
            fail_msg("%s: job %s, db %s, instance %s", lines[i], job ? job : "-",
                     db ? db : "-", inst ? inst : "-");
    }
    json_decref(root);
    qsort(lines, n, sizeof(*lines), cmp_text);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    for (i = 0; i < n; i++) {
        fprintf(m, "%s\n", lines[i]);
        free(lines[i]);
    }
    fclose(m);
    free(lines);
    return text;
}

/* Every slawatch_* series, as series_of() gives them. */
static char *
all_series(struct env *e)
{
    return series_of(e, "{__name__=~\"slawatch_.+\"}");
}

/* The series the families table expects, in all_series()'s form. */
static char *
expected_series(void)
{
    size_t n = ARRAY_LEN(families);
    char **lines = calloc(n, sizeof(*lines));
    for (size_t i = 0; i < n; i++)
        assert_true(asprintf(&lines[i], "%s %s", families[i].series, families[i].value) > 0);
    qsort(lines, n, sizeof(*lines), cmp_text);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    for (size_t i = 0; i < n; i++) {
        fprintf(m, "%s\n", lines[i]);
        free(lines[i]);
    }
    fclose(m);
    free(lines);
    return text;
}

/* Prints each line of text (newline-terminated lines) that other lacks. */
static void
print_lines_missing(const char *what, const char *text, const char *other)
{
    char line[1024];
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        snprintf(line, sizeof(line), "\n%.*s\n", (int)n, p);
        if (strncmp(other, line + 1, n + 1) != 0 && strstr(other, line) == NULL)
            print_error("%s: %.*s\n", what, (int)n, p);
        p += n + (p[n] == '\n');
    }
}

/* Each query of the dashboard, its variables set to match everything
 * (breakdown: queue), runs; those naming one of must[] (the KPI,
 * elapsed-time, next-reply and objective panels) return at least one
 * series, and there are want_checked of them. */
static void
dashboard_queries_answer(struct env *e, const char *const *must, size_t nmust,
                         size_t want_checked)
{
    char path[512], expr[2048];
    snprintf(path, sizeof(path), "%s/contrib/prometheus/grafana-dashboard.json", srcdir());
    json_t *dash = json_load_file(path, 0, NULL);
    assert_non_null(dash);
    static const char *const vars[][2] = {
        { "$tier", ".*" }, { "$window", ".*" }, { "$metric", ".*" }, { "$breakdown", "queue" },
    };
    size_t i, j, checked = 0;
    json_t *panel, *target;
    json_array_foreach(json_object_get(dash, "panels"), i, panel) {
        json_array_foreach(json_object_get(panel, "targets"), j, target) {
            const char *src = json_string_value(json_object_get(target, "expr"));
            size_t n = 0;
            for (const char *p = src; *p && n + 8 < sizeof(expr);) {
                size_t v;
                for (v = 0; v < ARRAY_LEN(vars); v++)
                    if (strncmp(p, vars[v][0], strlen(vars[v][0])) == 0)
                        break;
                if (v < ARRAY_LEN(vars)) {
                    n += (size_t)snprintf(expr + n, sizeof(expr) - n, "%s", vars[v][1]);
                    p += strlen(vars[v][0]);
                } else
                    expr[n++] = *p++;
            }
            expr[n] = '\0';
            bool must_have_data = false;
            for (size_t k = 0; k < nmust; k++)
                must_have_data |= strstr(expr, must[k]) != NULL;
            bool answered = false, ok = false;
            for (int waited = 0; waited <= WAIT_MS && !ok; waited += 250) {
                json_t *root = query_json(e, expr);
                const char *status = json_string_value(json_object_get(root, "status"));
                answered = status && strcmp(status, "success") == 0;
                ok = answered && (!must_have_data ||
                                  json_array_size(json_object_get(
                                      json_object_get(root, "data"), "result")) > 0);
                json_decref(root);
                if (!ok)
                    h_sleep_ms(250);
            }
            if (!ok)
                fail_msg("panel \"%s\": %s %s",
                         json_string_value(json_object_get(panel, "title")), expr,
                         answered ? "returned no series" : "failed");
            checked += must_have_data;
        }
    }
    json_decref(dash);
    assert_int_equal(checked, want_checked);
}

static void
test_prometheus_new_key_families(void **state)
{
    struct env *e = *state;
    if (access(PROMETHEUS, X_OK) != 0)
        skip();
    set_family_keys(e);
    start_exporter(e);

    /* The exporter's patterns cover every key, with its value. */
    char url[128], *body = NULL;
    size_t missing = ARRAY_LEN(families);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", e->exporter_port);
    for (int waited = 0; waited <= WAIT_MS && missing > 0; waited += 200) {
        free(body);
        body = http_get(url);
        missing = ARRAY_LEN(families);
        for (size_t i = 0; body && i < ARRAY_LEN(families); i++) {
            double v;
            missing -= exported(body, families[i].key, &v);
        }
        if (missing)
            h_sleep_ms(200);
    }
    for (size_t i = 0; i < ARRAY_LEN(families); i++) {
        double v = -1;
        if (body == NULL || !exported(body, families[i].key, &v))
            fail_msg("missing from /metrics: %s", families[i].key);
        else if (v != strtod(families[i].value, NULL))
            fail_msg("%s: exported %g, want %s", families[i].key, v, families[i].value);
    }
    assert_null(strstr(body, "key=\"sla:objectives\""));
    free(body);

    /* Prometheus has exactly the series of the table: every key renamed,
     * each with its labels and value, none doubled, no raw key left. */
    start_prometheus(e);
    char *want = expected_series(), *got = NULL;
    for (int waited = 0; waited <= WAIT_MS; waited += 250) {
        free(got);
        got = all_series(e);
        if (got && strcmp(got, want) == 0)
            break;
        h_sleep_ms(250);
    }
    if (got == NULL || strcmp(got, want) != 0) {
        h_dump_file(e->redis.dir, "prometheus.log");
        print_lines_missing("unexpected series", got ? got : "", want);
        print_lines_missing("missing series", want, got ? got : "");
        fail_msg("the series after relabeling are not the table's");
    }
    free(got);
    free(want);
    expect_query(e, "count(redis_key_value) or vector(0)", "0");
    expect_query(e, "count(redis_key_size{key=~\"sla:.*\"}) or vector(0)", "0");

    /* The rules on them: next-reply compliance per tier (not per queue),
     * violations per objective, one pending alert per violated objective,
     * tier and window, and next_reply below compliance.objective. */
    expect_query(e, "slawatch:next_reply_compliance_ratio:tier{tier=\"t\",window=\"1h\"}", "0.8");
    expect_query(e, "count(slawatch:next_reply_compliance_ratio:tier)", "1");
    expect_query(e, "slawatch:objective_violations:count{objective=\"first-contact\"}", "1");
    expect_query(e, "slawatch:objective_violations:count{objective=\"satisfaction\"}", "1");
    expect_query(e, "count(slawatch:objective_violations:count)", "2");
    expect_query(e, "count(ALERTS{alertname=\"SlawatchObjectiveViolated\","
                    "alertstate=\"pending\"})", "2");
    expect_query(e, "count(ALERTS{alertname=\"SlawatchObjectiveViolated\","
                    "objective=\"first-contact\",tier=\"t\",window=\"7d\"})", "1");
    expect_query(e, "count(ALERTS{alertname=\"SlawatchObjectiveViolated\","
                    "objective=\"satisfaction\",tier=\"all\",window=\"7d\"})", "1");
    expect_query(e, "count(ALERTS{alertname=\"SlawatchComplianceBelowObjective\","
                    "metric=\"next_reply\",tier=\"t\",window=\"1h\"})", "1");
    static const char *const must[] = { "slawatch_kpi_", "slawatch_elapsed_ms",
                                        "slawatch_objective_violated",
                                        "slawatch:objective_violations", "next_reply" };
    /* FCR, reopen rate, CSAT (2), CSAT and FCR by queue, ratings,
     * next-reply compliance, elapsed time, violations, states. */
    dashboard_queries_answer(e, must, ARRAY_LEN(must), 11);
}

/* ---- KPIs, elapsed times and next_reply from slawatchd itself ---------- */

#define SEC 1000LL

/* XADD sla:events with an ID carrying the event's time (as the README says
 * to import history); fields after ticket NULL-terminated pairs. */
static void
xadd_at(struct env *e, int64_t at, const char *type, const char *ticket, ...)
{
    char ts[24], id[32];
    const char *argv[24];
    int argc = 0;
    va_list ap;
    snprintf(ts, sizeof(ts), "%lld", (long long)at);
    snprintf(id, sizeof(id), "%lld-*", (long long)at);
    argv[argc++] = "XADD";
    argv[argc++] = "sla:events";
    argv[argc++] = id;
    argv[argc++] = "type";
    argv[argc++] = type;
    argv[argc++] = "ticket";
    argv[argc++] = ticket;
    argv[argc++] = "ts";
    argv[argc++] = ts;
    va_start(ap, ticket);
    for (const char *f; (f = va_arg(ap, const char *)) != NULL && argc < 22;) {
        argv[argc++] = f;
        argv[argc++] = va_arg(ap, const char *);
    }
    va_end(ap);
    redisReply *r = redisCommandArgv(e->c, argc, argv, NULL);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("XADD %s %s: %s", type, ticket, r->str);
    freeReplyObject(r);
}

/* The history, in seconds after a base 50 minutes ago (so every fact and
 * outcome is in both windows, 1h and 7d):
 *   A (t, billing): opened 0, responded 60, commented 100 (a next_reply
 *       cycle), responded 160 (met, 60 s), resolved 200 (two replies and a
 *       customer message after the first: not first contact), rated 4 at
 *       210
 *   B (t, billing): opened 1, responded 61, resolved 120 (first contact),
 *       rated good at 130, reopened 300, resolved 400
 *   C (t, sales): opened 2, responded 32, commented 40 (a cycle, due at
 *       40 + 30 min), responded 2440 (breached at 1840, stopped after
 *       2400 s), resolved 2500 (not first contact), rated 2 at 2510
 *   D (u, billing): opened 3, responded 13, resolved 23 (first contact);
 *       u has no next_reply
 * Tier t (priority high) has next_reply: 30m; u does not. */
enum {
    A_COMMENT = 100, A_REPLY2 = 160,
    C_COMMENT = 40, C_REPLY2 = 2440,
    NEXT_REPLY_S = 30 * 60,
};

static void
send_kpi_history(struct env *e, int64_t b)
{
    xadd_at(e, b, "opened", "A", "priority", "high", "queue", "billing", NULL);
    xadd_at(e, b + 1 * SEC, "opened", "B", "priority", "high", "queue", "billing", NULL);
    xadd_at(e, b + 2 * SEC, "opened", "C", "priority", "high", "queue", "sales", NULL);
    xadd_at(e, b + 3 * SEC, "opened", "D", "priority", "low", "queue", "billing", NULL);
    xadd_at(e, b + 13 * SEC, "responded", "D", NULL);
    xadd_at(e, b + 23 * SEC, "resolved", "D", NULL);
    xadd_at(e, b + 32 * SEC, "responded", "C", NULL);
    xadd_at(e, b + C_COMMENT * SEC, "commented", "C", NULL);
    xadd_at(e, b + 60 * SEC, "responded", "A", NULL);
    xadd_at(e, b + 61 * SEC, "responded", "B", NULL);
    xadd_at(e, b + A_COMMENT * SEC, "commented", "A", NULL);
    xadd_at(e, b + 120 * SEC, "resolved", "B", NULL);
    xadd_at(e, b + 130 * SEC, "rated", "B", "score", "good", NULL);
    xadd_at(e, b + A_REPLY2 * SEC, "responded", "A", NULL);
    xadd_at(e, b + 200 * SEC, "resolved", "A", NULL);
    xadd_at(e, b + 210 * SEC, "rated", "A", "score", "4", NULL);
    xadd_at(e, b + 300 * SEC, "reopened", "B", NULL);
    xadd_at(e, b + 400 * SEC, "resolved", "B", NULL);
    xadd_at(e, b + C_REPLY2 * SEC, "responded", "C", NULL);
    xadd_at(e, b + 2500 * SEC, "resolved", "C", NULL);
    xadd_at(e, b + 2510 * SEC, "rated", "C", "score", "2", NULL);
}

/* What the history decides per ticket, by hand from the events above. */
static const struct {
    const char *tier, *queue;
    bool fcr, reopened;  /* first resolution at first contact; reopened after it */
    bool rated, good;    /* the rating: good (4, 5, good) or bad (1-3, bad) */
    int score;           /* its numeric score, 0 for good/bad */
    long long next_reply_ms; /* the next_reply cycle's elapsed time, 0: none */
    bool next_reply_met;
} kpi_tickets[] = {
    /* A */ { "t", "billing", false, false, true, true, 4,
              (A_REPLY2 - A_COMMENT) * SEC, A_REPLY2 - A_COMMENT <= NEXT_REPLY_S },
    /* B */ { "t", "billing", true, true, true, true, 0, 0, false },
    /* C */ { "t", "sales", false, false, true, false, 2,
              (C_REPLY2 - C_COMMENT) * SEC, C_REPLY2 - C_COMMENT <= NEXT_REPLY_S },
    /* D */ { "u", "billing", true, false, false, false, 0, 0, false },
};

/* num / den as slawatchd writes a ratio or mean: truncated to six
 * decimals, trailing zeros dropped; Prometheus prints the same digits. */
static void
ratio_text(char *buf, size_t len, long long num, long long den)
{
    long long micro = num * 1000000 / den;
    int n = snprintf(buf, len, "%lld.%06lld", micro / 1000000, micro % 1000000);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
}

/* The value the distribution reports for a sample v (docs/compliance.md):
 * exact below 16 ms, else the middle of its bin of 16 per power of two,
 * kept within the smallest and largest sample. */
static long long
hist_reported(long long v, long long lo, long long hi)
{
    if (v >= 16) {
        int b = 63 - __builtin_clzll((unsigned long long)v);
        long long step = 1LL << (b - 4);
        v = v / step * step + step / 2;
    }
    return v < lo ? lo : v > hi ? hi : v;
}

/* Sorted lines, joined by newlines (caller frees); frees the lines. */
static char *
join_sorted(char **lines, size_t n)
{
    qsort(lines, n, sizeof(*lines), cmp_text);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    for (size_t i = 0; i < n; i++) {
        fprintf(m, "%s\n", lines[i]);
        free(lines[i]);
    }
    fclose(m);
    return text;
}

static const char *const kpi_tiers[] = { "t", "u", "all" };
static const char *const kpi_queues[] = { NULL, "billing", "sales" };
static const char *const kpi_windows[] = { "1h", "7d" };

/* The slawatch_kpi_* series the tickets imply, in series_of()'s form: per
 * tier (and all), queue (and none) and window, each KPI whose window holds
 * something to count it from (docs/compliance.md, "Support KPIs"). */
static char *
expected_kpi_series(void)
{
    char **lines = calloc(5 * 3 * 3 * 2, sizeof(*lines)), labels[128], v[32];
    size_t n = 0;
    for (size_t t = 0; t < ARRAY_LEN(kpi_tiers); t++)
        for (size_t q = 0; q < ARRAY_LEN(kpi_queues); q++)
            for (size_t w = 0; w < ARRAY_LEN(kpi_windows); w++) {
                long long resolved = 0, fcr = 0, reopened = 0, good = 0, rated = 0,
                          scored = 0, sum = 0;
                for (size_t i = 0; i < ARRAY_LEN(kpi_tickets); i++) {
                    if (strcmp(kpi_tiers[t], "all") != 0 &&
                        strcmp(kpi_tiers[t], kpi_tickets[i].tier) != 0)
                        continue;
                    if (kpi_queues[q] && strcmp(kpi_queues[q], kpi_tickets[i].queue) != 0)
                        continue;
                    resolved++; /* every ticket is resolved once at least */
                    fcr += kpi_tickets[i].fcr;
                    reopened += kpi_tickets[i].reopened;
                    rated += kpi_tickets[i].rated;
                    good += kpi_tickets[i].rated && kpi_tickets[i].good;
                    scored += kpi_tickets[i].score > 0;
                    sum += kpi_tickets[i].score;
                }
                if (kpi_queues[q])
                    snprintf(labels, sizeof(labels), "queue=\"%s\",tier=\"%s\",window=\"%s\"",
                             kpi_queues[q], kpi_tiers[t], kpi_windows[w]);
                else
                    snprintf(labels, sizeof(labels), "tier=\"%s\",window=\"%s\"",
                             kpi_tiers[t], kpi_windows[w]);
                if (resolved > 0) {
                    ratio_text(v, sizeof(v), fcr, resolved);
                    assert_true(asprintf(&lines[n++], "slawatch_kpi_fcr{%s} %s", labels, v) > 0);
                    ratio_text(v, sizeof(v), reopened, resolved);
                    assert_true(asprintf(&lines[n++], "slawatch_kpi_reopen_rate{%s} %s", labels,
                                         v) > 0);
                }
                if (rated > 0) {
                    ratio_text(v, sizeof(v), good, rated);
                    assert_true(asprintf(&lines[n++], "slawatch_kpi_csat{%s} %s", labels, v) > 0);
                    assert_true(asprintf(&lines[n++], "slawatch_kpi_csat_count{%s} %lld", labels,
                                         rated) > 0);
                }
                if (scored > 0) {
                    ratio_text(v, sizeof(v), sum, scored);
                    assert_true(asprintf(&lines[n++], "slawatch_kpi_csat_mean{%s} %s", labels,
                                         v) > 0);
                }
            }
    char *text = join_sorted(lines, n);
    free(lines);
    return text;
}

/* The next_reply compliance ratios: per tier that has next_reply (t) and
 * all, queue (and none) and window, where a cycle had an outcome. */
static char *
expected_next_reply_ratios(void)
{
    char **lines = calloc(3 * 3 * 2, sizeof(*lines)), v[32];
    size_t n = 0;
    for (size_t t = 0; t < ARRAY_LEN(kpi_tiers); t++)
        for (size_t q = 0; q < ARRAY_LEN(kpi_queues); q++)
            for (size_t w = 0; w < ARRAY_LEN(kpi_windows); w++) {
                long long met = 0, decided = 0;
                for (size_t i = 0; i < ARRAY_LEN(kpi_tickets); i++)
                    if ((strcmp(kpi_tiers[t], "all") == 0 ||
                         strcmp(kpi_tiers[t], kpi_tickets[i].tier) == 0) &&
                        (!kpi_queues[q] || strcmp(kpi_queues[q], kpi_tickets[i].queue) == 0) &&
                        kpi_tickets[i].next_reply_ms > 0) {
                        decided++;
                        met += kpi_tickets[i].next_reply_met;
                    }
                if (decided == 0)
                    continue;
                ratio_text(v, sizeof(v), met, decided);
                if (kpi_queues[q])
                    assert_true(asprintf(&lines[n++],
                                         "slawatch_compliance_ratio{metric=\"next_reply\","
                                         "queue=\"%s\",tier=\"%s\",window=\"%s\"} %s",
                                         kpi_queues[q], kpi_tiers[t], kpi_windows[w], v) > 0);
                else
                    assert_true(asprintf(&lines[n++],
                                         "slawatch_compliance_ratio{metric=\"next_reply\","
                                         "tier=\"%s\",window=\"%s\"} %s",
                                         kpi_tiers[t], kpi_windows[w], v) > 0);
            }
    char *text = join_sorted(lines, n);
    free(lines);
    return text;
}

static int
cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* The next_reply elapsed times: per tier with next_reply and all (no
 * breakdown), window and stat. The percentiles are nearest-rank, reported
 * as the middle of their histogram bin within the smallest and largest
 * sample (hist_reported, checked to be within 1/32 of the exact sample,
 * the precision docs/compliance.md promises); the mean is exact. */
static char *
expected_next_reply_elapsed(void)
{
    static const char *const stat[] = { "p50", "p90", "p99" };
    static const int pct[] = { 50, 90, 99 };
    char **lines = calloc(3 * 2 * 4, sizeof(*lines));
    size_t n = 0;
    for (size_t t = 0; t < ARRAY_LEN(kpi_tiers); t++) {
        long long v[ARRAY_LEN(kpi_tickets)], sum = 0;
        int nv = 0;
        for (size_t i = 0; i < ARRAY_LEN(kpi_tickets); i++)
            if ((strcmp(kpi_tiers[t], "all") == 0 ||
                 strcmp(kpi_tiers[t], kpi_tickets[i].tier) == 0) &&
                kpi_tickets[i].next_reply_ms > 0) {
                v[nv++] = kpi_tickets[i].next_reply_ms;
                sum += kpi_tickets[i].next_reply_ms;
            }
        if (nv == 0)
            continue;
        qsort(v, (size_t)nv, sizeof(v[0]), cmp_ll);
        for (size_t w = 0; w < ARRAY_LEN(kpi_windows); w++) {
            for (int q = 0; q < 3; q++) {
                long long exact = v[(nv * pct[q] + 99) / 100 - 1],
                          got = hist_reported(exact, v[0], v[nv - 1]);
                assert_true(llabs(got - exact) * 32 <= exact);
                assert_true(asprintf(&lines[n++],
                                     "slawatch_elapsed_ms{metric=\"next_reply\",stat=\"%s\","
                                     "tier=\"%s\",window=\"%s\"} %lld",
                                     stat[q], kpi_tiers[t], kpi_windows[w], got) > 0);
            }
            assert_true(asprintf(&lines[n++],
                                 "slawatch_elapsed_ms{metric=\"next_reply\",stat=\"mean\","
                                 "tier=\"%s\",window=\"%s\"} %lld",
                                 kpi_tiers[t], kpi_windows[w], (sum + nv / 2) / nv) > 0);
        }
    }
    char *text = join_sorted(lines, n);
    free(lines);
    return text;
}

/* Polls until Prometheus has exactly the want series for selector. */
static void
expect_series(struct env *e, const char *selector, const char *want)
{
    char *got = NULL;
    for (int waited = 0; waited <= WAIT_MS; waited += 250) {
        free(got);
        got = series_of(e, selector);
        if (got && strcmp(got, want) == 0)
            break;
        h_sleep_ms(250);
    }
    if (got == NULL || strcmp(got, want) != 0) {
        h_dump_file(e->redis.dir, "prometheus.log");
        print_lines_missing("unexpected series", got ? got : "", want);
        print_lines_missing("missing series", want, got ? got : "");
        fail_msg("%s: the series are not those the events imply", selector);
    }
    free(got);
}

static void
test_prometheus_daemon_kpis(void **state)
{
    struct env *e = *state;
    char text[1024];
    if (access(PROMETHEUS, X_OK) != 0)
        skip();
    int64_t t0 = h_now_ms();
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"sla:\" }\n"
             "tiers:\n"
             "  t: { response: 1h, resolution: 1d, next_reply: 30m }\n"
             "  u: { response: 1h, resolution: 1d }\n"
             "policies:\n"
             "  - { match: { priority: high }, tier: t }\n"
             "  - { tier: u }\n"
             "compliance: { windows: [1h, 7d], by: [queue], publish_every: 1s }\n",
             e->redis.port);
    free(e->cfg);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    /* Whole seconds: a rating counts at its ts truncated to the second. */
    send_kpi_history(e, (h_now_ms() - 50 * 60 * SEC) / SEC * SEC);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(e->daemon > 0);
    assert_true(h_wait_group(e->c, "sla:events", "slawatch", WAIT_MS));
    if (!wait_key(e->c, "sla:kpi:all:csat_count:7d", "3", WAIT_MS)) {
        h_dump_file(e->redis.dir, "daemon.log");
        fail_msg("sla:kpi:all:csat_count:7d never became 3");
    }
    start_exporter(e);
    start_prometheus(e);

    /* Exactly the series the events imply, no more, no fewer. */
    char *want = expected_kpi_series();
    expect_series(e, "{__name__=~\"slawatch_kpi_.+\"}", want);
    free(want);
    want = expected_next_reply_ratios();
    expect_series(e, "slawatch_compliance_ratio{metric=\"next_reply\"}", want);
    free(want);
    want = expected_next_reply_elapsed();
    expect_series(e, "slawatch_elapsed_ms{metric=\"next_reply\"}", want);
    free(want);
    /* A few by name, as a reader of the README would write them. */
    expect_query(e, "slawatch_kpi_fcr{tier=\"t\",window=\"1h\",queue=\"\"}", "0.333333");
    expect_query(e, "slawatch_kpi_csat_mean{tier=\"all\",window=\"7d\",queue=\"billing\"}", "4");
    expect_query(e, "slawatch_elapsed_ms{tier=\"t\",metric=\"next_reply\",window=\"1h\","
                    "stat=\"p50\"}", "60416"); /* 60000 ms, the middle of its bin */
    expect_query(e, "slawatch_outcomes{outcome=\"breached\",tier=\"t\",metric=\"next_reply\","
                    "window=\"1h\",queue=\"\"}", "1");
    /* Every exported key was renamed: none left as redis_key_value. */
    expect_query(e, "count(redis_key_value) or vector(0)", "0");

    /* The rules on them: next_reply compliance per tier, no breakdown (t
     * and all, two windows), 0.5 below the objective 0.9, the only pending
     * compliance alerts (every response and resolution was met). */
    expect_query(e, "slawatch:next_reply_compliance_ratio:tier{tier=\"t\",window=\"1h\"}", "0.5");
    expect_query(e, "slawatch:next_reply_compliance_ratio:tier{tier=\"all\",window=\"7d\"}",
                 "0.5");
    expect_query(e, "count(slawatch:next_reply_compliance_ratio:tier)", "4");
    expect_query(e, "count(ALERTS{alertname=\"SlawatchComplianceBelowObjective\","
                    "metric=\"next_reply\",alertstate=\"pending\"})", "4");
    expect_query(e, "count(ALERTS{alertname=\"SlawatchComplianceBelowObjective\"})", "4");
    /* The dashboard's KPI, elapsed-time and next-reply panels have data
     * (the named objectives' are not published by this daemon yet). */
    static const char *const must[] = { "slawatch_kpi_", "slawatch_elapsed_ms", "next_reply" };
    /* FCR, reopen rate, CSAT (2), CSAT and FCR by queue, ratings,
     * next-reply compliance, elapsed time. */
    dashboard_queries_answer(e, must, ARRAY_LEN(must), 9);
    print_message("test_prometheus_daemon_kpis: %lld ms\n", (long long)(h_now_ms() - t0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exporter_exports_exact_values, setup, teardown),
        cmocka_unit_test(test_promtool_rules),
        cmocka_unit_test_setup_teardown(test_prometheus_relabels_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prometheus_new_key_families, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prometheus_daemon_kpis, setup, teardown),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
