/* SPDX-License-Identifier: Apache-2.0 */
/* Trace summaries: each document's scan is folded into its trace's summary once, as it
 * arrives, so a query reads summaries and never a document. Sets (services, users,
 * annotation values) only grow and hold no duplicates, so a complete document replacing
 * its in-progress version adds nothing twice; counts (in progress, roots, statuses) are
 * per document and summary_count() moves them when one version replaces another. Every
 * allocation is added to the caller's byte count and subtracted when freed.
 *
 * Service names are interned in one table shared by all traces; each name heads a
 * posting list of the traces that have a service of that name, ordered by the traces'
 * arrival number (seq). A trace gains its services when its documents arrive, which is
 * shortly after it was first seen, so inserting from the list's tail is almost always
 * O(1); a document for an old trace walks back past the newer traces of that name. */
#include "trace/summary.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trace/digest.h"

#define SUMMARY_TEXT_INLINE 256 /* wire.md: names are at most 200 characters */

/* FNV-1a over a seed, finished with a 64-bit mixer (as the store's tables). */
static uint64_t summary_hash(uint64_t seed, const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* The decoded bytes of a string view: the document's own bytes when it has no escape
 * (almost always), else a copy (inline, or on the heap for long strings). */
struct summary_text {
    const char *p;
    size_t n;
    char *heap;
    char buf[SUMMARY_TEXT_INLINE];
};

static int summary_text(struct summary_text *t, const struct scan_str *s)
{
    t->heap = NULL;
    t->p = s->p != NULL ? s->p : "";
    t->n = s->len;
    if (!s->escaped)
        return 0;
    char *out = t->buf;
    if (s->len >= sizeof(t->buf) && (out = t->heap = malloc((size_t)s->len + 1)) == NULL)
        return -ENOMEM;
    t->n = scan_str_unescape(s, out, (size_t)s->len + 1);
    t->p = out;
    return 0;
}

static size_t summary_str_len(const struct scan_str *s)
{
    return s->escaped ? scan_str_unescape(s, NULL, 0) : s->len;
}

int summary_names_init(struct summary_names *nm, size_t buckets, uint64_t seed)
{
    nm->idx = calloc(buckets, sizeof(*nm->idx));
    if (nm->idx == NULL)
        return -ENOMEM;
    nm->mask = buckets - 1;
    nm->seed = seed;
    return 0;
}

void summary_names_free(struct summary_names *nm)
{
    free(nm->idx);
    nm->idx = NULL;
}

static struct summary_name *summary_names_lookup(const struct summary_names *nm, const char *s,
                                                 size_t n, uint64_t h)
{
    struct summary_name *e = nm->idx[h & nm->mask];
    while (e != NULL && (e->hash != h || e->len != n || memcmp(e->s, s, n) != 0))
        e = e->hnext;
    return e;
}

const struct summary_name *summary_names_find(const struct summary_names *nm, const char *s,
                                              size_t n)
{
    return summary_names_lookup(nm, s, n, summary_hash(nm->seed, s, n));
}

/* A reference to the interned copy of s, made when missing. NULL on ENOMEM. */
static struct summary_name *summary_names_ref(struct summary_names *nm, const struct scan_str *s,
                                              size_t *bytes)
{
    struct summary_text t;
    if (summary_text(&t, s) != 0)
        return NULL;
    uint64_t h = summary_hash(nm->seed, t.p, t.n);
    struct summary_name *e = summary_names_lookup(nm, t.p, t.n, h);
    if (e == NULL && (e = malloc(sizeof(*e) + t.n + 1)) != NULL) {
        memcpy(e->s, t.p, t.n);
        e->s[t.n] = '\0';
        e->len = (uint32_t)t.n;
        e->hash = h;
        e->refs = 0;
        e->head = e->tail = NULL;
        e->hnext = nm->idx[h & nm->mask];
        nm->idx[h & nm->mask] = e;
        *bytes += sizeof(*e) + t.n + 1;
    }
    free(t.heap);
    if (e != NULL)
        e->refs++;
    return e;
}

static void summary_names_unref(struct summary_names *nm, struct summary_name *e, size_t *bytes)
{
    if (e == NULL || --e->refs > 0)
        return;
    struct summary_name **pp = &nm->idx[e->hash & nm->mask];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    *bytes -= sizeof(*e) + e->len + 1;
    free(e);
}

/* Inserts x into its name's posting list by its trace's seq, walking from the tail. */
static void summary_post(struct summary_svc *x)
{
    struct summary_name *e = x->name;
    struct summary_svc *after = e->tail;
    while (after != NULL && after->owner->seq > x->owner->seq)
        after = after->pprev;
    x->pprev = after;
    x->pnext = after != NULL ? after->pnext : e->head;
    *(x->pnext != NULL ? &x->pnext->pprev : &e->tail) = x;
    *(after != NULL ? &after->pnext : &e->head) = x;
}

static void summary_unpost(struct summary_svc *x)
{
    *(x->pprev != NULL ? &x->pprev->pnext : &x->name->head) = x->pnext;
    *(x->pnext != NULL ? &x->pnext->pprev : &x->name->tail) = x->pprev;
}

void summary_init(struct summary *s, uint64_t seq, double start)
{
    memset(s, 0, sizeof(*s));
    s->seq = seq;
    s->start = start;
    s->http_status = SCAN_STATUS_NONE;
}

void summary_clear(struct summary_names *nm, struct summary *s, size_t *bytes)
{
    for (struct summary_svc *x = s->svcs, *next; x != NULL; x = next) {
        next = x->next;
        if (x->posted)
            summary_unpost(x);
        summary_names_unref(nm, x->name, bytes);
        summary_names_unref(nm, x->type, bytes);
        *bytes -= sizeof(*x);
        free(x);
    }
    for (struct summary_key *k = s->keys, *knext; k != NULL; k = knext) {
        knext = k->next;
        for (struct summary_val *v = k->values, *vnext; v != NULL; v = vnext) {
            vnext = v->next;
            *bytes -= sizeof(*v) + v->len + 1;
            free(v);
        }
        *bytes -= sizeof(*k) + k->len + 1;
        free(k);
    }
    for (struct summary_user *u = s->users, *unext; u != NULL; u = unext) {
        unext = u->next;
        *bytes -= sizeof(*u) + u->len + 1;
        free(u);
    }
    *bytes -= s->http_bytes;
    free(s->http_block);
    summary_init(s, s->seq, s->start);
}

/* wire.md, "Status classification", as a summary bit. */
static unsigned summary_class(const struct scan_segment *g)
{
    static const unsigned bit[] = {
        [DIGEST_OK] = 0,
        [DIGEST_ERROR] = SUMMARY_ERROR,
        [DIGEST_THROTTLE] = SUMMARY_THROTTLE,
        [DIGEST_FAULT] = SUMMARY_FAULT,
    };
    return bit[digest_classify(g->fault, g->throttle, g->error, g->http.response.status)];
}

static bool summary_is_root(const struct segment_view *v)
{
    return !v->subsegment && v->seg.parent_id.p == NULL;
}

unsigned summary_bits(const struct segment_view *v)
{
    unsigned bits = SUMMARY_SCANNED | summary_class(&v->seg);
    if (v->seg.in_progress)
        bits |= SUMMARY_IN_PROGRESS;
    if (summary_is_root(v))
        bits |= SUMMARY_ROOT;
    for (uint16_t i = 0; i < v->nsub; i++)
        bits |= summary_class(&v->sub[i]);
    return bits;
}

void summary_count(struct summary *s, unsigned old_bits, unsigned new_bits)
{
    uint32_t *counts[] = {&s->in_progress, &s->roots, &s->faults, &s->errors, &s->throttles};
    for (unsigned i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        *counts[i] -= (old_bits >> i) & 1u;
        *counts[i] += (new_bits >> i) & 1u;
    }
}

bool summary_times(struct summary *s, double start, double end)
{
    if (end > s->end)
        s->end = end;
    if (!(start < s->start))
        return false;
    s->start = start;
    return true;
}

static size_t summary_bound_segment(const struct segment_view *v, const struct scan_segment *g)
{
    size_t b = 0;
    for (uint16_t i = 0; i < g->ann_count; i++) {
        const struct scan_annotation *a = &v->ann[g->ann_first + i];
        b +=
            sizeof(struct summary_key) + sizeof(struct summary_val) + a->key.len + a->value.len + 2;
    }
    return b;
}

size_t summary_bound(const struct segment_view *v)
{
    const struct scan_segment *g = &v->seg;
    size_t b = summary_bound_segment(v, g);
    for (uint16_t i = 0; i < v->nsub; i++)
        b += summary_bound_segment(v, &v->sub[i]);
    if (v->subsegment)
        return b;
    b += sizeof(struct summary_svc) + 2 * sizeof(struct summary_name) + g->name.len +
         g->origin.len + 2;
    if (g->user.p != NULL)
        b += sizeof(struct summary_user) + g->user.len + 1;
    if (summary_is_root(v))
        b += g->http.request.url.len + g->http.request.method.len + g->http.request.user_agent.len +
             g->http.request.client_ip.len + 4;
    return b;
}

/* The trace's service for the segment g, added when new; *bit is its mask bit, 0 when
 * the trace has SUMMARY_SERVICES_MAX others. */
static int summary_add_service(struct summary_names *nm, struct summary *s,
                               const struct scan_segment *g, uint32_t *bit, size_t *bytes,
                               uint64_t *dropped)
{
    uint32_t i = 0;
    bool named = false;
    for (struct summary_svc *x = s->svcs; x != NULL; x = x->next, i++) {
        if (!scan_str_eq(&g->name, x->name->s, x->name->len))
            continue;
        named = true;
        if (x->type == NULL ? g->origin.p == NULL
                            : scan_str_eq(&g->origin, x->type->s, x->type->len)) {
            *bit = 1u << i;
            return 0;
        }
    }
    *bit = 0;
    if (s->nsvcs >= SUMMARY_SERVICES_MAX) {
        (*dropped)++;
        return 0;
    }
    struct summary_svc *x = calloc(1, sizeof(*x));
    if (x == NULL || (x->name = summary_names_ref(nm, &g->name, bytes)) == NULL ||
        (g->origin.p != NULL && (x->type = summary_names_ref(nm, &g->origin, bytes)) == NULL)) {
        if (x != NULL)
            summary_names_unref(nm, x->name, bytes);
        free(x);
        return -ENOMEM;
    }
    x->owner = s;
    x->posted = !named;
    if (x->posted)
        summary_post(x);
    *(s->svcs_tail != NULL ? &s->svcs_tail->next : &s->svcs) = x;
    s->svcs_tail = x;
    *bit = 1u << s->nsvcs++;
    *bytes += sizeof(*x);
    return 0;
}

static int summary_add_user(struct summary *s, const struct scan_str *name, uint32_t bit,
                            size_t *bytes, uint64_t *dropped)
{
    struct summary_user **pp = &s->users;
    for (; *pp != NULL; pp = &(*pp)->next) {
        if (scan_str_eq(name, (*pp)->s, (*pp)->len)) {
            (*pp)->services |= bit;
            return 0;
        }
    }
    if (s->nusers >= SUMMARY_USERS_MAX) {
        (*dropped)++;
        return 0;
    }
    size_t n = summary_str_len(name);
    struct summary_user *u = malloc(sizeof(*u) + n + 1);
    if (u == NULL)
        return -ENOMEM;
    scan_str_unescape(name, u->s, n + 1);
    u->len = (uint32_t)n;
    u->services = bit;
    u->next = NULL;
    *pp = u;
    s->nusers++;
    *bytes += sizeof(*u) + n + 1;
    return 0;
}

static bool summary_same_value(const struct summary_val *v, const struct scan_annotation *a,
                               double num)
{
    if (v->kind != a->kind)
        return false;
    if (a->kind == SCAN_KIND_STRING)
        return scan_str_eq(&a->value, v->s, v->len);
    return a->kind == SCAN_KIND_NUMBER ? v->num == num : v->boolean == a->boolean;
}

static int summary_add_annotation(struct summary *s, const struct scan_annotation *a, uint32_t bit,
                                  size_t *bytes, uint64_t *dropped)
{
    double num = 0;
    if (a->kind == SCAN_KIND_NUMBER &&
        (scan_num_value(a->value.p, a->value.len, &num) != 0 || !isfinite(num))) {
        (*dropped)++; /* JSON has no way to say it back */
        return 0;
    }
    struct summary_key **kp = &s->keys;
    while (*kp != NULL && !scan_str_eq(&a->key, (*kp)->s, (*kp)->len))
        kp = &(*kp)->next;
    struct summary_val **vp = *kp != NULL ? &(*kp)->values : NULL;
    for (; vp != NULL && *vp != NULL; vp = &(*vp)->next) {
        if (summary_same_value(*vp, a, num)) {
            (*vp)->services |= bit;
            return 0;
        }
    }
    if (s->nvalues >= SUMMARY_VALUES_MAX || (*kp == NULL && s->nkeys >= SUMMARY_KEYS_MAX)) {
        (*dropped)++;
        return 0;
    }
    if (*kp == NULL) {
        size_t kn = summary_str_len(&a->key);
        struct summary_key *k = malloc(sizeof(*k) + kn + 1);
        if (k == NULL)
            return -ENOMEM;
        scan_str_unescape(&a->key, k->s, kn + 1);
        k->len = (uint32_t)kn;
        k->values = NULL;
        k->next = NULL;
        *kp = k;
        vp = &k->values;
        s->nkeys++;
        *bytes += sizeof(*k) + kn + 1;
    }
    size_t n = a->kind == SCAN_KIND_STRING ? summary_str_len(&a->value) : 0;
    struct summary_val *v = malloc(sizeof(*v) + n + 1);
    if (v == NULL)
        return -ENOMEM;
    if (a->kind == SCAN_KIND_STRING)
        scan_str_unescape(&a->value, v->s, n + 1);
    else
        v->s[0] = '\0';
    v->len = (uint32_t)n;
    v->kind = a->kind;
    v->num = num;
    v->boolean = a->boolean;
    v->services = bit;
    v->next = NULL;
    *vp = v;
    s->nvalues++;
    *bytes += sizeof(*v) + n + 1;
    return 0;
}

/* The root segment's http block and times; a complete version is never replaced by an
 * in-progress one. */
static int summary_set_root(struct summary *s, const struct scan_segment *g, size_t *bytes)
{
    bool complete = !g->in_progress && g->has_end_time;
    if (s->root_complete && !complete)
        return 0;
    const struct scan_str *f[SUMMARY_HTTP__COUNT] = {
        [SUMMARY_HTTP_URL] = &g->http.request.url,
        [SUMMARY_HTTP_METHOD] = &g->http.request.method,
        [SUMMARY_HTTP_USER_AGENT] = &g->http.request.user_agent,
        [SUMMARY_HTTP_CLIENT_IP] = &g->http.request.client_ip,
    };
    size_t len[SUMMARY_HTTP__COUNT], total = 0;
    for (int i = 0; i < SUMMARY_HTTP__COUNT; i++) {
        len[i] = summary_str_len(f[i]);
        total += f[i]->p != NULL ? len[i] + 1 : 0;
    }
    char *block = total > 0 ? malloc(total) : NULL;
    if (total > 0 && block == NULL)
        return -ENOMEM;
    *bytes -= s->http_bytes;
    free(s->http_block);
    s->http_block = block;
    s->http_bytes = (uint32_t)total;
    *bytes += total;
    for (int i = 0; i < SUMMARY_HTTP__COUNT; i++) {
        s->http[i] = f[i]->p != NULL ? block : NULL;
        s->http_len[i] = (uint32_t)len[i];
        if (f[i]->p != NULL)
            block += scan_str_unescape(f[i], block, len[i] + 1) + 1;
    }
    s->http_status = g->http.response.status;
    s->root_start = g->start_time;
    s->root_end = complete ? g->end_time : 0;
    s->root_seen = true;
    s->root_complete = complete;
    return 0;
}

static int summary_add_annotations(struct summary *s, const struct segment_view *v,
                                   const struct scan_segment *g, uint32_t bit, size_t *bytes,
                                   uint64_t *dropped)
{
    for (uint16_t i = 0; i < g->ann_count; i++) {
        int rc = summary_add_annotation(s, &v->ann[g->ann_first + i], bit, bytes, dropped);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int summary_add(struct summary_names *nm, struct summary *s, const struct segment_view *v,
                size_t *bytes, uint64_t *dropped)
{
    /* A streamed subsegment does not name its service: its annotations have none. */
    uint32_t bit = 0;
    int rc = 0;
    if (!v->subsegment) {
        rc = summary_add_service(nm, s, &v->seg, &bit, bytes, dropped);
        if (rc == 0 && v->seg.user.p != NULL)
            rc = summary_add_user(s, &v->seg.user, bit, bytes, dropped);
        if (rc == 0 && summary_is_root(v))
            rc = summary_set_root(s, &v->seg, bytes);
    }
    if (rc == 0)
        rc = summary_add_annotations(s, v, &v->seg, bit, bytes, dropped);
    for (uint16_t i = 0; rc == 0 && i < v->nsub; i++)
        rc = summary_add_annotations(s, v, &v->sub[i], bit, bytes, dropped);
    return rc;
}

bool summary_partial(const struct summary *s)
{
    return s->roots == 0 || s->in_progress > 0;
}

/* Epoch seconds as doubles carry ~0.2 us of noise; X-Ray's own durations are rounder. */
static double summary_round_us(double d)
{
    return d > 0 ? round(d * 1e6) / 1e6 : 0;
}

double summary_duration(const struct summary *s)
{
    return s->end > 0 ? summary_round_us(s->end - s->start) : 0;
}

bool summary_response_time(const struct summary *s, double *out)
{
    if (!s->root_complete)
        return false;
    *out = summary_round_us(s->root_end - s->root_start);
    return true;
}

const struct summary_svc *summary_posted(const struct summary *s, const struct summary_name *name)
{
    for (const struct summary_svc *x = s->svcs; x != NULL; x = x->next)
        if (x->posted && x->name == name)
            return x;
    return NULL;
}

bool summary_has_service(const struct summary *s, const char *name, size_t n)
{
    for (const struct summary_svc *x = s->svcs; x != NULL; x = x->next)
        if (x->name->len == n && memcmp(x->name->s, name, n) == 0)
            return true;
    return false;
}
