/* SPDX-License-Identifier: Apache-2.0 */
/* The service-map page's routes against a live server: each embedded file with its
 * type and security headers, 304 on a matching ETag, HEAD, 404 for unknown paths, and
 * the assets' own rules (no inline script, no markup built from strings). The loop
 * runs in the test's thread; a client thread makes blocking calls and asks it to close. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/ui_route.h"
#include "http/server.h"

#define RAW_MAX (256 * 1024)

struct reply {
    int status;
    char *raw;        /* headers and body, NUL-terminated */
    size_t len;       /* bytes in raw */
    const char *body; /* into raw */
    size_t body_len;
};

struct rig {
    uv_loop_t loop;
    uv_async_t done;
    uv_timer_t watchdog;
    uv_thread_t thread;
    struct http_server *server;
    int port;
    bool closed;
    void (*client)(struct rig *r);
};

/* One blocking request with Connection: close; reads until the server closes. */
static void call(int port, const char *method, const char *path, const char *extra,
                 struct reply *out)
{
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n", method,
                     path, extra);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    memset(out, 0, sizeof(*out));
    out->status = -1;
    out->raw = calloc(1, RAW_MAX + 1);
    out->body = "";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || write(fd, req, (size_t)n) != n) {
        close(fd);
        return;
    }
    ssize_t r;
    while (out->len < RAW_MAX && (r = read(fd, out->raw + out->len, RAW_MAX - out->len)) > 0)
        out->len += (size_t)r;
    close(fd);
    sscanf(out->raw, "HTTP/1.1 %d", &out->status);
    char *b = strstr(out->raw, "\r\n\r\n");
    if (b != NULL) {
        out->body = b + 4;
        out->body_len = out->len - (size_t)(out->body - out->raw);
    }
}

/* The value of header name in out (copied into val), or NULL. */
static const char *header(const struct reply *out, const char *name, char *val, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = strstr(out->raw, "\r\n"); p != NULL && p < out->body;
         p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t len = (size_t)(strstr(v, "\r\n") - v);
            if (len >= cap)
                len = cap - 1;
            memcpy(val, v, len);
            val[len] = '\0';
            return val;
        }
    }
    return NULL;
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the test did not finish in time");
}

static void on_server_closed(void *data)
{
    struct rig *r = data;
    r->closed = true;
}

static void on_done(uv_async_t *h)
{
    struct rig *r = h->data;
    uv_thread_join(&r->thread);
    http_server_close(r->server, on_server_closed, r);
    uv_close((uv_handle_t *)&r->done, NULL);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
}

static void client_thread(void *arg)
{
    struct rig *r = arg;
    r->client(r);
    uv_async_send(&r->done);
}

/* Runs client in a thread against a server with only the page's routes. */
static void run(void (*client)(struct rig *r))
{
    struct rig r = {.client = client};
    char err[XRAY_ERR_LEN];
    assert_int_equal(uv_loop_init(&r.loop), 0);
    r.server = http_server_create(&r.loop, NULL);
    assert_non_null(r.server);
    assert_int_equal(http_server_listen(r.server, "127.0.0.1:0", HTTP_ROLE_API, err), 0);
    r.port = http_server_port(r.server, HTTP_ROLE_API);
    assert_int_equal(ui_route_register(r.server), 0);
    uv_timer_init(&r.loop, &r.watchdog);
    uv_timer_start(&r.watchdog, on_watchdog, 20000, 0);
    uv_async_init(&r.loop, &r.done, on_done);
    r.done.data = &r;
    assert_int_equal(uv_thread_create(&r.thread, client_thread, &r), 0);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_true(r.closed);
    assert_int_equal(uv_loop_close(&r.loop), 0);
}

static const struct ui_route_asset *asset(const char *path)
{
    const struct ui_route_asset *a = ui_route_find(path, strlen(path));
    assert_non_null(a);
    return a;
}

/* The asset's bytes as a C string (the generator NUL-terminates each one). */
static const char *text(const struct ui_route_asset *a)
{
    assert_int_equal(a->data[a->len], 0);
    assert_int_equal(strlen((const char *)a->data), a->len);
    return (const char *)a->data;
}

