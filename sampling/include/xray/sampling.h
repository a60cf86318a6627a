/* SPDX-License-Identifier: Apache-2.0 */
/* libxray_sampling: the X-Ray sampling model (docs/sampling.md), pure and I/O-free.
 * Four parts: the rules (parsed from the GetSamplingRules shape or a local rules file,
 * validated, matched, serialised back), the decision state of one sampling client
 * (reservoir quota, borrowing, fixed rate, statistics, targets), the authority that
 * shares each rule's reservoir among the clients reporting to it, and the JSON bodies
 * of the SamplingTargets exchange. No sockets, threads, clock or RNG of its own: time
 * is a parameter (now_ms, epoch milliseconds) and randomness a caller's source.
 *
 * Errors are 0 or a negative code: one of XRAY_ESAMP_* below, or -ENOMEM / -EINVAL.
 * Functions taking `char *err` fill it (when not NULL) with a one-line reason naming
 * the rule and the field; it must hold XRAY_SAMPLING_ERR_LEN bytes. Output bodies
 * (`char **out`) are NUL-terminated, owned by the caller, released with free().
 * Strings are borrowed unless said otherwise. The library never aborts its host. */
#ifndef XRAY_SAMPLING_H
#define XRAY_SAMPLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define XRAY_SAMPLING_API __attribute__((visibility("default")))
#else
#define XRAY_SAMPLING_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ---------------------------------------------------------------------- */

#define XRAY_SAMPLING_ERR_LEN 256

/* XX(name, value, message); values apart from the daemon's XRAY_E* range (-20xxx). */
#define XRAY_SAMPLING_ERRNO_MAP(XX)                                                                \
    XX(ESAMP_JSON, -21001, "malformed JSON")                                                       \
    XX(ESAMP_RULE, -21002, "invalid sampling rule")                                                \
    XX(ESAMP_REQUEST, -21003, "invalid sampling request")                                          \
    XX(ESAMP_TOOBIG, -21004, "input exceeds a sampling limit")

enum xray_sampling_errno {
#define XX(name, value, msg) XRAY_##name = value,
    XRAY_SAMPLING_ERRNO_MAP(XX)
#undef XX
};

/* Text for an XRAY_ESAMP_* code, -ENOMEM, -EINVAL or 0. Never NULL. Any thread. */
XRAY_SAMPLING_API const char *xray_sampling_strerror(int err);

/* ---- limits ---------------------------------------------------------------------- */

/* AWS X-Ray API Reference, SamplingRule: RuleName 1-32 characters, Priority 1-9999,
 * FixedRate 0-1, ResourceARN <= 500, ServiceName/ServiceType/Host <= 64,
 * HTTPMethod <= 10, URLPath <= 128; attribute keys and values 1-32. Lengths count
 * characters (UTF-8 code points). */
#define XRAY_SAMPLING_NAME_MAX         32
#define XRAY_SAMPLING_NAME_BYTES       (XRAY_SAMPLING_NAME_MAX * 4) /* UTF-8, without NUL */
#define XRAY_SAMPLING_PRIORITY_MIN     1
#define XRAY_SAMPLING_PRIORITY_MAX     9999
#define XRAY_SAMPLING_DEFAULT_PRIORITY 10000 /* "Default" only */
#define XRAY_SAMPLING_RESOURCE_ARN_MAX 500
#define XRAY_SAMPLING_PATTERN_MAX      64  /* ServiceName, ServiceType, Host */
#define XRAY_SAMPLING_METHOD_MAX       10  /* HTTPMethod */
#define XRAY_SAMPLING_URL_PATH_MAX     128 /* URLPath */
#define XRAY_SAMPLING_ATTR_MAX         32  /* attribute key and value length */
#define XRAY_SAMPLING_RULE_ARN_MAX     1024
/* Ours: rules per set, attributes per rule, and the size of a rules file. */
#define XRAY_SAMPLING_MAX_RULES      1000
#define XRAY_SAMPLING_MAX_ATTRIBUTES 64
#define XRAY_SAMPLING_MAX_FILE_BYTES (4u << 20)
/* AWS X-Ray API Reference, GetSamplingTargets: at most 25 statistics documents. */
#define XRAY_SAMPLING_MAX_STATISTICS 25
/* Ours: the size of a SamplingTargets request or response body. */
#define XRAY_SAMPLING_MAX_BODY_BYTES (256u << 10)
/* spec/sampling.md: ClientID is exactly 24 hex digits. */
#define XRAY_SAMPLING_CLIENT_ID_LEN 24
/* spec/sampling.md: the default rule is 1 request/s then 5 %; reports every 10 s. */
#define XRAY_SAMPLING_DEFAULT_RESERVOIR 1
#define XRAY_SAMPLING_DEFAULT_RATE      0.05
#define XRAY_SAMPLING_DEFAULT_INTERVAL  10

