/* SPDX-License-Identifier: Apache-2.0 */
/* segment/scan.c: every captured datagram, field values of several, then hand-made
 * documents for each rule of wire.md and each corner of RFC 8259 / RFC 3629 where a
 * scanner can go wrong, and the number converter against strtod(). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "segment/scan.h"

#define IDS "\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"53995c3f42cd8ad8\""
#define SEG IDS ",\"name\":\"svc\",\"start_time\":1.5,\"end_time\":2.5"

static struct segment_view view;

static int scan(const char *doc)
{
    return scan_document(doc, strlen(doc), &view);
}

static void assert_str(const struct scan_str *s, const char *want)
{
    if (want == NULL) {
        assert_null(s->p);
        return;
    }
    assert_non_null(s->p);
    char buf[512];
    size_t n = scan_str_unescape(s, buf, sizeof(buf));
    assert_true(n < sizeof(buf));
    assert_int_equal(n, strlen(want));
    assert_memory_equal(buf, want, n);
    assert_true(scan_str_eq(s, want, strlen(want)));
}

static const struct scan_annotation *find_ann(const struct scan_segment *s, const char *key)
{
    for (uint16_t i = 0; i < s->ann_count; i++) {
        const struct scan_annotation *a = &view.ann[s->ann_first + i];
        if (scan_str_eq(&a->key, key, strlen(key)))
            return a;
    }
    return NULL;
}

static void assert_ann_str(const struct scan_segment *s, const char *key, const char *want)
{
    const struct scan_annotation *a = find_ann(s, key);
    assert_non_null(a);
    assert_int_equal(a->kind, SCAN_KIND_STRING);
    assert_str(&a->value, want);
}

static void assert_ann_num(const struct scan_segment *s, const char *key, double want)
{
    const struct scan_annotation *a = find_ann(s, key);
    double d;
    assert_non_null(a);
    assert_int_equal(a->kind, SCAN_KIND_NUMBER);
    assert_int_equal(scan_num_value(a->value.p, a->value.len, &d), 0);
    assert_true(d == want);
}

static void assert_ann_bool(const struct scan_segment *s, const char *key, bool want)
{
    const struct scan_annotation *a = find_ann(s, key);
    assert_non_null(a);
    assert_int_equal(a->kind, SCAN_KIND_BOOL);
    assert_int_equal(a->boolean, want);
}

/* The body of a captured datagram: everything after the header line. */
static char *load_body(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/datagrams/%s", XRAYD_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[70000];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    char *nl = memchr(buf, '\n', n);
    assert_non_null(nl);
    *len = n - (size_t)(nl + 1 - buf);
    return nl + 1;
}

static int scan_file(const char *name)
{
    size_t len;
    const char *body = load_body(name, &len);
    return scan_document(body, len, &view);
}

static void test_scan_document_every_datagram(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/datagrams", XRAYD_TEST_DATA);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0, segments = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 6, ".dgram") != 0)
            continue;
        int rc = scan_file(e->d_name);
        files++;
        if (strncmp(e->d_name, "adot-", 5) == 0) {
            /* T1S/T1U + base64 OTLP: not a segment document. */
            assert_int_equal(rc, XRAY_EPARSE);
            continue;
        }
        if (rc != 0)
            fail_msg("%s: %s (%s at %u)", e->d_name, xray_strerror(rc), view.why, view.err_offset);
        assert_non_null(view.seg.id.p);
        segments++;
    }
    closedir(d);
    assert_true(files >= 27);
    assert_true(segments >= 21);
}

static void test_scan_document_node_manual(void **state)
{
    (void)state;
    assert_int_equal(scan_file("node-sdk-3.12.0-01.dgram"), 0);
    const struct scan_segment *s = &view.seg;
    assert_false(view.subsegment);
    assert_str(&s->trace_id, "1-6b022b56-1e0eadcdbd64b7f9ad805cc1");
    assert_str(&s->id, "265cdbaab83d8d1e");
    assert_str(&s->name, "node-manual-svc");
    assert_str(&s->user, "alice");
    assert_str(&s->parent_id, NULL);
    assert_true(s->has_start_time && s->start_time == 1795304277.571);
    assert_true(s->has_end_time && s->end_time == 1795304277.572);
    assert_false(s->fault);
    assert_int_equal(s->http.response.status, SCAN_STATUS_NONE);
    assert_int_equal(s->ann_count, 3);
    assert_ann_str(s, "customer", "c-42");
    assert_ann_num(s, "big", 7);
    assert_ann_bool(s, "flag", true);
    /* Three subsegments, depth first: db-query, its child inner, then remote-call. */
    assert_int_equal(view.nsub, 3);
    assert_int_equal(view.sub_dropped, 0);
    assert_str(&view.sub[0].name, "db-query");
    assert_int_equal(view.sub[0].parent, -1);
    assert_true(view.sub[0].fault);
    assert_ann_str(&view.sub[0], "table", "orders");
    assert_str(&view.sub[1].name, "inner");
    assert_str(&view.sub[1].id, "21ce5707d942291b");
    assert_int_equal(view.sub[1].parent, 0);
    assert_str(&view.sub[2].name, "remote-call");
    assert_str(&view.sub[2].namespace, "remote");
    assert_int_equal(view.sub[2].parent, -1);
    assert_true(view.sub[2].fault);
    assert_true(view.sub[2].start_time == 1795304277.572);
}

