/* SPDX-License-Identifier: Apache-2.0 */
/* GetTraceSummaries over the store: one page of summaries, read from the summaries and
 * the indexes store.c keeps, never from the documents. Reads only; the store's thread.
 *
 * A page walks traces in seq (arrival) order from a cursor: the seq of the next
 * page's first match, so pages stay stable while traces arrive. Two ways in:
 * - by time: traces arrive roughly in start order, so a binary search on the blocks'
 *   pmax (store_internal.h) skips every block before the range, and each block's
 *   bounds skip the blocks after it or out of it, 64 traces at a time; an out-of-order
 *   trace only widens its own block's bounds.
 * - by service: when the filter's top level requires service("x"), only x's posting
 *   list (summary.c) is walked.
 * Each trace met is then checked for its start time and the filter, on its summary. */
#include <errno.h>
#include <stdint.h>

#include "error.h"
#include "trace/filter_internal.h"
#include "trace/store_internal.h"

/* One page of a query being written. */
struct store_query_page {
    const struct store_query *q;
    struct buf *out;
    size_t limit, count, scanned;
    uint64_t next;
};

/* Considers one trace: 1 when it matches but the page is full (it starts the next),
 * else 0 or an error. */
static int store_query_visit(struct store_query_page *pg, const struct store_trace *t)
{
    const struct summary *s = &t->sum;
    pg->scanned++;
    if (!(s->start >= pg->q->start_s && s->start < pg->q->end_s))
        return 0;
    if (pg->q->filter != NULL && !filter_match(pg->q->filter, s))
        return 0;
    if (pg->count == pg->limit) {
        pg->next = s->seq;
        return 1;
    }
    int rc = pg->count++ > 0 ? buf_append(pg->out, ",", 1) : 0;
    return rc != 0 ? rc : summary_json_write(s, t->id, pg->out);
}

/* The first block in [lo, hi] whose pmax reaches start_s, or hi + 1. */
static uint64_t store_query_first_block(const struct store *st, uint64_t lo, uint64_t hi,
                                        double start_s)
{
    uint64_t end = hi + 1;
    while (lo < end) {
        uint64_t mid = lo + (end - lo) / 2;
        if (st->blocks[mid & st->bmask].pmax >= start_s)
            end = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int store_query_by_time(const struct store *st, struct store_query_page *pg, uint64_t from)
{
    const struct store_query *q = pg->q;
    uint64_t hi = st->newest->sum.seq >> STORE_BLOCK_SHIFT;
    for (uint64_t b = store_query_first_block(st, from >> STORE_BLOCK_SHIFT, hi, q->start_s);
         b <= hi; b++) {
        const struct store_block *blk = &st->blocks[b & st->bmask];
        if (blk->max < q->start_s || blk->min >= q->end_s)
            continue;
        const struct store_trace *t = blk->first;
        while (t != NULL && t->sum.seq < from)
            t = t->newer;
        for (; t != NULL && t->sum.seq >> STORE_BLOCK_SHIFT == b; t = t->newer) {
            int rc = store_query_visit(pg, t);
            if (rc != 0)
                return rc > 0 ? 0 : rc;
        }
    }
    return 0;
}

/* The trace numbered seq, or NULL. */
static const struct store_trace *store_query_trace_at(const struct store *st, uint64_t seq)
{
    if (st->oldest == NULL || seq < st->oldest->sum.seq || seq > st->newest->sum.seq)
        return NULL;
    const struct store_trace *t = store_block(st, seq)->first;
    while (t != NULL && t->sum.seq < seq)
        t = t->newer;
    return t;
}

static int store_query_by_service(const struct store *st, struct store_query_page *pg,
                                  uint64_t from, const char *name, size_t n)
{
    const struct summary_name *nm = summary_names_find(&st->names, name, n);
    const struct summary_svc *x = nm != NULL ? nm->head : NULL;
    if (x != NULL && x->owner->seq < from) {
        /* A cursor this query returned is the seq of a trace with the service. */
        const struct store_trace *t = store_query_trace_at(st, from);
        const struct summary_svc *at = t != NULL ? summary_posted(&t->sum, nm) : NULL;
        if (at != NULL)
            x = at;
        while (x != NULL && x->owner->seq < from)
            x = x->pnext;
    }
    for (; x != NULL; x = x->pnext) {
        int rc = store_query_visit(pg, store_trace_of(x->owner));
        if (rc != 0)
            return rc > 0 ? 0 : rc;
    }
    return 0;
}

/* A limit of 0 means no limit: the page ends where out's cap does. */
int store_write_summaries(const struct store *st, const struct store_query *q, struct buf *out,
                          uint64_t *next, size_t *scanned)
{
    struct store_query_page pg = {.q = q, .out = out, .limit = q->limit > 0 ? q->limit : SIZE_MAX};
    int rc = buf_append_str(out, "\"TraceSummaries\":[");
    if (rc == 0 && st->oldest != NULL && q->start_s < q->end_s) {
        uint64_t from = q->cursor > st->oldest->sum.seq ? q->cursor : st->oldest->sum.seq;
        const char *name = NULL;
        size_t n = 0;
        if (q->filter != NULL)
            name = filter_service(q->filter, &n);
        if (from <= st->newest->sum.seq)
            rc = name != NULL ? store_query_by_service(st, &pg, from, name, n)
                              : store_query_by_time(st, &pg, from);
    }
    if (rc == 0)
        rc = buf_append(out, "]", 1);
    *next = rc == 0 ? pg.next : 0;
    if (scanned != NULL)
        *scanned = pg.scanned;
    return rc == XRAY_ETOOBIG ? -ENOSPC : rc;
}
