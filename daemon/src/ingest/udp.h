/* SPDX-License-Identifier: Apache-2.0 */
/* The UDP listener: receives datagrams in recvmmsg batches on the loop thread, checks
 * their framing, copies each accepted body into the pool and hands it to on_doc.
 * Every datagram is counted in stats->received; each one not handed on is counted
 * once, as a rejection by reason or as spillover. All calls: loop thread only. */
#ifndef XRAYD_UDP_H
#define XRAYD_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <uv.h>

#include "error.h"

struct doc;
struct pool;
struct stats;

#define UDP_RCVBUF_DEFAULT (64u * 1024 * 1024) /* asked of the kernel unless told */
#define UDP_SLOT_BYTES     65536               /* one datagram; IPv6 payloads reach 65,527 */
#define UDP_SLOTS          20 /* datagrams per recvmmsg call: libuv's own maximum */

struct udp_options {
    uv_loop_t *loop;     /* borrowed; must outlive the listener */
    const char *address; /* "127.0.0.1:2000", "[::1]:2000", "0.0.0.0:2000", ":2000" */
    struct pool *pool;   /* borrowed: accepted bodies are copied here */
    struct stats *stats; /* borrowed */
    size_t rcvbuf_bytes; /* socket receive buffer to ask for; 0 = UDP_RCVBUF_DEFAULT */
    /* Required. Called on the loop thread for each accepted document (the body,
     * without the header line); takes ownership of doc, which goes back with
     * pool_free(). It may call udp_stop() or udp_close(); the rest of the batch
     * being read is then dropped without being counted. */
    void (*on_doc)(struct doc *doc, void *data);
    void *data; /* passed to on_doc */
};

struct udp;

/* Parses "host:port" where host is an IPv4 literal, a bracketed IPv6 literal,
 * "localhost" or empty (every IPv4 address). 0 or XRAY_EPARSE. */
int udp_parse_address(const char *text, struct sockaddr_storage *out);

/* Binds the socket (without SO_REUSEADDR: a port in use is an error), sizes its
 * receive buffer and starts receiving. 0 with *out set, or a negative code with err
 * filled (when not NULL): XRAY_EPARSE for the address, UV_E* from the socket
 * (UV_EADDRINUSE...). On failure after the socket was made, its handles are closed
 * on the loop: run the loop once to release them. */
int udp_start(struct udp **out, const struct udp_options *opt, char err[XRAY_ERR_LEN]);

/* The address actually bound (port 0 resolved). 0 or a UV_E* code. */
int udp_local_address(const struct udp *u, struct sockaddr_storage *out);

/* The receive buffer the kernel granted, in usable bytes (the kernel reports twice
 * the value set, the other half being its bookkeeping; this is that half). */
size_t udp_rcvbuf_granted(const struct udp *u);
/* What was asked for, and whether the kernel granted less: then raise
 * net.core.rmem_max to at least udp_rcvbuf_requested() (or run with CAP_NET_ADMIN). */
size_t udp_rcvbuf_requested(const struct udp *u);
bool udp_rcvbuf_short(const struct udp *u);

/* Stops receiving: the first step of shutdown. Datagrams still queued in the socket
 * are left there. Safe to call more than once. */
void udp_stop(struct udp *u);

/* Backpressure: stops reading the socket until udp_resume(), so that the kernel's
 * receive buffer holds what arrives meanwhile. Called from on_doc, it takes effect at
 * the end of the batch being read: the rest of that batch (at most UDP_SLOTS - 1
 * datagrams) is still handed to on_doc. Both are cheap no-ops when there is nothing
 * to change, and do nothing once stopped. */
void udp_pause(struct udp *u);
void udp_resume(struct udp *u);

/* Closes the socket; u is freed in the close callback, then cb(data) runs (cb may be
 * NULL). Implies udp_stop(). */
void udp_close(struct udp *u, void (*cb)(void *data), void *data);

#endif
