/* SPDX-License-Identifier: Apache-2.0 */
/* libxray: the X-Ray SDK for C services. A recorder (configured from code and from the
 * standard AWS_XRAY_* environment variables) begins segments for requests and
 * subsegments for the work inside them, and sends each finished document to the
 * daemon as one UDP datagram. Sampling, the trace header, ids, streaming of large
 * segments and fork safety are handled here; libcurl instrumentation lives apart in
 * <xray/xray_curl.h> so that programs without curl need not include it.
 *
 * Conventions, for every function below:
 * - Errors are 0 or a negative code: one of XRAY_SDK_E* below, or -EINVAL, -ENOMEM,
 *   -ENOSPC. Constructors return NULL. The library never aborts or exits its host,
 *   never blocks on the network, and never raises a signal.
 * - Every function taking a `struct xray_segment *` accepts NULL and then does nothing
 *   (returns 0 or NULL): a disabled recorder, an out-of-memory begin or a missing
 *   context all yield NULL, and instrumented code runs on unchanged.
 * - Strings are borrowed for the duration of the call (the library copies what it
 *   keeps) and are NUL-terminated unless a length is given. Invalid UTF-8 and control
 *   characters are accepted and escaped (invalid bytes become U+FFFD) when sent.
 * - Times are microseconds since the Unix epoch (uint64_t), 0 meaning "now".
 * - Thread safety: a recorder may be used from any number of threads. The setters of a
 *   segment and of its subsegments may be called from any thread (one lock per
 *   trace tree); a pointer stays valid until its own xray_segment_end() returns, and
 *   must not be used after that. */
#ifndef XRAY_XRAY_H
#define XRAY_XRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define XRAY_API __attribute__((visibility("default")))
#else
#define XRAY_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct xray_segment; /* a segment or a subsegment; see below */

/* ---- errors ---------------------------------------------------------------------- */

#define XRAY_SDK_ERR_LEN 256 /* size of the optional `char *err` buffers */

/* XX(name, value, message); values apart from the daemon's (-20xxx) and the sampling
 * library's (-21xxx). */
#define XRAY_SDK_ERRNO_MAP(XX)                                                                     \
    XX(SDK_ECONFIG, -22001, "invalid configuration")                                               \
    XX(SDK_EHEADER, -22002, "malformed trace header")                                              \
    XX(SDK_EJSON, -22003, "invalid JSON value")                                                    \
    XX(SDK_EKEY, -22004, "invalid annotation key")                                                 \
    XX(SDK_ELIMIT, -22005, "per-segment limit reached")                                            \
    XX(SDK_EKIND, -22006, "not valid for this kind of segment")                                    \
    XX(SDK_ETOOBIG, -22007, "document over the 64 KB limit")                                       \
    XX(SDK_ENOCONTEXT, -22008, "no current segment")                                               \
    XX(SDK_EUNAVAILABLE, -22009, "not available")                                                  \
    XX(SDK_ESEND, -22010, "datagram not sent")

enum xray_sdk_errno {
#define XX(name, value, msg) XRAY_##name = value,
    XRAY_SDK_ERRNO_MAP(XX)
#undef XX
};

/* Text for an XRAY_SDK_E* code, a sampling library code, -errno or 0. Never NULL. Any
 * thread. */
XRAY_API const char *xray_sdk_strerror(int err);

/* ---- limits ---------------------------------------------------------------------- */

/* wire.md: trace id "1-" + 8 hex (epoch seconds) + "-" + 24 hex; ids 16 hex. */
#define XRAY_TRACE_ID_LEN   35
#define XRAY_SEGMENT_ID_LEN 16
/* wire.md: a document is at most 64 KB for X-Ray (a datagram carries the header line
 * too, and UDP allows 65,507 bytes). */
#define XRAY_DOCUMENT_MAX (64 * 1024)
/* wire.md: the segment name is at most 200 characters (longer names are cut). */
#define XRAY_NAME_MAX 200
/* wire.md: annotations keys are [A-Za-z0-9_]; X-Ray indexes 50 per trace. The key and
 * string-value lengths and the per-(sub)segment count are ours. */
