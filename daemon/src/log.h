/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's only way to write a log line: `2026-11-21T23:36:15Z [Info] [mod] msg`.
 * The level is tested before the arguments are evaluated. Lines are at most
 * LOG_LINE_MAX bytes and written with one write(2), so threads never interleave. */
#ifndef XRAYD_LOG_H
#define XRAYD_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define LOG_LINE_MAX     1024
#define LOG_ROTATE_BYTES (50u * 1024 * 1024) /* the reference daemon rotates at 50 MB */

enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
};

extern atomic_int log_threshold;

/* Maps the reference daemon's names (dev, debug, info, warn, error, prod) to a level.
 * Returns -1 for anything else. */
int log_level_parse(const char *name);

/* Sets the threshold and the destination: path NULL or "" means stdout. With rotate,
 * the file is renamed to "<path>.1" past LOG_ROTATE_BYTES and a new one started.
 * Returns 0 or -errno (the file could not be opened). Call from main only. */
int log_open(int level, const char *path, bool rotate);
/* log_open() rotating at rotate_bytes instead of LOG_ROTATE_BYTES (tests). */
int log_open_size(int level, const char *path, bool rotate, uint64_t rotate_bytes);
void log_close(void);

void log_write(int level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* State for XLOG_EVERY: the window's start and how many lines it suppressed. */
struct log_every {
    atomic_uint_fast64_t window_start_ms;
    atomic_uint suppressed;
};
/* True when a line may be written now; false (and counted) inside the window. On
 * pass, *suppressed is set to how many lines the previous window swallowed. */
bool log_every_pass(struct log_every *le, uint64_t interval_ms, unsigned *suppressed);

#define XLOG(level, mod, ...)                                                                      \
    do {                                                                                           \
        if ((level) >= atomic_load_explicit(&log_threshold, memory_order_relaxed))                 \
            log_write((level), (mod), __VA_ARGS__);                                                \
    } while (0)
#define XLOG_DEBUG(mod, ...) XLOG(LOG_LEVEL_DEBUG, mod, __VA_ARGS__)
#define XLOG_INFO(mod, ...)  XLOG(LOG_LEVEL_INFO, mod, __VA_ARGS__)
#define XLOG_WARN(mod, ...)  XLOG(LOG_LEVEL_WARN, mod, __VA_ARGS__)
#define XLOG_ERR(mod, ...)   XLOG(LOG_LEVEL_ERROR, mod, __VA_ARGS__)

/* For anything outside input can trigger: at most one line per interval from this
 * call site; the next line that passes says how many were suppressed. */
#define XLOG_EVERY(interval_ms, level, mod, fmt, ...)                                              \
    do {                                                                                           \
        static struct log_every xlog_every_;                                                       \
        unsigned xlog_supp_;                                                                       \
        if ((level) >= atomic_load_explicit(&log_threshold, memory_order_relaxed) &&               \
            log_every_pass(&xlog_every_, (interval_ms), &xlog_supp_)) {                            \
            if (xlog_supp_)                                                                        \
                log_write((level), (mod), fmt " (%u similar suppressed)", ##__VA_ARGS__,           \
                          xlog_supp_);                                                             \
            else                                                                                   \
                log_write((level), (mod), fmt, ##__VA_ARGS__);                                     \
        }                                                                                          \
    } while (0)

/* Async-signal-safe: writes msg as it is with write(2). For signal handlers only. */
void log_signal_safe(const char *msg);

#endif