static void test_scan_document_node_http(void **state)
{
    (void)state;
    assert_int_equal(scan_file("node-sdk-3.12.0-04.dgram"), 0);
    const struct scan_segment *s = &view.seg;
    assert_str(&s->name, "node-http-svc");
    assert_str(&s->http.request.method, "GET");
    assert_str(&s->http.request.url, "http://127.0.0.1:41941/fail");
    assert_str(&s->http.request.user_agent, ""); /* present and empty */
    assert_str(&s->http.request.client_ip, "127.0.0.1");
    assert_int_equal(s->http.response.status, 500);
    assert_true(s->fault);
    assert_false(s->error);
    assert_ann_str(s, "route", "/fail");
    assert_str(&s->aws.operation, NULL);

    assert_int_equal(scan_file("node-sdk-3.12.0-06.dgram"), 0);
    assert_str(&view.seg.parent_id, "53995c3f42cd8ad8");
    assert_str(&view.seg.trace_id, "1-5759e988-bd862e3fe1be46a994272793");
    assert_int_equal(view.seg.http.response.status, 200);
}

static void test_scan_document_node_streaming(void **state)
{
    (void)state;
    assert_int_equal(scan_file("node-sdk-3.12.0-streaming-01.dgram"), 0);
    assert_true(view.subsegment);
    assert_str(&view.seg.type, "subsegment");
    assert_str(&view.seg.parent_id, "b67ea0a9337e403a");
    assert_str(&view.seg.trace_id, "1-6b022b72-0c689b3afd717996c5639864");
    assert_true(view.seg.start_time == 1795304305.91);

    assert_int_equal(scan_file("node-sdk-3.12.0-streaming-03.dgram"), 0);
    assert_false(view.subsegment);
    assert_true(view.seg.in_progress);
    assert_false(view.seg.has_end_time);
    assert_int_equal(view.nsub, 2);
    assert_str(&view.sub[1].name, "child-3");
    assert_true(view.sub[1].end_time == 1795304305.917);
}

static void test_scan_document_python(void **state)
{
    (void)state;
    assert_int_equal(scan_file("python-sdk-2.15.0-01.dgram"), 0);
    const struct scan_segment *s = &view.seg;
    assert_str(&s->id, "a8cc3cf213da3918");
    assert_false(s->in_progress);
    assert_true(s->start_time == 1795304363.2519503);
    assert_true(s->end_time == 1795304363.252361);
    assert_int_equal(s->http.response.status, 500);
    assert_str(&s->http.request.url, "http://example/x");
    assert_ann_num(s, "n", 7);
    assert_int_equal(view.nsub, 2);
    assert_str(&view.sub[0].namespace, "local");
    assert_str(&view.sub[0].type, "subsegment");
    assert_str(&view.sub[0].parent_id, "a8cc3cf213da3918");
    assert_str(&view.sub[1].namespace, "remote");
    assert_true(view.sub[1].end_time == 1795304363.2523506);

    /* The old SDK writes the header with spaces; the body is the same shape. */
    assert_int_equal(scan_file("python-sdk-0.95-debian-03.dgram"), 0);
    assert_int_equal(view.nsub, 3);
    assert_str(&view.sub[2].name, "child-2");
    assert_true(view.seg.end_time == 1795304394.827514);

    assert_int_equal(scan_file("python-sdk-2.15.0-06.dgram"), 0);
    assert_true(view.subsegment);
    assert_str(&view.seg.parent_id, "5da074d44495cfbc");
}

struct scan_case {
    const char *doc;
    int rc;
};

static void run_cases(const struct scan_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = scan(c[i].doc);
        if (rc != c[i].rc)
            fail_msg("case %zu %s: got %s (%s), want %s", i, c[i].doc, xray_strerror(rc),
                     view.why ? view.why : "-", xray_strerror(c[i].rc));
        if (rc != 0)
            assert_non_null(view.why);
    }
}