#define XRAY_ANNOTATION_KEY_MAX   500
#define XRAY_ANNOTATION_VALUE_MAX 1000
#define XRAY_ANNOTATIONS_MAX      50
/* Ours: metadata entries per (sub)segment, one value's JSON text, its nesting. */
#define XRAY_METADATA_MAX       64
#define XRAY_METADATA_VALUE_MAX (16 * 1024)
#define XRAY_METADATA_DEPTH_MAX 16
/* Ours: exceptions per (sub)segment and frames kept per stack. */
#define XRAY_EXCEPTIONS_MAX 8
#define XRAY_STACK_MAX      32
/* Ours: subsegments a trace tree may hold at once (not yet sent); past it,
 * xray_subsegment_begin() returns NULL and the drop is counted. */
#define XRAY_SUBSEGMENTS_MAX 10000
/* wire.md: the daemon refuses documents nested over 64 deep. Each subsegment level
 * costs two, metadata values up to XRAY_METADATA_DEPTH_MAX plus three: subsegments
 * nest at most 20 deep (deeper begins return NULL, counted). */
#define XRAY_SUBSEGMENT_DEPTH_MAX 20
/* Ours: bytes one (sub)segment may keep for its strings and values. */
#define XRAY_SEGMENT_BYTES_MAX (256 * 1024)
/* wire.md: Lineage and unknown keys of the trace header are passed on, up to 256
 * bytes; a formatted header fits in XRAY_HEADER_BUF bytes with its NUL. */
#define XRAY_HEADER_EXTRA_MAX 256
#define XRAY_HEADER_BUF       (5 + 35 + 8 + 16 + 9 + 1 + XRAY_HEADER_EXTRA_MAX + 1)

/* ---- configuration and the recorder --------------------------------------------- */

enum xray_log_level {
    XRAY_LOG_DEBUG = 0,
    XRAY_LOG_INFO,
    XRAY_LOG_WARN,
    XRAY_LOG_ERROR,
    XRAY_LOG_SILENT,
};

/* What a call that needs the thread's current segment does when there is none
 * (AWS_XRAY_CONTEXT_MISSING). In every mode the call returns NULL or
 * XRAY_SDK_ENOCONTEXT and the event is counted; C has no exception to throw. */
enum xray_context_missing {
    XRAY_CONTEXT_LOG_ERROR = 0, /* default: log at ERROR (rate-limited) */
    XRAY_CONTEXT_RUNTIME_ERROR, /* log, then call config.on_context_missing if set */
    XRAY_CONTEXT_IGNORE_ERROR,  /* silent */
};

/* How requests are sampled. An explicit Sampled=1|0 in the incoming header always
 * wins over the sampler. */
enum xray_sampler_mode {
    XRAY_SAMPLER_CENTRALIZED = 0, /* default: the daemon's rules and targets over its TCP
                                     address, polled on a background thread (300 s + 5 s
                                     jitter, targets 10 s + 0.1 s); the local rules
                                     (file, else 1/s + 5 %) before the first fetch, after
                                     the 1 h expiry and while the daemon is away */
    XRAY_SAMPLER_LOCAL,           /* the local rules only (file, else 1/s + 5 %); no polling */
    XRAY_SAMPLER_ALL,             /* sample every request */
    XRAY_SAMPLER_NONE,            /* sample none (headers still propagate) */
};

/* Metadata sources for the segment's `origin` and `aws` block; looked up once, off the
 * request path. */
#define XRAY_PLUGIN_EC2 0x1u /* IMDSv2: instance id, AZ, type, AMI */
#define XRAY_PLUGIN_ECS 0x2u /* container metadata endpoint v4 */
#define XRAY_PLUGIN_ELASTIC_BEANSTALK                                                              \
    0x4u /* /var/elasticbeanstalk/xray/environment.conf, or $XRAY_ELASTIC_BEANSTALK_CONF */

/* Log sink: one line without newline. Called from any thread of the library,
 * including the background poller; must not call back into the library. */
typedef void (*xray_log_fn)(void *ctx, enum xray_log_level level, const char *line);
/* Called under XRAY_CONTEXT_RUNTIME_ERROR with the name of the call that found no
 * context. Any thread. */
