/* SPDX-License-Identifier: Apache-2.0 */
/* Outbound HTTP for every upstream call: libcurl's multi interface driven by the
 * libuv loop, so requests never block and no thread is started per request.
 * Connections are kept alive and reused; HTTP/2 is used when the server offers it.
 * Loop thread only. */
#ifndef XRAYD_HTTP_CLIENT_H
#define XRAYD_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define HTTP_CLIENT_TIMEOUT_MS           2000u /* the reference daemon's per-call timeout, 2 s */
#define HTTP_CLIENT_MAX_CONNECTIONS      16u
#define HTTP_CLIENT_MAX_HOST_CONNECTIONS 8u
#define HTTP_CLIENT_MAX_RESPONSE         (1u << 20) /* default response body cap, 1 MiB */
#define HTTP_CLIENT_MAX_PENDING          256u       /* requests started and not yet completed */

struct http_client;
struct proxy; /* http/proxy.h */

struct http_client_options {
    unsigned max_connections;      /* total; 0 = HTTP_CLIENT_MAX_CONNECTIONS */
    unsigned max_host_connections; /* per host; 0 = HTTP_CLIENT_MAX_HOST_CONNECTIONS */
    bool no_verify_ssl;            /* NoVerifySSL: skip TLS peer and host checks */
    struct proxy *proxy;           /* takes ownership (freed by close, or by create
                                      when it fails): the proxy decision per request
                                      URL (http/proxy.h); NULL = always direct. curl's
                                      own reading of the environment is turned off */
    unsigned timeout_ms;           /* default per request; 0 = HTTP_CLIENT_TIMEOUT_MS */
    unsigned max_pending;          /* 0 = HTTP_CLIENT_MAX_PENDING */
};

/* Why a request got no usable response. Maps onto BackendConnectionErrors. */
enum http_client_error {
    HTTP_CLIENT_OK = 0,       /* a response arrived; see status */
    HTTP_CLIENT_TIMEOUT,      /* the request's timeout expired */
    HTTP_CLIENT_REFUSED,      /* connect() got ECONNREFUSED */
    HTTP_CLIENT_UNKNOWN_HOST, /* the host (or proxy) name did not resolve */
    HTTP_CLIENT_TOO_BIG,      /* the response body passed max_response */
    HTTP_CLIENT_CANCELED,     /* http_client_close() ran while it was in flight */
    HTTP_CLIENT_OTHER,        /* any other transport failure (TLS, reset, ...) */
};

struct http_client_request {
    const char *method;         /* "GET", "POST", "PUT", ... */
    const char *url;            /* copied */
    const char *const *headers; /* "Name: value" lines, copied */
    size_t header_count;
    const void *body; /* borrowed until the callback runs; NULL = none */
    size_t body_len;
    unsigned timeout_ms; /* 0 = the client's default */
    size_t max_response; /* 0 = HTTP_CLIENT_MAX_RESPONSE */
    bool direct;         /* never through a proxy, whatever the settings: for instance
                            metadata and container credential endpoints, which only
                            this host can reach (the reference daemon proxies X-Ray
                            calls only) */
};

struct http_client_result {
    enum http_client_error error;
    int status;       /* HTTP status, 0 when no response arrived */
    const char *body; /* borrowed, valid during the callback; NUL-terminated */
    size_t body_len;
    int64_t retry_after_ms; /* Retry-After (seconds or HTTP-date) in ms; -1 if absent */
    const char *message;    /* why it failed, for logs: no secrets; "" on success */
};

/* A client on loop. NULL on ENOMEM or when libcurl cannot be set up (opt->proxy is
 * freed then too). Logs the proxy settings once when a proxy may be used. */
struct http_client *http_client_create(uv_loop_t *loop, const struct http_client_options *opt);

/* Starts a request. cb runs exactly once when it completes, on the loop thread and
 * never from within this call; it may start new requests or close the client.
 * Returns 0, or -EINVAL (bad arguments), -ENOMEM, XRAY_EFULL (max_pending requests
 * in flight) or XRAY_ECLOSED (closing): then cb never runs. */
int http_client_request(struct http_client *c, const struct http_client_request *req,
                        void (*cb)(const struct http_client_result *res, void *data), void *data);

/* Requests started and not yet completed. */
unsigned http_client_pending(const struct http_client *c);

/* Cancels every request in flight (their callbacks run now, with
 * HTTP_CLIENT_CANCELED), closes every connection and handle, frees the client in the
 * last close callback and then calls cb (may be NULL). */
void http_client_close(struct http_client *c, void (*cb)(void *data), void *data);

/* Which CA bundle TLS trusts: env_file (SSL_CERT_FILE) when set; else nothing
 * (libcurl's builtin default, when that file is readable); else the first readable
 * bundle of the usual places on Linux distributions. Writes it to out and returns 1,
 * or returns 0 with out "" to keep libcurl's default. SSL_CERT_DIR is honoured too
 * (CURLOPT_CAPATH). Reads the file system. */
#define HTTP_CLIENT_CA_PATH_MAX 512
int http_client_ca_file(const char *env_file, const char *builtin, char *out, size_t cap);

/* Text of an error class: "timeout", "refused", ... */
const char *http_client_error_name(enum http_client_error e);

#endif
