/* SPDX-License-Identifier: Apache-2.0 */
/* The example backend: answers GET /item?id=N on libuv. Each request is a segment
 * continuing the caller's trace (X-Amzn-Trace-Id), with one `aws` subsegment playing
 * a DynamoDB GetItem (no network: it only records the call), and one request in ten
 * fails with a 500. With xrayd running, the service graph shows the caller, this
 * service and DynamoDB.
 *
 *   backend [--port N]     prints {"port": N} once listening; AWS_XRAY_DAEMON_ADDRESS,
 *                          AWS_XRAY_TRACING_NAME (default "backend") as in every SDK */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mini_http.h"
#include "xray/xray.h"

struct backend {
    struct xray_recorder *rec;
    unsigned long served;
};

static void backend_request(struct mini_conn *conn, const struct mini_request *req, void *data)
{
    struct backend *b = data;
    struct xray_server_request sr = {
        .trace_header = req->trace_header[0] ? req->trace_header : NULL,
        .method = req->method,
        .url = req->url,
        .host = req->host,
        .user_agent = req->user_agent,
        .client_ip = req->client_ip,
        .x_forwarded_for = req->x_forwarded_for[0] ? req->x_forwarded_for : NULL,
    };
    struct xray_segment *seg = xray_server_begin(b->rec, NULL, &sr, false);

    /* The table lookup: an aws subsegment with the fields the AWS SDKs record. */
    struct xray_segment *ddb = xray_subsegment_begin(seg, "DynamoDB");
    xray_segment_set_namespace(ddb, XRAY_NAMESPACE_AWS);
    struct xray_aws_info aws = {.operation = "GetItem",
                                .region = "us-east-1",
                                .table_name = "items",
                                .request_id = "EXAMPLE0000000000000000000000000000000000000000000",
                                .retries = -1};
    xray_segment_set_aws(ddb, &aws);
    xray_segment_set_http_response(ddb, 200, -1);
    xray_segment_end(ddb);

    bool fail = ++b->served % 10 == 0;
    const char *body = fail ? "{\"error\":\"backend failure\"}" : "{\"item\":\"ok\"}";
    int status = fail ? 500 : 200;
    if (fail)
        xray_segment_add_exception(seg, "BackendError", "one request in ten fails", 0);
    char line[XRAY_HEADER_BUF + 32] = "";
    char value[XRAY_HEADER_BUF];
    if (xray_server_response_header(seg, value, sizeof(value)) > 0)
        snprintf(line, sizeof(line), "%s: %s", XRAY_TRACE_HEADER_NAME, value);
    xray_server_end(seg, status, (int64_t)strlen(body));
    mini_respond(conn, status, line[0] ? line : NULL, body);
}

static void backend_stop(uv_signal_t *sig, int signum)
{
    (void)signum;
    uv_stop(sig->loop);
}

int main(int argc, char **argv)
{
    uint16_t port = 0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = (uint16_t)atoi(argv[++i]);
    signal(SIGPIPE, SIG_IGN);
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.service_name = "backend"; /* AWS_XRAY_TRACING_NAME overrides */
    char err[XRAY_SDK_ERR_LEN];
    struct backend b = {.rec = xray_recorder_create(&cfg, err)};
    if (b.rec == NULL) {
        fprintf(stderr, "backend: %s\n", err);
        return 1;
    }
    uv_loop_t *loop = uv_default_loop();
    uint16_t bound = 0;
    int rc = mini_listen(loop, port, backend_request, &b, &bound);
    if (rc != 0) {
        fprintf(stderr, "backend: listen: %s\n", uv_strerror(rc));
        return 1;
    }
    uv_signal_t sigterm, sigint;
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, backend_stop, SIGTERM);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigint, backend_stop, SIGINT);
    printf("{\"port\": %u}\n", (unsigned)bound);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    xray_recorder_destroy(b.rec);
    return 0;
}
