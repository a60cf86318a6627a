/* SPDX-License-Identifier: Apache-2.0 */
/* A push sink's FIFO of request bodies: one in flight at a time, in order; transient
 * failures retried with the upload's backoff policy (upstream/retry.c) for as long as
 * the byte bound lets later bodies wait, other 4xx dropped. Unlike uploads there is no
 * attempt budget: the bound decides what is given up, oldest first, so a receiver that
 * comes back gets the most recent bodies the bound could hold. */
#include "export/sink_queue.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_call.h"
#include "log.h"
#include "upstream/retry.h"
#include "util.h"

#define MOD "export"

struct sink_body {
    struct sink_body *next;
    size_t len;
    void *data; /* owned */
};

struct sink_queue {
    uv_loop_t *loop;
    uv_timer_t timer; /* the backoff before a retry */
    char name[32];
    sink_queue_send_fn send;
    void *send_ctx;
    size_t max_bytes;
    struct retry_policy policy;
    struct stats *stats;
    unsigned sink;
    uint64_t rng;

    struct sink_body *head, *tail; /* head is the one in flight or retrying */
    size_t count, bytes;
    bool in_flight;    /* head is sent: its callback has not run */
    bool waiting;      /* head waits for the timer */
    unsigned attempts; /* of the head */
    bool closing;
    bool timer_closed;
    void (*close_cb)(void *data);
    void *close_data;
};

/* xorshift64*: jitter needs spread, not secrecy. */
static uint32_t sink_queue_rand(struct sink_queue *q)
{
    q->rng ^= q->rng >> 12;
    q->rng ^= q->rng << 25;
    q->rng ^= q->rng >> 27;
    return (uint32_t)((q->rng * 2685821657736338717ull) >> 32);
}

static void sink_queue_drop_head(struct sink_queue *q)
{
    struct sink_body *b = q->head;
    q->head = b->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->count--;
    q->bytes -= b->len;
    q->attempts = 0;
    free(b->data);
    free(b);
}

static void sink_queue_count_drop(struct sink_queue *q)
{
    stats_add(&q->stats->sink_dropped[q->sink], 1);
}

static void sink_queue_maybe_free(struct sink_queue *q)
{
    if (!q->closing || q->in_flight || !q->timer_closed)
        return;
    while (q->head != NULL) {
        sink_queue_count_drop(q);
        sink_queue_drop_head(q);
    }
    void (*cb)(void *) = q->close_cb;
    void *data = q->close_data;
    free(q);
    if (cb != NULL)
        cb(data);
}

static void sink_queue_kick(struct sink_queue *q);

static void sink_queue_on_timer(uv_timer_t *t)
{
    struct sink_queue *q = container_of(t, struct sink_queue, timer);
    q->waiting = false;
    sink_queue_kick(q);
}

static void sink_queue_retry_later(struct sink_queue *q, int64_t retry_after_ms)
{
    uint64_t now = uv_now(q->loop);
    int64_t delay =
        retry_delay_ms(&q->policy, q->attempts, now, now, retry_after_ms, sink_queue_rand(q));
    if (delay < 0)
        delay = (int64_t)q->policy.backoff_max_ms;
    stats_add(&q->stats->sink_retries[q->sink], 1);
    q->waiting = true;
    uv_timer_start(&q->timer, sink_queue_on_timer, (uint64_t)delay, 0);
}

static void sink_queue_on_sent(const struct http_client_result *res, void *data)
{
    struct sink_queue *q = data;
    q->in_flight = false;
    int rc = aws_client_result_error(res);
    char why[XRAY_ERR_LEN];
    if (res->error == HTTP_CLIENT_OK && res->status >= 300)
        aws_client_error_describe(res->status, res->body, res->body_len, why, sizeof(why));
    else
        snprintf(why, sizeof(why), "%s",
                 res->message && *res->message ? res->message : xray_strerror(rc));
    enum retry_verdict v = retry_classify(rc, res->status, 1, RETRY_SPLIT_MAX);
    if (v == RETRY_DONE) {
        stats_add(&q->stats->sink_sent[q->sink], 1);
        sink_queue_drop_head(q);
    } else if (v == RETRY_AGAIN && !q->closing) {
        XLOG_EVERY(SINK_QUEUE_ERROR_LOG_EVERY_MS, LOG_LEVEL_WARN, MOD,
                   "%s: %s; retrying (%zu requests, %zu bytes waiting)", q->name, why, q->count,
                   q->bytes);
        sink_queue_retry_later(q, res->retry_after_ms);
        return;
    } else {
        if (v != RETRY_CLOSED)
            XLOG_EVERY(SINK_QUEUE_ERROR_LOG_EVERY_MS, LOG_LEVEL_ERROR, MOD,
                       "%s: %s: request dropped", q->name, why);
        sink_queue_count_drop(q);
        sink_queue_drop_head(q);
    }
    if (q->closing)
        sink_queue_maybe_free(q);
    else
        sink_queue_kick(q);
}

