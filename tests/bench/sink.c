/* SPDX-License-Identifier: Apache-2.0 */
/* The benchmark's upstream: a minimal HTTP/1.1 server (keep-alive, Content-Length bodies,
 * one thread on epoll) that plays X-Ray fast enough never to be the bottleneck.
 * POST /TraceSegments answers {"UnprocessedTraceSegments":[]} and counts the documents of
 * the batch by counting the string elements of TraceSegmentDocuments (no JSON parse);
 * POST /TelemetryRecords answers {} and sums the daemon's counters from the records;
 * POST /api/v1/write (Prometheus remote write) answers 200 and counts requests and bytes;
 * GET /stats returns every count as JSON. It listens on loopback only, stops after
 * --seconds (default 3600) or on SIGTERM/SIGINT, and prints its counts on exit. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SINK_MAX_CONNS   64
#define SINK_MAX_REQUEST (16u * 1024 * 1024) /* a batch body is about 1 MiB at most */
#define SINK_MAX_HEADERS (16u * 1024)
#define SINK_READ_CHUNK  (256u * 1024)
#define SINK_MAX_SECONDS 86400
#define SINK_OUT_BYTES   4096

struct sink_conn {
    int fd;
    char *in;
    size_t in_len;
    size_t in_cap;
    char out[SINK_OUT_BYTES]; /* responses not yet written; small, never more than a few */
    size_t out_len;
    int close_after; /* Connection: close, or a request we could not read */
};

struct sink_stats {
    unsigned long long connections;
    unsigned long long requests;
    unsigned long long bad_requests;
    unsigned long long batches; /* POST /TraceSegments */
    unsigned long long documents;
    unsigned long long batch_bytes;
    unsigned long long telemetry_calls;
    unsigned long long telemetry_records;
    /* Sums over every telemetry record received. */
    unsigned long long tel_received;
    unsigned long long tel_sent;
    unsigned long long tel_spillover;
    unsigned long long tel_rejected;
    unsigned long long remote_writes; /* POST /api/v1/write */
    unsigned long long remote_write_bytes;
};

static struct sink_stats sink_stats;
static volatile sig_atomic_t sink_stop;

static void sink_on_signal(int sig)
{
    (void)sig;
    sink_stop = 1;
}

/* Counts the string elements of the array that follows "TraceSegmentDocuments". A string
 * ends at the first quote preceded by an even run of backslashes. */
static unsigned long long sink_count_documents(const char *body, size_t len)
{
    static const char key[] = "\"TraceSegmentDocuments\"";
    const char *end = body + len;
    const char *p = memmem(body, len, key, sizeof(key) - 1);
    if (p == NULL)
        return 0;
    p = memchr(p, '[', (size_t)(end - p));
    if (p == NULL)
        return 0;
    unsigned long long n = 0;
    for (p++; p < end && *p != ']'; p++) {
        if (*p != '"')
            continue;
        const char *q = p + 1;
        for (;;) {
            q = memchr(q, '"', (size_t)(end - q));
            if (q == NULL)
                return n;
            const char *b = q;
            while (b > p + 1 && b[-1] == '\\')
                b--;
            if ((q - b) % 2 == 0)
                break;
            q++;
        }
        n++;
        p = q;
    }
    return n;
}

/* Sums every "key":number in the body into *sum; returns how many were found. */
static unsigned long long sink_sum_key(const char *body, size_t len, const char *key,
                                       unsigned long long *sum)
{
    size_t klen = strlen(key);
    unsigned long long found = 0;
    const char *end = body + len;
    for (const char *p = body; p < end;) {
        const char *k = memmem(p, (size_t)(end - p), key, klen);
        if (k == NULL)
            break;
        p = k + klen;
        while (p < end && (*p == ' ' || *p == ':' || *p == '"'))
            p++;
        unsigned long long v = 0;
        while (p < end && *p >= '0' && *p <= '9')
            v = v * 10 + (unsigned long long)(*p++ - '0');
        *sum += v;
        found++;
    }
    return found;
}

