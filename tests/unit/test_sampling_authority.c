/* SPDX-License-Identifier: Apache-2.0 */
/* libxray_sampling, the authority: the client limit and rule reloads, proportional
 * shares, a newcomer's equal share, largest-remainder rounding, a departed client's
 * share coming back, the SamplingTargets bodies, and a seeded run of real clients
 * that come and go, checking at every step that a rule's unexpired grants never add
 * up to more than its ReservoirSize. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "xray/sampling.h"

#define T0_S  1700000000
#define AT(s) ((uint64_t)(T0_S + (s)) * 1000) /* epoch ms, s seconds after T0 */

#define ALL_FIELDS                                                                                 \
    (XRAY_SAMPLING_TARGET_RATE | XRAY_SAMPLING_TARGET_QUOTA | XRAY_SAMPLING_TARGET_QUOTA_TTL |     \
     XRAY_SAMPLING_TARGET_INTERVAL)

static uint64_t splitmix(void *ctx)
{
    uint64_t *s = ctx;
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

struct rule_def {
    const char *name;
    int64_t size; /* ReservoirSize */
};

/* A centralized set: defs in priority order (FixedRate 0.1), then Default (1/s, 5 %). */
static struct xray_sampling_rules *rules_of(const struct rule_def *defs, size_t n)
{
    char json[4096];
    size_t k = (size_t)snprintf(json, sizeof(json), "{\"SamplingRuleRecords\":[");
    for (size_t i = 0; i <= n; i++)
        k += (size_t)snprintf(
            json + k, sizeof(json) - k,
            "%s{\"SamplingRule\":{\"RuleName\":\"%s\",\"ResourceARN\":\"*\",\"Priority\":%zu,"
            "\"FixedRate\":%g,\"ReservoirSize\":%lld,\"ServiceName\":\"*\",\"ServiceType\":"
            "\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\",\"Version\":1,"
            "\"Attributes\":{}}}%s",
            i ? "," : "", i < n ? defs[i].name : "Default", i < n ? i + 1 : 10000,
            i < n ? 0.1 : 0.05, i < n ? (long long)defs[i].size : 1LL, i < n ? "" : "]}");
    struct xray_sampling_rules *rs = NULL;
    char err[XRAY_SAMPLING_ERR_LEN];
    if (xray_sampling_rules_parse(json, strlen(json), NULL, &rs, err) != 0)
        fail_msg("rules: %s", err);
    return rs;
}

/* Serves the set of defs from now_ms on. */
static void reload(struct xray_sampling_authority *a, const struct rule_def *defs, size_t n,
                   uint64_t now_ms)
{
    struct xray_sampling_rules *rs = rules_of(defs, n);
    assert_int_equal(xray_sampling_authority_set_rules(a, rs, now_ms), 0);
    assert_ptr_equal(xray_sampling_authority_rules(a), rs);
    xray_sampling_rules_free(rs); /* the authority holds its own reference */
}

/* An authority (cfg may be NULL) serving one rule `name` of ReservoirSize size from T0. */
static struct xray_sampling_authority *one_rule(const char *name, int64_t size,
                                                const struct xray_sampling_authority_config *cfg)
{
    struct xray_sampling_authority *a = xray_sampling_authority_create(cfg, AT(0));
    assert_non_null(a);
    struct rule_def d = {name, size};
    reload(a, &d, 1, AT(0));
    return a;
}

/* Client number `client` reports `requests` on rule at now_ms; returns its quota. */
static int64_t ask(struct xray_sampling_authority *a, const char *rule, unsigned client,
                   uint64_t requests, uint64_t now_ms)
{
    struct xray_sampling_statistics d = {.timestamp = (int64_t)(now_ms / 1000),
                                         .request_count = requests};
    snprintf(d.rule_name, sizeof(d.rule_name), "%s", rule);
    snprintf(d.client_id, sizeof(d.client_id), "%024x", client);
    struct xray_sampling_target t;
    struct xray_sampling_unprocessed u;
    size_t nt = 9, nu = 9;
    assert_int_equal(xray_sampling_authority_report(a, &d, 1, now_ms, &t, &nt, &u, &nu), 0);
    assert_int_equal(nt, 1);
    assert_int_equal(nu, 0);
    assert_string_equal(t.rule_name, rule);
    assert_int_equal(t.have, ALL_FIELDS);
    return t.reservoir_quota;
}

static void test_authority_limits_and_reload(void **state)
{
    (void)state;
    struct xray_sampling_authority_config cfg = {.max_clients_per_rule = 2};
    struct xray_sampling_authority *a = xray_sampling_authority_create(&cfg, AT(0));
    assert_non_null(a);
    /* It starts with the built-in set. */
    assert_int_equal(xray_sampling_rules_count(xray_sampling_authority_rules(a)), 1);
    assert_int_equal(xray_sampling_authority_last_modification(a), T0_S);

    struct rule_def first[] = {{"a", 10}, {"b", 4}};
    reload(a, first, 2, AT(1));
    assert_int_equal(xray_sampling_authority_last_modification(a), T0_S + 1);

    assert_int_equal(ask(a, "a", 1, 5, AT(1)), 10);
    assert_int_equal(ask(a, "a", 2, 5, AT(1)), 0); /* client 1 holds it all */
    assert_int_equal(ask(a, "a", 3, 0, AT(1)), 0); /* the table of "a" is full */
    /* Client 1's grant has expired: a third client would get a share, but is refused. */
    assert_int_equal(ask(a, "a", 3, 0, AT(18)), 0);
    assert_int_equal(ask(a, "a", 1, 17, AT(18)), 5);
    assert_int_equal(ask(a, "b", 3, 7, AT(18)), 4); /* the limit is per rule */
    struct xray_sampling_authority_counters k;
    xray_sampling_authority_counters(a, &k);
    assert_int_equal(k.clients_refused, 2);
    assert_int_equal(k.clients, 3);
    assert_int_equal(k.documents, 6);

    /* Reload: "a" kept, "b" dropped, "c" new. */
    struct rule_def second[] = {{"a", 10}, {"c", 2}};
    reload(a, second, 2, AT(20));
    assert_int_equal(xray_sampling_authority_last_modification(a), T0_S + 20);
    assert_int_equal(xray_sampling_authority_outstanding(a, "a", AT(20)), 5);
    assert_int_equal(xray_sampling_authority_outstanding(a, "b", AT(20)), -1);
    assert_int_equal(xray_sampling_authority_outstanding(a, "c", AT(20)), 0);
    xray_sampling_authority_counters(a, &k);
    assert_int_equal(k.clients, 2); /* "b"'s client went with it */

    struct xray_sampling_statistics d = {.rule_name = "b", .client_id = "000000000000000000000003"};
    struct xray_sampling_target t[1];
    struct xray_sampling_unprocessed u[1];
    size_t nt, nu;
    assert_int_equal(xray_sampling_authority_report(a, &d, 1, AT(20), t, &nt, u, &nu), 0);
    assert_int_equal(nt, 0);
    assert_int_equal(nu, 1);
    assert_string_equal(u[0].rule_name, "b");

    /* "a" kept its clients and grants: client 2 is not a newcomer with the rule to
     * itself (10), client 1's grant still counts, and the table is still full. */
    assert_int_equal(ask(a, "a", 2, 19, AT(20)), 5);
    assert_int_equal(ask(a, "a", 3, 0, AT(20)), 0);
    assert_int_equal(xray_sampling_authority_outstanding(a, "a", AT(20)), 10);

    /* Lowering "a" to 4 keeps the grants made: nothing is free until they expire. */
    struct rule_def third[] = {{"a", 4}, {"c", 2}};
    reload(a, third, 2, AT(21));
    assert_int_equal(ask(a, "a", 1, 3, AT(21)), 0);
    assert_int_equal(ask(a, "a", 1, 16, AT(37)), 2);
    assert_int_equal(xray_sampling_authority_outstanding(a, "a", AT(37)), 2);

    /* Totals of "a" run since its first load, across reloads; "c" starts at 20. */
    struct xray_sampling_summary s[4];
    assert_int_equal(xray_sampling_authority_summaries(a, s, 4), 3);
    assert_string_equal(s[0].rule_name, "a");
    assert_int_equal(s[0].timestamp, T0_S + 1);
    assert_int_equal(s[0].request_count, 5 + 5 + 17 + 19 + 3 + 16);
    assert_string_equal(s[1].rule_name, "c");
    assert_int_equal(s[1].timestamp, T0_S + 20);
    assert_int_equal(s[1].request_count, 0);
    assert_string_equal(s[2].rule_name, "Default");

    char *body = NULL;
    size_t len = 0;
    assert_int_equal(xray_sampling_authority_summaries_body(a, &body, &len), 0);
    assert_int_equal(len, strlen(body));
    json_t *root = json_loads(body, 0, NULL);
    assert_non_null(root);
    json_t *arr = json_object_get(root, "SamplingStatisticSummaries");
    assert_int_equal(json_array_size(arr), 3);
    json_t *sa = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(sa, "RuleName")), "a");
    assert_int_equal(json_integer_value(json_object_get(sa, "Timestamp")), T0_S + 1);
    assert_int_equal(json_integer_value(json_object_get(sa, "RequestCount")), 65);
    json_decref(root);
    free(body);
    xray_sampling_authority_destroy(a);
}

