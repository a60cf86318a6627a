/* SPDX-License-Identifier: Apache-2.0 */
/* STS over the query protocol: a form-encoded POST (signed for AssumeRole, unsigned
 * for AssumeRoleWithWebIdentity) and an XML answer read by a small walker that keeps
 * a bounded stack of element names and hands each leaf element's text to a visitor.
 * It accepts the XML STS writes (declaration, comments, attributes, the five named
 * entities and character references) and refuses DTDs and CDATA outright, so no
 * entity can expand. The request body, which may hold a web identity token, is wiped
 * when the call ends. */
#include "aws/sts.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aws/endpoint.h"
#include "aws/sigv4.h"
#include "buf.h"
#include "http/client.h"

#define STS_CONTENT_TYPE "application/x-www-form-urlencoded; charset=utf-8"

/* ---- the XML walker ---------------------------------------------------------------- */

static bool xml_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool xml_name_char(char c)
{
    return !xml_space(c) && c != '/' && c != '>' && c != '<' && c != '=' && c != '"' && c != '\'' &&
           c != '\0';
}

/* Finds needle in [p, end); NULL if absent. */
static const char *xml_find(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    for (; p + n <= end; p++)
        if (memcmp(p, needle, n) == 0)
            return p;
    return NULL;
}

static const char *xml_local(const char *name)
{
    const char *colon = strrchr(name, ':');
    return colon != NULL ? colon + 1 : name;
}

/* Reads an element name at *pp into out; advances *pp past it. */
static int xml_name(const char **pp, const char *end, char out[STS_XML_NAME_MAX + 1])
{
    const char *p = *pp;
    size_t n = 0;
    while (p < end && xml_name_char(*p)) {
        if (n == STS_XML_NAME_MAX)
            return XRAY_ETOOBIG;
        out[n++] = *p++;
    }
    out[n] = '\0';
    if (n == 0)
        return XRAY_EPARSE;
    *pp = p;
    return 0;
}

/* Calls leaf for each element without child elements: its parent's and its own local
 * names (prefix dropped) and its raw text, entities still encoded. Nonzero stops. */
static int xml_walk(const char *body, size_t len,
                    int (*leaf)(void *ctx, const char *parent, const char *name, const char *text,
                                size_t len),
                    void *ctx)
{
    if (len > STS_RESPONSE_MAX)
        return XRAY_ETOOBIG;
    char names[STS_XML_DEPTH_MAX][STS_XML_NAME_MAX + 1];
    bool nested[STS_XML_DEPTH_MAX];
    int depth = 0;
    bool root_seen = false;
    const char *p = body, *end = body + len, *text = NULL;
    while (p < end) {
        if (*p == '\0')
            return XRAY_EPARSE;
        if (*p != '<') {
            if (depth == 0 && !xml_space(*p))
                return XRAY_EPARSE; /* text outside the root element */
            p++;
            continue;
        }
        const char *lt = p;
        if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
            const char *q = xml_find(p + 4, end, "-->");
            if (q == NULL)
                return XRAY_EPARSE;
            p = q + 3;
            continue;
        }
        if (end - p >= 2 && memcmp(p, "<?", 2) == 0) {
            const char *q = xml_find(p + 2, end, "?>");
            if (q == NULL)
                return XRAY_EPARSE;
            p = q + 2;
            continue;
        }
        if (end - p >= 2 && p[1] == '!')
            return XRAY_EPARSE; /* DOCTYPE or CDATA: STS sends neither */
        char name[STS_XML_NAME_MAX + 1];
        int rc;
        if (end - p >= 2 && p[1] == '/') {
            p += 2;
            if ((rc = xml_name(&p, end, name)) != 0)
                return rc;
            while (p < end && xml_space(*p))
                p++;
            if (p >= end || *p != '>' || depth == 0 || strcmp(name, names[depth - 1]) != 0)
                return XRAY_EPARSE;
            p++;
            depth--;
            if (!nested[depth]) {
                const char *parent = depth > 0 ? xml_local(names[depth - 1]) : "";
                if ((rc = leaf(ctx, parent, xml_local(name), text, (size_t)(lt - text))) != 0)
                    return rc;
            }
            continue;
        }
        p++;
        if ((rc = xml_name(&p, end, name)) != 0)
            return rc;
        /* Attributes: skipped, minding quotes, which may hold '>'. */
        char quote = 0;
        while (p < end && (quote != 0 || (*p != '>' && *p != '/'))) {
            if (*p == '\0' || (quote == 0 && *p == '<'))
                return XRAY_EPARSE;
            if (quote == 0 && (*p == '"' || *p == '\''))
                quote = *p;
            else if (*p == quote)
                quote = 0;
            p++;
        }
        bool empty = p < end && *p == '/';
        if (empty)
            p++;
        if (p >= end || *p != '>')
            return XRAY_EPARSE;
        p++;
        if (depth == 0 && root_seen)
            return XRAY_EPARSE; /* a second root */
        root_seen = true;
        if (depth > 0)
            nested[depth - 1] = true;
        if (empty) {
            const char *parent = depth > 0 ? xml_local(names[depth - 1]) : "";
            if ((rc = leaf(ctx, parent, xml_local(name), p, 0)) != 0)
                return rc;
            continue;
        }
        if (depth == STS_XML_DEPTH_MAX)
            return XRAY_EDEPTH;
        memcpy(names[depth], name, sizeof(name));
        nested[depth] = false;
        depth++;
        text = p;
    }
    return depth == 0 && root_seen ? 0 : XRAY_EPARSE;
}

