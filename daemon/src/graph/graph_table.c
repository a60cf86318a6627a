/* SPDX-License-Identifier: Apache-2.0 */
/* The graph's storage: nodes by (name, type) and edges by (src, dst) in chained hash
 * tables, each with its statistics as per-minute blocks, newest first. It does not
 * decide what a trace means (graph.c does). Invariant: bytes_used <= max_bytes after
 * every call, counting every allocation it holds.
 *
 * How it works: every update first reserves a bound on what it may allocate (a node, or
 * an edge, a block, a minute, a histogram step); a full budget drops the oldest minute
 * across the graph (a list per minute holds its blocks), and refuses when the oldest
 * minute left is the one being written. A node or edge left with no blocks is freed
 * (a node only once no edge refers to it and nobody pins it), so dropping minutes frees
 * the whole graph they alone held. Updates name their nodes by pinned pointers: the
 * caller finds a node once (graph_table_pin()) for all its updates, and eviction
 * cannot free it under them. The current minute's block is the head of each series:
 * O(1). The hash tables start small and double (O(n) once, O(1) amortized) when they hold more
 * entries than buckets, at the start of an update, paid from the budget like the
 * rest; a budget too full to grow them leaves longer chains, still bounded. */
#include "graph/graph_table.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "trace/digest.h"

#define GRAPH_TABLE_BUCKETS_MIN 64
#define GRAPH_TABLE_BUCKETS_MAX (1u << 24)

/* What a new block may cost: itself, its minute's header, a histogram step. */
#define GRAPH_TABLE_BLOCK_COST                                                                     \
    (sizeof(struct graph_block) + sizeof(struct graph_minute) + HISTOGRAM_GROW_MAX)