static void test_scan_document_required_fields(void **state)
{
    (void)state;
    static const struct scan_case c[] = {
        {"{" SEG "}", 0},
        {"{" IDS ",\"start_time\":1,\"end_time\":2}", XRAY_EFIELD},            /* no name */
        {"{" IDS ",\"name\":5,\"start_time\":1,\"end_time\":2}", XRAY_EFIELD}, /* name: number */
        {"{\"trace_id\":\"t\",\"name\":\"n\",\"start_time\":1,\"end_time\":2}", XRAY_EFIELD},
        {"{\"trace_id\":\"t\",\"id\":null,\"name\":\"n\",\"start_time\":1,\"end_time\":2}",
         XRAY_EFIELD},
        {"{" IDS ",\"name\":\"n\",\"end_time\":2}", XRAY_EFIELD}, /* no start */
        {"{" IDS ",\"name\":\"n\",\"start_time\":\"1\",\"end_time\":2}", XRAY_EFIELD},
        {"{" IDS ",\"name\":\"n\",\"start_time\":1}", XRAY_EFIELD}, /* no end */
        {"{" IDS ",\"name\":\"n\",\"start_time\":1,\"end_time\":\"2\"}", XRAY_EFIELD},
        {"{\"id\":\"a\",\"name\":\"n\",\"start_time\":1,\"end_time\":2}", XRAY_EFIELD},
        {"{\"trace_id\":1,\"id\":\"a\",\"name\":\"n\",\"start_time\":1,\"end_time\":2}",
         XRAY_EFIELD},
        /* in_progress */
        {"{" IDS ",\"name\":\"n\",\"start_time\":1,\"in_progress\":true}", 0},
        {"{" IDS ",\"name\":\"n\",\"start_time\":1,\"in_progress\":false}", XRAY_EFIELD},
        {"{" IDS ",\"name\":\"n\",\"start_time\":1,\"in_progress\":\"true\"}", XRAY_EFIELD},
        {"{" IDS ",\"name\":\"n\",\"start_time\":1,\"in_progress\":1}", XRAY_EFIELD},
        {"{" IDS ",\"name\":\"n\",\"start_time\":1,\"end_time\":2,\"in_progress\":false}", 0},
        /* streamed subsegments need trace_id and parent_id */
        {"{\"type\":\"subsegment\"," SEG ",\"parent_id\":\"p\"}", 0},
        {"{\"type\":\"subsegment\"," SEG "}", XRAY_EFIELD},
        {"{\"type\":\"subsegment\",\"parent_id\":\"p\",\"id\":\"a\",\"name\":\"n\","
         "\"start_time\":1,\"end_time\":2}",
         XRAY_EFIELD},
        {"{\"type\":\"subsegment\"," SEG ",\"parent_id\":7}", XRAY_EFIELD},
        {"{\"type\":\"sub\\u0073egment\"," SEG "}", XRAY_EFIELD}, /* escaped, still "subsegment" */
        {"{\"type\":\"Subsegment\"," SEG "}", 0},                 /* any other type: a segment */
        {"{\"type\":\"segment\"," SEG "}", 0},
        {"{\"type\":5," SEG "}", 0},
        /* the nested subsegments are not checked */
        {"{" SEG ",\"subsegments\":[{},{\"name\":1},2]}", 0},
    };
    run_cases(c, sizeof(c) / sizeof(c[0]));
}

static void test_scan_document_json_syntax(void **state)
{
    (void)state;
    static const struct scan_case c[] = {
        {"", XRAY_EPARSE},
        {"   \n", XRAY_EPARSE},
        {"[]", XRAY_EPARSE},
        {"null", XRAY_EPARSE},
        {"\"x\"", XRAY_EPARSE},
        {"{", XRAY_EPARSE},
        {"{\"name\"", XRAY_EPARSE},
        {"{\"name\":", XRAY_EPARSE},
        {"{\"name\":\"x", XRAY_EPARSE},
        {"{\"name\" \"x\"}", XRAY_EPARSE},
        {"{name:\"x\"}", XRAY_EPARSE},
        {"{'name':'x'}", XRAY_EPARSE},
        {"{" SEG ",}", XRAY_EPARSE},
        {"{" SEG ",\"a\":[1,]}", XRAY_EPARSE},
        {"{" SEG ",\"a\":[,1]}", XRAY_EPARSE},
        {"{" SEG ",\"a\":{\"b\":1,}}", XRAY_EPARSE},
        {"{" SEG ",\"a\":[1 2]}", XRAY_EPARSE},
        {"{" SEG ",\"a\":tru}", XRAY_EPARSE},
        {"{" SEG ",\"a\":truex}", XRAY_EPARSE},
        {"{" SEG ",\"a\":nul}", XRAY_EPARSE},
        {"{" SEG ",\"a\":True}", XRAY_EPARSE},
        {"{" SEG ",\"a\":[true,false,null,{},[],\"\",0]}", 0},
        /* trailing bytes and whitespace */
        {"{" SEG "} x", XRAY_EPARSE},
        {"{" SEG "}}", XRAY_EPARSE},
        {"{" SEG "}{}", XRAY_EPARSE},
        {"{" SEG "} \t\r\n", 0},
        {" \t\r\n{ \"name\" : \"svc\" ,\n\t\"id\":\"a\",\r\n\"trace_id\":\"t\" , "
         "\"start_time\" :1 ,\"end_time\": 2 } ",
         0},
        {"\f{" SEG "}", XRAY_EPARSE},           /* form feed is not JSON whitespace */
        {"\xef\xbb\xbf{" SEG "}", XRAY_EPARSE}, /* nor is a byte order mark */
        {"{" SEG ",\"a\":\x01}", XRAY_EPARSE},
        /* numbers */
        {"{" SEG ",\"a\":[0,-0,1.5,-1.5e10,1E+2,1e-2,2E-0,123456789012345678901234567890]}", 0},
        {"{" SEG ",\"a\":01}", XRAY_EPARSE},
        {"{" SEG ",\"a\":-01}", XRAY_EPARSE},
        {"{" SEG ",\"a\":00}", XRAY_EPARSE},
        {"{" SEG ",\"a\":1.}", XRAY_EPARSE},
        {"{" SEG ",\"a\":.5}", XRAY_EPARSE},
        {"{" SEG ",\"a\":+1}", XRAY_EPARSE},
        {"{" SEG ",\"a\":-}", XRAY_EPARSE},
        {"{" SEG ",\"a\":1e}", XRAY_EPARSE},
        {"{" SEG ",\"a\":1e+}", XRAY_EPARSE},
        {"{" SEG ",\"a\":0x10}", XRAY_EPARSE},
        {"{" SEG ",\"a\":NaN}", XRAY_EPARSE},
        {"{" SEG ",\"a\":Infinity}", XRAY_EPARSE},
        {"{" SEG ",\"a\":1e400}", 0}, /* too large for a double: accepted (jansson refuses) */
        /* ... but not as a time: an infinite start or end is no time at all */
        {"{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"0123456789abcdef\","
         "\"name\":\"n\",\"start_time\":1e999,\"end_time\":2}",
         XRAY_EFIELD},
        {"{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"0123456789abcdef\","
         "\"name\":\"n\",\"start_time\":1,\"end_time\":-1e999}",
         XRAY_EFIELD},
        /* escapes */
        {"{" SEG ",\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20AC\"}", 0},
        {"{" SEG ",\"a\":\"\\x\"}", XRAY_EPARSE},
        {"{" SEG ",\"a\":\"\\'\"}", XRAY_EPARSE},
        {"{" SEG ",\"a\":\"\\u12G4\"}", XRAY_EPARSE},
        {"{" SEG ",\"a\":\"\\u12\"}", XRAY_EPARSE},
        {"{" SEG ",\"a\":\"\\", XRAY_EPARSE},
        {"{" SEG ",\"a\":\"\\u0000\"}", 0},               /* NUL in a value: jansson allows it */
        {"{" SEG ",\"a\\u0000\":1}", XRAY_EPARSE},        /* ... never in a key */
        {"{" SEG ",\"m\":{\"\\u0000\":1}}", XRAY_EPARSE}, /* not even deep inside */
        {"{" SEG ",\"a\":\"\\ud83d\\ude00\"}", 0},        /* a surrogate pair */
        {"{" SEG ",\"a\":\"\\uD83D\\uDE00\"}", 0},
        {"{" SEG ",\"a\":\"\\ud800\"}", XRAY_EPARSE}, /* lone high surrogate */
        {"{" SEG ",\"a\":\"\\udc00\"}", XRAY_EPARSE}, /* lone low surrogate */
        {"{" SEG ",\"a\":\"\\ud800\\u0041\"}", XRAY_EPARSE},
        {"{" SEG ",\"a\":\"\\ud800\\ud800\"}", XRAY_EPARSE},
        {"{" SEG ",\"a\":\"\\ude00\\ud83d\"}", XRAY_EPARSE},
        /* raw control characters in strings */
        {"{" SEG ",\"a\":\"x\ny\"}", XRAY_EPARSE},
        {"{" SEG ",\"a\":\"x\ty\"}", XRAY_EPARSE},
        {"{" SEG ",\"a\":\"x\x1fy\"}", XRAY_EPARSE},
        {"{" SEG ",\"a\":\"x\x7fy\"}", 0}, /* DEL is not a control character to JSON */
    };
    run_cases(c, sizeof(c) / sizeof(c[0]));
}

