/* SPDX-License-Identifier: Apache-2.0 */
/* The recorder's sampler: the daemon's centralized rules and targets (polled over its
 * TCP address on a background thread), with the local rules - a rules file, else the
 * default 1/s + 5 % - before the first fetch, after the rules' 1 h expiry and in
 * LOCAL mode. Every decision goes through libxray_sampling; this file only moves
 * rules, statistics and targets between the daemon and a sampling state.
 *
 * How it works: what belongs to one process - the ClientID, the centralized state,
 * the lock guarding its swaps and the poller thread - lives in a `generation`. A
 * decision reads the current generation; when xray__ids_fork_generation() says this
 * is a child of fork(), it builds a new generation (new ClientID, fresh locks, the
 * parent's rules without its quotas, no thread) and publishes it by compare-and-swap;
 * the parent's generation is kept, untouched (its locks may be held by threads that
 * do not exist here), until the recorder is destroyed. The poller starts on the
 * first decision of each process. Decisions take the generation's read lock around
 * one xray_sampling_decide() (no I/O, no allocation); the poller takes the write
 * lock only to swap the state pointer, and frees the old state after. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "internal.h"
#include "sampler.h"

struct sampler_gen {
    struct sampler_gen *retired; /* the generation this one replaced (after fork) */
    uint64_t fork_gen;
    char client_id[XRAY_SAMPLING_CLIENT_ID_LEN + 1];
    pthread_rwlock_t lock;             /* guards `state` against its swap */
    struct xray_sampling_state *state; /* centralized; NULL before the first fetch */
    _Atomic uint64_t fetched_ms;       /* recorder clock of the last successful fetch */
    _Atomic int poller;                /* 0 not started, 1 running, 2 could not start */
    pthread_t thread;
    pthread_mutex_t mu; /* the poller's sleep and stop flag */
    pthread_cond_t cv;
    bool stop;
};

struct sampler {
    struct xray_recorder *rec;
    bool centralized;
    struct xray_sampling_state *local; /* the local rules, XRAY_SAMPLING_STATE_LOCAL */
    _Atomic(struct sampler_gen *) gen;
    struct xray__sampler_tuning tune;
    struct {
        _Atomic uint64_t rules_fetched, rules_failed, targets_sent, targets_failed, statistics_sent;
    } stats;
    struct xray__ratelimit rl;
};

static uint64_t sampler_random(void *ctx)
{
    (void)ctx;
    return xray_id_random64();
}

static const struct xray_sampling_random sampler_rng = {sampler_random, NULL};

static uint64_t sampler_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t sampler_now_ms(const struct sampler *s)
{
    return xray__recorder_now_us(s->rec) / 1000;
}

static uint64_t sampler_jitter(uint32_t max_ms)
{
    return max_ms ? xray_id_random64() % ((uint64_t)max_ms + 1) : 0;
}

/* ---- generations ---- */

static struct sampler_gen *sampler_gen_new(uint64_t fork_gen)
{
    struct sampler_gen *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Writers first: the poller's swap is a pointer store and must not wait behind a
     * stream of decisions; readers wait at most that store. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&g->lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&g->mu, NULL);
    g->fork_gen = fork_gen;
    xray_sampling_client_id(g->client_id, &sampler_rng);
    return g;
}

/* Frees g; its locks are destroyed only when they belong to this process. */
static void sampler_gen_free(struct sampler_gen *g, bool own_locks)
{
    xray_sampling_state_destroy(g->state);
    if (own_locks) {
        pthread_rwlock_destroy(&g->lock);
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
    }
    free(g);
}

/* The child of fork(): a new ClientID, the parent's rules (still valid until their
 * expiry) with fresh counters and no quota - a quota was granted to the parent's
 * ClientID, not to this process. */
