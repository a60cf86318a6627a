/* SPDX-License-Identifier: Apache-2.0 */
/* pipeline_process(): the worker's stage order. Scan the document in one pass and
 * record on it what the loop needs to route it (valid or why not, its ids and times);
 * then trace assembly, which hands complete traces to the service graph (so the graph
 * sees every received document, before sampling); then the sampling decision — at
 * once (head), or when the trace completes (tail: the document is kept here until
 * then); then the embedded store, for kept documents. Each stage reads the same
 * segment_view; only documents held for a tail decision are scanned again. */
#include "pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "error.h"
#include "graph/graph.h"
#include "graph/graph_edges.h"
#include "log.h"
#include "metrics/families.h"
#include "segment/scan.h"
#include "trace/assembler.h"
#include "trace/store.h"
#include "worker.h"

#define PIPELINE_EXPIRE_MS  10000 /* how often the graph drops minutes past retention */
#define PIPELINE_SYNC_MS    1000  /* how often the store's files are synced */
#define PIPELINE_METRICS_MS 5000  /* how often idle metric series are dropped */

#define PIPELINE_ATTR_MAX 512  /* a decoded name, origin or method; longer ones are cut */
#define PIPELINE_URL_MAX  2048 /* a decoded URL; the path of a longer one is cut */

struct pipeline {
    struct stats *stats;
    struct decision *decision;   /* NULL: no sampling stage */
    struct assembler *assembler; /* NULL: no assembly, no graph */
    struct graph *graph;
    struct families *metrics; /* with the graph */
    uint64_t metrics_now_ms;  /* the clock the graph's observations are stamped with */
    uint64_t last_metrics_ms;
    struct store *store;   /* borrowed; NULL: no embedded store */
    struct worker *worker; /* where held documents are handed back */
    bool tail;             /* a tail option is on: undecided traces are held */
    bool tail_errors;
    double tail_latency_s; /* 0: off */
    uint64_t window_ms;
    uint64_t last_expire_ms, last_sync_ms;
    struct pipeline_meter meters[PIPELINE_PARTS];
    uint64_t epoch0_ms; /* wall clock when sampling was enabled ... */
    uint64_t hr0_ns;    /* ... and uv_hrtime() then: now = epoch0 + elapsed */
    char name[PIPELINE_ATTR_MAX], origin[PIPELINE_ATTR_MAX], method[PIPELINE_ATTR_MAX];
    char url[PIPELINE_URL_MAX];
    struct segment_view view; /* reused for every document: ~22 KB, no per-doc allocation */
    /* For held documents scanned again: a trace may complete (eviction) while view
     * is still in use for the document that caused it. */
    struct segment_view held_view;
};

struct pipeline *pipeline_create(struct stats *stats)
{
    struct pipeline *p = calloc(1, sizeof(*p));
    if (p != NULL)
        p->stats = stats;
    return p;
}

void pipeline_destroy(struct pipeline *p)
{
    if (p == NULL)
        return;
    assembler_destroy(p->assembler);
    graph_destroy(p->graph);
    families_destroy(p->metrics);
    decision_destroy(p->decision);
    free(p);
}

static void pipeline_closed(void *ctx, struct assembled_trace *t);
static void pipeline_released(void *ctx, const char *trace_id, struct doc *docs);
static const struct graph_observer pipeline_observer;

int pipeline_enable_assembly(struct pipeline *p, const struct pipeline_assembly_options *o)
{
    p->window_ms = o->window_ms;
    struct graph_options go = {
        .max_bytes = o->graph_bytes,
        .retention_min = o->graph_retention_min,
        .window_ms = o->window_ms,
    };
    struct assembler_options ao = {
        .window_ms = o->window_ms,
        .max_bytes = o->assembly_bytes,
        .hold_bytes = o->tail_bytes,
        .closed = pipeline_closed,
        .ctx = p,
    };
    if ((p->graph = graph_create(&go)) == NULL || (p->assembler = assembler_create(&ao)) == NULL ||
        (p->metrics = families_create(&o->metrics)) == NULL)
        return -ENOMEM;
    struct graph_observer obs = pipeline_observer;
    obs.ctx = p;
    graph_set_observer(p->graph, &obs);
    assembler_on_release(p->assembler, pipeline_released, p);
    p->meters[PIPELINE_ASSEMBLY].limit = o->assembly_bytes;
    p->meters[PIPELINE_GRAPH].limit = o->graph_bytes;
    p->meters[PIPELINE_TAIL].limit = o->tail_bytes;
    p->tail_errors = o->tail_errors;
    p->tail_latency_s = o->tail_latency_ms / 1000.0;
    p->tail = o->tail_errors || o->tail_latency_ms > 0;
    return 0;
}

