/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzer for api/read_query.c: arbitrary request bodies for each of the four queries
 * against a small fixed graph and store. The first byte picks the query, the page size
 * and whether the answer has a small cap (pages cut short); the rest is the body. Every
 * answer must be whole JSON, and an error must be X-Ray's error shape. A violation
 * aborts. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/read_query.h"
#include "graph/graph.h"
#include "segment/scan.h"
#include "trace/digest.h"
#include "trace/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_T1 "1-6553f100-aaaaaaaaaaaaaaaaaaaaaaaa"
#define FZ_T2 "1-6553f100-bbbbbbbbbbbbbbbbbbbbbbbb"

static const char *const fz_docs[][2] = {
    {FZ_T1, "{\"trace_id\":\"" FZ_T1 "\",\"id\":\"a000000000000001\",\"name\":\"web\","
            "\"origin\":\"AWS::EC2::Instance\",\"start_time\":1699999940.0,"
            "\"end_time\":1699999940.5,\"http\":{\"response\":{\"status\":200}},"
            "\"annotations\":{\"k\":\"v\"},\"subsegments\":[{\"id\":\"a000000000000002\","
            "\"name\":\"api\",\"namespace\":\"remote\",\"start_time\":1699999940.1,"
            "\"end_time\":1699999940.4,\"http\":{\"request\":{\"traced\":true}}}]}"},
    {FZ_T1, "{\"trace_id\":\"" FZ_T1 "\",\"id\":\"b000000000000001\","
            "\"parent_id\":\"a000000000000002\",\"name\":\"api\",\"start_time\":1699999940.15,"
            "\"end_time\":1699999940.35,\"subsegments\":[{\"id\":\"b000000000000002\","
            "\"name\":\"DynamoDB\",\"namespace\":\"aws\",\"start_time\":1699999940.2,"
            "\"end_time\":1699999940.3,\"aws\":{\"table_name\":\"users\"}}]}"},
    {FZ_T2, "{\"trace_id\":\"" FZ_T2 "\",\"id\":\"c000000000000001\",\"name\":\"batch\","
            "\"start_time\":1699999950.0,\"end_time\":1699999952.0,\"fault\":true}"},
    {FZ_T2, "{\"trace_id\":\"" FZ_T2 "\",\"id\":\"c000000000000002\",\"name\":\"batch\","
            "\"start_time\":1699999951.0,\"in_progress\":true}"},
};

static struct graph *fz_graph;
static struct store *fz_store;

static void fz_fail(const char *what, const uint8_t *data, size_t size, const struct buf *out)
{
    fprintf(stderr, "fuzz_read_query: %s\ninput: %.*s\nanswer: %.*s\n", what,
            (int)(size < 2000 ? size : 2000), (const char *)data,
            (int)(out->len < 2000 ? out->len : 2000), out->data ? out->data : "");
    abort();
}

static void fz_init(void)
{
    static struct segment_view v;
    struct graph_options go = {.max_bytes = 1u << 20, .retention_min = 120};
    fz_graph = graph_create(&go);
    fz_store = store_create(1u << 20);
    if (fz_graph == NULL || fz_store == NULL)
        abort();
    for (size_t t = 0; t < 2; t++) {
        struct digest_doc *head = NULL, **tail = &head;
        for (size_t i = 0; i < sizeof(fz_docs) / sizeof(fz_docs[0]); i++) {
            if (strcmp(fz_docs[i][0], t == 0 ? FZ_T1 : FZ_T2) != 0)
                continue;
            const char *doc = fz_docs[i][1];
            if (scan_document(doc, strlen(doc), &v) != 0 ||
                store_add(fz_store, fz_docs[i][0], &v, doc, strlen(doc), i) != 0)
                abort();
            if (v.seg.in_progress)
                continue;
            struct digest_doc *d = digest_build(&v, i);
            if (d == NULL)
                abort();
            d->next = NULL;
            *tail = d;
            tail = &d->next;
        }
        graph_add_trace(fz_graph, head, false, 1700000000.0, 0);
        graph_flush_pending(fz_graph, 1700000000.0);
        while (head != NULL) {
            struct digest_doc *next = head->next;
            free(head);
            head = next;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fz_graph == NULL)
        fz_init();
    if (size == 0)
        return 0;
    uint8_t pick = data[0];
    struct read_query_ctx c = {
        .graph = (pick & 0x20) ? NULL : fz_graph,
        .store = (pick & 0x40) ? NULL : fz_store,
        .now_s = 1700000000.0,
        .page_limit = (pick >> 2) & 3,
    };
    struct buf out;
    buf_init(&out, (pick & 0x10) ? 2600 : READ_QUERY_MAX_BYTES);
    int status = read_query_run(&c, (enum read_query_kind)(pick & 3), (const char *)data + 1,
                                size - 1, &out);
    if (status != 200 && status != 400 && status != 404 && status != 500)
        fz_fail("unexpected status", data, size, &out);
    if (out.len > out.max)
        fz_fail("answer over its cap", data, size, &out);
    json_error_t je;
    json_t *j = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j))
        fz_fail("answer is not a JSON object", data, size, &out);
    json_t *type = json_object_get(j, "__type");
    if (status != 200 &&
        (!json_is_string(type) || strcmp(json_string_value(type), read_query_error_type(status)) ||
         !json_is_string(json_object_get(j, "message")) || json_object_size(j) != 2))
        fz_fail("error answer not in X-Ray's shape", data, size, &out);
    if (status == 200 && type != NULL)
        fz_fail("200 with __type", data, size, &out);
    json_decref(j);
    buf_free(&out);
    return 0;
}
