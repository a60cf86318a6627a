/* SPDX-License-Identifier: Apache-2.0 */
/* AWS credentials and the provider chain that finds them (daemon-compat.md,
 * "Credentials"): the first provider that yields wins. Each provider lives in a file
 * of its own behind struct credentials_provider. The chain caches what it found and
 * asks again only when temporary credentials near their expiry. Loop thread only. */
#ifndef XRAYD_CREDENTIALS_H
#define XRAYD_CREDENTIALS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define CREDENTIALS_REFRESH_BEFORE_MS (5u * 60 * 1000) /* refresh 5 min before expiry */
#define CREDENTIALS_RETRY_MS          1000u            /* a failed load is not retried sooner */
#define CREDENTIALS_PROVIDERS_MAX     8

struct aws_credentials {
    char *access_key_id;     /* owned */
    char *secret_access_key; /* owned; never logged */
    char *session_token;     /* owned; NULL for long-term keys */
    uint64_t expires_ms;     /* epoch ms; 0 = does not expire */
    const char *source;      /* the provider's name, a constant */
};

/* Frees the strings (the secret and token are wiped first) and zeroes *c. */
void aws_credentials_clear(struct aws_credentials *c);
/* Deep copy. 0 or -ENOMEM (dst is then cleared). */
int aws_credentials_copy(struct aws_credentials *dst, const struct aws_credentials *src);
/* Fills c with copies of the three strings (token may be NULL or ""), after checking
 * them: key id and token must be free of blanks and control characters, both keys
 * non-empty. 0, XRAY_EPARSE (err names what, from `what`, never a value) or -ENOMEM. */
int aws_credentials_set(struct aws_credentials *c, const char *access_key_id,
                        const char *secret_access_key, const char *session_token, const char *what,
                        char err[XRAY_ERR_LEN]);

struct credentials_provider {
    const char *name;
    /* Fills out (owned by the caller) and returns 0, or returns XRAY_ENOCREDS when this
     * provider has nothing to offer (the chain moves on; err says why in a few words),
     * or another error when it applies but failed (the chain stops there: falling
     * through to another identity would hide the problem; err says why, without
     * secrets). */
    int (*load)(const struct credentials_provider *self, uint64_t now_ms,
                struct aws_credentials *out, char err[XRAY_ERR_LEN]);
};

extern const struct credentials_provider credentials_env_provider;     /* credentials_env.c */
extern const struct credentials_provider credentials_profile_provider; /* credentials_profile.c */

struct credentials_chain;

/* A chain over providers (borrowed, in order, at most CREDENTIALS_PROVIDERS_MAX); NULL
 * for the default chain. Returns NULL on a bad count or out of memory. */
struct credentials_chain *
credentials_chain_create(const struct credentials_provider *const *providers, int count);
void credentials_chain_destroy(struct credentials_chain *chain);
/* Current credentials, loading or refreshing them if needed. *out is borrowed and
 * valid until the next call. When a refresh fails while the cached credentials have
 * not expired yet, those are returned. A failure is remembered for
 * CREDENTIALS_RETRY_MS: calls inside that window return it again without loading.
 * 0, XRAY_ENOCREDS (err names every source tried and why each had nothing), or the
 * error of the provider that failed (err starts with its name). */
int credentials_chain_get(struct credentials_chain *chain, uint64_t now_ms,
                          const struct aws_credentials **out, char err[XRAY_ERR_LEN]);
/* Drops the cached credentials so the next get loads them again: for a caller that
 * saw the upstream reject them (ExpiredToken, InvalidClientTokenId). */
void credentials_chain_invalidate(struct credentials_chain *chain);

#endif
