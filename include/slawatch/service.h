/*
 * service.h - the daemon's side of the systemd service protocol
 * (sd_notify(3)): READY=1, RELOADING=1, STOPPING=1, STATUS= and the
 * watchdog pings. Every call is a no-op when the process was not started
 * by a service manager (NOTIFY_SOCKET unset), so slawatchd behaves the same
 * in a terminal. Adapter code: the pure core never includes this header.
 *
 * State is process-wide, like the log: one daemon, one service manager.
 */
#ifndef SLAWATCH_SERVICE_H
#define SLAWATCH_SERVICE_H

#include <event2/event.h>

#include "slawatch/log.h"
#include "slawatch/util.h"

/* Reads NOTIFY_SOCKET and the watchdog settings (WATCHDOG_USEC, checked
 * against WATCHDOG_PID by sd_watchdog_enabled(3)). When the watchdog is
 * enabled, arms a persistent timer on `base` that sends WATCHDOG=1 every
 * half interval: the pings come from the event loop itself, so a loop that
 * stalls stops them and the manager restarts the service. Returns 0, or -1
 * when the timer cannot be created (out of memory); without NOTIFY_SOCKET
 * it does nothing and returns 0. Call once, before the loop runs. */
int service_init(struct event_base *base) MUSTCHECK;

/* Start-up is complete: READY=1 (Redis reachable, consumer group in
 * place). Sent at most once; later calls do nothing. */
void service_ready(void);

/* A SIGHUP reload begins: RELOADING=1 (with MONOTONIC_USEC=, which newer
 * managers require). Ignored until service_ready() has been called, since
 * the manager cannot reload a service that is still starting. */
void service_reloading(void);

/* The reload begun by service_reloading() is over, accepted or rejected:
 * READY=1 again. Does nothing when no reload was announced, so a SIGHUP
 * during start-up never reports readiness early. */
void service_reloaded(void);

/* Shutdown begins: STOPPING=1. */
void service_stopping(void);

/* One line for `systemctl status`: STATUS=<text>. Text longer than 255
 * bytes is cut; a newline in it would end the field and is replaced. */
void service_status(const char *fmt, ...) PRINTFLIKE(1, 2);

/* Removes the watchdog timer. Call before freeing the event base. Can't
 * fail. */
void service_free(void);

#endif
