/* SPDX-License-Identifier: Apache-2.0 */
/* A trace summary as GetTraceSummaries returns it (service-graph.md): one TraceSummary
 * object, written straight into the response buffer. Members whose value is unknown
 * (an absent http field, the response time of a trace without a complete root) are
 * left out, as X-Ray leaves them out. */
#include "trace/summary.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first error sticks, so a writer appends without checking each step. */
struct summary_json {
    struct buf *b;
    int rc;
};

static void summary_json_raw(struct summary_json *w, const char *s)
{
    if (w->rc == 0)
        w->rc = buf_append_str(w->b, s);
}

static void summary_json_str(struct summary_json *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = buf_append_json_string(w->b, s, n);
}

/* The shortest of %.15g and %.17g that reads back as d; JSON has no infinity. */
static void summary_json_num(struct summary_json *w, double d)
{
    char tmp[32];
    if (!isfinite(d))
        d = 0;
    snprintf(tmp, sizeof(tmp), "%.15g", d);
    if (strtod(tmp, NULL) != d)
        snprintf(tmp, sizeof(tmp), "%.17g", d);
    summary_json_raw(w, tmp);
}

static void summary_json_bool(struct summary_json *w, const char *key, bool v)
{
    summary_json_raw(w, key);
    summary_json_raw(w, v ? "true" : "false");
}

/* The trace's services whose bit is set in mask, as a ServiceIds array. */
static void summary_json_services(struct summary_json *w, const struct summary *s, uint32_t mask)
{
    summary_json_raw(w, "[");
    bool first = true;
    uint32_t i = 0;
    for (const struct summary_svc *x = s->svcs; x != NULL; x = x->next, i++) {
        if ((mask >> i & 1u) == 0)
            continue;
        summary_json_raw(w, first ? "{\"Name\":" : ",{\"Name\":");
        summary_json_str(w, x->name->s, x->name->len);
        summary_json_raw(w, ",\"Names\":[");
        summary_json_str(w, x->name->s, x->name->len);
        summary_json_raw(w, "]");
        if (x->type != NULL) {
            summary_json_raw(w, ",\"Type\":");
            summary_json_str(w, x->type->s, x->type->len);
        }
        summary_json_raw(w, "}");
        first = false;
    }
    summary_json_raw(w, "]");
}

/* Http in X-Ray's member order: HttpURL, HttpStatus, HttpMethod, UserAgent, ClientIp. */
static void summary_json_http(struct summary_json *w, const struct summary *s)
{
    static const char *const keys[SUMMARY_HTTP__COUNT] = {
        [SUMMARY_HTTP_URL] = "\"HttpURL\":",
        [SUMMARY_HTTP_METHOD] = "\"HttpMethod\":",
        [SUMMARY_HTTP_USER_AGENT] = "\"UserAgent\":",
        [SUMMARY_HTTP_CLIENT_IP] = "\"ClientIp\":",
    };
    const char *sep = "";
    summary_json_raw(w, ",\"Http\":{");
    for (int i = 0; i < SUMMARY_HTTP__COUNT; i++) {
        if (i == SUMMARY_HTTP_METHOD && s->http_status != SCAN_STATUS_NONE) {
            char tmp[32];
            snprintf(tmp, sizeof(tmp), "%s\"HttpStatus\":%d", sep, (int)s->http_status);
            summary_json_raw(w, tmp);
            sep = ",";
        }
        if (s->http[i] == NULL)
            continue;
        summary_json_raw(w, sep);
        summary_json_raw(w, keys[i]);
        summary_json_str(w, s->http[i], s->http_len[i]);
        sep = ",";
    }
    summary_json_raw(w, "}");
}

static void summary_json_value(struct summary_json *w, const struct summary_val *v)
{
    summary_json_raw(w, "{\"AnnotationValue\":{");
    if (v->kind == SCAN_KIND_STRING) {
        summary_json_raw(w, "\"StringValue\":");
        summary_json_str(w, v->s, v->len);
    } else if (v->kind == SCAN_KIND_NUMBER) {
        summary_json_raw(w, "\"NumberValue\":");
        summary_json_num(w, v->num);
    } else {
        summary_json_bool(w, "\"BooleanValue\":", v->boolean);
    }
    summary_json_raw(w, "},\"ServiceIds\":");
}

static void summary_json_annotations(struct summary_json *w, const struct summary *s)
{
    summary_json_raw(w, ",\"Annotations\":{");
    const char *sep = "";
    for (const struct summary_key *k = s->keys; k != NULL; k = k->next) {
        if (k->values == NULL)
            continue; /* its value could not be kept */
        summary_json_raw(w, sep);
        summary_json_str(w, k->s, k->len);
        summary_json_raw(w, ":[");
        for (const struct summary_val *v = k->values; v != NULL; v = v->next) {
            summary_json_value(w, v);
            summary_json_services(w, s, v->services);
            summary_json_raw(w, v->next != NULL ? "}," : "}");
        }
        summary_json_raw(w, "]");
        sep = ",";
    }
    summary_json_raw(w, "}");
}

static void summary_json_users(struct summary_json *w, const struct summary *s)
{
    summary_json_raw(w, ",\"Users\":[");
    for (const struct summary_user *u = s->users; u != NULL; u = u->next) {
        summary_json_raw(w, "{\"UserName\":");
        summary_json_str(w, u->s, u->len);
        summary_json_raw(w, ",\"ServiceIds\":");
        summary_json_services(w, s, u->services);
        summary_json_raw(w, u->next != NULL ? "}," : "}");
    }
    summary_json_raw(w, "]");
}

int summary_json_write(const struct summary *s, const char *trace_id, struct buf *out)
{
    struct summary_json w = {.b = out};
    double rt;
    summary_json_raw(&w, "{\"Id\":");
    summary_json_str(&w, trace_id, strlen(trace_id));
    summary_json_raw(&w, ",\"StartTime\":");
    summary_json_num(&w, s->start);
    summary_json_raw(&w, ",\"Duration\":");
    summary_json_num(&w, summary_duration(s));
    if (summary_response_time(s, &rt)) {
        summary_json_raw(&w, ",\"ResponseTime\":");
        summary_json_num(&w, rt);
    }
    summary_json_bool(&w, ",\"HasFault\":", s->faults > 0);
    summary_json_bool(&w, ",\"HasError\":", s->errors > 0 || s->throttles > 0);
    summary_json_bool(&w, ",\"HasThrottle\":", s->throttles > 0);
    summary_json_bool(&w, ",\"IsPartial\":", summary_partial(s));
    summary_json_http(&w, s);
    summary_json_annotations(&w, s);
    summary_json_users(&w, s);
    summary_json_raw(&w, ",\"ServiceIds\":");
    summary_json_services(&w, s, UINT32_MAX);
    summary_json_raw(&w, "}");
    return w.rc;
}
