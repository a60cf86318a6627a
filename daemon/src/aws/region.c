/* SPDX-License-Identifier: Apache-2.0 */
/* Region resolution: walks a fixed list of sources in the reference daemon's order and
 * takes the first that names a region. It reads the environment, two small files and
 * instance metadata (a blocking lookup of at most a second, imds.h: this runs once at
 * start-up, before the loop). Every source that had nothing says why, so a failure
 * explains itself. */
#include "aws/region.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "aws/imds.h"
#include "aws/profile.h"

#define REGION_ECS_FILE_MAX (256 * 1024) /* the agent writes a few KB per container */

struct region_args {
    const char *flag_region;
    const char *config_region;
};

/* A source returns 1 and fills out, or 0 and says in why (a short phrase) why not. */
struct region_source {
    const char *name;  /* reported in *source */
    const char *label; /* named in errors */
    bool metadata;     /* a metadata service or file: skipped in local mode (-o) */
    int (*get)(const struct region_args *a, char out[REGION_MAX], char *why, size_t whylen);
};

bool region_valid(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return n > 0 && n < REGION_MAX;
}

static int take(const char *value, char out[REGION_MAX], char *why, size_t whylen)
{
    if (value == NULL || value[0] == '\0') {
        snprintf(why, whylen, "not set");
        return 0;
    }
    if (!region_valid(value)) {
        snprintf(why, whylen, "is not a region name (expected lower-case letters, digits, '-')");
        return XRAY_ECONFIG;
    }
    snprintf(out, REGION_MAX, "%s", value);
    return 1;
}

static int from_flag(const struct region_args *a, char out[REGION_MAX], char *why, size_t whylen)
{
    return take(a->flag_region, out, why, whylen);
}

static int from_config(const struct region_args *a, char out[REGION_MAX], char *why, size_t whylen)
{
    return take(a->config_region, out, why, whylen);
}

static int from_env(const struct region_args *a, char out[REGION_MAX], char *why, size_t whylen)
{
    (void)a;
    return take(getenv("AWS_REGION"), out, why, whylen);
}

/* Whole small file into a NUL-terminated buffer the caller frees, or NULL (why says). */
static char *read_small(const char *path, size_t max, size_t *len, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *data = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        snprintf(why, whylen, "%s: not a regular file of at most %zu bytes", path, max);
    } else if ((data = malloc((size_t)st.st_size + 1)) != NULL) {
        size_t got = 0;
        ssize_t r;
        while (
            got < (size_t)st.st_size &&
            ((r = read(fd, data + got, (size_t)st.st_size - got)) > 0 || (r < 0 && errno == EINTR)))
            got += r > 0 ? (size_t)r : 0;
        data[got] = '\0';
        *len = got;
    } else {
        snprintf(why, whylen, "%s: out of memory", path);
    }
    close(fd);
    return data;
}

/* ECS writes the container metadata file when ECS_ENABLE_CONTAINER_METADATA=true; its
 * TaskARN is arn:aws:ecs:REGION:ACCOUNT:task/..., the region being the 4th field. */
static int from_ecs(const struct region_args *a, char out[REGION_MAX], char *why, size_t whylen)
{
    (void)a;
    const char *enabled = getenv("ECS_ENABLE_CONTAINER_METADATA");
    if (enabled == NULL || strcasecmp(enabled, "true") != 0) {
        snprintf(why, whylen, "ECS_ENABLE_CONTAINER_METADATA not true");
        return 0;
    }
    const char *path = getenv("ECS_CONTAINER_METADATA_FILE");
    if (path == NULL || path[0] == '\0') {
        snprintf(why, whylen, "ECS_CONTAINER_METADATA_FILE not set");
        return 0;
    }
    size_t len = 0;
    char *data = read_small(path, REGION_ECS_FILE_MAX, &len, why, whylen);
    if (data == NULL)
        return 0;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    free(data);
    const char *arn = json_string_value(json_object_get(root, "TaskARN"));
    int rc = 0;
    if (arn == NULL) {
        snprintf(why, whylen, "%s: no TaskARN string in a JSON object", path);
    } else {
        const char *p = arn;
        for (int i = 0; i < 3 && p != NULL; i++) {
            p = strchr(p, ':');
            if (p != NULL)
                p++;
        }
        const char *end = p != NULL ? strchr(p, ':') : NULL;
        char region[REGION_MAX] = "";
        if (end != NULL && (size_t)(end - p) < REGION_MAX)
            memcpy(region, p, (size_t)(end - p));
        if (region_valid(region)) {
            memcpy(out, region, REGION_MAX);
            rc = 1;
        } else {
            snprintf(why, whylen, "%s: TaskARN has no region field", path);
        }
    }
    json_decref(root);
    return rc;
}