/* ---- the rules ------------------------------------------------------------------- */

/* Why the SDKs would silently drop a rule (spec/sampling.md). Such a rule stays in
 * the set (so it serialises back and the caller can log it) but never matches and is
 * not served. A "Default" rule with any of these is refused instead. */
#define XRAY_SAMPLING_DROP_VERSION      0x01u /* Version is not 1 */
#define XRAY_SAMPLING_DROP_RESOURCE_ARN 0x02u /* ResourceARN is not "*" */
#define XRAY_SAMPLING_DROP_SERVICE_TYPE 0x04u /* ServiceType is empty */
#define XRAY_SAMPLING_DROP_ATTRIBUTES   0x08u /* Attributes is not empty */

/* One SamplingRule. Every string is NUL-terminated and owned by the rule set (valid
 * while the caller holds a reference on it); patterns are as written. */
struct xray_sampling_rule {
    const char *name;         /* RuleName; "Default" is the catch-all */
    const char *arn;          /* RuleARN, generated for local rules; "" if absent */
    const char *resource_arn; /* ResourceARN */
    const char *service_name, *service_type, *host, *http_method, *url_path;
    int32_t priority;              /* 1-9999; 10000 for Default */
    int32_t version;               /* Version (SDKs use only 1) */
    double fixed_rate;             /* 0.0-1.0 */
    int64_t reservoir_size;        /* requests per second, shared by all clients of the rule */
    int64_t created_at;            /* CreatedAt, epoch s */
    int64_t modified_at;           /* ModifiedAt, epoch s */
    size_t n_attributes;           /* Attributes: n key/value pairs */
    const char *const *attributes; /* attributes[2*i] key, attributes[2*i+1] value */
    uint32_t drop;                 /* XRAY_SAMPLING_DROP_* bits; 0: served and matched */
};

enum xray_sampling_source {
    XRAY_SAMPLING_SOURCE_BUILTIN = 0, /* xray_sampling_rules_default() */
    XRAY_SAMPLING_SOURCE_CENTRALIZED, /* {"SamplingRuleRecords":[...]} */
    XRAY_SAMPLING_SOURCE_LOCAL_V1,    /* local file, "version": 1 (service_name) */
    XRAY_SAMPLING_SOURCE_LOCAL_V2,    /* local file, "version": 2 (host) */
};

struct xray_sampling_parse_options {
    int64_t now_s;          /* CreatedAt/ModifiedAt of rules that have none (local files) */
    const char *region;     /* RuleARN of rules without one: NULL means "local" */
    const char *account_id; /* ... and NULL means "000000000000" */
};

/* An immutable, reference-counted rule set, kept in match order: priority, then
 * RuleName (byte order), "Default" last. Reading it (get, match, serialise) is safe
 * from any number of threads; ref and free are atomic. */
struct xray_sampling_rules;

