/* Integration tests of `when: objective` escalations: the real slawatchd
 * against a private redis-server and the harness's loopback HTTP receiver.
 * Targets are one second and compliance is published every second, so a
 * handful of unanswered tickets drives the 1h response ratio below the
 * objective (0.9) and enough answered ones bring it back.
 *
 *   - exactly one `objective` webhook per matching (tier, metric, window)
 *     (an escalation without `tiers` hears the tier and `all`, one with
 *     `tiers: [fast]` only the tier, one filtered to `resolution` nothing),
 *     with the body fields, headers and signature of ticket notifications,
 *     then exactly one `recovered` each; a 503 is retried with the same
 *     delivery id; a level with `after` fires only after its delay, and one
 *     whose violation recovers first sends nothing at all;
 *   - alertmanager (re-sent while violated, then endsAt), pagerduty
 *     (trigger, resolve, one dedup key) and slack bodies;
 *   - kill -9 while the receiver fails: after the restart the violation is
 *     delivered under the same id and is not notified twice, and its
 *     recovery carries the same episode;
 *   - a named objective next to compliance.objective over two windows: an
 *     escalation filtered by `objectives` and `windows` hears only that
 *     objective over that window, an unfiltered one every series of both,
 *     one filtered by `windows` only the shorthand's 24h series; the
 *     state and threshold keys, the stream records with and without
 *     `name`; a graceful restart keeps the state and the episode (no
 *     second notification, the recovery of episode 1); a KPI objective
 *     that holds stays silent;
 *   - a KPI objective with a max (reopen_rate) end to end: reopens push it
 *     above, it fires after two publishes (json and slack bodies with the
 *     name, the KPI, value, threshold and direction; the record with `kpi`
 *     and no counts; the state key), and first resolutions bring it back
 *     to its max, where it recovers after three.
 *
 * Every wait is bounded; only loopback addresses are used. */
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
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "harness.h"
#include "slawatch/util.h"

#define SECRET "objective-secret"
#define BREACHED 3 /* unanswered tickets: the ratio drops to 1/4 */
#define MET_MORE 30 /* answered ones: back to 31/34 = 0.911764 */

static const char *base_yaml =
    "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"ob:\" }\n"
    "events: { batch: 100, max_clock_skew: 1m }\n"
    "tiers:\n"
    "  fast: { response: 1s, resolution: 1h }\n"
    "policies:\n"
    "  - { tier: fast }\n"
    "compliance: { publish_every: 1s, windows: [1h], objective: 0.9 }\n"
    "state: { checkpoint_every: 1s }\n"
    "log: { level: debug }\n";

static struct h_env *
env_start(void **state, const char *extra, h_http_script_fn *script, void *arg)
{
    static const char *const secrets[] = { "secret", SECRET "\n", "pd.key", "PDROUTINGKEY\n", NULL };
    char yaml[8192];
    snprintf(yaml, sizeof(yaml), "%s%s", base_yaml, extra);
    struct h_env *e = h_env_start(yaml, "ob:events", secrets, script, arg);
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
    assert_int_equal(h_xadd(e->c, "ob:events", NULL, 0, "type", type, "ticket", ticket,
                            NULL),
                     0);
}

/* BREACHED tickets left unanswered, after one answered and resolved (so
 * that the resolution ratio is published too, and healthy). */
static void
drive_below(struct h_env *e)
{
    char id[32];
    emit(e, "opened", "OK-0");
    emit(e, "responded", "OK-0");
    emit(e, "resolved", "OK-0");
    for (int i = 0; i < BREACHED; i++) {
        snprintf(id, sizeof(id), "LATE-%d", i);
        emit(e, "opened", id);
    }
}

static void
drive_back(struct h_env *e)
{
    char id[32];
    for (int i = 0; i < MET_MORE; i++) {
        snprintf(id, sizeof(id), "MET-%d", i);
        emit(e, "opened", id);
        emit(e, "responded", id);
    }
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

static long long
ifield(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return json_integer_value(v);
}

static double
nfield(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_number(v))
        fail_msg("%s is not a number", key);
    return json_number_value(v);
}

static int64_t
tfield(json_t *j, const char *key)
{
    const char *s = sfield(j, key);
    int64_t ms;
    assert_int_equal(strlen(s), 24); /* YYYY-MM-DDTHH:MM:SS.mmmZ */
    assert_int_equal(ts_parse(s, strlen(s), &ms), 0);
    return ms;
}

/* Requests on one path, in arrival order (free with h_http_free_copy). */
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

