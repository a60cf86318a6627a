/* SPDX-License-Identifier: Apache-2.0 */
/* The CloudWatch view: the graph's families regrouped by dimension-value set (a
 * service, an edge), each with what happened since the previous snapshot. Knows the
 * family names of service-graph.md and nothing of the wire formats. Every allocation is
 * sized by the snapshot and freed before returning, except the entity array.
 *
 * How it works: for each family we know, the previous snapshot's series of the same
 * family are put in an open-addressing table keyed by their label values; each current
 * series finds its predecessor there (none: it counts from 0), and its difference goes
 * to its entity, found in a second table keyed by kind and dimension values. */
#include "metrics/cloudwatch.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* slot: the count or histogram index the family feeds; -1: by the status label. */
struct cw_family {
    const char *name;
    uint8_t kind;
    uint8_t type;
    int8_t slot;
};

static const struct cw_family cw_families[] = {
    {"xray_segments_total", CLOUDWATCH_NODE, METRIC_COUNTER, -1},
    {"xray_segment_duration_seconds", CLOUDWATCH_NODE, METRIC_HISTOGRAM, 0},
    {"traces_service_graph_request_total", CLOUDWATCH_EDGE, METRIC_COUNTER, 0},
    {"traces_service_graph_request_failed_total", CLOUDWATCH_EDGE, METRIC_COUNTER, 1},
    {"traces_service_graph_request_client_seconds", CLOUDWATCH_EDGE, METRIC_HISTOGRAM, 0},
    {"traces_service_graph_request_server_seconds", CLOUDWATCH_EDGE, METRIC_HISTOGRAM, 1},
};
#define CW_NFAMILIES (sizeof(cw_families) / sizeof(cw_families[0]))

/* Per kind: the labels that give the dimensions, and how many are required (the rest
 * are left out when ""). */
static const char *const cw_labels[2][CLOUDWATCH_DIMS_MAX] = {
    {"service", "type", NULL},
    {"client", "server", "connection_type"},
};
static const char *const cw_dim_names[2][CLOUDWATCH_DIMS_MAX] = {
    {"Service", "ServiceType", NULL},
    {"Client", "Server", "ConnectionType"},
};
static const uint8_t cw_required[2] = {1, 2};
static const uint8_t cw_optional[2] = {1, 1};

static const char *const cw_count_names[2][CLOUDWATCH_COUNTS] = {
    {"Requests", "Errors", "Throttles", "Faults"},
    {"Requests", "Failed", NULL, NULL},
};
static const char *const cw_hist_names[2][CLOUDWATCH_HISTS] = {
    {"Latency", NULL},
    {"ClientLatency", "ServerLatency"},
};

const char *cloudwatch_count_name(unsigned kind, unsigned i)
{
    return kind < 2 && i < CLOUDWATCH_COUNTS ? cw_count_names[kind][i] : NULL;
}

const char *cloudwatch_hist_name(unsigned kind, unsigned i)
{
    return kind < 2 && i < CLOUDWATCH_HISTS ? cw_hist_names[kind][i] : NULL;
}

double cloudwatch_hist_value(const struct cloudwatch_hist *h, unsigned i)
{
    if (i < h->nbuckets) {
        double hi = h->bounds[i];
        double lo = i > 0 ? h->bounds[i - 1] : hi > 0 ? 0 : hi;
        return (lo + hi) / 2 * 1000;
    }
    if (h->nbuckets > 0)
        return h->bounds[h->nbuckets - 1] * 1000;
    return h->total > 0 ? h->sum / (double)h->total * 1000 : 0;
}

int cloudwatch_number(char out[CLOUDWATCH_NUMBER_MAX], double v)
{
    if (!isfinite(v))
        v = 0;
    return snprintf(out, CLOUDWATCH_NUMBER_MAX, "%.15g", v);
}

void cloudwatch_put(struct cloudwatch_writer *w, const char *raw, size_t n)
{
    if (w->rc == 0)
        w->rc = buf_append(w->b, raw, n);
}

void cloudwatch_putf(struct cloudwatch_writer *w, const char *fmt, ...)
{
    char tmp[256]; /* our formats: fixed names and numbers */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        if (w->rc == 0)
            w->rc = -EINVAL; /* a programmer error: a format longer than ours */
        return;
    }
    cloudwatch_put(w, tmp, (size_t)n);
}

void cloudwatch_put_string(struct cloudwatch_writer *w, const char *s)
{
    if (w->rc == 0)
        w->rc = buf_append_json_string(w->b, s, strlen(s));
}

