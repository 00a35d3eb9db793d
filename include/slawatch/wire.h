/*
 * wire.h - the one little-endian byte codec of the checkpoint: a growable
 * output buffer and a bounds-checked reader over memory. Pure: no I/O, and
 * no format of its own (state.c, compliance.c and snapshot.c lay out their
 * records with it). The reader must never read past the end it was given.
 *
 * Layout of the values: u8, u16, u32, u64 little-endian; i64 as its two's
 * complement u64; a string as a u16 length and its bytes, the length
 * WIRE_STR_ABSENT standing for an absent (NULL) string.
 *
 * Errors are sticky, so a caller checks once at the end:
 *   - wire_buf.oom: an allocation failed or a string was longer than
 *     WIRE_STR_MAX; every later put is a no-op and the contents are
 *     unusable (free them);
 *   - wire_reader.bad: a read asked for more than is left; that read and
 *     every later one return 0 (NULL for bytes and strings) and consume
 *     nothing.
 */
#ifndef SLAWATCH_WIRE_H
#define SLAWATCH_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_STR_ABSENT 0xffffu /* u16 length of an absent string */
#define WIRE_STR_MAX 0xfffeu    /* longest string wire_put_str writes */

struct wire_buf {
    char *data;
    size_t len;
    size_t cap;
    int oom;
};

/* An empty buffer (no allocation until the first put). */
void wire_init(struct wire_buf *b);
/* Frees the contents and leaves an empty buffer, oom cleared. */
void wire_free(struct wire_buf *b);

/* Appends n bytes (n == 0: nothing). */
void wire_put(struct wire_buf *b, const void *p, size_t n);
void wire_put_u8(struct wire_buf *b, uint8_t v);
void wire_put_u16(struct wire_buf *b, uint16_t v);
void wire_put_u32(struct wire_buf *b, uint32_t v);
void wire_put_u64(struct wire_buf *b, uint64_t v);
void wire_put_i64(struct wire_buf *b, int64_t v);
/* u16 len, then the len bytes of s; s == NULL writes WIRE_STR_ABSENT (and
 * no bytes). len > WIRE_STR_MAX sets oom: a string is never cut. */
void wire_put_str(struct wire_buf *b, const char *s, size_t len);

struct wire_reader {
    const unsigned char *p; /* next byte */
    size_t left;            /* bytes from p to the end */
    int bad;
};

/* Reads data[0 .. len). data is not copied: it must outlive the reader and
 * what it returns. */
void wire_reader_init(struct wire_reader *r, const void *data, size_t len);

uint8_t wire_get_u8(struct wire_reader *r);
uint16_t wire_get_u16(struct wire_reader *r);
uint32_t wire_get_u32(struct wire_reader *r);
uint64_t wire_get_u64(struct wire_reader *r);
int64_t wire_get_i64(struct wire_reader *r);
/* The next n bytes (in place), or NULL and bad when fewer are left. */
const void *wire_get_bytes(struct wire_reader *r, size_t n);
/* A string written by wire_put_str: its bytes (in place, not
 * NUL-terminated) and *len; NULL with *len 0 for an absent string (not an
 * error: a caller that needs one checks for NULL) or after an error. */
const char *wire_get_str(struct wire_reader *r, size_t *len);

#endif
