/* SPDX-License-Identifier: Apache-2.0 */
/* upstream/batcher.c with explicit times: the 50-document cut, the 1 s rule, the
 * byte bound, force, and that documents leave in the order they came. Then the same
 * batching inside the upstream core (upstream.c) on a real loop with a scripted
 * sender: concurrency, the 1 s timer, drain, close, retries (backoff, Retry-After,
 * attempts and time budgets, the 400 split, the give-up hook) and how each document
 * is counted — with every document back in the pool at the end of every test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "upstream/batcher.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ingest/pool.h"
#include "upstream/upstream.h"

#define DOCS_MAX 400

static struct doc *docs[DOCS_MAX];

static struct doc *mkdoc(unsigned i, uint32_t len)
{
    assert_true(i < DOCS_MAX);
    struct doc *d = calloc(1, sizeof(*d) + len);
    assert_non_null(d);
    d->len = len;
    d->received_ms = i; /* the test's sequence number */
    docs[i] = d;
    return d;
}

static void free_list(struct doc *d)
{
    while (d != NULL) {
        struct doc *n = d->next;
        free(d);
        d = n;
    }
}

/* Checks that list holds docs[first..first+n-1] in order, then frees it. */
static void expect_list(struct doc *list, unsigned first, unsigned n)
{
    unsigned i = 0;
    for (struct doc *d = list; d != NULL; d = d->next, i++)
        assert_int_equal(d->received_ms, first + i);
    assert_int_equal(i, n);
    free_list(list);
}

static void test_batcher_take_cuts_at_50(void **state)
{
    struct batcher b;
    unsigned n;
    size_t bytes;
    (void)state;
    batcher_init(&b, NULL);
    assert_int_equal(batcher_next_deadline(&b), BATCHER_NO_DEADLINE);
    for (unsigned i = 0; i < 120; i++)
        batcher_add(&b, mkdoc(i, 100), 5000);
    assert_int_equal(batcher_count(&b), 120);
    assert_int_equal(batcher_bytes(&b), 12000);
    assert_int_equal(batcher_next_deadline(&b), 0); /* full batches are due now */

    expect_list(batcher_take(&b, 5000, false, &n, &bytes), 0, 50);
    assert_int_equal(n, 50);
    assert_int_equal(bytes, 5000);
    expect_list(batcher_take(&b, 5000, false, &n, &bytes), 50, 50);
    assert_int_equal(n, 50);
    /* The 20 left are a partial batch: not due before 1 s. */
    assert_null(batcher_take(&b, 5000, false, &n, &bytes));
    assert_int_equal(n, 0);
    assert_int_equal(batcher_count(&b), 20);
    assert_int_equal(batcher_next_deadline(&b), 6000);
    expect_list(batcher_take(&b, 6000, false, &n, &bytes), 100, 20);
    assert_int_equal(n, 20);
    assert_int_equal(batcher_count(&b), 0);
    assert_int_equal(batcher_bytes(&b), 0);
    assert_int_equal(batcher_next_deadline(&b), BATCHER_NO_DEADLINE);

    /* Exactly 50 is full at once; the 51st starts a new batch with its own clock. */
    for (unsigned i = 0; i < 51; i++)
        batcher_add(&b, mkdoc(i, 10), 7000 + i);
    expect_list(batcher_take(&b, 7050, false, &n, &bytes), 0, 50);
    assert_int_equal(batcher_next_deadline(&b), 8050);
    assert_null(batcher_take(&b, 8049, false, &n, &bytes));
    expect_list(batcher_take(&b, 8050, false, &n, &bytes), 50, 1);
}

static void test_batcher_take_one_second_rule(void **state)
{
    struct batcher b;
    unsigned n;
    size_t bytes;
    (void)state;
    batcher_init(&b, NULL);
    batcher_add(&b, mkdoc(0, 10), 100);
    batcher_add(&b, mkdoc(1, 10), 600);
    batcher_add(&b, mkdoc(2, 10), 1099);
    /* The deadline follows the first document, not the last. */
    assert_int_equal(batcher_next_deadline(&b), 1100);
    assert_null(batcher_take(&b, 1099, false, &n, &bytes));
    expect_list(batcher_take(&b, 1100, false, &n, &bytes), 0, 3);
    assert_int_equal(n, 3);
    assert_int_equal(bytes, 30);

    batcher_add(&b, mkdoc(3, 10), 2000);
    assert_int_equal(batcher_next_deadline(&b), 3000);
    assert_null(batcher_take(&b, 2999, false, &n, &bytes));
    expect_list(batcher_take(&b, 99999, false, &n, &bytes), 3, 1);

    /* A configured wait. */
    struct batcher_limits lim = {.max_wait_ms = 250};
    batcher_init(&b, &lim);
    batcher_add(&b, mkdoc(0, 10), 10);
    assert_int_equal(batcher_next_deadline(&b), 260);
    expect_list(batcher_take(&b, 260, false, &n, &bytes), 0, 1);
}

