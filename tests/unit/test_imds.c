/* SPDX-License-Identifier: Apache-2.0 */
/* Instance metadata against a fake IMDSv2 on 127.0.0.1 (through
 * AWS_EC2_METADATA_SERVICE_ENDPOINT; nothing here reaches 169.254.169.254): the
 * credentials provider (token first, role, credentials; a refused token; no role;
 * timeouts; disabled) and the blocking start-up lookups (one token for the process, a
 * missing IMDS noticed once). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/imds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "credentials_rig.h"
#include "fake_http.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY"

/* The fake IMDSv2: a token for a PUT with a TTL, then every GET must carry it. */
struct imds_script {
    bool hang_token;    /* never answer the token request */
    bool reject_token;  /* answer 401 to GETs even with the token */
    bool no_role;       /* 404 for the role list */
    int token_requests; /* under the fake's lock */
    int unauthorized;   /* GETs without the token */
};

static const char imds_creds[] =
    "{\"Code\":\"Success\",\"LastUpdated\":\"2026-11-21T23:00:00Z\",\"Type\":\"AWS-HMAC\","
    "\"AccessKeyId\":\"ASIAINSTANCE\",\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"IMDSTOKEN\","
    "\"Expiration\":\"2026-11-22T05:00:00Z\"}";

static void imds_handler(struct fake_http *f, const struct fake_http_request *req,
                         struct fake_http_reply *rep)
{
    struct imds_script *s = f->ctx;
    char v[256];
    if (strcmp(req->path, "/latest/api/token") == 0) {
        s->token_requests++;
        if (strcmp(req->method, "PUT") != 0 ||
            atoi(fake_http_header(req, "X-aws-ec2-metadata-token-ttl-seconds", v, sizeof(v))) <=
                0) {
            rep->status = 400;
            return;
        }
        rep->hang = s->hang_token;
        snprintf(rep->body, sizeof(rep->body), "AQAEAFAKE-TOKEN==");
        return;
    }
    if (strcmp(fake_http_header(req, "X-aws-ec2-metadata-token", v, sizeof(v)),
               "AQAEAFAKE-TOKEN==") != 0 ||
        s->reject_token) {
        s->unauthorized++;
        rep->status = 401;
        return;
    }
    static const struct {
        const char *path;
        const char *body;
    } items[] = {
        {"/latest/meta-data/iam/security-credentials/", "xrayd-role\n"},
        {"/latest/meta-data/iam/security-credentials/xrayd-role", imds_creds},
        {"/latest/meta-data/placement/region", "eu-central-1"},
        {"/latest/meta-data/hostname", "ip-10-0-0-1.eu-central-1.compute.internal\n"},
        {"/latest/meta-data/instance-id", "i-0123456789abcdef0"},
    };
    rep->status = 404;
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        if (strcmp(req->path, items[i].path) == 0 && !(i == 0 && s->no_role)) {
            rep->status = 200;
            snprintf(rep->body, sizeof(rep->body), "%s", items[i].body);
        }
    }
}

static struct fake_http fake;
static struct imds_script script;

static int setup(void **state)
{
    (void)state;
    memset(&script, 0, sizeof(script));
    fake_http_start(&fake, imds_handler, &script);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", fake.port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    imds_startup_forget();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fake_http_stop(&fake);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    return 0;
}

static int token_requests(void)
{
    pthread_mutex_lock(&fake.mu);
    int n = script.token_requests;
    pthread_mutex_unlock(&fake.mu);
    return n;
}

static void test_imds_endpoint(void **state)
{
    (void)state;
    char out[128], err[XRAY_ERR_LEN];
    assert_int_equal(imds_endpoint(out, sizeof(out), err), 0);
    assert_true(strncmp(out, "http://127.0.0.1:", 17) == 0);
    assert_true(out[strlen(out) - 1] != '/');
    unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    assert_int_equal(imds_endpoint(out, sizeof(out), err), 0);
    assert_string_equal(out, "http://169.254.169.254");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://[fd00:ec2::254]", 1);
    assert_int_equal(imds_endpoint(out, sizeof(out), err), 0);
    assert_string_equal(out, "http://[fd00:ec2::254]");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "169.254.169.254", 1);
    assert_int_equal(imds_endpoint(out, sizeof(out), err), XRAY_ECONFIG);
    assert_non_null(strstr(err, "AWS_EC2_METADATA_SERVICE_ENDPOINT"));
    assert_false(imds_disabled());
    setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
    assert_true(imds_disabled());
}

