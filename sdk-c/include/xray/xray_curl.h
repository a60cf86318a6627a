/* SPDX-License-Identifier: Apache-2.0 */
/* libxray's libcurl instrumentation: each request made through a wrapped easy handle
 * becomes a `remote` subsegment (named after the URL's host) with http.request,
 * http.response and the status-derived flags, and carries the X-Amzn-Trace-Id header
 * to the callee. Kept apart from <xray/xray.h> so that programs without curl need not
 * include <curl/curl.h>. */
#ifndef XRAY_XRAY_CURL_H
#define XRAY_XRAY_CURL_H

#include <curl/curl.h>

#include "xray/xray.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One call in flight: embed it in your request state (multi interface) or on the
 * stack (xray_curl_perform). Fields are the library's. */
struct xray_curl_call {
    struct xray_segment *_sub;   /* the remote subsegment; NULL when not traced */
    CURL *_easy;                 /* the handle being traced */
    struct curl_slist *_headers; /* user headers + trace header, owned */
    struct curl_slist *_user;    /* the caller's list, restored at the end */
    char _header[XRAY_HEADER_BUF + sizeof(XRAY_TRACE_HEADER_NAME) + 2];
};

/* Prepares easy (URL and method already set) for one traced request: begins a remote
 * subsegment of parent (NULL: the thread's current segment; none: the request is
 * made untraced and the context-missing policy applies) named name (NULL: the URL's
 * host), and sets CURLOPT_HTTPHEADER to a copy of user_headers (may be NULL, stays
 * the caller's) plus the trace header. Returns 0, XRAY_SDK_ENOCONTEXT (call still
 * usable: untraced, CURLOPT_HTTPHEADER set to user_headers), -EINVAL (easy is NULL)
 * or -ENOMEM. The thread that adds easy to a multi handle. */
XRAY_API int xray_curl_begin(struct xray_curl_call *call, CURL *easy,
                             struct curl_slist *user_headers, struct xray_segment *parent,
                             const char *name);

/* Records the outcome - response code, effective URL and method, downloaded length,
 * and for result != CURLE_OK a fault with an exception of type "CURLcode" and message
 * curl_easy_strerror(result) - ends the subsegment, restores CURLOPT_HTTPHEADER to
 * user_headers and frees the copy. Call once per successful xray_curl_begin(). */
XRAY_API void xray_curl_end(struct xray_curl_call *call, CURLcode result);

/* xray_curl_begin + curl_easy_perform + xray_curl_end. Returns curl's result. */
XRAY_API CURLcode xray_curl_perform(CURL *easy, struct curl_slist *user_headers,
                                    struct xray_segment *parent, const char *name);

#ifdef __cplusplus
}
#endif

#endif
