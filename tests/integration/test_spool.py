# SPDX-License-Identifier: Apache-2.0
"""The spool (--spool-dir) against a fake X-Ray endpoint (fakes/xray_faults.py) that
refuses connections while it is down.

What is asserted:
- the upstream down for a minute, with traffic all along and a 2 s retry budget: the batches that ran out
  of retries are on disk, and once the fake is back every document arrives, exactly
  once, and the spool directory ends empty;
- SIGKILL while documents are spooled: a new xrayd on the same directory delivers
  every one of them;
- SIGTERM with buffered documents and an unreachable upstream: exit 0 within the
  shutdown deadline, every document in the spool (read back here with this file's
  own reader of the format), all of them delivered by the next start;
- corrupt files at start (bad magic, truncated, a changed byte) are skipped, counted
  in the log and deleted; the valid files, written here by this file's own encoder of
  the format, are replayed;
- a directory that cannot be created, or that another xrayd uses, stops the start
  with exit 1 and a message naming it.
A document can be sent twice only when xrayd dies between an acknowledgement and the
file's deletion; none of these tests does that, so each expects exactly once.
"""

import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time

import harness

OUTAGE_S = 60  # how long the upstream is down in the outage test

sys.path.insert(0, os.path.join(harness.HERE, "fakes"))
from xray_faults import XrayFaults  # noqa: E402

HDR = b'{"format":"json","version":1}'
MAGIC = b"XRAYDSPL"


# ---- the file format, written from its description in spool_file.c ----

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def encode_spool_file(docs):
    """A spool file holding docs (JSON text), as xrayd writes one."""
    body = b""
    for text in docs:
        d = json.loads(text)
        data = text.encode()
        flags = 1 if d.get("in_progress") else 0
        body += struct.pack("<IB3xdd", len(data), flags, d["start_time"], d.get("end_time", 0))
        body += d["trace_id"].encode().ljust(36, b"\0") + d["id"].encode().ljust(16, b"\0")
        body += data
    head = MAGIC + struct.pack("<IIIQ", 1, len(docs), len(body), int(time.time() * 1000))
    head += struct.pack("<I", crc32c(head))
    return head + body + struct.pack("<I", crc32c(body))


def decode_spool_file(raw):
    """The documents of a spool file, checking what the format promises."""
    assert raw[:8] == MAGIC, "magic"
    version, count, body_len, _created, hcrc = struct.unpack("<IIIQI", raw[8:32])
    assert version == 1 and hcrc == crc32c(raw[:28]), "header"
    assert len(raw) == 32 + body_len + 4, "size"
    body = raw[32:32 + body_len]
    assert struct.unpack("<I", raw[-4:])[0] == crc32c(body), "body checksum"
    docs, off = [], 0
    for _ in range(count):
        n = struct.unpack("<I", body[off:off + 4])[0]
        docs.append(body[off + 76:off + 76 + n].decode())
        off += 76 + n
    assert off == body_len, "records fill the body"
    return docs


def spool_files(spool):
    return sorted(f for f in os.listdir(spool) if f.endswith(".spool"))


def spooled_docs(spool):
    docs = []
    for f in spool_files(spool):
        with open(os.path.join(spool, f), "rb") as fh:
            docs += decode_spool_file(fh.read())
    return docs


def make_docs(n, tag):
    now = time.time()
    return [json.dumps({"trace_id": "1-%08x-%024x" % (int(now), random.getrandbits(96)),
                        "id": "%016x" % random.getrandbits(64), "name": "%s-%d" % (tag, i),
                        "start_time": now - 0.5, "end_time": now}, separators=(",", ":"))
            for i in range(n)]


