/* SPDX-License-Identifier: Apache-2.0 */
/* One inbound connection: reads, feeds request.c, hands each complete request to its
 * route, writes the response, enforces timeouts; and the response API handlers use.
 * It never looks at a payload, and never logs one.
 *
 * How a connection lives: READING -> (request complete) HANDLING -> (response sent)
 * WRITING -> READING again, or LINGERING (shutdown, discard what the client still
 * sends, then close) when the connection must end. A connection is freed when both its
 * handles are closed and no response is pending: a handler holding a response keeps
 * the memory (not the socket) alive until it sends or abandons it.
 *
 * Memory: the connection, its parser and every buffer they grow are charged to the
 * server's budget (limits.max_memory_bytes) before they are allocated, and given back
 * when freed; what does not fit is answered 503 from static memory. A connection
 * between requests holds only its structures: the read buffer is returned then. */
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "buf.h"
#include "http/server_internal.h"
#include "util.h"

#define CONN_READ_CHUNK       (16u * 1024)
#define CONN_IN_MAX           (64u * 1024) /* unparsed (pipelined) bytes held per connection */
#define CONN_KEEP_OUT_CAP     (64u * 1024) /* larger write buffers are freed after use */
#define CONN_RESPONSE_HEADERS (8u * 1024)  /* handler-added response headers */
#define CONN_LINGER_MS        2000         /* how long a closing connection is drained */
#define CONN_LINGER_BYTES     (1024u * 1024)
#define CONN_MAX_REJECTING    16 /* 503 answers in flight; beyond, plain close */

/* The refusal that must not allocate: the budget has no room for anything else. */
static const char conn_over_budget_text[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                            "Content-Type: text/plain\r\n"
                                            "Content-Length: 19\r\n"
                                            "Retry-After: 1\r\n"
                                            "Connection: close\r\n\r\n"
                                            "over memory budget\n";

enum conn_state { CONN_READING, CONN_HANDLING, CONN_WRITING, CONN_LINGERING, CONN_CLOSED };

struct http_response {
    struct http_conn *conn;
    struct buf headers; /* "Name: value\r\n" lines */
    bool pending;       /* handed to a handler, not yet sent or abandoned */
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_write_t creq; /* 100 Continue */
    uv_shutdown_t sreq;
    struct http_server *server;
    struct http_conn *prev, *next;
    struct http_request_parser *parser; /* NULL for a connection refused with 503 */
    struct buf in;                      /* bytes read and not yet parsed */
    size_t in_off;
    struct buf out; /* the response being written */
    struct http_response res;
    enum conn_state state;
    unsigned roles;
    int handles; /* libuv handles not yet closed */
    size_t lingered;
    bool reading;
    bool keep_alive;   /* of the request being answered */
    bool head;         /* HEAD: the response has no body */
    bool header_timer; /* the timer runs the header deadline */
    bool peer_eof;     /* the client half-closed while its answer was being written */
    bool charged;      /* sizeof(*this) is held against the server's budget */
    bool starved;      /* a read found no room in the budget: answer 503 */
    char peer[HTTP_PEER_LEN];
};

static void conn_close(struct http_conn *c);
static void conn_process(struct http_conn *c);
static void conn_send_over_budget(struct http_conn *c);
static int conn_send(struct http_conn *c, int status, const char *content_type, const void *body,
                     size_t len);

static void conn_maybe_free(struct http_conn *c)
{
    if (c->handles > 0 || c->res.pending)
        return;
    struct http_server *s = c->server;
    *(c->prev ? &c->prev->next : &s->conns) = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    http_request_parser_destroy(c->parser);
    budget_buf_free(&s->mem, &c->in);
    budget_buf_free(&s->mem, &c->out);
    budget_buf_free(&s->mem, &c->res.headers);
    if (c->charged)
        budget_meter_give(&s->mem, sizeof(*c));
    free(c);
    http_server_maybe_finish(s);
}

static void conn_on_close(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    c->handles--;
    conn_maybe_free(c);
}

static void conn_close(struct http_conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_HANDLING && !c->server->closing)
        c->server->stats.client_gone++;
    c->state = CONN_CLOSED;
    if (c->parser != NULL)
        c->server->active--;
    else
        c->server->rejecting--;
    c->server->stats.open--;
    uv_close((uv_handle_t *)&c->tcp, conn_on_close);
    uv_close((uv_handle_t *)&c->timer, conn_on_close);
}

