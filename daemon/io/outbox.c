/*
 * outbox.c - commands on <prefix>outbox (see outbox.h). Must not interpret
 * records, and must treat every reply as possibly NULL or an error (the
 * callers' callbacks do).
 */
#define _GNU_SOURCE
#include "slawatch/outbox.h"

#include <stdio.h>
#include <string.h>

#include "slawatch/log.h"

int
outbox_init(struct outbox *ob, struct rds_conn *conn, const char *prefix)
{
    memset(ob, 0, sizeof(*ob));
    ob->conn = conn;
    int n = snprintf(ob->key, sizeof(ob->key), "%soutbox", prefix);
    return n < 0 || (size_t)n >= sizeof(ob->key) ? -1 : 0;
}

int
outbox_put(struct outbox *ob, const char *id, const char *rec, size_t len,
           rds_reply_fn *fn, void *privdata)
{
    const char *argv[] = {"HSET", ob->key, id, rec};
    size_t lens[] = {4, strlen(ob->key), strlen(id), len};
    return rds_queue(ob->conn, fn, privdata, 4, argv, lens);
}

int
outbox_del(struct outbox *ob, const char *id)
{
    const char *argv[] = {"HDEL", ob->key, id};
    size_t lens[] = {4, strlen(ob->key), strlen(id)};
    return rds_queue(ob->conn, NULL, NULL, 3, argv, lens);
}

int
outbox_note_error(struct outbox *ob, const char *id, int64_t at_ms, const char *text)
{
    char key[OUTBOX_KEY_MAX + 80], val[512];
    snprintf(key, sizeof(key), "%s:error:%s", ob->key, id);
    snprintf(val, sizeof(val), "%lld %s", (long long)at_ms, text);
    const char *argv[] = {"SET", key, val, "EX", "86400"};
    return rds_send_write(ob->conn, NULL, NULL, 5, argv, NULL);
}

int
outbox_get(struct outbox *ob, const char *id, rds_reply_fn *fn, void *privdata)
{
    const char *argv[] = {"HGET", ob->key, id};
    size_t lens[] = {4, strlen(ob->key), strlen(id)};
    return rds_send(ob->conn, fn, privdata, 3, argv, lens);
}

/* Splits an HSCAN reply: the next cursor ("0" when done) and the flat
 * field/value array. Returns -1 on a malformed reply. */
static int
scan_reply(const redisReply *reply, char *cursor, size_t cursor_size,
           const redisReply **items)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 2)
        return -1;
    const redisReply *c = reply->element[0], *arr = reply->element[1];
    if (c->type != REDIS_REPLY_STRING || c->len == 0 || c->len >= cursor_size ||
        arr->type != REDIS_REPLY_ARRAY || arr->elements % 2 != 0)
        return -1;
    for (size_t i = 0; i < arr->elements; i++)
        if (arr->element[i]->type != REDIS_REPLY_STRING)
            return -1;
    memcpy(cursor, c->str, c->len);
    cursor[c->len] = '\0';
    *items = arr;
    return 0;
}

static void scan_next(struct outbox *ob);

static void
scan_cb(struct rds_conn *conn, redisReply *reply, void *privdata)
{
    struct outbox *ob = privdata;
    const redisReply *items;
    (void)conn;
    if (reply == NULL) {
        ob->loading = false; /* started over at the next call */
        return;
    }
    if (scan_reply(reply, ob->cursor, sizeof(ob->cursor), &items) < 0) {
        log_err("outbox: cannot read %s: %s", ob->key,
                reply->type == REDIS_REPLY_ERROR ? reply->str
                                                 : "unexpected reply");
        ob->loading = false;
        ob->loaded = true;
        ob->done(ob->arg);
        return;
    }
    for (size_t i = 0; i + 1 < items->elements; i += 2)
        ob->each(ob->arg, items->element[i]->str, items->element[i]->len,
                 items->element[i + 1]->str, items->element[i + 1]->len);
    if (strcmp(ob->cursor, "0") == 0) {
        ob->loading = false;
        ob->loaded = true;
        ob->done(ob->arg);
        return;
    }
    scan_next(ob);
}

static void
scan_next(struct outbox *ob)
{
    char count[16];
    snprintf(count, sizeof(count), "%d", OUTBOX_SCAN_COUNT);
    const char *argv[] = {"HSCAN", ob->key, ob->cursor, "COUNT", count};
    if (rds_send(ob->conn, scan_cb, ob, 5, argv, NULL) < 0)
        ob->loading = false;
}

void
outbox_load(struct outbox *ob, outbox_each_fn *each, outbox_done_fn *done,
            void *arg)
{
    if (ob->loaded || ob->loading)
        return;
    ob->each = each;
    ob->done = done;
    ob->arg = arg;
    ob->loading = true;
    snprintf(ob->cursor, sizeof(ob->cursor), "0");
    scan_next(ob);
}
