/* SPDX-License-Identifier: Apache-2.0 */
/* The service graph's rules (service-graph.md): which node a document counts on, which
 * edge a caller's call and its callee's segment make together, and what happens to the
 * halves that do not meet in time. Storage and its budget are graph_table.c's, the
 * waiting callers graph_pending.c's, the JSON graph_json.c's. It never parses
 * documents: it reads their digests.
 *
 * How it works: a whole trace arrives at once. Pass one maps every id the trace's
 * documents hold (segment ids, nested subsegment ids, call ids) to its document, in a
 * scratch table reused between traces. Pass two counts each segment on its node and
 * pairs it with its parent through the map (an edge from the caller's service), or,
 * when the parent is not in the trace, with a call of an earlier trace still waiting.
 * Pass three takes the calls nothing paired with: each waits for its callee in the
 * pending ring until its own window closes (graph_tick()), or becomes an edge to an
 * inferred node at once when the window is over already. The nodes a trace touches are
 * found once and pinned for its duration (a small memo by string pointer), so each
 * step is O(1) and a trace costs O(its documents + ids + calls). */
#include "graph/graph.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_edges.h"
#include "graph/graph_idmap.h"
#include "graph/graph_json.h"
#include "graph/graph_pending.h"
#include "graph/graph_table.h"

#define GRAPH_RETENTION_MIN_DEFAULT 60
#define GRAPH_WINDOW_MS_DEFAULT     10000 /* service-graph.md: the pairing window, 10 s */
#define GRAPH_DEPTH_MAX             64    /* streamed subsegments nested deeper: unresolved */
#define GRAPH_IDS_MAX               65536 /* ids mapped per trace; the rest counted */
#define GRAPH_IDMAP_SLOTS           1024  /* kept between traces: 512 ids */
#define GRAPH_IDMAP_SHARE           8     /* the map may take an eighth of the budget */
#define GRAPH_FUTURE_S              60.0  /* a start this far past now is still believed */
#define GRAPH_PENDING_SHARE         4     /* the waiting callers take a quarter of the budget */
#define GRAPH_MEMO_MAX              16    /* nodes a trace keeps pinned at once */

/* A node the trace being added has used, by the digest's own string pointers: the
 * same pointers are the same strings, so a hit costs no hashing and no comparison. */
struct graph_memo {
    const char *name, *type;
    struct graph_node *n; /* pinned until the trace is done */
};

struct graph {
    struct graph_table t;
    struct graph_pending pend;
    struct graph_memo memo[GRAPH_MEMO_MAX];
    size_t nmemo;
    struct graph_idmap small; /* for most traces; kept */
    struct graph_idmap big;   /* for a large trace; freed after it */
    struct graph_idmap *map;  /* the one in use */
    size_t map_slots_max;
    uint32_t retention_min;
    uint64_t window_ms;
    uint64_t paired, expired_callers, expired_callees, late, unresolved, expired_early;
    uint64_t ids_overflow;
    struct graph_observer obs;
};

static size_t graph_pow2_below(size_t n)
{
    size_t p = 1;
    while (p * 2 <= n)
        p *= 2;
    return p;
}

struct graph *graph_create(const struct graph_options *o)
{
    size_t max = o->max_bytes < GRAPH_MIN_BYTES ? GRAPH_MIN_BYTES : o->max_bytes;
    struct graph *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    if (graph_table_init(&g->t, max) != 0) {
        free(g);
        return NULL;
    }
    g->retention_min = o->retention_min ? o->retention_min : GRAPH_RETENTION_MIN_DEFAULT;
    g->window_ms = o->window_ms ? o->window_ms : GRAPH_WINDOW_MS_DEFAULT;
    size_t slots = graph_pow2_below(max / GRAPH_IDMAP_SHARE / sizeof(struct graph_idmap_slot));
    g->map_slots_max = slots < 2 * GRAPH_IDS_MAX ? slots : 2 * GRAPH_IDS_MAX;
    size_t small = g->map_slots_max < GRAPH_IDMAP_SLOTS ? g->map_slots_max : GRAPH_IDMAP_SLOTS;
    if (graph_idmap_init(&g->small, small, g->t.seed) != 0 ||
        graph_pending_init(&g->pend, max / GRAPH_PENDING_SHARE, g->t.seed ^ 0x5bd1e995u) != 0) {
        graph_destroy(g);
        return NULL;
    }
    g->map = &g->small;
    g->t.bytes_used += sizeof(*g) + graph_idmap_bytes(&g->small) + graph_pending_bytes(&g->pend);
    return g;
}

