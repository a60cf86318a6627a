/* SPDX-License-Identifier: Apache-2.0 */
/* struct buf: appends, the hard maximum (a refused append leaves the buffer exactly
 * as it was), and JSON string escaping: decoded back with jansson, held byte for byte
 * to a one-byte-at-a-time reference, its exact length counted. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"

static void test_buf_append_basic(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_int_equal(buf_append_str(&b, "def"), 0);
    assert_int_equal(buf_appendf(&b, "-%d-%s", 42, "x"), 0);
    assert_int_equal(b.len, 11);
    assert_string_equal(b.data, "abcdef-42-x"); /* NUL-terminated, not counted */
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 11);

    /* Growth keeps the contents. */
    char big[5000];
    memset(big, 'z', sizeof(big));
    assert_int_equal(buf_append(&b, big, sizeof(big)), 0);
    assert_int_equal(b.len, 11 + sizeof(big));
    assert_memory_equal(b.data, "abcdef-42-x", 11);
    assert_memory_equal(b.data + 11, big, sizeof(big));
    assert_int_equal(b.data[b.len], '\0');
    assert_true(b.cap > b.len);

    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_append_str(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 1 << 20); /* still usable */
    assert_int_equal(buf_append_str(&b, "x"), 0);
    buf_free(&b);
}

static void test_buf_append_bound(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_append(&b, "12345678", 8), 0);
    char *data = b.data;
    size_t cap = b.cap;

    assert_int_equal(buf_append(&b, "abc", 3), XRAY_ETOOBIG);
    assert_int_equal(buf_append_str(&b, "abc"), XRAY_ETOOBIG);
    assert_int_equal(buf_appendf(&b, "%s", "abc"), XRAY_ETOOBIG);
    assert_int_equal(buf_append_json_string(&b, "a", 1), XRAY_ETOOBIG); /* needs 3 */
    assert_int_equal(buf_reserve(&b, 3), XRAY_ETOOBIG);
    assert_int_equal(buf_reserve(&b, SIZE_MAX), XRAY_ETOOBIG);
    assert_int_equal(b.len, 8);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.data, "12345678");

    /* Exactly up to the maximum is fine. */
    assert_int_equal(buf_append(&b, "90", 2), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "1234567890");
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(buf_append(&b, "x", 1), XRAY_ETOOBIG);
    assert_string_equal(b.data, "1234567890");
    assert_true(b.cap <= b.max + 1); /* never allocates past the maximum */
    buf_free(&b);

    /* An escaped string that fits only when counted exactly. */
    buf_init(&b, 10);
    assert_int_equal(buf_append_json_string(&b, "abcdefgh", 8), 0);
    assert_string_equal(b.data, "\"abcdefgh\"");
    buf_free(&b);
    buf_init(&b, 10);
    assert_int_equal(buf_append_json_string(&b, "abcdefg\n", 8), XRAY_ETOOBIG);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    /* Two-byte escapes are counted as two, not as \u00XX. */
    buf_init(&b, 10);
    assert_int_equal(buf_append_json_string(&b, "abcdef\n", 7), 0);
    assert_string_equal(b.data, "\"abcdef\\n\"");
    buf_free(&b);

    /* A maximum of SIZE_MAX means no practical bound. */
    buf_init(&b, SIZE_MAX);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_int_equal(buf_appendf(&b, "%d", 7), 0);
    assert_string_equal(b.data, "abc7");
    buf_free(&b);
}

/* Escapes s, checks the text against want (when not NULL), and decodes it back. */
static void roundtrip(const char *s, size_t n, const char *want)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_append_json_string(&b, s, n), 0);
    if (want != NULL)
        assert_string_equal(b.data, want);
    json_error_t error;
    json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (j == NULL)
        fail_msg("jansson: %s in %s", error.text, b.data);
    assert_true(json_is_string(j));
    assert_int_equal(json_string_length(j), n);
    assert_memory_equal(json_string_value(j), s, n);
    json_decref(j);
    buf_free(&b);
}

