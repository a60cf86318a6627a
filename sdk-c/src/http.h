/* SPDX-License-Identifier: Apache-2.0 */
/* libxray's tiny HTTP/1.1 client for its background threads: the sampler's calls to
 * the daemon's TCP address and the plugins' metadata lookups. One request per
 * connection (Connection: close), plain HTTP only, a blocking exchange bounded by a
 * deadline. Never called on a request path: it may block up to timeout_ms. */
#ifndef XRAY_SDK_HTTP_H
#define XRAY_SDK_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define XRAY__HTTP_HOST_MAX 256
#define XRAY__HTTP_PATH_MAX 1024

struct xray__http_request {
    const char *host; /* name or address; IPv6 without brackets */
    uint16_t port;
    const char *method; /* "GET", "PUT", "POST" */
    const char *path;   /* request target, "/..." */
    /* Extra header lines "Name: value" (no CRLF), NULL-terminated; NULL: none. */
    const char *const *headers;
    const char *body; /* may be NULL with body_len 0 */
    size_t body_len;
    int timeout_ms;  /* the whole exchange: resolve, connect, send, receive */
    size_t max_body; /* larger responses fail with -EMSGSIZE */
};

struct xray__http_response {
    int status;
    char *body; /* owned, NUL-terminated (release with xray__http_response_free) */
    size_t len;
};

/* Performs one exchange. Returns 0 with resp filled (any status), or -ETIMEDOUT,
 * -ECONNREFUSED and other -errno, -EHOSTUNREACH when the host does not resolve,
 * -EPROTO for a malformed response, -EMSGSIZE over max_body, -ENOMEM. On error resp
 * holds nothing to free. Any thread; blocks up to timeout_ms. */
int xray__http_call(const struct xray__http_request *req, struct xray__http_response *resp);

void xray__http_response_free(struct xray__http_response *resp);

/* Splits "http://host[:port][/path]" (host may be "[v6]") into host (no brackets),
 * port (80 by default) and path ("/" when absent). 0 or -EINVAL (another scheme, too
 * long, bad port). Pure. */
int xray__http_parse_url(const char *url, char host[XRAY__HTTP_HOST_MAX], uint16_t *port,
                         char path[XRAY__HTTP_PATH_MAX]);

#endif
