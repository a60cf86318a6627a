/* SPDX-License-Identifier: Apache-2.0 */
/* GetTraceSummaries filter expressions: the subset of service-graph.md —
 * service("name"), responsetime and duration comparisons, fault, error, throttle,
 * http.status comparisons, annotation.key = "v" (and numbers, booleans), joined by
 * and / or / not and parentheses. Anything else is refused with a message that says
 * what is supported. Pure; any thread. */
#ifndef XRAYD_FILTER_H
#define XRAYD_FILTER_H

#include <stddef.h>

#include "error.h"

#define FILTER_MAX_BYTES 2000 /* X-Ray's limit on a FilterExpression */

struct filter;

/* Parses the len bytes of expr. 0 with *out set (filter_free() it), or XRAY_EPARSE with
 * err saying what was wrong and what is supported, or -ENOMEM. */
int filter_parse(const char *expr, size_t len, struct filter **out, char err[XRAY_ERR_LEN]);
void filter_free(struct filter *f);

#endif
