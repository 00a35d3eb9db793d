/*
 * table.h - the two hash tables of the core: tickets by id, and interned
 * attribute values (priority, queue, agent...) shared by many tickets.
 * Keyed with a per-process random seed so that crafted ids cannot force
 * collisions. Pure core: no I/O.
 */
#ifndef SLAWATCH_TABLE_H
#define SLAWATCH_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "slawatch/util.h"

uint64_t table_hash(uint64_t seed, const void *data, size_t len);
uint64_t table_random_seed(void);

/* Open addressing with linear probing and backward-shift deletion; the
 * table owns the slot array, never its members. A member is any struct
 * whose id (`id_off` bytes into it) is preceded by its length in one byte
 * (struct ticket, the core's closed-ticket records). */
struct ticket_table {
    void **slots;
    size_t cap;              /* power of two */
    size_t n;
    uint64_t seed;
    size_t id_off;           /* offsetof(member, id); id_len sits before */
};

void tt_init(struct ticket_table *tt, size_t id_off);
void tt_free(struct ticket_table *tt);
void *tt_find(const struct ticket_table *tt, const char *id, size_t len);
/* Inserts a member whose id is not yet present. Returns -1 on allocation
 * failure, leaving the table unchanged. */
int tt_insert(struct ticket_table *tt, void *m) MUSTCHECK;
void tt_remove(struct ticket_table *tt, const void *m);

/* Interned strings with reference counts; id 0 means "absent". */
struct intern {
    char **strs;             /* by id; strs[0] unused */
    size_t *lens;
    uint32_t *refs;
    uint32_t n;              /* ids handed out, including freed ones */
    uint32_t cap;
    uint32_t *free_ids;
    uint32_t nfree;
    uint32_t *slots;         /* hash -> id, 0 empty */
    size_t nslots;
    size_t live;
    uint64_t seed;
};

void intern_init(struct intern *in);
void intern_free(struct intern *in);
/* Returns the id of s (adding a reference), or 0 on allocation failure. */
uint32_t intern_get(struct intern *in, const char *s, size_t len) MUSTCHECK;
/* The id of s if interned (no reference added), else 0. */
uint32_t intern_lookup(const struct intern *in, const char *s, size_t len);
/* Adds a reference to an id in use. */
void intern_ref(struct intern *in, uint32_t id);
void intern_put(struct intern *in, uint32_t id);
const char *intern_str(const struct intern *in, uint32_t id);

#endif
