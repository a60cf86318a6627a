/* SPDX-License-Identifier: Apache-2.0 */
/* The upstream core: batcher + one timer + a fixed set of batch slots. It owns every
 * document it was given until it frees it to the pool or hands it to on_give_up, and
 * counts each one exactly once: sent, unprocessed or upload_failed. It knows nothing
 * of HTTP; senders are struct upstream_ops, and what a failure means is retry.c's.
 *
 * How retries stay bounded: a batch keeps its slot from its first attempt to its end,
 * backoff waits included, so `concurrency` bounds the batches in flight or waiting,
 * their documents stay in the pool (bounded by -m), and one timer serves every wait
 * (the earliest due retry, or the open batch's 1 s deadline). While every slot is
 * busy, new documents wait in the batcher and the pool's budget turns the excess into
 * spillover. A 400 on several documents splits the slot's documents in halves (at most
 * RETRY_SPLIT_MAX times); the halves go one after another from the same slot. */
#include "upstream/upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ingest/pool.h"
#include "log.h"

#define UPSTREAM_LOG_EVERY_MS 10000
#define UPSTREAM_NOT_WAITING  UINT64_MAX

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
    unsigned in_flight; /* sends in flight */
    unsigned waiting;   /* slots waiting for a retry */
    unsigned replaying; /* slots holding a replayed batch */
    struct retry_policy policy;
    struct retry_random random;
    uint64_t rng; /* the default generator's state */
    void (*on_give_up)(void *ctx, struct doc *docs, unsigned count, int status);
    void *give_up_ctx;
    void (*on_ack)(void *ctx);
    void *ack_ctx;
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
static void upstream_finish(struct upstream *up, struct upstream_batch *b, int status);

/* xorshift64*: jitter needs spread, not secrecy. */
static uint32_t upstream_rng_next(void *ctx)
{
    uint64_t *s = ctx;
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 2685821657736338717ull) >> 32);
}

static void upstream_drop(struct upstream *up, struct doc *list)
{
    while (list != NULL) {
        struct doc *next = list->next;
        stats_reject(up->stats, STATS_REJECT_UPLOAD_FAILED);
        pool_free(up->pool, list);
        list = next;
    }
}

static void upstream_give_up(struct upstream *up, struct doc *docs, unsigned count, int status)
{
    if (docs == NULL)
        return;
    if (up->on_give_up != NULL)
        up->on_give_up(up->give_up_ctx, docs, count, status);
    else
        upstream_drop(up, docs);
}

/* Documents of slot b the core stops trying. A replay's are freed uncounted (they are
 * still in the spool) and the status is kept for its done; others are given up. */
