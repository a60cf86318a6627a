/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus remote write: each snapshot becomes one body on the worker, which the loop
 * queues (sink_queue.c owns order, retries and the byte bound) and this file POSTs with
 * the protocol's headers and the configured authentication. It holds at most one body
 * between encode() and ship(); the exporter runs those two in turn, never together.
 * Secrets are kept only inside the one Authorization header line and never logged. */
#include "export/remote_write_sink.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_call.h"
#include "buf.h"
#include "export/sink_queue.h"
#include "http/client.h"
#include "http/proxy.h"
#include "log.h"
#include "metrics/registry.h"
#include "metrics/remote_write.h"

#define MOD "export"

/* Prometheus's own remote_timeout default is 30 s; a receiver that has not answered a
 * local push in 10 s is better retried than waited on. */
#define RWS_TIMEOUT_MS 10000u
/* Prometheus answers a rejected write with one short line of text. */
#define RWS_MAX_RESPONSE (64u * 1024)
#define RWS_LOG_EVERY_MS 60000u
#define RWS_HEADERS_MAX  5

struct remote_write_sink {
    struct http_client *http;
    struct aws_client *aws;
    struct sink_queue *queue;
    struct stats *stats;
    char *url;
    char path[AWS_CALL_PATH_MAX]; /* with aws: what each call appends to its endpoint */
    char *auth;                   /* "Authorization: ..." or NULL; holds secrets */
    char *user_agent;             /* "User-Agent: ..." */
    const char *headers[RWS_HEADERS_MAX];
    size_t header_count;

    /* Made by encode() on the worker, taken by ship() on the loop. */
    void *body;
    size_t body_len;

    /* The one request in flight (sink_queue sends one at a time). */
    void (*sent_cb)(const struct http_client_result *res, void *data);
    void *sent_data;

    void (*close_cb)(void *data);
    void *close_data;
};

