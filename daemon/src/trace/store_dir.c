/* SPDX-License-Identifier: Apache-2.0 */
/* The store's files: store-<16 hex digits>.xst, numbered in creation order. Each run
 * appends to a file of its own, never to one an earlier run left (its tail may be
 * torn); a write error likewise moves on to a new file. Invariant: after each append,
 * the files hold at most max_bytes, unless the only file left is the current one.
 * Durability: appends sit in a buffer until store_dir_sync(), which the worker calls
 * every second and at shutdown, so a crash loses at most the last second and a clean
 * stop loses nothing. */
#include "trace/store_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define STORE_DIR_ROTATE_MAX (4u << 20)  /* a file is closed past this many bytes */
#define STORE_DIR_ROTATE_MIN (16u << 10) /* small budgets still get a few files */
#define STORE_DIR_FILES_MAX  1024        /* more (tiny files of many restarts) are deleted */
#define STORE_DIR_BUF        (128u << 10)
#define STORE_DIR_READ       (256u << 10)
#define STORE_DIR_NAME_LEN   26 /* "store-" 16 hex digits ".xst" */
#define STORE_DIR_LOG_MS     10000

_Static_assert(STORE_DIR_BUF >= STORE_FILE_RECORD_MAX, "a record fits in the write buffer");
_Static_assert(STORE_DIR_READ >= STORE_FILE_RECORD_MAX, "a record fits in the read buffer");

struct store_dir_file {
    uint64_t seq;
    uint64_t bytes;
};

struct store_dir {
    int dfd;                      /* the directory: locked, and the base of every *at() call */
    int fd;                       /* the file appended to: files[nfiles - 1] */
    struct store_dir_file *files; /* oldest first */
    size_t nfiles, cap;
    size_t nload; /* files[0 .. nload) were there at open */
    uint64_t max_bytes;
    uint64_t rotate_bytes;
    uint8_t *wbuf;
    size_t wlen;
    size_t wrecs;   /* records in wbuf */
    bool broken;    /* the last write failed: the next append starts a new file */
    bool dir_dirty; /* a file was created since the directory was last fsynced */
    bool unsynced;  /* the current file was written to since its last fsync */
    struct store_dir_stats stats;
};

static void store_dir_name(uint64_t seq, char name[STORE_DIR_NAME_LEN + 1])
{
    snprintf(name, STORE_DIR_NAME_LEN + 1, "store-%016" PRIx64 ".xst", seq);
}

/* The number of a file named like ours, or 0. */
static uint64_t store_dir_parse_name(const char *name)
{
    if (strlen(name) != STORE_DIR_NAME_LEN || strncmp(name, "store-", 6) != 0 ||
        strcmp(name + 22, ".xst") != 0)
        return 0;
    uint64_t seq = 0;
    for (int i = 6; i < 22; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        seq = seq << 4 | (uint64_t)d;
    }
    return seq;
}

static int store_dir_mkdirs(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -errno;
        path[i] = i < n ? '/' : '\0';
    }
    return 0;
}

static int store_dir_push(struct store_dir *sd, uint64_t seq, uint64_t bytes)
{
    if (sd->nfiles == sd->cap) {
        size_t cap = sd->cap != 0 ? sd->cap * 2 : 16;
        struct store_dir_file *files = realloc(sd->files, cap * sizeof(*files));
        if (files == NULL)
            return -ENOMEM;
        sd->files = files;
        sd->cap = cap;
    }
    sd->files[sd->nfiles++] = (struct store_dir_file){seq, bytes};
    sd->stats.disk_bytes += bytes;
    return 0;
}

