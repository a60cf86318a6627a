/* SPDX-License-Identifier: Apache-2.0 */
/* The asynchronous credential chain: order, caching, callers queued behind one load
 * (and the queue's bound), refresh in the background before expiry with the old
 * credentials served meanwhile, short sessions, the retry delay, the default order and
 * errors that name every source without a secret. Time is a parameter throughout;
 * providers are fakes the test answers by hand. Files live in a temporary HOME. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "aws/credentials.h"

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
    char path[512];
    snprintf(path, sizeof(path), "%s/.aws/credentials", home);
    unlink(path);
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

static void assert_no_secret(const char *err)
{
    assert_null(strstr(err, SECRET));
    assert_null(strstr(err, TOKEN));
    assert_null(strstr(err, "SECRETKEY"));
}

/* A provider the test drives: it answers at once, or (async) when fake_answer says. */
struct fake {
    struct credentials_provider base; /* first: the chain hands this back to load */
    int rc;
    int loads;
    uint64_t lifetime_ms; /* 0 = long-term keys */
    const char *id;
    bool async;
    /* the load waiting for fake_answer */
    void (*done)(void *data, int rc, const struct aws_credentials *creds, const char *err);
    void *data;
    uint64_t now_ms;
};

static void fake_reply(struct fake *f)
{
    struct aws_credentials c = {0};
    char err[XRAY_ERR_LEN] = "";
    int rc = f->rc;
    if (rc != 0) {
        snprintf(err, sizeof(err), "%s failed on purpose", f->base.name);
    } else {
        assert_int_equal(aws_credentials_set(&c, f->id, SECRET, TOKEN, f->base.name, err), 0);
        c.expires_ms = f->lifetime_ms != 0 ? f->now_ms + f->lifetime_ms : 0;
    }
    void (*done)(void *, int, const struct aws_credentials *, const char *) = f->done;
    f->done = NULL;
    done(f->data, rc, rc == 0 ? &c : NULL, err);
    aws_credentials_clear(&c);
}

static void fake_load(const struct credentials_provider *self,
                      const struct credentials_context *ctx, uint64_t now_ms,
                      void (*done)(void *data, int rc, const struct aws_credentials *creds,
                                   const char *err),
                      void *data)
{
    struct fake *f = (struct fake *)(uintptr_t)self;
    (void)ctx;
    assert_null(f->done); /* one load at a time */
    f->loads++;
    f->done = done;
    f->data = data;
    f->now_ms = now_ms;
    if (!f->async)
        fake_reply(f);
}

/* The asynchronous fake's answer arrives. */
static void fake_answer(struct fake *f, int rc, const char *id)
{
    assert_non_null(f->done);
    f->rc = rc;
    f->id = id;
    fake_reply(f);
}

/* What one fetch's callback saw. */
struct got {
    int calls;
    int rc;
    char id[64];
    uint64_t expires_ms;
    const char *source;
    char err[XRAY_ERR_LEN];
};

static void on_got(void *data, int rc, const struct aws_credentials *creds, const char *err)
{
    struct got *g = data;
    g->calls++;
    g->rc = rc;
    g->id[0] = '\0';
    g->source = NULL;
    if (rc == 0) {
        snprintf(g->id, sizeof(g->id), "%s", creds->access_key_id);
        g->expires_ms = creds->expires_ms;
        g->source = creds->source;
        assert_string_equal(creds->secret_access_key, SECRET);
    } else {
        assert_null(creds);
    }
    snprintf(g->err, sizeof(g->err), "%s", err != NULL ? err : "");
}

/* A fetch that must answer before it returns. */
static struct got get(struct credentials_chain *chain, uint64_t now_ms)
{
    struct got g = {0};
    assert_int_equal(credentials_chain_fetch(chain, now_ms, on_got, &g), 0);
    assert_int_equal(g.calls, 1);
    return g;
}

static struct credentials_chain *chain_of(const struct credentials_provider *const *list, int n)
{
    struct credentials_options o = {.providers = list, .count = n};
    return credentials_chain_create(&o);
}