/* placement/region of the instance metadata (IMDSv2). Any failure only means "not
 * here": a host without IMDS must still find its region in the shared config. */
static int from_imds(const struct region_args *a, char out[REGION_MAX], char *why, size_t whylen)
{
    (void)a;
    char value[IMDS_VALUE_MAX];
    char err[XRAY_ERR_LEN] = "";
    if (imds_startup_get("placement/region", value, err) != 0) {
        snprintf(why, whylen, "%s", err);
        return 0;
    }
    if (!region_valid(value)) {
        snprintf(why, whylen, "placement/region is not a region name");
        return 0;
    }
    memcpy(out, value, strlen(value) + 1); /* region_valid: shorter than REGION_MAX */
    return 1;
}

/* The region key of the profile in the shared config file. */
static int from_profile(const struct region_args *a, char out[REGION_MAX], char *why, size_t whylen)
{
    (void)a;
    const char *profile = profile_name();
    struct profile_values v = {.keys = {"region", NULL}};
    char path[PROFILE_PATH_MAX] = "";
    char err[XRAY_ERR_LEN] = "";
    int rc = profile_load(PROFILE_CONFIG, profile, &v, path, err);
    if (rc != 0) {
        snprintf(why, whylen, "%s", err);
        return 0;
    }
    if (v.values[0] == NULL) {
        snprintf(why, whylen, "no region for profile \"%s\" in %s", profile, path);
        profile_values_free(&v);
        return 0;
    }
    rc = take(v.values[0], out, why, whylen);
    profile_values_free(&v);
    return rc;
}

/* The reference daemon's order (daemon-compat.md, "Region"). */
static const struct region_source region_sources[] = {
    {"flag", "-n/--region", false, from_flag},
    {"config", "Region (config file)", false, from_config},
    {"AWS_REGION", "AWS_REGION", false, from_env},
    {"ecs-metadata", "ECS metadata", true, from_ecs},
    {"imds", "IMDS", true, from_imds},
    {"profile", "shared config", false, from_profile},
};

int region_resolve(const char *flag_region, const char *config_region, bool local_mode,
                   char out[REGION_MAX], const char **source, char err[XRAY_ERR_LEN])
{
    struct region_args a = {flag_region, config_region};
    char msg[XRAY_ERR_LEN];
    int len = snprintf(msg, sizeof(msg), "no AWS region:");
    out[0] = '\0';
    *source = NULL;
    for (size_t i = 0; i < sizeof(region_sources) / sizeof(region_sources[0]); i++) {
        const struct region_source *s = &region_sources[i];
        char why[XRAY_ERR_LEN] = "";
        int rc;
        if (s->metadata && local_mode) {
            snprintf(why, sizeof(why), "skipped in local mode (-o)");
            rc = 0;
        } else {
            rc = s->get(&a, out, why, sizeof(why));
        }
        if (rc == 1) {
            *source = s->name;
            return 0;
        }
        if (rc < 0) {
            if (err != NULL)
                snprintf(err, XRAY_ERR_LEN, "region from %s %s", s->label, why);
            out[0] = '\0';
            return rc;
        }
        if (len >= 0 && (size_t)len < sizeof(msg))
            len += snprintf(msg + len, sizeof(msg) - (size_t)len, "%s %s: %s", i > 0 ? ";" : "",
                            s->label, why);
    }
    if (err != NULL)
        snprintf(err, XRAY_ERR_LEN, "%s", msg);
    return XRAY_ENOREGION;
}
