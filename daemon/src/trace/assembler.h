/* SPDX-License-Identifier: Apache-2.0 */
/* Trace assembly: a table keyed by trace id that gathers each trace's documents (as
 * digests) until the trace is complete — idle for the window, or its root segment is
 * done and no traced downstream call is still open — and then hands the whole trace
 * to a callback (the service graph, the tail decision). Inside its own byte budget:
 * when a trace does not fit, the oldest is completed early and counted as evicted.
 * Documents held for a tail decision are kept with their trace under a second budget.
 * Worker thread only. */
#ifndef XRAYD_ASSEMBLER_H
#define XRAYD_ASSEMBLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest/pool.h"
#include "segment/scan.h"
#include "trace/digest.h"

#define ASSEMBLER_MIN_BYTES (64u * 1024)
/* Closed trace ids remembered, so that a document arriving after its trace closed is
 * recognised and counted as late (about 16 bytes each, allocated at creation, outside
 * max_bytes). */
#define ASSEMBLER_DEFAULT_TOMBSTONES (1u << 16)

enum assembler_close {
    ASSEMBLER_IDLE = 0,  /* nothing arrived for the window */
    ASSEMBLER_ROOT_DONE, /* root complete, every traced call answered */
    ASSEMBLER_EVICTED,   /* the oldest when the budget was full */
    ASSEMBLER_FLUSHED,   /* assembler_flush(): shutdown */
};

/* A complete trace, lent to the callback for the duration of the call. */
struct assembled_trace {
    const char *trace_id;    /* NUL-terminated */
    struct digest_doc *docs; /* complete documents, arrival order; never in-progress ones
                              * (they do not count until complete), no duplicates */
    uint32_t ndocs;
    struct doc *held;           /* documents held for a tail decision (assembler_add() with a doc),
                                 * arrival order through doc->next, in-progress ones included; the
                                 * callback takes them over (sets held to NULL) or they are lost */
    size_t held_bytes;          /* pool_doc_bytes() of each */
    uint64_t first_ms, last_ms; /* first and last arrival */
    uint8_t worst;              /* enum digest_status: the worst of every document and call */
    double root_duration;       /* the root segment's end - start in seconds; -1 if none came */
    bool late;                  /* opened by a document whose trace had closed already */
    uint8_t why;                /* enum assembler_close */
};

/* Callbacks (closed and release) run inside assembler_add/_sweep/_flush and must not
 * call back into the assembler. */
typedef void (*assembler_closed_cb)(void *ctx, struct assembled_trace *t);

struct assembler_options {
    uint64_t window_ms; /* idle window; 0: 10 s */
    size_t max_bytes;   /* digests, trace entries and the table; raised to ASSEMBLER_MIN_BYTES */
    size_t hold_bytes;  /* documents held for a tail decision; 0: nothing is held */
    size_t tombstones;  /* 0: ASSEMBLER_DEFAULT_TOMBSTONES */
    assembler_closed_cb closed;
    void *ctx;
};

struct assembler_stats {
    size_t traces;         /* open now */
    size_t bytes_used;     /* against max_bytes */
    size_t held_bytes;     /* against hold_bytes */
    uint64_t completed[4]; /* by enum assembler_close */
    uint64_t duplicates;   /* complete documents whose id the trace had already */
    uint64_t late;         /* documents of a trace that had closed (each one added to a
                            * trace opened late) */
    uint64_t replaced;     /* in-progress documents superseded by the complete one */
    uint64_t forced;       /* traces whose held documents were released early: hold full */
    uint64_t dropped;      /* documents not assembled: ENOMEM, or larger than the budget */
};

enum assembler_result {
    ASSEMBLER_ADDED = 0,
    ASSEMBLER_DUPLICATE, /* counted; not added, doc not held (the caller keeps it) */
    ASSEMBLER_LATE,      /* counted; added to a new trace marked late */
    ASSEMBLER_DROPPED,   /* counted; not added, doc not held */
};

struct assembler *assembler_create(const struct assembler_options *o);
/* Without calling the callback: flush first to complete what is open (documents still
 * held are not freed: they are the pool's). */
void assembler_destroy(struct assembler *a);

/* Adds the scanned document v (trace id decoded in trace_id) that arrived at
 * arrived_ms. When doc is not NULL it is held with the trace for a tail decision (the
 * assembler owns it until it gives it to the callback or the release callback).
 * May complete traces before returning (the callback runs inside): this one (its root
 * is done) or the oldest (eviction). now_ms is the worker's clock (monotonic ms). */
enum assembler_result assembler_add(struct assembler *a, const char *trace_id,
                                    const struct segment_view *v, struct doc *doc,
                                    uint64_t arrived_ms, uint64_t now_ms);

/* When holding doc would pass hold_bytes, the oldest traces holding documents (in the
 * order they started holding) give them up (counted as forced) through this callback:
 * the trace stays open for the graph. The caller decides the trace at once and passes
 * no more documents of it to hold; one it passes anyway is released at once. Required
 * when documents are passed to hold.
 * docs is a list through doc->next, taken over by the callback. */
void assembler_on_release(struct assembler *a,
                          void (*release)(void *ctx, const char *trace_id, struct doc *docs),
                          void *ctx);

/* Completes every trace idle since now_ms - window. Call often (every ~100 ms). */
void assembler_sweep(struct assembler *a, uint64_t now_ms);
/* Completes every open trace (shutdown). */
void assembler_flush(struct assembler *a);

void assembler_get_stats(const struct assembler *a, struct assembler_stats *out);

#endif
