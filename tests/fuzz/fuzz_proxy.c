/* SPDX-License-Identifier: Apache-2.0 */
/* Proxy URLs and NO_PROXY lists come from the environment and the configuration:
 * outside input. The first line is a proxy URL, the second a NO_PROXY list, every
 * further line a request URL. Checks what callers rely on: bounded, terminated,
 * printable error texts that never quote the URL; redaction that drops user
 * information; a decision that is the configured proxy or direct, never anything
 * else, direct for every URL under `*`; and, for lists of plain names, the same answer
 * as the simple suffix rule written out below. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/proxy.h"

/* Checked in every build type (assert() vanishes under NDEBUG). */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define FUZZ_LINES_MAX 16

static void fuzz_check_text(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    FUZZ_CHECK(n < cap);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f);
}

/* The reference for lists of plain names only: strip "*." or ".", and a trailing dot;
 * the host matches a name it equals or ends with after a dot. */
static bool fuzz_plain_list(const char *list)
{
    for (const char *c = list; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '-' || *c == '.' || *c == '_' || *c == ',' ||
              *c == ' '))
            return false;
    return true;
}

static bool fuzz_reference_bypass(const char *list, const char *host)
{
    size_t hn = strlen(host);
    if (hn > 0 && host[hn - 1] == '.')
        hn--; /* "example.com." is example.com */
    if (hn == 0 || hn > PROXY_HOST_MAX)
        return false;
    const char *s = list;
    while (*s) {
        while (*s == ',' || *s == ' ')
            s++;
        const char *t = s;
        while (*s && *s != ',' && *s != ' ')
            s++;
        size_t n = (size_t)(s - t);
        if (n > 0 && t[0] == '.') {
            t++;
            n--;
        }
        if (n > 0 && t[n - 1] == '.')
            n--;
        if (n == 0 || n > PROXY_HOST_MAX)
            continue;
        bool match = true;
        if (hn == n) {
            for (size_t i = 0; i < n; i++)
                match &= tolower((unsigned char)t[i]) == host[i];
        } else if (hn > n && host[hn - n - 1] == '.') {
            for (size_t i = 0; i < n; i++)
                match &= tolower((unsigned char)t[i]) == host[hn - n + i];
        } else {
            match = false;
        }
        if (match)
            return true;
    }
    return false;
}

static bool fuzz_is_address(const char *host)
{
    /* An IPv4 or IPv6 literal parses as one in proxy.c; a name never has ':' and never
     * is all digits and dots. */
    if (strchr(host, ':') != NULL)
        return true;
    for (const char *c = host; *c; c++)
        if (!isdigit((unsigned char)*c) && *c != '.')
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *lines[FUZZ_LINES_MAX];
    int n = 0;
    for (char *s = text; n < FUZZ_LINES_MAX;) {
        lines[n++] = s;
        char *nl = strchr(s, '\n');
        if (nl == NULL)
            break;
        *nl = '\0';
        s = nl + 1;
    }
    const char *url = lines[0];
    const char *no_proxy = n > 1 ? lines[1] : NULL;

    char err[XRAY_ERR_LEN];
    err[0] = '\0';
    int rc = proxy_url_check(url, err);
    FUZZ_CHECK(rc == 0 || rc == XRAY_ECONFIG);
    if (rc != 0) {
        fuzz_check_text(err, sizeof(err));
        FUZZ_CHECK(strlen(url) < 12 || strstr(err, url) == NULL);
    }

    char red[256];
    proxy_url_redact(url, red, sizeof(red));
    FUZZ_CHECK(strnlen(red, sizeof(red)) < sizeof(red));
    const char *at = strchr(url, '@');
    const char *stop =
        strpbrk(url + (strstr(url, "://") ? strstr(url, "://") - url + 3 : 0), "/?#");
    if (rc == 0 && at != NULL && (stop == NULL || at < stop))
        FUZZ_CHECK(strstr(red, "***@") != NULL);

    struct proxy_settings s = {.https_proxy = url, .http_proxy = url, .no_proxy = no_proxy};
    struct proxy *p = NULL;
    int crc = proxy_create(&s, &p, err);
    FUZZ_CHECK(crc == 0 || crc == XRAY_ECONFIG || crc == XRAY_ETOOBIG || crc == -ENOMEM);
    FUZZ_CHECK((crc == 0) == (p != NULL));
    if (crc != 0) {
        fuzz_check_text(err, sizeof(err));
        free(text);
        return 0;
    }
    char how[512];
    proxy_describe(p, how, sizeof(how));
    FUZZ_CHECK(strnlen(how, sizeof(how)) < sizeof(how));

    bool star = false;
    if (no_proxy != NULL) {
        /* `*` as a whole entry (separated by commas or white space). */
        const char *c = no_proxy;
        while ((c = strchr(c, '*')) != NULL) {
            bool left = c == no_proxy || strchr(", \t\r", c[-1]) != NULL;
            bool right = c[1] == '\0' || strchr(", \t\r", c[1]) != NULL;
            star |= left && right;
            c++;
        }
    }
    const char *configured = NULL;
    for (int i = 2; i < n; i++) {
        const char *via = proxy_for_url(p, lines[i]);
        FUZZ_CHECK(via == proxy_for_url(p, lines[i])); /* deterministic */
        if (star)
            FUZZ_CHECK(via == NULL);
        if (via != NULL) {
            if (configured == NULL)
                configured = via;
            FUZZ_CHECK(strcmp(via, configured) == 0); /* url is both proxies */
            FUZZ_CHECK(strstr(via, url) != NULL);
        }
        bool https;
        char host[PROXY_HOST_MAX + 2];
        unsigned port;
        if (proxy_url_target(lines[i], &https, host, &port) != 0) {
            FUZZ_CHECK(via == NULL);
            continue;
        }
        FUZZ_CHECK(port >= 1 && port <= 65535);
        FUZZ_CHECK(strlen(host) <= PROXY_HOST_MAX + 1 && strlen(host) > 0);
        for (const char *c = host; *c; c++)
            FUZZ_CHECK(!isupper((unsigned char)*c));
        if (no_proxy != NULL && fuzz_plain_list(no_proxy) && !fuzz_is_address(host))
            FUZZ_CHECK(proxy_bypass(p, host, port) == fuzz_reference_bypass(no_proxy, host));
    }
    proxy_destroy(p);
    free(text);
    return 0;
}
