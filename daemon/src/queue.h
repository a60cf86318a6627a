/* SPDX-License-Identifier: Apache-2.0 */
/* A bounded single-producer single-consumer ring of pointers: how documents travel
 * between the loop and a worker. Lock-free; exactly one thread pushes and exactly one
 * pops. It never grows: a full queue refuses the push and the caller counts a drop. */
#ifndef XRAYD_QUEUE_H
#define XRAYD_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct queue {
    void **slots;                    /* owned */
    size_t mask;                     /* capacity - 1, capacity a power of two */
    _Alignas(64) atomic_size_t head; /* next slot to pop; written by the consumer */
    _Alignas(64) atomic_size_t tail; /* next slot to push; written by the producer */
};

/* capacity is rounded up to a power of two. 0 or -ENOMEM. */
int queue_init(struct queue *q, size_t capacity);
void queue_destroy(struct queue *q);
/* Producer only. false when full. */
bool queue_push(struct queue *q, void *item);
/* Consumer only. NULL when empty. */
void *queue_pop(struct queue *q);
/* Either thread; a snapshot. */
size_t queue_depth(const struct queue *q);

#endif
