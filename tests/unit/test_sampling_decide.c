/* SPDX-License-Identifier: Apache-2.0 */
/* libxray_sampling, the decision: the SDK algorithm over simulated seconds with a
 * fake clock and a seeded random source (quota exactly honoured each second, the rate
 * within a stated statistical bound, one borrow per second, quota expiry, a quota of
 * 0), applying targets, the statistics an SDK reports, and the bodies of the
 * SamplingTargets exchange as an SDK sees them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xray/sampling.h"

#define T0_MS 1700000000000ull /* a whole second */
#define T0_S  1700000000

static uint64_t splitmix(void *ctx)
{
    uint64_t *s = ctx;
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct xray_sampling_rules *rules_with(int64_t reservoir, double rate)
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"version\":2,\"default\":{\"fixed_target\":1,\"rate\":0.05},\"rules\":["
             "{\"description\":\"r\",\"host\":\"*\",\"http_method\":\"*\",\"url_path\":\"*\","
             "\"fixed_target\":%lld,\"rate\":%.17g}]}",
             (long long)reservoir, rate);
    struct xray_sampling_rules *rs = NULL;
    char err[XRAY_SAMPLING_ERR_LEN];
    if (xray_sampling_rules_parse(json, strlen(json), NULL, &rs, err) != 0)
        fail_msg("%s", err);
    return rs;
}

static const char *CID = "0123456789abcdef01234567";

static struct xray_sampling_target target(const char *rule, uint32_t have, double rate,
                                          int64_t quota, int64_t ttl, int32_t interval)
{
    struct xray_sampling_target t = {.have = have,
                                     .fixed_rate = rate,
                                     .reservoir_quota = quota,
                                     .quota_ttl_s = ttl,
                                     .interval_s = interval};
    snprintf(t.rule_name, sizeof(t.rule_name), "%s", rule);
    return t;
}

/* Local mode: each rule's ReservoirSize is this process's quota, every second. */
static void test_decide_local_reservoir_exact(void **st)
{
    (void)st;
    uint64_t seed = 1;
    struct xray_sampling_random rng = {splitmix, &seed};
    struct xray_sampling_rules *rs = rules_with(5, 0.0);
    struct xray_sampling_state *s =
        xray_sampling_state_create(rs, CID, XRAY_SAMPLING_STATE_LOCAL, NULL, T0_MS);
    xray_sampling_rules_free(rs); /* the state holds its own reference */
    for (uint64_t sec = 0; sec < 100; sec++) {
        /* 1 to 60 requests spread over the second. */
        int n = 1 + (int)(splitmix(&seed) % 60), sampled = 0;
        for (int i = 0; i < n; i++) {
            struct xray_sampling_decision d;
            uint64_t now = T0_MS + sec * 1000 + (uint64_t)i * 999 / (uint64_t)n;
            if (xray_sampling_decide_rule(s, 0, now, &rng, &d)) {
                sampled++;
                assert_int_equal(d.how, XRAY_SAMPLING_BY_QUOTA);
            }
            assert_string_equal(d.rule_name, "r");
        }
        assert_int_equal(sampled, n < 5 ? n : 5);
    }
    xray_sampling_state_destroy(s);
}

/* The rate: over N draws the sampled fraction is within 5 standard deviations of p
 * (a false failure has probability below 1e-6); the seed makes it reproducible. */
