/* SPDX-License-Identifier: Apache-2.0 */
/* Cost of one instrumented request in libxray: begin a segment, begin and end one
 * subsegment, three annotations, end the segment, which serializes and sends its
 * document. Two variants: the library alone (the send replaced by a no-op), and with
 * its real non-blocking send() to a UDP socket on 127.0.0.1 that nobody reads (the
 * kernel drops what overflows, as with a busy daemon; the bare syscall is printed
 * for comparison). Mallocs per request are counted by wrapping glibc's malloc; each
 * variant runs 7 times, the fastest and the median are reported. Pin it to one core:
 *   taskset -c 1 bench_sdk
 *   bench_sdk [iterations]      (default 500,000 per run) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define BENCH_RUNS 7

/* glibc's own entry points, so counting wrappers can forward to them. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static _Atomic uint64_t mallocs;

void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);

void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int null_send(struct xray_recorder *rec, const void *buf, size_t len)
{
    (void)rec;
    (void)buf;
    (void)len;
    return 0;
}

static void one_request(struct xray_recorder *rec, long i)
{
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    struct xray_segment *sub = xray_subsegment_begin(seg, "dynamodb");
    xray_segment_annotate_string(seg, "customer", "c-123456");
    xray_segment_annotate_int(seg, "items", i);
    xray_segment_annotate_bool(seg, "cached", false);
    xray_segment_end(sub);
    xray_segment_end(seg);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void run(const char *label, struct xray_recorder *rec, long iters)
{
    double per[BENCH_RUNS];
    uint64_t allocs = 0;
    for (long i = 0; i < 1000; i++)
        one_request(rec, i); /* warm the thread's buffer and generator */
    for (int r = 0; r < BENCH_RUNS; r++) {
        uint64_t m0 = atomic_load(&mallocs);
        double t0 = now_ns();
        for (long i = 0; i < iters; i++)
            one_request(rec, i);
        per[r] = (now_ns() - t0) / (double)iters;
        allocs = atomic_load(&mallocs) - m0;
    }
    qsort(per, BENCH_RUNS, sizeof(double), cmp_double);
    struct xray_recorder_counters c;
    xray_recorder_counters(rec, &c);
    printf("%-34s fastest %7.0f ns  median %7.0f ns  mallocs/request %.2f  sent %llu "
           "dropped %llu\n",
           label, per[0], per[BENCH_RUNS / 2], (double)allocs / (double)iters,
           (unsigned long long)c.documents_sent, (unsigned long long)c.send_dropped);
}

static int sink_fd;

/* The kernel's share: the same send() of a document-sized datagram, alone. */
static void bare_send(struct xray_recorder *rec, long iters)
{
    char doc[640];
    memset(doc, ' ', sizeof(doc));
    double best = 1e18;
    for (int r = 0; r < BENCH_RUNS; r++) {
        double t0 = now_ns();
        for (long i = 0; i < iters; i++)
            (void)xray__emitter_write(rec, doc, sizeof(doc));
        double per = (now_ns() - t0) / (double)iters;
        best = per < best ? per : best;
    }
    printf("%-34s fastest %7.0f ns\n", "bare send() of 640 bytes", best);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 500000;
    sink_fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (sink_fd < 0 || bind(sink_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(sink_fd, (struct sockaddr *)&a, &alen) != 0) {
        perror("sink socket");
        return 1;
    }
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.flags = XRAY_CONFIG_IGNORE_ENV;
    cfg.service_name = "checkout-service";
    cfg.daemon_address = addr;
    cfg.sampler = XRAY_SAMPLER_ALL;
    cfg.log_level = XRAY_LOG_SILENT;
    char err[XRAY_SDK_ERR_LEN];
    struct xray_recorder *rec = xray_recorder_create(&cfg, err);
    if (rec == NULL) {
        fprintf(stderr, "recorder: %s\n", err);
        return 1;
    }
    rec->send = null_send;
    printf("request = begin segment + subsegment + 3 annotations + end + emit, %ld per run\n",
           iters);
    run("library only (send is a no-op)", rec, iters);
    rec->send = xray__emitter_write;
    run("with send() to 127.0.0.1", rec, iters);
    bare_send(rec, iters);
    xray_recorder_destroy(rec);
    close(sink_fd);
    return 0;
}
