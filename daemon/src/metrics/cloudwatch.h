/* SPDX-License-Identifier: Apache-2.0 */
/* The CloudWatch view of the registry, shared by the two CloudWatch encoders (emf.h,
 * put_metric_data.h): which families become which metrics under which dimensions, and
 * what happened between two snapshots (counters and histograms are cumulative in the
 * registry; CloudWatch wants what happened in the interval). Pure; any thread. */
#ifndef XRAYD_METRICS_CLOUDWATCH_H
#define XRAYD_METRICS_CLOUDWATCH_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "metrics/registry.h"

/* CloudWatch limits, from the PutMetricData and embedded metric format references. */
#define CLOUDWATCH_DEFAULT_NAMESPACE "XRayDaemon"
#define CLOUDWATCH_NAMESPACE_MAX     255 /* MetricDatum Namespace: 1..255 characters */
#define CLOUDWATCH_DIMS_MAX          3   /* ours; CloudWatch allows 30 per metric */

/* Dimension values CloudWatch would refuse (it wants 1..1024 characters) replaced: the
 * registry's overflow series has every label "", and a "" service or peer name should
 * not make a whole PutMetricData call fail. */
#define CLOUDWATCH_OVERFLOW_VALUE "(overflow)"
#define CLOUDWATCH_EMPTY_VALUE    "(unknown)"

enum cloudwatch_kind {
    CLOUDWATCH_NODE = 0, /* dimensions Service [, ServiceType] */
    CLOUDWATCH_EDGE,     /* dimensions Client, Server [, ConnectionType] */
};

/* Count metrics: node Requests Errors Throttles Faults; edge Requests Failed. */
#define CLOUDWATCH_COUNTS 4
/* Histogram metrics: node Latency; edge ClientLatency ServerLatency. */
#define CLOUDWATCH_HISTS 2

/* One histogram's observations in the interval, per bucket (not cumulative). */
struct cloudwatch_hist {
    uint8_t nbuckets;     /* finite bounds; delta[nbuckets] is the +Inf bucket */
    const double *bounds; /* seconds, borrowed from the family definition */
    double sum;           /* seconds observed in the interval, never below 0 */
    uint64_t total;       /* sum of delta[] */
    uint64_t delta[METRIC_BUCKETS_MAX + 1];
};

/* One dimension-value set: a service, or an edge, with what happened to it. */
struct cloudwatch_entity {
    uint8_t kind;  /* enum cloudwatch_kind */
    uint8_t ndims; /* 1..CLOUDWATCH_DIMS_MAX */
    const char *dim_names[CLOUDWATCH_DIMS_MAX];
    const char *dim_values[CLOUDWATCH_DIMS_MAX]; /* borrowed from the current snapshot */
    uint8_t has_counts; /* bit i: count metric i's family is in the snapshot */
    uint8_t has_hists;  /* bit i: histogram i had observations in the interval */
    double counts[CLOUDWATCH_COUNTS];
    struct cloudwatch_hist hists[CLOUDWATCH_HISTS];
};

/* What the encoders did not send as it was; optional, added to. */
struct cloudwatch_stats {
    uint64_t resets;  /* series whose counter went backwards: sent their current value */
    uint64_t scaled;  /* histograms thinned to the EMF per-series value cap */
    uint64_t refused; /* entities or events over a size limit on their own: dropped */
};

struct cloudwatch_view {
    size_t nentities;
    struct cloudwatch_entity *entities; /* owned; nodes first, in snapshot order */
};

/* Builds the view of cur against prev (NULL: everything counts from 0). Only entities
 * with something to report (a non-zero count or an observation) are kept. Series are
 * matched by family name and label values; a counter that went down, or a histogram
 * with a bucket that did, was reset and counts from 0. Borrowed strings point into cur,
 * which must outlive the view. 0 or -ENOMEM; the view is then empty. */
int cloudwatch_view_build(struct cloudwatch_view *v, const struct registry_snapshot *prev,
                          const struct registry_snapshot *cur, struct cloudwatch_stats *stats);
void cloudwatch_view_free(struct cloudwatch_view *v);

/* Names and units of an entity's metrics. */
const char *cloudwatch_count_name(unsigned kind, unsigned i);
const char *cloudwatch_hist_name(unsigned kind, unsigned i);
#define CLOUDWATCH_COUNT_UNIT "Count"
#define CLOUDWATCH_HIST_UNIT  "Milliseconds"

/* The value, in milliseconds, that stands for bucket i's observations: the midpoint of
 * the bucket (from 0 for the first), the last finite bound for +Inf (the mean of the
 * interval when there is no finite bound). */
double cloudwatch_hist_value(const struct cloudwatch_hist *h, unsigned i);

/* Writes v as a JSON number ("%.15g"; 0 for NaN and infinities, which JSON has not)
 * into out, returns its length. */
#define CLOUDWATCH_NUMBER_MAX 32
int cloudwatch_number(char out[CLOUDWATCH_NUMBER_MAX], double v);

/* A JSON writer over a struct buf with a sticky error: after the first failure
 * (XRAY_ETOOBIG past the buffer's maximum, -ENOMEM) every call is a no-op and rc keeps
 * it, so a body is written straight through and checked once. */
struct cloudwatch_writer {
    struct buf *b;
    int rc;
};
void cloudwatch_put(struct cloudwatch_writer *w, const char *raw, size_t n);
void cloudwatch_putf(struct cloudwatch_writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cloudwatch_put_string(struct cloudwatch_writer *w, const char *s); /* escaped, quoted */
void cloudwatch_put_number(struct cloudwatch_writer *w, double v);      /* cloudwatch_number */

/* 0, or -EINVAL when ns is not a usable namespace (empty, too long, or "AWS/..."). */
int cloudwatch_check_namespace(const char *ns);

#endif
