/* SPDX-License-Identifier: Apache-2.0 */
/* CloudWatch: on the worker, each snapshot is compared with the one before (kept here:
 * the sink owns its snapshots, keeps_snapshot) and the difference becomes PutLogEvents
 * bodies of EMF events or PutMetricData bodies; on the loop they go to a sink_queue,
 * which owns order, retries and the byte bound. For EMF a body that finds its log group
 * or stream missing creates them and is sent again, all within one send of the queue.
 * encode() and ship() run in turn, never together (the exporter's one job per sink). */
#include "export/cloudwatch_sink.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/aws_call.h"
#include "buf.h"
#include "export/sink_queue.h"
#include "log.h"
#include "metrics/cloudwatch.h"
#include "metrics/emf.h"
#include "metrics/put_metric_data.h"
#include "metrics/registry.h"

#define MOD "export"

#define CWS_LOG_EVERY_MS 60000u
/* CloudWatch Logs API reference: group names are 1-512 of [.-_/#A-Za-z0-9]; stream
 * names 1-512 characters without ':' or '*'. */
#define CWS_LOG_NAME_MAX 512
#define CWS_TARGET_LOGS  "Logs_20140328."
#define CWS_TARGET_PMD   "GraniteServiceVersion20100801.PutMetricData"
#define CWS_JSON_11      "application/x-amz-json-1.1"
#define CWS_JSON_10      "application/x-amz-json-1.0"
/* An error body is a few hundred bytes; anything bigger is not worth reading. */
#define CWS_MAX_RESPONSE (64u * 1024)

/* A request body between encode() and ship(). */
struct cws_body {
    struct cws_body *next;
    size_t len;
    char *data; /* owned until pushed */
};

/* Where one queued body stands: PutLogEvents, else the steps that create what it found
 * missing, then PutLogEvents once more. */
enum cws_step {
    CWS_PUT = 0,
    CWS_CREATE_GROUP,
    CWS_CREATE_STREAM,
    CWS_PUT_AGAIN,
};

struct cws_send {
    struct cloudwatch_sink *s;
    const void *body; /* the queue's, borrowed until cb runs */
    size_t len;
    enum cws_step step;
    void (*cb)(const struct http_client_result *res, void *data);
    void *data;
};

struct cloudwatch_sink {
    unsigned output;
    struct aws_client *aws;
    struct sink_queue *queue;
    struct stats *stats;
    size_t max_bytes;
    char ns[CLOUDWATCH_NAMESPACE_MAX + 1];
    char *log_group;
    char *log_stream;
    uint8_t storage_resolution;
    char *create_group_body;  /* {"logGroupName":...} */
    char *create_stream_body; /* {"logGroupName":...,"logStreamName":...} */
    bool closing;

    /* Worker side: the last snapshot (owned) and what the encoders did not send as it
     * was. */
    struct registry_snapshot *prev;
    struct cloudwatch_stats cw;
    uint64_t logged_refused;
    /* Made by encode() on the worker, taken by ship() on the loop. */
    struct cws_body *ready, **ready_tail;
    size_t ready_bytes;
    int encode_rc;

    void (*close_cb)(void *data);
    void *close_data;
};

/* ---- sending (loop thread) ---- */

static void cws_on_response(const struct http_client_result *res, void *data);

