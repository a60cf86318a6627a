/* SPDX-License-Identifier: Apache-2.0 */
/* The centralized rule shape, both ways: parses what `aws xray get-sampling-rules`
 * prints (and what GetSamplingRules answers), checking every field of every rule
 * against the X-Ray limits, and writes the GetSamplingRules response body. Also the
 * entry point that tells the centralized shape from a local rules file. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define WHERE_LEN 96

/* Days since 1970-01-01 of a proleptic Gregorian date (the civil-from-days
 * inverse: eras of 400 years, years starting in March). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "2018-06-26T13:20:00.123+00:00" (or Z, or +0000, or no zone: UTC) to epoch s. */
static bool iso8601(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, se, zh = 0, zm = 0;
    size_t n = strlen(s);
    if (n < 19 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &se))
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        const char *f = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == f)
            return false;
    }
    int sign = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        p++;
        if (!digits(p, 2, &zh))
            return false;
        p += 2;
        if (*p == ':')
            p++;
        if (!digits(p, 2, &zm))
            return false;
        p += 2;
    }
    if (*p != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 60 || zh > 23 || zm > 59)
        return false;
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
    t -= sign * (zh * 3600 + zm * 60);
    if (t < 0)
        return false;
    *out = t;
    return true;
}

/* 2^53 s is far past any real time and keeps every value exact in a double. */
#define MAX_EPOCH_S 9007199254740991LL

static int get_time(json_t *rec, const char *key, int64_t dflt, const char *where, int64_t *out,
                    char *err)
{
    json_t *v = json_object_get(rec, key);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (d >= 0 && d <= (double)MAX_EPOCH_S) {
            *out = (int64_t)floor(d);
            return 0;
        }
    } else if (json_is_string(v) && iso8601(json_string_value(v), out)) {
        return 0;
    }
    xray__rule_error(err, where, key, "must be epoch seconds or an ISO 8601 time");
    return XRAY_ESAMP_RULE;
}

static int get_attributes(json_t *rule, const char *where, struct xray__rule_draft *d, char *err)
{
    json_t *attrs = json_object_get(rule, "Attributes");
    if (attrs == NULL)
        return 0;
    if (!json_is_object(attrs)) {
        xray__rule_error(err, where, "Attributes", "must be an object");
        return XRAY_ESAMP_RULE;
    }
    size_t n = json_object_size(attrs);
    if (n > XRAY_SAMPLING_MAX_ATTRIBUTES) {
        xray__rule_error(err, where, "Attributes", "more than %d entries",
                         XRAY_SAMPLING_MAX_ATTRIBUTES);
        return XRAY_ESAMP_RULE;
    }
    if (n == 0)
        return 0;
    d->attributes = malloc(2 * n * sizeof(char *));
    if (d->attributes == NULL)
        return -ENOMEM;
    const char *key;
    json_t *val;
    size_t i = 0;
    json_object_foreach(attrs, key, val)
    {
        size_t kc = xray__rule_chars(key, strlen(key), NULL);
        if (kc < 1 || kc > XRAY_SAMPLING_ATTR_MAX) {
            xray__rule_error(err, where, "Attributes", "key \"%.40s\" must be 1 to %d characters",
                             key, XRAY_SAMPLING_ATTR_MAX);
            return XRAY_ESAMP_RULE;
        }
        size_t vc = json_is_string(val)
                        ? xray__rule_chars(json_string_value(val), json_string_length(val), NULL)
                        : 0;
        if (vc < 1 || vc > XRAY_SAMPLING_ATTR_MAX) {
            xray__rule_error(err, where, "Attributes",
                             "value of \"%.40s\" must be a string of 1 to %d characters", key,
                             XRAY_SAMPLING_ATTR_MAX);
            return XRAY_ESAMP_RULE;
        }
        d->attributes[2 * i] = key;
        d->attributes[2 * i + 1] = json_string_value(val);
        i++;
    }
    d->n_attributes = n;
    return 0;
}

