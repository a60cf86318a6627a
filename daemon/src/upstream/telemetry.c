/* SPDX-License-Identifier: Apache-2.0 */
/* PutTelemetryRecords: a timer cuts a record from the growth of struct stats, a ring
 * keeps the records until a call carrying them is answered 200, and at most one call is
 * in flight, its body held here until its done runs. It neither counts the failures of
 * its own calls (the sender's client does, like every upstream call) nor knows HTTP. */
#include "telemetry.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/imds.h"
#include "error.h"
#include "log.h"
#include "util.h"

struct telemetry {
    uv_timer_t _timer;
    struct stats *stats;
    struct telemetry_identity id;
    struct telemetry_sender sender; /* send NULL: never cut, never send */
    uint64_t interval_ms;
    struct telemetry_snapshot prev; /* the read the next record starts from */

    /* The kept records, oldest at head. */
    struct telemetry_record ring[TELEMETRY_KEPT_MAX];
    size_t head;
    size_t count;
    uint64_t dropped;

    bool calling;     /* a call is in flight: body is borrowed by the sender */
    size_t in_flight; /* how many of the oldest records that call carries */
    struct buf body;

    bool flushing;
    void (*flush_cb)(void *data);
    void *flush_data;

    bool closing;
    bool closed; /* the timer is closed; the call in flight frees the object */
    void (*close_cb)(void *data);
    void *close_data;
};

/* Copies src, cut to at most cap - 1 bytes without splitting a UTF-8 sequence: a
 * value over the API's length would have every call rejected with a 400. */
static void telemetry_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

void telemetry_identity_from_env(struct telemetry_identity *id, const char *resource_arn,
                                 bool use_metadata)
{
    /* IMDS failures only mean "not on EC2" (or not reachable): the fallbacks apply. */
    char md[IMDS_VALUE_MAX];
    char err[XRAY_ERR_LEN];
    const char *host = getenv("AWS_HOSTNAME");
    char name[TELEMETRY_HOSTNAME_MAX + 1] = "";
    if ((host == NULL || host[0] == '\0') && use_metadata &&
        imds_startup_get("hostname", md, err) == 0)
        host = md;
    if (host == NULL || host[0] == '\0') {
        if (gethostname(name, sizeof(name)) != 0)
            name[0] = '\0';
        name[sizeof(name) - 1] = '\0'; /* gethostname need not terminate a cut name */
        host = name;
    }
    telemetry_copy(id->hostname, sizeof(id->hostname), host);
    const char *instance = getenv("AWS_INSTANCE_ID");
    if ((instance == NULL || instance[0] == '\0') && use_metadata &&
        imds_startup_get("instance-id", md, err) == 0)
        instance = md;
    telemetry_copy(id->ec2_instance_id, sizeof(id->ec2_instance_id), instance);
    telemetry_copy(id->resource_arn, sizeof(id->resource_arn), resource_arn);
}

void telemetry_snapshot_read(struct telemetry_snapshot *out, struct stats *stats)
{
    out->received = stats_get(&stats->received);
    out->sent = stats_get(&stats->sent);
    out->spillover = stats_get(&stats->spillover);
    out->rejected = stats_get(&stats->rejected);
    for (int i = 0; i < STATS_BACKEND__COUNT; i++)
        out->backend[i] = stats_get(&stats->backend[i]);
}

static uint32_t telemetry_delta(uint64_t prev, uint64_t now)
{
    if (now <= prev)
        return 0;
    uint64_t d = now - prev;
    return d > INT32_MAX ? INT32_MAX : (uint32_t)d;
}

void telemetry_record_cut(struct telemetry_record *out, const struct telemetry_snapshot *prev,
                          const struct telemetry_snapshot *now, int64_t timestamp_s)
{
    out->timestamp_s = timestamp_s;
    out->received = telemetry_delta(prev->received, now->received);
    out->sent = telemetry_delta(prev->sent, now->sent);
    out->spillover = telemetry_delta(prev->spillover, now->spillover);
    out->rejected = telemetry_delta(prev->rejected, now->rejected);
    for (int i = 0; i < STATS_BACKEND__COUNT; i++)
        out->backend[i] = telemetry_delta(prev->backend[i], now->backend[i]);
}

static int telemetry_body_field(struct buf *out, const char *name, const char *value)
{
    int rc = buf_appendf(out, "\"%s\":", name);
    if (rc == 0)
        rc = buf_append_json_string(out, value, strlen(value));
    if (rc == 0)
        rc = buf_append(out, ",", 1);
    return rc;
}

