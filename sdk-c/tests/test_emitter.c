/* SPDX-License-Identifier: Apache-2.0 */
/* emitter.c and the streaming of segment.c, over a real UDP socket on 127.0.0.1
 * (port 0): the datagram framing, streaming past the subsegment threshold (top-most
 * closed subtrees, with trace_id and parent_id), documents that would pass 64 KB,
 * a node too big alone, and sends that fail or go nowhere: counted, never blocking. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int listen_udp(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int big = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static struct xray_recorder *recorder_for(uint16_t port, uint32_t threshold)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)port);
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.flags = XRAY_CONFIG_IGNORE_ENV;
    cfg.service_name = "svc";
    cfg.daemon_address = addr;
    cfg.sampler = XRAY_SAMPLER_ALL;
    cfg.stream_threshold = threshold;
    cfg.log_level = XRAY_LOG_SILENT;
    char err[XRAY_SDK_ERR_LEN];
    struct xray_recorder *rec = xray_recorder_create(&cfg, err);
    if (rec == NULL)
        fail_msg("create: %s", err);
    return rec;
}

/* The next datagram's document (header line checked), or NULL after 2 s. */
static json_t *recv_doc(int fd, size_t *size)
{
    static char buf[70000];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) != 1)
        return NULL;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    assert_true(n > 0);
    static const char hdr[] = "{\"format\":\"json\",\"version\":1}\n";
    assert_true((size_t)n > sizeof(hdr) - 1);
    assert_memory_equal(buf, hdr, sizeof(hdr) - 1);
    if (size)
        *size = (size_t)n;
    json_error_t e;
    json_t *doc = json_loadb(buf + sizeof(hdr) - 1, (size_t)n - (sizeof(hdr) - 1), 0, &e);
    assert_non_null(doc);
    return doc;
}

static bool nothing_pending(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 50) == 0;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void test_emitter_one_datagram_per_segment(void **state)
{
    (void)state;
    uint16_t port;
    int fd = listen_udp(&port);
    struct xray_recorder *rec = recorder_for(port, 0);
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    struct xray_segment *sub = xray_subsegment_begin(seg, "sub");
    xray_segment_annotate_string(sub, "k", "v");
    xray_segment_end(sub);
    xray_segment_end(seg);
    json_t *d = recv_doc(fd, NULL);
    assert_non_null(d);
    assert_string_equal(str(d, "name"), "svc");
    assert_int_equal(json_array_size(json_object_get(d, "subsegments")), 1);
    json_decref(d);
    assert_true(nothing_pending(fd));
    struct xray_recorder_counters c;
    xray_recorder_counters(rec, &c);
    assert_int_equal(c.documents_sent, 1);
    assert_int_equal(c.send_dropped, 0);
    xray_recorder_destroy(rec);
    close(fd);
}

static void test_emitter_streams_past_threshold(void **state)
{
    (void)state;
    uint16_t port;
    int fd = listen_udp(&port);
    struct xray_recorder *rec = recorder_for(port, 3);
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    char ids[5][17];
    for (int i = 0; i < 4; i++) {
        struct xray_segment *s = xray_subsegment_begin(seg, "s");
        strcpy(ids[i], xray_segment_id(s));
        xray_segment_end(s);
    }
    /* The fourth close passed the threshold (4 > 3): all four left on their own. */
    for (int i = 0; i < 4; i++) {
        json_t *d = recv_doc(fd, NULL);
        assert_non_null(d);
        assert_string_equal(str(d, "type"), "subsegment");
        assert_string_equal(str(d, "id"), ids[i]);
        assert_string_equal(str(d, "parent_id"), xray_segment_id(seg));
        assert_string_equal(str(d, "trace_id"), xray_segment_trace_id(seg));
        assert_non_null(json_object_get(d, "end_time"));
        json_decref(d);
    }
    assert_true(nothing_pending(fd));

    /* Nested: an open subsegment keeps its place; its closed children stream with
     * it as parent. */
    struct xray_segment *outer = xray_subsegment_begin(seg, "outer");
    char outer_id[17];
    strcpy(outer_id, xray_segment_id(outer));
    for (int i = 0; i < 4; i++) {
        struct xray_segment *s = xray_subsegment_begin(outer, "inner");
        strcpy(ids[i], xray_segment_id(s));
        xray_segment_end(s);
    }
    /* outer + three closed inner = 4 held > 3: those three left; the fourth stays. */
    for (int i = 0; i < 3; i++) {
        json_t *d = recv_doc(fd, NULL);
        assert_non_null(d);
        assert_string_equal(str(d, "id"), ids[i]);
        assert_string_equal(str(d, "parent_id"), outer_id);
        json_decref(d);
    }
    assert_true(nothing_pending(fd));
    struct xray_segment *last = xray_subsegment_begin(seg, "last");
    char last_id[17];
    strcpy(last_id, xray_segment_id(last));
    xray_segment_end(last);
    xray_segment_end(outer);
    xray_segment_end(seg);
    json_t *d = recv_doc(fd, NULL);
    assert_non_null(d);
    assert_null(json_object_get(d, "type"));
    json_t *subs = json_object_get(d, "subsegments");
    assert_int_equal(json_array_size(subs), 2);
    assert_string_equal(str(json_array_get(subs, 0), "id"), outer_id);
    json_t *inner = json_object_get(json_array_get(subs, 0), "subsegments");
    assert_int_equal(json_array_size(inner), 1);
    assert_string_equal(str(json_array_get(inner, 0), "id"), ids[3]);
    assert_string_equal(str(json_array_get(subs, 1), "id"), last_id);
    json_decref(d);
    assert_true(nothing_pending(fd));
    struct xray_recorder_counters c;
    xray_recorder_counters(rec, &c);
    assert_int_equal(c.subsegments_streamed, 7);
    assert_int_equal(c.documents_sent, 8);
    xray_recorder_destroy(rec);
    close(fd);
}

