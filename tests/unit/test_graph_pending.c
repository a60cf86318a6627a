/* SPDX-License-Identifier: Apache-2.0 */
/* The pending callers' ring and index: order, finding, consuming, and the lossy index
 * when ids collide (with a known seed, so collisions can be chosen), across the ring's
 * wrap and the 32-bit wrap of sequence numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "graph/graph_pending.h"

/* 32 halves and an index of 128 slots. */
#define BYTES (128 * sizeof(uint32_t) + 32 * sizeof(struct graph_pending_half))

static struct graph_pending_half half(uint64_t id, uint64_t arrived)
{
    return (struct graph_pending_half){.id = id, .arrived_ms = arrived};
}

/* The n-th id after from whose home slot is home. */
static uint64_t colliding(const struct graph_pending *p, size_t home, uint64_t *from)
{
    while (graph_pending_home(p, ++*from) != home)
        ;
    return *from;
}

static void test_graph_pending_init(void **state)
{
    (void)state;
    struct graph_pending p;
    assert_int_equal(graph_pending_init(&p, BYTES, 7), 0);
    assert_int_equal(p.cap, 32);
    assert_int_equal(p.imask, 127);
    assert_int_equal(graph_pending_bytes(&p), BYTES);
    assert_null(graph_pending_head(&p));
    graph_pending_destroy(&p);

    /* A quarter of the smallest graph: 1024 halves (48 bytes each on LP64). */
    assert_int_equal(sizeof(struct graph_pending_half), 48);
    assert_int_equal(graph_pending_init(&p, 64 * 1024, 7), 0);
    assert_int_equal(p.cap, 1024);
    assert_int_equal(p.imask + 1, 4096);
    assert_true(graph_pending_bytes(&p) <= 64 * 1024);
    graph_pending_destroy(&p);

    /* Too small for anything still holds one half. */
    assert_int_equal(graph_pending_init(&p, 10, 7), 0);
    assert_int_equal(p.cap, 1);
    graph_pending_destroy(&p);
}

/* Oldest first; full at cap; consumed halves stay in the ring, dead. */
static void test_graph_pending_ring(void **state)
{
    (void)state;
    struct graph_pending p;
    assert_int_equal(graph_pending_init(&p, BYTES, 7), 0);
    for (uint64_t i = 0; i < 32; i++) {
        assert_false(graph_pending_full(&p));
        struct graph_pending_half h = half(100 + i, i);
        graph_pending_push(&p, &h);
    }
    assert_true(graph_pending_full(&p));
    assert_int_equal(p.live, 32);
    uint32_t *entry;
    struct graph_pending_half *h = graph_pending_find(&p, 105, &entry);
    assert_non_null(h);
    assert_int_equal(h->arrived_ms, 5);
    assert_true(h->flags & GRAPH_PENDING_LIVE);
    graph_pending_consume(&p, h, entry);
    assert_null(graph_pending_find(&p, 105, &entry));
    assert_int_equal(p.live, 31);
    assert_null(graph_pending_find(&p, 99, &entry)); /* never there */
    for (uint64_t i = 0; i < 32; i++) {
        h = graph_pending_head(&p);
        assert_int_equal(h->id, 100 + i);
        assert_int_equal((h->flags & GRAPH_PENDING_LIVE) != 0, i != 5);
        graph_pending_pop(&p);
        assert_null(graph_pending_find(&p, 100 + i, &entry)); /* gone with the head */
    }
    assert_null(graph_pending_head(&p));
    assert_int_equal(p.live, 0);

    /* Round and round: 1000 halves through a ring of 32, each found while in it. */
    for (uint64_t i = 0; i < 1000; i++) {
        if (graph_pending_full(&p))
            graph_pending_pop(&p);
        struct graph_pending_half n = half(0x1000 + i * 7919, i);
        graph_pending_push(&p, &n);
        h = graph_pending_find(&p, 0x1000 + i * 7919, &entry);
        assert_non_null(h);
        assert_int_equal(h->arrived_ms, i);
        if (i >= 31)
            assert_non_null(graph_pending_find(&p, 0x1000 + (i - 31) * 7919, &entry));
        if (i >= 32)
            assert_null(graph_pending_find(&p, 0x1000 + (i - 32) * 7919, &entry));
    }
    assert_int_equal(p.unindexed, 0);
    graph_pending_destroy(&p);
}

