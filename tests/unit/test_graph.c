/* SPDX-License-Identifier: Apache-2.0 */
/* The service graph: nodes, edges and statistics from hand-built digests, read back
 * through GetServiceGraph's JSON; the pairing windows, streamed subsegments, minutes,
 * retention, the byte budget and pagination. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "graph/graph_edges.h"

#define T0  1700000040.0 /* the start of a minute */
#define NOW (T0 + 30)

/* ---- digests by hand ---- */

struct tdoc {
    struct digest_doc d;
    struct digest_call calls[8];
    uint64_t ids[8];
    char name[32]; /* for generated names */
};

static struct tdoc pool[64];
static size_t npool;

static void reset_pool(void)
{
    memset(pool, 0, sizeof(pool));
    npool = 0;
}

static struct digest_doc *doc(uint64_t id, uint64_t parent, const char *name, const char *origin,
                              double start, double end, uint8_t status, uint64_t arrived)
{
    assert_true(npool < sizeof(pool) / sizeof(pool[0]));
    struct tdoc *t = &pool[npool++];
    memset(t, 0, sizeof(*t));
    t->d.id = id;
    t->d.parent_id = parent;
    t->d.name = name;
    t->d.origin = origin;
    t->d.start = T0 + start;
    t->d.end = T0 + end;
    t->d.status = status;
    t->d.arrived_ms = arrived;
    t->d.http_status = -1;
    t->d.calls = t->calls;
    t->d.ids = t->ids;
    return &t->d;
}

static struct digest_doc *sub(uint64_t id, uint64_t parent, const char *name, uint64_t arrived)
{
    struct digest_doc *d = doc(id, parent, name, "", 2, 2.5, DIGEST_OK, arrived);
    d->flags = DIGEST_SUBSEGMENT;
    return d;
}

/* A call made by d: also listed among d's nested ids, as digest_build does. */
static struct digest_call *call(struct digest_doc *d, uint64_t id, const char *name, uint8_t ns,
                                bool traced, const char *resource, const char *type, double start,
                                double end, uint8_t status)
{
    struct tdoc *t = (struct tdoc *)d;
    struct digest_call *c = &t->calls[d->ncalls++];
    *c = (struct digest_call){.id = id,
                              .start = T0 + start,
                              .end = T0 + end,
                              .status = status,
                              .ns = ns,
                              .traced = traced,
                              .name = name,
                              .resource = resource,
                              .resource_type = type};
    t->ids[d->nids++] = id;
    return c;
}

/* Links the documents (NULL-terminated) in arrival order. */
static const struct digest_doc *chain(struct digest_doc *first, ...)
{
    va_list ap;
    va_start(ap, first);
    struct digest_doc *prev = first, *d;
    while ((d = va_arg(ap, struct digest_doc *)) != NULL) {
        prev->next = d;
        prev = d;
    }
    prev->next = NULL;
    va_end(ap);
    return first;
}

static struct graph *mk(size_t max_bytes, uint32_t retention)
{
    struct graph_options o = {.max_bytes = max_bytes, .retention_min = retention};
    struct graph *g = graph_create(&o);
    assert_non_null(g);
    return g;
}

/* ---- reading the answer ---- */

static json_t *services(struct graph *g, double start, double end)
{
    struct buf b;
    buf_init(&b, 1 << 22);
    size_t next = 99;
    assert_int_equal(buf_append_str(&b, "{"), 0);
    assert_int_equal(graph_write_services(g, start, end, 0, 1000, &b, &next), 0);
    assert_int_equal(next, 0);
    assert_int_equal(buf_append_str(&b, "}"), 0);
    json_error_t err;
    json_t *root = json_loads(b.data, 0, &err);
    if (root == NULL)
        fail_msg("bad JSON: %s in %s", err.text, b.data);
    buf_free(&b);
    json_t *arr = json_incref(json_object_get(root, "Services"));
    json_decref(root);
    assert_true(json_is_array(arr));
    return arr;
}

/* The service named name of type type (NULL: a JSON null type), or fails. */
static json_t *svc(json_t *arr, const char *name, const char *type)
{
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s)
    {
        json_t *t = json_object_get(s, "Type");
        if (strcmp(json_string_value(json_object_get(s, "Name")), name) != 0)
            continue;
        if (type == NULL ? json_is_null(t)
                         : (json_is_string(t) && !strcmp(json_string_value(t), type)))
            return s;
    }
    fail_msg("no service %s (%s)", name, type ? type : "null");
    return NULL;
}

static bool has_svc(json_t *arr, const char *name, const char *type)
{
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s)
    {
        json_t *t = json_object_get(s, "Type");
        if (!strcmp(json_string_value(json_object_get(s, "Name")), name) && json_is_string(t) &&
            !strcmp(json_string_value(t), type))
            return true;
    }
    return false;
}

static json_int_t ref(json_t *s)
{
    return json_integer_value(json_object_get(s, "ReferenceId"));
}

static size_t nedges(json_t *s)
{
    return json_array_size(json_object_get(s, "Edges"));
}

/* The edge from -> to, or NULL. */
static json_t *edge(json_t *from, json_t *to)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(from, "Edges"), i, e)
    {
        if (json_integer_value(json_object_get(e, "ReferenceId")) == ref(to))
            return e;
    }
    return NULL;
}

static json_int_t ival(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (b != NULL)
        v = json_object_get(v, b);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* Asserts o's SummaryStatistics. */
static void stats(json_t *o, json_int_t ok, json_int_t error, json_int_t throttle, json_int_t fault,
                  double seconds)
{
    json_t *s = json_object_get(o, "SummaryStatistics");
    assert_non_null(s);
    assert_int_equal(ival(s, "OkCount", NULL), ok);
    assert_int_equal(ival(s, "ErrorStatistics", "ThrottleCount"), throttle);
    assert_int_equal(ival(s, "ErrorStatistics", "OtherCount"), error);
    assert_int_equal(ival(s, "ErrorStatistics", "TotalCount"), error + throttle);
    assert_int_equal(ival(s, "FaultStatistics", "OtherCount"), fault);
    assert_int_equal(ival(s, "FaultStatistics", "TotalCount"), fault);
    assert_int_equal(ival(s, "TotalCount", NULL), ok + error + throttle + fault);
    double rt = json_number_value(json_object_get(s, "TotalResponseTime"));
    if (fabs(rt - seconds) > 1e-9)
        fail_msg("TotalResponseTime %.9f, expected %.9f", rt, seconds);
}

static const char *state_of(json_t *s)
{
    return json_string_value(json_object_get(s, "State"));
}

static bool root(json_t *s)
{
    return json_is_true(json_object_get(s, "Root"));
}

/* The only histogram entry of o[key]: its value and count. */
static void one_bucket(json_t *o, const char *key, double value, json_int_t count)
{
    json_t *h = json_object_get(o, key);
    assert_int_equal(json_array_size(h), 1);
    assert_true(fabs(json_number_value(json_object_get(json_array_get(h, 0), "Value")) - value) <
                1e-9);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(h, 0), "Count")), count);
}

