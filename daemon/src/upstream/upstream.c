/* SPDX-License-Identifier: Apache-2.0 */
/* The upstream core: batcher + timer + a fixed set of batch slots, one per send in
 * flight. It owns every document it was given until it frees it to the pool, and
 * counts each one exactly once: sent, unprocessed or upload_failed. It knows nothing
 * of HTTP; senders are struct upstream_ops. Failed batches are dropped for now —
 * upstream_finish() is where retries will decide instead. */
#include "upstream/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ingest/pool.h"
#include "log.h"

#define UPSTREAM_LOG_EVERY_MS 10000
#define UPSTREAM_BODY_KEEP    (2u << 20) /* a slot keeps at most this much scratch */

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct upstream {
    const struct upstream_ops *ops;
    void *ctx;
    uv_loop_t *loop;
    struct pool *pool;
    struct stats *stats;
    uv_timer_t timer;
    uint64_t timer_due; /* deadline the timer is armed for; BATCHER_NO_DEADLINE = off */
    struct batcher batcher;
    struct upstream_batch *slots; /* concurrency of them */
    struct upstream_batch *free_slots;
    unsigned concurrency;
    unsigned in_flight;
    bool pumping;
    bool draining;
    bool closing;
    bool timer_closed;
    void (*drain_cb)(void *data);
    void *drain_data;
    void (*close_cb)(void *data);
    void *close_data;
    char last_error[XRAY_ERR_LEN];
};

static void upstream_pump(struct upstream *up);

static void upstream_drop(struct upstream *up, struct doc *list)
{
    while (list != NULL) {
        struct doc *next = list->next;
        stats_reject(up->stats, STATS_REJECT_UPLOAD_FAILED);
        pool_free(up->pool, list);
        list = next;
    }
}

static void upstream_maybe_free(struct upstream *up)
{
    if (!up->closing || !up->timer_closed || up->in_flight > 0)
        return;
    if (up->draining) {
        up->draining = false;
        if (up->drain_cb != NULL)
            up->drain_cb(up->drain_data);
    }
    void (*cb)(void *) = up->close_cb;
    void *data = up->close_data;
    for (unsigned i = 0; i < up->concurrency; i++)
        buf_free(&up->slots[i].body);
    free(up->slots);
    free(up);
    if (cb != NULL)
        cb(data);
}

/* Every completed or failed send ends here: count, free, release the slot. */
static void upstream_finish(struct upstream *up, struct upstream_batch *b, int status)
{
    if (status == 0) {
        unsigned bad = b->unprocessed < b->count ? b->unprocessed : b->count;
        stats_add(&up->stats->sent, b->count - bad);
        for (struct doc *d = b->docs; d != NULL;) {
            struct doc *next = d->next;
            pool_free(up->pool, d);
            d = next;
        }
    } else {
        /* Retries go here (next step): a retryable status with attempts left puts the
         * documents back with a backoff (doc->attempts, b->retry_after_ms) and a 400 on
         * several documents is split in halves. Until then the batch is dropped. */
        snprintf(up->last_error, sizeof(up->last_error), "%u documents dropped: %s", b->count,
                 xray_strerror(status));
        XLOG_EVERY(UPSTREAM_LOG_EVERY_MS, LOG_LEVEL_WARN, "upstream",
                   "%s upload failed (%s): %u documents dropped", up->ops->name,
                   xray_strerror(status), b->count);
        upstream_drop(up, b->docs);
    }
    if (b->body.cap > UPSTREAM_BODY_KEEP)
        buf_free(&b->body);
    b->docs = NULL;
    b->count = 0;
    b->bytes = 0;
    b->_next = up->free_slots;
    up->free_slots = b;
    up->in_flight--;
}

static void upstream_check_drained(struct upstream *up)
{
    if (!up->draining || up->closing || up->in_flight > 0 || batcher_count(&up->batcher) > 0)
        return;
    up->draining = false;
    if (up->drain_cb != NULL)
        up->drain_cb(up->drain_data);
}

static void upstream_on_done(struct upstream_batch *b, int status)
{
    struct upstream *up = b->_up;
    upstream_finish(up, b, status);
    if (up->closing)
        upstream_maybe_free(up);
    else if (!up->pumping)
        upstream_pump(up);
}

static void upstream_on_timer(uv_timer_t *t)
{
    struct upstream *up = container_of(t, struct upstream, timer);
    up->timer_due = BATCHER_NO_DEADLINE;
    upstream_pump(up);
}

/* Arms the timer for the open batch's deadline, only when that deadline moved. */
static void upstream_schedule(struct upstream *up)
{
    uint64_t due = batcher_next_deadline(&up->batcher);
    if (due == up->timer_due)
        return;
    up->timer_due = due;
    if (due == BATCHER_NO_DEADLINE) {
        uv_timer_stop(&up->timer);
        return;
    }
    uint64_t now = uv_now(up->loop);
    uv_timer_start(&up->timer, upstream_on_timer, due > now ? due - now : 0, 0);
}

static void upstream_pump(struct upstream *up)
{
    if (up->pumping || up->closing)
        return;
    up->pumping = true;
    uint64_t now = uv_now(up->loop);
    while (up->free_slots != NULL) {
        unsigned n;
        size_t bytes;
        struct doc *docs = batcher_take(&up->batcher, now, up->draining, &n, &bytes);
        if (docs == NULL)
            break;
        struct upstream_batch *b = up->free_slots;
        up->free_slots = b->_next;
        b->_next = NULL;
        b->docs = docs;
        b->count = n;
        b->bytes = bytes;
        b->unprocessed = 0;
        b->http_status = 0;
        b->retry_after_ms = -1;
        b->done = upstream_on_done;
        up->in_flight++;
        int rc = up->ops->send(up->ctx, b, upstream_on_done);
        if (rc == 0)
            stats_add(&up->stats->batches, 1);
        else
            upstream_finish(up, b, rc);
    }
    up->pumping = false;
    /* Saturated: the next done pumps; no need for the timer till then. */
    if (up->free_slots != NULL)
        upstream_schedule(up);
    upstream_check_drained(up);
}

