/* SPDX-License-Identifier: Apache-2.0 */
/* The read API's four queries, run on the worker: parse a request body with jansson,
 * check it as X-Ray does, ask the graph or the store, and write the whole answer. It
 * does not route or send (read_api.c) and does not serialize services or summaries
 * itself (graph.c and store.c write their own arrays). Invariant: out holds either a
 * complete JSON answer or an error body, never JSON cut short: a page that would pass
 * out's maximum is written again with half as many items. */
#include "api/read_query.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/read_query_time.h"
#include "error.h"
#include "graph/graph.h"
#include "segment/scan.h"
#include "trace/digest.h"
#include "trace/filter.h"
#include "trace/store.h"

/* Room kept after a page for what closes the answer: the NextToken and counters, or
 * BatchGetTraces' five unprocessed ids escaped at worst (6 bytes a byte). */
#define READ_QUERY_TAIL_BYTES 2048
#define READ_QUERY_TIME_MAX   1e11 /* seconds: year 5138; anything later is not a time */

typedef int (*read_query_page_fn)(void *arg, size_t limit, struct buf *out, uint64_t *next);

const char *read_query_error_type(int status)
{
    switch (status) {
    case 400:
        return "InvalidRequestException";
    case 404:
        return "ResourceNotFoundException";
    case 429:
        return "ThrottledException";
    case 503:
        return "ServiceUnavailableException";
    default:
        return "InternalFailure";
    }
}

int read_query_error(struct buf *out, int status, const char *msg)
{
    buf_reset(out);
    int rc = buf_appendf(out, "{\"__type\":\"%s\",\"message\":", read_query_error_type(status));
    if (rc == 0)
        rc = buf_append_json_string(out, msg, strlen(msg));
    if (rc == 0)
        rc = buf_append_str(out, "}");
    if (rc != 0)
        buf_reset(out);
    return status;
}

/* The status for a failure to write an answer that was valid to ask. */
static int read_query_failed(struct buf *out, int rc)
{
    if (rc == -ENOMEM)
        return read_query_error(out, 500, "Out of memory");
    return read_query_error(out, 500, "The answer does not fit in the response size limit");
}

/* Seconds as a JSON number: microsecond precision, no trailing zeros ("0.5", "2"). */
static void read_query_seconds(double s, char out[40])
{
    if (!(s > 0) || s > 1e12) {
        strcpy(out, "0");
        return;
    }
    int n = snprintf(out, 40, "%.6f", s);
    while (n > 1 && out[n - 1] == '0')
        out[--n] = '\0';
    if (out[n - 1] == '.')
        out[n - 1] = '\0';
}

/* A member that is present and not null (botocore never sends null; others may). */
static json_t *read_query_member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

/* A timestamp member: a JSON number (what botocore sends), or text. 0 or -1. */
static int read_query_time(const json_t *v, double *out)
{
    double t;
    if (json_is_number(v))
        t = json_number_value(v);
    else if (!json_is_string(v) ||
             read_query_time_parse(json_string_value(v), json_string_length(v), &t) != 0)
        return -1;
    if (!(t >= 0 && t <= READ_QUERY_TIME_MAX))
        return -1;
    *out = t;
    return 0;
}

/* StartTime and EndTime, both required. NULL, or what is wrong. */
static const char *read_query_range(json_t *root, double *start, double *end)
{
    json_t *s = read_query_member(root, "StartTime"), *e = read_query_member(root, "EndTime");
    if (s == NULL || e == NULL)
        return "StartTime and EndTime are required";
    if (read_query_time(s, start) != 0 || read_query_time(e, end) != 0)
        return "StartTime and EndTime must be timestamps: epoch seconds or ISO-8601";
    if (*end < *start)
        return "EndTime must not be before StartTime";
    return NULL;
}

/* ---- NextToken: "<prefix><decimal position>", opaque to clients ---- */

/* Reads the optional NextToken into *pos (0: the first page). 0, or -1 when invalid. */
static int read_query_token(json_t *root, const char *prefix, uint64_t *pos)
{
    json_t *t = read_query_member(root, "NextToken");
    *pos = 0;
    if (t == NULL)
        return 0;
    if (!json_is_string(t))
        return -1;
    const char *s = json_string_value(t);
    size_t len = json_string_length(t), plen = strlen(prefix);
    if (len == 0)
        return 0; /* some clients send "" for no token */
    if (len <= plen || len > plen + 20 || memcmp(s, prefix, plen) != 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = plen; i < len; i++) {
        unsigned dgt = (unsigned)(s[i] - '0');
        if (dgt > 9 || v > (UINT64_MAX - dgt) / 10)
            return -1;
        v = v * 10 + dgt;
    }
    if (v == 0)
        return -1;
    *pos = v;
    return 0;
}

