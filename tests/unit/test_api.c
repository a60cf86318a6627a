/* SPDX-License-Identifier: Apache-2.0 */
/* The read API and /healthz against a live server: BatchGetTraces in the exact AWS
 * shape (and through the AWS CLI when one is installed), its errors, the /healthz keys,
 * and the --health-check probe. The loop runs in the test's thread; a client thread
 * makes blocking calls, records what it saw, and asks the loop to close. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/healthz.h"
#include "budget.h"
#include "api/traces.h"
#include "http/server.h"
#include "trace/store.h"

#define T1 "1-5759e988-bd862e3fe1be46a994272793"
#define T2 "1-5759e988-bd862e3fe1be46a994272794"
#define DOC_A                                                                                      \
    "{\"trace_id\":\"" T1 "\",\"id\":\"70de5b6f19ff9a0a\",\"name\":\"svc \\\"a\\\"\","             \
    "\"start_time\":1.0,\"end_time\":1.5}"
#define DOC_B                                                                                      \
    "{\"type\":\"subsegment\",\"trace_id\":\"" T1 "\",\"id\":\"70de5b6f19ff9a0b\","                \
    "\"parent_id\":\"70de5b6f19ff9a0a\",\"start_time\":1.1,\"end_time\":1.7}"
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
    struct store *store;
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
    char cli_out[8192];
    int cli_rc;
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
    a->store = store_create(1 << 20);
    /* http_server_port() names the first listener with a role: the TCP-only one first. */
    assert_int_equal(http_server_listen(a->server, "127.0.0.1:0", HTTP_ROLE_TCP, err), 0);
    assert_int_equal(
        http_server_listen(a->server, "127.0.0.1:0", HTTP_ROLE_TCP | HTTP_ROLE_API, err), 0);
    a->tcp_port = http_server_port(a->server, HTTP_ROLE_TCP);
    a->port = http_server_port(a->server, HTTP_ROLE_API);
    /* A host without IPv6 skips that part. */
    if (http_server_listen(a->server, "[::1]:0", HTTP_ROLE_METRICS, err) == 0)
        a->v6_port = http_server_port(a->server, HTTP_ROLE_METRICS);
    assert_int_equal(traces_register(a->server, a->store), 0);
    assert_int_equal(healthz_register(a->server, snapshot, a), 0);
    assert_int_equal(
        store_put(a->store, T1, "70de5b6f19ff9a0a", false, 1.0, 1.5, DOC_A, strlen(DOC_A), 1), 0);
    assert_int_equal(
        store_put(a->store, T1, "70de5b6f19ff9a0b", false, 1.1, 1.7, DOC_B, strlen(DOC_B), 2), 0);
    uv_timer_init(&a->loop, &a->watchdog);
    uv_timer_start(&a->watchdog, on_watchdog, 20000, 0);
    uv_async_init(&a->loop, &a->done, on_done);
    a->done.data = a;
    a->client = client;
    assert_int_equal(uv_thread_create(&a->thread, client_thread, a), 0);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    assert_true(a->closed);
    assert_int_equal(uv_loop_close(&a->loop), 0);
    store_destroy(a->store);
}

static void traces_client(struct api *a)
{
    call(a->port, "POST", "/Traces", "{\"TraceIds\":[\"" T1 "\",\"" T2 "\",\"" T1 "\"]}",
         &a->calls[0]);
    call(a->port, "POST", "/Traces", "{\"TraceIds\":[\"" T1 "\",\"b\",\"c\",\"d\",\"e\",\"f\"]}",
         &a->calls[1]);
    call(a->port, "POST", "/Traces", "{\"TraceIds\":[\"" T1 "\"", &a->calls[2]);
    call(a->port, "POST", "/Traces", "{\"TraceIds\":[]}", &a->calls[3]);
    call(a->port, "POST", "/Traces", "{\"TraceIds\":[\"" T2 "\"],\"NextToken\":\"x\"}",
         &a->calls[4]);
    call(a->port, "GET", "/Traces", "", &a->calls[5]);
    call(a->tcp_port, "POST", "/Traces", "{\"TraceIds\":[\"" T1 "\"]}", &a->calls[6]);
}

