/* SPDX-License-Identifier: Apache-2.0 */
/* Sending documents to the daemon: one non-blocking UDP datagram per document, the
 * header line then the JSON, written into a per-thread 64 KB buffer allocated once,
 * so sending allocates nothing per byte. A document that would pass 64 KB sends its
 * subsegments as documents of their own first. Invariant: a send never blocks and
 * never raises SIGPIPE; a failure (no daemon, full socket buffer) is counted and the
 * document dropped. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

#define EMITTER_BUF_SIZE (XRAY__UDP_HEADER_LEN + XRAY_DOCUMENT_MAX)

static pthread_key_t emitter_key;
static pthread_once_t emitter_once = PTHREAD_ONCE_INIT;
static bool emitter_key_ok;
static __thread char *emitter_tls;

static void emitter_free(void *buf)
{
    free(buf);
    emitter_tls = NULL;
}

static void emitter_key_create(void)
{
    emitter_key_ok = pthread_key_create(&emitter_key, emitter_free) == 0;
}

char *xray__emitter_buffer(void)
{
    if (emitter_tls != NULL)
        return emitter_tls;
    pthread_once(&emitter_once, emitter_key_create);
    char *buf = malloc(EMITTER_BUF_SIZE);
    if (buf == NULL)
        return NULL;
    memcpy(buf, XRAY__UDP_HEADER, XRAY__UDP_HEADER_LEN);
    /* The key frees the buffer when the thread exits; without it (no key left) the
     * buffer of an exiting thread leaks rather than failing every send. */
    if (emitter_key_ok)
        (void)pthread_setspecific(emitter_key, buf);
    emitter_tls = buf;
    return buf;
}

int xray__emitter_open(struct xray_recorder *rec)
{
    int fd = socket(rec->udp_addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Connected: the kernel skips the route lookup per send (about 12 % of a send
     * here). The price, ECONNREFUSED after an ICMP error while no daemon listens, is
     * one more counted drop. */
    if (connect(fd, (const struct sockaddr *)&rec->udp_addr, rec->udp_addrlen) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    rec->fd = fd;
    return 0;
}

int xray__emitter_write(struct xray_recorder *rec, const void *buf, size_t len)
{
    for (;;) {
        ssize_t n = send(rec->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

static int emitter_send(struct xray_recorder *rec, const char *buf, size_t len)
{
    int rc = rec->send(rec, buf, len);
    if (rc < 0) {
        XRAY__COUNT(rec, send_dropped);
        xray__log_every(&rec->rl_send, 60000, XRAY_LOG_WARN,
                        "cannot send to the daemon at %s:%u: %s; documents are dropped",
                        rec->udp_host, (unsigned)rec->udp_port, xray_sdk_strerror(rc));
        return XRAY_SDK_ESEND;
    }
    XRAY__COUNT(rec, documents_sent);
    return 0;
}

int xray__emitter_send_tree(struct xray_recorder *rec, struct xray_segment *node, bool standalone,
                            bool in_progress)
{
    char *buf = xray__emitter_buffer();
    if (buf == NULL) {
        XRAY__COUNT(rec, oom_dropped);
        return -ENOMEM;
    }
    struct xray__writer w = {buf + XRAY__UDP_HEADER_LEN, 0, XRAY_DOCUMENT_MAX, false};
    xray__document_write(&w, node, standalone, false, in_progress);
    if (!w.overflow)
        return emitter_send(rec, buf, XRAY__UDP_HEADER_LEN + w.len);

    /* Too big: the closed children go first as documents of their own (an
     * in-progress document just leaves them out), then the node alone. The buffer is
     * reused by each child, so the node is written again afterwards. Recursion is
     * bounded by XRAY_SUBSEGMENT_DEPTH_MAX. */
    int rc = 0;
    if (!in_progress) {
        for (struct xray_segment *c = node->first_child; c != NULL; c = c->next) {
            int r = xray__emitter_send_tree(rec, c, true, !c->ended);
            if (r < 0 && rc == 0)
                rc = r;
            if (r == 0)
                XRAY__COUNT(rec, subsegments_streamed);
        }
    }
    w = (struct xray__writer){buf + XRAY__UDP_HEADER_LEN, 0, XRAY_DOCUMENT_MAX, false};
    xray__document_write(&w, node, standalone, true, in_progress);
    if (w.overflow) {
        XRAY__COUNT(rec, too_big_dropped);
        xray__log_every(&rec->rl_limit, 60000, XRAY_LOG_WARN,
                        "a (sub)segment alone is over 64 KB: dropped");
        return XRAY_SDK_ETOOBIG;
    }
    int r = emitter_send(rec, buf, XRAY__UDP_HEADER_LEN + w.len);
    return r < 0 ? r : rc;
}
