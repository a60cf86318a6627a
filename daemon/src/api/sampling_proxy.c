/* SPDX-License-Identifier: Apache-2.0 */
/* The TCP side's signing proxy. Of what a client sends only the method, the path (which
 * must be on the allow-list) and the body count: xray_call sends its own fixed header
 * set, so the client's hop-by-hop headers and its Authorization, X-Amz-Date,
 * X-Amz-Security-Token and X-Amz-Content-Sha256 never travel. Never forwards unsigned,
 * never retries (SDK pollers ask again), never holds more than
 * SAMPLING_PROXY_MAX_IN_FLIGHT calls; a reply is relayed only whole, within the HTTP
 * client's response cap. */
#include "api/sampling_proxy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "http/server.h"
#include "log.h"
#include "util.h"

#define PROXY_MOD          "proxy"
#define PROXY_LOG_EVERY_MS 60000
#define PROXY_MESSAGE_MAX  3072 /* an error's message; the allow-list alone may be 2 KiB */
#define PROXY_BODY_MAX     8192 /* an error body: the message is ASCII, quotes doubled at most */
#define PROXY_ECHO_MAX     96   /* bytes of a refused path quoted back */
#define PROXY_SETTING      "--proxy-allow-paths (Xrayd.ProxyAllowPaths in cfg.yaml)"
/* X-Ray's JSON APIs answer application/json; the HTTP client does not report a reply's
 * own Content-Type, so this is what goes back with every relayed reply. */
#define PROXY_REPLY_CONTENT_TYPE "application/json"

struct sampling_proxy {
    struct xray *xray;
    struct sampling_proxy_paths allow;
    char allow_text[SAMPLING_PROXY_MAX_PATHS * XRAY_PATH_MAX]; /* "/a,/b": for messages */
    struct sampling_proxy_stats stats;
};

/* One forward waiting for X-Ray. */
struct sp_call {
    struct sampling_proxy *p;
    struct http_response *res;
    const char *path; /* the allow-list's copy */
};

static const char *const sp_sampling_paths[] = {"/GetSamplingRules", "/SamplingTargets",
                                                "/SamplingStatisticSummaries"};

/* ---- the allow-list ---- */

static bool sp_path_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
           c == '_' || c == '.' || c == '~' || c == '-';
}

static int sp_bad(char err[XRAY_ERR_LEN], const char *s, size_t n, const char *why)
{
    if (err != NULL)
        snprintf(err, XRAY_ERR_LEN, "\"%.*s\": %s", (int)(n > 64 ? 64 : n), s, why);
    return XRAY_ECONFIG;
}

int sampling_proxy_parse_paths(const char *list, struct sampling_proxy_paths *out,
                               char err[XRAY_ERR_LEN])
{
    memset(out, 0, sizeof(*out));
    if (list == NULL || list[strspn(list, " \t")] == '\0')
        list = SAMPLING_PROXY_DEFAULT_PATHS; /* an empty value takes the default */
    const char *at = list;
    while (*at != '\0') {
        size_t n = strcspn(at, ",");
        const char *s = at, *e = at + n;
        at = *e == ',' ? e + 1 : e;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t len = (size_t)(e - s);
        if (len == 0)
            continue;
        if (s[0] != '/')
            return sp_bad(err, s, len, "a path starts with '/'");
        if (len >= XRAY_PATH_MAX)
            return sp_bad(err, s, len, "a path is shorter than 128 bytes");
        for (size_t i = 0; i < len; i++)
            if (!sp_path_char(s[i]))
                return sp_bad(err, s, len,
                              "only letters, digits and / _ . ~ - may appear in a path");
        bool dup = false;
        for (size_t i = 0; i < out->count && !dup; i++)
            dup = strlen(out->path[i]) == len && memcmp(out->path[i], s, len) == 0;
        if (dup)
            continue;
        if (out->count == SAMPLING_PROXY_MAX_PATHS) {
            if (err != NULL)
                snprintf(err, XRAY_ERR_LEN, "more than %d paths", SAMPLING_PROXY_MAX_PATHS);
            return XRAY_ECONFIG;
        }
        memcpy(out->path[out->count], s, len);
        out->path[out->count][len] = '\0';
        out->count++;
    }
    if (out->count == 0) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "the list names no path");
        return XRAY_ECONFIG;
    }
    return 0;
}

/* The allow-list's copy of req's path, or NULL. */
static const char *sp_allowed(const struct sampling_proxy *p, const struct http_request *req)
{
    for (size_t i = 0; i < p->allow.count; i++)
        if (strlen(p->allow.path[i]) == req->path_len &&
            memcmp(p->allow.path[i], req->path, req->path_len) == 0)
            return p->allow.path[i];
    return NULL;
}

/* ---- answers of our own ---- */