/* ---- the chain web -> api -> db-svc ---- */

/* web (root) calls api, which calls DynamoDB (table users), SQS (my-queue), an
 * uninstrumented payments.example.com and db-svc (an sql call to an instrumented
 * service). Offsets are powers of two so the durations are exact. */
static const struct digest_doc *web_api_db(uint8_t web_status, uint8_t call_status,
                                           uint8_t api_status, uint8_t db_call_status,
                                           uint8_t db_status)
{
    struct digest_doc *web = doc(0xA1, 0, "web", "AWS::EC2::Instance", 1, 1.5, web_status, 1000);
    call(web, 0xA2, "api", DIGEST_NS_REMOTE, true, "api", "remote", 1.0625, 1.4375, call_status);
    struct digest_doc *api =
        doc(0xB1, 0xA2, "api", "AWS::ECS::Container", 1.125, 1.375, api_status, 1100);
    call(api, 0xB2, "DynamoDB", DIGEST_NS_AWS, false, "users", "AWS::DynamoDB::Table", 1.125,
         1.1875, DIGEST_OK);
    call(api, 0xB3, "SQS", DIGEST_NS_AWS, false, "my-queue", "AWS::SQS::Queue", 1.1875, 1.25,
         DIGEST_OK);
    call(api, 0xB4, "payments.example.com", DIGEST_NS_REMOTE, false, "payments.example.com",
         "remote", 1.25, 1.3125, DIGEST_OK);
    call(api, 0xB5, "db-svc", DIGEST_NS_REMOTE, true, "db-svc", "remote", 1.3125, 1.375,
         db_call_status)
        ->sql = true;
    struct digest_doc *db = doc(0xC1, 0xB5, "db-svc", "", 1.3203125, 1.3671875, db_status, 1200);
    return chain(web, api, db, NULL);
}

static void test_graph_chain(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    graph_add_trace(g, web_api_db(DIGEST_OK, DIGEST_OK, DIGEST_OK, DIGEST_OK, DIGEST_OK), false,
                    NOW, 0);
    /* api's three calls nothing answered wait for their callee until their window
     * closes (or the flush): no edge yet. */
    struct graph_stats st;
    graph_get_stats(g, &st);
    assert_int_equal(st.pending, 3);
    assert_int_equal(st.expired_callers, 0);
    assert_int_equal(st.paired, 2);
    json_t *arr = services(g, T0 - 600, T0 + 600);
    assert_int_equal(json_array_size(arr), 4);
    assert_int_equal(nedges(svc(arr, "api", "AWS::ECS::Container")), 1);
    json_decref(arr);
    graph_flush_pending(g, NOW);
    arr = services(g, T0 - 600, T0 + 600);
    assert_int_equal(json_array_size(arr), 7);
    json_t *web = svc(arr, "web", "AWS::EC2::Instance");
    json_t *client = svc(arr, "web", "client");
    json_t *api = svc(arr, "api", "AWS::ECS::Container");
    json_t *db = svc(arr, "db-svc", NULL);
    json_t *users = svc(arr, "users", "AWS::DynamoDB::Table");
    json_t *queue = svc(arr, "my-queue", "AWS::SQS::Queue");
    json_t *pay = svc(arr, "payments.example.com", "remote");
    /* ReferenceIds in creation order, and the array in ReferenceId order. */
    json_t *order[] = {web, client, api, db, users, queue, pay};
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(ref(order[i]), i);
        assert_ptr_equal(json_array_get(arr, i), order[i]);
    }
    assert_string_equal(state_of(web), "active");
    assert_string_equal(state_of(api), "active");
    assert_string_equal(state_of(db), "active");
    assert_string_equal(state_of(users), "unknown");
    assert_string_equal(state_of(queue), "unknown");
    assert_string_equal(state_of(pay), "unknown");
    assert_string_equal(state_of(client), "unknown");
    assert_true(root(web));
    assert_false(root(api) || root(db) || root(users) || root(client));
    assert_string_equal(json_string_value(json_array_get(json_object_get(api, "Names"), 0)), "api");
    assert_int_equal(json_array_size(json_object_get(api, "Names")), 1);
    assert_true(json_number_value(json_object_get(api, "StartTime")) == T0);
    assert_true(json_number_value(json_object_get(api, "EndTime")) == T0 + 60);

    /* Edges: exactly these six. */
    assert_int_equal(nedges(client), 1);
    assert_int_equal(nedges(web), 1);
    assert_int_equal(nedges(api), 4);
    assert_int_equal(nedges(db) + nedges(users) + nedges(queue) + nedges(pay), 0);
    json_t *e_client = edge(client, web), *e_web = edge(web, api), *e_db = edge(api, db);
    json_t *e_users = edge(api, users), *e_queue = edge(api, queue), *e_pay = edge(api, pay);
    assert_non_null(e_client);
    assert_non_null(e_web);
    assert_non_null(e_db);
    assert_non_null(e_users);
    assert_non_null(e_queue);
    assert_non_null(e_pay);
    assert_int_equal(json_array_size(json_object_get(e_web, "Aliases")), 0);

    /* Nodes: their own segments; inferred nodes: the calls. Edges: the caller's calls. */
    stats(web, 1, 0, 0, 0, 0.5);
    stats(api, 1, 0, 0, 0, 0.25);
    stats(db, 1, 0, 0, 0, 0.046875);
    stats(users, 1, 0, 0, 0, 0.0625);
    stats(queue, 1, 0, 0, 0, 0.0625);
    stats(pay, 1, 0, 0, 0, 0.0625);
    stats(e_client, 1, 0, 0, 0, 0.5);
    stats(e_web, 1, 0, 0, 0, 0.375);
    stats(e_db, 1, 0, 0, 0, 0.0625);
    stats(e_users, 1, 0, 0, 0, 0.0625);
    one_bucket(web, "DurationHistogram", 0.5, 1);
    one_bucket(web, "ResponseTimeHistogram", 0.5, 1);
    one_bucket(e_web, "ResponseTimeHistogram", 0.375, 1);
    one_bucket(db, "ResponseTimeHistogram", 0.047, 1); /* ms-rounded */
    assert_null(json_object_get(e_web, "DurationHistogram"));

    graph_get_stats(g, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.expired_early, 0);
    assert_int_equal(st.nodes, 7);
    assert_int_equal(st.edges, 6);
    assert_int_equal(st.paired, 2);
    assert_int_equal(st.expired_callers, 3);
    assert_int_equal(st.expired_callees + st.late + st.unresolved + st.dropped, 0);
    assert_true(st.bytes_used <= st.max_bytes);
    assert_int_equal(st.max_bytes, GRAPH_MIN_BYTES);

    assert_int_equal(graph_edge_conn(g, "web", "AWS::EC2::Instance", "api", "AWS::ECS::Container"),
                     GRAPH_CONN_SERVICE);
    assert_int_equal(graph_edge_conn(g, "api", "AWS::ECS::Container", "db-svc", ""),
                     GRAPH_CONN_DATABASE);
    assert_int_equal(
        graph_edge_conn(g, "api", "AWS::ECS::Container", "users", "AWS::DynamoDB::Table"),
        GRAPH_CONN_VIRTUAL_NODE);
    assert_int_equal(
        graph_edge_conn(g, "api", "AWS::ECS::Container", "my-queue", "AWS::SQS::Queue"),
        GRAPH_CONN_MESSAGING);
    assert_int_equal(
        graph_edge_conn(g, "api", "AWS::ECS::Container", "payments.example.com", "remote"),
        GRAPH_CONN_VIRTUAL_NODE);
    assert_int_equal(graph_edge_conn(g, "api", "AWS::ECS::Container", "web", "AWS::EC2::Instance"),
                     -ENOENT);
    assert_string_equal(graph_conn_name(GRAPH_CONN_MESSAGING), "messaging_system");
    assert_string_equal(graph_conn_name(GRAPH_CONN_SERVICE), "");
    json_decref(arr);
    graph_destroy(g);
}