static void conn_on_timer(uv_timer_t *t)
{
    struct http_conn *c = container_of(t, struct http_conn, timer);
    if (c->state == CONN_READING && c->header_timer) {
        http_server_reject(c->server, HTTP_REJECT_HEADER_TIMEOUT, c->peer);
        c->keep_alive = false;
        c->head = false;
        c->state = CONN_HANDLING;
        c->res.pending = true;
        conn_send(c, 408, "text/plain", "request timeout\n", 16);
        return;
    }
    if (c->state == CONN_READING)
        c->server->stats.idle_closed++;
    conn_close(c);
}

static void conn_arm(struct http_conn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, conn_on_timer, ms, 0);
}

static void conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct http_conn *c = h->data;
    (void)suggested;
    c->starved = false;
    if (c->parser == NULL || c->state == CONN_LINGERING) {
        *b = uv_buf_init(c->server->discard, sizeof(c->server->discard));
        return;
    }
    if (c->in_off > 0) { /* nothing points into in: parsed bytes were copied out */
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    size_t want = c->in.max - c->in.len;
    want = want < CONN_READ_CHUNK ? want : CONN_READ_CHUNK;
    int rc = want == 0 ? XRAY_ETOOBIG
                       : budget_buf_reserve(&c->server->mem, &c->in, want, c->in.cap == 0, 0);
    if (rc == XRAY_EFULL && c->state == CONN_READING) {
        /* A request arrives with no memory left for it: read into the discard buffer
         * and refuse it. While a response is being made, reading pauses instead. */
        c->starved = true;
        *b = uv_buf_init(c->server->discard, sizeof(c->server->discard));
        return;
    }
    if (rc != 0) {
        *b = uv_buf_init(NULL, 0); /* read_cb sees UV_ENOBUFS and pauses */
        return;
    }
    *b = uv_buf_init(c->in.data + c->in.len, (unsigned)want);
}

static void conn_read(struct http_conn *c, bool on);

static void conn_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct http_conn *c = st->data;
    (void)b;
    if (nread == 0 || c->state == CONN_CLOSED)
        return;
    if (nread == UV_ENOBUFS) {
        conn_read(c, false); /* busy with a request and the pipeline buffer is full */
        return;
    }
    if (nread == UV_EOF && c->state == CONN_WRITING) {
        /* A client that half-closes after its request (shell probes do) still gets the
         * answer already on its way; then the connection ends. */
        c->keep_alive = false;
        c->peer_eof = true;
        conn_read(c, false);
        return;
    }
    if (nread < 0) {
        conn_close(c); /* EOF or error: with a pending response, the client is gone */
        return;
    }
    if (c->parser == NULL || c->state == CONN_LINGERING) {
        c->lingered += (size_t)nread;
        if (c->lingered > CONN_LINGER_BYTES)
            conn_close(c);
        return;
    }
    if (c->starved) {
        c->starved = false;
        if (c->state == CONN_READING) {
            c->head = false;
            c->state = CONN_HANDLING;
            c->res.pending = true;
            conn_send_over_budget(c);
        }
        return;
    }
    c->in.len += (size_t)nread;
    if (c->state == CONN_READING)
        conn_process(c);
}

static void conn_read(struct http_conn *c, bool on)
{
    if (on == c->reading || c->state == CONN_CLOSED)
        return;
    int rc = on ? uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read)
                : uv_read_stop((uv_stream_t *)&c->tcp);
    if (rc != 0) {
        conn_close(c);
        return;
    }
    c->reading = on;
}

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
    struct http_conn *c = req->data;
    if (status != 0)
        conn_close(c);
}