static void test_authority_proportional_shares(void **state)
{
    (void)state;
    struct xray_sampling_authority *a = one_rule("r", 6, NULL);
    /* Client 1 at 1 request/s, client 2 at 2/s, reporting every 10 s; from round 4
     * both run at 1/s and client 2 reports first. A grant is counted until it expires
     * (TTL 15 s + 1), so shares reach 2/4 only once the first grants are dead, and in
     * round 4 client 1 gets 2, not its share of 3, while client 2's 4 is alive. */
    static const int64_t want1[] = {6, 3, 2, 2, 2, 3}, want2[] = {0, 0, 3, 4, 3, 3};
    for (int i = 0; i < 6; i++) {
        uint64_t now = AT(10 * i);
        if (i < 4) {
            assert_int_equal(ask(a, "r", 1, 10, now), want1[i]);
            assert_int_equal(ask(a, "r", 2, 20, now), want2[i]);
        } else {
            assert_int_equal(ask(a, "r", 2, 10, now), want2[i]);
            assert_int_equal(ask(a, "r", 1, 10, now), want1[i]);
        }
        assert_true(xray_sampling_authority_outstanding(a, "r", now) <= 6);
    }
    assert_int_equal(xray_sampling_authority_outstanding(a, "r", AT(50)), 6);
    xray_sampling_authority_destroy(a);

    /* A client reporting every second piles up live grants; merging old ones must keep
     * its first grant of 10 (the answers after it may have been lost). */
    a = one_rule("r", 10, NULL);
    assert_int_equal(ask(a, "r", 1, 1, AT(0)), 10);
    assert_int_equal(ask(a, "r", 2, 1, AT(1)), 0);
    for (int s = 2; s <= 5; s++)
        assert_int_equal(ask(a, "r", 1, s == 2 ? 2 : 1, AT(s)), 5);
    assert_int_equal(xray_sampling_authority_outstanding(a, "r", AT(5)), 10);
    assert_int_equal(ask(a, "r", 2, 4, AT(5)), 0);
    xray_sampling_authority_destroy(a);
}

