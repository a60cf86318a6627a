/* SPDX-License-Identifier: Apache-2.0 */
/* libxray's HTTP response parser (sdk-c/src/http.c: what the daemon's sampling API
 * and the metadata services answer) and its URL splitter, on arbitrary bytes in a
 * buffer of their exact size. Beyond not crashing: an accepted response has a
 * three-digit status and a body within the caller's bound, NUL-terminated; an
 * accepted URL has a host, a port and a path starting with '/'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sdk-c/src/http.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct xray__http_request req = {.max_body = 4096};
    struct xray__http_response resp;
    memset(&resp, 0, sizeof(resp));
    if (http_parse(buf, size, &req, &resp) == 0) {
        check(resp.status >= 0 && resp.status <= 999);
        check(resp.len <= req.max_body && resp.body != NULL && resp.body[resp.len] == '\0');
        xray__http_response_free(&resp);
    }
    free(buf);

    char *url = malloc(size + 1);
    if (url == NULL)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    char host[XRAY__HTTP_HOST_MAX], path[XRAY__HTTP_PATH_MAX];
    uint16_t port = 0;
    if (xray__http_parse_url(url, host, &port, path) == 0)
        check(host[0] != '\0' && port != 0 && path[0] == '/');
    free(url);
    return 0;
}
