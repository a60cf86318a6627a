/* SPDX-License-Identifier: Apache-2.0 */
/* Assembles inbound requests from http-parser callbacks into bounded buffers: the
 * request line and headers in one (each piece NUL-terminated), the decoded body in
 * another. It knows nothing of sockets or routes. Invariants: never more than
 * max_header header bytes or max_body body bytes are held (and, given a memory budget,
 * no byte that budget did not grant first), and the parser pauses after each complete
 * request, so pipelined requests are handed out one at a time. */
#include "http/request.h"

#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "budget.h"
#include "buf.h"
#include "error.h"

#define REQUEST_KEEP_BODY_CAP (64u * 1024) /* larger body buffers are freed between requests */

enum request_part { PART_NONE, PART_URL, PART_FIELD, PART_VALUE };

/* Header positions are offsets while the head buffer may still move. */
struct request_offsets {
    size_t name, name_len, value, value_len;
};

struct http_request_parser {
    http_parser p;
    struct http_request req;
    struct buf head; /* url, then name\0value\0 pairs */
    struct buf body;
    struct budget_meter *mem; /* what head and body grow under; NULL: only their maxima */
    size_t body_keep;         /* what a body must leave free of mem */
    size_t max_header;
    size_t max_body;
    size_t head_bytes; /* counted against max_header, trailers included */
    size_t url_len;
    struct request_offsets offs[HTTP_MAX_HEADERS];
    size_t nheaders;
    enum request_part part;
    size_t part_start;
    int status;
    bool field_open; /* a name was read, its value not yet */
    bool headers_done;
    bool ready;
    bool want_continue;
    bool upgraded;
    bool over_budget; /* status 503 because mem had no room */
    bool too_big;     /* the head passed max_header or HTTP_MAX_HEADERS: 431 at its end */
};

static const char request_empty[] = "";

const char *http_request_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->header_count; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

static struct http_request_parser *request_of(http_parser *p)
{
    return p->data;
}

static int request_fail(struct http_request_parser *rp, int status)
{
    if (rp->status == 0)
        rp->status = status;
    return -1;
}

/* Room for extra more bytes in b, charged to the budget: 0, or -1 with the status set
 * (too_big past b's own maximum, 503 when memory is short). */
static int request_room(struct http_request_parser *rp, struct buf *b, size_t extra, bool exact,
                        int too_big)
{
    int rc = budget_buf_reserve(rp->mem, b, extra, exact, b == &rp->body ? rp->body_keep : 0);
    if (rc == 0)
        return 0;
    if (rc == XRAY_EFULL && rp->status == 0)
        rp->over_budget = true;
    return request_fail(rp, rc == XRAY_EFULL || rc == -ENOMEM ? 503 : too_big);
}

/* Closes the piece being collected: NUL-terminates it and records where it is. */
static int request_end_part(struct http_request_parser *rp)
{
    if (rp->part == PART_NONE)
        return 0;
    size_t len = rp->head.len - rp->part_start;
    if (request_room(rp, &rp->head, 1, false, 431) != 0)
        return -1;
    buf_append(&rp->head, "", 1);
    struct request_offsets *o = &rp->offs[rp->nheaders];
    if (rp->part == PART_URL) {
        rp->url_len = len;
    } else if (rp->part == PART_FIELD) {
        o->name = rp->part_start;
        o->name_len = len;
        rp->field_open = true;
    } else if (rp->field_open) {
        o->value = rp->part_start;
        o->value_len = len;
        rp->field_open = false;
        rp->nheaders++;
    }
    rp->part = PART_NONE;
    return 0;
}

/* A field that ended without a value callback has an empty value. */
static void request_close_header(struct http_request_parser *rp)
{
    if (!rp->field_open)
        return;
    rp->offs[rp->nheaders].value = SIZE_MAX;
    rp->offs[rp->nheaders].value_len = 0;
    rp->field_open = false;
    rp->nheaders++;
}

static int request_append(struct http_request_parser *rp, enum request_part part, const char *at,
                          size_t len)
{
    /* Past a limit nothing more is kept, but parsing goes on to the end of the head
     * before the 431: http-parser hands a piece over when it ends or when a read ends,
     * so failing at once would make a malformed byte further on a 400 or not depending
     * on how the bytes were split. http-parser's own 80 KB header limit still applies. */
    if (rp->too_big || len > rp->max_header - rp->head_bytes) {
        rp->too_big = true;
        return 0;
    }
    rp->head_bytes += len;
    if (rp->headers_done)
        return 0; /* chunked trailers: counted, not kept */
    if (rp->part != part) {
        if (request_end_part(rp) != 0)
            return -1;
        if (part == PART_FIELD) {
            request_close_header(rp);
            if (rp->nheaders == HTTP_MAX_HEADERS) {
                rp->too_big = true;
                return 0;
            }
        }
        rp->part = part;
        rp->part_start = rp->head.len;
    }
    if (request_room(rp, &rp->head, len, false, 431) != 0)
        return -1;
    buf_append(&rp->head, at, len);
    return 0;
}

