/* SPDX-License-Identifier: Apache-2.0 */
/* The assume-role provider (-r / RoleARN): STS AssumeRole for ctx->role_arn, session
 * "xrayd", signed with the credentials of ctx->source -- the ordinary chain, which
 * caches and refreshes its own. The chain this provider sits in caches the assumed
 * credentials and refreshes them before they expire. */
#include <errno.h>
#include <stdlib.h>

#include "aws/credentials.h"
#include "aws/sts.h"

/* One load waiting for the source chain. */
struct assume_role_load {
    const struct credentials_context *ctx;
    uint64_t now_ms;
    void (*done)(void *data, int rc, const struct aws_credentials *creds, const char *err);
    void *data;
};

static void assume_role_on_source(void *data, int rc, const struct aws_credentials *creds,
                                  const char *err)
{
    struct assume_role_load *l = data;
    const struct credentials_context *ctx = l->ctx;
    void (*done)(void *, int, const struct aws_credentials *, const char *) = l->done;
    void *done_data = l->data;
    uint64_t now_ms = l->now_ms;
    free(l);
    if (rc != 0) {
        /* Nothing to sign with: the source chain's own words say why. */
        done(done_data, rc, NULL, err);
        return;
    }
    const struct sts_request req = {
        .http = ctx->http,
        .endpoint = ctx->sts_endpoint,
        .region = ctx->region,
        .role_arn = ctx->role_arn,
        .session_name = CREDENTIALS_SESSION_NAME,
        .creds = creds,
        .now_ms = now_ms,
    };
    sts_assume_role(&req, done, done_data);
}

static void credentials_assume_role_load(
    const struct credentials_provider *self, const struct credentials_context *ctx, uint64_t now_ms,
    void (*done)(void *data, int rc, const struct aws_credentials *creds, const char *err),
    void *data)
{
    (void)self;
    if (ctx->source == NULL || ctx->role_arn == NULL || ctx->role_arn[0] == '\0') {
        done(data, XRAY_ECONFIG, NULL, "no role ARN or no source credentials");
        return;
    }
    struct assume_role_load *l = malloc(sizeof(*l));
    if (l == NULL) {
        done(data, -ENOMEM, NULL, "out of memory");
        return;
    }
    *l = (struct assume_role_load){ctx, now_ms, done, data};
    int rc = credentials_chain_fetch(ctx->source, now_ms, assume_role_on_source, l);
    if (rc != 0) {
        free(l);
        done(data, rc, NULL, "too many callers waiting for the source credentials");
    }
}

const struct credentials_provider credentials_assume_role_provider = {
    .name = "assume-role",
    .load = credentials_assume_role_load,
};
