/* SPDX-License-Identifier: Apache-2.0 */
/* A blocking HTTP/1.1 exchange over one TCP connection, for libxray's background
 * threads only (sampling calls to the daemon, metadata lookups). It does not do TLS,
 * redirects, keep-alive or proxies: every peer is the local daemon or a link-local
 * metadata service. Invariant: every step honours one deadline, and what is read is
 * bounded by the caller's max_body. */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Ours: the status line and headers of a response. */
#define HTTP_HEAD_MAX (16 * 1024)

static int64_t http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline; 0, -ETIMEDOUT or -errno. */
static int http_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - http_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static int http_connect(const struct xray__http_request *req, int64_t deadline)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)req->port);
    if (getaddrinfo(req->host, port, &hints, &res) != 0 || res == NULL)
        return -EHOSTUNREACH;
    int rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            freeaddrinfo(res);
            return fd;
        }
        if (errno == EINPROGRESS) {
            rc = http_wait(fd, POLLOUT, deadline);
            if (rc == 0) {
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                if (soerr == 0) {
                    freeaddrinfo(res);
                    return fd;
                }
                rc = -soerr;
            }
        } else {
            rc = -errno;
        }
        close(fd);
        if (rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

static int http_send_all(int fd, const char *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = http_wait(fd, POLLOUT, deadline);
            if (rc != 0)
                return rc;
            continue;
        }
        return w < 0 ? -errno : -EPIPE;
    }
    return 0;
}

/* Reads everything until the peer closes, at most cap bytes (more: -EMSGSIZE). */
static int http_read_all(int fd, char *buf, size_t cap, size_t *len, int64_t deadline)
{
    *len = 0;
    for (;;) {
        if (*len == cap) {
            char extra;
            ssize_t r = recv(fd, &extra, 1, MSG_DONTWAIT);
            if (r == 0)
                return 0;
            if (r > 0)
                return -EMSGSIZE;
        }
        int rc = http_wait(fd, POLLIN, deadline);
        if (rc != 0)
            return rc;
        ssize_t r = recv(fd, buf + *len, cap - *len, 0);
        if (r == 0)
            return 0;
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return -errno;
        }
        *len += (size_t)r;
    }
}

static char http_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether the n bytes at p equal lit ignoring ASCII case; p need not be
 * NUL-terminated. */
static bool http_caseeq(const char *p, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (http_lower(p[i]) != http_lower(lit[i]))
            return false;
    return true;
}

/* The value of header name in head (CRLF lines), or NULL; *n its length. */
static const char *http_header(const char *head, size_t head_len, const char *name, size_t *n)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', head_len);
    const char *end = head + head_len;
    while (p != NULL && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && http_caseeq(line, nl, name)) {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *n = (size_t)(ve - v);
            return v;
        }
        p = eol < end ? eol : NULL;
    }
    return NULL;
}

/* Decodes a chunked body in place; returns its length or -EPROTO. */
static long http_dechunk(char *p, size_t n)
{
    size_t in = 0, out = 0;
    for (;;) {
        size_t size = 0;
        int digits = 0;
        while (in < n) {
            char c = p[in];
            int v = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (v < 0)
                break;
            if (++digits > 8)
                return -EPROTO;
            size = size * 16 + (size_t)v;
            in++;
        }
        if (digits == 0)
            return -EPROTO;
        const char *eol = memchr(p + in, '\n', n - in);
        if (eol == NULL)
            return -EPROTO;
        in = (size_t)(eol - p) + 1;
        if (size == 0)
            return (long)out;
        if (size > n - in)
            return -EPROTO;
        memmove(p + out, p + in, size);
        out += size;
        in += size;
        if (in < n && p[in] == '\r')
            in++;
        if (in < n && p[in] == '\n')
            in++;
    }
}

