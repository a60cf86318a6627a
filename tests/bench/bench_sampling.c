/* SPDX-License-Identifier: Apache-2.0 */
/* Cost of one sampling decision (xray_sampling_decide: matching, then the reservoir
 * and rate) with 100 rules plus Default, as a service might have them: each rule an
 * exact ServiceName, an HTTP method and a URL path prefix. Three request mixes over
 * a ring of 4,096 prepared requests: uniform over the rules and Default, the worst
 * case (only Default matches: every rule is tried), and the best (the first rule).
 * Each mix runs 7 times; the fastest and the median run are reported (the fastest
 * is the cost itself, the median shows what sharing the machine adds).
 *   bench_sampling [iterations]      (default 3,000,000 per run) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xray/sampling.h"

#define BENCH_RULES 100
#define BENCH_RING  4096
#define BENCH_RUNS  7

static uint64_t xorshift(void *ctx)
{
    uint64_t *s = ctx;
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

struct req_text {
    char svc[32], path[64];
    const char *method;
};

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 3000000;
    char *json = malloc(BENCH_RULES * 400 + 1024), *p = json;
    p += sprintf(p, "{\"SamplingRuleRecords\":[");
    for (int i = 0; i < BENCH_RULES; i++)
        p += sprintf(p,
                     "{\"SamplingRule\":{\"RuleName\":\"rule-%03d\",\"ResourceARN\":\"*\","
                     "\"Priority\":%d,\"FixedRate\":0.05,\"ReservoirSize\":5,"
                     "\"ServiceName\":\"service-%03d\",\"ServiceType\":\"*\",\"Host\":\"*\","
                     "\"HTTPMethod\":\"%s\",\"URLPath\":\"/api/v%d/*\",\"Version\":1}},",
                     i, i + 1, i, i % 3 ? "GET" : "*", i);
    sprintf(p, "{\"SamplingRule\":{\"RuleName\":\"Default\",\"ResourceARN\":\"*\","
               "\"Priority\":10000,\"FixedRate\":0.05,\"ReservoirSize\":1,\"ServiceName\":\"*\","
               "\"ServiceType\":\"*\",\"Host\":\"*\",\"HTTPMethod\":\"*\",\"URLPath\":\"*\","
               "\"Version\":1}}]}");
    struct xray_sampling_rules *rs = NULL;
    char err[XRAY_SAMPLING_ERR_LEN];
    if (xray_sampling_rules_parse(json, strlen(json), NULL, &rs, err) != 0) {
        fprintf(stderr, "bench_sampling: %s\n", err);
        return 1;
    }
    free(json);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    struct xray_sampling_random rng = {xorshift, &seed};
    struct xray_sampling_state *st =
        xray_sampling_state_create(rs, "0123456789abcdef01234567", 0, NULL, 1700000000000ull);
    static struct req_text text[BENCH_RING];
    static struct xray_sampling_request req[BENCH_RING];
    const char *mixes[] = {"uniform over 100 rules + Default", "worst: only Default matches",
                           "best: the first rule matches"};
    for (int mix = 0; mix < 3; mix++) {
        for (int i = 0; i < BENCH_RING; i++) {
            int k = (int)(xorshift(&seed) % (BENCH_RULES + 1)); /* BENCH_RULES: Default */
            if (mix == 1)
                k = BENCH_RULES;
            if (mix == 2)
                k = 0;
            struct req_text *t = &text[i];
            snprintf(t->svc, sizeof(t->svc), k < BENCH_RULES ? "Service-%03d" : "other-%03d", k);
            snprintf(t->path, sizeof(t->path), "/api/v%d/items/%d", k < BENCH_RULES ? k : 999, i);
            t->method = "GET";
            req[i] = (struct xray_sampling_request){
                xray_sampling_str_c(t->svc), xray_sampling_str_c("AWS::ECS::Container"),
                xray_sampling_str_c("api.example.com"), xray_sampling_str_c(t->method),
                xray_sampling_str_c(t->path)};
        }
        uint64_t sampled = 0, t_ms = 1700000000000ull;
        double run[BENCH_RUNS];
        for (int r = 0; r < BENCH_RUNS; r++) {
            double t0 = now_ns();
            for (long i = 0; i < iters; i++) {
                /* 100,000 decisions per simulated second. */
                sampled += xray_sampling_decide(st, &req[i & (BENCH_RING - 1)],
                                                t_ms + (uint64_t)i / 100, &rng, NULL);
            }
            t_ms += (uint64_t)iters / 100 + 1000;
            run[r] = (now_ns() - t0) / (double)iters;
        }
        for (int a = 1; a < BENCH_RUNS; a++) /* insertion sort: 7 values */
            for (int b = a; b > 0 && run[b] < run[b - 1]; b--) {
                double x = run[b];
                run[b] = run[b - 1];
                run[b - 1] = x;
            }
        printf("%-36s %6.1f ns/decision fastest, %6.1f median  (%d x %ld, %.2f%% sampled)\n",
               mixes[mix], run[0], run[BENCH_RUNS / 2], BENCH_RUNS, iters,
               100.0 * (double)sampled / ((double)iters * BENCH_RUNS));
    }
    xray_sampling_state_destroy(st);
    xray_sampling_rules_free(rs);
    return 0;
}
