/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the SamplingTargets request body as the sampling authority reads it: any
 * bytes must be refused with a message or answered; parsed documents must serialise
 * and parse back the same; the answer must parse as a targets response and never
 * grant more than the rule's ReservoirSize. Also reads the bytes as a targets
 * response, as an SDK would. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xray/sampling.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct xray_sampling_authority *auth;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint64_t now = 1700000000000ull;
    if (auth == NULL) {
        /* One authority for the whole run, so client tables fill and age. */
        static const char rules[] =
            "{\"version\":2,\"default\":{\"fixed_target\":3,\"rate\":0.05},\"rules\":["
            "{\"description\":\"r\",\"host\":\"*\",\"http_method\":\"*\",\"url_path\":\"*\","
            "\"fixed_target\":7,\"rate\":0.5}]}";
        struct xray_sampling_authority_config cfg = {.max_clients_per_rule = 8};
        struct xray_sampling_rules *rs = NULL;
        auth = xray_sampling_authority_create(&cfg, now);
        if (auth == NULL ||
            xray_sampling_rules_parse(rules, sizeof(rules) - 1, NULL, &rs, NULL) != 0 ||
            xray_sampling_authority_set_rules(auth, rs, now) != 0)
            abort();
        xray_sampling_rules_free(rs);
    }
    static uint64_t tick;
    uint64_t t = now + tick++ * 50; /* the authority expects time never to go back */
    struct xray_sampling_statistics docs[XRAY_SAMPLING_MAX_STATISTICS];
    size_t n;
    char err[XRAY_SAMPLING_ERR_LEN];
    int rc = xray_sampling_statistics_parse((const char *)data, size, docs,
                                            XRAY_SAMPLING_MAX_STATISTICS, &n, err);
    if (rc == 0) {
        char *body;
        size_t len;
        struct xray_sampling_statistics back[XRAY_SAMPLING_MAX_STATISTICS];
        size_t m;
        if (xray_sampling_statistics_serialize(docs, n, &body, &len) != 0 ||
            xray_sampling_statistics_parse(body, len, back, XRAY_SAMPLING_MAX_STATISTICS, &m,
                                           err) != 0 ||
            m != n)
            abort();
        for (size_t i = 0; i < n; i++)
            if (strcmp(back[i].rule_name, docs[i].rule_name) != 0 ||
                strcmp(back[i].client_id, docs[i].client_id) != 0 ||
                back[i].request_count != docs[i].request_count ||
                back[i].timestamp != docs[i].timestamp)
                abort();
        free(body);
    } else if (err[0] == '\0') {
        abort();
    }
    char *out = NULL;
    size_t out_len;
    rc = xray_sampling_authority_targets(auth, (const char *)data, size, t, &out, &out_len, err);
    if (rc == 0) {
        struct xray_sampling_target tg[XRAY_SAMPLING_MAX_STATISTICS];
        size_t nt;
        int64_t lm;
        if (xray_sampling_targets_parse(out, out_len, tg, XRAY_SAMPLING_MAX_STATISTICS, &nt, &lm,
                                        err) != 0)
            abort();
        for (size_t i = 0; i < nt; i++)
            if (tg[i].reservoir_quota > (strcmp(tg[i].rule_name, "r") == 0 ? 7 : 3))
                abort();
        free(out);
    } else if (out != NULL) {
        abort();
    }
    if (xray_sampling_authority_outstanding(auth, "r", t) > 7 ||
        xray_sampling_authority_outstanding(auth, "Default", t) > 3)
        abort();
    /* The same bytes as a targets response (the SDK side). */
    struct xray_sampling_target tg[4];
    size_t nt;
    int64_t lm;
    xray_sampling_targets_parse((const char *)data, size, tg, 4, &nt, &lm, err);
    return 0;
}
