/* SPDX-License-Identifier: Apache-2.0 */
/* The document pool: one malloc per document at its own size, counted in bytes
 * against a fixed budget. It keeps no free lists and never grows past max_bytes:
 * used_bytes is always the sum of pool_doc_bytes() over the live documents. The
 * default budget comes from the cgroup memory limit, so a container gets 1 % of what
 * it may use rather than 1 % of the host. */
#include "pool.h"

#include <assert.h>
#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POOL_PATH_MAX      4096
#define POOL_NO_HOST_LIMIT (UINT64_C(1) << 62) /* "absurdly large" when RAM is unknown */

struct pool {
    size_t max_bytes;
    size_t used_bytes;
    size_t docs;
};

struct pool *pool_create(size_t max_bytes)
{
    struct pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->max_bytes = max_bytes;
    return pool;
}

void pool_destroy(struct pool *pool)
{
    if (pool == NULL)
        return;
    /* Documents still out are the holder's leak, not ours to free: we keep no list. */
    free(pool);
}

struct doc *pool_alloc(struct pool *pool, const void *data, size_t len, uint64_t now_ms)
{
    if (len > UINT32_MAX)
        return NULL;
    size_t need = pool_doc_bytes(len);
    if (need > pool->max_bytes - pool->used_bytes)
        return NULL;
    struct doc *doc = malloc(need);
    if (doc == NULL)
        return NULL;
    /* Zero every header field, including ones added later, then set what is not 0. */
    memset(doc, 0, offsetof(struct doc, data));
    doc->received_ms = now_ms;
    doc->len = (uint32_t)len;
    doc->reject = -1;
    if (len)
        memcpy(doc->data, data, len);
    pool->used_bytes += need;
    pool->docs++;
    return doc;
}

void pool_free(struct pool *pool, struct doc *doc)
{
    if (doc == NULL)
        return;
    size_t bytes = pool_doc_bytes(doc->len);
    assert(pool->docs > 0 && pool->used_bytes >= bytes);
    pool->used_bytes -= bytes;
    pool->docs--;
    free(doc);
}

size_t pool_used_bytes(const struct pool *pool)
{
    return pool->used_bytes;
}

size_t pool_max_bytes(const struct pool *pool)
{
    return pool->max_bytes;
}

size_t pool_doc_count(const struct pool *pool)
{
    return pool->docs;
}

/* Reads a cgroup limit file: 1 with *limit set for a number, 0 for "max" (no limit),
 * -1 when the file is missing or unreadable. */
static int pool_read_limit(const char *path, uint64_t *limit)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    char text[64];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    if (strncmp(text, "max", 3) == 0)
        return 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || (*end != '\0' && *end != '\n'))
        return -1;
    *limit = v;
    return 1;
}

/* The smallest limit of file in the cgroup dir and its ancestors, up to base (a limit
 * set on a parent slice binds the children too). 1 with *limit set, 0 when the files
 * exist but set no limit, -1 when none exists. */
static int pool_walk_limits(const char *base, const char *cgroup, const char *file, uint64_t *limit)
{
    char rel[POOL_PATH_MAX];
    if (snprintf(rel, sizeof(rel), "%s", cgroup) >= (int)sizeof(rel))
        return -1;
    int found = -1;
    for (;;) {
        size_t n = strlen(rel);
        while (n > 0 && rel[n - 1] == '/')
            rel[--n] = '\0';
        char path[POOL_PATH_MAX];
        uint64_t v;
        if (snprintf(path, sizeof(path), "%s%s/%s", base, rel, file) < (int)sizeof(path)) {
            int rc = pool_read_limit(path, &v);
            if (rc == 1 && (found != 1 || v < *limit))
                *limit = v;
            if (rc > found)
                found = rc;
        }
        char *slash = strrchr(rel, '/');
        if (n == 0)
            break;
        if (slash == NULL)
            rel[0] = '\0';
        else
            *slash = '\0';
    }
    return found;
}

/* Finds this process's cgroup path for v2 ("0::/path") or for the v1 memory
 * controller ("4:memory:/path") in a /proc/self/cgroup file. "" when absent. */
static void pool_self_paths(const char *self_cgroup, char *v2, char *v1, size_t cap)
{
    v2[0] = v1[0] = '\0';
    FILE *f = self_cgroup ? fopen(self_cgroup, "re") : NULL;
    if (f == NULL)
        return;
    char line[POOL_PATH_MAX];
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL)
            continue;
        *c1 = *c2 = '\0';
        const char *controllers = c1 + 1, *path = c2 + 1;
        if (strcmp(line, "0") == 0 && controllers[0] == '\0') {
            snprintf(v2, cap, "%s", path);
            continue;
        }
        /* The controller list is comma-separated: "memory" must be a whole item. */
        for (const char *p = controllers; p != NULL; p = strchr(p, ',')) {
            if (*p == ',')
                p++;
            if (strncmp(p, "memory", 6) == 0 && (p[6] == ',' || p[6] == '\0')) {
                snprintf(v1, cap, "%s", path);
                break;
            }
        }
    }
    fclose(f);
}

size_t pool_default_bytes_at(const char *cgroup_root, const char *self_cgroup, uint64_t host_ram)
{
    char v2[POOL_PATH_MAX], v1[POOL_PATH_MAX], base[POOL_PATH_MAX];
    pool_self_paths(self_cgroup, v2, v1, sizeof(v2));
    uint64_t limit = 0;
    int rc = pool_walk_limits(cgroup_root, v2, "memory.max", &limit);
    if (rc < 0 && snprintf(base, sizeof(base), "%s/memory", cgroup_root) < (int)sizeof(base))
        rc = pool_walk_limits(base, v1, "memory.limit_in_bytes", &limit);

    uint64_t ceiling = host_ram ? host_ram : POOL_NO_HOST_LIMIT;
    uint64_t total = rc == 1 && limit < ceiling ? limit : host_ram;
    uint64_t bytes = total / 100;
    if (bytes < POOL_MIN_BYTES)
        bytes = POOL_MIN_BYTES;
    if (bytes > SIZE_MAX)
        bytes = SIZE_MAX;
    return (size_t)bytes;
}

size_t pool_default_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGESIZE);
    uint64_t ram = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    return pool_default_bytes_at("/sys/fs/cgroup", "/proc/self/cgroup", ram);
}
