/*
 * config.c - loading the configuration of SPEC section 2: cfg_load, the
 * order in which sections are parsed, the self-contained sections (redis,
 * events, compliance, log) and defaults. The model itself (cfg_free, names,
 * tier lookup, and cfg_known_keys, the table of accepted keys that
 * unknown-key errors and the documentation tests both use) is in
 * daemon/core/config_model.c, free of libyaml.
 *
 * cfg_load() builds a fresh struct config from one file and returns it only
 * when every check passed; it never edits a config in use, so a reload that
 * fails leaves the running one untouched. It reads the config file, secret
 * files and (through cal.c) the zone database, and must not do any other
 * I/O. The sections that refer to each other by name are parsed in
 * config_rules.c; YAML node access and FILE:LINE:COL errors live in
 * config_yaml.c.
 *
 *   cfg_load -> read_file -> load_buffer -> libyaml document -> parse_root
 *     -> redis, events (here)
 *     -> calendars, tiers, policies, webhooks, escalations (config_rules.c,
 *        in that order: every name is defined before it is looked up)
 *     -> compliance, log (here)
 *     -> defaults that depend on other sections -> struct config
 *   Errors are collected, sorted by position and printed once at the end.
 */
#define _GNU_SOURCE
#include "slawatch/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_int.h"
#include "slawatch/cal.h"

/* A config file is a few kilobytes; refuse to parse a runaway one. */
#define CFG_FILE_MAX (16 * 1024 * 1024)

static const char *const level_names[] = {"debug", "info", "notice", "warning",
                                          "err"};

/* ---- redis, events, log ------------------------------------------------ */

/* redis.sentinels ("host:port" each) and redis.master_name: both or
 * neither, and then no host, port or unix. */
static void
parse_sentinels(struct cfg_ctx *ctx, const yaml_node_t *sec, struct cfg_redis *r)
{
    const char *path = "redis.sentinels";
    const yaml_node_t *list = cfg_get_set(ctx, sec, "sentinels");
    cfg_opt_str(ctx, sec, "redis", "master_name", false, &r->master_name);
    if (list == NULL) {
        if (r->master_name)
            cfg_err(ctx, cfg_key_node(ctx, sec, "master_name"),
                    "redis.master_name needs redis.sentinels");
        return;
    }
    if (cfg_check_seq(ctx, list, path) < 0)
        return;
    size_t n = cfg_seq_len(list);
    if (n == 0 || n > CFG_MAX_SENTINELS) {
        cfg_err(ctx, list, "%s: list 1 to %d sentinels as \"host:port\"", path,
                CFG_MAX_SENTINELS);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, list, i);
        const char *text;
        if (item == NULL || cfg_get_text(ctx, item, path, &text) < 0)
            continue;
        const char *colon = strrchr(text, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;
        if (colon == NULL || colon == text || end == colon + 1 || *end != '\0' ||
            port < 1 || port > 65535) {
            cfg_err(ctx, item, "%s: \"%s\" is not host:port", path, text);
            continue;
        }
        size_t hl = (size_t)(colon - text);
        if (hl > 2 && text[0] == '[' && text[hl - 1] == ']') /* [v6]:port */
            r->sentinel_host[r->nsentinels] = strndup(text + 1, hl - 2);
        else
            r->sentinel_host[r->nsentinels] = strndup(text, hl);
        if (r->sentinel_host[r->nsentinels] == NULL) {
            cfg_oom(ctx);
            return;
        }
        r->sentinel_port[r->nsentinels++] = (int)port;
    }
    if (r->master_name == NULL)
        cfg_err(ctx, cfg_key_node(ctx, sec, "sentinels"),
                "redis.sentinels needs redis.master_name (the name the sentinels monitor)");
    static const char *const direct[] = { "host", "port", "unix" };
    for (size_t i = 0; i < ARRAY_LEN(direct); i++)
        if (cfg_get_set(ctx, sec, direct[i]) != NULL)
            cfg_err(ctx, cfg_key_node(ctx, sec, direct[i]),
                    "redis.%s and redis.sentinels exclude each other: the sentinels "
                    "name the master", direct[i]);
}

