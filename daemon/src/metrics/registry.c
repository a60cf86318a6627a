/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics registry: families declared by the code, their series found by label
 * values, and immutable snapshots for the exporters. It formats nothing (prometheus.c
 * and the other sinks do). Invariant: a family holds at most series_budget live series
 * plus its overflow series, and at most series_budget expired ones awaiting a snapshot.
 *
 * How it works: each family has a chained hash table keyed by the label values (seeded
 * FNV-1a) and two lists: its live series in creation order and its expired ones in
 * expiry order. A series is one allocation (header, bucket counts, label values), made
 * when the label set is first seen; updates only touch it. An expired series stays in
 * the table until the next snapshot has reported it, so a label set used again before
 * that simply comes back, values and all: no exporter ever saw it gone. */
#include "metrics/registry.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define REGISTRY_TABLE_MIN 16

struct metric_series {
    struct metric_series *hnext;       /* the family's hash chain */
    struct metric_series *prev, *next; /* the live list or the stale list */
    const struct metric_family_def *def;
    uint64_t hash;
    uint64_t updated_ms;
    double value; /* counter, gauge; histograms: the sum */
    uint64_t count;
    uint16_t lens[METRIC_LABELS_MAX];
    uint16_t values_len; /* label values, each NUL-terminated */
    bool stale, overflow;
    uint64_t buckets[]; /* histograms: per finite bound, not cumulative; values follow */
};

struct registry_list {
    struct metric_series *head, *tail;
    size_t n;
};

struct registry_family {
    const struct metric_family_def *def;
    struct metric_series **table;
    size_t mask;
    size_t entries;   /* in the table: live and stale, not the overflow series */
    size_t table_max; /* slots the table may grow to */
    struct registry_list live, stale;
    struct metric_series *overflow; /* live or stale, at most one */
    size_t value_bytes;             /* label values held, live and stale */
    size_t names_bytes;             /* the family's label names, NUL-terminated */
};

struct registry {
    uint64_t seed;
    uint32_t budget;
    uint64_t idle_ms;
    struct registry_family **families;
    size_t nfamilies, cap;
    struct registry_stats stats;
    uint64_t generation; /* bumped when a series goes stale or is freed */
};

static const char registry_overflow_value[] = "true";

/* ---- validation ---- */

static bool registry_name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (c == ':')
        return colon;
    return !first && c >= '0' && c <= '9';
}

static bool registry_valid_name(const char *s, bool colon)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > METRIC_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!registry_name_char(s[i], i == 0, colon))
            return false;
    return true;
}

static bool registry_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* promtool's lint rejects a _total counter without it, _total on anything else, and
 * the suffixes histograms generate on a family that is not one. */
static bool registry_valid_suffix(const char *name, uint8_t type)
{
    if (type == METRIC_COUNTER)
        return registry_ends_with(name, "_total") && strlen(name) > strlen("_total");
    if (registry_ends_with(name, "_total"))
        return false;
    return type == METRIC_HISTOGRAM ||
           !(registry_ends_with(name, "_bucket") || registry_ends_with(name, "_count") ||
             registry_ends_with(name, "_sum"));
}

static bool registry_valid_labels(const struct metric_family_def *d)
{
    if (d->nlabels > METRIC_LABELS_MAX || (d->nlabels > 0 && d->labels == NULL))
        return false;
    for (size_t i = 0; i < d->nlabels; i++) {
        const char *l = d->labels[i];
        if (!registry_valid_name(l, false) || strncmp(l, "__", 2) == 0 || strcmp(l, "le") == 0 ||
            strcmp(l, METRIC_OVERFLOW_LABEL) == 0)
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(l, d->labels[j]) == 0)
                return false;
    }
    return true;
}

static bool registry_valid_buckets(const struct metric_family_def *d)
{
    if (d->type != METRIC_HISTOGRAM)
        return d->nbuckets == 0;
    if (d->nbuckets > METRIC_BUCKETS_MAX || (d->nbuckets > 0 && d->buckets == NULL))
        return false;
    for (size_t i = 0; i < d->nbuckets; i++)
        if (!isfinite(d->buckets[i]) || (i > 0 && !(d->buckets[i] > d->buckets[i - 1])))
            return false;
    return true;
}

static bool registry_valid(const struct metric_family_def *d)
{
    return d != NULL && d->type <= METRIC_HISTOGRAM && registry_valid_name(d->name, true) &&
           registry_valid_suffix(d->name, d->type) && d->help != NULL && d->help[0] != '\0' &&
           registry_valid_labels(d) && registry_valid_buckets(d);
}