void pipeline_set_store(struct pipeline *p, struct store *st)
{
    struct store_stats ss;
    store_get_stats(st, &ss);
    p->store = st;
    p->meters[PIPELINE_STORE].limit = ss.max_bytes;
    atomic_store(&p->meters[PIPELINE_STORE].used, ss.bytes_used);
}

const struct pipeline_meter *pipeline_meter(const struct pipeline *p, enum pipeline_part part)
{
    return &p->meters[part];
}

/* Worker thread: what the loop may read of the parts' budgets. */
static void pipeline_publish(struct pipeline *p)
{
    struct pipeline_meter *m = p->meters;
    if (p->assembler != NULL) {
        struct assembler_stats as;
        assembler_get_stats(p->assembler, &as);
        atomic_store(&m[PIPELINE_ASSEMBLY].used, as.bytes_used);
        atomic_store(&m[PIPELINE_ASSEMBLY].refused, as.completed[ASSEMBLER_EVICTED] + as.dropped);
        atomic_store(&m[PIPELINE_TAIL].used, as.held_bytes);
        atomic_store(&m[PIPELINE_TAIL].refused, as.forced);
    }
    if (p->graph != NULL) {
        struct graph_stats gs;
        graph_get_stats(p->graph, &gs);
        atomic_store(&m[PIPELINE_GRAPH].used, gs.bytes_used);
        atomic_store(&m[PIPELINE_GRAPH].refused, gs.evicted_minutes + gs.dropped);
    }
    if (p->store != NULL) {
        struct store_stats ss;
        store_get_stats(p->store, &ss);
        atomic_store(&m[PIPELINE_STORE].used, ss.bytes_used);
        atomic_store(&m[PIPELINE_STORE].refused, ss.evicted_documents);
    }
    if (p->metrics != NULL) {
        struct registry_stats rs;
        registry_get_stats(families_registry(p->metrics), &rs);
        atomic_store(&m[PIPELINE_METRICS].used, rs.bytes_used);
        atomic_store(&m[PIPELINE_METRICS].refused, rs.overflowed);
    }
}

void pipeline_set_worker(struct pipeline *p, struct worker *w)
{
    p->worker = w;
}

struct graph *pipeline_graph(struct pipeline *p)
{
    return p->graph;
}

struct store *pipeline_store(struct pipeline *p)
{
    return p->store;
}

struct assembler *pipeline_assembler(struct pipeline *p)
{
    return p->assembler;
}

uint64_t pipeline_window_ms(const struct pipeline *p)
{
    return p->window_ms;
}

int pipeline_enable_sampling(struct pipeline *p, struct rules_holder *holder,
                             const struct decision_options *o)
{
    struct decision *d = decision_create(o, p->stats);
    if (d == NULL)
        return -ENOMEM;
    int rc = rules_holder_subscribe(holder, decision_mailbox(d));
    if (rc != 0) {
        decision_destroy(d);
        return rc;
    }
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    p->epoch0_ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
    p->hr0_ns = uv_hrtime();
    p->decision = d;
    return 0;
}

struct decision *pipeline_decision(struct pipeline *p)
{
    return p->decision;
}

static int pipeline_decide(struct pipeline *p, const struct doc *doc, const struct segment_view *v);
static uint64_t pipeline_now_ms(const struct pipeline *p);
static bool pipeline_assemble(struct pipeline *p, struct doc *doc, const struct segment_view *v,
                              int *keep);

static int pipeline_reject_reason(int err)
{
    switch (err) {
    case XRAY_ETOOBIG:
        return STATS_REJECT_TOO_BIG;
    case XRAY_EUTF8:
        return STATS_REJECT_BAD_UTF8;
    case XRAY_EDEPTH:
        return STATS_REJECT_TOO_DEEP;
    case XRAY_EFIELD:
        return STATS_REJECT_MISSING_FIELD;
    default:
        return STATS_REJECT_NOT_JSON;
    }
}

/* Copies an id into a fixed field; ids longer than the field are not X-Ray ids and
 * are kept truncated only for logs and lookups, never forwarded differently. */
static void pipeline_copy_id(char *dst, size_t cap, const struct scan_str *s)
{
    scan_str_unescape(s, dst, cap); /* truncates and terminates */
}

