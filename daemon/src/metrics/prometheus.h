/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus scrape body: a registry snapshot written as the text exposition format
 * 0.0.4 or as OpenMetrics 1.0, and the choice between them from the scraper's Accept
 * header. Pure: no I/O, no clock; any thread. */
#ifndef XRAYD_METRICS_PROMETHEUS_H
#define XRAYD_METRICS_PROMETHEUS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "metrics/registry.h"

/* The Content-Type of each body. */
#define PROMETHEUS_TEXT_TYPE        "text/plain; version=0.0.4; charset=utf-8"
#define PROMETHEUS_OPENMETRICS_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* Appends the whole exposition of s (borrowed) to out: families in declaration order,
 * series in creation order, HELP and TYPE for every family, even one without series;
 * the OpenMetrics form ends with "# EOF". Label values that are not valid UTF-8 have
 * each bad byte replaced by U+FFFD. 0, -ENOSPC when the text does not fit under out's
 * maximum, or -ENOMEM; on error out is left as it was. */
int prometheus_write(const struct registry_snapshot *s, bool openmetrics, struct buf *out);

/* True when the Accept header value (len bytes, not NUL-terminated, any bytes) lists
 * application/openmetrics-text (any version) with a q above 0 and not lower than
 * text/plain's (text/plain's own entry, else the text wildcard's, else the one for any
 * type). Entries with a malformed q are ignored; an empty or unparsable header means the text
 * format. */
bool prometheus_wants_openmetrics(const char *accept, size_t len);

#endif
