/* SPDX-License-Identifier: Apache-2.0 */
/* The worker's stages, in order, for one document: scan (validate and extract), then —
 * as later parts land — assembly, the service graph and metrics, then the sampling
 * decision. The only file that knows all the stages. Worker thread only. */
#ifndef XRAYD_PIPELINE_H
#define XRAYD_PIPELINE_H

#include "ingest/pool.h"
#include "sampler/decision.h"
#include "sampler/rules_holder.h"
#include "stats.h"

/* doc->reject of a valid document that its trace's sampling decision dropped: the loop
 * frees it without uploading; the worker already counted it (stats.sampled_out), and it
 * is not a rejection. */
#define PIPELINE_SAMPLED_OUT (-2)

struct pipeline;

/* NULL on ENOMEM. stats is borrowed. */
struct pipeline *pipeline_create(struct stats *stats);
void pipeline_destroy(struct pipeline *p);

/* Adds the sampling decision stage (--sampling-head, --full-fidelity): one decision per
 * trace from the rules of holder, which the pipeline subscribes to. o may be NULL (the
 * defaults). Loop thread, before the worker starts. 0, -ENOMEM or -ENOSPC. */
int pipeline_enable_sampling(struct pipeline *p, struct rules_holder *holder,
                             const struct decision_options *o);
/* The decision stage (its counters and totals), or NULL when it is off. */
struct decision *pipeline_decision(struct pipeline *p);

/* Runs every stage on doc. On return doc->reject is -1 (forward it),
 * PIPELINE_SAMPLED_OUT, or the enum stats_reject saying why not; trace_id, id, flags
 * and times are filled in. The
 * rejection is counted by the loop when the document comes back, not here. Matches
 * struct worker's process callback. */
void pipeline_process(struct doc *doc, void *pipeline);

#endif