struct upstream *upstream_create(const struct upstream_ops *ops, const struct upstream_options *opt)
{
    if (ops == NULL || ops->send == NULL || opt == NULL || opt->loop == NULL || opt->pool == NULL ||
        opt->stats == NULL)
        return NULL;
    struct upstream *up = calloc(1, sizeof(*up));
    if (up == NULL)
        return NULL;
    up->ops = ops;
    up->ctx = opt->ctx;
    up->loop = opt->loop;
    up->pool = opt->pool;
    up->stats = opt->stats;
    up->concurrency = opt->concurrency ? opt->concurrency : UPSTREAM_CONCURRENCY;
    if (up->concurrency > UPSTREAM_CONCURRENCY_MAX)
        up->concurrency = UPSTREAM_CONCURRENCY_MAX;
    up->timer_due = BATCHER_NO_DEADLINE;
    batcher_init(&up->batcher, opt->limits);
    up->slots = calloc(up->concurrency, sizeof(*up->slots));
    if (up->slots == NULL || uv_timer_init(up->loop, &up->timer) != 0) {
        free(up->slots);
        free(up);
        return NULL;
    }
    for (unsigned i = up->concurrency; i-- > 0;) {
        struct upstream_batch *b = &up->slots[i];
        buf_init(&b->body, 0);
        b->_up = up;
        b->_next = up->free_slots;
        up->free_slots = b;
    }
    return up;
}

void upstream_submit(struct upstream *up, struct doc *doc)
{
    if (up->closing) {
        doc->next = NULL;
        upstream_drop(up, doc);
        return;
    }
    batcher_add(&up->batcher, doc, uv_now(up->loop));
    if (up->free_slots == NULL)
        return; /* saturated: the next done pumps */
    if (up->draining || batcher_next_deadline(&up->batcher) == 0)
        upstream_pump(up);
    else
        upstream_schedule(up);
}

void upstream_drain(struct upstream *up, void (*cb)(void *data), void *data)
{
    up->drain_cb = cb;
    up->drain_data = data;
    up->draining = true;
    if (up->closing)
        return; /* completed by close */
    if (up->pumping)
        return; /* called from a sender's done inside pump: pump checks when it ends */
    upstream_pump(up);
}

static void upstream_on_timer_close(uv_handle_t *h)
{
    struct upstream *up = container_of((uv_timer_t *)h, struct upstream, timer);
    up->timer_closed = true;
    upstream_maybe_free(up);
}

void upstream_close(struct upstream *up, void (*cb)(void *data), void *data)
{
    if (up->closing)
        return;
    up->closing = true;
    up->close_cb = cb;
    up->close_data = data;
    unsigned n;
    size_t bytes;
    struct doc *docs;
    size_t dropped = batcher_count(&up->batcher);
    while ((docs = batcher_take(&up->batcher, 0, true, &n, &bytes)) != NULL)
        upstream_drop(up, docs);
    if (dropped > 0)
        XLOG_WARN("upstream", "closing: %zu documents not sent were dropped", dropped);
    uv_close((uv_handle_t *)&up->timer, upstream_on_timer_close);
}

void upstream_batch_unprocessed(struct upstream_batch *batch, const char *id, const char *code)
{
    if (batch->unprocessed >= batch->count)
        return;
    batch->unprocessed++;
    stats_reject(batch->_up->stats, STATS_REJECT_UNPROCESSED);
    /* Outside input: bounded, printable only, never the message or the payload. */
    char sid[48], scode[48];
    size_t i;
    for (i = 0; id != NULL && id[i] && i + 1 < sizeof(sid); i++)
        sid[i] = id[i] > 0x20 && id[i] < 0x7f ? id[i] : '?';
    sid[i] = '\0';
    for (i = 0; code != NULL && code[i] && i + 1 < sizeof(scode); i++)
        scode[i] = code[i] > 0x20 && code[i] < 0x7f ? code[i] : '?';
    scode[i] = '\0';
    XLOG_EVERY(UPSTREAM_LOG_EVERY_MS, LOG_LEVEL_WARN, "upstream",
               "unprocessed segment id=%s code=%s", sid, scode);
}

const char *upstream_name(const struct upstream *up)
{
    return up->ops->name;
}

size_t upstream_queued(const struct upstream *up)
{
    return batcher_count(&up->batcher);
}

size_t upstream_queued_bytes(const struct upstream *up)
{
    return batcher_bytes(&up->batcher);
}

unsigned upstream_in_flight(const struct upstream *up)
{
    return up->in_flight;
}

size_t upstream_scratch_bytes(const struct upstream *up)
{
    size_t sum = 0;
    for (unsigned i = 0; i < up->concurrency; i++)
        sum += up->slots[i].body.cap;
    return sum;
}

const char *upstream_last_error(const struct upstream *up)
{
    const char *e = up->ops->last_error != NULL ? up->ops->last_error(up->ctx) : NULL;
    if (e != NULL)
        return e;
    return up->last_error[0] != '\0' ? up->last_error : NULL;
}
