/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP server's frame: listeners with roles, the route table, counters, and an
 * orderly close. Connections and responses live in conn.c, request parsing in
 * request.c. Invariant: the server is freed only once every listener and connection
 * handle is closed and no response is pending. */
#include "http/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server_internal.h"
#include "log.h"
#include "util.h"

#define SERVER_BACKLOG      511
#define SERVER_LOG_EVERY_MS 60000

const char *const http_reject_labels[HTTP_REJECT__COUNT] = {
#define X(name, label) label,
    HTTP_REJECT_MAP(X)
#undef X
};

struct http_server *http_server_create(uv_loop_t *loop, const struct http_server_limits *limits)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->loop = loop;
    if (limits != NULL)
        s->limits = *limits;
    struct http_server_limits *l = &s->limits;
    l->max_header_bytes = l->max_header_bytes ? l->max_header_bytes : HTTP_DEFAULT_MAX_HEADER;
    l->max_body_bytes = l->max_body_bytes ? l->max_body_bytes : HTTP_DEFAULT_MAX_BODY;
    l->max_connections = l->max_connections ? l->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
    l->idle_timeout_ms = l->idle_timeout_ms ? l->idle_timeout_ms : HTTP_DEFAULT_IDLE_TIMEOUT_MS;
    l->header_timeout_ms =
        l->header_timeout_ms ? l->header_timeout_ms : HTTP_DEFAULT_HEADER_TIMEOUT_MS;
    l->max_memory_bytes = l->max_memory_bytes ? l->max_memory_bytes : HTTP_DEFAULT_MAX_MEMORY;
    budget_meter_init(&s->mem, l->max_memory_bytes);
    return s;
}

void http_server_reject(struct http_server *s, enum http_reject why, const char *peer)
{
    s->stats.rejected[why]++;
    XLOG_EVERY(SERVER_LOG_EVERY_MS, LOG_LEVEL_INFO, "http", "request from %s refused: %s", peer,
               http_reject_labels[why]);
}

void http_server_maybe_finish(struct http_server *s)
{
    if (!s->closing || s->handles > 0 || s->conns != NULL)
        return;
    void (*cb)(void *) = s->close_cb;
    void *data = s->close_data;
    while (s->allocs != NULL) {
        struct server_alloc *a = s->allocs;
        s->allocs = a->next;
        free(a);
    }
    free(s);
    if (cb != NULL)
        cb(data);
}

static bool server_path_matches(const struct http_route *r, const struct http_request *req)
{
    if (r->prefix)
        return req->path_len >= r->path_len && memcmp(req->path, r->path, r->path_len) == 0;
    return req->path_len == r->path_len && memcmp(req->path, r->path, r->path_len) == 0;
}

const struct http_route *http_server_match(const struct http_server *s, unsigned roles,
                                           const struct http_request *req,
                                           char allow[HTTP_ALLOW_LEN])
{
    size_t used = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct http_route *r = &s->routes[i];
        if (!(r->roles & roles) || !server_path_matches(r, req))
            continue;
        bool get = strcmp(r->method, "GET") == 0;
        if (strcmp(r->method, "*") == 0 || strcmp(r->method, req->method) == 0 ||
            (get && strcmp(req->method, "HEAD") == 0))
            return r;
        /* Not this method: remember what the path does answer, for a 405's Allow. */
        const char *m = get ? "GET, HEAD" : r->method;
        if (strstr(allow, r->method) == NULL && used + strlen(m) + 3 < HTTP_ALLOW_LEN)
            used +=
                (size_t)snprintf(allow + used, HTTP_ALLOW_LEN - used, "%s%s", used ? ", " : "", m);
    }
    return NULL;
}

static void server_on_connection(uv_stream_t *ls, int status)
{
    struct http_listener *l = container_of((uv_tcp_t *)ls, struct http_listener, tcp);
    if (status != 0) {
        XLOG_EVERY(SERVER_LOG_EVERY_MS, LOG_LEVEL_WARN, "http", "accept failed: %s",
                   uv_strerror(status));
        return;
    }
    http_conn_accept(l->server, ls, l->roles);
}

int http_server_parse_address(const char *addr, struct sockaddr_storage *out,
                              char err[XRAY_ERR_LEN])
{
    char host[INET6_ADDRSTRLEN + 16]; /* room for a scope id */
    const char *h = addr ? addr : "", *port;
    size_t hn;
    bool v6 = h[0] == '[';
    if (v6) {
        const char *end = strchr(h, ']');
        if (end == NULL || end[1] != ':')
            goto bad;
        hn = (size_t)(end - h - 1);
        port = end + 2;
        h++;
    } else {
        const char *colon = strrchr(h, ':');
        if (colon == NULL || memchr(h, ':', (size_t)(colon - h)) != NULL)
            goto bad; /* no port, or an IPv6 literal without brackets */
        hn = (size_t)(colon - h);
        port = colon + 1;
    }
    size_t pn = strlen(port);
    if (hn >= sizeof(host) || pn == 0 || pn > 5 || strspn(port, "0123456789") != pn ||
        atoi(port) > 65535)
        goto bad;
    memcpy(host, h, hn);
    host[hn] = '\0';
    if (!v6 && hn == 0)
        strcpy(host, "0.0.0.0"); /* ":2000", as Go's net package reads it */
    else if (!v6 && strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    memset(out, 0, sizeof(*out));
    if (v6 ? uv_ip6_addr(host, atoi(port), (struct sockaddr_in6 *)out) == 0
           : uv_ip4_addr(host, atoi(port), (struct sockaddr_in *)out) == 0)
        return 0;
bad:
    if (err != NULL)
        snprintf(err, XRAY_ERR_LEN, "bad address \"%.64s\": want host:port or [ipv6]:port",
                 addr ? addr : "");
    return -EINVAL;
}

static bool server_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    size_t n = a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    return memcmp(a, b, n) == 0;
}

