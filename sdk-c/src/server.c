/* SPDX-License-Identifier: Apache-2.0 */
/* The server-side helper: one incoming HTTP request becomes a segment. It reads the
 * X-Amzn-Trace-Id header (a malformed one counts as absent, never failing the
 * request), passes the request's host, method and URL path to the sampling rules
 * (an explicit Sampled=1|0 wins: segment.c honours the header before asking the
 * sampler), records http.request, and later the response. It does no I/O. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* Ours: the URL path handed to the sampling rules (longer ones are cut; the rules'
 * URLPath pattern is at most 128 characters anyway) and the URL recorded. */
#define SERVER_PATH_MAX 1024
#define SERVER_URL_MAX  4096

/* The path of url ("/a/b" of "http://h/a/b?q" or "/a/b?q") into out; NULL when url
 * has none. */
static const char *server_path(const char *url, char out[SERVER_PATH_MAX])
{
    if (url == NULL)
        return NULL;
    const char *p = url;
    const char *scheme = strstr(url, "://");
    if (scheme != NULL && (size_t)(scheme - url) < 16) {
        p = strchr(scheme + 3, '/');
        if (p == NULL)
            p = "/";
    }
    size_t n = strcspn(p, "?#");
    if (n >= SERVER_PATH_MAX)
        n = SERVER_PATH_MAX - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

/* NULL for an empty string: an empty header is recorded as absent. */
static const char *server_opt(const char *s)
{
    return s != NULL && s[0] ? s : NULL;
}

/* The first address of an X-Forwarded-For value, trimmed, into out. */
static const char *server_xff(const char *xff, char *out, size_t cap)
{
    while (*xff == ' ' || *xff == '\t')
        xff++;
    size_t n = strcspn(xff, ",");
    while (n > 0 && (xff[n - 1] == ' ' || xff[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= cap)
        return NULL;
    memcpy(out, xff, n);
    out[n] = '\0';
    return out;
}

struct xray_segment *xray_server_begin(struct xray_recorder *rec, const char *name,
                                       const struct xray_server_request *req, bool make_current)
{
    static const struct xray_server_request none;
    if (rec == NULL || !rec->enabled)
        return NULL;
    if (req == NULL)
        req = &none;
    struct xray_trace_header h;
    bool have_header = false;
    if (req->trace_header != NULL) {
        size_t len = req->trace_header_len ? req->trace_header_len : strlen(req->trace_header);
        have_header = xray_header_parse(req->trace_header, len, &h) == 0;
    }
    char path[SERVER_PATH_MAX];
    struct xray_segment_options opts = {
        .name = name,
        .header = have_header ? &h : NULL,
        .sampled = XRAY_SAMPLED_UNKNOWN,
        .host = server_opt(req->host),
        .http_method = server_opt(req->method),
        .url_path = server_path(req->url, path),
    };
    struct xray_segment *seg =
        make_current ? xray_context_begin_segment(rec, &opts) : xray_segment_begin(rec, &opts);
    if (seg == NULL || !xray_segment_is_sampled(seg))
        return seg;

    /* A request target ("/p?q") is recorded as a full URL, as the other SDKs do. */
    char url[SERVER_URL_MAX];
    const char *full = req->url;
    if (req->url != NULL && req->url[0] == '/' && req->host != NULL && req->host[0]) {
        int n = snprintf(url, sizeof(url), "http://%s%s", req->host, req->url);
        if (n > 0 && (size_t)n < sizeof(url))
            full = url;
    }
    char xff[64];
    const char *client_ip = req->client_ip;
    bool from_xff = false;
    if (req->x_forwarded_for != NULL && server_xff(req->x_forwarded_for, xff, sizeof(xff))) {
        client_ip = xff;
        from_xff = true;
    }
    struct xray_http_request hr = {
        .method = server_opt(req->method),
        .url = server_opt(full),
        .user_agent = server_opt(req->user_agent),
        .client_ip = server_opt(client_ip),
        .x_forwarded_for = from_xff,
    };
    xray_segment_set_http_request(seg, &hr);
    return seg;
}

int xray_server_response_header(const struct xray_segment *seg, char *buf, size_t cap)
{
    return xray_header_response(seg, buf, cap);
}

void xray_server_end(struct xray_segment *seg, int status, int64_t content_length)
{
    if (seg == NULL)
        return;
    if (status > 0)
        xray_segment_set_http_response(seg, status, content_length);
    xray__context_forget(seg);
    xray_segment_end(seg);
}
