/* SPDX-License-Identifier: Apache-2.0 */
/* Trace assembly: documents grouped by trace id as digests until the trace completes
 * (idle, root done, evicted or flushed), then handed whole to the closed callback;
 * documents held for a tail decision ride along under their own budget. It does not
 * scan, decide or free documents. Invariants: bytes_used <= max_bytes and held_bytes
 * <= hold_bytes after every call; every operation is O(1) amortized per document.
 *
 * How it works: a chained table of fixed size (seeded hash: outside input picks the
 * ids) finds a trace. Each trace sits on three lists: by last activity (the sweep pops
 * idle ones from the head), by creation (eviction pops the oldest) and, while it holds
 * documents, by when it started holding (a full hold releases the head). A per-trace
 * open-addressing set maps each id seen to flags: a complete or in-progress document
 * with that id, a traced call waiting for its callee, a segment naming it as parent.
 * The flags give duplicates, replacements and the count of traced calls still open,
 * so "root done" is a test of two fields. Closed trace ids are remembered as 64-bit
 * hashes in a ring with a chained index, so a late document is recognised. */
#include "trace/assembler.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util.h"

#define ASSEMBLER_WINDOW_MS    10000
#define ASSEMBLER_BUCKET_BYTES 512 /* a table slot per 512 bytes: a trace costs more */
#define ASSEMBLER_BUCKETS_MIN  16
#define ASSEMBLER_BUCKETS_MAX  (1u << 22)
#define ASSEMBLER_TRACE_ID_MAX 255 /* X-Ray's are 35; longer ones are dropped */
#define ASSEMBLER_SET_MIN      8
#define ASSEMBLER_SET_SLOT     (sizeof(uint64_t) + 1) /* a key and its flags */
#define ASSEMBLER_NIL          UINT32_MAX

enum assembler_id_flag {
    ASSEMBLER_ID_COMPLETE = 1u << 0, /* a complete document has this id */
    ASSEMBLER_ID_PARTIAL = 1u << 1,  /* an in-progress document has this id */
    ASSEMBLER_ID_PENDING = 1u << 2,  /* a traced call with this id waits for its callee */
    ASSEMBLER_ID_PARENT = 1u << 3,   /* a complete segment has this id as parent_id */
};

struct assembler_link {
    struct assembler_link *prev, *next;
};

struct assembler_list {
    struct assembler_link *head, *tail;
};

struct assembler_trace {
    struct assembler_trace *hnext; /* table chain */
    struct assembler_link idle;    /* by last activity */
    struct assembler_link age;     /* by creation */
    struct assembler_link hold;    /* by start of holding; linked while held != NULL */
    struct digest_doc *first, *last;
    struct doc *held, *held_last;
    size_t held_bytes;
    size_t bytes; /* against max_bytes: this entry, its id set and its digests */
    uint64_t hash;
    uint64_t first_ms, last_ms; /* arrivals */
    uint64_t seen_ms;           /* the worker's clock at the last document: the idle key */
    uint64_t *keys;             /* id set: cap keys, then cap flag bytes; 0 is empty */
    uint32_t cap, used;
    uint32_t ndocs;
    uint32_t open_calls; /* traced calls of complete documents with no callee segment yet */
    double root_duration;
    uint8_t worst;
    bool late, released, root;
    char id[];
};

struct assembler {
    struct assembler_trace **table;
    size_t mask;
    struct assembler_list idle, age, hold;
    uint64_t seed;
    uint64_t window_ms;
    size_t max_bytes, base_bytes, used_bytes;
    size_t hold_max, held_bytes;
    size_t ntraces;
    assembler_closed_cb closed;
    void *ctx;
    void (*release)(void *ctx, const char *trace_id, struct doc *docs);
    void *release_ctx;
    /* Tombstones: a ring of hashes, chained by index from tomb_head. */
    uint64_t *tomb_hash;
    uint32_t *tomb_next, *tomb_head;
    size_t tomb_n, tomb_mask, tomb_pos, tomb_count;
    struct assembler_stats stats;
};

#define assembler_of(link, member) container_of(link, struct assembler_trace, member)

