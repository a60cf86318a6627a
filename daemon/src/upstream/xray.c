/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: being written. */
typedef int xray_placeholder_;
