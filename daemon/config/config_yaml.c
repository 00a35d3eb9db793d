/*
 * config_yaml.c - the config loader's YAML layer: collecting errors as
 * FILE:LINE:COL, checked access to libyaml document nodes, typed scalars
 * (integers, durations, percentages...), optional keys and secret files.
 *
 * Knows nothing of the schema beyond cfg_known_keys (for unknown-key
 * errors); config.c and config_rules.c own what each key means. Must not print
 * anything but error messages to ctx->errors, and must never print a secret.
 */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slawatch/config.h"

/* Node visits allowed per load. A real config needs a few thousand. */
#define CFG_VISIT_BUDGET 1000000L
/* Secret files hold a password or a key, never more than this. */
#define CFG_SECRET_MAX 65536

void
cfg_ctx_init(struct cfg_ctx *ctx, const char *name, const char *basedir,
             FILE *errors)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->name = name;
    ctx->basedir = basedir;
    ctx->errors = errors;
    ctx->budget = CFG_VISIT_BUDGET;
}

static int
msg_cmp(const void *a, const void *b)
{
    const struct cfg_msg *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
print_msg(const struct cfg_ctx *ctx, size_t line, size_t col, const char *text)
{
    if (ctx->errors == NULL)
        return;
    if (line == 0)
        fprintf(ctx->errors, "%s: %s\n", ctx->name, text);
    else
        fprintf(ctx->errors, "%s:%zu:%zu: %s\n", ctx->name, line, col, text);
}

void
cfg_ctx_flush(struct cfg_ctx *ctx)
{
    if (ctx->nmsgs > 1)
        qsort(ctx->msgs, ctx->nmsgs, sizeof(*ctx->msgs), msg_cmp);
    for (size_t i = 0; i < ctx->nmsgs; i++) {
        const struct cfg_msg *m = &ctx->msgs[i];
        /* An alias can put one bad node in several places; say it once. */
        bool repeat = false;
        for (size_t j = i; j > 0 && !repeat; j--) {
            const struct cfg_msg *prev = &ctx->msgs[j - 1];
            if (prev->line != m->line || prev->col != m->col)
                break;
            repeat = strcmp(prev->text, m->text) == 0;
        }
        if (!repeat)
            print_msg(ctx, m->line, m->col, m->text);
    }
    for (size_t i = 0; i < ctx->nmsgs; i++)
        free(ctx->msgs[i].text);
    free(ctx->msgs);
    ctx->msgs = NULL;
    ctx->nmsgs = ctx->msgs_cap = 0;
    if (ctx->errors != NULL)
        fflush(ctx->errors);
}

/* Stores one message; line and col are 1-based, line 0 for the file. */
static void
msg_add(struct cfg_ctx *ctx, size_t line, size_t col, const char *text)
{
    if (strncmp(text, "warning: ", 9) != 0)
        ctx->nerrors++;
    if (ctx->nmsgs == ctx->msgs_cap) {
        size_t cap = ctx->msgs_cap ? ctx->msgs_cap * 2 : 16;
        struct cfg_msg *m = reallocarray(ctx->msgs, cap, sizeof(*m));
        if (m == NULL)
            goto direct;
        ctx->msgs = m;
        ctx->msgs_cap = cap;
    }
    char *copy = strdup(text);
    if (copy == NULL)
        goto direct;
    ctx->msgs[ctx->nmsgs] = (struct cfg_msg){line, col, ctx->nmsgs, copy};
    ctx->nmsgs++;
    return;
direct:
    /* Out of memory: print now, unsorted, rather than lose the error. */
    print_msg(ctx, line, col, text);
}

static void
verr(struct cfg_ctx *ctx, size_t line, size_t col, const char *fmt, va_list ap)
{
    char text[512];
    if (ctx->over_budget) {
        /* Past the budget, nodes read as absent; what follows is noise. */
        ctx->nerrors++;
        return;
    }
    vsnprintf(text, sizeof(text), fmt, ap);
    msg_add(ctx, line, col, text);
}

void
cfg_err(struct cfg_ctx *ctx, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (node == NULL)
        verr(ctx, 0, 0, fmt, ap);
    else
        verr(ctx, node->start_mark.line + 1, node->start_mark.column + 1, fmt,
             ap);
    va_end(ap);
}

void
cfg_warn(struct cfg_ctx *ctx, const yaml_node_t *node, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    if (ctx->over_budget || node == NULL)
        return;
    memcpy(text, "warning: ", 9);
    va_start(ap, fmt);
    vsnprintf(text + 9, sizeof(text) - 9, fmt, ap);
    va_end(ap);
    msg_add(ctx, node->start_mark.line + 1, node->start_mark.column + 1, text);
}

void
cfg_err_at(struct cfg_ctx *ctx, size_t line0, size_t col0, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(ctx, line0 + 1, col0 + 1, fmt, ap);
    va_end(ap);
}

void
cfg_oom(struct cfg_ctx *ctx)
{
    ctx->oom = true;
}

const char *
cfg_path(char *buf, size_t len, const char *prefix, const char *key)
{
    if (prefix == NULL || *prefix == '\0')
        snprintf(buf, len, "%s", key);
    else
        snprintf(buf, len, "%s.%s", prefix, key);
    return buf;
}

const char *
cfg_show_bytes(const char *s, size_t n, char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t limit = len > 8 ? len - 8 : 0; /* room for "\xNN", "...'", NUL */
    size_t i;

    if (len < 12) {
        if (len > 0)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '\'';
    for (i = 0; i < n && o < limit; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        } else {
            buf[o++] = (char)c;
        }
    }
    if (i < n) {
        /* Do not leave half a UTF-8 character before the ellipsis. */
        while (o > 1 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
            o--;
        if (o > 1 && (unsigned char)buf[o - 1] >= 0xc0)
            o--;
        buf[o++] = '.';
        buf[o++] = '.';
        buf[o++] = '.';
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

const char *
cfg_show(const yaml_node_t *node, char *buf, size_t len)
{
    const char *what;
    if (node == NULL)
        what = "nothing";
    else if (node->type == YAML_SCALAR_NODE)
        return cfg_show_bytes(CFG_TEXT(node), CFG_LEN(node), buf, len);
    else if (node->type == YAML_SEQUENCE_NODE)
        what = "a list";
    else if (node->type == YAML_MAPPING_NODE)
        what = "a mapping";
    else
        what = "nothing";
    snprintf(buf, len, "%s", what);
    return buf;
}

yaml_node_t *
cfg_node(struct cfg_ctx *ctx, int id)
{
    if (ctx->budget <= 0) {
        if (!ctx->over_budget) {
            cfg_err(ctx, NULL,
                    "too many values to check (do aliases expand "
                    "to millions of nodes?)");
            ctx->over_budget = true;
        }
        return NULL;
    }
    ctx->budget--;
    return yaml_document_get_node(ctx->doc, id);
}

bool
cfg_is_null(const yaml_node_t *node)
{
    if (node == NULL)
        return true;
    if (node->type != YAML_SCALAR_NODE ||
        node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = CFG_TEXT(node);
    return CFG_LEN(node) == 0 || strcmp(s, "~") == 0 ||
           strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

bool
cfg_is_scalar(const yaml_node_t *node, const char *text)
{
    return node != NULL && node->type == YAML_SCALAR_NODE &&
           CFG_LEN(node) == strlen(text) &&
           memcmp(CFG_TEXT(node), text, CFG_LEN(node)) == 0;
}

/* ---- mappings ---------------------------------------------------------- */

size_t
cfg_map_len(const yaml_node_t *node)
{
    if (node == NULL || node->type != YAML_MAPPING_NODE)
        return 0;
    return (size_t)(node->data.mapping.pairs.top -
                    node->data.mapping.pairs.start);
}

yaml_node_t *
cfg_map_key(struct cfg_ctx *ctx, const yaml_node_t *node, size_t i)
{
    return cfg_node(ctx, node->data.mapping.pairs.start[i].key);
}

yaml_node_t *
cfg_map_value(struct cfg_ctx *ctx, const yaml_node_t *node, size_t i)
{
    return cfg_node(ctx, node->data.mapping.pairs.start[i].value);
}

yaml_node_t *
cfg_map_get(struct cfg_ctx *ctx, const yaml_node_t *node, const char *key)
{
    size_t n = cfg_map_len(node);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = cfg_map_key(ctx, node, i);
        if (k == NULL)
            return NULL;
        if (cfg_is_scalar(k, key))
            return cfg_map_value(ctx, node, i);
    }
    return NULL;
}

/* The suffix of a known key that names a direct child of `pattern`, or
 * NULL: with pattern "tiers.*", "tiers.*.warn" gives "warn". */
static const char *
known_child(const char *entry, const char *pattern)
{
    size_t plen = strlen(pattern);
    const char *rest;
    if (plen == 0) {
        rest = entry;
    } else {
        if (strncmp(entry, pattern, plen) != 0 || entry[plen] != '.')
            return NULL;
        rest = entry + plen + 1;
    }
    return strchr(rest, '.') == NULL ? rest : NULL;
}

static bool
key_known(const char *pattern, const yaml_node_t *key)
{
    for (size_t i = 0; cfg_known_keys[i] != NULL; i++) {
        const char *child = known_child(cfg_known_keys[i], pattern);
        if (child != NULL && strcmp(child, "*") != 0 &&
            cfg_is_scalar(key, child))
            return true;
    }
    return false;
}

/* Edit distance, for "did you mean" hints; strings are short keys. */
static size_t
edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t row[CFG_NAME_MAX + 1];
    if (na > CFG_NAME_MAX || nb > CFG_NAME_MAX)
        return SIZE_MAX;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

static void
report_unknown_key(struct cfg_ctx *ctx, const yaml_node_t *key,
                   const char *path, const char *pattern)
{
    char shown[CFG_SHOW_MAX];
    char hint[CFG_PATH_MAX] = "";
    const char *best = NULL;
    size_t best_d = 3; /* suggest only close misspellings */

    cfg_show(key, shown, sizeof(shown));
    for (size_t i = 0; cfg_known_keys[i] != NULL; i++) {
        const char *child = known_child(cfg_known_keys[i], pattern);
        if (child == NULL || strcmp(child, "*") == 0)
            continue;
        size_t d =
            edit_distance(CFG_TEXT(key), CFG_LEN(key), child, strlen(child));
        if (d < best_d && d < strlen(child)) {
            best_d = d;
            best = child;
        }
    }
    /* An abbreviation: "prio" for "priority". */
    for (size_t i = 0; best == NULL && cfg_known_keys[i] != NULL; i++) {
        const char *child = known_child(cfg_known_keys[i], pattern);
        if (child != NULL && CFG_LEN(key) >= 3 &&
            CFG_LEN(key) < strlen(child) &&
            memcmp(child, CFG_TEXT(key), CFG_LEN(key)) == 0)
            best = child;
    }
    if (strcmp(pattern, "redis") == 0 && cfg_is_scalar(key, "password"))
        snprintf(hint, sizeof(hint),
                 " (put the password in a file readable "
                 "only by slawatch and set "
                 "password_file)");
    else if (best != NULL)
        snprintf(hint, sizeof(hint), " (did you mean '%s'?)", best);
    if (*path == '\0')
        cfg_err(ctx, key, "unknown key %s at the top level%s", shown, hint);
    else
        cfg_err(ctx, key, "unknown key %s in %s%s", shown, path, hint);
}

struct key_ref {
    const char *text;
    size_t len;
    size_t index;
    const yaml_node_t *node;
};

static int
key_ref_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, n);
    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static void
report_duplicate(struct cfg_ctx *ctx, const struct key_ref *dup,
                 const struct key_ref *first, const char *path)
{
    char shown[CFG_SHOW_MAX];
    cfg_show(dup->node, shown, sizeof(shown));
    cfg_err(ctx, dup->node, "duplicate key %s in %s (first at line %zu)", shown,
            *path ? path : "the top level",
            (size_t)first->node->start_mark.line + 1);
}

/* Sorting finds duplicates in n log n: a hostile file may hold a mapping
 * with a million keys. */
static void
check_duplicates(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path)
{
    size_t n = cfg_map_len(node), nrefs = 0;
    struct key_ref *refs;

    if (n < 2)
        return;
    refs = calloc(n, sizeof(*refs));
    if (refs == NULL) {
        cfg_oom(ctx);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = cfg_map_key(ctx, node, i);
        if (k == NULL)
            break;
        if (k->type != YAML_SCALAR_NODE)
            continue;
        refs[nrefs++] = (struct key_ref){CFG_TEXT(k), CFG_LEN(k), i, k};
    }
    qsort(refs, nrefs, sizeof(*refs), key_ref_cmp);
    for (size_t i = 1, first = 0; i < nrefs; i++) {
        if (refs[i].len == refs[first].len &&
            memcmp(refs[i].text, refs[first].text, refs[i].len) == 0)
            report_duplicate(ctx, &refs[i], &refs[first], path);
        else
            first = i;
    }
    free(refs);
}

int
cfg_check_map(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
              const char *pattern)
{
    char shown[CFG_SHOW_MAX];
    if (cfg_is_null(node))
        return 0;
    if (node->type != YAML_MAPPING_NODE) {
        cfg_err(ctx, node, "%s: expected a mapping, got %s",
                *path ? path : "top level",
                cfg_show(node, shown, sizeof(shown)));
        return -1;
    }
    size_t n = cfg_map_len(node);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = cfg_map_key(ctx, node, i);
        if (k == NULL)
            return 0;
        if (k->type != YAML_SCALAR_NODE) {
            cfg_err(ctx, k, "%s: a key must be a string, got %s",
                    *path ? path : "top level",
                    cfg_show(k, shown, sizeof(shown)));
            continue;
        }
        if (pattern != NULL && !key_known(pattern, k))
            report_unknown_key(ctx, k, path, pattern);
    }
    check_duplicates(ctx, node, path);
    return 0;
}

/* ---- sequences --------------------------------------------------------- */

int
cfg_check_seq(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path)
{
    char shown[CFG_SHOW_MAX];
    if (cfg_is_null(node))
        return 0;
    if (node->type != YAML_SEQUENCE_NODE) {
        cfg_err(ctx, node, "%s: expected a list, got %s", path,
                cfg_show(node, shown, sizeof(shown)));
        return -1;
    }
    return 0;
}

size_t
cfg_seq_len(const yaml_node_t *node)
{
    if (node == NULL || node->type != YAML_SEQUENCE_NODE)
        return 0;
    return (size_t)(node->data.sequence.items.top -
                    node->data.sequence.items.start);
}

yaml_node_t *
cfg_seq_item(struct cfg_ctx *ctx, const yaml_node_t *node, size_t i)
{
    return cfg_node(ctx, node->data.sequence.items.start[i]);
}

/* ---- scalars ----------------------------------------------------------- */

/* The text of a scalar, checked for NUL bytes ("\0" in a quoted string)
 * and control characters; `what` names the expected type in messages. */
static int
scalar_text(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
            const char *what, const char **out)
{
    char shown[CFG_SHOW_MAX];
    if (node == NULL)
        return -1; /* only past the budget, already reported */
    if (node->type != YAML_SCALAR_NODE) {
        cfg_err(ctx, node, "%s: expected %s, got %s", path, what,
                cfg_show(node, shown, sizeof(shown)));
        return -1;
    }
    if (memchr(CFG_TEXT(node), '\0', CFG_LEN(node)) != NULL ||
        !str_is_clean_utf8(CFG_TEXT(node), CFG_LEN(node))) {
        cfg_err(ctx, node, "%s: %s contains control characters", path,
                cfg_show(node, shown, sizeof(shown)));
        return -1;
    }
    *out = CFG_TEXT(node);
    return 0;
}

int
cfg_get_text(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
             const char **out)
{
    return scalar_text(ctx, node, path, "a string", out);
}

int
cfg_get_str(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
            char **out)
{
    const char *text;
    if (scalar_text(ctx, node, path, "a string", &text) < 0)
        return -1;
    char *copy = strdup(text);
    if (copy == NULL) {
        cfg_oom(ctx);
        return -1;
    }
    *out = copy;
    return 0;
}

int
cfg_get_int(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
            long long min, long long max, long long *out)
{
    char shown[CFG_SHOW_MAX];
    const char *text, *p;
    if (scalar_text(ctx, node, path, "an integer", &text) < 0)
        return -1;
    p = text + (*text == '-');
    if (*p == '\0' || strspn(p, "0123456789") != strlen(p)) {
        cfg_err(ctx, node, "%s: expected an integer, got %s", path,
                cfg_show(node, shown, sizeof(shown)));
        return -1;
    }
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno == ERANGE || v < min || v > max) {
        if (max == LLONG_MAX || max == LONG_MAX || max == INT_MAX)
            cfg_err(ctx, node, "%s: %s is out of range (at least %lld)", path,
                    cfg_show(node, shown, sizeof(shown)), min);
        else
            cfg_err(ctx, node, "%s: %s is out of range (%lld to %lld)", path,
                    cfg_show(node, shown, sizeof(shown)), min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int
cfg_get_bool(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
             bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    char shown[CFG_SHOW_MAX];
    const char *text;
    if (scalar_text(ctx, node, path, "true or false", &text) < 0)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    cfg_err(ctx, node, "%s: expected true or false, got %s", path,
            cfg_show(node, shown, sizeof(shown)));
    return -1;
}

int
cfg_get_dur(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
            int64_t min_ms, int64_t *out)
{
    char shown[CFG_SHOW_MAX];
    const char *text;
    int64_t ms;
    if (scalar_text(ctx, node, path, "a duration", &text) < 0)
        return -1;
    if (dur_parse(text, &ms) < 0) {
        cfg_err(ctx, node,
                "%s: bad duration %s (write e.g. 500ms, 30s, 5m, "
                "1h30m, 3d)",
                path, cfg_show(node, shown, sizeof(shown)));
        return -1;
    }
    if (ms < min_ms) {
        cfg_err(ctx, node, "%s: must be greater than 0", path);
        return -1;
    }
    *out = ms;
    return 0;
}

int
cfg_get_percent(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
                uint32_t *out_bp)
{
    char shown[CFG_SHOW_MAX];
    const char *text, *p;
    uint32_t whole = 0, frac = 0;
    size_t nwhole = 0, nfrac = 0;

    if (scalar_text(ctx, node, path, "a percentage", &text) < 0)
        return -1;
    cfg_show(node, shown, sizeof(shown));
    for (p = text; *p >= '0' && *p <= '9'; p++, nwhole++)
        if (nwhole < 4)
            whole = whole * 10 + (uint32_t)(*p - '0');
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, nfrac++)
            if (nfrac < 2)
                frac = frac * 10 + (uint32_t)(*p - '0');
    }
    if (nwhole + nfrac == 0 || *p != '%' || p[1] != '\0') {
        cfg_err(ctx, node,
                "%s: bad percentage %s (write e.g. 80%% or "
                "87.5%%)",
                path, shown);
        return -1;
    }
    if (nfrac > 2) {
        cfg_err(ctx, node, "%s: bad percentage %s (at most two decimals)", path,
                shown);
        return -1;
    }
    if (nfrac == 1)
        frac *= 10;
    if (nwhole > 3 || whole * 100 + frac == 0 || whole * 100 + frac >= 10000) {
        cfg_err(ctx, node,
                "%s: bad percentage %s (must be above 0%% and "
                "below 100%%)",
                path, shown);
        return -1;
    }
    *out_bp = whole * 100 + frac;
    return 0;
}

int
cfg_get_decimal(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
                double *out)
{
    char shown[CFG_SHOW_MAX];
    const char *text;
    size_t digits;
    if (scalar_text(ctx, node, path, "a number", &text) < 0)
        return -1;
    digits = strspn(text, "0123456789");
    const char *p = text + digits;
    if (*p == '.') {
        size_t more = strspn(p + 1, "0123456789");
        digits += more;
        p += 1 + more;
    }
    /* strtod would also take "inf", "nan", hex and exponents. */
    if (digits == 0 || *p != '\0' || digits > 30) {
        cfg_err(ctx, node, "%s: expected a number, got %s", path,
                cfg_show(node, shown, sizeof(shown)));
        return -1;
    }
    *out = strtod(text, NULL);
    return 0;
}

int
cfg_get_enum(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
             const char *const *names, size_t n, int *out)
{
    char shown[CFG_SHOW_MAX];
    char list[CFG_PATH_MAX] = "";
    const char *text;
    if (scalar_text(ctx, node, path, "a string", &text) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    for (size_t i = 0, o = 0; i < n && o < sizeof(list); i++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
                              i ? (i + 1 == n ? " or " : ", ") : "", names[i]);
    cfg_err(ctx, node, "%s: %s is not one of %s", path,
            cfg_show(node, shown, sizeof(shown)), list);
    return -1;
}

/* ---- optional keys and names ------------------------------------------ */

/* The value of `key` when it is set to something other than null: a key
 * left empty takes its default. */
yaml_node_t *
cfg_get_set(struct cfg_ctx *ctx, const yaml_node_t *map, const char *key)
{
    yaml_node_t *v = cfg_map_get(ctx, map, key);
    return cfg_is_null(v) ? NULL : v;
}

/* The position of `key` itself, for "x is required" and cross-key errors. */
const yaml_node_t *
cfg_key_node(struct cfg_ctx *ctx, const yaml_node_t *map, const char *key)
{
    size_t n = cfg_map_len(map);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = cfg_map_key(ctx, map, i);
        if (cfg_is_scalar(k, key))
            return k;
    }
    return map;
}

/* Replaces *dst with the string at map.key when set; "" is refused unless
 * allow_empty. */
void
cfg_opt_str(struct cfg_ctx *ctx, const yaml_node_t *map, const char *prefix,
            const char *key, bool allow_empty, char **dst)
{
    char path[CFG_PATH_MAX];
    const yaml_node_t *v = cfg_get_set(ctx, map, key);
    char *s = NULL;
    if (v == NULL ||
        cfg_get_str(ctx, v, cfg_path(path, sizeof(path), prefix, key), &s) < 0)
        return;
    if (!allow_empty && *s == '\0') {
        cfg_err(ctx, v, "%s: must not be empty", path);
        free(s);
        return;
    }
    free(*dst);
    *dst = s;
}

bool
cfg_opt_int(struct cfg_ctx *ctx, const yaml_node_t *map, const char *prefix,
            const char *key, long long min, long long max, long long *out)
{
    char path[CFG_PATH_MAX];
    const yaml_node_t *v = cfg_get_set(ctx, map, key);
    return v != NULL &&
           cfg_get_int(ctx, v, cfg_path(path, sizeof(path), prefix, key), min,
                       max, out) == 0;
}

void
cfg_opt_dur(struct cfg_ctx *ctx, const yaml_node_t *map, const char *prefix,
            const char *key, int64_t min_ms, int64_t *dst)
{
    char path[CFG_PATH_MAX];
    const yaml_node_t *v = cfg_get_set(ctx, map, key);
    if (v != NULL &&
        cfg_get_dur(ctx, v, cfg_path(path, sizeof(path), prefix, key), min_ms,
                    dst) < 0)
        return; /* reported; *dst keeps its default */
}

void
cfg_opt_bool(struct cfg_ctx *ctx, const yaml_node_t *map, const char *prefix,
             const char *key, bool *dst)
{
    char path[CFG_PATH_MAX];
    const yaml_node_t *v = cfg_get_set(ctx, map, key);
    if (v != NULL &&
        cfg_get_bool(ctx, v, cfg_path(path, sizeof(path), prefix, key), dst) <
            0)
        return; /* reported; *dst keeps its default */
}

void
cfg_opt_secret(struct cfg_ctx *ctx, const yaml_node_t *map, const char *prefix,
               const char *key, char **dst, char **file)
{
    char path[CFG_PATH_MAX];
    const yaml_node_t *v = cfg_get_set(ctx, map, key);
    if (v != NULL &&
        cfg_read_secret(ctx, v, cfg_path(path, sizeof(path), prefix, key),
                        dst, file) < 0)
        return; /* reported */
}

/* The name in a key node when it is a valid name, for building paths that
 * end up in messages; "?" otherwise (the bad name is reported by itself). */
const char *
cfg_name_or_placeholder(const yaml_node_t *key)
{
    if (key != NULL && key->type == YAML_SCALAR_NODE &&
        cfg_name_ok(CFG_TEXT(key), CFG_LEN(key)))
        return CFG_TEXT(key);
    return "?";
}

/* Checks a user-chosen name (a mapping key or a `name:` value). */
bool
cfg_check_name(struct cfg_ctx *ctx, const yaml_node_t *node, const char *what)
{
    char shown[CFG_SHOW_MAX];
    if (node == NULL || node->type != YAML_SCALAR_NODE)
        return false; /* reported by cfg_check_map or the caller */
    if (!cfg_name_ok(CFG_TEXT(node), CFG_LEN(node))) {
        cfg_err(ctx, node,
                "%s: bad name %s (1 to %d characters of A-Z a-z "
                "0-9 _ . -)",
                what, cfg_show(node, shown, sizeof(shown)), CFG_NAME_MAX);
        return false;
    }
    return true;
}

void
cfg_list_item_name(struct cfg_ctx *ctx, const yaml_node_t *item, size_t index,
                   const char *section, const char *what,
                   const yaml_node_t **name_nodes, char **name, char *path)
{
    char sub[CFG_PATH_MAX], shown[CFG_SHOW_MAX];
    const yaml_node_t *v;

    if ((v = cfg_get_set(ctx, item, "name")) == NULL) {
        cfg_err(ctx, item, "%s: name is required", path);
        return;
    }
    if (cfg_get_str(ctx, v, cfg_path(sub, sizeof(sub), path, "name"), name) != 0 ||
        !cfg_check_name(ctx, v, sub))
        return;
    size_t j;
    for (j = 0; j < index; j++)
        if (name_nodes[j] != NULL && strcmp(CFG_TEXT(name_nodes[j]), *name) == 0)
            break;
    if (j < index) {
        cfg_err(ctx, v, "%s: %s %s is already defined at line %zu", sub, what,
                cfg_show(v, shown, sizeof(shown)),
                (size_t)name_nodes[j]->start_mark.line + 1);
        return;
    }
    name_nodes[index] = v;
    snprintf(path, CFG_PATH_MAX, "%s.%s", section, *name);
}

/* ---- secrets ----------------------------------------------------------- */

static int
read_all(int fd, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap)
            break;
    }
    *len = n;
    return 0;
}

int
cfg_read_secret(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
                char **out, char **file)
{
    const char *text;
    char *full = NULL, *buf = NULL;
    struct stat st;
    size_t len = 0;
    int fd = -1, rc = -1;

    if (scalar_text(ctx, node, path, "a file name", &text) < 0)
        return -1;
    if (*text == '\0') {
        cfg_err(ctx, node, "%s: empty file name", path);
        return -1;
    }
    if (text[0] != '/' && ctx->basedir != NULL) {
        if (asprintf(&full, "%s/%s", ctx->basedir, text) < 0) {
            full = NULL;
            cfg_oom(ctx);
            return -1;
        }
    } else if ((full = strdup(text)) == NULL) {
        cfg_oom(ctx);
        return -1;
    }
    /* O_NONBLOCK: a FIFO put there by mistake must not hang a reload. */
    fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        cfg_err(ctx, node, "%s: cannot read %s: %s", path, full,
                strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        cfg_err(ctx, node, "%s: cannot stat %s: %s", path, full,
                strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        cfg_err(ctx, node, "%s: %s is not a regular file", path, full);
        goto out;
    }
    if (st.st_mode & 077) {
        cfg_err(ctx, node,
                "%s: %s: permissions %04o are too open, "
                "chmod 600",
                path, full, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    /* Mode 0600 says little if someone else owns the file: they can read
     * and rewrite it. This user's own, or root's (systemd's credentials). */
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        cfg_err(ctx, node, "%s: %s is owned by uid %u, not by this user (uid %u) or root",
                path, full, (unsigned)st.st_uid, (unsigned)geteuid());
        goto out;
    }
    if ((buf = malloc(CFG_SECRET_MAX + 1)) == NULL) {
        cfg_oom(ctx);
        goto out;
    }
    if (read_all(fd, buf, CFG_SECRET_MAX + 1, &len) < 0) {
        cfg_err(ctx, node, "%s: cannot read %s: %s", path, full,
                strerror(errno));
        goto out;
    }
    if (len > CFG_SECRET_MAX) {
        cfg_err(ctx, node, "%s: %s is larger than %d bytes", path, full,
                CFG_SECRET_MAX);
        goto out;
    }
    /* One trailing line end, Unix or DOS ("\n", "\r\n"). */
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (len == 0) {
        cfg_err(ctx, node, "%s: %s is empty", path, full);
        goto out;
    }
    if (memchr(buf, '\0', len) != NULL) {
        cfg_err(ctx, node, "%s: %s contains a NUL byte", path, full);
        goto out;
    }
    buf[len] = '\0';
    char *secret = strdup(buf);
    if (secret == NULL) {
        cfg_oom(ctx);
        goto out;
    }
    *out = secret;
    free(*file);
    *file = full;
    full = NULL;
    rc = 0;
out:
    if (buf != NULL) {
        explicit_bzero(buf, CFG_SECRET_MAX + 1);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    free(full);
    return rc;
}

bool
cfg_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > CFG_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}
