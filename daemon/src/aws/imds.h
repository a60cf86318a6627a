/* SPDX-License-Identifier: Apache-2.0 */
/* EC2 instance metadata (IMDSv2): where it is (AWS_EC2_METADATA_SERVICE_ENDPOINT or
 * 169.254.169.254), whether it may be asked (AWS_EC2_METADATA_DISABLED), and the
 * blocking lookups done once at start-up for the region and the telemetry identity.
 * The credentials provider asks it on the loop instead (credentials_imds.c). */
#ifndef XRAYD_IMDS_H
#define XRAYD_IMDS_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define IMDS_ENDPOINT_DEFAULT "http://169.254.169.254"
#define IMDS_TOKEN_PATH       "/latest/api/token"
#define IMDS_META_PATH        "/latest/meta-data/"
#define IMDS_TTL_HEADER       "X-aws-ec2-metadata-token-ttl-seconds"
#define IMDS_TOKEN_HEADER     "X-aws-ec2-metadata-token"
#define IMDS_TOKEN_TTL_S      21600 /* 6 h, what the AWS SDKs ask for */
#define IMDS_TIMEOUT_MS       1000  /* per request: IMDS is on the host, or not there */
#define IMDS_TOKEN_MAX        1024  /* bytes of a session token (AWS issues ~56) */
#define IMDS_VALUE_MAX        1024  /* bytes of one start-up value (region, hostname, ...) */

/* True when AWS_EC2_METADATA_DISABLED is "true" (any case): IMDS is never asked. */
bool imds_disabled(void);

/* The base URL (no trailing '/') into out[cap]: AWS_EC2_METADATA_SERVICE_ENDPOINT,
 * else IMDS_ENDPOINT_DEFAULT. 0 or XRAY_ECONFIG (not an http(s) URL, or too long;
 * err names the variable). */
int imds_endpoint(char *out, size_t cap, char err[XRAY_ERR_LEN]);

/* Start-up only, before the loop runs and before any thread starts: reads
 * /latest/meta-data/<path> ("placement/region", "hostname", "instance-id") with a
 * token, blocking for at most IMDS_TIMEOUT_MS per request. The token, or the reason
 * there is none (no IMDS here: timeout, refused), is kept for the process, so a host
 * without IMDS waits once, not once per lookup. out gets the value, trimmed: printable
 * ASCII only. 0; XRAY_ECONFIG (disabled, or a bad endpoint); -ENOENT (HTTP 404: no
 * such item); XRAY_EUPSTREAM (another status); XRAY_ETIMEOUT, -ECONNREFUSED,
 * -EHOSTUNREACH, -EIO (unreachable); XRAY_ETOOBIG or XRAY_EPARSE (the value). err
 * says why in a few words. */
int imds_startup_get(const char *path, char out[IMDS_VALUE_MAX], char err[XRAY_ERR_LEN]);

/* Forgets the kept token or failure: for tests that move the endpoint. */
void imds_startup_forget(void);

#endif