/* More ids of one home slot than probes: the first PROBES fit, the next is counted and
 * cannot be found (it still waits in the ring). A consumed or expired half frees its
 * slot. */
static void test_graph_pending_collisions(void **state)
{
    (void)state;
    enum { K = GRAPH_PENDING_PROBES };
    assert_int_equal(K, 16);
    struct graph_pending p;
    assert_int_equal(graph_pending_init(&p, BYTES, 7), 0);
    uint64_t next = 0, ids[K + 4];
    size_t home = graph_pending_home(&p, 1);
    for (size_t i = 0; i < K + 4; i++)
        ids[i] = colliding(&p, home, &next);
    for (size_t i = 0; i <= K; i++) {
        struct graph_pending_half h = half(ids[i], i);
        graph_pending_push(&p, &h);
    }
    assert_int_equal(p.unindexed, 1);
    assert_int_equal(p.live, K + 1);
    uint32_t *entry;
    for (size_t i = 0; i < K; i++) {
        struct graph_pending_half *h = graph_pending_find(&p, ids[i], &entry);
        assert_non_null(h);
        assert_int_equal(h->arrived_ms, i);
        assert_ptr_equal(entry, &p.index[(home + i) & p.imask]);
    }
    assert_null(graph_pending_find(&p, ids[K], &entry));
    assert_int_equal(graph_pending_head(&p)->id, ids[0]);

    /* Consuming the third frees its slot for the next. */
    struct graph_pending_half *h = graph_pending_find(&p, ids[2], &entry);
    graph_pending_consume(&p, h, entry);
    struct graph_pending_half n = half(ids[K + 1], K + 1);
    graph_pending_push(&p, &n);
    assert_int_equal(p.unindexed, 1);
    assert_non_null(h = graph_pending_find(&p, ids[K + 1], &entry));
    assert_int_equal(h->arrived_ms, K + 1);
    assert_ptr_equal(entry, &p.index[(home + 2) & p.imask]);
    assert_null(graph_pending_find(&p, ids[2], &entry));

    /* The head leaving makes its slot stale: the next takes it. */
    graph_pending_pop(&p);
    n = half(ids[K + 2], K + 2);
    graph_pending_push(&p, &n);
    assert_int_equal(p.unindexed, 1);
    assert_non_null(graph_pending_find(&p, ids[K + 2], &entry));
    assert_ptr_equal(entry, &p.index[home]);
    assert_null(graph_pending_find(&p, ids[0], &entry));

    /* Full again: the last is counted. */
    n = half(ids[K + 3], K + 3);
    graph_pending_push(&p, &n);
    assert_int_equal(p.unindexed, 2);
    assert_null(graph_pending_find(&p, ids[K + 3], &entry));
    for (size_t i = 3; i < K; i++)
        assert_non_null(graph_pending_find(&p, ids[i], &entry));
    graph_pending_destroy(&p);
}

/* Sequence numbers are compared in 32 bits: a ring that has run long enough to write
 * every index slot crosses their wrap finding every half. */
static void test_graph_pending_seq_wrap(void **state)
{
    (void)state;
    struct graph_pending p;
    assert_int_equal(graph_pending_init(&p, BYTES, 7), 0);
    p.head = p.tail = (1ull << 32) - 1000;
    uint32_t *entry;
    for (uint64_t i = 0; i < 1200; i++) {
        if (graph_pending_full(&p))
            graph_pending_pop(&p);
        struct graph_pending_half n = half(0x5000 + i, i);
        graph_pending_push(&p, &n);
        struct graph_pending_half *h = graph_pending_find(&p, 0x5000 + i, &entry);
        assert_non_null(h);
        assert_int_equal(h->arrived_ms, i);
    }
    assert_true(p.tail > 1ull << 32);
    for (uint64_t i = 1200 - 32; i < 1200; i++)
        assert_non_null(graph_pending_find(&p, 0x5000 + i, &entry));
    assert_null(graph_pending_find(&p, 0x5000 + 1200 - 33, &entry));
    assert_int_equal(p.unindexed, 0);
    graph_pending_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_pending_init),
        cmocka_unit_test(test_graph_pending_ring),
        cmocka_unit_test(test_graph_pending_collisions),
        cmocka_unit_test(test_graph_pending_seq_wrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
