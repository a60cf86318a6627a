/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of upstream/telemetry.c: the body read back with jansson, record cutting, and
 * the call rules (10 per call, 30 kept, removed on 200 only, one call in flight, the
 * final record on flush) through a fake sender that the test answers by hand, plus
 * the timer on a real loop; the identity from the environment or from a fake instance
 * metadata service on 127.0.0.1. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "upstream/telemetry.h"
#include "error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "aws/imds.h"
#include "fake_http.h"

#define FAR_MS (3600u * 1000) /* an interval the loop never reaches: ticks by hand */

/* ---- the fake sender: stands in for the signed X-Ray client ---- */

enum fake_mode {
    FAKE_HOLD,   /* keep done until fake_answer() */
    FAKE_REFUSE, /* send() fails at once, done never runs */
    FAKE_LOOP,   /* answer 200 from a 1 ms timer on the loop */
};

struct fake_sender {
    enum fake_mode mode;
    int calls;   /* sends that started */
    int refused; /* sends that failed at once */
    bool pending;
    void (*done)(int http_status, void *data);
    void *data;
    const char *body; /* borrowed from the module: must stay valid until done */
    size_t len;
    char copy[TELEMETRY_BODY_MAX];
    uint64_t received_sum; /* SegmentsReceivedCount of every record answered 200 */
    uv_timer_t reply;
};

static json_int_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return json_integer_value(v);
}

static json_t *fake_body_json(const struct fake_sender *f)
{
    json_error_t err;
    json_t *j = json_loadb(f->copy, f->len, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL)
        fail_msg("body is not JSON: %s", err.text);
    return j;
}

/* How many records the last body held, and the Timestamp of its first one. */
static size_t fake_last_records(const struct fake_sender *f, json_int_t *first_ts)
{
    json_t *j = fake_body_json(f);
    json_t *recs = json_object_get(j, "TelemetryRecords");
    assert_true(json_is_array(recs));
    size_t n = json_array_size(recs);
    if (first_ts && n)
        *first_ts = json_integer_value(json_object_get(json_array_get(recs, 0), "Timestamp"));
    json_decref(j);
    return n;
}

static void fake_answer(struct fake_sender *f, int status)
{
    assert_true(f->pending);
    /* The body the module lent must still be there, unchanged. */
    assert_memory_equal(f->body, f->copy, f->len);
    if (status == 200) {
        json_t *j = fake_body_json(f);
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(j, "TelemetryRecords"), i, r)
        {
            f->received_sum += (uint64_t)jint(r, "SegmentsReceivedCount");
        }
        json_decref(j);
    }
    f->pending = false;
    f->done(status, f->data);
}

static void fake_on_reply(uv_timer_t *timer)
{
    fake_answer(timer->data, 200);
}

static int fake_send(void *ctx, const char *path, const void *body, size_t len,
                     void (*done)(int http_status, void *data), void *data)
{
    struct fake_sender *f = ctx;
    assert_string_equal(path, "/TelemetryRecords");
    if (f->pending)
        fail_msg("a second call started while one was in flight");
    if (f->mode == FAKE_REFUSE) {
        f->refused++;
        return -ECONNREFUSED;
    }
    assert_true(len > 0 && len <= sizeof(f->copy));
    f->calls++;
    f->pending = true;
    f->done = done;
    f->data = data;
    f->body = body;
    f->len = len;
    memcpy(f->copy, body, len);
    if (f->mode == FAKE_LOOP)
        assert_int_equal(uv_timer_start(&f->reply, fake_on_reply, 1, 0), 0);
    return 0;
}

/* ---- per-test environment: a loop, a watchdog, stats, the fake ---- */

struct env {
    uv_loop_t loop;
    uv_timer_t watchdog;
    struct stats stats;
    struct fake_sender fake;
    struct telemetry_identity id;
    struct telemetry *t;
    int closed;
    int flushed;
    bool flush_started;
    uv_timer_t check; /* the timer test's traffic and stop condition */
};

static void env_on_watchdog(uv_timer_t *timer)
{
    (void)timer;
    fail_msg("watchdog: the loop did not finish in time");
}

