/* SPDX-License-Identifier: Apache-2.0 */
/* The bounded memory that holds received documents until the upstream acknowledges
 * them (-m / TotalBufferSizeMB). A document is allocated at its own size, lives once,
 * and travels by reference: loop -> worker -> loop -> upload -> pool_free(). Only the
 * loop thread calls pool_*; workers read and annotate documents but never free them. */
#ifndef XRAYD_POOL_H
#define XRAYD_POOL_H

#include <stddef.h>
#include <stdint.h>

#define POOL_MIN_BYTES (3u * 1024 * 1024) /* the reference daemon's minimum, 3 MB */

enum doc_flag {
    DOC_IN_PROGRESS = 1u << 0, /* "in_progress": true */
    DOC_SUBSEGMENT = 1u << 1,  /* "type": "subsegment", sent on its own */
};

struct doc {
    struct doc *next;     /* link for whoever holds the document (batch, retry list) */
    uint64_t received_ms; /* loop time when it arrived */
    double start_time;    /* epoch seconds, set by the worker's scan */
    double end_time;      /* 0 while in progress */
    uint32_t len;         /* bytes in data[] */
    int16_t reject;       /* -1 valid, else an enum stats_reject set by the worker */
    uint8_t flags;        /* enum doc_flag, set by the worker */
    uint8_t attempts;     /* upload attempts so far */
    char trace_id[36];    /* NUL-terminated copies made by the worker's scan, "" if absent */
    char id[17];
    char data[]; /* the document as received; not NUL-terminated */
};

struct pool;

/* A pool of at most max_bytes (document bytes plus their headers). NULL on ENOMEM. */
struct pool *pool_create(size_t max_bytes);
void pool_destroy(struct pool *pool);

/* Copies len bytes into a new document. NULL when the budget is full (the caller
 * counts spillover) or on ENOMEM. */
struct doc *pool_alloc(struct pool *pool, const void *data, size_t len, uint64_t now_ms);
void pool_free(struct pool *pool, struct doc *doc);

size_t pool_used_bytes(const struct pool *pool);
size_t pool_max_bytes(const struct pool *pool);
size_t pool_doc_count(const struct pool *pool);

/* The bytes a document of len bytes holds against the budget: its header plus len. */
static inline size_t pool_doc_bytes(size_t len)
{
    return sizeof(struct doc) + len;
}

/* The default budget: 1 % of the cgroup memory limit when there is one, else of host
 * RAM, never below POOL_MIN_BYTES. Reads /proc/self/cgroup and /sys/fs/cgroup. */
size_t pool_default_bytes(void);

/* The same, with the places injected (for tests): cgroup_root is where the cgroup
 * file systems are mounted ("/sys/fs/cgroup"); self_cgroup is a file in the format of
 * /proc/self/cgroup, or NULL to look at cgroup_root only; host_ram is the machine's
 * memory in bytes (0 if unknown). A limit at or above host_ram, or "max", is no limit;
 * v2 (memory.max) is looked at before v1 (memory/memory.limit_in_bytes). */
size_t pool_default_bytes_at(const char *cgroup_root, const char *self_cgroup, uint64_t host_ram);

#endif
