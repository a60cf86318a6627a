/* SPDX-License-Identifier: Apache-2.0 */
/* plugins.c against a fake metadata server on loopback (never 169.254.169.254):
 * EC2 through IMDSv2 (token, then the identity document) and the IMDSv1 fallback,
 * ECS from the container metadata endpoint v4, Elastic Beanstalk from its file; the
 * origin precedence; nothing found, nothing added; AWS_EC2_METADATA_DISABLED; a
 * configured origin wins. The lookup thread is joined before each check. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <unistd.h>

#include "fake_server.h"
#include "sdk_rig.h"

static _Atomic int imds_v1_only;

static int metadata(struct fake_server *fs, const struct fake_request *req, char *body, size_t cap,
                    char *extra, size_t extra_cap)
{
    (void)fs;
    (void)extra;
    (void)extra_cap;
    if (strcmp(req->path, "/latest/api/token") == 0) {
        if (atomic_load(&imds_v1_only) || strcmp(req->method, "PUT") != 0 ||
            strcasestr(req->headers, "X-aws-ec2-metadata-token-ttl-seconds: ") == NULL) {
            snprintf(body, cap, "no");
            return 403;
        }
        snprintf(body, cap, "tok-123");
        return 200;
    }
    if (strcmp(req->path, "/latest/dynamic/instance-identity/document") == 0) {
        if (!atomic_load(&imds_v1_only) &&
            strcasestr(req->headers, "X-aws-ec2-metadata-token: tok-123") == NULL) {
            snprintf(body, cap, "no");
            return 401;
        }
        snprintf(body, cap,
                 "{\"accountId\":\"123456789012\",\"availabilityZone\":\"us-east-1a\","
                 "\"imageId\":\"ami-0abc\",\"instanceId\":\"i-0123456789\","
                 "\"instanceType\":\"t3.micro\",\"region\":\"us-east-1\"}");
        return 200;
    }
    if (strcmp(req->path, "/v4/c1") == 0) {
        snprintf(body, cap,
                 "{\"DockerId\":\"d0c4e7\",\"Name\":\"app\",\"ContainerARN\":\"arn:aws:ecs:"
                 "us-east-1:123456789012:container/c1\",\"Labels\":{}}");
        return 200;
    }
    snprintf(body, cap, "{}");
    return 404;
}

static char eb_path[64];

static void clear_env(void)
{
    unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    unsetenv("AWS_EC2_METADATA_DISABLED");
    unsetenv("ECS_CONTAINER_METADATA_URI_V4");
    unsetenv("ECS_CONTAINER_METADATA_URI");
    unsetenv("AWS_EXECUTION_ENV");
    setenv("XRAY_ELASTIC_BEANSTALK_CONF", "/nonexistent/environment.conf", 1);
}

/* A recorder with plugins whose lookups have finished (found is true when they are
 * expected to publish data: that is waited for; otherwise the thread is joined at
 * once); then one segment, parsed. */
static json_t *segment_with(unsigned plugins, const char *origin, bool found)
{
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.sampler = XRAY_SAMPLER_ALL;
    cfg.log_level = XRAY_LOG_SILENT;
    cfg.daemon_address = "127.0.0.1:9";
    cfg.plugins = plugins;
    cfg.origin = origin;
    struct xray_recorder *rec = rig_recorder(&cfg);
    assert_non_null(rec);
    if (found)
        FAKE_WAIT(atomic_load(&rec->plugin) != NULL, 5000);
    xray__plugins_stop(rec->plugins_ctx); /* joins the lookup */
    rec->plugins_ctx = NULL;
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    xray_segment_end(seg);
    assert_int_equal(rig.n, 1);
    json_t *doc = rig_doc(0);
    assert_non_null(doc);
    rig_reset();
    xray_recorder_destroy(rec);
    return doc;
}

static const char *str_at(json_t *doc, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(doc, a);
    if (b != NULL)
        v = json_object_get(v, b);
    if (c != NULL)
        v = json_object_get(v, c);
    return json_string_value(v);
}

static void test_plugins_ec2_imdsv2(void **state)
{
    (void)state;
    clear_env();
    struct fake_server *fs = fake_start(metadata, NULL);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)fs->port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    json_t *doc = segment_with(XRAY_PLUGIN_EC2, NULL, true);
    assert_string_equal(str_at(doc, "origin", NULL, NULL), "AWS::EC2::Instance");
    assert_string_equal(str_at(doc, "aws", "ec2", "instance_id"), "i-0123456789");
    assert_string_equal(str_at(doc, "aws", "ec2", "availability_zone"), "us-east-1a");
    assert_string_equal(str_at(doc, "aws", "ec2", "instance_size"), "t3.micro");
    assert_string_equal(str_at(doc, "aws", "ec2", "ami_id"), "ami-0abc");
    json_decref(doc);
    struct fake_request token;
    assert_true(fake_last(fs, "/latest/api/token", &token));
    assert_string_equal(token.method, "PUT");
    assert_int_equal(fake_count(fs, NULL), 2);

    /* A service that refuses tokens is asked without one (IMDSv1). */
    atomic_store(&imds_v1_only, 1);
    doc = segment_with(XRAY_PLUGIN_EC2, NULL, true);
    atomic_store(&imds_v1_only, 0);
    assert_string_equal(str_at(doc, "aws", "ec2", "instance_id"), "i-0123456789");
    json_decref(doc);

    /* AWS_EC2_METADATA_DISABLED: no call at all. */
    size_t calls = fake_count(fs, NULL);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    doc = segment_with(XRAY_PLUGIN_EC2, NULL, false);
    assert_null(json_object_get(doc, "origin"));
    assert_int_equal(fake_count(fs, NULL), calls);
    json_decref(doc);
    fake_stop(fs);
}