typedef void (*xray_context_missing_fn)(void *ctx, const char *what);
/* A clock in microseconds since the Unix epoch (tests use a fake one). */
typedef uint64_t (*xray_clock_fn)(void *ctx);

/* Do not read the AWS_XRAY_* environment (tests, embedders that configure by code). */
#define XRAY_CONFIG_IGNORE_ENV 0x1u

/* Recorder configuration. Fill with xray_config_init() then set what you need; every
 * pointer is borrowed by xray_recorder_create() (copied). Environment variables, when
 * set and valid, override the field they name (as in the other X-Ray SDKs); an
 * invalid one makes xray_recorder_create() fail with a message naming it.
 *
 * field              | environment                     | default
 * -------------------|---------------------------------|-----------------------------
 * service_name       | AWS_XRAY_TRACING_NAME           | "" = program name (argv[0] base)
 * daemon_address     | AWS_XRAY_DAEMON_ADDRESS         | "127.0.0.1:2000" (UDP and TCP);
 *                    |   "host:port" or "tcp:h:p udp:h:p" in either order; IPv6 as [a::b]:p
 * context_missing    | AWS_XRAY_CONTEXT_MISSING        | LOG_ERROR
 *                    |   RUNTIME_ERROR | LOG_ERROR | IGNORE_ERROR
 * enabled            | AWS_XRAY_SDK_ENABLED            | true; "false"/"0" disables (every
 *                    |   begin returns NULL, nothing is sent); "true"/"1" enables
 * log_level          | AWS_XRAY_LOG_LEVEL              | WARN; debug|info|warn|error|silent
 *                    | AWS_XRAY_DEBUG_MODE             | "true"/"1" means DEBUG
 * sampler            | -                               | CENTRALIZED
 * sampling_rules_file| -                               | NULL (the default rule 1/s + 5 %)
 * stream_threshold   | -                               | 100 subsegments
 * plugins            | -                               | 0 (none)
 */
struct xray_config {
    const char *service_name;    /* segment name when a begin names none; <= 200 chars */
    const char *service_version; /* "service": {"version": ...}; NULL: none */
    const char *origin;          /* e.g. "AWS::EC2::Instance"; NULL: from plugins */
    const char *daemon_address;  /* NULL: default */
    enum xray_context_missing context_missing;
    bool enabled;
    enum xray_log_level log_level;
    enum xray_sampler_mode sampler;
    const char *sampling_rules_file; /* local rules (spec/sampling.md format); NULL: none */
    uint32_t stream_threshold;       /* 0: 100 */
    unsigned plugins;                /* XRAY_PLUGIN_* */
    unsigned flags;                  /* XRAY_CONFIG_* */
    xray_log_fn log_fn;              /* NULL: stderr, "time [Level] [xray] msg" */
    void *log_ctx;
    xray_context_missing_fn on_context_missing; /* NULL: none */
    void *context_missing_ctx;
    xray_clock_fn clock; /* NULL: CLOCK_REALTIME */
    void *clock_ctx;
};

/* Fills cfg with the defaults of the table above. Any thread. */
XRAY_API void xray_config_init(struct xray_config *cfg);

struct xray_recorder;

/* Creates a recorder from cfg (NULL: defaults) and the environment: opens one
 * non-blocking UDP socket, starts the sampler (its poller thread starts lazily, on the
 * first decision) and the plugin lookups. Returns NULL on an invalid configuration
 * (err, if not NULL, names the field or variable) or when out of memory. A disabled
 * recorder (enabled false) is still returned: its begins return NULL. The last
 * recorder created sets the process's log sink and context-missing policy used by
 * the context calls. Any thread. */
XRAY_API struct xray_recorder *xray_recorder_create(const struct xray_config *cfg, char *err);

/* Stops the poller and the plugin lookups (joins them: up to 2 s for a sampling call
 * in flight, 1 s per metadata call), closes the socket and frees the recorder. Every
 * segment begun from it must have ended (their documents were already sent). NULL is
 * ignored. Not concurrently with other calls on rec. */
XRAY_API void xray_recorder_destroy(struct xray_recorder *rec);

