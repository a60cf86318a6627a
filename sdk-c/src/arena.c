/* SPDX-License-Identifier: Apache-2.0 */
/* The per-node bump allocator: strings and entries a (sub)segment records live here
 * and are freed all at once with the node, so recording costs no malloc until a node
 * outgrows its inline block. Bounded by XRAY_SEGMENT_BYTES_MAX per node. */
#include <stdlib.h>

#include "internal.h"

#define ARENA_ALIGN 8
#define ARENA_CHUNK 2048

void *xray__arena_alloc(struct xray__arena *a, size_t n)
{
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (n > XRAY_SEGMENT_BYTES_MAX || a->total + n > XRAY_SEGMENT_BYTES_MAX)
        return NULL;
    if (a->p == NULL || n > a->cap - a->used) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        struct xray__arena_chunk *c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->next = a->chunks;
        c->cap = cap;
        c->used = 0;
        a->chunks = c;
        a->p = c->data;
        a->cap = cap;
        a->used = 0;
    }
    void *r = a->p + a->used;
    a->used += n;
    a->total += n;
    return r;
}

void xray__arena_free(struct xray__arena *a)
{
    struct xray__arena_chunk *c = a->chunks;
    while (c != NULL) {
        struct xray__arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->chunks = NULL;
    a->p = NULL;
    a->cap = a->used = a->total = 0;
}