static void test_scan_document_utf8(void **state)
{
    (void)state;
    static const struct scan_case c[] = {
        {"{" SEG ",\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"}", 0},
        {"{" SEG ",\"\xc3\xa9\":\"\xed\x9f\xbf\xee\x80\x80\"}", 0}, /* around the surrogates */
        {"{" SEG ",\"a\":\"\xc0\xaf\"}", XRAY_EUTF8},               /* overlong '/' */
        {"{" SEG ",\"a\":\"\xc1\xbf\"}", XRAY_EUTF8},
        {"{" SEG ",\"a\":\"\xe0\x80\xaf\"}", XRAY_EUTF8},     /* overlong, 3 bytes */
        {"{" SEG ",\"a\":\"\xf0\x80\x80\xaf\"}", XRAY_EUTF8}, /* overlong, 4 bytes */
        {"{" SEG ",\"a\":\"\xed\xa0\x80\"}", XRAY_EUTF8},     /* U+D800 encoded */
        {"{" SEG ",\"a\":\"\xed\xbf\xbf\"}", XRAY_EUTF8},     /* U+DFFF encoded */
        {"{" SEG ",\"a\":\"\xf4\x90\x80\x80\"}", XRAY_EUTF8}, /* U+110000 */
        {"{" SEG ",\"a\":\"\xf5\x80\x80\x80\"}", XRAY_EUTF8},
        {"{" SEG ",\"a\":\"\xff\"}", XRAY_EUTF8},
        {"{" SEG ",\"a\":\"\x80\"}", XRAY_EUTF8},     /* lone continuation */
        {"{" SEG ",\"a\":\"\xe2\x82\"}", XRAY_EUTF8}, /* truncated */
        {"{" SEG ",\"a\":\"\xc3\"}", XRAY_EUTF8},
        {"{" SEG ",\"a\":\"\xe2\x28\xa1\"}", XRAY_EUTF8}, /* bad continuation */
        {"{" SEG ",\"a\":\"x\xe2", XRAY_EUTF8},           /* at the very end */
        {"{" SEG ",\"a\":1\xff}", XRAY_EUTF8},            /* outside a string */
        {"{" SEG ",\"a\":1\xc3\xa9}", XRAY_EPARSE},       /* valid, but not JSON */
    };
    run_cases(c, sizeof(c) / sizeof(c[0]));
}

/* A document of exactly len bytes: SEG plus a metadata string padding it out. */
static char *sized_doc(size_t len)
{
    static const char head[] = "{" SEG ",\"metadata\":{\"pad\":\"";
    static const char tail[] = "\"}}";
    char *d = malloc(len + 1);
    assert_non_null(d);
    size_t h = sizeof(head) - 1, t = sizeof(tail) - 1;
    memcpy(d, head, h);
    memset(d + h, 'x', len - h - t);
    memcpy(d + len - t, tail, t);
    d[len] = '\0';
    return d;
}

