/* Redis Sentinel (SPEC section 7) with the real thing: a master, a replica
 * and a trio of redis-sentinel processes; slawatchd configured with
 * redis.sentinels and redis.master_name finds the master through them, and
 * after SENTINEL FAILOVER, while deadlines are due, finds the new one:
 * every breach is recorded there, nothing lost. Also: `slawatchd -t`
 * validates the pair. */
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
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

struct env {
    struct h_redis master, replica;
    int sport[3];
    pid_t spid[3];
    redisContext *c;
};

static const char *
sentinel_bin(void)
{
    return access("/usr/bin/redis-sentinel", X_OK) == 0 ? "redis-sentinel" : NULL;
}

/* A port nobody listens on, from the kernel. */
static int
some_port(void)
{
    struct h_redis probe;
    if (h_redis_start(&probe, NULL) < 0)
        return -1;
    int port = probe.port;
    h_redis_stop(&probe);
    return port;
}

static pid_t
start_sentinel(const char *dir, int i, int port, int master_port)
{
    char path[400], text[1024], logf[400];
    snprintf(path, sizeof(path), "%s/sentinel%d.conf", dir, i);
    snprintf(logf, sizeof(logf), "%s/sentinel%d.log", dir, i);
    snprintf(text, sizeof(text),
             "port %d\nbind 127.0.0.1\ndaemonize no\nlogfile \"%s\"\ndir \"%s\"\n"
             "sentinel monitor sw 127.0.0.1 %d 2\n"
             "sentinel down-after-milliseconds sw 1000\n"
             "sentinel failover-timeout sw 4000\n",
             port, logf, dir, master_port);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        return -1;
    close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("redis-sentinel", "redis-sentinel", path, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    char extra[64];
    if (e == NULL || sentinel_bin() == NULL)
        return -1;
    if (h_redis_start(&e->master, "--repl-diskless-sync-delay 0") < 0)
        return -1;
    snprintf(extra, sizeof(extra), "--replicaof 127.0.0.1 %d --repl-diskless-sync-delay 0",
             e->master.port);
    if (h_redis_start(&e->replica, extra) < 0)
        return -1;
    for (int i = 0; i < 3; i++) {
        e->sport[i] = some_port();
        e->spid[i] = start_sentinel(e->master.dir, i, e->sport[i], e->master.port);
        if (e->spid[i] <= 0)
            return -1;
    }
    e->c = h_connect(e->master.port);
    /* The replica is in sync (its first full sync done). */
    bool up = false;
    for (int waited = 0; waited < 10000 && !up; waited += 100) {
        redisContext *rc = h_connect(e->replica.port);
        redisReply *r = rc ? redisCommand(rc, "INFO replication") : NULL;
        up = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "master_link_status:up");
        if (r)
            freeReplyObject(r);
        if (rc)
            redisFree(rc);
        if (!up)
            h_sleep_ms(100);
    }
    if (!up) {
        fprintf(stderr, "the replica did not sync\n");
        return -1;
    }
    /* The sentinels know the master, the replica and each other. */
    for (int waited = 0; waited < 15000; waited += 200) {
        redisContext *s = h_connect(e->sport[0]);
        int replicas = 0, sentinels = 0;
        if (s) {
            redisReply *r = redisCommand(s, "SENTINEL master sw");
            for (size_t k = 0; r && r->type == REDIS_REPLY_ARRAY && k + 1 < r->elements; k += 2) {
                if (strcmp(r->element[k]->str, "num-slaves") == 0)
                    replicas = atoi(r->element[k + 1]->str);
                if (strcmp(r->element[k]->str, "num-other-sentinels") == 0)
                    sentinels = atoi(r->element[k + 1]->str);
            }
            if (r)
                freeReplyObject(r);
            redisFree(s);
        }
        if (replicas == 1 && sentinels == 2) {
            *state = e;
            return 0;
        }
        h_sleep_ms(200);
    }
    fprintf(stderr, "the sentinels did not settle\n");
    return -1;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    if (e == NULL)
        return 0;
    for (int i = 0; i < 3; i++)
        if (e->spid[i] > 0) {
            kill(e->spid[i], SIGTERM);
            waitpid(e->spid[i], NULL, 0);
        }
    if (e->c)
        redisFree(e->c);
    h_redis_stop(&e->replica);
    h_redis_stop(&e->master);
    free(e);
    return 0;
}

static char *
write_cfg(struct env *e, const char *name, const char *redis_section)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "%s"
             "ha: { lease: 2s }\n"
             "tiers:\n"
             "  quick: { response: 3s }\n",
             redis_section);
    return h_write_file(e->master.dir, name, text);
}

