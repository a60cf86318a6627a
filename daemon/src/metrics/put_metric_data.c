/* SPDX-License-Identifier: Apache-2.0 */
/* PutMetricData bodies from the CloudWatch view (cloudwatch.h). Each datum is written
 * on its own first, then moved into the body when it fits, so a body never passes the
 * metric-count or byte limit and is closed where the next datum would not fit.
 *
 * The JSON 1.0 protocol serializes the query protocol's shapes by member name
 * (Namespace, MetricData; MetricName, Dimensions [{Name, Value}], Timestamp, Value,
 * Values, Counts, Unit, StorageResolution), and a timestamp as a number of epoch
 * seconds, fractions allowed: 1700000000.123. Histograms go as Values + Counts, which
 * PutMetricData aggregates exactly as the observations would be (bar the quantization
 * to buckets: see emf.c for the representative values). */
#include "metrics/put_metric_data.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "error.h"

struct pmd_run {
    const char *ns;
    unsigned resolution;
    uint32_t per_call;
    uint32_t per_datum;
    size_t max_body;
    struct cloudwatch_stats *stats;
    char ts[32]; /* the shared Timestamp, written once */
    struct buf body;
    struct buf datum;
    size_t ndata; /* in body */
    size_t bodies;
    int (*emit)(void *ctx, const char *body, size_t len);
    void *ctx;
};

static int pmd_flush(struct pmd_run *r)
{
    if (r->ndata == 0)
        return 0;
    int rc = buf_append(&r->body, "]}", 2); /* pmd_push kept the room */
    if (rc == 0)
        rc = r->emit(r->ctx, r->body.data, r->body.len);
    buf_reset(&r->body);
    r->ndata = 0;
    r->bodies++;
    return rc;
}

/* Moves the datum just written into the body, sending the body first when full. */
static int pmd_push(struct pmd_run *r)
{
    int rc = 0;
    size_t tail = 2; /* "]}" */
    if (r->ndata > 0 &&
        (r->ndata == r->per_call || r->body.len + 1 + r->datum.len + tail > r->max_body))
        rc = pmd_flush(r);
    if (rc != 0)
        return rc;
    if (r->ndata == 0) {
        struct cloudwatch_writer w = {.b = &r->body, .rc = 0};
        cloudwatch_put(&w, "{\"Namespace\":", 13);
        cloudwatch_put_string(&w, r->ns);
        cloudwatch_put(&w, ",\"MetricData\":[", 15);
        if (w.rc != 0 && w.rc != XRAY_ETOOBIG)
            return w.rc;
        if (w.rc != 0 || r->body.len + r->datum.len + tail > r->max_body) {
            buf_reset(&r->body); /* too big alone: a body would never take it */
            if (r->stats != NULL)
                r->stats->refused++;
            return 0;
        }
    } else {
        rc = buf_append(&r->body, ",", 1);
    }
    if (rc == 0)
        rc = buf_append(&r->body, r->datum.data, r->datum.len);
    if (rc == 0)
        r->ndata++;
    return rc;
}

/* Starts a datum in r->datum: {"MetricName":..,"Dimensions":[..],"Timestamp":.. */
static void pmd_head(struct cloudwatch_writer *w, const struct pmd_run *r,
                     const struct cloudwatch_entity *e, const char *name)
{
    buf_reset(w->b);
    w->rc = 0;
    cloudwatch_putf(w, "{\"MetricName\":\"%s\",\"Dimensions\":[", name);
    for (unsigned d = 0; d < e->ndims; d++) {
        cloudwatch_putf(w, "%s{\"Name\":\"%s\",\"Value\":", d > 0 ? "," : "", e->dim_names[d]);
        cloudwatch_put_string(w, e->dim_values[d]);
        cloudwatch_put(w, "}", 1);
    }
    cloudwatch_putf(w, "],\"Timestamp\":%s", r->ts);
}

/* Pushes the datum in w unless writing it failed: too big is counted and skipped. */
static int pmd_end(struct cloudwatch_writer *w, struct pmd_run *r, const char *unit)
{
    cloudwatch_putf(w, ",\"Unit\":\"%s\",\"StorageResolution\":%u}", unit, r->resolution);
    if (w->rc == XRAY_ETOOBIG) {
        if (r->stats != NULL)
            r->stats->refused++;
        return 0;
    }
    return w->rc != 0 ? w->rc : pmd_push(r);
}

