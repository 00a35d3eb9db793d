/* Integration tests of escalation webhooks: the real slawatchd against a
 * private redis-server and a loopback HTTP receiver inside this process
 * (harness.c, libevent's evhttp on its own thread) that records every
 * request with its headers and body and answers scripted status codes, or
 * never answers at all.
 *
 *   - a warning, a breach and a recovered arrive in that order, with the
 *     SPEC section 5 body and headers, and the signature verifies;
 *   - 500 then 503 are retried with the same delivery id and the third
 *     attempt succeeds; a 400 is not retried and is counted;
 *   - a level-2 escalation (`after`) fires only for the ticket still
 *     unanswered, and only that ticket's level 2 hears of the recovery;
 *   - a receiver hanging past `timeout` delays neither the other webhook's
 *     deliveries nor breach detection;
 *   - kill -9 while deliveries fail, then a restart: every notification is
 *     delivered, none is lost, and duplicates only ever repeat an id.
 *
 * Every wait is bounded; orders and bounds are asserted, never exact
 * sleeps. */
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "harness.h"
#include "slawatch/util.h"

#define SECRET "top-secret-key"

static const char *base_yaml =
    "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"wh:\" }\n"
    "events: { batch: 100, max_clock_skew: 1m }\n"
    "tiers:\n"
    "  fast: { response: 1s, warn: [50%] }\n"
    "policies:\n"
    "  - { tier: fast }\n"
    "log: { level: debug }\n";

/* Redis, the receiver and the daemon with base_yaml + `extra`. */
static struct h_env *
env_start(void **state, const char *extra, h_http_script_fn *script, void *arg)
{
    static const char *const secrets[] = { "secret", SECRET "\n", NULL };
    char yaml[8192];
    snprintf(yaml, sizeof(yaml), "%s%s", base_yaml, extra);
    struct h_env *e = h_env_start(yaml, "wh:events", secrets, script, arg);
    *state = e;
    if (e == NULL)
        fail_msg("daemon did not start");
    return e;
}

static int
teardown(void **state)
{
    /* A clean exit with deliveries still in flight (and, in the sanitizer
     * build, no leak report). */
    return h_env_stop(*state);
}

static void
emit(struct h_env *e, const char *type, const char *ticket)
{
    assert_int_equal(h_xadd(e->c, "wh:events", NULL, 0, "type", type, "ticket", ticket,
                            "priority", "high", "queue", "billing", NULL),
                     0);
}

static bool
wait_or_dump(struct h_env *e, const char *path, int n, int timeout_ms)
{
    if (h_http_wait(&e->rx, path, n, timeout_ms))
        return true;
    h_dump_file(e->redis.dir, "daemon.log");
    fprintf(stderr, "%s: %d requests, wanted %d\n", path ? path : "*",
            h_http_count(&e->rx, path), n);
    return false;
}

static json_t *
body_of(const struct h_req *r)
{
    json_error_t err;
    json_t *j = json_loads(r->body ? r->body : "", 0, &err);
    if (j == NULL)
        fail_msg("request body is not JSON: %s", r->body ? r->body : "(none)");
    return j;
}

static const char *
sfield(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_string(v))
        fail_msg("%s is not a string", key);
    return json_string_value(v);
}

static int64_t
tfield(json_t *j, const char *key)
{
    const char *s = sfield(j, key);
    int64_t ms;
    assert_int_equal(strlen(s), 24); /* YYYY-MM-DDTHH:MM:SS.mmmZ */
    assert_true(s[10] == 'T' && s[19] == '.' && s[23] == 'Z');
    assert_int_equal(ts_parse(s, strlen(s), &ms), 0);
    return ms;
}

