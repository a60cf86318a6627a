/* SPDX-License-Identifier: Apache-2.0 */
/* log.c: level names, the line format read back from a file, threshold filtering
 * (arguments not evaluated below it), XLOG_EVERY suppression and its count, the line
 * size cap, and rotation at a small size. Each test logs to its own temp file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct tmp {
    char dir[256];
    char path[300];
    char old[310];
};

static int tmp_setup(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));
    const char *base = getenv("TMPDIR");
    snprintf(t->dir, sizeof(t->dir), "%s/test_log.XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(t->dir) == NULL)
        return -1;
    snprintf(t->path, sizeof(t->path), "%s/xrayd.log", t->dir);
    snprintf(t->old, sizeof(t->old), "%s.1", t->path);
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    struct tmp *t = *state;
    log_close();
    atomic_store(&log_threshold, LOG_LEVEL_INFO);
    unlink(t->path);
    unlink(t->old);
    int rc = rmdir(t->dir);
    free(t);
    return rc;
}

/* The whole file, NUL-terminated; "" when it does not exist. */
static char *slurp(const char *path)
{
    char *text = calloc(1, 1 << 16);
    assert_non_null(text);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        size_t n = fread(text, 1, (1 << 16) - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    return text;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static void test_log_level_parse_names(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("dev"), LOG_LEVEL_DEBUG);
    assert_int_equal(log_level_parse("debug"), LOG_LEVEL_DEBUG);
    assert_int_equal(log_level_parse("info"), LOG_LEVEL_INFO);
    assert_int_equal(log_level_parse("prod"), LOG_LEVEL_INFO);
    assert_int_equal(log_level_parse("warn"), LOG_LEVEL_WARN);
    assert_int_equal(log_level_parse("error"), LOG_LEVEL_ERROR);
    assert_int_equal(log_level_parse("Info"), LOG_LEVEL_INFO);
    assert_int_equal(log_level_parse("WARN"), LOG_LEVEL_WARN);
    assert_int_equal(log_level_parse("warning"), -1);
    assert_int_equal(log_level_parse("trace"), -1);
    assert_int_equal(log_level_parse(""), -1);
    assert_int_equal(log_level_parse(NULL), -1);
}

static void test_log_write_format(void **state)
{
    struct tmp *t = *state;
    assert_int_equal(log_open(LOG_LEVEL_DEBUG, t->path, false), 0);
    time_t before = time(NULL);
    XLOG_INFO("udp", "listening on %s:%d", "127.0.0.1", 2000);
    XLOG_DEBUG("pool", "d");
    XLOG_WARN("x", "w");
    XLOG_ERR("main", "e");
    time_t after = time(NULL);
    char *text = slurp(t->path);

    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z "
                             "\\[Info\\] \\[udp\\] listening on 127\\.0\\.0\\.1:2000\n"
                             "[-0-9T:]{19}Z \\[Debug\\] \\[pool\\] d\n"
                             "[-0-9T:]{19}Z \\[Warn\\] \\[x\\] w\n"
                             "[-0-9T:]{19}Z \\[Error\\] \\[main\\] e\n$",
                             REG_EXTENDED),
                     0);
    regmatch_t m[7];
    if (regexec(&re, text, 7, m, 0) != 0)
        fail_msg("unexpected log text:\n%s", text);
    regfree(&re);

    /* The time is UTC and now. */
    struct tm tm = {0};
    int f[6];
    for (int i = 0; i < 6; i++)
        f[i] = atoi(text + m[i + 1].rm_so);
    tm.tm_year = f[0] - 1900;
    tm.tm_mon = f[1] - 1;
    tm.tm_mday = f[2];
    tm.tm_hour = f[3];
    tm.tm_min = f[4];
    tm.tm_sec = f[5];
    time_t stamp = timegm(&tm);
    assert_true(stamp >= before && stamp <= after);
    free(text);
}

static int evaluated;

static int side_effect(void)
{
    return ++evaluated;
}

static void test_log_write_threshold(void **state)
{
    struct tmp *t = *state;
    assert_int_equal(log_open(LOG_LEVEL_WARN, t->path, false), 0);
    assert_int_equal(atomic_load(&log_threshold), LOG_LEVEL_WARN);
    evaluated = 0;
    XLOG_DEBUG("m", "debug %d", side_effect());
    XLOG_INFO("m", "info %d", side_effect());
    assert_int_equal(evaluated, 0); /* arguments below the threshold are not evaluated */
    XLOG_WARN("m", "warn %d", side_effect());
    XLOG_ERR("m", "error %d", side_effect());
    assert_int_equal(evaluated, 2);
    char *text = slurp(t->path);
    assert_int_equal(count_lines(text), 2);
    assert_non_null(strstr(text, "[Warn] [m] warn 1\n"));
    assert_non_null(strstr(text, "[Error] [m] error 2\n"));
    assert_null(strstr(text, "info"));
    free(text);

    /* Back to stdout: the file gets nothing more. */
    assert_int_equal(log_open(LOG_LEVEL_INFO, NULL, false), 0);
    XLOG_ERR("m", "to stdout");
    text = slurp(t->path);
    assert_int_equal(count_lines(text), 2);
    free(text);
    /* A file that cannot be opened is an error. */
    char bad[400];
    snprintf(bad, sizeof(bad), "%s/missing/dir.log", t->dir);
    assert_true(log_open(LOG_LEVEL_INFO, bad, false) < 0);
}

