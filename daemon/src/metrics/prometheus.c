/* SPDX-License-Identifier: Apache-2.0 */
/* The /metrics body from a registry snapshot (text 0.0.4 or OpenMetrics 1.0) and the
 * Accept header choice between them. It never reads the live registry and sends
 * nothing. A scrape of 10,000 series is ~100,000 lines, so a series' labels are
 * escaped once and each line is sized exactly, reserved once and copied in. */
#include "metrics/prometheus.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

#define PROM_LABELS_MAX (16 * 1024) /* one series' escaped labels: 8 x 256 x 3 fits */
#define PROM_NUM_MAX    48          /* a formatted number, le="..." included */

struct prom_writer {
    struct buf *out;
    struct buf lbl; /* the current series' labels, escaped, without braces */
    bool om;
    char le[METRIC_BUCKETS_MAX][PROM_NUM_MAX]; /* the family's le="..." */
    uint8_t le_len[METRIC_BUCKETS_MAX];
};

/* ---- numbers ---- */

static inline char *prom_put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

static size_t prom_u64(char *o, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        o[i] = tmp[n - 1 - i];
    return n;
}

/* Writes the first n of the significant digits d (value 0.d x 10^(e+1)) as %.<p>g
 * would: trailing zeros dropped, fixed notation for -4 <= e < p, else d.ddde+XX. */
static size_t prom_gfmt(char *o, bool neg, const char *d, int n, int e, int p)
{
    char *start = o;
    while (n > 1 && d[n - 1] == '0')
        n--;
    if (neg)
        *o++ = '-';
    if (e < -4 || e >= p) {
        *o++ = d[0];
        if (n > 1) {
            *o++ = '.';
            o = prom_put(o, d + 1, (size_t)n - 1);
        }
        o += sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    } else if (e >= 0) {
        for (int i = 0; i <= e; i++)
            *o++ = i < n ? d[i] : '0';
        if (n > e + 1) {
            *o++ = '.';
            o = prom_put(o, d + e + 1, (size_t)(n - e - 1));
        }
    } else {
        *o++ = '0';
        *o++ = '.';
        for (int i = -1; i > e; i--)
            *o++ = '0';
        o = prom_put(o, d, (size_t)n);
    }
    return (size_t)(o - start);
}

#define PROM_DIGITS 25 /* significant digits libc is asked for, once */

/* The first p of the PROM_DIGITS digits d rounded to nearest into r (p digits); the
 * exponent may go up by one. A tail of exactly 5000... was itself rounded, so the
 * direction is unknown: then libc rounds the value again, at p digits. */
static void prom_round(char *r, int *e, const char *d, int p, double v)
{
    size_t tail = strspn(d + p + 1, "0");
    if (d[p] == '5' && tail == (size_t)(PROM_DIGITS - p - 1)) {
        char tmp[PROM_NUM_MAX];
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, fabs(v));
        r[0] = tmp[0];
        memcpy(r + 1, tmp + 2, (size_t)p - 1);
        *e = atoi(tmp + p + 2);
        return;
    }
    memcpy(r, d, (size_t)p);
    if (d[p] < '5')
        return;
    int i = p - 1;
    while (i >= 0 && r[i] == '9')
        r[i--] = '0';
    if (i >= 0) {
        r[i]++;
    } else { /* 999... became 1000... */
        r[0] = '1';
        ++*e;
    }
}

/* Integers as integers; others in the fewest digits, 15 to 17, that read back as the
 * same double, exactly as %.15g, %.16g or %.17g print them; NaN, +Inf and -Inf as
 * Prometheus spells them.
 * How it works: libc's float formatting is the costliest step of a scrape (a sum per
 * histogram series), so it runs once, for 25 digits; the 15-, 16- and 17-digit forms
 * are those digits rounded (see prom_round()), the shorter ones checked with strtod(). */
