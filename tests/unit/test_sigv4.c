/* SPDX-License-Identifier: Apache-2.0 */
/* SigV4 against three independent references: requests the reference daemon signed
 * (tests/data/http), AWS's published test-suite signatures, and curl's own signer
 * (--aws-sigv4) run against a listener on 127.0.0.1 that captures what it sent. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/sigv4.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define REQ_MAX (256 * 1024)

static struct aws_credentials creds(const char *id, const char *secret, const char *token)
{
    struct aws_credentials c = {
        .access_key_id = (char *)id,
        .secret_access_key = (char *)secret,
        .session_token = (char *)token,
    };
    return c;
}

static int64_t parse_amz_date(const char *d)
{
    struct tm tm = {0};
    assert_int_equal(sscanf(d, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
                     6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

/* "SignedHeaders=a;b;c," out of an Authorization value, into list[] (in place). */
static size_t signed_headers(const char *auth, char *buf, size_t cap, char **list, size_t max)
{
    const char *p = strstr(auth, "SignedHeaders=");
    assert_non_null(p);
    p += strlen("SignedHeaders=");
    size_t n = strcspn(p, ",");
    assert_true(n < cap);
    memcpy(buf, p, n);
    buf[n] = '\0';
    size_t count = 0;
    for (char *save = NULL, *t = strtok_r(buf, ";", &save); t != NULL && count < max;
         t = strtok_r(NULL, ";", &save))
        list[count++] = t;
    return count;
}

/* A signed header name in the fixtures' CGI form: content-type is CONTENT_TYPE,
 * others are HTTP_ + upper case with '_' for '-'. */
static void cgi_name(const char *name, char *out, size_t cap)
{
    size_t o = 0;
    if (strcmp(name, "content-type") != 0 && strcmp(name, "content-length") != 0)
        o = (size_t)snprintf(out, cap, "HTTP_");
    for (; *name != '\0' && o + 1 < cap; name++)
        out[o++] = *name == '-' ? '_' : (char)(*name >= 'a' && *name <= 'z' ? *name - 32 : *name);
    out[o] = '\0';
}

static void check_fixture(const char *file)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/http/%s", XRAYD_TEST_DATA, file);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    assert_non_null(root);
    json_t *hdrs = json_object_get(root, "headers");
    const char *auth = json_string_value(json_object_get(hdrs, "HTTP_AUTHORIZATION"));
    const char *date = json_string_value(json_object_get(hdrs, "HTTP_X_AMZ_DATE"));
    const char *body = json_string_value(json_object_get(root, "body"));
    const char *method = json_string_value(json_object_get(root, "method"));
    assert_non_null(auth);
    assert_non_null(date);
    assert_non_null(body);

    char buf[512];
    char *names[SIGV4_HEADERS_MAX];
    size_t n = signed_headers(auth, buf, sizeof(buf), names, SIGV4_HEADERS_MAX);
    struct sigv4_header h[SIGV4_HEADERS_MAX];
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], "host") == 0 || strcmp(names[i], "x-amz-date") == 0)
            continue;
        char cgi[128];
        cgi_name(names[i], cgi, sizeof(cgi));
        h[hn].name = names[i];
        h[hn].value = json_string_value(json_object_get(hdrs, cgi));
        assert_non_null(h[hn].value);
        hn++;
    }
    struct sigv4_request req = {
        .method = method != NULL ? method : "POST",
        .host = json_string_value(json_object_get(hdrs, "HTTP_HOST")),
        .path = json_string_value(json_object_get(root, "path")),
        .headers = h,
        .header_count = hn,
        .body = body,
        .body_len = strlen(body),
        .region = "us-east-1",
        .service = "xray",
        .now_s = parse_amz_date(date),
    };
    struct aws_credentials c = creds("AKIDTEST", "secret", NULL);
    struct sigv4_signature sig;
    char err[XRAY_ERR_LEN] = "";
    assert_int_equal(sigv4_sign(&req, &c, &sig, err), 0);
    assert_string_equal(sig.amz_date, date);
    assert_string_equal(sig.authorization, auth);
    json_decref(root);
}