static struct sampler_gen *sampler_fork(struct sampler *s, struct sampler_gen *old, uint64_t fg)
{
    for (;;) {
        struct sampler_gen *g = sampler_gen_new(fg);
        if (g == NULL)
            return NULL;
        if (old->state != NULL) {
            uint64_t fetched = atomic_load(&old->fetched_ms);
            g->state = xray_sampling_state_create(xray_sampling_state_rules(old->state),
                                                  g->client_id, 0, NULL, fetched);
            atomic_store(&g->fetched_ms, g->state != NULL ? fetched : 0);
        }
        g->retired = old;
        if (atomic_compare_exchange_strong(&s->gen, &old, g))
            return g;
        /* Another thread of the child won; use its generation. */
        sampler_gen_free(g, true);
        if (old->fork_gen == fg)
            return old;
    }
}

static struct sampler_gen *sampler_current(struct sampler *s)
{
    uint64_t fg = xray__ids_fork_generation();
    struct sampler_gen *g = atomic_load_explicit(&s->gen, memory_order_acquire);
    if (g->fork_gen == fg)
        return g;
    return sampler_fork(s, g, fg);
}

/* ---- the daemon's API ---- */

static int sampler_post(struct sampler *s, const char *path, const char *body, size_t len,
                        size_t max, struct xray__http_response *resp)
{
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    struct xray__http_request req = {
        .host = s->rec->tcp_host,
        .port = s->rec->tcp_port,
        .method = "POST",
        .path = path,
        .headers = headers,
        .body = body,
        .body_len = len,
        .timeout_ms = (int)s->tune.timeout_ms,
        .max_body = max,
    };
    int rc = xray__http_call(&req, resp);
    if (rc == 0 && resp->status != 200) {
        xray__log_every(&s->rl, 300000, XRAY_LOG_WARN, "sampling: %s answered %d", path,
                        resp->status);
        xray__http_response_free(resp);
        return -EPROTO;
    }
    if (rc != 0)
        xray__log_every(&s->rl, 300000, XRAY_LOG_WARN,
                        "sampling: %s at %s:%u: %s; local rules apply until it answers", path,
                        s->rec->tcp_host, (unsigned)s->rec->tcp_port, strerror(-rc));
    return rc;
}

/* GetSamplingRules; on success a new state (carrying quotas and counters by rule
 * name) replaces the old one. Poller thread only. */
static void sampler_fetch_rules(struct sampler *s, struct sampler_gen *g)
{
    struct xray__http_response resp;
    if (sampler_post(s, "/GetSamplingRules", "{}", 2, XRAY_SAMPLING_MAX_FILE_BYTES, &resp) != 0) {
        atomic_fetch_add(&s->stats.rules_failed, 1);
        return;
    }
    uint64_t now = sampler_now_ms(s);
    struct xray_sampling_parse_options po = {.now_s = (int64_t)(now / 1000)};
    struct xray_sampling_rules *rules = NULL;
    char err[XRAY_SAMPLING_ERR_LEN] = "";
    int rc = xray_sampling_rules_parse(resp.body, resp.len, &po, &rules, err);
    xray__http_response_free(&resp);
    if (rc != 0) {
        atomic_fetch_add(&s->stats.rules_failed, 1);
        xray__log_every(&s->rl, 300000, XRAY_LOG_WARN, "sampling: rules refused: %s", err);
        return;
    }
    for (size_t i = 0; i < xray_sampling_rules_count(rules); i++) {
        const struct xray_sampling_rule *r = xray_sampling_rules_get(rules, i);
        if (r->drop)
            xray__log(XRAY_LOG_DEBUG, "sampling: rule %s ignored: %s", r->name,
                      xray_sampling_drop_reason(r->drop));
    }
    /* The poller is the only writer of g->state, so it reads it without the lock. */
    struct xray_sampling_state *st =
        xray_sampling_state_create(rules, g->client_id, 0, g->state, now);
    xray_sampling_rules_free(rules);
    if (st == NULL) {
        atomic_fetch_add(&s->stats.rules_failed, 1);
        return;
    }
    pthread_rwlock_wrlock(&g->lock);
    struct xray_sampling_state *old = g->state;
    g->state = st;
    atomic_store(&g->fetched_ms, now);
    pthread_rwlock_unlock(&g->lock);
    xray_sampling_state_destroy(old);
    atomic_fetch_add(&s->stats.rules_fetched, 1);
    xray__log(XRAY_LOG_DEBUG, "sampling: %zu rules from the daemon",
              xray_sampling_rules_count(xray_sampling_state_rules(st)));
}

