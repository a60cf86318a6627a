/* SPDX-License-Identifier: Apache-2.0 */
/* CloudWatch embedded metric format: the graph's metrics as JSON log events
 * (emf_encode), and those events grouped into PutLogEvents request bodies (struct
 * emf_batch). Pure: no I/O, no clock; the sender (HTTP, SigV4, creating the log group
 * and stream) is elsewhere. Any thread, one call at a time per batch. */
#ifndef XRAYD_METRICS_EMF_H
#define XRAYD_METRICS_EMF_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "metrics/cloudwatch.h"
#include "metrics/registry.h"

/* Embedded metric format specification (CloudWatch User Guide). */
#define EMF_VALUES_MAX     100 /* values in one metric's array */
#define EMF_METRICS_MAX    100 /* MetricDefinitions in one directive */
#define EMF_DIMENSIONS_MAX 30  /* keys in one DimensionSet */
/* PutLogEvents (CloudWatch Logs API reference): a batch is at most 1,048,576 bytes,
 * counted as the messages' UTF-8 bytes plus 26 per event; at most 10,000 events, in
 * chronological order, spanning at most 24 hours; an event at most 256 KB. */
#define EMF_BATCH_BYTES_MAX      1048576u
#define EMF_BATCH_EVENT_OVERHEAD 26u
#define EMF_BATCH_EVENTS_MAX     10000u
#define EMF_BATCH_SPAN_MS        (24 * 3600 * 1000)
#define EMF_EVENT_MAX            (262144u - EMF_BATCH_EVENT_OVERHEAD)
/* Latency values one histogram may put in the log per interval (100 events of 100);
 * beyond it the counts are thinned, see emf.c. */
#define EMF_DEFAULT_SERIES_VALUES 10000u

struct emf_options {
    const char *ns;                 /* namespace; NULL: CLOUDWATCH_DEFAULT_NAMESPACE */
    uint8_t storage_resolution;     /* 1 or 60; 0: 60 */
    uint32_t values_per_event;      /* 0: EMF_VALUES_MAX, which is also the most */
    uint32_t max_values_per_series; /* 0: EMF_DEFAULT_SERIES_VALUES */
    struct cloudwatch_stats *stats; /* optional, added to */
};

/* Calls emit once per log event (json: one EMF object, len bytes, borrowed for the call;
 * timestamp_ms: cur->taken_epoch_ms) for what happened between prev (NULL: nothing
 * before) and cur: one event or more per service and per edge that had traffic, none
 * for an idle one. Returns the number of events, or -EINVAL (bad options), -ENOMEM, or
 * the first non-zero value emit returned (encoding stops there). An entity whose event
 * would pass EMF_EVENT_MAX on its own is counted in stats->refused and skipped. */
int emf_encode(const struct emf_options *o, const struct registry_snapshot *prev,
               const struct registry_snapshot *cur,
               int (*emit)(void *ctx, const char *json, size_t len, int64_t timestamp_ms),
               void *ctx);

/* ---- PutLogEvents bodies ---- */

struct emf_batch_options {
    const char *log_group;  /* borrowed: must outlive the batch */
    const char *log_stream; /* borrowed: must outlive the batch */
    size_t max_bytes;       /* 0: EMF_BATCH_BYTES_MAX, counted as PutLogEvents counts */
    size_t max_events;      /* 0: EMF_BATCH_EVENTS_MAX */
};

/* Called with each full body {"logGroupName":..,"logStreamName":..,"logEvents":[..]}
 * (borrowed for the call) and its number of events. Its non-zero return is passed
 * back; the body is dropped either way. */
typedef int (*emf_batch_send_fn)(void *ctx, const char *body, size_t len, size_t nevents);

struct emf_batch {
    size_t nevents;   /* in the body being filled */
    size_t counted;   /* its size as PutLogEvents counts it */
    uint64_t bodies;  /* handed to send */
    uint64_t refused; /* events too big for a body or an event: dropped */
    struct buf _body;
    struct emf_batch_options _o;
    int64_t _first_ts, _last_ts;
    emf_batch_send_fn _send;
    void *_ctx;
};

void emf_batch_init(struct emf_batch *b, const struct emf_batch_options *o, emf_batch_send_fn send,
                    void *ctx);
/* Adds one event (json borrowed, copied in escaped); first sends the pending body when
 * the event would not fit in it, comes earlier than its last event, or more than 24 h
 * after its first. Has emf_encode's emit signature: pass emf_batch_add with the batch
 * as ctx. 0, -ENOMEM, or what send returned. */
int emf_batch_add(void *batch, const char *json, size_t len, int64_t timestamp_ms);
/* Sends the pending body, if any. 0, or what send returned. */
int emf_batch_flush(struct emf_batch *b);
/* Drops what is pending and frees the body. */
void emf_batch_free(struct emf_batch *b);

#endif
