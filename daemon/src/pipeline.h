/* SPDX-License-Identifier: Apache-2.0 */
/* The worker's stages, in order, for one document: scan (validate and extract), then —
 * as later parts land — assembly, the service graph and metrics, then the sampling
 * decision. The only file that knows all the stages. Worker thread only. */
#ifndef XRAYD_PIPELINE_H
#define XRAYD_PIPELINE_H

#include <stdatomic.h>

#include "ingest/pool.h"
#include "metrics/families.h"
#include "sampler/decision.h"
#include "sampler/rules_holder.h"
#include "stats.h"

/* doc->reject of a valid document that its trace's sampling decision dropped: the loop
 * frees it without uploading; the worker already counted it (stats.sampled_out), and it
 * is not a rejection. */
#define PIPELINE_SAMPLED_OUT (-2)

struct pipeline;

/* NULL on ENOMEM. stats is borrowed. */
struct pipeline *pipeline_create(struct stats *stats);
void pipeline_destroy(struct pipeline *p);

/* Adds the sampling decision stage (--sampling-head, --full-fidelity): one decision per
 * trace from the rules of holder, which the pipeline subscribes to. o may be NULL (the
 * defaults). Loop thread, before the worker starts. 0, -ENOMEM or -ENOSPC. */
int pipeline_enable_sampling(struct pipeline *p, struct rules_holder *holder,
                             const struct decision_options *o);
/* The decision stage (its counters and totals), or NULL when it is off. */
struct decision *pipeline_decision(struct pipeline *p);

struct worker;
struct store;
struct graph;
struct assembler;

struct pipeline_assembly_options {
    uint64_t window_ms;    /* --trace-window */
    size_t assembly_bytes; /* --assembly-memory */
    size_t graph_bytes;    /* --graph-memory */
    uint32_t graph_retention_min;
    bool tail_errors;                /* --tail-errors */
    uint32_t tail_latency_ms;        /* --tail-latency; 0 = off */
    size_t tail_bytes;               /* --tail-memory */
    struct families_options metrics; /* --metrics-buckets, -series-budget, -idle-expiry */
};

/* Adds trace assembly and the service graph, and the tail options (which need the
 * sampling stage: enable it first). Loop thread, before the worker starts. 0 or
 * -ENOMEM. */
int pipeline_enable_assembly(struct pipeline *p, const struct pipeline_assembly_options *o);
/* Kept documents join st (borrowed; it becomes the worker's). Before the worker starts. */
void pipeline_set_store(struct pipeline *p, struct store *st);
/* The worker that runs the pipeline: held documents go back through it. */
void pipeline_set_worker(struct pipeline *p, struct worker *w);
/* The assembler, for its statistics. Worker thread only (or after it joined). */
struct assembler *pipeline_assembler(struct pipeline *p);

/* The worker's parts with a memory budget, as the worker last published them (after
 * every idle callback): the loop reads these, never the live structures. */
enum pipeline_part {
    PIPELINE_ASSEMBLY = 0, /* traces being assembled */
    PIPELINE_TAIL,         /* documents held for a tail decision */
    PIPELINE_GRAPH,        /* the service graph */
    PIPELINE_STORE,        /* the embedded store */
    PIPELINE_METRICS,      /* the metrics registry (bounded by series, not bytes: no limit) */
    PIPELINE_PARTS
};
struct pipeline_meter {
    size_t limit;                 /* bytes; 0 when the part is off */
    atomic_size_t used;           /* bytes in use */
    atomic_uint_fast64_t refused; /* what its policy evicted, forced or dropped */
};
const struct pipeline_meter *pipeline_meter(const struct pipeline *p, enum pipeline_part part);

/* The service graph and the embedded store, for the read API's queries. NULL when
 * off. Worker thread only (a worker_job's run()). */
struct graph *pipeline_graph(struct pipeline *p);
struct store *pipeline_store(struct pipeline *p);
struct registry;
/* The metrics registry (the graph's, the segments' and the daemon's own families), its
 * daemon counters and memory gauges brought up to date first; NULL before
 * pipeline_enable_assembly(). Worker thread only (a worker_job's run()): take a
 * snapshot of it there. now_ms is monotonic. */
struct registry *pipeline_metrics_refresh(struct pipeline *p, uint64_t now_ms);
struct registry_snapshot;
/* pipeline_metrics_refresh(), then a snapshot of the registry at this moment (both
 * clocks), taking the stale series or not (registry_snapshot()). NULL with *rc -ENOENT
 * (no registry) or -ENOMEM. Worker thread only. */
struct registry_snapshot *pipeline_metrics_snapshot(struct pipeline *p, bool take_stale, int *rc);
/* The trace window (ms): how far apart a caller and its callee may arrive. */
uint64_t pipeline_window_ms(const struct pipeline *p);

/* Runs every stage on doc. Returns false when doc is held for a tail decision (it is
 * handed back later through worker_emit()). Otherwise, and when it comes back,
 * doc->reject is -1 (forward it), PIPELINE_SAMPLED_OUT, or the enum stats_reject
 * saying why not; trace_id, id, flags and times are filled in. The rejection is counted
 * by the loop when the document comes back, not here. struct worker's process. */
bool pipeline_process(struct doc *doc, void *pipeline);
/* struct worker's idle: completes idle traces, expires graph minutes, syncs the store. */
void pipeline_idle(void *pipeline, uint64_t now_ms);
/* struct worker's flush: completes every open trace (held documents are decided and
 * handed back) and syncs the store. */
void pipeline_flush(void *pipeline);

#endif
