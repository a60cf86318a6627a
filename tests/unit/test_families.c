/* SPDX-License-Identifier: Apache-2.0 */
/* The exported families: configured buckets, edge and segment updates through the
 * series cache (and its flush when the registry expires series), and the daemon's own
 * counters, gauges and upload latency taken from struct stats. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "metrics/families.h"

#define MIN_MS (60u * 1000)

/* The sample of family name whose first labels equal v0 (and v1 when not NULL). */
static const struct metric_sample *find(const struct registry_snapshot *s, const char *name,
                                        const char *v0, const char *v1)
{
    for (size_t i = 0; i < s->nfamilies; i++) {
        const struct metric_family_snapshot *f = &s->families[i];
        if (strcmp(f->def->name, name) != 0)
            continue;
        for (size_t k = 0; k < f->nseries; k++) {
            const struct metric_sample *m = &f->series[k];
            if ((v0 == NULL || (m->nlabels > 0 && strcmp(m->labels[0].value, v0) == 0)) &&
                (v1 == NULL || (m->nlabels > 1 && strcmp(m->labels[1].value, v1) == 0)))
                return m;
        }
    }
    return NULL;
}

static const struct metric_family_def *def(const struct registry_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->nfamilies; i++)
        if (strcmp(s->families[i].def->name, name) == 0)
            return s->families[i].def;
    return NULL;
}

static void edge(struct families *f, const char *client, const char *server, bool failed,
                 uint64_t now_ms)
{
    struct families_edge e = {.client = client,
                              .server = server,
                              .connection_type = "",
                              .failed = failed,
                              .client_seconds = 0.02,
                              .server_seconds = 0.3};
    families_edge(f, &e, now_ms);
}

static void test_families_buckets_configured(void **state)
{
    (void)state;
    const double b[] = {0.1, 1};
    struct families_options o = {.buckets = b, .nbuckets = 2};
    struct families *f = families_create(&o);
    assert_non_null(f);
    edge(f, "user", "web", false, 1);
    struct registry_snapshot *s = registry_snapshot(families_registry(f), 1, 0, true);
    const struct metric_family_def *d = def(s, "traces_service_graph_request_server_seconds");
    assert_int_equal(d->nbuckets, 2);
    assert_true(d->buckets[0] == 0.1 && d->buckets[1] == 1);
    const struct metric_sample *m =
        find(s, "traces_service_graph_request_server_seconds", "user", "web");
    assert_non_null(m);
    assert_int_equal(m->buckets[0], 0); /* 0.3 s */
    assert_int_equal(m->buckets[1], 1);
    /* The upload latency keeps its own buckets. */
    assert_int_equal(def(s, "xrayd_upload_duration_seconds")->nbuckets, STATS_LATENCY_BOUNDS);
    registry_snapshot_free(s);
    families_destroy(f);

    o.nbuckets = METRIC_BUCKETS_MAX + 1;
    assert_null(families_create(&o));
}

/* Repeated label sets go through the cache; counts must be as if they did not. */
static void test_families_edge_and_segment_counts(void **state)
{
    (void)state;
    struct families *f = families_create(NULL);
    for (int i = 0; i < 10; i++) {
        edge(f, "user", "web", false, 1);
        edge(f, "web", "api", i % 5 == 0, 1);
        families_segment(f, "api", "", i % 5 == 0 ? "fault" : "ok", 0.004, 1);
    }
    char long_name[300];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    edge(f, "web", long_name, false, 1); /* too long for the cache: counted all the same */
    edge(f, "web", long_name, false, 1);
    struct registry_snapshot *s = registry_snapshot(families_registry(f), 1, 0, true);
    assert_true(find(s, "traces_service_graph_request_total", "user", "web")->value == 10);
    assert_true(find(s, "traces_service_graph_request_total", "web", "api")->value == 10);
    assert_true(find(s, "traces_service_graph_request_failed_total", "web", "api")->value == 2);
    assert_int_equal(find(s, "traces_service_graph_request_client_seconds", "web", "api")->count,
                     10);
    assert_true(find(s, "xray_segments_total", "api", NULL)->value == 8 ||
                find(s, "xray_segments_total", "api", NULL)->value == 2);
    assert_int_equal(find(s, "xray_segment_duration_seconds", "api", NULL)->count, 10);
    const struct metric_sample *l = NULL;
    for (size_t i = 0; i < s->nfamilies; i++)
        if (strcmp(s->families[i].def->name, "traces_service_graph_request_total") == 0)
            for (size_t k = 0; k < s->families[i].nseries; k++)
                if (strlen(s->families[i].series[k].labels[1].value) > 200)
                    l = &s->families[i].series[k];
    assert_non_null(l);
    assert_true(l->value == 2);
    registry_snapshot_free(s);
    families_destroy(f);
}

