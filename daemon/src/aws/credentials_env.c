/* SPDX-License-Identifier: Apache-2.0 */
/* The environment provider: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN, and the legacy AWS_ACCESS_KEY / AWS_SECRET_KEY that the Go SDK
 * the reference daemon uses also reads. Half a pair is "nothing here" (the chain goes
 * on, as the reference's does), with a reason that names the missing variable. */
#include <stdio.h>
#include <stdlib.h>

#include "aws/credentials.h"

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int env_read(struct aws_credentials *out, char err[XRAY_ERR_LEN])
{
    const char *id_name = "AWS_ACCESS_KEY_ID";
    const char *id = env_nonempty(id_name);
    if (id == NULL && (id = env_nonempty("AWS_ACCESS_KEY")) != NULL)
        id_name = "AWS_ACCESS_KEY";
    const char *secret_name = "AWS_SECRET_ACCESS_KEY";
    const char *secret = env_nonempty(secret_name);
    if (secret == NULL && (secret = env_nonempty("AWS_SECRET_KEY")) != NULL)
        secret_name = "AWS_SECRET_KEY";

    if (id == NULL || secret == NULL) {
        if (err != NULL) {
            if (id == NULL && secret == NULL)
                snprintf(err, XRAY_ERR_LEN, "no AWS_ACCESS_KEY_ID");
            else if (id == NULL)
                snprintf(err, XRAY_ERR_LEN, "%s set but AWS_ACCESS_KEY_ID not set", secret_name);
            else
                snprintf(err, XRAY_ERR_LEN, "%s set but AWS_SECRET_ACCESS_KEY not set", id_name);
        }
        return XRAY_ENOCREDS;
    }
    return aws_credentials_set(out, id, secret, getenv("AWS_SESSION_TOKEN"), "the environment",
                               err);
}

/* Synchronous: answers before it returns. */
static void credentials_env_load(const struct credentials_provider *self,
                                 const struct credentials_context *ctx, uint64_t now_ms,
                                 void (*done)(void *data, int rc,
                                              const struct aws_credentials *creds, const char *err),
                                 void *data)
{
    (void)ctx, (void)now_ms;
    struct aws_credentials c = {0};
    char err[XRAY_ERR_LEN] = "";
    int rc = env_read(&c, err);
    c.source = self->name;
    done(data, rc, rc == 0 ? &c : NULL, err);
    aws_credentials_clear(&c);
}

const struct credentials_provider credentials_env_provider = {
    .name = "env",
    .load = credentials_env_load,
};
