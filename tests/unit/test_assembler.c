/* SPDX-License-Identifier: Apache-2.0 */
/* Trace assembly: documents grouped by trace in arrival order, duplicates and
 * in-progress versions, the four ways a trace completes (idle, root done, evicted,
 * flushed), late documents after a close, the byte budget and the tail hold. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/assembler.h"

#define REC_MAX 512

/* What the closed callback saw of one trace. */
struct closed {
    char trace[40];
    char ids[256]; /* the digests' ids, low 16 bits in hex, comma-separated */
    uint32_t ndocs;
    int held;
    size_t held_bytes;
    uint64_t first_ms, last_ms;
    uint8_t worst, why;
    bool late;
    double root_duration;
};

struct released {
    char trace[40];
    int docs;
};

struct rec {
    struct closed c[REC_MAX];
    int n;
    struct released r[REC_MAX];
    int nr;
};

static struct rec rec;
static struct segment_view view;
static struct assembler_stats st;

static void on_closed(void *ctx, struct assembled_trace *t)
{
    struct rec *r = ctx;
    assert_true(r->n < REC_MAX);
    struct closed *c = &r->c[r->n++];
    memset(c, 0, sizeof(*c));
    snprintf(c->trace, sizeof(c->trace), "%s", t->trace_id);
    uint32_t n = 0;
    for (const struct digest_doc *d = t->docs; d != NULL; d = d->next, n++) {
        size_t used = strlen(c->ids);
        snprintf(c->ids + used, sizeof(c->ids) - used, "%s%" PRIx64, used ? "," : "",
                 d->id & 0xffff);
    }
    assert_int_equal(n, t->ndocs);
    c->ndocs = t->ndocs;
    while (t->held != NULL) {
        struct doc *next = t->held->next;
        free(t->held);
        t->held = next;
        c->held++;
    }
    c->held_bytes = t->held_bytes;
    c->first_ms = t->first_ms;
    c->last_ms = t->last_ms;
    c->worst = t->worst;
    c->why = t->why;
    c->late = t->late;
    c->root_duration = t->root_duration;
}

static void on_release(void *ctx, const char *trace_id, struct doc *docs)
{
    struct rec *r = ctx;
    assert_true(r->nr < REC_MAX);
    struct released *x = &r->r[r->nr++];
    snprintf(x->trace, sizeof(x->trace), "%s", trace_id);
    x->docs = 0;
    while (docs != NULL) {
        struct doc *next = docs->next;
        free(docs);
        docs = next;
        x->docs++;
    }
}

static struct assembler *make(uint64_t window_ms, size_t max_bytes, size_t hold_bytes,
                              size_t tombstones)
{
    memset(&rec, 0, sizeof(rec));
    struct assembler_options o = {
        .window_ms = window_ms,
        .max_bytes = max_bytes,
        .hold_bytes = hold_bytes,
        .tombstones = tombstones,
        .closed = on_closed,
        .ctx = &rec,
    };
    struct assembler *a = assembler_create(&o);
    assert_non_null(a);
    assembler_on_release(a, on_release, &rec);
    return a;
}

static const char *trace(unsigned t)
{
    static char ids[8][40];
    static unsigned next;
    char *s = ids[next++ % 8];
    snprintf(s, 40, "1-65000000-%024x", t);
    return s;
}

/* A segment (parent 0: a root) or, with sub, a streamed subsegment; extra is more JSON
 * members. in_progress leaves out end_time. */
static const char *text(unsigned t, unsigned id, unsigned parent, bool sub, bool in_progress,
                        const char *extra)
{
    static char buf[4096];
    char par[64] = "";
    if (parent != 0)
        snprintf(par, sizeof(par), ",\"parent_id\":\"%016x\"", parent);
    snprintf(buf, sizeof(buf),
             "{\"name\":\"svc%x\",\"id\":\"%016x\",\"trace_id\":\"%s\"%s%s,"
             "\"start_time\":1700000000.0%s%s}",
             id, id, trace(t), par, sub ? ",\"type\":\"subsegment\"" : "",
             in_progress ? ",\"in_progress\":true" : ",\"end_time\":1700000000.25", extra);
    return buf;
}

static enum assembler_result add(struct assembler *a, unsigned t, const char *json, struct doc *doc,
                                 uint64_t now)
{
    int rc = scan_document(json, strlen(json), &view);
    if (rc != 0)
        fail_msg("scan: %s", view.why);
    return assembler_add(a, trace(t), &view, doc, now, now);
}