static void test_decide_rate_within_bound(void **st)
{
    (void)st;
    const double rates[] = {0.0, 0.05, 0.3, 0.5, 1.0};
    const int N = 400000;
    for (size_t k = 0; k < 5; k++) {
        uint64_t seed = 42 + k;
        struct xray_sampling_random rng = {splitmix, &seed};
        struct xray_sampling_rules *rs = rules_with(0, rates[k]);
        struct xray_sampling_state *s = xray_sampling_state_create(rs, CID, 0, NULL, T0_MS);
        int sampled = 0;
        for (int i = 0; i < N; i++)
            sampled += xray_sampling_decide_rule(s, 0, T0_MS + (uint64_t)i, &rng, NULL);
        double p = rates[k], got = (double)sampled / N, sigma = sqrt(p * (1 - p) / N);
        if (p == 0.0 || p == 1.0)
            assert_int_equal(sampled, (int)(p * N));
        else if (fabs(got - p) > 5 * sigma)
            fail_msg("rate %g: sampled %g, more than 5 sigma (%g) away", p, got, sigma);
        struct xray_sampling_rule_status rst;
        assert_int_equal(xray_sampling_state_rule_status(s, 0, T0_MS, &rst), 0);
        assert_int_equal(rst.request_count, (uint64_t)N);
        assert_int_equal(rst.sampled_count, (uint64_t)sampled);
        assert_int_equal(rst.borrow_count, 0);
        xray_sampling_state_destroy(s);
        xray_sampling_rules_free(rs);
    }
}

/* No quota yet (before the first targets reply): one borrowed request per second. */
static void test_decide_borrow_once_per_second(void **st)
{
    (void)st;
    uint64_t seed = 7;
    struct xray_sampling_random rng = {splitmix, &seed};
    struct xray_sampling_rules *rs = rules_with(10, 0.0);
    struct xray_sampling_state *s = xray_sampling_state_create(rs, CID, 0, NULL, T0_MS);
    for (uint64_t sec = 0; sec < 20; sec++) {
        int sampled = 0;
        for (int i = 0; i < 50; i++) {
            struct xray_sampling_decision d;
            if (xray_sampling_decide_rule(s, 0, T0_MS + sec * 1000 + (uint64_t)i * 20, &rng, &d)) {
                sampled++;
                assert_int_equal(d.how, XRAY_SAMPLING_BY_BORROW);
                assert_int_equal(i, 0); /* the first of the second */
            }
        }
        assert_int_equal(sampled, 1);
    }
    struct xray_sampling_rule_status rst;
    xray_sampling_state_rule_status(s, 0, T0_MS, &rst);
    assert_int_equal(rst.request_count, 1000);
    assert_int_equal(rst.borrow_count, 20);
    assert_int_equal(rst.sampled_count, 0); /* a borrow counts as BorrowCount only */
    assert_int_equal(rst.quota, -1);
    assert_false(rst.quota_live);
    xray_sampling_state_destroy(s);
    xray_sampling_rules_free(rs);

    /* ReservoirSize 0: nothing to borrow from. */
    rs = rules_with(0, 0.0);
    s = xray_sampling_state_create(rs, CID, 0, NULL, T0_MS);
    for (int i = 0; i < 100; i++)
        assert_false(xray_sampling_decide_rule(s, 0, T0_MS + (uint64_t)i * 100, &rng, NULL));
    xray_sampling_state_destroy(s);
    xray_sampling_rules_free(rs);
}

/* A granted quota: exactly quota per second while live, borrowing again after. */
static void test_decide_quota_and_expiry(void **st)
{
    (void)st;
    uint64_t seed = 9;
    struct xray_sampling_random rng = {splitmix, &seed};
    struct xray_sampling_rules *rs = rules_with(10, 0.0);
    struct xray_sampling_state *s = xray_sampling_state_create(rs, CID, 0, NULL, T0_MS);
    struct xray_sampling_target t = target(
        "r", XRAY_SAMPLING_TARGET_QUOTA | XRAY_SAMPLING_TARGET_QUOTA_TTL, 0, 3, T0_S + 10, 0);
    assert_int_equal(xray_sampling_state_apply(s, &t, 1, 0, T0_MS), 0);
    for (uint64_t sec = 0; sec < 15; sec++) {
        int quota = 0, borrow = 0;
        for (int i = 0; i < 40; i++) {
            struct xray_sampling_decision d;
            xray_sampling_decide_rule(s, 0, T0_MS + sec * 1000 + (uint64_t)i * 25, &rng, &d);
            quota += d.how == XRAY_SAMPLING_BY_QUOTA;
            borrow += d.how == XRAY_SAMPLING_BY_BORROW;
        }
        if (sec < 10) { /* live while now < TTL */
            assert_int_equal(quota, 3);
            assert_int_equal(borrow, 0);
        } else {
            assert_int_equal(quota, 0);
            assert_int_equal(borrow, 1);
        }
    }
    xray_sampling_state_destroy(s);
    xray_sampling_rules_free(rs);
}

