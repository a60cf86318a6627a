/* SPDX-License-Identifier: Apache-2.0 */
/* The example frontend: each request (any path) is a segment; it calls the backend
 * with libcurl through <xray/xray_curl.h> - a `remote` subsegment whose id travels in
 * X-Amzn-Trace-Id - and answers with the backend's status. The loop stays free: the
 * blocking curl call runs on libuv's thread pool with the segment passed explicitly
 * (segments may be used from any thread).
 *
 *   frontend --backend http://127.0.0.1:PORT [--port N]
 *       prints {"port": N} once listening; AWS_XRAY_DAEMON_ADDRESS and
 *       AWS_XRAY_TRACING_NAME (default "frontend") as in every SDK */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mini_http.h"
#include "xray/xray_curl.h"

struct frontend {
    struct xray_recorder *rec;
    const char *backend;
};

/* One request waiting for the backend. */
struct call {
    uv_work_t work;
    struct mini_conn *conn;
    struct xray_segment *seg;
    char url[MINI_FIELD_MAX + 256];
    long status;
    char body[512];
    size_t body_len;
};

static size_t frontend_collect(char *p, size_t size, size_t n, void *data)
{
    struct call *c = data;
    size_t take = size * n;
    if (take > sizeof(c->body) - 1 - c->body_len)
        take = sizeof(c->body) - 1 - c->body_len;
    memcpy(c->body + c->body_len, p, take);
    c->body_len += take;
    c->body[c->body_len] = '\0';
    return size * n;
}

/* Thread pool: the traced call. */
static void frontend_call_backend(uv_work_t *w)
{
    struct call *c = w->data;
    CURL *easy = curl_easy_init();
    if (easy == NULL) {
        c->status = 502;
        return;
    }
    curl_easy_setopt(easy, CURLOPT_URL, c->url);
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "frontend/1.0 libcurl");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, frontend_collect);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, c);
    CURLcode rc = xray_curl_perform(easy, NULL, c->seg, NULL);
    c->status = 502;
    if (rc == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &c->status);
    curl_easy_cleanup(easy);
}

/* Loop: answer the client with the backend's status. */
static void frontend_answer(uv_work_t *w, int status)
{
    (void)status;
    struct call *c = w->data;
    char body[768];
    snprintf(body, sizeof(body), "{\"trace_id\":\"%s\",\"status\":%ld,\"backend\":%s}",
             c->seg ? xray_segment_trace_id(c->seg) : "", c->status,
             c->body_len ? c->body : "null");
    char line[XRAY_HEADER_BUF + 32] = "";
    char value[XRAY_HEADER_BUF];
    if (xray_server_response_header(c->seg, value, sizeof(value)) > 0)
        snprintf(line, sizeof(line), "%s: %s", XRAY_TRACE_HEADER_NAME, value);
    xray_server_end(c->seg, (int)c->status, (int64_t)strlen(body));
    mini_respond(c->conn, (int)c->status, line[0] ? line : NULL, body);
    free(c);
}

static void frontend_request(struct mini_conn *conn, const struct mini_request *req, void *data)
{
    struct frontend *f = data;
    struct call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        mini_respond(conn, 503, NULL, "{}");
        return;
    }
    struct xray_server_request sr = {
        .trace_header = req->trace_header[0] ? req->trace_header : NULL,
        .method = req->method,
        .url = req->url,
        .host = req->host,
        .user_agent = req->user_agent,
        .client_ip = req->client_ip,
        .x_forwarded_for = req->x_forwarded_for[0] ? req->x_forwarded_for : NULL,
    };
    c->conn = conn;
    c->seg = xray_server_begin(f->rec, NULL, &sr, false);
    snprintf(c->url, sizeof(c->url), "%s%s", f->backend, req->url);
    c->work.data = c;
    if (uv_queue_work(uv_default_loop(), &c->work, frontend_call_backend, frontend_answer) != 0) {
        xray_server_end(c->seg, 503, -1);
        mini_respond(conn, 503, NULL, "{}");
        free(c);
    }
}

static void frontend_stop(uv_signal_t *sig, int signum)
{
    (void)signum;
    uv_stop(sig->loop);
}

int main(int argc, char **argv)
{
    uint16_t port = 0;
    struct frontend f = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = (uint16_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            f.backend = argv[++i];
    }
    if (f.backend == NULL) {
        fprintf(stderr, "usage: frontend --backend http://HOST:PORT [--port N]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.service_name = "frontend"; /* AWS_XRAY_TRACING_NAME overrides */
    char err[XRAY_SDK_ERR_LEN];
    f.rec = xray_recorder_create(&cfg, err);
    if (f.rec == NULL) {
        fprintf(stderr, "frontend: %s\n", err);
        return 1;
    }
    uv_loop_t *loop = uv_default_loop();
    uint16_t bound = 0;
    int rc = mini_listen(loop, port, frontend_request, &f, &bound);
    if (rc != 0) {
        fprintf(stderr, "frontend: listen: %s\n", uv_strerror(rc));
        return 1;
    }
    uv_signal_t sigterm, sigint;
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, frontend_stop, SIGTERM);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigint, frontend_stop, SIGINT);
    printf("{\"port\": %u}\n", (unsigned)bound);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    xray_recorder_destroy(f.rec);
    curl_global_cleanup();
    return 0;
}