static size_t prom_double(char *o, double v)
{
    const char *word = isnan(v) ? "NaN" : v == INFINITY ? "+Inf" : v == -INFINITY ? "-Inf" : NULL;
    if (word != NULL) {
        memcpy(o, word, strlen(word));
        return strlen(word);
    }
    if (fabs(v) < 9007199254740992.0 && v == floor(v)) { /* below 2^53: exact */
        if (v < 0) {
            o[0] = '-';
            return 1 + prom_u64(o + 1, (uint64_t)-v);
        }
        return prom_u64(o, (uint64_t)v);
    }
    char sci[PROM_NUM_MAX], d[PROM_DIGITS + 1], r[17];
    snprintf(sci, sizeof(sci), "%.*e", PROM_DIGITS - 1, fabs(v)); /* d.ddd...e+XX */
    d[0] = sci[0];
    memcpy(d + 1, sci + 2, PROM_DIGITS - 1);
    d[PROM_DIGITS] = '\0';
    int exp = atoi(sci + PROM_DIGITS + 2);
    size_t n = 0;
    for (int p = 15; p <= 17; p++) {
        int e = exp;
        prom_round(r, &e, d, p, v);
        n = prom_gfmt(o, v < 0, r, p, e, p);
        o[n] = '\0';
        if (p == 17 || strtod(o, NULL) == v)
            break;
    }
    return n;
}

/* The family's bucket bounds as label pairs, once per family. OpenMetrics wants
 * them as canonical floats, so an integral bound gets ".0" there. */
static void prom_bounds(struct prom_writer *w, const struct metric_family_def *d)
{
    for (size_t i = 0; i < d->nbuckets; i++) {
        char *o = w->le[i];
        memcpy(o, "le=\"", 4);
        size_t n = 4 + prom_double(o + 4, d->buckets[i]);
        o[n] = '\0';
        if (w->om && strpbrk(o + 4, ".e") == NULL) {
            memcpy(o + n, ".0", 2);
            n += 2;
        }
        o[n++] = '"';
        w->le_len[i] = (uint8_t)n;
    }
}

/* ---- escaping ---- */

/* Bytes of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t prom_utf8(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* Writes the n bytes of s with \\ and \n escaped, and " too when quote; a byte that
 * starts no valid UTF-8 sequence becomes U+FFFD. Needs room for 3 * n bytes. */
static char *prom_escape_to(char *o, const char *str, size_t n, bool quote)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '\\' || c == '\n' || (c == '"' && quote)) {
            *o++ = '\\';
            *o++ = c == '\n' ? 'n' : (char)c;
            i++;
        } else if (c < 0x80) {
            *o++ = (char)c;
            i++;
        } else {
            size_t k = prom_utf8(s + i, n - i);
            if (k == 0) {
                memcpy(o, "\xef\xbf\xbd", 3);
                o += 3;
                i++;
            } else {
                memcpy(o, s + i, k);
                o += k;
                i += k;
            }
        }
    }
    return o;
}

static int prom_escape(struct buf *b, const char *s, bool quote)
{
    size_t n = strlen(s);
    if (n > (SIZE_MAX - 1) / 3)
        return XRAY_ETOOBIG;
    int rc = buf_reserve(b, 3 * n);
    if (rc != 0)
        return rc;
    b->len = (size_t)(prom_escape_to(b->data + b->len, s, n, quote) - b->data);
    b->data[b->len] = '\0';
    return 0;
}

/* The sample's labels as name="value",... into w->lbl, reserved once at their worst. */
static int prom_labels(struct prom_writer *w, const struct metric_sample *m)
{
    size_t nlen[METRIC_LABELS_MAX + 1], vlen[METRIC_LABELS_MAX + 1], worst = 0;
    size_t n = m->nlabels <= METRIC_LABELS_MAX + 1 ? m->nlabels : METRIC_LABELS_MAX + 1;
    for (size_t i = 0; i < n; i++) {
        nlen[i] = strlen(m->labels[i].name);
        vlen[i] = strlen(m->labels[i].value);
        worst += nlen[i] + 3 * vlen[i] + 4; /* , = " " */
    }
    buf_reset(&w->lbl);
    int rc = buf_reserve(&w->lbl, worst);
    if (rc != 0)
        return rc;
    char *o = w->lbl.data;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *o++ = ',';
        o = prom_put(o, m->labels[i].name, nlen[i]);
        *o++ = '=';
        *o++ = '"';
        o = prom_escape_to(o, m->labels[i].value, vlen[i], true);
        *o++ = '"';
    }
    w->lbl.len = (size_t)(o - w->lbl.data);
    return 0;
}

