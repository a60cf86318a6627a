/* SPDX-License-Identifier: Apache-2.0 */
/* The lexer's cold half: errors, escapes and UTF-8 inside strings (scan_lex_special),
 * and scan_lex_skip(), which validates a whole value without extracting anything (the
 * metadata, cause and unknown keys of a segment). Strictly RFC 8259 and RFC 3629, as
 * jansson reads them: the differential fuzzer compares the two. */
#include "scan_lex.h"

#include "error.h"
#include "scan.h"

const char *scan_lex_fail(struct scan_lex *lx, int rc, const char *at, const char *why)
{
    lx->rc = rc;
    lx->at = at;
    lx->why = why;
    return NULL;
}

/* Length of the valid UTF-8 sequence at p (2 to 4 bytes), 0 if it is not one: no
 * overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629). */
static size_t scan_lex_utf8(const char *sp, const char *send)
{
    const unsigned char *p = (const unsigned char *)sp, *end = (const unsigned char *)send;
    unsigned c = p[0], c1;
    if (c < 0xC2 || c > 0xF4)
        return 0;
    if (end - p < 2 || ((c1 = p[1]) & 0xC0) != 0x80)
        return 0;
    if (c < 0xE0)
        return 2;
    if (end - p < 3 || (p[2] & 0xC0) != 0x80)
        return 0;
    if (c < 0xF0) {
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0))
            return 0; /* overlong, or a UTF-16 surrogate */
        return 3;
    }
    if (end - p < 4 || (p[3] & 0xC0) != 0x80)
        return 0;
    if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))
        return 0; /* overlong, or above U+10FFFF */
    return 4;
}

/* A byte that cannot start what the grammar expects: invalid UTF-8 is reported as
 * such (jansson does too), anything else as a syntax error. */
const char *scan_lex_unexpected(struct scan_lex *lx, const char *p, const char *why)
{
    if (p >= lx->end)
        return scan_lex_fail(lx, XRAY_EPARSE, p, "unexpected end of document");
    if ((unsigned char)*p >= 0x80 && scan_lex_utf8(p, lx->end) == 0)
        return scan_lex_fail(lx, XRAY_EUTF8, p, "invalid UTF-8");
    return scan_lex_fail(lx, XRAY_EPARSE, p, why);
}

static int scan_lex_hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i], l = (char)(c | 0x20);
        if (scan_lex_digit(c))
            v = v << 4 | (c - '0');
        else if (l >= 'a' && l <= 'f')
            v = v << 4 | (l - 'a' + 10);
        else
            return -1;
    }
    return v;
}

const char *scan_lex_special(struct scan_lex *lx, const char *p, unsigned *flags)
{
    const char *end = lx->end;
    unsigned char c = (unsigned char)*p;
    if (c >= 0x80) {
        do {
            size_t n = scan_lex_utf8(p, end);
            if (n == 0)
                return scan_lex_fail(lx, XRAY_EUTF8, p, "invalid UTF-8");
            p += n;
        } while (p < end && (unsigned char)*p >= 0x80);
        return p;
    }
    if (c != '\\')
        return scan_lex_fail(lx, XRAY_EPARSE, p, "control character in a string");
    *flags |= SCAN_LEX_ESCAPED;
    if (end - p < 2)
        return scan_lex_fail(lx, XRAY_EPARSE, p, "unterminated string");
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return p + 2;
    case 'u':
        break;
    default:
        return scan_lex_unexpected(lx, p + 1, "invalid escape");
    }
    int cp = end - p >= 6 ? scan_lex_hex4(p + 2) : -1;
    if (cp < 0)
        return scan_lex_fail(lx, XRAY_EPARSE, p, "invalid \\u escape");
    if (cp == 0)
        *flags |= SCAN_LEX_NUL;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return scan_lex_fail(lx, XRAY_EPARSE, p, "unpaired surrogate escape");
    if (cp < 0xD800 || cp > 0xDBFF)
        return p + 6;
    /* A high surrogate must be followed by a low one (jansson refuses it otherwise). */
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
        return scan_lex_fail(lx, XRAY_EPARSE, p, "unpaired surrogate escape");
    int lo = scan_lex_hex4(p + 8);
    if (lo < 0xDC00 || lo > 0xDFFF)
        return scan_lex_fail(lx, XRAY_EPARSE, p,
                             lo < 0 ? "invalid \\u escape" : "unpaired surrogate escape");
    return p + 12;
}

/* Same grammar as the extractor in scan.c, with a 64-bit stack of array/object bits
 * (SCAN_MAX_DEPTH levels at most) instead of recursion. */
const char *scan_lex_skip(struct scan_lex *lx, const char *p, int depth)
{
    const char *end = lx->end;
    uint64_t arrays = 0; /* bit i: the container i + 1 levels below depth is an array */
    int d = 0;
    unsigned flags;
value:
    if (p >= end)
        return scan_lex_unexpected(lx, p, "expected a value");
    switch (*p) {
    case '"':
        flags = 0;
        if ((p = scan_lex_string(lx, p + 1, &flags)) == NULL)
            return NULL;
        p++;
        break;
    case '{':
    case '[':
        if (depth + d >= SCAN_MAX_DEPTH)
            return scan_lex_fail(lx, XRAY_EDEPTH, p, "nested deeper than 64");
        arrays = (arrays & ~(1ull << d)) | (uint64_t)(*p == '[') << d;
        d++;
        p = scan_lex_ws(p + 1, end);
        if (p < end && *p == (arrays >> (d - 1) & 1 ? ']' : '}')) {
            p++;
            d--;
            break;
        }
        if (arrays >> (d - 1) & 1)
            goto value;
        goto key;
    case 't':
        if (!scan_lex_lit(lx, p, "true", 4))
            return scan_lex_unexpected(lx, p, "invalid literal");
        p += 4;
        break;
    case 'f':
        if (!scan_lex_lit(lx, p, "false", 5))
            return scan_lex_unexpected(lx, p, "invalid literal");
        p += 5;
        break;
    case 'n':
        if (!scan_lex_lit(lx, p, "null", 4))
            return scan_lex_unexpected(lx, p, "invalid literal");
        p += 4;
        break;
    default:
        if (*p != '-' && !scan_lex_digit(*p))
            return scan_lex_unexpected(lx, p, "expected a value");
        if ((p = scan_lex_number(lx, p)) == NULL)
            return NULL;
        break;
    }
after:
    if (d == 0)
        return p;
    p = scan_lex_ws(p, end);
    if (p < end && *p == ',') {
        p = scan_lex_ws(p + 1, end);
        if (arrays >> (d - 1) & 1)
            goto value;
        goto key;
    }
    if (p < end && *p == (arrays >> (d - 1) & 1 ? ']' : '}')) {
        p++;
        d--;
        goto after;
    }
    return scan_lex_unexpected(lx, p, "expected ',' or a closing bracket");
key:
    if (p >= end || *p != '"')
        return scan_lex_unexpected(lx, p, "expected a key");
    flags = 0;
    if ((p = scan_lex_string(lx, p + 1, &flags)) == NULL)
        return NULL;
    if (flags & SCAN_LEX_NUL)
        return scan_lex_fail(lx, XRAY_EPARSE, p, "key contains \\u0000");
    p = scan_lex_ws(p + 1, end);
    if (p >= end || *p != ':')
        return scan_lex_unexpected(lx, p, "expected ':'");
    p = scan_lex_ws(p + 1, end);
    goto value;
}
