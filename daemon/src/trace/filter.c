/* SPDX-License-Identifier: Apache-2.0 */
/* GetTraceSummaries filter expressions: a recursive-descent parser for the subset that
 * filter.h lists, into a small tree evaluated against trace summaries. Anything else
 * is refused, never guessed at, with the offset and the list of what is supported.
 *
 * Grammar (keywords case-insensitive; `and` binds tighter than `or`, `not` tighter
 * than both):
 *   or      := and ("or" and)*
 *   and     := unary ("and" unary)*
 *   unary   := ("not" | "!") unary | "(" or ")" | predicate
 * Recursion is bounded by FILTER_MAX_DEPTH; `and` and `or` chains become one node
 * with a list of operands, so evaluation recurses no deeper than the parser did. */
#include "trace/filter_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "trace/summary.h"

/* Kept short enough that the whole message fits in XRAY_ERR_LEN. */
#define FILTER_SUPPORTED                                                                           \
    "supported: service(\"x\"), responsetime|duration|http.status OP n, fault, error, "            \
    "throttle, ok, http.url =|CONTAINS \"s\", http.method = \"s\", user = \"s\", "                 \
    "annotation.KEY OP v, and, or, not, ()"
#define FILTER_TOKEN_SHOWN 12 /* bytes of the offending token quoted in the message */
#define FILTER_NUMBER_MAX  64 /* characters of one number literal */

enum filter_op {
    FILTER_AND,
    FILTER_OR,
    FILTER_NOT,
    FILTER_SERVICE,
    FILTER_RESPONSETIME,
    FILTER_DURATION,
    FILTER_HTTP_STATUS,
    FILTER_FAULT,
    FILTER_ERROR,
    FILTER_THROTTLE,
    FILTER_OK,
    FILTER_HTTP_URL,
    FILTER_HTTP_URL_CONTAINS,
    FILTER_HTTP_METHOD,
    FILTER_USER,
    FILTER_ANNOTATION,
};

enum filter_cmp { FILTER_EQ, FILTER_NE, FILTER_LT, FILTER_LE, FILTER_GT, FILTER_GE };

/* How a predicate keyword continues. */
enum filter_form {
    FILTER_FORM_FLAG,   /* fault */
    FILTER_FORM_CALL,   /* service("x") */
    FILTER_FORM_NUMBER, /* duration OP n */
    FILTER_FORM_URL,    /* http.url = "s" | http.url CONTAINS "s" */
    FILTER_FORM_STRING, /* user = "s" */
};

struct filter_node {
    double num;
    int32_t child;         /* first operand of and / or / not, -1 for none */
    int32_t next;          /* the next operand of the parent and / or */
    uint32_t str, str_len; /* in strings: the name or string operand */
    uint32_t key, key_len; /* in strings: the annotation key */
    uint8_t op;            /* enum filter_op */
    uint8_t cmp;           /* enum filter_cmp */
    uint8_t kind;          /* annotation operand: enum scan_kind */
    bool boolean;
};

struct filter {
    struct filter_node *nodes;
    size_t n, cap;
    char *strings; /* decoded operands, each NUL-terminated; never more than the input */
    size_t slen;
    int32_t root;
};

enum filter_tok {
    FILTER_TOK_END,
    FILTER_TOK_IDENT,
    FILTER_TOK_NUMBER,
    FILTER_TOK_STRING,
    FILTER_TOK_LPAREN,
    FILTER_TOK_RPAREN,
    FILTER_TOK_CMP,
    FILTER_TOK_BANG,
    FILTER_TOK_BAD,
};

struct filter_parser {
    const char *p;
    size_t len;
    size_t pos;        /* where the next token starts looking */
    size_t start, end; /* the current token's bytes */
    uint8_t tok;       /* enum filter_tok */
    uint8_t cmp;       /* FILTER_TOK_CMP: enum filter_cmp */
    int depth;
    struct filter *f;
    char *err;
};

