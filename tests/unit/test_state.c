/* Unit tests for checkpoints: a core saved and restored decides exactly as
 * the original from then on; damaged, truncated and foreign blobs are
 * refused without crashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/state.h"

#define T0 1795000000000LL
#define MIN 60000LL
#define HOUR (60 * MIN)

static const char *yaml =
    "tiers:\n"
    "  fast: { response: 10m, resolution: 1h, warn: [50%, 80%] }\n"
    "  both: { response: 1h, resolution: 2h, pause: [response, resolution] }\n"
    "  slow: { response: 4h }\n"
    "policies:\n"
    "  - { match: { priority: urgent }, tier: fast }\n"
    "  - { tier: slow }\n";

struct log {
    char lines[512][128];
    int n;
};

struct side {
    struct core *core;
    struct log log;
    int64_t wall;
};

static int64_t
wall(void *arg)
{
    return ((struct side *)arg)->wall;
}

static void
on_notice(void *arg, const struct sla_notice *n)
{
    struct side *s = arg;
    if (s->log.n < 512)
        snprintf(s->log.lines[s->log.n++], 128, "%d %s %d %lld %u %u", n->kind,
                 n->ticket->id, n->metric, (long long)n->deadline_ms, n->percent_bp,
                 n->cycle);
}

static void
on_outcome(void *arg, const struct sla_outcome *o)
{
    struct side *s = arg;
    if (s->log.n < 512)
        snprintf(s->log.lines[s->log.n++], 128, "outcome %s %d %d %d %lld", o->ticket->id,
                 o->metric, o->outcome, o->decided, (long long)o->decided_ms);
}

static struct config *cfg;

static void
side_init(struct side *s)
{
    memset(s, 0, sizeof(*s));
    struct core_sink cb = { .notice = on_notice, .outcome = on_outcome, .arg = s };
    s->core = core_new(cfg, wall, s, &cb);
    assert_non_null(s->core);
    s->wall = T0;
}

static void
apply(struct side *s, enum ev_type type, const char *ticket, int64_t ts,
      const char *k, const char *v)
{
    struct ev_field f[4];
    size_t n = 0;
    char tsbuf[24];
    struct sla_event ev;
    const char *reason;
    snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
    f[n++] = (struct ev_field){ "type", 4, event_type_name(type), strlen(event_type_name(type)) };
    f[n++] = (struct ev_field){ "ticket", 6, ticket, strlen(ticket) };
    f[n++] = (struct ev_field){ "ts", 2, tsbuf, strlen(tsbuf) };
    if (k)
        f[n++] = (struct ev_field){ k, strlen(k), v, strlen(v) };
    if (s->wall < ts)
        s->wall = ts;
    assert_int_equal(event_parse(&ev, f, n, ts, s->wall, 5 * MIN, &reason), 0);
    assert_int_equal(core_apply(s->core, &ev, &reason), 0);
}

static void
advance(struct side *s, int64_t to)
{
    s->wall = to;
    core_advance(s->core, to);
}

/* A mix of every clock state at T0 + 30m. */
static void
build_history(struct side *s)
{
    apply(s, EVT_OPENED, "running", T0, "priority", "urgent");
    apply(s, EVT_OPENED, "answered", T0, "priority", "urgent");
    apply(s, EVT_RESPONDED, "answered", T0 + MIN, NULL, NULL);
    apply(s, EVT_OPENED, "breached", T0 - 20 * MIN, "priority", "urgent");
    apply(s, EVT_OPENED, "paused", T0, "tier", "both");
    apply(s, EVT_PAUSED, "paused", T0 + 5 * MIN, NULL, NULL);
    apply(s, EVT_OPENED, "cycle", T0, "priority", "urgent");
    apply(s, EVT_RESOLVED, "cycle", T0 + 2 * MIN, NULL, NULL);
    apply(s, EVT_REOPENED, "cycle", T0 + 3 * MIN, NULL, NULL);
    apply(s, EVT_OPENED, "attrs", T0, "queue", "billing");
    apply(s, EVT_UPDATED, "attrs", T0 + MIN, "agent", "ana");
    apply(s, EVT_OPENED, "warned", T0 + 20 * MIN, "priority", "urgent");
    advance(s, T0 + 26 * MIN); /* warned: 50% fired, 80% not yet */
}

