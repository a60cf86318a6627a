/* SPDX-License-Identifier: Apache-2.0 */
/* The SamplingRule model: the immutable, reference-counted rule set, its builder
 * (cross-rule checks, match order, one arena, compiled patterns) and the field
 * readers both parsers use. A set is built whole or not at all. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

XRAY_SAMPLING_API const char *xray_sampling_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case -ENOMEM:
        return "out of memory";
    case -EINVAL:
        return "invalid argument";
#define XX(name, value, msg)                                                                       \
    case value:                                                                                    \
        return msg;
        XRAY_SAMPLING_ERRNO_MAP(XX)
#undef XX
    default:
        return "unknown error";
    }
}

void xray__rule_error(char *err, const char *where, const char *field, const char *fmt, ...)
{
    if (err == NULL)
        return;
    int n = field != NULL ? snprintf(err, XRAY_SAMPLING_ERR_LEN, "%s: %s: ", where, field)
                          : snprintf(err, XRAY_SAMPLING_ERR_LEN, "%s: ", where);
    if (n < 0 || n >= XRAY_SAMPLING_ERR_LEN)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, XRAY_SAMPLING_ERR_LEN - (size_t)n, fmt, ap);
    va_end(ap);
}

size_t xray__rule_chars(const char *s, size_t n, bool *control)
{
    size_t chars = 0;
    bool ctl = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        chars += (c & 0xc0) != 0x80;
        ctl |= c < 0x20 || c == 0x7f;
    }
    if (control != NULL)
        *control = ctl;
    return chars;
}

json_t *xray__rule_load_json(const char *json, size_t len, size_t max, int *rc, char *err)
{
    if (len > max) {
        *rc = XRAY_ESAMP_TOOBIG;
        xray__rule_error(err, "input", NULL, "%zu bytes, more than the limit of %zu", len, max);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(json != NULL ? json : "", len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        *rc = XRAY_ESAMP_JSON;
        xray__rule_error(err, "input", NULL, "line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *rc = XRAY_ESAMP_JSON;
        xray__rule_error(err, "input", NULL, "not a JSON object");
        return NULL;
    }
    *rc = 0;
    return root;
}

int xray__rule_get_string(json_t *obj, const char *key, bool required, size_t min_chars,
                          size_t max_chars, const char *where, const char **out, char *err)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        *out = NULL;
        if (!required)
            return 0;
        xray__rule_error(err, where, key, "missing");
        return XRAY_ESAMP_RULE;
    }
    if (!json_is_string(v)) {
        xray__rule_error(err, where, key, "must be a string");
        return XRAY_ESAMP_RULE;
    }
    size_t chars = xray__rule_chars(json_string_value(v), json_string_length(v), NULL);
    if (chars < min_chars || chars > max_chars) {
        xray__rule_error(err, where, key, "must be %zu to %zu characters, not %zu", min_chars,
                         max_chars, chars);
        return XRAY_ESAMP_RULE;
    }
    *out = json_string_value(v);
    return 0;
}

int xray__rule_get_int(json_t *obj, const char *key, int64_t min, int64_t max, const char *where,
                       int64_t *out, char *err)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        xray__rule_error(err, where, key, "missing");
        return XRAY_ESAMP_RULE;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        xray__rule_error(err, where, key, "must be an integer from %lld to %lld", (long long)min,
                         (long long)max);
        return XRAY_ESAMP_RULE;
    }
    *out = json_integer_value(v);
    return 0;
}

int xray__rule_get_rate(json_t *obj, const char *key, const char *where, double *out, char *err)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        xray__rule_error(err, where, key, "missing");
        return XRAY_ESAMP_RULE;
    }
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    if (!(d >= 0.0 && d <= 1.0)) {
        xray__rule_error(err, where, key, "must be a number from 0 to 1");
        return XRAY_ESAMP_RULE;
    }
    *out = d;
    return 0;
}

/* ---- the builder ---- */

