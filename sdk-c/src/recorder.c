/* SPDX-License-Identifier: Apache-2.0 */
/* The recorder: configuration from code and the AWS_XRAY_* environment (wire.md),
 * the daemon's addresses, the UDP socket, the sampler and plugin hooks, counters,
 * the process-wide log sink and context-missing policy, and error texts. It decides
 * nothing per request beyond calling the sampler. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- errors ---- */

const char *xray_sdk_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define XX(name, value, msg)                                                                       \
    case XRAY_##name:                                                                              \
        return msg;
        XRAY_SDK_ERRNO_MAP(XX)
#undef XX
    default:
        break;
    }
    if (err <= -21000 && err > -22000)
        return xray_sampling_strerror(err);
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

/* ---- logging and the context-missing policy (process-wide) ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int log_level = XRAY_LOG_WARN;
static xray_log_fn log_fn;
static void *log_ctx;
static _Atomic int missing_policy = XRAY_CONTEXT_LOG_ERROR;
static xray_context_missing_fn missing_fn;
static void *missing_ctx;
static _Atomic uint64_t missing_count;
static struct xray__ratelimit missing_rl;

bool xray__log_enabled(enum xray_log_level level)
{
    return (int)level >= atomic_load_explicit(&log_level, memory_order_relaxed) &&
           level < XRAY_LOG_SILENT;
}

static void log_line(enum xray_log_level level, const char *line)
{
    static const char *const names[] = {"Debug", "Info", "Warn", "Error"};
    pthread_mutex_lock(&log_lock);
    xray_log_fn fn = log_fn;
    void *ctx = log_ctx;
    pthread_mutex_unlock(&log_lock);
    if (fn != NULL) {
        fn(ctx, level, line);
        return;
    }
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s [%s] [xray] %s\n", when, names[level], line);
}

static void log_v(enum xray_log_level level, const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    log_line(level, line);
}

void xray__log(enum xray_log_level level, const char *fmt, ...)
{
    if (!xray__log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(level, fmt, ap);
    va_end(ap);
}

void xray__log_every(struct xray__ratelimit *rl, uint64_t interval_ms, enum xray_log_level level,
                     const char *fmt, ...)
{
    if (!xray__log_enabled(level))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    uint64_t next = atomic_load_explicit(&rl->next_ms, memory_order_relaxed);
    if (now < next || !atomic_compare_exchange_strong(&rl->next_ms, &next, now + interval_ms)) {
        atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
        return;
    }
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    uint64_t skipped = atomic_exchange(&rl->suppressed, 0);
    if (skipped > 0) {
        size_t n = strlen(line);
        snprintf(line + n, sizeof(line) - n, " (%llu more suppressed)",
                 (unsigned long long)skipped);
    }
    log_line(level, line);
}

void xray__recorder_context_missing(const char *what)
{
    atomic_fetch_add_explicit(&missing_count, 1, memory_order_relaxed);
    int policy = atomic_load_explicit(&missing_policy, memory_order_relaxed);
    if (policy == XRAY_CONTEXT_IGNORE_ERROR)
        return;
    xray__log_every(&missing_rl, 10000, XRAY_LOG_ERROR, "%s: no current segment", what);
    if (policy == XRAY_CONTEXT_RUNTIME_ERROR) {
        pthread_mutex_lock(&log_lock);
        xray_context_missing_fn fn = missing_fn;
        void *ctx = missing_ctx;
        pthread_mutex_unlock(&log_lock);
        if (fn != NULL)
            fn(ctx, what);
    }
}

/* ---- configuration ---- */

void xray_config_init(struct xray_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->enabled = true;
    cfg->log_level = XRAY_LOG_WARN;
    cfg->context_missing = XRAY_CONTEXT_LOG_ERROR;
    cfg->sampler = XRAY_SAMPLER_CENTRALIZED;
    cfg->stream_threshold = XRAY__DEFAULT_STREAM_THRESHOLD;
}

