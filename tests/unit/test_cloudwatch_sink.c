/* SPDX-License-Identifier: Apache-2.0 */
/* The CloudWatch sink driven as the exporter drives it (encode() with a snapshot of a
 * registry filled through families.h, then ship() on the loop) against the fake HTTP
 * server standing in for CloudWatch Logs and CloudWatch: the bodies and their target
 * headers, a missing log group and stream created before the events are sent again,
 * the second interval carrying only the new traffic, a 5xx retried, any other 4xx
 * dropped, and the options it refuses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "export/cloudwatch_sink.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/aws_call.h"
#include "aws/credentials.h"
#include "error.h"
#include "fake_http.h"
#include "metrics/families.h"
#include "metrics/registry.h"

#define MAX_REQS 32

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define EPOCH_MS                        INT64_C(1700000000000)

/* ---- the fake CloudWatch: what it got, what it answers ---- */

struct cw_fake {
    int nreqs;
    char *target[MAX_REQS];
    char *ctype[MAX_REQS];
    char *query_mode[MAX_REQS];
    char *auth[MAX_REQS];
    char *body[MAX_REQS];
    bool group_exists, stream_exists;
    int fail_first; /* answer the first n requests with fail_status / fail_body */
    int fail_status;
    const char *fail_body;
    const char *create_group_error; /* CreateLogGroup answers 400 with this type */
};

static struct cw_fake cw;

static void cw_reset(void)
{
    for (int i = 0; i < cw.nreqs; i++) {
        free(cw.target[i]);
        free(cw.ctype[i]);
        free(cw.query_mode[i]);
        free(cw.auth[i]);
        free(cw.body[i]);
    }
    memset(&cw, 0, sizeof(cw));
}

static char *header_dup(const struct fake_http_request *req, const char *name)
{
    char v[2048];
    char *d = strdup(fake_http_header(req, name, v, sizeof(v)));
    if (d == NULL)
        abort();
    return d;
}

static void aws_error(struct fake_http_reply *rep, const char *type)
{
    rep->status = 400;
    snprintf(rep->body, sizeof(rep->body), "{\"__type\":\"%s\",\"message\":\"from the fake\"}",
             type);
}

static void cw_handler(struct fake_http *f, const struct fake_http_request *req,
                       struct fake_http_reply *rep)
{
    (void)f;
    if (cw.nreqs >= MAX_REQS)
        abort();
    int i = cw.nreqs++;
    cw.target[i] = header_dup(req, "X-Amz-Target");
    cw.ctype[i] = header_dup(req, "Content-Type");
    cw.query_mode[i] = header_dup(req, "x-amzn-query-mode");
    cw.auth[i] = header_dup(req, "Authorization");
    cw.body[i] = strdup(req->body);
    rep->status = 200;
    snprintf(rep->body, sizeof(rep->body), "{}");
    if (i < cw.fail_first) {
        rep->status = cw.fail_status;
        snprintf(rep->body, sizeof(rep->body), "%s", cw.fail_body);
        return;
    }
    const char *t = cw.target[i];
    if (strcmp(t, "Logs_20140328.PutLogEvents") == 0) {
        if (!cw.group_exists || !cw.stream_exists)
            aws_error(rep, "ResourceNotFoundException");
        else
            snprintf(rep->body, sizeof(rep->body), "{\"nextSequenceToken\":\"1\"}");
    } else if (strcmp(t, "Logs_20140328.CreateLogGroup") == 0) {
        if (cw.create_group_error != NULL)
            aws_error(rep, cw.create_group_error);
        else if (cw.group_exists)
            aws_error(rep, "com.amazonaws.logs#ResourceAlreadyExistsException");
        cw.group_exists = true;
    } else if (strcmp(t, "Logs_20140328.CreateLogStream") == 0) {
        if (!cw.group_exists)
            aws_error(rep, "ResourceNotFoundException");
        else if (cw.stream_exists)
            aws_error(rep, "ResourceAlreadyExistsException");
        else
            cw.stream_exists = true;
    }
}

/* ---- a loop, the fake, the AWS client and the sink ---- */

struct rig {
    uv_loop_t loop;
    uv_timer_t watchdog, poll;
    struct fake_http fake;
    struct http_client *http;
    struct credentials_chain *chain;
    struct aws_client *aws;
    struct stats stats;
    struct cloudwatch_sink *sink;
    struct families *fam;
    int want_requests;
    int closed;
};

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the test did not finish in time");
}

