# SPDX-License-Identifier: Apache-2.0
"""Outbound proxies: uploads and telemetry go through a fake proxy (fakes/http_proxy.py)
with -p, with HTTP_PROXY for an http:// endpoint, and with HTTPS_PROXY as a CONNECT
tunnel to moto serving TLS; NO_PROXY (or no_proxy) naming 127.0.0.1 sends them
around the proxy; a malformed proxy URL stops xrayd at start-up naming the setting.
Endpoints are the fault fake in its no-fault mode (fakes/xray_faults.py) or moto."""

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import warnings

import harness

sys.path.insert(0, os.path.join(harness.HERE, "fakes"))
from http_proxy import HttpProxy  # noqa: E402
from xray_faults import XrayFaults  # noqa: E402

HDR = b'{"format":"json","version":1}'
SHUTDOWN_MS = 5000
CREDS = {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret"}
# moto -s has a self-signed certificate: the test's own client does not verify it.
warnings.filterwarnings("ignore", message="Unverified HTTPS request")


def make_docs(n):
    now = time.time()
    return [json.dumps({"trace_id": "1-%08x-%024x" % (int(now), random.getrandbits(96)),
                        "id": "%016x" % random.getrandbits(64), "name": "proxied-%d" % i,
                        "start_time": now - 0.5, "end_time": now}, separators=(",", ":"))
            for i in range(n)]


class ProxyTest(harness.IntegrationCase):
    def fakes(self):
        fake = XrayFaults()
        self.addCleanup(fake.close)
        proxy = HttpProxy()
        self.addCleanup(proxy.close)
        return fake, proxy

    def upload(self, x, docs):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for d in docs:
                sock.sendto(HDR + b"\n" + d.encode(), x.udp_addr)
        finally:
            sock.close()

    def run_uploads(self, fake, args=(), env=None):
        """Starts xrayd against the fake, uploads a few documents, stops it; returns
        the documents."""
        e = dict(CREDS, AWS_ENDPOINT_URL_XRAY=fake.url)
        e.update(env or {})
        x = self.start_xrayd(harness.aws_args(SHUTDOWN_MS) + list(args), e)
        docs = make_docs(6)
        self.upload(x, docs)
        harness.wait_for(lambda: set(docs) <= set(fake.accepted_docs()), 15, 0.05,
                         "the documents at the fake")
        rc, _ = x.terminate(SHUTDOWN_MS / 1000 + 5)
        self.assertEqual(rc, 0)
        self.assertDocsEqual(docs, fake.accepted_docs(), "documents at the fake")
        self.assertGreater(len(fake.telemetry_records()), 0, "telemetry reached the fake")
        return x

    def assert_proxied(self, proxy, fake):
        ups = proxy.forwarded_paths("/TraceSegments")
        self.assertGreater(len(ups), 0, "PutTraceSegments through the proxy")
        for method, url, _ in ups:
            self.assertEqual(method, "POST")
            self.assertEqual(url, fake.url + "/TraceSegments")
        self.assertGreater(len(proxy.forwarded_paths("/TelemetryRecords")), 0,
                           "PutTelemetryRecords through the proxy")
        # Every call the fake saw came through the proxy.
        self.assertEqual(len(proxy.forwarded_paths("/TraceSegments")),
                         len(fake.trace_calls()))

    def test_proxy_address_flag(self):
        fake, proxy = self.fakes()
        x = self.run_uploads(fake, ["-p", proxy.url])
        self.assert_proxied(proxy, fake)
        self.assertIn("outbound proxy: every URL via -p/ProxyAddress", x.log())

    def test_http_proxy_variable(self):
        # An http:// endpoint follows HTTP_PROXY; HTTPS_PROXY (here a dead port) is for
        # https:// URLs only.
        fake, proxy = self.fakes()
        self.run_uploads(fake, env={"HTTP_PROXY": proxy.url,
                                    "HTTPS_PROXY": "http://127.0.0.1:%d" % harness.free_port()})
        self.assert_proxied(proxy, fake)

    def test_lower_case_http_proxy(self):
        fake, proxy = self.fakes()
        self.run_uploads(fake, env={"http_proxy": proxy.url})
        self.assert_proxied(proxy, fake)

    def test_no_proxy_bypasses(self):
        fake, proxy = self.fakes()
        self.run_uploads(fake, ["-p", proxy.url], {"NO_PROXY": "example.com,127.0.0.1"})
        self.assertEqual(proxy.forwarded, [], "nothing through the proxy")
        fake2, proxy2 = self.fakes()
        self.run_uploads(fake2, env={"HTTP_PROXY": proxy2.url,
                                     "no_proxy": ".example.com, 127.0.0.0/8"})
        self.assertEqual(proxy2.forwarded, [], "nothing through the proxy")
        # A NO_PROXY entry for another port does not bypass.
        fake3, proxy3 = self.fakes()
        self.run_uploads(fake3, ["-p", proxy3.url],
                         {"NO_PROXY": "127.0.0.1:%d" % harness.free_port()})
        self.assert_proxied(proxy3, fake3)

    def test_https_proxy_tunnel_to_tls_moto(self):
        # moto serving TLS (self-signed, so NoVerifySSL) behind HTTPS_PROXY: the proxy
        # sees one CONNECT per connection, never the requests themselves.
        port = harness.free_port()
        exe = shutil.which("moto_server")
        argv = ([exe] if exe else [sys.executable, "-m", "moto.server"]) + \
            ["-H", "127.0.0.1", "-p", str(port), "-s"]
        moto = harness.Proc("moto-tls", argv, harness.clean_env(self.tmp), self.tmp)
        self._procs.append(moto)
        self.addCleanup(moto.stop)
        xr = self.tls_client(port)
        harness.wait_for(lambda: not moto.alive() or self.moto_ready(xr), 30, 0.2, "moto -s")
        self.assertTrue(moto.alive(), moto.output())

        proxy = HttpProxy()
        self.addCleanup(proxy.close)
        cfg = os.path.join(self.tmp, "cfg.yaml")
        with open(cfg, "w") as f:
            f.write("Version: 2\nNoVerifySSL: true\n")
        env = dict(CREDS, AWS_ENDPOINT_URL_XRAY="https://127.0.0.1:%d" % port,
                   HTTPS_PROXY=proxy.url)
        x = self.start_xrayd(harness.aws_args(SHUTDOWN_MS) + ["-c", cfg], env)
        docs = make_docs(5)
        self.upload(x, docs)
        ids = harness.trace_ids(docs)
        got = []

        def arrived():
            got[:] = self.tls_documents(xr, ids)
            return len(got) >= len(docs)

        harness.wait_for(arrived, 20, 0.3, "the documents at moto")
        self.assertDocsEqual(docs, got, "documents at moto through the tunnel")
        tunnels = proxy.tunnel_targets()
        self.assertGreater(len(tunnels), 0, "CONNECT through the proxy")
        self.assertEqual(set(tunnels), {"127.0.0.1:%d" % port})
        self.assertEqual(proxy.forwarded, [])
        rc, _ = x.terminate(SHUTDOWN_MS / 1000 + 5)
        self.assertEqual(rc, 0)

    @staticmethod
    def tls_client(port):
        import boto3
        import botocore.config
        cfg = botocore.config.Config(retries={"max_attempts": 1}, proxies={})
        return boto3.client("xray", endpoint_url="https://127.0.0.1:%d" % port,
                            region_name=harness.REGION, aws_access_key_id="AKIDTEST",
                            aws_secret_access_key="secret", verify=False, config=cfg)

    @staticmethod
    def moto_ready(xr):
        try:
            xr.batch_get_traces(TraceIds=["1-00000000-000000000000000000000000"])
            return True
        except Exception:  # noqa: BLE001 (anything: not up yet)
            return False

    @staticmethod
    def tls_documents(xr, ids):
        docs = []
        for i in range(0, len(ids), 5):
            for t in xr.batch_get_traces(TraceIds=ids[i:i + 5]).get("Traces", []):
                docs.extend(s["Document"] for s in t.get("Segments", []))
        return docs

    def test_malformed_proxy_url_stops_startup(self):
        cases = [
            (["-p", "http://user:secret@proxy.invalid:0"], {}, "-p/ProxyAddress"),
            ([], {"HTTPS_PROXY": "ftp://proxy.invalid"}, "HTTPS_PROXY"),
            ([], {"http_proxy": "http://proxy.invalid/path"}, "http_proxy"),
        ]
        for args, env, name in cases:
            e = dict(CREDS, AWS_ENDPOINT_URL_XRAY="http://127.0.0.1:%d" % harness.free_port())
            e.update(env)
            argv = [harness.xrayd_bin(), "-o", "-b", "127.0.0.1:%d" % harness.free_port(
                socket.SOCK_DGRAM), "-t", "127.0.0.1:%d" % harness.free_port()] + \
                harness.aws_args(SHUTDOWN_MS) + args
            r = subprocess.run(argv, env=harness.clean_env(self.tmp, e), capture_output=True,
                               timeout=20)
            err = r.stderr.decode("utf-8", "replace")
            self.assertEqual(r.returncode, 1, "exit code for %s: %s" % (name, err))
            self.assertIn(name + ": ", err)
            self.assertNotIn("secret", err + r.stdout.decode("utf-8", "replace"))


if __name__ == "__main__":
    harness.main()
