/* SPDX-License-Identifier: Apache-2.0 */
/* server.c: an incoming request becomes a segment. An explicit Sampled=1|0 wins over
 * the sampler; Sampled=? is decided here and answered; a malformed header starts a new
 * trace; the rules see the URL path (of a target or a full URL) and the method; the
 * segment records http.request (full URL, X-Forwarded-For) and the response. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <unistd.h>

#include "sdk_rig.h"

static const char root[] = "1-5759e988-bd862e3fe1be46a994272793";

static struct xray_recorder *recorder_mode(enum xray_sampler_mode mode)
{
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.sampler = mode;
    cfg.log_level = XRAY_LOG_SILENT;
    cfg.daemon_address = "127.0.0.1:9"; /* never used: sends are captured */
    struct xray_recorder *rec = rig_recorder(&cfg);
    assert_non_null(rec);
    return rec;
}

static void test_server_begin_explicit_sampled_wins(void **state)
{
    (void)state;
    struct xray_recorder *none = recorder_mode(XRAY_SAMPLER_NONE);
    char hv[128];
    snprintf(hv, sizeof(hv), "Root=%s;Parent=53995c3f42cd8ad8;Sampled=1", root);
    struct xray_server_request req = {.trace_header = hv, .method = "GET", .url = "/"};
    struct xray_segment *seg = xray_server_begin(none, "front", &req, false);
    assert_true(xray_segment_is_sampled(seg));
    assert_string_equal(xray_segment_trace_id(seg), root);
    xray_server_end(seg, 200, 2);
    xray_recorder_destroy(none);

    struct xray_recorder *all = recorder_mode(XRAY_SAMPLER_ALL);
    snprintf(hv, sizeof(hv), "Root=%s;Sampled=0", root);
    seg = xray_server_begin(all, "front", &req, false);
    assert_false(xray_segment_is_sampled(seg));
    char out[XRAY_HEADER_BUF];
    /* Sampled=0 came in: the answer does not repeat a decision. */
    assert_true(xray_server_response_header(seg, out, sizeof(out)) > 0);
    assert_null(strstr(out, "Sampled"));
    xray_server_end(seg, 200, -1);
    assert_int_equal(rig.n, 0); /* an unsampled segment is never sent */
    xray_recorder_destroy(all);
}

static void test_server_begin_requested_is_answered(void **state)
{
    (void)state;
    struct xray_recorder *all = recorder_mode(XRAY_SAMPLER_ALL);
    char hv[128], out[XRAY_HEADER_BUF];
    snprintf(hv, sizeof(hv), "Root=%s;Sampled=?", root);
    struct xray_server_request req = {.trace_header = hv, .method = "GET", .url = "/"};
    struct xray_segment *seg = xray_server_begin(all, NULL, &req, false);
    assert_true(xray_server_response_header(seg, out, sizeof(out)) > 0);
    char want[128];
    snprintf(want, sizeof(want), "Root=%s;Sampled=1", root);
    assert_string_equal(out, want);
    xray_server_end(seg, 200, -1);
    xray_recorder_destroy(all);

    struct xray_recorder *none = recorder_mode(XRAY_SAMPLER_NONE);
    seg = xray_server_begin(none, NULL, &req, false);
    assert_true(xray_server_response_header(seg, out, sizeof(out)) > 0);
    snprintf(want, sizeof(want), "Root=%s;Sampled=0", root);
    assert_string_equal(out, want);
    xray_server_end(seg, 200, -1);
    xray_recorder_destroy(none);
}

static void test_server_begin_malformed_header_is_absent(void **state)
{
    (void)state;
    struct xray_recorder *rec = recorder_mode(XRAY_SAMPLER_ALL);
    const char *bad = "Root=1-xyz;Parent=nothex;Sampled=1";
    struct xray_server_request req = {
        .trace_header = bad, .trace_header_len = strlen(bad), .method = "GET", .url = "/"};
    struct xray_segment *seg = xray_server_begin(rec, NULL, &req, true);
    assert_non_null(seg);
    assert_ptr_equal(xray_context_current(), seg);
    assert_string_not_equal(xray_segment_trace_id(seg), "1-xyz");
    assert_int_equal(strlen(xray_segment_trace_id(seg)), XRAY_TRACE_ID_LEN);
    char out[XRAY_HEADER_BUF];
    xray_server_response_header(seg, out, sizeof(out));
    assert_int_equal(strncmp(out, "Root=1-", 7), 0);
    xray_server_end(seg, 200, -1);
    assert_null(xray_context_current());
    assert_int_equal(rig.n, 1);
    json_t *doc = rig_doc(0);
    assert_null(json_object_get(doc, "parent_id"));
    json_decref(doc);
    xray_recorder_destroy(rec);
}