/* Starts op's current step. 0, or the error of aws_client_call (cb not run). */
static int cws_start(struct cws_send *op)
{
    struct cloudwatch_sink *s = op->s;
    const char *target = NULL, *body = NULL;
    size_t len = 0;
    switch (op->step) {
    case CWS_PUT:
    case CWS_PUT_AGAIN:
        target = CWS_TARGET_LOGS "PutLogEvents";
        body = op->body;
        len = op->len;
        break;
    case CWS_CREATE_GROUP:
        target = CWS_TARGET_LOGS "CreateLogGroup";
        body = s->create_group_body;
        len = strlen(body);
        break;
    case CWS_CREATE_STREAM:
        target = CWS_TARGET_LOGS "CreateLogStream";
        body = s->create_stream_body;
        len = strlen(body);
        break;
    }
    /* x-amzn-logs-format marks the events as EMF, as the CloudWatch agent sends them. */
    const struct sigv4_header h[] = {{"X-Amz-Target", target}, {"x-amzn-logs-format", "json/emf"}};
    bool put = op->step == CWS_PUT || op->step == CWS_PUT_AGAIN;
    const struct aws_request req = {
        .method = "POST",
        .path = "/",
        .content_type = CWS_JSON_11,
        .headers = h,
        .header_count = put ? 2 : 1,
        .body = body,
        .body_len = len,
        .max_response = CWS_MAX_RESPONSE,
    };
    return aws_client_call(s->aws, &req, cws_on_response, op);
}

/* Ends op with res (or, when a later step could not start, with why). */
static void cws_finish(struct cws_send *op, const struct http_client_result *res)
{
    op->cb(res, op->data);
    free(op);
}

static bool cws_error_is(const struct http_client_result *res, const char *type)
{
    char t[96];
    if (res->error != HTTP_CLIENT_OK || res->status != 400)
        return false;
    aws_client_error_type(res->body, res->body_len, t, sizeof(t));
    return strcmp(t, type) == 0;
}

static void cws_on_response(const struct http_client_result *res, void *data)
{
    struct cws_send *op = data;
    struct cloudwatch_sink *s = op->s;
    bool ok = res->error == HTTP_CLIENT_OK && res->status >= 200 && res->status < 300;
    enum cws_step next;
    switch (op->step) {
    case CWS_PUT:
        if (!cws_error_is(res, "ResourceNotFoundException") || s->closing) {
            cws_finish(op, res);
            return;
        }
        XLOG_INFO(MOD, "cloudwatch: creating log group %s and stream %s", s->log_group,
                  s->log_stream);
        next = CWS_CREATE_GROUP;
        break;
    case CWS_CREATE_GROUP:
    case CWS_CREATE_STREAM:
        if ((!ok && !cws_error_is(res, "ResourceAlreadyExistsException")) || s->closing) {
            if (res->error == HTTP_CLIENT_OK && !ok) {
                char why[XRAY_ERR_LEN];
                aws_client_error_describe(res->status, res->body, res->body_len, why, sizeof(why));
                XLOG_EVERY(CWS_LOG_EVERY_MS, LOG_LEVEL_WARN, MOD, "cloudwatch: %s %s: %s",
                           op->step == CWS_CREATE_GROUP ? "CreateLogGroup" : "CreateLogStream",
                           op->step == CWS_CREATE_GROUP ? s->log_group : s->log_stream, why);
            }
            cws_finish(op, res); /* the queue decides: retry, or drop on a 4xx */
            return;
        }
        next = op->step == CWS_CREATE_GROUP ? CWS_CREATE_STREAM : CWS_PUT_AGAIN;
        break;
    case CWS_PUT_AGAIN:
    default:
        cws_finish(op, res);
        return;
    }
    op->step = next;
    int rc = cws_start(op);
    if (rc != 0) {
        /* The queue reads this as aws_client_result_error() would read the call. */
        struct http_client_result r = {
            .error =
                rc == XRAY_ECLOSED || rc == -ECANCELED ? HTTP_CLIENT_CANCELED : HTTP_CLIENT_OTHER,
            .body = "",
            .retry_after_ms = -1,
            .message = aws_client_not_sent(s->aws),
        };
        cws_finish(op, &r);
    }
}

/* sink_queue_send_fn for EMF: PutLogEvents, creating the group and stream when
 * missing. */
static int cws_send_emf(void *ctx, const void *body, size_t len,
                        void (*cb)(const struct http_client_result *res, void *data), void *data)
{
    struct cws_send *op = malloc(sizeof(*op));
    if (op == NULL)
        return -ENOMEM;
    *op = (struct cws_send){
        .s = ctx, .body = body, .len = len, .step = CWS_PUT, .cb = cb, .data = data};
    int rc = cws_start(op);
    if (rc != 0)
        free(op);
    return rc;
}

