/* SPDX-License-Identifier: Apache-2.0 */
/* The sampling rules xrayd decides and serves with: the --sampling-rules file (or the
 * built-in Default rule), reloaded on request (SIGHUP) and when the file changes. A new
 * set reaches the authority through a loop callback and each worker through a mailbox:
 * one atomic pointer the worker takes between documents. A file that fails to load
 * keeps the rules in force and the log says why. Loop thread only, except the
 * mailbox's take. */
#ifndef XRAYD_SAMPLER_RULES_HOLDER_H
#define XRAYD_SAMPLER_RULES_HOLDER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include <xray/sampling.h>

#include "error.h"

#define RULES_HOLDER_MAX_SUBSCRIBERS 8
/* Editors write a file in several steps: reload once the events have been quiet this
 * long, so a half-written file is rarely read (if it is, the old rules stay and the
 * last write reloads again). */
#define RULES_HOLDER_DEBOUNCE_MS 200
/* stat() polling beside inotify, for file systems that report no events (NFS, some
 * container bind mounts). */
#define RULES_HOLDER_POLL_MS 2000

/* A single-consumer slot for the newest rule set. The holder posts (loop thread); one
 * consumer thread takes. A set posted twice before a take replaces the first. */
struct rules_mailbox {
    _Atomic(struct xray_sampling_rules *) _slot; /* owned reference, or NULL */
};

void rules_mailbox_init(struct rules_mailbox *mb);
/* Puts rules (a new reference is taken) in the slot, freeing a set never taken. Any
 * thread. */
void rules_mailbox_post(struct rules_mailbox *mb, struct xray_sampling_rules *rules);
/* The set posted since the last take (owned: release with xray_sampling_rules_free()),
 * or NULL. A relaxed load when nothing is there, so it may be called per document. The
 * consumer thread only. */
struct xray_sampling_rules *rules_mailbox_take(struct rules_mailbox *mb);
/* Gives back a set just taken (ownership passes back) unless a newer one was posted
 * meanwhile: that one wins and rules is freed. The consumer thread only. */
void rules_mailbox_return(struct rules_mailbox *mb, struct xray_sampling_rules *rules);
/* Frees what is left in the slot; when no thread posts or takes any more. */
void rules_mailbox_clear(struct rules_mailbox *mb);

struct rules_holder_options {
    uv_loop_t *loop;
    const char *path;   /* NULL or "": the built-in Default rule, nothing to reload */
    const char *region; /* in the RuleARN of rules that have none; NULL: "local" */
    /* Called on the loop each time the set in force changes (not for the first load);
     * rules are borrowed: take a reference to keep them. May be NULL. */
    void (*on_change)(struct xray_sampling_rules *rules, void *data);
    void *data;
};

struct rules_holder_stats {
    uint64_t reloads;  /* attempts, SIGHUP and file changes */
    uint64_t failures; /* attempts that kept the old rules: unreadable or invalid file */
    uint64_t changes;  /* attempts that put a different set in force */
};

struct rules_holder;

/* Loads the file (or the built-in set) and logs each rule it holds that SDKs would drop
 * (never served, never matched). 0 with *out owned (rules_holder_close()), or
 * XRAY_ECONFIG (the file cannot be read or is not valid; err says which and why),
 * -ENOMEM. Nothing is watched until rules_holder_watch(). */
int rules_holder_create(struct rules_holder **out, const struct rules_holder_options *o,
                        char err[XRAY_ERR_LEN]);
/* Watches the file: inotify on its folder (a file replaced by rename is seen) and
 * stat() polling. No-op without a file. 0, or a libuv error (logged; SIGHUP still
 * reloads). */
int rules_holder_watch(struct rules_holder *h);
/* Reads the file again now; why ("SIGHUP", "file changed") goes in the log. Returns 1
 * when a different set is now in force (subscribers and on_change were told), 0 when
 * the file holds the same rules, or a negative code when it could not be loaded: the
 * rules in force stay, and the reason is logged. Without a file: 0. */
int rules_holder_reload(struct rules_holder *h, const char *why);
/* The set in force (borrowed: valid until the next change on the loop). */
struct xray_sampling_rules *rules_holder_rules(const struct rules_holder *h);
/* The file's path, "" for the built-in set. */
const char *rules_holder_path(const struct rules_holder *h);
/* Posts the set in force to mb now and every new set later. mb must outlive the holder
 * or be unsubscribed by closing the holder. 0 or -ENOSPC
 * (RULES_HOLDER_MAX_SUBSCRIBERS). */
int rules_holder_subscribe(struct rules_holder *h, struct rules_mailbox *mb);
void rules_holder_get_stats(const struct rules_holder *h, struct rules_holder_stats *out);
/* Stops watching, frees the holder in its last close callback, then calls cb (may be
 * NULL). */
void rules_holder_close(struct rules_holder *h, void (*cb)(void *data), void *data);

#endif