/* Requests on one path, in arrival order (copy; free with h_http_free_copy). */
static int
requests_on(struct h_env *e, const char *path, struct h_req **out)
{
    struct h_req *all;
    int n = h_http_copy(&e->rx, &all), k = 0;
    struct h_req *v = calloc((size_t)n + 1, sizeof(*v));
    for (int i = 0; i < n; i++) {
        if (strcmp(all[i].path, path) == 0) {
            v[k] = all[i];
            all[i].body = NULL;
            k++;
        }
    }
    h_http_free_copy(all, n);
    *out = v;
    return k;
}

static void
check_signature(const struct h_req *r)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    char msg[8192], want[80] = "sha256=";
    int len = snprintf(msg, sizeof(msg), "%s.%s", r->timestamp, r->body);
    assert_true(len > 0 && (size_t)len < sizeof(msg));
    assert_non_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)msg,
                         (size_t)len, md, &mdlen));
    for (unsigned i = 0; i < mdlen; i++)
        sprintf(want + 7 + 2 * i, "%02x", md[i]);
    assert_string_equal(r->signature, want);
}

/* ---- a warning, a breach and a recovered, signed ------------------------ */

static void
test_body_signature_order(void **state)
{
    struct h_env *e = env_start(state,
        "escalations:\n"
        "  - { name: warn-team, when: warning, notify: [main] }\n"
        "  - { name: page-team, when: breach, metric: response, notify: [main] }\n"
        "webhooks:\n"
        "  main: { url: \"http://127.0.0.1:@HTTP@/main\", secret_file: secret, timeout: 2s,\n"
        "          retry: { attempts: 5, backoff: 100ms, max_backoff: 1s } }\n",
        NULL, NULL);
    int64_t t0 = h_now_ms();
    emit(e, "opened", "T-1");
    assert_true(wait_or_dump(e, "/main", 2, 5000));
    emit(e, "responded", "T-1");
    assert_true(wait_or_dump(e, "/main", 3, 5000));
    h_sleep_ms(300);

    struct h_req *r;
    int n = requests_on(e, "/main", &r);
    assert_int_equal(n, 3);
    static const char *const kinds[] = { "warning", "breach", "recovered" };
    for (int i = 0; i < n; i++) {
        json_t *j = body_of(&r[i]);
        assert_string_equal(sfield(j, "kind"), kinds[i]);
        assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
        assert_string_equal(r[i].content_type, "application/json");
        assert_int_equal(strlen(r[i].delivery), 32);
        assert_string_equal(sfield(j, "delivery"), r[i].delivery);
        assert_string_equal(sfield(j, "ticket"), "T-1");
        assert_string_equal(sfield(j, "tier"), "fast");
        assert_string_equal(sfield(j, "metric"), "response");
        assert_string_equal(sfield(j, "priority"), "high");
        assert_string_equal(sfield(j, "queue"), "billing");
        assert_true(json_is_null(json_object_get(j, "agent")));
        assert_string_equal(sfield(j, "escalation"), i == 0 ? "warn-team" : "page-team");
        int64_t opened = tfield(j, "opened_at"), deadline = tfield(j, "deadline");
        int64_t at = tfield(j, "at");
        assert_int_equal(deadline - opened, 1000);
        assert_true(opened >= t0 - 1000 && opened <= t0 + 1000);
        assert_int_equal(json_integer_value(json_object_get(j, "late_ms")), at - deadline);
        if (i == 0)
            assert_true(json_number_value(json_object_get(j, "percent")) == 50);
        if (i == 1)
            assert_true(at - deadline >= 1 && at - deadline < 500);
        /* The timestamp header is the attempt's time, in seconds. */
        long long ts = strtoll(r[i].timestamp, NULL, 10);
        assert_true(ts * 1000 >= r[i].at_ms - 5000 && ts * 1000 <= r[i].at_ms + 5000);
        check_signature(&r[i]);
        json_decref(j);
    }
    assert_string_not_equal(r[0].delivery, r[1].delivery);
    assert_string_not_equal(r[1].delivery, r[2].delivery);
    assert_true(r[0].at_ms <= r[1].at_ms && r[1].at_ms <= r[2].at_ms);
    h_http_free_copy(r, n);
    assert_true(h_wait_hlen(e->c, "wh:outbox", 0, 3000));
    assert_true(h_wait_int(e->c, "wh:stats:notifications_pending", 0, 3000));
}

