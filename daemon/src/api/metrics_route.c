/* SPDX-License-Identifier: Apache-2.0 */
/* The /metrics route's two halves: the loop turns a scrape into a job; the worker
 * brings the daemon's counters up to date, snapshots the registry and writes the
 * exposition; the loop sends it. Bounded: METRICS_ROUTE_MAX_JOBS scrapes at once, each
 * body at most METRICS_ROUTE_MAX_BYTES. */
#include "api/metrics_route.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http/request.h"
#include "http/server.h"
#include "log.h"
#include "metrics/prometheus.h"
#include "metrics/registry.h"
#include "pipeline.h"
#include "util.h"
#include "worker.h"

#define METRICS_ROUTE_LOG_EVERY 10000 /* ms between repeated failure logs */

struct metrics_route {
    struct worker *worker;
    size_t jobs; /* posted, done() not yet called */
};

struct metrics_route_job {
    struct worker_job job;
    struct metrics_route *route;
    struct http_response *res;
    bool openmetrics;
    int rc;
    struct buf out;
};

int metrics_route_write(struct pipeline *p, bool openmetrics, struct buf *out)
{
    int rc;
    struct registry_snapshot *snap = pipeline_metrics_snapshot(p, false, &rc);
    if (snap == NULL)
        return rc;
    rc = prometheus_write(snap, openmetrics, out);
    registry_snapshot_free(snap);
    return rc;
}

/* Worker thread: the pipeline is the worker's process_ctx. */
static void metrics_route_run(struct worker_job *job, void *process_ctx)
{
    struct metrics_route_job *j = container_of(job, struct metrics_route_job, job);
    j->rc = metrics_route_write(process_ctx, j->openmetrics, &j->out);
}

static void metrics_route_fail(struct http_response *res, int status, const char *msg)
{
    http_response_send(res, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* Loop thread, after run(). */
static void metrics_route_done(struct worker_job *job)
{
    struct metrics_route_job *j = container_of(job, struct metrics_route_job, job);
    if (j->rc == 0) {
        const char *type = j->openmetrics ? PROMETHEUS_OPENMETRICS_TYPE : PROMETHEUS_TEXT_TYPE;
        http_response_send(j->res, 200, type, j->out.data, j->out.len);
    } else {
        XLOG_EVERY(METRICS_ROUTE_LOG_EVERY, LOG_LEVEL_WARN, "metrics", "scrape failed: %s",
                   xray_strerror(j->rc));
        metrics_route_fail(j->res, j->rc == -ENOENT ? 503 : 500, "metrics unavailable\n");
    }
    j->route->jobs--;
    buf_free(&j->out);
    free(j);
}

static void metrics_route_get(struct http_request *req, struct http_response *res, void *data)
{
    struct metrics_route *route = data;
    if (route->jobs >= METRICS_ROUTE_MAX_JOBS) {
        metrics_route_fail(res, 429, "too many scrapes at once\n");
        return;
    }
    struct metrics_route_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        metrics_route_fail(res, 503, "out of memory\n");
        return;
    }
    const char *accept = http_request_header(req, "accept");
    j->job.run = metrics_route_run;
    j->job.done = metrics_route_done;
    j->route = route;
    j->res = res;
    j->openmetrics = accept != NULL && prometheus_wants_openmetrics(accept, strlen(accept));
    buf_init(&j->out, METRICS_ROUTE_MAX_BYTES);
    if (!worker_post(route->worker, &j->job)) {
        free(j);
        metrics_route_fail(res, 503, "xrayd is shutting down\n");
        return;
    }
    route->jobs++;
}

int metrics_route_register(struct http_server *s, struct worker *w)
{
    struct metrics_route *route = http_server_alloc(s, sizeof(*route));
    if (route == NULL)
        return -ENOMEM;
    route->worker = w;
    return http_server_route(s, HTTP_ROLE_METRICS, "GET", "/metrics", metrics_route_get, route);
}
