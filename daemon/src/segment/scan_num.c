/* SPDX-License-Identifier: Apache-2.0 */
/* JSON number text -> double, correctly rounded, for the scanner's times and status.
 * strtod() would do, but costs more than the whole rest of a scan; the forms SDKs
 * send (up to 19 significant digits, small exponents) are converted here exactly, and
 * only the rest goes to strtod() through a bounded stack copy.
 *
 * How it works: the common [-]digits[.digits] form with at most 19 digits is read in
 * one tight loop (scan_num_plain); anything else by scan_num_read. Both give a 64-bit
 * decimal mantissa m (the first 19 significant digits), a decimal exponent e and a
 * flag telling whether nonzero digits were dropped. Then, in order:
 *  - m < 2^53 and |e| <= 22: m and 10^|e| are both exact doubles, so one IEEE multiply
 *    or divide gives the correctly rounded result (Clinger's fast path).
 *  - |e| <= 27: 5^|e| fits in 64 bits, so m * 10^e = m * 5^e * 2^e is computed exactly
 *    in 128 bits (e >= 0), or as a 128-bit quotient with >= 64 significant bits plus a
 *    sticky remainder bit (e < 0); rounding that to 53 bits half-to-even is exact.
 *  - digits were dropped: the true value lies strictly between m*10^e and (m+1)*10^e;
 *    when both round to the same double, that is the answer.
 *  - otherwise strtod() on a copy. A copy keeps at most SCAN_NUM_DIGITS significant
 *    digits plus a final '1' when nonzero digits follow: every midpoint between two
 *    doubles has at most 767 significant digits, so this never changes the rounding. */
#include "scan.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define SCAN_NUM_MANT_DIGITS 19        /* digits that always fit in a uint64_t */
#define SCAN_NUM_DIGITS      780       /* > 767, see above */
#define SCAN_NUM_EXP_CAP     100000000 /* |exponent| far beyond any double: saturate */

struct scan_num_dec {
    bool neg;
    bool dropped;     /* nonzero digits after the first SCAN_NUM_MANT_DIGITS */
    uint64_t m;       /* first significant digits */
    int64_t e;        /* value = m * 10^e (+ dropped digits) */
    const char *sig;  /* first significant digit in the text, NULL when the value is 0 */
    const char *stop; /* end of the digits before any exponent */
    int64_t exp10;    /* the explicit exponent, saturated at SCAN_NUM_EXP_CAP */
};

static const double scan_num_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                          1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                          1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Parses the grammar and fills d. 0 or XRAY_EPARSE. */
static int scan_num_read(const char *p, const char *end, struct scan_num_dec *d)
{
    int64_t frac_digits = 0, kept = 0, skipped_int = 0;
    memset(d, 0, sizeof(*d));
    if (p < end && *p == '-') {
        d->neg = true;
        p++;
    }
    if (p >= end)
        return XRAY_EPARSE;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        d->sig = p;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (kept < SCAN_NUM_MANT_DIGITS) {
                d->m = d->m * 10 + (uint64_t)(*p - '0');
                kept++;
            } else {
                skipped_int++;
                d->dropped |= *p != '0';
            }
        }
    } else {
        return XRAY_EPARSE;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return XRAY_EPARSE;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (d->sig == NULL && *p == '0') {
                frac_digits++; /* leading zeros of 0.000x only move the exponent */
                continue;
            }
            if (d->sig == NULL)
                d->sig = p;
            if (kept < SCAN_NUM_MANT_DIGITS) {
                d->m = d->m * 10 + (uint64_t)(*p - '0');
                kept++;
                frac_digits++;
            } else {
                d->dropped |= *p != '0';
            }
        }
    }
    d->stop = p;
    if (p < end && (*p == 'e' || *p == 'E')) {
        bool eneg = false;
        int64_t x = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || *p < '0' || *p > '9')
            return XRAY_EPARSE;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (x < SCAN_NUM_EXP_CAP)
                x = x * 10 + (*p - '0');
        d->exp10 = eneg ? -x : x;
    }
    if (p != end)
        return XRAY_EPARSE;
    d->e = d->exp10 + skipped_int - frac_digits;
    return 0;
}

#if defined(__SIZEOF_INT128__)
/* (n + a fraction in (0,1) when sticky) * 2^bexp, rounded half to even. The callers'
 * ranges (m < 2^64, |e| <= 27) keep the result a normal double; with bexp < 0 the
 * quotient always has more than 53 bits. */
static double scan_num_round(unsigned __int128 n, bool sticky, int bexp)
{
    uint64_t hi = (uint64_t)(n >> 64);
    int bits = hi ? 128 - __builtin_clzll(hi) : 64 - __builtin_clzll((uint64_t)n);
    if (bits <= 53) {
        assert(bexp >= 0 && bexp < 64 && !sticky);
        return (double)(uint64_t)n * (double)((uint64_t)1 << bexp); /* both exact */
    }
    int shift = bits - 53;
    uint64_t top = (uint64_t)(n >> shift);
    unsigned __int128 rem = n & (((unsigned __int128)1 << shift) - 1);
    unsigned __int128 half = (unsigned __int128)1 << (shift - 1);
    if (rem > half || (rem == half && (sticky || (top & 1))))
        top++;
    if (top == (uint64_t)1 << 53) {
        top >>= 1;
        shift++;
    }
    /* top is in [2^52, 2^53): the value is 1.f * 2^(52 + shift + bexp). */
    int64_t biased = 52 + shift + bexp + 1023;
    assert(biased > 0 && biased < 2047);
    uint64_t u = ((uint64_t)biased << 52) | (top & (((uint64_t)1 << 52) - 1));
    double out;
    memcpy(&out, &u, sizeof(out));
    return out;
}

