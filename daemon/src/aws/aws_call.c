/* SPDX-License-Identifier: Apache-2.0 */
/* One SigV4-signed call to an AWS service: wait for the chain's credentials, sign,
 * send over the shared HTTP client. A call is never sent unsigned: without credentials
 * it ends before anything leaves. It neither counts nor retries; the one thing it does
 * on its own is drop the chain's cached credentials when the service says they were
 * refused, since every caller would have to do it the same way. */
#include "aws/aws_call.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "log.h"

#define MOD "aws"

struct aws_client {
    struct http_client *http;
    struct credentials_chain *creds;
    char *endpoint;
    char *region;
    char *service;
    char *user_agent;      /* NULL: none sent */
    const char *base_path; /* into endpoint: "" or "/prefix" */
    unsigned timeout_ms;
    char host[ENDPOINT_HOST_MAX + 8];
    const char *creds_source; /* of the credentials last signed with, for the log */
    char not_sent[XRAY_ERR_LEN];
};

/* One call: waiting for credentials, then for its response. The request's strings are
 * copied behind it, since the wait may outlast the caller's stack. */
struct aws_pending {
    struct aws_client *c;
    void (*cb)(const struct http_client_result *res, void *data);
    void *data;
    const void *body; /* borrowed until cb runs */
    size_t len;
    size_t max_response;
    bool in_call; /* aws_client_call has not returned yet */
    int sync_rc;  /* what it returns when the call ended inside it */
    const char *method;
    const char *path;
    const char *content_type; /* NULL: none */
    size_t nheaders;
    struct sigv4_header headers[AWS_CALL_HEADERS_MAX];
    char why[XRAY_ERR_LEN]; /* res->message of a call that ended unsent */
    char strings[];
};

