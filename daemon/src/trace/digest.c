/* SPDX-License-Identifier: Apache-2.0 */
/* A document's digest: its ids, times, status, names and outgoing calls, copied out
 * of a scanned document into one allocation sized exactly, so the document can leave
 * while its trace is assembled. Pure; it never reads past the views the scan gave.
 *
 * How it works: a first pass picks the calls and measures every string (decoded and
 * cut at DIGEST_NAME_MAX on a UTF-8 boundary), a second fills the allocation laid out
 * as [struct digest_doc][calls][ids][strings]. Fixed node types ("remote",
 * "AWS::SQS::Queue", ...) point to static strings, not into the allocation. */
#include "trace/digest.h"

#include <stdlib.h>
#include <string.h>

#define DIGEST_AWS_PREFIX     "AWS::"
#define DIGEST_AWS_PREFIX_LEN 5

/* How a call's node is inferred (service-graph.md, "Nodes"). */
enum digest_kind {
    DIGEST_KIND_REMOTE = 0, /* remote, or traced: (name, "remote") */
    DIGEST_KIND_SERVICE,    /* aws: (name, "AWS::" + name) */
    DIGEST_KIND_TABLE,      /* aws with table_name: (table, "AWS::DynamoDB::Table") */
    DIGEST_KIND_QUEUE,      /* aws with queue_url: (queue name, "AWS::SQS::Queue") */
};

/* What the first pass learnt of one call. */
struct digest_plan {
    const struct scan_segment *s;
    struct scan_str res; /* the table name or the queue URL's last segment */
    size_t name_len, res_len;
    uint8_t kind;
};

static const char digest_type_table[] = "AWS::DynamoDB::Table";
static const char digest_type_queue[] = "AWS::SQS::Queue";
static const char digest_type_remote[] = "remote";

/* FNV-1a 64: stable across runs and hosts, so a malformed id matches itself in every
 * document of a trace. Never 0, which means absent. */
static uint64_t digest_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h != 0 ? h : 1;
}

