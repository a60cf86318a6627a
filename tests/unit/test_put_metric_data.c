/* SPDX-License-Identifier: Apache-2.0 */
/* PutMetricData bodies from hand-built snapshots, parsed back with jansson: one service
 * and one edge checked member by member, histograms as Values + Counts, deltas, the
 * 1000-metric, 150-value and byte splits, escaping, bad options. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudwatch_fixture.h"
#include "error.h"
#include "metrics/put_metric_data.h"

#define MAX_BODIES 64

struct bodies {
    size_t n;
    char *text[MAX_BODIES];
    size_t len[MAX_BODIES];
    json_t *json[MAX_BODIES];
    int fail_at; /* emit returns -EIO at this body (1-based); 0: never */
};

static json_t *parse(const char *s)
{
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    if (j == NULL)
        fail_msg("not JSON (%s): %.200s", err.text, s);
    return j;
}

static int keep(void *ctx, const char *body, size_t len)
{
    struct bodies *b = ctx;
    if (b->fail_at > 0 && (int)b->n + 1 == b->fail_at)
        return -EIO;
    assert_true(b->n < MAX_BODIES);
    assert_int_equal(strlen(body), len);
    b->text[b->n] = strdup(body);
    b->len[b->n] = len;
    b->json[b->n++] = parse(body);
    return 0;
}

static struct bodies *bodies_new(void)
{
    struct bodies *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    return b;
}

static void bodies_free(struct bodies *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->text[i]);
        json_decref(b->json[i]);
    }
    free(b);
}

static json_t *data_of(struct bodies *b, size_t i)
{
    assert_string_equal(json_string_value(json_object_get(b->json[i], "Namespace")), "XRayDaemon");
    assert_int_equal(json_object_size(b->json[i]), 2);
    json_t *d = json_object_get(b->json[i], "MetricData");
    assert_true(json_is_array(d));
    return d;
}

/* "Name=Value,..." of a datum's dimensions. */
static void dims_of(json_t *datum, char *out, size_t n)
{
    json_t *dims = json_object_get(datum, "Dimensions");
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(dims); i++) {
        json_t *d = json_array_get(dims, i);
        assert_int_equal(json_object_size(d), 2);
        size_t used = strlen(out);
        snprintf(out + used, n - used, "%s%s=%s", i ? "," : "",
                 json_string_value(json_object_get(d, "Name")),
                 json_string_value(json_object_get(d, "Value")));
    }
}

static void numbers_of(json_t *datum, const char *key, char *out, size_t n)
{
    json_t *a = json_object_get(datum, key);
    assert_true(json_is_array(a));
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(a); i++) {
        size_t used = strlen(out);
        snprintf(out + used, n - used, "%s%g", i ? "," : "",
                 json_number_value(json_array_get(a, i)));
    }
}

/* Checks the members every datum has; returns its MetricName. */
static const char *check_datum(json_t *d, const char *unit, size_t members)
{
    assert_int_equal(json_object_size(d), members);
    assert_true(json_is_real(json_object_get(d, "Timestamp")));
    assert_true(json_real_value(json_object_get(d, "Timestamp")) == 1700000000.123);
    assert_string_equal(json_string_value(json_object_get(d, "Unit")), unit);
    assert_int_equal(json_integer_value(json_object_get(d, "StorageResolution")), 60);
    return json_string_value(json_object_get(d, "MetricName"));
}

static const struct pmd_options defaults = {0};

