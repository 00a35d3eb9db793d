/* Unit tests for the byte codec (wire.c): round trips of every width, the
 * exact little-endian bytes of known values, truncated input (sticky error,
 * zeros, nothing read past the end: inputs live in blocks of exactly their
 * size, so valgrind sees any overread), the oom flag, and string limits.
 * Pure: slawatch/wire.h and libc only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slawatch/wire.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A copy of b's bytes in a block of exactly that size (at least 1 byte so
 * malloc never returns NULL for it). */
static unsigned char *
exact_copy(const void *data, size_t len)
{
    unsigned char *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len)
        memcpy(p, data, len);
    return p;
}

static void
assert_bytes(const struct wire_buf *b, const unsigned char *want, size_t n)
{
    assert_int_equal(b->oom, 0);
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
}

static void
test_empty_buffer(void **state)
{
    (void)state;
    struct wire_buf b;
    wire_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    wire_put(&b, "x", 0); /* nothing: no allocation */
    assert_null(b.data);
    assert_int_equal(b.oom, 0);
    wire_free(&b);
    assert_null(b.data);
}

static void
test_known_bytes(void **state)
{
    (void)state;
    struct wire_buf b;

    wire_init(&b);
    wire_put_u8(&b, 0xab);
    assert_bytes(&b, (const unsigned char[]){ 0xab }, 1);
    wire_free(&b);

    wire_put_u16(&b, 0x1234);
    assert_bytes(&b, (const unsigned char[]){ 0x34, 0x12 }, 2);
    wire_free(&b);

    wire_put_u32(&b, 0x12345678u);
    assert_bytes(&b, (const unsigned char[]){ 0x78, 0x56, 0x34, 0x12 }, 4);
    wire_free(&b);

    wire_put_u64(&b, 0x0102030405060708ULL);
    assert_bytes(&b, (const unsigned char[]){ 8, 7, 6, 5, 4, 3, 2, 1 }, 8);
    wire_free(&b);

    wire_put_i64(&b, -2);
    assert_bytes(&b, (const unsigned char[]){ 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 8);
    wire_free(&b);

    wire_put_i64(&b, INT64_MIN);
    assert_bytes(&b, (const unsigned char[]){ 0, 0, 0, 0, 0, 0, 0, 0x80 }, 8);
    wire_free(&b);

    /* 1795000000000 ms, a timestamp as the checkpoint holds it. */
    wire_put_i64(&b, 1795000000000LL);
    assert_bytes(&b, (const unsigned char[]){ 0x00, 0x5e, 0x56, 0xee, 0xa1, 0x01, 0x00, 0x00 }, 8);
    wire_free(&b);

    wire_put_str(&b, "ab", 2);
    wire_put_str(&b, "", 0);
    wire_put_str(&b, NULL, 0);
    wire_put(&b, "xyz", 3);
    assert_bytes(&b, (const unsigned char[]){ 2, 0, 'a', 'b', 0, 0, 0xff, 0xff, 'x', 'y', 'z' }, 11);
    wire_free(&b);
}

static void
test_roundtrip_every_width(void **state)
{
    (void)state;
    enum { N = 2000 };
    static const uint64_t edge[] = { 0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000,
                                     0xffff, 0x10000, 0x7fffffff, 0x80000000u,
                                     0xffffffffu, 0x100000000ULL, INT64_MAX,
                                     (uint64_t)INT64_MAX + 1, UINT64_MAX };
    static uint64_t v[N];
    struct wire_buf b;
    wire_init(&b);
    for (size_t i = 0; i < N; i++) {
        v[i] = i < sizeof(edge) / sizeof(edge[0]) ? edge[i] : rng() >> (rng() % 64);
        wire_put_u8(&b, (uint8_t)v[i]);
        wire_put_u16(&b, (uint16_t)v[i]);
        wire_put_u32(&b, (uint32_t)v[i]);
        wire_put_u64(&b, v[i]);
        wire_put_i64(&b, (int64_t)v[i]);
        wire_put_i64(&b, -(int64_t)(v[i] >> 1));
    }
    assert_int_equal(b.oom, 0);
    assert_int_equal(b.len, (size_t)N * (1 + 2 + 4 + 8 + 8 + 8)); /* grew past 4096 */

    unsigned char *in = exact_copy(b.data, b.len);
    struct wire_reader r;
    wire_reader_init(&r, in, b.len);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(wire_get_u8(&r), (uint8_t)v[i]);
        assert_int_equal(wire_get_u16(&r), (uint16_t)v[i]);
        assert_int_equal(wire_get_u32(&r), (uint32_t)v[i]);
        assert_true(wire_get_u64(&r) == v[i]);
        assert_true(wire_get_i64(&r) == (int64_t)v[i]);
        assert_true(wire_get_i64(&r) == -(int64_t)(v[i] >> 1));
    }
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.left, 0);
    /* At the end: the next read fails. */
    assert_int_equal(wire_get_u8(&r), 0);
    assert_int_equal(r.bad, 1);
    free(in);
    wire_free(&b);

    /* The extremes of i64 both ways. */
    static const int64_t s[] = { INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX };
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        wire_put_i64(&b, s[i]);
    wire_reader_init(&r, b.data, b.len);
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        assert_true(wire_get_i64(&r) == s[i]);
    assert_int_equal(r.bad, 0);
    wire_free(&b);
}

