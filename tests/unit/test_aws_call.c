/* SPDX-License-Identifier: Apache-2.0 */
/* One signed AWS call (aws_call.h) against the fake HTTP server: the exact headers
 * sent for a service other than X-Ray (scope, target, content type, token), the
 * signature checked by signing the received request again, a call without credentials
 * never sent (at once, or after waiting for a load), refused credentials dropped from
 * the chain, and what the error helpers make of results and error bodies. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/aws_call.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/credentials.h"
#include "aws/sigv4.h"
#include "error.h"
#include "fake_http.h"

/* ---- credentials ---- */

static const char *fixed_token; /* NULL: long-term keys */
static int fixed_loads;

static void fixed_load(const struct credentials_provider *self,
                       const struct credentials_context *ctx, uint64_t now_ms,
                       void (*done)(void *data, int rc, const struct aws_credentials *creds,
                                    const char *err),
                       void *data)
{
    (void)ctx, (void)now_ms;
    struct aws_credentials c = {0};
    char err[XRAY_ERR_LEN] = "";
    fixed_loads++;
    int rc = aws_credentials_set(&c, "AKIDTEST", "secret", fixed_token, "test", err);
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

/* Answers only when the test says so: a load on the network. */
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

/* ---- the fake's answers ---- */

static int reply_status = 200;
static const char *reply_body = "{}";

static void handler(struct fake_http *f, const struct fake_http_request *req,
                    struct fake_http_reply *rep)
{
    (void)f, (void)req;
    rep->status = reply_status;
    snprintf(rep->body, sizeof(rep->body), "%s", reply_body);
}

/* ---- a loop, the fake, an HTTP client, a chain and an aws_client ---- */

struct rig {
    uv_loop_t loop;
    uv_timer_t watchdog;
    struct fake_http fake;
    struct http_client *http;
    struct credentials_chain *chain;
    struct aws_client *aws;
    int closed;
    int done;
    int status;
    int error;
    char message[XRAY_ERR_LEN];
    char body[1024];
};

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the test did not finish in time");
}

static void rig_init(struct rig *r, const struct credentials_provider *p, const char *service,
                     const char *prefix, const char *user_agent)
{
    memset(r, 0, sizeof(*r));
    reply_status = 200;
    reply_body = "{}";
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(uv_timer_init(&r->loop, &r->watchdog), 0);
    assert_int_equal(uv_timer_start(&r->watchdog, on_watchdog, 20000, 0), 0);
    fake_http_start(&r->fake, handler, r);
    r->http = http_client_create(&r->loop, NULL);
    assert_non_null(r->http);
    const struct credentials_provider *const providers[] = {p};
    const struct credentials_options co = {.providers = providers, .count = 1};
    r->chain = credentials_chain_create(&co);
    assert_non_null(r->chain);
    char url[128], err[XRAY_ERR_LEN];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", r->fake.port, prefix);
    const struct aws_client_options ao = {.http = r->http,
                                          .creds = r->chain,
                                          .endpoint = url,
                                          .region = "us-east-1",
                                          .service = service,
                                          .user_agent = user_agent};
    r->aws = aws_client_create(&ao, err);
    assert_non_null(r->aws);
    assert_string_equal(aws_client_service(r->aws), service);
    assert_string_equal(aws_client_endpoint(r->aws), url);
}

static void on_http_closed(void *data)
{
    ((struct rig *)data)->closed = 1;
}

