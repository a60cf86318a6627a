/* SPDX-License-Identifier: Apache-2.0 */
/* libxray_sampling, the rules: parsing both shapes, every constraint named with its
 * rule and field, the local -> centralized mapping, matching, and the round trip
 * through the GetSamplingRules body. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "xray/sampling.h"

#define NOW_S 1700000000

static const struct xray_sampling_parse_options opts = {.now_s = NOW_S};

static struct xray_sampling_rules *parse_ok(const char *json)
{
    struct xray_sampling_rules *rs = NULL;
    char err[XRAY_SAMPLING_ERR_LEN];
    int rc = xray_sampling_rules_parse(json, strlen(json), &opts, &rs, err);
    if (rc != 0)
        fail_msg("parse failed (%d): %s", rc, err);
    assert_non_null(rs);
    return rs;
}

/* A rule of the centralized shape; "%s" slots: name, priority, extra fields. */
static char *rule_json(const char *name, int priority, const char *svc, const char *host,
                       const char *method, const char *path)
{
    char *buf = malloc(1024);
    snprintf(buf, 1024,
             "{\"SamplingRule\":{\"RuleName\":\"%s\",\"ResourceARN\":\"*\",\"Priority\":%d,"
             "\"FixedRate\":0.1,\"ReservoirSize\":2,\"ServiceName\":\"%s\",\"ServiceType\":\"*\","
             "\"Host\":\"%s\",\"HTTPMethod\":\"%s\",\"URLPath\":\"%s\",\"Version\":1,"
             "\"Attributes\":{}}}",
             name, priority, svc, host, method, path);
    return buf;
}

static const char *DEFAULT_REC =
    "{\"SamplingRule\":{\"RuleName\":\"Default\",\"RuleARN\":\"arn:aws:xray:us-east-1:"
    "123456789012:sampling-rule/Default\",\"ResourceARN\":\"*\",\"Priority\":10000,"
    "\"FixedRate\":0.05,\"ReservoirSize\":1,\"ServiceName\":\"*\",\"ServiceType\":\"*\","
    "\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\",\"Version\":1,\"Attributes\":{}},"
    "\"CreatedAt\":0.0,\"ModifiedAt\":1530558121.0}";

/* What `aws xray get-sampling-rules` prints with CLI v2 (ISO times) and v1 (numbers). */
static const char *CLI_OUTPUT =
    "{\n"
    "    \"SamplingRuleRecords\": [\n"
    "        {\n"
    "            \"SamplingRule\": {\n"
    "                \"RuleName\": \"Default\",\n"
    "                \"RuleARN\": \"arn:aws:xray:us-east-1:123456789012:sampling-rule/Default\",\n"
    "                \"ResourceARN\": \"*\",\n"
    "                \"Priority\": 10000,\n"
    "                \"FixedRate\": 0.05,\n"
    "                \"ReservoirSize\": 1,\n"
    "                \"ServiceName\": \"*\",\n"
    "                \"ServiceType\": \"*\",\n"
    "                \"Host\": \"*\",\n"
    "                \"HTTPMethod\": \"*\",\n"
    "                \"URLPath\": \"*\",\n"
    "                \"Version\": 1,\n"
    "                \"Attributes\": {}\n"
    "            },\n"
    "            \"CreatedAt\": \"1970-01-01T00:00:00+00:00\",\n"
    "            \"ModifiedAt\": \"2018-07-02T19:02:01+00:00\"\n"
    "        },\n"
    "        {\n"
    "            \"SamplingRule\": {\n"
    "                \"RuleName\": \"polling\",\n"
    "                \"RuleARN\": \"arn:aws:xray:us-east-1:123456789012:sampling-rule/polling\",\n"
    "                \"ResourceARN\": \"*\",\n"
    "                \"Priority\": 9000,\n"
    "                \"FixedRate\": 0.003,\n"
    "                \"ReservoirSize\": 0,\n"
    "                \"ServiceName\": \"Scorekeep\",\n"
    "                \"ServiceType\": \"*\",\n"
    "                \"Host\": \"*\",\n"
    "                \"HTTPMethod\": \"GET\",\n"
    "                \"URLPath\": \"/api/state/*\",\n"
    "                \"Version\": 1,\n"
    "                \"Attributes\": {}\n"
    "            },\n"
    "            \"CreatedAt\": 1530559000.5,\n"
    "            \"ModifiedAt\": \"2018-07-02T12:16:40.123-07:00\"\n"
    "        }\n"
    "    ]\n"
    "}\n";

static void test_rules_parse_cli_output(void **st)
{
    (void)st;
    struct xray_sampling_rules *rs = parse_ok(CLI_OUTPUT);
    assert_int_equal(xray_sampling_rules_count(rs), 2);
    assert_int_equal(xray_sampling_rules_source(rs), XRAY_SAMPLING_SOURCE_CENTRALIZED);
    const struct xray_sampling_rule *p = xray_sampling_rules_get(rs, 0);
    const struct xray_sampling_rule *d = xray_sampling_rules_get(rs, 1);
    assert_null(xray_sampling_rules_get(rs, 2));
    assert_string_equal(p->name, "polling");
    assert_string_equal(p->arn, "arn:aws:xray:us-east-1:123456789012:sampling-rule/polling");
    assert_int_equal(p->priority, 9000);
    assert_true(p->fixed_rate == 0.003);
    assert_int_equal(p->reservoir_size, 0);
    assert_string_equal(p->service_name, "Scorekeep");
    assert_string_equal(p->http_method, "GET");
    assert_string_equal(p->url_path, "/api/state/*");
    assert_int_equal(p->created_at, 1530559000);
    assert_int_equal(p->modified_at, 1530559000); /* 12:16:40-07:00 is 19:16:40Z */
    assert_string_equal(d->name, "Default");
    assert_int_equal(d->priority, 10000);
    assert_int_equal(d->created_at, 0);
    assert_int_equal(d->modified_at, 1530558121);
    assert_int_equal(d->drop, 0);
    assert_int_equal(xray_sampling_rules_find(rs, "polling"), 0);
    assert_int_equal(xray_sampling_rules_find(rs, "Default"), 1);
    assert_int_equal(xray_sampling_rules_find(rs, "POLLING"), -1);
    xray_sampling_rules_free(rs);
}

