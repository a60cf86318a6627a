/* SPDX-License-Identifier: Apache-2.0 */
/* The credential provider chain: asks each provider in order, caches what the first
 * one yields, and hands the cache out at once while it is fresh. Callers that find
 * nothing usable wait in a bounded queue for the one load that runs at a time; a
 * refresh before expiry runs in the background while the cached credentials are still
 * handed out, so uploads never stall on it. It owns the cached copy and wipes secrets
 * when it lets them go; it never logs and never reads the clock.
 *
 * How a load runs: chain_ask() starts provider `index`; its answer (at once for the
 * environment and files, later for the network ones) comes back in chain_on_answer(),
 * which either finishes the load or asks the next provider. At most
 * CREDENTIALS_PROVIDERS_MAX answers can nest, so the recursion is bounded. */
#include "aws/credentials.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The default order (daemon-compat.md, "Credentials"). Adding a provider is one line
 * here plus its file. */
static const struct credentials_provider *const chain_default[] = {
    &credentials_env_provider, &credentials_web_identity_provider, &credentials_profile_provider,
    &credentials_ecs_provider, &credentials_imds_provider,
};

struct chain_waiter {
    void (*cb)(void *data, int rc, const struct aws_credentials *creds, const char *err);
    void *data;
};

struct credentials_chain {
    const struct credentials_provider *providers[CREDENTIALS_PROVIDERS_MAX];
    int count;
    struct credentials_context ctx; /* its strings are the copies below */
    char *region;
    char *sts_endpoint;
    char *role_arn;
    struct credentials_chain *source; /* owned; set with a role */

    struct aws_credentials cur;
    bool have;
    uint64_t obtained_ms; /* the time of the load that produced cur */

    bool loading;
    int index;        /* the provider being asked */
    uint64_t load_ms; /* the time the running load started */
    uint64_t retry_after_ms;
    int last_rc;
    char last_err[XRAY_ERR_LEN];

    struct chain_waiter waiters[CREDENTIALS_WAITERS_MAX];
    unsigned nwaiters;
};

static void chain_ask(struct credentials_chain *chain);

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

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

struct credentials_chain *credentials_chain_create(const struct credentials_options *opt)
{
    static const struct credentials_options none = {0};
    if (opt == NULL)
        opt = &none;
    const struct credentials_provider *const *providers = opt->providers;
    int count = opt->count;
    if (providers == NULL) {
        providers = chain_default;
        count = (int)(sizeof(chain_default) / sizeof(chain_default[0]));
    }
    if (count <= 0 || count > CREDENTIALS_PROVIDERS_MAX)
        return NULL;
    struct credentials_chain *chain = calloc(1, sizeof(*chain));
    if (chain == NULL)
        return NULL;
    chain->region = dup_or_empty(opt->region);
    chain->sts_endpoint = dup_or_empty(opt->sts_endpoint);
    chain->role_arn = dup_or_empty(opt->role_arn);
    if (chain->region == NULL || chain->sts_endpoint == NULL || chain->role_arn == NULL) {
        credentials_chain_destroy(chain);
        return NULL;
    }
    chain->ctx = (struct credentials_context){
        .http = opt->http,
        .region = chain->region,
        .sts_endpoint = chain->sts_endpoint,
        .role_arn = chain->role_arn,
    };
    if (chain->role_arn[0] != '\0') {
        /* With a role, what the providers find only signs AssumeRole: they form a
         * chain of their own, and this one asks STS. Both cache and refresh alike. */
        struct credentials_options src = *opt;
        src.role_arn = NULL;
        if ((chain->source = credentials_chain_create(&src)) == NULL) {
            credentials_chain_destroy(chain);
            return NULL;
        }
        chain->ctx.source = chain->source;
        chain->providers[0] = &credentials_assume_role_provider;
        chain->count = 1;
        return chain;
    }
    for (int i = 0; i < count; i++)
        chain->providers[i] = providers[i];
    chain->count = count;
    return chain;
}

void credentials_chain_destroy(struct credentials_chain *chain)
{
    if (chain == NULL)
        return;
    credentials_chain_destroy(chain->source);
    aws_credentials_clear(&chain->cur);
    free(chain->region);
    free(chain->sts_endpoint);
    free(chain->role_arn);
    free(chain);
}

void credentials_chain_invalidate(struct credentials_chain *chain)
{
    aws_credentials_clear(&chain->cur);
    chain->have = false;
    chain->retry_after_ms = 0;
    /* Credentials the upstream refused may have come from the source chain's cache. */
    if (chain->source != NULL)
        credentials_chain_invalidate(chain->source);
}

bool credentials_chain_loading(const struct credentials_chain *chain)
{
    return chain->loading;
}

/* Fresh = not yet in the refresh window: CREDENTIALS_REFRESH_BEFORE_MS before expiry,
 * or the second half of their lifetime when that is shorter, so short sessions are
 * not reloaded on every call. */