/* ---- retries and refusals ---------------------------------------------- */

static int
flaky_script(void *arg, const char *path, const char *delivery, int attempt)
{
    (void)arg;
    (void)delivery;
    if (strcmp(path, "/flaky") == 0)
        return attempt == 1 ? 500 : attempt == 2 ? 503 : 200;
    if (strcmp(path, "/bad") == 0)
        return 400;
    return 200;
}

static void
test_retry_and_refusal(void **state)
{
    struct h_env *e = env_start(state,
        "escalations:\n"
        "  - { name: flaky, when: breach, notify: [flaky] }\n"
        "  - { name: bad, when: breach, notify: [bad] }\n"
        "webhooks:\n"
        "  flaky: { url: \"http://127.0.0.1:@HTTP@/flaky\", secret_file: secret,\n"
        "           retry: { attempts: 5, backoff: 200ms, max_backoff: 2s } }\n"
        "  bad: { url: \"http://127.0.0.1:@HTTP@/bad\",\n"
        "         retry: { attempts: 5, backoff: 200ms, max_backoff: 2s } }\n",
        flaky_script, NULL);
    emit(e, "opened", "T-2");
    assert_true(wait_or_dump(e, "/flaky", 3, 8000));
    h_sleep_ms(1500); /* room for a wrong retry of the 400 or a 4th attempt */

    struct h_req *r;
    int n = requests_on(e, "/flaky", &r);
    assert_int_equal(n, 3);
    static const int statuses[] = { 500, 503, 200 };
    for (int i = 0; i < n; i++) {
        assert_int_equal(r[i].status, statuses[i]);
        assert_int_equal(r[i].attempt, i + 1);
        assert_string_equal(r[i].delivery, r[0].delivery);
        assert_string_equal(r[i].body, r[0].body); /* same body every time */
        check_signature(&r[i]);
    }
    /* Exponential backoff with +-25 % jitter: ~200 ms, then ~400 ms. */
    assert_true(r[1].at_ms - r[0].at_ms >= 150);
    assert_true(r[2].at_ms - r[1].at_ms >= 300);
    assert_true(r[2].at_ms - r[0].at_ms < 3000);
    h_http_free_copy(r, n);

    n = requests_on(e, "/bad", &r);
    assert_int_equal(n, 1); /* a 400 is given up at once */
    assert_int_equal(r[0].status, 400);
    assert_string_equal(r[0].signature, ""); /* no secret, no signature */
    h_http_free_copy(r, n);

    assert_true(h_wait_int(e->c, "wh:stats:deliveries_failed_total", 1, 3000));
    assert_true(h_wait_hlen(e->c, "wh:outbox", 0, 3000));
    assert_true(h_wait_int(e->c, "wh:stats:notifications_pending", 0, 3000));
}

/* ---- the ladder --------------------------------------------------------- */

