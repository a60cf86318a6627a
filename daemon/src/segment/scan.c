/* SPDX-License-Identifier: Apache-2.0 */
/* scan_document(): checks a segment document against wire.md and extracts the fields
 * the collector reads, in one pass over the bytes, with no allocation, no recursion
 * and no copies. It accepts exactly the JSON jansson accepts (the differential fuzzer
 * in tests/fuzz/fuzz_scan.c holds it to that) with two exceptions: numbers too large
 * for a double pass (as +-inf), and a raw NUL byte never does (jansson 2.14 drops one
 * that follows a number or a literal; RFC 8259 allows none).
 *
 * How it works: two loops over the bytes, both state machines with explicit stacks.
 *  - The extractor (here) walks the objects whose keys matter: the document, its
 *    "http", "http.request", "http.response", "aws" and "annotations" objects, the
 *    "subsegments" arrays and the subsegments in them, at any depth. It keeps, per
 *    nesting level, what the container is (ctx[]) and, for subsegments, the
 *    sub_dropped count to restore when a repeated "subsegments" key replaces the
 *    array before it (mark[]). A key is recognised by its length and a memcmp.
 *  - Every other value (metadata, cause, sql, unknown keys) goes to scan_lex_skip(),
 *    a tighter loop that only validates.
 * Both share the string reader of scan_lex.h: SSE2 compares 16 bytes at a time
 * against '"', '\\' and, with one signed compare, every byte below 0x20 or above
 * 0x7f; escapes and UTF-8 are checked out of line, so ASCII text costs a load and
 * three compares per 16 bytes. Numbers are converted only where a field needs them.
 * A repeated key overwrites the earlier value (jansson keeps the last one), which is
 * why every known key first clears what it sets. */
#include "scan.h"

#include <math.h>

#include <stddef.h>
#include <string.h>

#include "error.h"
#include "scan_lex.h"

/* What an open container is, for the extractor. */
enum scan_ctx {
    CTX_SEG,     /* the document or a subsegment kept in sub[] */
    CTX_DSEG,    /* a subsegment past SCAN_MAX_SUBSEGMENTS: only counted */
    CTX_HTTP,    /* seg.http */
    CTX_REQ,     /* seg.http.request */
    CTX_RESP,    /* seg.http.response */
    CTX_AWS,     /* seg.aws */
    CTX_ANN,     /* seg.annotations */
    CTX_SUBARR,  /* seg.subsegments */
    CTX_DSUBARR, /* the subsegments of a dropped subsegment */
};

enum scan_field {
    F_NONE,
    F_TRACE_ID, /* string fields: F_TRACE_ID .. F_REGION, see scan_str_off[] */
    F_ID,
    F_PARENT_ID,
    F_TYPE,
    F_NAME,
    F_ORIGIN,
    F_NAMESPACE,
    F_USER,
    F_METHOD,
    F_URL,
    F_USER_AGENT,
    F_CLIENT_IP,
    F_OPERATION,
    F_TABLE_NAME,
    F_QUEUE_URL,
    F_REGION,
    F_START,
    F_END,
    F_STATUS,
    F_IN_PROGRESS,
    F_ERROR,
    F_THROTTLE,
    F_FAULT,
    F_TRACED,
    F_SQL,
    F_HTTP,
    F_REQUEST,
    F_RESPONSE,
    F_AWS,
    F_ANNOTATIONS,
    F_SUBSEGMENTS,
};

static const uint16_t scan_str_off[F_REGION + 1] = {
    [F_TRACE_ID] = offsetof(struct scan_segment, trace_id),
    [F_ID] = offsetof(struct scan_segment, id),
    [F_PARENT_ID] = offsetof(struct scan_segment, parent_id),
    [F_TYPE] = offsetof(struct scan_segment, type),
    [F_NAME] = offsetof(struct scan_segment, name),
    [F_ORIGIN] = offsetof(struct scan_segment, origin),
    [F_NAMESPACE] = offsetof(struct scan_segment, namespace),
    [F_USER] = offsetof(struct scan_segment, user),
    [F_METHOD] = offsetof(struct scan_segment, http.request.method),
    [F_URL] = offsetof(struct scan_segment, http.request.url),
    [F_USER_AGENT] = offsetof(struct scan_segment, http.request.user_agent),
    [F_CLIENT_IP] = offsetof(struct scan_segment, http.request.client_ip),
    [F_OPERATION] = offsetof(struct scan_segment, aws.operation),
    [F_TABLE_NAME] = offsetof(struct scan_segment, aws.table_name),
    [F_QUEUE_URL] = offsetof(struct scan_segment, aws.queue_url),
    [F_REGION] = offsetof(struct scan_segment, aws.region),
};

