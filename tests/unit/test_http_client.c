/* SPDX-License-Identifier: Apache-2.0 */
/* http/client.c against a fake HTTP/1.1 server that lives in this file, on the same
 * loop, on 127.0.0.1 port 0: status and body, keep-alive reuse, the error classes
 * (timeout, refused, body too big), Retry-After and close with a request in flight.
 * The fake also plays a forward proxy (absolute-form requests, CONNECT) for the proxy
 * decision per request: through it, around it by NO_PROXY, and deaf to the
 * environment's proxy variables. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* The .c itself, for its static error mapping (STYLE rule 26). */
#include "http/client.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "error.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- the fake server: answers by path, keeps connections open ---- */

struct fake_conn {
    uv_tcp_t tcp;
    struct fake_server *srv;
    char in[8192];
    size_t len;
    struct fake_conn *next;
    int closed;
};

struct fake_server {
    uv_tcp_t listener;
    int port;
    int accepted;           /* connections accepted */
    int requests;           /* requests answered or swallowed */
    int proxied;            /* of them, absolute-form requests a proxy gets */
    int connects;           /* CONNECT requests (answered 403) */
    char last_proxied[256]; /* the last absolute URL or CONNECT authority */
    struct fake_conn *conns;
};

static void fake_on_write(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void fake_send(struct fake_conn *fc, const char *text)
{
    uv_write_t *w = malloc(sizeof(*w));
    char *copy = strdup(text);
    assert_non_null(w);
    assert_non_null(copy);
    w->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned)strlen(copy));
    assert_int_equal(uv_write(w, (uv_stream_t *)&fc->tcp, &b, 1, fake_on_write), 0);
}

static void fake_reply(struct fake_conn *fc, const char *method, const char *path,
                       const char *headers, const char *body, size_t body_len)
{
    char out[4096];
    char payload[2048];
    fc->srv->requests++;
    if (strcmp(path, "/hang") == 0)
        return; /* never answers */
    if (strcmp(path, "/echo") == 0) {
        const char *x = strstr(headers, "\r\nX-Test: ");
        int xlen = x ? (int)strcspn(x + 10, "\r") : 0;
        snprintf(payload, sizeof(payload), "%s %s x=%.*s %.*s", method, path, xlen, x ? x + 10 : "",
                 (int)body_len, body);
        snprintf(out, sizeof(out), "HTTP/1.1 201 Created\r\nContent-Length: %zu\r\n\r\n%s",
                 strlen(payload), payload);
    } else if (strcmp(path, "/retry") == 0) {
        snprintf(out, sizeof(out),
                 "HTTP/1.1 503 Slow Down\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n{}");
    } else if (strcmp(path, "/retry-date") == 0) {
        char date[64];
        time_t when = time(NULL) + 30;
        struct tm tm;
        gmtime_r(&when, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        snprintf(out, sizeof(out),
                 "HTTP/1.1 429 Too Many\r\nretry-after: %s\r\nContent-Length: 0\r\n\r\n", date);
    } else if (strcmp(path, "/big") == 0) {
        memset(payload, 'b', 1500);
        payload[1500] = '\0';
        snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: 1500\r\n\r\n%s", payload);
    } else {
        snprintf(out, sizeof(out), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
    fake_send(fc, out);
}

/* Answers every complete request in the buffer (Content-Length bodies only). */
static void fake_parse(struct fake_conn *fc)
{
    for (;;) {
        fc->in[fc->len] = '\0';
        char *end = strstr(fc->in, "\r\n\r\n");
        if (end == NULL)
            return;
        size_t head_len = (size_t)(end - fc->in) + 4;
        size_t body_len = 0;
        const char *cl = strcasestr(fc->in, "\r\nContent-Length:");
        if (cl != NULL && cl < end)
            body_len = strtoul(cl + 17, NULL, 10);
        if (fc->len < head_len + body_len)
            return;
        char method[16], target[256];
        assert_int_equal(sscanf(fc->in, "%15s %255s", method, target), 2);
        fc->in[head_len - 2] = '\0';
        const char *path = target;
        if (strcmp(method, "CONNECT") == 0) {
            /* A tunnel request: this fake proxy refuses every one. */
            fc->srv->connects++;
            snprintf(fc->srv->last_proxied, sizeof(fc->srv->last_proxied), "%s", target);
            fake_send(fc, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
            path = NULL;
        } else if (strncmp(target, "http://", 7) == 0) {
            /* Absolute form: a forward proxy's request; answered as its origin. */
            fc->srv->proxied++;
            snprintf(fc->srv->last_proxied, sizeof(fc->srv->last_proxied), "%s", target);
            path = strchr(target + 7, '/');
            if (path == NULL)
                path = "/";
        }
        if (path != NULL)
            fake_reply(fc, method, path, fc->in, fc->in + head_len, body_len);
        memmove(fc->in, fc->in + head_len + body_len, fc->len - head_len - body_len);
        fc->len -= head_len + body_len;
    }
}

static void fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct fake_conn *fc = container_of((uv_tcp_t *)h, struct fake_conn, tcp);
    (void)suggested;
    *b = uv_buf_init(fc->in + fc->len, (unsigned)(sizeof(fc->in) - 1 - fc->len));
}

static void fake_on_conn_close(uv_handle_t *h)
{
    struct fake_conn *fc = container_of((uv_tcp_t *)h, struct fake_conn, tcp);
    fc->closed = 1;
}

static void fake_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct fake_conn *fc = container_of((uv_tcp_t *)s, struct fake_conn, tcp);
    (void)b;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, fake_on_conn_close);
        return;
    }
    fc->len += (size_t)n;
    fake_parse(fc);
}

