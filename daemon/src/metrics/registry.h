/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics registry: counters, gauges and fixed-bucket histograms in families with
 * label sets, owned by the worker and updated without locks. Exporters (the /metrics
 * scrape, remote write, CloudWatch) never read it live: the worker hands them an
 * immutable snapshot. Bounded: a series budget per family with one overflow series,
 * and series idle for a while are dropped (reported once in the next snapshot, so
 * remote write can send their stale markers). Worker thread only, except snapshots,
 * which any thread may read and free. */
#ifndef XRAYD_METRICS_REGISTRY_H
#define XRAYD_METRICS_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRIC_LABELS_MAX      8  /* labels per family, "overflow" not included */
#define METRIC_BUCKETS_MAX     32 /* finite bucket bounds per histogram family */
#define METRIC_NAME_MAX        128
#define METRIC_LABEL_VALUE_MAX 256  /* longer values are cut (on a UTF-8 boundary) */
#define METRIC_DEFAULT_SERIES  2000 /* series budget per family */
#define METRIC_DEFAULT_IDLE_MS (15u * 60 * 1000)
/* The overflow series: overflow="true", its other labels "". */
#define METRIC_OVERFLOW_LABEL "overflow"

enum metric_type {
    METRIC_COUNTER = 0,
    METRIC_GAUGE,
    METRIC_HISTOGRAM,
};

/* A family, as the code declares it (static data: the registry keeps the pointer). */
struct metric_family_def {
    const char *name; /* Prometheus name, base units, counters end in _total */
    const char *help; /* one line */
    uint8_t type;     /* enum metric_type */
    uint8_t nlabels;
    const char *const *labels; /* label names, [a-zA-Z_][a-zA-Z0-9_]*, not "le" */
    uint8_t nbuckets;          /* histograms: finite upper bounds, increasing */
    const double *buckets;
};

struct registry_options {
    uint32_t series_budget; /* per family; 0: METRIC_DEFAULT_SERIES */
    uint64_t idle_ms;       /* 0: METRIC_DEFAULT_IDLE_MS */
};

struct registry_stats {
    size_t families, series;
    size_t bytes_used;
    uint64_t overflowed; /* updates that went to an overflow series */
    uint64_t expired;    /* series dropped for idleness */
};

struct registry;
struct metric_series;

/* NULL on ENOMEM. */
struct registry *registry_create(const struct registry_options *o);
void registry_destroy(struct registry *r);

/* Declares a family; returns its index (>= 0) or -EINVAL (a bad name, label name or
 * bucket list), -EEXIST, -ENOMEM. def must outlive the registry. */
int registry_family(struct registry *r, const struct metric_family_def *def);

/* The series of family with the given label values (def->nlabels of them, each
 * len bytes, not NUL-terminated), created when missing; when the family already has
 * series_budget series, the family's overflow series. now_ms marks it used. NULL only
 * on ENOMEM. The pointer stays valid until registry_expire() or registry_destroy(). */
struct metric_series *registry_series(struct registry *r, int family, const char *const *values,
                                      const size_t *lens, uint64_t now_ms);

/* Marks s used at now_ms, as registry_series() does: for callers that keep series
 * pointers (valid while registry_generation() stays the same). */
void registry_touch(struct metric_series *s, uint64_t now_ms);

void metric_counter_add(struct metric_series *s, double v);
void metric_gauge_set(struct metric_series *s, double v);
void metric_histogram_observe(struct metric_series *s, double v);
/* Adds observations counted elsewhere: deltas[i] in bucket i (not cumulative; the
 * family's nbuckets finite ones, then +Inf), summing to sum. */
void metric_histogram_add(struct metric_series *s, const uint64_t *deltas, double sum);

/* Drops series not used for idle_ms (counted); they appear in the next snapshot's
 * stale list. Call every few seconds. */
void registry_expire(struct registry *r, uint64_t now_ms);

void registry_get_stats(const struct registry *r, struct registry_stats *out);

/* Changes whenever a series pointer may have stopped being the one registry_series()
 * returns (a series went stale or was freed): callers that cache series pointers drop
 * their cache when it moves. */
uint64_t registry_generation(const struct registry *r);

/* ---- snapshots: what exporters read ---- */

struct metric_label {
    const char *name;
    const char *value; /* NUL-terminated, unescaped */
};

struct metric_sample {
    const struct metric_label *labels; /* the family's labels in declaration order, then
                                        * overflow="true" on the overflow series */
    uint8_t nlabels;
    uint64_t updated_ms;     /* last update (monotonic ms, as given to registry_series()) */
    double value;            /* counter, gauge; histograms: the sum */
    uint64_t count;          /* histograms: observations */
    const uint64_t *buckets; /* histograms: cumulative counts per finite bound; +Inf = count */
};

struct metric_family_snapshot {
    const struct metric_family_def *def;
    size_t nseries;
    const struct metric_sample *series; /* in creation order */
    size_t nstale;
    const struct metric_sample *stale; /* expired since the last snapshot: labels only */
};

struct registry_snapshot {
    uint64_t taken_ms;      /* monotonic */
    int64_t taken_epoch_ms; /* wall clock, for exporters' timestamps */
    size_t nfamilies;
    const struct metric_family_snapshot *families; /* in declaration order */
    size_t bytes;                                  /* the snapshot's own allocation */
};

/* An immutable copy of everything (one allocation block, freed with
 * registry_snapshot_free()). Series expired since the last snapshot that took them are
 * listed as stale; with take_stale they are handed over and forgotten (remote write,
 * which sends their stale markers, takes them; a scrape leaves them for it). Until
 * taken, at most series_budget stale series per family are kept, oldest dropped. NULL
 * on ENOMEM. Worker thread. */
struct registry_snapshot *registry_snapshot(struct registry *r, uint64_t now_ms, int64_t epoch_ms,
                                            bool take_stale);
void registry_snapshot_free(struct registry_snapshot *s); /* any thread */

#endif
