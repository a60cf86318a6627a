/* SPDX-License-Identifier: Apache-2.0 */
/* The read API: read_query_run() against a real graph and store fed real documents
 * (GetServiceGraph's shape field by field, its pages, GetTraceGraph, BatchGetTraces,
 * GetTraceSummaries with filters, every kind of bad body), then the four routes end to
 * end through the HTTP server and a worker thread, and through the AWS CLI when one is
 * installed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/read_api.h"
#include "api/read_query.h"
#include "api/read_query_time.h"
#include "graph/graph.h"
#include "http/server.h"
#include "pipeline.h"
#include "segment/scan.h"
#include "trace/digest.h"
#include "trace/filter.h"
#include "trace/store.h"
#include "worker.h"

#define NOW 1700000000.0
#define T1  "1-6553f100-aaaaaaaaaaaaaaaaaaaaaaaa"
#define T2  "1-6553f100-bbbbbbbbbbbbbbbbbbbbbbbb"
#define T3  "1-6553f100-cccccccccccccccccccccccc" /* not stored by setup() */

/* T1: web (root) calls api (traced), which calls DynamoDB's table "users". */
#define DOC_WEB                                                                                    \
    "{\"trace_id\":\"" T1 "\",\"id\":\"a000000000000001\",\"name\":\"web\","                       \
    "\"origin\":\"AWS::EC2::Instance\",\"start_time\":1699999940.0,\"end_time\":1699999940.5,"     \
    "\"http\":{\"request\":{\"method\":\"GET\",\"url\":\"http://web.example/x\"},"                 \
    "\"response\":{\"status\":200}},"                                                              \
    "\"subsegments\":[{\"id\":\"a000000000000002\",\"name\":\"api\",\"namespace\":\"remote\","     \
    "\"start_time\":1699999940.1,\"end_time\":1699999940.4,"                                       \
    "\"http\":{\"request\":{\"method\":\"GET\",\"url\":\"http://api.example/y\",\"traced\":true}," \
    "\"response\":{\"status\":200}}}]}"
#define DOC_API                                                                                    \
    "{\"trace_id\":\"" T1 "\",\"id\":\"b000000000000001\",\"parent_id\":\"a000000000000002\","     \
    "\"name\":\"api\",\"origin\":\"AWS::ECS::Container\",\"start_time\":1699999940.15,"            \
    "\"end_time\":1699999940.35,\"subsegments\":[{\"id\":\"b000000000000002\","                    \
    "\"name\":\"DynamoDB\",\"namespace\":\"aws\",\"start_time\":1699999940.2,"                     \
    "\"end_time\":1699999940.3,\"aws\":{\"operation\":\"GetItem\",\"table_name\":\"users\"}}]}"
/* T2: batch alone, a fault. */
#define DOC_BATCH                                                                                  \
    "{\"trace_id\":\"" T2 "\",\"id\":\"c000000000000001\",\"name\":\"batch\","                     \
    "\"origin\":\"AWS::Lambda::Function\",\"start_time\":1699999950.0,"                            \
    "\"end_time\":1699999952.0,\"fault\":true,\"http\":{\"response\":{\"status\":500}}}"
/* An in-progress version that arrived before T1's api finished: never in a graph. */
#define DOC_API_OPEN                                                                               \
    "{\"trace_id\":\"" T1 "\",\"id\":\"b000000000000001\",\"parent_id\":\"a000000000000002\","     \
    "\"name\":\"api\",\"origin\":\"AWS::ECS::Container\",\"start_time\":1699999940.15,"            \
    "\"in_progress\":true}"

#define RANGE "\"StartTime\":1699996400,\"EndTime\":1700000001"

struct fx {
    struct graph *graph;
    struct store *store;
    struct read_query_ctx ctx;
    struct buf out;
    struct segment_view view;
};

/* Adds one trace's documents to the store and, complete ones, as one trace to the graph
 * (what the assembler would hand it). */
static void feed(struct graph *g, struct store *st, const char *trace_id, const char *const *docs,
                 size_t n)
{
    static struct segment_view v;
    struct digest_doc *head = NULL, **tail = &head;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(scan_document(docs[i], strlen(docs[i]), &v), 0);
        assert_int_equal(store_add(st, trace_id, &v, docs[i], strlen(docs[i]), 1000 + i), 0);
        if (v.seg.in_progress || g == NULL)
            continue;
        struct digest_doc *d = digest_build(&v, 1000 + i);
        assert_non_null(d);
        d->next = NULL;
        *tail = d;
        tail = &d->next;
    }
    if (g != NULL && head != NULL) {
        graph_add_trace(g, head, false, NOW, 0);
        graph_flush_pending(g, NOW); /* calls nobody answered: their inferred edges now */
    }
    while (head != NULL) {
        struct digest_doc *next = head->next;
        free(head);
        head = next;
    }
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct graph_options go = {.max_bytes = 1u << 20, .retention_min = 120, .window_ms = 10000};
    f->graph = graph_create(&go);
    f->store = store_create(1u << 20);
    assert_non_null(f->graph);
    assert_non_null(f->store);
    const char *t1[] = {DOC_WEB, DOC_API_OPEN, DOC_API};
    const char *t2[] = {DOC_BATCH};
    feed(f->graph, f->store, T1, t1, 3);
    feed(f->graph, f->store, T2, t2, 1);
    f->ctx = (struct read_query_ctx){.graph = f->graph, .store = f->store, .now_s = NOW};
    buf_init(&f->out, READ_QUERY_MAX_BYTES);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    buf_free(&f->out);
    graph_destroy(f->graph);
    store_destroy(f->store);
    free(f);
    return 0;
}

