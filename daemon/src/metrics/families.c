/* SPDX-License-Identifier: Apache-2.0 */
/* The families of docs/metrics.md as static definitions, and the updates that turn a
 * graph request, a segment or the daemon's atomic counters into series values. The
 * daemon's counters are cumulative atomics while registry counters only add: the last
 * values read are kept here and each update adds the difference. */
#include "metrics/families.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum families_id {
    FAM_REQUEST = 0,
    FAM_REQUEST_FAILED,
    FAM_CLIENT_SECONDS,
    FAM_SERVER_SECONDS,
    FAM_SEGMENTS,
    FAM_SEGMENT_SECONDS,
    FAM_RECEIVED,
    FAM_SENT,
    FAM_REJECTED,
    FAM_SPILLOVER,
    FAM_SAMPLED_OUT,
    FAM_BATCHES,
    FAM_MEMORY_USED,
    FAM_MEMORY_LIMIT,
    FAM_UPLOAD_RETRIES,
    FAM_UPLOAD_SECONDS,
    FAM_QUEUE_DEPTH,
    FAM_SINK_REQUESTS,
    FAM_SERIES,
    FAM_SERIES_OVERFLOWED,
    FAM_SERIES_EXPIRED,
    FAM__COUNT
};

/* The plain counters of struct stats, in FAM_RECEIVED.. order. */
enum { FAMILIES_PLAIN = FAM_BATCHES - FAM_RECEIVED + 1 };

static const double families_buckets[FAMILIES_BUCKETS] = {
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.4, 2, 5, 10, 15,
};

static const char *const families_edge_labels[] = {"client", "server", "connection_type"};
static const char *const families_segment_labels[] = {"service", "type", "status"};
static const char *const families_reason_labels[] = {"reason"};
static const char *const families_budget_labels[] = {"budget"};
static const char *const families_queue_labels[] = {"queue"};
static const char *const families_sink_labels[] = {"sink", "outcome"};

/* Outcomes of xrayd_metrics_sink_requests_total, in struct stats' sink_* order. */
enum { SINK_SENT = 0, SINK_RETRIED, SINK_DROPPED, SINK_OUTCOMES };
static const char *const families_sink_outcomes[SINK_OUTCOMES] = {"sent", "retried", "dropped"};

#define FAMILIES_COUNTER(n, h, nl, l)                                                              \
    {                                                                                              \
        n, h, METRIC_COUNTER, nl, l, 0, NULL                                                       \
    }
#define FAMILIES_GAUGE(n, h, nl, l)                                                                \
    {                                                                                              \
        n, h, METRIC_GAUGE, nl, l, 0, NULL                                                         \
    }
#define FAMILIES_HISTOGRAM(n, h, nl, l)                                                            \
    {                                                                                              \
        n, h, METRIC_HISTOGRAM, nl, l, FAMILIES_BUCKETS, families_buckets                          \
    }