/* Reports statistics and applies targets. Returns 1 when the rules must be fetched
 * now (LastRuleModification is newer), else 0; *tick_ms gets the shortest report
 * interval the targets asked for. Poller thread only. */
static int sampler_targets(struct sampler *s, struct sampler_gen *g, uint64_t *tick_ms)
{
    struct xray_sampling_state *st = g->state;
    if (st == NULL)
        return 0;
    uint64_t now = sampler_now_ms(s);
    int refetch = 0;
    struct xray_sampling_statistics docs[XRAY_SAMPLING_MAX_STATISTICS];
    size_t n;
    /* A rule set of more than 25 rules reports in several calls. */
    while ((n = xray_sampling_state_report(st, now, docs, XRAY_SAMPLING_MAX_STATISTICS)) > 0) {
        char *body = NULL;
        size_t len = 0;
        if (xray_sampling_statistics_serialize(docs, n, &body, &len) != 0)
            return refetch;
        struct xray__http_response resp;
        int rc =
            sampler_post(s, "/SamplingTargets", body, len, XRAY_SAMPLING_MAX_BODY_BYTES, &resp);
        free(body);
        if (rc != 0) {
            atomic_fetch_add(&s->stats.targets_failed, 1);
            return refetch;
        }
        struct xray_sampling_target targets[XRAY_SAMPLING_MAX_STATISTICS];
        size_t nt = 0;
        int64_t last_mod = 0;
        char err[XRAY_SAMPLING_ERR_LEN] = "";
        rc = xray_sampling_targets_parse(resp.body, resp.len, targets, XRAY_SAMPLING_MAX_STATISTICS,
                                         &nt, &last_mod, err);
        xray__http_response_free(&resp);
        if (rc != 0) {
            atomic_fetch_add(&s->stats.targets_failed, 1);
            xray__log_every(&s->rl, 300000, XRAY_LOG_WARN, "sampling: targets refused: %s", err);
            return refetch;
        }
        if (xray_sampling_state_apply(st, targets, nt, last_mod, now) == 1)
            refetch = 1;
        atomic_fetch_add(&s->stats.statistics_sent, n);
        atomic_fetch_add(&s->stats.targets_sent, 1);
        for (size_t i = 0; i < nt; i++)
            if ((targets[i].have & XRAY_SAMPLING_TARGET_INTERVAL) && targets[i].interval_s > 0 &&
                (uint64_t)targets[i].interval_s * 1000 < *tick_ms)
                *tick_ms = (uint64_t)targets[i].interval_s * 1000;
    }
    return refetch;
}

/* Sleeps until deadline (monotonic ms) or stop; true when stopping. */
static bool sampler_sleep(struct sampler_gen *g, uint64_t deadline)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                          .tv_nsec = (long)(deadline % 1000) * 1000000};
    pthread_mutex_lock(&g->mu);
    while (!g->stop && sampler_mono_ms() < deadline)
        if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) == ETIMEDOUT)
            break;
    bool stop = g->stop;
    pthread_mutex_unlock(&g->mu);
    return stop;
}

struct sampler_poller_arg {
    struct sampler *s;
    struct sampler_gen *g;
};

static void *sampler_poller(void *arg)
{
    struct sampler *s = ((struct sampler_poller_arg *)arg)->s;
    struct sampler_gen *g = ((struct sampler_poller_arg *)arg)->g;
    free(arg);
    const struct xray__sampler_tuning t = s->tune;
    uint64_t now = sampler_mono_ms();
    uint64_t next_rules = now; /* at once: the local rules apply until the first answer */
    uint64_t next_targets = now + t.targets_interval_ms + sampler_jitter(t.targets_jitter_ms);
    for (;;) {
        uint64_t deadline = next_rules < next_targets ? next_rules : next_targets;
        if (sampler_sleep(g, deadline))
            break;
        now = sampler_mono_ms();
        if (now >= next_rules) {
            sampler_fetch_rules(s, g);
            next_rules = now + t.rules_interval_ms + sampler_jitter(t.rules_jitter_ms);
        }
        if (now >= next_targets) {
            uint64_t tick = t.targets_interval_ms;
            if (sampler_targets(s, g, &tick) == 1) {
                sampler_fetch_rules(s, g);
                next_rules = now + t.rules_interval_ms + sampler_jitter(t.rules_jitter_ms);
            }
            if (tick < 1000 && tick < t.targets_interval_ms)
                tick = 1000; /* a target asking for less than 1 s is not followed */
            next_targets = sampler_mono_ms() + tick + sampler_jitter(t.targets_jitter_ms);
        }
    }
    return NULL;
}