static void rig_finish(struct rig *r)
{
    http_client_close(r->http, on_http_closed, r);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_true(r->closed);
    aws_client_destroy(r->aws);
    credentials_chain_destroy(r->chain);
    fake_http_stop(&r->fake);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

static void on_result(const struct http_client_result *res, void *data)
{
    struct rig *r = data;
    r->done++;
    r->status = res->status;
    r->error = aws_client_result_error(res);
    snprintf(r->message, sizeof(r->message), "%s", res->message ? res->message : "");
    snprintf(r->body, sizeof(r->body), "%.*s", (int)res->body_len, res->body);
    uv_stop(&r->loop);
}

static const char logs_body[] = "{\"logGroupName\":\"/g\",\"logStreamName\":\"s\"}";
static const struct sigv4_header logs_target[] = {
    {"X-Amz-Target", "Logs_20140328.CreateLogStream"}};

static void rig_call(struct rig *r, const struct aws_request *req)
{
    r->done = 0;
    assert_int_equal(aws_client_call(r->aws, req, on_result, r), 0);
    assert_int_equal(r->done, 0); /* never from within the call */
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(r->done, 1);
}

static struct aws_request logs_request(void)
{
    return (struct aws_request){.method = "POST",
                                .path = "/",
                                .content_type = "application/x-amz-json-1.1",
                                .headers = logs_target,
                                .header_count = 1,
                                .body = logs_body,
                                .body_len = strlen(logs_body)};
}

/* Signs what the fake received again, with the headers named, and compares. */
static void check_signature(const struct fake_http_request *got, const char *host, const char *path,
                            const char *service, const char *token, const struct sigv4_header *hs,
                            size_t nhs)
{
    char auth[1024], date[32], err[XRAY_ERR_LEN];
    fake_http_header(got, "Authorization", auth, sizeof(auth));
    fake_http_header(got, "X-Amz-Date", date, sizeof(date));
    struct tm tm = {0};
    assert_non_null(strptime(date, "%Y%m%dT%H%M%SZ", &tm));
    const struct sigv4_request sr = {.method = "POST",
                                     .host = host,
                                     .path = path,
                                     .headers = hs,
                                     .header_count = nhs,
                                     .body = got->body,
                                     .body_len = got->body_len,
                                     .region = "us-east-1",
                                     .service = service,
                                     .now_s = (int64_t)timegm(&tm)};
    struct aws_credentials creds = {0};
    struct sigv4_signature sig;
    assert_int_equal(aws_credentials_set(&creds, "AKIDTEST", "secret", token, "test", err), 0);
    assert_int_equal(sigv4_sign(&sr, &creds, &sig, err), 0);
    assert_string_equal(sig.authorization, auth);
    aws_credentials_clear(&creds);
}

static void test_aws_client_call_logs_headers(void **state)
{
    struct rig r;
    struct fake_http_request got;
    char v[2048], host[64];
    (void)state;
    fixed_token = "token/with+chars=";
    rig_init(&r, &fixed_provider, "logs", "/pre", "xrayd/test");
    struct aws_request req = logs_request();
    rig_call(&r, &req);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.error, 0);
    assert_string_equal(r.body, "{}");
    fake_http_last(&r.fake, &got);
    assert_string_equal(got.method, "POST");
    assert_string_equal(got.path, "/pre/");
    assert_string_equal(got.body, logs_body);
    snprintf(host, sizeof(host), "127.0.0.1:%d", r.fake.port);
    assert_string_equal(fake_http_header(&got, "Host", v, sizeof(v)), host);
    assert_string_equal(fake_http_header(&got, "Content-Type", v, sizeof(v)),
                        "application/x-amz-json-1.1");
    assert_string_equal(fake_http_header(&got, "X-Amz-Target", v, sizeof(v)),
                        "Logs_20140328.CreateLogStream");
    assert_string_equal(fake_http_header(&got, "X-Amz-Security-Token", v, sizeof(v)),
                        "token/with+chars=");
    assert_string_equal(fake_http_header(&got, "User-Agent", v, sizeof(v)), "xrayd/test");
    fake_http_header(&got, "Authorization", v, sizeof(v));
    assert_true(strncmp(v, "AWS4-HMAC-SHA256 Credential=AKIDTEST/", 37) == 0);
    assert_non_null(strstr(v, "/us-east-1/logs/aws4_request, SignedHeaders=content-type;host;"
                              "x-amz-date;x-amz-security-token;x-amz-target, Signature="));
    const struct sigv4_header hs[] = {{"Content-Type", "application/x-amz-json-1.1"},
                                      {"X-Amz-Target", "Logs_20140328.CreateLogStream"}};
    check_signature(&got, host, "/pre/", "logs", "token/with+chars=", hs, 2);
    assert_int_equal(fixed_loads, 1);

    /* The request's strings were copied: a second call from other buffers is fine. */
    char target[64];
    snprintf(target, sizeof(target), "%s", "GraniteServiceVersion20100801.PutMetricData");
    const struct sigv4_header two[] = {{"X-Amz-Target", target}, {"x-amzn-query-mode", "true"}};
    req.headers = two;
    req.header_count = 2;
    req.content_type = "application/x-amz-json-1.0";
    rig_call(&r, &req);
    fake_http_last(&r.fake, &got);
    assert_string_equal(fake_http_header(&got, "X-Amz-Target", v, sizeof(v)), target);
    assert_string_equal(fake_http_header(&got, "x-amzn-query-mode", v, sizeof(v)), "true");
    assert_string_equal(fake_http_header(&got, "Content-Type", v, sizeof(v)),
                        "application/x-amz-json-1.0");
    const struct sigv4_header hs2[] = {{"Content-Type", "application/x-amz-json-1.0"},
                                       {"X-Amz-Target", target},
                                       {"x-amzn-query-mode", "true"}};
    check_signature(&got, host, "/pre/", "logs", "token/with+chars=", hs2, 3);
    assert_int_equal(fake_http_requests(&r.fake), 2);
    assert_int_equal(fixed_loads, 1); /* cached */
    rig_finish(&r);
    fixed_loads = 0;
}

