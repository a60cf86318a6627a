/* SPDX-License-Identifier: Apache-2.0 */
/* Reads the AWS shared credentials and config files. The parser takes untrusted
 * bytes: every line is copied into a bounded buffer, the file size is capped, nothing
 * recurses, and error texts carry line numbers only, since a line may hold a secret.
 * Buffers that held file contents are wiped before they are released. */
#include "aws/profile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\f' || c == '\v';
}

/* Trims s[0..n) in place and returns the trimmed start; *n is updated. */
static char *trim(char *s, size_t *n)
{
    while (*n > 0 && blank(*s)) {
        s++;
        (*n)--;
    }
    while (*n > 0 && (blank(s[*n - 1]) || s[*n - 1] == '\r'))
        (*n)--;
    s[*n] = '\0';
    return s;
}

/* A comment after a value needs a blank before it, so '#' and ';' inside a value
 * (none occur in keys, secrets or tokens, which are base64) survive. */
static void cut_comment(char *v, size_t *n)
{
    for (size_t i = 1; i < *n; i++) {
        if ((v[i] == '#' || v[i] == ';') && blank(v[i - 1])) {
            *n = i;
            trim(v, n);
            return;
        }
    }
}

struct parse_state {
    char line[PROFILE_LINE_MAX + 1];
    char section[PROFILE_LINE_MAX + 1];
    bool in_section;
    bool nested; /* the last key had an empty value: indented lines belong to it */
};

static int parse_line(struct parse_state *st, size_t n, unsigned lineno,
                      int (*visit)(void *, const char *, const char *, const char *), void *ctx,
                      char *err)
{
    bool indented = n > 0 && blank(st->line[0]);
    char *s = trim(st->line, &n);
    if (n == 0 || s[0] == '#' || s[0] == ';')
        return 0;
    if (indented && st->nested)
        return 0;
    st->nested = false;

    if (s[0] == '[') {
        char *close = memchr(s, ']', n);
        if (close == NULL) {
            xray_err_set(err, "line %u: section header without ']'", lineno);
            return XRAY_EPARSE;
        }
        char *rest = close + 1;
        while (blank(*rest))
            rest++;
        if (*rest != '\0' && *rest != '#' && *rest != ';') {
            xray_err_set(err, "line %u: text after a section header", lineno);
            return XRAY_EPARSE;
        }
        size_t nlen = (size_t)(close - s - 1);
        char *name = trim(s + 1, &nlen);
        if (nlen == 0) {
            xray_err_set(err, "line %u: empty section name", lineno);
            return XRAY_EPARSE;
        }
        memcpy(st->section, name, nlen + 1);
        st->in_section = true;
        return visit(ctx, st->section, NULL, NULL);
    }

    if (!st->in_section) {
        xray_err_set(err, "line %u: a setting before any [section]", lineno);
        return XRAY_EPARSE;
    }
    size_t klen = strcspn(s, "=:");
    if (klen == n) {
        xray_err_set(err, "line %u: expected 'key = value'", lineno);
        return XRAY_EPARSE;
    }
    char *value = s + klen + 1;
    size_t vlen = n - klen - 1;
    char *key = trim(s, &klen);
    if (klen == 0) {
        xray_err_set(err, "line %u: empty key", lineno);
        return XRAY_EPARSE;
    }
    for (size_t i = 0; i < klen; i++)
        if (key[i] >= 'A' && key[i] <= 'Z')
            key[i] = (char)(key[i] + 32);
    value = trim(value, &vlen);
    cut_comment(value, &vlen);
    st->nested = vlen == 0;
    return visit(ctx, st->section, key, value);
}

int profile_parse(const char *data, size_t len,
                  int (*visit)(void *ctx, const char *section, const char *key, const char *value),
                  void *ctx, char err[XRAY_ERR_LEN])
{
    if (len > PROFILE_FILE_MAX) {
        xray_err_set(err, "file larger than %d bytes", PROFILE_FILE_MAX);
        return XRAY_ETOOBIG;
    }
    struct parse_state *st = malloc(sizeof(*st));
    if (st == NULL) {
        xray_err_set(err, "out of memory");
        return -ENOMEM;
    }
    st->in_section = false;
    st->nested = false;
    size_t pos = 0;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    int rc = 0;
    for (unsigned lineno = 1; pos < len && rc == 0; lineno++) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (data + pos)) : len - pos;
        if (n > PROFILE_LINE_MAX) {
            xray_err_set(err, "line %u longer than %d bytes", lineno, PROFILE_LINE_MAX);
            rc = XRAY_ETOOBIG;
            break;
        }
        if (memchr(data + pos, '\0', n) != NULL) {
            xray_err_set(err, "line %u has a NUL byte", lineno);
            rc = XRAY_EPARSE;
            break;
        }
        memcpy(st->line, data + pos, n);
        st->line[n] = '\0';
        pos += n + (nl != NULL);
        rc = parse_line(st, n, lineno, visit, ctx, err);
    }
    OPENSSL_cleanse(st, sizeof(*st));
    free(st);
    return rc;
}

struct find_ctx {
    enum profile_file kind;
    const char *profile;
    struct profile_values *v;
    bool match; /* the current section is the profile's */
};

/* The config file names profiles "[profile NAME]" (and the default "[default]", or
 * "[profile default]"); the credentials file names them "[NAME]". */
