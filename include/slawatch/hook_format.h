/*
 * hook_format.h - pure webhook formatting: the notification record kept in
 * the outbox, its delivery id, the request bodies of the four formats
 * (json, alertmanager, pagerduty, slack) and the HMAC signature, for notes
 * about a ticket's clock and notes about a compliance objective. No I/O, no
 * clocks, no event loop: every time is passed in, so unit tests pin them.
 * JSON is built with jansson only; nothing is printf'ed into JSON.
 */
#ifndef SLAWATCH_HOOK_FORMAT_H
#define SLAWATCH_HOOK_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slawatch/config.h"
#include "slawatch/core.h"
#include "slawatch/util.h"

#define HOOK_NAME_MAX 64      /* escalation, webhook and tier names */
#define HOOK_ID_LEN 32        /* hex characters of a delivery id */
#define HOOK_SIG_LEN (7 + 64) /* "sha256=" + hex HMAC-SHA256 */
#define HOOK_SUBJECT_LEN 256  /* hook_note_subject() text, NUL included */
/* The times a record may carry and a body can show: RFC 3339 has
 * four-digit years, 0000-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z
 * (nothing outside is a real SLA time, and INT64_MIN overflowed
 * ts_format). */
#define HOOK_TIME_MIN_MS INT64_C(-62167219200000)
#define HOOK_TIME_MAX_MS INT64_C(253402300799999)
/* The most attempts a record may count (more is refused as unusable). */
#define HOOK_ATTEMPTS_MAX 1000000

enum hook_kind {
    HOOK_KIND_WARNING = 0, /* a warn percentage was reached */
    HOOK_KIND_BREACH,      /* a deadline passed */
    HOOK_KIND_RECOVERED,   /* a breached clock stopped, or a violated
                              objective is met again (send_resolved) */
    HOOK_KIND_RESOLVE,     /* pagerduty: resolve the clock's (or the
                              objective's) alert */
    HOOK_KIND_OBJECTIVE,   /* a compliance ratio fell below the objective */
    HOOK_KIND_COUNT
};

/* Record flags, persisted with the record. */
#define HOOK_F_COND                                                            \
    0x01                      /* check the clock (or the objective) before     \
                                 sending (a ladder level with `after`, every   \
                                 alertmanager alert) */
#define HOOK_F_DELIVERED 0x02 /* alertmanager: the receiver has the alert */
#define HOOK_F_RESOLVING 0x04 /* alertmanager: send it with endsAt */

/* Where a stored notification stands: what deliver_lookup() answers and
 * what notify.c's delivery ops (notify.h) return, defined here so that
 * neither header needs the other. */
enum hook_state {
    HOOK_STATE_NONE = 0, /* no such notification in the outbox */
    HOOK_STATE_WAITING,  /* stored, never attempted, due later (`after`) */
    HOOK_STATE_ACTIVE,   /* being delivered, retried, or re-sent */
};

/*
 * One notification to one webhook: what the outbox stores, and all that is
 * needed to build its body again after a restart. Strings are
 * NUL-terminated copies; an attribute is absent when its first byte is NUL
 * (the core never keeps empty values).
 *
 * A note with `objective` set is about an objective's series instead of a
 * ticket's clock: kind OBJECTIVE, RECOVERED or RESOLVE; ticket and
 * attributes are empty, the clock fields zero, and at_ms is the publish
 * that decided the transition. compliance.objective's notes (name "") are
 * about a tier (or "all"), metric and window; a named objective's about
 * its name, tier, window and measure (metric, or a KPI).
 */
struct hook_note {
    enum hook_kind kind;
    char id[HOOK_ID_LEN + 1];
    char webhook[HOOK_NAME_MAX + 1];
    char escalation[HOOK_NAME_MAX + 1]; /* "" for a pagerduty resolve */
    char ticket[TICKET_ID_MAX + 1];
    char tier[HOOK_NAME_MAX + 1];
    char attr[ATTR_COUNT][ATTR_VALUE_MAX + 1];
    int metric; /* METRIC_* */
    unsigned cycle;
    uint32_t percent_bp; /* warnings; 0 otherwise */
    int64_t opened_ms;
    int64_t deadline_ms;
    int64_t at_ms; /* detection (recovered: the stop) */
    int64_t late_ms;
    /* objective notes */
    bool objective;
    char name[HOOK_NAME_MAX + 1]; /* the named objective; "" for
                                     compliance.objective */
    bool is_kpi;              /* a named objective on a KPI (kpi, enum
                                 cmp_kpi), not an SLA ratio (metric) */
    int kpi;
    bool max;                 /* violated above the threshold (else below) */
    char window[HOOK_NAME_MAX + 1];
    uint32_t episode;         /* the series' violation number (1, 2, ...) */
    int64_t value_micro;      /* the value judged (an SLA ratio as
                                 published), in millionths */
    int64_t threshold_micro;  /* the min or max (compliance.objective),
                                 in millionths */
    uint64_t met, breached;   /* the counts behind an SLA ratio */
    /* delivery state */
    int64_t created_ms;
    int64_t due_ms;  /* next attempt */
    int64_t ends_ms; /* alertmanager endsAt when resolving */
    int attempts;    /* attempts made so far */
    unsigned flags;  /* HOOK_F_* */
};