/* The json body of an objective notification, field by field. */
static void
check_json(const struct h_req *r, const char *kind, const char *escalation, bool signed_)
{
    static const char *const keys[] = { "version", "kind", "delivery", "escalation",
                                        "tier", "metric", "window", "ratio",
                                        "objective", "met", "breached", "at",
                                        "episode" };
    json_t *j = body_of(r);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (json_object_get(j, keys[i]) == NULL)
            fail_msg("%s: no %s in %s", r->path, keys[i], r->body);
    assert_int_equal(json_object_size(j), sizeof(keys) / sizeof(keys[0]));
    assert_int_equal(ifield(j, "version"), 1);
    assert_string_equal(sfield(j, "kind"), kind);
    assert_string_equal(r->content_type, "application/json");
    assert_int_equal(strlen(r->delivery), 32);
    assert_string_equal(sfield(j, "delivery"), r->delivery);
    assert_string_equal(sfield(j, "escalation"), escalation);
    assert_string_equal(sfield(j, "metric"), "response");
    assert_string_equal(sfield(j, "window"), "1h");
    assert_true(nfield(j, "objective") == 0.9);
    long long met = ifield(j, "met"), breached = ifield(j, "breached");
    double ratio = nfield(j, "ratio");
    assert_int_equal(breached, BREACHED);
    if (strcmp(kind, "objective") == 0) {
        assert_int_equal(met, 1);
        assert_true(ratio == 0.25);
    } else {
        assert_int_equal(met, 1 + MET_MORE);
        assert_true(ratio == 0.911764); /* truncated to six decimals, as published */
    }
    assert_int_equal(ifield(j, "episode"), 1);
    /* Decided by a publish before the request (its retries, a level's
     * `after` and a restart come later). */
    int64_t at = tfield(j, "at");
    assert_true(at <= r->at_ms + 50 && at >= r->at_ms - 15000);
    long long ts = strtoll(r->timestamp, NULL, 10);
    assert_true(ts * 1000 >= r->at_ms - 5000 && ts * 1000 <= r->at_ms + 5000);
    if (signed_)
        check_signature(r);
    else
        assert_string_equal(r->signature, "");
    json_decref(j);
}

static const char *
tier_of(const struct h_req *r)
{
    static char tier[64];
    json_t *j = body_of(r);
    snprintf(tier, sizeof(tier), "%s", sfield(j, "tier"));
    json_decref(j);
    return tier;
}

/* ---- json: who hears what, retries, `after` ------------------------------ */

static int
flaky_script(void *arg, const char *path, const char *delivery, int attempt)
{
    (void)arg;
    (void)delivery;
    /* Every delivery to /flaky fails once, then succeeds. */
    return strcmp(path, "/flaky") == 0 && attempt == 1 ? 503 : 200;
}