/* Copies printable ASCII from s (at most n bytes, stopping at a line break). */
size_t aws_client_printable(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n' || ch == '\r' || ch == 0)
            break;
        out[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    out[o] = '\0';
    return o;
}

static void aws_why(struct aws_pending *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void aws_why(struct aws_pending *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof(p->why), fmt, ap);
    va_end(ap);
}

/* The two members an AWS JSON error carries, cleaned; either may come back "". */
static void aws_error_fields(const char *body, size_t len, char *type, size_t tcap, char *msg,
                             size_t mcap)
{
    if (tcap > 0)
        type[0] = '\0';
    if (mcap > 0)
        msg[0] = '\0';
    if (body == NULL || len == 0 || len > AWS_CALL_ERROR_BODY_MAX)
        return;
    json_t *j = json_loadb(body, len, 0, NULL);
    if (json_is_object(j)) {
        const char *t = json_string_value(json_object_get(j, "__type"));
        const char *m = json_string_value(json_object_get(j, "message"));
        if (m == NULL)
            m = json_string_value(json_object_get(j, "Message"));
        if (t != NULL && tcap > 0) {
            const char *hash = strrchr(t, '#'); /* "com.amazonaws.xray#Name" */
            t = hash != NULL ? hash + 1 : t;
            aws_client_printable(type, tcap, t, strlen(t));
        }
        if (m != NULL && mcap > 0)
            aws_client_printable(msg, mcap, m, strlen(m));
    }
    json_decref(j);
}

void aws_client_error_type(const char *body, size_t len, char *out, size_t cap)
{
    aws_error_fields(body, len, out, cap, NULL, 0);
}

int aws_client_error_describe(int status, const char *body, size_t len, char *out, size_t cap)
{
    char type[96], msg[AWS_CALL_ERROR_TEXT_MAX + 1];
    aws_error_fields(body, len, type, sizeof(type), msg, sizeof(msg));
    if (cap > 0)
        snprintf(out, cap, "HTTP %d%s%s%s%s", status, type[0] ? " " : "", type, msg[0] ? ": " : "",
                 msg);
    return strstr(type, "ExpiredToken") != NULL || strstr(type, "InvalidClientTokenId") != NULL ||
           strstr(type, "UnrecognizedClient") != NULL;
}

int aws_client_result_error(const struct http_client_result *res)
{
    switch (res->error) {
    case HTTP_CLIENT_OK:
        return res->status >= 200 && res->status < 300 ? 0 : XRAY_EUPSTREAM;
    case HTTP_CLIENT_TIMEOUT:
        return XRAY_ETIMEOUT;
    case HTTP_CLIENT_REFUSED:
        return -ECONNREFUSED;
    case HTTP_CLIENT_UNKNOWN_HOST:
        return -EHOSTUNREACH;
    case HTTP_CLIENT_TOO_BIG:
        return XRAY_ETOOBIG;
    case HTTP_CLIENT_CANCELED:
        return -ECANCELED;
    case HTTP_CLIENT_OTHER:
        /* A call that ended unsent says so in its message (aws_abort); the HTTP
         * client's own messages are curl's, which never start this way. */
        if (res->status == 0 && res->message != NULL &&
            strncmp(res->message, AWS_CALL_NO_CREDENTIALS, sizeof(AWS_CALL_NO_CREDENTIALS) - 1) ==
                0)
            return XRAY_ENOCREDS;
        break;
    }
    return -EIO;
}

static void aws_on_response(const struct http_client_result *res, void *data)
{
    struct aws_pending *p = data;
    if (res->error == HTTP_CLIENT_OK && res->status >= 400 && res->status < 500 &&
        aws_client_error_describe(res->status, res->body, res->body_len, NULL, 0))
        credentials_chain_invalidate(p->c->creds);
    p->cb(res, p->data);
    free(p);
}

/* A call that ended before it was sent. Inside aws_client_call it returns rc and cb
 * never runs; later (the credentials came after a wait), cb runs with a result that
 * says no response came, and p->why as its message. */
static void aws_abort(struct aws_pending *p, int rc)
{
    if (p->in_call) {
        snprintf(p->c->not_sent, sizeof(p->c->not_sent), "%s", p->why);
        p->sync_rc = rc;
        return;
    }
    struct http_client_result res = {
        .error = rc == -ECANCELED ? HTTP_CLIENT_CANCELED : HTTP_CLIENT_OTHER,
        .body = "",
        .retry_after_ms = -1,
        .message = p->why,
    };
    p->cb(&res, p->data);
    free(p);
}

/* A header line "Name: value" into a fresh allocation (the secret-bearing token line is
 * wiped by the caller). NULL on ENOMEM. */
static char *aws_line(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *l = malloc(n);
    if (l != NULL)
        snprintf(l, n, "%s: %s", name, value);
    return l;
}

/* Signs p's call with creds and starts it. 0, or an error (p->why says it) when
 * nothing was sent. */
static int aws_send(struct aws_pending *p, const struct aws_credentials *creds)
{
    struct aws_client *c = p->c;
    char err[XRAY_ERR_LEN] = "";
    if (creds->source != c->creds_source) {
        XLOG_INFO(MOD, "%s: signing with AWS credentials from %s", c->service, creds->source);
        c->creds_source = creds->source;
    }
    struct sigv4_header sh[AWS_CALL_HEADERS_MAX + 1];
    size_t nsh = 0;
    if (p->content_type != NULL)
        sh[nsh++] = (struct sigv4_header){"content-type", p->content_type};
    for (size_t i = 0; i < p->nheaders; i++)
        sh[nsh++] = p->headers[i];

    char sign_path[ENDPOINT_URL_MAX + AWS_CALL_PATH_MAX];
    snprintf(sign_path, sizeof(sign_path), "%s%s", c->base_path, p->path);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const struct sigv4_request sreq = {
        .method = p->method,
        .host = c->host,
        .path = sign_path,
        .headers = sh,
        .header_count = nsh,
        .body = p->body,
        .body_len = p->len,
        .region = c->region,
        .service = c->service,
        .now_s = (int64_t)ts.tv_sec,
    };
    struct sigv4_signature sig;
    int rc = sigv4_sign(&sreq, creds, &sig, err);
    if (rc != 0) {
        aws_why(p, "signing failed: %s", err);
        return rc;
    }

    /* Host, content type, the extra headers, date, authorization, agent, token. */
    const char *lines[AWS_CALL_HEADERS_MAX + 8];
    char *owned[AWS_CALL_HEADERS_MAX + 8];
    size_t nlines = 0, nowned = 0;
    char h_host[sizeof(c->host) + 8], h_date[48], h_auth[sizeof(sig.authorization) + 24];
    snprintf(h_host, sizeof(h_host), "Host: %s", c->host);
    snprintf(h_date, sizeof(h_date), "X-Amz-Date: %s", sig.amz_date);
    snprintf(h_auth, sizeof(h_auth), "Authorization: %s", sig.authorization);
    lines[nlines++] = h_host;
    rc = 0;
    if (p->content_type != NULL) {
        if ((owned[nowned] = aws_line("Content-Type", p->content_type)) == NULL)
            rc = -ENOMEM;
        else
            lines[nlines++] = owned[nowned++];
    }
    for (size_t i = 0; rc == 0 && i < p->nheaders; i++) {
        if ((owned[nowned] = aws_line(p->headers[i].name, p->headers[i].value)) == NULL)
            rc = -ENOMEM;
        else
            lines[nlines++] = owned[nowned++];
    }
    lines[nlines++] = h_date;
    lines[nlines++] = h_auth;
    if (rc == 0 && c->user_agent != NULL) {
        if ((owned[nowned] = aws_line("User-Agent", c->user_agent)) == NULL)
            rc = -ENOMEM;
        else
            lines[nlines++] = owned[nowned++];
    }
    char *h_token = NULL;
    if (rc == 0 && creds->session_token != NULL && creds->session_token[0] != '\0') {
        if ((h_token = aws_line("X-Amz-Security-Token", creds->session_token)) == NULL)
            rc = -ENOMEM;
        else
            lines[nlines++] = h_token;
    }

    if (rc == 0) {
        char url[ENDPOINT_URL_MAX + AWS_CALL_PATH_MAX];
        snprintf(url, sizeof(url), "%s%s", c->endpoint, p->path);
        const struct http_client_request hreq = {
            .method = p->method,
            .url = url,
            .headers = lines,
            .header_count = nlines,
            .body = p->body != NULL ? p->body : "",
            .body_len = p->len,
            .timeout_ms = c->timeout_ms,
            .max_response = p->max_response,
        };
        rc = http_client_request(c->http, &hreq, aws_on_response, p);
    }
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    if (h_token != NULL) {
        /* The HTTP client holds copies: wipe ours. */
        memset(h_token, 0, strlen(h_token));
        free(h_token);
    }
    if (rc != 0)
        aws_why(p, "not sent: %s", xray_strerror(rc));
    return rc;
}

static void aws_on_credentials(void *data, int rc, const struct aws_credentials *creds,
                               const char *err)
{
    struct aws_pending *p = data;
    if (rc == -ECANCELED) { /* shutting down */
        aws_why(p, "not sent: shutting down");
        aws_abort(p, rc);
        return;
    }
    if (rc != 0) {
        aws_why(p, AWS_CALL_NO_CREDENTIALS ": %s", err != NULL && err[0] ? err : xray_strerror(rc));
        aws_abort(p, XRAY_ENOCREDS);
        return;
    }
    if ((rc = aws_send(p, creds)) != 0)
        aws_abort(p, rc);
}

/* A header name or value that would break the request line structure. */
static bool aws_bad_text(const char *s, bool name)
{
    if (s == NULL || (name && s[0] == '\0'))
        return true;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f || (name && (*c == ':' || *c == ' ')))
            return true;
    return false;
}

