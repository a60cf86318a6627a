/* SPDX-License-Identifier: Apache-2.0 */
/* The UDP listener on the loop thread: libuv's recvmmsg fills one reused slab of
 * UDP_SLOTS 64 KiB slots, so any datagram fits whole; each one is counted, framed,
 * copied into the pool and handed on before the next batch. libuv bounds the reads
 * per wake-up; a short pause after the socket runs dry keeps batches large, and a
 * pause the owner asks for (backpressure) leaves the rest in the kernel's buffer,
 * never cutting short a batch already read. Bodies are never parsed here: the
 * worker's scan does that. */
#include "udp.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"
#include "log.h"
#include "pool.h"
#include "stats.h"
#include "util.h"

#define UDP_LOG_INTERVAL_MS 60000
/* After the socket runs dry, wait this long before reading again so that the next
 * wake-up finds a batch instead of one or two datagrams: most of the receive cost is
 * per wake-up, not per datagram. Only done when the kernel buffer can hold what
 * arrives meanwhile (UDP_PAUSE_MIN_RCVBUF is 2 ms at well over 1M datagrams/s). */
#define UDP_PAUSE_MS         1
#define UDP_PAUSE_MIN_RCVBUF (8u * 1024 * 1024)

struct udp {
    uv_udp_t handle;
    uv_timer_t resume; /* ends a pause */
    struct pool *pool;
    struct stats *stats;
    void (*on_doc)(struct doc *doc, void *data);
    void *data;
    char *slab; /* UDP_SLOTS * UDP_SLOT_BYTES, owned */
    size_t rcvbuf_requested;
    size_t rcvbuf_granted;
    bool receiving; /* between udp_start() and udp_stop(), paused or not */
    bool paused;    /* receiving, but the socket is not being read until resume fires */
    bool held;      /* receiving, but udp_pause() asked not to read until udp_resume() */
    bool reading;   /* uv_udp_recv_start() is in effect */
    bool in_batch;  /* between the datagrams of one recvmmsg batch and its end */
    bool can_pause;
    int open_handles;
    void (*close_cb)(void *data);
    void *close_data;
};

static int udp_port(const char *text, int *port)
{
    if (*text == '\0' || strlen(text) > 5)
        return -1;
    int v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535)
        return -1;
    *port = v;
    return 0;
}

int udp_parse_address(const char *text, struct sockaddr_storage *out)
{
    char host[64];
    const char *port_text;
    memset(out, 0, sizeof(*out));
    if (text == NULL)
        return XRAY_EPARSE;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host))
            return XRAY_EPARSE;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port_text = close + 2;
        int port;
        if (udp_port(port_text, &port) != 0 ||
            uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) != 0)
            return XRAY_EPARSE;
        return 0;
    }
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
        return XRAY_EPARSE;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    if (strchr(host, ':') != NULL) /* an IPv6 literal needs brackets */
        return XRAY_EPARSE;
    int port;
    if (udp_port(colon + 1, &port) != 0)
        return XRAY_EPARSE;
    const char *ip = host[0] == '\0'                  ? "0.0.0.0"
                     : strcmp(host, "localhost") == 0 ? "127.0.0.1"
                                                      : host;
    if (uv_ip4_addr(ip, port, (struct sockaddr_in *)out) != 0)
        return XRAY_EPARSE;
    return 0;
}

/* The sender's address, for log lines only. */
static const char *udp_peer(const struct sockaddr *addr, char *buf, size_t cap)
{
    if (addr == NULL || uv_ip_name(addr, buf, cap) != 0)
        snprintf(buf, cap, "?");
    return buf;
}