static struct xray_sampling_rules *set_of(const char *recs)
{
    char *json = malloc(strlen(recs) + strlen(DEFAULT_REC) + 64);
    sprintf(json, "{\"SamplingRuleRecords\":[%s%s%s]}", recs, recs[0] ? "," : "", DEFAULT_REC);
    struct xray_sampling_rules *rs = parse_ok(json);
    free(json);
    return rs;
}

static const char *matched(const struct xray_sampling_rules *rs, const char *svc, const char *type,
                           const char *host, const char *method, const char *path)
{
    struct xray_sampling_request req = {xray_sampling_str_c(svc), xray_sampling_str_c(type),
                                        xray_sampling_str_c(host), xray_sampling_str_c(method),
                                        xray_sampling_str_c(path)};
    return xray_sampling_rules_get(rs, xray_sampling_rules_match(rs, &req))->name;
}

static void test_rules_match_table(void **st)
{
    (void)st;
    char *r[8];
    r[0] = rule_json("exact", 10, "Orders", "*", "POST", "/api/orders");
    r[1] = rule_json("prefix", 20, "*", "*", "GET", "/api/*");
    r[2] = rule_json("glob", 30, "svc-??", "*.example.com", "*", "/v*/items/*/detail");
    r[3] = rule_json("tie-b", 40, "tie", "*", "*", "*");
    r[4] = rule_json("tie-a", 40, "tie", "*", "*", "*");
    r[5] = rule_json("utf8", 50, "caf?", "*", "*", "*");
    r[6] = rule_json("empty", 60, "", "*", "*", "*");
    r[7] = rule_json("stars", 70, "**x**", "*", "*", "*");
    char recs[8192] = "";
    for (int i = 0; i < 8; i++) {
        strcat(recs, i ? "," : "");
        strcat(recs, r[i]);
        free(r[i]);
    }
    struct xray_sampling_rules *rs = set_of(recs);
    static const struct {
        const char *svc, *type, *host, *method, *path, *want;
    } t[] = {
        {"Orders", "AWS::EC2::Instance", "h", "POST", "/api/orders", "exact"},
        {"ORDERS", NULL, NULL, "post", "/API/ORDERS", "exact"}, /* case-insensitive */
        {"Orders", NULL, NULL, "GET", "/api/orders/", "prefix"},
        {"Orders", NULL, NULL, "PUT", "/api/orders", "Default"}, /* method differs */
        {NULL, NULL, NULL, NULL, NULL, "exact"},                 /* all missing: first */
        {"Orders", NULL, NULL, NULL, NULL, "exact"},             /* missing matches */
        {"Other", NULL, NULL, "GET", "/api/", "prefix"},         /* prefix, empty rest */
        {"Other", NULL, NULL, "GET", "/ap", "Default"},          /* shorter than prefix */
        {"svc-01", NULL, "a.example.com", "PUT", "/v2/items/9/detail", "glob"},
        {"SVC-ab", NULL, "A.EXAMPLE.COM", "PUT", "/v/items//detail", "glob"},
        {"svc-1", NULL, "a.example.com", "PUT", "/v2/items/9/detail", "Default"}, /* ? is one */
        {"svc-001", NULL, "a.example.com", "PUT", "/v2/items/9/detail", "Default"},
        {"svc-01", NULL, "example.com", "PUT", "/v2/items/9/detail", "Default"},
        {"svc-01", NULL, "a.example.com", "PUT", "/v2/items/9/detail/x", "Default"},
        {"svc-01", NULL, "a.example.com", "PUT", "/v2/items/a/b/detail", "glob"},
        {"tie", NULL, NULL, "DELETE", "/z", "tie-a"}, /* priority tie: by name */
        {"café", NULL, NULL, "DELETE", "/z", "utf8"}, /* '?' is one code point */
        {"cafée", NULL, NULL, "DELETE", "/z", "Default"},
        {"", NULL, NULL, "DELETE", "/z", "empty"}, /* "" matches only "" */
        {"abxcd", NULL, NULL, "DELETE", "/z", "stars"},
        {"x", NULL, NULL, "DELETE", "/z", "stars"},
        {"abc", NULL, NULL, "DELETE", "/z", "Default"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        const char *got = matched(rs, t[i].svc, t[i].type, t[i].host, t[i].method, t[i].path);
        if (strcmp(got, t[i].want) != 0)
            fail_msg("case %zu: matched %s, want %s", i, got, t[i].want);
    }
    /* Match order: priority, then name, Default last. */
    const char *order[] = {"exact", "prefix", "glob",  "tie-a",  "tie-b",
                           "utf8",  "empty",  "stars", "Default"};
    for (size_t i = 0; i < 9; i++)
        assert_string_equal(xray_sampling_rules_get(rs, i)->name, order[i]);
    xray_sampling_rules_free(rs);
}

/* A plain recursive glob, the reference for the compiled matcher. */
static bool ref_glob(const char *p, const char *s)
{
    if (*p == '\0')
        return *s == '\0';
    if (*p == '*')
        return ref_glob(p + 1, s) || (*s != '\0' && ref_glob(p, s + 1));
    if (*s == '\0')
        return false;
    if (*p == '?' || (*p | 0x20) == (*s | 0x20))
        return ref_glob(p + 1, s + 1);
    return false;
}

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void rnd_text(uint64_t *x, char *out, const char *alphabet, int max)
{
    int n = (int)(rnd(x) % (uint64_t)(max + 1));
    for (int i = 0; i < n; i++)
        out[i] = alphabet[rnd(x) % strlen(alphabet)];
    out[n] = '\0';
}

/* Random rule sets (linear walk and index) against the reference, on random requests. */
static void test_rules_match_differential(void **st)
{
    (void)st;
    uint64_t x = 88172645463325252ull;
    const int sizes[] = {3, 7, 8, 30, 150, 999};
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        int n = sizes[si];
        char *json = malloc((size_t)n * 400 + 1024), *p = json;
        p += sprintf(p, "{\"SamplingRuleRecords\":[");
        for (int i = 0; i < n; i++) {
            char pat[5][8];
            for (int f = 0; f < 5; f++) {
                uint64_t kind = rnd(&x) % 4;
                rnd_text(&x, pat[f], kind == 0 ? "*" : kind == 1 ? "abAB" : "abAB*?", 4);
                if (f == 1 && pat[f][0] == '\0' && rnd(&x) % 2)
                    strcpy(pat[f], "*"); /* an empty ServiceType is dropped: some of both */
            }
            p += sprintf(p,
                         "{\"SamplingRule\":{\"RuleName\":\"r%03d\",\"ResourceARN\":\"*\","
                         "\"Priority\":%d,\"FixedRate\":0,\"ReservoirSize\":0,"
                         "\"ServiceName\":\"%s\",\"ServiceType\":\"%s\",\"Host\":\"%s\","
                         "\"HTTPMethod\":\"%s\",\"URLPath\":\"%s\",\"Version\":1}},",
                         i, 1 + (int)(rnd(&x) % 20), pat[0], pat[1], pat[2], pat[3], pat[4]);
        }
        sprintf(p, "%s]}", DEFAULT_REC);
        struct xray_sampling_rules *rs = parse_ok(json);
        free(json);
        size_t count = xray_sampling_rules_count(rs);
        for (size_t i = 1; i + 1 < count; i++) {
            const struct xray_sampling_rule *a = xray_sampling_rules_get(rs, i - 1);
            const struct xray_sampling_rule *b = xray_sampling_rules_get(rs, i);
            assert_true(a->priority < b->priority ||
                        (a->priority == b->priority && strcmp(a->name, b->name) < 0));
        }
        for (int q = 0; q < 3000; q++) {
            char val[5][8];
            const char *vp[5];
            for (int f = 0; f < 5; f++) {
                rnd_text(&x, val[f], "abAB", 4);
                vp[f] = rnd(&x) % 6 == 0 ? NULL : val[f];
            }
            struct xray_sampling_request req = {
                xray_sampling_str_c(vp[0]), xray_sampling_str_c(vp[1]), xray_sampling_str_c(vp[2]),
                xray_sampling_str_c(vp[3]), xray_sampling_str_c(vp[4])};
            size_t want = count - 1;
            for (size_t i = 0; i + 1 < count; i++) {
                const struct xray_sampling_rule *r = xray_sampling_rules_get(rs, i);
                const char *pats[5] = {r->service_name, r->service_type, r->host, r->http_method,
                                       r->url_path};
                bool ok = r->service_type[0] != '\0';
                for (int f = 0; f < 5 && ok; f++)
                    ok = vp[f] == NULL || ref_glob(pats[f], vp[f]);
                if (ok) {
                    want = i;
                    break;
                }
            }
            size_t got = xray_sampling_rules_match(rs, &req);
            if (got != want)
                fail_msg("%d rules, request %d: matched %zu, want %zu", n, q, got, want);
        }
        xray_sampling_rules_free(rs);
    }
}

