/* SPDX-License-Identifier: Apache-2.0 */
/* The UDP listener on real loopback sockets (127.0.0.1 and ::1, port 0): captured SDK
 * datagrams and malformed ones go in, documents must come out byte for byte, every
 * datagram counted once by reason. Each test owns its loop, arms a watchdog and
 * checks that everything closes. udp.c is included to drive its receive callback
 * with what a socket cannot produce here (a truncated datagram). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/udp.c"

#define COMPACT     "{\"format\":\"json\",\"version\":1}"
#define SPACED      "{\"format\": \"json\", \"version\": 1}"
#define MAX_DOCS    64
#define WATCHDOG_MS 10000

struct harness {
    uv_loop_t loop;
    uv_timer_t watchdog;
    uv_timer_t poll;
    struct pool *pool;
    struct stats stats;
    struct udp *udp;
    struct doc *docs[MAX_DOCS];
    size_t ndocs;
    uint64_t want;
    bool timed_out;
    bool udp_closed;
    size_t pause_at; /* on_doc calls udp_pause() when this many documents arrived */
    int sock;
    struct sockaddr_storage to;
};

static void on_doc(struct doc *doc, void *data)
{
    struct harness *h = data;
    if (h->ndocs < MAX_DOCS)
        h->docs[h->ndocs++] = doc;
    else
        pool_free(h->pool, doc);
    if (h->pause_at != 0 && h->ndocs == h->pause_at)
        udp_pause(h->udp);
}

/* Starts a listener on address; 0 or udp_start's error. */
static int h_start(struct harness *h, const char *address, size_t pool_bytes, size_t rcvbuf)
{
    memset(h, 0, sizeof(*h));
    h->sock = -1;
    assert_int_equal(uv_loop_init(&h->loop), 0);
    assert_int_equal(uv_timer_init(&h->loop, &h->watchdog), 0);
    assert_int_equal(uv_timer_init(&h->loop, &h->poll), 0);
    h->pool = pool_create(pool_bytes);
    assert_non_null(h->pool);
    struct udp_options opt = {
        .loop = &h->loop,
        .address = address,
        .pool = h->pool,
        .stats = &h->stats,
        .rcvbuf_bytes = rcvbuf,
        .on_doc = on_doc,
        .data = h,
    };
    char err[XRAY_ERR_LEN] = "";
    int rc = udp_start(&h->udp, &opt, err);
    if (rc != 0) {
        assert_null(h->udp);
        assert_true(err[0] != '\0');
        return rc;
    }
    assert_int_equal(udp_local_address(h->udp, &h->to), 0);
    h->sock = socket(h->to.ss_family, SOCK_DGRAM, 0);
    assert_true(h->sock >= 0);
    return 0;
}

static void h_send(struct harness *h, const void *data, size_t len)
{
    socklen_t tolen =
        h->to.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    ssize_t n = sendto(h->sock, data, len, 0, (struct sockaddr *)&h->to, tolen);
    assert_int_equal(n, (ssize_t)len);
}

static void h_send_str(struct harness *h, const char *s)
{
    h_send(h, s, strlen(s));
}

static void on_watchdog(uv_timer_t *t)
{
    struct harness *h = container_of(t, struct harness, watchdog);
    h->timed_out = true;
    uv_stop(&h->loop);
}

static void on_poll(uv_timer_t *t)
{
    struct harness *h = container_of(t, struct harness, poll);
    if (stats_get(&h->stats.received) >= h->want)
        uv_stop(&h->loop);
}

/* Runs the loop until stats.received reaches want (or the watchdog fires), then
 * lets it run a little longer so that any extra datagram would be seen too. */
static void h_run_until(struct harness *h, uint64_t want)
{
    h->want = want;
    uv_timer_start(&h->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_timer_start(&h->poll, on_poll, 1, 1);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&h->poll);
    uv_timer_stop(&h->watchdog);
    assert_false(h->timed_out);
    assert_int_equal(stats_get(&h->stats.received), want);
}

/* Runs the loop for ms milliseconds. */
static void h_run_for(struct harness *h, uint64_t ms)
{
    h->want = UINT64_MAX;
    uv_timer_start(&h->watchdog, on_watchdog, ms, 0);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    h->timed_out = false;
}

static void on_udp_closed(void *data)
{
    struct harness *h = data;
    h->udp_closed = true;
}

