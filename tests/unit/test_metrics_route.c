/* SPDX-License-Identifier: Apache-2.0 */
/* The /metrics body through the real pipeline and worker: a two-service trace becomes
 * the service-graph and segment series, the daemon's counters follow struct stats, and
 * the body is written on the worker as a scrape job is. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api/metrics_route.h"
#include "buf.h"
#include "ingest/pool.h"
#include "pipeline.h"
#include "stats.h"
#include "util.h"
#include "worker.h"

#define TRACE "1-65000000-000000000000000000000001"

/* web (root, 0.3 s) calls api (a remote, traced call of 0.23 s that faulted); api's own
 * segment lasted 0.18 s and faulted. */
#define WEB                                                                                        \
    "{\"name\":\"web\",\"id\":\"0000000000000a01\",\"trace_id\":\"" TRACE "\","                    \
    "\"start_time\":1700000000.0,\"end_time\":1700000000.3,\"subsegments\":[{\"name\":\"api\","    \
    "\"id\":\"0000000000000b01\",\"start_time\":1700000000.05,\"end_time\":1700000000.28,"         \
    "\"namespace\":\"remote\",\"traced\":true,\"fault\":true,"                                     \
    "\"http\":{\"response\":{\"status\":500}}}]}"
#define API                                                                                        \
    "{\"name\":\"api\",\"id\":\"0000000000000c01\",\"trace_id\":\"" TRACE "\","                    \
    "\"parent_id\":\"0000000000000b01\",\"start_time\":1700000000.06,"                             \
    "\"end_time\":1700000000.24,\"fault\":true}"

struct rig {
    uv_loop_t loop;
    uv_timer_t timer;
    struct stats stats;
    struct pool *pool;
    struct pipeline *p;
    struct worker worker;
    int sent, back;
    bool timed_out, scraped;
};

struct scrape {
    struct worker_job job;
    struct rig *r;
    bool openmetrics;
    int rc;
    struct buf out;
};

static void rig_done(struct doc *doc, void *data)
{
    struct rig *r = data;
    assert_int_equal(doc->reject, -1);
    pool_free(r->pool, doc);
    if (++r->back == r->sent)
        uv_stop(&r->loop);
}

static void rig_timer(uv_timer_t *t)
{
    struct rig *r = t->data;
    r->timed_out = true;
    uv_stop(&r->loop);
}

static void rig_open(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    r->pool = pool_create(4u << 20);
    r->p = pipeline_create(&r->stats);
    assert_non_null(r->p);
    struct pipeline_assembly_options ao = {
        .window_ms = 100,
        .assembly_bytes = 1u << 20,
        .graph_bytes = 1u << 20,
        .graph_retention_min = 5,
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
    uv_timer_init(&r->loop, &r->timer);
    r->timer.data = r;
}

static void rig_send(struct rig *r, const char *text)
{
    struct doc *doc = pool_alloc(r->pool, text, strlen(text), uv_now(&r->loop));
    assert_non_null(doc);
    r->sent++;
    assert_true(worker_submit(&r->worker, doc));
}

/* Runs the loop for ms, or until every document is back when until_back. */
static void rig_run(struct rig *r, uint64_t ms, bool until_back)
{
    r->timed_out = false;
    uv_timer_start(&r->timer, rig_timer, ms, 0);
    if (!until_back || r->back < r->sent)
        uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&r->timer);
    if (until_back)
        assert_false(r->timed_out);
}

static void scrape_run(struct worker_job *job, void *process_ctx)
{
    struct scrape *s = container_of(job, struct scrape, job);
    s->rc = metrics_route_write(process_ctx, s->openmetrics, &s->out);
}

static void scrape_done(struct worker_job *job)
{
    struct scrape *s = container_of(job, struct scrape, job);
    s->r->scraped = true;
    uv_stop(&s->r->loop);
}

/* The body of a scrape made on the worker; the caller frees out. */
static void rig_scrape(struct rig *r, bool openmetrics, struct buf *out)
{
    struct scrape s = {.job = {.run = scrape_run, .done = scrape_done}, .r = r};
    s.openmetrics = openmetrics;
    buf_init(&s.out, METRICS_ROUTE_MAX_BYTES);
    r->scraped = false;
    assert_true(worker_post(&r->worker, &s.job));
    uv_timer_start(&r->timer, rig_timer, 5000, 0);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&r->timer);
    assert_true(r->scraped);
    assert_int_equal(s.rc, 0);
    assert_int_equal(buf_append(&s.out, "", 1), 0); /* a C string */
    *out = s.out;
}

static void rig_closed(void *data)
{
    (void)data;
}