static int draft_cmp(const void *a, const void *b)
{
    const struct xray__rule_draft *x = *(const struct xray__rule_draft *const *)a;
    const struct xray__rule_draft *y = *(const struct xray__rule_draft *const *)b;
    bool dx = strcmp(x->name, XRAY__DEFAULT_NAME) == 0;
    bool dy = strcmp(y->name, XRAY__DEFAULT_NAME) == 0;
    if (dx != dy)
        return dx ? 1 : -1;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int name_cmp(const void *a, const void *b)
{
    const struct xray__rule_draft *x = *(const struct xray__rule_draft *const *)a;
    const struct xray__rule_draft *y = *(const struct xray__rule_draft *const *)b;
    return strcmp(x->name, y->name);
}

static uint32_t draft_drop(const struct xray__rule_draft *d)
{
    uint32_t drop = 0;
    if (d->version != 1)
        drop |= XRAY_SAMPLING_DROP_VERSION;
    if (strcmp(d->resource_arn, "*") != 0)
        drop |= XRAY_SAMPLING_DROP_RESOURCE_ARN;
    if (d->pat[XRAY__F_SERVICE_TYPE][0] == '\0')
        drop |= XRAY_SAMPLING_DROP_SERVICE_TYPE;
    if (d->n_attributes > 0)
        drop |= XRAY_SAMPLING_DROP_ATTRIBUTES;
    return drop;
}

struct arena {
    char *p, *end;
};

static const char *arena_str(struct arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *r = a->p;
    memcpy(r, s, n);
    a->p += n;
    return r;
}

#define ARN_FMT "arn:aws:xray:%s:%s:sampling-rule/%s"

/* sorted is in name order. */
static int check_cross(const struct xray__rule_draft *const *sorted, size_t n, char *err)
{
    size_t defaults = 0;
    for (size_t i = 0; i < n; i++) {
        const struct xray__rule_draft *d = sorted[i];
        bool is_default = strcmp(d->name, XRAY__DEFAULT_NAME) == 0;
        if (i > 0 && strcmp(sorted[i - 1]->name, d->name) == 0) {
            xray__rule_error(err, d->where, "RuleName", "\"%s\" is used by another rule", d->name);
            return XRAY_ESAMP_RULE;
        }
        if (is_default) {
            defaults++;
            if (d->priority != XRAY_SAMPLING_DEFAULT_PRIORITY) {
                xray__rule_error(err, d->where, "Priority", "must be %d for Default",
                                 XRAY_SAMPLING_DEFAULT_PRIORITY);
                return XRAY_ESAMP_RULE;
            }
            uint32_t drop = draft_drop(d);
            if (drop != 0) {
                xray__rule_error(err, d->where, NULL, "the SDKs would drop this Default rule: %s",
                                 xray_sampling_drop_reason(drop));
                return XRAY_ESAMP_RULE;
            }
        } else if (d->priority < XRAY_SAMPLING_PRIORITY_MIN ||
                   d->priority > XRAY_SAMPLING_PRIORITY_MAX) {
            xray__rule_error(err, d->where, "Priority", "must be an integer from %d to %d",
                             XRAY_SAMPLING_PRIORITY_MIN, XRAY_SAMPLING_PRIORITY_MAX);
            return XRAY_ESAMP_RULE;
        }
    }
    if (defaults != 1) {
        xray__rule_error(err, "rules", NULL, "no rule named \"Default\" (the catch-all)");
        return XRAY_ESAMP_RULE;
    }
    return 0;
}

int xray__rule_build(const struct xray__rule_draft *drafts, size_t n,
                     enum xray_sampling_source source,
                     const struct xray_sampling_parse_options *opts,
                     struct xray_sampling_rules **out, char *err)
{
    *out = NULL;
    if (n > XRAY_SAMPLING_MAX_RULES) {
        xray__rule_error(err, "rules", NULL, "%zu rules, more than the limit of %d", n,
                         XRAY_SAMPLING_MAX_RULES);
        return XRAY_ESAMP_TOOBIG;
    }
    const char *region = opts != NULL && opts->region != NULL ? opts->region : "local";
    const char *account =
        opts != NULL && opts->account_id != NULL ? opts->account_id : "000000000000";
    const struct xray__rule_draft **sorted = malloc((n ? n : 1) * sizeof(*sorted));
    const struct xray__rule_draft **by_name = malloc((n ? n : 1) * sizeof(*by_name));
    if (sorted == NULL || by_name == NULL) {
        free(sorted);
        free(by_name);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = by_name[i] = &drafts[i];
    /* Names are unique across priorities too: check them in name order. */
    qsort(by_name, n, sizeof(*by_name), name_cmp);
    int rc = check_cross(by_name, n, err);
    free(by_name);
    if (rc != 0) {
        free(sorted);
        return rc;
    }
    qsort(sorted, n, sizeof(*sorted), draft_cmp);

    size_t bytes = 0, n_attr = 0, n_m = 0;
    for (size_t i = 0; i < n; i++) {
        const struct xray__rule_draft *d = sorted[i];
        bytes += strlen(d->name) + 1 + strlen(d->resource_arn) + 1;
        bytes += d->arn_generated
                     ? strlen(ARN_FMT) + strlen(region) + strlen(account) + strlen(d->name) + 1
                     : strlen(d->arn) + 1;
        for (int f = 0; f < XRAY__F_COUNT; f++)
            bytes += 2 * (strlen(d->pat[f]) + 1); /* as written, and lower-cased */
        for (size_t a = 0; a < 2 * d->n_attributes; a++)
            bytes += strlen(d->attributes[a]) + 1;
        n_attr += 2 * d->n_attributes;
    }
    struct xray_sampling_rules *rs = calloc(1, sizeof(*rs));
    size_t ptrs = (n_attr + 1) * sizeof(char *);
    char *arena = malloc(ptrs + bytes);
    struct xray_sampling_rule *rule = calloc(n ? n : 1, sizeof(*rule));
    struct xray__matcher *m = calloc(n ? n : 1, sizeof(*m));
    if (rs == NULL || arena == NULL || rule == NULL || m == NULL) {
        free(rs), free(arena), free(rule), free(m), free(sorted);
        return -ENOMEM;
    }
    /* Pointer arrays first (aligned), strings after. */
    const char **attr = (const char **)(void *)arena;
    struct arena a = {arena + ptrs, arena + ptrs + bytes};
    for (size_t i = 0; i < n; i++) {
        const struct xray__rule_draft *d = sorted[i];
        struct xray_sampling_rule *r = &rule[i];
        r->name = arena_str(&a, d->name);
        if (d->arn_generated) {
            int k = snprintf(a.p, (size_t)(a.end - a.p), ARN_FMT, region, account, d->name);
            r->arn = a.p;
            a.p += k + 1;
        } else {
            r->arn = arena_str(&a, d->arn);
        }
        r->resource_arn = arena_str(&a, d->resource_arn);
        const char **pats[XRAY__F_COUNT] = {&r->service_name, &r->service_type, &r->host,
                                            &r->http_method, &r->url_path};
        for (int f = 0; f < XRAY__F_COUNT; f++)
            *pats[f] = arena_str(&a, d->pat[f]);
        r->priority = d->priority;
        r->version = d->version;
        r->fixed_rate = d->fixed_rate;
        r->reservoir_size = d->reservoir_size;
        r->created_at = d->created_at;
        r->modified_at = d->modified_at;
        r->n_attributes = d->n_attributes;
        r->attributes = attr;
        for (size_t k = 0; k < 2 * d->n_attributes; k++)
            *attr++ = arena_str(&a, d->attributes[k]);
        r->drop = draft_drop(d);
        if (strcmp(r->name, XRAY__DEFAULT_NAME) == 0) {
            rs->default_rule = (uint32_t)i;
        } else if (r->drop == 0) {
            struct xray__matcher *mm = &m[n_m++];
            mm->rule = (uint32_t)i;
            for (int f = 0; f < XRAY__F_COUNT; f++) {
                size_t len = strlen(*pats[f]);
                char *low = a.p;
                a.p += len + 1;
                xray__match_compile(*pats[f], len, low, &mm->f[f]);
                if (mm->f[f].kind == XRAY__PAT_EXACT)
                    rs->exact_fields |= 1u << f;
            }
        }
    }
    free(sorted);
    atomic_init(&rs->refs, 1);
    rs->source = source;
    rs->n = n;
    rs->rule = rule;
    rs->m = m;
    rs->n_m = n_m;
    rs->arena = arena;
    if (xray__match_index_build(rs) != 0) {
        xray_sampling_rules_free(rs);
        return -ENOMEM;
    }
    *out = rs;
    return 0;
}

/* ---- the set ---- */

XRAY_SAMPLING_API struct xray_sampling_rules *
xray_sampling_rules_ref(struct xray_sampling_rules *rules)
{
    atomic_fetch_add_explicit(&rules->refs, 1, memory_order_relaxed);
    return rules;
}

XRAY_SAMPLING_API void xray_sampling_rules_free(struct xray_sampling_rules *rules)
{
    if (rules == NULL || atomic_fetch_sub_explicit(&rules->refs, 1, memory_order_acq_rel) != 1)
        return;
    xray__match_index_free(&rules->idx);
    free(rules->rule);
    free(rules->m);
    free(rules->arena);
    free(rules);
}

XRAY_SAMPLING_API size_t xray_sampling_rules_count(const struct xray_sampling_rules *rules)
{
    return rules->n;
}

XRAY_SAMPLING_API const struct xray_sampling_rule *
xray_sampling_rules_get(const struct xray_sampling_rules *rules, size_t i)
{
    return i < rules->n ? &rules->rule[i] : NULL;
}

XRAY_SAMPLING_API int xray_sampling_rules_find(const struct xray_sampling_rules *rules,
                                               const char *name)
{
    for (size_t i = 0; i < rules->n; i++)
        if (strcmp(rules->rule[i].name, name) == 0)
            return (int)i;
    return -1;
}

XRAY_SAMPLING_API enum xray_sampling_source
xray_sampling_rules_source(const struct xray_sampling_rules *rules)
{
    return rules->source;
}

XRAY_SAMPLING_API const char *xray_sampling_drop_reason(uint32_t drop)
{
    if (drop & XRAY_SAMPLING_DROP_VERSION)
        return "Version is not 1";
    if (drop & XRAY_SAMPLING_DROP_RESOURCE_ARN)
        return "ResourceARN is not \"*\"";
    if (drop & XRAY_SAMPLING_DROP_SERVICE_TYPE)
        return "ServiceType is empty";
    if (drop & XRAY_SAMPLING_DROP_ATTRIBUTES)
        return "Attributes is not empty";
    return "";
}

XRAY_SAMPLING_API bool xray_sampling_rules_equal(const struct xray_sampling_rules *a,
                                                 const struct xray_sampling_rules *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const struct xray_sampling_rule *x = &a->rule[i], *y = &b->rule[i];
        const char *sx[] = {x->name,         x->arn,  x->resource_arn, x->service_name,
                            x->service_type, x->host, x->http_method,  x->url_path};
        const char *sy[] = {y->name,         y->arn,  y->resource_arn, y->service_name,
                            y->service_type, y->host, y->http_method,  y->url_path};
        for (size_t k = 0; k < sizeof(sx) / sizeof(sx[0]); k++)
            if (strcmp(sx[k], sy[k]) != 0)
                return false;
        if (x->priority != y->priority || x->version != y->version ||
            x->fixed_rate != y->fixed_rate || x->reservoir_size != y->reservoir_size ||
            x->created_at != y->created_at || x->modified_at != y->modified_at ||
            x->n_attributes != y->n_attributes || x->drop != y->drop)
            return false;
        for (size_t k = 0; k < 2 * x->n_attributes; k++)
            if (strcmp(x->attributes[k], y->attributes[k]) != 0)
                return false;
    }
    return true;
}

XRAY_SAMPLING_API struct xray_sampling_rules *xray_sampling_rules_default(int64_t now_s)
{
    struct xray__rule_draft d = {
        .name = XRAY__DEFAULT_NAME,
        .resource_arn = "*",
        .pat = {"*", "*", "*", "*", "*"},
        .priority = XRAY_SAMPLING_DEFAULT_PRIORITY,
        .version = 1,
        .fixed_rate = XRAY_SAMPLING_DEFAULT_RATE,
        .reservoir_size = XRAY_SAMPLING_DEFAULT_RESERVOIR,
        .created_at = now_s,
        .modified_at = now_s,
        .arn_generated = true,
        .where = "Default",
    };
    struct xray_sampling_rules *rs = NULL;
    xray__rule_build(&d, 1, XRAY_SAMPLING_SOURCE_BUILTIN, NULL, &rs, NULL);
    return rs;
}
