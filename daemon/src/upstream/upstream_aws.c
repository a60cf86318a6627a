/* SPDX-License-Identifier: Apache-2.0 */
/* The `aws` sender. The body is built once per batch straight from the pool's
 * documents into the batch slot's kept buffer (no copy per document, no allocation
 * per call once warm), escaped by buf.c's one JSON string escaper; the response,
 * outside input, is parsed with jansson — it is small and off the per-document path.
 * Retrying is the core's business, not this. */
#include "upstream/upstream_aws.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "ingest/pool.h"
#include "log.h"
#include "upstream/xray.h"

#define AWS_BODY_HEAD "{\"TraceSegmentDocuments\":["
#define AWS_BODY_TAIL "]}"

size_t upstream_aws_body_size(const struct doc *docs)
{
    size_t exact = sizeof(AWS_BODY_HEAD) - 1 + sizeof(AWS_BODY_TAIL) - 1;
    for (const struct doc *d = docs; d != NULL; d = d->next)
        exact += buf_json_string_len(d->data, d->len) + (d != docs);
    return exact;
}

int upstream_aws_body(struct buf *out, const struct doc *docs)
{
    /* Each document is reserved at its exact escaped size as it is appended; sizing
     * the whole body first would read every document one more time per batch. The
     * batch slot keeps its buffer, so once warm nothing grows. */
    size_t start = out->len;
    int rc = buf_append(out, AWS_BODY_HEAD, sizeof(AWS_BODY_HEAD) - 1);
    for (const struct doc *d = docs; d != NULL && rc == 0; d = d->next) {
        if (d != docs)
            rc = buf_append(out, ",", 1);
        if (rc == 0)
            rc = buf_append_json_string(out, d->data, d->len);
    }
    if (rc == 0)
        rc = buf_append(out, AWS_BODY_TAIL, sizeof(AWS_BODY_TAIL) - 1);
    if (rc != 0 && out->data != NULL) {
        out->len = start; /* what was written is dropped: the caller sees out as it was */
        out->data[start] = '\0';
    }
    return rc;
}

static const char *aws_member_string(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

int upstream_aws_parse_response(const char *body, size_t len,
                                void (*each)(void *arg, const char *id, const char *code),
                                void *arg)
{
    if (len == 0)
        return 0;
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return XRAY_EPARSE;
    }
    int n = 0;
    json_t *list = json_object_get(root, "UnprocessedTraceSegments");
    if (list != NULL && !json_is_null(list)) {
        if (!json_is_array(list)) {
            json_decref(root);
            return XRAY_EPARSE;
        }
        size_t count = json_array_size(list);
        for (size_t i = 0; i < count && n < UPSTREAM_AWS_UNPROCESSED_MAX; i++) {
            json_t *e = json_array_get(list, i);
            if (!json_is_object(e))
                continue;
            each(arg, aws_member_string(e, "Id"), aws_member_string(e, "ErrorCode"));
            n++;
        }
    }
    json_decref(root);
    return n;
}

static void aws_on_unprocessed(void *arg, const char *id, const char *code)
{
    upstream_batch_unprocessed(arg, id, code);
}

static void aws_on_response(const struct http_client_result *res, void *data)
{
    struct upstream_batch *b = data;
    int status = xray_result_error(res);
    b->http_status = res->status;
    b->retry_after_ms = res->retry_after_ms;
    if (status == 0 &&
        upstream_aws_parse_response(res->body, res->body_len, aws_on_unprocessed, b) < 0) {
        /* X-Ray said 200: the documents were taken. Count them as sent. */
        XLOG_EVERY(10000, LOG_LEVEL_WARN, "upstream",
                   "PutTraceSegments answered 200 with a body that is not its JSON");
    }
    b->done(b, status);
}

static int aws_send(void *ctx, struct upstream_batch *b,
                    void (*done)(struct upstream_batch *batch, int status))
{
    b->done = done;
    buf_reset(&b->body);
    b->body.max = UPSTREAM_AWS_BODY_MAX;
    int rc = upstream_aws_body(&b->body, b->docs);
    if (rc != 0) {
        XLOG_EVERY(10000, LOG_LEVEL_ERROR, "upstream",
                   "could not build a PutTraceSegments body: %s", xray_strerror(rc));
        return rc;
    }
    return xray_call(ctx, UPSTREAM_AWS_PATH, b->body.data, b->body.len, aws_on_response, b);
}

static const char *aws_last_error(void *ctx)
{
    return xray_last_error(ctx);
}

const struct upstream_ops upstream_aws_ops = {
    .name = "aws",
    .send = aws_send,
    .last_error = aws_last_error,
};