static void test_rules_match_lengths(void **st)
{
    (void)st;
    /* (ptr, len) views: bytes past len are not read, no NUL needed. */
    char *r = rule_json("exact", 1, "abc", "*", "*", "*");
    struct xray_sampling_rules *rs = set_of(r);
    free(r);
    struct xray_sampling_request req = {0};
    req.service_name.p = "abcdef";
    req.service_name.len = 3;
    assert_string_equal(xray_sampling_rules_get(rs, xray_sampling_rules_match(rs, &req))->name,
                        "exact");
    req.service_name.len = 4;
    assert_string_equal(xray_sampling_rules_get(rs, xray_sampling_rules_match(rs, &req))->name,
                        "Default");
    xray_sampling_rules_free(rs);
}

static void test_rules_dropped_flagged(void **st)
{
    (void)st;
    const char *recs =
        "{\"SamplingRule\":{\"RuleName\":\"v2\",\"ResourceARN\":\"*\",\"Priority\":1,"
        "\"FixedRate\":1,\"ReservoirSize\":5,\"ServiceName\":\"*\",\"ServiceType\":\"*\","
        "\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\",\"Version\":2}},"
        "{\"SamplingRule\":{\"RuleName\":\"arn\",\"ResourceARN\":\"arn:aws:ecs:x\","
        "\"Priority\":2,\"FixedRate\":1,\"ReservoirSize\":5,\"ServiceName\":\"*\","
        "\"ServiceType\":\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\","
        "\"Version\":1}},"
        "{\"SamplingRule\":{\"RuleName\":\"type\",\"ResourceARN\":\"*\",\"Priority\":3,"
        "\"FixedRate\":1,\"ReservoirSize\":5,\"ServiceName\":\"*\",\"ServiceType\":\"\","
        "\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\",\"Version\":1}},"
        "{\"SamplingRule\":{\"RuleName\":\"attrs\",\"ResourceARN\":\"*\",\"Priority\":4,"
        "\"FixedRate\":1,\"ReservoirSize\":5,\"ServiceName\":\"*\",\"ServiceType\":\"*\","
        "\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\",\"Version\":1,"
        "\"Attributes\":{\"tier\":\"gold\",\"k2\":\"v2\"}}},"
        "{\"SamplingRule\":{\"RuleName\":\"noattrs\",\"ResourceARN\":\"*\",\"Priority\":5,"
        "\"FixedRate\":1,\"ReservoirSize\":5,\"ServiceName\":\"*\",\"ServiceType\":\"*\","
        "\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\",\"Version\":1}}";
    struct xray_sampling_rules *rs = set_of(recs);
    assert_int_equal(xray_sampling_rules_get(rs, 0)->drop, XRAY_SAMPLING_DROP_VERSION);
    assert_int_equal(xray_sampling_rules_get(rs, 1)->drop, XRAY_SAMPLING_DROP_RESOURCE_ARN);
    assert_int_equal(xray_sampling_rules_get(rs, 2)->drop, XRAY_SAMPLING_DROP_SERVICE_TYPE);
    assert_int_equal(xray_sampling_rules_get(rs, 3)->drop, XRAY_SAMPLING_DROP_ATTRIBUTES);
    assert_int_equal(xray_sampling_rules_get(rs, 3)->n_attributes, 2);
    assert_string_equal(xray_sampling_rules_get(rs, 3)->attributes[1], "gold");
    assert_int_equal(xray_sampling_rules_get(rs, 4)->drop, 0); /* absent Attributes is fine */
    assert_string_equal(xray_sampling_drop_reason(XRAY_SAMPLING_DROP_VERSION), "Version is not 1");
    assert_string_equal(xray_sampling_drop_reason(0), "");
    /* Flagged rules never match. */
    assert_string_equal(matched(rs, "x", "y", "z", "GET", "/"), "noattrs");
    /* Served body: no flagged rule, every rule with "Attributes":{}. */
    char *body;
    size_t len;
    assert_int_equal(xray_sampling_rules_serialize(rs, 0, &body, &len), 0);
    assert_int_equal(strlen(body), len);
    json_t *root = json_loads(body, 0, NULL);
    assert_non_null(root);
    json_t *recs_out = json_object_get(root, "SamplingRuleRecords");
    assert_int_equal(json_array_size(recs_out), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *rec = json_array_get(recs_out, i);
        json_t *rule = json_object_get(rec, "SamplingRule");
        json_t *attrs = json_object_get(rule, "Attributes");
        assert_true(json_is_object(attrs));
        assert_int_equal(json_object_size(attrs), 0);
        assert_true(json_is_integer(json_object_get(rec, "CreatedAt")));
        assert_true(json_is_integer(json_object_get(rec, "ModifiedAt")));
        assert_true(json_is_number(json_object_get(rule, "FixedRate")));
    }
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_array_get(recs_out, 0), "SamplingRule"), "RuleName")),
        "noattrs");
    assert_null(json_object_get(root, "NextToken"));
    json_decref(root);
    free(body);
    xray_sampling_rules_free(rs);
}

