/* SPDX-License-Identifier: Apache-2.0 */
/* spool_file_decode() on arbitrary bytes: a spool file read back at start-up is outside
 * input (an earlier run, a disk, a user). The first byte picks a mode: bit 0 and bit 1
 * make the harness write correct header and body CRCs into the input first (so the
 * fuzzer reaches the fields behind them), bit 2 skips the body CRC check. Beyond not
 * crashing: a refused file is XRAY_EPARSE with a reason and allocates nothing; an
 * accepted one decodes into exactly the documents its header announces and encodes
 * back to the same bytes. The rest of the input is also tried as a file name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ingest/pool.h"
#include "upstream/spool_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void fuzz_name(const uint8_t *data, size_t size)
{
    char name[48], again[SPOOL_FILE_NAME_LEN];
    size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
    memcpy(name, data, n);
    name[n] = '\0';
    uint64_t seq;
    int kind = spool_file_parse_name(name, &seq);
    check(kind >= 0 && kind <= 2);
    if (kind != 0) {
        spool_file_name(again, seq, kind == 2);
        check(strcmp(name, again) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pool *pool;
    if (pool == NULL)
        pool = pool_create(16u << 20);
    if (size < 1 || size > SPOOL_FILE_MAX + 64)
        return 0;
    unsigned mode = data[0];
    size_t len = size - 1;
    fuzz_name(data + 1, len);
    uint8_t *buf = malloc(len ? len : 1);
    check(buf != NULL);
    memcpy(buf, data + 1, len);
    if ((mode & 1) && len >= SPOOL_FILE_HEADER)
        put32(buf + 28, spool_file_crc(0, buf, 28));
    if ((mode & 2) && len >= SPOOL_FILE_HEADER + SPOOL_FILE_TRAILER)
        put32(buf + len - 4, spool_file_crc(0, buf + SPOOL_FILE_HEADER,
                                            len - SPOOL_FILE_HEADER - SPOOL_FILE_TRAILER));
    int check_crc = !(mode & 4);

    struct doc *docs = (struct doc *)1;
    struct spool_file_info info;
    char err[XRAY_ERR_LEN] = "";
    int rc = spool_file_decode(buf, len, check_crc, pool, 7, &docs, &info, err);
    if (rc != 0) {
        check(rc == XRAY_EPARSE);
        check(err[0] != '\0');
        check(docs == NULL);
        check(pool_doc_count(pool) == 0);
        free(buf);
        return 0;
    }
    unsigned n = 0;
    size_t bytes = 0;
    for (struct doc *d = docs; d != NULL; d = d->next) {
        n++;
        bytes += d->len;
        check(d->len > 0 && d->len <= SPOOL_FILE_DOC_MAX);
        check(memchr(d->trace_id, '\0', sizeof(d->trace_id)) != NULL);
        check(d->id[sizeof(d->id) - 1] == '\0');
    }
    check(n == info.count && n >= 1 && n <= SPOOL_FILE_MAX_DOCS);
    check(bytes == info.data_bytes && info.file_bytes == len);
    check(pool_doc_count(pool) == n);

    size_t cap = spool_file_size(docs, NULL, NULL), out_len = 0;
    check(cap == len);
    uint8_t *out = malloc(cap);
    check(out != NULL);
    check(spool_file_encode(out, cap, docs, info.created_ms, &out_len) == 0);
    check(out_len == len);
    /* Same bytes; the body CRC too unless it was not checked. */
    check(memcmp(out, buf, check_crc ? len : len - SPOOL_FILE_TRAILER) == 0);
    free(out);
    while (docs != NULL) {
        struct doc *next = docs->next;
        pool_free(pool, docs);
        docs = next;
    }
    check(pool_doc_count(pool) == 0);
    free(buf);
    return 0;
}
