/* SPDX-License-Identifier: Apache-2.0 */
/* xrayd's entry point: wiring only. Reads the configuration, chooses the upstream,
 * builds the parts, runs the loop, and on SIGTERM/SIGINT shuts down in order: stop
 * receiving, let the worker finish, upload what is buffered, send the final telemetry
 * record, close everything — or close anyway when the deadline passes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api/healthz.h"
#include "api/sampling_proxy.h"
#include "api/traces.h"
#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "aws/region.h"
#include "config/config.h"
#include "http/client.h"
#include "http/proxy.h"
#include "http/server.h"
#include "ingest/pool.h"
#include "ingest/udp.h"
#include "log.h"
#include "pipeline.h"
#include "stats.h"
#include "trace/store.h"
#include "upstream/local.h"
#include "upstream/telemetry.h"
#include "upstream/upstream.h"
#include "upstream/upstream_aws.h"
#include "upstream/xray.h"
#include "util.h"
#include "worker.h"

#define MOD                     "main"
#define WORKER_CAPACITY         8192 /* documents inside the worker at once; bounded by the pool too */
#define HEALTH_CHECK_TIMEOUT_MS 2000

struct xrayd {
    struct config cfg;
    uv_loop_t loop;
    struct stats stats;
    struct pool *pool;
    struct pipeline *pipeline;
    struct worker worker;
    bool worker_running;
    struct udp *udp;
    struct http_server *http;
    struct http_client *http_client;
    struct credentials_chain *creds;
    struct xray *xray;
    struct store *store;
    struct upstream *upstream;
    struct telemetry *telemetry;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t deadline;
    uint64_t started_ms;

    bool use_aws;
    char upstream_reason[160];
    char region[REGION_MAX];
    const char *region_source;
    char endpoint[ENDPOINT_URL_MAX];

    bool shutting_down;
    bool closing;
};

/* --- the upload side --------------------------------------------------------------- */

/* The telemetry sender: PutTelemetryRecords through the same signed X-Ray client. */
struct telemetry_call {
    void (*done)(int http_status, void *data);
    void *data;
};

static void telemetry_call_done(const struct http_client_result *res, void *data)
{
    struct telemetry_call *call = data;
    call->done(res->error == HTTP_CLIENT_OK ? res->status : 0, call->data);
    free(call);
}

static int telemetry_send(void *ctx, const char *path, const void *body, size_t len,
                          void (*done)(int http_status, void *data), void *data)
{
    struct telemetry_call *call = malloc(sizeof(*call));
    if (call == NULL)
        return -ENOMEM;
    call->done = done;
    call->data = data;
    int rc = xray_call(ctx, path, body, len, telemetry_call_done, call);
    if (rc != 0)
        free(call);
    return rc;
}

/* Decides "Which upstream" (daemon-compat.md) and says why. 0, or 1 with the error
 * printed: an explicit aws upstream with no region cannot sign anything. */
static int xrayd_choose_upstream(struct xrayd *d)
{
    char err[XRAY_ERR_LEN] = "";
    const struct config *cfg = &d->cfg;
    int rc = region_resolve(cfg->region, NULL, cfg->local_mode, d->region, &d->region_source, err);
    bool have_region = rc == 0;
    bool endpoint_set = cfg->endpoint != NULL && *cfg->endpoint != '\0';

    if (strcmp(cfg->upstream, "local") == 0) {
        d->use_aws = false;
        snprintf(d->upstream_reason, sizeof(d->upstream_reason), "--upstream local");
        return 0;
    }
    if (strcmp(cfg->upstream, "aws") == 0) {
        d->use_aws = true;
        snprintf(d->upstream_reason, sizeof(d->upstream_reason), "--upstream aws");
    } else if (endpoint_set) {
        d->use_aws = true;
        snprintf(d->upstream_reason, sizeof(d->upstream_reason), "Endpoint is set");
    } else if (have_region) {
        d->use_aws = true;
        snprintf(d->upstream_reason, sizeof(d->upstream_reason), "region %s from %s", d->region,
                 d->region_source);
    } else {
        d->use_aws = false;
        snprintf(d->upstream_reason, sizeof(d->upstream_reason),
                 "no AWS region from -n/Region, AWS_REGION, ECS or instance metadata, "
                 "or the profile");
        return 0;
    }
    if (!have_region) {
        fprintf(stderr,
                "xrayd: the aws upstream needs a region: set -n/--region, Region in "
                "cfg.yaml, AWS_REGION, or region in the AWS profile (%s)\n",
                err);
        return 1;
    }
    rc = endpoint_resolve("xray", "XRAY", cfg->endpoint, d->region, d->endpoint,
                          sizeof(d->endpoint), err);
    if (rc != 0) {
        fprintf(stderr, "xrayd: X-Ray endpoint: %s\n", err);
        return 1;
    }
    return 0;
}

