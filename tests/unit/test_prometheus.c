/* SPDX-License-Identifier: Apache-2.0 */
/* The scrape body: the whole text 0.0.4 and OpenMetrics output for a registry of a
 * counter (one label value needing every escape), an empty counter family, a gauge and
 * a histogram with the service-graph buckets; number spelling; the overflow series;
 * the size cap; promtool's verdict on the text (when promtool is installed); and the
 * Accept header table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "buf.h"
#include "metrics/prometheus.h"
#include "metrics/registry.h"

static const char *const edge_labels[] = {"client", "server", "connection_type"};
static const double graph_buckets[] = {0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2,
                                       0.4,   0.8,   1,     1.4,   2,    5,    10,  15};

static const struct metric_family_def requests = {
    .name = "traces_service_graph_request_total",
    .help = "Requests between two nodes.\nCounted by the client \\ caller.",
    .type = METRIC_COUNTER,
    .nlabels = 3,
    .labels = edge_labels,
};
static const struct metric_family_def failed = {
    .name = "traces_service_graph_request_failed_total",
    .help = "Failed requests between two nodes.",
    .type = METRIC_COUNTER,
    .nlabels = 3,
    .labels = edge_labels,
};
static const struct metric_family_def memory = {
    .name = "xray_memory_used_bytes",
    .help = "Memory in use, \"resident\" bytes.",
    .type = METRIC_GAUGE,
};
static const struct metric_family_def latency = {
    .name = "traces_service_graph_request_server_seconds",
    .help = "Request latency seen by the server.",
    .type = METRIC_HISTOGRAM,
    .nlabels = 3,
    .labels = edge_labels,
    .nbuckets = 16,
    .buckets = graph_buckets,
};

#define LBL_WEB "client=\"user\",server=\"web\",connection_type=\"\""
#define HIST    "traces_service_graph_request_server_seconds"

static const char golden_text[] =
    "# HELP traces_service_graph_request_total Requests between two nodes.\\nCounted by the "
    "client \\\\ caller.\n"
    "# TYPE traces_service_graph_request_total counter\n"
    "traces_service_graph_request_total{" LBL_WEB "} 3\n"
    "traces_service_graph_request_total{client=\"we\\\"ird\\\\svc\\nx\",server=\"db\","
    "connection_type=\"database\"} 1.5\n"
    "# HELP traces_service_graph_request_failed_total Failed requests between two nodes.\n"
    "# TYPE traces_service_graph_request_failed_total counter\n"
    "# HELP xray_memory_used_bytes Memory in use, \"resident\" bytes.\n"
    "# TYPE xray_memory_used_bytes gauge\n"
    "xray_memory_used_bytes 1048576\n"
    "# HELP " HIST " Request latency seen by the server.\n"
    "# TYPE " HIST " histogram\n" HIST "_bucket{" LBL_WEB ",le=\"0.002\"} 2\n" HIST
    "_bucket{" LBL_WEB ",le=\"0.004\"} 2\n" HIST "_bucket{" LBL_WEB ",le=\"0.006\"} 2\n" HIST
    "_bucket{" LBL_WEB ",le=\"0.008\"} 2\n" HIST "_bucket{" LBL_WEB ",le=\"0.01\"} 2\n" HIST
    "_bucket{" LBL_WEB ",le=\"0.05\"} 3\n" HIST "_bucket{" LBL_WEB ",le=\"0.1\"} 3\n" HIST
    "_bucket{" LBL_WEB ",le=\"0.2\"} 3\n" HIST "_bucket{" LBL_WEB ",le=\"0.4\"} 4\n" HIST
    "_bucket{" LBL_WEB ",le=\"0.8\"} 4\n" HIST "_bucket{" LBL_WEB ",le=\"1\"} 4\n" HIST
    "_bucket{" LBL_WEB ",le=\"1.4\"} 4\n" HIST "_bucket{" LBL_WEB ",le=\"2\"} 4\n" HIST
    "_bucket{" LBL_WEB ",le=\"5\"} 4\n" HIST "_bucket{" LBL_WEB ",le=\"10\"} 4\n" HIST
    "_bucket{" LBL_WEB ",le=\"15\"} 4\n" HIST "_bucket{" LBL_WEB ",le=\"+Inf\"} 5\n" HIST
    "_sum{" LBL_WEB "} 20.353\n" HIST "_count{" LBL_WEB "} 5\n";

static const char golden_openmetrics[] =
    "# HELP traces_service_graph_request Requests between two nodes.\\nCounted by the "
    "client \\\\ caller.\n"
    "# TYPE traces_service_graph_request counter\n"
    "traces_service_graph_request_total{" LBL_WEB "} 3\n"
    "traces_service_graph_request_total{client=\"we\\\"ird\\\\svc\\nx\",server=\"db\","
    "connection_type=\"database\"} 1.5\n"
    "# HELP traces_service_graph_request_failed Failed requests between two nodes.\n"
    "# TYPE traces_service_graph_request_failed counter\n"
    "# HELP xray_memory_used_bytes Memory in use, \\\"resident\\\" bytes.\n"
    "# TYPE xray_memory_used_bytes gauge\n"
    "xray_memory_used_bytes 1048576\n"
    "# HELP " HIST " Request latency seen by the server.\n"
    "# TYPE " HIST " histogram\n" HIST "_bucket{" LBL_WEB ",le=\"0.002\"} 2\n" HIST
    "_bucket{" LBL_WEB ",le=\"0.004\"} 2\n" HIST "_bucket{" LBL_WEB ",le=\"0.006\"} 2\n" HIST
    "_bucket{" LBL_WEB ",le=\"0.008\"} 2\n" HIST "_bucket{" LBL_WEB ",le=\"0.01\"} 2\n" HIST
    "_bucket{" LBL_WEB ",le=\"0.05\"} 3\n" HIST "_bucket{" LBL_WEB ",le=\"0.1\"} 3\n" HIST
    "_bucket{" LBL_WEB ",le=\"0.2\"} 3\n" HIST "_bucket{" LBL_WEB ",le=\"0.4\"} 4\n" HIST
    "_bucket{" LBL_WEB ",le=\"0.8\"} 4\n" HIST "_bucket{" LBL_WEB ",le=\"1.0\"} 4\n" HIST
    "_bucket{" LBL_WEB ",le=\"1.4\"} 4\n" HIST "_bucket{" LBL_WEB ",le=\"2.0\"} 4\n" HIST
    "_bucket{" LBL_WEB ",le=\"5.0\"} 4\n" HIST "_bucket{" LBL_WEB ",le=\"10.0\"} 4\n" HIST
    "_bucket{" LBL_WEB ",le=\"15.0\"} 4\n" HIST "_bucket{" LBL_WEB ",le=\"+Inf\"} 5\n" HIST
    "_sum{" LBL_WEB "} 20.353\n" HIST "_count{" LBL_WEB "} 5\n"
    "# EOF\n";

static struct metric_series *edge(struct registry *r, int fam, const char *client,
                                  const char *server, const char *type)
{
    const char *v[3] = {client, server, type};
    size_t n[3] = {strlen(client), strlen(server), strlen(type)};
    struct metric_series *s = registry_series(r, fam, v, n, 1);
    assert_non_null(s);
    return s;
}

/* The registry of the golden outputs, as a snapshot. */
static struct registry_snapshot *golden_snapshot(void)
{
    struct registry *r = registry_create(NULL);
    assert_non_null(r);
    int req = registry_family(r, &requests), fail = registry_family(r, &failed);
    int mem = registry_family(r, &memory), lat = registry_family(r, &latency);
    assert_true(req == 0 && fail == 1 && mem == 2 && lat == 3);
    metric_counter_add(edge(r, req, "user", "web", ""), 3);
    metric_counter_add(edge(r, req, "we\"ird\\svc\nx", "db", "database"), 1.5);
    metric_gauge_set(registry_series(r, mem, NULL, NULL, 1), 1048576);
    struct metric_series *h = edge(r, lat, "user", "web", "");
    const double obs[] = {0.001, 0.002, 0.05, 0.3, 20};
    for (size_t i = 0; i < sizeof(obs) / sizeof(*obs); i++)
        metric_histogram_observe(h, obs[i]);
    struct registry_snapshot *s = registry_snapshot(r, 2, 0, true);
    assert_non_null(s);
    registry_destroy(r);
    return s;
}

