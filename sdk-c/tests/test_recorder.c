/* SPDX-License-Identifier: Apache-2.0 */
/* recorder.c: AWS_XRAY_DAEMON_ADDRESS in both forms, the other AWS_XRAY_* variables
 * overriding the code's configuration, invalid values refused with a message, the
 * defaults, and error texts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const env_names[] = {"AWS_XRAY_DAEMON_ADDRESS",  "AWS_XRAY_TRACING_NAME",
                                        "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_SDK_ENABLED",
                                        "AWS_XRAY_LOG_LEVEL",       "AWS_XRAY_DEBUG_MODE"};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        unsetenv(env_names[i]);
    return 0;
}

static void test_recorder_parse_address(void **state)
{
    (void)state;
    static const struct {
        const char *in, *udp_host, *tcp_host;
        uint16_t udp_port, tcp_port;
    } good[] = {
        {"127.0.0.1:2000", "127.0.0.1", "127.0.0.1", 2000, 2000},
        {"tcp:127.0.0.1:2001 udp:127.0.0.2:2002", "127.0.0.2", "127.0.0.1", 2002, 2001},
        {"udp:10.0.0.1:3000 tcp:10.0.0.2:4000", "10.0.0.1", "10.0.0.2", 3000, 4000},
        {"[::1]:2000", "::1", "::1", 2000, 2000},
        {"xray-daemon:2000", "xray-daemon", "xray-daemon", 2000, 2000},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct xray_recorder rec;
        memset(&rec, 0, sizeof(rec));
        char err[XRAY_SDK_ERR_LEN] = "";
        if (xray__recorder_parse_address(&rec, good[i].in, err) != 0)
            fail_msg("%s: %s", good[i].in, err);
        assert_string_equal(rec.udp_host, good[i].udp_host);
        assert_string_equal(rec.tcp_host, good[i].tcp_host);
        assert_int_equal(rec.udp_port, good[i].udp_port);
        assert_int_equal(rec.tcp_port, good[i].tcp_port);
    }
    static const char *const bad[] = {
        "localhost",
        "1.2.3.4:0",
        "1.2.3.4:65536",
        "1.2.3.4:",
        ":2000",
        "1.2.3.4:20x0",
        "::1:2000",
        "tcp:1.2.3.4:1",
        "udp:a:1 udp:b:2",
        "tcp:a:1 udp:b:2 x",
        "tcp:a:1  udp:b:2",
        "http:a:1 udp:b:2",
        "[::1]2000",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct xray_recorder rec;
        memset(&rec, 0, sizeof(rec));
        char err[XRAY_SDK_ERR_LEN] = "";
        if (xray__recorder_parse_address(&rec, bad[i], err) != XRAY_SDK_ECONFIG)
            fail_msg("accepted: \"%s\"", bad[i]);
        assert_non_null(strstr(err, "invalid daemon address"));
    }
}

static void test_recorder_defaults(void **state)
{
    (void)state;
    struct xray_config cfg;
    xray_config_init(&cfg);
    assert_true(cfg.enabled);
    assert_int_equal(cfg.log_level, XRAY_LOG_WARN);
    assert_int_equal(cfg.context_missing, XRAY_CONTEXT_LOG_ERROR);
    assert_int_equal(cfg.sampler, XRAY_SAMPLER_CENTRALIZED);
    assert_int_equal(cfg.stream_threshold, 100);
    cfg.sampler = XRAY_SAMPLER_ALL;
    struct xray_recorder *rec = xray_recorder_create(&cfg, NULL);
    assert_non_null(rec);
    assert_string_equal(rec->udp_host, "127.0.0.1");
    assert_int_equal(rec->udp_port, 2000);
    assert_int_equal(rec->tcp_port, 2000);
    assert_string_equal(xray_recorder_service_name(rec), "test_sdk_recorder");
    assert_int_equal(rec->stream_threshold, 100);
    xray_recorder_destroy(rec);
}

static void test_recorder_environment_overrides(void **state)
{
    (void)state;
    setenv("AWS_XRAY_DAEMON_ADDRESS", "tcp:127.0.0.1:2100 udp:127.0.0.1:2101", 1);
    setenv("AWS_XRAY_TRACING_NAME", "from-env", 1);
    setenv("AWS_XRAY_CONTEXT_MISSING", "ignore_error", 1);
    setenv("AWS_XRAY_LOG_LEVEL", "error", 1);
    struct xray_config cfg;
    xray_config_init(&cfg);
    cfg.service_name = "from-code";
    cfg.daemon_address = "127.0.0.1:9";
    cfg.sampler = XRAY_SAMPLER_ALL;
    struct xray_recorder *rec = xray_recorder_create(&cfg, NULL);
    assert_non_null(rec);
    assert_string_equal(xray_recorder_service_name(rec), "from-env");
    assert_int_equal(rec->udp_port, 2101);
    assert_int_equal(rec->tcp_port, 2100);
    assert_false(xray__log_enabled(XRAY_LOG_WARN));
    assert_true(xray__log_enabled(XRAY_LOG_ERROR));
    xray_recorder_destroy(rec);

    /* XRAY_CONFIG_IGNORE_ENV keeps the code's values. */
    cfg.flags = XRAY_CONFIG_IGNORE_ENV;
    rec = xray_recorder_create(&cfg, NULL);
    assert_string_equal(xray_recorder_service_name(rec), "from-code");
    assert_int_equal(rec->udp_port, 9);
    xray_recorder_destroy(rec);

    setenv("AWS_XRAY_DEBUG_MODE", "true", 1);
    cfg.flags = 0;
    rec = xray_recorder_create(&cfg, NULL);
    assert_true(xray__log_enabled(XRAY_LOG_DEBUG));
    xray_recorder_destroy(rec);
    unsetenv("AWS_XRAY_DEBUG_MODE");

    setenv("AWS_XRAY_SDK_ENABLED", "false", 1);
    rec = xray_recorder_create(&cfg, NULL);
    assert_non_null(rec);
    assert_false(xray_recorder_enabled(rec));
    assert_null(xray_segment_begin(rec, NULL));
    xray_recorder_destroy(rec);
    clear_env(NULL);
}

