/* SPDX-License-Identifier: Apache-2.0 */
/* The spool's file format and names (spool_file.c has the layout): a batch of pool
 * documents encoded as one file, and a file checked and decoded back into pool
 * documents. Pure and leaf code: no I/O, no clock, no logging; errors fill err. The
 * bytes decoded are untrusted (a file left by an earlier run, a disk error, a user):
 * every length is checked before it is used. Any thread; decoding into a pool is for
 * the pool's thread (the loop). */
#ifndef XRAYD_SPOOL_FILE_H
#define XRAYD_SPOOL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "upstream/batcher.h"

struct doc;
struct pool;

#define SPOOL_FILE_VERSION 1u
#define SPOOL_FILE_HEADER  32u /* magic, version, count, body bytes, time, header CRC */
#define SPOOL_FILE_RECORD  76u /* per document before its bytes: length, flags, times, ids */
#define SPOOL_FILE_TRAILER 4u  /* CRC-32C of the records */
/* A file holds one upload batch: at most 50 documents (batcher.h) ... */
#define SPOOL_FILE_MAX_DOCS BATCHER_MAX_DOCS
/* ... of at most BATCHER_MAX_BYTES together, or a single larger document of at most
 * SPOOL_FILE_DOC_MAX (a datagram is at most 64 KiB; this leaves room). */
#define SPOOL_FILE_DATA_MAX BATCHER_MAX_BYTES
#define SPOOL_FILE_DOC_MAX  (1u << 20)
#define SPOOL_FILE_MAX                                                                             \
    (SPOOL_FILE_HEADER + SPOOL_FILE_MAX_DOCS * SPOOL_FILE_RECORD + SPOOL_FILE_DOC_MAX +            \
     SPOOL_FILE_TRAILER)

/* "0123456789abcdef.spool" and "0123456789abcdef.spool.tmp", plus NUL. */
#define SPOOL_FILE_NAME_LEN 32

/* What a header says. */
struct spool_file_info {
    uint32_t count;      /* documents */
    uint32_t body_bytes; /* bytes of the records (heads and documents) */
    uint64_t created_ms; /* wall-clock ms the writer put there; informational */
    size_t file_bytes;   /* the whole file: header + body + trailer */
    size_t data_bytes;   /* the documents' own bytes */
};

/* CRC-32C (Castagnoli) of n bytes, continuing crc (start with 0). */
uint32_t spool_file_crc(uint32_t crc, const void *p, size_t n);

/* The encoded size of the NULL-terminated list docs (through doc->next) and, if not
 * NULL, its count and document bytes. */
size_t spool_file_size(const struct doc *docs, unsigned *count, size_t *data_bytes);

/* Encodes docs into out (cap bytes) and sets *len. XRAY_ETOOBIG when the list is
 * empty, holds more than SPOOL_FILE_MAX_DOCS documents or more than the data limits,
 * or does not fit in cap. docs is borrowed, read only. */
int spool_file_encode(void *out, size_t cap, const struct doc *docs, uint64_t created_ms,
                      size_t *len);

/* Checks the first SPOOL_FILE_HEADER bytes (magic, version, header CRC, counts within
 * the limits) and fills info. XRAY_EPARSE with err filled when they are wrong,
 * including when len is short. */
int spool_file_header(const void *buf, size_t len, struct spool_file_info *info,
                      char err[XRAY_ERR_LEN]);

/* Checks a whole file: the header, len equal to the size it announces, every record's
 * length, flags, padding and ids, and the records' CRC (unless check_crc is false:
 * the caller checked this very buffer already). 0 or XRAY_EPARSE with err filled. */
int spool_file_check(const void *buf, size_t len, bool check_crc, struct spool_file_info *info,
                     char err[XRAY_ERR_LEN]);

/* spool_file_check(), then the documents copied into the pool with now_ms as their
 * receive time, as a NULL-terminated list in file order (owned by the caller, to
 * pool_free). XRAY_EPARSE as above, or XRAY_EFULL when the pool cannot take them all:
 * then nothing is left allocated. */
int spool_file_decode(const void *buf, size_t len, bool check_crc, struct pool *pool,
                      uint64_t now_ms, struct doc **docs, struct spool_file_info *info,
                      char err[XRAY_ERR_LEN]);

/* The file name of seq, or of its temporary file. */
void spool_file_name(char out[SPOOL_FILE_NAME_LEN], uint64_t seq, bool tmp);

/* 1 for a spool file name (*seq set), 2 for a temporary one (*seq set), 0 for any
 * other name. Names are 16 lower-case hex digits, so name order is sequence order. */
int spool_file_parse_name(const char *name, uint64_t *seq);

#endif
