/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics push sinks as configured (docs/metrics.md): remote write and CloudWatch,
 * each a sink with its exporter, built from the config and torn down in order (the
 * exporter first, since its job on the worker may still encode into the sink). Loop
 * thread. */
#ifndef XRAYD_EXPORT_PUSH_H
#define XRAYD_EXPORT_PUSH_H

#include <stdbool.h>

#include <uv.h>

#include "error.h"
#include "stats.h"

struct config;
struct credentials_chain;
struct http_client;
struct worker;

struct push_options {
    uv_loop_t *loop;
    struct worker *worker; /* borrowed; running, its process_ctx the pipeline */
    struct stats *stats;   /* borrowed */
    const struct config *cfg;
    struct http_client *http;        /* borrowed; NULL when no sink needs one */
    struct credentials_chain *creds; /* borrowed; NULL without AWS credentials */
    const char *region;              /* the daemon's region; "" when none */
    const char *user_agent;
};

/* Whether cfg turns on a sink that needs an HTTP client, and one that needs AWS
 * credentials (CloudWatch, remote write with SigV4). */
bool push_needs_http(const struct config *cfg);
bool push_needs_aws(const struct config *cfg);

struct push;

/* Starts the configured sinks; *out is NULL when none is. 0, XRAY_ECONFIG (err says
 * which setting: a missing region, an unreadable password file, ...) or -ENOMEM. */
int push_start(struct push **out, const struct push_options *o, char err[XRAY_ERR_LEN]);

/* One last export of each sink, before the worker closes at shutdown. */
void push_flush(struct push *p);

/* Calls cb (once) when no export is on the worker and every sink's queue is empty:
 * shutdown waits for the last interval to be sent. A receiver that is away keeps it
 * waiting: the caller bounds the wait (the shutdown deadline). */
#define PUSH_DRAIN_POLL_MS 20
void push_drain(struct push *p, void (*cb)(void *data), void *data);

/* Publishes the sinks' queue depths into stats->queue_depth[]. */
void push_publish(struct push *p);

/* Closes exporters then sinks, frees p, then calls cb (may be NULL). */
void push_close(struct push *p, void (*cb)(void *data), void *data);

#endif
