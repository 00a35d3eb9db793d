/* The outbox as Redis keeps it, and what the daemon does when that is not
 * what it wrote:
 *
 *   - the record of a failing delivery disappears from Redis (the hash
 *     deleted; the same as a Redis restarted empty or a failover to a
 *     replica that never had it): the daemon still has it in memory,
 *     stores it again at the next attempt, and delivers it once the
 *     receiver is back; likewise when the writer reconnects to a Redis
 *     without it (every record in memory is written again);
 *   - records left by an earlier run with absurd numbers (a due time of
 *     INT64_MAX, a creation time of INT64_MIN, a deadline of INT64_MIN,
 *     more attempts than the webhook allows): the first are due now and
 *     delivered, the others given up, counted and logged; none is left
 *     waiting for ever.
 *
 * Every wait is bounded; counts and orders are asserted. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"

static int failing = 1;

static int
outage_script(void *arg, const char *path, const char *delivery, int attempt)
{
    (void)arg;
    (void)path;
    (void)delivery;
    (void)attempt;
    return __atomic_load_n(&failing, __ATOMIC_SEQ_CST) ? 503 : 200;
}

static int
teardown(void **state)
{
    return h_env_stop(*state);
}

static char *
daemon_log(struct h_env *e)
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

static bool
wait_log(struct h_env *e, const char *text, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        char *log = daemon_log(e);
        bool found = strstr(log, text) != NULL;
        free(log);
        if (found)
            return true;
        h_sleep_ms(50);
    }
    return false;
}

/* Requests answered `status`, and the distinct delivery ids among them. */
static int
answered(struct h_env *e, int status, int *ids)
{
    struct h_req *r;
    int n = h_http_copy(&e->rx, &r), k = 0;
    *ids = 0;
    for (int i = 0; i < n; i++) {
        if (r[i].status != status)
            continue;
        k++;
        int j = 0;
        while (j < i && !(r[j].status == status && strcmp(r[j].delivery, r[i].delivery) == 0))
            j++;
        *ids += j == i;
    }
    h_http_free_copy(r, n);
    return k;
}

/* ---- the record vanishes while its delivery fails ------------------------- */

static void
test_record_lost_while_failing(void **state)
{
    __atomic_store_n(&failing, 1, __ATOMIC_SEQ_CST);
    struct h_env *e = h_env_start(
        "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"ob:\" }\n"
        "tiers:\n  t: { response: 1s }\n"
        "escalations:\n  - { name: page, when: breach, notify: [hook] }\n"
        "webhooks:\n"
        "  hook: { url: \"http://127.0.0.1:@HTTP@/hook\", timeout: 1s,\n"
        "          retry: { attempts: 100, backoff: 200ms, max_backoff: 400ms } }\n"
        "log: { level: info }\n",
        "ob:events", NULL, outage_script, NULL);
    *state = e;
    assert_non_null(e);
    assert_int_equal(h_xadd(e->c, "ob:events", NULL, 0, "type", "opened", "ticket", "V-1",
                            NULL),
                     0);
    assert_true(h_http_wait(&e->rx, "/hook", 2, 8000)); /* failed twice */
    assert_int_equal(h_hlen(e->c, "ob:outbox"), 1);

    /* Redis loses the record. */
    redisReply *r = redisCommand(e->c, "DEL ob:outbox");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    int before = h_http_count(&e->rx, "/hook");

    /* The next failed attempt stores it again (from memory), and says so. */
    assert_true(h_http_wait(&e->rx, "/hook", before + 1, 5000));
    assert_true(h_wait_hlen(e->c, "ob:outbox", 1, 5000));
    assert_true(wait_log(e, "was no longer in Redis; stored again", 3000));

    /* The receiver is back: the notification arrives, once, and only then
     * leaves the outbox. */
    __atomic_store_n(&failing, 0, __ATOMIC_SEQ_CST);
    int ids = 0;
    for (int waited = 0; waited < 5000 && answered(e, 200, &ids) < 1; waited += 50)
        h_sleep_ms(50);
    if (answered(e, 200, &ids) < 1)
        h_dump_file(e->redis.dir, "daemon.log");
    assert_int_equal(answered(e, 200, &ids), 1);
    assert_int_equal(ids, 1);
    assert_true(h_wait_hlen(e->c, "ob:outbox", 0, 3000));
    char *log = daemon_log(e);
    assert_null(strstr(log, "vanished"));
    free(log);
    long long failed = -1;
    assert_true(h_wait_int(e->c, "ob:stats:notifications_pending", 0, 3000));
    assert_true(h_get_int(e->c, "ob:stats:deliveries_failed_total", &failed));
    assert_int_equal(failed, 0);
}