static bool chain_fresh(const struct credentials_chain *chain, uint64_t now_ms)
{
    uint64_t exp = chain->cur.expires_ms;
    if (exp == 0)
        return true;
    uint64_t window = CREDENTIALS_REFRESH_BEFORE_MS;
    if (exp > chain->obtained_ms && (exp - chain->obtained_ms) / 2 < window)
        window = (exp - chain->obtained_ms) / 2;
    return now_ms + window < exp;
}

/* Ends the running load: keeps what it found, or remembers its failure (cached
 * credentials stay until they expire), then answers every queued caller. */
static void chain_finish(struct credentials_chain *chain, int rc, struct aws_credentials *found)
{
    chain->loading = false;
    if (rc == 0) {
        aws_credentials_clear(&chain->cur);
        chain->cur = *found;
        chain->have = true;
        chain->obtained_ms = chain->load_ms;
        chain->retry_after_ms = 0;
    } else {
        chain->last_rc = rc;
        chain->retry_after_ms = chain->load_ms + CREDENTIALS_RETRY_MS;
    }
    /* Callbacks may fetch again (and queue, or start another load): work on a copy. */
    unsigned n = chain->nwaiters;
    struct chain_waiter w[CREDENTIALS_WAITERS_MAX];
    memcpy(w, chain->waiters, n * sizeof(w[0]));
    chain->nwaiters = 0;
    char err[XRAY_ERR_LEN];
    snprintf(err, sizeof(err), "%s", chain->last_err);
    for (unsigned i = 0; i < n; i++) {
        if (rc == 0 && chain->have)
            w[i].cb(w[i].data, 0, &chain->cur, NULL);
        else if (rc == 0) /* a callback before this one invalidated them */
            w[i].cb(w[i].data, XRAY_ENOCREDS, NULL, "credentials were invalidated");
        else
            w[i].cb(w[i].data, rc, NULL, err);
    }
}

static void chain_on_answer(void *data, int rc, const struct aws_credentials *creds,
                            const char *err)
{
    struct credentials_chain *chain = data;
    const struct credentials_provider *p = chain->providers[chain->index];
    if (err == NULL || err[0] == '\0')
        err = rc == XRAY_ENOCREDS ? "nothing found" : xray_strerror(rc);
    if (rc == 0) {
        struct aws_credentials c;
        rc = aws_credentials_copy(&c, creds);
        if (rc == 0) {
            if (c.source == NULL)
                c.source = p->name;
            chain_finish(chain, 0, &c);
            return;
        }
        err = "out of memory";
    }
    /* With a role, the one provider's answer is the whole story: it is not a list. */
    if (rc == XRAY_ENOCREDS && chain->source == NULL) {
        append(chain->last_err, sizeof(chain->last_err), "%s %s (%s)", chain->index > 0 ? ";" : "",
               p->name, err);
        if (++chain->index < chain->count) {
            chain_ask(chain);
            return;
        }
    } else {
        snprintf(chain->last_err, sizeof(chain->last_err), "%s: %s", p->name, err);
    }
    chain_finish(chain, rc, NULL);
}

static void chain_ask(struct credentials_chain *chain)
{
    const struct credentials_provider *p = chain->providers[chain->index];
    p->load(p, &chain->ctx, chain->load_ms, chain_on_answer, chain);
}

static void chain_start(struct credentials_chain *chain, uint64_t now_ms)
{
    chain->loading = true;
    chain->index = 0;
    chain->load_ms = now_ms;
    snprintf(chain->last_err, sizeof(chain->last_err), "no AWS credentials; tried");
    chain_ask(chain);
}

int credentials_chain_fetch(struct credentials_chain *chain, uint64_t now_ms,
                            void (*cb)(void *data, int rc, const struct aws_credentials *creds,
                                       const char *err),
                            void *data)
{
    if (chain->have && chain->cur.expires_ms != 0 && now_ms >= chain->cur.expires_ms) {
        aws_credentials_clear(&chain->cur); /* expired: of no use to anyone */
        chain->have = false;
    }
    if (chain->have) {
        if (!chain_fresh(chain, now_ms) && !chain->loading && now_ms >= chain->retry_after_ms)
            chain_start(chain, now_ms); /* in the background: cb gets the cached ones */
        if (chain->have) {
            cb(data, 0, &chain->cur, NULL);
            return 0;
        }
    }
    if (!chain->loading && now_ms < chain->retry_after_ms) {
        char err[XRAY_ERR_LEN];
        snprintf(err, sizeof(err), "%s", chain->last_err);
        cb(data, chain->last_rc, NULL, err);
        return 0;
    }
    if (chain->nwaiters >= CREDENTIALS_WAITERS_MAX)
        return XRAY_EFULL;
    chain->waiters[chain->nwaiters++] = (struct chain_waiter){cb, data};
    if (!chain->loading)
        chain_start(chain, now_ms);
    return 0;
}
