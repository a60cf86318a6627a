/* SPDX-License-Identifier: Apache-2.0 */
/* The labels of the rejection reasons, in the order of STATS_REJECT_MAP. */
#include "stats.h"

const char *const stats_reject_labels[STATS_REJECT__COUNT] = {
#define X(name, label) label,
    STATS_REJECT_MAP(X)
#undef X
};