class SpoolTest(harness.IntegrationCase):
    def start(self, fake, spool, *extra, name="xrayd", shutdown_ms=3000):
        args = (harness.aws_args(shutdown_ms) +
                ["--request-timeout", "500", "--retry-backoff-min", "100",
                 "--retry-backoff-max", "400", "--spool-dir", spool] + list(extra))
        env = {"AWS_ENDPOINT_URL_XRAY": fake.url, "AWS_ACCESS_KEY_ID": "AKIDTEST",
               "AWS_SECRET_ACCESS_KEY": "secret"}
        return self.start_xrayd(args, env, name)

    def start_fake(self):
        fake = XrayFaults()
        self.addCleanup(fake.close)
        return fake

    def send(self, x, docs):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for d in docs:
                sock.sendto(HDR + b"\n" + d.encode(), x.udp_addr)
                time.sleep(0.001)
        finally:
            sock.close()

    def wait_accepted(self, fake, docs, timeout):
        want = set(docs)
        harness.wait_for(lambda: want <= set(fake.accepted_docs()), timeout, 0.1,
                         "%d documents accepted by the fake" % len(want))

    def wait_spooled(self, spool, docs, timeout):
        want = set(docs)
        harness.wait_for(lambda: want <= set(spooled_docs(spool)), timeout, 0.1,
                         "%d documents in the spool" % len(want))

    def test_outage_then_replay(self):
        fake = self.start_fake()
        spool = os.path.join(self.tmp, "spool")
        x = self.start(fake, spool, "--retry-budget", "2000")
        fake.go_down()
        down_at = time.monotonic()
        sent = []
        for phase in range(OUTAGE_S // 4 - 1):  # traffic through the outage
            docs = make_docs(40, "out%d" % phase)
            sent += docs
            self.send(x, docs)
            time.sleep(4)
        self.wait_spooled(spool, sent[:80], 10)
        self.assertEqual(fake.accepted_docs(), [])
        time.sleep(max(0, OUTAGE_S - (time.monotonic() - down_at)))
        fake.come_up()
        fresh = make_docs(5, "fresh")  # an acknowledged upload starts the replay
        sent += fresh
        self.send(x, fresh)
        self.wait_accepted(fake, sent, 30)
        harness.wait_for(lambda: spool_files(spool) == [], 10, 0.1, "an empty spool")
        self.assertDocsEqual(sent, fake.accepted_docs(), "documents accepted")
        self.assertIn("every spooled batch is replayed", x.log())
        rc, _ = x.terminate(10)
        self.assertEqual(rc, 0)

    def test_sigkill_then_restart(self):
        fake = self.start_fake()
        spool = os.path.join(self.tmp, "spool")
        fake.go_down()
        x = self.start(fake, spool, "--retry-budget", "1000")
        docs = make_docs(120, "kill")
        self.send(x, docs)
        self.wait_spooled(spool, docs, 15)
        x.signal(signal.SIGKILL)
        self.assertIsNotNone(x.wait(5))
        self.assertEqual(fake.accepted_docs(), [])
        fake.come_up()
        x2 = self.start(fake, spool, name="xrayd2")
        self.wait_accepted(fake, docs, 20)
        harness.wait_for(lambda: spool_files(spool) == [], 10, 0.1, "an empty spool")
        self.assertDocsEqual(docs, fake.accepted_docs(), "documents accepted")
        rc, _ = x2.terminate(10)
        self.assertEqual(rc, 0)

    def test_sigterm_spools_what_is_buffered(self):
        fake = self.start_fake()
        spool = os.path.join(self.tmp, "spool")
        fake.go_down()
        shutdown_ms = 2000
        # Retries for 30 s (the default budget), so only the shutdown can spool them.
        x = self.start(fake, spool, "--retry-attempts", "100", shutdown_ms=shutdown_ms)
        docs = make_docs(130, "term")
        self.send(x, docs)
        harness.wait_for(lambda: x.healthz()[1].get("last_upstream_error"), 10, 0.1,
                         "a failed upload attempt")
        time.sleep(1.2)  # the partial batch is cut too
        self.assertEqual(spool_files(spool), [])  # still retrying, in memory
        rc, took = x.terminate(shutdown_ms / 1000 + 10)
        self.assertEqual(rc, 0, "exit code after SIGTERM (took %.2fs)" % took)
        self.assertLess(took, shutdown_ms / 1000 + 1.5, "exit within --shutdown-timeout")
        self.assertDocsEqual(docs, spooled_docs(spool), "documents in the spool")
        nfiles = len(spool_files(spool))
        self.assertIn("%d files" % nfiles, x.log())
        self.assertIn("kept in %s for the next start" % spool, x.log())

        fake.come_up()
        x2 = self.start(fake, spool, name="xrayd2")
        self.wait_accepted(fake, docs, 20)
        harness.wait_for(lambda: spool_files(spool) == [], 10, 0.1, "an empty spool")
        self.assertDocsEqual(docs, fake.accepted_docs(), "documents accepted")
        self.assertRegex(x2.log(), r"spool: .* %d files \(\d+ bytes\) to replay" % nfiles)
        x2.terminate(10)

    def test_corrupt_files_skipped(self):
        fake = self.start_fake()
        spool = os.path.join(self.tmp, "spool")
        os.makedirs(spool, mode=0o700)
        good = [make_docs(10, "good%d" % i) for i in range(3)]
        bad = [make_docs(10, "bad%d" % i) for i in range(3)]
        files = {
            1: encode_spool_file(good[0]),
            2: b"XRAYDSPX" + encode_spool_file(bad[0])[8:],  # wrong magic
            3: encode_spool_file(bad[1])[:-9],  # truncated
            4: encode_spool_file(good[1]),
            5: bytearray(encode_spool_file(bad[2])),  # a changed byte: checksum
            7: encode_spool_file(good[2]),
        }
        files[5][-30] ^= 0x01
        for seq, raw in files.items():
            with open(os.path.join(spool, "%016x.spool" % seq), "wb") as f:
                f.write(raw)
        with open(os.path.join(spool, "0000000000000009.spool.tmp"), "wb") as f:
            f.write(b"unfinished")
        x = self.start(fake, spool)
        want = good[0] + good[1] + good[2]
        self.wait_accepted(fake, want, 20)
        harness.wait_for(lambda: spool_files(spool) == [], 10, 0.1, "an empty spool")
        self.assertDocsEqual(want, fake.accepted_docs(), "documents accepted")
        # Oldest first: file 1, then 4, then 7.
        names = [json.loads(d)["name"] for d in fake.accepted_docs()]
        self.assertEqual([n.rsplit("-", 1)[0] for n in names[::10]], ["good0", "good1", "good2"])
        log = x.log()
        # The scan reads headers: the changed byte is found when the file is read back.
        self.assertRegex(log, r"spool: .* 4 files \(\d+ bytes\) to replay; 2 corrupt and 1 "
                              r"unfinished files deleted")
        self.assertIn("0000000000000002.spool is corrupt (not a spool file (bad magic))", log)
        self.assertIn("0000000000000003.spool is corrupt (truncated", log)
        self.assertIn("0000000000000005.spool is corrupt (checksum mismatch)", log)
        self.assertEqual(sorted(os.listdir(spool)), ["xrayd.lock"])
        x.terminate(10)

    def test_unusable_directory_fails_at_start(self):
        def run(spool):
            argv = [harness.xrayd_bin(), "-o", "--upstream", "local",
                    "-b", "127.0.0.1:%d" % harness.free_port(socket.SOCK_DGRAM),
                    "-t", "127.0.0.1:%d" % harness.free_port(), "--spool-dir", spool]
            return subprocess.run(argv, env=harness.clean_env(self.tmp), cwd=self.tmp,
                                  capture_output=True, timeout=20)
        blocker = os.path.join(self.tmp, "a-file")
        with open(blocker, "w") as f:
            f.write("x")
        r = run(os.path.join(blocker, "spool"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"cannot create spool directory " + blocker.encode(), r.stderr)

        spool = os.path.join(self.tmp, "spool")
        x = self.start_xrayd(["--upstream", "local", "--spool-dir", spool])
        r = run(spool)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"is in use by another xrayd", r.stderr)
        rc, _ = x.terminate(10)
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    harness.main()
