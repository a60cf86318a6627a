/* SPDX-License-Identifier: Apache-2.0 */
/* framing_parse() on the captured SDK datagrams and on hand-made headers: every
 * accepted form, every way to be rejected, and the mapping to rejection reasons.
 * Inputs are copied into buffers of their exact size so a read past the end trips
 * the sanitizers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ingest/framing.h"
#include "stats.h"

#define COMPACT "{\"format\":\"json\",\"version\":1}"
#define SPACED  "{\"format\": \"json\", \"version\": 1}"

static int parse_exact(const char *text, size_t len, struct framing *f)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    int rc = framing_parse(copy, len, f);
    /* The body points into the datagram: translate it back before freeing. */
    if (rc == 0)
        f->body = text + (f->body - copy);
    free(copy);
    return rc;
}

/* The whole header + "\n" + body must be accepted with this kind. */
static void expect_ok(const char *header, const char *body, enum framing_kind kind)
{
    char dgram[4096];
    int n = snprintf(dgram, sizeof(dgram), "%s\n%s", header, body);
    assert_true(n > 0 && (size_t)n < sizeof(dgram));
    struct framing f;
    int rc = parse_exact(dgram, (size_t)n, &f);
    if (rc != 0)
        fail_msg("rejected: %s", header);
    assert_int_equal(f.kind, kind);
    assert_ptr_equal(f.body, dgram + strlen(header) + 1);
    assert_int_equal(f.body_len, strlen(body));
}

static void expect_reject(const char *dgram, size_t len, enum framing_kind kind)
{
    struct framing f;
    int rc = parse_exact(dgram, len, &f);
    if (rc == 0)
        fail_msg("accepted: %.*s", (int)len, dgram);
    assert_int_equal(rc, XRAY_EHEADER);
    assert_int_equal(f.kind, kind);
    assert_null(f.body);
    assert_int_equal(f.body_len, 0);
}

static void expect_bad_header(const char *header)
{
    char dgram[4096];
    int n = snprintf(dgram, sizeof(dgram), "%s\n{\"id\":\"1\"}", header);
    assert_true(n > 0 && (size_t)n < sizeof(dgram));
    expect_reject(dgram, (size_t)n, FRAMING_BAD_HEADER);
}

static const struct {
    const char *file;
    enum framing_kind kind;
    size_t body_offset;
} fixtures[] = {
    {"adot-node-0.13.0-t1s-and-sampling-01.dgram", FRAMING_OTLP_TRACES, 30},
    {"adot-node-0.13.0-t1s-and-sampling-02.dgram", FRAMING_OTLP_TRACES, 30},
    {"adot-node-0.13.0-t1s-and-sampling-03.dgram", FRAMING_OTLP_TRACES, 30},
    {"adot-node-0.13.0-t1s-and-sampling-04.dgram", FRAMING_OTLP_TRACES, 30},
    {"adot-node-0.13.0-t1s-and-sampling-05.dgram", FRAMING_OTLP_TRACES, 30},
    {"adot-node-0.13.0-t1s-and-sampling-06.dgram", FRAMING_OTLP_TRACES, 30},
    {"node-sdk-3.12.0-01.dgram", FRAMING_SEGMENT, 30},
    {"node-sdk-3.12.0-02.dgram", FRAMING_SEGMENT, 30},
    {"node-sdk-3.12.0-03.dgram", FRAMING_SEGMENT, 30},
    {"node-sdk-3.12.0-04.dgram", FRAMING_SEGMENT, 30},
    {"node-sdk-3.12.0-05.dgram", FRAMING_SEGMENT, 30},
    {"node-sdk-3.12.0-06.dgram", FRAMING_SEGMENT, 30},
    {"node-sdk-3.12.0-streaming-01.dgram", FRAMING_SEGMENT, 30},
    {"node-sdk-3.12.0-streaming-02.dgram", FRAMING_SEGMENT, 30},
    {"node-sdk-3.12.0-streaming-03.dgram", FRAMING_SEGMENT, 30},
    {"node-sdk-3.12.0-streaming-04.dgram", FRAMING_SEGMENT, 30},
    {"python-sdk-0.95-debian-01.dgram", FRAMING_SEGMENT, 33},
    {"python-sdk-0.95-debian-02.dgram", FRAMING_SEGMENT, 33},
    {"python-sdk-0.95-debian-03.dgram", FRAMING_SEGMENT, 33},
    {"python-sdk-2.15.0-01.dgram", FRAMING_SEGMENT, 30},
    {"python-sdk-2.15.0-02.dgram", FRAMING_SEGMENT, 30},
    {"python-sdk-2.15.0-03.dgram", FRAMING_SEGMENT, 30},
    {"python-sdk-2.15.0-04.dgram", FRAMING_SEGMENT, 30},
    {"python-sdk-2.15.0-05.dgram", FRAMING_SEGMENT, 30},
    {"python-sdk-2.15.0-06.dgram", FRAMING_SEGMENT, 30},
    {"python-sdk-2.15.0-07.dgram", FRAMING_SEGMENT, 30},
    {"python-sdk-2.15.0-08.dgram", FRAMING_SEGMENT, 30},
};

