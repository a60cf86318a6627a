/* SPDX-License-Identifier: Apache-2.0 */
/* The TCP side's signing proxy against live sockets: an HTTP server with the proxy
 * registered last, xray_call over the real HTTP client, and a fake X-Ray kept in this
 * file that records each request and answers from a per-request script. The loop runs
 * in the test's thread; a client thread makes blocking calls and records what it saw;
 * the assertions run once the loop is closed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "api/sampling_proxy.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/healthz.h"
#include "fake_xray.h"
#include "aws/sigv4.h"
#include "buf.h"
#include "http/server.h"
#include "util.h"

#define NCALLS    12
#define REPLY_MAX (4u << 20)
#define TOKEN     "token/with+chars="

/* ---- the rig: server (proxy last), HTTP client, chain, xray, fake, client thread ---- */

struct reply {
    int status;
    char head[4096];
    char *body; /* owned */
    size_t body_len;
};

struct rig {
    uv_loop_t loop;
    uv_async_t done;
    uv_timer_t watchdog;
    uv_thread_t thread;
    struct fake_xray fake;
    struct http_server *server;
    struct http_client *http;
    struct credentials_chain *chain;
    struct stats stats;
    struct xray *xray;
    struct sampling_proxy *proxy;
    int shared_port, tcp_port, api_port;
    int closed;
    bool ecs_from_fake;
    void (*client)(struct rig *r);
    struct reply calls[NCALLS];
    const char *sent[NCALLS]; /* requests the client made, for the assertions */
    struct http_server_stats server_stats;
    struct sampling_proxy_stats proxy_stats;
};

static void snapshot(void *data, struct healthz_snapshot *out)
{
    (void)data;
    out->upstream = "aws";
}

static void traces_stub(struct http_request *req, struct http_response *res, void *data)
{
    (void)req, (void)data;
    http_response_send(res, 200, "text/plain", "traces\n", 7);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the test did not finish in time");
}

static void on_closed(void *data)
{
    ((struct rig *)data)->closed++;
}

static void on_done(uv_async_t *h)
{
    struct rig *r = h->data;
    uv_thread_join(&r->thread);
    http_server_get_stats(r->server, &r->server_stats);
    if (r->proxy != NULL)
        sampling_proxy_get_stats(r->proxy, &r->proxy_stats);
    http_server_close(r->server, on_closed, r);
    http_client_close(r->http, on_closed, r);
    fake_xray_close(&r->fake);
    uv_close((uv_handle_t *)&r->done, NULL);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
}

static void client_thread(void *arg)
{
    struct rig *r = arg;
    r->client(r);
    uv_async_send(&r->done);
}

/* Credentials come from the environment, through the default chain. */
static void set_credentials(const char *key, const char *token)
{
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/xrayd-test/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/xrayd-test/config", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    const char *unset[] = {"AWS_PROFILE",
                           "AWS_SESSION_TOKEN",
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                           "AWS_WEB_IDENTITY_TOKEN_FILE",
                           "AWS_ROLE_ARN"};
    for (size_t i = 0; i < ARRAY_SIZE(unset); i++)
        unsetenv(unset[i]);
    if (key == NULL) {
        unsetenv("AWS_ACCESS_KEY_ID");
        unsetenv("AWS_SECRET_ACCESS_KEY");
        return;
    }
    setenv("AWS_ACCESS_KEY_ID", key, 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    if (token != NULL)
        setenv("AWS_SESSION_TOKEN", token, 1);
}

/* Runs r->client against a server with: GET /healthz (every role), a stand-in POST
 * /Traces (API role), then the proxy (aws unless local). Listeners: TCP only, API
 * only, and one with every role (the default deployment). endpoint NULL = the fake. */
