/* SPDX-License-Identifier: Apache-2.0 */
/* The document pool: exact byte accounting, refusal over budget, bytes coming back on
 * free, and the default budget read from fake cgroup trees (v2, v1, nested, none)
 * built in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/pool.h"

#define GIB (UINT64_C(1) << 30)

static void test_pool_alloc_accounting(void **state)
{
    (void)state;
    struct pool *pool = pool_create(1 << 20);
    assert_non_null(pool);
    assert_int_equal(pool_max_bytes(pool), 1 << 20);
    assert_int_equal(pool_used_bytes(pool), 0);

    const char body[] = "{\"id\":\"1\"}";
    struct doc *a = pool_alloc(pool, body, sizeof(body) - 1, 1234);
    assert_non_null(a);
    assert_int_equal(a->len, sizeof(body) - 1);
    assert_memory_equal(a->data, body, sizeof(body) - 1);
    assert_int_equal(a->received_ms, 1234);
    assert_int_equal(a->reject, -1);
    assert_int_equal(a->flags, 0);
    assert_int_equal(a->attempts, 0);
    assert_null(a->next);
    assert_string_equal(a->trace_id, "");
    assert_string_equal(a->id, "");
    assert_int_equal(pool_used_bytes(pool), sizeof(struct doc) + sizeof(body) - 1);
    assert_int_equal(pool_doc_count(pool), 1);

    struct doc *b = pool_alloc(pool, "x", 1, 0);
    struct doc *c = pool_alloc(pool, "", 0, 0); /* an empty document is still a header */
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(pool_used_bytes(pool), 3 * sizeof(struct doc) + sizeof(body) - 1 + 1);
    assert_int_equal(pool_doc_count(pool), 3);

    pool_free(pool, b);
    assert_int_equal(pool_used_bytes(pool), 2 * sizeof(struct doc) + sizeof(body) - 1);
    pool_free(pool, a);
    pool_free(pool, c);
    pool_free(pool, NULL);
    assert_int_equal(pool_used_bytes(pool), 0);
    assert_int_equal(pool_doc_count(pool), 0);
    pool_destroy(pool);
}

static void test_pool_alloc_over_budget(void **state)
{
    (void)state;
    char body[1000];
    memset(body, 'a', sizeof(body));
    size_t one = pool_doc_bytes(sizeof(body));
    struct pool *pool = pool_create(3 * one);
    struct doc *d[3];
    for (int i = 0; i < 3; i++)
        assert_non_null(d[i] = pool_alloc(pool, body, sizeof(body), 0));
    assert_int_equal(pool_used_bytes(pool), 3 * one); /* exactly full */
    assert_null(pool_alloc(pool, body, sizeof(body), 0));
    assert_null(pool_alloc(pool, body, 1, 0));
    assert_null(pool_alloc(pool, body, 0, 0));
    assert_int_equal(pool_used_bytes(pool), 3 * one);
    assert_int_equal(pool_doc_count(pool), 3);

    /* Freeing one makes room for exactly one again, no more. */
    pool_free(pool, d[1]);
    assert_null(pool_alloc(pool, body, sizeof(body) + 1, 0));
    assert_non_null(d[1] = pool_alloc(pool, body, sizeof(body), 0));
    assert_null(pool_alloc(pool, body, 0, 0));
    for (int i = 0; i < 3; i++)
        pool_free(pool, d[i]);
    assert_int_equal(pool_used_bytes(pool), 0);

    /* A document larger than the whole budget never fits. */
    assert_null(pool_alloc(pool, body, 4 * one, 0));
    pool_destroy(pool);

    struct pool *tiny = pool_create(sizeof(struct doc) - 1);
    assert_null(pool_alloc(tiny, "", 0, 0));
    assert_int_equal(pool_used_bytes(tiny), 0);
    pool_destroy(tiny);
}

/* A fake cgroup tree under a fresh temporary directory. */
struct fake {
    char root[256];
};