static int env_setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(uv_timer_init(&e->loop, &e->watchdog), 0);
    assert_int_equal(uv_timer_start(&e->watchdog, env_on_watchdog, 5000, 0), 0);
    uv_unref((uv_handle_t *)&e->watchdog); /* fires only if something else hangs */
    assert_int_equal(uv_timer_init(&e->loop, &e->fake.reply), 0);
    e->fake.reply.data = &e->fake;
    assert_int_equal(uv_timer_init(&e->loop, &e->check), 0);
    e->check.data = e;
    strcpy(e->id.ec2_instance_id, "i-0123456789abcdef0");
    strcpy(e->id.hostname, "ip-10-0-0-1");
    *state = e;
    return 0;
}

static void env_on_closed(void *data)
{
    ((struct env *)data)->closed++;
}

static void env_on_flushed(void *data)
{
    ((struct env *)data)->flushed++;
}

static int env_teardown(void **state)
{
    struct env *e = *state;
    if (e->t) {
        telemetry_close(e->t, env_on_closed, e);
        uv_run(&e->loop, UV_RUN_DEFAULT);
        assert_int_equal(e->closed, 1);
        if (e->fake.pending) /* the module kept its memory for this call */
            fake_answer(&e->fake, 0);
    }
    uv_close((uv_handle_t *)&e->watchdog, NULL);
    uv_close((uv_handle_t *)&e->fake.reply, NULL);
    if (!uv_is_closing((uv_handle_t *)&e->check))
        uv_close((uv_handle_t *)&e->check, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    free(e);
    return 0;
}

static struct telemetry *env_create(struct env *e, uint64_t interval_ms)
{
    struct telemetry_sender s = {fake_send, &e->fake};
    e->t = telemetry_create(&e->loop, &e->stats, &e->id, &s, interval_ms);
    assert_non_null(e->t);
    return e->t;
}

/* ---- the body ---- */

static void check_record(json_t *r, const struct telemetry_record *w)
{
    /* In enum stats_backend order. */
    static const char *const backend[STATS_BACKEND__COUNT] = {
        "HTTPCode4XXCount",       "HTTPCode5XXCount", "TimeoutCount",
        "ConnectionRefusedCount", "UnknownHostCount", "OtherCount"};
    assert_int_equal(json_object_size(r), 6);
    assert_int_equal(jint(r, "Timestamp"), w->timestamp_s);
    assert_int_equal(jint(r, "SegmentsReceivedCount"), w->received);
    assert_int_equal(jint(r, "SegmentsSentCount"), w->sent);
    assert_int_equal(jint(r, "SegmentsSpilloverCount"), w->spillover);
    assert_int_equal(jint(r, "SegmentsRejectedCount"), w->rejected);
    json_t *b = json_object_get(r, "BackendConnectionErrors");
    assert_int_equal(json_object_size(b), STATS_BACKEND__COUNT);
    for (int i = 0; i < STATS_BACKEND__COUNT; i++)
        assert_int_equal(jint(b, backend[i]), w->backend[i]);
}

static void test_telemetry_body_fields(void **state)
{
    (void)state;
    struct telemetry_identity id = {0};
    strcpy(id.ec2_instance_id, "i-0123456789abcdef0");
    strcpy(id.hostname, "host \"a\"\\b");
    strcpy(id.resource_arn, "arn:aws:ec2:us-east-1:123456789012:instance/i-0123");
    struct telemetry_record recs[2] = {
        {1700000000, 100, 90, 3, 7, {1, 2, 3, 4, 5, 6}},
        {1700000060, 0, 0, 0, 0, {0, 0, 0, 0, 0, INT32_MAX}},
    };
    struct buf b;
    buf_init(&b, TELEMETRY_BODY_MAX);
    assert_int_equal(telemetry_body(&id, recs, 2, &b), 0);

    json_error_t err;
    json_t *j = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &err);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 4);
    assert_string_equal(json_string_value(json_object_get(j, "EC2InstanceId")), id.ec2_instance_id);
    assert_string_equal(json_string_value(json_object_get(j, "Hostname")), "host \"a\"\\b");
    assert_string_equal(json_string_value(json_object_get(j, "ResourceARN")), id.resource_arn);
    json_t *arr = json_object_get(j, "TelemetryRecords");
    assert_int_equal(json_array_size(arr), 2);
    check_record(json_array_get(arr, 0), &recs[0]);
    check_record(json_array_get(arr, 1), &recs[1]);
    json_decref(j);
    buf_free(&b);
}

