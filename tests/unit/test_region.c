/* SPDX-License-Identifier: Apache-2.0 */
/* Region resolution: each source alone, their order, the ECS metadata file and
 * instance metadata (a fake IMDSv2 on 127.0.0.1; -o and AWS_EC2_METADATA_DISABLED
 * skip them), the shared config profile, and the error when nothing names one.
 * Files live in a temporary HOME. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/region.h"

#include "aws/imds.h"
#include "fake_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char home[256];
static char ecs_file[320];
static char config_file[320];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    const char *vars[] = {
        "AWS_REGION",  "ECS_ENABLE_CONTAINER_METADATA", "ECS_CONTAINER_METADATA_FILE",
        "AWS_PROFILE", "AWS_DEFAULT_PROFILE",           "AWS_CONFIG_FILE"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    setenv("HOME", home, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1); /* never 169.254.169.254 */
    unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    imds_startup_forget();
    unlink(ecs_file);
    unlink(config_file);
    return 0;
}

static void use_ecs(const char *json)
{
    write_file(ecs_file, json);
    setenv("ECS_ENABLE_CONTAINER_METADATA", "true", 1);
    setenv("ECS_CONTAINER_METADATA_FILE", ecs_file, 1);
}

static const char ecs_json[] =
    "{\"Cluster\":\"default\",\"ContainerInstanceARN\":\"arn:aws:ecs:eu-west-1:012345678910:"
    "container-instance/default/1f73d099\",\"TaskARN\":\"arn:aws:ecs:eu-west-1:012345678910:"
    "task/default/2b88376d\",\"ContainerName\":\"xray\",\"MetadataFileStatus\":\"READY\"}";

static void expect(const char *flag, const char *cfg, bool local, const char *region,
                   const char *source)
{
    char out[REGION_MAX];
    const char *src = NULL;
    char err[XRAY_ERR_LEN] = "";
    assert_int_equal(region_resolve(flag, cfg, local, out, &src, err), 0);
    assert_string_equal(out, region);
    assert_string_equal(src, source);
}

static void test_region_resolve_order(void **state)
{
    (void)state;
    write_file(config_file, "[default]\nregion = ap-south-1\n");
    use_ecs(ecs_json);
    setenv("AWS_REGION", "us-west-2", 1);
    expect("eu-north-1", "ca-central-1", false, "eu-north-1", "flag");
    expect("", "ca-central-1", false, "ca-central-1", "config");
    expect(NULL, NULL, false, "us-west-2", "AWS_REGION");
    unsetenv("AWS_REGION");
    expect(NULL, "", false, "eu-west-1", "ecs-metadata");
    expect(NULL, NULL, true, "ap-south-1", "profile"); /* -o skips the metadata file */
    unsetenv("ECS_ENABLE_CONTAINER_METADATA");
    expect(NULL, NULL, false, "ap-south-1", "profile");
}

static void test_region_resolve_ecs_metadata(void **state)
{
    (void)state;
    use_ecs(ecs_json);
    setenv("ECS_ENABLE_CONTAINER_METADATA", "TRUE", 1);
    expect(NULL, NULL, false, "eu-west-1", "ecs-metadata");

    /* Not enabled, no file, broken JSON, no TaskARN, short ARN: skipped, said why. */
    char out[REGION_MAX];
    const char *src;
    char err[XRAY_ERR_LEN];
    setenv("ECS_ENABLE_CONTAINER_METADATA", "false", 1);
    assert_int_equal(region_resolve(NULL, NULL, false, out, &src, err), XRAY_ENOREGION);
    assert_non_null(strstr(err, "ECS_ENABLE_CONTAINER_METADATA not true"));
    const char *bad[] = {"{", "{\"TaskARN\":5}", "{\"TaskARN\":\"arn:aws:ecs\"}",
                         "{\"TaskARN\":\"arn:aws:ecs::1:task/x\"}", "[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        use_ecs(bad[i]);
        assert_int_equal(region_resolve(NULL, NULL, false, out, &src, err), XRAY_ENOREGION);
        assert_non_null(strstr(err, "ECS metadata: "));
        assert_null(src);
    }
    unlink(ecs_file);
    assert_int_equal(region_resolve(NULL, NULL, false, out, &src, err), XRAY_ENOREGION);
    assert_non_null(strstr(err, "No such file"));
    /* A broken metadata file does not hide the profile's region. */
    write_file(config_file, "[default]\nregion = sa-east-1\n");
    expect(NULL, NULL, false, "sa-east-1", "profile");
}

static void test_region_resolve_profile(void **state)
{
    (void)state;
    write_file(config_file, "[default]\nregion = us-east-2\n"
                            "[profile work]\nREGION = eu-central-1 # Frankfurt\n");
    expect(NULL, NULL, false, "us-east-2", "profile");
    setenv("AWS_PROFILE", "work", 1);
    expect(NULL, NULL, false, "eu-central-1", "profile");
    char alt[400];
    snprintf(alt, sizeof(alt), "%s/alt-config", home);
    write_file(alt, "[profile work]\nregion = il-central-1\n");
    setenv("AWS_CONFIG_FILE", alt, 1);
    expect(NULL, NULL, false, "il-central-1", "profile");
    unlink(alt);
}

