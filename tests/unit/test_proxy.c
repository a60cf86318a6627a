/* SPDX-License-Identifier: Apache-2.0 */
/* http/proxy.c: proxy URL checks and redaction, request URL splitting, which setting
 * wins (-p, HTTPS_PROXY/https_proxy, HTTP_PROXY/http_proxy), and every NO_PROXY form:
 * names, domains with and without a leading dot, case, trailing dots, IPv4 and IPv6
 * addresses, CIDR edges, `*`, ports, empty and malformed entries, and the bounds; and
 * that link-local addresses always go direct. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define P "http://proxy.internal:3128"

static struct proxy *mk(const char *address, const char *https, const char *http,
                        const char *no_proxy)
{
    struct proxy_settings s = {
        .address = address, .https_proxy = https, .http_proxy = http, .no_proxy = no_proxy};
    struct proxy *p = NULL;
    char err[XRAY_ERR_LEN];
    int rc = proxy_create(&s, &p, err);
    if (rc != 0)
        fail_msg("proxy_create: %s", err);
    assert_non_null(p);
    return p;
}

/* A proxy that sends everything through P except what no_proxy lists. */
static struct proxy *mk_np(const char *no_proxy)
{
    return mk(NULL, P, P, no_proxy);
}

static bool direct(const struct proxy *p, const char *url)
{
    return proxy_for_url(p, url) == NULL;
}

static void test_proxy_url_check_valid(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "http://proxy:3128",
        "proxy:3128",
        "proxy",
        "https://proxy.example.com",
        "HTTP://PROXY.EXAMPLE.COM:1/",
        "socks5h://10.0.0.1:1080",
        "socks4://p",
        "socks4a://p:1",
        "socks5://p:65535",
        "http://user:pa%40ss@proxy:8080/",
        "http://user@proxy",
        "http://[::1]:3128",
        "http://[2001:db8::1]",
        "http://p_x.example-1.com",
        "127.0.0.1:8888",
    };
    char err[XRAY_ERR_LEN];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        err[0] = '\0';
        if (proxy_url_check(ok[i], err) != 0)
            fail_msg("%s: %s", ok[i], err);
    }
}

static void test_proxy_url_check_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "ftp://proxy:21",
        "http://",
        "http://:3128",
        "http://p:0",
        "http://p:65536",
        "http://p:99999999",
        "http://p:abc",
        "http://p:",
        "http://p/path",
        "http://p?x=1",
        "http://p#f",
        "http://p q",
        "http://p\t",
        "http://[::1",
        "http://[zz]:1",
        "http://[]:1",
        "http://[::1]x",
        "http://a:b:c",
        "://p",
        "1http://p",
        "ht tp://p",
        "http://pr\xc3\xb6xy",
        "http://p!x",
        "http://user:secret@p:99999",
    };
    char err[XRAY_ERR_LEN];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (proxy_url_check(bad[i], err) != XRAY_ECONFIG)
            fail_msg("accepted: \"%s\"", bad[i]);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "secret")); /* never quotes the URL */
    }
    assert_int_equal(proxy_url_check(NULL, NULL), XRAY_ECONFIG);

    /* Length bounds: a URL and a host name. */
    char big[PROXY_URL_MAX + 16];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(proxy_url_check(big, err), XRAY_ECONFIG);
    big[PROXY_URL_MAX] = '\0';
    assert_int_equal(proxy_url_check(big, err), XRAY_ECONFIG); /* host longer than 253 */
    big[253] = '\0';
    assert_int_equal(proxy_url_check(big, err), 0);
}

static void test_proxy_url_redact(void **state)
{
    (void)state;
    char out[128];
    proxy_url_redact("http://user:secret@p:1", out, sizeof(out));
    assert_string_equal(out, "http://***@p:1");
    proxy_url_redact("user:secret@p", out, sizeof(out));
    assert_string_equal(out, "***@p");
    proxy_url_redact("http://a@b@p/", out, sizeof(out));
    assert_string_equal(out, "http://***@p/");
    proxy_url_redact("http://p:1", out, sizeof(out));
    assert_string_equal(out, "http://p:1");
    proxy_url_redact("http://p/a@b", out, sizeof(out)); /* not user information */
    assert_string_equal(out, "http://p/a@b");
    proxy_url_redact(NULL, out, sizeof(out));
    assert_string_equal(out, "");
    proxy_url_redact("http://user:secret@p", out, 5);
    assert_string_equal(out, "http");
}

