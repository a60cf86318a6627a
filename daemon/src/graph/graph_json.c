/* SPDX-License-Identifier: Apache-2.0 */
/* Writes GetServiceGraph's "Services" for a time range: every node with statistics in
 * the range, or an edge in it from or to it (so every ReferenceId an edge names is
 * listed), summed over its minutes. Reads the storage, never changes it.
 *
 * A minute is in [start, end) when the two overlap; StartTime and EndTime are the
 * first minute's start and the last one's end, clipped to the range. A client node has
 * no statistics of its own: it shows its edges only, as X-Ray's do. Root is computed,
 * not remembered: a node is a root in the range when a client edge into it is. */
#include "graph/graph_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

struct graph_json_sum {
    uint64_t ok, error, throttle, fault;
    double seconds;
    uint32_t lo, hi; /* minutes seen, when any */
    bool any;
    struct histogram h;
    struct histogram_entry slots[HISTOGRAM_SLOTS];
};

struct graph_json {
    struct buf *out;
    double start, end;
    int rc;
};

static void graph_json_sum_init(struct graph_json_sum *s)
{
    memset(s, 0, offsetof(struct graph_json_sum, h));
    histogram_init_fixed(&s->h, s->slots);
}

static bool graph_json_in(const struct graph_json *w, uint32_t minute)
{
    return 60.0 * minute < w->end && 60.0 * ((double)minute + 1) > w->start;
}

static bool graph_json_series_in(const struct graph_json *w, const struct graph_series *s)
{
    for (const struct graph_block *b = s->newest; b != NULL; b = b->older) {
        if (60.0 * ((double)b->minute + 1) <= w->start)
            break; /* older ones are out too */
        if (graph_json_in(w, b->minute))
            return true;
    }
    return false;
}

static void graph_json_span(struct graph_json_sum *s, uint32_t minute)
{
    if (!s->any || minute < s->lo)
        s->lo = minute;
    if (!s->any || minute > s->hi)
        s->hi = minute;
    s->any = true;
}

/* Adds s's in-range blocks to sum; counts only span the time when counts is false. */
static void graph_json_series_sum(const struct graph_json *w, const struct graph_series *s,
                                  struct graph_json_sum *sum, bool counts)
{
    for (const struct graph_block *b = s->newest; b != NULL; b = b->older) {
        if (60.0 * ((double)b->minute + 1) <= w->start)
            break;
        if (!graph_json_in(w, b->minute))
            continue;
        graph_json_span(sum, b->minute);
        if (!counts)
            continue;
        sum->ok += b->c.ok;
        sum->error += b->c.error;
        sum->throttle += b->c.throttle;
        sum->fault += b->c.fault;
        sum->seconds += b->c.seconds;
        /* Cannot fail: the scratch histogram has room for every insertion. */
        histogram_merge(&sum->h, &b->c.h);
    }
}

static bool graph_json_listed(const struct graph_json *w, const struct graph_node *n)
{
    if (graph_json_series_in(w, &n->s))
        return true;
    for (const struct graph_edge *e = n->out; e != NULL; e = e->out_next)
        if (graph_json_series_in(w, &e->s))
            return true;
    for (const struct graph_edge *e = n->in; e != NULL; e = e->in_next)
        if (graph_json_series_in(w, &e->s))
            return true;
    return false;
}

static bool graph_json_root(const struct graph_json *w, const struct graph_node *n)
{
    for (const struct graph_edge *e = n->in; e != NULL; e = e->in_next)
        if ((e->src->flags & GRAPH_NODE_CLIENT) && graph_json_series_in(w, &e->s))
            return true;
    return false;
}

static void graph_json_str(struct graph_json *w, const char *s)
{
    if (w->rc == 0)
        w->rc = buf_append_str(w->out, s);
}

static void graph_json_quoted(struct graph_json *w, const char *s)
{
    if (w->rc == 0)
        w->rc = buf_append_json_string(w->out, s, strlen(s));
}

static void graph_json_u64(struct graph_json *w, const char *key, uint64_t v)
{
    if (w->rc == 0)
        w->rc = buf_appendf(w->out, "%s%" PRIu64, key, v);
}

static void graph_json_seconds(struct graph_json *w, const char *key, double v)
{
    graph_json_str(w, key);
    if (w->rc == 0)
        w->rc = histogram_write_seconds(w->out, v);
}

/* "StartTime" and "EndTime" of the minutes in sum, clipped to the range. */
static void graph_json_times(struct graph_json *w, const struct graph_json_sum *s)
{
    double lo = s->any ? 60.0 * s->lo : w->start, hi = s->any ? 60.0 * ((double)s->hi + 1) : w->end;
    graph_json_seconds(w, ",\"StartTime\":", lo > w->start ? lo : w->start);
    graph_json_seconds(w, ",\"EndTime\":", hi < w->end ? hi : w->end);
}

