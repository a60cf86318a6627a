/* SPDX-License-Identifier: Apache-2.0 */
/* The `aws` sender. The body is built once per batch straight from the pool's
 * documents into the batch slot's kept buffer (no copy per document, no allocation
 * per call once warm); the response, outside input, is parsed with jansson — it is
 * small and off the per-document path. Retrying is the core's business, not this. */
#include "upstream/upstream_aws.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "ingest/pool.h"
#include "log.h"
#include "upstream/xray.h"

#define AWS_BODY_HEAD "{\"TraceSegmentDocuments\":["
#define AWS_BODY_TAIL "]}"

/* How it works (the body): two passes over each document. The first counts the
 * bytes that need escaping ('"', '\\', control characters) so the body is reserved at
 * its exact size; the second copies 16 bytes at a time and handles only the bytes
 * that need it. The output is byte for byte what buf_append_json_string writes (the
 * tests compare them); it exists because documents are about 16 % quotes, and a byte
 * loop made body building cost more than the SigV4 payload hash. SSE2 is part of
 * x86-64; other targets use the byte loop. */
#if defined(__SSE2__)
#include <emmintrin.h>
#define AWS_SIMD 1
#endif

#define AWS_SLACK 16 /* the 16-byte stores may write this far past the real end */

static const char aws_hex[] = "0123456789abcdef";

static inline int aws_short_escape(unsigned c)
{
    return c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f';
}

/* Escaped size of one byte that needs escaping. */
static inline size_t aws_escaped_extra(unsigned c)
{
    return c == '"' || c == '\\' || aws_short_escape(c) ? 1 : c < 0x20 ? 5 : 0;
}

static inline char *aws_escape_byte(char *o, unsigned char c)
{
    *o++ = '\\';
    switch (c) {
    case '"':
    case '\\':
        *o++ = (char)c;
        break;
    case '\n':
        *o++ = 'n';
        break;
    case '\r':
        *o++ = 'r';
        break;
    case '\t':
        *o++ = 't';
        break;
    case '\b':
        *o++ = 'b';
        break;
    case '\f':
        *o++ = 'f';
        break;
    default:
        *o++ = 'u';
        *o++ = '0';
        *o++ = '0';
        *o++ = aws_hex[c >> 4];
        *o++ = aws_hex[c & 15];
    }
    return o;
}

static char *aws_escape_bytes(char *o, const unsigned char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        memcpy(o, s + run, i - run);
        o = aws_escape_byte(o + (i - run), (unsigned char)c);
        run = i + 1;
    }
    memcpy(o, s + run, n - run);
    return o + (n - run);
}

#ifdef AWS_SIMD
/* 0xff in each lane holding '"', '\\' or a control character; *ctl gets the latter. */
static inline __m128i aws_specials(__m128i v, __m128i *ctl)
{
    const __m128i lim = _mm_set1_epi8(0x1f);
    *ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, lim), lim); /* v <= 0x1f, unsigned */
    __m128i qb =
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    return _mm_or_si128(qb, *ctl);
}
#endif

static size_t aws_escaped_len(const unsigned char *s, size_t n)
{
    size_t i = 0, extra = 0;
#ifdef AWS_SIMD
    while (i + 16 <= n) {
        /* Lanes count up to 255 before they are summed. */
        __m128i acc = _mm_setzero_si128();
        size_t end = n - i > 16 * 255 ? i + 16 * 255 : n;
        for (; i + 16 <= end; i += 16) {
            __m128i ctl;
            __m128i m = aws_specials(_mm_loadu_si128((const __m128i *)(s + i)), &ctl);
            acc = _mm_sub_epi8(acc, m);
            if (__builtin_expect(_mm_movemask_epi8(ctl) != 0, 0))
                for (int k = 0; k < 16; k++)
                    if (s[i + k] < 0x20 && !aws_short_escape(s[i + k]))
                        extra += 4;
        }
        __m128i sad = _mm_sad_epu8(acc, _mm_setzero_si128());
        extra += (size_t)_mm_cvtsi128_si32(sad) + (size_t)_mm_extract_epi16(sad, 4);
    }
#endif
    for (; i < n; i++)
        extra += aws_escaped_extra(s[i]);
    return n + extra;
}

/* Needs AWS_SLACK writable bytes past the escaped end. */
static char *aws_escape_fast(char *o, const unsigned char *s, size_t n)
{
    size_t i = 0;
#ifdef AWS_SIMD
    while (i + 32 <= n) { /* the loads at i + last stay inside s */
        __m128i ctl;
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        unsigned mask = (unsigned)_mm_movemask_epi8(aws_specials(v, &ctl));
        if (mask == 0) {
            _mm_storeu_si128((__m128i *)o, v);
            o += 16;
            i += 16;
            continue;
        }
        unsigned last = 0;
        do {
            unsigned p = (unsigned)__builtin_ctz(mask);
            _mm_storeu_si128((__m128i *)o, _mm_loadu_si128((const __m128i *)(s + i + last)));
            o += p - last;
            unsigned char c = s[i + p];
            if (__builtin_expect(c >= 0x20, 1)) { /* '"' or '\\' */
                o[0] = '\\';
                o[1] = (char)c;
                o += 2;
            } else {
                o = aws_escape_byte(o, c);
            }
            last = p + 1;
            mask &= mask - 1;
        } while (mask != 0);
        _mm_storeu_si128((__m128i *)o, _mm_loadu_si128((const __m128i *)(s + i + last)));
        o += 16 - last;
        i += 16;
    }
#endif
    return aws_escape_bytes(o, s + i, n - i);
}

