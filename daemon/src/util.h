/* SPDX-License-Identifier: Apache-2.0 */
/* Small macros every part uses. */
#ifndef XRAYD_UTIL_H
#define XRAYD_UTIL_H

#include <stddef.h>

/* The struct that embeds member, from a pointer to that member (libuv callbacks). */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define ARRAY_SIZE(a)                   (sizeof(a) / sizeof((a)[0]))

#endif
