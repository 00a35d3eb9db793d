/*
 * policy.c - questions about the tier policies off the hot path (see
 * policy.h): the choice with the policy that made it (slawatchctl
 * explain), whether a value is named by any policy (input hygiene), and a
 * policy as text (explain, the reload log). Pure: no I/O, no allocation.
 */
#include "slawatch/policy.h"

#include <stdio.h>
#include <string.h>

static bool
value_listed(const struct cfg_policy *p, int attr, const char *v, size_t len)
{
    for (size_t i = 0; i < p->nvalues[attr]; i++)
        if (strlen(p->values[attr][i]) == len && memcmp(p->values[attr][i], v, len) == 0)
            return true;
    return false;
}

static bool
matches(const struct cfg_policy *p, const char *const attr[ATTR_COUNT])
{
    for (int a = 0; a < ATTR_COUNT; a++) {
        if (p->nvalues[a] == 0)
            continue;
        if (attr[a] == NULL || !value_listed(p, a, attr[a], strlen(attr[a])))
            return false;
    }
    return true;
}

int
policy_choose(const struct config *cfg, const char *const attr[ATTR_COUNT],
              const char *tier, size_t tier_len, int *policy)
{
    int t = tier && tier_len ? cfg_tier_index(cfg, tier, tier_len) : -1;
    if (t >= 0) {
        *policy = POLICY_EXPLICIT;
        return t;
    }
    for (size_t i = 0; i < cfg->npolicies; i++)
        if (matches(&cfg->policies[i], attr)) {
            *policy = (int)i;
            return cfg->policies[i].tier;
        }
    *policy = POLICY_DEFAULT;
    return (int)cfg->ntiers - 1;
}

bool
policy_constrains(const struct config *cfg, int attr)
{
    if (attr < 0 || attr >= ATTR_COUNT)
        return false;
    for (size_t i = 0; i < cfg->npolicies; i++)
        if (cfg->policies[i].nvalues[attr] > 0)
            return true;
    return false;
}

bool
policy_names_value(const struct config *cfg, int attr, const char *value, size_t len)
{
    if (attr < 0 || attr >= ATTR_COUNT)
        return false;
    for (size_t i = 0; i < cfg->npolicies; i++)
        if (value_listed(&cfg->policies[i], attr, value, len))
            return true;
    return false;
}

/* Appends to buf at *n, never past len - 1. */
static void
put(char *buf, size_t len, size_t *n, const char *s)
{
    size_t l = strlen(s);
    if (*n + 1 >= len)
        return;
    if (l > len - 1 - *n)
        l = len - 1 - *n;
    memcpy(buf + *n, s, l);
    *n += l;
    buf[*n] = '\0';
}

char *
policy_text(const struct config *cfg, size_t i, char *buf, size_t len)
{
    size_t n = 0;
    bool any = false;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (i >= cfg->npolicies)
        return buf;
    const struct cfg_policy *p = &cfg->policies[i];
    put(buf, len, &n, "{ ");
    for (int a = 0; a < ATTR_COUNT; a++) {
        if (p->nvalues[a] == 0)
            continue;
        put(buf, len, &n, any ? ", " : "match: { ");
        put(buf, len, &n, cfg_attr_name(a));
        put(buf, len, &n, p->nvalues[a] > 1 ? ": [" : ": ");
        for (size_t v = 0; v < p->nvalues[a]; v++) {
            if (v)
                put(buf, len, &n, ", ");
            put(buf, len, &n, p->values[a][v]);
        }
        if (p->nvalues[a] > 1)
            put(buf, len, &n, "]");
        any = true;
    }
    put(buf, len, &n, any ? " }, tier: " : "tier: ");
    put(buf, len, &n, cfg->tiers[p->tier].name);
    put(buf, len, &n, " }");
    return buf;
}
