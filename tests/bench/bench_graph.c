/* SPDX-License-Identifier: Apache-2.0 */
/* Cost of graph_add_trace() per trace, for 3-document traces shaped like a web -> api
 * -> db chain (api also calls DynamoDB, SQS and an uninstrumented host), drawn from a
 * small system (10 services) and a large one (10,000 services, ~6 edges each; a ring
 * of 65,536 prepared traces picks the web service at random). The
 * clock advances 2,000 traces per simulated second, so each run crosses minutes and
 * pays for new per-minute blocks; graph_expire() runs every simulated minute, and
 * graph_tick() every 100 simulated ms, as the daemon's idle callback does: the three
 * calls nobody answers wait their 10 s, then become edges to inferred nodes. The
 * cost should be the same order for both: a trace costs O(its documents + calls).
 * Each size runs 5 times after a warm-up pass; fastest and median are reported.
 * Then the end-to-end benchmark's traffic: 200,000 one-document traces per simulated
 * second, a root calling a remote host and DynamoDB, both calls waiting (in the
 * daemon's default 16 MiB graph the ring is full and expires them early; in 1 GiB they
 * wait their whole window), with the durations varied as above, then all alike as the
 * load generator sends them.
 *   bench_graph [traces per run] [services]  (default 500,000; all sizes) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph/graph.h"

#define BENCH_RING       65536
#define BENCH_RUNS       5
#define BENCH_PER_SECOND 2000.0
#define BENCH_TICK_S     0.1 /* the pipeline's idle callback */
#define BENCH_E2E_RATE   200000.0
#define BENCH_E2E_RING   1024 /* 10 services: variety enough, and in cache */
#define BENCH_T0         1700000040.0
#define BENCH_NAME_LEN   40

struct bench_trace {
    struct digest_doc doc[3];
    struct digest_call calls[6];
    uint64_t ids[6];
};

static char (*names)[BENCH_NAME_LEN];
static uint64_t spread = 997; /* distinct durations per document: 1 for the load generator's */

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

/* Names of system size n: svc-i, table-i, queue-i, host-i.example.com at 4i..4i+3. */
static void bench_names(size_t n)
{
    free(names);
    names = malloc(4 * n * sizeof(*names));
    for (size_t i = 0; i < n; i++) {
        snprintf(names[4 * i], BENCH_NAME_LEN, "svc-%05zu", i);
        snprintf(names[4 * i + 1], BENCH_NAME_LEN, "table-%05zu", i);
        snprintf(names[4 * i + 2], BENCH_NAME_LEN, "queue-%05zu", i);
        snprintf(names[4 * i + 3], BENCH_NAME_LEN, "host-%05zu.example.com", i);
    }
}

static void bench_call(struct digest_doc *d, uint64_t id, const char *name, uint8_t ns, bool traced,
                       const char *resource, const char *type)
{
    struct digest_call *c = &d->calls[d->ncalls++];
    *c = (struct digest_call){.id = id,
                              .ns = ns,
                              .traced = traced,
                              .name = name,
                              .resource = resource,
                              .resource_type = type};
    d->ids[d->nids++] = id;
}

/* Trace k of a system of n services: web = svc-i, api = svc-(i+1), db = svc-(i+2). */
static void bench_make(struct bench_trace *t, size_t n, uint64_t k, uint64_t *rnd)
{
    memset(t, 0, sizeof(*t));
    size_t i = (size_t)(xorshift(rnd) % n), j = (i + 1) % n, m = (i + 2) % n;
    uint64_t base = (k + 1) << 8;
    struct digest_doc *web = &t->doc[0], *api = &t->doc[1], *db = &t->doc[2];
    web->calls = &t->calls[0];
    web->ids = &t->ids[0];
    api->calls = &t->calls[1];
    api->ids = &t->ids[1];
    web->id = base;
    web->name = names[4 * i];
    web->origin = "AWS::EC2::Instance";
    bench_call(web, base + 1, names[4 * j], DIGEST_NS_REMOTE, true, names[4 * j], "remote");
    api->id = base + 2;
    api->parent_id = base + 1;
    api->name = names[4 * j];
    api->origin = "AWS::ECS::Container";
    bench_call(api, base + 3, "DynamoDB", DIGEST_NS_AWS, false, names[4 * j + 1],
               "AWS::DynamoDB::Table");
    bench_call(api, base + 4, "SQS", DIGEST_NS_AWS, false, names[4 * j + 2], "AWS::SQS::Queue");
    bench_call(api, base + 5, names[4 * j + 3], DIGEST_NS_REMOTE, false, names[4 * j + 3],
               "remote");
    bench_call(api, base + 6, names[4 * m], DIGEST_NS_REMOTE, true, names[4 * m], "remote");
    db->id = base + 7;
    db->parent_id = base + 6;
    db->name = names[4 * m];
    db->origin = "";
    web->next = api;
    api->next = db;
}

