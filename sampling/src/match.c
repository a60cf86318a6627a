/* SPDX-License-Identifier: Apache-2.0 */
/* Rule matching: the first served rule, in priority-then-name order, whose five
 * patterns all match the request; "Default" when none does. Patterns are compiled
 * once per rule set (lower-cased, classified as any / exact / prefix / glob), so a
 * decision does no allocation. Case folding is ASCII only; '?' matches one UTF-8
 * code point.
 *
 * How it works: with XRAY__INDEX_MIN served rules or more, each field that some
 * rule matches exactly gets a hash table from the exact (lower-cased) value to the
 * bitset of rules with that value, plus the bitset of rules whose pattern on the
 * field is not exact. The request's candidates are the AND over its present fields
 * of (rules admitting its value | non-exact rules); only candidates, in match order
 * (bit order), are checked pattern by pattern. Most requests thus try one or two
 * rules instead of all of them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* Lower-cases the ASCII letters of 8 bytes at once: a byte gets 0x20 when its low
 * seven bits are in 'A'..'Z' and its top bit is clear (no carry crosses a byte). */
static inline uint64_t lower8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t low7 = x & ~high;
    uint64_t ge_a = low7 + (0x80 - 'A') * ones, gt_z = low7 + (0x7f - 'Z') * ones;
    return x | (((ge_a ^ gt_z) & ~x & high) >> 2);
}

static inline uint64_t load8(const char *s)
{
    uint64_t w;
    memcpy(&w, s, sizeof(w));
    return w;
}

/* The last n (< 8) bytes as a word; the same on every call, whatever the host. */
static inline uint64_t load_tail(const char *s, size_t n)
{
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    return w;
}

uint32_t xray__match_hash(const char *s, size_t n)
{
    /* Eight lower-cased bytes per multiply: hashing the request's value is most of a
     * match's cost, and a byte-at-a-time hash is a chain of dependent multiplies. */
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        h = (h ^ lower8(load8(s + i))) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
    }
    if (i < n) {
        h = (h ^ lower8(load_tail(s + i, n - i))) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
    }
    return (uint32_t)(h ^ (h >> 32));
}

void xray__match_compile(const char *pat, size_t n, char *out, struct xray__pattern *p)
{
    size_t stars = 0, quests = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = (char)lower((unsigned char)pat[i]);
        stars += pat[i] == '*';
        quests += pat[i] == '?';
    }
    out[n] = '\0';
    p->lit = out;
    p->len = (uint16_t)n;
    p->hash = 0;
    if (stars == n) {
        /* "" matches only "" (exact), any run of stars matches everything. */
        p->kind = n == 0 ? XRAY__PAT_EXACT : XRAY__PAT_ANY;
    } else if (stars == 0 && quests == 0) {
        p->kind = XRAY__PAT_EXACT;
    } else if (stars == 1 && quests == 0 && pat[n - 1] == '*') {
        p->kind = XRAY__PAT_PREFIX;
        p->len = (uint16_t)(n - 1);
    } else {
        p->kind = XRAY__PAT_GLOB;
    }
    if (p->kind == XRAY__PAT_EXACT)
        p->hash = xray__match_hash(out, n);
}

/* The end of the UTF-8 code point starting at s[i]. */
static inline size_t next_cp(const char *s, size_t n, size_t i)
{
    i++;
    while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80)
        i++;
    return i;
}

bool xray__match_glob(const char *pat, size_t m, const char *s, size_t n)
{
    /* Greedy with one backtrack point: on a mismatch, the last '*' absorbs one more
     * code point. Linear in practice, O(m * n) at worst, no recursion. */
    size_t p = 0, i = 0, star = SIZE_MAX, mark = 0;
    while (i < n) {
        if (p < m && pat[p] == '?') {
            p++;
            i = next_cp(s, n, i);
        } else if (p < m && pat[p] == '*') {
            star = p++;
            mark = i;
        } else if (p < m && (unsigned char)pat[p] == lower((unsigned char)s[i])) {
            p++;
            i++;
        } else if (star != SIZE_MAX) {
            p = star + 1;
            mark = next_cp(s, n, mark);
            i = mark;
        } else {
            return false;
        }
    }
    while (p < m && pat[p] == '*')
        p++;
    return p == m;
}

/* lit (already lower-case) equals the first n bytes of s, ASCII case folded. */
static inline bool eq_lower(const char *lit, const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        if (load8(lit + i) != lower8(load8(s + i)))
            return false;
    return i == n || load_tail(lit + i, n - i) == lower8(load_tail(s + i, n - i));
}

static inline bool field_match(const struct xray__pattern *p, const struct xray_sampling_str *v,
                               uint32_t h)
{
    switch (p->kind) {
    case XRAY__PAT_EXACT:
        return v->len == p->len && h == p->hash && eq_lower(p->lit, v->p, v->len);
    case XRAY__PAT_PREFIX:
        return v->len >= p->len && eq_lower(p->lit, v->p, p->len);
    case XRAY__PAT_GLOB:
        return xray__match_glob(p->lit, p->len, v->p, v->len);
    default:
        return true;
    }
}

static struct xray__index_slot *index_find(struct xray__index_slot *slot, uint32_t mask,
                                           const char *s, size_t n, uint32_t h, bool lowered)
{
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        struct xray__index_slot *e = &slot[i];
        if (e->lit == NULL)
            return e;
        if (e->hash == h && e->len == n &&
            (lowered ? memcmp(e->lit, s, n) == 0 : eq_lower(e->lit, s, n)))
            return e;
    }
}

