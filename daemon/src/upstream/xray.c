/* SPDX-License-Identifier: Apache-2.0 */
/* One signed POST to the X-Ray API. A call is never sent unsigned: without
 * credentials it fails before anything leaves. Every failure is classified into
 * BackendConnectionErrors (stats->backend[]) here, once, and its text kept for
 * /healthz; callers only decide what to do with their payload. It does not retry. */
#include "upstream/xray.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "aws/endpoint.h"
#include "aws/sigv4.h"
#include "log.h"

#define XRAY_LOG_EVERY_MS 10000

struct xray {
    struct http_client *http;
    struct credentials_chain *creds;
    struct stats *stats;
    char *endpoint;
    char *region;
    char *user_agent;
    const char *base_path; /* into endpoint: "" or "/prefix" */
    unsigned timeout_ms;
    char host[ENDPOINT_HOST_MAX + 8];
    char last_error[XRAY_ERR_LEN];
    uint64_t failures;
    const char *creds_source; /* of the credentials last signed with, for the log */
};

/* One call: waiting for credentials, then for its response. */
struct xray_pending {
    struct xray *x;
    void (*cb)(const struct http_client_result *res, void *data);
    void *data;
    const void *body; /* borrowed until cb runs */
    size_t len;
    bool in_call; /* xray_call has not returned yet */
    int sync_rc;  /* what it returns when the call ended inside it */
    char path[XRAY_PATH_MAX];
};

/* The messages of a call that ended before it was sent; xray_result_error knows them
 * by address. */
static const char xray_no_credentials[] = "no AWS credentials";
static const char xray_not_sent[] = "not sent";

/* Copies printable ASCII from s (at most n bytes, stopping at a line break). */
static size_t xray_clean(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n' || ch == '\r' || ch == 0)
            break;
        out[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    out[o] = '\0';
    return o;
}

static void xray_fail(struct xray *x, enum stats_backend kind, const char *path, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

static void xray_fail(struct xray *x, enum stats_backend kind, const char *path, const char *fmt,
                      ...)
{
    size_t cap = sizeof(x->last_error);
    int n = snprintf(x->last_error, cap, "POST %s: ", path);
    size_t at = n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->last_error + at, cap - at, fmt, ap);
    va_end(ap);
    stats_add(&x->stats->backend[kind], 1);
    x->failures++;
    XLOG_EVERY(XRAY_LOG_EVERY_MS, LOG_LEVEL_WARN, "xray", "%s", x->last_error);
}

int xray_error_describe(int status, const char *body, size_t len, char *out, size_t cap)
{
    char type[96] = "", msg[XRAY_ERROR_TEXT_MAX + 1] = "";
    if (len > 0 && len <= XRAY_ERROR_BODY_MAX) {
        json_t *j = json_loadb(body, len, 0, NULL);
        if (json_is_object(j)) {
            const char *t = json_string_value(json_object_get(j, "__type"));
            const char *m = json_string_value(json_object_get(j, "message"));
            if (m == NULL)
                m = json_string_value(json_object_get(j, "Message"));
            if (t != NULL) {
                const char *hash = strrchr(t, '#'); /* "com.amazonaws.xray#Name" */
                t = hash != NULL ? hash + 1 : t;
                xray_clean(type, sizeof(type), t, strlen(t));
            }
            if (m != NULL)
                xray_clean(msg, sizeof(msg), m, strlen(m));
        }
        json_decref(j);
    }
    if (cap > 0)
        snprintf(out, cap, "HTTP %d%s%s%s%s", status, type[0] ? " " : "", type, msg[0] ? ": " : "",
                 msg);
    return strstr(type, "ExpiredToken") != NULL || strstr(type, "InvalidClientTokenId") != NULL ||
           strstr(type, "UnrecognizedClient") != NULL;
}

static void xray_on_response(const struct http_client_result *res, void *data)
{
    struct xray_pending *p = data;
    struct xray *x = p->x;
    char why[XRAY_ERR_LEN];

    switch (res->error) {
    case HTTP_CLIENT_OK:
        if (res->status >= 200 && res->status < 300) {
            if (x->failures > 0)
                XLOG_INFO("xray", "POST %s succeeded after %llu failed calls", p->path,
                          (unsigned long long)x->failures);
            x->failures = 0;
            break;
        }
        if (xray_error_describe(res->status, res->body, res->body_len, why, sizeof(why)))
            credentials_chain_invalidate(x->creds);
        xray_fail(x,
                  res->status >= 500   ? STATS_BACKEND_5XX
                  : res->status >= 400 ? STATS_BACKEND_4XX
                                       : STATS_BACKEND_OTHER,
                  p->path, "%s", why);
        break;
    case HTTP_CLIENT_TIMEOUT:
        xray_fail(x, STATS_BACKEND_TIMEOUT, p->path, "timeout: %s", res->message);
        break;
    case HTTP_CLIENT_REFUSED:
        xray_fail(x, STATS_BACKEND_REFUSED, p->path, "connection refused: %s", res->message);
        break;
    case HTTP_CLIENT_UNKNOWN_HOST:
        xray_fail(x, STATS_BACKEND_UNKNOWN_HOST, p->path, "unknown host: %s", res->message);
        break;
    case HTTP_CLIENT_CANCELED:
        break; /* shutting down: not the upstream's fault */
    case HTTP_CLIENT_TOO_BIG:
    case HTTP_CLIENT_OTHER:
        xray_fail(x, STATS_BACKEND_OTHER, p->path, "%s: %s", http_client_error_name(res->error),
                  res->message);
        break;
    }
    p->cb(res, p->data);
    free(p);
}

int xray_result_error(const struct http_client_result *res)
{
    if (res->message == xray_no_credentials)
        return XRAY_ENOCREDS;
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
        break;
    }
    return -EIO;
}

