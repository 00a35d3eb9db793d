/* Integration test against a real Alertmanager (Debian's
 * prometheus-alertmanager) started on a free loopback port with its storage
 * in a temporary directory and clustering off: a breached ticket appears in
 * GET /api/v2/alerts as alertname="SLABreach" with its labels, stays active
 * past Alertmanager's resolve_timeout because slawatch re-sends it while the
 * clock is overdue, and disappears from the active alerts once the ticket
 * is answered (slawatch sends it with endsAt). Every wait is bounded. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "harness.h"

#define AM_BIN "/usr/bin/prometheus-alertmanager"

struct env {
    struct h_redis redis;
    redisContext *c;
    pid_t am;
    int am_port;
    char *cfg;
    pid_t daemon;
};

static int
free_tcp_port(void)
{
    /* A receiver bound and released is a free port for the next process. */
    struct h_http probe;
    if (h_http_start(&probe, NULL, NULL, false) < 0)
        return -1;
    int port = probe.port;
    h_http_stop(&probe);
    return port;
}

struct buf {
    char *data;
    size_t len;
};

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    char *v = realloc(b->data, b->len + size * n + 1);
    if (v == NULL)
        return 0;
    b->data = v;
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* GET http://127.0.0.1:port/path; returns the status, body in *out. */
static long
http_get(int port, const char *path, char **out)
{
    char url[256];
    struct buf b = { NULL, 0 };
    long status = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    *out = b.data;
    return status;
}

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    *state = e;
    if (access(AM_BIN, X_OK) != 0) {
        fprintf(stderr, "%s is not installed (scripts/deps.sh test)\n", AM_BIN);
        return -1;
    }
    if (h_redis_start(&e->redis, NULL) < 0)
        return -1;
    e->c = h_connect(e->redis.port);
    /* resolve_timeout 2s: an alert not re-sent within 2 s would resolve. */
    char *amcfg = h_write_file(e->redis.dir, "alertmanager.yml",
                               "global:\n  resolve_timeout: 2s\n"
                               "route:\n  receiver: blackhole\n"
                               "receivers:\n  - name: blackhole\n");
    char storage[300], listen[64], cfgarg[400], storarg[400], logf[300];
    snprintf(storage, sizeof(storage), "%s/am-data", e->redis.dir);
    snprintf(logf, sizeof(logf), "%s/alertmanager.log", e->redis.dir);
    for (int attempt = 0; attempt < 5 && e->am == 0; attempt++) {
        e->am_port = free_tcp_port();
        snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", e->am_port);
        snprintf(cfgarg, sizeof(cfgarg), "--config.file=%s", amcfg);
        snprintf(storarg, sizeof(storarg), "--storage.path=%s", storage);
        pid_t pid = fork();
        if (pid == 0) {
            int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            execl(AM_BIN, "alertmanager", cfgarg, storarg, listen,
                  "--cluster.listen-address=", (char *)NULL);
            _exit(127);
        }
        /* Ready within 20 s, or try another port. */
        for (int waited = 0; waited < 20000; waited += 100) {
            char *body = NULL;
            long st = http_get(e->am_port, "/-/ready", &body);
            free(body);
            if (st == 200) {
                e->am = pid;
                break;
            }
            if (waitpid(pid, NULL, WNOHANG) == pid)
                break;
            h_sleep_ms(100);
        }
        if (e->am == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    free(amcfg);
    if (e->am == 0) {
        h_dump_file(e->redis.dir, "alertmanager.log");
        return -1;
    }
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"am:\" }\n"
             "events: { max_clock_skew: 1m }\n"
             "tiers:\n  fast: { response: 1s }\n"
             "policies:\n  - { tier: fast }\n"
             "escalations:\n  - { name: page, when: breach, notify: [am] }\n"
             "webhooks:\n"
             "  am: { url: \"http://127.0.0.1:%d/api/v2/alerts\", format: alertmanager,\n"
             "        resend: 500ms, timeout: 2s,\n"
             "        retry: { attempts: 5, backoff: 200ms, max_backoff: 1s } }\n"
             "log: { level: debug }\n",
             e->redis.port, e->am_port);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", yaml);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    if (e->c == NULL || !h_wait_group(e->c, "am:events", "slawatch", 5000)) {
        h_dump_file(e->redis.dir, "daemon.log");
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    if (e == NULL)
        return 0;
    if (e->daemon > 0)
        h_daemon_stop(e->daemon, SIGKILL, 2000);
    if (e->am > 0) {
        kill(e->am, SIGTERM);
        for (int i = 0; i < 100 && waitpid(e->am, NULL, WNOHANG) != e->am; i++)
            h_sleep_ms(50);
        kill(e->am, SIGKILL);
        waitpid(e->am, NULL, WNOHANG);
    }
    if (e->c)
        redisFree(e->c);
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return 0;
}