#define SCAN_KEY(lit, f)                                                                           \
    if (memcmp(k, lit, sizeof(lit) - 1) == 0)                                                      \
    return f

/* Which field the key k (n raw bytes, no escapes) names in a container of kind ctx. */
static enum scan_field scan_key(int ctx, const char *k, uint32_t n)
{
    switch (ctx) {
    case CTX_SEG:
        switch (n) {
        case 2:
            SCAN_KEY("id", F_ID);
            break;
        case 3:
            SCAN_KEY("aws", F_AWS);
            SCAN_KEY("sql", F_SQL);
            break;
        case 4:
            SCAN_KEY("name", F_NAME);
            SCAN_KEY("http", F_HTTP);
            SCAN_KEY("type", F_TYPE);
            SCAN_KEY("user", F_USER);
            break;
        case 5:
            SCAN_KEY("fault", F_FAULT);
            SCAN_KEY("error", F_ERROR);
            break;
        case 6:
            SCAN_KEY("origin", F_ORIGIN);
            SCAN_KEY("traced", F_TRACED); /* Node puts it here, other SDKs in http.request */
            break;
        case 8:
            SCAN_KEY("trace_id", F_TRACE_ID);
            SCAN_KEY("end_time", F_END);
            SCAN_KEY("throttle", F_THROTTLE);
            break;
        case 9:
            SCAN_KEY("parent_id", F_PARENT_ID);
            SCAN_KEY("namespace", F_NAMESPACE);
            break;
        case 10:
            SCAN_KEY("start_time", F_START);
            break;
        case 11:
            SCAN_KEY("subsegments", F_SUBSEGMENTS);
            SCAN_KEY("annotations", F_ANNOTATIONS);
            SCAN_KEY("in_progress", F_IN_PROGRESS);
            break;
        }
        return F_NONE;
    case CTX_DSEG:
        return n == 11 && memcmp(k, "subsegments", 11) == 0 ? F_SUBSEGMENTS : F_NONE;
    case CTX_HTTP:
        if (n == 7)
            SCAN_KEY("request", F_REQUEST);
        if (n == 8)
            SCAN_KEY("response", F_RESPONSE);
        return F_NONE;
    case CTX_REQ:
        if (n == 3)
            SCAN_KEY("url", F_URL);
        if (n == 6) {
            SCAN_KEY("method", F_METHOD);
            SCAN_KEY("traced", F_TRACED);
        }
        if (n == 9)
            SCAN_KEY("client_ip", F_CLIENT_IP);
        if (n == 10)
            SCAN_KEY("user_agent", F_USER_AGENT);
        return F_NONE;
    case CTX_RESP:
        return n == 6 && memcmp(k, "status", 6) == 0 ? F_STATUS : F_NONE;
    case CTX_AWS:
        if (n == 6)
            SCAN_KEY("region", F_REGION);
        if (n == 9) {
            SCAN_KEY("operation", F_OPERATION);
            SCAN_KEY("queue_url", F_QUEUE_URL);
        }
        if (n == 10)
            SCAN_KEY("table_name", F_TABLE_NAME);
        return F_NONE;
    }
    return F_NONE;
}

/* A key with escapes ("n\u0061me" is "name" to jansson): decoded first. */
static enum scan_field scan_key_escaped(int ctx, const char *k, uint32_t n)
{
    char buf[16];
    struct scan_str str = {k, n, true};
    size_t len = scan_str_unescape(&str, buf, sizeof(buf));
    return len < sizeof(buf) ? scan_key(ctx, buf, (uint32_t)len) : F_NONE;
}

static void scan_segment_init(struct scan_segment *seg, int16_t parent)
{
    memset(seg, 0, sizeof(*seg));
    seg->http.response.status = SCAN_STATUS_NONE;
    seg->parent = parent;
}

static int32_t scan_status(double d)
{
    return d >= 0 && d <= 999 && d == (double)(int32_t)d ? (int32_t)d : SCAN_STATUS_NONE;
}

