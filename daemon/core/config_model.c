/*
 * config_model.c - the YAML-free half of the configuration model: the
 * accepted keys (one table that unknown-key errors, "did you mean" hints and
 * the documentation tests share), the names of metrics and attributes, tier
 * lookup and cfg_free. Part of the pure core: it must not include libyaml or
 * any I/O library; loading YAML into this model is daemon/config/'s job.
 */
#define _GNU_SOURCE
#include "slawatch/config.h"

#include <stdlib.h>
#include <string.h>

#include "slawatch/cal.h"

const char *const cfg_known_keys[] = {
    "redis",
    "redis.host",
    "redis.unix",
    "redis.port",
    "redis.db",
    "redis.username",
    "redis.password_file",
    "redis.prefix",
    "redis.sentinels",
    "redis.master_name",
    "redis.max_queue_mb",
    "events",
    "events.group",
    "events.consumer",
    "events.batch",
    "events.max_clock_skew",
    "events.allowed_lateness",
    "events.dead_maxlen",
    "tiers",
    "tiers.*.response",
    "tiers.*.resolution",
    "tiers.*.next_reply",
    "tiers.*.warn",
    "tiers.*.calendar",
    "tiers.*.pause",
    "policies",
    "policies.*.match",
    "policies.*.match.priority",
    "policies.*.match.channel",
    "policies.*.match.queue",
    "policies.*.match.agent",
    "policies.*.match.customer",
    "policies.*.tier",
    "calendars",
    "calendars.*.timezone",
    "calendars.*.week",
    "calendars.*.week.*",
    "calendars.*.holidays",
    "escalations",
    "escalations.*.name",
    "escalations.*.when",
    "escalations.*.metric",
    "escalations.*.tiers",
    "escalations.*.after",
    "escalations.*.notify",
    "webhooks",
    "webhooks.*.url",
    "webhooks.*.format",
    "webhooks.*.secret_file",
    "webhooks.*.routing_key_file",
    "webhooks.*.timeout",
    "webhooks.*.retry",
    "webhooks.*.retry.attempts",
    "webhooks.*.retry.backoff",
    "webhooks.*.retry.max_backoff",
    "webhooks.*.send_resolved",
    "webhooks.*.max_rate",
    "webhooks.*.resend",
    "compliance",
    "compliance.windows",
    "compliance.by",
    "compliance.max_values",
    "compliance.publish_every",
    "compliance.objective",
    "ha",
    "ha.lease",
    "state",
    "state.checkpoint_every",
    "state.forget_resolved_after",
    "state.max_attribute_values",
    "log",
    "log.level",
    NULL,
};

const char *const cfg_metric_names[METRIC_COUNT] = {"response", "resolution",
                                                  "next_reply"};
const char *const cfg_attr_names[ATTR_COUNT] = {"priority", "channel", "queue",
                                                "agent", "customer"};
static void
free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void
cfg_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->path);
    free(cfg->redis.host);
    free(cfg->redis.unix_path);
    free(cfg->redis.username);
    free_secret(cfg->redis.password);
    free(cfg->redis.password_file);
    free(cfg->redis.prefix);
    for (size_t i = 0; i < cfg->redis.nsentinels; i++)
        free(cfg->redis.sentinel_host[i]);
    free(cfg->redis.master_name);
    free(cfg->events.group);
    free(cfg->events.consumer);
    for (size_t i = 0; i < cfg->ntiers; i++) {
        free(cfg->tiers[i].name);
        free(cfg->tiers[i].calendar_name);
    }
    free(cfg->tiers);
    for (size_t i = 0; i < cfg->npolicies; i++) {
        for (int a = 0; a < ATTR_COUNT; a++) {
            for (size_t v = 0; v < cfg->policies[i].nvalues[a]; v++)
                free(cfg->policies[i].values[a][v]);
            free(cfg->policies[i].values[a]);
        }
    }
    free(cfg->policies);
    for (size_t i = 0; i < cfg->ncalendars; i++)
        cal_free(cfg->calendars[i]);
    free(cfg->calendars);
    for (size_t i = 0; i < cfg->nescalations; i++) {
        free(cfg->escalations[i].name);
        free(cfg->escalations[i].notify);
    }
    free(cfg->escalations);
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        free(cfg->webhooks[i].name);
        free(cfg->webhooks[i].url);
        free_secret(cfg->webhooks[i].secret);
        free_secret(cfg->webhooks[i].routing_key);
        free(cfg->webhooks[i].secret_file);
        free(cfg->webhooks[i].routing_key_file);
    }
    free(cfg->webhooks);
    for (size_t i = 0; i < cfg->compliance.nwindows; i++)
        free(cfg->compliance.windows[i].name);
    free(cfg);
}

int
cfg_tier_index(const struct config *cfg, const char *name, size_t len)
{
    for (size_t i = 0; i < cfg->ntiers; i++) {
        const char *t = cfg->tiers[i].name;
        if (t != NULL && strlen(t) == len && memcmp(t, name, len) == 0)
            return (int)i;
    }
    return -1;
}

const char *
cfg_metric_name(int metric)
{
    if (metric < 0 || metric >= METRIC_COUNT)
        return "any";
    return cfg_metric_names[metric];
}

const char *
cfg_attr_name(int attr)
{
    if (attr < 0 || attr >= ATTR_COUNT)
        return "?";
    return cfg_attr_names[attr];
}

int
cfg_attr_from_name(const char *name, size_t len)
{
    for (int a = 0; a < ATTR_COUNT; a++)
        if (strlen(cfg_attr_names[a]) == len &&
            memcmp(cfg_attr_names[a], name, len) == 0)
            return a;
    return -1;
}
