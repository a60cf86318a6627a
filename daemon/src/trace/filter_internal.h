/* SPDX-License-Identifier: Apache-2.0 */
/* Between filter.c and the store: evaluating a parsed filter against a trace summary,
 * and the one fact the store's service index needs from an expression. */
#ifndef XRAYD_FILTER_INTERNAL_H
#define XRAYD_FILTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "trace/filter.h"

struct summary;

#define FILTER_MAX_DEPTH 32 /* nested parentheses and nots; deeper is refused */

/* True when the trace summarized by s matches f. */
bool filter_match(const struct filter *f, const struct summary *s);

/* The name n (*len bytes, owned by f) when every match must have a service of that
 * name: f is service("n"), or an `and` with service("n") among its terms. NULL
 * otherwise. */
const char *filter_service(const struct filter *f, size_t *len);

#endif