/* Wall-clock epoch seconds: the graph files statistics by the segments' own times. */
static double pipeline_epoch_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t pipeline_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A kept document joins the embedded store; the local upstream only acknowledges it. */
static void pipeline_store_doc(struct pipeline *p, const struct doc *doc,
                               const struct segment_view *v)
{
    if (p->store != NULL)
        store_add(p->store, doc->trace_id, v, doc->data, doc->len, doc->received_ms);
}

bool pipeline_process(struct doc *doc, void *pipeline)
{
    struct pipeline *p = pipeline;
    struct segment_view *v = &p->view;
    int rc = scan_document(doc->data, doc->len, v);
    if (rc != 0) {
        doc->reject = (int16_t)pipeline_reject_reason(rc);
        return true;
    }
    doc->reject = -1;
    doc->flags = (uint8_t)((v->seg.in_progress ? DOC_IN_PROGRESS : 0) |
                           (v->subsegment ? DOC_SUBSEGMENT : 0));
    doc->start_time = v->seg.start_time;
    doc->end_time = v->seg.has_end_time ? v->seg.end_time : 0;
    pipeline_copy_id(doc->trace_id, sizeof(doc->trace_id), &v->seg.trace_id);
    pipeline_copy_id(doc->id, sizeof(doc->id), &v->seg.id);
    int keep = -1; /* the trace's sampling verdict, once known */
    if (p->assembler != NULL && !pipeline_assemble(p, doc, v, &keep))
        return false; /* held for a tail decision */
    if (p->decision != NULL && keep < 0)
        keep = pipeline_decide(p, doc, v);
    if (keep == 0)
        doc->reject = PIPELINE_SAMPLED_OUT;
    else
        pipeline_store_doc(p, doc, v);
    return true;
}

/* Assembly, and with a tail option the hold: false when doc is held (it comes back
 * through worker_emit() once its trace is decided). *keep is set when the trace's
 * verdict is known here. */
static bool pipeline_assemble(struct pipeline *p, struct doc *doc, const struct segment_view *v,
                              int *keep)
{
    uint64_t now = pipeline_mono_ms();
    if (p->tail)
        *keep = decision_lookup(p->decision, doc->trace_id, pipeline_now_ms(p));
    if (*keep >= 0 || !p->tail) {
        assembler_add(p->assembler, doc->trace_id, v, NULL, doc->received_ms, now);
        return true;
    }
    switch (assembler_add(p->assembler, doc->trace_id, v, doc, doc->received_ms, now)) {
    case ASSEMBLER_ADDED:
    case ASSEMBLER_LATE:
        return false;
    case ASSEMBLER_DUPLICATE:
        /* Its first copy is held and goes with the trace's verdict: this one is not
         * needed (the assembler counted it). */
        *keep = 0;
        return true;
    case ASSEMBLER_DROPPED:
    default:
        /* No room to assemble it: its trace is decided now by the rules, as when the
         * hold is full (the caller's head decision). */
        return true;
    }
}

/* ---- the sampling decision ---- */

/* Epoch milliseconds from the monotonic clock: the reservoir's seconds never go back. */
static uint64_t pipeline_now_ms(const struct pipeline *p)
{
    return p->epoch0_ms + (uv_hrtime() - p->hr0_ns) / 1000000;
}

static struct xray_sampling_str pipeline_attr(const struct scan_str *s, char *buf, size_t cap)
{
    struct xray_sampling_str r = {NULL, 0};
    if (s->p == NULL)
        return r;
    if (!s->escaped) {
        r.p = s->p;
        r.len = s->len;
        return r;
    }
    size_t n = scan_str_unescape(s, buf, cap);
    r.p = buf;
    r.len = n < cap ? n : cap - 1;
    return r;
}

/* Host (the authority, as a Host header has it) and path of an http.request url; a
 * URL without "scheme://" is taken as a path. */
static void pipeline_split_url(struct xray_sampling_str url, struct xray_sampling_request *req)
{
    const char *p = url.p, *end = url.p + url.len, *at = p;
    while (at + 2 < end && !(at[0] == ':' && at[1] == '/' && at[2] == '/'))
        at++;
    if (at + 2 < end) {
        const char *h = at + 3, *he = h;
        while (he < end && *he != '/' && *he != '?' && *he != '#')
            he++;
        for (const char *c = h; c < he; c++)
            if (*c == '@')
                h = c + 1; /* user info is not the host */
        req->host.p = h;
        req->host.len = (size_t)(he - h);
        p = he;
    }
    const char *pe = p;
    while (pe < end && *pe != '?' && *pe != '#')
        pe++;
    req->url_path.p = pe > p ? p : "/";
    req->url_path.len = pe > p ? (size_t)(pe - p) : 1;
}

