/* SPDX-License-Identifier: Apache-2.0 */
/* The per-trace id map: linear probing over a power-of-two table, at most half full.
 * Ids come from outside, so they are hashed with a seed before probing. Clearing bumps
 * a generation number instead of touching the slots: a trace of three documents
 * should not pay for zeroing a table sized for large ones. */
#include "graph/graph_idmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t graph_idmap_home(const struct graph_idmap *m, uint64_t id)
{
    uint64_t h = id ^ m->seed;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (size_t)h & m->mask;
}

int graph_idmap_init(struct graph_idmap *m, size_t nslots, uint64_t seed)
{
    memset(m, 0, sizeof(*m));
    m->slots = calloc(nslots, sizeof(*m->slots));
    if (m->slots == NULL)
        return -ENOMEM;
    m->mask = nslots - 1;
    m->max_used = nslots / 2;
    m->gen = 1; /* calloc's zeros are stale */
    m->seed = seed;
    return 0;
}

void graph_idmap_destroy(struct graph_idmap *m)
{
    free(m->slots);
    m->slots = NULL;
}

void graph_idmap_clear(struct graph_idmap *m)
{
    m->used = 0;
    if (++m->gen == 0) {
        memset(m->slots, 0, (m->mask + 1) * sizeof(*m->slots));
        m->gen = 1;
    }
}

int graph_idmap_put(struct graph_idmap *m, uint64_t id, const struct digest_doc *doc, int call)
{
    size_t i = graph_idmap_home(m, id);
    while (m->slots[i].gen == m->gen && m->slots[i].id != id)
        i = (i + 1) & m->mask;
    struct graph_idmap_slot *s = &m->slots[i];
    if (s->gen != m->gen) {
        if (m->used >= m->max_used) {
            m->overflow++;
            return -ENOSPC;
        }
        m->used++;
        s->gen = m->gen;
        s->id = id;
    }
    s->doc = doc;
    s->call = (int16_t)call;
    s->flags = 0;
    return 0;
}

struct graph_idmap_slot *graph_idmap_find(const struct graph_idmap *m, uint64_t id)
{
    if (id == 0)
        return NULL;
    size_t i = graph_idmap_home(m, id);
    while (m->slots[i].gen == m->gen) {
        if (m->slots[i].id == id)
            return &m->slots[i];
        i = (i + 1) & m->mask;
    }
    return NULL;
}
