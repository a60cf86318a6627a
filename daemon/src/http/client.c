/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl's multi interface on the libuv loop: curl tells us which sockets to watch
 * (one uv_poll_t each) and when to wake it (one uv_timer_t); completed transfers are
 * collected with curl_multi_info_read and their callbacks run from the loop. Every
 * request in flight is on the active list, so close can cancel them all. It does not
 * retry or follow redirects; the proxy of each request is proxy.c's decision, never
 * curl's own reading of the environment.
 *
 * How it works: the wiring follows curl's docs/examples/multi-uv.c — socket callback
 * starts/stops polls, timer callback arms the timer, both feed
 * curl_multi_socket_action — with the state in struct http_client instead of globals.
 * Easy handles are recycled (a handle keeps its DNS and TLS session caches); the
 * connections themselves live in the multi handle's cache and are reused from there.
 * A connection's poll handle lives as long as its socket, not its transfer: curl opens
 * and closes connection sockets through our callbacks, so between two requests on a
 * kept-alive connection the poll stays registered, and it is only restarted when the
 * events curl asks for change (each uv_poll_start is an epoll_ctl DEL and ADD). */
#include "http/client.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "buf.h"
#include "error.h"
#include "http/proxy.h"
#include "log.h"

#define CLIENT_RETRY_AFTER_MAX_S (24 * 3600) /* ignore absurd Retry-After values */

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct client_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct http_client *c;
    struct client_sock *prev, *next;
    int events;  /* what the poll watches: UV_READABLE | UV_WRITABLE, 0 = stopped */
    bool kept;   /* a connection socket (client_open_socket): closed by client_close_socket,
                    so its poll outlives each transfer */
    bool wanted; /* curl watches it now; a kept socket between transfers does not */
};

struct client_req {
    struct http_client *c;
    CURL *easy;
    struct curl_slist *headers;
    struct buf body;
    void (*cb)(const struct http_client_result *res, void *data);
    void *data;
    struct client_req *prev, *next;
    int64_t retry_after_ms;
    int too_big;
    char errbuf[CURL_ERROR_SIZE];
};

struct http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct client_sock *socks;
    struct client_req *active;
    struct client_req *idle;
    unsigned idle_count;
    unsigned pending;
    unsigned max_pending;
    unsigned max_connections;
    unsigned timeout_ms;
    int no_verify_ssl;
    char ca_file[HTTP_CLIENT_CA_PATH_MAX]; /* "" = libcurl's built-in default */
    char ca_dir[HTTP_CLIENT_CA_PATH_MAX];  /* SSL_CERT_DIR, "" when unset */
    struct proxy *proxy;
    int closing;
    unsigned handles_closing;
    void (*close_cb)(void *data);
    void *close_data;
};

const char *http_client_error_name(enum http_client_error e)
{
    switch (e) {
    case HTTP_CLIENT_OK:
        return "ok";
    case HTTP_CLIENT_TIMEOUT:
        return "timeout";
    case HTTP_CLIENT_REFUSED:
        return "connection refused";
    case HTTP_CLIENT_UNKNOWN_HOST:
        return "unknown host";
    case HTTP_CLIENT_TOO_BIG:
        return "response too big";
    case HTTP_CLIENT_CANCELED:
        return "canceled";
    case HTTP_CLIENT_OTHER:
        break;
    }
    return "transport error";
}

/* ---- closing and freeing ---- */

static void client_maybe_free(struct http_client *c)
{
    if (!c->closing || c->handles_closing > 0)
        return;
    while (c->idle != NULL) {
        struct client_req *r = c->idle;
        c->idle = r->next;
        curl_easy_cleanup(r->easy);
        buf_free(&r->body);
        free(r);
    }
    void (*cb)(void *) = c->close_cb;
    void *data = c->close_data;
    proxy_destroy(c->proxy);
    free(c);
    if (cb != NULL)
        cb(data);
}

static void client_on_sock_close(uv_handle_t *h)
{
    struct client_sock *s = container_of((uv_poll_t *)h, struct client_sock, poll);
    struct http_client *c = s->c;
    free(s);
    c->handles_closing--;
    client_maybe_free(c);
}

