/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal HTTP/1.1 server on libuv and http-parser for the libxray examples: it
 * parses requests (URL and the few headers a traced service reads), hands each to a
 * callback on the loop thread, and writes the answer the callback gives - at once or
 * later. Not a general server: small bounded requests, one in flight per connection. */
#ifndef XRAY_EXAMPLE_MINI_HTTP_H
#define XRAY_EXAMPLE_MINI_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define MINI_FIELD_MAX 1024

struct mini_request {
    char method[16];
    char url[MINI_FIELD_MAX];
    char host[256];
    char user_agent[256];
    char trace_header[MINI_FIELD_MAX];
    char x_forwarded_for[256];
    char client_ip[64];
    bool keep_alive;
};

struct mini_conn;

/* Called on the loop for each complete request; answer with mini_respond() now or
 * later (exactly once). */
typedef void (*mini_handler)(struct mini_conn *conn, const struct mini_request *req, void *data);

/* Listens on 127.0.0.1:port (0: any free port); *bound gets the port. 0 or a libuv
 * error. */
int mini_listen(uv_loop_t *loop, uint16_t port, mini_handler handler, void *data, uint16_t *bound);

/* Sends the response: status, an optional extra header line ("Name: value", may be
 * NULL) and body. The connection closes afterwards unless the request kept it alive.
 * Loop thread. */
void mini_respond(struct mini_conn *conn, int status, const char *extra_header, const char *body);

/* Closes the listener. */
void mini_close(void);

#endif
