/* SPDX-License-Identifier: Apache-2.0 */
/* What the files of libxray share and callers never see: the recorder's and the
 * segment tree's layout, the per-node arena, the JSON writer, the emitter, logging,
 * and the hooks other files fill in (the sampler of sampler.c, the plugin data of
 * plugins.c). Names are xray__<file>_<verb>. */
#ifndef XRAY_SDK_INTERNAL_H
#define XRAY_SDK_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "xray/sampling.h"
#include "xray/xray.h"

#ifndef XRAYD_VERSION
#define XRAYD_VERSION "0.0.0"
#endif
#define XRAY__SDK_NAME "X-Ray for C"
/* The datagram header line (wire.md). */
#define XRAY__UDP_HEADER               "{\"format\":\"json\",\"version\":1}\n"
#define XRAY__UDP_HEADER_LEN           (sizeof(XRAY__UDP_HEADER) - 1)
#define XRAY__DEFAULT_STREAM_THRESHOLD 100 /* Node and Java SDKs */
#define XRAY__DEFAULT_DAEMON           "127.0.0.1:2000"

/* ---- logging (recorder.c) ---------------------------------------------------------
 * The process-wide sink and level set by the last xray_recorder_create(). Leaf code
 * (header, ids, serialize) never logs. */
void xray__log(enum xray_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool xray__log_enabled(enum xray_log_level level);

/* A log that repeats at most once per interval, counting what it suppressed. */
struct xray__ratelimit {
    _Atomic uint64_t next_ms;
    _Atomic uint64_t suppressed;
};
void xray__log_every(struct xray__ratelimit *rl, uint64_t interval_ms, enum xray_log_level level,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- ids (ids.c) ------------------------------------------------------------------ */

/* Fills buf with n random bytes from this thread's generator. Any thread. */
void xray__ids_fill(void *buf, size_t n);
/* Incremented in the child of every fork() (pthread_atfork, registered on first use
 * of the generator or of this call). A part holding per-process state - the sampler's
 * ClientID and poller thread - compares it with the value it saw and, when it
 * changed, starts over lazily in the child. */
uint64_t xray__ids_fork_generation(void);
/* 16 hex digits of v, lower case, no NUL. */
void xray__ids_hex64(char out[16], uint64_t v);

/* ---- the sampler hook (sampler.c fills it; recorder.c calls it) ------------------ */

/* A sampler installed on a recorder. decide() runs on the request path of any
 * thread: no blocking, no allocation per call; writes the matched rule's name ("" if
 * none) into rule_name (XRAY_SAMPLING_NAME_BYTES + 1 bytes) and returns the decision.
 * It must notice fork() itself (xray__ids_fork_generation) and take a new ClientID and
 * restart its poller lazily in the child. destroy() stops and joins any thread and
 * frees ctx; called once from xray_recorder_destroy(). */
struct xray__sampler_ops {
    bool (*decide)(void *ctx, const struct xray_sampling_request *req, uint64_t now_ms,
                   char *rule_name);
    void (*destroy)(void *ctx);
};

/* sampler.c: builds the sampler for cfg->sampler CENTRALIZED or LOCAL (the recorder
 * handles ALL and NONE itself), reading cfg->sampling_rules_file and using rec's TCP
 * address (rec->tcp_host, rec->tcp_port) and clock (xray__recorder_now_us). Called from
 * xray_recorder_create() once the recorder's fields are set. Returns 0 with *ops and
 * *ctx set; XRAY_SDK_EUNAVAILABLE to leave the recorder's default (sample every
 * request); any other error fails the recorder's creation (err filled, e.g. a rules
 * file that does not parse). */
int xray__sampler_create(struct xray_recorder *rec, const struct xray_config *cfg,
                         const struct xray__sampler_ops **ops, void **ctx, char *err);

/* ---- plugin data (plugins.c fills it; serialize.c reads it) ---------------------- */

/* What the plugins found. origin: e.g. "AWS::EC2::Instance" ("" none). aws_members:
 * owned (free()), comma-separated JSON members spliced into each segment's `aws`
 * object, e.g. "\"ec2\":{\"instance_id\":\"i-0ab\",\"availability_zone\":\"us-east-1a\"}"
 * (NULL: none); must be valid JSON members of at most 4 KiB. */
struct xray__plugin_data {
    char origin[64];
    char *aws_members;
};

/* plugins.c: starts the lookups for `plugins` (XRAY_PLUGIN_*), possibly on a thread of
 * its own, and publishes the result with xray__recorder_set_plugin_data(). *ctx is
 * what xray__plugins_stop() gets back. 0 or XRAY_SDK_EUNAVAILABLE (then nothing is
 * added); never fails the recorder. */
int xray__plugins_start(struct xray_recorder *rec, unsigned plugins, void **ctx);
/* Stops and joins what xray__plugins_start() began; ctx may be NULL. */
void xray__plugins_stop(void *ctx);

/* recorder.c: publishes data (takes ownership of the struct, malloc'ed, and its
 * aws_members). Segments begun afterwards carry it; a config's origin wins. Once per
 * recorder: a second call returns -EBUSY and frees data. Any thread. */
int xray__recorder_set_plugin_data(struct xray_recorder *rec, struct xray__plugin_data *data);

/* ---- the recorder (recorder.c) ---------------------------------------------------- */

struct xray__counters {
    _Atomic uint64_t segments_begun, segments_sampled, documents_sent, subsegments_streamed,
        in_progress_sent, send_dropped, too_big_dropped, limit_dropped, oom_dropped,
        context_missing;
};
#define XRAY__COUNT(rec, field)                                                                    \
    atomic_fetch_add_explicit(&(rec)->counters.field, 1, memory_order_relaxed)

struct xray_recorder {
    bool enabled;
    enum xray_sampler_mode sampler_mode;
    uint32_t stream_threshold;
    char service_name[XRAY_NAME_MAX * 4 + 1];
    char *service_name_json;    /* quoted, escaped */
    char *service_version_json; /* quoted, or NULL */
    char *origin_json;          /* from the config, quoted, or NULL */
    char *cwd_json;             /* cause.working_directory, quoted, or NULL */
    char service_type[64];      /* the origin the sampling rules match, "" none */
    /* The daemon: UDP for documents, TCP for the sampling calls. */
    char udp_host[256], tcp_host[256];
    uint16_t udp_port, tcp_port;
    int fd;
    struct sockaddr_storage udp_addr;
    socklen_t udp_addrlen;
    /* Sends one datagram; send() by default, replaced by benchmarks and tests. */
    int (*send)(struct xray_recorder *rec, const void *buf, size_t len);
    xray_clock_fn clock;
    void *clock_ctx;
    const struct xray__sampler_ops *sampler;
    void *sampler_ctx;
    void *plugins_ctx;
    _Atomic(struct xray__plugin_data *) plugin;
    struct xray__counters counters;
    struct xray__ratelimit rl_send, rl_limit;
};

/* Clock of rec (NULL: the real one). */
uint64_t xray__recorder_now_us(const struct xray_recorder *rec);
/* Parses AWS_XRAY_DAEMON_ADDRESS syntax into rec's udp_/tcp_ fields. 0 or
 * XRAY_SDK_ECONFIG with err. */
int xray__recorder_parse_address(struct xray_recorder *rec, const char *s, char *err);
/* The sampling decision for a new segment: the installed sampler, else the mode. */
bool xray__recorder_decide(struct xray_recorder *rec, const struct xray_sampling_request *req,
                           uint64_t now_us, char *rule_name);
/* Context-missing policy of the process (context.c calls it). */
void xray__recorder_context_missing(const char *what);

/* ---- the segment tree (segment.c: lifetime; record.c: setters; arena.c) -------------------------
 */

/* A bump allocator per node; its first block lives in the node's own allocation, so a
 * small node costs one malloc. Bounded by XRAY_SEGMENT_BYTES_MAX. */
struct xray__arena_chunk {
    struct xray__arena_chunk *next;
    size_t cap, used;
    char data[];
};
struct xray__arena {
    char *p;          /* current block */
    size_t cap, used; /* of the current block */
    size_t total;     /* bytes handed out, for the bound */
    struct xray__arena_chunk *chunks;
};
#define XRAY__ARENA_INLINE 512
void *xray__arena_alloc(struct xray__arena *a, size_t n);
void xray__arena_free(struct xray__arena *a);

/* A JSON fragment (a quoted string, a number, any value) kept in an arena. */
struct xray__frag {
    const char *p;
    size_t len;
};

/* An annotation or metadata entry: key (quoted JSON), value (JSON text), ns (quoted,
 * metadata only). */
struct xray__kv {
    struct xray__kv *next;
    struct xray__frag ns, key, value;
};

struct xray__exception {
    struct xray__exception *next;
    char id[XRAY_SEGMENT_ID_LEN + 1];
    struct xray__frag type, message;
    bool remote;
    int n_frames;
    void *frames[XRAY_STACK_MAX];
};

enum xray__http_field {
    XRAY__HTTP_METHOD,
    XRAY__HTTP_URL,
    XRAY__HTTP_UA,
    XRAY__HTTP_IP,
    XRAY__HTTP_N
};
enum xray__aws_field {
    XRAY__AWS_OPERATION,
    XRAY__AWS_REGION,
    XRAY__AWS_REQUEST_ID,
    XRAY__AWS_ACCOUNT_ID,
    XRAY__AWS_TABLE_NAME,
    XRAY__AWS_QUEUE_URL,
    XRAY__AWS_N
};
#define XRAY__SQL_N 8

struct xray__trace;

/* A node: the segment (embedded in its trace) or a subsegment (its own allocation,
 * with XRAY__ARENA_INLINE bytes of arena after it). Every field is guarded by the
 * trace's lock. */
struct xray_segment {
    struct xray__trace *trace;
    struct xray_segment *parent, *first_child, *last_child, *next, *prev;
    char id[XRAY_SEGMENT_ID_LEN + 1];
    bool is_sub, ended;
    uint8_t ns;    /* enum xray_namespace */
    uint8_t flags; /* XRAY_FLAG_* */
    uint32_t open; /* open nodes in this subtree, itself included */
    uint64_t start_us, end_us;
    struct xray__frag name;
    struct xray__kv *annotations, *metadata;
    uint16_t n_annotations, n_metadata, n_exceptions;
    struct xray__frag user;
    struct xray__frag http[XRAY__HTTP_N];
    bool http_xff, http_traced, has_request;
    int http_status; /* 0: no response */
    int64_t http_length;
    struct xray__frag aws[XRAY__AWS_N];
    int aws_retries; /* < 0: none */
    struct xray__frag sql[XRAY__SQL_N];
    struct xray__exception *exceptions, *exceptions_tail;
    struct xray__arena arena;
};

/* The tree of one segment; the segment node is `root`. */
struct xray__trace {
    pthread_mutex_t lock;
    struct xray_recorder *rec;
    uint32_t refs; /* 1 while the segment is open + 1 per open subsegment */
    uint32_t held; /* subsegments in the tree (not yet sent or freed) */
    bool sampled;
    bool requested; /* the incoming header said Sampled=? */
    char trace_id[XRAY_TRACE_ID_LEN + 1];
    char parent_id[XRAY_SEGMENT_ID_LEN + 1]; /* the caller's, "" none */
    char rule_name[XRAY_SAMPLING_NAME_BYTES + 1];
    size_t extra_len;
    char extra[XRAY_HEADER_EXTRA_MAX + 1];
    struct xray__plugin_data *plugin; /* borrowed from the recorder, may be NULL */
    struct xray_segment root;
};

/* segment.c: ends seg; *next_current (may be NULL) gets seg's parent when that parent
 * is a still-open node, else NULL. */
void xray__segment_end(struct xray_segment *seg, uint64_t end_us,
                       struct xray_segment **next_current);
/* Frees a subsegment node (not the root) and its arena; unlinks nothing. */
void xray__segment_free_node(struct xray_segment *node);

/* ---- JSON (serialize.c: writer and escaping; jsoncheck.c; document.c: nodes)
 * ----------------------------------------------------------- */

/* A bounded writer: stops at cap and says so; never allocates. */
struct xray__writer {
    char *p;
    size_t len, cap;
    bool overflow;
};
void xray__serialize_raw(struct xray__writer *w, const char *s, size_t n);
/* Literals only: "" s refuses anything else at compile time. */
#define xray__serialize_lit(w, s) xray__serialize_raw((w), "" s, sizeof(s) - 1)
/* Writes s (n bytes) as a quoted JSON string: control characters escaped, invalid
 * UTF-8 replaced by U+FFFD. */
void xray__serialize_string(struct xray__writer *w, const char *s, size_t n);
/* Microseconds as epoch seconds with six decimals. */
void xray__serialize_time(struct xray__writer *w, uint64_t us);
void xray__serialize_i64(struct xray__writer *w, int64_t v);
/* The escaped, quoted form of s (n bytes, cut to at most max input bytes at a UTF-8
 * boundary) in the arena; len of the result set. NULL when out of memory. */
const char *xray__serialize_quote(struct xray__arena *a, const char *s, size_t n, size_t max,
                                  size_t *len);
/* The same into malloc'ed memory (recorder-lifetime strings). */
char *xray__serialize_quote_dup(const char *s);
/* A finite double as JSON into out (>= 32 bytes); returns its length, 0 if not finite. */
size_t xray__serialize_double(char out[32], double v);
/* Checks that json (len bytes) is one JSON value (RFC 8259), valid UTF-8, nested at
 * most max_depth deep, with only blanks around it. 0 or XRAY_SDK_EJSON. */
int xray__jsoncheck_value(const char *json, size_t len, int max_depth);

/* Serializes node (and its subtree unless alone) as a document: a standalone
 * subsegment gets "type", "trace_id" and "parent_id"; in_progress writes
 * "in_progress": true instead of end_time. Caller holds the trace lock. */
void xray__document_write(struct xray__writer *w, const struct xray_segment *node, bool standalone,
                          bool alone, bool in_progress);

/* ---- the emitter (emitter.c) ------------------------------------------------------- */

/* This thread's datagram buffer: the header line then room for one document. NULL
 * when out of memory. Lives until the thread exits. */
char *xray__emitter_buffer(void);
/* Serializes and sends node as described for xray__document_write(), streaming its
 * children first when it would pass 64 KB (then sent alone). Returns 0,
 * XRAY_SDK_ESEND or XRAY_SDK_ETOOBIG (counted). Caller holds the trace lock. */
int xray__emitter_send_tree(struct xray_recorder *rec, struct xray_segment *node, bool standalone,
                            bool in_progress);
/* The default rec->send: one non-blocking send() on the connected socket. 0 or
 * -errno. */
int xray__emitter_write(struct xray_recorder *rec, const void *buf, size_t len);
/* Opens rec->fd connected to rec->udp_addr: non-blocking, close-on-exec. 0 or
 * -errno. */
int xray__emitter_open(struct xray_recorder *rec);

/* ---- context (context.c) ---------------------------------------------------------- */

/* Clears the thread's current pointer if it is seg (xray_server_end). */
void xray__context_forget(struct xray_segment *seg);

#endif
