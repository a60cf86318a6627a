/* SPDX-License-Identifier: Apache-2.0 */
/* X-Ray's histogram of durations: a sorted array of {ms, count}, one entry per distinct
 * value, grown by doubling up to HISTOGRAM_SLOTS. It never holds more than
 * GRAPH_HISTOGRAM_ENTRIES entries: an insertion past that merges the two neighbours
 * with the smallest gap (counting the new value among them) into their count-weighted
 * mean, so the shape of the distribution survives and the total count is exact. */
#include "graph/histogram.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTOGRAM_FIRST_CAP 4 /* most minutes of most edges see a few distinct values */

void histogram_init_fixed(struct histogram *h, struct histogram_entry *slots)
{
    h->e = slots;
    h->n = 0;
    h->cap = HISTOGRAM_SLOTS;
    h->_closest = 0;
}

/* The first index whose value is >= ms. Branch-free: on the hot path (a sample equal
 * to an entry, in a histogram of tens) the branches of a binary search mispredict
 * half the time. */
static size_t histogram_lower(const struct histogram *h, float ms)
{
    const struct histogram_entry *base = h->e;
    size_t n = h->n;
    if (n == 0)
        return 0;
    while (n > 1) {
        size_t half = n / 2;
        base = base[half - 1].ms < ms ? base + half : base;
        n -= half;
    }
    return (size_t)(base - h->e) + (base->ms < ms);
}

