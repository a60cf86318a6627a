/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: being written. */
typedef int telemetry_placeholder_;
