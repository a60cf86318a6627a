/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics registry: family validation, series lookup and label cutting, the
 * overflow series at the budget, idle expiry and the stale list (with a fake clock),
 * histogram buckets, snapshots that do not change after the registry does, and the
 * byte accounting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "metrics/registry.h"

#define MIN_MS (60u * 1000)

static const char *const edge_labels[] = {"client", "server", "connection_type"};
static const double graph_buckets[] = {0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2,
                                       0.4,   0.8,   1,     1.4,   2,    5,    10,  15};

static const struct metric_family_def requests = {
    .name = "traces_service_graph_request_total",
    .help = "Requests between two nodes.",
    .type = METRIC_COUNTER,
    .nlabels = 3,
    .labels = edge_labels,
};

static const struct metric_family_def latency = {
    .name = "traces_service_graph_request_server_seconds",
    .help = "Server-side latency.",
    .type = METRIC_HISTOGRAM,
    .nlabels = 3,
    .labels = edge_labels,
    .nbuckets = 16,
    .buckets = graph_buckets,
};

static const struct metric_family_def memory = {
    .name = "xray_memory_used_bytes",
    .help = "Memory in use.",
    .type = METRIC_GAUGE,
};

static struct metric_series *edge(struct registry *r, int fam, const char *client,
                                  const char *server, const char *type, uint64_t now)
{
    const char *v[3] = {client, server, type};
    size_t n[3] = {strlen(client), strlen(server), strlen(type)};
    return registry_series(r, fam, v, n, now);
}

static struct registry *make(uint32_t budget, uint64_t idle_ms)
{
    struct registry_options o = {.series_budget = budget, .idle_ms = idle_ms};
    struct registry *r = registry_create(&o);
    assert_non_null(r);
    return r;
}

static int declare(struct registry *r, const char *name, uint8_t type, uint8_t nlabels,
                   const char *const *labels, uint8_t nbuckets, const double *buckets)
{
    /* The registry keeps the pointer: these tests use one registry per definition. */
    static struct metric_family_def defs[64];
    static size_t used;
    struct metric_family_def *d = &defs[used++ % 64];
    *d = (struct metric_family_def){name, "Help.", type, nlabels, labels, nbuckets, buckets};
    return registry_family(r, d);
}

static void test_registry_family_valid(void **state)
{
    (void)state;
    struct registry *r = make(0, 0);
    assert_int_equal(registry_family(r, &requests), 0);
    assert_int_equal(registry_family(r, &latency), 1);
    assert_int_equal(registry_family(r, &memory), 2);
    assert_int_equal(registry_family(r, &requests), -EEXIST);
    assert_int_equal(declare(r, "xray_memory_used_bytes", METRIC_GAUGE, 0, NULL, 0, NULL), -EEXIST);
    assert_int_equal(declare(r, "ns:sub:name_total", METRIC_COUNTER, 0, NULL, 0, NULL), 3);
    const char *const ok[] = {"_x", "A1"};
    assert_int_equal(declare(r, "_a", METRIC_GAUGE, 2, ok, 0, NULL), 4);
    char longest[METRIC_NAME_MAX + 2];
    memset(longest, 'a', sizeof(longest));
    longest[METRIC_NAME_MAX] = '\0';
    assert_int_equal(declare(r, longest, METRIC_GAUGE, 0, NULL, 0, NULL), 5);
    longest[METRIC_NAME_MAX] = 'a';
    longest[METRIC_NAME_MAX + 1] = '\0';
    assert_int_equal(declare(r, longest, METRIC_GAUGE, 0, NULL, 0, NULL), -EINVAL);
    struct registry_stats st;
    registry_get_stats(r, &st);
    assert_int_equal(st.families, 6);
    assert_int_equal(st.series, 0);
    registry_destroy(r);
}

