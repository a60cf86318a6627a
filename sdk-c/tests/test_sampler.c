/* SPDX-License-Identifier: Apache-2.0 */
/* sampler.c: local rules files (versions 1 and 2) and the default rule, the daemon's
 * centralized rules and targets from a fake daemon on a loopback socket (reservoir
 * borrow, quota and rate decisions, statistics reported, LastRuleModification
 * refetch, the 1 h expiry), the fallback when no daemon listens, and a new ClientID
 * and poller in the child of fork(). Time is a fake clock; the poller's intervals are
 * shortened through xray__sampler_tune(). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "fake_server.h"
#include "internal.h"
#include "sampler.h"

#define T0_S 1700000000ull

#if defined(__SANITIZE_THREAD__)
#define SAMPLER_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SAMPLER_TEST_TSAN 1
#endif
#endif
#ifndef SAMPLER_TEST_TSAN
#define SAMPLER_TEST_TSAN 0
#endif

static _Atomic uint64_t fake_now_us;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return atomic_load(&fake_now_us);
}

static void clock_set_s(uint64_t s)
{
    atomic_store(&fake_now_us, s * 1000000);
}

/* ---- the fake daemon ---- */

struct daemon_script {
    const char *rules;  /* GetSamplingRules body */
    char targets[1024]; /* SamplingTargets body */
    _Atomic int refuse; /* 1: close without answering */
};

static int daemon_handler(struct fake_server *fs, const struct fake_request *req, char *body,
                          size_t cap, char *extra, size_t extra_cap)
{
    (void)extra;
    (void)extra_cap;
    struct daemon_script *d = fs->ctx;
    if (atomic_load(&d->refuse))
        return -1;
    if (strcmp(req->path, "/GetSamplingRules") == 0) {
        snprintf(body, cap, "%s", d->rules);
        return 200;
    }
    if (strcmp(req->path, "/SamplingTargets") == 0) {
        snprintf(body, cap, "%s", d->targets);
        return 200;
    }
    snprintf(body, cap, "{}");
    return 404;
}

/* Rule "api" (URL path /api/ and anything below) with ReservoirSize 10 and rate 0; Default: nothing
 * sampled. */
static const char rules_body[] =
    "{\"SamplingRuleRecords\":["
    "{\"SamplingRule\":{\"RuleName\":\"api\",\"RuleARN\":\"arn:aws:xray:us-east-1:1:sampling-"
    "rule/api\",\"ResourceARN\":\"*\",\"Priority\":1,\"FixedRate\":0,\"ReservoirSize\":10,"
    "\"ServiceName\":\"*\",\"ServiceType\":\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\","
    "\"URLPath\":\"/api/*\",\"Version\":1,\"Attributes\":{}},\"CreatedAt\":1,\"ModifiedAt\":1},"
    "{\"SamplingRule\":{\"RuleName\":\"Default\",\"RuleARN\":\"arn:aws:xray:us-east-1:1:sampling-"
    "rule/Default\",\"ResourceARN\":\"*\",\"Priority\":10000,\"FixedRate\":0,\"ReservoirSize\":0,"
    "\"ServiceName\":\"*\",\"ServiceType\":\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\","
    "\"URLPath\":\"*\",\"Version\":1,\"Attributes\":{}},\"CreatedAt\":1,\"ModifiedAt\":1}]}";

static const struct xray__sampler_tuning fast = {60000, 0, 50, 0, 1000};

static char tmp_dir[64];

static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static struct xray_recorder *recorder(enum xray_sampler_mode mode, uint16_t port,
                                      const char *rules_file)
{
    struct xray_config cfg;
    xray_config_init(&cfg);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)port);
    cfg.daemon_address = addr;
    cfg.flags = XRAY_CONFIG_IGNORE_ENV;
    cfg.sampler = mode;
    cfg.sampling_rules_file = rules_file;
    cfg.clock = fake_clock;
    cfg.log_level = XRAY_LOG_SILENT;
    cfg.service_name = "svc";
    char err[XRAY_SDK_ERR_LEN];
    struct xray_recorder *rec = xray_recorder_create(&cfg, err);
    if (rec == NULL)
        fail_msg("recorder: %s", err);
    assert_non_null(rec->sampler);
    xray__sampler_tune(rec->sampler_ctx, &fast);
    return rec;
}

