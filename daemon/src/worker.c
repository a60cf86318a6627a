/* SPDX-License-Identifier: Apache-2.0 */
/* struct worker: one thread, two SPSC queues and a loop timer. The loop only pushes
 * while fewer than capacity documents are inside, so the way back can never be full;
 * past that, documents wait on a short loop-side list until room comes back.
 *
 * How it works: waking a thread costs two context switches, so neither side does it
 * per document. The loop wakes the worker once WORKER_WAKE_BATCH documents are
 * waiting, and otherwise on a WORKER_TICK_MS timer that runs while anything is inside
 * the worker; the same tick collects what came back. The worker never wakes the loop:
 * it processes whatever is queued and sleeps. The timer is the only thing that keeps
 * documents moving, so it stays armed until the worker is empty. The price: at most
 * capacity documents go round per tick, so capacity must hold a few ticks of input
 * (main.c's 8192 is 40 ms, ten ticks, at 200k documents/s).
 * How the worker sleeps without losing a wake-up: it sets _sleeping, then looks at the
 * queue once more before waiting; the loop pushes, then reads _sleeping. A full fence
 * after each side's write means at least one of them sees the other's.
 * Kept documents (process() returned false) leave the count of what is inside
 * through _kept, so holding them never stalls the input; when they are emitted and
 * _out has no room, they wait on a worker-side list, and new input waits behind
 * them. Jobs (read API queries) go through two mutex-guarded lists: they are rare. */
#include "worker.h"

#include <time.h>

#include "util.h"

/* Documents waiting before the loop wakes the worker without waiting for the tick:
 * at 200k documents/s that is every ~1.3 ms, a third of a tick. A quarter of capacity
 * when that is less, so that a small worker is not left idle while full. */
#define WORKER_WAKE_BATCH 256
/* The longest a document waits to be woken for, or to be collected: far below the
 * batcher's 1 s. Each tick that finds the worker asleep costs two context switches;
 * at 4 ms that is 250 a second at low rates (measured at 20k documents/s: 0.1 CPU-s
 * per 100k less than a 1 ms tick, the same at 200k/s, where the batch wakes it). */
#define WORKER_TICK_MS 4

static uint64_t worker_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void worker_sleep(struct worker *w)
{
    pthread_mutex_lock(&w->_mutex);
    atomic_store(&w->_sleeping, true);
    atomic_thread_fence(memory_order_seq_cst);
    if (queue_depth(&w->_in) == 0 && w->_jobs_in == NULL && !atomic_load(&w->_stopping)) {
        /* Wake-ups come from worker_wake() and worker_post(); the timeout paces the
         * idle callback. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WORKER_IDLE_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->_cond, &w->_mutex, &ts);
    }
    atomic_store(&w->_sleeping, false);
    pthread_mutex_unlock(&w->_mutex);
}

/* Moves emitted documents into _out while it has room; true when none wait. */
static bool worker_drain_emitted(struct worker *w)
{
    while (w->_emit_head != NULL) {
        struct doc *next = w->_emit_head->next;
        if (!queue_push(&w->_out, w->_emit_head))
            return false;
        w->_emit_head = next;
    }
    w->_emit_tail = NULL;
    return true;
}

void worker_emit(struct worker *w, struct doc *doc)
{
    /* Counted as inside again before it is visible to the loop: the loop may then
     * under-fill the input for a moment, never over-fill it. */
    atomic_fetch_sub(&w->_kept, 1);
    doc->next = NULL;
    if (w->_emit_head == NULL && queue_push(&w->_out, doc))
        return;
    if (w->_emit_tail != NULL)
        w->_emit_tail->next = doc;
    else
        w->_emit_head = doc;
    w->_emit_tail = doc;
}

static void worker_run_jobs(struct worker *w)
{
    pthread_mutex_lock(&w->_mutex);
    struct worker_job *jobs = w->_jobs_in;
    w->_jobs_in = NULL;
    pthread_mutex_unlock(&w->_mutex);
    if (jobs == NULL)
        return;
    struct worker_job *done = NULL;
    while (jobs != NULL) { /* posted newest first: reverse to run in order */
        struct worker_job *next = jobs->next;
        jobs->next = done;
        done = jobs;
        jobs = next;
    }
    for (struct worker_job *j = done; j != NULL; j = j->next)
        j->run(j, w->process_ctx);
    pthread_mutex_lock(&w->_mutex);
    struct worker_job *last = done;
    while (last->next != NULL)
        last = last->next;
    last->next = w->_jobs_out;
    w->_jobs_out = done;
    pthread_mutex_unlock(&w->_mutex);
}

/* Processes queued documents; false when emitted documents still wait for room. */
static bool worker_process_queued(struct worker *w)
{
    struct doc *doc;
    while (worker_drain_emitted(w) && (doc = queue_pop(&w->_in)) != NULL) {
        atomic_fetch_add(&w->_kept, 1); /* process() may keep it */
        if (w->process(doc, w->process_ctx))
            worker_emit(w, doc);
    }
    return w->_emit_head == NULL;
}

static void worker_main(void *arg)
{
    struct worker *w = arg;
    uint64_t last_idle = worker_now_ms();
    for (;;) {
        bool drained = worker_process_queued(w);
        worker_run_jobs(w);
        uint64_t now = worker_now_ms();
        if (w->idle != NULL && now - last_idle >= WORKER_IDLE_MS) {
            w->idle(w->process_ctx, now);
            last_idle = now;
        }
        if (atomic_load(&w->_stopping) && queue_depth(&w->_in) == 0) {
            if (w->flush != NULL)
                w->flush(w->process_ctx);
            worker_run_jobs(w);
            return; /* emitted documents still waiting are collected after the join */
        }
        if (drained) {
            worker_sleep(w);
        } else { /* the loop collects _out every tick: wait for a part of one */
            struct timespec pause = {0, 1000000L};
            nanosleep(&pause, NULL);
        }
    }
}

/* Loop thread: tells the worker about what was pushed since the last call. */
static void worker_wake(struct worker *w)
{
    if (w->_unwoken == 0)
        return;
    w->_unwoken = 0;
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&w->_sleeping)) {
        pthread_mutex_lock(&w->_mutex);
        pthread_cond_signal(&w->_cond);
        pthread_mutex_unlock(&w->_mutex);
    }
}

