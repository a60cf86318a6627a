/* SPDX-License-Identifier: Apache-2.0 */
/* struct queue: head and tail only ever increase; a slot is index & mask. The
 * producer publishes an item with a release store of tail, the consumer frees a slot
 * with a release store of head, so each side sees the other's writes complete. */
#include "queue.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int queue_init(struct queue *q, size_t capacity)
{
    /* Past the largest power of two, doubling would wrap to 0 and never end. */
    if (capacity > SIZE_MAX / 2 + 1)
        return -ENOMEM;
    size_t cap = 2;
    while (cap < capacity)
        cap *= 2;
    q->slots = calloc(cap, sizeof(void *));
    if (q->slots == NULL)
        return -ENOMEM;
    q->mask = cap - 1;
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    return 0;
}

void queue_destroy(struct queue *q)
{
    free(q->slots);
    q->slots = NULL;
}

bool queue_push(struct queue *q, void *item)
{
    size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    if (tail - head > q->mask)
        return false;
    q->slots[tail & q->mask] = item;
    atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
    return true;
}

void *queue_pop(struct queue *q)
{
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (head == tail)
        return NULL;
    void *item = q->slots[head & q->mask];
    atomic_store_explicit(&q->head, head + 1, memory_order_release);
    return item;
}

size_t queue_depth(const struct queue *q)
{
    size_t tail = atomic_load_explicit(&((struct queue *)q)->tail, memory_order_acquire);
    size_t head = atomic_load_explicit(&((struct queue *)q)->head, memory_order_acquire);
    return tail - head;
}
