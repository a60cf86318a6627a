/* SPDX-License-Identifier: Apache-2.0 */
/* The push sinks from the config: what each needs (an HTTP client, AWS credentials, a
 * region, secrets read from files) is checked and gathered here, so main.c only starts
 * and stops them. Secrets are read once at start and never logged. */
#include "export/push.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_call.h"
#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "config/config.h"
#include "export/cloudwatch_sink.h"
#include "export/exporter.h"
#include "export/remote_write_sink.h"
#include "log.h"
#include "util.h"

#define MOD             "export"
#define PUSH_SECRET_MAX 4096 /* a password or bearer token file */

enum { PUSH_REMOTE_WRITE = 0, PUSH_CLOUDWATCH, PUSH_SINKS };

struct push {
    uv_loop_t *loop;
    struct exporter *exporter[PUSH_SINKS];
    struct remote_write_sink *remote_write;
    struct cloudwatch_sink *cloudwatch;
    struct aws_client *aws[PUSH_SINKS];
    struct stats *stats;
    uv_timer_t drain;   /* polls while push_drain() waits */
    bool drain_started; /* the timer was initialized: close it */
    void (*drain_cb)(void *data);
    void *drain_data;
    unsigned open; /* sinks and handles not yet closed */
    void (*close_cb)(void *data);
    void *close_data;
};

bool push_needs_aws(const struct config *cfg)
{
    return *cfg->cloudwatch_output != '\0' || *cfg->remote_write_sigv4_region != '\0';
}

bool push_needs_http(const struct config *cfg)
{
    return *cfg->remote_write_url != '\0' || push_needs_aws(cfg);
}

static struct aws_client *push_aws_client(const struct push_options *o, const char *endpoint,
                                          const char *region, const char *service, char *err)
{
    if (o->http == NULL || o->creds == NULL) {
        xray_err_set(err, "%s needs AWS credentials", service);
        return NULL;
    }
    struct aws_client_options ao = {
        .http = o->http,
        .creds = o->creds,
        .endpoint = endpoint,
        .region = region,
        .service = service,
        .user_agent = o->user_agent,
    };
    return aws_client_create(&ao, err);
}