/* Documents inside the worker that count against its capacity: not the kept ones. */
static size_t worker_inside(const struct worker *w)
{
    size_t kept = atomic_load(&w->_kept);
    return w->_inflight > kept ? w->_inflight - kept : 0;
}

static bool worker_push(struct worker *w, struct doc *doc)
{
    /* Once closing, the thread may be gone: nothing more goes in. */
    if (w->_closing || worker_inside(w) >= w->_capacity || !queue_push(&w->_in, doc))
        return false;
    w->_inflight++;
    if (++w->_unwoken >= w->_wake_batch)
        worker_wake(w);
    return true;
}

/* Moves waiting documents into the queue while there is room, oldest first. */
static void worker_release_held(struct worker *w)
{
    while (w->_held != NULL) {
        struct doc *next = w->_held->next; /* once pushed, the doc is the worker's */
        if (!worker_push(w, w->_held))
            break;
        w->_held = next;
        w->_held_count--;
    }
    if (w->_held == NULL)
        w->_held_tail = NULL;
}

static void worker_collect_jobs(struct worker *w)
{
    if (w->_jobs_pending == 0)
        return;
    pthread_mutex_lock(&w->_mutex);
    struct worker_job *jobs = w->_jobs_out;
    w->_jobs_out = NULL;
    pthread_mutex_unlock(&w->_mutex);
    while (jobs != NULL) {
        struct worker_job *next = jobs->next;
        w->_jobs_pending--;
        jobs->done(jobs);
        jobs = next;
    }
}

/* Hands every finished document back. A done callback may close the worker. */
static void worker_collect(struct worker *w)
{
    worker_collect_jobs(w);
    struct doc *doc;
    while ((doc = queue_pop(&w->_out)) != NULL) {
        w->_inflight--;
        if (w->_held != NULL)
            worker_release_held(w); /* before done(), so it sees the room as it is */
        w->done(doc, w->done_data);
    }
}

static void worker_tick(uv_timer_t *t)
{
    struct worker *w = container_of(t, struct worker, _tick);
    worker_collect(w);
    if (w->_closing)
        return;
    worker_wake(w);
    if (w->_inflight == 0 && w->_held == NULL && w->_jobs_pending == 0) {
        uv_timer_stop(&w->_tick);
        w->_ticking = false;
    }
}

static void worker_arm(struct worker *w)
{
    if (!w->_ticking) {
        uv_timer_start(&w->_tick, worker_tick, WORKER_TICK_MS, WORKER_TICK_MS);
        w->_ticking = true;
    }
}