static int parse_record(json_t *rec, size_t idx, const struct xray_sampling_parse_options *opts,
                        char *where, struct xray__rule_draft *d, char *err)
{
    snprintf(where, WHERE_LEN, "SamplingRuleRecords[%zu]", idx);
    json_t *rule = json_is_object(rec) ? json_object_get(rec, "SamplingRule") : NULL;
    if (!json_is_object(rule)) {
        xray__rule_error(err, where, "SamplingRule", "missing or not an object");
        return XRAY_ESAMP_RULE;
    }
    bool ctl;
    int rc = xray__rule_get_string(rule, "RuleName", true, 1, XRAY_SAMPLING_NAME_MAX, where,
                                   &d->name, err);
    if (rc != 0)
        return rc;
    xray__rule_chars(d->name, strlen(d->name), &ctl);
    if (ctl) {
        xray__rule_error(err, where, "RuleName", "holds a control character");
        return XRAY_ESAMP_RULE;
    }
    snprintf(where, WHERE_LEN, "rule \"%s\"", d->name);
    static const char *const keys[XRAY__F_COUNT] = {"ServiceName", "ServiceType", "Host",
                                                    "HTTPMethod", "URLPath"};
    static const size_t max[XRAY__F_COUNT] = {XRAY_SAMPLING_PATTERN_MAX, XRAY_SAMPLING_PATTERN_MAX,
                                              XRAY_SAMPLING_PATTERN_MAX, XRAY_SAMPLING_METHOD_MAX,
                                              XRAY_SAMPLING_URL_PATH_MAX};
    int64_t prio, rsv, ver;
    if ((rc = xray__rule_get_string(rule, "RuleARN", false, 0, XRAY_SAMPLING_RULE_ARN_MAX, where,
                                    &d->arn, err)) != 0 ||
        (rc = xray__rule_get_string(rule, "ResourceARN", true, 0, XRAY_SAMPLING_RESOURCE_ARN_MAX,
                                    where, &d->resource_arn, err)) != 0 ||
        (rc = xray__rule_get_int(rule, "Priority", XRAY_SAMPLING_PRIORITY_MIN,
                                 XRAY_SAMPLING_DEFAULT_PRIORITY, where, &prio, err)) != 0 ||
        (rc = xray__rule_get_rate(rule, "FixedRate", where, &d->fixed_rate, err)) != 0 ||
        (rc = xray__rule_get_int(rule, "ReservoirSize", 0, INT32_MAX, where, &rsv, err)) != 0)
        return rc;
    for (int f = 0; f < XRAY__F_COUNT; f++)
        if ((rc = xray__rule_get_string(rule, keys[f], true, 0, max[f], where, &d->pat[f], err)) !=
            0)
            return rc;
    if ((rc = xray__rule_get_int(rule, "Version", 1, INT32_MAX, where, &ver, err)) != 0 ||
        (rc = get_attributes(rule, where, d, err)) != 0)
        return rc;
    int64_t now = opts != NULL ? opts->now_s : 0;
    if ((rc = get_time(rec, "CreatedAt", now, where, &d->created_at, err)) != 0 ||
        (rc = get_time(rec, "ModifiedAt", now, where, &d->modified_at, err)) != 0)
        return rc;
    if (d->arn == NULL)
        d->arn = "";
    d->priority = (int32_t)prio;
    d->reservoir_size = rsv;
    d->version = (int32_t)ver;
    d->where = where;
    return 0;
}

static int parse_centralized(json_t *root, const struct xray_sampling_parse_options *opts,
                             struct xray_sampling_rules **out, char *err)
{
    json_t *recs = json_object_get(root, "SamplingRuleRecords");
    if (!json_is_array(recs)) {
        xray__rule_error(err, "input", "SamplingRuleRecords", "must be an array");
        return XRAY_ESAMP_RULE;
    }
    size_t n = json_array_size(recs);
    if (n > XRAY_SAMPLING_MAX_RULES) {
        xray__rule_error(err, "input", "SamplingRuleRecords",
                         "%zu rules, more than the limit of %d", n, XRAY_SAMPLING_MAX_RULES);
        return XRAY_ESAMP_TOOBIG;
    }
    struct xray__rule_draft *d = calloc(n ? n : 1, sizeof(*d));
    char(*where)[WHERE_LEN] = malloc((n ? n : 1) * WHERE_LEN);
    int rc = d != NULL && where != NULL ? 0 : -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = parse_record(json_array_get(recs, i), i, opts, where[i], &d[i], err);
    if (rc == 0)
        rc = xray__rule_build(d, n, XRAY_SAMPLING_SOURCE_CENTRALIZED, opts, out, err);
    for (size_t i = 0; d != NULL && i < n; i++)
        free(d[i].attributes);
    free(d);
    free(where);
    return rc;
}