static void test_recorder_environment_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value, *mention;
    } bad[] = {
        {"AWS_XRAY_DAEMON_ADDRESS", "nope", "invalid daemon address"},
        {"AWS_XRAY_CONTEXT_MISSING", "PANIC", "AWS_XRAY_CONTEXT_MISSING"},
        {"AWS_XRAY_SDK_ENABLED", "maybe", "AWS_XRAY_SDK_ENABLED"},
        {"AWS_XRAY_LOG_LEVEL", "loud", "AWS_XRAY_LOG_LEVEL"},
        {"AWS_XRAY_DEBUG_MODE", "yes", "AWS_XRAY_DEBUG_MODE"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        clear_env(NULL);
        setenv(bad[i].name, bad[i].value, 1);
        char err[XRAY_SDK_ERR_LEN] = "";
        assert_null(xray_recorder_create(NULL, err));
        if (strstr(err, bad[i].mention) == NULL)
            fail_msg("%s=%s: \"%s\"", bad[i].name, bad[i].value, err);
    }
    clear_env(NULL);
}

static void test_sdk_strerror(void **state)
{
    (void)state;
    assert_string_equal(xray_sdk_strerror(0), "success");
    assert_string_equal(xray_sdk_strerror(XRAY_SDK_EHEADER), "malformed trace header");
    assert_string_equal(xray_sdk_strerror(-ENOMEM), strerror(ENOMEM));
    assert_string_equal(xray_sdk_strerror(XRAY_ESAMP_JSON), "malformed JSON");
    assert_string_equal(xray_sdk_strerror(-99999), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_recorder_parse_address, clear_env),
        cmocka_unit_test_setup(test_recorder_defaults, clear_env),
        cmocka_unit_test_setup(test_recorder_environment_overrides, clear_env),
        cmocka_unit_test_setup(test_recorder_environment_invalid, clear_env),
        cmocka_unit_test_setup(test_sdk_strerror, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
