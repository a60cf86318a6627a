/* SPDX-License-Identifier: Apache-2.0 */
/* The spool directory on disk. Every call works relative to the directory's
 * descriptor, so a file name never exceeds SPOOL_FILE_NAME_LEN and nothing depends on
 * the current directory. A file has its final name only once its bytes are on disk:
 * temporary name, fdatasync, rename, directory fsync. Only names spool_file.h parses
 * are touched; anything else in the directory (the lock file, a user's file) is left
 * alone. */
#include "upstream/spool_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "upstream/spool_file.h"

#define SPOOL_DIR_LOCK  "xrayd.lock"
#define SPOOL_DIR_PROBE "xrayd.probe"
#define SPOOL_DIR_BATCH 64 /* files fsynced together; spool.c writes at most 16 a call */

static int spool_dir_fail(char err[XRAY_ERR_LEN], int rc, const char *what, const char *path)
{
    /* A long path is cut short: the message stays readable and bounded. */
    if (snprintf(err, XRAY_ERR_LEN, "%s %.160s: %s", what, path, xray_strerror(rc)) < 0)
        err[0] = '\0';
    return rc;
}

/* mkdir -p, mode 0700: spooled traces can hold personal data. */
static int spool_dir_mkdirs(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int spool_dir_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Proves the directory writable now rather than at the first outage. */
static int spool_dir_probe(int dirfd)
{
    int fd = openat(dirfd, SPOOL_DIR_PROBE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = spool_dir_write_all(fd, (const uint8_t *)"xrayd\n", 6);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (unlinkat(dirfd, SPOOL_DIR_PROBE, 0) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int spool_dir_open(const char *path, int *dirfd, int *lockfd, char err[XRAY_ERR_LEN])
{
    *dirfd = *lockfd = -1;
    int rc = spool_dir_mkdirs(path);
    if (rc != 0)
        return spool_dir_fail(err, rc, "cannot create spool directory", path);
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return spool_dir_fail(err, -errno, "cannot open spool directory", path);
    int lfd = openat(dfd, SPOOL_DIR_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0) {
        rc = spool_dir_fail(err, -errno, "cannot write in spool directory", path);
    } else if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        rc = -errno;
        if (rc == -EWOULDBLOCK)
            snprintf(err, XRAY_ERR_LEN, "spool directory %s is in use by another xrayd", path);
        else
            spool_dir_fail(err, rc, "cannot lock spool directory", path);
    } else if ((rc = spool_dir_probe(dfd)) != 0) {
        spool_dir_fail(err, rc, "cannot write in spool directory", path);
    }
    if (rc != 0) {
        if (lfd >= 0)
            close(lfd);
        close(dfd);
        return rc;
    }
    *dirfd = dfd;
    *lockfd = lfd;
    return 0;
}

/* Checks a file's header against its size: 0 with *e filled, or XRAY_EPARSE / -errno. */
static int spool_dir_check(int dirfd, const char *name, uint64_t seq, struct spool_dir_entry *e,
                           char err[XRAY_ERR_LEN])
{
    uint8_t hdr[SPOOL_FILE_HEADER];
    struct spool_file_info info;
    struct stat st;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t got = fstat(fd, &st) == 0 ? pread(fd, hdr, sizeof(hdr), 0) : -1;
    int rc = got < 0 ? -errno : 0;
    close(fd);
    if (rc == 0)
        rc = spool_file_header(hdr, (size_t)got, &info, err);
    if (rc == 0 && (uint64_t)st.st_size != info.file_bytes) {
        snprintf(err, XRAY_ERR_LEN, "%s: %lld bytes where its header says %zu",
                 (uint64_t)st.st_size < info.file_bytes ? "truncated" : "too long",
                 (long long)st.st_size, info.file_bytes);
        rc = XRAY_EPARSE;
    }
    *e = (struct spool_dir_entry){seq, (uint32_t)info.file_bytes, info.count};
    return rc;
}

static int spool_dir_cmp(const void *a, const void *b)
{
    const struct spool_dir_entry *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int spool_dir_scan(int dirfd, struct spool_dir_entry **entries, size_t *n, uint64_t *next_seq,
                   unsigned *temp_files,
                   void (*on_corrupt)(void *ctx, const char *name, const char *why), void *ctx,
                   char err[XRAY_ERR_LEN])
{
    *entries = NULL;
    *n = 0;
    int fd = dup(dirfd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (dir == NULL) {
        int rc = -errno;
        if (fd >= 0)
            close(fd);
        return spool_dir_fail(err, rc, "cannot list", "the spool directory");
    }
    struct spool_dir_entry *found = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(dir)) != NULL) {
        uint64_t seq;
        int kind = spool_file_parse_name(de->d_name, &seq);
        if (kind == 0)
            continue;
        if (seq >= *next_seq)
            *next_seq = seq + 1;
        if (kind == 2) { /* a write a crash cut short */
            unlinkat(dirfd, de->d_name, 0);
            (*temp_files)++;
            continue;
        }
        char why[XRAY_ERR_LEN];
        struct spool_dir_entry e;
        int frc = spool_dir_check(dirfd, de->d_name, seq, &e, why);
        if (frc == XRAY_EPARSE) {
            on_corrupt(ctx, de->d_name, why);
            unlinkat(dirfd, de->d_name, 0);
        } else if (frc != 0) {
            rc = spool_dir_fail(err, frc, "cannot read spool file", de->d_name);
        } else if (count == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            struct spool_dir_entry *p = realloc(found, ncap * sizeof(*p));
            if (p == NULL) {
                rc = spool_dir_fail(err, -ENOMEM, "indexing", "the spool directory");
                break;
            }
            found = p;
            cap = ncap;
        }
        if (rc == 0 && frc == 0)
            found[count++] = e;
    }
    closedir(dir);
    if (rc != 0) {
        free(found);
        return rc;
    }
    if (count > 0)
        qsort(found, count, sizeof(*found), spool_dir_cmp);
    *entries = found;
    *n = count;
    return 0;
}

static int spool_dir_reserve(struct spool_dir_scratch *s, size_t need)
{
    if (s->cap >= need)
        return 0;
    uint8_t *p = realloc(s->data, need);
    if (p == NULL)
        return -ENOMEM;
    s->data = p;
    s->cap = need;
    return 0;
}

int spool_dir_write(int dirfd, struct spool_dir_write *w, unsigned n, uint64_t created_ms,
                    struct spool_dir_scratch *scratch)
{
    int fds[SPOOL_DIR_BATCH];
    char tmp[SPOOL_FILE_NAME_LEN], name[SPOOL_FILE_NAME_LEN];
    for (unsigned i = SPOOL_DIR_BATCH; i < n; i++)
        w[i].rc = -EINVAL; /* a caller's error: more than one call's worth */
    if (n > SPOOL_DIR_BATCH)
        n = SPOOL_DIR_BATCH;
    for (unsigned i = 0; i < n; i++) {
        size_t len = 0;
        fds[i] = -1;
        spool_file_name(tmp, w[i].seq, true);
        w[i].rc = spool_dir_reserve(scratch, spool_file_size(w[i].docs, NULL, NULL));
        if (w[i].rc == 0)
            w[i].rc = spool_file_encode(scratch->data, scratch->cap, w[i].docs, created_ms, &len);
        if (w[i].rc == 0) {
            fds[i] = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            w[i].rc = fds[i] < 0 ? -errno : spool_dir_write_all(fds[i], scratch->data, len);
        }
    }
    /* All written before the first sync, so the disk sees them together. */
    for (unsigned i = 0; i < n; i++) {
        if (w[i].rc == 0 && fdatasync(fds[i]) != 0)
            w[i].rc = -errno;
        if (fds[i] >= 0 && close(fds[i]) != 0 && w[i].rc == 0)
            w[i].rc = -errno;
        spool_file_name(tmp, w[i].seq, true);
        spool_file_name(name, w[i].seq, false);
        if (w[i].rc == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
            w[i].rc = -errno;
        if (w[i].rc != 0 && fds[i] >= 0)
            unlinkat(dirfd, tmp, 0);
    }
    return fsync(dirfd) != 0 ? -errno : 0;
}

int spool_dir_read(int dirfd, uint64_t seq, struct spool_dir_scratch *scratch, size_t *len,
                   char err[XRAY_ERR_LEN])
{
    char name[SPOOL_FILE_NAME_LEN];
    struct spool_file_info info;
    struct stat st;
    spool_file_name(name, seq, false);
    *len = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fstat(fd, &st) != 0 ? -errno : 0;
    if (rc == 0 && (st.st_size < 0 || (uint64_t)st.st_size > SPOOL_FILE_MAX)) {
        snprintf(err, XRAY_ERR_LEN, "larger than a spool file can be");
        rc = XRAY_EPARSE;
    }
    if (rc == 0)
        rc = spool_dir_reserve(scratch, (size_t)st.st_size + 1);
    while (rc == 0 && *len < (size_t)st.st_size) {
        ssize_t r = read(fd, scratch->data + *len, (size_t)st.st_size - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -errno;
        else if (r == 0)
            break; /* shorter than fstat said: the check calls it truncated */
        else
            *len += (size_t)r;
    }
    close(fd);
    if (rc == 0)
        rc = spool_file_check(scratch->data, *len, true, &info, err);
    return rc;
}

int spool_dir_remove(int dirfd, uint64_t seq)
{
    char name[SPOOL_FILE_NAME_LEN];
    spool_file_name(name, seq, false);
    return unlinkat(dirfd, name, 0) != 0 && errno != ENOENT ? -errno : 0;
}