/* ---- the writer reconnects to a Redis without the record ------------------ */

static void
test_record_lost_with_reconnection(void **state)
{
    __atomic_store_n(&failing, 1, __ATOMIC_SEQ_CST);
    /* A long backoff: no retry (which would store it again by itself)
     * comes before the reconnection has done so. */
    struct h_env *e = h_env_start(
        "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"ob:\" }\n"
        "tiers:\n  t: { response: 1s }\n"
        "escalations:\n  - { name: page, when: breach, notify: [hook] }\n"
        "webhooks:\n"
        "  hook: { url: \"http://127.0.0.1:@HTTP@/hook\", timeout: 1s,\n"
        "          retry: { attempts: 100, backoff: 5s, max_backoff: 5s } }\n"
        "log: { level: info }\n",
        "ob:events", NULL, outage_script, NULL);
    *state = e;
    assert_non_null(e);
    assert_int_equal(h_xadd(e->c, "ob:events", NULL, 0, "type", "opened", "ticket", "W-1",
                            NULL),
                     0);
    assert_true(h_http_wait(&e->rx, "/hook", 1, 8000)); /* failed once */
    assert_true(h_wait_hlen(e->c, "ob:outbox", 1, 2000));

    /* As after a failover to a replica that never had it: the record is
     * gone and the daemon's connections are dropped. */
    redisReply *r = redisCommand(e->c, "DEL ob:outbox");
    assert_non_null(r);
    freeReplyObject(r);
    r = redisCommand(e->c, "CLIENT KILL TYPE normal");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer >= 1);
    freeReplyObject(r);
    int requests = h_http_count(&e->rx, "/hook");

    /* Stored again by the reconnection, before any retry. */
    assert_true(h_wait_hlen(e->c, "ob:outbox", 1, 2500));
    assert_int_equal(h_http_count(&e->rx, "/hook"), requests);
    assert_true(wait_log(e, "written again after the reconnection", 2000));
    assert_true(wait_log(e, "was no longer in Redis; stored again", 2000));

    __atomic_store_n(&failing, 0, __ATOMIC_SEQ_CST);
    int ids = 0;
    for (int waited = 0; waited < 8000 && answered(e, 200, &ids) < 1; waited += 50)
        h_sleep_ms(50);
    if (answered(e, 200, &ids) < 1)
        h_dump_file(e->redis.dir, "daemon.log");
    assert_int_equal(answered(e, 200, &ids), 1);
    assert_true(h_wait_hlen(e->c, "ob:outbox", 0, 3000));
}

/* ---- absurd records left by an earlier run ---------------------------------- */

/* A record as hook_note_encode writes it, for webhook "hook", with the
 * given id and numbers (the shared repro file's record, renamed). */
static char *
record(const char *id, const char *ticket, long long deadline_ms, long long created_ms,
       long long due_ms, long long ends_ms, int attempts)
{
    json_t *o = json_pack(
        "{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:I,"
        " s:{s:s}, s:I, s:I, s:I, s:i, s:i}",
        "v", 1, "id", id, "kind", "breach", "webhook", "hook", "escalation", "page",
        "ticket", ticket, "tier", "t", "metric", 0, "cycle", 0, "percent_bp", 0, "opened_ms",
        (json_int_t)1796151594340LL, "deadline_ms", (json_int_t)deadline_ms, "at_ms",
        (json_int_t)1796151600346LL, "late_ms", (json_int_t)6, "attrs", "priority", "urgent",
        "created_ms", (json_int_t)created_ms, "due_ms", (json_int_t)due_ms, "ends_ms",
        (json_int_t)ends_ms, "attempts", attempts, "flags", 0);
    assert_non_null(o);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    assert_non_null(text);
    return text;
}

