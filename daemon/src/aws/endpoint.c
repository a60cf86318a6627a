/* SPDX-License-Identifier: Apache-2.0 */
/* Endpoint resolution and URL splitting. URLs come from the config file and the
 * environment, so they are checked strictly: http or https, a host of hostname
 * characters or a bracketed IPv6 literal, a numeric port, no user info. */
#include "aws/endpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/region.h"

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

static bool ipv6_char(char c)
{
    /* '%' starts a zone id ("%25eth0" in a URL, RFC 6874). */
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == ':' ||
           c == '.' || c == '%';
}

int endpoint_split(const char *url, struct endpoint_url *out)
{
    memset(out, 0, sizeof(*out));
    const char *p;
    if (strncasecmp(url, "https://", 8) == 0) {
        strcpy(out->scheme, "https");
        out->port = 443;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        strcpy(out->scheme, "http");
        out->port = 80;
        p = url + 7;
    } else {
        return XRAY_EPARSE;
    }
    const char *h = p;
    if (*p == '[') {
        p++;
        while (ipv6_char(*p))
            p++;
        if (*p != ']' || p == h + 1)
            return XRAY_EPARSE;
        p++;
    } else {
        while (host_char(*p))
            p++;
        if (p == h)
            return XRAY_EPARSE;
    }
    if ((size_t)(p - h) >= sizeof(out->host))
        return XRAY_ETOOBIG;
    memcpy(out->host, h, (size_t)(p - h));
    out->host[p - h] = '\0';
    if (*p == ':') {
        unsigned long port = 0;
        const char *d = ++p;
        while (*p >= '0' && *p <= '9' && p - d < 6)
            port = port * 10 + (unsigned long)(*p++ - '0');
        if (p == d || port == 0 || port > 65535)
            return XRAY_EPARSE;
        out->port = (unsigned)port;
        out->port_given = true;
    }
    /* Anything else here ('@' of user info, a stray character) is not a URL we use. */
    if (*p != '\0' && *p != '/' && *p != '?' && *p != '#')
        return XRAY_EPARSE;
    for (const char *q = p; *q != '\0'; q++)
        if ((unsigned char)*q <= ' ' || (unsigned char)*q == 0x7f)
            return XRAY_EPARSE;
    out->path = p;
    return 0;
}

int endpoint_host(const char *url, char *host, size_t cap)
{
    struct endpoint_url u;
    int rc = endpoint_split(url, &u);
    if (rc != 0)
        return rc;
    bool is_default = (u.port == 443 && strcmp(u.scheme, "https") == 0) ||
                      (u.port == 80 && strcmp(u.scheme, "http") == 0);
    int n = is_default ? snprintf(host, cap, "%s", u.host)
                       : snprintf(host, cap, "%s:%u", u.host, u.port);
    return n < 0 || (size_t)n >= cap ? XRAY_ETOOBIG : 0;
}

/* Copies a configured URL to out, with "https://" when it has no scheme and without
 * trailing slashes, after checking it splits. */
static int normalize(const char *url, const char *from, char *out, size_t cap, char *err)
{
    const char *scheme = strstr(url, "://") != NULL ? "" : "https://";
    int n = snprintf(out, cap, "%s%s", scheme, url);
    if (n < 0 || (size_t)n >= cap) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "endpoint from %s longer than %zu bytes", from, cap - 1);
        return XRAY_ETOOBIG;
    }
    struct endpoint_url u;
    if (endpoint_split(out, &u) != 0) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "endpoint from %s is not http(s)://host[:port][/path]",
                     from);
        out[0] = '\0';
        return XRAY_ECONFIG;
    }
    size_t len = (size_t)n;
    size_t path_start = (size_t)(u.path - out);
    while (len > path_start && out[len - 1] == '/')
        out[--len] = '\0';
    return 0;
}

/* DNS suffixes of the AWS partitions outside the commercial one. */
static const char *dns_suffix(const char *region)
{
    if (strncmp(region, "cn-", 3) == 0)
        return "amazonaws.com.cn";
    if (strncmp(region, "us-isob-", 8) == 0)
        return "sc2s.sgov.gov";
    if (strncmp(region, "us-iso-", 7) == 0)
        return "c2s.ic.gov";
    return "amazonaws.com";
}

int endpoint_resolve(const char *service, const char *env_suffix, const char *configured,
                     const char *region, char *out, size_t cap, char err[XRAY_ERR_LEN])
{
    if (cap == 0)
        return XRAY_ETOOBIG;
    out[0] = '\0';
    if (service == NULL || !region_valid(service)) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "service name missing or malformed");
        return XRAY_ECONFIG;
    }
    if (configured != NULL && configured[0] != '\0')
        return normalize(configured, "the configured Endpoint", out, cap, err);

    char var[64];
    if (env_suffix != NULL && env_suffix[0] != '\0') {
        int n = snprintf(var, sizeof(var), "AWS_ENDPOINT_URL_%s", env_suffix);
        const char *v = n > 0 && (size_t)n < sizeof(var) ? getenv(var) : NULL;
        if (v != NULL && v[0] != '\0')
            return normalize(v, var, out, cap, err);
    }
    const char *v = getenv("AWS_ENDPOINT_URL");
    if (v != NULL && v[0] != '\0')
        return normalize(v, "AWS_ENDPOINT_URL", out, cap, err);

    if (region == NULL || region[0] == '\0') {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "no endpoint configured for %s and no region", service);
        return XRAY_ENOREGION;
    }
    if (!region_valid(region)) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "region is not a region name");
        return XRAY_ECONFIG;
    }
    int n = snprintf(out, cap, "https://%s.%s.%s", service, region, dns_suffix(region));
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "endpoint longer than %zu bytes", cap - 1);
        return XRAY_ETOOBIG;
    }
    return 0;
}