static void test_scan_document_size_limit(void **state)
{
    (void)state;
    char *d = sized_doc(SCAN_MAX_BYTES);
    assert_int_equal(scan_document(d, SCAN_MAX_BYTES, &view), 0);
    free(d);
    d = sized_doc(SCAN_MAX_BYTES + 1);
    assert_int_equal(scan_document(d, SCAN_MAX_BYTES + 1, &view), XRAY_ETOOBIG);
    assert_non_null(view.why);
    free(d);
}

/* SEG with "x" holding n - 1 nested containers, so the document is n deep. */
static char *deep_doc(int n, int objects)
{
    char *d = malloc(64 + sizeof(SEG) + (size_t)n * 8);
    assert_non_null(d);
    int k = sprintf(d, "{" SEG ",\"x\":");
    for (int i = 1; i < n; i++)
        k += sprintf(d + k, "%s", objects ? "{\"a\":" : "[");
    k += sprintf(d + k, "0");
    for (int i = 1; i < n; i++)
        k += sprintf(d + k, "%s", objects ? "}" : "]");
    sprintf(d + k, "}");
    return d;
}

static void test_scan_document_depth_limit(void **state)
{
    (void)state;
    for (int objects = 0; objects <= 1; objects++) {
        char *d = deep_doc(SCAN_MAX_DEPTH, objects);
        assert_int_equal(scan(d), 0);
        free(d);
        d = deep_doc(SCAN_MAX_DEPTH + 1, objects);
        assert_int_equal(scan(d), XRAY_EDEPTH);
        free(d);
    }
    /* Depth counts through the containers the extractor walks too. */
    char doc[8192];
    int k = sprintf(doc, "{" SEG);
    for (int i = 0; i < 31; i++) /* 31 x (array + object) + the document = 63 */
        k += sprintf(doc + k, ",\"subsegments\":[{\"id\":\"s%d\"", i);
    strcpy(doc + k, ",\"http\":{}");
    k += (int)strlen(",\"http\":{}");
    for (int i = 0; i < 31; i++)
        k += sprintf(doc + k, "}]");
    strcpy(doc + k, "}");
    assert_int_equal(scan(doc), 0); /* http is level 64 */
    assert_int_equal(view.nsub, 31);
    assert_int_equal(view.sub[30].parent, 29);
    char *p = strstr(doc, "\"http\":{}");
    memcpy(p, "\"http\":[]", 9);
    assert_int_equal(scan(doc), 0);
    memcpy(p, "\"h\":[[]]x", 9); /* level 65 */
    p[8] = ' ';
    assert_int_equal(scan(doc), XRAY_EDEPTH);
}

static void test_scan_document_duplicate_keys(void **state)
{
    (void)state;
    /* The last one wins, as in jansson, for every field and every block. */
    assert_int_equal(scan("{" SEG ",\"name\":5,\"name\":\"again\"}"), 0);
    assert_str(&view.seg.name, "again");
    assert_int_equal(scan("{" SEG ",\"name\":\"x\",\"name\":null}"), XRAY_EFIELD);
    assert_int_equal(scan("{" SEG ",\"end_time\":\"late\"}"), XRAY_EFIELD);
    assert_int_equal(scan("{" SEG ",\"in_progress\":true,\"end_time\":null,"
                          "\"in_progress\":false}"),
                     XRAY_EFIELD);
    assert_int_equal(
        scan("{" SEG ",\"http\":{\"request\":{\"method\":\"GET\"},"
             "\"response\":{\"status\":200}},\"http\":{\"response\":{\"status\":404}}}"),
        0);
    assert_str(&view.seg.http.request.method, NULL);
    assert_int_equal(view.seg.http.response.status, 404);
    assert_int_equal(scan("{" SEG ",\"http\":{\"request\":{\"method\":\"GET\",\"url\":\"u\"},"
                          "\"request\":{\"url\":\"v\"}},\"fault\":true,\"fault\":1}"),
                     0);
    assert_str(&view.seg.http.request.method, NULL);
    assert_str(&view.seg.http.request.url, "v");
    assert_false(view.seg.fault);
    assert_int_equal(scan("{" SEG ",\"aws\":{\"region\":\"r\"},\"aws\":\"none\"}"), 0);
    assert_str(&view.seg.aws.region, NULL);
    /* An escaped key is the same key. */
    assert_int_equal(scan("{" SEG ",\"n\\u0061me\":\"decoded\"}"), 0);
    assert_str(&view.seg.name, "decoded");
    /* A repeated subsegments array replaces the earlier one, its children included. */
    assert_int_equal(scan("{" SEG
                          ",\"subsegments\":[{\"id\":\"1\",\"subsegments\":[{\"id\":\"2\"}]}],"
                          "\"subsegments\":[{\"id\":\"3\",\"subsegments\":[{\"id\":\"4\"}],"
                          "\"subsegments\":[{\"id\":\"5\"}]}]}"),
                     0);
    assert_int_equal(view.nsub, 2);
    assert_str(&view.sub[0].id, "3");
    assert_str(&view.sub[1].id, "5");
    assert_int_equal(view.sub[1].parent, 0);
    assert_int_equal(scan("{" SEG ",\"subsegments\":[{\"id\":\"1\"}],\"subsegments\":{}}"), 0);
    assert_int_equal(view.nsub, 0);
}

