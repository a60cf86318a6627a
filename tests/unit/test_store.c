/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded store: documents by trace, replacement of in-progress versions, streamed
 * subsegments kept apart, eviction of whole oldest traces inside the byte budget; trace
 * summaries, the time and service indexes, pages of GetTraceSummaries, persistence. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "segment/scan.h"
#include "trace/filter.h"
#include "trace/store.h"

#define T1 "1-5759e988-bd862e3fe1be46a994272793"
#define T2 "1-5759e988-bd862e3fe1be46a994272794"

static int put(struct store *st, const char *trace, const char *id, bool in_progress,
               const char *doc, uint64_t now)
{
    return store_put(st, trace, id, in_progress, 1.5, in_progress ? 0 : 2.5, doc, strlen(doc), now);
}

/* Collects the ids of trace's documents, comma-separated, into out. */
static int ids_of(struct store *st, const char *trace, char *out, size_t n)
{
    struct store_iter it;
    struct store_doc_view v;
    out[0] = '\0';
    int rc = store_find(st, trace, &it);
    while (rc == 0 && store_next(&it, &v)) {
        size_t used = strlen(out);
        snprintf(out + used, n - used, "%s%s", used ? "," : "", v.id);
    }
    return rc;
}

static void test_store_put_find(void **state)
{
    (void)state;
    struct store *st = store_create(1 << 20);
    assert_non_null(st);
    const char *doc = "{\"id\":\"a1\",\"trace_id\":\"" T1 "\",\"name\":\"x\\\"y\"}";
    assert_int_equal(put(st, T1, "a1", false, doc, 10), 0);
    struct store_iter it;
    struct store_doc_view v;
    assert_int_equal(store_find(st, T1, &it), 0);
    assert_true(store_next(&it, &v));
    assert_string_equal(v.id, "a1");
    assert_int_equal(v.len, strlen(doc));
    assert_memory_equal(v.doc, doc, v.len);
    assert_int_equal(v.doc[v.len], '\0');
    assert_true(v.start == 1.5 && v.end == 2.5);
    assert_false(v.in_progress);
    assert_false(store_next(&it, &v));
    assert_int_equal(store_find(st, T2, &it), -ENOENT);
    assert_int_equal(store_find(st, "", &it), -ENOENT);
    assert_int_equal(put(st, "", "a1", false, "{}", 1), -EINVAL);
    assert_int_equal(put(st, T1, "", false, "{}", 1), -EINVAL);
    assert_int_equal(put(st, T1 "0", "a1", false, "{}", 1), -EINVAL); /* 36 characters */
    struct store_stats s;
    store_get_stats(st, &s);
    assert_int_equal(s.traces, 1);
    assert_int_equal(s.documents, 1);
    store_destroy(st);
}

static void test_store_in_progress_replaced(void **state)
{
    (void)state;
    struct store *st = store_create(1 << 20);
    char ids[256];
    assert_int_equal(put(st, T1, "root", true, "{\"in_progress\":true}", 1), 0);
    assert_int_equal(put(st, T1, "other", false, "{\"other\":1}", 2), 0);
    assert_int_equal(put(st, T1, "root", false, "{\"end_time\":2}", 3), 0);
    /* A late in-progress version never replaces the complete one. */
    assert_int_equal(put(st, T1, "root", true, "{\"in_progress\":true}", 4), 0);
    assert_int_equal(ids_of(st, T1, ids, sizeof(ids)), 0);
    assert_string_equal(ids, "root,other"); /* the complete one took the first one's place */
    struct store_iter it;
    struct store_doc_view v;
    store_find(st, T1, &it);
    store_next(&it, &v);
    assert_string_equal(v.doc, "{\"end_time\":2}");
    assert_false(v.in_progress);
    struct store_stats s;
    store_get_stats(st, &s);
    assert_int_equal(s.documents, 2);
    assert_int_equal(s.replaced, 1);
    assert_int_equal(s.stale, 1);
    store_destroy(st);
}

static void test_store_streamed_subsegments_kept(void **state)
{
    (void)state;
    struct store *st = store_create(1 << 20);
    char ids[256];
    assert_int_equal(put(st, T1, "seg", true, "{\"in_progress\":true}", 1), 0);
    assert_int_equal(put(st, T1, "sub1", false, "{\"type\":\"subsegment\"}", 2), 0);
    assert_int_equal(put(st, T1, "sub2", false, "{\"type\":\"subsegment\"}", 3), 0);
    assert_int_equal(put(st, T2, "sub1", false, "{\"type\":\"subsegment\"}", 3), 0);
    assert_int_equal(put(st, T1, "seg", false, "{}", 4), 0);
    assert_int_equal(ids_of(st, T1, ids, sizeof(ids)), 0);
    assert_string_equal(ids, "seg,sub1,sub2");
    assert_int_equal(ids_of(st, T2, ids, sizeof(ids)), 0);
    assert_string_equal(ids, "sub1");
    store_destroy(st);
}

