/* SPDX-License-Identifier: Apache-2.0 */
/* Remote write bodies: a registry snapshot as a snappy-compressed WriteRequest. It
 * sends nothing and keeps no state between calls; the sender owns headers and retries.
 *
 * How it works: a WriteRequest is only its repeated field 1, and protobuf defines the
 * concatenation of two encoded messages as their merge, so the body is the
 * concatenation of one single-series WriteRequest per series. Each is built in one set
 * of stack structs that every series reuses and packed by the generated code, so the
 * only allocation is one block per call: the raw body and room for its compression.
 * A first walk sums the packed sizes, the second packs. */
#include "metrics/remote_write.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "buf.h"
#include "error.h"
#include "metrics/registry.h"
#include "remote.pb-c.h"

/* __name__, le, the family's labels and the overflow label. */
#define RW_LABELS_MAX (METRIC_LABELS_MAX + 3)
#define RW_NAME_LEN   (METRIC_NAME_MAX + sizeof("_bucket"))
/* The snappy block format stores the uncompressed length as a 32-bit varint. */
#define RW_RAW_MAX UINT32_MAX

/* The one series being written, and the le values of the family being walked. */
struct rw_series {
    Prometheus__Label labels[RW_LABELS_MAX];
    Prometheus__Label *lp[RW_LABELS_MAX];
    Prometheus__Sample sample;
    Prometheus__Sample *sp;
    Prometheus__TimeSeries ts;
    Prometheus__TimeSeries *tsp;
    Prometheus__WriteRequest wr;
    char name[RW_NAME_LEN];
    char le[METRIC_BUCKETS_MAX][REMOTE_WRITE_LE_LEN];
};

/* A walk over the snapshot: sizes only while out is NULL, else packs at out + len. */
struct rw_walk {
    int64_t timestamp_ms;
    uint8_t *out;
    size_t len;
    struct rw_series rs;
};

size_t remote_write_format_le(double v, char dst[REMOTE_WRITE_LE_LEN])
{
    if (isnan(v))
        return (size_t)snprintf(dst, REMOTE_WRITE_LE_LEN, "NaN");
    if (isinf(v))
        return (size_t)snprintf(dst, REMOTE_WRITE_LE_LEN, v > 0 ? "+Inf" : "-Inf");
    /* The fewest significant digits that read back as v: what Go's shortest mode
     * prints. 17 always round-trips a double. */
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(dst, REMOTE_WRITE_LE_LEN, "%.*e", prec - 1, v);
        if (strtod(dst, NULL) == v)
            break;
    }
    snprintf(dst, REMOTE_WRITE_LE_LEN, "%.*e", prec - 1, v);
    int exp = atoi(strchr(dst, 'e') + 1);
    /* Go's 'g' with the shortest precision switches to the exponent form on a fixed
     * rule (strconv/ftoa.go: "use precision 6 for this decision"); its exponent has at
     * least two digits, as C's %e. */
    if (exp < -4 || exp >= 6)
        return strlen(dst);
    int decimals = prec - 1 - exp;
    return (size_t)snprintf(dst, REMOTE_WRITE_LE_LEN, "%.*f", decimals > 0 ? decimals : 0, v);
}