static int server_addr_port(const struct sockaddr_storage *a)
{
    return ntohs(a->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)a)->sin6_port
                                          : ((const struct sockaddr_in *)a)->sin_port);
}

static void server_on_listener_close(uv_handle_t *h)
{
    struct http_listener *l = container_of((uv_tcp_t *)h, struct http_listener, tcp);
    struct http_server *s = l->server;
    l->used = false;
    s->handles--;
    http_server_maybe_finish(s);
}

int http_server_listen(struct http_server *s, const char *addr, unsigned roles,
                       char err[XRAY_ERR_LEN])
{
    struct sockaddr_storage ss;
    int rc = http_server_parse_address(addr, &ss, err);
    if (rc != 0)
        return rc;
    if (s->closing)
        return XRAY_ECLOSED;
    struct http_listener *l = NULL;
    for (size_t i = 0; i < HTTP_MAX_LISTENERS; i++) {
        struct http_listener *x = &s->listeners[i];
        if (x->used && server_addr_port(&ss) != 0 && server_same_addr(&x->addr, &ss)) {
            x->roles |= roles;
            return 0;
        }
        if (!x->used && l == NULL)
            l = x;
    }
    if (l == NULL) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "%s: more than %d listeners", addr, HTTP_MAX_LISTENERS);
        return -ENOSPC;
    }
    memset(l, 0, sizeof(*l));
    l->server = s;
    l->roles = roles;
    l->used = true;
    uv_tcp_init(s->loop, &l->tcp);
    s->handles++;
    unsigned flags = ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    int len = sizeof(l->addr);
    rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, flags);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, SERVER_BACKLOG, server_on_connection);
    if (rc == 0)
        rc = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&l->addr, &len);
    if (rc != 0) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "listen on %s: %s", addr, uv_strerror(rc));
        uv_close((uv_handle_t *)&l->tcp, server_on_listener_close);
        return rc;
    }
    return 0;
}

int http_server_port(const struct http_server *s, unsigned roles)
{
    for (size_t i = 0; i < HTTP_MAX_LISTENERS; i++)
        if (s->listeners[i].used && (s->listeners[i].roles & roles))
            return server_addr_port(&s->listeners[i].addr);
    return -ENOENT;
}

int http_server_route(struct http_server *s, unsigned roles, const char *method, const char *path,
                      void (*fn)(struct http_request *req, struct http_response *res, void *data),
                      void *data)
{
    size_t n = strlen(path);
    if (fn == NULL || roles == 0 || n == 0 || n >= HTTP_ROUTE_PATH_MAX ||
        strlen(method) >= sizeof(s->routes[0].method))
        return -EINVAL;
    if (s->nroutes == HTTP_MAX_ROUTES)
        return -ENOSPC;
    struct http_route *r = &s->routes[s->nroutes++];
    r->fn = fn;
    r->data = data;
    r->roles = roles;
    r->prefix = path[n - 1] == '*';
    r->path_len = r->prefix ? n - 1 : n;
    memcpy(r->path, path, r->path_len);
    r->path[r->path_len] = '\0';
    strcpy(r->method, method);
    return 0;
}

void *http_server_alloc(struct http_server *s, size_t size)
{
    struct server_alloc *a = calloc(1, sizeof(*a) + size);
    if (a == NULL)
        return NULL;
    a->next = s->allocs;
    s->allocs = a;
    return a->mem;
}

void http_server_close(struct http_server *s, void (*cb)(void *data), void *data)
{
    if (s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_data = data;
    for (size_t i = 0; i < HTTP_MAX_LISTENERS; i++) {
        uv_handle_t *h = (uv_handle_t *)&s->listeners[i].tcp;
        if (s->listeners[i].used && !uv_is_closing(h))
            uv_close(h, server_on_listener_close);
    }
    http_conn_close_all(s);
    http_server_maybe_finish(s);
}

void http_server_get_stats(const struct http_server *s, struct http_server_stats *out)
{
    *out = s->stats;
    out->memory_bytes = budget_meter_used(&s->mem);
    out->memory_max = s->mem.limit;
}

static uint64_t server_over_budget(const void *ctx)
{
    const struct http_server *s = ctx;
    return s->stats.rejected[HTTP_REJECT_OVER_BUDGET];
}

static size_t server_memory_used(const void *ctx)
{
    const struct http_server *s = ctx;
    return budget_meter_used(&s->mem);
}

void http_server_budget(const struct http_server *s, struct budget *out)
{
    *out = (struct budget){
        .name = "http_server",
        .setting = "--http-memory",
        .policy = "new requests and connections get 503",
        .limit = s->mem.limit,
        .used = server_memory_used,
        .refused = server_over_budget,
        .ctx = s,
    };
}
