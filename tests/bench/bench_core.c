/*
 * bench_core.c - throughput, memory and timer-accuracy figures of the real
 * slawatchd against a private redis-server (tests/integration/harness.c):
 *
 *   1. ingest:   the daemon's rate when it starts on a pre-filled stream
 *                of N `opened` events, against a plain XREADGROUP+XACK
 *                client draining the same stream in the same run;
 *   2. rss:      resident bytes per open ticket with N tickets open, over a
 *                baseline daemon on an empty stream;
 *   3. lateness: B more tickets whose deadlines fall within one window on
 *                top of the N open ones, measured from the daemon's own
 *                at_ms/deadline_ms stamps in <prefix>breaches;
 *   4. stop:     SIGTERM to exit with everything open (SPEC: within 5 s);
 *   5. ingest live: the steady-state consumer-group path, a running daemon
 *                catching up on N events, against the same raw rate.
 *
 * docs/benchmarks.md describes each step and the figures measured.
 *
 * Each figure is printed with its target; a missed target says MISSED but
 * does not fail the run. The exit status is non-zero only when something
 * did not work (a process, a time-out, wrong counts). Every wait is
 * bounded, and the daemons and redis-server are stopped on every path,
 * including SIGINT/SIGTERM. Sizes come from the environment:
 *
 *   BENCH_TICKETS    open tickets (default 1000000)
 *   BENCH_BURST      tickets with deadlines in the window (default 100000)
 *   BENCH_WINDOW_MS  width of the deadline window (default 1000)
 *   BENCH_LEAD_MS    from sending the burst to the window (default 3000)
 *   BENCH_BATCH      events.batch and the raw client's COUNT (default 1000)
 *   BENCH_LOG_LEVEL  the daemon's log.level (default: the daemon's default)
 *   BENCH_CHECKPOINT_EVERY  the daemon's state.checkpoint_every (default:
 *                    the daemon's default)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../integration/harness.h"

#define TARGET_RATIO 0.80
#define TARGET_RSS_BYTES 200.0
#define TARGET_P99_MS 20
#define TARGET_STOP_S 5.0
#define TARGET_READY_S 2.0
#define BURST_TARGET_MS 5000 /* tiers.burst.response below */
#define PIPELINE 10000       /* XADDs per pipelined round trip */
#define POLL_MS 20
#define XRANGE_CHUNK 10000
#define GROUP "slawatch"
#define RAW_GROUP "raw"
#define PREFIX "b:"
#define BASE_PREFIX "e:"
#define LIVE_PREFIX "l:"

/* ---- process bookkeeping: everything started is stopped ---------------- */

static struct h_redis redis_srv;
static volatile pid_t daemon_pid;
static volatile pid_t base_pid;
static int failures;

static void
on_signal(int sig)
{
    /* Only async-signal-safe calls; the temporary directory stays. */
    if (daemon_pid > 0)
        kill(daemon_pid, SIGKILL);
    if (base_pid > 0)
        kill(base_pid, SIGKILL);
    if (redis_srv.pid > 0)
        kill(redis_srv.pid, SIGKILL);
    _exit(128 + sig);
}

static void
fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_core: FAILED: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
    failures++;
}

/* Stops a daemon with SIGTERM (SIGKILL after 6 s); returns its status. */
static int
stop_daemon(volatile pid_t *pid)
{
    int rc = 0;
    if (*pid > 0)
        rc = h_daemon_stop(*pid, SIGTERM, 6000);
    *pid = 0;
    return rc;
}

/* False once the process has exited (it is then reaped and *pid cleared). */
static bool
alive(volatile pid_t *pid, const char *what)
{
    int status;
    if (*pid <= 0)
        return false;
    if (waitpid(*pid, &status, WNOHANG) == *pid) {
        fail("%s exited unexpectedly (status %d)", what,
             WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        *pid = 0;
        return false;
    }
    return true;
}

/* ---- small helpers ------------------------------------------------------ */

static long
env_long(const char *name, long def, long min, long max)
{
    const char *s = getenv(name);
    char *end;
    if (s == NULL || *s == '\0')
        return def;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) {
        fprintf(stderr, "bench_core: %s=%s ignored (want %ld..%ld)\n", name, s,
                min, max);
        return def;
    }
    return v;
}

static int64_t
mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double
secs_since(int64_t start_us)
{
    return (double)(mono_us() - start_us) / 1e6;
}

