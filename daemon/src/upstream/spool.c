/* SPDX-License-Identifier: Apache-2.0 */
/* The spool directory: writes what the upstream gave up on, keeps an index of the
 * files oldest first, replays them one at a time and deletes each once acknowledged.
 * It never holds a document outside the pool and never reads a file into the pool
 * unless the pool is at most half full after it, so fresh traffic keeps its memory.
 *
 * How it works. Files are named by a sequence number (16 hex digits) that continues
 * after the largest name found at start-up, so name order is age order across
 * restarts. A write is crash-safe: the batch goes to "<seq>.spool.tmp", is fdatasync'ed,
 * renamed to "<seq>.spool", and the directory is fsync'ed; a temporary file found at
 * start-up is a write a crash cut short (its documents were still only in memory) and
 * is deleted. Disk work runs on libuv's thread pool, one job at a time (up to 16 files
 * written, or one file read and checked), so the loop never waits on a disk; writes go
 * before reads. Before a write, the oldest files are dropped until the new one fits the
 * byte cap. Replay takes the oldest file when the upstream acknowledged a fresh batch,
 * at start, or at a probe (2 s after a write, doubling to 30 s after each failed
 * replay); upstream_replay() retries it like any batch, and the file is deleted when
 * every document was acknowledged or refused for good, else it stays first in line.
 * A file that fails its checks (spool_file.h) is deleted, logged and counted: it cannot
 * be repaired, and keeping it would need a budget of its own. */
#include "upstream/spool.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ingest/pool.h"
#include "log.h"
#include "upstream/spool_dir.h"
#include "upstream/spool_file.h"
#include "upstream/upstream.h"
#include "util.h"

#define MOD                "spool"
#define SPOOL_JOB_FILES    16    /* files written per thread-pool job */
#define SPOOL_PROBE_MIN_MS 2000  /* first replay try after a write, or after a success */
#define SPOOL_PROBE_MAX_MS 30000 /* the probe's backoff stops doubling here */
#define SPOOL_WAIT_MS      200   /* try again: the pool or the upstream was busy */
#define SPOOL_SCRATCH_KEEP (64u << 10)
#define SPOOL_LOG_EVERY_MS 10000
#define SPOOL_NO_TIMER     UINT64_MAX

struct spool_entry {
    uint64_t seq;
    uint32_t bytes; /* the file's size */
    uint32_t count; /* its documents */
};

struct spool {
    uv_loop_t *loop;
    struct pool *pool;
    struct stats *stats;
    struct upstream *up;
    char dir[PATH_MAX];
    int dirfd;
    int lockfd;
    uint64_t max_bytes;
    uv_timer_t timer;
    uint64_t timer_due;
    /* Committed files, oldest first: a ring of SPOOL_MAX_FILES entries. */
    struct spool_entry *ring;
    size_t head, n;
    size_t nfiles;  /* ring + the replayed one + those being written */
    uint64_t bytes; /* their bytes */
    uint64_t next_seq;
    /* Documents handed over and not yet in a job, oldest first. */
    struct doc *pend_head, *pend_tail;
    size_t pend_count;
    /* The job: only the thread pool touches these while busy. */
    uv_work_t work;
    bool busy, reading;
    struct spool_dir_write writes[SPOOL_JOB_FILES];
    unsigned wcount[SPOOL_JOB_FILES]; /* documents of each */
    uint32_t wbytes[SPOOL_JOB_FILES]; /* size of each */
    unsigned nwrites;
    uint64_t created_ms;
    int dir_rc;
    struct spool_dir_scratch scratch;
    size_t read_len;
    size_t scratch_seen; /* scratch.cap as the loop last saw it, for the stats */
    int read_rc;
    char read_err[XRAY_ERR_LEN];
    /* Replay. */
    struct spool_entry replay; /* the file read or in the upstream */
    bool replaying, kick, started, closing;
    uint64_t probe_ms;
    void (*close_cb)(void *data);
    void *close_data;
    struct spool_stats st;
};

static void spool_pump(struct spool *sp);
static void spool_after_job(uv_work_t *req, int status);

