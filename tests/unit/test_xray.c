/* SPDX-License-Identifier: Apache-2.0 */
/* The upload to X-Ray: xray_call's signed headers and error classes against a fake
 * HTTP/1.1 server kept in this file, the aws sender through the upstream core, and
 * the whole path against moto: a batch goes in with PutTraceSegments and comes back
 * byte-identical from BatchGetTraces. The body builder and the response parser alone
 * are tested in test_upstream_aws.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "upstream/xray.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "aws/sigv4.h"
#include "ingest/pool.h"
#include "upstream/upstream.h"
#include "upstream/upstream_aws.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Documents with what escaping must get right: quotes, backslashes, JSON escapes,
 * raw whitespace between tokens, non-ASCII UTF-8 (2, 3 and 4 bytes). */
static const char *const tricky[] = {
    "{\"name\":\"q\\\"uote \\\\back\",\"id\":\"0000000000000001\",\"trace_id\":\"1-5f84c7a1-"
    "000000000000000000000001\",\"start_time\":1.5e9,\"end_time\":1.5e9}",
    "{\n\t\"name\": \"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89\",\r\n"
    "\"id\":\"0000000000000002\",\"trace_id\":\"1-5f84c7a1-000000000000000000000001\","
    "\"start_time\":1500000000.1,\"end_time\":1500000000.2,\"annotations\":{\"k\":\"\\u0001\\/"
    "\\b\\f\"}}",
};

static struct doc *mkdoc(struct pool *pool, const char *s, size_t n)
{
    struct doc *d = pool_alloc(pool, s, n, 0);
    assert_non_null(d);
    return d;
}

/* ---- a fake HTTP/1.1 server that records requests and answers from a script ---- */

struct fake {
    uv_tcp_t listener;
    uv_tcp_t conn;
    int port;
    int connected;
    char in[65536];
    size_t len;
    int requests;
    char head[8192];  /* the last request's head */
    char body[32768]; /* and body */
    size_t body_len;
    char reply[1024]; /* the full response to every request */
};

/* Sets the fake's answer: status line and headers (each ending in CRLF), and body. */
static void fake_script(struct fake *f, const char *head, const char *body)
{
    snprintf(f->reply, sizeof(f->reply), "%sContent-Length: %zu\r\n\r\n%s", head, strlen(body),
             body);
}

static void fake_on_write(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void fake_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    struct fake *f = container_of((uv_tcp_t *)h, struct fake, conn);
    (void)sz;
    *b = uv_buf_init(f->in + f->len, (unsigned)(sizeof(f->in) - 1 - f->len));
}

static void fake_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct fake *f = container_of((uv_tcp_t *)s, struct fake, conn);
    (void)b;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, NULL);
        return;
    }
    f->len += (size_t)n;
    f->in[f->len] = '\0';
    char *end = strstr(f->in, "\r\n\r\n");
    if (end == NULL)
        return;
    size_t head = (size_t)(end - f->in) + 4;
    const char *cl = strcasestr(f->in, "\r\nContent-Length:");
    size_t blen = cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    if (f->len < head + blen)
        return;
    assert_true(head < sizeof(f->head) && blen < sizeof(f->body));
    memcpy(f->head, f->in, head);
    f->head[head] = '\0';
    memcpy(f->body, f->in + head, blen);
    f->body[blen] = '\0';
    f->body_len = blen;
    f->requests++;
    memmove(f->in, f->in + head + blen, f->len - head - blen);
    f->len -= head + blen;
    uv_write_t *w = malloc(sizeof(*w));
    assert_non_null(w);
    uv_buf_t out = uv_buf_init(f->reply, (unsigned)strlen(f->reply));
    assert_int_equal(uv_write(w, s, &out, 1, fake_on_write), 0);
}

