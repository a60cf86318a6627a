/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded store: documents by trace in a fixed byte budget. It does not parse
 * documents (the caller gives ids and times) and does not assemble traces.
 * Invariant: bytes_used <= max_bytes after every call; bytes_used counts every
 * allocation the store holds (documents with their headers, traces, the index).
 *
 * How it works: two chained hash tables of fixed size (traces by id, documents by
 * trace and id) give O(1) lookups; traces sit on a list in first-seen order, so
 * eviction pops the head. Each document is one allocation: header, id, bytes. */
#include "trace/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "error.h"

#define STORE_BUCKET_BYTES 1024 /* one index slot per KiB of budget: ~1 % overhead */
#define STORE_BUCKETS_MIN  16
#define STORE_BUCKETS_MAX  (1u << 20)

struct store_trace;

struct store_doc {
    struct store_doc *next; /* the trace's documents, in arrival order */
    struct store_doc *prev;
    struct store_doc *hnext; /* document index chain */
    struct store_trace *trace;
    double start;
    double end;
    size_t len;
    uint64_t hash;
    unsigned char id_len;
    bool in_progress;
    char data[]; /* id, NUL, document, NUL */
};

struct store_trace {
    struct store_trace *older; /* first-seen order */
    struct store_trace *newer;
    struct store_trace *hnext; /* trace index chain */
    struct store_doc *first;
    struct store_doc *last;
    uint64_t first_seen_ms;
    uint64_t hash;
    size_t docs;
    char id[STORE_TRACE_ID_MAX + 1];
};

struct store {
    struct store_trace **traces_idx;
    struct store_doc **docs_idx;
    size_t mask; /* buckets - 1, for both tables */
    struct store_trace *oldest;
    struct store_trace *newest;
    uint64_t seed;     /* random per store: outside input chooses the ids */
    size_t base_bytes; /* the store itself and its index */
    struct store_stats stats;
};