static int xrayd_build_upstream(struct xrayd *d)
{
    const struct config *cfg = &d->cfg;
    struct telemetry_identity id;
    /* Instance metadata only for a daemon that reports to AWS, and never with -o. */
    telemetry_identity_from_env(&id, cfg->resource_arn, d->use_aws && !cfg->local_mode);
    struct upstream_options uo = {
        .loop = &d->loop,
        .pool = d->pool,
        .stats = &d->stats,
        .concurrency = (unsigned)cfg->concurrency,
        .retry = {.attempts = (unsigned)cfg->retry_attempts,
                  .budget_ms = (uint64_t)cfg->retry_budget_ms,
                  .backoff_min_ms = (uint64_t)cfg->retry_backoff_min_ms,
                  .backoff_max_ms = (uint64_t)cfg->retry_backoff_max_ms},
        /* .on_give_up: NULL until the spool takes what runs out of retries. */
    };

    if (!d->use_aws) {
        d->store = store_create((size_t)cfg->store_mb * 1024 * 1024);
        if (d->store == NULL)
            return -ENOMEM;
        uo.ctx = d->store;
        d->upstream = upstream_create(&upstream_local_ops, &uo);
        /* No AWS account: telemetry is only counted (it shows in /healthz). */
        d->telemetry = telemetry_create(&d->loop, &d->stats, &id, NULL, 0);
        return d->upstream && d->telemetry ? 0 : -ENOMEM;
    }

    struct proxy_settings ps;
    struct proxy *proxy = NULL;
    char perr[XRAY_ERR_LEN];
    proxy_settings_from_env(&ps, cfg->proxy_address);
    if (proxy_create(&ps, &proxy, perr) != 0) {
        fprintf(stderr, "xrayd: %s\n", perr);
        XLOG_ERR(MOD, "%s", perr);
        return XRAY_ECONFIG;
    }
    struct http_client_options ho = {
        .no_verify_ssl = cfg->no_verify_ssl,
        .proxy = proxy, /* the client owns it from here */
        .timeout_ms = (unsigned)cfg->request_timeout_ms,
    };
    d->http_client = http_client_create(&d->loop, &ho);
    char sts[ENDPOINT_URL_MAX], serr[XRAY_ERR_LEN];
    if (endpoint_resolve("sts", "STS", NULL, d->region, sts, sizeof(sts), serr) != 0) {
        fprintf(stderr, "xrayd: STS endpoint: %s\n", serr);
        XLOG_ERR(MOD, "STS endpoint: %s", serr);
        return XRAY_ECONFIG;
    }
    struct credentials_options co = {
        .http = d->http_client,
        .region = d->region,
        .sts_endpoint = sts,
        .role_arn = cfg->role_arn, /* -r: every call signed with the assumed role */
    };
    d->creds = credentials_chain_create(&co);
    if (d->http_client == NULL || d->creds == NULL)
        return -ENOMEM;
    struct xray_options xo = {
        .http = d->http_client,
        .creds = d->creds,
        .endpoint = d->endpoint,
        .region = d->region,
        .stats = &d->stats,
        .timeout_ms = (unsigned)cfg->request_timeout_ms,
    };
    d->xray = xray_create(&xo);
    if (d->xray == NULL)
        return -ENOMEM;
    uo.ctx = d->xray;
    d->upstream = upstream_create(&upstream_aws_ops, &uo);
    struct telemetry_sender sender = {.send = telemetry_send, .ctx = d->xray};
    d->telemetry = telemetry_create(&d->loop, &d->stats, &id, &sender, 0);
    return d->upstream && d->telemetry ? 0 : -ENOMEM;
}

