/* SPDX-License-Identifier: Apache-2.0 */
/* The per-trace decision table and the sampling state behind it. One owner thread (the
 * worker) reads and writes the table and the state; counters are atomics anyone may
 * read. Invariant: a trace has at most one slot, and a document of a remembered trace
 * always gets that slot's decision.
 *
 * How it works: a trace id "1-<8 hex>-<24 hex>" is 128 bits; they pick one set of
 * DECISION_WAYS slots, searched whole. A hit younger than the TTL answers and is
 * refreshed; an older one is forgotten (expired). A new trace takes an empty slot of
 * its set, else the least recently seen one (expired if it was past the TTL, else
 * evicted). No allocation per document; ids that are not X-Ray ids are hashed. */
#include "sampler/decision.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"

#define MOD          "sampling"
#define SLOT_KEEP    1
#define SLOT_DROP    2
#define RULE_NONE    UINT16_MAX /* a decision made without rules */
#define LOG_EVERY_MS 60000

struct slot {
    uint64_t hi, lo;
    uint32_t seen_s; /* epoch second of the trace's last document */
    uint16_t rule;   /* index in rule_stats[], or RULE_NONE */
    uint8_t state;   /* 0 (empty), SLOT_KEEP or SLOT_DROP */
};

struct rule_counter {
    char name[XRAY_SAMPLING_NAME_BYTES + 1]; /* written before used is set */
    atomic_bool used;
    atomic_uint_fast64_t traces_kept, traces_dropped, docs_kept, docs_dropped;
};

struct decision {
    struct stats *stats;
    struct rules_mailbox mailbox;
    struct xray_sampling_state *state; /* NULL until the first rules arrive */
    uint16_t *rule_map;                /* the state's rule index -> rule_stats[] */
    uint64_t rng_state;
    struct xray_sampling_random rng;
    uint32_t ttl_s;
    size_t mask; /* sets - 1 */
    atomic_size_t held;
    struct slot *slots; /* (mask + 1) * DECISION_WAYS */
    struct rule_counter rules[DECISION_RULE_SLOTS];
};

/* xorshift64*: fast, and good enough for a FixedRate draw. */
static uint64_t decision_random(void *ctx)
{
    uint64_t *s = ctx;
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

struct decision *decision_create(const struct decision_options *o, struct stats *stats)
{
    struct decision *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    uint32_t cap = o != NULL && o->capacity ? o->capacity : DECISION_DEFAULT_CAPACITY;
    size_t sets = 1;
    while (sets * DECISION_WAYS < cap)
        sets <<= 1;
    d->slots = calloc(sets * DECISION_WAYS, sizeof(*d->slots));
    if (d->slots == NULL) {
        free(d);
        return NULL;
    }
    d->mask = sets - 1;
    d->ttl_s = o != NULL && o->ttl_s ? o->ttl_s : DECISION_DEFAULT_TTL_S;
    d->stats = stats;
    d->rng_state = o != NULL ? o->seed : 0;
    if (d->rng_state == 0 &&
        uv_random(NULL, NULL, &d->rng_state, sizeof(d->rng_state), 0, NULL) != 0)
        d->rng_state = uv_hrtime() ^ (uint64_t)(uintptr_t)d;
    if (d->rng_state == 0)
        d->rng_state = 0x9E3779B97F4A7C15ULL; /* xorshift's one bad seed */
    d->rng.next = decision_random;
    d->rng.ctx = &d->rng_state;
    rules_mailbox_init(&d->mailbox);
    atomic_init(&d->held, 0);
    return d;
}

void decision_destroy(struct decision *d)
{
    if (d == NULL)
        return;
    rules_mailbox_clear(&d->mailbox);
    xray_sampling_state_destroy(d->state);
    free(d->rule_map);
    free(d->slots);
    free(d);
}

struct rules_mailbox *decision_mailbox(struct decision *d)
{
    return &d->mailbox;
}

/* ---- the per-rule counters ---- */

static uint16_t decision_rule_slot(struct decision *d, const char *name)
{
    for (uint16_t i = 0; i < DECISION_RULE_SLOTS - 1; i++) {
        struct rule_counter *c = &d->rules[i];
        if (!atomic_load_explicit(&c->used, memory_order_relaxed)) {
            snprintf(c->name, sizeof(c->name), "%s", name);
            atomic_store_explicit(&c->used, true, memory_order_release);
            return i;
        }
        if (strcmp(c->name, name) == 0)
            return i;
    }
    struct rule_counter *other = &d->rules[DECISION_RULE_SLOTS - 1];
    if (!atomic_load_explicit(&other->used, memory_order_relaxed)) {
        snprintf(other->name, sizeof(other->name), "%s", DECISION_OTHER_RULES);
        atomic_store_explicit(&other->used, true, memory_order_release);
    }
    return DECISION_RULE_SLOTS - 1;
}

static void decision_count_doc(struct decision *d, uint16_t rule, bool keep)
{
    stats_add(keep ? &d->stats->sampled_kept : &d->stats->sampled_out, 1);
    if (rule != RULE_NONE)
        stats_add(keep ? &d->rules[rule].docs_kept : &d->rules[rule].docs_dropped, 1);
}

/* ---- new rules ---- */

/* Takes a rule set posted since the last call: a new state carries the old one's
 * per-second counts for rules of the same name, so a reload never grants a reservoir
 * twice within a second. */
static void decision_refresh(struct decision *d, uint64_t now_ms)
{
    struct xray_sampling_rules *r = rules_mailbox_take(&d->mailbox);
    if (r == NULL)
        return;
    size_t n = xray_sampling_rules_count(r);
    uint16_t *map = malloc((n ? n : 1) * sizeof(*map));
    struct xray_sampling_state *st =
        map != NULL
            ? xray_sampling_state_create(r, NULL, XRAY_SAMPLING_STATE_LOCAL, d->state, now_ms)
            : NULL;
    if (st == NULL) {
        free(map);
        rules_mailbox_return(&d->mailbox, r); /* tried again at the next new trace */
        XLOG_EVERY(LOG_EVERY_MS, LOG_LEVEL_ERROR, MOD,
                   "out of memory: new sampling rules not in force yet");
        return;
    }
    for (size_t i = 0; i < n; i++)
        map[i] = decision_rule_slot(d, xray_sampling_rules_get(r, i)->name);
    xray_sampling_rules_free(r); /* the state holds its own reference */
    xray_sampling_state_destroy(d->state);
    free(d->rule_map);
    d->state = st;
    d->rule_map = map;
}

/* ---- the table ---- */

static int decision_hex(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned x;
        if (c >= '0' && c <= '9')
            x = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x = (unsigned)(c - 'a' + 10);
        else
            return -1;
        v = v << 4 | x;
    }
    *out = v;
    return 0;
}