static void test_telemetry_body_exact(void **state)
{
    (void)state;
    struct telemetry_identity id = {0}; /* all three empty: still written */
    struct telemetry_record r = {1700000000, 5, 4, 3, 2, {6, 7, 8, 9, 10, 11}};
    struct buf b;
    buf_init(&b, TELEMETRY_BODY_MAX);
    assert_int_equal(telemetry_body(&id, &r, 1, &b), 0);
    assert_string_equal(
        b.data,
        "{\"EC2InstanceId\":\"\",\"Hostname\":\"\",\"ResourceARN\":\"\",\"TelemetryRecords\":["
        "{\"Timestamp\":1700000000,\"SegmentsReceivedCount\":5,\"SegmentsSentCount\":4,"
        "\"SegmentsSpilloverCount\":3,\"SegmentsRejectedCount\":2,\"BackendConnectionErrors\":"
        "{\"HTTPCode4XXCount\":6,\"HTTPCode5XXCount\":7,\"TimeoutCount\":8,"
        "\"ConnectionRefusedCount\":9,\"UnknownHostCount\":10,\"OtherCount\":11}}]}");
    buf_free(&b);

    buf_init(&b, 40); /* over the buffer's maximum: an error, never a cut body */
    assert_int_equal(telemetry_body(&id, &r, 1, &b), XRAY_ETOOBIG);
    buf_free(&b);
}

/* ---- records and identity ---- */

static void test_telemetry_record_cut_deltas(void **state)
{
    (void)state;
    struct telemetry_snapshot prev = {10, 8, 1, 2, {0, 1, 2, 3, 4, 5}};
    struct telemetry_snapshot now = {25, 18, 1, 5, {3, 1, 4, 3, 9, 5}};
    struct telemetry_record r;
    telemetry_record_cut(&r, &prev, &now, 1234);
    assert_int_equal(r.timestamp_s, 1234);
    assert_int_equal(r.received, 15);
    assert_int_equal(r.sent, 10);
    assert_int_equal(r.spillover, 0);
    assert_int_equal(r.rejected, 3);
    const uint32_t backend[STATS_BACKEND__COUNT] = {3, 0, 2, 0, 5, 0};
    assert_memory_equal(r.backend, backend, sizeof(backend));

    now.received = 5;                         /* backwards: 0, never a huge unsigned wrap */
    now.sent = 8 + (uint64_t)INT32_MAX + 100; /* the API's counts are Integer */
    telemetry_record_cut(&r, &prev, &now, 1);
    assert_int_equal(r.received, 0);
    assert_int_equal(r.sent, INT32_MAX);

    /* A snapshot reads every counter of struct stats. */
    struct stats s;
    memset(&s, 0, sizeof(s));
    stats_add(&s.received, 7);
    stats_add(&s.sent, 6);
    stats_add(&s.spillover, 5);
    stats_reject(&s, STATS_REJECT_TOO_BIG);
    stats_add(&s.backend[STATS_BACKEND_UNKNOWN_HOST], 3);
    struct telemetry_snapshot snap;
    telemetry_snapshot_read(&snap, &s);
    assert_int_equal(snap.received, 7);
    assert_int_equal(snap.sent, 6);
    assert_int_equal(snap.spillover, 5);
    assert_int_equal(snap.rejected, 1);
    assert_int_equal(snap.backend[STATS_BACKEND_UNKNOWN_HOST], 3);
    assert_int_equal(snap.backend[STATS_BACKEND_4XX], 0);
}

