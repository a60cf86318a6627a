/* SPDX-License-Identifier: Apache-2.0 */
/* GET /metrics on the metrics address: the Prometheus scrape (metrics-sinks.md). The
 * body is written on the worker, which owns the registry; the loop only sends it. */
#ifndef XRAYD_API_METRICS_ROUTE_H
#define XRAYD_API_METRICS_ROUTE_H

#include <stdbool.h>

#include "buf.h"

#define METRICS_ROUTE_MAX_JOBS  4           /* scrapes out at once; past it 429 */
#define METRICS_ROUTE_MAX_BYTES (64u << 20) /* a body larger than this answers 500 */

struct http_server;
struct worker;
struct pipeline;

/* Adds the route (HTTP_ROLE_METRICS), answered through w (borrowed, whose process_ctx
 * is the pipeline). 0, -ENOMEM or -ENOSPC. Loop thread. */
int metrics_route_register(struct http_server *s, struct worker *w);

/* The scrape body of p's registry, appended to out: the text format, or OpenMetrics.
 * 0, -ENOENT (no registry), -ENOSPC or -ENOMEM. Worker thread (a worker_job's run()). */
int metrics_route_write(struct pipeline *p, bool openmetrics, struct buf *out);

#endif
