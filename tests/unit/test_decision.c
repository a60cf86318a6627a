/* SPDX-License-Identifier: Apache-2.0 */
/* The per-trace head decision: one decision per trace followed by every later document,
 * expiry, the bound and its evictions, the reservoir per second, new rules between
 * documents, per-rule counters; then the pipeline's decision stage end to end: three
 * services' segments, streamed subsegments and a late arrival of one trace. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "ingest/pool.h"
#include "pipeline.h"
#include "sampler/decision.h"
#include "sampler/rules_holder.h"
#include "stats.h"

#define T0_MS 1700000000000ull /* an epoch instant, ms */

#define RULE(name, prio, rate, res, svc)                                                           \
    "{\"SamplingRule\":{\"RuleName\":\"" name "\",\"ResourceARN\":\"*\",\"Priority\":" #prio       \
    ",\"FixedRate\":" #rate ",\"ReservoirSize\":" #res ",\"ServiceName\":\"" svc                   \
    "\",\"ServiceType\":\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\","              \
    "\"Version\":1,\"Attributes\":{}}}"
#define RULES(...) "{\"SamplingRuleRecords\":[" __VA_ARGS__ "]}"

/* keep-a keeps svc-a, drop-b drops svc-b; the rest is Default. */
static const char *BY_SERVICE = RULES(RULE("keep-a", 1, 1.0, 0, "svc-a") "," RULE(
    "drop-b", 2, 0.0, 0, "svc-b") "," RULE("Default", 10000, 0.5, 0, "*"));

static struct xray_sampling_rules *parse(const char *json)
{
    struct xray_sampling_rules *r = NULL;
    char err[XRAY_SAMPLING_ERR_LEN] = "";
    int rc = xray_sampling_rules_parse(json, strlen(json), NULL, &r, err);
    if (rc != 0)
        fail_msg("rules: %s", err);
    return r;
}

static struct decision *with_rules(const char *json, const struct decision_options *o,
                                   struct stats *st)
{
    memset(st, 0, sizeof(*st));
    struct decision *d = decision_create(o, st);
    assert_non_null(d);
    struct xray_sampling_rules *r = parse(json);
    rules_mailbox_post(decision_mailbox(d), r);
    xray_sampling_rules_free(r);
    return d;
}

static void trace_id(char out[36], unsigned i)
{
    snprintf(out, 36, "1-%08x-%024x", 0x65000000u + i, 0xabc000u + i);
}

static struct xray_sampling_request svc(const char *name)
{
    struct xray_sampling_request r = {0};
    r.service_name = xray_sampling_str_c(name);
    return r;
}

static void test_decision_same_for_every_document(void **state)
{
    (void)state;
    struct stats st;
    struct decision_options o = {.seed = 42};
    struct decision *d = with_rules(RULES(RULE("Default", 10000, 0.5, 0, "*")), &o, &st);
    struct xray_sampling_request req = svc("any");
    int kept = 0, dropped = 0;
    char tid[36];
    bool decided[200];
    for (unsigned i = 0; i < 200; i++) {
        trace_id(tid, i);
        assert_int_equal(decision_lookup(d, tid, T0_MS), -1);
        decided[i] = decision_decide(d, tid, &req, T0_MS);
        decided[i] ? kept++ : dropped++;
    }
    /* A fair rate: both outcomes occur, so "the same" below means something. */
    assert_true(kept > 50 && dropped > 50);
    for (int round = 1; round <= 5; round++)
        for (unsigned i = 0; i < 200; i++) {
            trace_id(tid, i);
            assert_int_equal(decision_lookup(d, tid, T0_MS + (uint64_t)round * 1000),
                             decided[i] ? 1 : 0);
        }
    assert_int_equal(stats_get(&st.sampled_kept), (uint64_t)kept * 6);
    assert_int_equal(stats_get(&st.sampled_out), (uint64_t)dropped * 6);
    assert_int_equal(stats_get(&st.decisions[STATS_DECISION_KEPT_RATE]), (uint64_t)kept);
    assert_int_equal(stats_get(&st.decisions[STATS_DECISION_DROPPED_RATE]), (uint64_t)dropped);
    assert_int_equal(decision_held(d), 200);
    decision_destroy(d);
}