/* Appends code point cp as UTF-8. */
static size_t utf8_put(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the entities of text[0..len) into a new NUL-terminated string (owned). A
 * decoded value is never longer than its encoding. */
static int xml_decode(const char *text, size_t len, char **out)
{
    *out = NULL;
    if (len > STS_VALUE_MAX)
        return XRAY_ETOOBIG;
    char *d = malloc(len + 1);
    if (d == NULL)
        return -ENOMEM;
    static const struct {
        const char *name;
        char c;
    } named[] = {{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"quot;", '"'}, {"apos;", '\''}};
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (text[i] != '&') {
            d[o++] = text[i++];
            continue;
        }
        const char *semi = memchr(text + i, ';', len - i);
        size_t n = semi != NULL ? (size_t)(semi - (text + i)) + 1 : 0; /* "&...;" */
        bool ok = false;
        for (size_t k = 0; k < sizeof(named) / sizeof(named[0]) && !ok; k++) {
            if (n == strlen(named[k].name) + 1 && memcmp(text + i + 1, named[k].name, n - 1) == 0) {
                d[o++] = named[k].c;
                ok = true;
            }
        }
        if (!ok && n >= 4 && n <= 12 && text[i + 1] == '#') {
            bool hex = text[i + 2] == 'x';
            unsigned long cp = 0;
            size_t j = i + 2 + hex;
            for (; j < i + n - 1; j++) {
                char c = text[j];
                int v = c >= '0' && c <= '9'          ? c - '0'
                        : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                      : -1;
                if (v < 0)
                    break;
                cp = cp * (hex ? 16 : 10) + (unsigned long)v;
            }
            /* "&#9;" is 4 bytes and its UTF-8 at most 4: it always fits in place. */
            if (j == i + n - 1 && j > i + 2 + hex && cp > 0 && cp <= 0x10FFFF &&
                !(cp >= 0xD800 && cp <= 0xDFFF)) {
                o += utf8_put(d + o, (unsigned)cp);
                ok = true;
            }
        }
        if (!ok) {
            OPENSSL_cleanse(d, o);
            free(d);
            return XRAY_EPARSE;
        }
        i += n;
    }
    d[o] = '\0';
    *out = d;
    return 0;
}

static void wipe_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* ---- the parsers ------------------------------------------------------------------- */

enum { F_ID, F_SECRET, F_TOKEN, F_EXPIRATION, F__COUNT };

struct creds_visit {
    char *v[F__COUNT];
};