/* Parses a rules file or a GetSamplingRules response body: the centralized shape
 * {"SamplingRuleRecords":[{"SamplingRule":{...},"CreatedAt":..,"ModifiedAt":..}]}
 * (timestamps as epoch numbers or ISO 8601 strings, as `aws xray get-sampling-rules`
 * prints them), or the local format version 1 or 2, mapped to centralized rules by
 * the table of spec/sampling.md. Every constraint is checked; on any error nothing is
 * returned (*out stays NULL), err names the rule and the field, and the code is
 * XRAY_ESAMP_JSON, XRAY_ESAMP_RULE, XRAY_ESAMP_TOOBIG (over XRAY_SAMPLING_MAX_FILE_BYTES
 * or XRAY_SAMPLING_MAX_RULES) or -ENOMEM. A set always has exactly one served
 * "Default". opts may be NULL (now_s 0). On success *out is owned (one reference). */
XRAY_SAMPLING_API int xray_sampling_rules_parse(const char *json, size_t len,
                                                const struct xray_sampling_parse_options *opts,
                                                struct xray_sampling_rules **out, char *err);

/* The built-in set: only "Default", 1 request/s then 5 %. Owned; NULL when out of
 * memory. */
XRAY_SAMPLING_API struct xray_sampling_rules *xray_sampling_rules_default(int64_t now_s);

/* Takes one more reference; returns rules. Any thread. */
XRAY_SAMPLING_API struct xray_sampling_rules *
xray_sampling_rules_ref(struct xray_sampling_rules *rules);
/* Drops one reference; the last one frees the set. NULL is ignored. Any thread. */
XRAY_SAMPLING_API void xray_sampling_rules_free(struct xray_sampling_rules *rules);

XRAY_SAMPLING_API size_t xray_sampling_rules_count(const struct xray_sampling_rules *rules);
/* Rule i in match order (i < count), or NULL. */
XRAY_SAMPLING_API const struct xray_sampling_rule *
xray_sampling_rules_get(const struct xray_sampling_rules *rules, size_t i);
/* The index of the rule named name (exact), or -1. */
XRAY_SAMPLING_API int xray_sampling_rules_find(const struct xray_sampling_rules *rules,
                                               const char *name);
XRAY_SAMPLING_API enum xray_sampling_source
xray_sampling_rules_source(const struct xray_sampling_rules *rules);
/* Same rules, field by field (timestamps included). */
XRAY_SAMPLING_API bool xray_sampling_rules_equal(const struct xray_sampling_rules *a,
                                                 const struct xray_sampling_rules *b);
/* Text for the lowest XRAY_SAMPLING_DROP_* bit set in drop, e.g. "Version is not 1";
 * "" for 0. */
XRAY_SAMPLING_API const char *xray_sampling_drop_reason(uint32_t drop);

/* XRAY_SAMPLING_SERIALIZE_ALL: include the rules the SDKs would drop, with their real
 * Attributes (for a dump that parses back to the same set). Without it the body is
 * what GetSamplingRules serves: only served rules, each with "Attributes":{}. */
#define XRAY_SAMPLING_SERIALIZE_ALL 0x1u
/* The GetSamplingRules response body {"SamplingRuleRecords":[...]} in match order,
 * timestamps as epoch numbers, no NextToken. *out owned (free()). 0 or -ENOMEM. */
XRAY_SAMPLING_API int xray_sampling_rules_serialize(const struct xray_sampling_rules *rules,
                                                    unsigned flags, char **out, size_t *len);

/* A request's attributes. p == NULL means the attribute is missing, which every
 * pattern matches; bytes need not be NUL-terminated. */
struct xray_sampling_str {
    const char *p;
    size_t len;
};
struct xray_sampling_request {
    struct xray_sampling_str service_name, service_type, host, http_method, url_path;
};
static inline struct xray_sampling_str xray_sampling_str_c(const char *s)
{
    struct xray_sampling_str r = {s, s != NULL ? strlen(s) : 0};
    return r;
}

/* The index of the first served rule that matches req: patterns are globs ('*' any
 * run, '?' one character), ASCII case-insensitive, compiled at parse; "Default"
 * matches everything and comes last, so the result is always a valid index. No
 * allocation; any thread. */
