/*
 * fuzz_util.c - the small parsers and formatters of outside values
 * (util.h): durations from the config, timestamps and stream IDs from
 * events, UTF-8 checks of every string that is kept, and the formatting of
 * any int64 instant or duration (outbox records and checkpoints carry
 * them).
 *
 * Input: the first byte picks the function (modulo 8), the rest is its
 * argument: text for the parsers, a little-endian int64 for the formatters.
 *   0 dur_parse, then dur_format of the result, which must parse back
 *   1 ts_parse, then ts_format, which must parse back to the same instant
 *   2 str_is_clean_utf8, against a reference decoder written here
 *   3 ts_format(int64): 24 characters that ts_parse reads back, clamped
 *   4 dur_format(int64)
 *   5 days_from_civil(civil_from_days(int64 clamped to years -9999..9999))
 *   6 stream_id_parse
 *   7 cal_format_local(NULL, int64)
 * Parsers get an exact-size copy, so any read past the end is an ASan
 * report.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "slawatch/cal.h"
#include "slawatch/core.h"
#include "slawatch/util.h"

/* A plain reading of "well-formed UTF-8 without C0/C1 controls or DEL",
 * to compare str_is_clean_utf8 with. */
static bool
ref_clean_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned c = s[i], cp, need;
        if (c < 0x80) {
            cp = c;
            need = 0;
        } else if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f;
            need = 1;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f;
            need = 2;
        } else if ((c & 0xf8) == 0xf0) {
            cp = c & 0x07;
            need = 3;
        } else {
            return false;
        }
        if (len - i <= need)
            return false;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const unsigned min_cp[4] = { 0, 0x80, 0x800, 0x10000 };
        if (cp < min_cp[need] || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp < 0x20 ||
            (cp >= 0x7f && cp <= 0x9f))
            return false;
        i += need + 1;
    }
    return true;
}

static char *
copy_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static void
check_ts_format(int64_t ms)
{
    char buf[TS_BUFLEN];
    int64_t back;
    ts_format(ms, buf);
    if (strlen(buf) != 24 || ts_parse(buf, 24, &back) < 0) {
        /* Instants before 1970 do not parse back (ts_parse refuses
         * them); the text must still be well-formed. */
        if (strlen(buf) != 24 || (ms >= 0 && ms <= TS_MAX_MS))
            abort();
        return;
    }
    int64_t want = ms < 0 ? 0 : ms > TS_MAX_MS ? TS_MAX_MS : ms;
    if (ms >= 0 && back != want)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t op = fuzz_take_u8(&data, &size) % 8;
    const uint8_t *arg = data;
    size_t arglen = size;
    int64_t v = (int64_t)fuzz_take_u64(&data, &size);
    char buf[64];

    switch (op) {
    case 0: {
        char *text = copy_text(arg, arglen);
        int64_t ms, back;
        if (dur_parse(text, &ms) == 0) {
            if (ms < 0)
                abort();
            dur_format(ms, buf, sizeof(buf));
            if (dur_parse(buf, &back) < 0 || back != ms)
                abort();
        }
        free(text);
        break;
    }
    case 1: {
        char *text = copy_text(arg, arglen);
        int64_t ms;
        /* Without the NUL: ts_parse takes a length. */
        char *exact = malloc(arglen ? arglen : 1);
        if (exact == NULL)
            abort();
        if (arglen)
            memcpy(exact, text, arglen);
        if (ts_parse(exact, arglen, &ms) == 0) {
            if (ms < 0 || ms > TS_MAX_MS)
                abort();
            check_ts_format(ms);
        }
        free(exact);
        free(text);
        break;
    }
    case 2: {
        char *exact = malloc(arglen ? arglen : 1);
        if (exact == NULL)
            abort();
        if (arglen)
            memcpy(exact, arg, arglen);
        if (str_is_clean_utf8(exact, arglen) !=
            ref_clean_utf8((const unsigned char *)exact, arglen))
            abort();
        free(exact);
        break;
    }
    case 3:
        check_ts_format(v);
        break;
    case 4:
        dur_format(v, buf, sizeof(buf));
        if (v > 0) {
            int64_t back;
            if (dur_parse(buf, &back) < 0 || back != v)
                abort();
        }
        break;
    case 5: {
        /* civil_from_days is valid for years -9999..9999. */
        int64_t lo = days_from_civil(-9999, 1, 1), hi = days_from_civil(9999, 12, 31);
        int64_t days = lo + (int64_t)((uint64_t)v % (uint64_t)(hi - lo + 1));
        int64_t y;
        unsigned m, d;
        civil_from_days(days, &y, &m, &d);
        if (m < 1 || m > 12 || d < 1 || d > 31 || days_from_civil(y, m, d) != days)
            abort();
        break;
    }
    case 6: {
        char *exact = malloc(arglen ? arglen : 1);
        uint64_t ms, seq;
        if (exact == NULL)
            abort();
        if (arglen)
            memcpy(exact, arg, arglen);
        if (stream_id_parse(exact, arglen, &ms, &seq) == 0 && arglen < 3)
            abort(); /* the shortest ID is "0-0" */
        free(exact);
        break;
    }
    case 7: {
        char local[CAL_LOCAL_BUFLEN];
        cal_format_local(NULL, v, local);
        if (strlen(local) >= CAL_LOCAL_BUFLEN - 1)
            abort(); /* cut short */
        break;
    }
    }
    return 0;
}