static void
parse_redis(struct cfg_load *ld, const yaml_node_t *sec)
{
    struct cfg_ctx *ctx = ld->ctx;
    struct cfg_redis *r = &ld->cfg->redis;
    long long n;

    if (cfg_check_map(ctx, sec, "redis", "redis") < 0)
        return;
    const yaml_node_t *host = cfg_get_set(ctx, sec, "host");
    const yaml_node_t *unx = cfg_get_set(ctx, sec, "unix");
    if (host != NULL && unx != NULL)
        cfg_err(ctx, cfg_key_node(ctx, sec, "unix"),
                "redis: set either host or unix, not both");
    cfg_opt_str(ctx, sec, "redis", "host", false, &r->host);
    cfg_opt_str(ctx, sec, "redis", "unix", false, &r->unix_path);
    if (cfg_opt_int(ctx, sec, "redis", "port", 1, 65535, &n))
        r->port = (int)n;
    if (cfg_opt_int(ctx, sec, "redis", "db", 0, INT_MAX, &n))
        r->db = (int)n;
    cfg_opt_str(ctx, sec, "redis", "username", false, &r->username);
    parse_sentinels(ctx, sec, r);
    cfg_opt_secret(ctx, sec, "redis", "password_file", &r->password,
                   &r->password_file);
    /* An empty prefix is allowed: the keys are then bare. */
    cfg_opt_str(ctx, sec, "redis", "prefix", true, &r->prefix);
    if (cfg_opt_int(ctx, sec, "redis", "max_queue_mb", 1, 65536, &n))
        r->max_queue_mb = (int)n;
}

static void
parse_events(struct cfg_load *ld, const yaml_node_t *sec)
{
    struct cfg_ctx *ctx = ld->ctx;
    struct cfg_events *e = &ld->cfg->events;
    long long n;

    if (cfg_check_map(ctx, sec, "events", "events") < 0)
        return;
    cfg_opt_str(ctx, sec, "events", "group", false, &e->group);
    /* "" means the default (the host name), as SPEC's example writes it. */
    cfg_opt_str(ctx, sec, "events", "consumer", true, &e->consumer);
    if (cfg_opt_int(ctx, sec, "events", "batch", 1, 100000, &n))
        e->batch = (int)n;
    cfg_opt_dur(ctx, sec, "events", "max_clock_skew", 0, &e->max_clock_skew_ms);
    cfg_opt_dur(ctx, sec, "events", "allowed_lateness", 0, &e->allowed_lateness_ms);
    if (cfg_opt_int(ctx, sec, "events", "dead_maxlen", 0, LONG_MAX, &n))
        e->dead_maxlen = (long)n;
}

static void
parse_state(struct cfg_load *ld, const yaml_node_t *sec)
{
    struct cfg_ctx *ctx = ld->ctx;

    if (cfg_check_map(ctx, sec, "state", "state") < 0)
        return;
    cfg_opt_dur(ctx, sec, "state", "checkpoint_every", 1000,
                &ld->cfg->state.checkpoint_every_ms);
    cfg_opt_dur(ctx, sec, "state", "forget_resolved_after", 0,
                &ld->cfg->state.forget_resolved_after_ms);
    long long n;
    if (cfg_opt_int(ctx, sec, "state", "max_attribute_values", 1, 10000000, &n))
        ld->cfg->state.max_attribute_values = (int)n;
}

static void
parse_ha(struct cfg_load *ld, const yaml_node_t *sec)
{
    struct cfg_ctx *ctx = ld->ctx;

    if (cfg_check_map(ctx, sec, "ha", "ha") < 0)
        return;
    /* Renewed every third of it, with a fifth kept as margin: below 1 s
     * a loaded machine could lose it between two renewals. */
    cfg_opt_dur(ctx, sec, "ha", "lease", 1000, &ld->cfg->ha.lease_ms);
}

static void
parse_log(struct cfg_load *ld, const yaml_node_t *sec)
{
    struct cfg_ctx *ctx = ld->ctx;
    int idx;

    if (cfg_check_map(ctx, sec, "log", "log") < 0)
        return;
    const yaml_node_t *v = cfg_get_set(ctx, sec, "level");
    if (v != NULL && cfg_get_enum(ctx, v, "log.level", level_names,
                                  ARRAY_LEN(level_names), &idx) == 0)
        ld->cfg->log_level = (enum log_level)(LOG_LVL_DEBUG - idx); /* names in order */
}

/* ---- compliance -------------------------------------------------------- */

static int
add_window(struct cfg_compliance *c, const char *name, int64_t ms)
{
    char *copy = strdup(name);
    if (copy == NULL)
        return -1;
    c->windows[c->nwindows].name = copy;
    c->windows[c->nwindows].ms = ms;
    c->nwindows++;
    return 0;
}

