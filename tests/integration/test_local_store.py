# SPDX-License-Identifier: Apache-2.0
"""xrayd with no AWS settings at all keeps traces in its embedded store: the
Python SDK sends, the AWS CLI reads them back byte-identical through the read API."""

import json
import subprocess
import time

import harness


class LocalStoreTest(harness.IntegrationCase):
    def test_sdk_to_cli_round_trip(self):
        x = self.start_xrayd()
        status, health = x.healthz()
        self.assertEqual(status, 200)
        self.assertEqual(health["upstream"], "local", health)
        for k in ("status", "version", "uptime_s", "upstream", "upstream_reason",
                  "last_upstream_error", "queues", "memory"):
            self.assertIn(k, health)

        relay = self.start_relay(x.udp_addr)
        harness.run_app(self.tmp, "py", "tcp:127.0.0.1:%d udp:%s" % (x.tcp_port, relay.address),
                        ["--traces", "12", "--stream", "40", "--in-progress"])
        sent = relay.documents()
        self.assertGreater(len(sent), 12)
        ids = harness.trace_ids(sent)

        # The SDK sent one segment twice: in progress, then complete. The store keeps
        # only the complete copy; everything else comes back as sent.
        parsed = [json.loads(d) for d in sent]
        in_progress = [d for d, p in zip(sent, parsed) if p.get("in_progress") is True]
        self.assertEqual(len(in_progress), 1)
        ip_id = json.loads(in_progress[0])["id"]
        complete = [d for d, p in zip(sent, parsed)
                    if p["id"] == ip_id and p.get("in_progress") is not True]
        self.assertEqual(len(complete), 1)
        expected = [d for d in sent if d != in_progress[0]]

        api = "http://127.0.0.1:%d" % x.tcp_port
        got = []

        def all_there():
            got[:] = harness.aws_cli_batch_get(self.tmp, api, ids)
            return len(got) >= len(expected)

        try:
            harness.wait_for(all_there, 20, 1.0, "the store to hold every document")
        except AssertionError:
            pass
        self.assertDocsEqual(expected, got, "local store via aws xray batch-get-traces")
        self.assertNotIn(in_progress[0], got)

        rc, took = x.terminate(10)
        self.assertEqual(rc, 0, "exit code after SIGTERM")

    def test_api_address_flag(self):
        api_port = harness.free_port()
        x = self.start_xrayd(["--api-address", "127.0.0.1:%d" % api_port])
        relay = self.start_relay(x.udp_addr)
        harness.run_app(self.tmp, "py", relay.address, ["--traces", "3", "--stream", "0"])
        sent = relay.documents()
        api = "http://127.0.0.1:%d" % api_port
        got = []

        def all_there():
            got[:] = harness.aws_cli_batch_get(self.tmp, api, harness.trace_ids(sent))
            return len(got) >= len(sent)

        try:
            harness.wait_for(all_there, 15, 1.0, "the store to hold every document")
        except AssertionError:
            pass
        self.assertDocsEqual(sent, got, "read API on --api-address")
        status, _ = harness.http_get(api + "/healthz")
        self.assertEqual(status, 200, "/healthz answers on every address")

    def test_health_check_flag(self):
        x = self.start_xrayd()
        r = subprocess.run([harness.xrayd_bin(), "--health-check", "127.0.0.1:%d" % x.tcp_port],
                           env=harness.clean_env(self.tmp), capture_output=True, timeout=15)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        closed = harness.free_port()
        t0 = time.monotonic()
        r = subprocess.run([harness.xrayd_bin(), "--health-check", "127.0.0.1:%d" % closed],
                           env=harness.clean_env(self.tmp), capture_output=True, timeout=15)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertLess(time.monotonic() - t0, 10)


if __name__ == "__main__":
    harness.main()
