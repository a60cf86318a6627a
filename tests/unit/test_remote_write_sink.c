/* SPDX-License-Identifier: Apache-2.0 */
/* The remote write sink on a real loop against a fake receiver: snapshots of a real
 * registry encoded and shipped through the exporter hooks, the request's headers (the
 * protocol's, basic auth, a bearer token) and its body decoded back into samples; stale
 * markers after expiry; a 400 dropped and counted; bad options refused at creation;
 * SigV4 for aps through an AWS client. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_call.h"
#include "aws/credentials.h"
#include "export/remote_write_sink.h"
#include "fake_http.h"
#include "http/client.h"
#include "metrics/registry.h"
#include "metrics/remote_write.h"
#include "remote.pb-c.h"

#define EPOCH_MS INT64_C(1700000000123)
#define NOW_MS   UINT64_C(100000)

static const char *const req_labels[] = {"client", "server"};
static const struct metric_family_def req_def = {
    .name = "traces_service_graph_request_total",
    .help = "Requests.",
    .type = METRIC_COUNTER,
    .nlabels = 2,
    .labels = req_labels,
};
static const char *const dur_labels[] = {"service"};
static const double dur_bounds[] = {0.01, 0.1};
static const struct metric_family_def dur_def = {
    .name = "xray_segment_duration_seconds",
    .help = "Latency.",
    .type = METRIC_HISTOGRAM,
    .nlabels = 1,
    .labels = dur_labels,
    .nbuckets = 2,
    .buckets = dur_bounds,
};

/* ---- the harness: a loop, the fake receiver, an HTTP client, the sink ---- */

struct harness {
    uv_loop_t loop;
    uv_timer_t watchdog;
    struct fake_http fake;
    struct http_client *http;
    struct remote_write_sink *sink;
    struct stats stats;
    struct registry *reg;
    int fam_req, fam_dur;
    int reply_status;
    int closed;
};

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the test did not finish in time");
}

static void handler(struct fake_http *f, const struct fake_http_request *req,
                    struct fake_http_reply *rep)
{
    (void)req;
    struct harness *h = f->ctx;
    rep->status = h->reply_status;
    if (h->reply_status == 400)
        snprintf(rep->body, sizeof(rep->body), "out of order sample\n");
}

/* The harness with a sink built from o (url, loop, http and stats filled in here). */
static void harness_init(struct harness *h, struct remote_write_sink_options o)
{
    memset(h, 0, sizeof(*h));
    h->reply_status = 204;
    assert_int_equal(uv_loop_init(&h->loop), 0);
    assert_int_equal(uv_timer_init(&h->loop, &h->watchdog), 0);
    assert_int_equal(uv_timer_start(&h->watchdog, on_watchdog, 10000, 0), 0);
    fake_http_start(&h->fake, handler, h);
    struct http_client_options ho = {0};
    h->http = http_client_create(&h->loop, &ho);
    assert_non_null(h->http);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/write", h->fake.port);
    o.loop = &h->loop;
    o.http = h->http;
    o.url = url;
    o.stats = &h->stats;
    char err[XRAY_ERR_LEN] = "";
    h->sink = remote_write_sink_create(&o, err);
    assert_non_null(h->sink);

    h->reg = registry_create(&(struct registry_options){.idle_ms = 60000});
    assert_non_null(h->reg);
    h->fam_req = registry_family(h->reg, &req_def);
    h->fam_dur = registry_family(h->reg, &dur_def);
    assert_true(h->fam_req >= 0 && h->fam_dur >= 0);
}

static void on_closed(void *data)
{
    ((struct harness *)data)->closed++;
}

static void harness_finish(struct harness *h)
{
    remote_write_sink_close(h->sink, on_closed, h);
    http_client_close(h->http, on_closed, h);
    uv_close((uv_handle_t *)&h->watchdog, NULL);
    assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(h->closed, 2);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    fake_http_stop(&h->fake);
    registry_destroy(h->reg);
}

static void add_request(struct harness *h, const char *client, const char *server, double n,
                        uint64_t now)
{
    const char *v[] = {client, server};
    const size_t l[] = {strlen(client), strlen(server)};
    struct metric_series *s = registry_series(h->reg, h->fam_req, v, l, now);
    assert_non_null(s);
    metric_counter_add(s, n);
}

static void observe(struct harness *h, const char *service, double v, uint64_t now)
{
    const char *vals[] = {service};
    const size_t l[] = {strlen(service)};
    struct metric_series *s = registry_series(h->reg, h->fam_dur, vals, l, now);
    assert_non_null(s);
    metric_histogram_observe(s, v);
}