static void test_region_resolve_none(void **state)
{
    (void)state;
    char out[REGION_MAX];
    const char *src = "x";
    char err[XRAY_ERR_LEN];
    assert_int_equal(region_resolve(NULL, NULL, false, out, &src, err), XRAY_ENOREGION);
    assert_null(src);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "-n/--region: not set"));
    assert_non_null(strstr(err, "AWS_REGION: not set"));
    assert_non_null(strstr(err, "ECS metadata"));
    assert_non_null(strstr(err, "shared config"));
    assert_int_equal(region_resolve(NULL, NULL, true, out, &src, err), XRAY_ENOREGION);
    assert_non_null(strstr(err, "skipped in local mode"));
    /* A profile without a region. */
    write_file(config_file, "[default]\noutput = json\n");
    assert_int_equal(region_resolve(NULL, NULL, false, out, &src, err), XRAY_ENOREGION);
    assert_non_null(strstr(err, "no region for profile \"default\""));
}

static void test_region_resolve_invalid(void **state)
{
    (void)state;
    char out[REGION_MAX];
    const char *src;
    char err[XRAY_ERR_LEN];
    setenv("AWS_REGION", "us-east-1\r\nHost: evil", 1);
    assert_int_equal(region_resolve(NULL, NULL, false, out, &src, err), XRAY_ECONFIG);
    assert_non_null(strstr(err, "AWS_REGION"));
    assert_int_equal(region_resolve("US-EAST-1", NULL, false, out, &src, err), XRAY_ECONFIG);
    assert_non_null(strstr(err, "-n/--region"));
    char longname[REGION_MAX + 8];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(region_resolve(longname, NULL, false, out, &src, err), XRAY_ECONFIG);
    assert_true(region_valid("cn-north-1"));
    assert_false(region_valid(""));
    assert_false(region_valid("us east"));
}

/* A fake IMDSv2: a token for a PUT, the region for a GET that carries it. */
static void imds_handler(struct fake_http *f, const struct fake_http_request *req,
                         struct fake_http_reply *rep)
{
    char token[64];
    (void)f;
    fake_http_header(req, "X-aws-ec2-metadata-token", token, sizeof(token));
    if (strcmp(req->method, "PUT") == 0 && strcmp(req->path, "/latest/api/token") == 0) {
        snprintf(rep->body, sizeof(rep->body), "T0KEN");
    } else if (strcmp(token, "T0KEN") != 0) {
        rep->status = 401;
    } else if (strcmp(req->path, "/latest/meta-data/placement/region") == 0) {
        snprintf(rep->body, sizeof(rep->body), "%s", (const char *)f->ctx);
    } else {
        rep->status = 404;
    }
}

static void test_region_resolve_imds(void **state)
{
    (void)state;
    static struct fake_http fake;
    fake_http_start(&fake, imds_handler, "ap-northeast-3");
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", fake.port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    write_file(config_file, "[default]\nregion = ap-south-1\n");
    /* After the ECS file, before the profile. */
    expect(NULL, NULL, false, "ap-northeast-3", "imds");
    use_ecs(ecs_json);
    expect(NULL, NULL, false, "eu-west-1", "ecs-metadata");
    unsetenv("ECS_ENABLE_CONTAINER_METADATA");
    /* -o and AWS_EC2_METADATA_DISABLED skip it, without a request. */
    int before = fake_http_requests(&fake);
    expect(NULL, NULL, true, "ap-south-1", "profile");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    expect(NULL, NULL, false, "ap-south-1", "profile");
    assert_int_equal(fake_http_requests(&fake), before);
    fake_http_stop(&fake);

    /* An answer that is not a region name, and no IMDS at all: skipped, said why. */
    fake_http_start(&fake, imds_handler, "Not A Region");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", fake.port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    imds_startup_forget();
    unlink(config_file);
    char out[REGION_MAX];
    const char *src;
    char err[XRAY_ERR_LEN];
    assert_int_equal(region_resolve(NULL, NULL, false, out, &src, err), XRAY_ENOREGION);
    assert_non_null(strstr(err, "IMDS: placement/region is not a region name"));
    fake_http_stop(&fake);
    imds_startup_forget();
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
    assert_int_equal(region_resolve(NULL, NULL, false, out, &src, err), XRAY_ENOREGION);
    assert_non_null(strstr(err, "IMDS: PUT http://127.0.0.1:1/latest/api/token"));
}

static int group_setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(home, sizeof(home), "%s/xrayd-region-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(home) == NULL)
        return -1;
    snprintf(ecs_file, sizeof(ecs_file), "%s/ecs-metadata.json", home);
    snprintf(config_file, sizeof(config_file), "%s/.aws/config", home);
    char aws[300];
    snprintf(aws, sizeof(aws), "%s/.aws", home);
    return mkdir(aws, 0700);
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(ecs_file);
    unlink(config_file);
    char aws[300];
    snprintf(aws, sizeof(aws), "%s/.aws", home);
    rmdir(aws);
    rmdir(home);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_region_resolve_order, setup),
        cmocka_unit_test_setup(test_region_resolve_ecs_metadata, setup),
        cmocka_unit_test_setup(test_region_resolve_profile, setup),
        cmocka_unit_test_setup(test_region_resolve_none, setup),
        cmocka_unit_test_setup(test_region_resolve_invalid, setup),
        cmocka_unit_test_setup(test_region_resolve_imds, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
