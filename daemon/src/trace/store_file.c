/* SPDX-License-Identifier: Apache-2.0 */
/* The store's record format. Records are self-delimiting and checked one by one, so a
 * reader stops cleanly at the first torn or damaged record and keeps everything before
 * it. Little-endian throughout:
 *
 *   offset size
 *      0    4  magic "XST1"
 *      4    4  record length, this header included
 *      8    4  CRC-32C of bytes 12 to the end of the record
 *     12    8  arrival (ms, the receiving clock)
 *     20    8  start_time (IEEE 754 double)
 *     28    8  end_time (0 while in progress)
 *     36    1  flags (enum store_file_flag)
 *     37    1  trace id length (1 to 35)
 *     38    1  id length (1 to 64)
 *     39    1  0
 *     40       trace id, id, then the document exactly as received */
#include "trace/store_file.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "error.h"

static const uint8_t store_file_magic[4] = {'X', 'S', 'T', '1'};

static uint32_t store_file_table[256];
static pthread_once_t store_file_table_once = PTHREAD_ONCE_INIT;

static void store_file_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1; /* Castagnoli, reflected */
        store_file_table[i] = c;
    }
}

uint32_t store_file_crc(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&store_file_table_once, store_file_table_init);
    const uint8_t *b = p;
    crc = ~crc;
    while (n--)
        crc = store_file_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void store_file_put(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t store_file_get(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t store_file_bits(double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    return v;
}

static double store_file_double(const uint8_t *p)
{
    uint64_t v = store_file_get(p, 8);
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

size_t store_file_size(const struct store_file_rec *r)
{
    return STORE_FILE_HEADER + r->trace_len + r->id_len + r->len;
}

void store_file_encode(const struct store_file_rec *r, uint8_t *out)
{
    size_t n = store_file_size(r);
    memcpy(out, store_file_magic, 4);
    store_file_put(out + 4, n, 4);
    store_file_put(out + 12, r->arrival_ms, 8);
    store_file_put(out + 20, store_file_bits(r->start), 8);
    store_file_put(out + 28, store_file_bits(r->end), 8);
    out[36] = r->flags;
    out[37] = (uint8_t)r->trace_len;
    out[38] = (uint8_t)r->id_len;
    out[39] = 0;
    uint8_t *p = out + STORE_FILE_HEADER;
    memcpy(p, r->trace_id, r->trace_len);
    memcpy(p + r->trace_len, r->id, r->id_len);
    memcpy(p + r->trace_len + r->id_len, r->doc, r->len);
    store_file_put(out + 8, store_file_crc(0, out + 12, n - 12), 4);
}

int store_file_decode(const uint8_t *p, size_t avail, struct store_file_rec *r, size_t *used)
{
    if (avail < STORE_FILE_HEADER)
        return avail >= 4 && memcmp(p, store_file_magic, 4) != 0 ? XRAY_EPARSE : -EAGAIN;
    size_t n = (size_t)store_file_get(p + 4, 4);
    size_t tn = p[37], in = p[38];
    if (memcmp(p, store_file_magic, 4) != 0 || tn == 0 || tn > STORE_TRACE_ID_MAX || in == 0 ||
        in > STORE_ID_MAX || p[39] != 0 ||
        (p[36] & ~(STORE_FILE_IN_PROGRESS | STORE_FILE_SCANNED)) != 0 ||
        n < STORE_FILE_HEADER + tn + in || n > STORE_FILE_RECORD_MAX)
        return XRAY_EPARSE;
    if (avail < n)
        return -EAGAIN;
    if (store_file_get(p + 8, 4) != store_file_crc(0, p + 12, n - 12))
        return XRAY_EPARSE;
    const char *body = (const char *)p + STORE_FILE_HEADER;
    if (memchr(body, '\0', tn + in) != NULL) /* ids are C strings in the store */
        return XRAY_EPARSE;
    r->trace_id = body;
    r->trace_len = tn;
    r->id = body + tn;
    r->id_len = in;
    r->doc = body + tn + in;
    r->len = n - STORE_FILE_HEADER - tn - in;
    r->arrival_ms = store_file_get(p + 12, 8);
    r->start = store_file_double(p + 20);
    r->end = store_file_double(p + 28);
    r->flags = p[36];
    *used = n;
    return 0;
}
