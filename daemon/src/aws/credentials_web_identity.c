/* SPDX-License-Identifier: Apache-2.0 */
/* The web identity provider (EKS service accounts): the token in
 * AWS_WEB_IDENTITY_TOKEN_FILE is traded for temporary credentials of AWS_ROLE_ARN with
 * STS AssumeRoleWithWebIdentity, session AWS_ROLE_SESSION_NAME or "xrayd". The file
 * is read again on every load: the kubelet rotates it. Half the pair is "nothing
 * here", as in the environment provider; a token file that cannot be read is an
 * error, since the user clearly meant this identity. */
#include <stdio.h>
#include <stdlib.h>

#include "aws/credentials.h"
#include "aws/sts.h"

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static void credentials_web_identity_load(
    const struct credentials_provider *self, const struct credentials_context *ctx, uint64_t now_ms,
    void (*done)(void *data, int rc, const struct aws_credentials *creds, const char *err),
    void *data)
{
    (void)self;
    const char *file = env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *role = env_nonempty("AWS_ROLE_ARN");
    const char *session = env_nonempty("AWS_ROLE_SESSION_NAME");
    if (file == NULL || role == NULL) {
        done(data, XRAY_ENOCREDS, NULL,
             file == NULL && role == NULL ? "no AWS_WEB_IDENTITY_TOKEN_FILE"
             : file == NULL ? "AWS_ROLE_ARN set but AWS_WEB_IDENTITY_TOKEN_FILE not set"
                            : "AWS_WEB_IDENTITY_TOKEN_FILE set but AWS_ROLE_ARN not set");
        return;
    }
    char err[XRAY_ERR_LEN] = "";
    char *token = NULL;
    int rc = credentials_read_file(file, STS_WEB_TOKEN_MAX, &token, err);
    if (rc != 0) {
        char msg[XRAY_ERR_LEN];
        snprintf(msg, sizeof(msg), "token file %s", err);
        done(data, rc, NULL, msg);
        return;
    }
    const struct sts_request req = {
        .http = ctx->http,
        .endpoint = ctx->sts_endpoint,
        .region = ctx->region,
        .role_arn = role,
        .session_name = session != NULL ? session : CREDENTIALS_SESSION_NAME,
        .web_identity_token = token,
        .now_ms = now_ms,
    };
    /* sts_assume_role copies the token into its request body before it returns. */
    sts_assume_role(&req, done, data);
    credentials_free_secret(token);
}

const struct credentials_provider credentials_web_identity_provider = {
    .name = "web-identity",
    .load = credentials_web_identity_load,
};
