/*
 * policy.h - questions about the tier policies that are not the core's
 * hot path: which policy (if any) picks the tier for a set of attribute
 * values, whether any policy names a value at all (input hygiene), and a
 * policy as text. Pure core (daemon/core/policy.c), no I/O.
 *
 * policy_choose() follows the core's rule (core.c choose_tier): an
 * explicit tier naming a known tier wins, then the first policy whose
 * constrained attributes all match, then the last tier of the config.
 * tests/unit/test_policy.c checks that the two agree.
 */
#ifndef SLAWATCH_POLICY_H
#define SLAWATCH_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "slawatch/config.h"

#define POLICY_EXPLICIT (-1)  /* the event's `tier` named a known tier */
#define POLICY_DEFAULT (-2)   /* no policy matched: the last tier */

/* The tier index for attribute values attr[] (NULL: absent) and an explicit
 * tier (NULL or empty: none). *policy gets the index of the policy that
 * matched, POLICY_EXPLICIT or POLICY_DEFAULT. */
int policy_choose(const struct config *cfg, const char *const attr[ATTR_COUNT],
                  const char *tier, size_t tier_len, int *policy);

/* Whether some policy constrains attribute `attr` at all, and whether some
 * policy lists `value` for it. A value of a constrained attribute that no
 * policy lists can only fall through to a later rule or the default: a
 * typo (`High` for `high`) the operator wants to hear about. */
bool policy_constrains(const struct config *cfg, int attr);
bool policy_names_value(const struct config *cfg, int attr, const char *value,
                        size_t len);

/* Policy i as the config writes it: "{ match: { priority: [urgent, p1] },
 * tier: instant }". Always NUL-terminates; returns buf. */
char *policy_text(const struct config *cfg, size_t i, char *buf, size_t len);

#endif
