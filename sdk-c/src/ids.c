/* SPDX-License-Identifier: Apache-2.0 */
/* Trace and segment ids. Each thread owns a ChaCha20 keystream keyed from
 * getrandom(2): ids cost a few nanoseconds, need no lock, and cannot be predicted
 * from earlier ids. Invariant: no two processes or threads ever draw from the same
 * key, so ids never repeat between a parent and its forked child.
 *
 * How it works: a thread's first draw takes a 256-bit key from getrandom (falling
 * back to /dev/urandom, then to a mix of clock, pid, thread and stack address - the
 * library never fails for want of entropy). Blocks of 64 bytes are produced with a
 * 64-bit block counter and handed out byte by byte. After 1 MiB of output the key is
 * replaced by fresh getrandom bytes mixed with the keystream's next block. The child
 * of fork() bumps a generation counter (pthread_atfork); a thread whose generation is
 * stale rekeys before its next draw, so the child never replays the parent's stream. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define IDS_REKEY_BLOCKS (1u << 14) /* 16,384 blocks of 64 bytes = 1 MiB */

struct ids_rng {
    uint32_t key[8];
    uint64_t counter;
    uint64_t generation;  /* xray__ids_fork_generation() when keyed */
    uint32_t blocks_left; /* until the next rekey */
    uint32_t pos;         /* next unread byte of block; 64 = empty */
    bool keyed;
    uint8_t block[64];
};

static __thread struct ids_rng tls_rng;
static _Atomic uint64_t fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void ids_after_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

static void ids_register_atfork(void)
{
    /* Failing to register (ENOMEM) would only make a child reuse a parent's stream;
     * nothing better can be done than to carry on. */
    (void)pthread_atfork(NULL, NULL, ids_after_fork_child);
}

uint64_t xray__ids_fork_generation(void)
{
    pthread_once(&atfork_once, ids_register_atfork);
    return atomic_load_explicit(&fork_generation, memory_order_relaxed);
}

#define ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d)                                                                             \
    do {                                                                                           \
        a += b;                                                                                    \
        d ^= a;                                                                                    \
        d = ROTL(d, 16);                                                                           \
        c += d;                                                                                    \
        b ^= c;                                                                                    \
        b = ROTL(b, 12);                                                                           \
        a += b;                                                                                    \
        d ^= a;                                                                                    \
        d = ROTL(d, 8);                                                                            \
        c += d;                                                                                    \
        b ^= c;                                                                                    \
        b = ROTL(b, 7);                                                                            \
    } while (0)

/* RFC 8439 section 2.3, with words 12-13 a 64-bit block counter and 14-15 zero. */
static void chacha20_block(const uint32_t key[8], uint64_t counter, uint8_t out[64])
{
    uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
    memcpy(&in[4], key, 32);
    in[12] = (uint32_t)counter;
    in[13] = (uint32_t)(counter >> 32);
    in[14] = 0;
    in[15] = 0;
    uint32_t x[16];
    memcpy(x, in, sizeof(x));
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++) {
        uint32_t v = x[i] + in[i];
        out[4 * i] = (uint8_t)v;
        out[4 * i + 1] = (uint8_t)(v >> 8);
        out[4 * i + 2] = (uint8_t)(v >> 16);
        out[4 * i + 3] = (uint8_t)(v >> 24);
    }
}

static bool ids_entropy(uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, GRND_NONBLOCK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == n)
        return true;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return got == n;
}

static void ids_rekey(struct ids_rng *r, uint64_t generation)
{
    uint8_t fresh[32], mix[64];
    if (!ids_entropy(fresh, sizeof(fresh))) {
        /* Last resort: what differs between processes and threads right now. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t parts[4] = {(uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30), (uint64_t)getpid(),
                             (uint64_t)(uintptr_t)r, (uint64_t)(uintptr_t)&ts};
        memcpy(fresh, parts, sizeof(fresh));
    }
    /* The old keystream is mixed in so a weak fallback never lowers what a thread
     * already had; a first key mixes with the all-zero key's stream (harmless). */
    chacha20_block(r->key, r->counter++, mix);
    for (int i = 0; i < 32; i++)
        fresh[i] ^= mix[i];
    memcpy(r->key, fresh, sizeof(r->key));
    r->counter = 0;
    r->blocks_left = IDS_REKEY_BLOCKS;
    r->pos = sizeof(r->block);
    r->generation = generation;
    r->keyed = true;
    memset(fresh, 0, sizeof(fresh));
}

void xray__ids_fill(void *buf, size_t n)
{
    struct ids_rng *r = &tls_rng;
    uint64_t gen = xray__ids_fork_generation();
    if (!r->keyed || r->generation != gen)
        ids_rekey(r, gen);
    uint8_t *out = buf;
    while (n > 0) {
        if (r->pos == sizeof(r->block)) {
            if (r->blocks_left == 0)
                ids_rekey(r, gen);
            chacha20_block(r->key, r->counter++, r->block);
            r->blocks_left--;
            r->pos = 0;
        }
        size_t take = sizeof(r->block) - r->pos;
        if (take > n)
            take = n;
        memcpy(out, r->block + r->pos, take);
        /* Bytes handed out are erased so a later memory disclosure cannot replay them. */
        memset(r->block + r->pos, 0, take);
        r->pos += (uint32_t)take;
        out += take;
        n -= take;
    }
}

static const char hexdigits[] = "0123456789abcdef";

void xray__ids_hex64(char out[16], uint64_t v)
{
    for (int i = 15; i >= 0; i--) {
        out[i] = hexdigits[v & 0xf];
        v >>= 4;
    }
}

uint64_t xray_id_random64(void)
{
    uint64_t v;
    xray__ids_fill(&v, sizeof(v));
    return v;
}

void xray_id_segment(char out[XRAY_SEGMENT_ID_LEN + 1])
{
    uint64_t v;
    do
        xray__ids_fill(&v, sizeof(v));
    while (v == 0);
    xray__ids_hex64(out, v);
    out[16] = '\0';
}

void xray_id_trace(char out[XRAY_TRACE_ID_LEN + 1], uint32_t epoch_s)
{
    if (epoch_s == 0)
        epoch_s = (uint32_t)time(NULL);
    uint8_t rnd[12];
    xray__ids_fill(rnd, sizeof(rnd));
    out[0] = '1';
    out[1] = '-';
    for (int i = 7; i >= 0; i--) {
        out[2 + i] = hexdigits[epoch_s & 0xf];
        epoch_s >>= 4;
    }
    out[10] = '-';
    for (int i = 0; i < 12; i++) {
        out[11 + 2 * i] = hexdigits[rnd[i] >> 4];
        out[12 + 2 * i] = hexdigits[rnd[i] & 0xf];
    }
    out[35] = '\0';
}