static void run(struct rig *r, bool local, const char *endpoint, unsigned timeout_ms)
{
    char err[XRAY_ERR_LEN], url[64];
    assert_int_equal(uv_loop_init(&r->loop), 0);
    fake_xray_start(&r->fake, &r->loop);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", r->fake.port);

    const struct http_server_limits limits = {.max_header_bytes = 4096, .max_body_bytes = 65536};
    r->server = http_server_create(&r->loop, &limits);
    assert_non_null(r->server);
    /* http_server_port() names the first listener with any of the roles asked. */
    assert_int_equal(http_server_listen(r->server, "127.0.0.1:0", HTTP_ROLE_TCP, err), 0);
    assert_int_equal(http_server_listen(r->server, "127.0.0.1:0", HTTP_ROLE_API, err), 0);
    assert_int_equal(http_server_listen(r->server, "127.0.0.1:0", HTTP_ROLE_ALL, err), 0);
    r->tcp_port = http_server_port(r->server, HTTP_ROLE_TCP);
    r->api_port = http_server_port(r->server, HTTP_ROLE_API);
    r->shared_port = http_server_port(r->server, HTTP_ROLE_METRICS);
    struct http_server *s = r->server;
    assert_int_equal(healthz_register(s, snapshot, r), 0);
    assert_int_equal(http_server_route(s, HTTP_ROLE_API, "POST", "/Traces", traces_stub, r), 0);

    r->http = http_client_create(&r->loop, NULL);
    assert_non_null(r->http);
    if (r->ecs_from_fake) { /* the fake plays a failing ECS credentials endpoint */
        char ecs[96];
        snprintf(ecs, sizeof(ecs), "http://127.0.0.1:%d/credentials", r->fake.port);
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", ecs, 1);
    }
    const struct credentials_options co = {.http = r->http, .region = "us-east-1"};
    r->chain = credentials_chain_create(&co);
    assert_non_null(r->chain);
    struct xray_options xo = {.http = r->http,
                              .creds = r->chain,
                              .endpoint = endpoint != NULL ? endpoint : url,
                              .region = "us-east-1",
                              .user_agent = "xrayd/test",
                              .stats = &r->stats,
                              .timeout_ms = timeout_ms};
    r->xray = xray_create(&xo);
    assert_non_null(r->xray);
    if (local)
        assert_int_equal(sampling_proxy_register_local(s), 0);
    else
        assert_int_equal(sampling_proxy_register(s, r->xray, NULL, &r->proxy, err), 0);

    assert_int_equal(uv_timer_init(&r->loop, &r->watchdog), 0);
    assert_int_equal(uv_timer_start(&r->watchdog, on_watchdog, 30000, 0), 0);
    assert_int_equal(uv_async_init(&r->loop, &r->done, on_done), 0);
    r->done.data = r;
    assert_int_equal(uv_thread_create(&r->thread, client_thread, r), 0);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(r->closed, 2);
    xray_destroy(r->xray);
    credentials_chain_destroy(r->chain);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

static void rig_free(struct rig *r)
{
    for (int i = 0; i < NCALLS; i++)
        free(r->calls[i].body);
    fake_xray_free(&r->fake);
}

/* One blocking exchange of raw bytes; reads one response (Content-Length) or to EOF. */
static void exchange(int port, const char *raw, size_t raw_len, struct reply *out)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    out->status = -1;
    out->body = calloc(1, REPLY_MAX);
    assert_non_null(out->body);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, raw, raw_len) != (ssize_t)raw_len) {
        close(fd);
        return;
    }
    char *buf = out->body;
    size_t got = 0, need = (size_t)-1;
    ssize_t n;
    while (got < need && got < REPLY_MAX - 1 &&
           (n = read(fd, buf + got, REPLY_MAX - 1 - got)) > 0) {
        got += (size_t)n;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL && need == (size_t)-1) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (cl != NULL && cl < end)
                need = (size_t)(end - buf) + 4 + strtoul(cl + 17, NULL, 10);
        }
    }
    close(fd);
    sscanf(buf, "HTTP/1.1 %d", &out->status);
    char *end = strstr(buf, "\r\n\r\n");
    size_t head = end != NULL ? (size_t)(end - buf) + 4 : got;
    snprintf(out->head, sizeof(out->head), "%.*s", (int)head, buf);
    out->body_len = got - head;
    memmove(buf, buf + head, out->body_len);
    buf[out->body_len] = '\0';
}

static void call(int port, const char *method, const char *path, const char *headers,
                 const char *body, struct reply *out)
{
    size_t cap = strlen(method) + strlen(path) + strlen(headers) + strlen(body) + 128;
    char *req = malloc(cap);
    assert_non_null(req);
    int n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, headers, strlen(body), body);
    assert_true(n > 0 && (size_t)n < cap);
    exchange(port, req, (size_t)n, out);
    free(req);
}

/* The JSON error body of a reply: __type and message (message borrowed from j). */
static json_t *error_of(const struct reply *c, const char *type)
{
    char v[256];
    assert_string_equal(fake_xray_header(c->head, "Content-Type", v, sizeof(v)),
                        "application/json");
    assert_string_equal(fake_xray_header(c->head, "x-amzn-ErrorType", v, sizeof(v)), type);
    json_t *j = json_loadb(c->body, c->body_len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "__type")), type);
    assert_non_null(json_string_value(json_object_get(j, "message")));
    return j;
}