static void test_ui_route_find_maps_paths(void **state)
{
    (void)state;
    assert_int_equal(ui_route_asset_count, 8);
    assert_string_equal(asset("/ui/favicon.svg")->content_type, "image/svg+xml");
    assert_ptr_equal(asset("/"), asset("/ui/index.html"));
    assert_string_equal(asset("/ui/app.js")->content_type, "text/javascript; charset=utf-8");
    assert_string_equal(asset("/ui/app.css")->content_type, "text/css; charset=utf-8");
    assert_string_equal(asset("/")->content_type, "text/html; charset=utf-8");
    assert_null(ui_route_find("/ui/", 4));
    assert_null(ui_route_find("/ui/app.j", 9));
    assert_null(ui_route_find("/ui/app.jsx", 11));
    assert_null(ui_route_find("/ui/../ui/app.js", 16));
    assert_null(ui_route_find("", 0));
    /* Lengths are honoured: "/ui/app.js" followed by anything is another path. */
    assert_non_null(ui_route_find("/ui/app.jsXYZ", 10));
    for (size_t i = 0; i < ui_route_asset_count; i++) {
        const struct ui_route_asset *a = &ui_route_assets[i];
        assert_true(a->len > 100);
        assert_int_equal(strlen(a->etag), 18); /* "\"" 16 hex "\"" */
        assert_int_equal(a->etag[0], '"');
    }
}

/* The page keeps to the rules its CSP enforces, and app.js never turns strings into
 * markup: segments' names reach the DOM as text only. */
static void test_ui_route_assets_rules(void **state)
{
    (void)state;
    const char *html = text(asset("/"));
    const char *css = text(asset("/ui/app.css"));
    assert_non_null(strstr(html, "<script type=\"module\" src=\"/ui/app.js\"></script>"));
    assert_non_null(strstr(html, "<link rel=\"stylesheet\" href=\"/ui/app.css\">"));
    for (const char *p = html; (p = strstr(p, "<script")) != NULL; p++)
        assert_true(strncmp(p, "<script type=\"module\" src=\"/ui/", 31) == 0);
    assert_null(strstr(html, "<style"));
    assert_null(strstr(html, " style="));
    for (const char *p = html; (p = strstr(p, " on")) != NULL; p++) { /* no onclick= */
        const char *q = p + 3;
        while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))
            q++;
        if (*q == '=')
            fail_msg("index.html has an inline handler: %.20s", p);
    }
    assert_null(strstr(html, "https:"));
    assert_null(strstr(css, "url("));
    assert_null(strstr(css, "@import"));
    static const char *const banned[] = {
        "innerHTML", "outerHTML",    "insertAdjacentHTML",       "document.write",
        "eval(",     "new Function", "createContextualFragment", "https:"};
    size_t modules = 0;
    for (size_t i = 0; i < ui_route_asset_count; i++) {
        const struct ui_route_asset *a = &ui_route_assets[i];
        if (strncmp(a->content_type, "text/javascript", 15) != 0)
            continue;
        const char *code = text(a);
        modules++;
        for (size_t j = 0; j < sizeof(banned) / sizeof(banned[0]); j++)
            if (strstr(code, banned[j]) != NULL)
                fail_msg("%s uses %s", a->path, banned[j]);
        /* Every module it imports is embedded too. */
        for (const char *p = code; (p = strstr(p, "from './")) != NULL; p++) {
            char path[64] = "/ui/";
            size_t n = strcspn(p + 8, "'");
            assert_true(n > 0 && n < sizeof(path) - 5);
            memcpy(path + 4, p + 8, n);
            path[4 + n] = '\0';
            if (ui_route_find(path, strlen(path)) == NULL)
                fail_msg("%s imports %s, which is not embedded", a->path, path);
        }
    }
    assert_int_equal(modules, 5);
    /* The read API calls the page makes. */
    assert_non_null(strstr(text(asset("/ui/graph.js")), "post('/ServiceGraph'"));
    assert_non_null(strstr(text(asset("/ui/traces.js")), "post('/TraceSummaries'"));
    assert_non_null(strstr(text(asset("/ui/traces.js")), "post('/Traces'"));
}