static void
test_json_objective(void **state)
{
    struct h_env *e = env_start(state,
        "escalations:\n"
        "  - { name: slo-all, when: objective, metric: response, notify: [main] }\n"
        "  - { name: slo-fast, when: objective, tiers: [fast], notify: [flaky] }\n"
        "  - { name: slo-resolution, when: objective, metric: resolution, notify: [res] }\n"
        "  - { name: slo-later, when: objective, tiers: [fast], after: 1500ms,\n"
        "      notify: [later] }\n"
        "  - { name: slo-never, when: objective, tiers: [fast], after: 1h, notify: [never] }\n"
        "webhooks:\n"
        "  main: { url: \"http://127.0.0.1:@HTTP@/main\", secret_file: secret }\n"
        "  flaky: { url: \"http://127.0.0.1:@HTTP@/flaky\",\n"
        "           retry: { attempts: 5, backoff: 200ms, max_backoff: 1s } }\n"
        "  res: { url: \"http://127.0.0.1:@HTTP@/res\" }\n"
        "  later: { url: \"http://127.0.0.1:@HTTP@/later\" }\n"
        "  never: { url: \"http://127.0.0.1:@HTTP@/never\" }\n",
        flaky_script, NULL);
    drive_below(e);
    /* Breach at 1 s, below at two publishes in a row: about 3 s. */
    assert_true(wait_or_dump(e, "/main", 2, 10000));
    assert_true(wait_or_dump(e, "/flaky", 2, 5000));
    assert_true(wait_or_dump(e, "/later", 1, 5000));
    h_sleep_ms(1500); /* room for a duplicate */

    struct h_req *r;
    int n = requests_on(e, "/main", &r);
    assert_int_equal(n, 2); /* fast and all, once each */
    int64_t first_seen = r[0].at_ms < r[1].at_ms ? r[0].at_ms : r[1].at_ms;
    bool fast = false, all = false;
    for (int i = 0; i < n; i++) {
        check_json(&r[i], "objective", "slo-all", true);
        fast |= strcmp(tier_of(&r[i]), "fast") == 0;
        all |= strcmp(tier_of(&r[i]), "all") == 0;
    }
    assert_true(fast && all);
    assert_string_not_equal(r[0].delivery, r[1].delivery);
    h_http_free_copy(r, n);

    /* tiers: [fast]: the tier's series only; the 503 retried, same id and
     * body. */
    n = requests_on(e, "/flaky", &r);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].status, 503);
    assert_int_equal(r[1].status, 200);
    assert_int_equal(r[1].attempt, 2);
    assert_string_equal(r[0].delivery, r[1].delivery);
    assert_string_equal(r[0].body, r[1].body);
    for (int i = 0; i < n; i++) {
        check_json(&r[i], "objective", "slo-fast", false);
        assert_string_equal(tier_of(&r[i]), "fast");
    }
    char flaky_id[80];
    snprintf(flaky_id, sizeof(flaky_id), "%s", r[0].delivery);
    h_http_free_copy(r, n);

    /* `after: 1500ms`: later, and still the first violation. */
    n = requests_on(e, "/later", &r);
    assert_int_equal(n, 1);
    check_json(&r[0], "objective", "slo-later", false);
    assert_true(r[0].at_ms - first_seen >= 1200);
    h_http_free_copy(r, n);
    assert_int_equal(h_http_count(&e->rx, "/res"), 0);
    assert_int_equal(h_http_count(&e->rx, "/never"), 0);
    /* The 1h level waits in the outbox. */
    assert_true(h_wait_hlen(e->c, "ob:outbox", 1, 3000));
    assert_true(h_wait_int(e->c, "ob:stats:notifications_pending", 1, 3000));

    /* Back at or above: three publishes in a row. */
    drive_back(e);
    assert_true(wait_or_dump(e, "/main", 4, 12000));
    assert_true(wait_or_dump(e, "/flaky", 4, 5000));
    assert_true(wait_or_dump(e, "/later", 2, 5000));
    h_sleep_ms(1500);

    n = requests_on(e, "/main", &r);
    assert_int_equal(n, 4);
    fast = all = false;
    for (int i = 2; i < n; i++) {
        check_json(&r[i], "recovered", "slo-all", true);
        fast |= strcmp(tier_of(&r[i]), "fast") == 0;
        all |= strcmp(tier_of(&r[i]), "all") == 0;
        for (int k = 0; k < 2; k++)
            assert_string_not_equal(r[i].delivery, r[k].delivery);
    }
    assert_true(fast && all);
    h_http_free_copy(r, n);
    n = requests_on(e, "/flaky", &r);
    assert_int_equal(n, 4);
    assert_string_equal(r[2].delivery, r[3].delivery);
    assert_string_not_equal(r[2].delivery, flaky_id);
    check_json(&r[3], "recovered", "slo-fast", false);
    h_http_free_copy(r, n);
    n = requests_on(e, "/later", &r);
    check_json(&r[1], "recovered", "slo-later", false);
    h_http_free_copy(r, n);

    /* The filtered escalations heard nothing; the 1h level was cancelled
     * by the recovery, without a word. */
    assert_int_equal(h_http_count(&e->rx, "/res"), 0);
    assert_int_equal(h_http_count(&e->rx, "/never"), 0);
    assert_true(h_wait_hlen(e->c, "ob:outbox", 0, 3000));
    assert_true(h_wait_int(e->c, "ob:stats:notifications_pending", 0, 3000));

    /* The transitions were recorded as well: objective and recovered for
     * fast and all. */
    struct h_entry *ent;
    int ne = h_xrange(e->c, "ob:objectives", &ent);
    assert_int_equal(ne, 4);
    h_entries_free(ent, ne);
}

/* ---- alertmanager, pagerduty, slack ------------------------------------ */