static void test_imds_provider_credentials(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r);
    assert_int_equal(rig_load(&r, &credentials_imds_provider, 1000), 0);
    assert_string_equal(r.a.creds.access_key_id, "ASIAINSTANCE");
    assert_string_equal(r.a.creds.secret_access_key, SECRET);
    assert_string_equal(r.a.creds.session_token, "IMDSTOKEN");
    assert_int_equal(r.a.creds.expires_ms, 1795323600000ull);
    /* Token, role list, role: three requests, the GETs with the token. */
    assert_int_equal(fake_http_requests(&fake), 3);
    assert_int_equal(token_requests(), 1);
    assert_int_equal(script.unauthorized, 0);
    static struct fake_http_request got;
    fake_http_last(&fake, &got);
    assert_string_equal(got.method, "GET");
    assert_string_equal(got.path, "/latest/meta-data/iam/security-credentials/xrayd-role");
    rig_finish(&r);
}

static void test_imds_provider_token_refused(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r);
    pthread_mutex_lock(&fake.mu);
    script.reject_token = true; /* IMDSv2 answers 401 to a bad or expired token */
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(rig_load(&r, &credentials_imds_provider, 1000), XRAY_EUPSTREAM);
    assert_non_null(strstr(r.a.err, "HTTP 401"));
    pthread_mutex_lock(&fake.mu);
    script.reject_token = false;
    script.no_role = true;
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(rig_load(&r, &credentials_imds_provider, 1000), XRAY_ENOCREDS);
    assert_string_equal(r.a.err, "no IAM role attached to the instance");
    rig_finish(&r);
}

static void test_imds_provider_timeout_and_absent(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r);
    pthread_mutex_lock(&fake.mu);
    script.hang_token = true;
    pthread_mutex_unlock(&fake.mu);
    uint64_t t0 = rig_mono_ms();
    /* No answer: not an EC2 instance, so "nothing here", after about a second. */
    assert_int_equal(rig_load(&r, &credentials_imds_provider, 1000), XRAY_ENOCREDS);
    uint64_t took = rig_mono_ms() - t0;
    assert_true(took >= IMDS_TIMEOUT_MS - 50 && took < 3 * IMDS_TIMEOUT_MS);
    assert_string_equal(r.a.err, "no IMDS: timeout");

    /* Disabled: no request at all. */
    int before = fake_http_requests(&fake);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    assert_int_equal(rig_load(&r, &credentials_imds_provider, 1000), XRAY_ENOCREDS);
    assert_string_equal(r.a.err, "AWS_EC2_METADATA_DISABLED=true");
    assert_int_equal(fake_http_requests(&fake), before);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    /* Nothing listening: nothing here either. */
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
    assert_int_equal(rig_load(&r, &credentials_imds_provider, 1000), XRAY_ENOCREDS);
    assert_string_equal(r.a.err, "no IMDS: connection refused");
    rig_finish(&r);
}

static void test_imds_startup_get(void **state)
{
    (void)state;
    char v[IMDS_VALUE_MAX], err[XRAY_ERR_LEN];
    assert_int_equal(imds_startup_get("placement/region", v, err), 0);
    assert_string_equal(v, "eu-central-1");
    assert_int_equal(imds_startup_get("hostname", v, err), 0);
    assert_string_equal(v, "ip-10-0-0-1.eu-central-1.compute.internal"); /* trimmed */
    assert_int_equal(imds_startup_get("instance-id", v, err), 0);
    assert_string_equal(v, "i-0123456789abcdef0");
    assert_int_equal(imds_startup_get("no/such/item", v, err), -ENOENT);
    assert_non_null(strstr(err, "HTTP 404"));
    /* One token for all of them, and every GET carried it. */
    assert_int_equal(token_requests(), 1);
    assert_int_equal(script.unauthorized, 0);
    /* Disabled means not asked. */
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    int before = fake_http_requests(&fake);
    assert_int_equal(imds_startup_get("placement/region", v, err), XRAY_ECONFIG);
    assert_int_equal(fake_http_requests(&fake), before);
    unsetenv("AWS_EC2_METADATA_DISABLED");
}

static void test_imds_startup_absent_once(void **state)
{
    (void)state;
    pthread_mutex_lock(&fake.mu);
    script.hang_token = true;
    pthread_mutex_unlock(&fake.mu);
    char v[IMDS_VALUE_MAX], err[XRAY_ERR_LEN];
    uint64_t t0 = rig_mono_ms();
    assert_int_equal(imds_startup_get("placement/region", v, err), XRAY_ETIMEOUT);
    uint64_t took = rig_mono_ms() - t0;
    assert_true(took >= IMDS_TIMEOUT_MS - 50 && took < 3 * IMDS_TIMEOUT_MS);
    /* The verdict is kept: the next lookups do not wait again. */
    t0 = rig_mono_ms();
    assert_int_equal(imds_startup_get("hostname", v, err), XRAY_ETIMEOUT);
    assert_int_equal(imds_startup_get("instance-id", v, err), XRAY_ETIMEOUT);
    assert_true(rig_mono_ms() - t0 < 200);
    assert_int_equal(token_requests(), 1);
    assert_string_equal(v, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_imds_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_provider_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_provider_token_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_provider_timeout_and_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_startup_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_startup_absent_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
