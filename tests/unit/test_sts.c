/* SPDX-License-Identifier: Apache-2.0 */
/* STS: the XML parser on recorded-style answers, error bodies and hostile input; the
 * AssumeRole request (form body, SigV4 for "sts", the source's session token) and
 * AssumeRoleWithWebIdentity (unsigned, token file read on every load) against a fake
 * STS on 127.0.0.1; and a chain with a role, whose credentials come from STS signed
 * with what the ordinary providers found. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/sts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/sigv4.h"
#include "credentials_rig.h"
#include "fake_http.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY"

/* As moto 5 answers AssumeRole (token shortened). */
static const char moto_answer[] =
    "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>"
    "<Credentials><AccessKeyId>ASIARZPUZDIKD6M2ESDZ</AccessKeyId><SecretAccessKey>BnUAWNRfoae0qdT3"
    "s07A8OYkBnzBl5VL0UwDWahq</SecretAccessKey><SessionToken>FQoGZXIvYXdzEBYaD3/NJXZjH8k1+urMxe4vO"
    "3nHfpPgZZ6m7aR+7b7mcICmEzu0mhhExV4+j8h+auPxbQzXSXjh38LfWOxbdzDI=</SessionToken><Expiration>"
    "2026-11-22T01:22:48.084689Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA3X4"
    "2LBCDPEIA8OPH2:xrayd</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/r/xrayd</Arn>"
    "</AssumedRoleUser><PackedPolicySize>6</PackedPolicySize></AssumeRoleResult><ResponseMetadata>"
    "<RequestId>W8VRptF8xeLQE5U1yX1cprRKVTAq9CtNVbIHS2R6NhvAG1B3qdZp</RequestId></ResponseMetadata>"
    "</AssumeRoleResponse>";

