# SPDX-License-Identifier: Apache-2.0
"""Upload retries against a fake X-Ray endpoint (fakes/xray_faults.py) that answers
503, 429 with Retry-After, is slower than the request timeout, refuses connections
for a while, and refuses batches holding a bad document with 400.

What is asserted:
- every document arrives, and exactly once among the calls the fake answered in
  time; a call answered after xrayd's timeout (the slow fault) was processed by the
  fake but seen as failed by xrayd, so its documents come again: at-least-once there,
  and those duplicates are exactly the late calls' documents;
- the final telemetry record (sent on SIGTERM) counts each failed attempt in
  BackendConnectionErrors: 5XX, 4XX (429 and 400), timeouts, refused connections;
- what outlives the retry budget (time, or attempts) is counted as rejected, exactly
  those documents, and later documents still go;
- a 400 on a batch is split in halves at most twice: the good documents outside the
  bad one's quarter arrive, the quarter is rejected and counted.
"""

import json
import os
import random
import socket
import sys
import time

import harness

sys.path.insert(0, os.path.join(harness.HERE, "fakes"))
from xray_faults import XrayFaults  # noqa: E402

HDR = b'{"format":"json","version":1}'
SHUTDOWN_MS = 5000
TIMEOUT_MS = 500


def make_docs(n, tag, bad_at=None):
    """n segment documents (JSON text); the one at bad_at carries the fake's marker."""
    now = time.time()
    docs = []
    for i in range(n):
        d = {"trace_id": "1-%08x-%024x" % (int(now), random.getrandbits(96)),
             "id": "%016x" % random.getrandbits(64),
             "name": "BAD-DOC" if i == bad_at else "%s-%d" % (tag, i),
             "start_time": now - 0.5, "end_time": now}
        docs.append(json.dumps(d, separators=(",", ":")))
    return docs


def backend_sums(records):
    keys = ("HTTPCode4XXCount", "HTTPCode5XXCount", "TimeoutCount", "ConnectionRefusedCount",
            "UnknownHostCount", "OtherCount")
    return {k: sum(int(r.get("BackendConnectionErrors", {}).get(k, 0)) for r in records)
            for k in keys}


