/* SPDX-License-Identifier: Apache-2.0 */
/* Differential fuzzer for segment/scan.c: jansson is the reference. Within the limits
 * (64 KB, 64 deep) scan_document() must accept exactly what jansson parses and the
 * wire.md field rules accept on jansson's tree, and every field it extracts must equal
 * jansson's value. Two deliberate differences: inputs where jansson stops at a number
 * too large for a double are left out (the scanner reads those as infinity), and a raw
 * NUL byte must always be refused (RFC 8259 allows none; jansson 2.14 skips one that
 * follows a number or a literal, as its unget loses it). A mismatch aborts. */
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "segment/scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *fz_data;
static size_t fz_size;

__attribute__((format(printf, 1, 2), noreturn)) static void fz_fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz_scan mismatch: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ninput (%zu bytes): %.*s\n", fz_size, (int)(fz_size < 2000 ? fz_size : 2000),
            (const char *)fz_data);
    abort();
}

/* Strict UTF-8 over the whole input, written apart from the scanner's own check. */
static bool fz_utf8_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = p[i], cp, min;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static int fz_depth(const json_t *j)
{
    int best = 0;
    if (json_is_object(j)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)j, k, x)
        {
            int d = fz_depth(x);
            best = d > best ? d : best;
        }
        return best + 1;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *x;
        json_array_foreach(j, i, x)
        {
            int d = fz_depth(x);
            best = d > best ? d : best;
        }
        return best + 1;
    }
    return 0;
}

static json_t *fz_obj(json_t *o, const char *key)
{
    json_t *x = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_object(x) ? x : NULL;
}

static json_t *fz_get(json_t *o, const char *key)
{
    return json_is_object(o) ? json_object_get(o, key) : NULL;
}

static bool fz_is_str(json_t *x, const char *lit)
{
    return json_is_string(x) && json_string_length(x) == strlen(lit) &&
           memcmp(json_string_value(x), lit, strlen(lit)) == 0;
}

/* The wire.md rules, on jansson's tree. */
static bool fz_rules(json_t *o)
{
    if (!json_is_string(fz_get(o, "name")) || !json_is_string(fz_get(o, "id")) ||
        !json_is_number(fz_get(o, "start_time")))
        return false;
    if (!json_is_number(fz_get(o, "end_time")) && !json_is_true(fz_get(o, "in_progress")))
        return false;
    if (!json_is_string(fz_get(o, "trace_id")))
        return false;
    if (fz_is_str(fz_get(o, "type"), "subsegment") && !json_is_string(fz_get(o, "parent_id")))
        return false;
    return true;
}

static void fz_str(const struct scan_str *s, json_t *x, const char *what)
{
    if (!json_is_string(x)) {
        if (s->p != NULL)
            fz_fail("%s: scanner has a string, jansson has none", what);
        return;
    }
    if (s->p == NULL)
        fz_fail("%s: scanner has no string", what);
    char *buf = malloc((size_t)s->len + 1);
    size_t n = scan_str_unescape(s, buf, (size_t)s->len + 1);
    if (n > s->len || n != json_string_length(x) || memcmp(buf, json_string_value(x), n) != 0)
        fz_fail("%s: scanner '%.*s' (%zu), jansson '%s' (%zu)", what, (int)s->len, s->p, n,
                json_string_value(x), json_string_length(x));
    if (!scan_str_eq(s, json_string_value(x), json_string_length(x)))
        fz_fail("%s: scan_str_eq disagrees with scan_str_unescape", what);
    free(buf);
}

static void fz_num(bool has, double v, json_t *x, const char *what)
{
    if (!json_is_number(x)) {
        if (has)
            fz_fail("%s: scanner has a number, jansson has none", what);
        return;
    }
    double want = json_number_value(x);
    if (!has || memcmp(&v, &want, sizeof(v)) != 0)
        fz_fail("%s: scanner %.17g (has %d), jansson %.17g", what, v, has, want);
}

