/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: being written. */
typedef int healthz_placeholder_;
