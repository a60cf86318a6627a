/* SPDX-License-Identifier: Apache-2.0 */
/* The X-Ray read API on the API address: POST /ServiceGraph, /TraceGraph, /Traces and
 * /TraceSummaries in the exact shapes of service-graph.md, so `aws xray
 * get-service-graph|get-trace-graph|batch-get-traces|get-trace-summaries --endpoint-url
 * http://127.0.0.1:2000 --no-sign-request` works with no cloud. The loop copies each
 * request into a job for the worker, which owns the graph and the store, parses and
 * answers it there and hands back an immutable body, capped in size; the loop only
 * sends it. */
#ifndef XRAYD_API_READ_API_H
#define XRAYD_API_READ_API_H

struct http_server;
struct worker;

/* Adds the four routes on HTTP_ROLE_API. Queries run on w's thread against its
 * pipeline (w->process_ctx); w must outlive the server. 0 or the error of
 * http_server_route(). Loop thread. */
int read_api_register(struct http_server *s, struct worker *w);

#endif