void cloudwatch_put_number(struct cloudwatch_writer *w, double v)
{
    char num[CLOUDWATCH_NUMBER_MAX];
    int n = cloudwatch_number(num, v);
    cloudwatch_put(w, num, (size_t)n);
}

int cloudwatch_check_namespace(const char *ns)
{
    size_t n = strlen(ns);
    if (n == 0 || n > CLOUDWATCH_NAMESPACE_MAX || strncmp(ns, "AWS/", 4) == 0)
        return -EINVAL;
    return 0;
}

/* ---- series matching ---- */

static uint64_t cw_hash_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull; /* FNV-1a */
    return (h ^ 0xff) * 0x100000001b3ull;               /* separator: "ab","c" != "a","bc" */
}

static uint64_t cw_hash_sample(const struct metric_sample *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned i = 0; i < s->nlabels; i++)
        h = cw_hash_str(cw_hash_str(h, s->labels[i].name), s->labels[i].value);
    return h;
}

static bool cw_same_labels(const struct metric_sample *a, const struct metric_sample *b)
{
    if (a->nlabels != b->nlabels)
        return false;
    for (unsigned i = 0; i < a->nlabels; i++)
        if (strcmp(a->labels[i].name, b->labels[i].name) != 0 ||
            strcmp(a->labels[i].value, b->labels[i].value) != 0)
            return false;
    return true;
}

static size_t cw_table_size(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    return cap;
}

/* The previous snapshot's series of one family, by labels. */
struct cw_index {
    const struct metric_family_snapshot *fam;
    size_t mask;
    int32_t *slots; /* index into fam->series, -1 empty */
};

static int cw_index_build(struct cw_index *ix, const struct metric_family_snapshot *fam)
{
    ix->fam = fam;
    ix->slots = NULL;
    if (fam == NULL || fam->nseries == 0)
        return 0;
    size_t cap = cw_table_size(fam->nseries);
    ix->slots = malloc(cap * sizeof(*ix->slots));
    if (ix->slots == NULL)
        return -ENOMEM;
    memset(ix->slots, 0xff, cap * sizeof(*ix->slots));
    ix->mask = cap - 1;
    for (size_t i = 0; i < fam->nseries; i++) {
        size_t at = cw_hash_sample(&fam->series[i]) & ix->mask;
        while (ix->slots[at] >= 0)
            at = (at + 1) & ix->mask;
        ix->slots[at] = (int32_t)i;
    }
    return 0;
}

static const struct metric_sample *cw_index_find(const struct cw_index *ix,
                                                 const struct metric_sample *s)
{
    if (ix->slots == NULL)
        return NULL;
    for (size_t at = cw_hash_sample(s) & ix->mask; ix->slots[at] >= 0; at = (at + 1) & ix->mask) {
        const struct metric_sample *p = &ix->fam->series[ix->slots[at]];
        if (cw_same_labels(p, s))
            return p;
    }
    return NULL;
}

/* The family named name in snap, when it has the expected type and (for histograms) the
 * same buckets as like; NULL otherwise. */
static const struct metric_family_snapshot *cw_family_in(const struct registry_snapshot *snap,
                                                         const char *name, unsigned type,
                                                         const struct metric_family_def *like)
{
    if (snap == NULL)
        return NULL;
    for (size_t i = 0; i < snap->nfamilies; i++) {
        const struct metric_family_def *d = snap->families[i].def;
        if (d == NULL || d->type != type || strcmp(d->name, name) != 0)
            continue;
        if (like != NULL && type == METRIC_HISTOGRAM &&
            (d->nbuckets != like->nbuckets ||
             (d->nbuckets &&
              memcmp(d->buckets, like->buckets, d->nbuckets * sizeof(*d->buckets)) != 0)))
            return NULL;
        return &snap->families[i];
    }
    return NULL;
}

/* ---- differences ---- */

static double cw_counter_delta(const struct metric_sample *c, const struct metric_sample *p,
                               struct cloudwatch_stats *stats)
{
    double now = isfinite(c->value) && c->value > 0 ? c->value : 0;
    if (p == NULL)
        return now;
    double d = now - p->value;
    if (d >= 0)
        return d;
    if (stats != NULL)
        stats->resets++;
    return now; /* a restart: the counter began again from 0 */
}