/* ---- lines ---- */

/* One sample line: name suffix{labels,extra} value */
static int prom_line(struct prom_writer *w, const char *name, size_t nlen, const char *suffix,
                     size_t slen, const char *extra, size_t elen, const char *val, size_t vlen)
{
    size_t llen = w->lbl.len;
    size_t braces = llen + elen > 0 ? 2 : 0, comma = llen > 0 && elen > 0;
    size_t n = nlen + slen + braces + llen + comma + elen + 1 + vlen + 1;
    int rc = buf_reserve(w->out, n);
    if (rc != 0)
        return rc;
    char *o = w->out->data + w->out->len;
    o = prom_put(o, name, nlen);
    o = prom_put(o, suffix, slen);
    if (braces) {
        *o++ = '{';
        if (llen)
            o = prom_put(o, w->lbl.data, llen);
        if (comma)
            *o++ = ',';
        if (elen)
            o = prom_put(o, extra, elen);
        *o++ = '}';
    }
    *o++ = ' ';
    o = prom_put(o, val, vlen);
    *o++ = '\n';
    w->out->len += n;
    *o = '\0';
    return 0;
}

static int prom_histogram(struct prom_writer *w, const char *name, size_t nlen,
                          const struct metric_family_def *d, const struct metric_sample *m)
{
    char v[PROM_NUM_MAX];
    int rc = 0;
    for (size_t i = 0; i < d->nbuckets && rc == 0; i++)
        rc = prom_line(w, name, nlen, "_bucket", 7, w->le[i], w->le_len[i], v,
                       prom_u64(v, m->buckets[i]));
    if (rc == 0)
        rc = prom_line(w, name, nlen, "_bucket", 7, "le=\"+Inf\"", 9, v, prom_u64(v, m->count));
    if (rc == 0)
        rc = prom_line(w, name, nlen, "_sum", 4, NULL, 0, v, prom_double(v, m->value));
    if (rc == 0)
        rc = prom_line(w, name, nlen, "_count", 6, NULL, 0, v, prom_u64(v, m->count));
    return rc;
}

static const char *const prom_types[] = {"counter", "gauge", "histogram"};

/* HELP and TYPE carry the family's name: OpenMetrics names a counter family without
 * the _total its samples keep. */
static int prom_header(struct prom_writer *w, const struct metric_family_def *d)
{
    size_t nlen = strlen(d->name);
    if (w->om && d->type == METRIC_COUNTER)
        nlen -= strlen("_total");
    /* Escaped aside first, so the output reserves only what it takes. */
    buf_reset(&w->lbl);
    int rc = prom_escape(&w->lbl, d->help, w->om);
    if (rc == 0)
        rc = buf_appendf(w->out, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)nlen, d->name,
                         w->lbl.data, (int)nlen, d->name, prom_types[d->type]);
    return rc;
}

static int prom_family(struct prom_writer *w, const struct metric_family_snapshot *f)
{
    const struct metric_family_def *d = f->def;
    size_t nlen = strlen(d->name);
    char v[PROM_NUM_MAX];
    int rc = prom_header(w, d);
    if (d->type == METRIC_HISTOGRAM)
        prom_bounds(w, d);
    for (size_t i = 0; i < f->nseries && rc == 0; i++) {
        const struct metric_sample *m = &f->series[i];
        rc = prom_labels(w, m);
        if (rc != 0)
            break;
        if (d->type == METRIC_HISTOGRAM)
            rc = prom_histogram(w, d->name, nlen, d, m);
        else
            rc = prom_line(w, d->name, nlen, "", 0, NULL, 0, v, prom_double(v, m->value));
    }
    return rc;
}

