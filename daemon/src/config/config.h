/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's settings: built-in defaults < auto-discovered cfg.yaml
 * (/etc/amazon/xray/cfg.yaml, then ./cfg.yaml) < the -c file < flags, exactly as the
 * AWS X-Ray daemon takes them. One options table (options.c) drives flags, cfg.yaml,
 * --help and docs/configuration.md. Parsing only: nothing here opens sockets. */
#ifndef XRAYD_CONFIG_H
#define XRAYD_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "error.h"

struct config {
    /* The reference daemon's settings (flag / cfg.yaml key). */
    char *resource_arn;  /* -a / ResourceARN */
    bool local_mode;     /* -o / LocalMode */
    int buffer_mb;       /* -m / TotalBufferSizeMB; 0 = default (1 % of memory) */
    char *region;        /* -n / Region */
    char *udp_address;   /* -b / Socket.UDPAddress */
    char *tcp_address;   /* -t / Socket.TCPAddress */
    char *role_arn;      /* -r / RoleARN */
    char *config_file;   /* -c */
    char *log_file;      /* -f / Logging.LogPath */
    char *log_level;     /* -l / Logging.LogLevel */
    bool log_rotation;   /* Logging.LogRotation */
    char *proxy_address; /* -p / ProxyAddress */
    int concurrency;     /* Concurrency */
    char *endpoint;      /* Endpoint */
    bool no_verify_ssl;  /* NoVerifySSL */
    int version;         /* Version (1 or 2) */

    /* xrayd's own settings: long flags only, new YAML sections. */
    char *upstream;           /* --upstream aws|local; "" = decide (daemon-compat.md) */
    char *api_address;        /* --api-address; "" = derived from tcp_address */
    char *metrics_address;    /* --metrics-address; "" = the API address */
    int shutdown_timeout_ms;  /* --shutdown-timeout (ms): drain deadline */
    int request_timeout_ms;   /* --request-timeout (ms): per upstream call */
    int store_mb;             /* --store-memory: the embedded store's budget */
    int http_memory_mb;       /* --http-memory: every inbound HTTP connection's buffers */
    int retry_attempts;       /* --retry-attempts: per batch, the first included */
    int retry_budget_ms;      /* --retry-budget: time a batch may spend retrying */
    int retry_backoff_min_ms; /* --retry-backoff-min */
    int retry_backoff_max_ms; /* --retry-backoff-max */
    char *proxy_allow_paths;  /* --proxy-allow-paths: comma-separated */
    char *spool_dir;          /* --spool-dir; "" = no spool */
    int spool_max_mb;         /* --spool-max */
    char *sampling_rules;     /* --sampling-rules FILE; "" = none (sampling.md, "Who answers") */
    bool sampling_head;       /* --sampling-head: one decision per trace before upload */
    bool full_fidelity;       /* --full-fidelity: SDKs send all, xrayd applies the rules */
    bool tail_errors;         /* --tail-errors: keep traces with a fault, error or throttle */
    int tail_latency_ms;      /* --tail-latency: keep traces slower than this; 0 = off */
    int tail_mb;              /* --tail-memory: documents waiting for a tail decision */
    int trace_window_s;       /* --trace-window: assembly idle window and pairing window */
    int assembly_mb;          /* --assembly-memory: traces being assembled */
    int graph_mb;             /* --graph-memory: the service graph */
    int graph_retention_min;  /* --graph-retention: minutes of graph statistics kept */
    bool local_api;           /* --local-api: store and read API with the aws upstream too */
    char *store_dir;          /* --store-dir; "" = the store is memory only */

