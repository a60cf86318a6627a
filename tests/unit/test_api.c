/* SPDX-License-Identifier: Apache-2.0 */
/* /healthz against a live server: its keys, the budgets, and the --health-check probe.
 * The loop runs in the test's thread; a client thread makes blocking calls, records
 * what it saw, and asks the loop to close. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/healthz.h"
#include "budget.h"
#include "http/server.h"

#define NCALLS 8

struct call {
    int status;
    char raw[8192];
    const char *body; /* into raw */
};

struct api {
    uv_loop_t loop;
    uv_async_t done;
    uv_timer_t watchdog;
    uv_thread_t thread;
    struct http_server *server;
    int port;     /* TCP + API roles */
    int tcp_port; /* TCP role only */
    int v6_port;  /* [::1], metrics role only; 0 without IPv6 */
    bool closed;
    atomic_int status; /* enum healthz_status; the client thread changes it */
    const struct budgets *budgets;
    void (*client)(struct api *a);
    struct call calls[NCALLS];
    int probe_live, probe_v6, probe_closed;
    char probe_err[XRAY_ERR_LEN];
};

/* One blocking request with Connection: close; reads until the server closes. */
static void call(int port, const char *method, const char *path, const char *body, struct call *out)
{
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, strlen(body), body);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    out->status = -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || write(fd, req, (size_t)n) != n) {
        close(fd);
        return;
    }
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(out->raw) - 1 &&
           (r = read(fd, out->raw + got, sizeof(out->raw) - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    out->raw[got] = '\0';
    sscanf(out->raw, "HTTP/1.1 %d", &out->status);
    char *b = strstr(out->raw, "\r\n\r\n");
    out->body = b ? b + 4 : "";
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the test did not finish in time");
}

static void on_server_closed(void *data)
{
    struct api *a = data;
    a->closed = true;
}

static void on_done(uv_async_t *h)
{
    struct api *a = h->data;
    uv_thread_join(&a->thread);
    http_server_close(a->server, on_server_closed, a);
    uv_close((uv_handle_t *)&a->done, NULL);
    uv_close((uv_handle_t *)&a->watchdog, NULL);
}

static void client_thread(void *arg)
{
    struct api *a = arg;
    a->client(a);
    uv_async_send(&a->done);
}

static void snapshot(void *data, struct healthz_snapshot *out)
{
    struct api *a = data;
    out->status = (enum healthz_status)atomic_load(&a->status);
    out->version = "9.9.9";
    out->uptime_s = 42;
    out->upstream = "local";
    out->upstream_reason = "no region";
    out->queues[0] = (struct healthz_entry){"worker", 3};
    out->queue_count = 1;
    out->memory[0] = (struct healthz_entry){"pool", 100};
    out->memory[1] = (struct healthz_entry){"store \"x\"", 200};
    out->memory_count = 2;
    out->budgets = a->budgets;
}

/* Runs client in a thread against a server with the API routes, then closes it. */
static void run(struct api *a, void (*client)(struct api *a))
{
    char err[XRAY_ERR_LEN];
    assert_int_equal(uv_loop_init(&a->loop), 0);
    a->server = http_server_create(&a->loop, NULL);
    /* http_server_port() names the first listener with a role: the TCP-only one first. */
    assert_int_equal(http_server_listen(a->server, "127.0.0.1:0", HTTP_ROLE_TCP, err), 0);
    assert_int_equal(
        http_server_listen(a->server, "127.0.0.1:0", HTTP_ROLE_TCP | HTTP_ROLE_API, err), 0);
    a->tcp_port = http_server_port(a->server, HTTP_ROLE_TCP);
    a->port = http_server_port(a->server, HTTP_ROLE_API);
    /* A host without IPv6 skips that part. */
    if (http_server_listen(a->server, "[::1]:0", HTTP_ROLE_METRICS, err) == 0)
        a->v6_port = http_server_port(a->server, HTTP_ROLE_METRICS);
    assert_int_equal(healthz_register(a->server, snapshot, a), 0);
    uv_timer_init(&a->loop, &a->watchdog);
    uv_timer_start(&a->watchdog, on_watchdog, 20000, 0);
    uv_async_init(&a->loop, &a->done, on_done);
    a->done.data = a;
    a->client = client;
    assert_int_equal(uv_thread_create(&a->thread, client_thread, a), 0);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    assert_true(a->closed);
    assert_int_equal(uv_loop_close(&a->loop), 0);
}

static void healthz_client(struct api *a)
{
    call(a->port, "GET", "/healthz", "", &a->calls[0]);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", a->tcp_port);
    a->probe_live = healthz_probe(addr, 2000, a->probe_err);
    if (a->v6_port > 0) {
        char v6[64];
        snprintf(v6, sizeof(v6), "[::]:%d", a->v6_port); /* "any" probes the loopback */
        a->probe_v6 = healthz_probe(v6, 2000, NULL);
    }
    atomic_store(&a->status, HEALTHZ_SHUTTING_DOWN);
    call(a->port, "GET", "/healthz", "", &a->calls[1]);
    a->probe_closed = healthz_probe(addr, 2000, NULL); /* 503 is not healthy */
}

static void test_healthz(void **state)
{
    (void)state;
    struct api a = {0};
    run(&a, healthz_client);
    assert_int_equal(a.calls[0].status, 200);
    assert_string_equal(a.calls[0].body, "{\"status\":\"ok\",\"version\":\"9.9.9\",\"uptime_s\":42,"
                                         "\"upstream\":\"local\",\"upstream_reason\":\"no region\","
                                         "\"last_upstream_error\":null,\"queues\":{\"worker\":3},"
                                         "\"memory\":{\"pool\":100,\"store \\\"x\\\"\":200}}");
    assert_int_equal(a.probe_live, 0);
    assert_int_equal(a.probe_v6, 0);
    assert_int_equal(a.calls[1].status, 503);
    assert_non_null(strstr(a.calls[1].body, "\"status\":\"shutting_down\""));
    assert_int_equal(a.probe_closed, 1);
}

static size_t used_five(const void *ctx)
{
    (void)ctx;
    return 5;
}

static void healthz_once(struct api *a)
{
    call(a->port, "GET", "/healthz", "", &a->calls[0]);
}

/* The memory object lists every budget (use, then limit), their totals, then extras. */
static void test_healthz_budgets(void **state)
{
    (void)state;
    struct budgets bs;
    budgets_init(&bs);
    assert_int_equal(
        budgets_add(&bs, &(struct budget){.name = "buffer", .limit = 10, .used = used_five}), 0);
    assert_int_equal(budgets_add(&bs, &(struct budget){.name = "udp", .limit = 7}), 0);
    struct api a = {0};
    a.budgets = &bs;
    run(&a, healthz_once);
    assert_int_equal(a.calls[0].status, 200);
    assert_non_null(strstr(a.calls[0].body,
                           ",\"memory\":{\"buffer\":5,\"buffer_max\":10,\"udp\":7,\"udp_max\":7,"
                           "\"total\":12,\"total_max\":17,\"pool\":100,\"store \\\"x\\\"\":200}}"));
}

static void test_healthz_probe_closed_port(void **state)
{
    (void)state;
    /* Bind a port, then free it: nothing listens there. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    char addr[64], err[XRAY_ERR_LEN] = "";
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(healthz_probe(addr, 1000, err), 1);
    assert_non_null(strstr(err, "refused"));
    assert_int_equal(healthz_probe("not an address", 1000, err), 1);
    assert_non_null(strstr(err, "bad address"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: a peer that left is an EPIPE, not a kill */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_healthz_budgets),
        cmocka_unit_test(test_healthz_probe_closed_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
