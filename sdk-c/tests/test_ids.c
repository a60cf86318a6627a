/* SPDX-License-Identifier: Apache-2.0 */
/* ids.c: the ChaCha20 block against RFC 8439's vector, the trace and segment id
 * formats, and uniqueness over a million ids, from one thread and from several. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/ids.c"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void test_chacha20_block_rfc8439_vector(void **state)
{
    (void)state;
    /* RFC 8439 appendix A.1, test vector #1: all-zero key and nonce, counter 0. */
    static const uint8_t want[32] = {0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90,
                                     0x40, 0x5d, 0x6a, 0xe5, 0x53, 0x86, 0xbd, 0x28,
                                     0xbd, 0xd2, 0x19, 0xb8, 0xa0, 0x8d, 0xed, 0x1a,
                                     0xa8, 0x36, 0xef, 0xcc, 0x8b, 0x77, 0x0d, 0xc7};
    uint32_t key[8] = {0};
    uint8_t out[64];
    chacha20_block(key, 0, out);
    assert_memory_equal(out, want, sizeof(want));
}

static void test_id_trace_format(void **state)
{
    (void)state;
    char id[XRAY_TRACE_ID_LEN + 1];
    xray_id_trace(id, 0x5759e988);
    assert_int_equal(strlen(id), 35);
    assert_memory_equal(id, "1-5759e988-", 11);
    assert_true(is_lower_hex(id + 11, 24));
    uint32_t now = (uint32_t)time(NULL);
    xray_id_trace(id, 0);
    uint32_t got = (uint32_t)strtoul(id + 2, NULL, 16);
    assert_true(got >= now && got <= now + 2);
}

static void test_id_segment_format(void **state)
{
    (void)state;
    char id[XRAY_SEGMENT_ID_LEN + 1];
    for (int i = 0; i < 1000; i++) {
        xray_id_segment(id);
        assert_int_equal(strlen(id), 16);
        assert_true(is_lower_hex(id, 16));
        assert_string_not_equal(id, "0000000000000000");
    }
    char hex[17] = {0};
    xray__ids_hex64(hex, 0x0123456789abcdefull);
    assert_string_equal(hex, "0123456789abcdef");
}

#define N_IDS 1000000

static void test_id_segment_unique_1m(void **state)
{
    (void)state;
    uint64_t *v = malloc(sizeof(uint64_t) * N_IDS);
    assert_non_null(v);
    char id[XRAY_SEGMENT_ID_LEN + 1];
    for (int i = 0; i < N_IDS; i++) {
        xray_id_segment(id);
        v[i] = strtoull(id, NULL, 16);
    }
    qsort(v, N_IDS, sizeof(uint64_t), cmp_u64);
    for (int i = 1; i < N_IDS; i++)
        assert_true(v[i] != v[i - 1]);
    free(v);
}

struct pair {
    uint64_t hi, lo;
};

static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->hi != y->hi)
        return x->hi < y->hi ? -1 : 1;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void test_id_trace_unique_1m(void **state)
{
    (void)state;
    struct pair *v = malloc(sizeof(*v) * N_IDS);
    assert_non_null(v);
    char id[XRAY_TRACE_ID_LEN + 1], part[13] = {0};
    for (int i = 0; i < N_IDS; i++) {
        xray_id_trace(id, 1700000000);
        memcpy(part, id + 11, 12);
        v[i].hi = strtoull(part, NULL, 16);
        memcpy(part, id + 23, 12);
        v[i].lo = strtoull(part, NULL, 16);
    }
    qsort(v, N_IDS, sizeof(*v), cmp_pair);
    for (int i = 1; i < N_IDS; i++)
        assert_true(v[i].hi != v[i - 1].hi || v[i].lo != v[i - 1].lo);
    free(v);
}

#define N_THREADS  4
#define PER_THREAD (N_IDS / N_THREADS)

static void *draw(void *arg)
{
    uint64_t *out = arg;
    for (int i = 0; i < PER_THREAD; i++)
        out[i] = xray_id_random64();
    return NULL;
}

static void test_id_random64_unique_across_threads(void **state)
{
    (void)state;
    uint64_t *v = malloc(sizeof(uint64_t) * N_IDS);
    assert_non_null(v);
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, draw, v + i * PER_THREAD), 0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    qsort(v, N_IDS, sizeof(uint64_t), cmp_u64);
    for (int i = 1; i < N_IDS; i++)
        assert_true(v[i] != v[i - 1]);
    free(v);
}

static void test_ids_fill_rekeys_after_1mib(void **state)
{
    (void)state;
    /* Drawing past the rekey point keeps producing bytes, and the key changes. */
    uint8_t buf[4096];
    xray__ids_fill(buf, 1);
    uint32_t key_before[8];
    memcpy(key_before, tls_rng.key, sizeof(key_before));
    for (int i = 0; i < 300; i++)
        xray__ids_fill(buf, sizeof(buf));
    assert_memory_not_equal(key_before, tls_rng.key, sizeof(key_before));
    assert_true(tls_rng.blocks_left < IDS_REKEY_BLOCKS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chacha20_block_rfc8439_vector),
        cmocka_unit_test(test_id_trace_format),
        cmocka_unit_test(test_id_segment_format),
        cmocka_unit_test(test_id_segment_unique_1m),
        cmocka_unit_test(test_id_trace_unique_1m),
        cmocka_unit_test(test_id_random64_unique_across_threads),
        cmocka_unit_test(test_ids_fill_rekeys_after_1mib),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