static void
test_other_formats(void **state)
{
    struct h_env *e = env_start(state,
        "escalations:\n"
        "  - { name: slo, when: objective, tiers: [fast], metric: response,\n"
        "      notify: [am, pd, chat, quiet] }\n"
        "webhooks:\n"
        "  am: { url: \"http://127.0.0.1:@HTTP@/am\", format: alertmanager, resend: 1s }\n"
        "  pd: { url: \"http://127.0.0.1:@HTTP@/pd\", format: pagerduty,\n"
        "        routing_key_file: pd.key }\n"
        "  chat: { url: \"http://127.0.0.1:@HTTP@/chat\", format: slack }\n"
        "  quiet: { url: \"http://127.0.0.1:@HTTP@/quiet\", send_resolved: false }\n",
        NULL, NULL);
    drive_below(e);
    assert_true(wait_or_dump(e, "/pd", 1, 10000));
    assert_true(wait_or_dump(e, "/chat", 1, 5000));
    assert_true(wait_or_dump(e, "/quiet", 1, 5000));
    /* Alertmanager hears it again every `resend` while it holds. */
    assert_true(wait_or_dump(e, "/am", 3, 6000));

    struct h_req *r;
    int n = requests_on(e, "/am", &r);
    assert_true(n >= 3);
    for (int i = 0; i < n; i++) {
        json_t *j = body_of(&r[i]);
        assert_true(json_is_array(j) && json_array_size(j) == 1);
        json_t *a = json_array_get(j, 0), *l = json_object_get(a, "labels");
        assert_string_equal(sfield(l, "alertname"), "SLAObjective");
        assert_string_equal(sfield(l, "tier"), "fast");
        assert_string_equal(sfield(l, "metric"), "response");
        assert_string_equal(sfield(l, "window"), "1h");
        assert_string_equal(sfield(l, "severity"), "critical");
        assert_string_equal(r[i].delivery, r[0].delivery); /* one alert */
        assert_null(json_object_get(a, "endsAt"));
        assert_true(tfield(a, "startsAt") <= r[0].at_ms);
        if (i > 0)
            assert_true(r[i].at_ms - r[i - 1].at_ms >= 700);
        json_decref(j);
    }
    char am_id[80];
    snprintf(am_id, sizeof(am_id), "%s", r[0].delivery);
    h_http_free_copy(r, n);

    n = requests_on(e, "/pd", &r);
    assert_int_equal(n, 1);
    json_t *j = body_of(&r[0]);
    assert_string_equal(sfield(j, "routing_key"), "PDROUTINGKEY");
    assert_string_equal(sfield(j, "event_action"), "trigger");
    assert_string_equal(sfield(j, "dedup_key"), "slawatch/objective/fast/response/1h/1");
    json_t *d = json_object_get(json_object_get(j, "payload"), "custom_details");
    assert_string_equal(sfield(d, "kind"), "objective");
    assert_true(nfield(d, "ratio") == 0.25);
    json_decref(j);
    h_http_free_copy(r, n);

    n = requests_on(e, "/chat", &r);
    assert_int_equal(n, 1);
    j = body_of(&r[0]);
    assert_int_equal(json_object_size(j), 1);
    assert_string_equal(sfield(j, "text"),
                        "SLA objective: tier fast response compliance over 1h is 0.25 "
                        "(1 met, 3 breached), below the objective 0.9 (escalation slo)");
    json_decref(j);
    h_http_free_copy(r, n);

    drive_back(e);
    assert_true(wait_or_dump(e, "/pd", 2, 12000));
    assert_true(wait_or_dump(e, "/chat", 2, 5000));
    /* The alert ends within a request's time of the recovery. */
    int64_t back = h_now_ms();
    bool ended = false;
    for (int waited = 0; waited < 5000 && !ended; waited += 50) {
        n = requests_on(e, "/am", &r);
        j = body_of(&r[n - 1]);
        json_t *a = json_array_get(j, 0);
        if (json_object_get(a, "endsAt")) {
            ended = true;
            assert_string_equal(r[n - 1].delivery, am_id);
            assert_true(tfield(a, "endsAt") >= tfield(a, "startsAt"));
            assert_true(r[n - 1].at_ms - back < 2000);
        }
        json_decref(j);
        h_http_free_copy(r, n);
        if (!ended)
            h_sleep_ms(50);
    }
    assert_true(ended);

    n = requests_on(e, "/pd", &r);
    j = body_of(&r[1]);
    assert_int_equal(json_object_size(j), 3);
    assert_string_equal(sfield(j, "event_action"), "resolve");
    assert_string_equal(sfield(j, "dedup_key"), "slawatch/objective/fast/response/1h/1");
    json_decref(j);
    h_http_free_copy(r, n);
    n = requests_on(e, "/chat", &r);
    j = body_of(&r[1]);
    assert_non_null(strstr(sfield(j, "text"), "SLA objective recovered: tier fast"));
    json_decref(j);
    h_http_free_copy(r, n);

    /* send_resolved: false: no recovered. And the alert is not re-sent
     * after its end. */
    h_sleep_ms(1500);
    assert_int_equal(h_http_count(&e->rx, "/quiet"), 1);
    n = h_http_count(&e->rx, "/am");
    h_sleep_ms(1500);
    assert_int_equal(h_http_count(&e->rx, "/am"), n);
    assert_true(h_wait_hlen(e->c, "ob:outbox", 0, 3000));
}

/* ---- kill -9 while the receiver fails ----------------------------------- */

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