static void test_batcher_take_byte_bound(void **state)
{
    struct batcher b;
    unsigned n;
    size_t bytes;
    (void)state;
    struct batcher_limits lim = {.max_bytes = 1000};
    batcher_init(&b, &lim);
    batcher_add(&b, mkdoc(0, 400), 0);
    batcher_add(&b, mkdoc(1, 400), 0);
    batcher_add(&b, mkdoc(2, 400), 0);  /* 1200 > 1000: starts the next batch */
    batcher_add(&b, mkdoc(3, 1500), 0); /* larger than the bound: alone */
    batcher_add(&b, mkdoc(4, 600), 0);
    batcher_add(&b, mkdoc(5, 400), 0); /* exactly 1000: full */
    batcher_add(&b, mkdoc(6, 10), 0);
    assert_int_equal(batcher_next_deadline(&b), 0);
    expect_list(batcher_take(&b, 0, false, &n, &bytes), 0, 2);
    assert_int_equal(bytes, 800);
    expect_list(batcher_take(&b, 0, false, &n, &bytes), 2, 1);
    assert_int_equal(bytes, 400);
    expect_list(batcher_take(&b, 0, false, &n, &bytes), 3, 1);
    assert_int_equal(bytes, 1500);
    expect_list(batcher_take(&b, 0, false, &n, &bytes), 4, 2);
    assert_int_equal(bytes, 1000);
    assert_null(batcher_take(&b, 0, false, &n, &bytes));
    expect_list(batcher_take(&b, 1000, false, &n, &bytes), 6, 1);

    /* With the default bound, 60 KB documents go 8 to a call (8 x 60,000 <= 512 KiB). */
    batcher_init(&b, NULL);
    for (unsigned i = 0; i < 20; i++)
        batcher_add(&b, mkdoc(i, 60000), 0);
    expect_list(batcher_take(&b, 0, false, &n, &bytes), 0, 8);
    assert_int_equal(bytes, 480000);
    assert_true(bytes <= BATCHER_MAX_BYTES);
    expect_list(batcher_take(&b, 0, false, &n, &bytes), 8, 8);
    expect_list(batcher_take(&b, 0, true, &n, &bytes), 16, 4);
}

static void test_batcher_take_force(void **state)
{
    struct batcher b;
    unsigned n;
    size_t bytes;
    (void)state;
    batcher_init(&b, NULL);
    assert_null(batcher_take(&b, 0, true, &n, &bytes));
    batcher_add(&b, mkdoc(0, 10), 500);
    assert_null(batcher_take(&b, 500, false, &n, &bytes));
    expect_list(batcher_take(&b, 500, true, &n, &bytes), 0, 1);
    /* Force takes full batches first, then the open one, one batch a call. */
    for (unsigned i = 0; i < 60; i++)
        batcher_add(&b, mkdoc(i, 10), 600);
    expect_list(batcher_take(&b, 600, true, &n, &bytes), 0, 50);
    expect_list(batcher_take(&b, 600, true, &n, &bytes), 50, 10);
    assert_null(batcher_take(&b, 600, true, &n, &bytes));
    assert_int_equal(batcher_count(&b), 0);
}