static void
hset(redisContext *c, const char *id, char *rec)
{
    redisReply *r = redisCommand(c, "HSET ab:outbox %s %s", id, rec);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    free(rec);
}

#define ID_DUE_MAX "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"
#define ID_CREATED "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2"
#define ID_DEADLINE "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3"
#define ID_ATTEMPTS "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4"

static void
test_absurd_records(void **state)
{
    __atomic_store_n(&failing, 0, __ATOMIC_SEQ_CST);
    /* The daemon starts once (creating its group), stops, finds the
     * records in its outbox at the next start. */
    struct h_env *e = h_env_start(
        "redis: { host: 127.0.0.1, port: @REDIS@, prefix: \"ab:\" }\n"
        "tiers:\n  t: { response: 1h }\n"
        "escalations:\n  - { name: page, when: breach, notify: [hook] }\n"
        "webhooks:\n"
        "  hook: { url: \"http://127.0.0.1:@HTTP@/hook\",\n"
        "          retry: { attempts: 5, backoff: 100ms } }\n"
        "log: { level: info }\n",
        "ab:events", NULL, outage_script, NULL);
    *state = e;
    assert_non_null(e);
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;
    const long long now = (long long)h_now_ms();
    hset(e->c, ID_DUE_MAX, record(ID_DUE_MAX, "A-due", now - 5000, now - 1000, INT64_MAX, 0, 1));
    hset(e->c, ID_CREATED,
         record(ID_CREATED, "A-created", now - 5000, INT64_MIN, now - 10, INT64_MAX, 0));
    hset(e->c, ID_DEADLINE, record(ID_DEADLINE, "A-deadline", INT64_MIN, now - 1000, now, 0, 1));
    hset(e->c, ID_ATTEMPTS,
         record(ID_ATTEMPTS, "A-attempts", now - 5000, now - 1000, now, 0, 50));
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);

    /* Due now, both of them, though one said INT64_MAX. */
    bool both = h_http_wait(&e->rx, "/hook", 2, 8000);
    if (!both)
        h_dump_file(e->redis.dir, "daemon.log");
    assert_true(both);
    /* The other two given up, counted, logged; the outbox is empty. */
    assert_true(h_wait_int(e->c, "ab:stats:deliveries_failed_total", 2, 5000));
    assert_true(h_wait_hlen(e->c, "ab:outbox", 0, 3000));
    h_sleep_ms(300);
    struct h_req *r;
    int n = h_http_copy(&e->rx, &r), due = 0, created = 0;
    for (int i = 0; i < n; i++) {
        due += strcmp(r[i].delivery, ID_DUE_MAX) == 0;
        created += strcmp(r[i].delivery, ID_CREATED) == 0;
        assert_string_not_equal(r[i].delivery, ID_DEADLINE);
        assert_string_not_equal(r[i].delivery, ID_ATTEMPTS);
    }
    h_http_free_copy(r, n);
    assert_int_equal(due, 1);
    assert_int_equal(created, 1);
    char *log = daemon_log(e);
    assert_non_null(strstr(log, "record " ID_DEADLINE " is unusable (time out of range)"));
    assert_non_null(strstr(log, ID_ATTEMPTS));
    assert_non_null(strstr(log, "attempts are spent"));
    assert_non_null(strstr(log, "record " ID_DUE_MAX " had a due"));
    free(log);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_record_lost_while_failing, teardown),
        cmocka_unit_test_teardown(test_record_lost_with_reconnection, teardown),
        cmocka_unit_test_teardown(test_absurd_records, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
