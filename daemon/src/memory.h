/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's memory budgets: which long-lived structures it has, the bound of each
 * and how its use is read, entered into one registry (budget.h) that /healthz and
 * /metrics print. docs/memory.md is the same list in prose, with the ceiling. */
#ifndef XRAYD_MEMORY_H
#define XRAYD_MEMORY_H

#include <stdbool.h>
#include <stddef.h>

#include "budget.h"

struct pool;
struct stats;
struct upstream;
struct pipeline;
struct http_server;
struct http_client;
struct telemetry;
struct decision;

/* The parts, all borrowed; they must outlive every read of the registry. NULL parts
 * are absent (no store with the aws upstream, no HTTP client with local). */
struct memory_parts {
    const struct pool *pool;
    struct stats *stats;
    size_t worker_capacity; /* what worker_start() was given; 0: no worker */
    bool udp;               /* the UDP receiver runs */
    const struct upstream *upstream;
    unsigned concurrency;            /* the configured Concurrency */
    const struct pipeline *pipeline; /* the worker's parts: assembly, tail, graph, store */
    const struct http_server *http;
    const struct http_client *http_client;
    const struct telemetry *telemetry;
    const struct decision *decision; /* --sampling-head: the per-trace decisions */
};

/* Adds an entry per part present, in the order of docs/memory.md. 0, or the error of
 * budgets_add(). Loop thread, once every part exists. */
int memory_register(struct budgets *bs, const struct memory_parts *p);

/* The bytes the fixed parts hold whatever the load, computed as memory_register()
 * does: the worker's rings and scanner view for capacity, the UDP slab, telemetry. */
size_t memory_worker_bytes(size_t capacity);
size_t memory_udp_bytes(void);
size_t memory_telemetry_bytes(void);
/* The bound of upload bodies for a Concurrency, and of HTTP client replies. */
size_t memory_upload_bytes(unsigned concurrency);
size_t memory_http_client_bytes(unsigned concurrency);

#endif
