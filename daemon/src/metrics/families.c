/* SPDX-License-Identifier: Apache-2.0 */
/* The families of docs/metrics.md as static definitions, and the updates that turn a
 * graph request, a segment or the daemon's atomic counters into series values. The
 * daemon's counters are cumulative atomics while registry counters only add: the last
 * values read are kept here and each update adds the difference. */
#include "metrics/families.h"

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
};

struct families {
    struct registry *r;
    int id[FAM__COUNT];
    uint64_t plain[FAMILIES_PLAIN]; /* the last values read */
    uint64_t rejected[STATS_REJECT__COUNT];
};

struct families *families_create(const struct registry_options *o)
{
    struct registry_options def = {0};
    struct families *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->r = registry_create(o != NULL ? o : &def)) == NULL) {
        free(f);
        return NULL;
    }
    for (int i = 0; i < FAM__COUNT; i++)
        if ((f->id[i] = registry_family(f->r, &families_defs[i])) < 0) {
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

static void families_observe(struct families *f, enum families_id fam, const char *const *values,
                             size_t n, double v, uint64_t now_ms)
{
    struct metric_series *s = families_series(f, fam, values, n, now_ms);
    if (s != NULL)
        metric_histogram_observe(s, v);
}

static void families_set(struct families *f, enum families_id fam, const char *value, double v,
                         uint64_t now_ms)
{
    struct metric_series *s = families_series(f, fam, &value, 1, now_ms);
    if (s != NULL)
        metric_gauge_set(s, v);
}

void families_edge(struct families *f, const struct families_edge *e, uint64_t now_ms)
{
    const char *v[3] = {e->client, e->server, e->connection_type};
    families_add(f, FAM_REQUEST, v, 3, 1, now_ms);
    families_add(f, FAM_REQUEST_FAILED, v, 3, e->failed ? 1 : 0, now_ms);
    families_observe(f, FAM_CLIENT_SECONDS, v, 3, e->client_seconds, now_ms);
    families_observe(f, FAM_SERVER_SECONDS, v, 3, e->server_seconds, now_ms);
}

void families_segment(struct families *f, const char *service, const char *type, const char *status,
                      double seconds, uint64_t now_ms)
{
    const char *v[3] = {service, type, status};
    families_add(f, FAM_SEGMENTS, v, 3, 1, now_ms);
    families_observe(f, FAM_SEGMENT_SECONDS, v, 2, seconds, now_ms);
}

/* Adds what a cumulative counter grew by since *last. */
static void families_grow(struct families *f, enum families_id fam, const char *const *values,
                          size_t n, uint64_t now, uint64_t *last, uint64_t now_ms)
{
    uint64_t d = now >= *last ? now - *last : 0;
    *last = now;
    families_add(f, fam, values, n, (double)d, now_ms);
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
}
