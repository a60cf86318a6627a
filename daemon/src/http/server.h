/* SPDX-License-Identifier: Apache-2.0 */
/* The inbound HTTP/1.1 server: listeners with roles (the -t sampling address, the read
 * API, /metrics), routes, keep-alive and pipelining one request at a time, and hard
 * bounds on everything a client controls. Loop thread only: every function here,
 * every handler call and every response happens on the loop that created the server. */
#ifndef XRAYD_HTTP_SERVER_H
#define XRAYD_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "budget.h"
#include "error.h"
#include "http/request.h"

#define HTTP_ROLE_TCP     1u /* the -t address: sampling calls from SDKs */
#define HTTP_ROLE_API     2u /* --api-address: read API and UI */
#define HTTP_ROLE_METRICS 4u /* --metrics-address: /metrics */
#define HTTP_ROLE_ALL     (HTTP_ROLE_TCP | HTTP_ROLE_API | HTTP_ROLE_METRICS)

#define HTTP_MAX_LISTENERS             8
#define HTTP_MAX_ROUTES                32
#define HTTP_ROUTE_PATH_MAX            128
#define HTTP_DEFAULT_MAX_CONNECTIONS   512
#define HTTP_DEFAULT_IDLE_TIMEOUT_MS   30000
#define HTTP_DEFAULT_HEADER_TIMEOUT_MS 10000
/* Every connection's buffers together (--http-memory): room for the largest answer of
 * the read API (BatchGetTraces: 5 traces of 2 MiB) beside ordinary traffic. */
#define HTTP_DEFAULT_MAX_MEMORY (16u << 20)
/* Request bodies leave this share of it (1/8) to requests without one: /healthz and
 * the sampling calls keep answering while large uploads are refused. */
#define HTTP_MEMORY_BODY_KEEP_DIV 8

/* A zero field takes its default. */
struct http_server_limits {
    size_t max_header_bytes;    /* request line + headers; default 16 KiB, then 431 */
    size_t max_body_bytes;      /* default 1 MiB, then 413 */
    unsigned max_connections;   /* default 512, then 503 */
    uint64_t idle_timeout_ms;   /* no request in progress (or a stalled body); default 30 s */
    uint64_t header_timeout_ms; /* first byte to last header line; default 10 s, then 408 */
    size_t max_memory_bytes;    /* every connection's state and buffers together, requests
                                   and responses; default HTTP_DEFAULT_MAX_MEMORY, then 503;
                                   bodies may use all but 1/HTTP_MEMORY_BODY_KEEP_DIV */
};

/* Why a request or connection was refused. X(name, metric label) */
#define HTTP_REJECT_MAP(X)                                                                         \
    X(BAD_REQUEST, "bad_request")                   /* 400: not HTTP/1.x */                        \
    X(HEADER_TOO_BIG, "header_too_big")             /* 431 */                                      \
    X(BODY_TOO_BIG, "body_too_big")                 /* 413 */                                      \
    X(TOO_MANY_CONNECTIONS, "too_many_connections") /* 503 */                                      \
    X(HEADER_TIMEOUT, "header_timeout")             /* 408 */                                      \
    X(NOT_FOUND, "not_found")                       /* 404 */                                      \
    X(METHOD_NOT_ALLOWED, "method_not_allowed")     /* 405 */                                      \
    X(NO_MEMORY, "no_memory")                       /* 503: malloc failed */                       \
    X(OVER_BUDGET, "over_budget")                   /* 503: max_memory_bytes in use */

enum http_reject {
#define X(name, label) HTTP_REJECT_##name,
    HTTP_REJECT_MAP(X)
#undef X
        HTTP_REJECT__COUNT
};

extern const char *const http_reject_labels[HTTP_REJECT__COUNT];