static void test_authority_newcomer_equal_share(void **state)
{
    (void)state;
    /* Clients 1 and 2 weighed at 1/s and 3/s; at 27 s their grants have expired
     * (10 + 15 + 1 s) but they are still active. Newcomer 3 weighs as their average
     * (2/s): 12 * 2 / 6 = 4, ReservoirSize / 3 clients. */
    struct xray_sampling_authority *a = one_rule("r", 12, NULL);
    ask(a, "r", 1, 1, AT(0));
    ask(a, "r", 2, 1, AT(0));
    ask(a, "r", 1, 10, AT(10));
    ask(a, "r", 2, 30, AT(10));
    assert_int_equal(xray_sampling_authority_outstanding(a, "r", AT(27)), 0);
    assert_int_equal(ask(a, "r", 3, 100, AT(27)), 4);
    /* The others keep their proportions of what is left: 12 * 1/6 and 12 * 3/6. */
    assert_int_equal(ask(a, "r", 1, 17, AT(27)), 2);
    assert_int_equal(ask(a, "r", 2, 51, AT(27)), 6);
    assert_int_equal(xray_sampling_authority_outstanding(a, "r", AT(27)), 12);
    xray_sampling_authority_destroy(a);

    /* When every weighed client saw no request, all weigh alike: 12 / 3 again. */
    a = one_rule("r", 12, NULL);
    ask(a, "r", 1, 1, AT(0));
    ask(a, "r", 2, 1, AT(0));
    ask(a, "r", 1, 0, AT(10));
    ask(a, "r", 2, 0, AT(10));
    assert_int_equal(ask(a, "r", 3, 50, AT(27)), 4);
    xray_sampling_authority_destroy(a);
}