/* api faults: its node counts the fault (server view) and the edge from web counts
 * the fault web's call saw (client view). In a second trace api answers ok but the
 * call still failed (the network): the edge says fault, the node ok. */
static void test_graph_fault_in_the_middle(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    graph_add_trace(g, web_api_db(DIGEST_ERROR, DIGEST_FAULT, DIGEST_FAULT, DIGEST_OK, DIGEST_OK),
                    false, NOW, 0);
    graph_add_trace(g, web_api_db(DIGEST_OK, DIGEST_FAULT, DIGEST_OK, DIGEST_OK, DIGEST_OK), false,
                    NOW, 0);
    json_t *arr = services(g, T0, T0 + 60);
    json_t *web = svc(arr, "web", "AWS::EC2::Instance");
    json_t *api = svc(arr, "api", "AWS::ECS::Container");
    stats(api, 1, 0, 0, 1, 0.5);
    stats(edge(web, api), 0, 0, 0, 2, 0.75);
    stats(web, 1, 1, 0, 0, 1.0);
    stats(edge(svc(arr, "web", "client"), web), 1, 1, 0, 0, 1.0);
    one_bucket(edge(web, api), "ResponseTimeHistogram", 0.375, 2);
    json_decref(arr);
    graph_destroy(g);
}

/* A 429 from db-svc: a throttle, counted in ErrorStatistics. */
static void test_graph_throttle(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    graph_add_trace(
        g, web_api_db(DIGEST_OK, DIGEST_OK, DIGEST_ERROR, DIGEST_THROTTLE, DIGEST_THROTTLE), false,
        NOW, 0);
    json_t *arr = services(g, T0, T0 + 60);
    json_t *api = svc(arr, "api", "AWS::ECS::Container");
    json_t *db = svc(arr, "db-svc", NULL);
    stats(db, 0, 0, 1, 0, 0.046875);
    stats(edge(api, db), 0, 0, 1, 0, 0.0625);
    stats(api, 0, 1, 0, 0, 0.25);
    json_decref(arr);
    graph_destroy(g);
}

/* Each root service gets a client node of its name: type client, no statistics of
 * its own, one edge carrying the root's statistics. */
static void test_graph_client_node(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    graph_add_trace(g, chain(doc(0x1, 0, "web", "", 1, 1.5, DIGEST_ERROR, 10), NULL), false, NOW,
                    0);
    graph_add_trace(g, chain(doc(0x2, 0, "web", "", 2, 2.25, DIGEST_OK, 20), NULL), false, NOW, 0);
    graph_add_trace(g, chain(doc(0x3, 0, "batch", "AWS::Lambda", 3, 4, DIGEST_OK, 30), NULL), false,
                    NOW, 0);
    json_t *arr = services(g, T0, T0 + 60);
    assert_int_equal(json_array_size(arr), 4);
    json_t *web = svc(arr, "web", NULL), *client = svc(arr, "web", "client");
    assert_true(root(web));
    assert_false(root(client));
    assert_string_equal(state_of(client), "unknown");
    assert_null(json_object_get(client, "SummaryStatistics"));
    assert_null(json_object_get(client, "DurationHistogram"));
    assert_null(json_object_get(client, "ResponseTimeHistogram"));
    assert_true(json_number_value(json_object_get(client, "StartTime")) == T0);
    assert_int_equal(nedges(client), 1);
    stats(edge(client, web), 1, 1, 0, 0, 0.75);
    stats(web, 1, 1, 0, 0, 0.75);
    assert_int_equal(nedges(web), 0);
    json_t *batch = svc(arr, "batch", "AWS::Lambda");
    assert_true(root(batch));
    stats(edge(svc(arr, "batch", "client"), batch), 1, 0, 0, 0, 1.0);
    json_decref(arr);
    graph_destroy(g);
}

/* web calls api; api's segment arrives at `callee` ms, web's at `caller`. */
static const struct digest_doc *pair_at(uint64_t caller, uint64_t callee)
{
    struct digest_doc *web = doc(0xA1, 0, "web", "", 1, 1.5, DIGEST_OK, caller);
    call(web, 0xA2, "api", DIGEST_NS_REMOTE, true, "api", "remote", 1.0625, 1.4375, DIGEST_OK);
    struct digest_doc *api = doc(0xB1, 0xA2, "api", "", 1.125, 1.375, DIGEST_OK, callee);
    return caller <= callee ? chain(web, api, NULL) : chain(api, web, NULL);
}

