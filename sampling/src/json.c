/* SPDX-License-Identifier: Apache-2.0 */
/* A small JSON writer for the bodies this library produces: a growable buffer that
 * remembers an allocation failure (every later write is a no-op) so callers check
 * once, at the end. Strings are escaped; doubles take their shortest exact form. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void put(struct xray__json *w, const char *s, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (b == NULL) {
            w->oom = true;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

void xray__json_raw(struct xray__json *w, const char *s)
{
    put(w, s, strlen(s));
}

void xray__json_str(struct xray__json *w, const char *s)
{
    put(w, "\"", 1);
    const char *run = s;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(w, run, (size_t)(s - run));
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof(esc), "\\%c", c);
        else
            snprintf(esc, sizeof(esc), "\\u%04x", c);
        put(w, esc, strlen(esc));
        run = s + 1;
    }
    put(w, run, (size_t)(s - run));
    put(w, "\"", 1);
}

void xray__json_i64(struct xray__json *w, int64_t v)
{
    char b[24];
    put(w, b, (size_t)snprintf(b, sizeof(b), "%" PRId64, v));
}

void xray__json_u64(struct xray__json *w, uint64_t v)
{
    char b[24];
    put(w, b, (size_t)snprintf(b, sizeof(b), "%" PRIu64, v));
}

void xray__json_double(struct xray__json *w, double v)
{
    char b[32];
    if (!isfinite(v))
        v = 0;
    int n = 0;
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(b, sizeof(b), "%.*g", prec, v);
        if (strtod(b, NULL) == v)
            break;
    }
    /* printf follows the host's LC_NUMERIC: JSON wants a point whatever it is. */
    for (char *p = b; *p != '\0'; p++)
        if (*p == ',')
            *p = '.';
    put(w, b, (size_t)n);
}

int xray__json_finish(struct xray__json *w, char **out, size_t *len)
{
    if (w->oom) {
        free(w->buf);
        *out = NULL;
        if (len != NULL)
            *len = 0;
        return -ENOMEM;
    }
    *out = w->buf;
    if (len != NULL)
        *len = w->len;
    return 0;
}
