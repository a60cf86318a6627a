/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: being written. */
typedef int traces_placeholder_;
