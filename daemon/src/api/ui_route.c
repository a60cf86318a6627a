/* SPDX-License-Identifier: Apache-2.0 */
/* The service-map page's routes: GET / and GET /ui/<file> from the embedded assets,
 * with headers that keep the page to its own origin (a CSP without inline script, so
 * markup that slipped into the page from a segment still could not run), no MIME
 * sniffing and no framing. Assets are revalidated on every load (Cache-Control:
 * no-cache) and answered 304 when the browser's ETag matches, so a new xrayd binary
 * is picked up at once and an unchanged page costs a few headers. */
#include "api/ui_route.h"

#include <stdbool.h>
#include <string.h>

#include "http/request.h"
#include "http/server.h"

#define UI_ROUTE_INDEX "/ui/index.html"

/* connect-src 'self': the page only talks to the read API it came from. */
#define UI_ROUTE_CSP                                                                               \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "                 \
    "frame-ancestors 'none'"

static const char *const ui_route_headers[][2] = {
    {"Content-Security-Policy", UI_ROUTE_CSP},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
};

const struct ui_route_asset *ui_route_find(const char *path, size_t len)
{
    if (len == 1 && path[0] == '/') {
        path = UI_ROUTE_INDEX;
        len = strlen(UI_ROUTE_INDEX);
    }
    for (size_t i = 0; i < ui_route_asset_count; i++) {
        const struct ui_route_asset *a = &ui_route_assets[i];
        if (strlen(a->path) == len && memcmp(a->path, path, len) == 0)
            return a;
    }
    return NULL;
}

/* True when If-None-Match names etag: a list ("a", "b"), weak (W/"a") or "*". */
static bool ui_route_not_modified(const struct http_request *req, const char *etag)
{
    const char *v = http_request_header(req, "If-None-Match");
    return v != NULL && (strcmp(v, "*") == 0 || strstr(v, etag) != NULL);
}

static void ui_route_get(struct http_request *req, struct http_response *res, void *data)
{
    (void)data;
    /* Failing to add a header only drops that header: the answer still goes. */
    for (size_t i = 0; i < sizeof(ui_route_headers) / sizeof(ui_route_headers[0]); i++)
        http_response_header(res, ui_route_headers[i][0], ui_route_headers[i][1]);
    const struct ui_route_asset *a = ui_route_find(req->path, req->path_len);
    if (a == NULL) {
        static const char msg[] = "not found\n";
        http_response_send(res, 404, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
        return;
    }
    http_response_header(res, "Cache-Control", "no-cache");
    http_response_header(res, "ETag", a->etag);
    /* The server sends no body with a 304, and the asset's own Content-Length. */
    int status = ui_route_not_modified(req, a->etag) ? 304 : 200;
    http_response_send(res, status, a->content_type, a->data, a->len);
}

int ui_route_register(struct http_server *s)
{
    int rc = http_server_route(s, HTTP_ROLE_API, "GET", "/", ui_route_get, NULL);
    if (rc == 0)
        rc = http_server_route(s, HTTP_ROLE_API, "GET", "/ui/*", ui_route_get, NULL);
    return rc;
}