static struct doc *new_doc(size_t len)
{
    struct doc *d = calloc(1, sizeof(struct doc) + len);
    assert_non_null(d);
    d->len = (uint32_t)len;
    return d;
}

static void stats(struct assembler *a)
{
    assembler_get_stats(a, &st);
}

/* Caller service A (root 0xa) -> B (0xb, parent a1) -> C (0xc, parent b1), plus a
 * streamed subsegment of A; traced calls a1 and b1. */
#define A_CALLS                                                                                    \
    ",\"subsegments\":[{\"name\":\"B\",\"id\":\"00000000000000a1\",\"start_time\":1700000000.0,"   \
    "\"end_time\":1700000000.2,\"namespace\":\"remote\",\"traced\":true}]"
#define B_CALLS                                                                                    \
    ",\"subsegments\":[{\"name\":\"C\",\"id\":\"00000000000000b1\",\"start_time\":1700000000.0,"   \
    "\"end_time\":1700000000.1,\"namespace\":\"remote\",\"traced\":true},"                         \
    "{\"name\":\"DynamoDB\",\"id\":\"00000000000000b2\",\"start_time\":1700000000.0,"              \
    "\"end_time\":1700000000.1,\"namespace\":\"aws\",\"throttle\":true,"                           \
    "\"aws\":{\"table_name\":\"t\"}}]"

static void test_assembler_shuffled_three_services(void **state)
{
    (void)state;
    struct assembler *a = make(1000, 1 << 20, 0, 0);
    assert_int_equal(add(a, 1, text(1, 0xc, 0xb1, false, false, ",\"fault\":true"), NULL, 10),
                     ASSEMBLER_ADDED);
    assert_int_equal(add(a, 1, text(1, 0x5, 0xa, true, false, ""), NULL, 11), ASSEMBLER_ADDED);
    assert_int_equal(add(a, 1, text(1, 0xb, 0xa1, false, false, B_CALLS), NULL, 12),
                     ASSEMBLER_ADDED);
    assert_int_equal(rec.n, 0);
    /* The root comes last: every traced call has its callee, so it closes at once. */
    assert_int_equal(add(a, 1, text(1, 0xa, 0, false, false, A_CALLS), NULL, 13), ASSEMBLER_ADDED);
    assert_int_equal(rec.n, 1);
    assert_string_equal(rec.c[0].trace, trace(1));
    assert_string_equal(rec.c[0].ids, "c,5,b,a");
    assert_int_equal(rec.c[0].ndocs, 4);
    assert_int_equal(rec.c[0].why, ASSEMBLER_ROOT_DONE);
    assert_int_equal(rec.c[0].worst, DIGEST_FAULT);
    assert_int_equal(rec.c[0].first_ms, 10);
    assert_int_equal(rec.c[0].last_ms, 13);
    assert_true(rec.c[0].root_duration == 0.25);
    assert_false(rec.c[0].late);

    /* Another order: root first, then B (its callee C still open), then C. */
    assert_int_equal(add(a, 2, text(2, 0xa, 0, false, false, A_CALLS), NULL, 20), ASSEMBLER_ADDED);
    assert_int_equal(add(a, 2, text(2, 0xb, 0xa1, false, false, B_CALLS), NULL, 21),
                     ASSEMBLER_ADDED);
    assert_int_equal(rec.n, 1);
    assert_int_equal(add(a, 2, text(2, 0xc, 0xb1, false, false, ""), NULL, 22), ASSEMBLER_ADDED);
    assert_int_equal(rec.n, 2);
    assert_string_equal(rec.c[1].ids, "a,b,c");
    assert_int_equal(rec.c[1].worst, DIGEST_THROTTLE); /* B's DynamoDB call */
    stats(a);
    assert_int_equal(st.traces, 0);
    assert_int_equal(st.completed[ASSEMBLER_ROOT_DONE], 2);
    assembler_destroy(a);
}

