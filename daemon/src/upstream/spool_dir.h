/* SPDX-License-Identifier: Apache-2.0 */
/* The spool's disk work, by directory descriptor: open and lock the directory, list
 * its files, write batches crash-safely, read one back. Leaf code: blocking calls, no
 * loop, no logging (errors fill err, corrupt files go to a callback). spool.c runs
 * the writes and reads on libuv's thread pool; open and scan run at start-up. */
#ifndef XRAYD_SPOOL_DIR_H
#define XRAYD_SPOOL_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct doc;

/* A valid file, as the index keeps it. */
struct spool_dir_entry {
    uint64_t seq;
    uint32_t bytes; /* its size */
    uint32_t count; /* its documents */
};

/* One file to write: docs (borrowed, read only) under the name of seq. rc is set. */
struct spool_dir_write {
    const struct doc *docs;
    uint64_t seq;
    int rc;
};

/* A buffer the caller keeps between calls: grown as needed, freed by the caller. */
struct spool_dir_scratch {
    uint8_t *data;
    size_t cap;
};

/* Creates path with its parents (mode 0700) when missing, opens it, takes the lock
 * file (flock, so one xrayd per directory; held until *lockfd is closed) and proves it
 * writable by writing, fsyncing and deleting a file. 0 with both descriptors set, else
 * -errno with err naming the step and the path. */
int spool_dir_open(const char *path, int *dirfd, int *lockfd, char err[XRAY_ERR_LEN]);

/* Lists the spool files of dirfd: deletes temporary files (*temp_files counts them),
 * checks each file's header and size, deletes those that fail after telling
 * on_corrupt (name, why), and returns the rest sorted oldest first in *entries (owned:
 * free()) with *n of them. *next_seq is past every sequence number seen. 0, or -errno
 * / -ENOMEM with err filled and nothing returned. */
int spool_dir_scan(int dirfd, struct spool_dir_entry **entries, size_t *n, uint64_t *next_seq,
                   unsigned *temp_files,
                   void (*on_corrupt)(void *ctx, const char *name, const char *why), void *ctx,
                   char err[XRAY_ERR_LEN]);

/* Writes n files crash-safely: each to its temporary name, all fdatasync'ed, then each
 * renamed to its final name, then the directory fsync'ed. Each w[i].rc says whether
 * that file now exists (a failed one leaves nothing behind). Returns the directory
 * fsync's result. created_ms goes into the headers. */
int spool_dir_write(int dirfd, struct spool_dir_write *w, unsigned n, uint64_t created_ms,
                    struct spool_dir_scratch *scratch);

/* Reads file seq whole into scratch (*len bytes) and checks it (spool_file_check, CRCs
 * included). 0; -ENOENT when it is gone; XRAY_EPARSE with err filled when it is
 * corrupt; another -errno when it cannot be read. */
int spool_dir_read(int dirfd, uint64_t seq, struct spool_dir_scratch *scratch, size_t *len,
                   char err[XRAY_ERR_LEN]);

/* Deletes file seq; 0 when it is gone (or was already), else -errno. */
int spool_dir_remove(int dirfd, uint64_t seq);

#endif
