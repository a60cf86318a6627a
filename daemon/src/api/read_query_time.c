/* SPDX-License-Identifier: Apache-2.0 */
/* Timestamps of read API requests given as text: decimal epoch seconds, or ISO-8601
 * date and time (RFC 3339's profile, with a space or T, the offset optional). No
 * locale, no time zone database, no libc time functions: the same answer anywhere. */
#include "api/read_query_time.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool read_query_time_digits(const char *s, size_t len, size_t *i, size_t n, int *out)
{
    int v = 0;
    if (len - *i < n)
        return false;
    for (size_t k = 0; k < n; k++) {
        char ch = s[*i + k];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *i += n;
    *out = v;
    return true;
}

static bool read_query_time_char(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return false;
    (*i)++;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long long read_query_time_days(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int read_query_time_month_days(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* "2024-05-01T12:00:00Z", with optional fraction and a Z or +hh:mm / -hhmm offset
 * (none: UTC). 0 or -1. */
static int read_query_time_iso8601(const char *s, size_t len, double *out)
{
    size_t i = 0;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    if (!read_query_time_digits(s, len, &i, 4, &y) || !read_query_time_char(s, len, &i, '-') ||
        !read_query_time_digits(s, len, &i, 2, &mo) || !read_query_time_char(s, len, &i, '-') ||
        !read_query_time_digits(s, len, &i, 2, &d))
        return -1;
    if (!read_query_time_char(s, len, &i, 'T') && !read_query_time_char(s, len, &i, 't') &&
        !read_query_time_char(s, len, &i, ' '))
        return -1;
    if (!read_query_time_digits(s, len, &i, 2, &h) || !read_query_time_char(s, len, &i, ':') ||
        !read_query_time_digits(s, len, &i, 2, &mi) || !read_query_time_char(s, len, &i, ':') ||
        !read_query_time_digits(s, len, &i, 2, &sec))
        return -1;
    double frac = 0, scale = 0.1;
    if (read_query_time_char(s, len, &i, '.')) {
        size_t from = i;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
            frac += (s[i] - '0') * scale;
        if (i == from)
            return -1;
    }
    if (read_query_time_char(s, len, &i, 'Z') || read_query_time_char(s, len, &i, 'z')) {
        sign = 0;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        sign = s[i++] == '-' ? -1 : 1;
        if (!read_query_time_digits(s, len, &i, 2, &oh))
            return -1;
        read_query_time_char(s, len, &i, ':');
        if (!read_query_time_digits(s, len, &i, 2, &om))
            return -1;
    }
    if (i != len || mo < 1 || mo > 12 || d < 1 || d > read_query_time_month_days(y, mo) || h > 23 ||
        mi > 59 || sec > 60 || oh > 23 || om > 59)
        return -1;
    long long t = read_query_time_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= sign * (oh * 3600 + om * 60);
    *out = (double)t + frac;
    return 0;
}

/* Digits with at most one '.': what strtod then reads is plain decimal, never hex, inf
 * or an exponent. */
static bool read_query_time_decimal(const char *s, size_t len)
{
    bool dot = false, digit = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.' && !dot)
            dot = true;
        else if (s[i] >= '0' && s[i] <= '9')
            digit = true;
        else
            return false;
    }
    return digit;
}

int read_query_time_parse(const char *s, size_t len, double *out)
{
    if (len > 0 && len < 64 && read_query_time_decimal(s, len)) {
        char text[64];
        memcpy(text, s, len);
        text[len] = '\0';
        *out = strtod(text, NULL);
        return 0;
    }
    return read_query_time_iso8601(s, len, out);
}