/* A quota of 0 is a real 0: no quota, no borrowing, only the rate. */
static void test_decide_quota_zero(void **st)
{
    (void)st;
    uint64_t seed = 11;
    struct xray_sampling_random rng = {splitmix, &seed};
    struct xray_sampling_rules *rs = rules_with(10, 0.0);
    struct xray_sampling_state *s = xray_sampling_state_create(rs, CID, 0, NULL, T0_MS);
    struct xray_sampling_target t = target(
        "r", XRAY_SAMPLING_TARGET_QUOTA | XRAY_SAMPLING_TARGET_QUOTA_TTL, 0, 0, T0_S + 30, 0);
    xray_sampling_state_apply(s, &t, 1, 0, T0_MS);
    for (int i = 0; i < 5000; i++)
        assert_false(xray_sampling_decide_rule(s, 0, T0_MS + (uint64_t)i * 5, &rng, NULL));
    struct xray_sampling_rule_status rst;
    xray_sampling_state_rule_status(s, 0, T0_MS, &rst);
    assert_int_equal(rst.quota, 0);
    assert_true(rst.quota_live);
    /* With rate 1 everything is sampled, by the rate. */
    t = target("r", XRAY_SAMPLING_TARGET_RATE, 1.0, 0, 0, 0);
    xray_sampling_state_apply(s, &t, 1, 0, T0_MS);
    struct xray_sampling_decision d;
    assert_true(xray_sampling_decide_rule(s, 0, T0_MS + 100, &rng, &d));
    assert_int_equal(d.how, XRAY_SAMPLING_BY_RATE);
    xray_sampling_state_destroy(s);
    xray_sampling_rules_free(rs);
}

/* Absent fields keep their values; unknown rules are ignored; LastRuleModification
 * newer than the fetch asks for a refresh. */
