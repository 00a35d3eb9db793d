/* What the daemon makes of a webhook's answers, against a loopback
 * receiver in this process that answers each request with a scripted
 * status, headers and body (its own small evhttp server: the harness's
 * receiver only scripts statuses):
 *
 *   - a 2xx with a body over 1 MB is a success, delivered once;
 *   - a 400 that echoes the request (as PagerDuty's does) is given up and
 *     logged without the routing key, the secret or the signature;
 *   - 429s pause the webhook, are not counted as attempts, and after the
 *     pause one request goes alone before the rest;
 *   - Retry-After as a huge number is clamped to max_backoff, as an
 *     HTTP-date it is honoured;
 *   - max_rate spaces the starts of a burst.
 *
 * Every wait is bounded; counts, orders and lower bounds are asserted,
 * never exact durations. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "harness.h"

#define ROUTING_KEY "R0utingKeyOfTheTestXYZ0123456789"
#define SECRET "hmac-secret-of-the-test-9876"

/* ---- a receiver with scripted answers ------------------------------------ */

struct answer {
    int status;
    char header[160]; /* one extra header line "Name: value", or "" */
    size_t big;       /* a body of this many bytes ('x') instead of body */
    char *body;       /* malloc'ed, or NULL for {"ok":true} */
};

struct seen {
    char delivery[80];
    int status;
    int64_t at_ms;
};

struct rx;
typedef void rx_script_fn(struct rx *rx, int index, const char *body, size_t len,
                          struct answer *out);

struct rx {
    pthread_t thread;
    pthread_mutex_t mu;
    struct event_base *base;
    struct evhttp *http;
    struct event *tick;
    int stop;
    int port;
    rx_script_fn *script;
    void *arg;
    struct seen reqs[512];
    int n;
};

static void
rx_cb(struct evhttp_request *req, void *arg)
{
    struct rx *rx = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = malloc(len + 1);
    if (body == NULL) {
        evhttp_send_error(req, 500, "oom");
        return;
    }
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    const char *d = evhttp_find_header(evhttp_request_get_input_headers(req),
                                       "X-Slawatch-Delivery");
    struct answer a = { 200, "", 0, NULL };
    pthread_mutex_lock(&rx->mu);
    int index = rx->n;
    if (rx->script)
        rx->script(rx, index, body, len, &a);
    if (rx->n < (int)(sizeof(rx->reqs) / sizeof(rx->reqs[0]))) {
        struct seen *s = &rx->reqs[rx->n++];
        snprintf(s->delivery, sizeof(s->delivery), "%s", d ? d : "");
        s->status = a.status;
        s->at_ms = h_now_ms();
    }
    pthread_mutex_unlock(&rx->mu);
    free(body);

    struct evbuffer *out = evbuffer_new();
    if (a.big) {
        char chunk[4096];
        memset(chunk, 'x', sizeof(chunk));
        for (size_t sent = 0; sent < a.big; sent += sizeof(chunk))
            evbuffer_add(out, chunk, a.big - sent < sizeof(chunk) ? a.big - sent : sizeof(chunk));
    } else if (a.body)
        evbuffer_add(out, a.body, strlen(a.body));
    else
        evbuffer_add_printf(out, "{\"ok\":true}");
    if (a.header[0]) {
        char name[64];
        const char *colon = strchr(a.header, ':');
        size_t nl = colon ? (size_t)(colon - a.header) : 0;
        if (colon && nl < sizeof(name)) {
            memcpy(name, a.header, nl);
            name[nl] = '\0';
            evhttp_add_header(evhttp_request_get_output_headers(req), name, colon + 2);
        }
    }
    evhttp_send_reply(req, a.status, a.status < 300 ? "OK" : "Scripted", out);
    evbuffer_free(out);
    free(a.body);
}