static void test_batcher_init_limits_capped(void **state)
{
    struct batcher b;
    unsigned n;
    size_t bytes;
    (void)state;
    /* A request for more than X-Ray takes is held to 50. */
    struct batcher_limits lim = {.max_docs = 500};
    batcher_init(&b, &lim);
    for (unsigned i = 0; i < 60; i++)
        batcher_add(&b, mkdoc(i, 1), 0);
    expect_list(batcher_take(&b, 0, false, &n, &bytes), 0, 50);
    expect_list(batcher_take(&b, 0, true, &n, &bytes), 50, 10);
    /* A smaller count works. */
    lim.max_docs = 3;
    batcher_init(&b, &lim);
    for (unsigned i = 0; i < 7; i++)
        batcher_add(&b, mkdoc(i, 1), 0);
    expect_list(batcher_take(&b, 0, false, &n, &bytes), 0, 3);
    expect_list(batcher_take(&b, 0, false, &n, &bytes), 3, 3);
    expect_list(batcher_take(&b, 0, true, &n, &bytes), 6, 1);
}

/* ---- the upstream core with a scripted sender ---- */

#define PENDING_MAX  16
#define OUTCOMES_MAX 16
#define SENDS_MAX    64

struct outcome {
    int status;      /* what done() gets */
    int http_status; /* what the batch says */
    int64_t retry_after_ms;
};

struct script {
    int sync_status; /* with sync: done(status) from within send */
    int sync;
    int fail_send;    /* send returns this (nonzero) without calling done */
    int stop_on_send; /* uv_stop the loop when a batch arrives */
    /* With n_outcomes: answer send k with outcomes[k] (the last one repeats), from
     * within send. With marker: answer 400 to any batch holding a document that
     * starts with "BAD", else 200. */
    struct outcome outcomes[OUTCOMES_MAX];
    int n_outcomes;
    int marker;
    uv_loop_t *loop;
    struct upstream_batch *pending[PENDING_MAX];
    int npending;
    int sends;
    unsigned docs_seen;
    uint64_t first_send_ms;
    uint64_t send_ms[SENDS_MAX];       /* loop time of each send */
    unsigned send_count[SENDS_MAX];    /* documents in each send */
    unsigned send_attempts[SENDS_MAX]; /* the first document's doc->attempts */
};

static int script_send(void *ctx, struct upstream_batch *b,
                       void (*done)(struct upstream_batch *batch, int status))
{
    struct script *s = ctx;
    int k = s->sends++;
    if (s->sends == 1)
        s->first_send_ms = uv_now(s->loop);
    unsigned n = 0;
    int bad = 0;
    size_t bytes = 0;
    for (struct doc *d = b->docs; d != NULL; d = d->next) {
        n++;
        bytes += d->len;
        bad |= d->len >= 3 && memcmp(d->data, "BAD", 3) == 0;
    }
    assert_int_equal(n, b->count);
    assert_int_equal(bytes, b->bytes);
    if (k < SENDS_MAX) {
        s->send_ms[k] = uv_now(s->loop);
        s->send_count[k] = n;
        s->send_attempts[k] = b->docs->attempts;
    }
    s->docs_seen += n;
    if (s->stop_on_send)
        uv_stop(s->loop);
    if (s->fail_send)
        return s->fail_send;
    if (s->marker) {
        b->http_status = bad ? 400 : 200;
        done(b, bad ? XRAY_EUPSTREAM : 0);
        return 0;
    }
    if (s->n_outcomes > 0) {
        const struct outcome *o = &s->outcomes[k < s->n_outcomes ? k : s->n_outcomes - 1];
        b->http_status = o->http_status;
        b->retry_after_ms = o->retry_after_ms;
        done(b, o->status);
        return 0;
    }
    if (s->sync) {
        done(b, s->sync_status);
        return 0;
    }
    assert_true(s->npending < PENDING_MAX);
    s->pending[s->npending++] = b;
    return 0;
}

static const struct upstream_ops script_ops = {.name = "script", .send = script_send};

/* Completes the oldest pending batch. */
static void script_complete(struct script *s, int status)
{
    assert_true(s->npending > 0);
    struct upstream_batch *b = s->pending[0];
    memmove(s->pending, s->pending + 1, (size_t)(s->npending - 1) * sizeof(s->pending[0]));
    s->npending--;
    b->done(b, status);
}

static void script_outcome(struct script *s, int status, int http_status, int64_t retry_after_ms)
{
    assert_true(s->n_outcomes < OUTCOMES_MAX);
    s->outcomes[s->n_outcomes++] = (struct outcome){status, http_status, retry_after_ms};
}

/* A fixed random source: every jitter draw returns this. */
static uint32_t fixed_random(void *ctx)
{
    return *(uint32_t *)ctx;
}