static bool decide(struct xray_recorder *rec, const char *path, char *rule)
{
    char name[XRAY_SAMPLING_NAME_BYTES + 1];
    struct xray_sampling_request req = {
        .service_name = xray_sampling_str_c("svc"),
        .http_method = xray_sampling_str_c("GET"),
        .url_path = xray_sampling_str_c(path),
    };
    bool s = xray__recorder_decide(rec, &req, xray__recorder_now_us(rec), name);
    if (rule != NULL)
        strcpy(rule, name);
    return s;
}

static int count_sampled(struct xray_recorder *rec, const char *path, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += decide(rec, path, NULL);
    return k;
}

static struct xray__sampler_stats stats(struct xray_recorder *rec)
{
    struct xray__sampler_stats st;
    xray__sampler_stats(rec->sampler_ctx, &st);
    return st;
}

struct rule_sums {
    uint64_t requests, sampled, borrowed, foreign;
    int64_t timestamp;
};

/* Sums the statistics every SamplingTargets call carried for rule; documents with
 * another ClientID than cid count as foreign. */
static void sum_statistics(struct fake_server *fs, const char *cid, const char *rule,
                           struct rule_sums *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&fs->mu);
    for (size_t i = 0; i < fs->n; i++) {
        if (strcmp(fs->reqs[i].path, "/SamplingTargets") != 0)
            continue;
        struct xray_sampling_statistics docs[25];
        size_t n = 0;
        char err[XRAY_SAMPLING_ERR_LEN];
        if (xray_sampling_statistics_parse(fs->reqs[i].body, fs->reqs[i].body_len, docs, 25, &n,
                                           err) != 0)
            continue;
        for (size_t k = 0; k < n; k++) {
            if (strcmp(docs[k].rule_name, rule) != 0)
                continue;
            if (strcmp(docs[k].client_id, cid) != 0)
                out->foreign++;
            out->requests += docs[k].request_count;
            out->sampled += docs[k].sampled_count;
            out->borrowed += docs[k].borrow_count;
            out->timestamp = docs[k].timestamp;
        }
    }
    pthread_mutex_unlock(&fs->mu);
}

/* ---- local rules ---- */

static void test_sampler_local_default(void **state)
{
    (void)state;
    clock_set_s(T0_S);
    struct xray_recorder *rec = recorder(XRAY_SAMPLER_LOCAL, fake_closed_port(), NULL);
    /* 1/s then 5 %: the first of each second always, then about 5 of 100. */
    int first = count_sampled(rec, "/", 1);
    int rest = count_sampled(rec, "/", 2000);
    assert_int_equal(first, 1);
    assert_in_range(rest, 40, 170);
    clock_set_s(T0_S + 1);
    assert_true(decide(rec, "/", NULL));
    xray_recorder_destroy(rec);
}

static void test_sampler_local_file_v2(void **state)
{
    (void)state;
    clock_set_s(T0_S);
    const char *path = write_file(
        "v2.json", "{\"version\":2,\"default\":{\"fixed_target\":2,\"rate\":0},\"rules\":["
                   "{\"description\":\"health\",\"host\":\"*\",\"http_method\":\"*\","
                   "\"url_path\":\"/health\",\"fixed_target\":0,\"rate\":0},"
                   "{\"host\":\"*\",\"http_method\":\"POST\",\"url_path\":\"*\","
                   "\"fixed_target\":0,\"rate\":1}]}");
    struct xray_recorder *rec = recorder(XRAY_SAMPLER_LOCAL, fake_closed_port(), path);
    char rule[XRAY_SAMPLING_NAME_BYTES + 1];
    assert_int_equal(count_sampled(rec, "/health", 10), 0);
    assert_int_equal(count_sampled(rec, "/x", 10), 2); /* the default's fixed_target */
    assert_false(decide(rec, "/x", rule));
    assert_string_equal(rule, ""); /* local rules leave no rule name */
    struct xray_sampling_request post = {.url_path = xray_sampling_str_c("/x"),
                                         .http_method = xray_sampling_str_c("POST")};
    assert_true(xray__recorder_decide(rec, &post, xray__recorder_now_us(rec), rule));
    clock_set_s(T0_S + 1);
    assert_int_equal(count_sampled(rec, "/x", 10), 2);
    xray_recorder_destroy(rec);
}

/* The sampling request's service_type is the plugins' origin when the code gave
 * none (rules on ServiceType match it, as in the other SDKs). A recording sampler in
 * place of the real one shows what the rules would see. */
static char seen_type[64];

