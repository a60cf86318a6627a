/* SPDX-License-Identifier: Apache-2.0 */
/* The sampling authority: what X-Ray's GetSamplingTargets does, for the SDKs that
 * report to this daemon. It shares each rule's ReservoirSize among the clients that
 * reported on it lately and never lets the unexpired grants of a rule add up to
 * more than its ReservoirSize. Single-threaded; bounded by the rule count and
 * max_clients_per_rule.
 *
 * How it works (per rule, at each report of a client C):
 *  1. Clients silent for the window are forgotten (their grants expired long ago).
 *  2. C's weight is its request rate: RequestCount over the time since its previous
 *     report; a newcomer weighs as the average of the others (an equal share).
 *  3. C's share is ReservoirSize * w_C / sum(w), rounded down, plus one when C is
 *     among the (ReservoirSize - sum of rounded-down shares) clients with the largest
 *     remainders (ties by ClientID): shares add up to exactly ReservoirSize.
 *  4. C is granted min(share, ReservoirSize - sum over other clients of their
 *     outstanding grant), where a client's outstanding grant is the largest of its
 *     grants not yet expired (one second past the TTL, for the client's rounding).
 *     Every grant is kept until it expires, so a shrinking share frees capacity only
 *     when the larger, older grant dies: the sum never exceeds ReservoirSize. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define AUTH_GRANTS 4 /* grants remembered per client; older ones are merged */

struct grant {
    int64_t quota;
    uint64_t until_ms; /* counted as outstanding before this */
};

struct client {
    char id[XRAY_SAMPLING_CLIENT_ID_LEN + 1];
    uint64_t last_ms; /* last report */
    uint64_t weight;  /* requests per 1000 s over its last interval */
    bool weighed;     /* false for a newcomer (one report) */
    uint8_t n_grants;
    struct grant g[AUTH_GRANTS];
};

struct arule {
    struct client *c;
    uint32_t n, cap;
    uint64_t requests, sampled, borrowed; /* totals since since_s */
    int64_t since_s;
};

struct xray_sampling_authority {
    struct xray_sampling_authority_config cfg;
    struct xray_sampling_rules *rules;
    struct arule *r; /* one per rule of rules, same index */
    int64_t last_mod_s;
    struct xray_sampling_authority_counters k;
};

static uint64_t outstanding(const struct client *c, uint64_t now_ms)
{
    int64_t q = 0;
    for (int i = 0; i < c->n_grants; i++)
        if (now_ms < c->g[i].until_ms && c->g[i].quota > q)
            q = c->g[i].quota;
    return (uint64_t)q;
}

static void add_grant(struct client *c, int64_t quota, uint64_t until_ms, uint64_t now_ms)
{
    int k = 0;
    for (int i = 0; i < c->n_grants; i++)
        if (now_ms < c->g[i].until_ms)
            c->g[k++] = c->g[i];
    if (k == AUTH_GRANTS) {
        /* Full of live grants (a client reporting very often): merge the two oldest
         * into one as large and as long-lived as either - conservative. */
        if (c->g[1].quota < c->g[0].quota)
            c->g[1].quota = c->g[0].quota;
        if (c->g[1].until_ms < c->g[0].until_ms)
            c->g[1].until_ms = c->g[0].until_ms;
        memmove(&c->g[0], &c->g[1], (AUTH_GRANTS - 1) * sizeof(c->g[0]));
        k--;
    }
    c->g[k].quota = quota;
    c->g[k].until_ms = until_ms;
    c->n_grants = (uint8_t)(k + 1);
}

XRAY_SAMPLING_API struct xray_sampling_authority *
xray_sampling_authority_create(const struct xray_sampling_authority_config *cfg, uint64_t now_ms)
{
    struct xray_sampling_authority *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    if (cfg != NULL)
        a->cfg = *cfg;
    if (a->cfg.max_clients_per_rule == 0)
        a->cfg.max_clients_per_rule = 256;
    if (a->cfg.quota_ttl_s == 0)
        a->cfg.quota_ttl_s = 15;
    if (a->cfg.interval_s == 0)
        a->cfg.interval_s = XRAY_SAMPLING_DEFAULT_INTERVAL;
    if (a->cfg.window_s == 0)
        a->cfg.window_s = 30;
    struct xray_sampling_rules *def = xray_sampling_rules_default((int64_t)(now_ms / 1000));
    if (def == NULL || xray_sampling_authority_set_rules(a, def, now_ms) != 0) {
        xray_sampling_rules_free(def);
        free(a);
        return NULL;
    }
    xray_sampling_rules_free(def); /* set_rules took its own reference */
    return a;
}

