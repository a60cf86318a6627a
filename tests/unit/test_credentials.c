/* SPDX-License-Identifier: Apache-2.0 */
/* The credential providers (environment, shared files), the shared-file parser and
 * the chain: order, caching, refresh before expiry with time as a parameter, and that
 * no secret ever reaches an error text. Files live in a temporary HOME. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/credentials.h"
#include "aws/profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY"
#define TOKEN  "FQoGZXIvYXdzEJr//////////TOKENTOKEN=="

static char home[256];

static const char *const env_vars[] = {
    "AWS_ACCESS_KEY_ID",   "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY",      "AWS_SECRET_KEY",        "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE",       "AWS_SHARED_CREDENTIALS_FILE",
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
    remove_files();
    return 0;
}

static int load(const struct credentials_provider *p, struct aws_credentials *c, char *err)
{
    memset(c, 0, sizeof(*c));
    err[0] = '\0';
    return p->load(p, 1000, c, err);
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

/* ---- the chain ---- */

struct fake {
    struct credentials_provider base; /* first: the chain hands this back to load */
    int rc;
    int loads;
    uint64_t lifetime_ms; /* 0 = long-term keys */
    const char *id;
};

static int fake_load(const struct credentials_provider *self, uint64_t now_ms,
                     struct aws_credentials *out, char err[XRAY_ERR_LEN])
{
    struct fake *f = (struct fake *)(uintptr_t)self;
    f->loads++;
    if (f->rc != 0) {
        snprintf(err, XRAY_ERR_LEN, "%s failed on purpose", f->base.name);
        return f->rc;
    }
    int rc = aws_credentials_set(out, f->id, SECRET, TOKEN, f->base.name, err);
    out->expires_ms = f->lifetime_ms != 0 ? now_ms + f->lifetime_ms : 0;
    return rc;
}

static void test_credentials_chain_order_and_errors(void **state)
{
    (void)state;
    struct fake a = {{"first", fake_load}, XRAY_ENOCREDS, 0, 0, "AKIDA"};
    struct fake b = {{"second", fake_load}, 0, 0, 0, "AKIDB"};
    struct fake c = {{"third", fake_load}, 0, 0, 0, "AKIDC"};
    const struct credentials_provider *list[] = {&a.base, &b.base, &c.base};
    struct credentials_chain *chain = credentials_chain_create(list, 3);
    assert_non_null(chain);
    const struct aws_credentials *cr;
    char err[XRAY_ERR_LEN];
    assert_int_equal(credentials_chain_get(chain, 1000, &cr, err), 0);
    assert_string_equal(cr->access_key_id, "AKIDB");
    assert_string_equal(cr->source, "second");
    assert_int_equal(c.loads, 0);
    /* Cached: long-term keys are not loaded again. */
    assert_int_equal(credentials_chain_get(chain, 1000000000, &cr, err), 0);
    assert_int_equal(b.loads, 1);
    /* invalidate forces a reload. */
    credentials_chain_invalidate(chain);
    assert_int_equal(credentials_chain_get(chain, 1000000000, &cr, err), 0);
    assert_int_equal(b.loads, 2);
    credentials_chain_destroy(chain);

    /* Nobody has any: the error names every source and its reason. */
    b.rc = XRAY_ENOCREDS;
    c.rc = XRAY_ENOCREDS;
    a.loads = 0;
    chain = credentials_chain_create(list, 3);
    assert_int_equal(credentials_chain_get(chain, 1000, &cr, err), XRAY_ENOCREDS);
    assert_null(cr);
    assert_non_null(strstr(err, "first (first failed on purpose)"));
    assert_non_null(strstr(err, "second"));
    assert_non_null(strstr(err, "third"));
    /* Within the retry window nothing is loaded again; after it, everything is. */
    assert_int_equal(credentials_chain_get(chain, 1000 + CREDENTIALS_RETRY_MS - 1, &cr, err),
                     XRAY_ENOCREDS);
    assert_int_equal(a.loads, 1);
    assert_non_null(strstr(err, "third"));
    assert_int_equal(credentials_chain_get(chain, 1000 + CREDENTIALS_RETRY_MS, &cr, err),
                     XRAY_ENOCREDS);
    assert_int_equal(a.loads, 2);
    credentials_chain_destroy(chain);

    /* A provider that applies but fails stops the chain. */
    b.rc = XRAY_EUPSTREAM;
    c.rc = 0;
    c.loads = 0;
    chain = credentials_chain_create(list, 3);
    assert_int_equal(credentials_chain_get(chain, 1000, &cr, err), XRAY_EUPSTREAM);
    assert_true(strncmp(err, "second: ", 8) == 0);
    assert_int_equal(c.loads, 0);
    credentials_chain_destroy(chain);

    assert_null(credentials_chain_create(list, 0));
    assert_null(credentials_chain_create(list, CREDENTIALS_PROVIDERS_MAX + 1));
}

