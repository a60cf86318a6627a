#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Groups a `perf record --call-graph dwarf -e cpu-clock` profile of xrayd by pipeline
stage (receive, scan, hand-off between threads, upload: body, signing, HTTP) and by the
module the sampled instruction was in, as CPU seconds per 100k documents.

  tests/bench/perf_stages.py PERF_DATA --docs N [--freq 499]

How a sample is placed: its stack is walked from the sampled frame towards main, and
the first frame that names a stage decides (so malloc under scan_document counts as
scan, and a futex wait under worker_submit as hand-off). run.py --profile writes
PERF_DATA and prints N (sent)."""

import argparse
import collections
import subprocess
import sys

# (stage, predicate on one frame's symbol) in no particular order: the frame nearest
# the sample that matches any of them decides.
STAGES = [
    ("receive: kernel recvmmsg", lambda s: s in ("do_recvmmsg", "__x64_sys_recvmmsg",
                                                 "udp_recvmsg", "__skb_recv_udp")),
    ("receive: udp/framing/pool", lambda s: s.startswith(("udp_recv_cb", "udp_alloc_cb", "udp_datagram", "framing_",
                                                          "pool_"))),
    ("metrics (worker)", lambda s: s.startswith(("families_", "registry_", "metric_",
                                                 "remote_write_", "prometheus_", "exporter_",
                                                 "cloudwatch_", "emf_", "put_metric_data_",
                                                 "sink_queue_", "pipeline_observe",
                                                 "pipeline_metrics", "protobuf_c_", "snappy"))),
    ("assembly, graph (worker)", lambda s: s.startswith(("assembler_", "digest_", "graph_",
                                                         "histogram_"))),
    ("scan (worker)", lambda s: s.startswith(("scan_", "pipeline_"))),
    ("hand-off: queues, wake-ups", lambda s: s.startswith(("worker_", "queue_", "uv_async_send"))
     or s in ("__x64_sys_futex", "futex_wait", "futex_wake", "eventfd_write", "eventfd_read",
              "__x64_sys_sched_yield", "__GI_sched_yield",
              "pthread_cond_signal@@GLIBC_2.3.2", "__pthread_cond_wait",
              "pthread_cond_timedwait@@GLIBC_2.3.2")),
    ("upload: batch body (escape)", lambda s: s.startswith(("upstream_aws_body", "buf_append_json",
                                                           "buf_json_string", "buf_escape"))),
    ("upload: SigV4 (hash, HMAC)", lambda s: s.startswith("sigv4_")),
    ("upload: HTTP (curl, TCP)", lambda s: s.startswith(("client_", "curl_", "Curl_"))
     or s in ("tcp_sendmsg", "tcp_recvmsg", "__x64_sys_sendto", "__x64_sys_recvfrom")),
    ("upload: batching, accounting", lambda s: s.startswith(("upstream_", "batcher_", "xray_",
                                                            "aws_", "retry_", "xrayd_on_"))),
    ("telemetry, HTTP server", lambda s: s.startswith(("telemetry_", "http_server", "conn_",
                                                      "request_", "healthz_"))),
    ("event loop: epoll, timers", lambda s: s in ("do_epoll_wait", "__x64_sys_epoll_wait",
                                                  "epoll_wait")),
]


def module(dso):
    name = dso.rsplit("/", 1)[-1]
    if "kernel" in name:
        return "kernel"
    if name == "inlined":
        return "libc"  # glibc functions perf shows inlined (malloc, memcpy, locks)
    for m in ("libcurl", "libcrypto", "libssl", "libuv", "libc.so", "libz", "libnghttp2"):
        if name.startswith(m):
            return m.replace(".so", "")
    return name


def samples(path):
    """Yields (tid, pid, [(sym, dso), ...] sampled frame first)."""
    p = subprocess.Popen(["perf", "script", "-i", path, "-F", "comm,pid,tid,ip,sym,dso"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         errors="replace")
    head, frames = None, []
    for line in p.stdout:
        if not line.strip():
            if head is not None:
                yield head[0], head[1], frames
            head, frames = None, []
        elif not line[0].isspace():
            pid, tid = line.split()[1].split("/")
            head = (int(tid), int(pid))
        else:
            parts = line.strip().split(" ", 1)
            rest = parts[1] if len(parts) > 1 else ""
            sym, _, dso = rest.rpartition(" (")
            sym = sym.split("+0x")[0]
            frames.append((sym, dso.rstrip(")")))
    if head is not None:
        yield head[0], head[1], frames
    p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("perf_data")
    ap.add_argument("--docs", type=int, required=True, help="documents sent during the profile")
    ap.add_argument("--freq", type=float, default=499.0, help="perf record -F")
    args = ap.parse_args()
    by_stage, by_module, by_thread = (collections.Counter() for _ in range(3))
    by_sym = collections.Counter()
    total = 0
    for tid, pid, frames in samples(args.perf_data):
        total += 1
        stage = "other"
        for sym, _ in frames:
            hit = next((name for name, match in STAGES if match(sym)), None)
            if hit:
                stage = hit
                break
        thread = "loop" if tid == pid else "worker/other"
        by_stage[(thread, stage)] += 1
        by_thread[thread] += 1
        if frames:
            by_module[module(frames[0][1])] += 1
            by_sym[(frames[0][0], module(frames[0][1]))] += 1
    if total == 0:
        sys.exit("no samples")

    def per100k(n):
        return n / args.freq / args.docs * 1e5

    print(f"{total} samples at {args.freq:g} Hz = {total / args.freq:.2f} CPU-s for "
          f"{args.docs:,} documents = {per100k(total):.3f} CPU-s per 100k\n")
    print("| thread | stage | share | CPU-s/100k |\n|---|---|---|---|")
    for (thread, stage), n in sorted(by_stage.items(), key=lambda kv: -kv[1]):
        print(f"| {thread} | {stage} | {100.0 * n / total:.1f} % | {per100k(n):.3f} |")
    print("\n| module (sampled instruction) | share | CPU-s/100k |\n|---|---|---|")
    for m, n in by_module.most_common():
        print(f"| {m} | {100.0 * n / total:.1f} % | {per100k(n):.3f} |")
    print("\n| top symbols | module | share |\n|---|---|---|")
    for (sym, m), n in by_sym.most_common(25):
        print(f"| {sym} | {m} | {100.0 * n / total:.1f} % |")


if __name__ == "__main__":
    main()