/* Whether the recorder traces at all (AWS_XRAY_SDK_ENABLED). */
XRAY_API bool xray_recorder_enabled(const struct xray_recorder *rec);

/* The service name segments get by default (borrowed, valid while rec lives). */
XRAY_API const char *xray_recorder_service_name(const struct xray_recorder *rec);

/* The recorder's clock, microseconds since the epoch. Any thread. */
XRAY_API uint64_t xray_recorder_now_us(const struct xray_recorder *rec);

/* What the recorder did since it was created; each counter is read atomically. */
struct xray_recorder_counters {
    uint64_t segments_begun;       /* sampled and not */
    uint64_t segments_sampled;     /* of those, sampled */
    uint64_t documents_sent;       /* datagrams handed to the kernel */
    uint64_t subsegments_streamed; /* sent on their own (threshold or 64 KB) */
    uint64_t in_progress_sent;     /* xray_segment_flush_in_progress() documents */
    uint64_t send_dropped;         /* sendto failed (no daemon, buffer full): dropped */
    uint64_t too_big_dropped;      /* a single (sub)segment over 64 KB: dropped */
    uint64_t limit_dropped;        /* annotations, metadata, subsegments over a limit */
    uint64_t oom_dropped;          /* allocations that failed */
    uint64_t context_missing;      /* context calls with no current segment */
};
XRAY_API void xray_recorder_counters(const struct xray_recorder *rec,
                                     struct xray_recorder_counters *out);

/* ---- ids ------------------------------------------------------------------------- */

/* A new trace id "1-5759e988-bd862e3fe1be46a994272793" for epoch second epoch_s (0:
 * now), NUL-terminated. The 96 random bits come from a per-thread ChaCha20 stream
 * keyed from getrandom(2), rekeyed every 1 MiB of output and in a child after fork().
 * No lock, no allocation; any thread. */
XRAY_API void xray_id_trace(char out[XRAY_TRACE_ID_LEN + 1], uint32_t epoch_s);
/* A new non-zero 64-bit segment id as 16 lower-case hex digits and a NUL. Any thread. */
XRAY_API void xray_id_segment(char out[XRAY_SEGMENT_ID_LEN + 1]);
/* 64 random bits from the same generator. Any thread. */
XRAY_API uint64_t xray_id_random64(void);

/* ---- the trace header X-Amzn-Trace-Id ------------------------------------------- */

#define XRAY_TRACE_HEADER_NAME "X-Amzn-Trace-Id"

enum xray_sampled {
    XRAY_SAMPLED_UNKNOWN = 0, /* no Sampled key: decide here, say nothing back */
    XRAY_SAMPLED_NO,          /* Sampled=0 */
    XRAY_SAMPLED_YES,         /* Sampled=1 */
    XRAY_SAMPLED_REQUESTED,   /* Sampled=? : decide here and answer in the response */
};

/* A parsed header. root and parent are "" when absent. extra holds Lineage and every
 * unknown key as "K=V;K=V" in their original order (Self is dropped), whole pairs
 * only, at most XRAY_HEADER_EXTRA_MAX bytes: pairs that would pass it are left out. */
struct xray_trace_header {
    char root[XRAY_TRACE_ID_LEN + 1];
    char parent[XRAY_SEGMENT_ID_LEN + 1];
    enum xray_sampled sampled;
    size_t extra_len;
    char extra[XRAY_HEADER_EXTRA_MAX + 1];
};

/* Parses a header value (len bytes, need not be NUL-terminated): ';'-separated
 * Key=Value pairs, blanks around keys and values trimmed, empty pairs skipped.
 * Malformed - a pair without '=' or with an empty key, a Root that is not a trace id,
 * a Parent that is not 16 hex digits, a Sampled other than 1, 0 or ?, Root, Parent or
 * Sampled given twice, a Parent without a Root - returns XRAY_SDK_EHEADER and leaves
 * *out as an empty header, which callers treat as absent. Otherwise 0. Pure; any
 * thread. */
XRAY_API int xray_header_parse(const char *value, size_t len, struct xray_trace_header *out);

