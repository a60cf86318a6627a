/* SPDX-License-Identifier: Apache-2.0 */
/* The service graph (spec: service-graph.md): nodes per (name, type) — instrumented,
 * inferred and client — and the edges between them, with X-Ray's statistics kept per
 * minute so a time range can be asked for. Fed whole traces by the assembler; adding
 * one costs O(its documents + calls), whatever the number of services, edges or
 * traces. A call whose callee is not in its trace waits for it for the window.
 * Bounded: a byte budget (oldest minutes go first; a quarter of it holds the waiting
 * calls) and a retention in minutes. Worker thread only; the read API's answers are
 * written here, on the worker. */
#ifndef XRAYD_GRAPH_H
#define XRAYD_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "trace/digest.h"

#define GRAPH_MIN_BYTES         (256u * 1024)
#define GRAPH_HISTOGRAM_ENTRIES 100 /* per histogram; neighbours merge past it */

struct graph_options {
    size_t max_bytes;       /* raised to GRAPH_MIN_BYTES */
    uint32_t retention_min; /* minutes of statistics kept; 0: 60 */
    uint64_t window_ms;     /* how far apart a caller and its callee may arrive; 0: 10 s */
};

struct graph_stats {
    size_t nodes, edges;
    size_t bytes_used, max_bytes;
    uint64_t paired;          /* caller call + callee segment: an edge between services */
    uint64_t expired_callers; /* calls with no callee segment: an edge to an inferred node */
    uint64_t expired_early;   /* of those, the ones the full pending ring expired before
                               * their window closed */
    uint64_t expired_callees; /* segments whose caller never came: no edge */
    uint64_t late;            /* halves whose partner's window had closed: no edge */
    uint64_t unresolved;      /* streamed subsegments whose service was not found */
    uint64_t dropped;         /* updates refused: the budget was full of current minutes */
    uint64_t evicted_minutes; /* per-minute statistics dropped for the budget */
    size_t pending;           /* calls waiting for their callee now */
    uint64_t unindexed;       /* calls that waited unfindable (the index was full there):
                               * they expire like calls nobody answered */
};

struct graph;

/* NULL on ENOMEM. */
struct graph *graph_create(const struct graph_options *o);
void graph_destroy(struct graph *g);

/* Adds a complete trace: its documents (a list through next, arrival order, complete
 * ones only; borrowed: nothing of them is kept). late: the trace's earlier documents
 * were added before (the assembler closed it): a callee whose caller is neither among
 * docs nor waiting is then counted late. now_s is wall-clock epoch seconds:
 * statistics are filed under the minute of each (sub)segment's start_time, or of now_s
 * when that is outside the retention. now_ms is the clock of digest_doc.arrived_ms: a
 * call no document of the trace answered waits for its callee (in a later trace)
 * until window_ms after its own document's arrival, unless that is past already; a
 * callee pairs with a waiting call when it arrived within the call's window. */
void graph_add_trace(struct graph *g, const struct digest_doc *docs, bool late, double now_s,
                     uint64_t now_ms);

/* Calls that waited two windows (arrived_ms + 2 * window_ms <= now_ms: the callee's
 * window, then the assembler's window for a callee that came late) without a callee
 * become edges to their inferred nodes. Call often (every ~100 ms): a call waits until
 * then, in arrival order. now_s as for graph_add_trace(). */
void graph_tick(struct graph *g, uint64_t now_ms, double now_s);

/* Every waiting call becomes an edge to its inferred node now: at shutdown, or when no
 * more traces will come (a graph built for one query). */
void graph_flush_pending(struct graph *g, double now_s);

/* Drops minutes older than the retention. Call now and then (every few seconds). */
void graph_expire(struct graph *g, double now_s);

/* One page of GetServiceGraph's "Services" array for [start_s, end_s): the nodes with
 * any statistics in the range (and the client nodes of the roots among them), in
 * ReferenceId order, from the first-th on, at most limit of them, written into out as
 * `"Services":[...]`. Sets *next to the index of the next page, or 0 when this page
 * is the last. 0, or -ENOSPC when out's cap was reached (out then holds a partial
 * array: discard it). */
int graph_write_services(const struct graph *g, double start_s, double end_s, size_t first,
                         size_t limit, struct buf *out, size_t *next);

void graph_get_stats(const struct graph *g, struct graph_stats *out);

#endif
