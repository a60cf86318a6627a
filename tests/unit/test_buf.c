/* SPDX-License-Identifier: Apache-2.0 */
/* struct buf: appends, the hard maximum (a refused append leaves the buffer exactly
 * as it was), and JSON string escaping checked by decoding the output with jansson. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_basic),
        cmocka_unit_test(test_buf_append_bound),
        cmocka_unit_test(test_buf_append_json_string_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