static void fake_on_connection(uv_stream_t *l, int status)
{
    struct fake_server *srv = container_of((uv_tcp_t *)l, struct fake_server, listener);
    assert_int_equal(status, 0);
    struct fake_conn *fc = calloc(1, sizeof(*fc));
    assert_non_null(fc);
    fc->srv = srv;
    assert_int_equal(uv_tcp_init(l->loop, &fc->tcp), 0);
    assert_int_equal(uv_accept(l, (uv_stream_t *)&fc->tcp), 0);
    fc->next = srv->conns;
    srv->conns = fc;
    srv->accepted++;
    assert_int_equal(uv_read_start((uv_stream_t *)&fc->tcp, fake_alloc, fake_on_read), 0);
}

static void fake_start(uv_loop_t *loop, struct fake_server *srv)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof(got);
    memset(srv, 0, sizeof(*srv));
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_init(loop, &srv->listener), 0);
    assert_int_equal(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv->listener, 16, fake_on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&got, &len), 0);
    srv->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void fake_stop(struct fake_server *srv)
{
    uv_close((uv_handle_t *)&srv->listener, NULL);
    for (struct fake_conn *fc = srv->conns; fc != NULL; fc = fc->next)
        if (!uv_is_closing((uv_handle_t *)&fc->tcp))
            uv_close((uv_handle_t *)&fc->tcp, fake_on_conn_close);
}

static void fake_free(struct fake_server *srv)
{
    while (srv->conns != NULL) {
        struct fake_conn *fc = srv->conns;
        srv->conns = fc->next;
        assert_true(fc->closed);
        free(fc);
    }
}

/* ---- the test harness: one loop, the fake, a client, a watchdog ---- */

struct harness {
    uv_loop_t loop;
    uv_timer_t watchdog;
    struct fake_server srv;
    struct http_client *client;
    int client_closed;
    int done;
    /* what the last callback saw */
    int calls;
    enum http_client_error error;
    int status;
    char body[2048];
    size_t body_len;
    int64_t retry_after_ms;
    char message[256];
};

static void harness_on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the test did not finish in time");
}

static void harness_init(struct harness *h, const struct http_client_options *opt)
{
    memset(h, 0, sizeof(*h));
    assert_int_equal(uv_loop_init(&h->loop), 0);
    assert_int_equal(uv_timer_init(&h->loop, &h->watchdog), 0);
    assert_int_equal(uv_timer_start(&h->watchdog, harness_on_watchdog, 10000, 0), 0);
    fake_start(&h->loop, &h->srv);
    h->client = http_client_create(&h->loop, opt);
    assert_non_null(h->client);
}

