/* SPDX-License-Identifier: Apache-2.0 */
/* The retry policy as plain arithmetic: no clock, no generator, no state. The core
 * (upstream.c) keeps the attempt counts and times and asks here what to do next.
 * Equal jitter keeps each wait within a factor of two of the doubling ceiling, so
 * backoff still grows while batches that failed together spread out; full jitter
 * could retry at once after a long outage and would undercut the configured minimum. */
#include "upstream/retry.h"

#include <errno.h>
#include <stddef.h>

#include "error.h"

struct retry_policy retry_policy_normalize(const struct retry_policy *p)
{
    struct retry_policy n = {0};
    if (p != NULL)
        n = *p;
    if (n.attempts == 0)
        n.attempts = RETRY_ATTEMPTS;
    if (n.budget_ms == 0)
        n.budget_ms = RETRY_BUDGET_MS;
    if (n.backoff_min_ms == 0)
        n.backoff_min_ms = RETRY_BACKOFF_MIN_MS;
    if (n.backoff_max_ms == 0)
        n.backoff_max_ms = RETRY_BACKOFF_MAX_MS;
    if (n.backoff_max_ms < n.backoff_min_ms)
        n.backoff_max_ms = n.backoff_min_ms;
    return n;
}

enum retry_verdict retry_classify(int status, int http_status, unsigned count, unsigned splits)
{
    switch (status) {
    case 0:
        return RETRY_DONE;
    case XRAY_EUPSTREAM:
        if (http_status == 429 || http_status >= 500 || http_status == 0)
            return RETRY_AGAIN; /* throttled, the service's fault, or no status at all */
        if (http_status == 400 && count > 1 && splits < RETRY_SPLIT_MAX)
            return RETRY_SPLIT;
        return RETRY_REJECT; /* another 4xx (or a 1xx/3xx nobody follows): never retried */
    case XRAY_ETIMEOUT:
    case -ECONNREFUSED:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
    case -ECONNRESET:
    case -ETIMEDOUT:
    case -EPIPE:
    case -EIO:
    case -EAGAIN:
    case -ENOMEM:
    case XRAY_EFULL:    /* the HTTP client had no room: later there will be */
    case XRAY_ENOCREDS: /* credentials may come (daemon-compat.md: retried) */
        return RETRY_AGAIN;
    case XRAY_ECLOSED:
    case -ECANCELED:
        return RETRY_CLOSED;
    default:
        /* XRAY_ETOOBIG (a body that cannot be built, or an absurd response),
         * XRAY_EPARSE (could not sign), -EINVAL: the same call would fail again. */
        return RETRY_REJECT;
    }
}

int64_t retry_delay_ms(const struct retry_policy *p, unsigned attempts, uint64_t first_ms,
                       uint64_t now_ms, int64_t retry_after_ms, uint32_t rnd)
{
    if (attempts == 0)
        attempts = 1;
    if (attempts >= p->attempts)
        return -1;
    uint64_t ceiling = p->backoff_min_ms;
    for (unsigned i = 1; i < attempts && ceiling < p->backoff_max_ms; i++)
        ceiling *= 2;
    if (ceiling > p->backoff_max_ms)
        ceiling = p->backoff_max_ms;
    uint64_t lo = ceiling / 2 > p->backoff_min_ms ? ceiling / 2 : p->backoff_min_ms;
    if (lo > ceiling)
        lo = ceiling;
    /* Multiply-shift maps rnd onto [0, span] evenly: rnd 0 gives lo, UINT32_MAX gives
     * ceiling. */
    uint64_t span = ceiling - lo;
    uint64_t delay = lo + (span >= UINT32_MAX ? (uint64_t)rnd : ((uint64_t)rnd * (span + 1)) >> 32);
    if (retry_after_ms > 0 && (uint64_t)retry_after_ms > delay)
        delay = (uint64_t)retry_after_ms;
    uint64_t spent = now_ms > first_ms ? now_ms - first_ms : 0;
    if (spent > p->budget_ms || delay > p->budget_ms - spent)
        return -1;
    return (int64_t)delay;
}

const char *retry_verdict_name(enum retry_verdict v)
{
    switch (v) {
    case RETRY_DONE:
        return "done";
    case RETRY_AGAIN:
        return "retry";
    case RETRY_SPLIT:
        return "split";
    case RETRY_REJECT:
        return "reject";
    case RETRY_CLOSED:
        break;
    }
    return "closed";
}
