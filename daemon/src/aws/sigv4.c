/* SPDX-License-Identifier: Apache-2.0 */
/* AWS Signature Version 4 for every service xrayd calls. It builds the canonical
 * request in a bounded stack buffer, hashes it, derives the signing key (kept per
 * thread for the day) and formats the Authorization value; it never sends, logs,
 * allocates or reads the clock.
 *
 * How it works: canonical request = method, canonical URI, canonical query, one
 * "name:value" line per signed header (lower-cased, sorted, values trimmed with inner
 * runs of blanks collapsed, repeated names joined by ','), the signed header list and
 * the payload hash. string to sign = algorithm, X-Amz-Date, scope, hash of the
 * canonical request. key = HMAC chain over "AWS4"+secret, date, region, service,
 * "aws4_request"; signature = hex HMAC(key, string to sign). */
#include "aws/sigv4.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

/* A bounded string under construction; once it overflows every append is a no-op
 * and the caller reports XRAY_ETOOBIG. */
struct out {
    char *p;
    size_t len;
    size_t cap;
    bool over;
};

struct hdr {
    char name[SIGV4_NAME_MAX + 1]; /* lower-cased */
    size_t name_len;
    const char *value;
};

struct param {
    size_t off; /* into the encoded buffer: "key" then "value", each NUL-terminated */
    size_t key_len;
    size_t val_off;
    size_t val_len;
};

static void out_add(struct out *o, const void *p, size_t n)
{
    if (o->over || n >= o->cap - o->len) {
        o->over = true;
        return;
    }
    memcpy(o->p + o->len, p, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
    out_add(o, s, strlen(s));
}

static void out_chr(struct out *o, char c)
{
    out_add(o, &c, 1);
}

static const char hexdigits[] = "0123456789abcdef";

static void hex_encode(const unsigned char *in, size_t n, char *hex)
{
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = hexdigits[in[i] >> 4];
        hex[2 * i + 1] = hexdigits[in[i] & 15];
    }
    hex[2 * n] = '\0';
}

/* RFC 3986 unreserved characters: the only ones SigV4 leaves unencoded. */
static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static void out_encoded(struct out *o, const char *s, size_t n, bool keep_slash)
{
    static const char upper[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            out_chr(o, (char)c);
        } else {
            char e[3] = {'%', upper[c >> 4], upper[c & 15]};
            out_add(o, e, 3);
        }
    }
}

/* Appends s[0..n) decoded (percent escapes; '+' is a space, as form encoding and the
 * AWS SDKs read it) and then encoded again. -1 on a broken escape. */
static int out_reencoded(struct out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (n - i < 3)
                return -1;
            int hi = hex_value(s[i + 1]);
            int lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        out_encoded(o, (const char *)&c, 1, false);
    }
    return 0;
}

static int param_cmp(const char *base, const struct param *a, const struct param *b)
{
    int r = strcmp(base + a->off, base + b->off);
    return r != 0 ? r : strcmp(base + a->val_off, base + b->val_off);
}

/* Canonical query: every parameter decoded and re-encoded, sorted by name then value,
 * "name=value" joined by '&' (a parameter without '=' gets an empty value). */
