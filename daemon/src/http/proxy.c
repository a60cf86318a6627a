/* SPDX-License-Identifier: Apache-2.0 */
/* Proxy selection (the rules are in proxy.h): settings are checked and NO_PROXY is
 * parsed once, into a bounded array of entries; each request then costs one pass over
 * its URL and that array, with no allocation, no DNS and no environment access. It
 * does not connect to anything: http/client.c hands the answer to curl per request.
 * Proxy URLs and NO_PROXY are outside input: every byte is checked, and error texts
 * say what is wrong without quoting a URL that may carry a password. */
#include "http/proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PROXY_IGNORED_SHOWN 48 /* bytes of the first ignored entry kept for the log */
#define PROXY_FROM_ADDRESS  "-p/ProxyAddress"

enum proxy_kind { PROXY_NAME, PROXY_V4, PROXY_V6 };

struct proxy_entry {
    uint8_t kind;   /* enum proxy_kind */
    uint8_t prefix; /* leading bits that must match, for addresses */
    uint16_t port;  /* 0 = any port */
    uint8_t addr[16];
    const char *name; /* into proxy->names: lower case, no leading or trailing dot */
    size_t name_len;
};

struct proxy {
    char *address; /* -p, with a scheme; NULL when unset */
    char *https;   /* for https:// URLs when address is unset */
    char *http;    /* for http:// URLs when address is unset */
    char https_from[16], http_from[16], no_proxy_from[16];
    char *names; /* the NO_PROXY copy the entries point into */
    struct proxy_entry *entries;
    unsigned count;
    bool all; /* NO_PROXY has `*` */
    unsigned ignored;
    char first_ignored[PROXY_IGNORED_SHOWN];
};

static const char *const proxy_schemes[] = {"http",    "https",  "socks4",
                                            "socks4a", "socks5", "socks5h"};

void proxy_settings_from_env(struct proxy_settings *s, const char *address)
{
    static const char *const names[3][2] = {
        {"HTTPS_PROXY", "https_proxy"},
        {"HTTP_PROXY", "http_proxy"},
        {"NO_PROXY", "no_proxy"},
    };
    const char *val[3] = {NULL, NULL, NULL}, *from[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2 && val[i] == NULL; j++) {
            const char *v = getenv(names[i][j]);
            if (v != NULL && v[0] != '\0') {
                val[i] = v;
                from[i] = names[i][j];
            }
        }
    *s = (struct proxy_settings){
        .address = address,
        .https_proxy = val[0],
        .https_proxy_name = from[0],
        .http_proxy = val[1],
        .http_proxy_name = from[1],
        .no_proxy = val[2],
        .no_proxy_name = from[2],
    };
}

/* ---- URLs ---- */

/* Where "scheme://" ends in url: the index after "//", or 0 when there is none. A
 * scheme is a letter then letters, digits, '+', '-', '.'. */
static size_t proxy_scheme_end(const char *url)
{
    size_t i = 0;
    if (!isalpha((unsigned char)url[0]))
        return 0;
    while (isalnum((unsigned char)url[i]) || url[i] == '+' || url[i] == '-' || url[i] == '.')
        i++;
    return strncmp(url + i, "://", 3) == 0 ? i + 3 : 0;
}

static bool proxy_host_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

static int proxy_fail(char *err, const char *why)
{
    if (err != NULL)
        snprintf(err, XRAY_ERR_LEN, "%s", why);
    return XRAY_ECONFIG;
}

/* Parses digits [s, s+n) as a port 1..65535; 0 if they are not one. */
static unsigned proxy_port(const char *s, size_t n)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v <= 65535 ? v : 0;
}

