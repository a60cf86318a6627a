/* SPDX-License-Identifier: Apache-2.0 */
/* The bodies of the SamplingTargets exchange, both ways: statistics documents (what
 * an SDK sends, checked strictly as the authority's input) and target documents
 * (what the authority answers, read leniently as an SDK's input: a bad field is
 * treated as absent). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- statistics documents ---- */

static bool is_hex24(const char *s, size_t n)
{
    if (n != XRAY_SAMPLING_CLIENT_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* A count: a non-negative integer (an integral real is accepted, up to 2^53). */
static bool get_count(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && d <= 9007199254740992.0 && d == floor(d)) {
            *out = (uint64_t)d;
            return true;
        }
    }
    return false;
}

static bool get_name(json_t *o, char *out)
{
    json_t *v = json_object_get(o, "RuleName");
    if (!json_is_string(v))
        return false;
    size_t n = json_string_length(v);
    size_t chars = xray__rule_chars(json_string_value(v), n, NULL);
    if (chars < 1 || chars > XRAY_SAMPLING_NAME_MAX || n > XRAY_SAMPLING_NAME_BYTES)
        return false;
    memcpy(out, json_string_value(v), n + 1);
    return true;
}

static int parse_statistic(json_t *o, size_t i, struct xray_sampling_statistics *s, char *err)
{
    char where[64];
    snprintf(where, sizeof(where), "SamplingStatisticsDocuments[%zu]", i);
    if (!json_is_object(o)) {
        xray__rule_error(err, where, NULL, "must be an object");
        return XRAY_ESAMP_REQUEST;
    }
    if (!get_name(o, s->rule_name)) {
        xray__rule_error(err, where, "RuleName", "must be a string of 1 to %d characters",
                         XRAY_SAMPLING_NAME_MAX);
        return XRAY_ESAMP_REQUEST;
    }
    json_t *id = json_object_get(o, "ClientID");
    if (!json_is_string(id) || !is_hex24(json_string_value(id), json_string_length(id))) {
        xray__rule_error(err, where, "ClientID", "must be 24 hexadecimal digits");
        return XRAY_ESAMP_REQUEST;
    }
    memcpy(s->client_id, json_string_value(id), XRAY_SAMPLING_CLIENT_ID_LEN + 1);
    json_t *ts = json_object_get(o, "Timestamp");
    double t = json_is_number(ts) ? json_number_value(ts) : -1;
    if (!(t >= 0 && t <= 9007199254740991.0)) {
        xray__rule_error(err, where, "Timestamp", "must be epoch seconds");
        return XRAY_ESAMP_REQUEST;
    }
    s->timestamp = (int64_t)floor(t);
    static const char *const keys[] = {"RequestCount", "SampledCount", "BorrowCount"};
    uint64_t *vals[] = {&s->request_count, &s->sampled_count, &s->borrow_count};
    for (int k = 0; k < 3; k++)
        if (!get_count(o, keys[k], vals[k])) {
            xray__rule_error(err, where, keys[k], "must be a non-negative integer");
            return XRAY_ESAMP_REQUEST;
        }
    return 0;
}

XRAY_SAMPLING_API int xray_sampling_statistics_parse(const char *json, size_t len,
                                                     struct xray_sampling_statistics *docs,
                                                     size_t max, size_t *n, char *err)
{
    *n = 0;
    int rc;
    json_t *root = xray__rule_load_json(json, len, XRAY_SAMPLING_MAX_BODY_BYTES, &rc, err);
    if (root == NULL)
        return rc;
    json_t *arr = json_object_get(root, "SamplingStatisticsDocuments");
    size_t count = json_array_size(arr);
    if (!json_is_array(arr)) {
        xray__rule_error(err, "request", "SamplingStatisticsDocuments", "must be an array");
        rc = XRAY_ESAMP_REQUEST;
    } else if (count > XRAY_SAMPLING_MAX_STATISTICS || count > max) {
        xray__rule_error(err, "request", "SamplingStatisticsDocuments",
                         "%zu documents, more than the limit of %zu", count,
                         max < XRAY_SAMPLING_MAX_STATISTICS ? max
                                                            : (size_t)XRAY_SAMPLING_MAX_STATISTICS);
        rc = count > XRAY_SAMPLING_MAX_STATISTICS ? XRAY_ESAMP_REQUEST : XRAY_ESAMP_TOOBIG;
    }
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = parse_statistic(json_array_get(arr, i), i, &docs[i], err);
    if (rc == 0)
        *n = count;
    json_decref(root);
    return rc;
}

XRAY_SAMPLING_API int
xray_sampling_statistics_serialize(const struct xray_sampling_statistics *docs, size_t n,
                                   char **out, size_t *len)
{
    *out = NULL;
    if (n > XRAY_SAMPLING_MAX_STATISTICS)
        return -EINVAL;
    struct xray__json w = {0};
    xray__json_raw(&w, "{\"SamplingStatisticsDocuments\":[");
    for (size_t i = 0; i < n; i++) {
        xray__json_raw(&w, i ? ",{\"RuleName\":" : "{\"RuleName\":");
        xray__json_str(&w, docs[i].rule_name);
        xray__json_raw(&w, ",\"ClientID\":");
        xray__json_str(&w, docs[i].client_id);
        xray__json_raw(&w, ",\"Timestamp\":");
        xray__json_i64(&w, docs[i].timestamp);
        xray__json_raw(&w, ",\"RequestCount\":");
        xray__json_u64(&w, docs[i].request_count);
        xray__json_raw(&w, ",\"SampledCount\":");
        xray__json_u64(&w, docs[i].sampled_count);
        xray__json_raw(&w, ",\"BorrowCount\":");
        xray__json_u64(&w, docs[i].borrow_count);
        xray__json_raw(&w, "}");
    }
    xray__json_raw(&w, "]}");
    return xray__json_finish(&w, out, len);
}

