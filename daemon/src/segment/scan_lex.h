/* SPDX-License-Identifier: Apache-2.0 */
/* The scanner's lexer, shared by scan.c (the extractor) and scan_lex.c (errors, the
 * slow paths, and scan_lex_skip() for values nobody reads). What runs for every token
 * is here as static inline, so both loops get it without a call. Private to segment/:
 * callers use scan.h. */
#ifndef XRAYD_SCAN_LEX_H
#define XRAYD_SCAN_LEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "error.h"

#define SCAN_LEX_ESCAPED 1u /* a string contains a backslash */
#define SCAN_LEX_NUL     2u /* ... and one of them is \u0000 */

/* One scan: the end of the document, and the first error once there is one. */
struct scan_lex {
    const char *end;
    int rc;         /* XRAY_E* */
    const char *at; /* where it was found */
    const char *why;
};

/* Records an error; returns NULL so a reader can `return scan_lex_fail(...)`. */
const char *scan_lex_fail(struct scan_lex *lx, int rc, const char *at, const char *why);

/* An error at p, where the grammar wanted something else: XRAY_EUTF8 when p starts an
 * invalid UTF-8 sequence, XRAY_EPARSE with why otherwise. Returns NULL. */
const char *scan_lex_unexpected(struct scan_lex *lx, const char *p, const char *why);

/* Inside a string, p stopped the fast loop and is not '"': checks the escape, UTF-8
 * run or control character there. Returns where to continue, or NULL. */
const char *scan_lex_special(struct scan_lex *lx, const char *p, unsigned *flags);

/* Validates the value at p (p < end, not whitespace) with depth containers already
 * open, extracting nothing. Returns the byte after it, or NULL (XRAY_EDEPTH past
 * SCAN_MAX_DEPTH). */
const char *scan_lex_skip(struct scan_lex *lx, const char *p, int depth);

/* Skips the four whitespace bytes of RFC 8259 (not \f, not a BOM). */
static inline const char *scan_lex_ws(const char *p, const char *end)
{
    if (p < end && (unsigned char)*p > ' ')
        return p; /* compact JSON: no whitespace at all */
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* The literal lit (n bytes) is at p. */
static inline bool scan_lex_lit(const struct scan_lex *lx, const char *p, const char *lit, size_t n)
{
    return (size_t)(lx->end - p) >= n && memcmp(p, lit, n) == 0;
}

static inline bool scan_lex_digit(char c)
{
    return (unsigned)(c - '0') < 10;
}

/* p is just after an opening quote. Returns the closing quote, or NULL. */
static inline const char *scan_lex_string(struct scan_lex *lx, const char *p, unsigned *flags)
{
    const char *end = lx->end;
    for (;;) {
#if defined(__SSE2__)
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
        const __m128i space = _mm_set1_epi8(0x20);
        while (end - p >= 16) {
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i m = _mm_or_si128(_mm_cmpeq_epi8(b, quote), _mm_cmpeq_epi8(b, bslash));
            /* Signed: bytes >= 0x80 are negative, so this also flags non-ASCII. */
            m = _mm_or_si128(m, _mm_cmplt_epi8(b, space));
            unsigned mask = (unsigned)_mm_movemask_epi8(m);
            if (mask != 0) {
                p += __builtin_ctz(mask);
                goto stop;
            }
            p += 16;
        }
#endif
        while (p < end && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80 && *p != '"' &&
               *p != '\\')
            p++;
        if (p >= end)
            return scan_lex_fail(lx, XRAY_EPARSE, p, "unterminated string");
#if defined(__SSE2__)
    stop:
#endif
        if (*p == '"')
            return p;
        if ((p = scan_lex_special(lx, p, flags)) == NULL)
            return NULL;
    }
}

/* Checks the JSON number at p (its first byte is '-' or a digit); returns its end. */
static inline const char *scan_lex_number(struct scan_lex *lx, const char *p)
{
    const char *end = lx->end;
    if (*p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && scan_lex_digit(*p)) {
        do
            p++;
        while (p < end && scan_lex_digit(*p));
    } else {
        return scan_lex_unexpected(lx, p, "invalid number");
    }
    if (p < end && *p == '.') {
        if (++p >= end || !scan_lex_digit(*p))
            return scan_lex_unexpected(lx, p, "invalid number");
        do
            p++;
        while (p < end && scan_lex_digit(*p));
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !scan_lex_digit(*p))
            return scan_lex_unexpected(lx, p, "invalid number");
        do
            p++;
        while (p < end && scan_lex_digit(*p));
    }
    return p;
}

#endif
