/*
 * ctl_outbox.c - `slawatchctl outbox [--json]`: the notifications in
 * <prefix>outbox (docs/webhooks.md), read with HSCAN and decoded by the
 * daemon's own hook_note_decode, soonest due first: webhook, kind, what it
 * is about, when it is due, attempts so far and the last failure the
 * daemon noted (<prefix>outbox:error:<id>, kept for a day). Read-only.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "slawatch/hook_format.h"
#include "slawatch/util.h"

struct item {
    struct hook_note n;
    char *last_error;             /* malloc'ed or NULL */
    const char *bad;              /* an unreadable record: why */
    char id[HOOK_ID_LEN + 8];
};

struct items {
    struct item *v;
    size_t n, cap;
};

static struct item *
push(struct items *it)
{
    if (it->n == it->cap) {
        size_t cap = it->cap ? 2 * it->cap : 64;
        struct item *v = realloc(it->v, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        it->v = v;
        it->cap = cap;
    }
    struct item *x = &it->v[it->n++];
    memset(x, 0, sizeof(*x));
    return x;
}

/* Every field of the hash, decoded. Returns 0 or an exit status. */
static int
scan(redisContext *c, const struct config *cfg, struct items *it)
{
    char key[KEY_MAX], cursor[64] = "0";
    ctl_key(key, cfg, "outbox");
    do {
        redisReply *r = redisCommand(c, "HSCAN %s %s COUNT 500", key, cursor);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "slawatchctl: HSCAN %s failed: %s\n", key,
                    r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
            if (r)
                freeReplyObject(r);
            return EX_UNAVAILABLE;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *kv = r->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2) {
            const redisReply *id = kv->element[i], *rec = kv->element[i + 1];
            struct item *x = push(it);
            if (x == NULL) {
                freeReplyObject(r);
                fprintf(stderr, "slawatchctl: out of memory\n");
                return 1;
            }
            snprintf(x->id, sizeof(x->id), "%.*s", (int)id->len, id->str ? id->str : "");
            if (rec->type != REDIS_REPLY_STRING ||
                hook_note_decode(&x->n, rec->str, rec->len, &x->bad) < 0) {
                if (x->bad == NULL)
                    x->bad = "not a string";
                x->n.due_ms = INT64_MIN; /* first: it needs a look */
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    /* The last failure of each, as the daemon noted it: pipelined, one
     * round trip per 500. */
    for (size_t from = 0; from < it->n; from += 500) {
        size_t to = from + 500 < it->n ? from + 500 : it->n;
        for (size_t i = from; i < to; i++) {
            char ekey[KEY_MAX];
            if (redisAppendCommand(c, "GET %s",
                                   ctl_key(ekey, cfg, "outbox:error:%s", it->v[i].id)) != REDIS_OK)
                return EX_UNAVAILABLE;
        }
        for (size_t i = from; i < to; i++) {
            void *reply = NULL;
            if (redisGetReply(c, &reply) != REDIS_OK) {
                fprintf(stderr, "slawatchctl: GET %soutbox:error:*: %s\n", cfg->redis.prefix,
                        c->errstr);
                return EX_UNAVAILABLE;
            }
            redisReply *r = reply;
            if (r->type == REDIS_REPLY_STRING)
                it->v[i].last_error = strdup(r->str);
            freeReplyObject(r);
        }
    }
    return 0;
}

static int
item_cmp(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    if (x->n.due_ms != y->n.due_ms)
        return x->n.due_ms < y->n.due_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

static const char *
item_state(const struct item *x, int64_t now)
{
    if (x->bad)
        return "unreadable";
    if (x->n.flags & HOOK_F_RESOLVING)
        return "resolving";
    if (x->n.flags & HOOK_F_DELIVERED)
        return "re-sending";
    if (x->n.attempts > 0)
        return "retrying";
    return x->n.due_ms > now ? "waiting" : "due";
}

/* The last error without the time stamp the daemon puts first. */
static const char *
error_text(const char *e, int64_t *at_ms)
{
    char *end;
    *at_ms = e ? strtoll(e, &end, 10) : 0;
    if (e == NULL)
        return NULL;
    return end != e && *end == ' ' ? end + 1 : e;
}

static json_t *
item_json(const struct item *x, int64_t now)
{
    char a[TS_BUFLEN], subj[HOOK_SUBJECT_LEN];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(x->id));
    json_object_set_new(o, "state", json_string(item_state(x, now)));
    if (x->bad) {
        json_object_set_new(o, "error", json_string(x->bad));
        return o;
    }
    const struct hook_note *n = &x->n;
    json_object_set_new(o, "webhook", json_string(n->webhook));
    json_object_set_new(o, "escalation", json_string(n->escalation));
    json_object_set_new(o, "kind", json_string(hook_kind_name(n->kind)));
    json_object_set_new(o, "subject", json_string(hook_note_subject(n, subj)));
    json_object_set_new(o, "ticket", n->objective ? json_null() : json_string(n->ticket));
    json_object_set_new(o, "tier", json_string(n->tier));
    json_object_set_new(o, "metric", json_string(cfg_metric_name(n->metric)));
    json_object_set_new(o, "due", json_string(ts_format(n->due_ms, a)));
    json_object_set_new(o, "due_ms", json_integer(n->due_ms));
    json_object_set_new(o, "created", json_string(ts_format(n->created_ms, a)));
    json_object_set_new(o, "attempts", json_integer(n->attempts));
    int64_t at;
    const char *err = error_text(x->last_error, &at);
    json_object_set_new(o, "last_error", err ? json_string(err) : json_null());
    json_object_set_new(o, "last_error_at", err && at > 0 ? json_string(ts_format(at, a))
                                                           : json_null());
    return o;
}

int
cmd_outbox(const struct config *cfg, int argc, char **argv)
{
    bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !json))
        return ctl_usage_error("usage: outbox [--json]");
    redisContext *c = ctl_connect(cfg);
    if (c == NULL)
        return EX_UNAVAILABLE;
    struct items it = { NULL, 0, 0 };
    int rc = scan(c, cfg, &it);
    redisFree(c);
    int64_t now = now_wall_ms();
    if (rc == 0) {
        if (it.n > 1) /* qsort(NULL, 0, ...) is undefined */
            qsort(it.v, it.n, sizeof(*it.v), item_cmp);
        if (json) {
            json_t *arr = json_array();
            for (size_t i = 0; i < it.n; i++)
                json_array_append_new(arr, item_json(&it.v[i], now));
            json_t *o = json_object();
            json_object_set_new(o, "notifications", arr);
            ctl_print_json(o);
        } else {
            size_t waiting = 0, retrying = 0;
            if (it.n)
                printf("%-24s  %-14s %-10s %-14s %-10s %-28s %s\n", "DUE", "", "STATE",
                       "WEBHOOK", "KIND", "SUBJECT", "ATTEMPTS");
            for (size_t i = 0; i < it.n; i++) {
                const struct item *x = &it.v[i];
                char a[TS_BUFLEN], due[CTL_DUE_BUFLEN], subj[HOOK_SUBJECT_LEN];
                const char *st = item_state(x, now);
                if (x->bad) {
                    printf("%-24s  %-14s %-10s record %s: %s\n", "-", "", st, x->id, x->bad);
                    continue;
                }
                waiting += strcmp(st, "waiting") == 0;
                retrying += strcmp(st, "retrying") == 0;
                printf("%-24s  %-14s %-10s %-14s %-10s %-28s %d\n", ts_format(x->n.due_ms, a),
                       ctl_due_text(x->n.due_ms - now, due), st, x->n.webhook,
                       hook_kind_name(x->n.kind), hook_note_subject(&x->n, subj),
                       x->n.attempts);
                int64_t at;
                const char *err = error_text(x->last_error, &at);
                if (err)
                    printf("%-26s last error%s%s: %s\n", "", at > 0 ? " at " : "",
                           at > 0 ? ts_format(at, a) : "", err);
            }
            if (it.n == 0)
                printf("outbox empty: every notification was delivered or given up\n");
            else
                printf("%zu notification%s (%zu waiting for `after`, %zu retrying)\n", it.n,
                       it.n == 1 ? "" : "s", waiting, retrying);
        }
    }
    for (size_t i = 0; i < it.n; i++)
        free(it.v[i].last_error);
    free(it.v);
    return rc;
}