static void
test_roundtrip_bytes_and_strings(void **state)
{
    (void)state;
    struct wire_buf b;
    wire_init(&b);
    wire_put_str(&b, "tier", 4);
    wire_put_str(&b, NULL, 0);
    wire_put_str(&b, "", 0);
    wire_put_str(&b, "a\0b", 3); /* bytes, not C strings */
    wire_put(&b, "raw", 3);
    wire_put_u8(&b, 7);

    unsigned char *in = exact_copy(b.data, b.len);
    struct wire_reader r;
    size_t len = 99;
    wire_reader_init(&r, in, b.len);
    const char *s = wire_get_str(&r, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(s, "tier", 4);
    assert_null(wire_get_str(&r, &len)); /* absent: no error */
    assert_int_equal(len, 0);
    assert_int_equal(r.bad, 0);
    s = wire_get_str(&r, &len);
    assert_non_null(s); /* present and empty */
    assert_int_equal(len, 0);
    s = wire_get_str(&r, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 3);
    const char *raw = wire_get_bytes(&r, 3);
    assert_non_null(raw);
    assert_memory_equal(raw, "raw", 3);
    assert_ptr_equal(raw, in + b.len - 4); /* in place, not copied */
    assert_non_null(wire_get_bytes(&r, 0)); /* nothing asked: no error */
    assert_int_equal(wire_get_u8(&r), 7);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.left, 0);
    assert_non_null(wire_get_bytes(&r, 0));
    assert_int_equal(r.bad, 0);
    free(in);
    wire_free(&b);
}

/* Every read of every width on every short input: 0, the error flag, and
 * nothing consumed. */
