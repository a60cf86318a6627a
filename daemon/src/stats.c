/* SPDX-License-Identifier: Apache-2.0 */
/* The labels of the rejection reasons and decision outcomes, in the order of their maps. */
#include "stats.h"

const char *const stats_reject_labels[STATS_REJECT__COUNT] = {
#define X(name, label) label,
    STATS_REJECT_MAP(X)
#undef X
};

const char *const stats_decision_labels[STATS_DECISION__COUNT] = {
#define X(name, label) label,
    STATS_DECISION_MAP(X)
#undef X
};