struct core {
    uv_loop_t loop;
    uv_timer_t watchdog;
    struct pool *pool;
    struct stats stats;
    struct script script;
    struct upstream *up;
    uint32_t rnd;
    int closed;
    int drained;
    int running; /* inside core_drain_run's uv_run */
    /* what on_give_up received */
    unsigned given_up;
    int give_up_status;
};

static void core_on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the test did not finish in time");
}

static void core_on_give_up(void *ctx, struct doc *list, unsigned count, int status)
{
    struct core *c = ctx;
    unsigned n = 0;
    while (list != NULL) {
        struct doc *next = list->next;
        pool_free(c->pool, list);
        list = next;
        n++;
    }
    assert_int_equal(n, count);
    c->given_up += n;
    c->give_up_status = status;
}

/* A core with the given retry policy (zeros: defaults), jitter fixed at 0 (the low end
 * of each range) and, with hook, the give-up hook. */
static void core_init_retry(struct core *c, unsigned concurrency, struct retry_policy policy,
                            int hook)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(uv_loop_init(&c->loop), 0);
    assert_int_equal(uv_timer_init(&c->loop, &c->watchdog), 0);
    assert_int_equal(uv_timer_start(&c->watchdog, core_on_watchdog, 10000, 0), 0);
    c->pool = pool_create(8 << 20);
    assert_non_null(c->pool);
    c->script.loop = &c->loop;
    struct upstream_options o = {.loop = &c->loop,
                                 .pool = c->pool,
                                 .stats = &c->stats,
                                 .concurrency = concurrency,
                                 .ctx = &c->script,
                                 .retry = policy,
                                 .random = {.next = fixed_random, .ctx = &c->rnd},
                                 .on_give_up = hook ? core_on_give_up : NULL,
                                 .give_up_ctx = c};
    c->up = upstream_create(&script_ops, &o);
    assert_non_null(c->up);
}

static void core_init(struct core *c, unsigned concurrency)
{
    core_init_retry(c, concurrency, (struct retry_policy){0}, 0);
}

static void core_submit_text(struct core *c, const char *text)
{
    struct doc *d = pool_alloc(c->pool, text, strlen(text), 0);
    assert_non_null(d);
    upstream_submit(c->up, d);
}

static void core_submit(struct core *c, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        core_submit_text(c, "{\"x\":1}");
}

static void core_on_closed(void *data)
{
    ((struct core *)data)->closed = 1;
}

static void core_on_drained(void *data)
{
    struct core *c = data;
    c->drained++;
}

static void core_on_drained_stop(void *data)
{
    struct core *c = data;
    c->drained++;
    if (c->running)
        uv_stop(&c->loop);
}

/* Drains and runs the loop until the drain completed. */
static void core_drain_run(struct core *c)
{
    int before = c->drained;
    upstream_drain(c->up, core_on_drained_stop, c);
    if (c->drained == before) {
        c->running = 1;
        uv_run(&c->loop, UV_RUN_DEFAULT);
        c->running = 0;
    }
    assert_int_equal(c->drained, before + 1);
}

static void core_finish(struct core *c)
{
    if (c->up != NULL)
        upstream_close(c->up, core_on_closed, c);
    uv_close((uv_handle_t *)&c->watchdog, NULL);
    assert_int_equal(uv_run(&c->loop, UV_RUN_DEFAULT), 0);
    assert_true(c->closed);
    assert_int_equal(pool_doc_count(c->pool), 0);
    pool_destroy(c->pool);
    assert_int_equal(uv_loop_close(&c->loop), 0);
}