static void test_decision_first_document_decides(void **state)
{
    (void)state;
    struct stats st;
    struct decision *d = with_rules(BY_SERVICE, NULL, &st);
    struct xray_sampling_request a = svc("svc-a"), b = svc("svc-b");
    /* Trace 1 starts at svc-a: kept, and svc-b's documents of it follow. */
    assert_true(decision_decide(d, "1-65000001-000000000000000000000001", &a, T0_MS));
    assert_int_equal(decision_lookup(d, "1-65000001-000000000000000000000001", T0_MS), 1);
    /* Trace 2 starts at svc-b: dropped, whoever sends the rest. */
    assert_false(decision_decide(d, "1-65000001-000000000000000000000002", &b, T0_MS));
    assert_int_equal(decision_lookup(d, "1-65000001-000000000000000000000002", T0_MS), 0);
    struct decision_rule_stats rs[DECISION_RULE_SLOTS];
    size_t n = decision_rule_stats(d, rs, DECISION_RULE_SLOTS);
    assert_int_equal(n, 3);
    assert_string_equal(rs[0].rule_name, "keep-a");
    assert_int_equal(rs[0].traces_kept, 1);
    assert_int_equal(rs[0].docs_kept, 2);
    assert_string_equal(rs[1].rule_name, "drop-b");
    assert_int_equal(rs[1].traces_dropped, 1);
    assert_int_equal(rs[1].docs_dropped, 2);
    decision_destroy(d);
}

static void test_decision_expiry(void **state)
{
    (void)state;
    struct stats st;
    struct decision_options o = {.ttl_s = 10};
    struct decision *d = with_rules(RULES(RULE("Default", 10000, 1.0, 0, "*")), &o, &st);
    struct xray_sampling_request req = svc("x");
    const char *tid = "1-65000001-00000000000000000000000a";
    assert_true(decision_decide(d, tid, &req, T0_MS));
    /* Each document refreshes the trace's age. */
    assert_int_equal(decision_lookup(d, tid, T0_MS + 9000), 1);
    assert_int_equal(decision_lookup(d, tid, T0_MS + 18000), 1);
    assert_int_equal(stats_get(&st.decisions_expired), 0);
    /* Ten seconds after its last document the trace is forgotten, and counted. */
    assert_int_equal(decision_lookup(d, tid, T0_MS + 28000), -1);
    assert_int_equal(stats_get(&st.decisions_expired), 1);
    assert_int_equal(decision_held(d), 0);
    decision_destroy(d);
}

static void test_decision_bound_evicts_least_recent(void **state)
{
    (void)state;
    struct stats st;
    struct decision_options o = {.capacity = DECISION_WAYS}; /* one set */
    struct decision *d = with_rules(RULES(RULE("Default", 10000, 1.0, 0, "*")), &o, &st);
    assert_int_equal(decision_capacity(d), DECISION_WAYS);
    struct xray_sampling_request req = svc("x");
    char tid[36];
    for (unsigned i = 0; i < DECISION_WAYS; i++) {
        trace_id(tid, i);
        decision_decide(d, tid, &req, T0_MS + i * 1000);
    }
    trace_id(tid, 0);
    assert_int_equal(decision_lookup(d, tid, T0_MS + 20000), 1); /* trace 1 is now the oldest */
    assert_int_equal(decision_held(d), DECISION_WAYS);
    assert_int_equal(stats_get(&st.decisions_evicted), 0);
    trace_id(tid, 100);
    decision_decide(d, tid, &req, T0_MS + 21000);
    assert_int_equal(decision_held(d), DECISION_WAYS); /* bounded */
    assert_int_equal(stats_get(&st.decisions_evicted), 1);
    trace_id(tid, 1);
    assert_int_equal(decision_lookup(d, tid, T0_MS + 21000), -1);
    for (unsigned i = 2; i < DECISION_WAYS; i++) {
        trace_id(tid, i);
        assert_int_equal(decision_lookup(d, tid, T0_MS + 21000), 1);
    }
    trace_id(tid, 0);
    assert_int_equal(decision_lookup(d, tid, T0_MS + 21000), 1);
    decision_destroy(d);
}

