/* SPDX-License-Identifier: Apache-2.0 */
/* context.c and the tree's lock: the thread's current segment through nesting, the
 * context-missing policies, event-loop style swapping between interleaved requests,
 * and a multi-threaded stress: threads with their own requests, and threads sharing
 * one segment while its subsegments stream. Run under ThreadSanitizer in CI. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "sdk_rig.h"

static void test_context_nesting(void **state)
{
    (void)state;
    struct xray_recorder *rec = rig_recorder(NULL);
    assert_null(xray_context_current());
    struct xray_segment *seg = xray_context_begin_segment(rec, NULL);
    assert_ptr_equal(xray_context_current(), seg);
    struct xray_segment *a = xray_context_begin_subsegment("a");
    assert_ptr_equal(xray_context_current(), a);
    struct xray_segment *b = xray_context_begin_subsegment("b");
    assert_ptr_equal(xray_context_current(), b);
    assert_int_equal(xray_context_end(), 0);
    assert_ptr_equal(xray_context_current(), a);
    assert_int_equal(xray_context_end(), 0);
    assert_ptr_equal(xray_context_current(), seg);
    assert_int_equal(xray_context_end(), 0);
    assert_null(xray_context_current());
    assert_int_equal(rig.n, 1);
    json_t *d = rig_doc(0);
    json_t *ja = json_array_get(json_object_get(d, "subsegments"), 0);
    assert_string_equal(json_string_value(json_object_get(ja, "name")), "a");
    json_t *jb = json_array_get(json_object_get(ja, "subsegments"), 0);
    assert_string_equal(json_string_value(json_object_get(jb, "name")), "b");
    json_decref(d);
    rig_reset();
    xray_recorder_destroy(rec);
}

static int missing_calls;
static char missing_what[64];

static void on_missing(void *ctx, const char *what)
{
    (void)ctx;
    missing_calls++;
    snprintf(missing_what, sizeof(missing_what), "%s", what);
}

static void test_context_missing_policies(void **state)
{
    (void)state;
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.log_level = XRAY_LOG_SILENT;
    cfg.sampler = XRAY_SAMPLER_ALL;
    cfg.context_missing = XRAY_CONTEXT_RUNTIME_ERROR;
    cfg.on_context_missing = on_missing;
    struct xray_recorder *rec = rig_recorder(&cfg);
    struct xray_recorder_counters c0, c1;
    xray_recorder_counters(rec, &c0);
    assert_null(xray_context_begin_subsegment("x"));
    assert_int_equal(missing_calls, 1);
    assert_string_equal(missing_what, "xray_context_begin_subsegment");
    assert_int_equal(xray_context_end(), XRAY_SDK_ENOCONTEXT);
    assert_int_equal(missing_calls, 2);
    xray_recorder_counters(rec, &c1);
    assert_int_equal(c1.context_missing, c0.context_missing + 2);
    xray_recorder_destroy(rec);

    cfg.context_missing = XRAY_CONTEXT_IGNORE_ERROR;
    rec = rig_recorder(&cfg);
    assert_null(xray_context_begin_subsegment("x"));
    assert_int_equal(missing_calls, 2); /* the handler belongs to RUNTIME_ERROR only */
    xray_recorder_destroy(rec);
}

static void test_context_swap_event_loop(void **state)
{
    (void)state;
    struct xray_recorder *rec = rig_recorder(NULL);
    /* Two requests interleaved on one thread, each carried in its own state. */
    struct xray_segment *r1 = xray_segment_begin(rec, NULL);
    struct xray_segment *r2 = xray_segment_begin(rec, NULL);
    assert_null(xray_context_current()); /* begin alone leaves the context alone */
    struct xray_segment *prev = xray_context_swap(r1);
    assert_null(prev);
    struct xray_segment *s1 = xray_context_begin_subsegment("for-r1");
    prev = xray_context_swap(r2);
    assert_ptr_equal(prev, s1);
    struct xray_segment *s2 = xray_context_begin_subsegment("for-r2");
    xray_context_swap(s1);
    assert_int_equal(xray_context_end(), 0);
    assert_ptr_equal(xray_context_current(), r1);
    xray_context_swap(s2);
    assert_int_equal(xray_context_end(), 0);
    assert_ptr_equal(xray_context_current(), r2);
    xray_context_swap(NULL);
    char id1[17];
    strcpy(id1, xray_segment_id(r1));
    xray_segment_end(r2);
    xray_segment_end(r1);
    assert_int_equal(rig.n, 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *d = rig_doc(i);
        bool is_r1 = strcmp(json_string_value(json_object_get(d, "id")), id1) == 0;
        json_t *subs = json_object_get(d, "subsegments");
        assert_int_equal(json_array_size(subs), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(subs, 0), "name")),
                            is_r1 ? "for-r1" : "for-r2");
        json_decref(d);
    }
    rig_reset();
    xray_recorder_destroy(rec);
}