/* Runs a query; asserts the status and that the answer is JSON; returns it (decref). */
static json_t *query(struct fx *f, enum read_query_kind kind, const char *body, int status)
{
    int got = read_query_run(&f->ctx, kind, body, strlen(body), &f->out);
    if (got != status)
        fail_msg("status %d, want %d: %.*s", got, status, (int)f->out.len, f->out.data);
    json_error_t je;
    json_t *j = json_loadb(f->out.data, f->out.len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        fail_msg("not JSON (%s): %.*s", je.text, (int)f->out.len, f->out.data);
    return j;
}

/* Asserts an error answer: exactly {"__type": type, "message": msg}. */
static void want_error(struct fx *f, enum read_query_kind kind, const char *body, int status,
                       const char *type, const char *msg)
{
    json_t *j = query(f, kind, body, status);
    assert_int_equal(json_object_size(j), 2);
    assert_string_equal(json_string_value(json_object_get(j, "__type")), type);
    if (msg != NULL)
        assert_string_equal(json_string_value(json_object_get(j, "message")), msg);
    else
        assert_true(json_string_length(json_object_get(j, "message")) > 0);
    json_decref(j);
}

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "(null)";
}

/* The service named name of type type, or NULL. */
static json_t *service(json_t *services, const char *name, const char *type)
{
    size_t i;
    json_t *s;
    json_array_foreach(services, i, s)
    {
        if (strcmp(str(s, "Name"), name) == 0 && strcmp(str(s, "Type"), type) == 0)
            return s;
    }
    return NULL;
}

static json_t *by_ref(json_t *services, json_int_t ref)
{
    size_t i;
    json_t *s;
    json_array_foreach(services, i, s)
    {
        if (json_integer_value(json_object_get(s, "ReferenceId")) == ref)
            return s;
    }
    return NULL;
}

