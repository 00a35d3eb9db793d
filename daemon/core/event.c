/*
 * event.c - turns one raw stream entry into a validated struct sla_event.
 * Owns the rules for what a well-formed event is (SPEC section 3) and the
 * reasons given for rejecting one. Pure: no I/O, no allocation, and never
 * reads past a length it was given.
 */
#include "slawatch/core.h"

#include <stdint.h>
#include <string.h>

static const char *const ev_type_names[EVT_COUNT] = {
    [EVT_OPENED] = "opened",     [EVT_RESPONDED] = "responded",
    [EVT_PAUSED] = "paused",     [EVT_RESUMED] = "resumed",
    [EVT_RESOLVED] = "resolved", [EVT_REOPENED] = "reopened",
    [EVT_CLOSED] = "closed",     [EVT_DELETED] = "deleted",
    [EVT_UPDATED] = "updated",   [EVT_COMMENTED] = "commented",
    [EVT_RATED] = "rated",
};

/* A rating: "1".."5", "good" or "bad". Returns SCORE_NONE otherwise. */
static uint8_t
score_parse(const char *v, size_t len)
{
    if (len == 1 && v[0] >= '1' && v[0] <= '5')
        return (uint8_t)(v[0] - '0');
    if (len == 4 && memcmp(v, "good", 4) == 0)
        return SCORE_GOOD;
    if (len == 3 && memcmp(v, "bad", 3) == 0)
        return SCORE_BAD;
    return SCORE_NONE;
}

const char *
event_type_name(enum ev_type type)
{
    return (unsigned)type < EVT_COUNT ? ev_type_names[type] : "?";
}

/* A numeric ts below this is seconds since the epoch by mistake (10^11 ms
 * is March 1973; 10^11 s is the year 5138). */
#define TS_SECONDS_BELOW 100000000000LL

static bool
is_number(const char *s, size_t len)
{
    size_t i = len > 0 && s[0] == '-' ? 1 : 0;
    if (i == len)
        return false;
    for (; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool
field_is(const struct ev_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && memcmp(f->name, name, n) == 0;
}

int
stream_id_parse(const char *id, size_t len, uint64_t *ms, uint64_t *seq)
{
    uint64_t parts[2] = { 0, 0 };
    int part = 0;
    size_t digits = 0;

    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (c == '-' && part == 0 && digits > 0) {
            part = 1;
            digits = 0;
            continue;
        }
        if (c < '0' || c > '9' || digits >= 20)
            return -1;
        uint64_t d = (uint64_t)(c - '0');
        if (parts[part] > (UINT64_MAX - d) / 10)
            return -1; /* past 18446744073709551615 */
        parts[part] = parts[part] * 10 + d;
        digits++;
    }
    if (part != 1 || digits == 0)
        return -1;
    *ms = parts[0];
    *seq = parts[1];
    return 0;
}

int
event_parse(struct sla_event *ev, const struct ev_field *fields,
            size_t nfields, uint64_t id_ms, int64_t wall_now_ms,
            int64_t max_skew_ms, const char **reason)
{
    const struct ev_field *type = NULL, *ticket = NULL, *ts = NULL, *score = NULL;

    memset(ev, 0, sizeof(*ev));
    for (size_t i = 0; i < nfields; i++) {
        const struct ev_field *f = &fields[i];
        if (field_is(f, "type")) {
            type = f;
        } else if (field_is(f, "ticket")) {
            ticket = f;
        } else if (field_is(f, "ts")) {
            ts = f;
        } else if (field_is(f, "score")) {
            score = f;
        } else if (field_is(f, "tier")) {
            if (f->value_len > ATTR_VALUE_MAX)
                goto too_long;
            ev->tier = f->value;
            ev->tier_len = f->value_len;
        } else {
            int attr = cfg_attr_from_name(f->name, f->name_len);
            if (attr < 0)
                continue; /* not ours: ignored, as SPEC section 3 says */
            if (f->value_len > ATTR_VALUE_MAX)
                goto too_long;
            if (!str_is_clean_utf8(f->value, f->value_len)) {
                *reason = "bad attribute value";
                return -1;
            }
            ev->attr[attr] = f->value;
            ev->attr_len[attr] = f->value_len;
        }
    }

    if (type == NULL) {
        *reason = "missing type";
        return -1;
    }
    ev->type = EVT_COUNT;
    for (int t = 0; t < EVT_COUNT; t++)
        if (type->value_len == strlen(ev_type_names[t]) &&
            memcmp(type->value, ev_type_names[t], type->value_len) == 0)
            ev->type = (enum ev_type)t;
    if (ev->type == EVT_COUNT) {
        *reason = "unknown type";
        return -1;
    }

    if (ev->type == EVT_RATED) {
        if (score == NULL) {
            *reason = "missing score";
            return -1;
        }
        if ((ev->score = score_parse(score->value, score->value_len)) == SCORE_NONE) {
            *reason = "bad score";
            return -1;
        }
    }

    if (ticket == NULL) {
        *reason = "missing ticket";
        return -1;
    }
    if (ticket->value_len > TICKET_ID_MAX)
        goto too_long;
    if (ticket->value_len == 0 ||
        !str_is_clean_utf8(ticket->value, ticket->value_len)) {
        *reason = "bad ticket";
        return -1;
    }
    ev->ticket = ticket->value;
    ev->ticket_len = ticket->value_len;

    if (ev->tier && !str_is_clean_utf8(ev->tier, ev->tier_len)) {
        *reason = "bad tier";
        return -1;
    }

    /* Arrival: the entry ID's time, never later than the wall clock (an ID
     * ahead of it, explicit or from a Redis host whose clock runs fast,
     * must not move time ahead for everything after it). */
    ev->arrival_ms = id_ms < (uint64_t)wall_now_ms ? (int64_t)id_ms : wall_now_ms;
    if (ts != NULL) {
        if (ts_parse(ts->value, ts->value_len, &ev->ts_ms) < 0 ||
            (is_number(ts->value, ts->value_len) && ev->ts_ms < TS_SECONDS_BELOW)) {
            *reason = "bad ts";
            return -1;
        }
    } else {
        ev->ts_ms = ev->arrival_ms;
    }
    /* Past what ts_parse accepts (a huge numeric ts): refused. */
    if (ev->ts_ms < 0 || ev->ts_ms > TS_MAX_MS) {
        *reason = "bad ts";
        return -1;
    }
    /* Not wall + skew: the skew comes from the config and may be huge. */
    if (ev->ts_ms > wall_now_ms && ev->ts_ms - wall_now_ms > max_skew_ms) {
        *reason = "ts in the future";
        return -1;
    }
    ev->future = ev->ts_ms > wall_now_ms;
    return 0;

too_long:
    *reason = "field too long";
    return -1;
}

int
event_apply(struct core *core, const struct config *cfg, const struct ev_field *fields,
            size_t nfields, uint64_t id_ms, int64_t wall_now_ms, struct sla_event *ev,
            const char **reason)
{
    if (event_parse(ev, fields, nfields, id_ms, wall_now_ms,
                    cfg->events.max_clock_skew_ms, reason) < 0)
        return -1;
    return core_apply(core, ev, reason);
}