static void test_state_apply_absent_fields(void **st)
{
    (void)st;
    struct xray_sampling_rules *rs = rules_with(10, 0.25);
    struct xray_sampling_state *s = xray_sampling_state_create(rs, CID, 0, NULL, T0_MS);
    struct xray_sampling_rule_status r;
    xray_sampling_state_rule_status(s, 0, T0_MS, &r);
    assert_true(r.fixed_rate == 0.25);
    assert_int_equal(r.interval_s, 10);
    struct xray_sampling_target t[3] = {
        target("r", XRAY_SAMPLING_TARGET_QUOTA | XRAY_SAMPLING_TARGET_QUOTA_TTL, 0, 4, T0_S + 20,
               0),
        target("nope", 0xf, 1, 1, 1, 1),
        target("Default", XRAY_SAMPLING_TARGET_INTERVAL, 0, 0, 0, 5),
    };
    assert_int_equal(xray_sampling_state_apply(s, t, 3, T0_S, T0_MS), 0); /* not newer */
    xray_sampling_state_rule_status(s, 0, T0_MS, &r);
    assert_true(r.fixed_rate == 0.25); /* rate absent: kept */
    assert_int_equal(r.quota, 4);
    assert_int_equal(r.quota_ttl_s, T0_S + 20);
    assert_int_equal(r.interval_s, 10);
    xray_sampling_state_rule_status(s, 1, T0_MS, &r);
    assert_int_equal(r.interval_s, 5);
    assert_int_equal(r.quota, -1);
    /* Only the rate: the quota and TTL stay. */
    t[0] = target("r", XRAY_SAMPLING_TARGET_RATE, 0.75, 0, 0, 0);
    assert_int_equal(xray_sampling_state_apply(s, t, 1, T0_S + 1, T0_MS + 5000), 1); /* newer */
    xray_sampling_state_rule_status(s, 0, T0_MS, &r);
    assert_true(r.fixed_rate == 0.75);
    assert_int_equal(r.quota, 4);
    assert_int_equal(r.quota_ttl_s, T0_S + 20);
    /* Only the TTL: the quota stays, and is expired at its TTL. */
    t[0] = target("r", XRAY_SAMPLING_TARGET_QUOTA_TTL, 0, 0, T0_S + 2, 0);
    xray_sampling_state_apply(s, t, 1, 0, T0_MS);
    xray_sampling_state_rule_status(s, 0, T0_MS + 1999, &r);
    assert_true(r.quota_live);
    assert_int_equal(r.quota, 4);
    xray_sampling_state_rule_status(s, 0, T0_MS + 2000, &r);
    assert_false(r.quota_live);
    xray_sampling_state_destroy(s);

    /* A local state ignores targets. */
    s = xray_sampling_state_create(rs, CID, XRAY_SAMPLING_STATE_LOCAL, NULL, T0_MS);
    t[0] = target("r", 0xf, 0.5, 0, T0_S + 2, 3);
    assert_int_equal(xray_sampling_state_apply(s, t, 1, T0_S + 100, T0_MS), 0);
    xray_sampling_state_rule_status(s, 0, T0_MS, &r);
    assert_int_equal(r.quota, 10);
    assert_true(r.quota_live);
    assert_true(r.fixed_rate == 0.25);
    assert_int_equal(xray_sampling_state_rule_status(s, 2, T0_MS, &r), -EINVAL);
    xray_sampling_state_destroy(s);
    xray_sampling_rules_free(rs);
}