/* Resident set of a process in bytes (VmRSS), or -1. */
static long long
vm_rss(pid_t pid)
{
    char path[64], line[256];
    long long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* User plus system CPU time of a process (0 for this one) in seconds, or
 * -1. */
static double
cpu_secs(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long utime, stime;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid ? (int)pid : (int)getpid());
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    /* Fields 14 and 15, counted after the parenthesised command name. */
    const char *p = strrchr(buf, ')');
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static const char *
verdict(bool met)
{
    return met ? "" : " MISSED";
}

/* A generous connection for bulk work: long replies, long pipelines. */
static redisContext *
bulk_connect(int port)
{
    redisContext *c = h_connect(port);
    struct timeval tv = { 30, 0 };
    if (c)
        redisSetTimeout(c, tv);
    return c;
}

/* Writes everything buffered on c. Returns 0 or -1. */
static int
flush_out(redisContext *c)
{
    int done = 0;
    do {
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return -1;
    } while (!done);
    return 0;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile (pct of 1..100) of a sorted array. */
static int64_t
percentile(const int64_t *sorted, size_t n, unsigned pct)
{
    if (n == 0)
        return 0;
    size_t rank = (pct * n + 99) / 100;
    return sorted[rank < 1 ? 0 : rank - 1];
}

static uint64_t
xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- consumer group state ----------------------------------------------- */

struct group_state {
    bool found;
    long long pending;
    long long entries_read;  /* -1 when Redis does not know */
    long long lag;           /* -1 when Redis does not know */
    char last_id[48];
};

/* XINFO GROUPS for one group. Returns 0 (gs->found says whether it exists)
 * or -1 when the command failed. */
static int
group_state(redisContext *c, const char *stream, const char *group,
            struct group_state *gs)
{
    memset(gs, 0, sizeof(*gs));
    gs->entries_read = gs->lag = -1;
    redisReply *r = redisCommand(c, "XINFO GROUPS %s", stream);
    if (r == NULL) {
        fprintf(stderr, "XINFO GROUPS %s: %s\n", stream, c->errstr);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        /* No stream yet is "no group", anything else an error. */
        int rc = r->type == REDIS_REPLY_ERROR && strstr(r->str, "no such key") ? 0 : -1;
        if (rc < 0)
            fprintf(stderr, "XINFO GROUPS %s: reply type %d %s\n", stream, r->type,
                    r->type == REDIS_REPLY_ERROR ? r->str : "");
        freeReplyObject(r);
        return rc;
    }
    for (size_t g = 0; g < r->elements && !gs->found; g++) {
        redisReply *grp = r->element[g];
        struct group_state cur = { .entries_read = -1, .lag = -1 };
        bool mine = false;
        if (grp->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t i = 0; i + 1 < grp->elements; i += 2) {
            const redisReply *k = grp->element[i], *v = grp->element[i + 1];
            if (k->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(k->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
                mine = strcmp(v->str, group) == 0;
            else if (strcmp(k->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                cur.pending = v->integer;
            else if (strcmp(k->str, "entries-read") == 0 && v->type == REDIS_REPLY_INTEGER)
                cur.entries_read = v->integer;
            else if (strcmp(k->str, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                cur.lag = v->integer;
            else if (strcmp(k->str, "last-delivered-id") == 0 &&
                     v->type == REDIS_REPLY_STRING)
                snprintf(cur.last_id, sizeof(cur.last_id), "%s", v->str);
        }
        if (mine) {
            *gs = cur;
            gs->found = true;
        }
    }
    freeReplyObject(r);
    return 0;
}

/* The group has delivered everything up to last_id and has nothing pending:
 * its lag is 0 (compared by ID, which holds even where Redis cannot compute
 * the lag field) and every read entry was acknowledged. */
static bool
group_drained(const struct group_state *gs, const char *last_id)
{
    return gs->found && gs->pending == 0 && strcmp(gs->last_id, last_id) == 0;
}

/* Polls until the group is drained up to last_id. Returns the wall time in
 * ms when it was first seen drained, or -1 on time-out, error or a dead
 * daemon. */
static int64_t
wait_drained(redisContext *c, const char *stream, const char *group,
             const char *last_id, int64_t timeout_ms, volatile pid_t *pid)
{
    int64_t until = h_now_ms() + timeout_ms;
    struct group_state gs;
    for (;;) {
        if (group_state(c, stream, group, &gs) < 0) {
            fail("XINFO GROUPS %s failed", stream);
            return -1;
        }
        if (group_drained(&gs, last_id))
            return h_now_ms();
        if (!alive(pid, "slawatchd"))
            return -1;
        if (h_now_ms() > until) {
            fail("group %s not drained after %lld ms (pending %lld, last %s, want %s)",
                 group, (long long)timeout_ms, gs.pending, gs.last_id, last_id);
            return -1;
        }
        h_sleep_ms(POLL_MS);
    }
}

/* ---- filling the stream --------------------------------------------------- */

/* Appends n events of `type` for tickets "<idprefix><i>" with the given
 * tier (NULL: no tier field), pipelined PIPELINE at a time. ts[i] is each
 * event's time, or the current time when ts is NULL. The last entry's ID
 * goes to last_id. Returns 0 or -1. */
static int
xadd_events(redisContext *c, const char *stream, const char *type, const char *idprefix,
            const char *tier, long n, const int64_t *ts, char *last_id, size_t last_len)
{
    char ticket[64], tsbuf[24];
    for (long base = 0; base < n; base += PIPELINE) {
        long end = base + PIPELINE < n ? base + PIPELINE : n;
        int64_t now = h_now_ms();
        for (long i = base; i < end; i++) {
            int tl = snprintf(ticket, sizeof(ticket), "%s%07ld", idprefix, i);
            int sl = snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts ? ts[i] : now);
            const char *argv[] = { "XADD", stream, "*", "type", type, "ticket",
                                   ticket, "ts", tsbuf, "tier", tier };
            size_t lens[] = { 4, strlen(stream), 1, 4, strlen(type), 6, (size_t)tl, 2,
                              (size_t)sl, 4, tier ? strlen(tier) : 0 };
            if (redisAppendCommandArgv(c, tier ? 11 : 9, argv, lens) != REDIS_OK)
                return -1;
        }
        for (long i = base; i < end; i++) {
            void *rep = NULL;
            if (redisGetReply(c, &rep) != REDIS_OK || rep == NULL)
                return -1;
            redisReply *r = rep;
            bool ok = r->type == REDIS_REPLY_STRING;
            if (ok && i == n - 1)
                snprintf(last_id, last_len, "%s", r->str);
            freeReplyObject(r);
            if (!ok)
                return -1;
        }
    }
    return 0;
}

static int
xadd_opened(redisContext *c, const char *stream, const char *idprefix,
            const char *tier, long n, const int64_t *ts, char *last_id,
            size_t last_len)
{
    return xadd_events(c, stream, "opened", idprefix, tier, n, ts, last_id, last_len);
}

/* ---- 1. raw drain ----------------------------------------------------------- */

/* Reads the XACK replies that have arrived (all of them when wait is
 * true). Returns 0 or -1. */
static int
collect_acks(redisContext *c, long *outstanding, long long *acked, bool wait)
{
    while (*outstanding > 0) {
        void *rep = NULL;
        if (redisGetReplyFromReader(c, &rep) != REDIS_OK)
            return -1;
        if (rep == NULL) {
            struct pollfd p = { .fd = c->fd, .events = POLLIN };
            if (!wait && poll(&p, 1, 0) <= 0)
                return 0;
            if (redisBufferRead(c) != REDIS_OK)
                return -1;
            continue;
        }
        redisReply *r = rep;
        bool ok = r->type == REDIS_REPLY_INTEGER;
        if (ok)
            *acked += r->integer;
        freeReplyObject(r);
        if (!ok)
            return -1;
        (*outstanding)--;
    }
    return 0;
}

static const redisReply *
entries_of(const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1)
        return NULL;
    const redisReply *s = reply->element[0];
    if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 ||
        s->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    return s->element[1];
}

/*
 * The best a consumer can do without applying anything, shaped like the
 * daemon's reader/writer pair: XREADGROUP COUNT batch on one connection;
 * on each reply, the XACK of that batch goes out on a second connection
 * and the next XREADGROUP at once, without waiting for the XACK's answer.
 * Returns the seconds from the first read to the last acknowledgement, or
 * -1.
 */
static double
raw_drain(int port, const char *stream, long n, long batch)
{
    redisContext *rd = bulk_connect(port), *wr = bulk_connect(port);
    const char **argv = malloc(((size_t)batch + 3) * sizeof(*argv));
    size_t *lens = malloc(((size_t)batch + 3) * sizeof(*lens));
    char count[24];
    long got = 0, outstanding = 0;
    long long acked = 0;
    double secs = -1;

    if (rd == NULL || wr == NULL || argv == NULL || lens == NULL)
        goto out;
    redisReply *r = redisCommand(rd, "XGROUP CREATE %s %s 0", stream, RAW_GROUP);
    bool created = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    if (!created)
        goto out;
    snprintf(count, sizeof(count), "%ld", batch);
    const char *rargv[] = { "XREADGROUP", "GROUP", RAW_GROUP, "bench", "COUNT",
                            count, "BLOCK", "2000", "STREAMS", stream, ">" };

    int64_t t0 = mono_us();
    if (redisAppendCommandArgv(rd, 11, rargv, NULL) != REDIS_OK || flush_out(rd) < 0)
        goto out;
    while (got < n) {
        void *rep = NULL;
        if (redisGetReply(rd, &rep) != REDIS_OK || rep == NULL)
            goto out;
        const redisReply *ents = entries_of(rep);
        size_t k = ents ? ents->elements : 0;
        if (k == 0) {
            freeReplyObject(rep);
            fprintf(stderr, "raw drain: stream ended after %ld of %ld\n", got, n);
            goto out;
        }
        int argc = 0;
        argv[argc] = "XACK", lens[argc++] = 4;
        argv[argc] = stream, lens[argc++] = strlen(stream);
        argv[argc] = RAW_GROUP, lens[argc++] = strlen(RAW_GROUP);
        for (size_t i = 0; i < k && argc < batch + 3; i++) {
            const redisReply *id = ents->element[i]->element[0];
            argv[argc] = id->str, lens[argc++] = id->len;
        }
        if (redisAppendCommandArgv(wr, argc, argv, lens) != REDIS_OK || flush_out(wr) < 0) {
            freeReplyObject(rep);
            goto out;
        }
        outstanding++;
        got += (long)k;
        if (got < n && (redisAppendCommandArgv(rd, 11, rargv, NULL) != REDIS_OK ||
                        flush_out(rd) < 0)) {
            freeReplyObject(rep);
            goto out;
        }
        freeReplyObject(rep);
        if (collect_acks(wr, &outstanding, &acked, false) < 0)
            goto out;
    }
    if (collect_acks(wr, &outstanding, &acked, true) < 0)
        goto out;
    secs = secs_since(t0);
    if (acked != n) {
        fprintf(stderr, "raw drain: %lld of %ld acknowledged\n", acked, n);
        secs = -1;
    }
out:
    free(argv);
    free(lens);
    if (rd)
        redisFree(rd);
    if (wr)
        redisFree(wr);
    return secs;
}

/* ---- configuration ----------------------------------------------------------- */

static int bench_failover(redisContext *c, const char *maindir, long held);

/* events.consumer of the next configuration written (NULL: the default,
 * the host name): the failover step's standby needs a name of its own. */
static const char *next_consumer;

/* events.allowed_lateness of the daemons (BENCH_LATENESS_MS, default 0): a
 * breach is then decided that long after its deadline, and the lateness
 * figure is measured beyond it. */
static long
allowed_lateness_ms(void)
{
    const char *s = getenv("BENCH_LATENESS_MS");
    long v = s && *s ? strtol(s, NULL, 10) : 0;
    return v > 0 ? v : 0;
}

static char *
write_config(const char *dir, const char *name, int port, const char *prefix,
             long batch)
{
    char text[1024];
    const char *level = getenv("BENCH_LOG_LEVEL");
    const char *every = getenv("BENCH_CHECKPOINT_EVERY");
    char extra[160] = "";
    long lateness = allowed_lateness_ms();
    if (level && *level)
        snprintf(extra, sizeof(extra), "log: { level: %s }\n", level);
    if (every && *every)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
                 "state: { checkpoint_every: %s }\n", every);
    snprintf(text, sizeof(text),
             "redis: { host: 127.0.0.1, port: %d, prefix: \"%s\" }\n"
             "events: { batch: %ld, group: " GROUP ", allowed_lateness: %ldms%s%s }\n"
             "tiers:\n"
             "  day:   { response: 1d, next_reply: 1d }\n"
             "  burst: { response: 5s }\n"
             "policies:\n"
             "  - { tier: day }\n"
             "%s",
             port, prefix, batch, lateness, next_consumer ? ", consumer: " : "",
             next_consumer ? next_consumer : "", extra);
    return h_write_file(dir, name, text);
}

/* ---- 3. lateness ---------------------------------------------------------------- */

struct burst_result {
    long entries;            /* breach stream length */
    long breached_once;      /* burst tickets with exactly one breach */
    long missing;            /* burst tickets with none */
    long repeated;           /* burst tickets with more than one */
    long foreign;            /* entries for anything else */
    long wrong_deadline;     /* deadline_ms other than the one sent */
    long nlate;
    int64_t *late;           /* at_ms - deadline_ms */
    int64_t *visible;        /* entry ID time - deadline_ms */
};

/* Reads <prefix>breaches in chunks and checks it against the deadlines
 * that were sent. Returns 0 or -1 (Redis failed). */
static int
read_breaches(redisContext *c, const char *key, long burst,
              const int64_t *deadline, struct burst_result *res)
{
    char start[64] = "-", prev[64] = "";
    uint8_t *seen = calloc((size_t)burst, 1);
    res->late = malloc((size_t)burst * sizeof(*res->late));
    res->visible = malloc((size_t)burst * sizeof(*res->visible));
    if (seen == NULL || res->late == NULL || res->visible == NULL) {
        free(seen);
        return -1;
    }
    for (;;) {
        redisReply *r = redisCommand(c, "XRANGE %s %s + COUNT %d", key, start,
                                     XRANGE_CHUNK);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject(r);
            free(seen);
            return -1;
        }
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
                e->element[0]->type != REDIS_REPLY_STRING) {
                res->foreign++;
                continue;
            }
            const redisReply *kv = e->element[1];
            const char *kind = NULL, *ticket = NULL;
            int64_t dl = 0, at = 0;
            snprintf(start, sizeof(start), "(%s", e->element[0]->str);
            res->entries++;
            for (size_t k = 0; kv->type == REDIS_REPLY_ARRAY && k + 1 < kv->elements;
                 k += 2) {
                if (kv->element[k]->type != REDIS_REPLY_STRING ||
                    kv->element[k + 1]->type != REDIS_REPLY_STRING)
                    continue;
                const char *f = kv->element[k]->str, *v = kv->element[k + 1]->str;
                if (strcmp(f, "kind") == 0)
                    kind = v;
                else if (strcmp(f, "ticket") == 0)
                    ticket = v;
                else if (strcmp(f, "deadline_ms") == 0)
                    dl = strtoll(v, NULL, 10);
                else if (strcmp(f, "at_ms") == 0)
                    at = strtoll(v, NULL, 10);
            }
            char *end = NULL;
            long idx = -1;
            if (ticket && strncmp(ticket, "burst", 5) == 0) {
                idx = strtol(ticket + 5, &end, 10);
                if (*end != '\0')
                    idx = -1;
            }
            if (kind == NULL || strcmp(kind, "breach") != 0 || idx < 0 ||
                idx >= burst) {
                res->foreign++;
                continue;
            }
            if (seen[idx] < 255)
                seen[idx]++;
            if (seen[idx] > 1)
                continue;
            if (dl != deadline[idx])
                res->wrong_deadline++;
            res->late[res->nlate] = at - dl;
            res->visible[res->nlate] = strtoll(e->element[0]->str, NULL, 10) - dl;
            res->nlate++;
        }
        size_t got = r->elements;
        freeReplyObject(r);
        if (got < XRANGE_CHUNK || strcmp(prev, start) == 0)
            break;
        memcpy(prev, start, sizeof(prev));
    }
    for (long i = 0; i < burst; i++) {
        if (seen[i] == 0)
            res->missing++;
        else if (seen[i] == 1)
            res->breached_once++;
        else
            res->repeated++;
    }
    free(seen);
    return 0;
}

/*
 * Sends `burst` tickets of tier burst whose deadlines are spread evenly over
 * [window_start, window_start + window_ms), in shuffled order, waits for
 * their breaches and prints the lateness. Returns 0, or -1 when something
 * did not work.
 */
static int
bench_lateness(redisContext *c, long open, long burst, long window_ms,
               long lead_ms)
{
    int64_t *deadline = malloc((size_t)burst * sizeof(*deadline));
    int64_t *ts = malloc((size_t)burst * sizeof(*ts));
    struct burst_result res = { 0 };
    char last_id[48];
    int rc = -1;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;

    if (deadline == NULL || ts == NULL)
        goto out;
    /* Slot i of the window gets deadline offset i * window / burst; the
     * slots are handed to the tickets in random order so the heap sees
     * them unsorted. */
    int64_t window_start = h_now_ms() + lead_ms;
    for (long i = 0; i < burst; i++)
        deadline[i] = window_start + (int64_t)i * window_ms / burst;
    for (long i = burst - 1; i > 0; i--) {
        long j = (long)(xorshift(&seed) % (uint64_t)(i + 1));
        int64_t tmp = deadline[i];
        deadline[i] = deadline[j];
        deadline[j] = tmp;
    }
    for (long i = 0; i < burst; i++)
        ts[i] = deadline[i] - BURST_TARGET_MS;

    int64_t t0 = mono_us();
    if (xadd_opened(c, PREFIX "events", "burst", "burst", burst, ts, last_id,
                    sizeof(last_id)) < 0) {
        fail("XADD of the burst tickets failed");
        goto out;
    }
    double send_s = secs_since(t0);
    int64_t ingested = wait_drained(c, PREFIX "events", GROUP, last_id,
                                    lead_ms + 30000, &daemon_pid);
    if (ingested < 0)
        goto out;
    printf("  burst: %ld tickets sent in %.2f s; daemon read them all %lld ms "
           "before the first deadline\n",
           burst, send_s, (long long)(window_start - ingested));
    if (ingested > window_start)
        printf("  note: the burst was still being read when its window opened; "
               "raise BENCH_LEAD_MS\n");

    double daemon_cpu0 = cpu_secs(daemon_pid), redis_cpu0 = cpu_secs(redis_srv.pid);
    /* Every breach should be recorded soon after the window closes. */
    int64_t until = window_start + window_ms + 30000;
    for (;;) {
        redisReply *r = redisCommand(c, "XLEN %s", PREFIX "breaches");
        long long len = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        if (r)
            freeReplyObject(r);
        if (len < 0) {
            fail("XLEN %sbreaches failed", PREFIX);
            goto out;
        }
        if (len >= burst)
            break;
        if (!alive(&daemon_pid, "slawatchd"))
            goto out;
        if (h_now_ms() > until) {
            fail("only %lld of %ld breaches recorded 30 s after the window", len,
                 burst);
            break; /* still report what arrived */
        }
        h_sleep_ms(POLL_MS);
    }
    int64_t recorded = h_now_ms();
    double daemon_cpu = cpu_secs(daemon_pid) - daemon_cpu0;
    double redis_cpu = cpu_secs(redis_srv.pid) - redis_cpu0;
    /* Give stray extra entries a moment to show up before counting. */
    h_sleep_ms(300);
    if (read_breaches(c, PREFIX "breaches", burst, deadline, &res) < 0) {
        fail("XRANGE %sbreaches failed", PREFIX);
        goto out;
    }
    qsort(res.late, (size_t)res.nlate, sizeof(*res.late), cmp_i64);
    qsort(res.visible, (size_t)res.nlate, sizeof(*res.visible), cmp_i64);
    int64_t p99 = percentile(res.late, (size_t)res.nlate, 99);
    long allowed = allowed_lateness_ms();
    int64_t early = res.nlate ? res.late[0] : 0;
    if (allowed)
        printf("  with events.allowed_lateness %ld ms: every breach is decided after "
               "deadline + %ld ms, so late_ms is at least that (min %" PRId64 " ms)%s\n",
               allowed, allowed, early, verdict(res.nlate > 0 && early > allowed));
    printf("lateness: p50 %" PRId64 " ms, p99 %" PRId64 " ms, max %" PRId64
           " ms over %ld deadlines in %.3g s on top of %ld open "
           "(target p99 <= %ld + %d ms)%s\n",
           percentile(res.late, (size_t)res.nlate, 50), p99,
           res.nlate ? res.late[res.nlate - 1] : 0, res.nlate,
           (double)window_ms / 1000.0, open, allowed, TARGET_P99_MS,
           verdict(res.nlate > 0 && p99 <= allowed + TARGET_P99_MS));
    printf("  in Redis (breach entry ID - deadline): p50 %" PRId64 " ms, p99 %"
           PRId64 " ms, max %" PRId64 " ms\n",
           percentile(res.visible, (size_t)res.nlate, 50),
           percentile(res.visible, (size_t)res.nlate, 99),
           res.nlate ? res.visible[res.nlate - 1] : 0);
    printf("  all recorded %lld ms after the window closed; CPU meanwhile: "
           "slawatchd %.2f s, redis-server %.2f s\n",
           (long long)(recorded - (window_start + window_ms)), daemon_cpu, redis_cpu);
    printf("breaches: %ld of %ld burst tickets breached exactly once "
           "(%ld never, %ld more than once, %ld other entries, %ld wrong "
           "deadlines)\n",
           res.breached_once, burst, res.missing, res.repeated, res.foreign,
           res.wrong_deadline);
    if (res.breached_once != burst || res.foreign || res.wrong_deadline)
        fail("breach records do not match the burst");
    else
        rc = 0;
out:
    free(deadline);
    free(ts);
    free(res.late);
    free(res.visible);
    return rc;
}

/* ---- the daemon's ingest ------------------------------------------------------- */

/* Calls of one command so far (INFO commandstats), or -1. */
static long long
cmd_calls(redisContext *c, const char *cmd)
{
    char key[64];
    long long calls = 0;
    redisReply *r = redisCommand(c, "INFO commandstats");
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    snprintf(key, sizeof(key), "cmdstat_%s:calls=", cmd);
    const char *p = strstr(r->str, key);
    if (p)
        calls = strtoll(p + strlen(key), NULL, 10);
    freeReplyObject(r);
    return calls;
}

/* Checks the daemon's own counters once it has drained n events. */
static int
check_counters(redisContext *c, const char *prefix, long n)
{
    char key[64];
    long long rejected = -1, tickets = -1;
    snprintf(key, sizeof(key), "%sstats:events_total", prefix);
    if (!h_wait_int(c, key, n, 5000)) {
        fail("%s did not reach %ld", key, n);
        return -1;
    }
    snprintf(key, sizeof(key), "%sstats:rejected_total", prefix);
    bool ok = h_get_int(c, key, &rejected);
    snprintf(key, sizeof(key), "%sstats:tickets", prefix);
    ok = ok && h_get_int(c, key, &tickets);
    if (!ok || rejected != 0 || tickets != n) {
        fail("after ingest: rejected_total %lld, tickets %lld (want 0, %ld)",
             rejected, tickets, n);
        return -1;
    }
    return 0;
}

/*
 * Cold start, as an operator meets it after an outage: the daemon starts
 * on a stream already holding n events and no group of its own. Timed
 * from exec until the group has delivered everything with nothing pending.
 * Returns the rate in events/s, or -1.
 */
static double
ingest_cold(redisContext *c, const char *cfg, const char *dir, long n,
            const char *last_id)
{
    struct group_state gs;
    long long ranges0 = cmd_calls(c, "xrange"), reads0 = cmd_calls(c, "xreadgroup");
    double redis_cpu0 = cpu_secs(redis_srv.pid);
    double first_read_s = -1, first_group_s = -1;
    int64_t start_wall = h_now_ms(), t0 = mono_us();

    daemon_pid = h_daemon_start(cfg, dir);
    if (daemon_pid <= 0) {
        fail("cannot start %s/slawatchd", h_build_dir());
        return -1;
    }
    /* Poll finely for its first read of the stream (XRANGE or XREADGROUP
     * calls going up) and the group's first delivery. */
    for (int64_t until = h_now_ms() + 20000; h_now_ms() < until;) {
        if (first_read_s < 0 && (cmd_calls(c, "xrange") > ranges0 ||
                                 cmd_calls(c, "xreadgroup") > reads0))
            first_read_s = secs_since(t0);
        if (group_state(c, PREFIX "events", GROUP, &gs) == 0 && gs.found &&
            (gs.pending > 0 || strcmp(gs.last_id, "0-0") != 0)) {
            first_group_s = secs_since(t0);
            if (first_read_s < 0)
                first_read_s = first_group_s;
            break;
        }
        if (!alive(&daemon_pid, "slawatchd"))
            return -1;
        h_sleep_ms(first_read_s < 0 ? 1 : 5);
    }
    if (first_group_s < 0) {
        fail("slawatchd's group delivered nothing within 20 s");
        return -1;
    }
    int64_t drained = wait_drained(c, PREFIX "events", GROUP, last_id,
                                   30000 + n / 10, &daemon_pid);
    if (drained < 0)
        return -1;
    double daemon_cpu = cpu_secs(daemon_pid);
    double redis_cpu = cpu_secs(redis_srv.pid) - redis_cpu0;
    long long ranges = cmd_calls(c, "xrange") - ranges0;
    double secs = (double)(drained - start_wall) / 1000.0;
    if (secs <= 0)
        secs = 0.001;
    if (check_counters(c, PREFIX, n) < 0)
        return -1;
    printf("  daemon: %ld events in %.2f s from exec to drained; first read of "
           "the stream after %.3f s, first delivery to its group after %.2f s "
           "(%lld XRANGE calls before it); CPU: slawatchd %.2f s, redis-server "
           "%.2f s\n",
           n, secs, first_read_s, first_group_s, ranges, daemon_cpu, redis_cpu);
    return (double)n / secs;
}

/*
 * Live: the daemon is running and caught up when n events arrive faster
 * than it reads them. It is stopped (SIGSTOP) while the stream is filled,
 * then timed from SIGCONT until its group has everything acknowledged: the
 * steady-state XREADGROUP path, without start-up. Returns the rate in
 * events/s, or -1. The daemon is stopped before returning.
 */
static double
ingest_live(redisContext *c, const char *cfg, const char *dir, long n)
{
    char last_id[48];
    double rate = -1;

    daemon_pid = h_daemon_start(cfg, dir);
    if (daemon_pid <= 0 || !h_wait_group(c, LIVE_PREFIX "events", GROUP, 10000)) {
        fail("live slawatchd did not create its group within 10 s");
        goto out;
    }
    h_sleep_ms(300); /* past its pending-entries read, blocked on ">" */
    if (kill(daemon_pid, SIGSTOP) < 0) {
        fail("SIGSTOP: %s", strerror(errno));
        goto out;
    }
    if (xadd_opened(c, LIVE_PREFIX "events", "t", "day", n, NULL, last_id,
                    sizeof(last_id)) < 0) {
        kill(daemon_pid, SIGCONT);
        fail("pipelined XADD failed");
        goto out;
    }
    double daemon_cpu0 = cpu_secs(daemon_pid), redis_cpu0 = cpu_secs(redis_srv.pid);
    int64_t start_wall = h_now_ms();
    kill(daemon_pid, SIGCONT);
    int64_t drained = wait_drained(c, LIVE_PREFIX "events", GROUP, last_id,
                                   30000 + n / 10, &daemon_pid);
    if (drained < 0)
        goto out;
    double daemon_cpu = cpu_secs(daemon_pid) - daemon_cpu0;
    double redis_cpu = cpu_secs(redis_srv.pid) - redis_cpu0;
    double secs = (double)(drained - start_wall) / 1000.0;
    if (secs <= 0)
        secs = 0.001;
    if (check_counters(c, LIVE_PREFIX, n) < 0)
        goto out;
    printf("  live daemon: %ld events in %.2f s from SIGCONT to drained; CPU: "
           "slawatchd %.2f s, redis-server %.2f s\n",
           n, secs, daemon_cpu, redis_cpu);
    rate = (double)n / secs;
out:
    if (daemon_pid > 0) {
        int rc = stop_daemon(&daemon_pid);
        if (rc != 0)
            fail("live slawatchd exited with status %d on SIGTERM", rc);
    }
    return rate;
}

/* ---- restart to ready ------------------------------------------------------------ */

/* Starts the daemon on cfg with NOTIFY_SOCKET set to a datagram socket of
 * ours and returns the seconds from exec to READY=1, or -1. */
static double
restart_to_ready(const char *cfg, const char *dir, volatile pid_t *slot)
{
    char path[400], bin[300], logf[400], env[420];
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(path, sizeof(path), "%s/notify.sock", dir);
    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    snprintf(bin, sizeof(bin), "%s/slawatchd", h_build_dir());
    snprintf(logf, sizeof(logf), "%s/daemon.log", dir);
    snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", path);
    int64_t t0 = mono_us();
    pid_t pid = fork();
    if (pid == 0) {
        int lfd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (lfd >= 0) {
            dup2(lfd, 1);
            dup2(lfd, 2);
        }
        putenv(env);
        execl(bin, "slawatchd", "-c", cfg, (char *)NULL);
        _exit(127);
    }
    *slot = pid;
    double ready = -1;
    while (pid > 0 && secs_since(t0) < 30) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        if (strstr(buf, "READY=1")) {
            ready = secs_since(t0);
            break;
        }
    }
    close(fd);
    unlink(path);
    return ready;
}

/* ---- main ------------------------------------------------------------------------ */

/* Starts a daemon on cfg, its log in dir, and waits until its group exists
 * on stream. Returns the pid, or -1. */
static pid_t
start_daemon(redisContext *c, const char *cfg, const char *dir,
             const char *stream, volatile pid_t *slot)
{
    *slot = h_daemon_start(cfg, dir);
    if (*slot <= 0) {
        fail("cannot start %s/slawatchd", h_build_dir());
        return -1;
    }
    if (!h_wait_group(c, stream, GROUP, 10000) || !alive(slot, "slawatchd")) {
        fail("slawatchd did not create its group on %s within 10 s", stream);
        return -1;
    }
    return *slot;
}

/* Makes dir/name and a configuration for prefix in it. Returns the
 * malloc'ed configuration path, or NULL. */
static char *
daemon_dir(const char *name, const char *prefix, long batch, char *dir,
           size_t dirlen)
{
    snprintf(dir, dirlen, "%s/%s", redis_srv.dir, name);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return NULL;
    return write_config(dir, "slawatch.yaml", redis_srv.port, prefix, batch);
}

static int
run(void)
{
    long open = env_long("BENCH_TICKETS", 1000000, 1000, 100000000);
    long burst = env_long("BENCH_BURST", 100000, 100, 10000000);
    long window_ms = env_long("BENCH_WINDOW_MS", 1000, 1, 60000);
    long lead_ms = env_long("BENCH_LEAD_MS", 3000, 100, 4900);
    long batch = env_long("BENCH_BATCH", 1000, 1, 100000);
    char last_id[48], maindir[300] = "", basedir[300] = "", livedir[300] = "";
    char *cfg = NULL, *base_cfg = NULL, *live_cfg = NULL;
    redisContext *c = NULL;
    int64_t t_all = mono_us();

    if (h_redis_start(&redis_srv, NULL) < 0) {
        fail("cannot start redis-server");
        h_redis_stop(&redis_srv);
        return -1;
    }
    printf("bench_core: %ld open tickets, %ld in a %ld ms window, batch %ld, "
           "%ld CPUs, redis-server on port %d in %s\n",
           open, burst, window_ms, batch, sysconf(_SC_NPROCESSORS_ONLN),
           redis_srv.port, redis_srv.dir);
    if ((c = bulk_connect(redis_srv.port)) == NULL) {
        fail("cannot connect to redis-server");
        goto done;
    }
    cfg = daemon_dir("main", PREFIX, batch, maindir, sizeof(maindir));
    base_cfg = daemon_dir("base", BASE_PREFIX, batch, basedir, sizeof(basedir));
    live_cfg = daemon_dir("live", LIVE_PREFIX, batch, livedir, sizeof(livedir));
    if (cfg == NULL || base_cfg == NULL || live_cfg == NULL) {
        fail("cannot write the configurations");
        goto done;
    }

    /* Fill. */
    int64_t t0 = mono_us();
    if (xadd_opened(c, PREFIX "events", "t", "day", open, NULL, last_id,
                    sizeof(last_id)) < 0) {
        fail("pipelined XADD failed");
        goto done;
    }
    double fill_s = secs_since(t0);
    printf("  fill: %ld events in %.2f s (%.0f XADD/s pipelined)\n", open, fill_s,
           (double)open / fill_s);

    /* 1. Raw drain, then the daemon on the same stream. */
    double redis_cpu0 = cpu_secs(redis_srv.pid), self_cpu0 = cpu_secs(0);
    double raw_s = raw_drain(redis_srv.port, PREFIX "events", open, batch);
    double redis_cpu_raw = cpu_secs(redis_srv.pid) - redis_cpu0;
    double self_cpu_raw = cpu_secs(0) - self_cpu0;
    if (raw_s <= 0) {
        fail("raw XREADGROUP+XACK drain failed");
        goto done;
    }
    double raw_rate = (double)open / raw_s;
    printf("  raw: %ld events read and acknowledged in %.2f s (CPU: redis-server "
           "%.2f s, client %.2f s)\n",
           open, raw_s, redis_cpu_raw, self_cpu_raw);

    double cold_rate = ingest_cold(c, cfg, maindir, open, last_id);
    if (cold_rate < 0)
        goto done;
    printf("ingest: daemon %.0f ev/s, raw XREADGROUP+XACK %.0f ev/s, ratio %.2f "
           "(target >= %.2f)%s\n",
           cold_rate, raw_rate, cold_rate / raw_rate, TARGET_RATIO,
           verdict(cold_rate / raw_rate >= TARGET_RATIO));

    /* 2. RSS over a baseline daemon on an empty stream. */
    if (start_daemon(c, base_cfg, basedir, BASE_PREFIX "events", &base_pid) < 0)
        goto done;
    /* Let it reach its steady state: connected, reading, gauges published. */
    if (!h_wait_int(c, BASE_PREFIX "stats:events_total", 0, 5000)) {
        fail("baseline daemon published no gauges");
        goto done;
    }
    h_sleep_ms(1100);
    long long rss = vm_rss(daemon_pid), base_rss = vm_rss(base_pid);
    int base_rc = stop_daemon(&base_pid);
    if (rss < 0 || base_rss < 0) {
        fail("cannot read VmRSS");
        goto done;
    }
    if (base_rc != 0)
        fail("baseline slawatchd exited with status %d", base_rc);
    double per_ticket = (double)(rss - base_rss) / (double)open;
    printf("rss: %.0f bytes per open ticket at %ld open (target <= %.0f)%s\n",
           per_ticket, open, TARGET_RSS_BYTES,
           verdict(per_ticket <= TARGET_RSS_BYTES));
    printf("  daemon %.1f MiB, baseline %.1f MiB\n", (double)rss / 1048576.0,
           (double)base_rss / 1048576.0);

    /* 2b. The same tickets, each answered and then in a next_reply cycle
     * (the tier has next_reply: 1d): the cycle takes the response clock's
     * slot, so the memory must not move. */
    if (xadd_events(c, PREFIX "events", "responded", "t", NULL, open, NULL, last_id,
                    sizeof(last_id)) < 0 ||
        xadd_events(c, PREFIX "events", "commented", "t", NULL, open, NULL, last_id,
                    sizeof(last_id)) < 0) {
        fail("pipelined XADD of the replies failed");
        goto done;
    }
    long long queued = -1;
    if (!h_wait_int(c, PREFIX "stats:events_total", 3 * open, 60000 + open / 10) ||
        (h_sleep_ms(1100), !h_get_int(c, PREFIX "stats:clocks_queued", &queued)) ||
        queued != open) {
        fail("the next_reply cycles did not all start (clocks_queued %lld)", queued);
        goto done;
    }
    long long rss_nr = vm_rss(daemon_pid);
    double per_ticket_nr = (double)(rss_nr - base_rss) / (double)open;
    printf("rss next_reply: %.0f bytes per open ticket at %ld open, each in a "
           "next_reply cycle (target <= %.0f)%s\n",
           per_ticket_nr, open, TARGET_RSS_BYTES, verdict(per_ticket_nr <= TARGET_RSS_BYTES));

    /* 3. Lateness on top of the open tickets. */
    if (bench_lateness(c, open, burst, window_ms, lead_ms) < 0)
        goto done;

    /* SIGTERM with everything open: SPEC 1 wants exit 0 within 5 s. */
    t0 = mono_us();
    int rc = stop_daemon(&daemon_pid);
    double stop_s = secs_since(t0);
    printf("  stop: slawatchd with %ld tickets exited %d %.2f s after SIGTERM "
           "(SPEC: within 5 s)%s\n",
           open + burst, rc, stop_s, verdict(stop_s <= TARGET_STOP_S));
    if (rc != 0)
        fail("slawatchd exited with status %d on SIGTERM (want 0 within 5 s)", rc);

    /* Restart with everything in the final checkpoint: ready (READY=1:
     * checkpoint loaded, nothing to replay, group joined) within 2 s. */
    double ready_s = restart_to_ready(cfg, maindir, &daemon_pid);
    if (ready_s < 0) {
        fail("restarted slawatchd sent no READY=1 within 30 s");
        goto done;
    }
    printf("restart: ready %.2f s after exec with %ld open tickets in the checkpoint "
           "(target <= %.1f s)%s\n",
           ready_s, open + burst, TARGET_READY_S, verdict(ready_s <= TARGET_READY_S));
    if (!h_wait_int(c, PREFIX "stats:tickets", open + burst, 5000))
        fail("restarted slawatchd does not hold %ld tickets", open + burst);

    /* 5. Failover: a standby on the same prefix; kill -9 of the leader
     * with deadlines due; the time to the standby's first decided breach
     * (SPEC section 7; target: the lease + 1 s). */
    if (bench_failover(c, maindir, open + burst) < 0)
        goto done;
    rc = stop_daemon(&daemon_pid);
    if (rc != 0)
        fail("restarted slawatchd exited with status %d on SIGTERM", rc);

    /* 4. The live consumer-group path on a stream of its own. */
    double live_rate = ingest_live(c, live_cfg, livedir, open);
    if (live_rate < 0)
        goto done;
    printf("ingest live: daemon %.0f ev/s, raw XREADGROUP+XACK %.0f ev/s, ratio "
           "%.2f (target >= %.2f)%s\n",
           live_rate, raw_rate, live_rate / raw_rate, TARGET_RATIO,
           verdict(live_rate / raw_rate >= TARGET_RATIO));

done:
    if (daemon_pid > 0) {
        int src = stop_daemon(&daemon_pid);
        if (src != 0)
            fail("slawatchd exited with status %d on SIGTERM (want 0 within 5 s)", src);
    }
    (void)stop_daemon(&base_pid);
    if (failures) {
        if (maindir[0])
            h_dump_file(maindir, "daemon.log");
        if (basedir[0])
            h_dump_file(basedir, "daemon.log");
        if (livedir[0])
            h_dump_file(livedir, "daemon.log");
    }
    if (c)
        redisFree(c);
    h_redis_stop(&redis_srv);
    free(cfg);
    free(base_cfg);
    free(live_cfg);
    printf("bench_core: %s in %.1f s\n", failures ? "FAILED" : "done",
           secs_since(t_all));
    return failures ? -1 : 0;
}

/* The leader (daemon_pid) holds `held` tickets; starts a standby, sends
 * FAILOVER_N tickets due 1 s after the kill, kills the leader, and measures
 * until the standby's first breach record. On return daemon_pid is the
 * standby, now the leader. Returns 0, or -1 when something did not work. */
#define FAILOVER_N 1000
#define LEASE_MS 10000

static int
bench_failover(redisContext *c, const char *maindir, long held)
{
    char dir[400], last_id[48];
    int64_t *ts = malloc(FAILOVER_N * sizeof(*ts));
    int rc = -1;
    next_consumer = "standby";
    char *cfg = daemon_dir("standby", PREFIX, 1000, dir, sizeof(dir));
    next_consumer = NULL;
    (void)maindir;
    pid_t standby = cfg ? h_daemon_start(cfg, dir) : -1;
    if (ts == NULL || standby <= 0) {
        fail("cannot start the standby");
        goto out;
    }
    /* The standby shows up in the roll call. */
    bool seen = false;
    for (int waited = 0; waited < 10000 && !seen; waited += 100) {
        redisReply *r = redisCommand(c, "ZSCORE " PREFIX "instances standby");
        seen = r && r->type == REDIS_REPLY_STRING;
        if (r)
            freeReplyObject(r);
        h_sleep_ms(100);
    }
    if (!seen) {
        fail("the standby did not announce itself");
        goto out;
    }
    long long before = -1;
    redisReply *r = redisCommand(c, "XLEN " PREFIX "breaches");
    if (r && r->type == REDIS_REPLY_INTEGER)
        before = r->integer;
    if (r)
        freeReplyObject(r);
    int64_t kill_at = h_now_ms() + 1000;
    for (long i = 0; i < FAILOVER_N; i++)
        ts[i] = kill_at + 1000 - BURST_TARGET_MS; /* due 1 s after the kill */
    if (xadd_opened(c, PREFIX "events", "fo", "burst", FAILOVER_N, ts, last_id,
                    sizeof(last_id)) < 0 ||
        wait_drained(c, PREFIX "events", GROUP, last_id, 10000, &daemon_pid) < 0) {
        fail("the failover tickets were not read");
        goto out;
    }
    h_sleep_until(kill_at);
    kill(daemon_pid, SIGKILL);
    waitpid(daemon_pid, NULL, 0);
    int64_t killed = h_now_ms();
    daemon_pid = standby;
    standby = 0;
    if (!h_wait_xlen(c, PREFIX "breaches", before + FAILOVER_N, LEASE_MS + 30000)) {
        fail("the standby did not record the %d breaches within the lease + 30 s",
             FAILOVER_N);
        goto out;
    }
    /* The first record after the kill, and every failover ticket once. */
    char from[32];
    snprintf(from, sizeof(from), "%lld", (long long)killed);
    r = redisCommand(c, "XRANGE " PREFIX "breaches %s + ", from);
    int64_t first = -1;
    long fo = 0;
    char *once = calloc(FAILOVER_N, 1);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        const redisReply *kv = e->element[1];
        if (first < 0)
            first = strtoll(e->element[0]->str, NULL, 10);
        for (size_t k = 0; k + 1 < kv->elements; k += 2)
            if (strcmp(kv->element[k]->str, "ticket") == 0 &&
                strncmp(kv->element[k + 1]->str, "fo", 2) == 0) {
                long n = strtol(kv->element[k + 1]->str + 2, NULL, 10);
                if (n >= 0 && n < FAILOVER_N && once && once[n]++ == 0)
                    fo++;
            }
    }
    if (r)
        freeReplyObject(r);
    free(once);
    double secs = first < 0 ? -1 : (double)(first - killed) / 1000.0;
    printf("failover: kill -9 of the leader holding %ld tickets, the standby's first "
           "breach %.2f s later (ha.lease %d s; target <= %d s + 1 s)%s\n",
           held, secs, LEASE_MS / 1000, LEASE_MS / 1000,
           verdict(first >= 0 && secs <= LEASE_MS / 1000.0 + 1.0));
    printf("  %ld of %d failover tickets breached, each once\n", fo, FAILOVER_N);
    if (fo != FAILOVER_N)
        fail("%ld of %d failover tickets breached after the hand-over", fo, FAILOVER_N);
    rc = 0;
out:
    if (standby > 0)
        h_daemon_stop(standby, SIGTERM, 5000);
    free(cfg);
    free(ts);
    return rc;
}

int
main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    return run() < 0 ? 1 : 0;
}