static struct xray_segment *late_sub;

static void *end_late(void *arg)
{
    (void)arg;
    xray_segment_annotate_int(late_sub, "late", 1);
    xray_segment_end(late_sub);
    return NULL;
}

static void test_context_segment_ends_before_its_subsegment(void **state)
{
    (void)state;
    struct xray_recorder *rec = rig_recorder(NULL);
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    late_sub = xray_subsegment_begin(seg, "async");
    xray_segment_end(seg);
    assert_int_equal(rig.n, 0); /* waits for its open subsegment */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, end_late, NULL), 0);
    pthread_join(th, NULL);
    assert_int_equal(rig.n, 1); /* sent by the thread whose end came last */
    json_t *d = rig_doc(0);
    json_t *sub = json_array_get(json_object_get(d, "subsegments"), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(sub, "annotations"), "late")), 1);
    assert_non_null(json_object_get(sub, "end_time"));
    json_decref(d);
    rig_reset();
    xray_recorder_destroy(rec);
}

#define THREADS     8
#define PER_THREAD  300
#define SHARED_SUBS 250

static struct xray_recorder *stress_rec;

static void *own_requests(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        struct xray_segment *seg = xray_context_begin_segment(stress_rec, NULL);
        struct xray_segment *sub = xray_context_begin_subsegment("work");
        xray_segment_annotate_int(sub, "i", i);
        xray_context_begin_subsegment("inner");
        char hdr[XRAY_HEADER_BUF];
        xray_header_for_segment(xray_context_current(), hdr, sizeof(hdr));
        xray_context_end();
        xray_context_end();
        if (xray_context_current() != seg)
            return (void *)1;
        xray_context_end();
        if (xray_context_current() != NULL)
            return (void *)1;
    }
    return NULL;
}

static void test_context_threads_own_requests(void **state)
{
    (void)state;
    stress_rec = rig_recorder(NULL);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, own_requests, NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        assert_null(rc);
    }
    assert_int_equal(rig.n, THREADS * PER_THREAD);
    for (size_t i = 0; i < rig.n; i += 97) {
        json_t *d = rig_doc(i);
        json_t *w = json_array_get(json_object_get(d, "subsegments"), 0);
        assert_string_equal(json_string_value(json_object_get(w, "name")), "work");
        assert_int_equal(json_array_size(json_object_get(w, "subsegments")), 1);
        json_decref(d);
    }
    rig_reset();
    xray_recorder_destroy(stress_rec);
}

static struct xray_segment *shared;

static void *shared_work(void *arg)
{
    (void)arg;
    for (int i = 0; i < SHARED_SUBS; i++) {
        struct xray_segment *sub = xray_subsegment_begin(shared, "part");
        xray_segment_annotate_int(sub, "i", i);
        xray_segment_metadata_string(sub, "app", "k", "v");
        struct xray_segment *inner = xray_subsegment_begin(sub, "inner");
        xray_segment_end(inner);
        xray_segment_annotate_bool(shared, "busy", true);
        xray_segment_end(sub);
    }
    return NULL;
}

/* Counts nodes named name in doc's tree. */
static size_t count_named(json_t *doc, const char *name)
{
    size_t n = 0;
    const char *nm = json_string_value(json_object_get(doc, "name"));
    if (nm && strcmp(nm, name) == 0)
        n++;
    json_t *subs = json_object_get(doc, "subsegments");
    for (size_t i = 0; i < json_array_size(subs); i++)
        n += count_named(json_array_get(subs, i), name);
    return n;
}

static void test_context_threads_share_a_segment(void **state)
{
    (void)state;
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.log_level = XRAY_LOG_SILENT;
    cfg.sampler = XRAY_SAMPLER_ALL;
    cfg.stream_threshold = 20;
    stress_rec = rig_recorder(&cfg);
    shared = xray_segment_begin(stress_rec, NULL);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, shared_work, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    xray_segment_end(shared);
    size_t parts = 0, inners = 0;
    for (size_t i = 0; i < rig.n; i++) {
        json_t *d = rig_doc(i);
        assert_non_null(d);
        parts += count_named(d, "part");
        inners += count_named(d, "inner");
        json_decref(d);
    }
    assert_int_equal(parts, THREADS * SHARED_SUBS);
    assert_int_equal(inners, THREADS * SHARED_SUBS);
    rig_reset();
    xray_recorder_destroy(stress_rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context_nesting),
        cmocka_unit_test(test_context_missing_policies),
        cmocka_unit_test(test_context_swap_event_loop),
        cmocka_unit_test(test_context_segment_ends_before_its_subsegment),
        cmocka_unit_test(test_context_threads_own_requests),
        cmocka_unit_test(test_context_threads_share_a_segment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
