# SPDX-License-Identifier: Apache-2.0
"""A service instrumented with the old Python X-Ray SDK 0.95 (Debian's
python3-aws-xray-sdk), whose datagram header has spaces:
{"format": "json", "version": 1}. Sends --traces segments to AWS_XRAY_DAEMON_ADDRESS.
"""

import argparse
import sys
import traceback

from aws_xray_sdk.core import xray_recorder


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=5)
    args = ap.parse_args()
    xray_recorder.configure(sampling=False, context_missing="LOG_ERROR", service="py-legacy")
    for i in range(args.traces):
        seg = xray_recorder.begin_segment("py-legacy", sampling=1)
        seg.put_http_meta("method", "GET")
        seg.put_http_meta("url", "http://legacy.example/item/%d" % i)
        seg.put_annotation("item", i)
        seg.put_metadata("detail", {"i": i}, "legacy")
        sub = xray_recorder.begin_subsegment("lookup")
        try:
            raise KeyError("item %d" % i)
        except KeyError as e:
            sub.add_exception(e, traceback.extract_stack())
        xray_recorder.end_subsegment()
        seg.put_http_meta("status", 404)
        xray_recorder.end_segment()
    print("py095 app done", file=sys.stderr)


if __name__ == "__main__":
    main()