/* EC2InstanceId and Hostname are optional in the API, but they are always written,
 * empty or not: the reference daemon sends all three strings on every call and the API
 * accepts empty ones (minimum length 0), so X-Ray sees the same request from either
 * daemon, and an empty ResourceARN is what the compatibility spec asks for anyway. */
int telemetry_body(const struct telemetry_identity *id, const struct telemetry_record *recs,
                   size_t n, struct buf *out)
{
    int rc = buf_append(out, "{", 1);
    if (rc == 0)
        rc = telemetry_body_field(out, "EC2InstanceId", id->ec2_instance_id);
    if (rc == 0)
        rc = telemetry_body_field(out, "Hostname", id->hostname);
    if (rc == 0)
        rc = telemetry_body_field(out, "ResourceARN", id->resource_arn);
    if (rc == 0)
        rc = buf_append_str(out, "\"TelemetryRecords\":[");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct telemetry_record *r = &recs[i];
        rc = buf_appendf(
            out,
            "%s{\"Timestamp\":%lld,\"SegmentsReceivedCount\":%u,\"SegmentsSentCount\":%u,"
            "\"SegmentsSpilloverCount\":%u,\"SegmentsRejectedCount\":%u,"
            "\"BackendConnectionErrors\":{\"HTTPCode4XXCount\":%u,\"HTTPCode5XXCount\":%u,"
            "\"TimeoutCount\":%u,\"ConnectionRefusedCount\":%u,\"UnknownHostCount\":%u,"
            "\"OtherCount\":%u}}",
            i ? "," : "", (long long)r->timestamp_s, r->received, r->sent, r->spillover,
            r->rejected, r->backend[STATS_BACKEND_4XX], r->backend[STATS_BACKEND_5XX],
            r->backend[STATS_BACKEND_TIMEOUT], r->backend[STATS_BACKEND_REFUSED],
            r->backend[STATS_BACKEND_UNKNOWN_HOST], r->backend[STATS_BACKEND_OTHER]);
    }
    if (rc == 0)
        rc = buf_append_str(out, "]}");
    return rc;
}

static void telemetry_free(struct telemetry *t)
{
    buf_free(&t->body);
    free(t);
}

static void telemetry_flush_end(struct telemetry *t)
{
    if (!t->flushing)
        return;
    t->flushing = false;
    if (t->count)
        XLOG_WARN("telemetry", "shutting down with %zu record(s) not sent", t->count);
    if (t->flush_cb)
        t->flush_cb(t->flush_data);
}

/* Cuts a record once a datagram has ever arrived. Before that, prev stays where it was,
 * so the first record also holds whatever the counters did before the first datagram. */
static void telemetry_cut(struct telemetry *t, int64_t now_s)
{
    struct telemetry_snapshot now;
    telemetry_snapshot_read(&now, t->stats);
    if (now.received == 0)
        return;
    if (t->count == TELEMETRY_KEPT_MAX) {
        t->head = (t->head + 1) % TELEMETRY_KEPT_MAX;
        t->count--;
        t->dropped++;
        if (t->in_flight) /* the dropped record was the oldest one the call carries */
            t->in_flight--;
        XLOG_WARN("telemetry", "upstream unreachable: dropped the oldest record (%llu so far)",
                  (unsigned long long)t->dropped);
    }
    telemetry_record_cut(&t->ring[(t->head + t->count) % TELEMETRY_KEPT_MAX], &t->prev, &now,
                         now_s);
    t->count++;
    t->prev = now;
}

static void telemetry_on_done(int http_status, void *data);

/* Starts a call with the oldest records unless one is in flight. Nothing to send, or a
 * call that could not start, ends a flush. */