static void free_rules_state(struct arule *r, size_t n)
{
    for (size_t i = 0; r != NULL && i < n; i++)
        free(r[i].c);
    free(r);
}

XRAY_SAMPLING_API void xray_sampling_authority_destroy(struct xray_sampling_authority *auth)
{
    if (auth == NULL)
        return;
    free_rules_state(auth->r, auth->rules->n);
    xray_sampling_rules_free(auth->rules);
    free(auth);
}

XRAY_SAMPLING_API int xray_sampling_authority_set_rules(struct xray_sampling_authority *auth,
                                                        struct xray_sampling_rules *rules,
                                                        uint64_t now_ms)
{
    struct arule *r = calloc(rules->n ? rules->n : 1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    int64_t now_s = (int64_t)(now_ms / 1000);
    for (size_t i = 0; i < rules->n; i++) {
        r[i].since_s = now_s;
        int j =
            auth->rules != NULL ? xray_sampling_rules_find(auth->rules, rules->rule[i].name) : -1;
        if (j >= 0) {
            /* The same rule by name keeps its clients, grants and totals. */
            r[i] = auth->r[j];
            memset(&auth->r[j], 0, sizeof(auth->r[j]));
        }
    }
    if (auth->rules != NULL) {
        for (size_t j = 0; j < auth->rules->n; j++)
            auth->k.clients -= auth->r[j].n;
        free_rules_state(auth->r, auth->rules->n);
    }
    xray_sampling_rules_free(auth->rules);
    auth->rules = xray_sampling_rules_ref(rules);
    auth->r = r;
    auth->last_mod_s = now_s;
    return 0;
}

XRAY_SAMPLING_API struct xray_sampling_rules *
xray_sampling_authority_rules(const struct xray_sampling_authority *auth)
{
    return auth->rules;
}

XRAY_SAMPLING_API int64_t
xray_sampling_authority_last_modification(const struct xray_sampling_authority *auth)
{
    return auth->last_mod_s;
}

/* Reported within the window (a report from "the future" of a clock that went back
 * counts as recent). */
static bool active(const struct xray_sampling_authority *a, const struct client *c, uint64_t now_ms)
{
    return now_ms < c->last_ms || now_ms - c->last_ms < (uint64_t)a->cfg.window_s * 1000;
}

static void forget_departed(struct xray_sampling_authority *a, struct arule *r, uint64_t now_ms)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        struct client *c = &r->c[i];
        if (!active(a, c, now_ms) && outstanding(c, now_ms) == 0) {
            a->k.clients_expired++;
            a->k.clients--;
            continue;
        }
        r->c[k++] = *c;
    }
    r->n = k;
}

static struct client *find_client(struct xray_sampling_authority *a, struct arule *r,
                                  const char *id)
{
    for (uint32_t i = 0; i < r->n; i++)
        if (strcmp(r->c[i].id, id) == 0)
            return &r->c[i];
    if (r->n >= a->cfg.max_clients_per_rule)
        return NULL;
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 8;
        if (cap > a->cfg.max_clients_per_rule)
            cap = a->cfg.max_clients_per_rule;
        struct client *c = realloc(r->c, cap * sizeof(*c));
        if (c == NULL)
            return NULL;
        r->c = c;
        r->cap = cap;
    }
    struct client *c = &r->c[r->n++];
    memset(c, 0, sizeof(*c));
    memcpy(c->id, id, sizeof(c->id));
    a->k.clients++;
    return c;
}

/* Step 3: the share of client `me` among the active clients of r. */
static int64_t share_of(const struct xray_sampling_authority *a, const struct arule *r,
                        const struct client *me, int64_t size, uint64_t now_ms)
{
    uint64_t sum = 0, n_weighed = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        const struct client *c = &r->c[i];
        if (active(a, c, now_ms) && c->weighed) {
            sum += c->weight;
            n_weighed++;
        }
    }
    uint64_t avg = n_weighed > 0 ? sum / n_weighed : 0;
    bool equal = sum == 0; /* nobody weighed yet, or every rate is 0 */
