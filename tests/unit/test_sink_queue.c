/* SPDX-License-Identifier: Apache-2.0 */
/* The push sinks' request queue: order, retries of 5xx/429/transport failures, drops
 * of other 4xx, the byte bound (oldest first), and closing with a request in flight.
 * The transport is the test: it records each send and answers when told. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "export/sink_queue.h"

#define SENT_MAX 64

struct transport {
    uv_loop_t *loop;
    char sent[SENT_MAX][16]; /* bodies in the order they were sent */
    int nsent;
    void (*cb)(const struct http_client_result *res, void *data); /* the one in flight */
    void *data;
    int refuse; /* send() returns this instead of 0 */
};

static int transport_send(void *ctx, const void *body, size_t len,
                          void (*cb)(const struct http_client_result *res, void *data), void *data)
{
    struct transport *t = ctx;
    if (t->refuse != 0)
        return t->refuse;
    assert_null(t->cb); /* one at a time */
    assert_true(t->nsent < SENT_MAX);
    snprintf(t->sent[t->nsent++], sizeof(t->sent[0]), "%.*s", (int)len, (const char *)body);
    t->cb = cb;
    t->data = data;
    return 0;
}

/* Answers the request in flight with status (0: no response, refused). */
static void answer(struct transport *t, int status, int64_t retry_after_ms)
{
    assert_non_null(t->cb);
    struct http_client_result res = {
        .error = status ? HTTP_CLIENT_OK : HTTP_CLIENT_REFUSED,
        .status = status,
        .body = "",
        .retry_after_ms = retry_after_ms,
        .message = "",
    };
    void (*cb)(const struct http_client_result *, void *) = t->cb;
    t->cb = NULL;
    cb(&res, t->data);
}

static void push(struct sink_queue *q, const char *text)
{
    assert_int_equal(sink_queue_push(q, strdup(text), strlen(text)), 0);
}

/* Runs the loop until the queue's backoff timer fired (a send happened) or ms passed. */
static void run_for(uv_loop_t *loop, uint64_t ms)
{
    uint64_t end = uv_now(loop) + ms;
    while (uv_now(loop) < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        uv_sleep(1);
        uv_update_time(loop);
    }
}

struct fixture {
    uv_loop_t loop;
    struct stats stats;
    struct transport t;
    struct sink_queue *q;
};

static void setup_queue(struct fixture *f, size_t max_bytes)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->t.loop = &f->loop;
    struct sink_queue_options o = {
        .loop = &f->loop,
        .name = "test",
        .send = transport_send,
        .send_ctx = &f->t,
        .max_bytes = max_bytes,
        .backoff_min_ms = 5,
        .backoff_max_ms = 20,
        .stats = &f->stats,
        .sink = STATS_SINK_REMOTE_WRITE,
    };
    f->q = sink_queue_create(&o);
    assert_non_null(f->q);
}

static void closed(void *data)
{
    (*(int *)data)++;
}