static void test_scan_document_lookalikes(void **state)
{
    (void)state;
    /* Only the documented paths count: not metadata, cause, sql or unknown blocks. */
    assert_int_equal(
        scan("{" SEG ",\"metadata\":{\"http\":{\"request\":{\"method\":\"X\"},\"response\":"
             "{\"status\":500}},\"aws\":{\"region\":\"r\"},\"subsegments\":[{\"id\":\"m\"}],"
             "\"annotations\":{\"a\":1},\"name\":\"meta\",\"fault\":true},"
             "\"cause\":{\"id\":\"c\",\"exceptions\":[{\"id\":\"e\",\"name\":\"x\"}]},"
             "\"aws\":{\"xray\":{\"region\":\"x\"},\"http\":{\"request\":{\"url\":\"u\"}}},"
             "\"http\":{\"status\":201,\"method\":\"M\",\"request\":{\"response\":{\"status\":1}}},"
             "\"service\":{\"name\":\"svc2\",\"user\":\"u\"}}"),
        0);
    const struct scan_segment *s = &view.seg;
    assert_str(&s->name, "svc");
    assert_str(&s->id, "53995c3f42cd8ad8");
    assert_str(&s->user, NULL);
    assert_str(&s->http.request.method, NULL);
    assert_str(&s->http.request.url, NULL);
    assert_int_equal(s->http.response.status, SCAN_STATUS_NONE);
    assert_str(&s->aws.region, NULL);
    assert_false(s->fault);
    assert_int_equal(s->ann_count, 0);
    assert_int_equal(view.nsub, 0);
}

static void test_scan_document_fields(void **state)
{
    (void)state;
    assert_int_equal(
        scan("{" SEG ",\"origin\":\"AWS::EC2::Instance\",\"user\":\"u\\u00e9\",\"error\":true,"
             "\"throttle\":true,\"fault\":false,\"namespace\":\"remote\","
             "\"http\":{\"request\":{\"method\":\"POST\",\"url\":\"https://h/p?q=\\\"1\\\"\","
             "\"user_agent\":\"curl\",\"client_ip\":\"10.0.0.1\"},\"response\":{\"status\":429}},"
             "\"aws\":{\"operation\":\"SendMessage\",\"queue_url\":\"https://sqs/q\","
             "\"region\":\"us-east-1\",\"table_name\":\"t\"},"
             "\"subsegments\":[{\"id\":\"s1\",\"name\":\"DynamoDB\",\"namespace\":\"aws\","
             "\"start_time\":1.25e0,\"end_time\":125E-2,\"http\":{\"response\":{\"status\":2e2}},"
             "\"aws\":{\"operation\":\"GetItem\",\"table_name\":\"orders\"}}]}"),
        0);
    const struct scan_segment *s = &view.seg;
    assert_str(&s->origin, "AWS::EC2::Instance");
    assert_str(&s->user, "u\xc3\xa9");
    assert_true(s->user.escaped);
    assert_true(s->error && s->throttle && !s->fault);
    assert_str(&s->namespace, "remote");
    assert_str(&s->http.request.method, "POST");
    assert_str(&s->http.request.url, "https://h/p?q=\"1\"");
    assert_str(&s->http.request.user_agent, "curl");
    assert_str(&s->http.request.client_ip, "10.0.0.1");
    assert_int_equal(s->http.response.status, 429);
    assert_str(&s->aws.operation, "SendMessage");
    assert_str(&s->aws.queue_url, "https://sqs/q");
    assert_str(&s->aws.region, "us-east-1");
    assert_str(&s->aws.table_name, "t");
    const struct scan_segment *d = &view.sub[0];
    assert_str(&d->namespace, "aws");
    assert_true(d->start_time == 1.25 && d->end_time == 1.25);
    assert_int_equal(d->http.response.status, 200);
    assert_str(&d->aws.operation, "GetItem");
    assert_str(&d->aws.table_name, "orders");
    assert_int_equal(d->ann_count, 0);

    static const char *const statuses[][2] = {
        {"404", "404"}, {"404.0", "404"}, {"404.5", "-1"}, {"\"500\"", "-1"}, {"-1", "-1"},
        {"1000", "-1"}, {"0", "0"},       {"999", "999"},  {"null", "-1"},    {"5e2", "500"},
    };
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        char doc[256];
        snprintf(doc, sizeof(doc), "{" SEG ",\"http\":{\"response\":{\"status\":%s}}}",
                 statuses[i][0]);
        assert_int_equal(scan(doc), 0);
        assert_int_equal(view.seg.http.response.status, atoi(statuses[i][1]));
    }
}

