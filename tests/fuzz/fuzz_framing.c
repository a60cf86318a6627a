/* SPDX-License-Identifier: Apache-2.0 */
/* framing_parse() on arbitrary datagrams, copied to a buffer of their exact size so
 * a read past the end is caught. Beyond not crashing, every result must be coherent:
 * the body is what follows the first newline, the kind matches the body's prefix,
 * and the header of an accepted datagram, reparsed alone, is accepted again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ingest/framing.h"
#include "stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *dgram = malloc(size ? size : 1);
    if (dgram == NULL)
        return 0;
    memcpy(dgram, data, size);
    struct framing f;
    int rc = framing_parse(dgram, size, &f);
    const char *nl = size ? memchr(dgram, '\n', size) : NULL;
    int reason = framing_reject_reason(f.kind);

    if (rc != 0) {
        check(rc == XRAY_EHEADER);
        check(f.body == NULL && f.body_len == 0);
        check(f.kind == FRAMING_NO_NEWLINE || f.kind == FRAMING_BAD_HEADER ||
              f.kind == FRAMING_EMPTY_BODY);
        check((f.kind == FRAMING_NO_NEWLINE) == (nl == NULL));
        if (f.kind == FRAMING_EMPTY_BODY)
            check(nl == dgram + size - 1);
        check(reason >= 0 && reason < STATS_REJECT__COUNT);
    } else {
        check(nl != NULL);
        check(f.body == nl + 1);
        check(f.body_len == size - (size_t)(nl + 1 - dgram));
        check(f.body_len > 0);
        int t1 = f.body_len >= 3 && memcmp(f.body, "T1", 2) == 0 &&
                 (f.body[2] == 'S' || f.body[2] == 'U');
        int m1 = f.body_len >= 2 && memcmp(f.body, "M1", 2) == 0;
        check((f.kind == FRAMING_OTLP_TRACES) == t1);
        check((f.kind == FRAMING_OTLP_METRICS) == m1);
        check((f.kind == FRAMING_SEGMENT) == (!t1 && !m1));
        check((reason == -1) == (f.kind == FRAMING_SEGMENT));

        /* The same header with a fixed body must be accepted the same way. */
        size_t hlen = (size_t)(nl - dgram);
        char *again = malloc(hlen + 3);
        if (again != NULL) {
            memcpy(again, dgram, hlen);
            memcpy(again + hlen, "\n{}", 3);
            struct framing g;
            check(framing_parse(again, hlen + 3, &g) == 0);
            check(g.kind == FRAMING_SEGMENT && g.body_len == 2);
            free(again);
        }
    }
    free(dgram);
    return 0;
}
