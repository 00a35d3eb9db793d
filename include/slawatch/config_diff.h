/*
 * config_diff.h - what changed between two configurations, in words, for
 * the reload log: tiers, the default tier, policies, calendars,
 * escalations, webhooks and objectives added, removed or changed (with the old and new
 * value of each changed key; secrets only as "changed"), and the events,
 * compliance, state and log keys. The redis section and events.group and
 * .consumer are left out: they take effect at the next start, which the
 * wiring says itself. Pure core (daemon/core/config_diff.c).
 */
#ifndef SLAWATCH_CONFIG_DIFF_H
#define SLAWATCH_CONFIG_DIFF_H

#include <stddef.h>

#include "slawatch/config.h"

/* One line, "tier gold added (response 1h, resolution 1d)", valid during
 * the call. */
typedef void cfg_diff_fn(void *arg, const char *line);

/* Calls fn once per change, in the order of the sections of the file.
 * Returns the number of lines (0: nothing changed). */
size_t cfg_diff(const struct config *old, const struct config *cur, cfg_diff_fn *fn,
                void *arg);

#endif