static void test_put_metric_data_encode_node(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    fx_counter(f, FX_SEGMENTS, "api", "AWS::EC2::Instance", "ok", 10);
    fx_counter(f, FX_SEGMENTS, "api", "AWS::EC2::Instance", "error", 1);
    fx_counter(f, FX_SEGMENTS, "api", "AWS::EC2::Instance", "fault", 2);
    uint64_t b[FX_NB + 1] = {[0] = 3, [5] = 2, [FX_NB] = 1};
    fx_hist(f, FX_DURATION, "api", "AWS::EC2::Instance", NULL, b, 20.5);
    struct bodies *out = bodies_new();
    assert_int_equal(put_metric_data_encode(&defaults, NULL, &f->snap, keep, out), 1);
#define DIMS                                                                                       \
    "\"Dimensions\":[{\"Name\":\"Service\",\"Value\":\"api\"},{\"Name\":\"ServiceType\","          \
    "\"Value\":\"AWS::EC2::Instance\"}],\"Timestamp\":1700000000.123,"
#define COUNT(name, v)                                                                             \
    "{\"MetricName\":\"" name "\"," DIMS "\"Value\":" v ",\"Unit\":\"Count\","                     \
    "\"StorageResolution\":60}"
    assert_string_equal(
        out->text[0],
        "{\"Namespace\":\"XRayDaemon\",\"MetricData\":[" COUNT("Requests", "13") "," COUNT(
            "Errors",
            "1") "," COUNT("Throttles",
                           "0") "," COUNT("Faults",
                                          "2") ",{\"MetricName\":\"Latency\"," DIMS
                                               "\"Values\":[1,30,15000],"
                                               "\"Counts\":[3,2,1],\"Unit\":\"Milliseconds\","
                                               "\"StorageResolution\":60}]}");
#undef COUNT
#undef DIMS
    json_t *data = data_of(out, 0);
    assert_int_equal(json_array_size(data), 5);
    const char *names[] = {"Requests", "Errors", "Throttles", "Faults"};
    const int values[] = {13, 1, 0, 2};
    char s[512];
    for (size_t i = 0; i < 4; i++) {
        json_t *d = json_array_get(data, i);
        assert_string_equal(check_datum(d, "Count", 6), names[i]);
        assert_int_equal(json_integer_value(json_object_get(d, "Value")), values[i]);
        dims_of(d, s, sizeof(s));
        assert_string_equal(s, "Service=api,ServiceType=AWS::EC2::Instance");
    }
    json_t *lat = json_array_get(data, 4);
    assert_string_equal(check_datum(lat, "Milliseconds", 7), "Latency");
    numbers_of(lat, "Values", s, sizeof(s));
    assert_string_equal(s, "1,30,15000");
    numbers_of(lat, "Counts", s, sizeof(s));
    assert_string_equal(s, "3,2,1");
    bodies_free(out);
    fx_free(f);
}

static void test_put_metric_data_encode_edge(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    fx_counter(f, FX_EDGE_TOTAL, "api", "orders-db", "database", 4);
    fx_counter(f, FX_EDGE_FAILED, "api", "orders-db", "database", 1);
    uint64_t cl[FX_NB + 1] = {[1] = 2, [13] = 1};
    uint64_t sv[FX_NB + 1] = {[4] = 3};
    fx_hist(f, FX_EDGE_CLIENT, "api", "orders-db", "database", cl, 3.0);
    fx_hist(f, FX_EDGE_SERVER, "api", "orders-db", "database", sv, 0.03);
    struct bodies *out = bodies_new();
    assert_int_equal(put_metric_data_encode(&defaults, NULL, &f->snap, keep, out), 1);
    json_t *data = data_of(out, 0);
    assert_int_equal(json_array_size(data), 4);
    char s[512];
    const char *names[] = {"Requests", "Failed", "ClientLatency", "ServerLatency"};
    for (size_t i = 0; i < 4; i++) {
        json_t *d = json_array_get(data, i);
        assert_string_equal(check_datum(d, i < 2 ? "Count" : "Milliseconds", i < 2 ? 6 : 7),
                            names[i]);
        dims_of(d, s, sizeof(s));
        assert_string_equal(s, "Client=api,Server=orders-db,ConnectionType=database");
    }
    assert_int_equal(json_integer_value(json_object_get(json_array_get(data, 0), "Value")), 4);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(data, 1), "Value")), 1);
    numbers_of(json_array_get(data, 2), "Values", s, sizeof(s));
    assert_string_equal(s, "3,3500");
    numbers_of(json_array_get(data, 2), "Counts", s, sizeof(s));
    assert_string_equal(s, "2,1");
    numbers_of(json_array_get(data, 3), "Values", s, sizeof(s));
    assert_string_equal(s, "9");
    numbers_of(json_array_get(data, 3), "Counts", s, sizeof(s));
    assert_string_equal(s, "3");
    bodies_free(out);
    fx_free(f);
}

static void test_put_metric_data_encode_delta(void **state)
{
    (void)state;
    struct fx *p = fx_new(FX_TS - 60000);
    struct fx *c = fx_new(FX_TS);
    uint64_t pb[FX_NB + 1] = {[0] = 3, [8] = 1};
    uint64_t cb[FX_NB + 1] = {[0] = 5, [8] = 1, [9] = 4};
    fx_counter(p, FX_SEGMENTS, "api", "", "ok", 10);
    fx_counter(p, FX_SEGMENTS, "api", "", "throttle", 3);
    fx_hist(p, FX_DURATION, "api", "", NULL, pb, 0.4);
    fx_counter(p, FX_SEGMENTS, "idle", "", "ok", 2);
    fx_counter(c, FX_SEGMENTS, "idle", "", "ok", 2);
    fx_counter(c, FX_SEGMENTS, "api", "", "ok", 12);
    fx_counter(c, FX_SEGMENTS, "api", "", "throttle", 1); /* went down: a restart */
    fx_hist(c, FX_DURATION, "api", "", NULL, cb, 3.4);
    struct cloudwatch_stats st = {0};
    struct pmd_options o = {.stats = &st};
    struct bodies *out = bodies_new();
    assert_int_equal(put_metric_data_encode(&o, &p->snap, &c->snap, keep, out), 1);
    assert_int_equal(st.resets, 1);
    json_t *data = data_of(out, 0);
    assert_int_equal(json_array_size(data), 5); /* api only */
    const int values[] = {3, 0, 1, 0};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(data, i), "Value")),
                         values[i]);
    char s[256];
    numbers_of(json_array_get(data, 4), "Values", s, sizeof(s));
    assert_string_equal(s, "1,600");
    numbers_of(json_array_get(data, 4), "Counts", s, sizeof(s));
    assert_string_equal(s, "2,4");
    bodies_free(out);

    out = bodies_new(); /* nothing happened: no body at all */
    assert_int_equal(put_metric_data_encode(&o, &c->snap, &c->snap, keep, out), 0);
    assert_int_equal(out->n, 0);
    bodies_free(out);
    fx_free(p);
    fx_free(c);
}