static void test_graph_callee_late(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    graph_add_trace(g, pair_at(1000, 11001), false, NOW, 0); /* 10.001 s: past the window */
    graph_flush_pending(g, NOW);
    json_t *arr = services(g, T0, T0 + 60);
    assert_int_equal(json_array_size(arr), 4);
    json_t *web = svc(arr, "web", NULL);
    json_t *api = svc(arr, "api", NULL);
    json_t *inferred = svc(arr, "api", "remote");
    assert_string_equal(state_of(api), "active");
    assert_string_equal(state_of(inferred), "unknown");
    assert_int_equal(nedges(web), 1);
    assert_null(edge(web, api));
    stats(edge(web, inferred), 1, 0, 0, 0, 0.375);
    stats(inferred, 1, 0, 0, 0, 0.375);
    stats(api, 1, 0, 0, 0, 0.25);
    struct graph_stats st;
    graph_get_stats(g, &st);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.expired_callers, 1);
    assert_int_equal(st.paired, 0);
    assert_int_equal(st.expired_callees, 0);
    json_decref(arr);
    graph_destroy(g);

    /* Exactly the window apart still pairs. */
    reset_pool();
    g = mk(0, 0);
    graph_add_trace(g, pair_at(1000, 11000), false, NOW, 0);
    graph_get_stats(g, &st);
    assert_int_equal(st.paired, 1);
    assert_int_equal(st.late + st.expired_callers, 0);
    graph_destroy(g);
}

static void test_graph_caller_late(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    graph_add_trace(g, pair_at(11001, 1000), false, NOW, 0);
    json_t *arr = services(g, T0, T0 + 60);
    assert_int_equal(json_array_size(arr), 3); /* web, its client, api: no inferred node */
    assert_false(has_svc(arr, "api", "remote"));
    assert_int_equal(nedges(svc(arr, "web", NULL)), 0);
    struct graph_stats st;
    graph_get_stats(g, &st);
    assert_int_equal(st.expired_callees, 1);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.paired + st.expired_callers, 0);
    json_decref(arr);
    graph_destroy(g);
}

/* A callee whose caller is not in the trace: late when the trace is (its earlier part
 * was added before), expired otherwise. */
static void test_graph_late_trace(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    graph_add_trace(g, chain(doc(0xB1, 0xA2, "api", "", 1, 2, DIGEST_OK, 5), NULL), true, NOW, 0);
    graph_add_trace(g, chain(doc(0xB2, 0xA3, "api", "", 1, 2, DIGEST_OK, 6), NULL), true, NOW, 0);
    graph_add_trace(g, chain(doc(0xB3, 0xA4, "api", "", 1, 2, DIGEST_OK, 7), NULL), false, NOW, 0);
    struct graph_stats st;
    graph_get_stats(g, &st);
    assert_int_equal(st.late, 2);
    assert_int_equal(st.expired_callees, 1);
    assert_int_equal(st.nodes, 1);
    assert_int_equal(st.edges, 0);
    graph_destroy(g);
}

/* A service calling itself (same name and type) draws no loop, and its call, answered,
 * leads to no inferred node; a call of another type is another service. */
static void test_graph_same_service(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    struct digest_doc *a = doc(0xA1, 0, "api", "", 1, 2, DIGEST_OK, 1);
    call(a, 0xA2, "api", DIGEST_NS_REMOTE, true, "api", "remote", 1.25, 1.75, DIGEST_OK);
    struct digest_doc *b = doc(0xB1, 0xA2, "api", "", 1.25, 1.75, DIGEST_OK, 2);
    call(b, 0xB2, "api", DIGEST_NS_REMOTE, true, "api", "remote", 1.5, 1.625, DIGEST_OK);
    struct digest_doc *c = doc(0xC1, 0xB2, "api", "AWS::Lambda", 1.5, 1.625, DIGEST_OK, 3);
    graph_add_trace(g, chain(a, b, c, NULL), false, NOW, 0);
    json_t *arr = services(g, T0, T0 + 60);
    assert_int_equal(json_array_size(arr), 3); /* api, its client, api (AWS::Lambda) */
    json_t *api = svc(arr, "api", NULL);
    stats(api, 2, 0, 0, 0, 1.5);
    assert_int_equal(nedges(api), 1);
    stats(edge(api, svc(arr, "api", "AWS::Lambda")), 1, 0, 0, 0, 0.125);
    struct graph_stats st;
    graph_get_stats(g, &st);
    assert_int_equal(st.paired, 1);
    assert_int_equal(st.expired_callers + st.expired_callees + st.late, 0);
    json_decref(arr);
    graph_destroy(g);
}

/* web sends its subsegments on their own: X (under web's nested A2) calls api, Y
 * (under X) calls DynamoDB, W (under A2) is itself a traced call answered by auth; Z
 * hangs under an id nobody sent. */
static void test_graph_streamed_subsegments(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    struct digest_doc *web = doc(0xA1, 0, "web", "", 1, 3, DIGEST_OK, 100);
    web->ids[web->nids++] = 0xA2;
    struct digest_doc *x = sub(0x11, 0xA2, "handler", 101);
    call(x, 0x12, "api", DIGEST_NS_REMOTE, true, "api", "remote", 2, 2.5, DIGEST_OK);
    struct digest_doc *y = sub(0x21, 0x11, "storage", 102);
    call(y, 0x22, "DynamoDB", DIGEST_NS_AWS, false, "orders", "AWS::DynamoDB::Table", 2, 2.125,
         DIGEST_OK);
    struct digest_doc *w = sub(0x31, 0xA2, "auth", 103);
    call(w, 0x31, "auth", DIGEST_NS_REMOTE, true, "auth", "remote", 2, 2.25, DIGEST_ERROR);
    struct digest_doc *z = sub(0x41, 0xDEAD, "lost", 104);
    call(z, 0x42, "ghost.example.com", DIGEST_NS_REMOTE, false, "ghost.example.com", "remote", 2,
         2.5, DIGEST_OK);
    struct digest_doc *api = doc(0xB1, 0x12, "api", "", 2.0625, 2.4375, DIGEST_OK, 105);
    struct digest_doc *auth = doc(0xC1, 0x31, "auth", "", 2.0625, 2.125, DIGEST_OK, 106);
    graph_add_trace(g, chain(web, x, y, w, z, api, auth, NULL), false, NOW, 0);
    graph_flush_pending(g, NOW);

    json_t *arr = services(g, T0, T0 + 60);
    assert_int_equal(json_array_size(arr), 5); /* web, client, api, auth, orders */
    json_t *wj = svc(arr, "web", NULL);
    assert_int_equal(nedges(wj), 3);
    stats(edge(wj, svc(arr, "api", NULL)), 1, 0, 0, 0, 0.5);
    stats(edge(wj, svc(arr, "auth", NULL)), 0, 1, 0, 0, 0.25);
    stats(edge(wj, svc(arr, "orders", "AWS::DynamoDB::Table")), 1, 0, 0, 0, 0.125);
    assert_false(has_svc(arr, "ghost.example.com", "remote"));
    assert_false(has_svc(arr, "auth", "remote"));
    struct graph_stats st;
    graph_get_stats(g, &st);
    assert_int_equal(st.paired, 2);
    assert_int_equal(st.expired_callers, 1);
    assert_int_equal(st.unresolved, 1);
    assert_int_equal(st.expired_callees + st.late, 0);
    json_decref(arr);
    graph_destroy(g);
}

