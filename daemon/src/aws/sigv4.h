/* SPDX-License-Identifier: Apache-2.0 */
/* AWS Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/
 * create-signed-request.html), written once for every service xrayd calls. The time
 * is a parameter, nothing is sent, nothing is allocated; the only state is a few
 * signing keys each thread keeps for the day (a key is a function of the secret and
 * the scope, so the cache never changes a signature). */
#ifndef XRAYD_SIGV4_H
#define XRAYD_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "aws/credentials.h"

/* Bounds of one signing; past them sigv4_sign fails with XRAY_ETOOBIG. */
#define SIGV4_HEADERS_MAX   32    /* signed headers, host and x-amz-date included */
#define SIGV4_NAME_MAX      64    /* bytes of one header name */
#define SIGV4_CANONICAL_MAX 16384 /* canonical request; a session token is ~1-2 KB */
#define SIGV4_QUERY_MAX     4096  /* canonical query string */
#define SIGV4_PARAMS_MAX    64    /* query parameters */
#define SIGV4_SECRET_MAX    128   /* secret access key (AWS issues 40 bytes) */

struct sigv4_header {
    const char *name; /* any case; signed lower-cased */
    const char *value;
};

struct sigv4_request {
    const char *method; /* "POST" */
    const char *host;   /* the Host header as sent, e.g. "xray.us-east-1.amazonaws.com" */
    const char *path;   /* "/TraceSegments" as sent on the wire (already URI-encoded);
                           signed encoded once more except for service "s3", as AWS
                           documents; NULL or "" means "/" */
    const char *query;  /* raw query string without '?', or NULL; canonicalized
                           (decoded, re-encoded, sorted) for signing only */
    const struct sigv4_header *headers; /* further headers to sign (content-type, ...);
                                           never host, x-amz-date, x-amz-security-token
                                           or authorization: the signer owns those */
    size_t header_count;
    const void *body;
    size_t body_len;
    const char *payload_hash; /* optional: hex SHA-256 of body from sigv4_payload_hash,
                                 so a retried body is hashed once; NULL = hash body */
    const char *region;
    const char *service; /* "xray", "sts", "logs", "monitoring", "aps", ... */
    int64_t now_s;       /* epoch seconds */
};

struct sigv4_signature {
    char authorization[512]; /* value of the Authorization header */
    char amz_date[17];       /* value of X-Amz-Date, 20261121T234320Z */
    char payload_hash[65];   /* hex SHA-256 of the body */
};

/* Signs req: host, x-amz-date, the given headers and, when creds carry a session
 * token, x-amz-security-token are signed; the caller sends X-Amz-Date, the token
 * (creds->session_token, as X-Amz-Security-Token) and Authorization as returned.
 * 0, XRAY_EPARSE (a malformed or reserved header, method, path, query, region,
 * service or key id), XRAY_ETOOBIG (past a SIGV4_* bound) or -ENOMEM (OpenSSL
 * failed); err says why and never holds a secret. Any thread. */
int sigv4_sign(const struct sigv4_request *req, const struct aws_credentials *creds,
               struct sigv4_signature *out, char err[XRAY_ERR_LEN]);

/* Hex SHA-256 of body (body may be NULL when len is 0) into hex[65]. 0 or -ENOMEM. */
int sigv4_payload_hash(const void *body, size_t len, char hex[65]);

#endif
