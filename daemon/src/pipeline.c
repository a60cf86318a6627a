/* SPDX-License-Identifier: Apache-2.0 */
/* pipeline_process(): the worker's stage order. Scan the document in one pass and
 * record on it what the loop needs to route it (valid or why not, its ids and times);
 * then, when on, the sampling decision (after metrics and the graph, once they land:
 * they must see every received document). Each stage reads the same segment_view;
 * nothing re-parses. */
#include "pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "error.h"
#include "segment/scan.h"

#define PIPELINE_ATTR_MAX 512  /* a decoded name, origin or method; longer ones are cut */
#define PIPELINE_URL_MAX  2048 /* a decoded URL; the path of a longer one is cut */

struct pipeline {
    struct stats *stats;
    struct decision *decision; /* NULL: no sampling stage */
    uint64_t epoch0_ms;        /* wall clock when sampling was enabled ... */
    uint64_t hr0_ns;           /* ... and uv_hrtime() then: now = epoch0 + elapsed */
    char name[PIPELINE_ATTR_MAX], origin[PIPELINE_ATTR_MAX], method[PIPELINE_ATTR_MAX];
    char url[PIPELINE_URL_MAX];
    struct segment_view view; /* reused for every document: ~22 KB, no per-doc allocation */
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
    if (p != NULL)
        decision_destroy(p->decision);
    free(p);
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

static void pipeline_decide(struct pipeline *p, struct doc *doc, const struct segment_view *v);

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

void pipeline_process(struct doc *doc, void *pipeline)
{
    struct pipeline *p = pipeline;
    struct segment_view *v = &p->view;
    int rc = scan_document(doc->data, doc->len, v);
    if (rc != 0) {
        doc->reject = (int16_t)pipeline_reject_reason(rc);
        return;
    }
    doc->reject = -1;
    doc->flags = (uint8_t)((v->seg.in_progress ? DOC_IN_PROGRESS : 0) |
                           (v->subsegment ? DOC_SUBSEGMENT : 0));
    doc->start_time = v->seg.start_time;
    doc->end_time = v->seg.has_end_time ? v->seg.end_time : 0;
    pipeline_copy_id(doc->trace_id, sizeof(doc->trace_id), &v->seg.trace_id);
    pipeline_copy_id(doc->id, sizeof(doc->id), &v->seg.id);
    /* Later stages (assembly, the graph, metrics) go here: they see every document. */
    if (p->decision != NULL)
        pipeline_decide(p, doc, v);
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

static void pipeline_decide(struct pipeline *p, struct doc *doc, const struct segment_view *v)
{
    uint64_t now_ms = pipeline_now_ms(p);
    int keep = decision_lookup(p->decision, doc->trace_id, now_ms);
    if (keep < 0) {
        struct xray_sampling_request req;
        pipeline_request(p, v, &req);
        keep = decision_decide(p->decision, doc->trace_id, &req, now_ms);
    }
    if (!keep)
        doc->reject = PIPELINE_SAMPLED_OUT;
}
