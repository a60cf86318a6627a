/* SPDX-License-Identifier: Apache-2.0 */
/* The sampling authority's routes (api/sampling_authority.c): request checks (bodies,
 * ClientID, 25 documents), the response shapes the SDKs need ("Attributes":{}, epoch
 * numbers, a numeric LastRuleModification), quotas that never add up past
 * ReservoirSize, rule changes that move LastRuleModification, full fidelity; then the
 * routes over a real socket. (libxray_sampling's own authority: test_sampling_authority.c) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "api/sampling_authority.h"
#include "http/server.h"

#define T0_MS     1700000000000ull
#define CLIENT(n) "0123456789abcdef0123456" #n

#define RULE(name, prio, rate, res, svc, extra)                                                    \
    "{\"SamplingRule\":{\"RuleName\":\"" name "\",\"ResourceARN\":\"*\",\"Priority\":" #prio       \
    ",\"FixedRate\":" #rate ",\"ReservoirSize\":" #res ",\"ServiceName\":\"" svc                   \
    "\",\"ServiceType\":\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\","              \
    "\"Version\":1" extra "}}"

/* limited: 4/s then nothing; attrs: an SDK would drop it (never served); Default. */
static const char *RULES =
    "{\"SamplingRuleRecords\":[" RULE("limited", 1, 0.0, 4, "svc-l", ",\"Attributes\":{}") "," RULE(
        "attrs", 2, 0.5, 1, "*", ",\"Attributes\":{\"k\":\"v\"}") "," RULE("Default", 10000, 0.05,
                                                                           1, "*", "") "]}";

static struct xray_sampling_rules *parse(const char *json)
{
    struct xray_sampling_rules *r = NULL;
    char err[XRAY_SAMPLING_ERR_LEN] = "";
    if (xray_sampling_rules_parse(json, strlen(json), NULL, &r, err) != 0)
        fail_msg("rules: %s", err);
    return r;
}

static uint64_t fake_now;
static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static struct sampling_authority *authority(bool full_fidelity)
{
    struct sampling_authority_options o = {.full_fidelity = full_fidelity, .clock_ms = fake_clock};
    fake_now = T0_MS;
    struct xray_sampling_rules *r = parse(RULES);
    struct sampling_authority *a = sampling_authority_create(&o, r);
    xray_sampling_rules_free(r);
    assert_non_null(a);
    return a;
}

/* The 200 body of path, parsed. */
static json_t *ok(struct sampling_authority *a, const char *path, const char *body, uint64_t now)
{
    struct sampling_authority_reply r;
    assert_int_equal(sampling_authority_answer(a, path, body, strlen(body), now, &r), 0);
    if (r.status != 200)
        fail_msg("%s answered %d: %s", path, r.status, r.body);
    assert_null(r.error_type);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    assert_non_null(j);
    free(r.body);
    return j;
}

/* A 400 InvalidRequestException whose message contains want (may be NULL). */
static void bad(struct sampling_authority *a, const char *path, const char *body, size_t len,
                const char *want)
{
    struct sampling_authority_reply r;
    assert_int_equal(sampling_authority_answer(a, path, body, len, T0_MS, &r), 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error_type, "InvalidRequestException");
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "__type")), "InvalidRequestException");
    const char *msg = json_string_value(json_object_get(j, "message"));
    assert_non_null(msg);
    if (want != NULL && strstr(msg, want) == NULL)
        fail_msg("message \"%s\" does not mention \"%s\"", msg, want);
    json_decref(j);
    free(r.body);
}

static char *stats_body(const char *rule, const char *client, int requests)
{
    char *b = malloc(512);
    snprintf(b, 512,
             "{\"SamplingStatisticsDocuments\":[{\"RuleName\":\"%s\",\"ClientID\":\"%s\","
             "\"Timestamp\":1700000000,\"RequestCount\":%d,\"SampledCount\":1,"
             "\"BorrowCount\":0}]}",
             rule, client, requests);
    return b;
}