/* Sends the head when nothing is in flight or waiting. */
static void sink_queue_kick(struct sink_queue *q)
{
    while (q->head != NULL && !q->in_flight && !q->waiting && !q->closing) {
        q->attempts++;
        q->in_flight = true;
        int rc = q->send(q->send_ctx, q->head->data, q->head->len, sink_queue_on_sent, q);
        if (rc == 0)
            return;
        q->in_flight = false;
        if (retry_classify(rc, 0, 1, RETRY_SPLIT_MAX) == RETRY_AGAIN) {
            XLOG_EVERY(SINK_QUEUE_ERROR_LOG_EVERY_MS, LOG_LEVEL_WARN, MOD,
                       "%s: not sent: %s; retrying", q->name, xray_strerror(rc));
            sink_queue_retry_later(q, -1);
            return;
        }
        XLOG_EVERY(SINK_QUEUE_ERROR_LOG_EVERY_MS, LOG_LEVEL_ERROR, MOD,
                   "%s: not sent: %s: request dropped", q->name, xray_strerror(rc));
        sink_queue_count_drop(q);
        sink_queue_drop_head(q);
    }
}

struct sink_queue *sink_queue_create(const struct sink_queue_options *o)
{
    if (o == NULL || o->loop == NULL || o->send == NULL || o->stats == NULL ||
        o->sink >= STATS_SINK__COUNT)
        return NULL;
    struct sink_queue *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->loop = o->loop;
    snprintf(q->name, sizeof(q->name), "%s", o->name ? o->name : "sink");
    q->send = o->send;
    q->send_ctx = o->send_ctx;
    q->max_bytes = o->max_bytes ? o->max_bytes : SINK_QUEUE_DEFAULT_BYTES;
    struct retry_policy p = {
        .attempts = UINT_MAX,
        .budget_ms = UINT64_MAX / 4,
        .backoff_min_ms = o->backoff_min_ms ? o->backoff_min_ms : SINK_QUEUE_BACKOFF_MIN_MS,
        .backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : SINK_QUEUE_BACKOFF_MAX_MS,
    };
    q->policy = retry_policy_normalize(&p);
    q->stats = o->stats;
    q->sink = o->sink;
    q->rng = uv_hrtime() ^ ((uint64_t)(uintptr_t)q << 16) ^ 0x9e3779b97f4a7c15ull;
    if (uv_timer_init(q->loop, &q->timer) != 0) {
        free(q);
        return NULL;
    }
    return q;
}

int sink_queue_push(struct sink_queue *q, void *body, size_t len)
{
    if (q->closing || len > q->max_bytes) {
        free(body);
        sink_queue_count_drop(q);
        XLOG_EVERY(SINK_QUEUE_ERROR_LOG_EVERY_MS, LOG_LEVEL_WARN, MOD,
                   "%s: a %zu-byte request %s: dropped", q->name, len,
                   q->closing ? "came while closing" : "is larger than the queue");
        return q->closing ? XRAY_ECLOSED : XRAY_ETOOBIG;
    }
    struct sink_body *b = malloc(sizeof(*b));
    if (b == NULL) {
        free(body);
        sink_queue_count_drop(q);
        return -ENOMEM;
    }
    *b = (struct sink_body){.len = len, .data = body};
    /* Room first: the oldest bodies not in flight go. The head may be in flight (its
     * bytes stay until its answer) or waiting to retry (it goes like any other). */
    while (q->head != NULL && q->bytes + len > q->max_bytes) {
        if (q->in_flight) {
            struct sink_body *second = q->head->next;
            if (second == NULL)
                break;
            q->head->next = second->next;
            if (q->tail == second)
                q->tail = q->head;
            q->count--;
            q->bytes -= second->len;
            free(second->data);
            free(second);
        } else {
            if (q->waiting) {
                uv_timer_stop(&q->timer);
                q->waiting = false;
            }
            sink_queue_drop_head(q);
        }
        sink_queue_count_drop(q);
        XLOG_EVERY(SINK_QUEUE_ERROR_LOG_EVERY_MS, LOG_LEVEL_WARN, MOD,
                   "%s: queue full (%zu bytes): oldest request dropped", q->name, q->max_bytes);
    }
    if (q->tail != NULL)
        q->tail->next = b;
    else
        q->head = b;
    q->tail = b;
    q->count++;
    q->bytes += len;
    sink_queue_kick(q);
    return 0;
}

size_t sink_queue_length(const struct sink_queue *q)
{
    return q->count;
}

size_t sink_queue_bytes(const struct sink_queue *q)
{
    return q->bytes;
}

static void sink_queue_on_timer_closed(uv_handle_t *h)
{
    struct sink_queue *q = container_of((uv_timer_t *)h, struct sink_queue, timer);
    q->timer_closed = true;
    sink_queue_maybe_free(q);
}

void sink_queue_close(struct sink_queue *q, void (*cb)(void *data), void *data)
{
    q->closing = true;
    q->waiting = false;
    q->close_cb = cb;
    q->close_data = data;
    uv_close((uv_handle_t *)&q->timer, sink_queue_on_timer_closed);
}