int proxy_url_check(const char *url, char err[XRAY_ERR_LEN])
{
    size_t len = url != NULL ? strnlen(url, PROXY_URL_MAX + 1) : 0;
    if (len == 0)
        return proxy_fail(err, "the proxy URL is empty");
    if (len > PROXY_URL_MAX)
        return proxy_fail(err, "the proxy URL is longer than 2048 bytes");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
            return proxy_fail(err, "the proxy URL holds a space, a control or a non-ASCII "
                                   "character");
    size_t auth = proxy_scheme_end(url);
    if (auth == 0 && strstr(url, "://") != NULL)
        return proxy_fail(err, "the proxy URL's scheme is malformed");
    if (auth > 0) {
        bool known = false;
        for (size_t i = 0; i < sizeof(proxy_schemes) / sizeof(proxy_schemes[0]); i++)
            if (strlen(proxy_schemes[i]) == auth - 3 &&
                strncasecmp(url, proxy_schemes[i], auth - 3) == 0)
                known = true;
        if (!known)
            return proxy_fail(err, "the proxy URL's scheme is not http, https, socks4, "
                                   "socks4a, socks5 or socks5h");
    }
    const char *a = url + auth;
    size_t alen = strcspn(a, "/?#");
    if (a[alen] != '\0' && strcmp(a + alen, "/") != 0)
        return proxy_fail(err, "a proxy URL has no path, query or fragment: "
                               "[scheme://][user:password@]host[:port]");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (a[i] == '@')
            at = a + i;
    const char *host = at != NULL ? at + 1 : a;
    size_t hlen = alen - (size_t)(host - a);
    const char *port = NULL;
    if (hlen > 0 && host[0] == '[') {
        const char *close = memchr(host, ']', hlen);
        char v6[64];
        struct in6_addr tmp;
        size_t vlen = close != NULL ? (size_t)(close - host - 1) : 0;
        if (close == NULL || vlen == 0 || vlen >= sizeof(v6))
            return proxy_fail(err, "the proxy URL's IPv6 address is malformed");
        memcpy(v6, host + 1, vlen);
        v6[vlen] = '\0';
        if (inet_pton(AF_INET6, v6, &tmp) != 1)
            return proxy_fail(err, "the proxy URL's IPv6 address is malformed");
        size_t after = (size_t)(close + 1 - host);
        if (after < hlen && host[after] != ':')
            return proxy_fail(err, "the proxy URL has text after its IPv6 address");
        if (after < hlen)
            port = host + after;
    } else {
        const char *colon = memchr(host, ':', hlen);
        size_t name_len = colon != NULL ? (size_t)(colon - host) : hlen;
        if (name_len == 0)
            return proxy_fail(err, "the proxy URL has no host");
        if (name_len > PROXY_HOST_MAX)
            return proxy_fail(err, "the proxy URL's host name is longer than 253 bytes");
        for (size_t i = 0; i < name_len; i++)
            if (!proxy_host_char(host[i]))
                return proxy_fail(err, "the proxy URL's host name holds a character that "
                                       "is not a letter, a digit, '-', '.' or '_'");
        port = colon;
    }
    if (port != NULL && proxy_port(port + 1, hlen - (size_t)(port + 1 - host)) == 0)
        return proxy_fail(err, "the proxy URL's port is not a number from 1 to 65535");
    return 0;
}

void proxy_url_redact(const char *url, char *out, size_t cap)
{
    if (cap == 0)
        return;
    if (url == NULL) {
        out[0] = '\0';
        return;
    }
    size_t auth = proxy_scheme_end(url);
    size_t alen = strcspn(url + auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (url[auth + i] == '@')
            at = url + auth + i;
    if (at == NULL)
        snprintf(out, cap, "%s", url);
    else
        snprintf(out, cap, "%.*s***%s", (int)auth, url, at);
}

int proxy_url_target(const char *url, bool *https, char host[PROXY_HOST_MAX + 2], unsigned *port)
{
    size_t auth = url != NULL ? proxy_scheme_end(url) : 0;
    if (auth == 8 && strncasecmp(url, "https", 5) == 0)
        *https = true;
    else if (auth == 7 && strncasecmp(url, "http", 4) == 0)
        *https = false;
    else
        return XRAY_EPARSE;
    const char *a = url + auth;
    size_t alen = strcspn(a, "/?#");
    for (size_t i = alen; i-- > 0;)
        if (a[i] == '@') {
            alen -= i + 1;
            a += i + 1;
            break;
        }
    const char *h = a;
    size_t hlen;
    const char *rest;
    if (alen > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', alen);
        if (close == NULL)
            return XRAY_EPARSE;
        h = a + 1;
        hlen = (size_t)(close - h);
        rest = close + 1;
    } else {
        const char *colon = memchr(a, ':', alen);
        hlen = colon != NULL ? (size_t)(colon - a) : alen;
        rest = a + hlen;
    }
    size_t rlen = alen - (size_t)(rest - a);
    if (rlen > 0 && rest[0] != ':')
        return XRAY_EPARSE;
    if (hlen == 0 || hlen > PROXY_HOST_MAX + 1) /* a trailing dot may come on top */
        return XRAY_EPARSE;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c <= 0x20 || c >= 0x7f)
            return XRAY_EPARSE;
        host[i] = (char)tolower(c);
    }
    host[hlen] = '\0';
    *port = *https ? 443 : 80;
    if (rlen > 1 && (*port = proxy_port(rest + 1, rlen - 1)) == 0)
        return XRAY_EPARSE;
    return 0;
}

