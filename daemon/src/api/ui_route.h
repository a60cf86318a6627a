/* SPDX-License-Identifier: Apache-2.0 */
/* The service-map page: GET / and its assets on the API address, served from files
 * embedded into the binary at build time (daemon/ui/, turned into a generated
 * ui_assets.c by daemon/ui/embed_assets.cmake). Loop thread. */
#ifndef XRAYD_API_UI_ROUTE_H
#define XRAYD_API_UI_ROUTE_H

#include <stddef.h>

struct http_server;

/* One embedded file: static data, valid for the life of the process. */
struct ui_route_asset {
    const char *path;         /* where it is served: "/ui/app.js" */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const char *etag;         /* "\"<16 hex digits of its SHA-256>\"" */
    const unsigned char *data;
    size_t len;
};

/* The table the generated ui_assets.c defines. */
extern const struct ui_route_asset ui_route_assets[];
extern const size_t ui_route_asset_count;

/* The asset served at path (len bytes, no query): "/" is /ui/index.html. NULL when
 * there is none. Any thread. */
const struct ui_route_asset *ui_route_find(const char *path, size_t len);

/* Adds the page's routes (HTTP_ROLE_API): GET / and GET /ui/..., each answered with the
 * page's security headers; an unknown /ui/ path is a 404. 0, -ENOMEM or -ENOSPC. */
int ui_route_register(struct http_server *s);

#endif
