/* SPDX-License-Identifier: Apache-2.0 */
/* struct aws_credentials and the small helpers every provider shares: checked
 * copies, AWS expiry times, token files. Secrets are wiped before their memory is
 * released. Never logs, never reads the clock; the chain lives in credentials_chain.c
 * and the providers in credentials_<name>.c. */
#include "aws/credentials.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "http/client.h"

static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void aws_credentials_clear(struct aws_credentials *c)
{
    if (c == NULL)
        return;
    free(c->access_key_id);
    wipe_free(c->secret_access_key);
    wipe_free(c->session_token);
    memset(c, 0, sizeof(*c));
}

static char *dup_or_null(const char *s, bool *failed)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *failed = true;
    return d;
}

int aws_credentials_copy(struct aws_credentials *dst, const struct aws_credentials *src)
{
    bool failed = false;
    struct aws_credentials c = {
        .access_key_id = dup_or_null(src->access_key_id, &failed),
        .secret_access_key = dup_or_null(src->secret_access_key, &failed),
        .session_token = dup_or_null(src->session_token, &failed),
        .expires_ms = src->expires_ms,
        .source = src->source,
    };
    if (failed) {
        aws_credentials_clear(&c);
        memset(dst, 0, sizeof(*dst));
        return -ENOMEM;
    }
    *dst = c;
    return 0;
}

/* Key ids and tokens travel in headers: a blank or control character would break the
 * request or smuggle a header. Secrets only feed the HMAC, so any byte will do. */
static bool header_safe(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s == 0x7f)
            return false;
    return true;
}

int aws_credentials_set(struct aws_credentials *c, const char *access_key_id,
                        const char *secret_access_key, const char *session_token, const char *what,
                        char err[XRAY_ERR_LEN])
{
    const char *bad = NULL;
    if (access_key_id == NULL || access_key_id[0] == '\0')
        bad = "an empty access key id";
    else if (secret_access_key == NULL || secret_access_key[0] == '\0')
        bad = "an empty secret access key";
    else if (!header_safe(access_key_id))
        bad = "an access key id with blanks or control characters";
    else if (session_token != NULL && !header_safe(session_token))
        bad = "a session token with blanks or control characters";
    if (bad != NULL) {
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "%s has %s", what, bad);
        return XRAY_EPARSE;
    }
    struct aws_credentials src = {
        .access_key_id = (char *)access_key_id,
        .secret_access_key = (char *)secret_access_key,
        .session_token =
            session_token != NULL && session_token[0] != '\0' ? (char *)session_token : NULL,
    };
    return aws_credentials_copy(c, &src);
}

void credentials_free_secret(char *s)
{
    wipe_free(s);
}

/* n decimal digits at s into *v; false if any is not a digit. */
static bool digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

int credentials_parse_time(const char *s, size_t len, uint64_t *ms)
{
    /* YYYY-MM-DDThh:mm:ss is 19 bytes; then [.fraction] and Z or +hh:mm / -hh:mm. */
    int y, mo, d, h, mi, sec;
    if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return XRAY_EPARSE;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return XRAY_EPARSE;
    size_t i = 19;
    int frac_ms = 0;
    if (s[i] == '.') {
        int scale = 100;
        size_t start = ++i;
        for (; i < len && s[i] >= '0' && s[i] <= '9' && i - start < 12; i++, scale /= 10)
            frac_ms += (s[i] - '0') * scale;
        if (i == start)
            return XRAY_EPARSE;
    }
    int64_t offset_s = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return XRAY_EPARSE;
        offset_s = (int64_t)(oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
        i += 6;
    } else {
        return XRAY_EPARSE;
    }
    if (i != len)
        return XRAY_EPARSE;
    struct tm tm = {
        .tm_year = y - 1900,
        .tm_mon = mo - 1,
        .tm_mday = d,
        .tm_hour = h,
        .tm_min = mi,
        .tm_sec = sec,
    };
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || (int64_t)t - offset_s < 0)
        return XRAY_EPARSE;
    *ms = (uint64_t)((int64_t)t - offset_s) * 1000 + (uint64_t)frac_ms;
    return 0;
}

