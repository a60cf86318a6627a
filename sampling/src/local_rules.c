/* SPDX-License-Identifier: Apache-2.0 */
/* The SDKs' local rules file, versions 1 and 2, mapped to centralized rules by the
 * table of spec/sampling.md: rule n (file order, from 1) gets priority n and the
 * name of its description when that is a valid, unique name (else local-<n>), the
 * default becomes "Default" (priority 10000), fixed_target becomes ReservoirSize.
 * Errors name the rule by its position and the key as written in the file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define WHERE_LEN 96

/* A description that can be a rule name: 1-32 characters, none a control
 * character, not "Default", not of the generated form local-<digits>. */
static bool name_usable(const char *s)
{
    bool ctl;
    size_t chars = xray__rule_chars(s, strlen(s), &ctl);
    if (chars < 1 || chars > XRAY_SAMPLING_NAME_MAX || ctl || strcmp(s, XRAY__DEFAULT_NAME) == 0)
        return false;
    if (strncmp(s, "local-", 6) == 0 && s[6] != '\0' &&
        strspn(s + 6, "0123456789") == strlen(s + 6))
        return false;
    return true;
}

static int reject_keys(json_t *obj, const char *const *keys, const char *why, const char *where,
                       char *err)
{
    for (; *keys != NULL; keys++)
        if (json_object_get(obj, *keys) != NULL) {
            xray__rule_error(err, where, *keys, "%s", why);
            return XRAY_ESAMP_RULE;
        }
    return 0;
}

static int target_rate(json_t *obj, const char *where, struct xray__rule_draft *d, char *err)
{
    int64_t ft = 0;
    int rc = xray__rule_get_int(obj, "fixed_target", 0, INT32_MAX, where, &ft, err);
    if (rc == 0)
        rc = xray__rule_get_rate(obj, "rate", where, &d->fixed_rate, err);
    d->reservoir_size = ft;
    return rc;
}

static int parse_rule(json_t *r, int version, size_t n, char *where, struct xray__rule_draft *d,
                      char *err)
{
    snprintf(where, WHERE_LEN, "rule %zu", n);
    if (!json_is_object(r)) {
        xray__rule_error(err, where, NULL, "must be an object");
        return XRAY_ESAMP_RULE;
    }
    const char *desc = NULL;
    json_t *dv = json_object_get(r, "description");
    if (dv != NULL && !json_is_string(dv)) {
        xray__rule_error(err, where, "description", "must be a string");
        return XRAY_ESAMP_RULE;
    }
    if (dv != NULL) {
        desc = json_string_value(dv);
        snprintf(where, WHERE_LEN, "rule %zu (\"%.40s\")", n, desc);
    }
    static const char *const v1_only[] = {"service_name", NULL};
    static const char *const v2_only[] = {"host", NULL};
    int rc = version == 1
                 ? reject_keys(r, v2_only, "not in version 1 (it uses service_name)", where, err)
                 : reject_keys(r, v1_only, "not in version 2 (it uses host)", where, err);
    if (rc != 0)
        return rc;
    const char *first = version == 1 ? "service_name" : "host";
    const char *v;
    if ((rc = xray__rule_get_string(r, first, true, 0, XRAY_SAMPLING_PATTERN_MAX, where, &v,
                                    err)) != 0)
        return rc;
    d->pat[XRAY__F_SERVICE_NAME] = version == 1 ? v : "*";
    d->pat[XRAY__F_HOST] = version == 1 ? "*" : v;
    d->pat[XRAY__F_SERVICE_TYPE] = "*";
    if ((rc = xray__rule_get_string(r, "http_method", true, 0, XRAY_SAMPLING_METHOD_MAX, where,
                                    &d->pat[XRAY__F_HTTP_METHOD], err)) != 0 ||
        (rc = xray__rule_get_string(r, "url_path", true, 0, XRAY_SAMPLING_URL_PATH_MAX, where,
                                    &d->pat[XRAY__F_URL_PATH], err)) != 0 ||
        (rc = target_rate(r, where, d, err)) != 0)
        return rc;
    d->name = desc; /* settled once every description is known */
    d->priority = (int32_t)n;
    return 0;
}