static void test_upstream_submit_concurrency(void **state)
{
    struct core c;
    (void)state;
    core_init(&c, 2);
    core_submit(&c, 250); /* five full batches */
    assert_int_equal(c.script.sends, 2);
    assert_int_equal(upstream_in_flight(c.up), 2);
    assert_int_equal(upstream_queued(c.up), 150);
    assert_int_equal(upstream_queued_bytes(c.up), 150 * 7);
    /* A batch comes back with three documents unprocessed (ids and codes that are not
     * printable are cleaned for the log). */
    struct upstream_batch *b = c.script.pending[0];
    upstream_batch_unprocessed(b, "id-1", "E");
    upstream_batch_unprocessed(b, "id-2\n", "E\x01");
    upstream_batch_unprocessed(b, NULL, NULL);
    script_complete(&c.script, 0);
    assert_int_equal(c.script.sends, 3); /* the freed slot was used at once */
    assert_int_equal(stats_get(&c.stats.sent), 47);
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UNPROCESSED]), 3);
    while (c.script.npending > 0)
        script_complete(&c.script, 0);
    assert_int_equal(c.script.sends, 5);
    assert_int_equal(stats_get(&c.stats.batches), 5);
    assert_int_equal(stats_get(&c.stats.sent), 247);
    assert_int_equal(stats_get(&c.stats.rejected), 3);
    assert_int_equal(upstream_in_flight(c.up), 0);
    assert_int_equal(upstream_queued(c.up), 0);
    assert_int_equal(pool_doc_count(c.pool), 0);
    assert_null(upstream_last_error(c.up));
    assert_string_equal(upstream_name(c.up), "script");

    /* Reports past the count are ignored. */
    core_submit(&c, 50);
    b = c.script.pending[0];
    for (int i = 0; i < 60; i++)
        upstream_batch_unprocessed(b, "id", "E");
    script_complete(&c.script, 0);
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UNPROCESSED]), 53);
    assert_int_equal(stats_get(&c.stats.sent), 247);
    core_finish(&c);
}

static void test_upstream_submit_one_second(void **state)
{
    struct core c;
    (void)state;
    core_init(&c, 0);
    c.script.sync = 1; /* done from within send */
    c.script.stop_on_send = 1;
    uint64_t t0 = uv_now(&c.loop);
    core_submit(&c, 3);
    assert_int_equal(c.script.sends, 0);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    assert_int_equal(c.script.sends, 1);
    assert_int_equal(c.script.docs_seen, 3);
    uint64_t waited = c.script.first_send_ms - t0;
    assert_true(waited >= 1000 && waited < 1500);
    assert_int_equal(stats_get(&c.stats.sent), 3);
    assert_int_equal(pool_doc_count(c.pool), 0);
    core_finish(&c);
}

static void test_upstream_drain_partial(void **state)
{
    struct core c;
    (void)state;
    core_init(&c, 1);
    core_submit(&c, 60); /* one full batch goes; 10 wait for the slot and the clock */
    /* Drain completes without a loop turn: nothing waits for the 1 s timer. */
    assert_int_equal(c.script.sends, 1);
    upstream_drain(c.up, core_on_drained, &c);
    assert_int_equal(c.drained, 0);
    script_complete(&c.script, 0); /* frees the slot: the 10 go at once */
    assert_int_equal(c.script.sends, 2);
    assert_int_equal(c.drained, 0);
    core_submit(&c, 1); /* while draining: goes without waiting for the clock... */
    assert_int_equal(upstream_queued(c.up), 1);
    script_complete(&c.script, 0);
    assert_int_equal(c.script.sends, 3); /* ...once the slot is free */
    script_complete(&c.script, 0);
    assert_int_equal(c.drained, 1);
    assert_int_equal(stats_get(&c.stats.sent), 61);

    /* An empty drain completes at once. */
    upstream_drain(c.up, core_on_drained, &c);
    assert_int_equal(c.drained, 2);
    core_finish(&c);
}

static void test_upstream_send_failed(void **state)
{
    struct core c;
    (void)state;
    core_init(&c, 0);
    c.script.fail_send = XRAY_EPARSE; /* could not sign: the same call would fail again */
    core_submit(&c, 55);
    assert_int_equal(c.script.sends, 1);
    assert_int_equal(stats_get(&c.stats.batches), 0);
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 50);
    assert_non_null(strstr(upstream_last_error(c.up), "malformed input"));
    c.script.fail_send = 0;
    upstream_drain(c.up, core_on_drained, &c);
    assert_int_equal(c.script.sends, 2);
    script_complete(&c.script, -EINVAL); /* sent, then failed for good */
    assert_int_equal(c.drained, 1);
    assert_int_equal(stats_get(&c.stats.batches), 1);
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 55);
    assert_int_equal(stats_get(&c.stats.sent), 0);
    assert_int_equal(pool_doc_count(c.pool), 0);
    core_finish(&c);
}