/* "from>to" for each edge of every service, sorted and joined by spaces. */
static void edges_of(json_t *services, char *out, size_t cap)
{
    char list[16][96];
    size_t n = 0, i, k;
    json_t *s, *e;
    json_array_foreach(services, i, s)
    {
        json_array_foreach(json_object_get(s, "Edges"), k, e)
        {
            json_t *to = by_ref(services, json_integer_value(json_object_get(e, "ReferenceId")));
            assert_non_null(to);
            assert_true(n < 16);
            snprintf(list[n++], sizeof(list[0]), "%s/%s>%s/%s", str(s, "Name"), str(s, "Type"),
                     str(to, "Name"), str(to, "Type"));
        }
    }
    qsort(list, n, sizeof(list[0]), (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (i = 0; i < n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? " " : "", list[i]);
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void test_read_query_service_graph(void **state)
{
    struct fx *f = *state;
    json_t *j = query(f, READ_QUERY_SERVICE_GRAPH, "{" RANGE "}", 200);
    assert_int_equal(json_object_size(j), 4);
    assert_true(num(j, "StartTime") == 1699996400);
    assert_true(num(j, "EndTime") == 1700000001);
    assert_true(json_is_false(json_object_get(j, "ContainsOldGroupVersions")));
    assert_null(json_object_get(j, "NextToken"));
    json_t *svcs = json_object_get(j, "Services");
    assert_int_equal(json_array_size(svcs), 6);
    json_t *web = service(svcs, "web", "AWS::EC2::Instance");
    json_t *api = service(svcs, "api", "AWS::ECS::Container");
    json_t *users = service(svcs, "users", "AWS::DynamoDB::Table");
    json_t *batch = service(svcs, "batch", "AWS::Lambda::Function");
    assert_non_null(web);
    assert_non_null(api);
    assert_non_null(users);
    assert_non_null(batch);
    assert_non_null(service(svcs, "web", "client"));
    assert_non_null(service(svcs, "batch", "client"));
    assert_string_equal(str(web, "State"), "active");
    assert_string_equal(str(users, "State"), "unknown");
    assert_true(json_is_true(json_object_get(web, "Root")));
    assert_true(json_is_false(json_object_get(api, "Root")));
    /* Node statistics are the callee's own segment (the server view). */
    json_t *st = json_object_get(batch, "SummaryStatistics");
    assert_int_equal(json_integer_value(json_object_get(st, "TotalCount")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "OkCount")), 0);
    json_t *fs = json_object_get(st, "FaultStatistics");
    assert_int_equal(json_integer_value(json_object_get(fs, "TotalCount")), 1);
    assert_true(num(st, "TotalResponseTime") == 2.0);
    st = json_object_get(api, "SummaryStatistics");
    assert_int_equal(json_integer_value(json_object_get(st, "OkCount")), 1);
    assert_true(num(st, "TotalResponseTime") > 0.1999 && num(st, "TotalResponseTime") < 0.2001);
    char edges[1024];
    edges_of(svcs, edges, sizeof(edges));
    assert_string_equal(edges, "api/AWS::ECS::Container>users/AWS::DynamoDB::Table "
                               "batch/client>batch/AWS::Lambda::Function "
                               "web/AWS::EC2::Instance>api/AWS::ECS::Container "
                               "web/client>web/AWS::EC2::Instance");
    /* The edge web -> api has the caller's subsegment's view: 0.3 s. */
    json_t *e = json_array_get(json_object_get(web, "Edges"), 0);
    json_t *es = json_object_get(e, "SummaryStatistics");
    assert_int_equal(json_integer_value(json_object_get(es, "TotalCount")), 1);
    assert_true(num(es, "TotalResponseTime") > 0.2999 && num(es, "TotalResponseTime") < 0.3001);
    json_decref(j);

    /* A range with none of it: no services. ISO-8601 times work too. */
    j = query(f, READ_QUERY_SERVICE_GRAPH,
              "{\"StartTime\":\"2023-11-14T20:00:00Z\",\"EndTime\":\"2023-11-14T21:00:00+01:00\"}",
              200);
    assert_true(num(j, "StartTime") == 1699992000);
    assert_true(num(j, "EndTime") == 1699992000);
    assert_int_equal(json_array_size(json_object_get(j, "Services")), 0);
    json_decref(j);
    j = query(f, READ_QUERY_SERVICE_GRAPH,
              "{\"StartTime\":1699996400.25,\"EndTime\":\"1700000001\",\"GroupName\":\"Default\","
              "\"GroupARN\":\"arn:aws:xray:us-east-1:123456789012:group/Default\","
              "\"NextToken\":\"\"}",
              200);
    assert_true(num(j, "StartTime") == 1699996400.25);
    assert_int_equal(json_array_size(json_object_get(j, "Services")), 6);
    json_decref(j);
}

/* Collects every page of a query; each service must come exactly once. Returns pages. */
static int all_pages(struct fx *f, enum read_query_kind kind, const char *fields, const char *key,
                     json_t *all)
{
    char body[512], token[64] = "";
    int pages = 0;
    for (;;) {
        if (*token)
            snprintf(body, sizeof(body), "{%s,\"NextToken\":\"%s\"}", fields, token);
        else
            snprintf(body, sizeof(body), "{%s}", fields);
        json_t *j = query(f, kind, body, 200);
        json_array_extend(all, json_object_get(j, key));
        pages++;
        assert_true(pages < 20);
        json_t *t = json_object_get(j, "NextToken");
        if (t == NULL) {
            json_decref(j);
            return pages;
        }
        snprintf(token, sizeof(token), "%s", json_string_value(t));
        json_decref(j);
    }
}

static void test_read_query_service_graph_pages(void **state)
{
    struct fx *f = *state;
    f->ctx.page_limit = 2;
    json_t *all = json_array();
    assert_int_equal(all_pages(f, READ_QUERY_SERVICE_GRAPH, RANGE, "Services", all), 3);
    assert_int_equal(json_array_size(all), 6);
    char edges[1024];
    edges_of(all, edges, sizeof(edges)); /* every edge's target is on some page */
    assert_int_equal(strlen(edges), strlen("api/AWS::ECS::Container>users/AWS::DynamoDB::Table "
                                           "batch/client>batch/AWS::Lambda::Function "
                                           "web/AWS::EC2::Instance>api/AWS::ECS::Container "
                                           "web/client>web/AWS::EC2::Instance"));
    for (size_t i = 0; i < 6; i++)
        for (size_t k = i + 1; k < 6; k++)
            assert_int_not_equal(
                json_integer_value(json_object_get(json_array_get(all, i), "ReferenceId")),
                json_integer_value(json_object_get(json_array_get(all, k), "ReferenceId")));
    json_decref(all);

    /* Under a small response cap a page of 100 is cut to what fits, never cut JSON. */
    f->ctx.page_limit = 0;
    json_t *one = query(f, READ_QUERY_SERVICE_GRAPH, "{" RANGE "}", 200);
    size_t whole = f->out.len;
    json_decref(one);
    buf_free(&f->out);
    buf_init(&f->out, whole / 2 + 2048);
    all = json_array();
    int pages = all_pages(f, READ_QUERY_SERVICE_GRAPH, RANGE, "Services", all);
    assert_true(pages >= 2);
    assert_int_equal(json_array_size(all), 6);
    json_decref(all);
    /* Below one service plus the envelope: a 500, still a JSON error. */
    buf_free(&f->out);
    buf_init(&f->out, 2200);
    want_error(f, READ_QUERY_SERVICE_GRAPH, "{" RANGE "}", 500, "InternalFailure",
               "The answer does not fit in the response size limit");
    buf_free(&f->out);
    buf_init(&f->out, READ_QUERY_MAX_BYTES);
}

static void test_read_query_service_graph_errors(void **state)
{
    struct fx *f = *state;
    const char *inv = "InvalidRequestException";
    enum read_query_kind sg = READ_QUERY_SERVICE_GRAPH;
    want_error(f, sg, "{}", 400, inv, "StartTime and EndTime are required");
    want_error(f, sg, "{\"StartTime\":1}", 400, inv, "StartTime and EndTime are required");
    want_error(f, sg, "{\"StartTime\":1,\"EndTime\":null}", 400, inv,
               "StartTime and EndTime are required");
    const char *bad_time = "StartTime and EndTime must be timestamps: epoch seconds or ISO-8601";
    want_error(f, sg, "{\"StartTime\":\"yesterday\",\"EndTime\":2}", 400, inv, bad_time);
    want_error(f, sg, "{\"StartTime\":-1,\"EndTime\":2}", 400, inv, bad_time);
    want_error(f, sg, "{\"StartTime\":true,\"EndTime\":2}", 400, inv, bad_time);
    want_error(f, sg, "{\"StartTime\":1,\"EndTime\":1e300}", 400, inv, bad_time);
    want_error(f, sg, "{\"StartTime\":\"2023-02-29T00:00:00Z\",\"EndTime\":2}", 400, inv, bad_time);
    want_error(f, sg, "{\"StartTime\":\"2023-01-01T00:00:00Zjunk\",\"EndTime\":2}", 400, inv,
               bad_time);
    want_error(f, sg, "{\"StartTime\":3,\"EndTime\":2}", 400, inv,
               "EndTime must not be before StartTime");
    want_error(f, sg, "{" RANGE ",\"NextToken\":\"sg1.x\"}", 400, inv, "Invalid NextToken");
    want_error(f, sg, "{" RANGE ",\"NextToken\":\"ts1.5\"}", 400, inv, "Invalid NextToken");
    want_error(f, sg, "{" RANGE ",\"NextToken\":\"sg1.0\"}", 400, inv, "Invalid NextToken");
    want_error(f, sg, "{" RANGE ",\"NextToken\":\"sg1.99999999999999999999\"}", 400, inv,
               "Invalid NextToken");
    want_error(f, sg, "{" RANGE ",\"NextToken\":5}", 400, inv, "Invalid NextToken");
    want_error(f, sg, "{" RANGE ",\"GroupName\":\"prod\"}", 400, inv,
               "Group not found: xrayd has only the Default group");
    want_error(f, sg, "{" RANGE ",\"GroupARN\":\"arn:aws:xray:us-east-1:1:group/prod/X\"}", 400,
               inv, "Group not found: xrayd has only the Default group");
    want_error(f, sg, "{" RANGE ",\"GroupName\":7}", 400, inv,
               "GroupName and GroupARN must be strings");
    /* A token past the end is an empty last page, not an error. */
    json_t *j = query(f, sg, "{" RANGE ",\"NextToken\":\"sg1.1000\"}", 200);
    assert_int_equal(json_array_size(json_object_get(j, "Services")), 0);
    assert_null(json_object_get(j, "NextToken"));
    json_decref(j);
}

static void test_read_query_trace_graph(void **state)
{
    struct fx *f = *state;
    json_t *j = query(f, READ_QUERY_TRACE_GRAPH, "{\"TraceIds\":[\"" T2 "\"]}", 200);
    assert_int_equal(json_object_size(j), 1);
    json_t *svcs = json_object_get(j, "Services");
    assert_int_equal(json_array_size(svcs), 2);
    assert_non_null(service(svcs, "batch", "AWS::Lambda::Function"));
    assert_non_null(service(svcs, "batch", "client"));
    char edges[1024];
    edges_of(svcs, edges, sizeof(edges));
    assert_string_equal(edges, "batch/client>batch/AWS::Lambda::Function");
    json_decref(j);

    /* T1 twice and an unknown id: T1's four services, counted once. */
    j = query(f, READ_QUERY_TRACE_GRAPH,
              "{\"TraceIds\":[\"" T1 "\",\"" T3 "\",\"" T1 "\"],\"NextToken\":null}", 200);
    svcs = json_object_get(j, "Services");
    assert_int_equal(json_array_size(svcs), 4);
    edges_of(svcs, edges, sizeof(edges));
    assert_string_equal(edges, "api/AWS::ECS::Container>users/AWS::DynamoDB::Table "
                               "web/AWS::EC2::Instance>api/AWS::ECS::Container "
                               "web/client>web/AWS::EC2::Instance");
    json_t *st = json_object_get(service(svcs, "api", "AWS::ECS::Container"), "SummaryStatistics");
    assert_int_equal(json_integer_value(json_object_get(st, "TotalCount")), 1);
    json_decref(j);

    j = query(f, READ_QUERY_TRACE_GRAPH, "{\"TraceIds\":[\"" T3 "\"]}", 200);
    assert_int_equal(json_array_size(json_object_get(j, "Services")), 0);
    json_decref(j);

    /* Pages of one, through tg1. tokens. */
    f->ctx.page_limit = 1;
    json_t *all = json_array();
    assert_int_equal(
        all_pages(f, READ_QUERY_TRACE_GRAPH, "\"TraceIds\":[\"" T1 "\"]", "Services", all), 4);
    assert_int_equal(json_array_size(all), 4);
    json_decref(all);
    f->ctx.page_limit = 0;
    want_error(f, READ_QUERY_TRACE_GRAPH, "{\"TraceIds\":[\"" T1 "\"],\"NextToken\":\"sg1.1\"}",
               400, "InvalidRequestException", "Invalid NextToken");
    want_error(f, READ_QUERY_TRACE_GRAPH, "{\"TraceIds\":[]}", 400, "InvalidRequestException",
               "TraceIds must contain at least 1 item");
    char body[8192] = "{\"TraceIds\":[";
    for (int i = 0; i < 101; i++)
        strcat(body, i ? ",\"x\"" : "\"x\"");
    strcat(body, "]}");
    want_error(f, READ_QUERY_TRACE_GRAPH, body, 400, "InvalidRequestException",
               "Exceeding maximum query size: 100");
}

#define DOC_A                                                                                      \
    "{\"trace_id\":\"" T3 "\",\"id\":\"70de5b6f19ff9a0a\",\"name\":\"svc \\\"a\\\"\","             \
    "\"start_time\":1.0,\"end_time\":1.5}"
#define DOC_B                                                                                      \
    "{\"type\":\"subsegment\",\"trace_id\":\"" T3 "\",\"id\":\"70de5b6f19ff9a0b\","                \
    "\"parent_id\":\"70de5b6f19ff9a0a\",\"start_time\":1.1,\"end_time\":1.7}"

/* BatchGetTraces, as it was answered before it moved to the worker: documents as
 * received, unknown ids apart, duplicates once, at most five ids. */
static void test_read_query_traces(void **state)
{
    struct fx *f = *state;
    assert_int_equal(
        store_put(f->store, T3, "70de5b6f19ff9a0a", false, 1.0, 1.5, DOC_A, strlen(DOC_A), 1), 0);
    assert_int_equal(
        store_put(f->store, T3, "70de5b6f19ff9a0b", false, 1.1, 1.7, DOC_B, strlen(DOC_B), 2), 0);
    const char *body = "{\"TraceIds\":[\"" T3 "\",\"1-nope\",\"" T3 "\"]}";
    assert_int_equal(read_query_run(&f->ctx, READ_QUERY_TRACES, body, strlen(body), &f->out), 200);
    const char *want =
        "{\"Traces\":[{\"Id\":\"" T3 "\",\"Duration\":0.7,\"LimitExceeded\":false,\"Segments\":["
        "{\"Id\":\"70de5b6f19ff9a0a\",\"Document\":\"{\\\"trace_id\\\":\\\"" T3
        "\\\",\\\"id\\\":\\\"70de5b6f19ff9a0a\\\",\\\"name\\\":\\\"svc \\\\\\\"a\\\\\\\"\\\","
        "\\\"start_time\\\":1.0,\\\"end_time\\\":1.5}\"},"
        "{\"Id\":\"70de5b6f19ff9a0b\",\"Document\":\"{\\\"type\\\":\\\"subsegment\\\","
        "\\\"trace_id\\\":\\\"" T3 "\\\",\\\"id\\\":\\\"70de5b6f19ff9a0b\\\","
        "\\\"parent_id\\\":\\\"70de5b6f19ff9a0a\\\",\\\"start_time\\\":1.1,"
        "\\\"end_time\\\":1.7}\"}]}],"
        "\"UnprocessedTraceIds\":[\"1-nope\"]}";
    assert_int_equal(f->out.len, strlen(want));
    assert_memory_equal(f->out.data, want, f->out.len);
    json_t *j = query(f, READ_QUERY_TRACES, body, 200);
    json_t *segs = json_object_get(json_array_get(json_object_get(j, "Traces"), 0), "Segments");
    assert_string_equal(str(json_array_get(segs, 0), "Document"), DOC_A);
    json_decref(j);

    /* The in-progress api document was replaced by the complete one. */
    j = query(f, READ_QUERY_TRACES, "{\"TraceIds\":[\"" T1 "\"],\"NextToken\":\"x\"}", 200);
    json_t *t = json_array_get(json_object_get(j, "Traces"), 0);
    assert_true(num(t, "Duration") == 0.5);
    segs = json_object_get(t, "Segments");
    assert_int_equal(json_array_size(segs), 2);
    assert_string_equal(str(json_array_get(segs, 1), "Document"), DOC_API);
    assert_int_equal(json_array_size(json_object_get(j, "UnprocessedTraceIds")), 0);
    json_decref(j);

    const char *inv = "InvalidRequestException";
    want_error(f, READ_QUERY_TRACES, "{\"TraceIds\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"]}", 400,
               inv, "Exceeding maximum query size: 5");
    want_error(f, READ_QUERY_TRACES, "{\"TraceIds\":[]}", 400, inv,
               "TraceIds must contain at least 1 item");
    want_error(f, READ_QUERY_TRACES, "{\"TraceIds\":\"" T1 "\"}", 400, inv,
               "TraceIds is required and must be a list of strings");
    want_error(f, READ_QUERY_TRACES, "{\"TraceIds\":[\"" T1 "x\"]}", 400, inv,
               "Each of TraceIds must be a string of 1 to 35 characters");
    /* jansson refuses \u0000 in strings: an id can never hide one. */
    want_error(f, READ_QUERY_TRACES, "{\"TraceIds\":[\"a\\u0000b\"]}", 400, inv,
               "Request body must be a JSON object");
    want_error(f, READ_QUERY_TRACES, "{\"TraceIds\":[\"a\"],\"NextToken\":1}", 400, inv,
               "NextToken must be a string");
}

