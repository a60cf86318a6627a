/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes request assembly (http/request.c) with no sockets: the input is a byte stream
 * as a client would send it on one connection. It is parsed twice, whole and in small
 * pieces, and both runs must see the same requests: how reads split the stream must
 * never change what the server hands to a route. Then under memory budgets: a roomy
 * one changes nothing, a tight one may only answer 503, and either way the parser
 * never holds more than its budget and gives every byte back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "http/request.h"
#include "http/server.h"

#define FUZZ_MAX_HEADER 4096
#define FUZZ_MAX_BODY   8192

struct outcome {
    unsigned requests;
    int status;
    uint64_t digest; /* of every request's method, target, headers and body */
};

static uint64_t fuzz_mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; /* a separator, so pieces cannot shift */
}

static uint64_t fuzz_digest(uint64_t h, const struct http_request *req)
{
    h = fuzz_mix(h, req->method, strlen(req->method));
    h = fuzz_mix(h, req->path, req->path_len);
    h = fuzz_mix(h, req->query, req->query_len);
    if (strlen(req->path) != req->path_len || strlen(req->query) != req->query_len)
        abort(); /* lengths and NUL termination must agree (no NUL bytes get through) */
    for (size_t i = 0; i < req->header_count; i++) {
        const struct http_header *hd = &req->headers[i];
        h = fuzz_mix(h, hd->name, hd->name_len);
        h = fuzz_mix(h, hd->value, hd->value_len);
        if (http_request_header(req, hd->name) == NULL)
            abort();
    }
    if (req->body[req->body_len] != '\0')
        abort();
    h = fuzz_mix(h, req->body, req->body_len);
    unsigned flags =
        req->keep_alive | (unsigned)req->http_major << 1 | (unsigned)req->http_minor << 9;
    return fuzz_mix(h, &flags, sizeof(flags));
}

static void fuzz_run(const uint8_t *data, size_t size, size_t piece, struct budget_meter *mem,
                     struct outcome *out)
{
    struct http_request_parser *rp = http_request_parser_create(FUZZ_MAX_HEADER, FUZZ_MAX_BODY);
    if (rp == NULL)
        abort();
    memset(out, 0, sizeof(*out));
    out->digest = 0xcbf29ce484222325ull;
    if (mem != NULL && http_request_parser_set_budget(rp, mem, mem->limit / 8) != 0) {
        out->status = 503; /* not even the parser fits */
        size = 0;
    }
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < piece ? size - off : piece;
        size_t used;
        int rc = http_request_parser_feed(rp, (const char *)data + off, n, &used);
        if (used > n)
            abort();
        if (mem != NULL && budget_meter_used(mem) > mem->limit)
            abort();
        off += used;
        if (rc < 0) {
            out->status = http_request_parser_status(rp);
            bool budget = mem != NULL && http_request_parser_over_budget(rp);
            if (out->status != 400 && out->status != 413 && out->status != 431 &&
                !(out->status == 503 && budget))
                abort();
            break;
        }
        if (rc == 1) {
            out->requests++;
            out->digest = fuzz_digest(out->digest, http_request_parser_request(rp));
            http_request_parser_next(rp);
        } else if (used != n) {
            abort(); /* "need more" must mean everything given was taken */
        }
    }
    http_request_parser_destroy(rp);
    if (mem != NULL && budget_meter_used(mem) != 0)
        abort(); /* every byte charged was given back */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome whole, pieces, roomy, tight;
    fuzz_run(data, size, size ? size : 1, NULL, &whole);
    fuzz_run(data, size, 1 + size % 13, NULL, &pieces);
    if (whole.requests != pieces.requests || whole.status != pieces.status ||
        whole.digest != pieces.digest) {
        fprintf(stderr, "split changed the outcome: %u/%d vs %u/%d\n", whole.requests, whole.status,
                pieces.requests, pieces.status);
        abort();
    }
    /* Room for the largest request: the budget must not change a thing. */
    struct budget_meter mem;
    budget_meter_init(&mem, 1u << 20);
    fuzz_run(data, size, 1 + size % 7, &mem, &roomy);
    if (roomy.requests != whole.requests || roomy.status != whole.status ||
        roomy.digest != whole.digest) {
        fprintf(stderr, "a roomy budget changed the outcome: %u/%d vs %u/%d\n", roomy.requests,
                roomy.status, whole.requests, whole.status);
        abort();
    }
    /* A tight one: fewer requests at most, then 503 (checked inside). */
    budget_meter_init(&mem, 2048 + (size * 31) % 20000);
    fuzz_run(data, size, 1 + size % 5, &mem, &tight);
    if (tight.requests > whole.requests)
        abort();
    /* The listener address syntax is outside input too (flags, cfg.yaml). */
    char addr[80];
    size_t n = size < sizeof(addr) - 1 ? size : sizeof(addr) - 1;
    memcpy(addr, data, n);
    addr[n] = '\0';
    struct sockaddr_storage ss;
    http_server_parse_address(addr, &ss, NULL);
    return 0;
}