static void test_sigv4_sign_daemon_fixtures(void **state)
{
    (void)state;
    check_fixture("xray-daemon-3.5.0-upstream-sampling-requests-01.json");
    check_fixture("xray-daemon-3.5.0-upstream-sampling-requests-02.json");
    check_fixture("xray-daemon-3.5.0-upstream-sampling-requests-03.json");
    check_fixture("xray-daemon-3.5.0-upstream-sampling-requests-04.json");
}

/* AWS's SigV4 test suite: credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z, us-east-1,
 * service "service", host example.amazonaws.com; host and x-amz-date signed. */
static void check_suite(const char *method, const char *query, const char *signature)
{
    struct sigv4_request req = {
        .method = method,
        .host = "example.amazonaws.com",
        .path = "/",
        .query = query,
        .region = "us-east-1",
        .service = "service",
        .now_s = 1440938160,
    };
    struct aws_credentials c =
        creds("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL);
    struct sigv4_signature sig;
    assert_int_equal(sigv4_sign(&req, &c, &sig, NULL), 0);
    char want[512];
    snprintf(want, sizeof(want),
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
             "SignedHeaders=host;x-amz-date, Signature=%s",
             signature);
    assert_string_equal(sig.authorization, want);
    assert_string_equal(sig.amz_date, "20150830T123600Z");
}

static void test_sigv4_sign_aws_suite(void **state)
{
    (void)state;
    check_suite("GET", NULL, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    check_suite("POST", NULL, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    /* get-vanilla-query-order-key-case: parameters are sorted before signing. */
    check_suite("GET", "Param2=value2&Param1=value1",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

/* ---- curl as an independent signer ---- */

struct captured {
    char data[REQ_MAX + 1];
    size_t len;
    size_t head_len; /* up to and including the blank line */
};

static const char *find_header(const struct captured *c, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = strstr(c->data, "\r\n");
    while (p != NULL && (size_t)(p - c->data) + 2 < c->head_len) {
        p += 2;
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (*v == ' ')
                v++;
            *vlen = (size_t)(strstr(v, "\r\n") - v);
            return v;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

/* Runs curl (argv with "URL" replaced by the listener's URL + path) and captures the
 * request it sends. Returns false when curl cannot be run. */
static bool run_curl(const char **argv, const char *path, struct captured *cap)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(ls, 1), 0);
    socklen_t alen = sizeof(a);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", ntohs(a.sin_port), path);
    const char *args[32];
    size_t i = 0;
    for (; argv[i] != NULL && i < 31; i++)
        args[i] = strcmp(argv[i], "URL") == 0 ? url : argv[i];
    args[i] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, "curl", &fa, NULL, (char *const *)args, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        close(ls);
        return false;
    }
    /* Watchdog: a curl that never connects fails the test rather than hanging it. */
    struct pollfd pfd = {.fd = ls, .events = POLLIN};
    bool ok = poll(&pfd, 1, 10000) == 1;
    int cs = ok ? accept(ls, NULL, NULL) : -1;
    cap->len = 0;
    cap->head_len = 0;
    size_t want = 0;
    while (cs >= 0 && cap->len < REQ_MAX) {
        pfd.fd = cs;
        if (poll(&pfd, 1, 10000) != 1)
            break;
        ssize_t r = read(cs, cap->data + cap->len, REQ_MAX - cap->len);
        if (r <= 0)
            break;
        cap->len += (size_t)r;
        cap->data[cap->len] = '\0';
        if (cap->head_len == 0) {
            char *end = strstr(cap->data, "\r\n\r\n");
            if (end == NULL)
                continue;
            cap->head_len = (size_t)(end - cap->data) + 4;
            size_t vlen = 0;
            const char *cl = find_header(cap, "Content-Length", &vlen);
            want = cap->head_len + (cl != NULL ? strtoul(cl, NULL, 10) : 0);
        }
        if (cap->len >= want)
            break;
    }
    if (cs >= 0) {
        static const char resp[] =
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        ssize_t w = write(cs, resp, sizeof(resp) - 1);
        (void)w;
        close(cs);
    } else {
        kill(pid, SIGKILL);
    }
    close(ls);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return false; /* curl not found */
    assert_true(cap->head_len > 0);
    assert_true(cap->len >= want);
    return true;
}

/* Signs what curl sent, with curl's date and its choice of signed headers, and
 * compares the two Authorization values. */
static void compare_with_curl(const char *body, const char *token, const char *extra_header,
                              const char *path)
{
    char file[] = "/tmp/xrayd-sigv4-body-XXXXXX";
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    close(fd);
    char data_arg[64];
    snprintf(data_arg, sizeof(data_arg), "@%s", file);
    char token_header[256];
    const char *argv[32] = {"curl",        "-s",
                            "--aws-sigv4", "aws:amz:us-east-1:xray",
                            "--user",      "AKIDCURL:curl/secret+key",
                            "-H",          "Content-Type: application/json"};
    size_t n = 8;
    if (token != NULL) {
        snprintf(token_header, sizeof(token_header), "X-Amz-Security-Token: %s", token);
        argv[n++] = "-H";
        argv[n++] = token_header;
    }
    if (extra_header != NULL) {
        argv[n++] = "-H";
        argv[n++] = extra_header;
    }
    argv[n++] = "--data-binary";
    argv[n++] = data_arg;
    argv[n++] = "URL";
    argv[n] = NULL;

    static struct captured cap;
    bool ran = run_curl(argv, path, &cap);
    unlink(file);
    if (!ran)
        skip();

    size_t alen = 0, dlen = 0, hlen = 0;
    const char *auth = find_header(&cap, "Authorization", &alen);
    const char *date = find_header(&cap, "X-Amz-Date", &dlen);
    const char *host = find_header(&cap, "Host", &hlen);
    assert_non_null(auth);
    assert_non_null(date);
    assert_non_null(host);
    char want[1024], date_s[32], host_s[64];
    snprintf(want, sizeof(want), "%.*s", (int)alen, auth);
    snprintf(date_s, sizeof(date_s), "%.*s", (int)dlen, date);
    snprintf(host_s, sizeof(host_s), "%.*s", (int)hlen, host);

    char buf[512];
    char *names[SIGV4_HEADERS_MAX];
    size_t count = signed_headers(want, buf, sizeof(buf), names, SIGV4_HEADERS_MAX);
    struct sigv4_header h[SIGV4_HEADERS_MAX];
    char values[SIGV4_HEADERS_MAX][512];
    size_t hn = 0;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(names[i], "host") == 0 || strcmp(names[i], "x-amz-date") == 0 ||
            strcmp(names[i], "x-amz-security-token") == 0)
            continue;
        size_t vlen = 0;
        const char *v = find_header(&cap, names[i], &vlen);
        assert_non_null(v);
        snprintf(values[hn], sizeof(values[hn]), "%.*s", (int)vlen, v);
        h[hn].name = names[i];
        h[hn].value = values[hn];
        hn++;
    }
    const char *q = strchr(path, '?');
    char path_only[256];
    snprintf(path_only, sizeof(path_only), "%.*s", (int)(q ? (size_t)(q - path) : strlen(path)),
             path);
    struct sigv4_request req = {
        .method = "POST",
        .host = host_s,
        .path = path_only,
        .query = q != NULL ? q + 1 : NULL,
        .headers = h,
        .header_count = hn,
        .body = cap.data + cap.head_len,
        .body_len = cap.len - cap.head_len,
        .region = "us-east-1",
        .service = "xray",
        .now_s = parse_amz_date(date_s),
    };
    assert_int_equal(req.body_len, strlen(body));
    assert_memory_equal(req.body, body, req.body_len);
    struct aws_credentials c = creds("AKIDCURL", "curl/secret+key", token);
    struct sigv4_signature sig;
    char err[XRAY_ERR_LEN] = "";
    assert_int_equal(sigv4_sign(&req, &c, &sig, err), 0);
    assert_string_equal(sig.amz_date, date_s);
    assert_string_equal(sig.authorization, want);
}

static void test_sigv4_sign_matches_curl(void **state)
{
    (void)state;
    compare_with_curl("{}", NULL, NULL, "/TraceSegments");
    compare_with_curl("{\"TraceSegmentDocuments\":[\"{\\\"name\\\":\\\"svc\\\",\\\"id\\\":"
                      "\\\"70de5b6f19ff9a0a\\\",\\\"start_time\\\":1.478293361271E9}\"]}",
                      NULL, NULL, "/TraceSegments");
}

static void test_sigv4_sign_matches_curl_session_token(void **state)
{
    (void)state;
    compare_with_curl("{\"TelemetryRecords\":[]}",
                      "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token/abc==", NULL,
                      "/TelemetryRecords");
}

/* The upload path signs X-Amzn-Xray-Timestamp (daemon-compat.md, "Batching"). */
static void test_sigv4_sign_xray_timestamp_header(void **state)
{
    (void)state;
    compare_with_curl("{\"TraceSegmentDocuments\":[]}", NULL,
                      "X-Amzn-Xray-Timestamp: 1795304610.123456789", "/TraceSegments");

    struct sigv4_header h[] = {{"Content-Type", "application/json"},
                               {"X-Amzn-Xray-Timestamp", "1795304610.123456789"}};
    struct sigv4_request req = {.method = "POST",
                                .host = "xray.us-east-1.amazonaws.com",
                                .path = "/TraceSegments",
                                .headers = h,
                                .header_count = 2,
                                .body = "{}",
                                .body_len = 2,
                                .region = "us-east-1",
                                .service = "xray",
                                .now_s = 1795304610};
    struct aws_credentials c = creds("AKIDTEST", "secret", "tok");
    struct sigv4_signature sig;
    assert_int_equal(sigv4_sign(&req, &c, &sig, NULL), 0);
    assert_non_null(strstr(sig.authorization, "SignedHeaders=content-type;host;x-amz-date;"
                                              "x-amz-security-token;x-amzn-xray-timestamp, "));
}

/* curl 7.88 signs the query as written (sorting came in later curl releases), so it
 * gets one already in canonical order; the sorting itself is the AWS suite's
 * get-vanilla-query-order-key-case above. */
static void test_sigv4_sign_query_matches_curl(void **state)
{
    (void)state;
    compare_with_curl("{}", NULL, NULL, "/GetSamplingRules?a=1&a-b=x.y~z&b=2");
}

static void test_sigv4_sign_precomputed_payload_hash(void **state)
{
    (void)state;
    static char body[60 * 1024];
    memset(body, 'x', sizeof(body));
    struct sigv4_header h[] = {{"content-type", "application/json"}};
    struct sigv4_request req = {.method = "POST",
                                .host = "xray.us-west-2.amazonaws.com",
                                .path = "/TraceSegments",
                                .headers = h,
                                .header_count = 1,
                                .body = body,
                                .body_len = sizeof(body),
                                .region = "us-west-2",
                                .service = "xray",
                                .now_s = 1795304610};
    struct aws_credentials c = creds("AKIDTEST", "secret", NULL);
    struct sigv4_signature a, b;
    assert_int_equal(sigv4_sign(&req, &c, &a, NULL), 0);
    char hex[65];
    assert_int_equal(sigv4_payload_hash(body, sizeof(body), hex), 0);
    assert_string_equal(hex, a.payload_hash);
    req.payload_hash = hex;
    req.body = NULL;
    assert_int_equal(sigv4_sign(&req, &c, &b, NULL), 0);
    assert_string_equal(a.authorization, b.authorization);

    /* The upload path: a 60 KB body, hashed and signed, well under a millisecond. */
    req.payload_hash = NULL;
    req.body = body;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(sigv4_sign(&req, &c, &b, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 200e3;
    printf("sigv4_sign, 60 KB body: %.1f us per call\n", us);
}

/* The signing-key cache never changes a signature: scopes and secrets interleaved,
 * more of them than the cache holds, signed on this thread (warm, entries replaced)
 * and each on a fresh thread (a cold cache) give the same Authorization. */
#define CACHE_CASES 12

struct cache_case {
    struct sigv4_request req;
    struct aws_credentials creds;
    struct sigv4_signature sig;
    int rc;
};

static void *sign_cold(void *arg)
{
    struct cache_case *c = arg;
    c->rc = sigv4_sign(&c->req, &c->creds, &c->sig, NULL);
    return NULL;
}

static void test_sigv4_sign_key_cache_transparent(void **state)
{
    (void)state;
    static const char *const secrets[] = {"secret-one", "secret-two", "wJalrXUtnFEMI/K7MDENG"};
    static const char *const regions[] = {"us-east-1", "eu-west-1"};
    static const char *const services[] = {"xray", "sts"};
    struct cache_case cases[CACHE_CASES];
    for (int i = 0; i < CACHE_CASES; i++) {
        cases[i] = (struct cache_case){
            .req = {.method = "POST",
                    .host = "example.amazonaws.com",
                    .path = "/",
                    .body = "{}",
                    .body_len = 2,
                    .region = regions[i % 2],
                    .service = services[(i / 2) % 2],
                    /* crosses midnight UTC: 2026-11-21T23:59:59Z and the next day */
                    .now_s = 1795305599 + (i % 3 == 2 ? 1 : 0)},
            .creds = creds("AKIDTEST", secrets[i % 3], NULL),
        };
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < CACHE_CASES; i++) {
            struct sigv4_signature warm;
            assert_int_equal(sigv4_sign(&cases[i].req, &cases[i].creds, &warm, NULL), 0);
            if (round == 0) {
                pthread_t t;
                assert_int_equal(pthread_create(&t, NULL, sign_cold, &cases[i]), 0);
                assert_int_equal(pthread_join(t, NULL), 0);
                assert_int_equal(cases[i].rc, 0);
            }
            assert_string_equal(warm.authorization, cases[i].sig.authorization);
        }
    }
    /* One thing changed at a time right after a warm signing (the secret, then the
     * day, then the region), each checked against a cold cache. */
    struct cache_case one = cases[0];
    struct sigv4_signature warm;
    for (int step = 0; step < 4; step++) {
        if (step == 1)
            one.creds = creds("AKIDTEST", "secret-four", NULL);
        else if (step == 2)
            one.req.now_s += 86400;
        else if (step == 3)
            one.req.region = "ap-south-1";
        assert_int_equal(sigv4_sign(&one.req, &one.creds, &warm, NULL), 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, sign_cold, &one), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(one.rc, 0);
        assert_string_equal(warm.authorization, one.sig.authorization);
    }
}

static void test_sigv4_sign_header_canonical_form(void **state)
{
    (void)state;
    /* Case, blanks and repeats are canonicalized: both requests sign alike. */
    struct sigv4_header h1[] = {{"X-Custom", "  a   b  "}, {"x-custom", "c"}, {"Accept", "*/*"}};
    struct sigv4_header h2[] = {{"accept", "*/*"}, {"x-custom", "a b"}, {"X-CUSTOM", "c"}};
    struct sigv4_request req = {.method = "POST",
                                .host = "h",
                                .path = "/",
                                .headers = h1,
                                .header_count = 3,
                                .region = "us-east-1",
                                .service = "xray",
                                .now_s = 1};
    struct aws_credentials c = creds("AKIDTEST", "secret", NULL);
    struct sigv4_signature a, b;
    assert_int_equal(sigv4_sign(&req, &c, &a, NULL), 0);
    req.headers = h2;
    assert_int_equal(sigv4_sign(&req, &c, &b, NULL), 0);
    assert_string_equal(a.authorization, b.authorization);
    assert_non_null(strstr(a.authorization, "SignedHeaders=accept;host;x-amz-date;x-custom, "));
    /* Order of repeated values matters. */
    struct sigv4_header h3[] = {{"x-custom", "c"}, {"accept", "*/*"}, {"x-custom", "a b"}};
    req.headers = h3;
    assert_int_equal(sigv4_sign(&req, &c, &b, NULL), 0);
    assert_string_not_equal(a.authorization, b.authorization);
}

static void test_sigv4_sign_rejects_bad_input(void **state)
{
    (void)state;
    const char *secret = "TopSecretValue/123";
    struct aws_credentials c = creds("AKIDTEST", secret, NULL);
    struct sigv4_signature sig;
    char err[XRAY_ERR_LEN];
    struct sigv4_header crlf[] = {{"x-a", "v\r\nx-b: w"}};
    struct sigv4_header reserved[] = {{"Host", "evil"}};
    struct sigv4_header badname[] = {{"x a", "v"}};
    struct sigv4_request base = {.method = "POST",
                                 .host = "h",
                                 .path = "/",
                                 .region = "us-east-1",
                                 .service = "xray",
                                 .now_s = 1};
    struct sigv4_request r = base;
    r.headers = crlf;
    r.header_count = 1;
    assert_int_equal(sigv4_sign(&r, &c, &sig, err), XRAY_EPARSE);
    assert_null(strstr(err, secret));
    r.headers = reserved;
    assert_int_equal(sigv4_sign(&r, &c, &sig, err), XRAY_EPARSE);
    r.headers = badname;
    assert_int_equal(sigv4_sign(&r, &c, &sig, err), XRAY_EPARSE);
    r = base;
    r.path = "TraceSegments";
    assert_int_equal(sigv4_sign(&r, &c, &sig, err), XRAY_EPARSE);
    r = base;
    r.region = "us-east-1/x";
    assert_int_equal(sigv4_sign(&r, &c, &sig, err), XRAY_EPARSE);
    r = base;
    r.query = "a=%zz";
    assert_int_equal(sigv4_sign(&r, &c, &sig, err), XRAY_EPARSE);

    /* Bounds. */
    struct sigv4_header many[SIGV4_HEADERS_MAX];
    for (int i = 0; i < SIGV4_HEADERS_MAX; i++)
        many[i] = (struct sigv4_header){"x-h", "v"};
    r = base;
    r.headers = many;
    r.header_count = SIGV4_HEADERS_MAX;
    assert_int_equal(sigv4_sign(&r, &c, &sig, err), XRAY_ETOOBIG);
    static char big[SIGV4_CANONICAL_MAX];
    memset(big, 'a', sizeof(big) - 1);
    struct sigv4_header bigh[] = {{"x-big", big}};
    r.headers = bigh;
    r.header_count = 1;
    assert_int_equal(sigv4_sign(&r, &c, &sig, err), XRAY_ETOOBIG);
    struct aws_credentials tc = creds("AKIDTEST", secret, big);
    r = base;
    assert_int_equal(sigv4_sign(&r, &tc, &sig, err), XRAY_ETOOBIG);
    assert_null(strstr(err, "aaaaaaaa"));
    assert_null(strstr(err, secret));
    r.query = big;
    assert_int_equal(sigv4_sign(&r, &c, &sig, err), XRAY_ETOOBIG);
    struct aws_credentials nocreds = creds("AKIDTEST", "", NULL);
    r = base;
    assert_int_equal(sigv4_sign(&r, &nocreds, &sig, err), XRAY_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigv4_sign_daemon_fixtures),
        cmocka_unit_test(test_sigv4_sign_aws_suite),
        cmocka_unit_test(test_sigv4_sign_matches_curl),
        cmocka_unit_test(test_sigv4_sign_matches_curl_session_token),
        cmocka_unit_test(test_sigv4_sign_xray_timestamp_header),
        cmocka_unit_test(test_sigv4_sign_query_matches_curl),
        cmocka_unit_test(test_sigv4_sign_precomputed_payload_hash),
        cmocka_unit_test(test_sigv4_sign_key_cache_transparent),
        cmocka_unit_test(test_sigv4_sign_header_canonical_form),
        cmocka_unit_test(test_sigv4_sign_rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