void graph_destroy(struct graph *g)
{
    if (g == NULL)
        return;
    graph_pending_destroy(&g->pend);
    graph_idmap_destroy(&g->small);
    graph_idmap_destroy(&g->big);
    graph_table_destroy(&g->t);
    free(g);
}

/* The minute a (sub)segment's statistics go under: its start's, unless the start is
 * outside what the graph keeps (a clock far off, a replayed document), then now's. */
static uint32_t graph_minute(const struct graph *g, double t, double now_s)
{
    if (!(t >= now_s - 60.0 * g->retention_min && t <= now_s + GRAPH_FUTURE_S))
        t = now_s;
    if (!(t >= 0))
        return 0;
    double m = floor(t / 60.0);
    return m >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)m;
}

static bool graph_complete(const struct digest_doc *d)
{
    return !(d->flags & DIGEST_IN_PROGRESS) && d->end != 0;
}

/* ---- the id map ---- */

/* Picks a map big enough for the trace when the kept one is not (and the budget
 * allows it), then maps its ids. A call's id is mapped after the plain ids, so that
 * a streamed subsegment which is itself a call is found as the call. */
static void graph_map_build(struct graph *g, const struct digest_doc *docs, uint32_t minute)
{
    size_t need = 0;
    for (const struct digest_doc *d = docs; d != NULL; d = d->next)
        need += 1u + d->nids + d->ncalls;
    if (need > GRAPH_IDS_MAX)
        need = GRAPH_IDS_MAX;
    g->map = &g->small;
    if (need > g->small.max_used) {
        size_t slots = graph_pow2_below(2 * need);
        slots = slots < 2 * need ? slots * 2 : slots;
        if (slots > g->map_slots_max)
            slots = g->map_slots_max;
        size_t bytes = slots * sizeof(struct graph_idmap_slot);
        if (slots > g->small.mask + 1 && graph_table_reserve(&g->t, bytes, minute) == 0 &&
            graph_idmap_init(&g->big, slots, g->t.seed) == 0) {
            g->t.bytes_used += bytes;
            g->map = &g->big;
        }
    }
    graph_idmap_clear(g->map);
    for (const struct digest_doc *d = docs; d != NULL; d = d->next) {
        if (d->id != 0)
            graph_idmap_put(g->map, d->id, d, -1);
        for (size_t i = 0; i < d->nids; i++)
            if (d->ids[i] != 0)
                graph_idmap_put(g->map, d->ids[i], d, -1);
    }
    for (const struct digest_doc *d = docs; d != NULL; d = d->next)
        for (size_t i = 0; i < d->ncalls && i <= INT16_MAX; i++)
            if (d->calls[i].id != 0) {
                graph_idmap_put(g->map, d->calls[i].id, d, (int)i);
                graph_pending_prefetch(&g->pend, d->calls[i].id); /* if it waits: pass 3 */
            }
}

static void graph_map_done(struct graph *g)
{
    g->ids_overflow += g->map->overflow;
    g->map->overflow = 0;
    if (g->map == &g->big) {
        g->t.bytes_used -= graph_idmap_bytes(&g->big);
        graph_idmap_destroy(&g->big);
        g->map = &g->small;
    }
}

/* The segment whose service d belongs to: d itself, or for a streamed subsegment the
 * segment its parent_id chain leads to. NULL when the chain breaks or is too deep. */
static const struct digest_doc *graph_service_of(const struct graph *g, const struct digest_doc *d)
{
    for (int depth = 0; depth <= GRAPH_DEPTH_MAX; depth++) {
        if (!(d->flags & DIGEST_SUBSEGMENT))
            return d;
        const struct graph_idmap_slot *s = graph_idmap_find(g->map, d->parent_id);
        if (s == NULL)
            return NULL;
        d = s->doc;
    }
    return NULL;
}

/* ---- nodes and samples ---- */

