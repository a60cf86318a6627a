/* SPDX-License-Identifier: Apache-2.0 */
/* The ECS container credentials provider against a fake credentials endpoint on
 * 127.0.0.1 (AWS_CONTAINER_CREDENTIALS_FULL_URI, as the SDKs allow): the token from
 * the environment or from a file read on every load, malformed answers, and which URLs
 * are accepted. The relative-URI form is checked by the URL it builds: nothing here
 * ever contacts 169.254.170.2. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/credentials.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "credentials_rig.h"
#include "fake_http.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY"

static char tmpdir[256];
static char token_path[320];

static const char *const vars[] = {
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"};

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    unlink(token_path);
    return 0;
}

/* The fake agent: answers the credentials document to the expected token only. */
struct agent {
    const char *token; /* required Authorization value; NULL = none required */
    int status;
    const char *body;
};

static const char creds_doc[] =
    "{\"RoleArn\":\"arn:aws:iam::123456789012:role/task\",\"AccessKeyId\":\"ASIAECSTASK\","
    "\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"ECSTOKEN\","
    "\"Expiration\":\"2026-11-22T01:08:08Z\"}";

static void agent_handler(struct fake_http *f, const struct fake_http_request *req,
                          struct fake_http_reply *rep)
{
    const struct agent *a = f->ctx;
    char auth[256];
    fake_http_header(req, "Authorization", auth, sizeof(auth));
    if (strcmp(req->method, "GET") != 0 || strcmp(req->path, "/v2/credentials/abc") != 0) {
        rep->status = 404;
        return;
    }
    if (a->token != NULL && strcmp(auth, a->token) != 0) {
        rep->status = 401;
        snprintf(rep->body, sizeof(rep->body), "{\"code\":\"unauthorized\"}");
        return;
    }
    rep->hang = a->status < 0;
    rep->status = a->status;
    snprintf(rep->body, sizeof(rep->body), "%s", a->body);
}

