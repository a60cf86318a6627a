/* SPDX-License-Identifier: Apache-2.0 */
/* struct worker: one thread, two SPSC queues and a uv_async_t. The loop only submits
 * while fewer than capacity documents are inside, so the way back can never be full.
 * How the worker sleeps without losing a wake-up: it sets _sleeping, then looks at the
 * queue once more before waiting; the loop pushes, then reads _sleeping. With both
 * steps sequentially consistent, at least one of them sees the other. */
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

/* How many documents the worker processes before it wakes the loop: large enough to
 * coalesce wake-ups at 200k documents/s, small enough to keep latency in microseconds. */
#define WORKER_BATCH 64

static void worker_drain_out(uv_async_t *handle)
{
    struct worker *w = container_of(handle, struct worker, _async);
    struct doc *doc;
    while ((doc = queue_pop(&w->_out)) != NULL) {
        w->_inflight--;
        w->done(doc, w->done_data);
    }
}

static void worker_sleep(struct worker *w)
{
    pthread_mutex_lock(&w->_mutex);
    atomic_store(&w->_sleeping, true);
    if (queue_depth(&w->_in) == 0 && !atomic_load(&w->_stopping)) {
        /* The timeout is a safety net only; wake-ups come from worker_submit(). */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->_cond, &w->_mutex, &ts);
    }
    atomic_store(&w->_sleeping, false);
    pthread_mutex_unlock(&w->_mutex);
}

static void worker_main(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        int n = 0;
        struct doc *doc;
        while (n < WORKER_BATCH && (doc = queue_pop(&w->_in)) != NULL) {
            w->process(doc, w->process_ctx);
            /* Cannot fail: _out holds capacity + 1 and at most capacity are inside. */
            queue_push(&w->_out, doc);
            n++;
        }
        if (n > 0) {
            uv_async_send(&w->_async);
            continue;
        }
        if (atomic_load(&w->_stopping) && queue_depth(&w->_in) == 0)
            return;
        worker_sleep(w);
    }
}

int worker_start(struct worker *w, uv_loop_t *loop, size_t capacity)
{
    int rc;
    w->_loop = loop;
    w->_capacity = capacity;
    w->_inflight = 0;
    atomic_init(&w->_sleeping, false);
    atomic_init(&w->_stopping, false);
    if ((rc = queue_init(&w->_in, capacity)) != 0)
        return rc;
    if ((rc = queue_init(&w->_out, capacity + 1)) != 0) {
        queue_destroy(&w->_in);
        return rc;
    }
    pthread_mutex_init(&w->_mutex, NULL);
    pthread_cond_init(&w->_cond, NULL);
    if ((rc = uv_async_init(loop, &w->_async, worker_drain_out)) != 0)
        goto fail;
    if ((rc = uv_thread_create(&w->_thread, worker_main, w)) != 0) {
        uv_close((uv_handle_t *)&w->_async, NULL);
        goto fail;
    }
    return 0;
fail:
    pthread_cond_destroy(&w->_cond);
    pthread_mutex_destroy(&w->_mutex);
    queue_destroy(&w->_out);
    queue_destroy(&w->_in);
    return rc;
}

static void worker_wake(struct worker *w)
{
    if (atomic_load(&w->_sleeping)) {
        pthread_mutex_lock(&w->_mutex);
        pthread_cond_signal(&w->_cond);
        pthread_mutex_unlock(&w->_mutex);
    }
}

bool worker_submit(struct worker *w, struct doc *doc)
{
    if (w->_inflight >= w->_capacity || !queue_push(&w->_in, doc))
        return false;
    w->_inflight++;
    worker_wake(w);
    return true;
}

size_t worker_inflight(const struct worker *w)
{
    return w->_inflight;
}

static void worker_closed(uv_handle_t *handle)
{
    struct worker *w = container_of((uv_async_t *)handle, struct worker, _async);
    pthread_cond_destroy(&w->_cond);
    pthread_mutex_destroy(&w->_mutex);
    queue_destroy(&w->_out);
    queue_destroy(&w->_in);
    if (w->_close_cb)
        w->_close_cb(w->_close_data);
}

void worker_close(struct worker *w, void (*cb)(void *data), void *data)
{
    atomic_store(&w->_stopping, true);
    pthread_mutex_lock(&w->_mutex);
    pthread_cond_signal(&w->_cond);
    pthread_mutex_unlock(&w->_mutex);
    uv_thread_join(&w->_thread);
    worker_drain_out(&w->_async); /* what finished after the last wake-up */
    w->_close_cb = cb;
    w->_close_data = data;
    uv_close((uv_handle_t *)&w->_async, worker_closed);
}