/* Writes h as "Root=..;Parent=..;Sampled=..;<extra>" (absent parts left out) into buf
 * with a NUL. Returns the length, or -ENOSPC when cap is too small (XRAY_HEADER_BUF
 * always suffices). Pure; any thread. */
XRAY_API int xray_header_format(const struct xray_trace_header *h, char *buf, size_t cap);

/* The header for a call made from seg (a segment or subsegment): Root=<its trace>;
 * Parent=<its id>;Sampled=<0|1> followed by the incoming Lineage and unknown keys.
 * Returns the length, -ENOSPC, or XRAY_SDK_ENOCONTEXT when seg is NULL. Any thread. */
XRAY_API int xray_header_for_segment(const struct xray_segment *seg, char *buf, size_t cap);

/* The response header for the request seg serves: "Root=<trace>", plus ";Sampled=0|1"
 * when the request asked with Sampled=?. Returns the length, -ENOSPC or
 * XRAY_SDK_ENOCONTEXT. Any thread. */
XRAY_API int xray_header_response(const struct xray_segment *seg, char *buf, size_t cap);

/* ---- segments and subsegments ---------------------------------------------------- */

/* A segment (the work of one service for one request) or a subsegment (a piece of
 * it, nested at any depth). Opaque. */
struct xray_segment;

struct xray_segment_options {
    const char *name;                       /* NULL: the recorder's service name */
    const struct xray_trace_header *header; /* incoming header, NULL: a new trace */
    enum xray_sampled sampled; /* YES/NO forces; UNKNOWN/REQUESTED: header's, else sampler */
    /* Request attributes the sampling rules match on; NULL means missing (matches). */
    const char *host, *http_method, *url_path;
    uint64_t start_us; /* 0: now */
};

/* Begins a segment. With a header, continues its trace (Root, Parent, Lineage);
 * without one (or with a header without Root) starts a trace. The sampling decision
 * is made once here: opts->sampled if YES/NO, else the header's Sampled=1|0, else the
 * recorder's sampler; the matched rule name is recorded in aws.xray. An unsampled
 * segment is still returned (its ids propagate in headers) but records nothing and is
 * never sent. Does not change the thread's current segment. Returns NULL when the
 * recorder is disabled or NULL, or out of memory (counted). Any thread. */
XRAY_API struct xray_segment *xray_segment_begin(struct xray_recorder *rec,
                                                 const struct xray_segment_options *opts);

/* Begins a subsegment of parent (a segment or subsegment of an open tree). NULL when
 * parent is NULL, on XRAY_SUBSEGMENTS_MAX (counted), or out of memory. Any thread. */
XRAY_API struct xray_segment *xray_subsegment_begin(struct xray_segment *parent, const char *name);

/* Ends seg at end_us (0: now). A subsegment ends at once; when its tree holds more
 * than stream_threshold unsent subsegments, the closed ones are sent as documents of
 * their own. A segment is sent when it has ended and all its subsegments have: the
 * one datagram of whichever end comes last (subsegments that would not fit in 64 KB
 * are streamed first). seg must not be used after this call. Any thread. */
XRAY_API void xray_segment_end(struct xray_segment *seg);
XRAY_API void xray_segment_end_at(struct xray_segment *seg, uint64_t end_us);

/* Sends seg now as an in-progress document ("in_progress": true, no end_time) so a
 * long request shows up before it ends; the complete document replaces it later.
 * Returns 0, XRAY_SDK_ESEND (counted) or XRAY_SDK_ETOOBIG. Any thread. */
XRAY_API int xray_segment_flush_in_progress(struct xray_segment *seg);

/* Accessors. Strings are borrowed, valid while seg is. */
XRAY_API const char *xray_segment_trace_id(const struct xray_segment *seg);
XRAY_API const char *xray_segment_id(const struct xray_segment *seg);
XRAY_API bool xray_segment_is_sampled(const struct xray_segment *seg);
XRAY_API bool xray_segment_is_subsegment(const struct xray_segment *seg);