static void fake_on_connection(uv_stream_t *l, int status)
{
    struct fake *f = container_of((uv_tcp_t *)l, struct fake, listener);
    assert_int_equal(status, 0);
    assert_false(f->connected); /* one keep-alive connection is all we expect */
    f->connected = 1;
    assert_int_equal(uv_tcp_init(l->loop, &f->conn), 0);
    assert_int_equal(uv_accept(l, (uv_stream_t *)&f->conn), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&f->conn, fake_alloc, fake_on_read), 0);
}

/* A header's value from the recorded head, "" if absent. */
static const char *fake_header(struct fake *f, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof(key), "\r\n%s: ", name);
    const char *p = strcasestr(f->head, key);
    out[0] = '\0';
    if (p != NULL)
        snprintf(out, cap, "%.*s", (int)strcspn(p + strlen(key), "\r"), p + strlen(key));
    return out;
}

/* ---- one loop with the fake, an HTTP client, a credentials chain and an xray ---- */

struct rig {
    uv_loop_t loop;
    uv_timer_t watchdog;
    struct fake fake;
    struct http_client *http;
    struct credentials_chain *chain;
    struct stats stats;
    struct xray *xray;
    int closed;
    int done;
    int status;
    int error;
    char *body; /* the last response's body, NUL-terminated */
    size_t body_len;
};

static void fixed_load(const struct credentials_provider *self,
                       const struct credentials_context *ctx, uint64_t now_ms,
                       void (*done)(void *data, int rc, const struct aws_credentials *creds,
                                    const char *err),
                       void *data)
{
    (void)ctx, (void)now_ms;
    struct aws_credentials c = {0};
    char err[XRAY_ERR_LEN] = "";
    int rc = aws_credentials_set(&c, "AKIDTEST", "secret", "token/with+chars=", "test", err);
    c.source = self->name;
    done(data, rc, rc == 0 ? &c : NULL, err);
    aws_credentials_clear(&c);
}
static const struct credentials_provider fixed_provider = {"fixed", fixed_load};

static void none_load(const struct credentials_provider *self,
                      const struct credentials_context *ctx, uint64_t now_ms,
                      void (*done)(void *data, int rc, const struct aws_credentials *creds,
                                   const char *err),
                      void *data)
{
    (void)self, (void)ctx, (void)now_ms;
    done(data, XRAY_ENOCREDS, NULL, "nothing here");
}
static const struct credentials_provider none_provider = {"none", none_load};

/* A provider that answers only when the test says: a load on the network. */
static struct {
    void (*done)(void *data, int rc, const struct aws_credentials *creds, const char *err);
    void *data;
    int loads;
} later;

static void later_load(const struct credentials_provider *self,
                       const struct credentials_context *ctx, uint64_t now_ms,
                       void (*done)(void *data, int rc, const struct aws_credentials *creds,
                                    const char *err),
                       void *data)
{
    (void)self, (void)ctx, (void)now_ms;
    later.done = done;
    later.data = data;
    later.loads++;
}
static const struct credentials_provider later_provider = {"later", later_load};

static void rig_on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the test did not finish in time");
}

static void rig_init(struct rig *r, const struct credentials_provider *p, const char *endpoint,
                     const char *path_prefix)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(uv_timer_init(&r->loop, &r->watchdog), 0);
    assert_int_equal(uv_timer_start(&r->watchdog, rig_on_watchdog, 30000, 0), 0);
    char url[128];
    if (endpoint == NULL) {
        struct sockaddr_in a;
        struct sockaddr_storage got;
        int len = sizeof(got);
        assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
        assert_int_equal(uv_tcp_init(&r->loop, &r->fake.listener), 0);
        assert_int_equal(uv_tcp_bind(&r->fake.listener, (const struct sockaddr *)&a, 0), 0);
        assert_int_equal(uv_listen((uv_stream_t *)&r->fake.listener, 8, fake_on_connection), 0);
        assert_int_equal(uv_tcp_getsockname(&r->fake.listener, (struct sockaddr *)&got, &len), 0);
        r->fake.port = ntohs(((struct sockaddr_in *)&got)->sin_port);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", r->fake.port, path_prefix);
        endpoint = url;
    }
    r->http = http_client_create(&r->loop, NULL);
    assert_non_null(r->http);
    const struct credentials_provider *const providers[] = {p};
    const struct credentials_options co = {.providers = providers, .count = 1};
    r->chain = credentials_chain_create(&co);
    assert_non_null(r->chain);
    struct xray_options xo = {
        .http = r->http,
        .creds = r->chain,
        .endpoint = endpoint,
        .region = "us-east-1",
        .user_agent = "xrayd/test",
        .stats = &r->stats,
    };
    r->xray = xray_create(&xo);
    assert_non_null(r->xray);
}

