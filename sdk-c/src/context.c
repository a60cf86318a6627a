/* SPDX-License-Identifier: Apache-2.0 */
/* The thread's current (sub)segment: one pointer per thread, set by the context calls
 * and swapped by event-loop code that carries segments in its own request state. It
 * borrows: nothing here keeps a segment alive, and ending a segment through any other
 * call leaves the pointer to the caller to clear (xray_context_swap). */
#include "internal.h"

static __thread struct xray_segment *context_current;

struct xray_segment *xray_context_current(void)
{
    return context_current;
}

struct xray_segment *xray_context_swap(struct xray_segment *seg)
{
    struct xray_segment *prev = context_current;
    context_current = seg;
    return prev;
}

struct xray_segment *xray_context_begin_segment(struct xray_recorder *rec,
                                                const struct xray_segment_options *opts)
{
    struct xray_segment *seg = xray_segment_begin(rec, opts);
    if (seg != NULL)
        context_current = seg;
    return seg;
}

struct xray_segment *xray_context_begin_subsegment(const char *name)
{
    if (context_current == NULL) {
        xray__recorder_context_missing("xray_context_begin_subsegment");
        return NULL;
    }
    struct xray_segment *sub = xray_subsegment_begin(context_current, name);
    if (sub != NULL)
        context_current = sub;
    return sub;
}

int xray_context_end(void)
{
    if (context_current == NULL) {
        xray__recorder_context_missing("xray_context_end");
        return XRAY_SDK_ENOCONTEXT;
    }
    struct xray_segment *next = NULL;
    xray__segment_end(context_current, 0, &next);
    context_current = next;
    return 0;
}

void xray__context_forget(struct xray_segment *seg)
{
    if (context_current == seg)
        context_current = NULL;
}
