/* SPDX-License-Identifier: Apache-2.0 */
/* xray_strerror(): one table, built from XRAY_ERRNO_MAP, for our own codes;
 * everything else is a negated errno and goes to strerror(). */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *xray_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define XX(name, value, msg)                                                                       \
    case value:                                                                                    \
        return msg;
        XRAY_ERRNO_MAP(XX)
#undef XX
    default:
        return err < 0 ? strerror(-err) : "unknown error";
    }
}

void xray_err_set(char *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, XRAY_ERR_LEN, fmt, ap);
    va_end(ap);
}
