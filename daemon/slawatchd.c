/*
 * slawatchd.c - the daemon process and its wiring, nothing else: flags, the
 * config, the libevent loop, the modules and how they are connected, the
 * publish timer, signals, reload and shutdown. Owns process lifetime;
 * start-up code here is the only place allowed to exit. No module calls
 * into this file: each reports by callback, and the callbacks here pass
 * the news on.
 *
 *   reader --rds--> ingest --core_apply--> core --sinks--> notify  (escalations)
 *     ^ need_state: snapshot_load            |             publish (records)
 *     | loaded: ingest_replay                |             report  (compliance)
 *   ingest --drained/applied--> driver (the deadline timer) --core_advance
 *   ingest --ready--> READY=1, report live, checkpoints start, outbox re-driven
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slawatch/config.h"
#include "slawatch/config_diff.h"
#include "slawatch/core.h"
#include "slawatch/deliver.h"
#include "slawatch/driver.h"
#include "slawatch/hook_http.h"
#include "slawatch/hygiene.h"
#include "slawatch/ingest.h"
#include "slawatch/lease.h"
#include "slawatch/log.h"
#include "slawatch/notify.h"
#include "slawatch/publish.h"
#include "slawatch/rds.h"
#include "slawatch/report.h"
#include "slawatch/service.h"
#include "slawatch/snapshot.h"

#include "slawatch/version.h"
#define EX_CONFIG 78
#define DEFAULT_CONFIG "/etc/slawatch/slawatch.yaml"
#define PUBLISH_MS 1000
/* SIGTERM to exit within 5 s (SPEC) whatever Redis does: pending writes
 * get 2 s to be answered, the final checkpoint what is left of 4 s. */
#define SHUTDOWN_FLUSH_US 2000000
#define SHUTDOWN_TOTAL_US 4000000

/* Everything the process holds; only this file sees it. */
struct sw {
    struct event_base *base;
    const char *config_path;
    struct config *cfg;
    struct core *core;
    struct driver *driver;           /* the deadline timer */
    struct ingest *ingest;           /* the stream */
    struct snapshot *snapshot;       /* checkpoints */
    struct publish *publish;         /* sink: breach records, gauges */
    struct report *report;           /* sink: compliance, at-risk */
    struct notify *notify;           /* sink: escalation webhooks */
    struct deliver *deliver;         /* the outbox and its webhooks */
    struct lease *lease;             /* who leads (SPEC section 7) */
    bool leading;
    char **argv;                     /* for the re-exec of a deposed leader */
    struct hygiene *hygiene;         /* values no policy names */
    struct rds_conn reader;          /* XRANGE/XREADGROUP only (it blocks) */
    struct rds_conn writer;          /* every other command, in order */
    struct event *publish_ev;        /* gauges and counters */
    struct event *shutdown_ev;       /* polls the writer queue on exit */
    struct event *sig_ev[4];
    bool ready;                      /* replay done, group joined */
    bool stopping;
    int64_t stop_deadline_us;        /* pending writes given up */
    int64_t stop_final_us;           /* the final checkpoint given up */
    uint64_t events_at_last_status;
    int64_t last_status_us;
    double events_per_s;
    int64_t config_loaded_ms;        /* when the running config was loaded */
    bool reload_failed;              /* until a reload succeeds */
    int64_t reload_failed_ms;
    char reload_error[160];          /* the first error of that reload */
    int64_t redis_down_since_ms;     /* 0 while the writer is connected */
    struct {                         /* what a reload did to the clocks */
        bool on;
        long moved, started, breached;
    } retarget;
};

static int64_t
wall_clock(void *arg)
{
    (void)arg;
    return now_wall_ms();
}

/* ---- ingest, snapshot and the driver ----------------------------------- */

static void
need_state(void *arg, struct rds_conn *reader)
{
    struct sw *sw = arg;
    snapshot_load(sw->snapshot, reader);
}