static double rw_stale_nan(void)
{
    uint64_t bits = REMOTE_WRITE_STALE_NAN_BITS;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static void rw_series_init(struct rw_series *rs)
{
    for (size_t i = 0; i < RW_LABELS_MAX; i++) {
        prometheus__label__init(&rs->labels[i]);
        rs->lp[i] = &rs->labels[i];
    }
    prometheus__sample__init(&rs->sample);
    rs->sp = &rs->sample;
    prometheus__time_series__init(&rs->ts);
    rs->ts.labels = rs->lp;
    rs->ts.n_samples = 1;
    rs->ts.samples = &rs->sp;
    rs->tsp = &rs->ts;
    prometheus__write_request__init(&rs->wr);
    rs->wr.n_timeseries = 1;
    rs->wr.timeseries = &rs->tsp;
}

/* Inserts a label in name order. Empty values are dropped, as Prometheus drops them;
 * of two labels with one name the first added stays, so __name__ and le, added
 * first, win over a family label of the same name. The generated structs hold char *,
 * but packing only reads them. */
static void rw_series_label(struct rw_series *rs, const char *name, const char *value)
{
    if (name == NULL || name[0] == '\0' || value == NULL || value[0] == '\0')
        return;
    size_t n = rs->ts.n_labels, i = n;
    while (i > 0) {
        int c = strcmp(rs->labels[i - 1].name, name);
        if (c == 0)
            return;
        if (c < 0)
            break;
        i--;
    }
    for (size_t j = n; j > i; j--) {
        rs->labels[j].name = rs->labels[j - 1].name;
        rs->labels[j].value = rs->labels[j - 1].value;
    }
    rs->labels[i].name = (char *)name;
    rs->labels[i].value = (char *)value;
    rs->ts.n_labels = n + 1;
}

/* One series: <family><suffix>{labels of m, le} = value at the walk's timestamp. */
static int rw_walk_series(struct rw_walk *w, const struct metric_family_def *def,
                          const struct metric_sample *m, const char *suffix, const char *le,
                          double value)
{
    struct rw_series *rs = &w->rs;
    int n = snprintf(rs->name, sizeof rs->name, "%s%s", def->name, suffix);
    if (n < 0 || (size_t)n >= sizeof rs->name)
        return -EINVAL;
    rs->ts.n_labels = 0;
    rw_series_label(rs, "__name__", rs->name);
    if (le != NULL)
        rw_series_label(rs, "le", le);
    for (size_t i = 0; i < m->nlabels; i++)
        rw_series_label(rs, m->labels[i].name, m->labels[i].value);
    rs->sample.value = value;
    rs->sample.timestamp = w->timestamp_ms;

    size_t size = prometheus__write_request__get_packed_size(&rs->wr);
    if (size > RW_RAW_MAX - w->len)
        return -ENOSPC;
    if (w->out != NULL) {
        size_t packed = prometheus__write_request__pack(&rs->wr, w->out + w->len);
        assert(packed == size);
        (void)packed;
    }
    w->len += size;
    return 0;
}

/* Every series of one counter, gauge or histogram sample; stale ones get the stale
 * marker in place of each value. */
static int rw_walk_sample(struct rw_walk *w, const struct metric_family_def *def,
                          const struct metric_sample *m, bool stale)
{
    if (m->nlabels > METRIC_LABELS_MAX + 1)
        return -EINVAL;
    double nan = rw_stale_nan();
    if (def->type != METRIC_HISTOGRAM)
        return rw_walk_series(w, def, m, "", NULL, stale ? nan : m->value);
    int rc = 0;
    for (size_t b = 0; b < def->nbuckets && rc == 0; b++)
        rc = rw_walk_series(w, def, m, "_bucket", w->rs.le[b], stale ? nan : (double)m->buckets[b]);
    if (rc == 0)
        rc = rw_walk_series(w, def, m, "_bucket", "+Inf", stale ? nan : (double)m->count);
    if (rc == 0)
        rc = rw_walk_series(w, def, m, "_sum", NULL, stale ? nan : m->value);
    if (rc == 0)
        rc = rw_walk_series(w, def, m, "_count", NULL, stale ? nan : (double)m->count);
    return rc;
}

static int rw_walk_family(struct rw_walk *w, const struct metric_family_snapshot *f)
{
    const struct metric_family_def *def = f->def;
    if (def->type == METRIC_HISTOGRAM) {
        if (def->nbuckets > METRIC_BUCKETS_MAX)
            return -EINVAL;
        for (size_t b = 0; b < def->nbuckets; b++)
            remote_write_format_le(def->buckets[b], w->rs.le[b]);
    }
    int rc = 0;
    for (size_t i = 0; i < f->nseries && rc == 0; i++)
        rc = rw_walk_sample(w, def, &f->series[i], false);
    for (size_t i = 0; i < f->nstale && rc == 0; i++)
        rc = rw_walk_sample(w, def, &f->stale[i], true);
    return rc;
}

static int rw_walk(struct rw_walk *w, const struct registry_snapshot *s)
{
    w->len = 0;
    int rc = 0;
    for (size_t i = 0; i < s->nfamilies && rc == 0; i++)
        rc = rw_walk_family(w, &s->families[i]);
    return rc;
}

int remote_write_encode(const struct registry_snapshot *s, int64_t timestamp_ms, struct buf *out)
{
    struct rw_walk w = {.timestamp_ms = timestamp_ms};
    rw_series_init(&w.rs);
    int rc = rw_walk(&w, s);
    if (rc != 0)
        return rc;

    size_t raw = w.len;
    size_t room = snappy_max_compressed_length(raw);
    /* snappy_compress() wants its worst case free even when the result is small, so
     * it writes here and only what it made goes to out. */
    w.out = malloc(raw + room);
    if (w.out == NULL)
        return -ENOMEM;
    rc = rw_walk(&w, s);
    assert(rc == 0 && w.len == raw);
    char *z = (char *)w.out + raw;
    if (rc == 0 && snappy_compress((const char *)w.out, raw, z, &room) != SNAPPY_OK)
        rc = -EINVAL; /* not reachable: room is snappy's own worst case */
    if (rc == 0)
        rc = buf_append(out, z, room);
    if (rc == XRAY_ETOOBIG)
        rc = -ENOSPC;
    free(w.out);
    return rc;
}
