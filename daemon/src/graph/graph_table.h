/* SPDX-License-Identifier: Apache-2.0 */
/* The graph's storage (internal to graph/): nodes and edges in hash tables, their
 * statistics in per-minute blocks, and the byte budget all of it is charged to.
 * graph.c decides what to count; graph_json.c reads it. Worker thread only. */
#ifndef XRAYD_GRAPH_TABLE_H
#define XRAYD_GRAPH_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph/histogram.h"

/* What fed a node; several may hold for one (name, type). */
enum graph_node_flag {
    GRAPH_NODE_ACTIVE = 1u << 0,   /* segments of its own: State "active" */
    GRAPH_NODE_INFERRED = 1u << 1, /* the far end of calls nobody answered */
    GRAPH_NODE_CLIENT = 1u << 2,   /* the callers of a root service */
};

/* Counts of one node or edge in one minute. The histogram is the response time; for
 * nodes it is also the duration (both come from the segment's own duration). */
struct graph_counts {
    uint32_t ok, error, throttle, fault;
    double seconds;
    struct histogram h;
};

struct graph_block;

/* A node's or an edge's blocks, newest minute first, so the current minute is the
 * head. */
struct graph_series {
    struct graph_block *newest;
    struct graph_block *oldest;
};

struct graph_block {
    struct graph_block *newer, *older; /* the owner's series */
    struct graph_block *mnext;         /* the minute's blocks */
    struct graph_series *owner;
    uint32_t minute;
    bool owner_is_edge;
    struct graph_counts c;
};

/* One minute across the graph: eviction and expiry drop a whole minute in
 * O(its blocks). */
struct graph_minute {
    struct graph_minute *older, *newer;
    struct graph_block *blocks;
    uint32_t minute;
};

struct graph_edge;

struct graph_node {
    struct graph_series s;
    struct graph_node *hnext;       /* hash chain */
    struct graph_node *prev, *next; /* creation order: ReferenceId order */
    struct graph_edge *out, *in;    /* edges from and to it */
    uint64_t hash;
    uint64_t ref_id;
    uint32_t nedges;  /* in + out: a node is freed when it has neither blocks nor edges */
    uint32_t pins;    /* holders outside the table (graph_table_pin()): kept while any */
    uint8_t flags;    /* enum graph_node_flag */
    const char *type; /* into name[] */
    char name[];      /* name, NUL, type, NUL */
};

struct graph_edge {
    struct graph_series s;
    struct graph_edge *hnext;
    struct graph_edge *out_prev, *out_next; /* src's out list */
    struct graph_edge *in_prev, *in_next;   /* dst's in list */
    struct graph_node *src, *dst;
    uint64_t hash;
    uint8_t conn; /* enum graph_conn; the highest seen wins */
};

struct graph_table {
    struct graph_node **nodes_idx;
    struct graph_edge **edges_idx;
    size_t nmask, emask; /* buckets - 1; the tables double as the graph grows */
    struct graph_node *first, *last;
    struct graph_minute *oldest, *newest;
    uint64_t seed;
    uint64_t next_ref;
    size_t nodes, edges;
    size_t bytes_used, max_bytes;
    uint64_t dropped, evicted_minutes;
};

/* A node as the graph names it: borrowed strings, hashed once by graph_table_key()
 * for all the updates of a trace that use it; flags are OR-ed into the node. */
struct graph_key {
    const char *name;
    const char *type;
    uint64_t hash;
    size_t name_len, type_len;
    uint8_t flags;
};

/* One request to count: a status (enum digest_status), a duration, a minute. */
struct graph_sample {
    uint8_t status;
    double seconds;
    uint32_t minute;
};

/* 0 or -ENOMEM. */
int graph_table_init(struct graph_table *t, size_t max_bytes);
void graph_table_destroy(struct graph_table *t);

/* The key of (name, type), both borrowed and NUL-terminated. */
struct graph_key graph_table_key(const struct graph_table *t, const char *name, const char *type,
                                 uint8_t flags);

/* Makes room for bytes more under the budget by dropping the oldest minutes (counted
 * evicted_minutes), never minute itself or a newer one. 0, or -ENOSPC (nothing
 * charged). */
int graph_table_reserve(struct graph_table *t, size_t bytes, uint32_t minute);

/* The node of k, created when absent, and pinned: it stays (without statistics, if
 * its minutes go) until graph_table_unpin(), so the caller may hold the pointer
 * across updates. k's flags are OR-ed in. NULL when the budget has no room for a new
 * node (nothing counted) or on ENOMEM. */
struct graph_node *graph_table_pin(struct graph_table *t, const struct graph_key *k,
                                   uint32_t minute);

/* One more pin on a pinned node. */
static inline void graph_table_hold(struct graph_node *n)
{
    n->pins++;
}

/* Drops a pin; the node goes when nothing else holds it. */
void graph_table_unpin(struct graph_table *t, struct graph_node *n);

/* Counts s on a pinned node, or on the edge between two (created as needed). 0, or
 * -ENOSPC (counted dropped) or -ENOMEM. Pointers into the table held by the caller,
 * but for pinned nodes, do not survive these calls (they may evict). */
int graph_table_count_node_at(struct graph_table *t, struct graph_node *n,
                              const struct graph_sample *s);
int graph_table_count_edge_at(struct graph_table *t, struct graph_node *src, struct graph_node *dst,
                              uint8_t conn, const struct graph_sample *s);

/* Starts loading what counting on dst and on the edge src -> dst (both pinned) will
 * read, one step of the pointer chain per stage: 0 the nodes, 1 (once they are in) dst's
 * newest block and the edge's bucket, 2 the edge. For a caller that knows its next
 * updates ahead and whose data has gone cold (the waiting calls expire 10 s later). */
void graph_table_prefetch(const struct graph_table *t, const struct graph_node *src,
                          const struct graph_node *dst, int stage);

/* Drops every minute older than oldest_kept. */
void graph_table_expire(struct graph_table *t, uint32_t oldest_kept);

/* NULL when absent. */
const struct graph_node *graph_table_find_node(const struct graph_table *t, const char *name,
                                               const char *type);
const struct graph_edge *graph_table_find_edge(const struct graph_table *t,
                                               const struct graph_node *src,
                                               const struct graph_node *dst);

#endif
