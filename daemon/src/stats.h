/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's own counters, shared by every thread: relaxed atomics that only grow.
 * Telemetry records and /metrics read them; nothing resets them (a record is the
 * difference between two reads). */
#ifndef XRAYD_STATS_H
#define XRAYD_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Why a datagram or document was not forwarded. X(name, metric label) */
#define STATS_REJECT_MAP(X)                                                                        \
    X(NO_NEWLINE, "no_newline") /* no header line */                                               \
    X(BAD_HEADER, "bad_header") /* header not {"format":"json","version":1} */                     \
    X(EMPTY_BODY, "empty_body")                                                                    \
    X(TRUNCATED, "truncated")       /* larger than the receive buffer */                           \
    X(OTLP_TRACES, "otlp_traces")   /* T1S / T1U body: recognised, not forwarded */                \
    X(OTLP_METRICS, "otlp_metrics") /* M1 body */                                                  \
    X(TOO_BIG, "too_big")           /* document over 64 KB */                                      \
    X(NOT_JSON, "not_json")         /* not a well-formed JSON object */                            \
    X(BAD_UTF8, "bad_utf8")                                                                        \
    X(TOO_DEEP, "too_deep")                                                                        \
    X(MISSING_FIELD, "missing_field") /* name, id, times, trace_id, parent_id */                   \
    X(QUEUE_FULL, "queue_full")       /* the worker's queue was full */                            \
    X(UNPROCESSED, "unprocessed")     /* returned by X-Ray as UnprocessedTraceSegments */          \
    X(UPLOAD_FAILED, "upload_failed") /* the upload gave up on it */

enum stats_reject {
#define X(name, label) STATS_REJECT_##name,
    STATS_REJECT_MAP(X)
#undef X
        STATS_REJECT__COUNT
};

extern const char *const stats_reject_labels[STATS_REJECT__COUNT];

/* What the sampling decision (--sampling-head, --full-fidelity) made of a new trace.
 * X(name, metric label) */
#define STATS_DECISION_MAP(X)                                                                      \
    X(KEPT_QUOTA, "kept_quota")               /* within its rule's ReservoirSize this second */    \
    X(KEPT_RATE, "kept_rate")                 /* reservoir used up; the FixedRate draw kept it */  \
    X(KEPT_NO_RULES, "kept_no_rules")         /* no rules to decide with yet: kept */              \
    X(KEPT_TAIL_ERROR, "kept_tail_error")     /* --tail-errors: a fault, error or throttle */      \
    X(KEPT_TAIL_LATENCY, "kept_tail_latency") /* --tail-latency: the root was slower */            \
    X(DROPPED_RATE, "dropped_rate")           /* reservoir used up; the FixedRate draw dropped it */

enum stats_decision {
#define X(name, label) STATS_DECISION_##name,
    STATS_DECISION_MAP(X)
#undef X
        STATS_DECISION__COUNT
};

extern const char *const stats_decision_labels[STATS_DECISION__COUNT];

/* BackendConnectionErrors of PutTelemetryRecords. */
enum stats_backend {
    STATS_BACKEND_4XX,
    STATS_BACKEND_5XX,
    STATS_BACKEND_TIMEOUT,
    STATS_BACKEND_REFUSED,
    STATS_BACKEND_UNKNOWN_HOST,
    STATS_BACKEND_OTHER,
    STATS_BACKEND__COUNT
};

/* The metrics push sinks. X(name, metric label) */
#define STATS_SINK_MAP(X)                                                                          \
    X(REMOTE_WRITE, "remote_write")                                                                \
    X(CLOUDWATCH, "cloudwatch")

enum stats_sink {
#define X(name, label) STATS_SINK_##name,
    STATS_SINK_MAP(X)
#undef X
        STATS_SINK__COUNT
};
extern const char *const stats_sink_labels[STATS_SINK__COUNT];

/* Queue depths the loop publishes for /metrics (the worker cannot read them). */
#define STATS_QUEUE_MAP(X)                                                                         \
    X(WORKER, "worker")                     /* documents inside the worker */                      \
    X(UPLOAD, "upload")                     /* documents waiting for an upload slot */             \
    X(UPLOAD_IN_FLIGHT, "upload_in_flight") /* upload calls in flight */                           \
    X(UPLOAD_RETRYING, "upload_retrying")   /* batches waiting to retry */                         \
    X(REMOTE_WRITE, "remote_write")         /* remote-write requests waiting */                    \
    X(CLOUDWATCH, "cloudwatch")             /* CloudWatch requests waiting */

enum stats_queue {
#define X(name, label) STATS_QUEUE_##name,
    STATS_QUEUE_MAP(X)
#undef X
        STATS_QUEUE__COUNT
};
extern const char *const stats_queue_labels[STATS_QUEUE__COUNT];

/* Upload call latency, in fixed buckets (seconds; the last bucket is +Inf). */
#define STATS_LATENCY_BOUNDS 11
extern const double stats_latency_bounds[STATS_LATENCY_BOUNDS];
struct stats_latency {
    atomic_uint_fast64_t buckets[STATS_LATENCY_BOUNDS + 1]; /* not cumulative */
    atomic_uint_fast64_t sum_us;
};

struct stats {
    atomic_uint_fast64_t received;  /* every datagram, rejected ones too */
    atomic_uint_fast64_t sent;      /* acknowledged by the upstream, not unprocessed */
    atomic_uint_fast64_t spillover; /* the memory pool was full */
    atomic_uint_fast64_t rejected;  /* sum of rejected_by[] */
    atomic_uint_fast64_t rejected_by[STATS_REJECT__COUNT];
    atomic_uint_fast64_t backend[STATS_BACKEND__COUNT];
    atomic_uint_fast64_t batches; /* upload calls made */
    /* The sampling decision: traces decided by outcome, and documents that followed a
     * decision. Sampled-out documents were valid: they are not rejections. */
    atomic_uint_fast64_t decisions[STATS_DECISION__COUNT];
    atomic_uint_fast64_t sampled_kept;      /* documents uploaded: their trace was kept */
    atomic_uint_fast64_t sampled_out;       /* documents freed: their trace was dropped */
    atomic_uint_fast64_t decisions_evicted; /* remembered decisions dropped for room */
    atomic_uint_fast64_t decisions_expired; /* remembered decisions forgotten by age */
    /* The metrics push sinks, in requests: accepted by the receiver, attempts retried,
     * bodies given up (queue full, a 4xx, closing). */
    atomic_uint_fast64_t sink_sent[STATS_SINK__COUNT];
    atomic_uint_fast64_t sink_retries[STATS_SINK__COUNT];
    atomic_uint_fast64_t sink_dropped[STATS_SINK__COUNT];
    atomic_uint_fast64_t upload_retries; /* upload attempts that failed and were retried */
    struct stats_latency upload_latency; /* each upload call, sent to answered */
    atomic_uint_fast64_t queue_depth[STATS_QUEUE__COUNT]; /* gauges, set by the loop */
};

static inline void stats_add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}
static inline uint64_t stats_get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}
static inline void stats_set(atomic_uint_fast64_t *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}

/* Counts one call of us microseconds. */
void stats_latency_observe(struct stats_latency *l, uint64_t us);

static inline void stats_reject(struct stats *s, enum stats_reject why)
{
    stats_add(&s->rejected_by[why], 1);
    stats_add(&s->rejected, 1);
}

#endif
