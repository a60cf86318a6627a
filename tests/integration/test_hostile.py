# SPDX-License-Identifier: Apache-2.0
"""Hostile datagrams mixed into real SDK traffic: xrayd stays up, rejects and counts
each bad one, and every valid document still reaches moto byte-identical."""

import glob
import json
import os
import random
import subprocess
import sys
import time

import harness

SHUTDOWN_MS = 5000
HDR = b'{"format":"json","version":1}'


def tid(n):
    return "1-%08x-%024x" % (int(time.time()), 0xBAD000 + n)


def doc(n, **extra):
    d = {"trace_id": tid(n), "id": "%016x" % (0xBAD000 + n), "name": "hostile-%d" % n,
         "start_time": time.time() - 1, "end_time": time.time()}
    d.update(extra)
    return d


def dumps(d):
    return json.dumps(d, separators=(",", ":")).encode()


def hostile_datagrams():
    """(label, datagram, trace id or None) for each input xrayd must reject."""
    rnd = random.Random(1234)
    out = []
    n = iter(range(1, 1000))

    def add(label, data, i=None):
        out.append((label, data, tid(i) if i is not None else None))

    for k in range(3):
        add("random bytes %d" % k, bytes(rnd.getrandbits(8) for _ in range(200 + 97 * k)))
    add("empty datagram", b"")
    add("65,507 bytes of garbage", b"\x01" * 65507)
    add("only a newline", b"\n")
    i = next(n)
    add("header nested 5000 deep", b'{"format":"json","version":1,"x":' + b"[" * 5000 +
        b"]" * 5000 + b"}\n" + dumps(doc(i)), i)
    i = next(n)
    add("raw NUL in a string", HDR + b"\n" + dumps(doc(i))[:-1] + b',"user":"a\x00b"}', i)
    i = next(n)
    add("format xml", b'{"format":"xml","version":1}\n' + dumps(doc(i)), i)
    i = next(n)
    add("version 2", b'{"format":"json","version":2}\n' + dumps(doc(i)), i)
    i = next(n)
    add("header not json", b"format=json version=1\n" + dumps(doc(i)), i)
    i = next(n)
    add("header broken json", b'{"format":"json","version":1\n' + dumps(doc(i)), i)
    i = next(n)
    add("header without version", b'{"format":"json"}\n' + dumps(doc(i)), i)
    add("header without newline", HDR)
    i = next(n)
    add("header and doc without newline", HDR + dumps(doc(i)), i)
    add("empty body", HDR + b"\n")
    i = next(n)
    full = dumps(doc(i, metadata={"default": {"k": "v" * 200}}))
    add("truncated json", HDR + b"\n" + full[: len(full) // 2], i)
    i = next(n)
    deep = dumps(doc(i))[:-1] + b',"metadata":{"default":{"x":' + b"[" * 5000 + b"]" * 5000 + b"}}}"
    add("5000-deep nesting", HDR + b"\n" + deep, i)
    i = next(n)
    add("65-deep nesting", HDR + b"\n" + dumps(doc(i))[:-1] + b',"metadata":{"default":' +
        b'{"a":' * 63 + b"1" + b"}" * 63 + b"}}", i)
    i = next(n)
    add("invalid utf-8",
        HDR + b"\n" + dumps(doc(i))[:-1] + b',"annotations":{"k":"\xff\xfe\xc3("}}', i)
    i = next(n)
    add("overlong utf-8", HDR + b"\n" + dumps(doc(i))[:-1] + b',"annotations":{"k":"\xc0\xaf"}}', i)
    for f in sorted(glob.glob(os.path.join(harness.DATA, "datagrams", "adot-*.dgram")))[:2]:
        with open(f, "rb") as fh:
            add("ADOT T1S body " + os.path.basename(f), fh.read())
    add("body not an object", HDR + b"\n[1,2,3]")
    add("body null", HDR + b"\nnull")
    i = next(n)
    add("two documents", HDR + b"\n" + dumps(doc(i)) + dumps(doc(i)), i)
    i = next(n)
    d = doc(i)
    del d["trace_id"]
    add("segment without trace_id", HDR + b"\n" + dumps(d))
    i = next(n)
    d = doc(i)
    del d["end_time"]
    add("no end_time nor in_progress", HDR + b"\n" + dumps(d), i)
    i = next(n)
    d = doc(i)
    del d["name"]
    add("no name", HDR + b"\n" + dumps(d), i)
    i = next(n)
    add("name not a string", HDR + b"\n" + dumps(doc(i, name=42)), i)
    i = next(n)
    add("start_time a string", HDR + b"\n" + dumps(doc(i, start_time="yesterday")), i)
    i = next(n)
    d = doc(i)
    del d["id"]
    add("no id", HDR + b"\n" + dumps(d), i)
    i = next(n)
    add("streamed subsegment without parent_id", HDR + b"\n" + dumps(doc(i, type="subsegment")), i)
    return out


class HostileTest(harness.IntegrationCase):
    def test_hostile_mixed_into_sdk_traffic(self):
        moto = self.start_moto()
        proxy = self.start_proxy(moto.port)  # records what xrayd uploads
        env = harness.aws_env(moto, "AKIDTEST", "secret")
        env["AWS_ENDPOINT_URL_XRAY"] = proxy.url
        x = self.start_xrayd(harness.aws_args(SHUTDOWN_MS), env)
        relay = self.start_relay(x.udp_addr)
        daemon = "tcp:127.0.0.1:%d udp:%s" % (x.tcp_port, relay.address)
        hostile = hostile_datagrams()

        # A near-maximal datagram (65,507 bytes over IPv4) carries a valid document
        # under 64 KiB: it must pass. A bigger body cannot be sent over UDP at all.
        bigdoc = doc(999, metadata={"default": {"blob": ""}})
        pad = 65507 - len(HDR) - 1 - len(dumps(bigdoc))
        bigdoc["metadata"]["default"]["blob"] = "x" * pad
        big = dumps(bigdoc)
        self.assertEqual(len(HDR) + 1 + len(big), 65507)

        # Half of the hostile datagrams while the Python app sends, half while Node does.
        app = subprocess.Popen([sys.executable, os.path.join(harness.APPS, "py_app.py"),
                                "--traces", "30", "--stream", "35"],
                               env=harness.clean_env(self.tmp, {"AWS_XRAY_DAEMON_ADDRESS": daemon}),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: app.poll() is None and app.kill())
        half = len(hostile) // 2
        for label, data, _ in hostile[:half]:
            relay.inject(data)
            time.sleep(0.01)
        self.assertEqual(app.wait(60), 0)
        relay.inject(HDR + b"\n" + big)
        harness.run_app(self.tmp, "node", daemon, ["10", "110"])
        for label, data, _ in hostile[half:]:
            relay.inject(data)
        harness.run_app(self.tmp, "py", daemon, ["--traces", "3", "--stream", "0"])
        time.sleep(0.5)

        self.assertTrue(x.alive(), "xrayd is alive")
        status, health = x.healthz()
        self.assertEqual(status, 200, health)

        valid = relay.documents() + [big.decode()]
        ids = harness.trace_ids(valid)
        got = []

        def all_there():
            got[:] = moto.batch_get_documents(ids)
            return len(got) >= len(valid)

        try:
            harness.wait_for(all_there, 30, 1.0, "moto to hold every valid document")
        except AssertionError:
            pass
        self.assertDocsEqual(valid, got, "valid documents at moto")
        leaked = moto.batch_get_documents([t for _, _, t in hostile if t])
        self.assertEqual(leaked, [], "no hostile document reached moto")

        rc, took = x.terminate(SHUTDOWN_MS / 1000 + 5)
        self.assertEqual(rc, 0, "exit code after SIGTERM")
        uploaded = []
        for _, _, _, body in proxy.requests("/TraceSegments"):
            uploaded.extend(json.loads(body)["TraceSegmentDocuments"])
        self.assertDocsEqual(valid, uploaded, "documents xrayd uploaded (hostile ones must not be)")
        sums = harness.telemetry_sums(moto.telemetry_records())
        self.assertEqual(sums["SegmentsRejectedCount"], len(hostile),
                         "%s; hostile inputs: %s" % (sums, [h[0] for h in hostile]))
        self.assertEqual(sums["SegmentsReceivedCount"], len(valid) + len(hostile), sums)
        self.assertEqual(sums["SegmentsSentCount"], len(valid), sums)
        self.assertRegex(x.log(), r"(?i)reject", "the log mentions rejections")

    def test_log_reports_rejected_total(self):
        # Rejection lines are rate-limited, so the log must still give the total
        # somewhere by the time xrayd stops (a summary, or a suppressed-lines count).
        moto = self.start_moto()
        x = self.start_xrayd(harness.aws_args(SHUTDOWN_MS),
                             harness.aws_env(moto, "AKIDTEST", "secret"))
        relay = self.start_relay(x.udp_addr)
        hostile = hostile_datagrams()
        for _, data, _ in hostile:
            relay.inject(data)
        harness.wait_for(lambda: x.healthz()[0] == 200, 5, 0.1, "/healthz")
        time.sleep(0.3)
        rc, _ = x.terminate(SHUTDOWN_MS / 1000 + 5)
        self.assertEqual(rc, 0)
        n = len(hostile)
        log = x.log()
        self.assertRegex(log, r"(?i)(reject\D{0,40}\b%d\b|\b%d\b\D{0,40}reject)" % (n, n),
                         "the log states that %d datagrams were rejected" % n)


if __name__ == "__main__":
    harness.main()