static void test_telemetry_identity_from_env(void **state)
{
    (void)state;
    struct telemetry_identity id;
    setenv("AWS_HOSTNAME", "my-host", 1);
    setenv("AWS_INSTANCE_ID", "i-abc", 1);
    telemetry_identity_from_env(&id, "arn:aws:ecs:x", false);
    assert_string_equal(id.hostname, "my-host");
    assert_string_equal(id.ec2_instance_id, "i-abc");
    assert_string_equal(id.resource_arn, "arn:aws:ecs:x");

    /* Over the API's 20 characters: cut, not rejected by every call. */
    setenv("AWS_INSTANCE_ID", "i-0123456789abcdef0123456789", 1);
    telemetry_identity_from_env(&id, NULL, false);
    assert_string_equal(id.ec2_instance_id, "i-0123456789abcdef01");
    assert_string_equal(id.resource_arn, "");

    unsetenv("AWS_HOSTNAME");
    unsetenv("AWS_INSTANCE_ID");
    char host[TELEMETRY_HOSTNAME_MAX + 1] = "";
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    telemetry_identity_from_env(&id, "", false);
    assert_string_equal(id.hostname, host);
    assert_string_equal(id.ec2_instance_id, "");
}

/* A fake IMDSv2 (token, then hostname and instance-id) for the identity. */
static void imds_handler(struct fake_http *f, const struct fake_http_request *req,
                         struct fake_http_reply *rep)
{
    char token[64];
    (void)f;
    fake_http_header(req, "X-aws-ec2-metadata-token", token, sizeof(token));
    if (strcmp(req->method, "PUT") == 0 && strcmp(req->path, "/latest/api/token") == 0)
        snprintf(rep->body, sizeof(rep->body), "T0KEN");
    else if (strcmp(token, "T0KEN") != 0)
        rep->status = 401;
    else if (strcmp(req->path, "/latest/meta-data/hostname") == 0)
        snprintf(rep->body, sizeof(rep->body), "ip-10-1-2-3.ec2.internal");
    else if (strcmp(req->path, "/latest/meta-data/instance-id") == 0)
        snprintf(rep->body, sizeof(rep->body), "i-0fedcba9876543210");
    else
        rep->status = 404;
}

static void test_telemetry_identity_from_metadata(void **state)
{
    (void)state;
    static struct fake_http fake;
    fake_http_start(&fake, imds_handler, NULL);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", fake.port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    unsetenv("AWS_HOSTNAME");
    unsetenv("AWS_INSTANCE_ID");
    imds_startup_forget();
    struct telemetry_identity id;
    /* Local mode (-o): the metadata is never asked. */
    telemetry_identity_from_env(&id, NULL, false);
    assert_int_equal(fake_http_requests(&fake), 0);
    assert_string_equal(id.ec2_instance_id, "");
    telemetry_identity_from_env(&id, NULL, true);
    assert_string_equal(id.hostname, "ip-10-1-2-3.ec2.internal");
    assert_string_equal(id.ec2_instance_id, "i-0fedcba9876543210");
    /* AWS_HOSTNAME and AWS_INSTANCE_ID win over the metadata. */
    setenv("AWS_HOSTNAME", "from-env", 1);
    setenv("AWS_INSTANCE_ID", "i-env", 1);
    int before = fake_http_requests(&fake);
    telemetry_identity_from_env(&id, NULL, true);
    assert_string_equal(id.hostname, "from-env");
    assert_string_equal(id.ec2_instance_id, "i-env");
    assert_int_equal(fake_http_requests(&fake), before);
    unsetenv("AWS_HOSTNAME");
    unsetenv("AWS_INSTANCE_ID");
    fake_http_stop(&fake);
    /* No IMDS: the host name, and no instance id. */
    imds_startup_forget();
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
    char host[TELEMETRY_HOSTNAME_MAX + 1] = "";
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    telemetry_identity_from_env(&id, NULL, true);
    assert_string_equal(id.hostname, host);
    assert_string_equal(id.ec2_instance_id, "");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
}

/* ---- the call rules, ticked by hand ---- */

