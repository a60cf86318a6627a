# SPDX-License-Identifier: Apache-2.0
"""A small service instrumented with the Python X-Ray SDK (aws-xray-sdk 2.x).

Sends to AWS_XRAY_DAEMON_ADDRESS: --traces segments with subsegments, annotations,
metadata, an http block and a captured exception; one segment with more
subsegments than the SDK's streaming threshold, so it streams subsegments; and with
--in-progress, one segment emitted first in progress and then complete.
"""

import argparse
import sys

from aws_xray_sdk.core import xray_recorder


class PaymentDeclined(Exception):
    pass


def one_trace(i):
    seg = xray_recorder.begin_segment("py-checkout")
    seg.put_http_meta("method", "POST")
    seg.put_http_meta("url", "http://shop.example/checkout/%d" % i)
    seg.put_http_meta("user_agent", "integration-test")
    seg.put_annotation("customer", "c-%03d" % i)
    seg.put_annotation("items", i % 7)
    seg.put_annotation("vip", i % 2 == 0)
    cart = {"lines": [{"sku": "A-%d" % i, "qty": 2}], "note": "caf\u00e9 \u2713"}
    seg.put_metadata("cart", cart, "shop")
    with xray_recorder.in_subsegment("inventory") as sub:
        sub.put_annotation("warehouse", "w1")
        with xray_recorder.in_subsegment("db-query") as db:
            db.set_sql({"url": "postgres://db.example/shop", "database_type": "PostgreSQL"})
    sub = xray_recorder.begin_subsegment("payments", "remote")
    sub.put_http_meta("method", "POST")
    sub.put_http_meta("url", "http://payments.example/charge")
    try:
        raise PaymentDeclined("card declined for order %d" % i)
    except PaymentDeclined as e:
        sub.add_exception(e, [], remote=True)
        sub.put_http_meta("status", 502)
    xray_recorder.end_subsegment()
    seg.put_http_meta("status", 500 if i % 5 == 0 else 200)
    xray_recorder.end_segment()


def streaming_trace(n):
    xray_recorder.begin_segment("py-batch-job")
    for k in range(n):
        with xray_recorder.in_subsegment("step-%d" % k) as sub:
            sub.put_metadata("k", k)
    xray_recorder.end_segment()


def in_progress_trace():
    seg = xray_recorder.begin_segment("py-long-request")
    seg.put_annotation("phase", "started")
    xray_recorder.emitter.send_entity(seg)
    with xray_recorder.in_subsegment("work"):
        pass
    xray_recorder.end_segment()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=55)
    ap.add_argument("--stream", type=int, default=40, help="subsegments of the streaming segment")
    ap.add_argument("--in-progress", action="store_true")
    args = ap.parse_args()
    xray_recorder.configure(sampling=False, context_missing="LOG_ERROR", service="py-checkout",
                            streaming_threshold=30)
    for i in range(args.traces):
        one_trace(i)
    if args.stream:
        streaming_trace(args.stream)
    if args.in_progress:
        in_progress_trace()
    print("py app done", file=sys.stderr)


if __name__ == "__main__":
    main()
