/* SPDX-License-Identifier: Apache-2.0 */
/* The rules holder: reads --sampling-rules, keeps the set in force, and hands each new
 * set to the authority (callback) and the workers (mailboxes). It never decides; it
 * never lets a bad file replace good rules: a set is swapped in only once it parsed
 * whole. The file is small (XRAY_SAMPLING_MAX_FILE_BYTES at most) and local, so it is
 * read with plain blocking calls on the loop, at start, on SIGHUP and on change. */
#include "sampler/rules_holder.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define MOD "sampling"

struct rules_holder {
    uv_loop_t *loop;
    char *path; /* "" for the built-in set */
    char *dir;  /* the file's folder, watched for events */
    char *base; /* the file's name in it */
    char *region;
    void (*on_change)(struct xray_sampling_rules *rules, void *data);
    void *data;
    struct xray_sampling_rules *rules; /* in force, one reference */
    uint64_t content_hash;             /* of the file's bytes the rules came from ... */
    size_t content_len;                /* ... so an unchanged file is not even parsed */
    struct rules_mailbox *subs[RULES_HOLDER_MAX_SUBSCRIBERS];
    size_t n_subs;
    struct rules_holder_stats stats;
    uv_timer_t debounce;
    uv_fs_event_t event;
    uv_fs_poll_t poll;
    bool event_on, poll_on;
    int open_handles;
    void (*close_cb)(void *data);
    void *close_data;
};

/* ---- the mailbox ---- */

void rules_mailbox_init(struct rules_mailbox *mb)
{
    atomic_init(&mb->_slot, NULL);
}

void rules_mailbox_post(struct rules_mailbox *mb, struct xray_sampling_rules *rules)
{
    struct xray_sampling_rules *old =
        atomic_exchange_explicit(&mb->_slot, xray_sampling_rules_ref(rules), memory_order_acq_rel);
    xray_sampling_rules_free(old); /* never taken: the consumer skips straight to the newest */
}

struct xray_sampling_rules *rules_mailbox_take(struct rules_mailbox *mb)
{
    if (atomic_load_explicit(&mb->_slot, memory_order_relaxed) == NULL)
        return NULL;
    return atomic_exchange_explicit(&mb->_slot, NULL, memory_order_acq_rel);
}

void rules_mailbox_return(struct rules_mailbox *mb, struct xray_sampling_rules *rules)
{
    struct xray_sampling_rules *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&mb->_slot, &expected, rules, memory_order_acq_rel,
                                                 memory_order_relaxed))
        xray_sampling_rules_free(rules);
}

void rules_mailbox_clear(struct rules_mailbox *mb)
{
    xray_sampling_rules_free(atomic_exchange(&mb->_slot, NULL));
}

/* ---- loading ---- */

/* Reads the whole file, at most XRAY_SAMPLING_MAX_FILE_BYTES. 0 with *buf (malloc'd),
 * *len and *mtime, or XRAY_ECONFIG with err. */
static int holder_read(const char *path, char **buf, size_t *len, int64_t *mtime,
                       char err[XRAY_ERR_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, XRAY_ERR_LEN, "cannot open %s: %s", path, strerror(errno));
        return XRAY_ECONFIG;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, XRAY_ERR_LEN, "%s is not a regular file", path);
        close(fd);
        return XRAY_ECONFIG;
    }
    size_t cap = XRAY_SAMPLING_MAX_FILE_BYTES + 1, n = 0;
    char *b = malloc(cap);
    if (b == NULL) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, XRAY_ERR_LEN, "cannot read %s: %s", path, strerror(errno));
            free(b);
            close(fd);
            return XRAY_ECONFIG;
        }
        if (r == 0 || (n += (size_t)r) == cap)
            break;
    }
    close(fd);
    if (n > XRAY_SAMPLING_MAX_FILE_BYTES) {
        snprintf(err, XRAY_ERR_LEN, "%s is larger than %u bytes", path,
                 (unsigned)XRAY_SAMPLING_MAX_FILE_BYTES);
        free(b);
        return XRAY_ECONFIG;
    }
    *buf = b;
    *len = n;
    *mtime = (int64_t)st.st_mtime;
    return 0;
}

/* Parses the file into a new set (owned). CreatedAt/ModifiedAt of local-format rules
 * come from the file's mtime, so reading an unchanged file gives an equal set and the
 * SDKs are not told to refetch. */
static uint64_t holder_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
    return h;
}