/* A client whose proxy settings name the fake's port where they hold "%d". */
static void harness_init_proxy(struct harness *h, const char *address, const char *http,
                               const char *https, const char *no_proxy)
{
    char a[128] = "", ht[128] = "", hs[128] = "";
    memset(h, 0, sizeof(*h));
    assert_int_equal(uv_loop_init(&h->loop), 0);
    assert_int_equal(uv_timer_init(&h->loop, &h->watchdog), 0);
    assert_int_equal(uv_timer_start(&h->watchdog, harness_on_watchdog, 10000, 0), 0);
    fake_start(&h->loop, &h->srv);
    if (address != NULL)
        snprintf(a, sizeof(a), address, h->srv.port);
    if (http != NULL)
        snprintf(ht, sizeof(ht), http, h->srv.port);
    if (https != NULL)
        snprintf(hs, sizeof(hs), https, h->srv.port);
    struct proxy_settings ps = {
        .address = a, .http_proxy = ht, .https_proxy = hs, .no_proxy = no_proxy};
    struct http_client_options opt = {0};
    char err[XRAY_ERR_LEN];
    assert_int_equal(proxy_create(&ps, &opt.proxy, err), 0);
    h->client = http_client_create(&h->loop, &opt);
    assert_non_null(h->client);
}

static void harness_on_client_closed(void *data)
{
    struct harness *h = data;
    h->client_closed = 1;
}

static void harness_finish(struct harness *h)
{
    if (h->client != NULL)
        http_client_close(h->client, harness_on_client_closed, h);
    fake_stop(&h->srv);
    uv_close((uv_handle_t *)&h->watchdog, NULL);
    assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    assert_true(h->client_closed);
    fake_free(&h->srv);
    assert_int_equal(uv_loop_close(&h->loop), 0);
}

static void harness_record(const struct http_client_result *res, struct harness *h)
{
    h->calls++;
    h->error = res->error;
    h->status = res->status;
    assert_true(res->body_len < sizeof(h->body));
    memcpy(h->body, res->body, res->body_len);
    h->body[res->body_len] = '\0';
    h->body_len = res->body_len;
    h->retry_after_ms = res->retry_after_ms;
    snprintf(h->message, sizeof(h->message), "%s", res->message);
}

static void on_result_stop(const struct http_client_result *res, void *data)
{
    struct harness *h = data;
    harness_record(res, h);
    h->done = 1;
    uv_stop(&h->loop);
}

static void run_one(struct harness *h, const char *method, const char *path, const char *body,
                    unsigned timeout_ms, size_t max_response)
{
    char url[128];
    const char *headers[] = {"X-Test: 42", "Content-Type: text/plain"};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", h->srv.port, path);
    struct http_client_request req = {
        .method = method,
        .url = url,
        .headers = headers,
        .header_count = 2,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = timeout_ms,
        .max_response = max_response,
    };
    h->done = 0;
    assert_int_equal(http_client_request(h->client, &req, on_result_stop, h), 0);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_true(h->done);
}

/* A port on 127.0.0.1 that was just free: bind, read it back, close. */
static int dead_port(uv_loop_t *loop)
{
    uv_tcp_t tmp;
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof(got);
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_init(loop, &tmp), 0);
    assert_int_equal(uv_tcp_bind(&tmp, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&tmp, (struct sockaddr *)&got, &len), 0);
    int port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    uv_close((uv_handle_t *)&tmp, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return port;
}

/* One request to url (any host), waited for. */
static void run_url(struct harness *h, const char *method, const char *url, const char *body)
{
    const char *headers[] = {"X-Test: 42"};
    struct http_client_request req = {
        .method = method,
        .url = url,
        .headers = headers,
        .header_count = 1,
        .body = body,
        .body_len = body ? strlen(body) : 0,
    };
    h->done = 0;
    assert_int_equal(http_client_request(h->client, &req, on_result_stop, h), 0);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_true(h->done);
}

static void test_http_client_request_status_body(void **state)
{
    struct harness h;
    (void)state;
    harness_init(&h, NULL);
    run_one(&h, "POST", "/echo", "abc\"def", 0, 0);
    assert_int_equal(h.error, HTTP_CLIENT_OK);
    assert_int_equal(h.status, 201);
    assert_string_equal(h.body, "POST /echo x=42 abc\"def");
    assert_int_equal(h.retry_after_ms, -1);
    assert_string_equal(h.message, "");

    run_one(&h, "GET", "/nothing", NULL, 0, 0);
    assert_int_equal(h.error, HTTP_CLIENT_OK);
    assert_int_equal(h.status, 404);
    assert_int_equal(h.body_len, 0);
    harness_finish(&h);
}

