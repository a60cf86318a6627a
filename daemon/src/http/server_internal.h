/* SPDX-License-Identifier: Apache-2.0 */
/* What server.c (listeners, routes, the server's life) and conn.c (connections and
 * responses) share. Not a public header: nothing outside daemon/src/http includes it. */
#ifndef XRAYD_HTTP_SERVER_INTERNAL_H
#define XRAYD_HTTP_SERVER_INTERNAL_H

#include "http/server.h"

#define HTTP_ALLOW_LEN 64 /* the Allow header of a 405 */

struct http_listener {
    uv_tcp_t tcp;
    struct http_server *server;
    struct sockaddr_storage addr;
    unsigned roles;
    bool used;
};

struct http_route {
    void (*fn)(struct http_request *req, struct http_response *res, void *data);
    void *data;
    unsigned roles;
    bool prefix;
    char method[16];
    char path[HTTP_ROUTE_PATH_MAX];
    size_t path_len;
};

struct server_alloc {
    struct server_alloc *next;
    max_align_t mem[];
};

struct http_server {
    uv_loop_t *loop;
    struct http_server_limits limits;
    struct http_listener listeners[HTTP_MAX_LISTENERS];
    struct http_route routes[HTTP_MAX_ROUTES];
    size_t nroutes;
    struct http_conn *conns; /* every connection not yet freed (conn.c's list) */
    struct server_alloc *allocs;
    unsigned handles; /* listener handles not yet closed */
    unsigned active;  /* open connections under the limit */
    unsigned rejecting;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
    struct http_server_stats stats;
    struct budget_meter mem; /* limits.max_memory_bytes: every connection's memory */
    char discard[4096];      /* what lingering connections read into */
};

/* server.c */
void http_server_maybe_finish(struct http_server *s);
void http_server_reject(struct http_server *s, enum http_reject why, const char *peer);
/* The route for req on a listener with roles, or NULL with allow set to the methods the
 * path answers ("" when it answers none: 404). */
const struct http_route *http_server_match(const struct http_server *s, unsigned roles,
                                           const struct http_request *req,
                                           char allow[HTTP_ALLOW_LEN]);

/* conn.c */
/* Accepts a connection from listener into s (or answers 503 past the limit). */
void http_conn_accept(struct http_server *s, uv_stream_t *listener, unsigned roles);
/* Closes every connection of s (pending responses stay valid until sent). */
void http_conn_close_all(struct http_server *s);

#endif
