/* SPDX-License-Identifier: Apache-2.0 */
/* EMF log events from hand-built snapshots, parsed back with jansson and checked member
 * by member: one service, one edge, deltas across two snapshots (and a reset), a
 * histogram too big for one array, the per-series value cap, escaping, the overflow
 * series; then PutLogEvents bodies split by events, bytes (26 per event), order and
 * span. */
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
#include "metrics/emf.h"

#define MAX_EVENTS 2048

struct events {
    size_t n;
    char *json[MAX_EVENTS];
    size_t len[MAX_EVENTS];
    int64_t ts[MAX_EVENTS];
    int fail_at; /* emit returns -EIO at this event (1-based); 0: never */
};

static int collect(void *ctx, const char *json, size_t len, int64_t ts)
{
    struct events *ev = ctx;
    if (ev->fail_at > 0 && (int)ev->n + 1 == ev->fail_at)
        return -EIO;
    assert_true(ev->n < MAX_EVENTS);
    assert_int_equal(strlen(json), len); /* NUL-terminated, no NUL inside */
    ev->json[ev->n] = strdup(json);
    ev->len[ev->n] = len;
    ev->ts[ev->n++] = ts;
    return 0;
}

static void events_free(struct events *ev)
{
    for (size_t i = 0; i < ev->n; i++)
        free(ev->json[i]);
    free(ev);
}

static struct events *events_new(void)
{
    struct events *ev = calloc(1, sizeof(*ev));
    assert_non_null(ev);
    return ev;
}

static json_t *parse(const char *s)
{
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    if (j == NULL)
        fail_msg("not JSON (%s): %s", err.text, s);
    return j;
}

static const char *str_at(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    assert_non_null(s);
    return s;
}

/* The directive's dimension set, joined by ",". */
static void dims_of(json_t *ev, char *out, size_t n)
{
    json_t *dir =
        json_array_get(json_object_get(json_object_get(ev, "_aws"), "CloudWatchMetrics"), 0);
    json_t *sets = json_object_get(dir, "Dimensions");
    assert_int_equal(json_array_size(sets), 1);
    json_t *set = json_array_get(sets, 0);
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(set); i++) {
        size_t used = strlen(out);
        snprintf(out + used, n - used, "%s%s", i ? "," : "",
                 json_string_value(json_array_get(set, i)));
    }
}

/* The directive's metric names, joined by ","; checks every Unit and StorageResolution. */
static void metrics_of(json_t *ev, char *out, size_t n, int resolution)
{
    json_t *aws = json_object_get(ev, "_aws");
    assert_int_equal(json_integer_value(json_object_get(aws, "Timestamp")), FX_TS);
    json_t *all = json_object_get(aws, "CloudWatchMetrics");
    assert_int_equal(json_array_size(all), 1);
    json_t *m = json_object_get(json_array_get(all, 0), "Metrics");
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(m); i++) {
        json_t *d = json_array_get(m, i);
        const char *name = str_at(d, "Name");
        const char *unit = str_at(d, "Unit");
        assert_string_equal(unit, strstr(name, "Latency") ? "Milliseconds" : "Count");
        assert_int_equal(json_integer_value(json_object_get(d, "StorageResolution")), resolution);
        assert_int_equal(json_object_size(d), 3);
        /* every metric the directive names is a member of the event */
        assert_non_null(json_object_get(ev, name));
        size_t used = strlen(out);
        snprintf(out + used, n - used, "%s%s", i ? "," : "", name);
    }
}

/* The values of array member key, joined by ",". */
static void values_of(json_t *ev, const char *key, char *out, size_t n)
{
    json_t *a = json_object_get(ev, key);
    assert_true(json_is_array(a));
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(a); i++) {
        size_t used = strlen(out);
        snprintf(out + used, n - used, "%s%g", i ? "," : "",
                 json_number_value(json_array_get(a, i)));
    }
}

static int64_t int_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static const struct emf_options defaults = {0};

