/* SPDX-License-Identifier: Apache-2.0 */
/* header.c: X-Amzn-Trace-Id parse and emit tables (wire.md), the 256-byte budget for
 * passed-on pairs, malformed values treated as absent, and the outgoing and response
 * headers of a segment. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ROOT   "1-5759e988-bd862e3fe1be46a994272793"
#define PARENT "53995c3f42cd8ad8"

struct good_case {
    const char *in;
    const char *root, *parent;
    enum xray_sampled sampled;
    const char *extra;
    const char *formatted; /* xray_header_format of the result */
};

static const struct good_case good[] = {
    {"Root=" ROOT ";Parent=" PARENT ";Sampled=1", ROOT, PARENT, XRAY_SAMPLED_YES, "",
     "Root=" ROOT ";Parent=" PARENT ";Sampled=1"},
    {"Root=" ROOT ";Sampled=0", ROOT, "", XRAY_SAMPLED_NO, "", "Root=" ROOT ";Sampled=0"},
    {"Root=" ROOT ";Sampled=?", ROOT, "", XRAY_SAMPLED_REQUESTED, "", "Root=" ROOT ";Sampled=?"},
    {"Root=" ROOT, ROOT, "", XRAY_SAMPLED_UNKNOWN, "", "Root=" ROOT},
    /* Blanks trimmed, empty pairs skipped, order free. */
    {"  Sampled = 1 ;; Parent=" PARENT " ; Root= " ROOT " ;", ROOT, PARENT, XRAY_SAMPLED_YES, "",
     "Root=" ROOT ";Parent=" PARENT ";Sampled=1"},
    /* Upper-case hex is accepted and lower-cased. */
    {"Root=1-5759E988-BD862E3FE1BE46A994272793;Parent=53995C3F42CD8AD8", ROOT, PARENT,
     XRAY_SAMPLED_UNKNOWN, "", "Root=" ROOT ";Parent=" PARENT},
    /* Lineage and unknown keys pass on in order; Self is dropped. */
    {"Self=1-67891234-12456789abcdef012345678;Root=" ROOT ";Lineage=a87bd80c:1|68fd508a:5;"
     "Foo=bar;Sampled=1",
     ROOT, "", XRAY_SAMPLED_YES, "Lineage=a87bd80c:1|68fd508a:5;Foo=bar",
     "Root=" ROOT ";Sampled=1;Lineage=a87bd80c:1|68fd508a:5;Foo=bar"},
    /* No Root: a new trace, but the decision and pairs still count. */
    {"Sampled=0;Foo=x", "", "", XRAY_SAMPLED_NO, "Foo=x", "Sampled=0;Foo=x"},
    {"", "", "", XRAY_SAMPLED_UNKNOWN, "", ""},
    {"Key=", "", "", XRAY_SAMPLED_UNKNOWN, "Key=", "Key="},
};

static void test_header_parse_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct xray_trace_header h;
        const struct good_case *c = &good[i];
        int rc = xray_header_parse(c->in, strlen(c->in), &h);
        if (rc != 0)
            fail_msg("case %zu (%s): rc %d", i, c->in, rc);
        assert_string_equal(h.root, c->root);
        assert_string_equal(h.parent, c->parent);
        assert_int_equal(h.sampled, c->sampled);
        assert_string_equal(h.extra, c->extra);
        assert_int_equal(h.extra_len, strlen(c->extra));
        char buf[XRAY_HEADER_BUF];
        int n = xray_header_format(&h, buf, sizeof(buf));
        assert_int_equal(n, (int)strlen(c->formatted));
        assert_string_equal(buf, c->formatted);
        /* What we emit parses back to the same header. */
        struct xray_trace_header again;
        assert_int_equal(xray_header_parse(buf, (size_t)n, &again), 0);
        assert_memory_equal(&again, &h, sizeof(h));
    }
}

static const char *const bad[] = {
    "Root=1-5759e988-bd862e3fe1be46a99427279",   /* short */
    "Root=1-5759e988-bd862e3fe1be46a9942727930", /* long */
    "Root=2-5759e988-bd862e3fe1be46a994272793",  /* version */
    "Root=1-5759e98g-bd862e3fe1be46a994272793",  /* not hex */
    "Root=1_5759e988-bd862e3fe1be46a994272793",
    "Root=" ROOT ";Parent=53995c3f42cd8ad",  /* short parent */
    "Root=" ROOT ";Parent=53995c3f42cd8adz", /* not hex */
    "Root=" ROOT ";Sampled=2",
    "Root=" ROOT ";Sampled=",
    "Root=" ROOT ";Sampled=11",
    "Root=" ROOT ";Root=" ROOT, /* twice */
    "Root=" ROOT ";Sampled=1;Sampled=1",
    "Root=" ROOT ";Parent=" PARENT ";Parent=" PARENT,
    "Parent=" PARENT ";Sampled=1",      /* parent without root */
    "Root=" ROOT ";garbage",            /* pair without '=' */
    "=1;Root=" ROOT,                    /* empty key */
    "Root=" ROOT ";Foo=a\r\nX-Evil: 1", /* control characters */
    "Root=" ROOT "\x01",
};

