/*
 * driver.c - the deadline timer (see driver.h). One libevent timer, armed
 * for one millisecond after the core's earliest key (a clock breaches once
 * its deadline has passed) and at most TIMER_MAX_MS away, so that a
 * wall-clock step is noticed. Must stay O(1) per arm: it asks the core for
 * its earliest key and never scans.
 */
#include "slawatch/driver.h"

#include <stdlib.h>

#include "slawatch/util.h"

#define TIMER_MAX_MS 1000

struct driver {
    struct core *core;
    struct event *timer;
    bool drained;            /* the wall clock drives deadlines */
    bool stopped;
};

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct driver *d = arg;
    (void)fd;
    (void)what;
    /* While a backlog is being read, time follows the events instead. */
    if (d->drained)
        core_advance(d->core, now_wall_ms());
    driver_arm(d);
}

void
driver_arm(struct driver *d)
{
    if (d->stopped)
        return;
    int64_t due = core_next_due(d->core);
    int64_t delay = TIMER_MAX_MS;
    if (due != INT64_MAX) {
        int64_t left = due + 1 - now_wall_ms();
        if (left < delay)
            delay = left < 0 ? 0 : left;
    }
    struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
    evtimer_add(d->timer, &tv);
}

void
driver_set_drained(struct driver *d, bool drained)
{
    d->drained = drained;
    if (drained) {
        core_advance(d->core, now_wall_ms());
        driver_arm(d);
    }
}

bool
driver_drained(const struct driver *d)
{
    return d->drained;
}

void
driver_stop(struct driver *d)
{
    d->stopped = true;
    evtimer_del(d->timer);
}

struct driver *
driver_new(struct event_base *base, struct core *core)
{
    struct driver *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->core = core;
    d->timer = evtimer_new(base, timer_cb, d);
    if (d->timer == NULL || event_priority_set(d->timer, DRIVER_PRIORITIES - 1) < 0) {
        if (d->timer)
            event_free(d->timer);
        free(d);
        return NULL;
    }
    return d;
}

void
driver_free(struct driver *d)
{
    if (d == NULL)
        return;
    event_free(d->timer);
    free(d);
}