/* One export as the exporter does it: snapshot, encode (the worker's half), free,
 * ship (the loop's half). */
static void export_once(struct harness *h, uint64_t now, int64_t epoch)
{
    struct registry_snapshot *snap =
        registry_snapshot(h->reg, now, epoch, remote_write_sink_ops.take_stale);
    assert_non_null(snap);
    remote_write_sink_ops.encode(h->sink, snap);
    assert_false(remote_write_sink_ops.keeps_snapshot);
    registry_snapshot_free(snap);
    remote_write_sink_ops.ship(h->sink);
}

static uint64_t sent(struct harness *h)
{
    return stats_get(&h->stats.sink_sent[STATS_SINK_REMOTE_WRITE]);
}
static uint64_t dropped(struct harness *h)
{
    return stats_get(&h->stats.sink_dropped[STATS_SINK_REMOTE_WRITE]);
}

/* Runs the loop until n requests have ended (sent or dropped) and nothing waits. */
static void run_until_done(struct harness *h, uint64_t n)
{
    while (sent(h) + dropped(h) < n || remote_write_sink_queued(h->sink) != 0)
        uv_run(&h->loop, UV_RUN_ONCE);
}

struct pause {
    uv_timer_t timer;
    bool fired, closed;
};

static void on_pause(uv_timer_t *t)
{
    ((struct pause *)t)->fired = true;
}

static void on_pause_closed(uv_handle_t *hd)
{
    ((struct pause *)hd)->closed = true;
}

/* Runs the loop for ms: long enough for a request that should not exist to show. */
static void run_for(struct harness *h, uint64_t ms)
{
    struct pause p = {.fired = false};
    assert_int_equal(uv_timer_init(&h->loop, &p.timer), 0);
    assert_int_equal(uv_timer_start(&p.timer, on_pause, ms, 0), 0);
    while (!p.fired)
        uv_run(&h->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&p.timer, on_pause_closed);
    while (!p.closed)
        uv_run(&h->loop, UV_RUN_NOWAIT);
}

/* ---- decoding what the fake received ---- */

static uint64_t bits_of(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static Prometheus__WriteRequest *decode(const struct fake_http_request *r)
{
    size_t n = 0;
    assert_int_equal(snappy_uncompressed_length(r->body, r->body_len, &n), SNAPPY_OK);
    char *raw = malloc(n ? n : 1);
    assert_non_null(raw);
    assert_int_equal(snappy_uncompress(r->body, r->body_len, raw, &n), SNAPPY_OK);
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, n, (const uint8_t *)raw);
    free(raw);
    assert_non_null(wr);
    return wr;
}

/* The series whose labels are exactly want (name, value, ..., NULL; sorted by name),
 * or a failure. */
static const Prometheus__TimeSeries *find(const Prometheus__WriteRequest *wr,
                                          const char *const *want)
{
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = wr->timeseries[i];
        size_t n = 0;
        while (want[2 * n] != NULL && n < ts->n_labels &&
               strcmp(ts->labels[n]->name, want[2 * n]) == 0 &&
               strcmp(ts->labels[n]->value, want[2 * n + 1]) == 0)
            n++;
        if (want[2 * n] == NULL && n == ts->n_labels)
            return ts;
    }
    fail_msg("series %s{%s=...} not in the body", want[1], want[2] ? want[2] : "");
    return NULL;
}

static void expect_sample(const Prometheus__WriteRequest *wr, const char *const *labels,
                          uint64_t value_bits, int64_t ts_ms)
{
    const Prometheus__TimeSeries *ts = find(wr, labels);
    assert_int_equal(ts->n_samples, 1);
    assert_int_equal(ts->samples[0]->timestamp, ts_ms);
    assert_int_equal(bits_of(ts->samples[0]->value), value_bits);
}

static void expect_header(const struct fake_http_request *r, const char *name, const char *want)
{
    char v[512];
    fake_http_header(r, name, v, sizeof(v));
    assert_string_equal(v, want);
}

/* ---- tests ---- */

