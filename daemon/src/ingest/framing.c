/* SPDX-License-Identifier: Apache-2.0 */
/* Checks the header line of every datagram, on the receive path. The common headers
 * are matched with one memcmp; anything else goes through a small, strict JSON
 * reader (bounded nesting, no allocation) that keeps only "format" and "version".
 * It does not look at the body beyond the first bytes that tell OTLP from JSON. */
#include "framing.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "util.h"
#include "stats.h"

#define FRAMING_MAX_DEPTH 32 /* nesting allowed inside unknown header values */

/* What the SDKs send; checked first so the usual datagram costs one memcmp. */
static const char framing_compact[] = "{\"format\":\"json\",\"version\":1}";
static const char framing_spaced[] = "{\"format\": \"json\", \"version\": 1}";

struct framing_reader {
    const char *p;
    const char *end;
};

/* A decoded short string: keys and the "format" value. Only ASCII can match what we
 * look for, so a code point above 0x7f is stored as 0xff and anything longer than
 * the buffer is remembered as too long. */
struct framing_short {
    char s[8];
    size_t len;
    bool too_long;
};

enum framing_field { FIELD_OTHER, FIELD_FORMAT, FIELD_VERSION };

static void framing_ws(struct framing_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r' || *r->p == '\n'))
        r->p++;
}

static void framing_short_put(struct framing_short *out, char c)
{
    if (out == NULL)
        return;
    if (out->len == sizeof(out->s))
        out->too_long = true;
    else
        out->s[out->len++] = c;
}

/* Reads a string starting at its opening quote; decodes it into out when out is not
 * NULL. 0, or -1 when it is not a valid JSON string. */
static int framing_string(struct framing_reader *r, struct framing_short *out)
{
    if (out != NULL) {
        out->len = 0;
        out->too_long = false;
    }
    if (r->p >= r->end || *r->p != '"')
        return -1;
    r->p++;
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p++;
        if (c == '"')
            return 0;
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            framing_short_put(out, c < 0x80 ? (char)c : (char)0xff);
            continue;
        }
        if (r->p >= r->end)
            return -1;
        char e = *r->p++;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            framing_short_put(out, e);
            break;
        case 'b':
            framing_short_put(out, '\b');
            break;
        case 'f':
            framing_short_put(out, '\f');
            break;
        case 'n':
            framing_short_put(out, '\n');
            break;
        case 'r':
            framing_short_put(out, '\r');
            break;
        case 't':
            framing_short_put(out, '\t');
            break;
        case 'u': {
            if (r->end - r->p < 4)
                return -1;
            int cp = 0;
            for (int i = 0; i < 4; i++) {
                int h = hex_value(r->p[i]);
                if (h < 0)
                    return -1;
                cp = cp * 16 + h;
            }
            r->p += 4;
            /* Lone or paired surrogates only ever decode to non-ASCII. */
            framing_short_put(out, cp < 0x80 ? (char)cp : (char)0xff);
            break;
        }
        default:
            return -1;
        }
    }
    return -1;
}

static bool framing_digit(const struct framing_reader *r)
{
    return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

/* Reads a number per the JSON grammar. 0, or -1. */
static int framing_number(struct framing_reader *r)
{
    if (r->p < r->end && *r->p == '-')
        r->p++;
    if (!framing_digit(r))
        return -1;
    if (*r->p++ != '0')
        while (framing_digit(r))
            r->p++;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (!framing_digit(r))
            return -1;
        while (framing_digit(r))
            r->p++;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (!framing_digit(r))
            return -1;
        while (framing_digit(r))
            r->p++;
    }
    return 0;
}

static int framing_literal(struct framing_reader *r, const char *word, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return -1;
    r->p += n;
    return 0;
}

/* Reads (and discards) any JSON value, nested at most FRAMING_MAX_DEPTH deep. */
static int framing_value(struct framing_reader *r, int depth)
{
    if (r->p >= r->end)
        return -1;
    char c = *r->p;
    if (c == '"')
        return framing_string(r, NULL);
    if (c == '-' || (c >= '0' && c <= '9'))
        return framing_number(r);
    if (c == 't')
        return framing_literal(r, "true", 4);
    if (c == 'f')
        return framing_literal(r, "false", 5);
    if (c == 'n')
        return framing_literal(r, "null", 4);
    if (c != '{' && c != '[')
        return -1;
    if (depth >= FRAMING_MAX_DEPTH)
        return -1;
    char close = c == '{' ? '}' : ']';
    r->p++;
    framing_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 0;
    }
    for (;;) {
        if (c == '{') {
            if (framing_string(r, NULL) != 0)
                return -1;
            framing_ws(r);
            if (r->p >= r->end || *r->p++ != ':')
                return -1;
            framing_ws(r);
        }
        if (framing_value(r, depth + 1) != 0)
            return -1;
        framing_ws(r);
        if (r->p >= r->end)
            return -1;
        char sep = *r->p++;
        if (sep == close)
            return 0;
        if (sep != ',')
            return -1;
        framing_ws(r);
    }
}

