/* SPDX-License-Identifier: Apache-2.0 */
/* struct buf: grow by doubling up to a maximum, never past it. JSON string escaping
 * copies runs of plain bytes with memcpy: documents are escaped on the upload path. */
#include "buf.h"

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

int buf_append_json_string(struct buf *b, const char *s, size_t n)
{
    /* Worst case: every byte becomes \u00XX. Reserve once, then write freely. */
    size_t room = n * 6 + 2;
    int rc = buf_reserve(b, room);
    if (rc != 0) {
        /* The worst case may not fit though the real output does: count exactly. */
        size_t exact = 2;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            exact += c == '"' || c == '\\' ? 2 : c < 0x20 ? 6 : 1;
        }
        if ((rc = buf_reserve(b, exact)) != 0)
            return rc;
    }
    char *o = b->data + b->len;
    *o++ = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        memcpy(o, s + run, i - run);
        o += i - run;
        run = i + 1;
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
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
    }
    memcpy(o, s + run, n - run);
    o += n - run;
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}