static bool message_has(json_t *j, const char *text)
{
    return strstr(json_string_value(json_object_get(j, "message")), text) != NULL;
}

/* The fake saw xrayd's own headers only, and a signature that sigv4_sign gives again
 * from what was captured. token NULL: long-term keys. */
static void check_forwarded(const struct rig *r, int i, const char *path, const char *token)
{
    const struct fake_xray_req *q = &r->fake.reqs[i];
    char line[160], names[512], host[64], v[256], stamp[64], date[32], auth[1024];
    snprintf(line, sizeof(line), "POST %s HTTP/1.1\r\n", path);
    assert_true(strncmp(q->head, line, strlen(line)) == 0);
    fake_xray_header_names(q->head, names, sizeof(names));
    assert_string_equal(names, token != NULL
                                   ? "accept;authorization;content-length;content-type;host;"
                                     "user-agent;x-amz-date;x-amz-security-token;"
                                     "x-amzn-xray-timestamp"
                                   : "accept;authorization;content-length;content-type;host;"
                                     "user-agent;x-amz-date;x-amzn-xray-timestamp");
    snprintf(host, sizeof(host), "127.0.0.1:%d", r->fake.port);
    assert_string_equal(fake_xray_header(q->head, "Host", v, sizeof(v)), host);
    assert_string_equal(fake_xray_header(q->head, "Content-Type", v, sizeof(v)),
                        "application/json");
    assert_string_equal(fake_xray_header(q->head, "User-Agent", v, sizeof(v)), "xrayd/test");
    if (token != NULL)
        assert_string_equal(fake_xray_header(q->head, "X-Amz-Security-Token", v, sizeof(v)), token);
    fake_xray_header(q->head, "Authorization", auth, sizeof(auth));
    assert_non_null(strstr(auth, token != NULL ? "SignedHeaders=content-type;host;x-amz-date;"
                                                 "x-amz-security-token;x-amzn-xray-timestamp, "
                                               : "SignedHeaders=content-type;host;x-amz-date;"
                                                 "x-amzn-xray-timestamp, "));
    assert_non_null(strstr(auth, "Credential=AKIDTEST/"));
    fake_xray_header(q->head, "X-Amzn-Xray-Timestamp", stamp, sizeof(stamp));
    fake_xray_header(q->head, "X-Amz-Date", date, sizeof(date));
    struct tm tm = {0};
    assert_non_null(strptime(date, "%Y%m%dT%H%M%SZ", &tm));
    const struct sigv4_header hs[] = {{"content-type", "application/json"},
                                      {"x-amzn-xray-timestamp", stamp}};
    const struct sigv4_request sr = {.method = "POST",
                                     .host = host,
                                     .path = path,
                                     .headers = hs,
                                     .header_count = 2,
                                     .body = q->body,
                                     .body_len = q->body_len,
                                     .region = "us-east-1",
                                     .service = "xray",
                                     .now_s = (int64_t)timegm(&tm)};
    struct aws_credentials creds = {0};
    struct sigv4_signature sig;
    char err[XRAY_ERR_LEN];
    assert_int_equal(aws_credentials_set(&creds, "AKIDTEST", "secret", token, "test", err), 0);
    assert_int_equal(sigv4_sign(&sr, &creds, &sig, err), 0);
    assert_string_equal(sig.authorization, auth);
    aws_credentials_clear(&creds);
}

/* ---- the allow-list ---- */

