/* SPDX-License-Identifier: Apache-2.0 */
/* The read API's loop side: each request becomes a job that carries a copy of its body
 * to the worker, which answers it with read_query_run() against the graph and the
 * store it owns; the loop only sends the answer. Bounded: at most READ_API_MAX_JOBS
 * queries are out at once, since each holds its body and an answer of up to
 * READ_QUERY_MAX_BYTES outside the HTTP server's budget until it is sent (4 x 10.4 MiB
 * at worst); past that the client is told to slow down (429, which the AWS SDKs
 * retry). */
#include "api/read_api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/read_query.h"
#include "buf.h"
#include "http/server.h"
#include "log.h"
#include "pipeline.h"
#include "util.h"
#include "worker.h"

#define READ_API_MAX_JOBS  8
#define READ_API_LOG_EVERY 10000 /* ms between repeated refusal logs */
#define READ_API_ERROR_MAX 1024  /* an error body written on the loop */

struct read_api;

struct read_api_route {
    struct read_api *api;
    enum read_query_kind kind;
};

struct read_api {
    struct worker *worker;
    size_t jobs;      /* posted, done() not yet called */
    uint64_t refused; /* requests answered 429 or 503 without a query */
    struct read_api_route routes[READ_QUERY_KINDS];
};

struct read_api_job {
    struct worker_job job;
    struct read_api *api;
    struct http_response *res;
    enum read_query_kind kind;
    int status;
    struct buf out;
    size_t len;
    char body[]; /* the request body, copied */
};

static const char *const read_api_paths[READ_QUERY_KINDS] = {
    [READ_QUERY_SERVICE_GRAPH] = "/ServiceGraph",
    [READ_QUERY_TRACE_GRAPH] = "/TraceGraph",
    [READ_QUERY_TRACES] = "/Traces",
    [READ_QUERY_TRACE_SUMMARIES] = "/TraceSummaries",
};

static void read_api_send(struct http_response *res, int status, const struct buf *out)
{
    if (status != 200)
        http_response_header(res, "x-amzn-ErrorType", read_query_error_type(status));
    if (out->len > 0)
        http_response_send(res, status, "application/json", out->data, out->len);
    else
        http_response_send(res, status, NULL, NULL, 0);
}

/* An answer decided on the loop, without the worker. */
static void read_api_refuse(struct read_api *api, struct http_response *res, int status,
                            const char *msg)
{
    struct buf b;
    buf_init(&b, READ_API_ERROR_MAX);
    api->refused++;
    XLOG_EVERY(READ_API_LOG_EVERY, LOG_LEVEL_WARN, "read_api", "query refused (%d): %s", status,
               msg);
    read_api_send(res, read_query_error(&b, status, msg), &b);
    buf_free(&b);
}

static double read_api_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Worker thread: the pipeline is the worker's process_ctx. */
static void read_api_run(struct worker_job *job, void *process_ctx)
{
    struct read_api_job *j = container_of(job, struct read_api_job, job);
    struct pipeline *p = process_ctx;
    struct read_query_ctx c = {
        .graph = pipeline_graph(p),
        .store = pipeline_store(p),
        .now_s = read_api_now_s(),
    };
    j->status = read_query_run(&c, j->kind, j->body, j->len, &j->out);
}

/* Loop thread, after run(). */
static void read_api_done(struct worker_job *job)
{
    struct read_api_job *j = container_of(job, struct read_api_job, job);
    read_api_send(j->res, j->status, &j->out);
    j->api->jobs--;
    buf_free(&j->out);
    free(j);
}

static void read_api_handle(struct http_request *req, struct http_response *res, void *data)
{
    struct read_api_route *route = data;
    struct read_api *api = route->api;
    if (api->jobs >= READ_API_MAX_JOBS) {
        read_api_refuse(api, res, 429, "Too many read API queries at once; retry later");
        return;
    }
    struct read_api_job *j = malloc(sizeof(*j) + req->body_len + 1);
    if (j == NULL) {
        read_api_refuse(api, res, 503, "Out of memory");
        return;
    }
    memset(j, 0, sizeof(*j));
    j->job.run = read_api_run;
    j->job.done = read_api_done;
    j->api = api;
    j->res = res;
    j->kind = route->kind;
    j->len = req->body_len;
    if (req->body_len > 0)
        memcpy(j->body, req->body, req->body_len);
    j->body[j->len] = '\0';
    buf_init(&j->out, READ_QUERY_MAX_BYTES);
    if (!worker_post(api->worker, &j->job)) {
        free(j);
        read_api_refuse(api, res, 503, "xrayd is shutting down");
        return;
    }
    api->jobs++;
}

int read_api_register(struct http_server *s, struct worker *w)
{
    struct read_api *api = http_server_alloc(s, sizeof(*api));
    if (api == NULL)
        return -ENOMEM;
    api->worker = w;
    for (int k = 0; k < READ_QUERY_KINDS; k++) {
        api->routes[k] = (struct read_api_route){api, (enum read_query_kind)k};
        int rc = http_server_route(s, HTTP_ROLE_API, "POST", read_api_paths[k], read_api_handle,
                                   &api->routes[k]);
        if (rc != 0)
            return rc;
    }
    return 0;
}