static void test_proxy_url_target(void **state)
{
    (void)state;
    bool https;
    char host[PROXY_HOST_MAX + 2];
    unsigned port;
    assert_int_equal(proxy_url_target("https://xray.us-east-1.amazonaws.com", &https, host, &port),
                     0);
    assert_true(https);
    assert_string_equal(host, "xray.us-east-1.amazonaws.com");
    assert_int_equal(port, 443);
    assert_int_equal(proxy_url_target("http://127.0.0.1:4566/TraceSegments", &https, host, &port),
                     0);
    assert_false(https);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 4566);
    assert_int_equal(proxy_url_target("http://[::1]:8080/x?y", &https, host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8080);
    assert_int_equal(proxy_url_target("HTTP://Example.COM./", &https, host, &port), 0);
    assert_string_equal(host, "example.com."); /* proxy_bypass ignores the dot */
    assert_int_equal(port, 80);
    assert_int_equal(proxy_url_target("https://user:pw@h:1#frag", &https, host, &port), 0);
    assert_string_equal(host, "h");
    assert_int_equal(port, 1);
    assert_int_equal(proxy_url_target("http://h:/", &https, host, &port), 0);
    assert_int_equal(port, 80);
    static const char *const bad[] = {"ftp://x",     "http://",    "http://h:0", "http://h:x",
                                      "http://[::1", "noscheme",   "http//x",    "http://[::1]x",
                                      "https://:1",  "http://h h", NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(proxy_url_target(bad[i], &https, host, &port), XRAY_EPARSE);
}

static void test_proxy_for_url_which_setting(void **state)
{
    (void)state;
    /* Nothing set: always direct. */
    struct proxy *p = mk(NULL, NULL, "", NULL);
    assert_true(direct(p, "https://xray.us-east-1.amazonaws.com"));
    assert_false(proxy_enabled(p));
    proxy_destroy(p);

    /* The environment: HTTPS_PROXY for https://, HTTP_PROXY for http:// only. */
    p = mk(NULL, "http://s:1", NULL, NULL);
    assert_string_equal(proxy_for_url(p, "https://x.example.com/a"), "http://s:1");
    assert_true(direct(p, "http://x.example.com/a"));
    assert_true(proxy_enabled(p));
    proxy_destroy(p);
    p = mk(NULL, NULL, "h:2", NULL);
    assert_string_equal(proxy_for_url(p, "http://x.example.com"), "http://h:2"); /* scheme added */
    assert_true(direct(p, "https://x.example.com"));
    proxy_destroy(p);

    /* -p wins over both, for every URL; the environment's values are not even read. */
    p = mk("socks5h://p:1080", "http://s:1", "ftp://not-checked", NULL);
    assert_string_equal(proxy_for_url(p, "https://a"), "socks5h://p:1080");
    assert_string_equal(proxy_for_url(p, "http://a"), "socks5h://p:1080");
    /* URLs that are not http(s): direct (the client fails them anyway). */
    assert_true(direct(p, "ftp://a"));
    assert_true(direct(p, "garbage"));
    assert_true(direct(p, NULL));
    proxy_destroy(p);
    assert_null(proxy_for_url(NULL, "https://a"));
    proxy_destroy(NULL);
}

static void test_proxy_create_errors_name_the_setting(void **state)
{
    (void)state;
    struct proxy *p = (struct proxy *)1;
    char err[XRAY_ERR_LEN];
    struct proxy_settings s = {.address = "http://user:secret@p:0"};
    assert_int_equal(proxy_create(&s, &p, err), XRAY_ECONFIG);
    assert_null(p);
    assert_non_null(strstr(err, "-p/ProxyAddress"));
    assert_non_null(strstr(err, "port"));
    assert_null(strstr(err, "secret"));

    s = (struct proxy_settings){.https_proxy = "ftp://x", .https_proxy_name = "https_proxy"};
    assert_int_equal(proxy_create(&s, &p, err), XRAY_ECONFIG);
    assert_non_null(strstr(err, "https_proxy: "));
    assert_non_null(strstr(err, "scheme"));
    s = (struct proxy_settings){.https_proxy = "http://ok:1", .http_proxy = "http://x/y"};
    assert_int_equal(proxy_create(&s, &p, err), XRAY_ECONFIG);
    assert_non_null(strstr(err, "HTTP_PROXY: "));
    /* -p set: a broken environment proxy does not matter. */
    s = (struct proxy_settings){.address = "p:1", .https_proxy = "ftp://x"};
    assert_int_equal(proxy_create(&s, &p, err), 0);
    proxy_destroy(p);
    assert_int_equal(proxy_create(&s, &p, NULL), 0); /* err may be NULL */
    proxy_destroy(p);
}

static void test_proxy_settings_from_env(void **state)
{
    (void)state;
    struct proxy_settings s;
    setenv("HTTPS_PROXY", "", 1);
    setenv("https_proxy", "http://lower:1", 1);
    unsetenv("HTTP_PROXY");
    unsetenv("http_proxy");
    setenv("NO_PROXY", "upper.example", 1);
    setenv("no_proxy", "lower.example", 1);
    proxy_settings_from_env(&s, "p:1");
    assert_string_equal(s.address, "p:1");
    assert_string_equal(s.https_proxy, "http://lower:1"); /* an empty one is unset */
    assert_string_equal(s.https_proxy_name, "https_proxy");
    assert_null(s.http_proxy);
    assert_string_equal(s.no_proxy, "upper.example"); /* upper case first, as Go */
    assert_string_equal(s.no_proxy_name, "NO_PROXY");
    setenv("HTTPS_PROXY", "http://upper:1", 1);
    setenv("http_proxy", "http://plain:2", 1);
    proxy_settings_from_env(&s, NULL);
    assert_string_equal(s.https_proxy, "http://upper:1");
    assert_string_equal(s.https_proxy_name, "HTTPS_PROXY");
    assert_string_equal(s.http_proxy, "http://plain:2");
    assert_string_equal(s.http_proxy_name, "http_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("https_proxy");
    unsetenv("http_proxy");
    unsetenv("NO_PROXY");
    unsetenv("no_proxy");
}

static void test_proxy_bypass_names(void **state)
{
    (void)state;
    struct proxy *p =
        mk_np("exact.host, example.com,.dot.org *.star.net  Upper.CASE.io,trail.dot.");
    /* Exact names. */
    assert_true(direct(p, "https://exact.host/x"));
    assert_false(direct(p, "https://exact.host.evil"));
    assert_true(direct(p, "https://sub.exact.host")); /* a name covers its subdomains */
    /* Domains, with and without a leading dot or "*.": the domain and below. */
    assert_true(direct(p, "https://example.com"));
    assert_true(direct(p, "https://xray.example.com"));
    assert_true(direct(p, "https://a.b.example.com:8443/p"));
    assert_false(direct(p, "https://notexample.com"));
    assert_false(direct(p, "https://example.com.evil.net"));
    assert_false(direct(p, "https://com"));
    assert_true(direct(p, "https://dot.org"));
    assert_true(direct(p, "https://x.dot.org"));
    assert_false(direct(p, "https://xdot.org"));
    assert_true(direct(p, "https://star.net"));
    assert_true(direct(p, "https://x.star.net"));
    assert_false(direct(p, "https://xstar.net"));
    /* Case and trailing dots, on either side. */
    assert_true(direct(p, "https://upper.case.io"));
    assert_true(direct(p, "https://API.Upper.Case.IO"));
    assert_true(direct(p, "https://EXAMPLE.COM."));
    assert_true(direct(p, "https://trail.dot"));
    assert_true(direct(p, "https://x.trail.dot."));
    /* Names never match addresses, nor addresses names. */
    assert_false(direct(p, "http://127.0.0.1"));
    assert_false(proxy_bypass(p, "", 80));
    assert_false(proxy_bypass(p, NULL, 80));
    proxy_destroy(p);

    p = mk_np("localhost,0.0.1");
    assert_false(direct(p, "http://127.0.0.1:2000")); /* no resolving, no suffix on IPs */
    assert_true(direct(p, "http://localhost:2000"));
    proxy_destroy(p);
}

static void test_proxy_bypass_ipv4(void **state)
{
    (void)state;
    struct proxy *p = mk_np("127.0.0.1,10.0.0.0/8,192.168.1.0/24,172.16.0.0/12,100.64.0.1/32,"
                            "198.51.100.7/31,203.0.113.0/25");
    assert_true(direct(p, "http://127.0.0.1:4566"));
    assert_false(direct(p, "http://127.0.0.2"));
    /* /8 edges */
    assert_true(direct(p, "http://10.0.0.0"));
    assert_true(direct(p, "http://10.255.255.255"));
    assert_false(direct(p, "http://11.0.0.0"));
    assert_false(direct(p, "http://9.255.255.255"));
    /* /24 edges */
    assert_true(direct(p, "http://192.168.1.0"));
    assert_true(direct(p, "http://192.168.1.255"));
    assert_false(direct(p, "http://192.168.2.0"));
    assert_false(direct(p, "http://192.168.0.255"));
    /* /12: a prefix that is not a whole byte */
    assert_true(direct(p, "http://172.16.0.1"));
    assert_true(direct(p, "http://172.31.255.255"));
    assert_false(direct(p, "http://172.32.0.0"));
    assert_false(direct(p, "http://172.15.255.255"));
    /* /32, /31, /25 */
    assert_true(direct(p, "http://100.64.0.1"));
    assert_false(direct(p, "http://100.64.0.2"));
    assert_true(direct(p, "http://198.51.100.6"));
    assert_true(direct(p, "http://198.51.100.7"));
    assert_false(direct(p, "http://198.51.100.8"));
    assert_true(direct(p, "http://203.0.113.127"));
    assert_false(direct(p, "http://203.0.113.128"));
    /* An IPv4 entry does not match an IPv6 host. */
    assert_false(direct(p, "http://[::ffff:127.0.0.1]"));
    proxy_destroy(p);

    /* /0 is every IPv4 address, and no name. */
    p = mk_np("0.0.0.0/0");
    assert_true(direct(p, "http://1.2.3.4"));
    assert_true(direct(p, "http://255.255.255.255"));
    assert_false(direct(p, "http://[::1]"));
    assert_false(direct(p, "http://example.com"));
    proxy_destroy(p);
    /* Host bits past the prefix are ignored. */
    p = mk_np("10.1.2.3/8");
    assert_true(direct(p, "http://10.200.0.1"));
    proxy_destroy(p);
}

static void test_proxy_bypass_ipv6(void **state)
{
    (void)state;
    struct proxy *p = mk_np("::1, [2001:db8::5], fd00::/8, 2001:db8:1::/48, [2001:db8:2::]/64");
    assert_true(direct(p, "http://[::1]:2000/x"));
    assert_true(direct(p, "http://[0:0:0:0:0:0:0:1]")); /* compared as addresses */
    assert_false(direct(p, "http://[::2]"));
    assert_true(direct(p, "https://[2001:db8::5]"));
    assert_true(direct(p, "https://[2001:DB8:0::5]"));
    assert_false(direct(p, "https://[2001:db8::6]"));
    assert_true(direct(p, "https://[fd12:3456::1]"));
    assert_true(direct(p, "https://[fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]"));
    assert_false(direct(p, "https://[fe00::1]"));
    assert_false(direct(p, "https://[fc00::1]"));
    assert_true(direct(p, "https://[2001:db8:1:ffff::1]"));
    assert_false(direct(p, "https://[2001:db8:2:1::1]"));
    assert_true(direct(p, "https://[2001:db8:2::9]"));
    assert_false(direct(p, "http://127.0.0.1"));
    assert_true(proxy_bypass(p, "[::1]", 1));
    assert_true(proxy_bypass(p, "::1", 1));
    proxy_destroy(p);
    p = mk_np("::/0");
    assert_true(direct(p, "http://[2a00::1]"));
    assert_false(direct(p, "http://10.0.0.1"));
    proxy_destroy(p);
}

static void test_proxy_bypass_ports(void **state)
{
    (void)state;
    struct proxy *p = mk_np("example.com:8443,127.0.0.1:80,[::1]:443,10.0.0.0/8:4566,any.org:");
    assert_true(direct(p, "https://example.com:8443"));
    assert_true(direct(p, "https://api.example.com:8443/x"));
    assert_false(direct(p, "https://example.com")); /* 443 */
    assert_false(direct(p, "http://example.com:8444"));
    assert_true(direct(p, "http://127.0.0.1/x")); /* the default port counts */
    assert_true(direct(p, "http://127.0.0.1:80"));
    assert_false(direct(p, "http://127.0.0.1:8080"));
    assert_false(direct(p, "https://127.0.0.1"));
    assert_true(direct(p, "https://[::1]"));
    assert_false(direct(p, "http://[::1]"));
    assert_true(direct(p, "http://10.9.8.7:4566"));
    assert_false(direct(p, "http://10.9.8.7:4567"));
    assert_true(direct(p, "https://any.org:1")); /* an empty port is any port */
    proxy_destroy(p);
}

static void test_proxy_bypass_star_and_empty(void **state)
{
    (void)state;
    char how[256];
    /* `*` anywhere in the list: no proxy at all. */
    struct proxy *p = mk_np("example.com,*");
    assert_true(direct(p, "https://anything.net"));
    assert_true(direct(p, "http://10.0.0.1"));
    assert_false(proxy_enabled(p));
    proxy_describe(p, how, sizeof(how));
    assert_non_null(strstr(how, "NO_PROXY: *"));
    proxy_destroy(p);
    p = mk("http://x:1", NULL, NULL, " * ");
    assert_true(direct(p, "https://anything.net"));
    proxy_destroy(p);
    /* `*` inside a name is nothing special: "*x" is ignored, not a wildcard. */
    p = mk_np("*x.com");
    assert_false(direct(p, "https://ax.com"));
    proxy_destroy(p);
    /* Empty entries and separators only. */
    p = mk_np(",, ,\t,\n");
    assert_false(direct(p, "https://example.com"));
    proxy_describe(p, how, sizeof(how));
    assert_non_null(strstr(how, "NO_PROXY: 0 entries"));
    proxy_destroy(p);
    p = mk_np(",,example.com,,");
    assert_true(direct(p, "https://example.com"));
    proxy_destroy(p);
    /* -p is subject to NO_PROXY too. */
    p = mk("http://x:1", NULL, NULL, "127.0.0.1");
    assert_true(direct(p, "http://127.0.0.1:4566"));
    assert_string_equal(proxy_for_url(p, "http://127.0.0.2:4566"), "http://x:1");
    proxy_destroy(p);
}

static void test_proxy_bypass_link_local(void **state)
{
    (void)state;
    /* Instance metadata and container credentials: never through a proxy, -p included. */
    struct proxy *p = mk("http://x:1", NULL, NULL, NULL);
    assert_true(direct(p, "http://169.254.169.254/latest/api/token"));
    assert_true(direct(p, "http://169.254.170.2/v2/credentials"));
    assert_true(direct(p, "http://169.254.0.0"));
    assert_true(direct(p, "http://169.254.255.255"));
    assert_false(direct(p, "http://169.253.255.255"));
    assert_false(direct(p, "http://169.255.0.0"));
    assert_true(direct(p, "http://[fe80::1]"));
    assert_true(direct(p, "http://[febf:ffff::1]"));
    assert_false(direct(p, "http://[fec0::1]"));
    assert_false(direct(p, "http://[fd00:ec2::254]")); /* not link-local: NO_PROXY's job */
    assert_false(direct(p, "http://127.0.0.1"));       /* loopback is not exempt */
    proxy_destroy(p);
}

static void test_proxy_bypass_malformed_entries(void **state)
{
    (void)state;
    char how[256];
    struct proxy *p = mk_np("10.0.0.0/33,foo/bar,[::1,fe80::zz,example.com:99999,::1/129,"
                            "1.2.3.4/,1.2.3.4/x,[::1]junk,a!b,good.example");
    assert_true(direct(p, "https://good.example"));
    assert_false(direct(p, "http://10.0.0.1"));
    assert_false(direct(p, "http://[::1]"));
    assert_false(direct(p, "https://example.com:99"));
    proxy_describe(p, how, sizeof(how));
    assert_non_null(strstr(how, "1 entries, 10 ignored (first: 10.0.0.0/33)"));
    proxy_destroy(p);
}

static void test_proxy_create_bounds(void **state)
{
    (void)state;
    struct proxy *p;
    char err[XRAY_ERR_LEN];
    size_t n = PROXY_NO_PROXY_ITEMS;
    char *list = malloc(n * 4 + 16);
    assert_non_null(list);
    list[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(list + len, "%s%c", i == 0 ? "" : ",", 'a' + (int)(i % 26));
    struct proxy_settings s = {.https_proxy = P, .no_proxy = list, .no_proxy_name = "no_proxy"};
    assert_int_equal(proxy_create(&s, &p, err), 0);
    assert_true(direct(p, "https://z"));
    proxy_destroy(p);
    strcat(list, ",y");
    assert_int_equal(proxy_create(&s, &p, err), XRAY_ETOOBIG);
    assert_null(p);
    assert_non_null(strstr(err, "no_proxy has more than 1024 entries"));
    free(list);

    list = malloc(PROXY_NO_PROXY_MAX + 2);
    assert_non_null(list);
    memset(list, 'a', PROXY_NO_PROXY_MAX + 1);
    list[PROXY_NO_PROXY_MAX + 1] = '\0';
    s.no_proxy = list;
    s.no_proxy_name = NULL;
    assert_int_equal(proxy_create(&s, &p, err), XRAY_ETOOBIG);
    assert_non_null(strstr(err, "NO_PROXY is longer than"));
    free(list);
}

static void test_proxy_describe_masks_credentials(void **state)
{
    (void)state;
    char how[512];
    struct proxy *p = mk("http://user:secret@p:3128", NULL, NULL, NULL);
    proxy_describe(p, how, sizeof(how));
    assert_string_equal(how, "every URL via -p/ProxyAddress http://***@p:3128");
    proxy_destroy(p);
    struct proxy_settings s = {.https_proxy = "u:pw@s:1",
                               .https_proxy_name = "https_proxy",
                               .no_proxy = "a,b",
                               .no_proxy_name = "no_proxy"};
    assert_int_equal(proxy_create(&s, &p, NULL), 0);
    proxy_describe(p, how, sizeof(how));
    assert_string_equal(how, "https:// via https_proxy http://***@s:1, http:// direct; "
                             "no_proxy: 2 entries");
    assert_null(strstr(how, "pw"));
    proxy_describe(p, how, 8); /* truncated, terminated */
    assert_int_equal(strlen(how), 7);
    proxy_destroy(p);
    p = mk(NULL, NULL, NULL, NULL);
    proxy_describe(p, how, sizeof(how));
    assert_string_equal(how, "none");
    proxy_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_url_check_valid),
        cmocka_unit_test(test_proxy_url_check_invalid),
        cmocka_unit_test(test_proxy_url_redact),
        cmocka_unit_test(test_proxy_url_target),
        cmocka_unit_test(test_proxy_for_url_which_setting),
        cmocka_unit_test(test_proxy_create_errors_name_the_setting),
        cmocka_unit_test(test_proxy_settings_from_env),
        cmocka_unit_test(test_proxy_bypass_names),
        cmocka_unit_test(test_proxy_bypass_ipv4),
        cmocka_unit_test(test_proxy_bypass_ipv6),
        cmocka_unit_test(test_proxy_bypass_ports),
        cmocka_unit_test(test_proxy_bypass_star_and_empty),
        cmocka_unit_test(test_proxy_bypass_link_local),
        cmocka_unit_test(test_proxy_bypass_malformed_entries),
        cmocka_unit_test(test_proxy_create_bounds),
        cmocka_unit_test(test_proxy_describe_masks_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
