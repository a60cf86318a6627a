/* SPDX-License-Identifier: Apache-2.0 */
/* The AWS X-Ray API client every X-Ray call goes through (PutTraceSegments,
 * PutTelemetryRecords, the sampling forwards): a signed JSON POST (aws_call.h), with
 * each failure counted in stats->backend[] and the last one kept for /healthz. Loop
 * thread only. */
#ifndef XRAYD_XRAY_H
#define XRAYD_XRAY_H

#include <stddef.h>
#include <stdint.h>

#include "aws/aws_call.h"
#include "aws/credentials.h"
#include "http/client.h"
#include "stats.h"

#define XRAY_SERVICE        "xray" /* SigV4 signing name */
#define XRAY_PATH_MAX       128    /* an API path such as "/TraceSegments" */
#define XRAY_USER_AGENT_MAX 256
/* What xray_error_describe reads and keeps: aws_client_error_describe's bounds. */
#define XRAY_ERROR_BODY_MAX AWS_CALL_ERROR_BODY_MAX
#define XRAY_ERROR_TEXT_MAX AWS_CALL_ERROR_TEXT_MAX

struct xray;

struct xray_options {
    struct http_client *http;        /* borrowed; outlives the xray */
    struct credentials_chain *creds; /* borrowed; outlives the xray */
    const char *endpoint;            /* copied; resolved base URL, no trailing '/':
                                        "https://xray.us-east-1.amazonaws.com" */
    const char *region;              /* copied; the signing region */
    const char *user_agent;          /* copied; NULL = xray_user_agent_default() */
    struct stats *stats;             /* borrowed; backend[] is counted here */
    unsigned timeout_ms;             /* per call; 0 = the HTTP client's default (2 s) */
};

/* NULL on a bad option (logged: endpoint not http(s)://host[:port][/path], empty
 * region) or ENOMEM. */
struct xray *xray_create(const struct xray_options *opt);

/* Frees x. Calls still in flight must have completed: close the HTTP client first
 * (it cancels them and their callbacks run), then destroy. */
void xray_destroy(struct xray *x);

/* POST <endpoint><path> with body (application/json, borrowed until cb runs), signed
 * with SigV4 for service "xray" with the chain's credentials (credentials_chain_fetch:
 * at once when cached, else after the chain's load), with X-Amzn-Xray-Timestamp
 * (signed), X-Amz-Date, X-Amz-Security-Token when the credentials carry one, and the
 * User-Agent. Returns 0 and cb runs exactly once later (never from within this call);
 * or returns an error and cb never runs: XRAY_ENOCREDS (no credentials: never sent
 * unsigned), XRAY_EPARSE (could not sign), XRAY_EFULL / -ENOMEM / XRAY_ECLOSED (the
 * HTTP client or the credentials queue refused it). A call that waited for
 * credentials and then could not be sent still completes through cb, with
 * HTTP_CLIENT_OTHER (HTTP_CLIENT_CANCELED when shutting down) and no status, and
 * xray_result_error() then gives the reason (XRAY_ENOCREDS for no credentials). Every
 * failure, synchronous or not, is counted in stats->backend[] and remembered. */
int xray_call(struct xray *x, const char *path, const void *body, size_t len,
              void (*cb)(const struct http_client_result *res, void *data), void *data);

/* 0 for a 2xx response; else what went wrong as a code: XRAY_EUPSTREAM (an HTTP error
 * status), XRAY_ENOCREDS (never sent: no credentials), XRAY_ETIMEOUT, -ECONNREFUSED,
 * -EHOSTUNREACH (unknown host), XRAY_ETOOBIG, -ECANCELED or -EIO. For callbacks of
 * xray_call. */
int xray_result_error(const struct http_client_result *res);

/* Describes an HTTP error response (outside input: any bytes) as "HTTP 400
 * InvalidRequestException: message" into out[cap]: printable ASCII only, the
 * service's message cut at its first line and XRAY_ERROR_TEXT_MAX bytes. Returns 1
 * when the error says the credentials were refused (expired or unknown token), else
 * 0. Pure. */
int xray_error_describe(int status, const char *body, size_t len, char *out, size_t cap);

/* The last failure as text for /healthz ("POST /TraceSegments: HTTP 403
 * AccessDeniedException: ..."), without secrets or payloads; NULL if none yet.
 * Borrowed until the next call completes. */
const char *xray_last_error(const struct xray *x);
/* Calls that failed in a row; 0 after a success. */
uint64_t xray_consecutive_failures(const struct xray *x);

/* Writes the daemon's User-Agent (daemon-compat.md, "Batching and upload"):
 * "xrayd/<v> xray-agent/xray-daemon/<v> exec-env/<AWS_EXECUTION_ENV or UNKNOWN>
 * OS/linux-<arch>". Reads the environment: call from main. */
void xray_user_agent_default(char out[XRAY_USER_AGENT_MAX]);

#endif
