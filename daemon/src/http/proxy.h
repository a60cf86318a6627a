/* SPDX-License-Identifier: Apache-2.0 */
/* Which proxy, if any, an outbound request goes through. Decided per request URL from
 * settings read once at start-up:
 *   1. -p / ProxyAddress, when set, is the proxy for every URL;
 *   2. else HTTPS_PROXY (then https_proxy) for https:// URLs and HTTP_PROXY (then
 *      http_proxy) for http:// URLs — upper case first, as Go's net/http (and so the
 *      reference daemon) reads them; the first non-empty one counts. ALL_PROXY is not
 *      read;
 *   3. NO_PROXY (then no_proxy) lists hosts reached directly, whichever proxy was
 *      chosen, -p included (as curl does).
 * NO_PROXY is a list separated by commas or white space; empty entries are skipped.
 * An entry is `*` (no proxy for anything), a host name, a domain ("example.com",
 * ".example.com" and "*.example.com" all match example.com and every name under it),
 * an IPv4 or IPv6 address ("::1", "[::1]"), or a CIDR block ("10.0.0.0/8",
 * "fd00::/8"). Any entry may carry a port ("example.com:8443", "[::1]:443"): it then
 * matches requests to that port only. Names match without regard to case and to a
 * trailing dot. Addresses match address hosts only — no name is ever resolved, so
 * "localhost" does not match 127.0.0.1 — and loopback is not exempt by itself (list
 * 127.0.0.1 to reach a local endpoint directly). Link-local addresses (169.254.0.0/16,
 * fe80::/10: instance metadata, container credentials) always go direct: no proxy
 * can reach this host's link. Entries that are none of these are
 * ignored (counted, for a start-up warning): NO_PROXY is shared with other programs.
 * A proxy URL is [scheme://][user[:password]@]host[:port][/], scheme http (the
 * default), https, socks4, socks4a, socks5 or socks5h; anything else is an error at
 * start-up, never a silent direct connection. Proxy credentials never appear in
 * errors or logs. */
#ifndef XRAYD_HTTP_PROXY_H
#define XRAYD_HTTP_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define PROXY_URL_MAX        2048u  /* bytes of a proxy URL */
#define PROXY_NO_PROXY_MAX   65536u /* bytes of a NO_PROXY list */
#define PROXY_NO_PROXY_ITEMS 1024u  /* entries of a NO_PROXY list */
#define PROXY_HOST_MAX       253u   /* a DNS name (RFC 1035, 2.3.4) */

/* Raw settings, every string borrowed; NULL or "" = unset. The *_name members say
 * which setting a value came from, for errors and the start-up log. */
struct proxy_settings {
    const char *address; /* -p / ProxyAddress */
    const char *https_proxy;
    const char *https_proxy_name; /* "HTTPS_PROXY" or "https_proxy" */
    const char *http_proxy;
    const char *http_proxy_name; /* "HTTP_PROXY" or "http_proxy" */
    const char *no_proxy;
    const char *no_proxy_name; /* "NO_PROXY" or "no_proxy" */
};

/* Fills s from the environment (the first non-empty of each pair above) with address
 * as the -p value (borrowed). The strings point into the environment: use them before
 * it changes. Call from main only. */
void proxy_settings_from_env(struct proxy_settings *s, const char *address);

struct proxy;

/* Parses and checks the settings into *out (owned: proxy_destroy). Returns 0; or
 * XRAY_ECONFIG with err naming the setting and what is wrong with its URL (never the
 * URL's credentials), or XRAY_ETOOBIG (a NO_PROXY list past its bounds, named in
 * err), or -ENOMEM; *out is then NULL. With nothing set, *out says "direct" for every
 * URL. Pure apart from allocation. */
int proxy_create(const struct proxy_settings *s, struct proxy **out, char err[XRAY_ERR_LEN]);
void proxy_destroy(struct proxy *p); /* NULL is fine */

/* The proxy URL a request to url goes through, or NULL to connect directly (also for
 * a URL that is not http(s)://host...). Borrowed from p. Pure. */
const char *proxy_for_url(const struct proxy *p, const char *url);

/* Whether NO_PROXY, or a link-local address, sends a request to host:port directly. host as in a
 * URL, IPv6 with or without brackets; any case. Pure. */
bool proxy_bypass(const struct proxy *p, const char *host, unsigned port);

/* True when some URL may go through a proxy (a proxy is set and NO_PROXY is not *). */
bool proxy_enabled(const struct proxy *p);

/* The settings in one line for the start-up log, with a proxy URL's user information
 * shown as "***": "https:// via HTTPS_PROXY <url>, http:// direct; NO_PROXY: 3
 * entries, 1 ignored (first: foo/bar)". */
void proxy_describe(const struct proxy *p, char *out, size_t cap);

/* Checks one proxy URL (outside input: any bytes, NUL-terminated). 0, or XRAY_ECONFIG
 * with err (may be NULL) saying what is wrong — never quoting the URL. Pure. */
int proxy_url_check(const char *url, char err[XRAY_ERR_LEN]);

/* Writes url with its user information replaced by "***" into out[cap] (truncated,
 * always NUL-terminated when cap > 0). Pure. */
void proxy_url_redact(const char *url, char *out, size_t cap);

/* Splits a request URL "http(s)://[user@]host[:port][/...]" into its host (lower
 * case, IPv6 without brackets, a trailing dot kept: proxy_bypass ignores it) and port
 * (80 or 443 when absent). 0, or XRAY_EPARSE. Pure. */
int proxy_url_target(const char *url, bool *https, char host[PROXY_HOST_MAX + 2], unsigned *port);

#endif