static uint64_t bench_shift(uint64_t id, uint64_t delta)
{
    return id != 0 ? id + delta : 0;
}

/* Gives trace t the ids of trace k: each pass over the ring is new traces, so a call
 * still waiting from an earlier pass is never answered by this one. */
static void bench_reid(struct bench_trace *t, uint64_t k)
{
    uint64_t delta = ((k + 1) << 8) - t->doc[0].id;
    for (int i = 0; i < 3; i++) {
        struct digest_doc *doc = &t->doc[i];
        doc->id = bench_shift(doc->id, delta);
        doc->parent_id = bench_shift(doc->parent_id, delta);
        for (size_t c = 0; c < doc->ncalls; c++)
            doc->calls[c].id += delta;
        for (size_t c = 0; c < doc->nids; c++)
            doc->ids[c] += delta;
    }
}

/* Moves trace t to now: ids, times and arrivals (a few ms apart), durations varied so
 * the histograms fill. */
static void bench_retime(struct bench_trace *t, double now, uint64_t k)
{
    bench_reid(t, k);
    double d = (double)(k % spread) / 1000.0;
    uint64_t arrived = (uint64_t)(now * 1000.0);
    for (int i = 0; i < 3; i++) {
        struct digest_doc *doc = &t->doc[i];
        doc->start = now - 1.0 + 0.01 * i;
        doc->end = doc->start + 0.05 + d / (i + 1);
        doc->status = (uint8_t)(k % 50 == 0 ? DIGEST_FAULT : DIGEST_OK);
        doc->arrived_ms = arrived + (uint64_t)i;
        for (size_t c = 0; c < doc->ncalls; c++) {
            doc->calls[c].start = doc->start + 0.001;
            doc->calls[c].end = doc->end - 0.001;
        }
    }
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench_print_stats(const struct graph *g)
{
    struct graph_stats st;
    graph_get_stats(g, &st);
    printf("        paired %llu expired_callers %llu (early %llu) pending %zu unindexed %llu late "
           "%llu\n",
           (unsigned long long)st.paired, (unsigned long long)st.expired_callers,
           (unsigned long long)st.expired_early, st.pending, (unsigned long long)st.unindexed,
           (unsigned long long)st.late);
    if (st.dropped || st.evicted_minutes)
        printf("        (dropped %llu, evicted minutes %llu)\n", (unsigned long long)st.dropped,
               (unsigned long long)st.evicted_minutes);
}

/* Runs count traces of ring (mask + 1 of them) through g from trace *k on, at rate
 * traces per simulated second; ns per trace. */
static double bench_run(struct graph *g, struct bench_trace *ring, uint64_t mask, long count,
                        uint64_t *k, double rate, double *last_expire, double *last_tick)
{
    double t0 = now_ns();
    for (long i = 0; i < count; i++, (*k)++) {
        struct bench_trace *t = &ring[*k & mask];
        double now = BENCH_T0 + (double)*k / rate;
        bench_retime(t, now, *k);
        graph_add_trace(g, t->doc, false, now, (uint64_t)(now * 1000.0));
        if (now - *last_tick >= BENCH_TICK_S) {
            graph_tick(g, (uint64_t)(now * 1000.0), now);
            *last_tick = now;
        }
        if (now - *last_expire >= 60) {
            graph_expire(g, now);
            *last_expire = now;
        }
    }
    return (now_ns() - t0) / (double)count;
}

static void bench_size(size_t n, long iters)
{
    bench_names(n);
    struct bench_trace *ring = malloc(BENCH_RING * sizeof(*ring));
    uint64_t rnd = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < BENCH_RING; k++)
        bench_make(&ring[k], n, k, &rnd);
    struct graph_options o = {.max_bytes = (size_t)1 << 30, .retention_min = 60};
    struct graph *g = graph_create(&o);
    double last_expire = BENCH_T0, last_tick = BENCH_T0;
    uint64_t k = 0;
    double run[BENCH_RUNS];
    for (int r = -1; r < BENCH_RUNS; r++) { /* r == -1: warm-up, creates the graph */
        long count = r < 0 ? (long)(n * 4 > BENCH_RING ? n * 4 : BENCH_RING) : iters;
        double ns = bench_run(g, ring, BENCH_RING - 1, count, &k, BENCH_PER_SECOND, &last_expire,
                              &last_tick);
        if (r >= 0)
            run[r] = ns;
    }
    struct graph_stats st;
    graph_get_stats(g, &st);
    qsort(run, BENCH_RUNS, sizeof(run[0]), bench_cmp);
    printf("%6zu services  %6zu nodes %7zu edges %8.1f MiB  %7.0f ns/trace fastest %7.0f "
           "median  (%d x %ld)\n",
           n, st.nodes, st.edges, (double)st.bytes_used / (1 << 20), run[0], run[BENCH_RUNS / 2],
           BENCH_RUNS, iters);
    bench_print_stats(g);
    graph_destroy(g);
    free(ring);
}

