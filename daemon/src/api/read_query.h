/* SPDX-License-Identifier: Apache-2.0 */
/* The worker side of the X-Ray read API: parses one request body (jansson), runs the
 * query against the service graph or the embedded store and writes the whole answer,
 * in the shapes of service-graph.md and X-Ray's error shape. Pure: no threads, no
 * sockets, no clock (the caller gives now). Worker thread (it reads the graph and the
 * store), or any thread that owns them. */
#ifndef XRAYD_API_READ_QUERY_H
#define XRAYD_API_READ_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct graph;
struct store;

/* The largest answer: BatchGetTraces' five traces of READ_QUERY_TRACE_BYTES with their
 * framing. Every other answer is a page cut to fit under it. */
#define READ_QUERY_TRACE_BYTES (2u * 1024 * 1024) /* per trace; beyond, LimitExceeded */
#define READ_QUERY_MAX_BYTES   (5u * (READ_QUERY_TRACE_BYTES + 64u * 1024) + 64u * 1024)
#define READ_QUERY_BODY_MAX    (1u << 20) /* a request body; the HTTP server's default cap */
#define READ_QUERY_PAGE        100        /* services or summaries per page */
#define READ_QUERY_TRACES_MAX  5 /* X-Ray BatchGetTraces: "Exceeding maximum query size: 5" */
/* GetTraceGraph's trace ids per request (X-Ray states none; its retrieval lists stop
 * at 100), and the byte budget of the graph built for them. */
#define READ_QUERY_GRAPH_IDS_MAX 100
#define READ_QUERY_GRAPH_BYTES   (1u << 20)

enum read_query_kind {
    READ_QUERY_SERVICE_GRAPH = 0, /* POST /ServiceGraph: GetServiceGraph */
    READ_QUERY_TRACE_GRAPH,       /* POST /TraceGraph: GetTraceGraph */
    READ_QUERY_TRACES,            /* POST /Traces: BatchGetTraces */
    READ_QUERY_TRACE_SUMMARIES,   /* POST /TraceSummaries: GetTraceSummaries */
    READ_QUERY_KINDS
};

struct read_query_ctx {
    struct graph *graph; /* borrowed; NULL: the service graph is off */
    struct store *store; /* borrowed; NULL: the embedded store is off */
    double now_s;        /* wall clock, epoch seconds */
    size_t page_limit;   /* services or summaries per page; 0: READ_QUERY_PAGE */
};

/* Answers the len bytes of body (borrowed, untrusted) as a request of kind. out is
 * buf_init()ed by the caller, READ_QUERY_MAX_BYTES as its maximum in the daemon; it is
 * emptied, then holds the JSON answer, which never passes out->max: a page that would
 * is cut to fewer items (its NextToken says where the next page starts). Returns the
 * HTTP status: 200, 400 (invalid request; the message says why), 404 (the part the
 * query needs is off) or 500 (out of memory, or even one item does not fit); for any
 * but 200 out holds {"__type":...,"message":...}. */
int read_query_run(const struct read_query_ctx *c, enum read_query_kind kind, const char *body,
                   size_t len, struct buf *out);

/* The X-Ray error type of a status (the __type of the body and x-amzn-ErrorType):
 * 400 InvalidRequestException, 404 ResourceNotFoundException, 429 ThrottledException,
 * 503 ServiceUnavailableException, else InternalFailure. Static string. */
const char *read_query_error_type(int status);

/* Writes the error body of status with msg into out (emptied first) and returns
 * status. For the loop's own refusals (429, 503) too. */
int read_query_error(struct buf *out, int status, const char *msg);

#endif