/* ---- what a (sub)segment records -------------------------------------------------
 * Each returns 0, or: -EINVAL (NULL argument where a value is needed, NaN or
 * infinite number), XRAY_SDK_EKEY, XRAY_SDK_EJSON, XRAY_SDK_ELIMIT (counted),
 * XRAY_SDK_EKIND (field not valid for this kind), -ENOMEM (counted). On an unsampled
 * (sub)segment every setter returns 0 and records nothing. Any thread. */

/* Annotations (indexed, flat): key of 1-500 characters of [A-Za-z0-9_]; string values
 * up to XRAY_ANNOTATION_VALUE_MAX bytes (cut at a UTF-8 boundary); at most
 * XRAY_ANNOTATIONS_MAX per (sub)segment. Setting a key again replaces its value. */
XRAY_API int xray_segment_annotate_string(struct xray_segment *seg, const char *key,
                                          const char *value);
XRAY_API int xray_segment_annotate_int(struct xray_segment *seg, const char *key, int64_t value);
XRAY_API int xray_segment_annotate_double(struct xray_segment *seg, const char *key, double value);
XRAY_API int xray_segment_annotate_bool(struct xray_segment *seg, const char *key, bool value);

/* Metadata (not indexed): namespace NULL means "default"; namespaces starting with
 * "AWS." are reserved (-EINVAL). Any JSON value, given as text that a small checker
 * validates (RFC 8259 grammar, valid UTF-8, depth <= XRAY_METADATA_DEPTH_MAX, size <=
 * XRAY_METADATA_VALUE_MAX) and then copies as is; typed helpers for the common
 * scalars. Setting (namespace, key) again replaces the value. */
XRAY_API int xray_segment_metadata_json(struct xray_segment *seg, const char *ns, const char *key,
                                        const char *json, size_t len);
XRAY_API int xray_segment_metadata_string(struct xray_segment *seg, const char *ns, const char *key,
                                          const char *value);
XRAY_API int xray_segment_metadata_int(struct xray_segment *seg, const char *ns, const char *key,
                                       int64_t value);
XRAY_API int xray_segment_metadata_double(struct xray_segment *seg, const char *ns, const char *key,
                                          double value);
XRAY_API int xray_segment_metadata_bool(struct xray_segment *seg, const char *ns, const char *key,
                                        bool value);

/* The user of the request (segments only). */
XRAY_API int xray_segment_set_user(struct xray_segment *seg, const char *user);

/* http.request. Any field may be NULL (left out). On a segment this is the incoming
 * request; on a subsegment the outgoing call (then set the remote namespace). */
struct xray_http_request {
    const char *method, *url, *user_agent, *client_ip;
    bool x_forwarded_for; /* client_ip came from X-Forwarded-For */
    bool traced;          /* the callee is instrumented (a trace header was sent) */
};
XRAY_API int xray_segment_set_http_request(struct xray_segment *seg,
                                           const struct xray_http_request *req);
/* http.response {status, content_length (omitted when < 0)}; status 400-499 sets
 * error, 429 also throttle, 500-599 fault (wire.md, status classification). */
XRAY_API int xray_segment_set_http_response(struct xray_segment *seg, int status,
                                            int64_t content_length);

/* The aws block: any field may be NULL; retries < 0 is left out. */
struct xray_aws_info {
    const char *operation, *region, *request_id, *account_id, *table_name, *queue_url;
    int retries;
};
XRAY_API int xray_segment_set_aws(struct xray_segment *seg, const struct xray_aws_info *aws);

/* The sql block; any field may be NULL. Never put credentials in url. */
struct xray_sql_info {
    const char *url, *connection_string, *sanitized_query, *database_type, *database_version,
        *driver_version, *user, *preparation; /* "statement" or "call" */
};
XRAY_API int xray_segment_set_sql(struct xray_segment *seg, const struct xray_sql_info *sql);

/* namespace of a subsegment: "remote" (a downstream call) or "aws" (an AWS SDK call);
 * only these make service-map nodes. XRAY_SDK_EKIND on a segment. */
enum xray_namespace { XRAY_NAMESPACE_NONE = 0, XRAY_NAMESPACE_REMOTE, XRAY_NAMESPACE_AWS };
XRAY_API int xray_segment_set_namespace(struct xray_segment *seg, enum xray_namespace ns);

