/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer harness for cfg.yaml: each input is read as a -c file (strict) and as an
 * auto-discovered one, then the address rules run over the result. Checks that a
 * refused file leaves the defaults untouched and that every string stays non-NULL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_yaml.h"
#include "config/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (sink == NULL)
        sink = fopen("/dev/null", "w");
    for (int strict = 0; strict < 2; strict++) {
        struct config cfg;
        char err[XRAY_ERR_LEN];
        memset(&cfg, 0, sizeof(cfg));
        if (options_defaults(&cfg) != 0)
            abort();
        int rc = config_yaml_parse(&cfg, "cfg.yaml", (const char *)data, size, strict, sink, err);
        if (rc != 0 && (!strict || strcmp(cfg.region, "") != 0 ||
                        strcmp(cfg.udp_address, "127.0.0.1:2000") != 0 || cfg.concurrency != 8))
            abort();
        if (cfg.udp_address == NULL || cfg.log_level == NULL || cfg.upstream == NULL)
            abort();
        if (config_api_address(&cfg) == NULL || config_metrics_address(&cfg) == NULL)
            abort();
        config_destroy(&cfg);
    }
    return 0;
}
