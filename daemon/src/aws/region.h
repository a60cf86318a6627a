/* SPDX-License-Identifier: Apache-2.0 */
/* Which AWS region the daemon talks to (daemon-compat.md, "Region"): the -n flag, the
 * config file's Region, AWS_REGION, then (not in local mode) the ECS metadata file and
 * instance metadata, then the shared config profile's region. Called once at start-up
 * from the main thread, before the loop runs: the instance metadata lookup blocks for
 * at most IMDS_TIMEOUT_MS per request (imds.h). */
#ifndef XRAYD_REGION_H
#define XRAYD_REGION_H

#include <stdbool.h>

#include "error.h"

#define REGION_MAX 64 /* buffer size; region names are short words like us-east-1 */

/* Fills out with the region and *source with where it came from: "flag", "config",
 * "AWS_REGION", "ecs-metadata", "imds" or "profile" (a constant). flag_region and
 * config_region may be NULL or "". local_mode (-o) skips the metadata sources.
 * 0; XRAY_ENOREGION when no source has one (err names each source and why it had
 * none); XRAY_ECONFIG when a source holds something that is not a region name (err
 * names the source). A broken ECS metadata file or shared config file is noted in err
 * and skipped, as the reference daemon does. */
int region_resolve(const char *flag_region, const char *config_region, bool local_mode,
                   char out[REGION_MAX], const char **source, char err[XRAY_ERR_LEN]);

/* True when s is a plausible region name: 1..REGION_MAX-1 of [a-z0-9-]. */
bool region_valid(const char *s);

#endif