/* The same future for both cores. */
static void
run_future(struct side *s)
{
    apply(s, EVT_RESPONDED, "running", T0 + 40 * MIN, NULL, NULL);
    apply(s, EVT_RESUMED, "paused", T0 + 3 * HOUR, NULL, NULL);
    apply(s, EVT_RESPONDED, "breached", T0 + 3 * HOUR, NULL, NULL);
    advance(s, T0 + 10 * HOUR);
}

static int
cmp_line(const void *x, const void *y)
{
    return strcmp(x, y);
}

static void
on_sec(void *arg, uint32_t tag, const char *data, size_t len)
{
    assert_int_equal(tag, STATE_SECTION_WRITES_RESP);
    memcpy(arg, data, len);
}

static void
test_roundtrip_decides_the_same(void **state)
{
    (void)state;
    struct side a, b;
    side_init(&a);
    side_init(&b);
    build_history(&a);

    struct wire_buf buf;
    wire_init(&buf);
    struct state_meta meta = { T0 + 26 * MIN, core_now(a.core), 1795000000123ULL, 7, 42, 3 };
    const char extra[] = "queued writes";
    struct state_section sec = { STATE_SECTION_WRITES_RESP, extra, sizeof(extra) };
    assert_int_equal(state_encode(a.core, &meta, &sec, 1, &buf), 0);

    struct state_meta got;
    char err[128];
    char section_seen[64] = "";
    long n = state_decode(b.core, buf.data, buf.len, &got, on_sec, section_seen, err, sizeof(err));
    assert_int_equal(n, 7);
    assert_string_equal(section_seen, "queued writes");
    assert_int_equal(got.last_ms, 1795000000123ULL);
    assert_int_equal(got.last_seq, 7);
    assert_int_equal(got.events_total, 42);
    assert_int_equal(got.rejected_total, 3);
    assert_int_equal(core_now(b.core), core_now(a.core));
    assert_int_equal(core_ticket_count(b.core), core_ticket_count(a.core));
    assert_int_equal(core_heap_size(b.core), core_heap_size(a.core));
    for (int t = 0; t < 3; t++) {
        assert_int_equal(core_open_count(b.core, t), core_open_count(a.core, t));
        for (int m = 0; m < METRIC_COUNT; m++)
            assert_int_equal(core_overdue_count(b.core, t, m), core_overdue_count(a.core, t, m));
    }
    const struct ticket *ta = core_find(a.core, "attrs", 5), *tb = core_find(b.core, "attrs", 5);
    assert_string_equal(core_ticket_attr(b.core, tb, ATTR_QUEUE), "billing");
    assert_string_equal(core_ticket_attr(b.core, tb, ATTR_AGENT), "ana");
    (void)ta;
    const struct ticket *cy = core_find(b.core, "cycle", 5);
    assert_int_equal(cy->clk[METRIC_RESOLUTION].cycle, 1);
    const struct ticket *pa = core_find(b.core, "paused", 6);
    assert_int_equal(pa->clk[METRIC_RESOLUTION].state, CLOCK_PAUSED);
    assert_true(ticket_paused(pa));

    /* From here both cores must report exactly the same things. */
    a.log.n = 0;
    run_future(&a);
    run_future(&b);
    assert_true(a.log.n > 5);
    assert_int_equal(a.log.n, b.log.n);
    /* Keys due in the same millisecond fire in no defined order: compare
     * the sets. */
    qsort(a.log.lines, (size_t)a.log.n, sizeof(a.log.lines[0]), cmp_line);
    qsort(b.log.lines, (size_t)b.log.n, sizeof(b.log.lines[0]), cmp_line);
    for (int i = 0; i < a.log.n; i++)
        assert_string_equal(a.log.lines[i], b.log.lines[i]);

    wire_free(&buf);
    core_free(a.core);
    core_free(b.core);
}