static void test_upstream_close_with_batch_in_flight(void **state)
{
    struct core c;
    (void)state;
    core_init(&c, 1);
    core_submit(&c, 60);
    assert_int_equal(c.script.npending, 1);
    upstream_close(c.up, core_on_closed, &c);
    /* The 10 queued are dropped now; the 50 in flight wait for their sender. */
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 10);
    assert_int_equal(pool_doc_count(c.pool), 50);
    uv_run(&c.loop, UV_RUN_NOWAIT);
    assert_false(c.closed);
    script_complete(&c.script, -ECANCELED);
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 60);
    c.up = NULL;
    core_finish(&c);
}

/* ---- retries ---- */

static const struct retry_policy fast = {
    .attempts = 6, .budget_ms = 5000, .backoff_min_ms = 10, .backoff_max_ms = 40};

static void test_upstream_retry_then_success(void **state)
{
    struct core c;
    (void)state;
    core_init_retry(&c, 2, fast, 0);
    /* 503, a timeout, refused, then accepted: nothing lost, nothing counted twice. */
    script_outcome(&c.script, XRAY_EUPSTREAM, 503, -1);
    script_outcome(&c.script, XRAY_ETIMEOUT, 0, -1);
    script_outcome(&c.script, -ECONNREFUSED, 0, -1);
    script_outcome(&c.script, 0, 200, -1);
    core_submit(&c, 20);
    core_drain_run(&c);
    assert_int_equal(c.script.sends, 4);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(c.script.send_count[k], 20);
        assert_int_equal(c.script.send_attempts[k], k + 1); /* doc->attempts */
    }
    /* Backoff with jitter at its low end: max(min, ceiling/2) for ceilings 10, 20, 40. */
    assert_true(c.script.send_ms[1] - c.script.send_ms[0] >= 10);
    assert_true(c.script.send_ms[2] - c.script.send_ms[1] >= 10);
    assert_true(c.script.send_ms[3] - c.script.send_ms[2] >= 20);
    assert_int_equal(stats_get(&c.stats.sent), 20);
    assert_int_equal(stats_get(&c.stats.rejected), 0);
    assert_int_equal(stats_get(&c.stats.batches), 4);
    assert_int_equal(upstream_retrying(c.up), 0);
    assert_int_equal(pool_doc_count(c.pool), 0);
    core_finish(&c);
}

static void test_upstream_retry_attempts_exhausted(void **state)
{
    struct core c;
    (void)state;
    struct retry_policy p = fast;
    p.attempts = 3;
    core_init_retry(&c, 2, p, 0);
    script_outcome(&c.script, XRAY_EUPSTREAM, 500, -1);
    core_submit(&c, 7);
    core_drain_run(&c);
    assert_int_equal(c.script.sends, 3);
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 7);
    assert_int_equal(stats_get(&c.stats.rejected), 7);
    assert_int_equal(stats_get(&c.stats.sent), 0);
    assert_non_null(strstr(upstream_last_error(c.up), "7 documents dropped"));
    assert_int_equal(pool_doc_count(c.pool), 0);
    core_finish(&c);
}

static void test_upstream_retry_time_budget(void **state)
{
    struct core c;
    (void)state;
    /* Attempts to spare, time short: 30, 60, 60, 60 ms waits; the budget of 100 ms
     * allows two retries (at 30 and 90), not a third (150). */
    struct retry_policy p = {
        .attempts = 100, .budget_ms = 100, .backoff_min_ms = 30, .backoff_max_ms = 60};
    core_init_retry(&c, 1, p, 0);
    c.rnd = UINT32_MAX; /* jitter at the top of each range */
    script_outcome(&c.script, -EIO, 0, -1);
    core_submit(&c, 4);
    core_drain_run(&c);
    assert_int_equal(c.script.sends, 3);
    assert_true(c.script.send_ms[2] - c.script.send_ms[0] <= 100);
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 4);
    assert_int_equal(pool_doc_count(c.pool), 0);
    core_finish(&c);
}