/* Sends status with the AWS JSON error shape ({"__type", "message"} and
 * x-amzn-ErrorType), so the SDKs report type and message. The message is made
 * printable ASCII: it may quote a client's path or a transport error. */
static void sp_error(struct http_response *res, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void sp_error(struct http_response *res, int status, const char *type, const char *fmt, ...)
{
    char msg[PROXY_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *c = msg; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    struct buf b;
    buf_init(&b, PROXY_BODY_MAX);
    int rc = buf_appendf(&b, "{\"__type\":\"%s\",\"message\":", type);
    if (rc == 0)
        rc = buf_append_json_string(&b, msg, strlen(msg));
    if (rc == 0)
        rc = buf_append_str(&b, "}");
    http_response_header(res, "x-amzn-ErrorType", type);
    if (rc == 0)
        http_response_send(res, status, "application/json", b.data, b.len);
    else
        http_response_send(res, status, NULL, NULL, 0);
    buf_free(&b);
}

/* Up to PROXY_ECHO_MAX bytes of the request's path, printable ASCII, for a message. */
static void sp_echo_path(const struct http_request *req, char out[PROXY_ECHO_MAX + 4])
{
    size_t n = req->path_len > PROXY_ECHO_MAX ? PROXY_ECHO_MAX : req->path_len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)req->path[i];
        out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    strcpy(out + n, req->path_len > n ? "..." : "");
}

static void sp_busy(struct sampling_proxy *p, struct http_response *res, const char *why)
{
    p->stats.busy++;
    http_response_header(res, "Retry-After", "1");
    sp_error(res, 503, "ServiceUnavailableException", "xrayd cannot forward this call now: %s",
             why);
}

static void sp_shutting_down(struct http_response *res)
{
    sp_error(res, 503, "ServiceUnavailableException",
             "xrayd is shutting down: the call was not forwarded to X-Ray");
}

static void sp_no_credentials(struct sampling_proxy *p, struct http_response *res, const char *path)
{
    const char *why = xray_last_error(p->xray);
    p->stats.no_credentials++;
    sp_error(res, 503, "NoCredentialsException",
             "xrayd has no AWS credentials to sign POST %s and never forwards a call "
             "unsigned: %s",
             path, why != NULL ? why : xray_strerror(XRAY_ENOCREDS));
}

/* ---- forwarding ---- */

static void sp_on_reply(const struct http_client_result *r, void *data)
{
    struct sp_call *call = data;
    struct sampling_proxy *p = call->p;
    struct http_response *res = call->res;
    const char *path = call->path;
    free(call);
    p->stats.in_flight--;
    /* Credentials that had to be loaded first may turn out not to exist. */
    if (r->error != HTTP_CLIENT_OK && xray_result_error(r) == XRAY_ENOCREDS) {
        sp_no_credentials(p, res, path);
        return;
    }
    switch (r->error) {
    case HTTP_CLIENT_OK:
        p->stats.answered++;
        if (r->retry_after_ms >= 0) {
            char v[24];
            snprintf(v, sizeof(v), "%lld", (long long)((r->retry_after_ms + 999) / 1000));
            http_response_header(res, "Retry-After", v);
        }
        http_response_send(res, r->status, PROXY_REPLY_CONTENT_TYPE, r->body, r->body_len);
        return;
    case HTTP_CLIENT_TIMEOUT:
        p->stats.timeouts++;
        sp_error(res, 504, "GatewayTimeoutException",
                 "X-Ray did not answer in time (--request-timeout): %s", r->message);
        return;
    case HTTP_CLIENT_CANCELED:
        sp_shutting_down(res);
        return;
    case HTTP_CLIENT_TOO_BIG:
        p->stats.upstream_failed++;
        sp_error(res, 502, "BadGatewayException",
                 "X-Ray's reply is larger than the %u bytes xrayd relays",
                 (unsigned)HTTP_CLIENT_MAX_RESPONSE);
        return;
    case HTTP_CLIENT_REFUSED:
    case HTTP_CLIENT_UNKNOWN_HOST:
    case HTTP_CLIENT_OTHER:
        break;
    }
    p->stats.upstream_failed++;
    sp_error(res, 502, "BadGatewayException", "xrayd could not reach X-Ray: %s: %s",
             http_client_error_name(r->error), r->message);
}

/* xray_call refused the call before anything was sent. */
static void sp_not_sent(struct sampling_proxy *p, struct http_response *res, const char *path,
                        int rc)
{
    const char *why = xray_last_error(p->xray);
    switch (rc) {
    case XRAY_ENOCREDS:
        sp_no_credentials(p, res, path);
        return;
    case XRAY_ECLOSED:
        sp_shutting_down(res);
        return;
    case XRAY_EFULL:
    case -ENOMEM:
        sp_busy(p, res, "too many upstream calls in flight");
        return;
    default:
        sp_error(res, 500, "InternalFailure", "xrayd could not sign POST %s: %s", path,
                 why != NULL ? why : xray_strerror(rc));
        return;
    }
}

static void sp_forbidden(struct sampling_proxy *p, const struct http_request *req,
                         struct http_response *res)
{
    char path[PROXY_ECHO_MAX + 4];
    sp_echo_path(req, path);
    p->stats.forbidden++;
    XLOG_EVERY(PROXY_LOG_EVERY_MS, LOG_LEVEL_INFO, PROXY_MOD,
               "%s %s from %s refused: not a POST on " PROXY_SETTING, req->method, path, req->peer);
    sp_error(res, 403, "AccessDeniedException",
             "xrayd signs and forwards to X-Ray only POST requests on the paths of " PROXY_SETTING
             ", now %s; %s %s is not one of them",
             p->allow_text, req->method, path);
}

static void sp_handle(struct http_request *req, struct http_response *res, void *data)
{
    struct sampling_proxy *p = data;
    const char *path = sp_allowed(p, req);
    if (path == NULL || strcmp(req->method, "POST") != 0) {
        sp_forbidden(p, req, res);
        return;
    }
    /* xray_call signs a path without a query; X-Ray's JSON APIs take none. */
    if (req->query_len > 0) {
        p->stats.bad_request++;
        sp_error(res, 400, "InvalidRequestException",
                 "xrayd forwards no query string: POST %s takes its input in the body", path);
        return;
    }
    /* The body travels as application/json with none of the client's headers: an encoded
     * body would reach X-Ray as garbage. */
    const char *enc = http_request_header(req, "Content-Encoding");
    if (enc != NULL && strcasecmp(enc, "identity") != 0) {
        p->stats.bad_request++;
        sp_error(res, 415, "InvalidRequestException",
                 "xrayd forwards only unencoded bodies (no Content-Encoding)");
        return;
    }
    if (p->stats.in_flight >= SAMPLING_PROXY_MAX_IN_FLIGHT) {
        sp_busy(p, res, "too many sampling calls waiting for X-Ray");
        return;
    }
    struct sp_call *call = malloc(sizeof(*call));
    if (call == NULL) {
        sp_busy(p, res, "out of memory");
        return;
    }
    call->p = p;
    call->res = res;
    call->path = path;
    /* The body is the server's until the response is sent, so it outlives the call. An
     * empty body (ADOT's GetSamplingRules) goes as it came, as the reference daemon
     * forwards it. */
    int rc = xray_call(p->xray, path, req->body, req->body_len, sp_on_reply, call);
    if (rc != 0) {
        free(call);
        sp_not_sent(p, res, path, rc);
        return;
    }
    p->stats.forwarded++;
    p->stats.in_flight++;
}

int sampling_proxy_register(struct http_server *s, struct xray *x, const char *allow_paths,
                            struct sampling_proxy **out, char err[XRAY_ERR_LEN])
{
    struct sampling_proxy_paths paths;
    char why[XRAY_ERR_LEN] = "";
    if (s == NULL || x == NULL)
        return -EINVAL;
    int rc = sampling_proxy_parse_paths(allow_paths, &paths, why);
    if (rc != 0) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "--proxy-allow-paths: %s", why);
        return rc;
    }
    struct sampling_proxy *p = http_server_alloc(s, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->xray = x;
    p->allow = paths;
    size_t used = 0;
    for (size_t i = 0; i < paths.count; i++)
        used += (size_t)snprintf(p->allow_text + used, sizeof(p->allow_text) - used, "%s%s",
                                 i > 0 ? "," : "", paths.path[i]);
    rc = http_server_route(s, HTTP_ROLE_TCP, "*", "/*", sp_handle, p);
    if (rc != 0) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "cannot add the TCP side's route: %s", xray_strerror(rc));
        return rc;
    }
    XLOG_INFO(PROXY_MOD, "TCP side signs and forwards POST %s to X-Ray", p->allow_text);
    if (out != NULL)
        *out = p;
    return 0;
}

/* ---- local mode ---- */

static void sp_local(struct http_request *req, struct http_response *res, void *data)
{
    (void)data;
    sp_error(res, 503, "ServiceUnavailableException",
             "xrayd has no sampling upstream in local mode: %s is not answered, so SDKs keep "
             "their local sampling rules",
             req->path);
}

int sampling_proxy_register_local(struct http_server *s)
{
    for (size_t i = 0; i < ARRAY_SIZE(sp_sampling_paths); i++) {
        int rc = http_server_route(s, HTTP_ROLE_TCP, "POST", sp_sampling_paths[i], sp_local, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void sampling_proxy_get_stats(const struct sampling_proxy *p, struct sampling_proxy_stats *out)
{
    *out = p->stats;
}
