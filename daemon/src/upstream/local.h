/* SPDX-License-Identifier: Apache-2.0 */
/* The `local` upstream, for laptops, CI and hosts with no AWS account: documents stay
 * in the embedded store (trace/store.c), which the worker fills; a batch is only
 * acknowledged. ctx is unused. */
#ifndef XRAYD_UPSTREAM_LOCAL_H
#define XRAYD_UPSTREAM_LOCAL_H

#include "upstream/upstream.h"

extern const struct upstream_ops upstream_local_ops;

#endif
