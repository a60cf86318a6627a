/* SPDX-License-Identifier: Apache-2.0 */
/* EMF log events from the CloudWatch view (cloudwatch.h), and PutLogEvents bodies from
 * those events. Every event is one dimension-value set (a service, or an edge: each
 * dimension set makes its own metric from the same values, so nodes and edges never
 * share an event) and stays inside every EMF and CloudWatch Logs limit.
 *
 * Latency (how it works, and what it costs in accuracy): the registry keeps bucket
 * counts, EMF carries values and no counts. Each non-empty bucket is sent as its
 * representative value (the bucket's midpoint; the +Inf bucket its last finite bound)
 * repeated once per observation, so CloudWatch's SampleCount, percentiles and averages
 * all come from the full distribution, quantized to the buckets. The alternative,
 * LatencySum/LatencyCount/LatencyMax metrics, is one line per service but gives no
 * percentiles at all, and a Max that buckets cannot know; percentiles are what latency
 * alarms are set on. A metric array holds at most 100 values, so a busy interval takes
 * several events for the same dimensions, the counts (Requests, Errors, ...) only in
 * the first, so that CloudWatch adds nothing twice. To bound the log volume, a histogram
 * with more than max_values_per_series observations in one interval has its bucket
 * counts scaled down to about that many (each non-empty bucket keeps at least one):
 * the shape, hence the percentiles, survives; Latency's SampleCount then understates,
 * and Requests stays the count to use. */
#include "metrics/emf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "error.h"

_Static_assert(CLOUDWATCH_COUNTS + CLOUDWATCH_HISTS <= EMF_METRICS_MAX, "metrics per directive");
_Static_assert(CLOUDWATCH_DIMS_MAX <= EMF_DIMENSIONS_MAX, "keys per dimension set");

/* One histogram's representative values, handed out to the events in order. */
struct emf_values {
    unsigned slot; /* which of the entity's histograms */
    unsigned n;    /* non-empty buckets */
    unsigned at;   /* the bucket the next value comes from */
    uint64_t used; /* values of bucket at already written */
    uint64_t left; /* values not yet written */
    uint64_t count[METRIC_BUCKETS_MAX + 1];
    uint8_t len[METRIC_BUCKETS_MAX + 1];
    char text[METRIC_BUCKETS_MAX + 1][CLOUDWATCH_NUMBER_MAX];
};

struct emf_run {
    const char *ns;
    unsigned resolution;
    uint32_t per_event;
    uint32_t per_series;
    struct cloudwatch_stats *stats;
    int64_t ts;
    struct buf b;
};

static void emf_values_init(struct emf_values *v, const struct cloudwatch_hist *h, unsigned slot,
                            const struct emf_run *r)
{
    v->slot = slot;
    v->n = 0;
    for (unsigned i = 0; i <= h->nbuckets; i++) {
        if (h->delta[i] == 0)
            continue;
        v->count[v->n] = h->delta[i];
        v->len[v->n] = (uint8_t)cloudwatch_number(v->text[v->n], cloudwatch_hist_value(h, i));
        v->n++;
    }
    v->left = h->total;
    if (h->total > r->per_series) {
        v->left = 0;
        for (unsigned k = 0; k < v->n; k++) {
            uint64_t c = (uint64_t)((double)v->count[k] * r->per_series / (double)h->total);
            v->count[k] = c > 0 ? c : 1;
            v->left += v->count[k];
        }
        if (r->stats != NULL)
            r->stats->scaled++;
    }
    v->at = 0;
    v->used = 0;
}

/* Writes [v,...] with the next values, at most max of them. */
static void emf_values_write(struct cloudwatch_writer *w, struct emf_values *v, uint32_t max)
{
    cloudwatch_put(w, "[", 1);
    for (uint32_t k = 0; k < max && v->left > 0; k++) {
        while (v->used == v->count[v->at]) {
            v->at++;
            v->used = 0;
        }
        if (k > 0)
            cloudwatch_put(w, ",", 1);
        cloudwatch_put(w, v->text[v->at], v->len[v->at]);
        v->used++;
        v->left--;
    }
    cloudwatch_put(w, "]", 1);
}

static void emf_metric(struct cloudwatch_writer *w, const char *name, const char *unit,
                       unsigned resolution, bool *comma)
{
    cloudwatch_putf(w, "%s{\"Name\":\"%s\",\"Unit\":\"%s\",\"StorageResolution\":%u}",
                    *comma ? "," : "", name, unit, resolution);
    *comma = true;
}