static void
rx_tick(evutil_socket_t fd, short what, void *arg)
{
    struct rx *rx = arg;
    (void)fd;
    (void)what;
    if (__atomic_load_n(&rx->stop, __ATOMIC_SEQ_CST))
        event_base_loopbreak(rx->base);
}

static void *
rx_thread(void *arg)
{
    struct rx *rx = arg;
    event_base_loop(rx->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static struct rx *
rx_start(rx_script_fn *script, void *arg)
{
    struct rx *rx = calloc(1, sizeof(*rx));
    assert_non_null(rx);
    pthread_mutex_init(&rx->mu, NULL);
    rx->script = script;
    rx->arg = arg;
    rx->base = event_base_new();
    assert_non_null(rx->base);
    rx->http = evhttp_new(rx->base);
    assert_non_null(rx->http);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(rx->http, "127.0.0.1", 0);
    assert_non_null(bs);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl),
                     0);
    rx->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    evhttp_set_gencb(rx->http, rx_cb, rx);
    evhttp_set_timeout(rx->http, 30);
    rx->tick = event_new(rx->base, -1, EV_PERSIST, rx_tick, rx);
    struct timeval tv = { 0, 50000 };
    assert_int_equal(event_add(rx->tick, &tv), 0);
    assert_int_equal(pthread_create(&rx->thread, NULL, rx_thread, rx), 0);
    return rx;
}

static void
rx_stop(struct rx *rx)
{
    if (rx == NULL)
        return;
    __atomic_store_n(&rx->stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(rx->thread, NULL);
    event_free(rx->tick);
    evhttp_free(rx->http);
    event_base_free(rx->base);
    pthread_mutex_destroy(&rx->mu);
    free(rx);
}

/* A copy of what was received so far; returns the count. */
static int
rx_copy(struct rx *rx, struct seen *out, int max)
{
    pthread_mutex_lock(&rx->mu);
    int n = rx->n < max ? rx->n : max;
    memcpy(out, rx->reqs, (size_t)n * sizeof(*out));
    pthread_mutex_unlock(&rx->mu);
    return n;
}

/* Distinct delivery ids answered 2xx. */
static int
rx_delivered(struct rx *rx)
{
    static struct seen s[512];
    int n = rx_copy(rx, s, 512), ok = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].status < 200 || s[i].status >= 300)
            continue;
        int k = 0;
        while (k < i && !(strcmp(s[k].delivery, s[i].delivery) == 0 && s[k].status >= 200 &&
                          s[k].status < 300))
            k++;
        ok += k == i;
    }
    return ok;
}

static bool
rx_wait_delivered(struct rx *rx, int n, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        if (rx_delivered(rx) >= n)
            return true;
        h_sleep_ms(20);
    }
    return false;
}

/* ---- the daemon ------------------------------------------------------------ */

struct env {
    struct h_redis redis;
    struct rx *rx;
    redisContext *c;
    char *cfg;
    pid_t daemon;
};

static int
teardown(void **state)
{
    struct env *e = *state;
    int rc = 0;
    if (e == NULL)
        return 0;
    if (e->daemon > 0 && h_daemon_stop(e->daemon, SIGTERM, 8000) != 0) {
        fprintf(stderr, "slawatchd did not exit cleanly on SIGTERM\n");
        h_dump_file(e->redis.dir, "daemon.log");
        rc = -1;
    }
    rx_stop(e->rx);
    if (e->c)
        redisFree(e->c);
    if (getenv("SLAWATCH_TEST_VERBOSE"))
        h_dump_file(e->redis.dir, "daemon.log");
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return rc;
}

/* Redis, the receiver and slawatchd with `webhooks` (a YAML block; @HTTP@
 * is the receiver's port) and one breach escalation to `hook`. */