/* Statistics live per minute: a range sees only its minutes; retention drops the old
 * ones; a start outside the retention is filed under now. */
static void test_graph_minutes(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 5);
    struct graph_stats empty;
    graph_get_stats(g, &empty);
    graph_add_trace(g, chain(doc(0x1, 0, "web", "", 1, 1.5, DIGEST_OK, 1), NULL), false, NOW, 0);
    graph_add_trace(g, chain(doc(0x2, 0, "web", "", 121, 121.25, DIGEST_FAULT, 2), NULL), false,
                    T0 + 150, 0);
    json_t *arr = services(g, T0, T0 + 60);
    assert_int_equal(json_array_size(arr), 2);
    stats(svc(arr, "web", NULL), 1, 0, 0, 0, 0.5);
    json_decref(arr);
    arr = services(g, T0 + 120, T0 + 180);
    stats(svc(arr, "web", NULL), 0, 0, 0, 1, 0.25);
    json_decref(arr);
    arr = services(g, T0 + 60, T0 + 120);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    arr = services(g, T0 + 10, T0 + 150);
    json_t *web = svc(arr, "web", NULL);
    stats(web, 1, 0, 0, 1, 0.75);
    assert_true(json_number_value(json_object_get(web, "StartTime")) == T0 + 10);
    assert_true(json_number_value(json_object_get(web, "EndTime")) == T0 + 150);
    assert_int_equal(json_array_size(json_object_get(web, "DurationHistogram")), 2);
    json_decref(arr);

    /* An hour-old start (past the 5 minutes kept) counts under now's minute. */
    graph_add_trace(g, chain(doc(0x3, 0, "web", "", -3600, -3599, DIGEST_OK, 3), NULL), false,
                    T0 + 150, 0);
    arr = services(g, T0 + 120, T0 + 180);
    stats(svc(arr, "web", NULL), 1, 0, 0, 1, 1.25);
    json_decref(arr);

    /* At T0 + 7 min, minutes before T0 + 2 min are past the retention of 5. */
    graph_expire(g, T0 + 7 * 60 + 1);
    arr = services(g, T0, T0 + 600);
    stats(svc(arr, "web", NULL), 1, 0, 0, 1, 1.25);
    json_decref(arr);
    struct graph_stats st;
    graph_get_stats(g, &st);
    assert_int_equal(st.evicted_minutes, 0); /* expiry is not eviction */
    size_t before = st.bytes_used;
    graph_expire(g, T0 + 9 * 60);
    graph_get_stats(g, &st);
    assert_int_equal(st.nodes, 0);
    assert_int_equal(st.edges, 0);
    assert_true(st.bytes_used < before);
    assert_int_equal(st.bytes_used, empty.bytes_used); /* every byte charged was given back */
    arr = services(g, 0, T0 + 600);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    graph_destroy(g);
}

/* A root service with one remote call, under the names svc-i and dep-i. */
static const struct digest_doc *one_service(size_t i, double start, uint64_t arrived)
{
    reset_pool();
    struct tdoc *t =
        (struct tdoc *)doc(i + 1, 0, pool[0].name, "", start, start + 0.25, DIGEST_OK, arrived);
    snprintf(t->name, sizeof(t->name), "svc-%zu", i);
    snprintf(pool[1].name, sizeof(pool[1].name), "dep-%zu", i);
    call(&t->d, (i + 1) << 20, pool[1].name, DIGEST_NS_REMOTE, false, pool[1].name, "remote", start,
         start + 0.125, DIGEST_OK);
    t->d.next = NULL;
    return &t->d;
}

/* A small budget and many services over many minutes: the oldest minutes go, the
 * budget holds after every trace, the newest minute is whole. The calls wait for their
 * callee and expire at the tick, as in the daemon. All in one minute with no tick: the
 * budget refuses what does not fit, the ring expires its oldest early. */
static void test_graph_budget(void **state)
{
    (void)state;
    struct graph *g = mk(GRAPH_MIN_BYTES, 100000);
    struct graph_stats st;
    const size_t n = 2000, per_minute = 50;
    for (size_t i = 0; i < n; i++) {
        double start = 60.0 * (double)(i / per_minute) + 1;
        uint64_t now_ms = (uint64_t)(start * 1000) + i % per_minute;
        graph_tick(g, now_ms, T0 + start + 1);
        graph_add_trace(g, one_service(i, start, now_ms), false, T0 + start + 1, now_ms);
        graph_get_stats(g, &st);
        assert_true(st.bytes_used <= st.max_bytes);
    }
    assert_int_equal(st.pending, per_minute); /* the last minute's */
    assert_int_equal(st.expired_callers, n - per_minute);
    double last = T0 + 60.0 * (double)((n - 1) / per_minute);
    graph_flush_pending(g, last + 2);
    graph_get_stats(g, &st);
    assert_true(st.bytes_used <= st.max_bytes);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.expired_callers, n);
    assert_int_equal(st.expired_early, 0);
    assert_true(st.evicted_minutes > 0);
    assert_int_equal(st.dropped, 0);
    assert_true(st.nodes < 3 * per_minute * 10); /* evicted nodes were freed */
    json_t *arr = services(g, T0, T0 + 60);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    arr = services(g, last, last + 60);
    assert_int_equal(json_array_size(arr), 3 * per_minute);
    stats(svc(arr, "svc-1999", NULL), 1, 0, 0, 0, 0.25);
    stats(svc(arr, "dep-1999", "remote"), 1, 0, 0, 0, 0.125);
    json_decref(arr);
    graph_destroy(g);

    g = mk(GRAPH_MIN_BYTES, 0);
    for (size_t i = 0; i < n; i++) {
        graph_add_trace(g, one_service(i, 1, i), false, NOW, i);
        graph_get_stats(g, &st);
        assert_true(st.bytes_used <= st.max_bytes);
    }
    assert_true(st.dropped > 0);
    /* Each call waits, or went to its inferred node (refused: the budget is full of
     * this minute and of the nodes waiting calls hold). */
    assert_int_equal(st.pending + st.expired_callers, n);
    assert_int_equal(st.evicted_minutes, 0);
    graph_flush_pending(g, NOW);
    graph_get_stats(g, &st);
    assert_true(st.bytes_used <= st.max_bytes);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.expired_callers, n);
    arr = services(g, T0, T0 + 60);
    assert_true(json_array_size(arr) > 0);
    json_decref(arr);
    graph_destroy(g);
}

