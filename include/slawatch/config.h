/*
 * config.h - the parsed, validated configuration (SPEC section 2).
 *
 * cfg_load() parses a YAML file into a fresh struct config, validates every
 * value, fills defaults and only then returns it; the running daemon swaps
 * whole configs, never edits one in place. Loading does no network I/O; it
 * reads the config file, secret files and the zone database only.
 */
#ifndef SLAWATCH_CONFIG_H
#define SLAWATCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "slawatch/util.h"

struct calendar;

/* The clocks of SPEC section 3: first response, resolution, and (v2) the
 * next reply to each customer message after the first response. */
enum sla_metric { METRIC_RESPONSE = 0, METRIC_RESOLUTION = 1,
                  METRIC_NEXT_REPLY = 2, METRIC_COUNT = 3 };

/* Ticket attributes that policies match and reports break down by. */
enum sla_attr {
    ATTR_PRIORITY = 0,
    ATTR_CHANNEL,
    ATTR_QUEUE,
    ATTR_AGENT,
    ATTR_CUSTOMER,
    ATTR_COUNT
};

/* Room for a Redis key: <prefix> plus a name (the wiring refuses a prefix
 * that leaves too little). */
#define KEY_MAX 512

#define CFG_MAX_WARN 8
#define CFG_MAX_TIERS 64
#define CFG_MAX_WINDOWS 16

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARNING = 4, LOG_LVL_NOTICE = 5,
                 LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

struct cfg_redis {
    char *host;          /* NULL when unix is set */
    char *unix_path;     /* NULL when host is used */
    int port;
    int db;
    char *username;      /* NULL: no ACL user */
    char *password;      /* read from password_file; NULL: no AUTH */
    char *password_file; /* where it came from (resolved), NULL: none */
    char *prefix;        /* default "sla:" */
    /* Redis Sentinel (SPEC section 7), instead of host/port: */
#define CFG_MAX_SENTINELS 16
    char *sentinel_host[CFG_MAX_SENTINELS];
    int sentinel_port[CFG_MAX_SENTINELS];
    size_t nsentinels;   /* 0: no Sentinel */
    char *master_name;
    int max_queue_mb;    /* writes waiting for Redis: reading pauses above
                            this (MiB), default 256 */
};

struct cfg_events {
    char *group;         /* default "slawatch" */
    char *consumer;      /* default: the host name */
    int batch;           /* XREADGROUP COUNT, default 1000 */
    int64_t max_clock_skew_ms; /* default 5m */
    int64_t allowed_lateness_ms; /* default 0: see SPEC section 3, "Time" */
    long dead_maxlen;    /* approximate cap of <prefix>events:dead; 0 = none */
};

struct cfg_tier {
    char *name;
    int64_t target_ms[METRIC_COUNT]; /* 0: the tier has no such clock */
    int nwarn;
    uint32_t warn_bp[CFG_MAX_WARN];  /* basis points of the target, ascending,
                                        1..9999 (80% = 8000) */
    bool pause[METRIC_COUNT];        /* clocks stopped while paused;
                                        default: resolution only */
    char *calendar_name;             /* NULL: 24x7 */
    const struct calendar *calendar; /* points into cfg->calendars */
};

struct cfg_policy {
    int tier;                        /* index into cfg->tiers */
    /* For each attribute, the accepted values; nvalues == 0 means the
     * attribute is not constrained. All constrained attributes must match. */
    char **values[ATTR_COUNT];
    size_t nvalues[ATTR_COUNT];
};

enum esc_when { ESC_WARNING = 0, ESC_BREACH, ESC_OBJECTIVE };

struct cfg_escalation {
    char *name;
    enum esc_when when;
    int metric;                      /* METRIC_* or -1 for any */
    bool tiers[CFG_MAX_TIERS];       /* which tiers; all true by default */
    bool every_tier;                 /* no `tiers` list: every tier and, for
                                        `when: objective`, the `all` series */
    int64_t after_ms;
    size_t nnotify;
    int *notify;                     /* indexes into cfg->webhooks */
};