static void test_put_metric_data_encode_split_metrics(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    uint64_t b[FX_NB + 1] = {[2] = 1};
    for (int i = 0; i < 250; i++) {
        char name[32];
        snprintf(name, sizeof(name), "service-%03d", i);
        fx_counter(f, FX_SEGMENTS, name, "", "ok", 1);
        fx_hist(f, FX_DURATION, name, "", NULL, b, 0.005);
    }
    struct bodies *out = bodies_new();
    assert_int_equal(put_metric_data_encode(&defaults, NULL, &f->snap, keep, out), 2);
    assert_int_equal(json_array_size(data_of(out, 0)), 1000);
    assert_int_equal(json_array_size(data_of(out, 1)), 250);
    /* every service's five data, in order, across the two bodies */
    size_t k = 0;
    const char *names[] = {"Requests", "Errors", "Throttles", "Faults", "Latency"};
    for (size_t i = 0; i < out->n; i++) {
        assert_true(out->len[i] <= PMD_BODY_MAX);
        json_t *data = data_of(out, i);
        for (size_t j = 0; j < json_array_size(data); j++, k++) {
            json_t *d = json_array_get(data, j);
            char want[64], s[128];
            assert_string_equal(json_string_value(json_object_get(d, "MetricName")), names[k % 5]);
            snprintf(want, sizeof(want), "Service=service-%03zu", k / 5);
            dims_of(d, s, sizeof(s));
            assert_string_equal(s, want);
        }
    }
    assert_int_equal(k, 1250);
    bodies_free(out);

    struct pmd_options o = {.metrics_per_call = 7};
    out = bodies_new();
    fx_free(f);
    f = fx_new(FX_TS);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "s%d", i);
        fx_counter(f, FX_SEGMENTS, name, "", "ok", 1);
    }
    assert_int_equal(put_metric_data_encode(&o, NULL, &f->snap, keep, out), 2);
    assert_int_equal(json_array_size(data_of(out, 0)), 7);
    assert_int_equal(json_array_size(data_of(out, 1)), 5);
    bodies_free(out);
    fx_free(f);
}

static void test_put_metric_data_encode_split_values(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    uint64_t b[FX_NB + 1] = {[0] = 1, [1] = 2, [2] = 3, [3] = 4, [4] = 5, [5] = 6, [FX_NB] = 7};
    fx_hist(f, FX_DURATION, "api", "", NULL, b, 200);
    struct pmd_options o = {.values_per_datum = 3};
    struct bodies *out = bodies_new();
    assert_int_equal(put_metric_data_encode(&o, NULL, &f->snap, keep, out), 1);
    json_t *data = data_of(out, 0);
    /* the segments family is there but has no series: counts of 0, then latency */
    assert_int_equal(json_array_size(data), 4 + 3);
    const char *values[] = {"1,3,5", "7,9,30", "15000"};
    const char *counts[] = {"1,2,3", "4,5,6", "7"};
    char s[256];
    for (size_t i = 0; i < 3; i++) {
        json_t *d = json_array_get(data, 4 + i);
        assert_string_equal(check_datum(d, "Milliseconds", 7), "Latency");
        numbers_of(d, "Values", s, sizeof(s));
        assert_string_equal(s, values[i]);
        numbers_of(d, "Counts", s, sizeof(s));
        assert_string_equal(s, counts[i]);
        dims_of(d, s, sizeof(s));
        assert_string_equal(s, "Service=api");
    }
    bodies_free(out);

    /* every bucket non-empty: one datum under the default 150 values */
    out = bodies_new();
    uint64_t all[FX_NB + 1];
    for (int i = 0; i <= FX_NB; i++)
        all[i] = (uint64_t)i + 1;
    fx_hist(f, FX_DURATION, "web", "", NULL, all, 1);
    assert_int_equal(put_metric_data_encode(&defaults, NULL, &f->snap, keep, out), 1);
    data = data_of(out, 0);
    assert_int_equal(json_array_size(data), 10); /* api: 4 + 1, web: 4 + 1 */
    assert_int_equal(json_array_size(json_object_get(json_array_get(data, 9), "Counts")), 17);
    bodies_free(out);
    fx_free(f);
}