class FaultsTest(harness.IntegrationCase):
    def start(self, fake, *extra):
        args = harness.aws_args(SHUTDOWN_MS) + ["--request-timeout", str(TIMEOUT_MS)] + list(extra)
        env = {"AWS_ENDPOINT_URL_XRAY": fake.url, "AWS_ACCESS_KEY_ID": "AKIDTEST",
               "AWS_SECRET_ACCESS_KEY": "secret"}
        x = self.start_xrayd(args, env)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        return x, sock

    def start_fake(self):
        fake = XrayFaults()
        self.addCleanup(fake.close)
        return fake

    @staticmethod
    def send(x, sock, docs):
        for d in docs:
            sock.sendto(HDR + b"\n" + d.encode(), x.udp_addr)
            time.sleep(0.001)

    def wait_accepted(self, fake, docs, timeout=20):
        want = set(docs)
        harness.wait_for(lambda: want <= set(fake.accepted_docs()), timeout, 0.05,
                         "%d documents accepted by the fake" % len(docs))

    def finish(self, x, fake):
        """SIGTERM; returns the telemetry records the fake received."""
        rc, took = x.terminate(SHUTDOWN_MS / 1000 + 5)
        self.assertEqual(rc, 0, "exit code after SIGTERM")
        self.assertLess(took, SHUTDOWN_MS / 1000 + 1)
        recs = fake.telemetry_records()
        self.assertGreater(len(recs), 0, "the final telemetry record")
        return recs

    def test_recovers_from_each_fault(self):
        fake = self.start_fake()
        x, sock = self.start(fake, "--retry-backoff-min", "100", "--retry-backoff-max", "400")
        sent = []

        # 503 three times, then accepted.
        fake.push(("status", 503), ("status", 503), ("status", 503))
        docs = make_docs(5, "a")
        sent += docs
        self.send(x, sock, docs)
        self.wait_accepted(fake, docs)
        self.assertEqual([c[0] for c in fake.trace_calls()], [503, 503, 503, 200])

        # 429 with Retry-After: 1: the retry waits at least that long (the backoff
        # alone would be 100 ms).
        fake.push(("status", 429, 1))
        docs = make_docs(5, "b")
        sent += docs
        self.send(x, sock, docs)
        self.wait_accepted(fake, docs)
        calls = fake.trace_calls()
        self.assertEqual([c[0] for c in calls[-2:]], [429, 200])
        self.assertGreaterEqual(calls[-1][2] - calls[-2][2], 0.95, "Retry-After honoured")

        # Slower than the request timeout twice: the fake takes the documents after
        # xrayd gave up on the call, xrayd sends them again.
        fake.push(("slow", 3 * TIMEOUT_MS / 1000), ("slow", 3 * TIMEOUT_MS / 1000))
        docs = make_docs(5, "c")
        sent += docs
        self.send(x, sock, docs)
        self.wait_accepted(fake, docs)
        self.assertEqual([c[0] for c in fake.trace_calls()[-3:]], [0, 0, 200])

        # Connections refused for a while: xrayd keeps retrying until the fake is back.
        fake.go_down()
        docs = make_docs(5, "d")
        sent += docs
        self.send(x, sock, docs)
        harness.wait_for(lambda: "refused" in str(x.healthz()[1].get("last_upstream_error")),
                         10, 0.05, "a refused upload attempt in /healthz")
        time.sleep(0.3)
        fake.come_up()
        self.wait_accepted(fake, docs)

        # Exactly once among the calls answered in time; the late calls' documents are
        # the only duplicates, each one of the slow batch's.
        self.assertDocsEqual(sent, fake.accepted_docs(), "documents accepted in time")
        harness.wait_for(lambda: len(fake.late_docs()) == 10, 5, 0.1, "the late calls to end")
        late = fake.late_docs()
        self.assertDocsEqual(docs_of_phase(sent, "c") * 2, late, "documents of the late calls")

        recs = self.finish(x, fake)
        sums = harness.telemetry_sums(recs)
        self.assertEqual(sums["SegmentsReceivedCount"], len(sent), sums)
        self.assertEqual(sums["SegmentsSentCount"], len(sent), sums)
        self.assertEqual(sums["SegmentsRejectedCount"], 0, sums)
        errs = backend_sums(recs)
        self.assertEqual(errs["HTTPCode5XXCount"], 3, errs)
        self.assertEqual(errs["HTTPCode4XXCount"], 1, errs)  # the 429
        self.assertEqual(errs["TimeoutCount"], 2, errs)
        self.assertGreaterEqual(errs["ConnectionRefusedCount"], 1, errs)
        self.assertLessEqual(errs["ConnectionRefusedCount"], 5, errs)  # 6 attempts at most
        self.assertEqual(errs["UnknownHostCount"], 0, errs)
        self.assertEqual(errs["OtherCount"], 0, errs)

    def test_time_budget_exceeded(self):
        # Down for longer than the retry budget (1.5 s): that batch is given up,
        # counted as rejected; documents sent after the fake is back still go.
        fake = self.start_fake()
        fake.go_down()
        x, sock = self.start(fake, "--retry-budget", "1500", "--retry-attempts", "50",
                             "--retry-backoff-min", "200", "--retry-backoff-max", "300")
        lost = make_docs(7, "lost")
        self.send(x, sock, lost)
        harness.wait_for(lambda: "given up" in x.log(), 10, 0.1, "the batch given up")
        fake.come_up()
        kept = make_docs(4, "kept")
        self.send(x, sock, kept)
        self.wait_accepted(fake, kept)
        self.assertDocsEqual(kept, fake.accepted_docs(), "documents sent after recovery")
        recs = self.finish(x, fake)
        sums = harness.telemetry_sums(recs)
        self.assertEqual(sums["SegmentsRejectedCount"], len(lost), sums)
        self.assertEqual(sums["SegmentsSentCount"], len(kept), sums)
        errs = backend_sums(recs)
        # 1.5 s of 200-300 ms waits: between 5 and 9 attempts, every one refused.
        self.assertGreaterEqual(errs["ConnectionRefusedCount"], 5, errs)
        self.assertLessEqual(errs["ConnectionRefusedCount"], 9, errs)

    def test_attempts_exhausted(self):
        # Down throughout: three attempts per batch, each one counted, then given up.
        fake = self.start_fake()
        fake.go_down()
        x, sock = self.start(fake, "--retry-attempts", "3", "--retry-backoff-min", "100",
                             "--retry-backoff-max", "100")
        lost = make_docs(6, "lost")
        self.send(x, sock, lost)
        harness.wait_for(lambda: "given up" in x.log(), 10, 0.1, "the batch given up")
        fake.come_up()
        recs = self.finish(x, fake)
        sums = harness.telemetry_sums(recs)
        self.assertEqual(sums["SegmentsRejectedCount"], len(lost), sums)
        self.assertEqual(sums["SegmentsSentCount"], 0, sums)
        errs = backend_sums(recs)
        self.assertEqual(errs["ConnectionRefusedCount"], 3, errs)
        self.assertEqual(fake.accepted_docs(), [])

    def test_bad_document_isolated(self):
        fake = self.start_fake()
        fake.reject_marker = "BAD-DOC"
        x, sock = self.start(fake)

        # Four documents, the third bad: 4 -> 2 + 2 -> 1 + 1; only the bad one is lost.
        docs = make_docs(4, "four", bad_at=2)
        self.send(x, sock, docs)
        good = [d for i, d in enumerate(docs) if i != 2]
        self.wait_accepted(fake, good)
        self.assertEqual(sorted(len(c[1]) for c in fake.trace_calls()), [1, 1, 2, 2, 4])

        # Twenty, the fourteenth bad: two splits reach quarters of five; the bad
        # quarter (documents 10-14) is rejected, the other fifteen arrive.
        docs20 = make_docs(20, "twenty", bad_at=13)
        self.send(x, sock, docs20)
        good20 = docs20[:10] + docs20[15:]
        self.wait_accepted(fake, good20)
        time.sleep(0.5)
        self.assertDocsEqual(good + good20, fake.accepted_docs(), "good documents")
        recs = self.finish(x, fake)
        sums = harness.telemetry_sums(recs)
        self.assertEqual(sums["SegmentsSentCount"], 3 + 15, sums)
        self.assertEqual(sums["SegmentsRejectedCount"], 1 + 5, sums)
        errs = backend_sums(recs)
        self.assertEqual(errs["HTTPCode4XXCount"], 3 + 3, errs)  # the 400s: whole, half, quarter
        self.assertEqual(errs["HTTPCode5XXCount"], 0, errs)


def docs_of_phase(docs, tag):
    return [d for d in docs if '"name":"%s-' % tag in d]


if __name__ == "__main__":
    harness.main()