static void h_finish(struct harness *h)
{
    if (h->udp != NULL) {
        udp_stop(h->udp);
        udp_stop(h->udp); /* twice is fine */
        udp_close(h->udp, on_udp_closed, h);
    }
    uv_close((uv_handle_t *)&h->watchdog, NULL);
    uv_close((uv_handle_t *)&h->poll, NULL);
    assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    assert_true(h->udp == NULL || h->udp_closed);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    for (size_t i = 0; i < h->ndocs; i++)
        pool_free(h->pool, h->docs[i]);
    assert_int_equal(pool_used_bytes(h->pool), 0);
    pool_destroy(h->pool);
    if (h->sock >= 0)
        close(h->sock);
}

static void assert_doc(const struct doc *doc, const void *body, size_t len)
{
    assert_non_null(doc);
    assert_int_equal(doc->len, len);
    assert_memory_equal(doc->data, body, len);
    assert_int_equal(doc->reject, -1);
}

static void assert_rejects(struct harness *h, const uint64_t want[STATS_REJECT__COUNT])
{
    uint64_t sum = 0;
    for (int i = 0; i < STATS_REJECT__COUNT; i++) {
        if (stats_get(&h->stats.rejected_by[i]) != want[i])
            fail_msg("rejected_by[%s]: %llu, want %llu", stats_reject_labels[i],
                     (unsigned long long)stats_get(&h->stats.rejected_by[i]),
                     (unsigned long long)want[i]);
        sum += want[i];
    }
    assert_int_equal(stats_get(&h->stats.rejected), sum);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *data = malloc(70000);
    assert_non_null(data);
    *len = fread(data, 1, 70000, f);
    fclose(f);
    return data;
}

static const char *const fixture_names[] = {
    "adot-node-0.13.0-t1s-and-sampling-01",
    "adot-node-0.13.0-t1s-and-sampling-02",
    "adot-node-0.13.0-t1s-and-sampling-03",
    "adot-node-0.13.0-t1s-and-sampling-04",
    "adot-node-0.13.0-t1s-and-sampling-05",
    "adot-node-0.13.0-t1s-and-sampling-06",
    "node-sdk-3.12.0-01",
    "node-sdk-3.12.0-02",
    "node-sdk-3.12.0-03",
    "node-sdk-3.12.0-04",
    "node-sdk-3.12.0-05",
    "node-sdk-3.12.0-06",
    "node-sdk-3.12.0-streaming-01",
    "node-sdk-3.12.0-streaming-02",
    "node-sdk-3.12.0-streaming-03",
    "node-sdk-3.12.0-streaming-04",
    "python-sdk-0.95-debian-01",
    "python-sdk-0.95-debian-02",
    "python-sdk-0.95-debian-03",
    "python-sdk-2.15.0-01",
    "python-sdk-2.15.0-02",
    "python-sdk-2.15.0-03",
    "python-sdk-2.15.0-04",
    "python-sdk-2.15.0-05",
    "python-sdk-2.15.0-06",
    "python-sdk-2.15.0-07",
    "python-sdk-2.15.0-08",
};
#define NFIXTURES (sizeof(fixture_names) / sizeof(fixture_names[0]))

/* A datagram of exactly total bytes: the compact header and a JSON-ish body. */
static char *big_datagram(size_t total)
{
    char *d = malloc(total);
    assert_non_null(d);
    size_t h = strlen(COMPACT "\n");
    memcpy(d, COMPACT "\n", h);
    memset(d + h, 'x', total - h);
    d[h] = '{';
    d[total - 1] = '}';
    for (size_t i = h + 1; i < total - 1; i += 997)
        d[i] = (char)('a' + i % 26); /* not one repeated byte: catch misplaced copies */
    return d;
}

/* The whole receive path on one address: fixtures, rejects, and the largest
 * datagrams. Skips when the address family is unavailable. */