/* sink_queue_send_fn for PutMetricData: one call. */
static int cws_send_pmd(void *ctx, const void *body, size_t len,
                        void (*cb)(const struct http_client_result *res, void *data), void *data)
{
    struct cloudwatch_sink *s = ctx;
    const struct sigv4_header h[] = {{"X-Amz-Target", CWS_TARGET_PMD},
                                     {"x-amzn-query-mode", "true"}};
    const struct aws_request req = {
        .method = "POST",
        .path = "/",
        .content_type = CWS_JSON_10,
        .headers = h,
        .header_count = 2,
        .body = body,
        .body_len = len,
        .max_response = CWS_MAX_RESPONSE,
    };
    return aws_client_call(s->aws, &req, cb, data);
}

/* ---- encoding (worker thread) ---- */

/* Keeps a copy of body for ship(). 0, or -ENOMEM / XRAY_ETOOBIG (the interval's
 * bodies passed the queue's bound: the rest would only push the first ones out). */
static int cws_keep(struct cloudwatch_sink *s, const char *body, size_t len)
{
    if (s->ready_bytes + len > s->max_bytes)
        return XRAY_ETOOBIG;
    struct cws_body *b = malloc(sizeof(*b));
    char *d = malloc(len + 1);
    if (b == NULL || d == NULL) {
        free(b);
        free(d);
        return -ENOMEM;
    }
    memcpy(d, body, len);
    d[len] = '\0';
    *b = (struct cws_body){.len = len, .data = d};
    *s->ready_tail = b;
    s->ready_tail = &b->next;
    s->ready_bytes += len;
    return 0;
}

static int cws_keep_emf(void *ctx, const char *body, size_t len, size_t nevents)
{
    (void)nevents;
    return cws_keep(ctx, body, len);
}

static int cws_keep_pmd(void *ctx, const char *body, size_t len)
{
    return cws_keep(ctx, body, len);
}

static void cloudwatch_sink_encode(void *sink, const struct registry_snapshot *snap)
{
    struct cloudwatch_sink *s = sink;
    int rc;
    if (s->output == CLOUDWATCH_SINK_EMF) {
        const struct emf_options eo = {
            .ns = s->ns, .storage_resolution = s->storage_resolution, .stats = &s->cw};
        const struct emf_batch_options bo = {.log_group = s->log_group,
                                             .log_stream = s->log_stream};
        struct emf_batch b;
        emf_batch_init(&b, &bo, cws_keep_emf, s);
        rc = emf_encode(&eo, s->prev, snap, emf_batch_add, &b);
        if (rc >= 0)
            rc = emf_batch_flush(&b);
        s->cw.refused += b.refused;
        emf_batch_free(&b);
    } else {
        const struct pmd_options po = {
            .ns = s->ns, .storage_resolution = s->storage_resolution, .stats = &s->cw};
        rc = put_metric_data_encode(&po, s->prev, snap, cws_keep_pmd, s);
    }
    s->encode_rc = rc < 0 ? rc : 0;
    if (s->cw.refused != s->logged_refused) {
        XLOG_EVERY(CWS_LOG_EVERY_MS, LOG_LEVEL_WARN, MOD,
                   "cloudwatch: %llu metrics or events over a size limit dropped so far",
                   (unsigned long long)s->cw.refused);
        s->logged_refused = s->cw.refused;
    }
    /* The next interval is measured from this one, even when some of it was lost: the
     * alternative would send this interval's traffic again. Ours to free
     * (keeps_snapshot); the exporter handed it over, const only by the signature. */
    registry_snapshot_free(s->prev);
    s->prev = (struct registry_snapshot *)snap;
}

