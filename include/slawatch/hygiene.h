/*
 * hygiene.h - input hygiene: producer mistakes that are valid events but
 * probably not what was meant. An attribute value of an attribute the
 * policies match on that no policy names (`priority=High` where the
 * policies say `high`), and a `tier` that names no tier, let the ticket
 * fall through to a later policy or the default tier. Each is counted per
 * attribute (stats:unmatched:<attr> and stats:unmatched:tier, published by
 * publish.c) and logged with the value and the tier the ticket got: each
 * value at most once an hour, at most 10 lines a minute. A legitimate value
 * no policy needs (channel=email where only phone has a policy) counts too:
 * the counters say how much input falls through, the log which values. Told by the core (core_set_tier_hook) after an
 * opened or updated event chose a tier; reads the config, writes nothing
 * but counters and log lines.
 */
#ifndef SLAWATCH_HYGIENE_H
#define SLAWATCH_HYGIENE_H

#include <stdint.h>

#include "slawatch/config.h"
#include "slawatch/core.h"

struct hygiene;

/* cfg and core are not owned. Returns NULL on allocation failure. */
struct hygiene *hygiene_new(const struct config *cfg, const struct core *core) MUSTCHECK;
void hygiene_free(struct hygiene *h);
void hygiene_set_config(struct hygiene *h, const struct config *cfg);

/* The core's tier hook (arg: the hygiene). */
void hygiene_tier_chosen(void *arg, const struct sla_event *ev, const struct ticket *t);

/* Counts since start: [ATTR_*] per attribute, [ATTR_COUNT] unknown tiers. */
const uint64_t *hygiene_counts(const struct hygiene *h);

#endif