static void test_rules_round_trip(void **st)
{
    (void)st;
    const char *recs =
        "{\"SamplingRule\":{\"RuleName\":\"we\\\"ird \\\\ \\u00e9\\u0001\",\"ResourceARN\":\"*\","
        "\"Priority\":7,\"FixedRate\":0.1,\"ReservoirSize\":3,\"ServiceName\":\"a\\nb\","
        "\"ServiceType\":\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"/x?y*\","
        "\"Version\":1}}";
    /* A control character in a name is refused; take it out and try again. */
    struct xray_sampling_rules *rs = NULL;
    char err[XRAY_SAMPLING_ERR_LEN];
    char *json = malloc(8192);
    sprintf(json, "{\"SamplingRuleRecords\":[%s,%s]}", recs, DEFAULT_REC);
    assert_int_equal(xray_sampling_rules_parse(json, strlen(json), &opts, &rs, err),
                     XRAY_ESAMP_RULE);
    assert_non_null(strstr(err, "RuleName"));
    char *p = strstr(json, "\\u0001");
    memmove(p, p + 6, strlen(p + 6) + 1);
    rs = parse_ok(json);
    free(json);
    assert_string_equal(xray_sampling_rules_get(rs, 0)->name, "we\"ird \\ \xc3\xa9");
    for (unsigned flags = 0; flags < 2; flags++) {
        char *body;
        size_t len;
        assert_int_equal(xray_sampling_rules_serialize(rs, flags, &body, &len), 0);
        struct xray_sampling_rules *again = parse_ok(body);
        assert_true(xray_sampling_rules_equal(rs, again));
        xray_sampling_rules_free(again);
        free(body);
    }
    /* Flagged rules need SERIALIZE_ALL to come back. */
    struct xray_sampling_rules *fl =
        set_of("{\"SamplingRule\":{\"RuleName\":\"attrs\",\"ResourceARN\":\"*\",\"Priority\":4,"
               "\"FixedRate\":0.25,\"ReservoirSize\":5,\"ServiceName\":\"*\",\"ServiceType\":\"*\","
               "\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\",\"Version\":1,"
               "\"Attributes\":{\"tier\":\"gold\"}}}");
    char *body;
    assert_int_equal(xray_sampling_rules_serialize(fl, XRAY_SAMPLING_SERIALIZE_ALL, &body, NULL),
                     0);
    struct xray_sampling_rules *again = parse_ok(body);
    assert_true(xray_sampling_rules_equal(fl, again));
    xray_sampling_rules_free(again);
    free(body);
    assert_int_equal(xray_sampling_rules_serialize(fl, 0, &body, NULL), 0);
    again = parse_ok(body);
    assert_false(xray_sampling_rules_equal(fl, again));
    assert_int_equal(xray_sampling_rules_count(again), 1);
    xray_sampling_rules_free(again);
    free(body);
    xray_sampling_rules_free(fl);
    xray_sampling_rules_free(rs);
}