/* ---- NO_PROXY ---- */

/* Parses an address with an optional "/prefix"; tok is left as it was. */
static bool proxy_entry_addr(char *tok, struct proxy_entry *e)
{
    char *slash = strchr(tok, '/');
    if (slash != NULL)
        *slash = '\0';
    bool v4 = inet_pton(AF_INET, tok, e->addr) == 1;
    bool v6 = !v4 && inet_pton(AF_INET6, tok, e->addr) == 1;
    if (slash != NULL)
        *slash = '/';
    if (!v4 && !v6)
        return false;
    e->kind = v4 ? PROXY_V4 : PROXY_V6;
    unsigned max = e->kind == PROXY_V4 ? 32 : 128;
    e->prefix = (uint8_t)max;
    if (slash != NULL) {
        const char *d = slash + 1;
        size_t n = strlen(d);
        unsigned v = 0;
        if (n == 0 || n > 3)
            return false;
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)d[i]))
                return false;
            v = v * 10 + (unsigned)(d[i] - '0');
        }
        if (v > max)
            return false;
        e->prefix = (uint8_t)v;
    }
    return true;
}

/* Parses one lower-cased, non-empty entry other than `*` (tok is changed). */
static bool proxy_entry_parse(char *tok, struct proxy_entry *e)
{
    memset(e, 0, sizeof(*e));
    char *host = tok;
    char *port = NULL;
    if (tok[0] == '[') {
        char *close = strchr(tok, ']');
        if (close == NULL)
            return false;
        *close = '\0';
        host = tok + 1;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] == '/') /* "[fd00::]/8" */
            memmove(close, close + 1, strlen(close + 1) + 1);
        else if (close[1] != '\0')
            return false;
    } else {
        char *colon = strchr(tok, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) { /* one colon: host:port */
            *colon = '\0';
            port = colon + 1;
        }
    }
    if (port != NULL && port[0] != '\0' &&
        (e->port = (uint16_t)proxy_port(port, strlen(port))) == 0)
        return false;
    if (proxy_entry_addr(host, e))
        return true;
    if (strchr(host, '/') != NULL || strchr(host, ':') != NULL)
        return false; /* a malformed address, not a name */
    if (strncmp(host, "*.", 2) == 0)
        host += 2;
    else if (host[0] == '.')
        host++;
    size_t n = strlen(host);
    if (n > 0 && host[n - 1] == '.')
        host[--n] = '\0';
    if (n == 0 || n > PROXY_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!proxy_host_char(host[i]))
            return false;
    e->kind = PROXY_NAME;
    e->name = host;
    e->name_len = n;
    return true;
}