static void test_read_query_trace_summaries(void **state)
{
    struct fx *f = *state;
    json_t *j = query(f, READ_QUERY_TRACE_SUMMARIES, "{" RANGE "}", 200);
    assert_true(num(j, "ApproximateTime") == NOW);
    assert_int_equal(json_integer_value(json_object_get(j, "TracesProcessedCount")), 2);
    json_t *sums = json_object_get(j, "TraceSummaries");
    assert_int_equal(json_array_size(sums), 2);
    assert_string_equal(str(json_array_get(sums, 0), "Id"), T1);
    assert_string_equal(str(json_array_get(sums, 1), "Id"), T2);
    assert_null(json_object_get(j, "NextToken"));
    json_decref(j);

    j = query(f, READ_QUERY_TRACE_SUMMARIES,
              "{" RANGE ",\"FilterExpression\":\"fault\",\"TimeRangeType\":\"TraceId\","
              "\"Sampling\":false,\"SamplingStrategy\":{\"Name\":\"FixedRate\",\"Value\":1}}",
              200);
    sums = json_object_get(j, "TraceSummaries");
    assert_int_equal(json_array_size(sums), 1);
    json_t *s = json_array_get(sums, 0);
    assert_string_equal(str(s, "Id"), T2);
    assert_true(json_is_true(json_object_get(s, "HasFault")));
    assert_true(num(s, "Duration") == 2.0);
    json_decref(j);

    j = query(f, READ_QUERY_TRACE_SUMMARIES,
              "{" RANGE ",\"FilterExpression\":\"service(\\\"api\\\")\"}", 200);
    sums = json_object_get(j, "TraceSummaries");
    assert_int_equal(json_array_size(sums), 1);
    assert_string_equal(str(json_array_get(sums, 0), "Id"), T1);
    json_decref(j);

    /* A range before both traces: none. */
    j = query(f, READ_QUERY_TRACE_SUMMARIES, "{\"StartTime\":1,\"EndTime\":2}", 200);
    assert_int_equal(json_array_size(json_object_get(j, "TraceSummaries")), 0);
    json_decref(j);

    /* Pages of one, through ts1. tokens (the CLI repeats the other members). */
    f->ctx.page_limit = 1;
    json_t *all = json_array();
    assert_int_equal(all_pages(f, READ_QUERY_TRACE_SUMMARIES, RANGE, "TraceSummaries", all), 2);
    assert_int_equal(json_array_size(all), 2);
    assert_string_equal(str(json_array_get(all, 0), "Id"), T1);
    assert_string_equal(str(json_array_get(all, 1), "Id"), T2);
    json_decref(all);
    f->ctx.page_limit = 0;

    /* An unsupported expression: 400 with filter_parse()'s own message. */
    const char *expr = "edge(\"web\", \"api\")";
    char err[XRAY_ERR_LEN] = "";
    struct filter *flt = NULL;
    assert_int_equal(filter_parse(expr, strlen(expr), &flt, err), XRAY_EPARSE);
    assert_true(strlen(err) > 0);
    const char *inv = "InvalidRequestException";
    want_error(f, READ_QUERY_TRACE_SUMMARIES,
               "{" RANGE ",\"FilterExpression\":\"edge(\\\"web\\\", \\\"api\\\")\"}", 400, inv,
               err);
    want_error(f, READ_QUERY_TRACE_SUMMARIES, "{" RANGE ",\"FilterExpression\":5}", 400, inv,
               "FilterExpression must be a string");
    want_error(f, READ_QUERY_TRACE_SUMMARIES, "{" RANGE ",\"TimeRangeType\":\"Other\"}", 400, inv,
               "TimeRangeType must be one of TraceId, Event, Service");
    want_error(f, READ_QUERY_TRACE_SUMMARIES, "{" RANGE ",\"Sampling\":\"yes\"}", 400, inv,
               "Sampling must be a boolean");
    want_error(f, READ_QUERY_TRACE_SUMMARIES, "{" RANGE ",\"NextToken\":\"sg1.1\"}", 400, inv,
               "Invalid NextToken");
    want_error(f, READ_QUERY_TRACE_SUMMARIES, "{\"EndTime\":2}", 400, inv,
               "StartTime and EndTime are required");
    char big[2200 + 64];
    snprintf(big, sizeof(big), "{" RANGE ",\"FilterExpression\":\"%02001d\"}", 0);
    want_error(f, READ_QUERY_TRACE_SUMMARIES, big, 400, inv,
               "FilterExpression is longer than 2000 characters");
}