/* The end-to-end benchmark's document: checkout-api (root) calls payments.example.com
 * (remote) and DynamoDB (table orders); services and tables vary over n. */
static void bench_make_e2e(struct bench_trace *t, size_t n, uint64_t k, uint64_t *rnd)
{
    memset(t, 0, sizeof(*t));
    size_t i = (size_t)(xorshift(rnd) % n);
    uint64_t base = (k + 1) << 8;
    struct digest_doc *root = &t->doc[0];
    root->calls = t->calls;
    root->ids = t->ids;
    root->id = base;
    root->name = names[4 * i];
    root->origin = "AWS::ECS::Container";
    bench_call(root, base + 1, names[4 * i + 3], DIGEST_NS_REMOTE, false, names[4 * i + 3],
               "remote");
    bench_call(root, base + 2, "DynamoDB", DIGEST_NS_AWS, false, names[4 * i + 1],
               "AWS::DynamoDB::Table");
}

static void bench_e2e(size_t max_mib, uint64_t durations, long iters)
{
    spread = durations;
    const size_t n = 10;
    bench_names(n);
    struct bench_trace *ring = malloc(BENCH_E2E_RING * sizeof(*ring));
    uint64_t rnd = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < BENCH_E2E_RING; k++)
        bench_make_e2e(&ring[k], n, k, &rnd);
    struct graph_options o = {.max_bytes = max_mib << 20, .retention_min = 60};
    struct graph *g = graph_create(&o);
    double last_expire = BENCH_T0, last_tick = BENCH_T0;
    uint64_t k = 0;
    double run[BENCH_RUNS];
    /* Warm-up: 15 simulated s, so the ring is in its steady state (full, or expiring). */
    bench_run(g, ring, BENCH_E2E_RING - 1, (long)(15 * BENCH_E2E_RATE), &k, BENCH_E2E_RATE,
              &last_expire, &last_tick);
    for (int r = 0; r < BENCH_RUNS; r++)
        run[r] = bench_run(g, ring, BENCH_E2E_RING - 1, iters, &k, BENCH_E2E_RATE, &last_expire,
                           &last_tick);
    qsort(run, BENCH_RUNS, sizeof(run[0]), bench_cmp);
    struct graph_stats st;
    graph_get_stats(g, &st);
    printf("%6zu MiB graph, %3llu durations  %7.1f MiB  %7.0f ns/trace fastest %7.0f median  (%d x "
           "%ld)\n",
           max_mib, (unsigned long long)durations, (double)st.bytes_used / (1 << 20), run[0],
           run[BENCH_RUNS / 2], BENCH_RUNS, iters);
    bench_print_stats(g);
    graph_destroy(g);
    free(ring);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 500000;
    size_t only = argc > 2 ? (size_t)atol(argv[2]) : 0;
    printf("graph_add_trace, 3 documents and 5 calls per trace, %.0f traces per simulated s\n",
           BENCH_PER_SECOND);
    size_t sizes[] = {10, 1000, 10000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        if (only == 0 || only == sizes[i])
            bench_size(sizes[i], iters);
    if (only == 0 || only == 1) {
        printf("graph_add_trace, 1 document and 2 calls per trace (root -> remote, aws), %.0f "
               "traces per simulated s, 10 services\n",
               BENCH_E2E_RATE);
        bench_e2e(16, 997, iters);
        bench_e2e(1024, 997, iters);
        bench_e2e(16, 1, iters); /* the load generator's documents all have the same times */
    }
    free(names);
    return 0;
}