static bool proxy_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int proxy_no_proxy_parse(struct proxy *p, const char *list, const char *from, char *err)
{
    size_t len = strnlen(list, PROXY_NO_PROXY_MAX + 1);
    if (len > PROXY_NO_PROXY_MAX) {
        snprintf(err, XRAY_ERR_LEN, "%s is longer than %u bytes", from, PROXY_NO_PROXY_MAX);
        return XRAY_ETOOBIG;
    }
    unsigned items = 0;
    for (size_t i = 0; i < len; i++)
        if (!proxy_sep(list[i]) && (i == 0 || proxy_sep(list[i - 1])))
            items++;
    if (items > PROXY_NO_PROXY_ITEMS) {
        snprintf(err, XRAY_ERR_LEN, "%s has more than %u entries", from, PROXY_NO_PROXY_ITEMS);
        return XRAY_ETOOBIG;
    }
    if ((p->names = malloc(len + 1)) == NULL ||
        (items > 0 && (p->entries = calloc(items, sizeof(*p->entries))) == NULL))
        return -ENOMEM;
    for (size_t i = 0; i < len; i++)
        p->names[i] = (char)tolower((unsigned char)list[i]);
    p->names[len] = '\0';
    char *s = p->names;
    while (*s != '\0') {
        while (proxy_sep(*s))
            *s++ = '\0';
        if (*s == '\0')
            break;
        char *tok = s;
        while (*s != '\0' && !proxy_sep(*s))
            s++;
        if (*s != '\0')
            *s++ = '\0';
        if (strcmp(tok, "*") == 0) {
            p->all = true;
            continue;
        }
        char shown[PROXY_IGNORED_SHOWN];
        size_t k;
        for (k = 0; tok[k] != '\0' && k + 1 < sizeof(shown); k++)
            shown[k] = (unsigned char)tok[k] > 0x20 && (unsigned char)tok[k] < 0x7f ? tok[k] : '?';
        shown[k] = '\0';
        if (proxy_entry_parse(tok, &p->entries[p->count])) {
            p->count++;
        } else if (p->ignored++ == 0) {
            memcpy(p->first_ignored, shown, k + 1);
        }
    }
    snprintf(p->no_proxy_from, sizeof(p->no_proxy_from), "%s", from);
    return 0;
}

/* ---- the whole ---- */

/* Checks url and stores a copy with a scheme in *dst; err names the setting. */
static int proxy_take_url(const char *url, const char *from, char **dst, char *err)
{
    char why[XRAY_ERR_LEN];
    if (proxy_url_check(url, why) != 0) {
        snprintf(err, XRAY_ERR_LEN, "%.20s: %.200s", from, why);
        return XRAY_ECONFIG;
    }
    size_t n = strlen(url);
    bool scheme = proxy_scheme_end(url) > 0;
    if ((*dst = malloc(n + sizeof("http://"))) == NULL)
        return -ENOMEM;
    snprintf(*dst, n + sizeof("http://"), "%s%s", scheme ? "" : "http://", url);
    return 0;
}