static void test_plugins_ecs_and_precedence(void **state)
{
    (void)state;
    clear_env();
    struct fake_server *fs = fake_start(metadata, NULL);
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)fs->port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v4/c1", (unsigned)fs->port);
    setenv("ECS_CONTAINER_METADATA_URI_V4", url, 1);
    json_t *doc = segment_with(XRAY_PLUGIN_EC2 | XRAY_PLUGIN_ECS, NULL, true);
    assert_string_equal(str_at(doc, "origin", NULL, NULL), "AWS::ECS::Container");
    assert_string_equal(str_at(doc, "aws", "ecs", "container_id"), "d0c4e7");
    assert_string_equal(str_at(doc, "aws", "ecs", "container_arn"),
                        "arn:aws:ecs:us-east-1:123456789012:container/c1");
    char host[256];
    gethostname(host, sizeof(host));
    assert_string_equal(str_at(doc, "aws", "ecs", "container"), host);
    assert_string_equal(str_at(doc, "aws", "ec2", "instance_id"), "i-0123456789");
    json_decref(doc);

    /* A configured origin wins over the plugins'. */
    doc = segment_with(XRAY_PLUGIN_ECS, "AWS::EKS::Container", true);
    assert_string_equal(str_at(doc, "origin", NULL, NULL), "AWS::EKS::Container");
    assert_string_equal(str_at(doc, "aws", "ecs", "container_id"), "d0c4e7");
    json_decref(doc);

    /* Outside a task (no agent variables) the ECS plugin adds nothing. */
    unsetenv("ECS_CONTAINER_METADATA_URI_V4");
    unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    doc = segment_with(XRAY_PLUGIN_ECS, NULL, false);
    assert_null(json_object_get(doc, "origin"));
    json_decref(doc);
    fake_stop(fs);
}

static void test_plugins_beanstalk(void **state)
{
    (void)state;
    clear_env();
    FILE *f = fopen(eb_path, "w");
    assert_non_null(f);
    fputs("{\"deployment_id\":23,\"version_label\":\"v-7\",\"environment_name\":\"shop-prod\"}", f);
    fclose(f);
    setenv("XRAY_ELASTIC_BEANSTALK_CONF", eb_path, 1);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)fake_closed_port());
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1); /* nothing answers */
    json_t *doc =
        segment_with(XRAY_PLUGIN_EC2 | XRAY_PLUGIN_ECS | XRAY_PLUGIN_ELASTIC_BEANSTALK, NULL, true);
    assert_string_equal(str_at(doc, "origin", NULL, NULL), "AWS::ElasticBeanstalk::Environment");
    json_t *eb = json_object_get(json_object_get(doc, "aws"), "elastic_beanstalk");
    assert_string_equal(json_string_value(json_object_get(eb, "environment_name")), "shop-prod");
    assert_string_equal(json_string_value(json_object_get(eb, "version_label")), "v-7");
    assert_int_equal(json_integer_value(json_object_get(eb, "deployment_id")), 23);
    assert_null(json_object_get(json_object_get(doc, "aws"), "ec2"));
    json_decref(doc);
    unlink(eb_path);
}

static void test_plugins_nothing_found(void **state)
{
    (void)state;
    clear_env();
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)fake_closed_port());
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    json_t *doc = segment_with(XRAY_PLUGIN_EC2 | XRAY_PLUGIN_ECS | XRAY_PLUGIN_ELASTIC_BEANSTALK,
                               NULL, false);
    assert_null(json_object_get(doc, "origin"));
    assert_null(json_object_get(json_object_get(doc, "aws"), "ec2"));
    json_decref(doc);

    /* A metadata service that accepts and never answers delays nothing but the lookup
     * thread; segments begun meanwhile carry no plugin data. */
    struct fake_server *fs = fake_start(metadata, NULL);
    fs->delay_ms = 1500;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)fs->port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.sampler = XRAY_SAMPLER_ALL;
    cfg.log_level = XRAY_LOG_SILENT;
    cfg.daemon_address = "127.0.0.1:9";
    cfg.plugins = XRAY_PLUGIN_EC2;
    struct xray_recorder *rec = rig_recorder(&cfg);
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    xray_segment_end(seg);
    doc = rig_doc(0);
    assert_null(json_object_get(doc, "origin"));
    json_decref(doc);
    rig_reset();
    xray_recorder_destroy(rec); /* joins after at most the call's timeout */
    fake_stop(fs);
}

static int setup(void **state)
{
    (void)state;
    snprintf(eb_path, sizeof(eb_path), "/tmp/test_plugins_eb.%d.conf", (int)getpid());
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugins_ec2_imdsv2),
        cmocka_unit_test(test_plugins_ecs_and_precedence),
        cmocka_unit_test(test_plugins_beanstalk),
        cmocka_unit_test(test_plugins_nothing_found),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