static void test_assembler_duplicates(void **state)
{
    (void)state;
    struct assembler *a = make(1000, 1 << 20, 1 << 20, 0);
    assert_int_equal(add(a, 1, text(1, 0xb, 0xa1, false, false, ""), new_doc(10), 1),
                     ASSEMBLER_ADDED);
    struct doc *dup = new_doc(10);
    assert_int_equal(add(a, 1, text(1, 0xb, 0xa1, false, false, ""), dup, 2), ASSEMBLER_DUPLICATE);
    free(dup); /* not held: still the caller's */
    assert_int_equal(add(a, 1, text(1, 0xd, 0xa1, true, false, ""), NULL, 3), ASSEMBLER_ADDED);
    assert_int_equal(add(a, 1, text(1, 0xd, 0xa1, true, false, ""), NULL, 4), ASSEMBLER_DUPLICATE);
    stats(a);
    assert_int_equal(st.duplicates, 2);
    assert_int_equal(st.held_bytes, pool_doc_bytes(10));
    assembler_flush(a);
    assert_int_equal(rec.n, 1);
    assert_string_equal(rec.c[0].ids, "b,d");
    assert_int_equal(rec.c[0].held, 1);
    assert_int_equal(rec.c[0].why, ASSEMBLER_FLUSHED);
    assembler_destroy(a);
}

/* Many documents in one trace: the id set grows; duplicates are still found. */
static void test_assembler_large_trace(void **state)
{
    (void)state;
    struct assembler *a = make(1000, 64 << 20, 0, 0);
    for (unsigned i = 1; i <= 5000; i++)
        assert_int_equal(add(a, 1, text(1, 0x10000 + i, 0xa, true, false, ""), NULL, i),
                         ASSEMBLER_ADDED);
    assert_int_equal(add(a, 1, text(1, 0x10000 + 2500, 0xa, true, false, ""), NULL, 9),
                     ASSEMBLER_DUPLICATE);
    assert_int_equal(add(a, 1, text(1, 0x10000 + 5000, 0xa, true, true, ""), NULL, 9),
                     ASSEMBLER_DUPLICATE);
    assembler_flush(a);
    assert_int_equal(rec.c[0].ndocs, 5000);
    stats(a);
    assert_int_equal(st.duplicates, 2);
    assembler_destroy(a);
}

static void test_assembler_in_progress(void **state)
{
    (void)state;
    struct assembler *a = make(1000, 1 << 20, 1 << 20, 0);
    /* In progress, then complete: counted once, the first one replaced. */
    assert_int_equal(add(a, 1, text(1, 0xa, 0, false, true, ""), new_doc(5), 1), ASSEMBLER_ADDED);
    stats(a);
    assert_int_equal(st.traces, 1);
    assert_int_equal(rec.n, 0);
    assert_int_equal(add(a, 1, text(1, 0xa, 0, false, false, ""), new_doc(5), 2), ASSEMBLER_ADDED);
    assert_int_equal(rec.n, 1); /* the root is done */
    assert_string_equal(rec.c[0].ids, "a");
    assert_int_equal(rec.c[0].ndocs, 1);
    assert_int_equal(rec.c[0].held, 2); /* in-progress documents are held too */
    assert_int_equal(rec.c[0].held_bytes, 2 * pool_doc_bytes(5));
    stats(a);
    assert_int_equal(st.replaced, 1);
    assert_int_equal(st.held_bytes, 0);

    /* Complete, then a stale in-progress copy: a duplicate, not held. */
    assert_int_equal(add(a, 2, text(2, 0xb, 0xa1, false, false, ""), NULL, 3), ASSEMBLER_ADDED);
    struct doc *stale = new_doc(5);
    assert_int_equal(add(a, 2, text(2, 0xb, 0xa1, false, true, ""), stale, 4), ASSEMBLER_DUPLICATE);
    free(stale);
    /* An in-progress document alone keeps its trace open and fresh, but adds no digest. */
    assert_int_equal(add(a, 3, text(3, 0xe, 0xa1, false, true, ""), NULL, 5), ASSEMBLER_ADDED);
    assembler_sweep(a, 1004);
    assert_int_equal(rec.n, 2);
    assert_string_equal(rec.c[1].trace, trace(2));
    assert_string_equal(rec.c[1].ids, "b");
    assembler_sweep(a, 1005);
    assert_int_equal(rec.n, 3);
    assert_int_equal(rec.c[2].ndocs, 0);
    assert_string_equal(rec.c[2].ids, "");
    assert_true(rec.c[2].root_duration == -1);
    stats(a);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.replaced, 1);
    assert_int_equal(st.completed[ASSEMBLER_IDLE], 2);
    assembler_destroy(a);
}

