/* SPDX-License-Identifier: Apache-2.0 */
/* What a (sub)segment records: annotations, metadata, user, http, aws, sql, namespace,
 * flags and exceptions. Inputs are checked and escaped here, once, into the node's
 * arena, so that sending is copying. Setters on an unsampled tree return at once
 * without taking the lock: nothing of theirs would ever be sent. */
#include <errno.h>
#include <execinfo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define RECORD_FIELD_MAX 2048 /* ours: bytes kept of one http/aws/sql/user string */

/* The node's trace, locked, or NULL when there is nothing to record. */
static struct xray__trace *record_lock(struct xray_segment *seg)
{
    if (seg == NULL || !seg->trace->sampled)
        return NULL;
    pthread_mutex_lock(&seg->trace->lock);
    return seg->trace;
}

static int record_done(struct xray__trace *t, int rc)
{
    if (rc == -ENOMEM)
        XRAY__COUNT(t->rec, oom_dropped);
    else if (rc == XRAY_SDK_ELIMIT)
        XRAY__COUNT(t->rec, limit_dropped);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* Quotes s into the arena as a fragment; NULL s leaves f unset. -ENOMEM on failure. */
static int record_quote(struct xray_segment *seg, struct xray__frag *f, const char *s, size_t max)
{
    if (s == NULL)
        return 0;
    size_t len = 0;
    const char *q = xray__serialize_quote(&seg->arena, s, strlen(s), max, &len);
    if (q == NULL)
        return -ENOMEM;
    f->p = q;
    f->len = len;
    return 0;
}

static int record_copy(struct xray_segment *seg, struct xray__frag *f, const char *s, size_t n)
{
    char *p = xray__arena_alloc(&seg->arena, n);
    if (p == NULL)
        return -ENOMEM;
    memcpy(p, s, n);
    f->p = p;
    f->len = n;
    return 0;
}

/* ---- annotations ---- */

static int record_check_key(const char *key)
{
    if (key == NULL)
        return -EINVAL;
    size_t n = 0;
    for (; key[n]; n++) {
        char c = key[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return XRAY_SDK_EKEY;
    }
    return n == 0 || n > XRAY_ANNOTATION_KEY_MAX ? XRAY_SDK_EKEY : 0;
}

/* value is JSON text (already quoted when a string). */
static int record_annotation(struct xray_segment *seg, const char *key, const char *value,
                             size_t vlen, bool quote)
{
    int rc = record_check_key(key);
    if (rc != 0)
        return rc;
    struct xray__trace *t = record_lock(seg);
    if (t == NULL)
        return 0;
    size_t klen = strlen(key);
    struct xray__kv *kv = seg->annotations, *last = NULL;
    for (; kv != NULL; last = kv, kv = kv->next)
        if (kv->key.len == klen + 2 && memcmp(kv->key.p + 1, key, klen) == 0)
            break;
    if (kv == NULL) {
        if (seg->n_annotations >= XRAY_ANNOTATIONS_MAX)
            return record_done(t, XRAY_SDK_ELIMIT);
        kv = xray__arena_alloc(&seg->arena, sizeof(*kv));
        if (kv == NULL || record_quote(seg, &kv->key, key, XRAY_ANNOTATION_KEY_MAX) != 0)
            return record_done(t, -ENOMEM);
        kv->next = NULL;
        kv->ns.p = NULL;
        kv->value.p = NULL;
        if (last)
            last->next = kv;
        else
            seg->annotations = kv;
        seg->n_annotations++;
    }
    if (quote) {
        size_t qlen = 0;
        const char *q =
            xray__serialize_quote(&seg->arena, value, vlen, XRAY_ANNOTATION_VALUE_MAX, &qlen);
        if (q == NULL)
            return record_done(t, -ENOMEM);
        kv->value.p = q;
        kv->value.len = qlen;
    } else if (record_copy(seg, &kv->value, value, vlen) != 0) {
        return record_done(t, -ENOMEM);
    }
    return record_done(t, 0);
}

int xray_segment_annotate_string(struct xray_segment *seg, const char *key, const char *value)
{
    if (seg != NULL && value == NULL)
        return -EINVAL;
    return record_annotation(seg, key, value, value ? strlen(value) : 0, true);
}

int xray_segment_annotate_int(struct xray_segment *seg, const char *key, int64_t value)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", (long long)value);
    return record_annotation(seg, key, num, (size_t)n, false);
}

int xray_segment_annotate_double(struct xray_segment *seg, const char *key, double value)
{
    char num[32];
    size_t n = xray__serialize_double(num, value);
    if (n == 0)
        return seg == NULL ? 0 : -EINVAL;
    return record_annotation(seg, key, num, n, false);
}

int xray_segment_annotate_bool(struct xray_segment *seg, const char *key, bool value)
{
    return value ? record_annotation(seg, key, "true", 4, false)
                 : record_annotation(seg, key, "false", 5, false);
}

/* ---- metadata ---- */

/* value is JSON text, or a string to quote when quote is set. */
static int record_metadata(struct xray_segment *seg, const char *ns, const char *key,
                           const char *json, size_t len, bool quote)
{
    if (seg == NULL)
        return 0;
    if (key == NULL || json == NULL)
        return -EINVAL;
    if (ns == NULL)
        ns = "default";
    if (strncmp(ns, "AWS.", 4) == 0)
        return -EINVAL; /* reserved for AWS's own SDKs */
    struct xray__trace *t = record_lock(seg);
    if (t == NULL)
        return 0;
    /* Entries are matched on their quoted forms; quoting first keeps it simple. */
    struct xray__frag qns = {0}, qkey = {0};
    if (record_quote(seg, &qns, ns, RECORD_FIELD_MAX) != 0 ||
        record_quote(seg, &qkey, key, RECORD_FIELD_MAX) != 0)
        return record_done(t, -ENOMEM);
    struct xray__kv *kv = seg->metadata, *last = NULL;
    for (; kv != NULL; last = kv, kv = kv->next)
        if (kv->ns.len == qns.len && memcmp(kv->ns.p, qns.p, qns.len) == 0 &&
            kv->key.len == qkey.len && memcmp(kv->key.p, qkey.p, qkey.len) == 0)
            break;
    if (kv == NULL) {
        if (seg->n_metadata >= XRAY_METADATA_MAX)
            return record_done(t, XRAY_SDK_ELIMIT);
        kv = xray__arena_alloc(&seg->arena, sizeof(*kv));
        if (kv == NULL)
            return record_done(t, -ENOMEM);
        kv->next = NULL;
        kv->ns = qns;
        kv->key = qkey;
        if (last)
            last->next = kv;
        else
            seg->metadata = kv;
        seg->n_metadata++;
    }
    if (quote) {
        size_t qlen = 0;
        const char *q =
            xray__serialize_quote(&seg->arena, json, len, XRAY_METADATA_VALUE_MAX, &qlen);
        if (q == NULL)
            return record_done(t, -ENOMEM);
        kv->value.p = q;
        kv->value.len = qlen;
        return record_done(t, 0);
    }
    return record_done(t, record_copy(seg, &kv->value, json, len));
}

int xray_segment_metadata_json(struct xray_segment *seg, const char *ns, const char *key,
                               const char *json, size_t len)
{
    if (seg == NULL || !seg->trace->sampled)
        return 0;
    if (json == NULL)
        return -EINVAL;
    if (len > XRAY_METADATA_VALUE_MAX)
        return XRAY_SDK_EJSON;
    int rc = xray__jsoncheck_value(json, len, XRAY_METADATA_DEPTH_MAX);
    if (rc != 0)
        return rc;
    return record_metadata(seg, ns, key, json, len, false);
}

int xray_segment_metadata_string(struct xray_segment *seg, const char *ns, const char *key,
                                 const char *value)
{
    if (seg == NULL || !seg->trace->sampled)
        return 0;
    if (value == NULL)
        return -EINVAL;
    return record_metadata(seg, ns, key, value, strlen(value), true);
}

int xray_segment_metadata_int(struct xray_segment *seg, const char *ns, const char *key,
                              int64_t value)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", (long long)value);
    return record_metadata(seg, ns, key, num, (size_t)n, false);
}