/* --- the index ----------------------------------------------------------------------- */

static struct spool_entry *spool_at(struct spool *sp, size_t i)
{
    return &sp->ring[(sp->head + i) % SPOOL_MAX_FILES];
}

static void spool_push_back(struct spool *sp, struct spool_entry e)
{
    *spool_at(sp, sp->n++) = e;
}

static void spool_push_front(struct spool *sp, struct spool_entry e)
{
    sp->head = (sp->head + SPOOL_MAX_FILES - 1) % SPOOL_MAX_FILES;
    sp->ring[sp->head] = e;
    sp->n++;
}

static struct spool_entry spool_pop_front(struct spool *sp)
{
    struct spool_entry e = sp->ring[sp->head];
    sp->head = (sp->head + 1) % SPOOL_MAX_FILES;
    sp->n--;
    return e;
}

static void spool_unlink(struct spool *sp, uint64_t seq)
{
    int rc = spool_dir_remove(sp->dirfd, seq);
    if (rc != 0)
        XLOG_EVERY(SPOOL_LOG_EVERY_MS, LOG_LEVEL_WARN, MOD, "cannot delete %s/%016llx.spool: %s",
                   sp->dir, (unsigned long long)seq, xray_strerror(rc));
}

/* Forgets a file that is gone or going: its bytes and its place in the count. */
static void spool_forget(struct spool *sp, const struct spool_entry *e)
{
    sp->bytes -= e->bytes;
    sp->nfiles--;
}

static void spool_count_dropped(struct spool *sp, unsigned docs)
{
    sp->st.dropped_docs += docs;
    stats_add(&sp->stats->rejected_by[STATS_REJECT_UPLOAD_FAILED], docs);
    stats_add(&sp->stats->rejected, docs);
}

static void spool_free_docs(struct spool *sp, struct doc *docs)
{
    while (docs != NULL) {
        struct doc *next = docs->next;
        pool_free(sp->pool, docs);
        docs = next;
    }
}

static void spool_evict_oldest(struct spool *sp)
{
    struct spool_entry e = spool_pop_front(sp);
    XLOG_EVERY(SPOOL_LOG_EVERY_MS, LOG_LEVEL_WARN, MOD,
               "full (%llu bytes of %llu, %zu files of %u): dropped the oldest file, "
               "%016llx.spool, and its %u documents",
               (unsigned long long)sp->bytes, (unsigned long long)sp->max_bytes, sp->nfiles,
               SPOOL_MAX_FILES, (unsigned long long)e.seq, e.count);
    spool_unlink(sp, e.seq);
    spool_forget(sp, &e);
    sp->st.dropped_files++;
    spool_count_dropped(sp, e.count);
}

/* Drops the oldest files until one more of size bytes fits; false when it cannot. */
static bool spool_make_room(struct spool *sp, uint64_t size)
{
    while (sp->bytes + size > sp->max_bytes || sp->nfiles >= SPOOL_MAX_FILES) {
        if (sp->n == 0)
            return false;
        spool_evict_oldest(sp);
    }
    return true;
}

/* --- the timer: replay now or later -------------------------------------------------- */

static void spool_on_timer(uv_timer_t *t)
{
    struct spool *sp = container_of(t, struct spool, timer);
    sp->timer_due = SPOOL_NO_TIMER;
    sp->kick = true;
    spool_pump(sp);
}

/* A replay try in ms, unless one is due sooner. */
static void spool_arm(struct spool *sp, uint64_t ms)
{
    if (sp->closing || !sp->started)
        return;
    uint64_t due = uv_now(sp->loop) + ms;
    if (sp->timer_due <= due)
        return;
    sp->timer_due = due;
    uv_timer_start(&sp->timer, spool_on_timer, ms, 0);
}

/* --- the job, on the thread pool ----------------------------------------------------- */

