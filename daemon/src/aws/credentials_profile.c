/* SPDX-License-Identifier: Apache-2.0 */
/* The shared-files provider: aws_access_key_id / aws_secret_access_key /
 * aws_session_token of profile AWS_PROFILE (or "default") from the credentials file,
 * else from the config file, as the AWS SDKs read them. Missing files or a missing
 * profile are "nothing here"; a file that cannot be read or parsed, a profile with
 * half a key pair, or an AWS_PROFILE that names no profile anywhere are errors: the
 * user asked for something that is broken, and another identity would hide it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "aws/profile.h"

enum { KEY_ID, KEY_SECRET, KEY_TOKEN };

/* Looks the profile up in one file: 0 with *has_keys when it holds a full key pair
 * (then out is filled), 0 without when the file or the profile has none, or an error. */
static int from_file(enum profile_file kind, const char *profile, struct aws_credentials *out,
                     bool *has_keys, bool *found, char path[PROFILE_PATH_MAX], char *err)
{
    struct profile_values v = {
        .keys = {"aws_access_key_id", "aws_secret_access_key", "aws_session_token", NULL},
    };
    *has_keys = false;
    char ferr[XRAY_ERR_LEN] = "";
    int rc = profile_load(kind, profile, &v, path, ferr);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "%s", ferr);
        return rc;
    }
    *found |= v.found;
    const char *id = v.values[KEY_ID];
    const char *secret = v.values[KEY_SECRET];
    if (id != NULL && secret != NULL) {
        char what[PROFILE_PATH_MAX + 64];
        snprintf(what, sizeof(what), "profile \"%s\" in %s", profile, path);
        rc = aws_credentials_set(out, id, secret, v.values[KEY_TOKEN], what, err);
        *has_keys = rc == 0;
    } else if (id != NULL || secret != NULL) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "profile \"%s\" in %s has %s but no %s", profile, path,
                     id != NULL ? "aws_access_key_id" : "aws_secret_access_key",
                     id != NULL ? "aws_secret_access_key" : "aws_access_key_id");
        rc = XRAY_ECONFIG;
    }
    profile_values_free(&v);
    return rc;
}

/* A path under $HOME as "~/...": the chain's error lists every source in one short
 * line, and the home directory says nothing the user does not know. */
static const char *home_relative(char path[PROFILE_PATH_MAX])
{
    const char *home = getenv("HOME");
    size_t n = home != NULL ? strlen(home) : 0;
    while (n > 0 && home[n - 1] == '/')
        n--;
    if (n == 0 || strncmp(path, home, n) != 0 || path[n] != '/')
        return path;
    path[n - 1] = '~';
    return path + n - 1;
}

static int profile_read(struct aws_credentials *out, char err[XRAY_ERR_LEN])
{
    const char *profile = profile_name();
    char creds_path[PROFILE_PATH_MAX] = "";
    char config_path[PROFILE_PATH_MAX] = "";
    bool has_keys = false;
    bool found = false;
    /* The credentials file wins over the config file, as in every AWS SDK. */
    int rc = from_file(PROFILE_CREDENTIALS, profile, out, &has_keys, &found, creds_path, err);
    if (rc == 0 && !has_keys)
        rc = from_file(PROFILE_CONFIG, profile, out, &has_keys, &found, config_path, err);
    if (rc != 0)
        return rc;
    if (has_keys)
        return 0;
    if (err != NULL) {
        if (found)
            snprintf(err, XRAY_ERR_LEN, "profile \"%s\" has no aws_access_key_id", profile);
        else
            snprintf(err, XRAY_ERR_LEN, "no profile \"%s\" in %s or %s", profile,
                     home_relative(creds_path), home_relative(config_path));
    }
    /* A profile the user named explicitly must exist; "default" may be absent. */
    const char *named = getenv("AWS_PROFILE");
    if (!found && named != NULL && named[0] != '\0')
        return XRAY_ECONFIG;
    return XRAY_ENOCREDS;
}

/* Synchronous: answers before it returns. */
static void credentials_profile_load(
    const struct credentials_provider *self, const struct credentials_context *ctx, uint64_t now_ms,
    void (*done)(void *data, int rc, const struct aws_credentials *creds, const char *err),
    void *data)
{
    (void)ctx, (void)now_ms;
    struct aws_credentials c = {0};
    char err[XRAY_ERR_LEN] = "";
    int rc = profile_read(&c, err);
    c.source = self->name;
    done(data, rc, rc == 0 ? &c : NULL, err);
    aws_credentials_clear(&c);
}

const struct credentials_provider credentials_profile_provider = {
    .name = "profile",
    .load = credentials_profile_load,
};
