/*
 * heap.c - the indexed binary min-heap behind every SLA timer. Owns only
 * the pointer array; the nodes belong to their clocks. Must stay O(log n)
 * per operation and must never touch a node it was not given.
 */
#include "slawatch/heap.h"

#include <stdlib.h>

void
heap_init(struct heap *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
}

/* Frees the array only: the nodes belong to their owners, which may
 * already have freed them (shutdown frees owners and heap in any order). */
void
heap_free(struct heap *h)
{
    free(h->v);
    heap_init(h);
}

static inline void
heap_place(struct heap *h, uint32_t i, struct heap_node *node)
{
    h->v[i] = node;
    node->idx = i;
}

static void
sift_up(struct heap *h, uint32_t i)
{
    struct heap_node *node = h->v[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (h->v[parent]->key <= node->key)
            break;
        heap_place(h, i, h->v[parent]);
        i = parent;
    }
    heap_place(h, i, node);
}

static void
sift_down(struct heap *h, uint32_t i)
{
    struct heap_node *node = h->v[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && h->v[child + 1]->key < h->v[child]->key)
            child++;
        if (node->key <= h->v[child]->key)
            break;
        heap_place(h, i, h->v[child]);
        i = child;
    }
    heap_place(h, i, node);
}

int
heap_reserve(struct heap *h, uint32_t extra)
{
    if (extra > UINT32_MAX - h->n)
        return -1;
    uint32_t want = h->n + extra;
    if (want <= h->cap)
        return 0;
    uint32_t cap = h->cap ? h->cap : 1024;
    while (cap < want) {
        if (cap > UINT32_MAX / 2)
            return -1;
        cap *= 2;
    }
    struct heap_node **v = realloc(h->v, (size_t)cap * sizeof(*v));
    if (v == NULL)
        return -1;
    h->v = v;
    h->cap = cap;
    return 0;
}

int
heap_set(struct heap *h, struct heap_node *node, int64_t key)
{
    if (heap_queued(node)) {
        int64_t old = node->key;
        node->key = key;
        if (key < old)
            sift_up(h, node->idx);
        else if (key > old)
            sift_down(h, node->idx);
        return 0;
    }
    if (h->n == h->cap && heap_reserve(h, 1) < 0)
        return -1;
    node->key = key;
    heap_place(h, h->n++, node);
    sift_up(h, node->idx);
    return 0;
}

void
heap_remove(struct heap *h, struct heap_node *node)
{
    if (!heap_queued(node))
        return;
    uint32_t i = node->idx;
    node->idx = HEAP_NONE;
    h->n--;
    if (i == h->n)
        return;
    struct heap_node *last = h->v[h->n];
    heap_place(h, i, last);
    if (i > 0 && h->v[(i - 1) / 2]->key > last->key)
        sift_up(h, i);
    else
        sift_down(h, i);
}

struct heap_node *
heap_pop(struct heap *h)
{
    struct heap_node *top = heap_peek(h);
    if (top)
        heap_remove(h, top);
    return top;
}

bool
heap_check(const struct heap *h)
{
    for (uint32_t i = 0; i < h->n; i++) {
        if (h->v[i]->idx != i)
            return false;
        if (i > 0 && h->v[(i - 1) / 2]->key > h->v[i]->key)
            return false;
    }
    return true;
}