static void test_server_begin_records_request_and_response(void **state)
{
    (void)state;
    struct xray_recorder *rec = recorder_mode(XRAY_SAMPLER_ALL);
    char hv[128];
    snprintf(hv, sizeof(hv), " Root=%s ; Parent=53995c3f42cd8ad8 ;Sampled=1;Lineage=a:1", root);
    struct xray_server_request req = {
        .trace_header = hv,
        .method = "POST",
        .url = "/orders?id=7",
        .host = "shop.example:8080",
        .user_agent = "curl/7.88",
        .client_ip = "10.0.0.9",
        .x_forwarded_for = " 203.0.113.5 , 10.0.0.1",
    };
    struct xray_segment *seg = xray_server_begin(rec, "shop", &req, false);
    char out[XRAY_HEADER_BUF];
    assert_true(xray_header_for_segment(seg, out, sizeof(out)) > 0);
    assert_non_null(strstr(out, "Lineage=a:1")); /* passed on to callees */
    xray_server_end(seg, 503, 12);
    assert_int_equal(rig.n, 1);
    json_t *doc = rig_doc(0);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "name")), "shop");
    assert_string_equal(json_string_value(json_object_get(doc, "trace_id")), root);
    assert_string_equal(json_string_value(json_object_get(doc, "parent_id")), "53995c3f42cd8ad8");
    json_t *r = json_object_get(json_object_get(doc, "http"), "request");
    assert_string_equal(json_string_value(json_object_get(r, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(r, "url")),
                        "http://shop.example:8080/orders?id=7");
    assert_string_equal(json_string_value(json_object_get(r, "user_agent")), "curl/7.88");
    assert_string_equal(json_string_value(json_object_get(r, "client_ip")), "203.0.113.5");
    assert_true(json_is_true(json_object_get(r, "x_forwarded_for")));
    json_t *resp = json_object_get(json_object_get(doc, "http"), "response");
    assert_int_equal(json_integer_value(json_object_get(resp, "status")), 503);
    assert_int_equal(json_integer_value(json_object_get(resp, "content_length")), 12);
    assert_true(json_is_true(json_object_get(doc, "fault")));
    json_decref(doc);
    xray_recorder_destroy(rec);
}

/* The rules match on the path of a request target or of a full URL, and the method. */
static void test_server_begin_rules_see_path_and_method(void **state)
{
    (void)state;
    char path[] = "/tmp/test_server_rules.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *rules = "{\"version\":2,\"default\":{\"fixed_target\":0,\"rate\":1},\"rules\":["
                        "{\"host\":\"*\",\"http_method\":\"GET\",\"url_path\":\"/health\","
                        "\"fixed_target\":0,\"rate\":0}]}";
    assert_int_equal(write(fd, rules, strlen(rules)), (ssize_t)strlen(rules));
    close(fd);
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.sampler = XRAY_SAMPLER_LOCAL;
    cfg.sampling_rules_file = path;
    cfg.log_level = XRAY_LOG_SILENT;
    cfg.daemon_address = "127.0.0.1:9";
    struct xray_recorder *rec = rig_recorder(&cfg);
    assert_non_null(rec);
    unlink(path);
    const char *urls[] = {"/health", "/health?deep=1", "http://h:1/health#x"};
    for (size_t i = 0; i < 3; i++) {
        struct xray_server_request req = {.method = "GET", .url = urls[i], .host = "h"};
        struct xray_segment *seg = xray_server_begin(rec, NULL, &req, false);
        assert_non_null(seg);
        assert_false(xray_segment_is_sampled(seg));
        xray_server_end(seg, 200, -1);
    }
    struct xray_server_request post = {.method = "POST", .url = "/health"};
    struct xray_segment *seg = xray_server_begin(rec, NULL, &post, false);
    assert_true(xray_segment_is_sampled(seg));
    xray_server_end(seg, 200, -1);
    struct xray_server_request other = {.method = "GET", .url = "http://h/healthz"};
    seg = xray_server_begin(rec, NULL, &other, false);
    assert_true(xray_segment_is_sampled(seg));
    xray_server_end(seg, 200, -1);
    /* NULL everything: a segment all the same, nothing recorded about the request. */
    seg = xray_server_begin(rec, NULL, NULL, false);
    assert_non_null(seg);
    xray_server_end(seg, 0, -1);
    assert_null(xray_server_begin(NULL, NULL, NULL, false));
    xray_server_end(NULL, 200, -1);
    xray_recorder_destroy(rec);
}

static int teardown(void **state)
{
    (void)state;
    rig_reset();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_begin_explicit_sampled_wins),
        cmocka_unit_test(test_server_begin_requested_is_answered),
        cmocka_unit_test(test_server_begin_malformed_header_is_absent),
        cmocka_unit_test(test_server_begin_records_request_and_response),
        cmocka_unit_test(test_server_begin_rules_see_path_and_method),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
