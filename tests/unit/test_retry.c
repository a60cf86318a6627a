/* SPDX-License-Identifier: Apache-2.0 */
/* upstream/retry.c: which outcomes are retried, split or final, and the delays with
 * fixed random values — the doubling ceiling, equal jitter at both ends, the floor at
 * the minimum, Retry-After, and where the attempt and time budgets cut off. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "upstream/retry.h"

#include <errno.h>

#include "error.h"

static const struct retry_policy defaults = {0};

static void test_retry_policy_normalize_defaults(void **state)
{
    (void)state;
    struct retry_policy p = retry_policy_normalize(&defaults);
    assert_int_equal(p.attempts, 6);
    assert_int_equal(p.budget_ms, 30000);
    assert_int_equal(p.backoff_min_ms, 100);
    assert_int_equal(p.backoff_max_ms, 5000);
    p = retry_policy_normalize(NULL);
    assert_int_equal(p.attempts, 6);
    /* max below min is held at min. */
    struct retry_policy odd = {.attempts = 2, .backoff_min_ms = 800, .backoff_max_ms = 300};
    p = retry_policy_normalize(&odd);
    assert_int_equal(p.attempts, 2);
    assert_int_equal(p.backoff_min_ms, 800);
    assert_int_equal(p.backoff_max_ms, 800);
}

static void test_retry_classify_statuses(void **state)
{
    (void)state;
    assert_int_equal(retry_classify(0, 200, 50, 0), RETRY_DONE);
    /* 5xx and 429: again. */
    assert_int_equal(retry_classify(XRAY_EUPSTREAM, 500, 50, 0), RETRY_AGAIN);
    assert_int_equal(retry_classify(XRAY_EUPSTREAM, 502, 1, 0), RETRY_AGAIN);
    assert_int_equal(retry_classify(XRAY_EUPSTREAM, 503, 50, 2), RETRY_AGAIN);
    assert_int_equal(retry_classify(XRAY_EUPSTREAM, 599, 50, 0), RETRY_AGAIN);
    assert_int_equal(retry_classify(XRAY_EUPSTREAM, 429, 50, 0), RETRY_AGAIN);
    /* 400 on several documents: split, at most twice; on one, or after two splits:
     * rejected. */
    assert_int_equal(retry_classify(XRAY_EUPSTREAM, 400, 50, 0), RETRY_SPLIT);
    assert_int_equal(retry_classify(XRAY_EUPSTREAM, 400, 2, 1), RETRY_SPLIT);
    assert_int_equal(retry_classify(XRAY_EUPSTREAM, 400, 13, 2), RETRY_REJECT);
    assert_int_equal(retry_classify(XRAY_EUPSTREAM, 400, 1, 0), RETRY_REJECT);
    /* Any other 4xx, and statuses nobody follows: never retried. */
    static const int final[] = {401, 403, 404, 405, 408, 409, 413, 418, 499, 301, 304, 100};
    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++)
        assert_int_equal(retry_classify(XRAY_EUPSTREAM, final[i], 50, 0), RETRY_REJECT);
}

static void test_retry_classify_transport(void **state)
{
    (void)state;
    static const int again[] = {XRAY_ETIMEOUT, -ECONNREFUSED, -EHOSTUNREACH, -EIO,
                                -ECONNRESET,   -ETIMEDOUT,    -ENETUNREACH,  -EPIPE,
                                XRAY_EFULL,    XRAY_ENOCREDS, -ENOMEM,       -EAGAIN};
    for (size_t i = 0; i < sizeof(again) / sizeof(again[0]); i++)
        assert_int_equal(retry_classify(again[i], 0, 50, 0), RETRY_AGAIN);
    assert_int_equal(retry_classify(XRAY_EUPSTREAM, 0, 5, 0), RETRY_AGAIN); /* no status */
    assert_int_equal(retry_classify(XRAY_ECLOSED, 0, 5, 0), RETRY_CLOSED);
    assert_int_equal(retry_classify(-ECANCELED, 0, 5, 0), RETRY_CLOSED);
    assert_int_equal(retry_classify(XRAY_EPARSE, 0, 5, 0), RETRY_REJECT);
    assert_int_equal(retry_classify(XRAY_ETOOBIG, 0, 5, 0), RETRY_REJECT);
    assert_int_equal(retry_classify(-EINVAL, 0, 5, 0), RETRY_REJECT);
    assert_string_equal(retry_verdict_name(RETRY_SPLIT), "split");
    assert_string_equal(retry_verdict_name(RETRY_CLOSED), "closed");
}

