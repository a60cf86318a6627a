/* SPDX-License-Identifier: Apache-2.0 */
/* The `aws` sender: a batch becomes one PutTraceSegments call through xray.h, and the
 * response's UnprocessedTraceSegments are reported back to the upstream core. */
#ifndef XRAYD_UPSTREAM_AWS_H
#define XRAYD_UPSTREAM_AWS_H

#include <stddef.h>

#include "buf.h"
#include "upstream/upstream.h"

#define UPSTREAM_AWS_PATH "/TraceSegments"
/* A body is at most this big: BATCHER_MAX_BYTES of valid JSON escapes to at most
 * twice its size; a lone document over the batcher's bound is at most 64 KB escaped
 * six times over. */
#define UPSTREAM_AWS_BODY_MAX (4u << 20)
/* Entries of UnprocessedTraceSegments looked at; a batch has at most 50 documents. */
#define UPSTREAM_AWS_UNPROCESSED_MAX 1000

/* ctx: a struct xray * (borrowed; outlives the upstream). */
extern const struct upstream_ops upstream_aws_ops;

/* The exact size of the body upstream_aws_body() writes for docs. Pure. */
size_t upstream_aws_body_size(const struct doc *docs);

/* Appends {"TraceSegmentDocuments":["<doc>",...]} for the list docs (through
 * doc->next) to out, each document as a JSON string written by
 * buf_append_json_string(). 0, XRAY_ETOOBIG (past out's max) or -ENOMEM; out then
 * holds what it held before (its capacity may have grown). Pure. */
int upstream_aws_body(struct buf *out, const struct doc *docs);

/* Parses a PutTraceSegments response (outside input: any bytes) and calls each(arg,
 * id, code) for every UnprocessedTraceSegments entry (at most
 * UPSTREAM_AWS_UNPROCESSED_MAX; id and code are "" when absent or not strings).
 * Returns the number of entries reported, or XRAY_EPARSE when the body is not a JSON
 * object or UnprocessedTraceSegments is not an array (an empty body or a missing
 * member is 0). Pure. */
int upstream_aws_parse_response(const char *body, size_t len,
                                void (*each)(void *arg, const char *id, const char *code),
                                void *arg);

#endif