static void test_upstream_retry_after(void **state)
{
    struct core c;
    (void)state;
    core_init_retry(&c, 1, fast, 0);
    /* 429 asking for 150 ms: never sooner, although the backoff says 10. */
    script_outcome(&c.script, XRAY_EUPSTREAM, 429, 150);
    script_outcome(&c.script, 0, 200, -1);
    core_submit(&c, 3);
    core_drain_run(&c);
    assert_int_equal(c.script.sends, 2);
    assert_true(c.script.send_ms[1] - c.script.send_ms[0] >= 150);
    assert_int_equal(stats_get(&c.stats.sent), 3);

    /* A Retry-After past the budget gives up at once rather than retry sooner. */
    c.script.sends = 0;
    c.script.n_outcomes = 0;
    script_outcome(&c.script, XRAY_EUPSTREAM, 503, 60000);
    core_submit(&c, 2);
    core_drain_run(&c);
    assert_int_equal(c.script.sends, 1);
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 2);
    assert_int_equal(pool_doc_count(c.pool), 0);
    core_finish(&c);
}

static void test_upstream_retry_never_other_4xx(void **state)
{
    static const int codes[] = {401, 403, 404, 413};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        struct core c;
        (void)state;
        core_init_retry(&c, 1, fast, 1);
        script_outcome(&c.script, XRAY_EUPSTREAM, codes[i], -1);
        core_submit(&c, 5);
        core_drain_run(&c);
        assert_int_equal(c.script.sends, 1);
        /* Refused for good: counted, never handed to the give-up hook (the spool). */
        assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 5);
        assert_int_equal(c.given_up, 0);
        assert_non_null(strstr(upstream_last_error(c.up), "rejected"));
        core_finish(&c);
    }
}

/* Sends n documents, the bad one at index bad, to a sender that answers 400 to any
 * batch holding it; returns the core for the caller's checks. */
static void split_run(struct core *c, unsigned n, unsigned bad)
{
    core_init_retry(c, 1, fast, 1);
    c->script.marker = 1;
    for (unsigned i = 0; i < n; i++)
        core_submit_text(c, i == bad ? "BAD{}" : "{\"good\":1}");
    core_drain_run(c);
}

static void test_upstream_split_400(void **state)
{
    struct core c;
    (void)state;
    /* 4 documents: 4 (400) -> 2 ok, then 2 (400) -> 1 (400, rejected) and 1 ok: only
     * the bad one is lost. The halves go one after another. */
    split_run(&c, 4, 2);
    assert_int_equal(c.script.sends, 5);
    assert_int_equal(c.script.send_count[0], 4);
    assert_int_equal(c.script.send_count[1], 2);
    assert_int_equal(c.script.send_count[2], 2);
    assert_int_equal(c.script.send_count[3], 1);
    assert_int_equal(c.script.send_count[4], 1);
    assert_int_equal(stats_get(&c.stats.sent), 3);
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 1);
    assert_int_equal(c.given_up, 0);
    core_finish(&c);

    /* 20 documents: at most two splits, so the bad quarter (5) goes, 15 arrive. */
    split_run(&c, 20, 13);
    assert_int_equal(stats_get(&c.stats.sent), 15);
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 5);
    assert_int_equal(c.script.sends, 5);
    core_finish(&c);

    /* One document refused with 400: rejected and counted, no split, no retry. */
    split_run(&c, 1, 0);
    assert_int_equal(c.script.sends, 1);
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 1);
    core_finish(&c);

    /* No bad document: one call. */
    split_run(&c, 9, 99);
    assert_int_equal(c.script.sends, 1);
    assert_int_equal(stats_get(&c.stats.sent), 9);
    core_finish(&c);
}

static void test_upstream_split_then_retry(void **state)
{
    struct core c;
    (void)state;
    core_init_retry(&c, 1, fast, 0);
    /* 400 on 6: halves of 3; the first half gets a 503 then goes; the second goes. */
    script_outcome(&c.script, XRAY_EUPSTREAM, 400, -1);
    script_outcome(&c.script, XRAY_EUPSTREAM, 503, -1);
    script_outcome(&c.script, 0, 200, -1);
    core_submit(&c, 6);
    core_drain_run(&c);
    assert_int_equal(c.script.sends, 4);
    assert_int_equal(c.script.send_count[1], 3);
    assert_int_equal(c.script.send_count[2], 3);
    assert_int_equal(c.script.send_count[3], 3);
    assert_int_equal(stats_get(&c.stats.sent), 6);
    assert_int_equal(stats_get(&c.stats.rejected), 0);
    core_finish(&c);
}