static int histogram_grow(struct histogram *h)
{
    size_t cap = h->cap ? (size_t)h->cap * 2 : HISTOGRAM_FIRST_CAP;
    if (cap > HISTOGRAM_SLOTS)
        cap = HISTOGRAM_SLOTS;
    struct histogram_entry *e = realloc(h->e, cap * sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    h->e = e;
    h->cap = (uint16_t)cap;
    return 0;
}

static uint32_t histogram_sat_add(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

/* a and b as one entry: their count-weighted mean. */
static struct histogram_entry histogram_mean(struct histogram_entry a, struct histogram_entry b)
{
    double ca = a.count, cb = b.count;
    if (ca + cb > 0)
        a.ms = (float)(((double)a.ms * ca + (double)b.ms * cb) / (ca + cb));
    a.count = histogram_sat_add(a.count, b.count);
    return a;
}

/* The closest pair so far: its gap, and where (enum histogram_at, and an index). */
enum histogram_at {
    HISTOGRAM_NONE,
    HISTOGRAM_BELOW,
    HISTOGRAM_LEFT,
    HISTOGRAM_RIGHT,
    HISTOGRAM_ABOVE
};

struct histogram_pair {
    float gap;
    uint8_t where; /* enum histogram_at */
    size_t at;     /* for BELOW and ABOVE: j of the pair (e[j], e[j + 1]) */
};

/* Pairs (j, j + 1) for j in [lo, hi) that are closer than *best (the first of equals
 * wins: the scan goes in order). */
static void histogram_closest(const struct histogram_entry *e, size_t lo, size_t hi, uint8_t where,
                              struct histogram_pair *best)
{
    float gap = best->gap;
    size_t at = SIZE_MAX;
    for (size_t j = lo; j < hi; j++) {
        float d = e[j + 1].ms - e[j].ms;
        if (d < gap) {
            gap = d;
            at = j;
        }
    }
    if (at != SIZE_MAX)
        *best = (struct histogram_pair){gap, where, at};
}

static void histogram_closer(float d, uint8_t where, struct histogram_pair *best)
{
    if (d < best->gap)
        *best = (struct histogram_pair){d, where, 0};
}

/* The pair to merge when v (not there) goes in at i, from a scan of every pair: the
 * pairs of the histogram with v are, in order, those below i - 1, (e[i - 1], v),
 * (v, e[i]), then those from i on. */
static struct histogram_pair histogram_pick_scan(const struct histogram *h, size_t i,
                                                 struct histogram_entry v)
{
    const struct histogram_entry *e = h->e;
    size_t n = h->n;
    struct histogram_pair best = {INFINITY, HISTOGRAM_NONE, 0};
    histogram_closest(e, 0, i > 0 ? i - 1 : 0, HISTOGRAM_BELOW, &best);
    if (i > 0)
        histogram_closer(v.ms - e[i - 1].ms, HISTOGRAM_LEFT, &best);
    if (i < n)
        histogram_closer(e[i].ms - v.ms, HISTOGRAM_RIGHT, &best);
    histogram_closest(e, i, n - 1, HISTOGRAM_ABOVE, &best);
    if (best.where == HISTOGRAM_NONE) {
        /* No gap compared (durations past float's range, from outside input): the first
         * pair, as a scan starting from it keeps. */
        best = (struct histogram_pair){0,
                                       i == 0   ? HISTOGRAM_RIGHT
                                       : i == 1 ? HISTOGRAM_LEFT
                                                : HISTOGRAM_BELOW,
                                       0};
    }
    return best;
}

/* The same from the closest pair b of the histogram without v, in O(1): every other
 * pair is at least as far apart (those before b farther). When v splits b, one of the
 * two halves is at most b's gap, so closer than all. */
static struct histogram_pair histogram_pick_cached(const struct histogram *h, size_t i,
                                                   struct histogram_entry v)
{
    const struct histogram_entry *e = h->e;
    size_t n = h->n, b = (size_t)h->_closest - 1;
    if (i > 0 && b == i - 1)
        return (struct histogram_pair){
            0, v.ms - e[i - 1].ms <= e[i].ms - v.ms ? HISTOGRAM_LEFT : HISTOGRAM_RIGHT, 0};
    struct histogram_pair best = {INFINITY, HISTOGRAM_NONE, 0};
    float gap = e[b + 1].ms - e[b].ms;
    if (b + 1 < i)
        histogram_closer(gap, HISTOGRAM_BELOW, &best);
    if (i > 0)
        histogram_closer(v.ms - e[i - 1].ms, HISTOGRAM_LEFT, &best);
    if (i < n)
        histogram_closer(e[i].ms - v.ms, HISTOGRAM_RIGHT, &best);
    if (b >= i)
        histogram_closer(gap, HISTOGRAM_ABOVE, &best);
    if (best.where == HISTOGRAM_NONE)
        return histogram_pick_scan(h, i, v);
    best.at = b;
    return best;
}

/* Remembers the closest pair of a full histogram, found by a scan. */
static void histogram_cache_scan(struct histogram *h)
{
    struct histogram_pair best = {INFINITY, HISTOGRAM_NONE, 0};
    histogram_closest(h->e, 0, h->n - 1, HISTOGRAM_BELOW, &best);
    h->_closest = best.where != HISTOGRAM_NONE ? (uint8_t)(best.at + 1) : 0;
}

/* The closest pair after entry k moved towards the value merged into it (no index
 * shifted): pairs k - 1 and k changed, the others did not. b was the closest before
 * (split: v fell between its two, and k is one of them). */
static void histogram_cache_moved(struct histogram *h, size_t k, size_t b, bool split)
{
    if (split) {
        /* The pair of k and b's other end came closer still; the other pair of k drew
         * apart. */
        h->_closest = (uint8_t)(b + 1);
        return;
    }
    if (b + 1 == k || b == k) { /* b drew apart: what is closest now takes a scan */
        histogram_cache_scan(h);
        return;
    }
    const struct histogram_entry *e = h->e;
    struct histogram_pair best = {e[b + 1].ms - e[b].ms, HISTOGRAM_BELOW, b};
    if (k > 0) {
        float d = e[k].ms - e[k - 1].ms;
        if (d < best.gap || (d == best.gap && k - 1 < best.at))
            best = (struct histogram_pair){d, HISTOGRAM_BELOW, k - 1};
    }
    if (k + 1 < h->n) {
        float d = e[k + 1].ms - e[k].ms;
        if (d < best.gap || (d == best.gap && k < best.at))
            best = (struct histogram_pair){d, HISTOGRAM_BELOW, k};
    }
    h->_closest = (uint8_t)(best.at + 1);
}

/* Adds v (not there) at i to a full histogram and merges the closest pair, as inserting
 * it then merging would, without the extra entry. When v is in the pair nothing moves
 * and the closest pair is known at once; otherwise one memmove, and a scan for the
 * next closest pair. */
static void histogram_add_full(struct histogram *h, size_t i, struct histogram_entry v)
{
    struct histogram_entry *e = h->e;
    bool cached = h->_closest != 0;
    size_t b = (size_t)h->_closest - 1, j;
    struct histogram_pair p =
        cached ? histogram_pick_cached(h, i, v) : histogram_pick_scan(h, i, v);
    switch (p.where) {
    case HISTOGRAM_LEFT:
        e[i - 1] = histogram_mean(e[i - 1], v);
        if (cached)
            histogram_cache_moved(h, i - 1, b, b + 1 == i);
        else
            histogram_cache_scan(h);
        return;
    case HISTOGRAM_RIGHT:
        e[i] = histogram_mean(v, e[i]);
        if (cached)
            histogram_cache_moved(h, i, b, b + 1 == i);
        else
            histogram_cache_scan(h);
        return;
    case HISTOGRAM_BELOW: /* what lies between the pair and i moves down */
        j = p.at;
        e[j] = histogram_mean(e[j], e[j + 1]);
        memmove(&e[j + 1], &e[j + 2], (i - j - 2) * sizeof(*e));
        e[i - 1] = v;
        break;
    default: /* what lies between i and the pair moves up */
        j = p.at;
        struct histogram_entry m = histogram_mean(e[j], e[j + 1]);
        memmove(&e[i + 1], &e[i], (j - i) * sizeof(*e));
        e[j + 1] = m;
        e[i] = v;
    }
    histogram_cache_scan(h);
}

int histogram_add(struct histogram *h, double ms, uint32_t count)
{
    float v = (float)(ms > 0 && isfinite(ms) ? ms : 0);
    size_t i = histogram_lower(h, v);
    if (i < h->n && h->e[i].ms == v) {
        h->e[i].count = histogram_sat_add(h->e[i].count, count);
        return 0;
    }
    if (h->n >= GRAPH_HISTOGRAM_ENTRIES) {
        histogram_add_full(h, i, (struct histogram_entry){v, count});
        return 0;
    }
    if (h->n == h->cap && histogram_grow(h) != 0)
        return -ENOMEM;
    memmove(&h->e[i + 1], &h->e[i], (h->n - i) * sizeof(h->e[0]));
    h->e[i].ms = v;
    h->e[i].count = count;
    h->n++;
    h->_closest = 0;
    return 0;
}

int histogram_merge(struct histogram *into, const struct histogram *from)
{
    for (size_t i = 0; i < from->n; i++) {
        int rc = histogram_add(into, from->e[i].ms, from->e[i].count);
        if (rc != 0)
            return rc;
    }
    return 0;
}

uint64_t histogram_total(const struct histogram *h)
{
    uint64_t t = 0;
    for (size_t i = 0; i < h->n; i++)
        t += h->e[i].count;
    return t;
}

void histogram_free(struct histogram *h)
{
    free(h->e);
    h->e = NULL;
    h->n = 0;
    h->cap = 0;
    h->_closest = 0;
}

int histogram_write_seconds(struct buf *out, double s)
{
    char tmp[64];
    if (!isfinite(s) || fabs(s) < 5e-7) /* also keeps "-0" out */
        return buf_append(out, "0", 1);
    int n = snprintf(tmp, sizeof(tmp), "%.6f", s);
    if (n <= 0 || (size_t)n >= sizeof(tmp))
        return buf_append(out, "0", 1);
    while (tmp[n - 1] == '0')
        n--;
    if (tmp[n - 1] == '.')
        n--;
    return buf_append(out, tmp, (size_t)n);
}

int histogram_write(const struct histogram *h, struct buf *out)
{
    int rc = buf_append(out, "[", 1);
    for (size_t i = 0; rc == 0 && i < h->n; i++) {
        rc = buf_append_str(out, i ? ",{\"Value\":" : "{\"Value\":");
        if (rc == 0)
            rc = histogram_write_seconds(out, h->e[i].ms / 1000.0);
        if (rc == 0)
            rc = buf_appendf(out, ",\"Count\":%u}", (unsigned)h->e[i].count);
    }
    return rc != 0 ? rc : buf_append(out, "]", 1);
}