static bool filter_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool filter_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool filter_is_ident(char c)
{
    return filter_is_alpha(c) || filter_is_digit(c) || c == '.';
}

/* The end of the number at i (JSON-like, a leading '-' allowed), or i if none. */
static size_t filter_lex_number(const char *p, size_t i, size_t n)
{
    size_t s = i, digits = 0;
    if (i < n && p[i] == '-')
        i++;
    for (; i < n && filter_is_digit(p[i]); i++)
        digits++;
    if (i < n && p[i] == '.')
        for (i++; i < n && filter_is_digit(p[i]); i++)
            digits++;
    if (digits == 0)
        return s;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        size_t e = i + 1;
        if (e < n && (p[e] == '+' || p[e] == '-'))
            e++;
        if (e < n && filter_is_digit(p[e])) {
            while (e < n && filter_is_digit(p[e]))
                e++;
            i = e;
        }
    }
    if (i < n && filter_is_ident(p[i])) /* 5ms, 1.2.3 */
        return s;
    return i - s < FILTER_NUMBER_MAX ? i : s;
}

/* The end of the string whose quote is at i; on a bad escape or a missing closing
 * quote, 0 with *bad at the offending byte. */
static size_t filter_lex_string(const char *p, size_t i, size_t n, size_t *bad)
{
    for (i++; i < n && p[i] != '"'; i++) {
        if (p[i] != '\\')
            continue;
        if (i + 1 < n && (p[i + 1] == '"' || p[i + 1] == '\\')) {
            i++;
            continue;
        }
        *bad = i;
        return 0;
    }
    if (i == n)
        return 0;
    return i + 1;
}

static void filter_next(struct filter_parser *ps)
{
    const char *p = ps->p;
    size_t i = ps->pos, n = ps->len;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    ps->start = i;
    ps->tok = FILTER_TOK_BAD;
    if (i == n) {
        ps->tok = FILTER_TOK_END;
    } else if (filter_is_alpha(p[i])) {
        while (i < n && filter_is_ident(p[i]))
            i++;
        ps->tok = FILTER_TOK_IDENT;
    } else if (filter_is_digit(p[i]) || p[i] == '-' || p[i] == '.') {
        size_t e = filter_lex_number(p, i, n);
        ps->tok = e > i ? FILTER_TOK_NUMBER : FILTER_TOK_BAD;
        i = e > i ? e : i + 1;
    } else if (p[i] == '"') {
        size_t bad = i, e = filter_lex_string(p, i, n, &bad);
        ps->tok = e > 0 ? FILTER_TOK_STRING : FILTER_TOK_BAD;
        ps->start = e > 0 ? i : bad;
        i = e > 0 ? e : n;
    } else if (p[i] == '(' || p[i] == ')') {
        ps->tok = p[i++] == '(' ? FILTER_TOK_LPAREN : FILTER_TOK_RPAREN;
    } else if (p[i] == '!' || p[i] == '=' || p[i] == '<' || p[i] == '>') {
        bool eq = i + 1 < n && p[i + 1] == '=';
        char c = p[i];
        ps->tok = FILTER_TOK_CMP;
        if (c == '!')
            ps->tok = eq ? FILTER_TOK_CMP : FILTER_TOK_BANG;
        ps->cmp = c == '!' ? FILTER_NE : c == '=' ? FILTER_EQ : c == '<' ? FILTER_LT : FILTER_GT;
        if (eq && (c == '<' || c == '>'))
            ps->cmp = c == '<' ? FILTER_LE : FILTER_GE;
        i += eq && c != '=' ? 2 : 1;
    } else {
        i++;
    }
    ps->end = i;
    ps->pos = i;
}

