/* SPDX-License-Identifier: Apache-2.0 */
/* The push sinks' clock: every interval the loop asks the worker for a snapshot of its
 * metrics registry; the sink encodes it there (off the loop: a 10,000-series body is
 * milliseconds of work) and ships the result from the loop. One export at a time per
 * sink: a tick that finds the last one still on the worker is skipped and counted.
 * Loop thread, except encode(). */
#ifndef XRAYD_EXPORT_EXPORTER_H
#define XRAYD_EXPORT_EXPORTER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct registry_snapshot;
struct worker;

/* What a push sink does with each snapshot. */
struct exporter_sink_ops {
    const char *name; /* "remote_write", "cloudwatch": for logs */
    /* Whether the sink's snapshots take the registry's stale series (remote write
     * sends their stale markers). */
    bool take_stale;
    /* Whether encode() keeps snap: the sink then owns it and frees it with
     * registry_snapshot_free() (CloudWatch keeps the last one to send differences);
     * otherwise the exporter frees it after encode(). */
    bool keeps_snapshot;
    /* Worker thread: turn snap (borrowed for the call) into what ship() sends; keep it
     * in the sink. Never blocks. */
    void (*encode)(void *sink, const struct registry_snapshot *snap);
    /* Loop thread, after encode(): hand what encode() made to the network. */
    void (*ship)(void *sink);
};

struct exporter;

/* Starts exporting to sink (borrowed; outlives the exporter) every interval_ms, the
 * first one interval_ms from now. w's process_ctx is the pipeline. NULL on ENOMEM. */
struct exporter *exporter_start(uv_loop_t *loop, struct worker *w,
                                const struct exporter_sink_ops *ops, void *sink,
                                uint64_t interval_ms);

/* Runs one export now (shutdown: the last interval's data), unless one is on the
 * worker already. false when the worker refused it (closing). */
bool exporter_flush(struct exporter *e);

/* Whether an export is on the worker or its ship() has not run yet. */
bool exporter_busy(const struct exporter *e);

/* Exports started and ticks skipped because the last one had not come back. */
uint64_t exporter_exports(const struct exporter *e);
uint64_t exporter_skipped(const struct exporter *e);

/* Stops the timer; frees e once its timer is closed and an export on the worker has
 * come back (its ship() is not called then), then calls cb (may be NULL). */
void exporter_close(struct exporter *e, void (*cb)(void *data), void *data);

#endif