static struct env *
env_start(void **state, const char *webhooks, rx_script_fn *script, void *arg)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    *state = e;
    assert_int_equal(h_redis_start(&e->redis, NULL), 0);
    e->c = h_connect(e->redis.port);
    assert_non_null(e->c);
    e->rx = rx_start(script, arg);
    static const char *const files[][2] = { { "rk", ROUTING_KEY "\n" },
                                            { "secret", SECRET "\n" } };
    for (size_t i = 0; i < 2; i++) {
        char *p = h_write_file(e->redis.dir, files[i][0], files[i][1]);
        assert_non_null(p);
        assert_int_equal(chmod(p, 0600), 0);
        free(p);
    }
    char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"dr:\" }\n"
             "events: { batch: 100, max_clock_skew: 1m }\n"
             "tiers:\n  t: { response: 1s }\n"
             "escalations:\n  - { name: page, when: breach, notify: [hook] }\n"
             "log: { level: info }\n"
             "webhooks:\n%s",
             webhooks);
    char *text = h_subst_ports(yaml, e->redis.port, e->rx->port);
    assert_non_null(text);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    free(text);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    if (!h_wait_group(e->c, "dr:events", "slawatch", 5000)) {
        h_dump_file(e->redis.dir, "daemon.log");
        fail_msg("daemon did not start");
    }
    return e;
}

static void
open_tickets(struct env *e, int n)
{
    for (int i = 0; i < n; i++) {
        char ticket[32];
        snprintf(ticket, sizeof(ticket), "R-%d", i);
        assert_int_equal(h_xadd(e->c, "dr:events", NULL, 0, "type", "opened", "ticket",
                                ticket, NULL),
                         0);
    }
}

/* The daemon's log as a string (malloc'ed). */
static char *
daemon_log(struct env *e)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/daemon.log", e->redis.dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    size_t got = fread(buf, 1, (size_t)size, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

/* ---- a 2xx with a large body ------------------------------------------------ */

static void
big_script(struct rx *rx, int index, const char *body, size_t len, struct answer *a)
{
    (void)rx;
    (void)index;
    (void)body;
    (void)len;
    a->status = 200;
    a->big = 2u << 20; /* 2 MiB */
}

static void
test_2xx_with_large_body(void **state)
{
    struct env *e = env_start(state,
        "  hook: { url: \"http://127.0.0.1:@HTTP@/big\", timeout: 5s,\n"
        "          retry: { attempts: 4, backoff: 100ms, max_backoff: 200ms } }\n",
        big_script, NULL);
    open_tickets(e, 3);
    assert_true(rx_wait_delivered(e->rx, 3, 8000));
    assert_true(h_wait_hlen(e->c, "dr:outbox", 0, 3000));
    h_sleep_ms(800); /* room for a wrong retry */
    struct seen s[16];
    int n = rx_copy(e->rx, s, 16);
    if (n != 3)
        h_dump_file(e->redis.dir, "daemon.log");
    assert_int_equal(n, 3); /* each once: a 2xx is a success */
    assert_true(h_wait_int(e->c, "dr:stats:notifications_pending", 0, 3000));
    long long failed = -1;
    assert_true(h_get_int(e->c, "dr:stats:deliveries_failed_total", &failed));
    assert_int_equal(failed, 0);
}

/* ---- a 400 echoing the request ------------------------------------------------- */

/* PagerDuty-like: the error names the routing key it did not like, then
 * the whole request follows. */
static void
echo_script(struct rx *rx, int index, const char *body, size_t len, struct answer *a)
{
    (void)rx;
    (void)index;
    (void)len;
    json_error_t err;
    json_t *req = json_loads(body, 0, &err);
    json_t *rk = req ? json_object_get(req, "routing_key") : NULL;
    const char *key = json_is_string(rk) ? json_string_value(rk) : "?";
    a->status = 400;
    if (asprintf(&a->body,
                 "{\"status\":\"invalid event\",\"message\":\"routing_key %s: key=%s "
                 "secret=%s\",\"echo\":%s}",
                 key, key, SECRET, body) < 0)
        a->body = NULL;
    json_decref(req);
}

