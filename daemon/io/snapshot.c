/*
 * snapshot.c - checkpoints (see snapshot.h). Owns the forked checkpoint
 * child, the SIGCHLD watch that reaps it, and the encoding of the running
 * state: the core, the position its hooks report, the writer's unanswered
 * commands (section WRT2, see state.h) and the registered sections. Must
 * never block the event loop except in the final save at shutdown (within
 * the budget it is given), must not touch the parent's connections from the
 * child, and must never send a write from a checkpoint that
 * state_write_check refuses: the checkpoint is data anyone with write access
 * to <prefix>state can forge.
 */
#define _GNU_SOURCE
#include "slawatch/snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slawatch/log.h"
#include "slawatch/rds_sync.h"

struct snapshot {
    struct event_base *base;
    const struct config *cfg;
    struct core *core;
    struct rds_conn *writer;
    struct snapshot_hooks hooks;
    struct snapshot_section sec[SNAPSHOT_MAX_SECTIONS];
    size_t nsec;
    char key[KEY_MAX];               /* <prefix>state */
    bool started;                    /* the state is complete */
    const char **fence;              /* leader key, epoch key, name, token */
    struct event *timer;
    struct event *sigchld_ev;
    pid_t child;
    int64_t child_started_ms;
    int64_t last_ms;
    uint64_t failed;
    uint64_t writes_refused;         /* checkpoint writes not sent (forged?) */
    struct log_ratelimit refuse_rl;
};

/* ---- encoding the running daemon --------------------------------------- */

/* One queued command (our own RESP, from redisFormatCommandArgv) as a
 * WRT2 record. */
static void
put_write(void *arg, const char *buf, size_t len)
{
    struct wire_buf *b = arg;
    struct state_write w;
    const char *why;
    if (state_write_from_resp(buf, len, &w, &why) < 0) {
        if (strcmp(why, "out of memory") == 0)
            b->oom = 1;
        return; /* cannot happen for a command hiredis formatted */
    }
    state_write_put(b, w.argc, w.argv, w.lens);
    state_write_free(&w);
}

/* Encodes core, position, unanswered writes and sections. Returns -1 on
 * allocation failure. */
static int
encode_all(struct snapshot *s, struct wire_buf *out)
{
    struct wire_buf parts[1 + SNAPSHOT_MAX_SECTIONS];
    struct state_section sec[1 + SNAPSHOT_MAX_SECTIONS];
    struct state_meta meta = {
        .saved_ms = now_wall_ms(),
        .core_now_ms = core_now(s->core),
    };
    int rc = 0;
    if (s->hooks.position)
        s->hooks.position(s->hooks.arg, &meta);
    for (size_t i = 0; i <= s->nsec; i++)
        wire_init(&parts[i]);
    rds_foreach_queued(s->writer, put_write, &parts[0]);
    sec[0] = (struct state_section){ STATE_SECTION_WRITES, NULL, 0 };
    for (size_t i = 0; i < s->nsec; i++) {
        if (s->sec[i].encode(s->sec[i].arg, &parts[i + 1]) < 0)
            rc = -1;
        sec[i + 1] = (struct state_section){ s->sec[i].tag, NULL, 0 };
    }
    for (size_t i = 0; i <= s->nsec; i++) {
        if (parts[i].oom)
            rc = -1;
        sec[i].data = parts[i].data;
        sec[i].len = parts[i].len;
    }
    if (rc == 0)
        rc = state_encode(s->core, &meta, sec, s->nsec + 1, out);
    for (size_t i = 0; i <= s->nsec; i++)
        wire_free(&parts[i]);
    return rc;
}

/* Encodes and stores a checkpoint synchronously. deadline_us (monotonic)
 * bounds the whole exchange: connect, AUTH and SELECT get a quarter of
 * what is left each at most, the SET the rest; 0: the child's generous
 * 5 s connect and 30 s per command. Returns 0 or -1 (err). */
