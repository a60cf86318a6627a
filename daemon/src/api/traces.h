/* SPDX-License-Identifier: Apache-2.0 */
/* The X-Ray read API served from the embedded store: BatchGetTraces (POST /Traces) on
 * the API role, in the exact shape the AWS API returns, so `aws xray batch-get-traces
 * --endpoint-url http://127.0.0.1:2000` works with no cloud. Loop thread only. */
#ifndef XRAYD_API_TRACES_H
#define XRAYD_API_TRACES_H

struct http_server;
struct store;

#define TRACES_MAX_IDS         5 /* X-Ray BatchGetTraces: "Exceeding maximum query size: 5" */
#define TRACES_MAX_TRACE_BYTES (2u * 1024 * 1024) /* per trace; beyond, LimitExceeded */

/* Adds POST /Traces on HTTP_ROLE_API. st is borrowed and must outlive the server.
 * 0 or the error of http_server_route(). */
int traces_register(struct http_server *s, struct store *st);

#endif
