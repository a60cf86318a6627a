/* SPDX-License-Identifier: Apache-2.0 */
/* The worker thread: documents go in from the loop through a bounded queue, are
 * processed off the loop (pipeline.c decides what that means), and come back through
 * a second queue that the loop drains on one uv_async_t wake-up. The loop never waits
 * on the worker; the worker never touches a socket, a timer or the pool. */
#ifndef XRAYD_WORKER_H
#define XRAYD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "ingest/pool.h"
#include "queue.h"
#include "util.h"

struct worker {
    /* Set before worker_start(). */
    void (*process)(struct doc *doc, void *ctx); /* worker thread */
    void *process_ctx;
    void (*done)(struct doc *doc, void *data); /* loop thread, once per document */
    void *done_data;

    /* Private. */
    uv_loop_t *_loop;
    uv_async_t _async;
    uv_thread_t _thread;
    struct queue _in;
    struct queue _out;
    size_t _capacity;
    size_t _inflight; /* loop side: submitted and not yet handed back */
    pthread_mutex_t _mutex;
    pthread_cond_t _cond;
    atomic_bool _sleeping;
    atomic_bool _stopping;
    void (*_close_cb)(void *data);
    void *_close_data;
};

/* Starts the thread. capacity bounds the documents inside the worker at once.
 * 0, -ENOMEM or a libuv error. Loop thread. */
int worker_start(struct worker *w, uv_loop_t *loop, size_t capacity);
/* Hands doc to the worker; false when it already holds capacity documents (the caller
 * counts a drop and keeps ownership). Loop thread. */
bool worker_submit(struct worker *w, struct doc *doc);
/* Documents the worker holds: queued, being processed or waiting to come back. */
size_t worker_inflight(const struct worker *w);
/* Finishes every submitted document (their done callbacks run), joins the thread,
 * closes the async handle, then calls cb. Loop thread. */
void worker_close(struct worker *w, void (*cb)(void *data), void *data);

#endif
