/* SPDX-License-Identifier: Apache-2.0 */
/* The table of every setting and what is generated from it: values parsed and checked
 * by type, defaults, --help and docs/configuration.md. It knows nothing of argv or of
 * YAML; config.c and config_yaml.c find rows here and call options_parse/_store.
 * Invariant: every string the table points into struct config is owned and non-NULL
 * once options_defaults() succeeded. */
#include "options.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"

#define OPTIONS_STRING_MAX   4096 /* longer than any address, ARN or path we expect */
#define OPTIONS_USAGE_WIDTH  100
#define OPTIONS_USAGE_INDENT 32

#define F(field) offsetof(struct config, field)

/* Reference flags first, in the order the reference daemon lists them, then the keys
 * only cfg.yaml sets, then xrayd's own settings (long flags, section Xrayd). */
const struct options_entry options_table[] = {
    {"resource-arn", 'a', "ResourceARN", OPTIONS_STRING, "", F(resource_arn), 0, 0, 0, 0, "ARN",
     "Amazon Resource Name of the AWS resource running the daemon, reported in telemetry "
     "as ResourceARN."},
    {"local-mode", 'o', "LocalMode", OPTIONS_BOOL, "false", F(local_mode), 0, 0, 0, 0, NULL,
     "Don't query EC2 or ECS instance metadata (region, hostname, instance id); nothing "
     "else changes."},
    {"buffer-memory", 'm', "TotalBufferSizeMB", OPTIONS_INT, "0", F(buffer_mb), 0, 3, 1 << 20, 0,
     "MB",
     "Memory in MB for segments held for upload, minimum 3; 0 means 1 % of the cgroup "
     "memory limit, or of host RAM when there is none."},
    {"region", 'n', "Region", OPTIONS_STRING, "", F(region), 0, 0, 0, 0, "REGION",
     "AWS region to send segments to; beats AWS_REGION."},
    {"bind", 'b', "Socket.UDPAddress", OPTIONS_ADDR, "127.0.0.1:2000", F(udp_address), 0, 0, 0, 0,
     "ADDR", "UDP address segments are received on; IPv6 as [::1]:2000."},
    {"bind-tcp", 't', "Socket.TCPAddress", OPTIONS_ADDR, "127.0.0.1:2000", F(tcp_address), 0, 0, 0,
     0, "ADDR", "TCP address for the SDKs' sampling calls."},
    {"role-arn", 'r', "RoleARN", OPTIONS_STRING, "", F(role_arn), 0, 0, 0, 0, "ARN",
     "Assume this IAM role for every upstream call, to upload to another account."},
    {"config", 'c', NULL, OPTIONS_STRING, "", F(config_file), 0, 0, 0, 0, "FILE",
     "Load this cfg.yaml; it must have a Version, and unknown keys in it are errors."},
    {"log-file", 'f', "Logging.LogPath", OPTIONS_STRING, "", F(log_file), 0, 0, 0, 0, "FILE",
     "Write logs to this file instead of stdout."},
    {"log-level", 'l', "Logging.LogLevel", OPTIONS_LEVEL, "prod", F(log_level), 0, 0, 0, 0, "LEVEL",
     "Log level, from most verbose to least: dev, debug, info, warn, error, prod (info). An "
     "unknown value keeps the configured level."},
    {"proxy-address", 'p', "ProxyAddress", OPTIONS_STRING, "", F(proxy_address), 0, 0, 0, 0, "URL",
     "HTTP(S) proxy for upstream calls. Unset: HTTPS_PROXY/https_proxy for https "
     "endpoints, HTTP_PROXY/http_proxy for http ones. NO_PROXY/no_proxy (hosts, domains, IPs, "
     "CIDRs, *) bypasses either; instance metadata never goes through a proxy."},
    {"version", 'v', NULL, OPTIONS_BOOL, "false", F(show_version), 0, 0, 0, 0, NULL,
     "Print the version and exit."},
    {"help", 'h', NULL, OPTIONS_BOOL, "false", F(show_help), 0, 0, 0, 0, NULL,
     "Print this help and exit."},

    {NULL, 0, "Logging.LogRotation", OPTIONS_BOOL, "true", F(log_rotation), 0, 0, 0, 0, NULL,
     "Rotate the log file at 50 MB, keeping one old file."},
    {NULL, 0, "Concurrency", OPTIONS_INT, "8", F(concurrency), 0, 1, 1024, 0, NULL,
     "Upload calls in flight at most."},
    {NULL, 0, "Endpoint", OPTIONS_STRING, "", F(endpoint), 0, 0, 0, 0, NULL,
     "X-Ray endpoint URL for uploads, telemetry and the sampling proxy; setting it selects "
     "the aws upstream."},
    {NULL, 0, "NoVerifySSL", OPTIONS_BOOL, "false", F(no_verify_ssl), 0, 0, 0, 0, NULL,
     "Skip TLS certificate verification on upstream calls."},
    {NULL, 0, "Version", OPTIONS_INT, "2", F(version), 0, 1, 2, OPTIONS_REQUIRED, NULL,
     "Format version of cfg.yaml, 1 or 2; required in a file given with -c."},

    {"upstream", 0, "Xrayd.Upstream", OPTIONS_CHOICE, "", F(upstream), 0, 0, 0, 0, "aws|local",
     "Where segments go: aws (the X-Ray API) or local (the embedded store). Unset: aws when "
     "a region or an Endpoint is known, else local."},
    {"api-address", 0, "Xrayd.APIAddress", OPTIONS_ADDR, "", F(api_address), 0, 0, 0, 0, "ADDR",
     "Address of the read API and the UI. Unset: the -t address when it is a loopback "
     "address, else 127.0.0.1:2100."},
    {"metrics-address", 0, "Xrayd.MetricsAddress", OPTIONS_ADDR, "", F(metrics_address), 0, 0, 0, 0,
     "ADDR", "Address of /metrics. Unset: the API address."},
    {"health-check", 0, NULL, OPTIONS_OPTARG, "", F(health_check_addr), F(health_check), 0, 0, 0,
     "ADDR",
     "Probe the /healthz of a running xrayd at ADDR (default: the -t address), exit 0 if it "
     "is healthy, 1 if not."},
    {"shutdown-timeout", 0, "Xrayd.ShutdownTimeoutMs", OPTIONS_INT, "5000", F(shutdown_timeout_ms),
     0, 1, 3600000, 0, "MS",
     "Deadline in ms to drain and send what is buffered after SIGTERM or SIGINT."},
    {"request-timeout", 0, "Xrayd.RequestTimeoutMs", OPTIONS_INT, "2000", F(request_timeout_ms), 0,
     1, 3600000, 0, "MS", "Timeout in ms of each upstream call."},
    {"store-memory", 0, "Xrayd.StoreMemoryMB", OPTIONS_INT, "64", F(store_mb), 0, 1, 1 << 20, 0,
     "MB", "Memory in MB for the embedded store of recent traces."},
    {"http-memory", 0, "Xrayd.HTTPMemoryMB", OPTIONS_INT, "16", F(http_memory_mb), 0, 2, 1 << 20, 0,
     "MB",
     "Memory in MB for inbound HTTP connections together (requests, bodies, responses); "
     "past it new requests get 503."},
    {"retry-attempts", 0, "Xrayd.RetryAttempts", OPTIONS_INT, "6", F(retry_attempts), 0, 1, 100, 0,
     "N", "Attempts per upload batch, the first included, for 5xx, 429 and network errors."},
    {"retry-budget", 0, "Xrayd.RetryBudgetMs", OPTIONS_INT, "30000", F(retry_budget_ms), 0, 1,
     3600000, 0, "MS", "Time in ms a batch may spend in retries before it is given up."},
    {"retry-backoff-min", 0, "Xrayd.RetryBackoffMinMs", OPTIONS_INT, "100", F(retry_backoff_min_ms),
     0, 1, 3600000, 0, "MS", "First retry delay in ms; it doubles per attempt, with jitter."},
    {"retry-backoff-max", 0, "Xrayd.RetryBackoffMaxMs", OPTIONS_INT, "5000",
     F(retry_backoff_max_ms), 0, 1, 3600000, 0, "MS", "Longest retry delay in ms."},
    {"proxy-allow-paths", 0, "Xrayd.ProxyAllowPaths", OPTIONS_STRING,
     "/GetSamplingRules,/SamplingTargets,/SamplingStatisticSummaries", F(proxy_allow_paths), 0, 0,
     0, 0, "PATHS",
     "Comma-separated X-Ray API paths the TCP side signs and forwards; any other path gets "
     "403."},
    {"spool-dir", 0, "Xrayd.SpoolDir", OPTIONS_STRING, "", F(spool_dir), 0, 0, 0, 0, "DIR",
     "Directory where batches that could not be uploaded are kept and replayed later; unset: "
     "no spool, such batches are dropped and counted."},
    {"spool-max", 0, "Xrayd.SpoolMaxMB", OPTIONS_INT, "256", F(spool_max_mb), 0, 1, 1 << 20, 0,
     "MB", "Disk space in MB the spool may use; past it the oldest files are dropped."},
    {"sampling-rules", 0, "Xrayd.SamplingRules", OPTIONS_STRING, "", F(sampling_rules), 0, 0, 0, 0,
     "FILE",
     "Sampling rules file (the local format, version 1 or 2, or what `aws xray "
     "get-sampling-rules` prints). Given: xrayd answers the SDKs' sampling calls itself with "
     "these rules, whatever the upstream. Reloaded on SIGHUP and when the file changes; a bad "
     "file keeps the rules in force."},
    {"sampling-head", 0, "Xrayd.SamplingHead", OPTIONS_BOOL, "false", F(sampling_head), 0, 0, 0, 0,
     NULL,
     "Sample before upload: one decision per trace id from the sampling rules, made at the "
     "trace's first document and followed by all its documents; dropped ones are counted as "
     "sampled out."},
    {"full-fidelity", 0, "Xrayd.FullFidelity", OPTIONS_BOOL, "false", F(full_fidelity), 0, 0, 0, 0,
     NULL,
     "Serve SDKs the rules at FixedRate 1.0 so they send every segment, and apply the real "
     "rules per trace before upload (as --sampling-head). Needs xrayd to answer the sampling "
     "calls: --sampling-rules, or the local upstream."},
    {"tail-errors", 0, "Xrayd.TailErrors", OPTIONS_BOOL, "false", F(tail_errors), 0, 0, 0, 0, NULL,
     "Tail sampling: keep every trace with a fault, error or throttle. Its documents wait "
     "for the trace to complete (--trace-window) before upload; the others follow the "
     "sampling rules."},
    {"tail-latency", 0, "Xrayd.TailLatencyMs", OPTIONS_INT, "0", F(tail_latency_ms), 0, 0, 3600000,
     0, "MS",
     "Tail sampling: keep every trace whose root took longer than MS milliseconds; 0 = off."},
    {"tail-memory", 0, "Xrayd.TailMemoryMB", OPTIONS_INT, "8", F(tail_mb), 0, 1, 1 << 20, 0, "MB",
     "Memory in MB for documents waiting for a tail decision; when full, the oldest trace "
     "is decided at once by the sampling rules and uploaded (counted as forced)."},
    {"trace-window", 0, "Xrayd.TraceWindowSeconds", OPTIONS_INT, "10", F(trace_window_s), 0, 1,
     3600, 0, "S",
     "Seconds a trace waits for more documents after its last one before it is complete, "
     "and a service-graph half waits for its partner."},
    {"assembly-memory", 0, "Xrayd.AssemblyMemoryMB", OPTIONS_INT, "16", F(assembly_mb), 0, 1,
     1 << 20, 0, "MB",
     "Memory in MB for traces being assembled; when full, the oldest is completed early "
     "(counted as evicted)."},
    {"graph-memory", 0, "Xrayd.GraphMemoryMB", OPTIONS_INT, "16", F(graph_mb), 0, 1, 1 << 20, 0,
     "MB", "Memory in MB for the service graph; when full, its oldest minutes are dropped."},
    {"graph-retention", 0, "Xrayd.GraphRetentionMinutes", OPTIONS_INT, "60", F(graph_retention_min),
     0, 1, 10080, 0, "MIN",
     "Minutes of service-graph statistics kept, per minute, for time-range queries."},
    {"local-api", 0, "Xrayd.LocalAPI", OPTIONS_BOOL, "false", F(local_api), 0, 0, 0, 0, NULL,
     "Keep traces and serve the X-Ray read API on the API address also when uploading to "
     "AWS (always on with the local upstream)."},
    {"store-dir", 0, "Xrayd.StoreDir", OPTIONS_STRING, "", F(store_dir), 0, 0, 0, 0, "DIR",
     "Directory where the embedded store keeps what it accepted, so a restart loses none "
     "of it; unset: memory only."},
    {"metrics-buckets", 0, "Metrics.Buckets", OPTIONS_STRING,
     "0.002,0.004,0.006,0.008,0.01,0.05,0.1,0.2,0.4,0.8,1,1.4,2,5,10,15", F(metrics_buckets), 0, 0,
     0, 0, "LIST",
     "Upper bounds in seconds of the latency histograms' buckets, comma-separated and "
     "increasing, at most 32 (+Inf is implied)."},
    {"metrics-series-budget", 0, "Metrics.SeriesBudget", OPTIONS_INT, "2000",
     F(metrics_series_budget), 0, 1, 1000000, 0, "N",
     "Series per metric family at most; past it updates go to one series labelled "
     "overflow=\"true\" (counted)."},
    {"metrics-idle-expiry", 0, "Metrics.IdleExpirySeconds", OPTIONS_INT, "900",
     F(metrics_idle_expiry_s), 0, 1, 86400 * 7, 0, "S",
     "Seconds a series may go without an update before it is dropped (counted; remote "
     "write sends its stale marker)."},
    {"remote-write-url", 0, "Metrics.RemoteWriteURL", OPTIONS_STRING, "", F(remote_write_url), 0, 0,
     0, 0, "URL",
     "Push the metrics with Prometheus remote write 1.0 to this URL (e.g. "
     "http://prometheus:9090/api/v1/write); unset: off."},
    {"remote-write-interval", 0, "Metrics.RemoteWriteIntervalSeconds", OPTIONS_INT, "15",
     F(remote_write_interval_s), 0, 1, 3600, 0, "S", "Seconds between remote-write pushes."},
    {"remote-write-queue", 0, "Metrics.RemoteWriteQueueKB", OPTIONS_INT, "8192",
     F(remote_write_queue_kb), 0, 1, 1 << 20, 0, "KB",
     "Kilobytes of remote-write requests held while the receiver is away; past it the "
     "oldest are dropped (counted)."},
    {"remote-write-username", 0, "Metrics.RemoteWriteUsername", OPTIONS_STRING, "",
     F(remote_write_username), 0, 0, 0, 0, "USER",
     "Basic-auth user name for remote write (with --remote-write-password-file)."},
    {"remote-write-password-file", 0, "Metrics.RemoteWritePasswordFile", OPTIONS_STRING, "",
     F(remote_write_password_file), 0, 0, 0, 0, "FILE",
     "File holding the basic-auth password for remote write."},
    {"remote-write-bearer-token-file", 0, "Metrics.RemoteWriteBearerTokenFile", OPTIONS_STRING, "",
     F(remote_write_bearer_token_file), 0, 0, 0, 0, "FILE",
     "File holding a bearer token sent with every remote-write request."},
    {"remote-write-sigv4-region", 0, "Metrics.RemoteWriteSigV4Region", OPTIONS_STRING, "",
     F(remote_write_sigv4_region), 0, 0, 0, 0, "REGION",
     "Sign remote-write requests with SigV4 for this region (service aps: Amazon Managed "
     "Service for Prometheus), with the daemon's AWS credentials."},
    {"cloudwatch-output", 0, "Metrics.CloudWatchOutput", OPTIONS_CHOICE, "", F(cloudwatch_output),
     0, 0, 0, 0, "emf|put-metric-data",
     "Send the metrics to CloudWatch: emf (log events in the embedded metric format, "
     "through PutLogEvents) or put-metric-data; unset: off. Needs a region."},
    {"cloudwatch-interval", 0, "Metrics.CloudWatchIntervalSeconds", OPTIONS_INT, "60",
     F(cloudwatch_interval_s), 0, 1, 3600, 0, "S", "Seconds between CloudWatch sends."},
    {"cloudwatch-namespace", 0, "Metrics.CloudWatchNamespace", OPTIONS_STRING, "XRayDaemon",
     F(cloudwatch_namespace), 0, 0, 0, 0, "NS", "CloudWatch namespace of the metrics."},
    {"cloudwatch-log-group", 0, "Metrics.CloudWatchLogGroup", OPTIONS_STRING, "/xrayd/metrics",
     F(cloudwatch_log_group), 0, 0, 0, 0, "NAME",
     "Log group of the EMF events, created when missing."},
    {"cloudwatch-log-stream", 0, "Metrics.CloudWatchLogStream", OPTIONS_STRING, "",
     F(cloudwatch_log_stream), 0, 0, 0, 0, "NAME",
     "Log stream of the EMF events, created when missing; unset: xrayd-<hostname>."},
    {"cloudwatch-storage-resolution", 0, "Metrics.CloudWatchStorageResolution", OPTIONS_INT, "60",
     F(cloudwatch_storage_resolution), 0, 1, 60, 0, "S",
     "StorageResolution of the CloudWatch metrics: 1 (high resolution) or 60."},
};
const size_t options_count = sizeof(options_table) / sizeof(options_table[0]);

