/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's list of budgets: each long-lived structure with the bound its owner
 * enforces, a getter for its use and the counter of what its drop policy dropped. It
 * enforces nothing itself; it only reads, on the loop thread. Keep it in step with
 * docs/memory.md. */
#include "memory.h"

#include "api/sampling_proxy.h"
#include "http/client.h"
#include "http/server.h"
#include "ingest/pool.h"
#include "ingest/udp.h"
#include "sampler/decision.h"
#include "segment/scan.h"
#include "stats.h"
#include "pipeline.h"
#include "util.h"
#include "upstream/batcher.h"
#include "upstream/telemetry.h"
#include "upstream/upstream.h"

/* An upload body is at most twice BATCHER_MAX_BYTES (valid JSON escapes to at most
 * twice its size; a lone larger document is at most 64 KB escaped) plus a few bytes a
 * document, in a buffer that doubles: 2 MiB a batch slot. */
#define MEMORY_UPLOAD_SLOT_BYTES (4u * BATCHER_MAX_BYTES)
/* Client calls in flight beside the uploads: the telemetry call and one credentials
 * load (a role's source credentials come before its AssumeRole, never beside it). */
#define MEMORY_CLIENT_OTHER_CALLS 2u
/* Estimates from libcurl's and OpenSSL's buffer sizes, not measured: a call's easy
 * handle (its 16 KiB receive buffer and its state), and a kept connection (TLS record
 * buffers both ways and session state). */
#define MEMORY_CLIENT_CALL_BYTES (32u * 1024)
#define MEMORY_CLIENT_CONN_BYTES (96u * 1024)
/* A remembered trace decision (decision.h: "24 bytes each"). */
#define MEMORY_DECISION_SLOT_BYTES 24u

static size_t memory_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static unsigned memory_concurrency(unsigned c)
{
    c = c ? c : UPSTREAM_CONCURRENCY;
    return c < UPSTREAM_CONCURRENCY_MAX ? c : UPSTREAM_CONCURRENCY_MAX;
}

size_t memory_worker_bytes(size_t capacity)
{
    /* worker.c's two rings (capacity and capacity + 1 slots, rounded up to powers of
     * two by queue.c) and pipeline.c's two reused scanner views. */
    return (memory_pow2(capacity) + memory_pow2(capacity + 1)) * sizeof(void *) +
           2 * sizeof(struct segment_view) + sizeof(void *);
}

size_t memory_udp_bytes(void)
{
    return (size_t)UDP_SLOTS * UDP_SLOT_BYTES;
}

size_t memory_telemetry_bytes(void)
{
    return TELEMETRY_KEPT_MAX * sizeof(struct telemetry_record) + TELEMETRY_BODY_MAX;
}

size_t memory_upload_bytes(unsigned concurrency)
{
    return (size_t)memory_concurrency(concurrency) * MEMORY_UPLOAD_SLOT_BYTES;
}

size_t memory_http_client_bytes(unsigned concurrency)
{
    size_t calls = (size_t)memory_concurrency(concurrency) + SAMPLING_PROXY_MAX_IN_FLIGHT +
                   MEMORY_CLIENT_OTHER_CALLS;
    return calls * (HTTP_CLIENT_MAX_RESPONSE + MEMORY_CLIENT_CALL_BYTES) +
           (size_t)HTTP_CLIENT_MAX_CONNECTIONS * MEMORY_CLIENT_CONN_BYTES;
}

/* ---- getters: ctx is the part ---- */

static size_t memory_pool_used(const void *ctx)
{
    return pool_used_bytes(ctx);
}

static uint64_t memory_spillover(const void *ctx)
{
    struct stats *st = (struct stats *)ctx; /* stats_get() takes no const: it only loads */
    return stats_get(&st->spillover);
}

static uint64_t memory_queue_full(const void *ctx)
{
    struct stats *st = (struct stats *)ctx;
    return stats_get(&st->rejected_by[STATS_REJECT_QUEUE_FULL]);
}

static uint64_t memory_upload_failed(const void *ctx)
{
    struct stats *st = (struct stats *)ctx;
    return stats_get(&st->rejected_by[STATS_REJECT_UPLOAD_FAILED]);
}

static size_t memory_upload_used(const void *ctx)
{
    return upstream_scratch_bytes(ctx);
}

/* The worker's parts: the loop reads what the worker published, never the parts. */
static size_t memory_meter_used(const void *ctx)
{
    return atomic_load(&((const struct pipeline_meter *)ctx)->used);
}

static uint64_t memory_meter_refused(const void *ctx)
{
    return atomic_load(&((const struct pipeline_meter *)ctx)->refused);
}