static void
test_damaged_blobs_refused(void **state)
{
    (void)state;
    struct side a;
    side_init(&a);
    build_history(&a);
    struct wire_buf buf;
    wire_init(&buf);
    struct state_meta meta = { 0 };
    assert_int_equal(state_encode(a.core, &meta, NULL, 0, &buf), 0);
    char err[128];
    struct state_meta got;

    /* Every truncation, a flipped byte anywhere, and foreign data. */
    for (size_t cut = 0; cut < buf.len; cut += 7) {
        struct side b;
        side_init(&b);
        assert_int_equal(state_decode(b.core, buf.data, cut, &got, NULL, NULL, err, sizeof(err)), -1);
        core_free(b.core);
    }
    for (size_t pos = 0; pos < buf.len; pos += 5) {
        struct side b;
        side_init(&b);
        buf.data[pos] ^= 0x40;
        assert_int_equal(state_decode(b.core, buf.data, buf.len, &got, NULL, NULL, err, sizeof(err)), -1);
        buf.data[pos] ^= 0x40;
        core_free(b.core);
    }
    struct side b;
    side_init(&b);
    assert_int_equal(state_decode(b.core, "hello world, not a checkpoint", 29, &got, NULL,
                                  NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "not a slawatch checkpoint");
    assert_int_equal(core_ticket_count(b.core), 0);
    core_free(b.core);
    wire_free(&buf);
    core_free(a.core);
}

/* A blob with a valid CRC but nonsense inside (as a bug or a hostile writer
 * could produce) is refused, never a crash. */
static void
test_valid_crc_garbage(void **state)
{
    (void)state;
    uint64_t rng = 88172645463325252ULL;
    for (int round = 0; round < 2000; round++) {
        char blob[300];
        size_t len = 12 + (size_t)(rng % 280);
        memcpy(blob, "SLAWST01\x01\0\0\0", 12);
        for (size_t i = 12; i < len; i++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            blob[i] = (char)(rng & 0xff);
        }
        uint32_t crc = state_crc32(blob, len);
        memcpy(blob + len, &crc, 4); /* little-endian host */
        struct side b;
        char err[128];
        struct state_meta got;
        side_init(&b);
        long n = state_decode(b.core, blob, len + 4, &got, NULL, NULL, err, sizeof(err));
        (void)n; /* any answer but a crash is fine; most are -1 */
        core_free(b.core);
    }
}

static void
put_le64(char *p, int64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)((uint64_t)v >> (8 * i));
}

static int64_t
get_le64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)(unsigned char)p[i] << (8 * i);
    return (int64_t)v;
}

/* Decodes `blob` after setting the i64 at `off` to v (and, when off2 is
 * not 0, the one at off2 to v2) and fixing the CRC up, as whoever can
 * write the key can; returns state_decode's answer. */
static long
decode_patched2(const struct wire_buf *blob, size_t off, int64_t v,
                size_t off2, int64_t v2, char *err, size_t errlen)
{
    char *copy = malloc(blob->len);
    assert_non_null(copy);
    memcpy(copy, blob->data, blob->len);
    put_le64(copy + off, v);
    if (off2)
        put_le64(copy + off2, v2);
    uint32_t crc = state_crc32(copy, blob->len - 4);
    for (int i = 0; i < 4; i++)
        copy[blob->len - 4 + i] = (char)(crc >> (8 * i));
    struct side b;
    struct state_meta got;
    side_init(&b);
    err[0] = '\0';
    long n = state_decode(b.core, copy, blob->len, &got, NULL, NULL, err, errlen);
    core_free(b.core);
    free(copy);
    return n;
}

static long
decode_patched(const struct wire_buf *blob, size_t off, int64_t v, char *err,
               size_t errlen)
{
    return decode_patched2(blob, off, v, 0, 0, err, errlen);
}

/* Times slawatch cannot have written are refused with the ticket, clock
 * and field named, even under a valid CRC (the fuzz-found overflows of
 * fuzz/regress/state/); the extremes it can write are not. */