/* A chain of 300 services, each calling the next: 898 ids, more than the kept map
 * holds (512). With room in the budget a map for the trace is made and freed after
 * it; without, the ids past 512 are counted and what needed them goes unpaired. */
static void add_long_chain(struct graph *g)
{
    enum { N = 300 };
    struct digest_doc *d = calloc(N, sizeof(*d));
    struct digest_call *c = calloc(N, sizeof(*c));
    uint64_t *ids = calloc(N, sizeof(*ids));
    char(*names)[16] = calloc(N, sizeof(*names));
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "s%zu", i);
        d[i] = (struct digest_doc){.next = i + 1 < N ? &d[i + 1] : NULL,
                                   .arrived_ms = i,
                                   .id = 0x1000 + i,
                                   .parent_id = i ? 0x2000 + i - 1 : 0,
                                   .start = T0 + 1,
                                   .end = T0 + 2,
                                   .name = names[i],
                                   .origin = "",
                                   .calls = &c[i],
                                   .ids = &ids[i]};
        if (i + 1 < N) {
            c[i] = (struct digest_call){.id = 0x2000 + i,
                                        .start = T0 + 1,
                                        .end = T0 + 1.5,
                                        .traced = true,
                                        .ns = DIGEST_NS_REMOTE,
                                        .name = names[i + 1],
                                        .resource = names[i + 1],
                                        .resource_type = "remote"};
            ids[i] = c[i].id;
            d[i].ncalls = d[i].nids = 1;
        }
    }
    graph_add_trace(g, d, false, NOW, 0);
    free(d);
    free(c);
    free(ids);
    free(names);
}

static void test_graph_large_trace(void **state)
{
    (void)state;
    struct graph *g = mk(64u << 20, 0);
    struct graph_stats st;
    add_long_chain(g);
    graph_get_stats(g, &st);
    assert_int_equal(st.paired, 299);
    assert_int_equal(st.expired_callers + st.expired_callees + st.late, 0);
    assert_int_equal(graph_ids_overflow(g), 0);
    assert_int_equal(st.nodes, 301); /* 300 services and the root's client */
    assert_int_equal(st.edges, 300);
    graph_expire(g, NOW + 24 * 3600);
    graph_get_stats(g, &st);
    assert_int_equal(st.nodes, 0);
    assert_int_equal(st.edges, 0);
    graph_destroy(g);

    g = mk(GRAPH_MIN_BYTES, 0);
    add_long_chain(g);
    graph_flush_pending(g, NOW);
    graph_get_stats(g, &st);
    assert_int_equal(graph_ids_overflow(g), 130); /* 87 plain ids, then 43 calls */
    assert_int_equal(st.paired, 256);
    assert_int_equal(st.expired_callees, 43);
    assert_int_equal(st.expired_callers, 43);
    assert_true(st.bytes_used <= st.max_bytes);
    graph_destroy(g);
}

/* Pages of 7 over 50 nodes give each exactly once; a cap too small is -ENOSPC. */
static void test_graph_pagination(void **state)
{
    (void)state;
    struct graph *g = mk(0, 0);
    for (size_t i = 0; i < 25; i++) {
        reset_pool();
        struct digest_doc *d = doc(i + 1, 0, pool[0].name, "", 1, 2, DIGEST_OK, i);
        snprintf(pool[0].name, sizeof(pool[0].name), "svc-%02zu", i);
        graph_add_trace(g, chain(d, NULL), false, NOW, 0);
    }
    int seen[25][2] = {{0}};
    size_t first = 0, pages = 0, total = 0;
    do {
        struct buf b;
        buf_init(&b, 1 << 20);
        size_t next = 99;
        assert_int_equal(buf_append_str(&b, "{"), 0);
        assert_int_equal(graph_write_services(g, T0, T0 + 60, first, 7, &b, &next), 0);
        assert_int_equal(buf_append_str(&b, "}"), 0);
        json_t *root = json_loads(b.data, 0, NULL);
        assert_non_null(root);
        json_t *arr = json_object_get(root, "Services");
        assert_int_equal(json_array_size(arr), pages < 7 ? 7 : 1);
        assert_int_equal(next, pages < 7 ? first + 7 : 0);
        size_t i;
        json_t *s;
        json_array_foreach(arr, i, s)
        {
            unsigned k;
            assert_int_equal(sscanf(json_string_value(json_object_get(s, "Name")), "svc-%u", &k),
                             1);
            assert_true(k < 25);
            seen[k][json_is_string(json_object_get(s, "Type")) ? 1 : 0]++;
            total++;
        }
        json_decref(root);
        buf_free(&b);
        first = next;
        pages++;
    } while (first != 0);
    assert_int_equal(pages, 8);
    assert_int_equal(total, 50);
    for (size_t k = 0; k < 25; k++)
        assert_true(seen[k][0] == 1 && seen[k][1] == 1);

    struct buf b;
    buf_init(&b, 100);
    size_t next;
    assert_int_equal(graph_write_services(g, T0, T0 + 60, 0, 100, &b, &next), -ENOSPC);
    buf_free(&b);
    graph_destroy(g);
}

/* ---- calls waiting for a callee in a later trace ---- */

/* A trace of web alone (root, segment id, arrived at `arrived`) whose call (call_id)
 * to the instrumented api nobody in the trace answers. */
static const struct digest_doc *caller_at(uint64_t id, uint64_t call_id, uint64_t arrived, bool sql)
{
    struct digest_doc *web = doc(id, 0, "web", "", 1, 1.5, DIGEST_OK, arrived);
    call(web, call_id, "api", DIGEST_NS_REMOTE, true, "api", "remote", 1.0625, 1.4375, DIGEST_OK)
        ->sql = sql;
    return chain(web, NULL);
}

/* A later trace: api's segment (id), called through parent. */
static const struct digest_doc *callee_at(uint64_t id, uint64_t parent, uint64_t arrived)
{
    return chain(doc(id, parent, "api", "", 1.125, 1.375, DIGEST_OK, arrived), NULL);
}

static struct graph_stats get(const struct graph *g)
{
    struct graph_stats st;
    graph_get_stats(g, &st);
    assert_true(st.bytes_used <= st.max_bytes);
    return st;
}