static char *read_fixture(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/datagrams/%s", XRAYD_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *data = malloc(70000);
    assert_non_null(data);
    *len = fread(data, 1, 70000, f);
    fclose(f);
    return data;
}

static void test_framing_parse_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        size_t len;
        char *data = read_fixture(fixtures[i].file, &len);
        struct framing f;
        int rc = parse_exact(data, len, &f);
        if (rc != 0)
            fail_msg("%s rejected", fixtures[i].file);
        assert_int_equal(f.kind, fixtures[i].kind);
        assert_ptr_equal(f.body, data + fixtures[i].body_offset);
        assert_int_equal(f.body_len, len - fixtures[i].body_offset);
        assert_int_equal(f.body[0], fixtures[i].kind == FRAMING_SEGMENT ? '{' : 'T');
        free(data);
    }
}

static void test_framing_parse_headers_accepted(void **state)
{
    (void)state;
    expect_ok(COMPACT, "{}", FRAMING_SEGMENT);
    expect_ok(SPACED, "{}", FRAMING_SEGMENT);
    expect_ok("{\"format\":\"JSON\",\"version\":1}", "{}", FRAMING_SEGMENT);
    expect_ok("{\"format\":\"Json\",\"version\":1}", "{}", FRAMING_SEGMENT);
    expect_ok("{\"version\":1,\"format\":\"json\"}", "{}", FRAMING_SEGMENT);
    expect_ok(" \t{ \"format\" :\t\"json\" , \"version\" : 1 } \t", "{}", FRAMING_SEGMENT);
    expect_ok(COMPACT "\r", "{}", FRAMING_SEGMENT); /* CRLF line end */
    expect_ok("{\"Format\":\"json\",\"VERSION\":1}", "{}", FRAMING_SEGMENT);
    expect_ok("{\"\\u0066ormat\":\"js\\u006Fn\",\"version\":1}", "{}", FRAMING_SEGMENT);
    expect_ok("{\"format\":\"json\",\"version\":1,\"extra\":{\"a\":[1,-2.5e+3,true,false,null,"
              "{\"b\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"}],\"c\":{}},\"d\":[]}",
              "{}", FRAMING_SEGMENT);
    /* Braces and quotes inside strings do not end anything. */
    expect_ok("{\"note\":\"{\\\"format\\\":\\\"xml\\\"}}\",\"format\":\"json\",\"version\":1}",
              "{}", FRAMING_SEGMENT);
    expect_ok("{\"x\":\"}\",\"y\":\"]\",\"format\":\"json\",\"version\":1}", "{}", FRAMING_SEGMENT);
    /* Non-ASCII bytes in strings are left alone. */
    expect_ok("{\"s\":\"caf\xc3\xa9\",\"format\":\"json\",\"version\":1}", "{}", FRAMING_SEGMENT);
    /* The last duplicate wins; null leaves a field as it was. */
    expect_ok("{\"format\":\"xml\",\"format\":\"json\",\"version\":1}", "{}", FRAMING_SEGMENT);
    expect_ok("{\"format\":\"json\",\"version\":1,\"version\":null}", "{}", FRAMING_SEGMENT);
}

