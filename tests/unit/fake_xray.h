/* SPDX-License-Identifier: Apache-2.0 */
/* A fake X-Ray endpoint for loop tests (a fake: no real peer can be told to stay silent
 * or to answer exactly these bytes): an HTTP/1.1 listener on 127.0.0.1 that records
 * every request and answers request i with script[i]. Runs on the test's loop. */
#ifndef XRAYD_TEST_FAKE_XRAY_H
#define XRAYD_TEST_FAKE_XRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define FAKE_XRAY_MAX_REQ  12
#define FAKE_XRAY_MAX_CONN 8
#define FAKE_XRAY_IN_MAX   (4u << 20) /* bytes of requests held per connection */

struct fake_xray_req {
    char head[8192]; /* request line and headers, as received */
    char *body;      /* owned, NUL-terminated */
    size_t body_len;
};

struct fake_xray_conn {
    uv_tcp_t tcp;
    struct fake_xray *f;
    char *in;
    size_t len;
    bool used;
};

struct fake_xray {
    uv_tcp_t listener;
    int port;
    struct fake_xray_conn conns[FAKE_XRAY_MAX_CONN];
    struct fake_xray_req reqs[FAKE_XRAY_MAX_REQ];
    int nreqs;
    const char *script[FAKE_XRAY_MAX_REQ]; /* whole responses, borrowed; NULL: never answer */
};

/* Listens on 127.0.0.1, a free port (f->port). f must be zeroed, scripts may be set
 * before or after. */
void fake_xray_start(struct fake_xray *f, uv_loop_t *loop);
/* Closes the listener and the connections (the loop then runs out). */
void fake_xray_close(struct fake_xray *f);
/* Frees the recorded requests and buffers, once the loop is closed. */
void fake_xray_free(struct fake_xray *f);

/* A header's value in a recorded head (first match, case-insensitive; "" if absent). */
const char *fake_xray_header(const char *head, const char *name, char *out, size_t cap);
/* The header names of a head, lower-cased, sorted and joined by ';'. */
void fake_xray_header_names(const char *head, char *out, size_t cap);
/* Writes a response into out: status line and headers (each ending in CRLF), then
 * Content-Length and body. Returns out. */
const char *fake_xray_reply(char *out, size_t cap, const char *head, const char *body);

#endif
