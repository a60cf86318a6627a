/* SPDX-License-Identifier: Apache-2.0 */
/* The store's structures, shared by store.c (which changes them) and store_query.c
 * (which reads them for GetTraceSummaries). Internal to the store.
 *
 * The time index: seqs are cut into blocks of 64 consecutive traces, kept in a ring
 * addressed by seq. A block keeps a lower and an upper bound of its traces' start
 * times, and pmax, an upper bound of every start time up to and including it, which
 * never decreases along the ring. A trace's start only moves earlier (it is the
 * minimum over its documents), so lowering min is the only update a bound ever needs:
 * none is recomputed, and eviction only moves a block's first trace. */
#ifndef XRAYD_STORE_INTERNAL_H
#define XRAYD_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "trace/store.h"
#include "trace/summary.h"

#define STORE_BLOCK_SHIFT 6 /* 64 traces per block of the time index */

struct store_dir;

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
    uint8_t bits; /* what it adds to its trace's summary counts (enum summary_bit) */
    char data[];  /* id, NUL, document, NUL */
};

struct store_trace {
    struct store_trace *older; /* arrival order */
    struct store_trace *newer;
    struct store_trace *hnext; /* trace index chain */
    struct store_doc *first;
    struct store_doc *last;
    uint64_t first_seen_ms;
    uint64_t hash;
    size_t docs;
    struct summary sum;
    char id[STORE_TRACE_ID_MAX + 1];
};

struct store_block {
    const struct store_trace *first; /* its oldest stored trace */
    double min;                      /* <= the start time of each of its traces */
    double max;                      /* >= the start time of each of its traces */
    double pmax;                     /* >= the start time of each trace up to here */
};

struct store {
    struct store_trace **traces_idx;
    struct store_doc **docs_idx;
    size_t mask; /* buckets - 1, for both tables */
    struct store_trace *oldest;
    struct store_trace *newest;
    struct store_block *blocks; /* the time index: a ring */
    size_t bmask;
    uint64_t next_seq;
    struct summary_names names;
    uint64_t seed;     /* random per store: outside input chooses the ids */
    size_t base_bytes; /* the store itself and its indexes */
    struct store_dir *dir;
    struct store_stats stats;
};

static inline struct store_block *store_block(const struct store *st, uint64_t seq)
{
    return &st->blocks[(seq >> STORE_BLOCK_SHIFT) & st->bmask];
}

/* The trace a summary is embedded in. */
static inline const struct store_trace *store_trace_of(const struct summary *s)
{
    return (const struct store_trace *)((const char *)s - offsetof(struct store_trace, sum));
}

#endif
