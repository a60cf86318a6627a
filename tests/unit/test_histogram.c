/* SPDX-License-Identifier: Apache-2.0 */
/* X-Ray's duration histogram: one entry per distinct value, sorted, at most 100 entries
 * with the closest neighbours merged past that, the total count always exact. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "graph/histogram.h"

static void assert_sorted(const struct histogram *h)
{
    for (size_t i = 1; i < h->n; i++)
        assert_true(h->e[i - 1].ms < h->e[i].ms);
}

static void test_histogram_add_distinct_and_equal(void **state)
{
    (void)state;
    struct histogram h = {0};
    assert_int_equal(histogram_add(&h, 5, 1), 0);
    assert_int_equal(histogram_add(&h, 3, 1), 0);
    assert_int_equal(histogram_add(&h, 5, 1), 0);
    assert_int_equal(h.n, 2);
    assert_true(h.e[0].ms == 3.0f && h.e[0].count == 1);
    assert_true(h.e[1].ms == 5.0f && h.e[1].count == 2);
    assert_int_equal(histogram_total(&h), 3);
    assert_int_equal(histogram_bytes(&h), 4 * sizeof(struct histogram_entry));
    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(histogram_write(&h, &b), 0);
    assert_string_equal(b.data, "[{\"Value\":0.003,\"Count\":1},{\"Value\":0.005,\"Count\":2}]");
    buf_free(&b);
    histogram_free(&h);
    assert_int_equal(h.n, 0);
    assert_null(h.e);
}

static void test_histogram_merges_past_100(void **state)
{
    (void)state;
    struct histogram h = {0};
    for (int v = 1000; v >= 1; v--) /* descending: every insertion at the front */
        assert_int_equal(histogram_add(&h, v, 1), 0);
    assert_int_equal(h.n, GRAPH_HISTOGRAM_ENTRIES);
    assert_int_equal(histogram_total(&h), 1000);
    assert_sorted(&h);
    assert_true(h.e[0].ms >= 1.0f && h.e[h.n - 1].ms <= 1000.0f);
    assert_true(histogram_bytes(&h) <= HISTOGRAM_SLOTS * sizeof(struct histogram_entry));
    histogram_free(&h);
}

/* 1..100 ms fill it; 100.5 leaves one gap of 0.5, the smallest: those two merge into
 * their count-weighted mean. */
static void test_histogram_merges_closest_pair(void **state)
{
    (void)state;
    struct histogram h = {0};
    for (int v = 1; v <= 100; v++)
        assert_int_equal(histogram_add(&h, v, 1), 0);
    assert_int_equal(h.n, 100);
    assert_int_equal(histogram_add(&h, 100.5, 3), 0);
    assert_int_equal(h.n, 100);
    assert_true(h.e[98].ms == 99.0f);
    assert_true(h.e[99].ms == 100.375f); /* (100 * 1 + 100.5 * 3) / 4 */
    assert_int_equal(h.e[99].count, 4);
    assert_int_equal(histogram_total(&h), 103);
    histogram_free(&h);
}

/* The straightforward rule, kept here as the reference: insert, then merge the first
 * closest pair of the 101 entries. */
struct ref {
    struct histogram_entry e[GRAPH_HISTOGRAM_ENTRIES + 1];
    size_t n;
};

static void ref_add(struct ref *r, float v, uint32_t count)
{
    size_t i = 0;
    while (i < r->n && r->e[i].ms < v)
        i++;
    if (i < r->n && r->e[i].ms == v) {
        r->e[i].count = r->e[i].count > UINT32_MAX - count ? UINT32_MAX : r->e[i].count + count;
        return;
    }
    memmove(&r->e[i + 1], &r->e[i], (r->n - i) * sizeof(r->e[0]));
    r->e[i] = (struct histogram_entry){v, count};
    if (++r->n <= GRAPH_HISTOGRAM_ENTRIES)
        return;
    size_t best = 0;
    float gap = r->e[1].ms - r->e[0].ms;
    for (size_t j = 1; j + 1 < r->n; j++)
        if (r->e[j + 1].ms - r->e[j].ms < gap) {
            gap = r->e[j + 1].ms - r->e[j].ms;
            best = j;
        }
    struct histogram_entry *a = &r->e[best], *b = &r->e[best + 1];
    double ca = a->count, cb = b->count;
    a->ms = (float)(((double)a->ms * ca + (double)b->ms * cb) / (ca + cb));
    a->count = a->count > UINT32_MAX - b->count ? UINT32_MAX : a->count + b->count;
    memmove(b, b + 1, (r->n - best - 2) * sizeof(*b));
    r->n--;
}

/* Random durations (many repeated, ties between gaps, fractions, insertions at both
 * ends): the full histogram's merge, with its closest pair remembered, gives the
 * reference's entries, bit for bit, after every insertion. */
static void test_histogram_same_as_reference(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 5; round++) {
        struct histogram h = {0};
        struct ref r = {.n = 0};
        for (int k = 0; k < 50000; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            double ms;
            switch (round) {
            case 0: /* a few hundred distinct values */
                ms = (double)(x % 997);
                break;
            case 1: /* a long tail */
                ms = (double)((x % 1000) * (x % 1000) / 50);
                break;
            case 2: /* evenly spaced: gaps tie everywhere */
                ms = (double)(2 * (x % 400));
                break;
            case 3: /* fractions, as merging histograms adds */
                ms = (double)(x % 100000) / 7.0;
                break;
            default: /* always a new maximum or minimum */
                ms = k % 2 ? 100000.0 + k : 100000.0 - k;
            }
            uint32_t count = 1 + (uint32_t)(x >> 60);
            assert_int_equal(histogram_add(&h, ms, count), 0);
            ref_add(&r, (float)ms, count);
            assert_int_equal(h.n, r.n);
            if (memcmp(h.e, r.e, r.n * sizeof(r.e[0])) != 0)
                fail_msg("round %d, insertion %d differs", round, k);
        }
        histogram_free(&h);
    }
}

static void test_histogram_merge_histograms(void **state)
{
    (void)state;
    struct histogram a = {0}, b = {0}, sum;
    struct histogram_entry slots[HISTOGRAM_SLOTS];
    for (int v = 0; v < 300; v++) {
        assert_int_equal(histogram_add(&a, 2 * v, 1), 0);
        assert_int_equal(histogram_add(&b, 2 * v + 1, 2), 0);
    }
    histogram_init_fixed(&sum, slots);
    assert_int_equal(histogram_merge(&sum, &a), 0);
    assert_int_equal(histogram_merge(&sum, &b), 0);
    assert_int_equal(sum.n, GRAPH_HISTOGRAM_ENTRIES);
    assert_int_equal(histogram_total(&sum), 900);
    assert_true(sum.e == slots); /* fixed storage is never reallocated */
    assert_sorted(&sum);
    histogram_free(&a);
    histogram_free(&b);
}

static void test_histogram_write_seconds(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1024);
    double v[] = {0, 0.25, 1700000040.0, 1700000040.5, 0.000001, -0.0, 1.1234567};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        assert_int_equal(histogram_write_seconds(&b, v[i]), 0);
        assert_int_equal(buf_append(&b, " ", 1), 0);
    }
    assert_string_equal(b.data, "0 0.25 1700000040 1700000040.5 0.000001 0 1.123457 ");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram_add_distinct_and_equal),
        cmocka_unit_test(test_histogram_merges_past_100),
        cmocka_unit_test(test_histogram_merges_closest_pair),
        cmocka_unit_test(test_histogram_same_as_reference),
        cmocka_unit_test(test_histogram_merge_histograms),
        cmocka_unit_test(test_histogram_write_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