/* Signs p's call with creds and starts it. 0, or an error (counted and remembered)
 * when nothing was sent. */
static int xray_send(struct xray_pending *p, const struct aws_credentials *creds)
{
    struct xray *x = p->x;
    const char *path = p->path;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char err[XRAY_ERR_LEN] = "";
    if (creds->source != x->creds_source) {
        XLOG_INFO("xray", "signing with AWS credentials from %s", creds->source);
        x->creds_source = creds->source;
    }

    char stamp[32];
    snprintf(stamp, sizeof(stamp), "%lld.%09ld", (long long)ts.tv_sec, (long)ts.tv_nsec);
    char sign_path[ENDPOINT_URL_MAX + XRAY_PATH_MAX];
    snprintf(sign_path, sizeof(sign_path), "%s%s", x->base_path, path);
    const struct sigv4_header signed_headers[] = {
        {"content-type", "application/json"},
        {"x-amzn-xray-timestamp", stamp},
    };
    const struct sigv4_request sreq = {
        .method = "POST",
        .host = x->host,
        .path = sign_path,
        .headers = signed_headers,
        .header_count = 2,
        .body = p->body,
        .body_len = p->len,
        .region = x->region,
        .service = XRAY_SERVICE,
        .now_s = (int64_t)ts.tv_sec,
    };
    struct sigv4_signature sig;
    int rc = sigv4_sign(&sreq, creds, &sig, err);
    if (rc != 0) {
        xray_fail(x, STATS_BACKEND_OTHER, path, "signing failed: %s", err);
        return rc;
    }

    char h_host[sizeof(x->host) + 8], h_stamp[64], h_date[48],
        h_auth[sizeof(sig.authorization) + 24];
    char h_ua[XRAY_USER_AGENT_MAX + 16];
    snprintf(h_host, sizeof(h_host), "Host: %s", x->host);
    snprintf(h_stamp, sizeof(h_stamp), "X-Amzn-Xray-Timestamp: %s", stamp);
    snprintf(h_date, sizeof(h_date), "X-Amz-Date: %s", sig.amz_date);
    snprintf(h_auth, sizeof(h_auth), "Authorization: %s", sig.authorization);
    snprintf(h_ua, sizeof(h_ua), "User-Agent: %s", x->user_agent);
    const char *lines[8] = {h_host, "Content-Type: application/json", h_stamp, h_date, h_auth,
                            h_ua};
    size_t nlines = 6;
    char *h_token = NULL;
    if (creds->session_token != NULL && creds->session_token[0] != '\0') {
        size_t tl = strlen(creds->session_token) + sizeof("X-Amz-Security-Token: ");
        if ((h_token = malloc(tl)) == NULL) {
            xray_fail(x, STATS_BACKEND_OTHER, path, "not sent: out of memory");
            return -ENOMEM;
        }
        snprintf(h_token, tl, "X-Amz-Security-Token: %s", creds->session_token);
        lines[nlines++] = h_token;
    }

    char url[ENDPOINT_URL_MAX + XRAY_PATH_MAX];
    snprintf(url, sizeof(url), "%s%s", x->endpoint, path);
    const struct http_client_request hreq = {
        .method = "POST",
        .url = url,
        .headers = lines,
        .header_count = nlines,
        .body = p->body != NULL ? p->body : "",
        .body_len = p->len,
        .timeout_ms = x->timeout_ms,
    };
    rc = http_client_request(x->http, &hreq, xray_on_response, p);
    if (h_token != NULL) {
        /* The header list holds copies: wipe ours. */
        memset(h_token, 0, strlen(h_token));
        free(h_token);
    }
    if (rc != 0)
        xray_fail(x, STATS_BACKEND_OTHER, path, "not sent: %s", xray_strerror(rc));
    return rc;
}

/* A call that ended before anything was sent. Inside xray_call, it returns rc and cb
 * never runs; later (the credentials arrived after a wait), cb runs with a result
 * that says no response came, and xray_result_error() gives back rc. */
static void xray_abort(struct xray_pending *p, int rc)
{
    if (p->in_call) {
        p->sync_rc = rc;
        return;
    }
    struct http_client_result res = {
        .error = rc == -ECANCELED ? HTTP_CLIENT_CANCELED : HTTP_CLIENT_OTHER,
        .body = "",
        .retry_after_ms = -1,
        .message = rc == XRAY_ENOCREDS ? xray_no_credentials : xray_not_sent,
    };
    p->cb(&res, p->data);
    free(p);
}

