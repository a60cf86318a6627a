/* SPDX-License-Identifier: Apache-2.0 */
/* The worker and the pipeline together: documents go to the worker thread, are
 * scanned there, and come back on the loop with their verdict, ids and times. Then
 * the worker alone: its wake-ups under bursts with gaps, and holding when full. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "ingest/pool.h"
#include "pipeline.h"
#include "stats.h"
#include "worker.h"

#define N_VALID 1000

struct fixture {
    uv_loop_t loop;
    uv_timer_t watchdog;
    struct pool *pool;
    struct stats stats;
    struct pipeline *pipeline;
    struct worker worker;
    int back;
    int expected;
    int valid;
    int rejected_by[STATS_REJECT__COUNT];
    struct doc *last_valid;
    int order_errors;
    uint64_t next_seq;
};

static void on_closed(void *data)
{
    (void)data;
}

static void on_done(struct doc *doc, void *data)
{
    struct fixture *f = data;
    /* Documents come back in the order they went in: received_ms carries a sequence. */
    if (doc->received_ms != f->next_seq++)
        f->order_errors++;
    if (doc->reject < 0) {
        f->valid++;
        if (f->last_valid != NULL)
            pool_free(f->pool, f->last_valid);
        f->last_valid = doc;
    } else {
        f->rejected_by[doc->reject]++;
        pool_free(f->pool, doc);
    }
    if (++f->back == f->expected) {
        uv_timer_stop(&f->watchdog);
        worker_close(&f->worker, on_closed, f);
        uv_close((uv_handle_t *)&f->watchdog, NULL);
    }
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: documents did not come back from the worker");
}

static uint64_t seq;

static void submit(struct fixture *f, const char *text)
{
    struct doc *d = pool_alloc(f->pool, text, strlen(text), seq++);
    assert_non_null(d);
    assert_true(worker_submit(&f->worker, d));
    f->expected++;
}

static void test_pipeline_verdicts_round_trip(void **state)
{
    (void)state;
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    seq = 0;
    assert_int_equal(uv_loop_init(&f.loop), 0);
    f.pool = pool_create(64u << 20);
    f.pipeline = pipeline_create(&f.stats);
    f.worker.process = pipeline_process;
    f.worker.process_ctx = f.pipeline;
    f.worker.done = on_done;
    f.worker.done_data = &f;
    assert_int_equal(worker_start(&f.worker, &f.loop, 4096), 0);
    uv_timer_init(&f.loop, &f.watchdog);
    uv_timer_start(&f.watchdog, on_watchdog, 10000, 0);

    char text[512];
    for (int i = 0; i < N_VALID; i++) {
        snprintf(text, sizeof(text),
                 "{\"trace_id\":\"1-5759e988-bd862e3fe1be46a99427%04d\",\"id\":\"%016x\","
                 "\"name\":\"svc\",\"start_time\":1795304363.25,%s}",
                 i, i, i % 2 ? "\"end_time\":1795304364.5" : "\"in_progress\":true");
        submit(&f, text);
    }
    submit(&f, "not json");
    submit(&f, "{\"id\":\"0000000000000001\",\"start_time\":1,\"end_time\":2}"); /* no name */
    submit(&f,
           "{\"name\":\"x\",\"id\":\"a\",\"start_time\":1,\"end_time\":2,\"trace_id\":\"\xff\"}");

    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.back, N_VALID + 3);
    assert_int_equal(f.order_errors, 0);
    assert_int_equal(f.valid, N_VALID);
    assert_int_equal(f.rejected_by[STATS_REJECT_NOT_JSON], 1);
    assert_int_equal(f.rejected_by[STATS_REJECT_MISSING_FIELD], 1);
    assert_int_equal(f.rejected_by[STATS_REJECT_BAD_UTF8], 1);

    /* The last valid document: odd index, so complete, with its ids and times. */
    struct doc *d = f.last_valid;
    assert_string_equal(d->trace_id, "1-5759e988-bd862e3fe1be46a994270999");
    assert_string_equal(d->id, "00000000000003e7");
    assert_int_equal(d->flags & DOC_IN_PROGRESS, 0);
    assert_true(d->start_time == 1795304363.25);
    assert_true(d->end_time == 1795304364.5);
    pool_free(f.pool, d);

    assert_int_equal(pool_used_bytes(f.pool), 0);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    pipeline_destroy(f.pipeline);
    pool_destroy(f.pool);
}