static const char *LOCAL_V2 =
    "{\"version\":2,\"rules\":["
    "{\"description\":\"Player moves.\",\"host\":\"*\",\"http_method\":\"*\","
    "\"url_path\":\"/api/move/*\",\"fixed_target\":0,\"rate\":0.05},"
    "{\"description\":\"dup\",\"host\":\"a.example.com\",\"http_method\":\"GET\","
    "\"url_path\":\"*\",\"fixed_target\":3,\"rate\":0.5},"
    "{\"description\":\"dup\",\"host\":\"b\",\"http_method\":\"GET\",\"url_path\":\"*\","
    "\"fixed_target\":1,\"rate\":0.5},"
    "{\"host\":\"c\",\"http_method\":\"PUT\",\"url_path\":\"*\",\"fixed_target\":1,\"rate\":1},"
    "{\"description\":\"a description that is far too long for a rule name\",\"host\":\"d\","
    "\"http_method\":\"*\",\"url_path\":\"*\",\"fixed_target\":1,\"rate\":0},"
    "{\"description\":\"Default\",\"host\":\"e\",\"http_method\":\"*\",\"url_path\":\"*\","
    "\"fixed_target\":1,\"rate\":0},"
    "{\"description\":\"local-2\",\"host\":\"f\",\"http_method\":\"*\",\"url_path\":\"*\","
    "\"fixed_target\":1,\"rate\":0},"
    "{\"description\":\"\",\"host\":\"g\",\"http_method\":\"*\",\"url_path\":\"*\","
    "\"fixed_target\":1,\"rate\":0}"
    "],\"default\":{\"fixed_target\":2,\"rate\":0.1}}";

static void test_local_rules_v2_mapping(void **st)
{
    (void)st;
    struct xray_sampling_parse_options o = {
        .now_s = NOW_S, .region = "eu-west-1", .account_id = "123456789012"};
    struct xray_sampling_rules *rs = NULL;
    char err[XRAY_SAMPLING_ERR_LEN];
    assert_int_equal(xray_sampling_rules_parse(LOCAL_V2, strlen(LOCAL_V2), &o, &rs, err), 0);
    assert_int_equal(xray_sampling_rules_source(rs), XRAY_SAMPLING_SOURCE_LOCAL_V2);
    assert_int_equal(xray_sampling_rules_count(rs), 9);
    const char *names[] = {"Player moves.", "local-2", "local-3", "local-4", "local-5",
                           "local-6",       "local-7", "local-8", "Default"};
    for (int i = 0; i < 9; i++) {
        const struct xray_sampling_rule *r = xray_sampling_rules_get(rs, (size_t)i);
        assert_string_equal(r->name, names[i]);
        assert_int_equal(r->priority, i < 8 ? i + 1 : 10000);
        assert_string_equal(r->service_name, "*");
        assert_string_equal(r->service_type, "*");
        assert_string_equal(r->resource_arn, "*");
        assert_int_equal(r->version, 1);
        assert_int_equal(r->n_attributes, 0);
        assert_int_equal(r->drop, 0);
        assert_int_equal(r->created_at, NOW_S);
        assert_int_equal(r->modified_at, NOW_S);
        char arn[128];
        snprintf(arn, sizeof(arn), "arn:aws:xray:eu-west-1:123456789012:sampling-rule/%s",
                 names[i]);
        assert_string_equal(r->arn, arn);
    }
    const struct xray_sampling_rule *r = xray_sampling_rules_get(rs, 1);
    assert_string_equal(r->host, "a.example.com");
    assert_string_equal(r->http_method, "GET");
    assert_string_equal(r->url_path, "*");
    assert_int_equal(r->reservoir_size, 3);
    assert_true(r->fixed_rate == 0.5);
    r = xray_sampling_rules_get(rs, 8);
    assert_string_equal(r->host, "*");
    assert_string_equal(r->url_path, "*");
    assert_int_equal(r->reservoir_size, 2);
    assert_true(r->fixed_rate == 0.1);
    assert_string_equal(matched(rs, "x", NULL, "C", "put", "/"), "local-4");
    assert_string_equal(matched(rs, "x", NULL, "zzz", "put", "/api/move/1"), "Player moves.");
    /* Served as centralized rules, and read back the same. */
    char *body;
    assert_int_equal(xray_sampling_rules_serialize(rs, 0, &body, NULL), 0);
    struct xray_sampling_rules *again = parse_ok(body);
    assert_true(xray_sampling_rules_equal(rs, again));
    free(body);
    xray_sampling_rules_free(again);
    xray_sampling_rules_free(rs);
}