static void run_receive(const char *address, size_t largest, size_t rcvbuf)
{
    struct harness h;
    int rc = h_start(&h, address, 8u << 20, rcvbuf);
    if (rc == UV_EADDRNOTAVAIL || rc == UV_EAFNOSUPPORT) {
        h_finish(&h);
        skip();
        return;
    }
    assert_int_equal(rc, 0);
    assert_true(udp_rcvbuf_granted(h.udp) > 0);
    size_t asked = rcvbuf ? rcvbuf : UDP_RCVBUF_DEFAULT;
    assert_int_equal(udp_rcvbuf_requested(h.udp), asked);
    assert_int_equal(udp_rcvbuf_short(h.udp), udp_rcvbuf_granted(h.udp) < asked);

    char *data[NFIXTURES];
    size_t len[NFIXTURES];
    for (size_t i = 0; i < NFIXTURES; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/datagrams/%s.dgram", XRAYD_TEST_DATA, fixture_names[i]);
        data[i] = read_file(path, &len[i]);
        h_send(&h, data[i], len[i]);
    }
    h_send_str(&h, "garbage");
    h_send(&h, "", 0);
    h_send_str(&h, "{\"format\":\"xml\",\"version\":1}\n{\"id\":\"1\"}");
    h_send_str(&h, "{\"format\":\"json\",\"version\":\"1\"}\n{\"id\":\"1\"}");
    h_send_str(&h, COMPACT "\n");
    h_send_str(&h, COMPACT "\nT1SCsUBCjwKHwoMc2VydmljZS5uYW1l");
    h_send_str(&h, COMPACT "\nM1CsUBCjwKHwoMc2VydmljZS5uYW1l");
    h_send_str(&h, SPACED "\n{\"id\":\"spaced\"}");
    h_run_until(&h, NFIXTURES + 8);

    /* The largest datagrams on their own, so a small default buffer holds them. */
    char *big = big_datagram(65000);
    char *biggest = big_datagram(largest);
    h_send(&h, big, 65000);
    h_run_until(&h, NFIXTURES + 9);
    h_send(&h, biggest, largest);
    h_run_until(&h, NFIXTURES + 10);
    h_run_for(&h, 20);
    assert_int_equal(stats_get(&h.stats.received), NFIXTURES + 10);

    uint64_t want[STATS_REJECT__COUNT] = {0};
    want[STATS_REJECT_OTLP_TRACES] = 6 + 1;
    want[STATS_REJECT_OTLP_METRICS] = 1;
    want[STATS_REJECT_NO_NEWLINE] = 2;
    want[STATS_REJECT_BAD_HEADER] = 2;
    want[STATS_REJECT_EMPTY_BODY] = 1;
    assert_rejects(&h, want);
    assert_int_equal(stats_get(&h.stats.spillover), 0);

    /* Documents arrive in order, the header line stripped, byte for byte. */
    size_t k = 0;
    for (size_t i = 0; i < NFIXTURES; i++) {
        const char *nl = memchr(data[i], '\n', len[i]);
        assert_non_null(nl);
        size_t off = (size_t)(nl - data[i]) + 1;
        if (data[i][off] == 'T')
            continue;
        assert_true(k < h.ndocs);
        assert_doc(h.docs[k++], data[i] + off, len[i] - off);
    }
    assert_doc(h.docs[k++], "{\"id\":\"spaced\"}", strlen("{\"id\":\"spaced\"}"));
    size_t hl = strlen(COMPACT "\n");
    assert_doc(h.docs[k++], big + hl, 65000 - hl);
    assert_doc(h.docs[k++], biggest + hl, largest - hl);
    assert_int_equal(h.ndocs, k);
    assert_int_equal(pool_doc_count(h.pool), k);

    for (size_t i = 0; i < NFIXTURES; i++)
        free(data[i]);
    free(big);
    free(biggest);
    h_finish(&h);
}

static void test_udp_receive_ipv4(void **state)
{
    (void)state;
    run_receive("127.0.0.1:0", 65507, 0); /* the largest UDP payload over IPv4 */
}

/* Linux's usual net.core.rmem_max: no pausing, and everything still arrives. */
static void test_udp_receive_small_buffer(void **state)
{
    (void)state;
    run_receive("127.0.0.1:0", 65507, 212992);
}

static void test_udp_receive_ipv6(void **state)
{
    (void)state;
    run_receive("[::1]:0", 65527, 0); /* the largest UDP payload over IPv6 */
}

static void test_udp_pool_full_spillover(void **state)
{
    (void)state;
    char body[100];
    memset(body, 'b', sizeof(body));
    char dgram[200];
    int n = snprintf(dgram, sizeof(dgram), COMPACT "\n%.*s", (int)sizeof(body), body);
    struct harness h;
    assert_int_equal(h_start(&h, "127.0.0.1:0", 2 * pool_doc_bytes(sizeof(body)), 0), 0);
    for (int i = 0; i < 5; i++)
        h_send(&h, dgram, (size_t)n);
    h_run_until(&h, 5);
    assert_int_equal(h.ndocs, 2);
    assert_int_equal(stats_get(&h.stats.spillover), 3);
    assert_int_equal(stats_get(&h.stats.rejected), 0);
    assert_int_equal(pool_used_bytes(h.pool), pool_max_bytes(h.pool));

    /* Room again once a document is freed. */
    pool_free(h.pool, h.docs[--h.ndocs]);
    h_send(&h, dgram, (size_t)n);
    h_run_until(&h, 6);
    assert_int_equal(h.ndocs, 2);
    assert_int_equal(stats_get(&h.stats.spillover), 3);
    assert_doc(h.docs[1], body, sizeof(body));
    h_finish(&h);
}