static void test_retry_delay_ms_doubling(void **state)
{
    (void)state;
    struct retry_policy p = retry_policy_normalize(&defaults); /* 6, 30 s, 100..5000 */
    /* Low end (rnd 0): max(min, ceiling/2); ceilings 100, 200, 400, 800, 1600. */
    static const int64_t lo[] = {100, 100, 200, 400, 800};
    static const int64_t hi[] = {100, 200, 400, 800, 1600};
    for (unsigned a = 1; a <= 5; a++) {
        assert_int_equal(retry_delay_ms(&p, a, 0, 0, -1, 0), lo[a - 1]);
        assert_int_equal(retry_delay_ms(&p, a, 0, 0, -1, UINT32_MAX), hi[a - 1]);
        int64_t mid = retry_delay_ms(&p, a, 0, 0, -1, 1u << 31);
        assert_true(mid >= lo[a - 1] && mid <= hi[a - 1]);
    }
    /* The sixth attempt was the last: give up. */
    assert_int_equal(retry_delay_ms(&p, 6, 0, 0, -1, 0), -1);
    assert_int_equal(retry_delay_ms(&p, 7, 0, 0, -1, 0), -1);
    /* attempts 0 is read as 1. */
    assert_int_equal(retry_delay_ms(&p, 0, 0, 0, -1, 0), 100);

    /* The ceiling stops at max; past it the delay stays in [max/2, max]. */
    struct retry_policy many = {.attempts = 100, .budget_ms = 3600000};
    many = retry_policy_normalize(&many);
    assert_int_equal(retry_delay_ms(&many, 7, 0, 0, -1, UINT32_MAX), 5000); /* 6400 capped */
    assert_int_equal(retry_delay_ms(&many, 7, 0, 0, -1, 0), 2500);
    assert_int_equal(retry_delay_ms(&many, 60, 0, 0, -1, UINT32_MAX), 5000);
    assert_int_equal(retry_delay_ms(&many, 99, 0, 0, -1, 0), 2500);
    assert_int_equal(retry_delay_ms(&many, 100, 0, 0, -1, 0), -1);

    /* min == max: no jitter at all. */
    struct retry_policy flat = {.backoff_min_ms = 400, .backoff_max_ms = 400};
    flat = retry_policy_normalize(&flat);
    for (unsigned a = 1; a <= 5; a++) {
        assert_int_equal(retry_delay_ms(&flat, a, 0, 0, -1, 0), 400);
        assert_int_equal(retry_delay_ms(&flat, a, 0, 0, -1, UINT32_MAX), 400);
    }
}

static void test_retry_delay_ms_jitter_spread(void **state)
{
    (void)state;
    struct retry_policy p = retry_policy_normalize(&defaults);
    /* Different random values give different delays, all inside the range. */
    int64_t seen_lo = INT64_MAX, seen_hi = 0;
    uint32_t x = 12345;
    for (int i = 0; i < 1000; i++) {
        x = x * 1664525u + 1013904223u;
        int64_t d = retry_delay_ms(&p, 4, 0, 0, -1, x);
        assert_true(d >= 400 && d <= 800);
        seen_lo = d < seen_lo ? d : seen_lo;
        seen_hi = d > seen_hi ? d : seen_hi;
    }
    assert_true(seen_lo < 450);
    assert_true(seen_hi > 750);
}

static void test_retry_delay_ms_retry_after(void **state)
{
    (void)state;
    struct retry_policy p = retry_policy_normalize(&defaults);
    /* Never sooner than Retry-After... */
    assert_int_equal(retry_delay_ms(&p, 1, 0, 0, 1000, 0), 1000);
    assert_int_equal(retry_delay_ms(&p, 1, 0, 0, 7000, 0), 7000); /* past max: still honoured */
    /* ...but the backoff wins when it is longer; 0 and -1 mean nothing. */
    assert_int_equal(retry_delay_ms(&p, 5, 0, 0, 50, UINT32_MAX), 1600);
    assert_int_equal(retry_delay_ms(&p, 1, 0, 0, 0, 0), 100);
    assert_int_equal(retry_delay_ms(&p, 1, 0, 0, -1, 0), 100);
    /* A Retry-After past the budget: give up, never retry sooner than asked. */
    assert_int_equal(retry_delay_ms(&p, 1, 0, 0, 30001, 0), -1);
    assert_int_equal(retry_delay_ms(&p, 1, 0, 0, 30000, 0), 30000);
    assert_int_equal(retry_delay_ms(&p, 2, 1000, 20000, 11001, 0), -1);
    assert_int_equal(retry_delay_ms(&p, 2, 1000, 20000, 11000, 0), 11000);
}

static void test_retry_delay_ms_budget(void **state)
{
    (void)state;
    struct retry_policy p = retry_policy_normalize(&defaults);
    /* The next attempt must start within 30 s of the first. */
    assert_int_equal(retry_delay_ms(&p, 2, 5000, 5000 + 29900, -1, 0), 100);
    assert_int_equal(retry_delay_ms(&p, 2, 5000, 5000 + 29901, -1, 0), -1);
    assert_int_equal(retry_delay_ms(&p, 2, 5000, 5000 + 30000, -1, 0), -1);
    assert_int_equal(retry_delay_ms(&p, 2, 5000, 5000 + 99999, -1, 0), -1);
    /* A clock that went backwards counts as no time spent. */
    assert_int_equal(retry_delay_ms(&p, 2, 5000, 1000, -1, 0), 100);
    /* A short budget cuts before the attempts do. */
    struct retry_policy shortp = {.attempts = 100, .budget_ms = 250};
    shortp = retry_policy_normalize(&shortp);
    assert_int_equal(retry_delay_ms(&shortp, 1, 0, 0, -1, 0), 100);
    assert_int_equal(retry_delay_ms(&shortp, 2, 0, 100, -1, 0), 100);
    assert_int_equal(retry_delay_ms(&shortp, 3, 0, 200, -1, 0), -1); /* 200 + 200 > 250 */
    assert_int_equal(retry_delay_ms(&shortp, 3, 0, 50, -1, 0), 200);
    /* Huge settings do not overflow. */
    struct retry_policy big = {.attempts = 100,
                               .budget_ms = UINT64_MAX / 2,
                               .backoff_min_ms = 3600000,
                               .backoff_max_ms = 3600000};
    assert_int_equal(retry_delay_ms(&big, 99, 0, UINT64_MAX / 4, -1, UINT32_MAX), 3600000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_policy_normalize_defaults),
        cmocka_unit_test(test_retry_classify_statuses),
        cmocka_unit_test(test_retry_classify_transport),
        cmocka_unit_test(test_retry_delay_ms_doubling),
        cmocka_unit_test(test_retry_delay_ms_jitter_spread),
        cmocka_unit_test(test_retry_delay_ms_retry_after),
        cmocka_unit_test(test_retry_delay_ms_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