static void test_authority_largest_remainder(void **state)
{
    (void)state;
    /* Three equal clients on 10: 3.33 each; the one spare unit goes to the tie-break
     * winner (lowest ClientID, client 1) whatever the order of reports. */
    struct xray_sampling_authority *a = one_rule("r", 10, NULL);
    for (unsigned c = 3; c >= 1; c--)
        ask(a, "r", c, 1, AT(0));
    assert_int_equal(ask(a, "r", 3, 17, AT(17)), 3);
    assert_int_equal(ask(a, "r", 2, 17, AT(17)), 3);
    assert_int_equal(ask(a, "r", 1, 17, AT(17)), 4);
    assert_int_equal(xray_sampling_authority_outstanding(a, "r", AT(17)), 10);
    xray_sampling_authority_destroy(a);

    /* Rates 1:2 on 10: 3.33 and 6.67; the larger remainder (client 2's, though its
     * ClientID is higher) takes the spare unit: 3 and 7, not 3 and 6 or 4 and 6. */
    a = one_rule("r", 10, NULL);
    ask(a, "r", 1, 1, AT(0));
    ask(a, "r", 2, 1, AT(0));
    ask(a, "r", 1, 10, AT(10));
    ask(a, "r", 2, 20, AT(10));
    assert_int_equal(ask(a, "r", 1, 17, AT(27)), 3);
    assert_int_equal(ask(a, "r", 2, 34, AT(27)), 7);
    assert_int_equal(xray_sampling_authority_outstanding(a, "r", AT(27)), 10);
    xray_sampling_authority_destroy(a);
}

