/* SPDX-License-Identifier: Apache-2.0 */
/* Reading one cfg.yaml into struct config. Internal to src/config/; config.c decides
 * which files are read and in what order. */
#ifndef XRAYD_CONFIG_YAML_H
#define XRAYD_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"

struct config;

#define CONFIG_YAML_MAX_BYTES (1024 * 1024) /* a cfg.yaml is a few hundred bytes */
#define CONFIG_YAML_MAX_DEPTH 64
#define CONFIG_WARNING        "xrayd: warning: " /* starts each line written to warn */

/* Applies the YAML document in data (len bytes; name is used in messages) to cfg.
 * strict (a -c file): a missing Version, an unknown key, a value of the wrong type or
 * out of range, or a syntax error returns XRAY_ECONFIG with err naming name, line and
 * key; nothing is applied from a file with a syntax error, other values may be.
 * Not strict (an auto-discovered file): the same problems are written to warn (one
 * line each, when warn is not NULL) and the key, or the whole file for a syntax error,
 * is ignored; the return is 0. Obsolete keys are warnings either way. -ENOMEM. */
int config_yaml_parse(struct config *cfg, const char *name, const char *data, size_t len,
                      bool strict, FILE *warn, char err[XRAY_ERR_LEN]);

/* Reads path (at most CONFIG_YAML_MAX_BYTES) and calls config_yaml_parse(). A file
 * that cannot be read or is too big is an error when strict, a warning otherwise. */
int config_yaml_load(struct config *cfg, const char *path, bool strict, FILE *warn,
                     char err[XRAY_ERR_LEN]);

#endif
