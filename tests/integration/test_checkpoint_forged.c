/* A checkpoint is data, never code: <prefix>state is forged here (built
 * with state_encode, CRC and all, as anyone who can write the key could)
 * with pending writes that are not the daemon's: a SET outside the prefix,
 * MULTI, SUBSCRIBE, two commands in one record of the 0.1.0 raw section, a
 * key outside the prefix, a truncated record. The daemon starts, refuses
 * each one (logged and counted), runs none of them, sends the writes that
 * are its own, and keeps working. */
#define _GNU_SOURCE
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

#include "harness.h"
#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/state.h"
#include "slawatch/wire.h"

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
    char text[512];
    *state = e;
    if (h_redis_start(&e->redis, NULL) < 0 || (e->c = h_connect(e->redis.port)) == NULL)
        return -1;
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"fc:\" }\n"
             "tiers:\n  t: { response: 1h }\n",
             e->redis.port);
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    return e->cfg ? 0 : -1;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    if (e->daemon > 0)
        h_daemon_stop(e->daemon, SIGKILL, 2000);
    if (e->c)
        redisFree(e->c);
    if (getenv("SLAWATCH_TEST_VERBOSE"))
        h_dump_file(e->redis.dir, "daemon.log");
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return 0;
}

static int64_t
clock_fn(void *arg)
{
    (void)arg;
    return h_now_ms();
}

/* A WRT2 record from a NULL-terminated argument list. */
static void
put_args(struct wire_buf *b, ...)
{
    const char *argv[16];
    size_t lens[16], n = 0;
    va_list ap;
    va_start(ap, b);
    for (const char *s = va_arg(ap, const char *); s && n < 16; s = va_arg(ap, const char *)) {
        argv[n] = s;
        lens[n] = strlen(s);
        n++;
    }
    va_end(ap);
    state_write_put(b, n, argv, lens);
}

/* A record of the 0.1.0 raw section: u32 length, then the bytes as given. */
static void
put_raw(struct wire_buf *b, const char *resp)
{
    wire_put_u32(b, (uint32_t)strlen(resp));
    wire_put(b, resp, strlen(resp));
}

static bool
exists(struct env *e, const char *key)
{
    redisReply *r = redisCommand(e->c, "EXISTS %s", key);
    bool yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject(r);
    return yes;
}

