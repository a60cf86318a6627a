/* SPDX-License-Identifier: Apache-2.0 */
/* A node of the segment tree as an X-Ray segment document (wire.md): the fields every
 * node has, the segment-only ones (trace, origin, user, aws.xray, service), and the
 * nested subsegments. Values were escaped when they were recorded, so this is mostly
 * copying; nothing here allocates except stack symbolization for exceptions. */
#include <execinfo.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define W_LIT(w, s) xray__serialize_lit(w, s)

/* For text chosen at run time (W_LIT takes literals only). */
static void doc_text(struct xray__writer *w, const char *s)
{
    xray__serialize_raw(w, s, strlen(s));
}

static void doc_frag(struct xray__writer *w, struct xray__frag f)
{
    xray__serialize_raw(w, f.p, f.len);
}

/* ,"key":<frag> when the fragment is set; *first tracks the comma of an object. */
static void doc_member(struct xray__writer *w, bool *first, const char *key, struct xray__frag f)
{
    if (f.p == NULL)
        return;
    if (!*first)
        W_LIT(w, ",");
    *first = false;
    W_LIT(w, "\"");
    xray__serialize_raw(w, key, strlen(key));
    W_LIT(w, "\":");
    doc_frag(w, f);
}

static void doc_id(struct xray__writer *w, const char *key, const char *id)
{
    W_LIT(w, ",\"");
    xray__serialize_raw(w, key, strlen(key));
    W_LIT(w, "\":\"");
    xray__serialize_raw(w, id, strlen(id));
    W_LIT(w, "\"");
}

static void doc_http(struct xray__writer *w, const struct xray_segment *n)
{
    if (!n->has_request && n->http_status == 0)
        return;
    W_LIT(w, ",\"http\":{");
    bool first_block = true;
    if (n->has_request) {
        static const char *const names[XRAY__HTTP_N] = {"method", "url", "user_agent", "client_ip"};
        W_LIT(w, "\"request\":{");
        bool first = true;
        for (int i = 0; i < XRAY__HTTP_N; i++)
            doc_member(w, &first, names[i], n->http[i]);
        if (n->http_xff) {
            doc_text(w, first ? "\"x_forwarded_for\":true" : ",\"x_forwarded_for\":true");
            first = false;
        }
        if (n->http_traced)
            doc_text(w, first ? "\"traced\":true" : ",\"traced\":true");
        W_LIT(w, "}");
        first_block = false;
    }
    if (n->http_status != 0) {
        doc_text(w, first_block ? "\"response\":{\"status\":" : ",\"response\":{\"status\":");
        xray__serialize_i64(w, n->http_status);
        if (n->http_length >= 0) {
            W_LIT(w, ",\"content_length\":");
            xray__serialize_i64(w, n->http_length);
        }
        W_LIT(w, "}");
    }
    W_LIT(w, "}");
}

static void doc_aws(struct xray__writer *w, const struct xray_segment *n)
{
    static const char *const names[XRAY__AWS_N] = {"operation",  "region",     "request_id",
                                                   "account_id", "table_name", "queue_url"};
    const struct xray__trace *t = n->trace;
    bool any = n->aws_retries >= 0;
    for (int i = 0; i < XRAY__AWS_N; i++)
        any = any || n->aws[i].p != NULL;
    if (!any && n->is_sub)
        return;
    W_LIT(w, ",\"aws\":{");
    bool first = true;
    if (!n->is_sub && t->plugin != NULL && t->plugin->aws_members != NULL) {
        xray__serialize_raw(w, t->plugin->aws_members, strlen(t->plugin->aws_members));
        first = false;
    }
    for (int i = 0; i < XRAY__AWS_N; i++)
        doc_member(w, &first, names[i], n->aws[i]);
    if (n->aws_retries >= 0) {
        doc_text(w, first ? "\"retries\":" : ",\"retries\":");
        xray__serialize_i64(w, n->aws_retries);
        first = false;
    }
    if (!n->is_sub) {
        doc_text(w, first ? "\"xray\":{" : ",\"xray\":{");
        W_LIT(w, "\"sdk\":\"" XRAY__SDK_NAME "\",\"sdk_version\":\"" XRAYD_VERSION "\"");
        if (t->rule_name[0]) {
            W_LIT(w, ",\"sampling_rule_name\":");
            xray__serialize_string(w, t->rule_name, strlen(t->rule_name));
        }
        W_LIT(w, "}");
    }
    W_LIT(w, "}");
}