static void test_udp_rcvbuf_granted(void **state)
{
    (void)state;
    /* A request under net.core.rmem_max is granted exactly, either way it is set. */
    struct harness h;
    assert_int_equal(h_start(&h, "127.0.0.1:0", 1 << 20, 100000), 0);
    assert_int_equal(udp_rcvbuf_requested(h.udp), 100000);
    assert_int_equal(udp_rcvbuf_granted(h.udp), 100000);
    assert_false(udp_rcvbuf_short(h.udp));
    h_finish(&h);
}

static void test_udp_stop_then_close(void **state)
{
    (void)state;
    struct harness h;
    assert_int_equal(h_start(&h, "127.0.0.1:0", 1 << 20, 0), 0);
    h_send_str(&h, COMPACT "\n{\"id\":\"1\"}");
    h_run_until(&h, 1);
    udp_stop(h.udp);
    h_send_str(&h, COMPACT "\n{\"id\":\"2\"}");
    h_run_for(&h, 50);
    assert_int_equal(stats_get(&h.stats.received), 1);
    assert_int_equal(h.ndocs, 1);
    h_finish(&h);
}

/* Backpressure from inside on_doc: the batch already read is still delivered, then
 * nothing is read until udp_resume(), and the kernel buffer keeps what arrived. */
static void test_udp_pause_keeps_batch_and_socket(void **state)
{
    (void)state;
    char dgram[64];
    struct harness h;
    assert_int_equal(h_start(&h, "127.0.0.1:0", 1 << 20, 0), 0);
    h.pause_at = 1;
    for (int i = 0; i < 10; i++) {
        int n = snprintf(dgram, sizeof(dgram), COMPACT "\n{\"n\":%d}", i);
        h_send(&h, dgram, (size_t)n);
    }
    h_run_until(&h, 10); /* one recvmmsg batch: the pause waits for its end */
    assert_int_equal(h.ndocs, 10);
    for (int i = 10; i < 15; i++) {
        int n = snprintf(dgram, sizeof(dgram), COMPACT "\n{\"n\":%d}", i);
        h_send(&h, dgram, (size_t)n);
    }
    h_run_for(&h, 30);
    assert_int_equal(stats_get(&h.stats.received), 10);
    udp_pause(h.udp); /* twice is fine */
    udp_resume(h.udp);
    udp_resume(h.udp);
    h_run_until(&h, 15);
    assert_int_equal(h.ndocs, 15);
    for (int i = 0; i < 15; i++) {
        int n = snprintf(dgram, sizeof(dgram), "{\"n\":%d}", i);
        assert_doc(h.docs[i], dgram, (size_t)n);
    }
    assert_int_equal(stats_get(&h.stats.rejected), 0);
    h_finish(&h);
}

/* Outside a batch the pause is at once; it outlasts the pause after a drained socket,
 * and a stop wins over a resume. */
static void test_udp_pause_outside_batch_then_stop(void **state)
{
    (void)state;
    struct harness h;
    assert_int_equal(h_start(&h, "127.0.0.1:0", 1 << 20, 0), 0);
    h_send_str(&h, COMPACT "\n{\"id\":\"1\"}");
    h_run_until(&h, 1); /* the socket ran dry: the short pause is likely on now */
    udp_pause(h.udp);
    h_send_str(&h, COMPACT "\n{\"id\":\"2\"}");
    h_run_for(&h, 30); /* the short pause ends meanwhile; the hold does not */
    assert_int_equal(stats_get(&h.stats.received), 1);
    udp_resume(h.udp);
    h_run_until(&h, 2);
    udp_pause(h.udp);
    udp_stop(h.udp);
    udp_resume(h.udp);
    h_send_str(&h, COMPACT "\n{\"id\":\"3\"}");
    h_run_for(&h, 30);
    assert_int_equal(stats_get(&h.stats.received), 2);
    assert_int_equal(h.ndocs, 2);
    h_finish(&h);
}