static void test_sampling_proxy_parse_paths_list(void **state)
{
    struct sampling_proxy_paths p;
    char err[XRAY_ERR_LEN], list[4096];
    (void)state;
    assert_int_equal(sampling_proxy_parse_paths(
                         " /GetSamplingRules ,\t/SamplingTargets,, ,/GetSamplingRules,", &p, err),
                     0);
    assert_int_equal(p.count, 2);
    assert_string_equal(p.path[0], "/GetSamplingRules");
    assert_string_equal(p.path[1], "/SamplingTargets");
    assert_int_equal(sampling_proxy_parse_paths("/TraceSummaries,", &p, err), 0);
    assert_int_equal(p.count, 1);
    assert_string_equal(p.path[0], "/TraceSummaries");
    /* Unset or blank: the three sampling APIs. */
    assert_int_equal(sampling_proxy_parse_paths(NULL, &p, err), 0);
    assert_int_equal(p.count, 3);
    assert_string_equal(p.path[2], "/SamplingStatisticSummaries");
    assert_int_equal(sampling_proxy_parse_paths(" \t", &p, err), 0);
    assert_int_equal(p.count, 3);

    assert_int_equal(sampling_proxy_parse_paths(", ,,", &p, err), XRAY_ECONFIG);
    assert_non_null(strstr(err, "no path"));
    assert_int_equal(sampling_proxy_parse_paths("/a,GetSamplingRules", &p, err), XRAY_ECONFIG);
    assert_string_equal(err, "\"GetSamplingRules\": a path starts with '/'");
    const char *bad[] = {"/Get Sampling", "/a?b", "/a#b", "/a*", "/a%20", "/caf\xc3\xa9", "/a\r"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(sampling_proxy_parse_paths(bad[i], &p, err), XRAY_ECONFIG);
        assert_non_null(strstr(err, "only letters, digits"));
    }
    memset(list, 'a', 200);
    list[0] = '/';
    list[127] = '\0'; /* 127 bytes: fits */
    assert_int_equal(sampling_proxy_parse_paths(list, &p, err), 0);
    list[127] = 'a';
    list[128] = '\0';
    assert_int_equal(sampling_proxy_parse_paths(list, &p, err), XRAY_ECONFIG);
    assert_non_null(strstr(err, "shorter than 128"));
    list[0] = '\0';
    for (int i = 0; i < SAMPLING_PROXY_MAX_PATHS; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "/P%d,", i);
    assert_int_equal(sampling_proxy_parse_paths(list, &p, err), 0);
    assert_int_equal(p.count, SAMPLING_PROXY_MAX_PATHS);
    strcat(list, "/one-more");
    assert_int_equal(sampling_proxy_parse_paths(list, &p, err), XRAY_ECONFIG);
    assert_non_null(strstr(err, "more than 16"));
}

/* ---- refusals and routing on shared and separate listeners ---- */

static void forbidden_client(struct rig *r)
{
    call(r->shared_port, "POST", "/TraceSummaries", "", "{}", &r->calls[0]);
    call(r->shared_port, "GET", "/GetSamplingRules", "", "", &r->calls[1]);
    call(r->tcp_port, "POST", "/DeleteSamplingRule", "", "{\"RuleName\":\"x\"}", &r->calls[2]);
    call(r->shared_port, "GET", "/healthz", "", "", &r->calls[3]);
    call(r->tcp_port, "GET", "/healthz", "", "", &r->calls[4]);
    call(r->shared_port, "POST", "/Traces", "", "{}", &r->calls[5]);
    call(r->tcp_port, "POST", "/Traces", "", "{}", &r->calls[6]);
    call(r->api_port, "POST", "/GetSamplingRules", "", "{}", &r->calls[7]);
    call(r->shared_port, "POST", "/GetSamplingRules?x=1", "", "{}", &r->calls[8]);
    call(r->tcp_port, "POST", "/SamplingTargets", "Content-Encoding: gzip\r\n", "xx", &r->calls[9]);
    call(r->tcp_port, "POST", "/getsamplingrules", "", "{}", &r->calls[10]);
    call(r->tcp_port, "POST", "/GetSamplingRules/", "", "{}", &r->calls[11]);
}

static void test_sampling_proxy_forbidden(void **state)
{
    struct rig r = {0};
    (void)state;
    set_credentials("AKIDTEST", NULL);
    r.client = forbidden_client;
    run(&r, false, NULL, 0);
    assert_int_equal(r.calls[0].status, 403);
    json_t *j = error_of(&r.calls[0], "AccessDeniedException");
    assert_true(message_has(j, "--proxy-allow-paths"));
    assert_true(message_has(j, "Xrayd.ProxyAllowPaths"));
    assert_true(message_has(j, SAMPLING_PROXY_DEFAULT_PATHS));
    assert_true(message_has(j, "POST /TraceSummaries"));
    json_decref(j);
    assert_int_equal(r.calls[1].status, 403); /* an allowed path, but not a POST */
    j = error_of(&r.calls[1], "AccessDeniedException");
    assert_true(message_has(j, "GET /GetSamplingRules is not"));
    json_decref(j);
    assert_int_equal(r.calls[2].status, 403);
    /* Explicit routes beat the catch-all: /healthz everywhere, the API on its roles. */
    assert_int_equal(r.calls[3].status, 200);
    assert_int_equal(r.calls[4].status, 200);
    assert_int_equal(r.calls[5].status, 200);
    assert_string_equal(r.calls[5].body, "traces\n");
    assert_int_equal(r.calls[6].status, 403); /* the API is not on the -t address */
    assert_int_equal(r.calls[7].status, 404); /* nor the proxy on the API's */
    assert_int_equal(r.calls[8].status, 400);
    json_decref(error_of(&r.calls[8], "InvalidRequestException"));
    assert_int_equal(r.calls[9].status, 415);
    assert_int_equal(r.calls[10].status, 403); /* paths are exact */
    assert_int_equal(r.calls[11].status, 403);
    assert_int_equal(r.fake.nreqs, 0);
    assert_int_equal(r.proxy_stats.forbidden, 6);
    assert_int_equal(r.proxy_stats.bad_request, 2);
    assert_int_equal(r.proxy_stats.forwarded, 0);
    rig_free(&r);
}