/* Anything that is not a request of the right shape is a 400, never a crash. */
static void test_read_query_malformed(void **state)
{
    struct fx *f = *state;
    const char *bodies[] = {
        "",
        "not json",
        "[]",
        "[{\"TraceIds\":[\"a\"]}]",
        "\"x\"",
        "7",
        "null",
        "{\"StartTime\":1,\"StartTime\":2,\"EndTime\":3}",
        "{\"StartTime\":{},\"EndTime\":[]}",
        "{\"TraceIds\":[1,2]}",
        "{\"TraceIds\":{\"a\":1}}",
        "{\"TraceIds\":null}",
        "{\"StartTime\":1,\"EndTime\":2",
        "{\"StartTime\":1e999,\"EndTime\":2}",
        "{\"StartTime\":99999999999999999999999,\"EndTime\":2}",
        "\xff\xfe{}",
    };
    for (int k = 0; k < READ_QUERY_KINDS; k++)
        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
            want_error(f, (enum read_query_kind)k, bodies[i], 400, "InvalidRequestException", NULL);
    want_error(f, READ_QUERY_TRACES, "[]", 400, "InvalidRequestException",
               "Request body must be a JSON object");
    /* Depth: jansson stops at its own limit; still a 400. */
    static char deep[40000];
    memset(deep, '[', sizeof(deep) - 1);
    want_error(f, READ_QUERY_TRACE_GRAPH, deep, 400, "InvalidRequestException",
               "Request body must be a JSON object");
    /* A body over 1 MiB is refused before it is parsed. */
    char *huge = malloc(READ_QUERY_BODY_MAX + 2);
    memset(huge, ' ', READ_QUERY_BODY_MAX + 1);
    huge[READ_QUERY_BODY_MAX + 1] = '\0';
    want_error(f, READ_QUERY_TRACES, huge, 400, "InvalidRequestException",
               "Request body is larger than 1 MiB");
    free(huge);
}

