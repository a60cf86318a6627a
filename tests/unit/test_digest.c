/* SPDX-License-Identifier: Apache-2.0 */
/* Document digests: ids as numbers, the status classification, which subsegments are
 * calls and the node each infers, names cut on a UTF-8 boundary, and the exact size of
 * the one allocation. Documents are real SDK captures or written out here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/digest.h"

static struct segment_view view; /* ~22 KB: not on the stack */
static char text[70000];

static const struct segment_view *scan(const char *json)
{
    int rc = scan_document(json, strlen(json), &view);
    if (rc != 0)
        fail_msg("scan: %s at %u", view.why, view.err_offset);
    return &view;
}

/* The body of a captured datagram (after its header line), NUL-terminated in text. */
static const char *datagram(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/datagrams/%s", XRAYD_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *body = strchr(text, '\n');
    assert_non_null(body);
    return body + 1;
}

static uint64_t id_of(const char *s, bool escaped)
{
    struct scan_str str = {s, (uint32_t)strlen(s), escaped};
    return digest_id(&str);
}

static void test_digest_id(void **state)
{
    (void)state;
    assert_true(id_of("265cdbaab83d8d1e", false) == 0x265cdbaab83d8d1eull);
    assert_true(id_of("265CDBAAB83D8D1E", false) == 0x265cdbaab83d8d1eull);
    assert_true(id_of("ffffffffffffffff", false) == UINT64_MAX);
    /* Not 16 hex digits: FNV-1a 64 of the bytes. */
    assert_true(id_of("abc", false) == 0xe71fa2190541574bull);
    assert_true(id_of("not-hex-id-12345", false) == 0xb6d258eec1121976ull);
    assert_true(id_of("", false) == 0xcbf29ce484222325ull);
    /* All zeros would read as "absent": it is hashed instead. */
    assert_true(id_of("0000000000000000", false) == 0xc291d5fb48650465ull);
    /* An escaped id is its decoded self. */
    assert_true(id_of("\\u0032\\u00365cdbaab83d8d1e", true) == 0x265cdbaab83d8d1eull);
    struct scan_str absent = {NULL, 0, false};
    assert_true(digest_id(&absent) == 0);
}

