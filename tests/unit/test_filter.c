/* SPDX-License-Identifier: Apache-2.0 */
/* Filter expressions: each supported form matching and not matching (through the
 * store's query, as the read API runs them), precedence, case, escapes, and the
 * message for everything refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"
#include "segment/scan.h"
#include "trace/filter.h"
#include "trace/store.h"

#define SUPPORTED                                                                                  \
    "supported: service(\"x\"), responsetime|duration|http.status OP n, fault, error, "            \
    "throttle, ok, http.url =|CONTAINS \"s\", http.method = \"s\", user = \"s\", "                 \
    "annotation.KEY OP v, and, or, not, ()"

#define TA "1-00000000-000000000000000000000001"
#define TB "1-00000000-000000000000000000000002"
#define TC "1-00000000-000000000000000000000003"
#define TD "1-00000000-000000000000000000000004"

/* 01: web, GET /api/users 200, 1 s, alice, customer=acme count=3 vip=true.
 * 02: web -> auth, POST /login 500 fault, 2.5 s, bob, customer=globex count=10.
 * 03: worker, 429 throttle (and error), 0.25 s, vip=false.
 * 04: api, GET /api/orders 404, 0.5 s, customer=acme. */
static const char *const docs[][2] = {
    {TA, "{\"name\":\"web\",\"id\":\"a000000000000001\",\"trace_id\":\"" TA "\","
         "\"start_time\":100,\"end_time\":101,\"origin\":\"AWS::EC2::Instance\","
         "\"user\":\"alice\",\"http\":{\"request\":{\"method\":\"GET\","
         "\"url\":\"http://example.com/api/users\"},\"response\":{\"status\":200}},"
         "\"annotations\":{\"customer\":\"acme\",\"count\":3,\"vip\":true,"
         "\"quote\":\"say \\\"hi\\\" \\\\ bye\"}}"},
    {TB, "{\"name\":\"web\",\"id\":\"b000000000000001\",\"trace_id\":\"" TB "\","
         "\"start_time\":200,\"end_time\":202.5,\"origin\":\"AWS::EC2::Instance\","
         "\"user\":\"bob\",\"fault\":true,\"http\":{\"request\":{\"method\":\"POST\","
         "\"url\":\"http://example.com/login\"},\"response\":{\"status\":500}},"
         "\"annotations\":{\"customer\":\"globex\",\"count\":10}}"},
    {TB, "{\"name\":\"auth\",\"id\":\"b000000000000002\",\"trace_id\":\"" TB "\","
         "\"parent_id\":\"b000000000000009\",\"start_time\":200.5,\"end_time\":202}"},
    {TC, "{\"name\":\"worker\",\"id\":\"c000000000000001\",\"trace_id\":\"" TC "\","
         "\"start_time\":300,\"end_time\":300.25,\"throttle\":true,\"error\":true,"
         "\"http\":{\"response\":{\"status\":429}},\"annotations\":{\"vip\":false}}"},
    {TD, "{\"name\":\"api\",\"id\":\"d000000000000001\",\"trace_id\":\"" TD "\","
         "\"start_time\":400,\"end_time\":400.5,\"http\":{\"request\":{\"method\":\"GET\","
         "\"url\":\"http://example.com/api/orders\"},\"response\":{\"status\":404}},"
         "\"annotations\":{\"customer\":\"acme\"}}"},
};

static struct store *st;

static int setup(void **state)
{
    (void)state;
    static struct segment_view v;
    st = store_create(1 << 20);
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        size_t len = strlen(docs[i][1]);
        assert_int_equal(scan_document(docs[i][1], len, &v), 0);
        assert_int_equal(store_add(st, docs[i][0], &v, docs[i][1], len, i), 0);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_destroy(st);
    return 0;
}

/* The last two digits of the ids of the traces expr matches, comma-separated. */
static const char *matches(const char *expr)
{
    static char out[256];
    struct filter *f = NULL;
    char err[XRAY_ERR_LEN] = "";
    int rc = filter_parse(expr, strlen(expr), &f, err);
    if (rc != 0)
        fail_msg("%s: %s", expr, err);
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_append_str(&b, "{");
    struct store_query q = {.start_s = 0, .end_s = 1000, .filter = f};
    uint64_t next;
    assert_int_equal(store_write_summaries(st, &q, &b, &next, NULL), 0);
    buf_append_str(&b, "}");
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(j);
    size_t i, used = 0;
    json_t *x;
    out[0] = '\0';
    json_array_foreach(json_object_get(j, "TraceSummaries"), i, x)
    {
        const char *id = json_string_value(json_object_get(x, "Id"));
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%s", used ? "," : "",
                                 id + strlen(id) - 2);
    }
    json_decref(j);
    buf_free(&b);
    filter_free(f);
    return out;
}

/* The error filter_parse() gives for expr. */
static const char *refused(const char *expr)
{
    static char err[XRAY_ERR_LEN];
    struct filter *f = (struct filter *)1;
    err[0] = '\0';
    assert_int_equal(filter_parse(expr, strlen(expr), &f, err), XRAY_EPARSE);
    assert_null(f);
    return err;
}

