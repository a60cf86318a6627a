/* SPDX-License-Identifier: Apache-2.0 */
/* The framing of an X-Ray datagram: `{"format":"json","version":1}` + '\n' + body.
 * framing_parse() checks the header line and classifies the body; it never looks
 * inside a segment document (segment/scan.c does). Pure and thread-safe. */
#ifndef XRAYD_FRAMING_H
#define XRAYD_FRAMING_H

#include <stddef.h>

enum framing_kind {
    FRAMING_SEGMENT,      /* a JSON document: the scanner checks it, then it is forwarded */
    FRAMING_OTLP_TRACES,  /* "T1S" / "T1U" + base64 OTLP (ADOT exporters): not forwarded */
    FRAMING_OTLP_METRICS, /* "M1" + base64 OTLP metrics: not forwarded */
    FRAMING_NO_NEWLINE,   /* no '\n' anywhere: no header line */
    FRAMING_BAD_HEADER,   /* header not {"format":"json","version":1} */
    FRAMING_EMPTY_BODY,   /* nothing after the newline */
};

struct framing {
    const char *body; /* borrowed: points into the datagram, just past the first '\n' */
    size_t body_len;  /* > 0 on success */
    enum framing_kind kind;
};

/* Splits dgram at its first '\n' and checks the header: a JSON object whose "format"
 * is the string "json" (any case) and whose "version" is the integer 1; whitespace and
 * other keys are allowed; keys match in any case, the last duplicate wins (as the
 * reference daemon's decoder does). Returns 0 with out->kind FRAMING_SEGMENT or
 * FRAMING_OTLP_* and the body set, or XRAY_EHEADER with out->kind saying why (body
 * NULL, body_len 0). Never reads past dgram + len. */
int framing_parse(const char *dgram, size_t len, struct framing *out);

/* The enum stats_reject reason to count for a kind: every kind but FRAMING_SEGMENT is
 * a rejection. Returns -1 for FRAMING_SEGMENT. */
int framing_reject_reason(enum framing_kind kind);

#endif