static void test_decision_reservoir_per_second(void **state)
{
    (void)state;
    struct stats st;
    struct decision *d = with_rules(RULES(RULE("Default", 10000, 0.0, 2, "*")), NULL, &st);
    struct xray_sampling_request req = svc("x");
    char tid[36];
    int kept[3] = {0};
    for (unsigned s = 0; s < 3; s++)
        for (unsigned i = 0; i < 10; i++) {
            trace_id(tid, s * 100 + i);
            kept[s] += decision_decide(d, tid, &req, T0_MS + s * 1000 + i * 50);
        }
    assert_int_equal(kept[0], 2);
    assert_int_equal(kept[1], 2);
    assert_int_equal(kept[2], 2);
    assert_int_equal(stats_get(&st.decisions[STATS_DECISION_KEPT_QUOTA]), 6);
    assert_int_equal(stats_get(&st.decisions[STATS_DECISION_DROPPED_RATE]), 24);
    decision_destroy(d);
}

static void test_decision_new_rules_between_documents(void **state)
{
    (void)state;
    struct stats st;
    struct decision *d = with_rules(RULES(RULE("Default", 10000, 0.0, 0, "*")), NULL, &st);
    struct xray_sampling_request req = svc("x");
    const char *old = "1-65000001-000000000000000000000100";
    assert_false(decision_decide(d, old, &req, T0_MS));
    struct xray_sampling_rules *r = parse(RULES(RULE("Default", 10000, 1.0, 0, "*")));
    rules_mailbox_post(decision_mailbox(d), r);
    xray_sampling_rules_free(r);
    /* A new trace takes the new rules; a known one keeps its decision. */
    assert_true(decision_decide(d, "1-65000001-000000000000000000000101", &req, T0_MS + 1));
    assert_int_equal(decision_lookup(d, old, T0_MS + 2), 0);
    decision_destroy(d);
}

static void test_decision_without_rules_keeps(void **state)
{
    (void)state;
    struct stats st = {0};
    struct decision *d = decision_create(NULL, &st);
    struct xray_sampling_request req = svc("x");
    assert_true(decision_decide(d, "not-an-xray-id", &req, T0_MS));
    assert_int_equal(decision_lookup(d, "not-an-xray-id", T0_MS), 1);
    assert_int_equal(decision_lookup(d, "not-an-xray-id!", T0_MS), -1);
    assert_int_equal(stats_get(&st.decisions[STATS_DECISION_KEPT_NO_RULES]), 1);
    decision_destroy(d);
}

/* --- the pipeline's stage ------------------------------------------------------------ */

struct stage {
    uv_loop_t loop;
    char dir[64], path[96];
    struct stats stats;
    struct pool *pool;
    struct pipeline *p;
    struct rules_holder *holder;
};

static void stage_open(struct stage *s, const char *rules)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(uv_loop_init(&s->loop), 0);
    snprintf(s->dir, sizeof(s->dir), "/tmp/xrayd-decision-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->path, sizeof(s->path), "%s/rules.json", s->dir);
    FILE *f = fopen(s->path, "w");
    assert_non_null(f);
    fputs(rules, f);
    fclose(f);
    char err[XRAY_ERR_LEN];
    struct rules_holder_options ro = {.loop = &s->loop, .path = s->path};
    assert_int_equal(rules_holder_create(&s->holder, &ro, err), 0);
    s->pool = pool_create(4u << 20);
    s->p = pipeline_create(&s->stats);
    assert_non_null(s->p);
    assert_int_equal(pipeline_enable_sampling(s->p, s->holder, NULL), 0);
}

