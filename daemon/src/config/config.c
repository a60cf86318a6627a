/* SPDX-License-Identifier: Apache-2.0 */
/* The four layers of settings: defaults, the first auto-discovered cfg.yaml, the -c
 * file, flags. Flags are read first (they name the -c file) into one slot per option
 * and stored last, so they win. Flag syntax is Go's flag package, as the reference
 * daemon uses it: one dash or two, "-x v" or "-x=v", parsing stops at the first
 * argument that is not a flag. This file never logs: it returns what went wrong. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config_yaml.h"
#include "options.h"

#define CONFIG_API_FALLBACK "127.0.0.1:2100" /* 127.0.0.1:2000 can't bind beside 0.0.0.0:2000 */

struct flag_slot {
    bool set;
    union options_value v;
};

static void flag_slots_free(struct flag_slot *slots)
{
    for (size_t i = 0; slots != NULL && i < options_count; i++)
        options_value_free(&options_table[i], &slots[i].v);
    free(slots);
}

/* One flag: its value is the text after '=', else the next argument. Returns 0, 1 or 2
 * as config_load(); *range_rc keeps the first out-of-range value for after the loop,
 * since a usage error further on must still win, as with the reference. */
static int flag_one(struct config *cfg, int argc, char **argv, int *i, struct flag_slot *slots,
                    FILE *warn, char *err, int *range_rc)
{
    const char *arg = argv[*i];
    const char *name = arg + (arg[1] == '-' ? 2 : 1);
    if (name[0] == '-' || name[0] == '=') {
        xray_err_set(err, "bad flag syntax: %s", arg);
        return 2;
    }
    const char *eq = strchr(name, '=');
    size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    int shown = (int)(name - arg + (ptrdiff_t)len); /* the flag as typed, without =value */
    const struct options_entry *e = options_by_flag(name, len);
    if (e == NULL) {
        xray_err_set(err, "unknown flag: %.*s", shown, arg);
        return 2;
    }
    const char *val;
    if (eq != NULL)
        val = eq + 1;
    else if (e->type == OPTIONS_BOOL)
        val = "true";
    else if (e->type == OPTIONS_OPTARG)
        val = *i + 1 < argc && argv[*i + 1][0] != '-' ? argv[++*i] : "";
    else if (*i + 1 < argc)
        val = argv[++*i]; /* even if it starts with '-', as Go does: -n -o sets region "-o" */
    else {
        xray_err_set(err, "flag needs an argument: %.*s", shown, arg);
        return 2;
    }

    char perr[XRAY_ERR_LEN];
    union options_value v;
    int rc = options_parse(e, val, &v, perr);
    if (rc == -ENOMEM) {
        xray_err_set(err, "out of memory");
        return 1;
    }
    if (rc == XRAY_EPARSE) {
        xray_err_set(err, "invalid value for flag %.*s: %s", shown, arg, perr);
        return 2;
    }
    if (rc == XRAY_ECONFIG) {
        if (*range_rc == 0)
            xray_err_set(err, "flag %.*s: %s", shown, arg, perr);
        *range_rc = 1;
        return 0;
    }
    if (rc > 0) {
        /* The reference keeps the config file's level for a name it doesn't know. */
        if (warn != NULL)
            fprintf(warn, CONFIG_WARNING "flag %.*s: %s; keeping the configured level\n", shown,
                    arg, perr);
        return 0;
    }
    if (e->key == NULL) {
        options_store(cfg, e, &v); /* -c, -h, -v, --health-check: no file sets them */
    } else {
        struct flag_slot *s = &slots[e - options_table];
        options_value_free(e, &s->v);
        s->v = v;
        s->set = true;
    }
    return 0;
}

static int flags_parse(struct config *cfg, int argc, char **argv, struct flag_slot *slots,
                       FILE *warn, char *err)
{
    int range_rc = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0 || arg[0] != '-' || arg[1] == '\0') {
            /* Go's flag package stops here and the reference ignores the rest. */
            int from = strcmp(arg, "--") == 0 ? i + 1 : i;
            if (from < argc && warn != NULL)
                fprintf(warn,
                        CONFIG_WARNING
                        "ignoring \"%s\" and the arguments after it: a flag starts with -\n",
                        argv[from]);
            break;
        }
        int rc = flag_one(cfg, argc, argv, &i, slots, warn, err, &range_rc);
        if (rc != 0)
            return rc;
        if (cfg->show_help)
            return 0; /* as Go: -h ends parsing, whatever follows */
    }
    return range_rc;
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* The first file of search that exists, then the -c file. */
static int config_files(struct config *cfg, const char *search, FILE *warn, char *err)
{
    for (const char *p = search; *p != '\0';) {
        size_t n = strcspn(p, ":");
        char path[PATH_MAX];
        struct stat st;
        if (n > 0 && n < sizeof(path)) {
            memcpy(path, p, n);
            path[n] = '\0';
            if (stat(path, &st) == 0) {
                /* The -c file alone, when it is this one: warnings once, errors strict. */
                if (cfg->config_file[0] != '\0' && same_file(path, cfg->config_file))
                    break;
                char *copy = strdup(path);
                if (copy == NULL)
                    return -ENOMEM;
                free(cfg->auto_config_file);
                cfg->auto_config_file = copy;
                int rc = config_yaml_load(cfg, path, false, warn, err);
                if (rc != 0)
                    return rc;
                break;
            }
        }
        p += n;
        if (*p == ':')
            p++;
    }
    if (cfg->config_file[0] != '\0')
        return config_yaml_load(cfg, cfg->config_file, true, warn, err);
    return 0;
}