static int
check_config(const char *cfg, char *out, size_t outlen)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/slawatchd -t -c %s 2>&1", h_build_dir(), cfg);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void
test_check_validates_the_pair(void **state)
{
    struct env *e = *state;
    char out[2048];
    char *a = write_cfg(e, "a.yaml", "redis: { sentinels: [\"127.0.0.1:1\"], prefix: \"x:\" }\n");
    assert_int_equal(check_config(a, out, sizeof(out)), 78);
    assert_non_null(strstr(out, "redis.sentinels needs redis.master_name"));
    char *b = write_cfg(e, "b.yaml", "redis: { master_name: sw }\n");
    assert_int_equal(check_config(b, out, sizeof(out)), 78);
    assert_non_null(strstr(out, "redis.master_name needs redis.sentinels"));
    char *c = write_cfg(e, "c.yaml", "redis: { sentinels: [\"nohostport\"], master_name: sw }\n");
    assert_int_equal(check_config(c, out, sizeof(out)), 78);
    assert_non_null(strstr(out, "is not host:port"));
    char *d = write_cfg(e, "d.yaml",
                        "redis: { sentinels: [\"127.0.0.1:2\"], master_name: sw, port: 6379 }\n");
    assert_int_equal(check_config(d, out, sizeof(out)), 78);
    assert_non_null(strstr(out, "exclude each other"));
    char *ok = write_cfg(e, "ok.yaml",
                         "redis: { sentinels: [\"127.0.0.1:2\", \"[::1]:3\"], master_name: sw }\n");
    assert_int_equal(check_config(ok, out, sizeof(out)), 0);
    free(a);
    free(b);
    free(c);
    free(d);
    free(ok);
}

static long long
xlen_at(int port, const char *key)
{
    redisContext *c = h_connect(port);
    long long n = -1;
    if (c == NULL)
        return -1;
    redisReply *r = redisCommand(c, "XLEN %s", key);
    if (r && r->type == REDIS_REPLY_INTEGER)
        n = r->integer;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return n;
}

static void
test_failover_while_deadlines_are_due(void **state)
{
    struct env *e = *state;
    char section[512];
    snprintf(section, sizeof(section),
             "redis: { sentinels: [\"127.0.0.1:%d\", \"127.0.0.1:%d\", \"127.0.0.1:%d\"], "
             "master_name: sw, prefix: \"sn:\" }\n",
             e->sport[0], e->sport[1], e->sport[2]);
    char *cfg = write_cfg(e, "sn.yaml", section);
    pid_t d = h_daemon_start(cfg, e->master.dir);
    assert_true(h_wait_group(e->c, "sn:events", "slawatch", 8000));
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "B%d", i);
        assert_int_equal(h_xadd(e->c, "sn:events", NULL, 0, "type", "opened", "ticket", id,
                                NULL), 0);
    }
    assert_true(h_wait_int(e->c, "sn:stats:events_total", 10, 5000));
    /* Failover with the 3 s deadlines due meanwhile. */
    redisContext *s = h_connect(e->sport[1]);
    assert_non_null(s);
    redisReply *r = redisCommand(s, "SENTINEL FAILOVER sw");
    assert_true(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    bool promoted = false;
    for (int waited = 0; waited < 15000 && !promoted; waited += 100) {
        r = redisCommand(s, "SENTINEL get-master-addr-by-name sw");
        promoted = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                   atoi(r->element[1]->str) == e->replica.port;
        if (r)
            freeReplyObject(r);
        h_sleep_ms(100);
    }
    redisFree(s);
    assert_true(promoted);
    /* Every breach on the new master, once; and events after the failover
     * are read from it. */
    redisContext *nm = h_connect(e->replica.port);
    assert_non_null(nm);
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "A%d", i);
        assert_int_equal(h_xadd(nm, "sn:events", NULL, 0, "type", "opened", "ticket", id,
                                NULL), 0);
    }
    if (!h_wait_xlen(nm, "sn:breaches", 15, 15000)) {
        h_dump_file(e->master.dir, "daemon.log");
        fail_msg("%lld breaches on the new master", xlen_at(e->replica.port, "sn:breaches"));
    }
    struct h_entry *ents;
    int n = h_xrange(nm, "sn:breaches", &ents);
    int b = 0, a = 0;
    for (int i = 0; i < n; i++) {
        const char *t = h_field(&ents[i], "ticket");
        assert_string_equal(h_field(&ents[i], "kind"), "breach");
        if (t[0] == 'B')
            b++;
        else if (t[0] == 'A')
            a++;
    }
    h_entries_free(ents, n);
    assert_int_equal(b, 10);
    assert_int_equal(a, 5);
    assert_int_equal(h_xpending_count(nm, "sn:events", "slawatch"), 0);
    redisFree(nm);
    /* The old master, now a replica, got them by replication, not from
     * the daemon: it refuses writes. */
    assert_true(xlen_at(e->master.port, "sn:breaches") <= 15);
    assert_true(h_daemon_stop(d, SIGTERM, 6000) == 0);
    free(cfg);
}

int
main(void)
{
    if (sentinel_bin() == NULL) {
        /* scripts/deps.sh test installs it (Debian package redis-sentinel). */
        fprintf(stderr, "redis-sentinel is not installed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_check_validates_the_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover_while_deadlines_are_due, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
