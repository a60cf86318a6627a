/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: being written. */
typedef int credentials_profile_placeholder_;