static void
state_loaded(void *arg, const struct state_meta *meta, const char *error)
{
    struct sw *sw = arg;
    struct ingest_position pos = { 0 };
    if (error)
        fatalx("%s", error);
    if (meta) {
        pos.last_ms = meta->last_ms;
        pos.last_seq = meta->last_seq;
        pos.events_total = meta->events_total;
        pos.rejected_total = meta->rejected_total;
    }
    ingest_replay(sw->ingest, &pos);
}

static void
checkpoint_position(void *arg, struct state_meta *meta)
{
    struct sw *sw = arg;
    struct ingest_position pos;
    ingest_position(sw->ingest, &pos);
    meta->last_ms = pos.last_ms;
    meta->last_seq = pos.last_seq;
    meta->events_total = pos.events_total;
    meta->rejected_total = pos.rejected_total;
}

static void
stream_drained(void *arg, bool drained)
{
    struct sw *sw = arg;
    driver_set_drained(sw->driver, drained);
}

static void
batch_applied(void *arg)
{
    struct sw *sw = arg;
    driver_arm(sw->driver);
}

static void
stream_ready(void *arg)
{
    struct sw *sw = arg;
    sw->ready = true;
    service_ready();
    report_set_live(sw->report);
    if (snapshot_start(sw->snapshot) < 0)
        fatalx("cannot create the checkpoint timer");
    /* State is loaded: waiting escalation levels in the outbox can now be
     * checked against restored clocks. */
    deliver_writer_ready(sw->deliver);
}

/* ---- the sinks and their cross-talk ------------------------------------ */

static void
notify_notice_sink(void *arg, const struct sla_notice *n)
{
    notify_notice(arg, n);
}

static void
notify_outcome_sink(void *arg, const struct sla_outcome *o)
{
    notify_outcome(arg, o);
}

/* Objective transitions (report.c: compliance.objective and the named
 * objectives) feed the `when: objective` escalations (notify.c), which
 * read the series' state back through report.c before a waiting level or
 * an Alertmanager re-send goes out. */
static void
objective_changed(void *arg, const struct obj_change *ch)
{
    struct sw *sw = arg;
    notify_objective(sw->notify, ch);
}

static bool
objective_state(void *arg, const struct hook_note *n, uint32_t *episode)
{
    struct sw *sw = arg;
    return report_objective_state(sw->report, n->name, n->is_kpi ? -1 : n->metric,
                                  n->is_kpi ? n->kpi : -1, n->tier, n->window, episode);
}

static void
writer_ready(struct rds_conn *conn, void *arg)
{
    struct sw *sw = arg;
    (void)conn;
    sw->redis_down_since_ms = 0;
    if (sw->ready)
        deliver_writer_ready(sw->deliver);
}

static void
writer_down(struct rds_conn *conn, void *arg)
{
    struct sw *sw = arg;
    (void)conn;
    sw->redis_down_since_ms = now_wall_ms();
}

/* A sink that only listens during core_set_config() on reload, to say what
 * re-targeting did: deadlines moved (a clock whose new deadline is already
 * past counts here and, once decided, as breached at once), clocks started
 * (a tier that gained a resolution target). */
static void
retarget_notice(void *arg, const struct sla_notice *n)
{
    struct sw *sw = arg;
    if (sw->retarget.on && n->kind == NOTICE_BREACH)
        sw->retarget.breached++;
}

static void
retarget_deadline(void *arg, const struct sla_deadline_change *d)
{
    struct sw *sw = arg;
    if (!sw->retarget.on)
        return;
    if (d->old_tier >= 0 && d->new_tier >= 0 && d->old_deadline_ms != d->new_deadline_ms)
        sw->retarget.moved++;
    else if (d->old_tier < 0 && d->new_tier >= 0)
        sw->retarget.started++;
}

/* deliver.c asks notify.c whether a note's clock (or violation) still holds;
 * notify.c hands its notes to deliver.c. */
static bool
delivery_still_open(void *arg, const struct hook_note *n)
{
    struct sw *sw = arg;
    return notify_still_open(sw->notify, n);
}