/* With the graph or the store off, the queries that need them say so (404). */
static void test_read_query_off(void **state)
{
    struct fx *f = *state;
    f->ctx.graph = NULL;
    want_error(f, READ_QUERY_SERVICE_GRAPH, "{" RANGE "}", 404, "ResourceNotFoundException",
               "The service graph is off in this xrayd (it needs trace assembly)");
    json_t *j = query(f, READ_QUERY_TRACE_GRAPH, "{\"TraceIds\":[\"" T2 "\"]}", 200);
    assert_int_equal(json_array_size(json_object_get(j, "Services")), 2);
    json_decref(j);
    f->ctx.store = NULL;
    const char *msg = "The embedded store is off in this xrayd (use the local upstream or "
                      "--local-api)";
    want_error(f, READ_QUERY_TRACES, "{\"TraceIds\":[\"a\"]}", 404, "ResourceNotFoundException",
               msg);
    want_error(f, READ_QUERY_TRACE_GRAPH, "{\"TraceIds\":[\"a\"]}", 404,
               "ResourceNotFoundException", msg);
    want_error(f, READ_QUERY_TRACE_SUMMARIES, "{" RANGE "}", 404, "ResourceNotFoundException", msg);
    /* A bad request is still a 400 first. */
    want_error(f, READ_QUERY_TRACES, "{}", 400, "InvalidRequestException",
               "TraceIds is required and must be a list of strings");
    assert_string_equal(read_query_error_type(429), "ThrottledException");
    assert_string_equal(read_query_error_type(503), "ServiceUnavailableException");
    assert_string_equal(read_query_error_type(500), "InternalFailure");
}