/* The attributes the rules match, from the trace's first document: its name as
 * ServiceName, origin as ServiceType, http.request's URL host and path and method. A
 * streamed subsegment belongs to a service it does not name: every attribute is then
 * empty, which only "*" patterns match, so the trace falls to the rules written for
 * any service (a missing attribute would match every pattern). */
static void pipeline_request(struct pipeline *p, const struct segment_view *v,
                             struct xray_sampling_request *req)
{
    memset(req, 0, sizeof(*req));
    if (v->subsegment) {
        req->service_name = req->service_type = req->host = req->http_method = req->url_path =
            (struct xray_sampling_str){"", 0};
        return;
    }
    const struct scan_segment *s = &v->seg;
    req->service_name = pipeline_attr(&s->name, p->name, sizeof(p->name));
    req->service_type = pipeline_attr(&s->origin, p->origin, sizeof(p->origin));
    req->http_method = pipeline_attr(&s->http.request.method, p->method, sizeof(p->method));
    struct xray_sampling_str url = pipeline_attr(&s->http.request.url, p->url, sizeof(p->url));
    if (url.p != NULL)
        pipeline_split_url(url, req);
}

/* The head decision for doc's trace: remembered, or made now from v. 1 keep, 0 drop. */
static int pipeline_decide(struct pipeline *p, const struct doc *doc, const struct segment_view *v)
{
    uint64_t now_ms = pipeline_now_ms(p);
    int keep = decision_lookup(p->decision, doc->trace_id, now_ms);
    if (keep < 0) {
        struct xray_sampling_request req;
        pipeline_request(p, v, &req);
        keep = decision_decide(p->decision, doc->trace_id, &req, now_ms);
    }
    return keep;
}

/* ---- tail decisions ---- */

/* Hands held documents back with the trace's verdict; kept ones join the store (they
 * are scanned again: the views of their first pass are gone). counted: documents the
 * decision already counted (decision_decide() and decision_lookup() count one). */
static void pipeline_emit(struct pipeline *p, struct doc *docs, bool keep, uint64_t counted)
{
    uint64_t n = 0;
    while (docs != NULL) {
        struct doc *next = docs->next;
        docs->reject = keep ? -1 : PIPELINE_SAMPLED_OUT;
        if (keep && p->store != NULL && scan_document(docs->data, docs->len, &p->held_view) == 0)
            pipeline_store_doc(p, docs, &p->held_view);
        worker_emit(p->worker, docs);
        n++;
        docs = next;
    }
    decision_count_docs(p->decision, keep, n > counted ? n - counted : 0);
}

/* The rules' decision for a held trace, from its first segment (a streamed subsegment
 * when no segment was held, as the head decision does), counting one document. 1
 * keep, 0 drop. */
static int pipeline_decide_held(struct pipeline *p, const char *trace_id, struct doc *docs)
{
    int keep = decision_lookup(p->decision, trace_id, pipeline_now_ms(p));
    if (keep >= 0)
        return keep; /* decided meanwhile */
    struct doc *first = docs;
    for (struct doc *d = docs; d != NULL; d = d->next)
        if (!(d->flags & DOC_SUBSEGMENT)) {
            first = d;
            break;
        }
    struct xray_sampling_request req;
    if (scan_document(first->data, first->len, &p->held_view) == 0)
        pipeline_request(p, &p->held_view, &req);
    else
        memset(&req, 0, sizeof(req)); /* cannot happen: it was valid when held */
    return decision_decide(p->decision, trace_id, &req, pipeline_now_ms(p));
}

/* A held trace's documents must go now (the hold is full): the rules decide. */
static void pipeline_released(void *ctx, const char *trace_id, struct doc *docs)
{
    struct pipeline *p = ctx;
    pipeline_emit(p, docs, pipeline_decide_held(p, trace_id, docs) == 1, 1);
}

/* A trace is complete: the graph takes it, then its held documents get the tail
 * decision — kept for a fault, error or throttle, or a slow root, else by the rules. */