static void test_buf_append_json_string_escapes(void **state)
{
    (void)state;
    /* Every control character, alone and between plain bytes. */
    for (int c = 0; c < 0x20; c++) {
        char one = (char)c;
        roundtrip(&one, 1, NULL);
        char three[3] = {'a', (char)c, 'b'};
        roundtrip(three, 3, NULL);
    }
    char all[0x20];
    for (int c = 0; c < 0x20; c++)
        all[c] = (char)c;
    roundtrip(all, sizeof(all), NULL);

    roundtrip("", 0, "\"\"");
    roundtrip("plain", 5, "\"plain\"");
    roundtrip("\"", 1, "\"\\\"\"");
    roundtrip("\\", 1, "\"\\\\\"");
    roundtrip("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    roundtrip("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
    roundtrip("\x01\x1f", 2, "\"\\u0001\\u001f\"");
    roundtrip("\0x", 2, "\"\\u0000x\"");
    roundtrip("/\x7f", 2, "\"/\x7f\""); /* neither needs escaping */

    /* UTF-8 passes through byte for byte. */
    const char *utf8 = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8";
    char want[64];
    snprintf(want, sizeof(want), "\"%s\"", utf8);
    roundtrip(utf8, strlen(utf8), want);

    /* Appends after what is there. */
    struct buf b;
    buf_init(&b, 100);
    assert_int_equal(buf_append_str(&b, "{\"k\":"), 0);
    assert_int_equal(buf_append_json_string(&b, "v\n", 2), 0);
    assert_int_equal(buf_append_str(&b, "}"), 0);
    assert_string_equal(b.data, "{\"k\":\"v\\n\"}");
    buf_free(&b);
}

/* What the escaper must write, one byte at a time: the reference the fast path is
 * held to. Returns the length written to out (room for 6 * n + 2). */
static size_t ref_escape(char *out, const unsigned char *s, size_t n)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        const char *two = c == '"'    ? "\\\""
                          : c == '\\' ? "\\\\"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                          : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f"
                                      : NULL;
        if (two != NULL) {
            memcpy(out + o, two, 2);
            o += 2;
        } else if (c < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    return o;
}

/* Random bytes at every length around the 16- and 32-byte steps of the vector path,
 * with a mix that reaches every branch: the output is the reference's byte for byte,
 * buf_json_string_len() is its exact size, and a buffer with no room to spare (the
 * byte loop) writes the same. */
static void test_buf_append_json_string_matches_reference(void **state)
{
    (void)state;
    static unsigned char in[600];
    static char want[6 * sizeof(in) + 2];
    struct buf got, tight;
    buf_init(&got, 1 << 20);
    unsigned seed = 7;
    for (int round = 0; round < 4000; round++) {
        size_t len = (size_t)(round * 7) % sizeof(in);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) & 0xff;
            /* mostly plain text, often '"' and '\\', sometimes any byte */
            in[i] = r < 160   ? (unsigned char)('a' + r % 26)
                    : r < 200 ? '"'
                    : r < 215 ? '\\'
                              : (unsigned char)(r * 7);
        }
        size_t wlen = ref_escape(want, in, len);
        assert_int_equal(buf_json_string_len((const char *)in, len), wlen);
        buf_reset(&got);
        assert_int_equal(buf_append_json_string(&got, (const char *)in, len), 0);
        assert_int_equal(got.len, wlen);
        assert_memory_equal(got.data, want, wlen);
        assert_int_equal(got.data[got.len], '\0');
        buf_init(&tight, wlen);
        assert_int_equal(buf_append_json_string(&tight, (const char *)in, len), 0);
        assert_int_equal(tight.len, wlen);
        assert_memory_equal(tight.data, want, wlen);
        buf_free(&tight);
        if (wlen > 0) {
            buf_init(&tight, wlen - 1);
            assert_int_equal(buf_append_json_string(&tight, (const char *)in, len), XRAY_ETOOBIG);
            assert_int_equal(tight.len, 0);
            buf_free(&tight);
        }
    }
    buf_free(&got);
}

/* The vector count keeps per-lane tallies that must be summed before they wrap at
 * 256: long runs of one escaped byte, and of every kind of control character. */
static void test_buf_json_string_len_long(void **state)
{
    (void)state;
    size_t n = 16 * 255 * 3 + 21;
    unsigned char *s = malloc(n);
    char *want = malloc(6 * n + 2);
    assert_non_null(s);
    assert_non_null(want);
    const unsigned char fill[] = {'"', '\\', '\n', 0x01, 'x', 0x1f};
    for (size_t f = 0; f < sizeof(fill); f++) {
        memset(s, fill[f], n);
        size_t wlen = ref_escape(want, s, n);
        assert_int_equal(buf_json_string_len((const char *)s, n), wlen);
        struct buf b;
        buf_init(&b, SIZE_MAX);
        assert_int_equal(buf_append_json_string(&b, (const char *)s, n), 0);
        assert_int_equal(b.len, wlen);
        assert_memory_equal(b.data, want, wlen);
        buf_free(&b);
    }
    for (size_t i = 0; i < n; i++)
        s[i] = (unsigned char)(i % 0x20);
    assert_int_equal(buf_json_string_len((const char *)s, n), ref_escape(want, s, n));
    assert_int_equal(buf_json_string_len("", 0), 2);
    free(want);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_basic),
        cmocka_unit_test(test_buf_append_bound),
        cmocka_unit_test(test_buf_append_json_string_escapes),
        cmocka_unit_test(test_buf_append_json_string_matches_reference),
        cmocka_unit_test(test_buf_json_string_len_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