static void test_aws_client_call_no_token_no_agent(void **state)
{
    struct rig r;
    struct fake_http_request got;
    char v[1024], host[64];
    (void)state;
    fixed_token = NULL;
    rig_init(&r, &fixed_provider, "monitoring", "", NULL);
    struct aws_request req = logs_request();
    rig_call(&r, &req);
    assert_int_equal(r.error, 0);
    fake_http_last(&r.fake, &got);
    assert_string_equal(got.path, "/");
    assert_string_equal(fake_http_header(&got, "X-Amz-Security-Token", v, sizeof(v)), "");
    assert_null(strcasestr(got.head, "\r\nX-Amz-Security-Token:"));
    assert_null(strcasestr(got.head, "\r\nUser-Agent:"));
    fake_http_header(&got, "Authorization", v, sizeof(v));
    assert_non_null(strstr(v, "/us-east-1/monitoring/aws4_request, SignedHeaders=content-type;"
                              "host;x-amz-date;x-amz-target, "));
    snprintf(host, sizeof(host), "127.0.0.1:%d", r.fake.port);
    const struct sigv4_header hs[] = {{"Content-Type", "application/x-amz-json-1.1"},
                                      {"X-Amz-Target", "Logs_20140328.CreateLogStream"}};
    check_signature(&got, host, "/", "monitoring", NULL, hs, 2);
    rig_finish(&r);
    fixed_loads = 0;
}

static void test_aws_client_call_no_credentials(void **state)
{
    struct rig r;
    (void)state;
    rig_init(&r, &none_provider, "logs", "", NULL);
    struct aws_request req = logs_request();
    assert_int_equal(aws_client_call(r.aws, &req, on_result, &r), XRAY_ENOCREDS);
    uv_run(&r.loop, UV_RUN_NOWAIT);
    assert_int_equal(r.done, 0);
    assert_int_equal(fake_http_requests(&r.fake), 0); /* never sent unsigned */
    assert_non_null(strstr(aws_client_not_sent(r.aws), "no credentials: "));
    assert_non_null(strstr(aws_client_not_sent(r.aws), "nothing here"));
    rig_finish(&r);
}

static void test_aws_client_call_waits_for_credentials(void **state)
{
    struct rig r;
    char v[1024];
    struct fake_http_request got;
    (void)state;
    memset(&later, 0, sizeof(later));
    rig_init(&r, &later_provider, "logs", "", NULL);
    struct aws_request req = logs_request();
    char path[8] = "/";
    req.path = path;
    assert_int_equal(aws_client_call(r.aws, &req, on_result, &r), 0);
    path[0] = 'X'; /* copied: the caller's buffers may go */
    uv_run(&r.loop, UV_RUN_NOWAIT);
    assert_int_equal(later.loads, 1);
    assert_int_equal(fake_http_requests(&r.fake), 0);
    assert_int_equal(r.done, 0);
    struct aws_credentials c = {0};
    char err[XRAY_ERR_LEN];
    assert_int_equal(aws_credentials_set(&c, "ASIALATER", "secret", "tok", "test", err), 0);
    later.done(later.data, 0, &c, NULL);
    aws_credentials_clear(&c);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.error, 0);
    fake_http_last(&r.fake, &got);
    assert_string_equal(got.path, "/");
    assert_non_null(
        strstr(fake_http_header(&got, "Authorization", v, sizeof(v)), "Credential=ASIALATER/"));
    assert_string_equal(fake_http_header(&got, "X-Amz-Security-Token", v, sizeof(v)), "tok");
    rig_finish(&r);

    /* The load fails: the waiting call completes through cb, never sent, and reads as
     * "no credentials". */
    memset(&later, 0, sizeof(later));
    rig_init(&r, &later_provider, "logs", "", NULL);
    req = logs_request();
    assert_int_equal(aws_client_call(r.aws, &req, on_result, &r), 0);
    later.done(later.data, XRAY_ETIMEOUT, NULL, "metadata: timeout");
    assert_int_equal(r.done, 1);
    assert_int_equal(r.error, XRAY_ENOCREDS);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.message, "no credentials: later: metadata: timeout");
    assert_int_equal(fake_http_requests(&r.fake), 0);
    uv_run(&r.loop, UV_RUN_NOWAIT); /* clears the callback's uv_stop */
    rig_finish(&r);
}