static bool seen_decide(void *ctx, const struct xray_sampling_request *req, uint64_t now_ms,
                        char *rule_name)
{
    (void)ctx, (void)now_ms, (void)rule_name;
    snprintf(seen_type, sizeof(seen_type), "%.*s", (int)req->service_type.len,
             req->service_type.p != NULL ? req->service_type.p : "");
    return true;
}

static void seen_destroy(void *ctx)
{
    (void)ctx;
}

static const struct xray__sampler_ops seen_ops = {seen_decide, seen_destroy};

static void test_sampler_service_type_from_plugin(void **state)
{
    (void)state;
    struct xray_recorder *rec = recorder(XRAY_SAMPLER_LOCAL, fake_closed_port(), NULL);
    rec->sampler->destroy(rec->sampler_ctx);
    rec->sampler = &seen_ops;
    rec->sampler_ctx = NULL;
    xray_segment_end(xray_segment_begin(rec, NULL));
    assert_string_equal(seen_type, ""); /* no origin yet */
    struct xray__plugin_data *pd = calloc(1, sizeof(*pd));
    assert_non_null(pd);
    snprintf(pd->origin, sizeof(pd->origin), "AWS::EC2::Instance");
    assert_int_equal(xray__recorder_set_plugin_data(rec, pd), 0);
    xray_segment_end(xray_segment_begin(rec, NULL));
    assert_string_equal(seen_type, "AWS::EC2::Instance");
    xray_recorder_destroy(rec);
}

static void test_sampler_local_file_v1(void **state)
{
    (void)state;
    clock_set_s(T0_S);
    const char *path = write_file(
        "v1.json", "{\"version\":1,\"default\":{\"fixed_target\":0,\"rate\":0},\"rules\":["
                   "{\"service_name\":\"svc\",\"http_method\":\"*\",\"url_path\":\"/v1/*\","
                   "\"fixed_target\":3,\"rate\":0}]}");
    struct xray_recorder *rec = recorder(XRAY_SAMPLER_LOCAL, fake_closed_port(), path);
    assert_int_equal(count_sampled(rec, "/v1/a", 10), 3);
    assert_int_equal(count_sampled(rec, "/other", 10), 0);
    xray_recorder_destroy(rec);
}

static void test_sampler_bad_file_fails_create(void **state)
{
    (void)state;
    const char *path = write_file("bad.json", "{\"version\":3}");
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.flags = XRAY_CONFIG_IGNORE_ENV;
    cfg.sampler = XRAY_SAMPLER_LOCAL;
    cfg.sampling_rules_file = path;
    cfg.log_level = XRAY_LOG_SILENT;
    char err[XRAY_SDK_ERR_LEN] = "";
    assert_null(xray_recorder_create(&cfg, err));
    assert_non_null(strstr(err, "bad.json"));
    cfg.sampling_rules_file = "/nonexistent/rules.json";
    assert_null(xray_recorder_create(&cfg, err));
    assert_non_null(strstr(err, "rules.json"));
}

/* ---- centralized ---- */