static bool rws_has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* RFC 4648 base64 with padding, as basic auth wants it (RFC 7617). NULL on ENOMEM. */
static char *rws_base64(const char *s, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (out == NULL)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? abc[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static char *rws_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *rws_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *out = malloc((size_t)n + 1);
    if (out == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

/* The Authorization line for the options, or NULL with *rc = 0 when there is none. */
static char *rws_auth_header(const struct remote_write_sink_options *o, int *rc)
{
    *rc = 0;
    if (o->bearer_token != NULL && o->bearer_token[0] != '\0') {
        char *h = rws_printf("Authorization: Bearer %s", o->bearer_token);
        *rc = h == NULL ? -ENOMEM : 0;
        return h;
    }
    if (o->username == NULL || o->username[0] == '\0')
        return NULL;
    const char *pass = o->password != NULL ? o->password : "";
    char *pair = rws_printf("%s:%s", o->username, pass);
    char *b64 = pair != NULL ? rws_base64(pair, strlen(pair)) : NULL;
    char *h = b64 != NULL ? rws_printf("Authorization: Basic %s", b64) : NULL;
    if (pair != NULL) {
        /* The pair and its encoding are the password in the clear, near enough. */
        memset(pair, 0, strlen(pair));
        free(pair);
    }
    if (b64 != NULL) {
        memset(b64, 0, strlen(b64));
        free(b64);
    }
    *rc = h == NULL ? -ENOMEM : 0;
    return h;
}

/* Checks the options; 0 or XRAY_ECONFIG with err. */
static int rws_check(const struct remote_write_sink_options *o, char err[XRAY_ERR_LEN])
{
    if (o->loop == NULL || o->stats == NULL || (o->http == NULL && o->aws == NULL)) {
        xray_err_set(err, "remote write: loop, stats and an HTTP or AWS client are required");
        return XRAY_ECONFIG;
    }
    bool https;
    char host[PROXY_HOST_MAX + 2];
    unsigned port;
    if (o->url == NULL || rws_has_control(o->url) || strchr(o->url, ' ') != NULL ||
        proxy_url_target(o->url, &https, host, &port) != 0 || host[0] == '\0') {
        xray_err_set(err, "remote write: the URL is not http(s)://host[:port]/path");
        return XRAY_ECONFIG;
    }
    bool user = o->username != NULL && o->username[0] != '\0';
    bool pass = o->password != NULL && o->password[0] != '\0';
    bool bearer = o->bearer_token != NULL && o->bearer_token[0] != '\0';
    if (pass && !user) {
        xray_err_set(err, "remote write: a password needs a username");
        return XRAY_ECONFIG;
    }
    if (user && bearer) {
        xray_err_set(err, "remote write: basic auth and a bearer token are exclusive");
        return XRAY_ECONFIG;
    }
    if (o->aws != NULL && (user || bearer)) {
        xray_err_set(err, "remote write: SigV4 signing excludes basic auth and bearer tokens");
        return XRAY_ECONFIG;
    }
    /* RFC 7617: the user-id cannot hold a colon. Control characters would split the
     * header line. */
    if (user && (strchr(o->username, ':') != NULL || rws_has_control(o->username))) {
        xray_err_set(err, "remote write: the username holds ':' or a control character");
        return XRAY_ECONFIG;
    }
    if (pass && rws_has_control(o->password)) {
        xray_err_set(err, "remote write: the password holds a control character");
        return XRAY_ECONFIG;
    }
    if (bearer && rws_has_control(o->bearer_token)) {
        xray_err_set(err, "remote write: the bearer token holds a control character");
        return XRAY_ECONFIG;
    }
    if (o->user_agent != NULL && rws_has_control(o->user_agent)) {
        xray_err_set(err, "remote write: the user agent holds a control character");
        return XRAY_ECONFIG;
    }
    return 0;
}

/* What a signed call appends to the AWS client's endpoint: the rest of the URL when the
 * endpoint begins it (an endpoint may carry a path of its own), else the URL's path.
 * 0, or XRAY_ECONFIG with err. */
static int rws_aws_path(const char *url, const char *endpoint, char out[AWS_CALL_PATH_MAX],
                        char err[XRAY_ERR_LEN])
{
    size_t el = endpoint != NULL ? strlen(endpoint) : 0;
    const char *p;
    if (el > 0) {
        if (strncmp(url, endpoint, el) != 0 || (url[el] != '/' && url[el] != '\0')) {
            xray_err_set(err, "remote write: the URL is not under the AWS endpoint %s", endpoint);
            return XRAY_ECONFIG;
        }
        p = url + el;
    } else {
        p = strstr(url, "://");
        p = p != NULL ? p + 3 + strcspn(p + 3, "/") : "";
    }
    int n = snprintf(out, AWS_CALL_PATH_MAX, "%s", *p != '\0' ? p : "/");
    if (n <= 0 || n >= AWS_CALL_PATH_MAX) {
        xray_err_set(err, "remote write: the URL's path is longer than %d bytes",
                     AWS_CALL_PATH_MAX - 1);
        return XRAY_ECONFIG;
    }
    return 0;
}

static void rws_free(struct remote_write_sink *s)
{
    if (s->auth != NULL) {
        memset(s->auth, 0, strlen(s->auth));
        free(s->auth);
    }
    free(s->user_agent);
    free(s->url);
    free(s->body);
    free(s);
}

/* Completes the request in flight; a rejected body gets the receiver's reason logged,
 * as the queue only knows the status. */
static void rws_on_sent(const struct http_client_result *res, void *data)
{
    struct remote_write_sink *s = data;
    void (*cb)(const struct http_client_result *, void *) = s->sent_cb;
    void *cb_data = s->sent_data;
    s->sent_cb = NULL;
    if (res->error == HTTP_CLIENT_OK && res->status >= 400 && res->status < 500 &&
        res->status != 429) {
        char reason[200];
        size_t n = 0;
        for (size_t i = 0; i < res->body_len && n + 1 < sizeof reason; i++) {
            unsigned char ch = (unsigned char)res->body[i];
            if (ch == '\n' || ch == '\r')
                break;
            reason[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
        reason[n] = '\0';
        XLOG_EVERY(RWS_LOG_EVERY_MS, LOG_LEVEL_ERROR, MOD,
                   "remote write: the receiver refused a request (HTTP %d): %s", res->status,
                   n > 0 ? reason : "no reason given");
    }
    cb(res, cb_data);
}

/* sink_queue_send_fn: one POST, plain or signed. */
static int rws_send(void *ctx, const void *body, size_t len,
                    void (*cb)(const struct http_client_result *res, void *data), void *data)
{
    struct remote_write_sink *s = ctx;
    assert(s->sent_cb == NULL);
    s->sent_cb = cb;
    s->sent_data = data;
    int rc;
    if (s->aws != NULL) {
        static const struct sigv4_header signed_headers[] = {
            {"Content-Encoding", REMOTE_WRITE_ENCODING},
            {"X-Prometheus-Remote-Write-Version", REMOTE_WRITE_VERSION},
        };
        struct aws_request req = {
            .method = "POST",
            .path = s->path,
            .content_type = REMOTE_WRITE_CONTENT_TYPE,
            .headers = signed_headers,
            .header_count = sizeof signed_headers / sizeof signed_headers[0],
            .body = body,
            .body_len = len,
            .max_response = RWS_MAX_RESPONSE,
        };
        rc = aws_client_call(s->aws, &req, rws_on_sent, s);
    } else {
        struct http_client_request req = {
            .method = "POST",
            .url = s->url,
            .headers = s->headers,
            .header_count = s->header_count,
            .body = body,
            .body_len = len,
            .timeout_ms = RWS_TIMEOUT_MS,
            .max_response = RWS_MAX_RESPONSE,
        };
        rc = http_client_request(s->http, &req, rws_on_sent, s);
    }
    if (rc != 0)
        s->sent_cb = NULL;
    return rc;
}

struct remote_write_sink *remote_write_sink_create(const struct remote_write_sink_options *o,
                                                   char err[XRAY_ERR_LEN])
{
    if (o == NULL) {
        xray_err_set(err, "remote write: no options");
        return NULL;
    }
    if (rws_check(o, err) != 0)
        return NULL;
    struct remote_write_sink *s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto nomem;
    s->http = o->http;
    s->aws = o->aws;
    s->stats = o->stats;
    if (s->aws != NULL && rws_aws_path(o->url, aws_client_endpoint(s->aws), s->path, err) != 0) {
        free(s);
        return NULL;
    }
    int rc;
    s->url = strdup(o->url);
    s->auth = rws_auth_header(o, &rc);
    s->user_agent = o->user_agent != NULL ? rws_printf("User-Agent: %s", o->user_agent)
                                          : rws_printf("User-Agent: xrayd/%s", XRAYD_VERSION);
    if (s->url == NULL || rc != 0 || s->user_agent == NULL) {
        rws_free(s);
        goto nomem;
    }
    s->headers[s->header_count++] = "Content-Encoding: " REMOTE_WRITE_ENCODING;
    s->headers[s->header_count++] = "Content-Type: " REMOTE_WRITE_CONTENT_TYPE;
    s->headers[s->header_count++] = "X-Prometheus-Remote-Write-Version: " REMOTE_WRITE_VERSION;
    s->headers[s->header_count++] = s->user_agent;
    if (s->auth != NULL)
        s->headers[s->header_count++] = s->auth;

    struct sink_queue_options qo = {
        .loop = o->loop,
        .name = "remote write",
        .send = rws_send,
        .send_ctx = s,
        .max_bytes = o->queue_bytes,
        .stats = o->stats,
        .sink = STATS_SINK_REMOTE_WRITE,
    };
    s->queue = sink_queue_create(&qo);
    if (s->queue == NULL) {
        rws_free(s);
        goto nomem;
    }
    return s;
nomem:
    xray_err_set(err, "remote write: %s", xray_strerror(-ENOMEM));
    return NULL;
}

/* Worker thread. */
static void remote_write_sink_encode(void *sink, const struct registry_snapshot *snap)
{
    struct remote_write_sink *s = sink;
    if (s->body != NULL) { /* not shipped: the exporter never lets this happen */
        free(s->body);
        s->body = NULL;
        stats_add(&s->stats->sink_dropped[STATS_SINK_REMOTE_WRITE], 1);
    }
    size_t series = 0;
    for (size_t i = 0; i < snap->nfamilies; i++)
        series += snap->families[i].nseries + snap->families[i].nstale;
    if (series == 0)
        return; /* nothing to say: no request */
    struct buf b;
    buf_init(&b, REMOTE_WRITE_SINK_BODY_MAX);
    int rc = remote_write_encode(snap, snap->taken_epoch_ms, &b);
    if (rc != 0) {
        buf_free(&b);
        stats_add(&s->stats->sink_dropped[STATS_SINK_REMOTE_WRITE], 1);
        if (rc == -ENOSPC)
            XLOG_EVERY(RWS_LOG_EVERY_MS, LOG_LEVEL_ERROR, MOD,
                       "remote write: %zu series make a body over %u bytes: interval dropped",
                       series, REMOTE_WRITE_SINK_BODY_MAX);
        else
            XLOG_EVERY(RWS_LOG_EVERY_MS, LOG_LEVEL_ERROR, MOD,
                       "remote write: %zu series not encoded: %s: interval dropped", series,
                       xray_strerror(rc));
        return;
    }
    s->body = b.data;
    s->body_len = b.len;
}

/* Loop thread, after encode(). */
static void remote_write_sink_ship(void *sink)
{
    struct remote_write_sink *s = sink;
    if (s->body == NULL)
        return;
    void *body = s->body;
    s->body = NULL;
    /* The queue owns the body now and counts it when it drops it. */
    (void)sink_queue_push(s->queue, body, s->body_len);
}

const struct exporter_sink_ops remote_write_sink_ops = {
    .name = "remote_write",
    .take_stale = true,
    .keeps_snapshot = false,
    .encode = remote_write_sink_encode,
    .ship = remote_write_sink_ship,
};

size_t remote_write_sink_queued(const struct remote_write_sink *s)
{
    return sink_queue_length(s->queue);
}

static void rws_on_queue_closed(void *data)
{
    struct remote_write_sink *s = data;
    void (*cb)(void *) = s->close_cb;
    void *cb_data = s->close_data;
    rws_free(s);
    if (cb != NULL)
        cb(cb_data);
}

void remote_write_sink_close(struct remote_write_sink *s, void (*cb)(void *data), void *data)
{
    s->close_cb = cb;
    s->close_data = data;
    if (s->body != NULL) { /* encoded, never shipped: the exporter closed first */
        free(s->body);
        s->body = NULL;
        stats_add(&s->stats->sink_dropped[STATS_SINK_REMOTE_WRITE], 1);
    }
    sink_queue_close(s->queue, rws_on_queue_closed, s);
}
