/*
 * state.c - encodes and decodes checkpoints (see state.h). Owns the
 * checkpoint layout and its CRC only; the bytes go through wire.h. Never
 * does I/O and never trusts a blob: every read is bounds-checked by the
 * wire_reader, every time is range-checked before the core computes with
 * it, and the CRC only guards against damage (whoever can write the key
 * can also fix the CRC up).
 */
#include "slawatch/state.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC "SLAWST01"
/* Version 2 adds each clock's K (the arrival of the event that set its
 * deadline, as core.c keeps it in node.aux); version 1 is read with K at
 * the deadline. Version 3 (next_reply and the KPIs): per ticket u16 flags
 * (TF_*) instead of u8, u32 rated_s, i64 opened_ms, and before each clock
 * slot a u8 metric; after the tickets, u64 count and the closed-ticket
 * records (id, attributes, tier, i64 forget_ms, u32 rated_s, u8 score),
 * oldest first. */
#define STATE_VERSION 3

uint32_t
state_crc32(const void *data, size_t len)
{
    static uint32_t table[256];
    static int ready;
    const unsigned char *p = data;
    uint32_t crc = 0xffffffffu;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    for (size_t i = 0; i < len; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

static void
put_clock(struct wire_buf *b, const struct sla_clock *c)
{
    wire_put_i64(b, c->started_ms);
    wire_put_i64(b, c->resumed_ms);
    wire_put_i64(b, c->consumed_ms);
    wire_put_i64(b, c->deadline_ms);
    wire_put_u16(b, c->cycle);
    wire_put_u8(b, c->state);
    wire_put_u8(b, c->outcome);
    wire_put_u8(b, c->next_warn);
    wire_put_u32(b, c->node.aux);
}

struct encode_ctx {
    const struct core *core;
    struct wire_buf *b;
};

static void
put_ticket(void *arg, const struct ticket *t)
{
    struct encode_ctx *ctx = arg;
    struct ticket_image img;
    core_ticket_image(ctx->core, t, &img);
    wire_put_str(ctx->b, img.id, img.id_len);
    for (int a = 0; a < ATTR_COUNT; a++)
        wire_put_str(ctx->b, img.attr[a], img.attr_len[a]);
    wire_put_str(ctx->b, img.tier, img.tier_len);
    wire_put_str(ctx->b, img.explicit_tier, img.explicit_tier_len);
    wire_put_u16(ctx->b, img.flags);
    wire_put_u32(ctx->b, img.rated_s);
    wire_put_i64(ctx->b, img.opened_ms);
    for (int i = 0; i < CLOCK_SLOTS; i++) {
        wire_put_u8(ctx->b, img.clk[i].metric);
        put_clock(ctx->b, &img.clk[i]);
    }
}

static void
put_closed(void *arg, const struct closed_image *c)
{
    struct encode_ctx *ctx = arg;
    wire_put_str(ctx->b, c->id, c->id_len);
    for (int a = 0; a < ATTR_COUNT; a++)
        wire_put_str(ctx->b, c->attr[a], c->attr_len[a]);
    wire_put_str(ctx->b, c->tier, c->tier_len);
    wire_put_i64(ctx->b, c->forget_ms);
    wire_put_u32(ctx->b, c->rated_s);
    wire_put_u8(ctx->b, c->score);
}

int
state_encode(const struct core *core, const struct state_meta *meta,
             const struct state_section *sections, size_t nsections,
             struct wire_buf *out)
{
    size_t start = out->len;
    struct encode_ctx ctx = { core, out };

    wire_put(out, STATE_MAGIC, 8);
    wire_put_u32(out, STATE_VERSION);
    wire_put_i64(out, meta->saved_ms);
    wire_put_i64(out, meta->core_now_ms);
    wire_put_u64(out, meta->last_ms);
    wire_put_u64(out, meta->last_seq);
    wire_put_u64(out, meta->events_total);
    wire_put_u64(out, meta->rejected_total);
    wire_put_u64(out, core_ticket_count(core));
    core_foreach(core, put_ticket, &ctx);
    wire_put_u64(out, core_closed_count(core));
    core_foreach_closed(core, put_closed, &ctx);
    wire_put_u32(out, (uint32_t)nsections);
    for (size_t i = 0; i < nsections; i++) {
        wire_put_u32(out, sections[i].tag);
        wire_put_u64(out, sections[i].len);
        wire_put(out, sections[i].data, sections[i].len);
    }
    if (out->oom)
        return -1;
    wire_put_u32(out, state_crc32(out->data + start, out->len - start));
    return out->oom ? -1 : 0;
}

/* ---- decoding ---------------------------------------------------------- */

static void
get_clock(struct wire_reader *r, struct sla_clock *c, uint32_t version)
{
    memset(c, 0, sizeof(*c));
    c->started_ms = wire_get_i64(r);
    c->resumed_ms = wire_get_i64(r);
    c->consumed_ms = wire_get_i64(r);
    c->deadline_ms = wire_get_i64(r);
    c->cycle = wire_get_u16(r);
    c->state = wire_get_u8(r);
    c->outcome = wire_get_u8(r);
    c->next_warn = wire_get_u8(r);
    if (version >= 2)
        c->node.aux = wire_get_u32(r);
    if (c->state > CLOCK_STOPPED || c->outcome > OUTCOME_BREACHED ||
        c->next_warn > CFG_MAX_WARN)
        r->bad = 1;
}

/* What the core can have written. event_parse bounds every event time to
 * [0, TS_MAX_MS]. A running or paused clock only ever moves resumed_ms
 * forward from its start, and its business time, counted over disjoint
 * stretches before resumed_ms, never runs faster than real time (so it
 * stays within resumed - started, and within the range once more time
 * is added: a restored clock that broke this would later write a
 * checkpoint that this refuses). A deadline is INT64_MAX for "never", and
 * lies at most the consumed time before its start once a target was cut
 * below it. Anything else was not written by slawatch, and the core's
 * arithmetic must not meet it. Returns NULL or what is wrong. */
static const char *
clock_absurd(const struct sla_clock *c)
{
    bool active = c->state == CLOCK_RUNNING || c->state == CLOCK_PAUSED;

    if (c->started_ms < 0 || c->started_ms > TS_MAX_MS)
        return "start";
    if (c->resumed_ms < 0 || c->resumed_ms > TS_MAX_MS ||
        (active && c->resumed_ms < c->started_ms))
        return "last start or stop";
    if (c->consumed_ms < 0 || c->consumed_ms > TS_MAX_MS ||
        (active && c->consumed_ms > c->resumed_ms - c->started_ms))
        return "consumed time";
    if (c->deadline_ms < -TS_MAX_MS)
        return "deadline";
    return NULL;
}

/* Version 1 and 2 tickets: resolved and paused, and what the clocks say of
 * the rest. A ticket resolved then has had its first resolution (counted
 * before KPIs existed: not again); a stopped response clock was answered. */
static void
upgrade_flags(struct ticket_image *img, uint8_t flags)
{
    const struct sla_clock *resp = &img->clk[0], *res = &img->clk[1];
    if (flags & 1)
        img->flags |= TF_RESOLVED;
    if (flags & 2)
        img->flags |= TF_PAUSED;
    /* Resolved once: its first resolution (and a reopen) were never
     * counted, so neither is counted now. */
    if ((flags & 1) || res->state == CLOCK_STOPPED || res->cycle > 0)
        img->flags |= TF_FIRST_DONE | TF_REOPENED;
    if (resp->state == CLOCK_STOPPED) {
        img->flags |= resp->outcome == OUTCOME_BREACHED ? TF_RESP_BREACHED : TF_RESP_MET;
        /* Stopped by a reply, unless the first resolution stopped both
         * clocks at once. */
        if (!(res->state == CLOCK_STOPPED && res->cycle == 0 &&
              res->resumed_ms == resp->resumed_ms))
            img->flags |= TF_ANSWERED;
    }
}

long
state_decode(struct core *core, const char *data, size_t len,
             struct state_meta *meta,
             void (*on_section)(void *arg, uint32_t tag, const char *sdata,
                                size_t slen),
             void *arg, char *err, size_t errlen)
{
    struct wire_reader r;

    if (len < 12 || memcmp(data, STATE_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a slawatch checkpoint");
        return -1;
    }
    wire_reader_init(&r, data + len - 4, 4);
    uint32_t want = wire_get_u32(&r);
    if (state_crc32(data, len - 4) != want) {
        snprintf(err, errlen, "checkpoint damaged (CRC mismatch)");
        return -1;
    }
    wire_reader_init(&r, data + 8, len - 12); /* after the magic, before the CRC */
    uint32_t version = wire_get_u32(&r);
    if (version < 1 || version > STATE_VERSION) {
        snprintf(err, errlen, "checkpoint version %u not supported", version);
        return -1;
    }
    meta->saved_ms = wire_get_i64(&r);
    meta->core_now_ms = wire_get_i64(&r);
    meta->last_ms = wire_get_u64(&r);
    meta->last_seq = wire_get_u64(&r);
    meta->events_total = wire_get_u64(&r);
    meta->rejected_total = wire_get_u64(&r);
    uint64_t n = wire_get_u64(&r);
    if (!r.bad && (meta->core_now_ms < 0 || meta->core_now_ms > TS_MAX_MS ||
                   meta->saved_ms < 0 || meta->saved_ms > TS_MAX_MS)) {
        snprintf(err, errlen,
                 "checkpoint has an impossible time (saved at %lld, core "
                 "time %lld ms)",
                 (long long)meta->saved_ms, (long long)meta->core_now_ms);
        return -1;
    }
    core_restore_now(core, meta->core_now_ms);
    long restored = 0;
    for (uint64_t i = 0; i < n && !r.bad; i++) {
        struct ticket_image img;
        memset(&img, 0, sizeof(img));
        img.id = wire_get_str(&r, &img.id_len);
        for (int a = 0; a < ATTR_COUNT; a++)
            img.attr[a] = wire_get_str(&r, &img.attr_len[a]);
        img.tier = wire_get_str(&r, &img.tier_len);
        img.explicit_tier = wire_get_str(&r, &img.explicit_tier_len);
        if (version >= 3) {
            img.flags = wire_get_u16(&r);
            img.rated_s = wire_get_u32(&r);
            img.opened_ms = wire_get_i64(&r);
            for (int k = 0; k < CLOCK_SLOTS; k++) {
                uint8_t metric = wire_get_u8(&r);
                get_clock(&r, &img.clk[k], version);
                img.clk[k].metric = metric;
            }
        } else {
            uint8_t flags = wire_get_u8(&r);
            for (int k = 0; k < CLOCK_SLOTS; k++)
                get_clock(&r, &img.clk[k], version);
            img.clk[0].metric = METRIC_RESPONSE;
            img.clk[1].metric = METRIC_RESOLUTION;
            img.opened_ms = img.clk[0].started_ms;
            upgrade_flags(&img, flags);
        }
        if (r.bad || img.id == NULL || img.tier == NULL)
            break;
        if (img.clk[1].metric != METRIC_RESOLUTION ||
            (img.clk[0].metric != METRIC_RESPONSE &&
             img.clk[0].metric != METRIC_NEXT_REPLY) ||
            img.opened_ms < 0 || img.opened_ms > TS_MAX_MS) {
            snprintf(err, errlen, "checkpoint ticket %.*s: impossible clock slots or opening",
                     (int)(img.id_len > 64 ? 64 : img.id_len), img.id);
            return -1;
        }
        for (int m = 0; m < CLOCK_SLOTS; m++) {
            const char *what = clock_absurd(&img.clk[m]);
            if (what != NULL) {
                snprintf(err, errlen,
                         "checkpoint ticket %.*s: the %s clock's %s is "
                         "impossible (started %lld, resumed %lld, consumed "
                         "%lld, deadline %lld ms)",
                         (int)(img.id_len > 64 ? 64 : img.id_len), img.id,
                         cfg_metric_name(img.clk[m].metric), what,
                         (long long)img.clk[m].started_ms,
                         (long long)img.clk[m].resumed_ms,
                         (long long)img.clk[m].consumed_ms,
                         (long long)img.clk[m].deadline_ms);
                return -1;
            }
        }
        if (core_restore_ticket(core, &img) < 0) {
            snprintf(err, errlen, "cannot restore ticket %.*s (duplicate or out of memory)",
                     (int)img.id_len, img.id);
            return -1;
        }
        restored++;
    }
    uint64_t nclosed = version >= 3 && !r.bad ? wire_get_u64(&r) : 0;
    for (uint64_t i = 0; i < nclosed && !r.bad; i++) {
        struct closed_image c;
        memset(&c, 0, sizeof(c));
        c.id = wire_get_str(&r, &c.id_len);
        for (int a = 0; a < ATTR_COUNT; a++)
            c.attr[a] = wire_get_str(&r, &c.attr_len[a]);
        c.tier = wire_get_str(&r, &c.tier_len);
        c.forget_ms = wire_get_i64(&r);
        c.rated_s = wire_get_u32(&r);
        c.score = wire_get_u8(&r);
        if (r.bad || c.id == NULL || c.tier == NULL)
            break;
        if (c.forget_ms < 0 || c.forget_ms > TS_MAX_MS + CORE_CLOSED_KEEP_MS ||
            core_restore_closed(core, &c) < 0) {
            snprintf(err, errlen, "checkpoint closed ticket %.*s: cannot restore it "
                     "(impossible, duplicate, out of order or out of memory)",
                     (int)(c.id_len > 64 ? 64 : c.id_len), c.id);
            return -1;
        }
    }
    uint32_t nsec = r.bad ? 0 : wire_get_u32(&r);
    for (uint32_t i = 0; i < nsec && !r.bad; i++) {
        uint32_t tag = wire_get_u32(&r);
        uint64_t slen = wire_get_u64(&r);
        const char *sdata = wire_get_bytes(&r, (size_t)slen);
        if (sdata && on_section)
            on_section(arg, tag, sdata, (size_t)slen);
    }
    if (r.bad || r.left != 0) {
        snprintf(err, errlen, "checkpoint truncated or malformed");
        return -1;
    }
    return restored;
}

/* ---- the writes section ------------------------------------------------ */

#define WRITE_MAX_ARGS (1u << 20)

void
state_write_put(struct wire_buf *b, size_t argc, const char *const *argv,
                const size_t *lens)
{
    wire_put_u32(b, (uint32_t)argc);
    for (size_t i = 0; i < argc; i++) {
        wire_put_u32(b, (uint32_t)lens[i]);
        wire_put(b, argv[i], lens[i]);
    }
}

void
state_write_free(struct state_write *w)
{
    free(w->argv);
    free(w->lens);
    memset(w, 0, sizeof(*w));
}

static int
write_alloc(struct state_write *w, size_t argc)
{
    memset(w, 0, sizeof(*w));
    w->argv = calloc(argc, sizeof(*w->argv));
    w->lens = calloc(argc, sizeof(*w->lens));
    if (w->argv == NULL || w->lens == NULL) {
        state_write_free(w);
        return -1;
    }
    w->argc = argc;
    return 0;
}

int
state_write_next(struct wire_reader *r, struct state_write *w)
{
    memset(w, 0, sizeof(*w));
    if (r->left == 0)
        return 0;
    uint32_t argc = wire_get_u32(r);
    /* Each argument takes at least its 4-byte length. */
    if (r->bad || argc == 0 || argc > WRITE_MAX_ARGS || argc > r->left / 4)
        return -1;
    if (write_alloc(w, argc) < 0)
        return -1;
    for (size_t i = 0; i < argc; i++) {
        uint32_t len = wire_get_u32(r);
        const char *arg = wire_get_bytes(r, len);
        if (arg == NULL && len > 0)
            r->bad = 1;
        if (r->bad) {
            state_write_free(w);
            return -1;
        }
        w->argv[i] = arg ? arg : "";
        w->lens[i] = len;
    }
    return 1;
}

/* Reads "<digits>\r\n" at *p: a decimal without sign, at most 10 digits. */
static int
resp_number(const char **p, const char *end, size_t *out)
{
    size_t n = 0, digits = 0;
    while (*p < end && **p >= '0' && **p <= '9' && digits < 10) {
        n = n * 10 + (size_t)(**p - '0');
        (*p)++;
        digits++;
    }
    if (digits == 0 || end - *p < 2 || (*p)[0] != '\r' || (*p)[1] != '\n')
        return -1;
    *p += 2;
    *out = n;
    return 0;
}

int
state_write_from_resp(const char *buf, size_t len, struct state_write *w,
                      const char **why)
{
    const char *p = buf, *end = buf + len;
    size_t argc;
    memset(w, 0, sizeof(*w));
    if (len < 1 || *p++ != '*' || resp_number(&p, end, &argc) < 0) {
        *why = "not a RESP array";
        return -1;
    }
    /* Each element takes at least "$0\r\n\r\n". */
    if (argc == 0 || argc > WRITE_MAX_ARGS || argc > (size_t)(end - p) / 6) {
        *why = "bad argument count";
        return -1;
    }
    if (write_alloc(w, argc) < 0) {
        *why = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < argc; i++) {
        size_t n;
        if (p >= end || *p++ != '$' || resp_number(&p, end, &n) < 0 ||
            (size_t)(end - p) < n + 2 || p[n] != '\r' || p[n + 1] != '\n') {
            state_write_free(w);
            *why = "not a bulk string";
            return -1;
        }
        w->argv[i] = p;
        w->lens[i] = n;
        p += n + 2;
    }
    if (p != end) {
        state_write_free(w);
        *why = "more than one command in one record";
        return -1;
    }
    return 0;
}

static bool
arg_is(const struct state_write *w, size_t i, const char *name)
{
    size_t n = strlen(name);
    if (w->lens[i] != n)
        return false;
    for (size_t k = 0; k < n; k++) {
        char c = w->argv[i][k];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c != name[k])
            return false;
    }
    return true;
}

const char *
state_write_check(const struct state_write *w, const char *prefix)
{
    /* The commands the daemon queues itself, their least argument count,
     * whether the count is fixed by pairs, and where their keys are. */
    static const struct {
        const char *name;
        size_t min_argc;
        int parity;      /* -1: any; else argc % 2 must equal it */
        size_t key_step; /* 0: the key is argv[1] only; else argv[1], 1+step, ... */
    } allowed[] = {
        { "XADD", 5, -1, 0 }, /* XADD key [MAXLEN ~ n] id field value ... */
        { "XACK", 4, -1, 0 }, /* XACK key group id ... */
        { "HSET", 4, 0, 0 },  /* HSET key field value ... */
        { "HDEL", 3, -1, 0 }, /* HDEL key field ... */
        { "MSET", 3, 1, 2 },  /* MSET key value ... */
        { "DEL", 2, -1, 1 },  /* DEL key ... */
    };
    size_t plen = strlen(prefix);
    if (w->argc == 0)
        return "empty command";
    for (size_t c = 0; c < ARRAY_LEN(allowed); c++) {
        if (!arg_is(w, 0, allowed[c].name))
            continue;
        if (w->argc < allowed[c].min_argc ||
            (allowed[c].parity >= 0 && (int)(w->argc % 2) != allowed[c].parity))
            return "wrong number of arguments";
        size_t step = allowed[c].key_step;
        for (size_t k = 1; k < w->argc; k += step ? step : w->argc) {
            if (w->lens[k] < plen || memcmp(w->argv[k], prefix, plen) != 0)
                return "a key outside the prefix";
        }
        return NULL;
    }
    return "command not allowed";
}