static void rig_on_http_closed(void *data)
{
    ((struct rig *)data)->closed = 1;
}

static void rig_finish(struct rig *r)
{
    http_client_close(r->http, rig_on_http_closed, r);
    if (r->fake.port != 0) {
        uv_close((uv_handle_t *)&r->fake.listener, NULL);
        if (r->fake.connected && !uv_is_closing((uv_handle_t *)&r->fake.conn))
            uv_close((uv_handle_t *)&r->fake.conn, NULL);
    }
    uv_close((uv_handle_t *)&r->watchdog, NULL);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_true(r->closed);
    xray_destroy(r->xray);
    credentials_chain_destroy(r->chain);
    free(r->body);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

static void rig_on_result(const struct http_client_result *res, void *data)
{
    struct rig *r = data;
    r->done = 1;
    r->status = res->status;
    r->error = xray_result_error(res);
    free(r->body);
    r->body = malloc(res->body_len + 1);
    assert_non_null(r->body);
    memcpy(r->body, res->body, res->body_len);
    r->body[res->body_len] = '\0';
    r->body_len = res->body_len;
    uv_stop(&r->loop);
}

static void rig_call(struct rig *r, const char *path, const char *body)
{
    r->done = 0;
    assert_int_equal(xray_call(r->xray, path, body, strlen(body), rig_on_result, r), 0);
    assert_false(r->done); /* never from within the call */
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_true(r->done);
}

static void test_xray_call_signed_headers(void **state)
{
    struct rig r;
    char v[2048], auth[1024];
    (void)state;
    rig_init(&r, &fixed_provider, NULL, "/pre");
    fake_script(&r.fake, "HTTP/1.1 200 OK\r\n", "{}");
    const char *body = "{\"TraceSegmentDocuments\":[]}";
    time_t before = time(NULL);
    rig_call(&r, "/TraceSegments", body);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.error, 0);
    assert_null(xray_last_error(r.xray));
    assert_true(strncmp(r.fake.head, "POST /pre/TraceSegments HTTP/1.1\r\n", 34) == 0);
    assert_string_equal(r.fake.body, body);
    assert_string_equal(fake_header(&r.fake, "Content-Type", v, sizeof(v)), "application/json");
    assert_string_equal(fake_header(&r.fake, "User-Agent", v, sizeof(v)), "xrayd/test");
    assert_string_equal(fake_header(&r.fake, "X-Amz-Security-Token", v, sizeof(v)),
                        "token/with+chars=");
    char host[64];
    snprintf(host, sizeof(host), "127.0.0.1:%d", r.fake.port);
    assert_string_equal(fake_header(&r.fake, "Host", v, sizeof(v)), host);
    /* X-Amzn-Xray-Timestamp: epoch seconds with 9 decimals, now. */
    char stamp[64];
    fake_header(&r.fake, "X-Amzn-Xray-Timestamp", stamp, sizeof(stamp));
    char *dot = strchr(stamp, '.');
    assert_non_null(dot);
    assert_int_equal(strlen(dot + 1), 9);
    assert_int_equal(strspn(dot + 1, "0123456789"), 9);
    long long secs = strtoll(stamp, NULL, 10);
    assert_true(secs >= before && secs <= time(NULL));
    /* Authorization is what signing these very headers and body gives. */
    fake_header(&r.fake, "Authorization", auth, sizeof(auth));
    assert_non_null(strstr(auth, "/us-east-1/xray/aws4_request, SignedHeaders=content-type;host;"
                                 "x-amz-date;x-amz-security-token;x-amzn-xray-timestamp, "));
    char date[32];
    fake_header(&r.fake, "X-Amz-Date", date, sizeof(date));
    struct tm tm = {0};
    assert_non_null(strptime(date, "%Y%m%dT%H%M%SZ", &tm));
    const struct sigv4_header hs[] = {{"Content-Type", "application/json"},
                                      {"X-Amzn-Xray-Timestamp", stamp}};
    struct sigv4_request sr = {.method = "POST",
                               .host = host,
                               .path = "/pre/TraceSegments",
                               .headers = hs,
                               .header_count = 2,
                               .body = body,
                               .body_len = strlen(body),
                               .region = "us-east-1",
                               .service = "xray",
                               .now_s = (int64_t)timegm(&tm)};
    struct aws_credentials creds = {0};
    struct sigv4_signature sig;
    char err[XRAY_ERR_LEN];
    assert_int_equal(
        aws_credentials_set(&creds, "AKIDTEST", "secret", "token/with+chars=", "test", err), 0);
    assert_int_equal(sigv4_sign(&sr, &creds, &sig, err), 0);
    assert_string_equal(sig.authorization, auth);
    aws_credentials_clear(&creds);
    for (int i = 0; i < STATS_BACKEND__COUNT; i++)
        assert_int_equal(stats_get(&r.stats.backend[i]), 0);
    rig_finish(&r);
}

