/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: being written. */
typedef int main_placeholder_;
int main(void) { return 0; }