static const struct metric_family_def families_defs[FAM__COUNT] = {
    [FAM_REQUEST] = FAMILIES_COUNTER("traces_service_graph_request_total",
                                     "Requests between two nodes of the service graph.", 3,
                                     families_edge_labels),
    [FAM_REQUEST_FAILED] =
        FAMILIES_COUNTER("traces_service_graph_request_failed_total",
                         "Requests between two nodes that faulted.", 3, families_edge_labels),
    [FAM_CLIENT_SECONDS] =
        FAMILIES_HISTOGRAM("traces_service_graph_request_client_seconds",
                           "Request duration as the caller saw it.", 3, families_edge_labels),
    [FAM_SERVER_SECONDS] =
        FAMILIES_HISTOGRAM("traces_service_graph_request_server_seconds",
                           "Request duration as the callee saw it.", 3, families_edge_labels),
    [FAM_SEGMENTS] =
        FAMILIES_COUNTER("xray_segments_total", "Segments received, by service, origin and status.",
                         3, families_segment_labels),
    [FAM_SEGMENT_SECONDS] =
        FAMILIES_HISTOGRAM("xray_segment_duration_seconds", "Duration of the segments received.", 2,
                           families_segment_labels),
    [FAM_RECEIVED] = FAMILIES_COUNTER("xrayd_segments_received_total",
                                      "Datagrams received, rejected ones included.", 0, NULL),
    [FAM_SENT] = FAMILIES_COUNTER("xrayd_segments_sent_total",
                                  "Documents the upstream acknowledged.", 0, NULL),
    [FAM_REJECTED] = FAMILIES_COUNTER("xrayd_segments_rejected_total",
                                      "Datagrams and documents not forwarded, by reason.", 1,
                                      families_reason_labels),
    [FAM_SPILLOVER] =
        FAMILIES_COUNTER("xrayd_segments_spillover_total",
                         "Documents dropped because the memory pool was full.", 0, NULL),
    [FAM_SAMPLED_OUT] =
        FAMILIES_COUNTER("xrayd_segments_sampled_out_total",
                         "Valid documents freed: their trace was not kept.", 0, NULL),
    [FAM_BATCHES] = FAMILIES_COUNTER("xrayd_upload_batches_total", "Upload calls made.", 0, NULL),
    [FAM_MEMORY_USED] = FAMILIES_GAUGE("xrayd_memory_used_bytes", "Bytes in use per memory budget.",
                                       1, families_budget_labels),
    [FAM_MEMORY_LIMIT] = FAMILIES_GAUGE("xrayd_memory_limit_bytes", "Limit of each memory budget.",
                                        1, families_budget_labels),
    [FAM_UPLOAD_RETRIES] = FAMILIES_COUNTER("xrayd_upload_retries_total",
                                            "Upload calls that failed and were retried.", 0, NULL),
    [FAM_UPLOAD_SECONDS] = {"xrayd_upload_duration_seconds", "Upload calls, sent to answered.",
                            METRIC_HISTOGRAM, 0, NULL, STATS_LATENCY_BOUNDS, stats_latency_bounds},
    [FAM_QUEUE_DEPTH] = FAMILIES_GAUGE("xrayd_queue_depth", "Items waiting in each queue.", 1,
                                       families_queue_labels),
    [FAM_SINK_REQUESTS] = FAMILIES_COUNTER(
        "xrayd_metrics_sink_requests_total",
        "Requests of the metrics push sinks: sent, retried or dropped.", 2, families_sink_labels),
    [FAM_SERIES] =
        FAMILIES_GAUGE("xrayd_metrics_series", "Series in the metrics registry.", 0, NULL),
    [FAM_SERIES_OVERFLOWED] = FAMILIES_COUNTER(
        "xrayd_metrics_series_overflowed_total",
        "Updates that went to a family's overflow series (its budget was full).", 0, NULL),
    [FAM_SERIES_EXPIRED] = FAMILIES_COUNTER("xrayd_metrics_series_expired_total",
                                            "Series dropped after going idle.", 0, NULL),
};

/* Every segment and every edge request updates several series with one label set, so
 * the series are remembered by label set: one probe instead of a lookup per family. A
 * direct-mapped table, emptied whenever the registry says a series may have gone. */
#define FAMILIES_CACHE     512 /* slots, a power of two */
#define FAMILIES_CACHE_KEY 120 /* label bytes a slot keeps; longer sets are not cached */

struct families_slot {
    uint64_t hash; /* 0: empty */
    uint16_t key_len;
    char key[FAMILIES_CACHE_KEY]; /* the label values, each ended by a NUL */
    struct metric_series *s[4];
};

struct families {
    struct registry *r;
    struct families_slot edge_cache[FAMILIES_CACHE];
    struct families_slot segment_cache[FAMILIES_CACHE];
    uint64_t cache_generation;
    int id[FAM__COUNT];
    /* The definitions in use: families_defs with the configured latency buckets. */
    struct metric_family_def defs[FAM__COUNT];
    double buckets[METRIC_BUCKETS_MAX];
    /* The last values read of the daemon's cumulative counters. */
    uint64_t plain[FAMILIES_PLAIN];
    uint64_t rejected[STATS_REJECT__COUNT];
    uint64_t retries;
    uint64_t latency[STATS_LATENCY_BOUNDS + 1], latency_us;
    uint64_t sink[STATS_SINK__COUNT][SINK_OUTCOMES];
    uint64_t overflowed, expired;
};

struct families *families_create(const struct families_options *o)
{
    struct families_options def = {0};
    if (o == NULL)
        o = &def;
    if (o->nbuckets > METRIC_BUCKETS_MAX)
        return NULL;
    struct families *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->r = registry_create(&o->registry)) == NULL) {
        free(f);
        return NULL;
    }
    memcpy(f->defs, families_defs, sizeof(f->defs));
    if (o->nbuckets > 0) {
        memcpy(f->buckets, o->buckets, o->nbuckets * sizeof(double));
        for (int i = 0; i < FAM__COUNT; i++)
            if (f->defs[i].buckets == families_buckets) {
                f->defs[i].buckets = f->buckets;
                f->defs[i].nbuckets = (uint8_t)o->nbuckets;
            }
    }
    for (int i = 0; i < FAM__COUNT; i++)
        if ((f->id[i] = registry_family(f->r, &f->defs[i])) < 0) {
            families_destroy(f);
            return NULL;
        }
    return f;
}