static uint64_t graph_table_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* Eight bytes a step (a byte at a time was a tenth of a trace's cost), each step
 * ending in its length so that ("ab", "c") is not ("a", "bc"). Seeded, since outside
 * input chooses the names. */
static uint64_t graph_table_hash_str(uint64_t h, const char *s, size_t n)
{
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, sizeof(w));
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    uint64_t w = (uint64_t)n << 56;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static uint64_t graph_table_key_hash(uint64_t seed, const char *name, size_t nl, const char *type,
                                     size_t tl)
{
    uint64_t h = graph_table_hash_str(seed, name, nl);
    return graph_table_mix(graph_table_hash_str(h, type, tl));
}

struct graph_key graph_table_key(const struct graph_table *t, const char *name, const char *type,
                                 uint8_t flags)
{
    struct graph_key k = {name, type, 0, strlen(name), strlen(type), flags};
    k.hash = graph_table_key_hash(t->seed, name, k.name_len, type, k.type_len);
    return k;
}

static uint64_t graph_table_edge_hash(uint64_t seed, const struct graph_node *src,
                                      const struct graph_node *dst)
{
    return graph_table_mix(seed ^ (src->ref_id * 0x9e3779b97f4a7c15ull) ^ dst->ref_id);
}

static size_t graph_table_node_cost(const struct graph_key *k)
{
    return sizeof(struct graph_node) + k->name_len + 1 + k->type_len + 1;
}

int graph_table_init(struct graph_table *t, size_t max_bytes)
{
    memset(t, 0, sizeof(*t));
    size_t buckets = GRAPH_TABLE_BUCKETS_MIN;
    t->nodes_idx = calloc(buckets, sizeof(*t->nodes_idx));
    t->edges_idx = calloc(buckets, sizeof(*t->edges_idx));
    if (t->nodes_idx == NULL || t->edges_idx == NULL) {
        free(t->nodes_idx);
        free(t->edges_idx);
        return -ENOMEM;
    }
    t->nmask = buckets - 1;
    t->emask = buckets - 1;
    if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
        t->seed = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ull;
    t->max_bytes = max_bytes;
    t->bytes_used = 2 * buckets * sizeof(void *);
    return 0;
}

static void graph_table_free_minute_blocks(struct graph_minute *m)
{
    struct graph_block *b = m->blocks;
    while (b != NULL) {
        struct graph_block *next = b->mnext;
        histogram_free(&b->c.h);
        free(b);
        b = next;
    }
}

void graph_table_destroy(struct graph_table *t)
{
    struct graph_minute *m = t->oldest;
    while (m != NULL) {
        struct graph_minute *newer = m->newer;
        graph_table_free_minute_blocks(m);
        free(m);
        m = newer;
    }
    struct graph_node *n = t->first;
    while (n != NULL) {
        struct graph_node *next = n->next;
        struct graph_edge *e = n->out;
        while (e != NULL) {
            struct graph_edge *enext = e->out_next;
            free(e);
            e = enext;
        }
        free(n);
        n = next;
    }
    free(t->nodes_idx);
    free(t->edges_idx);
    memset(t, 0, sizeof(*t));
}

static struct graph_node *graph_table_lookup(const struct graph_table *t, const struct graph_key *k)
{
    for (struct graph_node *n = t->nodes_idx[k->hash & t->nmask]; n != NULL; n = n->hnext)
        if (n->hash == k->hash && strcmp(n->name, k->name) == 0 && strcmp(n->type, k->type) == 0)
            return n;
    return NULL;
}

const struct graph_node *graph_table_find_node(const struct graph_table *t, const char *name,
                                               const char *type)
{
    struct graph_key k = graph_table_key(t, name, type, 0);
    return graph_table_lookup(t, &k);
}

const struct graph_edge *graph_table_find_edge(const struct graph_table *t,
                                               const struct graph_node *src,
                                               const struct graph_node *dst)
{
    uint64_t h = graph_table_edge_hash(t->seed, src, dst);
    for (struct graph_edge *e = t->edges_idx[h & t->emask]; e != NULL; e = e->hnext)
        if (e->src == src && e->dst == dst)
            return e;
    return NULL;
}

/* The node of k, created when absent. NULL on ENOMEM. */
static struct graph_node *graph_table_node(struct graph_table *t, const struct graph_key *k)
{
    struct graph_node *n = graph_table_lookup(t, k);
    if (n != NULL) {
        n->flags |= k->flags;
        return n;
    }
    size_t nl = k->name_len, tl = k->type_len;
    n = calloc(1, sizeof(*n) + nl + 1 + tl + 1);
    if (n == NULL)
        return NULL;
    memcpy(n->name, k->name, nl + 1);
    memcpy(n->name + nl + 1, k->type, tl + 1);
    n->type = n->name + nl + 1;
    n->flags = k->flags;
    n->hash = k->hash;
    n->ref_id = t->next_ref++;
    n->hnext = t->nodes_idx[n->hash & t->nmask];
    t->nodes_idx[n->hash & t->nmask] = n;
    n->prev = t->last;
    if (t->last != NULL)
        t->last->next = n;
    else
        t->first = n;
    t->last = n;
    t->nodes++;
    t->bytes_used += sizeof(*n) + nl + 1 + tl + 1;
    return n;
}

/* Frees n when nothing refers to it any more. */
static void graph_table_node_release(struct graph_table *t, struct graph_node *n)
{
    if (n->s.newest != NULL || n->nedges != 0 || n->pins != 0)
        return;
    struct graph_node **pp = &t->nodes_idx[n->hash & t->nmask];
    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        t->first = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        t->last = n->prev;
    t->nodes--;
    t->bytes_used -= sizeof(*n) + strlen(n->name) + 1 + strlen(n->type) + 1;
    free(n);
}

static struct graph_edge *graph_table_edge(struct graph_table *t, struct graph_node *src,
                                           struct graph_node *dst)
{
    struct graph_edge *e = (struct graph_edge *)graph_table_find_edge(t, src, dst);
    if (e != NULL)
        return e;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->src = src;
    e->dst = dst;
    e->hash = graph_table_edge_hash(t->seed, src, dst);
    e->hnext = t->edges_idx[e->hash & t->emask];
    t->edges_idx[e->hash & t->emask] = e;
    e->out_next = src->out;
    if (src->out != NULL)
        src->out->out_prev = e;
    src->out = e;
    e->in_next = dst->in;
    if (dst->in != NULL)
        dst->in->in_prev = e;
    dst->in = e;
    src->nedges++;
    dst->nedges++;
    t->edges++;
    t->bytes_used += sizeof(*e);
    return e;
}

static void graph_table_edge_release(struct graph_table *t, struct graph_edge *e)
{
    if (e->s.newest != NULL)
        return;
    struct graph_edge **pp = &t->edges_idx[e->hash & t->emask];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->out_prev != NULL)
        e->out_prev->out_next = e->out_next;
    else
        e->src->out = e->out_next;
    if (e->out_next != NULL)
        e->out_next->out_prev = e->out_prev;
    if (e->in_prev != NULL)
        e->in_prev->in_next = e->in_next;
    else
        e->dst->in = e->in_next;
    if (e->in_next != NULL)
        e->in_next->in_prev = e->in_prev;
    struct graph_node *src = e->src, *dst = e->dst;
    src->nedges--;
    dst->nedges--;
    t->edges--;
    t->bytes_used -= sizeof(*e);
    free(e);
    graph_table_node_release(t, src);
    if (dst != src)
        graph_table_node_release(t, dst);
}