static void client_on_timer_close(uv_handle_t *h)
{
    struct http_client *c = container_of((uv_timer_t *)h, struct http_client, timer);
    c->handles_closing--;
    client_maybe_free(c);
}

static void client_sock_close(struct client_sock *s)
{
    struct http_client *c = s->c;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    c->handles_closing++;
    uv_close((uv_handle_t *)&s->poll, client_on_sock_close);
}

/* ---- requests ---- */

static void client_active_unlink(struct client_req *r)
{
    struct http_client *c = r->c;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        c->active = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    c->pending--;
}

/* Puts a finished request's handle back for reuse, or frees it. */
static void client_req_recycle(struct client_req *r)
{
    struct http_client *c = r->c;
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    r->cb = NULL;
    r->data = NULL;
    if (r->body.cap > 64 * 1024)
        buf_free(&r->body); /* keep small buffers only: one large reply must not pin memory */
    buf_reset(&r->body);
    if (c->closing || c->idle_count >= c->max_connections) {
        curl_easy_cleanup(r->easy);
        buf_free(&r->body);
        free(r);
        return;
    }
    r->next = c->idle;
    c->idle = r;
    c->idle_count++;
}

/* Maps a failed transfer onto BackendConnectionErrors' classes. Connecting covers the
 * proxy too: a refused proxy is a refused connection, an unresolvable one an unknown
 * host; a proxy that refuses the tunnel is a transport error. */
static enum http_client_error client_error_class(CURLcode code, long os_errno, int too_big)
{
    switch (code) {
    case CURLE_OK:
        return HTTP_CLIENT_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTP_CLIENT_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
        return os_errno == ECONNREFUSED ? HTTP_CLIENT_REFUSED
               : os_errno == ETIMEDOUT  ? HTTP_CLIENT_TIMEOUT
                                        : HTTP_CLIENT_OTHER;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return HTTP_CLIENT_UNKNOWN_HOST;
    case CURLE_WRITE_ERROR:
        return too_big ? HTTP_CLIENT_TOO_BIG : HTTP_CLIENT_OTHER;
    default:
        return HTTP_CLIENT_OTHER;
    }
}

static void client_req_finish(struct client_req *r, CURLcode code, int canceled)
{
    struct http_client *c = r->c;
    struct http_client_result res = {.retry_after_ms = -1, .message = ""};
    long status = 0;
    long os_errno = 0;

    if (c->multi != NULL)
        curl_multi_remove_handle(c->multi, r->easy);
    client_active_unlink(r);
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    res.status = (int)status;
    if (canceled) {
        res.error = HTTP_CLIENT_CANCELED;
        res.message = "canceled: the client is closing";
    } else if (code == CURLE_OK) {
        res.error = HTTP_CLIENT_OK;
    } else {
        if (code == CURLE_COULDNT_CONNECT)
            curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
        res.error = client_error_class(code, os_errno, r->too_big);
        res.message = r->too_big          ? "response body over its size limit"
                      : r->errbuf[0] != 0 ? r->errbuf
                                          : curl_easy_strerror(code);
    }
    if (res.error == HTTP_CLIENT_OK) {
        res.body = r->body.data != NULL ? r->body.data : "";
        res.body_len = r->body.len;
        res.retry_after_ms = r->retry_after_ms;
    } else {
        res.body = "";
    }
    r->cb(&res, r->data);
    client_req_recycle(r);
}

static void client_check_done(struct http_client *c)
{
    CURLMsg *msg;
    int left;
    while (!c->closing && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURLcode code = msg->data.result; /* msg is invalid once the handle is removed */
        char *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        client_req_finish((struct client_req *)priv, code, 0);
    }
}

/* ---- curl <-> libuv ---- */

static int client_sock_watch(struct client_sock *s, int events);

static void client_on_poll(uv_poll_t *p, int status, int events)
{
    struct client_sock *s = container_of(p, struct client_sock, poll);
    struct http_client *c = s->c;
    int flags = 0;
    int running;
    if (c->closing)
        return;
    if (!s->wanted) {
        /* A kept-alive connection spoke or closed between transfers. curl finds out
         * when it next tries it; until then, stop the events from coming back. */
        client_sock_watch(s, 0);
        return;
    }
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    client_check_done(c); /* s may be gone by now */
}