XRAY_SAMPLING_API size_t xray_sampling_rules_match(const struct xray_sampling_rules *rules,
                                                   const struct xray_sampling_request *req);

/* ---- randomness ------------------------------------------------------------------ */

/* The caller's random source: next() returns 64 uniformly random bits. The library
 * calls it only when a decision reaches the fixed rate, or to make a ClientID. */
struct xray_sampling_random {
    uint64_t (*next)(void *ctx);
    void *ctx;
};

/* Writes a ClientID: 24 lower-case hex digits and a NUL. */
XRAY_SAMPLING_API void xray_sampling_client_id(char out[XRAY_SAMPLING_CLIENT_ID_LEN + 1],
                                               const struct xray_sampling_random *rng);

/* ---- statistics and targets (the SamplingTargets exchange) ----------------------- */

/* A SamplingStatisticsDocument. */
struct xray_sampling_statistics {
    char rule_name[XRAY_SAMPLING_NAME_BYTES + 1];
    char client_id[XRAY_SAMPLING_CLIENT_ID_LEN + 1];
    int64_t timestamp; /* epoch s */
    uint64_t request_count, sampled_count, borrow_count;
};

/* A SamplingTargetDocument; `have` says which fields were present (absent fields keep
 * the client's current values when applied). */
#define XRAY_SAMPLING_TARGET_RATE      0x1u
#define XRAY_SAMPLING_TARGET_QUOTA     0x2u
#define XRAY_SAMPLING_TARGET_QUOTA_TTL 0x4u
#define XRAY_SAMPLING_TARGET_INTERVAL  0x8u
struct xray_sampling_target {
    char rule_name[XRAY_SAMPLING_NAME_BYTES + 1];
    uint32_t have;           /* XRAY_SAMPLING_TARGET_* */
    double fixed_rate;       /* FixedRate */
    int64_t reservoir_quota; /* ReservoirQuota, requests per second; 0 is a real 0 */
    int64_t quota_ttl_s;     /* ReservoirQuotaTTL, epoch s */
    int32_t interval_s;      /* Interval: report every this many seconds */
};

/* An UnprocessedStatistics entry. */
struct xray_sampling_unprocessed {
    char rule_name[XRAY_SAMPLING_NAME_BYTES + 1];
    char error_code[16];
    char message[64];
};

/* Parses a SamplingTargets request body {"SamplingStatisticsDocuments":[...]}: at
 * most XRAY_SAMPLING_MAX_STATISTICS documents (max is the capacity of docs, at most
 * that many are read), each with RuleName (1-32 characters), ClientID (exactly 24
 * hex digits), Timestamp (number), RequestCount, SampledCount, BorrowCount
 * (non-negative integers). 0 and *n set, or XRAY_ESAMP_JSON / XRAY_ESAMP_REQUEST /
 * XRAY_ESAMP_TOOBIG with err (the text of a 400 InvalidRequestException). */
XRAY_SAMPLING_API int xray_sampling_statistics_parse(const char *json, size_t len,
                                                     struct xray_sampling_statistics *docs,
                                                     size_t max, size_t *n, char *err);
/* The request body for n (<= 25) documents. *out owned. 0, -EINVAL or -ENOMEM. */
XRAY_SAMPLING_API int
xray_sampling_statistics_serialize(const struct xray_sampling_statistics *docs, size_t n,
                                   char **out, size_t *len);

/* Parses a SamplingTargets response body (for an SDK): up to max target documents
 * (more are ignored; a document without a valid RuleName is skipped) and
 * LastRuleModification (epoch s, 0 when absent). 0 and *n set, or XRAY_ESAMP_JSON /
 * XRAY_ESAMP_REQUEST / XRAY_ESAMP_TOOBIG with err. */
XRAY_SAMPLING_API int xray_sampling_targets_parse(const char *json, size_t len,
                                                  struct xray_sampling_target *targets, size_t max,
                                                  size_t *n, int64_t *last_rule_modification,
                                                  char *err);
