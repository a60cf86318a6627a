/* SPDX-License-Identifier: Apache-2.0 */
/* A loopback HTTP/1.1 server for libxray's unit tests: it plays the daemon's sampling
 * API, the instance and container metadata services, or a plain callee. One thread,
 * one connection at a time, Connection: close; it records every request (method,
 * path, headers, body) and answers through the test's handler. Header-only: each
 * test program includes it once. */
#ifndef XRAY_SDK_TEST_FAKE_SERVER_H
#define XRAY_SDK_TEST_FAKE_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAKE_MAX_REQUESTS 256
#define FAKE_MAX_BYTES    (64 * 1024)

struct fake_request {
    char method[16];
    char path[512];
    char headers[4096]; /* the raw header lines */
    char body[8192];
    size_t body_len;
};

struct fake_server;
/* Writes the response body into body (cap bytes) and returns the status; a negative
 * return closes the connection without answering. extra_headers may get lines
 * ("Name: v\r\n"). Runs on the server thread. */
typedef int (*fake_handler)(struct fake_server *fs, const struct fake_request *req, char *body,
                            size_t cap, char *extra_headers, size_t extra_cap);

struct fake_server {
    int fd;
    uint16_t port;
    pthread_t thread;
    pthread_mutex_t mu;
    _Atomic bool stop;
    fake_handler handler;
    void *ctx;
    _Atomic int delay_ms; /* before answering (slow peer) */
    size_t n;
    struct fake_request *reqs; /* FAKE_MAX_REQUESTS */
};

static inline void fake_handle(struct fake_server *fs, int c)
{
    char *buf = malloc(FAKE_MAX_BYTES + 1);
    size_t len = 0;
    char *end = NULL;
    size_t want = 0;
    while (len < FAKE_MAX_BYTES) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (poll(&p, 1, 2000) <= 0)
            break;
        ssize_t r = recv(c, buf + len, FAKE_MAX_BYTES - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            size_t body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
            want = (size_t)(end - buf) + 4 + body;
        }
        if (end != NULL && len >= want)
            break;
    }
    if (end == NULL) {
        free(buf);
        return;
    }
    struct fake_request req;
    memset(&req, 0, sizeof(req));
    sscanf(buf, "%15s %511s", req.method, req.path);
    const char *h = strstr(buf, "\r\n");
    size_t hl = (size_t)(end - h);
    if (hl >= sizeof(req.headers))
        hl = sizeof(req.headers) - 1;
    memcpy(req.headers, h, hl);
    req.body_len = len - (size_t)(end - buf) - 4;
    if (req.body_len >= sizeof(req.body))
        req.body_len = sizeof(req.body) - 1;
    memcpy(req.body, end + 4, req.body_len);
    pthread_mutex_lock(&fs->mu);
    if (fs->n < FAKE_MAX_REQUESTS)
        fs->reqs[fs->n++] = req;
    pthread_mutex_unlock(&fs->mu);
    int delay = atomic_load(&fs->delay_ms);
    if (delay > 0)
        usleep((useconds_t)delay * 1000);
    char extra[1024] = "";
    int status = fs->handler ? fs->handler(fs, &req, buf, FAKE_MAX_BYTES, extra, sizeof(extra))
                             : (buf[0] = '\0', 404);
    if (status > 0) {
        char head[2048];
        size_t bl = strlen(buf);
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                         status, bl, extra);
        (void)!send(c, head, (size_t)n, MSG_NOSIGNAL);
        (void)!send(c, buf, bl, MSG_NOSIGNAL);
    }
    free(buf);
}

static void *fake_run(void *arg)
{
    struct fake_server *fs = arg;
    while (!atomic_load(&fs->stop)) {
        struct pollfd p = {.fd = fs->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(fs->fd, NULL, NULL);
        if (c < 0)
            continue;
        fake_handle(fs, c);
        shutdown(c, SHUT_WR);
        close(c);
    }
    return NULL;
}

/* Starts a server on 127.0.0.1 with a free port. */
static struct fake_server *fake_start(fake_handler handler, void *ctx)
{
    struct fake_server *fs = calloc(1, sizeof(*fs));
    fs->reqs = calloc(FAKE_MAX_REQUESTS, sizeof(*fs->reqs));
    fs->handler = handler;
    fs->ctx = ctx;
    pthread_mutex_init(&fs->mu, NULL);
    fs->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fs->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (bind(fs->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fs->fd, 16) != 0 ||
        getsockname(fs->fd, (struct sockaddr *)&a, &al) != 0)
        abort();
    fs->port = ntohs(a.sin_port);
    pthread_create(&fs->thread, NULL, fake_run, fs);
    return fs;
}

static inline void fake_stop(struct fake_server *fs)
{
    atomic_store(&fs->stop, true);
    pthread_join(fs->thread, NULL);
    close(fs->fd);
    pthread_mutex_destroy(&fs->mu);
    free(fs->reqs);
    free(fs);
}

/* How many requests to path (NULL: any) were seen. */
static inline size_t fake_count(struct fake_server *fs, const char *path)
{
    size_t k = 0;
    pthread_mutex_lock(&fs->mu);
    for (size_t i = 0; i < fs->n; i++)
        if (path == NULL || strcmp(fs->reqs[i].path, path) == 0)
            k++;
    pthread_mutex_unlock(&fs->mu);
    return k;
}

/* A copy of the last request to path (NULL: any); false if none. */
static inline bool fake_last(struct fake_server *fs, const char *path, struct fake_request *out)
{
    bool found = false;
    pthread_mutex_lock(&fs->mu);
    for (size_t i = fs->n; i > 0; i--)
        if (path == NULL || strcmp(fs->reqs[i - 1].path, path) == 0) {
            *out = fs->reqs[i - 1];
            found = true;
            break;
        }
    pthread_mutex_unlock(&fs->mu);
    return found;
}

/* A TCP port on 127.0.0.1 where nothing listens (bound, then closed). */
static inline uint16_t fake_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

/* Polls cond (an expression) every 10 ms for up to ms milliseconds. */
#define FAKE_WAIT(cond, ms)                                                                        \
    do {                                                                                           \
        for (int fake_i_ = 0; fake_i_ < (ms) / 10 && !(cond); fake_i_++)                           \
            usleep(10000);                                                                         \
    } while (0)

#endif
