/* SPDX-License-Identifier: Apache-2.0 */
/* The pending caller halves: a ring in arrival order and a lossy index by call id. It
 * never allocates after init and never grows: a full ring is the caller's to make room
 * in (graph.c expires its oldest half early).
 *
 * How it works: every half waits the same window, so the oldest expires first: the
 * ring expires from its head and appends at its tail, in sequential memory. Halves get
 * consecutive sequence numbers; the index (open addressing, at most a quarter full,
 * a few probes) holds the low 32 bits of one. An entry outside [head, tail) is stale
 * (its half left the ring) and free to overwrite, which an insert sees without reading
 * the ring: one cache line of index per insert. A lookup then checks the ring slot's
 * id and liveness, so an entry 2^32 halves old that looks current is only a wasted
 * slot. When no free slot is within the probes, the half is counted and not indexed:
 * it cannot pair and expires into its inferred edge like one nobody answered. */
#include "graph/graph_pending.h"

#include <errno.h>
#include <stdlib.h>

/* At most a quarter full, and GRAPH_PENDING_PROBES: a few halves in a million go
 * unindexed in a ring kept full (at half full and 8 probes, 2 %: the stale entries a
 * FIFO leaves behind cluster). */
#define GRAPH_PENDING_SLOTS   4          /* index slots per half */
#define GRAPH_PENDING_MAX_CAP (1u << 30) /* sequence numbers compare in 32 bits */

static size_t graph_pending_pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n)
        p *= 2;
    return p;
}

/* GRAPH_PENDING_SLOTS index slots per half or more (a power of two), the rest of bytes
 * for the ring. */
int graph_pending_init(struct graph_pending *p, size_t bytes, uint64_t seed)
{
    /* Sequence numbers start at 1: the zeroed index then names no half. */
    *p = (struct graph_pending){.head = 1, .tail = 1, .seed = seed};
    size_t half = sizeof(struct graph_pending_half);
    size_t cap = bytes / (half + GRAPH_PENDING_SLOTS * sizeof(uint32_t));
    if (cap > GRAPH_PENDING_MAX_CAP)
        cap = GRAPH_PENDING_MAX_CAP;
    size_t slots = graph_pending_pow2_at_least(GRAPH_PENDING_SLOTS * cap);
    cap = bytes > slots * sizeof(uint32_t) ? (bytes - slots * sizeof(uint32_t)) / half : 0;
    if (cap > slots / GRAPH_PENDING_SLOTS)
        cap = slots / GRAPH_PENDING_SLOTS;
    if (cap == 0)
        cap = 1;
    p->ring = calloc(cap, half);
    p->index = calloc(slots, sizeof(uint32_t)); /* zeros: stale while the ring is empty */
    if (p->ring == NULL || p->index == NULL) {
        graph_pending_destroy(p);
        return -ENOMEM;
    }
    p->cap = cap;
    p->imask = slots - 1;
    return 0;
}

void graph_pending_destroy(struct graph_pending *p)
{
    free(p->ring);
    free(p->index);
    p->ring = NULL;
    p->index = NULL;
}

size_t graph_pending_bytes(const struct graph_pending *p)
{
    return p->ring == NULL
               ? 0
               : p->cap * sizeof(struct graph_pending_half) + (p->imask + 1) * sizeof(uint32_t);
}

/* The half's offset from the head when entry names a half in the ring, else >= the
 * number in the ring. */
static uint32_t graph_pending_offset(const struct graph_pending *p, uint32_t entry)
{
    return entry - (uint32_t)p->head;
}

void graph_pending_pop(struct graph_pending *p)
{
    if (p->ring[p->head_i].flags & GRAPH_PENDING_LIVE)
        p->live--;
    p->head++;
    if (++p->head_i == p->cap)
        p->head_i = 0;
}

void graph_pending_push(struct graph_pending *p, const struct graph_pending_half *h)
{
    uint32_t n = (uint32_t)(p->tail - p->head);
    struct graph_pending_half *slot = &p->ring[p->tail_i];
    *slot = *h;
    slot->flags |= GRAPH_PENDING_LIVE;
    p->live++;
    size_t i = graph_pending_home(p, h->id);
    int k = 0;
    while (k < GRAPH_PENDING_PROBES && graph_pending_offset(p, p->index[i]) < n) {
        i = (i + 1) & p->imask;
        k++;
    }
    if (k < GRAPH_PENDING_PROBES)
        p->index[i] = (uint32_t)p->tail;
    else
        p->unindexed++;
    p->tail++;
    if (++p->tail_i == p->cap)
        p->tail_i = 0;
}

struct graph_pending_half *graph_pending_find(struct graph_pending *p, uint64_t id,
                                              uint32_t **entry)
{
    uint32_t n = (uint32_t)(p->tail - p->head);
    size_t i = graph_pending_home(p, id);
    for (int k = 0; k < GRAPH_PENDING_PROBES; k++, i = (i + 1) & p->imask) {
        uint32_t off = graph_pending_offset(p, p->index[i]);
        if (off >= n)
            continue; /* stale: an insert may have probed past it since */
        size_t at = p->head_i + off;
        if (at >= p->cap)
            at -= p->cap;
        struct graph_pending_half *h = &p->ring[at];
        if (h->id == id && (h->flags & GRAPH_PENDING_LIVE)) {
            *entry = &p->index[i];
            return h;
        }
    }
    return NULL;
}

void graph_pending_consume(struct graph_pending *p, struct graph_pending_half *h, uint32_t *entry)
{
    h->flags &= (uint8_t)~GRAPH_PENDING_LIVE;
    p->live--;
    *entry = (uint32_t)p->head - 1; /* behind the head: stale, free for the next insert */
}
