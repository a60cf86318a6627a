/* SPDX-License-Identifier: Apache-2.0 */
/* Tail sampling through the real pipeline and worker: documents are held until their
 * trace completes, then kept for a fault/error/throttle or a slow root, else decided
 * by the rules; when the hold is full the oldest trace is decided at once by the rules
 * (forced). Every document comes back: none is dropped undecided. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "ingest/pool.h"
#include "pipeline.h"
#include "sampler/rules_holder.h"
#include "stats.h"
#include "trace/assembler.h"
#include "worker.h"

/* Rules that drop everything: whatever is kept, a tail option kept. */
#define DROP_ALL "{\"version\":2,\"default\":{\"fixed_target\":0,\"rate\":0.0},\"rules\":[]}"
#define TRACES   8

struct rig {
    uv_loop_t loop;
    uv_timer_t watchdog;
    char dir[64], path[96];
    struct stats stats;
    struct pool *pool;
    struct pipeline *p;
    struct rules_holder *holder;
    struct worker worker;
    int sent, back;
    int kept[TRACES], dropped[TRACES]; /* by trace number */
    bool timed_out;
    struct assembler_stats as; /* read by rig_close() once the worker joined */
};

static void rig_done(struct doc *doc, void *data)
{
    struct rig *r = data;
    unsigned trace = (unsigned)strtoul(doc->trace_id + 11, NULL, 16);
    assert_true(trace < TRACES);
    if (doc->reject == -1)
        r->kept[trace]++;
    else if (doc->reject == PIPELINE_SAMPLED_OUT)
        r->dropped[trace]++;
    else
        fail_msg("document rejected: %d", doc->reject);
    pool_free(r->pool, doc);
    if (++r->back == r->sent)
        uv_stop(&r->loop);
}

static void rig_watchdog(uv_timer_t *t)
{
    struct rig *r = t->data;
    r->timed_out = true;
    uv_stop(&r->loop);
}

static void rig_open(struct rig *r, size_t tail_bytes)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    snprintf(r->dir, sizeof(r->dir), "/tmp/xrayd-tail-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->path, sizeof(r->path), "%s/rules.json", r->dir);
    FILE *f = fopen(r->path, "w");
    assert_non_null(f);
    fputs(DROP_ALL, f);
    fclose(f);
    char err[XRAY_ERR_LEN];
    struct rules_holder_options ro = {.loop = &r->loop, .path = r->path};
    assert_int_equal(rules_holder_create(&r->holder, &ro, err), 0);
    r->pool = pool_create(4u << 20);
    r->p = pipeline_create(&r->stats);
    assert_non_null(r->p);
    assert_int_equal(pipeline_enable_sampling(r->p, r->holder, NULL), 0);
    struct pipeline_assembly_options ao = {
        .window_ms = 150,
        .assembly_bytes = 1u << 20,
        .graph_bytes = 1u << 20,
        .graph_retention_min = 5,
        .tail_errors = true,
        .tail_latency_ms = 1500,
        .tail_bytes = tail_bytes,
    };
    assert_int_equal(pipeline_enable_assembly(r->p, &ao), 0);
    r->worker.process = pipeline_process;
    r->worker.idle = pipeline_idle;
    r->worker.flush = pipeline_flush;
    r->worker.process_ctx = r->p;
    r->worker.done = rig_done;
    r->worker.done_data = r;
    pipeline_set_worker(r->p, &r->worker);
    assert_int_equal(worker_start(&r->worker, &r->loop, 64), 0);
    uv_timer_init(&r->loop, &r->watchdog);
    r->watchdog.data = r;
}

static void rig_send(struct rig *r, const char *text)
{
    struct doc *doc = pool_alloc(r->pool, text, strlen(text), uv_now(&r->loop));
    assert_non_null(doc);
    r->sent++;
    assert_true(worker_submit(&r->worker, doc));
}

/* Runs the loop until every document is back (or 5 s). */
static void rig_wait(struct rig *r)
{
    uv_timer_start(&r->watchdog, rig_watchdog, 5000, 0);
    if (r->back < r->sent)
        uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&r->watchdog);
    assert_false(r->timed_out);
    assert_int_equal(r->back, r->sent);
}

static void rig_closed(void *data)
{
    (void)data;
}

static void rig_close(struct rig *r)
{
    worker_close(&r->worker, rig_closed, NULL);
    rules_holder_close(r->holder, NULL, NULL);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    assembler_get_stats(pipeline_assembler(r->p), &r->as);
    pipeline_destroy(r->p);
    pool_destroy(r->pool);
    unlink(r->path);
    rmdir(r->dir);
}

/* A root segment of trace t lasting dur seconds, with extra JSON members. */
static void root(struct rig *r, unsigned t, double dur, const char *extra)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"name\":\"web\",\"id\":\"%016x\",\"trace_id\":\"1-65000000-%024x\","
             "\"start_time\":1700000000.0,\"end_time\":%.3f%s}",
             0x100 + t, t, 1700000000.0 + dur, extra);
    rig_send(r, buf);
}

