/*
 * argv.h - the one builder of Redis command arguments (daemon/core/argv.c):
 * every command the daemon sends with more than a fixed handful of
 * arguments is built here, then handed to rds_queue/rds_send or hiredis'
 * *Argv functions as (n, argv, lens).
 *
 *   struct cmd_argv a;
 *   argv_init(&a);
 *   argv_adds(&a, "XADD"); argv_add(&a, id, id_len); argv_addf(&a, "%d", n);
 *   if (argv_seal(&a) == 0) rds_queue(w, NULL, NULL, (int)a.n, a.argv, a.lens);
 *   argv_free(&a);
 */
#ifndef SLAWATCH_ARGV_H
#define SLAWATCH_ARGV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cmd_argv {
    char *text;                      /* the strings, each NUL-terminated */
    size_t used, cap;
    size_t *off;                     /* start of each string in text */
    size_t *lens;
    size_t n, max;
    const char **argv;               /* filled by argv_seal() */
    bool oom;                        /* an allocation failed: seal fails */
};

void argv_init(struct cmd_argv *a);
void argv_free(struct cmd_argv *a);
/* Appends len bytes (binary safe). */
void argv_add(struct cmd_argv *a, const char *s, size_t len);
/* Appends a NUL-terminated string. */
void argv_adds(struct cmd_argv *a, const char *s);
void argv_addf(struct cmd_argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends the concatenation of n (at most 16) NUL-terminated strings as
 * one argument (the publish round's keys: no format string to interpret). */
void argv_addv(struct cmd_argv *a, const char *const *parts, size_t n);
/* Appends an unsigned integer in decimal. */
void argv_addu64(struct cmd_argv *a, uint64_t v);
/* Makes room for n arguments of `bytes` bytes in all (NULs included) at
 * once, so that a command of a known size grows without copies. */
void argv_reserve(struct cmd_argv *a, size_t n, size_t bytes);
/* Points a->argv at the packed strings (valid until the next add or free).
 * Returns -1 when an allocation failed on the way. */
int argv_seal(struct cmd_argv *a) __attribute__((warn_unused_result));

#endif
