/* SPDX-License-Identifier: Apache-2.0 */
/* The upload retry policy (daemon-compat.md, "Batching and upload"): which failures
 * are retried, split or final, and how long to wait before the next attempt.
 * Exponential backoff from min to max, doubling, with equal jitter; Retry-After is
 * honoured; attempts and time since the first attempt are budgeted. Pure: time and
 * randomness are parameters. */
#ifndef XRAYD_RETRY_H
#define XRAYD_RETRY_H

#include <stdint.h>

/* The defaults of --retry-attempts, --retry-budget, --retry-backoff-min/-max. */
#define RETRY_ATTEMPTS       6u     /* per batch, the first included */
#define RETRY_BUDGET_MS      30000u /* from the first attempt to the start of the last */
#define RETRY_BACKOFF_MIN_MS 100u
#define RETRY_BACKOFF_MAX_MS 5000u
/* A whole-call 400 on several documents is split in halves at most this often, so a
 * batch is cut down to quarters at most (daemon-compat.md). */
#define RETRY_SPLIT_MAX 2u

/* 0 in any field means its default. */
struct retry_policy {
    unsigned attempts;
    uint64_t budget_ms;
    uint64_t backoff_min_ms;
    uint64_t backoff_max_ms; /* held at backoff_min_ms or above */
};

/* What to do after an attempt. */
enum retry_verdict {
    RETRY_DONE,   /* acknowledged: nothing more to do */
    RETRY_AGAIN,  /* a transient failure: try again after retry_delay_ms() */
    RETRY_SPLIT,  /* a whole-call 400 on several documents: send each half on its own */
    RETRY_REJECT, /* final: another 4xx, or a request that can never succeed */
    RETRY_CLOSED, /* the transport is closing: give the documents up now */
};

/* A uniform random 32-bit value, e.g. from the core's generator; tests pass fixed
 * sources. Replaceable as a whole (STYLE rule 24). */
struct retry_random {
    uint32_t (*next)(void *ctx);
    void *ctx;
};

/* The policy with every 0 field replaced by its default and max >= min. */
struct retry_policy retry_policy_normalize(const struct retry_policy *p);

/* Classifies an attempt. status: 0 when the upstream acknowledged it, else the
 * negative code the send failed with (xray_result_error(): XRAY_EUPSTREAM for an HTTP
 * error status, XRAY_ETIMEOUT, -ECONNREFUSED, -EHOSTUNREACH, -EIO, ...; or what the
 * sender returned before anything was sent: XRAY_ENOCREDS, XRAY_EFULL, -ENOMEM are
 * transient, XRAY_ECLOSED and -ECANCELED mean closing, anything else is final).
 * http_status: the response's status, 0 when none arrived. count: documents in the
 * attempt; splits: how often they were split already. Pure. */
enum retry_verdict retry_classify(int status, int http_status, unsigned count, unsigned splits);

/* The delay in ms before the next attempt, or -1 to give up. attempts: attempts made
 * so far (>= 1); first_ms: when the first of them started; now_ms: now on the same
 * clock; retry_after_ms: the last response's Retry-After, -1 if none; rnd: a uniform
 * random value. The ceiling is min(max, min * 2^(attempts-1)); the delay is uniform
 * in [max(min, ceiling/2), ceiling] (equal jitter, never below min), then at least
 * Retry-After. -1 when attempts reached p->attempts or when now + delay is past
 * first_ms + p->budget_ms (a Retry-After past the budget gives up, never retries
 * sooner than it asks). p must be normalized. Pure. */
int64_t retry_delay_ms(const struct retry_policy *p, unsigned attempts, uint64_t first_ms,
                       uint64_t now_ms, int64_t retry_after_ms, uint32_t rnd);

/* Text of a verdict, for logs. */
const char *retry_verdict_name(enum retry_verdict v);

#endif