static const char *graph_origin(const struct digest_doc *seg)
{
    return seg->origin != NULL ? seg->origin : "";
}

static bool graph_same_service(const struct digest_doc *a, const struct digest_doc *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(graph_origin(a), graph_origin(b)) == 0;
}

static struct graph_sample graph_doc_sample(const struct graph *g, const struct digest_doc *d,
                                            double now_s)
{
    return (struct graph_sample){d->status, d->end - d->start, graph_minute(g, d->start, now_s)};
}

static struct graph_sample graph_call_sample(const struct graph *g, const struct digest_call *c,
                                             double now_s)
{
    return (struct graph_sample){c->status, c->end - c->start, graph_minute(g, c->start, now_s)};
}

/* The node of (name, type), pinned until the trace is done; NULL when the budget has
 * no room for it. A trace names the same few services again and again (a segment,
 * its client, its callers, its calls): only the first use of each hashes and looks up.
 * Callers make room with graph_memo_room() where they hold no node. */
static struct graph_node *graph_memo_node(struct graph *g, const char *name, const char *type,
                                          uint8_t flags, uint32_t minute)
{
    for (size_t i = 0; i < g->nmemo; i++)
        if (g->memo[i].name == name && g->memo[i].type == type) {
            g->memo[i].n->flags |= flags;
            return g->memo[i].n;
        }
    struct graph_key k = graph_table_key(&g->t, name, type, flags);
    struct graph_node *n = graph_table_pin(&g->t, &k, minute);
    if (n != NULL)
        g->memo[g->nmemo++] = (struct graph_memo){name, type, n};
    return n;
}

static void graph_memo_clear(struct graph *g)
{
    for (size_t i = 0; i < g->nmemo; i++)
        graph_table_unpin(&g->t, g->memo[i].n);
    g->nmemo = 0;
}

/* Room for need more nodes: unpins them all when the memo is too full (only between
 * the steps that hold nodes). */
static void graph_memo_room(struct graph *g, size_t need)
{
    if (g->nmemo + need > GRAPH_MEMO_MAX)
        graph_memo_clear(g);
}

static struct graph_node *graph_service_node(struct graph *g, const struct digest_doc *seg,
                                             uint32_t minute)
{
    return graph_memo_node(g, seg->name, graph_origin(seg), GRAPH_NODE_ACTIVE, minute);
}

/* Counting where a node could not be had (no room for it) is an update refused. */
static void graph_count_node(struct graph *g, struct graph_node *n, const struct graph_sample *s)
{
    if (n != NULL)
        graph_table_count_node_at(&g->t, n, s);
    else
        g->t.dropped++;
}

static void graph_count_edge(struct graph *g, struct graph_node *from, struct graph_node *to,
                             uint8_t conn, const struct graph_sample *s)
{
    if (from != NULL && to != NULL)
        graph_table_count_edge_at(&g->t, from, to, conn, s);
    else
        g->t.dropped++;
}

static bool graph_nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* ---- what the metrics are told ---- */

static void graph_observe_edge(const struct graph *g, const char *client, const char *server,
                               uint8_t conn, const struct graph_sample *cs, double server_s)
{
    if (g->obs.edge == NULL)
        return;
    struct graph_edge_sample e = {client,     server,      (enum graph_conn)conn,
                                  cs->status, cs->seconds, server_s};
    g->obs.edge(g->obs.ctx, &e);
}

/* An edge with one view only: the callee's own statistics, or a call nobody answered. */
static void graph_observe_one(const struct graph *g, const char *client, const char *server,
                              uint8_t conn, const struct graph_sample *s)
{
    graph_observe_edge(g, client, server, conn, s, s->seconds);
}

void graph_set_observer(struct graph *g, const struct graph_observer *o)
{
    g->obs = o != NULL ? *o : (struct graph_observer){0};
}

/* The node a call nobody answered leads to. A traced call expected an instrumented
 * callee, so it is named after the subsegment; an aws or remote call after its
 * resource (digest_build fills the table, queue or host and its type). tmp holds a
 * type made up when the digest has none. No flags: the node is pinned while the call
 * waits, and becomes inferred only if the call expires. */
