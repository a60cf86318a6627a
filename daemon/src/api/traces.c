/* SPDX-License-Identifier: Apache-2.0 */
/* BatchGetTraces from the embedded store. The request body is small and parsed with
 * jansson; documents go out exactly as they were received, as JSON strings. Errors use
 * the AWS JSON error shape (__type + message, and x-amzn-ErrorType) so the AWS SDKs
 * raise InvalidRequestException. The response is bounded: TRACES_MAX_IDS traces of at
 * most TRACES_MAX_TRACE_BYTES each; a trace cut short says LimitExceeded: true. */
#include "api/traces.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "http/server.h"
#include "trace/store.h"

#define TRACES_ERROR_TYPE   "InvalidRequestException"
#define TRACES_MAX_RESPONSE (TRACES_MAX_IDS * (TRACES_MAX_TRACE_BYTES + 64u * 1024) + 64u * 1024)

static void traces_error(struct http_response *res, const char *msg)
{
    struct buf b;
    buf_init(&b, 1024);
    int rc = buf_append_str(&b, "{\"__type\":\"" TRACES_ERROR_TYPE "\",\"message\":");
    if (rc == 0)
        rc = buf_append_json_string(&b, msg, strlen(msg));
    if (rc == 0)
        rc = buf_append_str(&b, "}");
    http_response_header(res, "x-amzn-ErrorType", TRACES_ERROR_TYPE);
    if (rc == 0)
        http_response_send(res, 400, "application/json", b.data, b.len);
    else
        http_response_send(res, 500, NULL, NULL, 0);
    buf_free(&b);
}

/* Seconds as a JSON number: microsecond precision, no trailing zeros ("0.5", "2"). */
static void traces_format_seconds(double s, char out[32])
{
    if (!(s > 0) || s > 1e12) {
        strcpy(out, "0");
        return;
    }
    int n = snprintf(out, 32, "%.6f", s);
    while (n > 1 && out[n - 1] == '0')
        out[--n] = '\0';
    if (out[n - 1] == '.')
        out[n - 1] = '\0';
}

/* Appends one trace. Returns 0, or a buf error that leaves out as it was. */
static int traces_append_trace(struct buf *out, const char *id, struct store_iter first)
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
    char duration[32];
    traces_format_seconds(end > start && start > 0 ? end - start : 0, duration);
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
        if (rc != 0 || out->len - mark > TRACES_MAX_TRACE_BYTES) {
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

static void traces_batch_get(struct http_request *req, struct http_response *res, void *data)
{
    struct store *st = data;
    json_error_t je;
    json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    json_t *ids = json_is_object(root) ? json_object_get(root, "TraceIds") : NULL;
    json_t *token = json_is_object(root) ? json_object_get(root, "NextToken") : NULL;
    const char *msg = NULL;
    size_t n = json_array_size(ids);
    if (!json_is_object(root))
        msg = "Request body must be a JSON object";
    else if (!json_is_array(ids))
        msg = "TraceIds is required and must be a list of strings";
    else if (n == 0)
        msg = "TraceIds must contain at least 1 item";
    else if (n > TRACES_MAX_IDS)
        msg = "Exceeding maximum query size: 5";
    else if (token != NULL && !json_is_string(token) && !json_is_null(token))
        msg = "NextToken must be a string";
    for (size_t i = 0; msg == NULL && i < n; i++) {
        size_t len = json_string_length(json_array_get(ids, i));
        if (!json_is_string(json_array_get(ids, i)) || len == 0 || len > STORE_TRACE_ID_MAX)
            msg = "Each of TraceIds must be a string of 1 to 35 characters";
    }
    if (msg != NULL) {
        json_decref(root);
        traces_error(res, msg);
        return;
    }
    /* NextToken is accepted and ignored: the answer is never paged, so never has one. */
    struct buf out;
    buf_init(&out, TRACES_MAX_RESPONSE);
    const char *missing[TRACES_MAX_IDS];
    size_t nmissing = 0;
    int rc = buf_append_str(&out, "{\"Traces\":[");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            dup = dup || strcmp(id, json_string_value(json_array_get(ids, j))) == 0;
        struct store_iter it;
        if (dup)
            continue;
        if (store_find(st, id, &it) != 0)
            missing[nmissing++] = id;
        else
            rc = traces_append_trace(&out, id, it);
    }
    if (rc == 0)
        rc = buf_append_str(&out, "],\"UnprocessedTraceIds\":[");
    for (size_t i = 0; rc == 0 && i < nmissing; i++) {
        if (i > 0)
            rc = buf_append_str(&out, ",");
        if (rc == 0)
            rc = buf_append_json_string(&out, missing[i], strlen(missing[i]));
    }
    if (rc == 0)
        rc = buf_append_str(&out, "]}");
    if (rc == 0)
        http_response_send(res, 200, "application/json", out.data, out.len);
    else
        http_response_send(res, 500, NULL, NULL, 0);
    buf_free(&out);
    json_decref(root);
}

int traces_register(struct http_server *s, struct store *st)
{
    return http_server_route(s, HTTP_ROLE_API, "POST", "/Traces", traces_batch_get, st);
}