size_t upstream_aws_body_size(const struct doc *docs)
{
    size_t exact = sizeof(AWS_BODY_HEAD) - 1 + sizeof(AWS_BODY_TAIL) - 1;
    for (const struct doc *d = docs; d != NULL; d = d->next)
        exact += aws_escaped_len((const unsigned char *)d->data, d->len) + 2 + (d != docs);
    return exact;
}

int upstream_aws_body(struct buf *out, const struct doc *docs)
{
    size_t exact = upstream_aws_body_size(docs);
    /* The exact size plus room for the 16-byte stores; a buffer whose maximum leaves
     * no such room still gets the body, through the byte loop. */
    int fast = buf_reserve(out, exact + AWS_SLACK) == 0;
    int rc;
    if (!fast && (rc = buf_reserve(out, exact)) != 0)
        return rc;
    char *o = out->data + out->len;
    memcpy(o, AWS_BODY_HEAD, sizeof(AWS_BODY_HEAD) - 1);
    o += sizeof(AWS_BODY_HEAD) - 1;
    for (const struct doc *d = docs; d != NULL; d = d->next) {
        if (d != docs)
            *o++ = ',';
        *o++ = '"';
        const unsigned char *s = (const unsigned char *)d->data;
        o = fast ? aws_escape_fast(o, s, d->len) : aws_escape_bytes(o, s, d->len);
        *o++ = '"';
    }
    memcpy(o, AWS_BODY_TAIL, sizeof(AWS_BODY_TAIL) - 1);
    o += sizeof(AWS_BODY_TAIL) - 1;
    out->len += exact;
    assert(o == out->data + out->len);
    out->data[out->len] = '\0';
    return 0;
}

static const char *aws_member_string(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

int upstream_aws_parse_response(const char *body, size_t len,
                                void (*each)(void *arg, const char *id, const char *code),
                                void *arg)
{
    if (len == 0)
        return 0;
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return XRAY_EPARSE;
    }
    int n = 0;
    json_t *list = json_object_get(root, "UnprocessedTraceSegments");
    if (list != NULL && !json_is_null(list)) {
        if (!json_is_array(list)) {
            json_decref(root);
            return XRAY_EPARSE;
        }
        size_t count = json_array_size(list);
        for (size_t i = 0; i < count && n < UPSTREAM_AWS_UNPROCESSED_MAX; i++) {
            json_t *e = json_array_get(list, i);
            if (!json_is_object(e))
                continue;
            each(arg, aws_member_string(e, "Id"), aws_member_string(e, "ErrorCode"));
            n++;
        }
    }
    json_decref(root);
    return n;
}

static void aws_on_unprocessed(void *arg, const char *id, const char *code)
{
    upstream_batch_unprocessed(arg, id, code);
}

static void aws_on_response(const struct http_client_result *res, void *data)
{
    struct upstream_batch *b = data;
    int status = xray_result_error(res);
    b->http_status = res->status;
    b->retry_after_ms = res->retry_after_ms;
    if (status == 0 &&
        upstream_aws_parse_response(res->body, res->body_len, aws_on_unprocessed, b) < 0) {
        /* X-Ray said 200: the documents were taken. Count them as sent. */
        XLOG_EVERY(10000, LOG_LEVEL_WARN, "upstream",
                   "PutTraceSegments answered 200 with a body that is not its JSON");
    }
    b->done(b, status);
}

static int aws_send(void *ctx, struct upstream_batch *b,
                    void (*done)(struct upstream_batch *batch, int status))
{
    b->done = done;
    buf_reset(&b->body);
    b->body.max = UPSTREAM_AWS_BODY_MAX;
    int rc = upstream_aws_body(&b->body, b->docs);
    if (rc != 0) {
        XLOG_EVERY(10000, LOG_LEVEL_ERROR, "upstream",
                   "could not build a PutTraceSegments body: %s", xray_strerror(rc));
        return rc;
    }
    return xray_call(ctx, UPSTREAM_AWS_PATH, b->body.data, b->body.len, aws_on_response, b);
}

static const char *aws_last_error(void *ctx)
{
    return xray_last_error(ctx);
}

const struct upstream_ops upstream_aws_ops = {
    .name = "aws",
    .send = aws_send,
    .last_error = aws_last_error,
};
