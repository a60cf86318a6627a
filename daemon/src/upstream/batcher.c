/* SPDX-License-Identifier: Apache-2.0 */
/* Batches for upload. Invariant: the ready list is a sequence of complete batches,
 * each cut greedily (as many documents as fit the count and byte limits), so cutting
 * it again greedily from its head at take time finds the same boundaries and no
 * per-batch record is needed. Only the open batch has a clock: its first document's
 * arrival. Never reads the clock, never allocates. */
#include "upstream/batcher.h"

#include "ingest/pool.h"

void batcher_init(struct batcher *b, const struct batcher_limits *lim)
{
    struct batcher_limits l = {0};
    if (lim != NULL)
        l = *lim;
    if (l.max_docs == 0 || l.max_docs > BATCHER_MAX_DOCS)
        l.max_docs = BATCHER_MAX_DOCS;
    if (l.max_bytes == 0)
        l.max_bytes = BATCHER_MAX_BYTES;
    if (l.max_wait_ms == 0)
        l.max_wait_ms = BATCHER_MAX_WAIT_MS;
    *b = (struct batcher){._lim = l};
}

static void batcher_list_append(struct doc **head, struct doc **tail, struct doc *d)
{
    d->next = NULL;
    if (*tail != NULL)
        (*tail)->next = d;
    else
        *head = d;
    *tail = d;
}

/* Moves the open batch, whole, to the end of the ready list. */
static void batcher_seal(struct batcher *b)
{
    if (b->_open_head == NULL)
        return;
    if (b->_ready_tail != NULL)
        b->_ready_tail->next = b->_open_head;
    else
        b->_ready_head = b->_open_head;
    b->_ready_tail = b->_open_tail;
    b->_open_head = b->_open_tail = NULL;
    b->_open_count = 0;
    b->_open_bytes = 0;
}

void batcher_add(struct batcher *b, struct doc *doc, uint64_t now_ms)
{
    /* A document that would take the open batch past its byte limit starts the next
     * one; a lone document larger than the limit still makes a batch of one. */
    if (b->_open_count > 0 && doc->len > b->_lim.max_bytes - b->_open_bytes)
        batcher_seal(b);
    if (b->_open_count == 0)
        b->_open_since_ms = now_ms;
    batcher_list_append(&b->_open_head, &b->_open_tail, doc);
    b->_open_count++;
    b->_open_bytes += doc->len;
    b->_count++;
    b->_bytes += doc->len;
    if (b->_open_count >= b->_lim.max_docs || b->_open_bytes >= b->_lim.max_bytes)
        batcher_seal(b);
}

uint64_t batcher_next_deadline(const struct batcher *b)
{
    if (b->_ready_head != NULL)
        return 0;
    if (b->_open_head != NULL)
        return b->_open_since_ms + b->_lim.max_wait_ms;
    return BATCHER_NO_DEADLINE;
}

/* Detaches the first greedy batch of the ready list (see the invariant above). */
static struct doc *batcher_cut_ready(struct batcher *b, unsigned *count, size_t *bytes)
{
    struct doc *head = b->_ready_head;
    struct doc *last = head;
    unsigned n = 1;
    size_t sz = head->len;
    while (last->next != NULL && n < b->_lim.max_docs && sz < b->_lim.max_bytes &&
           last->next->len <= b->_lim.max_bytes - sz) {
        last = last->next;
        n++;
        sz += last->len;
    }
    b->_ready_head = last->next;
    if (b->_ready_head == NULL)
        b->_ready_tail = NULL;
    last->next = NULL;
    *count = n;
    *bytes = sz;
    return head;
}

struct doc *batcher_take(struct batcher *b, uint64_t now_ms, bool force, unsigned *count,
                         size_t *bytes)
{
    struct doc *list;
    unsigned n;
    size_t sz;
    if (b->_ready_head != NULL) {
        list = batcher_cut_ready(b, &n, &sz);
    } else if (b->_open_head != NULL &&
               (force || now_ms >= b->_open_since_ms + b->_lim.max_wait_ms)) {
        list = b->_open_head;
        n = b->_open_count;
        sz = b->_open_bytes;
        b->_open_head = b->_open_tail = NULL;
        b->_open_count = 0;
        b->_open_bytes = 0;
    } else {
        *count = 0;
        *bytes = 0;
        return NULL;
    }
    b->_count -= n;
    b->_bytes -= sz;
    *count = n;
    *bytes = sz;
    return list;
}

size_t batcher_count(const struct batcher *b)
{
    return b->_count;
}

size_t batcher_bytes(const struct batcher *b)
{
    return b->_bytes;
}