/* One member of an annotations object: kept when its value is a string, number or
 * boolean, replacing an earlier member with the same (decoded) key. */
static const char *scan_annotation(struct scan_lex *lx, struct segment_view *v,
                                   struct scan_segment *seg, struct scan_str key, const char *p,
                                   int depth)
{
    struct scan_annotation a = {.key = key};
    const char *b = p;
    unsigned flags = 0;
    if (*p == '"') {
        if ((p = scan_lex_string(lx, b + 1, &flags)) == NULL)
            return NULL;
        a.value = (struct scan_str){b + 1, (uint32_t)(p - b - 1), flags & SCAN_LEX_ESCAPED};
        a.kind = SCAN_KIND_STRING;
        p++;
    } else if (*p == '-' || scan_lex_digit(*p)) {
        if ((p = scan_lex_number(lx, p)) == NULL)
            return NULL;
        a.value = (struct scan_str){b, (uint32_t)(p - b), false};
        a.kind = SCAN_KIND_NUMBER;
    } else if (scan_lex_lit(lx, p, "true", 4) || scan_lex_lit(lx, p, "false", 5)) {
        a.boolean = *p == 't';
        a.kind = SCAN_KIND_BOOL;
        p += a.boolean ? 4 : 5;
    } else if ((p = scan_lex_skip(lx, p, depth)) == NULL) {
        return NULL;
    }

    char k8[9] = {0};
    if (key.escaped) {
        a._klen = (uint32_t)scan_str_unescape(&key, k8, sizeof(k8));
    } else {
        a._klen = key.len;
        memcpy(k8, key.p, key.len < 8 ? key.len : 8);
    }
    memcpy(&a._k8, k8, 8);

    struct scan_annotation *run = &v->ann[seg->ann_first];
    for (uint16_t i = 0; i < seg->ann_count; i++) {
        if (run[i]._klen != a._klen || run[i]._k8 != a._k8 || !scan_str_same(&run[i].key, &key))
            continue;
        if (a.kind != 0) {
            run[i] = a;
        } else {
            /* No longer an annotation. The run is the last one in ann[] while its
             * object is read, so closing the gap frees a slot. */
            memmove(&run[i], &run[i + 1], (size_t)(seg->ann_count - i - 1) * sizeof(a));
            seg->ann_count--;
            v->_ann_used--;
        }
        return p;
    }
    if (a.kind == 0)
        return p;
    if (v->_ann_used < SCAN_MAX_ANNOTATIONS) {
        v->ann[v->_ann_used++] = a;
        seg->ann_count++;
    } else if (seg->ann_dropped < UINT16_MAX) {
        seg->ann_dropped++;
    }
    return p;
}