/* The response body {"SamplingTargetDocuments":[...],"LastRuleModification":<n>,
 * "UnprocessedStatistics":[...]}; only the fields in each target's `have` are
 * written. *out owned. 0 or -ENOMEM. */
XRAY_SAMPLING_API int
xray_sampling_targets_serialize(const struct xray_sampling_target *targets, size_t n,
                                const struct xray_sampling_unprocessed *unproc, size_t n_unproc,
                                int64_t last_rule_modification, char **out, size_t *len);

/* ---- the decision: one sampling client ------------------------------------------- */

/* The mutable side of a rule set: per rule, the quota and its TTL, the rate, the
 * borrow second and the counters. This is what an X-Ray SDK keeps.
 *
 * Thread safety: xray_sampling_decide, _state_report, _state_apply and
 * _state_rule_status may all be called at the same time from any number of threads
 * on one state: every per-rule field is a C11 atomic (lock-free on x86-64 and
 * aarch64), the per-second quota count and its second share one 64-bit word updated
 * by compare-and-swap, so a quota is honoured exactly even under contention. A
 * target applied while decisions run may be seen half-applied by a decision in that
 * instant (new quota, old TTL), never torn within a field. create and destroy must
 * not race with any other call on that state. To change rules while deciding,
 * create a new state carrying the old one's values, publish its pointer, and destroy
 * the old one once no thread can still use it (e.g. at the next swap). */
struct xray_sampling_state;

/* XRAY_SAMPLING_STATE_LOCAL: the state is its own authority (a local rules file in
 * an SDK, or the daemon's own per-trace decision): each rule's quota is its
 * ReservoirSize for ever, there is no borrowing and targets are not applied. */
#define XRAY_SAMPLING_STATE_LOCAL 0x1u

/* A state for rules (takes a reference on them), reporting as client_id (24 hex, may
 * be NULL: reports then carry ""), whose rules were fetched at now_ms (compared with
 * LastRuleModification). carry_from (may be NULL, may be in use by other threads) gives
 * its quota, TTL, interval, borrow second and unreported counters to the rules of the
 * same name. Returns NULL when out of memory. */
XRAY_SAMPLING_API struct xray_sampling_state *
xray_sampling_state_create(struct xray_sampling_rules *rules, const char *client_id, unsigned flags,
                           const struct xray_sampling_state *carry_from, uint64_t now_ms);
/* Frees the state and drops its reference on the rules. NULL is ignored. */
XRAY_SAMPLING_API void xray_sampling_state_destroy(struct xray_sampling_state *state);
/* The rules the state decides with (borrowed). */
XRAY_SAMPLING_API struct xray_sampling_rules *
xray_sampling_state_rules(const struct xray_sampling_state *state);

enum xray_sampling_how {
    XRAY_SAMPLING_NOT_SAMPLED = 0,
    XRAY_SAMPLING_BY_QUOTA,  /* within this second's reservoir quota */
    XRAY_SAMPLING_BY_BORROW, /* no live quota: borrowed this second's one */
    XRAY_SAMPLING_BY_RATE,   /* FixedRate draw */
};
struct xray_sampling_decision {
    bool sampled;
    uint8_t how;           /* enum xray_sampling_how */
    uint32_t rule;         /* index of the matched rule in the state's rules */
    const char *rule_name; /* owned by the rules */
};

/* The SDK algorithm for one request matched against the state's rules:
 * RequestCount++; with a quota that is set and not expired (now < TTL), sample while
 * fewer than quota were taken in this epoch second (SampledCount++), else the rate;
 * with no live quota and ReservoirSize > 0, borrow at most one per second
 * (BorrowCount++, sampled); else sample with probability FixedRate (SampledCount++
 * when sampled). rng is called only for the rate. No allocation, no lock; any
 * thread. out may be NULL. Returns out->sampled. */
XRAY_SAMPLING_API bool xray_sampling_decide(struct xray_sampling_state *state,
                                            const struct xray_sampling_request *req,
                                            uint64_t now_ms, const struct xray_sampling_random *rng,
                                            struct xray_sampling_decision *out);

