/* SPDX-License-Identifier: Apache-2.0 */
/* The spool: the file format (round trip byte for byte, every kind of damage refused),
 * the directory (crash-safe writes leave no temporary file, a leftover one is deleted,
 * names sort by age, start-up errors are clear), and the spool on a real loop with a
 * scripted upstream: documents given up are written and replayed oldest first, one
 * batch at a time, deleted only once acknowledged, across a restart; the byte cap
 * drops the oldest files and counts their documents; corrupt files are skipped and
 * counted; replay waits while the pool is over half full. Every test ends with every
 * document back in the pool. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "upstream/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/pool.h"
#include "upstream/spool_dir.h"
#include "upstream/spool_file.h"
#include "upstream/upstream.h"

/* ---- helpers ---- */

static struct doc *mkdoc(struct pool *pool, unsigned i, size_t len)
{
    char text[2048];
    assert_true(len < sizeof(text) && len >= 16);
    int n = snprintf(text, sizeof(text), "{\"n\":%06u,\"p\":\"", i);
    memset(text + n, 'a' + (char)(i % 26), len - (size_t)n - 2);
    memcpy(text + len - 2, "\"}", 2);
    struct doc *d = pool_alloc(pool, text, len, 0);
    assert_non_null(d);
    snprintf(d->trace_id, sizeof(d->trace_id), "1-5f000000-%024x", i);
    snprintf(d->id, sizeof(d->id), "%016x", i * 7919u);
    d->flags = i % 3 == 0 ? DOC_IN_PROGRESS : i % 3 == 1 ? DOC_SUBSEGMENT : 0;
    d->start_time = 1600000000.25 + i;
    d->end_time = i % 3 == 0 ? 0 : 1600000001.5 + i;
    return d;
}

/* A list of n documents numbered first.. */
static struct doc *mklist(struct pool *pool, unsigned first, unsigned n, size_t len)
{
    struct doc *head = NULL, **tail = &head;
    for (unsigned i = 0; i < n; i++) {
        *tail = mkdoc(pool, first + i, len);
        tail = &(*tail)->next;
    }
    return head;
}

static unsigned doc_number(const struct doc *d)
{
    return (unsigned)strtoul(d->data + 5, NULL, 10);
}

static void free_list(struct pool *pool, struct doc *d)
{
    while (d != NULL) {
        struct doc *next = d->next;
        pool_free(pool, d);
        d = next;
    }
}

