/* SPDX-License-Identifier: Apache-2.0 */
/* The five-line example of docs/sdk.md, compiled against an installed libxray. */
#include <xray/xray.h>
int main(void)
{
    struct xray_recorder *rec = xray_recorder_create(NULL, NULL);
    struct xray_segment *seg = xray_segment_begin(rec, NULL);
    struct xray_segment *db = xray_subsegment_begin(seg, "orders-db");
    xray_segment_end(db);
    xray_segment_end(seg);
    xray_recorder_destroy(rec);
    return 0;
}