/* A streamed subsegment of trace t (its root never comes: the trace completes idle). */
static int sub_text(char *buf, size_t cap, unsigned t, unsigned id, const char *extra)
{
    return snprintf(buf, cap,
                    "{\"name\":\"step\",\"id\":\"%016x\",\"trace_id\":\"1-65000000-%024x\","
                    "\"parent_id\":\"00000000000000aa\",\"type\":\"subsegment\","
                    "\"start_time\":1700000000.0,\"end_time\":1700000000.1%s}",
                    id, t, extra);
}

static void sub(struct rig *r, unsigned t, unsigned id, const char *extra)
{
    char buf[512];
    sub_text(buf, sizeof(buf), t, id, extra);
    rig_send(r, buf);
}

static void test_tail_keeps_what_it_promises(void **state)
{
    (void)state;
    static struct rig r;
    rig_open(&r, 1u << 20);
    sub(&r, 1, 0x11, "");                   /* trace 1: a fault, in a later document */
    root(&r, 1, 0.2, ",\"fault\":true");    /* ... root done: complete at once */
    root(&r, 2, 0.2, "");                   /* trace 2: fast and fine: the rules drop it */
    root(&r, 3, 2.0, "");                   /* trace 3: slower than 1500 ms */
    sub(&r, 4, 0x41, ",\"throttle\":true"); /* trace 4: no root: complete when idle */
    sub(&r, 4, 0x42, "");
    root(&r, 5, 0.1, ",\"http\":{\"response\":{\"status\":404}}"); /* an error */
    rig_wait(&r);
    assert_int_equal(r.kept[1], 2);
    assert_int_equal(r.dropped[1], 0);
    assert_int_equal(r.kept[2], 0);
    assert_int_equal(r.dropped[2], 1);
    assert_int_equal(r.kept[3], 1);
    assert_int_equal(r.kept[4], 2);
    assert_int_equal(r.kept[5], 1);
    assert_int_equal(r.stats.decisions[STATS_DECISION_KEPT_TAIL_ERROR], 3);
    assert_int_equal(r.stats.decisions[STATS_DECISION_KEPT_TAIL_LATENCY], 1);
    assert_int_equal(r.stats.decisions[STATS_DECISION_DROPPED_RATE], 1);
    assert_int_equal(r.stats.sampled_kept, 6);
    assert_int_equal(r.stats.sampled_out, 1);

    /* A late document of a decided trace follows the decision at once. */
    sub(&r, 2, 0x21, ",\"fault\":true");
    sub(&r, 1, 0x12, "");
    rig_wait(&r);
    assert_int_equal(r.dropped[2], 2);
    assert_int_equal(r.kept[1], 3);
    rig_close(&r);
}

static void test_tail_full_hold_forces_a_decision(void **state)
{
    (void)state;
    static struct rig r;
    char buf[512];
    size_t len = (size_t)sub_text(buf, sizeof(buf), 1, 0x11, ",\"fault\":true");
    /* Room for two held documents of this size, not three. */
    rig_open(&r, 2 * pool_doc_bytes(len) + len / 2);
    sub(&r, 1, 0x11, ",\"fault\":true");
    sub(&r, 2, 0x21, ",\"fault\":true");
    sub(&r, 3, 0x31, ",\"fault\":true");
    rig_wait(&r);
    /* Trace 1 was the oldest when the hold filled: the rules decided it (drop), though
     * it had a fault; the others waited for their window and were kept for theirs. */
    assert_int_equal(r.dropped[1], 1);
    assert_int_equal(r.kept[1], 0);
    assert_int_equal(r.kept[2], 1);
    assert_int_equal(r.kept[3], 1);
    assert_int_equal(r.stats.decisions[STATS_DECISION_KEPT_TAIL_ERROR], 2);
    assert_int_equal(r.stats.decisions[STATS_DECISION_DROPPED_RATE], 1);
    rig_close(&r);
    assert_int_equal(r.as.forced, 1);
}

static void test_tail_flush_at_shutdown_decides_everything(void **state)
{
    (void)state;
    static struct rig r;
    rig_open(&r, 1u << 20);
    sub(&r, 6, 0x61, ",\"error\":true");
    sub(&r, 7, 0x71, "");
    /* Close before the window: the flush completes both traces; every document comes
     * back through the done callback before worker_close() returns its callback. */
    worker_close(&r.worker, rig_closed, NULL);
    assert_int_equal(r.back, 2);
    assert_int_equal(r.kept[6], 1);
    assert_int_equal(r.dropped[7], 1);
    struct assembler_stats as;
    assembler_get_stats(pipeline_assembler(r.p), &as);
    assert_int_equal(as.completed[ASSEMBLER_FLUSHED], 2);
    rules_holder_close(r.holder, NULL, NULL);
    uv_close((uv_handle_t *)&r.watchdog, NULL);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    uv_run(&r.loop, UV_RUN_DEFAULT); /* the first only cleared the done callback's uv_stop() */
    assert_int_equal(uv_loop_close(&r.loop), 0);
    pipeline_destroy(r.p);
    pool_destroy(r.pool);
    unlink(r.path);
    rmdir(r.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tail_keeps_what_it_promises),
        cmocka_unit_test(test_tail_full_hold_forces_a_decision),
        cmocka_unit_test(test_tail_flush_at_shutdown_decides_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