static int canonical_query(struct out *o, const char *query, char *err)
{
    if (query == NULL || *query == '\0')
        return 0;
    char enc[SIGV4_QUERY_MAX];
    struct out e = {enc, 0, sizeof(enc), false};
    struct param params[SIGV4_PARAMS_MAX];
    size_t n = 0;
    for (const char *p = query; *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            if (n == SIGV4_PARAMS_MAX) {
                xray_err_set(err, "more than %d query parameters", SIGV4_PARAMS_MAX);
                return XRAY_ETOOBIG;
            }
            const char *eq = memchr(p, '=', len);
            size_t klen = eq != NULL ? (size_t)(eq - p) : len;
            struct param *pm = &params[n++];
            pm->off = e.len;
            if (out_reencoded(&e, p, klen) != 0)
                goto bad;
            pm->key_len = e.len - pm->off;
            out_chr(&e, '\0');
            pm->val_off = e.len;
            if (eq != NULL && out_reencoded(&e, eq + 1, len - klen - 1) != 0)
                goto bad;
            pm->val_len = e.len - pm->val_off;
            out_chr(&e, '\0');
            if (e.over) {
                xray_err_set(err, "query string longer than %d bytes encoded", SIGV4_QUERY_MAX);
                return XRAY_ETOOBIG;
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
    /* Insertion sort: n is small and bounded, and it is stable. */
    for (size_t i = 1; i < n; i++) {
        struct param t = params[i];
        size_t j = i;
        while (j > 0 && param_cmp(enc, &params[j - 1], &t) > 0) {
            params[j] = params[j - 1];
            j--;
        }
        params[j] = t;
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            out_chr(o, '&');
        out_add(o, enc + params[i].off, params[i].key_len);
        out_chr(o, '=');
        out_add(o, enc + params[i].val_off, params[i].val_len);
    }
    return 0;
bad:
    xray_err_set(err, "query string has a malformed percent escape");
    return XRAY_EPARSE;
}

/* RFC 9110 token characters: what a header name or a method may hold. */
static bool tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* A header value without CR or LF, so it cannot smuggle in a header of its own. */
static bool value_ok(const char *v)
{
    for (; *v != '\0'; v++)
        if (*v == '\r' || *v == '\n')
            return false;
    return true;
}

static void out_trimmed(struct out *o, const char *v)
{
    while (blank(*v))
        v++;
    bool pending = false;
    for (; *v != '\0'; v++) {
        if (blank(*v)) {
            pending = true;
            continue;
        }
        if (pending)
            out_chr(o, ' ');
        pending = false;
        out_chr(o, *v);
    }
}

static int add_header(struct hdr *h, size_t *n, const char *name, const char *value, char *err)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || value == NULL) {
        xray_err_set(err, "header %zu has no name or no value", *n);
        return XRAY_EPARSE;
    }
    if (len > SIGV4_NAME_MAX) {
        xray_err_set(err, "header name longer than %d bytes", SIGV4_NAME_MAX);
        return XRAY_ETOOBIG;
    }
    if (*n == SIGV4_HEADERS_MAX) {
        xray_err_set(err, "more than %d headers to sign", SIGV4_HEADERS_MAX);
        return XRAY_ETOOBIG;
    }
    struct hdr *d = &h[*n];
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!tchar(c)) {
            xray_err_set(err, "header name has an invalid character");
            return XRAY_EPARSE;
        }
        d->name[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    d->name[len] = '\0';
    d->name_len = len;
    if (!value_ok(value)) {
        xray_err_set(err, "value of header %s has a line break", d->name);
        return XRAY_EPARSE;
    }
    d->value = value;
    (*n)++;
    return 0;
}

static bool reserved(const char *lname)
{
    return strcmp(lname, "host") == 0 || strcmp(lname, "x-amz-date") == 0 ||
           strcmp(lname, "x-amz-security-token") == 0 || strcmp(lname, "authorization") == 0;
}

/* Region, service and key id go into the credential scope, which '/' separates and
 * ", " ends: they must be plain words. */
static bool scope_word(const char *s, size_t max)
{
    size_t n = 0;
    for (; s != NULL && s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c <= ' ' || c >= 0x7f || c == '/' || c == ',' || c == '=')
            return false;
    }
    return n > 0 && n <= max;
}

static int hmac(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32])
{
    unsigned int olen = 0;
    if (HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen) == NULL || olen != 32)
        return -ENOMEM;
    return 0;
}

/* The signing key depends only on the secret and the scope (date, region, service),
 * so it changes once a day or when credentials rotate; deriving it is four of the
 * five HMACs of a signature. Each thread keeps its own few keys (no lock; xrayd signs
 * on the loop thread), one entry per region and service, so a rotated secret or a new
 * day overwrites the entry it replaces instead of lingering beside it. */
#define SIGV4_KEY_CACHE 4

struct key_entry {
    char secret[SIGV4_SECRET_MAX + 1];
    size_t secret_len;
    char date8[9];
    char region[65]; /* scope_word() bounds region and service to 64 bytes */
    char service[65];
    unsigned char key[32];
    bool used;
};

static _Thread_local struct key_entry key_cache[SIGV4_KEY_CACHE];
static _Thread_local unsigned key_cache_next;

static int derive_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char k[32])
{
    char kseed[4 + SIGV4_SECRET_MAX + 1];
    int kseed_len = snprintf(kseed, sizeof(kseed), "AWS4%s", secret);
    int rc = hmac(kseed, (size_t)kseed_len, date8, 8, k);
    if (rc == 0)
        rc = hmac(k, 32, region, strlen(region), k);
    if (rc == 0)
        rc = hmac(k, 32, service, strlen(service), k);
    if (rc == 0)
        rc = hmac(k, 32, "aws4_request", 12, k);
    OPENSSL_cleanse(kseed, sizeof(kseed));
    return rc;
}