static int read_query_append_token(struct buf *out, const char *prefix, uint64_t next)
{
    if (next == 0)
        return 0;
    return buf_appendf(out, ",\"NextToken\":\"%s%llu\"", prefix, (unsigned long long)next);
}

/* Writes one page through fn, keeping READ_QUERY_TAIL_BYTES free under out's maximum;
 * when it does not fit, again with half the items, down to one. On failure out is as
 * it was. */
static int read_query_page(struct buf *out, read_query_page_fn fn, void *arg, size_t limit,
                           uint64_t *next)
{
    size_t mark = out->len, max = out->max;
    if (max < READ_QUERY_TAIL_BYTES || mark >= max - READ_QUERY_TAIL_BYTES)
        return XRAY_ETOOBIG;
    out->max = max - READ_QUERY_TAIL_BYTES;
    int rc;
    while ((rc = fn(arg, limit, out, next)) == -ENOSPC || rc == XRAY_ETOOBIG) {
        out->len = mark;
        if (limit == 1)
            break;
        limit /= 2;
    }
    out->max = max;
    if (rc != 0)
        out->len = mark;
    return rc;
}

static size_t read_query_limit(const struct read_query_ctx *c)
{
    return c->page_limit > 0 ? c->page_limit : READ_QUERY_PAGE;
}

/* A list of 1 to max trace ids, each a string of 1 to 35 characters. NULL, or what is
 * wrong (too_many when there are more than max). */
static const char *read_query_ids(json_t *root, size_t max, const char *too_many, json_t **ids)
{
    *ids = json_object_get(root, "TraceIds");
    size_t n = json_array_size(*ids);
    if (!json_is_array(*ids))
        return "TraceIds is required and must be a list of strings";
    if (n == 0)
        return "TraceIds must contain at least 1 item";
    if (n > max)
        return too_many;
    for (size_t i = 0; i < n; i++) {
        json_t *id = json_array_get(*ids, i);
        size_t len = json_string_length(id);
        if (!json_is_string(id) || len == 0 || len > STORE_TRACE_ID_MAX ||
            strlen(json_string_value(id)) != len)
            return "Each of TraceIds must be a string of 1 to 35 characters";
    }
    return NULL;
}

/* True when ids[i] appeared before i: it is answered once. */
static bool read_query_seen(json_t *ids, size_t i)
{
    const char *id = json_string_value(json_array_get(ids, i));
    for (size_t j = 0; j < i; j++)
        if (strcmp(id, json_string_value(json_array_get(ids, j))) == 0)
            return true;
    return false;
}

/* ---- GetServiceGraph and GetTraceGraph ---- */

struct read_query_services {
    const struct graph *graph;
    double start_s, end_s;
    uint64_t first;
};

static int read_query_services_page(void *arg, size_t limit, struct buf *out, uint64_t *next)
{
    const struct read_query_services *q = arg;
    size_t n = 0;
    int rc = graph_write_services(q->graph, q->start_s, q->end_s, (size_t)q->first, limit, out, &n);
    *next = n;
    return rc;
}

/* X-Ray's groups are filter expressions kept in the account; xrayd has only the
 * Default group, which is everything. */
static const char *read_query_group(json_t *root)
{
    json_t *name = read_query_member(root, "GroupName");
    json_t *arn = read_query_member(root, "GroupARN");
    if ((name != NULL && !json_is_string(name)) || (arn != NULL && !json_is_string(arn)))
        return "GroupName and GroupARN must be strings";
    const char *a = json_string_value(arn);
    size_t alen = json_string_length(arn);
    if ((name != NULL && strcmp(json_string_value(name), "Default") != 0) ||
        (arn != NULL && (alen < 8 || strcmp(a + alen - 8, "/Default") != 0)))
        return "Group not found: xrayd has only the Default group";
    return NULL;
}

