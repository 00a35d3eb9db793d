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
 * query of the shipped dashboard answers. Every wait is bounded; every
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
 * and db checked apart). SET by the test: the daemon of this version does
 * not publish them yet. */
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

/* Every slawatch_* series Prometheus has, as series_text() lines, sorted
 * and joined by newlines (caller frees); NULL while it does not answer.
 * Each series must come from this test's exporter. */
static char *
all_series(struct env *e)
{
    char instance[64];
    json_t *root = query_json(e, "{__name__=~\"slawatch_.+\"}");
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
 * (breakdown: queue), runs; those of the KPI, elapsed-time, next-reply and
 * objective panels return at least one series from the keys above. */
static void
dashboard_queries_answer(struct env *e)
{
    char path[512], expr[2048];
    snprintf(path, sizeof(path), "%s/contrib/prometheus/grafana-dashboard.json", srcdir());
    json_t *dash = json_load_file(path, 0, NULL);
    assert_non_null(dash);
    static const char *const vars[][2] = {
        { "$tier", ".*" }, { "$window", ".*" }, { "$metric", ".*" }, { "$breakdown", "queue" },
    };
    static const char *const new_series[] = { "slawatch_kpi_", "slawatch_elapsed_ms",
                                              "slawatch_objective_violated",
                                              "slawatch:objective_violations",
                                              "next_reply" };
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
            for (size_t k = 0; k < ARRAY_LEN(new_series); k++)
                must_have_data |= strstr(expr, new_series[k]) != NULL;
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
    /* FCR, reopen rate, CSAT (2), CSAT and FCR by queue, ratings,
     * next-reply compliance, elapsed time, violations, states. */
    assert_int_equal(checked, 11);
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
    dashboard_queries_answer(e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exporter_exports_exact_values, setup, teardown),
        cmocka_unit_test(test_promtool_rules),
        cmocka_unit_test_setup_teardown(test_prometheus_relabels_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prometheus_new_key_families, setup, teardown),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