static void test_sampler_centralized_rules_targets_statistics(void **state)
{
    (void)state;
    clock_set_s(T0_S);
    struct daemon_script d = {.rules = rules_body};
    snprintf(d.targets, sizeof(d.targets),
             "{\"SamplingTargetDocuments\":[{\"RuleName\":\"api\",\"FixedRate\":0,"
             "\"ReservoirQuota\":3,\"ReservoirQuotaTTL\":%llu,\"Interval\":10}],"
             "\"LastRuleModification\":1,\"UnprocessedStatistics\":[]}",
             T0_S + 1000);
    struct fake_server *fs = fake_start(daemon_handler, &d);
    struct xray_recorder *rec = recorder(XRAY_SAMPLER_CENTRALIZED, fs->port, NULL);
    char rule[XRAY_SAMPLING_NAME_BYTES + 1];

    /* Before the first fetch: the default rule, no rule name; the poller starts. */
    assert_true(decide(rec, "/api/a", rule));
    assert_string_equal(rule, "");
    FAKE_WAIT(stats(rec).rules_fetched >= 1, 5000);
    assert_true(stats(rec).centralized_live);
    struct fake_request last;
    assert_true(fake_last(fs, "/GetSamplingRules", &last));
    assert_string_equal(last.method, "POST");

    /* No quota yet: borrow one a second, then the rate (0). */
    clock_set_s(T0_S + 1);
    assert_true(decide(rec, "/api/a", rule));
    assert_string_equal(rule, "api");
    assert_false(decide(rec, "/api/a", NULL));
    assert_false(decide(rec, "/other", rule));
    assert_string_equal(rule, "Default");

    /* The poller reports what the rules saw (in one call or, if a tick fell between
     * the decisions, several) and applies the quota. */
    char cid[XRAY_SAMPLING_CLIENT_ID_LEN + 1];
    xray__sampler_client_id(rec->sampler_ctx, cid);
    assert_int_equal(strlen(cid), 24);
    struct rule_sums api = {0}, dflt = {0};
    FAKE_WAIT((sum_statistics(fs, cid, "api", &api), sum_statistics(fs, cid, "Default", &dflt),
               api.requests == 2 && dflt.requests == 1 && stats(rec).targets_sent >= 1),
              5000);
    assert_int_equal(api.requests, 2);
    assert_int_equal(api.sampled, 0);
    assert_int_equal(api.borrowed, 1);
    assert_int_equal(api.timestamp, T0_S + 1);
    assert_int_equal(dflt.requests, 1);
    assert_int_equal(dflt.sampled, 0);
    assert_int_equal(api.foreign + dflt.foreign, 0);
    assert_true(stats(rec).targets_sent >= 1);

    /* Quota 3 a second from now on. */
    clock_set_s(T0_S + 2);
    assert_int_equal(count_sampled(rec, "/api/b", 10), 3);
    clock_set_s(T0_S + 3);
    assert_int_equal(count_sampled(rec, "/api/b", 10), 3);
    /* Nothing new to report within the 10 s interval: no call. */
    size_t calls = fake_count(fs, "/SamplingTargets");
    usleep(300000);
    assert_int_equal(fake_count(fs, "/SamplingTargets"), calls);
    assert_int_equal(fake_count(fs, "/GetSamplingRules"), 1);

    /* A LastRuleModification newer than the fetch makes the poller fetch at once. */
    snprintf(d.targets, sizeof(d.targets),
             "{\"SamplingTargetDocuments\":[],\"LastRuleModification\":%llu}", T0_S + 5);
    clock_set_s(T0_S + 20);
    assert_false(decide(rec, "/other", NULL));
    FAKE_WAIT(fake_count(fs, "/GetSamplingRules") >= 2, 5000);
    assert_int_equal(fake_count(fs, "/GetSamplingRules"), 2);

    /* The daemon goes away: rules keep working until their 1 h expiry ... */
    atomic_store(&d.refuse, 1);
    clock_set_s(T0_S + 3000);
    assert_true(decide(rec, "/api/c", rule)); /* the quota's TTL is T0 + 1000: borrow */
    assert_string_equal(rule, "api");
    /* ... then the local default rule (1/s + 5 %) decides, with no rule name. */
    clock_set_s(T0_S + 20 + 3601);
    assert_false(stats(rec).centralized_live);
    assert_true(decide(rec, "/other", rule));
    assert_string_equal(rule, "");
    xray_recorder_destroy(rec);
    fake_stop(fs);
}

static void test_sampler_targets_rate(void **state)
{
    (void)state;
    clock_set_s(T0_S);
    struct daemon_script d = {.rules = rules_body};
    snprintf(d.targets, sizeof(d.targets),
             "{\"SamplingTargetDocuments\":[{\"RuleName\":\"Default\",\"FixedRate\":1}],"
             "\"LastRuleModification\":0}");
    struct fake_server *fs = fake_start(daemon_handler, &d);
    struct xray_recorder *rec = recorder(XRAY_SAMPLER_CENTRALIZED, fs->port, NULL);
    decide(rec, "/x", NULL);
    FAKE_WAIT(stats(rec).rules_fetched >= 1, 5000);
    assert_int_equal(count_sampled(rec, "/x", 5), 0); /* Default: rate 0, no reservoir */
    FAKE_WAIT(stats(rec).targets_sent >= 1, 5000);
    assert_int_equal(count_sampled(rec, "/x", 50), 50); /* the target's rate 1 */
    xray_recorder_destroy(rec);
    fake_stop(fs);
}

