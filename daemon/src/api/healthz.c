/* SPDX-License-Identifier: Apache-2.0 */
/* /healthz: serializes the snapshot the daemon's wiring provides (this file knows no
 * queue or budget by name), 200, or 503 while shutting down. Also the probe behind
 * `xrayd --health-check`: plain blocking sockets with poll() for the deadline, since it
 * runs in a process of its own that does nothing else. */
#include "api/healthz.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "buf.h"
#include "http/server.h"

#define HEALTHZ_MAX_BODY (16u * 1024)

struct healthz_route {
    void (*snapshot)(void *data, struct healthz_snapshot *out);
    void *data;
};

static const char *const healthz_status_names[] = {"ok", "degraded", "shutting_down"};

static int healthz_append_string(struct buf *b, const char *key, const char *value)
{
    int rc = buf_appendf(b, ",\"%s\":", key);
    if (rc != 0)
        return rc;
    if (value == NULL)
        return buf_append_str(b, "null");
    return buf_append_json_string(b, value, strlen(value));
}

static int healthz_append_entry(struct buf *b, bool first, const char *name, const char *suffix,
                                uint64_t value)
{
    int rc = first ? 0 : buf_append_str(b, ",");
    if (rc == 0)
        rc = buf_append_str(b, "\"");
    /* Budget names are [a-z0-9_] (budget.h): no escaping needed. */
    if (rc == 0)
        rc = buf_appendf(b, "%s%s\":%llu", name, suffix, (unsigned long long)value);
    return rc;
}

/* The memory object: every budget's use and limit, their totals, then extra. */
static int healthz_append_memory(struct buf *b, const struct budgets *bs,
                                 const struct healthz_entry *e, size_t n)
{
    int rc = buf_append_str(b, ",\"memory\":{");
    bool first = true;
    for (size_t i = 0; bs != NULL && rc == 0 && i < bs->count; i++) {
        const struct budget *x = &bs->list[i];
        rc = healthz_append_entry(b, first, x->name, "", budget_used(x));
        if (rc == 0)
            rc = healthz_append_entry(b, false, x->name, "_max", x->limit);
        first = false;
    }
    if (bs != NULL && rc == 0)
        rc = healthz_append_entry(b, first, "total", "", budgets_used_total(bs));
    if (bs != NULL && rc == 0)
        rc = healthz_append_entry(b, false, "total", "_max", budgets_limit_total(bs));
    for (size_t i = 0; rc == 0 && i < n && i < HEALTHZ_MAX_ENTRIES; i++) {
        if (bs != NULL || i > 0)
            rc = buf_append_str(b, ",");
        if (rc == 0)
            rc = buf_append_json_string(b, e[i].name, strlen(e[i].name));
        if (rc == 0)
            rc = buf_appendf(b, ":%llu", (unsigned long long)e[i].value);
    }
    return rc == 0 ? buf_append_str(b, "}") : rc;
}

static int healthz_append_object(struct buf *b, const char *key, const struct healthz_entry *e,
                                 size_t n)
{
    int rc = buf_appendf(b, ",\"%s\":{", key);
    for (size_t i = 0; rc == 0 && i < n && i < HEALTHZ_MAX_ENTRIES; i++) {
        if (i > 0)
            rc = buf_append_str(b, ",");
        if (rc == 0)
            rc = buf_append_json_string(b, e[i].name, strlen(e[i].name));
        if (rc == 0)
            rc = buf_appendf(b, ":%llu", (unsigned long long)e[i].value);
    }
    return rc == 0 ? buf_append_str(b, "}") : rc;
}