int credentials_read_file(const char *path, size_t max, char **out, char err[XRAY_ERR_LEN])
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "%s: %s", path, strerror(-rc));
        return rc;
    }
    struct stat st;
    int rc = 0;
    char *data = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = XRAY_EPARSE;
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "%s: not a regular file", path);
    } else if ((size_t)st.st_size > max) {
        rc = XRAY_ETOOBIG;
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "%s: larger than %zu bytes", path, max);
    } else if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
        rc = -ENOMEM;
    }
    size_t got = 0;
    while (rc == 0 && got < (size_t)st.st_size) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* a file that shrank: take what is there */
        got += (size_t)r;
    }
    close(fd);
    if (rc != 0) {
        free(data);
        return rc;
    }
    while (got > 0 && (data[got - 1] == '\n' || data[got - 1] == '\r' || data[got - 1] == ' '))
        got--;
    data[got] = '\0';
    if (got == 0) {
        free(data);
        if (err != NULL)
            snprintf(err, XRAY_ERR_LEN, "%s: empty", path);
        return XRAY_EPARSE;
    }
    *out = data;
    return 0;
}

int credentials_from_json(const char *body, size_t len, struct aws_credentials *out,
                          char err[XRAY_ERR_LEN])
{
    memset(out, 0, sizeof(*out));
    if (len > CREDENTIALS_RESPONSE_MAX) {
        snprintf(err, XRAY_ERR_LEN, "a credentials document past %u bytes",
                 CREDENTIALS_RESPONSE_MAX);
        return XRAY_ETOOBIG;
    }
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(err, XRAY_ERR_LEN, "a credentials document that is not a JSON object");
        return XRAY_EPARSE;
    }
    const char *code = json_string_value(json_object_get(root, "Code"));
    const char *id = json_string_value(json_object_get(root, "AccessKeyId"));
    const char *secret = json_string_value(json_object_get(root, "SecretAccessKey"));
    const char *token = json_string_value(json_object_get(root, "Token"));
    json_t *jexp = json_object_get(root, "Expiration");
    const char *exp = json_string_value(jexp);
    uint64_t exp_ms = 0;
    int rc = 0;
    if (json_object_get(root, "Code") != NULL && (code == NULL || strcmp(code, "Success") != 0)) {
        char clean[48] = "";
        for (size_t i = 0; code != NULL && code[i] != '\0' && i + 1 < sizeof(clean); i++)
            clean[i] = code[i] > 0x20 && code[i] < 0x7f ? code[i] : '?';
        snprintf(err, XRAY_ERR_LEN, "a credentials document with Code \"%s\"", clean);
        rc = XRAY_EUPSTREAM;
    } else if (id == NULL || secret == NULL) {
        snprintf(err, XRAY_ERR_LEN,
                 "a credentials document without AccessKeyId and SecretAccessKey strings");
        rc = XRAY_EFIELD;
    } else if (jexp != NULL &&
               (exp == NULL || credentials_parse_time(exp, strlen(exp), &exp_ms) != 0)) {
        snprintf(err, XRAY_ERR_LEN, "a credentials document with a bad Expiration");
        rc = XRAY_EPARSE;
    } else {
        rc = aws_credentials_set(out, id, secret, token, "the credentials document", err);
        out->expires_ms = exp_ms;
    }
    json_decref(root); /* jansson frees without wiping: its copies of the keys stay in
                          freed heap, as the HTTP client's body buffer does */
    return rc;
}

int credentials_http_rc(const struct http_client_result *res)
{
    switch (res->error) {
    case HTTP_CLIENT_OK:
        return 0;
    case HTTP_CLIENT_TIMEOUT:
        return XRAY_ETIMEOUT;
    case HTTP_CLIENT_REFUSED:
        return -ECONNREFUSED;
    case HTTP_CLIENT_UNKNOWN_HOST:
        return -EHOSTUNREACH;
    case HTTP_CLIENT_CANCELED:
        return -ECANCELED;
    case HTTP_CLIENT_TOO_BIG:
        return XRAY_ETOOBIG;
    case HTTP_CLIENT_OTHER:
        break;
    }
    return -EIO;
}