/* ---- forwarding ---- */

#define RULES_BODY                                                                                 \
    "{\"SamplingRuleRecords\":[{\"SamplingRule\":{\"RuleName\":\"caf\xc3\xa9 \\\"q\\\"\","         \
    "\"Priority\":1,\"FixedRate\":0.5,\"ReservoirSize\":1,\"ServiceName\":\"*\",\"ServiceType\":"  \
    "\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\",\"ResourceARN\":\"*\","           \
    "\"Version\":1,\"Attributes\":{}},\"CreatedAt\":1.7E9,\"ModifiedAt\":1700000000}]}"
#define OK_HEAD "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-amzn-RequestId: r-1\r\n"

static char big_ok[900 * 1024], too_big[REPLY_MAX / 2], replies[4][1024];

static void forward_client(struct rig *r)
{
    /* A chunked body, every hop-by-hop header and the client's own signature headers:
     * none of them may reach X-Ray. */
    const char *a = "{\"Nex", *b = "tToken\":\"abc\"}";
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "POST /GetSamplingRules HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Keep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n"
                     "Trailer: X-Foo\r\nUpgrade: h2c\r\nProxy-Authorization: Basic eDp5\r\n"
                     "Proxy-Connection: keep-alive\r\nAuthorization: AWS4-HMAC-SHA256 "
                     "Credential=AKIDCLIENT/20200101/us-east-1/xray/aws4_request, "
                     "SignedHeaders=host, Signature=00\r\nX-Amz-Date: 20200101T000000Z\r\n"
                     "X-Amz-Security-Token: client-token\r\nX-Amz-Content-Sha256: UNSIGNED-PAYLOAD"
                     "\r\nContent-Type: text/plain\r\nUser-Agent: sdk/1\r\n\r\n"
                     "%zx\r\n%s\r\n%zx\r\n%s\r\n0\r\n\r\n",
                     strlen(a), a, strlen(b), b);
    exchange(r->shared_port, req, (size_t)n, &r->calls[0]);
    call(r->tcp_port, "POST", "/SamplingTargets", "", "{}", &r->calls[1]);
    call(r->tcp_port, "POST", "/SamplingStatisticSummaries", "", "{}", &r->calls[2]);
}

static void test_sampling_proxy_forward_signed(void **state)
{
    struct rig r = {0};
    char v[256];
    (void)state;
    set_credentials("AKIDTEST", TOKEN);
    r.fake.script[0] = fake_xray_reply(replies[0], sizeof(replies[0]), OK_HEAD, RULES_BODY);
    /* Large replies pass whole, up to the HTTP client's cap (every byte but NUL). */
    for (size_t i = 0; i < sizeof(big_ok) - 1; i++)
        big_ok[i] = (char)(1 + i % 255);
    char *head = malloc(sizeof(big_ok) + 128);
    assert_non_null(head);
    r.fake.script[1] = fake_xray_reply(head, sizeof(big_ok) + 128, OK_HEAD, big_ok);
    memset(too_big, 'x', sizeof(too_big) - 1);
    char *over = malloc(sizeof(too_big) + 128);
    assert_non_null(over);
    r.fake.script[2] = fake_xray_reply(over, sizeof(too_big) + 128, OK_HEAD, too_big);
    r.client = forward_client;
    run(&r, false, NULL, 0);

    assert_int_equal(r.fake.nreqs, 3);
    check_forwarded(&r, 0, "/GetSamplingRules", TOKEN);
    assert_string_equal(r.fake.reqs[0].body, "{\"NextToken\":\"abc\"}");
    assert_int_equal(r.calls[0].status, 200);
    assert_string_equal(fake_xray_header(r.calls[0].head, "Content-Type", v, sizeof(v)),
                        "application/json");
    assert_int_equal(r.calls[0].body_len, strlen(RULES_BODY));
    assert_memory_equal(r.calls[0].body, RULES_BODY, strlen(RULES_BODY));

    check_forwarded(&r, 1, "/SamplingTargets", TOKEN);
    assert_int_equal(r.calls[1].status, 200);
    assert_int_equal(r.calls[1].body_len, strlen(big_ok));
    assert_memory_equal(r.calls[1].body, big_ok, strlen(big_ok));

    check_forwarded(&r, 2, "/SamplingStatisticSummaries", TOKEN);
    assert_int_equal(r.calls[2].status, 502);
    json_t *j = error_of(&r.calls[2], "BadGatewayException");
    assert_true(message_has(j, "larger than"));
    json_decref(j);
    assert_int_equal(r.proxy_stats.forwarded, 3);
    assert_int_equal(r.proxy_stats.answered, 2);
    assert_int_equal(r.proxy_stats.upstream_failed, 1);
    assert_int_equal(r.proxy_stats.in_flight, 0);
    free(head);
    free(over);
    rig_free(&r);
}