static int push_remote_write(struct push *p, const struct push_options *o, char *err)
{
    const struct config *cfg = o->cfg;
    char *password = NULL, *token = NULL;
    int rc = XRAY_ECONFIG;
    if (*cfg->remote_write_password_file != '\0' &&
        credentials_read_file(cfg->remote_write_password_file, PUSH_SECRET_MAX, &password, err) !=
            0)
        goto out;
    if (*cfg->remote_write_bearer_token_file != '\0' &&
        credentials_read_file(cfg->remote_write_bearer_token_file, PUSH_SECRET_MAX, &token, err) !=
            0)
        goto out;
    if (*cfg->remote_write_sigv4_region != '\0') {
        /* SigV4 signs for the URL's host: the client's endpoint is the URL's origin and
         * the sink sends the URL's path to it. */
        struct endpoint_url u;
        char origin[ENDPOINT_URL_MAX];
        size_t n;
        if (endpoint_split(cfg->remote_write_url, &u) != 0 ||
            (n = (size_t)(u.path - cfg->remote_write_url)) >= sizeof(origin)) {
            xray_err_set(err, "--remote-write-url is not http(s)://host[:port]/path");
            goto out;
        }
        memcpy(origin, cfg->remote_write_url, n);
        origin[n] = '\0';
        p->aws[PUSH_REMOTE_WRITE] =
            push_aws_client(o, origin, cfg->remote_write_sigv4_region, "aps", err);
        if (p->aws[PUSH_REMOTE_WRITE] == NULL)
            goto out;
    }
    struct remote_write_sink_options ro = {
        .loop = o->loop,
        .http = o->http,
        .aws = p->aws[PUSH_REMOTE_WRITE],
        .url = cfg->remote_write_url,
        .username = *cfg->remote_write_username ? cfg->remote_write_username : NULL,
        .password = password,
        .bearer_token = token,
        .user_agent = o->user_agent,
        .queue_bytes = (size_t)cfg->remote_write_queue_kb << 10,
        .stats = o->stats,
    };
    if ((p->remote_write = remote_write_sink_create(&ro, err)) == NULL)
        goto out;
    p->exporter[PUSH_REMOTE_WRITE] =
        exporter_start(o->loop, o->worker, &remote_write_sink_ops, p->remote_write,
                       (uint64_t)cfg->remote_write_interval_s * 1000);
    if (p->exporter[PUSH_REMOTE_WRITE] == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    XLOG_INFO(MOD, "remote write to %s every %d s%s", cfg->remote_write_url,
              cfg->remote_write_interval_s,
              ro.aws        ? ", signed with SigV4 (aps)"
              : token       ? ", with a bearer token"
              : ro.username ? ", with basic auth"
                            : "");
    rc = 0;
out:
    credentials_free_secret(password);
    credentials_free_secret(token);
    return rc;
}

static int push_cloudwatch(struct push *p, const struct push_options *o, char *err)
{
    const struct config *cfg = o->cfg;
    bool emf = strcmp(cfg->cloudwatch_output, "emf") == 0;
    if (o->region == NULL || *o->region == '\0') {
        xray_err_set(err, "--cloudwatch-output needs a region: set -n/--region, Region in "
                          "cfg.yaml or AWS_REGION");
        return XRAY_ECONFIG;
    }
    char endpoint[ENDPOINT_URL_MAX];
    const char *service = emf ? "logs" : "monitoring";
    int rc = endpoint_resolve(service, emf ? "CLOUDWATCH_LOGS" : "CLOUDWATCH", NULL, o->region,
                              endpoint, sizeof(endpoint), err);
    if (rc != 0)
        return XRAY_ECONFIG;
    if ((p->aws[PUSH_CLOUDWATCH] = push_aws_client(o, endpoint, o->region, service, err)) == NULL)
        return XRAY_ECONFIG;
    struct cloudwatch_sink_options co = {
        .loop = o->loop,
        .output = emf ? CLOUDWATCH_SINK_EMF : CLOUDWATCH_SINK_PUT_METRIC_DATA,
        .aws = p->aws[PUSH_CLOUDWATCH],
        .ns = cfg->cloudwatch_namespace,
        .log_group = cfg->cloudwatch_log_group,
        .log_stream = cfg->cloudwatch_log_stream,
        .storage_resolution = (uint8_t)cfg->cloudwatch_storage_resolution,
        .stats = o->stats,
    };
    if ((p->cloudwatch = cloudwatch_sink_create(&co, err)) == NULL)
        return XRAY_ECONFIG;
    p->exporter[PUSH_CLOUDWATCH] =
        exporter_start(o->loop, o->worker, &cloudwatch_sink_ops, p->cloudwatch,
                       (uint64_t)cfg->cloudwatch_interval_s * 1000);
    if (p->exporter[PUSH_CLOUDWATCH] == NULL)
        return -ENOMEM;
    XLOG_INFO(MOD, "CloudWatch %s to %s every %d s, namespace %s",
              emf ? "EMF log events" : "PutMetricData", endpoint, cfg->cloudwatch_interval_s,
              cfg->cloudwatch_namespace);
    return 0;
}

int push_start(struct push **out, const struct push_options *o, char err[XRAY_ERR_LEN])
{
    *out = NULL;
    const struct config *cfg = o->cfg;
    if (!push_needs_http(cfg))
        return 0;
    struct push *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->stats = o->stats;
    /* The caller closes a half-built p with push_close(): it handles every NULL. */
    *out = p;
    p->loop = o->loop;
    int rc = 0;
    if (*cfg->remote_write_url != '\0')
        rc = push_remote_write(p, o, err);
    if (rc == 0 && *cfg->cloudwatch_output != '\0')
        rc = push_cloudwatch(p, o, err);
    return rc;
}

void push_flush(struct push *p)
{
    for (int i = 0; i < PUSH_SINKS; i++)
        if (p->exporter[i] != NULL)
            exporter_flush(p->exporter[i]);
}

void push_publish(struct push *p)
{
    if (p->remote_write != NULL)
        stats_set(&p->stats->queue_depth[STATS_QUEUE_REMOTE_WRITE],
                  remote_write_sink_queued(p->remote_write));
    if (p->cloudwatch != NULL)
        stats_set(&p->stats->queue_depth[STATS_QUEUE_CLOUDWATCH],
                  cloudwatch_sink_queued(p->cloudwatch));
}

static void push_one_closed(void *data);

static bool push_drained(const struct push *p)
{
    for (int i = 0; i < PUSH_SINKS; i++)
        if (p->exporter[i] != NULL && exporter_busy(p->exporter[i]))
            return false;
    return (p->remote_write == NULL || remote_write_sink_queued(p->remote_write) == 0) &&
           (p->cloudwatch == NULL || cloudwatch_sink_queued(p->cloudwatch) == 0);
}

static void push_on_drain_poll(uv_timer_t *t)
{
    struct push *p = container_of(t, struct push, drain);
    if (!push_drained(p) || p->drain_cb == NULL)
        return;
    uv_timer_stop(t);
    void (*cb)(void *) = p->drain_cb;
    p->drain_cb = NULL;
    cb(p->drain_data);
}

void push_drain(struct push *p, void (*cb)(void *data), void *data)
{
    p->drain_cb = cb;
    p->drain_data = data;
    if (!p->drain_started) {
        uv_timer_init(p->loop, &p->drain);
        p->drain_started = true;
    }
    uv_timer_start(&p->drain, push_on_drain_poll, 0, PUSH_DRAIN_POLL_MS);
}

static void push_drain_closed(uv_handle_t *h)
{
    struct push *p = container_of((uv_timer_t *)h, struct push, drain);
    push_one_closed(p);
}

static void push_one_closed(void *data)
{
    struct push *p = data;
    if (--p->open > 0)
        return;
    for (int i = 0; i < PUSH_SINKS; i++)
        aws_client_destroy(p->aws[i]);
    void (*cb)(void *) = p->close_cb;
    void *cb_data = p->close_data;
    free(p);
    if (cb != NULL)
        cb(cb_data);
}

/* An exporter is closed (its last job came back): its sink can go. */
static void push_remote_write_exporter_closed(void *data)
{
    struct push *p = data;
    if (p->remote_write != NULL)
        remote_write_sink_close(p->remote_write, push_one_closed, p);
    else
        push_one_closed(p);
}

static void push_cloudwatch_exporter_closed(void *data)
{
    struct push *p = data;
    if (p->cloudwatch != NULL)
        cloudwatch_sink_close(p->cloudwatch, push_one_closed, p);
    else
        push_one_closed(p);
}

void push_close(struct push *p, void (*cb)(void *data), void *data)
{
    void (*const exporter_closed[PUSH_SINKS])(void *) = {push_remote_write_exporter_closed,
                                                         push_cloudwatch_exporter_closed};
    p->close_cb = cb;
    p->close_data = data;
    p->drain_cb = NULL;
    p->open = PUSH_SINKS + 1; /* one more, released below, so no callback frees p early */
    if (p->drain_started) {
        p->open++;
        uv_close((uv_handle_t *)&p->drain, push_drain_closed);
    }
    for (int i = 0; i < PUSH_SINKS; i++) {
        if (p->exporter[i] != NULL)
            exporter_close(p->exporter[i], exporter_closed[i], p);
        else
            exporter_closed[i](p);
    }
    push_one_closed(p);
}