static void test_credentials_chain_order_and_errors(void **state)
{
    (void)state;
    struct fake a = {
        .base = {"first", fake_load}, .rc = XRAY_ENOCREDS, .lifetime_ms = 0, .id = "AKIDA"};
    struct fake b = {.base = {"second", fake_load}, .rc = 0, .lifetime_ms = 0, .id = "AKIDB"};
    struct fake c = {.base = {"third", fake_load}, .rc = 0, .lifetime_ms = 0, .id = "AKIDC"};
    const struct credentials_provider *list[] = {&a.base, &b.base, &c.base};
    struct credentials_chain *chain = chain_of(list, 3);
    assert_non_null(chain);
    struct got g = get(chain, 1000);
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.id, "AKIDB");
    assert_string_equal(g.source, "second");
    assert_int_equal(c.loads, 0);
    /* Cached: long-term keys are not loaded again. */
    assert_int_equal(get(chain, 1000000000).rc, 0);
    assert_int_equal(b.loads, 1);
    /* invalidate forces a reload. */
    credentials_chain_invalidate(chain);
    assert_int_equal(get(chain, 1000000000).rc, 0);
    assert_int_equal(b.loads, 2);
    credentials_chain_destroy(chain);

    /* Nobody has any: the error names every source and its reason. */
    b.rc = XRAY_ENOCREDS;
    c.rc = XRAY_ENOCREDS;
    a.loads = 0;
    chain = chain_of(list, 3);
    g = get(chain, 1000);
    assert_int_equal(g.rc, XRAY_ENOCREDS);
    assert_non_null(strstr(g.err, "first (first failed on purpose)"));
    assert_non_null(strstr(g.err, "second"));
    assert_non_null(strstr(g.err, "third"));
    /* Within the retry window nothing is loaded again; after it, everything is. */
    g = get(chain, 1000 + CREDENTIALS_RETRY_MS - 1);
    assert_int_equal(g.rc, XRAY_ENOCREDS);
    assert_int_equal(a.loads, 1);
    assert_non_null(strstr(g.err, "third"));
    assert_int_equal(get(chain, 1000 + CREDENTIALS_RETRY_MS).rc, XRAY_ENOCREDS);
    assert_int_equal(a.loads, 2);
    credentials_chain_destroy(chain);

    /* A provider that applies but fails stops the chain. */
    b.rc = XRAY_EUPSTREAM;
    c.rc = 0;
    c.loads = 0;
    chain = chain_of(list, 3);
    g = get(chain, 1000);
    assert_int_equal(g.rc, XRAY_EUPSTREAM);
    assert_true(strncmp(g.err, "second: ", 8) == 0);
    assert_int_equal(c.loads, 0);
    credentials_chain_destroy(chain);

    assert_null(chain_of(list, 0));
    assert_null(chain_of(list, CREDENTIALS_PROVIDERS_MAX + 1));
}

static void test_credentials_chain_queues_callers(void **state)
{
    (void)state;
    struct fake f = {.base = {"slow", fake_load}, .rc = 0, .lifetime_ms = 0, .id = NULL};
    f.async = true;
    const struct credentials_provider *list[] = {&f.base};
    struct credentials_chain *chain = chain_of(list, 1);
    struct got g[3] = {{0}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(credentials_chain_fetch(chain, 5000 + (uint64_t)i, on_got, &g[i]), 0);
    /* One load for all three, and nobody answered before it ends. */
    assert_int_equal(f.loads, 1);
    assert_true(credentials_chain_loading(chain));
    for (int i = 0; i < 3; i++)
        assert_int_equal(g[i].calls, 0);
    fake_answer(&f, 0, "AKIDSLOW");
    assert_false(credentials_chain_loading(chain));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].rc, 0);
        assert_string_equal(g[i].id, "AKIDSLOW");
    }
    /* Cached now: at once, no load. */
    assert_string_equal(get(chain, 6000).id, "AKIDSLOW");
    assert_int_equal(f.loads, 1);

    /* A failed load answers every queued caller with its error. */
    credentials_chain_invalidate(chain);
    struct got h[2] = {{0}};
    assert_int_equal(credentials_chain_fetch(chain, 7000, on_got, &h[0]), 0);
    assert_int_equal(credentials_chain_fetch(chain, 7001, on_got, &h[1]), 0);
    assert_int_equal(f.loads, 2);
    fake_answer(&f, XRAY_ETIMEOUT, NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(h[i].rc, XRAY_ETIMEOUT);
        assert_string_equal(h[i].err, "slow: slow failed on purpose");
    }

    /* The queue is bounded: one caller too many is refused, and never called. */
    struct got *many = calloc(CREDENTIALS_WAITERS_MAX + 1, sizeof(*many));
    assert_non_null(many);
    uint64_t t = 7000 + CREDENTIALS_RETRY_MS;
    for (int i = 0; i < (int)CREDENTIALS_WAITERS_MAX; i++)
        assert_int_equal(credentials_chain_fetch(chain, t, on_got, &many[i]), 0);
    assert_int_equal(credentials_chain_fetch(chain, t, on_got, &many[CREDENTIALS_WAITERS_MAX]),
                     XRAY_EFULL);
    assert_int_equal(f.loads, 3);
    fake_answer(&f, 0, "AKIDMANY");
    for (int i = 0; i < (int)CREDENTIALS_WAITERS_MAX; i++)
        assert_string_equal(many[i].id, "AKIDMANY");
    assert_int_equal(many[CREDENTIALS_WAITERS_MAX].calls, 0);
    free(many);
    credentials_chain_destroy(chain);
}

