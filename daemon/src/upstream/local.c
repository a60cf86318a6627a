/* SPDX-License-Identifier: Apache-2.0 */
/* upstream_local_ops: "sending" a batch copies each document into the embedded store,
 * which has its own byte budget, so the pool's memory is released at once. A document
 * the store cannot take (larger than its whole budget) is reported as unprocessed,
 * exactly as X-Ray would report a document it refused. */
#include "upstream/local.h"

#include "error.h"
#include "ingest/pool.h"
#include "trace/store.h"

static const char *local_code(int rc)
{
    return rc == XRAY_ETOOBIG ? "TooLarge" : "StoreError";
}

static int local_send(void *ctx, struct upstream_batch *batch,
                      void (*done)(struct upstream_batch *batch, int status))
{
    struct store *st = ctx;
    for (struct doc *d = batch->docs; d != NULL; d = d->next) {
        int rc = store_put(st, d->trace_id, d->id, (d->flags & DOC_IN_PROGRESS) != 0, d->start_time,
                           d->end_time, d->data, d->len, d->received_ms);
        if (rc != 0)
            upstream_batch_unprocessed(batch, d->id, local_code(rc));
    }
    done(batch, 0);
    return 0;
}

const struct upstream_ops upstream_local_ops = {
    .name = "local",
    .send = local_send,
    .last_error = NULL,
};
