/* SPDX-License-Identifier: Apache-2.0 */
/* One cfg.yaml, read with libyaml's event parser: the document is a mapping of keys
 * and sections (Socket, Logging, Xrayd) of keys, so two levels are walked and anything
 * deeper is skipped with a depth limit, never recursed into. Values are parsed into one
 * slot per option as they come (a repeated key: the last wins) and stored into the
 * config only once the whole file has been read without error, so a file that is
 * refused or ignored leaves nothing behind. */
#include "config_yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config.h"
#include "options.h"

#define CONFIG_YAML_KEY_MAX 128

struct slot {
    bool set;
    union options_value v;
};

struct yctx {
    yaml_parser_t parser;
    const char *name;
    const char *data;
    size_t len;
    bool strict;
    FILE *warn;
    char *err;
    struct slot *slots;
};

static int line_of(const yaml_event_t *ev)
{
    return (int)ev->start_mark.line + 1;
}

static void warning(struct yctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warning(struct yctx *c, int line, const char *fmt, ...)
{
    if (c->warn == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->warn, CONFIG_WARNING "%s:%d: ", c->name, line);
    vfprintf(c->warn, fmt, ap);
    fputc('\n', c->warn);
    va_end(ap);
}

/* A problem with one key: the end of a -c file, a warning in an auto-discovered one. */
static int problem(struct yctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int problem(struct yctx *c, int line, const char *fmt, ...)
{
    int rc = 0;
    va_list ap;
    va_start(ap, fmt);
    if (c->strict) {
        int n = snprintf(c->err, XRAY_ERR_LEN, "%s:%d: ", c->name, line);
        if (n >= 0 && n < XRAY_ERR_LEN)
            vsnprintf(c->err + n, XRAY_ERR_LEN - (size_t)n, fmt, ap);
        rc = XRAY_ECONFIG;
    } else if (c->warn != NULL) {
        fprintf(c->warn, CONFIG_WARNING "%s:%d: ", c->name, line);
        vfprintf(c->warn, fmt, ap);
        fputs(" (ignored)\n", c->warn);
    }
    va_end(ap);
    return rc;
}

/* A problem with the whole file: it cannot be read any further. */
static int fatal(struct yctx *c, int line, const char *msg)
{
    snprintf(c->err, XRAY_ERR_LEN, "%s:%d: %s", c->name, line, msg);
    return XRAY_EPARSE;
}

static int next(struct yctx *c, yaml_event_t *ev)
{
    if (yaml_parser_parse(&c->parser, ev))
        return 0;
    const yaml_parser_t *p = &c->parser;
    if (p->error == YAML_MEMORY_ERROR) {
        snprintf(c->err, XRAY_ERR_LEN, "%s: out of memory", c->name);
        return -ENOMEM;
    }
    size_t line = p->problem_mark.line + 1;
    if (p->error == YAML_READER_ERROR) {
        /* Encoding errors carry a byte offset, not a mark. */
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < c->len; i++)
            line += c->data[i] == '\n';
    }
    snprintf(c->err, XRAY_ERR_LEN, "%s:%zu: YAML syntax error: %s%s%s%s", c->name, line,
             p->problem != NULL ? p->problem : "unknown", p->context != NULL ? " (" : "",
             p->context != NULL ? p->context : "", p->context != NULL ? ")" : "");
    return XRAY_EPARSE;
}

/* Consumes the rest of the node ev starts (ev itself stays the caller's). */
static int skip(struct yctx *c, const yaml_event_t *ev)
{
    if (ev->type != YAML_MAPPING_START_EVENT && ev->type != YAML_SEQUENCE_START_EVENT)
        return 0;
    int depth = 1;
    while (depth > 0) {
        yaml_event_t e;
        int rc = next(c, &e);
        if (rc != 0)
            return rc;
        if (e.type == YAML_MAPPING_START_EVENT || e.type == YAML_SEQUENCE_START_EVENT)
            depth++;
        else if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT)
            depth--;
        int line = line_of(&e);
        yaml_event_delete(&e);
        if (depth > CONFIG_YAML_MAX_DEPTH)
            return fatal(c, line, "nested too deep");
    }
    return 0;
}

static bool is_null(const yaml_event_t *ev)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp((const char *)ev->data.scalar.value, nulls[i]) == 0)
            return true;
    return false;
}

