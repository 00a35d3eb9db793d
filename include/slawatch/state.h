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
#define STATE_SECTION_WRITES STATE_TAG('W', 'R', 'T', 'S')
#define STATE_SECTION_COMPLIANCE STATE_TAG('C', 'M', 'P', 'L') /* compliance.c */

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

/* The writes section (STATE_SECTION_WRITES): the writer's Redis commands
 * not yet answered, each a u32 length and the command as sent (RESP). */
void state_put_write(struct wire_buf *out, const char *cmd, size_t len);

/* Reads the next command of a writes section. Returns 1 with the command
 * in *cmd and *len (in place), 0 at the end of the section, or -1 when the
 * rest is malformed: a truncated record, or one that is not exactly one
 * RESP array of bulk strings ("*N\r\n" then N times "$L\r\n", L bytes,
 * "\r\n"), which, sent as it is, would desynchronise the connection. */
int state_next_write(struct wire_reader *r, const char **cmd,
                     size_t *len) MUSTCHECK;

#endif