static void test_scan_document_traced_and_sql(void **state)
{
    (void)state;
    /* traced: at the top (Node) or in http.request (Python, Java); sql: an object. */
    assert_int_equal(scan("{" SEG ",\"subsegments\":[{\"id\":\"a\",\"traced\":true},"
                          "{\"id\":\"b\",\"http\":{\"request\":{\"traced\":true}}},"
                          "{\"id\":\"c\",\"traced\":\"true\",\"sql\":\"x\"},"
                          "{\"id\":\"d\",\"sql\":{\"url\":\"pg://db\"}},"
                          "{\"id\":\"e\",\"metadata\":{\"traced\":true,\"sql\":{}}}]}"),
                     0);
    assert_int_equal(view.nsub, 5);
    assert_false(view.seg.traced || view.seg.sql);
    assert_true(view.sub[0].traced && !view.sub[0].sql);
    assert_true(view.sub[1].traced);
    assert_false(view.sub[2].traced || view.sub[2].sql);
    assert_true(view.sub[3].sql && !view.sub[3].traced);
    assert_false(view.sub[4].traced || view.sub[4].sql);
}

static void test_scan_document_annotations(void **state)
{
    (void)state;
    assert_int_equal(scan("{" SEG ",\"annotations\":{\"s\":\"v\",\"n\":-0,\"b\":true,\"f\":false,"
                          "\"z\":null,\"o\":{\"x\":1},\"a\":[1],\"s\":\"w\",\"\\u0062\":false,"
                          "\"gone\":1,\"gone\":[]}}"),
                     0);
    const struct scan_segment *s = &view.seg;
    assert_int_equal(s->ann_count, 4); /* s, n, b, f: z, o, a, gone are not annotations */
    assert_int_equal(s->ann_dropped, 0);
    assert_ann_str(s, "s", "w");
    assert_ann_num(s, "n", 0);
    assert_ann_bool(s, "b", false); /* "\u0062" is "b" again */
    assert_ann_bool(s, "f", false);
    assert_null(find_ann(s, "gone"));
    assert_null(find_ann(s, "z"));

    /* More than the table holds: the rest are counted, per (sub)segment. */
    char doc[8192];
    int k = sprintf(doc, "{" SEG ",\"annotations\":{");
    for (int i = 0; i < SCAN_MAX_ANNOTATIONS + 6; i++)
        k += sprintf(doc + k, "%s\"k%d\":%d", i ? "," : "", i, i);
    sprintf(doc + k, "},\"subsegments\":[{\"annotations\":{\"late\":1}}]}");
    assert_int_equal(scan(doc), 0);
    assert_int_equal(view.seg.ann_count, SCAN_MAX_ANNOTATIONS);
    assert_int_equal(view.seg.ann_dropped, 6);
    assert_ann_num(&view.seg, "k63", 63);
    assert_int_equal(view.sub[0].ann_count, 0);
    assert_int_equal(view.sub[0].ann_dropped, 1);

    /* A repeated annotations object replaces the first. */
    assert_int_equal(scan("{" SEG ",\"annotations\":{\"a\":1},\"annotations\":{\"b\":2}}"), 0);
    assert_int_equal(view.seg.ann_count, 1);
    assert_ann_num(&view.seg, "b", 2);
}

static void test_scan_document_subsegment_limit(void **state)
{
    (void)state;
    static char doc[16384];
    int k = sprintf(doc, "{" SEG ",\"subsegments\":[");
    for (int i = 0; i < SCAN_MAX_SUBSEGMENTS + 5; i++)
        k += sprintf(doc + k, "%s{\"id\":\"s%d\",\"namespace\":\"remote\"}", i ? "," : "", i);
    /* the last one carries two children: dropped too, and counted */
    sprintf(doc + k - 1, ",\"subsegments\":[{},{}]}]}");
    assert_int_equal(scan(doc), 0);
    assert_int_equal(view.nsub, SCAN_MAX_SUBSEGMENTS);
    assert_int_equal(view.sub_dropped, 5 + 2);
    assert_str(&view.sub[SCAN_MAX_SUBSEGMENTS - 1].id, "s63");
    assert_str(&view.sub[SCAN_MAX_SUBSEGMENTS - 1].namespace, "remote");
}

static void test_scan_document_error_position(void **state)
{
    (void)state;
    assert_int_equal(scan("{" SEG ",\"a\":[1,]}"), XRAY_EPARSE);
    const char *doc = "{" SEG ",\"a\":[1,]}";
    assert_int_equal(view.err_offset, (uint32_t)(strchr(doc, ']') - doc));
    assert_non_null(view.why);
    /* A raw NUL is never JSON, wherever it is (jansson 2.14 skips one after a number). */
    static const char nul[] = "{" SEG ",\"a\":1\0}";
    assert_int_equal(scan_document(nul, sizeof(nul) - 1, &view), XRAY_EPARSE);
}

