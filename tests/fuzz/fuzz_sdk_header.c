/* SPDX-License-Identifier: Apache-2.0 */
/* libxray's X-Amzn-Trace-Id parser on arbitrary bytes, copied to a buffer of their
 * exact size so a read past the end is caught. Beyond not crashing: a rejected value
 * leaves an empty header; an accepted one has well-formed ids, keeps its passed-on
 * pairs within the 256-byte budget, formats within XRAY_HEADER_BUF, and parses back
 * from its formatted form to the same header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xray/xray.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static int lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = malloc(size ? size : 1);
    if (value == NULL)
        return 0;
    memcpy(value, data, size);
    struct xray_trace_header h, empty;
    memset(&empty, 0, sizeof(empty));
    int rc = xray_header_parse(value, size, &h);
    if (rc != 0) {
        check(rc == XRAY_SDK_EHEADER);
        check(memcmp(&h, &empty, sizeof(h)) == 0);
        free(value);
        return 0;
    }
    check(rc == 0);
    size_t rl = strlen(h.root), pl = strlen(h.parent);
    check(rl == 0 || (rl == 35 && h.root[0] == '1' && h.root[1] == '-' && h.root[10] == '-' &&
                      lower_hex(h.root + 2, 8) && lower_hex(h.root + 11, 24)));
    check(pl == 0 || (pl == 16 && lower_hex(h.parent, 16) && rl == 35));
    check(h.extra_len <= XRAY_HEADER_EXTRA_MAX && strlen(h.extra) == h.extra_len);
    check(h.sampled >= XRAY_SAMPLED_UNKNOWN && h.sampled <= XRAY_SAMPLED_REQUESTED);

    char buf[XRAY_HEADER_BUF];
    int n = xray_header_format(&h, buf, sizeof(buf));
    check(n >= 0 && (size_t)n < sizeof(buf) && strlen(buf) == (size_t)n);
    struct xray_trace_header again;
    check(xray_header_parse(buf, (size_t)n, &again) == 0);
    check(memcmp(&again, &h, sizeof(h)) == 0);
    free(value);
    return 0;
}
