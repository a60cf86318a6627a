/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the sampling rules parser with any bytes as a rules file (the centralized
 * shape and local versions 1 and 2 are told apart by content): it must parse or
 * refuse with a message, never crash or leak, and a parsed set must serialise and
 * parse back to the same rules; the served body must parse too. The input's bytes
 * are also matched as request attributes against the set. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xray/sampling.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xray_sampling_parse_options opts = {.now_s = 1700000000};
    struct xray_sampling_rules *rs = NULL;
    char err[XRAY_SAMPLING_ERR_LEN];
    int rc = xray_sampling_rules_parse((const char *)data, size, &opts, &rs, err);
    if (rc != 0) {
        if (rs != NULL || err[0] == '\0' || strlen(err) >= XRAY_SAMPLING_ERR_LEN)
            abort();
        return 0;
    }
    for (unsigned flags = 0; flags < 2; flags++) {
        char *body = NULL;
        size_t len;
        if (xray_sampling_rules_serialize(rs, flags ? XRAY_SAMPLING_SERIALIZE_ALL : 0, &body,
                                          &len) != 0)
            abort();
        struct xray_sampling_rules *again = NULL;
        if (xray_sampling_rules_parse(body, len, &opts, &again, err) != 0)
            abort(); /* what we serve must be readable */
        if (flags && !xray_sampling_rules_equal(rs, again))
            abort(); /* the full dump is the same set */
        xray_sampling_rules_free(again);
        free(body);
    }
    /* Every slice of the input as every attribute: matching must stay in bounds. */
    struct xray_sampling_request req;
    struct xray_sampling_str v = {(const char *)data, size / 2};
    req.service_name = req.service_type = req.host = req.http_method = req.url_path = v;
    size_t i = xray_sampling_rules_match(rs, &req);
    if (i >= xray_sampling_rules_count(rs) || xray_sampling_rules_get(rs, i)->drop != 0)
        abort();
    xray_sampling_rules_free(rs);
    return 0;
}