static void test_registry_family_invalid(void **state)
{
    (void)state;
    struct registry *r = make(0, 0);
    /* Metric names. */
    const char *bad_names[] = {"", "9lives", "a-b", "a b", "é", "a.b"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(*bad_names); i++)
        assert_int_equal(declare(r, bad_names[i], METRIC_GAUGE, 0, NULL, 0, NULL), -EINVAL);
    assert_int_equal(declare(r, NULL, METRIC_GAUGE, 0, NULL, 0, NULL), -EINVAL);
    /* Suffixes: counters end in _total, nothing else does; _bucket/_count/_sum are
     * histograms' own. */
    assert_int_equal(declare(r, "requests", METRIC_COUNTER, 0, NULL, 0, NULL), -EINVAL);
    assert_int_equal(declare(r, "_total", METRIC_COUNTER, 0, NULL, 0, NULL), -EINVAL);
    assert_int_equal(declare(r, "queue_total", METRIC_GAUGE, 0, NULL, 0, NULL), -EINVAL);
    assert_int_equal(declare(r, "lat_total", METRIC_HISTOGRAM, 0, NULL, 0, NULL), -EINVAL);
    assert_int_equal(declare(r, "queue_count", METRIC_GAUGE, 0, NULL, 0, NULL), -EINVAL);
    assert_int_equal(declare(r, "queue_sum", METRIC_GAUGE, 0, NULL, 0, NULL), -EINVAL);
    assert_int_equal(declare(r, "queue_bucket", METRIC_GAUGE, 0, NULL, 0, NULL), -EINVAL);
    /* Type. */
    assert_int_equal(declare(r, "odd", 3, 0, NULL, 0, NULL), -EINVAL);
    /* Label names. */
    const char *const bad_labels[][1] = {{"__reserved"}, {"le"},  {"overflow"}, {"a:b"},
                                         {"1a"},         {"a-b"}, {""},         {NULL}};
    for (size_t i = 0; i < sizeof(bad_labels) / sizeof(*bad_labels); i++)
        assert_int_equal(declare(r, "g", METRIC_GAUGE, 1, bad_labels[i], 0, NULL), -EINVAL);
    const char *const dup[] = {"a", "b", "a"};
    assert_int_equal(declare(r, "g", METRIC_GAUGE, 3, dup, 0, NULL), -EINVAL);
    assert_int_equal(declare(r, "g", METRIC_GAUGE, 1, NULL, 0, NULL), -EINVAL);
    const char *const nine[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    assert_int_equal(declare(r, "g", METRIC_GAUGE, 9, nine, 0, NULL), -EINVAL);
    assert_int_equal(declare(r, "g", METRIC_GAUGE, 8, nine, 0, NULL), 0);
    /* Buckets: strictly increasing, finite, at most METRIC_BUCKETS_MAX, histograms only. */
    const double equal[] = {1, 2, 2}, down[] = {1, 0.5}, nan[] = {1, NAN}, inf[] = {1, INFINITY};
    assert_int_equal(declare(r, "h", METRIC_HISTOGRAM, 0, NULL, 3, equal), -EINVAL);
    assert_int_equal(declare(r, "h", METRIC_HISTOGRAM, 0, NULL, 2, down), -EINVAL);
    assert_int_equal(declare(r, "h", METRIC_HISTOGRAM, 0, NULL, 2, nan), -EINVAL);
    assert_int_equal(declare(r, "h", METRIC_HISTOGRAM, 0, NULL, 2, inf), -EINVAL);
    assert_int_equal(declare(r, "h", METRIC_HISTOGRAM, 0, NULL, 1, NULL), -EINVAL);
    double many[METRIC_BUCKETS_MAX + 1];
    for (size_t i = 0; i < METRIC_BUCKETS_MAX + 1; i++)
        many[i] = (double)i;
    assert_int_equal(declare(r, "h", METRIC_HISTOGRAM, 0, NULL, METRIC_BUCKETS_MAX + 1, many),
                     -EINVAL);
    assert_int_equal(declare(r, "g2", METRIC_GAUGE, 0, NULL, 2, down + 1), -EINVAL);
    assert_int_equal(declare(r, "h", METRIC_HISTOGRAM, 0, NULL, METRIC_BUCKETS_MAX, many), 1);
    /* Help: required, not empty. */
    struct metric_family_def nohelp = {"x", NULL, METRIC_GAUGE, 0, NULL, 0, NULL};
    assert_int_equal(registry_family(r, &nohelp), -EINVAL);
    nohelp.help = "";
    assert_int_equal(registry_family(r, &nohelp), -EINVAL);
    assert_int_equal(registry_family(r, NULL), -EINVAL);
    struct registry_stats st;
    registry_get_stats(r, &st);
    assert_int_equal(st.families, 2);
    registry_destroy(r);
}

static void test_registry_series_lookup(void **state)
{
    (void)state;
    struct registry *r = make(0, 0);
    int req = registry_family(r, &requests), mem = registry_family(r, &memory);
    struct metric_series *a = edge(r, req, "user", "web", "", 1);
    struct metric_series *b = edge(r, req, "web", "db", "database", 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(edge(r, req, "user", "web", "", 2), a);
    /* Values are compared whole: "ab"+"c" is not "a"+"bc". */
    struct metric_series *c = edge(r, req, "ab", "c", "", 2);
    assert_ptr_not_equal(edge(r, req, "a", "bc", "", 2), c);
    struct metric_series *g = registry_series(r, mem, NULL, NULL, 3);
    assert_non_null(g);
    assert_ptr_equal(registry_series(r, mem, NULL, NULL, 4), g);
    metric_counter_add(a, 2);
    metric_counter_add(a, 0.5);
    metric_counter_add(a, -7);  /* refused: counters never go down */
    metric_counter_add(a, NAN); /* refused */
    metric_gauge_set(g, 10);
    metric_gauge_set(g, -3.25);
    struct registry_stats st;
    registry_get_stats(r, &st);
    assert_int_equal(st.series, 5);
    assert_int_equal(st.overflowed, 0);
    struct registry_snapshot *s = registry_snapshot(r, 5, 1700000000000, true);
    assert_non_null(s);
    assert_int_equal(s->taken_ms, 5);
    assert_int_equal(s->taken_epoch_ms, 1700000000000);
    assert_int_equal(s->nfamilies, 2);
    const struct metric_family_snapshot *f = &s->families[0];
    assert_ptr_equal(f->def, &requests);
    assert_int_equal(f->nseries, 4);
    /* Creation order, labels in declaration order. */
    assert_string_equal(f->series[0].labels[0].value, "user");
    assert_string_equal(f->series[1].labels[0].value, "web");
    assert_string_equal(f->series[2].labels[0].value, "ab");
    assert_string_equal(f->series[3].labels[0].value, "a");
    assert_int_equal(f->series[1].nlabels, 3);
    assert_string_equal(f->series[1].labels[0].name, "client");
    assert_string_equal(f->series[1].labels[1].name, "server");
    assert_string_equal(f->series[1].labels[1].value, "db");
    assert_string_equal(f->series[1].labels[2].name, "connection_type");
    assert_string_equal(f->series[1].labels[2].value, "database");
    assert_true(f->series[0].value == 2.5);
    assert_int_equal(f->series[0].updated_ms, 2);
    assert_int_equal(f->series[1].updated_ms, 1);
    assert_int_equal(f->nstale, 0);
    assert_int_equal(s->families[1].nseries, 1);
    assert_int_equal(s->families[1].series[0].nlabels, 0);
    assert_true(s->families[1].series[0].value == -3.25);
    assert_int_equal(s->families[1].series[0].updated_ms, 4);
    registry_snapshot_free(s);
    registry_destroy(r);
}

static void test_registry_label_cut(void **state)
{
    (void)state;
    struct registry *r = make(0, 0);
    int req = registry_family(r, &requests);
    char a300[301], a256[257], utf[258];
    memset(a300, 'a', 300);
    a300[300] = '\0';
    memcpy(a256, a300, 256);
    a256[256] = '\0';
    /* 255 ASCII bytes then "é" (2 bytes): cutting at 256 would split it. */
    memset(utf, 'b', 255);
    memcpy(utf + 255, "\xc3\xa9", 3);
    struct metric_series *x = edge(r, req, a300, "s", "", 1);
    assert_ptr_equal(edge(r, req, a256, "s", "", 1), x);
    struct metric_series *y = edge(r, req, utf, "s", "", 1);
    utf[255] = '\0';
    assert_ptr_equal(edge(r, req, utf, "s", "", 1), y);
    /* A NUL ends a value. */
    const char *v[3] = {"nul\0tail", "s", ""};
    size_t n[3] = {8, 1, 0};
    struct metric_series *z = registry_series(r, req, v, n, 1);
    assert_ptr_equal(edge(r, req, "nul", "s", "", 1), z);
    struct registry_snapshot *s = registry_snapshot(r, 2, 0, true);
    const struct metric_family_snapshot *f = &s->families[0];
    assert_int_equal(f->nseries, 3);
    assert_int_equal(strlen(f->series[0].labels[0].value), 256);
    assert_string_equal(f->series[0].labels[0].value, a256);
    assert_int_equal(strlen(f->series[1].labels[0].value), 255);
    assert_string_equal(f->series[1].labels[0].value, utf);
    assert_string_equal(f->series[2].labels[0].value, "nul");
    registry_snapshot_free(s);
    registry_destroy(r);
}

static void test_registry_overflow(void **state)
{
    (void)state;
    struct registry *r = make(3, 0);
    int req = registry_family(r, &requests);
    struct metric_series *s1 = edge(r, req, "c1", "s", "", 1);
    edge(r, req, "c2", "s", "", 1);
    edge(r, req, "c3", "s", "", 1);
    struct registry_stats st;
    registry_get_stats(r, &st);
    assert_int_equal(st.series, 3);
    assert_int_equal(st.overflowed, 0);
    struct metric_series *o = edge(r, req, "c4", "s", "", 2);
    assert_non_null(o);
    metric_counter_add(o, 1);
    registry_get_stats(r, &st);
    assert_int_equal(st.series, 4);
    assert_int_equal(st.overflowed, 1);
    assert_ptr_equal(edge(r, req, "c5", "x", "database", 3), o);
    metric_counter_add(o, 1);
    /* A label set that exists still gets its own series. */
    assert_ptr_equal(edge(r, req, "c1", "s", "", 3), s1);
    metric_counter_add(s1, 5);
    registry_get_stats(r, &st);
    assert_int_equal(st.series, 4);
    assert_int_equal(st.overflowed, 2);
    struct registry_snapshot *s = registry_snapshot(r, 4, 0, true);
    const struct metric_family_snapshot *f = &s->families[0];
    assert_int_equal(f->nseries, 4);
    const struct metric_sample *m = &f->series[3];
    assert_int_equal(m->nlabels, 4);
    assert_string_equal(m->labels[0].name, "client");
    assert_string_equal(m->labels[0].value, "");
    assert_string_equal(m->labels[1].value, "");
    assert_string_equal(m->labels[2].value, "");
    assert_string_equal(m->labels[3].name, "overflow");
    assert_string_equal(m->labels[3].value, "true");
    assert_true(m->value == 2);
    assert_int_equal(m->updated_ms, 3);
    assert_true(f->series[0].value == 5);
    /* A real label set of empty values is not the overflow series. */
    registry_snapshot_free(s);
    registry_destroy(r);
    r = make(3, 0);
    req = registry_family(r, &requests);
    struct metric_series *empty = edge(r, req, "", "", "", 1);
    edge(r, req, "c2", "s", "", 1);
    edge(r, req, "c3", "s", "", 1);
    assert_ptr_not_equal(edge(r, req, "c4", "s", "", 1), empty);
    assert_ptr_equal(edge(r, req, "", "", "", 1), empty);
    registry_destroy(r);
}

static void test_registry_expire(void **state)
{
    (void)state;
    struct registry *r = make(0, 0); /* the default: 15 minutes */
    int req = registry_family(r, &requests);
    struct metric_series *a = edge(r, req, "a", "s", "", 0);
    struct metric_series *b = edge(r, req, "b", "s", "", 10 * MIN_MS);
    metric_counter_add(a, 1);
    metric_counter_add(b, 1);
    registry_expire(r, 15 * MIN_MS - 1);
    struct registry_stats st;
    registry_get_stats(r, &st);
    assert_int_equal(st.series, 2);
    assert_int_equal(st.expired, 0);
    registry_expire(r, 15 * MIN_MS);
    registry_get_stats(r, &st);
    assert_int_equal(st.series, 1);
    assert_int_equal(st.expired, 1);
    /* The first snapshot after: a is stale, once, with its labels; b lives on. */
    struct registry_snapshot *s = registry_snapshot(r, 15 * MIN_MS, 0, true);
    const struct metric_family_snapshot *f = &s->families[0];
    assert_int_equal(f->nseries, 1);
    assert_string_equal(f->series[0].labels[0].value, "b");
    assert_int_equal(f->nstale, 1);
    assert_int_equal(f->stale[0].nlabels, 3);
    assert_string_equal(f->stale[0].labels[0].name, "client");
    assert_string_equal(f->stale[0].labels[0].value, "a");
    assert_string_equal(f->stale[0].labels[1].value, "s");
    assert_int_equal(f->stale[0].updated_ms, 0);
    registry_snapshot_free(s);
    s = registry_snapshot(r, 16 * MIN_MS, 0, true);
    assert_int_equal(s->families[0].nstale, 0);
    assert_null(s->families[0].stale);
    assert_int_equal(s->families[0].nseries, 1);
    registry_snapshot_free(s);
    /* a comes back as a new series, from zero. */
    a = edge(r, req, "a", "s", "", 16 * MIN_MS);
    s = registry_snapshot(r, 16 * MIN_MS, 0, true);
    f = &s->families[0];
    assert_int_equal(f->nseries, 2);
    assert_string_equal(f->series[1].labels[0].value, "a");
    assert_true(f->series[1].value == 0);
    registry_snapshot_free(s);
    registry_get_stats(r, &st);
    assert_int_equal(st.series, 2);
    assert_int_equal(st.expired, 1);
    registry_destroy(r);
}

static void test_registry_expire_revive(void **state)
{
    (void)state;
    struct registry *r = make(0, MIN_MS);
    int req = registry_family(r, &requests);
    struct metric_series *a = edge(r, req, "a", "s", "", 0);
    edge(r, req, "b", "s", "", 0);
    metric_counter_add(a, 4);
    registry_expire(r, MIN_MS);
    /* Used again before any snapshot reported it gone: it simply comes back, value and
     * all, as the newest series, and is never reported stale. */
    struct metric_series *again = edge(r, req, "a", "s", "", MIN_MS + 1);
    assert_non_null(again);
    metric_counter_add(again, 1);
    struct registry_snapshot *s = registry_snapshot(r, MIN_MS + 2, 0, true);
    const struct metric_family_snapshot *f = &s->families[0];
    assert_int_equal(f->nseries, 1);
    assert_string_equal(f->series[0].labels[0].value, "a");
    assert_true(f->series[0].value == 5);
    assert_int_equal(f->nstale, 1);
    assert_string_equal(f->stale[0].labels[0].value, "b");
    registry_snapshot_free(s);
    struct registry_stats st;
    registry_get_stats(r, &st);
    assert_int_equal(st.series, 1);
    assert_int_equal(st.expired, 2);
    registry_destroy(r);
}

static void test_registry_stale_bounded(void **state)
{
    (void)state;
    struct registry *r = make(2, MIN_MS);
    int req = registry_family(r, &requests);
    edge(r, req, "a", "s", "", 0);
    edge(r, req, "b", "s", "", 0);
    registry_expire(r, MIN_MS);
    edge(r, req, "c", "s", "", MIN_MS);
    edge(r, req, "d", "s", "", MIN_MS);
    edge(r, req, "e", "s", "", MIN_MS); /* overflow */
    registry_expire(r, 2 * MIN_MS);
    struct registry_stats st;
    registry_get_stats(r, &st);
    assert_int_equal(st.series, 0);
    assert_int_equal(st.expired, 5);
    /* At most the budget (2) awaits the snapshot: the newest. */
    struct registry_snapshot *s = registry_snapshot(r, 2 * MIN_MS, 0, true);
    const struct metric_family_snapshot *f = &s->families[0];
    assert_int_equal(f->nseries, 0);
    assert_int_equal(f->nstale, 2);
    assert_string_equal(f->stale[0].labels[0].value, "d");
    assert_int_equal(f->stale[0].nlabels, 3);
    assert_string_equal(f->stale[1].labels[0].value, "");
    assert_int_equal(f->stale[1].nlabels, 4);
    assert_string_equal(f->stale[1].labels[3].name, "overflow");
    assert_string_equal(f->stale[1].labels[3].value, "true");
    registry_snapshot_free(s);
    /* The forgotten ones can be created again, and the overflow series too. */
    assert_non_null(edge(r, req, "a", "s", "", 3 * MIN_MS));
    assert_non_null(edge(r, req, "b", "s", "", 3 * MIN_MS));
    assert_non_null(edge(r, req, "c", "s", "", 3 * MIN_MS));
    registry_get_stats(r, &st);
    assert_int_equal(st.series, 3);
    assert_int_equal(st.overflowed, 2);
    registry_destroy(r);
}

static void test_registry_histogram(void **state)
{
    (void)state;
    struct registry *r = make(0, 0);
    int lat = registry_family(r, &latency);
    struct metric_series *h = edge(r, lat, "user", "web", "", 1);
    const double obs[] = {0.001, 0.002, 0.0021, 0.05, 0.3, 1, 15, 20, NAN};
    for (size_t i = 0; i < sizeof(obs) / sizeof(*obs) - 1; i++)
        metric_histogram_observe(h, obs[i]);
    struct registry_snapshot *s = registry_snapshot(r, 2, 0, true);
    const struct metric_sample *m = &s->families[0].series[0];
    /* Bounds are inclusive (le): 0.002 counts in le="0.002". */
    const uint64_t want[16] = {2, 3, 3, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 6, 6, 7};
    assert_memory_equal(m->buckets, want, sizeof(want));
    assert_int_equal(m->count, 8);
    assert_true(fabs(m->value - 36.3551) < 1e-9);
    registry_snapshot_free(s);
    /* NaN counts only in +Inf, and makes the sum NaN, as in Prometheus clients. */
    metric_histogram_observe(h, NAN);
    s = registry_snapshot(r, 3, 0, true);
    m = &s->families[0].series[0];
    assert_memory_equal(m->buckets, want, sizeof(want));
    assert_int_equal(m->count, 9);
    assert_true(isnan(m->value));
    registry_snapshot_free(s);
    registry_destroy(r);
}

/* Observations counted elsewhere (the upload latency atomics) join as deltas. */
static void test_registry_histogram_add(void **state)
{
    (void)state;
    struct registry *r = make(0, 0);
    int lat = registry_family(r, &latency);
    struct metric_series *h = edge(r, lat, "user", "web", "", 1);
    uint64_t d[17] = {0};
    d[0] = 2;  /* <= 0.002 */
    d[5] = 1;  /* <= 0.05 */
    d[16] = 3; /* +Inf */
    metric_histogram_add(h, d, 100.5);
    metric_histogram_observe(h, 0.05);
    struct registry_snapshot *s = registry_snapshot(r, 2, 0, true);
    const struct metric_sample *m = &s->families[0].series[0];
    assert_int_equal(m->buckets[0], 2);
    assert_int_equal(m->buckets[4], 2);
    assert_int_equal(m->buckets[5], 4);
    assert_int_equal(m->buckets[15], 4);
    assert_int_equal(m->count, 7);
    assert_true(fabs(m->value - 100.55) < 1e-9);
    registry_snapshot_free(s);
    registry_destroy(r);
}

/* A scrape leaves the stale list to the sink that sends stale markers. */
static void test_registry_snapshot_leaves_stale(void **state)
{
    (void)state;
    struct registry *r = make(0, MIN_MS);
    int req = registry_family(r, &requests);
    metric_counter_add(edge(r, req, "a", "s", "", 0), 1);
    registry_expire(r, MIN_MS);
    struct registry_snapshot *s = registry_snapshot(r, MIN_MS, 0, false);
    assert_int_equal(s->families[0].nseries, 0);
    assert_int_equal(s->families[0].nstale, 1);
    registry_snapshot_free(s);
    s = registry_snapshot(r, MIN_MS, 0, true); /* still there: taken now */
    assert_int_equal(s->families[0].nstale, 1);
    assert_string_equal(s->families[0].stale[0].labels[0].value, "a");
    registry_snapshot_free(s);
    s = registry_snapshot(r, MIN_MS, 0, true);
    assert_int_equal(s->families[0].nstale, 0);
    registry_snapshot_free(s);
    registry_destroy(r);
}

static void test_registry_snapshot_independent(void **state)
{
    (void)state;
    struct registry *r = make(0, 0);
    int req = registry_family(r, &requests), lat = registry_family(r, &latency);
    int mem = registry_family(r, &memory);
    struct metric_series *c = edge(r, req, "user", "web", "", 1);
    struct metric_series *h = edge(r, lat, "user", "web", "", 1);
    struct metric_series *g = registry_series(r, mem, NULL, NULL, 1);
    metric_counter_add(c, 1);
    metric_histogram_observe(h, 0.003);
    metric_gauge_set(g, 7);
    struct registry_snapshot *s = registry_snapshot(r, 2, 0, true);
    assert_true(s->bytes > sizeof(*s));
    metric_counter_add(c, 10);
    metric_histogram_observe(h, 0.003);
    metric_histogram_observe(h, 100);
    metric_gauge_set(g, 8);
    edge(r, req, "web", "db", "database", 3);
    edge(r, lat, "web", "db", "database", 3);
    registry_expire(r, 100 * MIN_MS);
    struct registry_snapshot *later = registry_snapshot(r, 100 * MIN_MS, 0, true);
    registry_destroy(r); /* a snapshot outlives its registry */
    assert_int_equal(s->families[0].nseries, 1);
    assert_true(s->families[0].series[0].value == 1);
    assert_int_equal(s->families[1].nseries, 1);
    const struct metric_sample *m = &s->families[1].series[0];
    assert_int_equal(m->count, 1);
    assert_true(m->value == 0.003);
    assert_int_equal(m->buckets[0], 0);
    assert_int_equal(m->buckets[1], 1);
    assert_int_equal(m->buckets[15], 1);
    assert_true(s->families[2].series[0].value == 7);
    assert_string_equal(s->families[0].series[0].labels[1].name, "server");
    assert_string_equal(s->families[0].series[0].labels[1].value, "web");
    assert_int_equal(s->families[0].nstale, 0);
    /* The later one saw everything expire. */
    assert_int_equal(later->families[0].nseries, 0);
    assert_int_equal(later->families[0].nstale, 2);
    assert_int_equal(later->families[1].nstale, 2);
    assert_int_equal(later->families[2].nstale, 1);
    assert_int_equal(later->families[2].stale[0].nlabels, 0);
    registry_snapshot_free(later);
    registry_snapshot_free(s);
}

static void test_registry_bytes_used(void **state)
{
    (void)state;
    struct registry *r = make(0, MIN_MS);
    int req = registry_family(r, &requests), lat = registry_family(r, &latency);
    struct registry_stats st;
    registry_get_stats(r, &st);
    size_t base = st.bytes_used;
    assert_true(base > 0);
    edge(r, req, "user", "web", "", 0);
    registry_get_stats(r, &st);
    size_t one = st.bytes_used - base;
    assert_true(one >= strlen("user") + strlen("web") + 3);
    edge(r, lat, "user", "web", "", 0);
    registry_get_stats(r, &st);
    assert_true(st.bytes_used - base - one >= one + 16 * sizeof(uint64_t));
    /* Enough series to grow the tables; all gone once expired and reported. */
    char name[16];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "svc-%d", i);
        edge(r, req, name, "db", "database", 0);
    }
    registry_get_stats(r, &st);
    assert_int_equal(st.series, 102);
    size_t grown = st.bytes_used;
    registry_expire(r, MIN_MS);
    registry_snapshot_free(registry_snapshot(r, MIN_MS, 0, true));
    registry_get_stats(r, &st);
    assert_int_equal(st.series, 0);
    assert_true(st.bytes_used < grown);
    assert_true(st.bytes_used > base); /* the grown tables stay */
    registry_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_family_valid),
        cmocka_unit_test(test_registry_family_invalid),
        cmocka_unit_test(test_registry_series_lookup),
        cmocka_unit_test(test_registry_label_cut),
        cmocka_unit_test(test_registry_overflow),
        cmocka_unit_test(test_registry_expire),
        cmocka_unit_test(test_registry_expire_revive),
        cmocka_unit_test(test_registry_stale_bounded),
        cmocka_unit_test(test_registry_histogram),
        cmocka_unit_test(test_registry_histogram_add),
        cmocka_unit_test(test_registry_snapshot_leaves_stale),
        cmocka_unit_test(test_registry_snapshot_independent),
        cmocka_unit_test(test_registry_bytes_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
