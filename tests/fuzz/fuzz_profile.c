/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the AWS shared-file parser: any bytes must parse or be refused within the
 * bounds, and the profile lookups (both file kinds, default and a named profile) must
 * never read past the input or leak what they copied. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aws/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int visit(void *ctx, const char *section, const char *key, const char *value)
{
    size_t *total = ctx;
    /* Touch every byte handed out, so a bad pointer shows under ASan. */
    *total += strlen(section);
    if (key != NULL)
        *total += strlen(key) + strlen(value);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[XRAY_ERR_LEN];
    size_t total = 0;
    profile_parse((const char *)data, size, visit, &total, err);

    static const char *const profiles[] = {"default", "work"};
    for (int kind = PROFILE_CREDENTIALS; kind <= PROFILE_CONFIG; kind++) {
        for (size_t p = 0; p < 2; p++) {
            struct profile_values v = {
                .keys = {"aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                         "region", NULL},
            };
            if (profile_find((const char *)data, size, (enum profile_file)kind, profiles[p], &v,
                             err) == 0) {
                for (int i = 0; i < 4; i++)
                    total += v.values[i] != NULL ? strlen(v.values[i]) : 0;
            }
            profile_values_free(&v);
        }
    }
    return total == (size_t)-1;
}
