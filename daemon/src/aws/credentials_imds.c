/* SPDX-License-Identifier: Apache-2.0 */
/* The EC2 instance role provider, IMDSv2 only: PUT a session token, GET the role name
 * from iam/security-credentials/, then GET that role's credentials -- three requests
 * on the loop, each with IMDS_TIMEOUT_MS. No IMDS (disabled, no answer to the token
 * request) and no role attached are "nothing here": this is the last provider, and
 * most hosts that reach it are simply not EC2 instances. Later failures are errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "aws/imds.h"
#include "http/client.h"

#define IMDS_ROLE_PATH IMDS_META_PATH "iam/security-credentials/"

enum imds_step { STEP_TOKEN, STEP_ROLE, STEP_CREDS };

struct imds_load {
    struct http_client *http;
    void (*done)(void *data, int rc, const struct aws_credentials *creds, const char *err);
    void *data;
    enum imds_step step;
    char base[ENDPOINT_URL_MAX];
    char token[IMDS_TOKEN_MAX];
    char role[IMDS_VALUE_MAX];
};

static void imds_on_response(const struct http_client_result *res, void *data);

static void imds_finish(struct imds_load *l, int rc, const struct aws_credentials *creds,
                        const char *err)
{
    void (*done)(void *, int, const struct aws_credentials *, const char *) = l->done;
    void *data = l->data;
    memset(l->token, 0, sizeof(l->token));
    free(l);
    done(data, rc, creds, err);
}

/* IAM role names are [A-Za-z0-9+=,.@_-]{1,64}: anything else is refused rather than
 * pasted into a URL. */
static bool imds_role_valid(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= '0' && s[n] <= '9') || strchr("+=,.@_-", s[n]) != NULL))
            return false;
    return n > 0 && n <= 64;
}

/* Starts the request of l->step; on failure, finishes l. */
static void imds_send(struct imds_load *l)
{
    char url[ENDPOINT_URL_MAX + IMDS_VALUE_MAX + 64];
    char h_token[IMDS_TOKEN_MAX + 40];
    const char *header = h_token;
    if (l->step == STEP_TOKEN) {
        snprintf(url, sizeof(url), "%s%s", l->base, IMDS_TOKEN_PATH);
        snprintf(h_token, sizeof(h_token), "%s: %d", IMDS_TTL_HEADER, IMDS_TOKEN_TTL_S);
    } else {
        snprintf(url, sizeof(url), "%s%s%s", l->base, IMDS_ROLE_PATH,
                 l->step == STEP_CREDS ? l->role : "");
        snprintf(h_token, sizeof(h_token), "%s: %s", IMDS_TOKEN_HEADER, l->token);
    }
    const struct http_client_request req = {
        .method = l->step == STEP_TOKEN ? "PUT" : "GET",
        .url = url,
        .headers = &header,
        .header_count = 1,
        .timeout_ms = IMDS_TIMEOUT_MS,
        .max_response = CREDENTIALS_RESPONSE_MAX,
        .direct = true, /* metadata is local to the host: never through a proxy */
    };
    int rc = http_client_request(l->http, &req, imds_on_response, l);
    memset(h_token, 0, sizeof(h_token));
    if (rc != 0) {
        char err[XRAY_ERR_LEN];
        snprintf(err, sizeof(err), "not sent: %s", xray_strerror(rc));
        imds_finish(l, rc, NULL, err);
    }
}

/* Copies the first line of a response body, trimmed, into out[cap]; false if empty
 * or too long. */
static bool imds_first_line(const char *body, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    while (n < len && body[n] != '\n' && body[n] != '\r')
        n++;
    while (n > 0 && body[n - 1] == ' ')
        n--;
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, body, n);
    out[n] = '\0';
    return true;
}

static void imds_on_response(const struct http_client_result *res, void *data)
{
    struct imds_load *l = data;
    char err[XRAY_ERR_LEN] = "";
    int rc = credentials_http_rc(res);
    if (rc != 0) {
        /* Short: on hosts that are not EC2 instances this ends every chain's error. */
        snprintf(err, sizeof(err), "no IMDS: %s", http_client_error_name(res->error));
        /* No answer to the token request: there is no IMDS here. */
        imds_finish(l, l->step == STEP_TOKEN && rc != -ECANCELED ? XRAY_ENOCREDS : rc, NULL, err);
        return;
    }
    switch (l->step) {
    case STEP_TOKEN:
        if (res->status != 200 ||
            !imds_first_line(res->body, res->body_len, l->token, sizeof(l->token))) {
            snprintf(err, sizeof(err), "instance metadata token request answered HTTP %d",
                     res->status);
            imds_finish(l, XRAY_ENOCREDS, NULL, err);
            return;
        }
        l->step = STEP_ROLE;
        imds_send(l);
        return;
    case STEP_ROLE:
        if (res->status == 404) {
            imds_finish(l, XRAY_ENOCREDS, NULL, "no IAM role attached to the instance");
            return;
        }
        if (res->status != 200 ||
            !imds_first_line(res->body, res->body_len, l->role, sizeof(l->role)) ||
            !imds_role_valid(l->role)) {
            snprintf(err, sizeof(err), "instance metadata answered HTTP %d%s for the role",
                     res->status, res->status == 200 ? " and no role name" : "");
            imds_finish(l, XRAY_EUPSTREAM, NULL, err);
            return;
        }
        l->step = STEP_CREDS;
        imds_send(l);
        return;
    case STEP_CREDS:
        break;
    }
    if (res->status != 200) {
        snprintf(err, sizeof(err), "instance metadata answered HTTP %d for role %.64s", res->status,
                 l->role);
        imds_finish(l, XRAY_EUPSTREAM, NULL, err);
        return;
    }
    struct aws_credentials creds = {0};
    char perr[XRAY_ERR_LEN] = "";
    rc = credentials_from_json(res->body, res->body_len, &creds, perr);
    if (rc != 0)
        snprintf(err, sizeof(err), "instance metadata sent %s", perr);
    imds_finish(l, rc, rc == 0 ? &creds : NULL, err);
    aws_credentials_clear(&creds);
}

static void credentials_imds_load(
    const struct credentials_provider *self, const struct credentials_context *ctx, uint64_t now_ms,
    void (*done)(void *data, int rc, const struct aws_credentials *creds, const char *err),
    void *data)
{
    (void)self, (void)now_ms;
    if (imds_disabled()) {
        done(data, XRAY_ENOCREDS, NULL, "AWS_EC2_METADATA_DISABLED=true");
        return;
    }
    if (ctx->http == NULL) {
        done(data, XRAY_ENOCREDS, NULL, "no HTTP client");
        return;
    }
    struct imds_load *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        done(data, -ENOMEM, NULL, "out of memory");
        return;
    }
    char err[XRAY_ERR_LEN] = "";
    int rc = imds_endpoint(l->base, sizeof(l->base), err);
    if (rc != 0) {
        free(l);
        done(data, rc, NULL, err);
        return;
    }
    l->http = ctx->http;
    l->done = done;
    l->data = data;
    l->step = STEP_TOKEN;
    imds_send(l);
}

const struct credentials_provider credentials_imds_provider = {
    .name = "imds",
    .load = credentials_imds_load,
};