#define W(c) (equal ? 1 : (c)->weighed ? (c)->weight : (avg ? avg : 1))
    uint64_t total = 0;
    for (uint32_t i = 0; i < r->n; i++)
        if (active(a, &r->c[i], now_ms))
            total += W(&r->c[i]);
    if (total == 0)
        return 0;
    /* Exact integer largest remainder: size < 2^31 and weights < 2^32. */
    uint64_t floor_sum = 0, my_rem = (uint64_t)size * W(me) % total, rank = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        const struct client *c = &r->c[i];
        if (!active(a, c, now_ms))
            continue;
        uint64_t p = (uint64_t)size * W(c);
        floor_sum += p / total;
        uint64_t rem = p % total;
        if (c != me && (rem > my_rem || (rem == my_rem && strcmp(c->id, me->id) < 0)))
            rank++;
    }
    int64_t share = (int64_t)((uint64_t)size * W(me) / total);
#undef W
    return share + ((uint64_t)size - floor_sum > rank ? 1 : 0);
}

static void report_one(struct xray_sampling_authority *a, size_t ri,
                       const struct xray_sampling_statistics *d, uint64_t now_ms,
                       struct xray_sampling_target *t)
{
    const struct xray_sampling_rule *rule = &a->rules->rule[ri];
    struct arule *r = &a->r[ri];
    int64_t now_s = (int64_t)(now_ms / 1000);
    r->requests += d->request_count;
    r->sampled += d->sampled_count;
    r->borrowed += d->borrow_count;
    a->k.documents++;

    memcpy(t->rule_name, rule->name, strlen(rule->name) + 1);
    t->have = XRAY_SAMPLING_TARGET_RATE | XRAY_SAMPLING_TARGET_QUOTA |
              XRAY_SAMPLING_TARGET_QUOTA_TTL | XRAY_SAMPLING_TARGET_INTERVAL;
    t->fixed_rate = rule->fixed_rate;
    t->interval_s = (int32_t)a->cfg.interval_s;
    t->quota_ttl_s = now_s + a->cfg.quota_ttl_s;
    t->reservoir_quota = 0;

    forget_departed(a, r, now_ms);
    struct client *c = find_client(a, r, d->client_id);
    if (c == NULL) {
        a->k.clients_refused++;
        return; /* quota 0: the client samples at the rate and does not borrow */
    }
    if (c->last_ms != 0 && now_ms > c->last_ms) {
        uint64_t elapsed = now_ms - c->last_ms, window = (uint64_t)a->cfg.window_s * 1000;
        if (elapsed < 1000)
            elapsed = 1000;
        if (elapsed > window)
            elapsed = window;
        uint64_t req = d->request_count > (1ull << 40) ? (1ull << 40) : d->request_count;
        uint64_t w = req * 1000000 / elapsed;
        c->weight = w > UINT32_MAX ? UINT32_MAX : w;
        c->weighed = true;
    }
    c->last_ms = now_ms ? now_ms : 1;

    int64_t size = rule->reservoir_size, others = 0;
    for (uint32_t i = 0; i < r->n; i++)
        if (&r->c[i] != c)
            others += (int64_t)outstanding(&r->c[i], now_ms);
    int64_t free_q = size - others;
    int64_t grant = share_of(a, r, c, size, now_ms);
    if (grant > free_q)
        grant = free_q > 0 ? free_q : 0;
    t->reservoir_quota = grant;
    add_grant(c, grant, (uint64_t)(t->quota_ttl_s + 1) * 1000, now_ms);
}

XRAY_SAMPLING_API int xray_sampling_authority_report(
    struct xray_sampling_authority *auth, const struct xray_sampling_statistics *docs, size_t n,
    uint64_t now_ms, struct xray_sampling_target *targets, size_t *n_targets,
    struct xray_sampling_unprocessed *unproc, size_t *n_unproc)
{
    *n_targets = 0;
    *n_unproc = 0;
    if (n > XRAY_SAMPLING_MAX_STATISTICS)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int ri = xray_sampling_rules_find(auth->rules, docs[i].rule_name);
        if (ri < 0 || auth->rules->rule[ri].drop != 0) {
            struct xray_sampling_unprocessed *u = &unproc[(*n_unproc)++];
            memcpy(u->rule_name, docs[i].rule_name, sizeof(u->rule_name));
            snprintf(u->error_code, sizeof(u->error_code), "400");
            snprintf(u->message, sizeof(u->message), "no sampling rule of that name is served");
            auth->k.unknown_rules++;
            continue;
        }
        /* One target per rule: a repeated rule's later document answers. */
        size_t t = 0;
        while (t < *n_targets && strcmp(targets[t].rule_name, docs[i].rule_name) != 0)
            t++;
        if (t == *n_targets)
            (*n_targets)++;
        report_one(auth, (size_t)ri, &docs[i], now_ms, &targets[t]);
    }
    return 0;
}