/* A caller that fetches again from inside its callback, as xray_call's callers do. */
struct refetch {
    struct credentials_chain *chain;
    struct got inner;
    int calls;
};

static void on_refetch(void *data, int rc, const struct aws_credentials *creds, const char *err)
{
    struct refetch *r = data;
    (void)creds, (void)err;
    r->calls++;
    assert_int_equal(rc, 0);
    assert_int_equal(credentials_chain_fetch(r->chain, 9000, on_got, &r->inner), 0);
}

static void test_credentials_chain_refresh_in_background(void **state)
{
    (void)state;
    const uint64_t hour = 3600 * 1000;
    struct fake t = {.base = {"temp", fake_load}, .rc = 0, .lifetime_ms = hour, .id = NULL};
    t.async = true;
    const struct credentials_provider *list[] = {&t.base};
    struct credentials_chain *chain = chain_of(list, 1);
    uint64_t t0 = 1795304610000;
    struct refetch rf = {chain, {0}, 0};
    assert_int_equal(credentials_chain_fetch(chain, t0, on_refetch, &rf), 0);
    fake_answer(&t, 0, "ASIAOLD");
    assert_int_equal(rf.calls, 1);
    assert_string_equal(rf.inner.id, "ASIAOLD"); /* the re-fetch got the new cache at once */
    struct got g = get(chain, t0);
    assert_int_equal(g.expires_ms, t0 + hour);
    assert_int_equal(t.loads, 1);

    /* Up to the refresh window: nothing loads. */
    uint64_t edge = t0 + hour - CREDENTIALS_REFRESH_BEFORE_MS;
    assert_string_equal(get(chain, edge - 1).id, "ASIAOLD");
    assert_int_equal(t.loads, 1);
    /* In it: a refresh starts, and callers keep getting the old credentials at once
     * while it runs -- no upload waits for it. */
    assert_string_equal(get(chain, edge).id, "ASIAOLD");
    assert_int_equal(t.loads, 2);
    assert_true(credentials_chain_loading(chain));
    assert_string_equal(get(chain, edge + 10).id, "ASIAOLD");
    assert_int_equal(t.loads, 2); /* one refresh at a time */
    fake_answer(&t, 0, "ASIANEW");
    g = get(chain, edge + 20);
    assert_string_equal(g.id, "ASIANEW");
    assert_int_equal(g.expires_ms, edge + hour); /* from the time the refresh started */

    /* A failed refresh keeps the old credentials until they really expire, and is not
     * retried for CREDENTIALS_RETRY_MS. */
    uint64_t exp = g.expires_ms;
    uint64_t edge2 = exp - CREDENTIALS_REFRESH_BEFORE_MS;
    assert_string_equal(get(chain, edge2).id, "ASIANEW");
    assert_int_equal(t.loads, 3);
    fake_answer(&t, XRAY_EUPSTREAM, NULL);
    assert_string_equal(get(chain, edge2 + CREDENTIALS_RETRY_MS - 1).id, "ASIANEW");
    assert_int_equal(t.loads, 3);
    assert_string_equal(get(chain, edge2 + CREDENTIALS_RETRY_MS).id, "ASIANEW");
    assert_int_equal(t.loads, 4);
    fake_answer(&t, XRAY_EUPSTREAM, NULL);
    /* Expired: callers wait for a load and get its failure. */
    struct got w = {0};
    assert_int_equal(credentials_chain_fetch(chain, exp, on_got, &w), 0);
    assert_int_equal(w.calls, 0);
    assert_int_equal(t.loads, 5);
    fake_answer(&t, XRAY_EUPSTREAM, NULL);
    assert_int_equal(w.rc, XRAY_EUPSTREAM);
    assert_no_secret(w.err);
    g = get(chain, exp + 1); /* inside the retry window: the failure, at once */
    assert_int_equal(g.rc, XRAY_EUPSTREAM);
    assert_int_equal(t.loads, 5);
    credentials_chain_destroy(chain);
}