/* What the bodies need besides the note. */
struct hook_ctx {
    const char *routing_key; /* pagerduty */
    const char *source;      /* pagerduty payload.source */
    int64_t now_ms;          /* alertmanager endsAt fallback */
    const struct calendar *calendar; /* the tier's; NULL: 24x7 */
};

const char *hook_kind_name(enum hook_kind kind);    /* "warning", ... */
const char *hook_format_name(enum hook_format fmt); /* "json", ... */

/* Copies a string into a note field, truncating to the field (the config
 * and the core already bound every length). */
void hook_copy(char *dst, size_t size, const char *src, size_t len);

/* Fills n->id: the first 16 bytes, in hex, of SHA-256 over the note's
 * identity (kind, ticket, opening time, metric, cycle, warning percentage,
 * escalation, webhook), each field length-prefixed; for an objective note
 * (under another tag): kind, tier, metric, window, episode, escalation,
 * webhook, and for a named objective (under a third tag) its name and
 * measure too. The same notification always gets the same id, on every
 * retry and after a restart. Returns 0, or -1 when the digest cannot be
 * computed. */
int hook_delivery_id(struct hook_note *n) MUSTCHECK;

/* What the note is about, for logs: "ticket T-1042", "objective
 * all/response/24h" or "objective first-contact all/fcr/7d". buf holds
 * HOOK_SUBJECT_LEN bytes; returns buf. */
const char *hook_note_subject(const struct hook_note *n, char *buf);

/* The record for the outbox (compact JSON). Returns NULL on allocation
 * failure; the caller frees the result. */
char *hook_note_encode(const struct hook_note *n) MUSTCHECK;

/* Parses a record written by hook_note_encode(). Anything else (bad JSON,
 * wrong types, over-long or unclean strings, unknown kind, a clock time
 * (opened, deadline, at) outside HOOK_TIME_MIN_MS..HOOK_TIME_MAX_MS or a
 * lateness longer than that span) is refused: returns -1 with a static reason in *why. The delivery
 * state (created_ms, due_ms, ends_ms) is returned as read, any int64:
 * deliver.c range-checks it against its own clock. */
int hook_note_decode(struct hook_note *n, const char *text, size_t len,
                     const char **why) MUSTCHECK;

/* Request bodies. Each returns a malloc'ed NUL-terminated string (length
 * in *len) or NULL on allocation failure or when the note cannot be
 * represented (a string that is not UTF-8). */
char *hook_body_json(const struct hook_note *n, size_t *len) MUSTCHECK;
struct calendar;
char *hook_body_json_cal(const struct hook_note *n, const struct calendar *cal,
                         size_t *len);
char *hook_body_alertmanager(const struct hook_note *n, int64_t now_ms,
                             size_t *len) MUSTCHECK;
char *hook_body_pagerduty(const struct hook_note *n, const char *routing_key,
                          const char *source, size_t *len) MUSTCHECK;
char *hook_body_slack(const struct hook_note *n, size_t *len) MUSTCHECK;
/* The body for `fmt`. */
char *hook_body(const struct hook_note *n, enum hook_format fmt,
                const struct hook_ctx *ctx, size_t *len) MUSTCHECK;

/* PagerDuty dedup_key of the note's clock: stable per ticket, metric and
 * clock cycle, so every trigger and the resolve of one clock meet; for an
 * objective note "slawatch/objective/<tier>/<metric>/<window>/<episode>",
 * for a named one "slawatch/objective/<name>/<tier>/<metric or
 * kpi>/<window>/<episode>" (one part more: the two never meet). Writes at
 * most size bytes (always NUL-terminated). */
void hook_dedup_key(const struct hook_note *n, char *buf, size_t size);

/* out = "sha256=" + hex(HMAC-SHA256(secret, "<timestamp>.<body>")); out
 * holds HOOK_SIG_LEN + 1 bytes. Returns 0, or -1 on failure. */
int hook_sign(const char *secret, size_t secret_len, int64_t timestamp_s,
              const char *body, size_t body_len, char *out) MUSTCHECK;

#endif
