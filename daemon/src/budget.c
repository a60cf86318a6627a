/* SPDX-License-Identifier: Apache-2.0 */
/* The registry of named byte budgets and the meter. The registry only lists: each part
 * enforces its own bound (the pool refuses, the store evicts, the HTTP server answers
 * 503) and the registry reads what it uses through a getter, so no lock is shared. */
#include "budget.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"

void budget_meter_init(struct budget_meter *m, size_t limit)
{
    m->limit = limit;
    atomic_init(&m->used, 0);
    atomic_init(&m->refused, 0);
}

bool budget_meter_take(struct budget_meter *m, size_t n)
{
    return budget_meter_take_keep(m, n, 0);
}

bool budget_meter_take_keep(struct budget_meter *m, size_t n, size_t keep)
{
    /* One thread charges: a load then a store is enough; readers see either value. */
    size_t used = atomic_load_explicit(&m->used, memory_order_relaxed);
    size_t room = used < m->limit ? m->limit - used : 0;
    if (n > room || keep > room - n) {
        atomic_fetch_add_explicit(&m->refused, 1, memory_order_relaxed);
        return false;
    }
    atomic_store_explicit(&m->used, used + n, memory_order_relaxed);
    return true;
}

void budget_meter_give(struct budget_meter *m, size_t n)
{
    size_t used = atomic_load_explicit(&m->used, memory_order_relaxed);
    atomic_store_explicit(&m->used, n < used ? used - n : 0, memory_order_relaxed);
}

size_t budget_meter_room(const struct budget_meter *m)
{
    size_t used = atomic_load_explicit(&m->used, memory_order_relaxed);
    return used < m->limit ? m->limit - used : 0;
}

size_t budget_meter_used(const void *ctx)
{
    const struct budget_meter *m = ctx;
    return atomic_load_explicit(&m->used, memory_order_relaxed);
}

uint64_t budget_meter_refused(const void *ctx)
{
    const struct budget_meter *m = ctx;
    return atomic_load_explicit(&m->refused, memory_order_relaxed);
}

int budget_buf_reserve(struct budget_meter *m, struct buf *b, size_t extra, bool exact, size_t keep)
{
    if (m == NULL)
        return buf_reserve(b, extra);
    if (extra > b->max || b->len > b->max - extra || b->max == SIZE_MAX)
        return XRAY_ETOOBIG;
    size_t need = b->len + extra + 1; /* room for the NUL buf.c keeps */
    if (need <= b->cap)
        return 0;
    size_t cap = need;
    if (!exact) {
        cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap = cap > (b->max + 1) / 2 ? b->max + 1 : cap * 2;
    }
    if (cap > b->max + 1)
        cap = b->max + 1;
    if (!budget_meter_take_keep(m, cap - b->cap, keep))
        return XRAY_EFULL;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        budget_meter_give(m, cap - b->cap);
        return -ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void budget_buf_free(struct budget_meter *m, struct buf *b)
{
    if (m != NULL)
        budget_meter_give(m, b->cap);
    buf_free(b);
}

void budgets_init(struct budgets *bs)
{
    memset(bs, 0, sizeof(*bs));
}

static bool budget_name_ok(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > BUDGET_NAME_MAX - 5) /* room for "_max" and the NUL */
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

int budgets_add(struct budgets *bs, const struct budget *b)
{
    if (b == NULL || !budget_name_ok(b->name) || budgets_find(bs, b->name) != NULL)
        return -EINVAL;
    if (bs->count == BUDGET_MAX)
        return -ENOSPC;
    bs->list[bs->count++] = *b;
    return 0;
}

const struct budget *budgets_find(const struct budgets *bs, const char *name)
{
    for (size_t i = 0; i < bs->count; i++)
        if (strcmp(bs->list[i].name, name) == 0)
            return &bs->list[i];
    return NULL;
}

size_t budget_used(const struct budget *b)
{
    return b->used != NULL ? b->used(b->ctx) : b->limit;
}

uint64_t budget_refused(const struct budget *b)
{
    if (b->refused == NULL)
        return 0;
    return b->refused(b->refused_ctx != NULL ? b->refused_ctx : b->ctx);
}

size_t budgets_limit_total(const struct budgets *bs)
{
    size_t sum = 0;
    for (size_t i = 0; i < bs->count; i++)
        sum += bs->list[i].limit;
    return sum;
}

size_t budgets_used_total(const struct budgets *bs)
{
    size_t sum = 0;
    for (size_t i = 0; i < bs->count; i++)
        sum += budget_used(&bs->list[i]);
    return sum;
}
