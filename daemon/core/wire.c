/*
 * wire.c - the little-endian byte codec (see wire.h). Owns the growth of a
 * wire_buf and the bounds of a wire_reader, nothing else: no format, no
 * I/O. Must never read outside [p, p + left) and never write a value it
 * cannot encode exactly (a string too long fails the buffer instead).
 */
#include "slawatch/wire.h"

#include <stdlib.h>
#include <string.h>

#define WIRE_FIRST_CAP 4096

/* ---- output ------------------------------------------------------------ */

void
wire_init(struct wire_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void
wire_free(struct wire_buf *b)
{
    free(b->data);
    wire_init(b);
}

void
wire_put(struct wire_buf *b, const void *p, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (n > SIZE_MAX - b->len) {
        b->oom = 1;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : WIRE_FIRST_CAP;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) {
                cap = b->len + n;
                break;
            }
            cap *= 2;
        }
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

/* The low `bytes` bytes of v, least significant first. */
static void
put_le(struct wire_buf *b, uint64_t v, int bytes)
{
    unsigned char x[8];
    for (int i = 0; i < bytes; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    wire_put(b, x, (size_t)bytes);
}

void
wire_put_u8(struct wire_buf *b, uint8_t v)
{
    put_le(b, v, 1);
}

void
wire_put_u16(struct wire_buf *b, uint16_t v)
{
    put_le(b, v, 2);
}

void
wire_put_u32(struct wire_buf *b, uint32_t v)
{
    put_le(b, v, 4);
}

void
wire_put_u64(struct wire_buf *b, uint64_t v)
{
    put_le(b, v, 8);
}

void
wire_put_i64(struct wire_buf *b, int64_t v)
{
    put_le(b, (uint64_t)v, 8);
}

void
wire_put_str(struct wire_buf *b, const char *s, size_t len)
{
    if (s == NULL) {
        wire_put_u16(b, WIRE_STR_ABSENT);
        return;
    }
    if (len > WIRE_STR_MAX) {
        b->oom = 1;
        return;
    }
    wire_put_u16(b, (uint16_t)len);
    wire_put(b, s, len);
}

/* ---- input ------------------------------------------------------------- */

void
wire_reader_init(struct wire_reader *r, const void *data, size_t len)
{
    r->p = data;
    r->left = len;
    r->bad = 0;
}

const void *
wire_get_bytes(struct wire_reader *r, size_t n)
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
get_le(struct wire_reader *r, int bytes)
{
    const unsigned char *p = wire_get_bytes(r, (size_t)bytes);
    uint64_t v = 0;
    if (p == NULL)
        return 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint8_t
wire_get_u8(struct wire_reader *r)
{
    return (uint8_t)get_le(r, 1);
}

uint16_t
wire_get_u16(struct wire_reader *r)
{
    return (uint16_t)get_le(r, 2);
}

uint32_t
wire_get_u32(struct wire_reader *r)
{
    return (uint32_t)get_le(r, 4);
}

uint64_t
wire_get_u64(struct wire_reader *r)
{
    return get_le(r, 8);
}

int64_t
wire_get_i64(struct wire_reader *r)
{
    uint64_t v = get_le(r, 8);
    /* Two's complement back without an implementation-defined cast. */
    return v <= (uint64_t)INT64_MAX ? (int64_t)v : -(int64_t)(~v) - 1;
}

const char *
wire_get_str(struct wire_reader *r, size_t *len)
{
    uint16_t n = wire_get_u16(r);
    const char *s;
    *len = 0;
    if (r->bad || n == WIRE_STR_ABSENT)
        return NULL;
    s = wire_get_bytes(r, n);
    if (s != NULL)
        *len = n;
    return s;
}
