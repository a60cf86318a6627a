/* SPDX-License-Identifier: Apache-2.0 */
/* The TCP side when xrayd is the sampling authority (spec/sampling.md, "Who answers the
 * SDKs' sampling calls": a rules file given, or the local upstream): POST
 * /GetSamplingRules, /SamplingTargets and /SamplingStatisticSummaries are answered here,
 * from the rules in force, with targets computed by libxray_sampling's authority. With
 * full fidelity, SDKs are served the same rules at FixedRate 1.0 and targets with no
 * quota, so they send everything; xrayd applies the real rules itself. Loop thread
 * only. */
#ifndef XRAYD_API_SAMPLING_AUTHORITY_H
#define XRAYD_API_SAMPLING_AUTHORITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xray/sampling.h>

#include "error.h"

struct http_server;

/* GetSamplingRules and GetSamplingStatisticSummaries take at most a NextToken: a body
 * larger than this is not one of theirs. */
#define SAMPLING_AUTHORITY_SMALL_BODY_MAX 4096

struct sampling_authority_options {
    bool full_fidelity;
    /* Epoch milliseconds; NULL: the system's wall clock. */
    uint64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
    /* Passed to libxray_sampling's authority (zeros: its defaults). */
    struct xray_sampling_authority_config config;
};

struct sampling_authority_stats {
    uint64_t rules_calls;     /* GetSamplingRules answered 200 */
    uint64_t targets_calls;   /* SamplingTargets answered 200 */
    uint64_t summaries_calls; /* SamplingStatisticSummaries answered 200 */
    uint64_t bad_requests;    /* 400 InvalidRequestException */
    uint64_t failures;        /* 500: out of memory */
    uint64_t rule_changes;    /* rule sets put in force after the first */
};

/* One answer: status 200 with a JSON body, or 400/500 with the AWS error shape
 * {"__type": error_type, "message": ...}. body is owned (free()). */
struct sampling_authority_reply {
    int status;
    const char *error_type; /* NULL on 200 */
    char *body;
    size_t len;
};

struct sampling_authority;

/* Serves rules (a reference is taken). NULL on ENOMEM. */
struct sampling_authority *sampling_authority_create(const struct sampling_authority_options *o,
                                                     struct xray_sampling_rules *rules);
/* After the server that routes to it is closed. NULL is ignored. */
void sampling_authority_destroy(struct sampling_authority *a);

/* Serves rules from now on (a reference is taken): LastRuleModification becomes now, so
 * SDKs fetch the rules again at their next targets call. Clients' shares of rules kept
 * by name stay. 0 or -ENOMEM (the old rules stay). */
int sampling_authority_set_rules(struct sampling_authority *a, struct xray_sampling_rules *rules);

/* The three routes, POST, on HTTP_ROLE_TCP. Register them before the sampling proxy (the
 * TCP role's catch-all). a must outlive s. 0 or the error of http_server_route(). */
int sampling_authority_register(struct http_server *s, struct sampling_authority *a);

/* What a route answers for path (one of the three, exactly) and body, at now_ms: no
 * sockets (the route handlers call it; so do tests). 0 with *out filled, or -EINVAL for
 * another path. */
int sampling_authority_answer(struct sampling_authority *a, const char *path, const char *body,
                              size_t len, uint64_t now_ms, struct sampling_authority_reply *out);

void sampling_authority_get_stats(const struct sampling_authority *a,
                                  struct sampling_authority_stats *out);
/* libxray_sampling's authority (its counters, outstanding grants); borrowed. */
const struct xray_sampling_authority *sampling_authority_core(const struct sampling_authority *a);

#endif
