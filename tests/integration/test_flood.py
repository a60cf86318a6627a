# SPDX-License-Identifier: Apache-2.0
"""Memory under a flood (daemon-compat.md "Memory", docs/memory.md).

Each datagram is a trace of its own that never completes on its own, so trace
assembly fills its budget too and evicts (counted in the exit log line).

xrayd runs with -m 8 and the aws upstream pointed at a fake X-Ray endpoint
(fakes/xray_faults.py) that refuses every connection. For FLOOD_S seconds a sender
process offers UDP segments as fast as a Python loop can, while HTTP clients post
large bodies (1 MB, sent slowly so their memory is held) to the TCP side. Then the
fake comes up.

What is asserted:
- RSS, sampled from /proc every 100 ms, and VmHWM at the end stay under the
  documented ceiling for this configuration: the fixed overhead docs/memory.md
  states, plus the sum of every budget's limit as /healthz reports it, plus the
  allocator's share of the buffer (docs/memory.md gives both numbers; they are
  read from there, so the test and the document cannot drift apart);
- every /healthz sample during the flood shows each budget within its limit, and
  /healthz keeps answering 200 (request bodies leave part of the HTTP budget free);
- the overload is counted: spillover in the shutdown totals and in the final
  telemetry record, and HTTP requests refused with 503 "over memory budget";
- after the flood stops and the upstream recovers, the buffer drains to near zero
  and new documents are delivered.
A sanitizer build runs the same steps but skips the RSS ceiling (its shadow memory
and quarantine are not the daemon's).
"""

import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time

import harness

sys.path.insert(0, os.path.join(harness.HERE, "fakes"))
from xray_faults import XrayFaults  # noqa: E402

HDR = b'{"format":"json","version":1}'
FLOOD_S = 12
BUFFER_MB = 8
HTTP_CLIENTS = 24
HTTP_BODY = 1000 * 1000          # under the server's 1 MiB body limit
HTTP_CHUNK = 64 * 1024
HTTP_CHUNK_PAUSE_S = 0.02        # ~0.3 s a body: requests overlap and hold memory
NEAR_ZERO = 64 * 1024            # "the pool back near zero"
DOC_MEMORY_MD = os.path.normpath(os.path.join(harness.HERE, "..", "..", "docs", "memory.md"))

# The flood sender: a separate process so it has a core of its own. It prints how many
# datagrams it sent. argv: port seconds
SENDER = r"""
import os, socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
now = int(time.time())
pad = "x" * 700
# Every datagram a trace of its own whose root never comes: each waits in the
# assembler for its window, so the assembly budget fills and the oldest are evicted.
tmpl = ('{"format":"json","version":1}\n{"trace_id":"1-%08x-%%024x","id":"%%016x",'
        '"parent_id":"00000000000000aa","name":"flood","start_time":%d.5,"end_time":%d.75,'
        '"annotations":{"pad":"%s"}}' % (now, now, now, pad))
n = 0
end = time.monotonic() + seconds
addr = ("127.0.0.1", port)
send = s.sendto
while time.monotonic() < end:
    for _ in range(256):
        try:
            send((tmpl % (n, n)).encode(), addr)
        except OSError:
            pass
        n += 1
print(n)
"""


def documented_ceiling_terms():
    """(fixed overhead bytes, allocator divisor) as docs/memory.md states them."""
    with open(DOC_MEMORY_MD, encoding="utf-8") as f:
        text = f.read()
    fixed = re.search(r"fixed overhead F = (\d+) MiB", text)
    alloc = re.search(r"allocator overhead A = M / (\d+)", text)
    if not fixed or not alloc:
        raise AssertionError("docs/memory.md no longer states F and A in the expected form")
    return int(fixed.group(1)) << 20, int(alloc.group(1))