void families_destroy(struct families *f)
{
    if (f == NULL)
        return;
    registry_destroy(f->r);
    free(f);
}

struct registry *families_registry(struct families *f)
{
    return f->r;
}

/* The series of family fam for n NUL-terminated values; NULL on ENOMEM. */
static struct metric_series *families_series(struct families *f, enum families_id fam,
                                             const char *const *values, size_t n, uint64_t now_ms)
{
    size_t lens[METRIC_LABELS_MAX];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(values[i]);
    return registry_series(f->r, f->id[fam], values, lens, now_ms);
}

static void families_add(struct families *f, enum families_id fam, const char *const *values,
                         size_t n, double v, uint64_t now_ms)
{
    struct metric_series *s = families_series(f, fam, values, n, now_ms);
    if (s != NULL)
        metric_counter_add(s, v);
}

static void families_set(struct families *f, enum families_id fam, const char *value, double v,
                         uint64_t now_ms)
{
    struct metric_series *s = families_series(f, fam, &value, 1, now_ms);
    if (s != NULL)
        metric_gauge_set(s, v);
}

/* The slot of cache for values[0..n): *hit tells whether it already holds their series;
 * NULL when the values are too long to cache. */
static struct families_slot *families_slot(struct families *f, struct families_slot *cache,
                                           const char *const *values, size_t n, bool *hit)
{
    uint64_t gen = registry_generation(f->r);
    if (gen != f->cache_generation) {
        memset(f->edge_cache, 0, sizeof(f->edge_cache));
        memset(f->segment_cache, 0, sizeof(f->segment_cache));
        f->cache_generation = gen;
    }
    /* The key is the values with their NULs; hashed a word at a time as it is built
     * (this runs for every segment and every edge request). */
    char key[FAMILIES_CACHE_KEY + 8];
    size_t len = 0;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(values[i]) + 1;
        if (len + l > FAMILIES_CACHE_KEY)
            return NULL;
        memcpy(key + len, values[i], l);
        len += l;
    }
    memset(key + len, 0, 8); /* the last word's tail */
    for (size_t i = 0; i < len; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    h |= 1; /* never 0, which marks an empty slot */
    struct families_slot *slot = &cache[(h >> 7) & (FAMILIES_CACHE - 1)];
    *hit = slot->hash == h && slot->key_len == len && memcmp(slot->key, key, len) == 0;
    if (!*hit) {
        slot->hash = h;
        slot->key_len = (uint16_t)len;
        memcpy(slot->key, key, len);
        memset(slot->s, 0, sizeof(slot->s));
    }
    return slot;
}

void families_edge(struct families *f, const struct families_edge *e, uint64_t now_ms)
{
    const char *v[3] = {e->client, e->server, e->connection_type};
    static const enum families_id fam[4] = {FAM_REQUEST, FAM_REQUEST_FAILED, FAM_CLIENT_SECONDS,
                                            FAM_SERVER_SECONDS};
    bool hit = false;
    struct families_slot *slot = families_slot(f, f->edge_cache, v, 3, &hit);
    struct metric_series *s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = hit ? slot->s[i] : families_series(f, fam[i], v, 3, now_ms);
        if (s[i] == NULL) {
            if (slot != NULL)
                slot->hash = 0; /* out of memory: nothing cached */
            return;
        }
        if (hit)
            registry_touch(s[i], now_ms);
    }
    if (slot != NULL && !hit)
        memcpy(slot->s, s, sizeof(s));
    metric_counter_add(s[0], 1);
    metric_counter_add(s[1], e->failed ? 1 : 0);
    metric_histogram_observe(s[2], e->client_seconds);
    metric_histogram_observe(s[3], e->server_seconds);
}

void families_segment(struct families *f, const char *service, const char *type, const char *status,
                      double seconds, uint64_t now_ms)
{
    const char *v[3] = {service, type, status};
    bool hit = false;
    struct families_slot *slot = families_slot(f, f->segment_cache, v, 3, &hit);
    struct metric_series *count, *duration;
    if (hit) {
        count = slot->s[0];
        duration = slot->s[1];
        registry_touch(count, now_ms);
        registry_touch(duration, now_ms);
    } else {
        count = families_series(f, FAM_SEGMENTS, v, 3, now_ms);
        duration = families_series(f, FAM_SEGMENT_SECONDS, v, 2, now_ms);
        if (count == NULL || duration == NULL) {
            if (slot != NULL)
                slot->hash = 0;
            return;
        }
        if (slot != NULL) {
            slot->s[0] = count;
            slot->s[1] = duration;
        }
    }
    metric_counter_add(count, 1);
    metric_histogram_observe(duration, seconds);
}