static void test_put_metric_data_encode_split_bytes(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    uint64_t b[FX_NB + 1] = {[0] = 1, [7] = 2};
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof(name), "service-%02d", i);
        fx_counter(f, FX_SEGMENTS, name, "", "error", 2);
        fx_hist(f, FX_DURATION, name, "", NULL, b, 0.3);
    }
    struct bodies *all = bodies_new();
    assert_int_equal(put_metric_data_encode(&defaults, NULL, &f->snap, keep, all), 1);
    json_t *want = data_of(all, 0);
    assert_int_equal(json_array_size(want), 100);

    struct pmd_options o = {.max_body_bytes = 700};
    struct bodies *out = bodies_new();
    int n = put_metric_data_encode(&o, NULL, &f->snap, keep, out);
    assert_true(n > 1);
    assert_int_equal((size_t)n, out->n);
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++) {
        assert_true(out->len[i] <= 700);
        json_t *data = data_of(out, i);
        assert_true(json_array_size(data) > 0);
        for (size_t j = 0; j < json_array_size(data); j++, k++)
            assert_true(json_equal(json_array_get(data, j), json_array_get(want, k)));
        /* closed where the next datum would not fit */
        if (i + 1 < out->n) {
            char *next = json_dumps(json_array_get(want, k),
                                    JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
            assert_true(out->len[i] + 1 + strlen(next) > 700);
            free(next);
        }
    }
    assert_int_equal(k, 100);
    bodies_free(out);

    /* a datum that fits no body: counted and skipped */
    struct cloudwatch_stats st = {0};
    o.max_body_bytes = 150;
    o.stats = &st;
    out = bodies_new();
    assert_int_equal(put_metric_data_encode(&o, NULL, &f->snap, keep, out), 0);
    assert_int_equal(st.refused, 100);
    bodies_free(out);
    bodies_free(all);
    fx_free(f);
}

static void test_put_metric_data_encode_escaping(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    const char *name = "a\"b\\c\r\x1f\xe2\x82\xac";
    fx_counter(f, FX_EDGE_TOTAL, name, "s\"", "", 1);
    struct pmd_options o = {.ns = "My \"App\""};
    struct bodies *out = bodies_new();
    assert_int_equal(put_metric_data_encode(&o, NULL, &f->snap, keep, out), 1);
    assert_non_null(strstr(out->text[0], "\"Value\":\"a\\\"b\\\\c\\r\\u001f\xe2\x82\xac\""));
    assert_string_equal(json_string_value(json_object_get(out->json[0], "Namespace")),
                        "My \"App\"");
    json_t *d = json_array_get(json_object_get(out->json[0], "MetricData"), 0);
    json_t *dims = json_object_get(d, "Dimensions");
    assert_string_equal(json_string_value(json_object_get(json_array_get(dims, 0), "Value")), name);
    assert_string_equal(json_string_value(json_object_get(json_array_get(dims, 1), "Value")),
                        "s\"");
    bodies_free(out);
    fx_free(f);
}

static void test_put_metric_data_encode_errors(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    for (int i = 0; i < 300; i++) {
        char name[32];
        snprintf(name, sizeof(name), "s%d", i);
        fx_counter(f, FX_SEGMENTS, name, "", "ok", 1);
    }
    struct bodies *out = bodies_new();
    struct pmd_options bad[] = {{.ns = ""},
                                {.ns = "AWS/X"},
                                {.storage_resolution = 5},
                                {.metrics_per_call = 1001},
                                {.values_per_datum = 151},
                                {.max_body_bytes = PMD_BODY_MAX + 1}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(put_metric_data_encode(&bad[i], NULL, &f->snap, keep, out), -EINVAL);
    assert_int_equal(out->n, 0);
    out->fail_at = 2;
    assert_int_equal(put_metric_data_encode(&defaults, NULL, &f->snap, keep, out), -EIO);
    assert_int_equal(out->n, 1);
    bodies_free(out);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_metric_data_encode_node),
        cmocka_unit_test(test_put_metric_data_encode_edge),
        cmocka_unit_test(test_put_metric_data_encode_delta),
        cmocka_unit_test(test_put_metric_data_encode_split_metrics),
        cmocka_unit_test(test_put_metric_data_encode_split_values),
        cmocka_unit_test(test_put_metric_data_encode_split_bytes),
        cmocka_unit_test(test_put_metric_data_encode_escaping),
        cmocka_unit_test(test_put_metric_data_encode_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