static void
test_400_echo_is_scrubbed(void **state)
{
    struct env *e = env_start(state,
        "  hook: { url: \"http://127.0.0.1:@HTTP@/pd\", format: pagerduty,\n"
        "          routing_key_file: rk, secret_file: secret,\n"
        "          retry: { attempts: 3, backoff: 100ms, max_backoff: 200ms } }\n",
        echo_script, NULL);
    open_tickets(e, 1);
    assert_true(h_wait_int(e->c, "dr:stats:deliveries_failed_total", 1, 8000));
    h_sleep_ms(300);
    char *log = daemon_log(e);
    /* The give-up is logged with its status and a scrubbed prefix. */
    const char *line = strstr(log, "gave up on breach");
    if (line == NULL || strstr(log, ROUTING_KEY) || strstr(log, SECRET))
        fprintf(stderr, "%s", log);
    assert_non_null(line);
    assert_non_null(strstr(line, "HTTP 400: {\"status\":\"invalid event\""));
    assert_null(strstr(log, ROUTING_KEY));
    assert_null(strstr(log, "R0utingKey")); /* not even a part of it */
    assert_null(strstr(log, SECRET));
    free(log);
    struct seen s[8];
    assert_int_equal(rx_copy(e->rx, s, 8), 1); /* a 400 is not retried */
}

/* ---- 429: a pause, not a failure; then one request alone ------------------------ */

#define THROTTLED 20 /* the first 20 requests are answered 429 */
#define BURST 40

static void
throttle_script(struct rx *rx, int index, const char *body, size_t len, struct answer *a)
{
    (void)rx;
    (void)body;
    (void)len;
    if (index < THROTTLED) {
        a->status = 429;
        snprintf(a->header, sizeof(a->header), "Retry-After: 1");
    } else
        a->status = 200;
}

static void
test_429_pauses_and_probes(void **state)
{
    /* attempts: 2 would give up every notification answered 429 twice, if
     * a 429 counted as an attempt. */
    struct env *e = env_start(state,
        "  hook: { url: \"http://127.0.0.1:@HTTP@/rl\", timeout: 5s,\n"
        "          retry: { attempts: 2, backoff: 100ms, max_backoff: 2s } }\n",
        throttle_script, NULL);
    open_tickets(e, BURST);
    bool all = rx_wait_delivered(e->rx, BURST, 20000);
    static struct seen s[512];
    int n = rx_copy(e->rx, s, 512);
    if (!all)
        h_dump_file(e->redis.dir, "daemon.log");
    assert_true(all);
    assert_true(h_wait_hlen(e->c, "dr:outbox", 0, 3000));
    long long failed = -1;
    assert_true(h_get_int(e->c, "dr:stats:deliveries_failed_total", &failed));
    assert_int_equal(failed, 0);
    assert_int_equal(n, BURST + THROTTLED); /* each 429 cost one more request */

    /* The first wave: every request in flight when the first 429 came
     * (at most the 16 slots). After it, each pause ends with one request
     * alone, which is answered 429 again, until the receiver lets it
     * through: so every later 429 comes at least Retry-After (1 s, less
     * the timer's slack) after the one before. Sent all at once, the
     * queue would have met the remaining 429s within milliseconds. */
    int wave = 0;
    while (wave < n && s[wave].status == 429 && s[wave].at_ms - s[0].at_ms < 500)
        wave++;
    assert_true(wave >= 1 && wave <= 16);
    for (int i = wave; i < THROTTLED; i++) {
        assert_int_equal(s[i].status, 429);
        if (s[i].at_ms - s[i - 1].at_ms < 900)
            fail_msg("429 #%d came %lld ms after #%d: the pause was not kept, or more "
                     "than one request was sent after it",
                     i + 1, (long long)(s[i].at_ms - s[i - 1].at_ms), i);
    }
    for (int i = THROTTLED; i < n; i++)
        assert_int_equal(s[i].status, 200);
}