static void test_local_rules_v1_mapping(void **st)
{
    (void)st;
    const char *v1 = "{\"version\":1,\"default\":{\"fixed_target\":1,\"rate\":0.05},"
                     "\"rules\":[{\"description\":\"checkout\",\"service_name\":\"shop-*\","
                     "\"http_method\":\"POST\",\"url_path\":\"/checkout\",\"fixed_target\":10,"
                     "\"rate\":0.2}]}";
    struct xray_sampling_rules *rs = parse_ok(v1);
    assert_int_equal(xray_sampling_rules_source(rs), XRAY_SAMPLING_SOURCE_LOCAL_V1);
    assert_int_equal(xray_sampling_rules_count(rs), 2);
    const struct xray_sampling_rule *r = xray_sampling_rules_get(rs, 0);
    assert_string_equal(r->name, "checkout");
    assert_int_equal(r->priority, 1);
    assert_string_equal(r->service_name, "shop-*");
    assert_string_equal(r->host, "*");
    assert_int_equal(r->reservoir_size, 10);
    assert_string_equal(r->arn, "arn:aws:xray:local:000000000000:sampling-rule/checkout");
    r = xray_sampling_rules_get(rs, 1);
    assert_string_equal(r->name, "Default");
    assert_int_equal(r->reservoir_size, 1);
    assert_true(r->fixed_rate == 0.05);
    assert_string_equal(matched(rs, "Shop-EU", NULL, "h", "post", "/checkout"), "checkout");
    assert_string_equal(matched(rs, "cart", NULL, "h", "post", "/checkout"), "Default");
    xray_sampling_rules_free(rs);
    /* Default only, no rules array. */
    rs = parse_ok("{\"version\":2,\"default\":{\"fixed_target\":0,\"rate\":1}}");
    assert_int_equal(xray_sampling_rules_count(rs), 1);
    xray_sampling_rules_free(rs);
}

#define CENTRAL(fields)                                                                            \
    "{\"SamplingRuleRecords\":[{\"SamplingRule\":{\"RuleName\":\"r1\",\"ResourceARN\":\"*\","      \
    "\"ServiceType\":\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\"," fields "}},"    \
    "{\"SamplingRule\":{\"RuleName\":\"Default\",\"ResourceARN\":\"*\",\"Priority\":10000,"        \
    "\"FixedRate\":0.05,\"ReservoirSize\":1,\"ServiceName\":\"*\",\"ServiceType\":\"*\","          \
    "\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\",\"Version\":1}}]}"
#define OK_FIELDS "\"Priority\":1,\"FixedRate\":0.5,\"ReservoirSize\":1,\"ServiceName\":\"s\","
#define LOCAL(rule)                                                                                \
    "{\"version\":2,\"default\":{\"fixed_target\":1,\"rate\":0.1},\"rules\":[" rule "]}"
#define LOCAL_OK "\"host\":\"*\",\"http_method\":\"*\",\"url_path\":\"*\""