static void recorder_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void recorder_err(char *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, XRAY_SDK_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* "host:port" with host possibly "[v6]"; host_out gets the host without brackets. */
static bool recorder_host_port(const char *s, size_t n, char *host, size_t cap, uint16_t *port)
{
    const char *colon = NULL;
    const char *h = s;
    size_t hn;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL || close + 1 >= s + n || close[1] != ':')
            return false;
        h = s + 1;
        hn = (size_t)(close - s - 1);
        colon = close + 1;
    } else {
        for (size_t i = n; i > 0; i--)
            if (s[i - 1] == ':') {
                colon = s + i - 1;
                break;
            }
        if (colon == NULL)
            return false;
        hn = (size_t)(colon - s);
        if (memchr(s, ':', hn) != NULL)
            return false; /* a bare IPv6 address needs brackets */
    }
    if (hn == 0 || hn >= cap)
        return false;
    const char *p = colon + 1, *end = s + n;
    if (p == end || end - p > 5)
        return false;
    unsigned long v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    memcpy(host, h, hn);
    host[hn] = '\0';
    *port = (uint16_t)v;
    return true;
}

int xray__recorder_parse_address(struct xray_recorder *rec, const char *s, char *err)
{
    size_t n = strlen(s);
    const char *sp = memchr(s, ' ', n);
    if (sp == NULL) {
        if (!recorder_host_port(s, n, rec->udp_host, sizeof(rec->udp_host), &rec->udp_port))
            goto bad;
        memcpy(rec->tcp_host, rec->udp_host, sizeof(rec->tcp_host));
        rec->tcp_port = rec->udp_port;
        return 0;
    }
    /* "tcp:h:p udp:h:p" in either order, one space apart. */
    const char *parts[2] = {s, sp + 1};
    size_t lens[2] = {(size_t)(sp - s), n - (size_t)(sp - s) - 1};
    bool have_tcp = false, have_udp = false;
    for (int i = 0; i < 2; i++) {
        const char *p = parts[i];
        size_t pn = lens[i];
        if (pn > 4 && strncasecmp(p, "tcp:", 4) == 0 && !have_tcp) {
            if (!recorder_host_port(p + 4, pn - 4, rec->tcp_host, sizeof(rec->tcp_host),
                                    &rec->tcp_port))
                goto bad;
            have_tcp = true;
        } else if (pn > 4 && strncasecmp(p, "udp:", 4) == 0 && !have_udp) {
            if (!recorder_host_port(p + 4, pn - 4, rec->udp_host, sizeof(rec->udp_host),
                                    &rec->udp_port))
                goto bad;
            have_udp = true;
        } else
            goto bad;
    }
    if (have_tcp && have_udp)
        return 0;
bad:
    recorder_err(err,
                 "invalid daemon address \"%.100s\": want host:port or tcp:host:port "
                 "udp:host:port",
                 s);
    return XRAY_SDK_ECONFIG;
}

/* Resolves the UDP address once (a host name is looked up here, never per send). */
static int recorder_resolve(struct xray_recorder *rec, char *err)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)rec->udp_port);
    int rc = getaddrinfo(rec->udp_host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        recorder_err(err, "daemon address %s: %s", rec->udp_host, gai_strerror(rc));
        return XRAY_SDK_ECONFIG;
    }
    memcpy(&rec->udp_addr, res->ai_addr, res->ai_addrlen);
    rec->udp_addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static bool env_bool(const char *v, bool *out)
{
    if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return false;
    return true;
}