/* ---- target documents ---- */

static void parse_target(json_t *o, struct xray_sampling_target *t)
{
    t->have = 0;
    json_t *v = json_object_get(o, "FixedRate");
    if (json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) <= 1) {
        t->fixed_rate = json_number_value(v);
        t->have |= XRAY_SAMPLING_TARGET_RATE;
    }
    uint64_t q;
    if (get_count(o, "ReservoirQuota", &q) && q <= INT32_MAX) {
        t->reservoir_quota = (int64_t)q;
        t->have |= XRAY_SAMPLING_TARGET_QUOTA;
    }
    v = json_object_get(o, "ReservoirQuotaTTL");
    if (json_is_number(v) && json_number_value(v) >= 0 &&
        json_number_value(v) <= 9007199254740991.0) {
        t->quota_ttl_s = (int64_t)floor(json_number_value(v));
        t->have |= XRAY_SAMPLING_TARGET_QUOTA_TTL;
    }
    uint64_t iv;
    if (get_count(o, "Interval", &iv) && iv >= 1 && iv <= 86400) {
        t->interval_s = (int32_t)iv;
        t->have |= XRAY_SAMPLING_TARGET_INTERVAL;
    }
}

XRAY_SAMPLING_API int xray_sampling_targets_parse(const char *json, size_t len,
                                                  struct xray_sampling_target *targets, size_t max,
                                                  size_t *n, int64_t *last_rule_modification,
                                                  char *err)
{
    *n = 0;
    *last_rule_modification = 0;
    int rc;
    json_t *root = xray__rule_load_json(json, len, XRAY_SAMPLING_MAX_BODY_BYTES, &rc, err);
    if (root == NULL)
        return rc;
    json_t *arr = json_object_get(root, "SamplingTargetDocuments");
    if (arr != NULL && !json_is_array(arr)) {
        xray__rule_error(err, "response", "SamplingTargetDocuments", "must be an array");
        json_decref(root);
        return XRAY_ESAMP_REQUEST;
    }
    size_t k = 0;
    for (size_t i = 0; i < json_array_size(arr) && k < max; i++) {
        json_t *o = json_array_get(arr, i);
        if (json_is_object(o) && get_name(o, targets[k].rule_name))
            parse_target(o, &targets[k++]);
    }
    *n = k;
    json_t *lm = json_object_get(root, "LastRuleModification");
    if (json_is_number(lm) && json_number_value(lm) >= 0 &&
        json_number_value(lm) <= 9007199254740991.0)
        *last_rule_modification = (int64_t)floor(json_number_value(lm));
    json_decref(root);
    return 0;
}

XRAY_SAMPLING_API int
xray_sampling_targets_serialize(const struct xray_sampling_target *targets, size_t n,
                                const struct xray_sampling_unprocessed *unproc, size_t n_unproc,
                                int64_t last_rule_modification, char **out, size_t *len)
{
    struct xray__json w = {0};
    xray__json_raw(&w, "{\"SamplingTargetDocuments\":[");
    for (size_t i = 0; i < n; i++) {
        const struct xray_sampling_target *t = &targets[i];
        xray__json_raw(&w, i ? ",{\"RuleName\":" : "{\"RuleName\":");
        xray__json_str(&w, t->rule_name);
        if (t->have & XRAY_SAMPLING_TARGET_RATE) {
            xray__json_raw(&w, ",\"FixedRate\":");
            xray__json_double(&w, t->fixed_rate);
        }
        if (t->have & XRAY_SAMPLING_TARGET_QUOTA) {
            xray__json_raw(&w, ",\"ReservoirQuota\":");
            xray__json_i64(&w, t->reservoir_quota);
        }
        if (t->have & XRAY_SAMPLING_TARGET_QUOTA_TTL) {
            xray__json_raw(&w, ",\"ReservoirQuotaTTL\":");
            xray__json_i64(&w, t->quota_ttl_s);
        }
        if (t->have & XRAY_SAMPLING_TARGET_INTERVAL) {
            xray__json_raw(&w, ",\"Interval\":");
            xray__json_i64(&w, t->interval_s);
        }
        xray__json_raw(&w, "}");
    }
    /* A number, never a string: the Node SDK fails otherwise. */
    xray__json_raw(&w, "],\"LastRuleModification\":");
    xray__json_i64(&w, last_rule_modification);
    xray__json_raw(&w, ",\"UnprocessedStatistics\":[");
    for (size_t i = 0; i < n_unproc; i++) {
        xray__json_raw(&w, i ? ",{\"RuleName\":" : "{\"RuleName\":");
        xray__json_str(&w, unproc[i].rule_name);
        xray__json_raw(&w, ",\"ErrorCode\":");
        xray__json_str(&w, unproc[i].error_code);
        xray__json_raw(&w, ",\"Message\":");
        xray__json_str(&w, unproc[i].message);
        xray__json_raw(&w, "}");
    }
    xray__json_raw(&w, "]}");
    return xray__json_finish(&w, out, len);
}