static void test_rules_errors_named(void **st)
{
    (void)st;
    static const struct {
        const char *json;
        int rc;
        const char *want[2]; /* substrings of err: where and field */
    } t[] = {
        {"", XRAY_ESAMP_JSON, {"input", "line"}},
        {"[1]", XRAY_ESAMP_JSON, {"input", "object"}},
        {"{\"a\":1}", XRAY_ESAMP_RULE, {"input", "SamplingRuleRecords"}},
        {"{\"SamplingRuleRecords\":{}}", XRAY_ESAMP_RULE, {"input", "SamplingRuleRecords"}},
        {"{\"SamplingRuleRecords\":[1]}",
         XRAY_ESAMP_RULE,
         {"SamplingRuleRecords[0]", "SamplingRule"}},
        {CENTRAL("\"FixedRate\":0.5,\"ReservoirSize\":1,\"ServiceName\":\"s\",\"Version\":1"),
         XRAY_ESAMP_RULE,
         {"rule \"r1\"", "Priority: missing"}},
        {CENTRAL("\"Priority\":0,\"FixedRate\":0.5,\"ReservoirSize\":1,\"ServiceName\":\"s\","
                 "\"Version\":1"),
         XRAY_ESAMP_RULE,
         {"rule \"r1\"", "Priority"}},
        {CENTRAL("\"Priority\":10000,\"FixedRate\":0.5,\"ReservoirSize\":1,\"ServiceName\":\"s\","
                 "\"Version\":1"),
         XRAY_ESAMP_RULE,
         {"rule \"r1\"", "Priority: must be an integer from 1 to 9999"}},
        {CENTRAL("\"Priority\":\"1\",\"FixedRate\":0.5,\"ReservoirSize\":1,\"ServiceName\":\"s\","
                 "\"Version\":1"),
         XRAY_ESAMP_RULE,
         {"rule \"r1\"", "Priority"}},
        {CENTRAL("\"Priority\":1,\"FixedRate\":1.5,\"ReservoirSize\":1,\"ServiceName\":\"s\","
                 "\"Version\":1"),
         XRAY_ESAMP_RULE,
         {"rule \"r1\"", "FixedRate"}},
        {CENTRAL("\"Priority\":1,\"FixedRate\":-0.1,\"ReservoirSize\":1,\"ServiceName\":\"s\","
                 "\"Version\":1"),
         XRAY_ESAMP_RULE,
         {"rule \"r1\"", "FixedRate"}},
        {CENTRAL("\"Priority\":1,\"FixedRate\":0.5,\"ReservoirSize\":-1,\"ServiceName\":\"s\","
                 "\"Version\":1"),
         XRAY_ESAMP_RULE,
         {"rule \"r1\"", "ReservoirSize"}},
        {CENTRAL(OK_FIELDS "\"Version\":0"), XRAY_ESAMP_RULE, {"rule \"r1\"", "Version"}},
        {CENTRAL("\"Priority\":1,\"FixedRate\":0.5,\"ReservoirSize\":1,\"Version\":1"),
         XRAY_ESAMP_RULE,
         {"rule \"r1\"", "ServiceName: missing"}},
        {CENTRAL("\"Priority\":1,\"FixedRate\":0.5,\"ReservoirSize\":1,\"ServiceName\":"
                 "\"0123456789012345678901234567890123456789012345678901234567890123456789\","
                 "\"Version\":1"),
         XRAY_ESAMP_RULE,
         {"rule \"r1\"", "ServiceName: must be 0 to 64"}},
        {CENTRAL(OK_FIELDS "\"Version\":1,\"Attributes\":[]"),
         XRAY_ESAMP_RULE,
         {"rule \"r1\"", "Attributes"}},
        {CENTRAL(OK_FIELDS "\"Version\":1,\"Attributes\":{\"k\":1}"),
         XRAY_ESAMP_RULE,
         {"rule \"r1\"", "Attributes"}},
        {CENTRAL(OK_FIELDS "\"Version\":1,\"RuleARN\":5"),
         XRAY_ESAMP_RULE,
         {"rule \"r1\"", "RuleARN"}},
        {"{\"SamplingRuleRecords\":[{\"SamplingRule\":{\"RuleName\":\"Default\","
         "\"ResourceARN\":\"*\",\"Priority\":10000,\"FixedRate\":0.05,\"ReservoirSize\":1,"
         "\"ServiceName\":\"*\",\"ServiceType\":\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\","
         "\"URLPath\":\"*\",\"Version\":1},\"CreatedAt\":\"yesterday\"}]}",
         XRAY_ESAMP_RULE,
         {"rule \"Default\"", "CreatedAt"}},
        {"{\"SamplingRuleRecords\":[{\"SamplingRule\":{\"RuleName\":\"Default\","
         "\"ResourceARN\":\"*\",\"Priority\":9,\"FixedRate\":0.05,\"ReservoirSize\":1,"
         "\"ServiceName\":\"*\",\"ServiceType\":\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\","
         "\"URLPath\":\"*\",\"Version\":1}}]}",
         XRAY_ESAMP_RULE,
         {"rule \"Default\"", "Priority: must be 10000"}},
        {"{\"SamplingRuleRecords\":[{\"SamplingRule\":{\"RuleName\":\"Default\","
         "\"ResourceARN\":\"*\",\"Priority\":10000,\"FixedRate\":0.05,\"ReservoirSize\":1,"
         "\"ServiceName\":\"*\",\"ServiceType\":\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\","
         "\"URLPath\":\"*\",\"Version\":2}}]}",
         XRAY_ESAMP_RULE,
         {"rule \"Default\"", "Version is not 1"}},
        {"{\"SamplingRuleRecords\":[]}", XRAY_ESAMP_RULE, {"rules", "Default"}},
        {"{\"SamplingRuleRecords\":[{\"SamplingRule\":{\"RuleName\":\"\"}}]}",
         XRAY_ESAMP_RULE,
         {"SamplingRuleRecords[0]", "RuleName"}},
        {"{\"SamplingRuleRecords\":[{\"SamplingRule\":{\"RuleName\":"
         "\"abcdefghijklmnopqrstuvwxyz0123456\"}}]}",
         XRAY_ESAMP_RULE,
         {"SamplingRuleRecords[0]", "RuleName: must be 1 to 32"}},
        {"{\"SamplingRuleRecords\":[{\"SamplingRule\":{\"RuleName\":\"x\",\"RuleName\":\"y\"}}]}",
         XRAY_ESAMP_JSON,
         {"input", "duplicate"}},
        {"{\"version\":3,\"default\":{\"fixed_target\":1,\"rate\":0.1}}",
         XRAY_ESAMP_RULE,
         {"input", "version"}},
        {"{\"version\":2}", XRAY_ESAMP_RULE, {"default", "missing"}},
        {"{\"version\":2,\"default\":{\"fixed_target\":1}}",
         XRAY_ESAMP_RULE,
         {"default", "rate: missing"}},
        {"{\"version\":2,\"default\":{\"fixed_target\":1.5,\"rate\":0.1}}",
         XRAY_ESAMP_RULE,
         {"default", "fixed_target"}},
        {"{\"version\":2,\"default\":{\"fixed_target\":1,\"rate\":0.1,\"url_path\":\"/\"}}",
         XRAY_ESAMP_RULE,
         {"default", "url_path"}},
        {"{\"version\":2,\"default\":{\"fixed_target\":1,\"rate\":0.1},\"rules\":{}}",
         XRAY_ESAMP_RULE,
         {"input", "rules"}},
        {LOCAL("{\"description\":\"x\"," LOCAL_OK ",\"fixed_target\":1,\"rate\":2}"),
         XRAY_ESAMP_RULE,
         {"rule 1 (\"x\")", "rate"}},
        {LOCAL("{" LOCAL_OK ",\"fixed_target\":1,\"rate\":0.1},{" LOCAL_OK ",\"rate\":0.1}"),
         XRAY_ESAMP_RULE,
         {"rule 2", "fixed_target: missing"}},
        {LOCAL("{" LOCAL_OK ",\"fixed_target\":-1,\"rate\":0.1}"),
         XRAY_ESAMP_RULE,
         {"rule 1", "fixed_target"}},
        {LOCAL("{\"http_method\":\"*\",\"url_path\":\"*\",\"fixed_target\":1,\"rate\":0.1}"),
         XRAY_ESAMP_RULE,
         {"rule 1", "host: missing"}},
        {LOCAL("{\"service_name\":\"s\",\"http_method\":\"*\",\"url_path\":\"*\","
               "\"fixed_target\":1,\"rate\":0.1}"),
         XRAY_ESAMP_RULE,
         {"rule 1", "service_name: not in version 2"}},
        {"{\"version\":1,\"default\":{\"fixed_target\":1,\"rate\":0.1},\"rules\":[{" LOCAL_OK
         ",\"fixed_target\":1,\"rate\":0.1}]}",
         XRAY_ESAMP_RULE,
         {"rule 1", "host: not in version 1"}},
        {LOCAL("{\"host\":\"*\",\"http_method\":\"GETGETGETGET\",\"url_path\":\"*\","
               "\"fixed_target\":1,\"rate\":0.1}"),
         XRAY_ESAMP_RULE,
         {"rule 1", "http_method: must be 0 to 10"}},
        {LOCAL("{\"description\":7," LOCAL_OK ",\"fixed_target\":1,\"rate\":0.1}"),
         XRAY_ESAMP_RULE,
         {"rule 1", "description"}},
        {LOCAL("5"), XRAY_ESAMP_RULE, {"rule 1", "object"}},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct xray_sampling_rules *rs = (void *)1;
        char err[XRAY_SAMPLING_ERR_LEN] = "";
        int rc = xray_sampling_rules_parse(t[i].json, strlen(t[i].json), &opts, &rs, err);
        if (rc != t[i].rc || rs != NULL)
            fail_msg("case %zu: rc %d (%s), want %d", i, rc, err, t[i].rc);
        for (int k = 0; k < 2; k++)
            if (strstr(err, t[i].want[k]) == NULL)
                fail_msg("case %zu: err \"%s\" lacks \"%s\"", i, err, t[i].want[k]);
    }
    /* A duplicate name names the rule and the field. */
    char *a = rule_json("same", 1, "*", "*", "*", "*"),
         *b = rule_json("same", 2, "*", "*", "*", "*");
    char *json = malloc(4096);
    sprintf(json, "{\"SamplingRuleRecords\":[%s,%s,%s]}", a, b, DEFAULT_REC);
    struct xray_sampling_rules *rs = NULL;
    char err[XRAY_SAMPLING_ERR_LEN];
    assert_int_equal(xray_sampling_rules_parse(json, strlen(json), &opts, &rs, err),
                     XRAY_ESAMP_RULE);
    assert_non_null(strstr(err, "rule \"same\": RuleName"));
    free(a), free(b), free(json);
    assert_string_equal(xray_sampling_strerror(XRAY_ESAMP_RULE), "invalid sampling rule");
}