/* As AWS answers AssumeRoleWithWebIdentity: declaration, indentation, CRLF. */
static const char aws_web_answer[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\r\n"
    "  <AssumeRoleWithWebIdentityResult>\r\n"
    "    <SubjectFromWebIdentityToken>system:serviceaccount:default:xray</"
    "SubjectFromWebIdentityToken>\r\n"
    "    <Audience>sts.amazonaws.com</Audience>\r\n"
    "    <AssumedRoleUser>\r\n"
    "      <Arn>arn:aws:sts::123456789012:assumed-role/xray/xrayd</Arn>\r\n"
    "      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:xrayd</AssumedRoleId>\r\n"
    "    </AssumedRoleUser>\r\n"
    "    <!-- a comment <Credentials> -->\r\n"
    "    <Credentials>\r\n"
    "      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>\r\n"
    "      <SecretAccessKey>" SECRET "</SecretAccessKey>\r\n"
    "      <Expiration>2026-11-22T02:00:00Z</Expiration>\r\n"
    "      <AccessKeyId>ASIAWEBIDENTITY</AccessKeyId>\r\n"
    "    </Credentials>\r\n"
    "    <SourceIdentity/>\r\n"
    "    <Provider>www.amazon.com</Provider>\r\n"
    "  </AssumeRoleWithWebIdentityResult>\r\n"
    "  <ResponseMetadata>\r\n"
    "    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>\r\n"
    "  </ResponseMetadata>\r\n"
    "</AssumeRoleWithWebIdentityResponse>\r\n";

static const char aws_error[] =
    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
    "  <Error>\n"
    "    <Type>Sender</Type>\n"
    "    <Code>AccessDenied</Code>\n"
    "    <Message>User: arn:aws:iam::123456789012:user/xrayd is not authorized to perform: "
    "sts:AssumeRole on resource: arn:aws:iam::123456789012:role/r &amp; more</Message>\n"
    "  </Error>\n"
    "  <RequestId>4a1a0ec8-0000-0000-0000-000000000000</RequestId>\n"
    "</ErrorResponse>\n";

static int parse(const char *xml, struct aws_credentials *c, char *err)
{
    err[0] = '\0';
    return sts_parse_credentials(xml, strlen(xml), c, err);
}

static void test_sts_parse_credentials_recorded(void **state)
{
    (void)state;
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
    assert_int_equal(parse(moto_answer, &c, err), 0);
    assert_string_equal(c.access_key_id, "ASIARZPUZDIKD6M2ESDZ");
    assert_string_equal(c.secret_access_key, "BnUAWNRfoae0qdT3s07A8OYkBnzBl5VL0UwDWahq");
    assert_true(strncmp(c.session_token, "FQoGZXIvYXdzEBYaD3/", 19) == 0);
    assert_int_equal(c.expires_ms, 1795310568084ull);
    aws_credentials_clear(&c);

    assert_int_equal(parse(aws_web_answer, &c, err), 0);
    assert_string_equal(c.access_key_id, "ASIAWEBIDENTITY");
    assert_string_equal(c.secret_access_key, SECRET);
    assert_string_equal(c.session_token, "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE");
    assert_int_equal(c.expires_ms, 1795312800000ull);
    aws_credentials_clear(&c);
}

static void test_sts_parse_credentials_entities(void **state)
{
    (void)state;
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
    const char *xml = "<R><Credentials a='x>y' b=\"/\"><AccessKeyId>ASIA&#x41;&#66;</AccessKeyId>"
                      "<SecretAccessKey>a&amp;b&lt;c&gt;d&quot;e&apos;f&#233;</SecretAccessKey>"
                      "<SessionToken>t&#43;k</SessionToken><Expiration>2026-11-22T01:08:08Z"
                      "</Expiration></Credentials ></R>";
    assert_int_equal(parse(xml, &c, err), 0);
    assert_string_equal(c.access_key_id, "ASIAAB");
    assert_string_equal(c.secret_access_key, "a&b<c>d\"e'f\xc3\xa9");
    assert_string_equal(c.session_token, "t+k");
    aws_credentials_clear(&c);
}

static void test_sts_parse_credentials_hostile(void **state)
{
    (void)state;
    struct {
        const char *xml;
        int rc;
    } bad[] = {
        {"", XRAY_EPARSE},
        {"not xml", XRAY_EPARSE},
        {"<R><Credentials></R>", XRAY_EPARSE},
        {"<R></R><R></R>", XRAY_EPARSE},
        {"<R>", XRAY_EPARSE},
        {"<R><Credentials><AccessKeyId>A</AccessKeyId></Credentials></R>", XRAY_EFIELD},
        {"<!DOCTYPE R [<!ENTITY x \"y\">]><R>&x;</R>", XRAY_EPARSE},
        {"<R><![CDATA[x]]></R>", XRAY_EPARSE},
        {"<R><Credentials><AccessKeyId>&bogus;</AccessKeyId></Credentials></R>", XRAY_EPARSE},
        {"<R><Credentials><AccessKeyId>&#0;</AccessKeyId></Credentials></R>", XRAY_EPARSE},
        {"<R><Credentials><AccessKeyId>&#xD800;</AccessKeyId></Credentials></R>", XRAY_EPARSE},
        {"<R><Credentials><AccessKeyId>&amp</AccessKeyId></Credentials></R>", XRAY_EPARSE},
        {"<R a=\"unterminated><x/></R>", XRAY_EPARSE},
        {"<R><!-- no end </R>", XRAY_EPARSE},
        {"<R><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>" SECRET
         "</SecretAccessKey><SessionToken>T</SessionToken><Expiration>tomorrow</Expiration>"
         "</Credentials></R>",
         XRAY_EPARSE},
        {"<R><Credentials><AccessKeyId>A B</AccessKeyId><SecretAccessKey>" SECRET
         "</SecretAccessKey><SessionToken>T</SessionToken><Expiration>2026-11-22T01:08:08Z"
         "</Expiration></Credentials></R>",
         XRAY_EPARSE},
    };
    struct aws_credentials c;
    char err[XRAY_ERR_LEN];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i].xml, &c, err), bad[i].rc);
        assert_null(c.access_key_id);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, SECRET));
    }
    /* An embedded NUL is not XML. */
    static const char nul[] = "<R>\0</R>";
    assert_int_equal(sts_parse_credentials(nul, sizeof(nul) - 1, &c, err), XRAY_EPARSE);

    /* Nesting past the bound, a name past its bound, a value past its bound, a body
     * past its bound. */
    char *big = calloc(1, STS_RESPONSE_MAX + 64);
    assert_non_null(big);
    for (int i = 0; i <= STS_XML_DEPTH_MAX; i++)
        strcat(big, "<a>");
    assert_int_equal(parse(big, &c, err), XRAY_EDEPTH);
    memset(big, 0, STS_RESPONSE_MAX + 64);
    big[0] = '<';
    memset(big + 1, 'n', STS_XML_NAME_MAX + 1);
    strcat(big, "/>");
    assert_int_equal(parse(big, &c, err), XRAY_ETOOBIG);
    memset(big, 0, STS_RESPONSE_MAX + 64);
    strcpy(big, "<R><Credentials><SessionToken>");
    memset(big + strlen(big), 'x', STS_VALUE_MAX + 1);
    strcat(big, "</SessionToken></Credentials></R>");
    assert_int_equal(parse(big, &c, err), XRAY_ETOOBIG);
    memset(big, ' ', STS_RESPONSE_MAX + 1);
    big[STS_RESPONSE_MAX + 1] = '\0';
    assert_int_equal(parse(big, &c, err), XRAY_ETOOBIG);
    free(big);
}

