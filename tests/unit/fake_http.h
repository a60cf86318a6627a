/* SPDX-License-Identifier: Apache-2.0 */
/* A fake HTTP/1.1 server for unit tests: it stands in for the ECS agent, the EC2
 * instance metadata service and STS, which no test may reach. It listens on 127.0.0.1
 * port 0 on a thread of its own, so it answers blocking clients (the start-up metadata
 * lookups) and loop clients alike; it serves one connection at a time and closes it
 * after each answer. The test's handler decides every answer, and may leave a request
 * unanswered to make the client's timeout fire. Header-only: static functions. */
#ifndef XRAYD_TEST_FAKE_HTTP_H
#define XRAYD_TEST_FAKE_HTTP_H

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

#define FAKE_HTTP_HEAD_MAX 16384
#define FAKE_HTTP_BODY_MAX (128 * 1024)

struct fake_http_request {
    char method[16];
    char path[2048];
    char head[FAKE_HTTP_HEAD_MAX]; /* request line and headers */
    char body[FAKE_HTTP_BODY_MAX];
    size_t body_len;
};

struct fake_http_reply {
    int status;
    char body[16384];
    bool hang; /* answer nothing; drop the connection once the client gives up */
};

struct fake_http {
    int fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t mu;
    void (*handler)(struct fake_http *f, const struct fake_http_request *req,
                    struct fake_http_reply *rep);
    void *ctx;
    int requests;                  /* under mu */
    struct fake_http_request last; /* under mu: the last request */
    struct fake_http_request scratch;
    char in[FAKE_HTTP_HEAD_MAX + FAKE_HTTP_BODY_MAX]; /* the fake's read buffer */
};

/* A header's value from a request, "" when absent. */
static inline const char *fake_http_header(const struct fake_http_request *r, const char *name,
                                           char *out, size_t cap)
{
    char key[128];
    snprintf(key, sizeof(key), "\r\n%s:", name);
    const char *p = strcasestr(r->head, key);
    out[0] = '\0';
    if (p != NULL) {
        p += strlen(key);
        while (*p == ' ')
            p++;
        snprintf(out, cap, "%.*s", (int)strcspn(p, "\r"), p);
    }
    return out;
}

/* Waits up to 50 ms for fd to be readable; -1 when the server is stopping. */
static inline int fake_http_wait(struct fake_http *f, int fd)
{
    for (;;) {
        if (atomic_load(&f->stop))
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, 50);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* Reads one request from c into f->scratch. 0, or -1 on EOF or error. */
static inline int fake_http_read(struct fake_http *f, int c)
{
    struct fake_http_request *r = &f->scratch;
    char *in = f->in;
    size_t len = 0, head = 0, want = 0;
    for (;;) {
        if (head == 0) {
            in[len] = '\0';
            char *end = strstr(in, "\r\n\r\n");
            if (end != NULL) {
                head = (size_t)(end - in) + 4;
                if (head >= sizeof(r->head))
                    return -1;
                memcpy(r->head, in, head);
                r->head[head] = '\0';
                char cl[32];
                fake_http_header(r, "Content-Length", cl, sizeof(cl));
                want = strtoul(cl, NULL, 10);
                if (want > FAKE_HTTP_BODY_MAX - 1)
                    return -1;
            }
        }
        if (head != 0 && len >= head + want)
            break;
        if (len + 1 >= sizeof(f->in) || fake_http_wait(f, c) != 0)
            return -1;
        ssize_t n = read(c, in + len, sizeof(f->in) - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    memcpy(r->body, in + head, want);
    r->body[want] = '\0';
    r->body_len = want;
    sscanf(r->head, "%15s %2047s", r->method, r->path);
    return 0;
}

static inline void *fake_http_run(void *arg)
{
    struct fake_http *f = arg;
    while (fake_http_wait(f, f->fd) == 0) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            continue;
        if (fake_http_read(f, c) == 0) {
            struct fake_http_reply rep = {.status = 200};
            pthread_mutex_lock(&f->mu);
            f->requests++;
            memcpy(&f->last, &f->scratch, sizeof(f->last));
            f->handler(f, &f->last, &rep);
            pthread_mutex_unlock(&f->mu);
            if (rep.hang) {
                char sink[256];
                while (fake_http_wait(f, c) == 0 && read(c, sink, sizeof(sink)) > 0)
                    ;
            } else {
                char out[sizeof(rep.body) + 256];
                size_t bl = strlen(rep.body);
                int n = snprintf(out, sizeof(out),
                                 "HTTP/1.1 %d Fake\r\nContent-Length: %zu\r\nConnection: "
                                 "close\r\n\r\n%s",
                                 rep.status, bl, rep.body);
                for (ssize_t off = 0, w; off < n; off += w)
                    if ((w = write(c, out + off, (size_t)(n - off))) <= 0)
                        break;
            }
        }
        close(c);
    }
    return NULL;
}

/* Starts the fake; handler runs on the fake's thread with f->mu held. */
static inline void fake_http_start(struct fake_http *f,
                                   void (*handler)(struct fake_http *f,
                                                   const struct fake_http_request *req,
                                                   struct fake_http_reply *rep),
                                   void *ctx)
{
    memset(f, 0, sizeof(*f));
    f->handler = handler;
    f->ctx = ctx;
    pthread_mutex_init(&f->mu, NULL);
    f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(f->fd, 16) != 0 ||
        getsockname(f->fd, (struct sockaddr *)&a, &alen) != 0) {
        fprintf(stderr, "fake_http: cannot listen on 127.0.0.1\n");
        abort();
    }
    f->port = ntohs(a.sin_port);
    if (pthread_create(&f->thread, NULL, fake_http_run, f) != 0)
        abort();
}

static inline void fake_http_stop(struct fake_http *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    close(f->fd);
    pthread_mutex_destroy(&f->mu);
}

/* Requests answered (or left hanging) so far. */
static inline int fake_http_requests(struct fake_http *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->requests;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* A copy of the last request. */
static inline void fake_http_last(struct fake_http *f, struct fake_http_request *out)
{
    pthread_mutex_lock(&f->mu);
    memcpy(out, &f->last, sizeof(*out));
    pthread_mutex_unlock(&f->mu);
}

#endif