/* The _aws member: which of the event's members are metrics, under which dimensions. */
static void emf_directive(struct cloudwatch_writer *w, const struct emf_run *r,
                          const struct cloudwatch_entity *e, const struct emf_values *v,
                          unsigned nv, bool first)
{
    cloudwatch_putf(
        w, "{\"_aws\":{\"Timestamp\":%" PRId64 ",\"CloudWatchMetrics\":[{\"Namespace\":", r->ts);
    cloudwatch_put_string(w, r->ns);
    cloudwatch_put(w, ",\"Dimensions\":[[", 16);
    for (unsigned d = 0; d < e->ndims; d++)
        cloudwatch_putf(w, "%s\"%s\"", d > 0 ? "," : "", e->dim_names[d]);
    cloudwatch_put(w, "]],\"Metrics\":[", 14);
    bool comma = false;
    for (unsigned k = 0; first && k < CLOUDWATCH_COUNTS; k++)
        if (e->has_counts >> k & 1)
            emf_metric(w, cloudwatch_count_name(e->kind, k), CLOUDWATCH_COUNT_UNIT, r->resolution,
                       &comma);
    for (unsigned j = 0; j < nv; j++)
        if (v[j].left > 0)
            emf_metric(w, cloudwatch_hist_name(e->kind, v[j].slot), CLOUDWATCH_HIST_UNIT,
                       r->resolution, &comma);
    cloudwatch_put(w, "]}]}", 4);
}

/* One event of e into r->b: the counts when first, then the next values of each
 * histogram that has some left. */
static int emf_event(struct emf_run *r, const struct cloudwatch_entity *e, struct emf_values *v,
                     unsigned nv, bool first)
{
    struct cloudwatch_writer w = {.b = &r->b, .rc = 0};
    buf_reset(&r->b);
    emf_directive(&w, r, e, v, nv, first);
    for (unsigned d = 0; d < e->ndims; d++) {
        cloudwatch_putf(&w, ",\"%s\":", e->dim_names[d]);
        cloudwatch_put_string(&w, e->dim_values[d]);
    }
    for (unsigned k = 0; first && k < CLOUDWATCH_COUNTS; k++) {
        if (!(e->has_counts >> k & 1))
            continue;
        cloudwatch_putf(&w, ",\"%s\":", cloudwatch_count_name(e->kind, k));
        cloudwatch_put_number(&w, e->counts[k]);
    }
    for (unsigned j = 0; j < nv; j++) {
        if (v[j].left == 0)
            continue;
        cloudwatch_putf(&w, ",\"%s\":", cloudwatch_hist_name(e->kind, v[j].slot));
        emf_values_write(&w, &v[j], r->per_event);
    }
    cloudwatch_put(&w, "}", 1);
    return w.rc;
}

/* Emits e's events; the number emitted in *events. */
static int emf_entity(struct emf_run *r, const struct cloudwatch_entity *e,
                      int (*emit)(void *ctx, const char *json, size_t len, int64_t ts), void *ctx,
                      size_t *events)
{
    struct emf_values v[CLOUDWATCH_HISTS];
    unsigned nv = 0;
    for (unsigned j = 0; j < CLOUDWATCH_HISTS; j++)
        if (e->has_hists >> j & 1)
            emf_values_init(&v[nv++], &e->hists[j], j, r);
    bool more = true;
    for (bool first = true; more; first = false) {
        int rc = emf_event(r, e, v, nv, first);
        if (rc == XRAY_ETOOBIG) { /* only with absurd names: the rest of e goes too */
            if (r->stats != NULL)
                r->stats->refused++;
            return 0;
        }
        if (rc == 0)
            rc = emit(ctx, r->b.data, r->b.len, r->ts);
        if (rc != 0)
            return rc;
        (*events)++;
        more = false;
        for (unsigned j = 0; j < nv; j++)
            more |= v[j].left > 0;
    }
    return 0;
}

static int emf_run_init(struct emf_run *r, const struct emf_options *o,
                        const struct registry_snapshot *cur)
{
    r->ns = o->ns != NULL ? o->ns : CLOUDWATCH_DEFAULT_NAMESPACE;
    r->resolution = o->storage_resolution ? o->storage_resolution : 60;
    r->per_event = o->values_per_event ? o->values_per_event : EMF_VALUES_MAX;
    r->per_series = o->max_values_per_series ? o->max_values_per_series : EMF_DEFAULT_SERIES_VALUES;
    r->stats = o->stats;
    r->ts = cur->taken_epoch_ms;
    buf_init(&r->b, EMF_EVENT_MAX);
    if (cloudwatch_check_namespace(r->ns) != 0 || (r->resolution != 1 && r->resolution != 60) ||
        r->per_event > EMF_VALUES_MAX)
        return -EINVAL;
    return 0;
}

