/* Documentation tests for the configuration: every key the loader accepts
 * (cfg_known_keys) appears in the example conf/slawatch.yaml, set or
 * commented out and with a comment, and in the reference docs/config.md;
 * every key docs/config.md lists is one the loader accepts; and the example
 * loads with no errors.
 *
 * Files are found under SLAWATCH_SRCDIR when set, else the current
 * directory (the test runner starts binaries from the repository root). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slawatch/config.h"

static const char *
srcdir(void)
{
    const char *d = getenv("SLAWATCH_SRCDIR");
    return d && *d ? d : ".";
}

/* Reads srcdir/rel into a NUL-terminated string the caller frees. */
static char *
slurp(const char *rel)
{
    char path[1024], chunk[4096];
    char *text = NULL;
    size_t len = 0, r;

    snprintf(path, sizeof(path), "%s/%s", srcdir(), rel);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        print_error("cannot open %s (run from the repository root or set "
                    "SLAWATCH_SRCDIR)\n",
                    path);
        fail();
    }
    FILE *m = open_memstream(&text, &len);
    assert_non_null(m);
    while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, r, m);
    fclose(m);
    fclose(f);
    return text;
}

/* ---- the example config ------------------------------------------------- */

static bool
is_key_boundary(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '{' || c == ',' ||
           c == '#' || c == '-';
}

/* The first "name:" used as a key at or after `from`, or NULL. Commented
 * lines count: optional keys are shown commented out. */
static const char *
find_key(const char *text, const char *from, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(from, name); p != NULL;
         p = strstr(p + 1, name)) {
        if ((p == text || is_key_boundary(p[-1])) && p[n] == ':')
            return p;
    }
    return NULL;
}

static const char *
line_start(const char *text, const char *p)
{
    while (p > text && p[-1] != '\n')
        p--;
    return p;
}

/* A line that is only a comment ("  # ..." or "  - # ..."). */
static bool
is_comment_line(const char *line)
{
    line += strspn(line, " \t");
    if (*line == '-')
        line += 1 + strspn(line + 1, " \t");
    return *line == '#';
}

/* The key at p is explained: its line has a comment, or the line above is
 * a comment. */
static bool
has_comment(const char *text, const char *p)
{
    const char *ls = line_start(text, p);
    const char *eol = strchr(p, '\n');
    size_t n = eol ? (size_t)(eol - ls) : strlen(ls);
    if (memchr(ls, '#', n) != NULL)
        return true;
    if (ls == text)
        return false;
    return is_comment_line(line_start(text, ls - 1));
}

/* Finds "a.*.b.c" as a:, then b: after it, then c: after that, skipping
 * '*' (user-chosen names and list items). Returns the position of the last
 * named part, or NULL. */
static const char *
find_path(const char *text, const char *key)
{
    char part[128];
    const char *from = text, *at = NULL;
    for (const char *k = key; *k;) {
        size_t n = strcspn(k, ".");
        assert_true(n < sizeof(part));
        memcpy(part, k, n);
        part[n] = '\0';
        k += n + (k[n] == '.');
        if (strcmp(part, "*") == 0)
            continue;
        if ((at = find_key(text, from, part)) == NULL)
            return NULL;
        from = at + n;
    }
    return at;
}

static void
test_keys_in_example(void **state)
{
    (void)state;
    char *text = slurp("conf/slawatch.yaml");
    char *missing = NULL;
    size_t mlen = 0;
    FILE *m = open_memstream(&missing, &mlen);

    for (size_t i = 0; cfg_known_keys[i] != NULL; i++) {
        const char *key = cfg_known_keys[i];
        const char *at = find_path(text, key);
        if (at == NULL)
            fprintf(m, "  %s: missing from conf/slawatch.yaml\n", key);
        else if (!has_comment(text, at))
            fprintf(m,
                    "  %s: no comment on or above its line in "
                    "conf/slawatch.yaml\n",
                    key);
    }
    fclose(m);
    if (*missing != '\0') {
        print_error("config keys not documented in the example:\n%s", missing);
        free(missing);
        free(text);
        fail();
    }
    free(missing);
    free(text);
}

static void
test_example_loads(void **state)
{
    (void)state;
    char path[1024], *errs = NULL;
    size_t len = 0;

    snprintf(path, sizeof(path), "%s/conf/slawatch.yaml", srcdir());
    FILE *f = open_memstream(&errs, &len);
    assert_non_null(f);
    struct config *cfg = cfg_load(path, f);
    fclose(f);
    if (cfg == NULL || *errs != '\0') {
        print_error("%s does not load cleanly:\n%s", path, errs);
        cfg_free(cfg);
        free(errs);
        fail();
    }
    free(errs);
    /* The example keeps SPEC's realistic tiers, in SPEC's order. */
    assert_int_equal(cfg->ntiers, 4);
    assert_string_equal(cfg->tiers[0].name, "instant");
    assert_string_equal(cfg->tiers[3].name, "24h");
    assert_int_equal(cfg->tiers[0].target_ms[METRIC_RESPONSE], 5 * 60000);
    /* It must not depend on secret files that only exist on a server. */
    assert_null(cfg->redis.password);
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        assert_null(cfg->webhooks[i].secret);
        assert_null(cfg->webhooks[i].routing_key);
        /* Placeholders only: the example must never post anywhere real. */
        assert_true(strncmp(cfg->webhooks[i].url, "http://127.0.0.1:", 17) ==
                    0);
    }
    cfg_free(cfg);
}

/* ---- the reference ------------------------------------------------------ */

static bool
is_known(const char *key, size_t len)
{
    for (size_t i = 0; cfg_known_keys[i] != NULL; i++)
        if (strlen(cfg_known_keys[i]) == len &&
            memcmp(cfg_known_keys[i], key, len) == 0)
            return true;
    return false;
}

/* A top-level section name ("redis"), i.e. a known key without a dot. */
static bool
is_section(const char *name, size_t len)
{
    return memchr(name, '.', len) == NULL && is_known(name, len);
}

static void
test_keys_in_reference(void **state)
{
    (void)state;
    char *text = slurp("docs/config.md");
    char *missing = NULL, quoted[256];
    size_t mlen = 0;
    FILE *m = open_memstream(&missing, &mlen);

    /* Every accepted key is documented, in backquotes. */
    for (size_t i = 0; cfg_known_keys[i] != NULL; i++) {
        snprintf(quoted, sizeof(quoted), "`%s`", cfg_known_keys[i]);
        if (strstr(text, quoted) == NULL)
            fprintf(m, "  %s: missing from docs/config.md\n",
                    cfg_known_keys[i]);
    }
    /* Every key in the first column of a table is accepted: the reference
     * must not describe keys that do not exist. */
    for (const char *p = text; p != NULL && *p;) {
        if (strncmp(p, "| `", 3) == 0) {
            const char *k = p + 3, *end = strchr(k, '`');
            size_t n = end ? (size_t)(end - k) : 0;
            size_t first = strcspn(k, ".`");
            if (n > 0 && is_section(k, first) && !is_known(k, n))
                fprintf(m,
                        "  %.*s: listed in docs/config.md but not "
                        "accepted by the loader\n",
                        (int)n, k);
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    fclose(m);
    if (*missing != '\0') {
        print_error("config reference out of date:\n%s", missing);
        free(missing);
        free(text);
        fail();
    }
    free(missing);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_loads),
        cmocka_unit_test(test_keys_in_example),
        cmocka_unit_test(test_keys_in_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