static void test_traces_batch_get(void **state)
{
    (void)state;
    struct api a = {0};
    run(&a, traces_client);
    assert_int_equal(a.calls[0].status, 200);
    const char *want =
        "{\"Traces\":[{\"Id\":\"" T1 "\",\"Duration\":0.7,\"LimitExceeded\":false,\"Segments\":["
        "{\"Id\":\"70de5b6f19ff9a0a\",\"Document\":\"{\\\"trace_id\\\":\\\"" T1
        "\\\",\\\"id\\\":\\\"70de5b6f19ff9a0a\\\",\\\"name\\\":\\\"svc \\\\\\\"a\\\\\\\"\\\","
        "\\\"start_time\\\":1.0,\\\"end_time\\\":1.5}\"},"
        "{\"Id\":\"70de5b6f19ff9a0b\",\"Document\":\"{\\\"type\\\":\\\"subsegment\\\","
        "\\\"trace_id\\\":\\\"" T1 "\\\",\\\"id\\\":\\\"70de5b6f19ff9a0b\\\","
        "\\\"parent_id\\\":\\\"70de5b6f19ff9a0a\\\",\\\"start_time\\\":1.1,"
        "\\\"end_time\\\":1.7}\"}]}],"
        "\"UnprocessedTraceIds\":[\"" T2 "\"]}";
    assert_string_equal(a.calls[0].body, want);
    /* And a JSON parser gives back each document exactly. */
    json_t *j = json_loads(a.calls[0].body, 0, NULL);
    json_t *segs = json_object_get(json_array_get(json_object_get(j, "Traces"), 0), "Segments");
    assert_string_equal(json_string_value(json_object_get(json_array_get(segs, 0), "Document")),
                        DOC_A);
    json_decref(j);
    assert_non_null(strstr(a.calls[0].raw, "Content-Type: application/json\r\n"));

    assert_int_equal(a.calls[1].status, 400);
    assert_string_equal(a.calls[1].body, "{\"__type\":\"InvalidRequestException\","
                                         "\"message\":\"Exceeding maximum query size: 5\"}");
    assert_non_null(strstr(a.calls[1].raw, "\r\nx-amzn-ErrorType: InvalidRequestException\r\n"));
    assert_int_equal(a.calls[2].status, 400);
    assert_non_null(strstr(a.calls[2].body, "\"__type\":\"InvalidRequestException\""));
    assert_int_equal(a.calls[3].status, 400);
    assert_int_equal(a.calls[4].status, 200);
    assert_string_equal(a.calls[4].body, "{\"Traces\":[],\"UnprocessedTraceIds\":[\"" T2 "\"]}");
    assert_int_equal(a.calls[5].status, 405);
    assert_int_equal(a.calls[6].status, 404); /* the read API is not on the -t address */
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

static void cli_client(struct api *a)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null "
             "AWS_EC2_METADATA_DISABLED=true aws xray batch-get-traces --trace-ids %s %s "
             "--endpoint-url http://127.0.0.1:%d --no-sign-request --region us-east-1 "
             "--output json 2>&1",
             T1, T2, a->port);
    FILE *p = popen(cmd, "r");
    size_t got = p ? fread(a->cli_out, 1, sizeof(a->cli_out) - 1, p) : 0;
    a->cli_out[got] = '\0';
    a->cli_rc = p ? pclose(p) : -1;
}

/* The AWS CLI (botocore) parses the answer: the shape really is the AWS one. */
static void test_traces_aws_cli(void **state)
{
    (void)state;
    if (system("aws --version >/dev/null 2>&1") != 0)
        skip();
    struct api a = {0};
    run(&a, cli_client);
    assert_int_equal(a.cli_rc, 0);
    json_t *j = json_loads(a.cli_out, 0, NULL);
    assert_non_null(j);
    json_t *t = json_array_get(json_object_get(j, "Traces"), 0);
    assert_string_equal(json_string_value(json_object_get(t, "Id")), T1);
    assert_true(json_real_value(json_object_get(t, "Duration")) > 0.69);
    json_t *seg = json_array_get(json_object_get(t, "Segments"), 1);
    assert_string_equal(json_string_value(json_object_get(seg, "Document")), DOC_B);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "UnprocessedTraceIds"), 0)), T2);
    json_decref(j);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: a peer that left is an EPIPE, not a kill */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traces_batch_get), cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_healthz_budgets),  cmocka_unit_test(test_healthz_probe_closed_port),
        cmocka_unit_test(test_traces_aws_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