static void sampler_start_poller(struct sampler *s, struct sampler_gen *g)
{
    int expected = 0;
    if (atomic_load_explicit(&g->poller, memory_order_relaxed) != 0 ||
        !atomic_compare_exchange_strong(&g->poller, &expected, 1))
        return;
    struct sampler_poller_arg *arg = malloc(sizeof(*arg));
    int rc = ENOMEM;
    if (arg != NULL) {
        arg->s = s;
        arg->g = g;
        /* The poller must not take the host's signals. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = pthread_create(&g->thread, NULL, sampler_poller, arg);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0)
            free(arg);
    }
    if (rc != 0) {
        atomic_store(&g->poller, 2);
        xray__log(XRAY_LOG_ERROR, "sampling: no poller thread (%s): local rules apply",
                  strerror(rc));
    }
}

/* ---- the hook ---- */

static bool sampler_decide(void *ctx, const struct xray_sampling_request *req, uint64_t now_ms,
                           char *rule_name)
{
    struct sampler *s = ctx;
    struct xray_sampling_decision d;
    rule_name[0] = '\0';
    if (s->centralized) {
        struct sampler_gen *g = sampler_current(s);
        if (g != NULL) {
            sampler_start_poller(s, g);
            bool decided = false, sampled = false;
            if (pthread_rwlock_rdlock(&g->lock) == 0) {
                if (g->state != NULL &&
                    now_ms < atomic_load(&g->fetched_ms) + XRAY__SAMPLER_RULES_TTL_MS) {
                    sampled = xray_sampling_decide(g->state, req, now_ms, &sampler_rng, &d);
                    /* The name is copied while the state (which owns it) is held. */
                    snprintf(rule_name, XRAY_SAMPLING_NAME_BYTES + 1, "%s", d.rule_name);
                    decided = true;
                }
                pthread_rwlock_unlock(&g->lock);
            }
            if (decided)
                return sampled;
        }
    }
    /* Local rules: like the other SDKs, no rule name is recorded for them. */
    return xray_sampling_decide(s->local, req, now_ms, &sampler_rng, &d);
}

static void sampler_destroy(void *ctx)
{
    struct sampler *s = ctx;
    if (s == NULL)
        return;
    uint64_t fg = xray__ids_fork_generation();
    struct sampler_gen *g = atomic_load(&s->gen);
    if (g != NULL && g->fork_gen == fg && atomic_load(&g->poller) == 1) {
        pthread_mutex_lock(&g->mu);
        g->stop = true;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->thread, NULL);
    }
    while (g != NULL) {
        struct sampler_gen *older = g->retired;
        sampler_gen_free(g, g->fork_gen == fg);
        g = older;
    }
    xray_sampling_state_destroy(s->local);
    free(s);
}

static const struct xray__sampler_ops sampler_ops = {sampler_decide, sampler_destroy};

/* Reads the local rules file (at most XRAY_SAMPLING_MAX_FILE_BYTES). */
static int sampler_read_rules(const char *path, int64_t now_s, struct xray_sampling_rules **out,
                              char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, XRAY_SDK_ERR_LEN, "sampling rules file %.150s: %s", path, strerror(e));
        return XRAY_SDK_ECONFIG;
    }
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int rc = XRAY_SDK_ECONFIG;
    if (fstat(fd, &st) == 0 && st.st_size >= 0 &&
        (uint64_t)st.st_size <= XRAY_SAMPLING_MAX_FILE_BYTES &&
        (buf = malloc((size_t)st.st_size + 1)) != NULL) {
        ssize_t r;
        while (len < (size_t)st.st_size &&
               ((r = read(fd, buf + len, (size_t)st.st_size - len)) > 0 || errno == EINTR))
            if (r > 0)
                len += (size_t)r;
        char perr[XRAY_SAMPLING_ERR_LEN] = "";
        struct xray_sampling_parse_options po = {.now_s = now_s};
        int prc = xray_sampling_rules_parse(buf, len, &po, out, perr);
        if (prc == 0)
            rc = 0;
        else
            snprintf(err, XRAY_SDK_ERR_LEN, "sampling rules file %.100s: %s", path, perr);
    } else {
        snprintf(err, XRAY_SDK_ERR_LEN, "sampling rules file %.150s: unreadable or over %u bytes",
                 path, XRAY_SAMPLING_MAX_FILE_BYTES);
    }
    free(buf);
    close(fd);
    return rc;
}

