/* SPDX-License-Identifier: Apache-2.0 */
/* The life of a segment tree: begin (ids, the trace header, the sampling decision),
 * subsegments, end, streaming and the final send. What a node records is record.c's.
 * Invariants: a tree lives while its segment is open or any subsegment is (trace
 * refs); it is sent once, by whichever end drops refs to zero; while more than
 * stream_threshold subsegments are held, closed subtrees leave as documents of their
 * own; an unsampled tree keeps only its open nodes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void segment_node_init(struct xray_segment *n, struct xray__trace *t, uint64_t start_us)
{
    n->trace = t;
    n->start_us = start_us;
    n->open = 1;
    n->aws_retries = -1;
    n->http_length = -1;
}

/* The name as recorded: quoted, cut at XRAY_NAME_MAX bytes; "" when none. */
static void segment_name(struct xray_segment *n, const char *name)
{
    if (name == NULL)
        name = "";
    size_t len = 0;
    const char *q = xray__serialize_quote(&n->arena, name, strlen(name), XRAY_NAME_MAX, &len);
    n->name.p = q != NULL ? q : "\"\"";
    n->name.len = q != NULL ? len : 2;
}

struct xray_segment *xray_segment_begin(struct xray_recorder *rec,
                                        const struct xray_segment_options *opts)
{
    static const struct xray_segment_options none;
    if (rec == NULL || !rec->enabled)
        return NULL;
    if (opts == NULL)
        opts = &none;
    uint64_t now = opts->start_us ? opts->start_us : xray__recorder_now_us(rec);
    struct xray__trace *t = malloc(sizeof(*t) + XRAY__ARENA_INLINE);
    if (t == NULL) {
        XRAY__COUNT(rec, oom_dropped);
        return NULL;
    }
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->rec = rec;
    t->refs = 1;
    struct xray_segment *root = &t->root;
    segment_node_init(root, t, now);
    root->arena.p = (char *)(t + 1);
    root->arena.cap = XRAY__ARENA_INLINE;
    xray_id_segment(root->id);

    const struct xray_trace_header *h = opts->header;
    if (h != NULL && h->root[0]) {
        memcpy(t->trace_id, h->root, sizeof(t->trace_id));
        memcpy(t->parent_id, h->parent, sizeof(t->parent_id));
    } else {
        xray_id_trace(t->trace_id, (uint32_t)(now / 1000000));
    }
    if (h != NULL && h->extra_len > 0 && h->extra_len <= XRAY_HEADER_EXTRA_MAX) {
        memcpy(t->extra, h->extra, h->extra_len);
        t->extra_len = h->extra_len;
    }
    t->requested = h != NULL && h->sampled == XRAY_SAMPLED_REQUESTED;

    const char *name = opts->name != NULL ? opts->name : rec->service_name;
    if (opts->sampled == XRAY_SAMPLED_YES || opts->sampled == XRAY_SAMPLED_NO) {
        t->sampled = opts->sampled == XRAY_SAMPLED_YES;
    } else if (h != NULL && (h->sampled == XRAY_SAMPLED_YES || h->sampled == XRAY_SAMPLED_NO)) {
        t->sampled = h->sampled == XRAY_SAMPLED_YES;
    } else {
        /* Rules match ServiceType against the origin: the configured one, else what
         * the plugins found, as the other SDKs do. */
        const struct xray__plugin_data *pd =
            atomic_load_explicit(&rec->plugin, memory_order_acquire);
        const char *type = rec->service_type[0]               ? rec->service_type
                           : pd != NULL && pd->origin[0] != 0 ? pd->origin
                                                              : NULL;
        struct xray_sampling_request req = {
            .service_name = xray_sampling_str_c(name),
            .service_type = xray_sampling_str_c(type),
            .host = xray_sampling_str_c(opts->host),
            .http_method = xray_sampling_str_c(opts->http_method),
            .url_path = xray_sampling_str_c(opts->url_path),
        };
        t->sampled = xray__recorder_decide(rec, &req, now, t->rule_name);
    }
    if (!t->sampled)
        t->rule_name[0] = '\0';
    else
        segment_name(root, name);
    t->plugin = atomic_load_explicit(&rec->plugin, memory_order_acquire);
    XRAY__COUNT(rec, segments_begun);
    if (t->sampled)
        XRAY__COUNT(rec, segments_sampled);
    return root;
}

struct xray_segment *xray_subsegment_begin(struct xray_segment *parent, const char *name)
{
    if (parent == NULL)
        return NULL;
    struct xray__trace *t = parent->trace;
    struct xray_recorder *rec = t->rec;
    uint64_t now = xray__recorder_now_us(rec);
    struct xray_segment *n = malloc(sizeof(*n) + XRAY__ARENA_INLINE);
    if (n == NULL) {
        XRAY__COUNT(rec, oom_dropped);
        return NULL;
    }
    memset(n, 0, sizeof(*n));
    segment_node_init(n, t, now);
    n->is_sub = true;
    n->arena.p = (char *)(n + 1);
    n->arena.cap = XRAY__ARENA_INLINE;
    xray_id_segment(n->id);
    if (t->sampled)
        segment_name(n, name);

