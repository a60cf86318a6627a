/* SPDX-License-Identifier: Apache-2.0 */
/* The plugins: where the service runs, looked up once on a thread of their own and
 * published to the recorder - the segment's `origin` and blocks of its `aws` object.
 * EC2 asks the instance metadata service (IMDSv2 token, then the identity document;
 * IMDSv1 when the token call is refused), ECS the container metadata endpoint v4,
 * Elastic Beanstalk reads the environment file the platform writes. Each network call
 * has a short timeout and the thread never touches a request path: segments begun
 * before the lookups finish simply carry no plugin data. The origin of the most
 * specific platform wins: Elastic Beanstalk, then ECS, then EC2. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http.h"
#include "internal.h"

#define PLUGINS_EC2_ENDPOINT "http://169.254.169.254"
#define PLUGINS_EB_CONF      "/var/elasticbeanstalk/xray/environment.conf"
/* Ours: one metadata call; the whole lookup stays within a few of them. */
#define PLUGINS_TIMEOUT_MS 1000
/* Ours: the bodies read (an identity document is about 500 bytes). */
#define PLUGINS_BODY_MAX (64 * 1024)
/* internal.h: the aws members spliced into each segment are at most 4 KiB. */
#define PLUGINS_MEMBERS_MAX 4096

struct plugins {
    struct xray_recorder *rec;
    unsigned which;
    pthread_t thread;
    uint64_t fork_gen; /* the thread exists only in the process that started it */
    _Atomic bool stop;
};

static bool plugins_env_true(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* One GET or PUT to url + suffix; the body (owned) or NULL. */
static char *plugins_call(const char *base, const char *suffix, const char *method,
                          const char *const *headers, int *status)
{
    char host[XRAY__HTTP_HOST_MAX], path[XRAY__HTTP_PATH_MAX], full[XRAY__HTTP_PATH_MAX];
    uint16_t port;
    *status = 0;
    if (xray__http_parse_url(base, host, &port, path) != 0)
        return NULL;
    size_t pl = strlen(path);
    if (pl > 0 && path[pl - 1] == '/' && suffix[0] == '/')
        path[pl - 1] = '\0';
    if ((size_t)snprintf(full, sizeof(full), "%s%s", path, suffix) >= sizeof(full))
        return NULL;
    struct xray__http_request req = {.host = host,
                                     .port = port,
                                     .method = method,
                                     .path = full,
                                     .headers = headers,
                                     .timeout_ms = PLUGINS_TIMEOUT_MS,
                                     .max_body = PLUGINS_BODY_MAX};
    struct xray__http_response resp;
    if (xray__http_call(&req, &resp) != 0)
        return NULL;
    *status = resp.status;
    if (resp.status != 200) {
        xray__http_response_free(&resp);
        return NULL;
    }
    return resp.body;
}

static void plugins_copy(json_t *dst, const char *key, json_t *src, const char *src_key)
{
    json_t *v = json_object_get(src, src_key);
    if (json_is_string(v) || json_is_integer(v))
        json_object_set(dst, key, v);
}

/* EC2: IMDSv2 token, then the identity document (v1 when the token is refused). */
static bool plugins_ec2(struct plugins *p, json_t *aws)
{
    if (plugins_env_true("AWS_EC2_METADATA_DISABLED"))
        return false;
    const char *base = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (base == NULL || base[0] == '\0')
        base = PLUGINS_EC2_ENDPOINT;
    static const char *const ttl[] = {"X-aws-ec2-metadata-token-ttl-seconds: 60", NULL};
    int status;
    char *token = plugins_call(base, "/latest/api/token", "PUT", ttl, &status);
    if (token == NULL && status == 0)
        return false; /* nothing answers: not on EC2 */
    if (atomic_load(&p->stop)) {
        free(token);
        return false;
    }
    char line[256];
    const char *headers[] = {line, NULL};
    bool v2 = token != NULL;
    if (v2)
        snprintf(line, sizeof(line), "X-aws-ec2-metadata-token: %.200s", token);
    free(token);
    char *doc = plugins_call(base, "/latest/dynamic/instance-identity/document", "GET",
                             v2 ? headers : NULL, &status);
    if (doc == NULL)
        return false;
    json_error_t e;
    json_t *id = json_loads(doc, 0, &e);
    free(doc);
    if (!json_is_object(id)) {
        json_decref(id);
        return false;
    }
    json_t *ec2 = json_object();
    plugins_copy(ec2, "instance_id", id, "instanceId");
    plugins_copy(ec2, "availability_zone", id, "availabilityZone");
    plugins_copy(ec2, "instance_size", id, "instanceType");
    plugins_copy(ec2, "ami_id", id, "imageId");
    json_decref(id);
    if (json_object_size(ec2) == 0) {
        json_decref(ec2);
        return false;
    }
    json_object_set_new(aws, "ec2", ec2);
    return true;
}

/* ECS: only inside a task (the agent sets the metadata variables or the execution
 * environment); the container's host name always, its id and ARN from the v4 endpoint. */
static bool plugins_ecs(json_t *aws)
{
    const char *v4 = getenv("ECS_CONTAINER_METADATA_URI_V4");
    const char *v3 = getenv("ECS_CONTAINER_METADATA_URI");
    const char *env = getenv("AWS_EXECUTION_ENV");
    if ((v4 == NULL || !v4[0]) && (v3 == NULL || !v3[0]) &&
        (env == NULL || strncmp(env, "AWS_ECS", 7) != 0))
        return false;
    json_t *ecs = json_object();
    char host[256];
    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        json_object_set_new(ecs, "container", json_string(host));
    }
    int status;
    char *body = v4 != NULL && v4[0] ? plugins_call(v4, "", "GET", NULL, &status) : NULL;
    if (body != NULL) {
        json_error_t e;
        json_t *c = json_loads(body, 0, &e);
        free(body);
        if (json_is_object(c)) {
            plugins_copy(ecs, "container_id", c, "DockerId");
            plugins_copy(ecs, "container_arn", c, "ContainerARN");
        }
        json_decref(c);
    }
    json_object_set_new(aws, "ecs", ecs);
    return true;
}