/* The signing key for the scope, from the cache or derived into it. */
static int signing_key(const char *secret, const char *date8, const char *region,
                       const char *service, unsigned char out[32])
{
    size_t slen = strlen(secret);
    struct key_entry *slot = NULL;
    for (unsigned i = 0; i < SIGV4_KEY_CACHE; i++) {
        struct key_entry *e = &key_cache[i];
        if (!e->used || strcmp(e->region, region) != 0 || strcmp(e->service, service) != 0)
            continue;
        if (strcmp(e->date8, date8) == 0 && e->secret_len == slen &&
            CRYPTO_memcmp(e->secret, secret, slen) == 0) {
            memcpy(out, e->key, 32);
            return 0;
        }
        slot = e;
        break;
    }
    if (slot == NULL)
        slot = &key_cache[key_cache_next++ % SIGV4_KEY_CACHE];
    OPENSSL_cleanse(slot, sizeof(*slot));
    int rc = derive_key(secret, date8, region, service, out);
    if (rc != 0)
        return rc;
    memcpy(slot->secret, secret, slen + 1);
    slot->secret_len = slen;
    memcpy(slot->date8, date8, 9);
    snprintf(slot->region, sizeof(slot->region), "%s", region);
    snprintf(slot->service, sizeof(slot->service), "%s", service);
    memcpy(slot->key, out, 32);
    slot->used = true;
    return 0;
}

