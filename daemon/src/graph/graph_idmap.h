/* SPDX-License-Identifier: Apache-2.0 */
/* The graph's scratch map of one trace (internal to graph/): every id the trace's
 * documents hold -> the document, and the call when the id is a call's. Open
 * addressing; cleared in O(1) between traces by a generation number. Worker thread. */
#ifndef XRAYD_GRAPH_IDMAP_H
#define XRAYD_GRAPH_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "trace/digest.h"

/* What pairing did to a call, so the second pass leaves it alone. */
enum graph_idmap_flag {
    GRAPH_IDMAP_PAIRED = 1u << 0, /* its callee segment made the edge */
    GRAPH_IDMAP_LATE = 1u << 1,   /* it came after its callee's window: no edge at all */
    GRAPH_IDMAP_SAME = 1u << 2,   /* its callee is its own service: no edge */
};

struct graph_idmap_slot {
    uint64_t id;
    const struct digest_doc *doc; /* borrowed, for the trace being added */
    uint32_t gen;                 /* the slot is live when gen == the map's gen */
    int16_t call;                 /* index into doc->calls, or -1 */
    uint8_t flags;                /* enum graph_idmap_flag */
};

struct graph_idmap {
    struct graph_idmap_slot *slots;
    size_t mask;
    size_t used, max_used; /* max_used: half the slots, so probes stay short */
    uint32_t gen;
    uint64_t seed;
    uint64_t overflow; /* ids left out: the map was full */
};

/* A map of nslots (a power of two) slots. 0 or -ENOMEM. */
int graph_idmap_init(struct graph_idmap *m, size_t nslots, uint64_t seed);
void graph_idmap_destroy(struct graph_idmap *m);

/* Empties the map. O(1) but once every 2^32 calls. */
void graph_idmap_clear(struct graph_idmap *m);

/* Maps id (never 0) to (doc, call), replacing what id had: a call's entry must win
 * over the same id listed as a plain subsegment. -ENOSPC (counted overflow) when
 * full. */
int graph_idmap_put(struct graph_idmap *m, uint64_t id, const struct digest_doc *doc, int call);

/* The live slot of id, or NULL. */
struct graph_idmap_slot *graph_idmap_find(const struct graph_idmap *m, uint64_t id);

static inline size_t graph_idmap_bytes(const struct graph_idmap *m)
{
    return (m->mask + 1) * sizeof(struct graph_idmap_slot);
}

#endif