/* A series that expired must not be updated through a stale cache entry: the update
 * goes through the registry, which makes it live again. */
static void test_families_cache_flushed_on_expiry(void **state)
{
    (void)state;
    struct families_options o = {.registry = {.idle_ms = MIN_MS}};
    struct families *f = families_create(&o);
    struct registry *r = families_registry(f);
    edge(f, "web", "api", false, 0);
    edge(f, "web", "api", false, 0);
    edge(f, "web", "db", false, MIN_MS / 2);
    registry_expire(r, MIN_MS); /* web->api goes; web->db stays */
    edge(f, "web", "api", false, MIN_MS);
    edge(f, "web", "db", false, MIN_MS);
    struct registry_snapshot *s = registry_snapshot(r, MIN_MS, 0, true);
    /* Revived (its stale marker not taken yet): live again, its count going on. */
    assert_non_null(find(s, "traces_service_graph_request_total", "web", "api"));
    assert_true(find(s, "traces_service_graph_request_total", "web", "api")->value == 3);
    assert_true(find(s, "traces_service_graph_request_total", "web", "db")->value == 2);
    registry_snapshot_free(s);
    /* Touched through the cache: web->db is not idle at 1.6 minutes. */
    registry_expire(r, MIN_MS + MIN_MS * 6 / 10);
    s = registry_snapshot(r, MIN_MS * 2, 0, true);
    assert_non_null(find(s, "traces_service_graph_request_total", "web", "db"));
    registry_snapshot_free(s);
    families_destroy(f);
}

static void test_families_daemon(void **state)
{
    (void)state;
    struct families *f = families_create(NULL);
    struct stats st;
    memset(&st, 0, sizeof(st));
    stats_add(&st.received, 7);
    stats_add(&st.upload_retries, 2);
    stats_add(&st.sink_sent[STATS_SINK_REMOTE_WRITE], 3);
    stats_add(&st.sink_dropped[STATS_SINK_CLOUDWATCH], 1);
    stats_set(&st.queue_depth[STATS_QUEUE_UPLOAD], 42);
    stats_latency_observe(&st.upload_latency, 3000);    /* 3 ms */
    stats_latency_observe(&st.upload_latency, 2000000); /* 2 s */
    const struct families_memory mem[] = {{"graph", 100, 1000}};
    families_daemon(f, &st, mem, 1, 1);
    stats_add(&st.received, 3);
    stats_latency_observe(&st.upload_latency, 20000000); /* 20 s: +Inf */
    families_daemon(f, &st, mem, 1, 2);
    struct registry_snapshot *s = registry_snapshot(families_registry(f), 2, 0, true);
    assert_true(find(s, "xrayd_segments_received_total", NULL, NULL)->value == 10);
    assert_true(find(s, "xrayd_upload_retries_total", NULL, NULL)->value == 2);
    assert_true(find(s, "xrayd_metrics_sink_requests_total", "remote_write", "sent")->value == 3);
    assert_true(find(s, "xrayd_metrics_sink_requests_total", "cloudwatch", "dropped")->value == 1);
    assert_true(find(s, "xrayd_metrics_sink_requests_total", "cloudwatch", "sent")->value == 0);
    assert_true(find(s, "xrayd_queue_depth", "upload", NULL)->value == 42);
    assert_true(find(s, "xrayd_memory_used_bytes", "graph", NULL)->value == 100);
    const struct metric_sample *h = find(s, "xrayd_upload_duration_seconds", NULL, NULL);
    assert_int_equal(h->count, 3);
    assert_int_equal(h->buckets[0], 1);                        /* <= 5 ms */
    assert_int_equal(h->buckets[STATS_LATENCY_BOUNDS - 1], 2); /* <= 10 s */
    assert_true(fabs(h->value - 22.003) < 1e-9);
    assert_true(find(s, "xrayd_metrics_series", NULL, NULL)->value > 0);
    registry_snapshot_free(s);
    families_destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families_buckets_configured),
        cmocka_unit_test(test_families_edge_and_segment_counts),
        cmocka_unit_test(test_families_cache_flushed_on_expiry),
        cmocka_unit_test(test_families_daemon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