static void test_telemetry_tick_waits_for_first_datagram(void **state)
{
    struct env *e = *state;
    struct telemetry *t = env_create(e, FAR_MS);
    e->fake.mode = FAKE_HOLD;
    telemetry_tick(t, 1);
    stats_add(&e->stats.backend[STATS_BACKEND_TIMEOUT], 2);
    telemetry_tick(t, 2);
    assert_int_equal(telemetry_kept(t), 0);
    assert_int_equal(e->fake.calls, 0);

    stats_add(&e->stats.received, 1);
    telemetry_tick(t, 3);
    assert_int_equal(e->fake.calls, 1);
    json_t *j = fake_body_json(&e->fake);
    /* The first record holds what happened before the first datagram too. */
    struct telemetry_record want = {3, 1, 0, 0, 0, {0, 0, 2, 0, 0, 0}};
    json_t *arr = json_object_get(j, "TelemetryRecords");
    assert_int_equal(json_array_size(arr), 1);
    check_record(json_array_get(arr, 0), &want);
    json_decref(j);
}

static void test_telemetry_tick_ten_per_call(void **state)
{
    struct env *e = *state;
    struct telemetry *t = env_create(e, FAR_MS);
    e->fake.mode = FAKE_REFUSE;
    for (int i = 1; i <= 24; i++) {
        stats_add(&e->stats.received, 1);
        telemetry_tick(t, i);
    }
    assert_int_equal(telemetry_kept(t), 24);
    assert_int_equal(e->fake.refused, 24);

    e->fake.mode = FAKE_HOLD;
    stats_add(&e->stats.received, 1);
    telemetry_tick(t, 25);
    const size_t sizes[] = {10, 10, 5};
    const json_int_t firsts[] = {1, 11, 21};
    for (int c = 0; c < 3; c++) {
        assert_int_equal(e->fake.calls, c + 1);
        json_int_t first = 0;
        assert_int_equal(fake_last_records(&e->fake, &first), sizes[c]);
        assert_int_equal(first, firsts[c]);
        fake_answer(&e->fake, 200);
    }
    assert_int_equal(e->fake.calls, 3);
    assert_false(e->fake.pending);
    assert_int_equal(telemetry_kept(t), 0);
    assert_int_equal(e->fake.received_sum, 25);
}

static void test_telemetry_tick_keeps_thirty(void **state)
{
    struct env *e = *state;
    struct telemetry *t = env_create(e, FAR_MS);
    e->fake.mode = FAKE_HOLD;
    stats_add(&e->stats.received, 1);
    for (int i = 1; i <= 35; i++) {
        telemetry_tick(t, i);
        fake_answer(&e->fake, i % 2 ? 503 : 0); /* server error, transport error */
    }
    assert_int_equal(telemetry_kept(t), 30);
    assert_int_equal(telemetry_dropped(t), 5);

    telemetry_tick(t, 36); /* one more: 6 dropped, the oldest kept is 7 */
    assert_int_equal(telemetry_dropped(t), 6);
    json_int_t first = 0;
    assert_int_equal(fake_last_records(&e->fake, &first), 10);
    assert_int_equal(first, 7);
    for (int c = 0; c < 3; c++)
        fake_answer(&e->fake, 200);
    assert_int_equal(telemetry_kept(t), 0);
    assert_int_equal(e->fake.calls, 38);
}

static void test_telemetry_tick_drop_during_call(void **state)
{
    struct env *e = *state;
    struct telemetry *t = env_create(e, FAR_MS);
    e->fake.mode = FAKE_HOLD;
    stats_add(&e->stats.received, 1);
    telemetry_tick(t, 1); /* the call carries record 1 */
    for (int i = 2; i <= 31; i++)
        telemetry_tick(t, i); /* the 31st drops record 1 while it is in flight */
    assert_int_equal(telemetry_dropped(t), 1);
    assert_int_equal(telemetry_kept(t), 30);
    fake_answer(&e->fake, 200); /* removes nothing more: its record is gone already */
    assert_int_equal(telemetry_kept(t), 30);
    json_int_t first = 0;
    assert_int_equal(fake_last_records(&e->fake, &first), 10);
    assert_int_equal(first, 2);
}

