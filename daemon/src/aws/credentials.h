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

struct aws_credentials {
    char *access_key_id;     /* owned */
    char *secret_access_key; /* owned; never logged */
    char *session_token;     /* owned; NULL for long-term keys */
    uint64_t expires_ms;     /* epoch ms; 0 = does not expire */
    const char *source;      /* the provider's name, a constant */
};

void aws_credentials_clear(struct aws_credentials *c);
/* Deep copy. 0 or -ENOMEM. */
int aws_credentials_copy(struct aws_credentials *dst, const struct aws_credentials *src);

struct credentials_provider {
    const char *name;
    /* Fills out (owned by the caller) and returns 0, or returns XRAY_ENOCREDS when this
     * provider has nothing to offer (the chain moves on), or another error when it
     * applies but failed (err says why, without secrets). */
    int (*load)(const struct credentials_provider *self, uint64_t now_ms,
                struct aws_credentials *out, char err[XRAY_ERR_LEN]);
};

extern const struct credentials_provider credentials_env_provider;     /* credentials_env.c */
extern const struct credentials_provider credentials_profile_provider; /* credentials_profile.c */

struct credentials_chain;

/* A chain over providers (borrowed, in order); NULL for the default chain. */
struct credentials_chain *credentials_chain_create(const struct credentials_provider *const *providers,
                                                   int count);
void credentials_chain_destroy(struct credentials_chain *chain);
/* Current credentials, loading or refreshing them if needed. *out is borrowed and
 * valid until the next call. XRAY_ENOCREDS (err says which sources were tried) or 0. */
int credentials_chain_get(struct credentials_chain *chain, uint64_t now_ms,
                          const struct aws_credentials **out, char err[XRAY_ERR_LEN]);

#endif