/* ---- Retry-After: a huge number, an HTTP-date ------------------------------------ */

static void
retry_after_script(struct rx *rx, int index, const char *body, size_t len, struct answer *a)
{
    (void)rx;
    (void)body;
    (void)len;
    if (index == 0) {
        a->status = 429;
        snprintf(a->header, sizeof(a->header), "Retry-After: 9223372036854775807");
    } else if (index == 1) {
        /* An HTTP-date 3 s ahead (at one-second resolution: 2 to 3 s). */
        time_t t = time(NULL) + 3;
        struct tm tm;
        gmtime_r(&t, &tm);
        char date[64];
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        snprintf(a->header, sizeof(a->header), "Retry-After: %s", date);
        a->status = 429;
    } else
        a->status = 200;
}

static void
test_retry_after_forms(void **state)
{
    struct env *e = env_start(state,
        "  hook: { url: \"http://127.0.0.1:@HTTP@/ra\", timeout: 5s,\n"
        "          retry: { attempts: 5, backoff: 100ms, max_backoff: 1500ms } }\n",
        retry_after_script, NULL);
    open_tickets(e, 1);
    /* A day-long Retry-After would hold it for a day: clamped to
     * max_backoff (1.5 s), then the date, then delivered. */
    bool ok = rx_wait_delivered(e->rx, 1, 12000);
    struct seen s[8];
    int n = rx_copy(e->rx, s, 8);
    if (!ok)
        h_dump_file(e->redis.dir, "daemon.log");
    assert_true(ok);
    assert_int_equal(n, 3);
    assert_int_equal(s[0].status, 429);
    assert_int_equal(s[1].status, 429);
    assert_int_equal(s[2].status, 200);
    /* The huge value was honoured up to max_backoff (not read as 0 or a
     * negative after an overflow), the date for at least a second. */
    assert_true(s[1].at_ms - s[0].at_ms >= 1400);
    assert_true(s[2].at_ms - s[1].at_ms >= 1000);
    long long failed = -1;
    assert_true(h_get_int(e->c, "dr:stats:deliveries_failed_total", &failed));
    assert_int_equal(failed, 0);
}

/* ---- max_rate ------------------------------------------------------------------ */

#define RATED 15

static void
test_max_rate_spaces_starts(void **state)
{
    /* 5 per second: a bucket of 5 tokens, then one every 200 ms. */
    struct env *e = env_start(state,
        "  hook: { url: \"http://127.0.0.1:@HTTP@/rate\", max_rate: 5 }\n", NULL, NULL);
    open_tickets(e, RATED);
    bool ok = rx_wait_delivered(e->rx, RATED, 15000);
    struct seen s[32];
    int n = rx_copy(e->rx, s, 32);
    if (!ok)
        h_dump_file(e->redis.dir, "daemon.log");
    assert_true(ok);
    assert_int_equal(n, RATED);
    /* Request k (from 0) starts no earlier than (k - 4) * 200 ms after
     * the first, less 30 ms of timer slack. */
    for (int k = 5; k < n; k++)
        if (s[k].at_ms - s[0].at_ms < (k - 4) * 200 - 30)
            fail_msg("request %d came %lld ms after the first, faster than max_rate", k,
                     (long long)(s[k].at_ms - s[0].at_ms));
    long long failed = -1;
    assert_true(h_get_int(e->c, "dr:stats:deliveries_failed_total", &failed));
    assert_int_equal(failed, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_2xx_with_large_body, teardown),
        cmocka_unit_test_teardown(test_400_echo_is_scrubbed, teardown),
        cmocka_unit_test_teardown(test_429_pauses_and_probes, teardown),
        cmocka_unit_test_teardown(test_retry_after_forms, teardown),
        cmocka_unit_test_teardown(test_max_rate_spaces_starts, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