static void test_filter_service(void **state)
{
    (void)state;
    assert_string_equal(matches("service(\"web\")"), "01,02");
    assert_string_equal(matches("service(\"auth\")"), "02");
    assert_string_equal(matches("service(\"nope\")"), "");
    assert_string_equal(matches("service(\"WEB\")"), ""); /* names are case-sensitive */
    assert_string_equal(matches("service( \"worker\" )"), "03");
    assert_string_equal(matches("service(\"web\") or service(\"worker\")"), "01,02,03");
    assert_string_equal(matches("service(\"web\") and annotation.count > 5"), "02");
}

static void test_filter_times(void **state)
{
    (void)state;
    assert_string_equal(matches("responsetime > 2"), "02");
    assert_string_equal(matches("responsetime <= 0.5"), "03,04");
    assert_string_equal(matches("responsetime = 1"), "01");
    assert_string_equal(matches("responsetime >= 5"), "");
    assert_string_equal(matches("duration >= 2.5"), "02");
    assert_string_equal(matches("duration < 0.5"), "03");
    assert_string_equal(matches("duration != 1"), "02,03,04");
    assert_string_equal(matches("duration > 2.5e0"), "");
    assert_string_equal(matches("duration > -1"), "01,02,03,04");
}

static void test_filter_status(void **state)
{
    (void)state;
    assert_string_equal(matches("fault"), "02");
    assert_string_equal(matches("error"), "03,04"); /* a throttle is a 4xx error too */
    assert_string_equal(matches("throttle"), "03");
    assert_string_equal(matches("ok"), "01");
    assert_string_equal(matches("http.status = 200"), "01");
    assert_string_equal(matches("http.status >= 400"), "02,03,04");
    assert_string_equal(matches("http.status < 400"), "01");
    assert_string_equal(matches("http.status = 302"), "");
}

static void test_filter_http_user(void **state)
{
    (void)state;
    assert_string_equal(matches("http.url = \"http://example.com/login\""), "02");
    assert_string_equal(matches("http.url = \"http://example.com\""), "");
    assert_string_equal(matches("http.url CONTAINS \"example.com/api\""), "01,04");
    assert_string_equal(matches("http.url contains \"nothing\""), "");
    assert_string_equal(matches("http.method = \"POST\""), "02");
    assert_string_equal(matches("http.method = \"GET\""), "01,04");
    assert_string_equal(matches("http.method = \"get\""), "");
    assert_string_equal(matches("user = \"alice\""), "01");
    assert_string_equal(matches("user = \"carol\""), "");
}

static void test_filter_annotations(void **state)
{
    (void)state;
    assert_string_equal(matches("annotation.customer = \"acme\""), "01,04");
    assert_string_equal(matches("annotation.customer != \"acme\""), "02");
    assert_string_equal(matches("annotation.customer = \"initech\""), "");
    assert_string_equal(matches("annotation.count > 5"), "02");
    assert_string_equal(matches("annotation.count <= 3"), "01");
    assert_string_equal(matches("annotation.count = 3"), "01");
    assert_string_equal(matches("annotation.count != 3"), "02");
    assert_string_equal(matches("annotation.count < 3"), "");
    assert_string_equal(matches("annotation.vip = true"), "01");
    assert_string_equal(matches("annotation.vip = FALSE"), "03");
    assert_string_equal(matches("annotation.vip != true"), "03");
    assert_string_equal(matches("annotation.missing = \"x\""), "");
    assert_string_equal(matches("annotation.count = \"3\""), ""); /* a number is no string */
    assert_string_equal(matches("annotation.quote = \"say \\\"hi\\\" \\\\ bye\""), "01");
    assert_string_equal(matches("Annotation.customer = \"acme\""), "01,04");
}

static void test_filter_precedence(void **state)
{
    (void)state;
    assert_string_equal(matches("fault or throttle and service(\"worker\")"), "02,03");
    assert_string_equal(matches("(fault or throttle) and service(\"web\")"), "02");
    assert_string_equal(matches("fault or error and service(\"api\")"), "02,04");
    assert_string_equal(matches("not fault and service(\"web\")"), "01");
    assert_string_equal(matches("!ok"), "02,03,04");
    assert_string_equal(matches("!(ok)"), "02,03,04");
    assert_string_equal(matches("NOT (fault OR error)"), "01");
    assert_string_equal(matches("not not fault"), "02");
    assert_string_equal(matches("SERVICE(\"web\") AND Fault"), "02");
    assert_string_equal(matches("(ok or fault) and annotation.count > 2"), "01,02");
    assert_string_equal(matches("ok or fault and throttle"), "01");
    assert_string_equal(matches("((((fault))))"), "02");
    assert_string_equal(matches("error and not throttle or ok"), "01,04");
}