static void rig_close(struct rig *r)
{
    worker_close(&r->worker, rig_closed, NULL);
    uv_close((uv_handle_t *)&r->timer, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    pipeline_destroy(r->p);
    pool_destroy(r->pool);
}

/* line must be a whole line of body. */
static void assert_line(const char *body, const char *line)
{
    size_t n = strlen(line);
    for (const char *at = body; (at = strstr(at, line)) != NULL; at++)
        if ((at == body || at[-1] == '\n') && at[n] == '\n')
            return;
    fail_msg("missing line: %s\n--- body ---\n%s", line, body);
}

static void test_metrics_route_graph_and_segments(void **state)
{
    (void)state;
    static struct rig r;
    rig_open(&r);
    rig_send(&r, API);
    rig_send(&r, WEB);
    rig_run(&r, 5000, true);
    rig_run(&r, 400, false); /* the window (100 ms) closes: the trace completes */
    struct buf b;
    rig_scrape(&r, false, &b);
    const char *t = b.data;
    assert_line(t, "# TYPE traces_service_graph_request_total counter");
    assert_line(t, "traces_service_graph_request_total{client=\"user\",server=\"web\","
                   "connection_type=\"\"} 1");
    assert_line(t, "traces_service_graph_request_total{client=\"web\",server=\"api\","
                   "connection_type=\"\"} 1");
    assert_line(t, "traces_service_graph_request_failed_total{client=\"user\",server=\"web\","
                   "connection_type=\"\"} 0");
    assert_line(t, "traces_service_graph_request_failed_total{client=\"web\",server=\"api\","
                   "connection_type=\"\"} 1");
    /* The caller saw 0.23 s, the callee 0.18 s. */
    assert_line(t, "traces_service_graph_request_client_seconds_bucket{client=\"web\","
                   "server=\"api\",connection_type=\"\",le=\"0.2\"} 0");
    assert_line(t, "traces_service_graph_request_client_seconds_bucket{client=\"web\","
                   "server=\"api\",connection_type=\"\",le=\"0.4\"} 1");
    assert_line(t, "traces_service_graph_request_client_seconds_count{client=\"web\","
                   "server=\"api\",connection_type=\"\"} 1");
    assert_line(t, "traces_service_graph_request_server_seconds_bucket{client=\"web\","
                   "server=\"api\",connection_type=\"\",le=\"0.1\"} 0");
    assert_line(t, "traces_service_graph_request_server_seconds_bucket{client=\"web\","
                   "server=\"api\",connection_type=\"\",le=\"0.2\"} 1");
    assert_line(t, "traces_service_graph_request_server_seconds_bucket{client=\"user\","
                   "server=\"web\",connection_type=\"\",le=\"0.2\"} 0");
    assert_line(t, "traces_service_graph_request_server_seconds_bucket{client=\"user\","
                   "server=\"web\",connection_type=\"\",le=\"0.4\"} 1");
    assert_line(t, "xray_segments_total{service=\"web\",type=\"\",status=\"ok\"} 1");
    assert_line(t, "xray_segments_total{service=\"api\",type=\"\",status=\"fault\"} 1");
    assert_line(t, "xray_segment_duration_seconds_bucket{service=\"api\",type=\"\",le=\"0.2\"} 1");
    assert_line(t, "xray_segment_duration_seconds_count{service=\"web\",type=\"\"} 1");
    assert_line(t, "xrayd_memory_limit_bytes{budget=\"graph\"} 1048576");
    assert_line(t, "xrayd_segments_received_total 0");
    assert_null(strstr(t, "# EOF"));
    buf_free(&b);
    rig_close(&r);
}

/* The daemon's counters are cumulative atomics: each scrape shows their value now. */
static void test_metrics_route_daemon_counters(void **state)
{
    (void)state;
    static struct rig r;
    rig_open(&r);
    stats_add(&r.stats.received, 5);
    stats_add(&r.stats.sent, 3);
    stats_reject(&r.stats, STATS_REJECT_NOT_JSON);
    stats_reject(&r.stats, STATS_REJECT_NOT_JSON);
    struct buf b;
    rig_scrape(&r, false, &b);
    assert_line(b.data, "xrayd_segments_received_total 5");
    assert_line(b.data, "xrayd_segments_sent_total 3");
    assert_line(b.data, "xrayd_segments_rejected_total{reason=\"not_json\"} 2");
    assert_line(b.data, "xrayd_segments_rejected_total{reason=\"too_big\"} 0");
    buf_free(&b);
    stats_add(&r.stats.received, 2);
    stats_add(&r.stats.spillover, 1);
    rig_scrape(&r, true, &b);
    assert_line(b.data, "xrayd_segments_received_total 7");
    assert_line(b.data, "xrayd_segments_sent_total 3");
    assert_line(b.data, "xrayd_segments_spillover_total 1");
    assert_line(b.data, "xrayd_segments_rejected_total{reason=\"not_json\"} 2");
    assert_line(b.data, "# EOF");
    buf_free(&b);
    rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_route_graph_and_segments),
        cmocka_unit_test(test_metrics_route_daemon_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