static bool framing_ascii_eq(const struct framing_short *s, const char *lower)
{
    size_t n = strlen(lower);
    if (s->too_long || s->len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s->s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lower[i])
            return false;
    }
    return true;
}

/* The general case: the header must be exactly one JSON object. As with the reference
 * daemon's decoder, a "format" that is not a string or a "version" that is not an
 * integer makes the header invalid, null leaves the field as it was, and the last
 * duplicate wins. */
static bool framing_header_ok(const char *h, size_t n)
{
    struct framing_reader r = {h, h + n};
    bool format_ok = false, version_ok = false;
    framing_ws(&r);
    if (r.p >= r.end || *r.p++ != '{')
        return false;
    framing_ws(&r);
    if (r.p < r.end && *r.p == '}') {
        r.p++;
        goto done;
    }
    for (;;) {
        struct framing_short key, val;
        if (framing_string(&r, &key) != 0)
            return false;
        enum framing_field field = framing_ascii_eq(&key, "format")    ? FIELD_FORMAT
                                   : framing_ascii_eq(&key, "version") ? FIELD_VERSION
                                                                       : FIELD_OTHER;
        framing_ws(&r);
        if (r.p >= r.end || *r.p++ != ':')
            return false;
        framing_ws(&r);
        if (r.p >= r.end)
            return false;
        const char *start = r.p;
        if (field != FIELD_OTHER && framing_literal(&r, "null", 4) == 0) {
            /* no change */
        } else if (field == FIELD_FORMAT) {
            if (framing_string(&r, &val) != 0)
                return false;
            format_ok = framing_ascii_eq(&val, "json");
        } else if (field == FIELD_VERSION) {
            if (framing_number(&r) != 0)
                return false;
            size_t len = (size_t)(r.p - start);
            /* The reference decodes into an int: a fraction or exponent is an error. */
            if (memchr(start, '.', len) || memchr(start, 'e', len) || memchr(start, 'E', len))
                return false;
            version_ok = len == 1 && *start == '1';
        } else if (framing_value(&r, 1) != 0) {
            return false;
        }
        framing_ws(&r);
        if (r.p >= r.end)
            return false;
        char sep = *r.p++;
        if (sep == '}')
            break;
        if (sep != ',')
            return false;
        framing_ws(&r);
    }
done:
    framing_ws(&r);
    return r.p == r.end && format_ok && version_ok;
}

static int framing_fail(struct framing *out, enum framing_kind kind)
{
    out->body = NULL;
    out->body_len = 0;
    out->kind = kind;
    return XRAY_EHEADER;
}

int framing_parse(const char *dgram, size_t len, struct framing *out)
{
    const char *nl = len ? memchr(dgram, '\n', len) : NULL;
    if (nl == NULL)
        return framing_fail(out, FRAMING_NO_NEWLINE);
    size_t hlen = (size_t)(nl - dgram);
    bool ok = (hlen == sizeof(framing_compact) - 1 && memcmp(dgram, framing_compact, hlen) == 0) ||
              (hlen == sizeof(framing_spaced) - 1 && memcmp(dgram, framing_spaced, hlen) == 0) ||
              framing_header_ok(dgram, hlen);
    if (!ok)
        return framing_fail(out, FRAMING_BAD_HEADER);
    const char *body = nl + 1;
    size_t blen = len - hlen - 1;
    if (blen == 0)
        return framing_fail(out, FRAMING_EMPTY_BODY);
    out->body = body;
    out->body_len = blen;
    if (blen >= 3 && body[0] == 'T' && body[1] == '1' && (body[2] == 'S' || body[2] == 'U'))
        out->kind = FRAMING_OTLP_TRACES;
    else if (blen >= 2 && body[0] == 'M' && body[1] == '1')
        out->kind = FRAMING_OTLP_METRICS;
    else
        out->kind = FRAMING_SEGMENT;
    return 0;
}

int framing_reject_reason(enum framing_kind kind)
{
    switch (kind) {
    case FRAMING_SEGMENT:
        return -1;
    case FRAMING_OTLP_TRACES:
        return STATS_REJECT_OTLP_TRACES;
    case FRAMING_OTLP_METRICS:
        return STATS_REJECT_OTLP_METRICS;
    case FRAMING_NO_NEWLINE:
        return STATS_REJECT_NO_NEWLINE;
    case FRAMING_EMPTY_BODY:
        return STATS_REJECT_EMPTY_BODY;
    case FRAMING_BAD_HEADER:
        break;
    }
    return STATS_REJECT_BAD_HEADER;
}
