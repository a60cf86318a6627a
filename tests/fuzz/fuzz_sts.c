/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the STS answer parser: any bytes must parse or be refused within the bounds
 * (size, depth, name and value lengths), as a credentials answer and as an error body,
 * and whatever it hands out must be a proper string it owns. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aws/sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[XRAY_ERR_LEN];
    size_t total = 0;
    struct aws_credentials c;
    if (sts_parse_credentials((const char *)data, size, &c, err) == 0) {
        /* Touch every byte handed out, so a bad pointer shows under ASan. */
        total += strlen(c.access_key_id) + strlen(c.secret_access_key);
        total += c.session_token != NULL ? strlen(c.session_token) : 0;
        aws_credentials_clear(&c);
    } else {
        total += strlen(err);
    }
    char code[96], msg[STS_ERROR_TEXT_MAX + 1];
    sts_parse_error((const char *)data, size, code, sizeof(code), msg, sizeof(msg));
    total += strlen(code) + strlen(msg);
    return total == (size_t)-1;
}