static void make_tmpdir(char *out, size_t cap)
{
    snprintf(out, cap, "%s/xrayd-spool-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(out));
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (unlink(path) != 0)
            rm_rf(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Spool files in dir, sorted by name, as sequence numbers; returns how many. */
static unsigned list_files(const char *dir, uint64_t *seqs, unsigned cap, unsigned *tmp)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    unsigned n = 0;
    struct dirent *de;
    if (tmp != NULL)
        *tmp = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        int kind = spool_file_parse_name(de->d_name, &seq);
        if (kind == 2 && tmp != NULL)
            (*tmp)++;
        if (kind != 1)
            continue;
        assert_true(n < cap);
        unsigned i = n++;
        while (i > 0 && seqs[i - 1] > seq) {
            seqs[i] = seqs[i - 1];
            i--;
        }
        seqs[i] = seq;
    }
    closedir(d);
    return n;
}

static size_t read_whole(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void write_whole(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* ---- the format ---- */

static void test_spool_file_round_trip(void **state)
{
    (void)state;
    struct pool *pool = pool_create(8 << 20);
    struct doc *docs = mklist(pool, 1, 7, 300);
    docs->next->len = 17; /* lengths vary */
    size_t cap = spool_file_size(docs, NULL, NULL), len;
    uint8_t *enc = malloc(cap), *again = malloc(cap);
    assert_int_equal(spool_file_encode(enc, cap, docs, 1234567, &len), 0);
    assert_int_equal(len, cap);
    assert_int_equal(spool_file_encode(enc, cap - 1, docs, 1234567, &len), XRAY_ETOOBIG);

    struct doc *back;
    struct spool_file_info info;
    char err[XRAY_ERR_LEN];
    assert_int_equal(spool_file_decode(enc, cap, true, pool, 99, &back, &info, err), 0);
    assert_int_equal(info.count, 7);
    assert_int_equal(info.created_ms, 1234567);
    assert_int_equal(info.file_bytes, cap);
    const struct doc *a = docs, *b = back;
    for (; a != NULL && b != NULL; a = a->next, b = b->next) {
        assert_int_equal(a->len, b->len);
        assert_memory_equal(a->data, b->data, a->len);
        assert_string_equal(a->trace_id, b->trace_id);
        assert_string_equal(a->id, b->id);
        assert_int_equal(a->flags, b->flags);
        assert_true(a->start_time == b->start_time && a->end_time == b->end_time);
        assert_int_equal(b->received_ms, 99);
    }
    assert_null(a);
    assert_null(b);
    /* Decoded then encoded again: the same bytes. */
    assert_int_equal(spool_file_encode(again, cap, back, 1234567, &len), 0);
    assert_memory_equal(enc, again, cap);

    /* Through the disk: the file holds exactly those bytes. */
    char dir[256], path[512];
    make_tmpdir(dir, sizeof(dir));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    struct spool_dir_write w = {.docs = docs, .seq = 42};
    struct spool_dir_scratch scratch = {0};
    assert_int_equal(spool_dir_write(dfd, &w, 1, 1234567, &scratch), 0);
    assert_int_equal(w.rc, 0);
    snprintf(path, sizeof(path), "%s/000000000000002a.spool", dir);
    memset(again, 0, cap);
    assert_int_equal(read_whole(path, again, cap), cap);
    assert_memory_equal(enc, again, cap);
    size_t got;
    assert_int_equal(spool_dir_read(dfd, 42, &scratch, &got, err), 0);
    assert_int_equal(got, cap);
    assert_memory_equal(scratch.data, enc, cap);
    assert_int_equal(spool_dir_read(dfd, 43, &scratch, &got, err), -ENOENT);
    close(dfd);
    free(scratch.data);
    rm_rf(dir);

    free_list(pool, docs);
    free_list(pool, back);
    free(enc);
    free(again);
    assert_int_equal(pool_doc_count(pool), 0);
    pool_destroy(pool);
}

static void test_spool_file_check_refuses_damage(void **state)
{
    (void)state;
    struct pool *pool = pool_create(8 << 20);
    struct doc *docs = mklist(pool, 1, 3, 100);
    size_t cap = spool_file_size(docs, NULL, NULL) + 16, len;
    uint8_t *enc = malloc(cap), *bad = malloc(cap);
    assert_int_equal(spool_file_encode(enc, cap, docs, 5, &len), 0);
    struct spool_file_info info;
    char err[XRAY_ERR_LEN];
    struct doc *out;

    /* Every truncation. */
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(spool_file_check(enc, cut, true, &info, err), XRAY_EPARSE);
        assert_int_equal(spool_file_decode(enc, cut, true, pool, 0, &out, &info, err), XRAY_EPARSE);
        assert_null(out);
    }
    /* Longer than announced. */
    memcpy(bad, enc, len);
    bad[len] = 0;
    assert_int_equal(spool_file_check(bad, len + 1, true, &info, err), XRAY_EPARSE);
    /* Every single flipped bit is caught. */
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(bad, enc, len);
            bad[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(spool_file_check(bad, len, true, &info, err), XRAY_EPARSE);
        }
    }
    /* Wrong magic, wrong version (with a valid header CRC). */
    memcpy(bad, enc, len);
    memcpy(bad, "XRAYDSPX", 8);
    assert_int_equal(spool_file_header(bad, len, &info, err), XRAY_EPARSE);
    assert_non_null(strstr(err, "magic"));
    memcpy(bad, enc, len);
    bad[8] = 2;
    uint32_t crc = spool_file_crc(0, bad, 28);
    for (int i = 0; i < 4; i++)
        bad[28 + i] = (uint8_t)(crc >> (8 * i));
    assert_int_equal(spool_file_header(bad, len, &info, err), XRAY_EPARSE);
    assert_non_null(strstr(err, "version"));
    /* Without the CRC check, a changed document byte passes; with it, it does not. */
    memcpy(bad, enc, len);
    bad[len - 10] ^= 1;
    assert_int_equal(spool_file_check(bad, len, false, &info, err), 0);
    assert_int_equal(spool_file_check(bad, len, true, &info, err), XRAY_EPARSE);
    assert_non_null(strstr(err, "checksum"));
    assert_int_equal(spool_file_check(enc, len, true, &info, err), 0);
    /* The pool too full for the file: nothing left allocated. */
    struct pool *tiny = pool_create(pool_doc_bytes(100) * 2);
    assert_int_equal(spool_file_decode(enc, len, true, tiny, 0, &out, &info, err), XRAY_EFULL);
    assert_null(out);
    assert_int_equal(pool_doc_count(tiny), 0);
    pool_destroy(tiny);

    free_list(pool, docs);
    free(enc);
    free(bad);
    pool_destroy(pool);
}

static void test_spool_file_limits(void **state)
{
    (void)state;
    struct pool *pool = pool_create(32 << 20);
    uint8_t *buf = malloc(SPOOL_FILE_MAX);
    size_t len;
    /* 51 documents are more than a batch. */
    struct doc *docs = mklist(pool, 0, 51, 20);
    assert_int_equal(spool_file_encode(buf, SPOOL_FILE_MAX, docs, 0, &len), XRAY_ETOOBIG);
    free_list(pool, docs);
    assert_int_equal(spool_file_encode(buf, SPOOL_FILE_MAX, NULL, 0, &len), XRAY_ETOOBIG);
    /* One document larger than a batch's bytes goes alone. */
    char *text = calloc(1, SPOOL_FILE_DATA_MAX + 100);
    memset(text, 'x', SPOOL_FILE_DATA_MAX + 100);
    struct doc *big = pool_alloc(pool, text, SPOOL_FILE_DATA_MAX + 100, 0);
    assert_int_equal(spool_file_encode(buf, SPOOL_FILE_MAX, big, 0, &len), 0);
    struct spool_file_info info;
    char err[XRAY_ERR_LEN];
    assert_int_equal(spool_file_check(buf, len, true, &info, err), 0);
    big->next = mkdoc(pool, 1, 20); /* but not with company */
    assert_int_equal(spool_file_encode(buf, SPOOL_FILE_MAX, big, 0, &len), XRAY_ETOOBIG);
    free_list(pool, big);
    free(text);
    free(buf);
    pool_destroy(pool);
}

static void test_spool_file_names_sort_by_age(void **state)
{
    (void)state;
    char a[SPOOL_FILE_NAME_LEN], b[SPOOL_FILE_NAME_LEN];
    uint64_t seq;
    spool_file_name(a, 9, false);
    spool_file_name(b, 10, false);
    assert_string_equal(a, "0000000000000009.spool");
    assert_true(strcmp(a, b) < 0); /* hex of fixed width: name order is number order */
    spool_file_name(a, 0xfffffffffffull, false);
    spool_file_name(b, 0x100000000000ull, false);
    assert_true(strcmp(a, b) < 0);
    assert_int_equal(spool_file_parse_name(b, &seq), 1);
    assert_int_equal(seq, 0x100000000000ull);
    spool_file_name(a, 77, true);
    assert_string_equal(a, "000000000000004d.spool.tmp");
    assert_int_equal(spool_file_parse_name(a, &seq), 2);
    assert_int_equal(seq, 77);
    const char *other[] = {"xrayd.lock",
                           "000000000000004D.spool",
                           "000000000000004d.spoolx",
                           "00000000000004d.spool",
                           "000000000000004d.spool.tmp~",
                           ""};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_int_equal(spool_file_parse_name(other[i], &seq), 0);
}

/* ---- the directory ---- */

static void test_spool_dir_open_errors(void **state)
{
    (void)state;
    char dir[256], path[512], err[XRAY_ERR_LEN];
    int dfd, lfd, dfd2, lfd2;
    make_tmpdir(dir, sizeof(dir));
    /* Created with its parents. */
    snprintf(path, sizeof(path), "%s/a/b/spool", dir);
    assert_int_equal(spool_dir_open(path, &dfd, &lfd, err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* A second daemon on the same directory is refused. */
    assert_int_not_equal(spool_dir_open(path, &dfd2, &lfd2, err), 0);
    assert_non_null(strstr(err, "in use by another xrayd"));
    close(lfd);
    close(dfd);
    assert_int_equal(spool_dir_open(path, &dfd2, &lfd2, err), 0);
    close(lfd2);
    close(dfd2);
    /* Below a regular file: cannot be created, and the message says where. */
    snprintf(path, sizeof(path), "%s/file", dir);
    write_whole(path, "x", 1);
    snprintf(path, sizeof(path), "%s/file/spool", dir);
    assert_int_equal(spool_dir_open(path, &dfd, &lfd, err), -ENOTDIR);
    assert_non_null(strstr(err, "cannot create spool directory"));
    assert_non_null(strstr(err, "file/spool"));
    assert_int_equal(dfd, -1);
    rm_rf(dir);
}

static void on_corrupt_count(void *ctx, const char *name, const char *why)
{
    (void)name;
    assert_true(why[0] != '\0');
    (*(unsigned *)ctx)++;
}

static void test_spool_dir_scan_cleans_temp_files(void **state)
{
    (void)state;
    struct pool *pool = pool_create(8 << 20);
    char dir[256], path[512], err[XRAY_ERR_LEN];
    make_tmpdir(dir, sizeof(dir));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    struct doc *docs = mklist(pool, 0, 4, 64);
    struct spool_dir_write w[3] = {{docs, 5, -1}, {docs, 3, -1}, {docs, 9, -1}};
    struct spool_dir_scratch scratch = {0};
    assert_int_equal(spool_dir_write(dfd, w, 3, 0, &scratch), 0);
    unsigned tmp;
    uint64_t seqs[16];
    /* Written and renamed: no temporary file is left behind. */
    assert_int_equal(list_files(dir, seqs, 16, &tmp), 3);
    assert_int_equal(tmp, 0);
    /* A crash mid-write leaves a temporary file: ignored, deleted, its number not
     * reused; files that are not the spool's are left alone. */
    snprintf(path, sizeof(path), "%s/0000000000000020.spool.tmp", dir);
    write_whole(path, "XRAYDSPL partial", 16);
    snprintf(path, sizeof(path), "%s/notes.txt", dir);
    write_whole(path, "mine", 4);
    struct spool_dir_entry *e;
    size_t n;
    uint64_t next = 0;
    unsigned temp = 0, corrupt = 0;
    assert_int_equal(spool_dir_scan(dfd, &e, &n, &next, &temp, on_corrupt_count, &corrupt, err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(temp, 1);
    assert_int_equal(corrupt, 0);
    assert_int_equal(next, 0x21);
    assert_int_equal(e[0].seq, 3);
    assert_int_equal(e[1].seq, 5);
    assert_int_equal(e[2].seq, 9);
    assert_int_equal(e[0].count, 4);
    assert_int_equal(e[0].bytes, spool_file_size(docs, NULL, NULL));
    free(e);
    assert_int_equal(list_files(dir, seqs, 16, &tmp), 3);
    assert_int_equal(tmp, 0);
    assert_int_equal(access(path, F_OK), 0);
    close(dfd);
    free(scratch.data);
    free_list(pool, docs);
    rm_rf(dir);
    pool_destroy(pool);
}

/* ---- the spool on a loop, with a scripted upstream ---- */

#define SENT_MAX 4096

struct rig {
    uv_loop_t loop;
    uv_timer_t watchdog;
    struct pool *pool;
    struct stats stats;
    struct upstream *up;
    struct spool *sp;
    char dir[256];
    /* The sender: answers each send with `status` at once, or holds it when hold. */
    int status;
    int hold;
    struct upstream_batch *held[8];
    unsigned nheld;
    unsigned concurrency;
    unsigned sends, replays_seen_in_flight, max_in_flight;
    unsigned sent[SENT_MAX]; /* numbers of the documents acknowledged, in order */
    unsigned nsent;
    int closed;
};

static int rig_send(void *ctx, struct upstream_batch *b,
                    void (*done)(struct upstream_batch *batch, int status))
{
    struct rig *r = ctx;
    r->sends++;
    if (upstream_in_flight(r->up) > r->max_in_flight)
        r->max_in_flight = upstream_in_flight(r->up);
    if (r->hold) {
        assert_true(r->nheld < 8);
        r->held[r->nheld++] = b;
        return 0;
    }
    if (r->status == 0)
        for (struct doc *d = b->docs; d != NULL && r->nsent < SENT_MAX; d = d->next)
            r->sent[r->nsent++] = doc_number(d);
    b->http_status = r->status == 0 ? 200 : 503;
    done(b, r->status);
    return 0;
}

static const struct upstream_ops rig_ops = {.name = "rig", .send = rig_send};

static void rig_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: the test did not finish in time");
}

static void rig_open(struct rig *r, uint64_t max_bytes)
{
    char err[XRAY_ERR_LEN];
    struct spool_options so = {.loop = &r->loop,
                               .pool = r->pool,
                               .stats = &r->stats,
                               .dir = r->dir,
                               .max_bytes = max_bytes};
    assert_int_equal(spool_open(&r->sp, &so, err), 0);
    struct upstream_options uo = {
        .loop = &r->loop,
        .pool = r->pool,
        .stats = &r->stats,
        .concurrency = r->concurrency ? r->concurrency : 4,
        .ctx = r,
        .retry = {.attempts = 1}, /* a failure gives up at once */
        .on_give_up = spool_give_up,
        .give_up_ctx = r->sp,
        .on_ack = spool_on_ack,
        .ack_ctx = r->sp,
    };
    r->up = upstream_create(&rig_ops, &uo);
    assert_non_null(r->up);
}

/* Completes the oldest held send with status. */
static void rig_complete(struct rig *r, int status)
{
    assert_true(r->nheld > 0);
    struct upstream_batch *b = r->held[0];
    memmove(r->held, r->held + 1, --r->nheld * sizeof(r->held[0]));
    if (status == 0)
        for (struct doc *d = b->docs; d != NULL && r->nsent < SENT_MAX; d = d->next)
            r->sent[r->nsent++] = doc_number(d);
    b->http_status = status == 0 ? 200 : 503;
    b->done(b, status);
}

/* A rig on a fresh directory (or dir, when given: a restart). */
static void rig_init_n(struct rig *r, const char *dir, uint64_t max_bytes, size_t pool_bytes,
                       unsigned concurrency)
{
    memset(r, 0, sizeof(*r));
    r->concurrency = concurrency;
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(uv_timer_init(&r->loop, &r->watchdog), 0);
    assert_int_equal(uv_timer_start(&r->watchdog, rig_watchdog, 20000, 0), 0);
    uv_unref((uv_handle_t *)&r->watchdog);
    r->pool = pool_create(pool_bytes);
    if (dir != NULL)
        snprintf(r->dir, sizeof(r->dir), "%s", dir);
    else
        make_tmpdir(r->dir, sizeof(r->dir));
    rig_open(r, max_bytes);
}

static void rig_init(struct rig *r, const char *dir, uint64_t max_bytes, size_t pool_bytes)
{
    rig_init_n(r, dir, max_bytes, pool_bytes, 4);
}

static void rig_on_spool_closed(void *data)
{
    ((struct rig *)data)->closed = 1;
}

static void rig_on_up_closed(void *data)
{
    struct rig *r = data;
    spool_close(r->sp, rig_on_spool_closed, r);
}

/* Closes upstream then spool as main.c does; the directory stays. */
static void rig_finish(struct rig *r)
{
    upstream_close(r->up, rig_on_up_closed, r);
    while (r->nheld > 0)
        rig_complete(r, -ECANCELED);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_true(r->closed);
    assert_int_equal(pool_doc_count(r->pool), 0);
    pool_destroy(r->pool);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

/* Runs the loop until pred holds (the watchdog fails the test otherwise). */
static void rig_run_until(struct rig *r, int (*pred)(struct rig *r))
{
    while (!pred(r))
        uv_run(&r->loop, UV_RUN_ONCE);
}

static struct spool_stats rig_stats(struct rig *r)
{
    struct spool_stats st;
    spool_get_stats(r->sp, &st);
    return st;
}

/* Everything handed to the spool is written (or dropped): out of the pool. */
static int rig_idle(struct rig *r)
{
    return rig_stats(r).pending_docs == 0 && pool_doc_count(r->pool) == 0;
}

static int rig_empty(struct rig *r)
{
    return rig_stats(r).files == 0;
}

/* Gives up n documents numbered first.. in batches of per (the upstream's hook). */
static void rig_give_up(struct rig *r, unsigned first, unsigned n, unsigned per, size_t len)
{
    for (unsigned i = 0; i < n; i += per) {
        unsigned k = n - i < per ? n - i : per;
        spool_give_up(r->sp, mklist(r->pool, first + i, k, len), k, -ECONNREFUSED);
    }
}

static void test_spool_replays_oldest_first_across_restart(void **state)
{
    (void)state;
    struct rig r;
    uint64_t seqs[64];
    rig_init(&r, NULL, 0, 8 << 20);
    spool_start(r.sp, r.up);
    /* The upstream fails: fresh batches run out of retries and are spooled. */
    r.status = -ECONNREFUSED;
    for (unsigned i = 0; i < 120; i++)
        upstream_submit(r.up, mkdoc(r.pool, i, 200));
    rig_run_until(&r, rig_idle);
    assert_true(rig_stats(&r).written_files >= 3);
    assert_int_equal(rig_stats(&r).written_docs, 120);
    assert_int_equal(stats_get(&r.stats.rejected), 0); /* spooled, not dropped */
    unsigned before = list_files(r.dir, seqs, 64, NULL);
    assert_int_equal(before, rig_stats(&r).files);
    uint64_t newest = seqs[before - 1];
    assert_int_equal(pool_doc_count(r.pool), 0); /* on disk only */
    rig_finish(&r);

    /* A restart: the files are found; new ones are named after them. */
    char dir[256];
    snprintf(dir, sizeof(dir), "%s", r.dir);
    rig_init(&r, dir, 0, 8 << 20);
    assert_int_equal(rig_stats(&r).found_files, before);
    r.status = -ECONNREFUSED;
    rig_give_up(&r, 500, 10, 10, 200);
    rig_run_until(&r, rig_idle);
    unsigned after = list_files(r.dir, seqs, 64, NULL);
    assert_int_equal(after, before + 1);
    assert_true(seqs[after - 1] > newest);
    /* The upstream answers: everything replays, oldest first, one batch at a time. */
    r.status = 0;
    spool_start(r.sp, r.up);
    rig_run_until(&r, rig_empty);
    assert_int_equal(r.nsent, 130);
    for (unsigned i = 0; i < 120; i++)
        assert_int_equal(r.sent[i], i);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(r.sent[120 + i], 500 + i);
    assert_int_equal(r.max_in_flight, 1);
    assert_int_equal(rig_stats(&r).replayed_docs, 130);
    assert_int_equal(list_files(r.dir, seqs, 64, NULL), 0);
    assert_int_equal(stats_get(&r.stats.sent), 130);
    rig_finish(&r);
    rm_rf(r.dir);
}

static void test_spool_file_deleted_only_after_ack(void **state)
{
    (void)state;
    struct rig r;
    uint64_t seqs[8];
    rig_init(&r, NULL, 0, 8 << 20);
    rig_give_up(&r, 0, 20, 20, 100);
    rig_run_until(&r, rig_idle);
    /* The replay is in flight: the file stays until it is acknowledged. */
    r.hold = 1;
    spool_start(r.sp, r.up);
    while (r.nheld == 0)
        uv_run(&r.loop, UV_RUN_ONCE);
    assert_int_equal(list_files(r.dir, seqs, 8, NULL), 1);
    assert_int_equal(pool_doc_count(r.pool), 20);
    /* It fails: the file stays, nothing is counted as lost. */
    rig_complete(&r, XRAY_EUPSTREAM);
    assert_int_equal(list_files(r.dir, seqs, 8, NULL), 1);
    assert_int_equal(rig_stats(&r).files, 1);
    assert_int_equal(stats_get(&r.stats.rejected), 0);
    assert_int_equal(pool_doc_count(r.pool), 0);
    /* A fresh upload is acknowledged: the spool replays at once, and this one holds. */
    r.hold = 0;
    upstream_submit(r.up, mkdoc(r.pool, 900, 100));
    upstream_drain(r.up, NULL, NULL);
    rig_run_until(&r, rig_empty);
    assert_int_equal(r.nsent, 21);
    assert_int_equal(r.sent[0], 900);
    assert_int_equal(r.sent[1], 0);
    assert_int_equal(list_files(r.dir, seqs, 8, NULL), 0);
    rig_finish(&r);
    rm_rf(r.dir);
}

static void test_spool_cap_drops_oldest(void **state)
{
    (void)state;
    struct rig r;
    uint64_t seqs[16];
    struct doc *probe = NULL;
    struct pool *p = pool_create(1 << 20);
    probe = mklist(p, 0, 10, 500);
    uint64_t one = spool_file_size(probe, NULL, NULL);
    free_list(p, probe);
    pool_destroy(p);
    /* Room for three files of ten documents. */
    rig_init(&r, NULL, 3 * one + one / 2, 8 << 20);
    for (unsigned i = 0; i < 5; i++) {
        rig_give_up(&r, i * 10, 10, 10, 500);
        rig_run_until(&r, rig_idle); /* one at a time: each its own file */
    }
    struct spool_stats st = rig_stats(&r);
    assert_int_equal(st.written_files, 5);
    assert_int_equal(st.dropped_files, 2);
    assert_int_equal(st.dropped_docs, 20);
    assert_int_equal(st.files, 3);
    assert_true(st.bytes <= st.max_bytes);
    assert_int_equal(stats_get(&r.stats.rejected_by[STATS_REJECT_UPLOAD_FAILED]), 20);
    assert_int_equal(stats_get(&r.stats.rejected), 20);
    /* The newest three remain; replay delivers documents 20..49. */
    assert_int_equal(list_files(r.dir, seqs, 16, NULL), 3);
    spool_start(r.sp, r.up);
    rig_run_until(&r, rig_empty);
    assert_int_equal(r.nsent, 30);
    for (unsigned i = 0; i < 30; i++)
        assert_int_equal(r.sent[i], 20 + i);
    rig_finish(&r);
    rm_rf(r.dir);
}

static void test_spool_corrupt_files_skipped(void **state)
{
    (void)state;
    struct rig r;
    uint64_t seqs[16];
    char path[512];
    uint8_t *buf = malloc(SPOOL_FILE_MAX);
    rig_init(&r, NULL, 0, 8 << 20);
    for (unsigned i = 0; i < 5; i++) {
        rig_give_up(&r, i * 10, 10, 10, 150);
        rig_run_until(&r, rig_idle);
    }
    assert_int_equal(list_files(r.dir, seqs, 16, NULL), 5);
    rig_finish(&r);
    /* File 1 truncated, file 2 with a changed document byte (found at replay), file 3
     * with a wrong magic; a foreign file with a spool name. */
    snprintf(path, sizeof(path), "%s/%016llx.spool", r.dir, (unsigned long long)seqs[1]);
    size_t len = read_whole(path, buf, SPOOL_FILE_MAX);
    assert_int_equal(truncate(path, (off_t)len - 7), 0);
    snprintf(path, sizeof(path), "%s/%016llx.spool", r.dir, (unsigned long long)seqs[2]);
    len = read_whole(path, buf, SPOOL_FILE_MAX);
    buf[len - 20] ^= 0x20;
    write_whole(path, buf, len);
    snprintf(path, sizeof(path), "%s/%016llx.spool", r.dir, (unsigned long long)seqs[3]);
    len = read_whole(path, buf, SPOOL_FILE_MAX);
    buf[0] = 'Y';
    write_whole(path, buf, len);
    snprintf(path, sizeof(path), "%s/0000000000000000.spool", r.dir);
    write_whole(path, "not a spool file at all", 23);

    char dir[256];
    snprintf(dir, sizeof(dir), "%s", r.dir);
    rig_init(&r, dir, 0, 8 << 20);
    assert_int_equal(rig_stats(&r).corrupt_files, 3); /* found by the scan */
    assert_int_equal(rig_stats(&r).found_files, 3);
    spool_start(r.sp, r.up);
    rig_run_until(&r, rig_empty);
    assert_int_equal(rig_stats(&r).corrupt_files, 4); /* the CRC, at replay */
    assert_int_equal(r.nsent, 20);
    for (unsigned i = 0; i < 10; i++) {
        assert_int_equal(r.sent[i], i);           /* file 0 */
        assert_int_equal(r.sent[10 + i], 40 + i); /* file 4 */
    }
    assert_int_equal(rig_stats(&r).replayed_files, 2);
    assert_int_equal(list_files(r.dir, seqs, 16, NULL), 0);
    rig_finish(&r);
    free(buf);
    rm_rf(dir);
}

static void on_timer_stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void test_spool_replay_waits_for_pool_room(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, NULL, 0, 200 * pool_doc_bytes(400));
    rig_give_up(&r, 0, 40, 40, 400);
    rig_run_until(&r, rig_idle);
    /* Over half the pool is taken by fresh documents the upstream holds: no replay. */
    struct doc *hold = mklist(r.pool, 1000, 61, 400);
    spool_start(r.sp, r.up);
    uv_timer_t t;
    uv_timer_init(&r.loop, &t);
    uv_timer_start(&t, on_timer_stop, 600, 0);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(r.sends, 0);
    assert_int_equal(rig_stats(&r).files, 1);
    /* Room again: it replays. */
    free_list(r.pool, hold);
    rig_run_until(&r, rig_empty);
    assert_int_equal(r.nsent, 40);
    uv_close((uv_handle_t *)&t, NULL);
    rig_finish(&r);
    rm_rf(r.dir);
}

static void test_spool_close_writes_what_is_held(void **state)
{
    (void)state;
    struct rig r;
    uint64_t seqs[16];
    rig_init(&r, NULL, 0, 8 << 20);
    spool_start(r.sp, r.up);
    /* Documents queued and one batch in flight when the upstream closes. */
    r.hold = 1;
    for (unsigned i = 0; i < 75; i++)
        upstream_submit(r.up, mkdoc(r.pool, i, 120));
    assert_int_equal(r.nheld, 1);
    assert_int_equal(rig_stats(&r).files, 0);
    rig_finish(&r); /* the one in flight is cancelled, then everything is written */
    unsigned n = list_files(r.dir, seqs, 16, NULL);
    assert_true(n >= 2);

    char dir[256];
    snprintf(dir, sizeof(dir), "%s", r.dir);
    rig_init(&r, dir, 0, 8 << 20);
    assert_int_equal(rig_stats(&r).found_files, n);
    spool_start(r.sp, r.up);
    rig_run_until(&r, rig_empty);
    assert_int_equal(r.nsent, 75);
    rig_finish(&r);
    rm_rf(dir);
}

static void on_replay_done(void *ctx, int status)
{
    *(int *)ctx = status == 0 ? 1 : status;
}

static void test_upstream_replay_leaves_fresh_traffic_a_slot(void **state)
{
    (void)state;
    struct rig r;
    int done1 = 0, done2 = 0;
    rig_init_n(&r, NULL, 0, 8 << 20, 2);
    r.hold = 1;
    assert_int_equal(upstream_replay(r.up, NULL, on_replay_done, &done1), -EINVAL);
    struct doc *many = mklist(r.pool, 0, 51, 20);
    assert_int_equal(upstream_replay(r.up, many, on_replay_done, &done1), -EINVAL);
    free_list(r.pool, many);
    /* One replay at a time. */
    assert_true(upstream_replay_ready(r.up));
    assert_int_equal(upstream_replay(r.up, mklist(r.pool, 0, 3, 20), on_replay_done, &done1), 0);
    assert_false(upstream_replay_ready(r.up));
    struct doc *two = mklist(r.pool, 10, 2, 20);
    assert_int_equal(upstream_replay(r.up, two, on_replay_done, &done2), XRAY_EFULL);
    /* It fails: freed, not counted, not given up (the spool still has the file). */
    rig_complete(&r, XRAY_EUPSTREAM);
    assert_int_equal(done1, XRAY_EUPSTREAM);
    assert_int_equal(stats_get(&r.stats.rejected), 0);
    assert_int_equal(rig_stats(&r).pending_docs, 0);
    assert_int_equal(pool_doc_count(r.pool), 2);
    /* A fresh batch in flight leaves one slot: a replay may take it while nothing
     * else waits, not once a fresh document waits in the batcher. */
    for (unsigned i = 0; i < 50; i++)
        upstream_submit(r.up, mkdoc(r.pool, 100 + i, 20));
    assert_int_equal(r.nheld, 1);
    assert_true(upstream_replay_ready(r.up));
    upstream_submit(r.up, mkdoc(r.pool, 150, 20));
    assert_false(upstream_replay_ready(r.up));
    assert_int_equal(upstream_replay(r.up, two, on_replay_done, &done2), XRAY_EFULL);
    rig_complete(&r, 0);
    assert_true(upstream_replay_ready(r.up));
    assert_int_equal(upstream_replay(r.up, two, on_replay_done, &done2), 0);
    rig_complete(&r, 0);
    assert_int_equal(done2, 1);
    assert_int_equal(stats_get(&r.stats.sent), 52);
    assert_int_equal(r.sent[50], 10);
    /* While draining (shutdown), no replay. */
    upstream_drain(r.up, NULL, NULL);
    assert_int_equal(r.nheld, 1); /* document 150, sent at once */
    two = mklist(r.pool, 20, 2, 20);
    assert_int_equal(upstream_replay(r.up, two, on_replay_done, &done2), XRAY_ECLOSED);
    free_list(r.pool, two);
    rig_finish(&r);
    rm_rf(r.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spool_file_round_trip),
        cmocka_unit_test(test_spool_file_check_refuses_damage),
        cmocka_unit_test(test_spool_file_limits),
        cmocka_unit_test(test_spool_file_names_sort_by_age),
        cmocka_unit_test(test_spool_dir_open_errors),
        cmocka_unit_test(test_spool_dir_scan_cleans_temp_files),
        cmocka_unit_test(test_spool_replays_oldest_first_across_restart),
        cmocka_unit_test(test_spool_file_deleted_only_after_ack),
        cmocka_unit_test(test_spool_cap_drops_oldest),
        cmocka_unit_test(test_spool_corrupt_files_skipped),
        cmocka_unit_test(test_spool_replay_waits_for_pool_room),
        cmocka_unit_test(test_spool_close_writes_what_is_held),
        cmocka_unit_test(test_upstream_replay_leaves_fresh_traffic_a_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
