/* SPDX-License-Identifier: Apache-2.0 */
/* The worker thread: documents go in from the loop through a bounded queue, are
 * processed off the loop (pipeline.c decides what that means), and come back through
 * a second queue that the loop collects on its own schedule. The loop never waits on
 * the worker; the worker never touches a socket, a timer or the pool. */
#ifndef XRAYD_WORKER_H
#define XRAYD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "ingest/pool.h"
#include "queue.h"
#include "util.h"

/* The longest the worker sleeps between idle callbacks. */
#define WORKER_IDLE_MS 100

/* Documents kept on the loop side while the worker is full: the rest of one receive
 * batch (UDP_SLOTS) after the receiver was told to pause, with room to spare. */
#define WORKER_HELD_MAX 64

/* Work the loop hands to the worker thread other than documents: read API queries.
 * Embed it in the query's own struct (container_of). */
struct worker_job {
    struct worker_job *next;
    void (*run)(struct worker_job *job, void *process_ctx); /* worker thread */
    void (*done)(struct worker_job *job);                   /* loop thread, after run */
};

struct worker {
    /* Set before worker_start(). */
    /* Worker thread. Returns true to hand doc back now, false to keep it: it is then
     * handed back later through worker_emit() (tail sampling holds documents). */
    bool (*process)(struct doc *doc, void *ctx);
    void *process_ctx;
    /* Worker thread, optional: after each batch of documents, and at least every
     * WORKER_IDLE_MS while idle (window sweeps, store syncs). now_ms is monotonic. */
    void (*idle)(void *ctx, uint64_t now_ms);
    /* Worker thread, optional: once before the thread ends; must worker_emit() every
     * document it kept. */
    void (*flush)(void *ctx);
    void (*done)(struct doc *doc, void *data); /* loop thread, once per document */
    void *done_data;

    /* Private, loop side. */
    uv_loop_t *_loop;
    uv_timer_t _tick;
    uv_thread_t _thread;
    struct queue _in;
    struct queue _out;
    size_t _capacity;
    size_t _wake_batch;
    size_t _inflight;  /* submitted to _in and not yet handed back */
    size_t _unwoken;   /* pushed since the worker was last woken */
    struct doc *_held; /* waiting for room, oldest first, linked through doc->next */
    struct doc *_held_tail;
    size_t _held_count;
    bool _ticking;
    bool _closing;
    void (*_close_cb)(void *data);
    void *_close_data;

    /* Private, shared with the worker thread. */
    pthread_mutex_t _mutex;
    pthread_cond_t _cond;
    atomic_bool _sleeping;
    atomic_bool _stopping;
    struct worker_job *_jobs_in;  /* under _mutex: posted, not yet run */
    struct worker_job *_jobs_out; /* under _mutex: run, done() not yet called */
    size_t _jobs_pending;         /* loop side: posted and done() not yet called */

    /* Private, worker thread: documents given back by worker_emit() that did not fit
     * in _out yet, oldest first; and how many kept documents are out of _inflight's
     * count. */
    struct doc *_emit_head;
    struct doc *_emit_tail;
    atomic_size_t _kept;
};

/* Starts the thread. capacity bounds the documents inside the worker at once.
 * 0, -ENOMEM or a libuv error. Loop thread. */
int worker_start(struct worker *w, uv_loop_t *loop, size_t capacity);
/* Hands doc to the worker, which owns it from then on. When capacity documents are
 * already inside, doc waits on the loop side (see worker_full()); false only when
 * WORKER_HELD_MAX documents wait already: the caller counts a drop and keeps
 * ownership. Loop thread. */
bool worker_submit(struct worker *w, struct doc *doc);
/* True while documents wait on the loop side: stop submitting (pause the receiver)
 * until worker_has_room(). Loop thread. */
bool worker_full(const struct worker *w);
/* True when nothing waits on the loop side and at least a quarter of capacity is
 * free: the moment to resume receiving. Loop thread. */
bool worker_has_room(const struct worker *w);
/* Documents the worker holds: waiting, queued, being processed or coming back. */
size_t worker_inflight(const struct worker *w);
/* Worker thread, from process(), idle() or flush(): hands back a document that
 * process() kept. Never blocks: what does not fit in the queue waits in order. */
void worker_emit(struct worker *w, struct doc *doc);
/* Queues job; its run() is called on the worker thread, then its done() on the loop
 * (within a tick). false when the worker is closing: neither is called. Loop thread. */
bool worker_post(struct worker *w, struct worker_job *job);

/* Finishes every submitted document (their done callbacks run, and may call this
 * again: that call does nothing), joins the thread, closes its handle, then calls cb.
 * Loop thread. */
void worker_close(struct worker *w, void (*cb)(void *data), void *data);

#endif
