/* SPDX-License-Identifier: Apache-2.0 */
/* Cost of one /metrics scrape: registry_snapshot() plus prometheus_write(), on a
 * registry shaped like the service graph's: 2,500 edges (client, server,
 * connection_type) in the four graph families (request and failed counters, server
 * and client latency histograms with the default 16 buckets), 10,000 series in all.
 * The target is 10 ms per scrape. Each format runs a warm-up pass and then the given
 * number of scrapes; fastest and median are reported, with the body and snapshot
 * sizes. Also reported: an update (registry_series() + one observation) on the
 * filled registry.
 *   bench_scrape [scrapes]      (default 50) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "metrics/prometheus.h"
#include "metrics/registry.h"

#define BENCH_EDGES   2500
#define BENCH_UPDATES 1000000
#define BENCH_NAME    24

static const char *const edge_labels[] = {"client", "server", "connection_type"};
static const double graph_buckets[] = {0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2,
                                       0.4,   0.8,   1,     1.4,   2,    5,    10,  15};
static const char *const conn_types[] = {"", "database", "virtual_node", "messaging_system"};

static const struct metric_family_def families[] = {
    {"traces_service_graph_request_total", "Requests between two nodes.", METRIC_COUNTER, 3,
     edge_labels, 0, NULL},
    {"traces_service_graph_request_failed_total", "Failed requests between two nodes.",
     METRIC_COUNTER, 3, edge_labels, 0, NULL},
    {"traces_service_graph_request_server_seconds", "Request latency seen by the server.",
     METRIC_HISTOGRAM, 3, edge_labels, 16, graph_buckets},
    {"traces_service_graph_request_client_seconds", "Request latency seen by the client.",
     METRIC_HISTOGRAM, 3, edge_labels, 16, graph_buckets},
};

struct bench_edge {
    char client[BENCH_NAME], server[BENCH_NAME];
    const char *values[3];
    size_t lens[3];
};

static struct bench_edge edges[BENCH_EDGES];

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Edge i: svc-i calls svc-(i+1) (or a user calls it, for every 10th), typed in turn. */
static void bench_edges(void)
{
    for (size_t i = 0; i < BENCH_EDGES; i++) {
        struct bench_edge *e = &edges[i];
        if (i % 10 == 0)
            snprintf(e->client, BENCH_NAME, "user");
        else
            snprintf(e->client, BENCH_NAME, "svc-%05zu", i);
        snprintf(e->server, BENCH_NAME, "svc-%05zu", i + 1);
        e->values[0] = e->client;
        e->values[1] = e->server;
        e->values[2] = conn_types[i % 4];
        for (int k = 0; k < 3; k++)
            e->lens[k] = strlen(e->values[k]);
    }
}

/* One request on edge e: counts, failures for one in 20, latencies over all buckets. */
static void bench_request(struct registry *r, const int *fam, const struct bench_edge *e,
                          uint64_t *rnd, uint64_t now)
{
    double lat = (double)(xorshift(rnd) % 20000) / 1000.0 * ((double)(xorshift(rnd) % 100) / 99.0);
    metric_counter_add(registry_series(r, fam[0], e->values, e->lens, now), 1);
    if (xorshift(rnd) % 20 == 0)
        metric_counter_add(registry_series(r, fam[1], e->values, e->lens, now), 1);
    metric_histogram_observe(registry_series(r, fam[2], e->values, e->lens, now), lat);
    metric_histogram_observe(registry_series(r, fam[3], e->values, e->lens, now), lat * 1.1);
}

static void bench_scrapes(struct registry *r, bool om, int runs)
{
    struct buf b;
    buf_init(&b, 256u << 20);
    double *snap = calloc((size_t)runs, sizeof(double));
    double *total = calloc((size_t)runs, sizeof(double));
    size_t snap_bytes = 0;
    for (int i = -1; i < runs; i++) { /* i == -1: the warm-up */
        buf_reset(&b);
        double t0 = now_ns();
        struct registry_snapshot *s = registry_snapshot(r, 1000, 0, true);
        double t1 = now_ns();
        if (s == NULL || prometheus_write(s, om, &b) != 0) {
            fprintf(stderr, "scrape failed\n");
            exit(1);
        }
        double t2 = now_ns();
        snap_bytes = s->bytes;
        registry_snapshot_free(s);
        if (i >= 0) {
            snap[i] = t1 - t0;
            total[i] = t2 - t0;
        }
    }
    qsort(snap, (size_t)runs, sizeof(double), cmp_double);
    qsort(total, (size_t)runs, sizeof(double), cmp_double);
    printf("%-11s snapshot %6.2f ms (median %6.2f)  snapshot+write %6.2f ms (median %6.2f)"
           "  body %zu bytes, snapshot %zu bytes\n",
           om ? "openmetrics" : "text 0.0.4", snap[0] / 1e6, snap[runs / 2] / 1e6, total[0] / 1e6,
           total[runs / 2] / 1e6, b.len, snap_bytes);
    free(snap);
    free(total);
    buf_free(&b);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 50;
    if (runs < 1)
        runs = 1;
    /* Above the default budget (2,000 per family), as a big deployment would set it. */
    struct registry_options o = {.series_budget = 4000};
    struct registry *r = registry_create(&o);
    int fam[4];
    for (int i = 0; i < 4; i++)
        if (r == NULL || (fam[i] = registry_family(r, &families[i])) < 0) {
            fprintf(stderr, "registry setup failed\n");
            return 1;
        }
    bench_edges();
    uint64_t rnd = 0x2545f4914f6cdd1dull;
    /* Every edge at least once (and a failure), so all 10,000 series exist. */
    for (size_t i = 0; i < BENCH_EDGES; i++) {
        bench_request(r, fam, &edges[i], &rnd, 1);
        metric_counter_add(registry_series(r, fam[1], edges[i].values, edges[i].lens, 1), 1);
    }
    double t0 = now_ns();
    for (uint64_t k = 0; k < BENCH_UPDATES; k++)
        bench_request(r, fam, &edges[xorshift(&rnd) % BENCH_EDGES], &rnd, 2 + k / 1000);
    double per_request = (now_ns() - t0) / BENCH_UPDATES;
    struct registry_stats st;
    registry_get_stats(r, &st);
    printf("registry: %zu families, %zu series, %zu bytes; one request (3-4 series lookups and "
           "updates) %.0f ns\n",
           st.families, st.series, st.bytes_used, per_request);
    bench_scrapes(r, false, runs);
    bench_scrapes(r, true, runs);
    registry_destroy(r);
    return 0;
}