static void test_emf_encode_node_event(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    fx_counter(f, FX_SEGMENTS, "api", "AWS::EC2::Instance", "ok", 10);
    fx_counter(f, FX_SEGMENTS, "api", "AWS::EC2::Instance", "error", 1);
    fx_counter(f, FX_SEGMENTS, "api", "AWS::EC2::Instance", "fault", 2);
    uint64_t b[FX_NB + 1] = {[0] = 3, [5] = 2, [FX_NB] = 1};
    fx_hist(f, FX_DURATION, "api", "AWS::EC2::Instance", NULL, b, 20.5);
    struct events *ev = events_new();
    assert_int_equal(emf_encode(&defaults, NULL, &f->snap, collect, ev), 1);
    assert_int_equal(ev->n, 1);
    assert_int_equal(ev->ts[0], FX_TS);
    assert_string_equal(
        ev->json[0],
        "{\"_aws\":{\"Timestamp\":1700000000123,\"CloudWatchMetrics\":[{\"Namespace\":"
        "\"XRayDaemon\",\"Dimensions\":[[\"Service\",\"ServiceType\"]],\"Metrics\":["
        "{\"Name\":\"Requests\",\"Unit\":\"Count\",\"StorageResolution\":60},"
        "{\"Name\":\"Errors\",\"Unit\":\"Count\",\"StorageResolution\":60},"
        "{\"Name\":\"Throttles\",\"Unit\":\"Count\",\"StorageResolution\":60},"
        "{\"Name\":\"Faults\",\"Unit\":\"Count\",\"StorageResolution\":60},"
        "{\"Name\":\"Latency\",\"Unit\":\"Milliseconds\",\"StorageResolution\":60}]}]},"
        "\"Service\":\"api\",\"ServiceType\":\"AWS::EC2::Instance\",\"Requests\":13,"
        "\"Errors\":1,\"Throttles\":0,\"Faults\":2,\"Latency\":[1,1,1,30,30,15000]}");
    json_t *j = parse(ev->json[0]);
    char s[512];
    metrics_of(j, s, sizeof(s), 60);
    assert_string_equal(s, "Requests,Errors,Throttles,Faults,Latency");
    dims_of(j, s, sizeof(s));
    assert_string_equal(s, "Service,ServiceType");
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(j, "_aws"), "CloudWatchMetrics"), 0),
            "Namespace")),
        "XRayDaemon");
    assert_string_equal(str_at(j, "Service"), "api");
    assert_string_equal(str_at(j, "ServiceType"), "AWS::EC2::Instance");
    assert_int_equal(int_at(j, "Requests"), 13);
    assert_int_equal(int_at(j, "Errors"), 1);
    assert_int_equal(int_at(j, "Throttles"), 0);
    assert_int_equal(int_at(j, "Faults"), 2);
    values_of(j, "Latency", s, sizeof(s));
    assert_string_equal(s, "1,1,1,30,30,15000");
    assert_int_equal(json_object_size(j), 8);
    json_decref(j);
    events_free(ev);
    fx_free(f);
}