/* 0 with *out NULL when the file holds exactly the bytes loaded last. */
static int holder_load(struct rules_holder *h, struct xray_sampling_rules **out,
                       char err[XRAY_ERR_LEN])
{
    char *buf;
    size_t len;
    int64_t mtime;
    *out = NULL;
    int rc = holder_read(h->path, &buf, &len, &mtime, err);
    if (rc != 0)
        return rc;
    uint64_t hash = holder_hash(buf, len);
    if (h->rules != NULL && hash == h->content_hash && len == h->content_len) {
        free(buf);
        return 0;
    }
    char why[XRAY_SAMPLING_ERR_LEN] = "";
    struct xray_sampling_parse_options po = {.now_s = mtime, .region = h->region};
    rc = xray_sampling_rules_parse(buf, len, &po, out, why);
    free(buf);
    if (rc == -ENOMEM)
        return rc;
    if (rc != 0) {
        snprintf(err, XRAY_ERR_LEN, "%s: %s", h->path,
                 *why != '\0' ? why : xray_sampling_strerror(rc));
        return XRAY_ECONFIG;
    }
    h->content_hash = hash;
    h->content_len = len;
    return 0;
}

/* spec/sampling.md: "Serve only rules that pass, and say so in the log when a file's
 * rule would not." */
static void holder_log_set(const struct rules_holder *h, const struct xray_sampling_rules *r)
{
    size_t n = xray_sampling_rules_count(r), served = 0;
    for (size_t i = 0; i < n; i++) {
        const struct xray_sampling_rule *rule = xray_sampling_rules_get(r, i);
        if (rule->drop == 0) {
            served++;
            continue;
        }
        XLOG_WARN(MOD, "%s: rule \"%s\" is neither served to SDKs nor used by xrayd: %s", h->path,
                  rule->name, xray_sampling_drop_reason(rule->drop));
    }
    XLOG_INFO(MOD, "sampling rules from %s: %zu rules, %zu served", *h->path ? h->path : "built-in",
              n, served);
}

static char *holder_strdup(const char *s)
{
    return strdup(s != NULL ? s : "");
}

int rules_holder_create(struct rules_holder **out, const struct rules_holder_options *o,
                        char err[XRAY_ERR_LEN])
{
    char scratch[XRAY_ERR_LEN];
    if (err == NULL)
        err = scratch;
    *out = NULL;
    struct rules_holder *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    h->loop = o->loop;
    h->on_change = o->on_change;
    h->data = o->data;
    h->path = holder_strdup(o->path);
    h->region = o->region != NULL ? strdup(o->region) : NULL;
    if (h->path == NULL || (o->region != NULL && h->region == NULL))
        goto nomem;
    /* The folder and the name in it, for the inotify watch. */
    const char *slash = strrchr(h->path, '/');
    h->dir = slash == NULL      ? strdup(".")
             : slash == h->path ? strdup("/")
                                : strndup(h->path, (size_t)(slash - h->path));
    h->base = strdup(slash == NULL ? h->path : slash + 1);
    if (h->dir == NULL || h->base == NULL)
        goto nomem;

    int rc;
    if (*h->path == '\0') {
        uv_timeval64_t tv;
        uv_gettimeofday(&tv);
        h->rules = xray_sampling_rules_default((int64_t)tv.tv_sec);
        rc = h->rules != NULL ? 0 : -ENOMEM;
    } else {
        rc = holder_load(h, &h->rules, err);
    }
    if (rc != 0) {
        if (rc == -ENOMEM)
            snprintf(err, XRAY_ERR_LEN, "out of memory loading the sampling rules");
        rules_holder_close(h, NULL, NULL); /* nothing is open yet: frees at once */
        return rc;
    }
    holder_log_set(h, h->rules);
    uv_timer_init(h->loop, &h->debounce);
    h->open_handles = 1;
    *out = h;
    return 0;
nomem:
    snprintf(err, XRAY_ERR_LEN, "out of memory");
    free(h->path);
    free(h->region);
    free(h->dir);
    free(h->base);
    free(h);
    return -ENOMEM;
}

static void holder_publish(struct rules_holder *h)
{
    for (size_t i = 0; i < h->n_subs; i++)
        rules_mailbox_post(h->subs[i], h->rules);
    if (h->on_change != NULL)
        h->on_change(h->rules, h->data);
}

