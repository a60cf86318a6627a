/* SPDX-License-Identifier: Apache-2.0 */
/* config_load() against argv and cfg.yaml files: every flag in every form, every key,
 * the four layers of precedence, each error and warning, the API and metrics address
 * rules, and docs/configuration.md against what the options table generates. Files
 * the tests need to vary are written to a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

#define DATA     XRAYD_TEST_DATA "/config/"
#define DOCS     XRAYD_TEST_DATA "/../../docs/configuration.md"
#define ARGV_MAX 16

static char tmpdir[64];

struct run {
    struct config cfg;
    int rc;
    char err[XRAY_ERR_LEN];
    char *warn; /* everything written to the warn stream */
    size_t warn_len;
};

/* Loads "xrayd" followed by the NULL-terminated arguments, with search as the list of
 * auto-discovered files. */
static int load(struct run *r, const char *search, ...)
{
    char *argv[ARGV_MAX] = {"xrayd"};
    int argc = 1;
    va_list ap;
    va_start(ap, search);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < ARGV_MAX - 1;)
        argv[argc++] = (char *)a;
    va_end(ap);
    FILE *warn = open_memstream(&r->warn, &r->warn_len);
    assert_non_null(warn);
    r->rc = config_load_search(&r->cfg, argc, argv, search, warn, r->err);
    fclose(warn);
    return r->rc;
}

static void run_free(struct run *r)
{
    config_destroy(&r->cfg);
    free(r->warn);
    r->warn = NULL;
}

