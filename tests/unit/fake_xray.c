/* SPDX-License-Identifier: Apache-2.0 */
/* The fake X-Ray endpoint of fake_xray.h. It reads requests framed by Content-Length
 * only (what libcurl sends for a POST with a known body) and fails the test on
 * anything it cannot hold. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fake_xray.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void fake_xray_on_write(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void fake_xray_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    struct fake_xray_conn *c = container_of((uv_tcp_t *)h, struct fake_xray_conn, tcp);
    (void)sz;
    *b = uv_buf_init(c->in + c->len, (unsigned)(FAKE_XRAY_IN_MAX - 1 - c->len));
}

static void fake_xray_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct fake_xray_conn *c = container_of((uv_tcp_t *)s, struct fake_xray_conn, tcp);
    struct fake_xray *f = c->f;
    (void)b;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, NULL);
        return;
    }
    c->len += (size_t)n;
    c->in[c->len] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    if (end == NULL)
        return;
    size_t head = (size_t)(end - c->in) + 4;
    const char *cl = strcasestr(c->in, "\r\nContent-Length:");
    size_t blen = cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    if (c->len < head + blen)
        return;
    assert_true(f->nreqs < FAKE_XRAY_MAX_REQ && head < sizeof(f->reqs[0].head));
    struct fake_xray_req *r = &f->reqs[f->nreqs];
    memcpy(r->head, c->in, head);
    r->head[head] = '\0';
    r->body = malloc(blen + 1);
    assert_non_null(r->body);
    memcpy(r->body, c->in + head, blen);
    r->body[blen] = '\0';
    r->body_len = blen;
    const char *reply = f->script[f->nreqs++];
    memmove(c->in, c->in + head + blen, c->len - head - blen);
    c->len -= head + blen;
    if (reply == NULL)
        return; /* silent: the client's timeout ends it */
    uv_write_t *w = malloc(sizeof(*w));
    assert_non_null(w);
    uv_buf_t out = uv_buf_init((char *)reply, (unsigned)strlen(reply));
    assert_int_equal(uv_write(w, s, &out, 1, fake_xray_on_write), 0);
}

static void fake_xray_on_connection(uv_stream_t *l, int status)
{
    struct fake_xray *f = container_of((uv_tcp_t *)l, struct fake_xray, listener);
    assert_int_equal(status, 0);
    struct fake_xray_conn *c = NULL;
    for (int i = 0; i < FAKE_XRAY_MAX_CONN && c == NULL; i++)
        c = f->conns[i].used ? NULL : &f->conns[i];
    assert_non_null(c);
    c->used = true;
    c->f = f;
    c->in = malloc(FAKE_XRAY_IN_MAX);
    assert_non_null(c->in);
    assert_int_equal(uv_tcp_init(l->loop, &c->tcp), 0);
    assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, fake_xray_alloc, fake_xray_on_read), 0);
}

void fake_xray_start(struct fake_xray *f, uv_loop_t *loop)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof(got);
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_init(loop, &f->listener), 0);
    assert_int_equal(uv_tcp_bind(&f->listener, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 16, fake_xray_on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&f->listener, (struct sockaddr *)&got, &len), 0);
    f->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

void fake_xray_close(struct fake_xray *f)
{
    uv_close((uv_handle_t *)&f->listener, NULL);
    for (int i = 0; i < FAKE_XRAY_MAX_CONN; i++)
        if (f->conns[i].used && !uv_is_closing((uv_handle_t *)&f->conns[i].tcp))
            uv_close((uv_handle_t *)&f->conns[i].tcp, NULL);
}

void fake_xray_free(struct fake_xray *f)
{
    for (int i = 0; i < FAKE_XRAY_MAX_REQ; i++)
        free(f->reqs[i].body);
    for (int i = 0; i < FAKE_XRAY_MAX_CONN; i++)
        free(f->conns[i].in);
}

const char *fake_xray_header(const char *head, const char *name, char *out, size_t cap)
{
    char key[96];
    snprintf(key, sizeof(key), "\r\n%s:", name);
    const char *p = strcasestr(head, key);
    out[0] = '\0';
    if (p != NULL) {
        p += strlen(key);
        p += strspn(p, " ");
        snprintf(out, cap, "%.*s", (int)strcspn(p, "\r"), p);
    }
    return out;
}

static int fake_xray_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

void fake_xray_header_names(const char *head, char *out, size_t cap)
{
    char names[32][64];
    int n = 0;
    for (const char *p = strstr(head, "\r\n"); p != NULL && p[2] != '\r' && n < 32;
         p = strstr(p + 2, "\r\n")) {
        snprintf(names[n], sizeof(names[n]), "%.*s", (int)strcspn(p + 2, ":"), p + 2);
        for (char *c = names[n]; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        n++;
    }
    qsort(names, (size_t)n, sizeof(names[0]), fake_xray_cmp);
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? ";" : "", names[i]);
}

const char *fake_xray_reply(char *out, size_t cap, const char *head, const char *body)
{
    snprintf(out, cap, "%sContent-Length: %zu\r\n\r\n%s", head, strlen(body), body);
    return out;
}
