/* SPDX-License-Identifier: Apache-2.0 */
/* Named byte budgets: the one list of every long-lived structure's memory bound, with
 * its name, limit, what it uses now and what its drop policy refused. /healthz prints
 * it, /metrics will export it, docs/memory.md explains each entry; the sum of the
 * limits plus the fixed overhead is the documented ceiling. Also the meter a part
 * charges as it allocates when it has no accounting of its own (the HTTP server). */
#ifndef XRAYD_BUDGET_H
#define XRAYD_BUDGET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUDGET_MAX      16 /* entries in one registry */
#define BUDGET_NAME_MAX 24 /* a name, "_max" appended, stays a short JSON key */

/* A byte counter with a hard limit, charged by one thread (its owner) before each
 * allocation it bounds; any thread may read it. used never passes limit. */
struct budget_meter {
    size_t limit;
    atomic_size_t used;
    atomic_uint_fast64_t refused; /* charges that did not fit */
};

void budget_meter_init(struct budget_meter *m, size_t limit);
/* Charges n bytes: true when they fit under the limit, else false (used unchanged,
 * refused counted). Owner thread. */
bool budget_meter_take(struct budget_meter *m, size_t n);
/* The same, but only when at least keep bytes stay free afterwards: the bulk users of
 * a budget leave that much to the small ones. */
bool budget_meter_take_keep(struct budget_meter *m, size_t n, size_t keep);
/* Returns n bytes taken earlier. Owner thread. */
void budget_meter_give(struct budget_meter *m, size_t n);
/* Bytes that could still be taken. */
size_t budget_meter_room(const struct budget_meter *m);
/* Adapters for struct budget: ctx is a const struct budget_meter *. */
size_t budget_meter_used(const void *ctx);
uint64_t budget_meter_refused(const void *ctx);

struct buf;

/* buf_reserve(b, extra) with the growth charged to m first (budget_meter_take_keep
 * with keep): the capacity of a buffer grown only through here and freed only through
 * budget_buf_free() is exactly what it holds of m. exact: grow to what is needed, else
 * double as buf.c does (both capped at b's max). 0, XRAY_ETOOBIG (past b's max),
 * XRAY_EFULL (m has no room; counted there) or -ENOMEM. m NULL: plain buf_reserve.
 * Owner thread of m. */
int budget_buf_reserve(struct budget_meter *m, struct buf *b, size_t extra, bool exact,
                       size_t keep);
/* buf_free(b), giving its capacity back to m (NULL: plain buf_free). */
void budget_buf_free(struct budget_meter *m, struct buf *b);

/* One named budget. Strings are borrowed (static strings in practice); getters run on
 * the thread that reads the registry (the loop for /healthz) and must be safe there. */
struct budget {
    const char *name;                /* [a-z0-9_], unique: the /healthz key and the metric label */
    const char *setting;             /* the flag that sets the limit, or NULL when it is fixed */
    const char *policy;              /* what happens at the limit, one short sentence */
    size_t limit;                    /* bytes */
    size_t (*used)(const void *ctx); /* bytes in use now; NULL: limit (allocated once) */
    uint64_t (*refused)(const void *ctx); /* items the policy dropped/refused; may be NULL */
    const void *ctx;                      /* for used */
    const void *refused_ctx;              /* for refused; NULL: ctx */
};

struct budgets {
    struct budget list[BUDGET_MAX];
    size_t count;
};

void budgets_init(struct budgets *bs);
/* Copies b into the registry. 0, -EINVAL (no name, a name not [a-z0-9_] or longer than
 * BUDGET_NAME_MAX - 5, or one already there) or -ENOSPC (BUDGET_MAX). */
int budgets_add(struct budgets *bs, const struct budget *b);
/* The entry called name, or NULL. */
const struct budget *budgets_find(const struct budgets *bs, const char *name);
size_t budget_used(const struct budget *b);
uint64_t budget_refused(const struct budget *b);
/* Sums over every entry: limits (the ceiling without the fixed overhead) and uses. */
size_t budgets_limit_total(const struct budgets *bs);
size_t budgets_used_total(const struct budgets *bs);

#endif