static void errors_client(struct rig *r)
{
    for (int i = 0; i < 3; i++)
        call(r->tcp_port, "POST", i == 1 ? "/SamplingTargets" : "/GetSamplingRules", "", "{}",
             &r->calls[i]);
}

/* X-Ray's errors come back as X-Ray sent them; Retry-After too. */
static void test_sampling_proxy_upstream_errors_pass_through(void **state)
{
    static const char *bodies[] = {
        "{\"__type\":\"InternalFailure\",\"message\":\"boom\"}",
        "{\"__type\":\"ThrottledException\",\"message\":\"Rate exceeded\"}",
        "{\"__type\":\"InvalidRequestException\",\"message\":\"bad \\\"input\\\"\"}"};
    struct rig r = {0};
    char v[64];
    (void)state;
    set_credentials("AKIDTEST", NULL);
    r.fake.script[0] = fake_xray_reply(replies[0], sizeof(replies[0]),
                                       "HTTP/1.1 500 Internal Server Error\r\nContent-Type: "
                                       "application/json\r\nx-amzn-ErrorType: InternalFailure\r\n",
                                       bodies[0]);
    r.fake.script[1] =
        fake_xray_reply(replies[1], sizeof(replies[1]),
                        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n", bodies[1]);
    r.fake.script[2] =
        fake_xray_reply(replies[2], sizeof(replies[2]), "HTTP/1.1 400 Bad Request\r\n", bodies[2]);
    r.client = errors_client;
    run(&r, false, NULL, 0);
    const int want[] = {500, 429, 400};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r.calls[i].status, want[i]);
        assert_int_equal(r.calls[i].body_len, strlen(bodies[i]));
        assert_memory_equal(r.calls[i].body, bodies[i], strlen(bodies[i]));
    }
    assert_string_equal(fake_xray_header(r.calls[1].head, "Retry-After", v, sizeof(v)), "3");
    assert_int_equal(r.proxy_stats.answered, 3);
    rig_free(&r);
}

static void one_client(struct rig *r)
{
    call(r->tcp_port, "POST", "/GetSamplingRules", "", "{}", &r->calls[0]);
    call(r->shared_port, "POST", "/SamplingTargets", "", "{}", &r->calls[1]);
}

static void test_sampling_proxy_upstream_timeout(void **state)
{
    struct rig r = {0};
    (void)state;
    set_credentials("AKIDTEST", NULL);
    r.fake.script[0] = NULL; /* never answers */
    r.fake.script[1] = fake_xray_reply(replies[0], sizeof(replies[0]), OK_HEAD, "{}");
    r.client = one_client;
    run(&r, false, NULL, 300);
    assert_int_equal(r.calls[0].status, 504);
    json_t *j = error_of(&r.calls[0], "GatewayTimeoutException");
    assert_true(message_has(j, "did not answer in time"));
    json_decref(j);
    assert_int_equal(r.calls[1].status, 200); /* the next call is not held up */
    assert_int_equal(r.fake.nreqs, 2);
    assert_int_equal(r.proxy_stats.timeouts, 1);
    rig_free(&r);

    /* Nothing listens there: 502. */
    struct rig r2 = {0};
    r2.client = one_client;
    run(&r2, false, "http://127.0.0.1:1", 300);
    assert_int_equal(r2.calls[0].status, 502);
    j = error_of(&r2.calls[0], "BadGatewayException");
    assert_true(message_has(j, "could not reach X-Ray"));
    json_decref(j);
    rig_free(&r2);
}