static int creds_leaf(void *ctx, const char *parent, const char *name, const char *text, size_t len)
{
    static const char *const fields[F__COUNT] = {"AccessKeyId", "SecretAccessKey", "SessionToken",
                                                 "Expiration"};
    struct creds_visit *cv = ctx;
    if (strcmp(parent, "Credentials") != 0)
        return 0;
    for (int i = 0; i < F__COUNT; i++) {
        if (strcmp(name, fields[i]) == 0) {
            wipe_free(cv->v[i]); /* a repeated field: the last one counts */
            cv->v[i] = NULL;
            return xml_decode(text, len, &cv->v[i]);
        }
    }
    return 0;
}

int sts_parse_credentials(const char *body, size_t len, struct aws_credentials *out,
                          char err[XRAY_ERR_LEN])
{
    struct creds_visit cv = {{NULL}};
    memset(out, 0, sizeof(*out));
    int rc = xml_walk(body, len, creds_leaf, &cv);
    const char *why = NULL;
    if (rc != 0)
        why = rc == XRAY_ETOOBIG  ? "an answer or a value past its size limit"
              : rc == XRAY_EDEPTH ? "an answer nested too deep"
              : rc == -ENOMEM     ? "out of memory"
                                  : "an answer that is not well-formed XML";
    else if (cv.v[F_ID] == NULL || cv.v[F_SECRET] == NULL || cv.v[F_TOKEN] == NULL ||
             cv.v[F_EXPIRATION] == NULL) {
        rc = XRAY_EFIELD;
        why = "an answer without Credentials (AccessKeyId, SecretAccessKey, SessionToken, "
              "Expiration)";
    }
    uint64_t exp = 0;
    if (rc == 0 &&
        credentials_parse_time(cv.v[F_EXPIRATION], strlen(cv.v[F_EXPIRATION]), &exp) != 0) {
        rc = XRAY_EPARSE;
        why = "an Expiration that is not an ISO 8601 time";
    }
    if (rc == 0) {
        rc = aws_credentials_set(out, cv.v[F_ID], cv.v[F_SECRET], cv.v[F_TOKEN], "the STS answer",
                                 err);
        out->expires_ms = exp;
    } else if (err != NULL) {
        snprintf(err, XRAY_ERR_LEN, "STS sent %s", why);
    }
    for (int i = 0; i < F__COUNT; i++)
        wipe_free(cv.v[i]);
    return rc;
}

struct error_visit {
    char *code;
    char *msg;
};

static int error_leaf(void *ctx, const char *parent, const char *name, const char *text, size_t len)
{
    struct error_visit *ev = ctx;
    char **slot = NULL;
    if (strcmp(parent, "Error") == 0 && strcmp(name, "Code") == 0)
        slot = &ev->code;
    else if (strcmp(parent, "Error") == 0 && strcmp(name, "Message") == 0)
        slot = &ev->msg;
    if (slot == NULL)
        return 0;
    free(*slot);
    *slot = NULL;
    return xml_decode(text, len, slot);
}