static int http_parse(char *buf, size_t len, const struct xray__http_request *req,
                      struct xray__http_response *resp)
{
    const char *sep = NULL;
    for (size_t i = 0; i + 3 < len && i < HTTP_HEAD_MAX; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            sep = buf + i;
            break;
        }
    if (sep == NULL || len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return -EPROTO;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -EPROTO;
        status = status * 10 + (buf[i] - '0');
    }
    size_t head_len = (size_t)(sep - buf) + 2;
    char *body = buf + head_len + 2;
    size_t body_len = len - head_len - 2;
    size_t ten = 0, vn = 0;
    const char *te = http_header(buf, head_len, "Transfer-Encoding", &ten);
    const char *cl = http_header(buf, head_len, "Content-Length", &vn);
    if (te != NULL && ten >= 7 && http_caseeq(te + ten - 7, 7, "chunked")) {
        long n = http_dechunk(body, body_len);
        if (n < 0)
            return (int)n;
        body_len = (size_t)n;
    } else if (cl != NULL) {
        size_t want = 0;
        for (size_t i = 0; i < vn; i++) {
            if (cl[i] < '0' || cl[i] > '9' || want > req->max_body)
                return -EPROTO;
            want = want * 10 + (size_t)(cl[i] - '0');
        }
        if (want > body_len)
            return -EPROTO; /* the peer closed early */
        body_len = want;
    }
    if (body_len > req->max_body)
        return -EMSGSIZE;
    resp->body = malloc(body_len + 1);
    if (resp->body == NULL)
        return -ENOMEM;
    memcpy(resp->body, body, body_len);
    resp->body[body_len] = '\0';
    resp->len = body_len;
    resp->status = status;
    return 0;
}

int xray__http_call(const struct xray__http_request *req, struct xray__http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    int64_t deadline = http_now_ms() + (req->timeout_ms > 0 ? req->timeout_ms : 1000);
    /* The request line and headers. */
    char head[4096];
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: %s%s%s:%u\r\nConnection: close\r\n"
                     "User-Agent: libxray/" XRAYD_VERSION "\r\n",
                     req->method, req->path, strchr(req->host, ':') ? "[" : "", req->host,
                     strchr(req->host, ':') ? "]" : "", (unsigned)req->port);
    for (const char *const *h = req->headers; h != NULL && *h != NULL && n > 0; h++)
        n += snprintf(head + n, n < (int)sizeof(head) ? sizeof(head) - (size_t)n : 0, "%s\r\n", *h);
    if (n > 0 && n < (int)sizeof(head) && (req->body_len > 0 || strcmp(req->method, "GET") != 0))
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", req->body_len);
    if (n > 0 && n < (int)sizeof(head))
        n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    if (n <= 0 || n >= (int)sizeof(head))
        return -EINVAL;

    int fd = http_connect(req, deadline);
    if (fd < 0)
        return fd;
    int rc = http_send_all(fd, head, (size_t)n, deadline);
    if (rc == 0 && req->body_len > 0)
        rc = http_send_all(fd, req->body, req->body_len, deadline);
    size_t cap = HTTP_HEAD_MAX + req->max_body + 64;
    char *buf = rc == 0 ? malloc(cap) : NULL;
    if (rc == 0 && buf == NULL)
        rc = -ENOMEM;
    size_t len = 0;
    if (rc == 0)
        rc = http_read_all(fd, buf, cap, &len, deadline);
    close(fd);
    if (rc == 0)
        rc = http_parse(buf, len, req, resp);
    free(buf);
    return rc;
}

void xray__http_response_free(struct xray__http_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}

int xray__http_parse_url(const char *url, char host[XRAY__HTTP_HOST_MAX], uint16_t *port,
                         char path[XRAY__HTTP_PATH_MAX])
{
    if (url == NULL || strncasecmp(url, "http://", 7) != 0)
        return -EINVAL;
    const char *h = url + 7, *he;
    const char *rest;
    if (*h == '[') {
        he = strchr(h, ']');
        if (he == NULL)
            return -EINVAL;
        h++;
        rest = he + 1;
    } else {
        he = h + strcspn(h, ":/");
        rest = he;
    }
    size_t hn = (size_t)(he - h);
    if (hn == 0 || hn >= XRAY__HTTP_HOST_MAX)
        return -EINVAL;
    memcpy(host, h, hn);
    host[hn] = '\0';
    *port = 80;
    if (*rest == ':') {
        unsigned long v = 0;
        int digits = 0;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
            v = v * 10 + (unsigned long)(*rest - '0');
        if (digits == 0 || digits > 5 || v == 0 || v > 65535)
            return -EINVAL;
        *port = (uint16_t)v;
    }
    if (*rest != '\0' && *rest != '/')
        return -EINVAL;
    const char *p = *rest ? rest : "/";
    if (strlen(p) >= XRAY__HTTP_PATH_MAX)
        return -EINVAL;
    strcpy(path, p);
    return 0;
}