static void sink_respond(struct sink_conn *c, int status, const char *body)
{
    const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request";
    size_t blen = strlen(body);
    int n = snprintf(c->out + c->out_len, sizeof(c->out) - c->out_len,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s\r\n%s",
                     status, reason, blen, c->close_after ? "Connection: close\r\n" : "", body);
    if (n < 0 || (size_t)n >= sizeof(c->out) - c->out_len) {
        c->close_after = 1; /* more pipelined requests than we buffer: make the client retry */
        return;
    }
    c->out_len += (size_t)n;
}

static void sink_continue(struct sink_conn *c)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (c->out_len + sizeof(line) - 1 <= sizeof(c->out)) {
        memcpy(c->out + c->out_len, line, sizeof(line) - 1);
        c->out_len += sizeof(line) - 1;
    }
}

static double sink_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static int sink_format_stats(char *out, size_t cap)
{
    const struct sink_stats *s = &sink_stats;
    return snprintf(out, cap,
                    "{\"connections\":%llu,\"requests\":%llu,\"bad_requests\":%llu,"
                    "\"batches\":%llu,\"documents\":%llu,\"batch_bytes\":%llu,"
                    "\"telemetry_calls\":%llu,\"telemetry_records\":%llu,"
                    "\"tel_received\":%llu,\"tel_sent\":%llu,\"tel_spillover\":%llu,"
                    "\"tel_rejected\":%llu,\"remote_writes\":%llu,\"remote_write_bytes\":%llu,"
                    "\"cpu_s\":%.3f}",
                    s->connections, s->requests, s->bad_requests, s->batches, s->documents,
                    s->batch_bytes, s->telemetry_calls, s->telemetry_records, s->tel_received,
                    s->tel_sent, s->tel_spillover, s->tel_rejected, s->remote_writes,
                    s->remote_write_bytes, sink_cpu());
}

static void sink_handle(struct sink_conn *c, const char *method, const char *path, const char *body,
                        size_t blen)
{
    sink_stats.requests++;
    if (strcmp(method, "POST") == 0 && strcmp(path, "/TraceSegments") == 0) {
        sink_stats.batches++;
        sink_stats.batch_bytes += blen;
        sink_stats.documents += sink_count_documents(body, blen);
        sink_respond(c, 200, "{\"UnprocessedTraceSegments\":[]}");
    } else if (strcmp(method, "POST") == 0 && strcmp(path, "/TelemetryRecords") == 0) {
        struct sink_stats *s = &sink_stats;
        s->telemetry_calls++;
        s->telemetry_records +=
            sink_sum_key(body, blen, "\"SegmentsReceivedCount\"", &s->tel_received);
        sink_sum_key(body, blen, "\"SegmentsSentCount\"", &s->tel_sent);
        sink_sum_key(body, blen, "\"SegmentsSpilloverCount\"", &s->tel_spillover);
        sink_sum_key(body, blen, "\"SegmentsRejectedCount\"", &s->tel_rejected);
        sink_respond(c, 200, "{}");
    } else if (strcmp(method, "POST") == 0 && strcmp(path, "/api/v1/write") == 0) {
        sink_stats.remote_writes++;
        sink_stats.remote_write_bytes += blen;
        sink_respond(c, 200, "");
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/stats") == 0) {
        char b[1024];
        sink_format_stats(b, sizeof(b));
        sink_respond(c, 200, b);
    } else {
        sink_respond(c, 404, "{\"message\":\"not found\"}");
    }
}

