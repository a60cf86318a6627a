/* SPDX-License-Identifier: Apache-2.0 */
/* PutMetricData request bodies (CloudWatch, the JSON 1.0 protocol: POST /, X-Amz-Target
 * GraniteServiceVersion20100801.PutMetricData, Content-Type application/x-amz-json-1.0,
 * x-amzn-query-mode: true) for the graph's metrics between two snapshots. Pure: the
 * sender (HTTP, SigV4 service "monitoring") is elsewhere. Any thread. */
#ifndef XRAYD_METRICS_PUT_METRIC_DATA_H
#define XRAYD_METRICS_PUT_METRIC_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/cloudwatch.h"
#include "metrics/registry.h"

/* PutMetricData (CloudWatch API reference): at most 1000 MetricDatum per call, 150
 * values per datum (Values with Counts), 30 dimensions, and a 1 MB request (counted
 * here as 1,000,000 bytes, the smaller reading of "MB"). */
#define PMD_METRICS_MAX 1000u
#define PMD_VALUES_MAX  150u
#define PMD_BODY_MAX    1000000u

struct pmd_options {
    const char *ns;                 /* namespace; NULL: CLOUDWATCH_DEFAULT_NAMESPACE */
    uint8_t storage_resolution;     /* 1 or 60; 0: 60 */
    uint32_t metrics_per_call;      /* 0: PMD_METRICS_MAX, which is also the most */
    uint32_t values_per_datum;      /* 0: PMD_VALUES_MAX, which is also the most */
    size_t max_body_bytes;          /* 0: PMD_BODY_MAX, which is also the most */
    struct cloudwatch_stats *stats; /* optional, added to */
};

/* Calls emit with each body {"Namespace":..,"MetricData":[..]} (borrowed for the call)
 * for what happened between prev (NULL: nothing before) and cur: per service and per
 * edge with traffic, its counts as Value with Unit Count, each latency histogram as
 * Values (one representative value per non-empty bucket, cloudwatch_hist_value()) with
 * Counts, split over several data when it has more than values_per_datum buckets. All
 * data carry Timestamp = cur->taken_epoch_ms as epoch seconds. Returns the number of
 * bodies, or -EINVAL (bad options), -ENOMEM, or the first non-zero value emit returned.
 * A datum too big for a body on its own is counted in stats->refused and skipped. */
int put_metric_data_encode(const struct pmd_options *o, const struct registry_snapshot *prev,
                           const struct registry_snapshot *cur,
                           int (*emit)(void *ctx, const char *body, size_t len), void *ctx);

#endif
