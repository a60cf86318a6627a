/* SPDX-License-Identifier: Apache-2.0 */
/* Remote write bodies: hand-built snapshots encoded, then snappy-uncompressed and
 * decoded with the generated protobuf code; every series held to its exact labels
 * (sorted, no empty values), value bits and timestamp. Also le formatting, the stale
 * marker for every series of a histogram, the size limit and the empty body. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "metrics/registry.h"
#include "metrics/remote_write.h"
#include "remote.pb-c.h"

#define TS    INT64_C(1700000000123)
#define STALE REMOTE_WRITE_STALE_NAN_BITS

static const char *const counter_labels[] = {"service", "origin"};
static const struct metric_family_def counter_def = {
    .name = "xrayd_segments_total",
    .help = "Segments received.",
    .type = METRIC_COUNTER,
    .nlabels = 2,
    .labels = counter_labels,
};
static const char *const gauge_labels[] = {"queue"};
static const struct metric_family_def gauge_def = {
    .name = "xrayd_queue_depth",
    .help = "Documents waiting.",
    .type = METRIC_GAUGE,
    .nlabels = 1,
    .labels = gauge_labels,
};
static const char *const hist_labels[] = {"service"};
static const double hist_bounds[] = {0.002, 1.4, 15};
static const struct metric_family_def hist_def = {
    .name = "xrayd_latency_seconds",
    .help = "Latency.",
    .type = METRIC_HISTOGRAM,
    .nlabels = 1,
    .labels = hist_labels,
    .nbuckets = 3,
    .buckets = hist_bounds,
};

static uint64_t bits_of(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static double double_of(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* Uncompresses and decodes a body; the caller frees with free_request(). */
static Prometheus__WriteRequest *decode(const struct buf *b)
{
    size_t n = 0;
    assert_int_equal(snappy_uncompressed_length(b->data, b->len, &n), SNAPPY_OK);
    char *raw = malloc(n ? n : 1);
    assert_non_null(raw);
    assert_int_equal(snappy_uncompress(b->data, b->len, raw, &n), SNAPPY_OK);
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, n, (const uint8_t *)raw);
    free(raw);
    assert_non_null(wr);
    return wr;
}

static void free_request(Prometheus__WriteRequest *wr)
{
    prometheus__write_request__free_unpacked(wr, NULL);
}

/* ts has exactly the labels of want (name, value, ..., NULL) in that order and one
 * sample of value_bits at TS. */
static void expect_series(const Prometheus__TimeSeries *ts, const char *const *want,
                          uint64_t value_bits)
{
    size_t n = 0;
    for (; want[2 * n] != NULL; n++) {
        assert_true(n < ts->n_labels);
        assert_string_equal(ts->labels[n]->name, want[2 * n]);
        assert_string_equal(ts->labels[n]->value, want[2 * n + 1]);
    }
    assert_int_equal(ts->n_labels, n);
    assert_int_equal(ts->n_samples, 1);
    assert_int_equal(ts->samples[0]->timestamp, TS);
    assert_int_equal(bits_of(ts->samples[0]->value), value_bits);
}