static int64_t
delivery_due_of(void *arg, const struct hook_note *n)
{
    struct sw *sw = arg;
    return notify_due_of(sw->notify, n);
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

/* ---- leading and standing by ------------------------------------------- */

static void
lease_acquired(void *arg, uint64_t token, const char *previous)
{
    struct sw *sw = arg;
    const char **fence;
    const size_t *lens;
    int n;
    if (*previous && strcmp(previous, sw->cfg->events.consumer) != 0)
        log_notice("leader %s (token %llu): took over from %s, whose lease ran out or "
                   "was given up", sw->cfg->events.consumer, (unsigned long long)token,
                   previous);
    else
        log_notice("leader %s (token %llu)", sw->cfg->events.consumer,
                   (unsigned long long)token);
    sw->leading = true;
    /* From now on Redis runs this instance's writes only while it holds
     * the lease. */
    lease_fence_argv(sw->lease, &fence, &lens, &n);
    if (rds_set_prefix(&sw->writer, fence, lens, n) < 0)
        fatalx("out of memory");
    snapshot_set_fence(sw->snapshot, fence + 3, lens + 3);
    service_status("leader: loading the checkpoint");
    rds_start(&sw->writer);
    rds_start(&sw->reader);
}

/* Redis refused one of our writes as fenced: another instance leads. */
static void
writer_error(struct rds_conn *conn, const redisReply *reply, void *arg)
{
    struct sw *sw = arg;
    (void)conn;
    if (strncmp(reply->str, "FENCED", 6) == 0)
        lease_refused(sw->lease);
}

static void
lease_standby(void *arg, const char *leader)
{
    struct sw *sw = arg;
    if (strcmp(leader, sw->cfg->events.consumer) == 0)
        log_warnx("standby: a lease under this instance's own name (%s) is still running: "
                  "its previous run's, or another instance's with the same "
                  "events.consumer; waiting for it to run out", leader);
    else
        log_info("standby: leader %s", *leader ? leader : "(none)");
    service_ready();
    service_status("standby, leader %s", *leader ? leader : "(none)");
}

static void
restart_self(struct sw *sw)
{
    close_range(3, ~0U, 0);
    execv("/proc/self/exe", sw->argv);
    fatal("cannot restart: exec");
}

/* A deposed leader starts afresh as a standby: the same process (systemd
 * keeps its PID), nothing of the old state, nothing more written. */
static void
lease_lost(void *arg, const char *why)
{
    struct sw *sw = arg;
    (void)why;
    service_status("deposed: restarting as a standby");
    log_notice("restarting as a standby");
    restart_self(sw);
}

/* A Sentinel failover: writes the old master took after its replica was
 * promoted are lost with it. Starting afresh from the new master's
 * checkpoint and stream produces them again (outputs follow from the
 * stream; what repeats, repeats with the same content), keeping the lease. */
static void
master_changed(struct rds_conn *conn, void *arg)
{
    struct sw *sw = arg;
    if (!sw->leading)
        return;
    log_notice("redis %s: the master changed: restarting from its checkpoint and stream, "
               "keeping the lease", conn->name);
    service_status("the Redis master changed: restarting");
    lease_resume_env(sw->lease);
    restart_self(sw);
}

static void
publish_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sw *sw = arg;
    struct ingest_position pos;
    (void)fd;
    (void)what;
    ingest_position(sw->ingest, &pos);
    int64_t now = now_mono_us();
    if (sw->last_status_us) {
        double secs = (double)(now - sw->last_status_us) / 1e6;
        if (secs > 0)
            sw->events_per_s = (double)(pos.events_total - sw->events_at_last_status) / secs;
    }
    sw->last_status_us = now;
    sw->events_at_last_status = pos.events_total;
    /* Before this round's own MSET joins the queue: idle, nothing waits. */
    size_t pending = rds_pending(&sw->writer);
    struct publish_stats st = {
        .events_total = pos.events_total,
        .rejected_total = pos.rejected_total,
        .future_events = pos.future_total,
        .events_per_s = sw->events_per_s,
        .last_checkpoint_ms = snapshot_last_ms(sw->snapshot),
        .checkpoints_failed = snapshot_failed_total(sw->snapshot),
        .notifications_pending = deliver_pending(sw->deliver),
        .deliveries_failed = deliver_failed_total(sw->deliver),
        .redis_lost = sw->reader.lost_total + sw->writer.lost_total,
        .stream_errors = ingest_stream_errors(sw->ingest),
        .checkpoint_writes_refused = snapshot_writes_refused_total(sw->snapshot),
        .reload_failed = sw->reload_failed,
        .unmatched = hygiene_counts(sw->hygiene),
    };
    publish_gauges(sw->publish, &st);
    long open = 0;
    for (size_t t = 0; t < sw->cfg->ntiers; t++)
        open += core_open_count(sw->core, (int)t);
    char reload[sizeof(sw->reload_error) + 64] = "", since[TS_BUFLEN];
    if (sw->reload_failed)
        snprintf(reload, sizeof(reload), "; reload rejected at %s: %s",
                 ts_format(sw->reload_failed_ms, since), sw->reload_error);
    const struct cfg_redis *r = &sw->writer.cfg; /* where it connects, until restart */
    char where[300];
    if (r->nsentinels)
        snprintf(where, sizeof(where), "%s (Sentinel)", r->master_name);
    else if (r->unix_path)
        snprintf(where, sizeof(where), "%s", r->unix_path);
    else
        snprintf(where, sizeof(where), "%s:%d", r->host, r->port);
    /* A Redis that loads, refuses writes or is away, or a stream that
     * cannot be read, leads the line; before it leads, only the lease
     * connection is up or not. */
    char problem[256];
    bool trouble = (!sw->leading && lease_problem(sw->lease, problem, sizeof(problem))) ||
                   rds_problem(&sw->writer, problem, sizeof(problem)) ||
                   rds_problem(&sw->reader, problem, sizeof(problem)) ||
                   ingest_problem(sw->ingest, problem, sizeof(problem));
    if (trouble && sw->redis_down_since_ms)
        service_status("waiting for Redis at %s since %s (%s); %ld open tickets, %zu writes "
                       "pending%s",
                       where, ts_format(sw->redis_down_since_ms, since), problem, open,
                       pending, reload);
    else if (trouble)
        service_status("%s; %ld open tickets, %zu writes pending%s", problem, open, pending,
                       reload);
    else if (sw->redis_down_since_ms)
        service_status("waiting for Redis at %s since %s; %ld open tickets, %zu writes "
                       "pending%s",
                       where, ts_format(sw->redis_down_since_ms, since), open, pending, reload);
    else
        service_status("%ld open tickets, %.0f events/s, %zu writes pending%s", open,
                       sw->events_per_s, pending, reload);
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
        /* Nothing to replay at the next start; then a standby may take
         * over at once. */
        if (sw->leading && snapshot_save_sync(sw->snapshot, sw->stop_final_us) == 0)
            lease_release(sw->lease);
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
    ingest_stop(sw->ingest); /* batches read but not applied yet: finish them */
    driver_stop(sw->driver);
    snapshot_stop(sw->snapshot);
    publish_cb(-1, 0, sw);
    report_publish(sw->report);
    sw->stop_deadline_us = now_mono_us() + SHUTDOWN_FLUSH_US;
    sw->stop_final_us = now_mono_us() + SHUTDOWN_TOTAL_US;
    shutdown_poll_cb(-1, 0, sw);
}

