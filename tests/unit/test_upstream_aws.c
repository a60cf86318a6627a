/* SPDX-License-Identifier: Apache-2.0 */
/* The `aws` sender's pure parts: the PutTraceSegments body (decoded back with jansson
 * to the very documents, sized exactly, all or nothing under a maximum) and the
 * response parser. Sending through xray_call is tested in test_xray.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "upstream/upstream_aws.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "ingest/pool.h"

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

/* Decodes body and checks it is {"TraceSegmentDocuments":[...]} holding exactly the
 * documents of the list docs, byte for byte. */
static void check_body(const char *body, size_t len, const struct doc *docs)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
    if (root == NULL)
        fail_msg("jansson: %s in %.*s", jerr.text, (int)len, body);
    assert_int_equal(json_object_size(root), 1);
    json_t *list = json_object_get(root, "TraceSegmentDocuments");
    size_t i = 0;
    for (const struct doc *d = docs; d != NULL; d = d->next, i++) {
        json_t *s = json_array_get(list, i);
        assert_true(json_is_string(s));
        assert_int_equal(json_string_length(s), d->len);
        assert_memory_equal(json_string_value(s), d->data, d->len);
    }
    assert_int_equal(json_array_size(list), i);
    json_decref(root);
}

static void test_upstream_aws_body_round_trip(void **state)
{
    (void)state;
    /* Also bytes no valid document holds: every control character, DEL, a NUL. */
    char raw[40];
    for (int i = 0; i < 32; i++)
        raw[i] = (char)i;
    memcpy(raw + 32, "\x7f\"\\/\xc3\xa9z", 8);
    struct pool *pool = pool_create(1 << 20);
    struct doc *a = mkdoc(pool, tricky[0], strlen(tricky[0]));
    struct doc *b = mkdoc(pool, tricky[1], strlen(tricky[1]));
    struct doc *c = mkdoc(pool, raw, sizeof(raw));
    a->next = b;
    b->next = c;
    c->next = NULL;

    struct buf out;
    buf_init(&out, 1 << 20);
    assert_int_equal(upstream_aws_body(&out, a), 0);
    check_body(out.data, out.len, a);

    /* The size is exact: a buffer of exactly that maximum takes the body, one byte
     * less does not, and a failure leaves the buffer holding what it held. */
    size_t exact = upstream_aws_body_size(a);
    assert_int_equal(exact, out.len);
    struct buf tight;
    buf_init(&tight, exact);
    assert_int_equal(upstream_aws_body(&tight, a), 0);
    assert_int_equal(tight.len, exact);
    assert_memory_equal(tight.data, out.data, exact);
    buf_free(&tight);
    buf_init(&tight, exact - 1);
    assert_int_equal(buf_append(&tight, "x", 1), 0);
    assert_int_equal(upstream_aws_body(&tight, a), XRAY_ETOOBIG);
    assert_int_equal(tight.len, 1);
    assert_string_equal(tight.data, "x");
    /* Failing on a document in the middle, too: room for the head, a and the comma. */
    tight.max = 1 + 26 + buf_json_string_len(a->data, a->len) + 1;
    assert_int_equal(upstream_aws_body(&tight, a), XRAY_ETOOBIG);
    assert_string_equal(tight.data, "x");
    buf_free(&tight);

    /* An empty list is an empty array. */
    buf_reset(&out);
    assert_int_equal(upstream_aws_body_size(NULL), 28);
    assert_int_equal(upstream_aws_body(&out, NULL), 0);
    assert_string_equal(out.data, "{\"TraceSegmentDocuments\":[]}");

    /* And the text itself, for one simple document. */
    buf_reset(&out);
    const char *simple = "{\"a\":\"b\\\\c\"}";
    struct doc *e = mkdoc(pool, simple, strlen(simple));
    e->next = NULL;
    assert_int_equal(upstream_aws_body(&out, e), 0);
    assert_string_equal(out.data,
                        "{\"TraceSegmentDocuments\":[\"{\\\"a\\\":\\\"b\\\\\\\\c\\\"}\"]}");
    buf_free(&out);
    pool_free(pool, a);
    pool_free(pool, b);
    pool_free(pool, c);
    pool_free(pool, e);
    pool_destroy(pool);
}

/* Random batches of 1 to 3 documents at every length around the 16- and 32-byte
 * steps of buf's vector escaper, with quotes, backslashes, control characters and
 * multi-byte UTF-8: the body decodes to the documents byte for byte, its size is
 * exactly upstream_aws_body_size(), and a buffer with no room to spare (the byte
 * loop) gets the same bytes. */