/* A hex digit's value plus one; 0 for anything else. */
static const uint8_t digest_hex[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

uint64_t digest_id(const struct scan_str *id)
{
    if (id->p == NULL)
        return 0;
    const char *p = id->p;
    size_t n = id->len;
    char tmp[64];
    if (id->escaped) {
        /* An escaped id must match its unescaped twin; a long one only itself. */
        size_t full = scan_str_unescape(id, tmp, sizeof(tmp));
        if (full < sizeof(tmp)) {
            p = tmp;
            n = full;
        }
    }
    if (n == 16) {
        /* Without a branch per digit: every id of every document comes through here. */
        uint64_t v = 0;
        uint8_t bad = 0;
        for (size_t i = 0; i < 16; i++) {
            uint8_t t = digest_hex[(unsigned char)p[i]];
            bad |= (uint8_t)(t == 0);
            v = v << 4 | ((uint64_t)(t - 1u) & 0xf);
        }
        if (!bad && v != 0)
            return v;
    }
    return digest_hash(p, n);
}

enum digest_status digest_classify(bool fault, bool throttle, bool error, int32_t http_status)
{
    if (fault || http_status >= 500)
        return DIGEST_FAULT;
    if (throttle || http_status == 429)
        return DIGEST_THROTTLE;
    if (error || (http_status >= 400 && http_status < 500))
        return DIGEST_ERROR;
    return DIGEST_OK;
}

/* The decoded length of s cut at DIGEST_NAME_MAX bytes, never inside a UTF-8
 * sequence: when the first byte left out continues a character, that character goes. */
static size_t digest_cut_len(const struct scan_str *s)
{
    if (s->p == NULL)
        return 0;
    char tmp[DIGEST_NAME_MAX + 2];
    const char *b = s->p;
    size_t n = s->len;
    if (s->escaped) {
        n = scan_str_unescape(s, tmp, sizeof(tmp));
        b = tmp;
    }
    if (n <= DIGEST_NAME_MAX)
        return n;
    size_t cut = DIGEST_NAME_MAX;
    while (cut > 0 && ((unsigned char)b[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

/* Writes the first n decoded bytes of s and a NUL at *at; returns where they start. */
static const char *digest_put(char **at, const struct scan_str *s, size_t n)
{
    char *dst = *at;
    if (s->escaped)
        scan_str_unescape(s, dst, n + 1);
    else {
        if (n > 0)
            memcpy(dst, s->p, n);
        dst[n] = '\0';
    }
    *at += n + 1;
    return dst;
}

/* The last non-empty path segment of an SQS queue URL (".../123456789012/orders" ->
 * "orders"), as a view into the same bytes. Works on the raw JSON text: '/' is never
 * part of an escape other than "\/", so a segment starts on a character boundary. */
static struct scan_str digest_queue_name(const struct scan_str *url)
{
    const char *p = url->p;
    size_t end = url->len;
    while (end > 0 && p[end - 1] == '/') {
        size_t bs = 0;
        while (bs < end - 1 && p[end - 2 - bs] == '\\')
            bs++;
        end -= 1 + (bs & 1); /* an odd run of backslashes escapes this slash */
    }
    size_t start = end;
    while (start > 0 && p[start - 1] != '/')
        start--;
    struct scan_str r = {p + start, (uint32_t)(end - start), false};
    if (url->escaped)
        r.escaped = memchr(r.p, '\\', r.len) != NULL;
    if (r.len == 0)
        r = *url;
    return r;
}

static bool digest_present(const struct scan_str *s)
{
    return s->p != NULL && s->len > 0;
}

static uint8_t digest_ns(const struct scan_segment *s)
{
    if (scan_str_eq(&s->namespace, "aws", 3))
        return DIGEST_NS_AWS;
    if (scan_str_eq(&s->namespace, "remote", 6))
        return DIGEST_NS_REMOTE;
    return DIGEST_NS_NONE;
}

static bool digest_is_call(const struct scan_segment *s)
{
    return s->traced || digest_ns(s) != DIGEST_NS_NONE;
}

/* Plans call s: its node's kind and the string bytes it needs. */
static size_t digest_plan_call(struct digest_plan *pl, const struct scan_segment *s)
{
    memset(pl, 0, sizeof(*pl));
    pl->s = s;
    pl->name_len = digest_cut_len(&s->name);
    if (digest_ns(s) != DIGEST_NS_AWS) {
        pl->kind = DIGEST_KIND_REMOTE;
        return pl->name_len + 1;
    }
    if (digest_present(&s->aws.table_name)) {
        pl->kind = DIGEST_KIND_TABLE;
        pl->res = s->aws.table_name;
    } else if (digest_present(&s->aws.queue_url)) {
        pl->kind = DIGEST_KIND_QUEUE;
        pl->res = digest_queue_name(&s->aws.queue_url);
    } else {
        pl->kind = DIGEST_KIND_SERVICE;
        return DIGEST_AWS_PREFIX_LEN + pl->name_len + 1;
    }
    pl->res_len = digest_cut_len(&pl->res);
    return pl->name_len + 1 + pl->res_len + 1;
}

static void digest_fill_call(struct digest_call *c, const struct digest_plan *pl, char **at)
{
    const struct scan_segment *s = pl->s;
    c->id = digest_id(&s->id);
    c->in_progress = s->in_progress || !s->has_end_time;
    c->start = s->has_start_time ? s->start_time : 0;
    c->end = c->in_progress ? 0 : s->end_time;
    c->status = (uint8_t)digest_classify(s->fault, s->throttle, s->error, s->http.response.status);
    c->ns = digest_ns(s);
    c->traced = s->traced;
    c->sql = s->sql;
    switch (pl->kind) {
    case DIGEST_KIND_SERVICE: {
        /* One string "AWS::<name>": the name is its tail. */
        char *p = *at;
        memcpy(p, DIGEST_AWS_PREFIX, DIGEST_AWS_PREFIX_LEN);
        *at += DIGEST_AWS_PREFIX_LEN;
        digest_put(at, &s->name, pl->name_len);
        c->resource_type = p;
        c->name = c->resource = p + DIGEST_AWS_PREFIX_LEN;
        break;
    }
    case DIGEST_KIND_TABLE:
    case DIGEST_KIND_QUEUE:
        c->name = digest_put(at, &s->name, pl->name_len);
        c->resource = digest_put(at, &pl->res, pl->res_len);
        c->resource_type = pl->kind == DIGEST_KIND_TABLE ? digest_type_table : digest_type_queue;
        break;
    default:
        c->name = c->resource = digest_put(at, &s->name, pl->name_len);
        c->resource_type = digest_type_remote;
        break;
    }
}

/* Picks the calls in document order: the streamed subsegment itself first when it is
 * one. Returns their string bytes; *dropped when more than DIGEST_CALLS_MAX. */
static size_t digest_plan_calls(const struct segment_view *v, struct digest_plan *plans,
                                uint16_t *ncalls, bool *dropped)
{
    size_t bytes = 0;
    uint16_t n = 0;
    for (int i = -1; i < (int)v->nsub; i++) {
        const struct scan_segment *s = i < 0 ? &v->seg : &v->sub[i];
        if ((i < 0 && !v->subsegment) || !digest_is_call(s))
            continue;
        if (n == DIGEST_CALLS_MAX) {
            *dropped = true;
            break;
        }
        bytes += digest_plan_call(&plans[n++], s);
    }
    *ncalls = n;
    return bytes;
}

struct digest_doc *digest_build(const struct segment_view *v, uint64_t arrived_ms)
{
    const struct scan_segment *seg = &v->seg;
    struct digest_plan plans[DIGEST_CALLS_MAX];
    uint16_t ncalls;
    bool dropped = v->sub_dropped > 0;
    size_t strings = digest_plan_calls(v, plans, &ncalls, &dropped);
    size_t name_len = digest_cut_len(&seg->name);
    size_t origin_len = digest_cut_len(&seg->origin);
    strings += name_len + 1 + (origin_len > 0 ? origin_len + 1 : 0);

    size_t calls_off = sizeof(struct digest_doc);
    size_t ids_off = calls_off + ncalls * sizeof(struct digest_call);
    size_t str_off = ids_off + v->nsub * sizeof(uint64_t);
    size_t size = str_off + strings;
    struct digest_doc *d = malloc(size);
    if (d == NULL)
        return NULL;
    char *base = (char *)d, *at = base + str_off;

    memset(d, 0, sizeof(*d));
    d->arrived_ms = arrived_ms;
    d->id = digest_id(&seg->id);
    d->parent_id = digest_id(&seg->parent_id);
    d->size = (uint32_t)size;
    d->status =
        (uint8_t)digest_classify(seg->fault, seg->throttle, seg->error, seg->http.response.status);
    bool in_progress = seg->in_progress || !seg->has_end_time;
    d->start = seg->has_start_time ? seg->start_time : 0;
    d->end = in_progress ? 0 : seg->end_time;
    d->flags =
        (uint8_t)((v->subsegment ? DIGEST_SUBSEGMENT : 0) | (in_progress ? DIGEST_IN_PROGRESS : 0) |
                  (dropped ? DIGEST_CALLS_DROPPED : 0));
    d->http_status = (int16_t)seg->http.response.status;
    d->name = digest_put(&at, &seg->name, name_len);
    d->origin = origin_len > 0 ? digest_put(&at, &seg->origin, origin_len) : "";

    d->ncalls = ncalls;
    d->calls = ncalls > 0 ? (struct digest_call *)(base + calls_off) : NULL;
    for (uint16_t i = 0; i < ncalls; i++)
        digest_fill_call(&d->calls[i], &plans[i], &at);

    d->nids = v->nsub;
    d->ids = v->nsub > 0 ? (uint64_t *)(base + ids_off) : NULL;
    for (uint16_t i = 0; i < v->nsub; i++)
        d->ids[i] = digest_id(&v->sub[i].id);
    return d;
}