static void
log_change(void *arg, const char *line)
{
    (void)arg;
    log_notice("reload: %s", line);
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
        int64_t now = now_wall_ms();
        publish_config_state(sw->publish, "rejected", now, sw->config_loaded_ms,
                             sw->config_path, errs ? errs : "");
        sw->reload_failed = true;
        sw->reload_failed_ms = now;
        snprintf(sw->reload_error, sizeof(sw->reload_error), "%.*s",
                 errs ? (int)strcspn(errs, "\n") : 0, errs ? errs : "");
        char *save = NULL;
        for (char *line = strtok_r(errs, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
            log_err("reload rejected: %s", line);
        log_err("reload rejected: keeping the running configuration (stats:reload_failed is "
                "1 until a reload succeeds)");
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
            /* A valid file may still carry warnings (slawatchd -t shows
             * them too). */
            char *save = NULL;
            for (char *line = errs ? strtok_r(errs, "\n", &save) : NULL; line;
                 line = strtok_r(NULL, "\n", &save))
                log_warnx("reload: %s", line);
            size_t changes = cfg_diff(old, cfg, log_change, NULL);
            report_reconfigure(sw->report, cfg); /* before the core's outcomes */
            publish_set_config(sw->publish, cfg);
            memset(&sw->retarget, 0, sizeof(sw->retarget));
            sw->retarget.on = true;
            core_set_config(sw->core, cfg);
            sw->retarget.on = false;
            notify_set_config(sw->notify, cfg);
            hygiene_set_config(sw->hygiene, cfg);
            deliver_set_config(sw->deliver, cfg);
            ingest_set_config(sw->ingest, cfg);
            snapshot_set_config(sw->snapshot, cfg);
            sw->cfg = cfg;
            cfg_free(old);
            log_set_level(cfg->log_level);
            sw->config_loaded_ms = now_wall_ms();
            sw->reload_failed = false;
            publish_config_state(sw->publish, "reloaded", sw->config_loaded_ms,
                                 sw->config_loaded_ms, sw->config_path, "");
            log_notice("configuration reloaded from %s: %zu change%s; clocks re-targeted: "
                       "%ld deadline%s moved, %ld started, %ld breached at once",
                       sw->config_path, changes, changes == 1 ? "" : "s", sw->retarget.moved,
                       sw->retarget.moved == 1 ? "" : "s", sw->retarget.started,
                       sw->retarget.breached);
            driver_arm(sw->driver);
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
    sw.argv = argv;

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
    if (hook_http_global_init() < 0)
        fatalx("cannot initialise libcurl");
    sw.config_path = path;
    sw.cfg = cfg;
    if (strlen(cfg->redis.prefix) > KEY_MAX / 2)
        fatalx("redis.prefix is too long");
    sw.base = event_base_new();
    /* Three priorities, everything at the middle one but the deadline
     * timer (driver.c), which runs last: a reply already waiting on the
     * reader is applied before a deadline is decided. */
    if (sw.base == NULL || event_base_priority_init(sw.base, DRIVER_PRIORITIES) < 0)
        fatalx("cannot create the event loop");

    /* The core and its sinks, in the order they hear each notice and
     * outcome: escalations, records, compliance. */
    sw.core = core_new(cfg, wall_clock, NULL, NULL);
    sw.report = sw.core ? report_new(cfg, now_wall_ms()) : NULL;
    sw.publish = publish_new(cfg, sw.core, &sw.writer);
    const struct deliver_hooks dh = { delivery_still_open, delivery_due_of, &sw };
    sw.deliver = deliver_new(sw.base, &sw.writer, cfg, &dh);
    const struct notify_delivery nd = { delivery_submit, delivery_lookup, delivery_cancel,
                                        delivery_poke, sw.deliver };
    sw.notify = sw.deliver ? notify_new(cfg, sw.core, &nd) : NULL;
    sw.hygiene = sw.core ? hygiene_new(cfg, sw.core) : NULL;
    if (sw.core == NULL || sw.report == NULL || sw.publish == NULL || sw.notify == NULL ||
        sw.hygiene == NULL ||
        report_attach(sw.report, sw.base, &sw.writer, sw.core) < 0)
        fatalx("out of memory");
    const struct core_sink sinks[] = {
        { .notice = notify_notice_sink, .outcome = notify_outcome_sink, .arg = sw.notify },
        { .notice = publish_notice, .arg = sw.publish },
        { .outcome = report_outcome, .deadline = report_deadline, .kpi = report_kpi,
          .arg = sw.report },
        { .notice = retarget_notice, .deadline = retarget_deadline, .arg = &sw },
    };
    for (size_t i = 0; i < ARRAY_LEN(sinks); i++)
        if (core_add_sink(sw.core, &sinks[i]) < 0)
            fatalx("too many sinks");
    core_set_tier_hook(sw.core, hygiene_tier_chosen, sw.hygiene);
    report_set_objective_hook(sw.report, objective_changed, &sw);
    notify_set_objective_state(sw.notify, objective_state, &sw);

    /* The stream, the checkpoints and the deadline timer. */
    const struct ingest_hooks ih = { need_state, stream_ready, stream_drained,
                                     batch_applied, &sw };
    const struct snapshot_hooks sh = { checkpoint_position, state_loaded, &sw };
    const struct snapshot_section compliance = { STATE_SECTION_COMPLIANCE, report_encode,
                                                 report_restore, sw.report };
    const struct snapshot_section objectives = { STATE_SECTION_OBJECTIVES,
                                                 report_encode_objectives,
                                                 report_restore_objectives, sw.report };
    sw.driver = driver_new(sw.base, sw.core);
    sw.ingest = ingest_new(sw.base, cfg, sw.core, &sw.reader, &sw.writer, &ih);
    sw.snapshot = snapshot_new(sw.base, cfg, sw.core, &sw.writer, &sh);
    if (sw.driver == NULL || sw.ingest == NULL || sw.snapshot == NULL ||
        snapshot_add_section(sw.snapshot, &compliance) < 0 ||
        snapshot_add_section(sw.snapshot, &objectives) < 0)
        fatalx("out of memory");

    sw.publish_ev = event_new(sw.base, -1, EV_PERSIST, publish_cb, &sw);
    sw.shutdown_ev = evtimer_new(sw.base, shutdown_poll_cb, &sw);
    if (!sw.publish_ev || !sw.shutdown_ev)
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
                 ingest_on_down, sw.ingest) < 0 ||
        rds_init(&sw.writer, sw.base, &cfg->redis, "writer", writer_ready, writer_down,
                 &sw) < 0)
        fatalx("out of memory");
    rds_set_max_queued(&sw.writer, (size_t)cfg->redis.max_queue_mb << 20);
    /* Until the writer connects, STATUS= says the daemon waits for Redis. */
    sw.config_loaded_ms = sw.redis_down_since_ms = now_wall_ms();
    publish_config_state(sw.publish, "started", sw.config_loaded_ms, sw.config_loaded_ms,
                         path, "");

    log_notice("slawatchd %s starting: %zu tiers, redis %s%s%d, prefix \"%s\"",
               SLAWATCH_VERSION, cfg->ntiers,
               cfg->redis.unix_path ? cfg->redis.unix_path : cfg->redis.host,
               cfg->redis.unix_path ? "" : ":",
               cfg->redis.unix_path ? 0 : cfg->redis.port, cfg->redis.prefix);
    /* Reading, deciding and writing start once this instance leads. */
    const struct lease_hooks lh = { lease_acquired, lease_lost, lease_standby, &sw };
    if ((sw.lease = lease_new(sw.base, cfg, &lh)) == NULL)
        fatalx("out of memory");
    sw.writer.on_error = writer_error;
    sw.writer.on_master_change = master_changed;
    lease_start(sw.lease);
    struct timeval pub = { PUBLISH_MS / 1000, (PUBLISH_MS % 1000) * 1000 };
    event_add(sw.publish_ev, &pub);
    driver_arm(sw.driver);

    event_base_dispatch(sw.base);

    struct ingest_position pos;
    ingest_position(sw.ingest, &pos);
    log_info("stopped after %llu events (%llu rejected)",
             (unsigned long long)pos.events_total,
             (unsigned long long)pos.rejected_total);
    rds_close(&sw.writer);
    lease_free(sw.lease);
    report_set_objective_hook(sw.report, NULL, NULL);
    deliver_free(sw.deliver); /* after the writer: its callbacks hold entries */
    notify_free(sw.notify);
    if (sw.reader.state != RDS_CLOSED)
        rds_close(&sw.reader);
    for (size_t i = 0; i < ARRAY_LEN(sigs); i++)
        event_free(sw.sig_ev[i]);
    event_free(sw.publish_ev);
    event_free(sw.shutdown_ev);
    snapshot_free(sw.snapshot);
    ingest_free(sw.ingest);
    driver_free(sw.driver);
    service_free();
    report_free_state(sw.report);
    publish_free(sw.publish);
    hygiene_free(sw.hygiene);
    core_free(sw.core);
    cfg_free(sw.cfg);
    event_base_free(sw.base);
    hook_http_global_cleanup();
    return 0;
}