int xray__sampler_create(struct xray_recorder *rec, const struct xray_config *cfg,
                         const struct xray__sampler_ops **ops, void **ctx, char *err)
{
    char errbuf[XRAY_SDK_ERR_LEN];
    if (err == NULL)
        err = errbuf;
    *ops = NULL;
    *ctx = NULL;
    struct sampler *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->rec = rec;
    s->centralized = cfg->sampler == XRAY_SAMPLER_CENTRALIZED;
    s->tune = (struct xray__sampler_tuning){
        XRAY__SAMPLER_RULES_INTERVAL_MS, XRAY__SAMPLER_RULES_JITTER_MS,
        XRAY__SAMPLER_TARGETS_INTERVAL_MS, XRAY__SAMPLER_TARGETS_JITTER_MS,
        XRAY__SAMPLER_TIMEOUT_MS};
    uint64_t now = xray__recorder_now_us(rec) / 1000;
    struct xray_sampling_rules *rules = NULL;
    if (cfg->sampling_rules_file != NULL && cfg->sampling_rules_file[0]) {
        int rc = sampler_read_rules(cfg->sampling_rules_file, (int64_t)(now / 1000), &rules, err);
        if (rc != 0) {
            free(s);
            return rc;
        }
    } else if ((rules = xray_sampling_rules_default((int64_t)(now / 1000))) == NULL) {
        free(s);
        return -ENOMEM;
    }
    s->local = xray_sampling_state_create(rules, NULL, XRAY_SAMPLING_STATE_LOCAL, NULL, now);
    xray_sampling_rules_free(rules);
    struct sampler_gen *g = NULL;
    if (s->local == NULL ||
        (s->centralized && (g = sampler_gen_new(xray__ids_fork_generation())) == NULL)) {
        xray_sampling_state_destroy(s->local);
        free(s);
        snprintf(err, XRAY_SDK_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    atomic_init(&s->gen, g);
    *ops = &sampler_ops;
    *ctx = s;
    return 0;
}

void xray__sampler_tune(void *ctx, const struct xray__sampler_tuning *t)
{
    struct sampler *s = ctx;
    s->tune = *t;
}

void xray__sampler_stats(void *ctx, struct xray__sampler_stats *out)
{
    struct sampler *s = ctx;
    out->rules_fetched = atomic_load(&s->stats.rules_fetched);
    out->rules_failed = atomic_load(&s->stats.rules_failed);
    out->targets_sent = atomic_load(&s->stats.targets_sent);
    out->targets_failed = atomic_load(&s->stats.targets_failed);
    out->statistics_sent = atomic_load(&s->stats.statistics_sent);
    out->centralized_live = false;
    if (s->centralized) {
        struct sampler_gen *g = sampler_current(s);
        uint64_t fetched = g ? atomic_load(&g->fetched_ms) : 0;
        out->centralized_live =
            fetched != 0 && sampler_now_ms(s) < fetched + XRAY__SAMPLER_RULES_TTL_MS;
    }
}

void xray__sampler_client_id(void *ctx, char out[XRAY_SAMPLING_CLIENT_ID_LEN + 1])
{
    struct sampler *s = ctx;
    struct sampler_gen *g = s->centralized ? sampler_current(s) : NULL;
    snprintf(out, XRAY_SAMPLING_CLIENT_ID_LEN + 1, "%s", g ? g->client_id : "");
}