/* FNV-1a over a seed, finished with a 64-bit mixer so the low bits spread. */
static uint64_t store_hash(uint64_t seed, const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static size_t store_doc_cost(size_t id_len, size_t len)
{
    return sizeof(struct store_doc) + id_len + 1 + len + 1;
}

static const char *store_doc_bytes(const struct store_doc *d)
{
    return d->data + d->id_len + 1;
}

struct store *store_create(size_t max_bytes)
{
    if (max_bytes < STORE_MIN_BYTES)
        max_bytes = STORE_MIN_BYTES;
    size_t buckets = STORE_BUCKETS_MIN;
    while (buckets < STORE_BUCKETS_MAX && buckets < max_bytes / STORE_BUCKET_BYTES)
        buckets *= 2;
    struct store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->traces_idx = calloc(buckets, sizeof(*st->traces_idx));
    st->docs_idx = calloc(buckets, sizeof(*st->docs_idx));
    if (st->traces_idx == NULL || st->docs_idx == NULL) {
        store_destroy(st);
        return NULL;
    }
    st->mask = buckets - 1;
    if (getrandom(&st->seed, sizeof(st->seed), GRND_NONBLOCK) != sizeof(st->seed))
        st->seed = (uint64_t)(uintptr_t)st ^ 0x9e3779b97f4a7c15ull;
    st->stats.max_bytes = max_bytes;
    st->base_bytes = sizeof(*st) + 2 * buckets * sizeof(void *);
    st->stats.bytes_used = st->base_bytes;
    return st;
}

static void store_free_trace(struct store_trace *t)
{
    struct store_doc *d = t->first;
    while (d != NULL) {
        struct store_doc *next = d->next;
        free(d);
        d = next;
    }
    free(t);
}

void store_destroy(struct store *st)
{
    if (st == NULL)
        return;
    struct store_trace *t = st->oldest;
    while (t != NULL) {
        struct store_trace *newer = t->newer;
        store_free_trace(t);
        t = newer;
    }
    free(st->traces_idx);
    free(st->docs_idx);
    free(st);
}

static struct store_trace *store_lookup_trace(const struct store *st, const char *trace_id,
                                              size_t n, uint64_t h)
{
    struct store_trace *t = st->traces_idx[h & st->mask];
    while (t != NULL && (t->hash != h || strncmp(t->id, trace_id, n) != 0 || t->id[n] != '\0'))
        t = t->hnext;
    return t;
}

static uint64_t store_doc_hash(const struct store *st, const struct store_trace *t, const char *id,
                               size_t n)
{
    return store_hash(st->seed ^ t->hash, id, n);
}

static struct store_doc *store_lookup_doc(const struct store *st, const struct store_trace *t,
                                          const char *id, size_t n, uint64_t h)
{
    struct store_doc *d = st->docs_idx[h & st->mask];
    while (d != NULL &&
           (d->hash != h || d->trace != t || d->id_len != n || memcmp(d->data, id, n) != 0))
        d = d->hnext;
    return d;
}

/* Unlinks d from the document index (not from its trace's list). */
static void store_unindex_doc(struct store *st, struct store_doc *d)
{
    struct store_doc **pp = &st->docs_idx[d->hash & st->mask];
    while (*pp != d)
        pp = &(*pp)->hnext;
    *pp = d->hnext;
}

static void store_evict_oldest(struct store *st)
{
    struct store_trace *t = st->oldest;
    struct store_trace **pp = &st->traces_idx[t->hash & st->mask];
    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    st->oldest = t->newer;
    if (st->oldest != NULL)
        st->oldest->older = NULL;
    else
        st->newest = NULL;
    for (struct store_doc *d = t->first; d != NULL; d = d->next) {
        store_unindex_doc(st, d);
        st->stats.bytes_used -= store_doc_cost(d->id_len, d->len);
    }
    st->stats.bytes_used -= sizeof(*t);
    st->stats.traces--;
    st->stats.documents -= t->docs;
    st->stats.evicted_traces++;
    st->stats.evicted_documents += t->docs;
    store_free_trace(t);
}

static struct store_trace *store_new_trace(struct store *st, const char *trace_id, size_t n,
                                           uint64_t h, uint64_t now_ms)
{
    struct store_trace *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    memcpy(t->id, trace_id, n);
    t->hash = h;
    t->first_seen_ms = now_ms;
    t->hnext = st->traces_idx[h & st->mask];
    st->traces_idx[h & st->mask] = t;
    t->older = st->newest;
    if (st->newest != NULL)
        st->newest->newer = t;
    else
        st->oldest = t;
    st->newest = t;
    st->stats.traces++;
    st->stats.bytes_used += sizeof(*t);
    return t;
}

int store_put(struct store *st, const char *trace_id, const char *id, bool in_progress,
              double start, double end, const char *doc, size_t len, uint64_t now_ms)
{
    size_t tn = strlen(trace_id), in = strlen(id);
    if (tn == 0 || tn > STORE_TRACE_ID_MAX || in == 0 || in > STORE_ID_MAX)
        return -EINVAL;
    size_t cost = store_doc_cost(in, len);
    /* Checked before evicting anything: a document that could never fit must not
     * empty the store on its way to failing. */
    if (len > st->stats.max_bytes ||
        cost + sizeof(struct store_trace) > st->stats.max_bytes - st->base_bytes)
        return XRAY_ETOOBIG;
    uint64_t th = store_hash(st->seed, trace_id, tn);
    struct store_trace *t;
    struct store_doc *old;
    for (;;) {
        t = store_lookup_trace(st, trace_id, tn, th);
        old = t ? store_lookup_doc(st, t, id, in, store_doc_hash(st, t, id, in)) : NULL;
        if (old != NULL && in_progress && !old->in_progress) {
            st->stats.stale++;
            return 0;
        }
        size_t need = cost + (t ? 0 : sizeof(struct store_trace));
        size_t freed = old ? store_doc_cost(old->id_len, old->len) : 0;
        if (st->stats.bytes_used + need - freed <= st->stats.max_bytes)
            break;
        store_evict_oldest(st); /* never empty here: the check above */
    }
    struct store_doc *d = malloc(sizeof(*d) + in + 1 + len + 1);
    if (d == NULL)
        return -ENOMEM;
    if (t == NULL && (t = store_new_trace(st, trace_id, tn, th, now_ms)) == NULL) {
        free(d);
        return -ENOMEM;
    }
    d->trace = t;
    d->start = start;
    d->end = in_progress ? 0 : end;
    d->len = len;
    d->id_len = (unsigned char)in;
    d->in_progress = in_progress;
    d->hash = store_doc_hash(st, t, id, in);
    memcpy(d->data, id, in + 1);
    memcpy(d->data + in + 1, doc, len);
    d->data[in + 1 + len] = '\0';
    d->hnext = st->docs_idx[d->hash & st->mask];
    st->docs_idx[d->hash & st->mask] = d;
    st->stats.bytes_used += cost;
    if (old != NULL) {
        /* The new version takes the old one's place in the trace's order. */
        d->prev = old->prev;
        d->next = old->next;
        *(d->prev ? &d->prev->next : &t->first) = d;
        *(d->next ? &d->next->prev : &t->last) = d;
        store_unindex_doc(st, old);
        st->stats.bytes_used -= store_doc_cost(old->id_len, old->len);
        st->stats.replaced++;
        free(old);
        return 0;
    }
    d->next = NULL;
    d->prev = t->last;
    *(t->last ? &t->last->next : &t->first) = d;
    t->last = d;
    t->docs++;
    st->stats.documents++;
    return 0;
}

int store_find(const struct store *st, const char *trace_id, struct store_iter *it)
{
    size_t tn = strlen(trace_id);
    it->_doc = NULL;
    if (tn == 0 || tn > STORE_TRACE_ID_MAX)
        return -ENOENT;
    const struct store_trace *t =
        store_lookup_trace(st, trace_id, tn, store_hash(st->seed, trace_id, tn));
    if (t == NULL)
        return -ENOENT;
    it->_doc = t->first;
    return 0;
}

bool store_next(struct store_iter *it, struct store_doc_view *out)
{
    const struct store_doc *d = it->_doc;
    if (d == NULL)
        return false;
    out->id = d->data;
    out->doc = store_doc_bytes(d);
    out->len = d->len;
    out->start = d->start;
    out->end = d->end;
    out->in_progress = d->in_progress;
    it->_doc = d->next;
    return true;
}

void store_get_stats(const struct store *st, struct store_stats *out)
{
    *out = st->stats;
}