static void test_sampling_authority_answer_rules_shape(void **state)
{
    (void)state;
    struct sampling_authority *a = authority(false);
    static const char *const bodies[] = {"", "{}", " \n", "{\"NextToken\":\"x\"}"};
    for (size_t b = 0; b < 4; b++) {
        json_t *j = ok(a, "/GetSamplingRules", bodies[b], T0_MS);
        json_t *recs = json_object_get(j, "SamplingRuleRecords");
        assert_int_equal(json_array_size(recs), 2); /* "attrs" is not served */
        assert_null(json_object_get(j, "NextToken"));
        size_t i;
        json_t *rec;
        json_array_foreach(recs, i, rec)
        {
            json_t *rule = json_object_get(rec, "SamplingRule");
            const char *name = json_string_value(json_object_get(rule, "RuleName"));
            assert_string_not_equal(name, "attrs");
            json_t *attrs = json_object_get(rule, "Attributes");
            assert_true(json_is_object(attrs) && json_object_size(attrs) == 0);
            assert_true(json_is_integer(json_object_get(rec, "CreatedAt")));
            assert_true(json_is_integer(json_object_get(rec, "ModifiedAt")));
            assert_true(json_is_number(json_object_get(rule, "FixedRate")));
            assert_int_equal(json_integer_value(json_object_get(rule, "Version")), 1);
            assert_string_equal(json_string_value(json_object_get(rule, "ResourceARN")), "*");
        }
        assert_string_equal(
            json_string_value(json_object_get(
                json_object_get(json_array_get(recs, 0), "SamplingRule"), "RuleName")),
            "limited");
        json_decref(j);
    }
    sampling_authority_destroy(a);
}

static void test_sampling_authority_answer_small_bodies(void **state)
{
    (void)state;
    struct sampling_authority *a = authority(false);
    bad(a, "/GetSamplingRules", "[]", 2, "not a JSON object");
    bad(a, "/GetSamplingRules", "{", 1, "not a JSON object");
    bad(a, "/SamplingStatisticSummaries", "nope", 4, "not a JSON object");
    char big[SAMPLING_AUTHORITY_SMALL_BODY_MAX + 2];
    memset(big, ' ', sizeof(big));
    bad(a, "/GetSamplingRules", big, sizeof(big), "larger");
    struct sampling_authority_reply r;
    assert_int_equal(sampling_authority_answer(a, "/Other", "", 0, T0_MS, &r), -EINVAL);
    struct sampling_authority_stats st;
    sampling_authority_get_stats(a, &st);
    assert_int_equal(st.bad_requests, 4);
    assert_int_equal(st.rules_calls, 0);
    sampling_authority_destroy(a);
}

static void test_sampling_authority_answer_targets_refused(void **state)
{
    (void)state;
    struct sampling_authority *a = authority(false);
    const char *p = "/SamplingTargets";
    bad(a, p, "", 0, NULL);
    bad(a, p, "{}", 2, "SamplingStatisticsDocuments");
    bad(a, p, "not json", 8, NULL);
    char *b = stats_body("limited", "0123456789abcdef012345", 1); /* 22 digits */
    bad(a, p, b, strlen(b), "ClientID");
    free(b);
    b = stats_body("limited", "0123456789abcdef0123456z", 1);
    bad(a, p, b, strlen(b), "ClientID");
    free(b);
    b = stats_body("limited", CLIENT(7), -3);
    bad(a, p, b, strlen(b), "RequestCount");
    free(b);
    /* 26 documents: one more than GetSamplingTargets takes. */
    char many[8192] = "{\"SamplingStatisticsDocuments\":[";
    for (int i = 0; i < 26; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many),
                 "%s{\"RuleName\":\"limited\",\"ClientID\":\"0123456789abcdef01234567\","
                 "\"Timestamp\":1,\"RequestCount\":1,\"SampledCount\":1,\"BorrowCount\":0}",
                 i ? "," : "");
    strcat(many, "]}");
    bad(a, p, many, strlen(many), NULL);
    /* ... and 25 are fine. */
    char *last = strrchr(many, '{');
    strcpy(last - 1, "]}");
    json_decref(ok(a, p, many, T0_MS));
    sampling_authority_destroy(a);
}

