/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's health report to X-Ray: PutTelemetryRecords (daemon-compat.md,
 * "Telemetry"). Every interval a record is cut as the difference between two reads of
 * struct stats; records are kept (at most TELEMETRY_KEPT_MAX) until a call that carried
 * them succeeded. The module knows nothing of HTTP or signing: calls go through struct
 * telemetry_sender. Loop thread only, except where a function says otherwise. */
#ifndef XRAYD_TELEMETRY_H
#define XRAYD_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "stats.h"

#define TELEMETRY_PATH        "/TelemetryRecords"
#define TELEMETRY_INTERVAL_MS 60000 /* the reference daemon cuts a record every 60 s */
#define TELEMETRY_PER_CALL    10    /* records per call, as the reference daemon sends */
#define TELEMETRY_KEPT_MAX    30    /* the reference daemon's buffer while unreachable */
#define TELEMETRY_BODY_MAX    16384 /* 10 records and the identity need about 4 KiB */

/* Field lengths from the X-Ray API reference, PutTelemetryRecords request parameters:
 * EC2InstanceId 0-20, Hostname 0-255, ResourceARN 0-500 characters. */
#define TELEMETRY_INSTANCE_ID_MAX  20
#define TELEMETRY_HOSTNAME_MAX     255
#define TELEMETRY_RESOURCE_ARN_MAX 500

/* Who is reporting. NUL-terminated; longer values are cut at the API's maximum. */
struct telemetry_identity {
    char ec2_instance_id[TELEMETRY_INSTANCE_ID_MAX + 1];
    char hostname[TELEMETRY_HOSTNAME_MAX + 1];
    char resource_arn[TELEMETRY_RESOURCE_ARN_MAX + 1];
};

/* Hostname from AWS_HOSTNAME, else (with use_metadata) the instance metadata's
 * hostname, else gethostname(); EC2InstanceId from AWS_INSTANCE_ID, else (with
 * use_metadata) the instance metadata's instance-id, else ""; resource_arn (borrowed,
 * NULL = "") as given. use_metadata is false in local mode (-o). Reads the environment
 * and may block on instance metadata for about a second (imds.h): call from main
 * before the loop and the threads start. */
void telemetry_identity_from_env(struct telemetry_identity *id, const char *resource_arn,
                                 bool use_metadata);

/* One read of the counters of struct stats. */
struct telemetry_snapshot {
    uint64_t received;
    uint64_t sent;
    uint64_t spillover;
    uint64_t rejected;
    uint64_t backend[STATS_BACKEND__COUNT]; /* enum stats_backend */
};

/* Any thread: the counters are atomics. */
void telemetry_snapshot_read(struct telemetry_snapshot *out, struct stats *stats);

/* One TelemetryRecord: what happened between two snapshots. The API's counts are
 * 32-bit Integers, so each delta is capped at INT32_MAX. */
struct telemetry_record {
    int64_t timestamp_s; /* epoch seconds, when the record was cut */
    uint32_t received;
    uint32_t sent;
    uint32_t spillover;
    uint32_t rejected;
    uint32_t backend[STATS_BACKEND__COUNT]; /* enum stats_backend */
};

/* out = now - prev, field by field (0 where a counter went backwards). Pure. */
void telemetry_record_cut(struct telemetry_record *out, const struct telemetry_snapshot *prev,
                          const struct telemetry_snapshot *now, int64_t timestamp_s);

/* Appends the PutTelemetryRecords body for n records (n <= TELEMETRY_PER_CALL) to out.
 * 0, or XRAY_ETOOBIG / -ENOMEM from out (then out holds a partial body). Pure. */
int telemetry_body(const struct telemetry_identity *id, const struct telemetry_record *recs,
                   size_t n, struct buf *out);

/* How a call reaches X-Ray (the lead wires it to the signed client). send() starts
 * POST path with body (borrowed, valid until done runs) and returns 0, then calls done
 * exactly once on the loop thread -- possibly before send() returns -- with the HTTP
 * status, 0 for a transport error. Or send() returns an error and never calls done. */
struct telemetry_sender {
    int (*send)(void *ctx, const char *path, const void *body, size_t len,
                void (*done)(int http_status, void *data), void *data);
    void *ctx;
};

struct telemetry;

/* Starts the interval timer on loop. stats and loop are borrowed and must outlive the
 * object; id and sender are copied. sender NULL (the local upstream) means nothing is
 * cut or sent: the counters still show in /metrics. interval_ms 0 means
 * TELEMETRY_INTERVAL_MS. NULL on ENOMEM or a timer error (logged). */
struct telemetry *telemetry_create(uv_loop_t *loop, struct stats *stats,
                                   const struct telemetry_identity *id,
                                   const struct telemetry_sender *sender, uint64_t interval_ms);

/* What the timer does each interval, with the wall clock read by the caller: cuts a
 * record if a datagram has ever arrived (stats->received > 0) and, unless a call is in
 * flight, sends the kept records, TELEMETRY_PER_CALL per call, until one call fails. */
void telemetry_tick(struct telemetry *t, int64_t now_s);

/* Shutdown: stops the timer, cuts a final record, sends what is kept and calls cb
 * once when everything was sent, a call failed or there was nothing to send -- which
 * may happen before telemetry_flush returns. At most one flush; bound its time with
 * the caller's shutdown deadline, then telemetry_close (which ends the flush). */
void telemetry_flush(struct telemetry *t, void (*cb)(void *data), void *data);

/* Stops everything and calls cb (NULL allowed) from a close callback. A call still in
 * flight keeps the object's memory until its done runs; no new call starts. */
void telemetry_close(struct telemetry *t, void (*cb)(void *data), void *data);

/* Records kept, waiting for a successful call. */
size_t telemetry_kept(const struct telemetry *t);
/* Records dropped, oldest first, because TELEMETRY_KEPT_MAX were already kept. */
uint64_t telemetry_dropped(const struct telemetry *t);

#endif