static void test_rules_limits(void **st)
{
    (void)st;
    /* 1000 rules are fine, 1001 are refused whole. */
    for (int extra = 0; extra < 2; extra++) {
        size_t n = 999 + (size_t)extra;
        size_t cap = (n + 1) * 320 + 64;
        char *json = malloc(cap), *p = json;
        p += sprintf(p, "{\"SamplingRuleRecords\":[");
        for (size_t i = 0; i < n; i++) {
            char name[16];
            snprintf(name, sizeof(name), "r%zu", i);
            char *r = rule_json(name, (int)(i % 9999) + 1, "*", "*", "*", "*");
            p += sprintf(p, "%s,", r);
            free(r);
        }
        p += sprintf(p, "%s]}", DEFAULT_REC);
        struct xray_sampling_rules *rs = NULL;
        char err[XRAY_SAMPLING_ERR_LEN];
        int rc = xray_sampling_rules_parse(json, (size_t)(p - json), &opts, &rs, err);
        if (extra == 0) {
            assert_int_equal(rc, 0);
            assert_int_equal(xray_sampling_rules_count(rs), 1000);
        } else {
            assert_int_equal(rc, XRAY_ESAMP_TOOBIG);
            assert_null(rs);
            assert_non_null(strstr(err, "1001"));
        }
        xray_sampling_rules_free(rs);
        free(json);
    }
    struct xray_sampling_rules *rs = NULL;
    assert_int_equal(
        xray_sampling_rules_parse("{}", XRAY_SAMPLING_MAX_FILE_BYTES + 1, &opts, &rs, NULL),
        XRAY_ESAMP_TOOBIG);
}

static void test_rules_default_and_refs(void **st)
{
    (void)st;
    struct xray_sampling_rules *rs = xray_sampling_rules_default(NOW_S);
    assert_non_null(rs);
    assert_int_equal(xray_sampling_rules_source(rs), XRAY_SAMPLING_SOURCE_BUILTIN);
    assert_int_equal(xray_sampling_rules_count(rs), 1);
    const struct xray_sampling_rule *r = xray_sampling_rules_get(rs, 0);
    assert_string_equal(r->name, "Default");
    assert_int_equal(r->reservoir_size, 1);
    assert_true(r->fixed_rate == 0.05);
    assert_int_equal(r->priority, 10000);
    assert_ptr_equal(xray_sampling_rules_ref(rs), rs);
    xray_sampling_rules_free(rs);
    assert_string_equal(xray_sampling_rules_get(rs, 0)->name, "Default"); /* still alive */
    struct xray_sampling_request req = {0};
    assert_int_equal(xray_sampling_rules_match(rs, &req), 0);
    xray_sampling_rules_free(rs);
    xray_sampling_rules_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_parse_cli_output),
        cmocka_unit_test(test_rules_match_table),
        cmocka_unit_test(test_rules_match_differential),
        cmocka_unit_test(test_rules_match_lengths),
        cmocka_unit_test(test_rules_dropped_flagged),
        cmocka_unit_test(test_rules_round_trip),
        cmocka_unit_test(test_local_rules_v2_mapping),
        cmocka_unit_test(test_local_rules_v1_mapping),
        cmocka_unit_test(test_rules_errors_named),
        cmocka_unit_test(test_rules_limits),
        cmocka_unit_test(test_rules_default_and_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