static void
parse_windows(struct cfg_ctx *ctx, struct cfg_compliance *c,
              const yaml_node_t *list)
{
    const char *path = "compliance.windows";
    char shown[CFG_SHOW_MAX];

    if (cfg_check_seq(ctx, list, path) < 0)
        return;
    size_t n = cfg_seq_len(list);
    if (n == 0) {
        cfg_err(ctx, list, "%s: name at least one window", path);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, list, i);
        int64_t ms;
        if (item == NULL)
            return;
        if (cfg_get_dur(ctx, item, path, 1, &ms) < 0)
            continue;
        if (c->nwindows == CFG_MAX_WINDOWS) {
            cfg_err(ctx, item, "%s: at most %d windows", path, CFG_MAX_WINDOWS);
            return;
        }
        size_t j;
        for (j = 0; j < c->nwindows && c->windows[j].ms != ms; j++)
            ;
        if (j < c->nwindows) {
            cfg_err(ctx, item, "%s: %s is the same window as '%s'", path,
                    cfg_show(item, shown, sizeof(shown)), c->windows[j].name);
            continue;
        }
        if (add_window(c, CFG_TEXT(item), ms) < 0)
            cfg_oom(ctx);
    }
}

static void
parse_by(struct cfg_ctx *ctx, struct cfg_compliance *c, const yaml_node_t *list)
{
    const char *path = "compliance.by";
    char shown[CFG_SHOW_MAX];
    int a;

    if (cfg_check_seq(ctx, list, path) < 0)
        return;
    size_t n = cfg_seq_len(list);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = cfg_seq_item(ctx, list, i);
        if (item == NULL)
            return;
        if (cfg_get_enum(ctx, item, path, cfg_attr_names, ATTR_COUNT, &a) < 0)
            continue;
        if (c->by[a])
            cfg_err(ctx, item, "%s: %s is listed twice", path,
                    cfg_show(item, shown, sizeof(shown)));
        c->by[a] = true;
    }
}

static void
parse_compliance(struct cfg_load *ld, const yaml_node_t *sec)
{
    struct cfg_ctx *ctx = ld->ctx;
    struct cfg_compliance *c = &ld->cfg->compliance;
    const yaml_node_t *v;
    long long n;

    if (cfg_check_map(ctx, sec, "compliance", "compliance") < 0)
        return;
    if ((v = cfg_get_set(ctx, sec, "windows")) != NULL)
        parse_windows(ctx, c, v);
    if ((v = cfg_get_set(ctx, sec, "by")) != NULL)
        parse_by(ctx, c, v);
    if (cfg_opt_int(ctx, sec, "compliance", "max_values", 1, 1000000, &n))
        c->max_values = (int)n;
    cfg_opt_dur(ctx, sec, "compliance", "publish_every", 1,
                &c->publish_every_ms);
    if ((v = cfg_get_set(ctx, sec, "objective")) != NULL) {
        double x;
        if (cfg_get_decimal(ctx, v, "compliance.objective", &x) < 0)
            return;
        if (!(x > 0 && x <= 1))
            cfg_err(ctx, v,
                    "compliance.objective: must be above 0 and at "
                    "most 1 (0.90 for 90%%)");
        else
            c->objective = x;
    }
}

/* ---- the whole file ---------------------------------------------------- */

/* Defaults that do not depend on other sections. Returns -1 on allocation
 * failure. */
static int
set_defaults(struct config *cfg)
{
    cfg->redis.port = 6379;
    cfg->redis.db = 0;
    cfg->redis.max_queue_mb = 256;
    cfg->events.batch = 1000;
    cfg->events.max_clock_skew_ms = 5 * 60000;
    cfg->events.dead_maxlen = 100000;
    cfg->compliance.max_values = 200;
    cfg->compliance.publish_every_ms = 10000;
    cfg->compliance.objective = 0.90;
    cfg->state.checkpoint_every_ms = 30000;
    cfg->state.forget_resolved_after_ms = 30 * 86400000LL;
    cfg->state.max_attribute_values = 100000;
    cfg->ha.lease_ms = 10000;
    cfg->log_level = LOG_LVL_INFO;
    if ((cfg->redis.prefix = strdup("sla:")) == NULL ||
        (cfg->events.group = strdup("slawatch")) == NULL)
        return -1;
    return 0;
}