static bool aws_request_ok(const struct aws_request *req)
{
    if (req == NULL || aws_bad_text(req->method, true) || strlen(req->method) > 16 ||
        req->path == NULL || req->path[0] != '/' || strlen(req->path) >= AWS_CALL_PATH_MAX ||
        strpbrk(req->path, "?# \r\n") != NULL || (req->body == NULL && req->body_len > 0) ||
        req->header_count > AWS_CALL_HEADERS_MAX ||
        (req->header_count > 0 && req->headers == NULL) ||
        (req->content_type != NULL && aws_bad_text(req->content_type, false)))
        return false;
    for (size_t i = 0; i < req->header_count; i++)
        if (aws_bad_text(req->headers[i].name, true) || aws_bad_text(req->headers[i].value, false))
            return false;
    return true;
}

/* Copies s into the pending's string area at *at. */
static const char *aws_keep(struct aws_pending *p, size_t *at, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = p->strings + *at;
    memcpy(d, s, n);
    *at += n;
    return d;
}

int aws_client_call(struct aws_client *c, const struct aws_request *req,
                    void (*cb)(const struct http_client_result *res, void *data), void *data)
{
    if (c == NULL)
        return -EINVAL;
    if (cb == NULL || !aws_request_ok(req)) {
        snprintf(c->not_sent, sizeof(c->not_sent), "not sent: bad request");
        return -EINVAL;
    }
    size_t need = strlen(req->method) + strlen(req->path) + 2;
    if (req->content_type != NULL)
        need += strlen(req->content_type) + 1;
    for (size_t i = 0; i < req->header_count; i++)
        need += strlen(req->headers[i].name) + strlen(req->headers[i].value) + 2;
    struct aws_pending *p = malloc(sizeof(*p) + need);
    if (p == NULL) {
        snprintf(c->not_sent, sizeof(c->not_sent), "not sent: out of memory");
        return -ENOMEM;
    }
    *p = (struct aws_pending){.c = c,
                              .cb = cb,
                              .data = data,
                              .body = req->body,
                              .len = req->body_len,
                              .max_response = req->max_response,
                              .in_call = true,
                              .nheaders = req->header_count};
    size_t at = 0;
    p->method = aws_keep(p, &at, req->method);
    p->path = aws_keep(p, &at, req->path);
    if (req->content_type != NULL)
        p->content_type = aws_keep(p, &at, req->content_type);
    for (size_t i = 0; i < req->header_count; i++) {
        p->headers[i].name = aws_keep(p, &at, req->headers[i].name);
        p->headers[i].value = aws_keep(p, &at, req->headers[i].value);
    }

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    int rc = credentials_chain_fetch(c->creds, now_ms, aws_on_credentials, p);
    if (rc != 0) {
        snprintf(c->not_sent, sizeof(c->not_sent), "not sent: %s", xray_strerror(rc));
        free(p);
        return rc;
    }
    /* From here on the credentials callback owns p, unless it ended it right away. */
    p->in_call = false;
    rc = p->sync_rc;
    if (rc != 0)
        free(p);
    return rc;
}

