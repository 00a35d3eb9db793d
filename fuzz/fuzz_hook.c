/*
 * fuzz_hook.c - outbox records (the <prefix>outbox hash values, which
 * anyone who can write Redis can set) through hook_note_decode, and every
 * webhook body a decoded note can become: hook_body for json (with and
 * without a business-hours calendar), alertmanager (plain and resolving),
 * pagerduty and slack, the delivery id, the dedup key, the subject and the
 * signature.
 *
 * Checked: a record that decodes gives a body in every format (its
 * strings are clean UTF-8, so none may be refused), and it encodes again
 * into a record that decodes to the same record.
 *
 * Input: the record's JSON text (fuzz/corpus/hook, from hook_note_encode:
 * fuzz/gen_corpus.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "slawatch/cal.h"
#include "slawatch/hook_format.h"

/* The office calendar of config A, built once. */
static const struct calendar *
office(void)
{
    static struct calendar *cal;
    char err[256];
    if (cal != NULL)
        return cal;
    cal = cal_create("office", "Europe/Berlin", err, sizeof(err));
    if (cal == NULL ||
        cal_set_week(cal, "mon-fri", "09:00-17:00", err, sizeof(err)) < 0 ||
        cal_finish(cal, err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz_hook: calendar: %s\n", err);
        abort();
    }
    return cal;
}

static void
body(const struct hook_note *n, enum hook_format fmt,
     const struct hook_ctx *ctx)
{
    size_t len = 0;
    char sig[HOOK_SIG_LEN + 1];
    char *text = hook_body(n, fmt, ctx, &len);
    if (text == NULL || len != strlen(text)) {
        fprintf(stderr, "fuzz_hook: no %s body\n", hook_format_name(fmt));
        abort();
    }
    if (hook_sign("secret", 6, n->at_ms / 1000, text, len, sig) < 0)
        abort();
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hook_note n, back;
    const char *why = NULL;
    char buf[HOOK_SUBJECT_LEN], dedup[300];

    if (hook_note_decode(&n, size ? (const char *)data : "", size, &why) < 0) {
        if (why == NULL)
            abort(); /* a refusal always says why */
        return 0;
    }
    struct hook_ctx ctx = { .routing_key = "R0123", .source = "fuzz",
                            .now_ms = FUZZ_WALL_MS, .calendar = NULL };
    for (int fmt = HOOK_JSON; fmt <= HOOK_SLACK; fmt++)
        body(&n, (enum hook_format)fmt, &ctx);
    ctx.calendar = office();
    body(&n, HOOK_JSON, &ctx);
    n.flags ^= HOOK_F_RESOLVING;
    body(&n, HOOK_ALERTMANAGER, &ctx);
    n.flags ^= HOOK_F_RESOLVING;
    (void)hook_note_subject(&n, buf);
    hook_dedup_key(&n, dedup, sizeof(dedup));

    char *rec = hook_note_encode(&n);
    if (rec == NULL || hook_note_decode(&back, rec, strlen(rec), &why) < 0) {
        fprintf(stderr, "fuzz_hook: own record refused: %s\n",
                rec ? why : "no record");
        abort();
    }
    char *again = hook_note_encode(&back);
    if (again == NULL || strcmp(rec, again) != 0)
        abort();
    free(rec);
    free(again);
    if (hook_delivery_id(&n) < 0)
        abort();
    return 0;
}
