/* SPDX-License-Identifier: Apache-2.0 */
/* AWS Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/
 * create-signed-request.html), written once for every service xrayd calls. Pure: the
 * time is a parameter, nothing is sent. */
#ifndef XRAYD_SIGV4_H
#define XRAYD_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "aws/credentials.h"

struct sigv4_header {
    const char *name; /* any case; signed lower-cased */
    const char *value;
};

struct sigv4_request {
    const char *method;  /* "POST" */
    const char *host;    /* the Host header as sent, e.g. "xray.us-east-1.amazonaws.com" */
    const char *path;    /* "/TraceSegments" (already URI-encoded) */
    const char *query;   /* raw query string without '?', or NULL */
    const struct sigv4_header *headers; /* further headers to sign (content-type, ...) */
    size_t header_count;
    const void *body;
    size_t body_len;
    const char *region;
    const char *service; /* "xray", "sts", "logs", "monitoring", ... */
    int64_t now_s;       /* epoch seconds */
};

struct sigv4_signature {
    char authorization[512]; /* value of the Authorization header */
    char amz_date[17];       /* value of X-Amz-Date, 20261121T234320Z */
    char payload_hash[65];   /* hex SHA-256 of the body */
};

/* Signs req: host, x-amz-date, the given headers and, when creds carry a session
 * token, x-amz-security-token are signed; the caller sends X-Amz-Date, the token
 * and Authorization as returned. 0 or XRAY_EPARSE/XRAY_ETOOBIG (err says why). */
int sigv4_sign(const struct sigv4_request *req, const struct aws_credentials *creds,
               struct sigv4_signature *out, char err[XRAY_ERR_LEN]);

#endif