static void test_sts_parse_error(void **state)
{
    (void)state;
    char code[64], msg[STS_ERROR_TEXT_MAX + 1];
    assert_int_equal(
        sts_parse_error(aws_error, strlen(aws_error), code, sizeof(code), msg, sizeof(msg)), 0);
    assert_string_equal(code, "AccessDenied");
    const char *start = "User: arn:aws:iam::123456789012:user/xrayd is not authorized";
    assert_true(strncmp(msg, start, strlen(start)) == 0);
    /* Cut at STS_ERROR_TEXT_MAX, control characters replaced, first line only. */
    const char *ugly = "<ErrorResponse><Error><Code>Bad\x01"
                       "Code</Code><Message>line one&#10;line two"
                       "</Message></Error></ErrorResponse>";
    assert_int_equal(sts_parse_error(ugly, strlen(ugly), code, sizeof(code), msg, sizeof(msg)), 0);
    assert_string_equal(code, "Bad?Code");
    assert_string_equal(msg, "line one");
    assert_int_equal(sts_parse_error("<html>", 6, code, sizeof(code), msg, sizeof(msg)),
                     XRAY_EPARSE);
    assert_string_equal(code, "");
    assert_string_equal(msg, "");
}

/* ---- against a fake STS ---- */

struct sts_script {
    int status;
    const char *body;
};

static void sts_handler(struct fake_http *f, const struct fake_http_request *req,
                        struct fake_http_reply *rep)
{
    const struct sts_script *s = f->ctx;
    (void)req;
    rep->status = s->status;
    snprintf(rep->body, sizeof(rep->body), "%s", s->body);
}

/* Runs sts_assume_role to its answer. */
static int rig_sts(struct rig *r, const struct sts_request *req)
{
    aws_credentials_clear(&r->a.creds);
    memset(&r->a, 0, sizeof(r->a));
    sts_assume_role(req, rig_on_answer, &r->a);
    while (r->a.calls == 0)
        uv_run(&r->loop, UV_RUN_ONCE);
    return r->a.rc;
}