static void assembler_list_push(struct assembler_list *l, struct assembler_link *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static void assembler_list_remove(struct assembler_list *l, struct assembler_link *n)
{
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

/* FNV-1a over a seed, finished with a 64-bit mixer so the low bits spread. */
static uint64_t assembler_hash(uint64_t seed, const char *s, size_t n)
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

/* ---- the per-trace id set ---- */

static uint8_t *assembler_set_flags(const struct assembler_trace *t)
{
    return (uint8_t *)(t->keys + t->cap);
}

static uint32_t assembler_set_find(const struct assembler *a, const struct assembler_trace *t,
                                   uint64_t key)
{
    uint64_t x = key ^ a->seed;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    uint32_t mask = t->cap - 1, i = (uint32_t)x & mask;
    while (t->keys[i] != 0 && t->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

static uint8_t assembler_set_get(const struct assembler *a, const struct assembler_trace *t,
                                 uint64_t key)
{
    if (key == 0 || t->cap == 0)
        return 0;
    uint32_t i = assembler_set_find(a, t, key);
    return t->keys[i] == key ? assembler_set_flags(t)[i] : 0;
}

/* Adds flags to key (inserting it); returns its flags before. Capacity was reserved. */
static uint8_t assembler_set_or(const struct assembler *a, struct assembler_trace *t, uint64_t key,
                                uint8_t flags)
{
    if (key == 0)
        return 0;
    uint32_t i = assembler_set_find(a, t, key);
    uint8_t *f = assembler_set_flags(t);
    if (t->keys[i] == 0) {
        t->keys[i] = key;
        f[i] = 0;
        t->used++;
    }
    uint8_t old = f[i];
    f[i] |= flags;
    return old;
}

/* The capacity that holds n keys at a load of at most 3/4. */
static uint32_t assembler_set_cap_for(uint32_t cap, size_t n)
{
    if (cap == 0)
        cap = ASSEMBLER_SET_MIN;
    while (n * 4 > (size_t)cap * 3)
        cap *= 2;
    return cap;
}

/* Bytes that reserving room for k more keys in t adds. */
static size_t assembler_set_growth(const struct assembler_trace *t, uint32_t k)
{
    uint32_t cap = assembler_set_cap_for(t->cap, (size_t)t->used + k);
    return (size_t)(cap - t->cap) * ASSEMBLER_SET_SLOT;
}

static int assembler_set_reserve(struct assembler *a, struct assembler_trace *t, uint32_t k)
{
    uint32_t cap = assembler_set_cap_for(t->cap, (size_t)t->used + k);
    if (cap == t->cap)
        return 0;
    uint64_t *keys = calloc(cap, ASSEMBLER_SET_SLOT);
    if (keys == NULL)
        return -1;
    uint64_t *old_keys = t->keys;
    uint32_t old_cap = t->cap;
    const uint8_t *old_flags = old_keys != NULL ? assembler_set_flags(t) : NULL;
    size_t grown = (size_t)(cap - old_cap) * ASSEMBLER_SET_SLOT;
    t->keys = keys;
    t->cap = cap;
    t->used = 0;
    for (uint32_t i = 0; i < old_cap; i++)
        if (old_keys[i] != 0)
            assembler_set_or(a, t, old_keys[i], old_flags[i]);
    free(old_keys);
    t->bytes += grown;
    a->used_bytes += grown;
    return 0;
}

/* ---- tombstones ---- */

static bool assembler_tomb_has(const struct assembler *a, uint64_t h)
{
    for (uint32_t i = a->tomb_head[h & a->tomb_mask]; i != ASSEMBLER_NIL; i = a->tomb_next[i])
        if (a->tomb_hash[i] == h)
            return true;
    return false;
}

static void assembler_tomb_put(struct assembler *a, uint64_t h)
{
    if (assembler_tomb_has(a, h))
        return;
    uint32_t pos = (uint32_t)a->tomb_pos;
    if (a->tomb_count == a->tomb_n) {
        /* The ring is full: the oldest tombstone leaves its chain. */
        uint32_t *p = &a->tomb_head[a->tomb_hash[pos] & a->tomb_mask];
        while (*p != pos)
            p = &a->tomb_next[*p];
        *p = a->tomb_next[pos];
    } else {
        a->tomb_count++;
    }
    uint32_t *head = &a->tomb_head[h & a->tomb_mask];
    a->tomb_hash[pos] = h;
    a->tomb_next[pos] = *head;
    *head = pos;
    a->tomb_pos = (a->tomb_pos + 1) % a->tomb_n;
}

/* ---- create, destroy ---- */

struct assembler *assembler_create(const struct assembler_options *o)
{
    struct assembler *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->window_ms = o->window_ms > 0 ? o->window_ms : ASSEMBLER_WINDOW_MS;
    a->max_bytes = o->max_bytes > ASSEMBLER_MIN_BYTES ? o->max_bytes : ASSEMBLER_MIN_BYTES;
    a->hold_max = o->hold_bytes;
    a->closed = o->closed;
    a->ctx = o->ctx;
    size_t buckets = ASSEMBLER_BUCKETS_MIN;
    while (buckets < ASSEMBLER_BUCKETS_MAX && buckets < a->max_bytes / ASSEMBLER_BUCKET_BYTES)
        buckets *= 2;
    a->tomb_n = o->tombstones > 0 ? o->tombstones : ASSEMBLER_DEFAULT_TOMBSTONES;
    if (a->tomb_n >= ASSEMBLER_NIL)
        a->tomb_n = ASSEMBLER_NIL - 1;
    size_t tomb_buckets = 1;
    while (tomb_buckets < a->tomb_n)
        tomb_buckets *= 2;
    a->table = calloc(buckets, sizeof(*a->table));
    a->tomb_hash = malloc(a->tomb_n * sizeof(*a->tomb_hash));
    a->tomb_next = malloc(a->tomb_n * sizeof(*a->tomb_next));
    a->tomb_head = malloc(tomb_buckets * sizeof(*a->tomb_head));
    if (a->table == NULL || a->tomb_hash == NULL || a->tomb_next == NULL || a->tomb_head == NULL) {
        assembler_destroy(a);
        return NULL;
    }
    memset(a->tomb_head, 0xff, tomb_buckets * sizeof(*a->tomb_head));
    a->tomb_mask = tomb_buckets - 1;
    a->mask = buckets - 1;
    if (getrandom(&a->seed, sizeof(a->seed), GRND_NONBLOCK) != sizeof(a->seed))
        a->seed = (uint64_t)(uintptr_t)a ^ 0x9e3779b97f4a7c15ull;
    a->base_bytes = sizeof(*a) + buckets * sizeof(*a->table);
    a->used_bytes = a->base_bytes;
    return a;
}

static void assembler_free_trace(struct assembler_trace *t)
{
    struct digest_doc *d = t->first;
    while (d != NULL) {
        struct digest_doc *next = d->next;
        free(d);
        d = next;
    }
    free(t->keys);
    free(t);
}

void assembler_destroy(struct assembler *a)
{
    if (a == NULL)
        return;
    struct assembler_link *l = a->age.head;
    while (l != NULL) {
        struct assembler_link *next = l->next;
        assembler_free_trace(assembler_of(l, age)); /* held documents are the pool's */
        l = next;
    }
    free(a->table);
    free(a->tomb_hash);
    free(a->tomb_next);
    free(a->tomb_head);
    free(a);
}

void assembler_on_release(struct assembler *a,
                          void (*release)(void *ctx, const char *trace_id, struct doc *docs),
                          void *ctx)
{
    a->release = release;
    a->release_ctx = ctx;
}

/* ---- traces ---- */

static struct assembler_trace *assembler_find(const struct assembler *a, uint64_t h,
                                              const char *trace_id)
{
    struct assembler_trace *t = a->table[h & a->mask];
    while (t != NULL && (t->hash != h || strcmp(t->id, trace_id) != 0))
        t = t->hnext;
    return t;
}

static size_t assembler_trace_cost(size_t idlen, uint32_t k)
{
    return sizeof(struct assembler_trace) + idlen + 1 +
           (size_t)assembler_set_cap_for(0, k) * ASSEMBLER_SET_SLOT;
}

static struct assembler_trace *assembler_trace_new(struct assembler *a, uint64_t h,
                                                   const char *trace_id, size_t idlen, uint32_t k)
{
    struct assembler_trace *t = calloc(1, sizeof(*t) + idlen + 1);
    if (t == NULL)
        return NULL;
    t->bytes = sizeof(*t) + idlen + 1;
    a->used_bytes += t->bytes;
    if (assembler_set_reserve(a, t, k) != 0) {
        a->used_bytes -= t->bytes;
        free(t);
        return NULL;
    }
    memcpy(t->id, trace_id, idlen + 1);
    t->hash = h;
    t->root_duration = -1;
    t->late = assembler_tomb_has(a, h);
    t->first_ms = UINT64_MAX;
    struct assembler_trace **b = &a->table[h & a->mask];
    t->hnext = *b;
    *b = t;
    assembler_list_push(&a->age, &t->age);
    assembler_list_push(&a->idle, &t->idle);
    a->ntraces++;
    return t;
}

/* Takes t out of every structure and the budgets; the caller then owns it. */
static void assembler_detach(struct assembler *a, struct assembler_trace *t)
{
    struct assembler_trace **p = &a->table[t->hash & a->mask];
    while (*p != t)
        p = &(*p)->hnext;
    *p = t->hnext;
    assembler_list_remove(&a->idle, &t->idle);
    assembler_list_remove(&a->age, &t->age);
    if (t->held != NULL)
        assembler_list_remove(&a->hold, &t->hold);
    a->used_bytes -= t->bytes;
    a->held_bytes -= t->held_bytes;
    a->ntraces--;
}

static void assembler_close_trace(struct assembler *a, struct assembler_trace *t,
                                  enum assembler_close why)
{
    assembler_detach(a, t);
    assembler_tomb_put(a, t->hash);
    a->stats.completed[why]++;
    struct assembled_trace at = {
        .trace_id = t->id,
        .docs = t->first,
        .ndocs = t->ndocs,
        .held = t->held,
        .held_bytes = t->held_bytes,
        .first_ms = t->first_ms,
        .last_ms = t->last_ms,
        .worst = t->worst,
        .root_duration = t->root_duration,
        .late = t->late,
        .why = (uint8_t)why,
    };
    if (a->closed != NULL)
        a->closed(a->ctx, &at);
    /* Held documents the callback did not take are lost to the pool: a caller bug. */
    assert(at.held == NULL);
    for (struct doc *d = at.held; d != NULL; d = d->next)
        a->stats.dropped++;
    assembler_free_trace(t);
}

/* Gives t's held documents to the release callback; t stays open for the graph. */
static void assembler_release(struct assembler *a, struct assembler_trace *t)
{
    struct doc *docs = t->held;
    assembler_list_remove(&a->hold, &t->hold);
    a->held_bytes -= t->held_bytes;
    t->held = t->held_last = NULL;
    t->held_bytes = 0;
    if (!t->released) {
        t->released = true;
        a->stats.forced++;
    }
    if (a->release != NULL) {
        a->release(a->release_ctx, t->id, docs);
        return;
    }
    assert(docs == NULL); /* holding without a release callback is a caller bug */
    for (struct doc *d = docs; d != NULL; d = d->next)
        a->stats.dropped++;
}

static void assembler_hold_append(struct assembler *a, struct assembler_trace *t, struct doc *doc,
                                  size_t cost)
{
    doc->next = NULL;
    if (t->held == NULL) {
        t->held = doc;
        assembler_list_push(&a->hold, &t->hold);
    } else {
        t->held_last->next = doc;
    }
    t->held_last = doc;
    t->held_bytes += cost;
    a->held_bytes += cost;
}

/* Holds doc with t, releasing the oldest holders first when the hold is full. A
 * released trace, or a document larger than the hold, goes at once. */
static void assembler_hold(struct assembler *a, struct assembler_trace *t, struct doc *doc)
{
    size_t cost = pool_doc_bytes(doc->len);
    if (t->released || cost > a->hold_max) {
        assembler_hold_append(a, t, doc, cost);
        assembler_release(a, t);
        return;
    }
    while (a->held_bytes + cost > a->hold_max) {
        struct assembler_trace *o = assembler_of(a->hold.head, hold);
        if (o == t) {
            assembler_hold_append(a, t, doc, cost);
            assembler_release(a, t);
            return;
        }
        assembler_release(a, o);
    }
    assembler_hold_append(a, t, doc, cost);
}

/* Evicts the oldest traces until need more bytes fit; t (the document's trace, or
 * NULL) is set to NULL when it was evicted itself. False when the document cannot
 * fit even in an empty assembler. */
static bool assembler_make_room(struct assembler *a, struct assembler_trace **t, size_t dsize,
                                size_t idlen, uint32_t k)
{
    for (;;) {
        size_t need =
            dsize + (*t != NULL ? assembler_set_growth(*t, k) : assembler_trace_cost(idlen, k));
        if (a->used_bytes + need <= a->max_bytes)
            return true;
        if (*t == NULL && a->base_bytes + need > a->max_bytes)
            return false;
        /* Fitting needs the evicted bytes: the oldest goes, even if it is t (whose id
         * set may be what cannot grow). */
        struct assembler_trace *o =
            *t != NULL && a->base_bytes + need > a->max_bytes ? *t : assembler_of(a->age.head, age);
        if (o == *t)
            *t = NULL;
        assembler_close_trace(a, o, ASSEMBLER_EVICTED);
    }
}

static uint8_t assembler_worst(const struct digest_doc *d)
{
    uint8_t w = d->status;
    for (uint16_t i = 0; i < d->ncalls; i++)
        if (d->calls[i].status > w)
            w = d->calls[i].status;
    return w;
}

/* Files a complete document: its id, the callee it answers, the calls it opens. */
static void assembler_take(struct assembler *a, struct assembler_trace *t, struct digest_doc *d)
{
    if (assembler_set_or(a, t, d->id, ASSEMBLER_ID_COMPLETE) & ASSEMBLER_ID_PARTIAL)
        a->stats.replaced++;
    if (t->last != NULL)
        t->last->next = d;
    else
        t->first = d;
    t->last = d;
    d->next = NULL;
    t->ndocs++;
    t->bytes += d->size;
    a->used_bytes += d->size;
    uint8_t w = assembler_worst(d);
    if (w > t->worst)
        t->worst = w;
    if (!(d->flags & DIGEST_SUBSEGMENT)) {
        if (d->parent_id == 0 && !t->root) {
            t->root = true;
            t->root_duration = d->end - d->start;
        } else if (d->parent_id != 0) {
            uint8_t old = assembler_set_or(a, t, d->parent_id, ASSEMBLER_ID_PARENT);
            if ((old & (ASSEMBLER_ID_PENDING | ASSEMBLER_ID_PARENT)) == ASSEMBLER_ID_PENDING)
                t->open_calls--;
        }
    }
    for (uint16_t i = 0; i < d->ncalls; i++) {
        const struct digest_call *c = &d->calls[i];
        /* Only a traced call keeps the trace open: an untraced one's callee, if it
         * comes, pairs with the half the graph keeps waiting for its own window. */
        if (!c->traced || c->id == 0)
            continue;
        uint8_t f = assembler_set_get(a, t, c->id);
        if (!(f & (ASSEMBLER_ID_PENDING | ASSEMBLER_ID_PARENT))) {
            assembler_set_or(a, t, c->id, ASSEMBLER_ID_PENDING);
            t->open_calls++;
        }
    }
}

static void assembler_touch(struct assembler *a, struct assembler_trace *t, uint64_t arrived_ms,
                            uint64_t now_ms)
{
    if (arrived_ms < t->first_ms)
        t->first_ms = arrived_ms;
    if (arrived_ms > t->last_ms)
        t->last_ms = arrived_ms;
    /* The idle list stays sorted even if a caller's clock steps back. */
    struct assembler_link *tail = a->idle.tail;
    uint64_t floor = tail != NULL ? assembler_of(tail, idle)->seen_ms : 0;
    t->seen_ms = now_ms > floor ? now_ms : floor;
    assembler_list_remove(&a->idle, &t->idle);
    assembler_list_push(&a->idle, &t->idle);
}

static enum assembler_result assembler_drop(struct assembler *a, struct digest_doc *d)
{
    free(d);
    a->stats.dropped++;
    return ASSEMBLER_DROPPED;
}

/* The common case — a trace whose first document is its complete root with no traced
 * call, not held — completes at once: it never enters the table, which saves an
 * insertion and an eviction per trace under a flood of single-segment traces. */
static bool assembler_complete_at_once(const struct assembler_trace *t, const struct digest_doc *d,
                                       const struct doc *doc)
{
    if (t != NULL || d == NULL || doc != NULL || (d->flags & DIGEST_SUBSEGMENT) ||
        d->parent_id != 0)
        return false;
    for (uint16_t i = 0; i < d->ncalls; i++)
        if (d->calls[i].traced)
            return false;
    return true;
}

static enum assembler_result assembler_close_at_once(struct assembler *a, uint64_t h,
                                                     const char *trace_id, struct digest_doc *d)
{
    bool late = assembler_tomb_has(a, h);
    enum assembler_result r = ASSEMBLER_ADDED;
    if (late) {
        a->stats.late++;
        r = ASSEMBLER_LATE;
    } else {
        assembler_tomb_put(a, h);
    }
    a->stats.completed[ASSEMBLER_ROOT_DONE]++;
    d->next = NULL;
    struct assembled_trace at = {
        .trace_id = trace_id,
        .docs = d,
        .ndocs = 1,
        .first_ms = d->arrived_ms,
        .last_ms = d->arrived_ms,
        .worst = assembler_worst(d),
        .root_duration = d->end - d->start,
        .late = late,
        .why = ASSEMBLER_ROOT_DONE,
    };
    if (a->closed != NULL)
        a->closed(a->ctx, &at);
    free(d);
    return r;
}

enum assembler_result assembler_add(struct assembler *a, const char *trace_id,
                                    const struct segment_view *v, struct doc *doc,
                                    uint64_t arrived_ms, uint64_t now_ms)
{
    size_t idlen = strlen(trace_id);
    if (idlen > ASSEMBLER_TRACE_ID_MAX)
        return assembler_drop(a, NULL);
    uint64_t h = assembler_hash(a->seed, trace_id, idlen);
    uint64_t id = digest_id(&v->seg.id);
    struct assembler_trace *t = assembler_find(a, h, trace_id);
    if (t != NULL && (assembler_set_get(a, t, id) & ASSEMBLER_ID_COMPLETE)) {
        a->stats.duplicates++;
        return ASSEMBLER_DUPLICATE;
    }
    struct digest_doc *d = NULL;
    if (!v->seg.in_progress && v->seg.has_end_time && (d = digest_build(v, arrived_ms)) == NULL)
        return assembler_drop(a, NULL);
    if (assembler_complete_at_once(t, d, doc))
        return assembler_close_at_once(a, h, trace_id, d);
    uint32_t k = 2u + (d != NULL ? d->ncalls : 0); /* its id, parent id and calls */
    if (!assembler_make_room(a, &t, d != NULL ? d->size : 0, idlen, k))
        return assembler_drop(a, d);
    if (t == NULL)
        t = assembler_trace_new(a, h, trace_id, idlen, k);
    else if (assembler_set_reserve(a, t, k) != 0)
        return assembler_drop(a, d);
    if (t == NULL)
        return assembler_drop(a, d);

    if (d != NULL)
        assembler_take(a, t, d);
    else
        assembler_set_or(a, t, id, ASSEMBLER_ID_PARTIAL);
    assembler_touch(a, t, arrived_ms, now_ms);
    enum assembler_result r = ASSEMBLER_ADDED;
    if (t->late) {
        a->stats.late++;
        r = ASSEMBLER_LATE;
    }
    if (doc != NULL)
        assembler_hold(a, t, doc);
    if (d != NULL && t->root && t->open_calls == 0)
        assembler_close_trace(a, t, ASSEMBLER_ROOT_DONE);
    return r;
}

void assembler_sweep(struct assembler *a, uint64_t now_ms)
{
    struct assembler_link *l;
    while ((l = a->idle.head) != NULL) {
        struct assembler_trace *t = assembler_of(l, idle);
        if (t->seen_ms + a->window_ms > now_ms)
            break;
        assembler_close_trace(a, t, ASSEMBLER_IDLE);
    }
}

void assembler_flush(struct assembler *a)
{
    while (a->age.head != NULL)
        assembler_close_trace(a, assembler_of(a->age.head, age), ASSEMBLER_FLUSHED);
}

void assembler_get_stats(const struct assembler *a, struct assembler_stats *out)
{
    *out = a->stats;
    out->traces = a->ntraces;
    out->bytes_used = a->used_bytes;
    out->held_bytes = a->held_bytes;
}
