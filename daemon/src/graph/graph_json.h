/* SPDX-License-Identifier: Apache-2.0 */
/* GetServiceGraph's "Services" array from the graph's storage (internal to graph/).
 * Worker thread only. */
#ifndef XRAYD_GRAPH_JSON_H
#define XRAYD_GRAPH_JSON_H

#include <stddef.h>

#include "buf.h"
#include "graph/graph_table.h"

/* graph_write_services() on t: same arguments, same results. */
int graph_json_services(const struct graph_table *t, double start_s, double end_s, size_t first,
                        size_t limit, struct buf *out, size_t *next);

#endif