static const char *node_kind(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    default:
        return "an alias";
    }
}

/* The value ev of key (its line given) that is not a section. */
static int parse_value(struct yctx *c, const char *key, int line, const yaml_event_t *ev)
{
    const struct options_entry *e = options_by_key(key);
    if (e == NULL) {
        const char *hint = options_obsolete(key);
        int rc = skip(c, ev);
        if (rc != 0)
            return rc;
        if (hint == NULL)
            return problem(c, line, "unknown key %s", key);
        warning(c, line, "%s is obsolete and ignored%s%s", key, hint[0] ? "; " : "", hint);
        return 0;
    }
    if (ev->type != YAML_SCALAR_EVENT) {
        int rc = skip(c, ev);
        return rc != 0 ? rc : problem(c, line, "%s: expected a value, not %s", key, node_kind(ev));
    }
    const char *text = (const char *)ev->data.scalar.value;
    if (strlen(text) != ev->data.scalar.length)
        return problem(c, line, "%s: the value holds a NUL byte", key);
    char perr[XRAY_ERR_LEN];
    union options_value v;
    int rc = options_parse(e, is_null(ev) ? NULL : text, &v, perr);
    if (rc == -ENOMEM) {
        snprintf(c->err, XRAY_ERR_LEN, "%s: out of memory", c->name);
        return rc;
    }
    if (rc > 0) {
        warning(c, line, "%s: %s; keeping the level set before", key, perr);
        return 0;
    }
    if (rc < 0)
        return problem(c, line, "%s: %s", key, perr);
    struct slot *s = &c->slots[e - options_table];
    options_value_free(e, &s->v);
    s->v = v;
    s->set = true;
    return 0;
}

/* The keys of a mapping whose start was just read; section is NULL at the top. */
static int parse_mapping(struct yctx *c, const char *section)
{
    for (;;) {
        yaml_event_t k, v;
        int rc = next(c, &k);
        if (rc != 0)
            return rc;
        if (k.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&k);
            return 0;
        }
        int line = line_of(&k);
        char key[CONFIG_YAML_KEY_MAX];
        bool named = k.type == YAML_SCALAR_EVENT &&
                     strlen((const char *)k.data.scalar.value) == k.data.scalar.length;
        bool dotted = false; /* "Socket.UDPAddress:" is not the key UDPAddress of Socket */
        if (named) {
            const char *raw = (const char *)k.data.scalar.value;
            int n = snprintf(key, sizeof(key), "%s%s%s", section ? section : "", section ? "." : "",
                             raw);
            named = n > 0 && (size_t)n < sizeof(key);
            dotted = strchr(raw, '.') != NULL;
        }
        rc = skip(c, &k);
        yaml_event_delete(&k);
        if (rc == 0)
            rc = next(c, &v);
        if (rc != 0)
            return rc;
        if (!named) {
            rc = skip(c, &v);
            if (rc == 0)
                rc = problem(c, line, "a key must be a short plain name");
        } else if (dotted && options_obsolete(key) == NULL) {
            rc = skip(c, &v);
            if (rc == 0)
                rc = problem(c, line, "unknown key %s", key);
        } else if (section == NULL && options_is_section(key)) {
            if (v.type == YAML_MAPPING_START_EVENT) {
                rc = parse_mapping(c, key);
            } else if (v.type == YAML_SCALAR_EVENT && is_null(&v)) {
                rc = 0; /* an empty section: every key keeps its default */
            } else if (options_obsolete(key) != NULL) {
                rc = parse_value(c, key, line, &v);
            } else {
                rc = skip(c, &v);
                if (rc == 0)
                    rc = problem(c, line, "%s: expected a mapping of keys", key);
            }
        } else {
            rc = parse_value(c, key, line, &v);
        }
        yaml_event_delete(&v);
        if (rc != 0)
            return rc;
    }
}

