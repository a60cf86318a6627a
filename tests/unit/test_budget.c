/* SPDX-License-Identifier: Apache-2.0 */
/* Named byte budgets: the meter's hard limit and refusal counter, buffers grown under a
 * meter (charged exactly their capacity, given back when freed), the registry's checks
 * and totals; and the daemon's list (memory.c) over real parts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <uv.h>

#include "budget.h"
#include "buf.h"
#include "error.h"
#include "http/server.h"
#include "ingest/pool.h"
#include "ingest/udp.h"
#include "memory.h"
#include "pipeline.h"
#include "sampler/decision.h"
#include "stats.h"
#include "trace/store.h"

static void test_budget_meter_take_give(void **state)
{
    (void)state;
    struct budget_meter m;
    budget_meter_init(&m, 100);
    assert_true(budget_meter_take(&m, 60));
    assert_true(budget_meter_take(&m, 40));
    assert_int_equal(budget_meter_room(&m), 0);
    assert_false(budget_meter_take(&m, 1)); /* never past the limit */
    assert_int_equal(budget_meter_used(&m), 100);
    assert_int_equal(budget_meter_refused(&m), 1);
    budget_meter_give(&m, 30);
    assert_int_equal(budget_meter_room(&m), 30);
    assert_false(budget_meter_take(&m, 31));
    assert_true(budget_meter_take(&m, 30));
    budget_meter_give(&m, 1000); /* more than held: clamps at zero */
    assert_int_equal(budget_meter_used(&m), 0);
    assert_int_equal(budget_meter_refused(&m), 2);
    /* A bulk user leaves keep bytes free; a small one may take them. */
    assert_true(budget_meter_take_keep(&m, 50, 40));
    assert_false(budget_meter_take_keep(&m, 20, 40));
    assert_int_equal(budget_meter_refused(&m), 3);
    assert_true(budget_meter_take(&m, 20));
    assert_false(budget_meter_take_keep(&m, 0, 31));
    assert_true(budget_meter_take_keep(&m, 0, 30));
}

static void test_budget_buf_reserve_charges_capacity(void **state)
{
    (void)state;
    struct budget_meter m;
    budget_meter_init(&m, 4096);
    struct buf b;
    buf_init(&b, 10000);
    /* Doubling as buf.c does, from 256. */
    assert_int_equal(budget_buf_reserve(&m, &b, 10, false, 0), 0);
    assert_int_equal(b.cap, 256);
    assert_int_equal(budget_meter_used(&m), 256);
    assert_int_equal(buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(budget_buf_reserve(&m, &b, 300, false, 0), 0);
    assert_int_equal(b.cap, 512);
    assert_int_equal(budget_meter_used(&m), 512);
    /* Room already there: nothing charged. */
    assert_int_equal(budget_buf_reserve(&m, &b, 5, false, 0), 0);
    assert_int_equal(budget_meter_used(&m), 512);
    /* Exact: the capacity is what is needed, NUL included. */
    assert_int_equal(budget_buf_reserve(&m, &b, 3000, true, 0), 0);
    assert_int_equal(b.cap, 3011);
    assert_int_equal(budget_meter_used(&m), 3011);
    /* Past the budget: refused, the buffer unchanged and still usable. */
    assert_int_equal(budget_buf_reserve(&m, &b, 5000, true, 0), XRAY_EFULL);
    assert_int_equal(b.cap, 3011);
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, "0123456789", 10);
    assert_int_equal(budget_meter_refused(&m), 1);
    /* Past the buffer's own maximum: its error, nothing charged or counted. */
    assert_int_equal(budget_buf_reserve(&m, &b, 20000, false, 0), XRAY_ETOOBIG);
    assert_int_equal(budget_meter_refused(&m), 1);
    budget_buf_free(&m, &b);
    assert_int_equal(budget_meter_used(&m), 0);
    assert_null(b.data);
    assert_int_equal(b.max, 10000);
}

