/* SPDX-License-Identifier: Apache-2.0 */
/* The AWS shared files (~/.aws/credentials and ~/.aws/config): an INI parser for
 * outside input, with hard bounds, and the lookup of one profile's keys in the way
 * the AWS SDKs do it. Used by the profile credential provider and by region.c. Pure
 * parsing plus whole-file reads; any thread. */
#ifndef XRAYD_PROFILE_H
#define XRAYD_PROFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define PROFILE_FILE_MAX (1024 * 1024) /* bytes of one shared file */
#define PROFILE_LINE_MAX 8192          /* bytes of one line; STS tokens are ~1-2 KB */
#define PROFILE_PATH_MAX 4096
#define PROFILE_KEYS_MAX 8 /* keys one lookup asks for */

enum profile_file {
    PROFILE_CREDENTIALS, /* AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials: "[name]" */
    PROFILE_CONFIG,      /* AWS_CONFIG_FILE, ~/.aws/config: "[profile name]", "[default]" */
};

/* Parses data[0..len): lines of "[section]", "key = value" (or "key: value"),
 * comments starting with '#' or ';' (also after a value, when a blank precedes them),
 * blank lines; CRLF and a UTF-8 BOM are fine; indented lines under a key with an empty
 * value are that key's nested settings and skipped. visit is called for each section
 * header (key and value NULL) and each pair inside a section, with NUL-terminated
 * strings borrowed for the call: section name trimmed, key trimmed and lower-cased,
 * value trimmed. A nonzero return from visit stops parsing and is returned.
 * 0, XRAY_ETOOBIG (file or a line past its bound) or XRAY_EPARSE; err names the line
 * number and never quotes the line (it may hold a secret). */
int profile_parse(const char *data, size_t len,
                  int (*visit)(void *ctx, const char *section, const char *key, const char *value),
                  void *ctx, char err[XRAY_ERR_LEN]);

/* One profile's keys: fill keys (lower-case, borrowed, NULL after the last), read
 * values (owned; NULL when absent; free with profile_values_free). */
struct profile_values {
    const char *keys[PROFILE_KEYS_MAX + 1];
    char *values[PROFILE_KEYS_MAX];
    bool found; /* the profile's section exists */
};

/* Looks profile up in a file's contents; a later value of a key wins. 0 (see
 * v->found), -ENOMEM or profile_parse's errors. */
int profile_find(const char *data, size_t len, enum profile_file kind, const char *profile,
                 struct profile_values *v, char err[XRAY_ERR_LEN]);

/* Reads the file the SDKs would read for kind (environment variable, else under
 * $HOME; a leading "~/" is expanded) into path and looks profile up in it.
 * 0 (see v->found), -ENOENT (no such file, or no HOME to find it under), another
 * -errno, XRAY_ETOOBIG or XRAY_EPARSE; err names the file, never its contents. */
int profile_load(enum profile_file kind, const char *profile, struct profile_values *v,
                 char path[PROFILE_PATH_MAX], char err[XRAY_ERR_LEN]);

/* Wipes and frees the values; keys stay. */
void profile_values_free(struct profile_values *v);

/* The profile the SDKs would use: AWS_PROFILE, AWS_DEFAULT_PROFILE, else "default".
 * Borrowed from the environment. */
const char *profile_name(void);

#endif