static void rig_init(struct rig *r, const char *service, struct cloudwatch_sink_options *so)
{
    memset(r, 0, sizeof(*r));
    cw_reset();
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    setenv("AWS_SESSION_TOKEN", "tok", 1);
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(uv_timer_init(&r->loop, &r->watchdog), 0);
    assert_int_equal(uv_timer_init(&r->loop, &r->poll), 0);
    assert_int_equal(uv_timer_start(&r->watchdog, on_watchdog, 20000, 0), 0);
    fake_http_start(&r->fake, cw_handler, r);
    r->http = http_client_create(&r->loop, NULL);
    assert_non_null(r->http);
    const struct credentials_provider *const providers[] = {&credentials_env_provider};
    const struct credentials_options co = {.providers = providers, .count = 1};
    r->chain = credentials_chain_create(&co);
    assert_non_null(r->chain);
    char url[64], err[XRAY_ERR_LEN];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", r->fake.port);
    const struct aws_client_options ao = {.http = r->http,
                                          .creds = r->chain,
                                          .endpoint = url,
                                          .region = "us-east-1",
                                          .service = service};
    r->aws = aws_client_create(&ao, err);
    assert_non_null(r->aws);
    so->loop = &r->loop;
    so->aws = r->aws;
    so->stats = &r->stats;
    r->sink = cloudwatch_sink_create(so, err);
    if (r->sink == NULL)
        fail_msg("cloudwatch_sink_create: %s", err);
    r->fam = families_create(NULL);
    assert_non_null(r->fam);
}

static void on_closed(void *data)
{
    ((struct rig *)data)->closed++;
}

static void rig_finish(struct rig *r)
{
    cloudwatch_sink_close(r->sink, on_closed, r);
    http_client_close(r->http, on_closed, r);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
    uv_close((uv_handle_t *)&r->poll, NULL);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r->closed, 2);
    aws_client_destroy(r->aws);
    credentials_chain_destroy(r->chain);
    fake_http_stop(&r->fake);
    families_destroy(r->fam);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    cw_reset();
}

static void on_poll(uv_timer_t *t)
{
    struct rig *r = container_of(t, struct rig, poll);
    if (fake_http_requests(&r->fake) >= r->want_requests && cloudwatch_sink_queued(r->sink) == 0)
        uv_stop(&r->loop);
}

/* One export as the exporter runs it: snapshot, encode (the sink keeps the snapshot),
 * ship; then the loop until the fake has seen want requests in all and the queue is
 * empty. */
static void rig_export(struct rig *r, int64_t epoch_ms, int want)
{
    struct registry_snapshot *snap =
        registry_snapshot(families_registry(r->fam), 1000, epoch_ms, false);
    assert_non_null(snap);
    cloudwatch_sink_ops.encode(r->sink, snap);
    cloudwatch_sink_ops.ship(r->sink);
    r->want_requests = want;
    assert_int_equal(uv_timer_start(&r->poll, on_poll, 5, 5), 0);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&r->poll);
    assert_int_equal(fake_http_requests(&r->fake), want);
}

/* The traffic of test_metrics_scrape: web calls api three times, one a fault. */
static void traffic(struct rig *r, int requests, int faults)
{
    for (int i = 0; i < requests; i++) {
        bool fault = i < faults;
        double s = 0.005 + 0.1 * i;
        families_segment(r->fam, "api", "AWS::EC2::Instance", fault ? "fault" : "ok", s, 1000);
        const struct families_edge e = {.client = "web",
                                        .server = "api",
                                        .connection_type = "",
                                        .failed = fault,
                                        .client_seconds = s + 0.001,
                                        .server_seconds = s};
        families_edge(r->fam, &e, 1000);
    }
}

static json_t *parse(const char *s)
{
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    if (j == NULL)
        fail_msg("not JSON (%s): %s", err.text, s);
    return j;
}

/* The EMF event of body whose dimension dim is value (NULL when none); a new
 * reference. */
