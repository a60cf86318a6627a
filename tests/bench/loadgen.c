/* SPDX-License-Identifier: Apache-2.0 */
/* The benchmark's load generator: paced UDP datagrams (X-Ray header line + one segment
 * document) sent with sendmmsg to a loopback address, every document with its own
 * trace id and segment ids. Always bounded: it stops at --count documents or after
 * --seconds, whichever comes first, and refuses non-loopback targets. It never reads
 * anything back; what the receiver lost is for the driver to find out.
 *
 * How it works: each size class is rendered once into a template (the realistic segment
 * of performance.md, padded to the size with a metadata note) with the byte offsets of
 * its ids. Sending a document copies its template into one of LOADGEN_BATCH slots (only
 * when the slot held another class) and writes fresh hex ids at those offsets. Pacing
 * is by deficit: every turn sends what the clock says is due, at most one sendmmsg
 * batch, then sleeps until the next document is due. */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOADGEN_BATCH       64        /* datagrams per sendmmsg call */
#define LOADGEN_MAX_BYTES   65507     /* largest IPv4 UDP payload */
#define LOADGEN_MAX_CLASSES 8         /* size classes in one --mix */
#define LOADGEN_MAX_IDS     80        /* id fields patched per document */
#define LOADGEN_MAX_SECONDS 600.0     /* hard bound on one run */
#define LOADGEN_MAX_COUNT   100000000 /* hard bound on one run */
#define LOADGEN_MAX_RATE    5000000.0
#define LOADGEN_HEADER      "{\"format\":\"json\",\"version\":1}\n"

/* One size class: the whole datagram (header included) and where its ids are. */
struct loadgen_class {
    size_t doc_bytes; /* the document alone, as asked for */
    size_t len;       /* the datagram */
    unsigned weight;
    char *bytes;
    size_t trace_off;               /* 24 hex digits of the trace id's unique part */
    size_t id_off[LOADGEN_MAX_IDS]; /* 16 hex digits each: the segment id, then subsegments */
    unsigned nids;
};

/* Appends to a fixed buffer, recording the offsets of placeholder ids. */
struct loadgen_tb {
    struct loadgen_class *c;
    size_t len;
    size_t cap;
    int overflow;
};

static void tb_put(struct loadgen_tb *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + n > t->cap) {
        t->overflow = 1;
        return;
    }
    memcpy(t->c->bytes + t->len, s, n);
    t->len += n;
}

static void tb_id(struct loadgen_tb *t)
{
    if (t->c->nids < LOADGEN_MAX_IDS)
        t->c->id_off[t->c->nids++] = t->len;
    else
        t->overflow = 1;
    tb_put(t, "0000000000000000");
}

static void tb_pad(struct loadgen_tb *t, size_t n)
{
    if (t->len + n > t->cap) {
        t->overflow = 1;
        return;
    }
    memset(t->c->bytes + t->len, 'x', n);
    t->len += n;
}

/* The remote subsegment and the aws subsegment of the realistic segment. */
static void tb_subsegments(struct loadgen_tb *t, const char *const tm[6], unsigned pairs)
{
    char b[512];
    for (unsigned i = 0; i < pairs; i++) {
        tb_put(t, i == 0 ? "" : ",");
        tb_put(t, "{\"id\":\"");
        tb_id(t);
        snprintf(
            b, sizeof(b),
            "\",\"name\":\"payments.example.com\",\"start_time\":%s,\"end_time\":%s,"
            "\"namespace\":\"remote\",\"http\":{\"request\":{\"method\":\"POST\","
            "\"url\":\"https://payments.example.com/charge\"},\"response\":{\"status\":201}}},",
            tm[2], tm[3]);
        tb_put(t, b);
        tb_put(t, "{\"id\":\"");
        tb_id(t);
        snprintf(b, sizeof(b),
                 "\",\"name\":\"DynamoDB\",\"start_time\":%s,\"end_time\":%s,"
                 "\"namespace\":\"aws\",\"http\":{\"response\":{\"status\":200}},"
                 "\"aws\":{\"operation\":\"PutItem\",\"region\":\"eu-west-1\","
                 "\"table_name\":\"orders\",\"request_id\":\"V4N1Q2J3K5L6M7N8O9P0QRSTUVWXYZAB\","
                 "\"retries\":0}}",
                 tm[4], tm[5]);
        tb_put(t, b);
    }
}

