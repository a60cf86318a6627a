/* SPDX-License-Identifier: Apache-2.0 */
/* GET /healthz on every listener, and the client side of `xrayd --health-check`. The
 * body has exactly the keys of the compatibility spec: status, version, uptime_s,
 * upstream, upstream_reason, last_upstream_error, queues, memory. */
#ifndef XRAYD_API_HEALTHZ_H
#define XRAYD_API_HEALTHZ_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define HEALTHZ_MAX_ENTRIES  16 /* queues, and memory entries beside the budgets */
#define HEALTHZ_DEFAULT_ADDR "127.0.0.1:2000"

struct http_server;
struct budgets;

enum healthz_status { HEALTHZ_OK, HEALTHZ_DEGRADED, HEALTHZ_SHUTTING_DOWN };

struct healthz_entry {
    const char *name; /* a JSON object key */
    uint64_t value;
};

/* What the daemon says about itself. The snapshot callback fills a zeroed one; every
 * string it points to must stay valid until the callback's caller returns (static
 * strings, or fields of the callback's data). */
struct healthz_snapshot {
    enum healthz_status status; /* 503 when HEALTHZ_SHUTTING_DOWN, else 200 */
    const char *version;        /* NULL: this build's version */
    uint64_t uptime_s;
    const char *upstream;                             /* "aws" | "local" */
    const char *upstream_reason;                      /* why that upstream was chosen */
    const char *last_upstream_error;                  /* NULL: JSON null */
    struct healthz_entry queues[HEALTHZ_MAX_ENTRIES]; /* name -> depth */
    size_t queue_count;
    /* "memory": for each budget "<name>": bytes in use and "<name>_max": its limit,
     * then "total" and "total_max" over them (the ceiling less the fixed overhead),
     * then the entries of memory[]. budgets NULL: memory[] only. */
    const struct budgets *budgets;
    struct healthz_entry memory[HEALTHZ_MAX_ENTRIES]; /* name -> bytes */
    size_t memory_count;
};

/* Adds GET /healthz on every role; each request calls snapshot(data, out) on the loop
 * thread. 0, -ENOMEM or the error of http_server_route(). */
int healthz_register(struct http_server *s,
                     void (*snapshot)(void *data, struct healthz_snapshot *out), void *data);

/* Blocking: GET /healthz on addr (NULL = HEALTHZ_DEFAULT_ADDR; 0.0.0.0 and [::] mean
 * this host's loopback) within timeout_ms. Returns 0 when it answered 200, else 1 with
 * err (optional) saying why. For `xrayd --health-check` in a short-lived process. */
int healthz_probe(const char *addr, int timeout_ms, char err[XRAY_ERR_LEN]);

#endif
