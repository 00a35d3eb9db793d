/* Unit tests for policy.c: policy_choose() picks what the core picks (a
 * randomized differential over attribute values named and not named by the
 * policies, with and without an explicit tier), says which rule decided,
 * and the hygiene questions (policy_constrains, policy_names_value) and
 * policy_text() answer as the config says; and the core's tier hook hears
 * every opened and updated event once, with the tier already chosen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/policy.h"

#define T0 1795000000000LL

static const char *yaml =
    "tiers:\n"
    "  fast: { response: 10m }\n"
    "  mid:  { response: 1h }\n"
    "  slow: { response: 4h }\n"
    "policies:\n"
    "  - { match: { priority: [urgent, p1] }, tier: fast }\n"
    "  - { match: { priority: high, channel: phone }, tier: fast }\n"
    "  - { match: { priority: high }, tier: mid }\n"
    "  - { match: { queue: [vip, gold] }, tier: mid }\n";

static struct config *
load(const char *text)
{
    struct config *cfg = cfg_load_string("test.yaml", text, strlen(text), stderr);
    assert_non_null(cfg);
    return cfg;
}

static int64_t
wall(void *arg)
{
    (void)arg;
    return T0;
}

static uint64_t rng = 88172645463325252ULL;

static unsigned
pick(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void
test_choose_agrees_with_core(void **state)
{
    (void)state;
    struct config *cfg = load(yaml);
    struct core *core = core_new(cfg, wall, NULL, NULL);
    assert_non_null(core);
    static const char *const prio[] = { NULL, "urgent", "p1", "high", "High", "normal", "" };
    static const char *const chan[] = { NULL, "phone", "email", "Phone" };
    static const char *const queue[] = { NULL, "vip", "gold", "billing" };
    static const char *const tier[] = { NULL, "fast", "mid", "slow", "gold", "" };
    int by_rule[8] = { 0 };
    for (int i = 0; i < 4000; i++) {
        const char *p = prio[pick(7)], *c = chan[pick(4)], *q = queue[pick(4)],
                   *t = tier[pick(6)];
        char id[32];
        snprintf(id, sizeof(id), "P-%d", i);
        struct ev_field f[6];
        size_t n = 0;
        f[n++] = (struct ev_field){ "type", 4, "opened", 6 };
        f[n++] = (struct ev_field){ "ticket", 6, id, strlen(id) };
        if (p)
            f[n++] = (struct ev_field){ "priority", 8, p, strlen(p) };
        if (c)
            f[n++] = (struct ev_field){ "channel", 7, c, strlen(c) };
        if (q)
            f[n++] = (struct ev_field){ "queue", 5, q, strlen(q) };
        if (t)
            f[n++] = (struct ev_field){ "tier", 4, t, strlen(t) };
        struct sla_event ev;
        const char *reason;
        assert_int_equal(event_apply(core, cfg, f, n, T0, T0, &ev, &reason), 0);
        const struct ticket *tk = core_find(core, id, strlen(id));
        assert_non_null(tk);
        /* The core keeps no empty value: absent for policy_choose too. */
        const char *attr[ATTR_COUNT] = { p && *p ? p : NULL, c, q, NULL, NULL };
        int rule;
        int chosen = policy_choose(cfg, attr, t, t ? strlen(t) : 0, &rule);
        if (strcmp(cfg->tiers[chosen].name, core_tier_name(core, tk)) != 0)
            fail_msg("%s: priority=%s channel=%s queue=%s tier=%s: core %s, policy_choose %s",
                     id, p ? p : "-", c ? c : "-", q ? q : "-", t ? t : "-",
                     core_tier_name(core, tk), cfg->tiers[chosen].name);
        by_rule[rule + 2]++;
    }
    /* Every kind of decision was exercised. */
    for (int r = 0; r < 2 + (int)cfg->npolicies; r++)
        assert_true(by_rule[r] > 0);
    core_free(core);
    cfg_free(cfg);
}