/* Elastic Beanstalk: the platform's file; XRAY_ELASTIC_BEANSTALK_CONF overrides its
 * path (tests, unusual layouts). */
static bool plugins_beanstalk(json_t *aws)
{
    const char *path = getenv("XRAY_ELASTIC_BEANSTALK_CONF");
    if (path == NULL || path[0] == '\0')
        path = PLUGINS_EB_CONF;
    json_error_t e;
    json_t *conf = json_load_file(path, 0, &e);
    if (!json_is_object(conf)) {
        json_decref(conf);
        return false;
    }
    json_t *eb = json_object();
    plugins_copy(eb, "environment_name", conf, "environment_name");
    plugins_copy(eb, "version_label", conf, "version_label");
    plugins_copy(eb, "deployment_id", conf, "deployment_id");
    json_decref(conf);
    json_object_set_new(aws, "elastic_beanstalk", eb);
    return true;
}

static void *plugins_run(void *arg)
{
    struct plugins *p = arg;
    json_t *aws = json_object();
    const char *origin = "";
    if ((p->which & XRAY_PLUGIN_EC2) && plugins_ec2(p, aws))
        origin = "AWS::EC2::Instance";
    if ((p->which & XRAY_PLUGIN_ECS) && !atomic_load(&p->stop) && plugins_ecs(aws))
        origin = "AWS::ECS::Container";
    if ((p->which & XRAY_PLUGIN_ELASTIC_BEANSTALK) && plugins_beanstalk(aws))
        origin = "AWS::ElasticBeanstalk::Environment";
    char *members = NULL;
    if (json_object_size(aws) > 0) {
        char *text = json_dumps(aws, JSON_COMPACT);
        size_t n = text ? strlen(text) : 0;
        /* "{...}" without its braces: members spliced into the segment's aws object. */
        if (n > 2 && n - 2 <= PLUGINS_MEMBERS_MAX && (members = malloc(n - 1)) != NULL) {
            memcpy(members, text + 1, n - 2);
            members[n - 2] = '\0';
        } else if (n > 2 + PLUGINS_MEMBERS_MAX) {
            xray__log(XRAY_LOG_WARN, "plugins: metadata over %d bytes: left out",
                      PLUGINS_MEMBERS_MAX);
        }
        free(text);
    }
    json_decref(aws);
    if (origin[0] || members != NULL) {
        struct xray__plugin_data *d = calloc(1, sizeof(*d));
        if (d != NULL) {
            snprintf(d->origin, sizeof(d->origin), "%s", origin);
            d->aws_members = members;
            members = NULL;
            xray__recorder_set_plugin_data(p->rec, d);
            xray__log(XRAY_LOG_DEBUG, "plugins: origin %s", origin[0] ? origin : "(none)");
        }
    } else {
        xray__log(XRAY_LOG_INFO, "plugins: no platform metadata found");
    }
    free(members);
    return NULL;
}

int xray__plugins_start(struct xray_recorder *rec, unsigned plugins, void **ctx)
{
    *ctx = NULL;
    plugins &= XRAY_PLUGIN_EC2 | XRAY_PLUGIN_ECS | XRAY_PLUGIN_ELASTIC_BEANSTALK;
    if (plugins == 0)
        return XRAY_SDK_EUNAVAILABLE;
    struct plugins *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return XRAY_SDK_EUNAVAILABLE;
    p->rec = rec;
    p->which = plugins;
    p->fork_gen = xray__ids_fork_generation();
    /* The lookup thread must not take the host's signals. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&p->thread, NULL, plugins_run, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        xray__log(XRAY_LOG_WARN, "plugins: cannot start the lookup thread: %s", strerror(rc));
        free(p);
        return XRAY_SDK_EUNAVAILABLE;
    }
    *ctx = p;
    return 0;
}

void xray__plugins_stop(void *ctx)
{
    struct plugins *p = ctx;
    if (p == NULL)
        return;
    atomic_store(&p->stop, true);
    if (p->fork_gen == xray__ids_fork_generation())
        pthread_join(p->thread, NULL);
    free(p);
}