static void test_authority_departed_returned(void **state)
{
    (void)state;
    /* Equal rates on 10; client 2 reports last at 20 s. Its grant dies at 36 s, but
     * its share is held for the 30 s window: client 1 gets 5 until 50 s, then 10. */
    struct xray_sampling_authority *a = one_rule("r", 10, NULL);
    struct xray_sampling_authority_counters k;
    assert_int_equal(ask(a, "r", 1, 1, AT(0)), 10);
    assert_int_equal(ask(a, "r", 2, 1, AT(0)), 0);
    assert_int_equal(ask(a, "r", 1, 10, AT(10)), 5);
    assert_int_equal(ask(a, "r", 2, 10, AT(10)), 0);
    assert_int_equal(ask(a, "r", 1, 10, AT(20)), 5);
    assert_int_equal(ask(a, "r", 2, 10, AT(20)), 5);
    static const int at[] = {30, 40, 49, 50}, reqs[] = {10, 10, 9, 1};
    static const int64_t want[] = {5, 5, 5, 10};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ask(a, "r", 1, (uint64_t)reqs[i], AT(at[i])), want[i]);
        xray_sampling_authority_counters(a, &k);
        assert_int_equal(k.clients_expired, at[i] < 50 ? 0 : 1);
        assert_int_equal(k.clients, at[i] < 50 ? 2 : 1);
    }
    assert_int_equal(xray_sampling_authority_outstanding(a, "r", AT(50)), 10);
    xray_sampling_authority_destroy(a);

    /* A window shorter than the grants: a silent client loses its weight, but its
     * live grant still counts until it expires (16 s). */
    struct xray_sampling_authority_config cfg = {.window_s = 5};
    a = one_rule("r", 10, &cfg);
    assert_int_equal(ask(a, "r", 1, 1, AT(0)), 10);
    for (int s = 6; s <= 14; s += 4) /* client 1 is silent, its grant alive */
        assert_int_equal(ask(a, "r", 2, 4, AT(s)), 0);
    assert_int_equal(ask(a, "r", 2, 3, AT(17)), 10);
    xray_sampling_authority_counters(a, &k);
    assert_int_equal(k.clients_expired, 1);
    xray_sampling_authority_destroy(a);
}

/* A SamplingTargets request body of n documents on rule, clients first.. first+n-1. */
static char *stats_body(size_t n, const char *rule, unsigned first)
{
    size_t cap = 64 + n * 200, k = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    k += (size_t)snprintf(b, cap, "{\"SamplingStatisticsDocuments\":[");
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(b + k, cap - k,
                              "%s{\"RuleName\":\"%s\",\"ClientID\":\"%024x\",\"Timestamp\":%d,"
                              "\"RequestCount\":5,\"SampledCount\":2,\"BorrowCount\":1}",
                              i ? "," : "", rule, first + (unsigned)i, T0_S);
    snprintf(b + k, cap - k, "]}");
    return b;
}

/* The body is refused with code want and an err naming field. */
static void refused(struct xray_sampling_authority *a, const char *body, int want,
                    const char *field)
{
    char err[XRAY_SAMPLING_ERR_LEN] = "";
    char *out = (char *)1;
    size_t len = 0;
    assert_int_equal(xray_sampling_authority_targets(a, body, strlen(body), AT(6), &out, &len, err),
                     want);
    assert_null(out);
    if (strstr(err, field) == NULL)
        fail_msg("err \"%s\" does not name %s", err, field);
}