static uint64_t decision_fnv(const char *s, uint64_t h)
{
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* The 128 bits of an X-Ray trace id (exact, lower-case as X-Ray writes them); any other
 * string is hashed. */
static void decision_key(const char *tid, uint64_t *hi, uint64_t *lo)
{
    uint64_t t, a;
    if (strlen(tid) == 35 && tid[0] == '1' && tid[1] == '-' && tid[10] == '-' &&
        decision_hex(tid + 2, 8, &t) == 0 && decision_hex(tid + 11, 8, &a) == 0 &&
        decision_hex(tid + 19, 16, lo) == 0) {
        *hi = t << 32 | a;
        return;
    }
    *hi = decision_fnv(tid, 0xcbf29ce484222325ULL);
    *lo = decision_fnv(tid, 0x84222325cbf29ce4ULL);
}

static struct slot *decision_set(const struct decision *d, uint64_t hi, uint64_t lo)
{
    uint64_t h = (lo ^ (hi * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL;
    return &d->slots[((h >> 32) & d->mask) * DECISION_WAYS];
}

static bool decision_expired(const struct decision *d, const struct slot *s, uint32_t now_s)
{
    return now_s > s->seen_s && now_s - s->seen_s >= d->ttl_s;
}

int decision_lookup(struct decision *d, const char *trace_id, uint64_t now_ms)
{
    uint64_t hi, lo;
    uint32_t now_s = (uint32_t)(now_ms / 1000);
    decision_key(trace_id, &hi, &lo);
    struct slot *set = decision_set(d, hi, lo);
    for (int i = 0; i < DECISION_WAYS; i++) {
        struct slot *s = &set[i];
        if (s->state == 0 || s->hi != hi || s->lo != lo)
            continue;
        if (decision_expired(d, s, now_s)) {
            stats_add(&d->stats->decisions_expired, 1);
            s->state = 0;
            atomic_fetch_sub_explicit(&d->held, 1, memory_order_relaxed);
            return -1;
        }
        if (now_s > s->seen_s)
            s->seen_s = now_s;
        bool keep = s->state == SLOT_KEEP;
        decision_count_doc(d, s->rule, keep);
        return keep ? 1 : 0;
    }
    return -1;
}

static void decision_remember(struct decision *d, uint64_t hi, uint64_t lo, uint32_t now_s,
                              uint16_t rule, bool keep)
{
    struct slot *set = decision_set(d, hi, lo), *victim = NULL;
    for (int i = 0; i < DECISION_WAYS && victim == NULL; i++)
        if (set[i].state == 0 || (set[i].hi == hi && set[i].lo == lo))
            victim = &set[i];
    if (victim == NULL) {
        victim = &set[0];
        for (int i = 1; i < DECISION_WAYS; i++)
            if (set[i].seen_s < victim->seen_s)
                victim = &set[i];
        stats_add(decision_expired(d, victim, now_s) ? &d->stats->decisions_expired
                                                     : &d->stats->decisions_evicted,
                  1);
    } else if (victim->state == 0) {
        atomic_fetch_add_explicit(&d->held, 1, memory_order_relaxed);
    }
    victim->hi = hi;
    victim->lo = lo;
    victim->seen_s = now_s;
    victim->rule = rule;
    victim->state = keep ? SLOT_KEEP : SLOT_DROP;
}

bool decision_decide(struct decision *d, const char *trace_id,
                     const struct xray_sampling_request *req, uint64_t now_ms)
{
    decision_refresh(d, now_ms);
    uint64_t hi, lo;
    decision_key(trace_id, &hi, &lo);
    bool keep = true;
    uint16_t rule = RULE_NONE;
    enum stats_decision why = STATS_DECISION_KEPT_NO_RULES;
    if (d->state != NULL) {
        struct xray_sampling_decision dec;
        keep = xray_sampling_decide(d->state, req, now_ms, &d->rng, &dec);
        rule = d->rule_map[dec.rule];
        why = !keep                              ? STATS_DECISION_DROPPED_RATE
              : dec.how == XRAY_SAMPLING_BY_RATE ? STATS_DECISION_KEPT_RATE
                                                 : STATS_DECISION_KEPT_QUOTA;
        struct rule_counter *c = &d->rules[rule];
        stats_add(keep ? &c->traces_kept : &c->traces_dropped, 1);
    }
    stats_add(&d->stats->decisions[why], 1);
    decision_remember(d, hi, lo, (uint32_t)(now_ms / 1000), rule, keep);
    decision_count_doc(d, rule, keep);
    return keep;
}

void decision_keep(struct decision *d, const char *trace_id, enum stats_decision why,
                   uint64_t now_ms)
{
    uint64_t hi, lo;
    decision_key(trace_id, &hi, &lo);
    stats_add(&d->stats->decisions[why], 1);
    decision_remember(d, hi, lo, (uint32_t)(now_ms / 1000), RULE_NONE, true);
}

void decision_count_docs(struct decision *d, bool keep, uint64_t n)
{
    stats_add(keep ? &d->stats->sampled_kept : &d->stats->sampled_out, n);
}

/* ---- reading ---- */

size_t decision_held(const struct decision *d)
{
    return atomic_load_explicit(&d->held, memory_order_relaxed);
}

size_t decision_capacity(const struct decision *d)
{
    return (d->mask + 1) * DECISION_WAYS;
}

size_t decision_rule_stats(const struct decision *d, struct decision_rule_stats *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < DECISION_RULE_SLOTS && k < max; i++) {
        struct rule_counter *c = (struct rule_counter *)&d->rules[i];
        if (!atomic_load_explicit(&c->used, memory_order_acquire))
            continue;
        struct decision_rule_stats *o = &out[k++];
        snprintf(o->rule_name, sizeof(o->rule_name), "%s", c->name);
        o->traces_kept = stats_get(&c->traces_kept);
        o->traces_dropped = stats_get(&c->traces_dropped);
        o->docs_kept = stats_get(&c->docs_kept);
        o->docs_dropped = stats_get(&c->docs_dropped);
    }
    return k;
}

void decision_log_totals(const struct decision *d)
{
    struct stats *st = d->stats;
    uint64_t kept = 0, dropped = stats_get(&st->decisions[STATS_DECISION_DROPPED_RATE]);
    for (int i = 0; i < STATS_DECISION__COUNT; i++)
        if (i != STATS_DECISION_DROPPED_RATE)
            kept += stats_get(&st->decisions[i]);
    XLOG_INFO(MOD,
              "sampling totals: traces kept %llu (quota %llu, rate %llu, no rules %llu), "
              "dropped %llu; documents kept %llu, sampled out %llu; decisions remembered %zu "
              "of %zu, evicted %llu, expired %llu",
              (unsigned long long)kept,
              (unsigned long long)stats_get(&st->decisions[STATS_DECISION_KEPT_QUOTA]),
              (unsigned long long)stats_get(&st->decisions[STATS_DECISION_KEPT_RATE]),
              (unsigned long long)stats_get(&st->decisions[STATS_DECISION_KEPT_NO_RULES]),
              (unsigned long long)dropped, (unsigned long long)stats_get(&st->sampled_kept),
              (unsigned long long)stats_get(&st->sampled_out), decision_held(d),
              decision_capacity(d), (unsigned long long)stats_get(&st->decisions_evicted),
              (unsigned long long)stats_get(&st->decisions_expired));
    struct decision_rule_stats rs[DECISION_RULE_SLOTS];
    size_t n = decision_rule_stats(d, rs, DECISION_RULE_SLOTS);
    for (size_t i = 0; i < n; i++)
        XLOG_INFO(MOD,
                  "sampling rule \"%s\": traces kept %llu, dropped %llu; documents kept %llu, "
                  "sampled out %llu",
                  rs[i].rule_name, (unsigned long long)rs[i].traces_kept,
                  (unsigned long long)rs[i].traces_dropped, (unsigned long long)rs[i].docs_kept,
                  (unsigned long long)rs[i].docs_dropped);
}