static void test_credentials_chain_short_sessions(void **state)
{
    (void)state;
    /* A session shorter than twice the refresh window is refreshed at half its life,
     * not on every call. */
    struct fake t = {
        .base = {"short", fake_load}, .rc = 0, .lifetime_ms = 60000, .id = "ASIASHORT"};
    const struct credentials_provider *list[] = {&t.base};
    struct credentials_chain *chain = chain_of(list, 1);
    assert_int_equal(get(chain, 100000).rc, 0);
    assert_int_equal(get(chain, 100000 + 29999).rc, 0);
    assert_int_equal(t.loads, 1);
    assert_int_equal(get(chain, 100000 + 30000).expires_ms, 100000 + 30000 + 60000);
    assert_int_equal(t.loads, 2);
    credentials_chain_destroy(chain);
}

static void test_credentials_chain_default_order(void **state)
{
    (void)state;
    write_file(".aws/credentials", "[default]\naws_access_key_id = AKIDFILE\n"
                                   "aws_secret_access_key = " SECRET "\n");
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    struct credentials_chain *chain = credentials_chain_create(NULL);
    assert_string_equal(get(chain, 1).id, "AKIDENV");
    credentials_chain_destroy(chain);

    unsetenv("AWS_ACCESS_KEY_ID");
    chain = credentials_chain_create(NULL);
    struct got g = get(chain, 1);
    assert_string_equal(g.id, "AKIDFILE");
    assert_string_equal(g.source, "profile");
    credentials_chain_destroy(chain);

    /* Nothing anywhere: the error names every source in the documented order. */
    remove_files();
    unsetenv("AWS_SECRET_ACCESS_KEY");
    chain = credentials_chain_create(NULL);
    g = get(chain, 1);
    assert_int_equal(g.rc, XRAY_ENOCREDS);
    const char *order[] = {"env (", "web-identity (", "profile (", "ecs (", "imds ("};
    const char *at = g.err;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *p = strstr(g.err, order[i]);
        assert_non_null(p);
        assert_true(p >= at);
        at = p;
    }
    assert_non_null(strstr(g.err, "AWS_EC2_METADATA_DISABLED"));
    assert_null(strstr(g.err, "...")); /* the whole list fits XRAY_ERR_LEN */
    assert_no_secret(g.err);
    credentials_chain_destroy(chain);

    /* Web identity ahead of the shared files: with its variables set and no network
     * (no HTTP client here), it is the one that answers, with an error. */
    write_file(".aws/credentials", "[default]\naws_access_key_id = AKIDFILE\n"
                                   "aws_secret_access_key = f\n");
    char path[512];
    snprintf(path, sizeof(path), "%s/.aws/credentials", home);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
    chain = credentials_chain_create(NULL);
    g = get(chain, 1);
    assert_int_equal(g.rc, XRAY_ECONFIG);
    assert_true(strncmp(g.err, "web-identity: ", 14) == 0);
    assert_no_secret(g.err);
    credentials_chain_destroy(chain);
}

static void test_credentials_chain_role_source_errors(void **state)
{
    (void)state;
    /* With a role and nothing to sign AssumeRole with, the answer says so through the
     * one provider that asks STS, listing what the ordinary chain tried. */
    struct credentials_options o = {.role_arn = "arn:aws:iam::123456789012:role/r"};
    struct credentials_chain *chain = credentials_chain_create(&o);
    struct got g = get(chain, 1);
    assert_int_equal(g.rc, XRAY_ENOCREDS);
    assert_true(strncmp(g.err, "assume-role: no AWS credentials; tried env (", 44) == 0);
    credentials_chain_destroy(chain);
}

static int group_setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(home, sizeof(home), "%s/xrayd-chain-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
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
        cmocka_unit_test_setup(test_credentials_chain_order_and_errors, setup),
        cmocka_unit_test_setup(test_credentials_chain_queues_callers, setup),
        cmocka_unit_test_setup(test_credentials_chain_refresh_in_background, setup),
        cmocka_unit_test_setup(test_credentials_chain_short_sessions, setup),
        cmocka_unit_test_setup(test_credentials_chain_default_order, setup),
        cmocka_unit_test_setup(test_credentials_chain_role_source_errors, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