/* ---- registry and families ---- */

struct registry *registry_create(const struct registry_options *o)
{
    struct registry *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    if (getrandom(&r->seed, sizeof(r->seed), GRND_NONBLOCK) != sizeof(r->seed))
        r->seed = (uint64_t)(uintptr_t)r ^ 0x9e3779b97f4a7c15ull;
    r->budget = o != NULL && o->series_budget ? o->series_budget : METRIC_DEFAULT_SERIES;
    r->idle_ms = o != NULL && o->idle_ms ? o->idle_ms : METRIC_DEFAULT_IDLE_MS;
    r->stats.bytes_used = sizeof(*r);
    return r;
}

static size_t registry_series_size(const struct metric_family_def *d, size_t values_len)
{
    size_t nb = d->type == METRIC_HISTOGRAM ? d->nbuckets : 0;
    return sizeof(struct metric_series) + nb * sizeof(uint64_t) + values_len;
}

static char *registry_values(struct metric_series *s)
{
    size_t nb = s->def->type == METRIC_HISTOGRAM ? s->def->nbuckets : 0;
    return (char *)(s->buckets + nb);
}

static void registry_free_series(struct registry *r, struct registry_family *f,
                                 struct metric_series *s)
{
    f->value_bytes -= s->values_len;
    r->stats.bytes_used -= registry_series_size(s->def, s->values_len);
    free(s);
}

static void registry_free_list(struct registry_list *l)
{
    for (struct metric_series *s = l->head, *next; s != NULL; s = next) {
        next = s->next;
        free(s);
    }
}

void registry_destroy(struct registry *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nfamilies; i++) {
        struct registry_family *f = r->families[i];
        registry_free_list(&f->live);
        registry_free_list(&f->stale);
        free(f->table);
        free(f);
    }
    free(r->families);
    free(r);
}

