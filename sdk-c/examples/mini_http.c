/* SPDX-License-Identifier: Apache-2.0 */
/* The examples' HTTP server: libuv TCP, http-parser, one request in flight per
 * connection (reading pauses until it is answered), keep-alive when the client asks
 * for it. Fields longer than their buffers are cut; that is enough for a demo. */
#include "mini_http.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct mini_conn {
    uv_tcp_t tcp;
    http_parser parser;
    struct mini_request req;
    char field[64];
    size_t field_len;
    bool in_value;
    char *value;      /* where the current header's value goes, or NULL */
    size_t value_cap; /* its size */
    bool in_flight, closing;
};

struct mini_write {
    uv_write_t w;
    struct mini_conn *conn;
    bool close_after;
    char buf[];
};

static uv_tcp_t listener;
static mini_handler handler_fn;
static void *handler_data;
static http_parser_settings settings;

static void mini_append(char *dst, size_t cap, const char *at, size_t n)
{
    size_t len = strlen(dst);
    if (len + n >= cap)
        n = cap - 1 - len;
    memcpy(dst + len, at, n);
    dst[len + n] = '\0';
}

static int on_message_begin(http_parser *p)
{
    struct mini_conn *c = p->data;
    memset(&c->req, 0, sizeof(c->req));
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, c->req.client_ip, sizeof(c->req.client_ip));
    c->field_len = 0;
    c->in_value = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct mini_conn *c = p->data;
    mini_append(c->req.url, sizeof(c->req.url), at, n);
    return 0;
}

static void mini_pick_target(struct mini_conn *c)
{
    static const struct {
        const char *name;
        size_t off, cap;
    } known[] = {
        {"Host", offsetof(struct mini_request, host), sizeof(((struct mini_request *)0)->host)},
        {"User-Agent", offsetof(struct mini_request, user_agent),
         sizeof(((struct mini_request *)0)->user_agent)},
        {"X-Amzn-Trace-Id", offsetof(struct mini_request, trace_header),
         sizeof(((struct mini_request *)0)->trace_header)},
        {"X-Forwarded-For", offsetof(struct mini_request, x_forwarded_for),
         sizeof(((struct mini_request *)0)->x_forwarded_for)},
    };
    c->value = NULL;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcasecmp(c->field, known[i].name) == 0) {
            c->value = (char *)&c->req + known[i].off;
            c->value_cap = known[i].cap;
        }
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct mini_conn *c = p->data;
    if (c->in_value) {
        c->field_len = 0;
        c->in_value = false;
    }
    if (c->field_len + n >= sizeof(c->field))
        n = sizeof(c->field) - 1 - c->field_len;
    memcpy(c->field + c->field_len, at, n);
    c->field_len += n;
    c->field[c->field_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct mini_conn *c = p->data;
    if (!c->in_value) {
        c->in_value = true;
        mini_pick_target(c);
    }
    if (c->value != NULL)
        mini_append(c->value, c->value_cap, at, n);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct mini_conn *c = p->data;
    snprintf(c->req.method, sizeof(c->req.method), "%s",
             http_method_str((enum http_method)p->method));
    c->req.keep_alive = http_should_keep_alive(p);
    c->in_flight = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    http_parser_pause(p, 1);
    handler_fn(c, &c->req, handler_data);
    return 0;
}

static void mini_on_close(uv_handle_t *h)
{
    free(h->data);
}

static void mini_close_conn(struct mini_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, mini_on_close);
}

static void mini_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    static char slab[64 * 1024];
    (void)suggested;
    *buf = uv_buf_init(slab, sizeof(slab));
}

static void mini_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct mini_conn *c = s->data;
    if (n < 0) {
        if (!c->in_flight)
            mini_close_conn(c);
        else
            uv_read_stop(s); /* answered later; closed then */
        return;
    }
    if (n == 0)
        return;
    size_t done = http_parser_execute(&c->parser, &settings, buf->base, (size_t)n);
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK && HTTP_PARSER_ERRNO(&c->parser) != HPE_PAUSED) {
        (void)done;
        mini_close_conn(c);
    }
}

static void mini_written(uv_write_t *w, int status)
{
    struct mini_write *mw = (struct mini_write *)w;
    struct mini_conn *c = mw->conn;
    c->in_flight = false;
    if (status != 0 || mw->close_after) {
        mini_close_conn(c);
    } else if (!c->closing) {
        http_parser_pause(&c->parser, 0);
        uv_read_start((uv_stream_t *)&c->tcp, mini_alloc, mini_read);
    }
    free(mw);
}

void mini_respond(struct mini_conn *c, int status, const char *extra_header, const char *body)
{
    if (body == NULL)
        body = "";
    size_t cap = strlen(body) + (extra_header ? strlen(extra_header) : 0) + 256;
    struct mini_write *mw = malloc(sizeof(*mw) + cap);
    if (mw == NULL) {
        mini_close_conn(c);
        return;
    }
    mw->conn = c;
    mw->close_after = !c->req.keep_alive;
    int n = snprintf(mw->buf, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\n%s%s\r\n%s",
                     status, status < 400 ? "OK" : "Error", strlen(body),
                     mw->close_after ? "close" : "keep-alive", extra_header ? extra_header : "",
                     extra_header ? "\r\n" : "", body);
    uv_buf_t b = uv_buf_init(mw->buf, (unsigned)n);
    if (c->closing || uv_write(&mw->w, (uv_stream_t *)&c->tcp, &b, 1, mini_written) != 0) {
        free(mw);
        mini_close_conn(c);
    }
}

static void mini_on_connection(uv_stream_t *server, int status)
{
    if (status != 0)
        return;
    struct mini_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        mini_close_conn(c);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, mini_alloc, mini_read);
}

int mini_listen(uv_loop_t *loop, uint16_t port, mini_handler handler, void *data, uint16_t *bound)
{
    handler_fn = handler;
    handler_data = data;
    http_parser_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_message_complete = on_message_complete;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    int rc = uv_tcp_init(loop, &listener);
    if (rc == 0)
        rc = uv_tcp_bind(&listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&listener, 128, mini_on_connection);
    if (rc != 0)
        return rc;
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&listener, (struct sockaddr *)&got, &len);
    *bound = ntohs(got.sin_port);
    return 0;
}

void mini_close(void)
{
    uv_close((uv_handle_t *)&listener, NULL);
}