static void test_store_eviction_order(void **state)
{
    (void)state;
    char doc[1000];
    memset(doc, 'x', sizeof(doc) - 1);
    doc[sizeof(doc) - 1] = '\0';
    struct store *st = store_create(16 * 1024);
    struct store_stats s;
    char trace[40];
    /* Trace 0 gets a second document late: eviction still goes by first-seen time. */
    for (int i = 0; i < 30; i++) {
        snprintf(trace, sizeof(trace), "1-00000000-%024d", i);
        assert_int_equal(put(st, trace, "a", false, doc, (uint64_t)i), 0);
        if (i == 5)
            assert_int_equal(put(st, "1-00000000-000000000000000000000000", "b", false, doc, 5), 0);
        store_get_stats(st, &s);
        assert_true(s.bytes_used <= s.max_bytes);
    }
    assert_true(s.evicted_traces > 0);
    assert_int_equal(s.traces, 30 - s.evicted_traces);
    assert_int_equal(s.evicted_documents, s.evicted_traces + 1); /* trace 0 had two */
    struct store_iter it;
    for (int i = 0; i < 30; i++) {
        snprintf(trace, sizeof(trace), "1-00000000-%024d", i);
        int want = (uint64_t)i < s.evicted_traces ? -ENOENT : 0;
        assert_int_equal(store_find(st, trace, &it), want);
    }
    store_destroy(st);
}

static void test_store_too_big(void **state)
{
    (void)state;
    struct store *st = store_create(8192);
    char *doc = malloc(9000);
    memset(doc, 'x', 9000);
    assert_int_equal(put(st, T1, "a", false, "{}", 1), 0);
    assert_int_equal(store_put(st, T2, "b", false, 0, 0, doc, 9000, 2), XRAY_ETOOBIG);
    struct store_iter it;
    assert_int_equal(store_find(st, T1, &it), 0); /* nothing was evicted for it */
    struct store_stats s;
    store_get_stats(st, &s);
    assert_int_equal(s.evicted_traces, 0);
    free(doc);
    store_destroy(st);
}

/* Random puts and replacements: the budget holds after every call, and every count
 * matches what iteration finds. */
static void test_store_budget_never_exceeded(void **state)
{
    (void)state;
    struct store *st = store_create(64 * 1024);
    static char doc[3000];
    memset(doc, 'y', sizeof(doc));
    unsigned seed = 7;
    for (int i = 0; i < 5000; i++) {
        seed = seed * 1103515245u + 12345u;
        char trace[40], id[20];
        snprintf(trace, sizeof(trace), "1-00000000-%024u", (seed >> 8) % 200);
        snprintf(id, sizeof(id), "%016u", (seed >> 4) % 5);
        size_t len = (seed >> 16) % sizeof(doc);
        assert_int_equal(store_put(st, trace, id, (seed & 1) != 0, 1, 2, doc, len, (uint64_t)i), 0);
        struct store_stats s;
        store_get_stats(st, &s);
        assert_true(s.bytes_used <= s.max_bytes);
    }
    struct store_stats s;
    store_get_stats(st, &s);
    size_t docs = 0, traces = 0;
    for (int t = 0; t < 200; t++) {
        char trace[40];
        snprintf(trace, sizeof(trace), "1-00000000-%024d", t);
        struct store_iter it;
        struct store_doc_view v;
        if (store_find(st, trace, &it) != 0)
            continue;
        traces++;
        while (store_next(&it, &v))
            docs++;
    }
    assert_int_equal(traces, s.traces);
    assert_int_equal(docs, s.documents);
    store_destroy(st);
}

/* ---- store_add: summaries, indexes, queries, persistence ---- */

static struct segment_view scan_view; /* about 22 KB: not on the stack */

/* Scans doc (which must be valid) and stores it under trace. */
static int add(struct store *st, const char *trace, const char *doc, uint64_t now)
{
    size_t len = strlen(doc);
    assert_int_equal(scan_document(doc, len, &scan_view), 0);
    return store_add(st, trace, &scan_view, doc, len, now);
}

/* A trace id numbered n: its last two digits. */
static const char *tid(int n)
{
    static char ids[8][40];
    static int next;
    char *id = ids[next++ % 8];
    snprintf(id, 40, "1-00000000-%024d", n);
    return id;
}

/* A complete root segment of service svc starting at start, lasting dur seconds. */
static int add_root(struct store *st, int n, const char *svc, double start, double dur,
                    uint64_t now)
{
    char doc[512];
    snprintf(doc, sizeof(doc),
             "{\"name\":\"%s\",\"id\":\"%016d\",\"trace_id\":\"%s\",\"start_time\":%.6f,"
             "\"end_time\":%.6f}",
             svc, n, tid(n), start, start + dur);
    return add(st, tid(n), doc, now);
}