static void test_emf_encode_edge_events(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    fx_counter(f, FX_EDGE_TOTAL, "user", "api", "", 7);
    fx_counter(f, FX_EDGE_TOTAL, "api", "orders-db", "database", 4);
    fx_counter(f, FX_EDGE_FAILED, "api", "orders-db", "database", 1);
    uint64_t cl[FX_NB + 1] = {[1] = 2, [13] = 1};
    uint64_t sv[FX_NB + 1] = {[4] = 1, [10] = 1, [11] = 1, [12] = 1};
    fx_hist(f, FX_EDGE_CLIENT, "api", "orders-db", "database", cl, 3.0);
    fx_hist(f, FX_EDGE_SERVER, "api", "orders-db", "database", sv, 3.6);
    struct events *ev = events_new();
    struct emf_options o = {.ns = "Team/Traces", .storage_resolution = 1};
    assert_int_equal(emf_encode(&o, NULL, &f->snap, collect, ev), 2);
    char s[512];

    json_t *j = parse(ev->json[0]); /* user -> api: no ConnectionType, no latency */
    metrics_of(j, s, sizeof(s), 1);
    assert_string_equal(s, "Requests,Failed");
    dims_of(j, s, sizeof(s));
    assert_string_equal(s, "Client,Server");
    assert_string_equal(str_at(j, "Client"), "user");
    assert_string_equal(str_at(j, "Server"), "api");
    assert_null(json_object_get(j, "ConnectionType"));
    assert_int_equal(int_at(j, "Requests"), 7);
    assert_int_equal(int_at(j, "Failed"), 0);
    assert_int_equal(json_object_size(j), 5);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(j, "_aws"), "CloudWatchMetrics"), 0),
            "Namespace")),
        "Team/Traces");
    json_decref(j);

    j = parse(ev->json[1]);
    metrics_of(j, s, sizeof(s), 1);
    assert_string_equal(s, "Requests,Failed,ClientLatency,ServerLatency");
    dims_of(j, s, sizeof(s));
    assert_string_equal(s, "Client,Server,ConnectionType");
    assert_string_equal(str_at(j, "Client"), "api");
    assert_string_equal(str_at(j, "Server"), "orders-db");
    assert_string_equal(str_at(j, "ConnectionType"), "database");
    assert_int_equal(int_at(j, "Requests"), 4);
    assert_int_equal(int_at(j, "Failed"), 1);
    values_of(j, "ClientLatency", s, sizeof(s));
    assert_string_equal(s, "3,3,3500");
    values_of(j, "ServerLatency", s, sizeof(s));
    assert_string_equal(s, "9,900,1200,1700");
    assert_int_equal(json_object_size(j), 8);
    json_decref(j);
    events_free(ev);
    fx_free(f);
}

static void test_emf_encode_delta(void **state)
{
    (void)state;
    struct fx *p = fx_new(FX_TS - 60000);
    struct fx *c = fx_new(FX_TS);
    uint64_t pb[FX_NB + 1] = {[0] = 3};
    uint64_t cb[FX_NB + 1] = {[0] = 5, [5] = 1};
    fx_counter(p, FX_SEGMENTS, "api", "", "ok", 10);
    fx_counter(p, FX_SEGMENTS, "api", "", "error", 1);
    fx_hist(p, FX_DURATION, "api", "", NULL, pb, 0.003);
    fx_counter(p, FX_SEGMENTS, "idle", "", "ok", 50);
    fx_hist(p, FX_DURATION, "idle", "", NULL, pb, 0.003);
    fx_counter(p, FX_SEGMENTS, "restarted", "", "ok", 100);
    uint64_t big[FX_NB + 1] = {[6] = 100};
    fx_hist(p, FX_DURATION, "restarted", "", NULL, big, 7.5);
    fx_counter(p, FX_EDGE_TOTAL, "user", "api", "", 11);

    /* cur lists the series in another order: matching is by labels */
    fx_counter(c, FX_SEGMENTS, "restarted", "", "ok", 7);
    fx_counter(c, FX_SEGMENTS, "idle", "", "ok", 50);
    fx_counter(c, FX_SEGMENTS, "api", "", "error", 1);
    fx_counter(c, FX_SEGMENTS, "api", "", "ok", 15);
    fx_counter(c, FX_SEGMENTS, "api", "", "fault", 2); /* new: counts from 0 */
    fx_hist(c, FX_DURATION, "idle", "", NULL, pb, 0.003);
    fx_hist(c, FX_DURATION, "api", "", NULL, cb, 0.035);
    uint64_t small[FX_NB + 1] = {[0] = 1, [7] = 1};
    fx_hist(c, FX_DURATION, "restarted", "", NULL, small, 0.151);
    fx_counter(c, FX_EDGE_TOTAL, "user", "api", "", 11); /* idle edge */

    struct cloudwatch_stats st = {0};
    struct emf_options o = {.stats = &st};
    struct events *ev = events_new();
    assert_int_equal(emf_encode(&o, &p->snap, &c->snap, collect, ev), 2);
    assert_int_equal(st.resets, 2); /* restarted's counter and histogram */
    char s[512];
    json_t *j = parse(ev->json[0]);
    assert_string_equal(str_at(j, "Service"), "restarted");
    dims_of(j, s, sizeof(s));
    assert_string_equal(s, "Service");
    assert_int_equal(int_at(j, "Requests"), 7);
    assert_int_equal(int_at(j, "Faults"), 0);
    values_of(j, "Latency", s, sizeof(s));
    assert_string_equal(s, "1,150");
    json_decref(j);
    j = parse(ev->json[1]);
    assert_string_equal(str_at(j, "Service"), "api");
    assert_int_equal(int_at(j, "Requests"), 7); /* 5 ok + 0 error + 2 fault */
    assert_int_equal(int_at(j, "Errors"), 0);
    assert_int_equal(int_at(j, "Throttles"), 0);
    assert_int_equal(int_at(j, "Faults"), 2);
    values_of(j, "Latency", s, sizeof(s));
    assert_string_equal(s, "1,1,30");
    json_decref(j);
    events_free(ev);

    /* the same snapshot twice: nothing happened, nothing sent */
    ev = events_new();
    assert_int_equal(emf_encode(&o, &c->snap, &c->snap, collect, ev), 0);
    assert_int_equal(ev->n, 0);
    events_free(ev);
    fx_free(p);
    fx_free(c);
}

