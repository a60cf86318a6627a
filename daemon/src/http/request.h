/* SPDX-License-Identifier: Apache-2.0 */
/* One inbound HTTP/1.x request, and the incremental parser that assembles it from
 * bytes as they arrive. No sockets here: the server feeds it what it reads, and the
 * fuzz harness feeds it a buffer. */
#ifndef XRAYD_HTTP_REQUEST_H
#define XRAYD_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEADERS        64 /* more header lines: 431 */
#define HTTP_DEFAULT_MAX_HEADER (16u * 1024)
#define HTTP_DEFAULT_MAX_BODY   (1024u * 1024)
#define HTTP_PEER_LEN           64 /* "[v6 address]:port" */

/* A header as received: both strings NUL-terminated, lengths without the NUL. */
struct http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Everything points into buffers the server owns: valid from the handler call until
 * the response is sent or abandoned. */
struct http_request {
    const char *method; /* "GET", "POST", ... (static strings) */
    const char *path;   /* without the query; NUL-terminated */
    size_t path_len;
    const char *query; /* after '?', "" when none; NUL-terminated */
    size_t query_len;
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t header_count;
    const char *body; /* decoded (chunked or not); NUL-terminated, "" when none */
    size_t body_len;
    char peer[HTTP_PEER_LEN]; /* the client's address, set by the server */
    unsigned roles;           /* the roles of the listener it arrived on (HTTP_ROLE_*) */
    unsigned short http_major;
    unsigned short http_minor;
    bool keep_alive; /* HTTP/1.1 unless "Connection: close"; HTTP/1.0 with keep-alive */
};

/* The value of the first header called name (case-insensitive), or NULL. */
const char *http_request_header(const struct http_request *req, const char *name);

struct http_request_parser;
struct budget_meter;

/* A parser that accepts headers of at most max_header bytes (request line and header
 * lines) and bodies of at most max_body bytes. NULL on ENOMEM. */
struct http_request_parser *http_request_parser_create(size_t max_header, size_t max_body);
void http_request_parser_destroy(struct http_request_parser *rp);
/* From now on the parser's own size and every byte its buffers grow by are charged to
 * mem (borrowed; it must outlive the parser), and given back as they are freed; a
 * request that does not fit fails with 503 (http_request_parser_over_budget() then
 * says so). A declared Content-Length is charged in full when the headers end; a body
 * is charged only while body_keep bytes of mem stay free, so requests without one
 * (a health probe) still get through a flood of large ones. Call before the first
 * feed. 0, XRAY_EFULL (no room for the parser itself) or -EINVAL. */
int http_request_parser_set_budget(struct http_request_parser *rp, struct budget_meter *mem,
                                   size_t body_keep);

/* Parses up to len bytes and sets *used to how many it consumed. Returns 0 (all of
 * them consumed, the request is not complete yet), 1 (a request is complete: read it
 * with http_request_parser_request(), then call http_request_parser_next() before
 * feeding the rest), or a negative error after which the parser is dead and
 * http_request_parser_status() says what to answer (400, 413, 431 or 503). */
int http_request_parser_feed(struct http_request_parser *rp, const char *data, size_t len,
                             size_t *used);
/* The request being read or just completed (borrowed from the parser). */
struct http_request *http_request_parser_request(struct http_request_parser *rp);
/* Forgets the completed request and gets ready for the next one on the connection. */
void http_request_parser_next(struct http_request_parser *rp);
/* The status to answer after an error, else 0. */
int http_request_parser_status(const struct http_request_parser *rp);
/* True once per request whose headers asked for "Expect: 100-continue" and were
 * accepted; the caller answers 100 Continue before the body arrives. */
bool http_request_parser_take_continue(struct http_request_parser *rp);
/* True when the 503 came from the budget of http_request_parser_set_budget(). */
bool http_request_parser_over_budget(const struct http_request_parser *rp);
/* True between requests: nothing of the next one has been read yet. */
bool http_request_parser_idle(const struct http_request_parser *rp);
/* True between the first byte of a request and its last header line. */
bool http_request_parser_in_headers(const struct http_request_parser *rp);

#endif