/* Ends a connection politely: FIN after the response, then drain what the client is
 * still sending so the kernel does not answer it with a reset that could destroy the
 * response before the client reads it. */
static void conn_linger(struct http_conn *c)
{
    c->state = CONN_LINGERING;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, conn_on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    conn_arm(c, CONN_LINGER_MS);
    conn_read(c, true);
}

static void conn_on_write(uv_write_t *req, int status)
{
    struct http_conn *c = req->data;
    if (c->out.cap > CONN_KEEP_OUT_CAP)
        budget_buf_free(&c->server->mem, &c->out);
    buf_reset(&c->out);
    if (c->state != CONN_WRITING)
        return; /* closed meanwhile */
    if (status != 0) {
        conn_close(c);
        return;
    }
    if (!c->keep_alive) {
        if (c->peer_eof)
            conn_close(c);
        else
            conn_linger(c);
        return;
    }
    c->state = CONN_READING;
    http_request_parser_next(c->parser);
    conn_arm(c, c->server->limits.idle_timeout_ms);
    conn_read(c, true);
    conn_process(c);
}

static void conn_on_continue(uv_write_t *req, int status)
{
    (void)req; /* a failed write fails the final response too, which closes */
    (void)status;
}

static void conn_dispatch(struct http_conn *c)
{
    struct http_server *s = c->server;
    struct http_request *req = http_request_parser_request(c->parser);
    req->roles = c->roles;
    memcpy(req->peer, c->peer, sizeof(req->peer));
    c->state = CONN_HANDLING;
    c->header_timer = false;
    c->keep_alive = req->keep_alive && !s->closing;
    c->head = strcmp(req->method, "HEAD") == 0;
    c->res.pending = true;
    uv_timer_stop(&c->timer);
    char allow[HTTP_ALLOW_LEN];
    const struct http_route *r = http_server_match(s, c->roles, req, allow);
    if (r != NULL) {
        s->stats.requests++;
        r->fn(req, &c->res, r->data);
        return;
    }
    if (allow[0] == '\0') {
        http_server_reject(s, HTTP_REJECT_NOT_FOUND, c->peer);
        conn_send(c, 404, "text/plain", "not found\n", 10);
        return;
    }
    http_server_reject(s, HTTP_REJECT_METHOD_NOT_ALLOWED, c->peer);
    http_response_header(&c->res, "Allow", allow);
    conn_send(c, 405, "text/plain", "method not allowed\n", 19);
}

/* Parses what was read while the connection waits for a request. */
static void conn_process(struct http_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    while (c->state == CONN_READING && c->in_off < c->in.len) {
        size_t used;
        int rc = http_request_parser_feed(c->parser, c->in.data + c->in_off, c->in.len - c->in_off,
                                          &used);
        c->in_off += used;
        if (http_request_parser_take_continue(c->parser) && rc == 0) {
            uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
            c->creq.data = c;
            if (uv_write(&c->creq, (uv_stream_t *)&c->tcp, &b, 1, conn_on_continue) != 0) {
                conn_close(c);
                return;
            }
        }
        if (rc == 1) {
            conn_dispatch(c);
        } else if (rc < 0) {
            int status = http_request_parser_status(c->parser);
            enum http_reject why = status == 413   ? HTTP_REJECT_BODY_TOO_BIG
                                   : status == 431 ? HTTP_REJECT_HEADER_TOO_BIG
                                   : status == 503 ? HTTP_REJECT_NO_MEMORY
                                                   : HTTP_REJECT_BAD_REQUEST;
            c->keep_alive = false;
            c->head = false;
            c->state = CONN_HANDLING;
            c->res.pending = true;
            if (http_request_parser_over_budget(c->parser)) {
                conn_send_over_budget(c);
                return;
            }
            http_server_reject(c->server, why, c->peer);
            const char *text = why == HTTP_REJECT_BAD_REQUEST ? "bad request\n"
                               : why == HTTP_REJECT_NO_MEMORY ? "out of memory\n"
                                                              : "too large\n";
            conn_send(c, status, "text/plain", text, strlen(text));
        }
    }
    if (c->state != CONN_READING)
        return;
    if (c->in_off == c->in.len)
        c->in_off = c->in.len = 0;
    if (c->in.len == 0 && http_request_parser_idle(c->parser))
        budget_buf_free(&c->server->mem, &c->in); /* idle: hold no read buffer */
    if (!http_request_parser_in_headers(c->parser)) {
        c->header_timer = false;
        conn_arm(c, c->server->limits.idle_timeout_ms);
    } else if (!c->header_timer) {
        c->header_timer = true;
        conn_arm(c, c->server->limits.header_timeout_ms);
    }
}