static void test_sampling_proxy_no_credentials(void **state)
{
    struct rig r = {0};
    (void)state;
    set_credentials(NULL, NULL);
    r.client = one_client;
    run(&r, false, NULL, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r.calls[i].status, 503);
        json_t *j = error_of(&r.calls[i], "NoCredentialsException");
        assert_true(message_has(j, "no AWS credentials"));
        assert_true(message_has(j, "unsigned"));
        json_decref(j);
    }
    assert_int_equal(r.fake.nreqs, 0); /* never sent unsigned */
    assert_int_equal(r.proxy_stats.no_credentials, 2);
    rig_free(&r);

    /* Credentials that must be fetched first, and then fail: the answer comes later,
     * and is the same. The second call gets the remembered failure at once. */
    struct rig r2 = {.ecs_from_fake = true};
    r2.fake.script[0] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
    r2.client = one_client;
    run(&r2, false, NULL, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r2.calls[i].status, 503);
        json_decref(error_of(&r2.calls[i], "NoCredentialsException"));
    }
    assert_int_equal(r2.fake.nreqs, 1);
    assert_true(strncmp(r2.fake.reqs[0].head, "GET /credentials ", 17) == 0);
    assert_int_equal(r2.proxy_stats.no_credentials, 2);
    assert_int_equal(r2.proxy_stats.in_flight, 0);
    rig_free(&r2);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
}

/* ---- the SDKs' real requests (tests/data/http) ---- */

static const char *const sdk_files[] = {"python-sdk-2.15.0-01",
                                        "python-sdk-2.15.0-02",
                                        "node-sdk-3.12.0-01",
                                        "node-sdk-3.12.0-02",
                                        "adot-node-0.13.0-t1s-and-sampling-01",
                                        "adot-node-0.13.0-t1s-and-sampling-02"};
#define NSDK ARRAY_SIZE(sdk_files)

static json_t *load_http(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/http/%s.json", XRAYD_TEST_DATA, name);
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    return j;
}

/* The request exactly as the SDK sent it: its method, path, headers and body. */
static char *sdk_request(json_t *j)
{
    struct buf b;
    buf_init(&b, 65536);
    assert_int_equal(buf_appendf(&b, "%s %s HTTP/1.1\r\n",
                                 json_string_value(json_object_get(j, "method")),
                                 json_string_value(json_object_get(j, "path"))),
                     0);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(j, "headers"), k, v)
        assert_int_equal(buf_appendf(&b, "%s: %s\r\n", k, json_string_value(v)), 0);
    assert_int_equal(buf_appendf(&b, "\r\n%s", json_string_value(json_object_get(j, "body"))), 0);
    return b.data;
}

static void sdk_client(struct rig *r)
{
    for (size_t i = 0; i < NSDK; i++)
        exchange(i % 2 ? r->shared_port : r->tcp_port, r->sent[i], strlen(r->sent[i]),
                 &r->calls[i]);
}

static void test_sampling_proxy_sdk_requests(void **state)
{
    struct rig r = {0};
    json_t *files[NSDK];
    (void)state;
    set_credentials("AKIDTEST", NULL);
    for (size_t i = 0; i < NSDK; i++) {
        files[i] = load_http(sdk_files[i]);
        r.sent[i] = sdk_request(files[i]);
        r.fake.script[i] = fake_xray_reply(replies[i % 2], sizeof(replies[0]), OK_HEAD,
                                           i % 2 ? "{\"SamplingTargetDocuments\":[]}" : RULES_BODY);
    }
    r.client = sdk_client;
    run(&r, false, NULL, 0);
    assert_int_equal(r.fake.nreqs, NSDK);
    for (size_t i = 0; i < NSDK; i++) {
        const char *path = json_string_value(json_object_get(files[i], "path"));
        const char *body = json_string_value(json_object_get(files[i], "body"));
        assert_int_equal(r.calls[i].status, 200);
        check_forwarded(&r, (int)i, path, NULL); /* no amz-sdk-*, no client User-Agent */
        assert_int_equal(r.fake.reqs[i].body_len, strlen(body));
        assert_memory_equal(r.fake.reqs[i].body, body, strlen(body));
        free((char *)r.sent[i]);
    }
    /* ADOT's bodiless GetSamplingRules goes out bodiless, as the reference daemon sent it. */
    json_t *ref = load_http("xray-daemon-3.5.0-upstream-sampling-requests-04");
    assert_string_equal(json_string_value(json_object_get(ref, "path")), "/GetSamplingRules");
    assert_string_equal(r.fake.reqs[4].body, json_string_value(json_object_get(ref, "body")));
    char v[32];
    assert_string_equal(fake_xray_header(r.fake.reqs[4].head, "Content-Length", v, sizeof(v)), "0");
    json_decref(ref);
    for (size_t i = 0; i < NSDK; i++)
        json_decref(files[i]);
    rig_free(&r);
}