static void test_authority_targets_bodies(void **state)
{
    (void)state;
    struct xray_sampling_authority *a = xray_sampling_authority_create(NULL, AT(0));
    assert_non_null(a);
    struct rule_def d = {"r", 5};
    reload(a, &d, 1, AT(5));

    char *out = NULL, err[XRAY_SAMPLING_ERR_LEN];
    size_t len = 0;
    const char *body =
        "{\"SamplingStatisticsDocuments\":[{\"RuleName\":\"r\",\"ClientID\":"
        "\"0123456789abcdefABCDEF01\",\"Timestamp\":1700000006.5,\"RequestCount\":"
        "5,\"SampledCount\":2,\"BorrowCount\":1},{\"RuleName\":\"nope\",\"ClientID\":"
        "\"0123456789abcdefABCDEF01\",\"Timestamp\":1700000006,\"RequestCount\":1,"
        "\"SampledCount\":0,\"BorrowCount\":0}]}";
    assert_int_equal(xray_sampling_authority_targets(a, body, strlen(body), AT(6), &out, &len, err),
                     0);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    json_t *root = json_loads(out, 0, NULL);
    assert_non_null(root);
    json_t *docs = json_object_get(root, "SamplingTargetDocuments");
    assert_int_equal(json_array_size(docs), 1);
    json_t *t = json_array_get(docs, 0);
    assert_string_equal(json_string_value(json_object_get(t, "RuleName")), "r");
    assert_float_equal(json_number_value(json_object_get(t, "FixedRate")), 0.1, 1e-12);
    assert_int_equal(json_integer_value(json_object_get(t, "ReservoirQuota")), 5);
    assert_int_equal(json_integer_value(json_object_get(t, "ReservoirQuotaTTL")), T0_S + 6 + 15);
    assert_int_equal(json_integer_value(json_object_get(t, "Interval")), 10);
    /* A number, as the SDKs compare it with their fetch time: the reload's time. */
    json_t *lm = json_object_get(root, "LastRuleModification");
    assert_true(json_is_integer(lm));
    assert_int_equal(json_integer_value(lm), T0_S + 5);
    json_t *un = json_object_get(root, "UnprocessedStatistics");
    assert_int_equal(json_array_size(un), 1);
    json_t *u = json_array_get(un, 0);
    assert_string_equal(json_string_value(json_object_get(u, "RuleName")), "nope");
    assert_true(json_string_length(json_object_get(u, "ErrorCode")) > 0);
    assert_true(json_string_length(json_object_get(u, "Message")) > 0);
    json_decref(root);
    free(out);

    /* 25 documents are the limit and are answered with one target for the rule. */
    char *b25 = stats_body(25, "r", 100);
    assert_int_equal(xray_sampling_authority_targets(a, b25, strlen(b25), AT(6), &out, &len, err),
                     0);
    root = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(root, "SamplingTargetDocuments")), 1);
    json_decref(root);
    free(out);
    free(b25);

    struct xray_sampling_authority_counters k;
    xray_sampling_authority_counters(a, &k);
    assert_int_equal(k.requests, 2);
    assert_int_equal(k.documents, 26);
    assert_int_equal(k.unknown_rules, 1);
    assert_int_equal(k.clients, 26);
    assert_int_equal(k.bad_requests, 0);

    /* Refused bodies: each an InvalidRequestException whose message names the field. */
    char *b26 = stats_body(26, "r", 200);
    refused(a, b26, XRAY_ESAMP_REQUEST, "SamplingStatisticsDocuments");
    free(b26);
    static const struct {
        const char *id, *count, *field;
    } bad[] = {{"0123456789abcdef0123456", "1", "ClientID"},
               {"0123456789abcdef012345678", "1", "ClientID"},
               {"0123456789abcdefg1234567", "1", "ClientID"},
               {"", "1", "ClientID"},
               {"0123456789abcdef01234567", "-1", "RequestCount"}};
    for (size_t i = 0; i < 5; i++) {
        char bb[512];
        snprintf(bb, sizeof(bb),
                 "{\"SamplingStatisticsDocuments\":[{\"RuleName\":\"r\",\"ClientID\":\"%s\","
                 "\"Timestamp\":1,\"RequestCount\":%s,\"SampledCount\":0,\"BorrowCount\":0}]}",
                 bad[i].id, bad[i].count);
        refused(a, bb, XRAY_ESAMP_REQUEST, bad[i].field);
    }
    refused(a, "{\"SamplingStatisticsDocuments\":[", XRAY_ESAMP_JSON, "input");
    refused(a, "[]", XRAY_ESAMP_JSON, "input");
    xray_sampling_authority_counters(a, &k);
    assert_int_equal(k.bad_requests, 8);
    assert_int_equal(k.requests, 2);
    assert_int_equal(k.documents, 26);

    /* The report call itself refuses more than 25 documents, writing nothing. */
    static struct xray_sampling_statistics many[26];
    struct xray_sampling_target tg[26];
    struct xray_sampling_unprocessed up[26];
    size_t nt = 9, nu = 9;
    assert_int_equal(xray_sampling_authority_report(a, many, 26, AT(6), tg, &nt, up, &nu), -EINVAL);
    assert_int_equal(nt, 0);
    assert_int_equal(nu, 0);
    xray_sampling_authority_destroy(a);
}

