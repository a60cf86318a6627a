/* SPDX-License-Identifier: Apache-2.0 */
/* The caller halves waiting for their callee (internal to graph/): calls no segment of
 * their own trace answered, kept for the pairing window in a ring in arrival order,
 * found by call id through a lossy index. Storage only: graph.c decides what pends,
 * pairs and expires. Fixed size, allocated at creation. Worker thread. */
#ifndef XRAYD_GRAPH_PENDING_H
#define XRAYD_GRAPH_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph/graph_table.h"

/* Index slots an id may take, from its home on: 64 bytes, mostly one cache line. */
#define GRAPH_PENDING_PROBES 16

enum graph_pending_flag {
    GRAPH_PENDING_LIVE = 1u << 0, /* still waiting: not paired, not expired */
    GRAPH_PENDING_SQL = 1u << 1,  /* an sql call: paired, its edge is a database's */
};

/* Everything the edge needs once the call's document is gone: the nodes are pinned in
 * the table (graph_table_pin()) for as long as the half is live. */
struct graph_pending_half {
    uint64_t id;             /* the call's: its callee's parent_id */
    uint64_t arrived_ms;     /* its document's arrival: the window counts from it */
    struct graph_node *from; /* the caller's service */
    struct graph_node *to;   /* the inferred node it leads to if nobody answers */
    double seconds;          /* the call's sample: the edge's statistics either way */
    uint32_t minute;
    uint8_t status;
    uint8_t conn;  /* enum graph_conn of the edge to the inferred node */
    uint8_t flags; /* enum graph_pending_flag */
};

struct graph_pending {
    struct graph_pending_half *ring; /* cap slots, oldest at head_i */
    uint32_t *index;                 /* imask + 1 slots: low 32 bits of a sequence number */
    size_t cap, imask;
    size_t head_i, tail_i; /* ring positions of the oldest half and of the next one */
    uint64_t head, tail;   /* their sequence numbers: tail - head halves in the ring */
    size_t live;           /* halves in the ring not yet paired */
    uint64_t seed;
    uint64_t unindexed; /* halves no index slot was free for: they cannot pair */
};

/* The index slot id's probes start at. Call ids come from outside: hashed with a seed
 * before probing. */
static inline size_t graph_pending_home(const struct graph_pending *p, uint64_t id)
{
    uint64_t h = id ^ p->seed;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (size_t)h & p->imask;
}

/* Starts loading id's index line: the index is large and read at random, so a trace
 * asks for its calls' lines early and finds them in cache when its calls wait. */
static inline void graph_pending_prefetch(const struct graph_pending *p, uint64_t id)
{
    __builtin_prefetch(&p->index[graph_pending_home(p, id)], 1);
}

/* A ring and index in at most bytes (at least one half). 0 or -ENOMEM. */
int graph_pending_init(struct graph_pending *p, size_t bytes, uint64_t seed);
void graph_pending_destroy(struct graph_pending *p);

/* What init allocated. */
size_t graph_pending_bytes(const struct graph_pending *p);

static inline bool graph_pending_full(const struct graph_pending *p)
{
    return p->tail - p->head == p->cap;
}

/* The oldest half, live or not, or NULL when the ring is empty. */
static inline struct graph_pending_half *graph_pending_head(struct graph_pending *p)
{
    return p->head == p->tail ? NULL : &p->ring[p->head_i];
}

/* The half d places after the oldest (0: the oldest), live or not, or NULL past the
 * newest. */
static inline struct graph_pending_half *graph_pending_at(struct graph_pending *p, size_t d)
{
    if (d >= p->tail - p->head)
        return NULL;
    size_t at = p->head_i + d;
    return &p->ring[at >= p->cap ? at - p->cap : at];
}

/* Drops the oldest half (its pins are the caller's to drop first). */
void graph_pending_pop(struct graph_pending *p);

/* Appends h (copied, made live) and indexes it by id. The ring must not be full. */
void graph_pending_push(struct graph_pending *p, const struct graph_pending_half *h);

/* The live half of call id, or NULL. *entry is for graph_pending_consume(). */
struct graph_pending_half *graph_pending_find(struct graph_pending *p, uint64_t id,
                                              uint32_t **entry);

/* h (found with entry) paired: it stays in the ring, dead, and leaves the index. */
void graph_pending_consume(struct graph_pending *p, struct graph_pending_half *h, uint32_t *entry);

#endif
