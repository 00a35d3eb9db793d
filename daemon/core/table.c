/*
 * table.c - ticket table and attribute interning (see table.h). Owns slot
 * arrays and interned strings; never frees a ticket. Growth doubles, so an
 * insert is amortised O(1); a failed growth leaves the table as it was.
 */
#define _GNU_SOURCE
#include "slawatch/table.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>


static inline uint64_t
mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t
table_hash(uint64_t seed, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ mix(len + 0x9e3779b97f4a7c15ULL, 0xa0761d6478bd642fULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix(h ^ w, 0xe7037ed1a0b428dbULL);
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, len);
    return mix(h ^ tail, 0x8ebc6af09c88c6e3ULL);
}

uint64_t
table_random_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return seed;
}

/* ---- tickets ---------------------------------------------------------- */

static inline const char *
m_id(const struct ticket_table *tt, const void *m)
{
    return (const char *)m + tt->id_off;
}

static inline size_t
m_id_len(const struct ticket_table *tt, const void *m)
{
    return ((const unsigned char *)m)[tt->id_off - 1];
}

void
tt_init(struct ticket_table *tt, size_t id_off)
{
    memset(tt, 0, sizeof(*tt));
    tt->seed = table_random_seed();
    tt->id_off = id_off;
}

void
tt_free(struct ticket_table *tt)
{
    free(tt->slots);
    tt->slots = NULL;
    tt->cap = tt->n = 0;
}

static size_t
tt_slot(const struct ticket_table *tt, const char *id, size_t len)
{
    return (size_t)table_hash(tt->seed, id, len) & (tt->cap - 1);
}

void *
tt_find(const struct ticket_table *tt, const char *id, size_t len)
{
    if (tt->cap == 0)
        return NULL;
    for (size_t i = tt_slot(tt, id, len);; i = (i + 1) & (tt->cap - 1)) {
        void *m = tt->slots[i];
        if (m == NULL)
            return NULL;
        if (m_id_len(tt, m) == len && memcmp(m_id(tt, m), id, len) == 0)
            return m;
    }
}

static void
tt_place(struct ticket_table *tt, void *m)
{
    size_t i = tt_slot(tt, m_id(tt, m), m_id_len(tt, m));
    while (tt->slots[i])
        i = (i + 1) & (tt->cap - 1);
    tt->slots[i] = m;
}

int
tt_insert(struct ticket_table *tt, void *m)
{
    /* Keep the load factor at most 1/2: short probes, cheap misses. */
    if ((tt->n + 1) * 2 > tt->cap) {
        size_t cap = tt->cap ? tt->cap * 2 : 1024;
        void **old = tt->slots;
        size_t oldcap = tt->cap;
        void **slots = calloc(cap, sizeof(*slots));
        if (slots == NULL)
            return -1;
        tt->slots = slots;
        tt->cap = cap;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i])
                tt_place(tt, old[i]);
        free(old);
    }
    tt_place(tt, m);
    tt->n++;
    return 0;
}

void
tt_remove(struct ticket_table *tt, const void *m)
{
    size_t mask = tt->cap - 1;
    size_t i;

    if (tt->cap == 0)
        return;
    for (i = tt_slot(tt, m_id(tt, m), m_id_len(tt, m)); tt->slots[i] != m;
         i = (i + 1) & mask)
        if (tt->slots[i] == NULL)
            return;
    tt->slots[i] = NULL;
    tt->n--;
    /* Backward-shift: move later members of the probe run into the hole
     * when their home slot does not lie cyclically in (hole, j]. */
    for (size_t j = (i + 1) & mask; tt->slots[j]; j = (j + 1) & mask) {
        void *x = tt->slots[j];
        size_t home = tt_slot(tt, m_id(tt, x), m_id_len(tt, x));
        if (((j - home) & mask) >= ((j - i) & mask)) {
            tt->slots[i] = x;
            tt->slots[j] = NULL;
            i = j;
        }
    }
}

/* ---- interned attribute values ----------------------------------------- */

void
intern_init(struct intern *in)
{
    memset(in, 0, sizeof(*in));
    in->seed = table_random_seed();
}

void
intern_free(struct intern *in)
{
    for (uint32_t id = 1; id < in->n; id++)
        free(in->strs[id]);
    free(in->strs);
    free(in->lens);
    free(in->refs);
    free(in->free_ids);
    free(in->slots);
    memset(in, 0, sizeof(*in));
}

