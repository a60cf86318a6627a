/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: being written. */
typedef int sigv4_placeholder_;