static void spool_job(uv_work_t *req)
{
    struct spool *sp = container_of(req, struct spool, work);
    if (sp->reading) {
        sp->read_err[0] = '\0';
        sp->read_rc =
            spool_dir_read(sp->dirfd, sp->replay.seq, &sp->scratch, &sp->read_len, sp->read_err);
    } else {
        sp->dir_rc =
            spool_dir_write(sp->dirfd, sp->writes, sp->nwrites, sp->created_ms, &sp->scratch);
    }
}

/* --- writing ------------------------------------------------------------------------- */

static void spool_after_write(struct spool *sp)
{
    bool wrote = false;
    for (unsigned i = 0; i < sp->nwrites; i++) {
        struct spool_dir_write *w = &sp->writes[i];
        struct spool_entry e = {w->seq, sp->wbytes[i], sp->wcount[i]};
        if (w->rc == 0) {
            spool_push_back(sp, e);
            sp->st.written_files++;
            sp->st.written_docs += e.count;
            wrote = true;
        } else {
            spool_forget(sp, &e);
            sp->st.dropped_files++;
            spool_count_dropped(sp, e.count);
            XLOG_EVERY(SPOOL_LOG_EVERY_MS, LOG_LEVEL_ERROR, MOD,
                       "cannot write a file in %s: %s: %u documents dropped", sp->dir,
                       xray_strerror(w->rc), e.count);
        }
        spool_free_docs(sp, (struct doc *)w->docs);
        w->docs = NULL;
    }
    sp->nwrites = 0;
    if (sp->dir_rc != 0)
        XLOG_EVERY(SPOOL_LOG_EVERY_MS, LOG_LEVEL_WARN, MOD, "fsync of %s failed: %s", sp->dir,
                   xray_strerror(sp->dir_rc));
    if (wrote && !sp->replaying)
        spool_arm(sp, sp->probe_ms);
}