static struct graph_key graph_inferred_key(const struct graph *g, const struct digest_call *c,
                                           char *tmp, size_t n)
{
    const char *name = c->name != NULL ? c->name : "", *type = c->resource_type;
    if (!c->traced && graph_nonempty(c->resource))
        name = c->resource;
    if (!graph_nonempty(type)) {
        if (c->ns == DIGEST_NS_AWS) {
            snprintf(tmp, n, "AWS::%s", c->name != NULL ? c->name : "");
            type = tmp;
        } else {
            type = "remote";
        }
    }
    return graph_table_key(&g->t, name, type, 0);
}

static bool graph_is(const struct graph_key *k, const char *type, size_t len)
{
    return k->type_len == len && memcmp(k->type, type, len) == 0;
}

/* The key's lengths are known: most types are ruled out without reading them. */
static enum graph_conn graph_inferred_conn(const struct digest_call *c, const struct graph_key *k)
{
    if (c->sql)
        return GRAPH_CONN_DATABASE;
    if (graph_is(k, "AWS::SQS::Queue", 15) || graph_is(k, "AWS::SNS::Topic", 15) ||
        graph_is(k, "AWS::Kinesis::Stream", 20))
        return GRAPH_CONN_MESSAGING;
    return GRAPH_CONN_VIRTUAL_NODE;
}

/* ---- the waiting callers ---- */

static bool graph_window_over(const struct graph *g, uint64_t arrived_ms, uint64_t now_ms)
{
    return now_ms >= arrived_ms && now_ms - arrived_ms >= g->window_ms;
}

static struct graph_sample graph_half_sample(const struct graph_pending_half *h)
{
    return (struct graph_sample){h->status, h->seconds, h->minute};
}

/* Nobody answered h: an edge to its inferred node, which counts the call as its own too
 * (nobody else reports it). Releases h's pins. Its minute was chosen when it began to
 * wait; one the retention has passed since is now's, as graph_minute() would say. */
static void graph_half_expire(struct graph *g, const struct graph_pending_half *h, double now_s)
{
    struct graph_sample s = graph_half_sample(h);
    uint32_t now_min = graph_minute(g, now_s, now_s);
    if (now_min > g->retention_min && s.minute < now_min - g->retention_min)
        s.minute = now_min;
    g->expired_callers++;
    h->to->flags |= GRAPH_NODE_INFERRED;
    graph_table_count_node_at(&g->t, h->to, &s);
    graph_table_count_edge_at(&g->t, h->from, h->to, h->conn, &s);
    graph_observe_one(g, h->from->name, h->to->name, h->conn, &s);
    graph_table_unpin(&g->t, h->from);
    graph_table_unpin(&g->t, h->to);
}

/* Expiring runs down the ring in order, on nodes and edges untouched for the window:
 * the halves a few places ahead have theirs loaded meanwhile. */
static void graph_pending_prefetch_ahead(struct graph *g)
{
    static const size_t ahead[3] = {8, 4, 2};
    for (int stage = 0; stage < 3; stage++) {
        const struct graph_pending_half *h = graph_pending_at(&g->pend, ahead[stage]);
        if (h != NULL && (h->flags & GRAPH_PENDING_LIVE))
            graph_table_prefetch(&g->t, h->from, h->to, stage);
    }
}

/* Drops the oldest half, expiring it when it still waited. */
static void graph_pending_expire_head(struct graph *g, double now_s)
{
    graph_pending_prefetch_ahead(g);
    struct graph_pending_half h = *graph_pending_head(&g->pend);
    graph_pending_pop(&g->pend);
    if (h.flags & GRAPH_PENDING_LIVE)
        graph_half_expire(g, &h, now_s);
}

/* h waits for its callee; the ring full, its oldest half stops waiting early. */
static void graph_half_pend(struct graph *g, const struct graph_pending_half *h, double now_s)
{
    while (graph_pending_full(&g->pend)) {
        if (graph_pending_head(&g->pend)->flags & GRAPH_PENDING_LIVE)
            g->expired_early++;
        graph_pending_expire_head(g, now_s);
    }
    graph_pending_push(&g->pend, h);
}

/* Segment s (node to) has no parent in its trace: its caller's call may be waiting
 * from an earlier trace. */