/* SummaryStatistics and ResponseTimeHistogram (and, for a node, DurationHistogram:
 * the same durations, the segment's own). */
static void graph_json_stats(struct graph_json *w, const struct graph_json_sum *s, bool node)
{
    graph_json_u64(w, ",\"SummaryStatistics\":{\"OkCount\":", s->ok);
    graph_json_u64(w, ",\"ErrorStatistics\":{\"ThrottleCount\":", s->throttle);
    graph_json_u64(w, ",\"OtherCount\":", s->error);
    graph_json_u64(w, ",\"TotalCount\":", s->throttle + s->error);
    graph_json_u64(w, "},\"FaultStatistics\":{\"OtherCount\":", s->fault);
    graph_json_u64(w, ",\"TotalCount\":", s->fault);
    graph_json_u64(w, "},\"TotalCount\":", s->ok + s->error + s->throttle + s->fault);
    graph_json_seconds(w, ",\"TotalResponseTime\":", s->seconds);
    graph_json_str(w, "}");
    for (int i = node ? 0 : 1; i < 2; i++) {
        graph_json_str(w, i == 0 ? ",\"DurationHistogram\":" : ",\"ResponseTimeHistogram\":");
        if (w->rc == 0)
            w->rc = histogram_write(&s->h, w->out);
    }
}

static void graph_json_edge(struct graph_json *w, const struct graph_edge *e, bool first)
{
    struct graph_json_sum sum;
    graph_json_sum_init(&sum);
    graph_json_series_sum(w, &e->s, &sum, true);
    graph_json_u64(w, first ? "{\"ReferenceId\":" : ",{\"ReferenceId\":", e->dst->ref_id);
    graph_json_times(w, &sum);
    graph_json_stats(w, &sum, false);
    graph_json_str(w, ",\"Aliases\":[]}");
}

static void graph_json_node(struct graph_json *w, const struct graph_node *n, bool first)
{
    struct graph_json_sum sum;
    graph_json_sum_init(&sum);
    graph_json_series_sum(w, &n->s, &sum, true);
    bool own = sum.any;
    for (const struct graph_edge *e = n->out; e != NULL; e = e->out_next)
        graph_json_series_sum(w, &e->s, &sum, false);
    for (const struct graph_edge *e = n->in; e != NULL; e = e->in_next)
        graph_json_series_sum(w, &e->s, &sum, false);

    graph_json_u64(w, first ? "{\"ReferenceId\":" : ",{\"ReferenceId\":", n->ref_id);
    graph_json_str(w, ",\"Name\":");
    graph_json_quoted(w, n->name);
    graph_json_str(w, ",\"Names\":[");
    graph_json_quoted(w, n->name);
    graph_json_str(w, graph_json_root(w, n) ? "],\"Root\":true,\"Type\":"
                                            : "],\"Root\":false,\"Type\":");
    /* X-Ray shows a service without origin with no type; null is what botocore reads
     * as absent. */
    if (n->type[0] == '\0')
        graph_json_str(w, "null");
    else
        graph_json_quoted(w, n->type);
    graph_json_str(w, (n->flags & GRAPH_NODE_ACTIVE) ? ",\"State\":\"active\""
                                                     : ",\"State\":\"unknown\"");
    graph_json_times(w, &sum);
    graph_json_str(w, ",\"Edges\":[");
    bool firste = true;
    for (const struct graph_edge *e = n->out; e != NULL; e = e->out_next) {
        if (!graph_json_series_in(w, &e->s))
            continue;
        graph_json_edge(w, e, firste);
        firste = false;
    }
    graph_json_str(w, "]");
    if (own || !(n->flags & GRAPH_NODE_CLIENT))
        graph_json_stats(w, &sum, true);
    graph_json_str(w, "}");
}

int graph_json_services(const struct graph_table *t, double start_s, double end_s, size_t first,
                        size_t limit, struct buf *out, size_t *next)
{
    struct graph_json w = {.out = out, .start = start_s, .end = end_s};
    size_t index = 0, written = 0;
    *next = 0;
    graph_json_str(&w, "\"Services\":[");
    for (const struct graph_node *n = t->first; n != NULL && w.rc == 0; n = n->next) {
        if (!graph_json_listed(&w, n))
            continue;
        if (index++ < first)
            continue;
        if (limit != 0 && written == limit) {
            *next = first + written;
            break;
        }
        graph_json_node(&w, n, written == 0);
        written++;
    }
    graph_json_str(&w, "]");
    if (w.rc == XRAY_ETOOBIG)
        return -ENOSPC;
    return w.rc;
}