static void
test_restart_keeps_id(void **state)
{
    __atomic_store_n(&failing, 1, __ATOMIC_SEQ_CST);
    struct h_env *e = env_start(state,
        "escalations:\n"
        "  - { name: slo, when: objective, tiers: [fast], notify: [main] }\n"
        "webhooks:\n"
        "  main: { url: \"http://127.0.0.1:@HTTP@/main\", secret_file: secret,\n"
        "          retry: { attempts: 100, backoff: 200ms, max_backoff: 400ms } }\n",
        outage_script, NULL);
    drive_below(e);
    assert_true(wait_or_dump(e, "/main", 2, 10000));
    h_sleep_ms(2500); /* a checkpoint (every second) after the violation */
    struct h_req *r;
    int n = requests_on(e, "/main", &r);
    char id[80];
    snprintf(id, sizeof(id), "%s", r[0].delivery);
    for (int i = 0; i < n; i++) {
        assert_int_equal(r[i].status, 503);
        assert_string_equal(r[i].delivery, id);
    }
    h_http_free_copy(r, n);
    assert_int_equal(h_hlen(e->c, "ob:outbox"), 1);

    assert_int_equal(h_daemon_stop(e->daemon, SIGKILL, 2000), 128 + SIGKILL);
    e->daemon = 0;
    int before = h_http_count(&e->rx, "/main");
    __atomic_store_n(&failing, 0, __ATOMIC_SEQ_CST);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(wait_or_dump(e, "/main", before + 1, 10000));
    h_sleep_ms(3000); /* several publishes: the violation is not fired anew */

    n = requests_on(e, "/main", &r);
    assert_int_equal(n, before + 1);
    assert_int_equal(r[n - 1].status, 200);
    assert_string_equal(r[n - 1].delivery, id);
    check_json(&r[n - 1], "objective", "slo", true);
    h_http_free_copy(r, n);
    assert_true(h_wait_hlen(e->c, "ob:outbox", 0, 3000));

    /* Its recovery still names the first violation. */
    drive_back(e);
    assert_true(wait_or_dump(e, "/main", before + 2, 12000));
    n = requests_on(e, "/main", &r);
    check_json(&r[n - 1], "recovered", "slo", true);
    assert_string_not_equal(r[n - 1].delivery, id);
    h_http_free_copy(r, n);
}

/* ---- named objectives and the filters ------------------------------------ */

static const char *named_yaml =
    "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"ob:\" }\n"
    "events: { batch: 100, max_clock_skew: 1m }\n"
    "tiers:\n"
    "  fast: { response: 1s, resolution: 1h }\n"
    "policies:\n"
    "  - { tier: fast }\n"
    "compliance: { publish_every: 1s, windows: [1h, 24h], objective: 0.9 }\n"
    "objectives:\n"
    "  - { name: answered, metric: response, windows: [1h], min: 0.8 }\n"
    "  - { name: reopens, kpi: reopen_rate, max: 0.05 }\n"
    "state: { checkpoint_every: 1s }\n"
    "log: { level: debug }\n"
    "escalations:\n"
    "  - { name: page, when: objective, objectives: [answered], windows: [1h],\n"
    "      notify: [page] }\n"
    "  - { name: every, when: objective, notify: [every] }\n"
    "  - { name: day, when: objective, windows: [24h], notify: [day] }\n"
    "  - { name: kpis, when: objective, objectives: [reopens], notify: [kpis] }\n"
    "  - { name: wrong-metric, when: objective, objectives: [answered],\n"
    "      metric: resolution, notify: [wrong] }\n"
    "webhooks:\n"
    "  page: { url: \"http://127.0.0.1:@HTTP@/page\" }\n"
    "  every: { url: \"http://127.0.0.1:@HTTP@/every\" }\n"
    "  day: { url: \"http://127.0.0.1:@HTTP@/day\" }\n"
    "  kpis: { url: \"http://127.0.0.1:@HTTP@/kpis\" }\n"
    "  wrong: { url: \"http://127.0.0.1:@HTTP@/wrong\" }\n";

/* A string key's value ("" when absent). */
static const char *
sget(struct h_env *e, const char *key)
{
    static char buf[64];
    redisReply *r = redisCommand(e->c, "GET %s", key);
    buf[0] = '\0';
    if (r && r->type == REDIS_REPLY_STRING)
        snprintf(buf, sizeof(buf), "%s", r->str);
    if (r)
        freeReplyObject(r);
    return buf;
}

static bool
wait_value(struct h_env *e, const char *key, const char *want, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (strcmp(sget(e, key), want) == 0)
            return true;
        h_sleep_ms(50);
    }
    fprintf(stderr, "%s is '%s', wanted '%s'\n", key, sget(e, key), want);
    return false;
}

/* A named objective's json body, field by field. */
static void
check_named_json(const struct h_req *r, const char *kind, const char *escalation)
{
    static const char *const keys[] = { "version", "kind", "delivery", "escalation", "name",
                                        "metric", "tier", "window", "value", "threshold",
                                        "direction", "met", "breached", "at", "episode" };
    json_t *j = body_of(r);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (json_object_get(j, keys[i]) == NULL)
            fail_msg("%s: no %s in %s", r->path, keys[i], r->body);
    assert_int_equal(json_object_size(j), sizeof(keys) / sizeof(keys[0]));
    assert_string_equal(sfield(j, "kind"), kind);
    assert_string_equal(sfield(j, "escalation"), escalation);
    assert_string_equal(sfield(j, "delivery"), r->delivery);
    assert_string_equal(sfield(j, "name"), "answered");
    assert_string_equal(sfield(j, "metric"), "response");
    assert_string_equal(sfield(j, "window"), "1h");
    assert_true(nfield(j, "threshold") == 0.8);
    assert_string_equal(sfield(j, "direction"), "min");
    assert_int_equal(ifield(j, "breached"), BREACHED);
    if (strcmp(kind, "objective") == 0) {
        assert_true(nfield(j, "value") == 0.25);
        assert_int_equal(ifield(j, "met"), 1);
    } else {
        assert_true(nfield(j, "value") == 0.911764);
        assert_int_equal(ifield(j, "met"), 1 + MET_MORE);
    }
    assert_int_equal(ifield(j, "episode"), 1);
    json_decref(j);
}