/* Handles every complete request in c->in. 0, or -1 to close the connection. */
static int sink_parse(struct sink_conn *c)
{
    size_t used = 0;
    while (!c->close_after) {
        char *start = c->in + used;
        size_t avail = c->in_len - used;
        char *hend = memmem(start, avail, "\r\n\r\n", 4);
        if (hend == NULL) {
            if (avail > SINK_MAX_HEADERS)
                return -1;
            break;
        }
        size_t hlen = (size_t)(hend - start) + 4;
        char method[16], path[256];
        if (sscanf(start, "%15s %255s HTTP/1.", method, path) != 2) {
            sink_stats.bad_requests++;
            return -1;
        }
        size_t clen = 0;
        int chunked = 0;
        for (char *line = memchr(start, '\n', hlen); line != NULL && line < hend;
             line = memchr(line + 1, '\n', (size_t)(hend - line))) {
            char *h = line + 1;
            if (strncasecmp(h, "Content-Length:", 15) == 0)
                clen = strtoull(h + 15, NULL, 10);
            else if (strncasecmp(h, "Transfer-Encoding:", 18) == 0)
                chunked = 1;
            else if (strncasecmp(h, "Connection:", 11) == 0 &&
                     strncasecmp(h + 11, " close", 6) == 0)
                c->close_after = 1;
            else if (strncasecmp(h, "Expect:", 7) == 0 && strncasecmp(h + 7, " 100", 4) == 0)
                sink_continue(c); /* not expected: xrayd turns 100-continue off */
        }
        if (chunked || clen > SINK_MAX_REQUEST) {
            sink_stats.bad_requests++;
            c->close_after = 1;
            sink_respond(c, 400, "{\"message\":\"chunked or too large\"}");
            break;
        }
        if (avail < hlen + clen)
            break;
        sink_handle(c, method, path, start + hlen, clen);
        used += hlen + clen;
    }
    if (used > 0) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
    return 0;
}

static int sink_flush(struct sink_conn *c)
{
    while (c->out_len > 0) {
        ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
    return 0;
}

static void sink_close(int ep, struct sink_conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c);
}

/* Reads what is there and answers it. 0, or -1 when the connection is done. */
static int sink_on_readable(struct sink_conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < SINK_READ_CHUNK) {
            size_t cap = c->in_cap * 2 > c->in_len + SINK_READ_CHUNK ? c->in_cap * 2
                                                                     : c->in_len + SINK_READ_CHUNK;
            if (cap > SINK_MAX_REQUEST + SINK_READ_CHUNK)
                return -1;
            char *n = realloc(c->in, cap);
            if (n == NULL)
                return -1;
            c->in = n;
            c->in_cap = cap;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r == 0)
            return -1;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        c->in_len += (size_t)r;
        if (sink_parse(c) != 0 || sink_flush(c) != 0)
            return -1;
        if (c->close_after && c->out_len == 0)
            return -1;
    }
}

int main(int argc, char **argv)
{
    int port = 0;
    double seconds = 3600;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
    }
    if ((argc - 1) % 2 != 0 || port < 0 || port > 65535 || seconds <= 0 ||
        seconds > SINK_MAX_SECONDS) {
        fprintf(stderr, "usage: sink [--port PORT] [--seconds S]   (127.0.0.1 only; port 0 = "
                        "any, printed)\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = sink_on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 64) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
        perror("sink: listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    printf("sink: listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);

    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int nconns = 0;
    while (!sink_stop) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) * 1e-9 > seconds)
            break;
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 200);
        for (int i = 0; i < n; i++) {
            struct sink_conn *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    c = nconns < SINK_MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
                    if (c == NULL) {
                        close(fd);
                        continue;
                    }
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                                              .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                    nconns++;
                    sink_stats.connections++;
                }
                continue;
            }
            int done = (evs[i].events & (EPOLLERR | EPOLLHUP)) && !(evs[i].events & EPOLLIN);
            if (!done && (evs[i].events & EPOLLOUT))
                done = sink_flush(c) != 0 || (c->close_after && c->out_len == 0);
            if (!done && (evs[i].events & EPOLLIN))
                done = sink_on_readable(c) != 0;
            if (done) {
                sink_close(ep, c);
                nconns--;
            }
        }
    }
    char b[1024];
    sink_format_stats(b, sizeof(b));
    printf("sink: %s\n", b);
    return 0;
}
