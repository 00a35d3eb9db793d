/*
 * slawatchd.c - the daemon process: flags, config, the libevent loop, the one
 * deadline timer, the publish timer, signals and shutdown. Owns process
 * lifetime; start-up code here is the only place allowed to exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "slawatch/daemon.h"
#include "slawatch/report.h"
#include "slawatch/service.h"

#define SLAWATCH_VERSION "0.1.0"
#define EX_CONFIG 78
#define DEFAULT_CONFIG "/etc/slawatch/slawatch.yaml"
#define TIMER_MAX_MS 1000
#define PUBLISH_MS 1000
#define SHUTDOWN_MAX_US 4000000

static int64_t
wall_clock(void *arg)
{
    (void)arg;
    return now_wall_ms();
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sw *sw = arg;
    (void)fd;
    (void)what;
    /* While a backlog is being read, time follows the events instead. */
    if (sw->caught_up)
        core_advance(sw->core, now_wall_ms());
    sw_arm_deadline_timer(sw);
}

/* Arms the single timer for one millisecond after the earliest key (a clock
 * breaches once its deadline has passed), at most TIMER_MAX_MS away so that
 * a wall-clock step is noticed. */
void
sw_arm_deadline_timer(struct sw *sw)
{
    int64_t due = core_next_due(sw->core);
    int64_t delay = TIMER_MAX_MS;
    if (due != INT64_MAX) {
        int64_t d = due + 1 - now_wall_ms();
        if (d < delay)
            delay = d < 0 ? 0 : d;
    }
    struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
    evtimer_add(sw->deadline_ev, &tv);
}

void
sw_notify_ready(struct sw *sw)
{
    if (sw->ready_notified)
        return;
    sw->ready_notified = true;
    log_info("consuming %s as %s/%s", sw->key_events, sw->cfg->events.group,
             sw->cfg->events.consumer);
    service_ready();
    /* State is loaded: waiting escalation levels in the outbox can now be
     * checked against restored clocks. */
    if (sw->deliver)
        deliver_writer_ready(sw->deliver);
}

/* Compliance objective transitions (report.c) feed the `when: objective`
 * escalations (notify.c), which read the series' state back through
 * report.c before a waiting level or an Alertmanager re-send goes out. */
static void
objective_changed(void *arg, const struct cmp_objective_change *ch)
{
    struct sw *sw = arg;
    notify_objective(sw->notify, ch);
}

static bool
objective_state(void *arg, const char *tier, int metric, const char *window,
                uint32_t *episode)
{
    return report_objective_state(arg, tier, metric, window, episode);
}

static void
writer_ready(struct rds_conn *conn, void *arg)
{
    struct sw *sw = arg;
    (void)conn;
    if (sw->ready_notified && sw->deliver)
        deliver_writer_ready(sw->deliver);
}

/* deliver.c asks notify.c whether a note's clock (or violation) still holds;
 * notify.c hands its notes to deliver.c. */
static bool
delivery_still_open(void *arg, const struct hook_note *n)
{
    struct sw *sw = arg;
    return notify_still_open(sw->notify, n);
}

static int
delivery_submit(void *arg, struct hook_note *n)
{
    return deliver_submit(arg, n);
}

static enum hook_state
delivery_lookup(void *arg, const char *id)
{
    return deliver_lookup(arg, id);
}

static void
delivery_cancel(void *arg, const char *id)
{
    deliver_cancel(arg, id);
}

static void
delivery_poke(void *arg, const char *id)
{
    deliver_poke(arg, id);
}

static void
publish_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sw *sw = arg;
    (void)fd;
    (void)what;
    int64_t now = now_mono_us();
    if (sw->last_status_us) {
        double secs = (double)(now - sw->last_status_us) / 1e6;
        if (secs > 0)
            sw->events_per_s = (double)(sw->events_total - sw->events_at_last_status) / secs;
    }
    sw->last_status_us = now;
    sw->events_at_last_status = sw->events_total;
    publish_gauges(sw);
    long open = 0;
    for (size_t t = 0; t < sw->cfg->ntiers; t++)
        open += core_open_count(sw->core, (int)t);
    service_status("%ld open tickets, %.0f events/s, %zu writes pending",
                   open, sw->events_per_s, rds_pending(&sw->writer));
}

