/* SPDX-License-Identifier: Apache-2.0 */
/* The sampler's knobs and counters beyond the xray__sampler_ops hook of internal.h:
 * the poller's intervals (tests shorten them) and what it has done (tests and debug
 * logs read it). ctx is the sampler context a recorder holds (rec->sampler_ctx). */
#ifndef XRAY_SDK_SAMPLER_H
#define XRAY_SDK_SAMPLER_H

#include <stdint.h>

#include "xray/sampling.h"

/* spec/sampling.md: rules every 300 s + up to 5 s jitter, valid 1 h after the last
 * successful fetch; targets every 10 s + up to 0.1 s jitter. */
#define XRAY__SAMPLER_RULES_INTERVAL_MS   300000u
#define XRAY__SAMPLER_RULES_JITTER_MS     5000u
#define XRAY__SAMPLER_RULES_TTL_MS        3600000u
#define XRAY__SAMPLER_TARGETS_INTERVAL_MS 10000u
#define XRAY__SAMPLER_TARGETS_JITTER_MS   100u
/* Ours: one call to the daemon, connect to last byte. */
#define XRAY__SAMPLER_TIMEOUT_MS 2000u

struct xray__sampler_tuning {
    uint32_t rules_interval_ms, rules_jitter_ms;
    uint32_t targets_interval_ms, targets_jitter_ms;
    uint32_t timeout_ms;
};

/* Replaces the poller's intervals. Call before the first decision (the poller reads
 * them when it starts). Tests only. */
void xray__sampler_tune(void *ctx, const struct xray__sampler_tuning *t);

struct xray__sampler_stats {
    uint64_t rules_fetched;   /* successful GetSamplingRules */
    uint64_t rules_failed;    /* calls that failed or did not parse */
    uint64_t targets_sent;    /* successful SamplingTargets */
    uint64_t targets_failed;  /* calls that failed or did not parse */
    uint64_t statistics_sent; /* SamplingStatisticsDocuments in successful calls */
    bool centralized_live;    /* decisions use the daemon's rules now */
};
/* What the sampler of this process did. Any thread. */
void xray__sampler_stats(void *ctx, struct xray__sampler_stats *out);

/* This process's ClientID (24 hex digits and a NUL); a child of fork() gets a new one
 * on its first call here or decision. Any thread. */
void xray__sampler_client_id(void *ctx, char out[XRAY_SAMPLING_CLIENT_ID_LEN + 1]);

#endif