static void client_on_timer(uv_timer_t *t)
{
    struct http_client *c = container_of(t, struct http_client, timer);
    int running;
    if (c->closing)
        return;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    client_check_done(c);
}

static struct client_sock *client_sock_new(struct http_client *c, curl_socket_t fd)
{
    struct client_sock *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
        free(s);
        return NULL;
    }
    s->fd = fd;
    s->c = c;
    s->next = c->socks;
    if (c->socks != NULL)
        c->socks->prev = s;
    c->socks = s;
    return s;
}

/* The record of fd; a short walk: at most max_connections sockets, and a few more. */
static struct client_sock *client_sock_find(struct http_client *c, curl_socket_t fd)
{
    for (struct client_sock *s = c->socks; s != NULL; s = s->next)
        if (s->fd == fd)
            return s;
    return NULL;
}

static int client_sock_watch(struct client_sock *s, int events)
{
    if (events == s->events)
        return 0;
    s->events = events;
    if (events == 0)
        return uv_poll_stop(&s->poll) == 0 ? 0 : -1;
    return uv_poll_start(&s->poll, events, client_on_poll) == 0 ? 0 : -1;
}

static int client_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct http_client *c = userp;
    struct client_sock *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            if (!c->closing)
                curl_multi_assign(c->multi, fd, NULL);
            s->wanted = false;
            if (!s->kept)
                client_sock_close(s);
            else if (s->events & UV_WRITABLE)
                client_sock_watch(s, UV_READABLE); /* an idle socket is always writable */
        }
        return 0;
    }
    if (s == NULL) {
        s = client_sock_find(c, fd); /* a kept connection, back from curl's cache */
        if (s == NULL && (s = client_sock_new(c, fd)) == NULL)
            return -1;
        curl_multi_assign(c->multi, fd, s);
    }
    s->wanted = true;
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    return client_sock_watch(s, events);
}

/* Connection sockets: curl opens them here and closes them in client_close_socket,
 * which is what lets a poll handle live from one to the other. */
static curl_socket_t client_open_socket(void *userp, curlsocktype purpose,
                                        struct curl_sockaddr *addr)
{
    struct http_client *c = userp;
    curl_socket_t fd = socket(addr->family, addr->socktype, addr->protocol);
    if (fd == CURL_SOCKET_BAD || purpose != CURLSOCKTYPE_IPCXN || c->closing)
        return fd;
    struct client_sock *s = client_sock_new(c, fd);
    if (s != NULL)
        s->kept = true; /* else it gets a poll per transfer, as any other socket */
    return fd;
}

static int client_close_socket(void *userp, curl_socket_t fd)
{
    struct http_client *c = userp;
    struct client_sock *s = client_sock_find(c, fd);
    if (s != NULL)
        client_sock_close(s); /* stops polling before the descriptor goes */
    return close(fd);
}

