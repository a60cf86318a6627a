/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: being written. */
typedef int client_placeholder_;