static void test_http_client_request_keepalive(void **state)
{
    struct harness h;
    (void)state;
    harness_init(&h, NULL);
    run_one(&h, "POST", "/echo", "one", 0, 0);
    assert_int_equal(h.status, 201);
    run_one(&h, "POST", "/echo", "two", 0, 0);
    assert_int_equal(h.status, 201);
    assert_string_equal(h.body, "POST /echo x=42 two");
    run_one(&h, "PUT", "/echo", "three", 0, 0);
    assert_string_equal(h.body, "PUT /echo x=42 three");
    assert_int_equal(h.srv.requests, 3);
    assert_int_equal(h.srv.accepted, 1); /* one connection for all three */
    harness_finish(&h);
}

struct spin_count {
    uv_check_t check;
    uv_timer_t stop;
    int iterations;
};

static void spin_on_check(uv_check_t *c)
{
    struct spin_count *sc = container_of(c, struct spin_count, check);
    sc->iterations++;
}

static void spin_on_stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* The server drops a kept-alive connection between requests: the client neither
 * spins on the closed socket while it idles (its poll outlives the transfer) nor
 * fails the next request, which gets a new connection. */
static void test_http_client_request_keepalive_server_closes(void **state)
{
    struct harness h;
    (void)state;
    harness_init(&h, NULL);
    run_one(&h, "POST", "/echo", "one", 0, 0);
    assert_int_equal(h.status, 201);
    assert_int_equal(h.srv.accepted, 1);
    for (struct fake_conn *fc = h.srv.conns; fc != NULL; fc = fc->next)
        if (!uv_is_closing((uv_handle_t *)&fc->tcp))
            uv_close((uv_handle_t *)&fc->tcp, fake_on_conn_close);

    struct spin_count sc = {0};
    assert_int_equal(uv_check_init(&h.loop, &sc.check), 0);
    assert_int_equal(uv_check_start(&sc.check, spin_on_check), 0);
    assert_int_equal(uv_timer_init(&h.loop, &sc.stop), 0);
    assert_int_equal(uv_timer_start(&sc.stop, spin_on_stop, 100, 0), 0);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_true(sc.iterations < 50); /* a poll left on a closed socket runs thousands */
    uv_close((uv_handle_t *)&sc.check, NULL);
    uv_close((uv_handle_t *)&sc.stop, NULL);

    run_one(&h, "POST", "/echo", "two", 0, 0);
    assert_int_equal(h.error, HTTP_CLIENT_OK);
    assert_string_equal(h.body, "POST /echo x=42 two");
    assert_int_equal(h.srv.accepted, 2);
    run_one(&h, "POST", "/echo", "three", 0, 0);
    assert_int_equal(h.srv.accepted, 2);
    harness_finish(&h);
}

static void test_http_client_request_timeout(void **state)
{
    struct harness h;
    (void)state;
    harness_init(&h, NULL);
    uint64_t t0 = uv_hrtime();
    run_one(&h, "POST", "/hang", "x", 200, 0);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(h.error, HTTP_CLIENT_TIMEOUT);
    assert_int_equal(h.status, 0);
    assert_int_equal(h.body_len, 0);
    assert_true(ms >= 190 && ms < 3000);
    assert_true(strlen(h.message) > 0);
    assert_int_equal(h.srv.requests, 1);
    harness_finish(&h);
}

static void test_http_client_request_refused(void **state)
{
    struct harness h;
    (void)state;
    harness_init(&h, NULL);
    int port = dead_port(&h.loop);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
    struct http_client_request req = {.method = "POST", .url = url, .body = "x", .body_len = 1};
    h.done = 0;
    assert_int_equal(http_client_request(h.client, &req, on_result_stop, &h), 0);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_true(h.done);
    assert_int_equal(h.error, HTTP_CLIENT_REFUSED);
    assert_int_equal(h.status, 0);
    harness_finish(&h);
}