static int
save_now(struct snapshot *s, int64_t deadline_us, char *err, size_t errlen)
{
    struct wire_buf b;
    int connect_ms = 5000, command_ms = 30000;
    wire_init(&b);
    if (encode_all(s, &b) < 0) {
        snprintf(err, errlen, "out of memory encoding the checkpoint");
        wire_free(&b);
        return -1;
    }
    if (deadline_us) {
        int64_t left_ms = (deadline_us - now_mono_us()) / 1000;
        if (left_ms < 40) {
            snprintf(err, errlen, "no time left before the shutdown deadline");
            wire_free(&b);
            return -1;
        }
        connect_ms = command_ms = (int)(left_ms / 4);
    }
    redisContext *c = rds_connect_sync(&s->cfg->redis, connect_ms, command_ms, err, errlen);
    if (c == NULL) {
        wire_free(&b);
        return -1;
    }
    if (deadline_us) {
        int64_t left_ms = (deadline_us - now_mono_us()) / 1000;
        struct timeval tv = { (time_t)(left_ms / 1000), (suseconds_t)(left_ms % 1000) * 1000 };
        if (left_ms < 10) {
            snprintf(err, errlen, "no time left before the shutdown deadline");
            redisFree(c);
            wire_free(&b);
            return -1;
        }
        redisSetTimeout(c, tv);
    }
    int rc = 0;
    redisReply *rep = NULL;
    if (s->fence) {
        /* Only while this instance holds the lease, atomically. */
        const char *watch[] = { "WATCH", s->fence[0], s->fence[1] };
        const char *mget[] = { "MGET", s->fence[0], s->fence[1] };
        rep = redisCommandArgv(c, 3, watch, NULL);
        if (rep)
            freeReplyObject(rep);
        rep = redisCommandArgv(c, 3, mget, NULL);
        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_STRING ||
            strcmp(rep->element[0]->str, s->fence[2]) != 0 ||
            strcmp(rep->element[1]->str, s->fence[3]) != 0) {
            snprintf(err, errlen, "checkpoint not written: this instance no longer holds the lease");
            rc = -1;
        }
        if (rep)
            freeReplyObject(rep);
        rep = NULL;
        if (rc == 0) {
            rep = redisCommand(c, "MULTI");
            if (rep)
                freeReplyObject(rep);
        }
    }
    if (rc == 0) {
        const char *argv[] = { "SET", s->key, b.data };
        size_t lens[] = { 3, strlen(s->key), b.len };
        rep = redisCommandArgv(c, 3, argv, lens);
        if (s->fence && rep && rep->type == REDIS_REPLY_STATUS) { /* QUEUED */
            freeReplyObject(rep);
            rep = redisCommand(c, "EXEC");
            if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
                rep->element[0]->type == REDIS_REPLY_STATUS) {
                freeReplyObject(rep);
                rep = NULL;
            } else {
                snprintf(err, errlen, "checkpoint not written: the lease changed hands");
                rc = -1;
            }
        } else if (!s->fence && rep && rep->type == REDIS_REPLY_STATUS) {
            freeReplyObject(rep);
            rep = NULL;
        } else {
            snprintf(err, errlen, "SET %s: %s", s->key,
                     rep ? (rep->str ? rep->str : "unexpected reply") : c->errstr);
            rc = -1;
        }
    }
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    wire_free(&b);
    return rc;
}

/* ---- periodic checkpoints ---------------------------------------------- */

static void
checkpoint_cb(evutil_socket_t fd, short what, void *arg)
{
    struct snapshot *s = arg;
    (void)fd;
    (void)what;
    if (!s->started || s->child > 0)
        return;
    pid_t pid = fork();
    if (pid < 0) {
        log_warn("checkpoint: fork");
        s->failed++;
        return;
    }
    if (pid == 0) {
        /* The child: a frozen copy of the state. No stdio buffers, no
         * atexit handlers, no touching the parent's connections. */
        char err[256];
        int rc = save_now(s, 0, err, sizeof(err));
        if (rc < 0)
            fprintf(stderr, "slawatchd checkpoint: %s\n", err);
        _exit(rc < 0 ? 1 : 0);
    }
    s->child = pid;
    s->child_started_ms = now_wall_ms();
}

static void
reap(struct snapshot *s)
{
    int status;
    if (s->child <= 0)
        return;
    pid_t w = waitpid(s->child, &status, WNOHANG);
    if (w != s->child)
        return;
    s->child = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        s->last_ms = s->child_started_ms;
        log_debug("checkpoint written in %" PRId64 " ms",
                  now_wall_ms() - s->child_started_ms);
    } else {
        s->failed++;
        log_warnx("checkpoint failed (status %d); retrying at the next interval",
                  status);
    }
}