static void test_remote_write_encode_snapshot(void **state)
{
    (void)state;
    const struct metric_label c1[] = {{"service", "api"}, {"origin", "AWS::EC2::Instance"}};
    const struct metric_label c2[] = {{"service", "db"}, {"origin", ""}};
    const struct metric_label c3[] = {{"service", "old"}, {"origin", "X"}};
    const struct metric_sample counters[] = {
        {.labels = c1, .nlabels = 2, .value = 42},
        {.labels = c2, .nlabels = 2, .value = 7},
    };
    const struct metric_sample counter_stale[] = {{.labels = c3, .nlabels = 2}};
    const struct metric_label g1[] = {{"queue", "upload"}};
    const struct metric_sample gauges[] = {{.labels = g1, .nlabels = 1, .value = 3.5}};
    const struct metric_label h1[] = {{"service", "api"}};
    const uint64_t h1_buckets[] = {1, 3, 4};
    const struct metric_sample hists[] = {
        {.labels = h1, .nlabels = 1, .value = 20.5, .count = 5, .buckets = h1_buckets},
    };
    const struct metric_family_snapshot fams[] = {
        {.def = &counter_def,
         .nseries = 2,
         .series = counters,
         .nstale = 1,
         .stale = counter_stale},
        {.def = &gauge_def, .nseries = 1, .series = gauges},
        {.def = &hist_def, .nseries = 1, .series = hists},
    };
    const struct registry_snapshot snap = {.nfamilies = 3, .families = fams};

    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(remote_write_encode(&snap, TS, &b), 0);
    Prometheus__WriteRequest *wr = decode(&b);
    assert_int_equal(wr->n_timeseries, 10);
    Prometheus__TimeSeries **t = wr->timeseries;

    expect_series(t[0],
                  (const char *const[]){"__name__", "xrayd_segments_total", "origin",
                                        "AWS::EC2::Instance", "service", "api", NULL},
                  bits_of(42));
    expect_series(t[1],
                  (const char *const[]){"__name__", "xrayd_segments_total", "service", "db", NULL},
                  bits_of(7));
    expect_series(t[2],
                  (const char *const[]){"__name__", "xrayd_segments_total", "origin", "X",
                                        "service", "old", NULL},
                  UINT64_C(0x7ff0000000000002));
    expect_series(t[3],
                  (const char *const[]){"__name__", "xrayd_queue_depth", "queue", "upload", NULL},
                  bits_of(3.5));
    expect_series(t[4],
                  (const char *const[]){"__name__", "xrayd_latency_seconds_bucket", "le", "0.002",
                                        "service", "api", NULL},
                  bits_of(1));
    expect_series(t[5],
                  (const char *const[]){"__name__", "xrayd_latency_seconds_bucket", "le", "1.4",
                                        "service", "api", NULL},
                  bits_of(3));
    expect_series(t[6],
                  (const char *const[]){"__name__", "xrayd_latency_seconds_bucket", "le", "15",
                                        "service", "api", NULL},
                  bits_of(4));
    expect_series(t[7],
                  (const char *const[]){"__name__", "xrayd_latency_seconds_bucket", "le", "+Inf",
                                        "service", "api", NULL},
                  bits_of(5));
    expect_series(
        t[8],
        (const char *const[]){"__name__", "xrayd_latency_seconds_sum", "service", "api", NULL},
        bits_of(20.5));
    expect_series(
        t[9],
        (const char *const[]){"__name__", "xrayd_latency_seconds_count", "service", "api", NULL},
        bits_of(5));
    free_request(wr);
    buf_free(&b);
}

/* A histogram series that went away: every one of its series gets the stale marker,
 * the +Inf bucket included; stale samples carry labels only. */
static void test_remote_write_encode_stale_histogram(void **state)
{
    (void)state;
    const struct metric_label h1[] = {{"service", "gone"}};
    const struct metric_sample stale[] = {{.labels = h1, .nlabels = 1}};
    const struct metric_family_snapshot fams[] = {
        {.def = &hist_def, .nstale = 1, .stale = stale},
    };
    const struct registry_snapshot snap = {.nfamilies = 1, .families = fams};
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(remote_write_encode(&snap, TS, &b), 0);
    Prometheus__WriteRequest *wr = decode(&b);
    assert_int_equal(wr->n_timeseries, 6);
    const char *const le[] = {"0.002", "1.4", "15", "+Inf"};
    for (size_t i = 0; i < 4; i++)
        expect_series(wr->timeseries[i],
                      (const char *const[]){"__name__", "xrayd_latency_seconds_bucket", "le", le[i],
                                            "service", "gone", NULL},
                      STALE);
    expect_series(
        wr->timeseries[4],
        (const char *const[]){"__name__", "xrayd_latency_seconds_sum", "service", "gone", NULL},
        STALE);
    expect_series(
        wr->timeseries[5],
        (const char *const[]){"__name__", "xrayd_latency_seconds_count", "service", "gone", NULL},
        STALE);
    assert_true(isnan(wr->timeseries[5]->samples[0]->value));
    free_request(wr);
    buf_free(&b);
}

/* The overflow series (overflow="true", the family's labels ""), sorting by bytes
 * (upper case before "__name__"), and one label per name: __name__ is the family's. */
static void test_remote_write_encode_labels(void **state)
{
    (void)state;
    static const char *const names[] = {"service", "Zone", "__name__"};
    static const struct metric_family_def def = {
        .name = "xrayd_faults_total",
        .type = METRIC_COUNTER,
        .nlabels = 3,
        .labels = names,
    };
    const struct metric_label l1[] = {
        {"service", ""}, {"Zone", ""}, {"__name__", ""}, {"overflow", "true"}};
    const struct metric_label l2[] = {{"service", "a"}, {"Zone", "z"}, {"__name__", "bogus"}};
    const struct metric_sample series[] = {
        {.labels = l1, .nlabels = 4, .value = 1},
        {.labels = l2, .nlabels = 3, .value = 2},
    };
    const struct metric_family_snapshot fams[] = {{.def = &def, .nseries = 2, .series = series}};
    const struct registry_snapshot snap = {.nfamilies = 1, .families = fams};
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(remote_write_encode(&snap, TS, &b), 0);
    Prometheus__WriteRequest *wr = decode(&b);
    assert_int_equal(wr->n_timeseries, 2);
    expect_series(wr->timeseries[0],
                  (const char *const[]){"__name__", "xrayd_faults_total", "overflow", "true", NULL},
                  bits_of(1));
    expect_series(
        wr->timeseries[1],
        (const char *const[]){"Zone", "z", "__name__", "xrayd_faults_total", "service", "a", NULL},
        bits_of(2));
    free_request(wr);
    buf_free(&b);
}

