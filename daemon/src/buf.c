/* SPDX-License-Identifier: Apache-2.0 */
/* struct buf: grow by doubling up to a maximum, never past it. Also the one JSON string
 * escaper (API answers, telemetry, PutTraceSegments bodies): it is on the upload path
 * for every document, so it is vectorised, and always writes the same bytes as its
 * portable byte loop. */
#include "buf.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

void buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b, b->max);
}

int buf_reserve(struct buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return XRAY_ETOOBIG;
    /* No room left for the NUL; only reachable with max == SIZE_MAX. */
    if (b->len + extra == SIZE_MAX)
        return -ENOMEM;
    size_t need = b->len + extra + 1; /* +1 keeps room for a terminating NUL */
    if (need <= b->cap)
        return 0;
    /* max + 1 would wrap to 0 for an unbounded (SIZE_MAX) buffer. */
    size_t limit = b->max < SIZE_MAX ? b->max + 1 : SIZE_MAX;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > limit / 2 ? limit : cap * 2;
    if (cap > limit)
        cap = limit;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc != 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return XRAY_EPARSE;
    int rc = buf_reserve(b, (size_t)n);
    if (rc != 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

static const char buf_hex[] = "0123456789abcdef";

/* How it works (JSON strings): two passes. The first counts the bytes that need
 * escaping ('"', '\\', control characters) so the output is reserved at its exact
 * size; the second copies 16 bytes at a time and stops only at the bytes that need
 * it. Documents are about 16 % quotes, and a byte loop made building an upload body
 * cost more than its SigV4 payload hash. SSE2 is part of x86-64; other targets, and
 * a buffer whose maximum leaves no room for the 16-byte stores, use the byte loop,
 * which writes the same bytes. */
#if defined(__SSE2__)
#include <emmintrin.h>
#define BUF_SIMD 1
#endif

#define BUF_SLACK 16 /* the 16-byte stores may write this far past the real end */

/* The escapes with a two-byte form (RFC 8259 section 7); other control characters
 * take six (\u00XX). */
static inline int buf_short_escape(unsigned c)
{
    return c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f';
}

/* Bytes added by escaping c: 0 when it is copied as it is. */
static inline size_t buf_escaped_extra(unsigned c)
{
    return c == '"' || c == '\\' || buf_short_escape(c) ? 1 : c < 0x20 ? 5 : 0;
}

static inline char *buf_escape_byte(char *o, unsigned char c)
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
        *o++ = buf_hex[c >> 4];
        *o++ = buf_hex[c & 15];
    }
    return o;
}

/* Writes exactly the escaped bytes, nothing past them. */
static char *buf_escape_bytes(char *o, const unsigned char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        memcpy(o, s + run, i - run);
        o = buf_escape_byte(o + (i - run), (unsigned char)c);
        run = i + 1;
    }
    memcpy(o, s + run, n - run);
    return o + (n - run);
}

#ifdef BUF_SIMD
/* 0xff in each lane holding '"', '\\' or a control character; *ctl gets the latter. */
static inline __m128i buf_specials(__m128i v, __m128i *ctl)
{
    const __m128i lim = _mm_set1_epi8(0x1f);
    *ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, lim), lim); /* v <= 0x1f, unsigned */
    __m128i qb =
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    return _mm_or_si128(qb, *ctl);
}
#endif

/* Needs BUF_SLACK writable bytes past the escaped end. */
static char *buf_escape_fast(char *o, const unsigned char *s, size_t n)
{
    size_t i = 0;
#ifdef BUF_SIMD
    while (i + 32 <= n) { /* the loads at i + last stay inside s */
        __m128i ctl;
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        unsigned mask = (unsigned)_mm_movemask_epi8(buf_specials(v, &ctl));
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
                o = buf_escape_byte(o, c);
            }
            last = p + 1;
            mask &= mask - 1;
        } while (mask != 0);
        _mm_storeu_si128((__m128i *)o, _mm_loadu_si128((const __m128i *)(s + i + last)));
        o += 16 - last;
        i += 16;
    }
#endif
    return buf_escape_bytes(o, s + i, n - i);
}

size_t buf_json_string_len(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, extra = 0;
#ifdef BUF_SIMD
    while (i + 16 <= n) {
        /* Lanes count up to 255 before they are summed. */
        __m128i acc = _mm_setzero_si128();
        size_t end = n - i > 16 * 255 ? i + 16 * 255 : n;
        for (; i + 16 <= end; i += 16) {
            __m128i ctl;
            __m128i m = buf_specials(_mm_loadu_si128((const __m128i *)(s + i)), &ctl);
            acc = _mm_sub_epi8(acc, m);
            if (__builtin_expect(_mm_movemask_epi8(ctl) != 0, 0))
                for (int k = 0; k < 16; k++)
                    if (s[i + k] < 0x20 && !buf_short_escape(s[i + k]))
                        extra += 4; /* \u00XX: the lane counted 1 of its 5 */
        }
        __m128i sad = _mm_sad_epu8(acc, _mm_setzero_si128());
        extra += (size_t)_mm_cvtsi128_si32(sad) + (size_t)_mm_extract_epi16(sad, 4);
    }
#endif
    for (; i < n; i++)
        extra += buf_escaped_extra(s[i]);
    return n + extra + 2;
}

int buf_append_json_string(struct buf *b, const char *s, size_t n)
{
    size_t exact = buf_json_string_len(s, n);
    /* The exact size plus room for the 16-byte stores; a buffer whose maximum leaves
     * no such room still gets the string, through the byte loop. */
    int fast = buf_reserve(b, exact + BUF_SLACK) == 0;
    int rc;
    if (!fast && (rc = buf_reserve(b, exact)) != 0)
        return rc;
    const unsigned char *u = (const unsigned char *)s;
    char *o = b->data + b->len;
    *o++ = '"';
    o = fast ? buf_escape_fast(o, u, n) : buf_escape_bytes(o, u, n);
    *o++ = '"';
    b->len += exact;
    assert(o == b->data + b->len);
    b->data[b->len] = '\0';
    return 0;
}