/* Defaults that depend on what the file said. */
static int
finish_defaults(struct config *cfg)
{
    if (cfg->redis.host == NULL && cfg->redis.unix_path == NULL &&
        (cfg->redis.host = strdup("127.0.0.1")) == NULL)
        return -1;
    if (cfg->redis.unix_path != NULL) {
        free(cfg->redis.host);
        cfg->redis.host = NULL;
    }
    if (cfg->events.consumer == NULL || *cfg->events.consumer == '\0') {
        char host[256];
        if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        free(cfg->events.consumer);
        if ((cfg->events.consumer = strdup(host)) == NULL)
            return -1;
    }
    if (cfg->compliance.nwindows == 0) {
        static const struct {
            const char *name;
            int64_t ms;
        } defs[] = {
            {"1h", 3600000LL}, {"24h", 86400000LL}, {"7d", 7 * 86400000LL}};
        for (size_t i = 0; i < ARRAY_LEN(defs); i++)
            if (add_window(&cfg->compliance, defs[i].name, defs[i].ms) < 0)
                return -1;
    }
    return 0;
}

static void
parse_root(struct cfg_ctx *ctx, const yaml_node_t *root, struct config *cfg)
{
    struct cfg_load ld = {.ctx = ctx, .cfg = cfg};

    if (set_defaults(cfg) < 0) {
        cfg_oom(ctx);
        return;
    }
    if (cfg_is_null(root))
        root = NULL; /* an empty file: every default */
    if (cfg_check_map(ctx, root, "", "") < 0)
        return;
    const yaml_node_t *tiers = cfg_get_set(ctx, root, "tiers");
    parse_redis(&ld, cfg_get_set(ctx, root, "redis"));
    parse_events(&ld, cfg_get_set(ctx, root, "events"));
    cfg_parse_calendars(&ld, cfg_get_set(ctx, root, "calendars"));
    cfg_parse_tiers(&ld, tiers);
    cfg_parse_policies(&ld, cfg_get_set(ctx, root, "policies"), tiers == NULL);
    cfg_parse_webhooks(&ld, cfg_get_set(ctx, root, "webhooks"));
    cfg_parse_escalations(&ld, cfg_get_set(ctx, root, "escalations"));
    parse_compliance(&ld, cfg_get_set(ctx, root, "compliance"));
    parse_state(&ld, cfg_get_set(ctx, root, "state"));
    parse_ha(&ld, cfg_get_set(ctx, root, "ha"));
    parse_log(&ld, cfg_get_set(ctx, root, "log"));
    if (finish_defaults(cfg) < 0)
        cfg_oom(ctx);
}

/* Line and column (0-based) of a byte offset, for reader errors, which
 * libyaml reports by offset only. */
static void
offset_position(const char *buf, size_t len, size_t off, size_t *line,
                size_t *col)
{
    *line = *col = 0;
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 0;
        } else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
            (*col)++;
        }
    }
}

static void
report_parser_error(struct cfg_ctx *ctx, const yaml_parser_t *parser,
                    const char *buf, size_t len)
{
    size_t line, col;
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        cfg_oom(ctx);
        return;
    case YAML_READER_ERROR:
        offset_position(buf, len, parser->problem_offset, &line, &col);
        cfg_err_at(ctx, line, col, "YAML syntax error: %s",
                   parser->problem ? parser->problem : "unreadable input");
        return;
    default:
        break;
    }
    if (parser->context != NULL)
        cfg_err_at(ctx, parser->problem_mark.line, parser->problem_mark.column,
                   "YAML syntax error: %s (%s at line %zu, column %zu)",
                   parser->problem ? parser->problem : "malformed input",
                   parser->context, (size_t)parser->context_mark.line + 1,
                   (size_t)parser->context_mark.column + 1);
    else
        cfg_err_at(ctx, parser->problem_mark.line, parser->problem_mark.column,
                   "YAML syntax error: %s",
                   parser->problem ? parser->problem : "malformed input");
}

/* libyaml's scanner takes time quadratic in the depth of flow nesting (at
 * each token it revisits every open level): 100,000 nested brackets take
 * half a minute. No config nests more than a few levels, so a cheap scan
 * refuses deeper bracket nesting before libyaml sees the text. It skips
 * comments and quoted strings; a bracket inside a plain scalar may be
 * counted too, which can only matter for an absurd file. */
#define CFG_MAX_DEPTH 1000