static void
shutdown_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sw *sw = arg;
    (void)fd;
    (void)what;
    if (rds_pending(&sw->writer) == 0 || now_mono_us() >= sw->stop_deadline_us) {
        if (rds_pending(&sw->writer))
            log_warnx("%zu Redis writes unanswered: kept in the final checkpoint",
                      rds_pending(&sw->writer));
        /* Nothing to replay at the next start. */
        (void)snapshot_save_sync(sw);
        event_base_loopbreak(sw->base);
        return;
    }
    struct timeval tv = { 0, 20000 };
    evtimer_add(sw->shutdown_ev, &tv);
}

static void
begin_shutdown(struct sw *sw, int sig)
{
    if (sw->stopping)
        return;
    sw->stopping = true;
    log_info("signal %d: finishing and exiting", sig);
    service_stopping();
    /* The batch in hand was applied synchronously; a read still blocked in
     * Redis is dropped and its entries stay pending for the next start. */
    rds_close(&sw->reader);
    ingest_drain(sw); /* batches read but not applied yet: finish them */
    evtimer_del(sw->deadline_ev);
    publish_gauges(sw);
    report_publish(sw);
    sw->stop_deadline_us = now_mono_us() + SHUTDOWN_MAX_US;
    shutdown_poll_cb(-1, 0, sw);
}

static void
reload(struct sw *sw)
{
    char *errs = NULL;
    size_t errlen = 0;
    FILE *ef = open_memstream(&errs, &errlen);
    if (ef == NULL) {
        log_warn("reload: cannot collect errors");
        return;
    }
    service_reloading();
    struct config *cfg = cfg_load(sw->config_path, ef);
    fclose(ef);
    if (cfg == NULL) {
        char *save = NULL;
        for (char *line = strtok_r(errs, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
            log_err("reload rejected: %s", line);
        log_err("reload rejected: keeping the running configuration");
    } else {
        struct config *old = sw->cfg;
        if (strcmp(old->redis.prefix, cfg->redis.prefix) != 0 ||
            strcmp(old->events.group, cfg->events.group) != 0)
            log_warnx("reload: redis and events.group changes take effect at restart");
        /* Keys and connections keep the old Redis settings until restart. */
        free(cfg->redis.prefix);
        cfg->redis.prefix = strdup(old->redis.prefix);
        free(cfg->events.group);
        cfg->events.group = strdup(old->events.group);
        free(cfg->events.consumer);
        cfg->events.consumer = strdup(old->events.consumer);
        if (!cfg->redis.prefix || !cfg->events.group || !cfg->events.consumer) {
            log_err("reload rejected: out of memory");
            cfg_free(cfg);
        } else {
            report_reconfigure(sw, cfg); /* before the core's outcomes */
            core_set_config(sw->core, cfg);
            if (sw->notify)
                notify_set_config(sw->notify, cfg);
            if (sw->deliver)
                deliver_set_config(sw->deliver, cfg);
            sw->cfg = cfg;
            cfg_free(old);
            log_set_level(cfg->log_level);
            log_notice("configuration reloaded from %s", sw->config_path);
            sw_arm_deadline_timer(sw);
        }
    }
    free(errs);
    service_reloaded();
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct sw *sw = arg;
    (void)what;
    if (sig == SIGHUP)
        reload(sw);
    else
        begin_shutdown(sw, (int)sig);
}

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: slawatchd [-c FILE] [-t] [--version] [--help]\n"
            "  -c, --config FILE     configuration (default " DEFAULT_CONFIG ")\n"
            "  -t, --check-config    validate the configuration and exit\n"
            "  -V, --version         print the version and exit\n"
            "  -h, --help            print this help and exit\n"
            "Runs in the foreground until SIGTERM/SIGINT; SIGHUP reloads.\n");
}

