/* SPDX-License-Identifier: Apache-2.0 */
/* A document's digest: the few fields of a scanned segment document that trace
 * assembly and the service graph need, copied out of the document into one small
 * allocation, so the document itself can go to the upstream and be freed while its
 * trace is still being assembled. Worker thread (the assembler's and the read API's
 * graphs); pure otherwise. */
#ifndef XRAYD_DIGEST_H
#define XRAYD_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segment/scan.h"

#define DIGEST_NAME_MAX  200 /* wire.md: a service name is at most 200 chars; longer is cut */
#define DIGEST_CALLS_MAX 64  /* calls kept per document (SCAN_MAX_SUBSEGMENTS + itself) */

/* wire.md, "Status classification". Ordered: a larger value is worse. */
enum digest_status {
    DIGEST_OK = 0,
    DIGEST_ERROR,
    DIGEST_THROTTLE,
    DIGEST_FAULT,
};

enum digest_ns {
    DIGEST_NS_NONE = 0,
    DIGEST_NS_AWS,    /* "namespace": "aws": an AWS SDK call */
    DIGEST_NS_REMOTE, /* "namespace": "remote": another downstream call */
};

/* A subsegment that calls out: namespace aws or remote, or marked traced. The
 * caller's half of a service-graph edge; its times and status are the edge's (the
 * client view). Strings are NUL-terminated and live in the digest's allocation, except
 * the fixed node types, which are static. */
struct digest_call {
    uint64_t id;
    double start, end; /* end is 0 while in progress */
    uint8_t status;    /* enum digest_status */
    uint8_t ns;        /* enum digest_ns */
    bool traced;       /* the callee is instrumented: expect a segment with parent_id = id */
    bool sql;          /* an "sql" block: a database call */
    bool in_progress;
    const char *name;          /* the subsegment's name, e.g. "DynamoDB" or "api.example.com" */
    const char *resource;      /* the inferred node's name and type: for aws the table */
    const char *resource_type; /* name and "AWS::DynamoDB::Table", the queue's name and
                                * "AWS::SQS::Queue", else the name and "AWS::" + name;
                                * for remote (or traced only) the name and "remote" */
};

/* One document. For a segment, name and origin are its service's node; for a streamed
 * subsegment (DIGEST_SUBSEGMENT) name is the subsegment's and the service is found
 * through parent_id. */
struct digest_doc {
    struct digest_doc *next; /* the owner's list (the assembler's trace) */
    uint64_t arrived_ms;     /* when the loop received it */
    uint64_t id;             /* digest_id() of "id" */
    uint64_t parent_id;      /* digest_id() of "parent_id"; 0 when absent (a root segment) */
    double start, end;       /* end is 0 while in progress */
    uint32_t size;           /* bytes of this allocation: what it holds against a budget */
    uint8_t status;          /* enum digest_status */
    uint8_t flags;           /* enum digest_flag */
    int16_t http_status;     /* http.response.status, or -1 */
    uint16_t ncalls;
    uint16_t nids;
    const char *name;          /* NUL-terminated; never NULL */
    const char *origin;        /* "" when absent */
    struct digest_call *calls; /* ncalls, document order; a streamed subsegment that
                                * is itself a call comes first */
    uint64_t *ids;             /* the ids of all its nested subsegments (nids): a
                                * streamed subsegment's parent may be any of them */
};

enum digest_flag {
    DIGEST_SUBSEGMENT = 1u << 0,    /* "type": "subsegment", sent on its own */
    DIGEST_IN_PROGRESS = 1u << 1,   /* "in_progress": true */
    DIGEST_CALLS_DROPPED = 1u << 2, /* more than DIGEST_CALLS_MAX calls, or the scan
                                     * dropped subsegments: the graph undercounts it */
};

/* The digest of a scanned document (v from scan_document(), still pointing into its
 * bytes), received at arrived_ms. One malloc; free with free(). NULL on ENOMEM. */
struct digest_doc *digest_build(const struct segment_view *v, uint64_t arrived_ms);

/* An X-Ray id as a number: 16 hex digits (either case) are read as such; anything
 * else is hashed, since a malformed id still has to match itself. 0 for an absent
 * id, never 0 for a present one. */
uint64_t digest_id(const struct scan_str *id);

/* The classification of wire.md for a (sub)segment's flags and http status. */
enum digest_status digest_classify(bool fault, bool throttle, bool error, int32_t http_status);

#endif