/* Renders the document of doc_bytes bytes, padded with `pad` note bytes. Documents under
 * 1 KB keep only the required fields (a 200-byte segment has room for nothing else); from
 * 4 KB on, one remote + aws subsegment pair per 2 KB (at most 30 pairs: the scanner keeps
 * views of 64 subsegments) the way large real segments grow. */
static void loadgen_render(struct loadgen_tb *t, size_t doc_bytes, size_t pad,
                           const char *const tm[6], const char *epoch_hex)
{
    char b[512];
    t->len = 0;
    t->c->nids = 0;
    tb_put(t, LOADGEN_HEADER);
    tb_put(t, "{\"name\":\"checkout-api\",\"id\":\"");
    tb_id(t);
    snprintf(b, sizeof(b), "\",\"trace_id\":\"1-%s-", epoch_hex);
    tb_put(t, b);
    t->c->trace_off = t->len;
    tb_put(t, "000000000000000000000000");
    snprintf(b, sizeof(b), "\",\"start_time\":%s,\"end_time\":%s", tm[0], tm[1]);
    tb_put(t, b);
    if (doc_bytes < 1000) {
        tb_put(t, ",\"metadata\":{\"default\":{\"note\":\"");
        tb_pad(t, pad);
        tb_put(t, "\"}}}");
        return;
    }
    tb_put(t, ",\"origin\":\"AWS::ECS::Container\",\"user\":\"alice\","
              "\"http\":{\"request\":{\"method\":\"POST\",\"url\":\"https://api.example.com/v1/"
              "cart/1234\",\"user_agent\":\"Mozilla/5.0 (X11; Linux x86_64)\","
              "\"client_ip\":\"203.0.113.17\"},\"response\":{\"status\":200,"
              "\"content_length\":512}},\"aws\":{\"xray\":{\"sdk\":\"X-Ray for Node.js\","
              "\"sdk_version\":\"3.12.0\"}},\"annotations\":{\"customer\":\"c-42\","
              "\"cart_items\":3,\"premium\":true},\"metadata\":{\"default\":{\"note\":\"");
    tb_pad(t, pad);
    tb_put(t, "\"}},\"subsegments\":[");
    unsigned pairs = doc_bytes < 4096 ? 1 : (unsigned)(doc_bytes / 2048);
    tb_subsegments(t, tm, pairs > 30 ? 30 : pairs);
    tb_put(t, "]}");
}

/* Builds class c for doc_bytes: renders once without padding to learn the fixed part,
 * then again with the padding that makes the document exactly doc_bytes long. */
static int loadgen_class_init(struct loadgen_class *c, size_t doc_bytes, const char *const tm[6],
                              const char *epoch_hex)
{
    size_t hdr = strlen(LOADGEN_HEADER);
    c->doc_bytes = doc_bytes;
    c->bytes = malloc(LOADGEN_MAX_BYTES);
    if (c->bytes == NULL)
        return -1;
    struct loadgen_tb t = {.c = c, .cap = LOADGEN_MAX_BYTES};
    loadgen_render(&t, doc_bytes, 0, tm, epoch_hex);
    if (t.overflow || t.len - hdr > doc_bytes) {
        fprintf(stderr, "loadgen: a %zu-byte document cannot hold the segment (%zu bytes)\n",
                doc_bytes, t.len - hdr);
        return -1;
    }
    size_t pad = doc_bytes - (t.len - hdr);
    loadgen_render(&t, doc_bytes, pad, tm, epoch_hex);
    if (t.overflow || t.len - hdr != doc_bytes) {
        fprintf(stderr, "loadgen: a %zu-byte document does not fit a datagram\n", doc_bytes);
        return -1;
    }
    c->len = t.len;
    return 0;
}

static uint64_t loadgen_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void loadgen_hex(char *out, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 15];
}

static double loadgen_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double loadgen_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