static void test_telemetry_tick_kept_until_200(void **state)
{
    struct env *e = *state;
    struct telemetry *t = env_create(e, FAR_MS);
    e->fake.mode = FAKE_HOLD;
    stats_add(&e->stats.received, 1);
    telemetry_tick(t, 1);
    fake_answer(&e->fake, 500);
    assert_int_equal(telemetry_kept(t), 1);
    telemetry_tick(t, 2);
    fake_answer(&e->fake, 0);
    assert_int_equal(telemetry_kept(t), 2);
    telemetry_tick(t, 3);
    fake_answer(&e->fake, 400);
    assert_int_equal(telemetry_kept(t), 3);
    e->fake.mode = FAKE_REFUSE;
    telemetry_tick(t, 4);
    assert_int_equal(telemetry_kept(t), 4);

    e->fake.mode = FAKE_HOLD;
    telemetry_tick(t, 5);
    json_int_t first = 0;
    assert_int_equal(fake_last_records(&e->fake, &first), 5);
    assert_int_equal(first, 1);
    fake_answer(&e->fake, 200);
    assert_int_equal(telemetry_kept(t), 0);
    assert_false(e->fake.pending);
}

static void test_telemetry_tick_one_call_in_flight(void **state)
{
    struct env *e = *state;
    struct telemetry *t = env_create(e, FAR_MS);
    e->fake.mode = FAKE_HOLD;
    stats_add(&e->stats.received, 1);
    telemetry_tick(t, 1);
    for (int i = 2; i <= 4; i++)
        telemetry_tick(t, i); /* fake_send fails the test on a second call */
    assert_int_equal(e->fake.calls, 1);
    assert_int_equal(telemetry_kept(t), 4);
    fake_answer(&e->fake, 200);
    assert_int_equal(e->fake.calls, 2); /* the ones cut meanwhile go next */
    json_int_t first = 0;
    assert_int_equal(fake_last_records(&e->fake, &first), 3);
    assert_int_equal(first, 2);
    fake_answer(&e->fake, 200);
    assert_int_equal(telemetry_kept(t), 0);
}

/* ---- flush and close ---- */

static void test_telemetry_flush_sends_final_record(void **state)
{
    struct env *e = *state;
    struct telemetry *t = env_create(e, FAR_MS);
    e->fake.mode = FAKE_HOLD;
    stats_add(&e->stats.received, 5);
    telemetry_tick(t, 1);
    fake_answer(&e->fake, 200);

    stats_add(&e->stats.received, 3);
    stats_add(&e->stats.sent, 2);
    time_t before = time(NULL);
    telemetry_flush(t, env_on_flushed, e);
    assert_int_equal(e->flushed, 0); /* waits for the call */
    assert_int_equal(e->fake.calls, 2);
    json_t *j = fake_body_json(&e->fake);
    json_t *r = json_array_get(json_object_get(j, "TelemetryRecords"), 0);
    assert_int_equal(jint(r, "SegmentsReceivedCount"), 3);
    assert_int_equal(jint(r, "SegmentsSentCount"), 2);
    json_int_t ts = jint(r, "Timestamp");
    assert_true(ts >= before && ts <= time(NULL)); /* the wall clock, epoch seconds */
    json_decref(j);
    fake_answer(&e->fake, 200);
    assert_int_equal(e->flushed, 1);
    assert_int_equal(telemetry_kept(t), 0);
}

static void test_telemetry_flush_failure_and_call_in_flight(void **state)
{
    struct env *e = *state;
    struct telemetry *t = env_create(e, FAR_MS);
    e->fake.mode = FAKE_HOLD;
    stats_add(&e->stats.received, 1);
    telemetry_tick(t, 1); /* in flight when the flush starts */
    telemetry_flush(t, env_on_flushed, e);
    assert_int_equal(e->fake.calls, 1);
    fake_answer(&e->fake, 200); /* then the final record goes */
    assert_int_equal(e->fake.calls, 2);
    assert_int_equal(e->flushed, 0);
    fake_answer(&e->fake, 503);
    assert_int_equal(e->flushed, 1); /* a failure ends the flush, once */
    assert_int_equal(telemetry_kept(t), 1);
    telemetry_tick(t, 2); /* no further call would change the count of flushes */
    if (e->fake.pending)
        fake_answer(&e->fake, 503);
    assert_int_equal(e->flushed, 1);
}