int emf_encode(const struct emf_options *o, const struct registry_snapshot *prev,
               const struct registry_snapshot *cur,
               int (*emit)(void *ctx, const char *json, size_t len, int64_t timestamp_ms),
               void *ctx)
{
    struct emf_run r;
    int rc = emf_run_init(&r, o, cur);
    if (rc != 0)
        return rc;
    struct cloudwatch_view view;
    rc = cloudwatch_view_build(&view, prev, cur, o->stats);
    size_t events = 0;
    for (size_t i = 0; i < view.nentities && rc == 0; i++)
        rc = emf_entity(&r, &view.entities[i], emit, ctx, &events);
    cloudwatch_view_free(&view);
    buf_free(&r.b);
    if (rc != 0)
        return rc;
    return events > INT32_MAX ? INT32_MAX : (int)events;
}

/* ---- PutLogEvents bodies ---- */

void emf_batch_init(struct emf_batch *b, const struct emf_batch_options *o, emf_batch_send_fn send,
                    void *ctx)
{
    memset(b, 0, sizeof(*b));
    b->_o = *o;
    if (b->_o.max_bytes == 0)
        b->_o.max_bytes = EMF_BATCH_BYTES_MAX;
    if (b->_o.max_events == 0)
        b->_o.max_events = EMF_BATCH_EVENTS_MAX;
    /* The body's own bound: every message byte escaped at worst to six, each event's
     * wrapping, the escaped names. The counted limit is what binds in practice. */
    size_t names = strlen(o->log_group) + strlen(o->log_stream);
    buf_init(&b->_body, 6 * b->_o.max_bytes + 64 * b->_o.max_events + 6 * names + 128);
    b->_send = send;
    b->_ctx = ctx;
}

int emf_batch_flush(struct emf_batch *b)
{
    if (b->nevents == 0)
        return 0;
    int rc = buf_append(&b->_body, "]}", 2);
    if (rc == 0)
        rc = b->_send(b->_ctx, b->_body.data, b->_body.len, b->nevents);
    b->bodies++;
    buf_reset(&b->_body);
    b->nevents = 0;
    b->counted = 0;
    return rc;
}

static bool emf_batch_fits(const struct emf_batch *b, size_t len, int64_t ts)
{
    return b->nevents < b->_o.max_events &&
           b->counted + len + EMF_BATCH_EVENT_OVERHEAD <= b->_o.max_bytes && ts >= b->_last_ts &&
           ts - b->_first_ts <= EMF_BATCH_SPAN_MS;
}

int emf_batch_add(void *batch, const char *json, size_t len, int64_t timestamp_ms)
{
    struct emf_batch *b = batch;
    if (len > EMF_EVENT_MAX || len + EMF_BATCH_EVENT_OVERHEAD > b->_o.max_bytes) {
        b->refused++;
        return 0;
    }
    int rc;
    if (b->nevents > 0 && !emf_batch_fits(b, len, timestamp_ms) && (rc = emf_batch_flush(b)) != 0)
        return rc;
    size_t start = b->_body.len;
    struct cloudwatch_writer w = {.b = &b->_body, .rc = 0};
    if (b->nevents == 0) {
        cloudwatch_put(&w, "{\"logGroupName\":", 16);
        cloudwatch_put_string(&w, b->_o.log_group);
        cloudwatch_put(&w, ",\"logStreamName\":", 17);
        cloudwatch_put_string(&w, b->_o.log_stream);
        cloudwatch_put(&w, ",\"logEvents\":[", 14);
        b->_first_ts = timestamp_ms;
    }
    cloudwatch_putf(&w, "%s{\"timestamp\":%" PRId64 ",\"message\":", b->nevents ? "," : "",
                    timestamp_ms);
    if (w.rc == 0)
        w.rc = buf_append_json_string(&b->_body, json, len);
    cloudwatch_put(&w, "}", 1);
    if (w.rc != 0) {
        b->_body.len = start; /* the body stays as it was */
        if (w.rc != XRAY_ETOOBIG)
            return w.rc;
        b->refused++;
        return 0;
    }
    b->nevents++;
    b->counted += len + EMF_BATCH_EVENT_OVERHEAD;
    b->_last_ts = timestamp_ms;
    return 0;
}

void emf_batch_free(struct emf_batch *b)
{
    buf_free(&b->_body);
    b->nevents = 0;
    b->counted = 0;
}