static void test_credentials_chain_refresh_before_expiry(void **state)
{
    (void)state;
    const uint64_t hour = 3600 * 1000;
    struct fake t = {{"temp", fake_load}, 0, 0, hour, "ASIATEMP"};
    const struct credentials_provider *list[] = {&t.base};
    struct credentials_chain *chain = credentials_chain_create(list, 1);
    const struct aws_credentials *cr;
    char err[XRAY_ERR_LEN];
    uint64_t t0 = 1795304610000;
    assert_int_equal(credentials_chain_get(chain, t0, &cr, err), 0);
    assert_int_equal(cr->expires_ms, t0 + hour);
    assert_int_equal(t.loads, 1);
    uint64_t edge = t0 + hour - CREDENTIALS_REFRESH_BEFORE_MS;
    assert_int_equal(credentials_chain_get(chain, edge - 1, &cr, err), 0);
    assert_int_equal(t.loads, 1);
    assert_int_equal(credentials_chain_get(chain, edge, &cr, err), 0);
    assert_int_equal(t.loads, 2);
    assert_int_equal(cr->expires_ms, edge + hour);

    /* A failed refresh keeps the old credentials until they really expire. */
    uint64_t exp = cr->expires_ms;
    uint64_t edge2 = exp - CREDENTIALS_REFRESH_BEFORE_MS;
    t.rc = XRAY_EUPSTREAM;
    assert_int_equal(credentials_chain_get(chain, edge2, &cr, err), 0);
    assert_int_equal(t.loads, 3);
    assert_int_equal(cr->expires_ms, exp);
    assert_int_equal(credentials_chain_get(chain, edge2 + 10, &cr, err), 0);
    assert_int_equal(t.loads, 3); /* inside the retry window */
    assert_int_equal(credentials_chain_get(chain, exp, &cr, err), XRAY_EUPSTREAM);
    assert_null(cr);
    assert_no_secret(err);
    /* Back again once the provider is. */
    t.rc = 0;
    assert_int_equal(credentials_chain_get(chain, exp + CREDENTIALS_RETRY_MS, &cr, err), 0);
    assert_string_equal(cr->access_key_id, "ASIATEMP");
    credentials_chain_destroy(chain);
}

static void test_credentials_chain_default_env_then_profile(void **state)
{
    (void)state;
    write_file(".aws/credentials", "[default]\naws_access_key_id = AKIDFILE\n"
                                   "aws_secret_access_key = f\n");
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    struct credentials_chain *chain = credentials_chain_create(NULL, 0);
    const struct aws_credentials *cr;
    char err[XRAY_ERR_LEN];
    assert_int_equal(credentials_chain_get(chain, 1, &cr, err), 0);
    assert_string_equal(cr->access_key_id, "AKIDENV");
    credentials_chain_destroy(chain);

    unsetenv("AWS_ACCESS_KEY_ID");
    chain = credentials_chain_create(NULL, 0);
    assert_int_equal(credentials_chain_get(chain, 1, &cr, err), 0);
    assert_string_equal(cr->access_key_id, "AKIDFILE");
    assert_string_equal(cr->source, "profile");
    credentials_chain_destroy(chain);

    remove_files();
    chain = credentials_chain_create(NULL, 0);
    assert_int_equal(credentials_chain_get(chain, 1, &cr, err), XRAY_ENOCREDS);
    assert_non_null(strstr(err, "env ("));
    assert_non_null(strstr(err, "profile ("));
    assert_no_secret(err);
    credentials_chain_destroy(chain);
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
        cmocka_unit_test_setup(test_credentials_chain_order_and_errors, setup),
        cmocka_unit_test_setup(test_credentials_chain_refresh_before_expiry, setup),
        cmocka_unit_test_setup(test_credentials_chain_default_env_then_profile, setup),
        cmocka_unit_test_setup(test_credentials_copy, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