int scan_document(const char *doc, size_t len, struct segment_view *v)
{
    struct scan_lex s = {.end = doc + len};
    const char *p = doc, *end = doc + len;
    struct scan_segment *seg = &v->seg;
    uint8_t ctx[SCAN_MAX_DEPTH + 1];
    uint32_t mark[SCAN_MAX_DEPTH + 1]; /* CTX_SEG/CTX_DSEG: sub_dropped when it opened */
    int depth = 1, open = 0;
    unsigned flags;

    scan_segment_init(seg, -1);
    v->subsegment = false;
    v->nsub = 0;
    v->sub_dropped = 0;
    v->why = NULL;
    v->err_offset = 0;
    v->_ann_used = 0;
    if (len > SCAN_MAX_BYTES) {
        scan_lex_fail(&s, XRAY_ETOOBIG, doc, "document over 64 KB");
        goto fail;
    }
    p = scan_lex_ws(p, end);
    if (p >= end || *p != '{') {
        scan_lex_unexpected(&s, p, "not a JSON object");
        goto fail;
    }
    p++;
    ctx[1] = CTX_SEG;
    mark[1] = 0;

obj_open: /* just after the '{' of a container the extractor walks */
    p = scan_lex_ws(p, end);
    if (p < end && *p == '}') {
        p++;
        goto close;
    }
member : {
    if (p >= end || *p != '"') {
        scan_lex_unexpected(&s, p, "expected a key");
        goto fail;
    }
    const char *k = p + 1;
    flags = 0;
    if ((p = scan_lex_string(&s, k, &flags)) == NULL)
        goto fail;
    struct scan_str key = {k, (uint32_t)(p - k), flags & SCAN_LEX_ESCAPED};
    if (flags & SCAN_LEX_NUL) {
        scan_lex_fail(&s, XRAY_EPARSE, k, "key contains \\u0000");
        goto fail;
    }
    p = scan_lex_ws(p + 1, end);
    if (p >= end || *p != ':') {
        scan_lex_unexpected(&s, p, "expected ':'");
        goto fail;
    }
    p = scan_lex_ws(p + 1, end);
    if (p >= end) {
        scan_lex_unexpected(&s, p, "expected a value");
        goto fail;
    }
    if (ctx[depth] == CTX_ANN) {
        if ((p = scan_annotation(&s, v, seg, key, p, depth)) == NULL)
            goto fail;
        goto next_member;
    }
    enum scan_field f = key.escaped ? scan_key_escaped(ctx[depth], key.p, key.len)
                                    : scan_key(ctx[depth], key.p, key.len);
    if (f >= F_TRACE_ID && f <= F_REGION) {
        struct scan_str *dst = (struct scan_str *)(void *)((char *)seg + scan_str_off[f]);
        if (*p == '"') {
            const char *b = p + 1;
            flags = 0;
            if ((p = scan_lex_string(&s, b, &flags)) == NULL)
                goto fail;
            *dst = (struct scan_str){b, (uint32_t)(p - b), flags & SCAN_LEX_ESCAPED};
            p++;
            goto next_member;
        }
        *dst = (struct scan_str){NULL, 0, false};
        goto skip;
    }
    switch (f) {
    case F_START:
    case F_END:
    case F_STATUS: {
        const char *b = p;
        double d = 0;
        bool num = *p == '-' || scan_lex_digit(*p);
        if (num) {
            if ((p = scan_lex_number(&s, p)) == NULL)
                goto fail;
            scan_num_value(b, (size_t)(p - b), &d);
            /* 1e999 is valid JSON but no time: X-Ray cannot store it, and a stored
             * infinity has been seen to break readers of the trace. */
            num = isfinite(d);
        } else if ((p = scan_lex_skip(&s, p, depth)) == NULL) {
            goto fail;
        }
        if (f == F_START) {
            seg->has_start_time = num;
            seg->start_time = d;
        } else if (f == F_END) {
            seg->has_end_time = num;
            seg->end_time = d;
        } else {
            seg->http.response.status = num ? scan_status(d) : SCAN_STATUS_NONE;
        }
        goto next_member;
    }
    case F_IN_PROGRESS:
    case F_ERROR:
    case F_THROTTLE:
    case F_FAULT:
    case F_TRACED: {
        bool t = scan_lex_lit(&s, p, "true", 4);
        if (t)
            p += 4;
        else if ((p = scan_lex_skip(&s, p, depth)) == NULL)
            goto fail;
        if (f == F_IN_PROGRESS)
            seg->in_progress = t;
        else if (f == F_ERROR)
            seg->error = t;
        else if (f == F_THROTTLE)
            seg->throttle = t;
        else if (f == F_TRACED)
            seg->traced = t;
        else
            seg->fault = t;
        goto next_member;
    }
    case F_SQL:
        seg->sql = *p == '{';
        goto skip;
    case F_HTTP:
        memset(&seg->http, 0, sizeof(seg->http));
        seg->http.response.status = SCAN_STATUS_NONE;
        open = CTX_HTTP;
        goto object;
    case F_REQUEST:
        memset(&seg->http.request, 0, sizeof(seg->http.request));
        open = CTX_REQ;
        goto object;
    case F_RESPONSE:
        seg->http.response.status = SCAN_STATUS_NONE;
        open = CTX_RESP;
        goto object;
    case F_AWS:
        memset(&seg->aws, 0, sizeof(seg->aws));
        open = CTX_AWS;
        goto object;
    case F_ANNOTATIONS:
        seg->ann_first = v->_ann_used;
        seg->ann_count = 0;
        seg->ann_dropped = 0;
        open = CTX_ANN;
        goto object;
    case F_SUBSEGMENTS:
        /* A repeated key replaces the array before it, and with it every subsegment
         * added since this (sub)segment opened: they are all its descendants. */
        if (ctx[depth] == CTX_SEG) {
            v->nsub = (uint16_t)(seg == &v->seg ? 0 : seg - v->sub + 1);
            open = CTX_SUBARR;
        } else {
            open = CTX_DSUBARR;
        }
        v->sub_dropped = mark[depth];
        if (*p != '[')
            goto skip;
        if (depth >= SCAN_MAX_DEPTH) {
            scan_lex_fail(&s, XRAY_EDEPTH, p, "nested deeper than 64");
            goto fail;
        }
        ctx[++depth] = (uint8_t)open;
        p++;
        goto arr_open;
    default:
        goto skip;
    }
}
object: /* a key whose value the extractor walks if it is an object */
    if (*p != '{')
        goto skip;
    if (depth >= SCAN_MAX_DEPTH) {
        scan_lex_fail(&s, XRAY_EDEPTH, p, "nested deeper than 64");
        goto fail;
    }
    ctx[++depth] = (uint8_t)open;
    p++;
    goto obj_open;
skip:
    if ((p = scan_lex_skip(&s, p, depth)) == NULL)
        goto fail;
next_member:
    p = scan_lex_ws(p, end);
    if (p < end && *p == ',') {
        p = scan_lex_ws(p + 1, end);
        goto member;
    }
    if (p < end && *p == '}') {
        p++;
        goto close;
    }
    scan_lex_unexpected(&s, p, "expected ',' or '}'");
    goto fail;

arr_open: /* just after the '[' of a "subsegments" array */
    p = scan_lex_ws(p, end);
    if (p < end && *p == ']') {
        p++;
        goto close;
    }
element:
    if (p < end && *p == '{') {
        if (depth >= SCAN_MAX_DEPTH) {
            scan_lex_fail(&s, XRAY_EDEPTH, p, "nested deeper than 64");
            goto fail;
        }
        depth++;
        if (ctx[depth - 1] == CTX_SUBARR && v->nsub < SCAN_MAX_SUBSEGMENTS) {
            struct scan_segment *sub = &v->sub[v->nsub++];
            scan_segment_init(sub, (int16_t)(seg == &v->seg ? -1 : seg - v->sub));
            seg = sub;
            ctx[depth] = CTX_SEG;
        } else {
            v->sub_dropped++;
            ctx[depth] = CTX_DSEG;
        }
        mark[depth] = v->sub_dropped;
        p++;
        goto obj_open;
    }
    if (p >= end) {
        scan_lex_unexpected(&s, p, "expected a value");
        goto fail;
    }
    if ((p = scan_lex_skip(&s, p, depth)) == NULL)
        goto fail;
next_element:
    p = scan_lex_ws(p, end);
    if (p < end && *p == ',') {
        p = scan_lex_ws(p + 1, end);
        goto element;
    }
    if (p < end && *p == ']') {
        p++;
        goto close;
    }
    scan_lex_unexpected(&s, p, "expected ',' or ']'");
    goto fail;

close: /* p is past the bracket that closed ctx[depth] */
    if (ctx[depth] == CTX_SEG && seg != &v->seg)
        seg = seg->parent < 0 ? &v->seg : &v->sub[seg->parent];
    if (--depth > 0) {
        if (ctx[depth] == CTX_SUBARR || ctx[depth] == CTX_DSUBARR)
            goto next_element;
        goto next_member;
    }

    p = scan_lex_ws(p, end);
    if (p < end) {
        scan_lex_unexpected(&s, p, "bytes after the document");
        goto fail;
    }
    /* The rules of wire.md, on the values that won. */
    seg = &v->seg;
    if (seg->name.p == NULL)
        s.why = "name missing or not a string";
    else if (seg->id.p == NULL)
        s.why = "id missing or not a string";
    else if (!seg->has_start_time)
        s.why = "start_time missing or not a number";
    else if (!seg->has_end_time && !seg->in_progress)
        s.why = "neither end_time (a number) nor \"in_progress\": true";
    else if (seg->trace_id.p == NULL)
        s.why = "trace_id missing or not a string";
    else if ((v->subsegment = scan_str_eq(&seg->type, "subsegment", 10)) &&
             seg->parent_id.p == NULL)
        s.why = "parent_id missing or not a string in a subsegment";
    if (s.why == NULL)
        return 0;
    v->why = s.why;
    v->err_offset = 0;
    return XRAY_EFIELD;

fail:
    v->why = s.why;
    v->err_offset = (uint32_t)(s.at - doc);
    return s.rc;
}
