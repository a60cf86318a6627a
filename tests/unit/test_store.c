/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded store: documents by trace, replacement of in-progress versions, streamed
 * subsegments kept apart, eviction of whole oldest traces inside the byte budget. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "trace/store.h"

#define T1 "1-5759e988-bd862e3fe1be46a994272793"
#define T2 "1-5759e988-bd862e3fe1be46a994272794"

static int put(struct store *st, const char *trace, const char *id, bool in_progress,
               const char *doc, uint64_t now)
{
    return store_put(st, trace, id, in_progress, 1.5, in_progress ? 0 : 2.5, doc, strlen(doc), now);
}

/* Collects the ids of trace's documents, comma-separated, into out. */
static int ids_of(struct store *st, const char *trace, char *out, size_t n)
{
    struct store_iter it;
    struct store_doc_view v;
    out[0] = '\0';
    int rc = store_find(st, trace, &it);
    while (rc == 0 && store_next(&it, &v)) {
        size_t used = strlen(out);
        snprintf(out + used, n - used, "%s%s", used ? "," : "", v.id);
    }
    return rc;
}

static void test_store_put_find(void **state)
{
    (void)state;
    struct store *st = store_create(1 << 20);
    assert_non_null(st);
    const char *doc = "{\"id\":\"a1\",\"trace_id\":\"" T1 "\",\"name\":\"x\\\"y\"}";
    assert_int_equal(put(st, T1, "a1", false, doc, 10), 0);
    struct store_iter it;
    struct store_doc_view v;
    assert_int_equal(store_find(st, T1, &it), 0);
    assert_true(store_next(&it, &v));
    assert_string_equal(v.id, "a1");
    assert_int_equal(v.len, strlen(doc));
    assert_memory_equal(v.doc, doc, v.len);
    assert_int_equal(v.doc[v.len], '\0');
    assert_true(v.start == 1.5 && v.end == 2.5);
    assert_false(v.in_progress);
    assert_false(store_next(&it, &v));
    assert_int_equal(store_find(st, T2, &it), -ENOENT);
    assert_int_equal(store_find(st, "", &it), -ENOENT);
    assert_int_equal(put(st, "", "a1", false, "{}", 1), -EINVAL);
    assert_int_equal(put(st, T1, "", false, "{}", 1), -EINVAL);
    assert_int_equal(put(st, T1 "0", "a1", false, "{}", 1), -EINVAL); /* 36 characters */
    struct store_stats s;
    store_get_stats(st, &s);
    assert_int_equal(s.traces, 1);
    assert_int_equal(s.documents, 1);
    store_destroy(st);
}

static void test_store_in_progress_replaced(void **state)
{
    (void)state;
    struct store *st = store_create(1 << 20);
    char ids[256];
    assert_int_equal(put(st, T1, "root", true, "{\"in_progress\":true}", 1), 0);
    assert_int_equal(put(st, T1, "other", false, "{\"other\":1}", 2), 0);
    assert_int_equal(put(st, T1, "root", false, "{\"end_time\":2}", 3), 0);
    /* A late in-progress version never replaces the complete one. */
    assert_int_equal(put(st, T1, "root", true, "{\"in_progress\":true}", 4), 0);
    assert_int_equal(ids_of(st, T1, ids, sizeof(ids)), 0);
    assert_string_equal(ids, "root,other"); /* the complete one took the first one's place */
    struct store_iter it;
    struct store_doc_view v;
    store_find(st, T1, &it);
    store_next(&it, &v);
    assert_string_equal(v.doc, "{\"end_time\":2}");
    assert_false(v.in_progress);
    struct store_stats s;
    store_get_stats(st, &s);
    assert_int_equal(s.documents, 2);
    assert_int_equal(s.replaced, 1);
    assert_int_equal(s.stale, 1);
    store_destroy(st);
}

static void test_store_streamed_subsegments_kept(void **state)
{
    (void)state;
    struct store *st = store_create(1 << 20);
    char ids[256];
    assert_int_equal(put(st, T1, "seg", true, "{\"in_progress\":true}", 1), 0);
    assert_int_equal(put(st, T1, "sub1", false, "{\"type\":\"subsegment\"}", 2), 0);
    assert_int_equal(put(st, T1, "sub2", false, "{\"type\":\"subsegment\"}", 3), 0);
    assert_int_equal(put(st, T2, "sub1", false, "{\"type\":\"subsegment\"}", 3), 0);
    assert_int_equal(put(st, T1, "seg", false, "{}", 4), 0);
    assert_int_equal(ids_of(st, T1, ids, sizeof(ids)), 0);
    assert_string_equal(ids, "seg,sub1,sub2");
    assert_int_equal(ids_of(st, T2, ids, sizeof(ids)), 0);
    assert_string_equal(ids, "sub1");
    store_destroy(st);
}