/* The error/throttle/fault flags, OR-ed into those already set. */
#define XRAY_FLAG_ERROR    0x1u /* client error (4xx) */
#define XRAY_FLAG_THROTTLE 0x2u /* throttled (429) */
#define XRAY_FLAG_FAULT    0x4u /* server error (5xx or an exception) */
XRAY_API int xray_segment_set_flags(struct xray_segment *seg, unsigned flags);

/* Records an exception in `cause.exceptions` (with the working directory) and sets
 * fault, or error with XRAY_EXCEPTION_ERROR. With XRAY_EXCEPTION_STACK, the caller's
 * stack is captured by backtrace(3) (up to XRAY_STACK_MAX frames; symbols resolved
 * when sent). XRAY_EXCEPTION_REMOTE marks an error returned by a downstream service.
 * type and message may be NULL. At most XRAY_EXCEPTIONS_MAX. */
#define XRAY_EXCEPTION_STACK  0x1u
#define XRAY_EXCEPTION_REMOTE 0x2u
#define XRAY_EXCEPTION_ERROR  0x4u
XRAY_API int xray_segment_add_exception(struct xray_segment *seg, const char *type,
                                        const char *message, unsigned flags);

/* ---- the thread's current segment, and explicit context ------------------------
 * Each thread has one current (sub)segment pointer, NULL at start. Thread-per-request
 * code uses the xray_context_begin_* / xray_context_end calls; event-loop code
 * (libuv, epoll: one thread, many requests) keeps the segment in its request state,
 * passes it explicitly (xray_subsegment_begin(parent, ..)), and swaps it in around a
 * callback that relies on the current one (xray_context_swap). The pointer is
 * borrowed: ending a segment clears it only through xray_context_end. */

/* The thread's current (sub)segment, or NULL. */
XRAY_API struct xray_segment *xray_context_current(void);
/* Makes seg (may be NULL) current for this thread; returns the previous one. */
XRAY_API struct xray_segment *xray_context_swap(struct xray_segment *seg);
/* xray_segment_begin() that also makes the segment current. */
XRAY_API struct xray_segment *xray_context_begin_segment(struct xray_recorder *rec,
                                                         const struct xray_segment_options *opts);
/* A subsegment of the current (sub)segment, made current. With no current one: the
 * context-missing policy, then NULL. */
XRAY_API struct xray_segment *xray_context_begin_subsegment(const char *name);
/* Ends the current (sub)segment; its parent becomes current (NULL after a segment).
 * Returns 0 or XRAY_SDK_ENOCONTEXT (policy applied). */
XRAY_API int xray_context_end(void);

/* ---- server side: one incoming HTTP request ------------------------------------- */

/* What a server knows of an incoming request; any field may be NULL. */
struct xray_server_request {
    const char *trace_header; /* the X-Amzn-Trace-Id value */
    size_t trace_header_len;  /* its length; 0 with a non-NULL value: strlen */
    const char *method;       /* "GET" */
    const char *url;          /* full URL, or the request target ("/path?q") */
    const char *host;         /* Host header */
    const char *user_agent;
    const char *client_ip;       /* the peer address */
    const char *x_forwarded_for; /* the header; its first address becomes client_ip */
};

/* Parses the trace header (malformed: as absent), decides sampling (an explicit
 * Sampled=1|0 wins, else the rules on name, host, method and URL path), begins the
 * segment named name (NULL: the recorder's), records http.request, and makes it the
 * thread's current segment when make_current. NULL as xray_segment_begin(). Any
 * thread. */
XRAY_API struct xray_segment *xray_server_begin(struct xray_recorder *rec, const char *name,
                                                const struct xray_server_request *req,
                                                bool make_current);
/* The X-Amzn-Trace-Id value to send back (xray_header_response()). */
XRAY_API int xray_server_response_header(const struct xray_segment *seg, char *buf, size_t cap);
/* Records http.response (status and content_length, < 0 unknown) and ends the
 * segment; clears the thread's current segment if it is seg. */
XRAY_API void xray_server_end(struct xray_segment *seg, int status, int64_t content_length);

#ifdef __cplusplus
}
#endif

#endif
