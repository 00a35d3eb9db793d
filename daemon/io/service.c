/*
 * service.c - the systemd service protocol (see service.h). Owns the
 * watchdog timer and the little state needed to say READY/RELOADING in the
 * right order. Must never block the loop (sd_notify sends one datagram on a
 * non-blocking socket) and must never stop the daemon: a message that cannot
 * be sent is logged once and dropped, because the daemon's work matters more
 * than its manager hearing about it.
 *
 *   main: service_init --(WATCHDOG_USEC set)--> persistent timer, period/2
 *                                                 | each tick: WATCHDOG=1
 *   ingest: group ready --------> service_ready   READY=1 (once)
 *   SIGHUP: reload() ------------> service_reloading  RELOADING=1
 *                      accepted or rejected -> service_reloaded  READY=1
 *   publish timer, every second -> service_status     STATUS=...
 *   SIGTERM: begin_shutdown -----> service_stopping   STOPPING=1
 */
#define _GNU_SOURCE
#include "slawatch/service.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

/* systemd keeps at most this much of STATUS= for display anyway. */
#define SERVICE_STATUS_MAX 256
/* The fastest ping we agree to send, whatever WATCHDOG_USEC says. */
#define SERVICE_MIN_PERIOD_USEC 1000ULL

static struct {
    bool active;      /* NOTIFY_SOCKET was set at service_init */
    bool ready;       /* READY=1 sent for start-up */
    bool reloading;   /* RELOADING=1 sent, READY=1 owed */
    bool send_failed; /* a failure was logged; do not repeat it */
    struct event *watchdog_ev;
    uint64_t period_usec;
} svc;

/* Sends one notification. A failure (the manager went away, the socket is
 * full) is logged the first time only: the watchdog would otherwise repeat
 * it twice a second. */
static void
notify(const char *msg)
{
    if (!svc.active)
        return;
    int r = sd_notify(0, msg);
    if (r < 0 && !svc.send_failed) {
        svc.send_failed = true;
        errno = -r;
        log_warn("sd_notify(%.*s)", (int)strcspn(msg, "\n"), msg);
    }
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    notify("WATCHDOG=1");
}

int
service_init(struct event_base *base)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    uint64_t usec = 0;

    memset(&svc, 0, sizeof(svc));
    if (sock == NULL || *sock == '\0')
        return 0;
    svc.active = true;

    /* Leaves WATCHDOG_PID in the environment: it keeps naming this
     * process, so a forked child (the checkpoint writer) never takes the
     * watchdog for its own. */
    int r = sd_watchdog_enabled(0, &usec);
    if (r < 0) {
        log_warnx("ignoring the watchdog settings (WATCHDOG_USEC, "
                  "WATCHDOG_PID): %s",
                  strerror(-r));
        return 0;
    }
    if (r == 0)
        return 0; /* no watchdog, or it is meant for another process */

    svc.period_usec = usec / 2;
    if (svc.period_usec < SERVICE_MIN_PERIOD_USEC)
        svc.period_usec = SERVICE_MIN_PERIOD_USEC;
    svc.watchdog_ev = event_new(base, -1, EV_PERSIST, watchdog_cb, NULL);
    if (svc.watchdog_ev == NULL)
        return -1;
    struct timeval tv = {(time_t)(svc.period_usec / 1000000),
                         (suseconds_t)(svc.period_usec % 1000000)};
    if (event_add(svc.watchdog_ev, &tv) < 0) {
        event_free(svc.watchdog_ev);
        svc.watchdog_ev = NULL;
        return -1;
    }
    log_info("systemd watchdog: WATCHDOG=1 every %llu ms",
             (unsigned long long)(svc.period_usec / 1000));
    return 0;
}

void
service_ready(void)
{
    if (svc.ready)
        return;
    svc.ready = true;
    notify("READY=1");
}

void
service_reloading(void)
{
    char msg[64];
    struct timespec now;

    if (!svc.ready || svc.reloading)
        return;
    svc.reloading = true;
    /* systemd 253 and later (Type=notify-reload) want to know when the
     * reload began; 252 ignores the extra field. */
    clock_gettime(CLOCK_MONOTONIC, &now);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)now.tv_sec * 1000000ULL +
                 (unsigned long long)now.tv_nsec / 1000ULL);
    notify(msg);
}

void
service_reloaded(void)
{
    if (!svc.reloading)
        return;
    svc.reloading = false;
    notify("READY=1");
}

void
service_stopping(void)
{
    notify("STOPPING=1");
}

void
service_status(const char *fmt, ...)
{
    char msg[sizeof("STATUS=") - 1 + SERVICE_STATUS_MAX];
    const size_t head = sizeof("STATUS=") - 1;
    va_list ap;

    if (!svc.active)
        return;
    memcpy(msg, "STATUS=", head);
    va_start(ap, fmt);
    vsnprintf(msg + head, sizeof(msg) - head, fmt, ap);
    va_end(ap);
    /* A newline would start a new "FIELD=" assignment. */
    for (char *p = msg + head; *p; p++)
        if (*p == '\n')
            *p = ' ';
    notify(msg);
}

void
service_free(void)
{
    if (svc.watchdog_ev != NULL)
        event_free(svc.watchdog_ev);
    memset(&svc, 0, sizeof(svc));
}
