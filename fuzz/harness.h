/*
 * harness.h - what the fuzz targets in fuzz/ share: the libFuzzer entry
 * point's prototype, the fixed configurations the core targets run under,
 * and a splitter of the input into lines and fields.
 *
 * Every target is a plain LLVMFuzzerTestOneInput() and nothing else, so the
 * same object links either with libFuzzer (make fuzz, clang) or with
 * tests/fuzz_replay.c (make test, any compiler), which replays the corpora
 * and regression inputs without a fuzzing engine. A target must return 0,
 * free what it allocated and abort() only on a broken invariant: that is a
 * finding, like a sanitizer report. See docs/fuzzing.md.
 */
#ifndef SLAWATCH_FUZZ_HARNESS_H
#define SLAWATCH_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "slawatch/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The wall clock the core targets pretend it is: 2026-11-23T10:00:00Z. */
#define FUZZ_WALL_MS 1795428000000LL

/* Two fixed configurations (YAML in harness.c): A has four tiers, one of
 * them on an office calendar (Europe/Berlin, with holidays) and two with
 * warnings and pause lists, policies by priority and channel, compliance
 * breakdowns by priority and queue; B renames and re-targets them, as a
 * reload would. Loaded once and kept for the life of the process (never
 * freed: the fuzzer calls the target millions of times). Aborts when a
 * fixed config does not load: the harness itself is broken. */
const struct config *fuzz_config_a(void);
const struct config *fuzz_config_b(void);

/* Cuts data[0 .. size) at `sep`; each call returns the next piece (not
 * NUL-terminated, *len bytes) or NULL at the end. */
struct fuzz_split {
    const char *p, *end;
    char sep;
};
void fuzz_split_init(struct fuzz_split *s, const void *data, size_t size,
                     char sep);
const char *fuzz_split_next(struct fuzz_split *s, size_t *len);

/* Little-endian reads of up to 8 bytes from the front of *data; missing
 * bytes read as zero. Consumes what it read. */
uint64_t fuzz_take_u64(const uint8_t **data, size_t *size);
uint8_t fuzz_take_u8(const uint8_t **data, size_t *size);

#endif