/* Runs q (filter text or NULL) and returns the parsed TraceSummaries array. */
static json_t *query(struct store *st, double from, double to, const char *filter, uint64_t cursor,
                     size_t limit, uint64_t *next, size_t *scanned)
{
    struct filter *f = NULL;
    char err[XRAY_ERR_LEN];
    if (filter != NULL)
        assert_int_equal(filter_parse(filter, strlen(filter), &f, err), 0);
    struct buf b;
    buf_init(&b, 1 << 22);
    assert_int_equal(buf_append_str(&b, "{"), 0);
    struct store_query q = {
        .start_s = from, .end_s = to, .filter = f, .cursor = cursor, .limit = limit};
    uint64_t nx = 0;
    assert_int_equal(store_write_summaries(st, &q, &b, &nx, scanned), 0);
    assert_int_equal(buf_append_str(&b, "}"), 0);
    json_error_t je;
    json_t *j = json_loadb(b.data, b.len, 0, &je);
    if (j == NULL)
        fail_msg("bad JSON: %s in %.*s", je.text, (int)b.len, b.data);
    json_t *arr = json_incref(json_object_get(j, "TraceSummaries"));
    assert_true(json_is_array(arr));
    json_decref(j);
    buf_free(&b);
    filter_free(f);
    if (next != NULL)
        *next = nx;
    return arr;
}

/* The last two digits of each summary's Id, comma-separated. */
static const char *ids(json_t *arr)
{
    static char out[1024];
    size_t i, used = 0;
    json_t *x;
    out[0] = '\0';
    json_array_foreach(arr, i, x)
    {
        const char *id = json_string_value(json_object_get(x, "Id"));
        assert_non_null(id);
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%s", used ? "," : "",
                                 id + strlen(id) - 2);
    }
    json_decref(arr);
    return out;
}

static const char *query_ids(struct store *st, double from, double to, const char *filter)
{
    return ids(query(st, from, to, filter, 0, 0, NULL, NULL));
}

#define HT "1-5759e988-bd862e3fe1be46a994272795"
#define HTTP_BLOCK                                                                                 \
    "\"http\":{\"request\":{\"method\":\"GET\",\"url\":\"http://example.com/api\","                \
    "\"user_agent\":\"curl/8\",\"client_ip\":\"10.0.0.1\"}"
/* The root, in progress: its http block has no response yet. */
static const char root_open[] =
    "{\"name\":\"web\",\"id\":\"aaaaaaaaaaaaaaa1\",\"trace_id\":\"" HT "\",\"start_time\":100.5,"
    "\"in_progress\":true,\"origin\":\"AWS::EC2::Instance\"," HTTP_BLOCK "},"
    "\"annotations\":{\"customer\":\"acme\",\"count\":3}}";
static const char root_done[] =
    "{\"name\":\"web\",\"id\":\"aaaaaaaaaaaaaaa1\",\"trace_id\":\"" HT "\",\"start_time\":100.5,"
    "\"end_time\":101.75,\"origin\":\"AWS::EC2::Instance\",\"user\":\"alice\"," HTTP_BLOCK
    ",\"response\":{\"status\":200}},"
    "\"annotations\":{\"customer\":\"acme\",\"count\":3,\"vip\":true},"
    "\"subsegments\":[{\"name\":\"call\",\"id\":\"bbbbbbbbbbbbbbb1\",\"start_time\":100.6,"
    "\"end_time\":101.5,\"namespace\":\"remote\",\"annotations\":{\"step\":2}}]}";
static const char downstream[] =
    "{\"name\":\"api\",\"id\":\"ccccccccccccccc1\",\"trace_id\":\"" HT "\","
    "\"parent_id\":\"bbbbbbbbbbbbbbb1\",\"start_time\":100.7,\"end_time\":101.9,\"fault\":true,"
    "\"http\":{\"response\":{\"status\":502}},\"annotations\":{\"customer\":\"acme\"}}";
static const char streamed[] =
    "{\"type\":\"subsegment\",\"name\":\"db\",\"id\":\"ddddddddddddddd1\",\"trace_id\":\"" HT "\","
    "\"parent_id\":\"ccccccccccccccc1\",\"start_time\":100.8,\"end_time\":101.0,"
    "\"error\":true,\"annotations\":{\"table\":\"users\"}}";

static void add_hand_built(struct store *st)
{
    assert_int_equal(add(st, HT, root_open, 1), 0);
    assert_int_equal(add(st, HT, downstream, 2), 0);
    assert_int_equal(add(st, HT, streamed, 3), 0);
    assert_int_equal(add(st, HT, root_done, 4), 0);
}

static json_t *only_summary(struct store *st)
{
    json_t *arr = query(st, 0, 1e10, NULL, 0, 0, NULL, NULL);
    assert_int_equal(json_array_size(arr), 1);
    json_t *s = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return s;
}

/* "Name/Type,Name/Type" of a ServiceIds array, checking Names = [Name]. */
static const char *services(json_t *arr)
{
    static char out[512];
    size_t i, used = 0;
    json_t *x;
    out[0] = '\0';
    assert_true(json_is_array(arr));
    json_array_foreach(arr, i, x)
    {
        const char *name = json_string_value(json_object_get(x, "Name"));
        json_t *names = json_object_get(x, "Names");
        assert_int_equal(json_array_size(names), 1);
        assert_string_equal(json_string_value(json_array_get(names, 0)), name);
        json_t *type = json_object_get(x, "Type");
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%s/%s", used ? "," : "", name,
                                 type ? json_string_value(type) : "-");
    }
    return out;
}

static json_t *annotation(json_t *s, const char *key)
{
    json_t *values = json_object_get(json_object_get(s, "Annotations"), key);
    assert_int_equal(json_array_size(values), 1);
    return json_array_get(values, 0);
}