static void upstream_abandon(struct upstream *up, struct upstream_batch *b, struct doc *docs,
                             unsigned count, int status)
{
    if (b->_replay_done == NULL) {
        upstream_give_up(up, docs, count, status);
        return;
    }
    if (b->_replay_status == 0)
        b->_replay_status = status != 0 ? status : XRAY_ECLOSED;
    while (docs != NULL) {
        struct doc *next = docs->next;
        pool_free(up->pool, docs);
        docs = next;
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

static void upstream_on_done(struct upstream_batch *b, int status);

/* One attempt of the slot's current documents; the outcome comes to finish. */
static void upstream_attempt(struct upstream *up, struct upstream_batch *b)
{
    b->_attempts++;
    for (struct doc *d = b->docs; d != NULL; d = d->next)
        if (d->attempts < UINT8_MAX)
            d->attempts++;
    b->unprocessed = 0;
    b->http_status = 0;
    b->retry_after_ms = -1;
    b->done = upstream_on_done;
    up->in_flight++;
    b->_sent_ns = uv_hrtime();
    int rc = up->ops->send(up->ctx, b, upstream_on_done);
    if (rc == 0)
        stats_add(&up->stats->batches, 1);
    else
        upstream_finish(up, b, rc);
}

/* Cuts the slot's documents in two: it keeps the first half, the second waits in
 * _rest. Each half has its own attempts; the batch's time budget still counts. */
static void upstream_split(struct upstream_batch *b)
{
    unsigned keep = b->count - b->count / 2;
    struct doc *last = b->docs;
    size_t bytes = last->len;
    for (unsigned i = 1; i < keep; i++) {
        last = last->next;
        bytes += last->len;
    }
    b->_rest[b->_nrest++] = (struct upstream_piece){
        .docs = last->next,
        .count = b->count - keep,
        .bytes = b->bytes - bytes,
        .splits = b->_splits + 1,
    };
    last->next = NULL;
    b->count = keep;
    b->bytes = bytes;
    b->_splits++;
    b->_attempts = 0;
}

/* The slot's current documents are done with: send the next split piece, or release
 * the slot. While closing, pieces still to send are given up instead. */
static void upstream_next(struct upstream *up, struct upstream_batch *b)
{
    b->docs = NULL;
    b->count = 0;
    b->bytes = 0;
    while (b->_nrest > 0) {
        struct upstream_piece pc = b->_rest[--b->_nrest];
        if (up->closing) {
            upstream_abandon(up, b, pc.docs, pc.count, XRAY_ECLOSED);
            continue;
        }
        b->docs = pc.docs;
        b->count = pc.count;
        b->bytes = pc.bytes;
        b->_splits = pc.splits;
        b->_attempts = 0;
        upstream_attempt(up, b);
        return;
    }
    if (b->body.cap > UPSTREAM_BODY_KEEP)
        buf_free(&b->body);
    b->_next = up->free_slots;
    up->free_slots = b;
    if (b->_replay_done != NULL) {
        void (*done)(void *, int) = b->_replay_done;
        b->_replay_done = NULL;
        up->replaying--;
        done(b->_replay_ctx, b->_replay_status);
    }
}

static void upstream_note(struct upstream *up, const char *what, struct upstream_batch *b,
                          int status)
{
    if (b->http_status > 0)
        snprintf(up->last_error, sizeof(up->last_error), "%u documents %s: HTTP %d", b->count, what,
                 b->http_status);
    else
        snprintf(up->last_error, sizeof(up->last_error), "%u documents %s: %s", b->count, what,
                 xray_strerror(status));
}

/* Every attempt ends here, in flight or refused by send(): count and free, split,
 * wait for a retry, or give up. */
static void upstream_finish(struct upstream *up, struct upstream_batch *b, int status)
{
    uint64_t now = uv_now(up->loop);
    up->in_flight--;
    enum retry_verdict v = retry_classify(status, b->http_status, b->count, b->_splits);
    if (up->closing && (v == RETRY_AGAIN || v == RETRY_SPLIT))
        v = RETRY_CLOSED;
    switch (v) {
    case RETRY_DONE: {
        unsigned bad = b->unprocessed < b->count ? b->unprocessed : b->count;
        stats_add(&up->stats->sent, b->count - bad);
        for (struct doc *d = b->docs; d != NULL;) {
            struct doc *next = d->next;
            pool_free(up->pool, d);
            d = next;
        }
        if (b->_replay_done == NULL && up->on_ack != NULL)
            up->on_ack(up->ack_ctx);
        break;
    }
    case RETRY_SPLIT:
        XLOG_EVERY(UPSTREAM_LOG_EVERY_MS, LOG_LEVEL_WARN, "upstream",
                   "%s refused a batch of %u documents with HTTP 400: sending each half on "
                   "its own to isolate the bad one",
                   up->ops->name, b->count);
        upstream_split(b);
        upstream_attempt(up, b);
        return;
    case RETRY_AGAIN: {
        uint32_t rnd = up->random.next(up->random.ctx);
        int64_t delay =
            retry_delay_ms(&up->policy, b->_attempts, b->_first_ms, now, b->retry_after_ms, rnd);
        if (delay >= 0) {
            XLOG_EVERY(UPSTREAM_LOG_EVERY_MS, LOG_LEVEL_INFO, "upstream",
                       "%s upload of %u documents failed (%s, HTTP %d): attempt %u of %u, next "
                       "in %lld ms",
                       up->ops->name, b->count, xray_strerror(status), b->http_status, b->_attempts,
                       up->policy.attempts, (long long)delay);
            b->_due_ms = now + (uint64_t)delay;
            up->waiting++;
            stats_add(&up->stats->upload_retries, 1);
            return;
        }
        upstream_note(up,
                      b->_replay_done != NULL  ? "left in the spool after their retries ran out"
                      : up->on_give_up != NULL ? "handed over after their retries ran out"
                                               : "dropped after their retries ran out",
                      b, status);
        XLOG_EVERY(UPSTREAM_LOG_EVERY_MS, LOG_LEVEL_WARN, "upstream",
                   "%s upload failed (%s): %u %sdocuments given up after %u attempts in %llu ms",
                   up->ops->name, xray_strerror(status), b->count,
                   b->_replay_done != NULL ? "replayed " : "", b->_attempts,
                   (unsigned long long)(now - b->_first_ms));
        upstream_abandon(up, b, b->docs, b->count, status);
        break;
    }
    case RETRY_REJECT:
        upstream_note(up, "rejected", b, status);
        XLOG_EVERY(UPSTREAM_LOG_EVERY_MS, LOG_LEVEL_WARN, "upstream",
                   "%s refused %u documents (%s, HTTP %d): not retried, dropped", up->ops->name,
                   b->count, xray_strerror(status), b->http_status);
        upstream_drop(up, b->docs);
        break;
    case RETRY_CLOSED:
        upstream_abandon(up, b, b->docs, b->count, status == 0 ? XRAY_ECLOSED : status);
        break;
    }
    upstream_next(up, b);
}

static void upstream_check_drained(struct upstream *up)
{
    if (!up->draining || up->closing || up->in_flight > 0 || up->waiting > 0 ||
        batcher_count(&up->batcher) > 0)
        return;
    up->draining = false;
    if (up->drain_cb != NULL)
        up->drain_cb(up->drain_data);
}

static void upstream_on_done(struct upstream_batch *b, int status)
{
    struct upstream *up = b->_up;
    /* Calls that got an answer or failed on the wire; not those canceled at close. */
    if (status != -ECANCELED && status != XRAY_ECLOSED)
        stats_latency_observe(&up->stats->upload_latency, (uv_hrtime() - b->_sent_ns) / 1000);
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

/* Arms the timer for the earliest of the due retries and, when a slot is free, the
 * open batch's deadline — only when that moved. */
static void upstream_schedule(struct upstream *up)
{
    uint64_t due =
        up->free_slots != NULL ? batcher_next_deadline(&up->batcher) : BATCHER_NO_DEADLINE;
    for (unsigned i = 0; up->waiting > 0 && i < up->concurrency; i++)
        if (up->slots[i]._due_ms < due)
            due = up->slots[i]._due_ms;
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

/* Takes a free slot (the caller checked there is one) for a fresh batch of docs. */
static struct upstream_batch *upstream_slot_take(struct upstream *up, struct doc *docs, unsigned n,
                                                 size_t bytes, uint64_t now)
{
    struct upstream_batch *b = up->free_slots;
    up->free_slots = b->_next;
    b->_next = NULL;
    b->docs = docs;
    b->count = n;
    b->bytes = bytes;
    b->_nrest = 0;
    b->_splits = 0;
    b->_attempts = 0;
    b->_first_ms = now;
    return b;
}

static void upstream_pump(struct upstream *up)
{
    if (up->pumping || up->closing)
        return;
    up->pumping = true;
    uint64_t now = uv_now(up->loop);
    /* Retries first: they are older than anything in the batcher. */
    for (unsigned i = 0; up->waiting > 0 && i < up->concurrency; i++) {
        struct upstream_batch *b = &up->slots[i];
        if (b->_due_ms > now)
            continue;
        b->_due_ms = UPSTREAM_NOT_WAITING;
        up->waiting--;
        upstream_attempt(up, b);
    }
    while (up->free_slots != NULL) {
        unsigned n;
        size_t bytes;
        struct doc *docs = batcher_take(&up->batcher, now, up->draining, &n, &bytes);
        if (docs == NULL)
            break;
        upstream_attempt(up, upstream_slot_take(up, docs, n, bytes, now));
    }
    up->pumping = false;
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
    up->policy = retry_policy_normalize(&opt->retry);
    up->random = opt->random;
    if (up->random.next == NULL) {
        up->rng = uv_hrtime() ^ ((uint64_t)(uintptr_t)up << 16) ^ 0x9e3779b97f4a7c15ull;
        up->random = (struct retry_random){.next = upstream_rng_next, .ctx = &up->rng};
    }
    up->on_give_up = opt->on_give_up;
    up->give_up_ctx = opt->give_up_ctx;
    up->on_ack = opt->on_ack;
    up->ack_ctx = opt->ack_ctx;
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
        b->_due_ms = UPSTREAM_NOT_WAITING;
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
        upstream_give_up(up, doc, 1, XRAY_ECLOSED);
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

bool upstream_replay_ready(const struct upstream *up)
{
    if (up->closing || up->draining || up->replaying >= UPSTREAM_REPLAY_MAX ||
        up->free_slots == NULL)
        return false;
    return up->free_slots->_next != NULL || batcher_count(&up->batcher) == 0;
}

int upstream_replay(struct upstream *up, struct doc *docs, void (*done)(void *ctx, int status),
                    void *ctx)
{
    unsigned n = 0;
    size_t bytes = 0;
    for (struct doc *d = docs; d != NULL; d = d->next) {
        n++;
        bytes += d->len;
    }
    if (n == 0 || n > BATCHER_MAX_DOCS || done == NULL)
        return -EINVAL;
    if (up->closing || up->draining)
        return XRAY_ECLOSED;
    if (!upstream_replay_ready(up))
        return XRAY_EFULL;
    struct upstream_batch *b = upstream_slot_take(up, docs, n, bytes, uv_now(up->loop));
    b->_replay_done = done;
    b->_replay_ctx = ctx;
    b->_replay_status = 0;
    up->replaying++;
    /* Inside pump, a done of this attempt does not start pump again; pump runs after. */
    bool was_pumping = up->pumping;
    up->pumping = true;
    upstream_attempt(up, b);
    up->pumping = was_pumping;
    if (!was_pumping)
        upstream_pump(up);
    return 0;
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
        upstream_give_up(up, docs, n, XRAY_ECLOSED);
    for (unsigned i = 0; up->waiting > 0 && i < up->concurrency; i++) {
        struct upstream_batch *b = &up->slots[i];
        if (b->_due_ms == UPSTREAM_NOT_WAITING)
            continue;
        b->_due_ms = UPSTREAM_NOT_WAITING;
        up->waiting--;
        dropped += b->count;
        for (unsigned k = 0; k < b->_nrest; k++)
            dropped += b->_rest[k].count;
        upstream_abandon(up, b, b->docs, b->count, XRAY_ECLOSED);
        upstream_next(up, b); /* gives up the pieces still to send */
    }
    if (dropped > 0)
        XLOG_WARN("upstream", "closing: %zu documents not sent were %s", dropped,
                  up->on_give_up != NULL ? "handed over" : "dropped");
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

/* Documents (or bytes) held in slots and not in an attempt in flight. */
static size_t upstream_held(const struct upstream *up, bool bytes)
{
    size_t sum = 0;
    for (unsigned i = 0; i < up->concurrency; i++) {
        const struct upstream_batch *b = &up->slots[i];
        if (b->_due_ms != UPSTREAM_NOT_WAITING)
            sum += bytes ? b->bytes : b->count;
        for (unsigned k = 0; k < b->_nrest; k++)
            sum += bytes ? b->_rest[k].bytes : b->_rest[k].count;
    }
    return sum;
}

size_t upstream_queued(const struct upstream *up)
{
    return batcher_count(&up->batcher) + upstream_held(up, false);
}

size_t upstream_queued_bytes(const struct upstream *up)
{
    return batcher_bytes(&up->batcher) + upstream_held(up, true);
}

unsigned upstream_in_flight(const struct upstream *up)
{
    return up->in_flight;
}

unsigned upstream_retrying(const struct upstream *up)
{
    return up->waiting;
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
