/* SPDX-License-Identifier: Apache-2.0 */
/* AWS credentials and the provider chain that finds them (daemon-compat.md,
 * "Credentials"): the first provider that yields wins. Each provider lives in a file
 * of its own behind struct credentials_provider; the chain (credentials_chain.c)
 * caches what it found, hands it out at once while it is fresh, and refreshes
 * temporary credentials in the background before they expire. Loop thread only. */
#ifndef XRAYD_CREDENTIALS_H
#define XRAYD_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CREDENTIALS_REFRESH_BEFORE_MS (5u * 60 * 1000) /* refresh 5 min before expiry */
#define CREDENTIALS_RETRY_MS          1000u            /* a failed load is not retried sooner */
#define CREDENTIALS_PROVIDERS_MAX     8
#define CREDENTIALS_WAITERS_MAX       256 /* callers queued while a load runs */
#define CREDENTIALS_METADATA_TIMEOUT_MS                                                            \
    1000u /* ECS and IMDS answer on the host or link-local: a second is plenty */
#define CREDENTIALS_RESPONSE_MAX (64u * 1024) /* a credentials document is ~2 KB */
#define CREDENTIALS_FILE_MAX     (64u * 1024) /* token files: STS takes <= 20000 bytes */
#define CREDENTIALS_SESSION_NAME "xrayd"      /* role session name (daemon-compat.md) */

struct http_client;
struct credentials_chain;

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

/* An expiry time as AWS writes it (ISO 8601, UTC: "2026-11-22T01:08:08Z", with or
 * without fractional seconds, "Z" or a "+hh:mm" offset) into epoch ms: s[0..len).
 * 0 or XRAY_EPARSE. Pure. */
int credentials_parse_time(const char *s, size_t len, uint64_t *ms);

/* Reads a small file that holds a token (web identity, ECS authorization) into a
 * NUL-terminated buffer (owned: free with credentials_free_secret) without its
 * trailing line break. 0, -errno, XRAY_ETOOBIG (past max) or XRAY_EPARSE (empty);
 * err names the file, never its contents. */
int credentials_read_file(const char *path, size_t max, char **out, char err[XRAY_ERR_LEN]);
/* Wipes and frees a string from credentials_read_file (NULL is fine). */
void credentials_free_secret(char *s);

/* The credentials document the ECS agent and IMDS serve, a JSON object (outside
 * input, at most CREDENTIALS_RESPONSE_MAX bytes): AccessKeyId, SecretAccessKey, Token
 * and Expiration (absent: the keys do not expire); a "Code" other than "Success" is
 * refused. Fills out (owned by the caller; source unset). 0; XRAY_EPARSE (not that
 * object, or a bad Expiration), XRAY_EFIELD (a key missing), XRAY_EUPSTREAM (Code),
 * XRAY_ETOOBIG, -ENOMEM; err names what is wrong, never a value. Pure. */
int credentials_from_json(const char *body, size_t len, struct aws_credentials *out,
                          char err[XRAY_ERR_LEN]);

struct http_client_result;
/* What a request that got no usable response amounts to: 0 when a response arrived
 * (look at its status), else XRAY_ETIMEOUT, -ECONNREFUSED, -EHOSTUNREACH, -ECANCELED,
 * XRAY_ETOOBIG or -EIO. */
int credentials_http_rc(const struct http_client_result *res);

/* What network providers need; the chain keeps its own copy for providers. */
struct credentials_context {
    struct http_client *http;         /* borrowed; NULL: the network providers have nothing */
    const char *region;               /* STS signing region; "" when unknown */
    const char *sts_endpoint;         /* STS base URL, no trailing '/'; "" when unknown */
    const char *role_arn;             /* the assume-role provider's role (-r) */
    struct credentials_chain *source; /* the assume-role provider's own credentials */
};

/* A provider's answer: rc 0 with creds (borrowed for the call: the chain copies
 * them); XRAY_ENOCREDS when the provider has nothing to offer (the chain moves on; err
 * says why in a few words); or another error when it applies but failed (the chain
 * stops there: falling through to another identity would hide the problem). err is
 * never NULL and never holds a secret. */