/* The same for a rule already chosen (by index, < count): no matching. */
XRAY_SAMPLING_API bool xray_sampling_decide_rule(struct xray_sampling_state *state, size_t rule,
                                                 uint64_t now_ms,
                                                 const struct xray_sampling_random *rng,
                                                 struct xray_sampling_decision *out);

/* Statistics to report now: one document per served rule that saw requests since
 * its last report and whose report interval has elapsed, at most max (and at most
 * XRAY_SAMPLING_MAX_STATISTICS); their counters are reset. Call again for more (a
 * reported rule is not a candidate until its interval elapses again). Returns the
 * number written; 0 means no call is needed. Any thread. */
XRAY_SAMPLING_API size_t xray_sampling_state_report(struct xray_sampling_state *state,
                                                    uint64_t now_ms,
                                                    struct xray_sampling_statistics *out,
                                                    size_t max);

/* Applies target documents: new rate, new quota, new TTL, new interval, each only
 * when present; documents for unknown rules are ignored. Returns 1 when
 * last_rule_modification (epoch s) is newer than the rules' fetch time: fetch the
 * rules now; else 0. Ignored (returns 0) on an XRAY_SAMPLING_STATE_LOCAL state. Any
 * thread. */
XRAY_SAMPLING_API int xray_sampling_state_apply(struct xray_sampling_state *state,
                                                const struct xray_sampling_target *targets,
                                                size_t n, int64_t last_rule_modification,
                                                uint64_t now_ms);

/* What one rule of the state holds now (for tests, /metrics and debugging). */
struct xray_sampling_rule_status {
    double fixed_rate;   /* the rate in force (the rule's, or the last target's) */
    int64_t quota;       /* -1 when no quota was ever set */
    int64_t quota_ttl_s; /* epoch s; 0 when none */
    bool quota_live;     /* set and not expired at now_ms */
    int32_t interval_s;  /* report interval */
    uint64_t request_count, sampled_count, borrow_count; /* not yet reported */
};
/* 0, or -EINVAL when rule >= count. Any thread. */
XRAY_SAMPLING_API int xray_sampling_state_rule_status(const struct xray_sampling_state *state,
                                                      size_t rule, uint64_t now_ms,
                                                      struct xray_sampling_rule_status *out);

/* ---- the authority: the daemon serving SDKs -------------------------------------- */

/* How it works: each rule's ReservoirSize is shared among the ClientIDs that reported
 * on it in the last window_s seconds, in proportion to their request rate
 * (RequestCount over the time since their previous report; a newcomer weighs as the
 * average of the others, i.e. gets an equal share), rounded by largest remainder.
 * A reporting client is granted min(its share, what is free), where free is
 * ReservoirSize minus every other client's outstanding grant (the largest of its
 * unexpired grants, counted until one second past its TTL), so the sum of unexpired
 * granted quotas never exceeds ReservoirSize, even while shares move: a client whose
 * share shrinks releases the difference only when its older grant expires. Grants
 * live quota_ttl_s; targets ask for a report every interval_s. A client silent for
 * window_s loses its weight; its grant has expired by then and its capacity is free.
 * Lowering a rule's ReservoirSize by a reload keeps grants already made until they
 * expire (at most quota_ttl_s). */
struct xray_sampling_authority_config {
    uint32_t max_clients_per_rule; /* 0: 256; a client beyond it gets quota 0 */
    uint32_t quota_ttl_s;          /* 0: 15 */
    uint32_t interval_s;           /* 0: 10 */
    uint32_t window_s;             /* 0: 30 */
};

struct xray_sampling_authority_counters {
    uint64_t requests;        /* SamplingTargets requests answered */
    uint64_t bad_requests;    /* refused (400) */
    uint64_t documents;       /* statistics documents applied */
    uint64_t unknown_rules;   /* documents answered with an UnprocessedStatistics entry */
    uint64_t clients_refused; /* a new client found its rule's table full: quota 0 */
    uint64_t clients_expired; /* clients forgotten after the window */
    uint64_t clients;         /* client entries held now, all rules */
};

