# SPDX-License-Identifier: Apache-2.0
"""A service sampled by centralized rules (the Python X-Ray SDK 2.x default): its pollers
ask AWS_XRAY_DAEMON_ADDRESS's TCP side for rules and targets. After a warm-up segment
(which starts the pollers) and the first rules, it opens --per-second segments named
--service for --seconds, or until --after-targets seconds past its first SamplingTargets
answer, and prints one JSON line: segments made and sampled, the epoch times of its
SamplingTargets answers, when it started and stopped making segments, and the rules.
"""

import argparse
import json
import sys
import time

from aws_xray_sdk.core import xray_recorder


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--service", required=True)
    ap.add_argument("--per-second", type=float, default=40)
    ap.add_argument("--seconds", type=float, default=10, help="at least this long")
    ap.add_argument("--after-targets", type=float, default=None,
                    help="then until this long after the first targets answer")
    ap.add_argument("--max-seconds", type=float, default=40)
    args = ap.parse_args()

    xray_recorder.configure(sampling=True, context_missing="LOG_ERROR", service=args.service)
    sampler = xray_recorder.sampler
    targets_at = []

    def on_targets(**kwargs):
        targets_at.append(time.time())

    sampler._connector._xray_client.meta.events.register(
        "after-call.xray.GetSamplingTargets", on_targets)

    xray_recorder.begin_segment("warmup")  # the first decision starts the pollers
    xray_recorder.end_segment()
    deadline = time.time() + 10
    while not sampler._cache.rules and time.time() < deadline:
        time.sleep(0.05)
    rules = sorted(r.name for r in sampler._cache.rules)

    made = sampled = 0
    start = time.time()
    gap = 1.0 / args.per_second
    while True:
        now = time.time()
        if now - start >= args.max_seconds:
            break
        if now - start >= args.seconds:
            if args.after_targets is None:
                break
            if targets_at and now >= targets_at[0] + args.after_targets:
                break
        seg = xray_recorder.begin_segment(args.service)
        made += 1
        if seg.sampled:
            sampled += 1
        xray_recorder.end_segment()
        time.sleep(gap)
    stop = time.time()
    time.sleep(0.3)  # let the last datagrams leave
    print(json.dumps({"made": made, "sampled": sampled, "targets_at": targets_at,
                      "start": start, "stop": stop, "rules": rules}), flush=True)
    print("py sampling app done", file=sys.stderr)


if __name__ == "__main__":
    main()