/* The first document of the stream; later ones are not read, as with the reference. */
static int parse_document(struct yctx *c)
{
    yaml_event_t ev;
    int rc = next(c, &ev); /* stream start */
    if (rc != 0)
        return rc;
    yaml_event_delete(&ev);
    if ((rc = next(c, &ev)) != 0)
        return rc;
    bool empty = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (empty || (rc = next(c, &ev)) != 0)
        return rc;
    if (ev.type == YAML_MAPPING_START_EVENT)
        rc = parse_mapping(c, NULL);
    else if (ev.type != YAML_SCALAR_EVENT || !is_null(&ev))
        rc = fatal(c, line_of(&ev), "the document must be a mapping of keys");
    yaml_event_delete(&ev);
    if (rc == 0 && (rc = next(c, &ev)) == 0) /* document end: its errors count too */
        yaml_event_delete(&ev);
    return rc;
}

int config_yaml_parse(struct config *cfg, const char *name, const char *data, size_t len,
                      bool strict, FILE *warn, char err[XRAY_ERR_LEN])
{
    char local_err[XRAY_ERR_LEN];
    struct yctx c = {
        .name = name,
        .data = data,
        .len = len,
        .strict = strict,
        .warn = warn,
        .err = err != NULL ? err : local_err,
    };
    c.err[0] = '\0';
    if (len > CONFIG_YAML_MAX_BYTES) {
        snprintf(c.err, XRAY_ERR_LEN, "%s: larger than %d MB", name, CONFIG_YAML_MAX_BYTES >> 20);
        if (strict)
            return XRAY_ECONFIG;
        if (warn != NULL)
            fprintf(warn, CONFIG_WARNING "%s; the file is ignored\n", c.err);
        return 0;
    }
    c.slots = calloc(options_count, sizeof(*c.slots));
    if (c.slots == NULL || !yaml_parser_initialize(&c.parser)) {
        free(c.slots);
        snprintf(c.err, XRAY_ERR_LEN, "%s: out of memory", name);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)data, len);
    int rc = parse_document(&c);
    for (size_t i = 0; rc == 0 && i < options_count; i++) {
        const struct options_entry *e = &options_table[i];
        if ((e->flags & OPTIONS_REQUIRED) && !c.slots[i].set) {
            if (strict) {
                snprintf(c.err, XRAY_ERR_LEN, "%s: %s is missing; it must be %d or %d", name,
                         e->key, e->min, e->max);
                rc = XRAY_ECONFIG;
            } else if (warn != NULL) {
                fprintf(warn, CONFIG_WARNING "%s: %s is missing; using %s\n", name, e->key, e->def);
            }
        }
    }
    for (size_t i = 0; i < options_count; i++) {
        if (rc == 0 && c.slots[i].set)
            options_store(cfg, &options_table[i], &c.slots[i].v);
        options_value_free(&options_table[i], &c.slots[i].v);
    }
    free(c.slots);
    yaml_parser_delete(&c.parser);
    if (rc == XRAY_EPARSE && !strict) {
        if (warn != NULL)
            fprintf(warn, CONFIG_WARNING "%s; the file is ignored\n", c.err);
        return 0;
    }
    return rc == XRAY_EPARSE ? XRAY_ECONFIG : rc;
}

int config_yaml_load(struct config *cfg, const char *path, bool strict, FILE *warn,
                     char err[XRAY_ERR_LEN])
{
    char local_err[XRAY_ERR_LEN];
    char *e = err != NULL ? err : local_err;
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    if (f == NULL) {
        snprintf(e, XRAY_ERR_LEN, "%s: %s", path, strerror(errno));
        rc = XRAY_ECONFIG;
    }
    /* Read at most one byte past the limit: enough to refuse a bigger file. */
    while (rc == 0 && len <= CONFIG_YAML_MAX_BYTES) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            if (ncap > CONFIG_YAML_MAX_BYTES + 1)
                ncap = CONFIG_YAML_MAX_BYTES + 1;
            char *p = realloc(data, ncap);
            if (p == NULL) {
                snprintf(e, XRAY_ERR_LEN, "%s: out of memory", path);
                rc = -ENOMEM;
                break;
            }
            data = p;
            cap = ncap;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                snprintf(e, XRAY_ERR_LEN, "%s: %s", path, strerror(errno));
                rc = XRAY_ECONFIG;
            }
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    if (rc == 0)
        rc = config_yaml_parse(cfg, path, data != NULL ? data : "", len, strict, warn, e);
    free(data);
    if (rc == XRAY_ECONFIG && !strict) {
        if (warn != NULL)
            fprintf(warn, CONFIG_WARNING "%s; the file is ignored\n", e);
        return 0;
    }
    return rc;
}
