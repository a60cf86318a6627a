/* SPDX-License-Identifier: Apache-2.0 */
/* The sampling authority's routes: request checks, the response bodies exactly as the
 * SDKs parse them ("Attributes":{}, epoch numbers, a numeric LastRuleModification), and
 * the full-fidelity rewrite. The reservoir arithmetic is libxray_sampling's; this file
 * only feeds it the clock, the requests and the rules. The GetSamplingRules body is
 * built once per rule set, not per call. */
#include "api/sampling_authority.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http/server.h"
#include "log.h"
#include "util.h"

#define MOD          "sampling"
#define LOG_EVERY_MS 60000
#define BAD_REQUEST  "InvalidRequestException"
#define FAILURE      "InternalFailure"

struct sampling_authority {
    struct sampling_authority_options o;
    struct xray_sampling_authority *core;
    char *rules_body; /* the GetSamplingRules answer for the rules in force */
    size_t rules_len;
    struct sampling_authority_stats stats;
};

static const char *const sa_paths[] = {"/GetSamplingRules", "/SamplingTargets",
                                       "/SamplingStatisticSummaries"};

static uint64_t sa_now(const struct sampling_authority *a)
{
    if (a->o.clock_ms != NULL)
        return a->o.clock_ms(a->o.clock_ctx);
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* ---- the GetSamplingRules body ---- */

/* Full fidelity: the same records with every FixedRate at 1.0, so SDKs keep every
 * request once the reservoir is used up. */
static int sa_full_fidelity(char **body, size_t *len)
{
    json_error_t je;
    json_t *root = json_loadb(*body, *len, 0, &je);
    json_t *recs = json_object_get(root, "SamplingRuleRecords");
    if (!json_is_array(recs)) {
        json_decref(root);
        return -ENOMEM; /* our own serialiser's output: only allocation fails here */
    }
    size_t i;
    json_t *rec;
    json_array_foreach(recs, i, rec)
    {
        json_t *rule = json_object_get(rec, "SamplingRule");
        if (json_is_object(rule) && json_object_set_new(rule, "FixedRate", json_real(1.0)) != 0) {
            json_decref(root);
            return -ENOMEM;
        }
    }
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (out == NULL)
        return -ENOMEM;
    free(*body);
    *body = out;
    *len = strlen(out);
    return 0;
}

static int sa_rules_body(const struct sampling_authority *a, struct xray_sampling_rules *rules,
                         char **body, size_t *len)
{
    int rc = xray_sampling_rules_serialize(rules, 0, body, len);
    if (rc == 0 && a->o.full_fidelity && (rc = sa_full_fidelity(body, len)) != 0) {
        free(*body);
        *body = NULL;
    }
    return rc;
}

struct sampling_authority *sampling_authority_create(const struct sampling_authority_options *o,
                                                     struct xray_sampling_rules *rules)
{
    struct sampling_authority *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    if (o != NULL)
        a->o = *o;
    uint64_t now = sa_now(a);
    a->core = xray_sampling_authority_create(&a->o.config, now);
    if (a->core == NULL || sa_rules_body(a, rules, &a->rules_body, &a->rules_len) != 0 ||
        xray_sampling_authority_set_rules(a->core, rules, now) != 0) {
        sampling_authority_destroy(a);
        return NULL;
    }
    return a;
}

void sampling_authority_destroy(struct sampling_authority *a)
{
    if (a == NULL)
        return;
    xray_sampling_authority_destroy(a->core);
    free(a->rules_body);
    free(a);
}

int sampling_authority_set_rules(struct sampling_authority *a, struct xray_sampling_rules *rules)
{
    char *body;
    size_t len;
    int rc = sa_rules_body(a, rules, &body, &len);
    if (rc == 0 && (rc = xray_sampling_authority_set_rules(a->core, rules, sa_now(a))) != 0)
        free(body);
    if (rc != 0)
        return rc;
    free(a->rules_body);
    a->rules_body = body;
    a->rules_len = len;
    a->stats.rule_changes++;
    return 0;
}

/* ---- answers ---- */

static int sa_error(struct sampling_authority_reply *out, int status, const char *type,
                    const char *message)
{
    json_t *o = json_pack("{s:s,s:s}", "__type", type, "message", message);
    out->status = status;
    out->error_type = type;
    out->body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    out->len = out->body != NULL ? strlen(out->body) : 0;
    json_decref(o);
    return 0;
}

static int sa_ok(struct sampling_authority_reply *out, char *body, size_t len)
{
    out->status = 200;
    out->error_type = NULL;
    out->body = body;
    out->len = len;
    return 0;
}

/* GetSamplingRules and GetSamplingStatisticSummaries take {} or {"NextToken": ...}; one
 * ADOT sampler sends no body at all. Every record fits one page, so NextToken is
 * ignored. NULL when the body is acceptable, else why not. */
static const char *sa_check_small_body(const char *body, size_t len)
{
    if (len > SAMPLING_AUTHORITY_SMALL_BODY_MAX)
        return "the request body is larger than this call takes";
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i == len)
        return NULL;
    json_error_t je;
    json_t *v = json_loadb(body, len, 0, &je);
    bool ok = json_is_object(v);
    json_decref(v);
    return ok ? NULL : "the request body is not a JSON object";
}