static void test_http_client_request_retry_after(void **state)
{
    struct harness h;
    (void)state;
    harness_init(&h, NULL);
    run_one(&h, "POST", "/retry", "x", 0, 0);
    assert_int_equal(h.error, HTTP_CLIENT_OK);
    assert_int_equal(h.status, 503);
    assert_int_equal(h.retry_after_ms, 7000);
    assert_string_equal(h.body, "{}");

    run_one(&h, "POST", "/retry-date", "x", 0, 0);
    assert_int_equal(h.status, 429);
    assert_true(h.retry_after_ms >= 27000 && h.retry_after_ms <= 31000);

    /* Not carried over to the next response on the same handle. */
    run_one(&h, "POST", "/echo", "x", 0, 0);
    assert_int_equal(h.status, 201);
    assert_int_equal(h.retry_after_ms, -1);
    harness_finish(&h);
}

static void test_http_client_request_too_big(void **state)
{
    struct harness h;
    (void)state;
    harness_init(&h, NULL);
    run_one(&h, "GET", "/big", NULL, 0, 1000);
    assert_int_equal(h.error, HTTP_CLIENT_TOO_BIG);
    assert_int_equal(h.body_len, 0);
    run_one(&h, "GET", "/big", NULL, 0, 1500);
    assert_int_equal(h.error, HTTP_CLIENT_OK);
    assert_int_equal(h.body_len, 1500);
    harness_finish(&h);
}

static void test_http_client_request_bad_args(void **state)
{
    struct harness h;
    (void)state;
    harness_init(&h, NULL);
    struct http_client_request req = {.method = "GET", .url = NULL};
    assert_int_equal(http_client_request(h.client, &req, on_result_stop, &h), -EINVAL);
    req.url = "ftp://127.0.0.1/x"; /* only http and https are allowed */
    assert_int_equal(http_client_request(h.client, &req, on_result_stop, &h), 0);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_true(h.done);
    assert_int_equal(h.error, HTTP_CLIENT_OTHER);
    assert_int_equal(http_client_pending(h.client), 0);
    harness_finish(&h);
}

/* Close while a request waits on a server that never answers. */
struct close_case {
    struct harness *h;
    uv_timer_t t;
};

static void close_on_timer(uv_timer_t *t)
{
    struct close_case *cc = container_of(t, struct close_case, t);
    struct harness *h = cc->h;
    assert_int_equal(h->srv.requests, 1); /* the request reached the fake */
    assert_int_equal(http_client_pending(h->client), 1);
    http_client_close(h->client, harness_on_client_closed, h);
    /* The callback ran with the cancel, before close returned. */
    assert_int_equal(h->calls, 1);
    assert_int_equal(h->error, HTTP_CLIENT_CANCELED);
    assert_false(h->client_closed);
    /* Closing but not freed yet: new requests are refused. */
    struct http_client_request req = {.method = "GET", .url = "http://127.0.0.1:1/"};
    assert_int_equal(http_client_request(h->client, &req, on_result_stop, h), XRAY_ECLOSED);
    h->client = NULL;
    uv_close((uv_handle_t *)t, NULL);
}

static void on_result_record(const struct http_client_result *res, void *data)
{
    harness_record(res, data);
}

static void test_http_client_close_in_flight(void **state)
{
    struct harness h;
    struct close_case cc = {.h = &h};
    (void)state;
    harness_init(&h, NULL);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", h.srv.port);
    struct http_client_request req = {.method = "POST", .url = url, .body = "x", .body_len = 1};
    assert_int_equal(http_client_request(h.client, &req, on_result_record, &h), 0);
    assert_int_equal(uv_timer_init(&h.loop, &cc.t), 0);
    assert_int_equal(uv_timer_start(&cc.t, close_on_timer, 300, 0), 0);
    while (h.client != NULL)
        uv_run(&h.loop, UV_RUN_ONCE);
    harness_finish(&h);
    assert_int_equal(h.calls, 1);
}