/* Counts how many times each value occurs in array key across events [from, to). */
static void tally(struct events *ev, size_t from, size_t to, const char *key, double value,
                  uint64_t *count, size_t *longest)
{
    *count = 0;
    for (size_t i = from; i < to; i++) {
        json_t *j = parse(ev->json[i]);
        json_t *a = json_object_get(j, key);
        if (json_array_size(a) > *longest)
            *longest = json_array_size(a);
        for (size_t k = 0; k < json_array_size(a); k++)
            *count += json_number_value(json_array_get(a, k)) == value;
        json_decref(j);
    }
}

static void test_emf_encode_split(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    fx_counter(f, FX_SEGMENTS, "api", "", "ok", 250);
    uint64_t b[FX_NB + 1] = {[0] = 120, [5] = 80, [FX_NB] = 50};
    fx_hist(f, FX_DURATION, "api", "", NULL, b, 900);
    fx_counter(f, FX_EDGE_TOTAL, "api", "db", "", 180);
    uint64_t cl[FX_NB + 1] = {[2] = 150};
    uint64_t sv[FX_NB + 1] = {[3] = 30};
    fx_hist(f, FX_EDGE_CLIENT, "api", "db", "", cl, 0.75);
    fx_hist(f, FX_EDGE_SERVER, "api", "db", "", sv, 0.21);
    struct events *ev = events_new();
    assert_int_equal(emf_encode(&defaults, NULL, &f->snap, collect, ev), 5);
    char s[512];
    const char *want_metrics[5] = {"Requests,Errors,Throttles,Faults,Latency", "Latency", "Latency",
                                   "Requests,Failed,ClientLatency,ServerLatency", "ClientLatency"};
    const size_t want_len[5] = {100, 100, 50, 100, 50};
    for (size_t i = 0; i < 5; i++) {
        json_t *j = parse(ev->json[i]);
        metrics_of(j, s, sizeof(s), 60);
        assert_string_equal(s, want_metrics[i]);
        const char *key = i < 3 ? "Latency" : "ClientLatency";
        assert_int_equal(json_array_size(json_object_get(j, key)), want_len[i]);
        if (i == 1 || i == 2 || i == 4) {
            /* continuation events: the dimensions again, no counts */
            assert_null(json_object_get(j, "Requests"));
            assert_int_equal(json_object_size(j), i == 4 ? 4 : 3);
        }
        json_decref(j);
    }
    uint64_t n;
    size_t longest = 0;
    tally(ev, 0, 3, "Latency", 1, &n, &longest);
    assert_int_equal(n, 120);
    tally(ev, 0, 3, "Latency", 30, &n, &longest);
    assert_int_equal(n, 80);
    tally(ev, 0, 3, "Latency", 15000, &n, &longest);
    assert_int_equal(n, 50);
    tally(ev, 3, 5, "ClientLatency", 5, &n, &longest);
    assert_int_equal(n, 150);
    tally(ev, 3, 5, "ServerLatency", 7, &n, &longest);
    assert_int_equal(n, 30);
    assert_int_equal(longest, 100);
    events_free(ev);

    /* a smaller array size splits the same way */
    ev = events_new();
    struct emf_options o = {.values_per_event = 40};
    assert_int_equal(emf_encode(&o, NULL, &f->snap, collect, ev), 7 + 4);
    longest = 0;
    tally(ev, 0, 7, "Latency", 30, &n, &longest);
    assert_int_equal(n, 80);
    assert_int_equal(longest, 40);
    events_free(ev);
    fx_free(f);
}