static void test_telemetry_flush_without_sender(void **state)
{
    struct env *e = *state;
    e->t = telemetry_create(&e->loop, &e->stats, &e->id, NULL, FAR_MS);
    assert_non_null(e->t);
    stats_add(&e->stats.received, 1);
    telemetry_tick(e->t, 1);
    assert_int_equal(telemetry_kept(e->t), 0);
    telemetry_flush(e->t, env_on_flushed, e);
    assert_int_equal(e->flushed, 1);
    assert_int_equal(telemetry_kept(e->t), 0);
}

static void test_telemetry_close_with_call_in_flight(void **state)
{
    struct env *e = *state;
    struct telemetry *t = env_create(e, FAR_MS);
    e->fake.mode = FAKE_HOLD;
    stats_add(&e->stats.received, 1);
    telemetry_tick(t, 1);
    telemetry_flush(t, env_on_flushed, e);
    telemetry_close(t, env_on_closed, e); /* ends the flush; memory stays for the call */
    e->t = NULL;
    assert_int_equal(e->flushed, 1);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(e->closed, 1);
    assert_true(e->fake.pending);
    fake_answer(&e->fake, 200); /* frees the object, starts nothing */
    assert_int_equal(e->fake.calls, 1);
    assert_false(e->fake.pending);
}

/* ---- the timer on a real loop ---- */

static void timer_on_flushed(void *data)
{
    struct env *e = data;
    e->flushed++;
    telemetry_close(e->t, env_on_closed, e);
}

static void timer_on_check(uv_timer_t *check)
{
    struct env *e = check->data;
    stats_add(&e->stats.received, 1); /* traffic between the ticks */
    stats_add(&e->stats.sent, 1);
    if (e->fake.calls >= 3 && !e->flush_started) {
        uv_close((uv_handle_t *)check, NULL);
        e->flush_started = true;
        telemetry_flush(e->t, timer_on_flushed, e);
    }
}

static void test_telemetry_timer_cuts_records(void **state)
{
    struct env *e = *state;
    e->fake.mode = FAKE_LOOP;
    stats_add(&e->stats.received, 4); /* before create: not in any record */
    time_t start = time(NULL);
    env_create(e, 20);
    uv_ref((uv_handle_t *)&e->watchdog); /* here the loop runs until the test ends */
    assert_int_equal(uv_timer_start(&e->check, timer_on_check, 5, 7), 0);
    while (!e->closed)
        uv_run(&e->loop, UV_RUN_ONCE);
    e->t = NULL;
    assert_int_equal(e->flushed, 1);
    assert_true(e->fake.calls >= 4); /* three from the timer, the final one */
    assert_false(e->fake.pending);
    /* Every datagram after create is in exactly one record sent. */
    assert_int_equal(e->fake.received_sum, stats_get(&e->stats.received) - 4);
    json_int_t ts = 0;
    assert_true(fake_last_records(&e->fake, &ts) >= 1);
    assert_true(ts >= start && ts <= time(NULL));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_telemetry_body_fields),
        cmocka_unit_test(test_telemetry_body_exact),
        cmocka_unit_test(test_telemetry_record_cut_deltas),
        cmocka_unit_test(test_telemetry_identity_from_env),
        cmocka_unit_test(test_telemetry_identity_from_metadata),
        T(test_telemetry_tick_waits_for_first_datagram),
        T(test_telemetry_tick_ten_per_call),
        T(test_telemetry_tick_keeps_thirty),
        T(test_telemetry_tick_drop_during_call),
        T(test_telemetry_tick_kept_until_200),
        T(test_telemetry_tick_one_call_in_flight),
        T(test_telemetry_flush_sends_final_record),
        T(test_telemetry_flush_failure_and_call_in_flight),
        T(test_telemetry_flush_without_sender),
        T(test_telemetry_close_with_call_in_flight),
        T(test_telemetry_timer_cuts_records),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