static void test_assembler_root_waits_for_traced_callee(void **state)
{
    (void)state;
    struct assembler *a = make(500, 1 << 20, 0, 0);
    assert_int_equal(add(a, 1, text(1, 0xa, 0, false, false, A_CALLS), NULL, 100), ASSEMBLER_ADDED);
    /* A streamed subsegment or another trace's segment does not answer call a1. */
    assert_int_equal(add(a, 1, text(1, 0x5, 0xa1, true, false, ""), NULL, 101), ASSEMBLER_ADDED);
    assert_int_equal(add(a, 2, text(2, 0xb, 0xa1, false, false, ""), NULL, 102), ASSEMBLER_ADDED);
    assembler_sweep(a, 600);
    assert_int_equal(rec.n, 0);
    assert_int_equal(add(a, 1, text(1, 0xb, 0xa1, false, false, ""), NULL, 300), ASSEMBLER_ADDED);
    assert_int_equal(rec.n, 1);
    assert_string_equal(rec.c[0].ids, "a,5,b");
    assert_int_equal(rec.c[0].why, ASSEMBLER_ROOT_DONE);

    /* The callee never comes: the trace completes when idle. */
    assert_int_equal(add(a, 3, text(3, 0xa, 0, false, false, A_CALLS), NULL, 400), ASSEMBLER_ADDED);
    assembler_sweep(a, 899);
    assert_int_equal(rec.n, 2); /* trace 2, idle since 102 */
    assert_string_equal(rec.c[1].trace, trace(2));
    assembler_sweep(a, 900);
    assert_int_equal(rec.n, 3);
    assert_string_equal(rec.c[2].trace, trace(3));
    assert_int_equal(rec.c[2].why, ASSEMBLER_IDLE);
    assembler_destroy(a);
}

static void test_assembler_idle_window_boundary(void **state)
{
    (void)state;
    struct assembler *a = make(500, 1 << 20, 0, 0);
    add(a, 1, text(1, 0x1, 0xf, true, false, ""), NULL, 1000);
    add(a, 2, text(2, 0x2, 0xf, true, false, ""), NULL, 1100);
    add(a, 1, text(1, 0x3, 0xf, true, false, ""), NULL, 1200); /* trace 1 active again */
    assembler_sweep(a, 1599);
    assert_int_equal(rec.n, 0);
    assembler_sweep(a, 1600); /* trace 2: 1100 + 500 */
    assert_int_equal(rec.n, 1);
    assert_string_equal(rec.c[0].trace, trace(2));
    assembler_sweep(a, 1699);
    assert_int_equal(rec.n, 1);
    assembler_sweep(a, 1700);
    assert_int_equal(rec.n, 2);
    assert_string_equal(rec.c[1].ids, "1,3");
    assert_int_equal(rec.c[1].first_ms, 1000);
    assert_int_equal(rec.c[1].last_ms, 1200);
    stats(a);
    assert_int_equal(st.completed[ASSEMBLER_IDLE], 2);
    assert_int_equal(st.traces, 0);
    assembler_destroy(a);
}

static void test_assembler_late_documents(void **state)
{
    (void)state;
    struct assembler *a = make(500, 1 << 20, 0, 2);
    add(a, 1, text(1, 0xa, 0, false, false, ""), NULL, 1); /* root done at once */
    assert_int_equal(rec.n, 1);
    assert_false(rec.c[0].late);
    assert_int_equal(add(a, 1, text(1, 0x5, 0xa, true, false, ""), NULL, 2), ASSEMBLER_LATE);
    assert_int_equal(add(a, 1, text(1, 0x6, 0xa, true, false, ""), NULL, 3), ASSEMBLER_LATE);
    assert_int_equal(add(a, 1, text(1, 0x6, 0xa, true, false, ""), NULL, 4), ASSEMBLER_DUPLICATE);
    stats(a);
    assert_int_equal(st.late, 2);
    assert_int_equal(st.traces, 1);
    assembler_sweep(a, 503);
    assert_int_equal(rec.n, 2);
    assert_true(rec.c[1].late);
    assert_string_equal(rec.c[1].ids, "5,6");
    assert_int_equal(rec.c[1].why, ASSEMBLER_IDLE);
    assert_true(rec.c[1].root_duration == -1);

    /* A late trace with its root among its documents closes on the root. */
    add(a, 2, text(2, 0x7, 0xb, true, false, ""), NULL, 600);
    assembler_sweep(a, 1100);
    assert_int_equal(add(a, 2, text(2, 0xb, 0, false, false, ""), NULL, 1101), ASSEMBLER_LATE);
    assert_int_equal(rec.n, 4);
    assert_true(rec.c[3].late);
    assert_int_equal(rec.c[3].why, ASSEMBLER_ROOT_DONE);

    /* Two tombstones: trace 1's was overwritten by 2's and 3's, so it is new again. */
    add(a, 3, text(3, 0xc, 0, false, false, ""), NULL, 1200);
    assert_int_equal(rec.n, 5);
    assert_int_equal(add(a, 1, text(1, 0x8, 0xa, true, false, ""), NULL, 1201), ASSEMBLER_ADDED);
    assert_int_equal(add(a, 3, text(3, 0x9, 0xc, true, false, ""), NULL, 1202), ASSEMBLER_LATE);
    stats(a);
    assert_int_equal(st.late, 4);
    assembler_destroy(a);
}

