/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: being written. */
typedef int region_placeholder_;