    /* Metrics: the registry and the push sinks (docs/metrics.md). */
    char *metrics_buckets;                /* --metrics-buckets: seconds, comma-separated */
    int metrics_series_budget;            /* --metrics-series-budget: per family */
    int metrics_idle_expiry_s;            /* --metrics-idle-expiry */
    char *remote_write_url;               /* --remote-write-url; "" = off */
    int remote_write_interval_s;          /* --remote-write-interval */
    int remote_write_queue_kb;            /* --remote-write-queue */
    char *remote_write_username;          /* --remote-write-username */
    char *remote_write_password_file;     /* --remote-write-password-file */
    char *remote_write_bearer_token_file; /* --remote-write-bearer-token-file */
    char *remote_write_sigv4_region;      /* --remote-write-sigv4-region; "" = not signed */
    char *cloudwatch_output;              /* --cloudwatch-output emf|put-metric-data; "" = off */
    int cloudwatch_interval_s;            /* --cloudwatch-interval */
    char *cloudwatch_namespace;           /* --cloudwatch-namespace */
    char *cloudwatch_log_group;           /* --cloudwatch-log-group */
    char *cloudwatch_log_stream;          /* --cloudwatch-log-stream; "" = xrayd-<hostname> */
    int cloudwatch_storage_resolution;    /* --cloudwatch-storage-resolution: 1 or 60 */

    /* Actions rather than settings. */
    bool show_help;          /* -h */
    bool show_version;       /* -v */
    bool health_check;       /* --health-check [ADDR] */
    char *health_check_addr; /* its optional argument; "" when none was given */

    /* Where the settings came from, for the start-up log. */
    char *auto_config_file; /* the auto-discovered cfg.yaml read, "" if none */
};

/* Auto-discovered files, first found wins; XRAYD_CONFIG_SEARCH_PATH replaces the list
 * (':'-separated; empty: none is read). */
#define CONFIG_SEARCH_PATH "/etc/amazon/xray/cfg.yaml:cfg.yaml"
#define CONFIG_SEARCH_ENV  "XRAYD_CONFIG_SEARCH_PATH"

/* Fills cfg from defaults, the environment's cfg.yaml files, -c and argv (argv[0] is
 * the program's name). Returns 0, or: 2 for a usage error (unknown flag, missing value,
 * a value of the wrong type), 1 for a bad config file or value; err (may be NULL) then
 * says what, naming the flag, or the file, line and key. Warnings (problems in an
 * auto-discovered file, obsolete keys, an unknown -l level, ignored arguments) go to
 * warn, one line each without a trailing level tag, when warn is not NULL. With -h
 * (show_help) or -v (show_version) no file is read. On 0 every string in cfg is
 * non-NULL (owned by cfg). cfg needs no initialisation and is always left safe to
 * config_destroy(), which may be called twice. Call from main only: it reads the
 * environment and files. */
int config_load(struct config *cfg, int argc, char **argv, FILE *warn, char err[XRAY_ERR_LEN]);
/* config_load() with search (a ':'-separated list; "" for none) in place of
 * CONFIG_SEARCH_PATH and the environment. */
int config_load_search(struct config *cfg, int argc, char **argv, const char *search, FILE *warn,
                       char err[XRAY_ERR_LEN]);
void config_destroy(struct config *cfg);

/* --help text, generated from the options table. */
void config_usage(FILE *out);
/* docs/configuration.md, generated from the options table. */
void config_markdown(FILE *out);

/* The histogram bounds of --metrics-buckets ("0.005, 0.01,1"): positive, increasing,
 * at most max. 0 with *n set, or XRAY_ECONFIG with err saying why. Pure. */
#define CONFIG_BUCKETS_MAX 32 /* METRIC_BUCKETS_MAX */
int config_buckets(const char *list, double *out, size_t max, size_t *n, char err[XRAY_ERR_LEN]);

/* The API address when api_address is unset: the TCP address if it is a loopback
 * address, else 127.0.0.1:2100. Returns a pointer into cfg or a constant. */
const char *config_api_address(const struct config *cfg);
/* metrics_address, or the API address when it is unset. */
const char *config_metrics_address(const struct config *cfg);

#endif
