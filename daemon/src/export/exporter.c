/* SPDX-License-Identifier: Apache-2.0 */
/* The push sinks' clock. A timer on the loop posts a job to the worker, which owns the
 * registry: there the daemon's counters are brought up to date, a snapshot is taken
 * and the sink encodes it; back on the loop the sink ships what it made. At most one
 * job per sink is out, so a slow worker makes ticks skip (counted), never pile up. */
#include "export/exporter.h"

#include <stdlib.h>
#include <errno.h>

#include "log.h"
#include "metrics/registry.h"
#include "pipeline.h"
#include "util.h"
#include "worker.h"

#define MOD "export"

struct exporter {
    uv_timer_t timer;
    struct worker *worker;
    const struct exporter_sink_ops *ops;
    void *sink;
    struct worker_job job;
    bool job_out; /* posted; done() not yet run */
    bool closing;
    bool timer_closed;
    uint64_t exports, skipped;
    void (*close_cb)(void *data);
    void *close_data;
};

/* Worker thread. */
static void exporter_run(struct worker_job *job, void *process_ctx)
{
    struct exporter *e = container_of(job, struct exporter, job);
    int rc;
    struct registry_snapshot *snap =
        pipeline_metrics_snapshot(process_ctx, e->ops->take_stale, &rc);
    if (snap == NULL) {
        if (rc == -ENOMEM)
            XLOG_EVERY(60000, LOG_LEVEL_WARN, MOD, "%s: no memory for a snapshot: interval skipped",
                       e->ops->name);
        return;
    }
    e->ops->encode(e->sink, snap);
    if (!e->ops->keeps_snapshot)
        registry_snapshot_free(snap);
}

static void exporter_maybe_free(struct exporter *e)
{
    if (!e->closing || e->job_out || !e->timer_closed)
        return;
    void (*cb)(void *) = e->close_cb;
    void *data = e->close_data;
    free(e);
    if (cb != NULL)
        cb(data);
}

/* Loop thread, after run(). */
static void exporter_done(struct worker_job *job)
{
    struct exporter *e = container_of(job, struct exporter, job);
    e->job_out = false;
    if (e->closing) {
        exporter_maybe_free(e);
        return;
    }
    e->ops->ship(e->sink);
}

bool exporter_flush(struct exporter *e)
{
    if (e->closing)
        return false;
    if (e->job_out) {
        e->skipped++;
        return true;
    }
    e->job = (struct worker_job){.run = exporter_run, .done = exporter_done};
    if (!worker_post(e->worker, &e->job))
        return false;
    e->job_out = true;
    e->exports++;
    return true;
}

static void exporter_on_tick(uv_timer_t *t)
{
    exporter_flush(container_of(t, struct exporter, timer));
}

struct exporter *exporter_start(uv_loop_t *loop, struct worker *w,
                                const struct exporter_sink_ops *ops, void *sink,
                                uint64_t interval_ms)
{
    struct exporter *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->worker = w;
    e->ops = ops;
    e->sink = sink;
    if (interval_ms == 0)
        interval_ms = 1000;
    if (uv_timer_init(loop, &e->timer) != 0) {
        free(e);
        return NULL;
    }
    uv_timer_start(&e->timer, exporter_on_tick, interval_ms, interval_ms);
    return e;
}

bool exporter_busy(const struct exporter *e)
{
    return e->job_out;
}

uint64_t exporter_exports(const struct exporter *e)
{
    return e->exports;
}

uint64_t exporter_skipped(const struct exporter *e)
{
    return e->skipped;
}

static void exporter_on_timer_closed(uv_handle_t *h)
{
    struct exporter *e = container_of((uv_timer_t *)h, struct exporter, timer);
    e->timer_closed = true;
    exporter_maybe_free(e);
}

void exporter_close(struct exporter *e, void (*cb)(void *data), void *data)
{
    e->closing = true;
    e->close_cb = cb;
    e->close_data = data;
    uv_close((uv_handle_t *)&e->timer, exporter_on_timer_closed);
}