def sanitized(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        pass
    return out


def kib(v):
    return int(v.split()[0]) * 1024 if v else 0


class Sampler:
    """VmRSS every 100 ms and /healthz every 250 ms, in threads, until stop()."""

    def __init__(self, x):
        self.x = x
        self.rss_max = 0
        self.rss_samples = 0
        self.health = []  # (status, memory dict or None)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._rss, daemon=True),
                         threading.Thread(target=self._health, daemon=True)]
        for t in self._threads:
            t.start()

    def _rss(self):
        while not self._stop.is_set():
            rss = kib(proc_status(self.x.pid).get("VmRSS"))
            self.rss_max = max(self.rss_max, rss)
            self.rss_samples += 1
            self._stop.wait(0.1)

    def _health(self):
        while not self._stop.is_set():
            status, body = harness.http_get(self.x.tcp_url + "/healthz", timeout=2.0)
            mem = None
            if status == 200:
                try:
                    mem = json.loads(body)["memory"]
                except (ValueError, KeyError):
                    pass
            self.health.append((status, mem, body[:200]))
            self._stop.wait(0.25)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(5)


class Hammer:
    """HTTP clients posting large bodies to the TCP side until stop(); counts answers."""

    def __init__(self, port):
        self.port = port
        self.lock = threading.Lock()
        self.statuses = {}
        self.over_budget = 0
        self.failures = 0
        self._stop = threading.Event()
        self._chunk = b"{" + b" " * (HTTP_CHUNK - 2) + b"}"
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(HTTP_CLIENTS)]
        for t in self._threads:
            t.start()

    def _one(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            s.sendall(b"POST /GetSamplingRules HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nConnection: close\r\n"
                      b"Content-Length: %d\r\n\r\n" % HTTP_BODY)
            left = HTTP_BODY
            try:
                while left > 0 and not self._stop.is_set():
                    n = min(left, HTTP_CHUNK)
                    s.sendall(self._chunk[:n])
                    left -= n
                    time.sleep(HTTP_CHUNK_PAUSE_S)
            except OSError:
                pass  # refused early: the answer is already waiting
            data = b""
            while True:
                try:
                    got = s.recv(65536)
                except OSError:
                    break
                if not got:
                    break
                data += got
                if len(data) > 1 << 20:
                    break
        finally:
            s.close()
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        return (int(m.group(1)) if m else 0), data

    def _run(self):
        while not self._stop.is_set():
            try:
                status, data = self._one()
            except OSError:
                status, data = 0, b""
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 503 and b"over memory budget" in data:
                    self.over_budget += 1
                if status == 0:
                    self.failures += 1

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(10)


def make_docs(n, tag):
    now = time.time()
    return [json.dumps({"trace_id": "1-%08x-%024x" % (int(now), random.getrandbits(96)),
                        "id": "%016x" % random.getrandbits(64), "name": "%s-%d" % (tag, i),
                        "start_time": now - 0.5, "end_time": now}, separators=(",", ":"))
            for i in range(n)]


class FloodTest(harness.IntegrationCase):
    def test_flood_with_failing_upstream(self):
        fixed, alloc_div = documented_ceiling_terms()
        fake = XrayFaults()
        self.addCleanup(fake.close)
        fake.go_down()
        env = {"AWS_ENDPOINT_URL_XRAY": fake.url, "AWS_ACCESS_KEY_ID": "AKIDTEST",
               "AWS_SECRET_ACCESS_KEY": "secret"}
        # The smallest assembly budget: the few documents the full buffer lets through
        # are enough to overflow it.
        x = self.start_xrayd(harness.aws_args(5000) + ["-m", str(BUFFER_MB),
                                                       "--assembly-memory", "1",
                                                       "--request-timeout", "500",
                                                       "-l", "info"], env)
        status, h = x.healthz()
        self.assertEqual(status, 200)
        mem = h["memory"]
        self.assertEqual(mem["buffer_max"], BUFFER_MB << 20)
        for name in ("buffer", "worker", "udp", "upload", "http_client", "http_server",
                     "telemetry", "assembly", "graph"):
            self.assertIn(name + "_max", mem)
        ceiling = fixed + mem["total_max"] + mem["buffer_max"] // alloc_div

        sampler = Sampler(x)
        hammer = Hammer(x.tcp_port)
        sender = subprocess.Popen([sys.executable, "-c", SENDER, str(x.udp_port), str(FLOOD_S)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        self.addCleanup(lambda: sender.poll() is None and sender.kill())
        try:
            out, _ = sender.communicate(timeout=FLOOD_S + 30)
        finally:
            hammer.stop()
            sampler.stop()
        sent = int(out.split()[-1]) if out.split() else 0
        flood_health = list(sampler.health)

        # Recovery: the upstream answers again; what is buffered drains.
        fake.come_up()

        def drained():
            st, hh = x.healthz()
            return st == 200 and hh["memory"]["buffer"] <= NEAR_ZERO and \
                hh["queues"]["upload"] == 0 and hh["queues"]["upload_retrying"] == 0 and hh
        harness.wait_for(drained, 40, 0.25, "the buffer to drain after the upstream recovered")
        docs = make_docs(100, "after-flood")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        for d in docs:
            sock.sendto(HDR + b"\n" + d.encode(), x.udp_addr)
            time.sleep(0.002)
        harness.wait_for(lambda: set(docs) <= set(fake.accepted_docs()), 20, 0.1,
                         "the documents sent after the flood to be delivered")
        st, after = x.healthz()
        self.assertEqual(st, 200)
        hwm = kib(proc_status(x.pid).get("VmHWM"))
        rc, took = x.terminate(10)
        self.assertEqual(rc, 0)

        # What happened, for the log of the run.
        totals = re.search(r"totals: received (\d+), sent (\d+), spillover (\d+), rejected (\d+)",
                           x.log())
        self.assertIsNotNone(totals, "no totals line in the log")
        received, delivered, spill, rejected = (int(v) for v in totals.groups())
        traces = re.search(r"traces: (\d+) completed idle, (\d+) root done, (\d+) evicted",
                           x.log())
        self.assertIsNotNone(traces, "no trace assembly line in the log")
        evicted = int(traces.group(3))
        peak_total = max((m["total"] for _, m, _ in flood_health if m), default=0)
        sys.stderr.write(
            "\nflood: %d datagrams offered in %d s, %d received, %d sent, %d spillover, "
            "%d rejected; HTTP answers %s (%d over memory budget, %d failed); "
            "peak RSS %.1f MiB (%d samples), VmHWM %.1f MiB, ceiling %.1f MiB, peak budget use "
            "%.1f MiB; /healthz during the flood: %d samples, %d answered 200; "
            "traces evicted from assembly %d\n" % (
                sent, FLOOD_S, received, delivered, spill, rejected,
                dict(sorted(hammer.statuses.items())), hammer.over_budget, hammer.failures,
                sampler.rss_max / 2**20, sampler.rss_samples, hwm / 2**20, ceiling / 2**20,
                peak_total / 2**20, len(flood_health),
                sum(1 for s, _, _ in flood_health if s == 200), evicted))

        # Memory stayed within the documented ceiling (not for sanitizer builds).
        self.assertGreater(sampler.rss_samples, FLOOD_S * 5)
        if not sanitized(harness.xrayd_bin()):
            self.assertLessEqual(sampler.rss_max, ceiling)
            self.assertLessEqual(hwm, ceiling)

        # Each budget within its limit at every look; /healthz kept answering.
        self.assertGreater(len(flood_health), FLOOD_S)
        for status, m, body in flood_health:
            self.assertEqual(status, 200, "/healthz during the flood: %r" % body)
            for k, v in m.items():
                if k + "_max" in m:
                    self.assertLessEqual(v, m[k + "_max"], "%s over its limit: %r" % (k, m))

        # The overload was counted, not absorbed.
        self.assertGreater(sent, 100000)
        self.assertGreater(spill, 0)
        self.assertGreater(hammer.over_budget, 0)
        # Distinct trace ids past the assembly budget: the oldest completed early.
        self.assertGreater(evicted, 0)
        spill_tel = sum(int(r.get("SegmentsSpilloverCount", 0)) for r in fake.telemetry_records())
        self.assertEqual(spill_tel, spill)

        # Recovery: near zero again.
        self.assertLessEqual(after["memory"]["buffer"], NEAR_ZERO)
        self.assertLessEqual(after["memory"]["http_server"], 256 * 1024)


if __name__ == "__main__":
    harness.main()