static int read_query_service_graph(const struct read_query_ctx *c, json_t *root, struct buf *out)
{
    struct read_query_services q = {.graph = c->graph};
    const char *msg = read_query_range(root, &q.start_s, &q.end_s);
    if (msg == NULL)
        msg = read_query_group(root);
    if (msg == NULL && read_query_token(root, "sg1.", &q.first) != 0)
        msg = "Invalid NextToken";
    if (msg != NULL)
        return read_query_error(out, 400, msg);
    if (c->graph == NULL)
        return read_query_error(out, 404,
                                "The service graph is off in this xrayd "
                                "(it needs trace assembly)");
    char start[40], end[40];
    read_query_seconds(q.start_s, start);
    read_query_seconds(q.end_s, end);
    uint64_t next = 0;
    int rc = buf_appendf(out, "{\"StartTime\":%s,\"EndTime\":%s,", start, end);
    if (rc == 0)
        rc = read_query_page(out, read_query_services_page, &q, read_query_limit(c), &next);
    if (rc == 0)
        rc = buf_append_str(out, ",\"ContainsOldGroupVersions\":false");
    if (rc == 0)
        rc = read_query_append_token(out, "sg1.", next);
    if (rc == 0)
        rc = buf_append_str(out, "}");
    return rc == 0 ? 200 : read_query_failed(out, rc);
}

/* Adds trace id's complete documents to g as one trace. 0 or -ENOMEM. */
static int read_query_add_trace(const struct read_query_ctx *c, struct graph *g,
                                struct segment_view *view, const char *id)
{
    struct store_iter it;
    struct store_doc_view v;
    if (store_find(c->store, id, &it) != 0)
        return 0; /* X-Ray leaves unknown ids out of the graph */
    struct digest_doc *head = NULL, **tail = &head;
    uint64_t arrived = 0;
    int rc = 0;
    while (store_next(&it, &v)) {
        /* In-progress documents do not count until complete (service-graph.md). */
        if (v.in_progress || scan_document(v.doc, v.len, view) != 0 || view->seg.in_progress)
            continue;
        struct digest_doc *d = digest_build(view, arrived++);
        if (d == NULL) {
            rc = -ENOMEM;
            break;
        }
        d->next = NULL;
        *tail = d;
        tail = &d->next;
    }
    if (rc == 0 && head != NULL)
        graph_add_trace(g, head, false, c->now_s, 0);
    while (head != NULL) {
        struct digest_doc *next = head->next;
        free(head);
        head = next;
    }
    return rc;
}

/* The graph of just those traces, built for this request and dropped after it: a
 * window no two of its documents can be apart, so every caller finds its callee. */
static struct graph *read_query_trace_graph_build(const struct read_query_ctx *c, json_t *ids,
                                                  int *rc)
{
    struct graph_options o = {.max_bytes = READ_QUERY_GRAPH_BYTES, .window_ms = UINT64_MAX / 2};
    struct graph *g = graph_create(&o);
    struct segment_view *view = malloc(sizeof(*view));
    *rc = g != NULL && view != NULL ? 0 : -ENOMEM;
    for (size_t i = 0; *rc == 0 && i < json_array_size(ids); i++)
        if (!read_query_seen(ids, i))
            *rc = read_query_add_trace(c, g, view, json_string_value(json_array_get(ids, i)));
    if (*rc == 0)
        graph_flush_pending(g, c->now_s);
    free(view);
    if (*rc != 0) {
        graph_destroy(g);
        return NULL;
    }
    return g;
}

static int read_query_trace_graph(const struct read_query_ctx *c, json_t *root, struct buf *out)
{
    json_t *ids;
    struct read_query_services q = {.start_s = 0, .end_s = READ_QUERY_TIME_MAX};
    const char *msg =
        read_query_ids(root, READ_QUERY_GRAPH_IDS_MAX, "Exceeding maximum query size: 100", &ids);
    if (msg == NULL && read_query_token(root, "tg1.", &q.first) != 0)
        msg = "Invalid NextToken";
    if (msg != NULL)
        return read_query_error(out, 400, msg);
    if (c->store == NULL)
        return read_query_error(out, 404,
                                "The embedded store is off in this xrayd "
                                "(use the local upstream or --local-api)");
    int rc;
    struct graph *g = read_query_trace_graph_build(c, ids, &rc);
    if (g == NULL)
        return read_query_failed(out, rc);
    q.graph = g;
    uint64_t next = 0;
    rc = buf_append_str(out, "{");
    if (rc == 0)
        rc = read_query_page(out, read_query_services_page, &q, read_query_limit(c), &next);
    if (rc == 0)
        rc = read_query_append_token(out, "tg1.", next);
    if (rc == 0)
        rc = buf_append_str(out, "}");
    graph_destroy(g);
    return rc == 0 ? 200 : read_query_failed(out, rc);
}