static void test_aws_client_call_refused_credentials_dropped(void **state)
{
    struct rig r;
    (void)state;
    fixed_token = "tok";
    fixed_loads = 0;
    rig_init(&r, &fixed_provider, "logs", "", NULL);
    struct aws_request req = logs_request();
    reply_status = 400;
    reply_body = "{\"__type\":\"com.amazonaws.logs#ResourceNotFoundException\",\"message\":"
                 "\"The specified log group does not exist.\"}";
    rig_call(&r, &req);
    assert_int_equal(r.status, 400);
    assert_int_equal(r.error, XRAY_EUPSTREAM);
    rig_call(&r, &req);
    assert_int_equal(fixed_loads, 1); /* any other 4xx keeps the credentials */
    reply_body = "{\"__type\":\"ExpiredTokenException\",\"message\":\"expired\"}";
    reply_status = 403;
    rig_call(&r, &req);
    assert_int_equal(r.status, 403);
    reply_status = 200;
    rig_call(&r, &req);
    assert_int_equal(r.error, 0);
    assert_int_equal(fixed_loads, 2); /* loaded again after the refusal */
    assert_int_equal(fake_http_requests(&r.fake), 4);
    rig_finish(&r);
    fixed_loads = 0;
}

static void test_aws_client_call_bad_requests(void **state)
{
    struct rig r;
    (void)state;
    fixed_token = NULL;
    rig_init(&r, &fixed_provider, "logs", "", NULL);
    struct aws_request req = logs_request();
    req.path = "no-slash";
    assert_int_equal(aws_client_call(r.aws, &req, on_result, &r), -EINVAL);
    req.path = "/a?b=c";
    assert_int_equal(aws_client_call(r.aws, &req, on_result, &r), -EINVAL);
    req = logs_request();
    const struct sigv4_header crlf[] = {{"X-Amz-Target", "a\r\nX-Evil: 1"}};
    req.headers = crlf;
    assert_int_equal(aws_client_call(r.aws, &req, on_result, &r), -EINVAL);
    const struct sigv4_header colon[] = {{"X-Bad:Name", "v"}};
    req.headers = colon;
    assert_int_equal(aws_client_call(r.aws, &req, on_result, &r), -EINVAL);
    req = logs_request();
    req.header_count = AWS_CALL_HEADERS_MAX + 1;
    assert_int_equal(aws_client_call(r.aws, &req, on_result, &r), -EINVAL);
    req = logs_request();
    req.body = NULL;
    assert_int_equal(aws_client_call(r.aws, &req, on_result, &r), -EINVAL);
    assert_string_equal(aws_client_not_sent(r.aws), "not sent: bad request");
    req = logs_request();
    assert_int_equal(aws_client_call(r.aws, &req, NULL, &r), -EINVAL);
    uv_run(&r.loop, UV_RUN_NOWAIT);
    assert_int_equal(fake_http_requests(&r.fake), 0);
    assert_int_equal(r.done, 0);
    rig_finish(&r);
}

