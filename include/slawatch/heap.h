/*
 * heap.h - indexed binary min-heap of deadlines. Nodes are embedded in their
 * owners (struct sla_clock) and remember their own position, so insert,
 * cancel and re-key of any node are O(log n) and nothing is ever scanned.
 * Pure core: no I/O, no clocks.
 */
#ifndef SLAWATCH_HEAP_H
#define SLAWATCH_HEAP_H

#include <stdbool.h>
#include <stdint.h>

#include "slawatch/util.h"

#define HEAP_NONE UINT32_MAX

struct heap_node {
    int64_t key;        /* when the node is due */
    uint32_t idx;       /* position in the heap, HEAP_NONE when not queued */
    uint32_t aux;       /* the owner's (it fills the struct's padding); the
                           heap never reads or writes it */
};

struct heap {
    struct heap_node **v;
    uint32_t n;
    uint32_t cap;
};

static inline void
heap_node_init(struct heap_node *node)
{
    node->key = 0;
    node->idx = HEAP_NONE;
    node->aux = 0;
}

static inline bool
heap_queued(const struct heap_node *node)
{
    return node->idx != HEAP_NONE;
}

void heap_init(struct heap *h);
/* Frees the array; never touches the nodes (their owners may be gone). */
void heap_free(struct heap *h);

/* Queues `node` with `key`; a node already queued is re-keyed instead.
 * Returns -1 only when the array cannot grow (allocation failure), leaving
 * the heap unchanged. */
int heap_set(struct heap *h, struct heap_node *node, int64_t key) MUSTCHECK;

/* Makes room for `extra` more nodes so that the next heap_set() calls on
 * new nodes cannot fail. Returns -1 on allocation failure. */
int heap_reserve(struct heap *h, uint32_t extra) MUSTCHECK;

/* Removes `node` if queued; a no-op otherwise. Never fails. */
void heap_remove(struct heap *h, struct heap_node *node);

/* The earliest node, or NULL when empty. */
static inline struct heap_node *
heap_peek(const struct heap *h)
{
    return h->n ? h->v[0] : NULL;
}

/* Removes and returns the earliest node, or NULL when empty. */
struct heap_node *heap_pop(struct heap *h);

/* Checks the heap property and every index; for tests. */
bool heap_check(const struct heap *h);

#endif