/* Copies printable ASCII of s into out[cap], stopping at a line break, at most max. */
static void clean_copy(char *out, size_t cap, const char *s, size_t max)
{
    size_t o = 0;
    for (size_t i = 0; s != NULL && s[i] != '\0' && o + 1 < cap && o < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n' || ch == '\r')
            break;
        out[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (cap > 0)
        out[o] = '\0';
}

int sts_parse_error(const char *body, size_t len, char *code, size_t code_cap, char *msg,
                    size_t msg_cap)
{
    struct error_visit ev = {NULL, NULL};
    int rc = xml_walk(body, len, error_leaf, &ev);
    clean_copy(code, code_cap, rc == 0 ? ev.code : NULL, 96);
    clean_copy(msg, msg_cap, rc == 0 ? ev.msg : NULL, STS_ERROR_TEXT_MAX);
    free(ev.code);
    free(ev.msg);
    return rc;
}

/* ---- the call ---------------------------------------------------------------------- */

struct sts_call {
    void (*done)(void *data, int rc, const struct aws_credentials *creds, const char *err);
    void *data;
    const char *action;
    struct buf body; /* the form; may hold a web identity token */
};

static void sts_call_free(struct sts_call *call)
{
    if (call->body.data != NULL)
        OPENSSL_cleanse(call->body.data, call->body.len);
    buf_free(&call->body);
    free(call);
}

/* application/x-www-form-urlencoded: everything but the unreserved set is escaped. */
static int form_add(struct buf *b, const char *key, const char *value)
{
    int rc = buf_appendf(b, "%s%s=", b->len > 0 ? "&" : "", key);
    for (const unsigned char *p = (const unsigned char *)value; rc == 0 && *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~')
            rc = buf_append(b, p, 1);
        else
            rc = buf_appendf(b, "%%%02X", *p);
    }
    return rc;
}

static void sts_on_response(const struct http_client_result *res, void *data)
{
    struct sts_call *call = data;
    char err[XRAY_ERR_LEN] = "";
    struct aws_credentials creds = {0};
    char code[96], msg[STS_ERROR_TEXT_MAX + 1];
    int rc = credentials_http_rc(res);
    if (rc == 0 && res->status == 200) {
        rc = sts_parse_credentials(res->body, res->body_len, &creds, err);
    } else if (rc == 0) {
        sts_parse_error(res->body, res->body_len, code, sizeof(code), msg, sizeof(msg));
        snprintf(err, sizeof(err), "STS %s: HTTP %d%s%.48s%s%.140s", call->action, res->status,
                 code[0] ? " " : "", code, msg[0] ? ": " : "", msg);
        rc = XRAY_EUPSTREAM;
    }
    if (rc != 0 && err[0] == '\0')
        snprintf(err, sizeof(err), "STS %s: %s: %s", call->action,
                 http_client_error_name(res->error), res->message);
    call->done(call->data, rc, rc == 0 ? &creds : NULL, err);
    aws_credentials_clear(&creds);
    sts_call_free(call);
}

/* Builds, signs when needed, and starts the request. 0 or an error with err set. */
static int sts_start(const struct sts_request *req, struct sts_call *call, char *err)
{
    bool web = req->web_identity_token != NULL;
    size_t arn_len = req->role_arn != NULL ? strlen(req->role_arn) : 0;
    size_t name_len = req->session_name != NULL ? strlen(req->session_name) : 0;
    if (arn_len == 0 || arn_len > STS_ROLE_ARN_MAX || name_len < 2 ||
        name_len > STS_SESSION_NAME_MAX) {
        snprintf(err, XRAY_ERR_LEN, "STS %s: role ARN or session name empty or too long",
                 call->action);
        return XRAY_ECONFIG;
    }
    if ((web && strlen(req->web_identity_token) > STS_WEB_TOKEN_MAX) ||
        (!web && req->creds == NULL)) {
        snprintf(err, XRAY_ERR_LEN, "STS %s: %s", call->action,
                 web ? "web identity token too long" : "no credentials to sign with");
        return XRAY_ECONFIG;
    }
    struct endpoint_url u;
    char host[ENDPOINT_HOST_MAX + 8];
    if (req->endpoint == NULL || req->endpoint[0] == '\0' ||
        endpoint_split(req->endpoint, &u) != 0 ||
        endpoint_host(req->endpoint, host, sizeof(host)) != 0 || strpbrk(u.path, "?#") != NULL) {
        snprintf(err, XRAY_ERR_LEN, "STS %s: no usable STS endpoint", call->action);
        return XRAY_ECONFIG;
    }
    buf_init(&call->body, 4 * STS_WEB_TOKEN_MAX);
    int rc = form_add(&call->body, "Action", call->action);
    if (rc == 0)
        rc = form_add(&call->body, "Version", STS_VERSION);
    if (rc == 0)
        rc = form_add(&call->body, "RoleArn", req->role_arn);
    if (rc == 0)
        rc = form_add(&call->body, "RoleSessionName", req->session_name);
    if (rc == 0 && web)
        rc = form_add(&call->body, "WebIdentityToken", req->web_identity_token);
    if (rc == 0 && !web)
        rc = buf_appendf(&call->body, "&DurationSeconds=%d", STS_DURATION_S);
    if (rc != 0) {
        snprintf(err, XRAY_ERR_LEN, "STS %s: %s", call->action, xray_strerror(rc));
        return rc;
    }

    /* The path: the endpoint's own (for a prefix) or "/". */
    char path[ENDPOINT_URL_MAX];
    snprintf(path, sizeof(path), "%s%s", u.path,
             u.path[0] == '\0' || u.path[strlen(u.path) - 1] != '/' ? "/" : "");
    char url[ENDPOINT_URL_MAX * 2];
    snprintf(url, sizeof(url), "%.*s%s", (int)(u.path - req->endpoint), req->endpoint, path);
    char h_host[sizeof(host) + 8], h_date[48], h_auth[600];
    const char *lines[8];
    size_t n = 0;
    snprintf(h_host, sizeof(h_host), "Host: %s", host);
    lines[n++] = h_host;
    lines[n++] = "Content-Type: " STS_CONTENT_TYPE;
    lines[n++] = "User-Agent: xrayd/" XRAYD_VERSION;
    char *h_token = NULL;
    if (!web) {
        const struct sigv4_header sh[] = {{"content-type", STS_CONTENT_TYPE}};
        const struct sigv4_request sreq = {
            .method = "POST",
            .host = host,
            .path = path,
            .headers = sh,
            .header_count = 1,
            .body = call->body.data,
            .body_len = call->body.len,
            .region = req->region,
            .service = STS_SERVICE,
            .now_s = (int64_t)(req->now_ms / 1000),
        };
        struct sigv4_signature sig;
        char serr[XRAY_ERR_LEN] = "";
        if ((rc = sigv4_sign(&sreq, req->creds, &sig, serr)) != 0) {
            snprintf(err, XRAY_ERR_LEN, "STS %s: signing failed: %s", call->action, serr);
            return rc;
        }
        snprintf(h_date, sizeof(h_date), "X-Amz-Date: %s", sig.amz_date);
        snprintf(h_auth, sizeof(h_auth), "Authorization: %s", sig.authorization);
        lines[n++] = h_date;
        lines[n++] = h_auth;
        const char *token = req->creds->session_token;
        if (token != NULL && token[0] != '\0') {
            size_t tl = strlen(token) + sizeof("X-Amz-Security-Token: ");
            if ((h_token = malloc(tl)) == NULL)
                return -ENOMEM;
            snprintf(h_token, tl, "X-Amz-Security-Token: %s", token);
            lines[n++] = h_token;
        }
    }
    const struct http_client_request hreq = {
        .method = "POST",
        .url = url,
        .headers = lines,
        .header_count = n,
        .body = call->body.data,
        .body_len = call->body.len,
        .max_response = STS_RESPONSE_MAX,
    };
    rc = http_client_request(req->http, &hreq, sts_on_response, call);
    if (h_token != NULL) {
        OPENSSL_cleanse(h_token, strlen(h_token)); /* the client holds its own copy */
        free(h_token);
    }
    if (rc != 0)
        snprintf(err, XRAY_ERR_LEN, "STS %s: not sent: %s", call->action, xray_strerror(rc));
    return rc;
}

void sts_assume_role(const struct sts_request *req,
                     void (*done)(void *data, int rc, const struct aws_credentials *creds,
                                  const char *err),
                     void *data)
{
    char err[XRAY_ERR_LEN] = "";
    struct sts_call *call = calloc(1, sizeof(*call));
    if (call == NULL) {
        done(data, -ENOMEM, NULL, "STS: out of memory");
        return;
    }
    call->done = done;
    call->data = data;
    call->action = req->web_identity_token != NULL ? "AssumeRoleWithWebIdentity" : "AssumeRole";
    int rc = req->http != NULL ? sts_start(req, call, err) : XRAY_ECONFIG;
    if (rc != 0) {
        if (err[0] == '\0')
            snprintf(err, sizeof(err), "STS %s: no HTTP client", call->action);
        sts_call_free(call);
        done(data, rc, NULL, err);
    }
}