static void fz_annotations(const struct segment_view *v, const struct scan_segment *s, json_t *o)
{
    json_t *ann = fz_obj(o, "annotations");
    size_t scalars = 0;
    const char *k;
    json_t *x;
    if (ann != NULL)
        json_object_foreach(ann, k, x)
        {
            scalars += json_is_string(x) || json_is_number(x) || json_is_boolean(x);
        }
    if (s->ann_first + s->ann_count > v->_ann_used || v->_ann_used > SCAN_MAX_ANNOTATIONS)
        fz_fail("annotations: run outside ann[]");
    if (s->ann_dropped == 0 && s->ann_count != scalars)
        fz_fail("annotations: scanner kept %u, jansson has %zu", s->ann_count, scalars);
    for (uint16_t i = 0; i < s->ann_count; i++) {
        const struct scan_annotation *a = &v->ann[s->ann_first + i];
        char key[512];
        size_t kn = scan_str_unescape(&a->key, key, sizeof(key));
        if (kn >= sizeof(key))
            continue;
        for (uint16_t j = 0; j < i; j++)
            if (scan_str_same(&a->key, &v->ann[s->ann_first + j].key))
                fz_fail("annotations: key '%s' kept twice", key);
        x = ann != NULL ? json_object_getn(ann, key, kn) : NULL;
        if (x == NULL)
            fz_fail("annotations: key '%s' not in jansson's object", key);
        if (a->kind == SCAN_KIND_STRING) {
            fz_str(&a->value, x, "annotation value");
        } else if (a->kind == SCAN_KIND_NUMBER) {
            double d;
            if (scan_num_value(a->value.p, a->value.len, &d) != 0)
                fz_fail("annotation '%s': scan_num_value failed", key);
            fz_num(true, d, x, "annotation number");
        } else if (a->kind == SCAN_KIND_BOOL) {
            if (!json_is_boolean(x) || json_is_true(x) != a->boolean)
                fz_fail("annotation '%s': boolean differs", key);
        } else {
            fz_fail("annotation '%s': kind %u", key, a->kind);
        }
    }
}

static int32_t fz_status(json_t *x)
{
    if (!json_is_number(x))
        return SCAN_STATUS_NONE;
    double d = json_number_value(x);
    return d >= 0 && d <= 999 && d == (double)(int32_t)d ? (int32_t)d : SCAN_STATUS_NONE;
}

static void fz_segment(const struct segment_view *v, const struct scan_segment *s, json_t *o)
{
    json_t *http = fz_obj(o, "http"), *req = fz_obj(http, "request");
    json_t *resp = fz_obj(http, "response"), *aws = fz_obj(o, "aws");
    fz_str(&s->trace_id, fz_get(o, "trace_id"), "trace_id");
    fz_str(&s->id, fz_get(o, "id"), "id");
    fz_str(&s->parent_id, fz_get(o, "parent_id"), "parent_id");
    fz_str(&s->type, fz_get(o, "type"), "type");
    fz_str(&s->name, fz_get(o, "name"), "name");
    fz_str(&s->origin, fz_get(o, "origin"), "origin");
    fz_str(&s->namespace, fz_get(o, "namespace"), "namespace");
    fz_str(&s->user, fz_get(o, "user"), "user");
    fz_str(&s->http.request.method, fz_get(req, "method"), "http.request.method");
    fz_str(&s->http.request.url, fz_get(req, "url"), "http.request.url");
    fz_str(&s->http.request.user_agent, fz_get(req, "user_agent"), "http.request.user_agent");
    fz_str(&s->http.request.client_ip, fz_get(req, "client_ip"), "http.request.client_ip");
    fz_str(&s->aws.operation, fz_get(aws, "operation"), "aws.operation");
    fz_str(&s->aws.table_name, fz_get(aws, "table_name"), "aws.table_name");
    fz_str(&s->aws.queue_url, fz_get(aws, "queue_url"), "aws.queue_url");
    fz_str(&s->aws.region, fz_get(aws, "region"), "aws.region");
    if (s->http.response.status != fz_status(fz_get(resp, "status")))
        fz_fail("http.response.status: scanner %d, jansson %d", s->http.response.status,
                fz_status(fz_get(resp, "status")));
    fz_num(s->has_start_time, s->start_time, fz_get(o, "start_time"), "start_time");
    fz_num(s->has_end_time, s->end_time, fz_get(o, "end_time"), "end_time");
    if (s->in_progress != json_is_true(fz_get(o, "in_progress")) ||
        s->error != json_is_true(fz_get(o, "error")) ||
        s->throttle != json_is_true(fz_get(o, "throttle")) ||
        s->fault != json_is_true(fz_get(o, "fault")))
        fz_fail("in_progress/error/throttle/fault differ");
    fz_annotations(v, s, o);
}