static size_t
intern_slot(const struct intern *in, const char *s, size_t len)
{
    return (size_t)table_hash(in->seed, s, len) & (in->nslots - 1);
}

static int
intern_grow_slots(struct intern *in)
{
    size_t nslots = in->nslots ? in->nslots * 2 : 64;
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    uint32_t *old = in->slots;
    size_t oldn = in->nslots;
    if (slots == NULL)
        return -1;
    in->slots = slots;
    in->nslots = nslots;
    for (size_t i = 0; i < oldn; i++) {
        uint32_t id = old[i];
        if (id == 0)
            continue;
        size_t k = intern_slot(in, in->strs[id], in->lens[id]);
        while (in->slots[k])
            k = (k + 1) & (nslots - 1);
        in->slots[k] = id;
    }
    free(old);
    return 0;
}

static int
intern_grow_ids(struct intern *in)
{
    uint32_t cap = in->cap ? in->cap * 2 : 64;
    char **strs = realloc(in->strs, cap * sizeof(*strs));
    if (strs == NULL)
        return -1;
    in->strs = strs;
    size_t *lens = realloc(in->lens, cap * sizeof(*lens));
    if (lens == NULL)
        return -1;
    in->lens = lens;
    uint32_t *refs = realloc(in->refs, cap * sizeof(*refs));
    if (refs == NULL)
        return -1;
    in->refs = refs;
    uint32_t *free_ids = realloc(in->free_ids, cap * sizeof(*free_ids));
    if (free_ids == NULL)
        return -1;
    in->free_ids = free_ids;
    in->cap = cap;
    if (in->n == 0) {
        in->strs[0] = NULL;
        in->lens[0] = 0;
        in->refs[0] = 0;
        in->n = 1;
    }
    return 0;
}

uint32_t
intern_get(struct intern *in, const char *s, size_t len)
{
    if (in->nslots) {
        for (size_t k = intern_slot(in, s, len);; k = (k + 1) & (in->nslots - 1)) {
            uint32_t id = in->slots[k];
            if (id == 0)
                break;
            if (in->lens[id] == len && memcmp(in->strs[id], s, len) == 0) {
                in->refs[id]++;
                return id;
            }
        }
    }
    if ((in->live + 1) * 2 > in->nslots && intern_grow_slots(in) < 0)
        return 0;
    if (in->nfree == 0 && in->n >= in->cap && intern_grow_ids(in) < 0)
        return 0;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, s, len);
    copy[len] = '\0';
    uint32_t id = in->nfree ? in->free_ids[--in->nfree] : in->n++;
    in->strs[id] = copy;
    in->lens[id] = len;
    in->refs[id] = 1;
    size_t k = intern_slot(in, s, len);
    while (in->slots[k])
        k = (k + 1) & (in->nslots - 1);
    in->slots[k] = id;
    in->live++;
    return id;
}

uint32_t
intern_lookup(const struct intern *in, const char *s, size_t len)
{
    if (in->nslots == 0)
        return 0;
    for (size_t k = intern_slot(in, s, len);; k = (k + 1) & (in->nslots - 1)) {
        uint32_t id = in->slots[k];
        if (id == 0)
            return 0;
        if (in->lens[id] == len && memcmp(in->strs[id], s, len) == 0)
            return id;
    }
}

void
intern_ref(struct intern *in, uint32_t id)
{
    if (id != 0 && id < in->n && in->refs[id] > 0)
        in->refs[id]++;
}

void
intern_put(struct intern *in, uint32_t id)
{
    if (id == 0 || id >= in->n || in->refs[id] == 0)
        return;
    if (--in->refs[id] > 0)
        return;
    size_t mask = in->nslots - 1;
    size_t i = intern_slot(in, in->strs[id], in->lens[id]);
    while (in->slots[i] != id)
        i = (i + 1) & mask;
    in->slots[i] = 0;
    for (size_t j = (i + 1) & mask; in->slots[j]; j = (j + 1) & mask) {
        uint32_t m = in->slots[j];
        size_t home = intern_slot(in, in->strs[m], in->lens[m]);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            in->slots[i] = m;
            in->slots[j] = 0;
            i = j;
        }
    }
    free(in->strs[id]);
    in->strs[id] = NULL;
    in->lens[id] = 0;
    in->free_ids[in->nfree++] = id;
    in->live--;
}

const char *
intern_str(const struct intern *in, uint32_t id)
{
    if (id == 0 || id >= in->n)
        return NULL;
    return in->strs[id];
}