static void request_reset(struct http_request_parser *rp)
{
    buf_reset(&rp->head);
    if (rp->body.cap > REQUEST_KEEP_BODY_CAP)
        budget_buf_free(rp->mem, &rp->body);
    buf_reset(&rp->body);
    memset(&rp->req, 0, sizeof(rp->req));
    rp->head_bytes = 0;
    rp->too_big = false;
    rp->url_len = 0;
    rp->nheaders = 0;
    rp->part = PART_NONE;
    rp->field_open = false;
    rp->headers_done = false;
    rp->want_continue = false;
}

static int request_on_begin(http_parser *p)
{
    request_reset(request_of(p));
    return 0;
}

static int request_on_url(http_parser *p, const char *at, size_t len)
{
    return request_append(request_of(p), PART_URL, at, len);
}

static int request_on_field(http_parser *p, const char *at, size_t len)
{
    return request_append(request_of(p), PART_FIELD, at, len);
}

static int request_on_value(http_parser *p, const char *at, size_t len)
{
    return request_append(request_of(p), PART_VALUE, at, len);
}

/* Appends a NUL-terminated copy of head[off, off + len) (or of lit) to the head
 * buffer and returns its offset through *out. */
static int request_copy(struct http_request_parser *rp, const char *lit, size_t off, size_t len,
                        size_t *out)
{
    if (request_room(rp, &rp->head, len + 1, false, 431) != 0)
        return -1;
    *out = rp->head.len;
    memcpy(rp->head.data + rp->head.len, lit ? lit : rp->head.data + off, len);
    rp->head.len += len;
    rp->head.data[rp->head.len++] = '\0';
    return 0;
}

/* Splits the request target into path and query (offsets into head). The origin form
 * ("/p?q") is split in place; the absolute form is parsed and copied. 0 or -1 (400). */
static int request_split_target(struct http_request_parser *rp, size_t *path, size_t *path_len,
                                size_t *query, size_t *query_len)
{
    char *url = rp->head.data;
    size_t n = rp->url_len;
    if (n == 0)
        return request_fail(rp, 400);
    if (url[0] == '/' || (n == 1 && url[0] == '*')) {
        char *frag = memchr(url, '#', n);
        if (frag != NULL) {
            *frag = '\0';
            n = (size_t)(frag - url);
        }
        char *q = memchr(url, '?', n);
        *path = 0;
        *path_len = q ? (size_t)(q - url) : n;
        *query = q ? *path_len + 1 : n; /* else the NUL that ends the path: "" */
        *query_len = q ? n - *path_len - 1 : 0;
        if (q != NULL)
            *q = '\0';
        return 0;
    }
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, n, 0, &u) != 0)
        return request_fail(rp, 400);
    bool has_path = (u.field_set & (1u << UF_PATH)) != 0;
    bool has_query = (u.field_set & (1u << UF_QUERY)) != 0;
    *path_len = has_path ? u.field_data[UF_PATH].len : 1;
    *query_len = has_query ? u.field_data[UF_QUERY].len : 0;
    if (request_copy(rp, has_path ? NULL : "/", u.field_data[UF_PATH].off, *path_len, path) != 0 ||
        request_copy(rp, has_query ? NULL : "", u.field_data[UF_QUERY].off, *query_len, query) != 0)
        return -1;
    return 0;
}

static int request_on_headers_complete(http_parser *p)
{
    struct http_request_parser *rp = request_of(p);
    if (rp->too_big)
        return request_fail(rp, 431);
    if (request_end_part(rp) != 0)
        return -1;
    request_close_header(rp);
    size_t path, path_len, query, query_len;
    if (request_split_target(rp, &path, &path_len, &query, &query_len) != 0)
        return -1;
    /* The head buffer no longer moves: offsets become pointers. */
    struct http_request *req = &rp->req;
    const char *base = rp->head.data;
    req->method = http_method_str((enum http_method)p->method);
    req->path = base + path;
    req->path_len = path_len;
    req->query = base + query;
    req->query_len = query_len;
    for (size_t i = 0; i < rp->nheaders; i++) {
        struct request_offsets *o = &rp->offs[i];
        req->headers[i].name = base + o->name;
        req->headers[i].name_len = o->name_len;
        req->headers[i].value = o->value == SIZE_MAX ? request_empty : base + o->value;
        req->headers[i].value_len = o->value_len;
    }
    req->header_count = rp->nheaders;
    req->http_major = p->http_major;
    req->http_minor = p->http_minor;
    req->body = request_empty;
    rp->headers_done = true;
    if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX &&
        p->content_length > rp->max_body)
        return request_fail(rp, 413);
    /* A declared body is paid for before any of it is read, at its exact size: a client
     * cannot hold memory it has not been granted, and a refusal comes first thing. */
    if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX && p->content_length > 0 &&
        request_room(rp, &rp->body, (size_t)p->content_length, true, 413) != 0)
        return -1;
    const char *expect = http_request_header(req, "expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0 &&
        (p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1)))
        rp->want_continue = true;
    return 0;
}