int prometheus_write(const struct registry_snapshot *s, bool openmetrics, struct buf *out)
{
    struct prom_writer *w = malloc(sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    w->out = out;
    w->om = openmetrics;
    buf_init(&w->lbl, PROM_LABELS_MAX);
    size_t start = out->len;
    int rc = 0;
    for (size_t i = 0; i < s->nfamilies && rc == 0; i++)
        rc = prom_family(w, &s->families[i]);
    if (rc == 0 && openmetrics)
        rc = buf_append(out, "# EOF\n", 6);
    buf_free(&w->lbl);
    free(w);
    if (rc != 0) {
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
    }
    return rc == XRAY_ETOOBIG ? -ENOSPC : rc;
}

/* ---- Accept ---- */

struct prom_cursor {
    const char *p, *end;
};

static bool prom_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void prom_skip_ows(struct prom_cursor *c)
{
    while (c->p < c->end && prom_ows(*c->p))
        c->p++;
}

/* Up to (not including) one of stops, outside quotes; returns the length with
 * trailing whitespace trimmed. */
static size_t prom_token(struct prom_cursor *c, const char *stops)
{
    const char *start = c->p;
    while (c->p < c->end && strchr(stops, *c->p) == NULL && *c->p != '\0')
        c->p++;
    const char *e = c->p;
    while (e > start && prom_ows(e[-1]))
        e--;
    return (size_t)(e - start);
}

/* A quoted-string parameter value, backslash escapes included; an unterminated one
 * runs to the end. */
static void prom_quoted(struct prom_cursor *c)
{
    for (c->p++; c->p < c->end && *c->p != '"'; c->p++)
        if (*c->p == '\\' && c->p + 1 < c->end)
            c->p++;
    if (c->p < c->end)
        c->p++;
}

/* A qvalue in thousandths (RFC 9110 section 12.4.2, read leniently: any number of
 * decimals), or -1. */
static int prom_qvalue(const char *s, size_t n)
{
    size_t i = 0;
    int whole = 0, frac = 0, scale = 100;
    if (n == 0 || s[0] < '0' || s[0] > '9')
        return -1;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        if ((whole = whole * 10 + (s[i] - '0')) > 1)
            return -1;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
            frac += (s[i] - '0') * scale;
    int q = whole * 1000 + frac;
    return i == n && q <= 1000 ? q : -1;
}

/* One element's parameters; returns its q (1000 when absent) or -1 when malformed. */
static int prom_params(struct prom_cursor *c)
{
    int q = 1000;
    while (c->p < c->end && *c->p == ';') {
        c->p++;
        prom_skip_ows(c);
        const char *name = c->p;
        size_t nlen = prom_token(c, "=;,");
        if (c->p >= c->end || *c->p != '=')
            continue;
        c->p++;
        prom_skip_ows(c);
        const char *value = c->p;
        size_t vlen;
        if (c->p < c->end && *c->p == '"') {
            prom_quoted(c);
            vlen = 0; /* a quoted q is malformed below */
            prom_token(c, ";,");
        } else {
            vlen = prom_token(c, ";,");
        }
        if (nlen == 1 && (name[0] == 'q' || name[0] == 'Q'))
            q = q < 0 ? q : prom_qvalue(value, vlen);
    }
    return q;
}

static bool prom_is(const char *s, size_t n, const char *type)
{
    return n == strlen(type) && strncasecmp(s, type, n) == 0;
}

static void prom_max(int *best, int q)
{
    if (q > *best)
        *best = q;
}

bool prometheus_wants_openmetrics(const char *accept, size_t len)
{
    if (len == 0)
        return false;
    struct prom_cursor c = {accept, accept + len};
    int om = -1, text = -1, text_any = -1, any = -1; /* q in thousandths; -1: not listed */
    while (c.p < c.end) {
        prom_skip_ows(&c);
        const char *type = c.p;
        size_t tlen = prom_token(&c, ";,");
        int q = prom_params(&c);
        /* Whatever prom_params() stopped at that is not a comma is garbage. */
        while (c.p < c.end && *c.p != ',')
            c.p++;
        if (c.p < c.end)
            c.p++;
        if (q < 0)
            continue;
        if (prom_is(type, tlen, "application/openmetrics-text"))
            prom_max(&om, q);
        else if (prom_is(type, tlen, "text/plain"))
            prom_max(&text, q);
        else if (prom_is(type, tlen, "text/*"))
            prom_max(&text_any, q);
        else if (prom_is(type, tlen, "*/*"))
            prom_max(&any, q);
    }
    int text_q = text >= 0 ? text : text_any >= 0 ? text_any : any >= 0 ? any : 0;
    return om > 0 && om >= text_q;
}