static void test_pipeline_in_progress_and_subsegment_flags(void **state)
{
    (void)state;
    struct stats stats = {0};
    struct pipeline *p = pipeline_create(&stats);
    struct pool *pool = pool_create(1u << 20);
    const char *text =
        "{\"type\":\"subsegment\",\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\","
        "\"parent_id\":\"53995c3f42cd8ad8\",\"id\":\"1234567890abcdef\","
        "\"name\":\"child\",\"start_time\":10,\"in_progress\":true}";
    struct doc *d = pool_alloc(pool, text, strlen(text), 0);
    pipeline_process(d, p);
    assert_int_equal(d->reject, -1);
    assert_int_equal(d->flags, DOC_IN_PROGRESS | DOC_SUBSEGMENT);
    assert_true(d->end_time == 0);
    assert_string_equal(d->id, "1234567890abcdef");
    pool_free(pool, d);
    pool_destroy(pool);
    pipeline_destroy(p);
}

/* Ids longer than struct doc's fields, escaped or not, are cut and terminated. */
static void test_pipeline_long_ids_truncated(void **state)
{
    (void)state;
    struct stats stats = {0};
    struct pipeline *p = pipeline_create(&stats);
    struct pool *pool = pool_create(1u << 20);
    const char *text =
        "{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\\u0041AAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
        "\"id\":\"\\u00411234567890abcdefghijklmnopqrstuvwxyz\",\"name\":\"n\","
        "\"start_time\":1,\"end_time\":2}";
    struct doc *d = pool_alloc(pool, text, strlen(text), 0);
    pipeline_process(d, p);
    assert_int_equal(d->reject, -1);
    assert_int_equal(strlen(d->trace_id), sizeof(d->trace_id) - 1);
    assert_string_equal(d->trace_id, "1-5759e988-bd862e3fe1be46a994272793");
    assert_string_equal(d->id, "A1234567890abcde");
    pool_free(pool, d);
    pool_destroy(pool);
    pipeline_destroy(p);
}

/* --- the worker alone: wake-ups and backpressure --------------------------------- */

struct burst_rig {
    uv_loop_t loop;
    uv_timer_t watchdog;
    uv_timer_t feeder;
    struct pool *pool;
    struct worker worker;
    atomic_int processed; /* worker thread */
    int ticks;
    int sent;
    int back;
    int total;
    int order_errors;
    bool closed;
};

static bool rig_process(struct doc *doc, void *ctx)
{
    struct burst_rig *r = ctx;
    doc->reject = -1;
    atomic_fetch_add(&r->processed, 1);
    return true;
}

static void rig_closed(void *data)
{
    struct burst_rig *r = data;
    r->closed = true;
}

static void rig_done(struct doc *doc, void *data)
{
    struct burst_rig *r = data;
    if (doc->received_ms != (uint64_t)r->back)
        r->order_errors++;
    r->back++;
    pool_free(r->pool, doc);
    if (r->back == r->total) {
        uv_timer_stop(&r->watchdog);
        worker_close(&r->worker, rig_closed, r);
        uv_close((uv_handle_t *)&r->watchdog, NULL);
    }
}

static void rig_watchdog(uv_timer_t *t)
{
    struct burst_rig *r = container_of(t, struct burst_rig, watchdog);
    fail_msg("watchdog: %d of %d documents back, %d processed", r->back, r->total,
             atomic_load(&r->processed));
}

static void rig_submit(struct burst_rig *r)
{
    struct doc *d = pool_alloc(r->pool, "{}", 2, (uint64_t)r->sent);
    assert_non_null(d);
    assert_true(worker_submit(&r->worker, d));
    r->sent++;
}

static void rig_init(struct burst_rig *r, size_t capacity)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    r->pool = pool_create(16u << 20);
    r->worker.process = rig_process;
    r->worker.process_ctx = r;
    r->worker.done = rig_done;
    r->worker.done_data = r;
    assert_int_equal(worker_start(&r->worker, &r->loop, capacity), 0);
    uv_timer_init(&r->loop, &r->watchdog);
    uv_timer_start(&r->watchdog, rig_watchdog, 10000, 0);
}