/* ---- the server's own limits still apply on the TCP side ---- */

static void limits_client(struct rig *r)
{
    static char big[70000], hdr[5000];
    const char *garbage = "HELLO WORLD\r\n\r\n";
    exchange(r->tcp_port, garbage, strlen(garbage), &r->calls[0]);
    memset(big, 'x', sizeof(big) - 1);
    call(r->tcp_port, "POST", "/SamplingTargets", "", big, &r->calls[1]);
    memset(hdr, 'p', sizeof(hdr) - 3);
    memcpy(hdr, "X-Pad: ", 7);
    memcpy(hdr + sizeof(hdr) - 3, "\r\n", 3);
    call(r->tcp_port, "POST", "/SamplingTargets", hdr, "{}", &r->calls[2]);
}

static void test_sampling_proxy_server_limits(void **state)
{
    struct rig r = {0};
    (void)state;
    set_credentials("AKIDTEST", NULL);
    r.client = limits_client;
    run(&r, false, NULL, 0);
    assert_int_equal(r.calls[0].status, 400);
    assert_int_equal(r.calls[1].status, 413);
    assert_int_equal(r.calls[2].status, 431);
    assert_int_equal(r.server_stats.rejected[HTTP_REJECT_BAD_REQUEST], 1);
    assert_int_equal(r.server_stats.rejected[HTTP_REJECT_BODY_TOO_BIG], 1);
    assert_int_equal(r.server_stats.rejected[HTTP_REJECT_HEADER_TOO_BIG], 1);
    assert_int_equal(r.fake.nreqs, 0);
    assert_int_equal(r.proxy_stats.forwarded + r.proxy_stats.forbidden, 0);
    rig_free(&r);
}

/* ---- local mode ---- */

static void local_client(struct rig *r)
{
    call(r->tcp_port, "POST", "/GetSamplingRules", "", "", &r->calls[0]);
    call(r->shared_port, "POST", "/SamplingTargets", "", "{}", &r->calls[1]);
    call(r->tcp_port, "GET", "/GetSamplingRules", "", "", &r->calls[2]);
    call(r->tcp_port, "POST", "/TraceSummaries", "", "{}", &r->calls[3]);
    call(r->shared_port, "POST", "/Traces", "", "{}", &r->calls[4]);
    call(r->shared_port, "GET", "/healthz", "", "", &r->calls[5]);
}

static void test_sampling_proxy_local_mode(void **state)
{
    struct rig r = {0};
    (void)state;
    set_credentials("AKIDTEST", NULL);
    r.client = local_client;
    run(&r, true, NULL, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r.calls[i].status, 503);
        json_t *j = error_of(&r.calls[i], "ServiceUnavailableException");
        assert_true(message_has(j, "no sampling upstream in local mode"));
        json_decref(j);
    }
    assert_int_equal(r.calls[2].status, 405);
    assert_int_equal(r.calls[3].status, 404); /* nothing is forwarded: no 403 to explain */
    assert_int_equal(r.calls[4].status, 200);
    assert_int_equal(r.calls[5].status, 200);
    assert_int_equal(r.fake.nreqs, 0);
    rig_free(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon does */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampling_proxy_parse_paths_list),
        cmocka_unit_test(test_sampling_proxy_forbidden),
        cmocka_unit_test(test_sampling_proxy_forward_signed),
        cmocka_unit_test(test_sampling_proxy_upstream_errors_pass_through),
        cmocka_unit_test(test_sampling_proxy_upstream_timeout),
        cmocka_unit_test(test_sampling_proxy_no_credentials),
        cmocka_unit_test(test_sampling_proxy_sdk_requests),
        cmocka_unit_test(test_sampling_proxy_server_limits),
        cmocka_unit_test(test_sampling_proxy_local_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
