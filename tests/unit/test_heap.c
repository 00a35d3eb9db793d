/* Unit tests for the indexed min-heap: randomised against a plain array
 * reference over 100k operations (insert, cancel, re-key, pop). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "slawatch/heap.h"

#define NODES 2000
#define OPS 100000

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void
test_empty(void **state)
{
    (void)state;
    struct heap h;
    heap_init(&h);
    assert_null(heap_peek(&h));
    assert_null(heap_pop(&h));
    struct heap_node n;
    heap_node_init(&n);
    heap_remove(&h, &n); /* not queued: no-op */
    assert_false(heap_queued(&n));
    heap_free(&h);
}

static void
test_order_with_duplicates(void **state)
{
    (void)state;
    struct heap h;
    struct heap_node n[64];
    heap_init(&h);
    for (int i = 0; i < 64; i++) {
        heap_node_init(&n[i]);
        assert_int_equal(heap_set(&h, &n[i], (i * 37) % 16), 0);
    }
    assert_true(heap_check(&h));
    int64_t last = INT64_MIN;
    for (int i = 0; i < 64; i++) {
        struct heap_node *top = heap_pop(&h);
        assert_non_null(top);
        assert_true(top->key >= last);
        assert_false(heap_queued(top));
        last = top->key;
    }
    assert_null(heap_pop(&h));
    heap_free(&h);
}

/* Reference: an array of keys with a queued flag, minimum by linear scan. */
static void
test_random_against_reference(void **state)
{
    (void)state;
    static struct heap_node nodes[NODES];
    static int64_t ref_key[NODES];
    static int ref_in[NODES];
    struct heap h;
    int count = 0;

    heap_init(&h);
    for (int i = 0; i < NODES; i++) {
        heap_node_init(&nodes[i]);
        ref_in[i] = 0;
    }
    for (int op = 0; op < OPS; op++) {
        int i = (int)(rng() % NODES);
        int64_t key = (int64_t)(rng() % 100000) - 50000;
        switch (rng() % 4) {
        case 0: /* insert or re-key */
        case 1:
            assert_int_equal(heap_set(&h, &nodes[i], key), 0);
            if (!ref_in[i])
                count++;
            ref_in[i] = 1;
            ref_key[i] = key;
            break;
        case 2: /* cancel */
            heap_remove(&h, &nodes[i]);
            if (ref_in[i])
                count--;
            ref_in[i] = 0;
            break;
        case 3: { /* pop the minimum */
            int64_t min = INT64_MAX;
            for (int k = 0; k < NODES; k++)
                if (ref_in[k] && ref_key[k] < min)
                    min = ref_key[k];
            struct heap_node *top = heap_pop(&h);
            if (count == 0) {
                assert_null(top);
                break;
            }
            assert_non_null(top);
            assert_int_equal(top->key, min);
            int k = (int)(top - nodes);
            assert_true(ref_in[k]);
            assert_int_equal(ref_key[k], min);
            ref_in[k] = 0;
            count--;
            break;
        }
        }
        assert_int_equal((int)h.n, count);
        for (int k = 0; k < NODES; k += 397)
            assert_int_equal(heap_queued(&nodes[k]), ref_in[k]);
        if (op % 1000 == 0)
            assert_true(heap_check(&h));
    }
    assert_true(heap_check(&h));
    /* Drain: keys come out sorted. */
    int64_t last = INT64_MIN;
    struct heap_node *top;
    while ((top = heap_pop(&h)) != NULL) {
        assert_true(top->key >= last);
        last = top->key;
        count--;
    }
    assert_int_equal(count, 0);
    heap_free(&h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_order_with_duplicates),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
