/* SPDX-License-Identifier: Apache-2.0 */
/* X-Ray's histogram of durations: a sorted array of {ms, count}, one entry per distinct
 * value, grown by doubling up to HISTOGRAM_SLOTS. It never holds more than
 * GRAPH_HISTOGRAM_ENTRIES entries after a call: an insertion past that merges the two
 * neighbours with the smallest gap into their count-weighted mean, so the shape of
 * the distribution survives and the total count is exact. */
#include "graph/histogram.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTOGRAM_FIRST_CAP 4 /* most minutes of most edges see a few distinct values */

void histogram_init_fixed(struct histogram *h, struct histogram_entry *slots)
{
    h->e = slots;
    h->n = 0;
    h->cap = HISTOGRAM_SLOTS;
}

/* The first index whose value is >= ms. */
static size_t histogram_lower(const struct histogram *h, float ms)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->e[mid].ms < ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
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

/* Merges the closest pair (the first of equals: deterministic) into one entry. */
static void histogram_merge_closest(struct histogram *h)
{
    size_t best = 0;
    float gap = h->e[1].ms - h->e[0].ms;
    for (size_t i = 1; i + 1 < h->n; i++) {
        float d = h->e[i + 1].ms - h->e[i].ms;
        if (d < gap) {
            gap = d;
            best = i;
        }
    }
    struct histogram_entry *a = &h->e[best], *b = &h->e[best + 1];
    double ca = a->count, cb = b->count;
    if (ca + cb > 0)
        a->ms = (float)(((double)a->ms * ca + (double)b->ms * cb) / (ca + cb));
    a->count = histogram_sat_add(a->count, b->count);
    memmove(b, b + 1, (h->n - best - 2) * sizeof(*b));
    h->n--;
}

int histogram_add(struct histogram *h, double ms, uint32_t count)
{
    float v = (float)(ms > 0 && isfinite(ms) ? ms : 0);
    size_t i = histogram_lower(h, v);
    if (i < h->n && h->e[i].ms == v) {
        h->e[i].count = histogram_sat_add(h->e[i].count, count);
        return 0;
    }
    if (h->n == h->cap && histogram_grow(h) != 0)
        return -ENOMEM;
    memmove(&h->e[i + 1], &h->e[i], (h->n - i) * sizeof(h->e[0]));
    h->e[i].ms = v;
    h->e[i].count = count;
    h->n++;
    if (h->n > GRAPH_HISTOGRAM_ENTRIES)
        histogram_merge_closest(h);
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