static void test_store_add_summary(void **state)
{
    (void)state;
    struct store *st = store_create(1 << 20);
    add_hand_built(st);
    json_t *s = only_summary(st);
    assert_string_equal(json_string_value(json_object_get(s, "Id")), HT);
    assert_true(json_real_value(json_object_get(s, "StartTime")) == 100.5);
    assert_true(json_real_value(json_object_get(s, "Duration")) == 1.4);
    assert_true(json_real_value(json_object_get(s, "ResponseTime")) == 1.25);
    assert_true(json_is_true(json_object_get(s, "HasFault")));
    assert_true(json_is_true(json_object_get(s, "HasError")));
    assert_true(json_is_false(json_object_get(s, "HasThrottle")));
    assert_true(json_is_false(json_object_get(s, "IsPartial")));
    json_t *http = json_object_get(s, "Http");
    assert_int_equal(json_object_size(http), 5);
    assert_string_equal(json_string_value(json_object_get(http, "HttpURL")),
                        "http://example.com/api");
    assert_int_equal(json_integer_value(json_object_get(http, "HttpStatus")), 200);
    assert_string_equal(json_string_value(json_object_get(http, "HttpMethod")), "GET");
    assert_string_equal(json_string_value(json_object_get(http, "UserAgent")), "curl/8");
    assert_string_equal(json_string_value(json_object_get(http, "ClientIp")), "10.0.0.1");
    assert_int_equal(json_object_size(json_object_get(s, "Annotations")), 5);
    json_t *a = annotation(s, "customer");
    assert_int_equal(json_object_size(json_object_get(a, "AnnotationValue")), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a, "AnnotationValue"), "StringValue")),
        "acme");
    assert_string_equal(services(json_object_get(a, "ServiceIds")), "web/AWS::EC2::Instance,api/-");
    a = annotation(s, "count");
    assert_true(json_number_value(
                    json_object_get(json_object_get(a, "AnnotationValue"), "NumberValue")) == 3);
    assert_string_equal(services(json_object_get(a, "ServiceIds")), "web/AWS::EC2::Instance");
    a = annotation(s, "vip");
    assert_true(
        json_is_true(json_object_get(json_object_get(a, "AnnotationValue"), "BooleanValue")));
    a = annotation(s, "step"); /* from a nested subsegment of web's document */
    assert_true(json_number_value(
                    json_object_get(json_object_get(a, "AnnotationValue"), "NumberValue")) == 2);
    assert_string_equal(services(json_object_get(a, "ServiceIds")), "web/AWS::EC2::Instance");
    a = annotation(s, "table"); /* a streamed subsegment names no service */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a, "AnnotationValue"), "StringValue")),
        "users");
    assert_string_equal(services(json_object_get(a, "ServiceIds")), "");
    json_t *users = json_object_get(s, "Users");
    assert_int_equal(json_array_size(users), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(users, 0), "UserName")),
                        "alice");
    assert_string_equal(services(json_object_get(json_array_get(users, 0), "ServiceIds")),
                        "web/AWS::EC2::Instance");
    assert_string_equal(services(json_object_get(s, "ServiceIds")), "web/AWS::EC2::Instance,api/-");
    assert_int_equal(json_object_size(s), 12);
    json_decref(s);
    struct store_stats ss;
    store_get_stats(st, &ss);
    assert_int_equal(ss.traces, 1);
    assert_int_equal(ss.documents, 3);
    assert_int_equal(ss.replaced, 1);
    assert_int_equal(ss.summary_dropped, 0);
    store_destroy(st);
}

static void test_store_add_in_progress_replaced(void **state)
{
    (void)state;
    struct store *st = store_create(1 << 20);
    assert_int_equal(add(st, HT, root_open, 1), 0);
    json_t *s = only_summary(st);
    assert_true(json_is_true(json_object_get(s, "IsPartial")));
    assert_null(json_object_get(s, "ResponseTime"));
    assert_true(json_real_value(json_object_get(s, "Duration")) == 0);
    assert_null(json_object_get(json_object_get(s, "Http"), "HttpStatus"));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s, "Http"), "HttpMethod")), "GET");
    json_decref(s);
    assert_int_equal(add(st, HT, root_done, 2), 0);
    assert_int_equal(add(st, HT, root_done, 3), 0); /* the same version again */
    assert_int_equal(add(st, HT, root_open, 4), 0); /* late and stale: ignored */
    s = only_summary(st);
    assert_true(json_is_false(json_object_get(s, "IsPartial")));
    assert_true(json_is_false(json_object_get(s, "HasFault")));
    assert_true(json_real_value(json_object_get(s, "ResponseTime")) == 1.25);
    assert_true(json_real_value(json_object_get(s, "Duration")) == 1.25);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(s, "Http"), "HttpStatus")),
                     200);
    /* Each value once, though three versions carried it. */
    json_t *customer = json_object_get(json_object_get(s, "Annotations"), "customer");
    assert_int_equal(json_array_size(customer), 1);
    assert_int_equal(json_array_size(json_object_get(json_array_get(customer, 0), "ServiceIds")),
                     1);
    assert_int_equal(json_array_size(json_object_get(s, "ServiceIds")), 1);
    assert_int_equal(json_array_size(json_object_get(s, "Users")), 1);
    json_decref(s);
    /* The counts are per document: one fault in a replaced version goes with it. */
    const char *faulty =
        "{\"name\":\"api\",\"id\":\"ccccccccccccccc1\",\"trace_id\":\"" HT "\","
        "\"parent_id\":\"b\",\"start_time\":100.7,\"in_progress\":true,\"fault\":true}";
    const char *fixed = "{\"name\":\"api\",\"id\":\"ccccccccccccccc1\",\"trace_id\":\"" HT "\","
                        "\"parent_id\":\"b\",\"start_time\":100.7,\"end_time\":101}";
    assert_int_equal(add(st, HT, faulty, 5), 0);
    s = only_summary(st);
    assert_true(json_is_true(json_object_get(s, "HasFault")));
    assert_true(json_is_true(json_object_get(s, "IsPartial")));
    json_decref(s);
    assert_int_equal(add(st, HT, fixed, 6), 0);
    s = only_summary(st);
    assert_true(json_is_false(json_object_get(s, "HasFault")));
    assert_true(json_is_false(json_object_get(s, "IsPartial")));
    json_decref(s);
    struct store_stats ss;
    store_get_stats(st, &ss);
    assert_int_equal(ss.documents, 2);
    assert_int_equal(ss.replaced, 3);
    assert_int_equal(ss.stale, 1);
    store_destroy(st);
}