static void test_xray_call_errors_classified(void **state)
{
    struct rig r;
    (void)state;
    rig_init(&r, &fixed_provider, NULL, "");
    fake_script(&r.fake, "HTTP/1.1 403 Forbidden\r\n",
                "{\"__type\":\"com.amazonaws.xray#AccessDeniedException\",\"message\":\"not al"
                "lowed\\nsecond line\"}");
    rig_call(&r, "/TraceSegments", "{}");
    assert_int_equal(r.status, 403);
    assert_int_equal(r.error, XRAY_EUPSTREAM);
    assert_int_equal(stats_get(&r.stats.backend[STATS_BACKEND_4XX]), 1);
    assert_string_equal(xray_last_error(r.xray),
                        "POST /TraceSegments: HTTP 403 AccessDeniedException: not allowed");
    fake_script(&r.fake, "HTTP/1.1 503 Slow\r\nRetry-After: 2\r\n", "");
    rig_call(&r, "/TelemetryRecords", "{}");
    assert_int_equal(r.status, 503);
    assert_int_equal(stats_get(&r.stats.backend[STATS_BACKEND_5XX]), 1);
    assert_string_equal(xray_last_error(r.xray), "POST /TelemetryRecords: HTTP 503");
    assert_int_equal(xray_consecutive_failures(r.xray), 2);
    fake_script(&r.fake, "HTTP/1.1 200 OK\r\n", "{}");
    rig_call(&r, "/TraceSegments", "{}");
    assert_int_equal(xray_consecutive_failures(r.xray), 0);
    assert_non_null(xray_last_error(r.xray)); /* kept for /healthz */
    assert_int_equal(r.fake.requests, 3);
    rig_finish(&r);

    /* Nothing listens: refused. */
    rig_init(&r, &fixed_provider, "http://127.0.0.1:1", "");
    rig_call(&r, "/TraceSegments", "{}");
    assert_int_equal(r.error, -ECONNREFUSED);
    assert_int_equal(stats_get(&r.stats.backend[STATS_BACKEND_REFUSED]), 1);
    assert_non_null(strstr(xray_last_error(r.xray), "connection refused"));
    rig_finish(&r);
}