static void udp_datagram(struct udp *u, const char *p, size_t n, bool partial,
                         const struct sockaddr *addr)
{
    char peer[64];
    stats_add(&u->stats->received, 1);
    if (partial) {
        stats_reject(u->stats, STATS_REJECT_TRUNCATED);
        XLOG_EVERY(UDP_LOG_INTERVAL_MS, LOG_LEVEL_WARN, "udp",
                   "truncated datagram from %s dropped (more than %d bytes)",
                   udp_peer(addr, peer, sizeof(peer)), UDP_SLOT_BYTES);
        return;
    }
    struct framing f;
    if (framing_parse(p, n, &f) != 0 || f.kind != FRAMING_SEGMENT) {
        int why = framing_reject_reason(f.kind);
        stats_reject(u->stats, (enum stats_reject)why);
        if (f.kind == FRAMING_OTLP_TRACES || f.kind == FRAMING_OTLP_METRICS)
            XLOG_EVERY(UDP_LOG_INTERVAL_MS, LOG_LEVEL_INFO, "udp",
                       "OTLP datagram from %s (an ADOT exporter?) counted as %s: "
                       "only X-Ray segment documents are forwarded",
                       udp_peer(addr, peer, sizeof(peer)), stats_reject_labels[why]);
        else
            XLOG_EVERY(UDP_LOG_INTERVAL_MS, LOG_LEVEL_WARN, "udp",
                       "rejected a %zu-byte datagram from %s: %s", n,
                       udp_peer(addr, peer, sizeof(peer)), stats_reject_labels[why]);
        return;
    }
    struct doc *doc = pool_alloc(u->pool, f.body, f.body_len, uv_now(u->handle.loop));
    if (doc == NULL) {
        stats_add(&u->stats->spillover, 1);
        XLOG_EVERY(UDP_LOG_INTERVAL_MS, LOG_LEVEL_WARN, "udp",
                   "buffer memory full (%zu of %zu bytes in use): dropping segments; "
                   "raise -m / TotalBufferSizeMB",
                   pool_used_bytes(u->pool), pool_max_bytes(u->pool));
        return;
    }
    u->on_doc(doc, u->data);
}

static void udp_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct udp *u = container_of(handle, struct udp, handle);
    (void)suggested;
    /* libuv reads the whole batch into these slots and reports every datagram before
     * asking again, so one slab serves every call. */
    *buf = uv_buf_init(u->slab, UDP_SLOTS * UDP_SLOT_BYTES);
}

static void udp_recv_cb(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags);

/* Reads the socket exactly when receiving and neither pause is on. A datagram batch
 * already read is never cut short: stopping waits for its end (see udp_recv_cb). */
static void udp_update(struct udp *u)
{
    bool want = u->receiving && !u->paused && !u->held;
    if (want == u->reading || (!want && u->in_batch))
        return;
    if (!want) {
        uv_udp_recv_stop(&u->handle);
        u->reading = false;
        return;
    }
    int rc = uv_udp_recv_start(&u->handle, udp_alloc_cb, udp_recv_cb);
    if (rc != 0) {
        XLOG_EVERY(UDP_LOG_INTERVAL_MS, LOG_LEVEL_ERROR, "udp", "cannot resume receiving: %s",
                   uv_strerror(rc));
        return;
    }
    u->reading = true;
}

static void udp_resume_cb(uv_timer_t *timer)
{
    struct udp *u = container_of(timer, struct udp, resume);
    u->paused = false;
    udp_update(u);
}

static void udp_recv_cb(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    struct udp *u = container_of(handle, struct udp, handle);
    if (flags & UV_UDP_MMSG_FREE) {
        /* The end of a batch: the slab is ours and is kept; a pause asked for during
         * the batch takes effect now, before libuv reads the next one. */
        u->in_batch = false;
        udp_update(u);
        return;
    }
    if (nread < 0) {
        XLOG_EVERY(UDP_LOG_INTERVAL_MS, LOG_LEVEL_WARN, "udp", "receive failed: %s",
                   uv_strerror((int)nread));
        return;
    }
    if (addr == NULL) {
        /* The socket ran dry: we are keeping up, so let the next batch gather. */
        if (u->can_pause && u->receiving && !u->paused) {
            uv_timer_start(&u->resume, udp_resume_cb, UDP_PAUSE_MS, 0);
            u->paused = true;
            udp_update(u);
        }
        return;
    }
    u->in_batch = (flags & UV_UDP_MMSG_CHUNK) != 0;
    udp_datagram(u, buf->base, (size_t)nread, (flags & UV_UDP_PARTIAL) != 0, addr);
    if (!u->in_batch)
        udp_update(u); /* a single datagram (no recvmmsg): nothing left to finish */
}

/* SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; SO_RCVBUF is
 * silently capped at rmem_max. Either way the kernel stores twice the value. */
static void udp_size_rcvbuf(struct udp *u)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&u->handle, &fd) != 0)
        return;
    int want = u->rcvbuf_requested > INT_MAX / 2 ? INT_MAX / 2 : (int)u->rcvbuf_requested;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
    int got = 0;
    socklen_t len = sizeof(got);
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 && got > 0)
        u->rcvbuf_granted = (size_t)got / 2;
}