static void
test_rule_and_hygiene(void **state)
{
    (void)state;
    struct config *cfg = load(yaml);
    const char *attr[ATTR_COUNT] = { "high", "phone", NULL, NULL, NULL };
    int rule;
    assert_int_equal(policy_choose(cfg, attr, NULL, 0, &rule), 0);
    assert_int_equal(rule, 1);
    attr[ATTR_CHANNEL] = "email";
    assert_int_equal(policy_choose(cfg, attr, NULL, 0, &rule), 1);
    assert_int_equal(rule, 2);
    assert_int_equal(policy_choose(cfg, attr, "slow", 4, &rule), 2);
    assert_int_equal(rule, POLICY_EXPLICIT);
    attr[ATTR_PRIORITY] = "High";
    assert_int_equal(policy_choose(cfg, attr, "gold", 4, &rule), 2);
    assert_int_equal(rule, POLICY_DEFAULT);

    assert_true(policy_constrains(cfg, ATTR_PRIORITY));
    assert_true(policy_constrains(cfg, ATTR_QUEUE));
    assert_false(policy_constrains(cfg, ATTR_AGENT));
    assert_false(policy_constrains(cfg, -1));
    assert_true(policy_names_value(cfg, ATTR_PRIORITY, "p1", 2));
    assert_false(policy_names_value(cfg, ATTR_PRIORITY, "High", 4));
    assert_false(policy_names_value(cfg, ATTR_PRIORITY, "p", 1)); /* a prefix is not */
    assert_true(policy_names_value(cfg, ATTR_QUEUE, "gold", 4));

    char buf[256];
    assert_string_equal(policy_text(cfg, 0, buf, sizeof(buf)),
                        "{ match: { priority: [urgent, p1] }, tier: fast }");
    assert_string_equal(policy_text(cfg, 1, buf, sizeof(buf)),
                        "{ match: { priority: high, channel: phone }, tier: fast }");
    assert_string_equal(policy_text(cfg, 9, buf, sizeof(buf)), "");
    /* Truncated, still terminated. */
    assert_string_equal(policy_text(cfg, 0, buf, 10), "{ match: ");
    cfg_free(cfg);

    struct config *catchall = load("tiers: { a: { response: 1m }, b: { response: 2m } }\n"
                                   "policies: [ { tier: a } ]\n");
    assert_int_equal(policy_choose(catchall, attr, NULL, 0, &rule), 0);
    assert_int_equal(rule, 0);
    assert_string_equal(policy_text(catchall, 0, buf, sizeof(buf)), "{ tier: a }");
    cfg_free(catchall);
}

struct heard {
    int calls;
    char last_tier[16];
    char last_ticket[16];
    int last_type;
};

static void
on_tier(void *arg, const struct sla_event *ev, const struct ticket *t)
{
    struct heard *h = arg;
    h->calls++;
    h->last_type = ev->type;
    snprintf(h->last_ticket, sizeof(h->last_ticket), "%s", t->id);
    (void)snprintf(h->last_tier, sizeof(h->last_tier), "%d", t->tier);
}

static void
apply(struct core *core, struct config *cfg, const char *type, const char *id,
      const char *prio)
{
    struct ev_field f[3] = {
        { "type", 4, type, strlen(type) },
        { "ticket", 6, id, strlen(id) },
        { "priority", 8, prio ? prio : "", prio ? strlen(prio) : 0 },
    };
    struct sla_event ev;
    const char *reason;
    assert_int_equal(event_apply(core, cfg, f, prio ? 3 : 2, T0, T0, &ev, &reason), 0);
}

static void
test_tier_hook(void **state)
{
    (void)state;
    struct config *cfg = load(yaml);
    struct core *core = core_new(cfg, wall, NULL, NULL);
    struct heard h = { 0 };
    core_set_tier_hook(core, on_tier, &h);
    apply(core, cfg, "opened", "H-1", "High");
    assert_int_equal(h.calls, 1);
    assert_string_equal(h.last_ticket, "H-1");
    assert_string_equal(h.last_tier, "2"); /* the last tier: already chosen */
    apply(core, cfg, "opened", "H-1", "urgent"); /* a no-op: not heard */
    assert_int_equal(h.calls, 1);
    apply(core, cfg, "updated", "H-1", "urgent");
    assert_int_equal(h.calls, 2);
    assert_int_equal(h.last_type, EVT_UPDATED);
    assert_string_equal(h.last_tier, "0");
    apply(core, cfg, "responded", "H-1", NULL); /* chooses no tier */
    assert_int_equal(h.calls, 2);
    core_set_tier_hook(core, NULL, NULL);
    apply(core, cfg, "opened", "H-2", NULL);
    assert_int_equal(h.calls, 2);
    core_free(core);
    cfg_free(cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choose_agrees_with_core),
        cmocka_unit_test(test_rule_and_hygiene),
        cmocka_unit_test(test_tier_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