static void graph_table_owner_release(struct graph_table *t, struct graph_series *s, bool is_edge)
{
    if (is_edge)
        graph_table_edge_release(t,
                                 (struct graph_edge *)((char *)s - offsetof(struct graph_edge, s)));
    else
        graph_table_node_release(t,
                                 (struct graph_node *)((char *)s - offsetof(struct graph_node, s)));
}

static void graph_table_evict(struct graph_table *t, struct graph_minute *m)
{
    struct graph_block *b = m->blocks;
    while (b != NULL) {
        struct graph_block *next = b->mnext;
        struct graph_series *s = b->owner;
        if (b->newer != NULL)
            b->newer->older = b->older;
        else
            s->newest = b->older;
        if (b->older != NULL)
            b->older->newer = b->newer;
        else
            s->oldest = b->newer;
        t->bytes_used -= sizeof(*b) + histogram_bytes(&b->c.h);
        histogram_free(&b->c.h);
        bool is_edge = b->owner_is_edge;
        free(b);
        if (s->newest == NULL)
            graph_table_owner_release(t, s, is_edge);
        b = next;
    }
    if (m->newer != NULL)
        m->newer->older = m->older;
    else
        t->newest = m->older;
    if (m->older != NULL)
        m->older->newer = m->newer;
    else
        t->oldest = m->newer;
    t->bytes_used -= sizeof(*m);
    free(m);
}

int graph_table_reserve(struct graph_table *t, size_t bytes, uint32_t minute)
{
    while (t->bytes_used + bytes > t->max_bytes) {
        if (t->oldest == NULL || t->oldest->minute >= minute)
            return -ENOSPC;
        graph_table_evict(t, t->oldest);
        t->evicted_minutes++;
    }
    return 0;
}

void graph_table_expire(struct graph_table *t, uint32_t oldest_kept)
{
    while (t->oldest != NULL && t->oldest->minute < oldest_kept)
        graph_table_evict(t, t->oldest);
}

/* The header of minute, created when absent. Most lookups are the newest minute. */
static struct graph_minute *graph_table_minute(struct graph_table *t, uint32_t minute)
{
    struct graph_minute *at = t->newest;
    while (at != NULL && at->minute > minute)
        at = at->older;
    if (at != NULL && at->minute == minute)
        return at;
    struct graph_minute *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->minute = minute;
    m->older = at; /* m goes right after at (newer than it) */
    m->newer = at != NULL ? at->newer : t->oldest;
    if (m->older != NULL)
        m->older->newer = m;
    else
        t->oldest = m;
    if (m->newer != NULL)
        m->newer->older = m;
    else
        t->newest = m;
    t->bytes_used += sizeof(*m);
    return m;
}

/* The block of s for minute, created when absent. NULL on ENOMEM. */
static struct graph_block *graph_table_block(struct graph_table *t, struct graph_series *s,
                                             bool is_edge, uint32_t minute)
{
    struct graph_block *at = s->newest;
    while (at != NULL && at->minute > minute)
        at = at->older;
    if (at != NULL && at->minute == minute)
        return at;
    struct graph_block *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    struct graph_minute *m = graph_table_minute(t, minute);
    if (m == NULL) {
        free(b);
        return NULL;
    }
    b->minute = minute;
    b->owner = s;
    b->owner_is_edge = is_edge;
    b->mnext = m->blocks;
    m->blocks = b;
    b->older = at;
    b->newer = at != NULL ? at->newer : s->oldest;
    if (b->older != NULL)
        b->older->newer = b;
    else
        s->oldest = b;
    if (b->newer != NULL)
        b->newer->older = b;
    else
        s->newest = b;
    t->bytes_used += sizeof(*b);
    return b;
}

static int graph_table_count(struct graph_table *t, struct graph_series *s, bool is_edge,
                             const struct graph_sample *smp)
{
    struct graph_block *b = graph_table_block(t, s, is_edge, smp->minute);
    if (b == NULL)
        return -ENOMEM;
    double secs = smp->seconds > 0 && isfinite(smp->seconds) ? smp->seconds : 0;
    size_t before = histogram_bytes(&b->c.h);
    /* X-Ray's histograms list millisecond-rounded durations. */
    if (histogram_add(&b->c.h, nearbyint(secs * 1000.0), 1) != 0)
        return -ENOMEM; /* the empty block goes with its minute */
    t->bytes_used += histogram_bytes(&b->c.h) - before;
    switch (smp->status) {
    case DIGEST_FAULT:
        b->c.fault++;
        break;
    case DIGEST_THROTTLE:
        b->c.throttle++;
        break;
    case DIGEST_ERROR:
        b->c.error++;
        break;
    default:
        b->c.ok++;
    }
    b->c.seconds += secs;
    return 0;
}

