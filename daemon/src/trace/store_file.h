/* SPDX-License-Identifier: Apache-2.0 */
/* The record format of the store's files: one record per stored document, appended in
 * arrival order; store_dir.c does the I/O. Pure; any thread. */
#ifndef XRAYD_STORE_FILE_H
#define XRAYD_STORE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segment/scan.h"
#include "trace/store.h"

#define STORE_FILE_HEADER 40u
/* A scanned document is at most SCAN_MAX_BYTES; store_put() documents larger than that
 * stay in memory only. */
#define STORE_FILE_RECORD_MAX                                                                      \
    (STORE_FILE_HEADER + STORE_TRACE_ID_MAX + STORE_ID_MAX + SCAN_MAX_BYTES)

enum store_file_flag {
    STORE_FILE_IN_PROGRESS = 1u << 0,
    STORE_FILE_SCANNED = 1u << 1, /* stored by store_add(): rescan it when loading */
};

/* One record; the pointers are borrowed (into the caller's bytes, or into the buffer
 * store_file_decode() read). Ids are not NUL-terminated here. */
struct store_file_rec {
    const char *trace_id;
    const char *id;
    const char *doc;
    size_t trace_len, id_len, len;
    uint64_t arrival_ms;
    double start, end;
    uint8_t flags; /* enum store_file_flag */
};

/* CRC-32C (Castagnoli) of n bytes, continuing crc (start with 0). */
uint32_t store_file_crc(uint32_t crc, const void *p, size_t n);

/* The encoded size of r. */
size_t store_file_size(const struct store_file_rec *r);
/* Writes r's record (store_file_size(r) bytes) to out. Ids must be 1 to
 * STORE_TRACE_ID_MAX and STORE_ID_MAX bytes. */
void store_file_encode(const struct store_file_rec *r, uint8_t *out);
/* Reads the record at the start of the avail bytes at p: 0 with r pointing into p and
 * *used set to its size; -EAGAIN when p holds only the start of a valid-looking record
 * (a torn tail, at the end of a file); XRAY_EPARSE when it is not a record (bad magic,
 * lengths, flags or CRC). */
int store_file_decode(const uint8_t *p, size_t avail, struct store_file_rec *r, size_t *used);

#endif
