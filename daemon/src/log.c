/* SPDX-License-Identifier: Apache-2.0 */
/* Log lines to stdout or a file, with size-based rotation keeping one old file.
 * Formatting happens on the caller's stack; the file and its size are guarded by
 * one mutex, held only for the write and, rarely, a rotation. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

atomic_int log_threshold = LOG_LEVEL_INFO;

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = STDOUT_FILENO;
static char *log_path;
static bool log_rotate;
static uint64_t log_rotate_bytes = LOG_ROTATE_BYTES;
static uint64_t log_bytes;

static const char *const log_level_names[] = {"Debug", "Info", "Warn", "Error"};

int log_level_parse(const char *name)
{
    static const struct {
        const char *name;
        int level;
    } map[] = {
        {"dev", LOG_LEVEL_DEBUG}, {"debug", LOG_LEVEL_DEBUG}, {"info", LOG_LEVEL_INFO},
        {"prod", LOG_LEVEL_INFO}, {"warn", LOG_LEVEL_WARN},   {"error", LOG_LEVEL_ERROR},
    };
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcasecmp(name, map[i].name) == 0)
            return map[i].level;
    return -1;
}

int log_open(int level, const char *path, bool rotate)
{
    return log_open_size(level, path, rotate, LOG_ROTATE_BYTES);
}

int log_open_size(int level, const char *path, bool rotate, uint64_t rotate_bytes)
{
    atomic_store(&log_threshold, level);
    if (path == NULL || *path == '\0') {
        log_close(); /* back to stdout, as documented, even after a file */
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    struct stat st;
    pthread_mutex_lock(&log_mutex);
    if (log_fd != STDOUT_FILENO)
        close(log_fd);
    log_fd = fd;
    free(log_path);
    log_path = strdup(path);
    log_rotate = rotate;
    log_rotate_bytes = rotate_bytes;
    log_bytes = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    pthread_mutex_unlock(&log_mutex);
    return 0;
}

void log_close(void)
{
    pthread_mutex_lock(&log_mutex);
    if (log_fd != STDOUT_FILENO)
        close(log_fd);
    log_fd = STDOUT_FILENO;
    free(log_path);
    log_path = NULL;
    pthread_mutex_unlock(&log_mutex);
}

/* Called with log_mutex held. A failed rotation keeps writing to the old file. */
static void log_rotate_now(void)
{
    char old[4096];
    if (snprintf(old, sizeof(old), "%s.1", log_path) >= (int)sizeof(old))
        return;
    if (rename(log_path, old) != 0)
        return;
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    close(log_fd);
    log_fd = fd;
    log_bytes = 0;
}

void log_write(int level, const char *mod, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (level < LOG_LEVEL_DEBUG || level > LOG_LEVEL_ERROR)
        level = LOG_LEVEL_ERROR;
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, " [%s] [%s] ", log_level_names[level], mod);
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1; /* a truncated prefix: the size below must not wrap */
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: keep the newline */
    line[len++] = '\n';

    pthread_mutex_lock(&log_mutex);
    /* log_bytes > 0: a line longer than the limit must not rotate an empty file. */
    if (log_rotate && log_path != NULL && log_bytes > 0 && log_bytes + len > log_rotate_bytes)
        log_rotate_now();
    ssize_t w = write(log_fd, line, len);
    if (w > 0)
        log_bytes += (uint64_t)w;
    pthread_mutex_unlock(&log_mutex);
}

static uint64_t log_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool log_every_pass(struct log_every *le, uint64_t interval_ms, unsigned *suppressed)
{
    uint64_t now = log_now_ms() + 1; /* +1: a zero start means "never written" */
    uint64_t start = atomic_load(&le->window_start_ms);
    if (start != 0 && now - start < interval_ms) {
        atomic_fetch_add(&le->suppressed, 1);
        return false;
    }
    if (!atomic_compare_exchange_strong(&le->window_start_ms, &start, now)) {
        atomic_fetch_add(&le->suppressed, 1);
        return false;
    }
    *suppressed = atomic_exchange(&le->suppressed, 0);
    return true;
}

void log_signal_safe(const char *msg)
{
    ssize_t r = write(log_fd, msg, strlen(msg));
    (void)r;
}