static const uint64_t scan_num_pow5[28] = {
    1ull,
    5ull,
    25ull,
    125ull,
    625ull,
    3125ull,
    15625ull,
    78125ull,
    390625ull,
    1953125ull,
    9765625ull,
    48828125ull,
    244140625ull,
    1220703125ull,
    6103515625ull,
    30517578125ull,
    152587890625ull,
    762939453125ull,
    3814697265625ull,
    19073486328125ull,
    95367431640625ull,
    476837158203125ull,
    2384185791015625ull,
    11920928955078125ull,
    59604644775390625ull,
    298023223876953125ull,
    1490116119384765625ull,
    7450580596923828125ull,
};
#endif

/* m * 10^e correctly rounded, m > 0, or false when this range is not handled here. */
static bool scan_num_exact(uint64_t m, int64_t e, double *out)
{
    if (m < ((uint64_t)1 << 53) && e >= -22 && e <= 22) {
        *out = e < 0 ? (double)m / scan_num_pow10[-e] : (double)m * scan_num_pow10[e];
        return true;
    }
#if defined(__SIZEOF_INT128__)
    if (e >= 0 && e <= 27) {
        *out = scan_num_round((unsigned __int128)m * scan_num_pow5[e], false, (int)e);
        return true;
    }
    if (e < 0 && e >= -27) {
        /* Scale m to 127 bits so the quotient keeps at least 64 significant bits. */
        int s = 127 - (64 - __builtin_clzll(m));
        unsigned __int128 n = (unsigned __int128)m << s;
        uint64_t d = scan_num_pow5[-e];
        unsigned __int128 q = n / d;
        bool sticky = n - q * d != 0;
        *out = scan_num_round(q, sticky, (int)e - s);
        return true;
    }
#endif
    return false;
}

/* The strtod() route for what scan_num_exact() does not cover. */
static double scan_num_slow(const char *p, const struct scan_num_dec *d)
{
    char buf[SCAN_NUM_DIGITS + 32];
    size_t n = 0;
    int64_t e = d->exp10;
    bool more = false;
    /* The significant digits form an integer D whose last digit sits stop - dot - 1
     * places after the point: value = D * 10^(exp10 - that), and each digit of D left
     * out of the copy raises the exponent by one. */
    const char *dot = memchr(p, '.', (size_t)(d->stop - p));
    if (dot != NULL)
        e -= d->stop - dot - 1;
    buf[n++] = d->neg ? '-' : '+';
    for (const char *q = d->sig; q < d->stop; q++) {
        if (*q == '.')
            continue;
        if (n < 1 + SCAN_NUM_DIGITS) {
            buf[n++] = *q;
        } else {
            more |= *q != '0';
            e++;
        }
    }
    if (more) {
        buf[n++] = '1';
        e--;
    }
    snprintf(buf + n, sizeof(buf) - n, "e%lld", (long long)e);
    /* The copy has no '.', so the locale's decimal point does not matter. */
    return strtod(buf, NULL);
}

/* The usual case: [-]digits[.digits], at most 19 digits, no exponent. Each digit is
 * checked once and accumulated in a loop with no other test. */
static bool scan_num_plain(const char *p, const char *end, double *out)
{
    bool neg = p < end && *p == '-';
    const char *i0 = p + neg, *i1 = i0, *f0 = NULL, *f1 = NULL;
    while (i1 < end && (unsigned)(*i1 - '0') < 10)
        i1++;
    if (i1 == i0 || (*i0 == '0' && i1 - i0 > 1))
        return false;
    if (i1 < end) {
        if (*i1 != '.')
            return false;
        f0 = f1 = i1 + 1;
        while (f1 < end && (unsigned)(*f1 - '0') < 10)
            f1++;
        if (f1 != end || f1 == f0)
            return false;
    }
    if ((i1 - i0) + (f1 - f0) > SCAN_NUM_MANT_DIGITS)
        return false;
    uint64_t m = 0;
    for (const char *q = i0; q < i1; q++)
        m = m * 10 + (uint64_t)(*q - '0');
    for (const char *q = f0; q < f1; q++)
        m = m * 10 + (uint64_t)(*q - '0');
    double v = 0;
    if (m != 0 && !scan_num_exact(m, -(int64_t)(f1 - f0), &v))
        return false;
    *out = neg ? -v : v;
    return true;
}

int scan_num_value(const char *p, size_t len, double *out)
{
    if (scan_num_plain(p, p + len, out))
        return 0;
    struct scan_num_dec d;
    int rc = scan_num_read(p, p + len, &d);
    if (rc != 0)
        return rc;
    if (d.sig == NULL || d.m == 0) {
        *out = d.neg ? -0.0 : 0.0;
        return 0;
    }
    double v, v2;
    if (!d.dropped) {
        if (scan_num_exact(d.m, d.e, &v)) {
            *out = d.neg ? -v : v;
            return 0;
        }
    } else if (d.m < UINT64_MAX && scan_num_exact(d.m, d.e, &v) &&
               scan_num_exact(d.m + 1, d.e, &v2) && v == v2) {
        *out = d.neg ? -v : v;
        return 0;
    }
    *out = scan_num_slow(p, &d);
    return 0;
}