/* A small budget: the oldest traces complete early, and the budget always holds. */
static void test_assembler_eviction(void **state)
{
    (void)state;
    struct assembler *a = make(500, ASSEMBLER_MIN_BYTES, 0, 0);
    stats(a);
    size_t empty = st.bytes_used;
    assert_true(empty < ASSEMBLER_MIN_BYTES);
    unsigned added = 0;
    while (rec.n < 5) {
        added++;
        assert_int_equal(add(a, added, text(added, added, 0xf, true, false, ""), NULL, added),
                         ASSEMBLER_ADDED);
        stats(a);
        assert_true(st.bytes_used <= ASSEMBLER_MIN_BYTES);
        assert_int_equal(st.traces + (size_t)rec.n, added);
    }
    for (int i = 0; i < rec.n; i++) {
        assert_string_equal(rec.c[i].trace, trace((unsigned)i + 1)); /* oldest first */
        assert_int_equal(rec.c[i].why, ASSEMBLER_EVICTED);
        assert_int_equal(rec.c[i].ndocs, 1);
    }
    assert_int_equal(st.completed[ASSEMBLER_EVICTED], 5);
    assert_true(added > 50); /* a trace of one small digest costs well under 1 KiB */

    /* A trace id longer than any X-Ray id is refused. */
    char longid[300];
    memset(longid, '1', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    const char *json = text(1, 1, 0, false, false, "");
    assert_int_equal(scan_document(json, strlen(json), &view), 0);
    assert_int_equal(assembler_add(a, longid, &view, NULL, 1, 1), ASSEMBLER_DROPPED);
    stats(a);
    assert_int_equal(st.dropped, 1);

    assembler_flush(a);
    stats(a);
    assert_int_equal(st.traces, 0);
    assert_int_equal(st.bytes_used, empty);
    assert_int_equal(st.completed[ASSEMBLER_FLUSHED], added - 5);
    assembler_destroy(a);
}

/* One trace outgrowing the budget evicts itself; its next document opens it again, late. */
static void test_assembler_eviction_of_itself(void **state)
{
    (void)state;
    struct assembler *a = make(500, ASSEMBLER_MIN_BYTES, 0, 0);
    unsigned i = 0;
    enum assembler_result r = ASSEMBLER_ADDED;
    while (rec.n == 0) {
        i++;
        r = add(a, 7, text(7, i, 0xf, true, false, ""), NULL, i);
        stats(a);
        assert_true(st.bytes_used <= ASSEMBLER_MIN_BYTES);
    }
    assert_int_equal(r, ASSEMBLER_LATE);
    assert_int_equal(rec.c[0].ndocs, i - 1);
    assert_int_equal(rec.c[0].why, ASSEMBLER_EVICTED);
    assert_int_equal(st.traces, 1);
    assert_int_equal(st.late, 1);
    assembler_flush(a);
    char want[16];
    snprintf(want, sizeof(want), "%x", i & 0xffff);
    assert_string_equal(rec.c[1].ids, want);
    assert_int_equal(rec.c[1].ndocs, 1);
    assert_true(rec.c[1].late);
    assembler_destroy(a);
}

static void test_assembler_tail_hold(void **state)
{
    (void)state;
    size_t one = pool_doc_bytes(100);
    struct assembler *a = make(500, 1 << 20, 2 * one + 50, 0);
    add(a, 1, text(1, 0x1, 0xf, true, false, ""), new_doc(100), 1);
    add(a, 2, text(2, 0x2, 0xf, true, false, ""), new_doc(100), 2);
    assert_int_equal(rec.nr, 0);
    /* Room for two: trace 1 (the oldest holder) gives its document up. */
    add(a, 3, text(3, 0x3, 0xf, true, false, ""), new_doc(100), 3);
    assert_int_equal(rec.nr, 1);
    assert_string_equal(rec.r[0].trace, trace(1));
    assert_int_equal(rec.r[0].docs, 1);
    stats(a);
    assert_int_equal(st.forced, 1);
    assert_int_equal(st.held_bytes, 2 * one);
    assert_int_equal(st.traces, 3); /* released, still open for the graph */

    /* A released trace's next document goes at once, not counted again. */
    add(a, 1, text(1, 0x4, 0xf, true, false, ""), new_doc(100), 4);
    assert_int_equal(rec.nr, 2);
    assert_int_equal(rec.r[1].docs, 1);
    /* A document larger than the hold goes at once with its trace's others. */
    add(a, 2, text(2, 0x5, 0xf, true, false, ""), new_doc(3 * one), 5);
    assert_int_equal(rec.nr, 3);
    assert_string_equal(rec.r[2].trace, trace(2));
    assert_int_equal(rec.r[2].docs, 2);
    stats(a);
    assert_int_equal(st.forced, 2);
    assert_int_equal(st.held_bytes, one);

    /* Trace 3 is the oldest holder and the one that needs room: all its documents go. */
    add(a, 4, text(4, 0x6, 0xf, true, false, ""), new_doc(100), 6);
    add(a, 3, text(3, 0x7, 0xf, true, false, ""), new_doc(100), 7);
    assert_int_equal(rec.nr, 4);
    assert_string_equal(rec.r[3].trace, trace(3));
    assert_int_equal(rec.r[3].docs, 2);
    stats(a);
    assert_int_equal(st.forced, 3);
    assert_int_equal(st.held_bytes, one);

    assembler_flush(a);
    assert_int_equal(rec.n, 4);
    for (int i = 0; i < rec.n; i++) /* only trace 4 still held anything */
        assert_int_equal(rec.c[i].held, strcmp(rec.c[i].trace, trace(4)) == 0 ? 1 : 0);
    stats(a);
    assert_int_equal(st.held_bytes, 0);
    assert_int_equal(st.completed[ASSEMBLER_FLUSHED], 4);
    assembler_destroy(a);

    /* No hold at all: every document is released at once. */
    a = make(500, 1 << 20, 0, 0);
    assert_int_equal(add(a, 1, text(1, 0x1, 0xf, true, false, ""), new_doc(10), 1),
                     ASSEMBLER_ADDED);
    assert_int_equal(rec.nr, 1);
    stats(a);
    assert_int_equal(st.forced, 1);
    assert_int_equal(st.held_bytes, 0);
    assembler_flush(a);
    assembler_destroy(a);
}

static void test_assembler_flush(void **state)
{
    (void)state;
    struct assembler *a = make(0, 0, 1 << 20, 0);
    stats(a);
    size_t empty = st.bytes_used;
    add(a, 1, text(1, 0x1, 0xf, true, false, ""), new_doc(1), 1);
    add(a, 2, text(2, 0x2, 0xf, true, false, ",\"error\":true"), NULL, 2);
    add(a, 3, text(3, 0x3, 0xf, true, true, ""), new_doc(1), 3);
    assembler_sweep(a, 9999); /* the default window is 10 s */
    assert_int_equal(rec.n, 0);
    stats(a);
    assert_int_equal(st.traces, 3);
    assert_true(st.bytes_used > empty);
    assembler_flush(a);
    assert_int_equal(rec.n, 3);
    assert_string_equal(rec.c[0].trace, trace(1));
    assert_int_equal(rec.c[0].held, 1);
    assert_int_equal(rec.c[1].worst, DIGEST_ERROR);
    assert_int_equal(rec.c[2].held, 1);
    assert_int_equal(rec.c[2].ndocs, 0);
    stats(a);
    assert_int_equal(st.completed[ASSEMBLER_FLUSHED], 3);
    assert_int_equal(st.traces, 0);
    assert_int_equal(st.bytes_used, empty);
    assert_int_equal(st.held_bytes, 0);
    assembler_flush(a); /* nothing left: nothing happens */
    assert_int_equal(rec.n, 3);
    assembler_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assembler_shuffled_three_services),
        cmocka_unit_test(test_assembler_duplicates),
        cmocka_unit_test(test_assembler_large_trace),
        cmocka_unit_test(test_assembler_in_progress),
        cmocka_unit_test(test_assembler_root_waits_for_traced_callee),
        cmocka_unit_test(test_assembler_idle_window_boundary),
        cmocka_unit_test(test_assembler_late_documents),
        cmocka_unit_test(test_assembler_eviction),
        cmocka_unit_test(test_assembler_eviction_of_itself),
        cmocka_unit_test(test_assembler_tail_hold),
        cmocka_unit_test(test_assembler_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