XRAY_SAMPLING_API int xray_sampling_rules_parse(const char *json, size_t len,
                                                const struct xray_sampling_parse_options *opts,
                                                struct xray_sampling_rules **out, char *err)
{
    *out = NULL;
    if (err != NULL)
        err[0] = '\0';
    int rc;
    json_t *root = xray__rule_load_json(json, len, XRAY_SAMPLING_MAX_FILE_BYTES, &rc, err);
    if (root == NULL)
        return rc;
    if (json_object_get(root, "SamplingRuleRecords") != NULL) {
        rc = parse_centralized(root, opts, out, err);
    } else if (json_object_get(root, "version") != NULL) {
        rc = xray__local_rules_parse(root, opts, out, err);
    } else {
        xray__rule_error(err, "input", NULL,
                         "neither a GetSamplingRules body (SamplingRuleRecords) nor a local "
                         "rules file (version)");
        rc = XRAY_ESAMP_RULE;
    }
    json_decref(root);
    return rc;
}

XRAY_SAMPLING_API int xray_sampling_rules_serialize(const struct xray_sampling_rules *rules,
                                                    unsigned flags, char **out, size_t *len)
{
    struct xray__json w = {0};
    xray__json_raw(&w, "{\"SamplingRuleRecords\":[");
    bool first = true;
    for (size_t i = 0; i < rules->n; i++) {
        const struct xray_sampling_rule *r = &rules->rule[i];
        if (r->drop != 0 && !(flags & XRAY_SAMPLING_SERIALIZE_ALL))
            continue;
        xray__json_raw(&w, first ? "{" : ",{");
        first = false;
        xray__json_raw(&w, "\"SamplingRule\":{\"RuleName\":");
        xray__json_str(&w, r->name);
        if (r->arn[0] != '\0') {
            xray__json_raw(&w, ",\"RuleARN\":");
            xray__json_str(&w, r->arn);
        }
        xray__json_raw(&w, ",\"ResourceARN\":");
        xray__json_str(&w, r->resource_arn);
        xray__json_raw(&w, ",\"Priority\":");
        xray__json_i64(&w, r->priority);
        xray__json_raw(&w, ",\"FixedRate\":");
        xray__json_double(&w, r->fixed_rate);
        xray__json_raw(&w, ",\"ReservoirSize\":");
        xray__json_i64(&w, r->reservoir_size);
        xray__json_raw(&w, ",\"ServiceName\":");
        xray__json_str(&w, r->service_name);
        xray__json_raw(&w, ",\"ServiceType\":");
        xray__json_str(&w, r->service_type);
        xray__json_raw(&w, ",\"Host\":");
        xray__json_str(&w, r->host);
        xray__json_raw(&w, ",\"HTTPMethod\":");
        xray__json_str(&w, r->http_method);
        xray__json_raw(&w, ",\"URLPath\":");
        xray__json_str(&w, r->url_path);
        xray__json_raw(&w, ",\"Version\":");
        xray__json_i64(&w, r->version);
        /* Always present: the Node SDK drops a rule without the key. */
        xray__json_raw(&w, ",\"Attributes\":{");
        for (size_t a = 0; a < r->n_attributes; a++) {
            if (a > 0)
                xray__json_raw(&w, ",");
            xray__json_str(&w, r->attributes[2 * a]);
            xray__json_raw(&w, ":");
            xray__json_str(&w, r->attributes[2 * a + 1]);
        }
        xray__json_raw(&w, "}},\"CreatedAt\":");
        xray__json_i64(&w, r->created_at);
        xray__json_raw(&w, ",\"ModifiedAt\":");
        xray__json_i64(&w, r->modified_at);
        xray__json_raw(&w, "}");
    }
    xray__json_raw(&w, "]}");
    return xray__json_finish(&w, out, len);
}