static void test_read_query_time_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        double want;
    } good[] = {
        {"2023-11-14T22:13:20Z", 1700000000},     {"2023-11-14 23:13:20.5+01:00", 1700000000.5},
        {"2023-11-14T17:13:20-0500", 1700000000}, {"2023-11-14t22:13:20z", 1700000000},
        {"2023-11-14T22:13:20", 1700000000},      {"2024-02-29T00:00:00Z", 1709164800},
        {"2000-01-01T00:00:00Z", 946684800},      {"1970-01-01T00:00:00Z", 0},
        {"1700000000.25", 1700000000.25},         {"1700000000", 1700000000},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        double t = -1;
        assert_int_equal(read_query_time_parse(good[i].text, strlen(good[i].text), &t), 0);
        if (t != good[i].want)
            fail_msg("%s: %.6f, want %.6f", good[i].text, t, good[i].want);
    }
    static const char *const bad[] = {
        "",
        ".",
        "1.2.3",
        "0x10",
        "1e5",
        "inf",
        "-5",
        "2023-02-29T00:00:00Z",
        "2023-13-01T00:00:00Z",
        "2023-11-14T24:00:00Z",
        "2023-11-14",
        "2023-11-14T22:13:20.Z",
        "2023-11-14T22:13:20+1",
        "2023-11-14T22:13:20Z ",
        "2023-11-14X22:13:20Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double t = 0;
        if (read_query_time_parse(bad[i], strlen(bad[i]), &t) != -1)
            fail_msg("accepted '%s' as %.6f", bad[i], t);
    }
}

/* ---- end to end: HTTP server, worker thread, pipeline ---- */

#define NCALLS 10

struct call {
    int status;
    char raw[16384];
    const char *body; /* into raw */
};

struct e2e {
    uv_loop_t loop;
    uv_async_t done;
    uv_timer_t watchdog;
    uv_thread_t thread;
    struct http_server *server;
    struct worker worker;
    struct stats stats;
    struct pipeline *pipeline;
    struct store *store;
    int port, tcp_port;
    int closed;
    void (*client)(struct e2e *e);
    struct call calls[NCALLS];
    char cli[4][16384];
    int cli_rc[4];
};

/* One blocking request with Connection: close; reads until the server closes. */
static void call(int port, const char *method, const char *path, const char *body, struct call *out)
{
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, strlen(body), body);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    out->status = -1;
    out->body = "";
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || write(fd, req, (size_t)n) != n) {
        close(fd);
        return;
    }
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(out->raw) - 1 &&
           (r = read(fd, out->raw + got, sizeof(out->raw) - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    out->raw[got] = '\0';
    sscanf(out->raw, "HTTP/1.1 %d", &out->status);
    char *b = strstr(out->raw, "\r\n\r\n");
    out->body = b ? b + 4 : "";
}

static void e2e_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the test did not finish in time");
}

static void e2e_closed(void *data)
{
    struct e2e *e = data;
    e->closed++;
}

static void e2e_done(uv_async_t *h)
{
    struct e2e *e = h->data;
    uv_thread_join(&e->thread);
    http_server_close(e->server, e2e_closed, e);
    worker_close(&e->worker, e2e_closed, e);
    uv_close((uv_handle_t *)&e->done, NULL);
    uv_close((uv_handle_t *)&e->watchdog, NULL);
}

static void e2e_client_thread(void *arg)
{
    struct e2e *e = arg;
    e->client(e);
    uv_async_send(&e->done);
}

static bool e2e_process(struct doc *doc, void *ctx)
{
    (void)doc;
    (void)ctx;
    return true;
}

static void e2e_doc_done(struct doc *doc, void *data)
{
    (void)doc;
    (void)data;
}

/* A server with the read API, a worker whose process_ctx is a pipeline with a graph
 * and a store holding T1 and T2; runs client in a thread, then closes everything. */
static void e2e_run(struct e2e *e, void (*client)(struct e2e *e))
{
    char err[XRAY_ERR_LEN];
    assert_int_equal(uv_loop_init(&e->loop), 0);
    e->pipeline = pipeline_create(&e->stats);
    struct pipeline_assembly_options ao = {.window_ms = 10000,
                                           .assembly_bytes = 1u << 20,
                                           .graph_bytes = 1u << 20,
                                           .graph_retention_min = 120};
    assert_int_equal(pipeline_enable_assembly(e->pipeline, &ao), 0);
    e->store = store_create(1u << 20);
    pipeline_set_store(e->pipeline, e->store);
    const char *t1[] = {DOC_WEB, DOC_API};
    const char *t2[] = {DOC_BATCH};
    feed(pipeline_graph(e->pipeline), e->store, T1, t1, 2);
    feed(pipeline_graph(e->pipeline), e->store, T2, t2, 1);
    e->worker.process = e2e_process;
    e->worker.process_ctx = e->pipeline;
    e->worker.done = e2e_doc_done;
    assert_int_equal(worker_start(&e->worker, &e->loop, 16), 0);
    e->server = http_server_create(&e->loop, NULL);
    assert_int_equal(http_server_listen(e->server, "127.0.0.1:0", HTTP_ROLE_TCP, err), 0);
    assert_int_equal(http_server_listen(e->server, "127.0.0.1:0", HTTP_ROLE_API, err), 0);
    e->tcp_port = http_server_port(e->server, HTTP_ROLE_TCP);
    e->port = http_server_port(e->server, HTTP_ROLE_API);
    assert_int_equal(read_api_register(e->server, &e->worker), 0);
    uv_timer_init(&e->loop, &e->watchdog);
    uv_timer_start(&e->watchdog, e2e_watchdog, 60000, 0);
    uv_async_init(&e->loop, &e->done, e2e_done);
    e->done.data = e;
    e->client = client;
    assert_int_equal(uv_thread_create(&e->thread, e2e_client_thread, e), 0);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(e->closed, 2);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    pipeline_destroy(e->pipeline);
    store_destroy(e->store);
}

static void e2e_client(struct e2e *e)
{
    call(e->port, "POST", "/Traces", "{\"TraceIds\":[\"" T2 "\",\"" T3 "\"]}", &e->calls[0]);
    call(e->port, "POST", "/ServiceGraph", "{" RANGE "}", &e->calls[1]);
    call(e->port, "POST", "/TraceSummaries", "{" RANGE ",\"FilterExpression\":\"fault\"}",
         &e->calls[2]);
    call(e->port, "POST", "/TraceGraph", "{\"TraceIds\":[\"" T2 "\"]}", &e->calls[3]);
    call(e->port, "POST", "/Traces", "{\"TraceIds\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"]}",
         &e->calls[4]);
    call(e->port, "POST", "/Traces", "{\"TraceIds\":[\"" T1 "\"", &e->calls[5]);
    call(e->port, "GET", "/Traces", "", &e->calls[6]);
    call(e->tcp_port, "POST", "/Traces", "{\"TraceIds\":[\"" T1 "\"]}", &e->calls[7]);
}