/* Keys of older daemons. The reference refuses them in a -c file; a host upgrading
 * must start, so xrayd says they are obsolete and goes on. "X.*" also matches X. */
static const struct {
    const char *key;
    const char *hint;
} obsolete[] = {
    {"Socket.BufferSizeKB", "xrayd sizes the socket receive buffer itself"},
    {"MemoryLimit", "use TotalBufferSizeMB"},
    {"LogRotation", "use Logging.LogRotation"},
    {"Logging.LogFormat", "the log format is fixed"},
    {"Processor.*", "use Region, Endpoint and Concurrency"},
    {"Profile.*", "profiling is not configurable"},
};

const struct options_entry *options_by_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < options_count; i++) {
        const struct options_entry *e = &options_table[i];
        if (len == 1 && e->short_flag == name[0])
            return e;
        if (e->flag != NULL && strlen(e->flag) == len && memcmp(e->flag, name, len) == 0)
            return e;
    }
    return NULL;
}

const struct options_entry *options_by_key(const char *key)
{
    for (size_t i = 0; i < options_count; i++)
        if (options_table[i].key != NULL && strcmp(options_table[i].key, key) == 0)
            return &options_table[i];
    return NULL;
}

const char *options_obsolete(const char *key)
{
    for (size_t i = 0; i < sizeof(obsolete) / sizeof(obsolete[0]); i++) {
        const char *o = obsolete[i].key;
        size_t n = strlen(o);
        if (n > 2 && strcmp(o + n - 2, ".*") == 0) {
            n -= 2;
            if (strncmp(key, o, n) == 0 && (key[n] == '\0' || key[n] == '.'))
                return obsolete[i].hint;
        } else if (strcmp(key, o) == 0) {
            return obsolete[i].hint;
        }
    }
    return NULL;
}