static void telemetry_send_next(struct telemetry *t)
{
    if (t->calling || t->closing)
        return;
    if (t->count == 0 || t->sender.send == NULL) {
        telemetry_flush_end(t);
        return;
    }
    struct telemetry_record recs[TELEMETRY_PER_CALL];
    size_t n = t->count < TELEMETRY_PER_CALL ? t->count : TELEMETRY_PER_CALL;
    for (size_t i = 0; i < n; i++)
        recs[i] = t->ring[(t->head + i) % TELEMETRY_KEPT_MAX];
    buf_reset(&t->body);
    int rc = telemetry_body(&t->id, recs, n, &t->body);
    if (rc != 0) {
        XLOG_ERR("telemetry", "cannot build the body: %s", xray_strerror(rc));
        telemetry_flush_end(t);
        return;
    }
    t->calling = true;
    t->in_flight = n;
    /* done may run before send returns, and may start the next call: t's state belongs
     * to it from here on. */
    rc = t->sender.send(t->sender.ctx, TELEMETRY_PATH, t->body.data, t->body.len, telemetry_on_done,
                        t);
    if (rc != 0) {
        t->calling = false;
        t->in_flight = 0;
        XLOG_DEBUG("telemetry", "call not started: %s; %zu record(s) kept", xray_strerror(rc),
                   t->count);
        telemetry_flush_end(t);
    }
}

static void telemetry_on_done(int http_status, void *data)
{
    struct telemetry *t = data;
    size_t n = t->in_flight;
    t->calling = false;
    t->in_flight = 0;
    if (t->closed) {
        telemetry_free(t);
        return;
    }
    if (t->closing)
        return;
    if (http_status != 200) {
        XLOG_DEBUG("telemetry", "call failed (HTTP %d); %zu record(s) kept", http_status, t->count);
        telemetry_flush_end(t);
        return;
    }
    if (n > t->count)
        n = t->count;
    t->head = (t->head + n) % TELEMETRY_KEPT_MAX;
    t->count -= n;
    XLOG_DEBUG("telemetry", "sent %zu record(s)", n);
    telemetry_send_next(t);
}

void telemetry_tick(struct telemetry *t, int64_t now_s)
{
    if (t->closing || t->sender.send == NULL)
        return;
    telemetry_cut(t, now_s);
    telemetry_send_next(t);
}

/* The loop-facing side reads the wall clock: Timestamp is epoch seconds. */
static int64_t telemetry_now_s(void)
{
    return (int64_t)time(NULL);
}

static void telemetry_on_timer(uv_timer_t *timer)
{
    struct telemetry *t = container_of(timer, struct telemetry, _timer);
    telemetry_tick(t, telemetry_now_s());
}

struct telemetry *telemetry_create(uv_loop_t *loop, struct stats *stats,
                                   const struct telemetry_identity *id,
                                   const struct telemetry_sender *sender, uint64_t interval_ms)
{
    struct telemetry *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->stats = stats;
    t->id = *id;
    if (sender)
        t->sender = *sender;
    t->interval_ms = interval_ms ? interval_ms : TELEMETRY_INTERVAL_MS;
    telemetry_snapshot_read(&t->prev, stats);
    buf_init(&t->body, TELEMETRY_BODY_MAX);
    int rc = uv_timer_init(loop, &t->_timer);
    if (rc != 0) { /* the handle was never registered: nothing to close */
        XLOG_ERR("telemetry", "timer: %s", uv_strerror(rc));
        telemetry_free(t);
        return NULL;
    }
    if (t->sender.send) {
        rc = uv_timer_start(&t->_timer, telemetry_on_timer, t->interval_ms, t->interval_ms);
        assert(rc == 0); /* fails only for a callback of NULL */
    }
    return t;
}

void telemetry_flush(struct telemetry *t, void (*cb)(void *data), void *data)
{
    assert(!t->flushing && !t->closing);
    t->flushing = true;
    t->flush_cb = cb;
    t->flush_data = data;
    uv_timer_stop(&t->_timer);
    if (t->sender.send)
        telemetry_cut(t, telemetry_now_s());
    telemetry_send_next(t); /* with a call in flight, its done goes on from there */
}

static void telemetry_on_close(uv_handle_t *handle)
{
    struct telemetry *t = container_of((uv_timer_t *)handle, struct telemetry, _timer);
    void (*cb)(void *data) = t->close_cb;
    void *data = t->close_data;
    if (t->calling)
        t->closed = true; /* the sender still holds body: its done frees */
    else
        telemetry_free(t);
    if (cb)
        cb(data);
}

void telemetry_close(struct telemetry *t, void (*cb)(void *data), void *data)
{
    assert(!t->closing);
    t->closing = true;
    t->close_cb = cb;
    t->close_data = data;
    telemetry_flush_end(t);
    uv_close((uv_handle_t *)&t->_timer, telemetry_on_close);
}

size_t telemetry_kept(const struct telemetry *t)
{
    return t->count;
}

uint64_t telemetry_dropped(const struct telemetry *t)
{
    return t->dropped;
}
