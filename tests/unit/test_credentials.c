/* SPDX-License-Identifier: Apache-2.0 */
/* The synchronous credential providers (environment, shared files), the shared-file
 * parser and the helpers every provider shares (expiry times, credentials documents,
 * token files), and that no secret ever reaches an error text. Files live in a
 * temporary HOME. The chain is tested in test_credentials_chain.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/credentials.h"
#include "aws/profile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY"
#define TOKEN  "FQoGZXIvYXdzEJr//////////TOKENTOKEN=="

static char home[256];

static const char *const env_vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
};

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", home, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_files(void)
{
    const char *names[] = {".aws/credentials", ".aws/config", "alt-credentials", "alt-config"};
    char path[512];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", home, names[i]);
        unlink(path);
    }
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
    setenv("HOME", home, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1); /* never 169.254.169.254 */
    remove_files();
    return 0;
}

struct answer {
    int calls;
    int rc;
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
};

static void on_answer(void *data, int rc, const struct aws_credentials *creds, const char *err)
{
    struct answer *a = data;
    a->calls++;
    a->rc = rc;
    if (rc == 0)
        assert_int_equal(aws_credentials_copy(&a->c, creds), 0);
    else
        assert_null(creds);
    assert_non_null(err != NULL || rc == 0 ? "ok" : NULL);
    snprintf(a->err, sizeof(a->err), "%s", err != NULL ? err : "");
}

/* One load of a synchronous provider: it must answer before load returns. */
static int load(const struct credentials_provider *p, struct aws_credentials *c, char *err)
{
    static const struct credentials_context ctx = {0};
    struct answer a = {0};
    p->load(p, &ctx, 1000, on_answer, &a);
    assert_int_equal(a.calls, 1);
    *c = a.c;
    snprintf(err, XRAY_ERR_LEN, "%s", a.err);
    return a.rc;
}

static void assert_no_secret(const char *err)
{
    assert_null(strstr(err, SECRET));
    assert_null(strstr(err, TOKEN));
    assert_null(strstr(err, "SECRETKEY"));
}

static void test_credentials_env_standard(void **state)
{
    (void)state;
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    assert_int_equal(load(&credentials_env_provider, &c, err), 0);
    assert_string_equal(c.access_key_id, "AKIDENV");
    assert_string_equal(c.secret_access_key, SECRET);
    assert_null(c.session_token);
    assert_int_equal(c.expires_ms, 0);
    assert_string_equal(c.source, "env");
    aws_credentials_clear(&c);

    setenv("AWS_SESSION_TOKEN", TOKEN, 1);
    assert_int_equal(load(&credentials_env_provider, &c, err), 0);
    assert_string_equal(c.session_token, TOKEN);
    aws_credentials_clear(&c);
    assert_null(c.access_key_id);
}

static void test_credentials_env_legacy(void **state)
{
    (void)state;
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
    setenv("AWS_ACCESS_KEY", "AKIDLEGACY", 1);
    setenv("AWS_SECRET_KEY", SECRET, 1);
    assert_int_equal(load(&credentials_env_provider, &c, err), 0);
    assert_string_equal(c.access_key_id, "AKIDLEGACY");
    assert_string_equal(c.secret_access_key, SECRET);
    aws_credentials_clear(&c);
    /* The standard names win over the legacy ones. */
    setenv("AWS_ACCESS_KEY_ID", "AKIDSTD", 1);
    assert_int_equal(load(&credentials_env_provider, &c, err), 0);
    assert_string_equal(c.access_key_id, "AKIDSTD");
    aws_credentials_clear(&c);
}

static void test_credentials_env_missing_or_half(void **state)
{
    (void)state;
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
    assert_int_equal(load(&credentials_env_provider, &c, err), XRAY_ENOCREDS);
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID"));
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    assert_int_equal(load(&credentials_env_provider, &c, err), XRAY_ENOCREDS);
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID not set"));
    assert_no_secret(err);
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "", 1);
    assert_int_equal(load(&credentials_env_provider, &c, err), XRAY_ENOCREDS);
    assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY not set"));
    /* A key id that would break the request line is refused, not sent. */
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKID\r\nX-Evil: 1", 1);
    assert_int_equal(load(&credentials_env_provider, &c, err), XRAY_EPARSE);
    assert_no_secret(err);
    assert_null(c.access_key_id);
}

