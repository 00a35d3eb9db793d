/*
 * bench_memory.c - heap bytes per ticket held by the core, counted by the
 * allocator (mallinfo2: bytes in use), for the states a ticket can be in:
 *
 *   open:        opened, waiting for its first reply;
 *   next_reply:  answered, then in a next_reply cycle (the tier has one);
 *   resolved:    resolved, waiting for state.forget_resolved_after;
 *   closed:      closed, kept as a compact record for 7 days so that a
 *                late rating counts (SPEC section 3, `rated`).
 *
 * The RSS figure of bench_core includes what the allocator keeps around;
 * this one is the core's own, exact, with ids of 8 bytes ("t0000000") as
 * bench_core uses. Prints each figure with its target; exits non-zero
 * only when something did not work. BENCH_TICKETS (default 1000000).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slawatch/config.h"
#include "slawatch/core.h"

#define TARGET_BYTES 200.0

static int64_t fake_now;

static int64_t
wall(void *arg)
{
    (void)arg;
    return fake_now;
}

static size_t
in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static int
feed(struct core *core, const char *type, long n, int64_t ts)
{
    char id[16];
    for (long i = 0; i < n; i++) {
        int len = snprintf(id, sizeof(id), "t%07ld", i);
        char tsbuf[24];
        int tl = snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
        struct ev_field f[3] = {
            { "type", 4, type, strlen(type) },
            { "ticket", 6, id, (size_t)len },
            { "ts", 2, tsbuf, (size_t)tl },
        };
        struct sla_event ev;
        const char *why;
        fake_now = ts;
        if (event_parse(&ev, f, 3, (uint64_t)ts, ts, 0, &why) < 0 ||
            core_apply(core, &ev, &why) < 0) {
            fprintf(stderr, "bench_memory: %s %s: %s\n", type, id, why);
            return -1;
        }
    }
    return 0;
}

static void
report(const char *what, size_t before, size_t after, long n, bool target)
{
    double per = ((double)after - (double)before) / (double)n;
    printf("memory %s: %.1f bytes per ticket at %ld%s\n", what, per, n,
           !target ? "" : per <= TARGET_BYTES ? " (target <= 200) ok" : " (target <= 200) MISSED");
}

int
main(void)
{
    const char *env = getenv("BENCH_TICKETS");
    long n = env ? atol(env) : 1000000;
    if (n <= 0)
        n = 1000000;
    static const char yaml[] =
        "tiers: { day: { response: 1d, next_reply: 1d } }\n"
        "state: { forget_resolved_after: 30d }\n";
    struct config *cfg = cfg_load_string("bench.yaml", yaml, strlen(yaml), stderr);
    if (cfg == NULL)
        return 1;
    int64_t t = 1795000000000LL;
    size_t base = in_use();
    struct core *core = core_new(cfg, wall, NULL, NULL);
    if (core == NULL || feed(core, "opened", n, t) < 0)
        return 1;
    size_t open = in_use();
    report("open", base, open, n, true);
    if (feed(core, "responded", n, t + 1000) < 0 || feed(core, "commented", n, t + 2000) < 0)
        return 1;
    size_t cycle = in_use();
    report("next_reply", base, cycle, n, true);
    if (core_heap_size(core) != (size_t)n) {
        fprintf(stderr, "bench_memory: %zu clocks queued, want %ld\n", core_heap_size(core), n);
        return 1;
    }
    if (feed(core, "resolved", n, t + 3000) < 0)
        return 1;
    report("resolved", base, in_use(), n, true);
    if (feed(core, "closed", n, t + 4000) < 0)
        return 1;
    if (core_ticket_count(core) != 0 || core_closed_count(core) != (size_t)n) {
        fprintf(stderr, "bench_memory: %zu tickets, %zu closed records\n",
                core_ticket_count(core), core_closed_count(core));
        return 1;
    }
    /* The tickets' table and heap arrays stay allocated (they do not
     * shrink): count what the records add over an empty core of the same
     * size instead. */
    size_t closed = in_use();
    struct core *empty = core_new(cfg, wall, NULL, NULL);
    size_t e0 = in_use();
    if (empty == NULL || feed(empty, "opened", n, t) < 0 || feed(empty, "deleted", n, t) < 0)
        return 1;
    size_t e1 = in_use();
    double per_closed = ((double)closed - (double)base - ((double)e1 - (double)e0)) / (double)n;
    printf("memory closed: %.1f bytes per closed ticket kept for its rating, at %ld\n",
           per_closed, n);
    core_free(empty);
    core_free(core);
    cfg_free(cfg);
    return 0;
}
