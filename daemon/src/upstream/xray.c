/* SPDX-License-Identifier: Apache-2.0 */
/* One signed POST to the X-Ray API, through aws_call.c (the signing and the wait for
 * credentials live there). Every failure is classified into BackendConnectionErrors
 * (stats->backend[]) here, once, and its text kept for /healthz; callers only decide
 * what to do with their payload. It does not retry. */
#include "upstream/xray.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/aws_call.h"
#include "log.h"

#define XRAY_LOG_EVERY_MS 10000

struct xray {
    struct aws_client *aws;
    struct stats *stats;
    char last_error[XRAY_ERR_LEN];
    uint64_t failures;
};

/* One call, for counting its outcome under its path. */
struct xray_pending {
    struct xray *x;
    void (*cb)(const struct http_client_result *res, void *data);
    void *data;
    char path[XRAY_PATH_MAX];
};

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
    return aws_client_error_describe(status, body, len, out, cap);
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
        /* The client has dropped refused credentials already (aws_call.h). */
        xray_error_describe(res->status, res->body, res->body_len, why, sizeof(why));
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
        if (res->status == 0 && aws_client_result_error(res) == XRAY_ENOCREDS)
            xray_fail(x, STATS_BACKEND_OTHER, p->path, "%s", res->message);
        else
            xray_fail(x, STATS_BACKEND_OTHER, p->path, "%s: %s", http_client_error_name(res->error),
                      res->message);
        break;
    }
    p->cb(res, p->data);
    free(p);
}

int xray_result_error(const struct http_client_result *res)
{
    return aws_client_result_error(res);
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
    *p = (struct xray_pending){.x = x, .cb = cb, .data = data};
    snprintf(p->path, sizeof(p->path), "%s", path);

    /* The reference daemon's SDK stamps every call; X-Ray keeps it signed. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char stamp[32];
    snprintf(stamp, sizeof(stamp), "%lld.%09ld", (long long)ts.tv_sec, (long)ts.tv_nsec);
    const struct sigv4_header extra[] = {{"X-Amzn-Xray-Timestamp", stamp}};
    const struct aws_request req = {
        .method = "POST",
        .path = path,
        .content_type = "application/json",
        .headers = extra,
        .header_count = 1,
        .body = body,
        .body_len = len,
    };
    int rc = aws_client_call(x->aws, &req, xray_on_response, p);
    if (rc != 0) {
        xray_fail(x, STATS_BACKEND_OTHER, path, "%s", aws_client_not_sent(x->aws));
        free(p);
    }
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
    struct xray *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    char ua[XRAY_USER_AGENT_MAX], err[XRAY_ERR_LEN] = "";
    if (opt->user_agent == NULL)
        xray_user_agent_default(ua);
    const struct aws_client_options ao = {
        .http = opt->http,
        .creds = opt->creds,
        .endpoint = opt->endpoint,
        .region = opt->region,
        .service = XRAY_SERVICE,
        .user_agent = opt->user_agent != NULL ? opt->user_agent : ua,
        .timeout_ms = opt->timeout_ms,
    };
    x->stats = opt->stats;
    if ((x->aws = aws_client_create(&ao, err)) == NULL) {
        XLOG_ERR("xray", "%s", err);
        free(x);
        return NULL;
    }
    return x;
}

void xray_destroy(struct xray *x)
{
    if (x == NULL)
        return;
    aws_client_destroy(x->aws);
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
    aws_client_printable(clean, sizeof(clean), env, strlen(env));
    for (char *c = clean; *c; c++)
        if (*c == ' ')
            *c = '_';
    snprintf(out, XRAY_USER_AGENT_MAX, "xrayd/%s xray-agent/xray-daemon/%s exec-env/%s OS/linux-%s",
             XRAYD_VERSION, XRAYD_VERSION, clean, arch);
}