static void test_sts_assume_role_signed(void **state)
{
    (void)state;
    static struct fake_http fake;
    struct sts_script script = {200, moto_answer};
    fake_http_start(&fake, sts_handler, &script);
    struct rig r;
    rig_init(&r);
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", fake.port);
    struct aws_credentials src = {0};
    char err[XRAY_ERR_LEN];
    assert_int_equal(aws_credentials_set(&src, "ASIASOURCE", SECRET, "SRCTOKEN", "t", err), 0);
    const uint64_t now_ms = 1795304610123;
    struct sts_request req = {
        .http = r.http,
        .endpoint = endpoint,
        .region = "eu-west-1",
        .role_arn = "arn:aws:iam::123456789012:role/xray-writer",
        .session_name = "xrayd",
        .creds = &src,
        .now_ms = now_ms,
    };
    assert_int_equal(rig_sts(&r, &req), 0);
    assert_string_equal(r.a.creds.access_key_id, "ASIARZPUZDIKD6M2ESDZ");
    assert_int_equal(r.a.creds.expires_ms, 1795310568084ull);

    static struct fake_http_request got;
    fake_http_last(&fake, &got);
    char v[1024];
    assert_string_equal(got.method, "POST");
    assert_string_equal(got.path, "/");
    assert_string_equal(
        got.body, "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A"
                  "123456789012%3Arole%2Fxray-writer&RoleSessionName=xrayd&DurationSeconds=900");
    assert_string_equal(fake_http_header(&got, "Content-Type", v, sizeof(v)),
                        "application/x-www-form-urlencoded; charset=utf-8");
    assert_string_equal(fake_http_header(&got, "X-Amz-Security-Token", v, sizeof(v)), "SRCTOKEN");
    assert_string_equal(fake_http_header(&got, "X-Amz-Date", v, sizeof(v)), "20261121T234330Z");
    /* The signature is SigV4's for service "sts" over exactly what was sent. */
    char host[64];
    snprintf(host, sizeof(host), "127.0.0.1:%d", fake.port);
    const struct sigv4_header sh[] = {
        {"content-type", "application/x-www-form-urlencoded; charset=utf-8"}};
    const struct sigv4_request sr = {
        .method = "POST",
        .host = host,
        .path = "/",
        .headers = sh,
        .header_count = 1,
        .body = got.body,
        .body_len = got.body_len,
        .region = "eu-west-1",
        .service = "sts",
        .now_s = (int64_t)(now_ms / 1000),
    };
    struct sigv4_signature sig;
    assert_int_equal(sigv4_sign(&sr, &src, &sig, err), 0);
    assert_string_equal(fake_http_header(&got, "Authorization", v, sizeof(v)), sig.authorization);
    assert_non_null(strstr(v, "Credential=ASIASOURCE/20261121/eu-west-1/sts/aws4_request"));
    aws_credentials_clear(&src);

    /* An endpoint with a path prefix keeps it. */
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/sts", fake.port);
    assert_int_equal(aws_credentials_set(&src, "AKIDSOURCE", SECRET, NULL, "t", err), 0);
    assert_int_equal(rig_sts(&r, &req), 0);
    fake_http_last(&fake, &got);
    assert_string_equal(got.path, "/sts/");
    assert_string_equal(fake_http_header(&got, "X-Amz-Security-Token", v, sizeof(v)), "");
    aws_credentials_clear(&src);
    rig_finish(&r);
    fake_http_stop(&fake);
}

