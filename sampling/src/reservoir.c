/* SPDX-License-Identifier: Apache-2.0 */
/* The decision of one sampling client (an SDK process, or the daemon deciding per
 * trace): per rule a reservoir quota granted by an authority (or the rule's own
 * ReservoirSize in local mode), one borrow per second while no quota is live, then
 * the fixed rate; the counters an SDK reports, and the targets it applies.
 *
 * How it works: every per-rule field is a C11 atomic in the rule's own cache line,
 * so a decision takes no lock and never allocates. The quota's second and the count
 * taken in it share one 64-bit word (second << 32 | taken) advanced by
 * compare-and-swap, which is what makes "at most quota per second" exact under
 * contention; the borrow second is claimed the same way. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct slot {
    _Alignas(64) _Atomic uint64_t sec_taken; /* epoch second << 32 | sampled by quota in it */
    _Atomic int64_t quota;                   /* -1: never set */
    _Atomic int64_t quota_ttl_s;             /* epoch s */
    _Atomic uint64_t rate_bits;              /* the double in force */
    _Atomic uint64_t borrow_sec;             /* last second borrowed in, plus one; 0 never */
    _Atomic uint64_t requests, sampled, borrowed;
    _Atomic uint64_t last_report_ms;
    _Atomic int32_t interval_s;
    int64_t reservoir; /* the rule's ReservoirSize (immutable) */
};

struct xray_sampling_state {
    struct xray_sampling_rules *rules;
    struct slot *slot; /* one per rule, same index */
    unsigned flags;
    int64_t fetched_s;
    char client_id[XRAY_SAMPLING_CLIENT_ID_LEN + 1];
};

static uint64_t rate_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

static double bits_to_rate(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

#define LD(x)    atomic_load_explicit(&(x), memory_order_relaxed)
#define ST(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

XRAY_SAMPLING_API void xray_sampling_client_id(char out[XRAY_SAMPLING_CLIENT_ID_LEN + 1],
                                               const struct xray_sampling_random *rng)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t r = 0;
    for (int i = 0; i < XRAY_SAMPLING_CLIENT_ID_LEN; i++) {
        if (i % 16 == 0)
            r = rng->next(rng->ctx);
        out[i] = hex[r & 0xf];
        r >>= 4;
    }
    out[XRAY_SAMPLING_CLIENT_ID_LEN] = '\0';
}

XRAY_SAMPLING_API struct xray_sampling_state *
xray_sampling_state_create(struct xray_sampling_rules *rules, const char *client_id, unsigned flags,
                           const struct xray_sampling_state *carry_from, uint64_t now_ms)
{
    struct xray_sampling_state *st = calloc(1, sizeof(*st));
    size_t n = rules->n ? rules->n : 1;
    struct slot *slot = aligned_alloc(_Alignof(struct slot), n * sizeof(struct slot));
    if (st == NULL || slot == NULL) {
        free(st);
        free(slot);
        return NULL;
    }
    memset(slot, 0, n * sizeof(struct slot));
    bool local = flags & XRAY_SAMPLING_STATE_LOCAL;
    for (size_t i = 0; i < rules->n; i++) {
        const struct xray_sampling_rule *r = &rules->rule[i];
        struct slot *s = &slot[i];
        s->reservoir = r->reservoir_size;
        atomic_init(&s->sec_taken, 0);
        atomic_init(&s->quota, local ? r->reservoir_size : -1);
        atomic_init(&s->quota_ttl_s, local ? INT64_MAX : 0);
        atomic_init(&s->rate_bits, rate_to_bits(r->fixed_rate));
        atomic_init(&s->borrow_sec, 0);
        atomic_init(&s->requests, 0);
        atomic_init(&s->sampled, 0);
        atomic_init(&s->borrowed, 0);
        atomic_init(&s->last_report_ms, 0);
        atomic_init(&s->interval_s, XRAY_SAMPLING_DEFAULT_INTERVAL);
        int j = carry_from != NULL ? xray_sampling_rules_find(carry_from->rules, r->name) : -1;
        if (j < 0)
            continue;
        /* The same rule by name: keep what the authority granted and what the
         * client has not reported yet; the rule's own fields come from the new set. */
        struct slot *o = &carry_from->slot[j];
        if (!local && !(carry_from->flags & XRAY_SAMPLING_STATE_LOCAL)) {
            ST(s->quota, LD(o->quota));
            ST(s->quota_ttl_s, LD(o->quota_ttl_s));
            ST(s->borrow_sec, LD(o->borrow_sec));
        }
        ST(s->sec_taken, LD(o->sec_taken));
        ST(s->requests, LD(o->requests));
        ST(s->sampled, LD(o->sampled));
        ST(s->borrowed, LD(o->borrowed));
        ST(s->last_report_ms, LD(o->last_report_ms));
        ST(s->interval_s, LD(o->interval_s));
    }
    st->rules = xray_sampling_rules_ref(rules);
    st->slot = slot;
    st->flags = flags;
    st->fetched_s = (int64_t)(now_ms / 1000);
    if (client_id != NULL) {
        size_t len = strnlen(client_id, XRAY_SAMPLING_CLIENT_ID_LEN);
        memcpy(st->client_id, client_id, len);
        st->client_id[len] = '\0';
    }
    return st;
}