static int client_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_client *c = userp;
    (void)multi;
    if (c->closing)
        return 0;
    if (timeout_ms < 0)
        return uv_timer_stop(&c->timer) == 0 ? 0 : -1;
    /* 0 means "now": the timer fires on the next loop turn, never inside curl. */
    return uv_timer_start(&c->timer, client_on_timer, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

static size_t client_on_body(char *ptr, size_t size, size_t nmemb, void *userp)
{
    struct client_req *r = userp;
    size_t n = size * nmemb;
    if (buf_append(&r->body, ptr, n) != 0) {
        r->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

/* Retry-After is delay-seconds or an HTTP-date (RFC 9110, 10.2.3). */
static int64_t client_parse_retry_after(const char *v, size_t n)
{
    char tmp[64];
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    int64_t s = 0;
    size_t i = 0;
    while (i < n && isdigit((unsigned char)v[i]) && s <= CLIENT_RETRY_AFTER_MAX_S)
        s = s * 10 + (v[i++] - '0');
    if (i == n)
        return (s > CLIENT_RETRY_AFTER_MAX_S ? CLIENT_RETRY_AFTER_MAX_S : s) * 1000;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    time_t when = curl_getdate(tmp, NULL);
    if (when < 0)
        return -1;
    int64_t delta = (int64_t)when - (int64_t)time(NULL);
    if (delta < 0)
        delta = 0;
    if (delta > CLIENT_RETRY_AFTER_MAX_S)
        delta = CLIENT_RETRY_AFTER_MAX_S;
    return delta * 1000;
}

static size_t client_on_header(char *ptr, size_t size, size_t nmemb, void *userp)
{
    struct client_req *r = userp;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        r->retry_after_ms = -1; /* a new response (after 100 Continue, say) */
    else if (n > sizeof(name) - 1 && strncasecmp(ptr, name, sizeof(name) - 1) == 0)
        r->retry_after_ms =
            client_parse_retry_after(ptr + sizeof(name) - 1, n - (sizeof(name) - 1));
    return n;
}

/* ---- public API ---- */

/* Where CA bundles live: Debian/Ubuntu, then Amazon Linux / RHEL / Fedora, SUSE,
 * Alpine and the BSD-style path. Debian's libcurl looks only at the first, so a
 * relocatable build on Amazon Linux 2023 would trust nothing without this list. */
static const char *const client_ca_files[] = {
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
};

int http_client_ca_file(const char *env_file, const char *builtin, char *out, size_t cap)
{
    const char *pick = NULL;
    if (env_file != NULL && *env_file != '\0')
        pick = env_file; /* SSL_CERT_FILE: the user's word, as OpenSSL and Go take it */
    else if (builtin != NULL && *builtin != '\0' && access(builtin, R_OK) == 0)
        pick = NULL; /* libcurl's own default is there: leave it */
    else
        for (size_t i = 0; i < sizeof(client_ca_files) / sizeof(client_ca_files[0]); i++)
            if (access(client_ca_files[i], R_OK) == 0) {
                pick = client_ca_files[i];
                break;
            }
    if (pick == NULL || strlen(pick) >= cap) {
        if (cap > 0)
            out[0] = '\0';
        return 0;
    }
    snprintf(out, cap, "%s", pick);
    return 1;
}

struct http_client *http_client_create(uv_loop_t *loop, const struct http_client_options *opt)
{
    static int curl_ready;
    struct http_client_options none = {0};
    if (opt == NULL)
        opt = &none;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            proxy_destroy(opt->proxy);
            return NULL;
        }
        curl_ready = 1;
    }
    struct http_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        proxy_destroy(opt->proxy);
        return NULL;
    }
    c->proxy = opt->proxy;
    c->loop = loop;
    c->max_connections = opt->max_connections ? opt->max_connections : HTTP_CLIENT_MAX_CONNECTIONS;
    c->max_pending = opt->max_pending ? opt->max_pending : HTTP_CLIENT_MAX_PENDING;
    c->timeout_ms = opt->timeout_ms ? opt->timeout_ms : HTTP_CLIENT_TIMEOUT_MS;
    c->no_verify_ssl = opt->no_verify_ssl;
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    if (http_client_ca_file(getenv("SSL_CERT_FILE"),
                            vi != NULL && vi->age >= CURLVERSION_SEVENTH ? vi->cainfo : NULL,
                            c->ca_file, sizeof(c->ca_file)))
        XLOG_INFO("http", "CA certificates from %s", c->ca_file);
    const char *dir = getenv("SSL_CERT_DIR");
    if (dir != NULL && strlen(dir) < sizeof(c->ca_dir))
        snprintf(c->ca_dir, sizeof(c->ca_dir), "%s", dir);
    if ((c->multi = curl_multi_init()) == NULL)
        goto fail;
    if (uv_timer_init(loop, &c->timer) != 0) {
        curl_multi_cleanup(c->multi);
        goto fail;
    }
    long host_max = opt->max_host_connections ? (long)opt->max_host_connections
                                              : (long)HTTP_CLIENT_MAX_HOST_CONNECTIONS;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, client_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, client_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->max_connections);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, host_max);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->max_connections);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    if (proxy_enabled(c->proxy)) {
        char how[512];
        proxy_describe(c->proxy, how, sizeof(how));
        XLOG_INFO("http", "outbound proxy: %s", how);
    }
    return c;
