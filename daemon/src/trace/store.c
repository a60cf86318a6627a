/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded store: documents by trace in a fixed byte budget, a summary per trace
 * (summary.c) and the indexes GetTraceSummaries reads. It scans nothing itself
 * (store_add() takes the caller's scan) and does not assemble traces.
 * Invariant: bytes_used <= max_bytes after every call; bytes_used counts every
 * allocation the store holds (documents with their headers, traces and summaries,
 * interned names, the indexes).
 *
 * How it works: two chained hash tables of fixed size (traces by id, documents by
 * trace and id) give O(1) lookups; traces sit on a list in arrival order, numbered by
 * seq (1, 2, ... without gaps), so eviction pops the head. Each document is one
 * allocation: header, id, bytes. The time index (a ring of blocks of 64 traces with
 * bounds of their start times, see store_internal.h) and the service posting lists
 * (summary.c) are kept up to date here; store_query.c reads them. */
#include "trace/store.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "error.h"
#include "log.h"
#include "trace/store_dir.h"
#include "trace/store_internal.h"

#define STORE_BUCKET_BYTES 1024 /* one index slot per KiB of budget: ~1 % overhead */
#define STORE_BUCKETS_MIN  16
#define STORE_BUCKETS_MAX  (1u << 20)
#define STORE_BLOCKS_MIN   4

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

static size_t store_pow2(size_t n, size_t min, size_t max)
{
    size_t p = min;
    while (p < max && p < n)
        p *= 2;
    return p;
}

struct store *store_create(size_t max_bytes)
{
    if (max_bytes < STORE_MIN_BYTES)
        max_bytes = STORE_MIN_BYTES;
    size_t buckets =
        store_pow2(max_bytes / STORE_BUCKET_BYTES, STORE_BUCKETS_MIN, STORE_BUCKETS_MAX);
    /* Every trace costs at least its struct, so the ring never runs out of blocks. */
    size_t max_traces = max_bytes / sizeof(struct store_trace) + 1;
    size_t nblocks = store_pow2((max_traces >> STORE_BLOCK_SHIFT) + 2, STORE_BLOCKS_MIN, SIZE_MAX);
    struct store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
        seed = (uint64_t)(uintptr_t)st ^ 0x9e3779b97f4a7c15ull;
    st->seed = seed;
    st->traces_idx = calloc(buckets, sizeof(*st->traces_idx));
    st->docs_idx = calloc(buckets, sizeof(*st->docs_idx));
    st->blocks = calloc(nblocks, sizeof(*st->blocks));
    if (st->traces_idx == NULL || st->docs_idx == NULL || st->blocks == NULL ||
        summary_names_init(&st->names, buckets, seed ^ 0x5bd1e995u) != 0) {
        store_destroy(st);
        return NULL;
    }
    st->mask = buckets - 1;
    st->bmask = nblocks - 1;
    st->next_seq = 1; /* a cursor of 0 means "from the start" */
    st->stats.max_bytes = max_bytes;
    st->base_bytes =
        sizeof(*st) + 3 * buckets * sizeof(void *) + nblocks * sizeof(struct store_block);
    st->stats.bytes_used = st->base_bytes;
    return st;
}

static void store_free_trace(struct store *st, struct store_trace *t)
{
    struct store_doc *d = t->first;
    while (d != NULL) {
        struct store_doc *next = d->next;
        free(d);
        d = next;
    }
    summary_clear(&st->names, &t->sum, &st->stats.bytes_used);
    free(t);
}

void store_destroy(struct store *st)
{
    if (st == NULL)
        return;
    store_dir_close(st->dir);
    struct store_trace *t = st->oldest;
    while (t != NULL) {
        struct store_trace *newer = t->newer;
        store_free_trace(st, t);
        t = newer;
    }
    summary_names_free(&st->names);
    free(st->traces_idx);
    free(st->docs_idx);
    free(st->blocks);
    free(st);
}

static bool store_same_block(uint64_t a, uint64_t b)
{
    return a >> STORE_BLOCK_SHIFT == b >> STORE_BLOCK_SHIFT;
}

/* True when a new trace would need the block the oldest trace still uses. */
static bool store_blocks_full(const struct store *st)
{
    return st->oldest != NULL &&
           (st->next_seq >> STORE_BLOCK_SHIFT) - (st->oldest->sum.seq >> STORE_BLOCK_SHIFT) >
               st->bmask;
}

/* t is the newest trace, already linked. */
static void store_block_add(struct store *st, const struct store_trace *t)
{
    struct store_block *b = store_block(st, t->sum.seq);
    const struct store_trace *prev = t->older;
    double s = t->sum.start;
    if (prev == NULL || !store_same_block(prev->sum.seq, t->sum.seq)) {
        double pmax = prev != NULL ? store_block(st, prev->sum.seq)->pmax : s;
        *b = (struct store_block){t, s, s, pmax > s ? pmax : s};
        return;
    }
    b->min = s < b->min ? s : b->min;
    b->max = s > b->max ? s : b->max;
    b->pmax = s > b->pmax ? s : b->pmax;
}

/* t is the oldest trace, about to go. */
static void store_block_evict(struct store *st, const struct store_trace *t)
{
    struct store_block *b = store_block(st, t->sum.seq);
    if (b->first == t)
        b->first =
            t->newer != NULL && store_same_block(t->newer->sum.seq, t->sum.seq) ? t->newer : NULL;
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

/* Removes the oldest trace from every index: O(its documents and summary entries). */
static void store_evict_oldest(struct store *st)
{
    struct store_trace *t = st->oldest;
    struct store_trace **pp = &st->traces_idx[t->hash & st->mask];
    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    store_block_evict(st, t);
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
    store_free_trace(st, t);
}

static struct store_trace *store_new_trace(struct store *st, const char *trace_id, size_t n,
                                           uint64_t h, uint64_t now_ms, double start)
{
    struct store_trace *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    memcpy(t->id, trace_id, n);
    t->hash = h;
    t->first_seen_ms = now_ms;
    summary_init(&t->sum, st->next_seq++, start);
    t->hnext = st->traces_idx[h & st->mask];
    st->traces_idx[h & st->mask] = t;
    t->older = st->newest;
    if (st->newest != NULL)
        st->newest->newer = t;
    else
        st->oldest = t;
    st->newest = t;
    store_block_add(st, t);
    st->stats.traces++;
    st->stats.bytes_used += sizeof(*t);
    return t;
}

/* Links d into t in place of old (NULL: at the end). */
static void store_link_doc(struct store_trace *t, struct store_doc *d, struct store_doc *old)
{
    if (old != NULL) {
        /* The new version takes the old one's place in the trace's order. */
        d->prev = old->prev;
        d->next = old->next;
        *(d->prev ? &d->prev->next : &t->first) = d;
        *(d->next ? &d->next->prev : &t->last) = d;
        return;
    }
    d->next = NULL;
    d->prev = t->last;
    *(t->last ? &t->last->next : &t->first) = d;
    t->last = d;
    t->docs++;
}

/* store_put() and store_add() (v NULL for store_put()). 0 when stored, 1 when dropped
 * as a stale in-progress version, or an error. */
static int store_insert(struct store *st, const char *trace_id, const char *id, unsigned bits,
                        double start, double end, const struct segment_view *v, const char *doc,
                        size_t len, uint64_t now_ms)
{
    size_t tn = strlen(trace_id), in = strlen(id);
    bool in_progress = (bits & SUMMARY_IN_PROGRESS) != 0;
    if (tn == 0 || tn > STORE_TRACE_ID_MAX || in == 0 || in > STORE_ID_MAX || isnan(start) ||
        isnan(end))
        return -EINVAL;
    size_t cost = store_doc_cost(in, len), extra = v != NULL ? summary_bound(v) : 0;
    /* Checked before evicting anything: a document that could never fit must not
     * empty the store on its way to failing. */
    if (len > st->stats.max_bytes ||
        cost + extra + sizeof(struct store_trace) > st->stats.max_bytes - st->base_bytes)
        return XRAY_ETOOBIG;
    uint64_t th = store_hash(st->seed, trace_id, tn);
    struct store_trace *t;
    struct store_doc *old;
    for (;;) {
        t = store_lookup_trace(st, trace_id, tn, th);
        old = t ? store_lookup_doc(st, t, id, in, store_doc_hash(st, t, id, in)) : NULL;
        if (old != NULL && in_progress && !old->in_progress) {
            st->stats.stale++;
            return 1;
        }
        size_t need = cost + extra + (t ? 0 : sizeof(struct store_trace));
        size_t freed = old ? store_doc_cost(old->id_len, old->len) : 0;
        if (st->stats.bytes_used + need - freed <= st->stats.max_bytes &&
            (t != NULL || !store_blocks_full(st)))
            break;
        store_evict_oldest(st); /* never empty here: the check above */
    }
    struct store_doc *d = malloc(sizeof(*d) + in + 1 + len + 1);
    if (d == NULL)
        return -ENOMEM;
    if (t == NULL && (t = store_new_trace(st, trace_id, tn, th, now_ms, start)) == NULL) {
        free(d);
        return -ENOMEM;
    }
    d->trace = t;
    d->start = start;
    d->end = in_progress ? 0 : end;
    d->len = len;
    d->id_len = (unsigned char)in;
    d->in_progress = in_progress;
    d->bits = (uint8_t)bits;
    d->hash = store_doc_hash(st, t, id, in);
    memcpy(d->data, id, in + 1);
    memcpy(d->data + in + 1, doc, len);
    d->data[in + 1 + len] = '\0';
    d->hnext = st->docs_idx[d->hash & st->mask];
    st->docs_idx[d->hash & st->mask] = d;
    st->stats.bytes_used += cost;
    store_link_doc(t, d, old);
    summary_count(&t->sum, old != NULL ? old->bits : 0, bits);
    if (old != NULL) {
        store_unindex_doc(st, old);
        st->stats.bytes_used -= store_doc_cost(old->id_len, old->len);
        st->stats.replaced++;
        free(old);
    } else {
        st->stats.documents++;
    }
    if (summary_times(&t->sum, start, d->end)) {
        struct store_block *b = store_block(st, t->sum.seq);
        b->min = t->sum.start < b->min ? t->sum.start : b->min;
    }
    if (v == NULL)
        return 0;
    return summary_add(&st->names, &t->sum, v, &st->stats.bytes_used, &st->stats.summary_dropped);
}

/* Appends a stored document to the directory, when there is one. */
static void store_persist(struct store *st, const char *trace_id, const char *id, unsigned bits,
                          double start, double end, const char *doc, size_t len, uint64_t now_ms)
{
    if (st->dir == NULL)
        return;
    bool in_progress = (bits & SUMMARY_IN_PROGRESS) != 0;
    struct store_file_rec r = {
        .trace_id = trace_id,
        .trace_len = strlen(trace_id),
        .id = id,
        .id_len = strlen(id),
        .doc = doc,
        .len = len,
        .arrival_ms = now_ms,
        .start = start,
        .end = in_progress ? 0 : end,
        .flags = (uint8_t)((in_progress ? STORE_FILE_IN_PROGRESS : 0) |
                           (bits & SUMMARY_SCANNED ? STORE_FILE_SCANNED : 0)),
    };
    store_dir_append(st->dir, &r);
}

int store_put(struct store *st, const char *trace_id, const char *id, bool in_progress,
              double start, double end, const char *doc, size_t len, uint64_t now_ms)
{
    unsigned bits = in_progress ? SUMMARY_IN_PROGRESS : 0;
    int rc = store_insert(st, trace_id, id, bits, start, end, NULL, doc, len, now_ms);
    if (rc == 0)
        store_persist(st, trace_id, id, bits, start, end, doc, len, now_ms);
    return rc > 0 ? 0 : rc;
}

int store_add(struct store *st, const char *trace_id, const struct segment_view *v, const char *doc,
              size_t len, uint64_t now_ms)
{
    char id[STORE_ID_MAX + 1];
    size_t n = scan_str_unescape(&v->seg.id, id, sizeof(id));
    if (n > STORE_ID_MAX || memchr(id, '\0', n) != NULL)
        return -EINVAL;
    unsigned bits = summary_bits(v);
    double start = v->seg.start_time, end = v->seg.has_end_time ? v->seg.end_time : 0;
    int rc = store_insert(st, trace_id, id, bits, start, end, v, doc, len, now_ms);
    if (rc == 0)
        store_persist(st, trace_id, id, bits, start, end, doc, len, now_ms);
    return rc > 0 ? 0 : rc;
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
    if (st->dir != NULL) {
        struct store_dir_stats ds;
        store_dir_get_stats(st->dir, &ds);
        out->loaded = ds.loaded;
        out->corrupt = ds.corrupt;
        out->disk_bytes = ds.disk_bytes;
        out->disk_errors = ds.errors;
    }
}

/* Loading: each record goes in as it first did, rescanned when store_add() took it. */
struct store_loader {
    struct store *st;
    struct segment_view *view;
};

static void store_load_record(const struct store_file_rec *r, void *ctx)
{
    struct store_loader *ld = ctx;
    char trace_id[STORE_TRACE_ID_MAX + 1], id[STORE_ID_MAX + 1];
    memcpy(trace_id, r->trace_id, r->trace_len);
    trace_id[r->trace_len] = '\0';
    memcpy(id, r->id, r->id_len);
    id[r->id_len] = '\0';
    const struct segment_view *v = ld->view;
    if ((r->flags & STORE_FILE_SCANNED) && scan_document(r->doc, r->len, ld->view) == 0) {
        double end = v->seg.has_end_time ? v->seg.end_time : 0;
        store_insert(ld->st, trace_id, id, summary_bits(v), v->seg.start_time, end, v, r->doc,
                     r->len, r->arrival_ms);
        return;
    }
    unsigned bits = r->flags & STORE_FILE_IN_PROGRESS ? SUMMARY_IN_PROGRESS : 0;
    store_insert(ld->st, trace_id, id, bits, r->start, r->end, NULL, r->doc, r->len, r->arrival_ms);
}

int store_open_dir(struct store *st, const char *dir, char err[XRAY_ERR_LEN])
{
    if (st->dir != NULL) {
        xray_err_set(err, "%s: the store already has a directory", dir);
        return -EBUSY;
    }
    struct store_dir *sd;
    int rc = store_dir_open(dir, st->stats.max_bytes, &sd, err);
    if (rc != 0)
        return rc;
    struct store_loader ld = {st, malloc(sizeof(struct segment_view))};
    if (ld.view == NULL) {
        store_dir_close(sd);
        xray_err_set(err, "%s: out of memory", dir);
        return -ENOMEM;
    }
    /* What is stored already goes into the new file first; what is loaded is in its
     * own file already, so it is not appended again. */
    st->dir = sd;
    for (const struct store_trace *t = st->oldest; t != NULL; t = t->newer)
        for (const struct store_doc *d = t->first; d != NULL; d = d->next)
            store_persist(st, t->id, d->data, d->bits, d->start, d->end, store_doc_bytes(d), d->len,
                          t->first_seen_ms);
    st->dir = NULL;
    store_dir_load(sd, store_load_record, &ld);
    st->dir = sd;
    free(ld.view);
    struct store_stats s;
    store_get_stats(st, &s);
    if (s.corrupt > 0)
        XLOG_WARN("store", "%s: %" PRIu64 " file(s) end in a torn or damaged record, skipped", dir,
                  s.corrupt);
    XLOG_INFO("store", "%s: loaded %" PRIu64 " documents, %zu traces kept", dir, s.loaded,
              s.traces);
    return 0;
}

int store_sync(struct store *st)
{
    return st->dir != NULL ? store_dir_sync(st->dir) : 0;
}