static int store_dir_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct store_dir_file *)a)->seq,
             y = ((const struct store_dir_file *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Our files in the directory, oldest first. */
static int store_dir_list(struct store_dir *sd)
{
    int fd = dup(sd->dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        int rc = -errno;
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        uint64_t seq = store_dir_parse_name(e->d_name);
        struct stat sb;
        if (seq != 0 && fstatat(sd->dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(sb.st_mode))
            rc = store_dir_push(sd, seq, (uint64_t)sb.st_size);
    }
    closedir(d);
    if (sd->nfiles > 1)
        qsort(sd->files, sd->nfiles, sizeof(*sd->files), store_dir_cmp);
    return rc;
}

static void store_dir_drop_oldest(struct store_dir *sd)
{
    char name[STORE_DIR_NAME_LEN + 1];
    store_dir_name(sd->files[0].seq, name);
    if (unlinkat(sd->dfd, name, 0) != 0 && errno != ENOENT)
        XLOG_EVERY(STORE_DIR_LOG_MS, LOG_LEVEL_WARN, "store", "cannot delete %s: %s", name,
                   strerror(errno));
    sd->stats.disk_bytes -= sd->files[0].bytes;
    memmove(sd->files, sd->files + 1, (sd->nfiles - 1) * sizeof(*sd->files));
    sd->nfiles--;
    if (sd->nload > 0)
        sd->nload--;
    sd->dir_dirty = true;
}

/* Deletes the oldest files (never the last one) while the directory is over its
 * bounds, and empty files an earlier run left. */
static void store_dir_trim(struct store_dir *sd)
{
    while (sd->nfiles > 1 &&
           (sd->stats.disk_bytes > sd->max_bytes || sd->nfiles > STORE_DIR_FILES_MAX ||
            (sd->nload > 0 && sd->files[0].bytes == 0)))
        store_dir_drop_oldest(sd);
}

static int store_dir_new_file(struct store_dir *sd)
{
    uint64_t seq = sd->nfiles > 0 ? sd->files[sd->nfiles - 1].seq + 1 : 1;
    char name[STORE_DIR_NAME_LEN + 1];
    store_dir_name(seq, name);
    int fd = openat(sd->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = store_dir_push(sd, seq, 0);
    if (rc != 0) {
        close(fd);
        unlinkat(sd->dfd, name, 0);
        return rc;
    }
    sd->fd = fd;
    sd->broken = false;
    sd->unsynced = false;
    sd->dir_dirty = true;
    return 0;
}

int store_dir_open(const char *dir, uint64_t max_bytes, struct store_dir **out,
                   char err[XRAY_ERR_LEN])
{
    *out = NULL;
    struct store_dir *sd = calloc(1, sizeof(*sd));
    if (sd == NULL || (sd->wbuf = malloc(STORE_DIR_BUF)) == NULL) {
        free(sd);
        xray_err_set(err, "%s: out of memory", dir);
        return -ENOMEM;
    }
    sd->fd = sd->dfd = -1;
    sd->max_bytes = max_bytes;
    sd->rotate_bytes = max_bytes / 8;
    if (sd->rotate_bytes > STORE_DIR_ROTATE_MAX)
        sd->rotate_bytes = STORE_DIR_ROTATE_MAX;
    if (sd->rotate_bytes < STORE_DIR_ROTATE_MIN)
        sd->rotate_bytes = STORE_DIR_ROTATE_MIN;
    int rc = store_dir_mkdirs(dir);
    const char *what = "cannot create it";
    if (rc == 0 && (sd->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = -errno, what = "cannot open it";
    if (rc == 0 && flock(sd->dfd, LOCK_EX | LOCK_NB) != 0)
        rc = -errno, what = "in use by another process";
    if (rc == 0 && (rc = store_dir_list(sd)) != 0)
        what = "cannot list it";
    if (rc == 0) {
        sd->nload = sd->nfiles;
        if ((rc = store_dir_new_file(sd)) != 0)
            what = "cannot create a file in it";
    }
    if (rc != 0) {
        xray_err_set(err, "%s: %s: %s", dir, what, xray_strerror(rc));
        if (sd->dfd >= 0)
            close(sd->dfd);
        free(sd->files);
        free(sd->wbuf);
        free(sd);
        return rc;
    }
    store_dir_trim(sd);
    sd->stats.files = sd->nfiles;
    *out = sd;
    return 0;
}

/* Reads one file through buf, handing each intact record to cb. */
static void store_dir_load_file(struct store_dir *sd, uint64_t seq, uint8_t *buf,
                                store_dir_load_cb cb, void *ctx)
{
    char name[STORE_DIR_NAME_LEN + 1];
    store_dir_name(seq, name);
    int fd = openat(sd->dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sd->stats.corrupt++;
        return;
    }
    size_t have = 0;
    bool eof = false;
    for (;;) {
        ssize_t n = eof ? 0 : read(fd, buf + have, STORE_DIR_READ - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            sd->stats.corrupt++;
            break;
        }
        eof = eof || n == 0;
        have += (size_t)n;
        size_t off = 0, used = 0;
        struct store_file_rec r;
        int rc;
        while ((rc = store_file_decode(buf + off, have - off, &r, &used)) == 0) {
            cb(&r, ctx);
            sd->stats.loaded++;
            off += used;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (rc != -EAGAIN || eof) {
            sd->stats.corrupt += rc != -EAGAIN || have > 0;
            break;
        }
    }
    close(fd);
}

void store_dir_load(struct store_dir *sd, store_dir_load_cb cb, void *ctx)
{
    uint8_t *buf = malloc(STORE_DIR_READ);
    if (buf == NULL) {
        sd->stats.corrupt += sd->nload;
        return;
    }
    for (size_t i = 0; i < sd->nload; i++)
        store_dir_load_file(sd, sd->files[i].seq, buf, cb, ctx);
    free(buf);
}

/* Writes the buffer out. On an error its records are lost and counted, and the next
 * append starts a new file, so the torn end of this one is never followed by more. */
static int store_dir_flush(struct store_dir *sd)
{
    size_t off = 0;
    int rc = 0;
    while (off < sd->wlen) {
        ssize_t n = write(sd->fd, sd->wbuf + off, sd->wlen - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)n;
        sd->unsynced = true;
    }
    if (rc != 0) {
        XLOG_EVERY(STORE_DIR_LOG_MS, LOG_LEVEL_ERROR, "store",
                   "writing the store's file failed: %s; %zu documents not persisted",
                   strerror(-rc), sd->wrecs);
        sd->stats.errors += sd->wrecs;
        sd->broken = true;
    }
    sd->wlen = 0;
    sd->wrecs = 0;
    return rc;
}

/* Closes the current file (synced: a rotation must not leave an unsynced tail behind)
 * and starts the next. */
static int store_dir_rotate(struct store_dir *sd)
{
    if (sd->fd >= 0) {
        store_dir_flush(sd);
        fsync(sd->fd);
        close(sd->fd);
        sd->fd = -1;
    }
    return store_dir_new_file(sd);
}

int store_dir_append(struct store_dir *sd, const struct store_file_rec *r)
{
    size_t n = store_file_size(r);
    int rc = 0;
    if (n > STORE_FILE_RECORD_MAX)
        rc = XRAY_ETOOBIG;
    struct store_dir_file *cur = &sd->files[sd->nfiles - 1];
    if (rc == 0 &&
        (sd->fd < 0 || sd->broken || (cur->bytes > 0 && cur->bytes + n > sd->rotate_bytes)))
        rc = store_dir_rotate(sd);
    if (rc == 0 && sd->wlen + n > STORE_DIR_BUF)
        rc = store_dir_flush(sd);
    if (rc != 0) {
        sd->stats.errors++;
        return rc;
    }
    store_file_encode(r, sd->wbuf + sd->wlen);
    sd->wlen += n;
    sd->wrecs++;
    sd->files[sd->nfiles - 1].bytes += n;
    sd->stats.disk_bytes += n;
    store_dir_trim(sd);
    sd->stats.files = sd->nfiles;
    return 0;
}

int store_dir_sync(struct store_dir *sd)
{
    int rc = sd->fd >= 0 && sd->wlen > 0 ? store_dir_flush(sd) : 0;
    if (rc == 0 && sd->fd >= 0 && sd->unsynced) {
        if (fsync(sd->fd) != 0)
            rc = -errno;
        else
            sd->unsynced = false;
    }
    if (rc == 0 && sd->dir_dirty) {
        if (fsync(sd->dfd) != 0)
            rc = -errno;
        else
            sd->dir_dirty = false;
    }
    return rc;
}

void store_dir_get_stats(const struct store_dir *sd, struct store_dir_stats *out)
{
    *out = sd->stats;
}

void store_dir_close(struct store_dir *sd)
{
    if (sd == NULL)
        return;
    store_dir_sync(sd);
    if (sd->fd >= 0)
        close(sd->fd);
    close(sd->dfd); /* releases the lock */
    free(sd->files);
    free(sd->wbuf);
    free(sd);
}