static int
check_nesting(struct cfg_ctx *ctx, const char *buf, size_t len)
{
    size_t depth = 0, line = 0, col = 0;
    char quote = 0;
    bool comment = false;

    for (size_t i = 0; i < len; i++) {
        char c = buf[i], prev = i > 0 ? buf[i - 1] : '\n';
        if (c == '\n') {
            line++;
            col = 0;
            comment = false;
            continue;
        }
        col += ((unsigned char)c & 0xc0) != 0x80;
        if (comment)
            continue;
        if (quote != 0) {
            if (quote == '"' && c == '\\' && i + 1 < len && buf[i + 1] != '\n')
                i++, col++;
            else if (c == quote)
                quote = 0;
            continue;
        }
        if (c == '#' && (prev == ' ' || prev == '\t' || prev == '\n'))
            comment = true;
        else if (c == '"' || c == '\'')
            quote = c;
        else if (c == '[' || c == '{') {
            if (++depth > CFG_MAX_DEPTH) {
                cfg_err_at(ctx, line, col - 1, "nesting deeper than %d levels",
                           CFG_MAX_DEPTH);
                return -1;
            }
        } else if ((c == ']' || c == '}') && depth > 0)
            depth--;
    }
    return 0;
}

/* One document per file: a second one would be silently ignored. */
static void
check_single_document(struct cfg_ctx *ctx, yaml_parser_t *parser,
                      const char *buf, size_t len)
{
    yaml_document_t next;
    if (!yaml_parser_load(parser, &next)) {
        report_parser_error(ctx, parser, buf, len);
        return;
    }
    if (yaml_document_get_root_node(&next) != NULL)
        cfg_err_at(ctx, next.start_mark.line, next.start_mark.column,
                   "only one YAML document is allowed per file");
    yaml_document_delete(&next);
}

static struct config *
load_buffer(const char *name, const char *basedir, const char *yaml, size_t len,
            FILE *errors)
{
    struct cfg_ctx ctx;
    yaml_parser_t parser;
    yaml_document_t doc;
    struct config *cfg;

    cfg_ctx_init(&ctx, name, basedir, errors);
    if ((cfg = calloc(1, sizeof(*cfg))) == NULL ||
        (cfg->path = strdup(name)) == NULL ||
        !yaml_parser_initialize(&parser)) {
        if (errors != NULL)
            fprintf(errors, "%s: out of memory\n", name);
        cfg_free(cfg);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    if (check_nesting(&ctx, yaml, len) < 0) {
        /* reported */
    } else if (!yaml_parser_load(&parser, &doc)) {
        report_parser_error(&ctx, &parser, yaml, len);
    } else {
        check_single_document(&ctx, &parser, yaml, len);
        ctx.doc = &doc;
        parse_root(&ctx, yaml_document_get_root_node(&doc), cfg);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    if (ctx.oom)
        cfg_err(&ctx, NULL, "out of memory");
    cfg_ctx_flush(&ctx);
    if (ctx.nerrors > 0) {
        cfg_free(cfg);
        return NULL;
    }
    return cfg;
}

struct config *
cfg_load_string(const char *name, const char *yaml, size_t len, FILE *errors)
{
    return load_buffer(name, NULL, yaml, len, errors);
}

/* Reads the whole file into a NUL-terminated buffer the caller frees. */
static char *
read_file(const char *path, size_t *len, FILE *errors)
{
    size_t cap = 8192, n = 0;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0)
        goto fail;
    for (;;) {
        if (n == cap || buf == NULL) {
            if (buf != NULL)
                cap *= 2;
            char *nbuf = realloc(buf, cap + 1);
            if (nbuf == NULL) {
                errno = ENOMEM;
                goto fail;
            }
            buf = nbuf;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > CFG_FILE_MAX) {
            if (errors != NULL)
                fprintf(errors, "%s: larger than %d bytes\n", path,
                        CFG_FILE_MAX);
            free(buf);
            close(fd);
            return NULL;
        }
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    if (errors != NULL)
        fprintf(errors, "%s: cannot read: %s\n", path, strerror(errno));
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

struct config *
cfg_load(const char *path, FILE *errors)
{
    size_t len;
    char *yaml = read_file(path, &len, errors);
    if (yaml == NULL)
        return NULL;
    /* Secret files named relative to the config live next to it. */
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL
                    ? strdup(".")
                    : strndup(path, slash == path ? 1 : (size_t)(slash - path));
    struct config *cfg = NULL;
    if (dir == NULL) {
        if (errors != NULL)
            fprintf(errors, "%s: out of memory\n", path);
    } else {
        cfg = load_buffer(path, dir, yaml, len, errors);
    }
    free(dir);
    free(yaml);
    return cfg;
}
