/* SPDX-License-Identifier: Apache-2.0 */
/* Instance metadata: the endpoint and the start-up lookups. Those lookups block (curl
 * easy, IMDS_TIMEOUT_MS each): they run once, before the loop and the worker start,
 * when nothing else could proceed without their answer anyway, so a loop-driven
 * request would only add machinery. They never go through a proxy: IMDS is
 * link-local. The token and an "IMDS is not here" verdict are kept in this file for
 * the process, the one piece of state here. */
#include "aws/imds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "aws/endpoint.h"

static struct {
    bool tried;                 /* a token was asked for */
    int rc;                     /* and this is how it went */
    char token[IMDS_TOKEN_MAX]; /* when rc is 0 */
    char why[XRAY_ERR_LEN];     /* when it is not */
} imds_kept;

bool imds_disabled(void)
{
    const char *v = getenv("AWS_EC2_METADATA_DISABLED");
    return v != NULL && strcasecmp(v, "true") == 0;
}

int imds_endpoint(char *out, size_t cap, char err[XRAY_ERR_LEN])
{
    const char *v = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (v == NULL || v[0] == '\0')
        v = IMDS_ENDPOINT_DEFAULT;
    size_t n = strlen(v);
    while (n > 0 && v[n - 1] == '/')
        n--;
    struct endpoint_url u;
    if (n >= cap || n >= ENDPOINT_URL_MAX) {
        snprintf(err, XRAY_ERR_LEN, "AWS_EC2_METADATA_SERVICE_ENDPOINT is too long");
        return XRAY_ECONFIG;
    }
    memcpy(out, v, n);
    out[n] = '\0';
    if (endpoint_split(out, &u) != 0 || strpbrk(out, "?# \t\r\n") != NULL) {
        snprintf(err, XRAY_ERR_LEN, "AWS_EC2_METADATA_SERVICE_ENDPOINT is not an http(s) URL");
        return XRAY_ECONFIG;
    }
    return 0;
}

void imds_startup_forget(void)
{
    memset(&imds_kept, 0, sizeof(imds_kept));
}

struct easy_body {
    char *data;
    size_t len;
    size_t cap; /* data holds cap - 1 bytes and a NUL */
};

static size_t easy_on_body(char *p, size_t size, size_t n, void *userdata)
{
    struct easy_body *b = userdata;
    size_t len = size * n;
    if (len >= b->cap - b->len)
        return 0; /* over the bound: curl stops with CURLE_WRITE_ERROR */
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

/* One blocking request. 0 with *status, or an error for no response. */
static int easy_request(const char *method, const char *url, const char *header, char *out,
                        size_t cap, long *status, char err[XRAY_ERR_LEN])
{
    CURL *e = curl_easy_init();
    if (e == NULL) {
        snprintf(err, XRAY_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    struct easy_body b = {out, 0, cap};
    out[0] = '\0';
    struct curl_slist *h = curl_slist_append(NULL, header);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)IMDS_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)IMDS_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, easy_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
    }
    CURLcode cc = h != NULL ? curl_easy_perform(e) : CURLE_OUT_OF_MEMORY;
    int rc = 0;
    switch (cc) {
    case CURLE_OK:
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        rc = XRAY_ETIMEOUT;
        break;
    case CURLE_COULDNT_CONNECT:
        rc = -ECONNREFUSED;
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        rc = -EHOSTUNREACH;
        break;
    case CURLE_WRITE_ERROR:
        rc = XRAY_ETOOBIG;
        break;
    default:
        rc = -EIO;
        break;
    }
    if (rc != 0)
        snprintf(err, XRAY_ERR_LEN, "%s %s: %s", method, url, curl_easy_strerror(cc));
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return rc;
}

/* Trims blanks and line breaks; refuses anything but printable ASCII. */
static int clean_value(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    s[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return XRAY_EPARSE;
    return n > 0 ? 0 : XRAY_EPARSE;
}

/* Gets the token once for the process; its failure is kept too. */
static int startup_token(const char *base)
{
    if (imds_kept.tried)
        return imds_kept.rc;
    imds_kept.tried = true;
    char url[ENDPOINT_URL_MAX + 32];
    snprintf(url, sizeof(url), "%s%s", base, IMDS_TOKEN_PATH);
    char ttl[64];
    snprintf(ttl, sizeof(ttl), "%s: %d", IMDS_TTL_HEADER, IMDS_TOKEN_TTL_S);
    long status = 0;
    int rc = easy_request("PUT", url, ttl, imds_kept.token, sizeof(imds_kept.token), &status,
                          imds_kept.why);
    if (rc == 0 && status != 200) {
        snprintf(imds_kept.why, sizeof(imds_kept.why), "token request answered HTTP %ld", status);
        rc = XRAY_EUPSTREAM;
    } else if (rc == 0 && clean_value(imds_kept.token) != 0) {
        snprintf(imds_kept.why, sizeof(imds_kept.why), "token request answered no token");
        rc = XRAY_EPARSE;
    }
    if (rc != 0)
        memset(imds_kept.token, 0, sizeof(imds_kept.token));
    imds_kept.rc = rc;
    return rc;
}

int imds_startup_get(const char *path, char out[IMDS_VALUE_MAX], char err[XRAY_ERR_LEN])
{
    out[0] = '\0';
    if (imds_disabled()) {
        snprintf(err, XRAY_ERR_LEN, "AWS_EC2_METADATA_DISABLED=true");
        return XRAY_ECONFIG;
    }
    char base[ENDPOINT_URL_MAX];
    int rc = imds_endpoint(base, sizeof(base), err);
    if (rc != 0)
        return rc;
    if ((rc = startup_token(base)) != 0) {
        snprintf(err, XRAY_ERR_LEN, "%s", imds_kept.why);
        return rc;
    }
    char url[ENDPOINT_URL_MAX + 128];
    char header[IMDS_TOKEN_MAX + 32];
    snprintf(url, sizeof(url), "%s%s%s", base, IMDS_META_PATH, path);
    snprintf(header, sizeof(header), "%s: %s", IMDS_TOKEN_HEADER, imds_kept.token);
    long status = 0;
    rc = easy_request("GET", url, header, out, IMDS_VALUE_MAX, &status, err);
    if (rc == XRAY_ETOOBIG)
        snprintf(err, XRAY_ERR_LEN, "%s: longer than %d bytes", path, IMDS_VALUE_MAX - 1);
    if (rc == 0 && status != 200) {
        snprintf(err, XRAY_ERR_LEN, "%s: HTTP %ld", path, status);
        rc = status == 404 ? -ENOENT : XRAY_EUPSTREAM;
    } else if (rc == 0 && clean_value(out) != 0) {
        snprintf(err, XRAY_ERR_LEN, "%s: not a printable value", path);
        rc = XRAY_EPARSE;
    }
    if (rc != 0)
        out[0] = '\0';
    return rc;
}
