/* SPDX-License-Identifier: Apache-2.0 */
/* One spool file: a batch of documents with what the worker learnt of each, checked
 * end to end. Encoding then decoding gives back the same documents, and decoding then
 * encoding gives back the same bytes: every byte of a valid file has one meaning
 * (padding is zero, ids are NUL-padded, flags are known bits).
 *
 * How it works: the file format, version 1. Integers are little-endian.
 *
 *   header, 32 bytes
 *     0   8  magic "XRAYDSPL"
 *     8   4  version, 1
 *     12  4  count: documents, 1 to 50
 *     16  4  body bytes: the size of the records that follow
 *     20  8  created: wall-clock ms when the batch was written (for logs only)
 *     28  4  CRC-32C of bytes 0 to 27
 *   records, count of them, one per document in upload order
 *     0   4  len: the document's bytes, 1 to 1 MiB
 *     4   1  flags: enum doc_flag (in progress, subsegment); other bits zero
 *     5   3  zero
 *     8   8  start_time, IEEE 754 double
 *     16  8  end_time, IEEE 754 double
 *     24  36 trace_id, NUL-padded; the last byte is NUL
 *     60  16 id, NUL-padded
 *     76  len  the document as received
 *   trailer, 4 bytes: CRC-32C of the records
 *
 * A file is valid only when its size is exactly 32 + body bytes + 4 and the records
 * fill the body exactly, so a truncated or extended file is refused; the two CRCs
 * catch changed bytes. The header is checked alone at start-up (the directory scan
 * reads 32 bytes a file), the rest when the file is read back for replay. */
#include "upstream/spool_file.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ingest/pool.h"

#define SPOOL_FILE_MAGIC     "XRAYDSPL"
#define SPOOL_FILE_FLAGS     (DOC_IN_PROGRESS | DOC_SUBSEGMENT)
#define SPOOL_FILE_TRACE_LEN 36u
#define SPOOL_FILE_ID_LEN    16u

static uint32_t spool_file_table[256];
static pthread_once_t spool_file_table_once = PTHREAD_ONCE_INIT;

static void spool_file_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1; /* Castagnoli, reflected */
        spool_file_table[i] = c;
    }
}

uint32_t spool_file_crc(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&spool_file_table_once, spool_file_table_init);
    const uint8_t *b = p;
    crc = ~crc;
    while (n--)
        crc = spool_file_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint64_t double_bits(double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    return v;
}