static const char *write_file(const char *name, const char *text)
{
    static char path[2][128];
    static int which;
    char *p = path[which++ % 2];
    snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_config.XXXXXX", t != NULL && *t ? t : "/tmp");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void assert_defaults(const struct config *c)
{
    assert_string_equal(c->resource_arn, "");
    assert_false(c->local_mode);
    assert_int_equal(c->buffer_mb, 0);
    assert_string_equal(c->region, "");
    assert_string_equal(c->udp_address, "127.0.0.1:2000");
    assert_string_equal(c->tcp_address, "127.0.0.1:2000");
    assert_string_equal(c->role_arn, "");
    assert_string_equal(c->log_file, "");
    assert_string_equal(c->log_level, "prod");
    assert_true(c->log_rotation);
    assert_string_equal(c->proxy_address, "");
    assert_int_equal(c->concurrency, 8);
    assert_string_equal(c->endpoint, "");
    assert_false(c->no_verify_ssl);
    assert_int_equal(c->version, 2);
    assert_string_equal(c->upstream, "");
    assert_string_equal(c->api_address, "");
    assert_string_equal(c->metrics_address, "");
    assert_int_equal(c->shutdown_timeout_ms, 5000);
    assert_int_equal(c->request_timeout_ms, 2000);
    assert_int_equal(c->store_mb, 64);
    assert_false(c->show_help);
    assert_false(c->show_version);
    assert_false(c->health_check);
    assert_string_equal(c->health_check_addr, "");
}

static void test_config_load_defaults(void **state)
{
    (void)state;
    struct run r = {0};
    assert_int_equal(load(&r, "", NULL), 0);
    assert_defaults(&r.cfg);
    assert_string_equal(r.cfg.config_file, "");
    assert_string_equal(r.cfg.auto_config_file, "");
    assert_int_equal(r.warn_len, 0);
    run_free(&r);
    assert_string_equal(CONFIG_SEARCH_PATH, "/etc/amazon/xray/cfg.yaml:cfg.yaml");
}

static void test_config_load_every_key(void **state)
{
    (void)state;
    struct run r = {0};
    assert_int_equal(load(&r, "", "-c", DATA "full.yaml", NULL), 0);
    const struct config *c = &r.cfg;
    assert_int_equal(c->buffer_mb, 24);
    assert_int_equal(c->concurrency, 16);
    assert_string_equal(c->region, "eu-west-1");
    assert_string_equal(c->endpoint, "https://xray.eu-west-1.amazonaws.com");
    assert_string_equal(c->udp_address, "0.0.0.0:2001");
    assert_string_equal(c->tcp_address, "[::1]:2002");
    assert_false(c->log_rotation);
    assert_string_equal(c->log_level, "debug");
    assert_string_equal(c->log_file, "/var/log/xray/xray.log");
    assert_true(c->local_mode);
    assert_string_equal(c->resource_arn,
                        "arn:aws:ec2:eu-west-1:123456789012:instance/i-0123456789abcdef0");
    assert_string_equal(c->role_arn, "arn:aws:iam::123456789012:role/xray-writer");
    assert_true(c->no_verify_ssl);
    assert_string_equal(c->proxy_address, "http://proxy.example:3128");
    assert_int_equal(c->version, 1);
    assert_string_equal(c->upstream, "aws");
    assert_string_equal(c->api_address, "127.0.0.1:2101");
    assert_string_equal(c->metrics_address, "0.0.0.0:9464");
    assert_int_equal(c->shutdown_timeout_ms, 7000);
    assert_int_equal(c->request_timeout_ms, 3000);
    assert_int_equal(c->store_mb, 128);
    assert_int_equal(r.warn_len, 0);
    run_free(&r);
}

enum kind { K_STR, K_INT };
static const struct flag_case {
    char short_flag;
    const char *flag;
    const char *value;
    size_t offset;
    enum kind kind;
} flag_cases[] = {
    {'a', "resource-arn", "arn:aws:ec2:x", offsetof(struct config, resource_arn), K_STR},
    {'m', "buffer-memory", "24", offsetof(struct config, buffer_mb), K_INT},
    {'n', "region", "us-east-2", offsetof(struct config, region), K_STR},
    {'b', "bind", "0.0.0.0:2001", offsetof(struct config, udp_address), K_STR},
    {'t', "bind-tcp", "0.0.0.0:2002", offsetof(struct config, tcp_address), K_STR},
    {'r', "role-arn", "arn:aws:iam::1:role/r", offsetof(struct config, role_arn), K_STR},
    {'c', "config", DATA "minimal.yaml", offsetof(struct config, config_file), K_STR},
    {'f', "log-file", "/var/log/xrayd.log", offsetof(struct config, log_file), K_STR},
    {'l', "log-level", "debug", offsetof(struct config, log_level), K_STR},
    {'p', "proxy-address", "http://proxy:3128", offsetof(struct config, proxy_address), K_STR},
    {0, "upstream", "local", offsetof(struct config, upstream), K_STR},
    {0, "api-address", "127.0.0.1:2101", offsetof(struct config, api_address), K_STR},
    {0, "metrics-address", "0.0.0.0:9464", offsetof(struct config, metrics_address), K_STR},
    {0, "shutdown-timeout", "7000", offsetof(struct config, shutdown_timeout_ms), K_INT},
    {0, "request-timeout", "3000", offsetof(struct config, request_timeout_ms), K_INT},
    {0, "store-memory", "128", offsetof(struct config, store_mb), K_INT},
};

static void check_flag(const struct flag_case *fc, const char *a1, const char *a2)
{
    struct run r = {0};
    if (load(&r, "", a1, a2, NULL) != 0)
        fail_msg("%s %s: rc %d: %s", a1, a2 ? a2 : "", r.rc, r.err);
    const char *base = (const char *)&r.cfg;
    if (fc->kind == K_STR && strcmp(*(char *const *)(base + fc->offset), fc->value) != 0)
        fail_msg("%s %s: got %s", a1, a2 ? a2 : "", *(char *const *)(base + fc->offset));
    if (fc->kind == K_INT && *(const int *)(base + fc->offset) != atoi(fc->value))
        fail_msg("%s %s: got %d", a1, a2 ? a2 : "", *(const int *)(base + fc->offset));
    run_free(&r);
}

/* -x v, --x v, -x=v, --x=v, for the short name and the long one. */
static void test_config_load_flag_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(flag_cases) / sizeof(flag_cases[0]); i++) {
        const struct flag_case *fc = &flag_cases[i];
        char names[2][32], a[4][320];
        int n = 0;
        if (fc->short_flag)
            snprintf(names[n++], sizeof(names[0]), "%c", fc->short_flag);
        snprintf(names[n++], sizeof(names[0]), "%s", fc->flag);
        for (int k = 0; k < n; k++) {
            snprintf(a[0], sizeof(a[0]), "-%s", names[k]);
            snprintf(a[1], sizeof(a[1]), "--%s", names[k]);
            snprintf(a[2], sizeof(a[2]), "-%s=%s", names[k], fc->value);
            snprintf(a[3], sizeof(a[3]), "--%s=%s", names[k], fc->value);
            check_flag(fc, a[0], fc->value);
            check_flag(fc, a[1], fc->value);
            check_flag(fc, a[2], NULL);
            check_flag(fc, a[3], NULL);
        }
    }
}