/* --- the receive side -------------------------------------------------------------- */

static void xrayd_on_doc(struct doc *doc, void *data)
{
    struct xrayd *d = data;
    if (!worker_submit(&d->worker, doc)) {
        stats_reject(&d->stats, STATS_REJECT_QUEUE_FULL);
        XLOG_EVERY(10000, LOG_LEVEL_WARN, MOD, "worker queue full: document dropped");
        pool_free(d->pool, doc);
    }
}

/* Loop thread: a document is back from the worker, checked. */
static void xrayd_on_checked(struct doc *doc, void *data)
{
    struct xrayd *d = data;
    if (doc->reject >= 0) {
        stats_reject(&d->stats, (enum stats_reject)doc->reject);
        XLOG_EVERY(10000, LOG_LEVEL_WARN, MOD, "document rejected: %s (%u bytes)",
                   stats_reject_labels[doc->reject], (unsigned)doc->len);
        pool_free(d->pool, doc);
        return;
    }
    upstream_submit(d->upstream, doc);
}

/* --- /healthz ----------------------------------------------------------------------- */

static void xrayd_health(void *data, struct healthz_snapshot *out)
{
    struct xrayd *d = data;
    const char *err = upstream_last_error(d->upstream);
    memset(out, 0, sizeof(*out));
    out->status = d->shutting_down                                    ? HEALTHZ_SHUTTING_DOWN
                  : d->xray && xray_consecutive_failures(d->xray) > 0 ? HEALTHZ_DEGRADED
                                                                      : HEALTHZ_OK;
    out->uptime_s = (uv_now(&d->loop) - d->started_ms) / 1000;
    out->upstream = d->use_aws ? "aws" : "local";
    out->upstream_reason = d->upstream_reason;
    out->last_upstream_error = err && *err ? err : NULL;

    struct healthz_entry *q = out->queues;
    q[out->queue_count++] = (struct healthz_entry){"worker", worker_inflight(&d->worker)};
    q[out->queue_count++] = (struct healthz_entry){"upload", upstream_queued(d->upstream)};
    q[out->queue_count++] =
        (struct healthz_entry){"upload_in_flight", upstream_in_flight(d->upstream)};
    q[out->queue_count++] =
        (struct healthz_entry){"upload_retrying", upstream_retrying(d->upstream)};
    q[out->queue_count++] =
        (struct healthz_entry){"telemetry_records", telemetry_kept(d->telemetry)};

    struct healthz_entry *m = out->memory;
    m[out->memory_count++] = (struct healthz_entry){"buffer", pool_used_bytes(d->pool)};
    m[out->memory_count++] = (struct healthz_entry){"buffer_max", pool_max_bytes(d->pool)};
    if (d->store != NULL) {
        struct store_stats ss;
        store_get_stats(d->store, &ss);
        m[out->memory_count++] = (struct healthz_entry){"store", ss.bytes_used};
        m[out->memory_count++] = (struct healthz_entry){"store_max", ss.max_bytes};
    }
}