static void check_asset(const struct reply *rep, const struct ui_route_asset *a)
{
    char v[512];
    assert_int_equal(rep->status, 200);
    assert_string_equal(header(rep, "Content-Type", v, sizeof(v)), a->content_type);
    assert_int_equal(atoi(header(rep, "Content-Length", v, sizeof(v))), (int)a->len);
    assert_int_equal(rep->body_len, a->len);
    assert_memory_equal(rep->body, a->data, a->len);
    assert_string_equal(header(rep, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
    assert_string_equal(header(rep, "Cache-Control", v, sizeof(v)), "no-cache");
    assert_string_equal(header(rep, "ETag", v, sizeof(v)), a->etag);
    assert_string_equal(header(rep, "X-Frame-Options", v, sizeof(v)), "DENY");
    const char *csp = header(rep, "Content-Security-Policy", v, sizeof(v));
    assert_non_null(csp);
    assert_true(strncmp(csp, "default-src 'self';", 19) == 0);
    assert_non_null(strstr(csp, "script-src 'self';"));
    assert_null(strstr(csp, "unsafe-inline"));
    assert_null(strstr(csp, "unsafe-eval"));
}

static void client_assets(struct rig *r)
{
    static const char *const paths[] = {"/",           "/ui/index.html",  "/ui/app.js",
                                        "/ui/app.css", "/ui/favicon.svg", "/?refresh=1"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct reply rep;
        call(r->port, "GET", paths[i], "", &rep);
        const char *path = strcmp(paths[i], "/?refresh=1") == 0 ? "/" : paths[i];
        check_asset(&rep, asset(path));
        free(rep.raw);
    }
}

static void test_ui_route_serves_assets(void **state)
{
    (void)state;
    run(client_assets);
}

static void client_conditional(struct rig *r)
{
    const struct ui_route_asset *js = asset("/ui/app.js");
    char hdr[128], v[128];
    struct reply rep;

    snprintf(hdr, sizeof(hdr), "If-None-Match: %s\r\n", js->etag);
    call(r->port, "GET", "/ui/app.js", hdr, &rep);
    assert_int_equal(rep.status, 304);
    assert_int_equal(rep.body_len, 0);
    assert_string_equal(header(&rep, "ETag", v, sizeof(v)), js->etag);
    free(rep.raw);

    snprintf(hdr, sizeof(hdr), "If-None-Match: \"0000000000000000\", W/%s\r\n", js->etag);
    call(r->port, "GET", "/ui/app.js", hdr, &rep);
    assert_int_equal(rep.status, 304);
    free(rep.raw);

    /* Another file's tag, or a stale one: the whole file. */
    snprintf(hdr, sizeof(hdr), "If-None-Match: %s\r\n", asset("/")->etag);
    call(r->port, "GET", "/ui/app.js", hdr, &rep);
    check_asset(&rep, js);
    free(rep.raw);

    call(r->port, "HEAD", "/ui/app.css", "", &rep);
    assert_int_equal(rep.status, 200);
    assert_int_equal(atoi(header(&rep, "Content-Length", v, sizeof(v))),
                     (int)asset("/ui/app.css")->len);
    assert_int_equal(rep.body_len, 0);
    free(rep.raw);
}

static void test_ui_route_conditional_and_head(void **state)
{
    (void)state;
    run(client_conditional);
}

static void client_not_found(struct rig *r)
{
    char v[512];
    struct reply rep;
    static const char *const missing[] = {"/ui/", "/ui/nope.js", "/ui/app.js/", "/ui/../x",
                                          "/ui/index.htm"};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        call(r->port, "GET", missing[i], "", &rep);
        assert_int_equal(rep.status, 404);
        assert_string_equal(header(&rep, "Content-Type", v, sizeof(v)),
                            "text/plain; charset=utf-8");
        assert_string_equal(header(&rep, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
        assert_null(header(&rep, "ETag", v, sizeof(v)));
        free(rep.raw);
    }
    /* No route at all: the server's own 404. */
    call(r->port, "GET", "/index.html", "", &rep);
    assert_int_equal(rep.status, 404);
    free(rep.raw);
    /* The page is read-only. */
    call(r->port, "POST", "/", "Content-Length: 0\r\n", &rep);
    assert_int_equal(rep.status, 405);
    assert_string_equal(header(&rep, "Allow", v, sizeof(v)), "GET, HEAD");
    free(rep.raw);
}

static void test_ui_route_unknown_paths(void **state)
{
    (void)state;
    run(client_not_found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ui_route_find_maps_paths),
        cmocka_unit_test(test_ui_route_assets_rules),
        cmocka_unit_test(test_ui_route_serves_assets),
        cmocka_unit_test(test_ui_route_conditional_and_head),
        cmocka_unit_test(test_ui_route_unknown_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