/* ---- BatchGetTraces ---- */

/* Appends one trace. 0, or a buf error that leaves out as it was. */
static int read_query_append_trace(struct buf *out, const char *id, struct store_iter first)
{
    struct store_iter it = first;
    struct store_doc_view v;
    double start = 0, end = 0;
    while (store_next(&it, &v)) {
        if (v.start > 0 && (start == 0 || v.start < start))
            start = v.start;
        if (v.end > end)
            end = v.end;
    }
    char duration[40];
    read_query_seconds(end > start && start > 0 ? end - start : 0, duration);
    size_t mark = out->len;
    int rc = buf_append_str(out, out->data[out->len - 1] == '[' ? "{\"Id\":" : ",{\"Id\":");
    if (rc == 0)
        rc = buf_append_json_string(out, id, strlen(id));
    if (rc == 0)
        rc = buf_appendf(out, ",\"Duration\":%s,\"LimitExceeded\":", duration);
    size_t limit_at = out->len;
    if (rc == 0)
        rc = buf_append_str(out, "false,\"Segments\":[");
    if (rc != 0) {
        out->len = mark;
        return rc;
    }
    it = first;
    bool first_doc = true;
    while (store_next(&it, &v)) {
        size_t doc_mark = out->len;
        rc = buf_append_str(out, first_doc ? "{\"Id\":" : ",{\"Id\":");
        if (rc == 0)
            rc = buf_append_json_string(out, v.id, strlen(v.id));
        if (rc == 0)
            rc = buf_append_str(out, ",\"Document\":");
        if (rc == 0)
            rc = buf_append_json_string(out, v.doc, v.len);
        if (rc == 0)
            rc = buf_append_str(out, "}");
        if (rc != 0 || out->len - mark > READ_QUERY_TRACE_BYTES) {
            out->len = doc_mark;
            memcpy(out->data + limit_at, "true ", 5); /* same width as "false" */
            break;
        }
        first_doc = false;
    }
    rc = buf_append_str(out, "]}");
    if (rc != 0)
        out->len = mark;
    return rc;
}

/* Every trace asked for, then the ids not found. The answer is never paged: a
 * NextToken is accepted and ignored, and none is returned. */
static int read_query_write_traces(const struct read_query_ctx *c, json_t *ids, struct buf *out)
{
    const char *missing[READ_QUERY_TRACES_MAX];
    size_t nmissing = 0, n = json_array_size(ids), max = out->max;
    if (max < READ_QUERY_TAIL_BYTES)
        return XRAY_ETOOBIG;
    out->max = max - READ_QUERY_TAIL_BYTES;
    int rc = buf_append_str(out, "{\"Traces\":[");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        struct store_iter it;
        if (read_query_seen(ids, i))
            continue;
        if (store_find(c->store, id, &it) != 0)
            missing[nmissing++] = id;
        else
            rc = read_query_append_trace(out, id, it);
    }
    out->max = max;
    if (rc == 0)
        rc = buf_append_str(out, "],\"UnprocessedTraceIds\":[");
    for (size_t i = 0; rc == 0 && i < nmissing; i++) {
        if (i > 0)
            rc = buf_append_str(out, ",");
        if (rc == 0)
            rc = buf_append_json_string(out, missing[i], strlen(missing[i]));
    }
    if (rc == 0)
        rc = buf_append_str(out, "]}");
    return rc;
}

static int read_query_traces(const struct read_query_ctx *c, json_t *root, struct buf *out)
{
    json_t *ids, *token = read_query_member(root, "NextToken");
    const char *msg =
        read_query_ids(root, READ_QUERY_TRACES_MAX, "Exceeding maximum query size: 5", &ids);
    if (msg == NULL && token != NULL && !json_is_string(token))
        msg = "NextToken must be a string";
    if (msg != NULL)
        return read_query_error(out, 400, msg);
    if (c->store == NULL)
        return read_query_error(out, 404,
                                "The embedded store is off in this xrayd "
                                "(use the local upstream or --local-api)");
    int rc = read_query_write_traces(c, ids, out);
    return rc == 0 ? 200 : read_query_failed(out, rc);
}

/* ---- GetTraceSummaries ---- */

struct read_query_summaries {
    const struct store *store;
    struct store_query q;
    size_t scanned;
};