static void
test_ladder(void **state)
{
    struct h_env *e = env_start(state,
        "escalations:\n"
        "  - { name: level1, when: breach, notify: [l1] }\n"
        "  - { name: level2, when: breach, after: 1500ms, notify: [l2] }\n"
        "webhooks:\n"
        "  l1: { url: \"http://127.0.0.1:@HTTP@/l1\" }\n"
        "  l2: { url: \"http://127.0.0.1:@HTTP@/l2\" }\n",
        NULL, NULL);
    emit(e, "opened", "A");
    emit(e, "opened", "B");
    assert_true(wait_or_dump(e, "/l1", 2, 5000));
    int64_t breach_seen = h_now_ms();
    emit(e, "responded", "A"); /* answered after the breach, before level 2 */
    assert_true(wait_or_dump(e, "/l2", 1, 5000));
    h_sleep_ms(1000);

    struct h_req *r;
    int n = requests_on(e, "/l2", &r);
    assert_int_equal(n, 1);
    json_t *j = body_of(&r[0]);
    assert_string_equal(sfield(j, "ticket"), "B");
    assert_string_equal(sfield(j, "kind"), "breach");
    assert_string_equal(sfield(j, "escalation"), "level2");
    assert_true(r[0].at_ms - breach_seen >= 1200); /* after `after` */
    json_decref(j);
    h_http_free_copy(r, n);

    /* Level 1 heard of both breaches and of A's recovery. */
    assert_true(wait_or_dump(e, "/l1", 3, 3000));
    n = requests_on(e, "/l1", &r);
    assert_int_equal(n, 3);
    int breaches = 0, recovered_a = 0;
    for (int i = 0; i < n; i++) {
        j = body_of(&r[i]);
        breaches += strcmp(sfield(j, "kind"), "breach") == 0;
        recovered_a += strcmp(sfield(j, "kind"), "recovered") == 0 &&
                       strcmp(sfield(j, "ticket"), "A") == 0;
        json_decref(j);
    }
    assert_int_equal(breaches, 2);
    assert_int_equal(recovered_a, 1);
    h_http_free_copy(r, n);

    /* B answered now: both levels hear of the recovery. */
    emit(e, "responded", "B");
    assert_true(wait_or_dump(e, "/l2", 2, 3000));
    n = requests_on(e, "/l2", &r);
    j = body_of(&r[1]);
    assert_string_equal(sfield(j, "kind"), "recovered");
    assert_string_equal(sfield(j, "ticket"), "B");
    json_decref(j);
    h_http_free_copy(r, n);
    assert_true(wait_or_dump(e, "/l1", 4, 3000));
    assert_true(h_wait_hlen(e->c, "wh:outbox", 0, 3000));
}

/* ---- a receiver hanging past its timeout -------------------------------- */

static int
hang_script(void *arg, const char *path, const char *delivery, int attempt)
{
    (void)arg;
    (void)delivery;
    (void)attempt;
    return strcmp(path, "/hang") == 0 ? 0 : 200;
}

static void
test_slow_receiver(void **state)
{
    struct h_env *e = env_start(state,
        "escalations:\n"
        "  - { name: hang, when: breach, notify: [hang] }\n"
        "  - { name: fast, when: breach, notify: [main] }\n"
        "webhooks:\n"
        "  hang: { url: \"http://127.0.0.1:@HTTP@/hang\", timeout: 1500ms,\n"
        "          retry: { attempts: 2, backoff: 100ms, max_backoff: 200ms } }\n"
        "  main: { url: \"http://127.0.0.1:@HTTP@/main\" }\n",
        hang_script, NULL);
    char id[32];
    /* 20 breaches at once: more hanging requests than the webhook's slots. */
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "S-%d", i);
        emit(e, "opened", id);
    }
    h_sleep_ms(1300); /* the first hanging requests are in flight now */
    assert_true(h_http_count(&e->rx, "/hang") >= 1);
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "L-%d", i);
        emit(e, "opened", id);
    }
    assert_true(wait_or_dump(e, "/main", 25, 6000));

    /* Every fast delivery came soon after its deadline, although the hanging
     * webhook held its requests open for 1.5 s. */
    struct h_req *r;
    int n = requests_on(e, "/main", &r);
    assert_int_equal(n, 25);
    for (int i = 0; i < n; i++) {
        json_t *j = body_of(&r[i]);
        int64_t deadline = tfield(j, "deadline");
        if (r[i].at_ms - deadline >= 1000)
            fail_msg("ticket %s delivered %lld ms after its deadline", sfield(j, "ticket"),
                     (long long)(r[i].at_ms - deadline));
        json_decref(j);
    }
    h_http_free_copy(r, n);

    /* And breach detection kept its pace. */
    struct h_entry *ent;
    int ne = h_xrange(e->c, "wh:breaches", &ent);
    int nbreach = 0;
    for (int i = 0; i < ne; i++) {
        if (strcmp(h_field(&ent[i], "kind"), "breach") != 0)
            continue;
        nbreach++;
        long long late = strtoll(h_field(&ent[i], "late_ms"), NULL, 10);
        if (late > 250)
            fail_msg("breach of %s detected %lld ms late", h_field(&ent[i], "ticket"), late);
    }
    assert_int_equal(nbreach, 25);
    h_entries_free(ent, ne);
    /* The hanging webhook's deliveries were timed out and given up. */
    assert_true(h_wait_int(e->c, "wh:stats:deliveries_failed_total", 25, 12000));
}