static int xrayd_listen_http(struct xrayd *d)
{
    char err[XRAY_ERR_LEN];
    const char *tcp = d->cfg.tcp_address;
    const char *api = config_api_address(&d->cfg);
    const char *metrics = config_metrics_address(&d->cfg);
    struct {
        const char *addr;
        unsigned roles;
    } l[3] = {{tcp, HTTP_ROLE_TCP}, {api, HTTP_ROLE_API}, {metrics, HTTP_ROLE_METRICS}};

    d->http = http_server_create(&d->loop, NULL);
    if (d->http == NULL)
        return -ENOMEM;
    /* One listener per distinct address, serving every role given that address. */
    for (int i = 0; i < 3; i++) {
        if (l[i].roles == 0)
            continue;
        for (int j = i + 1; j < 3; j++)
            if (strcmp(l[i].addr, l[j].addr) == 0) {
                l[i].roles |= l[j].roles;
                l[j].roles = 0;
            }
        int rc = http_server_listen(d->http, l[i].addr, l[i].roles, err);
        if (rc != 0) {
            XLOG_ERR(MOD, "cannot listen on %s: %s", l[i].addr, err);
            return rc;
        }
    }
    int rc = healthz_register(d->http, xrayd_health, d);
    if (rc == 0 && d->store != NULL)
        rc = traces_register(d->http, d->store);
    /* Keep this last: with the aws upstream the proxy is the TCP role's catch-all, and
     * the first route that matches wins, so a route added after it is never reached
     * where the TCP and API addresses share a listener (the default). */
    if (rc == 0 && d->xray != NULL) {
        rc = sampling_proxy_register(d->http, d->xray, d->cfg.proxy_allow_paths, NULL, err);
        if (rc != 0)
            XLOG_ERR(MOD, "%s", err);
    } else if (rc == 0) {
        rc = sampling_proxy_register_local(d->http);
    }
    return rc;
}

/* --- shutdown ----------------------------------------------------------------------- */

/* Parts free themselves in their last close callback; the loop ends when the last
 * handle is gone, so there is nothing to count here. */
static void xrayd_closed_one(void *data)
{
    (void)data;
}

/* Closes every part; the loop ends once the last close callback ran. */
static void xrayd_close_all(struct xrayd *d)
{
    if (d->closing)
        return;
    d->closing = true;
    if (d->worker_running) {
        worker_close(&d->worker, xrayd_closed_one, d);
        d->worker_running = false;
    }
#define CLOSE(part, fn)                                                                            \
    do {                                                                                           \
        if ((part) != NULL) {                                                                      \
            fn((part), xrayd_closed_one, d);                                                       \
        }                                                                                          \
    } while (0)
    CLOSE(d->udp, udp_close);
    CLOSE(d->http, http_server_close);
    CLOSE(d->telemetry, telemetry_close);
    CLOSE(d->upstream, upstream_close);
    CLOSE(d->http_client, http_client_close);
#undef CLOSE
    uv_handle_t *handles[] = {(uv_handle_t *)&d->sigterm, (uv_handle_t *)&d->sigint,
                              (uv_handle_t *)&d->deadline};
    for (size_t i = 0; i < ARRAY_SIZE(handles); i++)
        uv_close(handles[i], NULL);
}

static void xrayd_telemetry_flushed(void *data)
{
    struct xrayd *d = data;
    XLOG_INFO(MOD, "final telemetry record sent or given up; closing");
    xrayd_close_all(d);
}

static void xrayd_drained(void *data)
{
    struct xrayd *d = data;
    if (d->closing)
        return;
    XLOG_INFO(MOD, "buffered documents uploaded; sending the final telemetry record");
    telemetry_flush(d->telemetry, xrayd_telemetry_flushed, d);
}

static void xrayd_deadline(uv_timer_t *t)
{
    struct xrayd *d = container_of(t, struct xrayd, deadline);
    XLOG_WARN(MOD,
              "shutdown deadline of %d ms passed: %zu documents queued and %u uploads in "
              "flight not acknowledged",
              d->cfg.shutdown_timeout_ms, upstream_queued(d->upstream),
              upstream_in_flight(d->upstream));
    xrayd_close_all(d);
}