/* jansson's subsegments, depth first in document order, as the scanner stores them. */
static void fz_subsegments(const struct segment_view *v, json_t *o, int parent, size_t *n)
{
    json_t *arr = fz_get(o, "subsegments"), *x;
    size_t i;
    if (!json_is_array(arr))
        return;
    json_array_foreach(arr, i, x)
    {
        if (!json_is_object(x))
            continue;
        size_t idx = (*n)++;
        if (idx < v->nsub) {
            if (v->sub[idx].parent != parent)
                fz_fail("sub[%zu].parent: scanner %d, jansson %d", idx, v->sub[idx].parent, parent);
            fz_segment(v, &v->sub[idx], x);
        }
        fz_subsegments(v, x, idx < SCAN_MAX_SUBSEGMENTS ? (int)idx : -2, n);
    }
}

/* When the whole input is a JSON number, scan_num_value() must equal strtod(). */
static void fz_number(const uint8_t *data, size_t size)
{
    char buf[4096];
    double got;
    if (size >= sizeof(buf) || scan_num_value((const char *)data, size, &got) != 0)
        return;
    memcpy(buf, data, size);
    buf[size] = '\0';
    double want = strtod(buf, NULL);
    if (memcmp(&got, &want, sizeof(got)) != 0)
        fz_fail("scan_num_value %.17g, strtod %.17g", got, want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct segment_view v;
    fz_data = data;
    fz_size = size;
    fz_number(data, size);
    int rc = scan_document((const char *)data, size, &v);
    if (size > SCAN_MAX_BYTES) {
        if (rc != XRAY_ETOOBIG)
            fz_fail("over 64 KB but rc %d", rc);
        return 0;
    }
    if (rc == XRAY_EUTF8 && fz_utf8_ok(data, size))
        fz_fail("EUTF8 on valid UTF-8");
    if (rc != 0 && (v.why == NULL || v.err_offset > size))
        fz_fail("error %d without a reason or with offset %u", rc, v.err_offset);

    if (memchr(data, '\0', size) != NULL) {
        if (rc == 0 || rc == XRAY_EFIELD)
            fz_fail("raw NUL byte but rc %d", rc);
        return 0;
    }

    json_error_t err;
    json_t *j =
        json_loadb((const char *)data, size, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
    if (j == NULL) {
        if (json_error_code(&err) == json_error_numeric_overflow)
            return 0;
        if (rc == 0 || rc == XRAY_EFIELD)
            fz_fail("scanner rc %d, jansson rejects: %s", rc, err.text);
        return 0;
    }
    if (fz_depth(j) > SCAN_MAX_DEPTH) {
        if (rc != XRAY_EDEPTH)
            fz_fail("deeper than 64 but rc %d", rc);
    } else if (!json_is_object(j)) {
        if (rc != XRAY_EPARSE)
            fz_fail("not an object but rc %d", rc);
    } else if (fz_rules(j)) {
        if (rc != 0)
            fz_fail("rc %d (%s at %u), jansson and the rules accept", rc, v.why, v.err_offset);
        if (v.subsegment != fz_is_str(fz_get(j, "type"), "subsegment"))
            fz_fail("subsegment flag differs");
        fz_segment(&v, &v.seg, j);
        size_t n = 0;
        fz_subsegments(&v, j, -1, &n);
        size_t kept = n < SCAN_MAX_SUBSEGMENTS ? n : SCAN_MAX_SUBSEGMENTS;
        if (v.nsub != kept || v.sub_dropped != n - kept)
            fz_fail("subsegments: scanner %u + %u dropped, jansson %zu", v.nsub, v.sub_dropped, n);
    } else if (rc != XRAY_EFIELD) {
        fz_fail("rules fail on jansson's tree but rc %d", rc);
    }
    json_decref(j);
    return 0;
}