static void
test_forged_writes_refused(void **state)
{
    struct env *e = *state;
    struct config *cfg = cfg_load(e->cfg, stderr);
    assert_non_null(cfg);
    struct core *core = core_new(cfg, clock_fn, NULL, NULL);
    assert_non_null(core);

    struct wire_buf w2, w1, blob;
    wire_init(&w2);
    wire_init(&w1);
    wire_init(&blob);
    /* Structured records (WRT2). */
    put_args(&w2, "SET", "other:x", "1", NULL);                 /* not ours */
    put_args(&w2, "MULTI", NULL);                               /* not ours */
    put_args(&w2, "SUBSCRIBE", "fc:chan", NULL);                /* not ours */
    put_args(&w2, "XADD", "other:stream", "*", "a", "b", NULL); /* outside the prefix */
    put_args(&w2, "DEL", "fc:gauge", "other:y", NULL);          /* one key outside */
    put_args(&w2, "XADD", "fc:breaches", "*", "kind", "breach", "ticket", "new-format",
             NULL);                                            /* ours: sent */
    wire_put_u32(&w2, 3);                                      /* truncated record */
    wire_put_u32(&w2, 100);
    /* Raw RESP records of 0.1.0 (WRTS). */
    put_raw(&w1, "*3\r\n$3\r\nSET\r\n$7\r\nother:x\r\n$1\r\n2\r\n");
    put_raw(&w1, "*1\r\n$5\r\nMULTI\r\n");
    put_raw(&w1, "*2\r\n$9\r\nSUBSCRIBE\r\n$7\r\nfc:chan\r\n");
    put_raw(&w1, "*5\r\n$4\r\nXADD\r\n$11\r\nfc:breaches\r\n$1\r\n*\r\n$1\r\na\r\n$1\r\nb\r\n"
                 "*3\r\n$3\r\nSET\r\n$7\r\nother:z\r\n$1\r\n1\r\n"); /* two in one */
    put_raw(&w1, "*3\r\n$3\r\nSET\r\n$7\r\nother:x\r\n$99\r\n1\r\n"); /* lies about a length */
    put_raw(&w1, "*7\r\n$4\r\nXADD\r\n$11\r\nfc:breaches\r\n$1\r\n*\r\n$4\r\nkind\r\n"
                 "$6\r\nbreach\r\n$6\r\nticket\r\n$10\r\nold-format\r\n"); /* ours: sent */
    assert_false(w1.oom || w2.oom);
    struct state_meta meta = { .saved_ms = h_now_ms(), .core_now_ms = h_now_ms() };
    struct state_section sec[] = {
        { STATE_SECTION_WRITES_RESP, w1.data, w1.len },
        { STATE_SECTION_WRITES, w2.data, w2.len },
    };
    assert_int_equal(state_encode(core, &meta, sec, 2, &blob), 0);
    const char *argv[] = { "SET", "fc:state", blob.data };
    size_t lens[] = { 3, 8, blob.len };
    redisReply *r = redisCommandArgv(e->c, 3, argv, lens);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    wire_free(&w1);
    wire_free(&w2);
    wire_free(&blob);
    core_free(core);
    cfg_free(cfg);

    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(h_wait_group(e->c, "fc:events", "slawatch", 5000));
    /* Its own writes went out, in order; nothing else ran. */
    assert_true(h_wait_xlen(e->c, "fc:breaches", 2, 5000));
    struct h_entry *ent;
    int n = h_xrange(e->c, "fc:breaches", &ent);
    assert_int_equal(n, 2);
    assert_string_equal(h_field(&ent[0], "ticket"), "old-format");
    assert_string_equal(h_field(&ent[1], "ticket"), "new-format");
    h_entries_free(ent, n);
    assert_false(exists(e, "other:x"));
    assert_false(exists(e, "other:z"));
    assert_false(exists(e, "other:y"));
    assert_false(exists(e, "other:stream"));
    /* Refused, logged and counted: five raw, five structured and the
     * truncated one. */
    assert_true(h_wait_int(e->c, "fc:stats:checkpoint_writes_refused_total", 11, 3000));
    assert_int_equal(h_count_lines(e->redis.dir, "daemon.log", "refused: command not allowed"), 6);
    assert_int_equal(h_count_lines(e->redis.dir, "daemon.log", "refused: a key outside the prefix"),
                     2);
    assert_int_equal(h_count_lines(e->redis.dir, "daemon.log",
                                   "refused: more than one command in one record"),
                     1);
    assert_int_equal(h_count_lines(e->redis.dir, "daemon.log", "refused: not a bulk string"), 1);
    assert_int_equal(h_count_lines(e->redis.dir, "daemon.log", "refused: malformed record"), 1);

    /* And it keeps working: an event is applied, writes are not QUEUED. */
    assert_int_equal(h_xadd(e->c, "fc:events", NULL, 0, "type", "opened", "ticket", "T1",
                            NULL), 0);
    assert_true(h_wait_int(e->c, "fc:open:t", 1, 5000));
    assert_true(h_wait_int(e->c, "fc:stats:events_total", 1, 3000));
    assert_int_equal(h_xpending_count(e->c, "fc:events", "slawatch"), 0);
    assert_int_equal(kill(e->daemon, 0), 0);
    assert_int_equal(h_daemon_stop(e->daemon, SIGTERM, 5000), 0);
    e->daemon = 0;

    /* The checkpoint it leaves holds no foreign write either: a restart
     * refuses nothing. */
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    assert_true(h_wait_int(e->c, "fc:open:t", 1, 5000));
    assert_true(h_wait_int(e->c, "fc:stats:checkpoint_writes_refused_total", 0, 3000));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forged_writes_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