/* Of the requests on `path`, how many are about the named objective, and
 * how many about the shorthand, with this kind; each body sane. */
static void
count_bodies(struct h_env *e, const char *path, const char *kind, int *named, int *shorthand)
{
    struct h_req *r;
    int n = requests_on(e, path, &r);
    *named = *shorthand = 0;
    for (int i = 0; i < n; i++) {
        json_t *j = body_of(&r[i]);
        if (strcmp(sfield(j, "kind"), kind) == 0) {
            if (json_object_get(j, "name") != NULL) {
                (*named)++;
                check_named_json(&r[i], kind, sfield(j, "escalation"));
            } else {
                (*shorthand)++;
                /* compliance.objective's body, as it has always been. */
                assert_int_equal(json_object_size(j), 13);
                assert_true(nfield(j, "objective") == 0.9);
                assert_true(nfield(j, "ratio") == (strcmp(kind, "objective") ? 0.911764 : 0.25));
                assert_int_equal(ifield(j, "episode"), 1);
            }
        }
        json_decref(j);
    }
    h_http_free_copy(r, n);
}

static void
test_named_objectives(void **state)
{
    struct h_env *e = h_env_start(named_yaml, "ob:events", NULL, NULL, NULL);
    *state = e;
    if (e == NULL)
        fail_msg("daemon did not start");
    /* The thresholds are published before anything happens. */
    assert_true(wait_value(e, "ob:objective:answered", "0.8", 5000));
    assert_string_equal(sget(e, "ob:objective:reopens"), "0.05");
    assert_string_equal(sget(e, "ob:objective"), "0.9");
    assert_string_equal(sget(e, "ob:objective:answered:fast:1h"), ""); /* nothing yet */

    drive_below(e);
    /* answered over 1h, fast and all: the filtered page; every series of
     * both objectives: the unfiltered one (shorthand: fast and all, 1h and
     * 24h); the shorthand's 24h series: day. */
    assert_true(wait_or_dump(e, "/page", 2, 10000));
    assert_true(wait_or_dump(e, "/every", 6, 5000));
    assert_true(wait_or_dump(e, "/day", 2, 5000));
    h_sleep_ms(1500); /* room for a duplicate */
    int named, shorthand;
    count_bodies(e, "/page", "objective", &named, &shorthand);
    assert_int_equal(named, 2);
    assert_int_equal(shorthand, 0);
    assert_int_equal(h_http_count(&e->rx, "/page"), 2);
    count_bodies(e, "/every", "objective", &named, &shorthand);
    assert_int_equal(named, 2);
    assert_int_equal(shorthand, 4);
    assert_int_equal(h_http_count(&e->rx, "/every"), 6);
    assert_int_equal(h_http_count(&e->rx, "/day"), 2);
    struct h_req *r;
    int n = requests_on(e, "/day", &r);
    for (int i = 0; i < n; i++) {
        json_t *j = body_of(&r[i]);
        assert_null(json_object_get(j, "name"));
        assert_string_equal(sfield(j, "window"), "24h");
        json_decref(j);
    }
    h_http_free_copy(r, n);
    /* The page's two series are fast's and all's, with ids of their own
     * (and none equal to the shorthand's for the same series). */
    n = requests_on(e, "/page", &r);
    bool fast = false, all = false;
    for (int i = 0; i < n; i++) {
        fast |= strcmp(tier_of(&r[i]), "fast") == 0;
        all |= strcmp(tier_of(&r[i]), "all") == 0;
    }
    assert_true(fast && all);
    assert_string_not_equal(r[0].delivery, r[1].delivery);
    h_http_free_copy(r, n);
    assert_int_equal(h_http_count(&e->rx, "/kpis"), 0);  /* reopens holds */
    assert_int_equal(h_http_count(&e->rx, "/wrong"), 0); /* answered measures response */

    /* The states: violated where judged, absent where nothing is counted
     * (the KPI) or not covered (answered over 24h). */
    assert_true(wait_value(e, "ob:objective:answered:fast:1h", "1", 3000));
    assert_string_equal(sget(e, "ob:objective:answered:all:1h"), "1");
    assert_string_equal(sget(e, "ob:objective:answered:fast:24h"), "");
    /* reopens: OK-0's first resolution, not reopened: judged, met. */
    assert_string_equal(sget(e, "ob:objective:reopens:all:1h"), "0");
    assert_string_equal(sget(e, "ob:objective:reopens:fast:1h"), "0");
    /* The records: the shorthand's as before, without a name; the named
     * one's with it. */
    struct h_entry *ent;
    int ne = h_xrange(e->c, "ob:objectives", &ent);
    int nnamed = 0, nshort = 0;
    for (int i = 0; i < ne; i++) {
        assert_string_equal(h_field(&ent[i], "kind"), "objective");
        if (h_field(&ent[i], "name") == NULL) {
            nshort++;
            assert_non_null(h_field(&ent[i], "ratio"));
            assert_string_equal(h_field(&ent[i], "objective"), "0.9");
            assert_null(h_field(&ent[i], "value"));
            continue;
        }
        nnamed++;
        assert_string_equal(h_field(&ent[i], "name"), "answered");
        assert_string_equal(h_field(&ent[i], "metric"), "response");
        assert_string_equal(h_field(&ent[i], "window"), "1h");
        assert_string_equal(h_field(&ent[i], "value"), "0.25");
        assert_string_equal(h_field(&ent[i], "min"), "0.8");
        assert_null(h_field(&ent[i], "max"));
        assert_null(h_field(&ent[i], "ratio"));
        assert_string_equal(h_field(&ent[i], "met"), "1");
        assert_string_equal(h_field(&ent[i], "breached"), "3");
        assert_non_null(h_field(&ent[i], "at_ms"));
    }
    assert_int_equal(nnamed, 2);
    assert_int_equal(nshort, 4);
    h_entries_free(ent, ne);

    /* A graceful restart: the states and episodes come back from the
     * checkpoint; nothing is notified again. */
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(h_wait_group(e->c, "ob:events", "slawatch", 5000));
    h_sleep_ms(3000); /* several publishes */
    assert_string_equal(sget(e, "ob:objective:answered:fast:1h"), "1");
    assert_int_equal(h_http_count(&e->rx, "/page"), 2);
    assert_int_equal(h_http_count(&e->rx, "/every"), 6);
    assert_int_equal(h_http_count(&e->rx, "/day"), 2);
    assert_true(h_count_lines(e->redis.dir, "daemon.log", "objective states restored") >= 1);

    /* Back: three publishes at or above. Each escalation hears the
     * recoveries of what it heard, episode 1. */
    drive_back(e);
    assert_true(wait_or_dump(e, "/page", 4, 12000));
    assert_true(wait_or_dump(e, "/every", 12, 5000));
    assert_true(wait_or_dump(e, "/day", 4, 5000));
    h_sleep_ms(1500);
    count_bodies(e, "/page", "recovered", &named, &shorthand);
    assert_int_equal(named, 2);
    assert_int_equal(shorthand, 0);
    count_bodies(e, "/every", "recovered", &named, &shorthand);
    assert_int_equal(named, 2);
    assert_int_equal(shorthand, 4);
    assert_int_equal(h_http_count(&e->rx, "/page"), 4);
    assert_int_equal(h_http_count(&e->rx, "/every"), 12);
    assert_int_equal(h_http_count(&e->rx, "/day"), 4);
    assert_int_equal(h_http_count(&e->rx, "/kpis"), 0);
    assert_int_equal(h_http_count(&e->rx, "/wrong"), 0);
    assert_true(wait_value(e, "ob:objective:answered:fast:1h", "0", 3000));
    assert_string_equal(sget(e, "ob:objective:answered:all:1h"), "0");
    ne = h_xrange(e->c, "ob:objectives", &ent);
    assert_int_equal(ne, 12);
    h_entries_free(ent, ne);
}

