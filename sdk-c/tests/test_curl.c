/* SPDX-License-Identifier: Apache-2.0 */
/* curl.c against a loopback HTTP server: each request is a `remote` subsegment named
 * after the host, with method, URL, status and length; the callee receives
 * Root=<trace>;Parent=<subsegment id>;Sampled=<0|1>; 5xx sets fault, a transport error
 * records a CURLcode exception; the caller's headers arrive and their list is given
 * back; without a current segment the request is made untraced. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fake_server.h"
#include "sdk_rig.h"
#include "xray/xray_curl.h"

static int callee(struct fake_server *fs, const struct fake_request *req, char *body, size_t cap,
                  char *extra, size_t extra_cap)
{
    (void)fs;
    (void)extra;
    (void)extra_cap;
    snprintf(body, cap, "{\"ok\":true}");
    return strstr(req->path, "fail") != NULL ? 500 : 200;
}

static struct xray_recorder *recorder(void)
{
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.sampler = XRAY_SAMPLER_ALL;
    cfg.log_level = XRAY_LOG_SILENT;
    cfg.context_missing = XRAY_CONTEXT_IGNORE_ERROR;
    cfg.daemon_address = "127.0.0.1:9";
    struct xray_recorder *rec = rig_recorder(&cfg);
    assert_non_null(rec);
    return rec;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static CURL *easy_for(struct fake_server *fs, const char *path)
{
    CURL *e = curl_easy_init();
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)fs->port, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    return e;
}

static json_t *only_subsegment(json_t *doc)
{
    json_t *subs = json_object_get(doc, "subsegments");
    assert_int_equal(json_array_size(subs), 1);
    return json_array_get(subs, 0);
}

static void test_curl_perform_traces_request(void **state)
{
    (void)state;
    struct fake_server *fs = fake_start(callee, NULL);
    struct xray_recorder *rec = recorder();
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    CURL *e = easy_for(fs, "/items?id=1");
    struct curl_slist *mine = curl_slist_append(NULL, "X-Mine: 1");
    mine = curl_slist_append(mine, "X-Amzn-Trace-Id: Root=stale"); /* replaced */
    assert_int_equal(xray_curl_perform(e, mine, seg, NULL), CURLE_OK);
    xray_segment_end(seg);

    struct fake_request got;
    assert_true(fake_last(fs, NULL, &got));
    assert_non_null(strstr(got.headers, "X-Mine: 1"));
    assert_null(strstr(got.headers, "Root=stale"));
    assert_int_equal(rig.n, 1);
    json_t *doc = rig_doc(0);
    json_t *sub = only_subsegment(doc);
    char want[256];
    snprintf(want, sizeof(want), "X-Amzn-Trace-Id: Root=%s;Parent=%s;Sampled=1",
             json_string_value(json_object_get(doc, "trace_id")),
             json_string_value(json_object_get(sub, "id")));
    assert_non_null(strstr(got.headers, want));
    assert_string_equal(json_string_value(json_object_get(sub, "name")), "127.0.0.1");
    assert_string_equal(json_string_value(json_object_get(sub, "namespace")), "remote");
    json_t *r = json_object_get(json_object_get(sub, "http"), "request");
    assert_string_equal(json_string_value(json_object_get(r, "method")), "GET");
    snprintf(want, sizeof(want), "http://127.0.0.1:%u/items?id=1", (unsigned)fs->port);
    assert_string_equal(json_string_value(json_object_get(r, "url")), want);
    json_t *resp = json_object_get(json_object_get(sub, "http"), "response");
    assert_int_equal(json_integer_value(json_object_get(resp, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(resp, "content_length")), 11);
    assert_null(json_object_get(sub, "fault"));
    json_decref(doc);

    /* The caller's list is back on the handle: a plain perform sends no trace header. */
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    assert_true(fake_last(fs, NULL, &got));
    assert_non_null(strstr(got.headers, "X-Mine: 1"));
    assert_non_null(strstr(got.headers, "Root=stale"));
    curl_slist_free_all(mine);
    curl_easy_cleanup(e);
    xray_recorder_destroy(rec);
    fake_stop(fs);
}