int xray__local_rules_parse(json_t *root, const struct xray_sampling_parse_options *opts,
                            struct xray_sampling_rules **out, char *err)
{
    json_t *ver = json_object_get(root, "version");
    if (!json_is_integer(ver) || (json_integer_value(ver) != 1 && json_integer_value(ver) != 2)) {
        xray__rule_error(err, "input", "version", "must be 1 or 2");
        return XRAY_ESAMP_RULE;
    }
    int version = (int)json_integer_value(ver);
    json_t *def = json_object_get(root, "default");
    if (!json_is_object(def)) {
        xray__rule_error(err, "default", NULL, "missing or not an object");
        return XRAY_ESAMP_RULE;
    }
    json_t *rules = json_object_get(root, "rules");
    if (rules != NULL && !json_is_array(rules)) {
        xray__rule_error(err, "input", "rules", "must be an array");
        return XRAY_ESAMP_RULE;
    }
    size_t n = json_array_size(rules); /* 0 when absent */
    if (n + 1 > XRAY_SAMPLING_MAX_RULES) {
        xray__rule_error(err, "input", "rules", "%zu rules, more than the limit of %d", n + 1,
                         XRAY_SAMPLING_MAX_RULES);
        return XRAY_ESAMP_TOOBIG;
    }
    struct xray__rule_draft *d = calloc(n + 1, sizeof(*d));
    char(*where)[WHERE_LEN] = malloc((n + 1) * WHERE_LEN);
    char(*names)[16] = malloc((n + 1) * 16);
    bool *use = calloc(n + 1, sizeof(bool));
    if (d == NULL || where == NULL || names == NULL || use == NULL) {
        free(d), free(where), free(names), free(use);
        return -ENOMEM;
    }
    int rc = 0;
    static const char *const not_default[] = {"host",     "service_name", "http_method",
                                              "url_path", "description",  NULL};
    snprintf(where[n], WHERE_LEN, "default");
    if ((rc = reject_keys(def, not_default, "not allowed in the default rule", where[n], err)) ==
            0 &&
        (rc = target_rate(def, where[n], &d[n], err)) == 0) {
        d[n].name = XRAY__DEFAULT_NAME;
        d[n].priority = XRAY_SAMPLING_DEFAULT_PRIORITY;
        for (int f = 0; f < XRAY__F_COUNT; f++)
            d[n].pat[f] = "*";
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = parse_rule(json_array_get(rules, i), version, i + 1, where[i], &d[i], err);
    /* A description names its rule when usable and no other rule has the same one;
     * decide for all before renaming any. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        use[i] = d[i].name != NULL && name_usable(d[i].name);
        for (size_t j = 0; use[i] && j < n; j++)
            use[i] = j == i || d[j].name == NULL || strcmp(d[i].name, d[j].name) != 0;
    }
    int64_t now = opts != NULL ? opts->now_s : 0;
    for (size_t i = 0; i < n + 1 && rc == 0; i++) {
        if (i < n && !use[i]) {
            snprintf(names[i], sizeof(names[i]), "local-%zu", i + 1);
            d[i].name = names[i];
        }
        d[i].resource_arn = "*";
        d[i].version = 1;
        d[i].created_at = d[i].modified_at = now;
        d[i].arn_generated = true;
        d[i].where = where[i];
    }
    if (rc == 0)
        rc = xray__rule_build(
            d, n + 1, version == 1 ? XRAY_SAMPLING_SOURCE_LOCAL_V1 : XRAY_SAMPLING_SOURCE_LOCAL_V2,
            opts, out, err);
    free(d);
    free(where);
    free(names);
    free(use);
    return rc;
}