static void test_remote_write_sink_post(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, (struct remote_write_sink_options){0});
    add_request(&h, "web", "api", 3, NOW_MS);
    add_request(&h, "user", "web", 1, NOW_MS);
    observe(&h, "api", 0.005, NOW_MS);
    observe(&h, "api", 0.05, NOW_MS);
    observe(&h, "api", 2, NOW_MS);
    export_once(&h, NOW_MS, EPOCH_MS);
    run_until_done(&h, 1);
    assert_int_equal(sent(&h), 1);
    assert_int_equal(dropped(&h), 0);

    struct fake_http_request *r = malloc(sizeof(*r));
    assert_non_null(r);
    fake_http_last(&h.fake, r);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->path, "/api/v1/write");
    expect_header(r, "Content-Encoding", "snappy");
    expect_header(r, "Content-Type", "application/x-protobuf");
    expect_header(r, "X-Prometheus-Remote-Write-Version", "0.1.0");
    expect_header(r, "User-Agent", "xrayd/" XRAYD_VERSION);
    expect_header(r, "Authorization", "");

    Prometheus__WriteRequest *wr = decode(r);
    /* 2 counters + a histogram of 2 bounds: 2 + (2 + 1 + 2) */
    assert_int_equal(wr->n_timeseries, 7);
    expect_sample(wr,
                  (const char *const[]){"__name__", "traces_service_graph_request_total", "client",
                                        "web", "server", "api", NULL},
                  bits_of(3), EPOCH_MS);
    expect_sample(wr,
                  (const char *const[]){"__name__", "traces_service_graph_request_total", "client",
                                        "user", "server", "web", NULL},
                  bits_of(1), EPOCH_MS);
    expect_sample(wr,
                  (const char *const[]){"__name__", "xray_segment_duration_seconds_bucket", "le",
                                        "0.01", "service", "api", NULL},
                  bits_of(1), EPOCH_MS);
    expect_sample(wr,
                  (const char *const[]){"__name__", "xray_segment_duration_seconds_bucket", "le",
                                        "0.1", "service", "api", NULL},
                  bits_of(2), EPOCH_MS);
    expect_sample(wr,
                  (const char *const[]){"__name__", "xray_segment_duration_seconds_bucket", "le",
                                        "+Inf", "service", "api", NULL},
                  bits_of(3), EPOCH_MS);
    expect_sample(wr,
                  (const char *const[]){"__name__", "xray_segment_duration_seconds_sum", "service",
                                        "api", NULL},
                  bits_of(0.005 + 0.05 + 2), EPOCH_MS);
    expect_sample(wr,
                  (const char *const[]){"__name__", "xray_segment_duration_seconds_count",
                                        "service", "api", NULL},
                  bits_of(3), EPOCH_MS);
    prometheus__write_request__free_unpacked(wr, NULL);

    /* A second interval: the counter moved on, and the new body carries its time. */
    add_request(&h, "web", "api", 2, NOW_MS + 1000);
    export_once(&h, NOW_MS + 1000, EPOCH_MS + 1000);
    run_until_done(&h, 2);
    assert_int_equal(sent(&h), 2);
    assert_int_equal(fake_http_requests(&h.fake), 2);
    fake_http_last(&h.fake, r);
    wr = decode(r);
    expect_sample(wr,
                  (const char *const[]){"__name__", "traces_service_graph_request_total", "client",
                                        "web", "server", "api", NULL},
                  bits_of(5), EPOCH_MS + 1000);
    prometheus__write_request__free_unpacked(wr, NULL);
    free(r);
    harness_finish(&h);
}

static void test_remote_write_sink_basic_auth(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, (struct remote_write_sink_options){
                         .username = "Aladdin", .password = "open sesame", .user_agent = "ua/1"});
    add_request(&h, "web", "api", 1, NOW_MS);
    export_once(&h, NOW_MS, EPOCH_MS);
    run_until_done(&h, 1);
    struct fake_http_request *r = malloc(sizeof(*r));
    assert_non_null(r);
    fake_http_last(&h.fake, r);
    /* RFC 7617's own example. */
    expect_header(r, "Authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    expect_header(r, "User-Agent", "ua/1");
    free(r);
    harness_finish(&h);
}

/* A user name alone is basic auth with an empty password, as Prometheus sends it. */
static void test_remote_write_sink_basic_auth_no_password(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, (struct remote_write_sink_options){.username = "ab"});
    add_request(&h, "web", "api", 1, NOW_MS);
    export_once(&h, NOW_MS, EPOCH_MS);
    run_until_done(&h, 1);
    struct fake_http_request *r = malloc(sizeof(*r));
    assert_non_null(r);
    fake_http_last(&h.fake, r);
    expect_header(r, "Authorization", "Basic YWI6"); /* "ab:" */
    free(r);
    harness_finish(&h);
}