static void conn_peer(struct http_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            snprintf(c->peer, sizeof(c->peer), "[%s]:%d", host, port);
            return;
        }
        uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
}

void http_conn_accept(struct http_server *s, uv_stream_t *ls, unsigned roles)
{
    bool over = s->active >= s->limits.max_connections;
    /* A connection refused for the limit or the budget is not charged: at most
     * CONN_MAX_REJECTING of them live beyond their first loop turn. */
    bool charged = !over && budget_meter_take(&s->mem, sizeof(struct http_conn));
    bool starved = !over && !charged;
    struct http_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        if (charged)
            budget_meter_give(&s->mem, sizeof(*c));
        s->stats.rejected[HTTP_REJECT_NO_MEMORY]++;
        return; /* the connection waits in the backlog */
    }
    c->charged = charged;
    c->server = s;
    c->roles = roles;
    c->res.conn = c;
    c->tcp.data = c;
    c->timer.data = c;
    c->wreq.data = c;
    buf_init(&c->in, CONN_IN_MAX);
    buf_init(&c->out, 0);
    buf_init(&c->res.headers, CONN_RESPONSE_HEADERS);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->handles = 2;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->stats.open++;
    if (!charged)
        s->rejecting++;
    else
        s->active++;
    c->parser =
        !charged ? NULL
                 : http_request_parser_create(s->limits.max_header_bytes, s->limits.max_body_bytes);
    int prc = c->parser != NULL ? http_request_parser_set_budget(
                                      c->parser, &s->mem, s->mem.limit / HTTP_MEMORY_BODY_KEEP_DIV)
                                : -ENOMEM;
    if (charged && prc != 0) {
        http_request_parser_destroy(c->parser);
        c->parser = NULL;
        s->active--;
        s->rejecting++;
        if (prc == XRAY_EFULL)
            starved = true;
        else
            s->stats.rejected[HTTP_REJECT_NO_MEMORY]++;
    }
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    s->stats.accepted++;
    conn_peer(c);
    uv_tcp_nodelay(&c->tcp, 1);
    if (c->parser == NULL) {
        if (over)
            http_server_reject(s, HTTP_REJECT_TOO_MANY_CONNECTIONS, c->peer);
        if (s->rejecting > CONN_MAX_REJECTING) {
            if (starved)
                http_server_reject(s, HTTP_REJECT_OVER_BUDGET, c->peer);
            conn_close(c);
            return;
        }
        c->state = CONN_HANDLING;
        c->res.pending = true;
        if (starved)
            conn_send_over_budget(c);
        else
            conn_send(c, 503, "text/plain", "too many connections\n", 21);
        conn_read(c, true);
        return;
    }
    c->state = CONN_READING;
    conn_arm(c, s->limits.idle_timeout_ms);
    conn_read(c, true);
}