static void test_config_load_bool_flags(void **state)
{
    (void)state;
    static const struct {
        const char *arg;
        bool local_mode;
    } cases[] = {
        {"-o", true},           {"--o", true},        {"-local-mode", true},
        {"--local-mode", true}, {"-o=true", true},    {"--local-mode=true", true},
        {"-o=false", false},    {"--o=false", false}, {"-local-mode=false", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r = {0};
        assert_int_equal(load(&r, "", cases[i].arg, NULL), 0);
        if (r.cfg.local_mode != cases[i].local_mode)
            fail_msg("%s: local_mode %d", cases[i].arg, r.cfg.local_mode);
        run_free(&r);
    }
    struct run r = {0};
    assert_int_equal(load(&r, "", "-o=maybe", NULL), 2);
    assert_non_null(strstr(r.err, "-o"));
    run_free(&r);
}

static void test_config_load_version_and_help(void **state)
{
    (void)state;
    const char *forms[] = {"-v", "--v", "-version", "--version"};
    for (size_t i = 0; i < 4; i++) {
        struct run r = {0};
        /* No file is read for -v: a broken -c file doesn't stop it. */
        assert_int_equal(load(&r, "", forms[i], "-c", DATA "no_version.yaml", NULL), 0);
        assert_true(r.cfg.show_version);
        assert_false(r.cfg.show_help);
        run_free(&r);
    }
    const char *hforms[] = {"-h", "--h", "-help", "--help"};
    for (size_t i = 0; i < 4; i++) {
        struct run r = {0};
        assert_int_equal(load(&r, "", "-c", DATA "no_version.yaml", hforms[i], "--bogus", NULL), 0);
        assert_true(r.cfg.show_help);
        run_free(&r);
    }
    struct run r = {0};
    assert_int_equal(load(&r, "", "--bogus", "-h", NULL), 2);
    run_free(&r);
}

static void test_config_load_health_check(void **state)
{
    (void)state;
    struct run r = {0};
    assert_int_equal(load(&r, "", "--health-check", NULL), 0);
    assert_true(r.cfg.health_check);
    assert_string_equal(r.cfg.health_check_addr, "");
    run_free(&r);

    assert_int_equal(load(&r, "", "--health-check", "127.0.0.1:2100", NULL), 0);
    assert_true(r.cfg.health_check);
    assert_string_equal(r.cfg.health_check_addr, "127.0.0.1:2100");
    run_free(&r);

    /* The next argument is not ADDR when it starts with '-'. */
    assert_int_equal(load(&r, "", "--health-check", "-o", NULL), 0);
    assert_true(r.cfg.health_check);
    assert_string_equal(r.cfg.health_check_addr, "");
    assert_true(r.cfg.local_mode);
    run_free(&r);

    assert_int_equal(load(&r, "", "-health-check=[::1]:2000", NULL), 0);
    assert_string_equal(r.cfg.health_check_addr, "[::1]:2000");
    run_free(&r);
}

static void test_config_load_usage_errors(void **state)
{
    (void)state;
    static const struct {
        const char *a1, *a2, *named;
    } cases[] = {
        {"--bogus", NULL, "--bogus"},
        {"-x", "1", "-x"},
        {"--bogus=1", NULL, "--bogus"},
        {"-n", NULL, "-n"},
        {"--api-address", NULL, "--api-address"},
        {"-m", "abc", "-m"},
        {"--store-memory=1.5", NULL, "--store-memory"},
        {"---n", "x", "---n"},
        {"-=x", NULL, "-=x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r = {0};
        if (load(&r, "", cases[i].a1, cases[i].a2, NULL) != 2)
            fail_msg("%s: rc %d", cases[i].a1, r.rc);
        if (strstr(r.err, cases[i].named) == NULL)
            fail_msg("%s: err \"%s\" doesn't name it", cases[i].a1, r.err);
        run_free(&r);
    }
}

static void test_config_load_bad_values(void **state)
{
    (void)state;
    static const struct {
        const char *a1, *a2;
    } cases[] = {
        {"-m", "2"},
        {"-m", "-1"},
        {"--upstream", "cloud"},
        {"-b", "nonsense"},
        {"-t", "[::1]"},
        {"-b", "host:99999"},
        {"--shutdown-timeout", "-5"},
        {"--api-address", "1.2.3.4"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r = {0};
        if (load(&r, "", cases[i].a1, cases[i].a2, NULL) != 1)
            fail_msg("%s %s: rc %d", cases[i].a1, cases[i].a2, r.rc);
        assert_non_null(strstr(r.err, cases[i].a1));
        run_free(&r);
    }
    /* A usage error after a bad value still exits 2, as with the reference. */
    struct run r = {0};
    assert_int_equal(load(&r, "", "-m", "2", "--bogus", NULL), 2);
    run_free(&r);
    /* The minimum, and 0 for the default, are fine; the upstream is case-insensitive. */
    assert_int_equal(load(&r, "", "-m", "3", "--upstream", "AWS", "-b", ":2000", NULL), 0);
    assert_int_equal(r.cfg.buffer_mb, 3);
    assert_string_equal(r.cfg.upstream, "aws");
    assert_string_equal(r.cfg.udp_address, ":2000");
    run_free(&r);
    assert_int_equal(load(&r, "", "-m", "0", "-t", "localhost:2000", NULL), 0);
    assert_int_equal(r.cfg.buffer_mb, 0);
    run_free(&r);
}

static void test_config_load_flag_parsing(void **state)
{
    (void)state;
    struct run r = {0};
    /* The last of a repeated flag wins; a value may start with '-'. */
    assert_int_equal(load(&r, "", "-n", "a", "--region", "b", "-r", "-o", NULL), 0);
    assert_string_equal(r.cfg.region, "b");
    assert_string_equal(r.cfg.role_arn, "-o");
    assert_false(r.cfg.local_mode);
    run_free(&r);
    /* The first argument that is not a flag ends the flags, with a warning. */
    assert_int_equal(load(&r, "", "-n", "a", "extra", "-n", "b", NULL), 0);
    assert_string_equal(r.cfg.region, "a");
    assert_non_null(strstr(r.warn, "\"extra\""));
    run_free(&r);
    assert_int_equal(load(&r, "", "-n", "a", "--", "-n", "b", NULL), 0);
    assert_string_equal(r.cfg.region, "a");
    assert_non_null(strstr(r.warn, "\"-n\""));
    run_free(&r);
}

static void test_config_load_log_level(void **state)
{
    (void)state;
    const char *f = write_file("debug.yaml", "Version: 2\nLogging:\n  LogLevel: debug\n");
    struct run r = {0};
    /* An unknown -l keeps the config file's level, with a warning. */
    assert_int_equal(load(&r, "", "-c", f, "-l", "loud", NULL), 0);
    assert_string_equal(r.cfg.log_level, "debug");
    assert_non_null(strstr(r.warn, "loud"));
    run_free(&r);
    assert_int_equal(load(&r, "", "-c", f, "-l", "warn", NULL), 0);
    assert_string_equal(r.cfg.log_level, "warn");
    run_free(&r);
    /* An unknown LogLevel in a file keeps the level before it, with a warning. */
    f = write_file("loud.yaml", "Version: 2\nLogging:\n  LogLevel: loud\n");
    assert_int_equal(load(&r, "", "-c", f, NULL), 0);
    assert_string_equal(r.cfg.log_level, "prod");
    assert_non_null(strstr(r.warn, "loud.yaml:3:"));
    run_free(&r);
}

/* defaults < auto-discovered < -c < flags, each layer winning over the one before. */
static void test_config_load_precedence(void **state)
{
    (void)state;
    struct run r = {0};
    assert_int_equal(
        load(&r, DATA "auto.yaml", "-c", DATA "cfile.yaml", "-r", "flag-role", "-p", "", NULL), 0);
    assert_string_equal(r.cfg.region, "auto-region");         /* auto */
    assert_int_equal(r.cfg.concurrency, 4);                   /* auto */
    assert_string_equal(r.cfg.resource_arn, "cfile-arn");     /* -c over auto */
    assert_string_equal(r.cfg.role_arn, "flag-role");         /* flag over -c and auto */
    assert_string_equal(r.cfg.proxy_address, "");             /* flag over auto */
    assert_string_equal(r.cfg.udp_address, "127.0.0.1:2000"); /* default */
    assert_string_equal(r.cfg.auto_config_file, DATA "auto.yaml");
    assert_string_equal(r.cfg.config_file, DATA "cfile.yaml");
    run_free(&r);
}

static void test_config_load_auto_discovery(void **state)
{
    (void)state;
    struct run r = {0};
    /* Only the first file that exists is read. */
    assert_int_equal(load(&r, "missing.yaml:" DATA "auto.yaml:" DATA "full.yaml", NULL), 0);
    assert_string_equal(r.cfg.auto_config_file, DATA "auto.yaml");
    assert_string_equal(r.cfg.region, "auto-region");
    assert_int_equal(r.cfg.buffer_mb, 0);
    run_free(&r);
    /* config_load() takes the list from the environment. */
    setenv(CONFIG_SEARCH_ENV, DATA "auto.yaml", 1);
    char *argv[] = {"xrayd", NULL};
    assert_int_equal(config_load(&r.cfg, 1, argv, NULL, r.err), 0);
    assert_string_equal(r.cfg.region, "auto-region");
    config_destroy(&r.cfg);
    setenv(CONFIG_SEARCH_ENV, "", 1);
    assert_int_equal(config_load(&r.cfg, 1, argv, NULL, NULL), 0);
    assert_string_equal(r.cfg.region, "");
    config_destroy(&r.cfg);
    unsetenv(CONFIG_SEARCH_ENV);
    /* A file that is both found and given with -c is read once, strictly. */
    assert_int_equal(load(&r, DATA "obsolete.yaml", "-c", DATA "obsolete.yaml", NULL), 0);
    assert_int_equal(count(r.warn, "MemoryLimit"), 1);
    assert_string_equal(r.cfg.auto_config_file, "");
    run_free(&r);
}

static void expect_error(const char *file, const char *suffix)
{
    struct run r = {0};
    if (load(&r, "", "-c", file, NULL) != 1)
        fail_msg("%s: rc %d", file, r.rc);
    if (strncmp(r.err, file, strlen(file)) != 0 || strstr(r.err, suffix) == NULL)
        fail_msg("%s: err \"%s\", expected \"%s\"", file, r.err, suffix);
    /* Nothing of a refused file is applied. */
    assert_string_equal(r.cfg.region, "");
    run_free(&r);
}

static void test_config_load_file_errors(void **state)
{
    (void)state;
    expect_error(DATA "unknown_key.yaml", ":7: unknown key Socket.Foo");
    expect_error(DATA "no_version.yaml", ": Version is missing");
    expect_error(DATA "syntax_error.yaml", ":5: YAML syntax error");
    expect_error(DATA "type_error.yaml", ":3: Concurrency: expected an integer");
    expect_error(DATA "missing.yaml", "No such file");
    expect_error(write_file("v3.yaml", "Version: 3\n"), ":1: Version: 3 is out of range");
    expect_error(write_file("v0.yaml", "Version: 0\nRegion: x\n"), ":1: Version: must be set");
    expect_error(write_file("empty.yaml", ""), ": Version is missing");
    expect_error(write_file("list.yaml", "- Version: 2\n"), ":1: the document must be a mapping");
    expect_error(write_file("bool.yaml", "Version: 2\nRegion: x\nLocalMode: maybe\n"),
                 ":3: LocalMode: expected true or false");
    expect_error(write_file("sect.yaml", "Version: 2\nSocket: 5\n"),
                 ":2: Socket: expected a mapping");
    expect_error(write_file("seq.yaml", "Version: 2\nRegion: [a, b]\n"),
                 ":2: Region: expected a value, not a list");
    expect_error(write_file("alias.yaml", "Version: 2\nEndpoint: &e http://x\nRegion: *e\n"),
                 ":3: Region: expected a value, not an alias");
    expect_error(write_file("range.yaml", "Version: 2\nRegion: x\nConcurrency: -1\n"),
                 ":3: Concurrency: -1 is out of range");
    expect_error(write_file("top.yaml", "Version: 2\nRegion: x\nUDPAddress: 1\n"),
                 ":3: unknown key UDPAddress");
    expect_error(write_file("key.yaml", "Version: 2\n? [a]\n: 1\n"), ":2: a key must be");
    expect_error(write_file("dot.yaml", "Version: 2\nRegion: x\nSocket.UDPAddress: :1\n"),
                 ":3: unknown key Socket.UDPAddress");
    char deep[160] = "Version: 2\nFoo: ";
    size_t n = strlen(deep);
    for (int i = 0; i < 70; i++)
        deep[n + (size_t)i] = '[', deep[n + 70 + (size_t)i] = ']';
    strcpy(deep + n + 140, "\n");
    expect_error(write_file("deep.yaml", deep), ":2: nested too deep");
}

static void test_config_load_file_size(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/big.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("Version: 2\nRegion: big\n", f);
    long n = ftell(f);
    for (; n + 64 <= 1024 * 1024; n += 64)
        fprintf(f, "#%62s\n", "");
    fprintf(f, "#%*s\n", (int)(1024 * 1024 - n - 2), ""); /* exactly 1 MB: accepted */
    fclose(f);
    struct run r = {0};
    assert_int_equal(load(&r, "", "-c", path, NULL), 0);
    assert_string_equal(r.cfg.region, "big");
    run_free(&r);
    f = fopen(path, "a");
    fputc('\n', f); /* one byte more: refused */
    fclose(f);
    assert_int_equal(load(&r, "", "-c", path, NULL), 1);
    assert_non_null(strstr(r.err, "larger than 1 MB"));
    run_free(&r);
    assert_int_equal(load(&r, path, NULL), 0);
    assert_string_equal(r.cfg.region, "");
    assert_non_null(strstr(r.warn, "larger than 1 MB"));
    run_free(&r);
}

/* In an auto-discovered file problems are warnings, and xrayd starts anyway. */
static void test_config_load_auto_warnings(void **state)
{
    (void)state;
    struct run r = {0};
    assert_int_equal(load(&r, DATA "unknown_key.yaml", NULL), 0);
    assert_non_null(strstr(r.warn, "unknown_key.yaml:7: unknown key Socket.Foo (ignored)"));
    assert_string_equal(r.cfg.region, "us-east-2"); /* the rest of the file is used */
    assert_int_equal(r.cfg.concurrency, 4);
    run_free(&r);

    assert_int_equal(load(&r, DATA "type_error.yaml", NULL), 0);
    assert_non_null(strstr(r.warn, "type_error.yaml:3: Concurrency: expected an integer"));
    assert_string_equal(r.cfg.region, "us-east-2");
    assert_int_equal(r.cfg.concurrency, 8);
    run_free(&r);

    assert_int_equal(load(&r, DATA "no_version.yaml", NULL), 0);
    assert_non_null(strstr(r.warn, "Version is missing"));
    assert_string_equal(r.cfg.region, "us-east-2");
    run_free(&r);

    /* A syntax error: the whole file is ignored. */
    assert_int_equal(load(&r, DATA "syntax_error.yaml", NULL), 0);
    assert_non_null(strstr(r.warn, "syntax_error.yaml:5: YAML syntax error"));
    assert_non_null(strstr(r.warn, "the file is ignored"));
    assert_string_equal(r.cfg.region, "");
    assert_string_equal(r.err, "");
    run_free(&r);

    /* An auto-discovered file that cannot be read. */
    assert_int_equal(load(&r, tmpdir, NULL), 0);
    assert_non_null(strstr(r.warn, "the file is ignored"));
    run_free(&r);
}

static void test_config_load_obsolete_keys(void **state)
{
    (void)state;
    static const char *const keys[] = {
        "MemoryLimit",       "LogRotation",         "Socket.BufferSizeKB",
        "Logging.LogFormat", "Processor.BatchSize", "Processor.IdleTimeoutMillisecond",
        "Profile.CPU",
    };
    for (int strict = 0; strict < 2; strict++) {
        struct run r = {0};
        if (strict)
            assert_int_equal(load(&r, "", "-c", DATA "obsolete.yaml", NULL), 0);
        else
            assert_int_equal(load(&r, DATA "obsolete.yaml", NULL), 0);
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            char want[96];
            snprintf(want, sizeof(want), ": %s is obsolete", keys[i]);
            if (strstr(r.warn, want) == NULL)
                fail_msg("no \"%s\" in:\n%s", want, r.warn);
        }
        assert_string_equal(r.cfg.region, "us-east-2");
        run_free(&r);
    }
}

static void test_config_load_empty_values(void **state)
{
    (void)state;
    struct run r = {0};
    /* Empty and zero mean the default, not the auto-discovered file's value. */
    assert_int_equal(load(&r, DATA "full.yaml", "-c", DATA "empty_values.yaml", NULL), 0);
    assert_int_equal(r.cfg.buffer_mb, 0);
    assert_int_equal(r.cfg.concurrency, 8);
    assert_string_equal(r.cfg.region, "");
    assert_string_equal(r.cfg.endpoint, "");
    assert_string_equal(r.cfg.udp_address, "127.0.0.1:2000");
    assert_string_equal(r.cfg.tcp_address, "127.0.0.1:2000");
    assert_string_equal(r.cfg.log_level, "prod");
    assert_true(r.cfg.log_rotation);
    assert_false(r.cfg.local_mode);
    assert_string_equal(r.cfg.upstream, "");
    assert_int_equal(r.cfg.shutdown_timeout_ms, 5000);
    assert_int_equal(r.cfg.store_mb, 64);
    assert_int_equal(r.cfg.request_timeout_ms, 3000); /* not in the file: full.yaml's */
    run_free(&r);
}

static void test_config_load_yaml_values(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool local_mode;
    } bools[] = {{"yes", true}, {"on", true},   {"True", true},  {"\"true\"", true},
                 {"no", false}, {"off", false}, {"FALSE", false}};
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        char text[64];
        snprintf(text, sizeof(text), "Version: 2\nLocalMode: %s\n", bools[i].text);
        struct run r = {0};
        assert_int_equal(load(&r, "", "-c", write_file("b.yaml", text), NULL), 0);
        if (r.cfg.local_mode != bools[i].local_mode)
            fail_msg("LocalMode: %s", bools[i].text);
        run_free(&r);
    }
    /* A repeated key: the last wins. Later documents are not read. */
    struct run r = {0};
    const char *f = write_file("dup.yaml", "Version: 2\nRegion: a\nRegion: b\n---\nFoo: 1\n");
    assert_int_equal(load(&r, "", "-c", f, NULL), 0);
    assert_string_equal(r.cfg.region, "b");
    run_free(&r);
    f = write_file("flow.yaml", "{Version: 2, Socket: {UDPAddress: '[::]:2000'}}");
    assert_int_equal(load(&r, "", "-c", f, NULL), 0);
    assert_string_equal(r.cfg.udp_address, "[::]:2000");
    run_free(&r);
}