static void test_xray_call_no_credentials(void **state)
{
    struct rig r;
    (void)state;
    rig_init(&r, &none_provider, NULL, "");
    fake_script(&r.fake, "HTTP/1.1 200 OK\r\n", "{}");
    assert_int_equal(xray_call(r.xray, "/TraceSegments", "{}", 2, rig_on_result, &r),
                     XRAY_ENOCREDS);
    uv_run(&r.loop, UV_RUN_NOWAIT);
    assert_int_equal(r.fake.requests, 0); /* never sent unsigned */
    assert_false(r.done);
    assert_int_equal(stats_get(&r.stats.backend[STATS_BACKEND_OTHER]), 1);
    assert_non_null(strstr(xray_last_error(r.xray), "no credentials: "));
    rig_finish(&r);
}

static void test_xray_call_waits_for_credentials(void **state)
{
    struct rig r;
    (void)state;
    memset(&later, 0, sizeof(later));
    rig_init(&r, &later_provider, NULL, "");
    fake_script(&r.fake, "HTTP/1.1 200 OK\r\n", "{}");
    /* The chain is loading: the call waits, nothing is sent and cb has not run. */
    assert_int_equal(xray_call(r.xray, "/TraceSegments", "{}", 2, rig_on_result, &r), 0);
    uv_run(&r.loop, UV_RUN_NOWAIT);
    assert_int_equal(later.loads, 1);
    assert_int_equal(r.fake.requests, 0);
    assert_false(r.done);
    /* The credentials arrive: the call is signed with them and sent. */
    struct aws_credentials c = {0};
    char err[XRAY_ERR_LEN];
    assert_int_equal(aws_credentials_set(&c, "ASIALATER", "secret", "tok", "test", err), 0);
    later.done(later.data, 0, &c, NULL);
    aws_credentials_clear(&c);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_true(r.done);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.fake.requests, 1);
    char v[1024];
    assert_non_null(
        strstr(fake_header(&r.fake, "Authorization", v, sizeof(v)), "Credential=ASIALATER/"));
    assert_string_equal(fake_header(&r.fake, "X-Amz-Security-Token", v, sizeof(v)), "tok");
    rig_finish(&r);

    /* The load fails: every waiting call completes through cb, never sent, and reads
     * as "no credentials" -- an upload error, counted. */
    memset(&later, 0, sizeof(later));
    rig_init(&r, &later_provider, NULL, "");
    struct rig r2 = {0};
    assert_int_equal(xray_call(r.xray, "/TraceSegments", "{}", 2, rig_on_result, &r), 0);
    assert_int_equal(xray_call(r.xray, "/TelemetryRecords", "{}", 2, rig_on_result, &r2), 0);
    assert_int_equal(later.loads, 1);
    later.done(later.data, XRAY_ETIMEOUT, NULL, "metadata: timeout");
    assert_true(r.done && r2.done);
    assert_int_equal(r.error, XRAY_ENOCREDS);
    assert_int_equal(r2.error, XRAY_ENOCREDS);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.fake.requests, 0);
    assert_int_equal(stats_get(&r.stats.backend[STATS_BACKEND_OTHER]), 2);
    assert_non_null(strstr(xray_last_error(r.xray), "no credentials: later: metadata: timeout"));
    /* Inside the retry window the failure is known at once: xray_call returns it. */
    assert_int_equal(xray_call(r.xray, "/TraceSegments", "{}", 2, rig_on_result, &r),
                     XRAY_ENOCREDS);
    assert_int_equal(later.loads, 1);
    free(r2.body);
    uv_run(&r.loop, UV_RUN_NOWAIT); /* clears the uv_stop of the callbacks above */
    rig_finish(&r);
}

/* ---- through the upstream core with the aws sender ---- */

static void on_drained(void *data)
{
    uv_stop(data);
}

static void on_up_closed(void *data)
{
    *(int *)data = 1;
}

