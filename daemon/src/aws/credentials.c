/* SPDX-License-Identifier: Apache-2.0 */
/* The credential provider chain: asks each provider in order, caches what the first
 * one yields and asks again only near expiry (or after invalidate). It owns the cached
 * copy and wipes secrets when it lets them go; it never logs and never reads the
 * clock. Providers themselves live in credentials_<name>.c. */
#include "aws/credentials.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* The default order (daemon-compat.md, "Credentials"). Adding a provider is one line
 * here plus its file. */
static const struct credentials_provider *const credentials_default[] = {
    &credentials_env_provider,
    &credentials_profile_provider,
};

struct credentials_chain {
    const struct credentials_provider *providers[CREDENTIALS_PROVIDERS_MAX];
    int count;
    struct aws_credentials cur;
    bool have;
    uint64_t retry_after_ms; /* no load before this after a failure */
    int last_rc;
    char last_err[XRAY_ERR_LEN];
};

static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void aws_credentials_clear(struct aws_credentials *c)
{
    if (c == NULL)
        return;
    free(c->access_key_id);
    wipe_free(c->secret_access_key);
    wipe_free(c->session_token);
    memset(c, 0, sizeof(*c));
}

static char *dup_or_null(const char *s, bool *failed)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *failed = true;
    return d;
}

int aws_credentials_copy(struct aws_credentials *dst, const struct aws_credentials *src)
{
    bool failed = false;
    struct aws_credentials c = {
        .access_key_id = dup_or_null(src->access_key_id, &failed),
        .secret_access_key = dup_or_null(src->secret_access_key, &failed),
        .session_token = dup_or_null(src->session_token, &failed),
        .expires_ms = src->expires_ms,
        .source = src->source,
    };
    if (failed) {
        aws_credentials_clear(&c);
        memset(dst, 0, sizeof(*dst));
        return -ENOMEM;
    }
    *dst = c;
    return 0;
}

/* Key ids and tokens travel in headers: a blank or control character would break the
 * request or smuggle a header. Secrets only feed the HMAC, so any byte will do. */
static bool header_safe(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s == 0x7f)
            return false;
    return true;
}

int aws_credentials_set(struct aws_credentials *c, const char *access_key_id,
                        const char *secret_access_key, const char *session_token, const char *what,
                        char err[XRAY_ERR_LEN])
{
    const char *bad = NULL;
    if (access_key_id == NULL || access_key_id[0] == '\0')
        bad = "an empty access key id";
    else if (secret_access_key == NULL || secret_access_key[0] == '\0')
        bad = "an empty secret access key";
    else if (!header_safe(access_key_id))
        bad = "an access key id with blanks or control characters";
    else if (session_token != NULL && !header_safe(session_token))
        bad = "a session token with blanks or control characters";
    if (bad != NULL) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "%s has %s", what, bad);
        return XRAY_EPARSE;
    }
    struct aws_credentials src = {
        .access_key_id = (char *)access_key_id,
        .secret_access_key = (char *)secret_access_key,
        .session_token =
            session_token != NULL && session_token[0] != '\0' ? (char *)session_token : NULL,
    };
    return aws_credentials_copy(c, &src);
}

struct credentials_chain *
credentials_chain_create(const struct credentials_provider *const *providers, int count)
{
    if (providers == NULL) {
        providers = credentials_default;
        count = (int)(sizeof(credentials_default) / sizeof(credentials_default[0]));
    }
    if (count <= 0 || count > CREDENTIALS_PROVIDERS_MAX)
        return NULL;
    struct credentials_chain *chain = calloc(1, sizeof(*chain));
    if (chain == NULL)
        return NULL;
    for (int i = 0; i < count; i++)
        chain->providers[i] = providers[i];
    chain->count = count;
    return chain;
}

void credentials_chain_destroy(struct credentials_chain *chain)
{
    if (chain == NULL)
        return;
    aws_credentials_clear(&chain->cur);
    free(chain);
}

void credentials_chain_invalidate(struct credentials_chain *chain)
{
    aws_credentials_clear(&chain->cur);
    chain->have = false;
    chain->retry_after_ms = 0;
}

/* Appends to a bounded text; a cut-off tail is marked with "...". */
static void append(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *dst, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(dst);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst + len, cap - len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= cap - len && cap > 4)
        memcpy(dst + cap - 4, "...", 4);
}

static bool fresh(const struct aws_credentials *c, uint64_t now_ms)
{
    return c->expires_ms == 0 || now_ms + CREDENTIALS_REFRESH_BEFORE_MS < c->expires_ms;
}

/* Asks the providers in order; fills chain->last_err on failure. */
static int chain_load(struct credentials_chain *chain, uint64_t now_ms, struct aws_credentials *out)
{
    char *msg = chain->last_err;
    snprintf(msg, XRAY_ERR_LEN, "no AWS credentials; tried");
    for (int i = 0; i < chain->count; i++) {
        const struct credentials_provider *p = chain->providers[i];
        char perr[XRAY_ERR_LEN] = "";
        struct aws_credentials c = {0};
        int rc = p->load(p, now_ms, &c, perr);
        if (rc == 0) {
            if (c.source == NULL)
                c.source = p->name;
            *out = c;
            return 0;
        }
        aws_credentials_clear(&c);
        if (rc != XRAY_ENOCREDS) {
            snprintf(msg, XRAY_ERR_LEN, "%s: %s", p->name, perr[0] ? perr : xray_strerror(rc));
            return rc;
        }
        append(msg, XRAY_ERR_LEN, "%s %s (%s)", i > 0 ? ";" : "", p->name,
               perr[0] ? perr : "nothing found");
    }
    return XRAY_ENOCREDS;
}

int credentials_chain_get(struct credentials_chain *chain, uint64_t now_ms,
                          const struct aws_credentials **out, char err[XRAY_ERR_LEN])
{
    *out = NULL;
    if (chain->have && fresh(&chain->cur, now_ms)) {
        *out = &chain->cur;
        return 0;
    }
    if (chain->have && now_ms < chain->retry_after_ms && now_ms < chain->cur.expires_ms) {
        *out = &chain->cur;
        return 0;
    }
    if (!chain->have && now_ms < chain->retry_after_ms) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "%s", chain->last_err);
        return chain->last_rc;
    }
    struct aws_credentials c = {0};
    int rc = chain_load(chain, now_ms, &c);
    if (rc == 0) {
        aws_credentials_clear(&chain->cur);
        chain->cur = c;
        chain->have = true;
        chain->retry_after_ms = 0;
        *out = &chain->cur;
        return 0;
    }
    chain->retry_after_ms = now_ms + CREDENTIALS_RETRY_MS;
    chain->last_rc = rc;
    /* Cached credentials still valid: use them and try again later. */
    if (chain->have && now_ms < chain->cur.expires_ms) {
        *out = &chain->cur;
        return 0;
    }
    aws_credentials_clear(&chain->cur);
    chain->have = false;
    if (err != NULL)
        snprintf(err, XRAY_ERR_LEN, "%s", chain->last_err);
    return rc;
}
