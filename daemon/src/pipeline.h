/* SPDX-License-Identifier: Apache-2.0 */
/* The worker's stages, in order, for one document: scan (validate and extract), and —
 * as later parts land — assembly, the service graph, metrics and the sampling
 * decision. The only file that knows all the stages. Worker thread only. */
#ifndef XRAYD_PIPELINE_H
#define XRAYD_PIPELINE_H

#include "ingest/pool.h"
#include "stats.h"

struct pipeline;

/* NULL on ENOMEM. stats is borrowed. */
struct pipeline *pipeline_create(struct stats *stats);
void pipeline_destroy(struct pipeline *p);

/* Runs every stage on doc. On return doc->reject is -1 (forward it) or the enum
 * stats_reject saying why not; trace_id, id, flags and times are filled in. The
 * rejection is counted by the loop when the document comes back, not here. Matches
 * struct worker's process callback. */
void pipeline_process(struct doc *doc, void *pipeline);

#endif