/* The root completes first; api's segment comes 4 s later, in a late trace: one edge
 * web -> api with the call's statistics, and no inferred node, then or ever. */
static void test_graph_pending_pairs(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    graph_add_trace(g, caller_at(0xA1, 0xA2, 1000, false), false, NOW, 1000);
    struct graph_stats st = get(g);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.nodes, 3); /* web, its client, and api (remote) held for the call */
    assert_int_equal(st.edges, 1);
    assert_int_equal(st.paired + st.expired_callers + st.late + st.expired_callees, 0);
    json_t *arr = services(g, T0, T0 + 60);
    assert_int_equal(json_array_size(arr), 2); /* the held node has no statistics */
    json_decref(arr);

    graph_add_trace(g, callee_at(0xB1, 0xA2, 5000), true, NOW, 5000);
    st = get(g);
    assert_int_equal(st.paired, 1);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.late + st.expired_callers + st.expired_callees, 0);
    assert_int_equal(st.nodes, 3); /* the inferred node it would have led to is gone */
    assert_int_equal(st.edges, 2);
    arr = services(g, T0, T0 + 60);
    assert_int_equal(json_array_size(arr), 3);
    assert_false(has_svc(arr, "api", "remote"));
    json_t *web = svc(arr, "web", NULL), *api = svc(arr, "api", NULL);
    assert_int_equal(nedges(web), 1);
    stats(edge(web, api), 1, 0, 0, 0, 0.375); /* the call's view */
    stats(api, 1, 0, 0, 0, 0.25);             /* api's own */
    json_decref(arr);
    assert_int_equal(graph_edge_conn(g, "web", "", "api", ""), GRAPH_CONN_SERVICE);

    /* Nothing is left to expire. */
    graph_tick(g, 1000000, NOW);
    graph_flush_pending(g, NOW);
    st = get(g);
    assert_int_equal(st.expired_callers, 0);
    assert_int_equal(st.edges, 2);

    /* An sql call makes a database edge; a callee of the caller's own service (same name
     * and type) answers the call but draws no loop and counts no pair. */
    graph_add_trace(g, caller_at(0xC1, 0xC2, 6000, true), false, NOW, 6000);
    graph_add_trace(g, callee_at(0xD1, 0xC2, 6500), true, NOW, 6500);
    assert_int_equal(graph_edge_conn(g, "web", "", "api", ""), GRAPH_CONN_DATABASE);
    graph_add_trace(g, caller_at(0xE1, 0xE2, 7000, false), false, NOW, 7000);
    graph_add_trace(g, chain(doc(0xF1, 0xE2, "web", "", 1.125, 1.375, DIGEST_OK, 7500), NULL), true,
                    NOW, 7500);
    graph_flush_pending(g, NOW);
    st = get(g);
    assert_int_equal(st.paired, 2);
    assert_int_equal(st.expired_callers + st.late + st.expired_callees, 0);
    assert_int_equal(st.edges, 2);
    arr = services(g, T0, T0 + 60);
    web = svc(arr, "web", NULL);
    assert_int_equal(nedges(web), 1);
    stats(edge(web, svc(arr, "api", NULL)), 2, 0, 0, 0, 0.75);
    stats(web, 4, 0, 0, 0, 1.75); /* three callers and the callee of its own */
    json_decref(arr);
    graph_destroy(g);
}

/* The callee 10.001 s after the caller: late, and the call waits on until the tick
 * two windows after its arrival (room for a late callee's trace to be closed) leads it
 * to its inferred node. Exactly 10 s apart still pairs. */
static void test_graph_pending_window(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    graph_add_trace(g, caller_at(0xA1, 0xA2, 1000, false), false, NOW, 1000);
    graph_add_trace(g, callee_at(0xB1, 0xA2, 11001), true, NOW, 11001);
    struct graph_stats st = get(g);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.paired + st.expired_callers, 0);
    graph_tick(g, 20999, NOW);
    st = get(g);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.expired_callers, 0);
    graph_tick(g, 21000, NOW);
    st = get(g);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.expired_callers, 1);
    assert_int_equal(st.expired_early, 0);
    json_t *arr = services(g, T0, T0 + 60);
    assert_int_equal(json_array_size(arr), 4); /* web, client, api, api (remote) */
    json_t *web = svc(arr, "web", NULL), *inferred = svc(arr, "api", "remote");
    assert_int_equal(nedges(web), 1);
    assert_null(edge(web, svc(arr, "api", NULL)));
    stats(edge(web, inferred), 1, 0, 0, 0, 0.375);
    stats(inferred, 1, 0, 0, 0, 0.375);
    assert_string_equal(state_of(inferred), "unknown");
    json_decref(arr);
    assert_int_equal(graph_edge_conn(g, "web", "", "api", "remote"), GRAPH_CONN_VIRTUAL_NODE);
    graph_destroy(g);

    reset_pool();
    g = mk(0, 0);
    graph_add_trace(g, caller_at(0xA1, 0xA2, 1000, false), false, NOW, 1000);
    graph_add_trace(g, callee_at(0xB1, 0xA2, 11000), true, NOW, 11000);
    st = get(g);
    assert_int_equal(st.paired, 1);
    assert_int_equal(st.late + st.pending + st.expired_callers, 0);
    graph_destroy(g);

    /* A trace completed once its calls' windows are over: they do not wait. */
    reset_pool();
    g = mk(0, 0);
    graph_add_trace(g, caller_at(0xA1, 0xA2, 1000, false), false, NOW, 10999);
    st = get(g);
    assert_int_equal(st.pending, 1);
    graph_add_trace(g, caller_at(0xC1, 0xC2, 1000, false), false, NOW, 11000);
    st = get(g);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.expired_callers, 1);
    graph_destroy(g);
}

/* Once a call has paired, a second segment naming it finds nothing: late in a late
 * trace, an expired callee otherwise; the call never makes a second edge. */
static void test_graph_pending_consumed(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    graph_add_trace(g, caller_at(0xA1, 0xA2, 1000, false), false, NOW, 1000);
    graph_add_trace(g, callee_at(0xB1, 0xA2, 2000), true, NOW, 2000);
    graph_add_trace(g, callee_at(0xB2, 0xA2, 3000), true, NOW, 3000);
    graph_add_trace(g, callee_at(0xB3, 0xA2, 4000), false, NOW, 4000);
    graph_tick(g, 100000, NOW);
    graph_flush_pending(g, NOW);
    struct graph_stats st = get(g);
    assert_int_equal(st.paired, 1);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.expired_callees, 1);
    assert_int_equal(st.expired_callers, 0);
    assert_int_equal(st.edges, 2);
    json_t *arr = services(g, T0, T0 + 60);
    assert_int_equal(json_array_size(arr), 3);
    stats(edge(svc(arr, "web", NULL), svc(arr, "api", NULL)), 1, 0, 0, 0, 0.375);
    stats(svc(arr, "api", NULL), 3, 0, 0, 0, 0.75);
    json_decref(arr);
    graph_destroy(g);
}