/* ---- a KPI objective end to end ----------------------------------------- */

static const char *kpi_yaml =
    "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"ob:\" }\n"
    "events: { batch: 100, max_clock_skew: 1m }\n"
    "tiers:\n"
    "  fast: { response: 1h, resolution: 1d }\n"
    "policies:\n"
    "  - { tier: fast }\n"
    "compliance: { publish_every: 1s, windows: [1h] }\n"
    "objectives:\n"
    "  - { name: reopens, kpi: reopen_rate, tiers: [all], max: 0.05 }\n"
    "state: { checkpoint_every: 1s }\n"
    "log: { level: debug }\n"
    "escalations:\n"
    "  - { name: kpi-page, when: objective, objectives: [reopens], notify: [kpi, chat] }\n"
    "  - { name: ratios, when: objective, metric: response, notify: [ratios] }\n"
    "webhooks:\n"
    "  kpi: { url: \"http://127.0.0.1:@HTTP@/kpi\" }\n"
    "  chat: { url: \"http://127.0.0.1:@HTTP@/chat\", format: slack }\n"
    "  ratios: { url: \"http://127.0.0.1:@HTTP@/ratios\" }\n";

static void
resolve_new(struct h_env *e, const char *prefix, int n)
{
    char id[32];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        emit(e, "opened", id);
        emit(e, "responded", id);
        emit(e, "resolved", id);
    }
}