/* "200:4,1150:4,8192:1" or "1150": sizes in bytes (k = 1024) with optional weights. */
static int loadgen_parse_mix(const char *text, size_t sizes[], unsigned weights[], unsigned *n)
{
    *n = 0;
    for (const char *p = text; *p;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || *n == LOADGEN_MAX_CLASSES)
            return -1;
        if (*end == 'k' || *end == 'K')
            v *= 1024, end++;
        unsigned long w = 1;
        if (*end == ':') {
            p = end + 1;
            w = strtoul(p, &end, 10);
            if (end == p || w == 0 || w > 1000)
                return -1;
        }
        if (v < 100 || v > LOADGEN_MAX_BYTES)
            return -1;
        sizes[*n] = v;
        weights[(*n)++] = (unsigned)w;
        if (*end == ',')
            end++;
        else if (*end != '\0')
            return -1;
        p = end;
    }
    return *n > 0 ? 0 : -1;
}

static void loadgen_usage(void)
{
    fprintf(stderr,
            "usage: loadgen --to 127.0.0.1:PORT --rate DOCS_PER_S [--seconds S] [--count N]\n"
            "               [--size BYTES | --mix BYTES:WEIGHT,...]\n"
            "  sizes are document bytes without the header line (k = 1024); default 1150,\n"
            "  the realistic segment. Stops at --count or --seconds (default 10, max 600).\n"
            "  --rate 0 sends as fast as it can (still bounded).\n");
}

