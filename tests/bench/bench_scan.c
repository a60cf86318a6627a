/* SPDX-License-Identifier: Apache-2.0 */
/* Speed of scan_document() on the realistic 1,150-byte segment of performance.md (an
 * http block, an aws block, annotations, two subsegments: one remote, one aws), with
 * every field extracted. Two runs: the same document over and over (hot in cache), and
 * a ring of 4,096 distinct documents (ids differ; about 4.7 MB, so mostly outside L2),
 * closer to documents freshly received by another thread. Also a Python-SDK style
 * variant (17-digit times, as the Python SDK sends), which takes the slower number path.
 *   bench_scan [iterations]      (default 2,000,000 per run) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "segment/scan.h"

#define BENCH_DOC_BYTES 1150 /* performance.md: the realistic segment */
#define BENCH_RING      4096

static const char bench_fmt[] =
    "{\"name\":\"checkout-api\",\"id\":\"%016llx\",\"trace_id\":\"1-6b022b56-59a3%020llx\","
    "\"start_time\":%s,\"end_time\":%s,\"origin\":\"AWS::ECS::Container\",\"user\":\"alice\","
    "\"http\":{\"request\":{\"method\":\"POST\",\"url\":\"https://api.example.com/v1/cart/1234\","
    "\"user_agent\":\"Mozilla/5.0 (X11; Linux x86_64)\",\"client_ip\":\"203.0.113.17\"},"
    "\"response\":{\"status\":200,\"content_length\":512}},"
    "\"aws\":{\"xray\":{\"sdk\":\"X-Ray for Node.js\",\"sdk_version\":\"3.12.0\"}},"
    "\"annotations\":{\"customer\":\"c-42\",\"cart_items\":3,\"premium\":true},"
    "\"metadata\":{\"default\":{\"note\":\"%s\"}},"
    "\"subsegments\":[{\"id\":\"%016llx\",\"name\":\"payments.example.com\","
    "\"start_time\":%s,\"end_time\":%s,\"namespace\":\"remote\","
    "\"http\":{\"request\":{\"method\":\"POST\",\"url\":\"https://payments.example.com/charge\"},"
    "\"response\":{\"status\":201}}},"
    "{\"id\":\"%016llx\",\"name\":\"DynamoDB\",\"start_time\":%s,\"end_time\":%s,"
    "\"namespace\":\"aws\",\"http\":{\"response\":{\"status\":200}},"
    "\"aws\":{\"operation\":\"PutItem\",\"region\":\"eu-west-1\",\"table_name\":\"orders\","
    "\"request_id\":\"V4N1Q2J3K5L6M7N8O9P0QRSTUVWXYZAB\",\"retries\":0}}]}";

/* Writes document number i into out (BENCH_DOC_BYTES bytes, no NUL): the note in metadata
 * pads it to exactly BENCH_DOC_BYTES. python selects the 17-digit times. */
static void bench_make(char *out, unsigned long long i, int python)
{
    const char *t[6] = {"1795304277.571", "1795304277.683", "1795304277.590",
                        "1795304277.641", "1795304277.645", "1795304277.676"};
    const char *tp[6] = {"1795304394.4257805", "1795304394.5367412", "1795304394.4451203",
                         "1795304394.4964578", "1795304394.5003391", "1795304394.5312986"};
    const char **tt = python ? tp : t;
    char note[256] = "";
    unsigned long long h = i * 0x9E3779B97F4A7C15ull;
    int n = snprintf(NULL, 0, bench_fmt, h, h ^ 0x5555, tt[0], tt[1], note, h + 1, tt[2], tt[3],
                     h + 2, tt[4], tt[5]);
    int pad = BENCH_DOC_BYTES - n;
    if (pad < 0 || pad >= (int)sizeof(note)) {
        fprintf(stderr, "bench_scan: template is %d bytes\n", n);
        exit(1);
    }
    memset(note, 'x', (size_t)pad);
    note[pad] = '\0';
    char tmp[2048];
    n = snprintf(tmp, sizeof(tmp), bench_fmt, h, h ^ 0x5555, tt[0], tt[1], note, h + 1, tt[2],
                 tt[3], h + 2, tt[4], tt[5]);
    if (n != BENCH_DOC_BYTES) {
        fprintf(stderr, "bench_scan: document is %d bytes\n", n);
        exit(1);
    }
    memcpy(out, tmp, BENCH_DOC_BYTES);
}

/* The figures use CPU time of this thread: the budget is per core, and on a shared
 * machine wall time also counts the time other processes held the core. Wall time is
 * printed beside them. */
static double bench_now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void bench_run(const char *label, const char *docs, size_t ndocs, long iters,
                      struct segment_view *v)
{
    unsigned long sum = 0;
    for (size_t i = 0; i < ndocs; i++) /* warm up, and check every document is valid */
        if (scan_document(docs + i * BENCH_DOC_BYTES, BENCH_DOC_BYTES, v) != 0 || v->nsub != 2) {
            fprintf(stderr, "bench_scan: document rejected: %s\n", v->why);
            exit(1);
        }
    double t0 = bench_now(CLOCK_THREAD_CPUTIME_ID), w0 = bench_now(CLOCK_MONOTONIC);
    for (long i = 0; i < iters; i++) {
        const char *d = docs + (size_t)i % ndocs * BENCH_DOC_BYTES;
        sum += (unsigned long)scan_document(d, BENCH_DOC_BYTES, v) + v->seg.name.len;
    }
    double dt = bench_now(CLOCK_THREAD_CPUTIME_ID) - t0, wall = bench_now(CLOCK_MONOTONIC) - w0;
    printf("%-32s %9.0f docs/s %7.1f MB/s %6.1f ns/doc  (wall %9.0f docs/s; check %lu)\n", label,
           iters / dt, iters * (double)BENCH_DOC_BYTES / dt / 1e6, dt * 1e9 / iters, iters / wall,
           sum % 1000);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 2000000;
    struct segment_view *v = malloc(sizeof(*v));
    char *ring = malloc((size_t)BENCH_RING * BENCH_DOC_BYTES + 1);
    char *py = malloc(BENCH_DOC_BYTES + 1);
    if (v == NULL || ring == NULL || py == NULL || iters <= 0)
        return 1;
    for (size_t i = 0; i < BENCH_RING; i++)
        bench_make(ring + i * BENCH_DOC_BYTES, i, 0);
    bench_make(py, 0, 1);
    printf("scan_document, %d-byte segment, %ld scans per run, per CPU second of this thread\n",
           BENCH_DOC_BYTES, iters);
    printf("(segment_view: %zu bytes)\n", sizeof(*v));
    bench_run("same document (hot)", ring, 1, iters, v);
    bench_run("ring of 4096 documents", ring, BENCH_RING, iters, v);
    bench_run("same document, 17-digit times", py, 1, iters, v);
    free(py);
    free(ring);
    free(v);
    return 0;
}
