/* SPDX-License-Identifier: Apache-2.0 */
/* The SPSC ring: capacity rounding, full and empty, FIFO order across wrap-around,
 * and a producer and a consumer thread passing a million items in order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>

#include "queue.h"

#define ITEM(i) ((void *)(uintptr_t)(i))

/* How many pushes the queue takes before refusing. */
static size_t fill(struct queue *q)
{
    size_t n = 0;
    while (queue_push(q, ITEM(n + 1)))
        n++;
    return n;
}

static void test_queue_init_capacity_rounding(void **state)
{
    (void)state;
    static const struct {
        size_t ask, want;
    } cases[] = {{2, 2}, {3, 4}, {5, 8}, {8, 8}, {9, 16}, {1000, 1024}, {1024, 1024}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct queue q;
        assert_int_equal(queue_init(&q, cases[i].ask), 0);
        assert_int_equal(q.mask + 1, cases[i].want);
        assert_int_equal(fill(&q), cases[i].want);
        assert_int_equal(queue_depth(&q), cases[i].want);
        queue_destroy(&q);
    }
    /* The smallest queues still hold what was asked for. */
    for (size_t ask = 0; ask <= 1; ask++) {
        struct queue q;
        assert_int_equal(queue_init(&q, ask), 0);
        assert_true(fill(&q) >= 1);
        queue_destroy(&q);
    }
    /* A capacity that cannot be rounded up fails instead of spinning. */
    struct queue q;
    assert_int_equal(queue_init(&q, SIZE_MAX), -ENOMEM);
    assert_int_equal(queue_init(&q, SIZE_MAX / 2 + 2), -ENOMEM);
}

static void test_queue_push_full_pop_empty(void **state)
{
    (void)state;
    struct queue q;
    assert_int_equal(queue_init(&q, 4), 0);
    assert_null(queue_pop(&q));
    assert_int_equal(queue_depth(&q), 0);
    for (int i = 1; i <= 4; i++)
        assert_true(queue_push(&q, ITEM(i)));
    assert_false(queue_push(&q, ITEM(5)));
    assert_int_equal(queue_depth(&q), 4);
    for (int i = 1; i <= 4; i++)
        assert_ptr_equal(queue_pop(&q), ITEM(i));
    assert_null(queue_pop(&q));
    assert_int_equal(queue_depth(&q), 0);
    /* One slot freed is one push accepted. */
    for (int i = 1; i <= 4; i++)
        assert_true(queue_push(&q, ITEM(i)));
    assert_ptr_equal(queue_pop(&q), ITEM(1));
    assert_true(queue_push(&q, ITEM(5)));
    assert_false(queue_push(&q, ITEM(6)));
    queue_destroy(&q);
}

static void test_queue_pop_order_wraps(void **state)
{
    (void)state;
    struct queue q;
    assert_int_equal(queue_init(&q, 8), 0);
    size_t next_in = 1, next_out = 1;
    /* Uneven bursts move head and tail around the ring many times. */
    for (int round = 0; round < 1000; round++) {
        size_t burst = (size_t)(round % 7) + 1;
        for (size_t i = 0; i < burst && queue_push(&q, ITEM(next_in)); i++)
            next_in++;
        size_t take = (size_t)(round % 5) + 1;
        for (size_t i = 0; i < take; i++) {
            void *item = queue_pop(&q);
            if (item == NULL)
                break;
            assert_ptr_equal(item, ITEM(next_out));
            next_out++;
        }
        assert_int_equal(queue_depth(&q), next_in - next_out);
    }
    void *item;
    while ((item = queue_pop(&q)) != NULL)
        assert_ptr_equal(item, ITEM(next_out++));
    assert_int_equal(next_in, next_out);
    assert_true(next_in > 1000);
    queue_destroy(&q);
}

#define THREAD_ITEMS 1000000u

struct run {
    struct queue q;
    size_t bad; /* first out-of-order position + 1, 0 if none */
    size_t got;
};

static void *producer(void *arg)
{
    struct run *r = arg;
    for (size_t i = 1; i <= THREAD_ITEMS; i++)
        while (!queue_push(&r->q, ITEM(i)))
            sched_yield();
    return NULL;
}

static void *consumer(void *arg)
{
    struct run *r = arg;
    size_t want = 1;
    while (want <= THREAD_ITEMS) {
        void *item = queue_pop(&r->q);
        if (item == NULL) {
            sched_yield();
            continue;
        }
        if (item != ITEM(want) && r->bad == 0)
            r->bad = want;
        want++;
    }
    r->got = want - 1;
    return NULL;
}

static void test_queue_threads_in_order(void **state)
{
    (void)state;
    struct run r = {.bad = 0, .got = 0};
    assert_int_equal(queue_init(&r.q, 1024), 0);
    pthread_t p, c;
    assert_int_equal(pthread_create(&c, NULL, consumer, &r), 0);
    assert_int_equal(pthread_create(&p, NULL, producer, &r), 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.got, THREAD_ITEMS);
    assert_null(queue_pop(&r.q));
    queue_destroy(&r.q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_init_capacity_rounding),
        cmocka_unit_test(test_queue_push_full_pop_empty),
        cmocka_unit_test(test_queue_pop_order_wraps),
        cmocka_unit_test(test_queue_threads_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