static int filter_unsupported(struct filter_parser *ps)
{
    if (ps->tok == FILTER_TOK_END) {
        xray_err_set(ps->err, "unsupported filter expression at offset %zu (end of input); %s",
                     ps->start, FILTER_SUPPORTED);
        return XRAY_EPARSE;
    }
    char shown[FILTER_TOKEN_SHOWN + 4];
    size_t n = 0;
    for (size_t i = ps->start; i < ps->end && n < FILTER_TOKEN_SHOWN; i++) {
        unsigned char c = (unsigned char)ps->p[i];
        shown[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (ps->end - ps->start > FILTER_TOKEN_SHOWN)
        memcpy(shown + n, "...", 3), n += 3;
    shown[n] = '\0';
    xray_err_set(ps->err, "unsupported filter expression at offset %zu (\"%s\"); %s", ps->start,
                 shown, FILTER_SUPPORTED);
    return XRAY_EPARSE;
}

static bool filter_kw(const struct filter_parser *ps, const char *kw)
{
    size_t n = strlen(kw);
    return ps->tok == FILTER_TOK_IDENT && ps->end - ps->start == n &&
           strncasecmp(ps->p + ps->start, kw, n) == 0;
}

static int32_t filter_node(struct filter_parser *ps, uint8_t op)
{
    struct filter *f = ps->f;
    if (f->n == f->cap) {
        size_t cap = f->cap != 0 ? f->cap * 2 : 16;
        struct filter_node *nodes = realloc(f->nodes, cap * sizeof(*nodes));
        if (nodes == NULL) {
            xray_err_set(ps->err, "out of memory");
            return -ENOMEM;
        }
        f->nodes = nodes;
        f->cap = cap;
    }
    struct filter_node *x = &f->nodes[f->n];
    memset(x, 0, sizeof(*x));
    x->op = op;
    x->child = x->next = -1;
    return (int32_t)f->n++;
}

/* Copies bytes [from, to) of the input into strings, resolving \" and \\. */
static void filter_copy(struct filter_parser *ps, size_t from, size_t to, uint32_t *off,
                        uint32_t *len)
{
    struct filter *f = ps->f;
    *off = (uint32_t)f->slen;
    for (size_t i = from; i < to; i++)
        f->strings[f->slen++] = ps->p[i] == '\\' ? ps->p[++i] : ps->p[i];
    *len = (uint32_t)(f->slen - *off);
    f->strings[f->slen++] = '\0';
}

/* Expects a token of kind tok; a string operand is stored in node x. */
static int filter_expect(struct filter_parser *ps, uint8_t tok, int32_t x)
{
    if (ps->tok != tok)
        return filter_unsupported(ps);
    struct filter_node *node = &ps->f->nodes[x];
    if (tok == FILTER_TOK_STRING)
        filter_copy(ps, ps->start + 1, ps->end - 1, &node->str, &node->str_len);
    if (tok == FILTER_TOK_NUMBER) {
        char tmp[FILTER_NUMBER_MAX + 1];
        memcpy(tmp, ps->p + ps->start, ps->end - ps->start);
        tmp[ps->end - ps->start] = '\0';
        node->num = strtod(tmp, NULL);
    }
    if (tok == FILTER_TOK_CMP)
        node->cmp = ps->cmp;
    filter_next(ps);
    return 0;
}

static int32_t filter_parse_form(struct filter_parser *ps, uint8_t op, uint8_t form)
{
    int32_t x = filter_node(ps, op);
    int rc = 0;
    if (x < 0)
        return x;
    filter_next(ps);
    switch (form) {
    case FILTER_FORM_CALL:
        if ((rc = filter_expect(ps, FILTER_TOK_LPAREN, x)) == 0 &&
            (rc = filter_expect(ps, FILTER_TOK_STRING, x)) == 0)
            rc = filter_expect(ps, FILTER_TOK_RPAREN, x);
        break;
    case FILTER_FORM_NUMBER:
        if ((rc = filter_expect(ps, FILTER_TOK_CMP, x)) == 0)
            rc = filter_expect(ps, FILTER_TOK_NUMBER, x);
        break;
    case FILTER_FORM_URL:
        if (filter_kw(ps, "contains")) {
            ps->f->nodes[x].op = FILTER_HTTP_URL_CONTAINS;
            filter_next(ps);
        } else if (ps->tok == FILTER_TOK_CMP && ps->cmp == FILTER_EQ) {
            filter_next(ps);
        } else {
            return filter_unsupported(ps);
        }
        rc = filter_expect(ps, FILTER_TOK_STRING, x);
        break;
    case FILTER_FORM_STRING:
        if (ps->tok != FILTER_TOK_CMP || ps->cmp != FILTER_EQ)
            return filter_unsupported(ps);
        filter_next(ps);
        rc = filter_expect(ps, FILTER_TOK_STRING, x);
        break;
    default:
        break;
    }
    return rc != 0 ? rc : x;
}

/* annotation.KEY OP value: strings and booleans with = and !=, numbers with any. */
static int32_t filter_parse_annotation(struct filter_parser *ps, size_t key_at)
{
    int32_t x = filter_node(ps, FILTER_ANNOTATION);
    if (x < 0)
        return x;
    struct filter_node *node = &ps->f->nodes[x];
    filter_copy(ps, key_at, ps->end, &node->key, &node->key_len);
    filter_next(ps);
    if (ps->tok != FILTER_TOK_CMP)
        return filter_unsupported(ps);
    node->cmp = ps->cmp;
    filter_next(ps);
    bool eq_ne = node->cmp == FILTER_EQ || node->cmp == FILTER_NE;
    if (ps->tok == FILTER_TOK_NUMBER) {
        node->kind = SCAN_KIND_NUMBER;
        return filter_expect(ps, FILTER_TOK_NUMBER, x) != 0 ? XRAY_EPARSE : x;
    }
    if (ps->tok == FILTER_TOK_STRING && eq_ne) {
        node->kind = SCAN_KIND_STRING;
        return filter_expect(ps, FILTER_TOK_STRING, x) != 0 ? XRAY_EPARSE : x;
    }
    if ((filter_kw(ps, "true") || filter_kw(ps, "false")) && eq_ne) {
        node->kind = SCAN_KIND_BOOL;
        node->boolean = filter_kw(ps, "true");
        filter_next(ps);
        return x;
    }
    return filter_unsupported(ps);
}

static int32_t filter_parse_predicate(struct filter_parser *ps)
{
    static const struct {
        const char *kw;
        uint8_t op, form;
    } words[] = {
        {"service", FILTER_SERVICE, FILTER_FORM_CALL},
        {"responsetime", FILTER_RESPONSETIME, FILTER_FORM_NUMBER},
        {"duration", FILTER_DURATION, FILTER_FORM_NUMBER},
        {"http.status", FILTER_HTTP_STATUS, FILTER_FORM_NUMBER},
        {"fault", FILTER_FAULT, FILTER_FORM_FLAG},
        {"error", FILTER_ERROR, FILTER_FORM_FLAG},
        {"throttle", FILTER_THROTTLE, FILTER_FORM_FLAG},
        {"ok", FILTER_OK, FILTER_FORM_FLAG},
        {"http.url", FILTER_HTTP_URL, FILTER_FORM_URL},
        {"http.method", FILTER_HTTP_METHOD, FILTER_FORM_STRING},
        {"user", FILTER_USER, FILTER_FORM_STRING},
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (filter_kw(ps, words[i].kw))
            return filter_parse_form(ps, words[i].op, words[i].form);
    static const char prefix[] = "annotation.";
    size_t plen = sizeof(prefix) - 1, key_at = ps->start + plen;
    if (ps->tok != FILTER_TOK_IDENT || ps->end <= key_at ||
        strncasecmp(ps->p + ps->start, prefix, plen) != 0 ||
        memchr(ps->p + key_at, '.', ps->end - key_at) != NULL)
        return filter_unsupported(ps);
    return filter_parse_annotation(ps, key_at);
}

static int32_t filter_parse_or(struct filter_parser *ps);

static int32_t filter_parse_unary(struct filter_parser *ps)
{
    int32_t x;
    if (ps->depth >= FILTER_MAX_DEPTH) {
        xray_err_set(ps->err, "filter expression nested deeper than %d at offset %zu",
                     FILTER_MAX_DEPTH, ps->start);
        return XRAY_EPARSE;
    }
    ps->depth++;
    if (ps->tok == FILTER_TOK_BANG || filter_kw(ps, "not")) {
        filter_next(ps);
        int32_t c = filter_parse_unary(ps);
        x = c < 0 ? c : filter_node(ps, FILTER_NOT);
        if (x >= 0)
            ps->f->nodes[x].child = c;
    } else if (ps->tok == FILTER_TOK_LPAREN) {
        filter_next(ps);
        x = filter_parse_or(ps);
        if (x >= 0 && filter_expect(ps, FILTER_TOK_RPAREN, x) != 0)
            x = XRAY_EPARSE;
    } else {
        x = filter_parse_predicate(ps);
    }
    ps->depth--;
    return x;
}

/* operand (kw operand)*: one node of kind op over the operands when there are two or
 * more. */
static int32_t filter_parse_chain(struct filter_parser *ps, const char *kw, uint8_t op)
{
    int32_t first =
        op == FILTER_OR ? filter_parse_chain(ps, "and", FILTER_AND) : filter_parse_unary(ps);
    if (first < 0 || !filter_kw(ps, kw))
        return first;
    int32_t x = filter_node(ps, op), last = first;
    if (x < 0)
        return x;
    ps->f->nodes[x].child = first;
    while (filter_kw(ps, kw)) {
        filter_next(ps);
        int32_t c =
            op == FILTER_OR ? filter_parse_chain(ps, "and", FILTER_AND) : filter_parse_unary(ps);
        if (c < 0)
            return c;
        ps->f->nodes[last].next = c;
        last = c;
    }
    return x;
}

static int32_t filter_parse_or(struct filter_parser *ps)
{
    return filter_parse_chain(ps, "or", FILTER_OR);
}

int filter_parse(const char *expr, size_t len, struct filter **out, char err[XRAY_ERR_LEN])
{
    *out = NULL;
    if (len > FILTER_MAX_BYTES) {
        xray_err_set(err, "filter expression longer than %d bytes", FILTER_MAX_BYTES);
        return XRAY_EPARSE;
    }
    struct filter *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->strings = malloc(len + 1)) == NULL) {
        filter_free(f);
        xray_err_set(err, "out of memory");
        return -ENOMEM;
    }
    struct filter_parser ps = {.p = expr, .len = len, .f = f, .err = err};
    filter_next(&ps);
    int32_t root = filter_parse_or(&ps);
    if (root >= 0 && ps.tok != FILTER_TOK_END)
        root = filter_unsupported(&ps);
    if (root < 0) {
        filter_free(f);
        return root;
    }
    f->root = root;
    *out = f;
    return 0;
}

void filter_free(struct filter *f)
{
    if (f == NULL)
        return;
    free(f->nodes);
    free(f->strings);
    free(f);
}

static bool filter_compare(uint8_t cmp, double a, double b)
{
    switch (cmp) {
    case FILTER_EQ:
        return a == b;
    case FILTER_NE:
        return a != b;
    case FILTER_LT:
        return a < b;
    case FILTER_LE:
        return a <= b;
    case FILTER_GT:
        return a > b;
    default:
        return a >= b;
    }
}

static bool filter_same(const char *a, size_t an, const char *b, size_t bn)
{
    return a != NULL && an == bn && memcmp(a, b, an) == 0;
}

/* True when some value of the key, of the operand's kind, compares true. */
static bool filter_annotation(const struct filter *f, const struct filter_node *x,
                              const struct summary *s)
{
    const char *key = f->strings + x->key, *str = f->strings + x->str;
    const struct summary_key *k = s->keys;
    while (k != NULL && !filter_same(k->s, k->len, key, x->key_len))
        k = k->next;
    for (const struct summary_val *v = k != NULL ? k->values : NULL; v != NULL; v = v->next) {
        if (v->kind != x->kind)
            continue;
        if (v->kind == SCAN_KIND_NUMBER && filter_compare(x->cmp, v->num, x->num))
            return true;
        bool eq = v->kind == SCAN_KIND_STRING ? filter_same(v->s, v->len, str, x->str_len)
                                              : v->boolean == x->boolean;
        if (v->kind != SCAN_KIND_NUMBER && eq == (x->cmp == FILTER_EQ))
            return true;
    }
    return false;
}

static bool filter_has_user(const struct summary *s, const char *name, size_t n)
{
    for (const struct summary_user *u = s->users; u != NULL; u = u->next)
        if (filter_same(u->s, u->len, name, n))
            return true;
    return false;
}

static bool filter_eval(const struct filter *f, int32_t i, const struct summary *s)
{
    const struct filter_node *x = &f->nodes[i];
    const char *str = f->strings + x->str;
    const char *url = s->http[SUMMARY_HTTP_URL];
    double rt;
    switch (x->op) {
    case FILTER_AND:
    case FILTER_OR:
        for (int32_t c = x->child; c >= 0; c = f->nodes[c].next)
            if (filter_eval(f, c, s) == (x->op == FILTER_OR))
                return x->op == FILTER_OR;
        return x->op == FILTER_AND;
    case FILTER_NOT:
        return !filter_eval(f, x->child, s);
    case FILTER_SERVICE:
        return summary_has_service(s, str, x->str_len);
    case FILTER_RESPONSETIME:
        return summary_response_time(s, &rt) && filter_compare(x->cmp, rt, x->num);
    case FILTER_DURATION:
        return filter_compare(x->cmp, summary_duration(s), x->num);
    case FILTER_HTTP_STATUS:
        return s->http_status != SCAN_STATUS_NONE && filter_compare(x->cmp, s->http_status, x->num);
    case FILTER_FAULT:
        return s->faults > 0;
    case FILTER_ERROR:
        return s->errors > 0 || s->throttles > 0; /* a throttle is a 4xx error too */
    case FILTER_THROTTLE:
        return s->throttles > 0;
    case FILTER_OK:
        return s->faults == 0 && s->errors == 0 && s->throttles == 0;
    case FILTER_HTTP_URL:
        return filter_same(url, s->http_len[SUMMARY_HTTP_URL], str, x->str_len);
    case FILTER_HTTP_URL_CONTAINS:
        return url != NULL && memmem(url, s->http_len[SUMMARY_HTTP_URL], str, x->str_len) != NULL;
    case FILTER_HTTP_METHOD:
        return filter_same(s->http[SUMMARY_HTTP_METHOD], s->http_len[SUMMARY_HTTP_METHOD], str,
                           x->str_len);
    case FILTER_USER:
        return filter_has_user(s, str, x->str_len);
    default:
        return filter_annotation(f, x, s);
    }
}

bool filter_match(const struct filter *f, const struct summary *s)
{
    return filter_eval(f, f->root, s);
}

const char *filter_service(const struct filter *f, size_t *len)
{
    const struct filter_node *x = &f->nodes[f->root];
    int32_t i = x->op == FILTER_AND ? x->child : f->root;
    for (; i >= 0; i = x->op == FILTER_AND ? f->nodes[i].next : -1) {
        if (f->nodes[i].op == FILTER_SERVICE) {
            *len = f->nodes[i].str_len;
            return f->strings + f->nodes[i].str;
        }
    }
    return NULL;
}