static void test_sampler_daemon_absent(void **state)
{
    (void)state;
    clock_set_s(T0_S);
    const char *path =
        write_file("absent.json", "{\"version\":2,\"default\":{\"fixed_target\":2,\"rate\":0},"
                                  "\"rules\":[]}");
    struct xray_recorder *rec = recorder(XRAY_SAMPLER_CENTRALIZED, fake_closed_port(), path);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(count_sampled(rec, "/x", 10), 2);
    clock_gettime(CLOCK_MONOTONIC, &b);
    /* Deciding never waits for the daemon. */
    assert_true((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 200);
    FAKE_WAIT(stats(rec).rules_failed >= 1, 5000);
    assert_true(stats(rec).rules_failed >= 1);
    assert_int_equal(stats(rec).rules_fetched, 0);
    assert_false(stats(rec).centralized_live);
    clock_set_s(T0_S + 1);
    assert_int_equal(count_sampled(rec, "/x", 10), 2);

    /* A daemon that accepts and never answers costs the poller its timeout, not the
     * host: decisions stay immediate. */
    struct daemon_script d = {.rules = rules_body};
    struct fake_server *fs = fake_start(daemon_handler, &d);
    fs->delay_ms = 3000;
    struct xray_recorder *slow = recorder(XRAY_SAMPLER_CENTRALIZED, fs->port, path);
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(count_sampled(slow, "/x", 10), 2);
    usleep(100000);
    assert_int_equal(count_sampled(slow, "/x", 10), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_true((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 1000);
    xray_recorder_destroy(slow); /* joins a poller that is waiting on the slow call */
    xray_recorder_destroy(rec);
    fake_stop(fs);
}

/* ---- fork ---- */

static void test_sampler_fork_new_client_id(void **state)
{
    (void)state;
#if SAMPLER_TEST_TSAN
    skip(); /* ThreadSanitizer cannot run threads in the child of a threaded fork */
#endif
    clock_set_s(T0_S);
    struct daemon_script d = {.rules = rules_body};
    snprintf(d.targets, sizeof(d.targets),
             "{\"SamplingTargetDocuments\":[],\"LastRuleModification\":0}");
    struct fake_server *fs = fake_start(daemon_handler, &d);
    struct xray_recorder *rec = recorder(XRAY_SAMPLER_CENTRALIZED, fs->port, NULL);
    decide(rec, "/api/p", NULL);
    FAKE_WAIT(stats(rec).rules_fetched >= 1, 5000);
    char parent_id[XRAY_SAMPLING_CLIENT_ID_LEN + 1];
    xray__sampler_client_id(rec->sampler_ctx, parent_id);

    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child: a new ClientID, the parent's rules still valid, its own poller
         * reporting under the new id; destroy joins only the child's thread. */
        close(pipefd[0]);
        char id[XRAY_SAMPLING_CLIENT_ID_LEN + 1];
        xray__sampler_client_id(rec->sampler_ctx, id);
        int ok = strlen(id) == 24 && strcmp(id, parent_id) != 0;
        char rule[XRAY_SAMPLING_NAME_BYTES + 1];
        clock_set_s(T0_S + 1);
        ok = ok && decide(rec, "/api/child", rule) && strcmp(rule, "api") == 0;
        FAKE_WAIT(stats(rec).targets_sent >= 1, 5000);
        ok = ok && stats(rec).targets_sent >= 1;
        (void)!write(pipefd[1], id, 24);
        xray_recorder_destroy(rec);
        _exit(ok ? 0 : 1);
    }
    close(pipefd[1]);
    char child_id[XRAY_SAMPLING_CLIENT_ID_LEN + 1] = "";
    assert_int_equal(read(pipefd[0], child_id, 24), 24);
    close(pipefd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_string_not_equal(child_id, parent_id);
    /* The fake daemon (in this process) saw the child's statistics under its id. */
    struct fake_request last;
    assert_true(fake_last(fs, "/SamplingTargets", &last));
    assert_non_null(strstr(last.body, child_id));
    assert_null(strstr(last.body, parent_id));
    /* The parent keeps its id. */
    char again[XRAY_SAMPLING_CLIENT_ID_LEN + 1];
    xray__sampler_client_id(rec->sampler_ctx, again);
    assert_string_equal(again, parent_id);
    xray_recorder_destroy(rec);
    fake_stop(fs);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/test_sampler.XXXXXX");
    return mkdtemp(tmp_dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"v1.json", "v2.json", "bad.json", "absent.json"};
    char path[128];
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", tmp_dir, names[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampler_local_default),
        cmocka_unit_test(test_sampler_local_file_v2),
        cmocka_unit_test(test_sampler_local_file_v1),
        cmocka_unit_test(test_sampler_service_type_from_plugin),
        cmocka_unit_test(test_sampler_bad_file_fails_create),
        cmocka_unit_test(test_sampler_centralized_rules_targets_statistics),
        cmocka_unit_test(test_sampler_targets_rate),
        cmocka_unit_test(test_sampler_daemon_absent),
        cmocka_unit_test(test_sampler_fork_new_client_id),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