/* The exact compressed size fits; one byte less is -ENOSPC and out keeps what it had. */
static void test_remote_write_encode_nospace(void **state)
{
    (void)state;
    const struct metric_label g1[] = {{"queue", "upload"}};
    const struct metric_sample gauges[] = {{.labels = g1, .nlabels = 1, .value = 3.5}};
    const struct metric_family_snapshot fams[] = {
        {.def = &gauge_def, .nseries = 1, .series = gauges}};
    const struct registry_snapshot snap = {.nfamilies = 1, .families = fams};

    struct buf big;
    buf_init(&big, 1 << 20);
    assert_int_equal(remote_write_encode(&snap, TS, &big), 0);
    assert_true(big.len > 20);

    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(remote_write_encode(&snap, TS, &b), -ENOSPC);
    assert_int_equal(b.len, 0);

    buf_init(&b, big.len + 1);
    assert_int_equal(buf_append(&b, "ab", 2), 0);
    assert_int_equal(remote_write_encode(&snap, TS, &b), -ENOSPC);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "ab", 2);
    buf_free(&b);

    buf_init(&b, big.len);
    assert_int_equal(remote_write_encode(&snap, TS, &b), 0);
    assert_int_equal(b.len, big.len);
    assert_memory_equal(b.data, big.data, big.len);
    buf_free(&b);

    buf_init(&b, big.len + 2); /* appends after what out holds */
    assert_int_equal(buf_append(&b, "ab", 2), 0);
    assert_int_equal(remote_write_encode(&snap, TS, &b), 0);
    assert_int_equal(b.len, big.len + 2);
    assert_memory_equal(b.data + 2, big.data, big.len);
    buf_free(&b);
    buf_free(&big);
}

/* No families: snappy's encoding of zero bytes, which decodes to an empty request. */
static void test_remote_write_encode_empty(void **state)
{
    (void)state;
    const struct registry_snapshot snap = {.nfamilies = 0};
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(remote_write_encode(&snap, TS, &b), 0);
    assert_int_equal(b.len, 1);
    assert_int_equal((unsigned char)b.data[0], 0);
    Prometheus__WriteRequest *wr = decode(&b);
    assert_int_equal(wr->n_timeseries, 0);
    free_request(wr);
    buf_free(&b);
}

/* Outside registry.h's limits: refused, never cut. */
static void test_remote_write_encode_invalid(void **state)
{
    (void)state;
    char name[METRIC_NAME_MAX + 16];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    const struct metric_family_def def = {.name = name, .type = METRIC_GAUGE};
    const struct metric_sample series[] = {{.value = 1}};
    const struct metric_family_snapshot fams[] = {{.def = &def, .nseries = 1, .series = series}};
    const struct registry_snapshot snap = {.nfamilies = 1, .families = fams};
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(remote_write_encode(&snap, TS, &b), -EINVAL);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void expect_le(double v, const char *want)
{
    char s[REMOTE_WRITE_LE_LEN];
    size_t n = remote_write_format_le(v, s);
    assert_string_equal(s, want);
    assert_int_equal(n, strlen(want));
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64), which Prometheus uses for le. */
static void test_remote_write_format_le(void **state)
{
    (void)state;
    expect_le(0.002, "0.002");
    expect_le(1, "1");
    expect_le(1.4, "1.4");
    expect_le(15, "15");
    expect_le(0, "0");
    expect_le(0.1, "0.1");
    expect_le(0.25, "0.25");
    expect_le(2.5, "2.5");
    expect_le(0.0001, "0.0001");
    expect_le(0.00001, "1e-05");
    expect_le(0.000015, "1.5e-05");
    expect_le(999999, "999999");
    expect_le(123456.7, "123456.7");
    expect_le(1e6, "1e+06");
    expect_le(1234567, "1.234567e+06");
    expect_le(1e21, "1e+21");
    expect_le(1.0 / 3, "0.3333333333333333");
    expect_le(-2.5, "-2.5");
    expect_le(INFINITY, "+Inf");
    expect_le(-INFINITY, "-Inf");
    expect_le(double_of(UINT64_C(0x7fefffffffffffff)), "1.7976931348623157e+308");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remote_write_encode_snapshot),
        cmocka_unit_test(test_remote_write_encode_stale_histogram),
        cmocka_unit_test(test_remote_write_encode_labels),
        cmocka_unit_test(test_remote_write_encode_nospace),
        cmocka_unit_test(test_remote_write_encode_empty),
        cmocka_unit_test(test_remote_write_encode_invalid),
        cmocka_unit_test(test_remote_write_format_le),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
