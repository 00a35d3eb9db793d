/*
 * lease.c - the leader lease and its fencing token (see lease.h). Owns the
 * "lease" connection, the renewal and roll-call timer, and the watch timer
 * that stops a leader whose lease may have passed to another instance.
 * Must never let a leader act past lease - margin after the last renewal it
 * sent, whatever Redis or the loop did meanwhile (a freeze, a partition):
 * the watch runs at the loop's highest priority, so after a freeze it runs
 * before anything else the loop had pending.
 */
#define _GNU_SOURCE
#include "slawatch/lease.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "slawatch/log.h"
#include "slawatch/rds_sync.h"

#define WATCH_MS 50

/* KEYS: leader, epoch, holder, changes, instances; ARGV: name, lease ms,
 * now ms (for the roll call), the token this process held before it
 * re-executed itself ("0": none). Claims a free lease: the next token, the
 * previous holder; or keeps the lease this very instance still holds under
 * that token. Returns {1, token, previous} or {0, holder, pttl}. The
 * lease's own scripts run even when Redis is out of memory (allow-oom):
 * they write a few bytes, and a leader must not lose its lease to a full
 * Redis that refuses everyone's writes anyway; the fence does not. */
static const char claim_script[] =
    "#!lua flags=allow-oom\n"
    "redis.call('ZADD', KEYS[5], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[3])\n"
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur == ARGV[1] and ARGV[4] ~= '0' and redis.call('GET', KEYS[2]) == ARGV[4] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  return {1, ARGV[4], ARGV[1]} end\n"
    "if cur then return {0, cur, redis.call('PTTL', KEYS[1])} end\n"
    "local token = redis.call('INCR', KEYS[2])\n"
    "local prev = redis.call('GET', KEYS[3]) or ''\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "redis.call('SET', KEYS[3], ARGV[1])\n"
    "redis.call('INCR', KEYS[4])\n"
    "return {1, tostring(token), prev}\n";

/* KEYS: leader, epoch, instances; ARGV: name, token, lease ms, now ms.
 * Renews the holder's lease. When Redis itself lost it (restarted without
 * persistence, or a failover to a replica that had not received it) and
 * nobody claimed it since, the holder takes it again with its own token,
 * which also puts the epoch back: tokens never go backwards. */
static const char renew_script[] =
    "#!lua flags=allow-oom\n"
    "local cur = redis.call('GET', KEYS[1])\n"
    "local epoch = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local mine = tonumber(ARGV[2])\n"
    "if cur == ARGV[1] and epoch == mine then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "elseif cur == false and epoch <= mine then\n"
    "  redis.call('SET', KEYS[2], ARGV[2])\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])\n"
    "else return 0 end\n"
    "redis.call('ZADD', KEYS[3], tonumber(ARGV[4]) + tonumber(ARGV[3]), ARGV[1])\n"
    "return 1\n";

/* KEYS: leader, epoch; ARGV: name, token. */
static const char release_script[] =
    "#!lua flags=allow-oom\n"
    "if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then\n"
    "  return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

/* KEYS: leader, epoch; ARGV: name, token, command, arguments. Runs the
 * command unless another instance holds the lease or has claimed it since
 * this token was issued (a lease Redis lost, which nobody claimed since,
 * still belongs to its holder: its renewal restores it). Lua takes at most about 8000
 * values at once, so the long variadic commands the daemon sends (a
 * compliance round's MSET and DEL) are run in slices. */