static void test_config_api_address_derivation(void **state)
{
    (void)state;
    static const struct {
        const char *tcp, *api, *metrics, *want_api, *want_metrics;
    } cases[] = {
        {"127.0.0.1:2000", "", "", "127.0.0.1:2000", "127.0.0.1:2000"},
        {"127.0.0.5:3000", "", "", "127.0.0.5:3000", "127.0.0.5:3000"},
        {"localhost:2000", "", "", "localhost:2000", "localhost:2000"},
        {"[::1]:2000", "", "", "[::1]:2000", "[::1]:2000"},
        {"[::ffff:127.0.0.1]:2000", "", "", "[::ffff:127.0.0.1]:2000", "[::ffff:127.0.0.1]:2000"},
        {"0.0.0.0:2000", "", "", "127.0.0.1:2100", "127.0.0.1:2100"},
        {"[::]:2000", "", "", "127.0.0.1:2100", "127.0.0.1:2100"},
        {":2000", "", "", "127.0.0.1:2100", "127.0.0.1:2100"},
        {"10.0.0.1:2000", "", "", "127.0.0.1:2100", "127.0.0.1:2100"},
        {"0.0.0.0:2000", "", "0.0.0.0:9464", "127.0.0.1:2100", "0.0.0.0:9464"},
        {"0.0.0.0:2000", "0.0.0.0:2100", "", "0.0.0.0:2100", "0.0.0.0:2100"},
        {"127.0.0.1:2000", "127.0.0.1:8080", "127.0.0.1:9090", "127.0.0.1:8080", "127.0.0.1:9090"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r = {0};
        assert_int_equal(load(&r, "", "-t", cases[i].tcp, "--api-address", cases[i].api,
                              "--metrics-address", cases[i].metrics, NULL),
                         0);
        assert_string_equal(config_api_address(&r.cfg), cases[i].want_api);
        assert_string_equal(config_metrics_address(&r.cfg), cases[i].want_metrics);
        run_free(&r);
    }
}

static void test_config_destroy_twice(void **state)
{
    (void)state;
    struct run r = {0};
    assert_int_equal(load(&r, "", "--bogus", NULL), 2);
    config_destroy(&r.cfg);
    run_free(&r);
    assert_int_equal(load(&r, "", "-c", DATA "full.yaml", NULL), 0);
    config_destroy(&r.cfg);
    run_free(&r);
}

static size_t generate(void (*fn)(FILE *), char **text)
{
    size_t len;
    FILE *f = open_memstream(text, &len);
    assert_non_null(f);
    fn(f);
    fclose(f);
    return len;
}

static void test_config_usage_every_flag(void **state)
{
    (void)state;
    char *text;
    generate(config_usage, &text);
    const char *flags[] = {"-a, --resource-arn",
                           "-o, --local-mode",
                           "-m, --buffer-memory",
                           "-n, --region",
                           "-b, --bind",
                           "-t, --bind-tcp",
                           "-r, --role-arn",
                           "-c, --config",
                           "-f, --log-file",
                           "-l, --log-level",
                           "-p, --proxy-address",
                           "-v, --version",
                           "-h, --help",
                           "--upstream",
                           "--api-address",
                           "--metrics-address",
                           "--health-check [ADDR]",
                           "--shutdown-timeout",
                           "--request-timeout",
                           "--store-memory",
                           "Concurrency",
                           "Endpoint",
                           "NoVerifySSL",
                           "Logging.LogRotation"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strstr(text, flags[i]) == NULL)
            fail_msg("--help lacks %s", flags[i]);
    for (const char *l = text; *l != '\0'; l += strcspn(l, "\n") + 1)
        assert_true(strcspn(l, "\n") <= 100);
    free(text);
}

/* docs/configuration.md is what config_markdown() writes: the docs cannot drift. */
/* The Metrics section: cfg.yaml keys, flags beating them, and the checks beyond a
 * value's type (bucket lists, the storage resolution). */
static void test_config_load_metrics(void **state)
{
    (void)state;
    struct run r = {0};
    const char *f = write_file("metrics.yaml",
                               "Version: 2\nMetrics:\n  Buckets: 0.1, 1,10\n  SeriesBudget: 50\n"
                               "  RemoteWriteURL: http://127.0.0.1:9/api/v1/write\n"
                               "  RemoteWriteIntervalSeconds: 5\n  CloudWatchOutput: emf\n"
                               "  CloudWatchStorageResolution: 1\n");
    assert_int_equal(load(&r, "", "-c", f, "--metrics-series-budget", "60", NULL), 0);
    assert_string_equal(r.cfg.metrics_buckets, "0.1, 1,10");
    assert_int_equal(r.cfg.metrics_series_budget, 60);
    assert_string_equal(r.cfg.remote_write_url, "http://127.0.0.1:9/api/v1/write");
    assert_int_equal(r.cfg.remote_write_interval_s, 5);
    assert_int_equal(r.cfg.remote_write_queue_kb, 8192);
    assert_string_equal(r.cfg.cloudwatch_output, "emf");
    assert_int_equal(r.cfg.cloudwatch_storage_resolution, 1);
    assert_int_equal(r.cfg.cloudwatch_interval_s, 60);
    assert_string_equal(r.cfg.cloudwatch_namespace, "XRayDaemon");
    run_free(&r);

    double b[CONFIG_BUCKETS_MAX];
    size_t n;
    char err[XRAY_ERR_LEN];
    assert_int_equal(config_buckets("0.1, 1,10", b, CONFIG_BUCKETS_MAX, &n, err), 0);
    assert_int_equal(n, 3);
    assert_true(b[0] == 0.1 && b[1] == 1 && b[2] == 10);
    const char *bad[] = {"", "1,1", "2,1", "0", "-1", "1,,2", "1;2", "x", "1,2,"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = config_buckets(bad[i], b, CONFIG_BUCKETS_MAX, &n, err);
        if (strcmp(bad[i], "1,2,") == 0) { /* a trailing comma is forgiven */
            assert_int_equal(rc, 0);
            continue;
        }
        assert_int_equal(rc, XRAY_ECONFIG);
        assert_non_null(strstr(err, "--metrics-buckets"));
    }
    assert_int_equal(config_buckets("1,2,3", b, 2, &n, err), XRAY_ECONFIG);

    assert_int_equal(load(&r, "", "--metrics-buckets", "5,1", NULL), 1);
    assert_non_null(strstr(r.err, "bounds must increase"));
    run_free(&r);
    assert_int_equal(load(&r, "", "--cloudwatch-storage-resolution", "30", NULL), 1);
    assert_non_null(strstr(r.err, "1 or 60"));
    run_free(&r);
    assert_int_equal(load(&r, "", "--cloudwatch-output", "xml", NULL), 1);
    run_free(&r);
}

static void test_config_markdown_matches_docs(void **state)
{
    (void)state;
    char *want;
    size_t len = generate(config_markdown, &want);
    if (getenv("XRAYD_UPDATE_DOCS") != NULL) {
        FILE *out = fopen(DOCS, "w");
        assert_non_null(out);
        fwrite(want, 1, len, out);
        fclose(out);
    }
    FILE *f = fopen(DOCS, "r");
    assert_non_null(f);
    char *have = calloc(1, len + 2);
    size_t got = fread(have, 1, len + 1, f);
    fclose(f);
    if (got != len || memcmp(have, want, len) != 0)
        fail_msg("docs/configuration.md differs from config_markdown(); rerun this test "
                 "with XRAYD_UPDATE_DOCS=1 to rewrite it");
    for (size_t i = 0; i < sizeof(flag_cases) / sizeof(flag_cases[0]); i++) {
        char name[48];
        snprintf(name, sizeof(name), "`--%s", flag_cases[i].flag);
        assert_non_null(strstr(want, name));
    }
    /* The example cfg.yaml in the docs loads, and gives the defaults. */
    const char *start = strstr(want, "```yaml\n");
    assert_non_null(start);
    start += 8;
    const char *end = strstr(start, "```");
    assert_non_null(end);
    char *example = strndup(start, (size_t)(end - start));
    struct run r = {0};
    assert_int_equal(load(&r, "", "-c", write_file("example.yaml", example), NULL), 0);
    assert_defaults(&r.cfg);
    assert_int_equal(r.warn_len, 0);
    run_free(&r);
    free(example);
    free(have);
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_load_defaults),
        cmocka_unit_test(test_config_load_every_key),
        cmocka_unit_test(test_config_load_flag_forms),
        cmocka_unit_test(test_config_load_bool_flags),
        cmocka_unit_test(test_config_load_version_and_help),
        cmocka_unit_test(test_config_load_health_check),
        cmocka_unit_test(test_config_load_usage_errors),
        cmocka_unit_test(test_config_load_bad_values),
        cmocka_unit_test(test_config_load_flag_parsing),
        cmocka_unit_test(test_config_load_log_level),
        cmocka_unit_test(test_config_load_precedence),
        cmocka_unit_test(test_config_load_auto_discovery),
        cmocka_unit_test(test_config_load_file_errors),
        cmocka_unit_test(test_config_load_file_size),
        cmocka_unit_test(test_config_load_auto_warnings),
        cmocka_unit_test(test_config_load_obsolete_keys),
        cmocka_unit_test(test_config_load_empty_values),
        cmocka_unit_test(test_config_load_yaml_values),
        cmocka_unit_test(test_config_api_address_derivation),
        cmocka_unit_test(test_config_destroy_twice),
        cmocka_unit_test(test_config_usage_every_flag),
        cmocka_unit_test(test_config_load_metrics),
        cmocka_unit_test(test_config_markdown_matches_docs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
