/* SPDX-License-Identifier: Apache-2.0 */
/* The X-Ray API's responses are outside input: any bytes through the
 * PutTraceSegments parser (UnprocessedTraceSegments) and the error-body description
 * kept for /healthz. Checks what callers rely on: bounded counts, NUL-terminated ids
 * and codes, printable bounded error text. The same bytes, as a document, also go
 * through the request body builder, which must escape them as buf.c does. */
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
    buf_append_json_string(&want, (const char *)data, size);
    buf_append_str(&want, "]}");
    FUZZ_CHECK(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
    buf_free(&got);
    buf_free(&want);
    free(d);
    return 0;
}