static void test_framing_parse_headers_rejected(void **state)
{
    (void)state;
    expect_bad_header("{\"format\":\"json\",\"version\":2}");
    expect_bad_header("{\"format\":\"json\",\"version\":\"1\"}");
    expect_bad_header("{\"format\":\"json\",\"version\":1.0}");
    expect_bad_header("{\"format\":\"json\",\"version\":1e0}");
    expect_bad_header("{\"format\":\"json\",\"version\":-1}");
    expect_bad_header("{\"format\":\"json\",\"version\":01}");
    expect_bad_header("{\"format\":\"json\",\"version\":true}");
    expect_bad_header("{\"format\":\"json\",\"version\":[1]}");
    expect_bad_header("{\"format\":\"json\",\"version\":1,\"version\":2}");
    expect_bad_header("{\"format\":\"xml\",\"version\":1}");
    expect_bad_header("{\"format\":\"jsonx\",\"version\":1}");
    expect_bad_header("{\"format\":\"jso\",\"version\":1}");
    expect_bad_header("{\"format\":\"json \",\"version\":1}");
    expect_bad_header("{\"format\":[\"json\"],\"version\":1}");
    expect_bad_header("{\"format\":null,\"version\":1}");
    expect_bad_header("{\"version\":1}");
    expect_bad_header("{\"format\":\"json\"}");
    expect_bad_header("{}");
    expect_bad_header("");
    expect_bad_header("   ");
    /* Not an object. */
    expect_bad_header("[\"format\",\"json\",\"version\",1]");
    expect_bad_header("\"{\\\"format\\\":\\\"json\\\",\\\"version\\\":1}\"");
    expect_bad_header("1");
    expect_bad_header("null");
    /* Only at the top level. */
    expect_bad_header("{\"inner\":{\"format\":\"json\",\"version\":1}}");
    /* Not JSON, or more than one value. */
    expect_bad_header("garbage");
    expect_bad_header("{");
    expect_bad_header("{\"format\":\"json\",\"version\":1");
    expect_bad_header("{\"format\":\"json\",\"version\":1,}");
    expect_bad_header("{\"format\":\"json\" \"version\":1}");
    expect_bad_header("{\"format\":\"json\",\"version\":1}}");
    expect_bad_header("{\"format\":\"json\",\"version\":1}x");
    expect_bad_header("{\"format\":\"json\",\"version\":1}{}");
    expect_bad_header("{format:\"json\",\"version\":1}");
    expect_bad_header("{'format':'json','version':1}");
    expect_bad_header("\xef\xbb\xbf" COMPACT); /* a byte-order mark */
    expect_bad_header("{\"format\":\"json\",\"version\":1,\"x\":tru}");
    expect_bad_header("{\"format\":\"json\",\"version\":1,\"x\":1.}");
    expect_bad_header("{\"format\":\"json\",\"version\":1,\"x\":-}");
    expect_bad_header("{\"format\":\"json\",\"version\":1,\"x\":\"\\x\"}");
    expect_bad_header("{\"format\":\"json\",\"version\":1,\"x\":\"\\u00zz\"}");
    expect_bad_header("{\"format\":\"json\",\"version\":1,\"x\":\"\\u00\"}");
    expect_bad_header("{\"format\":\"json\",\"version\":1,\"x\":\"a\tb\"}");
    expect_bad_header("{\"format\":\"json\",\"version\":1,\"x\":[1 2]}");
    expect_bad_header("{\"format\":\"json\",\"version\":1,\"x\":{\"a\"}}");
    expect_bad_header("{\"format\":\"json\",\"version\":1,\"x\":[}");
    /* Nesting past the limit is refused, not followed. */
    char deep[2200];
    int n = snprintf(deep, sizeof(deep), "{\"format\":\"json\",\"version\":1,\"x\":");
    for (int i = 0; i < 1000; i++)
        deep[n++] = '[';
    for (int i = 0; i < 1000; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    expect_bad_header(deep);
}

static void test_framing_parse_no_newline(void **state)
{
    (void)state;
    expect_reject(COMPACT, strlen(COMPACT), FRAMING_NO_NEWLINE);
    expect_reject(COMPACT "{\"id\":\"1\"}", strlen(COMPACT "{\"id\":\"1\"}"), FRAMING_NO_NEWLINE);
    expect_reject("", 0, FRAMING_NO_NEWLINE);
    expect_reject("garbage", 7, FRAMING_NO_NEWLINE);
    /* A newline just past len does not count. */
    expect_reject(COMPACT "\n{}", strlen(COMPACT), FRAMING_NO_NEWLINE);
}

static void test_framing_parse_empty_body(void **state)
{
    (void)state;
    expect_reject(COMPACT "\n", strlen(COMPACT) + 1, FRAMING_EMPTY_BODY);
    expect_reject(SPACED "\n", strlen(SPACED) + 1, FRAMING_EMPTY_BODY);
    /* A bad header is reported as such even with no body. */
    expect_reject("{}\n", 3, FRAMING_BAD_HEADER);
    expect_reject("\n", 1, FRAMING_BAD_HEADER);
}

static void test_framing_parse_body_kinds(void **state)
{
    (void)state;
    expect_ok(COMPACT, "T1SCsUBCjwKHwoM", FRAMING_OTLP_TRACES);
    expect_ok(COMPACT, "T1UCsUBCjwKHwoM", FRAMING_OTLP_TRACES);
    expect_ok(COMPACT, "T1S", FRAMING_OTLP_TRACES);
    expect_ok(COMPACT, "M1CsUBCjwKHwoM", FRAMING_OTLP_METRICS);
    expect_ok(COMPACT, "M1", FRAMING_OTLP_METRICS);
    /* Anything else is for the scanner to judge. */
    expect_ok(COMPACT, "T1", FRAMING_SEGMENT);
    expect_ok(COMPACT, "T1X", FRAMING_SEGMENT);
    expect_ok(COMPACT, "M", FRAMING_SEGMENT);
    expect_ok(COMPACT, " ", FRAMING_SEGMENT);
    expect_ok(COMPACT, "not json at all", FRAMING_SEGMENT);
    /* Only the first newline splits: the body keeps its own. */
    expect_ok(COMPACT, "{\n\"id\":\"1\"\n}\n", FRAMING_SEGMENT);
    expect_ok(COMPACT, "\n", FRAMING_SEGMENT);
}

static void test_framing_reject_reason_map(void **state)
{
    (void)state;
    assert_int_equal(framing_reject_reason(FRAMING_SEGMENT), -1);
    assert_int_equal(framing_reject_reason(FRAMING_OTLP_TRACES), STATS_REJECT_OTLP_TRACES);
    assert_int_equal(framing_reject_reason(FRAMING_OTLP_METRICS), STATS_REJECT_OTLP_METRICS);
    assert_int_equal(framing_reject_reason(FRAMING_NO_NEWLINE), STATS_REJECT_NO_NEWLINE);
    assert_int_equal(framing_reject_reason(FRAMING_BAD_HEADER), STATS_REJECT_BAD_HEADER);
    assert_int_equal(framing_reject_reason(FRAMING_EMPTY_BODY), STATS_REJECT_EMPTY_BODY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing_parse_fixtures),
        cmocka_unit_test(test_framing_parse_headers_accepted),
        cmocka_unit_test(test_framing_parse_headers_rejected),
        cmocka_unit_test(test_framing_parse_no_newline),
        cmocka_unit_test(test_framing_parse_empty_body),
        cmocka_unit_test(test_framing_parse_body_kinds),
        cmocka_unit_test(test_framing_reject_reason_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