static void test_emf_encode_thinned(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    fx_counter(f, FX_SEGMENTS, "api", "", "ok", 1001);
    uint64_t b[FX_NB + 1] = {[0] = 900, [5] = 100, [13] = 1};
    fx_hist(f, FX_DURATION, "api", "", NULL, b, 10);
    struct cloudwatch_stats st = {0};
    struct emf_options o = {.max_values_per_series = 100, .stats = &st};
    struct events *ev = events_new();
    assert_int_equal(emf_encode(&o, NULL, &f->snap, collect, ev), 1);
    assert_int_equal(st.scaled, 1);
    uint64_t n;
    size_t longest = 0;
    tally(ev, 0, 1, "Latency", 1, &n, &longest);
    assert_int_equal(n, 89); /* 900 * 100 / 1001 */
    tally(ev, 0, 1, "Latency", 30, &n, &longest);
    assert_int_equal(n, 9);
    tally(ev, 0, 1, "Latency", 3500, &n, &longest);
    assert_int_equal(n, 1); /* a non-empty bucket keeps one */
    assert_int_equal(longest, 99);
    json_t *j = parse(ev->json[0]);
    assert_int_equal(int_at(j, "Requests"), 1001); /* counts are never thinned */
    json_decref(j);
    events_free(ev);
    fx_free(f);
}

static void test_emf_encode_escaping(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    const char *name = "we\"ird\\svc\n\x01\x7f\xc3\xa9";
    fx_counter(f, FX_SEGMENTS, name, "AWS::\"T\"", "ok", 1);
    fx_counter(f, FX_EDGE_TOTAL, name, "b\tc", "", 2);
    struct events *ev = events_new();
    assert_int_equal(emf_encode(&defaults, NULL, &f->snap, collect, ev), 2);
    assert_non_null(strstr(ev->json[0], "\"Service\":\"we\\\"ird\\\\svc\\n\\u0001\x7f\xc3\xa9\""));
    json_t *j = parse(ev->json[0]);
    assert_string_equal(str_at(j, "Service"), name);
    assert_string_equal(str_at(j, "ServiceType"), "AWS::\"T\"");
    json_decref(j);
    j = parse(ev->json[1]);
    assert_string_equal(str_at(j, "Client"), name);
    assert_string_equal(str_at(j, "Server"), "b\tc");
    json_decref(j);
    events_free(ev);
    fx_free(f);
}