static void test_store_eviction_order(void **state)
{
    (void)state;
    char doc[1000];
    memset(doc, 'x', sizeof(doc) - 1);
    doc[sizeof(doc) - 1] = '\0';
    struct store *st = store_create(16 * 1024);
    struct store_stats s;
    char trace[40];
    /* Trace 0 gets a second document late: eviction still goes by first-seen time. */
    for (int i = 0; i < 30; i++) {
        snprintf(trace, sizeof(trace), "1-00000000-%024d", i);
        assert_int_equal(put(st, trace, "a", false, doc, (uint64_t)i), 0);
        if (i == 5)
            assert_int_equal(put(st, "1-00000000-000000000000000000000000", "b", false, doc, 5), 0);
        store_get_stats(st, &s);
        assert_true(s.bytes_used <= s.max_bytes);
    }
    assert_true(s.evicted_traces > 0);
    assert_int_equal(s.traces, 30 - s.evicted_traces);
    assert_int_equal(s.evicted_documents, s.evicted_traces + 1); /* trace 0 had two */
    struct store_iter it;
    for (int i = 0; i < 30; i++) {
        snprintf(trace, sizeof(trace), "1-00000000-%024d", i);
        int want = (uint64_t)i < s.evicted_traces ? -ENOENT : 0;
        assert_int_equal(store_find(st, trace, &it), want);
    }
    store_destroy(st);
}

static void test_store_too_big(void **state)
{
    (void)state;
    struct store *st = store_create(8192);
    char *doc = malloc(9000);
    memset(doc, 'x', 9000);
    assert_int_equal(put(st, T1, "a", false, "{}", 1), 0);
    assert_int_equal(store_put(st, T2, "b", false, 0, 0, doc, 9000, 2), XRAY_ETOOBIG);
    struct store_iter it;
    assert_int_equal(store_find(st, T1, &it), 0); /* nothing was evicted for it */
    struct store_stats s;
    store_get_stats(st, &s);
    assert_int_equal(s.evicted_traces, 0);
    free(doc);
    store_destroy(st);
}

/* Random puts and replacements: the budget holds after every call, and every count
 * matches what iteration finds. */
static void test_store_budget_never_exceeded(void **state)
{
    (void)state;
    struct store *st = store_create(64 * 1024);
    static char doc[3000];
    memset(doc, 'y', sizeof(doc));
    unsigned seed = 7;
    for (int i = 0; i < 5000; i++) {
        seed = seed * 1103515245u + 12345u;
        char trace[40], id[20];
        snprintf(trace, sizeof(trace), "1-00000000-%024u", (seed >> 8) % 200);
        snprintf(id, sizeof(id), "%016u", (seed >> 4) % 5);
        size_t len = (seed >> 16) % sizeof(doc);
        assert_int_equal(store_put(st, trace, id, (seed & 1) != 0, 1, 2, doc, len, (uint64_t)i), 0);
        struct store_stats s;
        store_get_stats(st, &s);
        assert_true(s.bytes_used <= s.max_bytes);
    }
    struct store_stats s;
    store_get_stats(st, &s);
    size_t docs = 0, traces = 0;
    for (int t = 0; t < 200; t++) {
        char trace[40];
        snprintf(trace, sizeof(trace), "1-00000000-%024d", t);
        struct store_iter it;
        struct store_doc_view v;
        if (store_find(st, trace, &it) != 0)
            continue;
        traces++;
        while (store_next(&it, &v))
            docs++;
    }
    assert_int_equal(traces, s.traces);
    assert_int_equal(docs, s.documents);
    store_destroy(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_put_find),
        cmocka_unit_test(test_store_in_progress_replaced),
        cmocka_unit_test(test_store_streamed_subsegments_kept),
        cmocka_unit_test(test_store_eviction_order),
        cmocka_unit_test(test_store_too_big),
        cmocka_unit_test(test_store_budget_never_exceeded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