struct aws_client *aws_client_create(const struct aws_client_options *o, char err[XRAY_ERR_LEN])
{
    if (o == NULL || o->http == NULL || o->creds == NULL || o->endpoint == NULL) {
        xray_err_set(err, "incomplete options: http client, credentials and endpoint are "
                          "required");
        return NULL;
    }
    if (o->region == NULL || o->region[0] == '\0' || o->service == NULL || o->service[0] == '\0') {
        xray_err_set(err, "a region and a service name are required");
        return NULL;
    }
    struct endpoint_url u;
    size_t elen = strlen(o->endpoint);
    if (elen >= ENDPOINT_URL_MAX || endpoint_split(o->endpoint, &u) != 0 ||
        strpbrk(u.path, "?#") != NULL || (elen > 0 && o->endpoint[elen - 1] == '/')) {
        xray_err_set(err,
                     "%s endpoint is not http(s)://host[:port][/path] without a trailing "
                     "'/'",
                     o->service);
        return NULL;
    }
    struct aws_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        xray_err_set(err, "out of memory");
        return NULL;
    }
    c->http = o->http;
    c->creds = o->creds;
    c->timeout_ms = o->timeout_ms;
    c->endpoint = strdup(o->endpoint);
    c->region = strdup(o->region);
    c->service = strdup(o->service);
    if (o->user_agent != NULL)
        c->user_agent = strndup(o->user_agent, AWS_CALL_USER_AGENT_MAX - 1);
    if (c->endpoint == NULL || c->region == NULL || c->service == NULL ||
        (o->user_agent != NULL && c->user_agent == NULL) ||
        endpoint_host(c->endpoint, c->host, sizeof(c->host)) != 0) {
        xray_err_set(err, "out of memory or a host name too long");
        aws_client_destroy(c);
        return NULL;
    }
    c->base_path = c->endpoint + (u.path - o->endpoint);
    for (char *ch = c->user_agent; ch != NULL && *ch; ch++) /* it becomes a header line */
        if ((unsigned char)*ch < 0x20 || *ch == 0x7f)
            *ch = '?';
    return c;
}

void aws_client_destroy(struct aws_client *c)
{
    if (c == NULL)
        return;
    free(c->endpoint);
    free(c->region);
    free(c->service);
    free(c->user_agent);
    free(c);
}

const char *aws_client_not_sent(const struct aws_client *c)
{
    return c->not_sent;
}

const char *aws_client_service(const struct aws_client *c)
{
    return c->service;
}

const char *aws_client_endpoint(const struct aws_client *c)
{
    return c->endpoint;
}
