/* SPDX-License-Identifier: Apache-2.0 */
/* The labels of the daemon's counters, in the order of their maps, and the upload
 * latency histogram. */
#include "stats.h"

const char *const stats_reject_labels[STATS_REJECT__COUNT] = {
#define X(name, label) label,
    STATS_REJECT_MAP(X)
#undef X
};

const char *const stats_decision_labels[STATS_DECISION__COUNT] = {
#define X(name, label) label,
    STATS_DECISION_MAP(X)
#undef X
};

const char *const stats_sink_labels[STATS_SINK__COUNT] = {
#define X(name, label) label,
    STATS_SINK_MAP(X)
#undef X
};

const char *const stats_queue_labels[STATS_QUEUE__COUNT] = {
#define X(name, label) label,
    STATS_QUEUE_MAP(X)
#undef X
};

const double stats_latency_bounds[STATS_LATENCY_BOUNDS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void stats_latency_observe(struct stats_latency *l, uint64_t us)
{
    unsigned i = 0;
    while (i < STATS_LATENCY_BOUNDS && (double)us > stats_latency_bounds[i] * 1e6)
        i++;
    stats_add(&l->buckets[i], 1);
    stats_add(&l->sum_us, us);
}
