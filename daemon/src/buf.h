/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer with a hard maximum: request and response bodies, JSON we
 * write. Appending past the maximum fails with XRAY_ETOOBIG and leaves the buffer as
 * it was, so a caller can stop cleanly. */
#ifndef XRAYD_BUF_H
#define XRAYD_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* owned; NUL-terminated when len < cap, not counted in len */
    size_t len;
    size_t cap;
    size_t max;
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
static inline void buf_reset(struct buf *b)
{
    b->len = 0;
}
/* Makes room for extra more bytes. 0, -ENOMEM or XRAY_ETOOBIG. */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the n bytes of s (borrowed) as a quoted JSON string: '"' and '\\' get a
 * backslash, \n \r \t \b \f their two-byte escapes, other control characters
 * \u00XX (lowercase hex); every other byte is copied as it is, so s should be valid
 * UTF-8. Fails only when the escaped string itself does not fit under b's maximum:
 * 0, XRAY_ETOOBIG or -ENOMEM, and then b is left as it was. */
int buf_append_json_string(struct buf *b, const char *s, size_t n);
/* The exact number of bytes buf_append_json_string(b, s, n) appends, quotes
 * included, so a caller can size a whole body before writing it. Pure. */
size_t buf_json_string_len(const char *s, size_t n);

#endif