static void
sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reap(arg);
}

int
snapshot_start(struct snapshot *s)
{
    int64_t ms = s->cfg->state.checkpoint_every_ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    s->started = true;
    if (s->timer == NULL)
        s->timer = event_new(s->base, -1, EV_PERSIST, checkpoint_cb, s);
    if (s->sigchld_ev == NULL) {
        s->sigchld_ev = evsignal_new(s->base, SIGCHLD, sigchld_cb, s);
        if (s->sigchld_ev)
            evsignal_add(s->sigchld_ev, NULL);
    }
    if (s->timer == NULL || s->sigchld_ev == NULL)
        return -1;
    event_add(s->timer, &tv);
    return 0;
}

int
snapshot_save_sync(struct snapshot *s, int64_t deadline_us)
{
    char err[256];
    if (!s->started) {
        log_warnx("no final checkpoint: the state was never fully loaded");
        return -1;
    }
    /* An older child must not land after the final checkpoint. */
    if (s->child > 0) {
        kill(s->child, SIGKILL);
        waitpid(s->child, NULL, 0);
        s->child = 0;
    }
    int64_t t0 = now_mono_us();
    if (save_now(s, deadline_us, err, sizeof(err)) < 0) {
        log_err("final checkpoint failed: %s (the next start replays from the "
                "previous checkpoint)", err);
        return -1;
    }
    log_info("final checkpoint: %zu tickets in %" PRId64 " ms",
             core_ticket_count(s->core), (now_mono_us() - t0) / 1000);
    return 0;
}

int64_t
snapshot_last_ms(const struct snapshot *s)
{
    return s->last_ms;
}

uint64_t
snapshot_failed_total(const struct snapshot *s)
{
    return s->failed;
}

uint64_t
snapshot_writes_refused_total(const struct snapshot *s)
{
    return s->writes_refused;
}

/* ---- loading at start-up ------------------------------------------------ */

static void
refuse_write(struct snapshot *s, const struct state_write *w, size_t n, const char *why)
{
    long suppressed;
    s->writes_refused++;
    if (!log_ratelimit_ok(&s->refuse_rl, &suppressed))
        return;
    if (suppressed)
        log_warnx("checkpoint: %ld more refused writes not logged", suppressed);
    /* The command name, for the operator, printable bytes only. */
    char name[24] = "";
    for (size_t i = 0; w && w->argc && i < w->lens[0] && i + 1 < sizeof(name); i++) {
        char c = w->argv[0][i];
        name[i] = c > 0x20 && c < 0x7f ? c : '?';
        name[i + 1] = '\0';
    }
    log_warnx("checkpoint %s: pending write %zu%s%s refused: %s; not sent", s->key, n,
              name[0] ? " " : "", name, why);
}

/* A pending write from the checkpoint: sent through the writer's queue
 * like any other, when state_write_check allows it. */
static void
requeue_write(struct snapshot *s, const struct state_write *w, size_t n, size_t *queued)
{
    const char *why = state_write_check(w, s->cfg->redis.prefix);
    if (why) {
        refuse_write(s, w, n, why);
        return;
    }
    /* An acknowledgement waits for every output before it, as it did. */
    unsigned flags = w->lens[0] == 4 && strncasecmp(w->argv[0], "XACK", 4) == 0
                         ? RDS_BARRIER
                         : 0;
    if (rds_queue_ex(s->writer, flags, NULL, NULL, (int)w->argc, w->argv, w->lens) < 0)
        log_err("checkpoint: cannot re-queue a pending write");
    else
        (*queued)++;
}