static void healthz_get(struct http_request *req, struct http_response *res, void *data)
{
    const struct healthz_route *r = data;
    struct healthz_snapshot snap;
    (void)req;
    memset(&snap, 0, sizeof(snap));
    r->snapshot(r->data, &snap);
    unsigned status = snap.status <= HEALTHZ_SHUTTING_DOWN ? snap.status : HEALTHZ_DEGRADED;
    struct buf b;
    buf_init(&b, HEALTHZ_MAX_BODY);
    int rc = buf_appendf(&b, "{\"status\":\"%s\"", healthz_status_names[status]);
    if (rc == 0)
        rc = healthz_append_string(&b, "version", snap.version ? snap.version : XRAYD_VERSION);
    if (rc == 0)
        rc = buf_appendf(&b, ",\"uptime_s\":%llu", (unsigned long long)snap.uptime_s);
    if (rc == 0)
        rc = healthz_append_string(&b, "upstream", snap.upstream ? snap.upstream : "");
    if (rc == 0)
        rc = healthz_append_string(&b, "upstream_reason",
                                   snap.upstream_reason ? snap.upstream_reason : "");
    if (rc == 0)
        rc = healthz_append_string(&b, "last_upstream_error", snap.last_upstream_error);
    if (rc == 0)
        rc = healthz_append_object(&b, "queues", snap.queues, snap.queue_count);
    if (rc == 0)
        rc = healthz_append_memory(&b, snap.budgets, snap.memory, snap.memory_count);
    if (rc == 0)
        rc = buf_append_str(&b, "}");
    http_response_header(res, "Cache-Control", "no-store");
    if (rc == 0)
        http_response_send(res, status == HEALTHZ_SHUTTING_DOWN ? 503 : 200, "application/json",
                           b.data, b.len);
    else
        http_response_send(res, 500, NULL, NULL, 0);
    buf_free(&b);
}

int healthz_register(struct http_server *s,
                     void (*snapshot)(void *data, struct healthz_snapshot *out), void *data)
{
    struct healthz_route *r = http_server_alloc(s, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->snapshot = snapshot;
    r->data = data;
    return http_server_route(s, HTTP_ROLE_ALL, "GET", "/healthz", healthz_get, r);
}

/* ---- the probe ---- */

static int64_t healthz_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline. 0, or -ETIMEDOUT / -errno. */
static int healthz_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - healthz_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int healthz_fail(char err[XRAY_ERR_LEN], int fd, const char *what, int code)
{
    if (err != NULL)
        snprintf(err, XRAY_ERR_LEN, "%s: %s", what, strerror(code));
    if (fd >= 0)
        close(fd);
    return 1;
}

int healthz_probe(const char *addr, int timeout_ms, char err[XRAY_ERR_LEN])
{
    struct sockaddr_storage ss;
    if (addr == NULL)
        addr = HEALTHZ_DEFAULT_ADDR;
    if (http_server_parse_address(addr, &ss, err) != 0)
        return 1;
    socklen_t len = sizeof(struct sockaddr_in);
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        if (memcmp(&a6->sin6_addr, &in6addr_any, sizeof(in6addr_any)) == 0)
            a6->sin6_addr = in6addr_loopback;
        len = sizeof(struct sockaddr_in6);
    } else if (((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY)) {
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    int64_t deadline = healthz_now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return healthz_fail(err, -1, "socket", errno);
    int rc = connect(fd, (struct sockaddr *)&ss, len);
    if (rc != 0 && errno != EINPROGRESS)
        return healthz_fail(err, fd, addr, errno);
    if (rc != 0) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if ((rc = healthz_wait(fd, POLLOUT, deadline)) != 0)
            return healthz_fail(err, fd, addr, -rc);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr != 0)
            return healthz_fail(err, fd, addr, soerr);
    }
    char req[256];
    int n = snprintf(req, sizeof(req),
                     "GET /healthz HTTP/1.1\r\nHost: %.128s\r\nUser-Agent: xrayd-health-check\r\n"
                     "Connection: close\r\n\r\n",
                     addr);
    for (int sent = 0; sent < n;) {
        if ((rc = healthz_wait(fd, POLLOUT, deadline)) != 0)
            return healthz_fail(err, fd, "send", -rc);
        ssize_t w = send(fd, req + sent, (size_t)(n - sent), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return healthz_fail(err, fd, "send", errno);
        sent += w > 0 ? (int)w : 0;
    }
    /* Only the status line matters: "HTTP/1.1 200 OK\r\n". */
    char resp[64];
    size_t got = 0;
    while (got < sizeof(resp) - 1 && memchr(resp, '\n', got) == NULL) {
        if ((rc = healthz_wait(fd, POLLIN, deadline)) != 0)
            return healthz_fail(err, fd, "receive", -rc);
        ssize_t r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (r == 0)
            break;
        if (r < 0 && errno != EAGAIN && errno != EINTR)
            return healthz_fail(err, fd, "receive", errno);
        got += r > 0 ? (size_t)r : 0;
    }
    close(fd);
    resp[got] = '\0';
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*1[01] %3d", &status) == 1 && status == 200)
        return 0;
    if (err != NULL)
        snprintf(err, XRAY_ERR_LEN, "%s answered %s", addr,
                 status ? (status == 503 ? "503 (shutting down)" : "not 200") : "no HTTP status");
    return 1;
}