int xray_segment_metadata_double(struct xray_segment *seg, const char *ns, const char *key,
                                 double value)
{
    char num[32];
    size_t n = xray__serialize_double(num, value);
    if (n == 0)
        return seg == NULL ? 0 : -EINVAL;
    return record_metadata(seg, ns, key, num, n, false);
}

int xray_segment_metadata_bool(struct xray_segment *seg, const char *ns, const char *key,
                               bool value)
{
    return record_metadata(seg, ns, key, value ? "true" : "false", value ? 4 : 5, false);
}

/* ---- user, http, aws, sql ---- */

int xray_segment_set_user(struct xray_segment *seg, const char *user)
{
    if (seg == NULL)
        return 0;
    if (seg->is_sub)
        return XRAY_SDK_EKIND;
    if (user == NULL)
        return -EINVAL;
    struct xray__trace *t = record_lock(seg);
    if (t == NULL)
        return 0;
    return record_done(t, record_quote(seg, &seg->user, user, RECORD_FIELD_MAX));
}

int xray_segment_set_http_request(struct xray_segment *seg, const struct xray_http_request *req)
{
    if (seg != NULL && req == NULL)
        return -EINVAL;
    struct xray__trace *t = record_lock(seg);
    if (t == NULL)
        return 0;
    const char *v[XRAY__HTTP_N] = {req->method, req->url, req->user_agent, req->client_ip};
    int rc = 0;
    for (int i = 0; i < XRAY__HTTP_N && rc == 0; i++)
        rc = record_quote(seg, &seg->http[i], v[i], RECORD_FIELD_MAX);
    seg->http_xff = req->x_forwarded_for;
    seg->http_traced = req->traced;
    seg->has_request = true;
    return record_done(t, rc);
}

