/*
 * state.c - encodes and decodes checkpoints (see state.h). Owns the byte
 * format only: never does I/O and never trusts a blob (every length is
 * checked against what is left, and a CRC guards the whole).
 */
#include "slawatch/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC "SLAWST01"
#define STATE_VERSION 1
#define STR_ABSENT 0xffffu

void
sbuf_init(struct state_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void
sbuf_free(struct state_buf *b)
{
    free(b->data);
    sbuf_init(b);
}

void
sbuf_put(struct state_buf *b, const void *p, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->oom = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void
sbuf_u8(struct state_buf *b, uint8_t v)
{
    sbuf_put(b, &v, 1);
}

static void
sbuf_u16(struct state_buf *b, uint16_t v)
{
    unsigned char x[2] = { (unsigned char)v, (unsigned char)(v >> 8) };
    sbuf_put(b, x, 2);
}

void
sbuf_u32(struct state_buf *b, uint32_t v)
{
    unsigned char x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    sbuf_put(b, x, 4);
}

void
sbuf_u64(struct state_buf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    sbuf_put(b, x, 8);
}

static void
sbuf_str(struct state_buf *b, const char *s, size_t len)
{
    if (s == NULL) {
        sbuf_u16(b, STR_ABSENT);
        return;
    }
    sbuf_u16(b, (uint16_t)len);
    sbuf_put(b, s, len);
}

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
put_clock(struct state_buf *b, const struct sla_clock *c)
{
    sbuf_u64(b, (uint64_t)c->started_ms);
    sbuf_u64(b, (uint64_t)c->resumed_ms);
    sbuf_u64(b, (uint64_t)c->consumed_ms);
    sbuf_u64(b, (uint64_t)c->deadline_ms);
    sbuf_u16(b, c->cycle);
    sbuf_u8(b, c->state);
    sbuf_u8(b, c->outcome);
    sbuf_u8(b, c->next_warn);
}

struct encode_ctx {
    const struct core *core;
    struct state_buf *b;
};

static void
put_ticket(void *arg, const struct ticket *t)
{
    struct encode_ctx *ctx = arg;
    struct ticket_image img;
    core_ticket_image(ctx->core, t, &img);
    sbuf_str(ctx->b, img.id, img.id_len);
    for (int a = 0; a < ATTR_COUNT; a++)
        sbuf_str(ctx->b, img.attr[a], img.attr_len[a]);
    sbuf_str(ctx->b, img.tier, img.tier_len);
    sbuf_str(ctx->b, img.explicit_tier, img.explicit_tier_len);
    sbuf_u8(ctx->b, (uint8_t)(img.resolved | img.paused << 1));
    for (int m = 0; m < METRIC_COUNT; m++)
        put_clock(ctx->b, &img.clk[m]);
}

int
state_encode(const struct core *core, const struct state_meta *meta,
             const struct state_section *sections, size_t nsections,
             struct state_buf *out)
{
    size_t start = out->len;
    struct encode_ctx ctx = { core, out };

    sbuf_put(out, STATE_MAGIC, 8);
    sbuf_u32(out, STATE_VERSION);
    sbuf_u64(out, (uint64_t)meta->saved_ms);
    sbuf_u64(out, (uint64_t)meta->core_now_ms);
    sbuf_u64(out, meta->last_ms);
    sbuf_u64(out, meta->last_seq);
    sbuf_u64(out, meta->events_total);
    sbuf_u64(out, meta->rejected_total);
    sbuf_u64(out, core_ticket_count(core));
    core_foreach(core, put_ticket, &ctx);
    sbuf_u32(out, (uint32_t)nsections);
    for (size_t i = 0; i < nsections; i++) {
        sbuf_u32(out, sections[i].tag);
        sbuf_u64(out, sections[i].len);
        sbuf_put(out, sections[i].data, sections[i].len);
    }
    if (out->oom)
        return -1;
    sbuf_u32(out, state_crc32(out->data + start, out->len - start));
    return out->oom ? -1 : 0;
}

/* ---- decoding ---------------------------------------------------------- */

struct reader {
    const unsigned char *p;
    size_t left;
    int bad;
};

static const void *
take(struct reader *r, size_t n)
{
    if (r->bad || n > r->left) {
        r->bad = 1;
        return NULL;
    }
    const void *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint64_t
get_uint(struct reader *r, int bytes)
{
    const unsigned char *p = take(r, (size_t)bytes);
    uint64_t v = 0;
    if (p == NULL)
        return 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static const char *
get_str(struct reader *r, size_t *len)
{
    uint16_t n = (uint16_t)get_uint(r, 2);
    *len = 0;
    if (r->bad || n == STR_ABSENT)
        return NULL;
    *len = n;
    return take(r, n);
}

static void
get_clock(struct reader *r, struct sla_clock *c)
{
    memset(c, 0, sizeof(*c));
    c->started_ms = (int64_t)get_uint(r, 8);
    c->resumed_ms = (int64_t)get_uint(r, 8);
    c->consumed_ms = (int64_t)get_uint(r, 8);
    c->deadline_ms = (int64_t)get_uint(r, 8);
    c->cycle = (uint16_t)get_uint(r, 2);
    c->state = (uint8_t)get_uint(r, 1);
    c->outcome = (uint8_t)get_uint(r, 1);
    c->next_warn = (uint8_t)get_uint(r, 1);
    if (c->state > CLOCK_STOPPED || c->outcome > OUTCOME_BREACHED ||
        c->next_warn > CFG_MAX_WARN)
        r->bad = 1;
}

long
state_decode(struct core *core, const char *data, size_t len,
             struct state_meta *meta,
             void (*on_section)(void *arg, uint32_t tag, const char *sdata,
                                size_t slen),
             void *arg, char *err, size_t errlen)
{
    struct reader r = { (const unsigned char *)data, len, 0 };

    if (len < 12 || memcmp(data, STATE_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a slawatch checkpoint");
        return -1;
    }
    uint32_t want = (uint32_t)((const unsigned char *)data)[len - 4] |
           (uint32_t)((const unsigned char *)data)[len - 3] << 8 |
           (uint32_t)((const unsigned char *)data)[len - 2] << 16 |
           (uint32_t)((const unsigned char *)data)[len - 1] << 24;
    if (state_crc32(data, len - 4) != want) {
        snprintf(err, errlen, "checkpoint damaged (CRC mismatch)");
        return -1;
    }
    r.left = len - 4;
    (void)take(&r, 8);
    uint32_t version = (uint32_t)get_uint(&r, 4);
    if (version != STATE_VERSION) {
        snprintf(err, errlen, "checkpoint version %u not supported", version);
        return -1;
    }
    meta->saved_ms = (int64_t)get_uint(&r, 8);
    meta->core_now_ms = (int64_t)get_uint(&r, 8);
    meta->last_ms = get_uint(&r, 8);
    meta->last_seq = get_uint(&r, 8);
    meta->events_total = get_uint(&r, 8);
    meta->rejected_total = get_uint(&r, 8);
    uint64_t n = get_uint(&r, 8);
    core_restore_now(core, meta->core_now_ms);
    long restored = 0;
    for (uint64_t i = 0; i < n && !r.bad; i++) {
        struct ticket_image img;
        memset(&img, 0, sizeof(img));
        img.id = get_str(&r, &img.id_len);
        for (int a = 0; a < ATTR_COUNT; a++)
            img.attr[a] = get_str(&r, &img.attr_len[a]);
        img.tier = get_str(&r, &img.tier_len);
        img.explicit_tier = get_str(&r, &img.explicit_tier_len);
        uint8_t flags = (uint8_t)get_uint(&r, 1);
        img.resolved = flags & 1;
        img.paused = (flags >> 1) & 1;
        for (int m = 0; m < METRIC_COUNT; m++)
            get_clock(&r, &img.clk[m]);
        if (r.bad || img.id == NULL || img.tier == NULL)
            break;
        if (core_restore_ticket(core, &img) < 0) {
            snprintf(err, errlen, "cannot restore ticket %.*s (duplicate or out of memory)",
                     (int)img.id_len, img.id);
            return -1;
        }
        restored++;
    }
    uint32_t nsec = r.bad ? 0 : (uint32_t)get_uint(&r, 4);
    for (uint32_t i = 0; i < nsec && !r.bad; i++) {
        uint32_t tag = (uint32_t)get_uint(&r, 4);
        uint64_t slen = get_uint(&r, 8);
        const char *sdata = take(&r, (size_t)slen);
        if (sdata && on_section)
            on_section(arg, tag, sdata, (size_t)slen);
    }
    if (r.bad || r.left != 0) {
        snprintf(err, errlen, "checkpoint truncated or malformed");
        return -1;
    }
    return restored;
}