/* One or more data for histogram h: at most per_datum non-empty buckets each. */
static int pmd_hist(struct pmd_run *r, const struct cloudwatch_entity *e, unsigned slot)
{
    const struct cloudwatch_hist *h = &e->hists[slot];
    struct cloudwatch_writer w = {.b = &r->datum};
    unsigned i = 0;
    int rc = 0;
    while (rc == 0) {
        while (i <= h->nbuckets && h->delta[i] == 0)
            i++;
        if (i > h->nbuckets)
            break;
        unsigned from = i, n = 0;
        pmd_head(&w, r, e, cloudwatch_hist_name(e->kind, slot));
        cloudwatch_put(&w, ",\"Values\":[", 11);
        for (; i <= h->nbuckets && n < r->per_datum; i++) {
            if (h->delta[i] == 0)
                continue;
            if (n++ > 0)
                cloudwatch_put(&w, ",", 1);
            cloudwatch_put_number(&w, cloudwatch_hist_value(h, i));
        }
        cloudwatch_put(&w, "],\"Counts\":[", 12);
        for (unsigned k = from, m = 0; k < i; k++)
            if (h->delta[k] != 0)
                cloudwatch_putf(&w, "%s%" PRIu64, m++ > 0 ? "," : "", h->delta[k]);
        cloudwatch_put(&w, "]", 1);
        rc = pmd_end(&w, r, CLOUDWATCH_HIST_UNIT);
    }
    return rc;
}

static int pmd_entity(struct pmd_run *r, const struct cloudwatch_entity *e)
{
    struct cloudwatch_writer w = {.b = &r->datum};
    int rc = 0;
    for (unsigned k = 0; k < CLOUDWATCH_COUNTS && rc == 0; k++) {
        if (!(e->has_counts >> k & 1))
            continue;
        pmd_head(&w, r, e, cloudwatch_count_name(e->kind, k));
        cloudwatch_put(&w, ",\"Value\":", 9);
        cloudwatch_put_number(&w, e->counts[k]);
        rc = pmd_end(&w, r, CLOUDWATCH_COUNT_UNIT);
    }
    for (unsigned j = 0; j < CLOUDWATCH_HISTS && rc == 0; j++)
        if (e->has_hists >> j & 1)
            rc = pmd_hist(r, e, j);
    return rc;
}

static int pmd_run_init(struct pmd_run *r, const struct pmd_options *o,
                        const struct registry_snapshot *cur)
{
    memset(r, 0, sizeof(*r));
    r->ns = o->ns != NULL ? o->ns : CLOUDWATCH_DEFAULT_NAMESPACE;
    r->resolution = o->storage_resolution ? o->storage_resolution : 60;
    r->per_call = o->metrics_per_call ? o->metrics_per_call : PMD_METRICS_MAX;
    r->per_datum = o->values_per_datum ? o->values_per_datum : PMD_VALUES_MAX;
    r->max_body = o->max_body_bytes ? o->max_body_bytes : PMD_BODY_MAX;
    r->stats = o->stats;
    int64_t ms = cur->taken_epoch_ms > 0 ? cur->taken_epoch_ms : 0;
    snprintf(r->ts, sizeof(r->ts), "%" PRId64 ".%03d", ms / 1000, (int)(ms % 1000));
    buf_init(&r->body, r->max_body);
    buf_init(&r->datum, r->max_body);
    if (cloudwatch_check_namespace(r->ns) != 0 || (r->resolution != 1 && r->resolution != 60) ||
        r->per_call > PMD_METRICS_MAX || r->per_datum > PMD_VALUES_MAX ||
        r->max_body > PMD_BODY_MAX)
        return -EINVAL;
    return 0;
}

int put_metric_data_encode(const struct pmd_options *o, const struct registry_snapshot *prev,
                           const struct registry_snapshot *cur,
                           int (*emit)(void *ctx, const char *body, size_t len), void *ctx)
{
    struct pmd_run r;
    int rc = pmd_run_init(&r, o, cur);
    if (rc != 0)
        return rc;
    r.emit = emit;
    r.ctx = ctx;
    struct cloudwatch_view view;
    rc = cloudwatch_view_build(&view, prev, cur, o->stats);
    for (size_t i = 0; i < view.nentities && rc == 0; i++)
        rc = pmd_entity(&r, &view.entities[i]);
    if (rc == 0)
        rc = pmd_flush(&r);
    cloudwatch_view_free(&view);
    buf_free(&r.body);
    buf_free(&r.datum);
    if (rc != 0)
        return rc;
    return r.bodies > INT32_MAX ? INT32_MAX : (int)r.bodies;
}