static void test_sts_error_answers(void **state)
{
    (void)state;
    static struct fake_http fake;
    struct sts_script script = {403, aws_error};
    fake_http_start(&fake, sts_handler, &script);
    struct rig r;
    rig_init(&r);
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", fake.port);
    struct sts_request req = {
        .http = r.http,
        .endpoint = endpoint,
        .region = "us-east-1",
        .role_arn = "arn:aws:iam::123456789012:role/r",
        .session_name = "xrayd",
        .web_identity_token = "eyJhbGciOiJSUzI1NiJ9.e30.sig",
        .now_ms = 1,
    };
    assert_int_equal(rig_sts(&r, &req), XRAY_EUPSTREAM);
    assert_true(strncmp(r.a.err,
                        "STS AssumeRoleWithWebIdentity: HTTP 403 AccessDenied: User: arn:aws:iam",
                        71) == 0);
    assert_null(strstr(r.a.err, "eyJhbGci"));

    script = (struct sts_script){200, "<html>busy</html>"};
    assert_int_equal(rig_sts(&r, &req), XRAY_EFIELD);
    script = (struct sts_script){200, "{\"json\": true}"};
    assert_int_equal(rig_sts(&r, &req), XRAY_EPARSE);
    script = (struct sts_script){500, "oops"};
    assert_int_equal(rig_sts(&r, &req), XRAY_EUPSTREAM);
    assert_non_null(strstr(r.a.err, "HTTP 500"));

    /* Bad requests never leave. */
    int before = fake_http_requests(&fake);
    req.session_name = "x";
    assert_int_equal(rig_sts(&r, &req), XRAY_ECONFIG);
    req.session_name = "xrayd";
    req.endpoint = "";
    assert_int_equal(rig_sts(&r, &req), XRAY_ECONFIG);
    req.endpoint = endpoint;
    req.web_identity_token = NULL; /* AssumeRole without credentials */
    assert_int_equal(rig_sts(&r, &req), XRAY_ECONFIG);
    assert_int_equal(fake_http_requests(&fake), before);
    rig_finish(&r);
    fake_http_stop(&fake);

    /* Nothing listens any more. */
    rig_init(&r);
    req.http = r.http;
    req.web_identity_token = "tok";
    assert_int_equal(rig_sts(&r, &req), -ECONNREFUSED);
    rig_finish(&r);
}

static char tmpdir[256];
static char token_path[320];