/* Loop thread, after encode(). */
static void cloudwatch_sink_ship(void *sink)
{
    struct cloudwatch_sink *s = sink;
    if (s->encode_rc != 0) {
        XLOG_EVERY(CWS_LOG_EVERY_MS, LOG_LEVEL_WARN, MOD,
                   "cloudwatch: interval not fully encoded: %s: %s", xray_strerror(s->encode_rc),
                   s->encode_rc == XRAY_ETOOBIG ? "more than the queue holds" : "dropped");
        stats_add(&s->stats->sink_dropped[STATS_SINK_CLOUDWATCH], 1);
        s->encode_rc = 0;
    }
    struct cws_body *b = s->ready;
    s->ready = NULL;
    s->ready_tail = &s->ready;
    s->ready_bytes = 0;
    while (b != NULL) {
        struct cws_body *next = b->next;
        sink_queue_push(s->queue, b->data, b->len); /* takes it; counts a refusal */
        free(b);
        b = next;
    }
}

const struct exporter_sink_ops cloudwatch_sink_ops = {
    .name = "cloudwatch",
    .take_stale = false,
    .keeps_snapshot = true,
    .encode = cloudwatch_sink_encode,
    .ship = cloudwatch_sink_ship,
};

/* ---- life cycle (loop thread) ---- */