static void test_sampling_authority_answer_targets_shape(void **state)
{
    (void)state;
    struct sampling_authority *a = authority(false);
    const char *body =
        "{\"SamplingStatisticsDocuments\":["
        "{\"RuleName\":\"limited\",\"ClientID\":\"" CLIENT(
            1) "\","
               "\"Timestamp\":1700000000,\"RequestCount\":10,\"SampledCount\":4,"
               "\"BorrowCount\":1},"
               "{\"RuleName\":\"attrs\",\"ClientID\":\"" CLIENT(
                   1) "\","
                      "\"Timestamp\":1700000000,\"RequestCount\":3,\"SampledCount\":1,"
                      "\"BorrowCount\":0}]}";
    json_t *j = ok(a, "/SamplingTargets", body, T0_MS + 5000);
    json_t *lrm = json_object_get(j, "LastRuleModification");
    assert_true(json_is_integer(lrm));
    assert_int_equal(json_integer_value(lrm), T0_MS / 1000);
    json_t *docs = json_object_get(j, "SamplingTargetDocuments");
    assert_int_equal(json_array_size(docs), 1);
    json_t *t = json_array_get(docs, 0);
    assert_string_equal(json_string_value(json_object_get(t, "RuleName")), "limited");
    assert_true(json_is_number(json_object_get(t, "FixedRate")));
    assert_int_equal(json_integer_value(json_object_get(t, "ReservoirQuota")), 4);
    json_t *ttl = json_object_get(t, "ReservoirQuotaTTL");
    assert_true(json_is_integer(ttl));
    assert_true(json_integer_value(ttl) > (json_int_t)(T0_MS / 1000 + 5));
    assert_int_equal(json_integer_value(json_object_get(t, "Interval")), 10);
    json_t *un = json_object_get(j, "UnprocessedStatistics");
    assert_int_equal(json_array_size(un), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(un, 0), "RuleName")),
                        "attrs");
    json_decref(j);

    j = ok(a, "/SamplingStatisticSummaries", "", T0_MS + 6000);
    json_t *sum = json_array_get(json_object_get(j, "SamplingStatisticSummaries"), 0);
    assert_string_equal(json_string_value(json_object_get(sum, "RuleName")), "limited");
    assert_int_equal(json_integer_value(json_object_get(sum, "RequestCount")), 10);
    assert_int_equal(json_integer_value(json_object_get(sum, "SampledCount")), 4);
    json_decref(j);
    sampling_authority_destroy(a);
}

/* Eight clients reporting on a rule of ReservoirSize 4, over a minute: at no time do
 * the grants still alive add up past 4. */
static void test_sampling_authority_answer_quotas_bounded(void **state)
{
    (void)state;
    struct sampling_authority *a = authority(false);
    struct {
        int64_t quota, ttl;
    } live[8] = {{0}};
    for (int round = 0; round < 6; round++)
        for (int c = 0; c < 8; c++) {
            uint64_t now = T0_MS + (uint64_t)round * 10000 + (uint64_t)c * 700;
            char id[25];
            snprintf(id, sizeof(id), "%024x", 0xc0ffee00 + c);
            char *b = stats_body("limited", id, 10 + c * 30);
            json_t *j = ok(a, "/SamplingTargets", b, now);
            free(b);
            json_t *t = json_array_get(json_object_get(j, "SamplingTargetDocuments"), 0);
            live[c].quota = json_integer_value(json_object_get(t, "ReservoirQuota"));
            live[c].ttl = json_integer_value(json_object_get(t, "ReservoirQuotaTTL"));
            json_decref(j);
            int64_t sum = 0;
            for (int k = 0; k < 8; k++)
                if (live[k].ttl >= (int64_t)(now / 1000))
                    sum += live[k].quota;
            if (sum > 4)
                fail_msg("round %d client %d: live quotas add up to %lld", round, c,
                         (long long)sum);
        }
    sampling_authority_destroy(a);
}