static void write_token(const char *text)
{
    FILE *f = fopen(token_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_sts_web_identity_provider(void **state)
{
    (void)state;
    static struct fake_http fake;
    struct sts_script script = {200, aws_web_answer};
    fake_http_start(&fake, sts_handler, &script);
    struct rig r;
    rig_init(&r);
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", fake.port);
    r.ctx.sts_endpoint = endpoint;
    const struct credentials_provider *p = &credentials_web_identity_provider;

    /* Half the pair: nothing here, no request. */
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/xray", 1);
    assert_int_equal(rig_load(&r, p, 1000), XRAY_ENOCREDS);
    assert_non_null(strstr(r.a.err, "AWS_WEB_IDENTITY_TOKEN_FILE not set"));

    /* The whole pair: unsigned AssumeRoleWithWebIdentity with the file's token. */
    write_token("eyJ0eXAi.first+token/=\n");
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token_path, 1);
    assert_int_equal(rig_load(&r, p, 1000), 0);
    assert_string_equal(r.a.creds.access_key_id, "ASIAWEBIDENTITY");
    assert_int_equal(r.a.creds.expires_ms, 1795312800000ull);
    static struct fake_http_request got;
    char v[256];
    fake_http_last(&fake, &got);
    assert_string_equal(got.body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn="
                                  "arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fxray&RoleSessionName="
                                  "xrayd&WebIdentityToken=eyJ0eXAi.first%2Btoken%2F%3D");
    assert_string_equal(fake_http_header(&got, "Authorization", v, sizeof(v)), "");

    /* The kubelet rotates the file: every load reads it again. A session name from
     * the environment is used. */
    write_token("second-token");
    setenv("AWS_ROLE_SESSION_NAME", "pod-7", 1);
    assert_int_equal(rig_load(&r, p, 2000), 0);
    fake_http_last(&fake, &got);
    assert_non_null(strstr(got.body, "&RoleSessionName=pod-7&WebIdentityToken=second-token"));
    unsetenv("AWS_ROLE_SESSION_NAME");

    /* The user meant this identity: an unreadable token file is an error, not a skip. */
    unlink(token_path);
    assert_int_equal(rig_load(&r, p, 3000), -ENOENT);
    assert_non_null(strstr(r.a.err, token_path));
    /* STS refusing the token is an error too, with STS's words. */
    write_token("expired-token");
    script = (struct sts_script){400, "<ErrorResponse><Error><Code>ExpiredTokenException</Code>"
                                      "<Message>Token expired</Message></Error></ErrorResponse>"};
    assert_int_equal(rig_load(&r, p, 4000), XRAY_EUPSTREAM);
    assert_non_null(strstr(r.a.err, "HTTP 400 ExpiredTokenException: Token expired"));
    assert_null(strstr(r.a.err, "expired-token"));
    unlink(token_path);
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_ROLE_ARN");
    rig_finish(&r);
    fake_http_stop(&fake);
}

/* Fetches from a chain on the rig's loop until the answer comes. */
struct fetched {
    int calls;
    int rc;
    char id[64];
    const char *source;
    char err[XRAY_ERR_LEN];
};

static void on_fetched(void *data, int rc, const struct aws_credentials *creds, const char *err)
{
    struct fetched *f = data;
    f->calls++;
    f->rc = rc;
    snprintf(f->id, sizeof(f->id), "%s", rc == 0 ? creds->access_key_id : "");
    f->source = rc == 0 ? creds->source : NULL;
    snprintf(f->err, sizeof(f->err), "%s", err != NULL ? err : "");
}

static struct fetched fetch(struct rig *r, struct credentials_chain *chain, uint64_t now_ms)
{
    struct fetched f = {0};
    assert_int_equal(credentials_chain_fetch(chain, now_ms, on_fetched, &f), 0);
    while (f.calls == 0)
        uv_run(&r->loop, UV_RUN_ONCE);
    assert_int_equal(f.calls, 1);
    return f;
}

static void test_sts_chain_with_role(void **state)
{
    (void)state;
    static struct fake_http fake;
    struct sts_script script = {200, moto_answer};
    fake_http_start(&fake, sts_handler, &script);
    struct rig r;
    rig_init(&r);
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", fake.port);
    setenv("AWS_ACCESS_KEY_ID", "AKIDUSER", 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    const struct credentials_provider *list[] = {&credentials_env_provider};
    struct credentials_options o = {
        .providers = list,
        .count = 1,
        .http = r.http,
        .region = "us-east-1",
        .sts_endpoint = endpoint,
        .role_arn = "arn:aws:iam::123456789012:role/r",
    };
    struct credentials_chain *chain = credentials_chain_create(&o);
    assert_non_null(chain);
    uint64_t now = 1795304610000; /* the answer expires 1795310568084 */
    struct fetched f = fetch(&r, chain, now);
    assert_int_equal(f.rc, 0);
    assert_string_equal(f.id, "ASIARZPUZDIKD6M2ESDZ");
    assert_string_equal(f.source, "assume-role");
    static struct fake_http_request got;
    char v[1024];
    fake_http_last(&fake, &got);
    assert_non_null(strstr(fake_http_header(&got, "Authorization", v, sizeof(v)),
                           "Credential=AKIDUSER/20261121/us-east-1/sts/aws4_request"));
    assert_non_null(strstr(got.body, "RoleSessionName=xrayd"));
    /* Cached: no second AssumeRole until the refresh window. */
    f = fetch(&r, chain, now + 60000);
    assert_int_equal(fake_http_requests(&fake), 1);
    credentials_chain_destroy(chain);

    /* STS says no: the error names the provider and STS's answer, no secret. */
    script = (struct sts_script){403, aws_error};
    chain = credentials_chain_create(&o);
    f = fetch(&r, chain, now);
    assert_int_equal(f.rc, XRAY_EUPSTREAM);
    assert_true(strncmp(f.err, "assume-role: STS AssumeRole: HTTP 403 AccessDenied: ", 52) == 0);
    assert_null(strstr(f.err, SECRET));
    credentials_chain_destroy(chain);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    rig_finish(&r);
    fake_http_stop(&fake);
}

static int group_setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/xrayd-sts-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(token_path, sizeof(token_path), "%s/token", tmpdir);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
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
        cmocka_unit_test(test_sts_parse_credentials_recorded),
        cmocka_unit_test(test_sts_parse_credentials_entities),
        cmocka_unit_test(test_sts_parse_credentials_hostile),
        cmocka_unit_test(test_sts_parse_error),
        cmocka_unit_test(test_sts_assume_role_signed),
        cmocka_unit_test(test_sts_error_answers),
        cmocka_unit_test(test_sts_web_identity_provider),
        cmocka_unit_test(test_sts_chain_with_role),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