static int conn_send(struct http_conn *c, int status, const char *content_type, const void *body,
                     size_t len)
{
    struct http_response *res = &c->res;
    res->pending = false;
    if (c->state != CONN_HANDLING) { /* the client left: nothing to send to */
        budget_buf_free(&c->server->mem, &res->headers);
        conn_maybe_free(c);
        return 0;
    }
    bool no_body = c->head || status == 204 || status == 304 || (status >= 100 && status < 200);
    struct http_request *req = c->parser ? http_request_parser_request(c->parser) : NULL;
    bool http10 = req != NULL && req->http_major == 1 && req->http_minor == 0;
    buf_reset(&c->out); /* keeps the previous response's memory, up to CONN_KEEP_OUT_CAP */
    c->out.max = res->headers.len + len + (content_type ? strlen(content_type) : 0) + 160;
    /* The whole response is paid for at once, at its exact size (the 160 bytes cover
     * the status line and the server's headers). */
    int rc = budget_buf_reserve(&c->server->mem, &c->out, c->out.max, true, 0);
    if (rc == XRAY_EFULL) {
        conn_send_over_budget(c);
        return 0;
    }
    if (rc == 0)
        rc = buf_appendf(&c->out, "HTTP/1.1 %d %s\r\n", status,
                         http_status_str((enum http_status)status));
    if (rc == 0 && content_type != NULL)
        rc = buf_appendf(&c->out, "Content-Type: %s\r\n", content_type);
    if (rc == 0)
        rc = buf_appendf(&c->out, "Content-Length: %zu\r\n%s", len,
                         !c->keep_alive ? "Connection: close\r\n"
                         : http10       ? "Connection: keep-alive\r\n"
                                        : "");
    if (rc == 0)
        rc = buf_append(&c->out, res->headers.data, res->headers.len);
    if (rc == 0)
        rc = buf_append(&c->out, "\r\n", 2);
    if (rc == 0 && !no_body)
        rc = buf_append(&c->out, body, len);
    buf_reset(&res->headers);
    if (rc != 0) {
        c->server->stats.rejected[HTTP_REJECT_NO_MEMORY]++;
        conn_close(c);
        return rc;
    }
    c->state = CONN_WRITING;
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_on_write);
    if (rc != 0) {
        conn_close(c);
        return 0; /* the client is gone: as if it left before the answer */
    }
    conn_arm(c, c->server->limits.idle_timeout_ms);
    return 0;
}

static void conn_send_over_budget(struct http_conn *c)
{
    http_server_reject(c->server, HTTP_REJECT_OVER_BUDGET, c->peer);
    c->res.pending = false;
    budget_buf_free(&c->server->mem, &c->res.headers);
    c->keep_alive = false;
    c->state = CONN_WRITING;
    uv_buf_t b = uv_buf_init((char *)conn_over_budget_text, sizeof(conn_over_budget_text) - 1);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_on_write) != 0) {
        conn_close(c);
        return;
    }
    conn_arm(c, c->server->limits.idle_timeout_ms);
}

int http_response_header(struct http_response *res, const char *name, const char *value)
{
    if (name[0] == '\0' || strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
        return -EINVAL;
    int rc = budget_buf_reserve(&res->conn->server->mem, &res->headers,
                                strlen(name) + strlen(value) + 4, false, 0);
    return rc == 0 ? buf_appendf(&res->headers, "%s: %s\r\n", name, value) : rc;
}

int http_response_send(struct http_response *res, int status, const char *content_type,
                       const void *body, size_t len)
{
    if (!res->pending || status < 100 || status > 999)
        return -EINVAL;
    return conn_send(res->conn, status, content_type, body, len);
}

void http_response_abandon(struct http_response *res)
{
    struct http_conn *c = res->conn;
    if (!res->pending)
        return;
    res->pending = false;
    budget_buf_free(&c->server->mem, &res->headers);
    if (c->state == CONN_HANDLING) {
        c->state = CONN_READING; /* not a client leaving: do not count it as one */
        conn_close(c);
    }
    conn_maybe_free(c);
}

bool http_response_client_gone(const struct http_response *res)
{
    return res->conn->state == CONN_CLOSED;
}

void http_conn_close_all(struct http_server *s)
{
    for (struct http_conn *c = s->conns; c != NULL; c = c->next)
        conn_close(c);
}
