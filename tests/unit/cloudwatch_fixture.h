/* SPDX-License-Identifier: Apache-2.0 */
/* Hand-built registry snapshots holding the graph's families (service-graph.md,
 * "Metrics from the graph") for the CloudWatch encoders' tests (test_emf.c,
 * test_put_metric_data.c): a snapshot is plain structs, filled here series by series. */
#ifndef XRAYD_TEST_CLOUDWATCH_FIXTURE_H
#define XRAYD_TEST_CLOUDWATCH_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "metrics/registry.h"

#define FX_TS     INT64_C(1700000000123)
#define FX_NB     16 /* finite buckets of the graph's histograms */
#define FX_SERIES 1024

static const double fx_buckets[FX_NB] = {0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2,
                                         0.4,   0.8,   1,     1.4,   2,    5,    10,  15};
static const char *const fx_node_count_labels[] = {"service", "type", "status"};
static const char *const fx_node_hist_labels[] = {"service", "type"};
static const char *const fx_edge_labels[] = {"client", "server", "connection_type"};
static const char *const fx_other_labels[] = {"service"};

enum {
    FX_OTHER = 0, /* a family the encoders must ignore */
    FX_SEGMENTS,
    FX_DURATION,
    FX_EDGE_TOTAL,
    FX_EDGE_FAILED,
    FX_EDGE_CLIENT,
    FX_EDGE_SERVER,
    FX_NFAM,
};

static const struct metric_family_def fx_defs[FX_NFAM] = {
    {"xrayd_received_total", "Documents received.", METRIC_COUNTER, 1, fx_other_labels, 0, NULL},
    {"xray_segments_total", "Segments.", METRIC_COUNTER, 3, fx_node_count_labels, 0, NULL},
    {"xray_segment_duration_seconds", "Durations.", METRIC_HISTOGRAM, 2, fx_node_hist_labels, FX_NB,
     fx_buckets},
    {"traces_service_graph_request_total", "Requests.", METRIC_COUNTER, 3, fx_edge_labels, 0, NULL},
    {"traces_service_graph_request_failed_total", "Failed.", METRIC_COUNTER, 3, fx_edge_labels, 0,
     NULL},
    {"traces_service_graph_request_client_seconds", "Client.", METRIC_HISTOGRAM, 3, fx_edge_labels,
     FX_NB, fx_buckets},
    {"traces_service_graph_request_server_seconds", "Server.", METRIC_HISTOGRAM, 3, fx_edge_labels,
     FX_NB, fx_buckets},
};

struct fx {
    struct registry_snapshot snap;
    struct metric_family_snapshot fams[FX_NFAM];
    struct metric_sample series[FX_NFAM][FX_SERIES];
    struct metric_label labels[FX_NFAM][FX_SERIES][METRIC_LABELS_MAX + 1];
    uint64_t buckets[FX_NFAM][FX_SERIES][FX_NB];
    char *strs[FX_NFAM * FX_SERIES * 4];
    size_t nstrs;
};

static struct fx *fx_new(int64_t epoch_ms)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        abort();
    for (int i = 0; i < FX_NFAM; i++) {
        f->fams[i].def = &fx_defs[i];
        f->fams[i].series = f->series[i];
    }
    f->snap.taken_ms = 1000;
    f->snap.taken_epoch_ms = epoch_ms;
    f->snap.nfamilies = FX_NFAM;
    f->snap.families = f->fams;
    return f;
}

static void fx_free(struct fx *f)
{
    for (size_t i = 0; i < f->nstrs; i++)
        free(f->strs[i]);
    free(f);
}

static const char *fx_str(struct fx *f, const char *s)
{
    char *c = strdup(s);
    if (c == NULL)
        abort();
    f->strs[f->nstrs++] = c;
    return c;
}

/* A series of family fam with the family's label values v[] (NULL-padded to "");
 * overflow adds overflow="true". */
static struct metric_sample *fx_series(struct fx *f, int fam, const char *const *v, int overflow)
{
    size_t n = f->fams[fam].nseries++;
    struct metric_sample *s = &f->series[fam][n];
    struct metric_label *l = f->labels[fam][n];
    const struct metric_family_def *d = &fx_defs[fam];
    for (unsigned i = 0; i < d->nlabels; i++) {
        l[i].name = d->labels[i];
        l[i].value = fx_str(f, v[i] != NULL ? v[i] : "");
    }
    s->nlabels = d->nlabels;
    if (overflow) {
        l[d->nlabels].name = METRIC_OVERFLOW_LABEL;
        l[d->nlabels].value = "true";
        s->nlabels++;
    }
    s->labels = l;
    s->updated_ms = 1000;
    return s;
}

static void fx_counter(struct fx *f, int fam, const char *a, const char *b, const char *c,
                       double value)
{
    const char *v[3] = {a, b, c};
    fx_series(f, fam, v, 0)->value = value;
}

/* per_bucket: FX_NB + 1 counts, not cumulative, the last for +Inf. */
static void fx_hist(struct fx *f, int fam, const char *a, const char *b, const char *c,
                    const uint64_t *per_bucket, double sum)
{
    const char *v[3] = {a, b, c};
    struct metric_sample *s = fx_series(f, fam, v, 0);
    size_t n = (size_t)(s - f->series[fam]);
    uint64_t cum = 0;
    for (int i = 0; i < FX_NB; i++)
        f->buckets[fam][n][i] = cum += per_bucket[i];
    s->buckets = f->buckets[fam][n];
    s->count = cum + per_bucket[FX_NB];
    s->value = sum;
}

#endif
