/* SPDX-License-Identifier: Apache-2.0 */
/* The `local` upstream: batches go into the embedded store (trace/store.c) instead of
 * X-Ray, for laptops, CI and hosts with no AWS account. ctx is the struct store. */
#ifndef XRAYD_UPSTREAM_LOCAL_H
#define XRAYD_UPSTREAM_LOCAL_H

#include "upstream/upstream.h"

extern const struct upstream_ops upstream_local_ops;

#endif
