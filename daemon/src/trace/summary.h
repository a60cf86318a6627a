/* SPDX-License-Identifier: Apache-2.0 */
/* A trace's summary for GetTraceSummaries, kept beside its documents in the store and
 * updated from each document's scan, so that queries and filters never re-parse a
 * document; and the table of interned service names whose posting lists index traces
 * by service. Internal to the store and the filter; worker thread only. */
#ifndef XRAYD_SUMMARY_H
#define XRAYD_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "segment/scan.h"

#define SUMMARY_KEYS_MAX     50  /* X-Ray indexes at most 50 annotations per trace */
#define SUMMARY_VALUES_MAX   100 /* annotation values per trace, all keys together */
#define SUMMARY_USERS_MAX    10
#define SUMMARY_SERVICES_MAX 32 /* one bit each in the service masks below */

/* What one stored document contributes to the counts of its trace. Kept with the
 * document, so that a newer version with the same id takes the old one's back. */
enum summary_bit {
    SUMMARY_IN_PROGRESS = 1u << 0,
    SUMMARY_ROOT = 1u << 1, /* a segment without parent_id */
    SUMMARY_FAULT = 1u << 2,
    SUMMARY_ERROR = 1u << 3,
    SUMMARY_THROTTLE = 1u << 4,
    SUMMARY_SCANNED = 1u << 5, /* stored by store_add() (with a scan), not store_put() */
};

enum summary_http {
    SUMMARY_HTTP_URL,
    SUMMARY_HTTP_METHOD,
    SUMMARY_HTTP_USER_AGENT,
    SUMMARY_HTTP_CLIENT_IP,
    SUMMARY_HTTP__COUNT,
};

struct summary;

/* A service name or type, interned: one copy however many traces use it. */
struct summary_name {
    struct summary_name *hnext;
    struct summary_svc *head; /* posting list: one service of each trace with this */
    struct summary_svc *tail; /* name, ordered by the traces' seq */
    uint64_t hash;
    uint32_t refs;
    uint32_t len;
    char s[]; /* NUL-terminated */
};

/* One (name, type) of a trace, and its trace's entry in the name's posting list. */
struct summary_svc {
    struct summary_svc *next; /* the trace's services, in order of appearance */
    struct summary_svc *pprev;
    struct summary_svc *pnext;
    const struct summary *owner;
    struct summary_name *name;
    struct summary_name *type; /* the segment's origin; NULL when absent */
    bool posted;               /* the trace's first service of this name: the one listed */
};

struct summary_val {
    struct summary_val *next;
    double num;        /* SCAN_KIND_NUMBER */
    uint32_t services; /* bit i: the trace's i-th service recorded it */
    uint32_t len;
    uint8_t kind; /* enum scan_kind */
    bool boolean; /* SCAN_KIND_BOOL */
    char s[];     /* SCAN_KIND_STRING, NUL-terminated */
};

struct summary_key {
    struct summary_key *next;
    struct summary_val *values;
    uint32_t len;
    char s[];
};

struct summary_user {
    struct summary_user *next;
    uint32_t services;
    uint32_t len;
    char s[];
};

/* Embedded in the store's trace. Fields are read by the filter and the JSON writer;
 * only summary.c writes them. */
struct summary {
    uint64_t seq;      /* the trace's arrival number: posting lists are in this order */
    double start, end; /* earliest start_time, latest end_time (0: none) of the documents */
    double root_start, root_end;           /* the root segment's; root_end 0 while in progress */
    char *http_block;                      /* one allocation holding the strings below */
    const char *http[SUMMARY_HTTP__COUNT]; /* the root's http.request; NULL when absent */
    uint32_t http_len[SUMMARY_HTTP__COUNT];
    uint32_t http_bytes;
    int32_t http_status; /* the root's http.response.status, or SCAN_STATUS_NONE */
    /* Stored documents with each bit of enum summary_bit. */
    uint32_t in_progress, roots, faults, errors, throttles;
    struct summary_svc *svcs;
    struct summary_svc *svcs_tail;
    struct summary_key *keys;
    struct summary_user *users;
    uint16_t nvalues;
    uint8_t nsvcs, nkeys, nusers;
    bool root_seen;     /* a root segment is stored */
    bool root_complete; /* and the version kept is complete */
};

/* The interned names, in a fixed number of buckets (a power of two). */
struct summary_names {
    struct summary_name **idx;
    size_t mask;
    uint64_t seed;
};

/* 0 or -ENOMEM. */
int summary_names_init(struct summary_names *nm, size_t buckets, uint64_t seed);
/* Every name must have been released (all summaries cleared) first. */
void summary_names_free(struct summary_names *nm);
/* The name's entry, or NULL when no stored trace has a service of that name. */
const struct summary_name *summary_names_find(const struct summary_names *nm, const char *s,
                                              size_t n);

void summary_init(struct summary *s, uint64_t seq, double start);
/* Frees what s holds, subtracting it from *bytes. */
void summary_clear(struct summary_names *nm, struct summary *s, size_t *bytes);

/* The bits v contributes (enum summary_bit, SUMMARY_SCANNED included). */
unsigned summary_bits(const struct segment_view *v);
/* Moves the counts from a document's old contribution (0 for a new document) to its
 * new one. */
void summary_count(struct summary *s, unsigned old_bits, unsigned new_bits);
/* Widens the trace's times to a document's; true when the start moved earlier. */
bool summary_times(struct summary *s, double start, double end);

/* At most the bytes summary_add() may allocate for v, whatever s holds. */
size_t summary_bound(const struct segment_view *v);
/* Adds v's services, users, annotations and, for a root segment, its http block,
 * without duplicates; what the limits refuse is added to *dropped. Allocations are
 * added to *bytes, freed ones subtracted. 0, or -ENOMEM (s stays consistent). */
int summary_add(struct summary_names *nm, struct summary *s, const struct segment_view *v,
                size_t *bytes, uint64_t *dropped);

bool summary_partial(const struct summary *s);
/* end - start in seconds, rounded to the microsecond; 0 while nothing is complete. */
double summary_duration(const struct summary *s);
/* The root segment's end - start, rounded likewise; false while unknown. */
bool summary_response_time(const struct summary *s, double *out);
/* The trace's service entry listed under name, or NULL. */
const struct summary_svc *summary_posted(const struct summary *s, const struct summary_name *name);
bool summary_has_service(const struct summary *s, const char *name, size_t n);

/* summary_json.c: appends the X-Ray TraceSummary object of s, whose trace is trace_id.
 * 0, XRAY_ETOOBIG or -ENOMEM (out's length is then unspecified). */
int summary_json_write(const struct summary *s, const char *trace_id, struct buf *out);

#endif