static uint64_t cw_bucket(const struct metric_sample *s, unsigned nb, unsigned i)
{
    uint64_t hi = i < nb ? s->buckets[i] : s->count;
    uint64_t lo = i > 0 ? s->buckets[i - 1] : 0;
    return hi > lo ? hi - lo : 0;
}

/* Adds the interval's observations of c (previously p) to h. */
static void cw_hist_delta(struct cloudwatch_hist *h, const struct metric_family_def *def,
                          const struct metric_sample *c, const struct metric_sample *p,
                          struct cloudwatch_stats *stats)
{
    unsigned nb = def->nbuckets;
    bool reset = p != NULL && p->count > c->count;
    for (unsigned i = 0; p != NULL && !reset && i <= nb; i++)
        reset = cw_bucket(p, nb, i) > cw_bucket(c, nb, i);
    if (reset && stats != NULL)
        stats->resets++;
    if (reset)
        p = NULL;
    h->nbuckets = (uint8_t)nb;
    h->bounds = def->buckets;
    for (unsigned i = 0; i <= nb; i++) {
        uint64_t d = cw_bucket(c, nb, i) - (p != NULL ? cw_bucket(p, nb, i) : 0);
        h->delta[i] += d;
        h->total += d;
    }
    double sum = c->value - (p != NULL ? p->value : 0);
    if (isfinite(sum) && sum > 0)
        h->sum += sum;
}

/* ---- entities ---- */

struct cw_builder {
    struct cloudwatch_view *v;
    size_t cap, mask;
    int32_t *slots; /* index into v->entities, -1 empty */
    uint8_t count_bits[2];
};