static void write_token(const char *text)
{
    FILE *f = fopen(token_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_credentials_ecs_url(void **state)
{
    (void)state;
    char url[256], err[XRAY_ERR_LEN];
    assert_int_equal(credentials_ecs_url(url, sizeof(url), err), XRAY_ENOCREDS);
    /* The relative form goes to the ECS agent's fixed address. */
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/0e3ae4fa-1d8d", 1);
    assert_int_equal(credentials_ecs_url(url, sizeof(url), err), 0);
    assert_string_equal(url, "http://169.254.170.2/v2/credentials/0e3ae4fa-1d8d");
    /* It wins over the full form, as in the SDKs. */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:51679/creds", 1);
    assert_int_equal(credentials_ecs_url(url, sizeof(url), err), 0);
    assert_string_equal(url, "http://169.254.170.2/v2/credentials/0e3ae4fa-1d8d");
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/no-slash", 1);
    assert_int_equal(credentials_ecs_url(url, sizeof(url), err), XRAY_ECONFIG);
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/x\r\nHost: evil", 1);
    assert_int_equal(credentials_ecs_url(url, sizeof(url), err), XRAY_ECONFIG);
    unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");

    /* The full form: plain http only to loopback or the container agents. */
    const char *ok[] = {"http://127.0.0.1:51679/creds",
                        "http://127.1.2.3/x",
                        "http://localhost:8080/x",
                        "http://[::1]:80/x",
                        "http://169.254.170.23/v1/credentials",
                        "https://creds.example.com/x"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", ok[i], 1);
        assert_int_equal(credentials_ecs_url(url, sizeof(url), err), 0);
        assert_string_equal(url, ok[i]);
    }
    const char *bad[] = {"http://creds.example.com/x", "http://10.0.0.1/x", "ftp://127.0.0.1/x",
                         "127.0.0.1/x", "http://user@127.0.0.1/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", bad[i], 1);
        assert_int_equal(credentials_ecs_url(url, sizeof(url), err), XRAY_ECONFIG);
        assert_non_null(strstr(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI"));
    }
}

static void test_credentials_ecs_full_uri_with_token(void **state)
{
    (void)state;
    static struct fake_http fake;
    struct agent agent = {"Basic dGFzazpzZWNyZXQ=", 200, creds_doc};
    fake_http_start(&fake, agent_handler, &agent);
    struct rig r;
    rig_init(&r);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/credentials/abc", fake.port);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    const struct credentials_provider *p = &credentials_ecs_provider;

    /* Without the token the agent refuses: an error, since the variables say ECS. */
    assert_int_equal(rig_load(&r, p, 1000), XRAY_EUPSTREAM);
    assert_non_null(strstr(r.a.err, "HTTP 401"));

    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Basic dGFzazpzZWNyZXQ=", 1);
    assert_int_equal(rig_load(&r, p, 1000), 0);
    assert_string_equal(r.a.creds.access_key_id, "ASIAECSTASK");
    assert_string_equal(r.a.creds.secret_access_key, SECRET);
    assert_string_equal(r.a.creds.session_token, "ECSTOKEN");
    assert_int_equal(r.a.creds.expires_ms, 1795309688000ull);

    /* The token file wins over the variable and is read again on every load. */
    agent.token = "file-token-1";
    write_token("file-token-1\n");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_path, 1);
    assert_int_equal(rig_load(&r, p, 2000), 0);
    agent.token = "file-token-2";
    write_token("file-token-2");
    assert_int_equal(rig_load(&r, p, 3000), 0);
    assert_int_equal(rig_load(&r, p, 3000), 0);
    /* A token file that is gone is an error that names it. */
    unlink(token_path);
    int before = fake_http_requests(&fake);
    assert_int_equal(rig_load(&r, p, 4000), -ENOENT);
    assert_non_null(strstr(r.a.err, "authorization token file"));
    assert_int_equal(fake_http_requests(&fake), before);
    /* A token that would smuggle a header is refused before anything is sent. */
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok\r\nX-Evil: 1", 1);
    assert_int_equal(rig_load(&r, p, 5000), XRAY_ECONFIG);
    assert_int_equal(fake_http_requests(&fake), before);
    rig_finish(&r);
    fake_http_stop(&fake);
}

static void test_credentials_ecs_bad_answers(void **state)
{
    (void)state;
    static struct fake_http fake;
    struct agent agent = {NULL, 200, "{\"AccessKeyId\":\"ASIA\",\"SecretAccessKey\":"};
    fake_http_start(&fake, agent_handler, &agent);
    struct rig r;
    rig_init(&r);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/credentials/abc", fake.port);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    const struct credentials_provider *p = &credentials_ecs_provider;
    assert_int_equal(rig_load(&r, p, 1000), XRAY_EPARSE);
    assert_non_null(strstr(r.a.err, "not a JSON object"));
    agent.body = "{\"AccessKeyId\":\"ASIA\"}";
    assert_int_equal(rig_load(&r, p, 1000), XRAY_EFIELD);
    agent.body =
        "{\"AccessKeyId\":\"ASIA\",\"SecretAccessKey\":\"" SECRET "\",\"Expiration\":\"whenever\"}";
    assert_int_equal(rig_load(&r, p, 1000), XRAY_EPARSE);
    assert_null(strstr(r.a.err, SECRET));
    agent.status = 500;
    agent.body = "";
    assert_int_equal(rig_load(&r, p, 1000), XRAY_EUPSTREAM);
    assert_non_null(strstr(r.a.err, "HTTP 500"));
    rig_finish(&r);
    fake_http_stop(&fake);

    /* Nothing listens: refused, an error that says so. */
    rig_init(&r);
    assert_int_equal(rig_load(&r, p, 1000), -ECONNREFUSED);
    assert_non_null(strstr(r.a.err, "credentials endpoint"));
    /* Neither variable: nothing here, the chain goes on. */
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    assert_int_equal(rig_load(&r, p, 1000), XRAY_ENOCREDS);
    rig_finish(&r);
}

static void test_credentials_ecs_timeout(void **state)
{
    (void)state;
    static struct fake_http fake;
    struct agent agent = {NULL, -1, ""}; /* -1: never answer */
    fake_http_start(&fake, agent_handler, &agent);
    struct rig r;
    rig_init(&r);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/credentials/abc", fake.port);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    uint64_t t0 = rig_mono_ms();
    assert_int_equal(rig_load(&r, &credentials_ecs_provider, 1000), XRAY_ETIMEOUT);
    uint64_t took = rig_mono_ms() - t0;
    assert_true(took >= CREDENTIALS_METADATA_TIMEOUT_MS - 50);
    assert_true(took < 3 * CREDENTIALS_METADATA_TIMEOUT_MS);
    assert_non_null(strstr(r.a.err, "timeout"));
    rig_finish(&r);
    fake_http_stop(&fake);
}

static int group_setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/xrayd-ecs-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(token_path, sizeof(token_path), "%s/token", tmpdir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(token_path);
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_credentials_ecs_url, setup),
        cmocka_unit_test_setup(test_credentials_ecs_full_uri_with_token, setup),
        cmocka_unit_test_setup(test_credentials_ecs_bad_answers, setup),
        cmocka_unit_test_setup(test_credentials_ecs_timeout, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