static void test_prometheus_write_text(void **state)
{
    (void)state;
    struct registry_snapshot *s = golden_snapshot();
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(prometheus_write(s, false, &b), 0);
    assert_string_equal(b.data, golden_text);
    assert_int_equal(b.len, strlen(golden_text));
    buf_free(&b);
    registry_snapshot_free(s);
}

static void test_prometheus_write_openmetrics(void **state)
{
    (void)state;
    struct registry_snapshot *s = golden_snapshot();
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(prometheus_write(s, true, &b), 0);
    assert_string_equal(b.data, golden_openmetrics);
    assert_int_equal(b.len, strlen(golden_openmetrics));
    buf_free(&b);
    registry_snapshot_free(s);
}

static void test_prometheus_write_empty(void **state)
{
    (void)state;
    struct registry *r = registry_create(NULL);
    struct registry_snapshot *s = registry_snapshot(r, 1, 0, true);
    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(prometheus_write(s, false, &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(prometheus_write(s, true, &b), 0);
    assert_string_equal(b.data, "# EOF\n");
    buf_free(&b);
    registry_snapshot_free(s);
    registry_destroy(r);
}

static void test_prometheus_write_values(void **state)
{
    (void)state;
    static const char *const k[] = {"k"};
    static const double half_one[] = {0.5, 1};
    static const struct metric_family_def value = {
        "xray_test_value", "Values.", METRIC_GAUGE, 1, k, 0, NULL};
    static const struct metric_family_def bare = {
        "xray_test_seconds", "Bare.", METRIC_HISTOGRAM, 0, NULL, 2, half_one};
    struct registry *r = registry_create(NULL);
    int g = registry_family(r, &value), h = registry_family(r, &bare);
    const struct {
        const char *k;
        double v;
    } vals[] = {
        {"nan", NAN},
        {"inf", INFINITY},
        {"ninf", -INFINITY},
        {"small", 1e-7},
        {"big", 1e21},
        {"neg", -2},
        {"tenth", 0.1},
        {"third", 2.0 / 3},
        {"two53", 9007199254740992.0},
        {"negzero", -0.0},
        {"a\xff"
         "b\xc3",
         1},                                         /* a stray byte, a cut sequence */
        {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 2}, /* é € U+1F600 */
        {"\xed\xa0\x80", 3},                         /* a UTF-16 surrogate is not UTF-8 */
    };
    for (size_t i = 0; i < sizeof(vals) / sizeof(*vals); i++) {
        const char *v[1] = {vals[i].k};
        size_t n[1] = {strlen(vals[i].k)};
        metric_gauge_set(registry_series(r, g, v, n, 1), vals[i].v);
    }
    registry_series(r, h, NULL, NULL, 1);
    struct registry_snapshot *s = registry_snapshot(r, 1, 0, true);
    struct buf b;
    buf_init(&b, 1 << 16);
    assert_int_equal(prometheus_write(s, false, &b), 0);
    assert_string_equal(b.data, "# HELP xray_test_value Values.\n"
                                "# TYPE xray_test_value gauge\n"
                                "xray_test_value{k=\"nan\"} NaN\n"
                                "xray_test_value{k=\"inf\"} +Inf\n"
                                "xray_test_value{k=\"ninf\"} -Inf\n"
                                "xray_test_value{k=\"small\"} 1e-07\n"
                                "xray_test_value{k=\"big\"} 1e+21\n"
                                "xray_test_value{k=\"neg\"} -2\n"
                                "xray_test_value{k=\"tenth\"} 0.1\n"
                                "xray_test_value{k=\"third\"} 0.6666666666666666\n"
                                "xray_test_value{k=\"two53\"} 9007199254740992\n"
                                "xray_test_value{k=\"negzero\"} 0\n"
                                "xray_test_value{k=\"a\xef\xbf\xbd"
                                "b\xef\xbf\xbd\"} 1\n"
                                "xray_test_value{k=\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"} 2\n"
                                "xray_test_value{k=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 3\n"
                                "# HELP xray_test_seconds Bare.\n"
                                "# TYPE xray_test_seconds histogram\n"
                                "xray_test_seconds_bucket{le=\"0.5\"} 0\n"
                                "xray_test_seconds_bucket{le=\"1\"} 0\n"
                                "xray_test_seconds_bucket{le=\"+Inf\"} 0\n"
                                "xray_test_seconds_sum 0\n"
                                "xray_test_seconds_count 0\n");
    buf_reset(&b);
    assert_int_equal(prometheus_write(s, true, &b), 0);
    const char *om = strstr(b.data, "# HELP xray_test_seconds");
    assert_non_null(om);
    assert_string_equal(om, "# HELP xray_test_seconds Bare.\n"
                            "# TYPE xray_test_seconds histogram\n"
                            "xray_test_seconds_bucket{le=\"0.5\"} 0\n"
                            "xray_test_seconds_bucket{le=\"1.0\"} 0\n"
                            "xray_test_seconds_bucket{le=\"+Inf\"} 0\n"
                            "xray_test_seconds_sum 0\n"
                            "xray_test_seconds_count 0\n"
                            "# EOF\n");
    buf_free(&b);
    registry_snapshot_free(s);
    registry_destroy(r);
}

static void test_prometheus_write_overflow(void **state)
{
    (void)state;
    struct registry_options o = {.series_budget = 1};
    struct registry *r = registry_create(&o);
    int req = registry_family(r, &requests);
    metric_counter_add(edge(r, req, "user", "web", ""), 1);
    metric_counter_add(edge(r, req, "web", "api", ""), 2);
    metric_counter_add(edge(r, req, "web", "db", "database"), 3);
    struct registry_snapshot *s = registry_snapshot(r, 1, 0, true);
    struct buf b;
    buf_init(&b, 1 << 16);
    assert_int_equal(prometheus_write(s, false, &b), 0);
    const char *samples = strstr(b.data, "\ntraces_service_graph_request_total{");
    assert_non_null(samples);
    assert_string_equal(samples + 1, "traces_service_graph_request_total{" LBL_WEB "} 1\n"
                                     "traces_service_graph_request_total{client=\"\",server=\"\","
                                     "connection_type=\"\",overflow=\"true\"} 5\n");
    buf_free(&b);
    registry_snapshot_free(s);
    registry_destroy(r);
}

static void test_prometheus_write_cap(void **state)
{
    (void)state;
    struct registry_snapshot *s = golden_snapshot();
    size_t full = strlen(golden_text);
    struct buf b;
    buf_init(&b, full - 1);
    assert_int_equal(prometheus_write(s, false, &b), -ENOSPC);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    buf_init(&b, full);
    assert_int_equal(prometheus_write(s, false, &b), 0);
    assert_int_equal(b.len, full);
    buf_free(&b);
    /* Appended after what is there; on failure, what was there is left alone. */
    buf_init(&b, full + 3);
    assert_int_equal(buf_append_str(&b, "abcd"), 0);
    assert_int_equal(prometheus_write(s, false, &b), -ENOSPC);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "abcd");
    b.max = full + 4;
    assert_int_equal(prometheus_write(s, false, &b), 0);
    assert_int_equal(b.len, full + 4);
    assert_memory_equal(b.data + 4, golden_text, full);
    buf_free(&b);
    registry_snapshot_free(s);
    /* Exactly at the cap when the text ends with a family's header too. */
    struct registry *r = registry_create(NULL);
    assert_int_equal(registry_family(r, &failed), 0);
    s = registry_snapshot(r, 1, 0, true);
    const char *head = "# HELP traces_service_graph_request_failed_total Failed requests between "
                       "two nodes.\n# TYPE traces_service_graph_request_failed_total counter\n";
    buf_init(&b, strlen(head));
    assert_int_equal(prometheus_write(s, false, &b), 0);
    assert_string_equal(b.data, head);
    buf_free(&b);
    buf_init(&b, strlen(head) - 1);
    assert_int_equal(prometheus_write(s, false, &b), -ENOSPC);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    registry_snapshot_free(s);
    registry_destroy(r);
}