static void test_upstream_aws_ops_send(void **state)
{
    struct rig r;
    (void)state;
    rig_init(&r, &fixed_provider, NULL, "");
    fake_script(&r.fake, "HTTP/1.1 200 OK\r\n",
                "{\"UnprocessedTraceSegments\":[{\"Id\":\"0000000000000002\",\"ErrorCode\":"
                "\"Bad\",\"Message\":\"x\"}]}");
    struct pool *pool = pool_create(1 << 20);
    struct upstream_options uo = {.loop = &r.loop,
                                  .pool = pool,
                                  .stats = &r.stats,
                                  .ctx = r.xray,
                                  .retry = {.attempts = 1}}; /* one call each: no retries */
    struct upstream *up = upstream_create(&upstream_aws_ops, &uo);
    assert_non_null(up);
    assert_string_equal(upstream_name(up), "aws");
    for (int i = 0; i < 2; i++)
        upstream_submit(up, mkdoc(pool, tricky[i], strlen(tricky[i])));
    upstream_drain(up, on_drained, &r.loop);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(r.fake.requests, 1);
    assert_int_equal(stats_get(&r.stats.batches), 1);
    assert_int_equal(stats_get(&r.stats.sent), 1);
    assert_int_equal(stats_get(&r.stats.rejected_by[STATS_REJECT_UNPROCESSED]), 1);
    assert_int_equal(stats_get(&r.stats.rejected), 1);
    assert_int_equal(pool_doc_count(pool), 0);
    assert_true(upstream_scratch_bytes(up) > r.fake.body_len); /* the body, kept for reuse */
    /* The body on the wire is the documents, as they came. */
    json_t *root = json_loadb(r.fake.body, r.fake.body_len, 0, NULL);
    json_t *list = json_object_get(root, "TraceSegmentDocuments");
    assert_int_equal(json_array_size(list), 2);
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(json_string_value(json_array_get(list, i)), tricky[i]);
    json_decref(root);

    /* A failed call drops the batch, counted per document. */
    fake_script(&r.fake, "HTTP/1.1 500 Oops\r\n", "");
    for (int i = 0; i < 3; i++)
        upstream_submit(up, mkdoc(pool, tricky[0], strlen(tricky[0])));
    upstream_drain(up, on_drained, &r.loop);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(stats_get(&r.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 3);
    assert_int_equal(stats_get(&r.stats.sent), 1);
    assert_int_equal(stats_get(&r.stats.backend[STATS_BACKEND_5XX]), 1);
    assert_string_equal(upstream_last_error(up), "POST /TraceSegments: HTTP 500");
    assert_int_equal(pool_doc_count(pool), 0);
    int up_closed = 0;
    upstream_close(up, on_up_closed, &up_closed);
    rig_finish(&r);
    assert_true(up_closed);
    pool_destroy(pool);
}

/* ---- moto: the real API shapes, end to end ---- */

static pid_t moto_pid;
static int moto_port;

static void moto_kill(void)
{
    if (moto_pid <= 0)
        return;
    kill(-moto_pid, SIGTERM);
    for (int i = 0; i < 50 && waitpid(moto_pid, NULL, WNOHANG) == 0; i++)
        usleep(100 * 1000);
    kill(-moto_pid, SIGKILL);
    waitpid(moto_pid, NULL, 0);
    moto_pid = 0;
}

static int moto_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int moto_listening(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)moto_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Starts moto_server on a free port; a test that needs it fails when it cannot. */
static int moto_start(void **state)
{
    static int registered;
    (void)state;
    if (!registered && atexit(moto_kill) == 0)
        registered = 1;
    if ((moto_port = moto_free_port()) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char port[16];
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        snprintf(port, sizeof(port), "%d", moto_port);
        execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", port, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    moto_pid = pid;
    for (int i = 0; i < 300; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            moto_pid = 0;
            fprintf(stderr, "moto_server exited before listening (status %d): is it installed?\n",
                    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            return -1;
        }
        if (moto_listening())
            return 0;
        usleep(100 * 1000);
    }
    fprintf(stderr, "moto_server did not listen on port %d within 30 s\n", moto_port);
    moto_kill();
    return -1;
}

static int moto_stop(void **state)
{
    (void)state;
    moto_kill();
    return 0;
}

#define MOTO_DOCS 62 /* two batches: 50 + 12 */

static void test_xray_moto_round_trip(void **state)
{
    struct rig r;
    char url[64];
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    unsetenv("AWS_SESSION_TOKEN");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", moto_port);
    rig_init(&r, &credentials_env_provider, url, "");
    struct pool *pool = pool_create(4 << 20);
    struct upstream_options uo = {.loop = &r.loop, .pool = pool, .stats = &r.stats, .ctx = r.xray};
    struct upstream *up = upstream_create(&upstream_aws_ops, &uo);
    assert_non_null(up);

    static char docs[MOTO_DOCS][512];
    for (int i = 0; i < MOTO_DOCS; i++) {
        if (i < 2)
            snprintf(docs[i], sizeof(docs[i]), "%s", tricky[i]);
        else
            snprintf(docs[i], sizeof(docs[i]),
                     "{\"name\":\"svc-%d\",\"id\":\"%016x\",\"trace_id\":\"1-5f84c7a1-"
                     "00000000000000000000000%d\",\"start_time\":1500000000.%03d,\"end_time\":"
                     "1500000001.5,\"metadata\":{\"s\":\"a\\\"b\\\\c \xc3\xa9\\n\"}}",
                     i, 0x100 + i, 1 + i % 2, i);
        upstream_submit(up, mkdoc(pool, docs[i], strlen(docs[i])));
    }
    /* X-Ray refuses a segment with neither end_time nor in_progress: unprocessed. */
    const char *bad = "{\"name\":\"x\",\"id\":\"00000000000000ff\",\"trace_id\":\"1-5f84c7a1-"
                      "000000000000000000000001\",\"start_time\":1500000000}";
    upstream_submit(up, mkdoc(pool, bad, strlen(bad)));
    upstream_drain(up, on_drained, &r.loop);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_null(xray_last_error(r.xray));
    assert_int_equal(stats_get(&r.stats.batches), 2);
    assert_int_equal(stats_get(&r.stats.sent), MOTO_DOCS);
    assert_int_equal(stats_get(&r.stats.rejected_by[STATS_REJECT_UNPROCESSED]), 1);
    assert_int_equal(pool_doc_count(pool), 0);

    /* BatchGetTraces, signed the same way, gives every document back as it was sent. */
    rig_call(&r, "/Traces",
             "{\"TraceIds\":[\"1-5f84c7a1-000000000000000000000001\","
             "\"1-5f84c7a1-000000000000000000000002\"]}");
    assert_int_equal(r.status, 200);
    json_t *root = json_loadb(r.body, r.body_len, 0, NULL);
    assert_non_null(root);
    json_t *traces = json_object_get(root, "Traces");
    assert_int_equal(json_array_size(traces), 2);
    int matched = 0;
    for (size_t t = 0; t < json_array_size(traces); t++) {
        json_t *segs = json_object_get(json_array_get(traces, t), "Segments");
        for (size_t i = 0; i < json_array_size(segs); i++) {
            json_t *doc = json_object_get(json_array_get(segs, i), "Document");
            const char *id = json_string_value(json_object_get(json_array_get(segs, i), "Id"));
            assert_non_null(id);
            int k = 0;
            while (k < MOTO_DOCS && strstr(docs[k], id) == NULL)
                k++;
            assert_true(k < MOTO_DOCS);
            assert_int_equal(json_string_length(doc), strlen(docs[k]));
            assert_memory_equal(json_string_value(doc), docs[k], strlen(docs[k]));
            matched++;
        }
    }
    assert_int_equal(matched, MOTO_DOCS);
    json_decref(root);

    int up_closed = 0;
    upstream_close(up, on_up_closed, &up_closed);
    rig_finish(&r);
    assert_true(up_closed);
    pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xray_call_signed_headers),
        cmocka_unit_test(test_xray_call_errors_classified),
        cmocka_unit_test(test_xray_call_no_credentials),
        cmocka_unit_test(test_xray_call_waits_for_credentials),
        cmocka_unit_test(test_upstream_aws_ops_send),
        cmocka_unit_test_setup_teardown(test_xray_moto_round_trip, moto_start, moto_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
