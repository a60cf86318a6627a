/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus remote write 1.0: a registry snapshot as one WriteRequest body, protobuf
 * then snappy block compression. Pure: no I/O, no clock; the sender (headers, queue,
 * retries) is elsewhere. Any thread. */
#ifndef XRAYD_METRICS_REMOTE_WRITE_H
#define XRAYD_METRICS_REMOTE_WRITE_H

#include <stddef.h>
#include <stdint.h>

/* The request headers the protocol requires (Prometheus remote write 1.0). */
#define REMOTE_WRITE_CONTENT_TYPE "application/x-protobuf"
#define REMOTE_WRITE_ENCODING     "snappy"
#define REMOTE_WRITE_VERSION      "0.1.0"

/* The stale marker Prometheus stores for a series that disappeared: a NaN with this
 * exact bit pattern (prometheus/model/value StaleNaN). */
#define REMOTE_WRITE_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

/* Room for any value remote_write_format_le() writes, NUL included. */
#define REMOTE_WRITE_LE_LEN 32

struct buf;
struct registry_snapshot;

/* Appends to out (borrowed) the snappy-compressed WriteRequest for s (borrowed): one
 * sample at timestamp_ms (wall clock, ms since the epoch) per series. Counters and
 * gauges are one series named after the family; a histogram is <name>_bucket per
 * finite bound (label le) and le="+Inf", then <name>_sum and <name>_count. Every
 * series of s's stale lists gets the stale marker instead of a value. Labels are
 * sorted by name, with __name__ and without empty values.
 * Returns 0; -ENOSPC when the body does not fit under out->max; -ENOMEM; -EINVAL when
 * s breaks registry.h's limits (name or label count). On error out is unchanged. */
int remote_write_encode(const struct registry_snapshot *s, int64_t timestamp_ms, struct buf *out);

/* Writes v as Prometheus writes an le bound (Go's strconv.FormatFloat(v, 'g', -1, 64):
 * the shortest digits that read back as v, exponent form below 1e-4 and from 1e6 on):
 * "0.002", "1", "1.4", "15", "1e-05", "1e+06", "+Inf". dst holds REMOTE_WRITE_LE_LEN
 * bytes.
 * Returns the length written. */
size_t remote_write_format_le(double v, char dst[REMOTE_WRITE_LE_LEN]);

#endif