static void
test_absurd_times_refused(void **state)
{
    (void)state;
    struct side a;
    side_init(&a);
    apply(&a, EVT_OPENED, "x", T0, "priority", "urgent");
    struct wire_buf buf;
    wire_init(&buf);
    struct state_meta meta = { T0 + 1, core_now(a.core), 0, 0, 0, 0 };
    assert_int_equal(state_encode(a.core, &meta, NULL, 0, &buf), 0);
    /* Magic, version, 6 header fields, ticket count; then "x" (2 + 1),
     * priority "urgent" (2 + 6), four absent attributes, tier "fast"
     * (2 + 4), no explicit tier, u16 flags, u32 rated_s, i64 opened;
     * then for each slot its metric (u8) and clock (4 i64, u16, 3 u8, u32
     * K): the response clock, then the resolution clock. */
    const size_t now_off = 8 + 4 + 8, clk = 68 + 3 + 8 + 8 + 6 + 2 + 2 + 4 + 8 + 1;
    const size_t started = 0, resumed = 8, consumed = 16, deadline = 24;
    const size_t res = clk + 41 + 1;
    assert_int_equal(get_le64(buf.data + clk + started), T0);
    assert_int_equal(get_le64(buf.data + res + started), T0);
    assert_int_equal(get_le64(buf.data + clk + deadline), T0 + 10 * MIN);
    char err[256];

    assert_int_equal(decode_patched(&buf, clk + consumed, INT64_MIN, err, sizeof(err)), -1);
    assert_string_equal(err, "checkpoint ticket x: the response clock's consumed time "
                             "is impossible (started 1795000000000, resumed "
                             "1795000000000, consumed -9223372036854775808, "
                             "deadline 1795000600000 ms)");
    assert_int_equal(decode_patched(&buf, clk + consumed, TS_MAX_MS + 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "response clock's consumed time is impossible"));
    /* A running clock has consumed at most the time since its start (a
     * fuzzed checkpoint with more was accepted, and the restored clock then
     * consumed past TS_MAX_MS: its next checkpoint was refused). */
    assert_int_equal(decode_patched2(&buf, clk + resumed, T0 + HOUR, clk + consumed,
                                     HOUR + 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "response clock's consumed time is impossible"));
    assert_int_equal(decode_patched2(&buf, clk + resumed, T0 + HOUR, clk + consumed,
                                     HOUR, err, sizeof(err)), 1);
    assert_int_equal(decode_patched(&buf, clk + resumed, T0 - 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "response clock's last start or stop is impossible"));
    assert_int_equal(decode_patched(&buf, res + started, -1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "checkpoint ticket x: the resolution clock's start is impossible"));
    assert_int_equal(decode_patched(&buf, clk + resumed, TS_MAX_MS + 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "response clock's last start or stop is impossible"));
    assert_int_equal(decode_patched(&buf, clk + deadline, INT64_MIN, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "response clock's deadline is impossible"));
    assert_int_equal(decode_patched(&buf, now_off, -5, err, sizeof(err)), -1);
    assert_string_equal(err, "checkpoint has an impossible time (saved at 1795000000001, "
                             "core time -5 ms)");
    assert_int_equal(decode_patched(&buf, now_off - 8, INT64_MIN, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "checkpoint has an impossible time"));

    /* The extremes the core writes: a deadline that never comes, times at
     * the end of year 9999, a deadline before its start (a target cut
     * below the time consumed). */
    assert_int_equal(decode_patched(&buf, clk + deadline, INT64_MAX, err, sizeof(err)), 1);
    assert_int_equal(decode_patched(&buf, clk + deadline, -TS_MAX_MS, err, sizeof(err)), 1);
    assert_int_equal(decode_patched2(&buf, clk + resumed, TS_MAX_MS, clk + consumed,
                                     TS_MAX_MS - T0, err, sizeof(err)), 1);
    assert_int_equal(decode_patched(&buf, now_off, TS_MAX_MS, err, sizeof(err)), 1);
    wire_free(&buf);
    core_free(a.core);
}


static void
test_config_change_remaps(void **state)
{
    (void)state;
    struct side a;
    side_init(&a);
    apply(&a, EVT_OPENED, "x", T0, "priority", "urgent");
    struct wire_buf buf;
    wire_init(&buf);
    struct state_meta meta = { 0 };
    assert_int_equal(state_encode(a.core, &meta, NULL, 0, &buf), 0);
    /* The restarted daemon has a tighter "fast" tier. */
    const char *y2 = "tiers:\n  slow: { response: 4h }\n  fast: { response: 5m }\n";
    struct config *cfg2 = cfg_load_string("t.yaml", y2, strlen(y2), stderr);
    assert_non_null(cfg2);
    struct side b;
    memset(&b, 0, sizeof(b));
    struct core_sink cb = { .notice = on_notice, .outcome = on_outcome, .arg = &b };
    b.core = core_new(cfg2, wall, &b, &cb);
    char err[128];
    struct state_meta got;
    assert_int_equal(state_decode(b.core, buf.data, buf.len, &got, NULL, NULL, err, sizeof(err)), 1);
    const struct ticket *t = core_find(b.core, "x", 1);
    assert_string_equal(core_tier_name(b.core, t), "fast");
    assert_int_equal(t->clk[METRIC_RESPONSE].deadline_ms, T0 + 5 * MIN);
    /* fast lost its resolution target: that clock ended without outcome. */
    assert_int_equal(t->clk[METRIC_RESOLUTION].state, CLOCK_IDLE);
    core_free(b.core);
    cfg_free(cfg2);
    wire_free(&buf);
    core_free(a.core);
}

