/*
 * ctl_view.c - the daemon's view of every ticket, rebuilt read-only: its
 * last checkpoint (<prefix>state) plus the stream entries after it,
 * through the same code as the daemon (ingest_entry_fields, event_apply),
 * then advanced to the wall clock. Writes nothing to Redis; the rebuilt
 * core has no sinks, so nothing is recorded or sent.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "slawatch/ingest.h"
#include "slawatch/util.h"

static int64_t
ctl_wall(void *arg)
{
    (void)arg;
    return now_wall_ms();
}

/* Applies every entry after ms-seq, 10000 at a time. Returns the count of
 * entries applied (rejected ones are skipped, as the daemon dead-letters
 * them), or -1 when a read fails. */
static long
replay_after(redisContext *c, const struct config *cfg, struct core *core,
             uint64_t ms, uint64_t seq)
{
    char key[KEY_MAX], start[64];
    long applied = 0;
    ctl_key(key, cfg, "events");
    snprintf(start, sizeof(start), "(%llu-%llu", (unsigned long long)ms,
             (unsigned long long)seq);
    for (;;) {
        redisReply *r = redisCommand(c, "XRANGE %s %s + COUNT 10000", key, start);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject(r);
            return -1;
        }
        size_t n = r->elements;
        for (size_t i = 0; i < n; i++) {
            redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
                e->element[0]->type != REDIS_REPLY_STRING ||
                e->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            struct ev_field f[INGEST_MAX_FIELDS];
            size_t nf = 0;
            uint64_t ems, eseq;
            struct sla_event ev;
            const char *reason;
            /* The daemon's own path (ingest.c): the same checks, the same
             * arrival times, the same rule. */
            if (stream_id_parse(e->element[0]->str, e->element[0]->len, &ems, &eseq) == 0 &&
                ingest_entry_fields(e->element[1], f, INGEST_MAX_FIELDS, &nf, &reason) == 0 &&
                event_apply(core, cfg, f, nf, ems, now_wall_ms(), &ev, &reason) == 0)
                applied++;
            snprintf(start, sizeof(start), "(%.*s", (int)e->element[0]->len,
                     e->element[0]->str);
        }
        freeReplyObject(r);
        if (n < 10000)
            return applied;
    }
}

int
ctl_view_load(redisContext *c, const struct config *cfg, struct ctl_view *view)
{
    char key[KEY_MAX], err[256];
    memset(view, 0, sizeof(*view));
    view->core = core_new(cfg, ctl_wall, NULL, NULL);
    if (view->core == NULL) {
        fprintf(stderr, "slawatchctl: out of memory\n");
        return 1;
    }
    ctl_key(key, cfg, "state");
    redisReply *r = redisCommand(c, "GET %s", key);
    if (r == NULL || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING)) {
        fprintf(stderr, "slawatchctl: GET %s failed: %s\n", key,
                r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        if (r)
            freeReplyObject(r);
        return EX_UNAVAILABLE;
    }
    if (r->type == REDIS_REPLY_STRING &&
        state_decode(view->core, r->str, r->len, &view->meta, NULL, NULL, err,
                     sizeof(err)) < 0) {
        fprintf(stderr, "slawatchctl: %s: %s\n", key, err);
        freeReplyObject(r);
        return 1;
    }
    freeReplyObject(r);
    view->replayed = replay_after(c, cfg, view->core, view->meta.last_ms,
                                  view->meta.last_seq);
    if (view->replayed < 0) {
        fprintf(stderr, "slawatchctl: XRANGE %sevents failed: %s\n", cfg->redis.prefix,
                c->err ? c->errstr : "unexpected reply");
        return EX_UNAVAILABLE;
    }
    view->now_ms = now_wall_ms();
    core_advance(view->core, view->now_ms);
    return 0;
}

void
ctl_view_free(struct ctl_view *view)
{
    core_free(view->core);
    view->core = NULL;
}

void
ctl_view_source(const struct ctl_view *view, char *buf, size_t len)
{
    if (view->meta.saved_ms)
        snprintf(buf, len, "checkpoint %lld ms old + %ld events after it",
                 (long long)(view->now_ms - view->meta.saved_ms), view->replayed);
    else
        snprintf(buf, len, "%ld events (no checkpoint yet)", view->replayed);
}