static void pipeline_closed(void *ctx, struct assembled_trace *t)
{
    struct pipeline *p = ctx;
    p->metrics_now_ms = pipeline_mono_ms();
    graph_add_trace(p->graph, t->docs, t->late, pipeline_epoch_s(), p->metrics_now_ms);
    if (t->held == NULL)
        return;
    struct doc *docs = t->held;
    t->held = NULL;
    enum stats_decision why = STATS_DECISION__COUNT;
    if (p->tail_errors && t->worst != DIGEST_OK)
        why = STATS_DECISION_KEPT_TAIL_ERROR;
    else if (p->tail_latency_s > 0 && t->root_duration > p->tail_latency_s)
        why = STATS_DECISION_KEPT_TAIL_LATENCY;
    if (why != STATS_DECISION__COUNT) {
        decision_keep(p->decision, t->trace_id, why, pipeline_now_ms(p));
        pipeline_emit(p, docs, true, 0);
        return;
    }
    pipeline_emit(p, docs, pipeline_decide_held(p, t->trace_id, docs) == 1, 1);
}

void pipeline_idle(void *ctx, uint64_t now_ms)
{
    struct pipeline *p = ctx;
    if (p->assembler != NULL)
        assembler_sweep(p->assembler, now_ms);
    p->metrics_now_ms = now_ms;
    if (p->graph != NULL)
        graph_tick(p->graph, now_ms, pipeline_epoch_s());
    if (p->graph != NULL && now_ms - p->last_expire_ms >= PIPELINE_EXPIRE_MS) {
        graph_expire(p->graph, pipeline_epoch_s());
        p->last_expire_ms = now_ms;
    }
    if (p->store != NULL && now_ms - p->last_sync_ms >= PIPELINE_SYNC_MS) {
        store_sync(p->store);
        p->last_sync_ms = now_ms;
    }
    if (p->metrics != NULL && now_ms - p->last_metrics_ms >= PIPELINE_METRICS_MS) {
        /* The daemon's series are touched first: only what nothing updates expires. */
        pipeline_metrics_refresh(p, now_ms);
        registry_expire(families_registry(p->metrics), now_ms);
        p->last_metrics_ms = now_ms;
    }
    pipeline_publish(p);
}

void pipeline_flush(void *ctx)
{
    struct pipeline *p = ctx;
    if (p->assembler != NULL)
        assembler_flush(p->assembler);
    p->metrics_now_ms = pipeline_mono_ms();
    if (p->graph != NULL)
        graph_flush_pending(p->graph, pipeline_epoch_s());
    if (p->store != NULL)
        store_sync(p->store);
    pipeline_publish(p);
}

/* ---- metrics ---- */

static const char *const pipeline_status_names[] = {"ok", "error", "throttle", "fault"};

static void pipeline_observe_edge(void *ctx, const struct graph_edge_sample *e)
{
    struct pipeline *p = ctx;
    struct families_edge fe = {
        .client = e->client,
        .server = e->server,
        .connection_type = graph_conn_name(e->conn),
        .failed = e->status == DIGEST_FAULT,
        .client_seconds = e->client_seconds,
        .server_seconds = e->server_seconds,
    };
    families_edge(p->metrics, &fe, p->metrics_now_ms);
}

static void pipeline_observe_segment(void *ctx, const char *name, const char *type, uint8_t status,
                                     double seconds)
{
    struct pipeline *p = ctx;
    const char *st = status <= DIGEST_FAULT ? pipeline_status_names[status] : "ok";
    families_segment(p->metrics, name, type, st, seconds, p->metrics_now_ms);
}

static const struct graph_observer pipeline_observer = {
    .edge = pipeline_observe_edge,
    .segment = pipeline_observe_segment,
};

struct registry *pipeline_metrics_refresh(struct pipeline *p, uint64_t now_ms)
{
    static const char *const names[PIPELINE_PARTS] = {"assembly", "tail", "graph", "store",
                                                      "metrics"};
    if (p->metrics == NULL)
        return NULL;
    pipeline_publish(p);
    struct families_memory mem[PIPELINE_PARTS];
    size_t n = 0;
    for (int i = 0; i < PIPELINE_PARTS; i++)
        if (p->meters[i].limit > 0 || i == PIPELINE_METRICS)
            mem[n++] = (struct families_memory){names[i], atomic_load(&p->meters[i].used),
                                                p->meters[i].limit};
    families_daemon(p->metrics, p->stats, mem, n, now_ms);
    return families_registry(p->metrics);
}

struct registry_snapshot *pipeline_metrics_snapshot(struct pipeline *p, bool take_stale, int *rc)
{
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    uint64_t now_ms = pipeline_mono_ms();
    struct registry *r = pipeline_metrics_refresh(p, now_ms);
    if (r == NULL) {
        *rc = -ENOENT;
        return NULL;
    }
    struct registry_snapshot *snap = registry_snapshot(
        r, now_ms, (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000, take_stale);
    *rc = snap != NULL ? 0 : -ENOMEM;
    return snap;
}