/* Per-rule totals since the rule was loaded (GetSamplingStatisticSummaries). */
struct xray_sampling_summary {
    char rule_name[XRAY_SAMPLING_NAME_BYTES + 1];
    int64_t timestamp; /* epoch s the totals started */
    uint64_t request_count, sampled_count, borrow_count;
};

/* The authority is not thread-safe: one owner thread (the loop serving the routes).
 * Its now_ms must never go backwards (grants are aged by it). */
struct xray_sampling_authority;

/* cfg may be NULL (defaults). The authority starts with the built-in rules. NULL
 * when out of memory. */
XRAY_SAMPLING_API struct xray_sampling_authority *
xray_sampling_authority_create(const struct xray_sampling_authority_config *cfg, uint64_t now_ms);
XRAY_SAMPLING_API void xray_sampling_authority_destroy(struct xray_sampling_authority *auth);

/* Serves rules from now on (takes a reference). Clients and outstanding grants of
 * rules of the same name are kept; other rules' are dropped. LastRuleModification
 * becomes now. 0 or -ENOMEM (then the old rules stay). */
XRAY_SAMPLING_API int xray_sampling_authority_set_rules(struct xray_sampling_authority *auth,
                                                        struct xray_sampling_rules *rules,
                                                        uint64_t now_ms);
/* The rules served (borrowed, valid until the next set_rules). */
XRAY_SAMPLING_API struct xray_sampling_rules *
xray_sampling_authority_rules(const struct xray_sampling_authority *auth);
/* LastRuleModification, epoch s. */
XRAY_SAMPLING_API int64_t
xray_sampling_authority_last_modification(const struct xray_sampling_authority *auth);

/* Takes n statistics documents and writes one target per served rule reported
 * (targets needs room for n) and one unprocessed entry per document naming a rule
 * not served (unproc needs room for n). 0, or -EINVAL when n > 25. */
XRAY_SAMPLING_API int xray_sampling_authority_report(
    struct xray_sampling_authority *auth, const struct xray_sampling_statistics *docs, size_t n,
    uint64_t now_ms, struct xray_sampling_target *targets, size_t *n_targets,
    struct xray_sampling_unprocessed *unproc, size_t *n_unproc);
/* The whole SamplingTargets route: parses body, reports, writes the response body.
 * 0 with *out owned; XRAY_ESAMP_JSON / _REQUEST / _TOOBIG with err (answer 400
 * InvalidRequestException with err as message); -ENOMEM. */
XRAY_SAMPLING_API int xray_sampling_authority_targets(struct xray_sampling_authority *auth,
                                                      const char *body, size_t len, uint64_t now_ms,
                                                      char **out, size_t *out_len, char *err);

/* The sum of rule's outstanding (unexpired) grants at now_ms, or -1 for an unknown
 * rule. Never more than its ReservoirSize (for tests and /metrics). */
XRAY_SAMPLING_API int64_t xray_sampling_authority_outstanding(
    const struct xray_sampling_authority *auth, const char *rule, uint64_t now_ms);
/* Up to max per-rule totals, in match order; returns the number written. */
XRAY_SAMPLING_API size_t xray_sampling_authority_summaries(
    const struct xray_sampling_authority *auth, struct xray_sampling_summary *out, size_t max);
/* The GetSamplingStatisticSummaries body {"SamplingStatisticSummaries":[...]}. *out
 * owned. 0 or -ENOMEM. */
XRAY_SAMPLING_API int
xray_sampling_authority_summaries_body(const struct xray_sampling_authority *auth, char **out,
                                       size_t *len);
XRAY_SAMPLING_API void
xray_sampling_authority_counters(const struct xray_sampling_authority *auth,
                                 struct xray_sampling_authority_counters *out);

#ifdef __cplusplus
}
#endif

#endif