static void test_digest_classify_table(void **state)
{
    (void)state;
    static const struct {
        bool fault, throttle, error;
        int32_t status;
        enum digest_status want;
    } rows[] = {
        {false, false, false, -1, DIGEST_OK},       {false, false, false, 200, DIGEST_OK},
        {false, false, false, 399, DIGEST_OK},      {false, false, false, 400, DIGEST_ERROR},
        {false, false, false, 404, DIGEST_ERROR},   {false, false, false, 429, DIGEST_THROTTLE},
        {false, false, false, 499, DIGEST_ERROR},   {false, false, false, 500, DIGEST_FAULT},
        {false, false, false, 503, DIGEST_FAULT},   {false, false, true, 200, DIGEST_ERROR},
        {false, true, false, 200, DIGEST_THROTTLE}, {false, true, true, -1, DIGEST_THROTTLE},
        {true, false, false, 200, DIGEST_FAULT},    {true, true, true, 429, DIGEST_FAULT},
        {false, true, false, 503, DIGEST_FAULT},    {false, false, true, 429, DIGEST_THROTTLE},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(
            digest_classify(rows[i].fault, rows[i].throttle, rows[i].error, rows[i].status),
            rows[i].want);
}

/* The Node SDK's manual segment: a local sql subsegment (not a call) with a child, and
 * a remote call that faulted. */
static void test_digest_build_node_capture(void **state)
{
    (void)state;
    struct digest_doc *d = digest_build(scan(datagram("node-sdk-3.12.0-01.dgram")), 42);
    assert_non_null(d);
    assert_null(d->next);
    assert_int_equal(d->arrived_ms, 42);
    assert_true(d->id == 0x265cdbaab83d8d1eull);
    assert_true(d->parent_id == 0);
    assert_true(d->start == 1795304277.571 && d->end == 1795304277.572);
    assert_int_equal(d->status, DIGEST_OK);
    assert_int_equal(d->flags, 0);
    assert_int_equal(d->http_status, -1);
    assert_string_equal(d->name, "node-manual-svc");
    assert_string_equal(d->origin, "");
    assert_int_equal(d->ncalls, 1);
    const struct digest_call *c = &d->calls[0];
    assert_true(c->id == 0xa4c8c7a34002b8eaull);
    assert_true(c->start == 1795304277.572 && c->end == 1795304277.572);
    assert_int_equal(c->status, DIGEST_FAULT);
    assert_int_equal(c->ns, DIGEST_NS_REMOTE);
    assert_false(c->traced);
    assert_false(c->sql);
    assert_false(c->in_progress);
    assert_string_equal(c->name, "remote-call");
    assert_string_equal(c->resource, "remote-call");
    assert_string_equal(c->resource_type, "remote");
    /* Every nested subsegment's id, depth first. */
    assert_int_equal(d->nids, 3);
    assert_true(d->ids[0] == 0xe1eb82d306eceb44ull);
    assert_true(d->ids[1] == 0x21ce5707d942291bull);
    assert_true(d->ids[2] == 0xa4c8c7a34002b8eaull);
    assert_int_equal(d->size, sizeof(struct digest_doc) + sizeof(struct digest_call) +
                                  3 * sizeof(uint64_t) + sizeof("node-manual-svc") +
                                  sizeof("remote-call"));
    free(d);
}

/* A forced parent and an http status 500: fault, parent_id read. */
static void test_digest_build_http_status(void **state)
{
    (void)state;
    struct digest_doc *d = digest_build(scan(datagram("node-sdk-3.12.0-04.dgram")), 0);
    assert_int_equal(d->http_status, 500);
    assert_int_equal(d->status, DIGEST_FAULT);
    assert_int_equal(d->ncalls, 0);
    assert_null(d->calls);
    assert_int_equal(d->nids, 0);
    assert_null(d->ids);
    assert_int_equal(d->size, sizeof(struct digest_doc) + sizeof("node-http-svc"));
    free(d);
    d = digest_build(scan(datagram("node-sdk-3.12.0-06.dgram")), 0);
    assert_true(d->parent_id == 0x53995c3f42cd8ad8ull);
    assert_int_equal(d->http_status, 200);
    assert_int_equal(d->status, DIGEST_OK);
    free(d);
}

#define CALLS_DOC                                                                                  \
    "{\"name\":\"orders\",\"id\":\"1111111111111111\",\"trace_id\":\"1-65000000-"                  \
    "000000000000000000000001\",\"start_time\":10,\"end_time\":12,"                                \
    "\"origin\":\"AWS::EC2::Instance\",\"http\":{\"response\":{\"status\":429}},"                  \
    "\"subsegments\":["                                                                            \
    "{\"name\":\"DynamoDB\",\"id\":\"2222222222222222\",\"start_time\":10.5,\"end_time\":11,"      \
    "\"namespace\":\"aws\",\"aws\":{\"operation\":\"GetItem\",\"table_name\":\"orders-table\"},"   \
    "\"throttle\":true},"                                                                          \
    "{\"name\":\"SQS\",\"id\":\"3333333333333333\",\"start_time\":10.6,\"end_time\":10.7,"         \
    "\"namespace\":\"aws\",\"aws\":{\"queue_url\":"                                                \
    "\"https://sqs.us-east-1.amazonaws.com/123456789012/order-events\"}},"                         \
    "{\"name\":\"local-work\",\"id\":\"4444444444444444\",\"start_time\":10.1,\"end_time\":10.2,"  \
    "\"subsegments\":[{\"name\":\"S3\",\"id\":\"5555555555555555\",\"start_time\":10.1,"           \
    "\"namespace\":\"aws\",\"in_progress\":true}]},"                                               \
    "{\"name\":\"api.example.com\",\"id\":\"6666666666666666\",\"start_time\":11,"                 \
    "\"end_time\":11.5,\"namespace\":\"remote\",\"http\":{\"response\":{\"status\":404}}},"        \
    "{\"name\":\"inventory\",\"id\":\"7777777777777777\",\"start_time\":11,\"end_time\":11.9,"     \
    "\"http\":{\"request\":{\"url\":\"http://inventory/x\",\"traced\":true}}},"                    \
    "{\"name\":\"postgres@db\",\"id\":\"8888888888888888\",\"start_time\":11,\"end_time\":11.1,"   \
    "\"namespace\":\"remote\",\"sql\":{\"url\":\"postgres://db\"}},"                               \
    "{\"name\":\"SQS\",\"id\":\"9999999999999999\",\"start_time\":11,\"end_time\":11.1,"           \
    "\"namespace\":\"aws\",\"aws\":{\"queue_url\":"                                                \
    "\"https:\\/\\/sqs.eu-west-1.amazonaws.com\\/1\\/esc\\u0061ped\\/\"}}"                         \
    "]}"

static void test_digest_build_calls(void **state)
{
    (void)state;
    struct digest_doc *d = digest_build(scan(CALLS_DOC), 7);
    assert_non_null(d);
    assert_string_equal(d->name, "orders");
    assert_string_equal(d->origin, "AWS::EC2::Instance");
    assert_int_equal(d->status, DIGEST_THROTTLE);
    assert_int_equal(d->http_status, 429);
    assert_int_equal(d->ncalls, 7);
    const struct digest_call *c = d->calls;

    assert_true(c[0].id == 0x2222222222222222ull);
    assert_int_equal(c[0].ns, DIGEST_NS_AWS);
    assert_int_equal(c[0].status, DIGEST_THROTTLE);
    assert_string_equal(c[0].name, "DynamoDB");
    assert_string_equal(c[0].resource, "orders-table");
    assert_string_equal(c[0].resource_type, "AWS::DynamoDB::Table");

    assert_string_equal(c[1].name, "SQS");
    assert_string_equal(c[1].resource, "order-events");
    assert_string_equal(c[1].resource_type, "AWS::SQS::Queue");
    assert_int_equal(c[1].status, DIGEST_OK);

    /* A call nested under a local subsegment, still open. */
    assert_true(c[2].id == 0x5555555555555555ull);
    assert_string_equal(c[2].name, "S3");
    assert_string_equal(c[2].resource, "S3");
    assert_string_equal(c[2].resource_type, "AWS::S3");
    assert_true(c[2].in_progress);
    assert_true(c[2].start == 10.1 && c[2].end == 0);

    assert_int_equal(c[3].ns, DIGEST_NS_REMOTE);
    assert_int_equal(c[3].status, DIGEST_ERROR);
    assert_string_equal(c[3].name, "api.example.com");
    assert_string_equal(c[3].resource_type, "remote");
    assert_false(c[3].traced);

    /* Traced without a namespace: a call to an instrumented service. */
    assert_int_equal(c[4].ns, DIGEST_NS_NONE);
    assert_true(c[4].traced);
    assert_string_equal(c[4].name, "inventory");
    assert_string_equal(c[4].resource, "inventory");
    assert_string_equal(c[4].resource_type, "remote");
    assert_true(c[4].start == 11 && c[4].end == 11.9);

    assert_true(c[5].sql);
    assert_false(c[6].sql);
    /* An escaped URL with a trailing slash: the last non-empty segment, decoded. */
    assert_string_equal(c[6].resource, "escaped");
    assert_string_equal(c[6].resource_type, "AWS::SQS::Queue");

    assert_int_equal(d->nids, 8);
    assert_true(d->ids[2] == 0x4444444444444444ull);
    assert_true(d->ids[3] == 0x5555555555555555ull);
    assert_true(d->ids[7] == 0x9999999999999999ull);
    size_t strings = sizeof("orders") + sizeof("AWS::EC2::Instance") + sizeof("DynamoDB") +
                     sizeof("orders-table") + sizeof("SQS") + sizeof("order-events") +
                     sizeof("AWS::S3") + sizeof("api.example.com") + sizeof("inventory") +
                     sizeof("postgres@db") + sizeof("SQS") + sizeof("escaped");
    assert_int_equal(d->size, sizeof(struct digest_doc) + 7 * sizeof(struct digest_call) +
                                  8 * sizeof(uint64_t) + strings);
    free(d);
}

/* A streamed subsegment that is itself a call comes first among its calls. */
static void test_digest_build_streamed_call(void **state)
{
    (void)state;
    const char *doc =
        "{\"type\":\"subsegment\",\"name\":\"payments\",\"id\":\"aaaaaaaaaaaaaaaa\","
        "\"parent_id\":\"bbbbbbbbbbbbbbbb\",\"trace_id\":\"1-65000000-000000000000000000000002\","
        "\"start_time\":5,\"in_progress\":true,\"namespace\":\"remote\",\"traced\":true,"
        "\"fault\":true,\"subsegments\":[{\"name\":\"Lambda\",\"id\":\"cccccccccccccccc\","
        "\"start_time\":5,\"end_time\":6,\"namespace\":\"aws\",\"error\":true}]}";
    struct digest_doc *d = digest_build(scan(doc), 1);
    assert_int_equal(d->flags, DIGEST_SUBSEGMENT | DIGEST_IN_PROGRESS);
    assert_true(d->id == 0xaaaaaaaaaaaaaaaaull);
    assert_true(d->parent_id == 0xbbbbbbbbbbbbbbbbull);
    assert_true(d->start == 5 && d->end == 0);
    assert_int_equal(d->status, DIGEST_FAULT);
    assert_int_equal(d->ncalls, 2);
    assert_true(d->calls[0].id == 0xaaaaaaaaaaaaaaaaull);
    assert_true(d->calls[0].traced);
    assert_true(d->calls[0].in_progress);
    assert_int_equal(d->calls[0].status, DIGEST_FAULT);
    assert_string_equal(d->calls[0].name, "payments");
    assert_string_equal(d->calls[0].resource_type, "remote");
    assert_true(d->calls[1].id == 0xccccccccccccccccull);
    assert_int_equal(d->calls[1].status, DIGEST_ERROR);
    assert_string_equal(d->calls[1].resource_type, "AWS::Lambda");
    assert_int_equal(d->nids, 1);
    assert_true(d->ids[0] == 0xccccccccccccccccull);
    free(d);

    /* The captured streamed child is not a call: no calls, no ids. */
    d = digest_build(scan(datagram("node-sdk-3.12.0-streaming-01.dgram")), 1);
    assert_int_equal(d->flags, DIGEST_SUBSEGMENT);
    assert_string_equal(d->name, "child-0");
    assert_true(d->parent_id == 0xb67ea0a9337e403aull);
    assert_int_equal(d->ncalls, 0);
    free(d);
}

static struct digest_doc *named(const char *name_json)
{
    snprintf(text, sizeof(text),
             "{\"name\":\"%s\",\"id\":\"1111111111111111\",\"trace_id\":\"1-65000000-"
             "000000000000000000000003\",\"start_time\":1,\"end_time\":2}",
             name_json);
    return digest_build(scan(text), 0);
}

static void test_digest_build_name_cut(void **state)
{
    (void)state;
    char name[512], want[256];
    /* 199 ASCII bytes, then a 2-byte character across the 200th byte: it goes. */
    memset(name, 'a', 199);
    strcpy(name + 199, "\xc3\xa9zzz");
    struct digest_doc *d = named(name);
    memset(want, 'a', 199);
    want[199] = '\0';
    assert_int_equal(strlen(d->name), 199);
    assert_string_equal(d->name, want);
    assert_int_equal(d->size, sizeof(struct digest_doc) + 200);
    free(d);
    /* The same through an escape. */
    strcpy(name + 199, "\\u00e9zzz");
    d = named(name);
    assert_string_equal(d->name, want);
    free(d);
    /* A 3-byte character at bytes 198..200: cut at 198. */
    memset(name, 'b', 198);
    strcpy(name + 198, "\xe2\x82\xac");
    d = named(name);
    assert_int_equal(strlen(d->name), 198);
    free(d);
    /* A 2-byte character ending at byte 200 stays whole. */
    memset(name, 'c', 198);
    strcpy(name + 198, "\xc3\xa9tail");
    d = named(name);
    assert_int_equal(strlen(d->name), 200);
    assert_memory_equal(d->name + 198, "\xc3\xa9", 2);
    free(d);
    /* 300 ASCII bytes: exactly 200 kept. */
    memset(name, 'd', 300);
    name[300] = '\0';
    d = named(name);
    assert_int_equal(strlen(d->name), 200);
    free(d);
}

/* More calls than DIGEST_CALLS_MAX, or subsegments the scan could not keep: flagged. */
static void test_digest_build_calls_dropped(void **state)
{
    (void)state;
    size_t n = (size_t)snprintf(text, sizeof(text),
                                "{\"type\":\"subsegment\",\"name\":\"x\",\"id\":\"a\","
                                "\"parent_id\":\"b\",\"trace_id\":\"t\",\"start_time\":1,"
                                "\"end_time\":2,\"namespace\":\"remote\",\"subsegments\":[");
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "%s{\"name\":\"r%d\",\"id\":\"%016x\",\"start_time\":1,"
                              "\"end_time\":2,\"namespace\":\"remote\"}",
                              i ? "," : "", i, i + 1);
    snprintf(text + n, sizeof(text) - n, "]}");
    struct digest_doc *d = digest_build(scan(text), 0);
    assert_int_equal(view.sub_dropped, 0);
    assert_int_equal(d->ncalls, DIGEST_CALLS_MAX);
    assert_int_equal(d->flags, DIGEST_SUBSEGMENT | DIGEST_CALLS_DROPPED);
    assert_string_equal(d->calls[0].name, "x");
    assert_string_equal(d->calls[63].name, "r62");
    assert_int_equal(d->nids, 64);
    assert_true(d->id == 0xaf63dc4c8601ec8cull); /* FNV-1a of "a" */
    free(d);

    /* Not a call itself, but 65 nested subsegments: the scan dropped one. */
    n = (size_t)snprintf(text, sizeof(text),
                         "{\"name\":\"x\",\"id\":\"a\",\"trace_id\":\"t\",\"start_time\":1,"
                         "\"end_time\":2,\"subsegments\":[");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "%s{\"name\":\"l%d\",\"id\":\"%016x\",\"start_time\":1,"
                              "\"end_time\":2}",
                              i ? "," : "", i, i + 1);
    snprintf(text + n, sizeof(text) - n, "]}");
    d = digest_build(scan(text), 0);
    assert_int_equal(view.sub_dropped, 1);
    assert_int_equal(d->ncalls, 0);
    assert_int_equal(d->flags, DIGEST_CALLS_DROPPED);
    assert_int_equal(d->nids, 64);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_id),
        cmocka_unit_test(test_digest_classify_table),
        cmocka_unit_test(test_digest_build_node_capture),
        cmocka_unit_test(test_digest_build_http_status),
        cmocka_unit_test(test_digest_build_calls),
        cmocka_unit_test(test_digest_build_streamed_call),
        cmocka_unit_test(test_digest_build_name_cut),
        cmocka_unit_test(test_digest_build_calls_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
