/* SPDX-License-Identifier: Apache-2.0 */
/* Timestamps of read API requests given as text (botocore sends numbers; people and
 * other clients send text). Pure; any thread. */
#ifndef XRAYD_API_READ_QUERY_TIME_H
#define XRAYD_API_READ_QUERY_TIME_H

#include <stddef.h>

/* Reads the len bytes of s as epoch seconds: decimal text ("1700000000.5") or ISO-8601
 * date and time ("2023-11-14T22:13:20Z", "2023-11-14 23:13:20.5+01:00"; no offset
 * means UTC). 0 with *out set, or -1. */
int read_query_time_parse(const char *s, size_t len, double *out);

#endif