/* A checkpoint written before the codec moved to wire.c (commit 60745a4):
 * one ticket "golden-1" (opened at T0 with tier both, queue billing from
 * T0 + 1m, responded at T0 + 2m, paused at T0 + 3m; its absent attributes
 * are u16 0xffff) and a writes section "queued". It must still decode, and
 * encode back to the same bytes: the format did not change. */
static const unsigned char golden_checkpoint[208] = {
    0x53, 0x4c, 0x41, 0x57, 0x53, 0x54, 0x30, 0x31, 0x01, 0x00, 0x00, 0x00,
    0xe0, 0xf1, 0x5a, 0xee, 0xa1, 0x01, 0x00, 0x00, 0x80, 0x07, 0x5a, 0xee,
    0xa1, 0x01, 0x00, 0x00, 0x7b, 0x5e, 0x56, 0xee, 0xa1, 0x01, 0x00, 0x00,
    0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x67, 0x6f,
    0x6c, 0x64, 0x65, 0x6e, 0x2d, 0x31, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00,
    0x62, 0x69, 0x6c, 0x6c, 0x69, 0x6e, 0x67, 0xff, 0xff, 0xff, 0xff, 0x04,
    0x00, 0x62, 0x6f, 0x74, 0x68, 0x04, 0x00, 0x62, 0x6f, 0x74, 0x68, 0x02,
    0x00, 0x5e, 0x56, 0xee, 0xa1, 0x01, 0x00, 0x00, 0xc0, 0x32, 0x58, 0xee,
    0xa1, 0x01, 0x00, 0x00, 0xc0, 0xd4, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x80, 0x4c, 0x8d, 0xee, 0xa1, 0x01, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01,
    0x00, 0x00, 0x5e, 0x56, 0xee, 0xa1, 0x01, 0x00, 0x00, 0x20, 0x1d, 0x59,
    0xee, 0xa1, 0x01, 0x00, 0x00, 0x20, 0xbf, 0x02, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x3b, 0xc4, 0xee, 0xa1, 0x01, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x57, 0x52, 0x54, 0x53, 0x06, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x71, 0x75, 0x65, 0x75, 0x65, 0x64,
    0x53, 0x76, 0xdf, 0xb6,
};

static void
test_golden_checkpoint(void **state)
{
    (void)state;
    struct side b;
    side_init(&b);
    struct state_meta got;
    char err[128];
    char section_seen[64] = "";
    long n = state_decode(b.core, (const char *)golden_checkpoint, sizeof(golden_checkpoint),
                          &got, on_sec, section_seen, err, sizeof(err));
    assert_int_equal(n, 1);
    assert_string_equal(section_seen, "queued");
    assert_int_equal(got.saved_ms, T0 + 5 * MIN);
    assert_int_equal(got.core_now_ms, T0 + 4 * MIN);
    assert_int_equal(got.last_ms, 1795000000123ULL);
    assert_int_equal(got.last_seq, 7);
    assert_int_equal(got.events_total, 42);
    assert_int_equal(got.rejected_total, 3);
    const struct ticket *t = core_find(b.core, "golden-1", 8);
    assert_non_null(t);
    assert_string_equal(core_tier_name(b.core, t), "both");
    assert_string_equal(core_ticket_attr(b.core, t, ATTR_QUEUE), "billing");
    assert_null(core_ticket_attr(b.core, t, ATTR_AGENT));
    assert_true(ticket_paused(t));
    assert_int_equal(t->clk[METRIC_RESPONSE].state, CLOCK_STOPPED);
    assert_int_equal(t->clk[METRIC_RESPONSE].outcome, OUTCOME_MET);
    assert_int_equal(t->clk[METRIC_RESOLUTION].state, CLOCK_PAUSED);
    assert_int_equal(t->clk[METRIC_RESOLUTION].started_ms, T0);

    struct wire_buf buf;
    wire_init(&buf);
    struct state_section sec = { STATE_SECTION_WRITES_RESP, "queued", 6 };
    assert_int_equal(state_encode(b.core, &got, &sec, 1, &buf), 0);
    /* Written back as version 3: the same blob plus each clock's K (4
     * bytes per clock), and per ticket flags of 2 bytes instead of 1, the
     * rating time (4), the opening (8) and each slot's metric (2 x 1);
     * then the count of closed-ticket records (8). */
    assert_int_equal(buf.len, sizeof(golden_checkpoint) + 2 * 4 + 1 + 4 + 8 + 2 + 8);
    assert_int_equal((unsigned char)buf.data[8], 3);
    assert_memory_equal(buf.data, golden_checkpoint, 8);
    assert_memory_equal(buf.data + 12, golden_checkpoint + 12, 8 * 6);
    /* ... and it decodes to the same ticket. */
    struct state_meta again;
    struct core *c2 = core_new(cfg, wall, &b, NULL);
    assert_non_null(c2);
    assert_int_equal(state_decode(c2, buf.data, buf.len, &again, NULL, NULL, err,
                                  sizeof(err)), 1);
    const struct ticket *t2 = core_find(c2, "golden-1", 8);
    assert_non_null(t2);
    assert_int_equal(t2->clk[METRIC_RESOLUTION].state, CLOCK_PAUSED);
    assert_int_equal(t2->clk[METRIC_RESOLUTION].deadline_ms,
                     t->clk[METRIC_RESOLUTION].deadline_ms);
    assert_int_equal(again.last_seq, 7);
    core_free(c2);
    wire_free(&buf);
    core_free(b.core);
}


