/* SPDX-License-Identifier: Apache-2.0 */
/* What the files of libxray_sampling share and callers never see: the rule set's
 * layout, the compiled patterns, the rule builder the two parsers feed, and a small
 * JSON writer. Names are xray__<file>_<verb>. */
#ifndef XRAY_SAMPLING_INTERNAL_H
#define XRAY_SAMPLING_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "xray/sampling.h"

#define XRAY__DEFAULT_NAME "Default"

/* Where an error is reported: prints "<where>: <field>: <message>" into err. */
void xray__rule_error(char *err, const char *where, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- compiled patterns (match.c) ---- */

enum xray__pattern_kind {
    XRAY__PAT_ANY = 0, /* "*" or any run of stars: matches everything */
    XRAY__PAT_EXACT,   /* no wildcard: length, hash, then bytes */
    XRAY__PAT_PREFIX,  /* literal then one trailing '*' */
    XRAY__PAT_GLOB,    /* anything else */
};

enum xray__field {
    XRAY__F_SERVICE_NAME = 0,
    XRAY__F_SERVICE_TYPE,
    XRAY__F_HOST,
    XRAY__F_HTTP_METHOD,
    XRAY__F_URL_PATH,
    XRAY__F_COUNT
};

struct xray__pattern {
    const char *lit; /* lower-cased pattern (EXACT/GLOB) or its prefix (PREFIX) */
    uint32_t hash;   /* EXACT: xray__match_hash of lit */
    uint16_t len;    /* bytes of lit */
    uint8_t kind;    /* enum xray__pattern_kind */
};

/* One served rule other than Default, as the matcher walks it. */
struct xray__matcher {
    struct xray__pattern f[XRAY__F_COUNT];
    uint32_t rule; /* index in the set */
};

/* The exact-value index of one field: which matchers an exact value admits. */
struct xray__index_slot {
    const char *lit; /* NULL: empty slot */
    uint32_t hash;
    uint16_t len;
    uint32_t bits; /* offset of its bitset in xray__match_index.pool */
};
struct xray__match_index {
    uint32_t words; /* bitset words; 0: no index, match linearly */
    struct {
        struct xray__index_slot *slot; /* NULL: the field has no exact pattern */
        uint32_t mask;                 /* slots - 1 (a power of two) */
        uint32_t other;                /* offset of the bitset of non-exact matchers */
    } f[XRAY__F_COUNT];
    uint64_t *pool;
};
#define XRAY__INDEX_MIN   8 /* fewer served rules: a linear walk is as fast */
#define XRAY__INDEX_WORDS ((XRAY_SAMPLING_MAX_RULES + 63) / 64)

/* Lower-cases pat (n bytes) into out (n + 1 bytes) and classifies it. */
void xray__match_compile(const char *pat, size_t n, char *out, struct xray__pattern *p);
uint32_t xray__match_hash(const char *s, size_t n);
bool xray__match_glob(const char *pat, size_t m, const char *s, size_t n);
struct xray_sampling_rules;
/* Builds rules->idx from rules->m (0 or -ENOMEM); frees it. */
int xray__match_index_build(struct xray_sampling_rules *rules);
void xray__match_index_free(struct xray__match_index *idx);

/* ---- the rule set (rule.c) ---- */

struct xray_sampling_rules {
    atomic_uint refs;
    enum xray_sampling_source source;
    size_t n;
    struct xray_sampling_rule *rule; /* n, match order, Default last */
    struct xray__matcher *m;         /* served rules but Default, match order */
    size_t n_m;
    uint32_t default_rule; /* index of Default */
    uint32_t exact_fields; /* bit per field some EXACT pattern needs hashed */
    struct xray__match_index idx;
    char *arena; /* every string and attribute array */
};

/* A rule as a parser found it: strings borrowed from the parser's JSON (NUL-free,
 * valid UTF-8), lengths already checked by the parser with its own field names. */
struct xray__rule_draft {
    const char *name, *arn, *resource_arn;
    const char *pat[XRAY__F_COUNT];
    int32_t priority, version;
    double fixed_rate;
    int64_t reservoir_size, created_at, modified_at;
    size_t n_attributes;
    const char **attributes; /* 2 * n_attributes, borrowed */
    bool arn_generated;      /* build writes arn from region/account/name */
    const char *where;       /* "rule 3 (\"name\")": for cross-rule errors */
};

/* Checks the cross-rule constraints (unique names, exactly one Default, Default
 * served, priorities), sorts, copies every string into one arena and compiles the
 * patterns. 0, XRAY_ESAMP_RULE with err, or -ENOMEM. drafts are not modified. */
int xray__rule_build(const struct xray__rule_draft *drafts, size_t n,
                     enum xray_sampling_source source,
                     const struct xray_sampling_parse_options *opts,
                     struct xray_sampling_rules **out, char *err);

/* Field readers for the parsers: each fills err with "<where>: <key>: ..." and
 * returns XRAY_ESAMP_RULE when the value is missing (if required) or wrong. */
int xray__rule_get_string(json_t *obj, const char *key, bool required, size_t min_chars,
                          size_t max_chars, const char *where, const char **out, char *err);
int xray__rule_get_int(json_t *obj, const char *key, int64_t min, int64_t max, const char *where,
                       int64_t *out, char *err);
int xray__rule_get_rate(json_t *obj, const char *key, const char *where, double *out, char *err);
/* Code points of a valid UTF-8 string, and whether it holds a control character. */
size_t xray__rule_chars(const char *s, size_t n, bool *control);

/* jansson over (ptr, len), an object at the top, at most max bytes; fills err. */
json_t *xray__rule_load_json(const char *json, size_t len, size_t max, int *rc, char *err);

/* The local format (local_rules.c): root is an object with "version". */
int xray__local_rules_parse(json_t *root, const struct xray_sampling_parse_options *opts,
                            struct xray_sampling_rules **out, char *err);

/* ---- a small JSON writer (json.c) ---- */

struct xray__json {
    char *buf;
    size_t len, cap;
    bool oom;
};
void xray__json_raw(struct xray__json *w, const char *s);
void xray__json_str(struct xray__json *w, const char *s);
void xray__json_i64(struct xray__json *w, int64_t v);
void xray__json_u64(struct xray__json *w, uint64_t v);
/* The shortest text that reads back as the same double. */
void xray__json_double(struct xray__json *w, double v);
/* Hands the buffer to the caller: 0, or -ENOMEM (the buffer is freed). */
int xray__json_finish(struct xray__json *w, char **out, size_t *len);

#endif