static void graph_pair_pending(struct graph *g, const struct digest_doc *s, struct graph_node *to,
                               bool late)
{
    uint32_t *entry;
    struct graph_pending_half *h = graph_pending_find(&g->pend, s->parent_id, &entry);
    if (h == NULL) {
        /* In a late trace the caller came with the earlier part, whose window has
         * closed; otherwise the caller reports elsewhere or never will. */
        if (late)
            g->late++;
        else
            g->expired_callees++;
        return;
    }
    if (s->arrived_ms > h->arrived_ms && s->arrived_ms - h->arrived_ms > g->window_ms) {
        /* The call's window closed before its callee came (the ring has not got to it
         * yet): it expires into its inferred edge, this half draws nothing. */
        g->late++;
        return;
    }
    struct graph_pending_half half = *h;
    graph_pending_consume(&g->pend, h, entry);
    /* A service calling itself draws no loop (nodes are unique per name and type): the
     * call is answered all the same. */
    if (half.from != to) {
        struct graph_sample cs = graph_half_sample(&half);
        uint8_t conn = (half.flags & GRAPH_PENDING_SQL) ? GRAPH_CONN_DATABASE : GRAPH_CONN_SERVICE;
        g->paired++;
        graph_count_edge(g, half.from, to, conn, &cs);
        graph_observe_edge(g, half.from->name, s->name, conn, &cs, s->end - s->start);
    }
    graph_table_unpin(&g->t, half.from);
    graph_table_unpin(&g->t, half.to);
}

/* ---- pairing ---- */

/* Pairs segment s (node to) with the call (or other subsegment) its parent_id names. */
static void graph_pair(struct graph *g, const struct digest_doc *s, struct graph_node *to,
                       bool late, double now_s)
{
    struct graph_idmap_slot *p = graph_idmap_find(g->map, s->parent_id);
    if (p == NULL) {
        graph_pair_pending(g, s, to, late);
        return;
    }
    const struct digest_doc *caller = graph_service_of(g, p->doc);
    if (caller == NULL) {
        /* Its document's own service unknown: no caller service to draw the edge from. */
        if (late)
            g->late++;
        else
            g->expired_callees++;
        return;
    }
    struct graph_sample own = graph_doc_sample(g, s, now_s);
    if (graph_same_service(caller, s)) {
        /* A service calling itself draws no loop; the call is answered all the same,
         * so it does not become an inferred node either. */
        if (p->call >= 0)
            p->flags |= GRAPH_IDMAP_SAME;
        return;
    }
    if (p->call < 0) {
        /* The parent is a plain subsegment or the caller's segment itself: there is no
         * client view of the request, so the edge gets the callee's own statistics. */
        graph_count_edge(g, graph_service_node(g, caller, own.minute), to, GRAPH_CONN_SERVICE,
                         &own);
        graph_observe_one(g, caller->name, s->name, GRAPH_CONN_SERVICE, &own);
        return;
    }
    const struct digest_call *c = &p->doc->calls[p->call];
    uint64_t a = s->arrived_ms, b = p->doc->arrived_ms;
    if (a > b && a - b > g->window_ms) {
        /* The call's window closed before its callee came: the call stands on its own
         * (an inferred edge in pass three); this half is late and draws nothing. */
        g->late++;
        return;
    }
    if (b > a && b - a > g->window_ms) {
        /* The callee waited in vain and expired; the call, come too late, draws
         * nothing, so one request never makes two edges. */
        g->expired_callees++;
        g->late++;
        p->flags |= GRAPH_IDMAP_LATE;
        return;
    }
    if ((p->flags & GRAPH_IDMAP_PAIRED) || c->in_progress || c->end == 0) {
        /* A second callee of one call (a retry the caller did not record), or a call
         * with no end of its own: the callee's statistics are all there is. */
        graph_count_edge(g, graph_service_node(g, caller, own.minute), to, GRAPH_CONN_SERVICE,
                         &own);
        graph_observe_one(g, caller->name, s->name, GRAPH_CONN_SERVICE, &own);
        p->flags |= GRAPH_IDMAP_PAIRED;
        return;
    }
    p->flags |= GRAPH_IDMAP_PAIRED;
    g->paired++;
    /* The edge is the caller's view of the request: network and queueing included. */
    struct graph_sample cs = graph_call_sample(g, c, now_s);
    uint8_t conn = c->sql ? GRAPH_CONN_DATABASE : GRAPH_CONN_SERVICE;
    graph_count_edge(g, graph_service_node(g, caller, cs.minute), to, conn, &cs);
    graph_observe_edge(g, caller->name, s->name, conn, &cs, own.seconds);
}

