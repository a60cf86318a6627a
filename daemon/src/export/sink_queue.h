/* SPDX-License-Identifier: Apache-2.0 */
/* A push sink's outgoing requests (remote write, CloudWatch): a FIFO of request bodies
 * sent one at a time and in order (remote write wants each series' samples in
 * timestamp order). Transport failures, 5xx and 429 are retried with backoff
 * (Retry-After honoured) while later bodies wait; any other 4xx drops the body with a
 * log line. Bounded in bytes: past the bound the oldest waiting bodies are dropped.
 * Everything dropped, sent and retried is counted in stats (sink_*). Loop thread. */
#ifndef XRAYD_EXPORT_SINK_QUEUE_H
#define XRAYD_EXPORT_SINK_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "http/client.h"
#include "stats.h"

#define SINK_QUEUE_DEFAULT_BYTES      (8u << 20) /* 8 MiB of bodies waiting */
#define SINK_QUEUE_BACKOFF_MIN_MS     500u
#define SINK_QUEUE_BACKOFF_MAX_MS     30000u
#define SINK_QUEUE_ERROR_LOG_EVERY_MS 60000u

/* Sends one body; the sink's transport (a plain POST, or a SigV4-signed AWS call, or
 * several calls such as creating a missing log group first). Same contract as
 * aws_client_call(): 0 and cb runs exactly once later, or an error and cb never runs.
 * body is borrowed until cb runs. */
typedef int (*sink_queue_send_fn)(void *ctx, const void *body, size_t len,
                                  void (*cb)(const struct http_client_result *res, void *data),
                                  void *data);

struct sink_queue_options {
    uv_loop_t *loop;
    const char *name; /* for logs: "remote write" (copied) */
    sink_queue_send_fn send;
    void *send_ctx;
    size_t max_bytes;        /* 0: SINK_QUEUE_DEFAULT_BYTES */
    uint64_t backoff_min_ms; /* 0: SINK_QUEUE_BACKOFF_MIN_MS */
    uint64_t backoff_max_ms; /* 0: SINK_QUEUE_BACKOFF_MAX_MS */
    struct stats *stats;     /* borrowed: sink_sent/_retries/_dropped[sink] */
    unsigned sink;           /* enum stats_sink */
};

struct sink_queue;

/* NULL on ENOMEM or a bad option. */
struct sink_queue *sink_queue_create(const struct sink_queue_options *o);

/* Takes ownership of body (malloc'ed; freed by the queue) and queues it; starts
 * sending when nothing is in flight. Past max_bytes the oldest bodies not in flight
 * are dropped (counted) to make room; a body larger than max_bytes on its own is
 * dropped at once. 0, XRAY_ECLOSED (closing) or XRAY_ETOOBIG: the body is freed and
 * counted as dropped either way. */
int sink_queue_push(struct sink_queue *q, void *body, size_t len);

/* Bodies and bytes waiting or in flight. */
size_t sink_queue_length(const struct sink_queue *q);
size_t sink_queue_bytes(const struct sink_queue *q);

/* Drops what waits (counted) and stops retrying; a body in flight finishes or is
 * canceled by the HTTP client's close. Frees q when nothing is in flight and its timer
 * is closed, then calls cb (may be NULL). */
void sink_queue_close(struct sink_queue *q, void (*cb)(void *data), void *data);

#endif