static void test_upstream_give_up_hook(void **state)
{
    struct core c;
    (void)state;
    struct retry_policy p = fast;
    p.attempts = 2;
    core_init_retry(&c, 1, p, 1);
    script_outcome(&c.script, -ECONNREFUSED, 0, -1);
    core_submit(&c, 8);
    core_drain_run(&c);
    assert_int_equal(c.script.sends, 2);
    /* The hook owns them: not counted by the core. */
    assert_int_equal(c.given_up, 8);
    assert_int_equal(c.give_up_status, -ECONNREFUSED);
    assert_int_equal(stats_get(&c.stats.rejected), 0);
    assert_int_equal(pool_doc_count(c.pool), 0);
    core_finish(&c);
}

static void on_timer_stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void test_upstream_retry_bounded_by_slots(void **state)
{
    struct core c;
    uv_timer_t t;
    (void)state;
    struct retry_policy p = {.attempts = 6, .budget_ms = 60000, .backoff_min_ms = 5000};
    core_init_retry(&c, 2, p, 0);
    script_outcome(&c.script, XRAY_EUPSTREAM, 503, -1);
    core_submit(&c, 250);
    /* Both slots failed and wait; the other 150 documents wait in the batcher. No more
     * sends, whatever the loop does meanwhile. */
    assert_int_equal(c.script.sends, 2);
    assert_int_equal(upstream_retrying(c.up), 2);
    assert_int_equal(upstream_in_flight(c.up), 0);
    assert_int_equal(upstream_queued(c.up), 250);
    assert_int_equal(upstream_queued_bytes(c.up), 250 * 7);
    uv_timer_init(&c.loop, &t);
    uv_timer_start(&t, on_timer_stop, 1200, 0); /* past the 1 s batch deadline */
    uv_run(&c.loop, UV_RUN_DEFAULT);
    assert_int_equal(c.script.sends, 2);
    assert_int_equal(pool_doc_count(c.pool), 250); /* held in the pool, not copied */
    uv_close((uv_handle_t *)&t, NULL);
    /* Close gives up everything, waiting or queued. */
    upstream_close(c.up, core_on_closed, &c);
    assert_int_equal(stats_get(&c.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 250);
    assert_int_equal(pool_doc_count(c.pool), 0);
    c.up = NULL;
    core_finish(&c);
}

static void test_upstream_close_gives_up_pieces(void **state)
{
    struct core c;
    (void)state;
    core_init_retry(&c, 1, fast, 1);
    /* A 400 splits 8 into 4 + 4; the first half is in flight when close comes. */
    core_submit(&c, 8);
    upstream_drain(c.up, core_on_drained, &c);
    assert_int_equal(c.script.npending, 1);
    struct upstream_batch *b = c.script.pending[0];
    b->http_status = 400;
    script_complete(&c.script, XRAY_EUPSTREAM);
    assert_int_equal(c.script.sends, 2);
    assert_int_equal(c.script.send_count[1], 4);
    assert_int_equal(upstream_queued(c.up), 4); /* the other half waits */
    upstream_close(c.up, core_on_closed, &c);
    script_complete(&c.script, -ECANCELED);
    assert_int_equal(c.given_up, 8);
    assert_int_equal(pool_doc_count(c.pool), 0);
    c.up = NULL;
    core_finish(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batcher_take_cuts_at_50),
        cmocka_unit_test(test_batcher_take_one_second_rule),
        cmocka_unit_test(test_batcher_take_byte_bound),
        cmocka_unit_test(test_batcher_take_force),
        cmocka_unit_test(test_batcher_init_limits_capped),
        cmocka_unit_test(test_upstream_submit_concurrency),
        cmocka_unit_test(test_upstream_submit_one_second),
        cmocka_unit_test(test_upstream_drain_partial),
        cmocka_unit_test(test_upstream_send_failed),
        cmocka_unit_test(test_upstream_close_with_batch_in_flight),
        cmocka_unit_test(test_upstream_retry_then_success),
        cmocka_unit_test(test_upstream_retry_attempts_exhausted),
        cmocka_unit_test(test_upstream_retry_time_budget),
        cmocka_unit_test(test_upstream_retry_after),
        cmocka_unit_test(test_upstream_retry_never_other_4xx),
        cmocka_unit_test(test_upstream_split_400),
        cmocka_unit_test(test_upstream_split_then_retry),
        cmocka_unit_test(test_upstream_give_up_hook),
        cmocka_unit_test(test_upstream_retry_bounded_by_slots),
        cmocka_unit_test(test_upstream_close_gives_up_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