/* ---- kill -9 while deliveries fail, then a restart ---------------------- */

static volatile int failing = 1;

static int
outage_script(void *arg, const char *path, const char *delivery, int attempt)
{
    (void)arg;
    (void)path;
    (void)delivery;
    (void)attempt;
    return __atomic_load_n(&failing, __ATOMIC_SEQ_CST) ? 503 : 200;
}

/* Distinct delivery ids seen (any status) and answered 200. */
static void
count_ids(struct h_env *e, int *seen, int *ok, char ids[][80], int max)
{
    struct h_req *r;
    int n = requests_on(e, "/flaky", &r), nids = 0;
    *ok = 0;
    bool okd[64] = { false };
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < nids && strcmp(ids[k], r[i].delivery) != 0)
            k++;
        if (k == nids && nids < max)
            snprintf(ids[nids++], 80, "%s", r[i].delivery);
        if (k < max && r[i].status == 200 && !okd[k]) {
            okd[k] = true;
            (*ok)++;
        }
    }
    *seen = nids;
    h_http_free_copy(r, n);
}

static void
test_kill9_restart(void **state)
{
    __atomic_store_n(&failing, 1, __ATOMIC_SEQ_CST);
    struct h_env *e = env_start(state,
        "escalations:\n"
        "  - { name: page, when: breach, notify: [flaky] }\n"
        "webhooks:\n"
        "  flaky: { url: \"http://127.0.0.1:@HTTP@/flaky\", timeout: 1s,\n"
        "           retry: { attempts: 100, backoff: 200ms, max_backoff: 400ms } }\n",
        outage_script, NULL);
    char id[32], ids[64][80];
    int seen = 0, ok = 0;
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "K-%d", i);
        emit(e, "opened", id);
    }
    /* Every notification failed at least twice. */
    assert_true(wait_or_dump(e, "/flaky", 20, 8000));
    for (int waited = 0; waited < 5000 && seen < 10; waited += 50) {
        count_ids(e, &seen, &ok, ids, 64);
        h_sleep_ms(50);
    }
    assert_int_equal(seen, 10);
    assert_int_equal(ok, 0);
    assert_int_equal(h_hlen(e->c, "wh:outbox"), 10);

    assert_int_equal(h_daemon_stop(e->daemon, SIGKILL, 2000), 128 + SIGKILL);
    e->daemon = 0;
    __atomic_store_n(&failing, 0, __ATOMIC_SEQ_CST);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);

    for (int waited = 0; waited < 10000 && ok < 10; waited += 50) {
        count_ids(e, &seen, &ok, ids, 64);
        h_sleep_ms(50);
    }
    if (ok < 10)
        h_dump_file(e->redis.dir, "daemon.log");
    assert_int_equal(ok, 10);     /* none lost */
    h_sleep_ms(500);
    count_ids(e, &seen, &ok, ids, 64);
    assert_int_equal(seen, 10);   /* duplicates only ever repeat an id */
    assert_true(h_wait_hlen(e->c, "wh:outbox", 0, 3000));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_body_signature_order, teardown),
        cmocka_unit_test_teardown(test_retry_and_refusal, teardown),
        cmocka_unit_test_teardown(test_ladder, teardown),
        cmocka_unit_test_teardown(test_slow_receiver, teardown),
        cmocka_unit_test_teardown(test_kill9_restart, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