static void test_sampling_authority_set_rules_moves_modification(void **state)
{
    (void)state;
    struct sampling_authority *a = authority(false);
    char *b = stats_body("limited", CLIENT(1), 5);
    json_t *j = ok(a, "/SamplingTargets", b, T0_MS + 1000);
    assert_int_equal(json_integer_value(json_object_get(j, "LastRuleModification")), T0_MS / 1000);
    json_decref(j);
    fake_now = T0_MS + 42000;
    struct xray_sampling_rules *r = parse("{\"SamplingRuleRecords\":[" RULE(
        "limited", 1, 0.5, 2, "svc-l",
        ",\"Attributes\":{}") "," RULE("Default", 10000, 0.05, 1, "*", ",\"Attributes\":{}") "]}");
    assert_int_equal(sampling_authority_set_rules(a, r), 0);
    xray_sampling_rules_free(r);
    j = ok(a, "/SamplingTargets", b, T0_MS + 43000);
    assert_int_equal(json_integer_value(json_object_get(j, "LastRuleModification")),
                     (T0_MS + 42000) / 1000);
    json_decref(j);
    j = ok(a, "/GetSamplingRules", "", T0_MS + 43000);
    json_t *rule = json_object_get(json_array_get(json_object_get(j, "SamplingRuleRecords"), 0),
                                   "SamplingRule");
    assert_true(json_real_value(json_object_get(rule, "FixedRate")) == 0.5);
    json_decref(j);
    free(b);
    struct sampling_authority_stats st;
    sampling_authority_get_stats(a, &st);
    assert_int_equal(st.rule_changes, 1);
    sampling_authority_destroy(a);
}

static void test_sampling_authority_answer_full_fidelity(void **state)
{
    (void)state;
    struct sampling_authority *a = authority(true);
    json_t *j = ok(a, "/GetSamplingRules", "{}", T0_MS);
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(j, "SamplingRuleRecords"), i, rec)
    {
        json_t *rule = json_object_get(rec, "SamplingRule");
        assert_true(json_number_value(json_object_get(rule, "FixedRate")) == 1.0);
        assert_true(json_is_object(json_object_get(rule, "Attributes")));
        assert_true(json_is_integer(json_object_get(rec, "CreatedAt")));
    }
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_array_get(json_object_get(j, "SamplingRuleRecords"), 0),
                            "SamplingRule"),
            "ReservoirSize")),
        4);
    json_decref(j);
    char *b = stats_body("limited", CLIENT(1), 50);
    j = ok(a, "/SamplingTargets", b, T0_MS + 1000);
    free(b);
    json_t *t = json_array_get(json_object_get(j, "SamplingTargetDocuments"), 0);
    assert_true(json_number_value(json_object_get(t, "FixedRate")) == 1.0);
    assert_null(json_object_get(t, "ReservoirQuota"));
    assert_null(json_object_get(t, "ReservoirQuotaTTL"));
    assert_int_equal(json_integer_value(json_object_get(t, "Interval")), 10);
    assert_true(json_is_integer(json_object_get(j, "LastRuleModification")));
    json_decref(j);
    sampling_authority_destroy(a);
}

/* --- over a socket --------------------------------------------------------------------- */

struct reply {
    int status;
    char head[1024];
    char body[8192];
};

struct rig {
    uv_loop_t loop;
    uv_async_t done;
    uv_timer_t watchdog;
    uv_thread_t thread;
    struct http_server *server;
    int port;
    struct reply r[4];
};