static void test_emf_encode_overflow_and_ignored(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    fx_counter(f, FX_OTHER, "api", NULL, NULL, 99); /* the daemon's own: not CloudWatch's */
    const char *none[3] = {"", "", ""};
    fx_series(f, FX_SEGMENTS, none, 1)->value = 5;
    fx_series(f, FX_EDGE_TOTAL, none, 1)->value = 6;
    fx_counter(f, FX_SEGMENTS, "", "", "ok", 3); /* no name: CloudWatch wants one */
    f->snap.nfamilies = FX_EDGE_FAILED;          /* no failed-requests family at all */
    struct events *ev = events_new();
    assert_int_equal(emf_encode(&defaults, NULL, &f->snap, collect, ev), 3);
    char s[512];
    json_t *j = parse(ev->json[0]);
    dims_of(j, s, sizeof(s));
    assert_string_equal(s, "Service");
    assert_string_equal(str_at(j, "Service"), "(overflow)");
    assert_int_equal(int_at(j, "Requests"), 5);
    json_decref(j);
    j = parse(ev->json[1]);
    assert_string_equal(str_at(j, "Service"), "(unknown)");
    assert_int_equal(int_at(j, "Requests"), 3);
    json_decref(j);
    j = parse(ev->json[2]);
    dims_of(j, s, sizeof(s));
    assert_string_equal(s, "Client,Server");
    assert_string_equal(str_at(j, "Client"), "(overflow)");
    assert_string_equal(str_at(j, "Server"), "(overflow)");
    assert_int_equal(int_at(j, "Requests"), 6);
    assert_null(json_object_get(j, "Failed"));
    json_decref(j);
    events_free(ev);
    fx_free(f);
}

static void test_emf_encode_errors(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    fx_counter(f, FX_SEGMENTS, "a", "", "ok", 1);
    fx_counter(f, FX_SEGMENTS, "b", "", "ok", 1);
    struct events *ev = events_new();
    struct emf_options bad[] = {
        {.ns = ""}, {.ns = "AWS/XRay"}, {.storage_resolution = 30}, {.values_per_event = 101}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(emf_encode(&bad[i], NULL, &f->snap, collect, ev), -EINVAL);
    assert_int_equal(ev->n, 0);
    ev->fail_at = 2;
    assert_int_equal(emf_encode(&defaults, NULL, &f->snap, collect, ev), -EIO);
    assert_int_equal(ev->n, 1);
    events_free(ev);
    fx_free(f);
}

/* ---- PutLogEvents bodies ---- */

struct bodies {
    size_t n;
    json_t *body[64];
    size_t nevents[64];
    size_t len[64];
};

static int keep_body(void *ctx, const char *body, size_t len, size_t nevents)
{
    struct bodies *b = ctx;
    assert_true(b->n < 64);
    assert_int_equal(strlen(body), len);
    b->body[b->n] = parse(body);
    b->len[b->n] = len;
    b->nevents[b->n++] = nevents;
    return 0;
}

static void bodies_free(struct bodies *b)
{
    for (size_t i = 0; i < b->n; i++)
        json_decref(b->body[i]);
    memset(b, 0, sizeof(*b));
}

/* Every body holds the group, the stream and its events in order, as emitted; returns
 * the largest counted size. */
static size_t check_bodies(struct bodies *b, struct events *ev, const size_t *want_events,
                           size_t nwant)
{
    assert_int_equal(b->n, nwant);
    size_t next = 0, largest = 0;
    for (size_t i = 0; i < b->n; i++) {
        json_t *j = b->body[i];
        assert_string_equal(str_at(j, "logGroupName"), "/xray/\"metrics\"");
        assert_string_equal(str_at(j, "logStreamName"), "host-1");
        json_t *list = json_object_get(j, "logEvents");
        assert_int_equal(json_array_size(list), want_events[i]);
        assert_int_equal(b->nevents[i], want_events[i]);
        assert_int_equal(json_object_size(j), 3);
        size_t counted = 0;
        for (size_t k = 0; k < json_array_size(list); k++, next++) {
            json_t *e = json_array_get(list, k);
            assert_int_equal(json_object_size(e), 2);
            assert_int_equal(int_at(e, "timestamp"), ev->ts[next]);
            assert_string_equal(str_at(e, "message"), ev->json[next]);
            counted += strlen(ev->json[next]) + 26;
        }
        if (counted > largest)
            largest = counted;
    }
    assert_int_equal(next, ev->n);
    return largest;
}

static struct events *many_services(struct fx *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "svc-%03zu", i);
        fx_counter(f, FX_SEGMENTS, name, "", "ok", (double)(i + 1));
    }
    struct events *ev = events_new();
    assert_int_equal(emf_encode(&defaults, NULL, &f->snap, collect, ev), (int)n);
    return ev;
}