static json_t *emf_event(const char *body, const char *dim, const char *value)
{
    json_t *root = parse(body);
    json_t *events = json_object_get(root, "logEvents");
    json_t *found = NULL;
    for (size_t i = 0; i < json_array_size(events) && found == NULL; i++) {
        json_t *ev = json_array_get(events, i);
        json_t *msg = parse(json_string_value(json_object_get(ev, "message")));
        const char *v = json_string_value(json_object_get(msg, dim));
        if (v != NULL && strcmp(v, value) == 0 && json_object_get(msg, "Requests") != NULL)
            found = msg;
        else
            json_decref(msg);
    }
    json_decref(root);
    return found;
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void test_cloudwatch_sink_emf_creates_group_and_stream(void **state)
{
    struct rig r;
    (void)state;
    struct cloudwatch_sink_options so = {
        .output = CLOUDWATCH_SINK_EMF, .ns = "Test/NS", .log_group = "/test/metrics"};
    rig_init(&r, "logs", &so);
    traffic(&r, 3, 1);
    rig_export(&r, EPOCH_MS, 4);
    /* PutLogEvents, not found; CreateLogGroup; CreateLogStream; PutLogEvents again. */
    assert_string_equal(cw.target[0], "Logs_20140328.PutLogEvents");
    assert_string_equal(cw.target[1], "Logs_20140328.CreateLogGroup");
    assert_string_equal(cw.target[2], "Logs_20140328.CreateLogStream");
    assert_string_equal(cw.target[3], "Logs_20140328.PutLogEvents");
    for (int i = 0; i < 4; i++) {
        assert_string_equal(cw.ctype[i], "application/x-amz-json-1.1");
        assert_non_null(strstr(cw.auth[i], "/us-east-1/logs/aws4_request"));
    }
    assert_string_equal(cw.body[0], cw.body[3]);
    assert_string_equal(cw.body[1], "{\"logGroupName\":\"/test/metrics\"}");
    char host[200], want[300];
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    snprintf(want, sizeof(want),
             "{\"logGroupName\":\"/test/metrics\",\"logStreamName\":\"xrayd-%s\"}", host);
    assert_string_equal(cw.body[2], want);
    assert_int_equal(stats_get(&r.stats.sink_sent[STATS_SINK_CLOUDWATCH]), 1);
    assert_int_equal(stats_get(&r.stats.sink_dropped[STATS_SINK_CLOUDWATCH]), 0);

    json_t *root = parse(cw.body[3]);
    assert_string_equal(json_string_value(json_object_get(root, "logGroupName")), "/test/metrics");
    json_t *events = json_object_get(root, "logEvents");
    assert_int_equal(json_array_size(events), 2); /* the service api, the edge web -> api */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(events, 0), "timestamp")),
                     EPOCH_MS);
    json_decref(root);
    json_t *api = emf_event(cw.body[3], "Service", "api");
    assert_non_null(api);
    assert_int_equal((int)num(api, "Requests"), 3);
    assert_int_equal((int)num(api, "Faults"), 1);
    assert_string_equal(json_string_value(json_object_get(api, "ServiceType")),
                        "AWS::EC2::Instance");
    json_t *dir =
        json_array_get(json_object_get(json_object_get(api, "_aws"), "CloudWatchMetrics"), 0);
    assert_string_equal(json_string_value(json_object_get(dir, "Namespace")), "Test/NS");
    json_t *lat = json_object_get(api, "Latency");
    assert_int_equal(json_array_size(lat), 3); /* one value per observation */
    json_decref(api);
    json_t *edge = emf_event(cw.body[3], "Client", "web");
    assert_non_null(edge);
    assert_string_equal(json_string_value(json_object_get(edge, "Server")), "api");
    assert_int_equal((int)num(edge, "Requests"), 3);
    assert_int_equal((int)num(edge, "Failed"), 1);
    json_decref(edge);

    /* The next interval carries only its own traffic, and finds the stream there. */
    traffic(&r, 2, 0);
    rig_export(&r, EPOCH_MS + 60000, 5);
    assert_string_equal(cw.target[4], "Logs_20140328.PutLogEvents");
    api = emf_event(cw.body[4], "Service", "api");
    assert_non_null(api);
    assert_int_equal((int)num(api, "Requests"), 2);
    json_t *faults = json_object_get(api, "Faults");
    assert_true(faults == NULL || json_number_value(faults) == 0);
    assert_int_equal(json_array_size(json_object_get(api, "Latency")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(api, "_aws"), "Timestamp")),
                     EPOCH_MS + 60000);
    json_decref(api);
    assert_int_equal(stats_get(&r.stats.sink_sent[STATS_SINK_CLOUDWATCH]), 2);

    /* Nothing new: nothing sent. */
    rig_export(&r, EPOCH_MS + 120000, 5);
    assert_int_equal(stats_get(&r.stats.sink_sent[STATS_SINK_CLOUDWATCH]), 2);
    rig_finish(&r);
}

