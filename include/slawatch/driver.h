/*
 * driver.h - what moves the core's time between events: the one deadline
 * timer over the core's heap, and whether the wall clock may drive it (the
 * stream is drained) or time follows the events (a backlog is being read,
 * so a replay decides exactly as live processing did). Owns that state;
 * ingest reports it, the wiring passes it on.
 */
#ifndef SLAWATCH_DRIVER_H
#define SLAWATCH_DRIVER_H

#include <stdbool.h>

#include <event2/event.h>

#include "slawatch/core.h"

struct driver;

/* The loop's priority queues (event_base_priority_init): the driver's
 * timer takes the lowest, so that every other ready event (a reply on the
 * reader, a batch to apply) runs before a deadline is decided by the wall
 * clock. */
#define DRIVER_PRIORITIES 3

/* core is not owned. Returns NULL on allocation failure. Starts with the
 * wall clock not driving (nothing is read yet). */
struct driver *driver_new(struct event_base *base, struct core *core) MUSTCHECK;
void driver_free(struct driver *d);

/* Re-arms the timer for the core's earliest key (after anything that may
 * have moved it: a batch, a reload). */
void driver_arm(struct driver *d);

/* drained: the wall clock drives deadlines from now on (keys already past
 * fire at once); !drained: only events move time. */
void driver_set_drained(struct driver *d, bool drained);
bool driver_drained(const struct driver *d);

/* Stops the timer for good (shutdown). */
void driver_stop(struct driver *d);

#endif