const char lease_fence_script[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "local epoch = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "if not ((cur == ARGV[1] and epoch == tonumber(ARGV[2])) or\n"
    "        (cur == false and epoch <= tonumber(ARGV[2]))) then\n"
    "  return redis.error_reply('FENCED this instance no longer holds the lease') end\n"
    "local n = #ARGV\n"
    "if n <= 6002 then return redis.call(unpack(ARGV, 3, n)) end\n"
    "local cmd = string.upper(ARGV[3])\n"
    "if cmd ~= 'MSET' and cmd ~= 'DEL' then\n"
    "  return redis.error_reply('ERR too many arguments to fence ' .. cmd) end\n"
    "local r\n"
    "for i = 4, n, 6000 do r = redis.call(cmd, unpack(ARGV, i, math.min(i + 5999, n))) end\n"
    "return r\n";

struct lease {
    struct event_base *base;
    char name[256];                  /* events.consumer, fixed at start */
    int64_t lease_ms;                /* ha.lease, fixed at start */
    struct lease_hooks hooks;
    struct rds_conn conn;
    struct event *tick_ev;           /* claim or renew */
    struct event *watch_ev;          /* the leader's deadline to stop */
    char key_leader[KEY_MAX], key_epoch[KEY_MAX], key_holder[KEY_MAX];
    char key_changes[KEY_MAX], key_instances[KEY_MAX];
    bool held;
    bool asking;                     /* a claim or renewal in flight */
    bool told_standby;
    uint64_t token;
    char token_s[24];
    char resume_s[24];               /* the token before a re-exec, or "0" */
    char leader[256];                /* as last seen */
    int64_t valid_until_us;          /* monotonic: act no longer than this */
    int64_t asked_us;                /* when the renewal in flight was sent */
    const char *fence_argv[7];
    size_t fence_lens[7];
};

int64_t
lease_margin_ms(int64_t lease_ms)
{
    int64_t m = lease_ms / 5;
    return m < 200 ? 200 : m;
}

static void
arm_tick(struct lease *l, int64_t ms)
{
    if (ms < 20)
        ms = 20;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(l->tick_ev, &tv);
}

static void
fence_setup(struct lease *l)
{
    snprintf(l->token_s, sizeof(l->token_s), "%" PRIu64, l->token);
    const char *v[7] = { "EVAL", lease_fence_script, "2", l->key_leader, l->key_epoch,
                         l->name, l->token_s };
    for (int i = 0; i < 7; i++) {
        l->fence_argv[i] = v[i];
        l->fence_lens[i] = strlen(v[i]);
    }
}

static void
lose(struct lease *l, const char *why)
{
    if (!l->held)
        return;
    l->held = false;
    evtimer_del(l->watch_ev);
    log_err("leader %s: %s: stepping down", l->name, why);
    l->hooks.lost(l->hooks.arg, why);
}

static void
standby(struct lease *l, const char *leader)
{
    bool changed = strcmp(l->leader, leader) != 0;
    snprintf(l->leader, sizeof(l->leader), "%s", leader);
    if (!l->told_standby || changed) {
        l->told_standby = true;
        l->hooks.standby(l->hooks.arg, l->leader);
    }
}

static void
claim_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct lease *l = privdata;
    int64_t lease_ms = l->lease_ms;
    (void)conn;
    l->asking = false;
    if (reply == NULL)
        return; /* connection lost: on_ready claims again */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        log_err("lease: claim on %s: %s", l->key_leader,
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        arm_tick(l, lease_ms / 3);
        return;
    }
    if (reply->element[0]->integer == 1) {
        char *end;
        unsigned long long tok = strtoull(reply->element[1]->str, &end, 10);
        const char *prev = reply->element[2]->type == REDIS_REPLY_STRING
                               ? reply->element[2]->str : "";
        if (*end != '\0' || tok == 0) {
            log_err("lease: bad token %s from %s", reply->element[1]->str, l->key_epoch);
            arm_tick(l, lease_ms / 3);
            return;
        }
        l->held = true;
        l->token = tok;
        l->valid_until_us = l->asked_us + (lease_ms - lease_margin_ms(lease_ms)) * 1000;
        snprintf(l->leader, sizeof(l->leader), "%s", l->name);
        fence_setup(l);
        struct timeval w = { 0, WATCH_MS * 1000 };
        event_add(l->watch_ev, &w);
        arm_tick(l, lease_ms / 3);
        snprintf(l->resume_s, sizeof(l->resume_s), "0");
        l->hooks.acquired(l->hooks.arg, l->token, prev);
        return;
    }
    /* Held by another: ask again when it runs out, and at least every
     * third of the lease (the roll call). */
    long long pttl = reply->element[2]->type == REDIS_REPLY_INTEGER
                         ? reply->element[2]->integer : -1;
    int64_t next = lease_ms / 3;
    if (pttl >= 0 && pttl + 10 < next)
        next = pttl + 10;
    standby(l, reply->element[1]->str);
    arm_tick(l, next);
}

static void
renew_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct lease *l = privdata;
    int64_t lease_ms = l->lease_ms;
    (void)conn;
    l->asking = false;
    if (!l->held)
        return;
    if (reply == NULL)
        return; /* the watch decides if the connection does not return in time */
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        int64_t until = l->asked_us + (lease_ms - lease_margin_ms(lease_ms)) * 1000;
        if (until > l->valid_until_us)
            l->valid_until_us = until;
        return;
    }
    if (reply->type == REDIS_REPLY_INTEGER)
        lose(l, "the lease was taken over (renewal refused)");
    else
        log_err("lease: renewal: %s", reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                       : "unexpected reply");
}

static void
ask(struct lease *l)
{
    char lease_ms[24], now_ms[24];
    if (l->asking || !rds_ready(&l->conn))
        return;
    snprintf(lease_ms, sizeof(lease_ms), "%" PRId64, l->lease_ms);
    snprintf(now_ms, sizeof(now_ms), "%" PRId64, now_wall_ms());
    l->asked_us = now_mono_us();
    int rc;
    if (l->held) {
        const char *argv[] = { "EVAL", renew_script, "3", l->key_leader, l->key_epoch,
                               l->key_instances, l->name, l->token_s,
                               lease_ms, now_ms };
        rc = rds_send(&l->conn, renew_cb, l, (int)ARRAY_LEN(argv), argv, NULL);
    } else {
        const char *argv[] = { "EVAL", claim_script, "5", l->key_leader, l->key_epoch,
                               l->key_holder, l->key_changes, l->key_instances,
                               l->name, lease_ms, now_ms, l->resume_s };
        rc = rds_send(&l->conn, claim_cb, l, (int)ARRAY_LEN(argv), argv, NULL);
    }
    if (rc == 0)
        l->asking = true;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lease *l = arg;
    (void)fd;
    (void)what;
    ask(l);
    arm_tick(l, l->lease_ms / 3); /* a standby's claim answer may ask sooner */
}

