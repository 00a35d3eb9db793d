/*
 * argv.c - the one builder of Redis command arguments: strings (binary
 * safe) packed into one growing buffer, with their lengths, sealed into the
 * argv/argvlen pair that hiredis takes. Pure: no hiredis here, only the
 * shape its *Argv functions expect. An allocation failure is sticky (oom),
 * so callers add everything and check once, at argv_seal.
 */
#define _GNU_SOURCE
#include "slawatch/argv.h"
#include "slawatch/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
argv_init(struct cmd_argv *a)
{
    memset(a, 0, sizeof(*a));
}

void
argv_free(struct cmd_argv *a)
{
    free(a->text);
    free(a->off);
    free(a->lens);
    free(a->argv);
    argv_init(a);
}

static bool
argv_room(struct cmd_argv *a, size_t bytes)
{
    if (a->oom)
        return false;
    if (a->n == a->max) {
        size_t max = a->max ? a->max * 2 : 32;
        size_t *off = realloc(a->off, max * sizeof(*off));
        if (off == NULL)
            goto oom;
        a->off = off;
        size_t *lens = realloc(a->lens, max * sizeof(*lens));
        if (lens == NULL)
            goto oom;
        a->lens = lens;
        a->max = max;
    }
    if (a->used + bytes > a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap < a->used + bytes)
            cap *= 2;
        char *t = realloc(a->text, cap);
        if (t == NULL)
            goto oom;
        a->text = t;
        a->cap = cap;
    }
    return true;
oom:
    a->oom = true;
    return false;
}

void
argv_add(struct cmd_argv *a, const char *s, size_t len)
{
    if (!argv_room(a, len + 1))
        return;
    memcpy(a->text + a->used, s, len);
    a->text[a->used + len] = '\0';
    a->off[a->n] = a->used;
    a->lens[a->n++] = len;
    a->used += len + 1;
}

void
argv_addf(struct cmd_argv *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0 || !argv_room(a, (size_t)len + 1))
        return;
    va_start(ap, fmt);
    vsnprintf(a->text + a->used, (size_t)len + 1, fmt, ap);
    va_end(ap);
    a->off[a->n] = a->used;
    a->lens[a->n++] = (size_t)len;
    a->used += (size_t)len + 1;
}

void
argv_reserve(struct cmd_argv *a, size_t n, size_t bytes)
{
    if (a->oom)
        return;
    if (n > a->max) {
        size_t *off = realloc(a->off, n * sizeof(*off));
        if (off == NULL)
            goto oom;
        a->off = off;
        size_t *lens = realloc(a->lens, n * sizeof(*lens));
        if (lens == NULL)
            goto oom;
        a->lens = lens;
        a->max = n;
    }
    if (bytes > a->cap) {
        char *t = realloc(a->text, bytes);
        if (t == NULL)
            goto oom;
        a->text = t;
        a->cap = bytes;
    }
    return;
oom:
    a->oom = true;
}

/* Points argv at the packed strings (valid until the next add). */
int
argv_seal(struct cmd_argv *a)
{
    if (a->oom)
        return -1;
    free(a->argv);
    a->argv = malloc((a->n ? a->n : 1) * sizeof(*a->argv));
    if (a->argv == NULL)
        return -1;
    for (size_t i = 0; i < a->n; i++)
        a->argv[i] = a->text + a->off[i];
    return 0;
}


void
argv_adds(struct cmd_argv *a, const char *s)
{
    argv_add(a, s, strlen(s));
}

void
argv_addv(struct cmd_argv *a, const char *const *parts, size_t n)
{
    size_t lens[16], len = 0;
    if (n > ARRAY_LEN(lens)) {
        a->oom = true; /* a caller's mistake, caught at argv_seal */
        return;
    }
    for (size_t i = 0; i < n; i++)
        len += lens[i] = strlen(parts[i]);
    if (!argv_room(a, len + 1))
        return;
    char *p = a->text + a->used;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, parts[i], lens[i]);
        p += lens[i];
    }
    *p = '\0';
    a->off[a->n] = a->used;
    a->lens[a->n++] = len;
    a->used += len + 1;
}

void
argv_addu64(struct cmd_argv *a, uint64_t v)
{
    char buf[24], *p = buf + sizeof(buf);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    argv_add(a, p, (size_t)(buf + sizeof(buf) - p));
}
