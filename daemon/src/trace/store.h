/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded store (upstream `local`, or --local-api): recent segment documents
 * grouped by trace, inside a byte budget of its own, with a summary per trace and
 * indexes by time, service, status and annotation for the read API (BatchGetTraces,
 * GetTraceSummaries). When a document does not fit, whole traces are evicted oldest
 * first (by the time their first document arrived). Optionally persisted to a
 * directory. Worker thread only: nothing here locks. */
#ifndef XRAYD_STORE_H
#define XRAYD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"
#include "segment/scan.h"

struct filter;

#define STORE_TRACE_ID_MAX 35 /* X-Ray API TraceId: 1 to 35 characters */
#define STORE_ID_MAX       64 /* segment ids are 16 hex digits; leave room, stay bounded */
#define STORE_MIN_BYTES    4096

struct store;

struct store_stats {
    size_t bytes_used; /* documents, their headers and the fixed index */
    size_t max_bytes;
    size_t traces;
    size_t documents;
    uint64_t evicted_traces;
    uint64_t evicted_documents;
    uint64_t replaced;        /* versions superseded by a newer one with the same id */
    uint64_t stale;           /* in-progress versions that arrived after the complete one */
    uint64_t summary_dropped; /* services, users and annotation values over a trace's limits */
    /* With a directory (store_open_dir()): */
    uint64_t loaded;      /* documents loaded from it at open */
    uint64_t corrupt;     /* its files that ended in a torn or damaged record (skipped) */
    uint64_t disk_bytes;  /* in its files */
    uint64_t disk_errors; /* documents not persisted: write errors */
};

/* A read-only view of one stored document; pointers valid until the next store_put()
 * or store_destroy(). */
struct store_doc_view {
    const char *id;  /* NUL-terminated */
    const char *doc; /* the document exactly as received, NUL-terminated */
    size_t len;
    double start; /* epoch seconds, as the caller gave them */
    double end;   /* 0 while in progress */
    bool in_progress;
};

/* A cursor over one trace's documents, in arrival order. */
struct store_iter {
    const void *_doc;
};

/* A store of at most max_bytes (raised to STORE_MIN_BYTES), index included. NULL on
 * ENOMEM. */
struct store *store_create(size_t max_bytes);
void store_destroy(struct store *st);

/* Copies doc (len bytes) under trace_id / id (both NUL-terminated, borrowed). A
 * document replaces the stored one with the same id in the same trace, except that an
 * in-progress version never replaces a complete one (it is dropped, counted as stale,
 * and 0 is returned). Documents with other ids (streamed subsegments) are kept as
 * their own. Evicts whole oldest traces until the document fits.
 * Returns 0, -EINVAL (empty or over-long ids), XRAY_ETOOBIG (one document larger than
 * the whole budget) or -ENOMEM. */
int store_put(struct store *st, const char *trace_id, const char *id, bool in_progress,
              double start, double end, const char *doc, size_t len, uint64_t now_ms);

/* Positions it on the first document of trace_id. 0, or -ENOENT when the trace is not
 * stored. The cursor is valid until the next store_put() or store_destroy(). */
int store_find(const struct store *st, const char *trace_id, struct store_iter *it);
/* Fills out with the cursor's document and advances; false past the last one. */
bool store_next(struct store_iter *it, struct store_doc_view *out);

void store_get_stats(const struct store *st, struct store_stats *out);

/* store_put() for a scanned document: ids, times and in-progress come from v (the
 * scan of doc, trace id decoded in trace_id), and the trace's summary (times, root
 * http, fault/error/throttle, services, users, annotations) is updated from it. */
int store_add(struct store *st, const char *trace_id, const struct segment_view *v, const char *doc,
              size_t len, uint64_t now_ms);

/* A GetTraceSummaries query. Traces whose start time (the earliest start_time of their
 * documents) is in [start_s, end_s) and that match filter (NULL: all), oldest first. */
struct store_query {
    double start_s, end_s;
    const struct filter *filter;
    uint64_t cursor; /* 0: from the beginning; else a value *next returned */
    size_t limit;    /* summaries per page */
};

/* Writes one page of `"TraceSummaries":[...]` for q into out (the X-Ray shape of
 * service-graph.md), and sets *next to the cursor of the next page, or 0 when this is
 * the last. *scanned (may be NULL) receives the number of traces looked at. 0, or
 * -ENOSPC when out's cap was reached (discard out). */
int store_write_summaries(const struct store *st, const struct store_query *q, struct buf *out,
                          uint64_t *next, size_t *scanned);

/* Persists to dir (created if missing): what is stored now and everything added from
 * now on is appended to files there, and what an earlier run left there is loaded
 * first (oldest first, inside the budget). 0, or -errno with err saying what. */
int store_open_dir(struct store *st, const char *dir, char err[XRAY_ERR_LEN]);
/* Writes what is appended but not yet on disk (fsync). The worker calls it every
 * second and at shutdown: a crash loses at most the last second, a clean stop nothing. */
int store_sync(struct store *st);

#endif