static void fake_write(struct fake *f, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", f->root, rel);
    /* Make the parent directories. */
    for (char *p = path + strlen(f->root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void fake_path(struct fake *f, const char *rel, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", f->root, rel);
}

static int fake_setup(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->root, sizeof(f->root), "%s/test_pool.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(f->root) == NULL)
        return -1;
    *state = f;
    return 0;
}

static int fake_remove(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int fake_teardown(void **state)
{
    struct fake *f = *state;
    int rc = nftw(f->root, fake_remove, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

static void test_pool_default_bytes_v2_number(void **state)
{
    struct fake *f = *state;
    fake_write(f, "cg/memory.max", "1073741824\n"); /* 1 GiB */
    char root[512];
    fake_path(f, "cg", root, sizeof(root));
    assert_int_equal(pool_default_bytes_at(root, NULL, 64 * GIB), GIB / 100);
}

static void test_pool_default_bytes_v2_max(void **state)
{
    struct fake *f = *state;
    fake_write(f, "cg/memory.max", "max\n");
    /* A v1 file beside it must not be read: v2 answered. */
    fake_write(f, "cg/memory/memory.limit_in_bytes", "1073741824\n");
    char root[512];
    fake_path(f, "cg", root, sizeof(root));
    assert_int_equal(pool_default_bytes_at(root, NULL, 16 * GIB), 16 * GIB / 100);
}

static void test_pool_default_bytes_v2_nested(void **state)
{
    struct fake *f = *state;
    /* The process sits in a service under a slice; the slice sets the tighter limit. */
    fake_write(f, "cg/memory.max", "max\n");
    fake_write(f, "cg/system.slice/memory.max", "536870912\n"); /* 512 MiB */
    fake_write(f, "cg/system.slice/xrayd.service/memory.max", "max\n");
    fake_write(f, "self", "0::/system.slice/xrayd.service\n");
    char root[512], self[512];
    fake_path(f, "cg", root, sizeof(root));
    fake_path(f, "self", self, sizeof(self));
    assert_int_equal(pool_default_bytes_at(root, self, 64 * GIB), 536870912 / 100);

    /* A tighter limit on the service itself wins. */
    fake_write(f, "cg/system.slice/xrayd.service/memory.max", "419430400\n"); /* 400 MiB */
    assert_int_equal(pool_default_bytes_at(root, self, 64 * GIB), 419430400 / 100);
}

static void test_pool_default_bytes_v1(void **state)
{
    struct fake *f = *state;
    fake_write(f, "cg/memory/memory.limit_in_bytes", "2147483648\n"); /* 2 GiB */
    char root[512];
    fake_path(f, "cg", root, sizeof(root));
    assert_int_equal(pool_default_bytes_at(root, NULL, 64 * GIB), 2 * GIB / 100);

    /* The unlimited v1 value is absurdly large: host RAM decides. */
    fake_write(f, "cg/memory/memory.limit_in_bytes", "9223372036854771712\n");
    assert_int_equal(pool_default_bytes_at(root, NULL, 8 * GIB), 8 * GIB / 100);

    /* A container whose /proc/self/cgroup names a host path that is not mounted. */
    fake_write(f, "cg/memory/memory.limit_in_bytes", "1073741824\n");
    fake_write(f, "self", "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/\n");
    char self[512];
    fake_path(f, "self", self, sizeof(self));
    assert_int_equal(pool_default_bytes_at(root, self, 64 * GIB), GIB / 100);

    /* ...and one where it is. */
    fake_write(f, "cg/memory/docker/abc/memory.limit_in_bytes", "314572800\n"); /* 300 MiB */
    assert_int_equal(pool_default_bytes_at(root, self, 64 * GIB), 314572800 / 100);
}

static void test_pool_default_bytes_no_cgroup(void **state)
{
    struct fake *f = *state;
    char root[512];
    fake_path(f, "nothing-here", root, sizeof(root));
    assert_int_equal(pool_default_bytes_at(root, NULL, 32 * GIB), 32 * GIB / 100);
    /* A limit above the host's RAM is no limit either. */
    fake_write(f, "cg/memory.max", "137438953472\n"); /* 128 GiB */
    fake_path(f, "cg", root, sizeof(root));
    assert_int_equal(pool_default_bytes_at(root, NULL, 32 * GIB), 32 * GIB / 100);
    /* Unreadable content is ignored. */
    fake_write(f, "cg/memory.max", "lots\n");
    assert_int_equal(pool_default_bytes_at(root, NULL, 32 * GIB), 32 * GIB / 100);
}

static void test_pool_default_bytes_minimum(void **state)
{
    struct fake *f = *state;
    fake_write(f, "cg/memory.max", "104857600\n"); /* 100 MiB: 1 % is 1 MiB */
    char root[512];
    fake_path(f, "cg", root, sizeof(root));
    assert_int_equal(pool_default_bytes_at(root, NULL, 64 * GIB), POOL_MIN_BYTES);
    assert_int_equal(POOL_MIN_BYTES, 3 * 1024 * 1024);
    fake_path(f, "nothing-here", root, sizeof(root));
    assert_int_equal(pool_default_bytes_at(root, NULL, 0), POOL_MIN_BYTES);
    assert_int_equal(pool_default_bytes_at(root, NULL, 200 * 1024 * 1024), POOL_MIN_BYTES);
}

static void test_pool_default_bytes_this_machine(void **state)
{
    (void)state;
    size_t bytes = pool_default_bytes();
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t ram = (uint64_t)pages * (uint64_t)page;
    assert_true(bytes >= POOL_MIN_BYTES);
    assert_true(bytes <= (ram / 100 > POOL_MIN_BYTES ? ram / 100 : POOL_MIN_BYTES));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_alloc_accounting),
        cmocka_unit_test(test_pool_alloc_over_budget),
        cmocka_unit_test_setup_teardown(test_pool_default_bytes_v2_number, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_pool_default_bytes_v2_max, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_pool_default_bytes_v2_nested, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_pool_default_bytes_v1, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_pool_default_bytes_no_cgroup, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_pool_default_bytes_minimum, fake_setup, fake_teardown),
        cmocka_unit_test(test_pool_default_bytes_this_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