/* Applies the environment over cfg (a copy); strings point into the environment. */
static int recorder_env(struct xray_config *cfg, char *err)
{
    const char *v;
    if ((v = getenv("AWS_XRAY_DAEMON_ADDRESS")) != NULL && v[0])
        cfg->daemon_address = v;
    if ((v = getenv("AWS_XRAY_TRACING_NAME")) != NULL && v[0])
        cfg->service_name = v;
    if ((v = getenv("AWS_XRAY_CONTEXT_MISSING")) != NULL && v[0]) {
        if (strcasecmp(v, "RUNTIME_ERROR") == 0)
            cfg->context_missing = XRAY_CONTEXT_RUNTIME_ERROR;
        else if (strcasecmp(v, "LOG_ERROR") == 0)
            cfg->context_missing = XRAY_CONTEXT_LOG_ERROR;
        else if (strcasecmp(v, "IGNORE_ERROR") == 0)
            cfg->context_missing = XRAY_CONTEXT_IGNORE_ERROR;
        else {
            recorder_err(err, "AWS_XRAY_CONTEXT_MISSING: want RUNTIME_ERROR, LOG_ERROR or "
                              "IGNORE_ERROR");
            return XRAY_SDK_ECONFIG;
        }
    }
    if ((v = getenv("AWS_XRAY_SDK_ENABLED")) != NULL && v[0] && !env_bool(v, &cfg->enabled)) {
        recorder_err(err, "AWS_XRAY_SDK_ENABLED: want true or false");
        return XRAY_SDK_ECONFIG;
    }
    if ((v = getenv("AWS_XRAY_LOG_LEVEL")) != NULL && v[0]) {
        static const struct {
            const char *name;
            enum xray_log_level level;
        } levels[] = {{"debug", XRAY_LOG_DEBUG},   {"trace", XRAY_LOG_DEBUG},
                      {"info", XRAY_LOG_INFO},     {"warn", XRAY_LOG_WARN},
                      {"warning", XRAY_LOG_WARN},  {"error", XRAY_LOG_ERROR},
                      {"silent", XRAY_LOG_SILENT}, {"off", XRAY_LOG_SILENT}};
        size_t i = 0;
        for (; i < sizeof(levels) / sizeof(levels[0]); i++)
            if (strcasecmp(v, levels[i].name) == 0)
                break;
        if (i == sizeof(levels) / sizeof(levels[0])) {
            recorder_err(err, "AWS_XRAY_LOG_LEVEL: want debug, info, warn, error or silent");
            return XRAY_SDK_ECONFIG;
        }
        cfg->log_level = levels[i].level;
    }
    bool debug = false;
    if ((v = getenv("AWS_XRAY_DEBUG_MODE")) != NULL && v[0]) {
        if (!env_bool(v, &debug)) {
            recorder_err(err, "AWS_XRAY_DEBUG_MODE: want true or false");
            return XRAY_SDK_ECONFIG;
        }
        if (debug)
            cfg->log_level = XRAY_LOG_DEBUG;
    }
    return 0;
}

static uint64_t recorder_real_clock(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t xray__recorder_now_us(const struct xray_recorder *rec)
{
    return rec->clock(rec->clock_ctx);
}

uint64_t xray_recorder_now_us(const struct xray_recorder *rec)
{
    return rec != NULL ? xray__recorder_now_us(rec) : recorder_real_clock(NULL);
}

struct xray_recorder *xray_recorder_create(const struct xray_config *given, char *err)
{
    struct xray_config cfg;
    if (given != NULL)
        cfg = *given;
    else
        xray_config_init(&cfg);
    if (err != NULL)
        err[0] = '\0';
    if (!(cfg.flags & XRAY_CONFIG_IGNORE_ENV) && recorder_env(&cfg, err) != 0)
        return NULL;

    struct xray_recorder *rec = calloc(1, sizeof(*rec));
    if (rec == NULL) {
        recorder_err(err, "out of memory");
        return NULL;
    }
    rec->fd = -1;
    rec->enabled = cfg.enabled;
    rec->sampler_mode = cfg.sampler;
    rec->stream_threshold =
        cfg.stream_threshold ? cfg.stream_threshold : XRAY__DEFAULT_STREAM_THRESHOLD;
    rec->clock = cfg.clock ? cfg.clock : recorder_real_clock;
    rec->clock_ctx = cfg.clock_ctx;
    rec->send = xray__emitter_write;
    const char *name =
        cfg.service_name && cfg.service_name[0] ? cfg.service_name : program_invocation_short_name;
    snprintf(rec->service_name, sizeof(rec->service_name), "%s", name ? name : "");
    rec->service_name_json = xray__serialize_quote_dup(rec->service_name);
    if (cfg.service_version)
        rec->service_version_json = xray__serialize_quote_dup(cfg.service_version);
    if (cfg.origin && cfg.origin[0]) {
        rec->origin_json = xray__serialize_quote_dup(cfg.origin);
        snprintf(rec->service_type, sizeof(rec->service_type), "%s", cfg.origin);
    }
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) != NULL)
        rec->cwd_json = xray__serialize_quote_dup(cwd);
    if (rec->service_name_json == NULL || (cfg.service_version && !rec->service_version_json) ||
        (rec->service_type[0] && !rec->origin_json)) {
        recorder_err(err, "out of memory");
        goto fail;
    }
    if (cfg.stream_threshold > XRAY_SUBSEGMENTS_MAX) {
        recorder_err(err, "stream_threshold over %d", XRAY_SUBSEGMENTS_MAX);
        goto fail;
    }
    if (xray__recorder_parse_address(
            rec, cfg.daemon_address ? cfg.daemon_address : XRAY__DEFAULT_DAEMON, err) != 0)
        goto fail;

    /* The process-wide settings follow the newest recorder. */
    pthread_mutex_lock(&log_lock);
    log_fn = cfg.log_fn;
    log_ctx = cfg.log_ctx;
    missing_fn = cfg.on_context_missing;
    missing_ctx = cfg.context_missing_ctx;
    pthread_mutex_unlock(&log_lock);
    atomic_store(&log_level, (int)cfg.log_level);
    atomic_store(&missing_policy, (int)cfg.context_missing);

    if (!rec->enabled) {
        xray__log(XRAY_LOG_INFO, "tracing disabled (AWS_XRAY_SDK_ENABLED)");
        return rec;
    }
    if (recorder_resolve(rec, err) != 0)
        goto fail;
    int rc = xray__emitter_open(rec);
    if (rc != 0) {
        recorder_err(err, "UDP socket: %s", xray_sdk_strerror(rc));
        goto fail;
    }
    (void)xray__ids_fork_generation(); /* registers the fork handler now */
    if (cfg.sampler == XRAY_SAMPLER_CENTRALIZED || cfg.sampler == XRAY_SAMPLER_LOCAL) {
        rc = xray__sampler_create(rec, &cfg, &rec->sampler, &rec->sampler_ctx, err);
        if (rc == XRAY_SDK_EUNAVAILABLE) {
            rec->sampler = NULL;
            xray__log(XRAY_LOG_INFO, "no sampler available: every request is sampled");
        } else if (rc != 0) {
            goto fail;
        }
    }
    if (cfg.plugins != 0 && xray__plugins_start(rec, cfg.plugins, &rec->plugins_ctx) != 0)
        rec->plugins_ctx = NULL;
    return rec;