static void test_cloudwatch_sink_emf_stream_missing_only(void **state)
{
    struct rig r;
    (void)state;
    struct cloudwatch_sink_options so = {.output = CLOUDWATCH_SINK_EMF, .log_stream = "mine"};
    rig_init(&r, "logs", &so);
    cw.group_exists = true; /* the group is there: CreateLogGroup says so, which is fine */
    traffic(&r, 1, 0);
    rig_export(&r, EPOCH_MS, 4);
    assert_string_equal(cw.target[1], "Logs_20140328.CreateLogGroup");
    assert_string_equal(cw.target[2], "Logs_20140328.CreateLogStream");
    assert_string_equal(cw.body[2], "{\"logGroupName\":\"/xrayd/metrics\",\"logStreamName\":"
                                    "\"mine\"}");
    assert_string_equal(cw.target[3], "Logs_20140328.PutLogEvents");
    assert_int_equal(stats_get(&r.stats.sink_sent[STATS_SINK_CLOUDWATCH]), 1);
    json_t *api = emf_event(cw.body[3], "Service", "api");
    assert_non_null(api);
    json_t *dir =
        json_array_get(json_object_get(json_object_get(api, "_aws"), "CloudWatchMetrics"), 0);
    assert_string_equal(json_string_value(json_object_get(dir, "Namespace")), "XRayDaemon");
    json_decref(api);
    rig_finish(&r);
}

static void test_cloudwatch_sink_emf_create_refused_drops(void **state)
{
    struct rig r;
    (void)state;
    struct cloudwatch_sink_options so = {.output = CLOUDWATCH_SINK_EMF};
    rig_init(&r, "logs", &so);
    cw.create_group_error = "AccessDeniedException";
    traffic(&r, 1, 0);
    rig_export(&r, EPOCH_MS, 2);
    assert_string_equal(cw.target[1], "Logs_20140328.CreateLogGroup");
    assert_int_equal(stats_get(&r.stats.sink_dropped[STATS_SINK_CLOUDWATCH]), 1);
    assert_int_equal(stats_get(&r.stats.sink_sent[STATS_SINK_CLOUDWATCH]), 0);
    assert_int_equal(stats_get(&r.stats.sink_retries[STATS_SINK_CLOUDWATCH]), 0);
    rig_finish(&r);
}

static void test_cloudwatch_sink_put_metric_data(void **state)
{
    struct rig r;
    (void)state;
    struct cloudwatch_sink_options so = {
        .output = CLOUDWATCH_SINK_PUT_METRIC_DATA, .ns = "Pmd", .storage_resolution = 1};
    rig_init(&r, "monitoring", &so);
    traffic(&r, 3, 1);
    rig_export(&r, EPOCH_MS, 1);
    assert_string_equal(cw.target[0], "GraniteServiceVersion20100801.PutMetricData");
    assert_string_equal(cw.ctype[0], "application/x-amz-json-1.0");
    assert_string_equal(cw.query_mode[0], "true");
    assert_non_null(strstr(cw.auth[0], "/us-east-1/monitoring/aws4_request"));
    assert_int_equal(stats_get(&r.stats.sink_sent[STATS_SINK_CLOUDWATCH]), 1);
    json_t *root = parse(cw.body[0]);
    assert_string_equal(json_string_value(json_object_get(root, "Namespace")), "Pmd");
    json_t *data = json_object_get(root, "MetricData");
    int seen = 0;
    for (size_t i = 0; i < json_array_size(data); i++) {
        json_t *d = json_array_get(data, i);
        const char *name = json_string_value(json_object_get(d, "MetricName"));
        json_t *dims = json_object_get(d, "Dimensions");
        const char *first = json_string_value(json_object_get(json_array_get(dims, 0), "Value"));
        assert_int_equal(json_integer_value(json_object_get(d, "StorageResolution")), 1);
        if (strcmp(name, "Requests") == 0 && strcmp(first, "api") == 0) {
            assert_int_equal((int)num(d, "Value"), 3);
            seen |= 1;
        } else if (strcmp(name, "Faults") == 0 && strcmp(first, "api") == 0) {
            assert_int_equal((int)num(d, "Value"), 1);
            seen |= 2;
        } else if (strcmp(name, "Failed") == 0 && strcmp(first, "web") == 0) {
            assert_int_equal((int)num(d, "Value"), 1);
            seen |= 4;
        }
    }
    assert_int_equal(seen, 7);
    json_decref(root);

    /* The second interval: only the new requests. */
    traffic(&r, 2, 0);
    rig_export(&r, EPOCH_MS + 1000, 2);
    root = parse(cw.body[1]);
    data = json_object_get(root, "MetricData");
    seen = 0;
    for (size_t i = 0; i < json_array_size(data); i++) {
        json_t *d = json_array_get(data, i);
        const char *name = json_string_value(json_object_get(d, "MetricName"));
        const char *first = json_string_value(
            json_object_get(json_array_get(json_object_get(d, "Dimensions"), 0), "Value"));
        if (strcmp(name, "Requests") == 0 && strcmp(first, "api") == 0) {
            assert_int_equal((int)num(d, "Value"), 2);
            seen = 1;
        }
    }
    assert_int_equal(seen, 1);
    json_decref(root);
    rig_finish(&r);
}

