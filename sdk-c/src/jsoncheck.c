/* SPDX-License-Identifier: Apache-2.0 */
/* Checks that a metadata value handed to us as JSON text is one well-formed JSON
 * value (RFC 8259) in valid UTF-8, nested no deeper than a bound, so it can be copied
 * into a document as is. It validates only: no tree is built. Recursion is bounded by
 * the depth limit. */
#include <string.h>

#include "internal.h"

struct jc {
    const unsigned char *p, *end;
};

static void jc_ws(struct jc *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool jc_lit(struct jc *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool jc_digits(struct jc *c)
{
    const unsigned char *s = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > s;
}

static bool jc_number(struct jc *c)
{
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (!jc_digits(c))
        return false;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!jc_digits(c))
            return false;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!jc_digits(c))
            return false;
    }
    return true;
}

static bool jc_ishex(unsigned char h)
{
    return (h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F');
}

static bool jc_string(struct jc *c)
{
    c->p++; /* the opening quote */
    while (c->p < c->end) {
        unsigned char ch = *c->p;
        if (ch == '"') {
            c->p++;
            return true;
        }
        if (ch < 0x20)
            return false;
        if (ch == '\\') {
            if (c->end - c->p < 2)
                return false;
            unsigned char e = c->p[1];
            if (e == 'u') {
                if (c->end - c->p < 6)
                    return false;
                for (int i = 2; i < 6; i++)
                    if (!jc_ishex(c->p[i]))
                        return false;
                c->p += 6;
            } else if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
                c->p += 2;
            } else
                return false;
            continue;
        }
        if (ch < 0x80) {
            c->p++;
            continue;
        }
        /* Multi-byte: same rules as the writer's (RFC 3629). */
        size_t len;
        unsigned char lo = 0x80, hi = 0xbf;
        if (ch >= 0xc2 && ch <= 0xdf)
            len = 2;
        else if (ch >= 0xe0 && ch <= 0xef) {
            len = 3;
            lo = ch == 0xe0 ? 0xa0 : 0x80;
            hi = ch == 0xed ? 0x9f : 0xbf;
        } else if (ch >= 0xf0 && ch <= 0xf4) {
            len = 4;
            lo = ch == 0xf0 ? 0x90 : 0x80;
            hi = ch == 0xf4 ? 0x8f : 0xbf;
        } else
            return false;
        if ((size_t)(c->end - c->p) < len || c->p[1] < lo || c->p[1] > hi)
            return false;
        for (size_t i = 2; i < len; i++)
            if ((c->p[i] & 0xc0) != 0x80)
                return false;
        c->p += len;
    }
    return false;
}

static bool jc_value(struct jc *c, int depth);

static bool jc_container(struct jc *c, int depth, bool object)
{
    unsigned char close = object ? '}' : ']';
    if (depth <= 0)
        return false;
    c->p++;
    jc_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return true;
    }
    for (;;) {
        if (object) {
            jc_ws(c);
            if (c->p >= c->end || *c->p != '"' || !jc_string(c))
                return false;
            jc_ws(c);
            if (c->p >= c->end || *c->p != ':')
                return false;
            c->p++;
        }
        if (!jc_value(c, depth - 1))
            return false;
        jc_ws(c);
        if (c->p >= c->end)
            return false;
        if (*c->p == close) {
            c->p++;
            return true;
        }
        if (*c->p != ',')
            return false;
        c->p++;
    }
}

static bool jc_value(struct jc *c, int depth)
{
    jc_ws(c);
    if (c->p >= c->end)
        return false;
    switch (*c->p) {
    case '{':
        return jc_container(c, depth, true);
    case '[':
        return jc_container(c, depth, false);
    case '"':
        return jc_string(c);
    case 't':
        return jc_lit(c, "true");
    case 'f':
        return jc_lit(c, "false");
    case 'n':
        return jc_lit(c, "null");
    default:
        return jc_number(c);
    }
}

int xray__jsoncheck_value(const char *json, size_t len, int max_depth)
{
    if (json == NULL)
        return XRAY_SDK_EJSON;
    struct jc c = {(const unsigned char *)json, (const unsigned char *)json + len};
    if (!jc_value(&c, max_depth))
        return XRAY_SDK_EJSON;
    jc_ws(&c);
    return c.p == c.end ? 0 : XRAY_SDK_EJSON;
}
