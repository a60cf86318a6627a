/* SPDX-License-Identifier: Apache-2.0 */
/* The X-Ray API's responses are outside input: any bytes through the
 * PutTraceSegments parser (UnprocessedTraceSegments) and the error-body description
 * kept for /healthz. Checks what callers rely on: bounded counts, NUL-terminated ids
 * and codes, printable bounded error text. The same bytes, as a document, also go
 * through the request body builder, which must escape them exactly as the plain
 * byte-at-a-time escaper below does (buf.c's is vectorised). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ingest/pool.h"
#include "upstream/upstream_aws.h"
#include "upstream/xray.h"

/* Checked in every build type (assert() vanishes under NDEBUG). */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

struct fuzz_count {
    int n;
    size_t bytes;
};

static void fuzz_on_entry(void *arg, const char *id, const char *code)
{
    struct fuzz_count *c = arg;
    c->n++;
    c->bytes += strlen(id) + strlen(code);
}

/* The reference: JSON's short escapes, \u00xx for other control characters. */
static void fuzz_escape(struct buf *out, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_append_str(out, "\"");
    for (size_t i = 0; i < n; i++) {
        const char *esc = NULL;
        switch (s[i]) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        }
        if (esc != NULL) {
            buf_append_str(out, esc);
        } else if (s[i] < 0x20) {
            char u[7] = {'\\', 'u', '0', '0', hex[s[i] >> 4], hex[s[i] & 15], 0};
            buf_append_str(out, u);
        } else {
            buf_append(out, &s[i], 1);
        }
    }
    buf_append_str(out, "\"");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_count c = {0};
    int rc = upstream_aws_parse_response((const char *)data, size, fuzz_on_entry, &c);
    FUZZ_CHECK(rc == XRAY_EPARSE || (rc >= 0 && rc == c.n && rc <= UPSTREAM_AWS_UNPROCESSED_MAX));

    char out[XRAY_ERR_LEN];
    xray_error_describe(400, (const char *)data, size, out, sizeof(out));
    size_t n = strlen(out);
    FUZZ_CHECK(n < sizeof(out));
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(out[i] >= 0x20 && out[i] < 0x7f);

    struct doc *d = malloc(sizeof(*d) + size + 1);
    FUZZ_CHECK(d != NULL);
    memset(d, 0, sizeof(*d));
    d->len = (uint32_t)size;
    if (size)
        memcpy(d->data, data, size);
    struct buf got, want;
    buf_init(&got, 16u << 20);
    buf_init(&want, 16u << 20);
    FUZZ_CHECK(upstream_aws_body(&got, d) == 0);
    FUZZ_CHECK(upstream_aws_body_size(d) == got.len);
    buf_append_str(&want, "{\"TraceSegmentDocuments\":[");
    fuzz_escape(&want, data, size);
    buf_append_str(&want, "]}");
    FUZZ_CHECK(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
    buf_free(&got);
    buf_free(&want);
    free(d);
    return 0;
}
