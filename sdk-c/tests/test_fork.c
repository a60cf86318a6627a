/* SPDX-License-Identifier: Apache-2.0 */
/* Fork safety of ids.c: a child reseeds before its first id, so parent and child
 * (and two children of one parent) never draw the same ids, even while another
 * parent thread keeps drawing; the child's recorder keeps working. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sdk_rig.h"

#define N 20000

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void draw(uint64_t *out, size_t n)
{
    char id[XRAY_SEGMENT_ID_LEN + 1], tid[XRAY_TRACE_ID_LEN + 1];
    for (size_t i = 0; i < n; i += 2) {
        xray_id_segment(id);
        out[i] = strtoull(id, NULL, 16);
        xray_id_trace(tid, 1700000000);
        char part[17] = {0};
        memcpy(part, tid + 11, 16);
        out[i + 1] = strtoull(part, NULL, 16);
    }
}

/* Forks a child that draws N values and writes them, with its fork generation and a
 * flag saying its recorder still sent a document, into a pipe. */
static pid_t spawn(int *rfd, struct xray_recorder *rec)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        static uint64_t v[N + 2];
        draw(v, N);
        v[N] = xray__ids_fork_generation();
        size_t before = rig.n;
        struct xray_segment *seg = xray_segment_begin(rec, NULL);
        xray_segment_end(seg);
        v[N + 1] = rig.n == before + 1;
        const char *b = (const char *)v;
        size_t left = sizeof(v);
        while (left > 0) {
            ssize_t w = write(p[1], b, left);
            if (w <= 0)
                _exit(2);
            b += w;
            left -= (size_t)w;
        }
        _exit(0);
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

static void read_child(int fd, pid_t pid, uint64_t *v)
{
    char *b = (char *)v;
    size_t left = sizeof(uint64_t) * (N + 2);
    while (left > 0) {
        ssize_t r = read(fd, b, left);
        assert_true(r > 0);
        b += r;
        left -= (size_t)r;
    }
    close(fd);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static volatile int keep_drawing;

static void *background(void *arg)
{
    (void)arg;
    while (keep_drawing)
        (void)xray_id_random64();
    return NULL;
}

static void test_fork_parent_and_children_never_share_ids(void **state)
{
    (void)state;
    struct xray_recorder *rec = rig_recorder(NULL);
    uint64_t warm[16];
    draw(warm, 16); /* the parent's stream is keyed before the fork */
    keep_drawing = 1;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, background, NULL), 0);
    uint64_t gen = xray__ids_fork_generation();

    int fd1, fd2;
    pid_t c1 = spawn(&fd1, rec);
    pid_t c2 = spawn(&fd2, rec);
    static uint64_t all[3 * N + 4], child[N + 2];
    draw(all, N);
    read_child(fd1, c1, child);
    assert_true(child[N] > gen); /* the child saw the fork */
    assert_int_equal(child[N + 1], 1);
    memcpy(all + N, child, sizeof(uint64_t) * N);
    read_child(fd2, c2, child);
    assert_int_equal(child[N + 1], 1);
    memcpy(all + 2 * N, child, sizeof(uint64_t) * N);
    keep_drawing = 0;
    pthread_join(th, NULL);
    assert_int_equal(xray__ids_fork_generation(), gen); /* the parent's is unchanged */

    qsort(all, 3 * N, sizeof(uint64_t), cmp_u64);
    for (size_t i = 1; i < 3 * N; i++)
        if (all[i] == all[i - 1])
            fail_msg("value %016llx drawn twice", (unsigned long long)all[i]);
    rig_reset();
    xray_recorder_destroy(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_parent_and_children_never_share_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