static void
test_truncated_input(void **state)
{
    (void)state;
    static const unsigned char full[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    for (int width = 1; width <= 8; width *= 2)
        for (size_t cut = 0; cut < (size_t)width; cut++) {
            unsigned char *in = exact_copy(full, cut);
            struct wire_reader r;
            uint64_t got = 0;
            wire_reader_init(&r, in, cut);
            switch (width) {
            case 1: got = wire_get_u8(&r); break;
            case 2: got = wire_get_u16(&r); break;
            case 4: got = wire_get_u32(&r); break;
            case 8: got = wire_get_u64(&r); break;
            }
            assert_true(got == 0);
            assert_int_equal(r.bad, 1);
            assert_ptr_equal(r.p, in);
            assert_int_equal(r.left, cut);
            if (width == 8) {
                wire_reader_init(&r, in, cut);
                assert_true(wire_get_i64(&r) == 0);
                assert_int_equal(r.bad, 1);
            }
            free(in);
        }

    /* Sticky: after a failed read, a read that would fit fails too. */
    unsigned char *in = exact_copy(full, 3);
    struct wire_reader r;
    wire_reader_init(&r, in, 3);
    assert_int_equal(wire_get_u16(&r), 0x0201);
    assert_int_equal(wire_get_u16(&r), 0);
    assert_int_equal(r.bad, 1);
    assert_int_equal(r.left, 1);
    assert_int_equal(wire_get_u8(&r), 0);
    assert_null(wire_get_bytes(&r, 0));
    size_t len = 99;
    assert_null(wire_get_str(&r, &len));
    assert_int_equal(len, 0);
    assert_int_equal(r.left, 1);
    free(in);

    /* More bytes asked than there are, and a size that would wrap. */
    in = exact_copy(full, 4);
    wire_reader_init(&r, in, 4);
    assert_non_null(wire_get_bytes(&r, 1));
    assert_null(wire_get_bytes(&r, 4));
    assert_int_equal(r.bad, 1);
    wire_reader_init(&r, in, 4);
    assert_non_null(wire_get_bytes(&r, 1));
    assert_null(wire_get_bytes(&r, SIZE_MAX));
    assert_int_equal(r.bad, 1);
    assert_int_equal(r.left, 3);
    free(in);

    /* A string whose length runs past the end, one whose length is cut. */
    static const unsigned char str5[] = { 5, 0, 'a', 'b', 'c' };
    in = exact_copy(str5, sizeof(str5));
    wire_reader_init(&r, in, sizeof(str5));
    len = 99;
    assert_null(wire_get_str(&r, &len));
    assert_int_equal(len, 0);
    assert_int_equal(r.bad, 1);
    wire_reader_init(&r, in, 1);
    assert_null(wire_get_str(&r, &len));
    assert_int_equal(r.bad, 1);
    free(in);

    /* An empty input, even without a buffer behind it. */
    wire_reader_init(&r, NULL, 0);
    assert_int_equal(wire_get_u32(&r), 0);
    assert_int_equal(r.bad, 1);
}

/* Every prefix of a record of mixed fields decodes to a prefix of it and
 * then only zeros and the error, never past the end (valgrind). */
static void
test_every_prefix(void **state)
{
    (void)state;
    struct wire_buf b;
    wire_init(&b);
    wire_put_u8(&b, 'R');
    wire_put_str(&b, "fast", 4);
    wire_put_u16(&b, 0xbeef);
    wire_put_str(&b, NULL, 0);
    wire_put_u32(&b, 0xdeadbeefu);
    wire_put_i64(&b, -5);
    wire_put_u64(&b, 42);
    for (size_t cut = 0; cut <= b.len; cut++) {
        unsigned char *in = exact_copy(b.data, cut);
        struct wire_reader r;
        size_t l1 = 0, l2 = 0;
        wire_reader_init(&r, in, cut);
        uint8_t type = wire_get_u8(&r);
        const char *s = wire_get_str(&r, &l1);
        uint16_t x16 = wire_get_u16(&r);
        const char *absent = wire_get_str(&r, &l2);
        uint32_t x32 = wire_get_u32(&r);
        int64_t i64 = wire_get_i64(&r);
        uint64_t x64 = wire_get_u64(&r);
        assert_null(absent);
        if (cut == b.len) {
            assert_int_equal(r.bad, 0);
            assert_int_equal(type, 'R');
            assert_int_equal(l1, 4);
            assert_memory_equal(s, "fast", 4);
            assert_int_equal(x16, 0xbeef);
            assert_int_equal(x32, 0xdeadbeefu);
            assert_true(i64 == -5);
            assert_true(x64 == 42);
        } else {
            assert_int_equal(r.bad, 1);
            assert_true(x64 == 0);
            assert_true(r.p + r.left == in + cut); /* never beyond the end */
        }
        free(in);
    }
    wire_free(&b);
}

static void
test_oom_flag(void **state)
{
    (void)state;
    struct wire_buf b;
    wire_init(&b);
    wire_put_u32(&b, 1);
    /* A size that cannot be added to the length fails the buffer (the
     * bytes are never read). */
    wire_put(&b, "", SIZE_MAX);
    assert_int_equal(b.oom, 1);
    assert_int_equal(b.len, 4);
    /* Every later put is a no-op. */
    wire_put_u8(&b, 1);
    wire_put_u16(&b, 1);
    wire_put_u32(&b, 1);
    wire_put_u64(&b, 1);
    wire_put_i64(&b, 1);
    wire_put_str(&b, "x", 1);
    wire_put_str(&b, NULL, 0);
    wire_put(&b, "x", 1);
    assert_int_equal(b.len, 4);
    assert_int_equal(b.oom, 1);
    /* wire_free gives a usable buffer again. */
    wire_free(&b);
    assert_int_equal(b.oom, 0);
    wire_put_u8(&b, 9);
    assert_int_equal(b.len, 1);
    wire_free(&b);
}

static void
test_string_limits(void **state)
{
    (void)state;
    size_t n = WIRE_STR_MAX + 1;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(WIRE_STR_MAX, 0xfffe);
    assert_int_equal(WIRE_STR_ABSENT, 0xffff);

    /* The longest string: written whole, read back whole. */
    struct wire_buf b;
    wire_init(&b);
    wire_put_str(&b, big, WIRE_STR_MAX);
    assert_int_equal(b.oom, 0);
    assert_int_equal(b.len, 2 + WIRE_STR_MAX);
    assert_int_equal((unsigned char)b.data[0], 0xfe);
    assert_int_equal((unsigned char)b.data[1], 0xff);
    unsigned char *in = exact_copy(b.data, b.len);
    struct wire_reader r;
    size_t len = 0;
    wire_reader_init(&r, in, b.len);
    const char *s = wire_get_str(&r, &len);
    assert_int_equal(len, WIRE_STR_MAX);
    assert_memory_equal(s, big, WIRE_STR_MAX);
    assert_int_equal(r.left, 0);
    assert_int_equal(r.bad, 0);
    free(in);
    wire_free(&b);

    /* One more byte would collide with WIRE_STR_ABSENT, and more would
     * not fit in the u16: the buffer fails, nothing is cut or written. */
    wire_put_u8(&b, 1);
    wire_put_str(&b, big, WIRE_STR_MAX + 1);
    assert_int_equal(b.oom, 1);
    assert_int_equal(b.len, 1);
    wire_free(&b);
    wire_put_str(&b, big, 70000);
    assert_int_equal(b.oom, 1);
    assert_int_equal(b.len, 0);
    wire_free(&b);
    free(big);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_buffer),
        cmocka_unit_test(test_known_bytes),
        cmocka_unit_test(test_roundtrip_every_width),
        cmocka_unit_test(test_roundtrip_bytes_and_strings),
        cmocka_unit_test(test_truncated_input),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_oom_flag),
        cmocka_unit_test(test_string_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