int worker_start(struct worker *w, uv_loop_t *loop, size_t capacity)
{
    int rc;
    w->_loop = loop;
    w->_capacity = capacity;
    w->_wake_batch = capacity / 4 < WORKER_WAKE_BATCH ? capacity / 4 : WORKER_WAKE_BATCH;
    if (w->_wake_batch == 0)
        w->_wake_batch = 1;
    w->_inflight = 0;
    w->_unwoken = 0;
    w->_held = w->_held_tail = NULL;
    w->_held_count = 0;
    w->_ticking = false;
    w->_closing = false;
    atomic_init(&w->_sleeping, false);
    atomic_init(&w->_stopping, false);
    atomic_init(&w->_kept, 0);
    w->_jobs_in = w->_jobs_out = NULL;
    w->_jobs_pending = 0;
    w->_emit_head = w->_emit_tail = NULL;
    if ((rc = queue_init(&w->_in, capacity)) != 0)
        return rc;
    if ((rc = queue_init(&w->_out, capacity + 1)) != 0) {
        queue_destroy(&w->_in);
        return rc;
    }
    pthread_mutex_init(&w->_mutex, NULL);
    pthread_cond_init(&w->_cond, NULL);
    if ((rc = uv_timer_init(loop, &w->_tick)) != 0)
        goto fail;
    if ((rc = uv_thread_create(&w->_thread, worker_main, w)) != 0) {
        uv_close((uv_handle_t *)&w->_tick, NULL);
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

bool worker_submit(struct worker *w, struct doc *doc)
{
    if (w->_closing)
        return false;
    /* Behind documents already waiting, so that order is kept. */
    if (w->_held == NULL && worker_push(w, doc)) {
        worker_arm(w);
        return true;
    }
    if (w->_held_count >= WORKER_HELD_MAX)
        return false;
    doc->next = NULL;
    if (w->_held_tail != NULL)
        w->_held_tail->next = doc;
    else
        w->_held = doc;
    w->_held_tail = doc;
    w->_held_count++;
    worker_arm(w);
    return true;
}

bool worker_full(const struct worker *w)
{
    return w->_held != NULL;
}

bool worker_has_room(const struct worker *w)
{
    return w->_held == NULL && worker_inside(w) + w->_capacity / 4 <= w->_capacity;
}

bool worker_post(struct worker *w, struct worker_job *job)
{
    if (w->_closing)
        return false;
    pthread_mutex_lock(&w->_mutex);
    job->next = w->_jobs_in;
    w->_jobs_in = job;
    pthread_cond_signal(&w->_cond);
    pthread_mutex_unlock(&w->_mutex);
    w->_jobs_pending++;
    worker_arm(w);
    return true;
}

size_t worker_inflight(const struct worker *w)
{
    return w->_inflight + w->_held_count;
}

static void worker_closed(uv_handle_t *handle)
{
    struct worker *w = container_of((uv_timer_t *)handle, struct worker, _tick);
    pthread_cond_destroy(&w->_cond);
    pthread_mutex_destroy(&w->_mutex);
    queue_destroy(&w->_out);
    queue_destroy(&w->_in);
    if (w->_close_cb)
        w->_close_cb(w->_close_data);
}

void worker_close(struct worker *w, void (*cb)(void *data), void *data)
{
    if (w->_closing)
        return; /* a done callback of the close below */
    w->_closing = true;
    atomic_store(&w->_stopping, true);
    pthread_mutex_lock(&w->_mutex);
    pthread_cond_signal(&w->_cond);
    pthread_mutex_unlock(&w->_mutex);
    uv_thread_join(&w->_thread);
    /* With the thread joined, its state is the loop's to use. */
    worker_collect(w);              /* what finished since the last tick */
    while (w->_emit_head != NULL) { /* emitted at flush, no room in _out then */
        struct doc *doc = w->_emit_head;
        w->_emit_head = doc->next;
        w->_inflight--;
        w->done(doc, w->done_data);
    }
    w->_emit_tail = NULL;
    /* What never got in is processed here, then flushed once more: processing may
     * keep documents again. */
    while (w->_held != NULL) {
        struct doc *doc = w->_held;
        w->_held = doc->next;
        w->_held_count--;
        w->_inflight++;
        atomic_fetch_add(&w->_kept, 1);
        if (w->process(doc, w->process_ctx))
            worker_emit(w, doc);
    }
    if (w->flush != NULL)
        w->flush(w->process_ctx);
    worker_collect(w);
    while (w->_emit_head != NULL) {
        struct doc *doc = w->_emit_head;
        w->_emit_head = doc->next;
        w->_inflight--;
        w->done(doc, w->done_data);
    }
    w->_emit_tail = NULL;
    w->_held_tail = NULL;
    w->_close_cb = cb;
    w->_close_data = data;
    w->_ticking = false;
    uv_timer_stop(&w->_tick);
    uv_close((uv_handle_t *)&w->_tick, worker_closed);
}