static void test_scan_str_unescape(void **state)
{
    (void)state;
    assert_int_equal(scan("{" SEG ",\"user\":\"a\\u0000b\\n\\ud83d\\ude00\\u00e9\"}"), 0);
    const struct scan_str *u = &view.seg.user;
    assert_true(u->escaped);
    char buf[32];
    size_t n = scan_str_unescape(u, buf, sizeof(buf));
    assert_int_equal(n, 10);
    assert_memory_equal(buf, "a\0b\n\xf0\x9f\x98\x80\xc3\xa9", 11);
    assert_true(scan_str_eq(u, "a\0b\n\xf0\x9f\x98\x80\xc3\xa9", 10));
    assert_false(scan_str_eq(u, "a\0b\n", 4));
    /* snprintf semantics: truncated, NUL-terminated, full length returned */
    memset(buf, '#', sizeof(buf));
    assert_int_equal(scan_str_unescape(u, buf, 4), 10);
    assert_memory_equal(buf, "a\0b\0", 4);
    assert_int_equal(buf[4], '#');
    assert_int_equal(scan_str_unescape(u, buf, 0), 10);
    struct scan_str absent = {NULL, 0, false};
    assert_int_equal(scan_str_unescape(&absent, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_false(scan_str_eq(&absent, "", 0));
    struct scan_str x = {"x\\u0079", 7, true}, y = {"xy", 2, false}, z = {"xz", 2, false};
    assert_true(scan_str_same(&x, &y));
    assert_false(scan_str_same(&x, &z));
    assert_false(scan_str_same(&x, &absent));
}

static void assert_num(const char *text)
{
    double got, want = strtod(text, NULL);
    assert_int_equal(scan_num_value(text, strlen(text), &got), 0);
    if (memcmp(&got, &want, sizeof(got)) != 0)
        fail_msg("%s: got %.17g, strtod %.17g", text, got, want);
}

static void test_scan_num_value(void **state)
{
    (void)state;
    static const char *const fixed[] = {
        "0",
        "-0",
        "-0.0",
        "0e10",
        "1",
        "-1",
        "1.5",
        "1795304277.571",
        "1795304394.4257805",
        "1.7953043944257805E9",
        "17953043944257805e-7",
        "9007199254740993",
        "9007199254740992.5",
        "18446744073709551615",
        "18446744073709551616",
        "123456789012345678901234567890",
        "0.1",
        "0.3",
        "2.2250738585072011e-308",
        "2.2250738585072014e-308",
        "4.9e-324",
        "5e-324",
        "2.4703282292062327e-324",
        "1e-400",
        "-1e-400",
        "1.7976931348623157e308",
        "1.7976931348623158e308",
        "1.7976931348623159e308",
        "1e308",
        "1e309",
        "-1e400",
        "1e22",
        "1e23",
        "8.98846567431158e307",
        "0.000000000000000000000000000001",
        "1.00000000000000011102230246251565404236316680908203125",
        "1.00000000000000011102230246251565404236316680908203124",
        "1.00000000000000011102230246251565404236316680908203126",
        "7.2057594037927933e16",
        "123e-27",
        "123e27",
        "99999999999999999999e-27",
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        assert_num(fixed[i]);

    /* A 900-digit number on the boundary between two doubles plus a tail: the copy for
     * strtod keeps 780 digits and a sticky 1. */
    static char big[1200];
    strcpy(big, "1.00000000000000011102230246251565404236316680908203125");
    size_t n = strlen(big);
    memset(big + n, '0', 850);
    strcpy(big + n + 850, "1e-5");
    assert_num(big);
    big[n + 850] = '0';
    assert_num(big);

    /* Random numbers of every shape the grammar allows, against strtod: short ones
     * (the exact paths), long mantissas and far exponents (the strtod route). */
    srand(12345);
    for (int i = 0; i < 300000; i++) {
        char t[160];
        int k = 0, longer = rand() % 4 == 0;
        if (rand() % 2)
            t[k++] = '-';
        int idig = 1 + rand() % (longer ? 45 : 20);
        if (rand() % 6 == 0) {
            t[k++] = '0'; /* 0.000ddd */
            idig = 1;
        } else {
            t[k++] = (char)('1' + rand() % 9);
        }
        for (int j = 1; j < idig; j++)
            t[k++] = (char)('0' + rand() % 10);
        if (rand() % 3) {
            t[k++] = '.';
            int f = 1 + rand() % (longer ? 45 : 20), zeros = t[k - 2] == '0' ? rand() % 30 : 0;
            for (int j = 0; j < f; j++)
                t[k++] = j < zeros ? '0' : (char)('0' + rand() % 10);
        }
        if (rand() % 3 == 0)
            k += sprintf(t + k, "%c%s%d", rand() % 2 ? 'e' : 'E',
                         rand() % 3 == 0 ? "+" : (rand() % 2 ? "-" : ""), rand() % 360);
        t[k] = '\0';
        assert_num(t);
    }

    double d;
    static const char *const bad[] = {"", "-", "01", "1.", ".1", "1e", "+1", "1x", " 1", "--1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(scan_num_value(bad[i], strlen(bad[i]), &d), XRAY_EPARSE);
    assert_int_equal(scan_num_value("1e400", 5, &d), 0);
    assert_true(isinf(d) && d > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_document_every_datagram),
        cmocka_unit_test(test_scan_document_node_manual),
        cmocka_unit_test(test_scan_document_node_http),
        cmocka_unit_test(test_scan_document_node_streaming),
        cmocka_unit_test(test_scan_document_python),
        cmocka_unit_test(test_scan_document_required_fields),
        cmocka_unit_test(test_scan_document_json_syntax),
        cmocka_unit_test(test_scan_document_utf8),
        cmocka_unit_test(test_scan_document_size_limit),
        cmocka_unit_test(test_scan_document_depth_limit),
        cmocka_unit_test(test_scan_document_duplicate_keys),
        cmocka_unit_test(test_scan_document_lookalikes),
        cmocka_unit_test(test_scan_document_fields),
        cmocka_unit_test(test_scan_document_traced_and_sql),
        cmocka_unit_test(test_scan_document_annotations),
        cmocka_unit_test(test_scan_document_subsegment_limit),
        cmocka_unit_test(test_scan_document_error_position),
        cmocka_unit_test(test_scan_str_unescape),
        cmocka_unit_test(test_scan_num_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
