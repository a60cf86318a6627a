/* SPDX-License-Identifier: Apache-2.0 */
/* Endpoint resolution (configured > AWS_ENDPOINT_URL_<SERVICE> > AWS_ENDPOINT_URL >
 * regional) and URL splitting for the Host header: IPv6 literals, default ports,
 * URLs that must be refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/endpoint.h"

#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    (void)state;
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_XRAY");
    unsetenv("AWS_ENDPOINT_URL_STS");
    return 0;
}

static void expect(const char *service, const char *suffix, const char *configured,
                   const char *region, const char *want)
{
    char out[ENDPOINT_URL_MAX];
    char err[XRAY_ERR_LEN] = "";
    assert_int_equal(endpoint_resolve(service, suffix, configured, region, out, sizeof(out), err),
                     0);
    assert_string_equal(out, want);
}

static void test_endpoint_resolve_order(void **state)
{
    (void)state;
    expect("xray", "XRAY", NULL, "us-east-1", "https://xray.us-east-1.amazonaws.com");
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/", 1);
    expect("xray", "XRAY", "", "us-east-1", "http://127.0.0.1:4566");
    setenv("AWS_ENDPOINT_URL_XRAY", "http://localhost:5000", 1);
    expect("xray", "XRAY", NULL, "us-east-1", "http://localhost:5000");
    /* Another service's override does not apply. */
    expect("sts", "STS", NULL, "us-east-1", "http://127.0.0.1:4566");
    /* The configured Endpoint wins over both; no region needed then. */
    expect("xray", "XRAY", "https://xray.example.com:8443/base/", NULL,
           "https://xray.example.com:8443/base");
    /* No scheme: https, as the reference daemon's SDK assumes. */
    expect("xray", "XRAY", "127.0.0.1:2000", NULL, "https://127.0.0.1:2000");
}

static void test_endpoint_resolve_partitions(void **state)
{
    (void)state;
    expect("xray", "XRAY", NULL, "cn-north-1", "https://xray.cn-north-1.amazonaws.com.cn");
    expect("logs", "CLOUDWATCH_LOGS", NULL, "cn-northwest-1",
           "https://logs.cn-northwest-1.amazonaws.com.cn");
    expect("sts", "STS", NULL, "us-gov-west-1", "https://sts.us-gov-west-1.amazonaws.com");
    expect("monitoring", "CLOUDWATCH", NULL, "eu-west-3",
           "https://monitoring.eu-west-3.amazonaws.com");
    expect("aps-workspaces", "AMP", NULL, "ap-southeast-2",
           "https://aps-workspaces.ap-southeast-2.amazonaws.com");
}

static void test_endpoint_resolve_errors(void **state)
{
    (void)state;
    char out[ENDPOINT_URL_MAX];
    char err[XRAY_ERR_LEN];
    assert_int_equal(endpoint_resolve("xray", "XRAY", NULL, NULL, out, sizeof(out), err),
                     XRAY_ENOREGION);
    assert_int_equal(endpoint_resolve("xray", "XRAY", NULL, "", out, sizeof(out), err),
                     XRAY_ENOREGION);
    assert_int_equal(
        endpoint_resolve("xray", "XRAY", NULL, "us-east-1/evil", out, sizeof(out), err),
        XRAY_ECONFIG);
    assert_int_equal(endpoint_resolve("xray", "XRAY", "ftp://x", NULL, out, sizeof(out), err),
                     XRAY_ECONFIG);
    assert_non_null(strstr(err, "configured Endpoint"));
    setenv("AWS_ENDPOINT_URL_XRAY", "http://user:pw@host", 1);
    assert_int_equal(endpoint_resolve("xray", "XRAY", NULL, "us-east-1", out, sizeof(out), err),
                     XRAY_ECONFIG);
    assert_non_null(strstr(err, "AWS_ENDPOINT_URL_XRAY"));
    assert_null(strstr(err, "pw"));
    unsetenv("AWS_ENDPOINT_URL_XRAY");
    char small[16];
    assert_int_equal(endpoint_resolve("xray", "XRAY", NULL, "us-east-1", small, sizeof(small), err),
                     XRAY_ETOOBIG);
}

static void expect_host(const char *url, const char *want)
{
    char host[ENDPOINT_HOST_MAX + 8];
    assert_int_equal(endpoint_host(url, host, sizeof(host)), 0);
    assert_string_equal(host, want);
}

static void test_endpoint_host(void **state)
{
    (void)state;
    expect_host("https://xray.us-east-1.amazonaws.com", "xray.us-east-1.amazonaws.com");
    expect_host("https://xray.us-east-1.amazonaws.com:443/", "xray.us-east-1.amazonaws.com");
    expect_host("http://127.0.0.1:80/TraceSegments", "127.0.0.1");
    expect_host("http://127.0.0.1:443", "127.0.0.1:443");
    expect_host("https://127.0.0.1:80", "127.0.0.1:80");
    expect_host("http://127.0.0.1:4568", "127.0.0.1:4568");
    expect_host("HTTP://Example.COM:8080?x=1", "Example.COM:8080");
    expect_host("http://[::1]:2000/x", "[::1]:2000");
    expect_host("https://[2001:db8::1]", "[2001:db8::1]");
    expect_host("http://[fe80::1%25eth0]:80", "[fe80::1%25eth0]");

    struct endpoint_url u;
    assert_int_equal(endpoint_split("https://h:8443/a/b?c", &u), 0);
    assert_string_equal(u.scheme, "https");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 8443);
    assert_true(u.port_given);
    assert_string_equal(u.path, "/a/b?c");
    assert_int_equal(endpoint_split("http://h", &u), 0);
    assert_int_equal(u.port, 80);
    assert_false(u.port_given);
    assert_string_equal(u.path, "");

    const char *bad[] = {"",
                         "h:80",
                         "ftp://h",
                         "http://",
                         "http://:80",
                         "http://h:0",
                         "http://h:65536",
                         "http://h:1234567",
                         "http://h:x",
                         "http://u@h",
                         "http://[::1",
                         "http://[]",
                         "http://h/a b",
                         "http://h\r\n/x",
                         "http://h:80x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(endpoint_split(bad[i], &u), XRAY_EPARSE);
    char tiny[4];
    assert_int_equal(endpoint_host("http://abcdef", tiny, sizeof(tiny)), XRAY_ETOOBIG);
    char longhost[400] = "http://";
    memset(longhost + 7, 'a', 300);
    assert_int_equal(endpoint_split(longhost, &u), XRAY_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_endpoint_resolve_order, setup),
        cmocka_unit_test_setup(test_endpoint_resolve_partitions, setup),
        cmocka_unit_test_setup(test_endpoint_resolve_errors, setup),
        cmocka_unit_test_setup(test_endpoint_host, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
