/* SPDX-License-Identifier: Apache-2.0 */
/* serialize.c, document.c, record.c and jsoncheck.c: string escaping (control
 * characters, invalid UTF-8 as U+FFFD), times with microseconds, every field of a
 * segment and its subsegments checked as exact JSON through jansson, the validation
 * of annotations and metadata, in-progress documents and unsampled segments. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "sdk_rig.h"

#define ROOT   "1-5759e988-bd862e3fe1be46a994272793"
#define PARENT "53995c3f42cd8ad8"

static void write_string(const char *in, size_t n, char *out, size_t cap, size_t *len)
{
    struct xray__writer w = {out, 0, cap, false};
    xray__serialize_string(&w, in, n);
    assert_false(w.overflow);
    *len = w.len;
}

static void test_serialize_string_escapes(void **state)
{
    (void)state;
    static const char in[] = "a\"b\\c\x01\x1f\n\t\r\b\f\x7f \xc3\xa9 \xf0\x9f\x98\x80";
    static const char want[] = "\"a\\\"b\\\\c\\u0001\\u001f\\n\\t\\r\\b\\f\x7f \xc3\xa9 "
                               "\xf0\x9f\x98\x80\"";
    char out[256];
    size_t len;
    write_string(in, sizeof(in) - 1, out, sizeof(out), &len);
    assert_int_equal(len, sizeof(want) - 1);
    assert_memory_equal(out, want, len);
    json_error_t e;
    json_t *v = json_loadb(out, len, JSON_DECODE_ANY, &e);
    assert_non_null(v);
    assert_int_equal(json_string_length(v), sizeof(in) - 1);
    assert_memory_equal(json_string_value(v), in, sizeof(in) - 1);
    json_decref(v);
}

static void test_serialize_string_invalid_utf8(void **state)
{
    (void)state;
#define FFFD "\xef\xbf\xbd"
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"\xff", FFFD},
        {"a\xc3 b", "a" FFFD " b"},                /* truncated sequence */
        {"\xc0\x80", FFFD FFFD},                   /* overlong NUL */
        {"\xe0\x80\xaf", FFFD FFFD FFFD},          /* overlong '/' */
        {"\xed\xa0\x80", FFFD FFFD FFFD},          /* UTF-16 surrogate */
        {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD}, /* past U+10FFFF */
        {"x\xe2\x82", "x" FFFD FFFD},              /* cut at the end */
        {"\xe2\x82\xac", "\xe2\x82\xac"},          /* the euro sign is fine */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64], want[64];
        size_t len;
        write_string(cases[i].in, strlen(cases[i].in), out, sizeof(out), &len);
        snprintf(want, sizeof(want), "\"%s\"", cases[i].want);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(out, want, len);
        json_error_t e;
        json_t *v = json_loadb(out, len, JSON_DECODE_ANY, &e);
        assert_non_null(v); /* jansson rejects invalid UTF-8: the output is valid */
        assert_string_equal(json_string_value(v), cases[i].want);
        json_decref(v);
    }
    /* A string whose escaped form does not fit overflows instead of being cut. */
    char small[4];
    struct xray__writer w = {small, 0, sizeof(small), false};
    xray__serialize_string(&w, "\n\n", 2);
    assert_true(w.overflow);
}