/* Adds what a cumulative counter grew by since *last. */
static void families_grow(struct families *f, enum families_id fam, const char *const *values,
                          size_t n, uint64_t now, uint64_t *last, uint64_t now_ms)
{
    uint64_t d = now >= *last ? now - *last : 0;
    *last = now;
    families_add(f, fam, values, n, (double)d, now_ms);
}

/* Adds what the upload latency histogram grew by since the last call. */
static void families_latency(struct families *f, struct stats_latency *l, uint64_t now_ms)
{
    uint64_t d[STATS_LATENCY_BOUNDS + 1];
    for (int i = 0; i <= STATS_LATENCY_BOUNDS; i++) {
        uint64_t now = stats_get(&l->buckets[i]);
        d[i] = now >= f->latency[i] ? now - f->latency[i] : 0;
        f->latency[i] = now;
    }
    uint64_t us = stats_get(&l->sum_us);
    double sum = us >= f->latency_us ? (double)(us - f->latency_us) / 1e6 : 0;
    f->latency_us = us;
    struct metric_series *s = families_series(f, FAM_UPLOAD_SECONDS, NULL, 0, now_ms);
    if (s != NULL)
        metric_histogram_add(s, d, sum);
}

void families_daemon(struct families *f, struct stats *st, const struct families_memory *mem,
                     size_t nmem, uint64_t now_ms)
{
    uint64_t plain[FAMILIES_PLAIN] = {
        stats_get(&st->received),  stats_get(&st->sent),        0,
        stats_get(&st->spillover), stats_get(&st->sampled_out), stats_get(&st->batches),
    };
    for (int i = 0; i < FAMILIES_PLAIN; i++)
        if (FAM_RECEIVED + i != FAM_REJECTED)
            families_grow(f, (enum families_id)(FAM_RECEIVED + i), NULL, 0, plain[i], &f->plain[i],
                          now_ms);
    for (int i = 0; i < STATS_REJECT__COUNT; i++)
        families_grow(f, FAM_REJECTED, &stats_reject_labels[i], 1, stats_get(&st->rejected_by[i]),
                      &f->rejected[i], now_ms);
    for (size_t i = 0; i < nmem; i++) {
        families_set(f, FAM_MEMORY_USED, mem[i].budget, (double)mem[i].used, now_ms);
        if (mem[i].limit > 0)
            families_set(f, FAM_MEMORY_LIMIT, mem[i].budget, (double)mem[i].limit, now_ms);
    }
    families_grow(f, FAM_UPLOAD_RETRIES, NULL, 0, stats_get(&st->upload_retries), &f->retries,
                  now_ms);
    families_latency(f, &st->upload_latency, now_ms);
    for (int i = 0; i < STATS_QUEUE__COUNT; i++)
        families_set(f, FAM_QUEUE_DEPTH, stats_queue_labels[i],
                     (double)stats_get(&st->queue_depth[i]), now_ms);
    for (int i = 0; i < STATS_SINK__COUNT; i++) {
        atomic_uint_fast64_t *c[SINK_OUTCOMES] = {&st->sink_sent[i], &st->sink_retries[i],
                                                  &st->sink_dropped[i]};
        for (int k = 0; k < SINK_OUTCOMES; k++) {
            const char *v[2] = {stats_sink_labels[i], families_sink_outcomes[k]};
            families_grow(f, FAM_SINK_REQUESTS, v, 2, stats_get(c[k]), &f->sink[i][k], now_ms);
        }
    }
    /* The registry's own counts come last, so they include this update's series. */
    struct registry_stats rs;
    registry_get_stats(f->r, &rs);
    families_grow(f, FAM_SERIES_OVERFLOWED, NULL, 0, rs.overflowed, &f->overflowed, now_ms);
    families_grow(f, FAM_SERIES_EXPIRED, NULL, 0, rs.expired, &f->expired, now_ms);
    struct metric_series *series = families_series(f, FAM_SERIES, NULL, 0, now_ms);
    if (series != NULL)
        metric_gauge_set(series, (double)rs.series);
}
