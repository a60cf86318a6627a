/* SPDX-License-Identifier: Apache-2.0 */
/* The X-Amzn-Trace-Id header (wire.md): parsing an incoming value into Root, Parent,
 * Sampled and the pairs passed on unchanged (Lineage, unknown keys), and writing the
 * outgoing and response values. Parsing is pure and bounded; a malformed value never
 * fails a request, it is reported so the caller treats the header as absent. A value
 * with a control character is malformed: passing it on could split a header. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static bool header_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int header_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies n hex digits of s into out lower-cased; false if one is not hex. */
static bool header_hex(char *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int v = header_hexval(s[i]);
        if (v < 0)
            return false;
        out[i] = "0123456789abcdef"[v];
    }
    return true;
}

static bool header_root(char out[XRAY_TRACE_ID_LEN + 1], const char *v, size_t n)
{
    if (n != XRAY_TRACE_ID_LEN || v[0] != '1' || v[1] != '-' || v[10] != '-')
        return false;
    out[0] = '1';
    out[1] = '-';
    out[10] = '-';
    if (!header_hex(out + 2, v + 2, 8) || !header_hex(out + 11, v + 11, 24))
        return false;
    out[XRAY_TRACE_ID_LEN] = '\0';
    return true;
}

static bool header_key_is(const char *k, size_t kn, const char *name)
{
    return kn == strlen(name) && memcmp(k, name, kn) == 0;
}

static int header_fail(struct xray_trace_header *out)
{
    memset(out, 0, sizeof(*out));
    return XRAY_SDK_EHEADER;
}

int xray_header_parse(const char *value, size_t len, struct xray_trace_header *out)
{
    bool have_root = false, have_parent = false, have_sampled = false;
    memset(out, 0, sizeof(*out));
    if (value == NULL)
        return header_fail(out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return header_fail(out);
    }
    size_t pos = 0;
    while (pos < len) {
        const char *part = value + pos;
        const char *semi = memchr(part, ';', len - pos);
        size_t plen = semi ? (size_t)(semi - part) : len - pos;
        pos += plen + (semi ? 1 : 0);
        while (plen > 0 && header_blank(part[0])) {
            part++;
            plen--;
        }
        while (plen > 0 && header_blank(part[plen - 1]))
            plen--;
        if (plen == 0)
            continue;
        const char *eq = memchr(part, '=', plen);
        if (eq == NULL)
            return header_fail(out);
        const char *k = part, *v = eq + 1;
        size_t kn = (size_t)(eq - part), vn = plen - kn - 1;
        while (kn > 0 && header_blank(k[kn - 1]))
            kn--;
        while (vn > 0 && header_blank(v[0])) {
            v++;
            vn--;
        }
        if (kn == 0)
            return header_fail(out);
        if (header_key_is(k, kn, "Root")) {
            if (have_root || !header_root(out->root, v, vn))
                return header_fail(out);
            have_root = true;
        } else if (header_key_is(k, kn, "Parent")) {
            if (have_parent || vn != XRAY_SEGMENT_ID_LEN || !header_hex(out->parent, v, vn))
                return header_fail(out);
            out->parent[XRAY_SEGMENT_ID_LEN] = '\0';
            have_parent = true;
        } else if (header_key_is(k, kn, "Sampled")) {
            if (have_sampled || vn != 1)
                return header_fail(out);
            if (v[0] == '1')
                out->sampled = XRAY_SAMPLED_YES;
            else if (v[0] == '0')
                out->sampled = XRAY_SAMPLED_NO;
            else if (v[0] == '?')
                out->sampled = XRAY_SAMPLED_REQUESTED;
            else
                return header_fail(out);
            have_sampled = true;
        } else if (header_key_is(k, kn, "Self")) {
            /* Added by load balancers about themselves: not passed on (wire.md). */
        } else {
            /* Lineage and unknown keys travel on as written, whole pairs only. */
            size_t need = kn + 1 + vn + (out->extra_len ? 1 : 0);
            if (out->extra_len + need <= XRAY_HEADER_EXTRA_MAX) {
                char *d = out->extra + out->extra_len;
                if (out->extra_len)
                    *d++ = ';';
                memcpy(d, k, kn);
                d[kn] = '=';
                memcpy(d + kn + 1, v, vn);
                out->extra_len += need;
                out->extra[out->extra_len] = '\0';
            }
        }
    }
    if (have_parent && !have_root)
        return header_fail(out);
    return 0;
}

/* Appends "sep key value" to buf; false when it does not fit (with the NUL). */
static bool header_put(char *buf, size_t cap, size_t *len, const char *key, const char *v,
                       size_t vn)
{
    size_t kn = strlen(key), sep = *len ? 1 : 0;
    if (*len + sep + kn + vn + 1 > cap)
        return false;
    if (sep)
        buf[(*len)++] = ';';
    memcpy(buf + *len, key, kn);
    memcpy(buf + *len + kn, v, vn);
    *len += kn + vn;
    buf[*len] = '\0';
    return true;
}

static const char *header_sampled_text(enum xray_sampled s)
{
    switch (s) {
    case XRAY_SAMPLED_YES:
        return "1";
    case XRAY_SAMPLED_NO:
        return "0";
    case XRAY_SAMPLED_REQUESTED:
        return "?";
    default:
        return NULL;
    }
}

static int header_write(char *buf, size_t cap, const char *root, const char *parent,
                        const char *sampled, const char *extra, size_t extra_len)
{
    size_t len = 0;
    if (buf == NULL || cap == 0)
        return -ENOSPC;
    buf[0] = '\0';
    if (root[0] && !header_put(buf, cap, &len, "Root=", root, strlen(root)))
        return -ENOSPC;
    if (parent[0] && !header_put(buf, cap, &len, "Parent=", parent, strlen(parent)))
        return -ENOSPC;
    if (sampled && !header_put(buf, cap, &len, "Sampled=", sampled, 1))
        return -ENOSPC;
    if (extra_len && !header_put(buf, cap, &len, "", extra, extra_len))
        return -ENOSPC;
    return (int)len;
}

int xray_header_format(const struct xray_trace_header *h, char *buf, size_t cap)
{
    if (h == NULL)
        return -EINVAL;
    size_t extra_len = h->extra_len <= XRAY_HEADER_EXTRA_MAX ? h->extra_len : 0;
    return header_write(buf, cap, h->root, h->parent, header_sampled_text(h->sampled), h->extra,
                        extra_len);
}

/* A node's trace, id, decision and passed-on pairs never change after its begin, so
 * reading them needs no lock. */
int xray_header_for_segment(const struct xray_segment *seg, char *buf, size_t cap)
{
    if (seg == NULL)
        return XRAY_SDK_ENOCONTEXT;
    const struct xray__trace *t = seg->trace;
    return header_write(buf, cap, t->trace_id, seg->id, t->sampled ? "1" : "0", t->extra,
                        t->extra_len);
}

int xray_header_response(const struct xray_segment *seg, char *buf, size_t cap)
{
    if (seg == NULL)
        return XRAY_SDK_ENOCONTEXT;
    const struct xray__trace *t = seg->trace;
    return header_write(buf, cap, t->trace_id, "", t->requested ? (t->sampled ? "1" : "0") : NULL,
                        "", 0);
}