struct credentials_provider {
    const char *name;
    /* Starts a load and calls done exactly once: at once (environment, files) or
     * later on the loop (network). ctx is valid until done runs. */
    void (*load)(const struct credentials_provider *self, const struct credentials_context *ctx,
                 uint64_t now_ms,
                 void (*done)(void *data, int rc, const struct aws_credentials *creds,
                              const char *err),
                 void *data);
};

/* The default order (daemon-compat.md), one file each. */
extern const struct credentials_provider credentials_env_provider;          /* "env" */
extern const struct credentials_provider credentials_web_identity_provider; /* "web-identity" */
extern const struct credentials_provider credentials_profile_provider;      /* "profile" */
extern const struct credentials_provider credentials_ecs_provider;          /* "ecs" */
extern const struct credentials_provider credentials_imds_provider;         /* "imds" */
/* -r: STS AssumeRole with ctx->source's credentials (credentials_assume_role.c). */
extern const struct credentials_provider credentials_assume_role_provider; /* "assume-role" */

/* The ECS credentials URL from the environment: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 * under http://169.254.170.2, else AWS_CONTAINER_CREDENTIALS_FULL_URI (http only to a
 * loopback or the ECS/EKS agent addresses, as the SDKs allow; https anywhere).
 * 0; XRAY_ENOCREDS (neither set; err says so); XRAY_ECONFIG (err names the variable). */
int credentials_ecs_url(char *out, size_t cap, char err[XRAY_ERR_LEN]);

struct credentials_options {
    const struct credentials_provider *const *providers; /* borrowed; NULL = the default
                                                             order above */
    int count;                                           /* providers given, at most
                                                             CREDENTIALS_PROVIDERS_MAX */
    struct http_client *http; /* borrowed, outlives the chain; NULL = no network */
    const char *region;       /* copied; NULL = "" */
    const char *sts_endpoint; /* copied; NULL = "" (STS providers then fail) */
    const char *role_arn;     /* copied; NULL or "" = none. Set: the chain's credentials
                                 come from STS AssumeRole, signed with what the
                                 providers find */
};

/* NULL opt = the default providers with no network. Returns NULL on a bad count or
 * out of memory. */
struct credentials_chain *credentials_chain_create(const struct credentials_options *opt);

/* Frees the chain. No load may be running: close the HTTP client first (it cancels
 * the requests, and their callbacks finish the loads). */
void credentials_chain_destroy(struct credentials_chain *chain);

/* Hands the current credentials to cb(data, 0, creds, NULL) -- creds borrowed for
 * the call -- or a failure to cb(data, rc, NULL, err): XRAY_ENOCREDS (err names every
 * source tried and why each had nothing) or the error of the provider that failed
 * (err starts with its name); never a secret.
 * - Fresh cached credentials: cb runs at once. Within CREDENTIALS_REFRESH_BEFORE_MS of
 *   their expiry (or half their lifetime, when that is shorter) a refresh starts in
 *   the background and cb still gets the cached ones at once; a failed refresh keeps
 *   them until they expire.
 * - Nothing usable: the caller is queued and cb runs when the load ends, which may be
 *   before this returns. A failed load is not retried for CREDENTIALS_RETRY_MS: calls
 *   inside that window get its failure at once.
 * Returns 0 (cb will run exactly once), or XRAY_EFULL (CREDENTIALS_WAITERS_MAX callers
 * already queued) and cb never runs. */
int credentials_chain_fetch(struct credentials_chain *chain, uint64_t now_ms,
                            void (*cb)(void *data, int rc, const struct aws_credentials *creds,
                                       const char *err),
                            void *data);

/* Drops the cached credentials so the next fetch loads them again: for a caller that
 * saw the upstream reject them (ExpiredToken, InvalidClientTokenId). A load already
 * running goes on and its result is used. */
void credentials_chain_invalidate(struct credentials_chain *chain);

/* True while a load (first or background) is running. */
bool credentials_chain_loading(const struct credentials_chain *chain);

#endif
