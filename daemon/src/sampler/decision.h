/* SPDX-License-Identifier: Apache-2.0 */
/* The per-trace head decision (--sampling-head, --full-fidelity): one sampling decision
 * per trace id, made from the rules when the trace's first document is seen and
 * remembered, so every later document of the trace (other services' segments, streamed
 * subsegments, late arrivals) follows it. The memory is a fixed table of 8-way sets:
 * bounded, expiring, with every eviction and expiry counted. Decisions use a LOCAL
 * xray_sampling_state: each rule's ReservoirSize per second, then its FixedRate. Worker
 * thread only, unless a function says otherwise. */
#ifndef XRAYD_SAMPLER_DECISION_H
#define XRAYD_SAMPLER_DECISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xray/sampling.h>

#include "sampler/rules_holder.h"
#include "stats.h"

/* Traces remembered: 24 bytes each, 3 MiB. At 10,000 new traces a second a decision
 * lives about 13 s before it is evicted; late documents after that are decided again. */
#define DECISION_DEFAULT_CAPACITY (1u << 17)
/* A trace is forgotten this long after its last document. */
#define DECISION_DEFAULT_TTL_S 300
#define DECISION_WAYS          8 /* slots per set: a full set evicts its least recently seen */
/* Per-rule counters: rules beyond the first DECISION_RULE_SLOTS - 1 names seen share
 * the last entry, named DECISION_OTHER_RULES. */
#define DECISION_RULE_SLOTS  32
#define DECISION_OTHER_RULES "(other rules)"

struct decision_options {
    uint32_t capacity; /* traces; 0: the default; rounded up to a power of two >= WAYS */
    uint32_t ttl_s;    /* 0: the default */
    uint64_t seed;     /* of the FixedRate draws; 0: from the system's random source */
};

/* Counts for one rule name, since start (across reloads). */
struct decision_rule_stats {
    char rule_name[XRAY_SAMPLING_NAME_BYTES + 1];
    uint64_t traces_kept, traces_dropped; /* decisions */
    uint64_t docs_kept, docs_dropped;     /* documents that followed them, first ones included */
};

struct decision;

/* stats (borrowed, must outlive the decision) receives the decisions by reason, the
 * documents kept and sampled out, evictions and expiries. NULL on ENOMEM. Any thread,
 * before the worker uses it. */
struct decision *decision_create(const struct decision_options *o, struct stats *stats);
/* Once no thread uses d. NULL is ignored. */
void decision_destroy(struct decision *d);
/* Where new rule sets arrive (rules_holder_subscribe() it); until the first arrives,
 * every trace is kept (counted as kept_no_rules). */
struct rules_mailbox *decision_mailbox(struct decision *d);

/* The decision remembered for trace_id (NUL-terminated), refreshing its age: 1 keep,
 * 0 drop (the document is counted either way), or -1 when the trace is unknown or was
 * forgotten: call decision_decide(). */
int decision_lookup(struct decision *d, const char *trace_id, uint64_t now_ms);
/* Decides a new trace from req (its first document's attributes) with the newest rules
 * (taken from the mailbox first), remembers it and counts it and its first document.
 * now_ms is epoch milliseconds. Returns true to keep. */
bool decision_decide(struct decision *d, const char *trace_id,
                     const struct xray_sampling_request *req, uint64_t now_ms);

/* Remembers trace_id as kept whatever the rules say (a tail option kept it) and counts
 * the decision under why; no document is counted. */
void decision_keep(struct decision *d, const char *trace_id, enum stats_decision why,
                   uint64_t now_ms);
/* Counts n documents that followed a decision without a lookup: the documents held
 * for a tail decision, released once it was made. */
void decision_count_docs(struct decision *d, bool keep, uint64_t n);

/* Traces remembered now, and the table's capacity. Any thread. */
size_t decision_held(const struct decision *d);
size_t decision_capacity(const struct decision *d);
/* Up to max per-rule entries, in the order the names were first seen; returns how many.
 * Any thread (counters are read one by one, not as a snapshot). */
size_t decision_rule_stats(const struct decision *d, struct decision_rule_stats *out, size_t max);
/* Logs the totals: one line, then one per rule. Loop thread, after the worker joined
 * (or any time: counters only). */
void decision_log_totals(const struct decision *d);

#endif