static void test_budget_buf_reserve_caps_at_max(void **state)
{
    (void)state;
    struct budget_meter m;
    budget_meter_init(&m, 1 << 20);
    struct buf b;
    buf_init(&b, 1000);
    assert_int_equal(budget_buf_reserve(&m, &b, 600, false, 0), 0);
    assert_int_equal(b.cap, 1001); /* doubling stops at max + 1, as buf.c's does */
    assert_int_equal(budget_meter_used(&m), 1001);
    assert_int_equal(buf_append(&b, "x", 1), 0);
    budget_buf_free(&m, &b);
    /* Without a meter it is plain buf_reserve. */
    assert_int_equal(budget_buf_reserve(NULL, &b, 600, false, 0), 0);
    assert_int_equal(b.cap, 1001);
    budget_buf_free(NULL, &b);
    assert_int_equal(budget_meter_used(&m), 0);
}

static size_t used_five(const void *ctx)
{
    (void)ctx;
    return 5;
}

static uint64_t refused_of(const void *ctx)
{
    return *(const uint64_t *)ctx;
}

static void test_budgets_add_find_totals(void **state)
{
    (void)state;
    struct budgets bs;
    uint64_t drops = 7, other = 9;
    budgets_init(&bs);
    assert_int_equal(budgets_add(&bs, &(struct budget){.name = "buffer",
                                                       .limit = 10,
                                                       .used = used_five,
                                                       .refused = refused_of,
                                                       .ctx = &drops}),
                     0);
    assert_int_equal(budgets_add(&bs, &(struct budget){.name = "udp_slab", .limit = 7}), 0);
    assert_int_equal(budgets_add(&bs, &(struct budget){.name = "store",
                                                       .limit = 100,
                                                       .used = used_five,
                                                       .refused = refused_of,
                                                       .ctx = &drops,
                                                       .refused_ctx = &other}),
                     0);
    assert_int_equal(bs.count, 3);
    assert_int_equal(budgets_limit_total(&bs), 117);
    assert_int_equal(budgets_used_total(&bs), 17); /* a fixed entry uses its limit */
    const struct budget *b = budgets_find(&bs, "buffer");
    assert_non_null(b);
    assert_int_equal(budget_used(b), 5);
    assert_int_equal(budget_refused(b), 7);
    assert_int_equal(budget_refused(budgets_find(&bs, "store")), 9);
    assert_int_equal(budget_refused(budgets_find(&bs, "udp_slab")), 0);
    assert_null(budgets_find(&bs, "nope"));

    /* Names are unique, short and [a-z0-9_]: they become JSON keys and labels. */
    assert_int_equal(budgets_add(&bs, &(struct budget){.name = "buffer", .limit = 1}), -EINVAL);
    assert_int_equal(budgets_add(&bs, &(struct budget){.name = "Buffer", .limit = 1}), -EINVAL);
    assert_int_equal(budgets_add(&bs, &(struct budget){.name = "a\"b", .limit = 1}), -EINVAL);
    assert_int_equal(budgets_add(&bs, &(struct budget){.name = "", .limit = 1}), -EINVAL);
    assert_int_equal(budgets_add(&bs, &(struct budget){.limit = 1}), -EINVAL);
    assert_int_equal(budgets_add(&bs, &(struct budget){.name = "abcdefghijklmnopqrst"}), -EINVAL);
    assert_int_equal(budgets_add(&bs, &(struct budget){.name = "abcdefghijklmnopqrs"}), 0);
    char names[BUDGET_MAX][16];
    int rc = 0;
    for (int i = 0; rc == 0; i++) {
        snprintf(names[i % BUDGET_MAX], sizeof(names[0]), "n%d", i);
        rc = budgets_add(&bs, &(struct budget){.name = names[i % BUDGET_MAX]});
    }
    assert_int_equal(rc, -ENOSPC);
    assert_int_equal(bs.count, BUDGET_MAX);
}