static void test_remote_write_sink_bearer(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, (struct remote_write_sink_options){.bearer_token = "tok-123.abc"});
    add_request(&h, "web", "api", 1, NOW_MS);
    export_once(&h, NOW_MS, EPOCH_MS);
    run_until_done(&h, 1);
    struct fake_http_request *r = malloc(sizeof(*r));
    assert_non_null(r);
    fake_http_last(&h.fake, r);
    expect_header(r, "Authorization", "Bearer tok-123.abc");
    free(r);
    harness_finish(&h);
}

/* A series idle past the expiry gets the stale marker in the next body, once; an
 * interval with nothing at all sends nothing. */
static void test_remote_write_sink_stale_markers(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, (struct remote_write_sink_options){0});
    add_request(&h, "web", "api", 1, NOW_MS);
    observe(&h, "api", 0.05, NOW_MS);
    export_once(&h, NOW_MS, EPOCH_MS);
    run_until_done(&h, 1);

    uint64_t later = NOW_MS + 60000 + 1;
    add_request(&h, "web", "db", 4, later); /* still live */
    registry_expire(h.reg, later);
    export_once(&h, later, EPOCH_MS + 60001);
    run_until_done(&h, 2);
    assert_int_equal(sent(&h), 2);

    struct fake_http_request *r = malloc(sizeof(*r));
    assert_non_null(r);
    fake_http_last(&h.fake, r);
    Prometheus__WriteRequest *wr = decode(r);
    /* web->db live; web->api stale; the histogram's 2 + 1 buckets, sum, count stale */
    assert_int_equal(wr->n_timeseries, 7);
    expect_sample(wr,
                  (const char *const[]){"__name__", "traces_service_graph_request_total", "client",
                                        "web", "server", "db", NULL},
                  bits_of(4), EPOCH_MS + 60001);
    expect_sample(wr,
                  (const char *const[]){"__name__", "traces_service_graph_request_total", "client",
                                        "web", "server", "api", NULL},
                  REMOTE_WRITE_STALE_NAN_BITS, EPOCH_MS + 60001);
    const char *const le[] = {"0.01", "0.1", "+Inf"};
    for (size_t i = 0; i < 3; i++)
        expect_sample(wr,
                      (const char *const[]){"__name__", "xray_segment_duration_seconds_bucket",
                                            "le", le[i], "service", "api", NULL},
                      REMOTE_WRITE_STALE_NAN_BITS, EPOCH_MS + 60001);
    expect_sample(wr,
                  (const char *const[]){"__name__", "xray_segment_duration_seconds_count",
                                        "service", "api", NULL},
                  REMOTE_WRITE_STALE_NAN_BITS, EPOCH_MS + 60001);
    prometheus__write_request__free_unpacked(wr, NULL);

    /* The markers were taken: the next body has only the live series. */
    export_once(&h, later + 1000, EPOCH_MS + 61001);
    run_until_done(&h, 3);
    fake_http_last(&h.fake, r);
    wr = decode(r);
    assert_int_equal(wr->n_timeseries, 1);
    prometheus__write_request__free_unpacked(wr, NULL);

    /* Everything gone and its markers sent: no request at all. */
    registry_expire(h.reg, later + 60001);
    export_once(&h, later + 60001, EPOCH_MS + 120002);
    run_until_done(&h, 4);
    export_once(&h, later + 61001, EPOCH_MS + 121002);
    run_for(&h, 200);
    assert_int_equal(fake_http_requests(&h.fake), 4);
    assert_int_equal(sent(&h), 4);
    free(r);
    harness_finish(&h);
}

/* A 400 means bad data: dropped and counted, never retried; the next body goes. */
static void test_remote_write_sink_400_dropped(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, (struct remote_write_sink_options){0});
    h.reply_status = 400;
    add_request(&h, "web", "api", 1, NOW_MS);
    export_once(&h, NOW_MS, EPOCH_MS);
    run_until_done(&h, 1);
    run_for(&h, 700); /* past the shortest backoff: a retry would show */
    assert_int_equal(fake_http_requests(&h.fake), 1);
    assert_int_equal(dropped(&h), 1);
    assert_int_equal(sent(&h), 0);
    assert_int_equal(stats_get(&h.stats.sink_retries[STATS_SINK_REMOTE_WRITE]), 0);

    pthread_mutex_lock(&h.fake.mu);
    h.reply_status = 200;
    pthread_mutex_unlock(&h.fake.mu);
    export_once(&h, NOW_MS + 1000, EPOCH_MS + 1000);
    run_until_done(&h, 2);
    assert_int_equal(sent(&h), 1);
    assert_int_equal(fake_http_requests(&h.fake), 2);
    harness_finish(&h);
}