static void rig_finish(struct burst_rig *r)
{
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_true(r->closed);
    assert_int_equal(r->back, r->total);
    assert_int_equal(atomic_load(&r->processed), r->total);
    assert_int_equal(r->order_errors, 0);
    assert_int_equal(pool_used_bytes(r->pool), 0);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    pool_destroy(r->pool);
}

/* Bursts of every size around the wake-up batch, some ticks with nothing: the gaps
 * are where a lost wake-up would leave documents stuck until the watchdog. */
static const int burst_sizes[] = {1, 0, 0, 2, 255, 256, 257, 0, 1, 0, 0, 0, 3, 511, 1, 0, 64, 1};
#define N_BURSTS ((int)(sizeof(burst_sizes) / sizeof(burst_sizes[0])))

static void rig_feed(uv_timer_t *t)
{
    struct burst_rig *r = container_of(t, struct burst_rig, feeder);
    int n = burst_sizes[r->ticks % N_BURSTS];
    for (int i = 0; i < n; i++)
        rig_submit(r);
    if (++r->ticks == 4 * N_BURSTS)
        uv_close((uv_handle_t *)&r->feeder, NULL);
}

static void test_worker_submit_bursts_with_gaps(void **state)
{
    (void)state;
    static struct burst_rig r;
    rig_init(&r, 1024);
    for (int i = 0; i < 4 * N_BURSTS; i++)
        r.total += burst_sizes[i % N_BURSTS];
    uv_timer_init(&r.loop, &r.feeder);
    uv_timer_start(&r.feeder, rig_feed, 1, 2);
    rig_finish(&r);
    assert_int_equal(r.sent, r.total);
}

/* One document and nothing else on the loop: the worker's own timer brings it back. */
static void test_worker_submit_single_document(void **state)
{
    (void)state;
    static struct burst_rig r;
    rig_init(&r, 16);
    r.total = 1;
    rig_submit(&r);
    assert_int_equal(worker_inflight(&r.worker), 1);
    rig_finish(&r);
}

/* Past capacity, documents wait on the loop side in order; past WORKER_HELD_MAX the
 * worker refuses; room comes back as documents do. */
static void test_worker_submit_holds_when_full(void **state)
{
    (void)state;
    static struct burst_rig r;
    rig_init(&r, 8);
    assert_true(worker_has_room(&r.worker));
    for (int i = 0; i < 8; i++)
        rig_submit(&r);
    assert_false(worker_full(&r.worker));
    assert_false(worker_has_room(&r.worker));
    for (int i = 0; i < WORKER_HELD_MAX; i++) {
        rig_submit(&r);
        assert_true(worker_full(&r.worker));
    }
    struct doc *extra = pool_alloc(r.pool, "{}", 2, 0);
    assert_false(worker_submit(&r.worker, extra));
    pool_free(r.pool, extra);
    assert_int_equal(worker_inflight(&r.worker), 8 + WORKER_HELD_MAX);
    r.total = r.sent;
    rig_finish(&r);
}

/* Closing with documents still waiting on the loop side: each one is processed and
 * handed back before the close completes. */
static void test_worker_close_with_held_documents(void **state)
{
    (void)state;
    static struct burst_rig r;
    rig_init(&r, 4);
    for (int i = 0; i < 10; i++)
        rig_submit(&r);
    r.total = 1000; /* rig_done must not close: this test does */
    worker_close(&r.worker, rig_closed, &r);
    assert_int_equal(r.back, 10);
    assert_int_equal(worker_inflight(&r.worker), 0);
    r.total = 10;
    uv_timer_stop(&r.watchdog);
    uv_close((uv_handle_t *)&r.watchdog, NULL);
    rig_finish(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_verdicts_round_trip),
        cmocka_unit_test(test_pipeline_in_progress_and_subsegment_flags),
        cmocka_unit_test(test_pipeline_long_ids_truncated),
        cmocka_unit_test(test_worker_submit_bursts_with_gaps),
        cmocka_unit_test(test_worker_submit_single_document),
        cmocka_unit_test(test_worker_submit_holds_when_full),
        cmocka_unit_test(test_worker_close_with_held_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