static void xray_on_credentials(void *data, int rc, const struct aws_credentials *creds,
                                const char *err)
{
    struct xray_pending *p = data;
    if (rc == -ECANCELED) { /* shutting down: not the upstream's fault */
        xray_abort(p, rc);
        return;
    }
    if (rc != 0) {
        xray_fail(p->x, STATS_BACKEND_OTHER, p->path, "no credentials: %s",
                  err != NULL && err[0] ? err : xray_strerror(rc));
        xray_abort(p, XRAY_ENOCREDS);
        return;
    }
    if ((rc = xray_send(p, creds)) != 0)
        xray_abort(p, rc);
}

int xray_call(struct xray *x, const char *path, const void *body, size_t len,
              void (*cb)(const struct http_client_result *res, void *data), void *data)
{
    if (path == NULL || path[0] != '/' || strlen(path) >= XRAY_PATH_MAX ||
        strpbrk(path, "?# \r\n") != NULL || cb == NULL || (body == NULL && len > 0))
        return -EINVAL;
    struct xray_pending *p = malloc(sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    *p = (struct xray_pending){
        .x = x, .cb = cb, .data = data, .body = body, .len = len, .in_call = true};
    snprintf(p->path, sizeof(p->path), "%s", path);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    int rc = credentials_chain_fetch(x->creds, now_ms, xray_on_credentials, p);
    if (rc != 0) {
        xray_fail(x, STATS_BACKEND_OTHER, path, "not sent: %s", xray_strerror(rc));
        free(p);
        return rc;
    }
    /* From here on the credentials callback owns p, unless it failed right away. */
    p->in_call = false;
    rc = p->sync_rc;
    if (rc != 0)
        free(p);
    return rc;
}

struct xray *xray_create(const struct xray_options *opt)
{
    if (opt == NULL || opt->http == NULL || opt->creds == NULL || opt->stats == NULL ||
        opt->endpoint == NULL || opt->region == NULL || opt->region[0] == '\0') {
        XLOG_ERR("xray", "incomplete options: http client, credentials, stats, endpoint and "
                         "region are required");
        return NULL;
    }
    struct endpoint_url u;
    size_t elen = strlen(opt->endpoint);
    if (elen >= ENDPOINT_URL_MAX || endpoint_split(opt->endpoint, &u) != 0 ||
        strpbrk(u.path, "?#") != NULL || (elen > 0 && opt->endpoint[elen - 1] == '/')) {
        XLOG_ERR("xray", "endpoint is not http(s)://host[:port][/path] without a trailing '/'");
        return NULL;
    }
    struct xray *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    char ua[XRAY_USER_AGENT_MAX];
    if (opt->user_agent == NULL)
        xray_user_agent_default(ua);
    x->http = opt->http;
    x->creds = opt->creds;
    x->stats = opt->stats;
    x->timeout_ms = opt->timeout_ms;
    x->endpoint = strdup(opt->endpoint);
    x->region = strdup(opt->region);
    x->user_agent =
        strndup(opt->user_agent != NULL ? opt->user_agent : ua, XRAY_USER_AGENT_MAX - 1);
    if (x->endpoint == NULL || x->region == NULL || x->user_agent == NULL ||
        endpoint_host(x->endpoint, x->host, sizeof(x->host)) != 0) {
        xray_destroy(x);
        return NULL;
    }
    x->base_path = x->endpoint + (u.path - opt->endpoint);
    for (char *c = x->user_agent; *c; c++) /* it becomes a header line */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return x;
}

void xray_destroy(struct xray *x)
{
    if (x == NULL)
        return;
    free(x->endpoint);
    free(x->region);
    free(x->user_agent);
    free(x);
}

const char *xray_last_error(const struct xray *x)
{
    return x->last_error[0] != '\0' ? x->last_error : NULL;
}

uint64_t xray_consecutive_failures(const struct xray *x)
{
    return x->failures;
}

void xray_user_agent_default(char out[XRAY_USER_AGENT_MAX])
{
    /* Go's GOARCH names, as the reference daemon reports them. */
#if defined(__x86_64__)
    const char *arch = "amd64";
#elif defined(__aarch64__)
    const char *arch = "arm64";
#elif defined(__i386__)
    const char *arch = "386";
#elif defined(__arm__)
    const char *arch = "arm";
#else
    const char *arch = "unknown";
#endif
    const char *env = getenv("AWS_EXECUTION_ENV");
    char clean[96];
    if (env == NULL || env[0] == '\0')
        env = "UNKNOWN";
    xray_clean(clean, sizeof(clean), env, strlen(env));
    for (char *c = clean; *c; c++)
        if (*c == ' ')
            *c = '_';
    snprintf(out, XRAY_USER_AGENT_MAX, "xrayd/%s xray-agent/xray-daemon/%s exec-env/%s OS/linux-%s",
             XRAYD_VERSION, XRAYD_VERSION, clean, arch);
}