static json_t *e2e_json(const struct call *c, int status)
{
    assert_int_equal(c->status, status);
    assert_non_null(strstr(c->raw, "Content-Type: application/json\r\n"));
    json_t *j = json_loads(c->body, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_read_api_end_to_end(void **state)
{
    (void)state;
    struct e2e *e = calloc(1, sizeof(*e));
    e2e_run(e, e2e_client);
    json_t *j = e2e_json(&e->calls[0], 200);
    json_t *t = json_array_get(json_object_get(j, "Traces"), 0);
    assert_string_equal(str(t, "Id"), T2);
    assert_string_equal(str(json_array_get(json_object_get(t, "Segments"), 0), "Document"),
                        DOC_BATCH);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "UnprocessedTraceIds"), 0)), T3);
    json_decref(j);
    j = e2e_json(&e->calls[1], 200);
    assert_int_equal(json_array_size(json_object_get(j, "Services")), 6);
    json_decref(j);
    j = e2e_json(&e->calls[2], 200);
    json_t *sums = json_object_get(j, "TraceSummaries");
    assert_int_equal(json_array_size(sums), 1);
    assert_string_equal(str(json_array_get(sums, 0), "Id"), T2);
    json_t *at = json_object_get(j, "ApproximateTime");
    assert_true(json_number_value(at) > NOW); /* the worker's wall clock */
    json_decref(j);
    j = e2e_json(&e->calls[3], 200);
    assert_int_equal(json_array_size(json_object_get(j, "Services")), 2);
    json_decref(j);
    assert_int_equal(e->calls[4].status, 400);
    assert_string_equal(e->calls[4].body, "{\"__type\":\"InvalidRequestException\","
                                          "\"message\":\"Exceeding maximum query size: 5\"}");
    assert_non_null(strstr(e->calls[4].raw, "\r\nx-amzn-ErrorType: InvalidRequestException\r\n"));
    assert_int_equal(e->calls[5].status, 400);
    assert_non_null(strstr(e->calls[5].body, "\"__type\":\"InvalidRequestException\""));
    assert_int_equal(e->calls[6].status, 405);
    assert_int_equal(e->calls[7].status, 404); /* the read API is not on the -t address */
    free(e);
}

/* The AWS CLI (botocore) parses and pages each answer: the shapes really are X-Ray's. */
static void cli(struct e2e *e, int i, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null "
             "AWS_EC2_METADATA_DISABLED=true aws xray %s --endpoint-url http://127.0.0.1:%d "
             "--no-sign-request --region us-east-1 --output json 2>&1",
             args, e->port);
    FILE *p = popen(cmd, "r");
    size_t got = p ? fread(e->cli[i], 1, sizeof(e->cli[i]) - 1, p) : 0;
    e->cli[i][got] = '\0';
    e->cli_rc[i] = p ? pclose(p) : -1;
}

static void cli_client(struct e2e *e)
{
    cli(e, 0, "batch-get-traces --trace-ids " T1 " " T3);
    cli(e, 1, "get-service-graph --start-time 1699996400 --end-time 1700000001");
    cli(e, 2,
        "get-trace-summaries --start-time 1699996400 --end-time 1700000001 "
        "--filter-expression fault");
    cli(e, 3, "get-trace-graph --trace-ids " T1);
}

static json_t *cli_json(struct e2e *e, int i)
{
    if (e->cli_rc[i] != 0)
        fail_msg("aws exited with %d: %s", e->cli_rc[i], e->cli[i]);
    json_t *j = json_loads(e->cli[i], 0, NULL);
    if (j == NULL)
        fail_msg("not JSON: %s", e->cli[i]);
    return j;
}

static void test_read_api_aws_cli(void **state)
{
    (void)state;
    if (system("aws --version >/dev/null 2>&1") != 0)
        skip();
    struct e2e *e = calloc(1, sizeof(*e));
    e2e_run(e, cli_client);
    json_t *j = cli_json(e, 0);
    json_t *t = json_array_get(json_object_get(j, "Traces"), 0);
    assert_string_equal(str(t, "Id"), T1);
    assert_true(num(t, "Duration") == 0.5);
    assert_string_equal(str(json_array_get(json_object_get(t, "Segments"), 1), "Document"),
                        DOC_API);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "UnprocessedTraceIds"), 0)), T3);
    json_decref(j);
    j = cli_json(e, 1);
    json_t *svcs = json_object_get(j, "Services");
    assert_int_equal(json_array_size(svcs), 6);
    assert_non_null(service(svcs, "users", "AWS::DynamoDB::Table"));
    json_decref(j);
    j = cli_json(e, 2);
    assert_int_equal(json_array_size(json_object_get(j, "TraceSummaries")), 1);
    assert_string_equal(str(json_array_get(json_object_get(j, "TraceSummaries"), 0), "Id"), T2);
    json_decref(j);
    j = cli_json(e, 3);
    assert_int_equal(json_array_size(json_object_get(j, "Services")), 4);
    json_decref(j);
    free(e);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: a peer that left is an EPIPE, not a kill */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_query_service_graph, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_query_service_graph_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_query_service_graph_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_query_trace_graph, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_query_traces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_query_trace_summaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_query_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_query_off, setup, teardown),
        cmocka_unit_test(test_read_query_time_parse),
        cmocka_unit_test(test_read_api_end_to_end),
        cmocka_unit_test(test_read_api_aws_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