bool options_is_section(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < options_count; i++) {
        const char *k = options_table[i].key;
        if (k != NULL && strncmp(k, name, n) == 0 && k[n] == '.')
            return true;
    }
    for (size_t i = 0; i < sizeof(obsolete) / sizeof(obsolete[0]); i++)
        if (strncmp(obsolete[i].key, name, n) == 0 && obsolete[i].key[n] == '.')
            return true;
    return false;
}

static int parse_int(const char *s, int *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < INT_MIN || v > INT_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

/* The union of what YAML 1.1 (the reference's yaml.v2) and Go's flag package accept. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "y", "t", "1"};
    static const char *const no[] = {"false", "no", "off", "n", "f", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* host:port, [v6]:port or :port with a numeric port. Names are resolved where the
 * address is used; this only catches what can never be an address. */
static bool addr_valid(const char *s)
{
    const char *port;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        char host[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        size_t n = close != NULL ? (size_t)(close - s - 1) : 0;
        if (close == NULL || close[1] != ':' || n == 0 || n >= sizeof(host))
            return false;
        memcpy(host, s + 1, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return false;
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        for (const char *p = s; p < colon; p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
                return false;
        port = colon + 1;
    }
    size_t digits = strspn(port, "0123456789");
    return digits > 0 && digits <= 5 && port[digits] == '\0' && atoi(port) <= 65535;
}

/* The word of choices ("aws|local") that s names, case-insensitively, or NULL. */
static const char *choice_match(const char *choices, const char *s)
{
    size_t n = strlen(s);
    for (const char *w = choices; *w != '\0';) {
        size_t wl = strcspn(w, "|");
        if (wl == n && strncasecmp(w, s, n) == 0)
            return w;
        w += wl;
        if (*w == '|')
            w++;
    }
    return NULL;
}

int options_parse(const struct options_entry *e, const char *text, union options_value *v,
                  char err[XRAY_ERR_LEN])
{
    bool empty = text == NULL || text[0] == '\0';
    memset(v, 0, sizeof(*v));
    if (empty && (e->flags & OPTIONS_REQUIRED)) {
        snprintf(err, XRAY_ERR_LEN, "must be set, %d to %d", e->min, e->max);
        return XRAY_ECONFIG;
    }
    switch (e->type) {
    case OPTIONS_BOOL:
        if (parse_bool(empty ? e->def : text, &v->b) != 0) {
            snprintf(err, XRAY_ERR_LEN, "expected true or false, got \"%.64s\"", text);
            return XRAY_EPARSE;
        }
        return 0;
    case OPTIONS_INT:
        if (parse_int(empty ? e->def : text, &v->i) != 0) {
            snprintf(err, XRAY_ERR_LEN, "expected an integer, got \"%.64s\"", text);
            return XRAY_EPARSE;
        }
        if (v->i == 0 && (e->flags & OPTIONS_REQUIRED)) {
            snprintf(err, XRAY_ERR_LEN, "must be set, %d to %d", e->min, e->max);
            return XRAY_ECONFIG;
        }
        if (v->i == 0) {
            v->i = atoi(e->def);
        } else if (v->i < e->min || v->i > e->max) {
            snprintf(err, XRAY_ERR_LEN, "%d is out of range: %d to %d%s", v->i, e->min, e->max,
                     strcmp(e->def, "0") == 0 ? ", or 0 for the default" : "");
            return XRAY_ECONFIG;
        }
        return 0;
    default:
        break;
    }
    if (empty)
        text = e->def;
    if (strlen(text) > OPTIONS_STRING_MAX) {
        snprintf(err, XRAY_ERR_LEN, "longer than %d bytes", OPTIONS_STRING_MAX);
        return XRAY_ECONFIG;
    }
    if (e->type == OPTIONS_ADDR && !empty && !addr_valid(text)) {
        snprintf(err, XRAY_ERR_LEN, "\"%.64s\" is not an address (host:port or [v6]:port)", text);
        return XRAY_ECONFIG;
    }
    if (e->type == OPTIONS_LEVEL && log_level_parse(text) < 0) {
        snprintf(err, XRAY_ERR_LEN, "unknown log level \"%.64s\"", text);
        return 1;
    }
    if (e->type == OPTIONS_CHOICE && !empty) {
        /* Stored as the table spells it, so callers compare with strcmp. */
        const char *w = choice_match(e->metavar, text);
        if (w == NULL) {
            snprintf(err, XRAY_ERR_LEN, "\"%.64s\" is not one of %s", text, e->metavar);
            return XRAY_ECONFIG;
        }
        text = w;
    }
    v->s = e->type == OPTIONS_CHOICE && !empty ? strndup(text, strcspn(text, "|")) : strdup(text);
    if (v->s == NULL) {
        snprintf(err, XRAY_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static bool is_string(const struct options_entry *e)
{
    return e->type != OPTIONS_BOOL && e->type != OPTIONS_INT;
}

void options_store(struct config *cfg, const struct options_entry *e, union options_value *v)
{
    char *base = (char *)cfg;
    if (e->type == OPTIONS_BOOL) {
        *(bool *)(base + e->offset) = v->b;
    } else if (e->type == OPTIONS_INT) {
        *(int *)(base + e->offset) = v->i;
    } else {
        char **p = (char **)(base + e->offset);
        free(*p);
        *p = v->s;
        v->s = NULL;
        if (e->type == OPTIONS_OPTARG)
            *(bool *)(base + e->aux) = true;
    }
}

void options_value_free(const struct options_entry *e, union options_value *v)
{
    if (is_string(e)) {
        free(v->s);
        v->s = NULL;
    }
}

int options_defaults(struct config *cfg)
{
    char *base = (char *)cfg;
    for (size_t i = 0; i < options_count; i++) {
        const struct options_entry *e = &options_table[i];
        if (e->type == OPTIONS_BOOL) {
            *(bool *)(base + e->offset) = strcmp(e->def, "true") == 0;
        } else if (e->type == OPTIONS_INT) {
            *(int *)(base + e->offset) = atoi(e->def);
        } else {
            char **p = (char **)(base + e->offset);
            free(*p);
            *p = strdup(e->def);
            if (*p == NULL)
                return -ENOMEM;
        }
    }
    return 0;
}

void options_free(struct config *cfg)
{
    char *base = (char *)cfg;
    for (size_t i = 0; i < options_count; i++) {
        if (is_string(&options_table[i])) {
            char **p = (char **)(base + options_table[i].offset);
            free(*p);
            *p = NULL;
        }
    }
}

/* ---- --help ---- */

/* Writes text from column col, wrapping at OPTIONS_USAGE_WIDTH with indent spaces. */
static void usage_wrap(FILE *out, int col, int indent, const char *text)
{
    while (*text != '\0') {
        size_t room = OPTIONS_USAGE_WIDTH - (size_t)col, n = strlen(text);
        if (n > room) {
            n = room;
            while (n > 0 && text[n] != ' ')
                n--;
            if (n == 0)
                n = strcspn(text, " ");
        }
        fprintf(out, "%.*s\n", (int)n, text);
        text += n;
        while (*text == ' ')
            text++;
        if (*text != '\0')
            fprintf(out, "%*s", indent, "");
        col = indent;
    }
}

static void usage_entry(FILE *out, const struct options_entry *e)
{
    char left[96], help[768];
    int n;
    if (e->short_flag)
        n = snprintf(left, sizeof(left), "  -%c, --%s", e->short_flag, e->flag);
    else
        n = snprintf(left, sizeof(left), "      --%s", e->flag);
    if (e->type == OPTIONS_OPTARG)
        n += snprintf(left + n, sizeof(left) - (size_t)n, " [%s]", e->metavar);
    else if (e->type != OPTIONS_BOOL)
        n += snprintf(left + n, sizeof(left) - (size_t)n, " %s", e->metavar);
    n = snprintf(help, sizeof(help), "%s", e->help);
    if (e->def[0] != '\0' && e->type != OPTIONS_BOOL)
        n += snprintf(help + n, sizeof(help) - (size_t)n, " Default: %s.", e->def);
    if (e->key != NULL)
        snprintf(help + n, sizeof(help) - (size_t)n, " [cfg.yaml: %s]", e->key);
    if (strlen(left) >= OPTIONS_USAGE_INDENT - 1)
        fprintf(out, "%s\n%*s", left, OPTIONS_USAGE_INDENT, "");
    else
        fprintf(out, "%-*s", OPTIONS_USAGE_INDENT, left);
    usage_wrap(out, OPTIONS_USAGE_INDENT, OPTIONS_USAGE_INDENT, help);
}

void options_usage(FILE *out)
{
    fprintf(out, "Usage: xrayd [options]\n"
                 "Receives X-Ray segments over UDP and sends them upstream: a drop-in "
                 "replacement for the\nAWS X-Ray daemon. A flag takes one dash or two "
                 "(-b, --bind, -bind) and its value as\n-b VALUE or -b=VALUE.\n\n"
                 "Flags of the AWS X-Ray daemon:\n");
    for (size_t i = 0; i < options_count; i++)
        if (options_table[i].short_flag)
            usage_entry(out, &options_table[i]);
    fprintf(out, "\nxrayd's own flags:\n");
    for (size_t i = 0; i < options_count; i++)
        if (options_table[i].flag != NULL && !options_table[i].short_flag)
            usage_entry(out, &options_table[i]);
    char line[512];
    int n = snprintf(line, sizeof(line), "cfg.yaml also sets");
    const char *sep = "";
    for (size_t i = 0; i < options_count; i++) {
        if (options_table[i].flag == NULL) {
            n += snprintf(line + n, sizeof(line) - (size_t)n, "%s %s", sep, options_table[i].key);
            sep = ",";
        }
    }
    snprintf(line + n, sizeof(line) - (size_t)n,
             "; docs/configuration.md describes every flag and key.");
    fputc('\n', out);
    usage_wrap(out, 0, 0, line);
}

/* ---- docs/configuration.md ---- */

/* A table cell: '|' would end the cell. */
static void md_cell(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

static void md_default(FILE *out, const struct options_entry *e)
{
    if (e->type == OPTIONS_BOOL || e->type == OPTIONS_INT)
        fprintf(out, "%s", e->def);
    else
        fprintf(out, "\"%s\"", e->def);
}

static void md_flag(FILE *out, const struct options_entry *e)
{
    if (e->flag == NULL)
        return;
    if (e->short_flag)
        fprintf(out, "`-%c`, ", e->short_flag);
    fprintf(out, "`--%s", e->flag);
    if (e->type == OPTIONS_OPTARG)
        fprintf(out, " [%s]", e->metavar);
    else if (e->type != OPTIONS_BOOL)
        fputc(' ', out);
    if (e->type != OPTIONS_BOOL && e->type != OPTIONS_OPTARG)
        md_cell(out, e->metavar);
    fputc('`', out);
}

static void md_row(FILE *out, const struct options_entry *e)
{
    fputs("| ", out);
    md_flag(out, e);
    fputs(" | ", out);
    if (e->key != NULL)
        fprintf(out, "`%s`", e->key);
    fputs(" | ", out);
    if (e->type != OPTIONS_OPTARG && (e->key != NULL || e->type != OPTIONS_BOOL)) {
        fputc('`', out);
        md_default(out, e);
        fputc('`', out);
    }
    fputs(" | ", out);
    md_cell(out, e->help);
    if (e->type == OPTIONS_INT && !(e->flags & OPTIONS_REQUIRED))
        fprintf(out, " Range: %d to %d%s.", e->min, e->max,
                strcmp(e->def, "0") == 0 ? ", or 0" : "");
    fputs(" |\n", out);
}

/* The example cfg.yaml: every key at its default, sections grouped. */
static void md_example(FILE *out)
{
    bool done[sizeof(options_table) / sizeof(options_table[0])] = {false};
    fputs("```yaml\n", out);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < options_count; i++) {
            const struct options_entry *e = &options_table[i];
            bool first = (e->flags & OPTIONS_REQUIRED) != 0;
            if (e->key == NULL || done[i] || first != (pass == 0))
                continue;
            const char *dot = strchr(e->key, '.');
            if (dot == NULL) {
                fprintf(out, "%s: ", e->key);
                md_default(out, e);
                fputc('\n', out);
                done[i] = true;
                continue;
            }
            size_t sl = (size_t)(dot - e->key);
            fprintf(out, "%.*s:\n", (int)sl, e->key);
            for (size_t j = i; j < options_count; j++) {
                const struct options_entry *s = &options_table[j];
                if (s->key != NULL && strncmp(s->key, e->key, sl + 1) == 0) {
                    fprintf(out, "  %s: ", s->key + sl + 1);
                    md_default(out, s);
                    fputc('\n', out);
                    done[j] = true;
                }
            }
        }
    }
    fputs("```\n", out);
}

void options_markdown(FILE *out)
{
    fputs("# Configuration\n\n"
          "<!-- Generated by config_markdown() from the options table in "
          "daemon/src/config/options.c;\n"
          "     test_config fails when this file and the table disagree. "
          "Do not edit by hand. -->\n\n"
          "xrayd takes the AWS X-Ray daemon's flags and `cfg.yaml` unchanged, and adds its "
          "own settings\nas long flags and keys of a new `Xrayd` section, so no old key "
          "changes meaning.\n\n"
          "## Where settings come from\n\n"
          "Each source overrides the ones before it:\n\n"
          "1. the built-in defaults below;\n"
          "2. the first file that exists of `/etc/amazon/xray/cfg.yaml` and `./cfg.yaml` "
          "(the environment\n   variable `XRAYD_CONFIG_SEARCH_PATH`, a `:`-separated list, "
          "replaces this list; empty, none\n   is read);\n"
          "3. the file given with `-c`;\n"
          "4. flags.\n\n"
          "## Flags and keys\n\n"
          "A flag takes one dash or two, and a long name works with one dash as with the "
          "reference\ndaemon: `-b`, `--b`, `-bind` and `--bind` are the same flag. Its value "
          "follows as the next\nargument or after `=`: `-b 0.0.0.0:2000`, `--bind=0.0.0.0:2000`. "
          "A boolean flag takes no value\n(`-o`), or `-o=true` / `-o=false`. `--health-check` "
          "takes `ADDR` only when the next argument\ndoes not start with `-`. An unknown flag, "
          "a missing value or a value of the wrong type exits\nwith status 2; a value out of "
          "range exits with status 1. The first argument that is not a\nflag ends the flags "
          "(with a warning), as with the reference.\n\n"
          "| Flag | cfg.yaml key | Default | Meaning |\n"
          "|---|---|---|---|\n",
          out);
    for (size_t i = 0; i < options_count; i++)
        if (options_table[i].flag != NULL)
            md_row(out, &options_table[i]);
    for (size_t i = 0; i < options_count; i++)
        if (options_table[i].flag == NULL)
            md_row(out, &options_table[i]);
    fputs("\n## cfg.yaml\n\n"
          "- Keys are case-sensitive; `Socket.UDPAddress` is the key `UDPAddress` in the "
          "section `Socket`.\n"
          "- An empty or zero value (or `~`) means the default.\n"
          "- Booleans are `true`/`false`, `yes`/`no` or `on`/`off`.\n"
          "- In a file given with `-c`, a missing `Version`, an unknown key, a value of the "
          "wrong type,\n  or a YAML syntax error stops xrayd with status 1, naming the file, "
          "line and key.\n"
          "- In an auto-discovered file the same problems are warnings and xrayd starts "
          "anyway: the\n  offending key is ignored, and a file with a YAML syntax error is "
          "ignored as a whole. The\n  reference does not check these files, and a host that "
          "started before must start now.\n"
          "- An unknown `Logging.LogLevel` is a warning and keeps the level set before it.\n"
          "- Files over 1 MB are refused.\n\n"
          "Keys of older daemons are obsolete: they are ignored with a warning in any file.\n\n"
          "| Obsolete key | Instead |\n"
          "|---|---|\n",
          out);
    for (size_t i = 0; i < sizeof(obsolete) / sizeof(obsolete[0]); i++)
        fprintf(out, "| `%s` | %s |\n", obsolete[i].key, obsolete[i].hint);
    fputs("\nEvery key at its default:\n\n", out);
    md_example(out);
}
