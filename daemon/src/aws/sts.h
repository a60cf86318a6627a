/* SPDX-License-Identifier: Apache-2.0 */
/* The two STS calls xrayd makes (AssumeRole for -r, AssumeRoleWithWebIdentity for
 * EKS service accounts) over the shared HTTP client, and the bounded parser of STS's
 * XML answers and error bodies, which are outside input. Nothing here logs, and no
 * error text carries a secret. Loop thread only, except the parsers (pure, any
 * thread). */
#ifndef XRAYD_STS_H
#define XRAYD_STS_H

#include <stddef.h>
#include <stdint.h>

#include "aws/credentials.h"

#define STS_VERSION          "2011-06-15" /* the STS query API version */
#define STS_SERVICE          "sts"        /* SigV4 signing name */
#define STS_RESPONSE_MAX     (64u * 1024) /* a credentials answer is ~2 KB */
#define STS_VALUE_MAX        16384        /* bytes of one element's text; tokens are ~1-2 KB */
#define STS_XML_DEPTH_MAX    16           /* STS answers nest 4 deep */
#define STS_XML_NAME_MAX     64           /* bytes of one element name */
#define STS_ERROR_TEXT_MAX   160          /* of the service's message, as in xray.h */
#define STS_ROLE_ARN_MAX     2048         /* STS API reference: RoleArn, 20-2048 characters */
#define STS_SESSION_NAME_MAX 64           /* STS API reference: RoleSessionName, 2-64 */
#define STS_WEB_TOKEN_MAX    20000 /* STS API reference: WebIdentityToken, 4-20000 characters */
#define STS_DURATION_S                                                                             \
    900 /* AssumeRole session length: the reference daemon's SDK asks for 15 minutes               \
           (stscreds.DefaultDuration), which is also STS's minimum */

struct http_client;

struct sts_request {
    struct http_client *http; /* borrowed */
    const char *endpoint;     /* base URL, no trailing '/': "https://sts.us-east-1.amazonaws.com" */
    const char *region;       /* SigV4 region (AssumeRole only) */
    const char *role_arn;
    const char *session_name;
    /* Exactly one of these two: */
    const char *web_identity_token;      /* AssumeRoleWithWebIdentity, sent unsigned */
    const struct aws_credentials *creds; /* AssumeRole, signed with these */
    uint64_t now_ms;                     /* signing time, epoch ms */
};

/* POSTs the call (the query protocol's form body) and calls done exactly once, on the
 * loop -- at once when the request cannot even start -- with rc 0 and the temporary
 * credentials (borrowed for the call; source unset), or an error: XRAY_EUPSTREAM (STS
 * answered an error: err is "HTTP 403 AccessDenied: <message cut short>"), XRAY_EPARSE
 * (an answer that is not STS's XML), XRAY_ETIMEOUT, -ECONNREFUSED, -EHOSTUNREACH,
 * -ECANCELED (the HTTP client closed), -EIO, XRAY_ECONFIG (bad request fields),
 * -ENOMEM, XRAY_EFULL. Every string of req is copied or used before this returns. */
void sts_assume_role(const struct sts_request *req,
                     void (*done)(void *data, int rc, const struct aws_credentials *creds,
                                  const char *err),
                     void *data);

/* The Credentials of a successful AssumeRole* answer (body[0..len), any bytes):
 * AccessKeyId, SecretAccessKey, SessionToken and Expiration, filled into out (owned
 * by the caller; source unset). 0; XRAY_EPARSE (not well-formed, or a DTD/CDATA, or
 * a bad expiry); XRAY_ETOOBIG (past STS_RESPONSE_MAX, STS_VALUE_MAX or a name past
 * STS_XML_NAME_MAX); XRAY_EDEPTH; XRAY_EFIELD (a field missing); -ENOMEM. err names
 * the problem, never a value. */
int sts_parse_credentials(const char *body, size_t len, struct aws_credentials *out,
                          char err[XRAY_ERR_LEN]);

/* The Code and Message of an STS error body (ErrorResponse/Error) into code[code_cap]
 * and msg[msg_cap]: printable ASCII only, the message cut at its first line and at
 * STS_ERROR_TEXT_MAX bytes; "" when absent. 0 or the parse errors above. */
int sts_parse_error(const char *body, size_t len, char *code, size_t code_cap, char *msg,
                    size_t msg_cap);

#endif
