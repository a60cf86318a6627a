/* SPDX-License-Identifier: Apache-2.0 */
/* X-Ray's response-time histogram: {Value, Count} entries, one per distinct
 * millisecond-rounded duration, sorted by value, at most GRAPH_HISTOGRAM_ENTRIES of
 * them (past that the two closest neighbours merge). Sparse: it holds what it was
 * given, growing as needed. Worker thread; pure. */
#ifndef XRAYD_GRAPH_HISTOGRAM_H
#define XRAYD_GRAPH_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "graph/graph.h"

/* An insertion into a full histogram merges without holding an entry more. */
#define HISTOGRAM_SLOTS GRAPH_HISTOGRAM_ENTRIES

/* The value in milliseconds: a float keeps ms-rounded durations exact up to 4.6 hours
 * and halves the entry (memory is what bounds how many minutes the graph keeps). */
struct histogram_entry {
    float ms;
    uint32_t count;
};

struct histogram {
    struct histogram_entry *e; /* owned, sorted by ms; NULL while empty */
    uint16_t n;
    uint16_t cap;
    uint8_t _closest; /* while full: 1 + j of the closest pair (e[j], e[j + 1]); 0 unknown */
};

/* The most bytes one histogram_add() may allocate (its largest growth step bounded
 * from above), so a caller can reserve them from a budget first. */
#define HISTOGRAM_GROW_MAX (HISTOGRAM_SLOTS * sizeof(struct histogram_entry))

/* A histogram over caller storage of HISTOGRAM_SLOTS entries (borrowed; never
 * reallocated, never freed): the scratch a query sums minutes into. */
void histogram_init_fixed(struct histogram *h, struct histogram_entry *slots);

/* Adds count samples of ms. 0, or -ENOMEM and h unchanged. */
int histogram_add(struct histogram *h, double ms, uint32_t count);

/* Adds every entry of from (borrowed) into into, with the same merging rule.
 * 0 or -ENOMEM (into then holds part of from). */
int histogram_merge(struct histogram *into, const struct histogram *from);

/* The heap bytes h holds. */
static inline size_t histogram_bytes(const struct histogram *h)
{
    return (size_t)h->cap * sizeof(struct histogram_entry);
}

/* The sum of the counts. */
uint64_t histogram_total(const struct histogram *h);

/* Frees what histogram_add() allocated; h is empty afterwards. */
void histogram_free(struct histogram *h);

/* Appends `[{"Value":s,"Count":n},...]`, values in seconds. 0, XRAY_ETOOBIG or
 * -ENOMEM (out then holds part of it). */
int histogram_write(const struct histogram *h, struct buf *out);

/* Appends a number of seconds as JSON with microsecond precision and no trailing
 * zeros ("0.25", "1700000040"): X-Ray's durations are milliseconds. */
int histogram_write_seconds(struct buf *out, double s);

#endif