static void stage_close(struct stage *s)
{
    rules_holder_close(s->holder, NULL, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    pipeline_destroy(s->p);
    pool_destroy(s->pool);
    unlink(s->path);
    rmdir(s->dir);
}

/* Runs one document through the pipeline: 1 forwarded, 0 sampled out. */
static int stage_run(struct stage *s, const char *text)
{
    struct doc *doc = pool_alloc(s->pool, text, strlen(text), 0);
    assert_non_null(doc);
    pipeline_process(doc, s->p);
    int r = doc->reject == -1 ? 1 : doc->reject == PIPELINE_SAMPLED_OUT ? 0 : -1;
    if (r < 0)
        fail_msg("document rejected (%d): %s", doc->reject, text);
    pool_free(s->pool, doc);
    return r;
}

static void segment(char *out, size_t cap, const char *name, unsigned trace, unsigned id)
{
    snprintf(out, cap,
             "{\"name\":\"%s\",\"id\":\"%016x\",\"trace_id\":\"1-65000000-%024x\","
             "\"start_time\":1700000000.5,\"end_time\":1700000001.5,"
             "\"http\":{\"request\":{\"method\":\"GET\",\"url\":\"http://h.example/p/%u\"}}}",
             name, id, trace, id);
}

static void subsegment(char *out, size_t cap, unsigned trace, unsigned id)
{
    snprintf(out, cap,
             "{\"name\":\"step\",\"id\":\"%016x\",\"trace_id\":\"1-65000000-%024x\","
             "\"parent_id\":\"00000000000000aa\",\"type\":\"subsegment\","
             "\"start_time\":1700000000.5,\"end_time\":1700000001.5}",
             id, trace);
}

/* Every document of a trace shares the first one's fate: svc-a first keeps, svc-b first
 * drops, svc-c (Default, 50 %) first goes either way but never splits a trace; a
 * streamed subsegment first goes by the rules for any service. */
static void test_pipeline_stage_trace_consistent(void **state)
{
    (void)state;
    struct stage s;
    stage_open(&s, BY_SERVICE);
    static const char *const first[] = {"svc-a", "svc-b", "svc-c"};
    char doc[512];
    int kept_c = 0, dropped_c = 0;
    for (unsigned t = 0; t < 90; t++) {
        unsigned id = t * 16;
        int got = 0, n = 0;
        bool sub_first = t % 10 == 9;
        if (sub_first) {
            subsegment(doc, sizeof(doc), t, id++);
            got += stage_run(&s, doc), n++;
        }
        for (unsigned k = 0; k < 3; k++) { /* three services, the first one decides */
            segment(doc, sizeof(doc), first[(t + k) % 3], t, id++);
            got += stage_run(&s, doc), n++;
        }
        for (unsigned k = 0; k < 2; k++) { /* streamed subsegments */
            subsegment(doc, sizeof(doc), t, id++);
            got += stage_run(&s, doc), n++;
        }
        if (got != 0 && got != n)
            fail_msg("trace %u split: %d of %d documents kept", t, got, n);
        if (!sub_first && t % 3 == 0)
            assert_int_equal(got, n); /* svc-a first */
        if (!sub_first && t % 3 == 1)
            assert_int_equal(got, 0); /* svc-b first */
        if (!sub_first && t % 3 == 2)
            got ? kept_c++ : dropped_c++;
    }
    assert_true(kept_c > 0 && dropped_c > 0); /* Default's draw went both ways */
    /* Late arrivals follow too. */
    for (unsigned t = 0; t < 90; t += 3) {
        if (t % 10 == 9 || (t + 1) % 10 == 9)
            continue;
        segment(doc, sizeof(doc), "svc-b", t, 9999);
        assert_int_equal(stage_run(&s, doc), 1);
        segment(doc, sizeof(doc), "svc-a", t + 1, 9999);
        assert_int_equal(stage_run(&s, doc), 0);
    }
    assert_int_equal(stats_get(&s.stats.rejected), 0);
    assert_true(stats_get(&s.stats.sampled_out) > 0);
    stage_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_same_for_every_document),
        cmocka_unit_test(test_decision_first_document_decides),
        cmocka_unit_test(test_decision_expiry),
        cmocka_unit_test(test_decision_bound_evicts_least_recent),
        cmocka_unit_test(test_decision_reservoir_per_second),
        cmocka_unit_test(test_decision_new_rules_between_documents),
        cmocka_unit_test(test_decision_without_rules_keeps),
        cmocka_unit_test(test_pipeline_stage_trace_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
