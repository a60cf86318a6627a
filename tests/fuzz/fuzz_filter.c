/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzer for trace/filter.c: filter_parse() on arbitrary bytes returns 0 or XRAY_EPARSE
 * with a message that fits, and never crashes. What parses is evaluated against three
 * fixed trace summaries: `not (expr)` must match exactly the others, and when the
 * expression requires a service (the store's service index relies on it) every match
 * has that service. A broken property aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "segment/scan.h"
#include "trace/filter.h"
#include "trace/filter_internal.h"
#include "trace/summary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_TRACES 3

static const char *const fz_docs[FZ_TRACES] = {
    "{\"name\":\"web\",\"id\":\"a000000000000001\",\"trace_id\":\"1-00000000-1\","
    "\"start_time\":100,\"end_time\":101,\"origin\":\"AWS::EC2::Instance\",\"user\":\"alice\","
    "\"http\":{\"request\":{\"method\":\"GET\",\"url\":\"http://example.com/api\"},"
    "\"response\":{\"status\":200}},\"annotations\":{\"customer\":\"acme\",\"count\":3,"
    "\"vip\":true,\"quote\":\"say \\\"hi\\\" \\\\ bye\"}}",
    "{\"name\":\"web\",\"id\":\"b000000000000001\",\"trace_id\":\"1-00000000-2\","
    "\"start_time\":200,\"end_time\":202.5,\"fault\":true,\"user\":\"bob\","
    "\"http\":{\"request\":{\"method\":\"POST\",\"url\":\"http://example.com/login\"},"
    "\"response\":{\"status\":500}},\"annotations\":{\"customer\":\"globex\",\"count\":10},"
    "\"subsegments\":[{\"name\":\"db\",\"id\":\"b000000000000002\",\"start_time\":200.1,"
    "\"end_time\":201,\"throttle\":true,\"annotations\":{\"n\":-1500}}]}",
    "{\"name\":\"worker\",\"id\":\"c000000000000001\",\"trace_id\":\"1-00000000-3\","
    "\"parent_id\":\"c000000000000009\",\"start_time\":300,\"in_progress\":true,"
    "\"error\":true,\"http\":{\"response\":{\"status\":404}},"
    "\"annotations\":{\"vip\":false,\"flag\":true}}",
};

static struct summary_names fz_names;
static struct summary fz_sums[FZ_TRACES];

static void fz_init(void)
{
    static struct segment_view v;
    static int done;
    size_t bytes = 0;
    uint64_t dropped = 0;
    if (done++)
        return;
    if (summary_names_init(&fz_names, 16, 1) != 0)
        abort();
    for (int i = 0; i < FZ_TRACES; i++) {
        if (scan_document(fz_docs[i], strlen(fz_docs[i]), &v) != 0)
            abort();
        summary_init(&fz_sums[i], (uint64_t)i + 1, v.seg.start_time);
        summary_count(&fz_sums[i], 0, summary_bits(&v));
        summary_times(&fz_sums[i], v.seg.start_time, v.seg.has_end_time ? v.seg.end_time : 0);
        if (summary_add(&fz_names, &fz_sums[i], &v, &bytes, &dropped) != 0)
            abort();
    }
}

static struct filter *fz_parse(const char *p, size_t n)
{
    char err[XRAY_ERR_LEN] = "";
    struct filter *f = (struct filter *)&fz_names; /* must be reset */
    int rc = filter_parse(p, n, &f, err);
    if (rc == 0 && f != NULL)
        return f;
    if (rc != XRAY_EPARSE || f != NULL || err[0] == '\0' || strlen(err) >= XRAY_ERR_LEN - 1) {
        fprintf(stderr, "filter_parse: rc %d, err '%s'\n", rc, err);
        abort();
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_init();
    struct filter *f = fz_parse((const char *)data, size);
    if (f == NULL)
        return 0;
    bool m[FZ_TRACES];
    size_t n = 0;
    const char *svc = filter_service(f, &n);
    for (int i = 0; i < FZ_TRACES; i++) {
        m[i] = filter_match(f, &fz_sums[i]);
        if (m[i] && svc != NULL && !summary_has_service(&fz_sums[i], svc, n))
            abort();
    }
    filter_free(f);
    char *neg = malloc(size + 6);
    if (neg == NULL)
        return 0;
    memcpy(neg, "not (", 5);
    memcpy(neg + 5, data, size);
    neg[size + 5] = ')';
    struct filter *g = size + 6 <= FILTER_MAX_BYTES ? fz_parse(neg, size + 6) : NULL;
    for (int i = 0; g != NULL && i < FZ_TRACES; i++)
        if (filter_match(g, &fz_sums[i]) == m[i])
            abort();
    filter_free(g);
    free(neg);
    return 0;
}