static void doc_sql(struct xray__writer *w, const struct xray_segment *n)
{
    static const char *const names[XRAY__SQL_N] = {
        "url",           "connection_string", "sanitized_query",
        "database_type", "database_version",  "driver_version",
        "user",          "preparation"};
    bool any = false;
    for (int i = 0; i < XRAY__SQL_N; i++)
        any = any || n->sql[i].p != NULL;
    if (!any)
        return;
    W_LIT(w, ",\"sql\":{");
    bool first = true;
    for (int i = 0; i < XRAY__SQL_N; i++)
        doc_member(w, &first, names[i], n->sql[i]);
    W_LIT(w, "}");
}

static void doc_annotations(struct xray__writer *w, const struct xray_segment *n)
{
    if (n->annotations == NULL)
        return;
    W_LIT(w, ",\"annotations\":{");
    for (const struct xray__kv *kv = n->annotations; kv != NULL; kv = kv->next) {
        doc_frag(w, kv->key);
        W_LIT(w, ":");
        doc_frag(w, kv->value);
        if (kv->next)
            W_LIT(w, ",");
    }
    W_LIT(w, "}");
}

static bool doc_same(struct xray__frag a, struct xray__frag b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

/* Grouped by namespace in order of first use; entries are few (XRAY_METADATA_MAX). */
static void doc_metadata(struct xray__writer *w, const struct xray_segment *n)
{
    if (n->metadata == NULL)
        return;
    W_LIT(w, ",\"metadata\":{");
    bool first_ns = true;
    for (const struct xray__kv *a = n->metadata; a != NULL; a = a->next) {
        bool seen = false;
        for (const struct xray__kv *b = n->metadata; b != a && !seen; b = b->next)
            seen = doc_same(a->ns, b->ns);
        if (seen)
            continue;
        if (!first_ns)
            W_LIT(w, ",");
        first_ns = false;
        doc_frag(w, a->ns);
        W_LIT(w, ":{");
        for (const struct xray__kv *b = a; b != NULL; b = b->next) {
            if (!doc_same(a->ns, b->ns))
                continue;
            if (b != a)
                W_LIT(w, ",");
            doc_frag(w, b->key);
            W_LIT(w, ":");
            doc_frag(w, b->value);
        }
        W_LIT(w, "}");
    }
    W_LIT(w, "}");
}

/* One backtrace_symbols() line, "path(label) [addr]", as a stack frame. */
static void doc_frame(struct xray__writer *w, const char *sym)
{
    const char *open = strchr(sym, '('), *close = open ? strchr(open, ')') : NULL;
    const char *bracket = strchr(sym, '[');
    size_t plen = open ? (size_t)(open - sym) : bracket ? (size_t)(bracket - sym) : strlen(sym);
    while (plen > 0 && sym[plen - 1] == ' ')
        plen--;
    W_LIT(w, "{\"path\":");
    xray__serialize_string(w, sym, plen);
    if (open && close && close > open + 1) {
        W_LIT(w, ",\"label\":");
        xray__serialize_string(w, open + 1, (size_t)(close - open - 1));
    } else if (bracket) {
        const char *end = strchr(bracket, ']');
        W_LIT(w, ",\"label\":");
        xray__serialize_string(w, bracket + 1, end ? (size_t)(end - bracket - 1) : 0);
    }
    W_LIT(w, "}");
}

static void doc_cause(struct xray__writer *w, const struct xray_segment *n)
{
    if (n->exceptions == NULL)
        return;
    const struct xray_recorder *rec = n->trace->rec;
    W_LIT(w, ",\"cause\":{");
    if (rec->cwd_json) {
        W_LIT(w, "\"working_directory\":");
        xray__serialize_raw(w, rec->cwd_json, strlen(rec->cwd_json));
        W_LIT(w, ",");
    }
    W_LIT(w, "\"exceptions\":[");
    for (const struct xray__exception *e = n->exceptions; e != NULL; e = e->next) {
        W_LIT(w, "{\"id\":\"");
        xray__serialize_raw(w, e->id, XRAY_SEGMENT_ID_LEN);
        W_LIT(w, "\"");
        bool first = false;
        doc_member(w, &first, "message", e->message);
        doc_member(w, &first, "type", e->type);
        if (e->remote)
            W_LIT(w, ",\"remote\":true");
        if (e->n_frames > 0) {
            char **syms = backtrace_symbols(e->frames, e->n_frames);
            if (syms != NULL) {
                W_LIT(w, ",\"stack\":[");
                for (int i = 0; i < e->n_frames; i++) {
                    if (i)
                        W_LIT(w, ",");
                    doc_frame(w, syms[i]);
                }
                W_LIT(w, "]");
                free(syms);
            }
        }
        doc_text(w, e->next ? "}," : "}");
    }
    W_LIT(w, "]}");
}

void xray__document_write(struct xray__writer *w, const struct xray_segment *n, bool standalone,
                          bool alone, bool in_progress)
{
    const struct xray__trace *t = n->trace;
    const struct xray_recorder *rec = t->rec;
    W_LIT(w, "{\"name\":");
    doc_frag(w, n->name);
    doc_id(w, "id", n->id);
    if (!n->is_sub) {
        doc_id(w, "trace_id", t->trace_id);
        if (t->parent_id[0])
            doc_id(w, "parent_id", t->parent_id);
    } else if (standalone) {
        W_LIT(w, ",\"type\":\"subsegment\"");
        doc_id(w, "trace_id", t->trace_id);
        doc_id(w, "parent_id", n->parent->id);
    }
    W_LIT(w, ",\"start_time\":");
    xray__serialize_time(w, n->start_us);
    if (in_progress) {
        W_LIT(w, ",\"in_progress\":true");
    } else {
        W_LIT(w, ",\"end_time\":");
        xray__serialize_time(w, n->end_us);
    }
    if (n->ns == XRAY_NAMESPACE_REMOTE)
        W_LIT(w, ",\"namespace\":\"remote\"");
    else if (n->ns == XRAY_NAMESPACE_AWS)
        W_LIT(w, ",\"namespace\":\"aws\"");
    if (!n->is_sub) {
        if (rec->origin_json != NULL) {
            W_LIT(w, ",\"origin\":");
            xray__serialize_raw(w, rec->origin_json, strlen(rec->origin_json));
        } else if (t->plugin != NULL && t->plugin->origin[0]) {
            W_LIT(w, ",\"origin\":");
            xray__serialize_string(w, t->plugin->origin, strlen(t->plugin->origin));
        }
        if (n->user.p) {
            W_LIT(w, ",\"user\":");
            doc_frag(w, n->user);
        }
    }
    if (n->flags & XRAY_FLAG_ERROR)
        W_LIT(w, ",\"error\":true");
    if (n->flags & XRAY_FLAG_THROTTLE)
        W_LIT(w, ",\"throttle\":true");
    if (n->flags & XRAY_FLAG_FAULT)
        W_LIT(w, ",\"fault\":true");
    doc_http(w, n);
    doc_aws(w, n);
    if (!n->is_sub && rec->service_version_json != NULL) {
        W_LIT(w, ",\"service\":{\"version\":");
        xray__serialize_raw(w, rec->service_version_json, strlen(rec->service_version_json));
        W_LIT(w, "}");
    }
    doc_sql(w, n);
    doc_annotations(w, n);
    doc_metadata(w, n);
    doc_cause(w, n);
    if (!alone && n->first_child != NULL) {
        W_LIT(w, ",\"subsegments\":[");
        for (const struct xray_segment *c = n->first_child; c != NULL; c = c->next) {
            xray__document_write(w, c, false, false, !c->ended);
            if (c->next)
                W_LIT(w, ",");
        }
        W_LIT(w, "]");
    }
    W_LIT(w, "}");
}
