/* Documentation tests for the manual pages: every key the loader accepts
 * (cfg_known_keys) has an entry in docs/man/slawatch.yaml.5 under its full
 * dotted path (a ".TP" paragraph tagged ".B <key>", or a ".SS <section>"
 * heading for a section), and every dotted key the page documents is one
 * the loader accepts; every Redis key and every stat the README names
 * (`<prefix>...`, `stats:...`) appears in docs/man/slawatchd.8. The pages
 * also format without a groff warning.
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
#include <sys/wait.h>

#include <cmocka.h>

#include "slawatch/config.h"

#define MAX_TAGS 512

static const char *const man_pages[] = {
    "docs/man/slawatchd.8",
    "docs/man/slawatchctl.1",
    "docs/man/slawatch.yaml.5",
};

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

/* The keys a page documents: the first argument of the tag line of every
 * ".TP" paragraph that starts with ".B ", and of every ".SS" heading.
 * Returns the count; the strings point into `text`, which is modified. */
static size_t
collect_tags(char *text, char **tags, size_t max)
{
    size_t n = 0;
    bool after_tp = false;
    char *save = NULL;

    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *arg = NULL;
        if (strcmp(line, ".TP") == 0 || strncmp(line, ".TP ", 4) == 0) {
            after_tp = true;
            continue;
        }
        if (after_tp && strncmp(line, ".B ", 3) == 0)
            arg = line + 3;
        else if (strncmp(line, ".SS ", 4) == 0)
            arg = line + 4;
        after_tp = false;
        if (arg == NULL)
            continue;
        arg += strspn(arg, " \t");
        arg[strcspn(arg, " \t")] = '\0';
        if (*arg != '\0' && n < max)
            tags[n++] = arg;
    }
    return n;
}

static bool
is_known(const char *key, size_t len)
{
    for (size_t i = 0; cfg_known_keys[i] != NULL; i++)
        if (strlen(cfg_known_keys[i]) == len &&
            memcmp(cfg_known_keys[i], key, len) == 0)
            return true;
    return false;
}

static void
test_every_key_in_man_page(void **state)
{
    (void)state;
    char *text = slurp("docs/man/slawatch.yaml.5");
    char *tags[MAX_TAGS];
    size_t ntags = collect_tags(text, tags, MAX_TAGS);
    char *report = NULL;
    size_t rlen = 0;
    FILE *m = open_memstream(&report, &rlen);
    assert_non_null(m);

    /* Every accepted key has an entry. */
    for (size_t i = 0; cfg_known_keys[i] != NULL; i++) {
        bool found = false;
        for (size_t t = 0; t < ntags && !found; t++)
            found = strcmp(tags[t], cfg_known_keys[i]) == 0;
        if (!found)
            fprintf(m, "  %s: no entry in docs/man/slawatch.yaml.5\n",
                    cfg_known_keys[i]);
    }
    /* Every dotted entry under a known section is accepted: the page must
     * not describe keys that do not exist (or no longer exist). */
    for (size_t t = 0; t < ntags; t++) {
        const char *dot = strchr(tags[t], '.');
        if (dot != NULL && is_known(tags[t], (size_t)(dot - tags[t])) &&
            !is_known(tags[t], strlen(tags[t])))
            fprintf(m, "  %s: documented in docs/man/slawatch.yaml.5 but "
                       "not accepted by the loader\n",
                    tags[t]);
    }
    fclose(m);
    if (*report != '\0') {
        print_error("slawatch.yaml(5) out of date:\n%s", report);
        free(report);
        free(text);
        fail();
    }
    free(report);
    free(text);
}

/* The tag parser itself, on a small page, so that a change in how the page
 * is written cannot make the test above pass vacuously. */
static void
test_tag_parser(void **state)
{
    (void)state;
    char page[] = ".SH KEYS\n"
                  ".SS redis\n"
                  "Text with\n"
                  ".B redis.port\n"
                  "in running text is not an entry.\n"
                  ".TP\n"
                  ".B redis.host\n"
                  "String.\n"
                  ".TP 8\n"
                  ".B tiers.*.warn  trailing\n"
                  "List.\n";
    char *tags[8];
    size_t n = collect_tags(page, tags, 8);
    assert_int_equal(n, 3);
    assert_string_equal(tags[0], "redis");
    assert_string_equal(tags[1], "redis.host");
    assert_string_equal(tags[2], "tiers.*.warn");

    /* And the real page documents at least as many entries as there are
     * keys. */
    char *text = slurp("docs/man/slawatch.yaml.5");
    char *all[MAX_TAGS];
    size_t nkeys = 0;
    while (cfg_known_keys[nkeys] != NULL)
        nkeys++;
    assert_true(collect_tags(text, all, MAX_TAGS) >= nkeys);
    free(text);
}

/* Each page formats with groff without a warning (-ww: all of them). */
static void
test_pages_format_cleanly(void **state)
{
    (void)state;
    char cmd[2048];
    if (system("command -v groff >/dev/null 2>&1") != 0) {
        printf("note: groff not installed, formatting not checked\n");
        skip();
    }
    for (size_t i = 0; i < sizeof(man_pages) / sizeof(man_pages[0]); i++) {
        char *out = NULL, line[512];
        size_t len = 0;
        snprintf(cmd, sizeof(cmd), "groff -t -man -Tutf8 -ww -z '%s/%s' 2>&1",
                 srcdir(), man_pages[i]);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        FILE *m = open_memstream(&out, &len);
        assert_non_null(m);
        while (fgets(line, sizeof(line), p) != NULL)
            fputs(line, m);
        int rc = pclose(p);
        fclose(m);
        if (rc != 0 || *out != '\0') {
            print_error("%s: groff status %d:\n%s", man_pages[i],
                        WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out);
            free(out);
            fail();
        }
        free(out);
    }
}