static void
check_kpi_json(const struct h_req *r, const char *kind, double value)
{
    static const char *const keys[] = { "version", "kind", "delivery", "escalation", "name",
                                        "kpi", "tier", "window", "value", "threshold",
                                        "direction", "at", "episode" };
    json_t *j = body_of(r);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (json_object_get(j, keys[i]) == NULL)
            fail_msg("%s: no %s in %s", r->path, keys[i], r->body);
    assert_int_equal(json_object_size(j), sizeof(keys) / sizeof(keys[0]));
    assert_string_equal(sfield(j, "kind"), kind);
    assert_string_equal(sfield(j, "escalation"), "kpi-page");
    assert_string_equal(sfield(j, "name"), "reopens");
    assert_string_equal(sfield(j, "kpi"), "reopen_rate");
    assert_string_equal(sfield(j, "tier"), "all");
    assert_string_equal(sfield(j, "window"), "1h");
    assert_true(nfield(j, "value") == value);
    assert_true(nfield(j, "threshold") == 0.05);
    assert_string_equal(sfield(j, "direction"), "max");
    assert_int_equal(ifield(j, "episode"), 1);
    json_decref(j);
}

static void
test_kpi_objective(void **state)
{
    struct h_env *e = h_env_start(kpi_yaml, "ob:events", NULL, NULL, NULL);
    *state = e;
    if (e == NULL)
        fail_msg("daemon did not start");
    /* Two first resolutions, one reopened since: 0.5, above 0.05. */
    resolve_new(e, "A", 2);
    emit(e, "reopened", "A-0");
    assert_true(wait_or_dump(e, "/kpi", 1, 10000));
    assert_true(wait_or_dump(e, "/chat", 1, 5000));
    h_sleep_ms(1500);
    assert_int_equal(h_http_count(&e->rx, "/kpi"), 1); /* all only, once */
    struct h_req *r;
    int n = requests_on(e, "/kpi", &r);
    check_kpi_json(&r[0], "objective", 0.5);
    h_http_free_copy(r, n);
    n = requests_on(e, "/chat", &r);
    json_t *j = body_of(&r[0]);
    assert_string_equal(sfield(j, "text"),
                        "SLA objective reopens: all tiers reopen_rate over 1h is 0.5, above "
                        "its max 0.05 (escalation kpi-page)");
    json_decref(j);
    h_http_free_copy(r, n);
    assert_string_equal(sget(e, "ob:objective:reopens:all:1h"), "1");
    assert_string_equal(sget(e, "ob:objective:reopens"), "0.05");
    assert_string_equal(sget(e, "ob:objective:reopens:fast:1h"), ""); /* not covered */
    struct h_entry *ent;
    int ne = h_xrange(e->c, "ob:objectives", &ent);
    int named = 0;
    for (int i = 0; i < ne; i++) {
        if (h_field(&ent[i], "name") == NULL)
            continue;
        named++;
        assert_string_equal(h_field(&ent[i], "kind"), "objective");
        assert_string_equal(h_field(&ent[i], "kpi"), "reopen_rate");
        assert_string_equal(h_field(&ent[i], "tier"), "all");
        assert_string_equal(h_field(&ent[i], "value"), "0.5");
        assert_string_equal(h_field(&ent[i], "max"), "0.05");
        assert_null(h_field(&ent[i], "metric"));
        assert_null(h_field(&ent[i], "met"));
    }
    assert_int_equal(named, 1);
    h_entries_free(ent, ne);

    /* 18 more first resolutions: 1 of 20, exactly the max, which is not
     * above it: recovered after three publishes. */
    resolve_new(e, "B", 18);
    assert_true(wait_or_dump(e, "/kpi", 2, 12000));
    assert_true(wait_or_dump(e, "/chat", 2, 5000));
    h_sleep_ms(1500);
    n = requests_on(e, "/kpi", &r);
    assert_int_equal(n, 2);
    check_kpi_json(&r[1], "recovered", 0.05);
    assert_string_not_equal(r[0].delivery, r[1].delivery);
    h_http_free_copy(r, n);
    assert_string_equal(sget(e, "ob:objective:reopens:all:1h"), "0");
    assert_string_equal(sget(e, "ob:kpi:all:reopen_rate:1h"), "0.05");
    /* The response ratios held all along (no breach): nothing for them, and
     * metric: response never hears a KPI objective. */
    assert_int_equal(h_http_count(&e->rx, "/ratios"), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_json_objective, teardown),
        cmocka_unit_test_teardown(test_other_formats, teardown),
        cmocka_unit_test_teardown(test_restart_keeps_id, teardown),
        cmocka_unit_test_teardown(test_named_objectives, teardown),
        cmocka_unit_test_teardown(test_kpi_objective, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