static double bits_double(uint64_t v)
{
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

size_t spool_file_size(const struct doc *docs, unsigned *count, size_t *data_bytes)
{
    size_t size = SPOOL_FILE_HEADER + SPOOL_FILE_TRAILER, data = 0;
    unsigned n = 0;
    for (const struct doc *d = docs; d != NULL; d = d->next) {
        size += SPOOL_FILE_RECORD + d->len;
        data += d->len;
        n++;
    }
    if (count != NULL)
        *count = n;
    if (data_bytes != NULL)
        *data_bytes = data;
    return size;
}

/* Whether count documents of data bytes, the largest max_len, fit in one file. */
static bool spool_file_fits(size_t count, size_t data, size_t max_len)
{
    if (count == 0 || count > SPOOL_FILE_MAX_DOCS || max_len == 0 || max_len > SPOOL_FILE_DOC_MAX)
        return false;
    return count == 1 || data <= SPOOL_FILE_DATA_MAX;
}

int spool_file_encode(void *out, size_t cap, const struct doc *docs, uint64_t created_ms,
                      size_t *len)
{
    unsigned count;
    size_t data, max_len = 0;
    size_t size = spool_file_size(docs, &count, &data);
    for (const struct doc *d = docs; d != NULL; d = d->next)
        max_len = d->len > max_len ? d->len : max_len;
    if (!spool_file_fits(count, data, max_len) || size > cap)
        return XRAY_ETOOBIG;
    uint8_t *p = out;
    memset(p, 0, SPOOL_FILE_HEADER);
    memcpy(p, SPOOL_FILE_MAGIC, 8);
    put32(p + 8, SPOOL_FILE_VERSION);
    put32(p + 12, count);
    put32(p + 16, (uint32_t)(size - SPOOL_FILE_HEADER - SPOOL_FILE_TRAILER));
    put64(p + 20, created_ms);
    put32(p + 28, spool_file_crc(0, p, 28));
    uint8_t *r = p + SPOOL_FILE_HEADER;
    for (const struct doc *d = docs; d != NULL; d = d->next) {
        memset(r, 0, SPOOL_FILE_RECORD);
        put32(r, d->len);
        r[4] = d->flags & SPOOL_FILE_FLAGS;
        put64(r + 8, double_bits(d->start_time));
        put64(r + 16, double_bits(d->end_time));
        memcpy(r + 24, d->trace_id, strnlen(d->trace_id, SPOOL_FILE_TRACE_LEN - 1));
        memcpy(r + 60, d->id, strnlen(d->id, SPOOL_FILE_ID_LEN));
        memcpy(r + SPOOL_FILE_RECORD, d->data, d->len);
        r += SPOOL_FILE_RECORD + d->len;
    }
    size_t body = (size_t)(r - (p + SPOOL_FILE_HEADER));
    put32(r, spool_file_crc(0, p + SPOOL_FILE_HEADER, body));
    *len = size;
    return 0;
}

static int spool_file_bad(char err[XRAY_ERR_LEN], const char *why)
{
    if (err != NULL)
        snprintf(err, XRAY_ERR_LEN, "%s", why);
    return XRAY_EPARSE;
}

int spool_file_header(const void *buf, size_t len, struct spool_file_info *info,
                      char err[XRAY_ERR_LEN])
{
    const uint8_t *p = buf;
    memset(info, 0, sizeof(*info));
    if (len < SPOOL_FILE_HEADER)
        return spool_file_bad(err, "truncated header");
    if (memcmp(p, SPOOL_FILE_MAGIC, 8) != 0)
        return spool_file_bad(err, "not a spool file (bad magic)");
    if (get32(p + 28) != spool_file_crc(0, p, 28))
        return spool_file_bad(err, "header checksum mismatch");
    if (get32(p + 8) != SPOOL_FILE_VERSION)
        return spool_file_bad(err, "unknown version");
    uint32_t count = get32(p + 12), body = get32(p + 16);
    if (count == 0 || count > SPOOL_FILE_MAX_DOCS)
        return spool_file_bad(err, "document count out of range");
    uint64_t least = (uint64_t)count * (SPOOL_FILE_RECORD + 1);
    uint64_t most = (uint64_t)count * SPOOL_FILE_RECORD +
                    (count == 1 ? SPOOL_FILE_DOC_MAX : SPOOL_FILE_DATA_MAX);
    if (body < least || body > most)
        return spool_file_bad(err, "body size out of range");
    info->count = count;
    info->body_bytes = body;
    info->created_ms = get64(p + 20);
    info->file_bytes = SPOOL_FILE_HEADER + (size_t)body + SPOOL_FILE_TRAILER;
    info->data_bytes = body - (size_t)count * SPOOL_FILE_RECORD;
    return 0;
}

/* Whether the n bytes at p are a NUL-padded string whose last byte may be required
 * to be NUL: text first, then only NULs. */
static bool spool_file_padded(const uint8_t *p, size_t n, bool nul_last)
{
    size_t i = 0;
    while (i < n && p[i] != 0)
        i++;
    if (nul_last && i == n)
        return false;
    for (; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

int spool_file_check(const void *buf, size_t len, bool check_crc, struct spool_file_info *info,
                     char err[XRAY_ERR_LEN])
{
    int rc = spool_file_header(buf, len, info, err);
    if (rc != 0)
        return rc;
    if (len < info->file_bytes)
        return spool_file_bad(err, "truncated");
    if (len > info->file_bytes)
        return spool_file_bad(err, "longer than its header says");
    const uint8_t *body = (const uint8_t *)buf + SPOOL_FILE_HEADER;
    size_t off = 0, data = 0;
    for (uint32_t i = 0; i < info->count; i++) {
        if (info->body_bytes - off < SPOOL_FILE_RECORD)
            return spool_file_bad(err, "record past the end");
        const uint8_t *r = body + off;
        uint32_t dlen = get32(r);
        if (dlen == 0 || dlen > SPOOL_FILE_DOC_MAX)
            return spool_file_bad(err, "document length out of range");
        if ((r[4] & ~SPOOL_FILE_FLAGS) != 0 || r[5] != 0 || r[6] != 0 || r[7] != 0)
            return spool_file_bad(err, "unknown flags");
        if (!spool_file_padded(r + 24, SPOOL_FILE_TRACE_LEN, true) ||
            !spool_file_padded(r + 60, SPOOL_FILE_ID_LEN, false))
            return spool_file_bad(err, "malformed ids");
        off += SPOOL_FILE_RECORD;
        if (info->body_bytes - off < dlen)
            return spool_file_bad(err, "document past the end");
        off += dlen;
        data += dlen;
    }
    if (off != info->body_bytes)
        return spool_file_bad(err, "records do not fill the body");
    if (info->count > 1 && data > SPOOL_FILE_DATA_MAX)
        return spool_file_bad(err, "documents over the batch size");
    if (check_crc && get32(body + off) != spool_file_crc(0, body, off))
        return spool_file_bad(err, "checksum mismatch");
    return 0;
}

int spool_file_decode(const void *buf, size_t len, bool check_crc, struct pool *pool,
                      uint64_t now_ms, struct doc **docs, struct spool_file_info *info,
                      char err[XRAY_ERR_LEN])
{
    *docs = NULL;
    int rc = spool_file_check(buf, len, check_crc, info, err);
    if (rc != 0)
        return rc;
    struct doc *head = NULL, **tail = &head;
    const uint8_t *r = (const uint8_t *)buf + SPOOL_FILE_HEADER;
    for (uint32_t i = 0; i < info->count; i++) {
        uint32_t dlen = get32(r);
        struct doc *d = pool_alloc(pool, r + SPOOL_FILE_RECORD, dlen, now_ms);
        if (d == NULL) {
            while (head != NULL) {
                struct doc *next = head->next;
                pool_free(pool, head);
                head = next;
            }
            if (err != NULL)
                snprintf(err, XRAY_ERR_LEN, "the buffer memory cannot take %u documents",
                         (unsigned)info->count);
            return XRAY_EFULL;
        }
        d->flags = r[4];
        d->start_time = bits_double(get64(r + 8));
        d->end_time = bits_double(get64(r + 16));
        memcpy(d->trace_id, r + 24, SPOOL_FILE_TRACE_LEN); /* NUL-terminated: checked */
        memcpy(d->id, r + 60, SPOOL_FILE_ID_LEN);
        d->id[SPOOL_FILE_ID_LEN] = '\0';
        *tail = d;
        tail = &d->next;
        r += SPOOL_FILE_RECORD + dlen;
    }
    *docs = head;
    return 0;
}

void spool_file_name(char out[SPOOL_FILE_NAME_LEN], uint64_t seq, bool tmp)
{
    snprintf(out, SPOOL_FILE_NAME_LEN, "%016" PRIx64 ".spool%s", seq, tmp ? ".tmp" : "");
}

int spool_file_parse_name(const char *name, uint64_t *seq)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        unsigned x;
        if (c >= '0' && c <= '9')
            x = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x = (unsigned)(c - 'a' + 10);
        else
            return 0;
        v = v << 4 | x;
    }
    int kind;
    if (strcmp(name + 16, ".spool") == 0)
        kind = 1;
    else if (strcmp(name + 16, ".spool.tmp") == 0)
        kind = 2;
    else
        return 0;
    *seq = v;
    return kind;
}