static void call(int port, const char *method, const char *path, const char *body,
                 struct reply *out)
{
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, strlen(body), body);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char buf[sizeof(out->head) + sizeof(out->body)];
    size_t got = 0;
    ssize_t k;
    out->status = -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && write(fd, req, (size_t)n) == n)
        while (got < sizeof(buf) - 1 && (k = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
            got += (size_t)k;
    close(fd);
    buf[got] = '\0';
    sscanf(buf, "HTTP/1.1 %d", &out->status);
    char *end = strstr(buf, "\r\n\r\n");
    snprintf(out->head, sizeof(out->head), "%.*s", end ? (int)(end - buf) : 0, buf);
    snprintf(out->body, sizeof(out->body), "%s", end ? end + 4 : "");
}

static void client_thread(void *arg)
{
    struct rig *r = arg;
    call(r->port, "POST", "/GetSamplingRules", "", &r->r[0]);
    call(r->port, "GET", "/GetSamplingRules", "", &r->r[1]);
    call(r->port, "POST", "/SamplingTargets", "{\"SamplingStatisticsDocuments\":[{}]}", &r->r[2]);
    call(r->port, "POST", "/SamplingStatisticSummaries", "{}", &r->r[3]);
    uv_async_send(&r->done);
}

static void on_done(uv_async_t *a)
{
    struct rig *r = a->data;
    uv_close((uv_handle_t *)&r->done, NULL);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
    http_server_close(r->server, NULL, NULL);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the client did not finish");
}

static void test_sampling_authority_register_routes(void **state)
{
    (void)state;
    struct rig r;
    memset(&r, 0, sizeof(r));
    struct sampling_authority *a = authority(false);
    assert_int_equal(uv_loop_init(&r.loop), 0);
    r.server = http_server_create(&r.loop, NULL);
    assert_non_null(r.server);
    char err[XRAY_ERR_LEN];
    assert_int_equal(http_server_listen(r.server, "127.0.0.1:0", HTTP_ROLE_TCP, err), 0);
    r.port = http_server_port(r.server, HTTP_ROLE_TCP);
    assert_true(r.port > 0);
    assert_int_equal(sampling_authority_register(r.server, a), 0);
    uv_async_init(&r.loop, &r.done, on_done);
    r.done.data = &r;
    uv_timer_init(&r.loop, &r.watchdog);
    uv_timer_start(&r.watchdog, on_watchdog, 20000, 0);
    assert_int_equal(uv_thread_create(&r.thread, client_thread, &r), 0);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    uv_thread_join(&r.thread);
    assert_int_equal(uv_loop_close(&r.loop), 0);

    assert_int_equal(r.r[0].status, 200);
    assert_non_null(strstr(r.r[0].head, "application/json"));
    assert_non_null(strstr(r.r[0].body, "\"Attributes\":{}"));
    assert_int_equal(r.r[1].status, 405);
    assert_int_equal(r.r[2].status, 400);
    assert_non_null(strstr(r.r[2].head, "x-amzn-ErrorType: InvalidRequestException"));
    assert_non_null(strstr(r.r[2].body, "\"__type\":\"InvalidRequestException\""));
    assert_int_equal(r.r[3].status, 200);
    assert_non_null(strstr(r.r[3].body, "\"SamplingStatisticSummaries\":["));
    sampling_authority_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampling_authority_answer_rules_shape),
        cmocka_unit_test(test_sampling_authority_answer_small_bodies),
        cmocka_unit_test(test_sampling_authority_answer_targets_refused),
        cmocka_unit_test(test_sampling_authority_answer_targets_shape),
        cmocka_unit_test(test_sampling_authority_answer_quotas_bounded),
        cmocka_unit_test(test_sampling_authority_set_rules_moves_modification),
        cmocka_unit_test(test_sampling_authority_answer_full_fidelity),
        cmocka_unit_test(test_sampling_authority_register_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