XRAY_SAMPLING_API int xray_sampling_authority_targets(struct xray_sampling_authority *auth,
                                                      const char *body, size_t len, uint64_t now_ms,
                                                      char **out, size_t *out_len, char *err)
{
    struct xray_sampling_statistics docs[XRAY_SAMPLING_MAX_STATISTICS];
    struct xray_sampling_target t[XRAY_SAMPLING_MAX_STATISTICS];
    struct xray_sampling_unprocessed u[XRAY_SAMPLING_MAX_STATISTICS];
    size_t n, nt, nu;
    *out = NULL;
    int rc = xray_sampling_statistics_parse(body, len, docs, XRAY_SAMPLING_MAX_STATISTICS, &n, err);
    if (rc != 0) {
        auth->k.bad_requests++;
        return rc;
    }
    auth->k.requests++;
    xray_sampling_authority_report(auth, docs, n, now_ms, t, &nt, u, &nu);
    return xray_sampling_targets_serialize(t, nt, u, nu, auth->last_mod_s, out, out_len);
}

XRAY_SAMPLING_API int64_t xray_sampling_authority_outstanding(
    const struct xray_sampling_authority *auth, const char *rule, uint64_t now_ms)
{
    int ri = xray_sampling_rules_find(auth->rules, rule);
    if (ri < 0)
        return -1;
    int64_t sum = 0;
    for (uint32_t i = 0; i < auth->r[ri].n; i++)
        sum += (int64_t)outstanding(&auth->r[ri].c[i], now_ms);
    return sum;
}

XRAY_SAMPLING_API size_t xray_sampling_authority_summaries(
    const struct xray_sampling_authority *auth, struct xray_sampling_summary *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < auth->rules->n && k < max; i++) {
        const struct xray_sampling_rule *rule = &auth->rules->rule[i];
        if (rule->drop != 0)
            continue;
        struct xray_sampling_summary *s = &out[k++];
        memcpy(s->rule_name, rule->name, strlen(rule->name) + 1);
        s->timestamp = auth->r[i].since_s;
        s->request_count = auth->r[i].requests;
        s->sampled_count = auth->r[i].sampled;
        s->borrow_count = auth->r[i].borrowed;
    }
    return k;
}

XRAY_SAMPLING_API int
xray_sampling_authority_summaries_body(const struct xray_sampling_authority *auth, char **out,
                                       size_t *len)
{
    struct xray__json w = {0};
    xray__json_raw(&w, "{\"SamplingStatisticSummaries\":[");
    bool first = true;
    for (size_t i = 0; i < auth->rules->n; i++) {
        const struct xray_sampling_rule *rule = &auth->rules->rule[i];
        if (rule->drop != 0)
            continue;
        xray__json_raw(&w, first ? "{\"RuleName\":" : ",{\"RuleName\":");
        first = false;
        xray__json_str(&w, rule->name);
        xray__json_raw(&w, ",\"Timestamp\":");
        xray__json_i64(&w, auth->r[i].since_s);
        xray__json_raw(&w, ",\"RequestCount\":");
        xray__json_u64(&w, auth->r[i].requests);
        xray__json_raw(&w, ",\"BorrowCount\":");
        xray__json_u64(&w, auth->r[i].borrowed);
        xray__json_raw(&w, ",\"SampledCount\":");
        xray__json_u64(&w, auth->r[i].sampled);
        xray__json_raw(&w, "}");
    }
    xray__json_raw(&w, "]}");
    return xray__json_finish(&w, out, len);
}

XRAY_SAMPLING_API void
xray_sampling_authority_counters(const struct xray_sampling_authority *auth,
                                 struct xray_sampling_authority_counters *out)
{
    *out = auth->k;
}
