/* SPDX-License-Identifier: Apache-2.0 */
/* Cuts the stream of documents into upload batches: a batch is ready when it holds
 * BATCHER_MAX_DOCS documents or BATCHER_MAX_BYTES of them, or BATCHER_MAX_WAIT_MS
 * after its first document joined. Pure logic: time is a parameter, no clock, no
 * allocation; documents are linked through doc->next. Embedded by value. */
#ifndef XRAYD_BATCHER_H
#define XRAYD_BATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct doc;

/* PutTraceSegments takes at most 50 documents a call: the reference daemon's batch
 * size (aws-xray-daemon pkg/cfg, Processor.BatchSize = 50), which X-Ray's SDK
 * exporters enforce as the API's limit. */
#define BATCHER_MAX_DOCS 50u
/* A partial batch leaves at most 1 s after its first document (the reference's idle
 * timeout; daemon-compat.md, "Batching and upload"). */
#define BATCHER_MAX_WAIT_MS 1000u
/* Document bytes per call. A segment document is at most 64 KB (X-Ray Developer
 * Guide, "Segment documents"), so 50 of them could make a 3.2 MB body before
 * escaping. We keep a call to 512 KiB of documents — escaped, about 1 MiB at worst for
 * valid JSON — to stay well under what one API request should carry and to bound the
 * memory and the payload hash of one call. A single larger document still goes, alone. */
#define BATCHER_MAX_BYTES (512u * 1024)

#define BATCHER_NO_DEADLINE UINT64_MAX

struct batcher_limits {
    unsigned max_docs;    /* 0 = BATCHER_MAX_DOCS (never above it) */
    size_t max_bytes;     /* 0 = BATCHER_MAX_BYTES */
    unsigned max_wait_ms; /* 0 = BATCHER_MAX_WAIT_MS */
};

/* Fields are private: use the functions. */
struct batcher {
    struct batcher_limits _lim;
    /* Batches already cut (full by count or bytes), in order, one list. */
    struct doc *_ready_head, *_ready_tail;
    /* The batch still filling. */
    struct doc *_open_head, *_open_tail;
    unsigned _open_count;
    size_t _open_bytes;
    uint64_t _open_since_ms;
    /* Totals over both. */
    size_t _count;
    size_t _bytes;
};

/* lim may be NULL (defaults). */
void batcher_init(struct batcher *b, const struct batcher_limits *lim);

/* Takes ownership of doc (doc->next is overwritten) until batcher_take returns it. */
void batcher_add(struct batcher *b, struct doc *doc, uint64_t now_ms);

/* When the next batch is due: 0 when one is ready now, the open batch's deadline, or
 * BATCHER_NO_DEADLINE when empty. */
uint64_t batcher_next_deadline(const struct batcher *b);

/* The oldest batch that is due at now_ms — or, with force, the oldest batch whether
 * due or not. Returns its documents as a NULL-terminated list (ownership passes to
 * the caller), *count and *bytes filled; NULL when nothing is due. */
struct doc *batcher_take(struct batcher *b, uint64_t now_ms, bool force, unsigned *count,
                         size_t *bytes);

/* Documents and their bytes held, in every batch. */
size_t batcher_count(const struct batcher *b);
size_t batcher_bytes(const struct batcher *b);

#endif