static void test_filter_refused(void **state)
{
    (void)state;
    assert_string_equal(refused("foo"),
                        "unsupported filter expression at offset 0 (\"foo\"); " SUPPORTED);
    assert_string_equal(refused("service(\"web\") foo"),
                        "unsupported filter expression at offset 15 (\"foo\"); " SUPPORTED);
    assert_string_equal(refused("fault and"),
                        "unsupported filter expression at offset 9 (end of input); " SUPPORTED);
    assert_string_equal(refused(""),
                        "unsupported filter expression at offset 0 (end of input); " SUPPORTED);
    assert_string_equal(refused("service(web)"),
                        "unsupported filter expression at offset 8 (\"web\"); " SUPPORTED);
    assert_string_equal(refused("service()"),
                        "unsupported filter expression at offset 8 (\")\"); " SUPPORTED);
    assert_string_equal(refused("service(\"a\", \"b\")"),
                        "unsupported filter expression at offset 11 (\",\"); " SUPPORTED);
    assert_string_equal(refused("annotation.customer > \"x\""),
                        "unsupported filter expression at offset 22 (\"\"x\"\"); " SUPPORTED);
    assert_string_equal(refused("annotation.vip > true"),
                        "unsupported filter expression at offset 17 (\"true\"); " SUPPORTED);
    assert_string_equal(refused("http.url != \"x\""),
                        "unsupported filter expression at offset 9 (\"!=\"); " SUPPORTED);
    assert_string_equal(
        refused("annotation.a.b = 1"),
        "unsupported filter expression at offset 0 (\"annotation.a...\"); " SUPPORTED);
    assert_string_equal(refused("annotation. = 1"),
                        "unsupported filter expression at offset 0 (\"annotation.\"); " SUPPORTED);
    assert_string_equal(
        refused("user = \"unterminated"),
        "unsupported filter expression at offset 7 (\"\"unterminate...\"); " SUPPORTED);
    assert_string_equal(refused("user = \"bad \\n\""),
                        "unsupported filter expression at offset 12 (\"\\n\"\"); " SUPPORTED);
    assert_string_equal(refused("responsetime > 5ms"),
                        "unsupported filter expression at offset 15 (\"5\"); " SUPPORTED);
    assert_string_equal(refused("(fault"),
                        "unsupported filter expression at offset 6 (end of input); " SUPPORTED);
    assert_string_equal(refused("fault)"),
                        "unsupported filter expression at offset 5 (\")\"); " SUPPORTED);
    assert_string_equal(refused("fault = true"),
                        "unsupported filter expression at offset 6 (\"=\"); " SUPPORTED);
    assert_string_equal(refused("fault && error"),
                        "unsupported filter expression at offset 6 (\"&\"); " SUPPORTED);
    assert_string_equal(refused("partial"),
                        "unsupported filter expression at offset 0 (\"partial\"); " SUPPORTED);
    assert_string_equal(refused("service(\"x\") { fault }"),
                        "unsupported filter expression at offset 13 (\"{\"); " SUPPORTED);
    assert_string_equal(refused("duration > \xff"),
                        "unsupported filter expression at offset 11 (\"?\"); " SUPPORTED);
    assert_true(strlen(refused("annotation.customer > \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"")) <
                XRAY_ERR_LEN - 1);
}

static void test_filter_limits(void **state)
{
    (void)state;
    char expr[FILTER_MAX_BYTES + 2];
    /* 32 levels are fine, 33 are not. */
    size_t n = 0;
    for (int i = 0; i < 31; i++)
        expr[n++] = '(';
    memcpy(expr + n, "fault", 5), n += 5;
    for (int i = 0; i < 31; i++)
        expr[n++] = ')';
    expr[n] = '\0';
    assert_string_equal(matches(expr), "02");
    n = 0;
    for (int i = 0; i < 40; i++)
        expr[n++] = '!';
    memcpy(expr + n, "fault", 6);
    assert_string_equal(refused(expr), "filter expression nested deeper than 32 at offset 32");
    /* Long flat chains are not deep. */
    n = 0;
    while (n + 20 < FILTER_MAX_BYTES)
        n += (size_t)snprintf(expr + n, sizeof(expr) - n, "%sfault", n ? " or " : "");
    assert_string_equal(matches(expr), "02");
    memset(expr, ' ', FILTER_MAX_BYTES + 1);
    memcpy(expr, "ok", 2);
    struct filter *f;
    char err[XRAY_ERR_LEN];
    assert_int_equal(filter_parse(expr, FILTER_MAX_BYTES, &f, err), 0);
    filter_free(f);
    assert_int_equal(filter_parse(expr, FILTER_MAX_BYTES + 1, &f, err), XRAY_EPARSE);
    assert_string_equal(err, "filter expression longer than 2000 bytes");
    filter_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_service),     cmocka_unit_test(test_filter_times),
        cmocka_unit_test(test_filter_status),      cmocka_unit_test(test_filter_http_user),
        cmocka_unit_test(test_filter_annotations), cmocka_unit_test(test_filter_precedence),
        cmocka_unit_test(test_filter_refused),     cmocka_unit_test(test_filter_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