static void test_credentials_profile_default(void **state)
{
    (void)state;
    write_file(".aws/credentials", "# comment\n"
                                   "; another\n"
                                   "\n"
                                   "[other]\n"
                                   "aws_access_key_id = AKIDOTHER\n"
                                   "aws_secret_access_key = other\n"
                                   "  [ default ]  \r\n"
                                   "  AWS_Access_Key_ID=AKIDFILE   \r\n"
                                   "aws_secret_access_key   =   " SECRET "\r\n"
                                   "aws_session_token = " TOKEN " # inline comment\r\n"
                                   "s3 =\n"
                                   "    max_concurrent_requests = 10\n"
                                   "    aws_access_key_id = NESTED\n"
                                   "region: us-west-2\n");
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
    assert_int_equal(load(&credentials_profile_provider, &c, err), 0);
    assert_string_equal(c.access_key_id, "AKIDFILE");
    assert_string_equal(c.secret_access_key, SECRET);
    assert_string_equal(c.session_token, TOKEN);
    assert_string_equal(c.source, "profile");
    aws_credentials_clear(&c);

    setenv("AWS_PROFILE", "other", 1);
    assert_int_equal(load(&credentials_profile_provider, &c, err), 0);
    assert_string_equal(c.access_key_id, "AKIDOTHER");
    assert_null(c.session_token);
    aws_credentials_clear(&c);
}

static void test_credentials_profile_config_file_syntax(void **state)
{
    (void)state;
    /* In the config file, profiles are "[profile NAME]"; "[NAME]" is not one. */
    write_file(".aws/config", "[default]\n"
                              "aws_access_key_id = AKIDCFGDEFAULT\n"
                              "aws_secret_access_key = d\n"
                              "[work]\n"
                              "aws_access_key_id = WRONG\n"
                              "aws_secret_access_key = wrong\n"
                              "[profile   work]\n"
                              "aws_access_key_id = AKIDWORK\n"
                              "aws_secret_access_key = w\n");
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
    assert_int_equal(load(&credentials_profile_provider, &c, err), 0);
    assert_string_equal(c.access_key_id, "AKIDCFGDEFAULT");
    aws_credentials_clear(&c);
    setenv("AWS_PROFILE", "work", 1);
    assert_int_equal(load(&credentials_profile_provider, &c, err), 0);
    assert_string_equal(c.access_key_id, "AKIDWORK");
    aws_credentials_clear(&c);
    /* AWS_DEFAULT_PROFILE is the older name, read when AWS_PROFILE is not set. */
    unsetenv("AWS_PROFILE");
    setenv("AWS_DEFAULT_PROFILE", "work", 1);
    assert_int_equal(load(&credentials_profile_provider, &c, err), 0);
    assert_string_equal(c.access_key_id, "AKIDWORK");
    aws_credentials_clear(&c);
}

static void test_credentials_profile_credentials_file_wins(void **state)
{
    (void)state;
    write_file(".aws/config", "[default]\naws_access_key_id = AKIDCONFIG\n"
                              "aws_secret_access_key = c\n");
    write_file(".aws/credentials", "[default]\naws_access_key_id = AKIDCREDS\n"
                                   "aws_secret_access_key = k\n");
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
    assert_int_equal(load(&credentials_profile_provider, &c, err), 0);
    assert_string_equal(c.access_key_id, "AKIDCREDS");
    aws_credentials_clear(&c);
    /* Files named by the environment replace the defaults under HOME. */
    write_file("alt-credentials", "[default]\naws_access_key_id = AKIDALT\n"
                                  "aws_secret_access_key = a\n");
    char path[512];
    snprintf(path, sizeof(path), "%s/alt-credentials", home);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    assert_int_equal(load(&credentials_profile_provider, &c, err), 0);
    assert_string_equal(c.access_key_id, "AKIDALT");
    aws_credentials_clear(&c);
    /* The alternative credentials file lacks the profile: the config file has it. */
    setenv("AWS_PROFILE", "cfgonly", 1);
    write_file("alt-config", "[profile cfgonly]\naws_access_key_id = AKIDCFGONLY\n"
                             "aws_secret_access_key = o\n");
    snprintf(path, sizeof(path), "%s/alt-config", home);
    setenv("AWS_CONFIG_FILE", path, 1);
    assert_int_equal(load(&credentials_profile_provider, &c, err), 0);
    assert_string_equal(c.access_key_id, "AKIDCFGONLY");
    aws_credentials_clear(&c);
}