static void
on_section(void *arg, uint32_t tag, const char *data, size_t len)
{
    struct snapshot *s = arg;
    struct wire_reader r;
    struct state_write w;
    size_t n = 0, queued = 0;
    for (size_t i = 0; i < s->nsec; i++) {
        if (s->sec[i].tag == tag) {
            s->sec[i].restore(s->sec[i].arg, data, len);
            return;
        }
    }
    wire_reader_init(&r, data, len);
    if (tag == STATE_SECTION_WRITES) {
        int rc;
        while ((rc = state_write_next(&r, &w)) > 0) {
            requeue_write(s, &w, ++n, &queued);
            state_write_free(&w);
        }
        if (rc < 0)
            refuse_write(s, NULL, n + 1, "malformed record (the rest of the section "
                                         "is ignored)");
    } else if (tag == STATE_SECTION_WRITES_RESP) {
        /* 0.1.0 stored raw RESP: converted with strict checks, each record
         * exactly one command. */
        while (r.left > 0) {
            uint32_t cl = wire_get_u32(&r);
            const char *cmd = wire_get_bytes(&r, cl);
            const char *why;
            n++;
            if (cmd == NULL) {
                refuse_write(s, NULL, n, "truncated record");
                break;
            }
            if (state_write_from_resp(cmd, cl, &w, &why) < 0) {
                refuse_write(s, NULL, n, why);
                continue;
            }
            requeue_write(s, &w, n, &queued);
            state_write_free(&w);
        }
    } else {
        return; /* a section of a newer version: ignored */
    }
    if (queued)
        log_info("checkpoint: %zu pending Redis writes queued again", queued);
}

static void
load_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct snapshot *s = privdata;
    (void)conn;
    if (reply == NULL)
        return; /* connection lost: asked again once it is back */
    if (reply->type == REDIS_REPLY_NIL) {
        /* First start, or a crash before the first checkpoint: the stream
         * is the whole history. */
        log_notice("no checkpoint in %s: replaying %sevents from its start", s->key,
                   s->cfg->redis.prefix);
        s->hooks.loaded(s->hooks.arg, NULL, NULL);
        return;
    }
    char err[2 * KEY_MAX + 400];
    if (reply->type != REDIS_REPLY_STRING) {
        snprintf(err, sizeof(err), "cannot read %s: %s", s->key,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "not a string");
        s->hooks.loaded(s->hooks.arg, NULL, err);
        return;
    }
    struct state_meta meta;
    char why[256];
    int64_t t0 = now_mono_us();
    long n = state_decode(s->core, reply->str, reply->len, &meta, on_section, s, why,
                          sizeof(why));
    if (n < 0) {
        snprintf(err, sizeof(err), "checkpoint %s is unusable: %s; refusing to start "
                 "without it (to start empty after all: DEL %s)", s->key, why, s->key);
        s->hooks.loaded(s->hooks.arg, NULL, err);
        return;
    }
    s->last_ms = meta.saved_ms;
    log_notice("loaded %ld tickets from the checkpoint of %" PRId64 " ms ago in %" PRId64
               " ms; last applied event %" PRIu64 "-%" PRIu64,
               n, now_wall_ms() - meta.saved_ms, (now_mono_us() - t0) / 1000,
               meta.last_ms, meta.last_seq);
    s->hooks.loaded(s->hooks.arg, &meta, NULL);
}

void
snapshot_load(struct snapshot *s, struct rds_conn *conn)
{
    const char *argv[] = { "GET", s->key };
    if (rds_send(conn, load_cb, s, 2, argv, NULL) < 0)
        rds_reset(conn);
}

/* ---- life cycle ---------------------------------------------------------- */

struct snapshot *
snapshot_new(struct event_base *base, const struct config *cfg, struct core *core,
             struct rds_conn *writer, const struct snapshot_hooks *hooks)
{
    struct snapshot *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->base = base;
    s->cfg = cfg;
    s->core = core;
    s->writer = writer;
    s->hooks = *hooks;
    s->refuse_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 20);
    if (snprintf(s->key, sizeof(s->key), "%sstate", cfg->redis.prefix) >= KEY_MAX) {
        free(s);
        return NULL;
    }
    return s;
}

void
snapshot_set_config(struct snapshot *s, const struct config *cfg)
{
    s->cfg = cfg;
}

void
snapshot_set_fence(struct snapshot *s, const char **argv, const size_t *lens)
{
    (void)lens;
    s->fence = argv;
}

void
snapshot_stop(struct snapshot *s)
{
    if (s->timer)
        event_del(s->timer);
}

int
snapshot_add_section(struct snapshot *s, const struct snapshot_section *sec)
{
    if (s->nsec >= SNAPSHOT_MAX_SECTIONS)
        return -1;
    s->sec[s->nsec++] = *sec;
    return 0;
}

void
snapshot_free(struct snapshot *s)
{
    if (s == NULL)
        return;
    if (s->timer)
        event_free(s->timer);
    if (s->sigchld_ev)
        event_free(s->sigchld_ev);
    free(s);
}