enum hook_format { HOOK_JSON = 0, HOOK_ALERTMANAGER, HOOK_PAGERDUTY, HOOK_SLACK };

struct cfg_webhook {
    char *name;
    char *url;
    enum hook_format format;
    char *secret;                    /* from secret_file, NULL if none */
    char *routing_key;               /* from routing_key_file (pagerduty) */
    char *secret_file;               /* where they came from (resolved paths, */
    char *routing_key_file;          /* for display); NULL: none */
    int64_t timeout_ms;              /* default 5s */
    int attempts;                    /* default 10 */
    int64_t backoff_ms;              /* default 1s */
    int64_t max_backoff_ms;          /* default 5m */
    bool send_resolved;              /* default true */
    double max_rate;                 /* deliveries per second; 0 = unlimited */
    int64_t resend_ms;               /* alertmanager re-send period, default 1m */
};

struct cfg_window {
    char *name;                      /* as written: "1h", "24h", "7d" */
    int64_t ms;
};

struct cfg_compliance {
    size_t nwindows;
    struct cfg_window windows[CFG_MAX_WINDOWS]; /* default 1h, 24h, 7d */
    bool by[ATTR_COUNT];             /* breakdowns */
    int max_values;                  /* default 200 */
    int64_t publish_every_ms;        /* default 10s */
    double objective;                /* default 0.90 */
};

struct cfg_ha {
    int64_t lease_ms;        /* default 10s (SPEC section 7) */
};

struct cfg_state {
    int64_t checkpoint_every_ms;     /* default 30s */
    int64_t forget_resolved_after_ms; /* a resolved ticket is forgotten this
                                        long after its resolution, default
                                        30d; 0: kept until closed */
    int max_attribute_values;        /* distinct values kept per attribute,
                                        default 100000; further ones fold
                                        into "_other" */
};

struct config {
    char *path;                      /* the file it came from */
    struct cfg_redis redis;
    struct cfg_events events;
    size_t ntiers;
    struct cfg_tier *tiers;
    size_t npolicies;
    struct cfg_policy *policies;
    size_t ncalendars;
    struct calendar **calendars;
    size_t nescalations;
    struct cfg_escalation *escalations;
    size_t nwebhooks;
    struct cfg_webhook *webhooks;
    struct cfg_compliance compliance;
    struct cfg_state state;
    struct cfg_ha ha;
    enum log_level log_level;        /* default info */
};

/* Loading (daemon/config/, libyaml; not in the core library). */

/* Loads and validates `path`. On success returns the config (caller owns it,
 * cfg_free). On failure returns NULL and writes one "FILE:LINE:COL: message"
 * line per error to `errors` (every error found, not only the first). */
struct config *cfg_load(const char *path, FILE *errors) MUSTCHECK;

/* Same, from a string; `name` stands for FILE in messages and relative
 * secret paths resolve against the current directory. */
struct config *cfg_load_string(const char *name, const char *yaml, size_t len,
                               FILE *errors) MUSTCHECK;

void cfg_free(struct config *cfg);

/* Index of the tier called `name` (len bytes), or -1. */
int cfg_tier_index(const struct config *cfg, const char *name, size_t len);

/* The model (daemon/core/config_model.c): no YAML, part of the pure core. */
extern const char *const cfg_metric_names[METRIC_COUNT];
extern const char *const cfg_attr_names[ATTR_COUNT];
const char *cfg_metric_name(int metric);    /* "response", "resolution" */
const char *cfg_attr_name(int attr);        /* "priority", ... */
int cfg_attr_from_name(const char *name, size_t len); /* ATTR_* or -1 */

/* Every key path the loader accepts, "redis.host", "tiers.*.response", ...,
 * NULL-terminated; used by the documentation tests. */
extern const char *const cfg_known_keys[];

#endif