static void test_curl_begin_end_fault_and_post(void **state)
{
    (void)state;
    struct fake_server *fs = fake_start(callee, NULL);
    struct xray_recorder *rec = recorder();
    struct xray_segment *seg = xray_context_begin_segment(rec, NULL);
    CURL *e = easy_for(fs, "/fail");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "{}");
    struct xray_curl_call call;
    assert_int_equal(xray_curl_begin(&call, e, NULL, NULL, "inventory"), 0); /* current */
    CURLcode rc = curl_easy_perform(e);
    xray_curl_end(&call, rc);
    assert_int_equal(xray_context_end(), 0);
    (void)seg;
    assert_int_equal(rig.n, 1);
    json_t *doc = rig_doc(0);
    json_t *sub = only_subsegment(doc);
    assert_string_equal(json_string_value(json_object_get(sub, "name")), "inventory");
    json_t *r = json_object_get(json_object_get(sub, "http"), "request");
    assert_string_equal(json_string_value(json_object_get(r, "method")), "POST");
    json_t *resp = json_object_get(json_object_get(sub, "http"), "response");
    assert_int_equal(json_integer_value(json_object_get(resp, "status")), 500);
    assert_true(json_is_true(json_object_get(sub, "fault")));
    json_decref(doc);
    curl_easy_cleanup(e);
    xray_recorder_destroy(rec);
    fake_stop(fs);
}

static void test_curl_perform_transport_error(void **state)
{
    (void)state;
    struct xray_recorder *rec = recorder();
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    CURL *e = curl_easy_init();
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)fake_closed_port());
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    assert_int_equal(xray_curl_perform(e, NULL, seg, NULL), CURLE_COULDNT_CONNECT);
    xray_segment_end(seg);
    json_t *doc = rig_doc(0);
    json_t *sub = only_subsegment(doc);
    assert_true(json_is_true(json_object_get(sub, "fault")));
    json_t *ex = json_array_get(json_object_get(json_object_get(sub, "cause"), "exceptions"), 0);
    assert_string_equal(json_string_value(json_object_get(ex, "type")), "CURLcode");
    assert_string_equal(json_string_value(json_object_get(ex, "message")),
                        curl_easy_strerror(CURLE_COULDNT_CONNECT));
    assert_null(json_object_get(json_object_get(sub, "http"), "response"));
    json_decref(doc);
    curl_easy_cleanup(e);
    xray_recorder_destroy(rec);
}

static void test_curl_untraced_without_context_and_unsampled(void **state)
{
    (void)state;
    struct fake_server *fs = fake_start(callee, NULL);
    struct xray_recorder *rec = recorder();
    CURL *e = easy_for(fs, "/a");
    struct curl_slist *mine = curl_slist_append(NULL, "X-Mine: 2");
    struct xray_curl_call call;
    assert_int_equal(xray_curl_begin(&call, e, mine, NULL, NULL), XRAY_SDK_ENOCONTEXT);
    xray_curl_end(&call, curl_easy_perform(e));
    struct fake_request got;
    assert_true(fake_last(fs, NULL, &got));
    assert_non_null(strstr(got.headers, "X-Mine: 2"));
    assert_null(strstr(got.headers, "X-Amzn-Trace-Id"));

    /* An unsampled parent still propagates its decision, and sends nothing. */
    struct xray_segment_options o = {.sampled = XRAY_SAMPLED_NO};
    struct xray_segment *seg = xray_segment_begin(rec, &o);
    assert_int_equal(xray_curl_perform(e, NULL, seg, NULL), CURLE_OK);
    assert_true(fake_last(fs, NULL, &got));
    char want[128];
    snprintf(want, sizeof(want), "Root=%s;Parent=", xray_segment_trace_id(seg));
    assert_non_null(strstr(got.headers, want));
    assert_non_null(strstr(got.headers, ";Sampled=0"));
    xray_segment_end(seg);
    assert_int_equal(rig.n, 0);
    curl_slist_free_all(mine);
    curl_easy_cleanup(e);
    xray_recorder_destroy(rec);
    fake_stop(fs);
}

static int teardown(void **state)
{
    (void)state;
    rig_reset();
    return 0;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_curl_perform_traces_request, teardown),
        cmocka_unit_test_teardown(test_curl_begin_end_fault_and_post, teardown),
        cmocka_unit_test_teardown(test_curl_perform_transport_error, teardown),
        cmocka_unit_test_teardown(test_curl_untraced_without_context_and_unsampled, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