/* Pass two for one segment: its node (server view), then who called it. */
static void graph_add_segment(struct graph *g, const struct digest_doc *s, bool late, double now_s)
{
    struct graph_sample own = graph_doc_sample(g, s, now_s);
    graph_memo_room(g, 2); /* its node, and its caller's or client's */
    struct graph_node *n = graph_service_node(g, s, own.minute);
    graph_count_node(g, n, &own);
    if (g->obs.segment != NULL)
        g->obs.segment(g->obs.ctx, s->name, graph_origin(s), own.status, own.seconds);
    if (s->parent_id != 0) {
        graph_pair(g, s, n, late, now_s);
        return;
    }
    /* A root: its callers are outside the traced system; X-Ray draws them as a client
     * node named after the root, whose edge carries the root's own statistics. */
    struct graph_node *client =
        graph_memo_node(g, s->name, "client", GRAPH_NODE_CLIENT, own.minute);
    graph_count_edge(g, client, n, GRAPH_CONN_SERVICE, &own);
    /* Metrics name the callers of a root "user" (the Tempo and OTel convention). */
    graph_observe_one(g, "user", s->name, GRAPH_CONN_SERVICE, &own);
}

/* Call i of d, whose service's node is from (pinned): nothing in its trace answered it.
 * It waits for its callee while its window is open, else leads to its inferred node
 * now. */
static void graph_add_call(struct graph *g, const struct digest_doc *d, size_t i,
                           struct graph_node *from, double now_s, uint64_t now_ms)
{
    const struct digest_call *c = &d->calls[i];
    char tmp[DIGEST_NAME_MAX + 8];
    struct graph_key k = graph_inferred_key(g, c, tmp, sizeof(tmp));
    struct graph_sample cs = graph_call_sample(g, c, now_s);
    struct graph_node *to = from != NULL ? graph_table_pin(&g->t, &k, cs.minute) : NULL;
    if (to == NULL) {
        g->expired_callers++;
        g->t.dropped++;
        return;
    }
    graph_table_hold(from);
    struct graph_pending_half h = {
        .id = c->id,
        .arrived_ms = d->arrived_ms,
        .from = from,
        .to = to,
        .seconds = cs.seconds,
        .minute = cs.minute,
        .status = cs.status,
        .conn = (uint8_t)graph_inferred_conn(c, &k),
        .flags = c->sql ? GRAPH_PENDING_SQL : 0,
    };
    if (c->id != 0 && !graph_window_over(g, d->arrived_ms, now_ms))
        graph_half_pend(g, &h, now_s);
    else
        graph_half_expire(g, &h, now_s);
}

/* Pass three for one document: its calls that no callee in the trace answered. */
static void graph_add_calls(struct graph *g, const struct digest_doc *d, double now_s,
                            uint64_t now_ms)
{
    const struct digest_doc *svc = graph_service_of(g, d);
    if (svc == NULL) {
        g->unresolved++;
        return;
    }
    struct graph_node *from = NULL;
    bool keyed = false;
    for (size_t i = 0; i < d->ncalls; i++) {
        const struct digest_call *c = &d->calls[i];
        if (c->in_progress || c->end == 0)
            continue;
        const struct graph_idmap_slot *p = graph_idmap_find(g->map, c->id);
        if (p != NULL && p->doc == d && p->call == (int)i && p->flags != 0)
            continue;
        if (!keyed) { /* most documents have no call left: find their node lazily */
            graph_memo_room(g, 1);
            from = graph_service_node(g, svc, graph_minute(g, c->start, now_s));
            keyed = true;
        }
        graph_add_call(g, d, i, from, now_s, now_ms);
    }
}

