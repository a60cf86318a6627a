/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl instrumentation: a traced request is a `remote` subsegment named after the
 * URL's host, whose id goes to the callee in X-Amzn-Trace-Id, and which records the
 * method, URL, status, length and a CURLcode failure once the transfer is done. The
 * caller's header list is never modified: the handle gets a copy with the trace
 * header for the one request and the caller's list back at the end. */
#include "xray/xray_curl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* The URL's host (for the subsegment name) into out; "" when it has none. */
static void curl_host(CURL *easy, char *out, size_t cap)
{
    out[0] = '\0';
    char *url = NULL;
    if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || url == NULL)
        return;
    CURLU *u = curl_url();
    char *host = NULL;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host != NULL)
        snprintf(out, cap, "%s", host);
    curl_free(host);
    curl_url_cleanup(u);
}

/* The caller's headers without any X-Amzn-Trace-Id of theirs, then ours. NULL when
 * out of memory. */
static struct curl_slist *curl_headers(const struct curl_slist *user, const char *line)
{
    static const char name[] = XRAY_TRACE_HEADER_NAME ":";
    struct curl_slist *list = NULL;
    for (const struct curl_slist *l = user; l != NULL; l = l->next) {
        if (strncasecmp(l->data, name, sizeof(name) - 1) == 0)
            continue;
        struct curl_slist *next = curl_slist_append(list, l->data);
        if (next == NULL) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = next;
    }
    struct curl_slist *next = curl_slist_append(list, line);
    if (next == NULL)
        curl_slist_free_all(list);
    return next;
}

int xray_curl_begin(struct xray_curl_call *call, CURL *easy, struct curl_slist *user_headers,
                    struct xray_segment *parent, const char *name)
{
    memset(call, 0, sizeof(*call));
    call->_easy = easy;
    call->_user = user_headers;
    if (easy == NULL)
        return -EINVAL;
    if (parent == NULL)
        parent = xray_context_current();
    /* Untraced until the copy with the trace header replaces it. */
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, user_headers);
    if (parent == NULL) {
        xray__recorder_context_missing("xray_curl_begin");
        return XRAY_SDK_ENOCONTEXT;
    }
    char host[256];
    if (name == NULL) {
        curl_host(easy, host, sizeof(host));
        name = host[0] ? host : "remote";
    }
    struct xray_segment *sub = xray_subsegment_begin(parent, name);
    if (sub == NULL)
        return -ENOMEM; /* counted by the recorder; the request goes untraced */
    xray_segment_set_namespace(sub, XRAY_NAMESPACE_REMOTE);
    size_t n = strlen(XRAY_TRACE_HEADER_NAME);
    memcpy(call->_header, XRAY_TRACE_HEADER_NAME ": ", n + 2);
    if (xray_header_for_segment(sub, call->_header + n + 2, sizeof(call->_header) - n - 2) < 0 ||
        (call->_headers = curl_headers(user_headers, call->_header)) == NULL) {
        xray_segment_end(sub);
        return -ENOMEM;
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->_headers);
    call->_sub = sub;
    return 0;
}

void xray_curl_end(struct xray_curl_call *call, CURLcode result)
{
    struct xray_segment *sub = call->_sub;
    CURL *easy = call->_easy;
    if (sub != NULL && easy != NULL) {
        char *url = NULL, *method = NULL;
        long status = 0;
        curl_off_t length = -1;
        curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url);
        curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_METHOD, &method);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        struct xray_http_request req = {.method = method, .url = url, .traced = true};
        xray_segment_set_http_request(sub, &req);
        if (status > 0)
            xray_segment_set_http_response(sub, (int)status, (int64_t)length);
        if (result != CURLE_OK)
            xray_segment_add_exception(sub, "CURLcode", curl_easy_strerror(result), 0);
        xray_segment_end(sub);
    }
    if (call->_headers != NULL) {
        if (easy != NULL)
            curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->_user);
        curl_slist_free_all(call->_headers);
    }
    memset(call, 0, sizeof(*call));
}

CURLcode xray_curl_perform(CURL *easy, struct curl_slist *user_headers, struct xray_segment *parent,
                           const char *name)
{
    struct xray_curl_call call;
    xray_curl_begin(&call, easy, user_headers, parent, name);
    CURLcode rc = curl_easy_perform(easy);
    xray_curl_end(&call, rc);
    return rc;
}