/* ---- the writes section ----------------------------------------------- */

static int
resp_split(const char *resp, struct state_write *w, const char **why)
{
    return state_write_from_resp(resp, strlen(resp), w, why);
}

static void
test_write_from_resp_strict(void **state)
{
    (void)state;
    struct state_write w;
    const char *why = NULL;
    assert_int_equal(resp_split("*3\r\n$4\r\nHDEL\r\n$6\r\nsla:ob\r\n$0\r\n\r\n", &w, &why), 0);
    assert_int_equal(w.argc, 3);
    assert_int_equal(w.lens[0], 4);
    assert_memory_equal(w.argv[1], "sla:ob", 6);
    assert_int_equal(w.lens[2], 0);
    state_write_free(&w);
    static const struct {
        const char *resp;
        const char *why;
    } bad[] = {
        { "", "not a RESP array" },
        { "+OK\r\n", "not a RESP array" },
        { "*-1\r\n", "not a RESP array" },
        { "*0\r\n", "bad argument count" },
        { "*99999999999\r\n$1\r\na\r\n", "not a RESP array" }, /* more than 10 digits */
        { "*2\r\n$1\r\na\r\n", "bad argument count" },          /* fewer than announced */
        { "*1\r\n$-1\r\n\r\n", "not a bulk string" },
        { "*1\r\n:10\r\n\r\n", "not a bulk string" },
        { "*1\r\n$5\r\nMULTI\r\n*1\r\n$4\r\nEXEC\r\n", "more than one command in one record" },
        { "*1\r\n$5\r\nMULTI\r\nX", "more than one command in one record" },
        { "*1\r\n$9\r\nMULTI\r\n", "not a bulk string" },        /* length past the end */
        { "*1\r\n$5\r\nMULTIXX", "not a bulk string" },           /* no CRLF after it */
        { "*1\n$5\nMULTI\n", "not a RESP array" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(resp_split(bad[i].resp, &w, &why), -1);
        assert_non_null(why);
        assert_string_equal(why, bad[i].why);
        assert_null(w.argv);
    }
}

static const char *
check_args(const char *prefix, size_t argc, const char *const *args)
{
    size_t lens[16];
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(args[i]);
    struct state_write w = { argc, (const char **)args, lens };
    return state_write_check(&w, prefix);
}

#define CHECK(prefix, ...)                                                          \
    check_args(prefix, sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *), \
               (const char *[]){ __VA_ARGS__ })