static void test_store_add_limits(void **state)
{
    (void)state;
    struct store *st = store_create(1 << 20);
    char doc[8192];
    /* 60 keys in two documents: X-Ray keeps 50 per trace. */
    for (int d = 0; d < 2; d++) {
        int used = snprintf(doc, sizeof(doc),
                            "{\"name\":\"s%d\",\"id\":\"%016d\",\"trace_id\":\"%s\","
                            "\"start_time\":1,\"end_time\":2,\"user\":\"u%d\","
                            "\"annotations\":{",
                            d, d, tid(1), d);
        for (int k = 0; k < 30; k++)
            used += snprintf(doc + used, sizeof(doc) - (size_t)used, "%s\"k%d_%d\":%d",
                             k ? "," : "", d, k, k);
        snprintf(doc + used, sizeof(doc) - (size_t)used, "}}");
        assert_int_equal(add(st, tid(1), doc, 1), 0);
    }
    json_t *s = only_summary(st);
    assert_int_equal(json_object_size(json_object_get(s, "Annotations")), 50);
    assert_int_equal(json_array_size(json_object_get(s, "Users")), 2);
    json_decref(s);
    struct store_stats ss;
    store_get_stats(st, &ss);
    assert_int_equal(ss.summary_dropped, 10);
    store_destroy(st);
}

static void test_store_time_range(void **state)
{
    (void)state;
    struct store *st = store_create(8 << 20);
    /* 300 traces, one a second from 1000 s: five blocks of the time index. */
    for (int i = 0; i < 300; i++)
        assert_int_equal(add_root(st, i, "web", 1000 + i, 0.5, (uint64_t)i), 0);
    size_t scanned = 0;
    json_t *arr = query(st, 1150, 1153, NULL, 0, 0, NULL, &scanned);
    assert_string_equal(ids(arr), "50,51,52");
    assert_true(scanned <= 64); /* one block looked at, not 300 traces */
    assert_string_equal(query_ids(st, 0, 1000, NULL), "");
    assert_string_equal(query_ids(st, 1299, 5000, NULL), "99");
    assert_string_equal(query_ids(st, 1000, 1001, NULL), "00");
    /* Out of order: a trace arriving late with an early start. */
    assert_int_equal(add_root(st, 300, "web", 1010.5, 0.5, 300), 0);
    assert_string_equal(query_ids(st, 1010, 1011, NULL), "10,00");
    /* A trace whose start moves earlier when an earlier document arrives. */
    char doc[256];
    snprintf(doc, sizeof(doc),
             "{\"name\":\"web\",\"id\":\"e000000000000001\",\"trace_id\":\"%s\","
             "\"start_time\":1020.25,\"end_time\":1300}",
             tid(250));
    assert_int_equal(add(st, tid(250), doc, 301), 0);
    assert_string_equal(query_ids(st, 1020, 1021, NULL), "20,50");
    assert_string_equal(query_ids(st, 1250, 1251, NULL), "");
    /* [start, end): the end is excluded. */
    assert_string_equal(query_ids(st, 1001, 1002, NULL), "01");
    store_destroy(st);
}

