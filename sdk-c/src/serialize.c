/* SPDX-License-Identifier: Apache-2.0 */
/* The JSON writer of the hot path: a bounded buffer that never allocates, string
 * escaping (control characters as escapes, each byte of invalid UTF-8 as U+FFFD, so
 * every document is valid JSON in valid UTF-8 whatever the host hands us), numbers
 * and times. What a document contains is document.c's job. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void xray__serialize_raw(struct xray__writer *w, const char *s, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0 if invalid
 * (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF). */
static size_t serialize_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

static const char serialize_hex[] = "0123456789abcdef";

/* Escapes s into out (when not NULL); returns the escaped length without quotes. */
static size_t serialize_escape(char *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            size_t run = i + 1;
            while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
                run++;
            if (out)
                memcpy(out + o, p + i, run - i);
            o += run - i;
            i = run;
            continue;
        }
        char esc[6];
        size_t elen = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c < 0x20) {
            char short_form = c == '\n'   ? 'n'
                              : c == '\r' ? 'r'
                              : c == '\t' ? 't'
                              : c == '\b' ? 'b'
                              : c == '\f' ? 'f'
                                          : 0;
            esc[0] = '\\';
            if (short_form) {
                esc[1] = short_form;
                elen = 2;
            } else {
                memcpy(esc + 1, "u00", 3);
                esc[4] = serialize_hex[c >> 4];
                esc[5] = serialize_hex[c & 0xf];
                elen = 6;
            }
        } else {
            size_t ulen = serialize_utf8_len(p + i, n - i);
            if (ulen > 0) {
                if (out)
                    memcpy(out + o, p + i, ulen);
                o += ulen;
                i += ulen;
                continue;
            }
            memcpy(esc, "\xef\xbf\xbd", 3); /* U+FFFD for this one byte */
            elen = 3;
        }
        if (out)
            memcpy(out + o, esc, elen);
        o += elen;
        i++;
    }
    return o;
}

void xray__serialize_string(struct xray__writer *w, const char *s, size_t n)
{
    size_t elen = serialize_escape(NULL, s, n);
    if (w->overflow || elen + 2 > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    w->p[w->len] = '"';
    serialize_escape(w->p + w->len + 1, s, n);
    w->p[w->len + 1 + elen] = '"';
    w->len += elen + 2;
}

/* n cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t serialize_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

const char *xray__serialize_quote(struct xray__arena *a, const char *s, size_t n, size_t max,
                                  size_t *len)
{
    n = serialize_cut(s, n, max);
    size_t elen = serialize_escape(NULL, s, n);
    char *out = xray__arena_alloc(a, elen + 2);
    if (out == NULL)
        return NULL;
    out[0] = '"';
    serialize_escape(out + 1, s, n);
    out[elen + 1] = '"';
    *len = elen + 2;
    return out;
}

char *xray__serialize_quote_dup(const char *s)
{
    size_t n = strlen(s), elen = serialize_escape(NULL, s, n);
    char *out = malloc(elen + 3);
    if (out == NULL)
        return NULL;
    out[0] = '"';
    serialize_escape(out + 1, s, n);
    out[elen + 1] = '"';
    out[elen + 2] = '\0';
    return out;
}

static size_t serialize_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

void xray__serialize_i64(struct xray__writer *w, int64_t v)
{
    char buf[24];
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        buf[n++] = '-';
        u = 0 - u;
    }
    n += serialize_u64(buf + n, u);
    xray__serialize_raw(w, buf, n);
}

void xray__serialize_time(struct xray__writer *w, uint64_t us)
{
    char buf[32];
    size_t n = serialize_u64(buf, us / 1000000);
    uint64_t frac = us % 1000000;
    buf[n++] = '.';
    for (int i = 5; i >= 0; i--) {
        buf[n + (size_t)i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    xray__serialize_raw(w, buf, n + 6);
}

size_t xray__serialize_double(char out[32], double v)
{
    if (!isfinite(v))
        return 0;
    /* The shortest of 15 or 17 significant digits that reads back exactly. */
    int n = snprintf(out, 32, "%.15g", v);
    if (strtod(out, NULL) != v)
        n = snprintf(out, 32, "%.17g", v);
    return n > 0 ? (size_t)n : 0;
}