int rules_holder_reload(struct rules_holder *h, const char *why)
{
    if (*h->path == '\0')
        return 0;
    char err[XRAY_ERR_LEN] = "";
    struct xray_sampling_rules *next;
    h->stats.reloads++;
    int rc = holder_load(h, &next, err);
    if (rc != 0) {
        h->stats.failures++;
        XLOG_ERR(MOD, "%s: sampling rules not reloaded, the %zu rules in force stay: %s", why,
                 xray_sampling_rules_count(h->rules), rc == -ENOMEM ? "out of memory" : err);
        return rc;
    }
    if (next == NULL || xray_sampling_rules_equal(h->rules, next)) {
        xray_sampling_rules_free(next);
        XLOG_DEBUG(MOD, "%s: %s holds the rules in force", why, h->path);
        return 0;
    }
    xray_sampling_rules_free(h->rules);
    h->rules = next;
    h->stats.changes++;
    XLOG_INFO(MOD, "%s: sampling rules reloaded", why);
    holder_log_set(h, h->rules);
    holder_publish(h);
    return 1;
}

/* ---- watching ---- */

static void holder_on_debounce(uv_timer_t *t)
{
    struct rules_holder *h = container_of(t, struct rules_holder, debounce);
    rules_holder_reload(h, "file changed");
}

static void holder_schedule(struct rules_holder *h)
{
    if (h->close_cb == NULL && h->open_handles > 0)
        uv_timer_start(&h->debounce, holder_on_debounce, RULES_HOLDER_DEBOUNCE_MS, 0);
}

static void holder_on_event(uv_fs_event_t *e, const char *filename, int events, int status)
{
    struct rules_holder *h = container_of(e, struct rules_holder, event);
    (void)events;
    if (status < 0)
        return;
    if (filename == NULL || strcmp(filename, h->base) == 0)
        holder_schedule(h);
}

static void holder_on_poll(uv_fs_poll_t *p, int status, const uv_stat_t *prev,
                           const uv_stat_t *curr)
{
    struct rules_holder *h = container_of(p, struct rules_holder, poll);
    (void)prev;
    (void)curr;
    if (status == 0) /* a vanished file (ENOENT) is reloaded when it comes back */
        holder_schedule(h);
}

int rules_holder_watch(struct rules_holder *h)
{
    if (*h->path == '\0' || h->event_on || h->poll_on)
        return 0;
    int rc = uv_fs_poll_init(h->loop, &h->poll);
    if (rc == 0) {
        h->poll_on = true;
        h->open_handles++;
        rc = uv_fs_poll_start(&h->poll, holder_on_poll, h->path, RULES_HOLDER_POLL_MS);
    }
    if (rc != 0)
        XLOG_WARN(MOD, "cannot poll %s for changes: %s", h->path, uv_strerror(rc));
    int erc = uv_fs_event_init(h->loop, &h->event);
    if (erc == 0) {
        h->event_on = true;
        h->open_handles++;
        erc = uv_fs_event_start(&h->event, holder_on_event, h->dir, 0);
    }
    if (erc != 0)
        XLOG_WARN(MOD, "cannot watch %s for changes (polling every %d ms instead): %s", h->dir,
                  RULES_HOLDER_POLL_MS, uv_strerror(erc));
    return rc != 0 ? rc : erc;
}

/* ---- the rest ---- */

struct xray_sampling_rules *rules_holder_rules(const struct rules_holder *h)
{
    return h->rules;
}

const char *rules_holder_path(const struct rules_holder *h)
{
    return h->path;
}

int rules_holder_subscribe(struct rules_holder *h, struct rules_mailbox *mb)
{
    if (h->n_subs == RULES_HOLDER_MAX_SUBSCRIBERS)
        return -ENOSPC;
    h->subs[h->n_subs++] = mb;
    rules_mailbox_post(mb, h->rules);
    return 0;
}

void rules_holder_get_stats(const struct rules_holder *h, struct rules_holder_stats *out)
{
    *out = h->stats;
}

static void holder_free(struct rules_holder *h)
{
    void (*cb)(void *) = h->close_cb;
    void *data = h->close_data;
    xray_sampling_rules_free(h->rules);
    free(h->path);
    free(h->region);
    free(h->dir);
    free(h->base);
    free(h);
    if (cb != NULL)
        cb(data);
}

static void holder_closed(uv_handle_t *handle)
{
    struct rules_holder *h = handle->data;
    if (--h->open_handles == 0)
        holder_free(h);
}

static void holder_noop(void *data)
{
    (void)data;
}

void rules_holder_close(struct rules_holder *h, void (*cb)(void *data), void *data)
{
    h->close_cb = cb != NULL ? cb : holder_noop;
    h->close_data = data;
    if (h->open_handles == 0) {
        holder_free(h);
        return;
    }
    h->debounce.data = h;
    uv_close((uv_handle_t *)&h->debounce, holder_closed);
    if (h->poll_on) {
        h->poll.data = h;
        uv_close((uv_handle_t *)&h->poll, holder_closed);
    }
    if (h->event_on) {
        h->event.data = h;
        uv_close((uv_handle_t *)&h->event, holder_closed);
    }
}
