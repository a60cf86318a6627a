/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus remote write 1.0 (metrics-sinks.md): each snapshot becomes one
 * snappy-compressed WriteRequest (metrics/remote_write.c), encoded on the worker and
 * queued on the loop (sink_queue.c) to POST to the configured URL with the protocol's
 * headers and, when configured, basic auth, a bearer token or SigV4 (service "aps",
 * for Amazon Managed Prometheus). Series that expired get their stale markers. */
#ifndef XRAYD_EXPORT_REMOTE_WRITE_SINK_H
#define XRAYD_EXPORT_REMOTE_WRITE_SINK_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "error.h"
#include "export/exporter.h"
#include "stats.h"

#define REMOTE_WRITE_SINK_INTERVAL_MS 15000u      /* default push interval */
#define REMOTE_WRITE_SINK_BODY_MAX    (16u << 20) /* one WriteRequest, compressed */

struct http_client;
struct aws_client;

struct remote_write_sink_options {
    uv_loop_t *loop;
    struct http_client *http; /* borrowed; used when aws is NULL */
    struct aws_client *aws;   /* borrowed; non-NULL: every request signed by it (aps) */
    const char *url;          /* copied; http(s)://host[:port]/path. With aws: what follows
                                 the client's endpoint in it (the endpoint must begin it)
                                 is sent to that endpoint */
    const char *username;     /* copied; with password: basic auth */
    const char *password;     /* copied; never logged */
    const char *bearer_token; /* copied; never logged */
    const char *user_agent;   /* copied; NULL: "xrayd/<version>" */
    size_t queue_bytes;       /* 0: SINK_QUEUE_DEFAULT_BYTES */
    struct stats *stats;      /* borrowed */
};

struct remote_write_sink;

/* NULL on a bad option (err says which: a URL that is not http(s), basic auth with a
 * bearer token, ...) or ENOMEM. */
struct remote_write_sink *remote_write_sink_create(const struct remote_write_sink_options *o,
                                                   char err[XRAY_ERR_LEN]);

/* Its exporter hooks (sink = the remote_write_sink). */
extern const struct exporter_sink_ops remote_write_sink_ops;

/* Bodies (requests) waiting or in flight. Loop thread. */
size_t remote_write_sink_queued(const struct remote_write_sink *s);

/* Closes its queue, frees s, then calls cb (may be NULL). Loop thread. */
void remote_write_sink_close(struct remote_write_sink *s, void (*cb)(void *data), void *data);

#endif