/* The active SLABreach alert of `ticket` in GET /api/v2/alerts, as a new
 * reference, or NULL. */
static json_t *
find_alert(struct env *e, const char *ticket)
{
    char *body = NULL;
    json_t *found = NULL;
    if (http_get(e->am_port, "/api/v2/alerts?active=true", &body) == 200 && body) {
        json_t *arr = json_loads(body, 0, NULL);
        size_t i;
        json_t *a;
        json_array_foreach(arr, i, a) {
            json_t *l = json_object_get(a, "labels");
            const char *name = json_string_value(json_object_get(l, "alertname"));
            const char *t = json_string_value(json_object_get(l, "ticket"));
            const char *state =
                json_string_value(json_object_get(json_object_get(a, "status"), "state"));
            if (name && t && strcmp(name, "SLABreach") == 0 && strcmp(t, ticket) == 0 &&
                state && strcmp(state, "active") == 0 && found == NULL)
                found = json_incref(a);
        }
        json_decref(arr);
    }
    free(body);
    return found;
}

static bool
wait_alert(struct env *e, const char *ticket, bool present, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        json_t *a = find_alert(e, ticket);
        bool there = a != NULL;
        json_decref(a);
        if (there == present)
            return true;
        h_sleep_ms(100);
    }
    h_dump_file(e->redis.dir, "daemon.log");
    return false;
}

static void
test_breach_appears_and_resolves(void **state)
{
    struct env *e = *state;
    assert_int_equal(h_xadd(e->c, "am:events", NULL, 0, "type", "opened", "ticket", "AM-1",
                            "priority", "high", NULL), 0);
    assert_int_equal(h_xadd(e->c, "am:events", NULL, 0, "type", "opened", "ticket", "AM-2",
                            NULL), 0);
    assert_true(wait_alert(e, "AM-1", true, 10000));
    assert_true(wait_alert(e, "AM-2", true, 5000));

    json_t *a = find_alert(e, "AM-1");
    json_t *l = json_object_get(a, "labels");
    assert_string_equal(json_string_value(json_object_get(l, "tier")), "fast");
    assert_string_equal(json_string_value(json_object_get(l, "metric")), "response");
    assert_string_equal(json_string_value(json_object_get(l, "severity")), "critical");
    assert_non_null(json_string_value(json_object_get(a, "startsAt")));
    json_decref(a);

    /* Past resolve_timeout (2 s) the overdue tickets are still active:
     * slawatch re-sends them every 500 ms. */
    h_sleep_ms(3500);
    a = find_alert(e, "AM-1");
    assert_non_null(a);
    json_decref(a);

    /* Answered: gone from the active alerts at once, well before a
     * resolve_timeout would have done it; the other one stays. */
    int64_t t0 = h_now_ms();
    assert_int_equal(h_xadd(e->c, "am:events", NULL, 0, "type", "responded", "ticket", "AM-1",
                            NULL), 0);
    assert_true(wait_alert(e, "AM-1", false, 5000));
    assert_true(h_now_ms() - t0 < 2000);
    a = find_alert(e, "AM-2");
    assert_non_null(a);
    json_decref(a);

    assert_int_equal(h_xadd(e->c, "am:events", NULL, 0, "type", "resolved", "ticket", "AM-2",
                            NULL), 0);
    assert_true(wait_alert(e, "AM-2", false, 5000));
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_breach_appears_and_resolves, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