struct http_server_stats {
    uint64_t accepted;    /* connections */
    uint64_t open;        /* connections open now */
    uint64_t requests;    /* handed to a handler */
    uint64_t idle_closed; /* closed by the idle timeout */
    uint64_t client_gone; /* closed by the client while its response was pending */
    uint64_t rejected[HTTP_REJECT__COUNT];
    uint64_t memory_bytes; /* held now against max_memory_bytes */
    uint64_t memory_max;
};

struct http_server;
struct http_response;

/* A server on loop; limits is copied (NULL = defaults). NULL on ENOMEM. */
struct http_server *http_server_create(uv_loop_t *loop, const struct http_server_limits *limits);

/* Listens on addr ("127.0.0.1:2000", "[::1]:2000", "0.0.0.0:2100", "localhost:2000",
 * ":2000" = all IPv4 interfaces) for requests of the given roles. Listening again on an
 * address already bound (same address and non-zero port) adds the roles to it.
 * Returns 0, -EINVAL (bad address), -ENOSPC (HTTP_MAX_LISTENERS) or a libuv error
 * (UV_EADDRINUSE, ...); err (optional) says which. */
int http_server_listen(struct http_server *s, const char *addr, unsigned roles,
                       char err[XRAY_ERR_LEN]);

/* The port of the first listener that has any of roles, or -ENOENT. */
int http_server_port(const struct http_server *s, unsigned roles);

/* Adds a route: method "GET", "POST", ... or "*" (a GET route also answers HEAD);
 * path exact ("/healthz"), or a prefix when it ends in '*' ("/ui*"). It answers only on
 * listeners whose roles intersect roles. The first matching route wins. Unknown path: 404; known
 * path, other method: 405 with Allow. fn runs on the loop thread and must answer
 * through res, now or later. Returns 0, -EINVAL or -ENOSPC (HTTP_MAX_ROUTES). */
int http_server_route(struct http_server *s, unsigned roles, const char *method, const char *path,
                      void (*fn)(struct http_request *req, struct http_response *res, void *data),
                      void *data);

/* Zeroed memory owned by the server and freed with it: state for route handlers. NULL
 * on ENOMEM. */
void *http_server_alloc(struct http_server *s, size_t size);

/* Closes listeners and connections; the server is freed in the last close callback,
 * then cb(data) runs. A response still pending keeps the server alive until it is sent
 * or abandoned (the connection itself is already closed). */
void http_server_close(struct http_server *s, void (*cb)(void *data), void *data);

void http_server_get_stats(const struct http_server *s, struct http_server_stats *out);

/* The server's memory budget as a registry entry (budget.h), named "http_server": its
 * limit, the bytes held now and the requests refused with 503 for it. The entry points
 * into s: valid until s is freed, read on the loop thread. */
void http_server_budget(const struct http_server *s, struct budget *out);

/* Adds a response header (copied). Names and values with CR or LF are refused.
 * Content-Type, Content-Length and Connection are the server's. 0, -EINVAL,
 * XRAY_ETOOBIG (more than 8 KiB of headers) or XRAY_EFULL (the memory budget). */
int http_response_header(struct http_response *res, const char *name, const char *value);

/* Sends the response (body copied; content_type may be NULL) and releases res: it must
 * not be used afterwards. If the client is gone, nothing is sent and 0 is returned; if
 * the copy does not fit the memory budget, a 503 goes instead (counted as
 * over_budget) and 0 is returned. 0 or -ENOMEM (the connection is then closed). */
int http_response_send(struct http_response *res, int status, const char *content_type,
                       const void *body, size_t len);

/* Releases res without answering; the connection is closed. */
void http_response_abandon(struct http_response *res);

/* True once the client closed its connection: the work behind a pending response may
 * stop (the response must still be sent or abandoned). */
bool http_response_client_gone(const struct http_response *res);

/* Parses "host:port" as http_server_listen() does. 0 or -EINVAL (err says why). */
int http_server_parse_address(const char *addr, struct sockaddr_storage *out,
                              char err[XRAY_ERR_LEN]);

#endif