static void test_store_pagination(void **state)
{
    (void)state;
    struct store *st = store_create(1 << 20);
    for (int i = 1; i <= 5; i++)
        assert_int_equal(add_root(st, i, "web", 100 + i, 1, (uint64_t)i), 0);
    uint64_t next = 0;
    assert_string_equal(ids(query(st, 0, 1000, NULL, 0, 2, &next, NULL)), "01,02");
    assert_int_not_equal(next, 0);
    /* Traces arriving between pages come after the ones already paged. */
    assert_int_equal(add_root(st, 6, "web", 100.5, 1, 6), 0);
    assert_int_equal(add_root(st, 7, "web", 5000, 1, 7), 0); /* out of range */
    assert_string_equal(ids(query(st, 0, 1000, NULL, next, 2, &next, NULL)), "03,04");
    assert_int_not_equal(next, 0);
    assert_string_equal(ids(query(st, 0, 1000, NULL, next, 2, &next, NULL)), "05,06");
    assert_int_equal(next, 0);
    /* Exactly full last page: no next cursor. */
    assert_string_equal(ids(query(st, 0, 200, NULL, 0, 6, &next, NULL)), "01,02,03,04,05,06");
    assert_int_equal(next, 0);
    /* The same through the service index. */
    assert_string_equal(ids(query(st, 0, 1000, "service(\"web\")", 0, 4, &next, NULL)),
                        "01,02,03,04");
    assert_string_equal(ids(query(st, 0, 1000, "service(\"web\")", next, 4, &next, NULL)), "05,06");
    assert_int_equal(next, 0);
    store_destroy(st);
}

static void test_store_write_summaries_cap(void **state)
{
    (void)state;
    struct store *st = store_create(1 << 20);
    add_hand_built(st);
    struct buf b;
    buf_init(&b, 100);
    struct store_query q = {.start_s = 0, .end_s = 1e10};
    uint64_t next = 7;
    assert_int_equal(store_write_summaries(st, &q, &b, &next, NULL), -ENOSPC);
    assert_int_equal(next, 0);
    buf_free(&b);
    store_destroy(st);
}

/* The service index: a filter on service visits only that service's traces, in order,
 * and an evicted trace leaves every index. */
static void test_store_service_index(void **state)
{
    (void)state;
    struct store *st = store_create(64 * 1024);
    for (int i = 0; i < 20; i++)
        assert_int_equal(add_root(st, i, i % 4 == 0 ? "rare" : "common", 100 + i, 1, (uint64_t)i),
                         0);
    size_t scanned = 0;
    json_t *arr = query(st, 0, 1000, "service(\"rare\") and not fault", 0, 0, NULL, &scanned);
    assert_string_equal(ids(arr), "00,04,08,12,16");
    assert_int_equal(scanned, 5);
    arr = query(st, 0, 1000, "service(\"none\")", 0, 0, NULL, &scanned);
    assert_string_equal(ids(arr), "");
    assert_int_equal(scanned, 0);
    /* Fill the store until the first traces are evicted. */
    char big[2048];
    memset(big, 'x', sizeof(big));
    struct store_stats ss;
    int n = 100;
    do {
        char doc[4096];
        snprintf(doc, sizeof(doc),
                 "{\"name\":\"filler\",\"id\":\"%016d\",\"trace_id\":\"%s\",\"start_time\":5000,"
                 "\"end_time\":5001,\"metadata\":\"%.*s\"}",
                 n, tid(n), (int)sizeof(big), big);
        assert_int_equal(add(st, tid(n), doc, (uint64_t)n), 0);
        n++;
        store_get_stats(st, &ss);
    } while (ss.evicted_traces < 9);
    assert_true(ss.evicted_traces < 13);
    /* The oldest evicted_traces of the 20 are gone from both indexes. */
    char want_rare[64] = "", want_all[128] = "";
    size_t rare = 0;
    for (int i = (int)ss.evicted_traces; i < 20; i++) {
        if (i % 4 == 0) {
            snprintf(want_rare + strlen(want_rare), 8, "%s%02d", rare ? "," : "", i % 100);
            rare++;
        }
        snprintf(want_all + strlen(want_all), 8, "%s%02d", *want_all ? "," : "", i % 100);
    }
    arr = query(st, 0, 1000, "service(\"rare\")", 0, 0, NULL, &scanned);
    assert_string_equal(ids(arr), want_rare);
    assert_int_equal(scanned, rare);
    assert_string_equal(query_ids(st, 0, 1000, NULL), want_all);
    /* Once every trace of a name is gone, so is the name. */
    while (ss.evicted_traces < 20) {
        char doc[256];
        snprintf(doc, sizeof(doc),
                 "{\"name\":\"filler\",\"id\":\"%016d\",\"trace_id\":\"%s\",\"start_time\":5000,"
                 "\"end_time\":5001}",
                 n, tid(n));
        assert_int_equal(add(st, tid(n), doc, (uint64_t)n), 0);
        n++;
        store_get_stats(st, &ss);
    }
    arr = query(st, 0, 1000, "service(\"rare\")", 0, 0, NULL, &scanned);
    assert_string_equal(ids(arr), "");
    assert_int_equal(scanned, 0);
    assert_true(ss.bytes_used <= ss.max_bytes);
    store_destroy(st);
}