int proxy_create(const struct proxy_settings *s, struct proxy **out, char err[XRAY_ERR_LEN])
{
    char scratch[XRAY_ERR_LEN];
    if (err == NULL)
        err = scratch;
    err[0] = '\0';
    *out = NULL;
    struct proxy *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    int rc = 0;
    const char *https_from = s->https_proxy_name ? s->https_proxy_name : "HTTPS_PROXY";
    const char *http_from = s->http_proxy_name ? s->http_proxy_name : "HTTP_PROXY";
    if (s->address != NULL && s->address[0] != '\0') {
        /* -p wins: the environment's proxies are not used, so not checked either. */
        rc = proxy_take_url(s->address, PROXY_FROM_ADDRESS, &p->address, err);
    } else {
        if (s->https_proxy != NULL && s->https_proxy[0] != '\0')
            rc = proxy_take_url(s->https_proxy, https_from, &p->https, err);
        if (rc == 0 && s->http_proxy != NULL && s->http_proxy[0] != '\0')
            rc = proxy_take_url(s->http_proxy, http_from, &p->http, err);
    }
    snprintf(p->https_from, sizeof(p->https_from), "%s", https_from);
    snprintf(p->http_from, sizeof(p->http_from), "%s", http_from);
    if (rc == 0 && s->no_proxy != NULL && s->no_proxy[0] != '\0')
        rc = proxy_no_proxy_parse(p, s->no_proxy, s->no_proxy_name ? s->no_proxy_name : "NO_PROXY",
                                  err);
    if (rc != 0) {
        if (rc == -ENOMEM && err[0] == '\0')
            snprintf(err, XRAY_ERR_LEN, "proxy settings: out of memory");
        proxy_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

void proxy_destroy(struct proxy *p)
{
    if (p == NULL)
        return;
    free(p->address);
    free(p->https);
    free(p->http);
    free(p->names);
    free(p->entries);
    free(p);
}

static bool proxy_prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool proxy_bypass(const struct proxy *p, const char *host, unsigned port)
{
    if (p->all)
        return true;
    if (host == NULL)
        return false;
    char h[PROXY_HOST_MAX + 1];
    size_t n = strnlen(host, sizeof(h) + 2);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n > 0 && host[n - 1] == '.')
        n--;
    if (n == 0 || n > PROXY_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        h[i] = (char)tolower((unsigned char)host[i]);
    h[n] = '\0';
    uint8_t addr[16];
    int kind = PROXY_NAME;
    if (inet_pton(AF_INET, h, addr) == 1)
        kind = PROXY_V4;
    else if (inet_pton(AF_INET6, h, addr) == 1)
        kind = PROXY_V6;
    static const uint8_t ll4[4] = {169, 254, 0, 0}, ll6[16] = {0xfe, 0x80};
    if ((kind == PROXY_V4 && proxy_prefix_match(addr, ll4, 16)) ||
        (kind == PROXY_V6 && proxy_prefix_match(addr, ll6, 10)))
        return true; /* link-local: only reachable from here */
    for (unsigned i = 0; i < p->count; i++) {
        const struct proxy_entry *e = &p->entries[i];
        if (e->kind != kind || (e->port != 0 && e->port != port))
            continue;
        if (kind != PROXY_NAME) {
            if (proxy_prefix_match(addr, e->addr, e->prefix))
                return true;
        } else if (n == e->name_len ? memcmp(h, e->name, n) == 0
                                    : n > e->name_len && h[n - e->name_len - 1] == '.' &&
                                          memcmp(h + n - e->name_len, e->name, e->name_len) == 0) {
            return true;
        }
    }
    return false;
}

const char *proxy_for_url(const struct proxy *p, const char *url)
{
    if (p == NULL || (p->address == NULL && p->https == NULL && p->http == NULL))
        return NULL;
    bool https;
    char host[PROXY_HOST_MAX + 2];
    unsigned port;
    if (proxy_url_target(url, &https, host, &port) != 0)
        return NULL;
    const char *proxy = p->address != NULL ? p->address : https ? p->https : p->http;
    if (proxy == NULL || proxy_bypass(p, host, port))
        return NULL;
    return proxy;
}

bool proxy_enabled(const struct proxy *p)
{
    return p != NULL && !p->all && (p->address != NULL || p->https != NULL || p->http != NULL);
}

void proxy_describe(const struct proxy *p, char *out, size_t cap)
{
    char a[160], b[160];
    int n;
    if (cap == 0)
        return;
    if (p->address != NULL) {
        proxy_url_redact(p->address, a, sizeof(a));
        n = snprintf(out, cap, "every URL via %s %s", PROXY_FROM_ADDRESS, a);
    } else if (p->https != NULL || p->http != NULL) {
        snprintf(a, sizeof(a), "direct");
        snprintf(b, sizeof(b), "direct");
        if (p->https != NULL) {
            n = snprintf(a, sizeof(a), "via %s ", p->https_from);
            proxy_url_redact(p->https, a + n, sizeof(a) - (size_t)n);
        }
        if (p->http != NULL) {
            n = snprintf(b, sizeof(b), "via %s ", p->http_from);
            proxy_url_redact(p->http, b + n, sizeof(b) - (size_t)n);
        }
        n = snprintf(out, cap, "https:// %s, http:// %s", a, b);
    } else {
        n = snprintf(out, cap, "none");
    }
    if (n < 0 || (size_t)n >= cap || p->no_proxy_from[0] == '\0')
        return;
    if (p->all)
        snprintf(out + n, cap - (size_t)n, "; %s: * (every URL direct)", p->no_proxy_from);
    else if (p->ignored > 0)
        snprintf(out + n, cap - (size_t)n, "; %s: %u entries, %u ignored (first: %s)",
                 p->no_proxy_from, p->count, p->ignored, p->first_ignored);
    else
        snprintf(out + n, cap - (size_t)n, "; %s: %u entries", p->no_proxy_from, p->count);
}