static void test_log_write_long_lines(void **state)
{
    struct tmp *t = *state;
    assert_int_equal(log_open(LOG_LEVEL_INFO, t->path, false), 0);
    char big[3000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    XLOG_INFO("m", "%s", big);
    log_write(LOG_LEVEL_INFO, big, "module name longer than a line"); /* must not overflow */
    XLOG_INFO("m", "after");
    char *text = slurp(t->path);
    assert_int_equal(count_lines(text), 3);
    char *line = text;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(line, '\n');
        assert_true((size_t)(nl - line) + 1 <= LOG_LINE_MAX);
        line = nl + 1;
    }
    assert_non_null(strstr(text, "[Info] [m] after\n"));
    free(text);
}

/* One call site, as in a receive loop. */
static void bad_datagram(int i)
{
    XLOG_EVERY(200, LOG_LEVEL_WARN, "udp", "bad datagram %d", i);
}

static void test_log_every_suppression(void **state)
{
    struct tmp *t = *state;
    assert_int_equal(log_open(LOG_LEVEL_INFO, t->path, false), 0);
    for (int i = 0; i < 5; i++)
        bad_datagram(i);
    char *text = slurp(t->path);
    assert_int_equal(count_lines(text), 1);
    assert_non_null(strstr(text, "[Warn] [udp] bad datagram 0\n"));
    free(text);

    struct timespec pause = {0, 300 * 1000000L};
    nanosleep(&pause, NULL);
    for (int i = 5; i < 7; i++)
        bad_datagram(i);
    text = slurp(t->path);
    assert_int_equal(count_lines(text), 2);
    assert_non_null(strstr(text, "[Warn] [udp] bad datagram 5 (4 similar suppressed)\n"));
    free(text);

    /* The state machine on its own. */
    struct log_every le = {0};
    unsigned supp = 99;
    assert_true(log_every_pass(&le, 60000, &supp));
    assert_int_equal(supp, 0);
    assert_false(log_every_pass(&le, 60000, &supp));
    assert_false(log_every_pass(&le, 60000, &supp));
    assert_int_equal(atomic_load(&le.suppressed), 2);
    assert_true(log_every_pass(&le, 0, &supp)); /* a zero interval never suppresses */
    assert_int_equal(supp, 2);
    assert_int_equal(atomic_load(&le.suppressed), 0);

    /* Below the threshold nothing is written or counted. */
    atomic_store(&log_threshold, LOG_LEVEL_ERROR);
    for (int i = 0; i < 3; i++)
        XLOG_EVERY(1, LOG_LEVEL_WARN, "udp", "hidden");
    text = slurp(t->path);
    assert_int_equal(count_lines(text), 2);
    free(text);
}

static void test_log_open_size_rotates(void **state)
{
    struct tmp *t = *state;
    assert_int_equal(log_open_size(LOG_LEVEL_INFO, t->path, true, 300), 0);
    /* Each line: 20 (time) + " [Info] [m] " (12) + 67 + "\n" = 100 bytes. */
    char msg[68];
    memset(msg, 'x', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    for (int i = 0; i < 3; i++)
        XLOG_INFO("m", "%s", msg);
    struct stat st;
    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_size, 300); /* exactly at the limit: not yet rotated */
    assert_int_not_equal(stat(t->old, &st), 0);

    XLOG_INFO("m", "%s", msg);
    assert_int_equal(stat(t->old, &st), 0);
    assert_int_equal(st.st_size, 300);
    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_size, 100);

    /* Only one old file is kept; nothing is ever split across files. */
    for (int i = 0; i < 4; i++)
        XLOG_INFO("m", "%s", msg);
    assert_int_equal(stat(t->old, &st), 0);
    assert_int_equal(st.st_size, 300);
    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_size, 200);

    /* Without rotation the file just grows. */
    log_close();
    unlink(t->path);
    unlink(t->old);
    assert_int_equal(log_open_size(LOG_LEVEL_INFO, t->path, false, 300), 0);
    for (int i = 0; i < 5; i++)
        XLOG_INFO("m", "%s", msg);
    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_size, 500);
    assert_int_not_equal(stat(t->old, &st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_level_parse_names),
        cmocka_unit_test_setup_teardown(test_log_write_format, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_log_write_threshold, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_log_write_long_lines, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_log_every_suppression, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_log_open_size_rotates, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