/* Unknown hosts are classified by curl's codes: no test may ask DNS for a name. */
static void test_http_client_error_class(void **state)
{
    (void)state;
    assert_int_equal(client_error_class(CURLE_OK, 0, 0), HTTP_CLIENT_OK);
    assert_int_equal(client_error_class(CURLE_COULDNT_RESOLVE_HOST, 0, 0),
                     HTTP_CLIENT_UNKNOWN_HOST);
    assert_int_equal(client_error_class(CURLE_COULDNT_RESOLVE_PROXY, 0, 0),
                     HTTP_CLIENT_UNKNOWN_HOST);
    assert_int_equal(client_error_class(CURLE_OPERATION_TIMEDOUT, 0, 0), HTTP_CLIENT_TIMEOUT);
    assert_int_equal(client_error_class(CURLE_COULDNT_CONNECT, ECONNREFUSED, 0),
                     HTTP_CLIENT_REFUSED);
    assert_int_equal(client_error_class(CURLE_COULDNT_CONNECT, ETIMEDOUT, 0), HTTP_CLIENT_TIMEOUT);
    assert_int_equal(client_error_class(CURLE_COULDNT_CONNECT, ENETUNREACH, 0), HTTP_CLIENT_OTHER);
    assert_int_equal(client_error_class(CURLE_WRITE_ERROR, 0, 1), HTTP_CLIENT_TOO_BIG);
    assert_int_equal(client_error_class(CURLE_WRITE_ERROR, 0, 0), HTTP_CLIENT_OTHER);
    assert_int_equal(client_error_class(CURLE_SSL_CONNECT_ERROR, 0, 0), HTTP_CLIENT_OTHER);
    assert_int_equal(client_error_class(CURLE_RECV_ERROR, 0, 0), HTTP_CLIENT_OTHER);
    assert_int_equal(client_error_class(CURLE_GOT_NOTHING, 0, 0), HTTP_CLIENT_OTHER);
    assert_string_equal(http_client_error_name(HTTP_CLIENT_UNKNOWN_HOST), "unknown host");
}

/* ---- proxies ---- */

static void test_http_client_request_via_proxy(void **state)
{
    struct harness h;
    char url[128], want[128];
    (void)state;
    /* HTTP_PROXY is the fake; the origin is a dead port, so only the proxy can answer. */
    harness_init_proxy(&h, NULL, "http://127.0.0.1:%d", NULL, NULL);
    int dead = dead_port(&h.loop);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", dead);
    run_url(&h, "POST", url, "via");
    assert_int_equal(h.error, HTTP_CLIENT_OK);
    assert_int_equal(h.status, 201);
    assert_string_equal(h.body, "POST /echo x=42 via");
    assert_int_equal(h.srv.proxied, 1);
    assert_string_equal(h.srv.last_proxied, url);
    /* A request marked direct skips the proxy: it meets the dead origin. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", dead);
    struct http_client_request req = {.method = "GET", .url = url, .direct = true};
    h.done = 0;
    assert_int_equal(http_client_request(h.client, &req, on_result_stop, &h), 0);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_int_equal(h.error, HTTP_CLIENT_REFUSED);
    assert_int_equal(h.srv.proxied, 1);
    /* No HTTPS_PROXY: an https:// URL goes straight to its (dead) origin. */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/echo", dead);
    run_url(&h, "POST", url, "x");
    assert_int_equal(h.error, HTTP_CLIENT_REFUSED);
    assert_int_equal(h.srv.proxied, 1);
    assert_int_equal(h.srv.connects, 0);
    harness_finish(&h);

    /* -p: every URL through the fake, https:// ones by CONNECT (refused by the fake). */
    harness_init_proxy(&h, "127.0.0.1:%d", NULL, NULL, NULL);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/x", dead);
    run_url(&h, "POST", url, "x");
    assert_int_equal(h.srv.connects, 1);
    snprintf(want, sizeof(want), "127.0.0.1:%d", dead);
    assert_string_equal(h.srv.last_proxied, want);
    assert_int_equal(h.error, HTTP_CLIENT_OTHER); /* a transport failure, retried */
    assert_int_equal(h.status, 0);                /* the proxy's 403 is not the origin's */
    assert_non_null(strstr(h.message, "403"));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", dead);
    run_url(&h, "POST", url, "p");
    assert_int_equal(h.status, 201);
    assert_int_equal(h.srv.proxied, 1);
    harness_finish(&h);
}

