/* SPDX-License-Identifier: Apache-2.0 */
/* Decoding the string views scan_document() hands out: escapes resolved on demand,
 * never during the scan, because almost no field a collector reads contains one. The
 * scan has already checked every escape; these functions still stay within s->len and
 * copy a malformed escape through as it is rather than read past it. */
#include "scan.h"

#include <string.h>

/* Decoded bytes of one string, one at a time, for comparisons without a buffer. */
struct scan_str_it {
    const char *p;
    const char *end;
    char u[4]; /* the UTF-8 bytes of the escape being read */
    uint8_t ulen;
    uint8_t upos;
};

static int scan_str_hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

static size_t scan_str_utf8(uint32_t cp, char *u)
{
    if (cp < 0x80) {
        u[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the escape at p (*p == '\\') into u; returns the input bytes it used and
 * sets *ulen to the output bytes. */
static size_t scan_str_escape(const char *p, const char *end, char *u, size_t *ulen)
{
    static const char simple_in[] = "\"\\/bfnrt";
    static const char simple_out[] = "\"\\/\b\f\n\r\t";
    *ulen = 1;
    u[0] = '\\';
    if (end - p < 2)
        return 1;
    const char *s = memchr(simple_in, p[1], sizeof(simple_in) - 1);
    if (s != NULL && p[1] != '\0') {
        u[0] = simple_out[s - simple_in];
        return 2;
    }
    if (p[1] != 'u' || end - p < 6)
        return 1;
    int cp = scan_str_hex4(p + 2);
    if (cp < 0)
        return 1;
    size_t used = 6;
    if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 12 && p[6] == '\\' && p[7] == 'u') {
        int lo = scan_str_hex4(p + 8);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            used = 12;
        }
    }
    *ulen = scan_str_utf8((uint32_t)cp, u);
    return used;
}

static void scan_str_it_init(struct scan_str_it *it, const struct scan_str *s)
{
    it->p = s->p;
    it->end = s->p + s->len;
    it->ulen = 0;
    it->upos = 0;
}

/* The next decoded byte, or -1 at the end. */
static int scan_str_it_next(struct scan_str_it *it)
{
    if (it->upos < it->ulen)
        return (unsigned char)it->u[it->upos++];
    if (it->p >= it->end)
        return -1;
    if (*it->p != '\\')
        return (unsigned char)*it->p++;
    size_t ulen;
    it->p += scan_str_escape(it->p, it->end, it->u, &ulen);
    it->ulen = (uint8_t)ulen;
    it->upos = 1;
    return (unsigned char)it->u[0];
}

size_t scan_str_unescape(const struct scan_str *s, char *out, size_t cap)
{
    size_t n = 0;
    if (s->p != NULL) {
        const char *p = s->p, *end = s->p + s->len;
        while (p < end) {
            const char *bs = s->escaped ? memchr(p, '\\', (size_t)(end - p)) : NULL;
            size_t run = (size_t)((bs != NULL ? bs : end) - p);
            if (n < cap)
                memcpy(out + n, p, run < cap - n ? run : cap - n);
            n += run;
            p += run;
            if (bs == NULL)
                break;
            char u[4];
            size_t ulen;
            p += scan_str_escape(p, end, u, &ulen);
            for (size_t i = 0; i < ulen; i++, n++)
                if (n < cap)
                    out[n] = u[i];
        }
    }
    if (cap > 0)
        out[n < cap ? n : cap - 1] = '\0';
    return n;
}

bool scan_str_eq(const struct scan_str *s, const char *lit, size_t n)
{
    if (s->p == NULL)
        return false;
    if (!s->escaped)
        return s->len == n && memcmp(s->p, lit, n) == 0;
    struct scan_str_it it;
    scan_str_it_init(&it, s);
    for (size_t i = 0; i < n; i++)
        if (scan_str_it_next(&it) != (unsigned char)lit[i])
            return false;
    return scan_str_it_next(&it) < 0;
}

bool scan_str_same(const struct scan_str *a, const struct scan_str *b)
{
    if (a->p == NULL || b->p == NULL)
        return false;
    if (!a->escaped && !b->escaped)
        return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
    struct scan_str_it ia, ib;
    scan_str_it_init(&ia, a);
    scan_str_it_init(&ib, b);
    for (;;) {
        int ca = scan_str_it_next(&ia), cb = scan_str_it_next(&ib);
        if (ca != cb)
            return false;
        if (ca < 0)
            return true;
    }
}