/* The daemon's list over real parts: what each entry reads, and the fixed sizes. */
static void test_memory_register(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct stats st;
    memset(&st, 0, sizeof(st));
    struct pool *pool = pool_create(1 << 20);
    struct store *store = store_create(2 << 20);
    struct http_server *http =
        http_server_create(&loop, &(struct http_server_limits){.max_memory_bytes = 3 << 20});
    struct decision *dec = decision_create(&(struct decision_options){.capacity = 1024}, &st);
    assert_non_null(dec);
    assert_non_null(pool);
    assert_non_null(store);
    assert_non_null(http);
    struct pipeline *pl = pipeline_create(&st);
    assert_non_null(pl);
    pipeline_set_store(pl, store);
    struct budgets bs;
    budgets_init(&bs);
    struct memory_parts p = {.pool = pool,
                             .stats = &st,
                             .worker_capacity = 8192,
                             .udp = true,
                             .pipeline = pl,
                             .http = http,
                             .concurrency = 8,
                             .decision = dec};
    assert_int_equal(memory_register(&bs, &p), 0);
    /* No HTTP client (the local upstream): no upload or client entries. */
    assert_null(budgets_find(&bs, "upload"));
    assert_null(budgets_find(&bs, "http_client"));

    const struct budget *buffer = budgets_find(&bs, "buffer");
    assert_non_null(buffer);
    assert_int_equal(buffer->limit, 1 << 20);
    assert_string_equal(buffer->setting, "--buffer-memory");
    struct doc *d = pool_alloc(pool, "{}", 2, 0);
    assert_int_equal(budget_used(buffer), pool_doc_bytes(2));
    stats_add(&st.spillover, 3);
    assert_int_equal(budget_refused(buffer), 3);
    pool_free(pool, d);
    assert_int_equal(budget_used(buffer), 0);

    const struct budget *w = budgets_find(&bs, "worker");
    assert_non_null(w);
    /* 8192 + 16384 ring slots and the scanner's view. */
    assert_true(w->limit > (8192u + 16384u) * sizeof(void *));
    assert_int_equal(w->limit, memory_worker_bytes(8192));
    assert_int_equal(budget_used(w), w->limit);
    assert_int_equal(budgets_find(&bs, "udp")->limit, (size_t)UDP_SLOTS * UDP_SLOT_BYTES);

    const struct budget *h = budgets_find(&bs, "http_server");
    assert_non_null(h);
    assert_int_equal(h->limit, 3 << 20);
    assert_string_equal(h->setting, "--http-memory");
    assert_int_equal(budget_used(h), 0);

    const struct budget *s = budgets_find(&bs, "store");
    assert_non_null(s);
    assert_int_equal(s->limit, 2 << 20);
    assert_true(budget_used(s) > 0); /* its index is allocated up front */

    const struct budget *dd = budgets_find(&bs, "sampling_decisions");
    assert_non_null(dd);
    assert_int_equal(dd->limit, 1024 * 24);
    assert_int_equal(budget_used(dd), 0);
    stats_add(&st.decisions_evicted, 2);
    assert_int_equal(budget_refused(dd), 2);

    assert_int_equal(memory_upload_bytes(8), 8u * 2 * 1024 * 1024);
    assert_int_equal(memory_upload_bytes(1000), 64u * 2 * 1024 * 1024); /* held to 64 */
    assert_int_equal(memory_http_client_bytes(8),
                     (8u + 64 + 2) * (1024 + 32) * 1024 + 16 * 96 * 1024);

    http_server_close(http, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    decision_destroy(dec);
    pipeline_destroy(pl);
    store_destroy(store);
    pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_meter_take_give),
        cmocka_unit_test(test_budget_buf_reserve_charges_capacity),
        cmocka_unit_test(test_budget_buf_reserve_caps_at_max),
        cmocka_unit_test(test_budgets_add_find_totals),
        cmocka_unit_test(test_memory_register),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
