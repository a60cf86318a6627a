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
#include "api/metrics_route.h"
#include "api/ui_route.h"
#include "api/sampling_authority.h"
#include "api/sampling_proxy.h"
#include "api/read_api.h"
#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "aws/region.h"
#include "config/config.h"
#include "export/push.h"
#include "http/client.h"
#include "http/proxy.h"
#include "http/server.h"
#include "ingest/pool.h"
#include "ingest/udp.h"
#include "log.h"
#include "memory.h"
#include "pipeline.h"
#include "sampler/rules_holder.h"
#include "stats.h"
#include "graph/graph.h"
#include "trace/assembler.h"
#include "trace/store.h"
#include "upstream/local.h"
#include "upstream/spool.h"
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
    /* --spool-dir, else NULL */
    struct spool *spool;
    struct telemetry *telemetry;
    struct push *push;                    /* the metrics push sinks, when configured */
    uv_timer_t gauges;                    /* publishes queue depths for /metrics */
    struct rules_holder *rules;           /* sampling rules, when xrayd uses any */
    struct sampling_authority *authority; /* when xrayd answers the SDKs' sampling calls */
    uv_signal_t sighup;                   /* reloads the rules file; only with one */

    struct budgets budgets; /* every memory budget, for /healthz and /metrics */
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
/* The embedded store keeps what is kept for the read API: with the local upstream it
 * is where traces go; with --local-api it keeps copies beside the uploads. The worker
 * fills it; the local upstream only acknowledges. */
static int xrayd_build_store(struct xrayd *d)
{
    const struct config *cfg = &d->cfg;
    if (d->use_aws && !cfg->local_api)
        return 0;
    d->store = store_create((size_t)cfg->store_mb * 1024 * 1024);
    if (d->store == NULL)
        return -ENOMEM;
    if (*cfg->store_dir != '\0') {
        char err[XRAY_ERR_LEN];
        int rc = store_open_dir(d->store, cfg->store_dir, err);
        if (rc != 0) {
            fprintf(stderr, "xrayd: --store-dir: %s\n", err);
            XLOG_ERR(MOD, "--store-dir: %s", err);
            return XRAY_ECONFIG;
        }
    }
    pipeline_set_store(d->pipeline, d->store);
    return 0;
}

/* The HTTP client and the AWS credentials chain, for the upstream and the metrics push
 * sinks: built once, for whichever needs them first. */
static int xrayd_build_client(struct xrayd *d)
{
    const struct config *cfg = &d->cfg;
    if (d->http_client != NULL)
        return 0;
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
    if ((d->http_client = http_client_create(&d->loop, &ho)) == NULL)
        return -ENOMEM;
    /* Without a region there is nothing to sign for (plain remote write only). */
    if (d->region_source == NULL)
        return 0;
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
    return d->creds != NULL ? 0 : -ENOMEM;
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
    };
    /* What runs out of retries, or is still held at shutdown, goes to the spool. */
    if (cfg->spool_dir != NULL && *cfg->spool_dir != '\0') {
        char serr[XRAY_ERR_LEN];
        struct spool_options so = {.loop = &d->loop,
                                   .pool = d->pool,
                                   .stats = &d->stats,
                                   .dir = cfg->spool_dir,
                                   .max_bytes = (uint64_t)cfg->spool_max_mb << 20};
        if (spool_open(&d->spool, &so, serr) != 0) {
            fprintf(stderr, "xrayd: %s\n", serr);
            XLOG_ERR(MOD, "%s", serr);
            return XRAY_ECONFIG;
        }
        uo.on_give_up = spool_give_up;
        uo.give_up_ctx = d->spool;
        uo.on_ack = spool_on_ack;
        uo.ack_ctx = d->spool;
    }

    int rc = xrayd_build_store(d);
    if (rc != 0)
        return rc;
    if (!d->use_aws) {
        d->upstream = upstream_create(&upstream_local_ops, &uo);
        /* No AWS account: telemetry is only counted (it shows in /healthz). */
        d->telemetry = telemetry_create(&d->loop, &d->stats, &id, NULL, 0);
        return d->upstream && d->telemetry ? 0 : -ENOMEM;
    }

    int crc = xrayd_build_client(d);
    if (crc != 0)
        return crc;
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
    } else if (worker_full(&d->worker)) {
        /* Backpressure: the socket's buffer holds the burst until the worker has room
         * (xrayd_on_checked resumes), instead of documents already read being dropped. */
        XLOG_EVERY(10000, LOG_LEVEL_INFO, MOD, "worker full: reading paused until it has room");
        udp_pause(d->udp);
    }
}