static int memory_register_worker_parts(struct budgets *bs, const struct pipeline *pl)
{
    static const struct {
        enum pipeline_part part;
        const char *name, *setting, *policy;
    } parts[] = {
        {PIPELINE_ASSEMBLY, "assembly", "--assembly-memory",
         "the oldest trace is completed early (evicted)"},
        {PIPELINE_TAIL, "tail", "--tail-memory",
         "the oldest trace is decided at once by the sampling rules and uploaded"},
        {PIPELINE_GRAPH, "graph", "--graph-memory", "the oldest minutes are dropped"},
        {PIPELINE_STORE, "store", "--store-memory", "the oldest traces are evicted"},
    };
    int rc = 0;
    for (size_t i = 0; i < ARRAY_SIZE(parts) && rc == 0; i++) {
        const struct pipeline_meter *m = pipeline_meter(pl, parts[i].part);
        if (m->limit == 0)
            continue;
        rc = budgets_add(bs, &(struct budget){
                                 .name = parts[i].name,
                                 .setting = parts[i].setting,
                                 .policy = parts[i].policy,
                                 .limit = m->limit,
                                 .used = memory_meter_used,
                                 .refused = memory_meter_refused,
                                 .ctx = m,
                             });
    }
    return rc;
}

/* The client does not count its bytes: what its calls in flight may hold. */
static size_t memory_client_reserved(const void *ctx)
{
    return (size_t)http_client_pending(ctx) * (HTTP_CLIENT_MAX_RESPONSE + MEMORY_CLIENT_CALL_BYTES);
}

static size_t memory_telemetry_used(const void *ctx)
{
    return telemetry_kept(ctx) * sizeof(struct telemetry_record);
}

static uint64_t memory_telemetry_dropped(const void *ctx)
{
    return telemetry_dropped(ctx);
}

static size_t memory_decisions_used(const void *ctx)
{
    return decision_held(ctx) * MEMORY_DECISION_SLOT_BYTES;
}

static uint64_t memory_decisions_evicted(const void *ctx)
{
    struct stats *st = (struct stats *)ctx;
    return stats_get(&st->decisions_evicted);
}

int memory_register(struct budgets *bs, const struct memory_parts *p)
{
    int rc = 0;
    if (p->pool != NULL)
        rc = budgets_add(bs, &(struct budget){
                                 .name = "buffer",
                                 .setting = "--buffer-memory",
                                 .policy = "new datagrams are dropped (spillover)",
                                 .limit = pool_max_bytes(p->pool),
                                 .used = memory_pool_used,
                                 .refused = memory_spillover,
                                 .ctx = p->pool,
                                 .refused_ctx = p->stats,
                             });
    if (rc == 0 && p->worker_capacity > 0)
        rc = budgets_add(bs, &(struct budget){
                                 .name = "worker",
                                 .policy = "documents past its queue are dropped (queue_full)",
                                 .limit = memory_worker_bytes(p->worker_capacity),
                                 .refused = memory_queue_full,
                                 .ctx = p->stats,
                             });
    if (rc == 0 && p->udp)
        rc = budgets_add(bs, &(struct budget){
                                 .name = "udp",
                                 .policy = "the kernel drops what its socket buffer cannot hold",
                                 .limit = memory_udp_bytes(),
                             });
    if (rc == 0 && p->upstream != NULL && p->http_client != NULL)
        rc = budgets_add(bs, &(struct budget){
                                 .name = "upload",
                                 .setting = "Concurrency",
                                 .policy = "batches wait in the buffer; given up after retries",
                                 .limit = memory_upload_bytes(p->concurrency),
                                 .used = memory_upload_used,
                                 .refused = memory_upload_failed,
                                 .ctx = p->upstream,
                                 .refused_ctx = p->stats,
                             });
    if (rc == 0 && p->http_client != NULL)
        rc = budgets_add(bs, &(struct budget){
                                 .name = "http_client",
                                 .policy = "a reply past its cap fails the call; calls past "
                                           "the limits of their callers are refused",
                                 .limit = memory_http_client_bytes(p->concurrency),
                                 .used = memory_client_reserved,
                                 .ctx = p->http_client,
                             });
    if (rc == 0 && p->http != NULL) {
        struct budget b;
        http_server_budget(p->http, &b);
        rc = budgets_add(bs, &b);
    }
    if (rc == 0 && p->pipeline != NULL)
        rc = memory_register_worker_parts(bs, p->pipeline);
    if (rc == 0 && p->telemetry != NULL)
        rc = budgets_add(bs, &(struct budget){
                                 .name = "telemetry",
                                 .policy = "the oldest record is dropped",
                                 .limit = memory_telemetry_bytes(),
                                 .used = memory_telemetry_used,
                                 .refused = memory_telemetry_dropped,
                                 .ctx = p->telemetry,
                             });
    if (rc == 0 && p->decision != NULL)
        rc = budgets_add(bs,
                         &(struct budget){
                             .name = "sampling_decisions",
                             .policy = "the least recently seen trace of a full set is "
                                       "forgotten",
                             .limit = decision_capacity(p->decision) * MEMORY_DECISION_SLOT_BYTES,
                             .used = memory_decisions_used,
                             .refused = memory_decisions_evicted,
                             .ctx = p->decision,
                             .refused_ctx = p->stats,
                         });
    return rc;
}