static bool cws_group_ok(const char *g)
{
    size_t n = strlen(g);
    return n > 0 && n <= CWS_LOG_NAME_MAX &&
           strspn(g, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/#") == n;
}

static bool cws_stream_ok(const char *st)
{
    size_t n = strlen(st);
    if (n == 0 || n > CWS_LOG_NAME_MAX || strpbrk(st, ":*") != NULL)
        return false;
    for (const unsigned char *c = (const unsigned char *)st; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

/* {"logGroupName":g[,"logStreamName":st]} as a fresh string; NULL on ENOMEM. */
static char *cws_names_body(const char *g, const char *st)
{
    struct buf b;
    buf_init(&b, 4 * CWS_LOG_NAME_MAX + 128);
    int rc = buf_append_str(&b, "{\"logGroupName\":");
    if (rc == 0)
        rc = buf_append_json_string(&b, g, strlen(g));
    if (rc == 0 && st != NULL) {
        rc = buf_append_str(&b, ",\"logStreamName\":");
        if (rc == 0)
            rc = buf_append_json_string(&b, st, strlen(st));
    }
    if (rc == 0)
        rc = buf_append(&b, "}", 2); /* with its NUL */
    if (rc != 0) {
        buf_free(&b);
        return NULL;
    }
    return b.data;
}

static void cws_free(struct cloudwatch_sink *s)
{
    struct cws_body *b = s->ready;
    while (b != NULL) {
        struct cws_body *next = b->next;
        free(b->data);
        free(b);
        b = next;
    }
    registry_snapshot_free(s->prev);
    free(s->log_group);
    free(s->log_stream);
    free(s->create_group_body);
    free(s->create_stream_body);
    free(s);
}

struct cloudwatch_sink *cloudwatch_sink_create(const struct cloudwatch_sink_options *o,
                                               char err[XRAY_ERR_LEN])
{
    if (o == NULL || o->loop == NULL || o->aws == NULL || o->stats == NULL) {
        xray_err_set(err, "cloudwatch: a loop, an AWS client and stats are required");
        return NULL;
    }
    if (o->output != CLOUDWATCH_SINK_EMF && o->output != CLOUDWATCH_SINK_PUT_METRIC_DATA) {
        xray_err_set(err, "cloudwatch: unknown output %u", o->output);
        return NULL;
    }
    const char *ns = o->ns != NULL && o->ns[0] ? o->ns : CLOUDWATCH_DEFAULT_NAMESPACE;
    if (cloudwatch_check_namespace(ns) != 0) {
        xray_err_set(err,
                     "cloudwatch: namespace \"%.64s\" is not one CloudWatch accepts "
                     "(1-255 characters, not AWS/...)",
                     ns);
        return NULL;
    }
    if (o->storage_resolution != 0 && o->storage_resolution != 1 && o->storage_resolution != 60) {
        xray_err_set(err, "cloudwatch: storage resolution must be 1 or 60");
        return NULL;
    }
    const char *group =
        o->log_group != NULL && o->log_group[0] ? o->log_group : CLOUDWATCH_SINK_LOG_GROUP;
    char stream[CWS_LOG_NAME_MAX + 1];
    if (o->log_stream != NULL && o->log_stream[0]) {
        snprintf(stream, sizeof(stream), "%s", o->log_stream);
        if (strlen(o->log_stream) > CWS_LOG_NAME_MAX)
            stream[0] = '\0'; /* refused below */
    } else {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "unknown");
        snprintf(stream, sizeof(stream), "xrayd-%s", host);
    }
    if (o->output == CLOUDWATCH_SINK_EMF && !cws_group_ok(group)) {
        xray_err_set(err, "cloudwatch: log group \"%.64s\" is not 1-512 of [.-_/#A-Za-z0-9]",
                     group);
        return NULL;
    }
    if (o->output == CLOUDWATCH_SINK_EMF && !cws_stream_ok(stream)) {
        xray_err_set(err, "cloudwatch: log stream must be 1-512 characters without ':' or '*'");
        return NULL;
    }

    struct cloudwatch_sink *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        xray_err_set(err, "out of memory");
        return NULL;
    }
    s->output = o->output;
    s->aws = o->aws;
    s->stats = o->stats;
    s->max_bytes = o->queue_bytes ? o->queue_bytes : SINK_QUEUE_DEFAULT_BYTES;
    s->storage_resolution = o->storage_resolution ? o->storage_resolution : 60;
    snprintf(s->ns, sizeof(s->ns), "%s", ns);
    s->ready_tail = &s->ready;
    s->log_group = strdup(group);
    s->log_stream = strdup(stream);
    s->create_group_body = cws_names_body(group, NULL);
    s->create_stream_body = cws_names_body(group, stream);
    const struct sink_queue_options qo = {
        .loop = o->loop,
        .name = "cloudwatch",
        .send = o->output == CLOUDWATCH_SINK_EMF ? cws_send_emf : cws_send_pmd,
        .send_ctx = s,
        .max_bytes = s->max_bytes,
        .stats = o->stats,
        .sink = STATS_SINK_CLOUDWATCH,
    };
    if (s->log_group == NULL || s->log_stream == NULL || s->create_group_body == NULL ||
        s->create_stream_body == NULL || (s->queue = sink_queue_create(&qo)) == NULL) {
        xray_err_set(err, "out of memory");
        cws_free(s);
        return NULL;
    }
    if (o->output == CLOUDWATCH_SINK_EMF)
        XLOG_INFO(MOD, "cloudwatch: EMF to log group %s, stream %s, namespace %s", s->log_group,
                  s->log_stream, s->ns);
    else
        XLOG_INFO(MOD, "cloudwatch: PutMetricData, namespace %s", s->ns);
    return s;
}

size_t cloudwatch_sink_queued(const struct cloudwatch_sink *s)
{
    return sink_queue_length(s->queue);
}

static void cws_on_queue_closed(void *data)
{
    struct cloudwatch_sink *s = data;
    void (*cb)(void *) = s->close_cb;
    void *cb_data = s->close_data;
    cws_free(s);
    if (cb != NULL)
        cb(cb_data);
}

void cloudwatch_sink_close(struct cloudwatch_sink *s, void (*cb)(void *data), void *data)
{
    s->close_cb = cb;
    s->close_data = data;
    s->closing = true;
    if (s->ready != NULL) /* encoded, never shipped: the exporter closed first */
        stats_add(&s->stats->sink_dropped[STATS_SINK_CLOUDWATCH], 1);
    sink_queue_close(s->queue, cws_on_queue_closed, s);
}