static void test_aws_client_create_bad_options(void **state)
{
    char err[XRAY_ERR_LEN];
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct http_client *http = http_client_create(&loop, NULL);
    struct credentials_chain *chain = credentials_chain_create(NULL);
    assert_non_null(http);
    assert_non_null(chain);
    struct aws_client_options o = {.http = http,
                                   .creds = chain,
                                   .endpoint = "https://logs.us-east-1.amazonaws.com",
                                   .region = "us-east-1",
                                   .service = "logs"};
    struct aws_client *c = aws_client_create(&o, err);
    assert_non_null(c);
    aws_client_destroy(c);
    o.endpoint = "https://logs.us-east-1.amazonaws.com/";
    assert_null(aws_client_create(&o, err));
    assert_non_null(strstr(err, "endpoint"));
    o.endpoint = "ftp://x";
    assert_null(aws_client_create(&o, err));
    o.endpoint = "https://logs.us-east-1.amazonaws.com";
    o.service = "";
    assert_null(aws_client_create(&o, err));
    o.service = "logs";
    o.region = NULL;
    assert_null(aws_client_create(&o, err));
    assert_non_null(strstr(err, "region"));
    http_client_close(http, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    credentials_chain_destroy(chain);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_aws_client_result_error_classes(void **state)
{
    (void)state;
    struct http_client_result r = {.error = HTTP_CLIENT_OK, .status = 204, .message = ""};
    assert_int_equal(aws_client_result_error(&r), 0);
    r.status = 429;
    assert_int_equal(aws_client_result_error(&r), XRAY_EUPSTREAM);
    r = (struct http_client_result){.error = HTTP_CLIENT_TIMEOUT, .message = "t"};
    assert_int_equal(aws_client_result_error(&r), XRAY_ETIMEOUT);
    r.error = HTTP_CLIENT_REFUSED;
    assert_int_equal(aws_client_result_error(&r), -ECONNREFUSED);
    r.error = HTTP_CLIENT_UNKNOWN_HOST;
    assert_int_equal(aws_client_result_error(&r), -EHOSTUNREACH);
    r.error = HTTP_CLIENT_TOO_BIG;
    assert_int_equal(aws_client_result_error(&r), XRAY_ETOOBIG);
    r.error = HTTP_CLIENT_CANCELED;
    assert_int_equal(aws_client_result_error(&r), -ECANCELED);
    r.error = HTTP_CLIENT_OTHER;
    r.message = "SSL connect error";
    assert_int_equal(aws_client_result_error(&r), -EIO);
    r.message = NULL;
    assert_int_equal(aws_client_result_error(&r), -EIO);
    r.message = "no credentials: env: not set";
    assert_int_equal(aws_client_result_error(&r), XRAY_ENOCREDS);
}

static void test_aws_client_error_describe_bodies(void **state)
{
    char out[256], type[64];
    (void)state;
    const char *b = "{\"__type\":\"com.amazonaws.logs#ResourceAlreadyExistsException\","
                    "\"message\":\"exists\\nmore\"}";
    assert_int_equal(aws_client_error_describe(400, b, strlen(b), out, sizeof(out)), 0);
    assert_string_equal(out, "HTTP 400 ResourceAlreadyExistsException: exists");
    aws_client_error_type(b, strlen(b), type, sizeof(type));
    assert_string_equal(type, "ResourceAlreadyExistsException");
    b = "{\"__type\":\"UnrecognizedClientException\",\"Message\":\"bad \\u0001 id\"}";
    assert_int_equal(aws_client_error_describe(403, b, strlen(b), out, sizeof(out)), 1);
    assert_string_equal(out, "HTTP 403 UnrecognizedClientException: bad ? id");
    assert_int_equal(aws_client_error_describe(500, "<html>", 6, out, sizeof(out)), 0);
    assert_string_equal(out, "HTTP 500");
    aws_client_error_type("[1]", 3, type, sizeof(type));
    assert_string_equal(type, "");
    aws_client_error_type(NULL, 0, type, sizeof(type));
    assert_string_equal(type, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_client_call_logs_headers),
        cmocka_unit_test(test_aws_client_call_no_token_no_agent),
        cmocka_unit_test(test_aws_client_call_no_credentials),
        cmocka_unit_test(test_aws_client_call_waits_for_credentials),
        cmocka_unit_test(test_aws_client_call_refused_credentials_dropped),
        cmocka_unit_test(test_aws_client_call_bad_requests),
        cmocka_unit_test(test_aws_client_create_bad_options),
        cmocka_unit_test(test_aws_client_result_error_classes),
        cmocka_unit_test(test_aws_client_error_describe_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