int main(int argc, char **argv)
{
    const char *to = NULL, *mix = "1150";
    double rate = -1, seconds = 10;
    long long count = LOADGEN_MAX_COUNT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            loadgen_usage();
            return 2;
        }
        if (strcmp(a, "--to") == 0)
            to = v;
        else if (strcmp(a, "--rate") == 0)
            rate = atof(v);
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--count") == 0)
            count = atoll(v);
        else if (strcmp(a, "--size") == 0 || strcmp(a, "--mix") == 0)
            mix = v;
        else {
            loadgen_usage();
            return 2;
        }
        i++;
    }
    size_t sizes[LOADGEN_MAX_CLASSES];
    unsigned weights[LOADGEN_MAX_CLASSES], nclass;
    if (to == NULL || rate < 0 || rate > LOADGEN_MAX_RATE || seconds <= 0 ||
        seconds > LOADGEN_MAX_SECONDS || count <= 0 || count > LOADGEN_MAX_COUNT ||
        loadgen_parse_mix(mix, sizes, weights, &nclass) != 0) {
        loadgen_usage();
        return 2;
    }

    /* Loopback only: this program floods whatever it is pointed at. */
    struct sockaddr_in dst = {.sin_family = AF_INET};
    const char *colon = strrchr(to, ':');
    char host[64];
    if (colon == NULL || (size_t)(colon - to) >= sizeof(host)) {
        loadgen_usage();
        return 2;
    }
    memcpy(host, to, (size_t)(colon - to));
    host[colon - to] = '\0';
    dst.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &dst.sin_addr) != 1 || (ntohl(dst.sin_addr.s_addr) >> 24) != 127 ||
        dst.sin_port == 0) {
        fprintf(stderr, "loadgen: --to must be 127.x.x.x:PORT\n");
        return 2;
    }

    /* Times near now, so the documents look current; ids unique across runs too. */
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    char tbuf[6][32];
    const char *tm[6];
    static const int offs_ms[6] = {0, 112, 19, 70, 74, 105};
    for (int i = 0; i < 6; i++) {
        long long ms = (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 + offs_ms[i];
        snprintf(tbuf[i], sizeof(tbuf[i]), "%lld.%03lld", ms / 1000, ms % 1000);
        tm[i] = tbuf[i];
    }
    char epoch_hex[9];
    snprintf(epoch_hex, sizeof(epoch_hex), "%08x", (unsigned)wall.tv_sec);
    uint64_t nonce = loadgen_mix64((uint64_t)wall.tv_nsec ^ ((uint64_t)getpid() << 32));

    struct loadgen_class cls[LOADGEN_MAX_CLASSES];
    memset(cls, 0, sizeof(cls));
    unsigned wsum = 0;
    for (unsigned i = 0; i < nclass; i++) {
        if (loadgen_class_init(&cls[i], sizes[i], tm, epoch_hex) != 0)
            return 1;
        cls[i].weight = weights[i];
        wsum += weights[i];
    }
    /* Which class the k-th document of a weight cycle takes: the cycle repeats. */
    unsigned char *cycle = malloc(wsum);
    char *slots = malloc((size_t)LOADGEN_BATCH * LOADGEN_MAX_BYTES);
    if (cycle == NULL || slots == NULL)
        return 1;
    for (unsigned i = 0, k = 0; i < nclass; i++)
        for (unsigned w = 0; w < cls[i].weight; w++)
            cycle[k++] = (unsigned char)i;
    int slot_class[LOADGEN_BATCH];
    for (int i = 0; i < LOADGEN_BATCH; i++)
        slot_class[i] = -1;

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int sndbuf = 8 * 1024 * 1024;
    if (fd < 0 || connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
        perror("loadgen: socket");
        return 1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));

    struct mmsghdr msgs[LOADGEN_BATCH];
    struct iovec iov[LOADGEN_BATCH];
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < LOADGEN_BATCH; i++) {
        iov[i].iov_base = slots + (size_t)i * LOADGEN_MAX_BYTES;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }

    long long sent = 0, skipped = 0, errors = 0, calls = 0;
    unsigned long long bytes = 0;
    unsigned long long per_class[LOADGEN_MAX_CLASSES] = {0};
    double cpu0 = loadgen_cpu(), t0 = loadgen_now(), now = t0;
    while (sent < count && now - t0 < seconds) {
        long long due = rate > 0 ? (long long)((now - t0) * rate) + 1 : sent + LOADGEN_BATCH;
        if (due > count)
            due = count;
        long long n = due - sent;
        if (n <= 0) {
            double wait = (double)(sent + 1) / rate - (now - t0);
            if (wait > 0.002)
                wait = 0.002;
            struct timespec ts = {0, (long)(wait * 1e9)};
            nanosleep(&ts, NULL);
            now = loadgen_now();
            continue;
        }
        if (n > LOADGEN_BATCH)
            n = LOADGEN_BATCH;
        for (int i = 0; i < n; i++) {
            uint64_t seq = (uint64_t)(sent + i);
            int ci = cycle[seq % wsum];
            struct loadgen_class *c = &cls[ci];
            char *s = iov[i].iov_base;
            if (slot_class[i] != ci) {
                memcpy(s, c->bytes, c->len);
                slot_class[i] = ci;
            }
            iov[i].iov_len = c->len;
            loadgen_hex(s + c->trace_off, nonce >> 32, 8);
            loadgen_hex(s + c->trace_off + 8, seq, 16);
            for (unsigned k = 0; k < c->nids; k++)
                loadgen_hex(s + c->id_off[k], loadgen_mix64(nonce + seq * LOADGEN_MAX_IDS + k), 16);
        }
        int r = sendmmsg(fd, msgs, (unsigned)n, 0);
        calls++;
        if (r < 0) {
            /* ECONNREFUSED: nobody bound yet (an ICMP came back); the batch is lost and
             * not counted as sent, but its ids are used up. */
            errors += n;
            skipped += n;
            r = (int)n;
        } else {
            for (int i = 0; i < r; i++) {
                int ci = cycle[(uint64_t)(sent + i) % wsum];
                bytes += cls[ci].len;
                per_class[ci]++;
            }
        }
        sent += r;
        now = loadgen_now();
    }
    double dt = loadgen_now() - t0, cpu = loadgen_cpu() - cpu0;
    if (dt <= 0)
        dt = 1e-9;
    for (unsigned i = 0; i < nclass; i++)
        printf("loadgen: class doc_bytes=%zu datagram_bytes=%zu sent=%llu\n", cls[i].doc_bytes,
               cls[i].len, per_class[i]);
    printf("loadgen: sent=%lld bytes=%llu seconds=%.3f rate=%.0f target_rate=%.0f "
           "sendmmsg_calls=%lld send_errors=%lld cpu_s=%.3f\n",
           sent - skipped, bytes, dt, (sent - skipped) / dt, rate, calls, errors, cpu);
    close(fd);
    free(slots);
    free(cycle);
    for (unsigned i = 0; i < nclass; i++)
        free(cls[i].bytes);
    return 0;
}
