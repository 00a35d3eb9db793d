/*
 * config_int.h - private to the config loader (config.c, config_rules.c,
 * config_yaml.c): the load context, errors as FILE:LINE:COL, typed and
 * checked access to the nodes of a libyaml document, and the section
 * parsers config.c calls. Nothing outside the loader includes this.
 *
 *   config.c        cfg_load, the pipeline, redis/events/compliance/log,
 *                   defaults, cfg_free, cfg_known_keys
 *   config_rules.c  calendars, tiers, policies, webhooks, escalations:
 *                   the sections that refer to each other by name
 *   config_objectives.c  objectives, and the escalation keys naming them
 *   config_yaml.c   errors, node access, typed scalars, secret files
 *
 * Every accessor takes the display path of the value ("tiers.instant.warn")
 * for its messages, reports a problem at the offending node and returns -1;
 * the caller carries on so that one load reports every error in the file.
 */
#ifndef SLAWATCH_CONFIG_INT_H
#define SLAWATCH_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <yaml.h>

#include "slawatch/config.h"
#include "slawatch/util.h"

/* One "FILE:LINE:COL: message" waiting to be printed. Errors are printed
 * sorted by position once the whole file has been checked, so that the
 * output reads top to bottom like a compiler's. */
struct cfg_msg {
    size_t line; /* 1-based; 0 for an error about the whole file */
    size_t col;
    size_t seq; /* order found, keeps the sort stable */
    char *text;
};

struct cfg_ctx {
    const char *name;    /* the file name used in messages */
    const char *basedir; /* relative secret paths resolve here; NULL: cwd */
    FILE *errors;        /* may be NULL */
    yaml_document_t *doc;
    int nerrors;
    bool oom;    /* an allocation failed somewhere */
    long budget; /* node visits left (see cfg_node) */
    bool over_budget;
    size_t nmsgs, msgs_cap;
    struct cfg_msg *msgs;
};

/* Longest path or quoted value put into one message. */
#define CFG_PATH_MAX 192
#define CFG_SHOW_MAX 64

void cfg_ctx_init(struct cfg_ctx *ctx, const char *name, const char *basedir,
                  FILE *errors);
/* Prints the collected messages, sorted by position, and frees them. */
void cfg_ctx_flush(struct cfg_ctx *ctx);