/* Random traffic through store_add: the budget holds, with summaries and names. */
static void test_store_add_budget(void **state)
{
    (void)state;
    struct store *st = store_create(32 * 1024);
    unsigned seed = 11;
    for (int i = 0; i < 3000; i++) {
        seed = seed * 1103515245u + 12345u;
        char doc[1024];
        unsigned t = (seed >> 8) % 50, svc = (seed >> 12) % 7;
        snprintf(doc, sizeof(doc),
                 "{\"name\":\"svc%u\",\"id\":\"%016u\",\"trace_id\":\"%s\",\"start_time\":%u,"
                 "%s,\"user\":\"user%u\",\"annotations\":{\"a%u\":\"v%u\",\"n\":%u}%s}",
                 svc, (seed >> 4) % 5, tid((int)t), 1000 + t,
                 seed & 1 ? "\"in_progress\":true" : "\"end_time\":2000", (seed >> 3) % 20,
                 (seed >> 5) % 60, seed % 9, (seed >> 7) % 100,
                 seed & 2 ? ",\"parent_id\":\"0000000000000001\"" : "");
        assert_int_equal(add(st, tid((int)t), doc, (uint64_t)i), 0);
        struct store_stats ss;
        store_get_stats(st, &ss);
        assert_true(ss.bytes_used <= ss.max_bytes);
    }
    store_destroy(st);
    /* Evicting returns every byte: once only identical small traces remain, the count
     * is exactly the base, one interned name and their own costs. */
    struct store_stats s0, s1, s2, ss;
    st = store_create(32 * 1024);
    store_get_stats(st, &s0);
    assert_int_equal(add_root(st, 90, "other", 10, 1, 1), 0);
    store_get_stats(st, &s1);
    assert_int_equal(add_root(st, 91, "other", 10, 1, 1), 0);
    store_get_stats(st, &s2);
    store_destroy(st);
    size_t first = s1.bytes_used - s0.bytes_used, each = s2.bytes_used - s1.bytes_used;
    st = store_create(32 * 1024);
    add_hand_built(st);
    for (int i = 0; i < 200; i++)
        assert_int_equal(add_root(st, i, "other", 10, 1, 10), 0);
    store_get_stats(st, &ss);
    assert_true(ss.evicted_traces > 1); /* the hand-built trace went first */
    assert_int_equal(ss.bytes_used, s0.bytes_used + first + (ss.traces - 1) * each);
    store_destroy(st);
}

/* ---- persistence ---- */

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

static void make_dir(char *dir, size_t n)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, n, "%s/xrayd-store-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
}

/* The store's files in dir: how many, their total size, the newest's path. */
static size_t dir_files(const char *dir, uint64_t *total, char *newest, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t files = 0;
    *total = 0;
    newest[0] = '\0';
    char best[256] = "";
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "store-", 6) != 0)
            continue;
        char path[512];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        assert_int_equal(stat(path, &sb), 0);
        *total += (uint64_t)sb.st_size;
        files++;
        if (sb.st_size > 0 && strcmp(e->d_name, best) > 0)
            strcpy(best, e->d_name);
    }
    closedir(d);
    snprintf(newest, n, "%s/%s", dir, best);
    return files;
}

static char *all_summaries(struct store *st)
{
    struct buf b;
    buf_init(&b, 1 << 22);
    struct store_query q = {.start_s = 0, .end_s = 1e10};
    uint64_t next;
    assert_int_equal(store_write_summaries(st, &q, &b, &next, NULL), 0);
    char *s = strndup(b.data, b.len);
    buf_free(&b);
    return s;
}

static void test_store_persist_reopen(void **state)
{
    (void)state;
    char top[200], dir[256], err[XRAY_ERR_LEN];
    make_dir(top, sizeof(top));
    snprintf(dir, sizeof(dir), "%s/a/b", top); /* made with its parents */
    struct store *st = store_create(1 << 20);
    assert_int_equal(store_put(st, T1, "p1", false, 7.5, 8, "{\"put\":1}", 9, 1), 0);
    assert_int_equal(store_open_dir(st, dir, err), 0);
    add_hand_built(st);
    for (int i = 0; i < 10; i++)
        assert_int_equal(add_root(st, i, i % 2 ? "odd" : "even", 200 + i, 0.25, 10), 0);
    assert_int_equal(store_sync(st), 0);
    /* A second process (here: a second store) cannot share the directory. */
    struct store *other = store_create(1 << 20);
    assert_int_not_equal(store_open_dir(other, dir, err), 0);
    assert_non_null(strstr(err, "in use by another process"));
    store_destroy(other);
    char *before = all_summaries(st);
    struct store_stats s1;
    store_get_stats(st, &s1);
    assert_int_equal(s1.disk_errors, 0);
    store_destroy(st);

    st = store_create(1 << 20);
    assert_int_equal(store_open_dir(st, dir, err), 0);
    char *after = all_summaries(st);
    assert_string_equal(after, before);
    struct store_stats s2;
    store_get_stats(st, &s2);
    assert_int_equal(s2.loaded, 1 + 4 + 10);
    assert_int_equal(s2.corrupt, 0);
    assert_int_equal(s2.traces, s1.traces);
    assert_int_equal(s2.documents, s1.documents);
    assert_int_equal(s2.replaced, 1);
    char ids_buf[256];
    assert_int_equal(ids_of(st, T1, ids_buf, sizeof(ids_buf)), 0);
    assert_string_equal(ids_buf, "p1");
    struct store_iter it;
    struct store_doc_view v;
    assert_int_equal(store_find(st, T1, &it), 0);
    assert_true(store_next(&it, &v));
    assert_string_equal(v.doc, "{\"put\":1}");
    assert_true(v.start == 7.5 && v.end == 8);
    /* And it goes on appending: a third run sees this run's documents too. */
    assert_int_equal(add_root(st, 50, "late", 300, 1, 20), 0);
    store_destroy(st);
    st = store_create(1 << 20);
    assert_int_equal(store_open_dir(st, dir, err), 0);
    assert_string_equal(query_ids(st, 299, 301, NULL), "50");
    store_destroy(st);
    free(before);
    free(after);
    rm_dir(dir);
    snprintf(dir, sizeof(dir), "%s/a", top);
    rm_dir(dir);
    rm_dir(top);
}