/* The flush sends every waiting call to its inferred node, with its connection type. */
static void test_graph_pending_flush(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 0);
    struct digest_doc *d = doc(0xA1, 0, "api", "", 1, 2, DIGEST_OK, 1000);
    call(d, 0xA2, "DynamoDB", DIGEST_NS_AWS, false, "users", "AWS::DynamoDB::Table", 1, 1.125,
         DIGEST_OK);
    call(d, 0xA3, "SQS", DIGEST_NS_AWS, false, "jobs", "AWS::SQS::Queue", 1, 1.25, DIGEST_FAULT);
    call(d, 0xA4, "pg", DIGEST_NS_REMOTE, false, "pg.internal", "remote", 1, 1.5, DIGEST_OK)->sql =
        true;
    graph_add_trace(g, chain(d, NULL), false, NOW, 1000);
    struct graph_stats st = get(g);
    assert_int_equal(st.pending, 3);
    graph_flush_pending(g, NOW);
    st = get(g);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.expired_callers, 3);
    assert_int_equal(st.expired_early, 0);
    assert_int_equal(st.edges, 4);
    assert_int_equal(graph_edge_conn(g, "api", "", "users", "AWS::DynamoDB::Table"),
                     GRAPH_CONN_VIRTUAL_NODE);
    assert_int_equal(graph_edge_conn(g, "api", "", "jobs", "AWS::SQS::Queue"),
                     GRAPH_CONN_MESSAGING);
    assert_int_equal(graph_edge_conn(g, "api", "", "pg.internal", "remote"), GRAPH_CONN_DATABASE);
    json_t *arr = services(g, T0, T0 + 60);
    json_t *api = svc(arr, "api", NULL);
    stats(edge(api, svc(arr, "jobs", "AWS::SQS::Queue")), 0, 0, 0, 1, 0.25);
    stats(svc(arr, "users", "AWS::DynamoDB::Table"), 1, 0, 0, 0, 0.125);
    stats(edge(api, svc(arr, "pg.internal", "remote")), 1, 0, 0, 0, 0.5);
    json_decref(arr);
    /* Flushing nothing changes nothing. */
    graph_flush_pending(g, NOW);
    assert_int_equal(get(g).expired_callers, 3);
    graph_destroy(g);
}

/* The ring of the smallest graph holds 1024 calls (a quarter of 256 KiB: 1024 halves of
 * 48 bytes and an index of 4096 slots): the 1029th expires the five oldest early, whose
 * callees then find nothing, while the sixth still pairs. */
static void test_graph_pending_ring_full(void **state)
{
    (void)state;
    struct graph *g = mk(GRAPH_MIN_BYTES, 0);
    const uint64_t cap = 1024, n = cap + 5;
    for (uint64_t i = 0; i < n; i++) {
        reset_pool();
        graph_add_trace(g, caller_at(i + 1, (i + 1) << 20, 1000 + i, false), false, NOW, 1000 + i);
        assert_int_equal(get(g).pending, i < cap ? i + 1 : cap);
    }
    struct graph_stats st = get(g);
    assert_int_equal(st.expired_early, 5);
    assert_int_equal(st.expired_callers, 5);
    assert_int_equal(st.unindexed, 0);
    reset_pool();
    graph_add_trace(g, callee_at(0xB1, 1u << 20, 2100), true, NOW, 2100); /* the oldest */
    graph_add_trace(g, callee_at(0xB2, 6u << 20, 2101), true, NOW, 2101); /* the sixth */
    graph_add_trace(g, callee_at(0xB3, n << 20, 2102), false, NOW, 2102); /* the newest */
    st = get(g);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.paired, 2);
    assert_int_equal(st.pending, cap - 2);
    graph_flush_pending(g, NOW);
    st = get(g);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.expired_callers, n - 2);
    assert_int_equal(st.expired_early, 5);
    json_t *arr = services(g, T0, T0 + 60);
    json_t *web = svc(arr, "web", NULL);
    stats(edge(web, svc(arr, "api", "remote")), n - 2, 0, 0, 0, 0.375 * (double)(n - 2));
    stats(edge(web, svc(arr, "api", NULL)), 2, 0, 0, 0, 0.75);
    json_decref(arr);
    graph_destroy(g);
}

/* A call filed under a minute the retention has passed by the time it expires counts
 * under the expiry's minute, as a late start does. */
static void test_graph_pending_retention(void **state)
{
    (void)state;
    reset_pool();
    struct graph *g = mk(0, 5);
    graph_add_trace(g, caller_at(0xA1, 0xA2, 1000, false), false, NOW, 1000);
    graph_tick(g, 21000, T0 + 600);
    json_t *arr = services(g, T0 + 600, T0 + 660);
    stats(svc(arr, "api", "remote"), 1, 0, 0, 0, 0.375);
    json_decref(arr);
    arr = services(g, T0, T0 + 60);
    assert_false(has_svc(arr, "api", "remote"));
    json_decref(arr);
    graph_destroy(g);
}

int main(void)
{
    // clang-format off
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_chain),
        cmocka_unit_test(test_graph_fault_in_the_middle),
        cmocka_unit_test(test_graph_throttle),
        cmocka_unit_test(test_graph_client_node),
        cmocka_unit_test(test_graph_callee_late),
        cmocka_unit_test(test_graph_caller_late),
        cmocka_unit_test(test_graph_late_trace),
        cmocka_unit_test(test_graph_same_service),
        cmocka_unit_test(test_graph_streamed_subsegments),
        cmocka_unit_test(test_graph_minutes),
        cmocka_unit_test(test_graph_budget),
        cmocka_unit_test(test_graph_large_trace),
        cmocka_unit_test(test_graph_pagination),
        cmocka_unit_test(test_graph_pending_pairs),
        cmocka_unit_test(test_graph_pending_window),
        cmocka_unit_test(test_graph_pending_consumed),
        cmocka_unit_test(test_graph_pending_flush),
        cmocka_unit_test(test_graph_pending_ring_full),
        cmocka_unit_test(test_graph_pending_retention),
    };
    // clang-format on
    return cmocka_run_group_tests(tests, NULL, NULL);
}