/* promtool (Debian's prometheus package) must find nothing to say about the text. */
static void test_prometheus_promtool(void **state)
{
    (void)state;
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "promtool not found (apt-get install prometheus): check skipped\n");
        skip();
    }
    FILE *p = popen("promtool check metrics 1>&2", "w");
    assert_non_null(p);
    assert_int_equal(fwrite(golden_text, 1, strlen(golden_text), p), strlen(golden_text));
    int status = pclose(p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_prometheus_wants_openmetrics(void **state)
{
    (void)state;
    static const struct {
        const char *accept;
        bool om;
    } table[] = {
        {"", false},
        {"text/plain", false},
        {"text/plain;version=0.0.4", false},
        {"application/openmetrics-text", true},
        {"application/openmetrics-text; version=1.0.0; charset=utf-8", true},
        /* What Prometheus 2.x sends by default, and with the text format first. */
        {"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
         "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
         true},
        {"text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1",
         false},
        {"application/openmetrics-text;q=0.5,text/plain", false},
        {"text/plain;q=0.5, application/openmetrics-text;q=0.5", true},
        {"text/plain;q=0.75, application/openmetrics-text;q=0.750", true},
        {"text/plain;q=0.751, application/openmetrics-text;q=0.75", false},
        {"APPLICATION/OpenMetrics-Text ; Q=0.9 , Text/Plain ; q=0.8", true},
        {"application/openmetrics-text;q=0", false},
        {"application/openmetrics-text;q=0.000,text/plain;q=0", false},
        {"application/openmetrics-text;q=1.0000", true},
        {"application/openmetrics-text;q=abc", false},
        {"application/openmetrics-text;q=1.5", false},
        {"application/openmetrics-text;q=2", false},
        {"application/openmetrics-text;q=", false},
        {"application/openmetrics-text;q=\"1\"", false},
        {"application/openmetrics-text;q=0.5x", false},
        {"application/openmetrics-text;q=abc,application/openmetrics-text;q=0.2", true},
        {"application/openmetrics-text;q=0.3,*/*;q=0.5", false},
        {"application/openmetrics-text;q=0.3,*/*;q=0.2", true},
        {"application/openmetrics-text;q=0.3,text/*;q=0.4,*/*;q=0.1", false},
        {"application/openmetrics-text;q=0.3,text/*;q=0.2,*/*;q=0.9", true},
        {"application/openmetrics-text;q=0.3,text/plain;q=0.2,text/*;q=0.9", true},
        {"*/*", false},
        {"text/*", false},
        {"application/*", false},
        {"application/openmetrics-textx", false},
        {"application/openmetrics", false},
        {"xapplication/openmetrics-text", false},
        /* A comma or a semicolon inside a quoted parameter separates nothing. */
        {"application/openmetrics-text;version=\"1,0;q=0\";q=0.9,text/plain;q=0.5", true},
        {"text/plain;x=\"a,application/openmetrics-text\"", false},
        {"application/openmetrics-text;version=\"1.0.0", true},
        {"application/openmetrics-text;version=\"\\\"", true},
        {";;;,,,==\"\\", false},
        {",,application/openmetrics-text,,", true},
        {"application/openmetrics-text;;q=0.5;;,text/plain;q=0.4", true},
        {"application/openmetrics-text junk;q=1", false},
        {"\t application/openmetrics-text \t", true},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(*table); i++) {
        bool got = prometheus_wants_openmetrics(table[i].accept, strlen(table[i].accept));
        if (got != table[i].om)
            fail_msg("Accept '%s': got %d, want %d", table[i].accept, got, table[i].om);
    }
    /* The length is honoured: the q=0 past it is not read. */
    const char *cut = "application/openmetrics-text;q=0";
    assert_true(prometheus_wants_openmetrics(cut, strlen("application/openmetrics-text")));
    assert_false(prometheus_wants_openmetrics(cut, strlen(cut)));
    assert_false(prometheus_wants_openmetrics(NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prometheus_write_text),
        cmocka_unit_test(test_prometheus_write_openmetrics),
        cmocka_unit_test(test_prometheus_write_empty),
        cmocka_unit_test(test_prometheus_write_values),
        cmocka_unit_test(test_prometheus_write_overflow),
        cmocka_unit_test(test_prometheus_write_cap),
        cmocka_unit_test(test_prometheus_promtool),
        cmocka_unit_test(test_prometheus_wants_openmetrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