/* Loop thread: a document is back from the worker, checked. */
static void xrayd_on_checked(struct doc *doc, void *data)
{
    struct xrayd *d = data;
    if (d->udp != NULL && worker_has_room(&d->worker))
        udp_resume(d->udp);
    if (doc->reject == PIPELINE_SAMPLED_OUT) { /* counted by the worker: not a rejection */
        pool_free(d->pool, doc);
        return;
    }
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

    out->budgets = &d->budgets; /* memory.c's list: "buffer", "store", ... and "_max" */
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

    struct http_server_limits hl = {.max_memory_bytes = (size_t)d->cfg.http_memory_mb << 20};
    d->http = http_server_create(&d->loop, &hl);
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
        rc = read_api_register(d->http, &d->worker);
    if (rc == 0)
        rc = metrics_route_register(d->http, &d->worker);
    if (rc == 0 && d->store != NULL)
        rc = ui_route_register(d->http);
    /* The authority's three routes come before the proxy's catch-all, which then only
     * forwards the other allow-listed paths. */
    if (rc == 0 && d->authority != NULL)
        rc = sampling_authority_register(d->http, d->authority);
    /* Keep this last: with the aws upstream the proxy is the TCP role's catch-all, and
     * the first route that matches wins, so a route added after it is never reached
     * where the TCP and API addresses share a listener (the default). */
    if (rc == 0 && d->xray != NULL) {
        rc = sampling_proxy_register(d->http, d->xray, d->cfg.proxy_allow_paths, NULL, err);
        if (rc != 0)
            XLOG_ERR(MOD, "%s", err);
    } else if (rc == 0 && d->authority == NULL) {
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

/* The spool takes what the upstream gives up until the upstream's close callback, so
 * it closes after: it writes what it holds (past the deadline: what was still
 * buffered or in flight), then frees itself. */
static void xrayd_upstream_closed(void *data)
{
    struct xrayd *d = data;
    if (d->spool != NULL)
        spool_close(d->spool, xrayd_closed_one, d);
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
    CLOSE(d->rules, rules_holder_close);
    if (d->sighup.loop != NULL)
        uv_close((uv_handle_t *)&d->sighup, NULL);
    CLOSE(d->telemetry, telemetry_close);
    CLOSE(d->push, push_close);
    if (d->gauges.loop != NULL)
        uv_close((uv_handle_t *)&d->gauges, NULL);
    if (d->upstream != NULL)
        upstream_close(d->upstream, xrayd_upstream_closed, d);
    else
        CLOSE(d->spool, spool_close);
    CLOSE(d->http_client, http_client_close);
#undef CLOSE
    uv_handle_t *handles[] = {(uv_handle_t *)&d->sigterm, (uv_handle_t *)&d->sigint,
                              (uv_handle_t *)&d->deadline};
    for (size_t i = 0; i < ARRAY_SIZE(handles); i++)
        uv_close(handles[i], NULL);
}

static void xrayd_push_drained(void *data)
{
    struct xrayd *d = data;
    XLOG_INFO(MOD, "metrics sinks sent their last interval; closing");
    xrayd_close_all(d);
}

static void xrayd_telemetry_flushed(void *data)
{
    struct xrayd *d = data;
    if (d->push != NULL) {
        XLOG_INFO(MOD, "final telemetry record sent or given up; waiting for the metrics sinks");
        push_drain(d->push, xrayd_push_drained, d);
        return;
    }
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
    /* The sinks' last interval is exported before the worker goes: best effort, what
     * has not been sent when everything closes is dropped (counted). */
    if (d->push != NULL)
        push_flush(d->push);
    /* Joining the worker hands back every document it holds, so the drain that
     * follows sees them all. */
    worker_close(&d->worker, xrayd_closed_one, d);
    d->worker_running = false;
    upstream_drain(d->upstream, xrayd_drained, d);
}

/* --- sampling (spec/sampling.md, "Who answers the SDKs' sampling calls") ------------ */

/* Loop thread: the holder put a new rule set in force (the workers got it too). */
static void xrayd_rules_changed(struct xray_sampling_rules *rules, void *data)
{
    struct xrayd *d = data;
    if (d->authority != NULL && sampling_authority_set_rules(d->authority, rules) != 0)
        XLOG_ERR(MOD, "out of memory: SDKs are still served the previous sampling rules");
}

static void xrayd_on_sighup(uv_signal_t *s, int signum)
{
    struct xrayd *d = s->data;
    (void)signum;
    rules_holder_reload(d->rules, "SIGHUP");
}

/* A rules file, or the local upstream, make xrayd the authority; with the aws upstream
 * and no file the signing proxy answers. The decision stage runs with --sampling-head
 * or --full-fidelity. */
static int xrayd_build_sampling(struct xrayd *d)
{
    const struct config *cfg = &d->cfg;
    bool have_file = *cfg->sampling_rules != '\0';
    bool authority = have_file || !d->use_aws;
    bool tail = cfg->tail_errors || cfg->tail_latency_ms > 0;
    bool decide = cfg->sampling_head || cfg->full_fidelity || tail;
    char err[XRAY_ERR_LEN];
    int rc;
    if (cfg->full_fidelity && !authority) {
        snprintf(err, sizeof(err),
                 "--full-fidelity needs xrayd to answer the SDKs' sampling calls: give "
                 "--sampling-rules FILE or use the local upstream (with the aws upstream and "
                 "no rules file, X-Ray answers them)");
        fprintf(stderr, "xrayd: %s\n", err);
        XLOG_ERR(MOD, "%s", err);
        return XRAY_ECONFIG;
    }
    if (!authority && !decide)
        return 0;
    struct rules_holder_options ro = {.loop = &d->loop,
                                      .path = cfg->sampling_rules,
                                      .region = d->region_source != NULL ? d->region : NULL,
                                      .on_change = xrayd_rules_changed,
                                      .data = d};
    if ((rc = rules_holder_create(&d->rules, &ro, err)) != 0) {
        fprintf(stderr, "xrayd: --sampling-rules: %s\n", err);
        XLOG_ERR(MOD, "--sampling-rules: %s", err);
        return rc;
    }
    if (authority) {
        struct sampling_authority_options ao = {.full_fidelity = cfg->full_fidelity};
        d->authority = sampling_authority_create(&ao, rules_holder_rules(d->rules));
        if (d->authority == NULL)
            return -ENOMEM;
    }
    if (decide && (rc = pipeline_enable_sampling(d->pipeline, d->rules, NULL)) != 0)
        return rc;
    XLOG_INFO(MOD, "sampling calls: %s; before upload: %s",
              !authority  ? "signed and forwarded to X-Ray"
              : have_file ? "answered by xrayd with the rules file"
                          : "answered by xrayd with the built-in Default rule",
              cfg->full_fidelity   ? "full fidelity (SDKs send everything, xrayd applies the rules)"
              : cfg->sampling_head ? "one decision per trace from the rules"
                                   : "everything received is uploaded");
    if (decide && !have_file)
        XLOG_WARN(MOD, "decisions before upload use the built-in Default rule (1/s, then 5 %%)%s",
                  d->use_aws ? ", not the account's X-Ray rules: give --sampling-rules" : "");
    if (have_file) {
        rules_holder_watch(d->rules);
        d->sighup.data = d;
        uv_signal_init(&d->loop, &d->sighup);
        uv_signal_start(&d->sighup, xrayd_on_sighup, SIGHUP);
    }
    return 0;
}

/* --- the metrics push sinks and the gauges ----------------------------------------- */

/* Queue depths live on the loop; /metrics is written on the worker: publish them. */
static void xrayd_publish_gauges(uv_timer_t *t)
{
    struct xrayd *d = container_of(t, struct xrayd, gauges);
    atomic_uint_fast64_t *q = d->stats.queue_depth;
    stats_set(&q[STATS_QUEUE_WORKER], worker_inflight(&d->worker));
    stats_set(&q[STATS_QUEUE_UPLOAD], upstream_queued(d->upstream));
    stats_set(&q[STATS_QUEUE_UPLOAD_IN_FLIGHT], upstream_in_flight(d->upstream));
    stats_set(&q[STATS_QUEUE_UPLOAD_RETRYING], upstream_retrying(d->upstream));
    if (d->push != NULL)
        push_publish(d->push);
}

static int xrayd_build_push(struct xrayd *d)
{
    const struct config *cfg = &d->cfg;
    char err[XRAY_ERR_LEN] = "";
    int rc;
    uv_timer_init(&d->loop, &d->gauges);
    uv_timer_start(&d->gauges, xrayd_publish_gauges, 1000, 1000);
    if (!push_needs_http(cfg))
        return 0;
    if ((rc = xrayd_build_client(d)) != 0)
        return rc;
    char ua[XRAY_USER_AGENT_MAX];
    xray_user_agent_default(ua);
    struct push_options po = {
        .loop = &d->loop,
        .worker = &d->worker,
        .stats = &d->stats,
        .cfg = cfg,
        .http = d->http_client,
        .creds = d->creds,
        .region = d->region_source != NULL ? d->region : "",
        .user_agent = ua,
    };
    rc = push_start(&d->push, &po, err);
    if (rc != 0) {
        fprintf(stderr, "xrayd: %s\n", err[0] ? err : xray_strerror(rc));
        XLOG_ERR(MOD, "metrics sinks: %s", err[0] ? err : xray_strerror(rc));
    }
    return rc;
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
    if ((rc = xrayd_build_sampling(d)) != 0)
        return rc;
    double buckets[CONFIG_BUCKETS_MAX];
    struct pipeline_assembly_options ao = {
        .window_ms = (uint64_t)cfg->trace_window_s * 1000,
        .assembly_bytes = (size_t)cfg->assembly_mb << 20,
        .graph_bytes = (size_t)cfg->graph_mb << 20,
        .graph_retention_min = (uint32_t)cfg->graph_retention_min,
        .tail_errors = cfg->tail_errors,
        .tail_latency_ms = (uint32_t)cfg->tail_latency_ms,
        .tail_bytes = cfg->tail_errors || cfg->tail_latency_ms > 0 ? (size_t)cfg->tail_mb << 20 : 0,
        .metrics = {.registry = {.series_budget = (uint32_t)cfg->metrics_series_budget,
                                 .idle_ms = (uint64_t)cfg->metrics_idle_expiry_s * 1000},
                    .buckets = buckets},
    };
    /* Checked when the config was read: this parse cannot fail. */
    config_buckets(cfg->metrics_buckets, buckets, CONFIG_BUCKETS_MAX, &ao.metrics.nbuckets, err);
    if ((rc = pipeline_enable_assembly(d->pipeline, &ao)) != 0)
        return rc;

    d->worker.process = pipeline_process;
    d->worker.idle = pipeline_idle;
    d->worker.flush = pipeline_flush;
    d->worker.process_ctx = d->pipeline;
    pipeline_set_worker(d->pipeline, &d->worker);
    d->worker.done = xrayd_on_checked;
    d->worker.done_data = d;
    if ((rc = worker_start(&d->worker, &d->loop, WORKER_CAPACITY)) != 0)
        return rc;
    d->worker_running = true;
    if ((rc = xrayd_build_push(d)) != 0)
        return rc;

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
    struct memory_parts mp = {
        .pool = d->pool,
        .stats = &d->stats,
        .worker_capacity = WORKER_CAPACITY,
        .udp = true,
        .upstream = d->upstream,
        .concurrency = (unsigned)cfg->concurrency,
        .pipeline = d->pipeline,
        .http = d->http,
        .http_client = d->http_client,
        .telemetry = d->telemetry,
        .decision = pipeline_decision(d->pipeline),
    };
    if ((rc = memory_register(&d->budgets, &mp)) != 0)
        return rc;

    XLOG_INFO(MOD, "xrayd %s starting", XRAYD_VERSION);
    if (*cfg->auto_config_file)
        XLOG_INFO(MOD, "configuration from %s", cfg->auto_config_file);
    XLOG_INFO(MOD, "buffer memory: %zu MB; all budgets, buffer included: %zu MB (docs/memory.md)",
              budget / (1024 * 1024), budgets_limit_total(&d->budgets) >> 20);
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
    if (d->spool != NULL) {
        struct spool_stats ss;
        spool_get_stats(d->spool, &ss);
        XLOG_INFO(MOD,
                  "spool: %s, cap %llu MB: %llu files (%llu bytes) to replay; %llu corrupt "
                  "and %llu unfinished files deleted, %llu dropped over the cap",
                  spool_path(d->spool), (unsigned long long)(ss.max_bytes >> 20),
                  (unsigned long long)ss.files, (unsigned long long)ss.bytes,
                  (unsigned long long)ss.corrupt_files, (unsigned long long)ss.temp_files,
                  (unsigned long long)ss.dropped_files);
        spool_start(d->spool, d->upstream);
    }

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

/* The sampling part of the totals: what the authority answered and what the decision
 * stage kept and dropped, per rule (docs/sampling.md). */
static void xrayd_log_sampling(struct xrayd *d)
{
    if (d->authority != NULL) {
        struct sampling_authority_stats s;
        sampling_authority_get_stats(d->authority, &s);
        XLOG_INFO(MOD,
                  "sampling authority: answered GetSamplingRules %llu, SamplingTargets %llu, "
                  "SamplingStatisticSummaries %llu; refused %llu bad requests; %llu rule changes",
                  (unsigned long long)s.rules_calls, (unsigned long long)s.targets_calls,
                  (unsigned long long)s.summaries_calls, (unsigned long long)s.bad_requests,
                  (unsigned long long)s.rule_changes);
    }
    if (d->pipeline != NULL && pipeline_decision(d->pipeline) != NULL)
        decision_log_totals(pipeline_decision(d->pipeline));
}

/* What assembly and the graph made of the traffic (docs/service-graph.md). The worker
 * has joined: its parts are the loop's to read. */
static void xrayd_log_graph(struct xrayd *d)
{
    struct assembler *a = d->pipeline != NULL ? pipeline_assembler(d->pipeline) : NULL;
    if (a == NULL)
        return;
    struct assembler_stats as;
    struct graph_stats gs;
    assembler_get_stats(a, &as);
    graph_get_stats(pipeline_graph(d->pipeline), &gs);
    XLOG_INFO(MOD,
              "traces: %llu completed idle, %llu root done, %llu evicted, %llu at exit; "
              "%llu duplicate, %llu late, %llu replaced, %llu forced tail decisions",
              (unsigned long long)as.completed[ASSEMBLER_IDLE],
              (unsigned long long)as.completed[ASSEMBLER_ROOT_DONE],
              (unsigned long long)as.completed[ASSEMBLER_EVICTED],
              (unsigned long long)as.completed[ASSEMBLER_FLUSHED],
              (unsigned long long)as.duplicates, (unsigned long long)as.late,
              (unsigned long long)as.replaced, (unsigned long long)as.forced);
    XLOG_INFO(MOD,
              "service graph: %zu nodes, %zu edges; halves paired %llu, callers expired %llu "
              "(%llu early: pending ring full), callees expired %llu, late %llu, unresolved %llu",
              gs.nodes, gs.edges, (unsigned long long)gs.paired,
              (unsigned long long)gs.expired_callers, (unsigned long long)gs.expired_early,
              (unsigned long long)gs.expired_callees, (unsigned long long)gs.late,
              (unsigned long long)gs.unresolved);
}

static void xrayd_destroy(struct xrayd *d)
{
    xrayd_log_sampling(d); /* before its counters are freed */
    xrayd_log_graph(d);
    sampling_authority_destroy(d->authority);
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