static void test_credentials_profile_missing(void **state)
{
    (void)state;
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
    assert_int_equal(load(&credentials_profile_provider, &c, err), XRAY_ENOCREDS);
    assert_non_null(strstr(err, "no profile \"default\""));
    assert_non_null(strstr(err, ".aws/credentials"));
    /* A profile without keys (it may assume a role, later) is "nothing here". */
    write_file(".aws/credentials", "[default]\nregion = us-east-1\n");
    assert_int_equal(load(&credentials_profile_provider, &c, err), XRAY_ENOCREDS);
    /* A profile the user named that exists nowhere is an error. */
    setenv("AWS_PROFILE", "nosuch", 1);
    assert_int_equal(load(&credentials_profile_provider, &c, err), XRAY_ECONFIG);
    assert_non_null(strstr(err, "nosuch"));
    /* Half a key pair is an error too, and names the missing key, not the secret. */
    unsetenv("AWS_PROFILE");
    write_file(".aws/credentials", "[default]\naws_secret_access_key = " SECRET "\n");
    assert_int_equal(load(&credentials_profile_provider, &c, err), XRAY_ECONFIG);
    assert_non_null(strstr(err, "no aws_access_key_id"));
    assert_no_secret(err);
    /* No HOME and no file variables: nothing to read. */
    unsetenv("HOME");
    assert_int_equal(load(&credentials_profile_provider, &c, err), XRAY_ENOCREDS);
    setenv("HOME", home, 1);
}

static void test_credentials_profile_malformed(void **state)
{
    (void)state;
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
    const char *bad[] = {
        "[default]\naws_access_key_id = AKID\naws_secret_access_key " SECRET "\n",
        "aws_secret_access_key = " SECRET "\n[default]\n",
        "[default\naws_secret_access_key = " SECRET "\n",
        "[default] " SECRET "\n",
        "[default]\n= " SECRET "\n",
        "[]\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(".aws/credentials", bad[i]);
        assert_int_equal(load(&credentials_profile_provider, &c, err), XRAY_EPARSE);
        assert_non_null(strstr(err, "line "));
        assert_no_secret(err);
    }
    /* A line past the bound. */
    char *big = malloc(PROFILE_LINE_MAX + 64);
    assert_non_null(big);
    snprintf(big, 32, "[default]\nx = ");
    memset(big + strlen(big), 'a', PROFILE_LINE_MAX);
    big[strlen("[default]\nx = ") + PROFILE_LINE_MAX] = '\0';
    write_file(".aws/credentials", big);
    free(big);
    assert_int_equal(load(&credentials_profile_provider, &c, err), XRAY_ETOOBIG);
    /* A directory where the file should be. */
    char path[512];
    snprintf(path, sizeof(path), "%s/.aws", home);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    assert_int_equal(load(&credentials_profile_provider, &c, err), XRAY_EPARSE);
}

static void test_credentials_profile_parser_bounds(void **state)
{
    (void)state;
    struct profile_values v = {.keys = {"k", NULL}};
    char err[XRAY_ERR_LEN];
    static const char nul[] = "[default]\nk = a\0b\n";
    assert_int_equal(profile_find(nul, sizeof(nul) - 1, PROFILE_CREDENTIALS, "default", &v, err),
                     XRAY_EPARSE);
    assert_null(v.values[0]);
    static const char bom[] = "\xEF\xBB\xBF[default]\nK = 1\nk = 2 ;c\n";
    assert_int_equal(profile_find(bom, sizeof(bom) - 1, PROFILE_CREDENTIALS, "default", &v, err),
                     0);
    assert_true(v.found);
    assert_string_equal(v.values[0], "2");
    profile_values_free(&v);
    assert_int_equal(profile_find("x", PROFILE_FILE_MAX + 1, PROFILE_CONFIG, "a", &v, err),
                     XRAY_ETOOBIG);
}

