/* SPDX-License-Identifier: Apache-2.0 */
/* Error codes shared by every part of the daemon: 0 is success, a negative value is
 * either -errno (libuv's UV_E* pass through unchanged) or one of the XRAY_E* below. */
#ifndef XRAYD_ERROR_H
#define XRAYD_ERROR_H

#define XRAY_ERR_LEN 256 /* size of the optional err[] buffers leaf code fills */

/* XX(name, value, message) */
#define XRAY_ERRNO_MAP(XX)                                                                         \
    XX(EPARSE, -20001, "malformed input")                                                          \
    XX(ETOOBIG, -20002, "input exceeds its size limit")                                            \
    XX(EDEPTH, -20003, "input nested too deep")                                                    \
    XX(EUTF8, -20004, "invalid UTF-8")                                                             \
    XX(EFIELD, -20005, "required field missing or of the wrong type")                              \
    XX(ECONFIG, -20006, "invalid configuration")                                                   \
    XX(ENOCREDS, -20007, "no AWS credentials")                                                     \
    XX(ENOREGION, -20008, "no AWS region")                                                         \
    XX(EUPSTREAM, -20009, "upstream error")                                                        \
    XX(EFULL, -20010, "buffer full")                                                               \
    XX(EHEADER, -20011, "bad datagram header")                                                     \
    XX(ETIMEOUT, -20012, "timed out")                                                              \
    XX(ECLOSED, -20013, "shutting down")

enum xray_errno {
#define XX(name, value, msg) XRAY_##name = value,
    XRAY_ERRNO_MAP(XX)
#undef XX
};

/* Text for any code this project returns: XRAY_E*, -errno or 0. Never NULL. */
const char *xray_strerror(int err);

/* Fills a leaf module's optional error buffer: a no-op when err is NULL, cut at
 * XRAY_ERR_LEN (messages are short on purpose). */
void xray_err_set(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