static void test_emf_batch_split(void **state)
{
    (void)state;
    struct fx *f = fx_new(FX_TS);
    struct events *ev = many_services(f, 150);
    /* all 150 events: equal lengths, "svc-NNN" and 1..150 as counts of up to 3 digits */
    size_t len9 = ev->len[8], len99 = ev->len[98];
    assert_int_equal(ev->len[149], len99 + 1);
    assert_int_equal(len99, len9 + 1);

    struct bodies b = {0};
    struct emf_batch batch;
    struct emf_batch_options o = {.log_group = "/xray/\"metrics\"", .log_stream = "host-1"};
    emf_batch_init(&batch, &o, keep_body, &b);
    for (size_t i = 0; i < ev->n; i++)
        assert_int_equal(emf_batch_add(&batch, ev->json[i], ev->len[i], ev->ts[i]), 0);
    assert_int_equal(b.n, 0); /* nothing is full yet */
    assert_int_equal(emf_batch_flush(&batch), 0);
    assert_int_equal(emf_batch_flush(&batch), 0); /* nothing pending: no empty body */
    size_t one[] = {150};
    check_bodies(&b, ev, one, 1);
    assert_int_equal(batch.bodies, 1);
    bodies_free(&b);
    emf_batch_free(&batch);

    o.max_events = 40;
    emf_batch_init(&batch, &o, keep_body, &b);
    for (size_t i = 0; i < ev->n; i++)
        assert_int_equal(emf_batch_add(&batch, ev->json[i], ev->len[i], ev->ts[i]), 0);
    assert_int_equal(emf_batch_flush(&batch), 0);
    size_t by_events[] = {40, 40, 40, 30};
    check_bodies(&b, ev, by_events, 4);
    bodies_free(&b);
    emf_batch_free(&batch);

    /* bytes: 26 more per event count; 4 of the shortest and one more byte fit 4, not 5 */
    o.max_events = 0;
    o.max_bytes = 4 * (len9 + 26) + 1;
    emf_batch_init(&batch, &o, keep_body, &b);
    for (size_t i = 0; i < ev->n; i++)
        assert_int_equal(emf_batch_add(&batch, ev->json[i], ev->len[i], ev->ts[i]), 0);
    assert_int_equal(emf_batch_flush(&batch), 0);
    /* Lengths: 9 events of len9, 90 of len9 + 1, 51 of len9 + 2. Bodies: 4, 4, then 3
     * (one len9 and two longer: a fourth would pass by 2 bytes), 29 of 3, then one event
     * of len9 + 1 with two of len9 + 2, 16 of 3 and the last one alone: 50 bodies. */
    size_t want[64], nwant = 0, cur = 0, used = 0;
    for (size_t i = 0; i < ev->n; i++) {
        if (cur > 0 && used + ev->len[i] + 26 > o.max_bytes) {
            want[nwant++] = cur;
            cur = 0;
            used = 0;
        }
        cur++;
        used += ev->len[i] + 26;
    }
    want[nwant++] = cur;
    assert_int_equal(nwant, 50);
    assert_int_equal(want[0], 4);
    assert_int_equal(want[2], 3);
    assert_int_equal(want[nwant - 1], 1);
    size_t largest = check_bodies(&b, ev, want, nwant);
    assert_true(largest <= o.max_bytes);
    assert_int_equal(nwant, b.n);
    bodies_free(&b);
    emf_batch_free(&batch);
    events_free(ev);
    fx_free(f);
}