fail:
    xray_recorder_destroy(rec);
    return NULL;
}

void xray_recorder_destroy(struct xray_recorder *rec)
{
    if (rec == NULL)
        return;
    if (rec->plugins_ctx != NULL)
        xray__plugins_stop(rec->plugins_ctx);
    if (rec->sampler != NULL)
        rec->sampler->destroy(rec->sampler_ctx);
    if (rec->fd >= 0)
        close(rec->fd);
    struct xray__plugin_data *pd = atomic_load(&rec->plugin);
    if (pd != NULL) {
        free(pd->aws_members);
        free(pd);
    }
    free(rec->service_name_json);
    free(rec->service_version_json);
    free(rec->origin_json);
    free(rec->cwd_json);
    free(rec);
}

int xray__recorder_set_plugin_data(struct xray_recorder *rec, struct xray__plugin_data *data)
{
    struct xray__plugin_data *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&rec->plugin, &expected, data,
                                                 memory_order_release, memory_order_relaxed)) {
        free(data->aws_members);
        free(data);
        return -EBUSY;
    }
    return 0;
}

bool xray__recorder_decide(struct xray_recorder *rec, const struct xray_sampling_request *req,
                           uint64_t now_us, char *rule_name)
{
    rule_name[0] = '\0';
    switch (rec->sampler_mode) {
    case XRAY_SAMPLER_ALL:
        return true;
    case XRAY_SAMPLER_NONE:
        return false;
    default:
        if (rec->sampler == NULL)
            return true;
        return rec->sampler->decide(rec->sampler_ctx, req, now_us / 1000, rule_name);
    }
}

bool xray_recorder_enabled(const struct xray_recorder *rec)
{
    return rec != NULL && rec->enabled;
}

const char *xray_recorder_service_name(const struct xray_recorder *rec)
{
    return rec != NULL ? rec->service_name : "";
}

void xray_recorder_counters(const struct xray_recorder *rec, struct xray_recorder_counters *out)
{
    memset(out, 0, sizeof(*out));
    if (rec == NULL)
        return;
    const struct xray__counters *c = &rec->counters;
    out->segments_begun = atomic_load(&c->segments_begun);
    out->segments_sampled = atomic_load(&c->segments_sampled);
    out->documents_sent = atomic_load(&c->documents_sent);
    out->subsegments_streamed = atomic_load(&c->subsegments_streamed);
    out->in_progress_sent = atomic_load(&c->in_progress_sent);
    out->send_dropped = atomic_load(&c->send_dropped);
    out->too_big_dropped = atomic_load(&c->too_big_dropped);
    out->limit_dropped = atomic_load(&c->limit_dropped);
    out->oom_dropped = atomic_load(&c->oom_dropped);
    out->context_missing = atomic_load(&missing_count);
}