int registry_family(struct registry *r, const struct metric_family_def *def)
{
    if (!registry_valid(def))
        return -EINVAL;
    for (size_t i = 0; i < r->nfamilies; i++)
        if (strcmp(r->families[i]->def->name, def->name) == 0)
            return -EEXIST;
    if (r->nfamilies > INT32_MAX)
        return -ENOMEM;
    if (r->nfamilies == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        struct registry_family **p = realloc(r->families, cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        r->stats.bytes_used += (cap - r->cap) * sizeof(*p);
        r->families = p;
        r->cap = cap;
    }
    struct registry_family *f = calloc(1, sizeof(*f));
    struct metric_series **table = calloc(REGISTRY_TABLE_MIN, sizeof(*table));
    if (f == NULL || table == NULL) {
        free(f);
        free(table);
        return -ENOMEM;
    }
    f->def = def;
    f->table = table;
    f->mask = REGISTRY_TABLE_MIN - 1;
    /* Live and stale together stay under twice the budget: a load factor <= 1. */
    f->table_max = REGISTRY_TABLE_MIN;
    while (f->table_max < 2 * (size_t)r->budget && f->table_max < ((size_t)1 << 30))
        f->table_max *= 2;
    for (size_t i = 0; i < def->nlabels; i++)
        f->names_bytes += strlen(def->labels[i]) + 1;
    r->stats.bytes_used += sizeof(*f) + REGISTRY_TABLE_MIN * sizeof(*table);
    r->families[r->nfamilies] = f;
    r->stats.families = ++r->nfamilies;
    return (int)(r->nfamilies - 1);
}

/* ---- lists and the table ---- */

static void registry_list_push(struct registry_list *l, struct metric_series *s)
{
    s->next = NULL;
    s->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = s;
    else
        l->head = s;
    l->tail = s;
    l->n++;
}

static void registry_list_remove(struct registry_list *l, struct metric_series *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    else
        l->tail = s->prev;
    s->prev = s->next = NULL;
    l->n--;
}

/* FNV-1a over the seed, each value's length and bytes, then a 64-bit mixer so the low
 * bits the table uses spread. */
/* Word at a time: label values are short strings hashed on every update, so a byte
 * loop showed in profiles. Seeded per registry against crafted collisions. */
static uint64_t registry_hash(uint64_t seed, size_t n, const char *const *values,
                              const size_t *lens)
{
    const uint64_t k = 0x9e3779b97f4a7c15ull;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        const char *v = values[i];
        size_t len = lens[i];
        h = (h ^ len) * k;
        for (; len >= 8; v += 8, len -= 8) {
            uint64_t w;
            memcpy(&w, v, 8);
            h = (h ^ w) * k;
            h ^= h >> 29;
        }
        uint64_t w = 0;
        memcpy(&w, v, len);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static bool registry_same(struct metric_series *s, size_t n, const char *const *values,
                          const size_t *lens)
{
    const char *v = registry_values(s);
    for (size_t i = 0; i < n; i++) {
        if (s->lens[i] != lens[i] || memcmp(v, values[i], lens[i]) != 0)
            return false;
        v += lens[i] + 1;
    }
    return true;
}

static void registry_table_grow(struct registry *r, struct registry_family *f)
{
    size_t slots = 2 * (f->mask + 1);
    struct metric_series **t = calloc(slots, sizeof(*t));
    if (t == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i <= f->mask; i++)
        for (struct metric_series *s = f->table[i], *next; s != NULL; s = next) {
            next = s->hnext;
            s->hnext = t[s->hash & (slots - 1)];
            t[s->hash & (slots - 1)] = s;
        }
    r->stats.bytes_used += (slots - (f->mask + 1)) * sizeof(*t);
    free(f->table);
    f->table = t;
    f->mask = slots - 1;
}

static void registry_table_remove(struct registry_family *f, struct metric_series *s)
{
    struct metric_series **pp = &f->table[s->hash & f->mask];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    f->entries--;
}

/* ---- series ---- */

/* The length value is kept to: up to a NUL, at most METRIC_LABEL_VALUE_MAX bytes,
 * never splitting a UTF-8 sequence. */
static size_t registry_cut(const char *v, size_t n)
{
    const char *nul = n ? memchr(v, '\0', n) : NULL;
    if (nul != NULL)
        n = (size_t)(nul - v);
    if (n > METRIC_LABEL_VALUE_MAX) {
        n = METRIC_LABEL_VALUE_MAX;
        while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
            n--;
    }
    return n;
}

static struct metric_series *registry_new_series(struct registry *r, struct registry_family *f,
                                                 const char *const *values, const size_t *lens)
{
    const struct metric_family_def *d = f->def;
    size_t values_len = 0;
    for (size_t i = 0; i < d->nlabels; i++)
        values_len += lens[i] + 1;
    size_t size = registry_series_size(d, values_len);
    struct metric_series *s = calloc(1, size);
    if (s == NULL)
        return NULL;
    s->def = d;
    s->values_len = (uint16_t)values_len;
    char *v = registry_values(s);
    for (size_t i = 0; i < d->nlabels; i++) {
        s->lens[i] = (uint16_t)lens[i];
        memcpy(v, values[i], lens[i]);
        v += lens[i] + 1;
    }
    f->value_bytes += values_len;
    r->stats.bytes_used += size;
    return s;
}

/* Takes a stale series back into the live list; its creation order is now. */
static void registry_revive(struct registry_family *f, struct metric_series *s)
{
    registry_list_remove(&f->stale, s);
    registry_list_push(&f->live, s);
    s->stale = false;
}

static struct metric_series *registry_overflow(struct registry *r, struct registry_family *f)
{
    struct metric_series *s = f->overflow;
    r->stats.overflowed++;
    if (s != NULL && s->stale) {
        registry_revive(f, s);
        r->stats.series++;
    } else if (s == NULL) {
        const char *empty[METRIC_LABELS_MAX];
        size_t zero[METRIC_LABELS_MAX] = {0};
        for (size_t i = 0; i < METRIC_LABELS_MAX; i++)
            empty[i] = "";
        if ((s = registry_new_series(r, f, empty, zero)) == NULL)
            return NULL;
        s->overflow = true;
        f->overflow = s;
        registry_list_push(&f->live, s);
        r->stats.series++;
    }
    return s;
}

struct metric_series *registry_series(struct registry *r, int family, const char *const *values,
                                      const size_t *lens, uint64_t now_ms)
{
    assert(family >= 0 && (size_t)family < r->nfamilies);
    struct registry_family *f = r->families[family];
    size_t n = f->def->nlabels, cut[METRIC_LABELS_MAX];
    for (size_t i = 0; i < n; i++)
        cut[i] = registry_cut(values[i], lens[i]);
    uint64_t h = registry_hash(r->seed, n, values, cut);
    struct metric_series *s = f->table[h & f->mask];
    while (s != NULL && (s->hash != h || !registry_same(s, n, values, cut)))
        s = s->hnext;
    if (s == NULL || s->stale) {
        size_t live = f->live.n - (f->overflow != NULL && !f->overflow->stale);
        if (live >= r->budget)
            s = registry_overflow(r, f);
        else if (s != NULL) {
            registry_revive(f, s);
            r->stats.series++;
        } else if ((s = registry_new_series(r, f, values, cut)) != NULL) {
            s->hash = h;
            if (f->entries >= f->mask + 1 && f->mask + 1 < f->table_max)
                registry_table_grow(r, f);
            s->hnext = f->table[h & f->mask];
            f->table[h & f->mask] = s;
            f->entries++;
            registry_list_push(&f->live, s);
            r->stats.series++;
        }
    }
    if (s != NULL)
        s->updated_ms = now_ms;
    return s;
}

void registry_touch(struct metric_series *s, uint64_t now_ms)
{
    s->updated_ms = now_ms;
}

void metric_counter_add(struct metric_series *s, double v)
{
    assert(s->def->type == METRIC_COUNTER);
    if (v >= 0) /* a counter never goes down; NaN is refused too */
        s->value += v;
}

void metric_gauge_set(struct metric_series *s, double v)
{
    assert(s->def->type == METRIC_GAUGE);
    s->value = v;
}

void metric_histogram_observe(struct metric_series *s, double v)
{
    assert(s->def->type == METRIC_HISTOGRAM);
    const double *b = s->def->buckets;
    size_t lo = 0, hi = s->def->nbuckets; /* the first bound >= v; hi means +Inf only */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v <= b[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo < s->def->nbuckets) /* NaN lands only in +Inf, as in Prometheus clients */
        s->buckets[lo]++;
    s->count++;
    s->value += v;
}

void metric_histogram_add(struct metric_series *s, const uint64_t *deltas, double sum)
{
    assert(s->def->type == METRIC_HISTOGRAM);
    for (size_t i = 0; i <= s->def->nbuckets; i++) {
        if (i < s->def->nbuckets)
            s->buckets[i] += deltas[i];
        s->count += deltas[i];
    }
    s->value += sum;
}

/* ---- expiry ---- */

static void registry_make_stale(struct registry *r, struct registry_family *f,
                                struct metric_series *s)
{
    registry_list_remove(&f->live, s);
    s->stale = true;
    registry_list_push(&f->stale, s);
    r->generation++;
    r->stats.series--;
    r->stats.expired++;
    /* Bounded: past the budget, the oldest expired series is forgotten unreported. */
    if (f->stale.n > r->budget) {
        struct metric_series *old = f->stale.head;
        registry_list_remove(&f->stale, old);
        if (old->overflow)
            f->overflow = NULL;
        else
            registry_table_remove(f, old);
        registry_free_series(r, f, old);
    }
}

void registry_expire(struct registry *r, uint64_t now_ms)
{
    for (size_t i = 0; i < r->nfamilies; i++) {
        struct registry_family *f = r->families[i];
        for (struct metric_series *s = f->live.head, *next; s != NULL; s = next) {
            next = s->next;
            if (now_ms >= s->updated_ms && now_ms - s->updated_ms >= r->idle_ms)
                registry_make_stale(r, f, s);
        }
    }
}

uint64_t registry_generation(const struct registry *r)
{
    return r->generation;
}

void registry_get_stats(const struct registry *r, struct registry_stats *out)
{
    *out = r->stats;
}

/* ---- snapshots ---- */

/* How it works: a first pass sizes the block from per-family totals (no series walk);
 * the block holds, in this order so every part is aligned, the header, the family
 * array, all samples, all labels, all bucket counts, then the strings. */
struct registry_sizes {
    size_t samples, labels, buckets, chars;
};

static size_t registry_align(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static void registry_size(const struct registry *r, struct registry_sizes *z)
{
    memset(z, 0, sizeof(*z));
    z->chars = sizeof(METRIC_OVERFLOW_LABEL) + sizeof(registry_overflow_value);
    for (size_t i = 0; i < r->nfamilies; i++) {
        const struct registry_family *f = r->families[i];
        size_t n = f->live.n + f->stale.n;
        z->samples += n;
        z->labels += n * f->def->nlabels + (f->overflow != NULL);
        if (f->def->type == METRIC_HISTOGRAM)
            z->buckets += f->live.n * f->def->nbuckets;
        z->chars += f->names_bytes + f->value_bytes;
    }
}

struct registry_fill {
    struct metric_sample *sample;
    struct metric_label *label;
    uint64_t *bucket;
    char *chars;
    const char *overflow_name, *overflow_value;
};

static char *registry_copy_str(struct registry_fill *w, const char *s, size_t n)
{
    char *p = w->chars;
    memcpy(p, s, n);
    p[n] = '\0';
    w->chars += n + 1;
    return p;
}

static void registry_fill_sample(struct registry_fill *w, const char *const *names,
                                 const struct metric_series *s)
{
    const struct metric_family_def *d = s->def;
    struct metric_sample *out = w->sample++;
    out->labels = w->label;
    out->nlabels = (uint8_t)(d->nlabels + s->overflow);
    out->updated_ms = s->updated_ms;
    /* Label values are copied in one go, then pointed into. */
    char *v = w->chars;
    memcpy(v, registry_values((struct metric_series *)s), s->values_len);
    w->chars += s->values_len;
    for (size_t i = 0; i < d->nlabels; i++) {
        w->label[i] = (struct metric_label){names[i], v};
        v += s->lens[i] + 1;
    }
    w->label += d->nlabels;
    if (s->overflow)
        *w->label++ = (struct metric_label){w->overflow_name, w->overflow_value};
    if (s->stale)
        return;
    out->value = s->value;
    out->count = s->count;
    if (d->type != METRIC_HISTOGRAM)
        return;
    uint64_t sum = 0;
    out->buckets = w->bucket;
    for (size_t i = 0; i < d->nbuckets; i++)
        *w->bucket++ = sum += s->buckets[i];
}

/* Hands the family's expired series over to the snapshot being filled: forgotten now. */
static void registry_release_stale(struct registry *r, struct registry_family *f)
{
    if (f->stale.n > 0)
        r->generation++;
    for (struct metric_series *s = f->stale.head, *next; s != NULL; s = next) {
        next = s->next;
        if (s->overflow)
            f->overflow = NULL;
        else
            registry_table_remove(f, s);
        registry_free_series(r, f, s);
    }
    f->stale = (struct registry_list){NULL, NULL, 0};
}

struct registry_snapshot *registry_snapshot(struct registry *r, uint64_t now_ms, int64_t epoch_ms,
                                            bool take_stale)
{
    struct registry_sizes z;
    registry_size(r, &z);
    size_t off_fam = registry_align(sizeof(struct registry_snapshot));
    size_t off_samples = off_fam + r->nfamilies * sizeof(struct metric_family_snapshot);
    size_t off_labels = off_samples + z.samples * sizeof(struct metric_sample);
    size_t off_buckets = off_labels + z.labels * sizeof(struct metric_label);
    size_t off_chars = off_buckets + z.buckets * sizeof(uint64_t);
    size_t bytes = off_chars + z.chars;
    char *block = calloc(1, bytes);
    if (block == NULL)
        return NULL;
    struct registry_snapshot *snap = (struct registry_snapshot *)block;
    struct metric_family_snapshot *fams = (struct metric_family_snapshot *)(block + off_fam);
    struct registry_fill w = {
        .sample = (struct metric_sample *)(block + off_samples),
        .label = (struct metric_label *)(block + off_labels),
        .bucket = (uint64_t *)(block + off_buckets),
        .chars = block + off_chars,
    };
    w.overflow_name = registry_copy_str(&w, METRIC_OVERFLOW_LABEL, strlen(METRIC_OVERFLOW_LABEL));
    w.overflow_value = registry_copy_str(&w, registry_overflow_value, strlen("true"));
    for (size_t i = 0; i < r->nfamilies; i++) {
        struct registry_family *f = r->families[i];
        const char *names[METRIC_LABELS_MAX];
        for (size_t k = 0; k < f->def->nlabels; k++)
            names[k] = registry_copy_str(&w, f->def->labels[k], strlen(f->def->labels[k]));
        fams[i].def = f->def;
        fams[i].nseries = f->live.n;
        fams[i].series = w.sample;
        for (const struct metric_series *s = f->live.head; s != NULL; s = s->next)
            registry_fill_sample(&w, names, s);
        fams[i].nstale = f->stale.n;
        fams[i].stale = f->stale.n ? w.sample : NULL;
        for (const struct metric_series *s = f->stale.head; s != NULL; s = s->next)
            registry_fill_sample(&w, names, s);
        if (take_stale)
            registry_release_stale(r, f);
    }
    assert(w.chars == block + bytes);
    snap->taken_ms = now_ms;
    snap->taken_epoch_ms = epoch_ms;
    snap->nfamilies = r->nfamilies;
    snap->families = fams;
    snap->bytes = bytes;
    return snap;
}

void registry_snapshot_free(struct registry_snapshot *s)
{
    free(s);
}