/* Doubles the node table, rehashing by the stored hashes. 0 or -ENOMEM. */
static int graph_table_grow_nodes(struct graph_table *t)
{
    size_t buckets = (t->nmask + 1) * 2;
    struct graph_node **idx = calloc(buckets, sizeof(*idx));
    if (idx == NULL)
        return -ENOMEM;
    for (size_t i = 0; i <= t->nmask; i++)
        for (struct graph_node *n = t->nodes_idx[i], *next; n != NULL; n = next) {
            next = n->hnext;
            n->hnext = idx[n->hash & (buckets - 1)];
            idx[n->hash & (buckets - 1)] = n;
        }
    free(t->nodes_idx);
    t->nodes_idx = idx;
    t->bytes_used += (t->nmask + 1) * sizeof(*idx);
    t->nmask = buckets - 1;
    return 0;
}

static int graph_table_grow_edges(struct graph_table *t)
{
    size_t buckets = (t->emask + 1) * 2;
    struct graph_edge **idx = calloc(buckets, sizeof(*idx));
    if (idx == NULL)
        return -ENOMEM;
    for (size_t i = 0; i <= t->emask; i++)
        for (struct graph_edge *e = t->edges_idx[i], *next; e != NULL; e = next) {
            next = e->hnext;
            e->hnext = idx[e->hash & (buckets - 1)];
            idx[e->hash & (buckets - 1)] = e;
        }
    free(t->edges_idx);
    t->edges_idx = idx;
    t->bytes_used += (t->emask + 1) * sizeof(*idx);
    t->emask = buckets - 1;
    return 0;
}

/* Grows the tables that hold more entries than buckets, when the budget allows. Runs
 * before an update takes any pointer into the table (reserving may evict). */
static void graph_table_grow(struct graph_table *t, uint32_t minute)
{
    if (t->nodes > t->nmask && t->nmask + 1 < GRAPH_TABLE_BUCKETS_MAX &&
        graph_table_reserve(t, (t->nmask + 1) * sizeof(void *), minute) == 0)
        graph_table_grow_nodes(t);
    if (t->edges > t->emask && t->emask + 1 < GRAPH_TABLE_BUCKETS_MAX &&
        graph_table_reserve(t, (t->emask + 1) * sizeof(void *), minute) == 0)
        graph_table_grow_edges(t);
}

void graph_table_prefetch(const struct graph_table *t, const struct graph_node *src,
                          const struct graph_node *dst, int stage)
{
    if (stage == 0) {
        __builtin_prefetch(src);
        __builtin_prefetch(dst, 1);
        return;
    }
    struct graph_edge *const *bucket =
        &t->edges_idx[graph_table_edge_hash(t->seed, src, dst) & t->emask];
    if (stage == 1) {
        __builtin_prefetch(dst->s.newest, 1);
        __builtin_prefetch(bucket);
    } else if (*bucket != NULL) {
        __builtin_prefetch(*bucket, 1);
    }
}

struct graph_node *graph_table_pin(struct graph_table *t, const struct graph_key *k,
                                   uint32_t minute)
{
    graph_table_grow(t, minute);
    struct graph_node *n = graph_table_lookup(t, k);
    if (n != NULL) {
        n->flags |= k->flags;
    } else {
        /* Reserving may evict: only here, where there is no node to lose. */
        if (graph_table_reserve(t, graph_table_node_cost(k), minute) != 0)
            return NULL;
        if ((n = graph_table_node(t, k)) == NULL)
            return NULL;
    }
    n->pins++;
    return n;
}

void graph_table_unpin(struct graph_table *t, struct graph_node *n)
{
    n->pins--;
    graph_table_node_release(t, n);
}

int graph_table_count_node_at(struct graph_table *t, struct graph_node *n,
                              const struct graph_sample *s)
{
    graph_table_grow(t, s->minute);
    if (graph_table_reserve(t, GRAPH_TABLE_BLOCK_COST, s->minute) != 0) {
        t->dropped++;
        return -ENOSPC;
    }
    return graph_table_count(t, &n->s, false, s);
}

int graph_table_count_edge_at(struct graph_table *t, struct graph_node *src, struct graph_node *dst,
                              uint8_t conn, const struct graph_sample *s)
{
    graph_table_grow(t, s->minute);
    if (graph_table_reserve(t, sizeof(struct graph_edge) + GRAPH_TABLE_BLOCK_COST, s->minute)) {
        t->dropped++;
        return -ENOSPC;
    }
    struct graph_edge *e = graph_table_edge(t, src, dst);
    if (e == NULL)
        return -ENOMEM; /* the nodes are pinned: nothing to release */
    if (conn > e->conn)
        e->conn = conn;
    int rc = graph_table_count(t, &e->s, true, s);
    if (rc != 0)
        graph_table_edge_release(t, e);
    return rc;
}
