/* SPDX-License-Identifier: Apache-2.0 */
/* The CloudWatch sink (metrics-sinks.md): what happened between two snapshots, as EMF
 * log events sent with PutLogEvents (the log group and stream created when missing),
 * or as PutMetricData calls. Encoded on the worker (metrics/emf.c,
 * metrics/put_metric_data.c), sent from the loop through a sink_queue with SigV4 for
 * "logs" or "monitoring". */
#ifndef XRAYD_EXPORT_CLOUDWATCH_SINK_H
#define XRAYD_EXPORT_CLOUDWATCH_SINK_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "error.h"
#include "export/exporter.h"
#include "stats.h"

#define CLOUDWATCH_SINK_INTERVAL_MS 60000u /* default push interval */
#define CLOUDWATCH_SINK_LOG_GROUP   "/xrayd/metrics"

enum cloudwatch_sink_output {
    CLOUDWATCH_SINK_EMF = 0, /* PutLogEvents with embedded metric format */
    CLOUDWATCH_SINK_PUT_METRIC_DATA,
};

struct aws_client;

struct cloudwatch_sink_options {
    uv_loop_t *loop;
    unsigned output;            /* enum cloudwatch_sink_output */
    struct aws_client *aws;     /* borrowed: service "logs" for EMF, "monitoring" else */
    const char *ns;             /* copied; NULL or "": CLOUDWATCH_DEFAULT_NAMESPACE */
    const char *log_group;      /* copied; NULL or "": CLOUDWATCH_SINK_LOG_GROUP */
    const char *log_stream;     /* copied; NULL or "": "xrayd-<hostname>" */
    uint8_t storage_resolution; /* 1 or 60; 0: 60 */
    size_t queue_bytes;         /* 0: SINK_QUEUE_DEFAULT_BYTES */
    struct stats *stats;        /* borrowed */
};

struct cloudwatch_sink;

/* NULL on a bad option (err says which: a namespace CloudWatch refuses, an empty log
 * group, ...) or ENOMEM. */
struct cloudwatch_sink *cloudwatch_sink_create(const struct cloudwatch_sink_options *o,
                                               char err[XRAY_ERR_LEN]);

/* Its exporter hooks (sink = the cloudwatch_sink). */
extern const struct exporter_sink_ops cloudwatch_sink_ops;

/* Bodies and bytes waiting or in flight. Loop thread. */
size_t cloudwatch_sink_queued(const struct cloudwatch_sink *s);

/* Closes its queue, frees s, then calls cb (may be NULL). Loop thread. */
void cloudwatch_sink_close(struct cloudwatch_sink *s, void (*cb)(void *data), void *data);

#endif