/* Records an error at `node` (NULL: about the whole file). */
void cfg_err(struct cfg_ctx *ctx, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A warning at `node`: printed with the errors, as "FILE:LINE:COL:
 * warning: message", but the file still loads. */
void cfg_warn(struct cfg_ctx *ctx, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cfg_err_at(struct cfg_ctx *ctx, size_t line0, size_t col0, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
/* Notes an allocation failure; the load then fails with "out of memory". */
void cfg_oom(struct cfg_ctx *ctx);

/* Builds "prefix.key" (or just key when prefix is empty) into buf. */
const char *cfg_path(char *buf, size_t len, const char *prefix,
                     const char *key);

/* A printable, truncated rendering of a node for messages: 'text' for a
 * scalar (control bytes escaped), "a list" or "a mapping" otherwise. */
const char *cfg_show(const yaml_node_t *node, char *buf, size_t len);
const char *cfg_show_bytes(const char *s, size_t n, char *buf, size_t len);

/* The node with this id, or NULL once the visit budget is spent: aliases
 * can make a small document reference one node millions of times, and the
 * loader must not take minutes or gigabytes to say so. */
yaml_node_t *cfg_node(struct cfg_ctx *ctx, int id);

/* An absent or empty value: NULL, or a plain "", "~" or "null". */
bool cfg_is_null(const yaml_node_t *node);
bool cfg_is_scalar(const yaml_node_t *node, const char *text);

/* Mappings. cfg_check_map() reports a node that is not a mapping (and
 * returns -1; a null node is an empty mapping), keys that are not scalars,
 * duplicate keys and, when `pattern` is set, keys that are not in
 * cfg_known_keys under that pattern ("tiers.*"). */
int cfg_check_map(struct cfg_ctx *ctx, const yaml_node_t *node,
                  const char *path, const char *pattern) MUSTCHECK;
size_t cfg_map_len(const yaml_node_t *node);
/* Key and value of pair i (either may be NULL when over budget). */
yaml_node_t *cfg_map_key(struct cfg_ctx *ctx, const yaml_node_t *node,
                         size_t i);
yaml_node_t *cfg_map_value(struct cfg_ctx *ctx, const yaml_node_t *node,
                           size_t i);
/* Value of the first pair whose key is `key`, or NULL. */
yaml_node_t *cfg_map_get(struct cfg_ctx *ctx, const yaml_node_t *node,
                         const char *key);

/* Sequences: cfg_check_seq() reports a node that is not a list (a null
 * node is an empty list). */
int cfg_check_seq(struct cfg_ctx *ctx, const yaml_node_t *node,
                  const char *path) MUSTCHECK;
size_t cfg_seq_len(const yaml_node_t *node);
yaml_node_t *cfg_seq_item(struct cfg_ctx *ctx, const yaml_node_t *node,
                          size_t i);

/* Scalars. Each returns 0 and stores the value, or reports and returns -1.
 * cfg_get_text() checks for a scalar without NUL or control characters and
 * points into the document. cfg_get_str() returns a copy the caller owns. */
int cfg_get_text(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
                 const char **out) MUSTCHECK;
int cfg_get_str(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
                char **out) MUSTCHECK;
int cfg_get_int(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
                long long min, long long max, long long *out) MUSTCHECK;
int cfg_get_bool(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
                 bool *out) MUSTCHECK;
/* A duration of at least min_ms (0 or 1). */
int cfg_get_dur(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
                int64_t min_ms, int64_t *out) MUSTCHECK;
/* "80%", "87.5%", "99.99%": basis points 1..9999. */
int cfg_get_percent(struct cfg_ctx *ctx, const yaml_node_t *node,
                    const char *path, uint32_t *out_bp) MUSTCHECK;
/* A plain decimal number: "0.9", "12", ".5" (no sign, no exponent). */
int cfg_get_decimal(struct cfg_ctx *ctx, const yaml_node_t *node,
                    const char *path, double *out) MUSTCHECK;
/* One of names[0..n); stores the index. */
int cfg_get_enum(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path,
                 const char *const *names, size_t n, int *out) MUSTCHECK;

/* Reads the secret file named by the scalar `node`: a relative path
 * resolves against ctx->basedir; a file that group or others may read is
 * refused; one trailing newline is stripped. The secret is never printed.
 * The caller owns *out and *file (the resolved file name, for showing
 * where a secret comes from). */
int cfg_read_secret(struct cfg_ctx *ctx, const yaml_node_t *node,
                    const char *path, char **out, char **file) MUSTCHECK;

/* 1..64 bytes of [A-Za-z0-9_.-]: tier, calendar, webhook and escalation
 * names, which end up in Redis keys and webhook bodies. */
bool cfg_name_ok(const char *s, size_t len);
#define CFG_NAME_MAX 64

/* Scalar text and length of a node known to be a scalar. */
#define CFG_TEXT(n) ((const char *)(n)->data.scalar.value)
#define CFG_LEN(n) ((n)->data.scalar.length)

/* Helpers for optional keys of a mapping. Each reports problems itself and
 * leaves the destination (holding the default) alone unless the key is set
 * to a valid value. */
/* The value of `key` unless absent or null (a key left empty keeps its
 * default). */
yaml_node_t *cfg_get_set(struct cfg_ctx *ctx, const yaml_node_t *map,
                         const char *key);
/* The key node named `key` in map, else map: where to report about it. */
const yaml_node_t *cfg_key_node(struct cfg_ctx *ctx, const yaml_node_t *map,
                                const char *key);
void cfg_opt_str(struct cfg_ctx *ctx, const yaml_node_t *map,
                 const char *prefix, const char *key, bool allow_empty,
                 char **dst);
/* Returns true when the key is set and valid (then *out is set). */
bool cfg_opt_int(struct cfg_ctx *ctx, const yaml_node_t *map,
                 const char *prefix, const char *key, long long min,
                 long long max, long long *out);
void cfg_opt_dur(struct cfg_ctx *ctx, const yaml_node_t *map,
                 const char *prefix, const char *key, int64_t min_ms,
                 int64_t *dst);
void cfg_opt_bool(struct cfg_ctx *ctx, const yaml_node_t *map,
                  const char *prefix, const char *key, bool *dst);
void cfg_opt_secret(struct cfg_ctx *ctx, const yaml_node_t *map,
                    const char *prefix, const char *key, char **dst,
                    char **file);
/* A key's text when it is a valid name, else "?", for building paths. */
const char *cfg_name_or_placeholder(const yaml_node_t *key);
/* Reports a bad user-chosen name; `what` prefixes the message. */
bool cfg_check_name(struct cfg_ctx *ctx, const yaml_node_t *node,
                    const char *what);
/* The required `name:` of item `index` of a named list (escalations,
 * objectives): a valid name, and not that of an earlier item (name_nodes
 * holds the earlier items' name nodes; this one's is added). `what`
 * names the kind in messages ("escalation"). On success *name is set and
 * path (CFG_PATH_MAX) becomes "<section>.<name>", so that later messages
 * name the item; otherwise path keeps "<section>[<index>]". */
void cfg_list_item_name(struct cfg_ctx *ctx, const yaml_node_t *item, size_t index,
                        const char *section, const char *what,
                        const yaml_node_t **name_nodes, char **name, char *path);


/* One load: the config being built and which sections could not be read at
 * all, so that names referring into them are not also reported as
 * unknown. */
struct cfg_load {
    struct cfg_ctx *ctx;
    struct config *cfg;
    const yaml_node_t *calendars; /* the section, for name lookups */
    bool tiers_bad, calendars_bad, webhooks_bad, objectives_bad;
};

/* Section parsers (config_rules.c), called in this order; `sec` is the
 * section's node, NULL when the file leaves it out. */
void cfg_parse_calendars(struct cfg_load *ld, const yaml_node_t *sec);
void cfg_parse_tiers(struct cfg_load *ld, const yaml_node_t *sec);
void cfg_parse_policies(struct cfg_load *ld, const yaml_node_t *sec,
                        bool tiers_are_default);
void cfg_parse_webhooks(struct cfg_load *ld, const yaml_node_t *sec);
void cfg_parse_escalations(struct cfg_load *ld, const yaml_node_t *sec);

/* A tier name given as a value (policies, escalations, objectives) ->
 * index, or -1 after reporting it (unless the tiers section itself is
 * broken). */
int cfg_tier_ref(struct cfg_load *ld, const yaml_node_t *v, const char *path);

/* config_objectives.c: the objectives section, after the tiers and the
 * compliance windows and before the escalations; then, given the
 * escalations section again once cfg_parse_escalations has read it, each
 * escalation's `objectives` and `windows` (only with `when: objective`). */
void cfg_parse_objectives(struct cfg_load *ld, const yaml_node_t *sec);
void cfg_parse_esc_filters(struct cfg_load *ld, const yaml_node_t *sec);

#endif
