/* SPDX-License-Identifier: Apache-2.0 */
/* The segment scanner: one pass over a segment document that checks what wire.md asks
 * of it and extracts the fields the collector reads, as views into the document's own
 * bytes. No allocation, no copies, no recursion; pure and thread-safe (each thread
 * uses its own struct segment_view). */
#ifndef XRAYD_SCAN_H
#define XRAYD_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCAN_MAX_BYTES       65536 /* wire.md: a document is at most 64 KB at X-Ray */
#define SCAN_MAX_DEPTH       64    /* wire.md: nested at most 64 deep ({} is depth 1) */
#define SCAN_MAX_SUBSEGMENTS 64    /* nested subsegment views kept; more are counted */
#define SCAN_MAX_ANNOTATIONS 64    /* annotation views kept per document; X-Ray indexes 50 */
#define SCAN_STATUS_NONE     (-1)  /* http.response.status absent or not an integer 0..999 */

/* A JSON string as it appears in the document: the bytes between the quotes, escapes
 * not decoded. p is NULL when the field is absent or its value is not a string. The
 * bytes are valid UTF-8 and every escape is valid (the scan checked them). */
struct scan_str {
    const char *p;
    uint32_t len;
    bool escaped; /* contains a backslash: decode with scan_str_unescape() */
};

enum scan_kind {
    SCAN_KIND_STRING = 1, /* value is the string */
    SCAN_KIND_NUMBER,     /* value is the number's text: convert with scan_num_value() */
    SCAN_KIND_BOOL,       /* boolean holds it; value is empty */
};

/* One member of an "annotations" object whose value is a string, number or boolean
 * (other members are not annotations). Keys are unique within one object, decoded. */
struct scan_annotation {
    struct scan_str key;
    struct scan_str value;
    uint8_t kind; /* enum scan_kind */
    bool boolean;
    uint32_t _klen; /* decoded key length and first 8 bytes: a quick duplicate test */
    uint64_t _k8;
};

/* The fields of a segment or of a nested subsegment. A field appears only at its
 * documented path (an "http" object inside metadata is not the segment's http); when a
 * key repeats, the last one wins, as in jansson. */
struct scan_segment {
    struct scan_str trace_id, id, parent_id, type, name, origin, namespace, user;
    struct {
        struct {
            struct scan_str method, url, user_agent, client_ip;
        } request;
        struct {
            int32_t status; /* SCAN_STATUS_NONE unless an integral number 0..999 */
        } response;
    } http;
    struct {
        struct scan_str operation, table_name, queue_url, region;
    } aws;
    double start_time; /* epoch seconds, valid when has_start_time */
    double end_time;   /* valid when has_end_time */
    bool has_start_time, has_end_time;
    bool in_progress, error, throttle, fault; /* true only when the value is JSON true */
    bool traced;        /* "traced": true, at the top (Node) or in http.request (the others) */
    bool sql;           /* an "sql" object is present: a database call */
    int16_t parent;     /* in segment_view.sub[]: index of the parent there, -1 = the document */
    uint16_t ann_first; /* annotations: segment_view.ann[ann_first .. ann_first+ann_count) */
    uint16_t ann_count;
    uint16_t ann_dropped; /* annotation members not kept: SCAN_MAX_ANNOTATIONS was reached */
};

/* What scan_document() fills. About 22 KB: keep one per worker and reuse it; only the
 * parts in use are written, so reuse costs nothing. Every view points into the
 * document passed to scan_document() and is valid as long as those bytes are. */
struct segment_view {
    struct scan_segment seg; /* the document itself */
    bool subsegment;         /* "type": "subsegment": a subsegment sent on its own */
    uint16_t nsub;           /* entries of sub[] in use */
    uint32_t sub_dropped;    /* nested subsegments beyond SCAN_MAX_SUBSEGMENTS, not in sub[] */
    const char *why;         /* on error: a static sentence saying what was wrong */
    uint32_t err_offset;     /* on error: byte offset where it was found */
    uint16_t _ann_used;      /* ann[] slots taken (a repeated "annotations" key wastes some) */
    /* Nested subsegments ("subsegments" arrays at any depth), depth first in document
     * order: a parent comes before its children. */
    struct scan_segment sub[SCAN_MAX_SUBSEGMENTS];
    struct scan_annotation ann[SCAN_MAX_ANNOTATIONS];
};

/* Checks and scans the len bytes of doc (not NUL-terminated) into out. Returns 0 when
 * the document is a valid segment document per wire.md: a JSON object (RFC 8259, as
 * jansson accepts it, except that numbers too large for a double are accepted and read
 * as +-inf) in valid UTF-8, at most SCAN_MAX_BYTES and SCAN_MAX_DEPTH deep, with name
 * and id (strings), start_time (number), end_time (number) or "in_progress": true,
 * trace_id (string) and, when "type" is "subsegment", parent_id (string). Nothing else
 * is checked. Errors: XRAY_ETOOBIG, XRAY_EPARSE (not JSON, not an object, or a key
 * containing \u0000, which jansson refuses), XRAY_EUTF8, XRAY_EDEPTH, XRAY_EFIELD; out->why
 * and out->err_offset then say why and where, and the other fields of out are
 * unspecified. Borrowed: doc (out's views point into it) and out. Any thread. */
int scan_document(const char *doc, size_t len, struct segment_view *out);

/* Writes the decoded value of s (escapes resolved; may contain NUL bytes from \u0000)
 * into out like snprintf: at most cap - 1 bytes, then a NUL when cap > 0. Returns the
 * full decoded length; it never exceeds s->len, so cap = s->len + 1 always suffices.
 * An absent string decodes as empty. s must come from scan_document(). */
size_t scan_str_unescape(const struct scan_str *s, char *out, size_t cap);

/* True when s is present and its decoded value is exactly the n bytes of lit. */
bool scan_str_eq(const struct scan_str *s, const char *lit, size_t n);

/* True when a and b are both present and decode to the same bytes. */
bool scan_str_same(const struct scan_str *a, const struct scan_str *b);

/* Converts a JSON number (RFC 8259 grammar, exactly len bytes) to the nearest double,
 * as strtod() does in the C locale: +-inf when too large, 0 or a subnormal when too
 * small. 0 or XRAY_EPARSE when the text is not a JSON number. Any thread. */
int scan_num_value(const char *p, size_t len, double *out);

#endif