static void test_http_client_request_no_proxy(void **state)
{
    struct harness h;
    char url[128];
    (void)state;
    /* The proxy is dead; NO_PROXY sends 127.0.0.1 around it, to the fake. */
    uv_loop_t tmp;
    assert_int_equal(uv_loop_init(&tmp), 0);
    int dead = dead_port(&tmp);
    assert_int_equal(uv_loop_close(&tmp), 0);
    char proxy[64];
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", dead);
    harness_init_proxy(&h, proxy, NULL, NULL, "example.com, 127.0.0.1");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", h.srv.port);
    run_url(&h, "POST", url, "direct");
    assert_int_equal(h.error, HTTP_CLIENT_OK);
    assert_int_equal(h.status, 201);
    assert_int_equal(h.srv.proxied, 0);
    harness_finish(&h);

    /* Without the entry, the same request meets the dead proxy: refused. */
    harness_init_proxy(&h, proxy, NULL, NULL, "example.com");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", h.srv.port);
    run_url(&h, "POST", url, "x");
    assert_int_equal(h.error, HTTP_CLIENT_REFUSED);
    assert_int_equal(h.srv.requests, 0);
    harness_finish(&h);
}

static void test_http_client_request_ignores_environment(void **state)
{
    struct harness h;
    char url[128], dead_url[64];
    (void)state;
    uv_loop_t tmp;
    assert_int_equal(uv_loop_init(&tmp), 0);
    snprintf(dead_url, sizeof(dead_url), "http://127.0.0.1:%d", dead_port(&tmp));
    assert_int_equal(uv_loop_close(&tmp), 0);
    static const char *const vars[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                       "HTTPS_PROXY", "ALL_PROXY",  "all_proxy"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        setenv(vars[i], dead_url, 1);
    setenv("NO_PROXY", "127.0.0.1", 1);
    setenv("no_proxy", "127.0.0.1", 1);
    /* No proxy configured: curl must not pick the variables up. */
    harness_init(&h, NULL);
    run_one(&h, "POST", "/echo", "env", 0, 0);
    assert_int_equal(h.error, HTTP_CLIENT_OK);
    assert_int_equal(h.status, 201);
    harness_finish(&h);
    /* A proxy configured: curl's own NO_PROXY reading must not bypass it. */
    harness_init_proxy(&h, NULL, "http://127.0.0.1:%d", NULL, NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", h.srv.port);
    run_url(&h, "POST", url, "env");
    assert_int_equal(h.status, 201);
    assert_int_equal(h.srv.proxied, 1);
    harness_finish(&h);
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    unsetenv("NO_PROXY");
    unsetenv("no_proxy");
}

/* SSL_CERT_FILE wins; a readable built-in default is kept; a missing one (a Debian
 * build on Amazon Linux) falls back to the first bundle found on this host. */
static void test_http_client_ca_file(void **state)
{
    (void)state;
    char out[HTTP_CLIENT_CA_PATH_MAX];
    assert_int_equal(http_client_ca_file("/my/ca.pem", "/etc/hostname", out, sizeof(out)), 1);
    assert_string_equal(out, "/my/ca.pem");
    assert_int_equal(http_client_ca_file(NULL, "/etc/hostname", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(http_client_ca_file("", "/nonexistent/ca.crt", out, sizeof(out)),
                     access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0 ? 1 : out[0] != 0);
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
        assert_string_equal(out, "/etc/ssl/certs/ca-certificates.crt");
    assert_int_equal(http_client_ca_file("/too/long", NULL, out, 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_client_request_status_body),
        cmocka_unit_test(test_http_client_request_keepalive),
        cmocka_unit_test(test_http_client_request_keepalive_server_closes),
        cmocka_unit_test(test_http_client_request_timeout),
        cmocka_unit_test(test_http_client_request_refused),
        cmocka_unit_test(test_http_client_request_retry_after),
        cmocka_unit_test(test_http_client_request_too_big),
        cmocka_unit_test(test_http_client_request_bad_args),
        cmocka_unit_test(test_http_client_close_in_flight),
        cmocka_unit_test(test_http_client_error_class),
        cmocka_unit_test(test_http_client_request_via_proxy),
        cmocka_unit_test(test_http_client_request_no_proxy),
        cmocka_unit_test(test_http_client_request_ignores_environment),
        cmocka_unit_test(test_http_client_ca_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