int config_buckets(const char *list, double *out, size_t max, size_t *n, char err[XRAY_ERR_LEN])
{
    *n = 0;
    for (const char *p = list; *p != '\0';) {
        while (*p == ' ')
            p++;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno != 0 || !(v > 0) || v > 1e9) {
            xray_err_set(err, "--metrics-buckets: \"%s\" is not a positive number of seconds", p);
            return XRAY_ECONFIG;
        }
        if (*n > 0 && v <= out[*n - 1]) {
            xray_err_set(err, "--metrics-buckets: bounds must increase (%g after %g)", v,
                         out[*n - 1]);
            return XRAY_ECONFIG;
        }
        if (*n == max) {
            xray_err_set(err, "--metrics-buckets: at most %zu bounds", max);
            return XRAY_ECONFIG;
        }
        out[(*n)++] = v;
        p = end;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
        else if (*p != '\0') {
            xray_err_set(err, "--metrics-buckets: expected a comma at \"%s\"", p);
            return XRAY_ECONFIG;
        }
    }
    if (*n == 0) {
        xray_err_set(err, "--metrics-buckets: no bounds");
        return XRAY_ECONFIG;
    }
    return 0;
}

/* Settings whose checks go beyond one value's type and range. */
static int config_check(const struct config *cfg, char *err)
{
    double b[CONFIG_BUCKETS_MAX];
    size_t n;
    if (config_buckets(cfg->metrics_buckets, b, CONFIG_BUCKETS_MAX, &n, err) != 0)
        return 1;
    if (cfg->cloudwatch_storage_resolution != 1 && cfg->cloudwatch_storage_resolution != 60) {
        xray_err_set(err, "--cloudwatch-storage-resolution: 1 or 60, not %d",
                     cfg->cloudwatch_storage_resolution);
        return 1;
    }
    return 0;
}

int config_load_search(struct config *cfg, int argc, char **argv, const char *search, FILE *warn,
                       char err[XRAY_ERR_LEN])
{
    char local_err[XRAY_ERR_LEN];
    if (err == NULL)
        err = local_err;
    err[0] = '\0';
    memset(cfg, 0, sizeof(*cfg));
    struct flag_slot *slots = calloc(options_count, sizeof(*slots));
    cfg->auto_config_file = strdup("");
    if (slots == NULL || cfg->auto_config_file == NULL || options_defaults(cfg) != 0) {
        free(slots);
        xray_err_set(err, "out of memory");
        return 1;
    }
    int rc = flags_parse(cfg, argc, argv, slots, warn, err);
    if (rc == 0 && !cfg->show_help && !cfg->show_version &&
        config_files(cfg, search != NULL ? search : "", warn, err) != 0)
        rc = 1;
    for (size_t i = 0; rc == 0 && !cfg->show_help && i < options_count; i++)
        if (slots[i].set)
            options_store(cfg, &options_table[i], &slots[i].v);
    flag_slots_free(slots);
    if (rc == 0 && !cfg->show_help && !cfg->show_version)
        rc = config_check(cfg, err);
    if (rc == 0)
        err[0] = '\0'; /* an ignored auto-discovered file may have left its reason */
    return rc;
}

int config_load(struct config *cfg, int argc, char **argv, FILE *warn, char err[XRAY_ERR_LEN])
{
    const char *search = getenv(CONFIG_SEARCH_ENV);
    return config_load_search(cfg, argc, argv, search != NULL ? search : CONFIG_SEARCH_PATH, warn,
                              err);
}

void config_destroy(struct config *cfg)
{
    options_free(cfg);
    free(cfg->auto_config_file);
    cfg->auto_config_file = NULL;
}

void config_usage(FILE *out)
{
    options_usage(out);
}

void config_markdown(FILE *out)
{
    options_markdown(out);
}

/* localhost, 127.0.0.0/8, ::1 or ::ffff:127.x.y.z, in host:port or [host]:port. */
static bool config_is_loopback(const char *addr)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *h = addr;
    size_t n;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL)
            return false;
        h = addr + 1;
        n = (size_t)(close - h);
    } else {
        const char *colon = strrchr(addr, ':');
        n = colon != NULL ? (size_t)(colon - addr) : strlen(addr);
    }
    if (n == 0 || n >= sizeof(host))
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

const char *config_api_address(const struct config *cfg)
{
    if (cfg->api_address != NULL && cfg->api_address[0] != '\0')
        return cfg->api_address;
    if (cfg->tcp_address != NULL && config_is_loopback(cfg->tcp_address))
        return cfg->tcp_address;
    return CONFIG_API_FALLBACK;
}

const char *config_metrics_address(const struct config *cfg)
{
    if (cfg->metrics_address != NULL && cfg->metrics_address[0] != '\0')
        return cfg->metrics_address;
    return config_api_address(cfg);
}