/* A snapshot the encoder refuses (more labels than registry.h allows) is counted as
 * dropped and sends nothing. */
static void test_remote_write_sink_encode_failure(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, (struct remote_write_sink_options){0});
    struct metric_label labels[METRIC_LABELS_MAX + 2];
    for (size_t i = 0; i < METRIC_LABELS_MAX + 2; i++)
        labels[i] = (struct metric_label){"client", "x"};
    const struct metric_sample bad[] = {{.labels = labels, .nlabels = METRIC_LABELS_MAX + 2}};
    const struct metric_family_snapshot fams[] = {{.def = &req_def, .nseries = 1, .series = bad}};
    const struct registry_snapshot snap = {.nfamilies = 1, .families = fams};
    remote_write_sink_ops.encode(h.sink, &snap);
    remote_write_sink_ops.ship(h.sink);
    assert_int_equal(dropped(&h), 1);
    assert_int_equal(remote_write_sink_queued(h.sink), 0);
    run_for(&h, 100);
    assert_int_equal(fake_http_requests(&h.fake), 0);
    harness_finish(&h);
}

static void expect_refused(struct remote_write_sink_options o, const char *want)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct http_client_options ho = {0};
    struct http_client *http = http_client_create(&loop, &ho);
    assert_non_null(http);
    struct stats st;
    memset(&st, 0, sizeof(st));
    o.loop = &loop;
    o.http = http;
    o.stats = &st;
    char err[XRAY_ERR_LEN] = "";
    assert_null(remote_write_sink_create(&o, err));
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", err, want);
    http_client_close(http, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_remote_write_sink_create_bad_options(void **state)
{
    (void)state;
    const char *url = "http://127.0.0.1:9090/api/v1/write";
    expect_refused((struct remote_write_sink_options){.url = NULL}, "URL");
    expect_refused((struct remote_write_sink_options){.url = "ftp://h/api/v1/write"}, "URL");
    expect_refused((struct remote_write_sink_options){.url = "127.0.0.1:9090/api/v1/write"}, "URL");
    expect_refused((struct remote_write_sink_options){.url = "http:///api/v1/write"}, "URL");
    expect_refused((struct remote_write_sink_options){.url = "http://h/a b"}, "URL");
    expect_refused((struct remote_write_sink_options){.url = url, .password = "p"},
                   "needs a username");
    expect_refused(
        (struct remote_write_sink_options){.url = url, .username = "u", .bearer_token = "t"},
        "exclusive");
    expect_refused((struct remote_write_sink_options){.url = url, .username = "u:v"}, "':'");
    expect_refused((struct remote_write_sink_options){.url = url, .bearer_token = "t\r\nX: y"},
                   "control character");
    expect_refused(
        (struct remote_write_sink_options){.url = url, .username = "u", .password = "p\n"},
        "control character");

    /* The options themselves are required too. */
    char err[XRAY_ERR_LEN] = "";
    assert_null(remote_write_sink_create(NULL, err));
    struct stats st;
    memset(&st, 0, sizeof(st));
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct remote_write_sink_options o = {.loop = &loop, .url = url, .stats = &st};
    assert_null(remote_write_sink_create(&o, err)); /* neither HTTP nor AWS client */
    assert_non_null(strstr(err, "client"));
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Accepted URLs: https, a port, a path-less URL. */
static void test_remote_write_sink_create_good_urls(void **state)
{
    (void)state;
    const char *urls[] = {"https://aps.example/api/v1/remote_write", "HTTP://[::1]:9090/w",
                          "http://localhost"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        struct http_client_options ho = {0};
        struct http_client *http = http_client_create(&loop, &ho);
        struct stats st;
        memset(&st, 0, sizeof(st));
        struct remote_write_sink_options o = {
            .loop = &loop, .http = http, .url = urls[i], .stats = &st, .bearer_token = "t"};
        char err[XRAY_ERR_LEN] = "";
        struct remote_write_sink *s = remote_write_sink_create(&o, err);
        if (s == NULL)
            fail_msg("%s refused: %s", urls[i], err);
        assert_int_equal(remote_write_sink_queued(s), 0);
        remote_write_sink_close(s, NULL, NULL);
        http_client_close(http, NULL, NULL);
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
}

/* With an AWS client every request is signed for aps, the protocol's headers among the
 * signed ones, and sent to the client's endpoint with the rest of the URL as path. */
static void test_remote_write_sink_sigv4(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, (struct remote_write_sink_options){0});
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    unsetenv("AWS_SESSION_TOKEN");
    const struct credentials_provider *const providers[] = {&credentials_env_provider};
    struct credentials_chain *chain = credentials_chain_create(
        &(struct credentials_options){.providers = providers, .count = 1, .http = h.http});
    assert_non_null(chain);
    char endpoint[128], url[192], err[XRAY_ERR_LEN] = "";
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/workspaces/ws-1", h.fake.port);
    snprintf(url, sizeof(url), "%s/api/v1/remote_write", endpoint);
    struct aws_client *aws =
        aws_client_create(&(struct aws_client_options){.http = h.http,
                                                       .creds = chain,
                                                       .endpoint = endpoint,
                                                       .region = "us-west-2",
                                                       .service = "aps",
                                                       .user_agent = "xrayd-test"},
                          err);
    if (aws == NULL) { /* aws_call.c not built in yet */
        credentials_chain_destroy(chain);
        harness_finish(&h);
        skip();
    }
    struct remote_write_sink_options o = {.loop = &h.loop,
                                          .http = h.http,
                                          .aws = aws,
                                          .url = "http://elsewhere/api/v1/write",
                                          .stats = &h.stats};
    assert_null(remote_write_sink_create(&o, err)); /* not under the endpoint */
    assert_non_null(strstr(err, "AWS endpoint"));
    o.url = url;
    o.bearer_token = "t";
    assert_null(remote_write_sink_create(&o, err)); /* SigV4 owns Authorization */
    o.bearer_token = NULL;
    struct remote_write_sink *signed_sink = remote_write_sink_create(&o, err);
    assert_non_null(signed_sink);
    remote_write_sink_close(h.sink, NULL, NULL);
    h.sink = signed_sink;

    add_request(&h, "web", "api", 1, NOW_MS);
    export_once(&h, NOW_MS, EPOCH_MS);
    run_until_done(&h, 1);
    assert_int_equal(sent(&h), 1);
    struct fake_http_request *r = malloc(sizeof(*r));
    assert_non_null(r);
    fake_http_last(&h.fake, r);
    assert_string_equal(r->path, "/workspaces/ws-1/api/v1/remote_write");
    expect_header(r, "Content-Encoding", "snappy");
    expect_header(r, "Content-Type", "application/x-protobuf");
    expect_header(r, "X-Prometheus-Remote-Write-Version", "0.1.0");
    char auth[512];
    fake_http_header(r, "Authorization", auth, sizeof(auth));
    if (strstr(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") != auth ||
        strstr(auth, "/us-west-2/aps/aws4_request") == NULL ||
        strstr(auth, "content-encoding") == NULL || strstr(auth, "content-type") == NULL ||
        strstr(auth, "x-prometheus-remote-write-version") == NULL)
        fail_msg("Authorization: %s", auth);
    Prometheus__WriteRequest *wr = decode(r);
    assert_int_equal(wr->n_timeseries, 1);
    prometheus__write_request__free_unpacked(wr, NULL);
    free(r);
    remote_write_sink_close(h.sink, on_closed, &h);
    http_client_close(h.http, on_closed, &h);
    uv_close((uv_handle_t *)&h.watchdog, NULL);
    assert_int_equal(uv_run(&h.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(h.closed, 2);
    assert_int_equal(uv_loop_close(&h.loop), 0);
    aws_client_destroy(aws);
    credentials_chain_destroy(chain);
    fake_http_stop(&h.fake);
    registry_destroy(h.reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remote_write_sink_post),
        cmocka_unit_test(test_remote_write_sink_basic_auth),
        cmocka_unit_test(test_remote_write_sink_basic_auth_no_password),
        cmocka_unit_test(test_remote_write_sink_bearer),
        cmocka_unit_test(test_remote_write_sink_stale_markers),
        cmocka_unit_test(test_remote_write_sink_400_dropped),
        cmocka_unit_test(test_remote_write_sink_encode_failure),
        cmocka_unit_test(test_remote_write_sink_create_bad_options),
        cmocka_unit_test(test_remote_write_sink_create_good_urls),
        cmocka_unit_test(test_remote_write_sink_sigv4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