static void
watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lease *l = arg;
    (void)fd;
    (void)what;
    if (!l->held)
        return;
    if (now_mono_us() > l->valid_until_us) {
        lose(l, "the lease was not renewed in time");
        return;
    }
    struct timeval w = { 0, WATCH_MS * 1000 };
    event_add(l->watch_ev, &w);
}

static void
on_ready(struct rds_conn *conn, void *arg)
{
    struct lease *l = arg;
    (void)conn;
    l->asking = false;
    ask(l);
}

struct lease *
lease_new(struct event_base *base, const struct config *cfg, const struct lease_hooks *hooks)
{
    struct lease *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->base = base;
    snprintf(l->name, sizeof(l->name), "%s", cfg->events.consumer);
    /* A leader that re-executed itself to start afresh (the Redis master
     * changed) keeps its lease: lease_resume_env() passed the token. */
    const char *resume = getenv(LEASE_RESUME_ENV);
    snprintf(l->resume_s, sizeof(l->resume_s), "%s",
             resume && strspn(resume, "0123456789") == strlen(resume) && *resume ? resume
                                                                                  : "0");
    unsetenv(LEASE_RESUME_ENV);
    l->lease_ms = cfg->ha.lease_ms;
    l->hooks = *hooks;
    const char *p = cfg->redis.prefix;
    snprintf(l->key_leader, KEY_MAX, "%sleader", p);
    snprintf(l->key_epoch, KEY_MAX, "%sleader:epoch", p);
    snprintf(l->key_holder, KEY_MAX, "%sleader:holder", p);
    snprintf(l->key_changes, KEY_MAX, "%sstats:leader_changes_total", p);
    snprintf(l->key_instances, KEY_MAX, "%sinstances", p);
    l->tick_ev = evtimer_new(base, tick_cb, l);
    l->watch_ev = evtimer_new(base, watch_cb, l);
    if (l->tick_ev == NULL || l->watch_ev == NULL || event_priority_set(l->watch_ev, 0) < 0 ||
        rds_init(&l->conn, base, &cfg->redis, "lease", on_ready, NULL, l) < 0) {
        lease_free(l);
        return NULL;
    }
    return l;
}

void
lease_free(struct lease *l)
{
    if (l == NULL)
        return;
    if (l->conn.base)
        rds_close(&l->conn);
    if (l->tick_ev)
        event_free(l->tick_ev);
    if (l->watch_ev)
        event_free(l->watch_ev);
    free(l);
}

void
lease_start(struct lease *l)
{
    rds_start(&l->conn);
    arm_tick(l, l->lease_ms / 3);
}

void
lease_release(struct lease *l)
{
    char err[256];
    if (!l->held)
        return;
    l->held = false;
    evtimer_del(l->watch_ev);
    redisContext *c = rds_connect_sync(&l->conn.cfg, 500, 500, err, sizeof(err));
    if (c == NULL) {
        log_warnx("lease not released (%s): a standby takes over when it runs out", err);
        return;
    }
    const char *argv[] = { "EVAL", release_script, "2", l->key_leader, l->key_epoch,
                           l->name, l->token_s };
    redisReply *r = redisCommandArgv(c, (int)ARRAY_LEN(argv), argv, NULL);
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        log_info("lease released");
    else
        log_warnx("lease not released: %s", r && r->type == REDIS_REPLY_ERROR ? r->str
                                                                               : "not held");
    if (r)
        freeReplyObject(r);
    redisFree(c);
}

void
lease_refused(struct lease *l)
{
    lose(l, "Redis refused a write (fenced: another instance holds the lease)");
}

void
lease_resume_env(const struct lease *l)
{
    if (l->held)
        setenv(LEASE_RESUME_ENV, l->token_s, 1);
}

bool
lease_problem(const struct lease *l, char *buf, size_t len)
{
    return rds_problem(&l->conn, buf, len);
}

bool
lease_held(const struct lease *l)
{
    return l->held && now_mono_us() <= l->valid_until_us;
}

uint64_t
lease_token(const struct lease *l)
{
    return l->token;
}

const char *
lease_leader(const struct lease *l)
{
    return l->leader;
}

void
lease_fence_argv(const struct lease *l, const char ***argv, const size_t **lens, int *n)
{
    *argv = (const char **)l->fence_argv;
    *lens = l->fence_lens;
    *n = 7;
}