/* ---- README keys and stats in slawatchd(8) ------------------------------ */

/* The text of a man page as a reader sees it, roughly: macro lines give
 * their arguments (joined without spaces for the alternating-font macros
 * .BI .BR .IB .IR .RB .RI, as groff prints them), other requests vanish,
 * and the escapes \%, \&, \fX and \- become nothing, nothing, nothing and
 * '-'. The caller frees the result. */
static char *
man_text(const char *page)
{
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    assert_non_null(m);
    for (const char *line = page; *line;) {
        size_t n = strcspn(line, "\n");
        const char *p = line, *end = line + n;
        bool joined = false;
        if (*p == '.') {
            const char *mac = p + 1;
            size_t ml = strcspn(mac, " \n");
            joined = ml == 2 && strchr("BI", mac[0]) && strchr("BIR", mac[1]) &&
                     mac[0] != mac[1];
            joined |= ml == 2 && mac[0] == 'R' && strchr("BI", mac[1]);
            bool words = (ml == 1 && strchr("BI", mac[0])) || (ml == 2 && mac[0] == 'S');
            if (!joined && !words) {
                line = *end ? end + 1 : end;
                continue;
            }
            p = mac + ml;
        }
        bool quoted = false;
        for (; p < end; p++) {
            if (*p == '"') {
                quoted = !quoted;
                continue;
            }
            if (joined && *p == ' ' && !quoted)
                continue;
            if (*p == '\\' && p + 1 < end) {
                char c = p[1];
                if (c == 'f' && p + 2 < end)
                    p += 2;
                else if (c == '-')
                    fputc('-', m), p++;
                else if (c == '(' && p + 3 < end)
                    fputc('"', m), p += 3;
                else
                    p++; /* \% \& and the like */
                continue;
            }
            fputc(*p, m);
        }
        fputc('\n', m);
        line = *end ? end + 1 : end;
    }
    fclose(m);
    return out;
}

/* Whether `word` occurs in text with no [a-z0-9_] on either side. */
static bool
has_word(const char *text, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = text; (p = strstr(p, word)) != NULL; p++) {
        char before = p > text ? p[-1] : ' ', after = p[wl];
        bool inner = (before >= 'a' && before <= 'z') || (before >= '0' && before <= '9') ||
                     before == '_' || (after >= 'a' && after <= 'z') ||
                     (after >= '0' && after <= '9') || after == '_';
        if (!inner)
            return true;
    }
    return false;
}

static void
test_readme_keys_in_daemon_page(void **state)
{
    (void)state;
    char *readme = slurp("README.md"), *page = slurp("docs/man/slawatchd.8");
    char *text = man_text(page);
    char *report = NULL;
    size_t rlen = 0;
    FILE *m = open_memstream(&report, &rlen);
    assert_non_null(m);
    int nkeys = 0, nstats = 0;
    /* Every `code span` of the README that names a key or a stat. */
    for (const char *p = strchr(readme, '`'); p != NULL; p = strchr(p + 1, '`')) {
        const char *q = strchr(p + 1, '`');
        if (q == NULL)
            break;
        char span[256];
        snprintf(span, sizeof(span), "%.*s", (int)(q - p - 1 < 255 ? q - p - 1 : 255), p + 1);
        p = q;
        const char *name = span;
        if (strncmp(name, "<prefix>", 8) == 0) {
            /* The key's family: up to its first <placeholder>; for a
             * stat, <prefix>stats: (the stat itself is checked below). */
            char family[256];
            size_t flen = strncmp(name + 8, "stats:", 6) == 0 ? 6 : strcspn(name + 8, "< ");
            snprintf(family, sizeof(family), "%.*s", (int)flen + 8, name);
            nkeys++;
            if (strstr(text, family) == NULL)
                fprintf(m, "  Redis key %s (README `%s`) not in slawatchd(8)\n", family, span);
            name += 8;
        }
        if (strncmp(name, "stats:", 6) == 0 && name[6] >= 'a' && name[6] <= 'z') {
            char stat[128];
            snprintf(stat, sizeof(stat), "%.*s", (int)strcspn(name + 6, ":< "), name + 6);
            nstats++;
            if (!has_word(text, stat))
                fprintf(m, "  stat %s (README `%s`) not in slawatchd(8)\n", stat, span);
        }
    }
    fclose(m);
    if (*report != '\0') {
        print_error("slawatchd(8) out of date with the README:\n%s", report);
        fail();
    }
    /* Not vacuous: the README names the keys and the stats. */
    assert_true(nkeys >= 8);
    assert_true(nstats >= 15);
    free(report);
    free(text);
    free(page);
    free(readme);
}

/* The roff reading above, on a small page. */
static void
test_man_text(void **state)
{
    (void)state;
    char *t = man_text(".TH X 8\n"
                       ".BI \\%<prefix>open: <tier>\n"
                       ".B stats:heartbeat_ms\n"
                       "plain \\fBbold\\fP text\\-dash\n"
                       ".BR \"a b\" , c\n"
                       ".PP\n");
    assert_string_equal(t, "<prefix>open:<tier>\n stats:heartbeat_ms\nplain bold text-dash\n"
                           "a b,c\n");
    assert_true(has_word(t, "heartbeat_ms"));
    assert_false(has_word(t, "heartbeat"));
    free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tag_parser),
        cmocka_unit_test(test_every_key_in_man_page),
        cmocka_unit_test(test_pages_format_cleanly),
        cmocka_unit_test(test_man_text),
        cmocka_unit_test(test_readme_keys_in_daemon_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