static int request_on_body(http_parser *p, const char *at, size_t len)
{
    struct http_request_parser *rp = request_of(p);
    if (len > rp->max_body - rp->body.len)
        return request_fail(rp, 413);
    if (request_room(rp, &rp->body, len, false, 413) != 0)
        return -1;
    buf_append(&rp->body, at, len);
    return 0;
}

static int request_on_complete(http_parser *p)
{
    struct http_request_parser *rp = request_of(p);
    if (rp->too_big)
        return request_fail(rp, 431); /* chunked trailers past the limit */
    if (rp->body.len > 0)
        rp->req.body = rp->body.data;
    rp->req.body_len = rp->body.len;
    rp->req.keep_alive = http_should_keep_alive(p) && !p->upgrade;
    rp->upgraded = p->upgrade; /* what follows is another protocol: parse no further */
    rp->want_continue = false;
    rp->ready = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings request_settings = {
    .on_message_begin = request_on_begin,
    .on_url = request_on_url,
    .on_header_field = request_on_field,
    .on_header_value = request_on_value,
    .on_headers_complete = request_on_headers_complete,
    .on_body = request_on_body,
    .on_message_complete = request_on_complete,
};

struct http_request_parser *http_request_parser_create(size_t max_header, size_t max_body)
{
    struct http_request_parser *rp = calloc(1, sizeof(*rp));
    if (rp == NULL)
        return NULL;
    http_parser_init(&rp->p, HTTP_REQUEST);
    rp->p.data = rp;
    rp->max_header = max_header;
    rp->max_body = max_body;
    /* NULs after the url, each name and value, plus the copied path and query. */
    buf_init(&rp->head, max_header + 2 * HTTP_MAX_HEADERS + 4 + max_header);
    buf_init(&rp->body, max_body);
    request_reset(rp);
    return rp;
}

int http_request_parser_set_budget(struct http_request_parser *rp, struct budget_meter *mem,
                                   size_t body_keep)
{
    if (rp->mem != NULL || rp->head.cap > 0 || rp->body.cap > 0)
        return -EINVAL;
    if (!budget_meter_take(mem, sizeof(*rp)))
        return XRAY_EFULL;
    rp->mem = mem;
    rp->body_keep = body_keep;
    return 0;
}

void http_request_parser_destroy(struct http_request_parser *rp)
{
    if (rp == NULL)
        return;
    budget_buf_free(rp->mem, &rp->head);
    budget_buf_free(rp->mem, &rp->body);
    if (rp->mem != NULL)
        budget_meter_give(rp->mem, sizeof(*rp));
    free(rp);
}

int http_request_parser_feed(struct http_request_parser *rp, const char *data, size_t len,
                             size_t *used)
{
    *used = 0;
    if (rp->ready)
        return 1;
    if (len == 0)
        return rp->status != 0 ? XRAY_EPARSE : 0; /* http-parser: length 0 = end of stream */
    if (rp->upgraded)
        request_fail(rp, 400);
    if (rp->status != 0)
        return XRAY_EPARSE;
    size_t n = http_parser_execute(&rp->p, &request_settings, data, len);
    *used = n;
    if (rp->ready)
        return 1;
    enum http_errno e = HTTP_PARSER_ERRNO(&rp->p);
    if (e != HPE_OK || rp->status != 0) {
        request_fail(rp, e == HPE_HEADER_OVERFLOW ? 431 : 400);
        return rp->status == 400 ? XRAY_EPARSE : rp->status == 503 ? -ENOMEM : XRAY_ETOOBIG;
    }
    if (rp->p.upgrade && n < len) {
        /* The parser stopped where another protocol would begin, with no complete
         * message: something we do not speak. An upgrade request whose body is still
         * arriving has taken everything and goes on (its completion marks the end). */
        request_fail(rp, 400);
        return XRAY_EPARSE;
    }
    return 0;
}

struct http_request *http_request_parser_request(struct http_request_parser *rp)
{
    return &rp->req;
}

void http_request_parser_next(struct http_request_parser *rp)
{
    if (!rp->ready)
        return;
    rp->ready = false;
    request_reset(rp);
    http_parser_pause(&rp->p, 0);
}

int http_request_parser_status(const struct http_request_parser *rp)
{
    return rp->status;
}

bool http_request_parser_take_continue(struct http_request_parser *rp)
{
    bool w = rp->want_continue;
    rp->want_continue = false;
    return w;
}

bool http_request_parser_over_budget(const struct http_request_parser *rp)
{
    return rp->over_budget;
}

bool http_request_parser_idle(const struct http_request_parser *rp)
{
    return !rp->ready && rp->status == 0 && !rp->headers_done && rp->head_bytes == 0 &&
           rp->part == PART_NONE && !rp->too_big;
}

bool http_request_parser_in_headers(const struct http_request_parser *rp)
{
    return !rp->ready && rp->status == 0 && !rp->headers_done &&
           (rp->head_bytes > 0 || rp->part != PART_NONE || rp->too_big);
}