static void test_serialize_quote_cuts_at_utf8_boundary(void **state)
{
    (void)state;
    struct xray__arena a = {0};
    size_t len;
    const char *q = xray__serialize_quote(&a, "ab\xc3\xa9z", 5, 3, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(q, "\"ab\"", 4);
    q = xray__serialize_quote(&a, "ab\xc3\xa9z", 5, 4, &len);
    assert_memory_equal(q, "\"ab\xc3\xa9\"", 6);
    xray__arena_free(&a);
}

static void test_serialize_time_and_numbers(void **state)
{
    (void)state;
    char out[64];
    struct xray__writer w = {out, 0, sizeof(out), false};
    xray__serialize_time(&w, 1700000000000001ull);
    xray__serialize_lit(&w, " ");
    xray__serialize_time(&w, 0);
    xray__serialize_lit(&w, " ");
    xray__serialize_i64(&w, INT64_MIN);
    xray__serialize_lit(&w, " ");
    xray__serialize_i64(&w, 0);
    assert_int_equal(w.len, strlen("1700000000.000001 0.000000 -9223372036854775808 0"));
    assert_memory_equal(out, "1700000000.000001 0.000000 -9223372036854775808 0", w.len);
    char d[32];
    assert_int_equal(xray__serialize_double(d, 1.5), 3);
    assert_string_equal(d, "1.5");
    assert_int_equal(xray__serialize_double(d, 0.1), 3);
    assert_string_equal(d, "0.1");
    xray__serialize_double(d, 1.0 / 3.0);
    assert_true(strtod(d, NULL) == 1.0 / 3.0);
    assert_int_equal(xray__serialize_double(d, NAN), 0);
    assert_int_equal(xray__serialize_double(d, INFINITY), 0);
}

static void test_jsoncheck_value(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "1",
        "-0.5e+3",
        "\"s\\u00e9\\n\"",
        "true",
        "null",
        " [1, {\"a\": [false]}] ",
        "{}",
        "[]",
        "\"\xc3\xa9\"",
        "{\"a\":{\"b\":{\"c\":1}}}",
    };
    static const char *const no[] = {
        "",
        "01",
        "1.",
        ".5",
        "+1",
        "[1,]",
        "{\"a\"}",
        "{a:1}",
        "\"x",
        "\"\\x\"",
        "\"\x01\"",
        "tru",
        "1 2",
        "[",
        "\"\xff\"",
        "{\"a\":1,}",
        "\"\xed\xa0\x80\"",
        "nan",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (xray__jsoncheck_value(ok[i], strlen(ok[i]), 16) != 0)
            fail_msg("should pass: %s", ok[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (xray__jsoncheck_value(no[i], strlen(no[i]), 16) != XRAY_SDK_EJSON)
            fail_msg("should fail: %s", no[i]);
    char deep[64];
    memset(deep, '[', 16);
    memset(deep + 16, ']', 16);
    assert_int_equal(xray__jsoncheck_value(deep, 32, 16), 0);
    assert_int_equal(xray__jsoncheck_value(deep, 32, 15), XRAY_SDK_EJSON);
}

static json_t *load(const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_error_t e;
    json_t *v = json_loads(buf, 0, &e);
    if (v == NULL)
        fail_msg("expected JSON does not parse: %s at %d", e.text, e.position);
    return v;
}

static void assert_json_equal(json_t *got, json_t *want)
{
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(want, JSON_SORT_KEYS);
        fprintf(stderr, "got:  %s\nwant: %s\n", g, w);
        free(g);
        free(w);
        fail();
    }
}

static void test_document_every_field(void **state)
{
    (void)state;
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.service_name = "svc";
    cfg.service_version = "1.2.3";
    cfg.origin = "AWS::EC2::Instance";
    cfg.sampler = XRAY_SAMPLER_NONE; /* the header's Sampled=1 wins */
    cfg.log_level = XRAY_LOG_SILENT;
    struct xray_recorder *rec = rig_recorder(&cfg);
    assert_non_null(rec);
    struct xray_trace_header h;
    const char *hv = "Root=" ROOT ";Parent=" PARENT ";Sampled=1";
    assert_int_equal(xray_header_parse(hv, strlen(hv), &h), 0);
    struct xray_segment_options o = {.header = &h};
    struct xray_segment *seg = xray_segment_begin(rec, &o);
    assert_true(xray_segment_is_sampled(seg));
    assert_int_equal(xray_segment_set_user(seg, "alice"), 0);
    struct xray_http_request req = {.method = "GET",
                                    .url = "https://example.com/x?y=1",
                                    .user_agent = "curl/8",
                                    .client_ip = "10.0.0.1",
                                    .x_forwarded_for = true};
    assert_int_equal(xray_segment_set_http_request(seg, &req), 0);
    assert_int_equal(xray_segment_set_http_response(seg, 503, 42), 0);
    struct xray_aws_info aws = {.operation = "GetItem", .region = "us-east-1", .retries = 2};
    assert_int_equal(xray_segment_set_aws(seg, &aws), 0);
    assert_int_equal(xray_segment_annotate_string(seg, "s", "v\n"), 0);
    assert_int_equal(xray_segment_annotate_int(seg, "i", -5), 0);
    assert_int_equal(xray_segment_annotate_double(seg, "d", 1.5), 0);
    assert_int_equal(xray_segment_annotate_bool(seg, "b", true), 0);
    const char *meta = "{\"a\":[1,2,{\"b\":null}]}";
    assert_int_equal(xray_segment_metadata_json(seg, NULL, "k", meta, strlen(meta)), 0);
    assert_int_equal(xray_segment_metadata_int(seg, "app", "n", 7), 0);
    assert_int_equal(xray_segment_metadata_string(seg, "default", "str", "x"), 0);
    assert_int_equal(xray_segment_metadata_bool(seg, "app", "n", false), 0); /* replaces */

    atomic_store(&rig.now_us, 1700000000123500ull);
    struct xray_segment *db = xray_subsegment_begin(seg, "db");
    assert_int_equal(xray_segment_set_namespace(db, XRAY_NAMESPACE_REMOTE), 0);
    struct xray_sql_info sql = {
        .url = "postgres://h/db", .sanitized_query = "select 1", .database_type = "PostgreSQL"};
    assert_int_equal(xray_segment_set_sql(db, &sql), 0);
    assert_int_equal(xray_segment_set_http_response(db, 429, -1), 0);
    xray_segment_end_at(db, 1700000000124000ull);
    struct xray_segment *call = xray_subsegment_begin(seg, "call");
    assert_int_equal(xray_segment_set_namespace(call, XRAY_NAMESPACE_AWS), 0);
    struct xray_aws_info aws2 = {.operation = "PutItem", .table_name = "t", .retries = -1};
    assert_int_equal(xray_segment_set_aws(call, &aws2), 0);
    assert_int_equal(xray_segment_add_exception(call, "Err", "boom", 0), 0);
    char db_id[17], call_id[17], seg_id[17];
    strcpy(db_id, xray_segment_id(db));
    strcpy(call_id, xray_segment_id(call));
    strcpy(seg_id, xray_segment_id(seg));
    atomic_store(&rig.now_us, 1700000000125000ull);
    xray_segment_end(call);
    assert_int_equal(rig.n, 0); /* nothing until the segment ends */
    atomic_store(&rig.now_us, 1700000000125456ull);
    xray_segment_end(seg);
    assert_int_equal(rig.n, 1);

    json_t *got = rig_doc(0);
    assert_non_null(got);
    assert_non_null(strstr(rig_body(0), "\"start_time\":1700000000.123456,"));
    assert_non_null(strstr(rig_body(0), "\"end_time\":1700000000.125456"));
    json_t *exc = json_object_get(
        json_object_get(json_array_get(json_object_get(got, "subsegments"), 1), "cause"),
        "exceptions");
    const char *exc_id = json_string_value(json_object_get(json_array_get(exc, 0), "id"));
    assert_non_null(exc_id);
    assert_int_equal(strlen(exc_id), 16);
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    json_t *want = load(
        "{\"name\":\"svc\",\"id\":\"%s\",\"trace_id\":\"" ROOT "\",\"parent_id\":\"" PARENT "\","
        "\"start_time\":1700000000.123456,\"end_time\":1700000000.125456,"
        "\"origin\":\"AWS::EC2::Instance\",\"user\":\"alice\",\"fault\":true,"
        "\"http\":{\"request\":{\"method\":\"GET\",\"url\":\"https://example.com/x?y=1\","
        "\"user_agent\":\"curl/8\",\"client_ip\":\"10.0.0.1\",\"x_forwarded_for\":true},"
        "\"response\":{\"status\":503,\"content_length\":42}},"
        "\"aws\":{\"operation\":\"GetItem\",\"region\":\"us-east-1\",\"retries\":2,"
        "\"xray\":{\"sdk\":\"X-Ray for C\",\"sdk_version\":\"%s\"}},"
        "\"service\":{\"version\":\"1.2.3\"},"
        "\"annotations\":{\"s\":\"v\\n\",\"i\":-5,\"d\":1.5,\"b\":true},"
        "\"metadata\":{\"default\":{\"k\":{\"a\":[1,2,{\"b\":null}]},\"str\":\"x\"},"
        "\"app\":{\"n\":false}},"
        "\"subsegments\":["
        "{\"name\":\"db\",\"id\":\"%s\",\"start_time\":1700000000.1235,"
        "\"end_time\":1700000000.124,\"namespace\":\"remote\",\"error\":true,\"throttle\":true,"
        "\"http\":{\"response\":{\"status\":429}},\"sql\":{\"url\":\"postgres://h/db\","
        "\"sanitized_query\":\"select 1\",\"database_type\":\"PostgreSQL\"}},"
        "{\"name\":\"call\",\"id\":\"%s\",\"start_time\":1700000000.1235,"
        "\"end_time\":1700000000.125,\"namespace\":\"aws\",\"fault\":true,"
        "\"aws\":{\"operation\":\"PutItem\",\"table_name\":\"t\"},"
        "\"cause\":{\"working_directory\":\"%s\",\"exceptions\":[{\"id\":\"%s\","
        "\"message\":\"boom\",\"type\":\"Err\"}]}}]}",
        seg_id, XRAYD_VERSION, db_id, call_id, cwd, exc_id);
    assert_json_equal(got, want);
    json_decref(got);
    json_decref(want);
    rig_reset();
    xray_recorder_destroy(rec);
}

static void test_record_annotation_rules(void **state)
{
    (void)state;
    struct xray_recorder *rec = rig_recorder(NULL);
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    assert_int_equal(xray_segment_annotate_int(seg, "bad-key", 1), XRAY_SDK_EKEY);
    assert_int_equal(xray_segment_annotate_int(seg, "", 1), XRAY_SDK_EKEY);
    assert_int_equal(xray_segment_annotate_int(seg, NULL, 1), -EINVAL);
    char longkey[XRAY_ANNOTATION_KEY_MAX + 2];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_int_equal(xray_segment_annotate_int(seg, longkey, 1), XRAY_SDK_EKEY);
    longkey[XRAY_ANNOTATION_KEY_MAX] = '\0';
    assert_int_equal(xray_segment_annotate_int(seg, longkey, 1), 0);
    assert_int_equal(xray_segment_annotate_double(seg, "nan", NAN), -EINVAL);
    assert_int_equal(xray_segment_annotate_string(seg, "s", NULL), -EINVAL);
    for (int i = 1; i < XRAY_ANNOTATIONS_MAX; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(xray_segment_annotate_int(seg, key, i), 0);
    }
    assert_int_equal(xray_segment_annotate_int(seg, "one_more", 1), XRAY_SDK_ELIMIT);
    assert_int_equal(xray_segment_annotate_int(seg, "k1", 100), 0); /* replacing is fine */
    /* Metadata: reserved namespace, invalid JSON, too deep. */
    assert_int_equal(xray_segment_metadata_int(seg, "AWS.x", "k", 1), -EINVAL);
    assert_int_equal(xray_segment_metadata_json(seg, NULL, "k", "{", 1), XRAY_SDK_EJSON);
    char deep[40];
    memset(deep, '[', 17);
    memset(deep + 17, ']', 17);
    assert_int_equal(xray_segment_metadata_json(seg, NULL, "k", deep, 34), XRAY_SDK_EJSON);
    assert_int_equal(xray_segment_metadata_json(seg, NULL, "k", deep + 1, 32), 0);
    /* Kind checks. */
    struct xray_segment *sub = xray_subsegment_begin(seg, "sub");
    assert_int_equal(xray_segment_set_user(sub, "u"), XRAY_SDK_EKIND);
    assert_int_equal(xray_segment_set_namespace(seg, XRAY_NAMESPACE_REMOTE), XRAY_SDK_EKIND);
    assert_int_equal(xray_segment_set_http_response(sub, 99, 0), -EINVAL);
    xray_segment_end(sub);
    xray_segment_end(seg);
    assert_int_equal(rig.n, 1);
    json_t *doc = rig_doc(0);
    json_t *ann = json_object_get(doc, "annotations");
    assert_int_equal(json_object_size(ann), XRAY_ANNOTATIONS_MAX);
    assert_int_equal(json_integer_value(json_object_get(ann, "k1")), 100);
    assert_non_null(json_object_get(ann, longkey));
    json_decref(doc);
    struct xray_recorder_counters c;
    xray_recorder_counters(rec, &c);
    assert_int_equal(c.limit_dropped, 1);
    rig_reset();
    xray_recorder_destroy(rec);
}

static void test_document_in_progress_and_unsampled(void **state)
{
    (void)state;
    struct xray_recorder *rec = rig_recorder(NULL);
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    struct xray_segment *sub = xray_subsegment_begin(seg, "long");
    assert_int_equal(xray_segment_flush_in_progress(seg), 0);
    assert_int_equal(xray_segment_flush_in_progress(sub), 0);
    assert_int_equal(rig.n, 2);
    json_t *d = rig_doc(0);
    assert_true(json_is_true(json_object_get(d, "in_progress")));
    assert_null(json_object_get(d, "end_time"));
    json_t *nested = json_array_get(json_object_get(d, "subsegments"), 0);
    assert_true(json_is_true(json_object_get(nested, "in_progress")));
    json_decref(d);
    d = rig_doc(1);
    assert_string_equal(json_string_value(json_object_get(d, "type")), "subsegment");
    assert_string_equal(json_string_value(json_object_get(d, "parent_id")), xray_segment_id(seg));
    assert_string_equal(json_string_value(json_object_get(d, "trace_id")),
                        xray_segment_trace_id(seg));
    assert_true(json_is_true(json_object_get(d, "in_progress")));
    json_decref(d);
    xray_segment_end(sub);
    xray_segment_end(seg);
    assert_int_equal(rig.n, 3);
    d = rig_doc(2);
    assert_non_null(json_object_get(d, "end_time"));
    assert_null(json_object_get(d, "in_progress"));
    json_decref(d);
    rig_reset();

    /* Unsampled: ids exist, nothing is recorded or sent. */
    struct xray_segment_options o = {.sampled = XRAY_SAMPLED_NO};
    seg = xray_segment_begin(rec, &o);
    assert_non_null(seg);
    assert_false(xray_segment_is_sampled(seg));
    assert_int_equal(xray_segment_annotate_int(seg, "k", 1), 0);
    sub = xray_subsegment_begin(seg, "x");
    assert_non_null(sub);
    assert_int_equal(xray_segment_flush_in_progress(seg), 0);
    xray_segment_end(sub);
    xray_segment_end(seg);
    assert_int_equal(rig.n, 0);
    struct xray_recorder_counters c;
    xray_recorder_counters(rec, &c);
    assert_int_equal(c.segments_begun, 2);
    assert_int_equal(c.segments_sampled, 1);
    assert_int_equal(c.in_progress_sent, 2);
    xray_recorder_destroy(rec);
}

static void test_document_exception_stack(void **state)
{
    (void)state;
    struct xray_recorder *rec = rig_recorder(NULL);
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    assert_int_equal(xray_segment_add_exception(seg, "E", "m\x01",
                                                XRAY_EXCEPTION_STACK | XRAY_EXCEPTION_REMOTE |
                                                    XRAY_EXCEPTION_ERROR),
                     0);
    xray_segment_end(seg);
    json_t *d = rig_doc(0);
    assert_non_null(d);
    assert_true(json_is_true(json_object_get(d, "error")));
    assert_null(json_object_get(d, "fault"));
    json_t *e = json_array_get(json_object_get(json_object_get(d, "cause"), "exceptions"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "message")), "m\x01");
    assert_true(json_is_true(json_object_get(e, "remote")));
    json_t *stack = json_object_get(e, "stack");
    assert_true(json_array_size(stack) >= 1);
    assert_true(json_is_string(json_object_get(json_array_get(stack, 0), "path")));
    json_decref(d);
    rig_reset();
    xray_recorder_destroy(rec);
}

static void test_null_segment_is_a_no_op(void **state)
{
    (void)state;
    assert_int_equal(xray_segment_annotate_int(NULL, "k", 1), 0);
    assert_int_equal(xray_segment_annotate_string(NULL, "k", NULL), 0);
    assert_int_equal(xray_segment_metadata_json(NULL, NULL, "k", "{", 1), 0);
    assert_int_equal(xray_segment_set_http_request(NULL, NULL), 0);
    assert_int_equal(xray_segment_add_exception(NULL, "t", "m", XRAY_EXCEPTION_STACK), 0);
    assert_null(xray_subsegment_begin(NULL, "x"));
    assert_null(xray_segment_begin(NULL, NULL));
    xray_segment_end(NULL);
    /* A disabled recorder begins nothing. */
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.enabled = false;
    cfg.log_level = XRAY_LOG_SILENT;
    struct xray_recorder *rec = rig_recorder(&cfg);
    assert_non_null(rec);
    assert_false(xray_recorder_enabled(rec));
    assert_null(xray_segment_begin(rec, NULL));
    xray_recorder_destroy(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serialize_string_escapes),
        cmocka_unit_test(test_serialize_string_invalid_utf8),
        cmocka_unit_test(test_serialize_quote_cuts_at_utf8_boundary),
        cmocka_unit_test(test_serialize_time_and_numbers),
        cmocka_unit_test(test_jsoncheck_value),
        cmocka_unit_test(test_document_every_field),
        cmocka_unit_test(test_record_annotation_rules),
        cmocka_unit_test(test_document_in_progress_and_unsampled),
        cmocka_unit_test(test_document_exception_stack),
        cmocka_unit_test(test_null_segment_is_a_no_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