static const char *cw_label(const struct metric_sample *s, const char *name)
{
    for (unsigned i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    return "";
}

/* The dimensions of s as an entity of kind: required ones never "", optional ones left
 * out when "". */
static void cw_dims(const struct metric_sample *s, unsigned kind, struct cloudwatch_entity *e)
{
    bool overflow = strcmp(cw_label(s, METRIC_OVERFLOW_LABEL), "true") == 0;
    e->kind = (uint8_t)kind;
    e->ndims = 0;
    memset(e->dim_names, 0, sizeof(e->dim_names));
    memset(e->dim_values, 0, sizeof(e->dim_values));
    for (unsigned i = 0; i < (unsigned)(cw_required[kind] + cw_optional[kind]); i++) {
        const char *val = cw_label(s, cw_labels[kind][i]);
        if (val[0] == '\0' && i >= cw_required[kind])
            continue;
        if (val[0] == '\0')
            val = overflow ? CLOUDWATCH_OVERFLOW_VALUE : CLOUDWATCH_EMPTY_VALUE;
        e->dim_names[e->ndims] = cw_dim_names[kind][i];
        e->dim_values[e->ndims++] = val;
    }
}

static uint64_t cw_hash_entity(const struct cloudwatch_entity *e)
{
    uint64_t h = 0xcbf29ce484222325ull ^ e->kind;
    for (unsigned i = 0; i < e->ndims; i++)
        h = cw_hash_str(cw_hash_str(h, e->dim_names[i]), e->dim_values[i]);
    return h;
}

static bool cw_same_entity(const struct cloudwatch_entity *a, const struct cloudwatch_entity *b)
{
    if (a->kind != b->kind || a->ndims != b->ndims)
        return false;
    for (unsigned i = 0; i < a->ndims; i++)
        if (a->dim_names[i] != b->dim_names[i] || strcmp(a->dim_values[i], b->dim_values[i]) != 0)
            return false;
    return true;
}

/* The entity s belongs to, created when new (b->cap bounds how many there can be: one
 * per series at most). */
static struct cloudwatch_entity *cw_entity(struct cw_builder *b, const struct metric_sample *s,
                                           unsigned kind)
{
    struct cloudwatch_entity key;
    cw_dims(s, kind, &key);
    size_t at = cw_hash_entity(&key) & b->mask;
    for (; b->slots[at] >= 0; at = (at + 1) & b->mask)
        if (cw_same_entity(&b->v->entities[b->slots[at]], &key))
            return &b->v->entities[b->slots[at]];
    struct cloudwatch_entity *e = &b->v->entities[b->v->nentities];
    memset(e, 0, sizeof(*e));
    memcpy(e->dim_names, key.dim_names, sizeof(key.dim_names));
    memcpy(e->dim_values, key.dim_values, sizeof(key.dim_values));
    e->kind = key.kind;
    e->ndims = key.ndims;
    e->has_counts = b->count_bits[kind];
    b->slots[at] = (int32_t)b->v->nentities++;
    return e;
}

static int cw_status_slot(const char *status)
{
    if (strcmp(status, "error") == 0)
        return 1;
    if (strcmp(status, "throttle") == 0)
        return 2;
    if (strcmp(status, "fault") == 0)
        return 3;
    return -1; /* ok, or a status we do not know: a request all the same */
}

static int cw_add_family(struct cw_builder *b, const struct cw_family *f,
                         const struct metric_family_snapshot *cur,
                         const struct registry_snapshot *prev, struct cloudwatch_stats *stats)
{
    struct cw_index ix;
    if (cw_index_build(&ix, cw_family_in(prev, f->name, f->type, cur->def)) != 0)
        return -ENOMEM;
    for (size_t i = 0; i < cur->nseries; i++) {
        const struct metric_sample *s = &cur->series[i];
        const struct metric_sample *p = cw_index_find(&ix, s);
        struct cloudwatch_entity *e = cw_entity(b, s, f->kind);
        if (f->type == METRIC_HISTOGRAM) {
            cw_hist_delta(&e->hists[f->slot], cur->def, s, p, stats);
            continue;
        }
        double d = cw_counter_delta(s, p, stats);
        int slot = f->slot >= 0 ? f->slot : 0;
        e->counts[slot] += d;
        if (f->slot < 0 && (slot = cw_status_slot(cw_label(s, "status"))) >= 0)
            e->counts[slot] += d;
    }
    free(ix.slots);
    return 0;
}

/* Keeps the entities with something to report, in order. */
static void cw_compact(struct cloudwatch_view *v)
{
    size_t kept = 0;
    for (size_t i = 0; i < v->nentities; i++) {
        struct cloudwatch_entity *e = &v->entities[i];
        bool any = false;
        for (unsigned k = 0; k < CLOUDWATCH_COUNTS; k++)
            any |= (e->has_counts >> k & 1) && e->counts[k] > 0;
        for (unsigned k = 0; k < CLOUDWATCH_HISTS; k++)
            if (e->hists[k].total > 0)
                e->has_hists |= (uint8_t)(1u << k);
        if (!any && e->has_hists == 0)
            continue;
        if (kept != i)
            v->entities[kept] = *e;
        kept++;
    }
    v->nentities = kept;
}

int cloudwatch_view_build(struct cloudwatch_view *v, const struct registry_snapshot *prev,
                          const struct registry_snapshot *cur, struct cloudwatch_stats *stats)
{
    const struct metric_family_snapshot *fams[CW_NFAMILIES];
    struct cw_builder b = {.v = v};
    v->nentities = 0;
    v->entities = NULL;
    for (size_t i = 0; i < CW_NFAMILIES; i++) {
        const struct cw_family *f = &cw_families[i];
        fams[i] = cw_family_in(cur, f->name, f->type, NULL);
        if (fams[i] != NULL && f->type == METRIC_HISTOGRAM &&
            (fams[i]->def->nbuckets > METRIC_BUCKETS_MAX ||
             (fams[i]->def->nbuckets > 0 && fams[i]->def->buckets == NULL)))
            fams[i] = NULL; /* not what registry.c declares: ignored, never overrun */
        if (fams[i] == NULL)
            continue;
        b.cap += fams[i]->nseries;
        if (f->type == METRIC_COUNTER)
            b.count_bits[f->kind] |= f->slot < 0 ? 0x0f : (uint8_t)(1u << f->slot);
    }
    if (b.cap == 0)
        return 0;
    size_t tsize = cw_table_size(b.cap);
    b.mask = tsize - 1;
    b.slots = malloc(tsize * sizeof(*b.slots));
    v->entities = malloc(b.cap * sizeof(*v->entities));
    int rc = b.slots != NULL && v->entities != NULL ? 0 : -ENOMEM;
    if (rc == 0)
        memset(b.slots, 0xff, tsize * sizeof(*b.slots));
    for (size_t i = 0; i < CW_NFAMILIES && rc == 0; i++)
        if (fams[i] != NULL)
            rc = cw_add_family(&b, &cw_families[i], fams[i], prev, stats);
    free(b.slots);
    if (rc != 0) {
        cloudwatch_view_free(v);
        return rc;
    }
    cw_compact(v);
    return 0;
}

void cloudwatch_view_free(struct cloudwatch_view *v)
{
    free(v->entities);
    v->entities = NULL;
    v->nentities = 0;
}
