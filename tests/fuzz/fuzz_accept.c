/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzer for prometheus_wants_openmetrics(): any bytes as an Accept header value are
 * read within their length and never crash. Two properties hold for every input: a
 * text/plain;q=1 listed first never turns the text format into OpenMetrics, and (when
 * no quote can swallow it) an extra openmetrics entry with q=0 changes nothing. A broken
 * property aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/prometheus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_TEXT_FIRST "text/plain;q=1,"
#define FZ_OM_ZERO    ",application/openmetrics-text;q=0"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pre = strlen(FZ_TEXT_FIRST), post = strlen(FZ_OM_ZERO);
    /* Exact-size copies, so a read past the end is caught. */
    char *a = malloc(size ? size : 1);
    char *b = malloc(pre + size);
    char *c = malloc(size + post);
    if (a == NULL || b == NULL || c == NULL)
        abort();
    memcpy(a, data, size);
    memcpy(b, FZ_TEXT_FIRST, pre);
    memcpy(b + pre, data, size);
    memcpy(c, data, size);
    memcpy(c + size, FZ_OM_ZERO, post);
    bool om = prometheus_wants_openmetrics(a, size);
    if (prometheus_wants_openmetrics(b, pre + size) && !om)
        abort();
    if (memchr(data, '"', size) == NULL && prometheus_wants_openmetrics(c, size + post) != om)
        abort();
    free(a);
    free(b);
    free(c);
    return 0;
}