static void
test_write_check_allow_list(void **state)
{
    (void)state;
    /* What the daemon writes itself. */
    assert_null(CHECK("sla:", "XADD", "sla:breaches", "*", "kind", "breach"));
    assert_null(CHECK("sla:", "xadd", "sla:events:dead", "MAXLEN", "~", "10", "*", "a", "b"));
    assert_null(CHECK("sla:", "XACK", "sla:events", "slawatch", "1-1", "1-2"));
    assert_null(CHECK("sla:", "HSET", "sla:outbox", "id", "rec"));
    assert_null(CHECK("sla:", "HDEL", "sla:outbox", "id"));
    assert_null(CHECK("sla:", "MSET", "sla:open:t", "1", "sla:stats:lag", "0"));
    assert_null(CHECK("sla:", "DEL", "sla:a", "sla:b"));
    assert_null(CHECK("", "DEL", "anything")); /* an empty prefix: any key */
    /* Anything else. */
    assert_string_equal(CHECK("sla:", "SET", "sla:x", "1"), "command not allowed");
    assert_string_equal(CHECK("sla:", "MULTI"), "command not allowed");
    assert_string_equal(CHECK("sla:", "SUBSCRIBE", "sla:c"), "command not allowed");
    assert_string_equal(CHECK("sla:", "EVAL", "return 1", "0"), "command not allowed");
    assert_string_equal(CHECK("sla:", "XADDX", "sla:b", "*", "a", "b"), "command not allowed");
    assert_string_equal(CHECK("sla:", "XADD", "other:b", "*", "a", "b"),
                        "a key outside the prefix");
    assert_string_equal(CHECK("sla:", "XADD", "sla", "*", "a", "b"), "a key outside the prefix");
    assert_string_equal(CHECK("sla:", "MSET", "sla:a", "1", "other:b", "2"),
                        "a key outside the prefix");
    assert_string_equal(CHECK("sla:", "DEL", "sla:a", "other:b"), "a key outside the prefix");
    assert_string_equal(CHECK("sla:", "MSET", "sla:a", "1", "sla:b"),
                        "wrong number of arguments");
    assert_string_equal(CHECK("sla:", "HSET", "sla:o", "f"), "wrong number of arguments");
    assert_string_equal(CHECK("sla:", "XADD", "sla:b", "*"), "wrong number of arguments");
    assert_string_equal(CHECK("sla:", "DEL"), "wrong number of arguments");
}

static void
test_write_records_roundtrip(void **state)
{
    (void)state;
    struct wire_buf b;
    wire_init(&b);
    const char *one[] = { "XADD", "sla:breaches", "*", "k", "v\0w" };
    size_t one_lens[] = { 4, 12, 1, 1, 3 };
    const char *two[] = { "HDEL", "sla:outbox", "" };
    size_t two_lens[] = { 4, 10, 0 };
    state_write_put(&b, 5, one, one_lens);
    state_write_put(&b, 3, two, two_lens);
    size_t good = b.len;
    wire_put_u32(&b, 2); /* a record cut short */
    wire_put_u32(&b, 50);
    assert_false(b.oom);

    struct wire_reader r;
    struct state_write w;
    wire_reader_init(&r, b.data, good);
    assert_int_equal(state_write_next(&r, &w), 1);
    assert_int_equal(w.argc, 5);
    assert_int_equal(w.lens[4], 3);
    assert_memory_equal(w.argv[4], "v\0w", 3);
    state_write_free(&w);
    assert_int_equal(state_write_next(&r, &w), 1);
    assert_int_equal(w.argc, 3);
    assert_int_equal(w.lens[2], 0);
    state_write_free(&w);
    assert_int_equal(state_write_next(&r, &w), 0);

    wire_reader_init(&r, b.data, b.len);
    assert_int_equal(state_write_next(&r, &w), 1);
    state_write_free(&w);
    assert_int_equal(state_write_next(&r, &w), 1);
    state_write_free(&w);
    assert_int_equal(state_write_next(&r, &w), -1);
    /* An argument count larger than the section could hold. */
    struct wire_buf c;
    wire_init(&c);
    wire_put_u32(&c, 0xffffffffu);
    wire_reader_init(&r, c.data, c.len);
    assert_int_equal(state_write_next(&r, &w), -1);
    wire_free(&c);
    wire_free(&b);
}

static int
setup(void **state)
{
    (void)state;
    cfg = cfg_load_string("test.yaml", yaml, strlen(yaml), stderr);
    return cfg ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    cfg_free(cfg);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_decides_the_same),
        cmocka_unit_test(test_damaged_blobs_refused),
        cmocka_unit_test(test_valid_crc_garbage),
        cmocka_unit_test(test_absurd_times_refused),
        cmocka_unit_test(test_config_change_remaps),
        cmocka_unit_test(test_golden_checkpoint),
        cmocka_unit_test(test_write_from_resp_strict),
        cmocka_unit_test(test_write_check_allow_list),
        cmocka_unit_test(test_write_records_roundtrip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