/* Cuts pending documents into files of an upload batch each and starts the job. */
static void spool_start_write(struct spool *sp)
{
    while (sp->pend_head != NULL && sp->nwrites < SPOOL_JOB_FILES) {
        struct doc *first = sp->pend_head, *last = first, *d = first->next;
        unsigned n = 1;
        size_t data = first->len;
        while (d != NULL && n < SPOOL_FILE_MAX_DOCS && data + d->len <= SPOOL_FILE_DATA_MAX) {
            data += d->len;
            last = d;
            d = d->next;
            n++;
        }
        sp->pend_head = d;
        if (d == NULL)
            sp->pend_tail = NULL;
        last->next = NULL;
        sp->pend_count -= n;
        uint64_t size = spool_file_size(first, NULL, NULL);
        if (first->len > SPOOL_FILE_DOC_MAX || !spool_make_room(sp, size)) {
            sp->st.dropped_files++;
            spool_count_dropped(sp, n);
            spool_free_docs(sp, first);
            XLOG_EVERY(SPOOL_LOG_EVERY_MS, LOG_LEVEL_WARN, MOD,
                       "%u documents of %zu bytes do not fit in the spool's %llu bytes: dropped", n,
                       data, (unsigned long long)sp->max_bytes);
            continue;
        }
        sp->wcount[sp->nwrites] = n;
        sp->wbytes[sp->nwrites] = (uint32_t)size;
        sp->writes[sp->nwrites++] = (struct spool_dir_write){.docs = first, .seq = sp->next_seq++};
        sp->bytes += size;
        sp->nfiles++;
    }
    if (sp->nwrites == 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sp->created_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    sp->busy = true;
    sp->reading = false;
    uv_queue_work(sp->loop, &sp->work, spool_job, spool_after_job); /* fails only without one */
}

/* --- replay -------------------------------------------------------------------------- */

static void spool_replayed(void *ctx, int status)
{
    struct spool *sp = ctx;
    struct spool_entry e = sp->replay;
    sp->replaying = false;
    if (status == 0) {
        spool_unlink(sp, e.seq);
        spool_forget(sp, &e);
        sp->st.replayed_files++;
        sp->st.replayed_docs += e.count;
        sp->probe_ms = SPOOL_PROBE_MIN_MS;
        XLOG_DEBUG(MOD, "replayed %016llx (%u documents)", (unsigned long long)e.seq, e.count);
        if (sp->n == 0)
            XLOG_INFO(MOD, "every spooled batch is replayed (%llu files, %llu documents so far)",
                      (unsigned long long)sp->st.replayed_files,
                      (unsigned long long)sp->st.replayed_docs);
        spool_arm(sp, 0);
        return;
    }
    spool_push_front(sp, e);
    XLOG_EVERY(SPOOL_LOG_EVERY_MS, LOG_LEVEL_INFO, MOD,
               "replay of %016llx failed (%s): %zu files wait, next try in %llu ms",
               (unsigned long long)e.seq, xray_strerror(status), sp->nfiles,
               (unsigned long long)sp->probe_ms);
    spool_arm(sp, sp->probe_ms);
    sp->probe_ms = sp->probe_ms * 2 > SPOOL_PROBE_MAX_MS ? SPOOL_PROBE_MAX_MS : sp->probe_ms * 2;
}

static void spool_after_read(struct spool *sp)
{
    struct spool_entry e = sp->replay;
    char name[SPOOL_FILE_NAME_LEN];
    spool_file_name(name, e.seq, false);
    int rc = sp->read_rc;
    struct doc *docs = NULL;
    struct spool_file_info info;
    if (rc == 0 && !sp->closing)
        rc = spool_file_decode(sp->scratch.data, sp->read_len, false, sp->pool, uv_now(sp->loop),
                               &docs, &info, sp->read_err);
    if (rc == XRAY_EPARSE) {
        sp->replaying = false;
        spool_unlink(sp, e.seq);
        spool_forget(sp, &e);
        sp->st.corrupt_files++;
        XLOG_WARN(MOD, "%s/%s is corrupt (%s): deleted", sp->dir, name, sp->read_err);
        spool_arm(sp, 0);
        return;
    }
    if (rc == -ENOENT) {
        sp->replaying = false;
        spool_forget(sp, &e);
        sp->st.dropped_files++;
        spool_count_dropped(sp, e.count);
        XLOG_WARN(MOD, "%s/%s disappeared before replay: %u documents lost", sp->dir, name,
                  e.count);
        spool_arm(sp, 0);
        return;
    }
    if (rc == 0 && !sp->closing) {
        e.count = info.count;
        sp->replay = e;
        rc = upstream_replay(sp->up, docs, spool_replayed, sp);
        if (rc == 0)
            return; /* spool_replayed runs when it is done, perhaps already did */
        spool_free_docs(sp, docs);
    }
    sp->replaying = false;
    spool_push_front(sp, e);
    if (rc == XRAY_EFULL || rc == XRAY_ECLOSED || rc == 0) {
        spool_arm(sp, SPOOL_WAIT_MS);
        return;
    }
    XLOG_EVERY(SPOOL_LOG_EVERY_MS, LOG_LEVEL_WARN, MOD, "cannot read %s/%s: %s", sp->dir, name,
               xray_strerror(rc));
    spool_arm(sp, sp->probe_ms);
}

/* Reads the oldest file for replay when the pool and the upstream have room for it. */
static void spool_start_read(struct spool *sp)
{
    sp->kick = false;
    if (!sp->started || sp->closing || sp->replaying || sp->n == 0)
        return;
    const struct spool_entry *e = spool_at(sp, 0);
    size_t overhead = SPOOL_FILE_HEADER + SPOOL_FILE_TRAILER + e->count * SPOOL_FILE_RECORD;
    size_t data = e->bytes > overhead ? e->bytes - overhead : 0;
    size_t need = pool_doc_bytes(data) + (e->count - 1) * pool_doc_bytes(0);
    size_t used = pool_used_bytes(sp->pool), max = pool_max_bytes(sp->pool);
    if (used > max / 2 || need > max / 2 - used || !upstream_replay_ready(sp->up)) {
        spool_arm(sp, SPOOL_WAIT_MS);
        return;
    }
    sp->replay = spool_pop_front(sp);
    sp->replaying = true;
    sp->busy = true;
    sp->reading = true;
    uv_queue_work(sp->loop, &sp->work, spool_job, spool_after_job); /* fails only without one */
}

/* --- the loop side of the job -------------------------------------------------------- */

static void spool_on_timer_closed(uv_handle_t *h)
{
    struct spool *sp = container_of((uv_timer_t *)h, struct spool, timer);
    void (*cb)(void *) = sp->close_cb;
    void *data = sp->close_data;
    XLOG_INFO(MOD,
              "closed: %zu files (%llu bytes) kept in %s for the next start; this run wrote "
              "%llu files (%llu documents), replayed %llu (%llu documents), dropped %llu "
              "(%llu documents), deleted %llu corrupt",
              sp->nfiles, (unsigned long long)sp->bytes, sp->dir,
              (unsigned long long)sp->st.written_files, (unsigned long long)sp->st.written_docs,
              (unsigned long long)sp->st.replayed_files, (unsigned long long)sp->st.replayed_docs,
              (unsigned long long)sp->st.dropped_files, (unsigned long long)sp->st.dropped_docs,
              (unsigned long long)sp->st.corrupt_files);
    close(sp->dirfd);
    close(sp->lockfd); /* releases the lock */
    free(sp->scratch.data);
    free(sp->ring);
    free(sp);
    if (cb != NULL)
        cb(data);
}

static void spool_maybe_finish(struct spool *sp)
{
    if (!sp->closing || sp->busy || sp->pend_head != NULL ||
        uv_is_closing((uv_handle_t *)&sp->timer))
        return;
    uv_close((uv_handle_t *)&sp->timer, spool_on_timer_closed);
}

static void spool_after_job(uv_work_t *req, int status)
{
    struct spool *sp = container_of(req, struct spool, work);
    (void)status; /* never cancelled */
    sp->busy = false;
    if (sp->reading)
        spool_after_read(sp);
    else
        spool_after_write(sp);
    if (sp->scratch.cap > SPOOL_SCRATCH_KEEP) {
        free(sp->scratch.data);
        sp->scratch = (struct spool_dir_scratch){0};
    }
    sp->scratch_seen = sp->scratch.cap;
    spool_pump(sp);
    spool_maybe_finish(sp);
}

/* One job at a time: writes first, then a replay read when one is due. */
static void spool_pump(struct spool *sp)
{
    if (sp->busy)
        return;
    if (sp->pend_head != NULL)
        spool_start_write(sp);
    else if (sp->kick)
        spool_start_read(sp);
}

/* --- start-up ------------------------------------------------------------------------ */

static void spool_on_corrupt(void *ctx, const char *name, const char *why)
{
    struct spool *sp = ctx;
    sp->st.corrupt_files++;
    XLOG_WARN(MOD, "%s/%s is corrupt (%s): deleted", sp->dir, name, why);
}

/* Indexes what the directory holds, dropping the oldest past the caps. */
static int spool_scan(struct spool *sp, char err[XRAY_ERR_LEN])
{
    struct spool_dir_entry *found;
    size_t n;
    unsigned temp = 0;
    int rc = spool_dir_scan(sp->dirfd, &found, &n, &sp->next_seq, &temp, spool_on_corrupt, sp, err);
    sp->st.temp_files = temp;
    if (rc != 0)
        return rc;
    sp->st.found_files = n;
    for (size_t i = 0; i < n; i++) {
        struct spool_entry e = {found[i].seq, found[i].bytes, found[i].count};
        if (!spool_make_room(sp, e.bytes)) { /* larger than the cap on its own */
            spool_unlink(sp, e.seq);
            sp->st.dropped_files++;
            spool_count_dropped(sp, e.count);
            continue;
        }
        spool_push_back(sp, e);
        sp->bytes += e.bytes;
        sp->nfiles++;
    }
    free(found);
    return 0;
}

int spool_open(struct spool **out, const struct spool_options *opt, char err[XRAY_ERR_LEN])
{
    *out = NULL;
    if (opt == NULL || opt->loop == NULL || opt->pool == NULL || opt->stats == NULL ||
        opt->dir == NULL || opt->dir[0] == '\0' || strlen(opt->dir) >= PATH_MAX) {
        snprintf(err, XRAY_ERR_LEN, "no spool directory, or a path too long");
        return XRAY_ECONFIG;
    }
    struct spool *sp = calloc(1, sizeof(*sp));
    if (sp != NULL)
        sp->ring = malloc(SPOOL_MAX_FILES * sizeof(*sp->ring)); /* untouched pages cost nothing */
    if (sp == NULL || sp->ring == NULL) {
        free(sp);
        snprintf(err, XRAY_ERR_LEN, "spool %s: %s", opt->dir, xray_strerror(-ENOMEM));
        return -ENOMEM;
    }
    sp->loop = opt->loop;
    sp->pool = opt->pool;
    sp->stats = opt->stats;
    sp->max_bytes = opt->max_bytes ? opt->max_bytes : SPOOL_MAX_BYTES_DEFAULT;
    sp->probe_ms = SPOOL_PROBE_MIN_MS;
    sp->timer_due = SPOOL_NO_TIMER;
    sp->next_seq = 1; /* 0 is never a name: an easy mark for a file that is not ours */
    snprintf(sp->dir, sizeof(sp->dir), "%s", opt->dir);
    int rc = spool_dir_open(sp->dir, &sp->dirfd, &sp->lockfd, err);
    if (rc == 0 && (rc = spool_scan(sp, err)) == 0 &&
        (rc = uv_timer_init(sp->loop, &sp->timer)) != 0)
        snprintf(err, XRAY_ERR_LEN, "spool timer: %s", xray_strerror(rc));
    if (rc != 0) {
        if (sp->dirfd >= 0) {
            close(sp->lockfd);
            close(sp->dirfd);
        }
        free(sp->ring);
        free(sp);
        return rc;
    }
    *out = sp;
    return 0;
}

void spool_start(struct spool *sp, struct upstream *up)
{
    sp->up = up;
    sp->started = true;
    if (sp->n > 0)
        spool_arm(sp, 0);
}

/* --- the upstream's hooks and close -------------------------------------------------- */

void spool_give_up(void *ctx, struct doc *docs, unsigned count, int status)
{
    struct spool *sp = ctx;
    (void)count;
    (void)status;
    if (docs == NULL)
        return;
    if (sp->pend_tail != NULL)
        sp->pend_tail->next = docs;
    else
        sp->pend_head = docs;
    struct doc *d = docs;
    sp->pend_count++;
    while (d->next != NULL) {
        d = d->next;
        sp->pend_count++;
    }
    sp->pend_tail = d;
    spool_pump(sp);
}

void spool_on_ack(void *ctx)
{
    struct spool *sp = ctx;
    if (sp->replaying || sp->n == 0 || sp->kick || sp->timer_due <= uv_now(sp->loop))
        return; /* replaying, nothing to replay, or a try is due already */
    sp->probe_ms = SPOOL_PROBE_MIN_MS;
    spool_arm(sp, 0);
}

void spool_close(struct spool *sp, void (*cb)(void *data), void *data)
{
    if (sp->closing)
        return;
    sp->closing = true;
    sp->close_cb = cb;
    sp->close_data = data;
    uv_timer_stop(&sp->timer);
    sp->timer_due = SPOOL_NO_TIMER;
    sp->kick = false;
    spool_pump(sp);
    spool_maybe_finish(sp);
}

void spool_get_stats(const struct spool *sp, struct spool_stats *out)
{
    *out = sp->st;
    out->files = sp->nfiles;
    out->bytes = sp->bytes;
    out->max_bytes = sp->max_bytes;
    out->pending_docs = sp->pend_count;
    /* While a job runs, count the largest buffer it may have grown. */
    out->memory_bytes = sizeof(*sp) + sp->n * sizeof(struct spool_entry) +
                        (sp->busy ? SPOOL_FILE_MAX + 1 : sp->scratch_seen);
}

const char *spool_path(const struct spool *sp)
{
    return sp->dir;
}