static int read_query_summaries_page(void *arg, size_t limit, struct buf *out, uint64_t *next)
{
    struct read_query_summaries *s = arg;
    s->q.limit = limit;
    s->scanned = 0;
    return store_write_summaries(s->store, &s->q, out, next, &s->scanned);
}

/* The members besides the range that X-Ray accepts: checked for their types; the
 * sampling ones are ignored (every matching trace is returned), and every
 * TimeRangeType is answered by trace start time. NULL, or what is wrong. */
static const char *read_query_summaries_options(json_t *root, json_t **expr)
{
    json_t *type = read_query_member(root, "TimeRangeType");
    json_t *sampling = read_query_member(root, "Sampling");
    json_t *strategy = read_query_member(root, "SamplingStrategy");
    *expr = read_query_member(root, "FilterExpression");
    if (type != NULL &&
        (!json_is_string(type) || (strcmp(json_string_value(type), "TraceId") != 0 &&
                                   strcmp(json_string_value(type), "Event") != 0 &&
                                   strcmp(json_string_value(type), "Service") != 0)))
        return "TimeRangeType must be one of TraceId, Event, Service";
    if (sampling != NULL && !json_is_boolean(sampling))
        return "Sampling must be a boolean";
    if (strategy != NULL && !json_is_object(strategy))
        return "SamplingStrategy must be an object";
    if (*expr != NULL && !json_is_string(*expr))
        return "FilterExpression must be a string";
    if (*expr != NULL && json_string_length(*expr) > FILTER_MAX_BYTES)
        return "FilterExpression is longer than 2000 characters";
    return NULL;
}

static int read_query_write_summaries(const struct read_query_ctx *c,
                                      struct read_query_summaries *s, struct buf *out)
{
    uint64_t next = 0;
    char now[40];
    read_query_seconds(c->now_s, now);
    int rc = buf_append_str(out, "{");
    if (rc == 0)
        rc = read_query_page(out, read_query_summaries_page, s, read_query_limit(c), &next);
    if (rc == 0)
        rc = buf_appendf(out, ",\"ApproximateTime\":%s,\"TracesProcessedCount\":%zu", now,
                         s->scanned);
    if (rc == 0)
        rc = read_query_append_token(out, "ts1.", next);
    if (rc == 0)
        rc = buf_append_str(out, "}");
    return rc;
}

static int read_query_trace_summaries(const struct read_query_ctx *c, json_t *root, struct buf *out)
{
    struct read_query_summaries s = {.store = c->store};
    json_t *expr;
    const char *msg = read_query_range(root, &s.q.start_s, &s.q.end_s);
    if (msg == NULL)
        msg = read_query_summaries_options(root, &expr);
    if (msg == NULL && read_query_token(root, "ts1.", &s.q.cursor) != 0)
        msg = "Invalid NextToken";
    if (msg != NULL)
        return read_query_error(out, 400, msg);
    if (c->store == NULL)
        return read_query_error(out, 404,
                                "The embedded store is off in this xrayd "
                                "(use the local upstream or --local-api)");
    struct filter *f = NULL;
    if (expr != NULL && json_string_length(expr) > 0) {
        char err[XRAY_ERR_LEN] = "";
        int rc = filter_parse(json_string_value(expr), json_string_length(expr), &f, err);
        if (rc == XRAY_EPARSE)
            return read_query_error(out, 400, err);
        if (rc != 0)
            return read_query_failed(out, rc);
    }
    s.q.filter = f;
    int rc = read_query_write_summaries(c, &s, out);
    filter_free(f);
    return rc == 0 ? 200 : read_query_failed(out, rc);
}

int read_query_run(const struct read_query_ctx *c, enum read_query_kind kind, const char *body,
                   size_t len, struct buf *out)
{
    buf_reset(out);
    if (len > READ_QUERY_BODY_MAX)
        return read_query_error(out, 400, "Request body is larger than 1 MiB");
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return read_query_error(out, 400, "Request body must be a JSON object");
    }
    int status;
    switch (kind) {
    case READ_QUERY_SERVICE_GRAPH:
        status = read_query_service_graph(c, root, out);
        break;
    case READ_QUERY_TRACE_GRAPH:
        status = read_query_trace_graph(c, root, out);
        break;
    case READ_QUERY_TRACES:
        status = read_query_traces(c, root, out);
        break;
    case READ_QUERY_TRACE_SUMMARIES:
        status = read_query_trace_summaries(c, root, out);
        break;
    default:
        status = read_query_error(out, 400, "Unknown operation");
        break;
    }
    json_decref(root);
    return status;
}
