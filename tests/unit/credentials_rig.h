/* SPDX-License-Identifier: Apache-2.0 */
/* A loop, an HTTP client and a watchdog for testing credential providers that answer
 * on the loop: rig_load() starts one load and runs the loop until its answer came,
 * keeping a copy of what it said. Include after cmocka.h. Header-only. */
#ifndef XRAYD_TEST_CREDENTIALS_RIG_H
#define XRAYD_TEST_CREDENTIALS_RIG_H

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "aws/credentials.h"
#include "http/client.h"

struct rig_answer {
    int calls;
    int rc;
    struct aws_credentials creds; /* a copy, owned */
    char err[XRAY_ERR_LEN];
};

struct rig {
    uv_loop_t loop;
    uv_timer_t watchdog;
    struct http_client *http;
    struct credentials_context ctx;
    struct rig_answer a;
    int closed;
};

static inline void rig_on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the test did not finish in time");
}

static inline void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(uv_timer_init(&r->loop, &r->watchdog), 0);
    assert_int_equal(uv_timer_start(&r->watchdog, rig_on_watchdog, 20000, 0), 0);
    r->http = http_client_create(&r->loop, NULL);
    assert_non_null(r->http);
    r->ctx.http = r->http;
    r->ctx.region = "us-east-1";
    r->ctx.sts_endpoint = "";
    r->ctx.role_arn = "";
}

static inline void rig_on_answer(void *data, int rc, const struct aws_credentials *creds,
                                 const char *err)
{
    struct rig_answer *a = data;
    a->calls++;
    a->rc = rc;
    aws_credentials_clear(&a->creds);
    if (rc == 0)
        assert_int_equal(aws_credentials_copy(&a->creds, creds), 0);
    snprintf(a->err, sizeof(a->err), "%s", err != NULL ? err : "");
}

/* Runs one load of p to its answer; returns its rc. */
static inline int rig_load(struct rig *r, const struct credentials_provider *p, uint64_t now_ms)
{
    aws_credentials_clear(&r->a.creds);
    memset(&r->a, 0, sizeof(r->a));
    p->load(p, &r->ctx, now_ms, rig_on_answer, &r->a);
    while (r->a.calls == 0)
        uv_run(&r->loop, UV_RUN_ONCE);
    assert_int_equal(r->a.calls, 1);
    return r->a.rc;
}

static inline void rig_on_closed(void *data)
{
    *(int *)data = 1;
}

static inline void rig_finish(struct rig *r)
{
    aws_credentials_clear(&r->a.creds);
    http_client_close(r->http, rig_on_closed, &r->closed);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_true(r->closed);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

static inline uint64_t rig_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline uint64_t rig_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