    pthread_mutex_lock(&t->lock);
    int depth = 0;
    for (const struct xray_segment *p = parent; p->is_sub; p = p->parent)
        depth++;
    if (parent->ended || depth >= XRAY_SUBSEGMENT_DEPTH_MAX || t->held >= XRAY_SUBSEGMENTS_MAX) {
        pthread_mutex_unlock(&t->lock);
        XRAY__COUNT(rec, limit_dropped);
        xray__log_every(&rec->rl_limit, 60000, XRAY_LOG_WARN,
                        "subsegment refused: parent ended, or over %d deep or %d held",
                        XRAY_SUBSEGMENT_DEPTH_MAX, XRAY_SUBSEGMENTS_MAX);
        xray__segment_free_node(n);
        return NULL;
    }
    n->parent = parent;
    n->prev = parent->last_child;
    if (parent->last_child)
        parent->last_child->next = n;
    else
        parent->first_child = n;
    parent->last_child = n;
    for (struct xray_segment *p = parent; p != NULL; p = p->parent)
        p->open++;
    t->held++;
    t->refs++;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void xray__segment_free_node(struct xray_segment *node)
{
    xray__arena_free(&node->arena);
    free(node);
}

/* Unlinks node from its parent and frees its subtree. Lock held. */
static void segment_release(struct xray__trace *t, struct xray_segment *node)
{
    struct xray_segment *p = node->parent;
    if (node->prev)
        node->prev->next = node->next;
    else
        p->first_child = node->next;
    if (node->next)
        node->next->prev = node->prev;
    else
        p->last_child = node->prev;
    /* Depth-first without recursion: detach the first child until none is left. */
    struct xray_segment *cur = node;
    while (cur != NULL) {
        if (cur->first_child != NULL) {
            cur = cur->first_child;
            continue;
        }
        struct xray_segment *up = cur == node ? NULL : cur->parent;
        if (up != NULL) {
            up->first_child = cur->next;
            if (cur->next)
                cur->next->prev = NULL;
            else
                up->last_child = NULL;
        }
        xray__segment_free_node(cur);
        t->held--;
        cur = up;
    }
}

/* Sends the top-most closed subtrees below node, each as one document. Lock held. */
static void segment_stream(struct xray__trace *t, struct xray_segment *node)
{
    struct xray_segment *c = node->first_child;
    while (c != NULL) {
        struct xray_segment *next = c->next;
        if (c->ended && c->open == 0) {
            if (xray__emitter_send_tree(t->rec, c, true, false) == 0)
                XRAY__COUNT(t->rec, subsegments_streamed);
            segment_release(t, c);
        } else if (c->first_child != NULL) {
            segment_stream(t, c); /* depth bounded by XRAY_SUBSEGMENT_DEPTH_MAX */
        }
        c = next;
    }
}

static void segment_free_tree(struct xray__trace *t)
{
    while (t->root.first_child != NULL)
        segment_release(t, t->root.first_child);
    xray__arena_free(&t->root.arena);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void xray__segment_end(struct xray_segment *seg, uint64_t end_us,
                       struct xray_segment **next_current)
{
    if (next_current)
        *next_current = NULL;
    if (seg == NULL)
        return;
    struct xray__trace *t = seg->trace;
    struct xray_recorder *rec = t->rec;
    uint64_t now = end_us ? end_us : xray__recorder_now_us(rec);
    pthread_mutex_lock(&t->lock);
    if (seg->ended) {
        pthread_mutex_unlock(&t->lock);
        return;
    }
    seg->ended = true;
    seg->end_us = now < seg->start_us ? seg->start_us : now;
    for (struct xray_segment *p = seg; p != NULL; p = p->parent)
        p->open--;
    if (next_current && seg->parent != NULL && !seg->parent->ended)
        *next_current = seg->parent;
    t->refs--;
    if (seg->is_sub) {
        if (!t->sampled) {
            /* Nothing to send: closed nodes go at once, and so do ended ancestors
             * this close left without open descendants. */
            struct xray_segment *n = seg;
            while (n->is_sub && n->ended && n->open == 0) {
                struct xray_segment *up = n->parent;
                segment_release(t, n);
                n = up;
            }
        } else if (t->held > rec->stream_threshold && t->refs > 0) {
            segment_stream(t, &t->root);
        }
    }
    if (t->refs == 0) {
        if (t->sampled)
            (void)xray__emitter_send_tree(rec, &t->root, false, false);
        pthread_mutex_unlock(&t->lock);
        segment_free_tree(t);
        return;
    }
    pthread_mutex_unlock(&t->lock);
}

void xray_segment_end(struct xray_segment *seg)
{
    xray__segment_end(seg, 0, NULL);
}

void xray_segment_end_at(struct xray_segment *seg, uint64_t end_us)
{
    xray__segment_end(seg, end_us, NULL);
}

int xray_segment_flush_in_progress(struct xray_segment *seg)
{
    if (seg == NULL || !seg->trace->sampled)
        return 0;
    struct xray__trace *t = seg->trace;
    pthread_mutex_lock(&t->lock);
    int rc = seg->ended ? 0 : xray__emitter_send_tree(t->rec, seg, seg->is_sub, true);
    if (!seg->ended && rc == 0)
        XRAY__COUNT(t->rec, in_progress_sent);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* Ids, the trace and the decision are fixed at begin: no lock needed to read them. */
const char *xray_segment_trace_id(const struct xray_segment *seg)
{
    return seg ? seg->trace->trace_id : NULL;
}

const char *xray_segment_id(const struct xray_segment *seg)
{
    return seg ? seg->id : NULL;
}

bool xray_segment_is_sampled(const struct xray_segment *seg)
{
    return seg ? seg->trace->sampled : false;
}

bool xray_segment_is_subsegment(const struct xray_segment *seg)
{
    return seg ? seg->is_sub : false;
}
