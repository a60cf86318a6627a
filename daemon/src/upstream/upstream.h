/* SPDX-License-Identifier: Apache-2.0 */
/* Where validated documents go: the pluggable upstream. The core batches documents
 * (batcher.h, with a loop timer for the 1 s rule), keeps at most `concurrency` batches
 * in flight or waiting for a retry, retries failed sends by the policy of retry.h
 * (splitting a batch a 400 refused), and in the end frees every document to the pool
 * and counts it once (sent, unprocessed, upload_failed) — or hands what ran out of
 * retries to on_give_up (the spool), whose batches come back through upstream_replay().
 * What a send does is the sender's: `aws` (upstream_aws.h, PutTraceSegments) or
 * `local` (the embedded store). Loop thread only. */
#ifndef XRAYD_UPSTREAM_H
#define XRAYD_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "stats.h"
#include "upstream/batcher.h"
#include "upstream/retry.h"

#define UPSTREAM_CONCURRENCY     8          /* cfg.yaml Concurrency default, as the reference */
#define UPSTREAM_CONCURRENCY_MAX 64         /* a larger configured value is held to this */
#define UPSTREAM_BODY_KEEP       (2u << 20) /* a slot keeps at most this much body between sends */
#define UPSTREAM_REPLAY_MAX      1          /* spooled batches in flight at once */

struct doc;
struct pool;
struct upstream;

/* Documents of a split batch still to be sent (the core's). */
struct upstream_piece {
    struct doc *docs;
    unsigned count;
    size_t bytes;
    unsigned splits;
};

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
    /* The core's, not the sender's. A slot holds one batch from its first attempt to
     * its end, waits included; the pieces a 400 split off are sent one after another. */
    struct upstream_piece _rest[RETRY_SPLIT_MAX]; /* still to send, last in first out */
    unsigned _nrest;
    unsigned _splits;   /* how often the documents in docs were split */
    unsigned _attempts; /* attempts of the documents in docs */
    uint64_t _first_ms; /* loop time of the batch's first attempt */
    uint64_t _due_ms;   /* waiting for a retry until then, else UINT64_MAX */
    uint64_t _sent_ns;  /* uv_hrtime() when the attempt was handed to the sender */
    /* A replayed batch (upstream_replay): its completion and worst outcome so far. */
    void (*_replay_done)(void *ctx, int status);
    void *_replay_ctx;
    int _replay_status;
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
    unsigned concurrency;                /* batches in flight or waiting for a retry at
                                            most; 0 = 8 */
    const struct batcher_limits *limits; /* NULL = the X-Ray limits (batcher.h) */
    void *ctx;                           /* the sender's context, passed to ops */
    struct retry_policy retry;           /* zero fields = the defaults of retry.h */
    struct retry_random random;          /* jitter; .next NULL = the core's generator */
    /* Where documents go that the core gives up on: their retries ran out, or they
     * were still held when upstream_close ran (status XRAY_ECLOSED or -ECANCELED).
     * Takes ownership of docs (count of them, NULL-terminated through doc->next): it
     * must pool_free each, on the loop thread, and count those it finally drops.
     * Runs on the loop thread, until close's callback. NULL: they are dropped and
     * counted as upload_failed. Documents a 4xx refused never come here: they would
     * be refused again. The spool plugs in here. */
    void (*on_give_up)(void *ctx, struct doc *docs, unsigned count, int status);
    void *give_up_ctx;
    /* Called each time the upstream acknowledged a batch of fresh documents (not a
     * replayed one): it answers again, so the spool may replay. Runs inside the core:
     * it must not call upstream_* (schedule the work instead). May be NULL. */
    void (*on_ack)(void *ctx);
    void *ack_ctx;
};

/* ops and every option are borrowed and must outlive the upstream. NULL on ENOMEM or
 * a timer error. */
struct upstream *upstream_create(const struct upstream_ops *ops,
                                 const struct upstream_options *opt);

/* Takes ownership of doc (a pool document): it joins a batch and is freed to the pool
 * once sent, rejected or dropped. When every slot is in flight or waiting for a retry,
 * batches wait in the batcher; the pool's budget bounds how many, and past it new
 * datagrams are spillover. After upstream_close it is given up at once. */
void upstream_submit(struct upstream *up, struct doc *doc);

/* Sends a whole batch read back from the spool, outside the batcher: docs is a
 * NULL-terminated list (through doc->next) of 1 to BATCHER_MAX_DOCS pool documents. It
 * takes a batch slot like any batch (so `concurrency` bounds it too), is retried and
 * split by the same policy, and at most UPSTREAM_REPLAY_MAX replays are in flight. 0:
 * the core owns docs, frees each to the pool and counts what was acknowledged (sent),
 * returned unprocessed or refused for good (rejected), then calls done(ctx, status)
 * once — possibly before this returns; done must not call upstream_*. status is 0
 * when every document was acknowledged or refused for good, else the error of a part
 * whose retries ran out or that close cut short: those documents were freed without
 * being counted or given to on_give_up (the caller still has them on disk). Else the
 * caller keeps docs: XRAY_EFULL when upstream_replay_ready() is false, XRAY_ECLOSED
 * while draining or closing, -EINVAL for an empty or oversized list. */
int upstream_replay(struct upstream *up, struct doc *docs, void (*done)(void *ctx, int status),
                    void *ctx);

/* Whether a replay would be taken now: not draining or closing, fewer than
 * UPSTREAM_REPLAY_MAX replays in flight, and a free slot that fresh documents do not
 * need (another slot is free too, or nothing waits in the batcher). */
bool upstream_replay_ready(const struct upstream *up);

/* Sends everything buffered now, ignoring the 1 s rule, and calls cb once nothing is
 * queued, in flight or waiting for a retry (documents submitted meanwhile are sent
 * too; retries keep their backoff) — possibly before this returns. One drain at a
 * time; bound it with the caller's shutdown deadline. */
void upstream_drain(struct upstream *up, void (*cb)(void *data), void *data);

/* Gives up what is still queued or waiting for a retry (on_give_up, else freed and
 * counted as upload_failed), waits for the sends in flight to complete — close the
 * sender's transport to cut them short (http_client_close cancels its requests) —
 * and gives up what they leave, then frees up and calls cb. A drain still pending is
 * completed first. */
void upstream_close(struct upstream *up, void (*cb)(void *data), void *data);

/* For a sender, before done: document `id` came back unprocessed with `code`.
 * Counted as rejected (unprocessed), not sent; logged (id and code only, rate
 * limited). Reports past the batch's count are ignored. */
void upstream_batch_unprocessed(struct upstream_batch *batch, const char *id, const char *code);

const char *upstream_name(const struct upstream *up);
/* Documents waiting to be sent: batched, waiting for a retry, or split off. */
size_t upstream_queued(const struct upstream *up);
size_t upstream_queued_bytes(const struct upstream *up); /* their bytes (doc->len) */
unsigned upstream_in_flight(const struct upstream *up);  /* sends in flight */
unsigned upstream_retrying(const struct upstream *up);   /* batches waiting for a retry */
/* Bytes the batch slots hold for request bodies (at most concurrency x
 * UPSTREAM_BODY_KEEP between sends), for the memory report. */
size_t upstream_scratch_bytes(const struct upstream *up);
/* The sender's last error, else the core's last failed batch; NULL if none. */
const char *upstream_last_error(const struct upstream *up);

#endif
