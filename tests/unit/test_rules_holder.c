/* SPDX-License-Identifier: Apache-2.0 */
/* The rules holder: a bad file never replaces the rules in force (broken JSON, an
 * invalid rule, a missing file), an unchanged file changes nothing, a new one reaches
 * the mailbox and the callback; a file replaced on disk is reloaded by the watch. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "sampler/rules_holder.h"

static const char *V2_A = "{\"version\":2,\"default\":{\"fixed_target\":1,\"rate\":0.05},"
                          "\"rules\":[{\"description\":\"health\",\"host\":\"*\","
                          "\"http_method\":\"GET\",\"url_path\":\"/health\",\"fixed_target\":0,"
                          "\"rate\":0.0}]}";
static const char *V2_B = "{\"version\":2,\"default\":{\"fixed_target\":2,\"rate\":0.1},"
                          "\"rules\":[{\"description\":\"health\",\"host\":\"*\","
                          "\"http_method\":\"GET\",\"url_path\":\"/health\",\"fixed_target\":0,"
                          "\"rate\":0.0},{\"description\":\"api\",\"host\":\"*\","
                          "\"http_method\":\"*\",\"url_path\":\"/api/*\",\"fixed_target\":3,"
                          "\"rate\":0.2}]}";
static const char *BAD_RATE = "{\"version\":2,\"default\":{\"fixed_target\":1,\"rate\":2.5}}";

struct rig {
    uv_loop_t loop;
    uv_timer_t watchdog, writer;
    char dir[64], path[96];
    struct rules_holder *h;
    struct rules_mailbox mb;
    int changes;
    size_t last_count;
};

static void on_change(struct xray_sampling_rules *rules, void *data)
{
    struct rig *r = data;
    r->changes++;
    r->last_count = xray_sampling_rules_count(rules);
}

static void write_file(const char *path, const char *text)
{
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0); /* as editors and config managers do */
}

static void rig_open(struct rig *r, const char *text)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    snprintf(r->dir, sizeof(r->dir), "/tmp/xrayd-rules-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->path, sizeof(r->path), "%s/sampling.json", r->dir);
    write_file(r->path, text);
    char err[XRAY_ERR_LEN] = "";
    struct rules_holder_options o = {
        .loop = &r->loop, .path = r->path, .on_change = on_change, .data = r};
    if (rules_holder_create(&r->h, &o, err) != 0)
        fail_msg("create: %s", err);
    rules_mailbox_init(&r->mb);
    assert_int_equal(rules_holder_subscribe(r->h, &r->mb), 0);
}

static void rig_close(struct rig *r)
{
    rules_holder_close(r->h, NULL, NULL);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    rules_mailbox_clear(&r->mb);
    unlink(r->path);
    rmdir(r->dir);
}

static void test_rules_holder_bad_file_keeps_rules(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r, V2_A);
    struct xray_sampling_rules *first = rules_mailbox_take(&r.mb);
    assert_non_null(first);
    assert_ptr_equal(first, rules_holder_rules(r.h));
    assert_int_equal(xray_sampling_rules_count(first), 2);

    static const char *const bad[] = {"{\"version\":2,\"default\":", "[]", NULL};
    for (int i = 0; i < 3; i++) {
        write_file(r.path, bad[i] != NULL ? bad[i] : BAD_RATE);
        assert_true(rules_holder_reload(r.h, "test") < 0);
        assert_ptr_equal(rules_holder_rules(r.h), first);
        assert_null(rules_mailbox_take(&r.mb));
    }
    unlink(r.path);
    assert_true(rules_holder_reload(r.h, "test") < 0);
    assert_ptr_equal(rules_holder_rules(r.h), first);

    /* The same bytes again: nothing changes, nobody is told. */
    write_file(r.path, V2_A);
    assert_int_equal(rules_holder_reload(r.h, "test"), 0);
    assert_ptr_equal(rules_holder_rules(r.h), first);
    assert_int_equal(r.changes, 0);

    write_file(r.path, V2_B);
    assert_int_equal(rules_holder_reload(r.h, "test"), 1);
    assert_int_equal(r.changes, 1);
    assert_int_equal(r.last_count, 3);
    struct xray_sampling_rules *next = rules_mailbox_take(&r.mb);
    assert_non_null(next);
    assert_ptr_equal(next, rules_holder_rules(r.h));
    assert_true(xray_sampling_rules_find(next, "api") >= 0);

    struct rules_holder_stats st;
    rules_holder_get_stats(r.h, &st);
    assert_int_equal(st.reloads, 6);
    assert_int_equal(st.failures, 4);
    assert_int_equal(st.changes, 1);
    xray_sampling_rules_free(first);
    xray_sampling_rules_free(next);
    rig_close(&r);
}

static void test_rules_holder_create_refuses_bad_file(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char err[XRAY_ERR_LEN] = "";
    struct rules_holder *h = NULL;
    struct rules_holder_options o = {.loop = &loop, .path = "/nonexistent/xrayd/rules.json"};
    assert_int_equal(rules_holder_create(&h, &o, err), XRAY_ECONFIG);
    assert_null(h);
    assert_non_null(strstr(err, "/nonexistent/xrayd/rules.json"));

    char dir[64], path[96];
    snprintf(dir, sizeof(dir), "/tmp/xrayd-rules-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/r.json", dir);
    write_file(path, BAD_RATE);
    o.path = path;
    assert_int_equal(rules_holder_create(&h, &o, err), XRAY_ECONFIG);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "rate"));
    unlink(path);
    rmdir(dir);

    /* No file: the built-in Default rule, and nothing to reload. */
    o.path = "";
    assert_int_equal(rules_holder_create(&h, &o, err), 0);
    assert_int_equal(xray_sampling_rules_count(rules_holder_rules(h)), 1);
    assert_string_equal(xray_sampling_rules_get(rules_holder_rules(h), 0)->name, "Default");
    assert_int_equal(rules_holder_reload(h, "test"), 0);
    assert_int_equal(rules_holder_watch(h), 0);
    rules_holder_close(h, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the changed file was not reloaded");
}

static void on_write(uv_timer_t *t)
{
    struct rig *r = t->data;
    write_file(r->path, V2_B);
}

static void test_rules_holder_watch_reloads_changed_file(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r, V2_A);
    assert_int_equal(rules_holder_watch(r.h), 0);
    uv_timer_init(&r.loop, &r.watchdog);
    uv_timer_init(&r.loop, &r.writer);
    r.writer.data = &r;
    uv_timer_start(&r.watchdog, on_watchdog, 10000, 0);
    uv_timer_start(&r.writer, on_write, 100, 0);
    while (r.changes == 0)
        uv_run(&r.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&r.watchdog, NULL);
    uv_close((uv_handle_t *)&r.writer, NULL);
    rules_holder_close(r.h, NULL, NULL);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&r.loop), 0);
    assert_int_equal(r.changes, 1);
    assert_int_equal(r.last_count, 3);
    struct xray_sampling_rules *got = rules_mailbox_take(&r.mb);
    assert_non_null(got);
    assert_int_equal(xray_sampling_rules_count(got), 3);
    xray_sampling_rules_free(got);
    unlink(r.path);
    rmdir(r.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_holder_bad_file_keeps_rules),
        cmocka_unit_test(test_rules_holder_create_refuses_bad_file),
        cmocka_unit_test(test_rules_holder_watch_reloads_changed_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
