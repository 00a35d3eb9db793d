/*
 * harness.c - the fixed configurations and input helpers of the fuzz
 * targets (see harness.h). Owns nothing a target keeps between inputs
 * except the two configs, which are built once.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A: the config the core targets run under (checkpoints in fuzz/corpus/
 * state name its tiers). */
static const char yaml_a[] =
    "calendars:\n"
    "  office:\n"
    "    timezone: Europe/Berlin\n"
    "    week: { mon-fri: \"09:00-12:00,13:00-18:00\", sat: \"10:00-14:00\" }\n"
    "    holidays: [\"2026-12-24\", \"2026-12-25\", \"2027-01-01\"]\n"
    "tiers:\n"
    "  fast: { response: 10m, resolution: 1h, next_reply: 5m, warn: [50%, 80%],"
    " pause: [response, resolution] }\n"
    "  office: { response: 1h, resolution: 8h, warn: [75%], calendar: office }\n"
    "  slow: { response: 4h }\n"
    "  low: { response: 24h, resolution: 5d, next_reply: 1h, warn: [10%, 20%, 90%],"
    " pause: [next_reply] }\n"
    "policies:\n"
    "  - { match: { priority: [urgent, p1] }, tier: fast }\n"
    "  - { match: { channel: phone }, tier: office }\n"
    "  - { match: { priority: normal }, tier: slow }\n"
    "  - { tier: low }\n"
    "compliance:\n"
    "  windows: [1h, 24h]\n"
    "  by: [priority, queue]\n"
    "  max_values: 4\n"
    "state: { forget_resolved_after: 1d, max_attribute_values: 6 }\n";

/* B: a reload of A. fast loses its resolution clock, office moves to
 * another zone and longer targets, slow is gone (its tickets take the
 * policies' choice), low's resolution target drops below what a clock
 * may already have consumed (a deadline in the past), and a new tier;
 * next_reply moves from fast to office, and resolved tickets are no
 * longer forgotten. */
static const char yaml_b[] =
    "calendars:\n"
    "  office:\n"
    "    timezone: America/New_York\n"
    "    week: { mon-thu: \"08:00-16:00\" }\n"
    "tiers:\n"
    "  fast: { response: 5m, warn: [90%] }\n"
    "  office: { response: 2h, resolution: 1d, next_reply: 30m, calendar: office,"
    " pause: [response] }\n"
    "  low: { response: 1h, resolution: 30m, warn: [50%] }\n"
    "  night: { response: 12h, resolution: 2d, calendar: office }\n"
    "policies:\n"
    "  - { match: { priority: urgent }, tier: fast }\n"
    "  - { match: { queue: nights }, tier: night }\n"
    "  - { tier: low }\n"
    "compliance:\n"
    "  windows: [1h, 7d]\n"
    "  by: [channel]\n"
    "state: { forget_resolved_after: 0s }\n";

static const struct config *
load_fixed(const char *name, const char *yaml)
{
    struct config *cfg = cfg_load_string(name, yaml, strlen(yaml), stderr);
    if (cfg == NULL) {
        fprintf(stderr, "fuzz harness: the fixed config %s does not load\n",
                name);
        abort();
    }
    return cfg;
}

const struct config *
fuzz_config_a(void)
{
    static const struct config *cfg;
    if (cfg == NULL)
        cfg = load_fixed("fuzz-a.yaml", yaml_a);
    return cfg;
}

const struct config *
fuzz_config_b(void)
{
    static const struct config *cfg;
    if (cfg == NULL)
        cfg = load_fixed("fuzz-b.yaml", yaml_b);
    return cfg;
}

void
fuzz_split_init(struct fuzz_split *s, const void *data, size_t size, char sep)
{
    s->p = data ? data : ""; /* no arithmetic on NULL, even + 0 */
    s->end = s->p + (data ? size : 0);
    s->sep = sep;
}

const char *
fuzz_split_next(struct fuzz_split *s, size_t *len)
{
    if (s->p == NULL || s->p > s->end)
        return NULL;
    const char *start = s->p;
    const char *cut =
        start < s->end ? memchr(start, s->sep, (size_t)(s->end - start)) : NULL;
    if (cut == NULL) {
        *len = (size_t)(s->end - start);
        s->p = NULL; /* the last piece */
        return start;
    }
    *len = (size_t)(cut - start);
    s->p = cut + 1;
    return start;
}

uint64_t
fuzz_take_u64(const uint8_t **data, size_t *size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8 && *size > 0; i++) {
        v |= (uint64_t)**data << (8 * i);
        (*data)++;
        (*size)--;
    }
    return v;
}

uint8_t
fuzz_take_u8(const uint8_t **data, size_t *size)
{
    if (*size == 0)
        return 0;
    uint8_t v = **data;
    (*data)++;
    (*size)--;
    return v;
}