static bool section_matches(const struct find_ctx *f, const char *section)
{
    if (f->kind == PROFILE_CREDENTIALS)
        return strcmp(section, f->profile) == 0;
    if (strcmp(f->profile, "default") == 0 && strcmp(section, "default") == 0)
        return true;
    if (strncmp(section, "profile", 7) != 0 || !blank(section[7]))
        return false;
    const char *name = section + 8;
    while (blank(*name))
        name++;
    return strcmp(name, f->profile) == 0;
}

static int find_visit(void *ctx, const char *section, const char *key, const char *value)
{
    struct find_ctx *f = ctx;
    if (key == NULL) {
        f->match = section_matches(f, section);
        f->v->found |= f->match;
        return 0;
    }
    if (!f->match)
        return 0;
    for (int i = 0; i < PROFILE_KEYS_MAX && f->v->keys[i] != NULL; i++) {
        if (strcmp(key, f->v->keys[i]) != 0)
            continue;
        char *d = strdup(value);
        if (d == NULL)
            return -ENOMEM;
        if (f->v->values[i] != NULL) {
            OPENSSL_cleanse(f->v->values[i], strlen(f->v->values[i]));
            free(f->v->values[i]);
        }
        f->v->values[i] = d;
    }
    return 0;
}

int profile_find(const char *data, size_t len, enum profile_file kind, const char *profile,
                 struct profile_values *v, char err[XRAY_ERR_LEN])
{
    struct find_ctx f = {kind, profile, v, false};
    v->found = false;
    int rc = profile_parse(data, len, find_visit, &f, err);
    if (rc == -ENOMEM)
        xray_err_set(err, "out of memory");
    if (rc != 0)
        profile_values_free(v);
    return rc;
}

void profile_values_free(struct profile_values *v)
{
    for (int i = 0; i < PROFILE_KEYS_MAX; i++) {
        if (v->values[i] != NULL) {
            OPENSSL_cleanse(v->values[i], strlen(v->values[i]));
            free(v->values[i]);
        }
        v->values[i] = NULL;
    }
}

const char *profile_name(void)
{
    const char *p = getenv("AWS_PROFILE");
    if (p == NULL || p[0] == '\0')
        p = getenv("AWS_DEFAULT_PROFILE");
    return p != NULL && p[0] != '\0' ? p : "default";
}

static int profile_path(enum profile_file kind, char path[PROFILE_PATH_MAX], char *err)
{
    const char *var =
        kind == PROFILE_CREDENTIALS ? "AWS_SHARED_CREDENTIALS_FILE" : "AWS_CONFIG_FILE";
    const char *file = getenv(var);
    const char *home = getenv("HOME");
    int n;
    if (file != NULL && file[0] != '\0') {
        if (file[0] == '~' && file[1] == '/' && home != NULL && home[0] != '\0')
            n = snprintf(path, PROFILE_PATH_MAX, "%s%s", home, file + 1);
        else
            n = snprintf(path, PROFILE_PATH_MAX, "%s", file);
    } else if (home != NULL && home[0] != '\0') {
        n = snprintf(path, PROFILE_PATH_MAX, "%s/.aws/%s", home,
                     kind == PROFILE_CREDENTIALS ? "credentials" : "config");
    } else {
        snprintf(path, PROFILE_PATH_MAX, "~/.aws/%s",
                 kind == PROFILE_CREDENTIALS ? "credentials" : "config");
        xray_err_set(err, "%s and HOME not set", var);
        return -ENOENT;
    }
    if (n < 0 || n >= PROFILE_PATH_MAX) {
        xray_err_set(err, "%s: path too long", var);
        return XRAY_ETOOBIG;
    }
    return 0;
}

/* The whole file, bounded, NUL-terminated; *out is owned (wipe and free it). */
static int read_file(const char *path, char **out, size_t *len, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        xray_err_set(err, "%s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    int rc = 0;
    char *data = NULL;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        xray_err_set(err, "%s: %s", path, strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = XRAY_EPARSE;
        xray_err_set(err, "%s: not a regular file", path);
    } else if (st.st_size > PROFILE_FILE_MAX) {
        rc = XRAY_ETOOBIG;
        xray_err_set(err, "%s: larger than %d bytes", path, PROFILE_FILE_MAX);
    } else if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
        rc = -ENOMEM;
        xray_err_set(err, "%s: out of memory", path);
    }
    size_t got = 0;
    while (rc == 0 && got < (size_t)st.st_size) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            xray_err_set(err, "%s: %s", path, strerror(-rc));
        }
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (rc != 0) {
        free(data);
        return rc;
    }
    data[got] = '\0';
    *out = data;
    *len = got;
    return 0;
}

int profile_load(enum profile_file kind, const char *profile, struct profile_values *v,
                 char path[PROFILE_PATH_MAX], char err[XRAY_ERR_LEN])
{
    v->found = false;
    int rc = profile_path(kind, path, err);
    if (rc != 0)
        return rc;
    char *data = NULL;
    size_t len = 0;
    if ((rc = read_file(path, &data, &len, err)) != 0)
        return rc;
    char perr[XRAY_ERR_LEN] = "";
    rc = profile_find(data, len, kind, profile, v, perr);
    if (rc != 0)
        xray_err_set(err, "%s: %s", path, perr);
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}