static void test_emitter_splits_documents_over_64k(void **state)
{
    (void)state;
    uint16_t port;
    int fd = listen_udp(&port);
    struct xray_recorder *rec = recorder_for(port, 1000);
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    char big[2001];
    memset(big, 'x', 2000);
    big[2000] = '\0';
    enum { N = 40 };
    char ids[N][17];
    for (int i = 0; i < N; i++) {
        struct xray_segment *s = xray_subsegment_begin(seg, "s");
        assert_int_equal(xray_segment_metadata_string(s, NULL, "blob", big), 0);
        strcpy(ids[i], xray_segment_id(s));
        xray_segment_end(s);
    }
    char root_id[17];
    strcpy(root_id, xray_segment_id(seg));
    xray_segment_end(seg);
    int seen[N] = {0};
    bool root_seen = false;
    for (int i = 0; i < N + 1; i++) {
        size_t size = 0;
        json_t *d = recv_doc(fd, &size);
        assert_non_null(d);
        assert_true(size <= 65507);
        if (strcmp(str(d, "id"), root_id) == 0) {
            root_seen = true;
            assert_null(json_object_get(d, "subsegments"));
        } else {
            for (int j = 0; j < N; j++)
                if (strcmp(str(d, "id"), ids[j]) == 0)
                    seen[j]++;
            assert_string_equal(str(d, "type"), "subsegment");
        }
        json_decref(d);
    }
    assert_true(root_seen);
    for (int j = 0; j < N; j++)
        assert_int_equal(seen[j], 1);
    assert_true(nothing_pending(fd));

    /* One node over 64 KB by itself cannot be sent: dropped and counted. */
    seg = xray_segment_begin(rec, NULL);
    char meta[XRAY_METADATA_VALUE_MAX - 8];
    memset(meta, 'y', sizeof(meta) - 1);
    meta[sizeof(meta) - 1] = '\0';
    for (int i = 0; i < 5; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(xray_segment_metadata_string(seg, NULL, key, meta), 0);
    }
    xray_segment_end(seg);
    assert_true(nothing_pending(fd));
    struct xray_recorder_counters c;
    xray_recorder_counters(rec, &c);
    assert_int_equal(c.too_big_dropped, 1);
    assert_int_equal(c.subsegments_streamed, N);
    xray_recorder_destroy(rec);
    close(fd);
}

static int failing_send(struct xray_recorder *rec, const void *buf, size_t len)
{
    (void)rec;
    (void)buf;
    (void)len;
    return -EAGAIN;
}

static void test_emitter_no_daemon_counts_and_drops(void **state)
{
    (void)state;
    /* A port nobody listens on: sends go nowhere, quickly, without error to the host. */
    uint16_t port;
    int fd = listen_udp(&port);
    close(fd);
    struct xray_recorder *rec = recorder_for(port, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 2000; i++) {
        struct xray_segment *seg = xray_segment_begin(rec, NULL);
        xray_segment_end(seg);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(secs < 2.0);
    struct xray_recorder_counters c;
    xray_recorder_counters(rec, &c);
    assert_int_equal(c.documents_sent + c.send_dropped, 2000);
    /* A send that fails (buffer full) is counted and the document dropped. */
    rec->send = failing_send;
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    assert_int_equal(xray_segment_flush_in_progress(seg), XRAY_SDK_ESEND);
    xray_segment_end(seg);
    struct xray_recorder_counters c2;
    xray_recorder_counters(rec, &c2);
    assert_int_equal(c2.send_dropped, c.send_dropped + 2);
    assert_int_equal(c2.documents_sent, c.documents_sent);
    xray_recorder_destroy(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emitter_one_datagram_per_segment),
        cmocka_unit_test(test_emitter_streams_past_threshold),
        cmocka_unit_test(test_emitter_splits_documents_over_64k),
        cmocka_unit_test(test_emitter_no_daemon_counts_and_drops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