static void test_store_persist_torn_tail(void **state)
{
    (void)state;
    char dir[256], err[XRAY_ERR_LEN], newest[600];
    make_dir(dir, sizeof(dir));
    struct store *st = store_create(1 << 20);
    assert_int_equal(store_open_dir(st, dir, err), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(add_root(st, i, "web", 100 + i, 1, 1), 0);
    store_destroy(st);
    uint64_t total;
    assert_int_equal(dir_files(dir, &total, newest, sizeof(newest)), 1);
    assert_int_equal(truncate(newest, (off_t)total - 3), 0);
    st = store_create(1 << 20);
    assert_int_equal(store_open_dir(st, dir, err), 0);
    struct store_stats ss;
    store_get_stats(st, &ss);
    assert_int_equal(ss.loaded, 4);
    assert_int_equal(ss.corrupt, 1);
    assert_string_equal(query_ids(st, 0, 1000, NULL), "00,01,02,03");
    store_destroy(st);
    /* A damaged byte in the middle ends that file there too: records are all the same
     * size here, and the third one is hit. */
    assert_int_equal(dir_files(dir, &total, newest, sizeof(newest)), 2);
    uint64_t rec = (total + 3) / 5;
    FILE *f = fopen(newest, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)(2 * rec + rec / 2), SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, (long)(2 * rec + rec / 2), SEEK_SET), 0);
    fputc(c ^ 0x20, f);
    fclose(f);
    st = store_create(1 << 20);
    assert_int_equal(store_open_dir(st, dir, err), 0);
    store_get_stats(st, &ss);
    assert_int_equal(ss.loaded, 2);
    assert_int_equal(ss.corrupt, 1);
    assert_string_equal(query_ids(st, 0, 1000, NULL), "00,01");
    store_destroy(st);
    rm_dir(dir);
}

static void test_store_persist_bound(void **state)
{
    (void)state;
    char dir[256], err[XRAY_ERR_LEN], newest[600];
    make_dir(dir, sizeof(dir));
    struct store *st = store_create(128 * 1024);
    assert_int_equal(store_open_dir(st, dir, err), 0);
    char big[1500];
    memset(big, 'y', sizeof(big));
    for (int i = 0; i < 400; i++) {
        char doc[2048];
        snprintf(doc, sizeof(doc),
                 "{\"name\":\"web\",\"id\":\"%016d\",\"trace_id\":\"%s\",\"start_time\":%d,"
                 "\"end_time\":%d,\"metadata\":\"%.*s\"}",
                 i, tid(i), 1000 + i, 1001 + i, (int)sizeof(big), big);
        assert_int_equal(add(st, tid(i), doc, (uint64_t)i), 0);
        struct store_stats ss;
        store_get_stats(st, &ss);
        assert_true(ss.disk_bytes <= ss.max_bytes);
    }
    assert_int_equal(store_sync(st), 0);
    struct store_stats ss;
    store_get_stats(st, &ss);
    uint64_t total;
    size_t files = dir_files(dir, &total, newest, sizeof(newest));
    assert_int_equal(total, ss.disk_bytes);
    assert_true(total <= 128 * 1024);
    assert_true(total > 64 * 1024); /* bounded, not emptied */
    assert_true(files >= 2);
    store_destroy(st);
    /* Reloading what the directory kept: the newest traces, and no more than fits. */
    st = store_create(128 * 1024);
    assert_int_equal(store_open_dir(st, dir, err), 0);
    store_get_stats(st, &ss);
    assert_int_equal(ss.corrupt, 0);
    assert_true(ss.loaded > 0);
    assert_true(ss.bytes_used <= ss.max_bytes);
    char last[600];
    assert_int_equal(ids_of(st, tid(399), last, sizeof(last)), 0);
    store_destroy(st);
    rm_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_put_find),
        cmocka_unit_test(test_store_in_progress_replaced),
        cmocka_unit_test(test_store_streamed_subsegments_kept),
        cmocka_unit_test(test_store_eviction_order),
        cmocka_unit_test(test_store_too_big),
        cmocka_unit_test(test_store_budget_never_exceeded),
        cmocka_unit_test(test_store_add_summary),
        cmocka_unit_test(test_store_add_in_progress_replaced),
        cmocka_unit_test(test_store_add_limits),
        cmocka_unit_test(test_store_time_range),
        cmocka_unit_test(test_store_pagination),
        cmocka_unit_test(test_store_write_summaries_cap),
        cmocka_unit_test(test_store_service_index),
        cmocka_unit_test(test_store_add_budget),
        cmocka_unit_test(test_store_persist_reopen),
        cmocka_unit_test(test_store_persist_torn_tail),
        cmocka_unit_test(test_store_persist_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
