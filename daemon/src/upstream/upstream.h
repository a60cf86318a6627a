/* SPDX-License-Identifier: Apache-2.0 */
/* Where validated documents go: the pluggable upstream. The core batches documents
 * (batcher.h, with a loop timer for the 1 s rule), keeps at most `concurrency` sends
 * in flight, and when a send completes frees its documents to the pool and counts
 * them (sent, unprocessed, upload_failed). What a send does is the sender's: `aws`
 * (upstream_aws.h, PutTraceSegments) or `local` (the embedded store). Loop thread only. */
#ifndef XRAYD_UPSTREAM_H
#define XRAYD_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "stats.h"
#include "upstream/batcher.h"

#define UPSTREAM_CONCURRENCY     8          /* cfg.yaml Concurrency default, as the reference */
#define UPSTREAM_CONCURRENCY_MAX 64         /* a larger configured value is held to this */
#define UPSTREAM_BODY_KEEP       (2u << 20) /* a slot keeps at most this much body between sends */

struct doc;
struct pool;
struct upstream;

/* One send: the documents and, once the sender is done, what happened to them. */
struct upstream_batch {
    struct doc *docs; /* borrowed by the sender until done: NULL-terminated list
                         through doc->next, `count` documents, read-only */
    unsigned count;
    size_t bytes; /* sum of doc->len */
    /* Filled by the sender before it calls done: */
    unsigned unprocessed;   /* through upstream_batch_unprocessed() only */
    int http_status;        /* the response's status, 0 if none (or not HTTP) */
    int64_t retry_after_ms; /* the response's Retry-After, -1 if none */
    /* The sender's scratch, kept with the batch slot between sends so a request body
     * is allocated once per slot, not once per call. Freed by the core at close. */
    struct buf body;
    /* The completion send() was given, kept here for the sender's own callbacks. */
    void (*done)(struct upstream_batch *batch, int status);
    struct upstream *_up;
    struct upstream_batch *_next;
};

/* A sender. send() owns nothing: it reads batch->docs until it calls done(batch,
 * status) exactly once — later, or from within send() — with 0 when the upstream
 * acknowledged the batch (after reporting each document it returned unprocessed),
 * or a negative XRAY_E* / -errno when the batch failed as a whole. Or send() returns
 * a negative error and never calls done: the batch failed before anything was sent. */
struct upstream_ops {
    const char *name; /* "aws", "local" */
    int (*send)(void *ctx, struct upstream_batch *batch,
                void (*done)(struct upstream_batch *batch, int status));
    /* The sender's last error as text for /healthz, or NULL; the member may be NULL. */
    const char *(*last_error)(void *ctx);
};

struct upstream_options {
    uv_loop_t *loop;                     /* borrowed */
    struct pool *pool;                   /* borrowed: sent documents go back here */
    struct stats *stats;                 /* borrowed: sent, rejected_by[], batches */
    unsigned concurrency;                /* sends in flight at most; 0 = 8 */
    const struct batcher_limits *limits; /* NULL = the X-Ray limits (batcher.h) */
    void *ctx;                           /* the sender's context, passed to ops */
};

/* ops and every option are borrowed and must outlive the upstream. NULL on ENOMEM or
 * a timer error. */
struct upstream *upstream_create(const struct upstream_ops *ops,
                                 const struct upstream_options *opt);

/* Takes ownership of doc (a pool document): it joins a batch and is freed to the pool
 * once sent, rejected or dropped. When all sends are in flight, batches wait; the
 * pool's budget bounds how many. After upstream_close it is dropped at once. */
void upstream_submit(struct upstream *up, struct doc *doc);

/* Sends everything buffered now, ignoring the 1 s rule, and calls cb once nothing is
 * queued or in flight (documents submitted meanwhile are sent too) — possibly before
 * this returns. One drain at a time; bound it with the caller's shutdown deadline. */
void upstream_drain(struct upstream *up, void (*cb)(void *data), void *data);

/* Drops what is still queued (freed to the pool, counted as upload_failed), waits
 * for the sends in flight to complete — close the sender's transport to cut them
 * short (http_client_close cancels its requests) — then frees up and calls cb. A
 * drain still pending is completed first. */
void upstream_close(struct upstream *up, void (*cb)(void *data), void *data);

/* For a sender, before done: document `id` came back unprocessed with `code`.
 * Counted as rejected (unprocessed), not sent; logged (id and code only, rate
 * limited). Reports past the batch's count are ignored. */
void upstream_batch_unprocessed(struct upstream_batch *batch, const char *id, const char *code);

const char *upstream_name(const struct upstream *up);
size_t upstream_queued(const struct upstream *up);       /* documents waiting to be sent */
size_t upstream_queued_bytes(const struct upstream *up); /* their bytes (doc->len) */
unsigned upstream_in_flight(const struct upstream *up);  /* sends in flight */
/* Bytes the batch slots hold for request bodies (at most concurrency x
 * UPSTREAM_BODY_KEEP between sends), for the memory report. */
size_t upstream_scratch_bytes(const struct upstream *up);
/* The sender's last error, else the core's last failed batch; NULL if none. */
const char *upstream_last_error(const struct upstream *up);

#endif