/* Reports: only rules with requests whose interval elapsed; counters reset. */
static void test_state_report(void **st)
{
    (void)st;
    uint64_t seed = 3;
    struct xray_sampling_random rng = {splitmix, &seed};
    struct xray_sampling_rules *rs = rules_with(1, 0.0);
    struct xray_sampling_state *s = xray_sampling_state_create(rs, CID, 0, NULL, T0_MS);
    struct xray_sampling_statistics out[XRAY_SAMPLING_MAX_STATISTICS];
    assert_int_equal(xray_sampling_state_report(s, T0_MS, out, 25), 0); /* no requests */
    for (int i = 0; i < 30; i++)
        xray_sampling_decide_rule(s, 0, T0_MS + (uint64_t)i * 100, &rng, NULL);
    assert_int_equal(xray_sampling_state_report(s, T0_MS + 3000, out, 25), 1);
    assert_string_equal(out[0].rule_name, "r");
    assert_string_equal(out[0].client_id, CID);
    assert_int_equal(out[0].timestamp, T0_S + 3);
    assert_int_equal(out[0].request_count, 30);
    assert_int_equal(out[0].borrow_count, 3);
    assert_int_equal(out[0].sampled_count, 0);
    struct xray_sampling_rule_status r;
    xray_sampling_state_rule_status(s, 0, T0_MS, &r);
    assert_int_equal(r.request_count, 0);
    /* Within the interval (10 s): not again. */
    xray_sampling_decide_rule(s, 0, T0_MS + 4000, &rng, NULL);
    assert_int_equal(xray_sampling_state_report(s, T0_MS + 12999, out, 25), 0);
    assert_int_equal(xray_sampling_state_report(s, T0_MS + 13000, out, 25), 1);
    assert_int_equal(out[0].request_count, 1);
    /* The statistics body, and its parse by the authority side. */
    char *body;
    size_t len;
    assert_int_equal(xray_sampling_statistics_serialize(out, 1, &body, &len), 0);
    struct xray_sampling_statistics back[2];
    size_t n;
    char err[XRAY_SAMPLING_ERR_LEN];
    assert_int_equal(xray_sampling_statistics_parse(body, len, back, 2, &n, err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(back[0].rule_name, out[0].rule_name);
    assert_string_equal(back[0].client_id, out[0].client_id);
    assert_int_equal(back[0].timestamp, out[0].timestamp);
    assert_int_equal(back[0].request_count, out[0].request_count);
    assert_int_equal(back[0].sampled_count, out[0].sampled_count);
    assert_int_equal(back[0].borrow_count, out[0].borrow_count);
    free(body);
    assert_int_equal(xray_sampling_statistics_serialize(out, 26, &body, &len), -EINVAL);
    xray_sampling_state_destroy(s);
    xray_sampling_rules_free(rs);
}

/* More than 25 rules with requests: 25 per call, the rest on the next call. */
static void test_state_report_at_most_25(void **st)
{
    (void)st;
    char *json = malloc(65536), *p = json;
    p += sprintf(p, "{\"version\":2,\"default\":{\"fixed_target\":1,\"rate\":0},\"rules\":[");
    for (int i = 0; i < 30; i++)
        p += sprintf(p,
                     "%s{\"host\":\"h%d\",\"http_method\":\"*\",\"url_path\":\"*\","
                     "\"fixed_target\":1,\"rate\":0}",
                     i ? "," : "", i);
    sprintf(p, "]}");
    struct xray_sampling_rules *rs = NULL;
    assert_int_equal(xray_sampling_rules_parse(json, strlen(json), NULL, &rs, NULL), 0);
    free(json);
    uint64_t seed = 5;
    struct xray_sampling_random rng = {splitmix, &seed};
    struct xray_sampling_state *s = xray_sampling_state_create(rs, CID, 0, NULL, T0_MS);
    for (size_t i = 0; i < xray_sampling_rules_count(rs); i++)
        xray_sampling_decide_rule(s, i, T0_MS, &rng, NULL);
    struct xray_sampling_statistics out[40];
    assert_int_equal(xray_sampling_state_report(s, T0_MS, out, 40), 25);
    assert_int_equal(xray_sampling_state_report(s, T0_MS, out, 40), 6);
    assert_int_equal(xray_sampling_state_report(s, T0_MS, out, 40), 0);
    xray_sampling_state_destroy(s);
    xray_sampling_rules_free(rs);
}

/* The SamplingTargets response as an SDK reads it. */
static void test_targets_parse(void **st)
{
    (void)st;
    const char *body = "{\"SamplingTargetDocuments\":["
                       "{\"RuleName\":\"a\",\"FixedRate\":0.1,\"ReservoirQuota\":0,"
                       "\"ReservoirQuotaTTL\":1700000010.0,\"Interval\":10},"
                       "{\"RuleName\":\"b\",\"FixedRate\":0.2},"
                       "{\"RuleName\":\"c\",\"FixedRate\":7,\"ReservoirQuota\":-1,\"Interval\":0},"
                       "{\"FixedRate\":0.5},"
                       "{\"RuleName\":\"d\"}],"
                       "\"LastRuleModification\":1700000005,\"UnprocessedStatistics\":[]}";
    struct xray_sampling_target t[8];
    size_t n;
    int64_t lm;
    char err[XRAY_SAMPLING_ERR_LEN];
    assert_int_equal(xray_sampling_targets_parse(body, strlen(body), t, 8, &n, &lm, err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(lm, 1700000005);
    assert_string_equal(t[0].rule_name, "a");
    assert_int_equal(t[0].have, 0xf);
    assert_int_equal(t[0].reservoir_quota, 0);
    assert_int_equal(t[0].quota_ttl_s, 1700000010);
    assert_int_equal(t[1].have, XRAY_SAMPLING_TARGET_RATE);
    assert_int_equal(t[2].have, 0); /* out-of-range fields are absent */
    assert_string_equal(t[3].rule_name, "d");
    assert_int_equal(xray_sampling_targets_parse(body, strlen(body), t, 2, &n, &lm, err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(xray_sampling_targets_parse("nope", 4, t, 8, &n, &lm, err), XRAY_ESAMP_JSON);
    /* Serialised by the authority side, read back the same. */
    char *out;
    struct xray_sampling_unprocessed u = {"zz", "400", "no"};
    assert_int_equal(xray_sampling_targets_serialize(t, 2, &u, 1, 1700000005, &out, NULL), 0);
    struct xray_sampling_target back[2];
    assert_int_equal(xray_sampling_targets_parse(out, strlen(out), back, 2, &n, &lm, err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(back[0].have, t[0].have);
    assert_int_equal(back[0].quota_ttl_s, t[0].quota_ttl_s);
    assert_true(back[1].fixed_rate == 0.2);
    assert_non_null(strstr(out, "\"LastRuleModification\":1700000005,"));
    assert_non_null(strstr(out, "\"UnprocessedStatistics\":[{\"RuleName\":\"zz\""));
    free(out);
}

/* A new state for new rules keeps the quota and counters of rules of the same name,
 * and takes the rule's own fields from the new set. */
static void test_state_carry(void **st)
{
    (void)st;
    uint64_t seed = 13;
    struct xray_sampling_random rng = {splitmix, &seed};
    struct xray_sampling_rules *rs = rules_with(10, 0.0);
    struct xray_sampling_state *a = xray_sampling_state_create(rs, CID, 0, NULL, T0_MS);
    struct xray_sampling_target t = target(
        "r", XRAY_SAMPLING_TARGET_QUOTA | XRAY_SAMPLING_TARGET_QUOTA_TTL, 0, 2, T0_S + 20, 0);
    xray_sampling_state_apply(a, &t, 1, 0, T0_MS);
    int sampled = 0;
    for (int i = 0; i < 5; i++)
        sampled += xray_sampling_decide_rule(a, 0, T0_MS + (uint64_t)i, &rng, NULL);
    assert_int_equal(sampled, 2);
    const char *json = "{\"version\":2,\"default\":{\"fixed_target\":1,\"rate\":0.05},"
                       "\"rules\":[{\"description\":\"new\",\"host\":\"n\",\"http_method\":\"*\","
                       "\"url_path\":\"*\",\"fixed_target\":1,\"rate\":0},"
                       "{\"description\":\"r\",\"host\":\"*\",\"http_method\":\"*\","
                       "\"url_path\":\"*\",\"fixed_target\":10,\"rate\":0}]}";
    struct xray_sampling_rules *rs2 = NULL;
    assert_int_equal(xray_sampling_rules_parse(json, strlen(json), NULL, &rs2, NULL), 0);
    struct xray_sampling_state *b = xray_sampling_state_create(rs2, CID, 0, a, T0_MS + 1000);
    xray_sampling_state_destroy(a);
    xray_sampling_rules_free(rs);
    int r = xray_sampling_rules_find(rs2, "r");
    assert_int_equal(r, 1);
    struct xray_sampling_rule_status rst;
    xray_sampling_state_rule_status(b, (size_t)r, T0_MS + 1000, &rst);
    assert_int_equal(rst.quota, 2);
    assert_int_equal(rst.quota_ttl_s, T0_S + 20);
    assert_int_equal(rst.request_count, 5);
    assert_int_equal(rst.sampled_count, 2);
    /* The quota already taken in this second stays taken. */
    assert_false(xray_sampling_decide_rule(b, (size_t)r, T0_MS + 10, &rng, NULL));
    sampled = 0;
    for (int i = 0; i < 5; i++)
        sampled += xray_sampling_decide_rule(b, (size_t)r, T0_MS + 1000 + (uint64_t)i, &rng, NULL);
    assert_int_equal(sampled, 2);
    xray_sampling_state_rule_status(b, 0, T0_MS + 1000, &rst);
    assert_int_equal(rst.quota, -1); /* a new rule starts fresh */
    xray_sampling_state_destroy(b);
    xray_sampling_rules_free(rs2);
}

struct race {
    struct xray_sampling_state *s;
    uint64_t now;
    int sampled;
};

static void *race_main(void *arg)
{
    struct race *r = arg;
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    struct xray_sampling_random rng = {splitmix, &seed};
    for (int i = 0; i < 20000; i++)
        r->sampled += xray_sampling_decide_rule(r->s, 0, r->now + (uint64_t)(i % 1000), &rng, NULL);
    return NULL;
}

/* Four threads deciding at once in one second: the quota holds exactly. */
static void test_decide_threads_quota_exact(void **st)
{
    (void)st;
    struct xray_sampling_rules *rs = rules_with(100, 0.0);
    struct xray_sampling_state *s =
        xray_sampling_state_create(rs, CID, XRAY_SAMPLING_STATE_LOCAL, NULL, T0_MS);
    for (int round = 0; round < 5; round++) {
        struct race r[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            r[i] = (struct race){s, T0_MS + (uint64_t)round * 1000, 0};
            pthread_create(&th[i], NULL, race_main, &r[i]);
        }
        int total = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            total += r[i].sampled;
        }
        assert_int_equal(total, 100);
    }
    struct xray_sampling_rule_status rst;
    xray_sampling_state_rule_status(s, 0, T0_MS, &rst);
    assert_int_equal(rst.request_count, 5 * 4 * 20000);
    assert_int_equal(rst.sampled_count, 500);
    xray_sampling_state_destroy(s);
    xray_sampling_rules_free(rs);
}

static void test_decide_matching_and_client_id(void **st)
{
    (void)st;
    uint64_t seed = 17;
    struct xray_sampling_random rng = {splitmix, &seed};
    char id[XRAY_SAMPLING_CLIENT_ID_LEN + 1];
    xray_sampling_client_id(id, &rng);
    assert_int_equal(strlen(id), 24);
    assert_int_equal(strspn(id, "0123456789abcdef"), 24);
    const char *json = "{\"version\":2,\"default\":{\"fixed_target\":0,\"rate\":0},\"rules\":["
                       "{\"description\":\"api\",\"host\":\"*\",\"http_method\":\"GET\","
                       "\"url_path\":\"/api/*\",\"fixed_target\":0,\"rate\":1}]}";
    struct xray_sampling_rules *rs = NULL;
    assert_int_equal(xray_sampling_rules_parse(json, strlen(json), NULL, &rs, NULL), 0);
    struct xray_sampling_state *s = xray_sampling_state_create(rs, id, 0, NULL, T0_MS);
    assert_ptr_equal(xray_sampling_state_rules(s), rs);
    struct xray_sampling_request req = {.http_method = xray_sampling_str_c("get"),
                                        .url_path = xray_sampling_str_c("/API/x")};
    struct xray_sampling_decision d;
    assert_true(xray_sampling_decide(s, &req, T0_MS, &rng, &d));
    assert_string_equal(d.rule_name, "api");
    assert_int_equal(d.rule, 0);
    req.url_path = xray_sampling_str_c("/other");
    assert_false(xray_sampling_decide(s, &req, T0_MS, &rng, &d));
    assert_string_equal(d.rule_name, "Default");
    xray_sampling_state_destroy(s);
    xray_sampling_rules_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_local_reservoir_exact),
        cmocka_unit_test(test_decide_rate_within_bound),
        cmocka_unit_test(test_decide_borrow_once_per_second),
        cmocka_unit_test(test_decide_quota_and_expiry),
        cmocka_unit_test(test_decide_quota_zero),
        cmocka_unit_test(test_state_apply_absent_fields),
        cmocka_unit_test(test_state_report),
        cmocka_unit_test(test_state_report_at_most_25),
        cmocka_unit_test(test_targets_parse),
        cmocka_unit_test(test_state_carry),
        cmocka_unit_test(test_decide_threads_quota_exact),
        cmocka_unit_test(test_decide_matching_and_client_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
