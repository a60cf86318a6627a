/* SPDX-License-Identifier: Apache-2.0 */
/* The spool (--spool-dir, --spool-max): batches the upstream gave up on — their
 * retries ran out, or they were still held at shutdown — are written to a directory,
 * one file per batch (spool_file.h), and replayed oldest first through
 * upstream_replay() once the upstream acknowledges uploads again, or at the next
 * start. A file is deleted only after its documents were acknowledged (or refused
 * for good), so a crash or SIGKILL loses nothing that was spooled; a document may be
 * sent twice when the process dies between the acknowledgement and the delete.
 * Loop thread only; the disk work runs on libuv's thread pool, one job at a time. */
#ifndef XRAYD_SPOOL_H
#define XRAYD_SPOOL_H

#include <stdint.h>

#include <uv.h>

#include "error.h"
#include "stats.h"

/* Files kept at most, whatever their bytes; past it the oldest are dropped. It bounds
 * the index of files kept in memory (16 bytes each). */
#define SPOOL_MAX_FILES 65536u
/* The spool's own memory at most: the index (16 bytes a file) and one file's buffer
 * while the thread pool writes or reads it. Documents are in the pool, never here. */
#define SPOOL_MEMORY_MAX (SPOOL_MAX_FILES * 16u + (2u << 20))
/* --spool-max's default. */
#define SPOOL_MAX_BYTES_DEFAULT (256ull << 20)

struct doc;
struct pool;
struct spool;
struct upstream;

struct spool_options {
    uv_loop_t *loop;     /* borrowed */
    struct pool *pool;   /* borrowed: replayed documents are read into it */
    struct stats *stats; /* borrowed: documents dropped count as rejected upload_failed */
    const char *dir;     /* copied; created with its parents (mode 0700) when missing */
    uint64_t max_bytes;  /* bytes of spool files on disk at most; 0 = the default */
};

/* What /healthz and the logs show. Files and bytes include the file being replayed
 * and those being written. */
struct spool_stats {
    uint64_t files;
    uint64_t bytes;
    uint64_t max_bytes;
    uint64_t pending_docs; /* handed over, not written yet */
    uint64_t found_files;  /* valid files found at start-up */
    uint64_t written_files, written_docs;
    uint64_t replayed_files, replayed_docs; /* acknowledged and deleted */
    /* Dropped over the byte or file cap, or because they could not be written; each
     * document is also counted as rejected upload_failed. */
    uint64_t dropped_files, dropped_docs;
    uint64_t corrupt_files; /* failed their checks at start-up or replay: deleted */
    uint64_t temp_files;    /* unfinished temporary files of a crash, deleted at start-up */
    uint64_t memory_bytes;  /* the spool's own memory now, at most SPOOL_MEMORY_MAX */
};

/* Creates the directory when missing, takes its lock file (one xrayd per directory),
 * proves it writable (a file written, fsynced and deleted), deletes leftover
 * temporary files and corrupt files (logged), and indexes the valid files oldest
 * first, dropping the oldest past the caps. 0 with *out set; else -errno or
 * XRAY_ECONFIG with err saying what and where, and *out NULL. Before the loop runs. */
int spool_open(struct spool **out, const struct spool_options *opt, char err[XRAY_ERR_LEN]);

/* Replay may begin: up (borrowed) must outlive the spool's use of it, which ends when
 * up's close callback runs. The files found at start-up are replayed first. */
void spool_start(struct spool *sp, struct upstream *up);

/* The upstream's on_give_up (ctx: the spool): takes ownership of docs, writes them
 * (batched by 50 documents, as uploads) and frees them to the pool; documents that
 * cannot be written are dropped and counted. */
void spool_give_up(void *ctx, struct doc *docs, unsigned count, int status);

/* The upstream's on_ack (ctx: the spool): the upstream answers again, so replay now
 * rather than at the next probe. */
void spool_on_ack(void *ctx);

/* Writes what it was given and not yet written, waits for its disk work, then frees
 * the spool and calls cb. Call it from the upstream's close callback (on_give_up is
 * called until then). Files stay for the next start. */
void spool_close(struct spool *sp, void (*cb)(void *data), void *data);

void spool_get_stats(const struct spool *sp, struct spool_stats *out);
const char *spool_path(const struct spool *sp); /* the directory */

#endif
