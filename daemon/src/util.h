/* SPDX-License-Identifier: Apache-2.0 */
/* Small macros and helpers every part uses. */
#ifndef XRAYD_UTIL_H
#define XRAYD_UTIL_H

#include <stddef.h>

/* The struct that embeds member, from a pointer to that member (libuv callbacks). */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define ARRAY_SIZE(a)                   (sizeof(a) / sizeof((a)[0]))

/* The value of one hexadecimal digit of either case, or -1. */
static inline int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