static void test_credentials_parse_time(void **state)
{
    (void)state;
    uint64_t ms = 0;
    assert_int_equal(credentials_parse_time("2026-11-22T01:08:08Z", 20, &ms), 0);
    assert_int_equal(ms, 1795309688000ull);
    const char *moto = "2026-11-22T01:08:08.062271Z"; /* moto's STS writes microseconds */
    assert_int_equal(credentials_parse_time(moto, strlen(moto), &ms), 0);
    assert_int_equal(ms, 1795309688062ull);
    const char *off = "2026-11-22T03:08:08+02:00";
    assert_int_equal(credentials_parse_time(off, strlen(off), &ms), 0);
    assert_int_equal(ms, 1795309688000ull);
    const char *bad[] = {"",
                         "2026-11-22",
                         "2026-11-22T01:08:08",
                         "2026-13-22T01:08:08Z",
                         "2026-11-22T01:08:08Zx",
                         "2026-11-22T01:08:08.Z",
                         "2026-11-22T25:08:08Z",
                         "1969-12-31T23:59:59Z",
                         "20a6-11-22T01:08:08Z",
                         "2026-11-22T01:08:08+0200"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(credentials_parse_time(bad[i], strlen(bad[i]), &ms), XRAY_EPARSE);
}

static void test_credentials_from_json(void **state)
{
    (void)state;
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
    const char *ecs =
        "{\"RoleArn\":\"arn:aws:iam::123456789012:role/t\",\"AccessKeyId\":\"ASIAECS\","
        "\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"" TOKEN "\","
        "\"Expiration\":\"2026-11-22T01:08:08Z\"}";
    assert_int_equal(credentials_from_json(ecs, strlen(ecs), &c, err), 0);
    assert_string_equal(c.access_key_id, "ASIAECS");
    assert_string_equal(c.session_token, TOKEN);
    assert_int_equal(c.expires_ms, 1795309688000ull);
    aws_credentials_clear(&c);
    const char *imds = "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAIMDS\","
                       "\"SecretAccessKey\":\"s\",\"Token\":\"t\"}";
    assert_int_equal(credentials_from_json(imds, strlen(imds), &c, err), 0);
    assert_int_equal(c.expires_ms, 0); /* no Expiration: the keys do not expire */
    aws_credentials_clear(&c);
    struct {
        const char *body;
        int rc;
    } bad[] = {
        {"{\"AccessKeyId\":\"A\",", XRAY_EPARSE},
        {"[1]", XRAY_EPARSE},
        {"{\"AccessKeyId\":\"A\"}", XRAY_EFIELD},
        {"{\"AccessKeyId\":1,\"SecretAccessKey\":\"" SECRET "\"}", XRAY_EFIELD},
        {"{\"Code\":\"Failure\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET "\"}",
         XRAY_EUPSTREAM},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET "\",\"Expiration\":\"soon\"}",
         XRAY_EPARSE},
        {"{\"AccessKeyId\":\"A B\",\"SecretAccessKey\":\"" SECRET "\"}", XRAY_EPARSE},
        {"{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\",\"SecretAccessKey\":\"" SECRET "\"}",
         XRAY_EPARSE},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(credentials_from_json(bad[i].body, strlen(bad[i].body), &c, err),
                         bad[i].rc);
        assert_true(err[0] != '\0');
        assert_no_secret(err);
        assert_null(c.access_key_id);
    }
}

static void test_credentials_read_file(void **state)
{
    (void)state;
    char path[512], err[XRAY_ERR_LEN];
    char *s = NULL;
    snprintf(path, sizeof(path), "%s/alt-credentials", home);
    write_file("alt-credentials", TOKEN "\r\n");
    assert_int_equal(credentials_read_file(path, 4096, &s, err), 0);
    assert_string_equal(s, TOKEN); /* without the line break */
    credentials_free_secret(s);
    assert_int_equal(credentials_read_file(path, 8, &s, err), XRAY_ETOOBIG);
    assert_null(s);
    assert_no_secret(err);
    write_file("alt-credentials", "\n");
    assert_int_equal(credentials_read_file(path, 4096, &s, err), XRAY_EPARSE);
    unlink(path);
    assert_int_equal(credentials_read_file(path, 4096, &s, err), -ENOENT);
    assert_non_null(strstr(err, "alt-credentials"));
}

static void test_credentials_copy(void **state)
{
    (void)state;
    struct aws_credentials src = {"AKID", SECRET, NULL, 42, "x"};
    struct aws_credentials dst;
    assert_int_equal(aws_credentials_copy(&dst, &src), 0);
    assert_string_equal(dst.access_key_id, "AKID");
    assert_true(dst.access_key_id != src.access_key_id);
    assert_null(dst.session_token);
    assert_int_equal(dst.expires_ms, 42);
    aws_credentials_clear(&dst);
    aws_credentials_clear(NULL);
}

static int group_setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(home, sizeof(home), "%s/xrayd-creds-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(home) == NULL)
        return -1;
    char aws[300];
    snprintf(aws, sizeof(aws), "%s/.aws", home);
    return mkdir(aws, 0700);
}

static int group_teardown(void **state)
{
    (void)state;
    remove_files();
    char aws[300];
    snprintf(aws, sizeof(aws), "%s/.aws", home);
    rmdir(aws);
    rmdir(home);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_credentials_env_standard, setup),
        cmocka_unit_test_setup(test_credentials_env_legacy, setup),
        cmocka_unit_test_setup(test_credentials_env_missing_or_half, setup),
        cmocka_unit_test_setup(test_credentials_profile_default, setup),
        cmocka_unit_test_setup(test_credentials_profile_config_file_syntax, setup),
        cmocka_unit_test_setup(test_credentials_profile_credentials_file_wins, setup),
        cmocka_unit_test_setup(test_credentials_profile_missing, setup),
        cmocka_unit_test_setup(test_credentials_profile_malformed, setup),
        cmocka_unit_test_setup(test_credentials_profile_parser_bounds, setup),
        cmocka_unit_test_setup(test_credentials_parse_time, setup),
        cmocka_unit_test_setup(test_credentials_from_json, setup),
        cmocka_unit_test_setup(test_credentials_read_file, setup),
        cmocka_unit_test_setup(test_credentials_copy, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