/* The close callback of both handles; the second one frees. */
static void udp_closed(uv_handle_t *handle)
{
    struct udp *u = handle->type == UV_UDP ? container_of(handle, struct udp, handle)
                                           : container_of(handle, struct udp, resume);
    if (--u->open_handles > 0)
        return;
    void (*cb)(void *) = u->close_cb;
    void *data = u->close_data;
    free(u->slab);
    free(u);
    if (cb != NULL)
        cb(data);
}

static int udp_fail(struct udp *u, int rc, char *err, const char *what, const char *address)
{
    if (err != NULL)
        snprintf(err, XRAY_ERR_LEN, "UDP %s %s: %s", what, address, uv_strerror(rc));
    u->close_cb = NULL;
    uv_close((uv_handle_t *)&u->handle, udp_closed);
    uv_close((uv_handle_t *)&u->resume, udp_closed);
    return rc;
}

int udp_start(struct udp **out, const struct udp_options *opt, char err[XRAY_ERR_LEN])
{
    struct sockaddr_storage ss;
    *out = NULL;
    if (udp_parse_address(opt->address, &ss) != 0) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "bad UDP address \"%s\": expected host:port",
                     opt->address ? opt->address : "");
        return XRAY_EPARSE;
    }
    struct udp *u = calloc(1, sizeof(*u));
    char *slab = malloc((size_t)UDP_SLOTS * UDP_SLOT_BYTES);
    if (u == NULL || slab == NULL) {
        free(u);
        free(slab);
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "UDP %s: out of memory", opt->address);
        return UV_ENOMEM;
    }
    u->pool = opt->pool;
    u->stats = opt->stats;
    u->on_doc = opt->on_doc;
    u->data = opt->data;
    u->slab = slab;
    u->rcvbuf_requested = opt->rcvbuf_bytes ? opt->rcvbuf_bytes : UDP_RCVBUF_DEFAULT;

    int rc = uv_udp_init_ex(opt->loop, &u->handle, ss.ss_family | UV_UDP_RECVMMSG);
    if (rc != 0) {
        free(slab);
        free(u);
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "UDP socket %s: %s", opt->address, uv_strerror(rc));
        return rc;
    }
    uv_timer_init(opt->loop, &u->resume); /* cannot fail */
    u->open_handles = 2;
    udp_size_rcvbuf(u);
    u->can_pause = u->rcvbuf_granted >= UDP_PAUSE_MIN_RCVBUF;
    /* No UV_UDP_REUSEADDR: a second daemon on the same port must fail, not share it. */
    rc = uv_udp_bind(&u->handle, (const struct sockaddr *)&ss, 0);
    if (rc != 0)
        return udp_fail(u, rc, err, "bind", opt->address);
    rc = uv_udp_recv_start(&u->handle, udp_alloc_cb, udp_recv_cb);
    if (rc != 0)
        return udp_fail(u, rc, err, "receive on", opt->address);
    u->receiving = true;
    u->reading = true;
    *out = u;
    return 0;
}

int udp_local_address(const struct udp *u, struct sockaddr_storage *out)
{
    int len = (int)sizeof(*out);
    return uv_udp_getsockname(&u->handle, (struct sockaddr *)out, &len);
}

size_t udp_rcvbuf_granted(const struct udp *u)
{
    return u->rcvbuf_granted;
}

size_t udp_rcvbuf_requested(const struct udp *u)
{
    return u->rcvbuf_requested;
}

bool udp_rcvbuf_short(const struct udp *u)
{
    return u->rcvbuf_granted < u->rcvbuf_requested;
}

void udp_stop(struct udp *u)
{
    if (!u->receiving)
        return;
    uv_timer_stop(&u->resume);
    u->paused = false;
    u->held = false;
    u->receiving = false;
    /* Unlike a pause, a stop cuts the batch short: libuv drops what is left of it. */
    u->in_batch = false;
    udp_update(u);
}

void udp_pause(struct udp *u)
{
    if (!u->receiving || u->held)
        return;
    u->held = true;
    udp_update(u);
}

void udp_resume(struct udp *u)
{
    if (!u->held)
        return;
    u->held = false;
    udp_update(u);
}

void udp_close(struct udp *u, void (*cb)(void *data), void *data)
{
    udp_stop(u);
    u->close_cb = cb;
    u->close_data = data;
    uv_close((uv_handle_t *)&u->handle, udp_closed);
    uv_close((uv_handle_t *)&u->resume, udp_closed);
}