static void teardown_queue(struct fixture *f)
{
    int n = 0;
    sink_queue_close(f->q, closed, &n);
    if (f->t.cb != NULL) /* the HTTP client's close cancels what is in flight */
        answer(&f->t, 0, -1);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(n, 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static uint64_t sent(struct fixture *f)
{
    return stats_get(&f->stats.sink_sent[STATS_SINK_REMOTE_WRITE]);
}
static uint64_t dropped(struct fixture *f)
{
    return stats_get(&f->stats.sink_dropped[STATS_SINK_REMOTE_WRITE]);
}
static uint64_t retries(struct fixture *f)
{
    return stats_get(&f->stats.sink_retries[STATS_SINK_REMOTE_WRITE]);
}

static void test_sink_queue_in_order_one_at_a_time(void **state)
{
    (void)state;
    struct fixture f;
    setup_queue(&f, 0);
    push(f.q, "a");
    push(f.q, "b");
    push(f.q, "c");
    assert_int_equal(f.t.nsent, 1); /* b and c wait for a */
    assert_int_equal(sink_queue_length(f.q), 3);
    assert_int_equal(sink_queue_bytes(f.q), 3);
    answer(&f.t, 200, -1);
    answer(&f.t, 204, -1);
    answer(&f.t, 200, -1);
    assert_int_equal(f.t.nsent, 3);
    assert_string_equal(f.t.sent[0], "a");
    assert_string_equal(f.t.sent[1], "b");
    assert_string_equal(f.t.sent[2], "c");
    assert_int_equal(sent(&f), 3);
    assert_int_equal(sink_queue_length(f.q), 0);
    teardown_queue(&f);
}

static void test_sink_queue_retries_5xx_429_and_transport(void **state)
{
    (void)state;
    struct fixture f;
    setup_queue(&f, 0);
    push(f.q, "a");
    push(f.q, "b");
    answer(&f.t, 503, -1);
    assert_null(f.t.cb); /* waiting for the backoff, b not sent before a */
    run_for(&f.loop, 60);
    answer(&f.t, 429, -1);
    run_for(&f.loop, 60);
    answer(&f.t, 0, -1); /* refused: the receiver is down */
    run_for(&f.loop, 60);
    answer(&f.t, 200, -1);
    answer(&f.t, 200, -1);
    assert_int_equal(f.t.nsent, 5);
    for (int i = 0; i < 4; i++)
        assert_string_equal(f.t.sent[i], "a");
    assert_string_equal(f.t.sent[4], "b");
    assert_int_equal(retries(&f), 3);
    assert_int_equal(sent(&f), 2);
    assert_int_equal(dropped(&f), 0);
    teardown_queue(&f);
}

static void test_sink_queue_retry_after_honoured(void **state)
{
    (void)state;
    struct fixture f;
    setup_queue(&f, 0);
    push(f.q, "a");
    answer(&f.t, 503, 150);
    run_for(&f.loop, 60); /* the backoff alone would have resent by now */
    assert_int_equal(f.t.nsent, 1);
    run_for(&f.loop, 200);
    assert_int_equal(f.t.nsent, 2);
    answer(&f.t, 200, -1);
    teardown_queue(&f);
}

static void test_sink_queue_drops_other_4xx(void **state)
{
    (void)state;
    struct fixture f;
    setup_queue(&f, 0);
    push(f.q, "bad");
    push(f.q, "good");
    answer(&f.t, 400, -1);
    answer(&f.t, 200, -1);
    assert_int_equal(f.t.nsent, 2);
    assert_string_equal(f.t.sent[1], "good");
    assert_int_equal(dropped(&f), 1);
    assert_int_equal(sent(&f), 1);
    assert_int_equal(retries(&f), 0);
    teardown_queue(&f);
}

static void test_sink_queue_bound_drops_oldest(void **state)
{
    (void)state;
    struct fixture f;
    setup_queue(&f, 8); /* bytes */
    push(f.q, "aaaa");  /* in flight: stays until answered */
    push(f.q, "bb");
    push(f.q, "cc"); /* 8 bytes */
    push(f.q, "dd"); /* b goes */
    assert_int_equal(dropped(&f), 1);
    assert_int_equal(sink_queue_bytes(f.q), 8);
    /* Larger than the whole bound: refused at once. */
    assert_int_equal(sink_queue_push(f.q, strdup("123456789"), 9), XRAY_ETOOBIG);
    assert_int_equal(dropped(&f), 2);
    answer(&f.t, 200, -1);
    answer(&f.t, 200, -1);
    answer(&f.t, 200, -1);
    assert_string_equal(f.t.sent[1], "cc");
    assert_string_equal(f.t.sent[2], "dd");
    assert_int_equal(sent(&f), 3);
    teardown_queue(&f);
}

static void test_sink_queue_bound_drops_a_retrying_head(void **state)
{
    (void)state;
    struct fixture f;
    setup_queue(&f, 4);
    push(f.q, "aa");
    answer(&f.t, 500, -1); /* a waits to retry */
    push(f.q, "bb");
    push(f.q, "cc"); /* a, waiting and not in flight, is the oldest: it goes */
    assert_int_equal(dropped(&f), 1);
    run_for(&f.loop, 60);
    answer(&f.t, 200, -1);
    answer(&f.t, 200, -1);
    assert_string_equal(f.t.sent[1], "bb");
    assert_string_equal(f.t.sent[2], "cc");
    teardown_queue(&f);
}

static void test_sink_queue_send_refused(void **state)
{
    (void)state;
    struct fixture f;
    setup_queue(&f, 0);
    f.t.refuse = -EINVAL; /* final: dropped */
    push(f.q, "a");
    assert_int_equal(dropped(&f), 1);
    f.t.refuse = XRAY_EFULL; /* transient: retried later */
    push(f.q, "b");
    assert_int_equal(retries(&f), 1);
    f.t.refuse = 0;
    run_for(&f.loop, 60);
    answer(&f.t, 200, -1);
    assert_int_equal(sent(&f), 1);
    teardown_queue(&f);
}

static void test_sink_queue_close_drops_what_waits(void **state)
{
    (void)state;
    struct fixture f;
    setup_queue(&f, 0);
    push(f.q, "a");
    push(f.q, "b");
    push(f.q, "c");
    teardown_queue(&f); /* a canceled in flight, b and c dropped */
    assert_int_equal(dropped(&f), 3);
    assert_int_equal(sent(&f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sink_queue_in_order_one_at_a_time),
        cmocka_unit_test(test_sink_queue_retries_5xx_429_and_transport),
        cmocka_unit_test(test_sink_queue_retry_after_honoured),
        cmocka_unit_test(test_sink_queue_drops_other_4xx),
        cmocka_unit_test(test_sink_queue_bound_drops_oldest),
        cmocka_unit_test(test_sink_queue_bound_drops_a_retrying_head),
        cmocka_unit_test(test_sink_queue_send_refused),
        cmocka_unit_test(test_sink_queue_close_drops_what_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