static void test_cloudwatch_sink_4xx_dropped_5xx_retried(void **state)
{
    struct rig r;
    (void)state;
    struct cloudwatch_sink_options so = {.output = CLOUDWATCH_SINK_PUT_METRIC_DATA};
    rig_init(&r, "monitoring", &so);
    cw.fail_first = 1;
    cw.fail_status = 400;
    cw.fail_body = "{\"__type\":\"InvalidParameterValueException\",\"message\":\"no\"}";
    traffic(&r, 1, 0);
    rig_export(&r, EPOCH_MS, 1);
    assert_int_equal(stats_get(&r.stats.sink_dropped[STATS_SINK_CLOUDWATCH]), 1);
    assert_int_equal(stats_get(&r.stats.sink_sent[STATS_SINK_CLOUDWATCH]), 0);
    assert_int_equal(stats_get(&r.stats.sink_retries[STATS_SINK_CLOUDWATCH]), 0);

    cw.fail_first = 2; /* the next request (the second in all) answers 503 */
    cw.fail_status = 503;
    cw.fail_body = "{}";
    traffic(&r, 1, 0);
    rig_export(&r, EPOCH_MS + 1000, 3);
    assert_int_equal(stats_get(&r.stats.sink_retries[STATS_SINK_CLOUDWATCH]), 1);
    assert_int_equal(stats_get(&r.stats.sink_sent[STATS_SINK_CLOUDWATCH]), 1);
    assert_string_equal(cw.body[1], cw.body[2]);
    rig_finish(&r);
}

static void test_cloudwatch_sink_close_unshipped(void **state)
{
    struct rig r;
    (void)state;
    struct cloudwatch_sink_options so = {.output = CLOUDWATCH_SINK_EMF};
    rig_init(&r, "logs", &so);
    traffic(&r, 1, 0);
    struct registry_snapshot *snap =
        registry_snapshot(families_registry(r.fam), 1000, EPOCH_MS, false);
    assert_non_null(snap);
    cloudwatch_sink_ops.encode(r.sink, snap); /* never shipped: freed by close */
    rig_finish(&r);
    assert_int_equal(cw.nreqs, 0);
}

static void test_cloudwatch_sink_create_refuses(void **state)
{
    (void)state;
    char err[XRAY_ERR_LEN];
    struct stats st = {0};
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct http_client *http = http_client_create(&loop, NULL);
    struct credentials_chain *chain = credentials_chain_create(NULL);
    const struct aws_client_options ao = {.http = http,
                                          .creds = chain,
                                          .endpoint = "http://127.0.0.1:1",
                                          .region = "us-east-1",
                                          .service = "logs"};
    struct aws_client *aws = aws_client_create(&ao, err);
    assert_non_null(aws);
    struct cloudwatch_sink_options so = {.loop = &loop, .aws = aws, .stats = &st, .ns = "AWS/EC2"};
    assert_null(cloudwatch_sink_create(&so, err));
    assert_non_null(strstr(err, "namespace"));
    so.ns = NULL;
    so.storage_resolution = 5;
    assert_null(cloudwatch_sink_create(&so, err));
    so.storage_resolution = 60;
    so.log_group = "bad group!";
    assert_null(cloudwatch_sink_create(&so, err));
    assert_non_null(strstr(err, "log group"));
    so.log_group = NULL;
    so.log_stream = "a:b";
    assert_null(cloudwatch_sink_create(&so, err));
    so.log_stream = NULL;
    so.output = 7;
    assert_null(cloudwatch_sink_create(&so, err));
    so.output = CLOUDWATCH_SINK_EMF;
    struct cloudwatch_sink *s = cloudwatch_sink_create(&so, err);
    assert_non_null(s);
    assert_int_equal(cloudwatch_sink_queued(s), 0);
    cloudwatch_sink_close(s, NULL, NULL);
    http_client_close(http, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    aws_client_destroy(aws);
    credentials_chain_destroy(chain);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cloudwatch_sink_emf_creates_group_and_stream),
        cmocka_unit_test(test_cloudwatch_sink_emf_stream_missing_only),
        cmocka_unit_test(test_cloudwatch_sink_emf_create_refused_drops),
        cmocka_unit_test(test_cloudwatch_sink_put_metric_data),
        cmocka_unit_test(test_cloudwatch_sink_4xx_dropped_5xx_retried),
        cmocka_unit_test(test_cloudwatch_sink_close_unshipped),
        cmocka_unit_test(test_cloudwatch_sink_create_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
