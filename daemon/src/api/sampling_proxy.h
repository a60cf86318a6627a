/* SPDX-License-Identifier: Apache-2.0 */
/* The TCP side's signing proxy (daemon-compat.md, "TCP side"): with the aws upstream, an
 * SDK's unsigned POST on an allow-listed path (GetSamplingRules, SamplingTargets, ...) is
 * signed and forwarded to X-Ray, and X-Ray's answer goes back unchanged; anything else
 * on the TCP role is refused with 403 naming the setting. Where xrayd is the sampling
 * authority (a rules file, or the local upstream: spec/sampling.md, "Who answers"),
 * api/sampling_authority.h answers the sampling paths instead, registered before the
 * proxy. Loop thread only. */
#ifndef XRAYD_API_SAMPLING_PROXY_H
#define XRAYD_API_SAMPLING_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "upstream/xray.h"

struct http_server;

/* The X-Ray sampling APIs: GetSamplingRules, GetSamplingTargets and
 * GetSamplingStatisticSummaries, each a POST on these paths. */
#define SAMPLING_PROXY_DEFAULT_PATHS                                                               \
    "/GetSamplingRules,/SamplingTargets,/SamplingStatisticSummaries"
#define SAMPLING_PROXY_MAX_PATHS 16
/* Forwards waiting for X-Ray at once; beyond, 503 with Retry-After. Keeps SDK pollers
 * from taking the HTTP client's request slots (HTTP_CLIENT_MAX_PENDING) from uploads. */
#define SAMPLING_PROXY_MAX_IN_FLIGHT 64

/* A parsed allow-list: exact paths, each "/..." of letters, digits and "/_.~-". */
struct sampling_proxy_paths {
    char path[SAMPLING_PROXY_MAX_PATHS][XRAY_PATH_MAX];
    size_t count;
};

struct sampling_proxy_stats {
    uint64_t forwarded;       /* handed to X-Ray, signed */
    uint64_t answered;        /* X-Ray's reply (any status) relayed to the client */
    uint64_t forbidden;       /* 403: a path not on the list, or not a POST */
    uint64_t bad_request;     /* 400/415: a query string, a Content-Encoding */
    uint64_t no_credentials;  /* 503: nothing to sign with */
    uint64_t busy;            /* 503: SAMPLING_PROXY_MAX_IN_FLIGHT, or the client was full */
    uint64_t upstream_failed; /* 502: X-Ray unreachable, or its reply over the size cap */
    uint64_t timeouts;        /* 504 */
    uint64_t in_flight;       /* now */
};

struct sampling_proxy;

/* Parses a comma-separated allow-list ("/GetSamplingRules, /SamplingTargets,"): blanks
 * around entries and empty entries are ignored, duplicates kept once. NULL or a blank
 * string means SAMPLING_PROXY_DEFAULT_PATHS. Returns 0, or XRAY_ECONFIG with err
 * (optional) naming the bad entry: no leading '/', a character outside letters, digits
 * and "/_.~-", XRAY_PATH_MAX bytes or more, more than SAMPLING_PROXY_MAX_PATHS paths, or
 * a list with separators and no path. Pure. */
int sampling_proxy_parse_paths(const char *list, struct sampling_proxy_paths *out,
                               char err[XRAY_ERR_LEN]);

/* With the aws upstream: adds the proxy to s as the catch-all route of every path on
 * HTTP_ROLE_TCP. Register it after every other route: the server takes the first route
 * that matches, so a route added later is never reached on a listener with the TCP
 * role. x is borrowed and must outlive the server (close the server, then the HTTP
 * client, then destroy x); the proxy's memory belongs to s. *out (optional) receives
 * the proxy for sampling_proxy_get_stats(). Returns 0, XRAY_ECONFIG (a bad allow_paths,
 * see above), -EINVAL, -ENOMEM, or the error of http_server_route(); err (optional)
 * says why, starting with the setting's name when the list is at fault. */
int sampling_proxy_register(struct http_server *s, struct xray *x, const char *allow_paths,
                            struct sampling_proxy **out, char err[XRAY_ERR_LEN]);

/* For a daemon with neither X-Ray nor the sampling authority behind its TCP side: POST
 * on the three sampling paths, TCP role, answers 503 with a JSON body saying xrayd has
 * no sampling upstream (SDKs then keep their local rules). Other paths keep the server's
 * 404. xrayd itself always has one of the two: with the local upstream the authority
 * answers (main.c registers it instead). 0 or the error of http_server_route(). */
int sampling_proxy_register_local(struct http_server *s);

/* Copies p's counters into out. Loop thread, like everything here. */
void sampling_proxy_get_stats(const struct sampling_proxy *p, struct sampling_proxy_stats *out);

#endif