fail:
    proxy_destroy(c->proxy);
    free(c);
    return NULL;
}

unsigned http_client_pending(const struct http_client *c)
{
    return c->pending;
}

static int client_req_setup(struct http_client *c, struct client_req *r,
                            const struct http_client_request *req)
{
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, client_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, c);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, client_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, client_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, client_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     (long)(req->timeout_ms ? req->timeout_ms : c->timeout_ms));
    /* proxy.c decides for this URL. An explicit "" proxy and an empty NOPROXY list
     * keep libcurl from reading proxy variables on its own. */
    const char *via = req->direct ? NULL : proxy_for_url(c->proxy, req->url);
    curl_easy_setopt(e, CURLOPT_PROXY, via != NULL ? via : "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    if (c->no_verify_ssl) {
        /* NoVerifySSL covers an https:// proxy too, as the reference's transport does. */
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYHOST, 0L);
    }
    if (c->ca_file[0] != '\0') {
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
        curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, c->ca_file);
    }
    if (c->ca_dir[0] != '\0') {
        curl_easy_setopt(e, CURLOPT_CAPATH, c->ca_dir);
        curl_easy_setopt(e, CURLOPT_PROXY_CAPATH, c->ca_dir);
    }
    if (curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK)
        return -EINVAL;

    const char *m = req->method;
    if (req->body != NULL || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
        strcmp(m, "PATCH") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
        if (strcmp(m, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }

    /* "Expect:" turns off 100-continue: one round trip less per upload. */
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; h != NULL && i < req->header_count; i++) {
        struct curl_slist *n = curl_slist_append(h, req->headers[i]);
        if (n == NULL) {
            curl_slist_free_all(h);
            h = NULL;
        }
        h = n;
    }
    if (h == NULL)
        return -ENOMEM;
    r->headers = h;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    return 0;
}

int http_client_request(struct http_client *c, const struct http_client_request *req,
                        void (*cb)(const struct http_client_result *res, void *data), void *data)
{
    if (c == NULL || req == NULL || req->method == NULL || req->url == NULL || cb == NULL ||
        (req->header_count > 0 && req->headers == NULL))
        return -EINVAL;
    if (c->closing)
        return XRAY_ECLOSED;
    if (c->pending >= c->max_pending)
        return XRAY_EFULL;

    struct client_req *r = c->idle;
    if (r != NULL) {
        c->idle = r->next;
        c->idle_count--;
        curl_easy_reset(r->easy);
    } else {
        if ((r = calloc(1, sizeof(*r))) == NULL)
            return -ENOMEM;
        if ((r->easy = curl_easy_init()) == NULL) {
            free(r);
            return -ENOMEM;
        }
        r->c = c;
        buf_init(&r->body, 0);
    }
    /* A recycled request keeps its small buffer; only the cap changes. */
    r->body.max = req->max_response ? req->max_response : HTTP_CLIENT_MAX_RESPONSE;
    r->body.len = 0;
    r->next = r->prev = NULL;
    r->too_big = 0;
    r->retry_after_ms = -1;
    r->errbuf[0] = '\0';
    r->cb = cb;
    r->data = data;

    int rc = client_req_setup(c, r, req);
    if (rc == 0 && curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
        rc = -ENOMEM;
    if (rc != 0) {
        curl_slist_free_all(r->headers);
        r->headers = NULL;
        curl_easy_cleanup(r->easy);
        buf_free(&r->body);
        free(r);
        return rc;
    }
    r->next = c->active;
    if (c->active != NULL)
        c->active->prev = r;
    c->active = r;
    c->pending++;
    return 0;
}

void http_client_close(struct http_client *c, void (*cb)(void *data), void *data)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->close_cb = cb;
    c->close_data = data;
    uv_timer_stop(&c->timer);
    while (c->active != NULL)
        client_req_finish(c->active, CURLE_OK, 1);
    CURLM *multi = c->multi;
    c->multi = NULL;
    curl_multi_cleanup(multi);
    while (c->socks != NULL)
        client_sock_close(c->socks);
    c->handles_closing++;
    uv_close((uv_handle_t *)&c->timer, client_on_timer_close);
}
