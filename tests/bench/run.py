#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The end-to-end benchmark of performance.md: sink + xrayd + load generator on loopback.

For every run it starts a fresh xrayd (so peak RSS is that run's), measures it idle,
offers a paced load of segments for a fixed time, waits for the pipeline to drain, and
records what reached the sink, what was lost and where (kernel drops from /proc/net/udp,
the daemon's spillover and rejections from its final telemetry record), the daemon's
CPU seconds per 100k segments (utime+stime from /proc/PID/stat), peak and idle RSS,
upload batches, and how much CPU other processes used meanwhile (a run is repeated when
the machine was busy). Everything it starts dies with it (PR_SET_PDEATHSIG, and a
finally on every path); the sink and the load generator also stop by themselves.

  tests/bench/run.py --build BUILD_DIR [--suite full|rates|sizes|quick] [--seconds 10]
                     [--rates R1,R2 --repeat N] [--size BYTES] [--json FILE] [--profile RATE]

BUILD_DIR is a build configured with -DXRAYD_BENCH=ON (targets xrayd, loadgen, sink).
The tables are printed as Markdown; --json keeps every figure of every run.
"""

import argparse
import ctypes
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1
DRAIN_TIMEOUT_S = 30
OTHER_CPU_LIMIT = 0.10  # user CPU of other processes, in cores over the run: above = disturbed
MAX_ATTEMPTS = 3  # a disturbed run is tried again this many times at most

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_json(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def proc_cpu_ticks(pid):
    """utime+stime of the whole process (every thread), in ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def thread_cpu_ticks(pid):
    """{tid: ticks}: the loop thread is tid == pid, the others are the worker and helpers."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return out


def proc_status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def udp_drops(port):
    """The drops column of /proc/net/udp for the socket bound to 127.0.0.1:port."""
    want = "0100007F:%04X" % port
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols[1] == want:
                return int(cols[-1])
    return None


def proc_user_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[11])


def ctx_switches(pid):
    """Voluntary + involuntary context switches of every thread of pid."""
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def system_user_ticks():
    """user + nice CPU of the whole machine: what other engineers' compilers use shows
    here. (System time is left out: the loopback traffic of the benchmark is partly
    accounted as softirq time to no process, which would read as someone else's.)"""
    with open("/proc/stat") as f:
        cols = [int(x) for x in f.readline().split()[1:]]
    return cols[0] + cols[1]


def children_user_s():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Sink:
    def __init__(self, build, seconds):
        self.proc = subprocess.Popen(
            [os.path.join(build, "tests/bench/sink"), "--port", "0", "--seconds", str(seconds)],
            stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError("sink did not start: " + line)
        self.port = int(m.group(1))

    def stats(self):
        return http_json(f"http://127.0.0.1:{self.port}/stats")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Daemon:
    def __init__(self, build, sink_port, memory_mb, logdir, extra=()):
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.tcp_port = free_port(socket.SOCK_STREAM)
        env = dict(os.environ)
        env.update({
            "AWS_ENDPOINT_URL_XRAY": f"http://127.0.0.1:{sink_port}",
            "AWS_ACCESS_KEY_ID": "AKIDBENCHMARKEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "benchmark/secret/example",
        })
        for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "HTTPS_PROXY", "https_proxy",
                  "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            env.pop(k, None)
        self.cmd = [os.path.join(build, "daemon/xrayd"), "-o", "--upstream", "aws",
                    "-n", "us-east-1", "-b", f"127.0.0.1:{self.udp_port}",
                    "-t", f"127.0.0.1:{self.tcp_port}", "-m", str(memory_mb), *extra]
        self.log_path = os.path.join(logdir, f"xrayd-{self.udp_port}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.cmd, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.pid = self.proc.pid
        self.rcvbuf = None
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("xrayd exited at start-up:\n" + self.read_log())
            m = re.search(r"UDP receive buffer: (\d+) bytes granted of (\d+)", self.read_log())
            if m:
                self.rcvbuf = int(m.group(1))
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("xrayd did not log its start-up:\n" + self.read_log())

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def health(self):
        return http_json(f"http://127.0.0.1:{self.tcp_port}/healthz")

    def stop(self, timeout=15):
        """SIGTERM (the daemon uploads what it holds and sends its final telemetry
        record), SIGKILL when it overstays. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def drain(daemon, sink, base_docs, sent):
    """Waits until the daemon holds nothing and the sink count stopped moving."""
    t0 = time.time()
    last, still_since = None, time.time()
    while time.time() - t0 < DRAIN_TIMEOUT_S:
        docs = sink.stats()["documents"] - base_docs
        try:
            h = daemon.health()
            idle = (h["queues"].get("worker", 0) == 0 and h["queues"].get("upload", 0) == 0
                    and h["queues"].get("upload_in_flight", 0) == 0
                    and h["memory"].get("buffer", 0) == 0)
        except OSError:
            idle = False
        if docs != last:
            last, still_since = docs, time.time()
        if docs >= sent or (idle and time.time() - still_since >= 1.5):
            break
        time.sleep(0.1)
    return time.time() - t0


def one_run(args, sink, label, rate, size, seconds, profile=False):
    logdir = args.logdir
    d = Daemon(args.build, sink.port, args.memory, logdir,
               [a.replace("{sink}", str(sink.port)) for a in args.xrayd_arg or ()])
    perf = None
    try:
        time.sleep(1.0)  # settle: the idle figure is after start-up, before any load
        idle_rss = proc_status_kb(d.pid, "VmRSS")
        idle_anon = proc_status_kb(d.pid, "RssAnon")
        s0 = sink.stats()
        cpu0, thr0 = proc_cpu_ticks(d.pid), thread_cpu_ticks(d.pid)
        drops0, ctx0 = udp_drops(d.udp_port), ctx_switches(d.pid)
        user0, duser0, suser0 = system_user_ticks(), proc_user_ticks(d.pid), proc_user_ticks(sink.proc.pid)
        la0, t0 = loadavg(), time.time()
        if profile:
            perf = subprocess.Popen(
                ["perf", "record", "-e", "cpu-clock", "-F", "499", "--call-graph", "dwarf,16384",
                 "-p", str(d.pid),
                 "-o", os.path.join(logdir, f"perf-{label}.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent)
        lguser0 = children_user_s()
        lg = subprocess.run(
            [os.path.join(args.build, "tests/bench/loadgen"), "--to", f"127.0.0.1:{d.udp_port}",
             "--rate", str(rate), "--seconds", str(seconds), "--size", str(size)],
            capture_output=True, text=True, timeout=seconds + 30, preexec_fn=_die_with_parent)
        m = re.search(r"sent=(\d+) bytes=(\d+) seconds=([\d.]+) rate=(\d+).*cpu_s=([\d.]+)",
                      lg.stdout)
        if lg.returncode != 0 or not m:
            raise RuntimeError("loadgen failed: " + lg.stdout + lg.stderr)
        sent, achieved, lg_cpu = int(m.group(1)), int(m.group(4)), float(m.group(5))
        lg_user = children_user_s() - lguser0
        drain_s = drain(d, sink, s0["documents"], sent)
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(30)
            perf = None
        cpu1, thr1 = proc_cpu_ticks(d.pid), thread_cpu_ticks(d.pid)
        drops1, ctx1 = udp_drops(d.udp_port), ctx_switches(d.pid)
        peak_rss = proc_status_kb(d.pid, "VmHWM")
        user1, duser1, suser1 = system_user_ticks(), proc_user_ticks(d.pid), proc_user_ticks(sink.proc.pid)
        la1, wall = loadavg(), time.time() - t0
        s1_pre = sink.stats()
        rc = d.stop()
        s1 = sink.stats()
    finally:
        if perf is not None and perf.poll() is None:
            perf.kill()
        d.stop()
    daemon_cpu = (cpu1 - cpu0) / CLK_TCK
    loop_cpu = (thr1.get(d.pid, 0) - thr0.get(d.pid, 0)) / CLK_TCK
    sink_cpu = s1_pre["cpu_s"] - s0["cpu_s"]
    other = ((user1 - user0) - (duser1 - duser0) - (suser1 - suser0)) / CLK_TCK - lg_user
    delivered = s1["documents"] - s0["documents"]
    r = {
        "label": label, "rate": rate, "size": size, "seconds": seconds,
        "sent": sent, "achieved_rate": achieved, "delivered": delivered,
        "delivered_pct": 100.0 * delivered / sent if sent else 0.0,
        "kernel_drops": (drops1 - drops0) if drops0 is not None and drops1 is not None else None,
        "tel_received": s1["tel_received"] - s0["tel_received"],
        "spillover": s1["tel_spillover"] - s0["tel_spillover"],
        "rejected": s1["tel_rejected"] - s0["tel_rejected"],
        "batches": s1["batches"] - s0["batches"],
        "daemon_cpu_s": daemon_cpu, "loop_cpu_s": loop_cpu, "other_threads_cpu_s": daemon_cpu - loop_cpu,
        "cpu_per_100k": daemon_cpu * 1e5 / sent if sent else 0.0,
        "idle_rss_mb": idle_rss / 1024.0, "idle_anon_mb": idle_anon / 1024.0,
        "peak_rss_mb": peak_rss / 1024.0,
        "ctx_switches_per_100k": (ctx1 - ctx0) * 1e5 / sent if sent else 0.0,
        "rcvbuf": d.rcvbuf, "drain_s": drain_s, "exit": rc,
        "sink_cpu_s": sink_cpu, "loadgen_cpu_s": lg_cpu, "others_cpu_s": other,
        "others_busy": other / wall if wall > 0 else 0.0,
        "loadavg_before": la0, "loadavg_after": la1,
    }
    r["zero_loss"] = (r["kernel_drops"] == 0 and r["spillover"] == 0 and r["rejected"] == 0
                      and delivered == sent)
    return r


def measured(args, sink, label, rate, size, seconds):
    """One run, tried again when other processes took more than OTHER_CPU_LIMIT of a core."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        r = one_run(args, sink, label, rate, size, seconds)
        r["attempt"] = attempt
        print(f"  {label}: {fmt_row(r)}", file=sys.stderr, flush=True)
        if r["others_busy"] <= OTHER_CPU_LIMIT:
            return r
        print(f"  (disturbed: others used {r['others_busy']:.2f} of a core; again)",
              file=sys.stderr, flush=True)
        time.sleep(5)
    r["disturbed"] = True
    return r


def fmt_row(r):
    kd = "?" if r["kernel_drops"] is None else str(r["kernel_drops"])
    return (f"| {r['label']} | {r['size']} | {r['rate']:,} | {r['achieved_rate']:,} | {r['sent']:,} "
            f"| {r['delivered']:,} ({r['delivered_pct']:.2f} %) | {kd} | {r['spillover']} "
            f"| {r['rejected']} | {r['cpu_per_100k']:.3f} ({r['loop_cpu_s']:.2f}+"
            f"{r['other_threads_cpu_s']:.2f}) | {r['peak_rss_mb']:.1f} | {r['idle_rss_mb']:.1f} ({r['idle_anon_mb']:.1f}) "
            f"| {r['batches']:,} | {r['ctx_switches_per_100k']:,.0f} "
            f"| {r['loadavg_before']:.2f} / {r['others_busy']:.2f} |")


HEADER = ("| run | doc bytes | offered/s | achieved/s | sent | delivered | kernel drops "
          "| spillover | rejected | CPU-s/100k (loop+worker s) | peak RSS MB | idle RSS MB (anon) "
          "| batches | ctx switches /100k | loadavg / others' cores |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def suite(name):
    """(label, rate, size) in the order they run."""
    if name == "quick":
        return [("20k", 20000, 1150)]
    rates = []
    for rate in (10000, 20000, 50000, 100000, 200000, 400000):
        reps = 3 if rate in (20000, 100000, 200000) else 1
        for i in range(reps):
            rates.append((f"{rate // 1000}k" + (f"#{i + 1}" if reps > 1 else ""), rate, 1150))
    sizes = [("200B", 20000, 200), ("8KB", 20000, 8192),
             ("60KB@2k", 2000, 61440), ("60KB@5k", 5000, 61440)]
    return {"rates": rates, "sizes": sizes, "full": rates + sizes}[name]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="build directory with -DXRAYD_BENCH=ON")
    ap.add_argument("--suite", default="full", choices=["full", "rates", "sizes", "quick"])
    ap.add_argument("--seconds", type=float, default=10.0, help="load time per run")
    ap.add_argument("--rates", help="instead of --suite: comma-separated rates (documents/s)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per rate with --rates")
    ap.add_argument("--memory", type=int, default=32, help="xrayd -m (MB)")
    ap.add_argument("--json", help="write every figure of every run here")
    ap.add_argument("--profile", type=int, metavar="RATE",
                    help="instead of the suite: one run at RATE under perf record (cpu-clock)")
    ap.add_argument("--size", type=int, default=1150,
                    help="document bytes for --rates and --profile")
    ap.add_argument("--xrayd-arg", action="append", metavar="ARG",
                    help="one more xrayd argument (repeat it); {sink} becomes the sink's port, "
                         "e.g. --xrayd-arg=--remote-write-url=http://127.0.0.1:{sink}/api/v1/write")
    args = ap.parse_args()
    if not 0 < args.seconds <= 120:
        ap.error("--seconds must be in (0, 120]")
    args.build = os.path.abspath(args.build)
    args.logdir = tempfile.mkdtemp(prefix="xrayd-bench-")

    # SIGTERM/SIGINT become exceptions so that the finally blocks stop every child.
    def on_signal(signum, frame):
        raise KeyboardInterrupt(signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sink = Sink(args.build, 3600)
    results = []
    try:
        print(f"logs in {args.logdir}", file=sys.stderr)
        if args.profile is not None:
            r = one_run(args, sink, f"profile-{args.profile}", args.profile, args.size,
                        args.seconds, profile=True)
            results.append(r)
            print(f"perf data: {args.logdir}/perf-{r['label']}.data", file=sys.stderr)
        else:
            runs = suite(args.suite)
            if args.rates:
                runs = [(f"{int(r) // 1000}k#{i + 1}", int(r), args.size)
                        for r in args.rates.split(",") for i in range(max(1, min(args.repeat, 5)))]
            for label, rate, size in runs:
                results.append(measured(args, sink, label, rate, size, args.seconds))
    finally:
        sink.stop()
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    if results:
        print(f"receive buffer granted: {results[0]['rcvbuf']} bytes")
        print(HEADER)
        for r in results:
            print(fmt_row(r))
        by_rate = {}
        for r in results:
            if r["size"] == 1150:
                by_rate.setdefault(r["rate"], []).append(r["zero_loss"])
        print()
        for rate, ok in sorted(by_rate.items()):
            print(f"- {rate:,}/s: zero loss in {sum(ok)} of {len(ok)} runs")


if __name__ == "__main__":
    main()
