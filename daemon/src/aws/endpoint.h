/* SPDX-License-Identifier: Apache-2.0 */
/* Where an AWS service lives: the configured endpoint, the SDKs' standard
 * AWS_ENDPOINT_URL_<SERVICE> / AWS_ENDPOINT_URL overrides, else the regional
 * endpoint; and the split of a URL into the parts an HTTP request and its signature
 * need. Pure apart from reading the environment; any thread. */
#ifndef XRAYD_ENDPOINT_H
#define XRAYD_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define ENDPOINT_URL_MAX  512 /* a resolved endpoint URL, NUL included */
#define ENDPOINT_HOST_MAX 256 /* RFC 1035 names are at most 253 bytes */

struct endpoint_url {
    char scheme[6];               /* "http" or "https", lower-cased */
    char host[ENDPOINT_HOST_MAX]; /* as written; an IPv6 literal keeps its brackets */
    unsigned port;                /* as written, else the scheme's default */
    bool port_given;
    const char *path; /* borrowed from the URL: "" or from the first '/', '?' or '#' */
};

/* Writes the base URL (no trailing '/') for service into out[cap]: configured (cfg.yaml
 * Endpoint; NULL or "" when unset; pass it for X-Ray only), else
 * AWS_ENDPOINT_URL_<env_suffix> ("XRAY", "STS", "CLOUDWATCH_LOGS", "CLOUDWATCH",
 * "AMP"), else AWS_ENDPOINT_URL, else https://<service>.<region>.amazonaws.com
 * (.amazonaws.com.cn in cn-* regions). service is the host label ("xray", "sts",
 * "logs", "monitoring", "aps-workspaces"), not always the signing name. A URL
 * without "://" gets "https://", as the reference daemon's SDK does.
 * 0; XRAY_ECONFIG (a URL that is not http(s)://host[:port][/path], or a bad service
 * or region; err names the source); XRAY_ENOREGION (nothing configured and no
 * region); XRAY_ETOOBIG (past cap). */
int endpoint_resolve(const char *service, const char *env_suffix, const char *configured,
                     const char *region, char *out, size_t cap, char err[XRAY_ERR_LEN]);

/* Splits url ("http[s]://host[:port][path]"; no user info). 0, XRAY_EPARSE or
 * XRAY_ETOOBIG (host too long). out->path points into url. */
int endpoint_split(const char *url, struct endpoint_url *out);

/* The Host header for url: host, plus ":port" unless it is the scheme's default (as
 * curl sends it). 0, XRAY_EPARSE or XRAY_ETOOBIG (past cap). */
int endpoint_host(const char *url, char *host, size_t cap);

#endif