XRAY_SAMPLING_API void xray_sampling_state_destroy(struct xray_sampling_state *state)
{
    if (state == NULL)
        return;
    xray_sampling_rules_free(state->rules);
    free(state->slot);
    free(state);
}

XRAY_SAMPLING_API struct xray_sampling_rules *
xray_sampling_state_rules(const struct xray_sampling_state *state)
{
    return state->rules;
}

/* Takes one from this second's quota; false when it is used up. */
static bool take_quota(struct slot *s, uint64_t sec, int64_t quota)
{
    uint64_t cur = LD(s->sec_taken);
    for (;;) {
        uint64_t csec = cur >> 32, taken = cur & 0xffffffffu, next;
        if (sec > csec) {
            if (quota < 1)
                return false;
            next = sec << 32 | 1;
        } else {
            /* Same second, or a thread whose clock read is a little behind another's:
             * count it in the newer second rather than reopening an old one. */
            if ((int64_t)taken >= quota)
                return false;
            next = cur + 1;
        }
        if (atomic_compare_exchange_weak_explicit(&s->sec_taken, &cur, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
}

static bool take_borrow(struct slot *s, uint64_t sec)
{
    uint64_t b = LD(s->borrow_sec);
    while (b < sec + 1)
        if (atomic_compare_exchange_weak_explicit(&s->borrow_sec, &b, sec + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    return false;
}

XRAY_SAMPLING_API bool xray_sampling_decide_rule(struct xray_sampling_state *state, size_t rule,
                                                 uint64_t now_ms,
                                                 const struct xray_sampling_random *rng,
                                                 struct xray_sampling_decision *out)
{
    struct slot *s = &state->slot[rule];
    uint64_t sec = now_ms / 1000;
    uint8_t how = XRAY_SAMPLING_NOT_SAMPLED;
    atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
    int64_t quota = LD(s->quota);
    if (quota >= 0 && (int64_t)sec < LD(s->quota_ttl_s)) {
        if (take_quota(s, sec, quota))
            how = XRAY_SAMPLING_BY_QUOTA;
    } else if (s->reservoir > 0 && take_borrow(s, sec)) {
        how = XRAY_SAMPLING_BY_BORROW;
    }
    if (how == XRAY_SAMPLING_NOT_SAMPLED) {
        double rate = bits_to_rate(LD(s->rate_bits));
        /* 53 random bits as a uniform double in [0, 1): rate 1 always, rate 0 never. */
        if (rate > 0 && (double)(rng->next(rng->ctx) >> 11) * 0x1.0p-53 < rate)
            how = XRAY_SAMPLING_BY_RATE;
    }
    if (how == XRAY_SAMPLING_BY_BORROW)
        atomic_fetch_add_explicit(&s->borrowed, 1, memory_order_relaxed);
    else if (how != XRAY_SAMPLING_NOT_SAMPLED)
        atomic_fetch_add_explicit(&s->sampled, 1, memory_order_relaxed);
    if (out != NULL) {
        out->sampled = how != XRAY_SAMPLING_NOT_SAMPLED;
        out->how = how;
        out->rule = (uint32_t)rule;
        out->rule_name = state->rules->rule[rule].name;
    }
    return how != XRAY_SAMPLING_NOT_SAMPLED;
}

XRAY_SAMPLING_API bool xray_sampling_decide(struct xray_sampling_state *state,
                                            const struct xray_sampling_request *req,
                                            uint64_t now_ms, const struct xray_sampling_random *rng,
                                            struct xray_sampling_decision *out)
{
    return xray_sampling_decide_rule(state, xray_sampling_rules_match(state->rules, req), now_ms,
                                     rng, out);
}

XRAY_SAMPLING_API size_t xray_sampling_state_report(struct xray_sampling_state *state,
                                                    uint64_t now_ms,
                                                    struct xray_sampling_statistics *out,
                                                    size_t max)
{
    size_t k = 0;
    if (max > XRAY_SAMPLING_MAX_STATISTICS)
        max = XRAY_SAMPLING_MAX_STATISTICS;
    for (size_t i = 0; i < state->rules->n && k < max; i++) {
        const struct xray_sampling_rule *r = &state->rules->rule[i];
        struct slot *s = &state->slot[i];
        if (r->drop != 0 || LD(s->requests) == 0)
            continue;
        uint64_t last = LD(s->last_report_ms), iv = (uint64_t)LD(s->interval_s) * 1000;
        if (last != 0 && now_ms - last < iv)
            continue;
        /* Claim the report so two reporting threads never send the same counts. */
        if (!atomic_compare_exchange_strong(&s->last_report_ms, &last, now_ms ? now_ms : 1))
            continue;
        struct xray_sampling_statistics *d = &out[k++];
        memcpy(d->rule_name, r->name, strlen(r->name) + 1);
        memcpy(d->client_id, state->client_id, sizeof(d->client_id));
        d->timestamp = (int64_t)(now_ms / 1000);
        d->request_count = atomic_exchange_explicit(&s->requests, 0, memory_order_relaxed);
        d->sampled_count = atomic_exchange_explicit(&s->sampled, 0, memory_order_relaxed);
        d->borrow_count = atomic_exchange_explicit(&s->borrowed, 0, memory_order_relaxed);
    }
    return k;
}

XRAY_SAMPLING_API int xray_sampling_state_apply(struct xray_sampling_state *state,
                                                const struct xray_sampling_target *targets,
                                                size_t n, int64_t last_rule_modification,
                                                uint64_t now_ms)
{
    (void)now_ms;
    if (state->flags & XRAY_SAMPLING_STATE_LOCAL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const struct xray_sampling_target *t = &targets[i];
        int j = xray_sampling_rules_find(state->rules, t->rule_name);
        if (j < 0)
            continue;
        struct slot *s = &state->slot[j];
        if ((t->have & XRAY_SAMPLING_TARGET_RATE) && t->fixed_rate >= 0 && t->fixed_rate <= 1)
            ST(s->rate_bits, rate_to_bits(t->fixed_rate));
        /* TTL before quota: a racing decision may see the new TTL with the old quota
         * for an instant, never a new quota still bounded by an old TTL. */
        if (t->have & XRAY_SAMPLING_TARGET_QUOTA_TTL)
            ST(s->quota_ttl_s, t->quota_ttl_s);
        if ((t->have & XRAY_SAMPLING_TARGET_QUOTA) && t->reservoir_quota >= 0)
            ST(s->quota, t->reservoir_quota > INT32_MAX ? INT32_MAX : t->reservoir_quota);
        if ((t->have & XRAY_SAMPLING_TARGET_INTERVAL) && t->interval_s > 0)
            ST(s->interval_s, t->interval_s);
    }
    return last_rule_modification > state->fetched_s ? 1 : 0;
}

XRAY_SAMPLING_API int xray_sampling_state_rule_status(const struct xray_sampling_state *state,
                                                      size_t rule, uint64_t now_ms,
                                                      struct xray_sampling_rule_status *out)
{
    if (rule >= state->rules->n)
        return -EINVAL;
    struct slot *s = &state->slot[rule];
    out->fixed_rate = bits_to_rate(LD(s->rate_bits));
    out->quota = LD(s->quota);
    out->quota_ttl_s = LD(s->quota_ttl_s);
    out->quota_live = out->quota >= 0 && (int64_t)(now_ms / 1000) < out->quota_ttl_s;
    out->interval_s = LD(s->interval_s);
    out->request_count = LD(s->requests);
    out->sampled_count = LD(s->sampled);
    out->borrow_count = LD(s->borrowed);
    return 0;
}
