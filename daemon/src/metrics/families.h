/* SPDX-License-Identifier: Apache-2.0 */
/* The metric families xrayd exports (docs/metrics.md): the service graph's, the
 * per-service RED metrics of the segments received, and the daemon's own counters and
 * memory gauges. Owns the registry they live in; knows nothing of the graph or the
 * pipeline: callers hand it names and numbers. Worker thread only. */
#ifndef XRAYD_METRICS_FAMILIES_H
#define XRAYD_METRICS_FAMILIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/registry.h"
#include "stats.h"

/* service-graph.md, "Metrics from the graph": the default buckets, in seconds. */
#define FAMILIES_BUCKETS 16

struct families;

/* One request on an edge of the service graph. */
struct families_edge {
    const char *client; /* "user" for the callers of a root service */
    const char *server;
    const char *connection_type; /* "", "database", "virtual_node", "messaging_system" */
    bool failed;                 /* a fault */
    double client_seconds;       /* the caller's view */
    double server_seconds;       /* the callee's view */
};

/* One memory budget of the daemon, for xrayd_memory_{used,limit}_bytes{budget}. */
struct families_memory {
    const char *budget;
    size_t used;
    size_t limit; /* 0: no limit series */
};

struct families_options {
    struct registry_options registry;
    const double *buckets; /* latency histograms' bounds in seconds, increasing; copied */
    size_t nbuckets;       /* 0: the defaults of service-graph.md; <= METRIC_BUCKETS_MAX */
};

/* A registry with every family declared (o may be NULL: the defaults). NULL on
 * ENOMEM or bad options. */
struct families *families_create(const struct families_options *o);
void families_destroy(struct families *f);

/* The registry, for snapshots and expiry (borrowed: valid until families_destroy()). */
struct registry *families_registry(struct families *f);

/* Counts one request on an edge: request_total, request_failed_total (created at 0 so
 * a failure ratio is defined), both latency histograms. */
void families_edge(struct families *f, const struct families_edge *e, uint64_t now_ms);

/* Counts one segment of service (name, origin type): xray_segments_total{status} with
 * status "ok", "error", "throttle" or "fault", and xray_segment_duration_seconds. */
void families_segment(struct families *f, const char *service, const char *type, const char *status,
                      double seconds, uint64_t now_ms);

/* Brings the daemon's own families up to date: counters from st (borrowed; they only
 * grow: each call adds what they grew by since the last one) and the memory gauges
 * from mem[0..nmem). Call before each snapshot, and at least once per idle expiry
 * period so the series never expire. */
void families_daemon(struct families *f, struct stats *st, const struct families_memory *mem,
                     size_t nmem, uint64_t now_ms);

#endif
