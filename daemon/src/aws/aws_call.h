/* SPDX-License-Identifier: Apache-2.0 */
/* One signed call to an AWS service (X-Ray, CloudWatch Logs, CloudWatch, Amazon
 * Managed Prometheus): a request signed with SigV4 for the client's service and region
 * with the chain's credentials, sent over the shared HTTP client. It never sends a
 * request unsigned: without credentials the call fails before anything leaves. What
 * is counted and how failures are reported belongs to the caller (xray.c, the metrics
 * sinks). Loop thread only. */
#ifndef XRAYD_AWS_CALL_H
#define XRAYD_AWS_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "aws/sigv4.h"
#include "http/client.h"

#define AWS_CALL_PATH_MAX       256
#define AWS_CALL_USER_AGENT_MAX 256
#define AWS_CALL_HEADERS_MAX    8     /* extra headers of one request */
#define AWS_CALL_ERROR_BODY_MAX 65536 /* error bodies larger than this are not parsed */
#define AWS_CALL_ERROR_TEXT_MAX 160   /* of the service's message in a description */
/* How res->message of a call that ended unsent for want of credentials begins. */
#define AWS_CALL_NO_CREDENTIALS "no credentials"

struct aws_client;
struct credentials_chain;

struct aws_client_options {
    struct http_client *http;        /* borrowed; outlives the client */
    struct credentials_chain *creds; /* borrowed; outlives the client */
    const char *endpoint;            /* copied; http(s)://host[:port][/path], no trailing '/' */
    const char *region;              /* copied; the signing region */
    const char *service;    /* copied; the signing name: "xray", "logs", "monitoring", "aps" */
    const char *user_agent; /* copied; NULL: none sent */
    unsigned timeout_ms;    /* per call; 0 = the HTTP client's default */
};

struct aws_request {
    const char *method;       /* "POST" */
    const char *path;         /* appended to the endpoint's path: "/", "/api/v1/write" */
    const char *content_type; /* signed */
    /* Further headers, all signed (x-amz-target, content-encoding, ...): never host,
     * x-amz-date, x-amz-security-token or authorization. */
    const struct sigv4_header *headers;
    size_t header_count; /* <= AWS_CALL_HEADERS_MAX */
    const void *body;    /* borrowed until cb runs */
    size_t body_len;
    size_t max_response; /* 0 = the HTTP client's default */
};

/* NULL on a bad option (err says which: endpoint not http(s)://host[:port][/path]
 * without a trailing '/', empty region or service) or -ENOMEM. */
struct aws_client *aws_client_create(const struct aws_client_options *o, char err[XRAY_ERR_LEN]);
/* Calls still in flight must have completed (close the HTTP client first). */
void aws_client_destroy(struct aws_client *c);

/* Signs req and starts it once credentials are at hand (at once when cached). Returns 0
 * and cb runs exactly once later, never from within this call; or returns an error and
 * cb never runs: XRAY_ENOCREDS, XRAY_EPARSE (could not sign), -EINVAL (bad request),
 * XRAY_EFULL / -ENOMEM / XRAY_ECLOSED (the HTTP client or the credentials queue
 * refused it). A call that waited for credentials and then could not be sent still
 * completes through cb, with HTTP_CLIENT_OTHER (HTTP_CLIENT_CANCELED when shutting
 * down), no status, and res->message saying why (no secrets; it starts with
 * AWS_CALL_NO_CREDENTIALS when that is why). A 4xx saying the credentials were refused
 * drops the chain's cached ones. */
int aws_client_call(struct aws_client *c, const struct aws_request *req,
                    void (*cb)(const struct http_client_result *res, void *data), void *data);

/* For the callbacks of aws_client_call: 0 for a 2xx response; else XRAY_EUPSTREAM (an
 * HTTP error status), XRAY_ENOCREDS (never sent: no credentials), XRAY_ETIMEOUT,
 * -ECONNREFUSED, -EHOSTUNREACH (unknown host), XRAY_ETOOBIG, -ECANCELED or -EIO (any
 * other transport failure, or not sent for another reason). Pure. */
int aws_client_result_error(const struct http_client_result *res);

/* Why the last aws_client_call that returned an error sent nothing ("no credentials:
 * ...", "signing failed: ...", "not sent: ..."), without secrets; "" before any.
 * Borrowed until the next call. A call that fails later says why in res->message. */
const char *aws_client_not_sent(const struct aws_client *c);

/* The error's short type from an AWS JSON error body (outside input: any bytes),
 * "ResourceNotFoundException" from {"__type":"com.amazonaws.logs#ResourceNotFound
 * Exception"}, printable ASCII, into out[cap]; "" when there is none. Pure. */
void aws_client_error_type(const char *body, size_t len, char *out, size_t cap);

/* Describes an HTTP error response as "HTTP 400 InvalidRequestException: message"
 * into out[cap]: printable ASCII only, the service's message cut at its first line and
 * AWS_CALL_ERROR_TEXT_MAX bytes (AWS messages can quote the canonical request, which is
 * never kept whole). Returns 1 when the error says the credentials were refused
 * (expired or unknown token: aws_client_call then drops the chain's cached ones by
 * itself), else 0. Pure. */
int aws_client_error_describe(int status, const char *body, size_t len, char *out, size_t cap);

/* Copies printable ASCII of s[0..n) into out[cap], stopping at a line break or NUL and
 * writing '?' for other bytes: outside text made safe for one log line or header.
 * Returns the length written. Pure. */
size_t aws_client_printable(char *out, size_t cap, const char *s, size_t n);

/* The service's signing name and the base URL, as given. */
const char *aws_client_service(const struct aws_client *c);
const char *aws_client_endpoint(const struct aws_client *c);

#endif
