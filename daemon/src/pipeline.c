/* SPDX-License-Identifier: Apache-2.0 */
/* pipeline_process(): the worker's stage order. Today: scan the document in one pass
 * and record on it what the loop needs to route it (valid or why not, its ids and
 * times). Each stage added later reads the same segment_view; nothing re-parses. */
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "segment/scan.h"

struct pipeline {
    struct stats *stats;
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
    free(p);
}

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
}