static void test_header_parse_malformed_is_absent(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct xray_trace_header h;
        memset(&h, 0x55, sizeof(h));
        int rc = xray_header_parse(bad[i], strlen(bad[i]), &h);
        if (rc != XRAY_SDK_EHEADER)
            fail_msg("case %zu (%s): rc %d", i, bad[i], rc);
        struct xray_trace_header empty;
        memset(&empty, 0, sizeof(empty));
        assert_memory_equal(&h, &empty, sizeof(h));
    }
    struct xray_trace_header h;
    assert_int_equal(xray_header_parse(NULL, 0, &h), XRAY_SDK_EHEADER);
}

static void test_header_parse_not_nul_terminated(void **state)
{
    (void)state;
    char buf[64 + 8];
    const char *s = "Root=" ROOT ";Sampled=1";
    memcpy(buf, s, strlen(s));
    memcpy(buf + strlen(s), "XXXXXXX", 7); /* beyond len: must not be read */
    struct xray_trace_header h;
    assert_int_equal(xray_header_parse(buf, strlen(s), &h), 0);
    assert_int_equal(h.sampled, XRAY_SAMPLED_YES);
    assert_string_equal(h.root, ROOT);
}

static void test_header_parse_extra_budget(void **state)
{
    (void)state;
    /* Pairs of 100 bytes: two fit in 256 (100 + 1 + 100), the third is left out and a
     * short fourth still fits. */
    char in[1024], pair[3][101];
    for (int i = 0; i < 3; i++) {
        memset(pair[i], 'a' + i, 100);
        pair[i][0] = 'K';
        pair[i][1] = (char)('0' + i);
        pair[i][2] = '=';
        pair[i][100] = '\0';
    }
    snprintf(in, sizeof(in), "Root=%s;%s;%s;%s;Z=1", ROOT, pair[0], pair[1], pair[2]);
    struct xray_trace_header h;
    assert_int_equal(xray_header_parse(in, strlen(in), &h), 0);
    char want[512];
    snprintf(want, sizeof(want), "%s;%s;Z=1", pair[0], pair[1]);
    assert_string_equal(h.extra, want);
    assert_true(h.extra_len <= XRAY_HEADER_EXTRA_MAX);
    char buf[XRAY_HEADER_BUF];
    assert_true(xray_header_format(&h, buf, sizeof(buf)) > 0);
    assert_int_equal(xray_header_format(&h, buf, 20), -ENOSPC);
}

static uint64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return 1700000000123456ull;
}

static struct xray_recorder *new_recorder(void)
{
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.flags = XRAY_CONFIG_IGNORE_ENV;
    cfg.service_name = "svc";
    cfg.sampler = XRAY_SAMPLER_ALL;
    cfg.clock = fixed_clock;
    cfg.log_level = XRAY_LOG_SILENT;
    struct xray_recorder *rec = xray_recorder_create(&cfg, NULL);
    assert_non_null(rec);
    return rec;
}

static void test_header_for_segment_and_response(void **state)
{
    (void)state;
    struct xray_recorder *rec = new_recorder();
    const char *in = "Root=" ROOT ";Parent=" PARENT ";Sampled=?;Lineage=a87bd80c:1|68fd508a:5";
    struct xray_trace_header h;
    assert_int_equal(xray_header_parse(in, strlen(in), &h), 0);
    struct xray_segment_options o = {.header = &h};
    struct xray_segment *seg = xray_segment_begin(rec, &o);
    assert_non_null(seg);
    struct xray_segment *sub = xray_subsegment_begin(seg, "call");
    char buf[XRAY_HEADER_BUF], want[XRAY_HEADER_BUF];
    assert_true(xray_header_for_segment(sub, buf, sizeof(buf)) > 0);
    snprintf(want, sizeof(want), "Root=%s;Parent=%s;Sampled=1;Lineage=a87bd80c:1|68fd508a:5", ROOT,
             xray_segment_id(sub));
    assert_string_equal(buf, want);
    /* Sampled=? asked: the response says what was decided. */
    assert_true(xray_header_response(seg, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "Root=" ROOT ";Sampled=1");
    assert_int_equal(xray_server_response_header(seg, buf, sizeof(buf)),
                     (int)strlen("Root=" ROOT ";Sampled=1"));
    xray_segment_end(sub);
    xray_segment_end(seg);

    /* Sampled=0 given: not asked, the response carries only Root; the outgoing header
     * keeps the caller's decision. */
    in = "Root=" ROOT ";Sampled=0";
    assert_int_equal(xray_header_parse(in, strlen(in), &h), 0);
    seg = xray_segment_begin(rec, &o);
    assert_false(xray_segment_is_sampled(seg));
    assert_true(xray_header_response(seg, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "Root=" ROOT);
    assert_true(xray_header_for_segment(seg, buf, sizeof(buf)) > 0);
    snprintf(want, sizeof(want), "Root=%s;Parent=%s;Sampled=0", ROOT, xray_segment_id(seg));
    assert_string_equal(buf, want);
    xray_segment_end(seg);

    assert_int_equal(xray_header_for_segment(NULL, buf, sizeof(buf)), XRAY_SDK_ENOCONTEXT);
    assert_int_equal(xray_header_response(NULL, buf, sizeof(buf)), XRAY_SDK_ENOCONTEXT);
    xray_recorder_destroy(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_parse_good),
        cmocka_unit_test(test_header_parse_malformed_is_absent),
        cmocka_unit_test(test_header_parse_not_nul_terminated),
        cmocka_unit_test(test_header_parse_extra_budget),
        cmocka_unit_test(test_header_for_segment_and_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