static void test_udp_truncated_counted(void **state)
{
    (void)state;
    struct harness h;
    assert_int_equal(h_start(&h, "127.0.0.1:0", 1 << 20, 0), 0);
    struct sockaddr_in from;
    uv_ip4_addr("127.0.0.1", 9, &from);
    char *slab = h.udp->slab;
    memcpy(slab, COMPACT "\n{}", strlen(COMPACT "\n{}"));
    uv_buf_t buf = uv_buf_init(slab, UDP_SLOT_BYTES);
    udp_recv_cb(&h.udp->handle, UDP_SLOT_BYTES, &buf, (struct sockaddr *)&from,
                UV_UDP_MMSG_CHUNK | UV_UDP_PARTIAL);
    /* None of these is a datagram. */
    udp_recv_cb(&h.udp->handle, 0, &buf, NULL, UV_UDP_MMSG_FREE);
    udp_recv_cb(&h.udp->handle, UV_ECONNREFUSED, &buf, NULL, 0);
    assert_false(h.udp->paused);
    udp_recv_cb(&h.udp->handle, 0, &buf, NULL, 0); /* ran dry: pause if the buffer allows */
    assert_int_equal(h.udp->paused, udp_rcvbuf_granted(h.udp) >= UDP_PAUSE_MIN_RCVBUF);
    /* A zero-length datagram is one. */
    udp_recv_cb(&h.udp->handle, 0, &buf, (struct sockaddr *)&from, UV_UDP_MMSG_CHUNK);
    assert_int_equal(stats_get(&h.stats.received), 2);
    assert_int_equal(stats_get(&h.stats.rejected_by[STATS_REJECT_TRUNCATED]), 1);
    assert_int_equal(stats_get(&h.stats.rejected_by[STATS_REJECT_NO_NEWLINE]), 1);
    assert_int_equal(stats_get(&h.stats.rejected), 2);
    assert_int_equal(h.ndocs, 0);
    h_finish(&h);
}

static void test_udp_start_errors(void **state)
{
    (void)state;
    struct harness a, b;
    assert_int_equal(h_start(&a, "127.0.0.1:0", 1 << 20, 0), 0);
    char address[64];
    struct sockaddr_in *sin = (struct sockaddr_in *)&a.to;
    snprintf(address, sizeof(address), "127.0.0.1:%d", ntohs(sin->sin_port));
    /* The port is taken: the second listener fails and releases its handle. */
    assert_int_equal(h_start(&b, address, 1 << 20, 0), UV_EADDRINUSE);
    h_finish(&b);
    assert_int_equal(h_start(&b, "not an address", 1 << 20, 0), XRAY_EPARSE);
    h_finish(&b);
    h_finish(&a);
}

static void test_udp_parse_address_forms(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    char ip[64];
    assert_int_equal(udp_parse_address("127.0.0.1:2000", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 2000);
    assert_int_equal(udp_parse_address("0.0.0.0:65535", &ss), 0);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 65535);
    assert_int_equal(udp_parse_address(":2000", &ss), 0);
    uv_ip_name((struct sockaddr *)&ss, ip, sizeof(ip));
    assert_string_equal(ip, "0.0.0.0");
    assert_int_equal(udp_parse_address("localhost:2000", &ss), 0);
    uv_ip_name((struct sockaddr *)&ss, ip, sizeof(ip));
    assert_string_equal(ip, "127.0.0.1");
    assert_int_equal(udp_parse_address("[::1]:2000", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 2000);
    assert_int_equal(udp_parse_address("[::]:0", &ss), 0);
    assert_int_equal(udp_parse_address("[fe80::1%lo]:2000", &ss), 0);

    const char *bad[] = {"",
                         "2000",
                         "127.0.0.1",
                         "127.0.0.1:",
                         "127.0.0.1:x",
                         "127.0.0.1:65536",
                         "127.0.0.1:-1",
                         "::1:2000",
                         "[::1]2000",
                         "[::1]:",
                         "[::1",
                         "1.2.3:2000",
                         "1.2.3.4.5:1",
                         "[127.0.0.1]:1",
                         "example.com:2000",
                         "127.0.0.1:2000 "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (udp_parse_address(bad[i], &ss) != XRAY_EPARSE)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(udp_parse_address(NULL, &ss), XRAY_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_udp_receive_ipv4),
        cmocka_unit_test(test_udp_receive_small_buffer),
        cmocka_unit_test(test_udp_receive_ipv6),
        cmocka_unit_test(test_udp_pool_full_spillover),
        cmocka_unit_test(test_udp_rcvbuf_granted),
        cmocka_unit_test(test_udp_stop_then_close),
        cmocka_unit_test(test_udp_pause_keeps_batch_and_socket),
        cmocka_unit_test(test_udp_pause_outside_batch_then_stop),
        cmocka_unit_test(test_udp_truncated_counted),
        cmocka_unit_test(test_udp_start_errors),
        cmocka_unit_test(test_udp_parse_address_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
