/* SPDX-License-Identifier: Apache-2.0 */
/* What the graph knows about its edges beyond the read API's JSON: the connection type
 * the service-graph metrics label them with (service-graph.md, "Metrics from the
 * graph"), and a few counters of graph.c's own. Worker thread only. */
#ifndef XRAYD_GRAPH_EDGES_H
#define XRAYD_GRAPH_EDGES_H

#include <stdbool.h>
#include <stdint.h>

#include "graph/graph.h"

/* Ordered: an edge seen with several keeps the highest, so a database call wins over
 * the inferred node it leads to. */
enum graph_conn {
    GRAPH_CONN_SERVICE = 0,  /* "": instrumented service to instrumented service */
    GRAPH_CONN_VIRTUAL_NODE, /* "virtual_node": to an inferred node */
    GRAPH_CONN_MESSAGING,    /* "messaging_system": to an SQS queue, SNS topic, Kinesis stream */
    GRAPH_CONN_DATABASE,     /* "database": a call with an sql block */
};

/* The label value: "", "virtual_node", "messaging_system" or "database". */
const char *graph_conn_name(enum graph_conn c);

/* The connection type (enum graph_conn) of the edge from (src_name, src_type) to
 * (dst_name, dst_type), or -ENOENT. Types as the nodes have them: "" for a service
 * without origin, "client" for the callers of a root. */
int graph_edge_conn(const struct graph *g, const char *src_name, const char *src_type,
                    const char *dst_name, const char *dst_type);

/* One edge, borrowed for the callback's duration. */
struct graph_edge_view {
    const char *src_name, *src_type;
    const char *dst_name, *dst_type;
    enum graph_conn conn;
    bool from_client; /* src is the client node of a root service */
};

/* Calls cb for every edge (with or without statistics left), in no set order. cb must
 * not change g. */
void graph_foreach_edge(const struct graph *g,
                        void (*cb)(void *ctx, const struct graph_edge_view *e), void *ctx);

/* One request counted on an edge, as the service-graph metrics see it. Strings are
 * borrowed for the callback's duration. */
struct graph_edge_sample {
    const char *client; /* the caller's service; "user" for the callers of a root */
    const char *server;
    enum graph_conn conn;
    uint8_t status;        /* enum digest_status, as the edge counts it */
    double client_seconds; /* the caller's view */
    double server_seconds; /* the callee segment's own when paired, else client_seconds */
};

/* Told of every statistic the graph counts, as it counts it (the metrics registry
 * listens; the graph knows nothing of it). Either callback may be NULL. */
struct graph_observer {
    void (*edge)(void *ctx, const struct graph_edge_sample *e);
    /* A segment counted on its service's node: name, type ("" without origin). */
    void (*segment)(void *ctx, const char *name, const char *type, uint8_t status, double seconds);
    void *ctx;
};

/* Sets the observer (copied; NULL: none). */
void graph_set_observer(struct graph *g, const struct graph_observer *o);

/* Ids left out of the per-trace id map (a trace holding more than it can map): what
 * refers to them went unresolved or unpaired. */
uint64_t graph_ids_overflow(const struct graph *g);

#endif
