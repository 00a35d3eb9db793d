/* make run's demonstration (scripts/run-demo.sh) from start to end, as a
 * new operator sees it: its own redis-server and webhook receiver on
 * loopback, deliveries arriving with their signatures checked (json) and
 * in a second format (slack), warnings, breaches, a recovered notice, dead
 * letters, slawatchctl tickets --overdue and report, no refused
 * connections or retries, and the closing advice; and it cleans up after
 * itself. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "harness.h"

static const char *
srcdir(void)
{
    const char *d = getenv("SLAWATCH_SRCDIR");
    return d && *d ? d : ".";
}

static void
expect(const char *out, const char *needle)
{
    if (strstr(out, needle) == NULL) {
        fprintf(stderr, "%s", out);
        fail_msg("not in the demo's output: %s", needle);
    }
}

static void
test_demo(void **state)
{
    (void)state;
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "cd '%s' && sh scripts/run-demo.sh '%s' </dev/null 2>&1",
             srcdir(), h_build_dir());
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        fwrite(buf, 1, n, m);
    fclose(m);
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s", out);
        fail_msg("the demo exited with status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    /* Its own Redis and receiver, and what it changed in the example
     * config. */
    expect(out, "== private redis-server on 127.0.0.1:");
    expect(out, "receiver: listening on 127.0.0.1:");
    expect(out, ", checking json signatures\n");
    expect(out, "conf/slawatch.yaml with these changes:\n");
    /* Deliveries, two formats, signatures checked. */
    expect(out, "receiver: POST /slack (slack) \"SLA warning: ticket T-1001 (tier instant) has "
                "used 98% of its response target");
    expect(out, "receiver: POST /slack (slack) \"SLA warning: ticket T-1003");
    expect(out, "receiver: POST /hook (json) breach ticket T-1002 tier 1h response, late_ms ");
    expect(out, "receiver: POST /hook (json) breach ticket T-1001 tier instant response, "
                "late_ms ");
    expect(out, "receiver: POST /hook (json) recovered ticket T-1001 tier instant response");
    expect(out, "; signature ok; delivery ");
    assert_null(strstr(out, "signature BAD"));
    assert_null(strstr(out, "unsigned"));
    /* No refused connections, no retries, no give-ups. */
    assert_null(strstr(out, "Failed to connect"));
    assert_null(strstr(out, "attempt"));
    assert_null(strstr(out, "gave up"));
    /* The daemon's own lines, times in RFC 3339. */
    expect(out, "slawatchd[info] warning: ticket T-1001 tier instant response at 98%, deadline 20");
    expect(out, "slawatchd[notice] breach: ticket T-1002 tier 1h response, deadline 20");
    expect(out, "slawatchd[info] recovered: ticket T-1001 tier instant response, deadline 20");
    expect(out, "ticket T-1005: priority=High is named by no policy; it got tier 24h");
    /* The records and dead letters. */
    expect(out, " kind=recovered ticket=T-1001 tier=instant metric=response ");
    expect(out, " reason=missing ticket source_id=");
    expect(out, " ticket=T-1006 ts=");
    expect(out, " reason=bad ts source_id=");
    /* slawatchctl. */
    expect(out, "== slawatchctl tickets --overdue\nDEADLINE (tier's zone)");
    expect(out, "T-1002           1h         response   overdue         billing\n"
                "1 clock (1 overdue) of ");
    expect(out, "== slawatchctl outbox\noutbox empty");
    expect(out, "daemon      publishing: last published ");
    expect(out, "events_total 9, rejected_total 2, lag 0, notifications_pending 0, "
                "deliveries_failed_total 0\n");
    expect(out, "instant    response   1h        0.5000        1        1");
    /* How to go on, and a clean end. */
    expect(out, "To run it against your own Redis and receivers:");
    expect(out, "SLAWATCH_CONFIG=FILE make run");
    expect(out, "receiver: stopping after 5 requests\n");
    const char *dir = strstr(out, " (in /tmp/slawatch-demo-");
    assert_non_null(dir);
    char path[256];
    assert_int_equal(sscanf(dir, " (in %255[^)])", path), 1);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0); /* removed */
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