void graph_add_trace(struct graph *g, const struct digest_doc *docs, bool late, double now_s,
                     uint64_t now_ms)
{
    graph_map_build(g, docs, graph_minute(g, now_s, now_s));
    for (const struct digest_doc *d = docs; d != NULL; d = d->next)
        if (graph_complete(d) && !(d->flags & DIGEST_SUBSEGMENT))
            graph_add_segment(g, d, late, now_s);
    for (const struct digest_doc *d = docs; d != NULL; d = d->next)
        if (graph_complete(d))
            graph_add_calls(g, d, now_s, now_ms);
    graph_memo_clear(g);
    graph_map_done(g);
}

/* A call waits two windows: its callee may arrive until the call's window closes, and
 * a callee whose trace was complete already (a late document) reaches the graph only
 * when the assembler closes its late part, up to a window after its arrival. Expiring
 * after one window lost that race now and then, drawing an inferred node beside the
 * real one. */
static bool graph_wait_over(const struct graph *g, uint64_t arrived_ms, uint64_t now_ms)
{
    return now_ms >= arrived_ms && now_ms - arrived_ms >= 2 * g->window_ms;
}

void graph_tick(struct graph *g, uint64_t now_ms, double now_s)
{
    const struct graph_pending_half *h;
    while ((h = graph_pending_head(&g->pend)) != NULL &&
           (!(h->flags & GRAPH_PENDING_LIVE) || graph_wait_over(g, h->arrived_ms, now_ms)))
        graph_pending_expire_head(g, now_s);
}

void graph_flush_pending(struct graph *g, double now_s)
{
    while (graph_pending_head(&g->pend) != NULL)
        graph_pending_expire_head(g, now_s);
}

void graph_expire(struct graph *g, double now_s)
{
    uint32_t now_min = graph_minute(g, now_s, now_s);
    graph_table_expire(&g->t, now_min > g->retention_min ? now_min - g->retention_min : 0);
}

/* limit 0 means no limit: a page that can never end would loop its caller forever. */
int graph_write_services(const struct graph *g, double start_s, double end_s, size_t first,
                         size_t limit, struct buf *out, size_t *next)
{
    return graph_json_services(&g->t, start_s, end_s, first, limit, out, next);
}

void graph_get_stats(const struct graph *g, struct graph_stats *out)
{
    *out = (struct graph_stats){
        .nodes = g->t.nodes,
        .edges = g->t.edges,
        .bytes_used = g->t.bytes_used,
        .max_bytes = g->t.max_bytes,
        .paired = g->paired,
        .expired_callers = g->expired_callers,
        .expired_callees = g->expired_callees,
        .late = g->late,
        .unresolved = g->unresolved,
        .dropped = g->t.dropped,
        .evicted_minutes = g->t.evicted_minutes,
        .pending = g->pend.live,
        .expired_early = g->expired_early,
        .unindexed = g->pend.unindexed,
    };
}

/* ---- graph_edges.h ---- */

const char *graph_conn_name(enum graph_conn c)
{
    switch (c) {
    case GRAPH_CONN_VIRTUAL_NODE:
        return "virtual_node";
    case GRAPH_CONN_MESSAGING:
        return "messaging_system";
    case GRAPH_CONN_DATABASE:
        return "database";
    default:
        return "";
    }
}

int graph_edge_conn(const struct graph *g, const char *src_name, const char *src_type,
                    const char *dst_name, const char *dst_type)
{
    const struct graph_node *a = graph_table_find_node(&g->t, src_name, src_type);
    const struct graph_node *b = graph_table_find_node(&g->t, dst_name, dst_type);
    const struct graph_edge *e = a != NULL && b != NULL ? graph_table_find_edge(&g->t, a, b) : NULL;
    return e != NULL ? e->conn : -ENOENT;
}

void graph_foreach_edge(const struct graph *g,
                        void (*cb)(void *ctx, const struct graph_edge_view *e), void *ctx)
{
    for (const struct graph_node *n = g->t.first; n != NULL; n = n->next)
        for (const struct graph_edge *e = n->out; e != NULL; e = e->out_next) {
            struct graph_edge_view v = {n->name,      n->type, e->dst->name,
                                        e->dst->type, e->conn, (n->flags & GRAPH_NODE_CLIENT) != 0};
            cb(ctx, &v);
        }
}

uint64_t graph_ids_overflow(const struct graph *g)
{
    return g->ids_overflow;
}
