/*
 * state.h - the checkpoint format: the whole core (tickets, clocks, fired
 * warnings and breaches), the last applied stream ID, counters, and opaque
 * sections for other modules (STATE_SECTION_WRITES: the Redis writes not
 * yet answered; STATE_SECTION_COMPLIANCE: the compliance windows). Pure:
 * encodes to and decodes from memory, with the codec of wire.h.
 *
 * Layout (little-endian, wire.h): "SLAWST01", u32 version, header, u64
 * ticket count, tickets, u32 section count, sections (u32 tag, u64 length,
 * bytes), u32 CRC-32 of everything before it.
 *
 * The writes section is data, never code: anyone who can write
 * <prefix>state can write it, and the CRC does not stop them. Section
 * "WRT2" is a sequence of records, each u32 argc then argc times (u32
 * length, bytes): one command's arguments, its name first. A loader
 * checks every record with state_write_check before it sends anything.
 * Section "WRTS" (0.1.0) held raw RESP (u32 length, bytes per command); it
 * is converted with state_write_from_resp, which accepts exactly one
 * array of bulk strings per record, and then checked the same way.
 */
#ifndef SLAWATCH_STATE_H
#define SLAWATCH_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "slawatch/core.h"
#include "slawatch/util.h"
#include "slawatch/wire.h"

#define STATE_TAG(a, b, c, d) \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define STATE_SECTION_WRITES STATE_TAG('W', 'R', 'T', '2')
#define STATE_SECTION_WRITES_RESP STATE_TAG('W', 'R', 'T', 'S') /* 0.1.0 */
#define STATE_SECTION_COMPLIANCE STATE_TAG('C', 'M', 'P', 'L') /* compliance.c */
#define STATE_SECTION_OBJECTIVES STATE_TAG('O', 'B', 'J', '1') /* objective.c */

struct state_meta {
    int64_t saved_ms;            /* wall time of the checkpoint */
    int64_t core_now_ms;
    uint64_t last_ms, last_seq;  /* last applied stream ID */
    uint64_t events_total;
    uint64_t rejected_total;
};

struct state_section {
    uint32_t tag;
    const char *data;
    size_t len;
};

/* Encodes the core and sections into out (appended). Returns 0, or -1 when
 * out->oom is set (allocation failure; no string of a ticket comes near
 * WIRE_STR_MAX). */
int state_encode(const struct core *core, const struct state_meta *meta,
                 const struct state_section *sections, size_t nsections,
                 struct wire_buf *out) MUSTCHECK;

/* Decodes a checkpoint into an empty core. Each section is handed to
 * on_section (which may be NULL). Returns the number of tickets restored,
 * or -1 with a reason in err for a damaged, truncated or foreign blob, or
 * one holding a time slawatch cannot have written (a time outside
 * [0, TS_MAX_MS], consumed time outside it, a deadline before -TS_MAX_MS),
 * even under a valid CRC (the core may then hold part of it: discard
 * it). */
long state_decode(struct core *core, const char *data, size_t len,
                  struct state_meta *meta,
                  void (*on_section)(void *arg, uint32_t tag, const char *data,
                                     size_t len),
                  void *arg, char *err, size_t errlen) MUSTCHECK;

uint32_t state_crc32(const void *data, size_t len);

/* ---- the writes section ---------------------------------------------- */

/* One pending Redis write: argc arguments, the command name first. The
 * arguments point into the blob they were read from (not NUL-terminated);
 * the two arrays are the struct's own (state_write_free). */
struct state_write {
    size_t argc;
    const char **argv;
    size_t *lens;
};

/* Appends one WRT2 record. */
void state_write_put(struct wire_buf *b, size_t argc, const char *const *argv,
                     const size_t *lens);

/* Reads the next WRT2 record from r into w (free it with
 * state_write_free). Returns 1, 0 at the end of the section, or -1 when the
 * rest of the section is malformed (or allocation failed). */
int state_write_next(struct wire_reader *r, struct state_write *w) MUSTCHECK;

/* Splits buf, which must be exactly one RESP array of bulk strings
 * ("*<n>\r\n" then n times "$<len>\r\n<bytes>\r\n", nothing before or
 * after), into w. Returns 0, or -1 with the reason in *why. */
int state_write_from_resp(const char *buf, size_t len, struct state_write *w,
                          const char **why) MUSTCHECK;

/* Whether a restored write may be sent: its command is one the daemon
 * itself queues (XADD, XACK, HSET, HDEL, MSET, DEL), with that command's
 * shape, and every key it names starts with prefix. Returns NULL when it
 * may, else the reason. */
const char *state_write_check(const struct state_write *w, const char *prefix);

void state_write_free(struct state_write *w);

#endif
