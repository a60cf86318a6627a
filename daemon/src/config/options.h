/* SPDX-License-Identifier: Apache-2.0 */
/* The options table: one row per setting, naming its flags, its cfg.yaml key, its type,
 * default and help. Flags, cfg.yaml, --help and docs/configuration.md are all driven
 * from it, so adding a setting is adding a row. Internal to src/config/. */
#ifndef XRAYD_CONFIG_OPTIONS_H
#define XRAYD_CONFIG_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"

struct config;

enum options_type {
    OPTIONS_STRING, /* char *; "" falls back to the default */
    OPTIONS_ADDR,   /* char *; host:port, [v6]:port or :port */
    OPTIONS_BOOL,   /* bool; a flag alone means true */
    OPTIONS_INT,    /* int within [min, max]; 0 falls back to the default */
    OPTIONS_LEVEL,  /* char *; a log level name (log_level_parse) */
    OPTIONS_CHOICE, /* char *; "" or one of the '|'-separated words of metavar */
    OPTIONS_OPTARG, /* char *; flag only, its value optional; also sets the bool at aux */
};

#define OPTIONS_REQUIRED 1u /* must be present and non-zero in a -c file (Version) */

struct options_entry {
    const char *flag; /* long flag without dashes; NULL: cfg.yaml only */
    char short_flag;  /* 0: none */
    const char *key;  /* cfg.yaml path such as "Socket.UDPAddress"; NULL: flag only */
    enum options_type type;
    const char *def;     /* default, as text */
    size_t offset;       /* offsetof(struct config, field) */
    size_t aux;          /* OPTIONS_OPTARG: offset of the bool it sets */
    int min, max;        /* OPTIONS_INT: allowed range, besides 0 for the default */
    unsigned flags;      /* OPTIONS_REQUIRED */
    const char *metavar; /* the value's name in --help; the choices for OPTIONS_CHOICE */
    const char *help;
};

union options_value {
    char *s; /* owned */
    int i;
    bool b;
};

extern const struct options_entry options_table[];
extern const size_t options_count;

/* Finds a row by flag name (long, or one character for the short form; len bytes of
 * name, no dashes) or by cfg.yaml key. NULL when there is none. */
const struct options_entry *options_by_flag(const char *name, size_t len);
const struct options_entry *options_by_key(const char *key);

/* True when name is a section: a key whose value is a mapping of keys (Socket). */
bool options_is_section(const char *name);

/* For a key xrayd no longer reads (Socket.BufferSizeKB, Processor.*, ...): a hint for
 * the user ("" when there is none). NULL when the key is not obsolete. */
const char *options_obsolete(const char *key);

/* Parses text (NULL: a YAML null) for e into v: "" and 0 become the default. Returns 0;
 * XRAY_EPARSE when text is not of e's type; XRAY_ECONFIG when it is, but out of range;
 * -ENOMEM; or 1 when the value is to be ignored with a warning (an unknown log level).
 * err says why whenever the return is not 0. v->s is owned by the caller on 0. */
int options_parse(const struct options_entry *e, const char *text, union options_value *v,
                  char err[XRAY_ERR_LEN]);
/* Stores v into cfg, taking ownership of v->s. */
void options_store(struct config *cfg, const struct options_entry *e, union options_value *v);
void options_value_free(const struct options_entry *e, union options_value *v);

/* Sets every row's default into a zeroed cfg. 0 or -ENOMEM. */
int options_defaults(struct config *cfg);
/* Frees every string the table owns in cfg and sets it to NULL. */
void options_free(struct config *cfg);

/* --help and docs/configuration.md, both from the table. */
void options_usage(FILE *out);
void options_markdown(FILE *out);

#endif
