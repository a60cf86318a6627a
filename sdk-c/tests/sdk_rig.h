/* SPDX-License-Identifier: Apache-2.0 */
/* What the SDK's tests share: a recorder with a settable fake clock whose sends are
 * captured (rec->send replaced), and helpers to read a captured datagram back as
 * JSON through jansson. Header-only: each test program includes it once. */
#ifndef XRAY_SDK_TEST_RIG_H
#define XRAY_SDK_TEST_RIG_H

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RIG_MAX 4096

static struct {
    pthread_mutex_t lock;
    size_t n;
    char *dgram[RIG_MAX];
    size_t len[RIG_MAX];
    _Atomic uint64_t now_us;
} rig = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline uint64_t rig_clock(void *ctx)
{
    (void)ctx;
    return atomic_load(&rig.now_us);
}

static inline int rig_send(struct xray_recorder *rec, const void *buf, size_t len)
{
    (void)rec;
    pthread_mutex_lock(&rig.lock);
    if (rig.n < RIG_MAX) {
        rig.dgram[rig.n] = malloc(len + 1);
        memcpy(rig.dgram[rig.n], buf, len);
        rig.dgram[rig.n][len] = '\0';
        rig.len[rig.n] = len;
        rig.n++;
    }
    pthread_mutex_unlock(&rig.lock);
    return 0;
}

static inline void rig_reset(void)
{
    pthread_mutex_lock(&rig.lock);
    for (size_t i = 0; i < rig.n; i++)
        free(rig.dgram[i]);
    rig.n = 0;
    pthread_mutex_unlock(&rig.lock);
}

static inline struct xray_recorder *rig_recorder(const struct xray_config *base)
{
    struct xray_config cfg;
    if (base)
        cfg = *base;
    else
        xray_config_init(&cfg);
    cfg.flags |= XRAY_CONFIG_IGNORE_ENV;
    if (cfg.service_name == NULL)
        cfg.service_name = "svc";
    if (!base)
        cfg.sampler = XRAY_SAMPLER_ALL;
    cfg.clock = rig_clock;
    if (!base)
        cfg.log_level = XRAY_LOG_SILENT;
    atomic_store(&rig.now_us, 1700000000123456ull);
    struct xray_recorder *rec = xray_recorder_create(&cfg, NULL);
    if (rec != NULL)
        rec->send = rig_send;
    rig_reset();
    return rec;
}

/* Datagram i without its header line, parsed; NULL if the header line is wrong. */
static inline json_t *rig_doc(size_t i)
{
    if (i >= rig.n || rig.len[i] < XRAY__UDP_HEADER_LEN ||
        memcmp(rig.dgram[i], XRAY__UDP_HEADER, XRAY__UDP_HEADER_LEN) != 0)
        return NULL;
    json_error_t e;
    return json_loadb(rig.dgram[i] + XRAY__UDP_HEADER_LEN, rig.len[i] - XRAY__UDP_HEADER_LEN, 0,
                      &e);
}

static inline const char *rig_body(size_t i)
{
    return rig.dgram[i] + XRAY__UDP_HEADER_LEN;
}

#endif