void xray__match_index_free(struct xray__match_index *idx)
{
    for (int f = 0; f < XRAY__F_COUNT; f++)
        free(idx->f[f].slot);
    free(idx->pool);
    memset(idx, 0, sizeof(*idx));
}

int xray__match_index_build(struct xray_sampling_rules *rules)
{
    struct xray__match_index *idx = &rules->idx;
    memset(idx, 0, sizeof(*idx));
    if (rules->n_m < XRAY__INDEX_MIN)
        return 0;
    uint32_t words = (uint32_t)((rules->n_m + 63) / 64), sets = 0;
    uint32_t cap[XRAY__F_COUNT] = {0};
    for (int f = 0; f < XRAY__F_COUNT; f++) {
        if (!(rules->exact_fields & (1u << f)))
            continue;
        uint32_t exact = 0;
        for (size_t i = 0; i < rules->n_m; i++)
            exact += rules->m[i].f[f].kind == XRAY__PAT_EXACT;
        cap[f] = 4;
        while (cap[f] < 2 * exact)
            cap[f] *= 2;
        sets += exact + 1; /* at most one set per exact value, and the non-exact one */
        idx->f[f].slot = calloc(cap[f], sizeof(struct xray__index_slot));
        if (idx->f[f].slot == NULL)
            goto oom;
        idx->f[f].mask = cap[f] - 1;
    }
    idx->pool = calloc((size_t)sets * words, sizeof(uint64_t));
    if (idx->pool == NULL)
        goto oom;
    uint32_t next = 0;
    for (int f = 0; f < XRAY__F_COUNT; f++) {
        if (idx->f[f].slot == NULL)
            continue;
        idx->f[f].other = next;
        next += words;
        for (size_t i = 0; i < rules->n_m; i++) {
            const struct xray__pattern *p = &rules->m[i].f[f];
            uint32_t set = idx->f[f].other;
            if (p->kind == XRAY__PAT_EXACT) {
                struct xray__index_slot *e =
                    index_find(idx->f[f].slot, idx->f[f].mask, p->lit, p->len, p->hash, true);
                if (e->lit == NULL) {
                    e->lit = p->lit;
                    e->hash = p->hash;
                    e->len = p->len;
                    e->bits = next;
                    next += words;
                }
                set = e->bits;
            }
            idx->pool[set + i / 64] |= 1ull << (i % 64);
        }
    }
    idx->words = words;
    return 0;
oom:
    xray__match_index_free(idx);
    return -ENOMEM;
}

/* indexed: fields whose exact patterns the index already checked. */
static inline bool matcher_match(const struct xray__matcher *m,
                                 const struct xray_sampling_str *const *v, const uint32_t *h,
                                 uint32_t present, uint32_t indexed)
{
    for (int f = 0; f < XRAY__F_COUNT; f++) {
        if (!(present & (1u << f)))
            continue;
        if ((indexed & (1u << f)) && m->f[f].kind == XRAY__PAT_EXACT)
            continue;
        if (!field_match(&m->f[f], v[f], h[f]))
            return false;
    }
    return true;
}

XRAY_SAMPLING_API size_t xray_sampling_rules_match(const struct xray_sampling_rules *rules,
                                                   const struct xray_sampling_request *req)
{
    const struct xray_sampling_str *v[XRAY__F_COUNT] = {
        &req->service_name, &req->service_type, &req->host, &req->http_method, &req->url_path};
    uint32_t h[XRAY__F_COUNT] = {0};
    /* A missing attribute matches every pattern: such a field is simply not checked. */
    uint32_t present = 0;
    for (int f = 0; f < XRAY__F_COUNT; f++) {
        if (v[f]->p == NULL)
            continue;
        present |= 1u << f;
        if (rules->exact_fields & (1u << f))
            h[f] = xray__match_hash(v[f]->p, v[f]->len);
    }
    const struct xray__match_index *idx = &rules->idx;
    if (idx->words == 0) {
        for (size_t i = 0; i < rules->n_m; i++)
            if (matcher_match(&rules->m[i], v, h, present, 0))
                return rules->m[i].rule;
        return rules->default_rule;
    }
    uint64_t cand[XRAY__INDEX_WORDS];
    uint32_t words = idx->words, indexed = 0;
    for (uint32_t w = 0; w < words; w++)
        cand[w] = ~0ull;
    for (int f = 0; f < XRAY__F_COUNT; f++) {
        if (idx->f[f].slot == NULL || !(present & (1u << f)))
            continue;
        indexed |= 1u << f;
        const uint64_t *other = &idx->pool[idx->f[f].other];
        const struct xray__index_slot *e =
            index_find(idx->f[f].slot, idx->f[f].mask, v[f]->p, v[f]->len, h[f], false);
        if (e->lit == NULL) {
            for (uint32_t w = 0; w < words; w++)
                cand[w] &= other[w];
        } else {
            const uint64_t *exact = &idx->pool[e->bits];
            for (uint32_t w = 0; w < words; w++)
                cand[w] &= other[w] | exact[w];
        }
    }
    for (uint32_t w = 0; w < words; w++) {
        for (uint64_t bits = cand[w]; bits != 0; bits &= bits - 1) {
            size_t i = (size_t)w * 64 + (size_t)__builtin_ctzll(bits);
            if (i < rules->n_m && matcher_match(&rules->m[i], v, h, present, indexed))
                return rules->m[i].rule;
        }
    }
    return rules->default_rule;
}