/* ---- the randomized run ---- */

#define SIM_CLIENTS 12
#define SIM_GRANTS  4096
#define SIM_UIDS    512
#define SIM_RULES   3 /* "small", "big", "Default" */

struct sim_client {
    struct xray_sampling_state *st; /* NULL: slot free */
    unsigned uid;                   /* never reused */
    char id[XRAY_SAMPLING_CLIENT_ID_LEN + 1];
    unsigned load; /* up to this many requests per step */
};

/* Every grant answered (delivered or lost), by the client's uid. */
struct sim_grant {
    int rule;
    unsigned uid;
    int64_t quota, ttl_s;
};

/* Per rule, the sum over clients of their largest grant still alive (now < TTL). */
static int64_t granted_alive(const struct sim_grant *g, size_t n, int rule, uint64_t now)
{
    int64_t best[SIM_UIDS] = {0}, sum = 0;
    for (size_t i = 0; i < n; i++)
        if (g[i].rule == rule && (int64_t)(now / 1000) < g[i].ttl_s &&
            g[i].quota > best[g[i].uid]) {
            sum += g[i].quota - best[g[i].uid];
            best[g[i].uid] = g[i].quota;
        }
    return sum;
}

static void test_authority_random_simulation(void **state)
{
    (void)state;
    uint64_t seed = 20240611;
    struct xray_sampling_random rng = {splitmix, &seed};
    struct xray_sampling_authority_config cfg = {.max_clients_per_rule = 8};
    struct xray_sampling_authority *a = xray_sampling_authority_create(&cfg, AT(0));
    struct rule_def defs[] = {{"small", 3}, {"big", 10}};
    reload(a, defs, 2, AT(0));
    static const char *const names[SIM_RULES] = {"small", "big", "Default"};

    struct sim_client c[SIM_CLIENTS];
    memset(c, 0, sizeof(c));
    static struct sim_grant g[SIM_GRANTS];
    size_t ng = 0;
    unsigned next_uid = 1, joined = 0, left = 0, lost = 0, refetched = 0;
    int64_t peak[SIM_RULES] = {0};
    for (int step = 0; step < 3000; step++) {
        uint64_t now = AT(0) + (uint64_t)step * 200;
        if (step == 1500) { /* a reload that raises "small" and keeps the names */
            struct rule_def more[] = {{"small", 5}, {"big", 10}};
            reload(a, more, 2, now);
        }
        for (int i = 0; i < SIM_CLIENTS; i++) {
            uint64_t r = splitmix(&seed) % 1000;
            if (c[i].st != NULL && r < 4) {
                xray_sampling_state_destroy(c[i].st); /* leaves without a word */
                c[i].st = NULL;
                left++;
            } else if (c[i].st == NULL && (r < 6 || step == 0)) {
                c[i].uid = next_uid++;
                assert_true(c[i].uid < SIM_UIDS);
                xray_sampling_client_id(c[i].id, &rng);
                c[i].load = (unsigned)(splitmix(&seed) % 6);
                c[i].st = xray_sampling_state_create(xray_sampling_authority_rules(a), c[i].id, 0,
                                                     NULL, now);
                assert_non_null(c[i].st);
                joined++;
            }
        }
        for (int i = 0; i < SIM_CLIENTS; i++) {
            if (c[i].st == NULL)
                continue;
            unsigned n = c[i].load ? (unsigned)(splitmix(&seed) % (c[i].load + 1)) : 0;
            for (unsigned j = 0; j < n; j++)
                xray_sampling_decide_rule(c[i].st, (size_t)(splitmix(&seed) % SIM_RULES), now, &rng,
                                          NULL);
            struct xray_sampling_statistics docs[XRAY_SAMPLING_MAX_STATISTICS];
            size_t nd = xray_sampling_state_report(c[i].st, now, docs, 25), nt, blen, olen;
            if (nd == 0)
                continue;
            char *body, *out, err[XRAY_SAMPLING_ERR_LEN];
            assert_int_equal(xray_sampling_statistics_serialize(docs, nd, &body, &blen), 0);
            assert_int_equal(xray_sampling_authority_targets(a, body, blen, now, &out, &olen, err),
                             0);
            struct xray_sampling_target t[XRAY_SAMPLING_MAX_STATISTICS];
            int64_t lm;
            assert_int_equal(xray_sampling_targets_parse(out, olen, t, 25, &nt, &lm, err), 0);
            assert_int_equal(nt, nd);
            for (size_t j = 0; j < nt; j++) {
                int ri = 0;
                while (strcmp(names[ri], t[j].rule_name) != 0)
                    ri++;
                assert_true(ng < SIM_GRANTS);
                g[ng++] = (struct sim_grant){ri, c[i].uid, t[j].reservoir_quota, t[j].quota_ttl_s};
            }
            if (splitmix(&seed) % 8 == 0) {
                lost++; /* the answer never arrives; the client keeps its old quota */
            } else if (xray_sampling_state_apply(c[i].st, t, nt, lm, now) == 1) {
                struct xray_sampling_state *st = xray_sampling_state_create(
                    xray_sampling_authority_rules(a), c[i].id, 0, c[i].st, now);
                assert_non_null(st);
                xray_sampling_state_destroy(c[i].st);
                c[i].st = st;
                refetched++;
            }
            free(body);
            free(out);
        }
        /* The invariant, three ways: the authority's count, the grants it answered,
         * and the quotas the clients hold. */
        size_t k = 0;
        for (size_t j = 0; j < ng; j++)
            if ((int64_t)(now / 1000) < g[j].ttl_s + 1)
                g[k++] = g[j];
        ng = k;
        const struct xray_sampling_rules *served = xray_sampling_authority_rules(a);
        for (int ri = 0; ri < SIM_RULES; ri++) {
            int64_t size = xray_sampling_rules_get(served, (size_t)ri)->reservoir_size;
            int64_t held = xray_sampling_authority_outstanding(a, names[ri], now);
            int64_t alive = granted_alive(g, ng, ri, now), live_q = 0;
            for (int i = 0; i < SIM_CLIENTS; i++) {
                struct xray_sampling_rule_status s;
                if (c[i].st == NULL)
                    continue;
                assert_int_equal(xray_sampling_state_rule_status(c[i].st, (size_t)ri, now, &s), 0);
                live_q += s.quota_live ? s.quota : 0;
            }
            if (held > size || alive > size || live_q > size || held < alive)
                fail_msg("step %d %s: size %lld, outstanding %lld, granted %lld, held %lld", step,
                         names[ri], (long long)size, (long long)held, (long long)alive,
                         (long long)live_q);
            if (held > peak[ri])
                peak[ri] = held;
        }
    }
    /* The run did reach the limits it checks. */
    assert_int_equal(peak[0], 5);
    assert_int_equal(peak[1], 10);
    assert_int_equal(peak[2], 1);
    assert_true(joined > 20 && left > 10 && lost > 10 && refetched > 0);
    struct xray_sampling_authority_counters k;
    xray_sampling_authority_counters(a, &k);
    assert_true(k.clients_expired > 0);
    assert_true(k.clients_refused > 0);
    for (int i = 0; i < SIM_CLIENTS; i++)
        xray_sampling_state_destroy(c[i].st);
    xray_sampling_authority_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authority_limits_and_reload),
        cmocka_unit_test(test_authority_proportional_shares),
        cmocka_unit_test(test_authority_newcomer_equal_share),
        cmocka_unit_test(test_authority_largest_remainder),
        cmocka_unit_test(test_authority_departed_returned),
        cmocka_unit_test(test_authority_targets_bodies),
        cmocka_unit_test(test_authority_random_simulation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