static void xrayd_on_signal(uv_signal_t *s, int signum)
{
    struct xrayd *d = s->data;
    if (d->shutting_down) {
        XLOG_WARN(MOD, "second signal: closing now");
        xrayd_close_all(d);
        return;
    }
    d->shutting_down = true;
    XLOG_INFO(MOD, "%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    uv_timer_start(&d->deadline, xrayd_deadline, (uint64_t)d->cfg.shutdown_timeout_ms, 0);
    udp_stop(d->udp);
    /* Joining the worker hands back every document it holds, so the drain that
     * follows sees them all. */
    worker_close(&d->worker, xrayd_closed_one, d);
    d->worker_running = false;
    upstream_drain(d->upstream, xrayd_drained, d);
}

/* --- start-up ----------------------------------------------------------------------- */

static int xrayd_start(struct xrayd *d)
{
    char err[XRAY_ERR_LEN];
    const struct config *cfg = &d->cfg;
    int rc;

    size_t budget =
        cfg->buffer_mb > 0 ? (size_t)cfg->buffer_mb * 1024 * 1024 : pool_default_bytes();
    d->pool = pool_create(budget);
    d->pipeline = pipeline_create(&d->stats);
    if (d->pool == NULL || d->pipeline == NULL)
        return -ENOMEM;
    if ((rc = xrayd_build_upstream(d)) != 0)
        return rc;

    d->worker.process = pipeline_process;
    d->worker.process_ctx = d->pipeline;
    d->worker.done = xrayd_on_checked;
    d->worker.done_data = d;
    if ((rc = worker_start(&d->worker, &d->loop, WORKER_CAPACITY)) != 0)
        return rc;
    d->worker_running = true;

    if ((rc = xrayd_listen_http(d)) != 0)
        return rc;
    struct udp_options uo = {
        .loop = &d->loop,
        .address = cfg->udp_address,
        .pool = d->pool,
        .stats = &d->stats,
        .on_doc = xrayd_on_doc,
        .data = d,
    };
    if ((rc = udp_start(&d->udp, &uo, err)) != 0) {
        XLOG_ERR(MOD, "cannot receive on %s: %s", cfg->udp_address, err);
        return rc;
    }

    XLOG_INFO(MOD, "xrayd %s starting", XRAYD_VERSION);
    if (*cfg->auto_config_file)
        XLOG_INFO(MOD, "configuration from %s", cfg->auto_config_file);
    XLOG_INFO(MOD, "buffer memory: %zu MB", budget / (1024 * 1024));
    XLOG_INFO(MOD, "region: %s", d->region_source ? d->region : "(none)");
    XLOG_INFO(MOD, "upstream: %s (%s)%s%s", d->use_aws ? "aws" : "local", d->upstream_reason,
              d->use_aws ? ", endpoint " : "", d->use_aws ? d->endpoint : "");
    XLOG_INFO(MOD, "UDP on %s, TCP on %s, API on %s, metrics on %s", cfg->udp_address,
              cfg->tcp_address, config_api_address(cfg), config_metrics_address(cfg));
    XLOG_INFO(MOD, "UDP receive buffer: %zu bytes granted of %zu asked", udp_rcvbuf_granted(d->udp),
              udp_rcvbuf_requested(d->udp));
    if (udp_rcvbuf_short(d->udp))
        XLOG_WARN(MOD,
                  "receive buffer is short: raise it with sysctl -w net.core.rmem_max=%zu "
                  "or run with CAP_NET_ADMIN",
                  udp_rcvbuf_requested(d->udp));

    d->sigterm.data = d;
    d->sigint.data = d;
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    uv_signal_start(&d->sigterm, xrayd_on_signal, SIGTERM);
    uv_signal_start(&d->sigint, xrayd_on_signal, SIGINT);
    return 0;
}

/* One line with every counter, so a log alone tells what happened to each datagram:
 * rejection lines are rate-limited and may never report what they suppressed. */
static void xrayd_log_totals(struct stats *st)
{
    char why[512] = "";
    size_t n = 0;
    for (int i = 0; i < STATS_REJECT__COUNT && n < sizeof(why); i++) {
        uint64_t c = stats_get(&st->rejected_by[i]);
        if (c != 0)
            n += (size_t)snprintf(why + n, sizeof(why) - n, " %s=%llu", stats_reject_labels[i],
                                  (unsigned long long)c);
    }
    XLOG_INFO(
        MOD, "totals: received %llu, sent %llu, spillover %llu, rejected %llu%s%s%s",
        (unsigned long long)stats_get(&st->received), (unsigned long long)stats_get(&st->sent),
        (unsigned long long)stats_get(&st->spillover), (unsigned long long)stats_get(&st->rejected),
        n ? " (" : "", n ? why + 1 : "", n ? ")" : "");
}

static void xrayd_destroy(struct xrayd *d)
{
    xray_destroy(d->xray);
    credentials_chain_destroy(d->creds);
    store_destroy(d->store);
    pipeline_destroy(d->pipeline);
    pool_destroy(d->pool);
    config_destroy(&d->cfg);
}

int main(int argc, char **argv)
{
    static struct xrayd d; /* static: zeroed, and larger than a comfortable stack frame */
    char err[XRAY_ERR_LEN] = "";
    int rc = config_load(&d.cfg, argc, argv, stderr, err);
    if (rc != 0) {
        fprintf(stderr, "xrayd: %s\n", err);
        if (rc == 2)
            config_usage(stderr);
        config_destroy(&d.cfg);
        return rc;
    }
    if (d.cfg.show_help) {
        config_usage(stdout);
        config_destroy(&d.cfg);
        return 0;
    }
    if (d.cfg.show_version) {
        printf("xrayd version %s (AWS X-Ray daemon compatible)\n", XRAYD_VERSION);
        config_destroy(&d.cfg);
        return 0;
    }
    if (d.cfg.health_check) {
        const char *addr = *d.cfg.health_check_addr ? d.cfg.health_check_addr : d.cfg.tcp_address;
        rc = healthz_probe(addr, HEALTH_CHECK_TIMEOUT_MS, err);
        if (rc != 0)
            fprintf(stderr, "xrayd: unhealthy: %s\n", err);
        config_destroy(&d.cfg);
        return rc == 0 ? 0 : 1;
    }

    int level = log_level_parse(d.cfg.log_level);
    if ((rc = log_open(level < 0 ? LOG_LEVEL_INFO : level, d.cfg.log_file, d.cfg.log_rotation)) !=
        0) {
        fprintf(stderr, "xrayd: cannot open log file %s: %s\n", d.cfg.log_file, xray_strerror(rc));
        config_destroy(&d.cfg);
        return 1;
    }
    if ((rc = xrayd_choose_upstream(&d)) != 0) {
        config_destroy(&d.cfg);
        return rc;
    }

    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&d.loop);
    uv_timer_init(&d.loop, &d.deadline);
    d.started_ms = uv_now(&d.loop);
    rc = xrayd_start(&d);
    if (rc != 0) {
        XLOG_ERR(MOD, "start-up failed: %s", xray_strerror(rc));
        if (d.sigterm.loop == NULL) {
            uv_signal_init(&d.loop, &d.sigterm);
            uv_signal_init(&d.loop, &d.sigint);
        }
        xrayd_close_all(&d);
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d.loop) != 0)
        XLOG_WARN(MOD, "event loop closed with handles still open");
    xrayd_destroy(&d);
    xrayd_log_totals(&d.stats);
    XLOG_INFO(MOD, "stopped");
    log_close();
    return rc == 0 ? 0 : 1;
}
