/* SPDX-License-Identifier: Apache-2.0 */
/* The store's directory: append-only record files (store_file.h), rotated every few
 * MB; the oldest are deleted when the directory holds more than the store's budget,
 * which is all that memory could hold anyway. Loads what an earlier run left, oldest
 * first. Blocking I/O on the caller's thread (the store's, the worker): appends are
 * buffered, and store_dir_sync() writes them and fsyncs. */
#ifndef XRAYD_STORE_DIR_H
#define XRAYD_STORE_DIR_H

#include <stdint.h>

#include "error.h"
#include "trace/store_file.h"

struct store_dir;

struct store_dir_stats {
    uint64_t disk_bytes; /* in the directory's record files, buffered bytes included */
    uint64_t files;
    uint64_t loaded;  /* records handed to the load callback */
    uint64_t corrupt; /* files that ended in a torn or damaged record, or unreadable */
    uint64_t errors;  /* records lost to write errors, or too large to persist */
};

/* Called with each intact record; r points into a buffer valid for the call. */
typedef void (*store_dir_load_cb)(const struct store_file_rec *r, void *ctx);

/* Opens dir (created with its parents when missing), locks it against a second
 * process, deletes the oldest record files past max_bytes and starts a new file for
 * appends. 0 with *out set (store_dir_close() it), or -errno with err saying what. */
int store_dir_open(const char *dir, uint64_t max_bytes, struct store_dir **out,
                   char err[XRAY_ERR_LEN]);
/* Calls cb for every intact record of the files found at open, oldest first. A file
 * ends at its first torn or damaged record, which is counted, never fatal. Call once,
 * right after store_dir_open(). */
void store_dir_load(struct store_dir *sd, store_dir_load_cb cb, void *ctx);
/* Appends r's record (buffered). 0, or an error: the record is lost and counted. */
int store_dir_append(struct store_dir *sd, const struct store_file_rec *r);
/* Writes what is buffered and fsyncs it (and the directory, after a file was created
 * or deleted). 0 or -errno. */
int store_dir_sync(struct store_dir *sd);
void store_dir_get_stats(const struct store_dir *sd, struct store_dir_stats *out);
/* Syncs, unlocks and frees. sd may be NULL. */
void store_dir_close(struct store_dir *sd);

#endif