static void test_upstream_aws_body_random(void **state)
{
    (void)state;
    static const char *const utf8[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                       "\xe2\x80\xa8"};
    struct pool *pool = pool_create(8 << 20);
    struct buf got, tight;
    buf_init(&got, 1 << 20);
    unsigned seed = 7;
    for (int round = 0; round < 3000; round++) {
        struct doc *head = NULL, **tail = &head;
        int ndocs = 1 + round % 3;
        for (int k = 0; k < ndocs; k++) {
            char in[300];
            size_t len = (size_t)((round * 7 + k * 13) % 297), i = 0;
            while (i < len) {
                seed = seed * 1103515245u + 12345u;
                unsigned r = (seed >> 16) & 0xff;
                /* mostly plain text, often '"' and '\\', sometimes a control character
                 * or a character of 2 to 4 bytes */
                if (r < 150) {
                    in[i++] = (char)('a' + r % 26);
                } else if (r < 190) {
                    in[i++] = '"';
                } else if (r < 205) {
                    in[i++] = '\\';
                } else if (r < 235) {
                    in[i++] = (char)(r % 32);
                } else {
                    const char *u = utf8[r % 4];
                    memcpy(in + i, u, strlen(u));
                    i += strlen(u);
                }
            }
            struct doc *d = mkdoc(pool, in, i);
            d->next = NULL;
            *tail = d;
            tail = &d->next;
        }
        buf_reset(&got);
        assert_int_equal(upstream_aws_body(&got, head), 0);
        assert_int_equal(upstream_aws_body_size(head), got.len);
        check_body(got.data, got.len, head);
        buf_init(&tight, got.len);
        assert_int_equal(upstream_aws_body(&tight, head), 0);
        assert_int_equal(tight.len, got.len);
        assert_memory_equal(tight.data, got.data, got.len);
        buf_free(&tight);
        while (head != NULL) {
            struct doc *n = head->next;
            pool_free(pool, head);
            head = n;
        }
    }
    buf_free(&got);
    pool_destroy(pool);
}

struct seen {
    int n;
    char ids[4][32];
    char codes[4][32];
};

static void on_entry(void *arg, const char *id, const char *code)
{
    struct seen *s = arg;
    if (s->n < 4) {
        snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
        snprintf(s->codes[s->n], sizeof(s->codes[0]), "%s", code);
    }
    s->n++;
}

static int parse(const char *body, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    return upstream_aws_parse_response(body, strlen(body), on_entry, s);
}

static void test_upstream_aws_parse_response(void **state)
{
    struct seen s;
    (void)state;
    assert_int_equal(parse("{\"UnprocessedTraceSegments\":[{\"Id\":\"a1\",\"ErrorCode\":\"E1\","
                           "\"Message\":\"m\"},{\"ErrorCode\":7},{\"Id\":\"b2\",\"ErrorCode\":"
                           "\"E2\"},5,null]}",
                           &s),
                     3);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.ids[0], "a1");
    assert_string_equal(s.codes[0], "E1");
    assert_string_equal(s.ids[1], "");
    assert_string_equal(s.codes[1], "");
    assert_string_equal(s.ids[2], "b2");
    assert_string_equal(s.codes[2], "E2");
    assert_int_equal(parse("{\"UnprocessedTraceSegments\":[]}", &s), 0);
    assert_int_equal(parse("{}", &s), 0);
    assert_int_equal(parse("", &s), 0);
    assert_int_equal(parse("{\"UnprocessedTraceSegments\":null}", &s), 0);
    assert_int_equal(parse("{\"UnprocessedTraceSegments\":{}}", &s), XRAY_EPARSE);
    assert_int_equal(parse("[]", &s), XRAY_EPARSE);
    assert_int_equal(parse("{\"UnprocessedTraceSegments\":[", &s), XRAY_EPARSE);
    assert_int_equal(parse("<html>", &s), XRAY_EPARSE);
    assert_int_equal(s.n, 0);

    /* Entries past the bound are not looked at. */
    struct buf many;
    buf_init(&many, 1 << 20);
    buf_append_str(&many, "{\"UnprocessedTraceSegments\":[");
    for (int i = 0; i < UPSTREAM_AWS_UNPROCESSED_MAX + 5; i++)
        buf_appendf(&many, "%s{\"Id\":\"%d\",\"ErrorCode\":\"E\"}", i ? "," : "", i);
    buf_append_str(&many, "]}");
    assert_int_equal(parse(many.data, &s), UPSTREAM_AWS_UNPROCESSED_MAX);
    assert_int_equal(s.n, UPSTREAM_AWS_UNPROCESSED_MAX);
    buf_free(&many);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upstream_aws_body_round_trip),
        cmocka_unit_test(test_upstream_aws_body_random),
        cmocka_unit_test(test_upstream_aws_parse_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
