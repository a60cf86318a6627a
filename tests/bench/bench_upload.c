/* SPDX-License-Identifier: Apache-2.0 */
/* The upload path's per-call costs, one piece at a time: a SigV4 signature over a
 * pre-hashed body (what the signing-key cache saves), the payload SHA-256 of a 64 KB
 * body, and — given a running tests/bench/sink — whole POSTs of such a body through
 * http/client.c on a libuv loop, 4 in flight as upstream.c keeps them, in CPU time of
 * this process per request (user and kernel: on loopback the kernel's TCP work is most
 * of it). A PutTraceSegments call carries 50 documents, so 2,000 calls per 100k.
 *   bench_upload [--sink PORT] [--requests N]     (default 4,000 requests) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <uv.h>

#include "aws/sigv4.h"
#include "http/client.h"

#define BENCH_BODY_BYTES (64 * 1024 - 512) /* 50 escaped 1,150-byte documents: ~65 KB */
#define BENCH_SIGNS      200000
#define BENCH_HASHES     20000
#define BENCH_INFLIGHT   4

struct bench {
    struct http_client *client;
    char url[96];
    char *body;
    int started;
    int done;
    int total;
};

static double bench_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static double bench_thread_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void bench_sign(const char *body)
{
    struct aws_credentials creds = {.access_key_id = "AKIDEXAMPLE",
                                    .secret_access_key =
                                        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
    struct sigv4_header h[] = {{"content-type", "application/json"},
                               {"x-amzn-xray-timestamp", "1795304363.123456789"}};
    char hash[65];
    if (sigv4_payload_hash(body, BENCH_BODY_BYTES, hash) != 0)
        exit(1);
    struct sigv4_request req = {.method = "POST",
                                .host = "xray.us-east-1.amazonaws.com",
                                .path = "/TraceSegments",
                                .headers = h,
                                .header_count = 2,
                                .payload_hash = hash,
                                .region = "us-east-1",
                                .service = "xray",
                                .now_s = 1795304363};
    struct sigv4_signature sig;
    double t0 = bench_thread_s();
    for (int i = 0; i < BENCH_SIGNS; i++)
        if (sigv4_sign(&req, &creds, &sig, NULL) != 0)
            exit(1);
    double sign_s = bench_thread_s() - t0;
    t0 = bench_thread_s();
    for (int i = 0; i < BENCH_HASHES; i++)
        if (sigv4_payload_hash(body, BENCH_BODY_BYTES, hash) != 0)
            exit(1);
    double hash_s = bench_thread_s() - t0;
    printf("sigv4_sign, payload hash given:  %6.2f us per signature\n", sign_s * 1e6 / BENCH_SIGNS);
    printf("payload SHA-256 of %d bytes:  %6.2f us (%.2f GB/s)\n", BENCH_BODY_BYTES,
           hash_s * 1e6 / BENCH_HASHES, (double)BENCH_BODY_BYTES * BENCH_HASHES / hash_s / 1e9);
}

static void bench_start(struct bench *b);

static void bench_done(const struct http_client_result *res, void *data)
{
    struct bench *b = data;
    if (res->error != HTTP_CLIENT_OK || res->status != 200) {
        fprintf(stderr, "bench_upload: request failed: %s (HTTP %d)\n", res->message, res->status);
        exit(1);
    }
    if (++b->done == b->total)
        http_client_close(b->client, NULL, NULL);
    else if (b->started < b->total)
        bench_start(b);
}

/* Header lines as xray.c sends them: the values change per call, as signed ones do. */
static void bench_start(struct bench *b)
{
    char stamp[64], date[48], auth[320];
    snprintf(stamp, sizeof(stamp), "X-Amzn-Xray-Timestamp: 1795304363.%09d", b->started);
    snprintf(date, sizeof(date), "X-Amz-Date: 20261122T01%04dZ", b->started % 10000);
    snprintf(auth, sizeof(auth),
             "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/xray/"
             "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amzn-xray-timestamp, "
             "Signature=%064d",
             b->started);
    const char *lines[] = {
        "Host: 127.0.0.1",        "Content-Type: application/json", stamp, date, auth,
        "User-Agent: xrayd-bench"};
    struct http_client_request req = {.method = "POST",
                                      .url = b->url,
                                      .headers = lines,
                                      .header_count = 6,
                                      .body = b->body,
                                      .body_len = BENCH_BODY_BYTES};
    b->started++;
    if (http_client_request(b->client, &req, bench_done, b) != 0) {
        fprintf(stderr, "bench_upload: cannot start a request\n");
        exit(1);
    }
}

static void bench_http(char *body, int port, int total)
{
    uv_loop_t loop;
    struct bench b = {.body = body, .total = total};
    snprintf(b.url, sizeof(b.url), "http://127.0.0.1:%d/TraceSegments", port);
    uv_loop_init(&loop);
    if ((b.client = http_client_create(&loop, NULL)) == NULL)
        exit(1);
    double c0 = bench_cpu_s();
    for (int i = 0; i < BENCH_INFLIGHT && i < total; i++)
        bench_start(&b);
    uv_run(&loop, UV_RUN_DEFAULT);
    double cpu = bench_cpu_s() - c0;
    printf("POST of %d bytes to the sink:  %6.1f us CPU per request (%d requests, %d in flight)\n",
           BENCH_BODY_BYTES, cpu * 1e6 / total, total, BENCH_INFLIGHT);
    uv_loop_close(&loop);
}

int main(int argc, char **argv)
{
    int port = 0, requests = 4000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--sink") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--requests") == 0)
            requests = atoi(argv[i + 1]);
    }
    if (port < 0 || port > 65535 || requests <= 0 || requests > 1000000) {
        fprintf(stderr, "usage: bench_upload [--sink PORT] [--requests N]\n");
        return 2;
    }
    char *body = malloc(BENCH_BODY_BYTES);
    if (body == NULL)
        return 1;
    /* A valid PutTraceSegments body: one long string of plain bytes. */
    memset(body, 'a', BENCH_BODY_BYTES);
    memcpy(body, "{\"TraceSegmentDocuments\":[\"", 27);
    memcpy(body + BENCH_BODY_BYTES - 3, "\"]}", 3);
    bench_sign(body);
    if (port > 0)
        bench_http(body, port, requests);
    free(body);
    return 0;
}