static void test_emf_batch_order_and_refusals(void **state)
{
    (void)state;
    struct bodies b = {0};
    struct emf_batch batch;
    struct emf_batch_options o = {.log_group = "g", .log_stream = "s", .max_bytes = 100};
    emf_batch_init(&batch, &o, keep_body, &b);
    const int64_t day = 24 * 3600 * 1000;
    assert_int_equal(emf_batch_add(&batch, "{\"a\":1}", 7, 1000), 0);
    assert_int_equal(emf_batch_add(&batch, "{\"a\":2}", 7, 2000), 0);
    assert_int_equal(emf_batch_add(&batch, "{\"a\":3}", 7, 1500), 0);       /* earlier: new body */
    assert_int_equal(emf_batch_add(&batch, "{\"a\":4}", 7, 1500 + day), 0); /* 24 h: fits */
    assert_int_equal(emf_batch_add(&batch, "{\"a\":5}", 7, 1501 + day), 0); /* past 24 h */
    char big[80];
    memset(big, 'x', sizeof(big));
    assert_int_equal(emf_batch_add(&batch, big, 75, 1501 + day), 0); /* 75 + 26 > 100 */
    assert_int_equal(batch.refused, 1);
    assert_int_equal(emf_batch_add(&batch, big, 74, 1501 + day), 0); /* 74 + 26 fits alone */
    assert_int_equal(emf_batch_flush(&batch), 0);
    assert_int_equal(b.n, 4);
    size_t want[] = {2, 2, 1, 1};
    const char *first[] = {"{\"a\":1}", "{\"a\":3}", "{\"a\":5}", NULL};
    for (size_t i = 0; i < b.n; i++) {
        assert_int_equal(b.nevents[i], want[i]);
        json_t *list = json_object_get(b.body[i], "logEvents");
        if (first[i] != NULL)
            assert_string_equal(str_at(json_array_get(list, 0), "message"), first[i]);
    }
    assert_int_equal(
        int_at(json_array_get(json_object_get(b.body[1], "logEvents"), 1), "timestamp"),
        1500 + day);
    assert_int_equal(batch.bodies, 4);
    bodies_free(&b);
    emf_batch_free(&batch);
}

static int refuse_body(void *ctx, const char *body, size_t len, size_t nevents)
{
    (void)body;
    (void)len;
    (void)nevents;
    (*(int *)ctx)++;
    return -EAGAIN;
}

static void test_emf_batch_send_error(void **state)
{
    (void)state;
    int calls = 0;
    struct emf_batch batch;
    struct emf_batch_options o = {.log_group = "g", .log_stream = "s", .max_events = 1};
    emf_batch_init(&batch, &o, refuse_body, &calls);
    assert_int_equal(emf_batch_add(&batch, "{}", 2, 1), 0);
    assert_int_equal(emf_batch_add(&batch, "{}", 2, 2), -EAGAIN);
    assert_int_equal(calls, 1);
    assert_int_equal(batch.nevents, 0);
    assert_int_equal(emf_batch_flush(&batch), 0);
    emf_batch_free(&batch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emf_encode_node_event),
        cmocka_unit_test(test_emf_encode_edge_events),
        cmocka_unit_test(test_emf_encode_delta),
        cmocka_unit_test(test_emf_encode_split),
        cmocka_unit_test(test_emf_encode_thinned),
        cmocka_unit_test(test_emf_encode_escaping),
        cmocka_unit_test(test_emf_encode_overflow_and_ignored),
        cmocka_unit_test(test_emf_encode_errors),
        cmocka_unit_test(test_emf_batch_split),
        cmocka_unit_test(test_emf_batch_order_and_refusals),
        cmocka_unit_test(test_emf_batch_send_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