static int
build_keys(struct sw *sw)
{
    const char *p = sw->cfg->redis.prefix;
    int a = snprintf(sw->key_events, KEY_MAX, "%sevents", p);
    int b = snprintf(sw->key_dead, KEY_MAX, "%sevents:dead", p);
    int c = snprintf(sw->key_breaches, KEY_MAX, "%sbreaches", p);
    int d = snprintf(sw->key_state, KEY_MAX, "%sstate", p);
    return (a >= KEY_MAX || b >= KEY_MAX || c >= KEY_MAX || d >= KEY_MAX) ? -1 : 0;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", no_argument, NULL, 't' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = DEFAULT_CONFIG;
    int check = 0, ch;
    static struct sw sw;

    while ((ch = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': path = optarg; break;
        case 't': check = 1; break;
        case 'V': printf("slawatchd %s\n", SLAWATCH_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 64;
    }

    log_init("slawatchd", LOG_LVL_INFO);
    struct config *cfg = cfg_load(path, stderr);
    if (cfg == NULL)
        return EX_CONFIG;
    if (check) {
        printf("%s: ok\n", path);
        cfg_free(cfg);
        return 0;
    }
    log_set_level(cfg->log_level);

    signal(SIGPIPE, SIG_IGN);
    /* Before any thread exists (curl's resolver starts threads). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        fatalx("cannot initialise libcurl");
    sw.config_path = path;
    sw.cfg = cfg;
    sw.reject_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10, 20);
    if (build_keys(&sw) < 0)
        fatalx("redis.prefix is too long");
    sw.base = event_base_new();
    if (sw.base == NULL)
        fatalx("cannot create the event loop");
    struct core_callbacks cb = { publish_notice, publish_outcome, &sw };
    sw.core = core_new(cfg, wall_clock, NULL, &cb);
    if (sw.core == NULL || report_init(&sw) < 0)
        fatalx("out of memory");
    sw.deadline_ev = evtimer_new(sw.base, deadline_cb, &sw);
    sw.publish_ev = event_new(sw.base, -1, EV_PERSIST, publish_cb, &sw);
    sw.shutdown_ev = evtimer_new(sw.base, shutdown_poll_cb, &sw);
    if (!sw.deadline_ev || !sw.publish_ev || !sw.shutdown_ev)
        fatalx("cannot create timers");
    const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
    for (size_t i = 0; i < ARRAY_LEN(sigs); i++) {
        sw.sig_ev[i] = evsignal_new(sw.base, sigs[i], signal_cb, &sw);
        if (sw.sig_ev[i] == NULL || evsignal_add(sw.sig_ev[i], NULL) < 0)
            fatalx("cannot install signal handlers");
    }
    if (service_init(sw.base) < 0)
        fatalx("cannot create the watchdog timer");
    if (rds_init(&sw.reader, sw.base, &cfg->redis, "reader", ingest_on_ready,
                 ingest_on_down, &sw) < 0 ||
        rds_init(&sw.writer, sw.base, &cfg->redis, "writer", writer_ready, NULL, &sw) < 0)
        fatalx("out of memory");
    struct deliver_hooks hooks = { delivery_still_open, &sw };
    sw.deliver = deliver_new(sw.base, &sw.writer, cfg, &hooks);
    if (sw.deliver == NULL)
        fatalx("cannot set up webhooks");
    struct notify_delivery ops = { delivery_submit, delivery_lookup,
                                   delivery_cancel, delivery_poke, sw.deliver };
    sw.notify = notify_new(cfg, sw.core, &ops);
    if (sw.notify == NULL)
        fatalx("cannot set up webhooks");
    report_set_objective_hook(&sw, objective_changed, &sw);
    notify_set_objective_state(sw.notify, objective_state, &sw);

    log_notice("slawatchd %s starting: %zu tiers, redis %s%s%d, prefix \"%s\"",
               SLAWATCH_VERSION, cfg->ntiers,
               cfg->redis.unix_path ? cfg->redis.unix_path : cfg->redis.host,
               cfg->redis.unix_path ? "" : ":",
               cfg->redis.unix_path ? 0 : cfg->redis.port, cfg->redis.prefix);
    rds_start(&sw.writer);
    rds_start(&sw.reader);
    struct timeval pub = { PUBLISH_MS / 1000, (PUBLISH_MS % 1000) * 1000 };
    event_add(sw.publish_ev, &pub);
    sw_arm_deadline_timer(&sw);
    snapshot_schedule(&sw);

    event_base_dispatch(sw.base);

    log_info("stopped after %llu events (%llu rejected)",
             (unsigned long long)sw.events_total,
             (unsigned long long)sw.rejected_total);
    rds_close(&sw.writer);
    report_set_objective_hook(&sw, NULL, NULL);
    deliver_free(sw.deliver); /* after the writer: its callbacks hold entries */
    notify_free(sw.notify);
    if (sw.reader.state != RDS_CLOSED)
        rds_close(&sw.reader);
    for (size_t i = 0; i < ARRAY_LEN(sigs); i++)
        event_free(sw.sig_ev[i]);
    event_free(sw.deadline_ev);
    event_free(sw.publish_ev);
    event_free(sw.shutdown_ev);
    if (sw.apply_ev)
        event_free(sw.apply_ev);
    event_free(sw.checkpoint_ev);
    event_free(sw.sigchld_ev);
    service_free();
    report_free(&sw);
    core_free(sw.core);
    cfg_free(sw.cfg);
    event_base_free(sw.base);
    curl_global_cleanup();
    return 0;
}
