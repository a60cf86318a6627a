/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: being written. */
typedef int credentials_env_placeholder_;