int sigv4_payload_hash(const void *body, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    static const char empty = '\0';
    if (EVP_Digest(body != NULL ? body : &empty, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32)
        return -ENOMEM;
    hex_encode(md, 32, hex);
    return 0;
}

static int check_request(const struct sigv4_request *req, const struct aws_credentials *creds,
                         char *err)
{
    if (req->method == NULL || *req->method == '\0') {
        xray_err_set(err, "no method");
        return XRAY_EPARSE;
    }
    for (const char *m = req->method; *m != '\0'; m++) {
        if (!tchar((unsigned char)*m)) {
            xray_err_set(err, "method has an invalid character");
            return XRAY_EPARSE;
        }
    }
    if (req->host == NULL || *req->host == '\0' || !value_ok(req->host)) {
        xray_err_set(err, "no host, or a host with a line break");
        return XRAY_EPARSE;
    }
    if (req->path != NULL && req->path[0] != '\0' && req->path[0] != '/') {
        xray_err_set(err, "path does not start with '/'");
        return XRAY_EPARSE;
    }
    if (!scope_word(req->region, 64) || !scope_word(req->service, 64)) {
        xray_err_set(err, "region or service missing or not a plain word");
        return XRAY_EPARSE;
    }
    if (creds == NULL || !scope_word(creds->access_key_id, 128)) {
        xray_err_set(err, "access key id missing or malformed");
        return XRAY_EPARSE;
    }
    if (creds->secret_access_key == NULL || creds->secret_access_key[0] == '\0') {
        xray_err_set(err, "no secret access key");
        return XRAY_EPARSE;
    }
    if (strlen(creds->secret_access_key) > SIGV4_SECRET_MAX) {
        xray_err_set(err, "secret access key longer than %d bytes", SIGV4_SECRET_MAX);
        return XRAY_ETOOBIG;
    }
    if (req->payload_hash != NULL && strlen(req->payload_hash) != 64) {
        xray_err_set(err, "payload hash is not 64 hex digits");
        return XRAY_EPARSE;
    }
    return 0;
}

static int collect_headers(const struct sigv4_request *req, const struct aws_credentials *creds,
                           struct hdr *h, size_t *n, char *err)
{
    int rc;
    *n = 0;
    if (req->header_count > 0 && req->headers == NULL) {
        xray_err_set(err, "header_count without headers");
        return XRAY_EPARSE;
    }
    for (size_t i = 0; i < req->header_count; i++) {
        if ((rc = add_header(h, n, req->headers[i].name, req->headers[i].value, err)) != 0)
            return rc;
        if (reserved(h[*n - 1].name)) {
            xray_err_set(err, "header %s is the signer's to set", h[*n - 1].name);
            return XRAY_EPARSE;
        }
    }
    if ((rc = add_header(h, n, "host", req->host, err)) != 0)
        return rc;
    if (creds->session_token != NULL && creds->session_token[0] != '\0' &&
        (rc = add_header(h, n, "x-amz-security-token", creds->session_token, err)) != 0)
        return rc;
    /* Stable insertion sort by name: repeated names keep the caller's order. */
    for (size_t i = 1; i < *n; i++) {
        struct hdr t = h[i];
        size_t j = i;
        while (j > 0 && strcmp(h[j - 1].name, t.name) > 0) {
            h[j] = h[j - 1];
            j--;
        }
        h[j] = t;
    }
    return 0;
}

/* Header lines and the signed header list. x-amz-date is passed apart because its
 * value lives in out, which the caller may not want in the header array. */
static void canonical_headers(struct out *o, struct out *signed_list, struct hdr *h, size_t n,
                              const char *amz_date)
{
    bool date_done = false;
    for (size_t i = 0; i <= n; i++) {
        if (!date_done && (i == n || strcmp(h[i].name, "x-amz-date") > 0)) {
            out_str(o, "x-amz-date:");
            out_str(o, amz_date);
            out_chr(o, '\n');
            if (signed_list->len > 0)
                out_chr(signed_list, ';');
            out_str(signed_list, "x-amz-date");
            date_done = true;
        }
        if (i == n)
            break;
        if (i > 0 && strcmp(h[i - 1].name, h[i].name) == 0) {
            out_chr(o, ',');
        } else {
            out_add(o, h[i].name, h[i].name_len);
            out_chr(o, ':');
            if (signed_list->len > 0)
                out_chr(signed_list, ';');
            out_add(signed_list, h[i].name, h[i].name_len);
        }
        out_trimmed(o, h[i].value);
        if (i + 1 == n || strcmp(h[i + 1].name, h[i].name) != 0)
            out_chr(o, '\n');
    }
}

int sigv4_sign(const struct sigv4_request *req, const struct aws_credentials *creds,
               struct sigv4_signature *out, char err[XRAY_ERR_LEN])
{
    int rc;
    if ((rc = check_request(req, creds, err)) != 0)
        return rc;

    struct tm tm;
    time_t t = (time_t)req->now_s;
    if (req->now_s < 0 || gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999) {
        xray_err_set(err, "time out of range");
        return XRAY_EPARSE;
    }
    strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
    char date8[9];
    memcpy(date8, out->amz_date, 8);
    date8[8] = '\0';

    if (req->payload_hash != NULL) {
        memcpy(out->payload_hash, req->payload_hash, 65);
    } else if (sigv4_payload_hash(req->body, req->body_len, out->payload_hash) != 0) {
        xray_err_set(err, "SHA-256 failed");
        return -ENOMEM;
    }

    struct hdr h[SIGV4_HEADERS_MAX];
    size_t n;
    if ((rc = collect_headers(req, creds, h, &n, err)) != 0)
        return rc;
    if (n == SIGV4_HEADERS_MAX) {
        xray_err_set(err, "more than %d headers to sign", SIGV4_HEADERS_MAX);
        return XRAY_ETOOBIG;
    }

    char creq[SIGV4_CANONICAL_MAX];
    char signed_buf[SIGV4_HEADERS_MAX * (SIGV4_NAME_MAX + 1)];
    struct out o = {creq, 0, sizeof(creq), false};
    struct out sl = {signed_buf, 0, sizeof(signed_buf), false};
    out_str(&o, req->method);
    out_chr(&o, '\n');
    const char *path = req->path != NULL && req->path[0] != '\0' ? req->path : "/";
    if (strcmp(req->service, "s3") == 0)
        out_str(&o, path);
    else
        out_encoded(&o, path, strlen(path), true);
    out_chr(&o, '\n');
    if ((rc = canonical_query(&o, req->query, err)) != 0)
        return rc;
    out_chr(&o, '\n');
    canonical_headers(&o, &sl, h, n, out->amz_date);
    out_chr(&o, '\n');
    out_add(&o, sl.p, sl.len);
    out_chr(&o, '\n');
    out_add(&o, out->payload_hash, 64);
    if (o.over || sl.over) {
        xray_err_set(err, "canonical request longer than %d bytes", SIGV4_CANONICAL_MAX);
        return XRAY_ETOOBIG;
    }

    char creq_hash[65];
    if (sigv4_payload_hash(creq, o.len, creq_hash) != 0) {
        xray_err_set(err, "SHA-256 failed");
        return -ENOMEM;
    }
    char scope[160];
    snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date8, req->region, req->service);
    char sts[256];
    int sts_len =
        snprintf(sts, sizeof(sts), SIGV4_ALGORITHM "\n%s\n%s\n%s", out->amz_date, scope, creq_hash);

    /* The stack copy of the key is wiped before return; the cache keeps its own. */
    unsigned char k[32];
    rc = signing_key(creds->secret_access_key, date8, req->region, req->service, k);
    unsigned char sig[32];
    if (rc == 0)
        rc = hmac(k, 32, sts, (size_t)sts_len, sig);
    OPENSSL_cleanse(k, sizeof(k));
    if (rc != 0) {
        xray_err_set(err, "HMAC-SHA256 failed");
        return rc;
    }
    char sig_hex[65];
    hex_encode(sig, 32, sig_hex);

    int len = snprintf(out->authorization, sizeof(out->authorization),
                       SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                       creds->access_key_id, scope, signed_buf, sig_hex);
    if (len < 0 || (size_t)len >= sizeof(out->authorization)) {
        xray_err_set(err, "Authorization value longer than %zu bytes",
                     sizeof(out->authorization) - 1);
        return XRAY_ETOOBIG;
    }
    return 0;
}