int xray_segment_set_http_response(struct xray_segment *seg, int status, int64_t content_length)
{
    if (seg != NULL && (status < 100 || status > 999))
        return -EINVAL;
    struct xray__trace *t = record_lock(seg);
    if (t == NULL)
        return 0;
    seg->http_status = status;
    seg->http_length = content_length < 0 ? -1 : content_length;
    /* wire.md, status classification: 429 is a throttle and a client error. */
    if (status == 429)
        seg->flags |= XRAY_FLAG_THROTTLE | XRAY_FLAG_ERROR;
    else if (status >= 400 && status < 500)
        seg->flags |= XRAY_FLAG_ERROR;
    else if (status >= 500 && status < 600)
        seg->flags |= XRAY_FLAG_FAULT;
    return record_done(t, 0);
}

int xray_segment_set_aws(struct xray_segment *seg, const struct xray_aws_info *aws)
{
    if (seg != NULL && aws == NULL)
        return -EINVAL;
    struct xray__trace *t = record_lock(seg);
    if (t == NULL)
        return 0;
    const char *v[XRAY__AWS_N] = {aws->operation,  aws->region,     aws->request_id,
                                  aws->account_id, aws->table_name, aws->queue_url};
    int rc = 0;
    for (int i = 0; i < XRAY__AWS_N && rc == 0; i++)
        rc = record_quote(seg, &seg->aws[i], v[i], RECORD_FIELD_MAX);
    seg->aws_retries = aws->retries < 0 ? -1 : aws->retries;
    return record_done(t, rc);
}

int xray_segment_set_sql(struct xray_segment *seg, const struct xray_sql_info *sql)
{
    if (seg != NULL && sql == NULL)
        return -EINVAL;
    struct xray__trace *t = record_lock(seg);
    if (t == NULL)
        return 0;
    const char *v[XRAY__SQL_N] = {sql->url,           sql->connection_string, sql->sanitized_query,
                                  sql->database_type, sql->database_version,  sql->driver_version,
                                  sql->user,          sql->preparation};
    int rc = 0;
    for (int i = 0; i < XRAY__SQL_N && rc == 0; i++)
        rc = record_quote(seg, &seg->sql[i], v[i], RECORD_FIELD_MAX);
    return record_done(t, rc);
}

/* ---- namespace, flags, exceptions ---- */

int xray_segment_set_namespace(struct xray_segment *seg, enum xray_namespace ns)
{
    if (seg == NULL)
        return 0;
    if (!seg->is_sub)
        return XRAY_SDK_EKIND;
    if (ns != XRAY_NAMESPACE_NONE && ns != XRAY_NAMESPACE_REMOTE && ns != XRAY_NAMESPACE_AWS)
        return -EINVAL;
    struct xray__trace *t = record_lock(seg);
    if (t == NULL)
        return 0;
    seg->ns = (uint8_t)ns;
    return record_done(t, 0);
}

int xray_segment_set_flags(struct xray_segment *seg, unsigned flags)
{
    struct xray__trace *t = record_lock(seg);
    if (t == NULL)
        return 0;
    seg->flags |= (uint8_t)(flags & (XRAY_FLAG_ERROR | XRAY_FLAG_THROTTLE | XRAY_FLAG_FAULT));
    return record_done(t, 0);
}

int xray_segment_add_exception(struct xray_segment *seg, const char *type, const char *message,
                               unsigned flags)
{
    if (seg == NULL || !seg->trace->sampled)
        return 0;
    /* Captured before the lock: backtrace() may load libgcc on first use. */
    void *frames[XRAY_STACK_MAX + 1];
    int n_frames = 0;
    if (flags & XRAY_EXCEPTION_STACK)
        n_frames = backtrace(frames, XRAY_STACK_MAX + 1);
    char id[XRAY_SEGMENT_ID_LEN + 1];
    xray_id_segment(id);
    struct xray__trace *t = record_lock(seg);
    if (seg->n_exceptions >= XRAY_EXCEPTIONS_MAX)
        return record_done(t, XRAY_SDK_ELIMIT);
    struct xray__exception *e = xray__arena_alloc(&seg->arena, sizeof(*e));
    if (e == NULL)
        return record_done(t, -ENOMEM);
    memset(e, 0, sizeof(*e));
    memcpy(e->id, id, sizeof(e->id));
    if (record_quote(seg, &e->type, type, RECORD_FIELD_MAX) != 0 ||
        record_quote(seg, &e->message, message, RECORD_FIELD_MAX) != 0)
        return record_done(t, -ENOMEM);
    e->remote = (flags & XRAY_EXCEPTION_REMOTE) != 0;
    /* The first frame is this function: the stack starts at its caller. */
    if (n_frames > 1) {
        e->n_frames = n_frames - 1;
        memcpy(e->frames, frames + 1, sizeof(void *) * (size_t)e->n_frames);
    }
    if (seg->exceptions_tail)
        seg->exceptions_tail->next = e;
    else
        seg->exceptions = e;
    seg->exceptions_tail = e;
    seg->n_exceptions++;
    seg->flags |= (flags & XRAY_EXCEPTION_ERROR) ? XRAY_FLAG_ERROR : XRAY_FLAG_FAULT;
    return record_done(t, 0);
}