static int sa_targets(struct sampling_authority *a, const char *body, size_t len, uint64_t now_ms,
                      struct sampling_authority_reply *out)
{
    struct xray_sampling_statistics docs[XRAY_SAMPLING_MAX_STATISTICS];
    struct xray_sampling_target t[XRAY_SAMPLING_MAX_STATISTICS];
    struct xray_sampling_unprocessed u[XRAY_SAMPLING_MAX_STATISTICS];
    char err[XRAY_SAMPLING_ERR_LEN] = "";
    size_t n, nt, nu;
    int rc = xray_sampling_statistics_parse(body, len, docs, XRAY_SAMPLING_MAX_STATISTICS, &n, err);
    if (rc == -ENOMEM)
        return sa_error(out, 500, FAILURE, "out of memory");
    if (rc != 0)
        return sa_error(out, 400, BAD_REQUEST, *err ? err : xray_sampling_strerror(rc));
    rc = xray_sampling_authority_report(a->core, docs, n, now_ms, t, &nt, u, &nu);
    if (rc != 0)
        return sa_error(out, 400, BAD_REQUEST, xray_sampling_strerror(rc));
    if (a->o.full_fidelity) {
        /* Every request sampled by the rate, none limited by a quota: without
         * ReservoirQuota and its TTL, SDKs keep the rate and borrow at most. */
        for (size_t i = 0; i < nt; i++) {
            t[i].fixed_rate = 1.0;
            t[i].have &= ~(XRAY_SAMPLING_TARGET_QUOTA | XRAY_SAMPLING_TARGET_QUOTA_TTL);
        }
    }
    char *resp;
    size_t resp_len;
    rc = xray_sampling_targets_serialize(
        t, nt, u, nu, xray_sampling_authority_last_modification(a->core), &resp, &resp_len);
    if (rc != 0)
        return sa_error(out, 500, FAILURE, "out of memory");
    return sa_ok(out, resp, resp_len);
}

int sampling_authority_answer(struct sampling_authority *a, const char *path, const char *body,
                              size_t len, uint64_t now_ms, struct sampling_authority_reply *out)
{
    memset(out, 0, sizeof(*out));
    int rc;
    if (strcmp(path, "/SamplingTargets") == 0) {
        rc = sa_targets(a, body, len, now_ms, out);
        if (out->status == 200)
            a->stats.targets_calls++;
    } else if (strcmp(path, "/GetSamplingRules") == 0 ||
               strcmp(path, "/SamplingStatisticSummaries") == 0) {
        bool rules = path[1] == 'G';
        const char *why = sa_check_small_body(body, len);
        char *resp = NULL;
        size_t resp_len = 0;
        if (why != NULL)
            rc = sa_error(out, 400, BAD_REQUEST, why);
        else if (rules && (resp = malloc(a->rules_len + 1)) != NULL) {
            memcpy(resp, a->rules_body, a->rules_len + 1);
            rc = sa_ok(out, resp, a->rules_len);
            a->stats.rules_calls++;
        } else if (!rules &&
                   xray_sampling_authority_summaries_body(a->core, &resp, &resp_len) == 0) {
            rc = sa_ok(out, resp, resp_len);
            a->stats.summaries_calls++;
        } else {
            rc = sa_error(out, 500, FAILURE, "out of memory");
        }
    } else {
        return -EINVAL;
    }
    if (out->status == 400)
        a->stats.bad_requests++;
    else if (out->status != 200)
        a->stats.failures++;
    return rc;
}

/* ---- routes ---- */

static void sa_route(struct http_request *req, struct http_response *res, void *data)
{
    struct sampling_authority *a = data;
    struct sampling_authority_reply r;
    if (sampling_authority_answer(a, req->path, req->body, req->body_len, sa_now(a), &r) != 0) {
        http_response_send(res, 404, NULL, NULL, 0);
        return;
    }
    if (r.error_type != NULL) {
        /* The message may quote the client's input: it goes back to the client only. */
        XLOG_EVERY(LOG_EVERY_MS, LOG_LEVEL_INFO, MOD, "POST %s from %s answered %d %s", req->path,
                   req->peer, r.status, r.error_type);
        http_response_header(res, "x-amzn-ErrorType", r.error_type);
    }
    if (r.body != NULL)
        http_response_send(res, r.status, "application/json", r.body, r.len);
    else
        http_response_send(res, 500, NULL, NULL, 0);
    free(r.body);
}

int sampling_authority_register(struct http_server *s, struct sampling_authority *a)
{
    for (size_t i = 0; i < ARRAY_SIZE(sa_paths); i++) {
        int rc = http_server_route(s, HTTP_ROLE_TCP, "POST", sa_paths[i], sa_route, a);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void sampling_authority_get_stats(const struct sampling_authority *a,
                                  struct sampling_authority_stats *out)
{
    *out = a->stats;
}

const struct xray_sampling_authority *sampling_authority_core(const struct sampling_authority *a)
{
    return a->core;
}
